/*
 * test_reply.c - every row of replies.def renders as one RFC 5321 reply
 * line: code, the enhanced code (RFC 2034) where the row has one, CRLF,
 * at most 512 octets, and no CR or LF inside even from a hostile argument.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/limits.h"
#include "reply/reply.h"

static size_t
render(char *buf, size_t size, enum reply_id id, const char *arg)
{
	switch (reply_row(id)->arg) {
	case ARG_NONE: return reply_format(buf, size, id);
	case ARG_STR: return reply_format(buf, size, id, arg);
	case ARG_STR2: return reply_format(buf, size, id, arg, arg);
	case ARG_STR_UINT2: return reply_format(buf, size, id, arg, 30u, 60u);
	default: return reply_format(buf, size, id, 42u);
	}
}

static void
test_every_row_renders_code_enhanced_and_crlf(void **state)
{
	char buf[SMTP_REPLY_LINE_MAX + 1], want[32];

	(void)state;
	for (int id = 0; id < REPLY_COUNT; id++) {
		const struct reply_row *r = reply_row((enum reply_id)id);
		size_t len = render(buf, sizeof buf, (enum reply_id)id, "x@y");

		assert_true(len >= 6);
		assert_int_equal(strlen(buf), len);
		assert_memory_equal(buf + len - 2, "\r\n", 2);
		assert_null(memchr(buf, '\n', len - 1));
		assert_true(r->code >= 200 && r->code <= 599);
		if (r->enhanced != NULL) {
			snprintf(want, sizeof want, "%d %s ", r->code,
				 r->enhanced);
			/* RFC 3463: class digit equals the code's first. */
			assert_int_equal(r->enhanced[0], '0' + r->code / 100);
		} else {
			snprintf(want, sizeof want, "%d ", r->code);
		}
		assert_memory_equal(buf, want, strlen(want));
	}
}

static void
test_greeting_and_ehlo_rows_have_no_enhanced_code(void **state)
{
	(void)state;
	assert_null(reply_row(REPLY_GREETING)->enhanced);
	assert_null(reply_row(REPLY_HELO_OK)->enhanced);
	assert_null(reply_row(REPLY_DATA_GO)->enhanced);
}

static void
test_argument_with_crlf_cannot_split_the_reply(void **state)
{
	char buf[SMTP_REPLY_LINE_MAX + 1];
	size_t len = reply_format(buf, sizeof buf, REPLY_USER_UNKNOWN,
				  "a\r\n250 fake@x");

	(void)state;
	assert_null(memchr(buf, '\n', len - 1));
	assert_null(memchr(buf, '\r', len - 2));
	assert_string_equal(buf, "550 5.1.1 Mailbox <a??250 fake@x> does not "
				 "exist\r\n");
}

static void
test_long_argument_is_cut_to_512_octets(void **state)
{
	char buf[2048], arg[1500];
	size_t len;

	(void)state;
	memset(arg, 'a', sizeof arg - 1);
	arg[sizeof arg - 1] = '\0';
	len = reply_format(buf, sizeof buf, REPLY_RCPT_OK, arg);
	assert_int_equal(len, SMTP_REPLY_LINE_MAX);
	assert_memory_equal(buf + len - 2, "\r\n", 2);
}

static void
test_seed_rows_say_what_reply_codes_md_says(void **state)
{
	char buf[SMTP_REPLY_LINE_MAX + 1];

	(void)state;
	reply_format(buf, sizeof buf, REPLY_USER_MOVED, "new@addr.test");
	assert_string_equal(buf, "551 5.1.6 User not local; please try "
				 "<new@addr.test>\r\n");
	reply_format(buf, sizeof buf, REPLY_WILL_FORWARD, "new@addr.test");
	assert_string_equal(buf, "251 2.1.5 User not local; will forward to "
				 "<new@addr.test>\r\n");
	reply_format(buf, sizeof buf, REPLY_GREETING, "mx.example.test", "0.1");
	assert_string_equal(buf, "220 mx.example.test ESMTP postern 0.1\r\n");
	reply_format(buf, sizeof buf, REPLY_TOO_MANY_RCPTS);
	assert_memory_equal(buf, "452 4.5.3 ", 10);
	reply_format(buf, sizeof buf, REPLY_TIMEOUT, "h");
	assert_memory_equal(buf, "421 4.4.2 ", 10);
	assert_string_equal(reply_reason(REPLY_USER_UNKNOWN), "user_unknown");
}

static void
test_multiline_reply_uses_dash_until_the_last_line(void **state)
{
	const char *lines[] = {"mx Hello", "PIPELINING", "SIZE 10"};
	char buf[1024];

	(void)state;
	reply_format_lines(buf, sizeof buf, 250, NULL, lines, 3);
	assert_string_equal(buf, "250-mx Hello\r\n250-PIPELINING\r\n"
				 "250 SIZE 10\r\n");
	reply_format_lines(buf, sizeof buf, 214, "2.0.0", lines, 2);
	assert_string_equal(buf, "214-2.0.0 mx Hello\r\n"
				 "214 2.0.0 PIPELINING\r\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_row_renders_code_enhanced_and_crlf),
		cmocka_unit_test(test_greeting_and_ehlo_rows_have_no_enhanced_code),
		cmocka_unit_test(test_argument_with_crlf_cannot_split_the_reply),
		cmocka_unit_test(test_long_argument_is_cut_to_512_octets),
		cmocka_unit_test(test_seed_rows_say_what_reply_codes_md_says),
		cmocka_unit_test(test_multiline_reply_uses_dash_until_the_last_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
