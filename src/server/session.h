/*
 * session.h - one SMTP session (RFC 5321) and its transaction; internal to
 * server/.  session.c reads command lines and dispatches them through its
 * command table to session_cmd_*.c; session_cmd_data.c reads the text;
 * session_io.c flushes and closes; every reply goes through
 * session_reply().  What only these files share is in session_int.h.
 */
#ifndef POSTERN_SESSION_H
#define POSTERN_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "proto/addr.h"
#include "proto/cmd.h"
#include "proto/data.h"
#include "proto/line.h"
#include "reply/reply.h"
#include "server/server.h"
#include "spool/msg.h"

/* Input bytes buffered before reading pauses. */
#define SESSION_READ_HIGH_WATER (256u << 10)
/* Replies buffered for a client that does not read before we pause. */
#define SESSION_OUTPUT_MAX (1u << 20)
/* Octets handed to the DATA reader at a time. */
#define SESSION_DATA_CHUNK 16384

enum session_state {
	SESSION_GREETING, /* banner not sent yet (greet_pause) */
	SESSION_CMD,	  /* reading commands */
	SESSION_DATA,	  /* reading message text after 354 */
	SESSION_BDAT,	  /* reading a BDAT chunk */
	SESSION_COMMIT,	  /* waiting for the spool; input waits */
	SESSION_TLS,	  /* TLS handshake (smtps, after STARTTLS) */
	SESSION_AUTH,	  /* reading a SASL response line (RFC 4954) */
	SESSION_AUTH_CHECK, /* a password is being checked; input waits */
	SESSION_POLICY,	  /* DNS, greylist or milter decides; input waits */
	SESSION_CLOSING,  /* last reply sent, closing once flushed */
};

/* Lets a commit callback find out whether its session is still there. */
struct commit_ticket {
	struct session *s; /* NULL once the session is gone */
	struct server *srv;
	double eod_at; /* the end of the data, monotonic seconds */
};

/* A transaction: MAIL to the end of DATA/BDAT LAST or RSET. */
struct txn {
	struct addr from;
	bool is_smtputf8;
	bool is_8bitmime;
	bool is_bdat;	       /* BDAT used: DATA no longer allowed */
	unsigned n_rcpt_tries; /* RCPT commands, accepted or not */
	struct msg *msg;       /* recipients gathered here */
	struct evbuffer *text; /* message text so far */
	struct data_reader reader;
	struct authcheck_job *auth; /* SPF, DKIM, DMARC in flight, or NULL */
	char *auth_header;	    /* the Authentication-Results to add */
	double eod_at; /* its end arrived (monotonic seconds): for the
			* end-of-data -> 250 histogram */
};

/* The SASL exchange in progress. */
enum auth_step {
	AUTH_STEP_PLAIN,      /* waiting for the PLAIN response */
	AUTH_STEP_LOGIN_USER, /* waiting for the LOGIN user name */
	AUTH_STEP_LOGIN_PASS, /* waiting for the LOGIN password */
};

struct auth_job;
struct authcheck_job;
struct rcpt_pending;
struct mail_pending;
struct data_pending;

struct session {
	struct server *srv;
	enum config_listen_kind kind;
	struct session *next, *prev;
	struct bufferevent *bev;
	struct event *ev_greet;
	struct event *ev_close; /* polls until the last reply has left */
	struct event *ev_rate;	/* checks min_data_rate during DATA/BDAT */
	struct event *ev_flush; /* writes the replies queued this turn */
	bool is_direct;	 /* plain socket: replies written by session_on_flush */
	bool want_flush; /* on_flushed runs once the output has drained */
	struct timespec data_start; /* when the text began (CLOCK_MONOTONIC) */
	uint64_t data_octets;	    /* octets of text read since */
	char sid[17];
	char ip[64];	  /* numeric client address */
	char client[80];  /* "ip:port" for logs */
	char literal[72]; /* "[1.2.3.4]" / "[IPv6:...]" for Received: */
	enum session_state state;
	bool has_helo;
	bool is_esmtp;
	bool is_counted; /* counted in the per-client table */
	bool is_greeted; /* the banner (or its refusal) was sent */
	unsigned n_per_client; /* sessions of this client, with this one */
	unsigned n_rate;       /* its connections in the rate window */
	char helo[SMTP_DOMAIN_MAX + 1];
	struct line_reader lines;
	bool is_auth_line; /* the line being read is an AUTH command */
	unsigned n_bad;
	enum cmd_verb verb; /* command being handled, for logs */
	struct txn *txn;
	uint64_t bdat_left;  /* octets of the current chunk still to read */
	bool is_bdat_last;
	bool is_bdat_discard; /* reading a chunk only to throw it away */
	enum reply_id bdat_error; /* reply after a discarded chunk */
	struct commit_ticket *ticket; /* while the spool commits our text */
	/* TLS and AUTH. */
	bool is_tls;
	char tls_info[128]; /* tls_describe(), for Received: and logs */
	bool is_auth;
	char auth_user[SMTP_LOCAL_MAX + SMTP_DOMAIN_MAX + 2];
	enum auth_step auth_step;
	char auth_login_user[SMTP_LOCAL_MAX + SMTP_DOMAIN_MAX + 2];
	struct auth_job *auth_job; /* while a worker checks a password */
	struct event *ev_auth_delay;
	struct rcpt_pending *rcpt_pending; /* while the greylist decides */
	struct mail_pending *mail_pending; /* while DNS looks the sender up */
	struct data_pending *data_pending; /* while the milter reads the text */
	unsigned n_msgs;
};

