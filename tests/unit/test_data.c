/*
 * test_data.c - the DATA and BDAT readers (src/proto/data.c).
 *
 * Tables of input -> where the message ends, the text handed on and the
 * flags raised, for the strict reading and for bare LF normalized
 * ([server] bare_newline).  Every case is also fed split at every
 * position, in three pieces for short inputs, and byte by byte: a client
 * may split its writes anywhere, and the result must not change (SMTP
 * smuggling works on readers whose answer depends on packet boundaries).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/data.h"
#include "proto/limits.h"

#define TEST_IN_MAX 4096
#define TEST_THREE_WAY_MAX 48 /* inputs this short get every 3-way split */

#define LF_ DATA_ERR_BARE_LF
#define CR_ DATA_ERR_BARE_CR
#define NUL_ DATA_ERR_NUL
#define LONG_ DATA_ERR_LINE_TOO_LONG
#define BIG_ DATA_ERR_TOO_BIG

struct data_case {
	const char *name;
	const char *in;
	size_t in_len; /* 0: strlen(in) */
	uint64_t max_size;
	enum data_result result;
	size_t consumed; /* 0: all of in */
	const char *out;
	size_t out_len; /* 0: strlen(out) */
	unsigned flags;
};

/* What one feeding produced. */
struct data_run {
	enum data_result result;
	size_t consumed;
	char out[TEST_IN_MAX];
	size_t out_len;
	unsigned flags;
	uint64_t size;
	enum data_state state;
};

