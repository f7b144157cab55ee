/*
 * srs.h - the Sender Rewriting Scheme (Shevek's SRS0/SRS1 address forms,
 * as libsrs2 and Postfix's postsrsd write them), pure.
 *
 * A message forwarded to a non-local address leaves with a sender in our
 * domain, so that SPF at the next hop checks us, and bounces to it find
 * their way back:
 *   local@orig.example       -> SRS0=HHHH=TT=orig.example=local@ours
 *   SRS0=...@first.example   -> SRS1=HHHH=first.example==...@ours
 * HHHH authenticates the rest with our secret, TT is the day it was made.
 * The caller of srs_forward() is the forwarding route; of srs_reverse(),
 * RCPT handling for our domain (a bounce coming back).
 */
#ifndef POSTERN_AUTH_SRS_H
#define POSTERN_AUTH_SRS_H

#include <stddef.h>
#include <stdint.h>

/* How long a rewritten address is honoured when the caller says 0. */
#define SRS_MAX_AGE_DEFAULT 21
/* The timestamp counts days modulo this (two base32 digits). */
#define SRS_TIME_WRAP 1024

/* srs_forward()'s errors (it returns 0 on success). */
enum srs_error {
	SRS_ERR_NULL_SENDER = -1, /* "<>" or "": never rewritten */
	SRS_ERR_SPACE = -2,	  /* out does not hold the result */
	SRS_ERR_SENDER = -3,	  /* no "@", empty local part or domain */
	SRS_ERR_SECRET = -4,	  /* empty secret, or HMAC failed */
};

/*
 * Rewrites sender ("local@domain", no angle brackets; "<>" or "" is the
 * null sender) into out (size bytes): SRS0 for a plain sender, SRS1 for
 * one that already is SRS0 or SRS1 of another forwarder, both at
 * our_domain.  now is the time in seconds since the epoch.  Returns 0 or
 * an srs_error; out is "" on error.
 */
int srs_forward(const char *secret, const char *sender, const char *our_domain,
		int64_t now, char *out, size_t size);

enum srs_status {
	SRS_OK,	       /* orig holds the address to deliver to */
	SRS_NOT_SRS,   /* local_part does not start with SRS0 or SRS1 */
	SRS_BAD_HASH,  /* the hash does not match (or no secret) */
	SRS_EXPIRED,   /* SRS0 older than max_age_days */
	SRS_MALFORMED, /* an SRS prefix, but not the rest; or orig too small */
};

/*
 * Reverses a recipient's local part (the text before its last "@"):
 * "SRS0=HHHH=TT=orig.example=local" gives "local@orig.example";
 * "SRS1=HHHH=first.example==HHHH=TT=orig=local" gives the SRS0 address
 * "SRS0=HHHH=TT=orig=local@first.example" (that forwarder checks its
 * own hash and time).  The prefix is matched without case, and the
 * separator after it may be "=", "+" or "-"; the hash is compared
 * without case since some MTAs lowercase local parts.  max_age_days 0
 * means SRS_MAX_AGE_DEFAULT.  orig is "" unless SRS_OK.
 */
enum srs_status srs_reverse(const char *secret, const char *local_part,
			    int64_t now, unsigned max_age_days, char *orig,
			    size_t size);

#endif
