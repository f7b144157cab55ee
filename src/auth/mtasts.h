/*
 * mtasts.h - MTA-STS (RFC 8461) as pure functions: the _mta-sts TXT
 * record, the policy file, and which MX hosts a policy allows.  The
 * sending side (policy/tlspolicy.c) looks up and fetches; these read.
 * No I/O, no allocation.
 */
#ifndef POSTERN_AUTH_MTASTS_H
#define POSTERN_AUTH_MTASTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sts_mode { STS_MODE_NONE, STS_MODE_TESTING, STS_MODE_ENFORCE };

#define STS_MX_MAX 32
#define STS_ID_MAX 33 /* 1*32 (ALPHA / DIGIT), RFC 8461 3.1 */
#define STS_MAX_AGE_MAX 31557600u /* RFC 8461 3.2: about a year */

struct sts_policy {
	enum sts_mode mode;
	uint32_t max_age; /* seconds */
	size_t n_mx;
	char mx[STS_MX_MAX][256]; /* patterns, lower case: "mx.example.com"
				   * or "*.example.com" */
};

/*
 * The TXT records of _mta-sts.DOMAIN, n of them, each its strings
 * joined (len[i] its length, or NULL: NUL-terminated): RFC 8461 3.1 -
 * records not beginning "v=STSv1;" are dropped; exactly one must remain
 * and parse.  0 with its id copied into id, -1: no usable record.
 */
int sts_txt_pick(const char *const *txt, const size_t *len, size_t n,
		 char id[STS_ID_MAX]);

/*
 * The policy file (RFC 8461 3.2): "key: value" lines ending in LF or
 * CRLF; version STSv1, mode, max_age and (unless mode is none) one mx
 * or more are required, unknown keys are ignored, a repeated key other
 * than mx keeps its first value.  0, or -1 with what is wrong in err.
 */
int sts_policy_parse(const char *body, size_t len, struct sts_policy *p,
		     char *err, size_t errsize);

/*
 * RFC 8461 4.1: host (an MX host name, any case, with or without its
 * trailing dot) matches one of p's mx patterns - exactly, or "*.rest"
 * where host is one label followed by ".rest".
 */
bool sts_mx_match(const struct sts_policy *p, const char *host);

/*
 * The policy's canonical lines ("version: STSv1", "mode: enforce", each
 * "mx: ...", "max_age: N") for RFC 8460's policy-string: pointers into
 * buf in out[0..return), at most max.
 */
size_t sts_policy_strings(const struct sts_policy *p, char *buf, size_t size,
			  const char **out, size_t max);

#endif
