/*
 * outbound_int.h - what the files of outbound/ share: the queue's
 * messages and recipients, destinations, jobs and their outcomes.
 */
#ifndef POSTERN_OUTBOUND_INT_H
#define POSTERN_OUTBOUND_INT_H

#include <stdio.h>
#include <time.h>

#include "outbound/outbound.h"
#include "proto/limits.h"

#define OB_REPLY_MAX 512 /* a reply kept per recipient, one line */
#define OB_ADDR_MAX (SMTP_PATH_MAX + 1)
#define OB_HASH_BUCKETS 65536
#define OB_DEST_BUCKETS 1024
#define OB_JOB_RCPTS_MAX 100 /* RFC 5321 4.5.3.1.8: a server takes 100 */

enum qr_state {
	QR_NOT_MINE,  /* the Maildir worker's, or done before it came here */
	QR_READY,     /* due: in a job waiting for a connection */
	QR_ACTIVE,    /* a connection is sending it */
	QR_WAITING,   /* deferred: next_try says when */
	QR_FINISHING, /* a bounce or a resend is being committed */
	QR_DONE,
};

struct qrcpt {
	enum qr_state state;
	unsigned attempts;
	int64_t next_try;
	char *last; /* last reply or local reason, NULL before a try */
	bool is_delay_sent;
};

struct qmsg {
	struct msg *m;
	struct qrcpt *r; /* one per m->rcpts */
	bool is_held, is_deleted;
	int64_t held_since; /* when the current hold began */
	int64_t held_secs;  /* earlier holds: not counted in the lifetime */
	unsigned n_pending; /* bounces/resends being committed */
	unsigned n_jobs;    /* jobs naming it (queued or sending) */
	struct qmsg *prev, *next; /* all messages, oldest first */
	struct qmsg *hnext;	  /* qid hash chain */
	struct qmsg *due_next;	  /* in ob->due: look at it next dispatch */
	bool is_due_listed;
};

enum dest_kind { DEST_LMTP, DEST_RELAY, DEST_MX };

struct job;

struct dest {
	char *key; /* "lmtp", "relay:host:port", "route:host:port",
		    * "mx:domain" */
	enum dest_kind kind;
	char host[256]; /* host, domain (MX) or unix socket path (LMTP) */
	uint16_t port;
	bool is_unix; /* LMTP over a Unix socket */
	/* CONFIG_TLS_*: the least this destination gets ([delivery] tls, a
	 * routes line's tls=, the relayhost's needs); MX destinations may
	 * ask more per host (MTA-STS, DANE). */
	int tls;
	bool is_implicit_tls; /* TLS from the first octet (smtps:, 465) */
	bool is_smarthost;    /* the relayhost: AUTH when relay_user is set */
	struct job *ready, **ready_tail;
	size_t n_ready;
	unsigned n_conns;
	/* Every address failed before a transaction: until then, jobs are
	 * deferred with the same outcome instead of each connecting. */
	int64_t dead_until;
	struct outcome *dead;
	/* outbound_metrics()'s scratch: its recipients in the queue now. */
	size_t m_count;
	const char *m_last;
	int64_t m_next;
	struct dest *hnext;
};

enum outcome_kind {
	OC_NONE, /* not decided: the connection ended first */
	OC_DONE,
	OC_DEFER,  /* 4xx or a local temporary failure */
	OC_BOUNCE, /* 5xx or a local permanent failure */
	OC_FOLLOW, /* 551 naming an address */
};

struct outcome {
	enum outcome_kind kind;
	/* A 421 (REPLY-CODES.md): the connection closes and the next
	 * address of the destination gets the recipient at once; after the
	 * last address it is deferred and counted like any 4xx. */
	bool is_next_host;
	bool is_uncharged;	   /* a local hitch: not counted, first step */
	unsigned wait_hint;	   /* seconds the reply asked for, 0 none */
	char status[16];	   /* "5.1.1" */
	char reply[OB_REPLY_MAX];  /* the remote's reply or our reason */
	bool is_remote;		   /* reply came from the peer */
	char forward[OB_ADDR_MAX]; /* OC_FOLLOW: the address named */
};

struct job {
	struct qmsg *q;
	struct dest *dest;
	size_t idx[OB_JOB_RCPTS_MAX]; /* recipients of q->m */
	struct outcome *out; /* n of them, made when a connection takes it */
	size_t n;
	char remote[256];   /* the peer's name, for the DSN's Remote-MTA */
	bool is_dsn_passed; /* the peer took NOTIFY= (RFC 3461 DSN) */
	bool is_final;	    /* LMTP: the peer is the mailbox store */
	double taken_at;    /* a connection took it (monotonic seconds) */
	struct job *next;
};

