/*
 * test_line.c - the command line reader (src/proto/line.c).
 *
 * Each case is a byte stream and the events line_next() must produce when a
 * session feeds it: the whole stream at once, then byte by byte, then in
 * chunks of every size up to 17.  Events are written as a trace:
 * "OK(text)" for a line, the error's name, "SKIP", and "REST(n)" for the
 * n octets left waiting for more.  Feeding in pieces must give the same
 * trace, since a client may split its writes anywhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/limits.h"
#include "proto/line.h"

#define TEST_BUF_MAX 4096
#define TEST_TRACE_MAX 8192

struct line_case {
	const char *name;
	const char *in;
	size_t in_len; /* 0: strlen(in) */
	size_t max;
	const char *trace;
};

static const char *
test_result_name(enum line_result r)
{
	switch (r) {
	case LINE_OK:
		return "OK";
	case LINE_MORE:
		return "MORE";
	case LINE_SKIP:
		return "SKIP";
	case LINE_ERR_TOO_LONG:
		return "TOO_LONG";
	case LINE_ERR_BARE_LF:
		return "BARE_LF";
	case LINE_ERR_BARE_CR:
		return "BARE_CR";
	case LINE_ERR_NUL:
		return "NUL";
	}
	return "?";
}

static void
test_trace_add(char *trace, size_t *at, const char *fmt, const char *s,
	       size_t n)
{
	int w = snprintf(trace + *at, TEST_TRACE_MAX - *at, fmt, (int)n, s);

	assert_true(w >= 0 && (size_t)w < TEST_TRACE_MAX - *at);
	*at += (size_t)w;
}

/*
 * Feeds in[0..len) in pieces of chunk octets (0: all at once) through a
 * session-like buffer and writes the events to trace.
 */
static void
test_run(const char *in, size_t len, size_t max, size_t chunk, char *trace)
{
	static char buf[TEST_BUF_MAX];
	struct line_reader lr = { 0 };
	size_t have = 0, fed = 0, at = 0, line_len, consumed, n;
	enum line_result r;

	trace[0] = '\0';
	while (fed < len) {
		n = chunk == 0 || chunk > len - fed ? len - fed : chunk;
		assert_true(have + n <= sizeof(buf));
		memcpy(buf + have, in + fed, n);
		have += n;
		fed += n;
		for (;;) {
			r = line_next(&lr, buf, have, max, &line_len,
				      &consumed);
			assert_true(consumed <= have);
			if (r == LINE_OK) {
				assert_true(line_len + 2 <= max);
				assert_true(line_len + 2 == consumed);
				test_trace_add(trace, &at, "OK(%.*s)", buf,
					       line_len);
			} else if (r != LINE_MORE) {
				test_trace_add(trace, &at, "%.*s",
					       test_result_name(r),
					       strlen(test_result_name(r)));
			}
			memmove(buf, buf + consumed, have - consumed);
			have -= consumed;
			if (r == LINE_MORE)
				break;
		}
	}
	if (have > 0) {
		n = (size_t)snprintf(trace + at, TEST_TRACE_MAX - at,
				     "REST(%zu)", have);
		assert_true(n < TEST_TRACE_MAX - at);
	}
}

static char test_a510[600], test_a511[600], test_long_next[700];

static const struct line_case line_cases[] = {
	{ "crlf_line_is_ok", "NOOP\r\n", 0, 512, "OK(NOOP)" },
	{ "two_lines_in_one_buffer", "HELO a\r\nQUIT\r\n", 0, 512,
	  "OK(HELO a)OK(QUIT)" },
	{ "empty_line_is_ok", "\r\n", 0, 512, "OK()" },
	{ "partial_line_waits", "NOOP", 0, 512, "REST(4)" },
	{ "partial_line_ending_in_cr_waits", "NOOP\r", 0, 512, "REST(5)" },
	{ "bare_lf_ends_nothing_and_is_an_error", "NOOP\nQUIT\r\n", 0, 512,
	  "BARE_LFOK(QUIT)" },
	{ "lone_lf_is_bare_lf", "\n", 0, 512, "BARE_LF" },
	{ "bare_cr_mid_line_is_an_error", "NO\rOP\r\nQUIT\r\n", 0, 512,
	  "BARE_CROK(QUIT)" },
	{ "cr_cr_lf_is_a_bare_cr", "NOOP\r\r\n", 0, 512, "BARE_CR" },
	{ "bare_cr_then_bare_lf_is_one_error", "a\rb\n", 0, 512,
	  "BARE_CR" },
	{ "nul_in_line_is_an_error", "NO\0OP\r\nQUIT\r\n", 13, 512,
	  "NULOK(QUIT)" },
	{ "smuggled_dot_line_is_not_a_line", "DATA\n.\nQUIT\r\n", 0, 512,
	  "BARE_LFBARE_LFOK(QUIT)" },
	{ "line_of_exactly_max_octets_is_ok", test_a510, 0, 512,
	  "OK(*510)" },
	{ "line_of_max_plus_one_is_too_long_once", test_a511, 0, 512,
	  "TOO_LONGSKIP" },
	{ "after_too_long_the_next_line_parses", test_long_next, 0, 512,
	  "TOO_LONGSKIPOK(NOOP)" },
	{ "max_octets_without_lf_is_too_long", test_a511, 512, 512,
	  "TOO_LONG" },
	{ "small_max_counts_crlf", "abc\r\nab\r\n", 0, 4,
	  "TOO_LONGSKIPOK(ab)" },
};

