/*
 * data.c - the DATA and BDAT readers.
 *
 * The DATA and BDAT handlers feed the client's bytes, as they arrive, to
 * data_reader_feed(); the reader copies the message text to the caller's
 * buffer and says where the message ends.  Pure: no allocation, no I/O.
 *
 * Promises:
 *   - the message ends only at CR LF "." CR LF (RFC 5321 4.1.1.4); the
 *     start of DATA counts as the start of a line, so "." CR LF right after
 *     the 354 is an empty message.  Only a real CR LF starts a line that
 *     can end the message: after a bare CR or a NUL the reader stays inside
 *     the line, and a bare LF either does the same (the strict reading) or
 *     ends the line as CR LF would (lim.is_lf_normalized) but never one
 *     that ends the message.  So "\n.\r\n", "\r.\r\n", "\r\n.\n" and
 *     the like are text, never an end, and one transaction can never
 *     become two (SMTP smuggling, CVE-2023-51764, CVE-2023-51766).  Each is
 *     flagged in r->flags so the session refuses the whole message after
 *     its end; when normalizing, a bare LF is flagged only where it borders
 *     a line holding only "." - exactly the smuggling shapes.
 *   - a "." at the start of a line followed by anything but CR is dropped
 *     (RFC 5321 4.5.2); the CR LF before the final "." belongs to the text.
 *     A normalized bare LF starts a line for this as CR LF does, as a
 *     client that ends lines in LF stuffs its dots after LF.
 *   - a line of more than lim.max_line octets before its line end is
 *     flagged; the dot added for transparency does not count (RFC 5321
 *     4.5.3.1.6).  Only a counter is kept: a long line costs no memory.
 *   - r->size counts every octet of text, but no octet past max_size is
 *     written: past it DATA_ERR_TOO_BIG is set and the reader only scans.
 *   - each input octet writes at most one output octet, except a
 *     normalized bare LF, which writes CR LF: out needs room for
 *     DATA_OUT_MAX(len).  A CR is written as soon as it is seen, as it is
 *     text whether it turns out bare or the start of CR LF.  The one
 *     exception is the CR of "." CR at the start of a line: it waits for
 *     the LF, and when anything else follows, that message holds a bare
 *     CR and is refused anyway, so the CR (in DATA the "." too) is not
 *     copied.
 *   - the result depends only on the bytes, never on how they were split
 *     into calls: all state lives in struct data_reader.
 *   - BDAT (RFC 3030): no dot handling and no end marker; the same checks
 *     run across chunk boundaries, and data_reader_finish() flags a CR left
 *     hanging at the end of the last chunk.  When normalizing, a "." alone
 *     on a line is watched in BDAT too (and kept, as BDAT text is not
 *     stuffed), so the same bytes get the same verdict by DATA or BDAT.
 *
 * Left to the session: the replies (554 5.6.0 for bare CR/LF/NUL, 552
 * 5.3.4 for long lines and TOO_BIG), and what to do with a refused
 * message's text.
 */
#include <stdint.h>
#include <string.h>

#include "proto/data.h"
#include "proto/limits.h"

/* Octets of text a line may hold before its CR LF (RFC 5321 4.5.3.1.6). */
#define DATA_TEXT_MAX (SMTP_TEXT_LINE_MAX - 2)

/* Counts n octets of text of the current line (not a stuffed dot). */
static void
data_count(struct data_reader *r, size_t n)
{
	if (r->line_len > r->lim.max_line)
		return; /* flagged already; stop counting */
	r->line_len += n;
	if (r->line_len > r->lim.max_line)
		r->flags |= DATA_ERR_LINE_TOO_LONG;
}

/* Appends p[0..n) to the text, up to max_size; counts it in r->size. */
static void
data_emit(struct data_reader *r, const char *p, size_t n, char *out,
	  size_t *out_len)
{
	uint64_t room = UINT64_MAX;

	if (r->lim.max_size != 0 && !(r->flags & DATA_ERR_TOO_BIG))
		room = r->lim.max_size - r->size;
	if (__builtin_add_overflow(r->size, n, &r->size))
		r->size = UINT64_MAX;
	if (r->flags & DATA_ERR_TOO_BIG)
		return;
	if (n > room) {
		r->flags |= DATA_ERR_TOO_BIG;
		n = (size_t)room;
	}
	memcpy(out + *out_len, p, n);
	*out_len += n;
}

/*
 * A line ends: by CR LF (the CR is written already), or by a bare LF
 * when normalizing (written as CR LF).
 */
static void
data_line_end(struct data_reader *r, bool is_bare_lf, char *out,
	      size_t *out_len)
{
	data_emit(r, is_bare_lf ? "\r\n" : "\n", is_bare_lf ? 2 : 1, out,
		  out_len);
	r->line_len = 0;
	r->is_lf_bol = is_bare_lf;
	r->state = DATA_S_BOL;
}