static const struct data_case data_cases[] = {
	/* Where a message ends. */
	{ "dot_right_after_354_is_empty_message", ".\r\n", 0, 0, DATA_END, 0,
	  "", 0, 0 },
	{ "headers_and_body", "Subject: x\r\n\r\nbody\r\n.\r\n", 0, 0,
	  DATA_END, 0, "Subject: x\r\n\r\nbody\r\n", 0, 0 },
	{ "end_stops_before_next_command", "a\r\n.\r\nQUIT\r\n", 0, 0,
	  DATA_END, 6, "a\r\n", 0, 0 },
	{ "pipelined_second_dot_is_left", "a\r\n.\r\n.\r\n", 0, 0, DATA_END,
	  6, "a\r\n", 0, 0 },
	{ "unfinished_message_wants_more", "abc\r\n", 0, 0, DATA_MORE, 0,
	  "abc\r\n", 0, 0 },
	{ "dot_without_crlf_wants_more", "abc\r\n.", 0, 0, DATA_MORE, 0,
	  "abc\r\n", 0, 0 },
	{ "dot_cr_wants_more", "abc\r\n.\r", 0, 0, DATA_MORE, 0, "abc\r\n", 0,
	  0 },
	{ "empty_lines_kept", "\r\n\r\n.\r\n", 0, 0, DATA_END, 0, "\r\n\r\n",
	  0, 0 },
	{ "dot_space_is_not_the_end", ". \r\n.\r\n", 0, 0, DATA_END, 0,
	  " \r\n", 0, 0 },
	{ "dot_mid_line_is_text", "a.\r\nb.c\r\n.\r\n", 0, 0, DATA_END, 0,
	  "a.\r\nb.c\r\n", 0, 0 },

	/* Dot-unstuffing (RFC 5321 4.5.2). */
	{ "leading_dot_is_dropped", "..x\r\n.\r\n", 0, 0, DATA_END, 0,
	  ".x\r\n", 0, 0 },
	{ "two_dot_line_becomes_one_dot", "a\r\n..\r\n.\r\n", 0, 0, DATA_END,
	  0, "a\r\n.\r\n", 0, 0 },
	{ "three_dots_become_two", "...\r\n.\r\n", 0, 0, DATA_END, 0,
	  "..\r\n", 0, 0 },
	{ "unstuffed_dot_x_loses_its_dot", ".x\r\n.\r\n", 0, 0, DATA_END, 0,
	  "x\r\n", 0, 0 },

	/* SMTP smuggling: none of these end the message; all are flagged. */
	{ "lf_dot_crlf_is_not_the_end", "a\n.\r\nb\r\n.\r\n", 0, 0, DATA_END,
	  0, "a\n.\r\nb\r\n", 0, LF_ },
	{ "cr_dot_cr_is_not_the_end", "a\r.\rb\r\n.\r\n", 0, 0, DATA_END, 0,
	  "a\r.\rb\r\n", 0, CR_ },
	{ "lf_dot_lf_is_not_the_end", "a\n.\nb\r\n.\r\n", 0, 0, DATA_END, 0,
	  "a\n.\nb\r\n", 0, LF_ },
	{ "crlf_dot_lf_is_not_the_end", "a\r\n.\nb\r\n.\r\n", 0, 0,
	  DATA_END, 0, "a\r\n\nb\r\n", 0, LF_ },
	{ "cr_dot_crlf_is_not_the_end", "a\r.\r\nb\r\n.\r\n", 0, 0, DATA_END,
	  0, "a\r.\r\nb\r\n", 0, CR_ },
	{ "crlf_nul_dot_crlf_is_not_the_end", "a\r\n\0.\r\nb\r\n.\r\n", 13, 0,
	  DATA_END, 0, "a\r\n\0.\r\nb\r\n", 10, NUL_ },
	{ "crlf_dot_cr_cr_lf_is_not_the_end", "a\r\n.\r\r\nb\r\n.\r\n", 0, 0,
	  DATA_END, 0, "a\r\n\r\nb\r\n", 0, CR_ },
	{ "crlf_dot_cr_x_drops_dot_cr", "a\r\n.\rx\r\n.\r\n", 0, 0, DATA_END,
	  0, "a\r\nx\r\n", 0, CR_ },
	{ "first_line_dot_lf_is_not_the_end", ".\nb\r\n.\r\n", 0, 0,
	  DATA_END, 0, "\nb\r\n", 0, LF_ },
	{ "first_line_dot_cr_is_not_the_end", ".\r.\r\n", 0, 0, DATA_MORE,
	  0, ".\r\n", 0, CR_ },
	{ "lf_dot_lf_alone_wants_more", "a\n.\n", 0, 0, DATA_MORE, 0,
	  "a\n.\n", 0, LF_ },
	{ "cr_dot_cr_alone_wants_more", "a\r.\r", 0, 0, DATA_MORE, 0,
	  "a\r.\r", 0, CR_ },
	{ "smuggled_transaction_stays_text",
	  "a\n.\nMAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\nevil\r\n.\r\n",
	  0, 0, DATA_END, 0,
	  "a\n.\nMAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\nevil\r\n", 0,
	  LF_ },
	{ "bare_lf_and_cr_both_flagged", "a\nb\rc\r\n.\r\n", 0, 0, DATA_END,
	  0, "a\nb\rc\r\n", 0, LF_ | CR_ },
	{ "cr_cr_lf_is_bare_cr_then_crlf", "a\r\r\n.\r\n", 0, 0, DATA_END, 0,
	  "a\r\r\n", 0, CR_ },

	/* Size: output stops at max_size, the end is still found. */
	{ "exactly_max_size_is_fine", "abc\r\n.\r\n", 0, 5, DATA_END, 0,
	  "abc\r\n", 0, 0 },
	{ "one_over_max_size_is_too_big", "abc\r\n.\r\n", 0, 4, DATA_END, 0,
	  "abc\r", 0, BIG_ },
	{ "too_big_still_finds_the_end", "abcdef\r\nghi\r\n.\r\nQUIT\r\n", 0,
	  2, DATA_END, 16, "ab", 0, BIG_ },
	{ "stuffed_dot_not_counted_in_size", "..\r\n.\r\n", 0, 3, DATA_END, 0,
	  ".\r\n", 0, 0 },
};

/* How a case is read: BDAT or DATA, bare LF normalized, the line limit. */
struct data_mode {
	bool is_bdat;
	bool is_lf;
	uint64_t max_line; /* 0: RFC 5321's 998 */
};

