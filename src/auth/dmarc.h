/*
 * dmarc.h - DMARC evaluation (RFC 7489) as a pure function over the
 * results of SPF and DKIM and a DNS view (adns.h).
 *
 * The caller (policy/auth_run.c) finds the From domain with
 * hdr_from_domain(), runs SPF and DKIM, then calls dmarc_eval() until it
 * stops answering DMARC_PENDING, looking up what was asked in between.
 */
#ifndef POSTERN_AUTH_DMARC_H
#define POSTERN_AUTH_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/adns.h"

enum dmarc_result {
	DMARC_NONE,	 /* no usable policy record: DMARC not applied */
	DMARC_PASS,	 /* an aligned SPF or DKIM pass */
	DMARC_FAIL,	 /* a record, and nothing aligned passed */
	DMARC_TEMPERROR, /* a lookup the discovery depended on failed */
	DMARC_PERMERROR, /* no usable From domain was given */
	DMARC_PENDING,	 /* asked dns->need(); evaluate again */
};

enum dmarc_policy { DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };

/* RFC 7489 6.6.3: the default pct= and the sample's range. */
#define DMARC_PCT_DEFAULT 100
#define DMARC_SAMPLE_RANGE 100

struct dmarc_input {
	const char *from_domain; /* from hdr_from_domain() */
	int spf_pass;		 /* 1 when SPF passed */
	/* The domain SPF checked (MAIL FROM's, or HELO's for "<>"). */
	const char *spf_domain;
	/* d= of every DKIM signature that passed. */
	const char *const *dkim_pass_domains;
	size_t n_dkim_pass;
	unsigned sample; /* 0..99, drawn by the caller, for pct= */
};

#define DMARC_DOMAIN_SIZE 256
#define DMARC_PROBLEM_SIZE 160

struct dmarc_outcome {
	enum dmarc_result result;
	/* The policy that applies: p=, or sp= for a subdomain whose record
	 * came from the organizational domain.  NONE without a record. */
	enum dmarc_policy policy;
	/* What to do: the policy on fail, one step milder (reject ->
	 * quarantine -> none) when the sample falls outside pct= (RFC 7489
	 * 6.6.4); NONE on anything but fail. */
	enum dmarc_policy disposition;
	char policy_domain[DMARC_DOMAIN_SIZE]; /* where the record was */
	char from_domain[DMARC_DOMAIN_SIZE];   /* lowercased */
	char problem[DMARC_PROBLEM_SIZE];      /* why none/temperror/... */
	unsigned pct;
	bool is_spf_aligned, is_dkim_aligned;
};

/*
 * Evaluates DMARC for *in into *out and returns out->result.  Reads DNS
 * only through dns; when an answer is missing it asks dns->need() for
 * everything the round may need (_dmarc.FROM and, when it differs,
 * _dmarc.ORG together) and returns DMARC_PENDING.  Evaluating again
 * from scratch with the answers added gives the final result; which
 * record counts follows RFC 7489 6.6.3's order whatever came back.
 */
enum dmarc_result dmarc_eval(const struct dmarc_input *in,
			     const struct adns_view *dns,
			     struct dmarc_outcome *out);

/*
 * The organizational domain of domain (RFC 7489 3.2) into out, ASCII
 * lowercased and without a trailing dot: the public suffix plus one
 * label, by the Public Suffix List of Debian's publicsuffix package
 * (libpsl's psl_latest), else libpsl's built-in copy.  Under a TLD the
 * list does not name (".test") libpsl's "*" rule makes the TLD the
 * suffix, so a.example.test -> example.test.  A domain that is itself a
 * public suffix is its own.  False when domain is empty or out is too
 * small.  The list is loaded once, on the first call (pthread_once), and
 * kept for the life of the process; calls from any thread are safe.
 */
bool dmarc_org_domain(const char *domain, char *out, size_t size);

/* "none", "pass", "fail", "temperror", "permerror" ("pending"). */
const char *dmarc_result_name(enum dmarc_result r);

/* "none", "quarantine", "reject". */
const char *dmarc_policy_name(enum dmarc_policy p);

#endif
