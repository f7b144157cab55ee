/*
 * test_reply_parse.c - the client's reader of server replies
 * (src/proto/reply_parse.c).
 *
 * Replies are written as their lines joined by "\n" and checked against a
 * trace of what each line returned (M more, O ok, S syntax error, T too
 * many lines) and the code, enhanced code and joined text that result.
 * Then tables for the one-line format, EHLO keywords, wait hints in 4xx
 * texts and the forward-path of a 551.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/reply_parse.h"

#define TEST_TRACE_MAX 64
#define TEST_LONG_LINE 5000
#define TEST_PIECE 100
#define TEST_FORMAT_MAX 4096

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct acc_case {
	const char *name;
	const char *in; /* lines joined by "\n" */
	const char *trace;
	unsigned code;
	const char *enh;
	const char *text;
};

static const struct acc_case acc_cases[] = {
	{ "one_line", "250 OK", "O", 250, "", "OK" },
	{ "code_alone", "250", "O", 250, "", "" },
	{ "code_and_space", "250 ", "O", 250, "", "" },
	{ "empty_continuation", "250-\n250 x", "MO", 250, "", "x" },
	{ "ehlo_reply",
	  "250-mx.example.test Hello\n250-PIPELINING\n250 SIZE 100", "MMO",
	  250, "", "mx.example.test Hello PIPELINING SIZE 100" },
	{ "inner_spaces_kept", "250 a  b ", "O", 250, "", "a  b " },
	{ "enhanced_code", "550 5.1.1 No such user", "O", 550, "5.1.1",
	  "No such user" },
	{ "enhanced_code_alone", "250 2.0.0", "O", 250, "2.0.0", "" },
	{ "spaces_after_enhanced_code", "250 2.0.0   ok", "O", 250, "2.0.0",
	  "ok" },
	{ "three_digit_parts", "550 5.123.456 x", "O", 550, "5.123.456",
	  "x" },
	{ "enhanced_code_repeated_is_dropped",
	  "550-5.1.1 The account\n550-5.1.1 does not exist.\n550 5.1.1 Sorry",
	  "MMO", 550, "5.1.1", "The account does not exist. Sorry" },
	{ "repeated_code_alone_leaves_no_gap",
	  "550-5.1.1 a\n550-5.1.1\n550 5.1.1 b", "MMO", 550, "5.1.1", "a b" },
	{ "other_enhanced_code_kept", "550-5.1.1 a\n550 5.7.1 b", "MO", 550,
	  "5.1.1", "a 5.7.1 b" },
	{ "longer_code_is_not_a_repeat", "550-5.1.1 a\n550 5.1.10 b", "MO",
	  550, "5.1.1", "a 5.1.10 b" },
	{ "only_first_line_counts", "250-hello\n250 2.0.0 ok", "MO", 250, "",
	  "hello 2.0.0 ok" },
	{ "wrong_class", "550 4.1.1 x", "O", 550, "", "4.1.1 x" },
	{ "class_3_is_none", "354 3.0.0 go ahead", "O", 354, "",
	  "3.0.0 go ahead" },
	{ "subject_too_long", "550 5.1234.1 x", "O", 550, "", "5.1234.1 x" },
	{ "detail_too_long", "550 5.1.1234 x", "O", 550, "", "5.1.1234 x" },
	{ "glued_to_text", "550 5.1.1x", "O", 550, "", "5.1.1x" },
	{ "no_detail", "550 5.1. x", "O", 550, "", "5.1. x" },
	{ "two_parts", "550 5.1 x", "O", 550, "", "5.1 x" },
	{ "greylisted", "450 4.2.0 Greylisted, retry in 60 s", "O", 450,
	  "4.2.0", "Greylisted, retry in 60 s" },
	{ "letters", "abc def", "S", 0, "", "" },
	{ "empty_line", "", "S", 0, "", "" },
	{ "two_digits", "25", "S", 0, "", "" },
	{ "four_digits", "2500 x", "S", 0, "", "" },
	{ "letter_after_code", "250x", "S", 0, "", "" },
	{ "tab_after_code", "250\tok", "S", 0, "", "" },
	{ "letter_in_code", "2a0 x", "S", 0, "", "" },
	{ "class_1", "199 x", "S", 0, "", "" },
	{ "class_6", "600 x", "S", 0, "", "" },
	{ "class_0", "099 x", "S", 0, "", "" },
	{ "leading_space", " 250 x", "S", 0, "", "" },
	{ "code_changes", "250-a\n251 b", "MS", 250, "", "a" },
	{ "class_changes", "250-a\n550 b", "MS", 250, "", "a" },
	{ "bad_second_line", "250-a\nhello", "MS", 250, "", "a" },
};

