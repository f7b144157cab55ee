/*
 * authcheck_int.h - what authcheck.c shares with authcheck_dns.c: the
 * answers to the checks' DNS questions (src/auth/adns.h), looked up
 * through the server's c-ares channel on the loop and kept for their TTL.
 */
#ifndef POSTERN_POLICY_AUTHCHECK_INT_H
#define POSTERN_POLICY_AUTHCHECK_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/adns.h"
#include "policy/dns.h"

/* One answer we own: the records and their text in one allocation. */
struct adns_owned {
	struct adns_answer ans;
	unsigned ttl; /* seconds the answer may be kept */
	/* The resolver set AD (RFC 4035 3.2.3): validated by DNSSEC.  To be
	 * believed only from a resolver [dns] dnssec says validates. */
	bool is_secure;
};

struct adns_cache;

/* At most max entries; 0 disables keeping answers. */
struct adns_cache *adns_cache_new(size_t max);
void adns_cache_free(struct adns_cache *c);

/* A copy of a fresh cached answer (free with adns_owned_free), or NULL. */
struct adns_owned *adns_cache_get(struct adns_cache *c, const char *name,
				  enum adns_type type);

/* Keeps a copy of a for its ttl (a TEMPFAIL is never kept). */
void adns_cache_put(struct adns_cache *c, const char *name,
		    enum adns_type type, const struct adns_owned *a);

struct adns_owned *adns_owned_copy(const struct adns_owned *a);
void adns_owned_free(struct adns_owned *a);

/* Called on the loop thread once per adns_query() (never inside it),
 * with an answer the callee owns, or not at all after the query's
 * handle was dropped with adns_query_drop(). */
typedef void (*adns_done_fn)(void *arg, struct adns_owned *a);

struct adns_query;

/*
 * Asks the resolver d for (name, type).  NULL when out of memory: the
 * callback will not run.  A resolver that fails answers TEMPFAIL.
 */
struct adns_query *adns_query(struct dns *d, const char *name,
			      enum adns_type type, adns_done_fn cb, void *arg);

/* The callback will not run; the query ends on its own. */
void adns_query_drop(struct adns_query *q);

/* Turns a raw DNS answer (abuf, alen) into records of type: for the unit
 * tests too.  status is c-ares' status of the query. */
struct adns_owned *adns_parse(int status, const unsigned char *abuf,
			      int alen, enum adns_type type);

#endif
