/*
 * tlsrpt.h - SMTP TLS Reporting (RFC 8460), the pure parts: the TXT
 * record at _smtp._tls.DOMAIN, the JSON report, its file name and the
 * Subject of the mail that carries it.
 *
 * The sending side counts sessions and failures, looks the record up,
 * compresses and sends (DKIM-signed, RFC 8460 3); these functions only
 * read what it hands them.  No I/O, no clock.
 */
#ifndef POSTERN_AUTH_TLSRPT_H
#define POSTERN_AUTH_TLSRPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One rua URI, with its NUL; a longer one is skipped. */
#define TLSRPT_RUA_SIZE 512

/* RFC 8460 4.3, policy-type. */
#define TLSRPT_POLICY_STS "sts"
#define TLSRPT_POLICY_TLSA "tlsa"
#define TLSRPT_POLICY_NONE "no-policy-found"

/* RFC 8460 4.3, result-type: negotiation failures ... */
#define TLSRPT_STARTTLS_NOT_SUPPORTED "starttls-not-supported"
#define TLSRPT_CERTIFICATE_HOST_MISMATCH "certificate-host-mismatch"
#define TLSRPT_CERTIFICATE_EXPIRED "certificate-expired"
#define TLSRPT_CERTIFICATE_NOT_TRUSTED "certificate-not-trusted"
#define TLSRPT_VALIDATION_FAILURE "validation-failure"
/* ... DANE policy failures ... */
#define TLSRPT_TLSA_INVALID "tlsa-invalid"
#define TLSRPT_DNSSEC_INVALID "dnssec-invalid"
#define TLSRPT_DANE_REQUIRED "dane-required"
/* ... MTA-STS policy failures. */
#define TLSRPT_STS_POLICY_FETCH_ERROR "sts-policy-fetch-error"
#define TLSRPT_STS_POLICY_INVALID "sts-policy-invalid"
#define TLSRPT_STS_WEBPKI_INVALID "sts-webpki-invalid"

/* True when s is one of the eleven result types above. */
bool tlsrpt_result_type_is_known(const char *s);

/*
 * Reads the n TXT records of _smtp._tls.DOMAIN (txt[i], len[i] octets,
 * each the concatenation of its strings; not NUL-terminated).  RFC 8460
 * 3: records that do not begin with "v=TLSRPTv1" and then ";" (spaces or
 * tabs allowed before it) are discarded; exactly one must remain, and
 * be valid: fields split by *WSP ";" *WSP, rua= required (the first
 * counts when repeated), other name=value fields ignored; rua= is URIs
 * split by *WSP "," *WSP, each of RFC 3986's characters but "," "!" and
 * ";" (which must be %-encoded).  Copies the mailto: and https: URIs
 * (scheme lowercased, the rest as written) into rua[0..max), skipping
 * other schemes and URIs of TLSRPT_RUA_SIZE octets or more.  Returns how
 * many were copied: 0 = no record, an invalid one, or nothing usable.
 */
size_t tlsrpt_txt_pick(const char *const *txt, const size_t *len, size_t n,
		       char rua[][TLSRPT_RUA_SIZE], size_t max);

/*
 * For a "mailto:" URI from tlsrpt_txt_pick: the address it names, %XX
 * decoded, without any "?" header fields (RFC 6068), into addr (size
 * bytes).  False when uri is not mailto:, names no single address (no
 * "@", a "," after decoding) or decodes to a control character or
 * space, or addr is too small.
 */
bool tlsrpt_rua_mailto(const char *uri, char *addr, size_t size);

/* True when uri is an "https:" URI (reports are POSTed there). */
bool tlsrpt_rua_is_https(const char *uri);

/* One row of failure-details (RFC 8460 4.4).  Empty strings are left
 * out of the JSON, but for result-type. */
struct tlsrpt_failure {
	char result_type[48]; /* one of TLSRPT_* result types */
	char sending_mta_ip[46];
	char receiving_mx_hostname[256];
	char receiving_mx_helo[256];
	char receiving_ip[46];
	char failure_reason_code[128];
	const char *additional_information; /* a URI, or NULL */
	uint64_t count;			    /* failed-session-count */
};

/* One entry of "policies". */
struct tlsrpt_policy {
	char policy_type[16]; /* TLSRPT_POLICY_* */
	/* policy-string: for sts, sts_policy_strings()'s lines; for tlsa,
	 * the TLSA records in presentation form; left out when 0. */
	const char *const *policy_strings;
	size_t n_strings;
	char policy_domain[256];
	char mx_host[256]; /* the mx pattern that applied; "" to leave out */
	uint64_t n_success, n_failure;
	const struct tlsrpt_failure *failures;
	size_t n_failures; /* "failure-details" is left out when 0 */
};

struct tlsrpt_report {
	const char *org_name;	  /* organization-name */
	const char *contact_info; /* an address, RFC 5322 */
	char report_id[128];
	/* Unix seconds, written as RFC 3339 UTC ("2026-12-04T00:00:00Z");
	 * clamped to years 0000-9999.  RFC 8460 4.1: a report SHOULD
	 * cover one UTC day (tlsrpt_day_before gives it). */
	int64_t start, end;
	const struct tlsrpt_policy *policies;
	size_t n_policies;
};

/*
 * The report as RFC 8460 4.4's JSON, keys in the order of its section 4
 * schema, on one line: a malloc'd NUL-terminated string the caller
 * frees, NULL when out of memory.  Strings are escaped (", \, and
 * controls as \u00XX); octets that are not UTF-8 become \ufffd, so the
 * output is always valid JSON.  "policies" is an array even for one
 * policy (RFC 8460 4).
 */
char *tlsrpt_json(const struct tlsrpt_report *r);

/*
 * The UTC day before the one holding now: *start its 00:00:00, *end its
 * 23:59:59, the last second in it, as RFC 8460 Appendix B's report
 * writes its date-range (and the large reporters do).  For the report's
 * start and end, and the file name's timestamps.
 */
void tlsrpt_day_before(int64_t now, int64_t *start, int64_t *end);

/*
 * RFC 8460 5.3's file name into buf (size bytes):
 *   sender "!" policy-domain "!" begin "!" end [ "!" unique-id ] ".json.gz"
 * (".json" when is_gzip is false).  sender is the domain of the report's
 * contact-info address.  unique_id NULL or "" leaves it out, else it
 * must be 1*(ALPHA / DIGIT).  False, buf "", when a domain holds
 * anything but letters, digits, "-", "_" and ".", a time is negative,
 * unique_id is not alphanumeric, or buf is too small.
 */
bool tlsrpt_filename(char *buf, size_t size, const char *sender,
		     const char *policy_domain, int64_t begin, int64_t end,
		     const char *unique_id, bool is_gzip);

/*
 * RFC 8460 5.3's Subject into buf (size bytes), without "Subject: ":
 *   "Report Domain: POLICY-DOMAIN Submitter: SENDER Report-ID: <ID>"
 * False, buf "", when an argument holds a control character or space
 * (none belongs there, and a CR or LF would forge a header line), or
 * buf is too small.
 */
bool tlsrpt_subject(char *buf, size_t size, const char *policy_domain,
		    const char *submitter, const char *report_id);

#endif
