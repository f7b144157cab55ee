/*
 * test_arh.c - Authentication-Results (src/auth/arh.c): the exact text
 * written, and the stripping of our own id's fields from a header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/arh.h"

#define ID "mx.example.test"
#define BUF 1024

static void
test_arh_format_three_methods(void **state)
{
	const struct arh_entry e[] = {
	    {"spf",
	     "pass",
	     NULL,
	     NULL,
	     {{"smtp", "mailfrom", "example.org"}},
	     1},
	    {"dkim",
	     "pass",
	     NULL,
	     NULL,
	     {{"header", "d", "example.org"},
	      {"header", "s", "s1"},
	      {"header", "b", "AbCdEfGh"}},
	     3},
	    {"dmarc",
	     "pass",
	     NULL,
	     NULL,
	     {{"header", "from", "example.org"}},
	     1},
	};
	static const char want[] =
	    "Authentication-Results: mx.example.test;\r\n"
	    "\tspf=pass smtp.mailfrom=example.org;\r\n"
	    "\tdkim=pass header.d=example.org header.s=s1 "
	    "header.b=AbCdEfGh;\r\n"
	    "\tdmarc=pass header.from=example.org\r\n";
	char buf[BUF];

	(void)state;
	assert_int_equal(arh_format(buf, sizeof buf, ID, e, 3),
			 sizeof want - 1);
	assert_string_equal(buf, want);
	/* Exactly enough, and one short. */
	assert_int_equal(arh_format(buf, sizeof want, ID, e, 3),
			 sizeof want - 1);
	assert_int_equal(arh_format(buf, sizeof want - 1, ID, e, 3), 0);
	assert_string_equal(buf, "");
}

static void
test_arh_format_none(void **state)
{
	char buf[BUF];

	(void)state;
	arh_format(buf, sizeof buf, ID, NULL, 0);
	assert_string_equal(
	    buf, "Authentication-Results: mx.example.test; none\r\n");
}

static void
test_arh_format_quotes_and_comments(void **state)
{
	const struct arh_entry e[] = {
	    {"spf",
	     "fail",
	     "not (really) \\ok",
	     "bad \"ip\"",
	     {{"smtp", "mailfrom", "user@example.org"},
	      {"smtp", "helo", "a b"},
	      {"header", "b", "ab/c+d=="},
	      {"policy", "x", ""}},
	     4},
	};
	static const char want[] =
	    "Authentication-Results: mx.example.test;\r\n"
	    "\tspf=fail (not \\(really\\) \\\\ok) reason=\"bad \\\"ip\\\"\"\r\n"
	    "\tsmtp.mailfrom=user@example.org smtp.helo=\"a b\" "
	    "header.b=\"ab/c+d==\"\r\n"
	    "\tpolicy.x=\"\"\r\n";
	char buf[BUF];

	(void)state;
	arh_format(buf, sizeof buf, ID, e, 1);
	assert_string_equal(buf, want);
}

static void
test_arh_format_folds_long_lines(void **state)
{
	const struct arh_entry e[] = {
	    {"dkim",
	     "pass",
	     NULL,
	     NULL,
	     {{"header", "d", "a-rather-long-domain-name.example.org"},
	      {"header", "i", "someone@a-rather-long-domain-name.example.org"},
	      {"header", "s", "s1"}},
	     3},
	};
	char buf[BUF];
	const char *line = buf;

	(void)state;
	assert_true(arh_format(buf, sizeof buf, ID, e, 1) > 0);
	while (line != NULL) {
		const char *end = strstr(line, "\r\n");

		assert_non_null(end);
		/* A tab counts 8 columns. */
		assert_true((size_t)(end - line) + (line[0] == '\t' ? 7 : 0) <=
			    78);
		line = end[2] != '\0' ? end + 2 : NULL;
	}
	assert_non_null(strstr(buf, "\r\n\theader.i="));
}

struct strip_case {
	const char *name, *in, *out;
};

static const struct strip_case strip_cases[] = {
    {"ours_removed",
     "Received: x\r\nAuthentication-Results: mx.example.test; spf=pass\r\n"
     "Subject: s\r\n\r\nbody\r\n",
     "Received: x\r\nSubject: s\r\n\r\nbody\r\n"},
    {"any_case_folded_several",
     "authentication-results:\r\n MX.Example.Test;\r\n\tdkim=pass\r\n"
     "To: a\r\n"
     "AUTHENTICATION-RESULTS : (c (n)) mx.example.test 1 ; none\r\n"
     "Authentication-Results: \"mx.example.test\"; spf=fail\r\n\r\nb",
     "To: a\r\n\r\nb"},
    {"others_kept",
     "Authentication-Results: other.example; spf=pass\r\n"
     "Authentication-Results: mx.example.test.evil; spf=pass\r\n"
     "Authentication-Results: mx.example; spf=pass\r\n"
     "X-Authentication-Results: mx.example.test; spf=pass\r\n\r\n",
     "Authentication-Results: other.example; spf=pass\r\n"
     "Authentication-Results: mx.example.test.evil; spf=pass\r\n"
     "Authentication-Results: mx.example; spf=pass\r\n"
     "X-Authentication-Results: mx.example.test; spf=pass\r\n\r\n"},
    {"unparseable_kept",
     "Authentication-Results: mx.example.test\r\n"
     "Authentication-Results: mx.example.test spf=pass\r\n"
     "Authentication-Results: (open mx.example.test;\r\n"
     "Authentication-Results: \"mx.example.test;\r\n\r\n",
     "Authentication-Results: mx.example.test\r\n"
     "Authentication-Results: mx.example.test spf=pass\r\n"
     "Authentication-Results: (open mx.example.test;\r\n"
     "Authentication-Results: \"mx.example.test;\r\n\r\n"},
    {"body_untouched",
     "Subject: s\r\n\r\nAuthentication-Results: mx.example.test; none\r\n",
     "Subject: s\r\n\r\nAuthentication-Results: mx.example.test; none\r\n"},
    {"no_header_block", "\r\nAuthentication-Results: mx.example.test; none\r\n",
     "\r\nAuthentication-Results: mx.example.test; none\r\n"},
    {"no_body_separator",
     "A: b\r\nAuthentication-Results: mx.example.test; none", "A: b\r\n"},
    {"bare_lf", "Authentication-Results: mx.example.test; none\n\tx\nA: b\n\n",
     "A: b\n\n"},
    {"garbage_kept", "no colon line\r\n: empty name\r\n \tstray\r\n\r\n",
     "no colon line\r\n: empty name\r\n \tstray\r\n\r\n"},
    {"empty", "", ""},
};

static void
test_arh_strip(void **state)
{
	char buf[BUF];

	(void)state;
	for (size_t i = 0; i < sizeof strip_cases / sizeof strip_cases[0];
	     i++) {
		const struct strip_case *c = &strip_cases[i];
		size_t n = strlen(c->in);

		memcpy(buf, c->in, n);
		n = arh_strip(buf, n, ID);
		if (n != strlen(c->out) || memcmp(buf, c->out, n) != 0)
			fail_msg("%s: got \"%.*s\"", c->name, (int)n, buf);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_arh_format_three_methods),
	    cmocka_unit_test(test_arh_format_none),
	    cmocka_unit_test(test_arh_format_quotes_and_comments),
	    cmocka_unit_test(test_arh_format_folds_long_lines),
	    cmocka_unit_test(test_arh_strip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
