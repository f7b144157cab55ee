/*
 * line.h - finding CRLF-terminated command lines in a byte stream (pure).
 *
 * RFC 5321 2.3.8: lines end in CRLF; a bare CR or bare LF is not a line
 * ending and a server must not treat it as one.  The reader never allocates:
 * the caller keeps the bytes, the reader only tells how many to take.
 */
#ifndef POSTERN_PROTO_LINE_H
#define POSTERN_PROTO_LINE_H

#include <stdbool.h>
#include <stddef.h>

enum line_result {
	LINE_OK,	  /* a line: *line_len_out bytes, then CRLF */
	LINE_MORE,	  /* no complete line yet; *consumed_out may be > 0 */
	LINE_SKIP,	  /* the rest of an over-long line was dropped; call again */
	LINE_ERR_TOO_LONG, /* over max octets without CRLF; rest is skipped */
	LINE_ERR_BARE_LF,  /* a line ended in LF without CR; it is consumed */
	LINE_ERR_BARE_CR,  /* a CR not followed by LF inside the line */
	LINE_ERR_NUL,	  /* a NUL octet inside the line */
};

/* State kept between calls: whether we are dropping an over-long line. */
struct line_reader {
	bool is_skipping;
};

/*
 * Looks at buf[0..len) for the next line of at most max octets including
 * CRLF.  Always sets *consumed_out (bytes the caller must drop from its
 * buffer before the next call) and, on LINE_OK, *line_len_out (the line
 * without CRLF, starting at buf[0]).  Errors other than TOO_LONG consume the
 * whole offending line including its LF.  LINE_ERR_TOO_LONG is returned
 * once, as soon as max octets pass without LF; the remainder up to the next
 * LF is consumed by later calls, which return LINE_SKIP or LINE_MORE.
 */
enum line_result line_next(struct line_reader *lr, const char *buf,
			   size_t len, size_t max, size_t *line_len_out,
			   size_t *consumed_out);

#endif
