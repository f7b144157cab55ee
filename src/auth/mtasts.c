/*
 * mtasts.c - MTA-STS (RFC 8461): the TXT record, the policy file, MX
 * host matching, and the policy's canonical lines for TLS reports.
 *
 * Called by the sending side (outbound/), which does the DNS lookup, the
 * HTTPS fetch and the caching; and by the unit tests and the fuzzer.
 * Pure: no I/O, no allocation, no clock, no logging; a refused policy
 * says why in the caller's buffer.
 *
 * What is read, and how strictly (RFC 8461):
 *   3.1  TXT: a record that does not begin with "v=STSv1" *WSP ";" is
 *        discarded; not exactly one left = no policy.  The one left is
 *        held to the grammar: fields split by *WSP ";" *WSP, a trailing
 *        delimiter allowed, "id=" 1*32(ALPHA / DIGIT) required, other
 *        fields name "=" value (the grammar's sts-extension) ignored.
 *        An invalid record is "no policy" too (3.1 says so).
 *   3.2  Policy: key ":" *WSP value *WSP per line, LF or CRLF.  Keys and
 *        the values STSv1, testing, enforce, none are case-sensitive
 *        (%s in the grammar).  A repeated field other than mx: the first
 *        counts.  Unknown keys are ignored, but their line must still
 *        be well formed.  mx values must be A-labels.  Where we are
 *        kinder than the grammar: empty lines are skipped, since a file
 *        that ends in a blank line is common and means nothing else.
 *   4.1  Matching: RFC 6125 rules, the wildcard only as the whole
 *        leftmost label.
 * Refusing a policy fails open (the sender goes on as without MTA-STS,
 * or with its cached policy), so strictness costs no mail.
 */
#include <stdio.h>
#include <string.h>

#include "auth/mtasts.h"
#include "util/str.h"

#define STS_TXT_VERSION "v=STSv1"
#define STS_VERSION_VALUE "STSv1"
/* The grammar's ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-"
 * / "."), in both the TXT record and the policy. */
#define STS_NAME_LEN_MAX 32
#define STS_ID_LEN_MAX (STS_ID_MAX - 1)
#define STS_MAX_AGE_DIGITS 10
#define STS_DOMAIN_MAX 253
#define STS_LABEL_MAX 63
#define STS_NUM_SIZE 24 /* a decimal uint32_t and a NUL, with room */
#define STS_DECIMAL 10

/* Which required fields a policy has shown so far. */
struct sts_seen {
	bool has_version, has_mode, has_max_age;
};

static bool
sts_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
sts_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
sts_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       sts_is_digit(c);
}

static bool
sts_is_name_char(char c)
{
	return sts_is_alnum(c) || c == '_' || c == '-' || c == '.';
}

/* The TXT grammar's ext-value: %x21-3A / %x3C / %x3E-7E. */
static bool
sts_is_txt_value_char(char c)
{
	unsigned char u = (unsigned char)c;

	return u >= 0x21 && u <= 0x7e && u != ';' && u != '=';
}

static size_t
sts_skip_wsp(const char *s, size_t i, size_t len)
{
	while (i < len && sts_is_wsp(s[i]))
		i++;
	return i;
}

/* Length of the ext-name at s[i..len), 0 when there is none or it is
 * longer than the grammar allows. */
static size_t
sts_name_len(const char *s, size_t i, size_t len)
{
	size_t start = i;

	if (i >= len || !sts_is_alnum(s[i]))
		return 0;
	while (i < len && sts_is_name_char(s[i]))
		i++;
	return i - start > STS_NAME_LEN_MAX ? 0 : i - start;
}

/*
 * Length of the UTF-8 sequence of 2 to 4 octets at s[i..len) (RFC 3629's
 * UTF8-2 / UTF8-3 / UTF8-4: no overlong forms, no surrogates, nothing
 * above U+10FFFF), 0 when it is not one.
 */