/* Replaces a run of 'A's in a trace with "*n" to keep the table short. */
static void
test_squash(char *trace)
{
	char out[TEST_TRACE_MAX];
	size_t i = 0, o = 0, n;

	while (trace[i] != '\0') {
		n = 0;
		while (trace[i + n] == 'A')
			n++;
		if (n > 1) {
			o += (size_t)snprintf(out + o, sizeof(out) - o, "*%zu",
					      n);
			i += n;
		} else {
			out[o++] = trace[i++];
		}
	}
	out[o] = '\0';
	memcpy(trace, out, o + 1);
}

static void
test_line_cases(void **state)
{
	static char whole[TEST_TRACE_MAX], piece[TEST_TRACE_MAX];
	size_t i, chunk, len;

	(void)state;
	for (i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
		const struct line_case *c = &line_cases[i];

		len = c->in_len ? c->in_len : strlen(c->in);
		test_run(c->in, len, c->max, 0, whole);
		test_squash(whole);
		if (strcmp(whole, c->trace) != 0)
			fail_msg("%s: got %s, want %s", c->name, whole,
				 c->trace);
		for (chunk = 1; chunk <= 17; chunk++) {
			test_run(c->in, len, c->max, chunk, piece);
			test_squash(piece);
			if (strcmp(whole, piece) != 0)
				fail_msg("%s: chunk %zu gives %s, whole %s",
					 c->name, chunk, piece, whole);
		}
	}
}

/* The literal promises of line.h, call by call. */
static void
test_line_more_and_skip_consume_as_promised(void **state)
{
	struct line_reader lr = { 0 };
	size_t ll, cons;

	(void)state;
	assert_int_equal(line_next(&lr, "NOOP\r", 5, 512, &ll, &cons),
			 LINE_MORE);
	assert_int_equal(cons, 0);
	assert_int_equal(line_next(&lr, "", 0, 512, &ll, &cons), LINE_MORE);
	assert_int_equal(cons, 0);

	/* 10 octets over a max of 8: reported once, then dropped to LF. */
	assert_int_equal(line_next(&lr, "0123456789", 10, 8, &ll, &cons),
			 LINE_ERR_TOO_LONG);
	assert_int_equal(cons, 8);
	assert_true(lr.is_skipping);
	assert_int_equal(line_next(&lr, "89", 2, 8, &ll, &cons), LINE_MORE);
	assert_int_equal(cons, 2);
	assert_int_equal(line_next(&lr, "xx\r\nQUIT\r\n", 10, 8, &ll, &cons),
			 LINE_SKIP);
	assert_int_equal(cons, 4);
	assert_false(lr.is_skipping);
	assert_int_equal(line_next(&lr, "QUIT\r\n", 6, 8, &ll, &cons),
			 LINE_OK);
	assert_int_equal(ll, 4);
	assert_int_equal(cons, 6);
}

static void
test_line_error_consumes_through_lf(void **state)
{
	struct line_reader lr = { 0 };
	size_t ll, cons;

	(void)state;
	assert_int_equal(line_next(&lr, "a\rb\r\nNOOP\r\n", 11, 512, &ll,
				   &cons), LINE_ERR_BARE_CR);
	assert_int_equal(cons, 5);
	assert_int_equal(line_next(&lr, "ab\nNOOP\r\n", 9, 512, &ll, &cons),
			 LINE_ERR_BARE_LF);
	assert_int_equal(cons, 3);
	assert_int_equal(line_next(&lr, "a\0\r\n", 4, 512, &ll, &cons),
			 LINE_ERR_NUL);
	assert_int_equal(cons, 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_cases),
		cmocka_unit_test(test_line_more_and_skip_consume_as_promised),
		cmocka_unit_test(test_line_error_consumes_through_lf),
	};

	memset(test_a510, 'A', 510);
	memcpy(test_a510 + 510, "\r\n", 3);
	memset(test_a511, 'A', 511);
	memcpy(test_a511 + 511, "\r\n", 3);
	memcpy(test_long_next, test_a511, 513);
	memcpy(test_long_next + 513, "NOOP\r\n", 7);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
