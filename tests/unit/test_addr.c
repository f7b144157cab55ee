/*
 * test_addr.c - RFC 5321 path parsing (src/proto/addr.c).
 *
 * Tables of path -> result, mailbox, consumed octets and the struct addr
 * booleans, written as letters: n null, p postmaster, r route, q quoted,
 * l literal, u utf8, b bare (no angle brackets).  The bare form and the
 * local-part limits are what [server] strict_envelopes switches.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/addr.h"

#define F_NULL ADDR_ALLOW_NULL
#define F_PM ADDR_ALLOW_POSTMASTER
#define F_UTF8 ADDR_ALLOW_UTF8
#define F_ALL (F_NULL | F_PM | F_UTF8)
#define F_BARE ADDR_ALLOW_BARE
#define F_STRICT ADDR_STRICT_LOCAL

struct addr_case {
	const char *name;
	const char *in;
	size_t in_len; /* 0: strlen(in) */
	unsigned flags;
	enum addr_result result;
	const char *mailbox; /* on ADDR_OK */
	size_t consumed;     /* on ADDR_OK */
	const char *bits;    /* on ADDR_OK */
};

static const struct addr_case valid_cases[] = {
	{ "plain", "<a@b>", 0, 0, ADDR_OK, "a@b", 5, "" },
	{ "params_follow", "<a@b> SIZE=10", 0, 0, ADDR_OK, "a@b", 5, "" },
	{ "stops_at_first_gt", "<a@b>>", 0, 0, ADDR_OK, "a@b", 5, "" },
	{ "dotted_local_and_domain", "<first.last+tag@mx.example.org>", 0,
	  0, ADDR_OK, "first.last+tag@mx.example.org", 31, "" },
	{ "percent_and_bang_are_atext", "<a%b!c@d>", 0, 0, ADDR_OK,
	  "a%b!c@d", 9, "" },
	{ "all_atext", "<!#$%&'*+-/=?^_`{|}~@x>", 0, 0, ADDR_OK,
	  "!#$%&'*+-/=?^_`{|}~@x", 23, "" },
	{ "quoted_local_with_space", "<\"a b\"@c>", 0, 0, ADDR_OK,
	  "\"a b\"@c", 9, "q" },
	{ "quoted_pair", "<\"a\\\"b\\\\\"@c>", 0, 0, ADDR_OK,
	  "\"a\\\"b\\\\\"@c", 12, "q" },
	{ "empty_quoted_local", "<\"\"@c>", 0, 0, ADDR_OK, "\"\"@c", 6,
	  "q" },
	{ "numeric_labels", "<a@1.2.3.4>", 0, 0, ADDR_OK, "a@1.2.3.4", 11,
	  "" },
	{ "hyphen_inside_label", "<a@b-c.d--e>", 0, 0, ADDR_OK,
	  "a@b-c.d--e", 12, "" },
	{ "single_label_domain", "<a@localhost>", 0, 0, ADDR_OK,
	  "a@localhost", 13, "" },
	{ "ipv4_literal", "<a@[192.0.2.1]>", 0, 0, ADDR_OK,
	  "a@[192.0.2.1]", 15, "l" },
	{ "ipv6_literal", "<a@[IPv6:2001:db8::1]>", 0, 0, ADDR_OK,
	  "a@[IPv6:2001:db8::1]", 22, "l" },
	{ "ipv6_tag_any_case", "<a@[ipv6:::1]>", 0, 0, ADDR_OK,
	  "a@[ipv6:::1]", 14, "l" },
	{ "ipv6_with_ipv4_tail", "<a@[IPv6:::ffff:192.0.2.1]>", 0, 0,
	  ADDR_OK, "a@[IPv6:::ffff:192.0.2.1]", 27, "l" },
	{ "general_literal", "<a@[x-tag:any=thing]>", 0, 0, ADDR_OK,
	  "a@[x-tag:any=thing]", 21, "l" },
	{ "source_route_dropped", "<@a,@b.c:d@e>", 0, 0, ADDR_OK, "d@e",
	  13, "r" },
	{ "one_hop_route", "<@a:d@e>", 0, 0, ADDR_OK, "d@e", 8, "r" },
	{ "null_path_allowed", "<>", 0, F_NULL, ADDR_OK, "", 2, "n" },
	{ "null_path_then_params", "<> BODY=8BITMIME", 0, F_NULL, ADDR_OK,
	  "", 2, "n" },
	{ "postmaster_allowed", "<Postmaster>", 0, F_PM, ADDR_OK,
	  "Postmaster", 12, "p" },
	{ "postmaster_any_case", "<pOSTMASTER>", 0, F_PM, ADDR_OK,
	  "pOSTMASTER", 12, "p" },
	{ "postmaster_at_domain_is_a_mailbox", "<Postmaster@x>", 0, 0,
	  ADDR_OK, "Postmaster@x", 14, "" },
	{ "utf8_allowed", "<\xce\xb4\xce\xbf@\xcf\x80.gr>", 0, F_UTF8,
	  ADDR_OK, "\xce\xb4\xce\xbf@\xcf\x80.gr", 12, "u" },
	{ "utf8_in_quoted_local", "<\"\xc3\xa9 x\"@b>", 0, F_UTF8, ADDR_OK,
	  "\"\xc3\xa9 x\"@b", 10, "qu" },
	{ "four_byte_utf8", "<\xf0\x9f\x93\xa7@b>", 0, F_UTF8, ADDR_OK,
	  "\xf0\x9f\x93\xa7@b", 8, "u" },
	{ "utf8_only_in_route_is_not_utf8_mailbox",
	  "<@\xc3\xa9:a@b>", 0, F_UTF8, ADDR_OK, "a@b", 9, "r" },
};

