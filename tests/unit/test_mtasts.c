/*
 * test_mtasts.c - MTA-STS (src/auth/mtasts.c): picking the _mta-sts TXT
 * record (RFC 8461 3.1), parsing the policy file and each way it can be
 * wrong (3.2), matching MX hosts against patterns (4.1), and the
 * policy's canonical lines for TLS reports (RFC 8460 4.3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/mtasts.h"

#define TXT_MAX 4
#define LINES_MAX (STS_MX_MAX + 3)
#define STRINGS_BUF 4096

struct txt_case {
	const char *txt[TXT_MAX];
	const char *id; /* NULL: no usable record */
};

static int
pick(const struct txt_case *c, char id[STS_ID_MAX])
{
	size_t len[TXT_MAX], n = 0;

	while (n < TXT_MAX && c->txt[n] != NULL) {
		len[n] = strlen(c->txt[n]);
		n++;
	}
	return sts_txt_pick(c->txt, len, n, id);
}

static void
test_sts_txt_pick_table(void **state)
{
	static const struct txt_case cases[] = {
	    /* RFC 8461 3.1's example. */
	    {{"v=STSv1; id=20160831085700Z;"}, "20160831085700Z"},
	    {{"v=STSv1;id=abc"}, "abc"},
	    {{"v=STSv1 ; id=abc ; "}, "abc"},
	    {{"v=STSv1;\tid=abc;\t"}, "abc"},
	    /* Other records are discarded. */
	    {{"v=spf1 -all", "v=STSv1; id=x1", "google-site=abc"}, "x1"},
	    /* Unknown fields ignored, the order is free. */
	    {{"v=STSv1; ext=foo.bar; id=A1b2"}, "A1b2"},
	    /* The first id counts. */
	    {{"v=STSv1; id=first; id=second"}, "first"},
	    /* 32 characters is the most. */
	    {{"v=STSv1; id=0123456789abcdef0123456789abcdef"},
	     "0123456789abcdef0123456789abcdef"},
	    /* Two records: none.  None: none. */
	    {{"v=STSv1; id=a", "v=STSv1; id=b"}, NULL},
	    {{NULL}, NULL},
	    {{"v=spf1 -all"}, NULL},
	    /* Not "v=STSv1" then ";": discarded. */
	    {{"v=STSv10; id=a"}, NULL},
	    {{"V=STSv1; id=a"}, NULL},
	    {{" v=STSv1; id=a"}, NULL},
	    {{"v=STSv1"}, NULL},
	    {{"v=STSv1 id=a"}, NULL},
	    /* Kept, but invalid: no policy (not the other record). */
	    {{"v=STSv1; id=a", "v=STSv1;"}, NULL},
	    {{"v=STSv1;"}, NULL},
	    {{"v=STSv1; foo=bar"}, NULL},
	    {{"v=STSv1; id="}, NULL},
	    {{"v=STSv1; id=a-b"}, NULL},
	    {{"v=STSv1; id=0123456789abcdef0123456789abcdef0"}, NULL},
	    {{"v=STSv1; ID=abc"}, NULL},
	    {{"v=STSv1; id=a;; ext=1"}, NULL},
	    {{"v=STSv1; id=a; ext="}, NULL},
	    {{"v=STSv1; id=a; ext=a b"}, NULL},
	    {{"v=STSv1; id=a; _x=1"}, NULL},
	};
	char id[STS_ID_MAX];

	(void)state;
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		int r = pick(&cases[k], id);

		if (cases[k].id == NULL) {
			if (r != -1 || id[0] != '\0')
				fail_msg("case %zu: picked \"%s\"", k, id);
		} else {
			if (r != 0)
				fail_msg("case %zu: no record", k);
			assert_string_equal(id, cases[k].id);
		}
	}
}

static void
test_sts_txt_pick_nul_and_length(void **state)
{
	/* The length counts, not a NUL: bytes past len are not read. */
	const char *txt[] = {"v=STSv1; id=abcdef"};
	size_t len[] = {sizeof "v=STSv1; id=abc" - 1};
	const char *nul[] = {"v=STSv1; id=ab\0cd"};
	size_t nul_len[] = {sizeof "v=STSv1; id=ab\0cd" - 1};
	char id[STS_ID_MAX];

	(void)state;
	assert_int_equal(sts_txt_pick(txt, len, 1, id), 0);
	assert_string_equal(id, "abc");
	assert_int_equal(sts_txt_pick(nul, nul_len, 1, id), -1);
}

static int
parse(const char *body, struct sts_policy *p, char *err, size_t errsize)
{
	return sts_policy_parse(body, strlen(body), p, err, errsize);
}