struct ob_route {
	char *domain; /* lower case; "*" for every domain */
	char *host;
	uint16_t port;
	int tls; /* CONFIG_TLS_*: the line's tls=, else CONFIG_TLS_OFF */
	bool is_implicit_tls;
};

struct conn;
struct state_saved;
struct notice_ctx;

struct outbound {
	const struct config *cfg;
	struct event_base *base;
	struct spool *sp;
	SSL_CTX *tls_client;
	struct outbound_hooks hooks;
	struct qmsg *head, *tail;
	size_t n_msgs;
	struct qmsg *due; /* new or released: jobs made at the next dispatch */
	struct qmsg *by_qid[OB_HASH_BUCKETS];
	struct dest *dests[OB_DEST_BUCKETS];
	struct conn *conns;
	unsigned n_conns;
	struct ob_route *routes;
	struct ob_route relay; /* [delivery] relayhost; host NULL when unset */
	size_t n_routes;
	struct event *ev_tick;
	struct event *ev_dispatch;
	bool is_ready, is_stopping;
	/* The journal (state.c). */
	FILE *state_fp;
	char *state_path;
	size_t state_lines;
	size_t state_live;	    /* lines written by the last compaction */
	struct state_saved **saved; /* loaded, not yet applied */
	struct notice_ctx *notices; /* being committed (finish.c) */
	unsigned long long n_sent, n_bounced, n_deferred;
	unsigned long long n_sent_lmtp; /* of n_sent, to an LMTP server */
	struct hist delivery_hist;
};

/*
 * Who calls whom: a file calls only files on rows below its own, so no
 * two files call each other in a circle (docs/design/outbound.md).
 *
 *	7  outbound.c qctl.c         the public API
 *	6  dispatch.c                the scheduler: tick, dispatch
 *	5  client.c                  a connection: resolve, connect, TLS, EHLO
 *	4  client_txn.c              its transactions: MAIL .. the final dot
 *	   client_tls.c              its TLS policy, check and report; AUTH
 *	3  finish.c                  a job's outcomes applied: done, defer,
 *bounce 2  jobs.c state.c 1  notice.c dest.c queue.c schedule.c 0  react.c
 *dsn.c common.c
 */

/* common.c: what every file may use. */
/* A string's bucket among n (qids, destination keys, saved state). */
unsigned ob_hash(const char *s, unsigned n);
/* The time in Unix seconds. */
int64_t ob_now(void);
/* CLOCK_MONOTONIC in seconds, for durations. */
double ob_mono(void);
/* Asks for a dispatch at the end of this loop turn (once ready). */
void ob_wake(struct outbound *ob);
/* The MAIL FROM of m: with [srs] secret, a sender of a domain that is not
 * ours is rewritten (SRS0), so that forwarded mail passes the receiver's
 * SPF and its bounces come back through us; else m->sender.  Returns buf
 * or m->sender. */
const char *outbound_sender(const struct config *cfg, const struct msg *m,
			    char *buf, size_t size);

/* queue.c: the messages in memory. */
/* Adds m (taken) with every recipient QR_NOT_MINE; NULL (m freed, the
 * spool keeps it) when out of memory. */
struct qmsg *queue_add(struct outbound *ob, struct msg *m_take);
struct qmsg *queue_find(struct outbound *ob, const char *qid);
/* Recipient idx is done: the spool's done record; ev non-NULL logs it. */
void queue_mark_done(struct outbound *ob, struct qmsg *q, size_t idx,
		     const char *ev, const struct outcome *oc);
/* Frees q once nothing of it is left to do here. */
void queue_drop_done(struct outbound *ob, struct qmsg *q);
/* At stop: frees every message. */
void queue_free_all(struct outbound *ob);

/* schedule.c: the scheduler's decisions, pure (tests/unit/test_schedule.c). */
/* True when recipient r of q is to go into a job now. */
bool schedule_is_due(const struct qmsg *q, const struct qrcpt *r, int64_t now);
/* True when q has been queued longer than [delivery] lifetime, the time
 * it spent held not counted. */
bool schedule_is_expired(const struct config *cfg, const struct qmsg *q,
			 int64_t now);
/* When a recipient deferred with oc after attempts charged tries is
 * tried again: the back-off step or the peer's wait, from the real time
 * ts rounded up to the next second. */
int64_t schedule_retry_at(const struct config *cfg, unsigned attempts,
			  const struct outcome *oc, const struct timespec *ts);
/* A deferral of recipient idx of q: counts the attempt (unless oc is
 * uncharged), then false when the lifetime is over (to bounce), else
 * true with the recipient QR_WAITING until schedule_retry_at(). */
bool schedule_defer(const struct config *cfg, struct qmsg *q, size_t idx,
		    const struct outcome *oc, int64_t now,
		    const struct timespec *ts);