static const struct addr_case reject_cases[] = {
	{ "no_brackets", "a@b", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "empty", "", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "lt_alone", "<", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "no_at", "<a>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "empty_domain", "<a@>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "empty_local", "<@a>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "space_domain", "<a@ >", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "space_after_lt", "< a@b>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "space_before_gt", "<a@b >", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "missing_gt", "<a@b", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "double_dot_local", "<a..b@c>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "leading_dot_local", "<.a@b>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "trailing_dot_local", "<a.@b>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "double_dot_domain", "<a@b..c>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "leading_dot_domain", "<a@.b>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "label_leading_hyphen", "<a@-b.c>", 0, F_ALL, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "label_trailing_hyphen", "<a@b-.c>", 0, F_ALL, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "space_in_local", "<a b@c>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "trailing_dot_domain", "<a@b.c.>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "underscore_in_domain", "<a@b_c.d>", 0, F_ALL, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "two_ats", "<a@b@c>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "nul_in_local", "<a\0b@c>", 7, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "nul_in_domain", "<a@b\0c>", 7, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "cr_in_domain", "<a@b\r>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "lf_in_local", "<a\n@b>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "control_in_local", "<a\x01@b>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "del_in_local", "<a\x7f@b>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "tab_in_quoted", "<\"a\tb\"@c>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "cr_in_quoted", "<\"a\rb\"@c>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "quoted_pair_of_control", "<\"a\\\nb\"@c>", 0, F_ALL,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "unterminated_quote", "<\"ab@c>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "quote_inside_atom", "<a\"b\"@c>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "null_path_not_allowed", "<>", 0, F_PM | F_UTF8, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "postmaster_not_allowed", "<Postmaster>", 0, F_NULL | F_UTF8,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "postmaster_with_space", "<Postmaster >", 0, F_ALL,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "postmaster_after_route", "<@a:Postmaster>", 0, F_ALL,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "ipv4_three_parts", "<a@[1.2.3]>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "ipv4_octet_over_255", "<a@[256.1.1.1]>", 0, F_ALL,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "ipv4_leading_zero", "<a@[01.2.3.4]>", 0, F_ALL, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "ipv6_two_double_colons", "<a@[IPv6:1::2::3]>", 0, F_ALL,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "ipv6_tag_with_ipv4", "<a@[IPv6:1.2.3.4]>", 0, F_ALL,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "ipv6_without_tag", "<a@[::1]>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "empty_literal", "<a@[]>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "general_literal_empty_content", "<a@[tag:]>", 0, F_ALL,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "general_literal_tag_ends_in_hyphen", "<a@[tag-:x]>", 0, F_ALL,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "space_in_literal", "<a@[1.2.3.4 ]>", 0, F_ALL, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "unclosed_literal", "<a@[1.2.3.4>", 0, F_ALL, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "literal_then_text", "<a@[1.2.3.4]x>", 0, F_ALL, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "route_without_colon", "<@a>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "route_comma_without_at", "<@a,b:c@d>", 0, F_ALL, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "route_with_literal", "<@[1.2.3.4]:a@b>", 0, F_ALL,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "route_empty_domain", "<@:a@b>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "route_to_null", "<@a:>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "utf8_without_flag", "<\xc3\xa9@b>", 0, F_NULL | F_PM,
	  ADDR_ERR_NEEDS_UTF8, NULL, 0, NULL },
	{ "utf8_domain_without_flag", "<a@\xc3\xa9.fr>", 0, 0,
	  ADDR_ERR_NEEDS_UTF8, NULL, 0, NULL },
	{ "utf8_route_without_flag", "<@\xc3\xa9:a@b>", 0, 0,
	  ADDR_ERR_NEEDS_UTF8, NULL, 0, NULL },
	{ "utf8_but_bad_shape_is_syntax", "<\xc3\xa9>", 0, 0,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "utf8_overlong", "<a\xc0\xaf@b>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "utf8_overlong_3", "<a\xe0\x80\xaf@b>", 0, F_ALL, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "utf8_surrogate", "<\xed\xa0\x80@b>", 0, F_ALL, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "utf8_past_10ffff", "<\xf4\x90\x80\x80@b>", 0, F_ALL,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "utf8_lone_continuation", "<a\x80@b>", 0, F_ALL, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "utf8_truncated", "<a\xe2\x82@b>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "utf8_invalid_lead", "<a\xff@b>", 0, F_ALL, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "utf8_in_literal", "<a@[\xc3\xa9]>", 0, F_ALL, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "utf8_in_quoted_pair", "<\"\\\xc3\xa9\"@b>", 0, F_ALL,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
};

/*
 * ADDR_ALLOW_BARE (strict_envelopes = false): the mailbox runs to the
 * first space and must be all of that text; what follows is parameters.
 */
static const struct addr_case bare_cases[] = {
	{ "bare", "a@b", 0, F_ALL | F_BARE, ADDR_OK, "a@b", 3, "b" },
	{ "bare_then_params", "a@b SIZE=10 BODY=8BITMIME", 0, F_ALL | F_BARE,
	  ADDR_OK, "a@b", 3, "b" },
	{ "bare_then_two_spaces", "a@b  SIZE=10", 0, F_ALL | F_BARE, ADDR_OK,
	  "a@b", 3, "b" },
	{ "bare_equals_is_atext", "x=y@b SIZE=1", 0, F_ALL | F_BARE, ADDR_OK,
	  "x=y@b", 5, "b" },
	{ "bare_quoted_without_space", "\"a.b\"@c", 0, F_ALL | F_BARE,
	  ADDR_OK, "\"a.b\"@c", 7, "qb" },
	{ "bare_literal", "a@[192.0.2.1] SIZE=1", 0, F_ALL | F_BARE, ADDR_OK,
	  "a@[192.0.2.1]", 13, "lb" },
	{ "bare_utf8", "\xc3\xa9@b", 0, F_ALL | F_BARE, ADDR_OK,
	  "\xc3\xa9@b", 4, "ub" },
	{ "bare_postmaster", "postmaster NOTIFY=NEVER", 0, F_PM | F_BARE,
	  ADDR_OK, "postmaster", 10, "pb" },
	{ "brackets_still_work", "<a@b> SIZE=1", 0, F_ALL | F_BARE, ADDR_OK,
	  "a@b", 5, "" },
	{ "route_still_dropped_in_brackets", "<@r:a@b>", 0, F_ALL | F_BARE,
	  ADDR_OK, "a@b", 8, "r" },
	{ "null_still_in_brackets", "<>", 0, F_ALL | F_BARE, ADDR_OK, "", 2,
	  "n" },
	/* Refused bare: each could be read two ways, or is not a mailbox. */
	{ "bare_without_flag", "a@b", 0, F_ALL, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "bare_quoted_space", "\"a b\"@c", 0, F_ALL | F_BARE,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "bare_quoted_hides_param", "\"x SIZE=1\"@c", 0, F_ALL | F_BARE,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "bare_route", "@r:a@b", 0, F_ALL | F_BARE, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "bare_route_list", "@r,@s:a@b", 0, F_ALL | F_BARE, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "bare_empty", "", 0, F_ALL | F_BARE, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "bare_space_first", " a@b", 0, F_ALL | F_BARE, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "bare_param_alone", "SIZE=10", 0, F_ALL | F_BARE, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "bare_two_mailboxes", "a@b,c@d", 0, F_ALL | F_BARE, ADDR_ERR_SYNTAX,
	  NULL, 0, NULL },
	{ "bare_two_ats", "a@b@c", 0, F_ALL | F_BARE, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "bare_trailing_gt", "a@b>", 0, F_ALL | F_BARE, ADDR_ERR_SYNTAX, NULL,
	  0, NULL },
	{ "bare_then_bracketed", "a@b<c@d>", 0, F_ALL | F_BARE,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "bare_tab_before_param", "a@b\tSIZE=1", 0, F_ALL | F_BARE,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "bare_no_at", "a", 0, F_ALL | F_BARE, ADDR_ERR_SYNTAX, NULL, 0,
	  NULL },
	{ "bare_postmaster_not_allowed", "postmaster", 0, F_NULL | F_BARE,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "bare_postmaster_longer", "postmasterx", 0, F_PM | F_BARE,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "bare_utf8_without_flag", "\xc3\xa9@b", 0, F_NULL | F_BARE,
	  ADDR_ERR_NEEDS_UTF8, NULL, 0, NULL },
	{ "unclosed_bracket_is_not_bare", "<a@b", 0, F_ALL | F_BARE,
	  ADDR_ERR_SYNTAX, NULL, 0, NULL },
	{ "bracket_then_text_is_not_bare", "<a@b>x", 0, F_ALL | F_BARE,
	  ADDR_OK, "a@b", 5, "" },
};

static void
test_bits(const struct addr *a, char *out)
{
	size_t n = 0;

	if (a->is_null)
		out[n++] = 'n';
	if (a->is_postmaster)
		out[n++] = 'p';
	if (a->has_route)
		out[n++] = 'r';
	if (a->is_quoted)
		out[n++] = 'q';
	if (a->is_literal)
		out[n++] = 'l';
	if (a->is_utf8)
		out[n++] = 'u';
	if (a->is_bare)
		out[n++] = 'b';
	out[n] = '\0';
}

static void
test_cases(const struct addr_case *cases, size_t count)
{
	size_t i, len, consumed;
	struct addr a;
	enum addr_result r;
	char bits[8];

	for (i = 0; i < count; i++) {
		const struct addr_case *c = &cases[i];

		len = c->in_len ? c->in_len : strlen(c->in);
		consumed = 12345;
		r = addr_parse_path(c->in, len, c->flags, &a, &consumed);
		if (r != c->result)
			fail_msg("%s: result %d, want %d", c->name, r,
				 c->result);
		if (r != ADDR_OK) {
			assert_int_equal(consumed, 0);
			continue;
		}
		test_bits(&a, bits);
		if (strcmp(a.mailbox, c->mailbox) != 0 ||
		    consumed != c->consumed || strcmp(bits, c->bits) != 0)
			fail_msg("%s: got %s/%zu/%s, want %s/%zu/%s", c->name,
				 a.mailbox, consumed, bits, c->mailbox,
				 c->consumed, c->bits);
	}
}

static void
test_addr_valid_paths_parse(void **state)
{
	(void)state;
	test_cases(valid_cases, sizeof(valid_cases) / sizeof(valid_cases[0]));
}

static void
test_addr_bad_paths_are_rejected(void **state)
{
	(void)state;
	test_cases(reject_cases,
		   sizeof(reject_cases) / sizeof(reject_cases[0]));
}

static void
test_addr_bare_paths_only_with_the_flag(void **state)
{
	(void)state;
	test_cases(bare_cases, sizeof(bare_cases) / sizeof(bare_cases[0]));
	assert_int_equal(addr_envelope_flags(true), F_STRICT);
	assert_int_equal(addr_envelope_flags(false), F_BARE);
}

static void
test_addr_parts_are_split(void **state)
{
	struct addr a;
	size_t consumed;

	(void)state;
	assert_int_equal(addr_parse_path("<@x:\"q r\"@[IPv6:::1]>", 21, 0, &a,
					 &consumed), ADDR_OK);
	assert_string_equal(a.local, "\"q r\"");
	assert_string_equal(a.domain, "[IPv6:::1]");
	assert_string_equal(a.mailbox, "\"q r\"@[IPv6:::1]");
	assert_int_equal(addr_parse_path("<Postmaster>", 12, F_PM, &a,
					 &consumed), ADDR_OK);
	assert_string_equal(a.local, "Postmaster");
	assert_string_equal(a.domain, "");
}

/*
 * Builds "<" local "@" domain ">" into buf: local_len 'l's, domain_len
 * octets of 'd' with a dot after every label_len of them (0: no dots).
 */
static size_t
test_make_path(char *buf, size_t local_len, size_t domain_len,
	       size_t label_len)
{
	size_t n = 0, i;

	buf[n++] = '<';
	memset(buf + n, 'l', local_len);
	n += local_len;
	buf[n++] = '@';
	for (i = 0; i < domain_len; i++) {
		bool is_dot = label_len != 0 && i % (label_len + 1) ==
			      label_len && i + 1 < domain_len;

		buf[n++] = is_dot ? '.' : 'd';
	}
	buf[n++] = '>';
	buf[n] = '\0';
	return n;
}

static void
test_addr_length_limits(void **state)
{
	char buf[2048];
	struct addr a;
	size_t n, consumed;

	(void)state;
	/* RFC 5321's 64 octets bind only with ADDR_STRICT_LOCAL. */
	n = test_make_path(buf, SMTP_LOCAL_RFC_MAX, 1, 0);
	assert_int_equal(addr_parse_path(buf, n, F_STRICT, &a, &consumed),
			 ADDR_OK);
	assert_int_equal(strlen(a.local), SMTP_LOCAL_RFC_MAX);
	n = test_make_path(buf, SMTP_LOCAL_RFC_MAX + 1, 1, 0);
	assert_int_equal(addr_parse_path(buf, n, F_STRICT, &a, &consumed),
			 ADDR_ERR_LOCAL_TOO_LONG);
	assert_int_equal(addr_parse_path(buf, n, 0, &a, &consumed), ADDR_OK);
	assert_int_equal(strlen(a.local), SMTP_LOCAL_RFC_MAX + 1);

	/* Otherwise the path bounds it: "<" 252 "@" 1 ">" is 256 octets. */
	assert_int_equal(SMTP_LOCAL_MAX, SMTP_PATH_MAX - 4);
	n = test_make_path(buf, SMTP_LOCAL_MAX, 1, 0);
	assert_int_equal(n, SMTP_PATH_MAX);
	assert_int_equal(addr_parse_path(buf, n, 0, &a, &consumed), ADDR_OK);
	assert_int_equal(strlen(a.local), SMTP_LOCAL_MAX);
	assert_int_equal(strlen(a.mailbox), SMTP_PATH_MAX - 2);
	n = test_make_path(buf, SMTP_LOCAL_MAX + 1, 1, 0);
	assert_int_equal(addr_parse_path(buf, n, 0, &a, &consumed),
			 ADDR_ERR_LOCAL_TOO_LONG);
	n = test_make_path(buf, 200, 53, 0);
	assert_int_equal(n, SMTP_PATH_MAX);
	assert_int_equal(addr_parse_path(buf, n, 0, &a, &consumed), ADDR_OK);
	n = test_make_path(buf, 200, 54, 0);
	assert_int_equal(addr_parse_path(buf, n, 0, &a, &consumed),
			 ADDR_ERR_PATH_TOO_LONG);

	/* The same limits bare, the brackets counted as if written. */
	n = test_make_path(buf, SMTP_LOCAL_MAX, 1, 0);
	assert_int_equal(addr_parse_path(buf + 1, n - 2, F_BARE, &a,
					 &consumed), ADDR_OK);
	assert_int_equal(consumed, SMTP_PATH_MAX - 2);
	n = test_make_path(buf, 200, 54, 0);
	assert_int_equal(addr_parse_path(buf + 1, n - 2, F_BARE, &a,
					 &consumed), ADDR_ERR_PATH_TOO_LONG);
	n = test_make_path(buf, SMTP_LOCAL_RFC_MAX + 1, 1, 0);
	assert_int_equal(addr_parse_path(buf + 1, n - 2, F_BARE | F_STRICT,
					 &a, &consumed),
			 ADDR_ERR_LOCAL_TOO_LONG);

	n = test_make_path(buf, 1, SMTP_LABEL_MAX, 0);
	assert_int_equal(addr_parse_path(buf, n, 0, &a, &consumed), ADDR_OK);
	n = test_make_path(buf, 1, SMTP_LABEL_MAX + 1, 0);
	assert_int_equal(addr_parse_path(buf, n, 0, &a, &consumed),
			 ADDR_ERR_DOMAIN_TOO_LONG);
	assert_false(addr_is_domain(buf + 3, SMTP_LABEL_MAX + 1, false));

	/* A 255-octet domain is a domain, but its path is 259 octets. */
	n = test_make_path(buf, 1, SMTP_DOMAIN_MAX, 49);
	assert_int_equal(addr_parse_path(buf, n, 0, &a, &consumed),
			 ADDR_ERR_PATH_TOO_LONG);
	assert_true(addr_is_domain(buf + 3, SMTP_DOMAIN_MAX, false));
	n = test_make_path(buf, 1, SMTP_DOMAIN_MAX + 1, 49);
	assert_int_equal(addr_parse_path(buf, n, 0, &a, &consumed),
			 ADDR_ERR_DOMAIN_TOO_LONG);
	assert_false(addr_is_domain(buf + 3, SMTP_DOMAIN_MAX + 1, false));

	/* "<" 64 "@" 189 ">" is 256 octets: the longest strict path. */
	n = test_make_path(buf, SMTP_LOCAL_RFC_MAX, 189, 49);
	assert_int_equal(n, SMTP_PATH_MAX);
	assert_int_equal(addr_parse_path(buf, n, F_STRICT, &a, &consumed),
			 ADDR_OK);
	assert_int_equal(consumed, SMTP_PATH_MAX);
	assert_int_equal(strlen(a.mailbox), SMTP_PATH_MAX - 2);
	assert_int_equal(strlen(a.domain), 189);
	n = test_make_path(buf, SMTP_LOCAL_RFC_MAX, 190, 49);
	assert_int_equal(addr_parse_path(buf, n, F_STRICT, &a, &consumed),
			 ADDR_ERR_PATH_TOO_LONG);

	/* A source route counts towards the path as written. */
	n = (size_t)snprintf(buf, sizeof(buf), "<@%050d.%050d.%050d.%050d."
			     "%050d:a@b>", 0, 0, 0, 0, 0);
	assert_int_equal(addr_parse_path(buf, n, 0, &a, &consumed),
			 ADDR_ERR_PATH_TOO_LONG);
	n = (size_t)snprintf(buf, sizeof(buf), "<@%050d:a@b>", 0);
	assert_int_equal(addr_parse_path(buf, n, 0, &a, &consumed), ADDR_OK);

	/* A literal longer than a domain may be is too long, not syntax. */
	n = (size_t)snprintf(buf, sizeof(buf), "<a@[x:%0260d]>", 0);
	assert_int_equal(addr_parse_path(buf, n, 0, &a, &consumed),
			 ADDR_ERR_DOMAIN_TOO_LONG);
}

struct mailbox_case {
	const char *in;
	unsigned flags;
	enum addr_result result;
	const char *bits;
};

static const struct mailbox_case mailbox_cases[] = {
	{ "a@b", 0, ADDR_OK, "" },
	{ "\"x y\"@[192.0.2.1]", 0, ADDR_OK, "ql" },
	{ "<a@b>", 0, ADDR_ERR_SYNTAX, NULL },
	{ "a@b ", 0, ADDR_ERR_SYNTAX, NULL },
	{ "a@b.", 0, ADDR_ERR_SYNTAX, NULL },
	{ "@a:b@c", 0, ADDR_ERR_SYNTAX, NULL },
	{ "a", 0, ADDR_ERR_SYNTAX, NULL },
	{ "", 0, ADDR_ERR_SYNTAX, NULL },
	{ "", F_NULL, ADDR_OK, "n" },
	{ "Postmaster", 0, ADDR_ERR_SYNTAX, NULL },
	{ "postmaster", F_PM, ADDR_OK, "p" },
	{ "\xc3\xa9@b", 0, ADDR_ERR_NEEDS_UTF8, NULL },
	{ "\xc3\xa9@b", F_UTF8, ADDR_OK, "u" },
};

static void
test_addr_parse_mailbox_takes_bare_mailboxes(void **state)
{
	struct addr a;
	char bits[8], buf[512];
	size_t i, n;
	enum addr_result r;

	(void)state;
	for (i = 0; i < sizeof(mailbox_cases) / sizeof(mailbox_cases[0]);
	     i++) {
		const struct mailbox_case *c = &mailbox_cases[i];

		r = addr_parse_mailbox(c->in, strlen(c->in), c->flags, &a);
		if (r != c->result)
			fail_msg("\"%s\": result %d, want %d", c->in, r,
				 c->result);
		if (r != ADDR_OK)
			continue;
		test_bits(&a, bits);
		assert_string_equal(bits, c->bits);
		if (!a.is_null && !a.is_postmaster)
			assert_string_equal(a.mailbox, c->in);
	}
	/* 254 octets fit in a path, 255 do not. */
	n = test_make_path(buf, SMTP_LOCAL_RFC_MAX, 189, 49);
	assert_int_equal(addr_parse_mailbox(buf + 1, n - 2, 0, &a), ADDR_OK);
	n = test_make_path(buf, SMTP_LOCAL_RFC_MAX, 190, 49);
	assert_int_equal(addr_parse_mailbox(buf + 1, n - 2, 0, &a),
			 ADDR_ERR_PATH_TOO_LONG);
	/* A long local part (VERP, SRS), unless strict. */
	n = test_make_path(buf, SMTP_LOCAL_MAX, 1, 0);
	assert_int_equal(addr_parse_mailbox(buf + 1, n - 2, 0, &a), ADDR_OK);
	assert_int_equal(addr_parse_mailbox(buf + 1, n - 2, F_STRICT, &a),
			 ADDR_ERR_LOCAL_TOO_LONG);
	n = test_make_path(buf, SMTP_LOCAL_MAX + 1, 1, 0);
	assert_int_equal(addr_parse_mailbox(buf + 1, n - 2, 0, &a),
			 ADDR_ERR_LOCAL_TOO_LONG);
	n = test_make_path(buf, SMTP_LOCAL_RFC_MAX + 1, 1, 0);
	assert_int_equal(addr_parse_mailbox(buf + 1, n - 2, F_STRICT, &a),
			 ADDR_ERR_LOCAL_TOO_LONG);
}

struct domain_case {
	const char *in;
	bool allow_utf8;
	bool is_domain;
};

static const struct domain_case domain_cases[] = {
	{ "mx.example.org", false, true },
	{ "localhost", false, true },
	{ "[192.0.2.1]", false, true },
	{ "[IPv6:2001:db8::1]", false, true },
	{ "[x-y:z]", false, true },
	{ "", false, false },
	{ "mx.example.org.", false, false },
	{ ".example", false, false },
	{ "-mx.example", false, false },
	{ "mx_1.example", false, false },
	{ "mx example", false, false },
	{ "[192.0.2.1", false, false },
	{ "[192.0.2.1]x", false, false },
	{ "[300.0.2.1]", false, false },
	{ "192.0.2.1", false, true },
	{ "\xc3\xa9.fr", false, false },
	{ "\xc3\xa9.fr", true, true },
	{ "\xc3.fr", true, false },
	{ "a@b", false, false },
};

static void
test_addr_is_domain_checks_ehlo_args(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(domain_cases) / sizeof(domain_cases[0]); i++) {
		const struct domain_case *c = &domain_cases[i];

		if (addr_is_domain(c->in, strlen(c->in), c->allow_utf8) !=
		    c->is_domain)
			fail_msg("\"%s\": want %d", c->in, c->is_domain);
	}
}

