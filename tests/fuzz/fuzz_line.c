/*
 * fuzz_line.c - libFuzzer target for the command line reader
 * (src/proto/line.c).
 *
 * Input: byte 0 picks max (odd: SMTP_CMD_LINE_MAX, even: 2 to 65 so the
 * limit is hit often), byte 1 seeds the split points, the rest is the
 * client's byte stream.  The stream goes through a session-like buffer
 * whole and in random pieces; both must give the same events at the same
 * stream offsets, and every event must keep line.h's promises: a line is
 * followed by CR LF and holds no CR, LF or NUL, errors other than TOO_LONG
 * end at an LF, and every call that is not LINE_MORE makes progress.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/limits.h"
#include "proto/line.h"

#define FUZZ_HEADER 2
#define FUZZ_SMALL_MAX 64
#define FUZZ_CHUNK_MAX 32

#define FUZZ_CHECK(cond)                                                      \
	do {                                                                  \
		if (!(cond))                                                  \
			__builtin_trap();                                     \
	} while (0)

struct fuzz_event {
	enum line_result result;
	size_t end;	/* stream offset just past the event's octets */
	size_t line_len;
};

static void
fuzz_check_event(const char *buf, size_t have, size_t max,
		 enum line_result r, size_t line_len, size_t consumed,
		 bool was_skipping)
{
	size_t i;

	FUZZ_CHECK(consumed <= have);
	switch (r) {
	case LINE_OK:
		FUZZ_CHECK(line_len + 2 == consumed && consumed <= max);
		FUZZ_CHECK(buf[line_len] == '\r' && buf[line_len + 1] == '\n');
		for (i = 0; i < line_len; i++)
			FUZZ_CHECK(buf[i] != '\r' && buf[i] != '\n' &&
				   buf[i] != '\0');
		break;
	case LINE_MORE:
		FUZZ_CHECK(was_skipping ? consumed == have : consumed == 0);
		FUZZ_CHECK(was_skipping || have < max);
		break;
	case LINE_ERR_TOO_LONG:
		FUZZ_CHECK(!was_skipping && consumed == max);
		FUZZ_CHECK(memchr(buf, '\n', max) == NULL);
		break;
	case LINE_SKIP:
		FUZZ_CHECK(was_skipping);
		/* fallthrough */
	case LINE_ERR_BARE_LF:
	case LINE_ERR_BARE_CR:
	case LINE_ERR_NUL:
		FUZZ_CHECK(consumed > 0 && buf[consumed - 1] == '\n');
		FUZZ_CHECK(memchr(buf, '\n', consumed - 1) == NULL);
		FUZZ_CHECK(r == LINE_SKIP || consumed <= max);
		break;
	}
}

/* Runs the stream through a buffer; returns the number of events. */
static size_t
fuzz_run(const char *in, size_t len, size_t max, uint8_t seed, char *buf,
	 struct fuzz_event *ev)
{
	struct line_reader lr = { false };
	size_t have = 0, fed = 0, at = 0, nev = 0, n, line_len, consumed;
	uint32_t x = seed | 0x100u;
	enum line_result r;
	bool was_skipping;

	while (fed < len) {
		x = x * 1103515245u + 12345u;
		n = seed == 0 ? len - fed : 1 + (x >> 16) % FUZZ_CHUNK_MAX;
		if (n > len - fed)
			n = len - fed;
		memcpy(buf + have, in + fed, n);
		have += n;
		fed += n;
		do {
			was_skipping = lr.is_skipping;
			r = line_next(&lr, buf, have, max, &line_len,
				      &consumed);
			fuzz_check_event(buf, have, max, r, line_len, consumed,
					 was_skipping);
			if (r != LINE_MORE) {
				ev[nev].result = r;
				ev[nev].end = at + consumed;
				ev[nev].line_len = line_len;
				nev++;
			}
			memmove(buf, buf + consumed, have - consumed);
			have -= consumed;
			at += consumed;
		} while (r != LINE_MORE);
	}
	return nev;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data + FUZZ_HEADER;
	struct fuzz_event *a, *b;
	size_t len, max, na, nb, i;
	char *buf;

	if (size < FUZZ_HEADER)
		return 0;
	len = size - FUZZ_HEADER;
	max = data[0] & 1 ? SMTP_CMD_LINE_MAX : 2 + data[0] % FUZZ_SMALL_MAX;
	buf = malloc(len + 1);
	a = malloc((len + 1) * sizeof(*a));
	b = malloc((len + 1) * sizeof(*b));
	if (buf == NULL || a == NULL || b == NULL)
		abort();
	na = fuzz_run(in, len, max, 0, buf, a);
	nb = fuzz_run(in, len, max, data[1] | 1, buf, b);
	FUZZ_CHECK(na == nb);
	for (i = 0; i < na; i++)
		FUZZ_CHECK(a[i].result == b[i].result && a[i].end == b[i].end &&
			   a[i].line_len == b[i].line_len);
	free(buf);
	free(a);
	free(b);
	return 0;
}