/* `postern queue hold`: no attempt and no lifetime until released. */
void schedule_hold(struct qmsg *q, int64_t now);
/* `postern queue release`: the held time is set aside and every waiting
 * recipient is due now. */
void schedule_release(struct qmsg *q, int64_t now);
/* Seconds a destination whose every address failed rests. */
unsigned schedule_suspend_secs(const struct config *cfg);

/* dest.c */
int dest_routes_load(struct outbound *ob, char *err, size_t size);
void dest_routes_free(struct outbound *ob);
struct dest *dest_of(struct outbound *ob, const struct msg_rcpt *r);
void dest_free_all(struct outbound *ob);

/* react.c: what a reply means for the recipients it concerns. */
enum react_phase {
	REACT_GREETING,
	REACT_HELO,
	REACT_MAIL,
	REACT_RCPT,
	REACT_DATA,
	REACT_DOT,
};
/* Fills oc from a reply (code, enhanced code or "", one-line text). */
void react_reply(const struct outbound *ob, enum react_phase ph, unsigned code,
		 const char *enh, const char *line, const char *text,
		 struct outcome *oc);
/* A local failure (no reply): kind, status and our reason. */
void react_local(struct outcome *oc, enum outcome_kind kind, const char *status,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Seconds until the next try after attempts failures, bounded. */
unsigned react_backoff(const struct config *cfg, unsigned attempts,
		       unsigned hint);

/* notice.c: the messages the queue sends (bounces, delay and success
 * notices, 551 resends), built and logged, for finish_commit(); NULL when
 * out of memory. */
/* True when the sender asked for (or did not refuse) a bounce. */
bool notice_wants_failure(const struct msg *m, size_t idx);
struct msg *notice_failed(struct outbound *ob, const struct qmsg *q,
			  const size_t *idx, const struct outcome *oc, size_t n,
			  const char *remote);
struct msg *notice_delayed(struct outbound *ob, const struct qmsg *q,
			   size_t idx);
struct msg *notice_follow(const struct qmsg *q, size_t idx,
			  const struct outcome *oc);
/* NOTIFY=SUCCESS: "delivered" (LMTP) or "relayed" (a peer without DSN). */
struct msg *notice_success(struct outbound *ob, const struct qmsg *q,
			   size_t idx, const struct outcome *oc,
			   const char *remote, bool is_final);

/* state.c: SPOOL/queue.state */
int state_open(struct outbound *ob, const char *spool_dir, char *err,
	       size_t size);
void state_apply(struct outbound *ob, struct qmsg *q);
void state_compact(struct outbound *ob);
void state_rcpt(struct outbound *ob, const struct qmsg *q, size_t idx);
void state_flag(struct outbound *ob, const struct qmsg *q, char flag);
void state_close(struct outbound *ob);

/* finish.c: the one way an outcome comes back. */
/*
 * The job is decided (j->out holds each recipient's outcome): done,
 * deferred or bounced as outbound.md says; j is freed.  While the sending
 * side stops, only what is done is recorded: the rest waits for the next
 * start.
 */
void finish_job(struct outbound *ob, struct job *j);
/* Commits m (a notice or a resend); once it is durable the recipients
 * idx[0..n) of q, QR_FINISHING, are done (logged as ev). */
void finish_commit(struct outbound *ob, struct qmsg *q, struct msg *m_take,
		   const size_t *idx, size_t n, const char *ev);
/* At stop: commits still running report to nobody. */
void finish_detach(struct outbound *ob);

/* jobs.c: a destination's queue of jobs. */
/* Groups q's due recipients into jobs per destination. */
void jobs_make(struct outbound *ob, struct qmsg *q, int64_t now);
/* The next job of d for a connection (its recipients QR_ACTIVE), or NULL. */
struct job *jobs_next(struct outbound *ob, struct dest *d);
/* The recipients of j whose outcome sends them to the next address (a
 * 421) leave j for a new job of the same message and destination, still
 * QR_ACTIVE and undecided; j keeps the others, decided.  NULL (j
 * unchanged) when none does or out of memory. */
struct job *jobs_split_next_host(struct job *j);
/* At stop: frees the jobs no connection took. */
void jobs_free_ready(struct outbound *ob);

/* client.c: connections. */
/* Starts a connection to d for j; -1 (j finished, deferred) when out of
 * memory. */
int client_start(struct outbound *ob, struct dest *d, struct job *j);
void client_stop_all(struct outbound *ob);

/* dispatch.c: the scheduler's loop. */
int dispatch_start(struct outbound *ob, char *err, size_t size);
/* q may have due recipients now: looked at in the next dispatch. */
void dispatch_mark_due(struct outbound *ob, struct qmsg *q);
void dispatch_stop(struct outbound *ob);

#endif
