/*
 * fuzz_auth_tlsrpt.c - libFuzzer target for SMTP TLS Reporting
 * (src/auth/tlsrpt.c).
 *
 * Input: TXT records split by LF, then a NUL, then up to 12 strings
 * split by NUL that fill a report's text fields (the first 16 octets of
 * the last part, when there are that many, give its two times).
 * Checks: picked rua URIs are mailto: or https:, shorter than
 * TLSRPT_RUA_SIZE, and a decoded mailto address holds an "@" and no
 * space, control or ","; the report's JSON is always valid JSON (a
 * strict checker below), whatever octets the strings hold; a file name
 * has 3 or 4 "!" and no "/", a Subject no CR or LF.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/tlsrpt.h"

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			__builtin_trap();                                      \
	} while (0)

#define FUZZ_TXT_MAX 8
#define FUZZ_RUA_MAX 4
#define FUZZ_PARTS 12
#define FUZZ_DEPTH_MAX 16
#define FUZZ_BUF 1024

/* ---- a strict JSON checker (RFC 8259) that stops at the NUL ---- */

struct fuzz_json {
	const unsigned char *s;
	int depth;
};

static bool fuzz_json_value(struct fuzz_json *j);

static void
fuzz_json_ws(struct fuzz_json *j)
{
	while (*j->s == ' ' || *j->s == '\t' || *j->s == '\r' || *j->s == '\n')
		j->s++;
}

static bool
fuzz_is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* One UTF-8 sequence of 2 to 4 octets (RFC 3629), advancing past it. */
static bool
fuzz_json_utf8(struct fuzz_json *j)
{
	const unsigned char *s = j->s;
	unsigned char lo = 0x80, hi = 0xbf;
	int n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return false;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return false;
	for (int k = 2; k < n; k++)
		if (s[k] < 0x80 || s[k] > 0xbf)
			return false;
	j->s += n;
	return true;
}

static bool
fuzz_json_string(struct fuzz_json *j)
{
	if (*j->s != '"')
		return false;
	j->s++;
	while (*j->s != '"') {
		if (*j->s < 0x20)
			return false; /* a control, or the NUL */
		if (*j->s == '\\') {
			j->s++;
			if (*j->s == 'u') {
				for (int k = 1; k <= 4; k++)
					if (!fuzz_is_hex(j->s[k]))
						return false;
				j->s += 5;
			} else if (*j->s != '\0' &&
				   strchr("\"\\/bfnrt", *j->s) != NULL) {
				j->s++;
			} else {
				return false;
			}
		} else if (*j->s >= 0x80) {
			if (!fuzz_json_utf8(j))
				return false;
		} else {
			j->s++;
		}
	}
	j->s++;
	return true;
}

static bool
fuzz_json_members(struct fuzz_json *j, unsigned char close, bool is_object)
{
	j->s++;
	fuzz_json_ws(j);
	if (*j->s == close) {
		j->s++;
		return true;
	}
	for (;;) {
		fuzz_json_ws(j);
		if (is_object) {
			if (!fuzz_json_string(j))
				return false;
			fuzz_json_ws(j);
			if (*j->s != ':')
				return false;
			j->s++;
		}
		if (!fuzz_json_value(j))
			return false;
		fuzz_json_ws(j);
		if (*j->s == close) {
			j->s++;
			return true;
		}
		if (*j->s != ',')
			return false;
		j->s++;
	}
}

static bool
fuzz_json_value(struct fuzz_json *j)
{
	bool is_ok;

	fuzz_json_ws(j);
	if (++j->depth > FUZZ_DEPTH_MAX)
		return false;
	if (*j->s == '{') {
		is_ok = fuzz_json_members(j, '}', true);
	} else if (*j->s == '[') {
		is_ok = fuzz_json_members(j, ']', false);
	} else if (*j->s == '"') {
		is_ok = fuzz_json_string(j);
	} else {
		const unsigned char *start = j->s;

		while (*j->s >= '0' && *j->s <= '9')
			j->s++;
		is_ok = j->s > start && (*start != '0' || j->s == start + 1);
	}
	j->depth--;
	return is_ok;
}

static bool
fuzz_json_is_valid(const char *s)
{
	struct fuzz_json j = {(const unsigned char *)s, 0};

	if (!fuzz_json_value(&j))
		return false;
	fuzz_json_ws(&j);
	return *j.s == '\0';
}

/* ---- the target ---- */

static void
fuzz_txt(const char *s, size_t len)
{
	static char rua[FUZZ_RUA_MAX][TLSRPT_RUA_SIZE];
	const char *txt[FUZZ_TXT_MAX];
	size_t lens[FUZZ_TXT_MAX], n = 0, pos = 0, got;
	char addr[FUZZ_BUF];

	while (n < FUZZ_TXT_MAX && pos <= len) {
		const char *nl = memchr(s + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - s) : len;

		txt[n] = s + pos;
		lens[n++] = end - pos;
		pos = end + 1;
	}
	got = tlsrpt_txt_pick(txt, lens, n, rua, FUZZ_RUA_MAX);
	FUZZ_CHECK(got <= FUZZ_RUA_MAX);
	for (size_t k = 0; k < got; k++) {
		FUZZ_CHECK(strnlen(rua[k], TLSRPT_RUA_SIZE) < TLSRPT_RUA_SIZE);
		FUZZ_CHECK(strncmp(rua[k], "mailto:", 7) == 0 ||
			   strncmp(rua[k], "https:", 6) == 0);
		FUZZ_CHECK(tlsrpt_rua_is_https(rua[k]) == (rua[k][0] == 'h'));
		if (tlsrpt_rua_mailto(rua[k], addr, sizeof addr)) {
			FUZZ_CHECK(strchr(addr, '@') != NULL);
			for (const char *c = addr; *c != '\0'; c++)
				FUZZ_CHECK((unsigned char)*c > ' ' &&
					   *c != 0x7f && *c != ',');
		} else {
			FUZZ_CHECK(addr[0] == '\0');
		}
		(void)tlsrpt_rua_mailto(rua[k], addr, 3);
		FUZZ_CHECK(strlen(addr) < 3);
	}
}

