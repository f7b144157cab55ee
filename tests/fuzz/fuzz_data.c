/*
 * fuzz_data.c - libFuzzer target for the DATA and BDAT readers
 * (src/proto/data.c).
 *
 * Input: byte 0 picks the mode (bit 0: BDAT) and max_size (bit 1 set:
 * max_size = (byte 0 >> 2) * 5, else no limit); bytes 1-4 seed the
 * generator of split points, and byte 1 also picks bare LF normalized
 * (bit 0) and a short line limit (bit 1: FUZZ_LINE_SHORT octets, else
 * RFC 5321's 998); the rest is what the client sends.
 *
 * Checks:
 *   - feeding in random pieces, and byte by byte, gives exactly what one
 *     whole feed gives (end, text, flags, size, state);
 *   - no call writes more octets than it was given (twice as many when
 *     normalizing: DATA_OUT_MAX), and the text never outgrows the input
 *     (twice the input) or max_size;
 *   - an independent model of the rules agrees: the end is the first
 *     CRLF "." CRLF (the start counting as after a CRLF) in both modes,
 *     each flag is raised exactly when its octets occur (normalizing, a
 *     bare LF only beside a line holding only "."), and when no bare
 *     CR/LF/NUL is flagged the text is the unstuffed input, bare LFs
 *     made CR LF when normalizing, cut at max_size.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/data.h"
#include "proto/limits.h"

#define FUZZ_HEADER 5
#define FUZZ_CHUNK_MAX 64
#define FUZZ_SIZE_STEP 5
#define FUZZ_LINE_SHORT 7

#define FUZZ_CHECK(cond)                                                      \
	do {                                                                  \
		if (!(cond))                                                  \
			__builtin_trap();                                     \
	} while (0)

struct fuzz_run {
	enum data_result result;
	size_t consumed;
	char *out;
	size_t out_len;
	unsigned flags;
	uint64_t size;
	enum data_state state;
};

static uint32_t
fuzz_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* Feeds in[0..len) in pieces; seed 0: whole, UINT32_MAX: byte by byte. */
static void
fuzz_feed(const char *in, size_t len, bool is_bdat,
	  const struct data_limits *lim, uint32_t seed, struct fuzz_run *run)
{
	struct data_reader r;
	size_t from = 0, n, consumed, before;
	size_t grow = lim->is_lf_normalized ? 2 : 1;
	uint64_t max_size = lim->max_size;

	data_reader_init(&r, is_bdat, lim);
	run->result = DATA_MORE;
	run->consumed = 0;
	run->out_len = 0;
	while (from < len && run->result == DATA_MORE) {
		if (seed == 0)
			n = len - from;
		else if (seed == UINT32_MAX)
			n = 1;
		else
			n = fuzz_rand(&seed) % FUZZ_CHUNK_MAX;
		if (n > len - from)
			n = len - from;
		before = run->out_len;
		run->result = data_reader_feed(&r, in + from, n, run->out,
					       &run->out_len, &consumed);
		FUZZ_CHECK(consumed <= n);
		FUZZ_CHECK(run->result == DATA_END || consumed == n);
		FUZZ_CHECK(run->out_len - before <= grow * n);
		FUZZ_CHECK(run->out_len - before <= DATA_OUT_MAX(n));
		run->consumed += consumed;
		from += n;
	}
	if (is_bdat) {
		FUZZ_CHECK(run->result == DATA_MORE);
		data_reader_finish(&r);
	}
	run->flags = r.flags;
	run->size = r.size;
	run->state = r.state;
	FUZZ_CHECK(run->out_len <= grow * len);
	FUZZ_CHECK(max_size == 0 || run->out_len <= max_size);
	FUZZ_CHECK(!!(r.flags & DATA_ERR_TOO_BIG) ==
		   (max_size != 0 && r.size > max_size));
}