static size_t
sts_utf8_len(const char *s, size_t i, size_t len)
{
	const unsigned char *u = (const unsigned char *)s + i;
	size_t n, avail = len - i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		n = 2;
	else if (u[0] >= 0xe0 && u[0] <= 0xef)
		n = 3;
	else if (u[0] >= 0xf0 && u[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (u[0] == 0xe0)
		lo = 0xa0;
	else if (u[0] == 0xed)
		hi = 0x9f;
	else if (u[0] == 0xf0)
		lo = 0x90;
	else if (u[0] == 0xf4)
		hi = 0x8f;
	if (avail < n || u[1] < lo || u[1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if (u[k] < 0x80 || u[k] > 0xbf)
			return 0;
	return n;
}

/* Offset just past "v=STSv1" *WSP ";", or 0 when s does not begin so. */
static size_t
sts_txt_version_end(const char *s, size_t len)
{
	size_t vlen = sizeof(STS_TXT_VERSION) - 1;
	size_t i;

	if (s == NULL || len < vlen || memcmp(s, STS_TXT_VERSION, vlen) != 0)
		return 0;
	i = sts_skip_wsp(s, vlen, len);
	return i < len && s[i] == ';' ? i + 1 : 0;
}

/* The fields after the version's ";" (see the top of the file). */
static int
sts_txt_fields(const char *s, size_t i, size_t len, char id[STS_ID_MAX])
{
	bool has_id = false;

	for (;;) {
		size_t name, value;

		i = sts_skip_wsp(s, i, len);
		if (i == len && has_id)
			return 0; /* after a trailing delimiter */
		name = sts_name_len(s, i, len);
		if (name == 0 || i + name >= len || s[i + name] != '=')
			return -1;
		value = i + name + 1;
		if (name == 2 && memcmp(s + i, "id", 2) == 0) {
			for (i = value; i < len && sts_is_alnum(s[i]); i++)
				;
			if (i == value || i - value > STS_ID_LEN_MAX)
				return -1;
			if (!has_id)
				(void)str_copy(id, STS_ID_MAX, s + value,
					       i - value);
			has_id = true;
		} else {
			for (i = value; i < len && sts_is_txt_value_char(s[i]);
			     i++)
				;
			if (i == value)
				return -1;
		}
		i = sts_skip_wsp(s, i, len);
		if (i == len)
			return has_id ? 0 : -1;
		if (s[i] != ';')
			return -1;
		i++;
	}
}

int
sts_txt_pick(const char *const *txt, const size_t *len, size_t n,
	     char id[STS_ID_MAX])
{
	size_t kept = 0, which = 0, start = 0;

	id[0] = '\0';
	for (size_t k = 0; k < n; k++) {
		size_t end = sts_txt_version_end(txt[k], len[k]);

		if (end != 0) {
			kept++;
			which = k;
			start = end;
		}
	}
	if (kept != 1)
		return -1;
	if (sts_txt_fields(txt[which], start, len[which], id) != 0) {
		id[0] = '\0';
		return -1;
	}
	return 0;
}

/* RFC 5321 Domain, ASCII only (3.2: A-labels), at most 253 octets. */
static bool
sts_domain_ok(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > STS_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!sts_is_alnum(s[i]) && !(s[i] == '-' && label > 0))
			return false;
		if (++label > STS_LABEL_MAX)
			return false;
	}
	return label > 0 && s[len - 1] != '-';
}

/* sts-policy-ext-value: vchar [*(SP / vchar) vchar], vchar being
 * %x21-7E or a UTF-8 sequence; v has no leading or trailing WSP. */
static bool
sts_value_ok(const char *v, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len;) {
		unsigned char u = (unsigned char)v[i];
		size_t n;

		if (u == ' ' || (u >= 0x21 && u <= 0x7e)) {
			i++;
			continue;
		}
		n = sts_utf8_len(v, i, len);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static int
sts_set_mode(struct sts_policy *p, const char *v, size_t len)
{
	static const struct {
		const char *name;
		enum sts_mode mode;
	} modes[] = {{"testing", STS_MODE_TESTING},
		     {"enforce", STS_MODE_ENFORCE},
		     {"none", STS_MODE_NONE}};

	for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
		if (strlen(modes[k].name) == len &&
		    memcmp(v, modes[k].name, len) == 0) {
			p->mode = modes[k].mode;
			return 0;
		}
	}
	return -1;
}

static int
sts_set_max_age(struct sts_policy *p, const char *v, size_t len,
		const char **why)
{
	uint64_t n = 0;

	*why = "max_age is not 1 to 10 digits";
	if (len == 0 || len > STS_MAX_AGE_DIGITS)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!sts_is_digit(v[i]))
			return -1;
		n = n * STS_DECIMAL + (uint64_t)(v[i] - '0');
	}
	*why = "max_age above 31557600";
	if (n > STS_MAX_AGE_LIMIT)
		return -1;
	p->max_age = (uint32_t)n;
	return 0;
}