/* Feeds in[0..len) cut at the given points and records the outcome. */
static void
test_feed(const struct data_case *c, const struct data_mode *m,
	  const size_t *cuts, size_t ncuts, struct data_run *run)
{
	struct data_reader r;
	struct data_limits lim = {c->max_size, m->max_line, m->is_lf};
	size_t len = c->in_len ? c->in_len : strlen(c->in);
	size_t from = 0, to, i, consumed, before;
	size_t grow = m->is_lf ? 2 : 1; /* a bare LF may become CR LF */

	data_reader_init(&r, m->is_bdat, &lim);
	run->out_len = 0;
	run->consumed = 0;
	run->result = DATA_MORE;
	for (i = 0; i <= ncuts && run->result == DATA_MORE; i++) {
		to = i < ncuts ? cuts[i] : len;
		before = run->out_len;
		run->result = data_reader_feed(&r, c->in + from, to - from,
					       run->out, &run->out_len,
					       &consumed);
		assert_true(consumed <= to - from);
		assert_true(run->out_len - before <= grow * (to - from));
		assert_true(run->out_len - before <= DATA_OUT_MAX(to - from));
		if (run->result == DATA_MORE)
			assert_int_equal(consumed, to - from);
		run->consumed += consumed;
		from = to;
	}
	if (m->is_bdat)
		data_reader_finish(&r);
	run->flags = r.flags;
	run->size = r.size;
	run->state = r.state;
	assert_true(run->out_len <= grow * len);
	if (c->max_size != 0)
		assert_true(run->out_len <= c->max_size);
}

static void
test_same_run(const struct data_case *c, const struct data_run *a,
	      const struct data_run *b, const char *how, size_t where)
{
	if (a->result != b->result || a->consumed != b->consumed ||
	    a->out_len != b->out_len ||
	    memcmp(a->out, b->out, a->out_len) != 0 || a->flags != b->flags ||
	    a->size != b->size || a->state != b->state)
		fail_msg("%s: fed %s %zu differs from whole", c->name, how,
			 where);
}

/* Every 2-way split, every 3-way split of short inputs, byte by byte. */
static void
test_splits(const struct data_case *c, const struct data_mode *m,
	    const struct data_run *whole)
{
	static struct data_run run;
	size_t len = c->in_len ? c->in_len : strlen(c->in);
	size_t cuts[TEST_IN_MAX];
	size_t i, j;

	for (i = 0; i <= len; i++) {
		cuts[0] = i;
		test_feed(c, m, cuts, 1, &run);
		test_same_run(c, whole, &run, "split at", i);
	}
	for (i = 0; len <= TEST_THREE_WAY_MAX && i <= len; i++) {
		for (j = i; j <= len; j++) {
			cuts[0] = i;
			cuts[1] = j;
			test_feed(c, m, cuts, 2, &run);
			test_same_run(c, whole, &run, "split at", i * 1000 + j);
		}
	}
	for (i = 0; i < len; i++)
		cuts[i] = i + 1;
	test_feed(c, m, cuts, len, &run);
	test_same_run(c, whole, &run, "byte by byte", len);
}

static void
test_data_case(const struct data_case *c, const struct data_mode *m)
{
	static struct data_run whole;
	size_t len = c->in_len ? c->in_len : strlen(c->in);
	size_t want_consumed = c->consumed ? c->consumed : len;
	size_t want_out_len = c->out_len ? c->out_len : strlen(c->out);

	assert_true(len <= TEST_IN_MAX);
	test_feed(c, m, NULL, 0, &whole);
	if (whole.result != c->result || whole.consumed != want_consumed)
		fail_msg("%s: result %d consumed %zu, want %d %zu", c->name,
			 whole.result, whole.consumed, c->result,
			 want_consumed);
	if (whole.out_len != want_out_len ||
	    memcmp(whole.out, c->out, want_out_len) != 0)
		fail_msg("%s: out \"%.*s\" (%zu), want \"%s\"", c->name,
			 (int)whole.out_len, whole.out, whole.out_len,
			 c->out);
	if (whole.flags != c->flags)
		fail_msg("%s: flags %#x, want %#x", c->name, whole.flags,
			 c->flags);
	test_splits(c, m, &whole);
}

static const struct data_mode DATA_STRICT = {false, false, 0};
static const struct data_mode BDAT_STRICT = {true, false, 0};
static const struct data_mode DATA_LF = {false, true, 0};
static const struct data_mode BDAT_LF = {true, true, 0};