static void
fuzz_same(const struct fuzz_run *a, const struct fuzz_run *b)
{
	FUZZ_CHECK(a->result == b->result);
	FUZZ_CHECK(a->consumed == b->consumed);
	FUZZ_CHECK(a->out_len == b->out_len);
	FUZZ_CHECK(memcmp(a->out, b->out, a->out_len) == 0);
	FUZZ_CHECK(a->flags == b->flags);
	FUZZ_CHECK(a->size == b->size);
	FUZZ_CHECK(a->state == b->state);
}

/* Where CRLF "." CRLF ends the message in DATA mode, 0 if it does not. */
static size_t
fuzz_model_end(const char *in, size_t len)
{
	size_t i;

	if (len >= 3 && memcmp(in, ".\r\n", 3) == 0)
		return 3;
	for (i = 0; i + 5 <= len; i++) {
		if (memcmp(in + i, "\r\n.\r\n", 5) == 0)
			return i + 5;
	}
	return 0;
}

/* True when in[i] is an LF that does not end a CR LF. */
static bool
fuzz_bare_lf(const char *in, size_t i)
{
	return in[i] == '\n' && (i == 0 || in[i - 1] != '\r');
}

/*
 * Normalizing: true when in[i] is a "." alone on its line with a bare LF
 * on either side, the line's end seen within in[0..len).
 */
static bool
fuzz_dot_by_bare_lf(const char *in, size_t len, size_t i)
{
	bool is_lf_before, is_lf_after;

	if (in[i] != '.' || (i > 0 && in[i - 1] != '\n'))
		return false;
	is_lf_before = i > 0 && fuzz_bare_lf(in, i - 1);
	if (i + 1 < len && in[i + 1] == '\n')
		is_lf_after = true;
	else if (i + 2 < len && in[i + 1] == '\r' && in[i + 2] == '\n')
		is_lf_after = false;
	else
		return false; /* not a "." line, or its end not seen yet */
	return is_lf_before || is_lf_after;
}

/*
 * The flags the rules ask for on in[0..len) (what the reader consumed).
 * A "." opening a line in DATA is the stuffing, not text: RFC 5321
 * 4.5.3.1.6 does not count it against the line limit.  Normalizing, a
 * bare LF ends a line as CR LF does.
 */
static unsigned
fuzz_model_flags(const char *in, size_t len, bool is_final, bool is_bdat,
		 const struct data_limits *lim)
{
	unsigned flags = 0;
	size_t i, line = 0;
	bool is_bol = true, is_lf = lim->is_lf_normalized;

	for (i = 0; i < len; i++) {
		bool was_bol = is_bol;

		is_bol = false;
		if (in[i] == '\0')
			flags |= DATA_ERR_NUL;
		if (!is_lf && fuzz_bare_lf(in, i))
			flags |= DATA_ERR_BARE_LF;
		if (is_lf && fuzz_dot_by_bare_lf(in, len, i))
			flags |= DATA_ERR_BARE_LF;
		if (is_lf && fuzz_bare_lf(in, i)) {
			line = 0;
			is_bol = true;
			continue;
		}
		if (in[i] == '\r' && i + 1 < len && in[i + 1] != '\n')
			flags |= DATA_ERR_BARE_CR;
		if (in[i] == '\r' && i + 1 == len && is_final)
			flags |= DATA_ERR_BARE_CR;
		if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n') {
			line = 0;
			i++;
			is_bol = true;
			continue;
		}
		if (in[i] == '\r' && i + 1 == len && !is_final)
			continue; /* may yet be a CRLF */
		if (was_bol && in[i] == '.' && !is_bdat)
			continue; /* the stuffed dot */
		if (++line > lim->max_line)
			flags |= DATA_ERR_LINE_TOO_LONG;
	}
	return flags;
}

/*
 * The unstuffed text of in[0..len) for input without bare CR/NUL, and
 * without bare LF unless is_lf (then each becomes CR LF).
 */