/* Starts a session on an accepted socket (takes fd). */
void session_start(struct server *srv, enum config_listen_kind kind,
		   evutil_socket_t fd, const struct sockaddr *sa, int salen);

/* Installs bev (TLS) as the session's bufferevent, with its callbacks. */
void session_set_bev(struct session *s, struct bufferevent *bev);

/* The handshake finished (smtps banner, or state reset after STARTTLS). */
void session_tls_ready(struct session *s);

/* Closes and frees s now, whatever its state. */
void session_free(struct session *s);

/*
 * Sends the reply id with its argument(s), logs it when it is not a 2xx/3xx
 * and closes the session after any 421, QUIT's 221 and 554 5.5.0.  Counts
 * 5xx towards max_bad_commands (reset when a message is queued, as
 * Postfix counts errors "without delivering mail").
 */
void session_reply(struct session *s, enum reply_id id, ...);

/* Sends a prepared multi-line reply (EHLO). */
void session_reply_raw(struct session *s, const char *buf, size_t len);

/* Ends the transaction, if any (RSET, EHLO, after DATA). */
void session_txn_reset(struct session *s);

/* Says 421 shutting down (server stop); closes when flushed. */
void session_shutdown(struct session *s);

/* Runs the commands waiting in the input (after a commit). */
void session_resume(struct session *s);

/*
 * What fills the rows of the command table (session.c, one file per
 * command).  A check looks at the command's arguments only (the table
 * checks the session's state before or after it, as the row says); it
 * sends the reply and returns false when the command must not run.  A
 * proceed runs the command in a state the table has allowed.
 */

/* HELO/EHLO: one domain or literal, else 501 5.5.4. */
bool cmd_helo_check(struct session *s, const struct cmd *c);
void cmd_helo(struct session *s, const struct cmd *c);
void cmd_mail(struct session *s, const struct cmd *c);
void cmd_rcpt(struct session *s, const struct cmd *c);

/* DATA: 554 when pipelined text follows (RFC 2920 3.1), 501 with an
 * argument. */
bool cmd_data_check(struct session *s, const struct cmd *c);
void cmd_data(struct session *s, const struct cmd *c);

/* BDAT: parses "SIZE [LAST]" into s->bdat_left and s->is_bdat_last; bad
 * syntax gets 501 and 421 (the chunk cannot be told from commands). */
bool cmd_bdat_check(struct session *s, const struct cmd *c);
void cmd_bdat(struct session *s, const struct cmd *c);

/* BDAT refused for the session's state: the chunk is read and thrown
 * away, and id is the reply after it (RFC 3030 2). */
void cmd_bdat_refuse(struct session *s, enum reply_id id);

/* RSET, QUIT, STARTTLS, ...: 501 5.5.4 "<VERB> takes no arguments". */
bool cmd_check_no_args(struct session *s, const struct cmd *c);

/* VRFY: an argument is needed, else 501 5.5.4. */
bool cmd_vrfy_check(struct session *s, const struct cmd *c);

void cmd_rset(struct session *s, const struct cmd *c);
void cmd_noop(struct session *s, const struct cmd *c);
void cmd_quit(struct session *s, const struct cmd *c);
void cmd_vrfy(struct session *s, const struct cmd *c);
void cmd_help(struct session *s, const struct cmd *c);

/* EXPN, ETRN, TURN: 502 5.5.1. */
void cmd_unimplemented(struct session *s, const struct cmd *c);

void cmd_starttls(struct session *s, const struct cmd *c);
void cmd_auth(struct session *s, const struct cmd *c);

/* Forgets a session's content-filter check in flight (session_free). */
void session_data_cancel(struct session *s);

/*
 * True when the spool has room for delivery-status notices: free space
 * beyond reserve + dsn_reserve.  A DSN request gets 455 4.3.1 otherwise.
 */
bool session_dsn_space_ok(struct session *s);

/* Forgets a session's sender lookup in flight (session_free). */
void session_mail_cancel(struct session *s);

/* Forgets a session's greylist check in flight (session_free). */
void session_rcpt_cancel(struct session *s);

/* Forgets a session's AUTH work in flight (session_free). */
void session_auth_cancel(struct session *s);

#endif