static void
test_data_cases_end_unstuff_and_flag(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++)
		test_data_case(&data_cases[i], &DATA_STRICT);
}

static const struct data_case bdat_cases[] = {
	{ "bdat_plain_lines", "a\r\nb\r\n", 0, 0, DATA_MORE, 0, "a\r\nb\r\n",
	  0, 0 },
	{ "bdat_has_no_dot_handling", "..a\r\n.\r\nb", 0, 0, DATA_MORE, 0,
	  "..a\r\n.\r\nb", 0, 0 },
	{ "bdat_no_final_crlf_is_fine", "a\r\nb", 0, 0, DATA_MORE, 0,
	  "a\r\nb", 0, 0 },
	{ "bdat_bare_lf", "a\nb\r\n", 0, 0, DATA_MORE, 0, "a\nb\r\n", 0,
	  LF_ },
	{ "bdat_bare_cr", "a\rb\r\n", 0, 0, DATA_MORE, 0, "a\rb\r\n", 0,
	  CR_ },
	{ "bdat_trailing_cr_flagged_at_finish", "a\r\nb\r", 0, 0, DATA_MORE,
	  0, "a\r\nb\r", 0, CR_ },
	{ "bdat_nul", "a\0b\r\n", 5, 0, DATA_MORE, 0, "a\0b\r\n", 5, NUL_ },
	{ "bdat_smuggling_bytes_are_just_flagged", "a\n.\r\nMAIL\r\n", 0, 0,
	  DATA_MORE, 0, "a\n.\r\nMAIL\r\n", 0, LF_ },
	{ "bdat_max_size", "abcdef", 0, 4, DATA_MORE, 0, "abcd", 0, BIG_ },
};

static void
test_bdat_cases_flag_without_dot_handling(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++)
		test_data_case(&bdat_cases[i], &BDAT_STRICT);
}

/*
 * [server] bare_newline = normalize: a bare LF ends a line and is handed
 * on as CR LF; a line holding only "." with a bare LF on either side is
 * flagged (the message is refused) and never ends the message.
 */
static const struct data_case lf_cases[] = {
	{ "lf_lines_become_crlf", "Subject: lf\n\nline\n\r\n.\r\n", 0, 0,
	  DATA_END, 0, "Subject: lf\r\n\r\nline\r\n\r\n", 0, 0 },
	{ "mixed_line_ends", "a\r\nb\nc\r\n.\r\n", 0, 0, DATA_END, 0,
	  "a\r\nb\r\nc\r\n", 0, 0 },
	{ "lf_then_crlf_dot_crlf_ends", "a\n\r\n.\r\nQUIT\r\n", 0, 0,
	  DATA_END, 7, "a\r\n\r\n", 0, 0 },
	{ "dot_after_lf_is_unstuffed", "a\n.x\n..\n\r\n.\r\n", 0, 0,
	  DATA_END, 0, "a\r\nx\r\n.\r\n\r\n", 0, 0 },
	{ "lf_dot_lf_is_not_the_end", "a\n.\nb\r\n.\r\n", 0, 0, DATA_END, 0,
	  "a\r\n\r\nb\r\n", 0, LF_ },
	{ "lf_dot_crlf_is_not_the_end", "a\n.\r\nb\r\n.\r\n", 0, 0, DATA_END,
	  0, "a\r\n\r\nb\r\n", 0, LF_ },
	{ "crlf_dot_lf_is_not_the_end", "a\r\n.\nb\r\n.\r\n", 0, 0,
	  DATA_END, 0, "a\r\n\r\nb\r\n", 0, LF_ },
	{ "first_line_dot_lf_is_not_the_end", ".\nb\r\n.\r\n", 0, 0,
	  DATA_END, 0, "\r\nb\r\n", 0, LF_ },
	{ "lf_lf_dot_lf_lf_is_not_the_end", "a\n\n.\n\nb\r\n.\r\n", 0, 0,
	  DATA_END, 0, "a\r\n\r\n\r\n\r\nb\r\n", 0, LF_ },
	{ "lf_dot_lf_alone_wants_more", "a\n.\n", 0, 0, DATA_MORE, 0,
	  "a\r\n\r\n", 0, LF_ },
	{ "lf_dot_cr_wants_more", "a\n.\r", 0, 0, DATA_MORE, 0, "a\r\n", 0,
	  0 },
	{ "smuggled_transaction_stays_text",
	  "a\n.\nMAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\nevil\r\n.\r\n",
	  0, 0, DATA_END, 0,
	  "a\r\n\r\nMAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\nevil\r\n", 0,
	  LF_ },
	{ "bare_cr_still_flagged", "a\rb\n\r\n.\r\n", 0, 0, DATA_END, 0,
	  "a\rb\r\n\r\n", 0, CR_ },
	{ "cr_dot_cr_is_not_the_end", "a\r.\rb\r\n.\r\n", 0, 0, DATA_END, 0,
	  "a\r.\rb\r\n", 0, CR_ },
	{ "lf_dot_cr_x_is_a_bare_cr", "a\n.\rx\r\n.\r\n", 0, 0, DATA_END, 0,
	  "a\r\nx\r\n", 0, CR_ },
	{ "lf_dot_cr_cr_lf", "a\n.\r\r\nb\r\n.\r\n", 0, 0, DATA_END, 0,
	  "a\r\n\r\nb\r\n", 0, CR_ },
	{ "lf_nul_dot_lf_is_nul_only", "a\n\0.\n\r\n.\r\n", 10, 0, DATA_END,
	  0, "a\r\n\0.\r\n\r\n", 9, NUL_ },
	{ "crlf_dot_nul_crlf", "a\r\n.\0\r\n.\r\n", 10, 0, DATA_END, 0,
	  "a\r\n\0\r\n", 6, NUL_ },
	{ "normalized_crlf_counts_in_size", "ab\ncd\r\n.\r\n", 0, 3,
	  DATA_END, 0, "ab\r", 0, BIG_ },
	{ "normalized_crlf_fits_exactly", "a\n\r\n.\r\n", 0, 5, DATA_END,
	  0, "a\r\n\r\n", 0, 0 },
};