static int
sts_add_mx(struct sts_policy *p, const char *v, size_t len, const char **why)
{
	size_t skip = len > 2 && v[0] == '*' && v[1] == '.' ? 2 : 0;

	*why = "bad mx pattern (a domain, or *. and a domain)";
	if (!sts_domain_ok(v + skip, len - skip))
		return -1;
	*why = "more than 32 mx lines";
	if (p->n_mx >= STS_MX_MAX)
		return -1;
	(void)str_copy(p->mx[p->n_mx++], STS_MX_SIZE, v, len);
	return 0;
}

/* Applies one known field's value; unknown keys and repeats are
 * ignored.  Returns 0, or -1 with *why set. */
static int
sts_field(struct sts_policy *p, struct sts_seen *seen, const char *key,
	  size_t klen, const char *v, size_t vlen, const char **why)
{
	if (klen == 2 && memcmp(key, "mx", 2) == 0)
		return sts_add_mx(p, v, vlen, why);
	if (klen == 7 && memcmp(key, "version", 7) == 0 && !seen->has_version) {
		seen->has_version = true;
		*why = "version is not STSv1";
		return vlen == sizeof(STS_VERSION_VALUE) - 1 &&
			       memcmp(v, STS_VERSION_VALUE, vlen) == 0
			   ? 0
			   : -1;
	}
	if (klen == 4 && memcmp(key, "mode", 4) == 0 && !seen->has_mode) {
		seen->has_mode = true;
		*why = "mode is not testing, enforce or none";
		return sts_set_mode(p, v, vlen);
	}
	if (klen == 7 && memcmp(key, "max_age", 7) == 0 && !seen->has_max_age) {
		seen->has_max_age = true;
		return sts_set_max_age(p, v, vlen, why);
	}
	return 0;
}

/* One line without its terminator. */
static int
sts_line(struct sts_policy *p, struct sts_seen *seen, const char *s, size_t len,
	 const char **why)
{
	size_t klen, v;

	while (len > 0 && sts_is_wsp(s[len - 1]))
		len--;
	if (len == 0)
		return 0;
	klen = sts_name_len(s, 0, len);
	*why = "not a key: value line";
	if (klen == 0 || klen >= len || s[klen] != ':')
		return -1;
	v = sts_skip_wsp(s, klen + 1, len);
	*why = "empty value or a character not allowed";
	if (!sts_value_ok(s + v, len - v))
		return -1;
	return sts_field(p, seen, s, klen, s + v, len - v, why);
}

static int
sts_fail(struct sts_policy *p, char *err, size_t errsize, size_t line,
	 const char *why)
{
	memset(p, 0, sizeof *p);
	if (errsize == 0)
		return -1;
	if (line > 0)
		(void)snprintf(err, errsize, "line %zu: %s", line, why);
	else
		(void)snprintf(err, errsize, "%s", why);
	return -1;
}

