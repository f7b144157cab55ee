/*
 * spf.h - the SPF check of RFC 7208 (check_host() and its record
 * language), as a pure function over the DNS view of auth/adns.h.
 *
 * The caller (policy's auth run; the unit tests with a table) gives the
 * client's address, HELO name and MAIL FROM; spf_eval() answers a result,
 * or SPF_PENDING after naming with need() the DNS questions it could not
 * answer yet.  The caller looks those up and calls spf_eval() again from
 * scratch with the answers added; the same answers always give the same
 * result, and a result reached with more answers than needed equals the
 * one reached with just enough.  Nothing here allocates or logs.
 */
#ifndef POSTERN_AUTH_SPF_H
#define POSTERN_AUTH_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/adns.h"

/* RFC 7208 4.6.4: the processing limits. */
#define SPF_LOOKUP_MAX 10 /* DNS-querying terms per check */
#define SPF_VOID_MAX 2	  /* terms whose lookup found nothing */
#define SPF_MX_MAX 10	  /* MX names an "mx" may look up */
#define SPF_PTR_MAX 10	  /* PTR names a "ptr" or %{p} looks at */

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
	SPF_PENDING
};

struct spf_request {
	const char *ip;	      /* client address as text, IPv4 or IPv6
			       * (IPv4-mapped IPv6 counts as IPv4) */
	const char *helo;     /* HELO/EHLO name as given */
	const char *sender;   /* MAIL FROM address without <>, "" for the
			       * null sender */
	const char *receiver; /* our host name, for %{r} */
	int64_t now;	      /* for %{t} */
};

struct spf_outcome {
	enum spf_result result;
	/* "mailfrom" or "helo" (the null sender: RFC 7208 2.4 checks
	 * postmaster@HELO). */
	const char *identity;
	/* The domain checked (MAIL FROM's domain, or the HELO name). */
	char domain[256];
	/* The <sender> used in check_host, e.g. postmaster@helo. */
	char sender[520];
	/* Fail only: the exp= text, macro-expanded, when it could be had;
	 * "" otherwise. */
	char explanation[512];
	/* permerror, temperror, none: a short reason for the log and the
	 * Authentication-Results comment. */
	char problem[160];
	/* DNS-querying terms counted (for tests). */
	unsigned lookups;
};

/*
 * Runs check_host() (RFC 7208 4) for the MAIL FROM identity, or for the
 * HELO identity when rq->sender is empty.  Fills *out (all of it, every
 * call) and returns out->result.  SPF_PENDING: questions were asked with
 * dns->need(); call again once they are answered.  rq and dns are
 * borrowed for the call only.
 */
enum spf_result spf_eval(const struct spf_request *rq,
			 const struct adns_view *dns, struct spf_outcome *out);

/* "pass", "fail", ... as RFC 8601 spells them; "pending" for SPF_PENDING. */
const char *spf_result_name(enum spf_result r);

/*
 * Macro expansion (RFC 7208 7) of spec as check_host(domain) would do it
 * for rq: into out (size bytes, truncated to fit).  is_exp: spec is an
 * explanation text (spaces and %{c} %{r} %{t} allowed).  Returns 0; -1 on
 * a syntax error or a client address that does not parse; 1 when %{p}
 * needs DNS answers not in the view yet (they have been asked for).  No
 * trailing-dot stripping or 253-octet truncation: that is domain-spec
 * handling, done by spf_eval().  For the tests and the explain tooling.
 */
int spf_expand(const struct spf_request *rq, const struct adns_view *dns,
	       const char *domain, const char *spec, bool is_exp, char *out,
	       size_t size);

#endif
