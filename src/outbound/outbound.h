/*
 * outbound.h - the sending side: the queue of recipients that leave this
 * host (SMTP to other domains, LMTP to a local store), the client that
 * sends them, and the bounces.  docs/design/outbound.md; REPLY-CODES.md,
 * "Sending side".
 *
 * Everything runs on the server's loop thread.  The server owns the
 * things outbound/ may not reach (DNS, the recipient policy, the explain
 * texts) and lends them through struct outbound_hooks.
 */
#ifndef POSTERN_OUTBOUND_H
#define POSTERN_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "config/config.h"
#include "spool/msg.h"
#include "spool/spool.h"
#include "auth/peertls.h"
#include "util/hist.h"

enum outbound_resolve_status {
	OUTBOUND_RESOLVED,
	OUTBOUND_NOHOST,   /* NXDOMAIN / no address for the domain: 5.1.2 */
	OUTBOUND_NULLMX,   /* RFC 7505: the domain takes no mail: 5.1.10 */
	OUTBOUND_TEMPFAIL, /* try later: 4.4.3 */
};

struct outbound_target {
	char host[256];
	struct sockaddr_storage ss; /* port set */
	socklen_t sslen;
	bool is_secure; /* its MX records were DNSSEC-validated */
};

typedef void (*outbound_resolved_fn)(void *cbarg,
				     enum outbound_resolve_status st,
				     const struct outbound_target *t, size_t n);

/* Runs on the loop thread after the commit; err 0: m is durable. */
typedef void (*outbound_injected_fn)(void *done_arg, int err);

struct outbound_hooks {
	void *arg;
	/* Starts resolving name (MX hosts with is_mx); cb runs later on the
	 * loop unless cancelled.  Returns a handle, NULL when out of memory. */
	void *(*resolve_start)(void *arg, const char *name, bool is_mx,
			       uint16_t port, outbound_resolved_fn cb,
			       void *cbarg);
	void (*resolve_cancel)(void *arg, void *handle);
	/* The TLSA records of _PORT._tcp.HOST, asked only with [dns] dnssec;
	 * cb runs later on the loop unless cancelled.  NULL: out of memory. */
	void *(*tlsa_start)(void *arg, const char *host, uint16_t port,
			    outbound_tlsa_fn cb, void *cbarg);
	void (*tlsa_cancel)(void *arg, void *handle);
	/* The MTA-STS policy of domain (cached, or fetched over HTTPS);
	 * cb runs later on the loop unless cancelled.  NULL: out of memory. */
	void *(*sts_start)(void *arg, const char *domain, outbound_sts_fn cb,
			   void *cbarg);
	void (*sts_cancel)(void *arg, void *handle);
	/* Counts a TLS outcome towards the day's TLS report.  May be NULL. */
	void (*tls_result)(void *arg, const struct outbound_tls_result *r);
	/*
	 * Queues a new message (a bounce, a resend to a 551's address): the
	 * server routes its recipients, commits it and hands it on; done runs
	 * after the commit.  m is taken either way.
	 */
	void (*inject)(void *arg, struct msg *m_take,
		       outbound_injected_fn done, void *done_arg);
	/* Puts a reply ("550 5.1.1 text") into plain words for a bounce. */
	void (*explain)(void *arg, const char *reply, char *buf, size_t size);
};

struct outbound;

/*
 * Starts the sending side for cfg (borrowed; it must outlive ob): reads
 * [delivery] routes and SPOOL/queue.state.  tls_client may be NULL (no
 * STARTTLS).  NULL with a message naming the fix in err on failure.
 */
struct outbound *outbound_start(const struct config *cfg,
				struct event_base *base, struct spool *sp,
				SSL_CTX *tls_client,
				const struct outbound_hooks *hooks, char *err,
				size_t size);

/*
 * A reload: cfg (borrowed, outliving ob) replaces the old one for every
 * later decision, and the routes file is read again.  On error (a bad
 * routes line) nothing changes: -1 with the reason in err.
 */
int outbound_reload(struct outbound *ob, const struct config *cfg, char *err,
		    size_t size);

/*
 * Takes a reference-holding m; its recipients whose agent route/ set to
 * MSG_AGENT_OUTBOUND are this side's to deliver.
 */
void outbound_submit(struct outbound *ob, struct msg *m_take);

/*
 * After recovery: rewrites the queue state compactly and starts sending.
 * Until then submitted messages only wait.
 */
void outbound_ready(struct outbound *ob);

/*
 * One `postern queue` request ("list", "show ID", "flush", "delete ID",
 * "hold ID", "release ID"): its answer into out.  Returns 0, or -1 when
 * the answer is an error line ("error: ...").
 */
int outbound_ctl(struct outbound *ob, const char *request,
		 struct evbuffer *out);

#define OUTBOUND_TOP_DESTS 10

/* One destination's recipients waiting, for /metrics and the status page. */
struct outbound_dest_stat {
	char destination[300]; /* "mx:example.org", "relay:host:port" ... */
	size_t recipients;
	char last[512];	  /* the last reply of one of them, "" none */
	int64_t next_try; /* the soonest next try, 0 none */
};

struct outbound_metrics {
	unsigned long long sent_remote, sent_lmtp, deferred, bounced;
	/* Recipients in the queue now, by state (as `postern queue`). */
	size_t queued, active, waiting, held, bouncing;
	/* The destinations with the most recipients, most first; the rest
	 * summed in other_recipients (bounded label sets). */
	struct outbound_dest_stat top[OUTBOUND_TOP_DESTS];
	size_t n_top, other_recipients;
	struct hist delivery; /* one attempt: taken by a connection -> its
			       * outcome */
};

/* The figures, computed now: O(recipients queued + destinations). */
void outbound_metrics(struct outbound *ob, struct outbound_metrics *out);

/*
 * Closes every connection (their recipients stay queued: the spool has
 * them) and frees ob; outbound_stop(NULL) is a no-op.
 */
void outbound_stop(struct outbound *ob);

#endif