static const struct data_case bdat_lf_cases[] = {
	{ "bdat_lf_lines_become_crlf", "a\nb\r\nc", 0, 0, DATA_MORE, 0,
	  "a\r\nb\r\nc", 0, 0 },
	{ "bdat_dot_lines_are_text", "..a\r\n.\r\nb", 0, 0, DATA_MORE, 0,
	  "..a\r\n.\r\nb", 0, 0 },
	{ "bdat_dot_x_after_lf_is_text", "a\n.x\n..\n", 0, 0, DATA_MORE, 0,
	  "a\r\n.x\r\n..\r\n", 0, 0 },
	{ "bdat_lf_dot_lf_flagged", "a\n.\nb", 0, 0, DATA_MORE, 0,
	  "a\r\n.\r\nb", 0, LF_ },
	{ "bdat_lf_dot_crlf_flagged", "a\n.\r\nb", 0, 0, DATA_MORE, 0,
	  "a\r\n.\r\nb", 0, LF_ },
	{ "bdat_crlf_dot_lf_flagged", "a\r\n.\nb", 0, 0, DATA_MORE, 0,
	  "a\r\n.\r\nb", 0, LF_ },
	{ "bdat_smuggling_bytes_are_flagged", "a\n.\r\nMAIL\r\n", 0, 0,
	  DATA_MORE, 0, "a\r\n.\r\nMAIL\r\n", 0, LF_ },
	{ "bdat_dot_cr_hanging_at_finish", "a\r\n.\r", 0, 0, DATA_MORE, 0,
	  "a\r\n.", 0, CR_ },
	{ "bdat_lf_max_size", "ab\ncd", 0, 3, DATA_MORE, 0, "ab\r", 0, BIG_ },
};

static void
test_lf_cases_normalize_and_flag_only_smuggling(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lf_cases) / sizeof(lf_cases[0]); i++)
		test_data_case(&lf_cases[i], &DATA_LF);
	for (i = 0; i < sizeof(bdat_lf_cases) / sizeof(bdat_lf_cases[0]); i++)
		test_data_case(&bdat_lf_cases[i], &BDAT_LF);
}

