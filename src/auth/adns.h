/*
 * adns.h - what the message-authentication checks (SPF, DKIM, DMARC) ask
 * of DNS, as data.  The checks in src/auth/ are pure functions: they never
 * resolve anything themselves.  They read answers through an adns_view;
 * when an answer they need is not there yet they name the question with
 * need() and report "pending".  The caller (policy/auth_run.c on the
 * loop, c-ares underneath; a table in the unit tests) looks the questions
 * up - all of a round in parallel - and evaluates again from the start
 * with the answers added.  Evaluating again is cheap: the expensive parts
 * (DKIM's hashes) are computed once, before the first round.
 *
 * Names are given without a trailing dot; any case (a view compares them
 * without case).  Records come as text:
 *   ADNS_TXT   one string per record, its character-strings concatenated
 *              (RFC 7208 3.3, RFC 6376 3.6.2.2)
 *   ADNS_A     dotted quad, "192.0.2.1"
 *   ADNS_AAAA  inet_ntop's form, "2001:db8::1"
 *   ADNS_MX    the exchange's name, no trailing dot, in preference order
 *              (lowest first); a null MX (RFC 7505) is the empty string
 *   ADNS_PTR   the name, no trailing dot
 *   ADNS_TLSA  "usage selector mtype hexdata" (RFC 6698 2.2's
 *              presentation form, hex in lower case, no blanks within)
 */
#ifndef POSTERN_AUTH_ADNS_H
#define POSTERN_AUTH_ADNS_H

#include <stddef.h>

enum adns_type { ADNS_TXT, ADNS_A, ADNS_AAAA, ADNS_MX, ADNS_PTR, ADNS_TLSA };

enum adns_status {
	ADNS_OK,       /* n >= 1 records */
	ADNS_NODATA,   /* the name exists, no record of this type; n == 0 */
	ADNS_NXDOMAIN, /* the name does not exist; n == 0 */
	ADNS_TEMPFAIL, /* timeout, SERVFAIL, refused, no server reachable,
			* out of memory: RFC 7208's temperror */
};

struct adns_answer {
	enum adns_status status;
	size_t n;
	const char *const *rr; /* n records, NUL-terminated text */
};

struct adns_view {
	/* The answer to (name, type) when known, else NULL. */
	const struct adns_answer *(*get)(void *ctx, const char *name,
					 enum adns_type type);
	/* Asks for (name, type) before the next round; asking twice, or
	 * for an answer already known, is harmless. */
	void (*need)(void *ctx, const char *name, enum adns_type type);
	void *ctx;
};

/* "TXT", "A", ... for logs and tests. */
static inline const char *
adns_type_name(enum adns_type t)
{
	static const char *const names[] = {"TXT", "A",	  "AAAA",
					    "MX",  "PTR", "TLSA"};

	return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

#endif