static void
test_sts_policy_rfc_examples(void **state)
{
	/* RFC 8461 3.2's examples, CRLF and LF. */
	static const char crlf[] = "version: STSv1\r\n"
				   "mode: enforce\r\n"
				   "mx: mail.example.com\r\n"
				   "mx: *.example.net\r\n"
				   "mx: backupmx.example.com\r\n"
				   "max_age: 604800\r\n";
	static const char lf[] = "version: STSv1\nmode: testing\n"
				 "mx: mail.example.com\nmax_age: 86400";
	struct sts_policy p;
	char err[STS_ERR_SIZE];

	(void)state;
	assert_int_equal(parse(crlf, &p, err, sizeof err), 0);
	assert_string_equal(err, "");
	assert_int_equal(p.mode, STS_MODE_ENFORCE);
	assert_int_equal(p.max_age, 604800);
	assert_int_equal(p.n_mx, 3);
	assert_string_equal(p.mx[0], "mail.example.com");
	assert_string_equal(p.mx[1], "*.example.net");
	assert_string_equal(p.mx[2], "backupmx.example.com");

	assert_int_equal(parse(lf, &p, err, sizeof err), 0);
	assert_int_equal(p.mode, STS_MODE_TESTING);
	assert_int_equal(p.max_age, 86400);
	assert_int_equal(p.n_mx, 1);
}

static void
test_sts_policy_accepted_forms(void **state)
{
	static const struct {
		const char *body;
		enum sts_mode mode;
		uint32_t max_age;
		size_t n_mx;
	} cases[] = {
	    /* mode none needs no mx. */
	    {"version: STSv1\nmode: none\nmax_age: 0\n", STS_MODE_NONE, 0, 0},
	    /* Order is free; no space after ":"; trailing spaces. */
	    {"max_age:31557600\nmx:a.example\nmode:enforce \t\n"
	     "version:\tSTSv1",
	     STS_MODE_ENFORCE, 31557600, 1},
	    /* Unknown keys ignored, UTF-8 in their values allowed. */
	    {"version: STSv1\nmode: testing\nmx: a.example\n"
	     "max_age: 10\nfoo_bar.x-1: caf\xc3\xa9 au lait\n"
	     "Mode: whatever\n",
	     STS_MODE_TESTING, 10, 1},
	    /* A repeat of a single field is ignored, the first counts. */
	    {"version: STSv1\nmode: enforce\nmode: none\nmx: a.example\n"
	     "max_age: 5\nmax_age: 99999999999\nversion: STSv2\n",
	     STS_MODE_ENFORCE, 5, 1},
	    /* Blank lines are skipped. */
	    {"\r\nversion: STSv1\r\n\r\nmode: none\r\n \t\r\nmax_age: 1\r\n"
	     "\r\n",
	     STS_MODE_NONE, 1, 0},
	    /* Leading zeros, 10 digits. */
	    {"version: STSv1\nmode: none\nmax_age: 0000086400\n", STS_MODE_NONE,
	     86400, 0},
	    /* mode none may list mx. */
	    {"version: STSv1\nmode: none\nmx: a.example\nmax_age: 1\n",
	     STS_MODE_NONE, 1, 1},
	};
	struct sts_policy p;
	char err[STS_ERR_SIZE];

	(void)state;
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		if (parse(cases[k].body, &p, err, sizeof err) != 0)
			fail_msg("case %zu: %s", k, err);
		assert_int_equal(p.mode, cases[k].mode);
		assert_int_equal(p.max_age, cases[k].max_age);
		assert_int_equal(p.n_mx, cases[k].n_mx);
	}
}