/* True when in[0..len) holds an LF that is not the end of a CR LF. */
static bool
test_has_bare_lf(const struct data_case *c)
{
	size_t len = c->in_len ? c->in_len : strlen(c->in);

	for (size_t i = 0; i < len; i++)
		if (c->in[i] == '\n' && (i == 0 || c->in[i - 1] != '\r'))
			return true;
	return false;
}

/* Normalizing changes nothing for text without a bare LF. */
static void
test_lf_mode_same_without_bare_lf(void **state)
{
	size_t i, n = 0;

	(void)state;
	for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		if (!test_has_bare_lf(&data_cases[i])) {
			test_data_case(&data_cases[i], &DATA_LF);
			n++;
		}
	}
	for (i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++) {
		if (!test_has_bare_lf(&bdat_cases[i])) {
			test_data_case(&bdat_cases[i], &BDAT_LF);
			n++;
		}
	}
	assert_true(n > 30); /* most of the tables */
}

/*
 * Builds a message whose first line has text_len octets of text, after a
 * stuffed dot when is_stuffed; the wire line is text_len (+1) + CRLF.
 */
static size_t
test_long_line(char *buf, size_t text_len, bool is_stuffed, bool is_bdat)
{
	size_t n = 0;

	if (is_stuffed)
		buf[n++] = '.';
	memset(buf + n, is_stuffed ? '.' : 'a', text_len);
	n += text_len;
	memcpy(buf + n, "\r\n.\r\n", 6);
	return n + (is_bdat ? 2 : 5);
}

/* The line limit of mode m, as the reader applies it. */
static size_t
test_max_text(const struct data_mode *m)
{
	return m->max_line ? (size_t)m->max_line : SMTP_TEXT_LINE_MAX - 2;
}

/* A line of the limit is taken, one octet more is flagged; in DATA, BDAT,
 * with and without a stuffed dot. */
static void
test_long_lines_in_mode(const struct data_mode *m)
{
	static char buf[TEST_IN_MAX];
	struct data_case c = { "long", buf, 0, 0, DATA_END, 0, NULL, 0, 0 };
	static struct data_run run;
	struct data_mode bdat = *m;
	const size_t max_text = test_max_text(m);

	bdat.is_bdat = true;
	c.in_len = test_long_line(buf, max_text, false, false);
	test_feed(&c, m, NULL, 0, &run);
	assert_int_equal(run.result, DATA_END);
	assert_int_equal(run.flags, 0);
	assert_int_equal(run.out_len, max_text + 2);

	c.in_len = test_long_line(buf, max_text + 1, false, false);
	test_feed(&c, m, NULL, 0, &run);
	assert_int_equal(run.result, DATA_END);
	assert_int_equal(run.flags, DATA_ERR_LINE_TOO_LONG);
	assert_int_equal(run.out_len, max_text + 3);

	/* The stuffed dot does not count (RFC 5321 4.5.3.1.6): 998 + 1
	 * fits, 999 + 1 does not. */
	c.in_len = test_long_line(buf, max_text, true, false);
	test_feed(&c, m, NULL, 0, &run);
	assert_int_equal(run.flags, 0);
	assert_int_equal(run.out_len, max_text + 2);
	c.in_len = test_long_line(buf, max_text + 1, true, false);
	test_feed(&c, m, NULL, 0, &run);
	assert_int_equal(run.flags, DATA_ERR_LINE_TOO_LONG);
	assert_int_equal(run.result, DATA_END);

	/* BDAT counts the same way, across chunks. */
	c.in_len = test_long_line(buf, max_text, false, true);
	test_feed(&c, &bdat, NULL, 0, &run);
	assert_int_equal(run.flags, 0);
	c.in_len = test_long_line(buf, max_text + 1, false, true);
	test_feed(&c, &bdat, NULL, 0, &run);
	assert_int_equal(run.flags, DATA_ERR_LINE_TOO_LONG);
	c.result = DATA_MORE;
	c.out = buf;
	c.out_len = c.in_len;
	c.flags = DATA_ERR_LINE_TOO_LONG;
	test_data_case(&c, &bdat);
}