/* Feeds c->in line by line into *a, writes one letter a line to trace. */
static void
test_acc_feed(struct reply_acc *a, const char *in, char *trace)
{
	const char *p = in, *nl;
	size_t n = 0, len;
	enum reply_parse_result r;

	reply_acc_init(a);
	for (;;) {
		nl = strchr(p, '\n');
		len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		r = reply_acc_line(a, p, len);
		assert_true(n + 1 < TEST_TRACE_MAX);
		trace[n++] = "OMST"[r];
		if (r != REPLY_PARSE_MORE || nl == NULL)
			break;
		p = nl + 1;
	}
	trace[n] = '\0';
}

static void
test_reply_acc_lines(void **state)
{
	struct reply_acc a;
	char trace[TEST_TRACE_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < N_ELEMS(acc_cases); i++) {
		const struct acc_case *c = &acc_cases[i];

		test_acc_feed(&a, c->in, trace);
		if (strcmp(trace, c->trace) != 0)
			fail_msg("%s: trace %s, want %s", c->name, trace,
				 c->trace);
		if (a.code != c->code)
			fail_msg("%s: code %u, want %u", c->name, a.code,
				 c->code);
		if (strcmp(a.enh, c->enh) != 0)
			fail_msg("%s: enh '%s', want '%s'", c->name, a.enh,
				 c->enh);
		if (strcmp(a.text, c->text) != 0)
			fail_msg("%s: text '%s', want '%s'", c->name, a.text,
				 c->text);
		assert_int_equal(a.text_len, strlen(a.text));
	}
}

static void
test_reply_acc_1001st_line_is_too_many(void **state)
{
	struct reply_acc a;
	size_t i;

	(void)state;
	reply_acc_init(&a);
	for (i = 0; i + 1 < REPLY_LINES_MAX; i++)
		assert_int_equal(reply_acc_line(&a, "250-x", 5),
				 REPLY_PARSE_MORE);
	assert_int_equal(reply_acc_line(&a, "250 x", 5), REPLY_PARSE_OK);
	assert_int_equal(a.n_lines, REPLY_LINES_MAX);

	reply_acc_init(&a);
	for (i = 0; i < REPLY_LINES_MAX; i++)
		assert_int_equal(reply_acc_line(&a, "250-x", 5),
				 REPLY_PARSE_MORE);
	assert_int_equal(reply_acc_line(&a, "250 x", 5),
			 REPLY_PARSE_ERR_TOO_MANY_LINES);
	assert_int_equal(a.n_lines, REPLY_LINES_MAX);
	assert_true(a.text_len < REPLY_TEXT_MAX);
}

/* Writes s without its NUL at dst: a line is no C string. */
static void
test_put(char *dst, const char *s)
{
	while (*s != '\0')
		*dst++ = *s++;
}

