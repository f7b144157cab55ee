/*
 * dns_int.h - what dns.c shares with dns_resolve.c: its c-ares channel.
 */
#ifndef POSTERN_POLICY_DNS_INT_H
#define POSTERN_POLICY_DNS_INT_H

#include <stdbool.h>

#include <ares.h>

#include "policy/dns.h"

/* The channel lookups run on; valid until dns_close(). */
ares_channel dns_channel(struct dns *d);

/* After queries were started: arms the timer c-ares' timeouts need. */
void dns_queries_sent(struct dns *d);

/* [dns] timeout as a whole lookup's deadline. */
struct timeval dns_deadline(const struct dns *d);

/* Null MX only: every MX target is the root (RFC 7505 section 3). */
bool dns_is_null_mx(const struct ares_mx_reply *mx);

/*
 * Sends the question (name, type) with AD set (RFC 6840 5.7: a
 * validating resolver then says whether it validated the answer) and
 * EDNS0; cb gets the raw answer whatever its RCODE: read it with
 * dns_answer_status().
 */
void dns_query_ad(struct dns *d, const char *name, int type,
		  ares_callback cb, void *arg);

/* c-ares' status for a raw answer: NXDOMAIN -> ARES_ENOTFOUND, another
 * error RCODE -> ARES_ESERVFAIL, else status unchanged. */
int dns_answer_status(int status, const unsigned char *abuf, int alen);

/* The answer's AD bit (validated, RFC 4035 3.2.3). */
bool dns_answer_is_secure(const unsigned char *abuf, int alen);

/* The loop the channel reports on. */
struct event_base *dns_base(struct dns *d);

#endif