static void
test_data_long_lines_are_flagged(void **state)
{
	static char buf[TEST_IN_MAX];
	struct data_case c = { "long", buf, 0, 0, DATA_END, 0, NULL, 0, 0 };
	static struct data_run run;
	/* [server] max_line_length above RFC 5321's 998, as by default */
	const struct data_mode longer = {false, false, 3000};
	const struct data_mode longer_lf = {false, true, 3000};

	(void)state;
	test_long_lines_in_mode(&DATA_STRICT);
	test_long_lines_in_mode(&DATA_LF);
	test_long_lines_in_mode(&longer);
	test_long_lines_in_mode(&longer_lf);

	/* A bare LF does not end the line: 500 + LF + 498 is 999 octets;
	 * normalized, it does: two short lines. */
	memset(buf, 'a', 999);
	buf[500] = '\n';
	memcpy(buf + 999, "\r\n.\r\n", 6);
	c.in_len = 1004;
	test_feed(&c, &DATA_STRICT, NULL, 0, &run);
	assert_int_equal(run.flags,
			 DATA_ERR_LINE_TOO_LONG | DATA_ERR_BARE_LF);
	test_feed(&c, &DATA_LF, NULL, 0, &run);
	assert_int_equal(run.flags, 0);
	assert_int_equal(run.out_len, 1002);
	/* Many short lines are fine however long the message. */
	for (c.in_len = 0; c.in_len + 10 < 3000; c.in_len += 10)
		memcpy(buf + c.in_len, "12345678\r\n", 10);
	memcpy(buf + c.in_len, ".\r\n", 3);
	c.in_len += 3;
	test_feed(&c, &DATA_STRICT, NULL, 0, &run);
	assert_int_equal(run.flags, 0);
	assert_int_equal(run.result, DATA_END);
}

/* A line far over any limit costs a counter, not memory: the reader
 * counts 5 GiB in pieces and flags it once, across the 4 GiB mark. */
static void
test_data_huge_line_is_counted_not_kept(void **state)
{
	static char in[1 << 16], out[DATA_OUT_MAX(sizeof in)];
	struct data_limits lim = {1024, UINT32_MAX, true};
	struct data_reader r;
	size_t out_len = 0, consumed;
	uint64_t fed = 0, want = (uint64_t)5 << 30;

	(void)state;
	memset(in, 'x', sizeof in);
	data_reader_init(&r, false, &lim);
	while (fed < want) {
		out_len = 0;
		assert_int_equal(data_reader_feed(&r, in, sizeof in, out,
						  &out_len, &consumed),
				 DATA_MORE);
		fed += sizeof in;
		if (fed <= UINT32_MAX)
			assert_false(r.flags & DATA_ERR_LINE_TOO_LONG);
	}
	assert_int_equal(r.flags, DATA_ERR_LINE_TOO_LONG | DATA_ERR_TOO_BIG);
	assert_true(r.size == want);
	out_len = 0;
	assert_int_equal(data_reader_feed(&r, "\r\n.\r\n", 5, out, &out_len,
					  &consumed), DATA_END);
	assert_int_equal(out_len, 0);
}

static void
test_data_size_counts_all_text(void **state)
{
	struct data_limits lim = {4, 0, false};
	struct data_reader r;
	char out[64];
	size_t out_len = 0, consumed;

	(void)state;
	data_reader_init(&r, false, &lim);
	assert_int_equal(data_reader_feed(&r, "abcdefgh\r\n", 10, out,
					  &out_len, &consumed), DATA_MORE);
	assert_int_equal(out_len, 4);
	assert_int_equal(r.size, 10);
	assert_true(r.flags & DATA_ERR_TOO_BIG);
	assert_int_equal(data_reader_feed(&r, "..\r\n.\r\nX", 8, out, &out_len,
					  &consumed), DATA_END);
	assert_int_equal(consumed, 7);
	assert_int_equal(out_len, 4);
	assert_int_equal(r.size, 13);
}

/* One LF after "." CR (normalizing, after a bare LF) writes CR LF: the
 * one octet fed is why out needs DATA_OUT_MAX, not len. */