static void
test_reply_acc_text_is_cut_at_max(void **state)
{
	static char line[TEST_LONG_LINE];
	static char want[REPLY_TEXT_MAX];
	struct reply_acc a;
	size_t i, n;

	(void)state;
	/* One long line. */
	test_put(line, "550 ");
	for (i = 4; i < sizeof(line); i++)
		line[i] = (char)('a' + i % 26);
	reply_acc_init(&a);
	assert_int_equal(reply_acc_line(&a, line, sizeof(line)),
			 REPLY_PARSE_OK);
	assert_int_equal(a.text_len, REPLY_TEXT_MAX - 1);
	assert_int_equal(strlen(a.text), REPLY_TEXT_MAX - 1);
	assert_memory_equal(a.text, line + 4, REPLY_TEXT_MAX - 1);
	assert_int_equal(a.code, 550);
	assert_int_equal(a.n_lines, 1);

	/* Many short lines: joined, then cut, never past the buffer. */
	test_put(line, "250-");
	memset(line + 4, 'x', TEST_PIECE);
	reply_acc_init(&a);
	n = 0;
	for (i = 0; i < 3 * REPLY_TEXT_MAX / TEST_PIECE; i++) {
		assert_int_equal(reply_acc_line(&a, line, 4 + TEST_PIECE),
				 REPLY_PARSE_MORE);
		if (i > 0 && n < sizeof(want) - 1)
			want[n++] = ' ';
		for (size_t k = 0; k < TEST_PIECE && n < sizeof(want) - 1; k++)
			want[n++] = 'x';
	}
	assert_int_equal(reply_acc_line(&a, "250 end", 7), REPLY_PARSE_OK);
	assert_true(a.text_len <= REPLY_TEXT_MAX - 1);
	assert_true(a.text_len >= REPLY_TEXT_MAX - 2);
	assert_int_equal(strlen(a.text), a.text_len);
	assert_memory_equal(a.text, want, a.text_len);
	assert_int_equal(a.n_lines, i + 1);
	assert_int_equal(a.code, 250);
}

static void
test_reply_acc_nul_in_text_is_masked(void **state)
{
	struct reply_acc a;

	(void)state;
	reply_acc_init(&a);
	assert_int_equal(reply_acc_line(&a, "550 a\0b", 7), REPLY_PARSE_OK);
	assert_string_equal(a.text, "a?b");
	assert_int_equal(a.text_len, 3);
	/* Only len octets are read. */
	reply_acc_init(&a);
	assert_int_equal(reply_acc_line(&a, "250 abcdef", 6), REPLY_PARSE_OK);
	assert_string_equal(a.text, "ab");
}

struct format_case {
	const char *in;
	size_t size;
	const char *out;
};

static const struct format_case format_cases[] = {
	{ "550 5.1.1 No such user", TEST_FORMAT_MAX, "550 5.1.1 No such user" },
	{ "550 No such user", TEST_FORMAT_MAX, "550 No such user" },
	{ "550", TEST_FORMAT_MAX, "550" },
	{ "250 2.0.0", TEST_FORMAT_MAX, "250 2.0.0" },
	{ "250-a\n250-5.1.1 b\n250 c", TEST_FORMAT_MAX, "250 a 5.1.1 b c" },
	{ "550 a\tb\x1b[31mc\x7f\r", TEST_FORMAT_MAX, "550 a?b?[31mc??" },
	{ "550 caf\xc3\xa9", TEST_FORMAT_MAX, "550 caf\xc3\xa9" },
	{ "550 5.1.1 abc", 1, "" },
	{ "550 5.1.1 abc", 3, "55" },
	{ "550 5.1.1 abc", 4, "550" },
	{ "550 5.1.1 abc", 7, "550 5." },
	{ "550 5.1.1 abc", 10, "550 5.1.1" },
	{ "550 5.1.1 abc", 11, "550 5.1.1" },
	{ "550 5.1.1 abc", 12, "550 5.1.1 a" },
	{ "550 abc", 5, "550" },
	{ "550 abc", 6, "550 a" },
	{ "550 abc", 8, "550 abc" },
};