static void
test_addr_utf8_valid_follows_rfc3629(void **state)
{
	(void)state;
	assert_true(addr_utf8_valid("", 0));
	assert_true(addr_utf8_valid("plain ascii", 11));
	assert_true(addr_utf8_valid("\xc2\x80", 2));
	assert_true(addr_utf8_valid("\xef\xbf\xbf", 3));
	assert_true(addr_utf8_valid("\xf4\x8f\xbf\xbf", 4));
	assert_false(addr_utf8_valid("\xc1\xbf", 2));
	assert_false(addr_utf8_valid("\xe0\x9f\xbf", 3));
	assert_false(addr_utf8_valid("\xed\xbf\xbf", 3));
	assert_false(addr_utf8_valid("\xf0\x8f\xbf\xbf", 4));
	assert_false(addr_utf8_valid("\xf5\x80\x80\x80", 4));
	assert_false(addr_utf8_valid("\xc2", 1));
	assert_false(addr_utf8_valid("\xc2\x41", 2));
	assert_false(addr_utf8_valid("\xe2\x82\xac", 2));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_valid_paths_parse),
		cmocka_unit_test(test_addr_bad_paths_are_rejected),
		cmocka_unit_test(test_addr_bare_paths_only_with_the_flag),
		cmocka_unit_test(test_addr_parts_are_split),
		cmocka_unit_test(test_addr_length_limits),
		cmocka_unit_test(test_addr_parse_mailbox_takes_bare_mailboxes),
		cmocka_unit_test(test_addr_is_domain_checks_ehlo_args),
		cmocka_unit_test(test_addr_utf8_valid_follows_rfc3629),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