static void
test_data_one_octet_may_write_two(void **state)
{
	struct data_limits lim = {0, 0, true};
	struct data_reader r;
	char out[16];
	size_t out_len = 0, consumed;

	(void)state;
	data_reader_init(&r, false, &lim);
	data_reader_feed(&r, "a\n.\r", 4, out, &out_len, &consumed);
	assert_int_equal(out_len, 3);
	data_reader_feed(&r, "\n", 1, out, &out_len, &consumed);
	assert_int_equal(out_len, 5);
	assert_memory_equal(out, "a\r\n\r\n", 5);
	assert_int_equal(r.flags, DATA_ERR_BARE_LF);
	out_len = 0;
	data_reader_feed(&r, "\n", 1, out, &out_len, &consumed);
	assert_int_equal(out_len, 2);
}

static void
test_data_finish_flags_only_a_hanging_cr(void **state)
{
	const struct data_limits lims[] = {{0, 0, false}, {0, 0, true}};
	struct data_reader r;
	char out[16];
	size_t out_len, consumed;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		out_len = 0;
		data_reader_init(&r, true, &lims[i]);
		data_reader_feed(&r, "a\r", 2, out, &out_len, &consumed);
		assert_int_equal(r.flags, 0);
		data_reader_feed(&r, "\nb\r", 3, out, &out_len, &consumed);
		assert_int_equal(r.flags, 0);
		data_reader_feed(&r, "\n", 1, out, &out_len, &consumed);
		data_reader_finish(&r);
		assert_int_equal(r.flags, 0);
		assert_int_equal(out_len, 6);
		assert_memory_equal(out, "a\r\nb\r\n", 6);

		data_reader_init(&r, true, &lims[i]);
		data_reader_feed(&r, "a\r", 2, out, &out_len, &consumed);
		data_reader_finish(&r);
		assert_int_equal(r.flags, DATA_ERR_BARE_CR);
	}
}

/*
 * Plain text is skipped eight octets at a time: a CR, LF or NUL must be
 * found at every offset within and across those words, after a run of
 * every length, and an octet that merely resembles one must not be.
 */
static void
test_data_special_octet_at_every_offset(void **state)
{
	static const struct {
		char ch;
		unsigned flags;
	} specials[] = {{'\n', LF_}, {'\0', NUL_}, {'\r', CR_}};
	/* 0x0c/0x0e/0x8d/0x8a/0x01/0x80: near CR, LF and NUL in value. */
	static const char near[] = "\x0c\x0e\x8d\x8a\x01\x80\x09\x0b";
	const struct data_limits lim = {0, 0, false};
	char in[128], out[128];

	(void)state;
	for (size_t k = 0; k < 3; k++) {
		for (size_t at = 0; at < 40; at++) {
			struct data_reader r;
			size_t n = 0, out_len = 0, consumed = 0;
			in[n++] = 'S';
			for (size_t i = 0; i < at; i++)
				in[n++] = near[i % 8];
			in[n++] = specials[k].ch;
			for (size_t i = 0; i < 17; i++)
				in[n++] = 'x';
			memcpy(in + n, "\r\n.\r\n", 5);
			n += 5;
			data_reader_init(&r, false, &lim);
			assert_int_equal(data_reader_feed(&r, in, n, out,
							  &out_len, &consumed),
					 DATA_END);
			assert_int_equal(consumed, n);
			assert_int_equal(r.flags, specials[k].flags);
			assert_int_equal(out_len, n - 3);
			assert_memory_equal(out, in, out_len);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_cases_end_unstuff_and_flag),
		cmocka_unit_test(test_bdat_cases_flag_without_dot_handling),
		cmocka_unit_test(test_lf_cases_normalize_and_flag_only_smuggling),
		cmocka_unit_test(test_lf_mode_same_without_bare_lf),
		cmocka_unit_test(test_data_long_lines_are_flagged),
		cmocka_unit_test(test_data_huge_line_is_counted_not_kept),
		cmocka_unit_test(test_data_size_counts_all_text),
		cmocka_unit_test(test_data_one_octet_may_write_two),
		cmocka_unit_test(test_data_finish_flags_only_a_hanging_cr),
		cmocka_unit_test(test_data_special_octet_at_every_offset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
