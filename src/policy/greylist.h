/*
 * greylist.h - greylisting of client-net/sender/recipient triplets (450
 * 4.2.0 and, when the state store fails, 451 4.3.0).
 *
 * The server calls greylist_check() for each RCPT on the loop thread; the
 * verdict comes back later, on the loop thread, through a callback.  The
 * store (SQLite file or Redis) is only touched by one worker thread.
 * See greylist.c for the rules and REPLY-CODES.md (450, 451).
 */
#ifndef POSTERN_POLICY_GREYLIST_H
#define POSTERN_POLICY_GREYLIST_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "config/config.h"

enum greylist_verdict {
	GREYLIST_PASS,	/* accept the recipient */
	GREYLIST_DEFER, /* 450 4.2.0, retry in wait_seconds */
	GREYLIST_ERROR, /* the state store failed: 451 4.3.0, never a pass */
};

/*
 * Called on the loop thread.  wait_seconds: for GREYLIST_DEFER, seconds
 * until a retry passes (>= 1); 0 otherwise.
 */
typedef void (*greylist_done_fn)(void *arg, enum greylist_verdict v,
				 unsigned wait_seconds);

struct greylist;

/*
 * Opens the store named by cfg->greylist_store ("sqlite:PATH", a relative
 * PATH resolved against cfg->dir, or "redis://host:port/db") and starts one
 * worker thread that reports through base (evthread_use_pthreads() must
 * have been called before base was made).  Does not look at
 * cfg->greylist_enabled: the caller opens only when it is on.  On error
 * returns NULL with a message naming the fix in err (size bytes).  Redis
 * being down is not an error here: each check then gives GREYLIST_ERROR
 * until it is back.  cfg is borrowed for the handle's life.
 */
struct greylist *greylist_open(const struct config *cfg,
			       struct event_base *base, char *err, size_t size);

/*
 * Finishes the checks already queued, joins the worker, runs the callbacks
 * still due (on the calling, loop thread), and frees g.  A callback run
 * here that calls greylist_check() gets GREYLIST_ERROR before close
 * returns.  greylist_close(NULL) is a no-op.
 */
void greylist_close(struct greylist *g);

/*
 * Loop thread.  Queues the check of one triplet; the strings are copied.
 * cb runs exactly once, later, on the loop thread, never inside
 * greylist_check().  Allowed clients and sender domains pass without
 * touching the store.
 */
void greylist_check(struct greylist *g, const char *client_ip,
		    const char *sender, const char *rcpt, greylist_done_fn cb,
		    void *arg);

/*
 * Pure.  Writes the triplet key "net|sender|rcpt" into buf: the client's
 * /24 (IPv4, also for IPv4-mapped IPv6) or /64 (IPv6) as "1.2.3.0/24" or
 * "2001:db8::/64", the addresses lower-cased without angle brackets, the
 * null sender as "<>".  Returns false when client_ip is no address, rcpt is
 * empty, or the key does not fit in size bytes.
 */
bool greylist_key(const char *client_ip, const char *sender, const char *rcpt,
		  char *buf, size_t size);

/*
 * Pure.  True when client_ip is in an entry of cfg->greylist_allow (an
 * address or a CIDR, IPv4 or IPv6) or the sender's domain is an entry or a
 * subdomain of one (case-insensitive).
 */
bool greylist_allowed(const struct config *cfg, const char *client_ip,
		      const char *sender);

#endif