/* One octet inside a line; CR waits to see whether LF follows. */
static void
data_text(struct data_reader *r, char ch, char *out, size_t *out_len)
{
	if (ch == '\r') {
		data_emit(r, &ch, 1, out, out_len);
		r->state = DATA_S_CR;
		return;
	}
	if (ch == '\n' && r->lim.is_lf_normalized) {
		data_line_end(r, true, out, out_len);
		return;
	}
	if (ch == '\n')
		r->flags |= DATA_ERR_BARE_LF;
	else if (ch == '\0')
		r->flags |= DATA_ERR_NUL;
	data_count(r, 1);
	data_emit(r, &ch, 1, out, out_len);
	r->state = DATA_S_TEXT;
}

/* A CR turned out not to start CR LF: it was a bare CR inside the line. */
static void
data_bare_cr(struct data_reader *r)
{
	r->flags |= DATA_ERR_BARE_CR;
	data_count(r, 1);
}

/*
 * "." at the start of a line: in DATA it may be the end or a stuffed dot,
 * and waits; in BDAT it is text, written now, and watched only when
 * normalizing (see the promises above).
 */
static bool
data_dot_starts(struct data_reader *r, char *out, size_t *out_len)
{
	if (!r->is_bdat) {
		r->state = DATA_S_DOT;
		return true;
	}
	if (!r->lim.is_lf_normalized)
		return false;
	data_count(r, 1);
	data_emit(r, ".", 1, out, out_len);
	r->state = DATA_S_DOT;
	return true;
}

/* "." CR LF: the end of DATA, or a line of text ".". */
static bool
data_dot_line(struct data_reader *r, char *out, size_t *out_len)
{
	if (r->is_lf_bol) {
		/* <LF>.<CR><LF>: smuggling, never the end */
		r->flags |= DATA_ERR_BARE_LF;
	} else if (!r->is_bdat) {
		r->line_len = 0;
		r->state = DATA_S_BOL;
		return true;
	}
	data_emit(r, "\r", 1, out, out_len);
	data_line_end(r, false, out, out_len);
	return false;
}

/* Takes one octet; true when it was the LF of the final "." CR LF. */
static bool
data_step(struct data_reader *r, char ch, char *out, size_t *out_len)
{
	switch (r->state) {
	case DATA_S_BOL:
		if (ch == '.' && data_dot_starts(r, out, out_len))
			return false;
		break;
	case DATA_S_TEXT:
		break;
	case DATA_S_CR:
		if (ch == '\n') {
			data_line_end(r, false, out, out_len);
			return false;
		}
		data_bare_cr(r);
		break;
	case DATA_S_DOT:
		if (ch == '\r') {
			r->state = DATA_S_DOT_CR;
			return false;
		}
		/* <LF>.<LF>, <CRLF>.<LF>: smuggling, flagged; the LF
		 * ends the line below */
		if (ch == '\n' && r->lim.is_lf_normalized)
			r->flags |= DATA_ERR_BARE_LF;
		break; /* a stuffed dot is dropped (in BDAT: written) */
	case DATA_S_DOT_CR:
		if (ch == '\n')
			return data_dot_line(r, out, out_len);
		data_bare_cr(r); /* "." CR is not copied, see above */
		break;
	}
	data_text(r, ch, out, out_len);
	return false;
}

/* Nonzero when some octet of w is zero (exact as a yes/no answer). */
static uint64_t
data_has_zero(uint64_t w)
{
	return (w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL;
}

/*
 * Octets at p[0..len) before the first CR, LF or NUL.  Eight octets at
 * a time while a word holds none of the three (a word XORed with CR or
 * LF in every octet has a zero octet where one was); the word that does
 * is then looked at octet by octet.  Most of a message is such runs.
 */
static size_t
data_plain_run(const char *p, size_t len)
{
	const uint64_t cr = 0x0101010101010101ULL * '\r';
	const uint64_t lf = 0x0101010101010101ULL * '\n';
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, sizeof w);
		if (data_has_zero(w) | data_has_zero(w ^ cr) |
		    data_has_zero(w ^ lf))
			break;
	}
	while (i < len && p[i] != '\r' && p[i] != '\n' && p[i] != '\0')
		i++;
	return i;
}

void
data_reader_init(struct data_reader *r, bool is_bdat,
		 const struct data_limits *lim)
{
	memset(r, 0, sizeof(*r));
	r->state = DATA_S_BOL;
	r->is_bdat = is_bdat;
	r->lim = *lim;
	if (r->lim.max_line == 0)
		r->lim.max_line = DATA_TEXT_MAX;
}

enum data_result
data_reader_feed(struct data_reader *r, const char *in, size_t len,
		 char *out, size_t *out_len, size_t *consumed_out)
{
	size_t i = 0, n;

	while (i < len) {
		if (r->state == DATA_S_TEXT) {
			n = data_plain_run(in + i, len - i);
			if (n > 0) {
				data_count(r, n);
				data_emit(r, in + i, n, out, out_len);
				i += n;
				continue;
			}
		}
		if (data_step(r, in[i], out, out_len)) {
			*consumed_out = i + 1;
			return DATA_END;
		}
		i++;
	}
	*consumed_out = len;
	return DATA_MORE;
}

void
data_reader_finish(struct data_reader *r)
{
	if (r->state == DATA_S_CR || r->state == DATA_S_DOT_CR)
		data_bare_cr(r);
	r->state = DATA_S_TEXT;
}
