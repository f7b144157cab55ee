/*
 * msg.h - a message as the spool and the delivery agents see it: envelope
 * and text, all in memory.
 *
 * Ownership is a chain: the session builds a msg, spool_commit() holds it
 * until its commit callback, whoever receives it there (the delivery agents)
 * frees it with msg_free(); two agents sharing it each hold a reference.
 */
#ifndef POSTERN_SPOOL_MSG_H
#define POSTERN_SPOOL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSG_QID_LEN 16

enum msg_route {
	MSG_ROUTE_LOCAL = 1,  /* a local mailbox */
	MSG_ROUTE_REMOTE = 2, /* another host: for the sending side */
};

/*
 * Which agent delivers a recipient: decided by route/ (route_committed)
 * each time a committed message is handed over, from its route and the
 * config ([local] lmtp); never stored, so a restart decides again.
 */
enum msg_agent {
	MSG_AGENT_NONE,	    /* done, or nobody takes it now */
	MSG_AGENT_MAILDIR,  /* the Maildir worker (deliver/) */
	MSG_AGENT_OUTBOUND, /* the sending side: SMTP, or LMTP (outbound/) */
};

/*
 * Stored in the envelope's "flags" line as a number, so a new bit needs
 * no new line and old spools (without it) read back as before.
 */
enum msg_flag {
	MSG_F_SMTPUTF8 = 1 << 0, /* MAIL FROM ... SMTPUTF8 */
	MSG_F_8BITMIME = 1 << 1, /* BODY=8BITMIME */
	/* RFC 8689 4.1: MAIL FROM ... REQUIRETLS; every onward hop must be
	 * TLS with a verified peer and offer REQUIRETLS, or it bounces
	 * with 5.7.30. */
	MSG_F_REQUIRETLS = 1 << 2,
	/* RFC 8689 3, 4.1: "TLS-Required: No" in the header and no
	 * REQUIRETLS; the sending side may ignore DANE, MTA-STS and a
	 * certificate that does not verify for it (RFC 8689 4.2.2). */
	MSG_F_TLS_OPTIONAL = 1 << 3,
};

/* RFC 3461 NOTIFY; 0 when the client did not say. */
enum msg_notify {
	MSG_NOTIFY_NEVER = 1 << 0,
	MSG_NOTIFY_SUCCESS = 1 << 1,
	MSG_NOTIFY_FAILURE = 1 << 2,
	MSG_NOTIFY_DELAY = 1 << 3,
};

/* RFC 3461 RET; MSG_RET_NONE when the client did not say. */
enum msg_ret { MSG_RET_NONE, MSG_RET_FULL, MSG_RET_HDRS };

struct msg_rcpt {
	char *mailbox; /* where it goes: "user@domain" */
	char *orig;    /* the address as the client gave it */
	enum msg_route route;
	enum msg_agent agent; /* set by route/ before the hand-over */
	bool is_done;  /* delivered (or, later, bounced) */
	unsigned notify; /* enum msg_notify bits */
	char *orcpt;	 /* RFC 3461 ORCPT, decoded ("rfc822;a@b"), or NULL */
};

struct msg {
	uint64_t qid;
	char qid_str[MSG_QID_LEN + 1];
	int64_t arrival; /* Unix seconds */
	unsigned flags;	 /* enum msg_flag */
	char *sender;	 /* "" for the null reverse-path */
	enum msg_ret ret; /* RFC 3461 RET */
	char *envid;	  /* RFC 3461 ENVID, decoded, or NULL */
	struct msg_rcpt *rcpts;
	size_t n_rcpts;
	char *data; /* Received: header and the message, CRLF lines */
	size_t data_len;
	bool is_recovered; /* read back from the spool at start-up */
	unsigned refs;	   /* holders: msg_ref adds one, msg_free drops one */
};

/* A new empty message with no recipients; NULL when out of memory. */
struct msg *msg_new(void);

/*
 * Drops one reference; the last frees m and everything it holds.
 * msg_free(NULL) is a no-op.  Any thread.
 */
void msg_free(struct msg *m);

/*
 * Adds a holder (the Maildir worker and the sending side share a message
 * with recipients of both kinds; each touches only its own recipients'
 * is_done).  Returns m.  Any thread.
 */
struct msg *msg_ref(struct msg *m);

/* Sets the queue id and its 16-hex-digit form. */
void msg_set_qid(struct msg *m, uint64_t qid);

/* Appends a recipient (strings copied); -1 when out of memory. */
int msg_add_rcpt(struct msg *m, const char *mailbox, const char *orig,
		 enum msg_route route);

/* Sets recipient idx's DSN request (orcpt copied, may be NULL); -1 OOM. */
int msg_rcpt_set_dsn(struct msg *m, size_t idx, unsigned notify,
		     const char *orcpt);

/*
 * Serialises the envelope (not the text) into a malloc'd buffer: one
 * "key value" line each, tab-separated fields.  Returns NULL when out of
 * memory; *len_out is its length.
 */
char *msg_envelope_format(const struct msg *m, size_t *len_out);

/* Parses what msg_envelope_format wrote into m; -1 when malformed. */
int msg_envelope_parse(struct msg *m, const char *buf, size_t len);

#endif
