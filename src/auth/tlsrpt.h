/*
 * tlsrpt.h - SMTP TLS Reporting (RFC 8460) as pure functions: the
 * _smtp._tls TXT record and the JSON of an aggregate report.  The
 * counting and the sending are policy/tlspolicy.c's and route/tlsrpt.c's.
 */
#ifndef POSTERN_AUTH_TLSRPT_H
#define POSTERN_AUTH_TLSRPT_H

#include <stddef.h>
#include <stdint.h>

/*
 * The TXT records of _smtp._tls.DOMAIN (each its strings joined; len[i]
 * its length, or NULL: NUL-terminated): RFC 8460 3 - exactly one must
 * begin "v=TLSRPTv1"; its rua= URIs (mailto: or https:, comma-separated)
 * are copied into rua, at most max.  The count; 0: no usable record.
 */
size_t tlsrpt_txt_pick(const char *const *txt, const size_t *len, size_t n,
		       char rua[][512], size_t max);

struct tlsrpt_failure {
	char result_type[48]; /* RFC 8460 4.3, e.g. "certificate-expired" */
	char sending_mta_ip[46];
	char receiving_mx_hostname[256];
	char receiving_ip[46];
	char failure_reason_code[128];
	uint64_t count;
};

struct tlsrpt_policy {
	char policy_type[16]; /* "sts", "tlsa" or "no-policy-found" */
	const char *const *policy_strings;
	size_t n_strings;
	char policy_domain[256];
	char mx_host[256]; /* "" when none */
	uint64_t n_success, n_failure;
	const struct tlsrpt_failure *failures;
	size_t n_failures;
};

struct tlsrpt_report {
	const char *org_name;
	const char *contact_info;
	char report_id[128];
	int64_t start, end; /* Unix seconds, written as RFC 3339 UTC */
	const struct tlsrpt_policy *policies;
	size_t n_policies;
};

/*
 * RFC 8460 4's JSON of r, malloc'd, NUL-terminated; NULL when out of
 * memory.  Strings are escaped (quote, backslash, control characters
 * as \u00XX); empty optional fields are left out.
 */
char *tlsrpt_json(const struct tlsrpt_report *r);

#endif
