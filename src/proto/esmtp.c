/*
 * esmtp.c - ESMTP parameters after MAIL/RCPT paths.
 *
 * The MAIL and RCPT handlers call esmtp_param_next() on what follows the
 * path, one parameter a call, and decide with esmtp_param_is() which
 * extension each belongs to (SIZE, BODY, SMTPUTF8, NOTIFY, ...); numbers
 * go through esmtp_parse_uint() (SIZE, BDAT chunk sizes).  Pure: slices
 * into the caller's line, no allocation.
 *
 * Grammar (RFC 5321 4.1.2): parameters are separated by one or more spaces;
 *   esmtp-param   = esmtp-keyword ["=" esmtp-value]
 *   esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 *   esmtp-value   = 1*(%d33-60 / %d62-126)
 * and RFC 6531 3.3 adds well-formed UTF-8 to values.  Anything else (an
 * empty value, a second "=", a tab or control, malformed UTF-8) is
 * ESMTP_ERR_SYNTAX, which the session answers with 501.  Whether the
 * keyword is known (555) or the value makes sense is the caller's concern,
 * except for REQUIRETLS (RFC 8689 2), whose verdict esmtp_requiretls_check()
 * gives: it depends on the session being TLS, not only on the text.
 */
#include <string.h>
#include <strings.h>

#include "proto/addr.h"
#include "proto/esmtp.h"

/* UINT64_MAX has 20 decimal digits (RFC 1870 SIZE, RFC 3030 BDAT). */
#define ESMTP_UINT_DIGITS_MAX 20

static bool
esmtp_is_alnum(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9');
}

static bool
esmtp_is_value_char(unsigned char ch)
{
	return (ch >= 33 && ch <= 60) || (ch >= 62 && ch <= 126) || ch >= 0x80;
}

enum esmtp_result
esmtp_param_next(const char *s, size_t len, struct esmtp_param *out,
		 size_t *consumed_out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t pos = 0, key_at, value_at;
	bool has_8bit = false;

	*consumed_out = 0;
	while (pos < len && p[pos] == ' ')
		pos++;
	if (pos == len) {
		*consumed_out = len;
		return ESMTP_END;
	}

	key_at = pos;
	if (!esmtp_is_alnum(p[pos]))
		return ESMTP_ERR_SYNTAX;
	while (pos < len && (esmtp_is_alnum(p[pos]) || p[pos] == '-'))
		pos++;
	out->key = s + key_at;
	out->key_len = pos - key_at;
	out->value = NULL;
	out->value_len = 0;
	if (pos < len && p[pos] == '=') {
		value_at = ++pos;
		while (pos < len && esmtp_is_value_char(p[pos])) {
			has_8bit |= p[pos] >= 0x80;
			pos++;
		}
		if (pos == value_at)
			return ESMTP_ERR_SYNTAX;
		if (has_8bit && !addr_utf8_valid(s + value_at, pos - value_at))
			return ESMTP_ERR_SYNTAX;
		out->value = s + value_at;
		out->value_len = pos - value_at;
	}
	if (pos < len && p[pos] != ' ')
		return ESMTP_ERR_SYNTAX;
	*consumed_out = pos;
	return ESMTP_OK;
}

bool
esmtp_param_is(const struct esmtp_param *p, const char *kw)
{
	size_t kw_len = strlen(kw);

	return p->key_len == kw_len && strncasecmp(p->key, kw, kw_len) == 0;
}

bool
esmtp_parse_uint(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > ESMTP_UINT_DIGITS_MAX)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
			return false;
	}
	*out = v;
	return true;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* RFC 3461: upper case only */
}

bool
esmtp_xtext_decode(const char *s, size_t len, char *out, size_t size,
		   size_t *out_len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			int hi, lo;
			if (len - i < 3)
				return false;
			hi = hex_value(s[i + 1]);
			lo = hex_value(s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
			if (c < 0x20 || c == 0x7f)
				return false;
		} else if (c < '!' || c > '~' || c == '=') {
			return false;
		}
		if (o + 1 >= size)
			return false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	*out_len = o;
	return true;
}

enum esmtp_requiretls
esmtp_requiretls_check(const struct esmtp_param *p, bool has_seen, bool is_tls)
{
	if (!is_tls)
		return ESMTP_REQUIRETLS_NO_TLS;
	if (p->value != NULL || has_seen)
		return ESMTP_REQUIRETLS_SYNTAX;
	return ESMTP_REQUIRETLS_OK;
}