static void
test_sts_policy_errors(void **state)
{
	static const struct {
		const char *body, *err;
	} cases[] = {
	    {"", "no version: STSv1 line"},
	    {"mode: enforce\nmx: a.example\nmax_age: 1\n",
	     "no version: STSv1 line"},
	    {"version: STSv1\nmx: a.example\nmax_age: 1\n", "no mode line"},
	    {"version: STSv1\nmode: enforce\nmx: a.example\n",
	     "no max_age line"},
	    {"version: STSv1\nmode: enforce\nmax_age: 1\n",
	     "no mx line (required unless mode is none)"},
	    {"version: STSv1\nmode: testing\nmax_age: 1\n",
	     "no mx line (required unless mode is none)"},
	    {"version: STSv2\n", "line 1: version is not STSv1"},
	    {"version: stsv1\n", "line 1: version is not STSv1"},
	    {"version: STSv1\nmode: Enforce\n",
	     "line 2: mode is not testing, enforce or none"},
	    {"version: STSv1\nmode: report\n",
	     "line 2: mode is not testing, enforce or none"},
	    {"version: STSv1\nmode: none\nmax_age: 31557601\n",
	     "line 3: max_age above 31557600"},
	    {"version: STSv1\nmode: none\nmax_age: 9999999999\n",
	     "line 3: max_age above 31557600"},
	    {"version: STSv1\nmode: none\nmax_age: 00000000001\n",
	     "line 3: max_age is not 1 to 10 digits"},
	    {"version: STSv1\nmode: none\nmax_age: -1\n",
	     "line 3: max_age is not 1 to 10 digits"},
	    {"version: STSv1\nmode: none\nmax_age: 1 2\n",
	     "line 3: max_age is not 1 to 10 digits"},
	    {"version: STSv1\nmx: *.*.example\n",
	     "line 2: bad mx pattern (a domain, or *. and a domain)"},
	    {"version: STSv1\nmx: mail*.example\n",
	     "line 2: bad mx pattern (a domain, or *. and a domain)"},
	    {"version: STSv1\nmx: *\n",
	     "line 2: bad mx pattern (a domain, or *. and a domain)"},
	    {"version: STSv1\nmx: mail.example.com.\n",
	     "line 2: bad mx pattern (a domain, or *. and a domain)"},
	    {"version: STSv1\nmx: -a.example\n",
	     "line 2: bad mx pattern (a domain, or *. and a domain)"},
	    {"version: STSv1\nmx: a..example\n",
	     "line 2: bad mx pattern (a domain, or *. and a domain)"},
	    {"version: STSv1\nmx: b\xc3\xbc"
	     "cher.example\n",
	     "line 2: bad mx pattern (a domain, or *. and a domain)"},
	    {"version: STSv1\nmx: a.example b.example\n",
	     "line 2: bad mx pattern (a domain, or *. and a domain)"},
	    {"version: STSv1\nmode enforce\n", "line 2: not a key: value line"},
	    {"version: STSv1\nmode : enforce\n",
	     "line 2: not a key: value line"},
	    {" version: STSv1\n", "line 1: not a key: value line"},
	    {"version: STSv1\n_x: y\n", "line 2: not a key: value line"},
	    {"version: STSv1\nmx:\n",
	     "line 2: empty value or a character not allowed"},
	    {"version: STSv1\nfoo: a\tb\n",
	     "line 2: empty value or a character not allowed"},
	    {"version: STSv1\nfoo: a\rb\n",
	     "line 2: empty value or a character not allowed"},
	    {"version: STSv1\nfoo: \xc3\x28\n",
	     "line 2: empty value or a character not allowed"},
	    /* Overlong UTF-8, and a surrogate. */
	    {"version: STSv1\nfoo: \xc0\xaf\n",
	     "line 2: empty value or a character not allowed"},
	    {"version: STSv1\nfoo: \xed\xa0\x80\n",
	     "line 2: empty value or a character not allowed"},
	    /* A CR not before LF is not a line end. */
	    {"version: STSv1\rmode: none\n",
	     "line 1: empty value or a character not allowed"},
	};
	struct sts_policy p;
	char err[STS_ERR_SIZE];

	(void)state;
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		memset(&p, 0x55, sizeof p);
		if (parse(cases[k].body, &p, err, sizeof err) != -1)
			fail_msg("case %zu accepted", k);
		if (strcmp(err, cases[k].err) != 0)
			fail_msg("case %zu: \"%s\", want \"%s\"", k, err,
				 cases[k].err);
		assert_int_equal(p.n_mx, 0);
	}
}

static void
test_sts_policy_mx_limit(void **state)
{
	char body[STS_MX_MAX * 32 + 128];
	size_t off;
	struct sts_policy p;
	char err[STS_ERR_SIZE];

	(void)state;
	off = (size_t)snprintf(body, sizeof body,
			       "version: STSv1\nmode: enforce\nmax_age: 1\n");
	for (int k = 0; k < STS_MX_MAX; k++)
		off += (size_t)snprintf(body + off, sizeof body - off,
					"mx: mx%d.example\n", k);
	assert_int_equal(parse(body, &p, err, sizeof err), 0);
	assert_int_equal(p.n_mx, STS_MX_MAX);
	assert_string_equal(p.mx[STS_MX_MAX - 1], "mx31.example");
	(void)snprintf(body + off, sizeof body - off, "mx: more.example\n");
	assert_int_equal(parse(body, &p, err, sizeof err), -1);
	assert_string_equal(err, "line 36: more than 32 mx lines");
}

