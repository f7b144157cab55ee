/*
 * peertls.h - what the sending side learns about a peer's TLS beyond the
 * configuration, as data: DANE TLSA records (RFC 7672), the MTA-STS
 * policy (RFC 8461) and one session's outcome for TLS reporting (RFC
 * 8460).  policy/tlspolicy.c finds them (policy/tlsreport.c counts the
 * outcomes), outbound/client_tls.c applies them; both sides include this,
 * neither includes the other.
 */
#ifndef POSTERN_AUTH_PEERTLS_H
#define POSTERN_AUTH_PEERTLS_H

#include <stddef.h>
#include <stdint.h>

#include "auth/mtasts.h"

/* DANE (RFC 7672): what the TLSA records of an MX host say. */
enum outbound_tlsa_status {
	OUTBOUND_TLSA_NONE,	/* none, or not validated: DANE does not apply */
	OUTBOUND_TLSA_USABLE,	/* records to match: only a match will do */
	OUTBOUND_TLSA_UNUSABLE, /* validated, none usable: TLS, unverified
				 * (RFC 7672 2.2) */
	OUTBOUND_TLSA_FAIL,	/* the lookup failed or was bogus: the host
				 * is not used now (RFC 7672 2.1.1) */
};

#define OUTBOUND_TLSA_MAX 8
#define OUTBOUND_TLSA_DATA_MAX 1024

struct outbound_tlsa {
	uint8_t usage, selector, mtype; /* RFC 6698 2.1 */
	size_t len;
	unsigned char data[OUTBOUND_TLSA_DATA_MAX];
};

typedef void (*outbound_tlsa_fn)(void *cbarg, enum outbound_tlsa_status st,
				 const struct outbound_tlsa *r, size_t n);

/* One TLS session's outcome for SMTP TLS Reporting (RFC 8460 4.3). */
struct outbound_tls_result {
	const char *domain;	    /* the policy domain (the recipient's) */
	const char *mx_host;	    /* the MX host connected to, or tried */
	const char *receiving_ip;   /* its address, "" when none */
	const char *sending_ip;	    /* ours, "" when none */
	const char *policy_type;    /* "tlsa", "sts" or "no-policy-found" */
	const char *policy_strings; /* the policy, one line each, or "" */
	const char *result;	    /* NULL: success; else a result-type */
	const char *reason;	    /* the failure in words, or "" */
};

/* MTA-STS (RFC 8461): the domain's policy, NULL when it has none; error
 * says why a fetch failed (a cached policy may still come with it). */
typedef void (*outbound_sts_fn)(void *cbarg, const struct sts_policy *p,
				const char *error);

#endif