static size_t
fuzz_model_text(const char *in, size_t len, bool is_bdat, bool is_lf, char *out)
{
	size_t i, n = 0;
	bool is_bol = true;

	for (i = 0; i < len; i++) {
		if (is_bol && in[i] == '.' && !is_bdat) {
			is_bol = false;
			continue;
		}
		is_bol = in[i] == '\n';
		if (is_lf && fuzz_bare_lf(in, i))
			out[n++] = '\r';
		out[n++] = in[i];
	}
	return n;
}

static void
fuzz_model(const char *in, size_t len, bool is_bdat,
	   const struct data_limits *lim, const struct fuzz_run *run,
	   char *text)
{
	uint64_t max_size = lim->max_size;
	const unsigned bad = DATA_ERR_BARE_CR | DATA_ERR_BARE_LF |
			     DATA_ERR_NUL;
	size_t end = is_bdat ? 0 : fuzz_model_end(in, len);
	size_t body = end ? end - 3 : len, n, want;
	unsigned flags;

	if (end) {
		FUZZ_CHECK(run->result == DATA_END && run->consumed == end);
		FUZZ_CHECK(run->state == DATA_S_BOL);
	} else {
		FUZZ_CHECK(run->result == DATA_MORE && run->consumed == len);
	}
	flags = fuzz_model_flags(in, end ? end : len, is_bdat, is_bdat, lim);
	FUZZ_CHECK((run->flags & ~DATA_ERR_TOO_BIG) == flags);
	if (flags & bad)
		return;
	if (end == 0 && !is_bdat && len > 0 && in[len - 1] == '.' &&
	    (len == 1 || in[len - 2] == '\n'))
		body = len - 1; /* a dot waiting at the start of a line */
	if (end == 0 && !is_bdat && len >= 2 && in[len - 1] == '\r' &&
	    in[len - 2] == '.' && (len == 2 || in[len - 3] == '\n'))
		body = len - 2; /* "." CR waiting at the start of a line */
	n = fuzz_model_text(in, body, is_bdat, lim->is_lf_normalized, text);
	FUZZ_CHECK(run->size == n);
	want = max_size != 0 && n > max_size ? (size_t)max_size : n;
	FUZZ_CHECK(run->out_len == want);
	FUZZ_CHECK(memcmp(run->out, text, want) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_run whole, piece;
	struct data_limits lim = {0};
	const char *in = (const char *)data + FUZZ_HEADER;
	size_t len;
	bool is_bdat;
	uint32_t seed;
	char *text;

	if (size < FUZZ_HEADER)
		return 0;
	len = size - FUZZ_HEADER;
	is_bdat = data[0] & 1;
	lim.max_size =
	    data[0] & 2 ? (uint64_t)(data[0] >> 2) * FUZZ_SIZE_STEP : 0;
	lim.is_lf_normalized = data[1] & 1;
	lim.max_line = data[1] & 2 ? FUZZ_LINE_SHORT : SMTP_TEXT_LINE_MAX - 2;
	memcpy(&seed, data + 1, sizeof(seed));
	if (seed == 0 || seed == UINT32_MAX)
		seed = 1;

	whole.out = malloc(DATA_OUT_MAX(len) + 1);
	piece.out = malloc(DATA_OUT_MAX(len) + 1);
	text = malloc(DATA_OUT_MAX(len) + 1);
	if (whole.out == NULL || piece.out == NULL || text == NULL)
		abort();
	fuzz_feed(in, len, is_bdat, &lim, 0, &whole);
	fuzz_feed(in, len, is_bdat, &lim, seed, &piece);
	fuzz_same(&whole, &piece);
	fuzz_feed(in, len, is_bdat, &lim, UINT32_MAX, &piece);
	fuzz_same(&whole, &piece);
	fuzz_model(in, len, is_bdat, &lim, &whole, text);
	free(whole.out);
	free(piece.out);
	free(text);
	return 0;
}
