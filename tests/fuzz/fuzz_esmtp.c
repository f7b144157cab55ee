/*
 * fuzz_esmtp.c - libFuzzer target for the ESMTP parameter reader
 * (src/proto/esmtp.c).
 *
 * The input is the text after a path.  Checks: reading parameters until
 * ESMTP_END or an error always makes progress and stays inside the input;
 * each keyword and value keeps the RFC 5321 4.1.2 grammar; and
 * esmtp_parse_uint() agrees with a 128-bit reference on every value, and
 * on the whole input.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "proto/esmtp.h"

#define FUZZ_UINT_DIGITS_MAX 20

#define FUZZ_CHECK(cond)                                                      \
	do {                                                                  \
		if (!(cond))                                                  \
			__builtin_trap();                                     \
	} while (0)

static bool
fuzz_is_alnum(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9');
}

/* A reference for esmtp_parse_uint(), done in 128 bits. */
static bool
fuzz_ref_uint(const char *s, size_t len, uint64_t *out)
{
	unsigned __int128 v = 0;
	size_t i;

	if (len == 0 || len > FUZZ_UINT_DIGITS_MAX)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > UINT64_MAX)
		return false;
	*out = (uint64_t)v;
	return true;
}

static void
fuzz_uint(const char *s, size_t len)
{
	uint64_t a = 1, b = 2;
	bool ok_a = esmtp_parse_uint(s, len, &a);
	bool ok_b = fuzz_ref_uint(s, len, &b);

	FUZZ_CHECK(ok_a == ok_b);
	FUZZ_CHECK(!ok_a || a == b);
}

static void
fuzz_check_param(const struct esmtp_param *p)
{
	size_t i;

	FUZZ_CHECK(p->key_len > 0 && fuzz_is_alnum(p->key[0]));
	for (i = 0; i < p->key_len; i++)
		FUZZ_CHECK(fuzz_is_alnum(p->key[i]) || p->key[i] == '-');
	FUZZ_CHECK(esmtp_param_is(p, "SIZE") ==
		   (p->key_len == 4 && strncasecmp(p->key, "size", 4) == 0));
	if (p->value == NULL)
		return;
	FUZZ_CHECK(p->value == p->key + p->key_len + 1);
	FUZZ_CHECK(p->value_len > 0);
	for (i = 0; i < p->value_len; i++) {
		unsigned char ch = (unsigned char)p->value[i];

		FUZZ_CHECK(ch >= 33 && ch != '=' && ch != 127);
	}
	fuzz_uint(p->value, p->value_len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct esmtp_param p;
	enum esmtp_result r;
	size_t pos = 0, consumed;

	fuzz_uint(s, size);
	for (;;) {
		r = esmtp_param_next(s + pos, size - pos, &p, &consumed);
		if (r == ESMTP_ERR_SYNTAX)
			break;
		FUZZ_CHECK(consumed <= size - pos);
		if (r == ESMTP_END) {
			FUZZ_CHECK(pos + consumed == size);
			break;
		}
		FUZZ_CHECK(r == ESMTP_OK && consumed > 0);
		FUZZ_CHECK(p.key >= s + pos &&
			   p.key + p.key_len <= s + pos + consumed);
		FUZZ_CHECK(pos + consumed == size || s[pos + consumed] == ' ');
		fuzz_check_param(&p);
		pos += consumed;
	}
	return 0;
}