/* Copies s into a fixed field, cut to fit. */
static void
fuzz_set(char *dst, size_t size, const char *s)
{
	(void)snprintf(dst, size, "%s", s);
}

static void
fuzz_report(char **part, size_t n_parts, int64_t t0, int64_t t1)
{
	static struct tlsrpt_failure f[2];
	static struct tlsrpt_policy p;
	static struct tlsrpt_report r;
	const char *const *strings = (const char *const *)part;
	char *json;

#define FUZZ_PART(i) ((i) < n_parts ? part[i] : "")
	memset(f, 0, sizeof f);
	memset(&p, 0, sizeof p);
	memset(&r, 0, sizeof r);
	fuzz_set(f[0].result_type, sizeof f[0].result_type, FUZZ_PART(0));
	fuzz_set(f[0].sending_mta_ip, sizeof f[0].sending_mta_ip, FUZZ_PART(1));
	fuzz_set(f[0].receiving_mx_hostname, sizeof f[0].receiving_mx_hostname,
		 FUZZ_PART(2));
	fuzz_set(f[0].receiving_mx_helo, sizeof f[0].receiving_mx_helo,
		 FUZZ_PART(3));
	fuzz_set(f[0].receiving_ip, sizeof f[0].receiving_ip, FUZZ_PART(4));
	fuzz_set(f[0].failure_reason_code, sizeof f[0].failure_reason_code,
		 FUZZ_PART(5));
	f[0].additional_information = FUZZ_PART(6);
	f[0].count = (uint64_t)t0;
	fuzz_set(f[1].result_type, sizeof f[1].result_type,
		 TLSRPT_STS_POLICY_INVALID);
	fuzz_set(p.policy_type, sizeof p.policy_type, FUZZ_PART(7));
	fuzz_set(p.policy_domain, sizeof p.policy_domain, FUZZ_PART(8));
	fuzz_set(p.mx_host, sizeof p.mx_host, FUZZ_PART(9));
	p.policy_strings = strings;
	p.n_strings = n_parts;
	p.n_success = (uint64_t)t1;
	p.failures = f;
	p.n_failures = 2;
	r.org_name = FUZZ_PART(10);
	r.contact_info = FUZZ_PART(11);
	fuzz_set(r.report_id, sizeof r.report_id, FUZZ_PART(2));
	r.start = t0;
	r.end = t1;
	r.policies = &p;
	r.n_policies = 1;
	json = tlsrpt_json(&r);
	FUZZ_CHECK(json != NULL);
	FUZZ_CHECK(fuzz_json_is_valid(json));
	free(json);
#undef FUZZ_PART
}

static void
fuzz_names(char **part, size_t n_parts, int64_t t0, int64_t t1)
{
	char buf[FUZZ_BUF];
	const char *a = n_parts > 0 ? part[0] : "";
	const char *b = n_parts > 1 ? part[1] : "";
	const char *c = n_parts > 2 ? part[2] : NULL;
	int64_t s, e;

	if (tlsrpt_filename(buf, sizeof buf, a, b, t0, t1, c, t0 & 1)) {
		size_t bangs = 0;

		for (const char *x = buf; *x != '\0'; x++)
			bangs += *x == '!';
		FUZZ_CHECK(bangs == 3 || bangs == 4);
		FUZZ_CHECK(strchr(buf, '/') == NULL);
	} else {
		FUZZ_CHECK(buf[0] == '\0');
	}
	if (tlsrpt_subject(buf, sizeof buf, a, b, c != NULL ? c : "id"))
		FUZZ_CHECK(strpbrk(buf, "\r\n") == NULL);
	else
		FUZZ_CHECK(buf[0] == '\0');
	(void)tlsrpt_subject(buf, 8, a, b, "x");
	FUZZ_CHECK(strlen(buf) < 8);
	(void)tlsrpt_result_type_is_known(a);
	tlsrpt_day_before(t0, &s, &e);
	FUZZ_CHECK(e - s == 86399 && s % 86400 == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t txt_len = nul != NULL ? (size_t)(nul - data) : size;
	char *rest, *part[FUZZ_PARTS];
	size_t rest_len, n_parts = 0;
	int64_t t0 = 0, t1 = 0;

	fuzz_txt((const char *)data, txt_len);
	if (nul == NULL)
		return 0;
	rest_len = size - txt_len - 1;
	rest = malloc(rest_len + 1);
	if (rest == NULL)
		abort();
	memcpy(rest, nul + 1, rest_len);
	rest[rest_len] = '\0';
	/* The strings; NULs in the input end each. */
	for (size_t pos = 0; n_parts < FUZZ_PARTS && pos <= rest_len;) {
		part[n_parts++] = rest + pos;
		pos += strlen(rest + pos) + 1;
	}
	if (rest_len >= 16) {
		memcpy(&t0, rest + rest_len - 16, sizeof t0);
		memcpy(&t1, rest + rest_len - 8, sizeof t1);
	}
	fuzz_report(part, n_parts, t0, t1);
	fuzz_names(part, n_parts, t0, t1);
	free(rest);
	return 0;
}
