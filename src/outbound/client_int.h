/*
 * client_int.h - what the two halves of a connection share: client.c (the
 * connection: resolve, connect, TLS, EHLO, reading replies, the end) and
 * client_txn.c (the transactions: MAIL .. the final dot, RSET, QUIT).
 *
 * client.c calls client_txn.c, never the other way: a transaction that
 * must end the connection returns false and client.c ends it.
 */
#ifndef POSTERN_OUTBOUND_CLIENT_INT_H
#define POSTERN_OUTBOUND_CLIENT_INT_H

#include <stdarg.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "outbound/outbound_int.h"
#include "proto/reply_parse.h"

enum cphase {
	CP_POLICY, /* the domain's MTA-STS policy */
	CP_RESOLVE,
	CP_TLSA,   /* the MX host's TLSA records (DANE) */
	CP_CONNECT,
	CP_GREETING,
	CP_EHLO,
	CP_HELO,
	CP_STARTTLS,
	CP_TLS,
	CP_AUTH,      /* AUTH PLAIN with its response, or AUTH LOGIN, sent */
	CP_AUTH_USER, /* LOGIN: the user name sent */
	CP_AUTH_PASS, /* LOGIN: the password sent */
	CP_RSET,
	CP_TXN,
	CP_DOT,
	CP_DOT_EMPTY, /* DATA said 354 with no recipient: an empty dot */
	CP_QUIT,
	CP_CLOSE, /* QUIT answered, close_notify sent: the peer's end */
};

enum cmd_kind { CMD_MAIL, CMD_RCPT, CMD_DATA };

struct conn {
	struct outbound *ob;
	struct dest *dest;
	struct conn *prev, *next;
	struct bufferevent *bev;
	void *resolving;
	struct outbound_target *targets;
	size_t n_targets, ti;
	enum cphase ph;
	struct reply_acc acc; /* the reply being read */
	struct reply_acc rep; /* the last complete reply, being handled */
	struct ehlo_caps caps;
	bool is_lmtp, is_tls, has_txn;
	/* This address's TLS: CONFIG_TLS_* it needs, the name its
	 * certificate must carry, and whether we are logged in. */
	int tls_need;
	char tls_name[256];
	bool is_authed;
	bool is_verified; /* the certificate verified as tls_need asked */
	/* The verification failed but the message said TLS-Required: No
	 * (RFC 8689 5): only that job goes over this connection. */
	bool is_policy_waived;
	/* DANE: the host's usable TLSA records (tls_need is then VERIFY). */
	struct outbound_tlsa *tlsa;
	size_t n_tlsa;
	bool is_tlsa_unusable; /* validated records, none usable */
	void *tlsa_req;
	/* MTA-STS: the destination domain's policy, NULL without one. */
	struct sts_policy *sts;
	void *sts_req;
	bool is_sts_testing; /* mode testing: checked and reported only */
	char sts_error[256];
	bool was_served; /* some address got as far as a transaction */
	struct job *job;
	struct outcome fail; /* why the last address did not serve */
	/* The transaction: commands sent, replies matched in order. */
	enum cmd_kind cmds[OB_JOB_RCPTS_MAX + 2];
	size_t cmd_rcpt[OB_JOB_RCPTS_MAX + 2];
	size_t n_cmds, n_replied, rcpt_next;
	bool is_pipelined, is_mail_failed;
	size_t accepted[OB_JOB_RCPTS_MAX];
	size_t n_accepted, n_dot_replies;
	unsigned n_msgs;
	char peer[320]; /* "host[addr]:port" for logs */
};

/* One command line, CRLF added, to the peer. */
static inline void __attribute__((format(printf, 2, 3)))
client_send_line(struct conn *c, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static inline void
client_set_timeouts(struct conn *c, uint64_t read_s, uint64_t write_s)
{
	struct timeval r = {(time_t)read_s, 0}, w = {(time_t)write_s, 0};

	bufferevent_set_timeouts(c->bev, &r, &w);
}

/* client_tls.c: answers for client.c, which acts on them */
#define CLIENT_AUTH_MAX                                                        \
	1030 /* user + password + 2 NULs, RFC 4954's 12K                       \
	      * is far more than any password needs */
enum client_auth {
	CLIENT_AUTH_WAIT,   /* a command went out: its reply comes */
	CLIENT_AUTH_DONE,   /* logged in: the transaction may start */
	CLIENT_AUTH_FAILED, /* c->fail says why: the next address */
};
/* AUTH to the relayhost after EHLO over TLS; its replies. */
enum client_auth client_auth_start(struct conn *c);
enum client_auth client_auth_reply(struct conn *c, const char *line);
/* This address's TLS (tls_need, DANE, MTA-STS); false: skip it. */
bool client_tls_policy(struct conn *c, const struct outbound_target *t);
/* DANE applies to t: its TLSA records are to be looked up first. */
bool client_wants_tlsa(const struct conn *c, const struct outbound_target *t);
uint16_t client_target_port(const struct outbound_target *t);
/* The SSL object for the handshake; NULL with c->fail set. */
SSL *client_tls_ssl(struct conn *c);
/* The handshake is done: false when the certificate does not verify
 * where it must (c->fail set); sets is_tls and is_verified. */
bool client_tls_check(struct conn *c);
/* Counts a session's TLS outcome for the day's report (MX only); result
 * NULL: success, else an RFC 8460 result type. */
void client_tls_report(struct conn *c, const char *result, const char *reason);

/* client_txn.c */
/* The peer is greeted (EHLO, TLS done): the job's transaction starts, or
 * QUIT when the peer can take none of the jobs left. */
void client_txn_start(struct conn *c);
/* A reply in CP_RSET, CP_TXN, CP_DOT or CP_DOT_EMPTY.  False when the
 * connection must end (the outcomes are set): the caller ends it. */
bool client_txn_reply(struct conn *c, const char *line);
/* Every undecided recipient of the job gets oc. */
void client_job_settle(struct conn *c, const struct outcome *oc);
/* The job is decided: finish_job() applies its outcomes. */
void client_job_done(struct conn *c);

#endif