static void
test_reply_acc_format_masks_and_cuts(void **state)
{
	char buf[TEST_FORMAT_MAX], trace[TEST_TRACE_MAX];
	struct reply_acc a;
	size_t i;

	(void)state;
	for (i = 0; i < N_ELEMS(format_cases); i++) {
		const struct format_case *c = &format_cases[i];

		test_acc_feed(&a, c->in, trace);
		memset(buf, '#', sizeof(buf));
		reply_acc_format(&a, buf, c->size);
		if (strcmp(buf, c->out) != 0)
			fail_msg("'%s' in %zu: got '%s', want '%s'", c->in,
				 c->size, buf, c->out);
		if (c->size < sizeof(buf))
			assert_int_equal(buf[c->size], '#');
	}
	/* Size 0 writes nothing; no line yet writes "". */
	reply_acc_init(&a);
	buf[0] = '#';
	reply_acc_format(&a, buf, 0);
	assert_int_equal(buf[0], '#');
	reply_acc_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

struct ehlo_case {
	const char *line;
	unsigned ext;
	uint64_t size_max;
};

static const struct ehlo_case ehlo_cases[] = {
	{ "250-PIPELINING", EHLO_PIPELINING, 0 },
	{ "250-pipelining", EHLO_PIPELINING, 0 },
	{ "250-SIZE", EHLO_SIZE, 0 },
	{ "250-SIZE 1000000", EHLO_SIZE, 1000000 },
	{ "250-size 35882577", EHLO_SIZE, 35882577 },
	{ "250-SIZE 0", EHLO_SIZE, 0 },
	{ "250-SIZE 18446744073709551615", EHLO_SIZE, UINT64_MAX },
	{ "250-SIZE 18446744073709551616", EHLO_SIZE, 0 },
	{ "250-SIZE 999999999999999999999999", EHLO_SIZE, 0 },
	{ "250-SIZE abc", EHLO_SIZE, 0 },
	{ "250-SIZE 10x", EHLO_SIZE, 0 },
	{ "250-SIZE  2048 extra", EHLO_SIZE, 2048 },
	{ "250-8BITMIME", EHLO_8BITMIME, 0 },
	{ "250-8bitmime", EHLO_8BITMIME, 0 },
	{ "250-SMTPUTF8", EHLO_SMTPUTF8, 0 },
	{ "250-smtputf8", EHLO_SMTPUTF8, 0 },
	{ "250-STARTTLS", EHLO_STARTTLS, 0 },
	{ "250-StartTLS", EHLO_STARTTLS, 0 },
	{ "250-STARTTLS ", EHLO_STARTTLS, 0 },
	{ "250-DSN", EHLO_DSN, 0 },
	{ "250-dsn", EHLO_DSN, 0 },
	{ "250-CHUNKING", EHLO_CHUNKING, 0 },
	{ "250-chunking", EHLO_CHUNKING, 0 },
	{ "250-ENHANCEDSTATUSCODES", EHLO_ENHANCEDSTATUSCODES, 0 },
	{ "250 enhancedstatuscodes", EHLO_ENHANCEDSTATUSCODES, 0 },
	{ "250-PIPELININGX", 0, 0 },
	{ "250-PIPE", 0, 0 },
	{ "250-AUTH PLAIN LOGIN", EHLO_AUTH_PLAIN | EHLO_AUTH_LOGIN, 0 },
	{ "250-auth login  plain", EHLO_AUTH_PLAIN | EHLO_AUTH_LOGIN, 0 },
	{ "250-AUTH=LOGIN", EHLO_AUTH_LOGIN, 0 },
	{ "250-AUTH CRAM-MD5 XOAUTH2", 0, 0 },
	{ "250-AUTH", 0, 0 },
	{ "250-AUTHPLAIN", 0, 0 },
	{ "250-AUTH PLAINX", 0, 0 },
	{ "250-REQUIRETLS", EHLO_REQUIRETLS, 0 },
	{ "250-X-STARTTLS", 0, 0 },
	{ "250-", 0, 0 },
	{ "550-PIPELINING", 0, 0 },
	{ "251-PIPELINING", 0, 0 },
	{ "250\tPIPELINING", 0, 0 },
	{ "250", 0, 0 },
	{ "PIPELINING", 0, 0 },
	{ "", 0, 0 },
};

static void
test_reply_ehlo_every_keyword(void **state)
{
	struct ehlo_caps caps;
	size_t i;

	(void)state;
	for (i = 0; i < N_ELEMS(ehlo_cases); i++) {
		const struct ehlo_case *c = &ehlo_cases[i];

		caps.ext = 0;
		caps.size_max = 0;
		reply_ehlo_line(&caps, c->line, strlen(c->line), false);
		if (caps.ext != c->ext || caps.size_max != c->size_max)
			fail_msg("'%s': ext %#x size %ju, want %#x %ju",
				 c->line, caps.ext, (uintmax_t)caps.size_max,
				 c->ext, (uintmax_t)c->size_max);
	}
}

static void
test_reply_ehlo_whole_reply_and_first_line(void **state)
{
	static const char *const lines[] = {
		"250-mx.example.test greets PIPELINING",
		"250-PIPELINING",
		"250-SIZE 52428800",
		"250-8BITMIME",
		"250-ENHANCEDSTATUSCODES",
		"250-AUTH PLAIN",
		"250 CHUNKING",
	};
	struct ehlo_caps caps = { .ext = EHLO_STARTTLS, .size_max = 7 };
	size_t i;

	(void)state;
	for (i = 0; i < N_ELEMS(lines); i++)
		reply_ehlo_line(&caps, lines[i], strlen(lines[i]), i == 0);
	assert_int_equal(caps.ext, EHLO_PIPELINING | EHLO_SIZE |
					   EHLO_8BITMIME |
					   EHLO_ENHANCEDSTATUSCODES |
					   EHLO_AUTH_PLAIN | EHLO_CHUNKING);
	assert_int_equal(caps.size_max, 52428800);

	/* A one-line reply: the greeting, no extensions. */
	reply_ehlo_line(&caps, "250 mx.example.test", 19, true);
	assert_int_equal(caps.ext, 0);
	assert_int_equal(caps.size_max, 0);

	/* Only len octets are read: "250-DSNX" cut to "250-DSN". */
	reply_ehlo_line(&caps, "250-DSNX", 7, false);
	assert_int_equal(caps.ext, EHLO_DSN);
}

struct wait_case {
	const char *text;
	bool is_found;
	unsigned seconds;
};

static const struct wait_case wait_cases[] = {
	{ "Greylisted, retry in 60 s", true, 60 },
	{ "retry in 60 s", true, 60 },
	{ "retry in 60 seconds", true, 60 },
	{ "try again in 5 minutes", true, 300 },
	{ "Try again later in 2 min", true, 120 },
	{ "please try again after 30 seconds", true, 30 },
	{ "wait 90 sec", true, 90 },
	{ "retry after 1 hour", true, 3600 },
	{ "try again in 300s", true, 300 },
	{ "RETRY IN 2 MINS", true, 120 },
	{ "retry in 45", true, 45 },
	{ "retry in 45.", true, 45 },
	{ "try again in 10", true, 10 },
	{ "Try again later in 30", true, 30 },
	{ "retry  in\t7 secs", true, 7 },
	{ "retry in 2 h", true, 7200 },
	{ "retry in 3 hrs", true, 10800 },
	{ "retry in 1 hr.", true, 3600 },
	{ "try again in 1 m", true, 60 },
	{ "try again in 1 minute", true, 60 },
	{ "retry in 1 second", true, 1 },
	{ "retry in 7 days", true, 604800 },
	{ "retry in 604800 s", true, 604800 },
	{ "retry again in 20 seconds", true, 20 },
	{ "please wait for 15 seconds", true, 15 },
	{ "4.7.0 Try again in 0000060 s", true, 60 },
	{ "retry in a while, or wait 30 s", true, 30 },
	{ "try again in 3 weeks; wait 60 s", true, 60 },
	{ "retry later", false, 0 },
	{ "retry in 0 s", false, 0 },
	{ "in 0 s", false, 0 },
	{ "try again in 99999999999 seconds", false, 0 },
	{ "try again in 99999999999999999999999999 s", false, 0 },
	{ "retry in 604801 s", false, 0 },
	{ "retry in 8 days", false, 0 },
	{ "retry in 169 hours", false, 0 },
	{ "retry in 0 s, wait 60 s", false, 0 },
	{ "wait 90", false, 0 },
	{ "retry after 30", false, 0 },
	{ "retry in 5.5 minutes", false, 0 },
	{ "retry in 1,000 s", false, 0 },
	{ "retry in 60 fortnights", false, 0 },
	{ "retry in60 s", false, 0 },
	{ "await 60 s", false, 0 },
	{ "retryin 60 s", false, 0 },
	{ "Greylisted", false, 0 },
	{ "", false, 0 },
};

static void
test_reply_wait_hint_phrases(void **state)
{
	unsigned s;
	size_t i;
	bool is_found;

	(void)state;
	for (i = 0; i < N_ELEMS(wait_cases); i++) {
		const struct wait_case *c = &wait_cases[i];

		s = 12345;
		is_found = reply_wait_hint(c->text, strlen(c->text), &s);
		if (is_found != c->is_found)
			fail_msg("'%s': got %d, want %d", c->text, is_found,
				 c->is_found);
		if (is_found && s != c->seconds)
			fail_msg("'%s': got %u s, want %u", c->text, s,
				 c->seconds);
		if (!is_found)
			assert_int_equal(s, 12345);
	}
	/* Only len octets are read: "retry in 60 s" cut before the unit. */
	assert_true(reply_wait_hint("retry in 6 hours", 10, &s));
	assert_int_equal(s, 6);
	assert_false(reply_wait_hint("wait 5 minutes", 6, &s));
}

struct fwd_case {
	const char *text;
	const char *mailbox; /* NULL: none */
};

static const struct fwd_case fwd_cases[] = {
	{ "User not local; please try <bob@other.example>",
	  "bob@other.example" },
	{ "5.1.6 moved to <bob@other.example>.", "bob@other.example" },
	{ "try <@relay.example:bob@other.example>", "bob@other.example" },
	{ "try <\"b b\"@other.example>", "\"b b\"@other.example" },
	{ "try <junk> or <> or <bob@@x> then <bob@x.example>",
	  "bob@x.example" },
	{ "try <not an address> bob@bare.example", "bob@bare.example" },
	{ "User not local; please try bob@bare.example", "bob@bare.example" },
	{ "please try bob@bare.example.", "bob@bare.example" },
	{ "forward to (bob@bare.example);", "bob@bare.example" },
	{ "use bob@bare.example, thanks", "bob@bare.example" },
	{ "a@ @b x@@y bob@bare.example", "bob@bare.example" },
	{ "try <b\xc3\xb6" "b@other.example>", "b\xc3\xb6" "b@other.example" },
	{ "try <a@[192.0.2.1]>", "a@[192.0.2.1]" },
	{ "bare first@a.example then <second@b.example>",
	  "second@b.example" },
	{ "User not local", NULL },
	{ "User not local; please try <Postmaster>", NULL },
	{ "User not local; please try <>", NULL },
	{ "try <bob@>", NULL },
	{ "try <@@@> or <a b@c>", NULL },
	{ "try <bob@other.example", NULL },
	{ "mail me at bob(at)example", NULL },
	{ "", NULL },
};

static void
test_reply_551_address(void **state)
{
	char buf[300];
	size_t i;
	bool is_found;

	(void)state;
	for (i = 0; i < N_ELEMS(fwd_cases); i++) {
		const struct fwd_case *c = &fwd_cases[i];

		buf[0] = '#';
		is_found = reply_551_address(c->text, strlen(c->text), buf,
					     sizeof(buf));
		if (is_found != (c->mailbox != NULL))
			fail_msg("'%s': got %d", c->text, is_found);
		if (is_found && c->mailbox != NULL &&
		    strcmp(buf, c->mailbox) != 0)
			fail_msg("'%s': got '%s', want '%s'", c->text, buf,
				 c->mailbox);
	}
	/* It must fit, NUL included. */
	assert_false(reply_551_address("<a@b.c>", 7, buf, 5));
	assert_true(reply_551_address("<a@b.c>", 7, buf, 6));
	assert_string_equal(buf, "a@b.c");
	assert_false(reply_551_address("<a@b.c>", 7, buf, 0));
	/* Only len octets are read: the ">" lies past them. */
	assert_false(reply_551_address("<a@b.c>", 6, buf, sizeof(buf)));
	assert_true(reply_551_address("x a@b.c.", 7, buf, sizeof(buf)));
	assert_string_equal(buf, "a@b.c");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_acc_lines),
		cmocka_unit_test(test_reply_acc_1001st_line_is_too_many),
		cmocka_unit_test(test_reply_acc_text_is_cut_at_max),
		cmocka_unit_test(test_reply_acc_nul_in_text_is_masked),
		cmocka_unit_test(test_reply_acc_format_masks_and_cuts),
		cmocka_unit_test(test_reply_ehlo_every_keyword),
		cmocka_unit_test(test_reply_ehlo_whole_reply_and_first_line),
		cmocka_unit_test(test_reply_wait_hint_phrases),
		cmocka_unit_test(test_reply_551_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
