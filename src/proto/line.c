/*
 * line.c - finding CRLF-terminated command lines in a byte stream.
 *
 * The session calls line_next() on the bytes it has buffered from the
 * client; the reader says how many bytes form the next line and how many to
 * drop.  It never allocates, copies or looks past len.
 *
 * Promises: a line is only ever ended by CR LF (RFC 5321 2.3.8).  A line
 * holding a NUL, or a CR that is not followed by LF, or ending in a bare LF
 * is consumed whole and reported as an error, never passed on as a command.
 * A line longer than max octets (CRLF included; RFC 5321 4.5.3.1.4 gives 512
 * for commands) is reported once, as soon as max octets have passed without
 * an LF, and the rest of it up to the next LF is dropped by later calls, so
 * the caller's buffer never has to grow past max.
 *
 * Left to the caller: the reply (500 for too long, 500/501 for the others)
 * and counting errors towards a 421.
 */
#include <string.h>

#include "proto/line.h"

/* Classifies a complete line buf[0..lf] whose LF is at index lf. */
static enum line_result
line_classify(const char *buf, size_t lf, size_t *line_len_out)
{
	size_t end = lf;
	size_t i;

	if (lf > 0 && buf[lf - 1] == '\r')
		end = lf - 1;
	for (i = 0; i < end; i++) {
		if (buf[i] == '\0')
			return LINE_ERR_NUL;
		if (buf[i] == '\r')
			return LINE_ERR_BARE_CR;
	}
	if (end == lf)
		return LINE_ERR_BARE_LF;
	*line_len_out = end;
	return LINE_OK;
}

/* Drops bytes up to and including the LF that ends an over-long line. */
static enum line_result
line_skip(struct line_reader *lr, const char *buf, size_t len,
	  size_t *consumed_out)
{
	const char *lf = memchr(buf, '\n', len);

	if (lf == NULL) {
		*consumed_out = len;
		return LINE_MORE;
	}
	*consumed_out = (size_t)(lf - buf) + 1;
	lr->is_skipping = false;
	return LINE_SKIP;
}

enum line_result
line_next(struct line_reader *lr, const char *buf, size_t len, size_t max,
	  size_t *line_len_out, size_t *consumed_out)
{
	size_t window;
	const char *lf;
	enum line_result res;

	*line_len_out = 0;
	*consumed_out = 0;
	if (len == 0)
		return LINE_MORE;
	if (lr->is_skipping)
		return line_skip(lr, buf, len, consumed_out);

	/* The LF of a line of at most max octets sits below index max. */
	window = len < max ? len : max;
	lf = memchr(buf, '\n', window);
	if (lf == NULL) {
		if (len < max)
			return LINE_MORE;
		*consumed_out = max;
		lr->is_skipping = true;
		return LINE_ERR_TOO_LONG;
	}
	*consumed_out = (size_t)(lf - buf) + 1;
	res = line_classify(buf, (size_t)(lf - buf), line_len_out);
	return res;
}
