/*
 * test_esmtp.c - ESMTP parameters after a path (src/proto/esmtp.c).
 *
 * Each case is the text after the path and the parameters it must yield,
 * written "KEY" or "KEY=value" joined by "|", then "END" or "ERR" for
 * how the list stops.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/esmtp.h"

#define TEST_TRACE_MAX 1024

struct esmtp_case {
	const char *name;
	const char *in;
	size_t in_len; /* 0: strlen(in) */
	const char *trace;
};

static const struct esmtp_case esmtp_cases[] = {
	{ "nothing", "", 0, "END" },
	{ "only_spaces", "   ", 0, "END" },
	{ "one_keyword", " SMTPUTF8", 0, "SMTPUTF8|END" },
	{ "keyword_and_value", " SIZE=1000", 0, "SIZE=1000|END" },
	{ "several_separated_by_spaces", " SIZE=1  BODY=8BITMIME   SMTPUTF8",
	  0, "SIZE=1|BODY=8BITMIME|SMTPUTF8|END" },
	{ "no_leading_space", "RET=HDRS", 0, "RET=HDRS|END" },
	{ "trailing_spaces", " RET=HDRS  ", 0, "RET=HDRS|END" },
	{ "keyword_with_digits_and_hyphen", " X-1a-B=v", 0, "X-1a-B=v|END" },
	{ "keyword_may_start_with_digit", " 8BIT", 0, "8BIT|END" },
	{ "value_with_plus_encoding", " ENVID=a+2Bb<c>", 0,
	  "ENVID=a+2Bb<c>|END" },
	{ "value_of_all_allowed_ascii", " K=!\"#$%&'()*+,-./0:;<>?@[\\]^_`{|}~",
	  0, "K=!\"#$%&'()*+,-./0:;<>?@[\\]^_`{|}~|END" },
	{ "utf8_value", " ORCPT=utf-8;\xc3\xa9@b", 0,
	  "ORCPT=utf-8;\xc3\xa9@b|END" },
	{ "empty_value_is_error", " SIZE=", 0, "ERR" },
	{ "empty_value_then_more_is_error", " SIZE= BODY=7BIT", 0, "ERR" },
	{ "equals_in_value_is_error", " K=a=b", 0, "ERR" },
	{ "keyword_starting_with_hyphen", " -K", 0, "ERR" },
	{ "keyword_with_underscore", " K_1", 0, "ERR" },
	{ "bare_equals", " =v", 0, "ERR" },
	{ "tab_separator_is_error", " SIZE=1\tBODY=7BIT", 0, "ERR" },
	{ "tab_before_is_error", "\tSIZE=1", 0, "ERR" },
	{ "control_in_value", " K=a\x01", 0, "ERR" },
	{ "del_in_value", " K=a\x7f", 0, "ERR" },
	{ "nul_in_value", " K=a\0b", 6, "ERR" },
	{ "cr_in_value", " K=a\r", 0, "ERR" },
	{ "malformed_utf8_value", " K=\xc3", 0, "ERR" },
	{ "overlong_utf8_value", " K=\xc0\xaf", 0, "ERR" },
	{ "error_after_good_ones", " A=1 B=2 C=", 0, "A=1|B=2|ERR" },
};

static void
test_esmtp_trace(const char *in, size_t len, char *trace)
{
	struct esmtp_param p;
	enum esmtp_result r;
	size_t pos = 0, at = 0, consumed;
	int w;

	trace[0] = '\0';
	for (;;) {
		r = esmtp_param_next(in + pos, len - pos, &p, &consumed);
		if (r == ESMTP_END) {
			assert_int_equal(consumed, len - pos);
			w = snprintf(trace + at, TEST_TRACE_MAX - at, "END");
			break;
		}
		if (r == ESMTP_ERR_SYNTAX) {
			w = snprintf(trace + at, TEST_TRACE_MAX - at, "ERR");
			break;
		}
		assert_true(consumed > 0 && consumed <= len - pos);
		assert_true(p.key >= in + pos && p.key_len > 0);
		if (p.value != NULL)
			w = snprintf(trace + at, TEST_TRACE_MAX - at,
				     "%.*s=%.*s|", (int)p.key_len, p.key,
				     (int)p.value_len, p.value);
		else
			w = snprintf(trace + at, TEST_TRACE_MAX - at, "%.*s|",
				     (int)p.key_len, p.key);
		assert_true(w > 0 && (size_t)w < TEST_TRACE_MAX - at);
		at += (size_t)w;
		pos += consumed;
	}
	assert_true(w > 0 && (size_t)w < TEST_TRACE_MAX - at);
}

static void
test_esmtp_params_split(void **state)
{
	char trace[TEST_TRACE_MAX];
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(esmtp_cases) / sizeof(esmtp_cases[0]); i++) {
		const struct esmtp_case *c = &esmtp_cases[i];

		len = c->in_len ? c->in_len : strlen(c->in);
		test_esmtp_trace(c->in, len, trace);
		if (strcmp(trace, c->trace) != 0)
			fail_msg("%s: got %s, want %s", c->name, trace,
				 c->trace);
	}
}

static void
test_esmtp_param_is_ignores_case(void **state)
{
	struct esmtp_param p;
	size_t consumed;

	(void)state;
	assert_int_equal(esmtp_param_next(" smtpUtf8", 9, &p, &consumed),
			 ESMTP_OK);
	assert_true(esmtp_param_is(&p, "SMTPUTF8"));
	assert_false(esmtp_param_is(&p, "SMTPUTF"));
	assert_false(esmtp_param_is(&p, "SMTPUTF89"));
	assert_null(p.value);
	assert_int_equal(esmtp_param_next("SIZE=0", 6, &p, &consumed),
			 ESMTP_OK);
	assert_true(esmtp_param_is(&p, "size"));
	assert_int_equal(p.value_len, 1);
}

