/*
 * mtasts.h - SMTP MTA Strict Transport Security (RFC 8461), the pure
 * parts: the TXT record at _mta-sts.DOMAIN, the policy file fetched from
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt, and matching an MX host
 * against the policy's mx patterns.
 *
 * The sending side (outbound/) looks the TXT record up, fetches and
 * caches the policy and decides; these functions only read what it hands
 * them.  No I/O, no allocation, no clock.
 */
#ifndef POSTERN_AUTH_MTASTS_H
#define POSTERN_AUTH_MTASTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sts_mode { STS_MODE_NONE, STS_MODE_TESTING, STS_MODE_ENFORCE };

/* Patterns one policy may hold here (RFC 8461 sets no limit; a policy
 * with more is refused by sts_policy_parse, with that reason). */
#define STS_MX_MAX 32
/* A pattern: "*." and a domain of at most 253 octets, and a NUL. */
#define STS_MX_SIZE 256
/* RFC 8461 3.1: id = 1*32(ALPHA / DIGIT); and a NUL. */
#define STS_ID_MAX 33
/* RFC 8461 3.2: max_age MUST be <= 31557600 seconds (about a year). */
#define STS_MAX_AGE_LIMIT 31557600u
/* A buffer that holds any reason sts_policy_parse gives. */
#define STS_ERR_SIZE 96

struct sts_policy {
	enum sts_mode mode;
	uint32_t max_age; /* seconds, <= STS_MAX_AGE_LIMIT */
	size_t n_mx;
	/* As written in the policy ("mail.example.com", "*.example.net"):
	 * ASCII letters, digits, "-" and "."; case kept. */
	char mx[STS_MX_MAX][STS_MX_SIZE];
};

/*
 * Picks the MTA-STS record among the n TXT records of _mta-sts.DOMAIN
 * (txt[i], len[i] octets, each the concatenation of its strings; not
 * NUL-terminated).  RFC 8461 3.1: records that do not begin with
 * "v=STSv1" and then ";" (spaces or tabs allowed before it, as the
 * grammar's delimiter allows) are discarded; exactly one must remain and
 * it must be valid: fields split by ";", an id=1*32(ALPHA / DIGIT),
 * other name=value fields ignored, the first id counting when repeated.
 * Returns 0 with the id in id[], or -1 (no usable record: the domain has
 * no MTA-STS policy; id is "").
 */
int sts_txt_pick(const char *const *txt, const size_t *len, size_t n,
		 char id[STS_ID_MAX]);

/*
 * Parses the policy file body[0..len) into *p (RFC 8461 3.2): lines end
 * in LF or CRLF (the last may end in neither); each is "key:" then
 * spaces or tabs and a value; keys are case-sensitive; version: STSv1,
 * mode: testing|enforce|none and max_age: 1*10 DIGIT <= 31557600 are
 * required once (a repeat is ignored, the first counts), mx: ["*."]
 * domain (A-labels only) at least once unless mode is none; other keys
 * are ignored when their line is well formed.  One leniency: empty
 * lines (or lines of only spaces and tabs) are skipped.
 * Returns 0, or -1 with a one-line reason in err (errsize bytes; e.g.
 * "line 3: max_age above 31557600") and *p zeroed.
 */
int sts_policy_parse(const char *body, size_t len, struct sts_policy *p,
		     char *err, size_t errsize);

/*
 * True when host (an MX host name as DNS gave it: any case, maybe with a
 * trailing dot; A-labels for IDNs) matches one of p's mx patterns (RFC
 * 8461 4.1): the same name ignoring ASCII case, or for "*.rest" a host
 * whose leftmost label is not empty and whose remainder is rest, so
 * "*.example.com" matches "mail.example.com" but neither "example.com"
 * nor "a.b.example.com".
 */
bool sts_mx_match(const struct sts_policy *p, const char *host);

/*
 * The canonical lines of *p, as RFC 8460 4.3's "policy-string" wants
 * them: "version: STSv1", "mode: M", one "mx: X" per pattern, "max_age:
 * N".  Writes them NUL-terminated into buf (size bytes) and points
 * out[0..] at them, at most max.  Returns how many were written; fewer
 * than 3 + p->n_mx when buf or max is too small.
 */
size_t sts_policy_strings(const struct sts_policy *p, char *buf, size_t size,
			  const char **out, size_t max);

/* "none", "testing", "enforce". */
const char *sts_mode_name(enum sts_mode m);

#endif