int
sts_policy_parse(const char *body, size_t len, struct sts_policy *p, char *err,
		 size_t errsize)
{
	struct sts_seen seen = {0};
	size_t pos = 0, line = 0;
	const char *why = NULL;

	memset(p, 0, sizeof *p);
	if (errsize > 0)
		err[0] = '\0';
	while (pos < len) {
		const char *nl = memchr(body + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - body) : len;
		size_t llen = end - pos;

		line++;
		if (nl != NULL && llen > 0 && body[end - 1] == '\r')
			llen--;
		if (sts_line(p, &seen, body + pos, llen, &why) != 0)
			return sts_fail(p, err, errsize, line, why);
		pos = nl != NULL ? end + 1 : len;
	}
	if (!seen.has_version)
		return sts_fail(p, err, errsize, 0, "no version: STSv1 line");
	if (!seen.has_mode)
		return sts_fail(p, err, errsize, 0, "no mode line");
	if (!seen.has_max_age)
		return sts_fail(p, err, errsize, 0, "no max_age line");
	if (p->mode != STS_MODE_NONE && p->n_mx == 0)
		return sts_fail(p, err, errsize, 0,
				"no mx line (required unless mode is none)");
	return 0;
}

/* One pattern against host[0..hlen) (no trailing dot). */
static bool
sts_pattern_match(const char *pat, const char *host, size_t hlen)
{
	const char *dot;

	if (pat[0] != '*')
		return str_eq_nocase(host, hlen, pat);
	/* "*.rest": exactly one whole, non-empty leftmost label. */
	dot = memchr(host, '.', hlen);
	if (dot == NULL || dot == host || memchr(host, '*', hlen) != NULL)
		return false;
	return str_eq_nocase(dot + 1, hlen - (size_t)(dot + 1 - host), pat + 2);
}

bool
sts_mx_match(const struct sts_policy *p, const char *host)
{
	size_t hlen = strlen(host);

	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	if (hlen == 0)
		return false;
	for (size_t k = 0; k < p->n_mx && k < STS_MX_MAX; k++)
		if (sts_pattern_match(p->mx[k], host, hlen))
			return true;
	return false;
}

/* Appends "key: value" and its NUL at *off; false when it does not fit. */
static bool
sts_put(char *buf, size_t size, size_t *off, const char *key, const char *value)
{
	int n;

	if (*off >= size)
		return false;
	n = snprintf(buf + *off, size - *off, "%s: %s", key, value);
	if (n < 0 || (size_t)n >= size - *off)
		return false;
	*off += (size_t)n + 1;
	return true;
}

size_t
sts_policy_strings(const struct sts_policy *p, char *buf, size_t size,
		   const char **out, size_t max)
{
	char age[STS_NUM_SIZE];
	size_t n_mx = p->n_mx < STS_MX_MAX ? p->n_mx : STS_MX_MAX;
	size_t off = 0, n = 0, total = n_mx + 3;

	(void)snprintf(age, sizeof age, "%u", (unsigned)p->max_age);
	for (size_t k = 0; k < total && n < max; k++) {
		const char *key, *value;
		size_t at = off;

		if (k == 0) {
			key = "version";
			value = STS_VERSION_VALUE;
		} else if (k == 1) {
			key = "mode";
			value = sts_mode_name(p->mode);
		} else if (k + 1 < total) {
			key = "mx";
			value = p->mx[k - 2];
		} else {
			key = "max_age";
			value = age;
		}
		if (!sts_put(buf, size, &off, key, value))
			break;
		out[n++] = buf + at;
	}
	return n;
}

const char *
sts_mode_name(enum sts_mode m)
{
	switch (m) {
	case STS_MODE_TESTING:
		return "testing";
	case STS_MODE_ENFORCE:
		return "enforce";
	case STS_MODE_NONE:
		break;
	}
	return "none";
}
