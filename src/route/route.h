/*
 * route.h - where mail goes: the one place that decides.
 *
 * Every entry point that names a recipient asks route_rcpt(): RCPT TO
 * (server/session_cmd_rcpt.c), `postern send` (cli/send.c), the maildrop
 * pickup and the messages the sending side makes (bounces, 551 resends),
 * both in this directory.  Every message the spool holds - from DATA,
 * recovery, pickup or the sending side - reaches its delivery agents
 * through route_committed(), the one split between the Maildir worker
 * (deliver/), LMTP and SMTP (outbound/).  The router also lends the
 * sending side what it may not reach itself (DNS, the recipient policy,
 * the explain texts of explain/): route/hooks.c.
 *
 * Layers (STYLE.md): cli -> server -> route -> policy, spool, deliver,
 * outbound.  Everything here runs on the loop thread.
 */
#ifndef POSTERN_ROUTE_H
#define POSTERN_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "config/config.h"
#include "policy/rcpt.h"
#include "policy/users.h"
#include "proto/addr.h"
#include "reply/reply.h"
#include "spool/msg.h"
#include "spool/spool.h"

/* Who is asking route_rcpt(), and what it should look at. */
struct route_req {
	const struct config *cfg;
	const struct users *users;
	bool is_trusted;    /* authenticated or local: any domain */
	bool check_mailbox; /* RCPT: a locked mbox, a full quota */
	const char *sid;    /* for the log; NULL outside a session */
};

/*
 * Decides on one recipient: the verdict of policy/rcpt.c (local user,
 * subaddress, forward, moved, unknown, relay attempt), then, with
 * check_mailbox, for a local mailbox: locked by a mail reader (an mbox
 * lock: REPLY_MAILBOX_LOCKED) or at or over [local] quota
 * (REPLY_OVER_QUOTA).  Always fills *out; returns the reply to send.
 */
enum reply_id route_rcpt(const struct route_req *rq, const struct addr *to,
			 struct rcpt_verdict *out);

/* The msg_route a verdict stores in the spool, 0 for a refusal. */
enum msg_route route_msg_route(const struct rcpt_verdict *v);

struct outbound;
struct deliver;
struct dns;
struct route_pickup;

/* The delivery side of the server: its agents and what they borrow. */
struct tlspol;

struct router {
	const struct config *cfg; /* the current one (a reload swaps it) */
	const struct users *users;
	struct event_base *base;
	struct spool *spool;
	struct deliver *deliver;     /* the Maildir worker; NULL once stopped */
	struct outbound *outbound;   /* LMTP and SMTP; NULL once stopped */
	struct dns *resolver;	     /* MX and host lookups for sending */
	SSL_CTX *tls_client;	     /* STARTTLS towards peers, or NULL */
	struct tlspol *tlspol;	     /* DANE and MTA-STS for sending */
	struct event *tlsrpt_tick;   /* the daily TLS reports */
	struct route_pickup *pickup; /* SPOOL/maildrop: postern send */
	unsigned commits_pending;    /* handed to the spool, not back yet */
	uint64_t n_queued;	     /* picked up from the maildrop */
	bool is_stopping;	     /* no new pickup */
	struct route_signers *signers;	    /* [dkim] keys (sign.c) */
	struct route_signers *signers_next; /* loaded by a reload */
};

/*
 * Fills r (the caller's; struct server holds it) and starts the delivery
 * agents for cfg and users (borrowed; swapped by route_set_config): the
 * Maildir worker, the resolver, the sending side.  Messages handed over
 * before route_ready() wait.  Returns 0, or -1 with a message naming the
 * fix in err (what started is stopped again).
 */
int route_start(struct router *r, const struct config *cfg,
		const struct users *users, struct event_base *base,
		struct spool *sp, char *err, size_t size);

/* After recovery: the sending side starts sending. */
void route_ready(struct router *r);

/*
 * Hands a committed message (taken) to whoever delivers each of its
 * recipients not done yet: the Maildir worker, or the sending side (SMTP
 * for other domains, LMTP for local ones when [local] lmtp is set); a
 * message with both is shared by reference.  While stopping, local
 * recipients stay in the spool for the next start.
 */
void route_committed(struct router *r, struct msg *m_take);

/*
 * A reload's part here: reads the routes file for cfg (borrowed, outliving
 * r).  -1 with the reason in err, and nothing changed, on a bad line.
 */
int route_reload(struct router *r, const struct config *cfg, char *err,
		 size_t size);

/* After a reload: the config and users every later decision uses. */
void route_set_config(struct router *r, const struct config *cfg,
		      const struct users *users);

/* route/sign.c: DKIM signatures on mail that leaves from us. */
struct route_signers;
/* The keys of [dkim] keys; NULL with err naming the file and the fix. */
struct route_signers *route_signers_load(const struct config *cfg,
					 char *err, size_t size);
void route_signers_free(struct route_signers *s);
/* A malloc'd DKIM-Signature field for text when its From: domain has a
 * key; NULL when none has (or out of memory: sent unsigned). */
char *route_sign(const struct router *r, const char *text, size_t len);
/* Puts route_sign's field at the top of m->data; -1 out of memory. */
int route_sign_msg(const struct router *r, struct msg *m);

/* route/pickup.c: SPOOL/maildrop, where `postern send` leaves mail. */
int route_pickup_start(struct router *r, char *err, size_t size);
void route_pickup_run(struct router *r); /* scan now (ctl "pickup") */
/* The TLS reports due now (with is_today_too, today's as well: ctl
 * "tls-report send"); returns how many were started. */
int route_tlsrpt_send(struct router *r, bool is_today_too);

/*
 * Stops the pickup, the sending side (its recipients stay queued in the
 * spool) and the Maildir worker (after what it has); a no-op for what
 * never started (r zeroed).  r stays usable for commits that still
 * complete: their mail stays in the spool for the next start.
 */
void route_stop(struct router *r);

#endif