struct uint_case {
	const char *in;
	bool is_ok;
	uint64_t value;
};

static const struct uint_case uint_cases[] = {
	{ "0", true, 0 },
	{ "1", true, 1 },
	{ "10485760", true, 10485760 },
	{ "00000000000000000001", true, 1 },
	{ "18446744073709551615", true, UINT64_MAX },
	{ "18446744073709551616", false, 0 },
	{ "99999999999999999999", false, 0 },
	{ "000000000000000000001", false, 0 },
	{ "", false, 0 },
	{ "-1", false, 0 },
	{ "+1", false, 0 },
	{ " 1", false, 0 },
	{ "1 ", false, 0 },
	{ "1a", false, 0 },
	{ "0x10", false, 0 },
};

static void
test_esmtp_parse_uint_is_strict_and_overflow_safe(void **state)
{
	uint64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(uint_cases) / sizeof(uint_cases[0]); i++) {
		const struct uint_case *c = &uint_cases[i];

		v = 42;
		if (esmtp_parse_uint(c->in, strlen(c->in), &v) != c->is_ok)
			fail_msg("\"%s\": want %d", c->in, c->is_ok);
		if (c->is_ok && v != c->value)
			fail_msg("\"%s\": got %ju", c->in, (uintmax_t)v);
		if (!c->is_ok)
			assert_int_equal(v, 42);
	}
	/* Only len octets are read. */
	assert_true(esmtp_parse_uint("12x", 2, &v));
	assert_int_equal(v, 12);
}

static void
test_esmtp_xtext_decodes_and_refuses_what_rfc_3461_forbids(void **state)
{
	static const struct {
		const char *in, *out; /* out NULL: refused */
	} cases[] = {
		{"", ""},
		{"QQ123", "QQ123"},
		{"rfc822;bob+2Bx@example.test", "rfc822;bob+x@example.test"},
		{"a+3Db", "a=b"},
		{"a+20b", "a b"},
		{"a+3db", NULL},  /* lower-case hex */
		{"a+3", NULL},	   /* cut short */
		{"a+", NULL},
		{"a=b", NULL},	   /* "=" must be encoded */
		{"a b", NULL},	   /* SP must be encoded */
		{"a+0Db", NULL},  /* decodes to CR */
		{"a+00b", NULL},  /* decodes to NUL */
	};
	char out[64];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool ok = esmtp_xtext_decode(cases[i].in, strlen(cases[i].in),
					     out, sizeof out, &n);
		if (ok != (cases[i].out != NULL))
			fail_msg("case %zu '%s'", i, cases[i].in);
		if (ok) {
			assert_string_equal(out, cases[i].out);
			assert_int_equal(n, strlen(cases[i].out));
		}
	}
	assert_false(esmtp_xtext_decode("abcdef", 6, out, 6, &n));
	assert_true(esmtp_xtext_decode("abcde", 5, out, 6, &n));
}

/*
 * RFC 8689 REQUIRETLS: each case is the text after the path of one MAIL,
 * read with esmtp_param_next as session_cmd_mail.c does, whether the
 * session is TLS, and the first verdict that is not OK (OK when none).
 */
static const struct requiretls_case {
	const char *name;
	const char *in;
	bool is_tls;
	enum esmtp_requiretls want;
} requiretls_cases[] = {
    {"alone_under_tls", " REQUIRETLS", true, ESMTP_REQUIRETLS_OK},
    {"any_case_under_tls", " RequireTls", true, ESMTP_REQUIRETLS_OK},
    {"beside_others_under_tls", " SIZE=10 REQUIRETLS BODY=8BITMIME", true,
     ESMTP_REQUIRETLS_OK},
    {"in_clear_text", " REQUIRETLS", false, ESMTP_REQUIRETLS_NO_TLS},
    {"with_a_value_in_clear_text", " REQUIRETLS=yes", false,
     ESMTP_REQUIRETLS_NO_TLS},
    {"with_a_value", " REQUIRETLS=yes", true, ESMTP_REQUIRETLS_SYNTAX},
    {"twice", " REQUIRETLS REQUIRETLS", true, ESMTP_REQUIRETLS_SYNTAX},
    {"twice_in_other_cases", " REQUIRETLS requiretls", true,
     ESMTP_REQUIRETLS_SYNTAX},
};

static void
test_esmtp_requiretls_only_alone_once_and_under_tls(void **state)
{
	(void)state;
	for (size_t i = 0;
	     i < sizeof requiretls_cases / sizeof requiretls_cases[0]; i++) {
		const struct requiretls_case *c = &requiretls_cases[i];
		enum esmtp_requiretls got = ESMTP_REQUIRETLS_OK;
		const char *p = c->in;
		size_t len = strlen(p), used;
		struct esmtp_param e;
		bool has_seen = false;

		while (got == ESMTP_REQUIRETLS_OK &&
		       esmtp_param_next(p, len, &e, &used) == ESMTP_OK) {
			if (esmtp_param_is(&e, "REQUIRETLS")) {
				got = esmtp_requiretls_check(&e, has_seen,
							     c->is_tls);
				has_seen = true;
			}
			p += used;
			len -= used;
		}
		if (got != c->want)
			fail_msg("%s: got %d, want %d", c->name, (int)got,
				 (int)c->want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_esmtp_params_split),
	    cmocka_unit_test(test_esmtp_param_is_ignores_case),
	    cmocka_unit_test(test_esmtp_parse_uint_is_strict_and_overflow_safe),
	    cmocka_unit_test(
		test_esmtp_xtext_decodes_and_refuses_what_rfc_3461_forbids),
	    cmocka_unit_test(
		test_esmtp_requiretls_only_alone_once_and_under_tls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