static void
test_sts_policy_long_names(void **state)
{
	char body[1024], label[64];
	struct sts_policy p;
	char err[STS_ERR_SIZE];

	(void)state;
	memset(label, 'a', 63);
	label[63] = '\0';
	/* 4 labels of 63 and the dots: 255 > 253. */
	(void)snprintf(body, sizeof body,
		       "version: STSv1\nmode: testing\nmax_age: 1\n"
		       "mx: *.%s.%s.%s.%.61s\n",
		       label, label, label, label);
	assert_int_equal(parse(body, &p, err, sizeof err), 0);
	assert_int_equal(strlen(p.mx[0]), 255);
	(void)snprintf(body, sizeof body,
		       "version: STSv1\nmode: testing\nmax_age: 1\n"
		       "mx: %s.%s.%s.%.62s\n",
		       label, label, label, label);
	assert_int_equal(parse(body, &p, err, sizeof err), -1);
	(void)snprintf(body, sizeof body,
		       "version: STSv1\nmode: testing\nmax_age: 1\n"
		       "mx: %sa.example\n",
		       label);
	assert_int_equal(parse(body, &p, err, sizeof err), -1);
	/* An unknown key of 33 characters is not a key. */
	assert_int_equal(parse("version: STSv1\n"
			       "k23456789012345678901234567890123: v\n",
			       &p, err, sizeof err),
			 -1);
	assert_int_equal(parse("version: STSv1\nmode: none\nmax_age: 1\n"
			       "k2345678901234567890123456789012: v\n",
			       &p, err, sizeof err),
			 0);
}

static void
test_sts_policy_small_err(void **state)
{
	struct sts_policy p;
	char err[8];

	(void)state;
	assert_int_equal(parse("mode: x", &p, err, sizeof err), -1);
	assert_string_equal(err, "line 1:");
	assert_int_equal(parse("mode: x", &p, NULL, 0), -1);
}

static void
test_sts_mx_match(void **state)
{
	static const struct {
		const char *host;
		bool is_match;
	} cases[] = {
	    {"mail.example.com", true},
	    {"MAIL.Example.COM", true},
	    {"mail.example.com.", true},
	    {"mail.example.com..", false},
	    {"mail.example.co", false},
	    {"xmail.example.com", false},
	    /* RFC 8461 4.1: one whole leftmost label. */
	    {"mx1.example.net", true},
	    {"MX1.EXAMPLE.NET.", true},
	    {"example.net", false},
	    {"a.b.example.net", false},
	    {".example.net", false},
	    {"*.example.net", false},
	    {"xexample.net", false},
	    {"", false},
	    {".", false},
	};
	struct sts_policy p;
	char err[STS_ERR_SIZE];

	(void)state;
	assert_int_equal(parse("version: STSv1\nmode: enforce\nmax_age: 1\n"
			       "mx: mail.example.com\nmx: *.example.net\n",
			       &p, err, sizeof err),
			 0);
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
		if (sts_mx_match(&p, cases[k].host) != cases[k].is_match)
			fail_msg("host \"%s\"", cases[k].host);
}

static void
test_sts_policy_strings(void **state)
{
	struct sts_policy p;
	char err[STS_ERR_SIZE], buf[STRINGS_BUF];
	const char *lines[LINES_MAX];
	size_t n;

	(void)state;
	assert_int_equal(parse("mode: testing\nmx: *.mail.example\n"
			       "version: STSv1\nmax_age: 86400\n",
			       &p, err, sizeof err),
			 0);
	n = sts_policy_strings(&p, buf, sizeof buf, lines, LINES_MAX);
	assert_int_equal(n, 4);
	assert_string_equal(lines[0], "version: STSv1");
	assert_string_equal(lines[1], "mode: testing");
	assert_string_equal(lines[2], "mx: *.mail.example");
	assert_string_equal(lines[3], "max_age: 86400");
	/* Too few pointers, or too little room: the lines that fit. */
	assert_int_equal(sts_policy_strings(&p, buf, sizeof buf, lines, 2), 2);
	assert_int_equal(sts_policy_strings(&p, buf, 30, lines, LINES_MAX), 2);
	assert_string_equal(lines[1], "mode: testing");
	assert_int_equal(sts_policy_strings(&p, buf, 0, lines, LINES_MAX), 0);
	assert_string_equal(sts_mode_name(STS_MODE_ENFORCE), "enforce");
	assert_string_equal(sts_mode_name(STS_MODE_NONE), "none");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sts_txt_pick_table),
	    cmocka_unit_test(test_sts_txt_pick_nul_and_length),
	    cmocka_unit_test(test_sts_policy_rfc_examples),
	    cmocka_unit_test(test_sts_policy_accepted_forms),
	    cmocka_unit_test(test_sts_policy_errors),
	    cmocka_unit_test(test_sts_policy_mx_limit),
	    cmocka_unit_test(test_sts_policy_long_names),
	    cmocka_unit_test(test_sts_policy_small_err),
	    cmocka_unit_test(test_sts_mx_match),
	    cmocka_unit_test(test_sts_policy_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
