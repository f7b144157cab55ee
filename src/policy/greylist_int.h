/*
 * greylist_int.h - greylisting internals: the triplet record, the pure
 * decision, and the table of functions every state store fills in (as
 * OpenSMTPD's queue backends).  Only src/policy/greylist*.c and the unit
 * test include it.
 */
#ifndef POSTERN_POLICY_GREYLIST_INT_H
#define POSTERN_POLICY_GREYLIST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "policy/greylist.h"
#include "proto/limits.h"

/* "net|sender|rcpt": a /64 as text, two paths, two separators, NUL. */
#define GREYLIST_NET_MAX 64
#define GREYLIST_KEY_MAX (GREYLIST_NET_MAX + 2 * SMTP_PATH_MAX + 3)

/* The timings, from [greylist] delay, expire and lifetime. */
struct greylist_policy {
	time_t delay;	 /* seconds before a retry passes */
	time_t expire;	 /* seconds an unconfirmed triplet is remembered */
	time_t lifetime; /* seconds a confirmed triplet lives after a pass */
};

/* What a store keeps per triplet. */
struct greylist_rec {
	time_t first_seen;
	time_t last_seen;
	bool is_passed;
};

/* The outcome of one decision. */
struct greylist_outcome {
	enum greylist_verdict verdict;
	unsigned wait;		 /* GREYLIST_DEFER: seconds until a pass */
	bool is_dirty;		 /* rec must be written back */
	struct greylist_rec rec; /* the record to write */
	time_t ttl;		 /* seconds the written record stays useful */
};

/*
 * Pure: the greylisting rules.  old is the stored record, NULL when there is
 * none; now the time of the RCPT.  Fills *out.
 */
void greylist_decide(const struct greylist_rec *old, time_t now,
		     const struct greylist_policy *pol,
		     struct greylist_outcome *out);

struct greylist_store;

/*
 * A state store.  The worker thread calls begin, then update for each check
 * of a batch, then commit; a -1 from any of them makes every check of the
 * batch GREYLIST_ERROR (after rollback).  open runs on the caller of
 * greylist_open(); the others on the worker only.
 */
struct greylist_store_ops {
	const char *scheme; /* the prefix of [greylist] store it serves */
	/* spec without the scheme; dir the base of relative paths. */
	struct greylist_store *(*open)(const char *spec, const char *dir,
				       char *err, size_t size);
	int (*begin)(struct greylist_store *st);
	/* Reads key's record, calls greylist_decide(), writes it back. */
	int (*update)(struct greylist_store *st, const char *key, time_t now,
		      const struct greylist_policy *pol,
		      struct greylist_outcome *out);
	int (*commit)(struct greylist_store *st);
	void (*rollback)(struct greylist_store *st);
	/* Forgets stale triplets; NULL when the store expires them itself. */
	void (*prune)(struct greylist_store *st, time_t now,
		      const struct greylist_policy *pol);
	void (*close)(struct greylist_store *st);
};

extern const struct greylist_store_ops greylist_sqlite_ops;
extern const struct greylist_store_ops greylist_redis_ops;

/*
 * Test hook: the clock of g's checks (time(NULL) by default), read on the
 * loop thread when greylist_check() is called.  Set it before any check.
 */
void greylist_set_clock(struct greylist *g, time_t (*now)(void));

#endif
