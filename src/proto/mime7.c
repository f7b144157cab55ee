/*
 * mime7.c - message text made fit for the next hop: no line over 998
 * octets, and 7 bit for a peer without 8BITMIME (mime7.h says what, and
 * why; this says how).
 *
 * An entity (the message, a body part, the message inside a
 * message/rfc822 part) is copied as it is unless its octets need a
 * change, which a single scan tells (region_needs): a line over 998, or
 * an 8-bit octet when the peer takes 7 bit.  One that needs a change is
 * taken apart: its header section up to the first empty line (or the
 * first line that is no header line, as Python's parser and most readers
 * take it), then its body by its type:
 *
 *	multipart/...     the parts between "--boundary" lines (RFC 2046
 *	                  5.1.1: a delimiter line holds the boundary and at
 *	                  most "--" and white space), each an entity; the
 *	                  preamble and epilogue, which readers ignore, have
 *	                  long lines cut and 8-bit octets made '?'
 *	message/rfc822,   an entity of its own, its label made 7bit when
 *	message/global    the peer takes 7 bit
 *	anything else     a leaf: 7bit/8bit/binary is encoded as
 *	                  quoted-printable; quoted-printable is repaired
 *	                  (8-bit octets as =XX, long lines broken with soft
 *	                  breaks), so any decoder reads what it read before;
 *	                  base64 is wrapped again at 76 characters of its
 *	                  alphabet (decoders skip everything else)
 *
 * A soft line break never starts a line with '-' (it is written =2D), so
 * no encoded line can look like a delimiter of an enclosing multipart.  A
 * header line over 998 is folded before white space, never making a line
 * of white space only; a line without a usable blank is broken after a
 * ',' or ';' or, failing both, at 998, with a space inserted (the one
 * change a reader can see, and only in a header nobody could send).
 *
 * Nothing is allocated: output goes through the caller's put() in pieces
 * of at most MIME7_BUF octets or spans of the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/mime7_int.h"

static const char hex_digits[] = "0123456789ABCDEF";

static void
flush(struct m7 *x)
{
	if (x->n > 0)
		x->put(x->arg, x->buf, x->n);
	x->n = 0;
}

static void
put_span(struct m7 *x, const char *p, size_t n)
{
	if (n == 0)
		return;
	flush(x);
	x->put(x->arg, p, n);
}

static void
put_c(struct m7 *x, char c)
{
	if (x->n == sizeof x->buf)
		flush(x);
	x->buf[x->n++] = c;
}

void
m7_put_s(struct m7 *x, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put_c(x, s[i]);
}

void
m7_put_str(struct m7 *x, const char *s)
{
	m7_put_s(x, s, strlen(s));
}

static void
put_hex(struct m7 *x, unsigned char c)
{
	put_c(x, '=');
	put_c(x, hex_digits[c >> 4]);
	put_c(x, hex_digits[c & 15]);
}

static void
fail(struct m7 *x, enum mime7_result r)
{
	if (x->err == MIME7_SAME)
		x->err = r;
}

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') ||
	       (c >= 'a' && c <= 'f');
}

/* The line of [*pos, end): false when none is left. */
bool
m7_line_next(const char **pos, const char *end, struct line *l)
{
	const char *p = *pos, *lf;

	if (p >= end)
		return false;
	lf = memchr(p, '\n', (size_t)(end - p));
	l->p = p;
	if (lf == NULL) {
		l->len = (size_t)(end - p);
		l->eol_len = 0;
		*pos = end;
		return true;
	}
	l->len = (size_t)(lf - p);
	l->eol_len = 1;
	if (l->len > 0 && lf[-1] == '\r') {
		l->len--;
		l->eol_len = 2;
	}
	*pos = lf + 1;
	return true;
}

/* A line end of our own where the line had one. */
void
m7_put_eol(struct m7 *x, const struct line *l)
{
	if (l->eol_len > 0)
		m7_put_s(x, "\r\n", 2);
}

static bool
region_needs(const char *s, size_t n, unsigned flags)
{
	size_t col = 0;
	bool is_7bit = flags & MIME7_F_7BIT;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n') {
			if (col - (i > 0 && s[i - 1] == '\r' && col > 0) >
			    MIME7_LINE_MAX)
				return true;
			col = 0;
			continue;
		}
		if (c >= 0x80 && is_7bit)
			return true;
		col++;
	}
	return col > MIME7_LINE_MAX;
}

bool
mime7_is_needed(const char *text, size_t len, unsigned flags)
{
	return text != NULL && region_needs(text, len, flags);
}

/* ---- leaves */

/*
 * Quoted-printable (RFC 2045 6.7) of each line of s[0..n): hard line
 * breaks where the lines ended, lines of at most 76, blanks at a line's
 * end encoded, and a '-' opening a line after a soft break too.
 */
static void
qp_encode(struct m7 *x, const char *s, size_t n)
{
	const char *pos = s, *end = s + n;
	struct line l;

	while (m7_line_next(&pos, end, &l)) {
		size_t col = 0;
		bool is_soft = false;
		for (size_t i = 0; i < l.len; i++) {
			unsigned char c = (unsigned char)l.p[i];
			bool is_last = i + 1 == l.len;
			bool is_lit = (c >= 33 && c <= 126 && c != '=') ||
				      (is_wsp((char)c) && !is_last);
			size_t tok = is_lit ? 1 : 3;
			if (col + tok > MIME7_QP_LINE - (is_last ? 0 : 1)) {
				m7_put_s(x, "=\r\n", 3);
				col = 0;
				is_soft = true;
			}
			if (col == 0 && is_soft && c == '-')
				is_lit = false, tok = 3;
			if (is_lit)
				put_c(x, (char)c);
			else
				put_hex(x, c);
			col += tok;
		}
		m7_put_eol(x, &l);
	}
}

/*
 * A quoted-printable body made right without decoding it: an 8-bit octet
 * or a '=' that starts no escape becomes =XX, a long line gets soft
 * breaks (never inside an escape), "=" with only blanks after it is a
 * soft break (RFC 2045 6.7 (3)) and keeps the "=" alone.  Any decoder
 * reads what it read before.
 */
static void
qp_repair(struct m7 *x, const char *s, size_t n)
{
	const char *pos = s, *end = s + n;
	struct line l;

	while (m7_line_next(&pos, end, &l)) {
		size_t col = 0, i = 0;
		bool is_soft = false;
		while (i < l.len) {
			unsigned char c = (unsigned char)l.p[i];
			size_t tok = 1, used = 1, rest;
			bool is_tail = false, is_escape = false;
			if (c == '=' && i + 2 < l.len && is_hex(l.p[i + 1]) &&
			    is_hex(l.p[i + 2])) {
				tok = used = 3;
			} else if (c == '=') {
				rest = i + 1;
				while (rest < l.len && is_wsp(l.p[rest]))
					rest++;
				if (rest == l.len) {
					is_tail = true; /* a soft break */
					used = l.len - i;
				} else {
					is_escape = true;
					tok = 3;
				}
			} else if (c >= 0x80) {
				is_escape = true;
				tok = 3;
			}
			if (col + tok >
			    MIME7_QP_LINE - (i + used == l.len ? 0 : 1)) {
				m7_put_s(x, "=\r\n", 3);
				col = 0;
				is_soft = true;
			}
			if (col == 0 && is_soft && c == '-') {
				is_escape = true;
				tok = 3;
			}
			if (is_escape)
				put_hex(x, c);
			else
				m7_put_s(x, l.p + i, is_tail ? 1 : tok);
			col += tok;
			i += used;
		}
		m7_put_eol(x, &l);
	}
}

static bool
is_b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

/* Base64 (RFC 2045 6.8) again in lines of 76: its alphabet only (a
 * decoder skips every other octet), a line end last if s had one. */
static void
b64_rewrap(struct m7 *x, const char *s, size_t n)
{
	size_t col = 0;
	bool is_empty = true;

	for (size_t i = 0; i < n; i++) {
		if (!is_b64_char(s[i]))
			continue;
		put_c(x, s[i]);
		is_empty = false;
		if (++col == MIME7_B64_LINE) {
			m7_put_s(x, "\r\n", 2);
			col = 0;
		}
	}
	/* The last line end may be a delimiter's (RFC 2046 5.1.1). */
	if ((col > 0 || is_empty) && n > 0 && s[n - 1] == '\n')
		m7_put_s(x, "\r\n", 2);
}

/* The charset a non-MIME text gets when it has to become MIME. */
static const char *
guess_charset(const char *s, size_t n)
{
	bool is_8bit = false;
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t k, more;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		}
		is_8bit = true;
		if (c >= 0xc2 && c <= 0xdf)
			more = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			more = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			more = 3, cp = c & 0x07;
		else
			return "unknown-8bit";
		if (n - i <= more)
			return "unknown-8bit";
		for (k = 1; k <= more; k++) {
			unsigned char d = (unsigned char)s[i + k];
			if ((d & 0xc0) != 0x80)
				return "unknown-8bit";
			cp = cp << 6 | (d & 0x3f);
		}
		/* Overlong forms, surrogates and past U+10FFFF. */
		if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return "unknown-8bit";
		i += more + 1;
	}
	return is_8bit ? "utf-8" : "us-ascii";
}

/* ---- composites */

/* Text that readers skip (a preamble or an epilogue): long lines cut (a
 * piece never starting with '-' if that can be helped), 8-bit octets '?'
 * for a 7-bit peer. */
static void
put_skipped(struct m7 *x, const char *s, size_t n)
{
	const char *pos = s, *end = s + n;
	bool is_7bit = x->flags & MIME7_F_7BIT;
	struct line l;

	if (!region_needs(s, n, x->flags)) {
		put_span(x, s, n);
		return;
	}
	while (m7_line_next(&pos, end, &l)) {
		size_t from = 0;
		while (from < l.len) {
			size_t cut = l.len;
			if (l.len - from > MIME7_LINE_MAX) {
				cut = from + MIME7_LINE_MAX;
				while (cut > from + 1 && l.p[cut] == '-')
					cut--;
			}
			for (size_t i = from; i < cut; i++)
				put_c(x,
				      is_7bit && (unsigned char)l.p[i] >= 0x80
					  ? '?'
					  : l.p[i]);
			if (cut < l.len)
				m7_put_s(x, "\r\n", 2);
			from = cut;
		}
		m7_put_eol(x, &l);
	}
}

/* Whether l is a delimiter line of boundary bd; *is_close for "--bd--". */
static bool
is_delimiter(const struct line *l, const char *bd, size_t bd_len,
	     bool *is_close)
{
	size_t i = 2 + bd_len;

	if (l->len < i || l->p[0] != '-' || l->p[1] != '-' ||
	    memcmp(l->p + 2, bd, bd_len) != 0)
		return false;
	*is_close = l->len >= i + 2 && l->p[i] == '-' && l->p[i + 1] == '-';
	if (*is_close)
		i += 2;
	while (i < l->len && is_wsp(l->p[i]))
		i++;
	return i == l->len;
}

static void entity(struct m7 *x, const char *s, size_t n, bool is_message,
		   bool is_digest_child, unsigned depth);

/* The body s[0..n) of a multipart with boundary bd. */
static void
multipart(struct m7 *x, const char *s, size_t n, const char *bd, bool is_digest,
	  unsigned depth)
{
	const char *pos = s, *end = s + n, *seg = s;
	size_t bd_len = strlen(bd);
	bool has_parts = false, is_close = false;
	struct line l;

	while (x->err == MIME7_SAME) {
		const char *at = pos;
		if (!m7_line_next(&pos, end, &l))
			break;
		if (!is_delimiter(&l, bd, bd_len, &is_close))
			continue;
		if (has_parts)
			entity(x, seg, (size_t)(at - seg), false, is_digest,
			       depth + 1);
		else
			put_skipped(x, seg, (size_t)(at - seg));
		has_parts = true;
		if (l.len > MIME7_LINE_MAX) { /* blanks after it, cut */
			m7_put_s(x, "--", 2);
			m7_put_s(x, bd, bd_len);
			m7_put_s(x, is_close ? "--" : "", is_close ? 2 : 0);
			m7_put_eol(x, &l);
		} else {
			put_span(x, l.p, l.len + l.eol_len);
		}
		seg = pos;
		if (is_close)
			break;
	}
	if (x->err != MIME7_SAME)
		return;
	if (!has_parts) {
		/* Never a delimiter: no structure to keep it in. */
		fail(x, MIME7_ERR_STRUCTURE);
		return;
	}
	if (is_close)
		put_skipped(x, seg, (size_t)(end - seg));
	else
		entity(x, seg, (size_t)(end - seg), false, is_digest,
		       depth + 1);
}

static bool
type_is(const struct head *h, const char *type)
{
	return strcmp(h->type, type) == 0;
}

static bool
is_identity(enum cte cte)
{
	return cte == CTE_NONE || cte == CTE_7BIT || cte == CTE_8BIT ||
	       cte == CTE_BINARY;
}

/*
 * The entity s[0..n): copied when it needs nothing, else taken apart.
 * is_message: the message, or one inside a message/rfc822 part (MIME
 * fields may be added to it); is_digest_child: its default type is
 * message/rfc822 (RFC 2046 5.1.5).
 */
static void
entity(struct m7 *x, const char *s, size_t n, bool is_message,
       bool is_digest_child, unsigned depth)
{
	struct head h;
	const char *body;
	size_t body_n;
	bool is_body_needing, is_7bit = x->flags & MIME7_F_7BIT;

	if (!region_needs(s, n, x->flags)) {
		put_span(x, s, n);
		return;
	}
	if (depth >= MIME7_DEPTH_MAX) {
		fail(x, MIME7_ERR_DEPTH);
		return;
	}
	m7_parse_head(s, n, &h);
	if (h.has_8bit && is_7bit) {
		fail(x, MIME7_ERR_HEADER);
		return;
	}
	body = s + h.len + h.blank_len;
	body_n = n - h.len - h.blank_len;
	is_body_needing = region_needs(body, body_n, x->flags);
	if (!h.type[0])
		snprintf(h.type, sizeof h.type, "%s",
			 is_digest_child ? "message/rfc822" : "text/plain");
	if (!is_body_needing) {
		m7_put_head(x, s, &h, NULL, NULL);
		put_span(x, s + h.len, h.blank_len + body_n);
		return;
	}
	if (strncmp(h.type, "multipart/", 10) == 0 ||
	    ((type_is(&h, "message/rfc822") || type_is(&h, "message/global")) &&
	     is_identity(h.cte))) {
		bool is_multi = strncmp(h.type, "multipart/", 10) == 0;
		if (!is_identity(h.cte) || (is_multi && !h.has_boundary)) {
			fail(x, MIME7_ERR_STRUCTURE);
			return;
		}
		/* What is inside becomes 7 bit: say so, where it said
		 * otherwise; and parts now encoded need MIME read. */
		m7_put_head(
		    x, s, &h,
		    is_message && !h.has_mime_version ? "MIME-Version: 1.0\r\n"
						      : NULL,
		    is_7bit && (h.cte == CTE_8BIT || h.cte == CTE_BINARY)
			? "7bit"
			: NULL);
		if (!h.has_blank)
			m7_put_s(x, "\r\n", 2);
		else
			put_span(x, s + h.len, h.blank_len);
		if (is_multi)
			multipart(x, body, body_n, h.boundary,
				  type_is(&h, "multipart/digest"), depth);
		else
			entity(x, body, body_n, true, false, depth + 1);
		return;
	}
	if (type_is(&h, "message/partial") ||
	    type_is(&h, "message/external-body")) {
		/* 7bit only, and nothing to take apart (RFC 2046 5.2.2,
		 * 5.2.3).  Other message/ types (delivery-status and the
		 * like) are text, and take quoted-printable (RFC 6533 6). */
		fail(x, MIME7_ERR_STRUCTURE);
		return;
	}
	if (h.cte == CTE_OTHER) {
		fail(x, MIME7_ERR_ENCODING);
		return;
	}
	if (h.cte == CTE_QP || h.cte == CTE_BASE64) {
		m7_put_head(x, s, &h, NULL, NULL);
	} else {
		char add[MIME7_TYPE_MAX * 2] = "";
		size_t o = 0;
		if (is_message && !h.has_mime_version)
			o = (size_t)snprintf(add, sizeof add,
					     "MIME-Version: 1.0\r\n");
		if (!h.has_type)
			snprintf(add + o, sizeof add - o,
				 "Content-Type: text/plain; charset=%s\r\n",
				 guess_charset(body, body_n));
		m7_put_head(x, s, &h, add[0] ? add : NULL, "quoted-printable");
	}
	if (!h.has_blank)
		m7_put_s(x, "\r\n", 2);
	else
		put_span(x, s + h.len, h.blank_len);
	if (h.cte == CTE_QP)
		qp_repair(x, body, body_n);
	else if (h.cte == CTE_BASE64)
		b64_rewrap(x, body, body_n);
	else
		qp_encode(x, body, body_n);
}

enum mime7_result
mime7_convert(const char *text, size_t len, unsigned flags,
	      void (*put)(void *arg, const char *p, size_t n), void *arg)
{
	struct m7 x = {.flags = flags, .put = put, .arg = arg};

	if (text == NULL || len == 0)
		return MIME7_SAME;
	if (!region_needs(text, len, flags)) {
		put(arg, text, len);
		return MIME7_SAME;
	}
	entity(&x, text, len, true, false, 0);
	flush(&x);
	return x.err == MIME7_SAME ? MIME7_CONVERTED : x.err;
}

const char *
mime7_why(enum mime7_result r)
{
	switch (r) {
	case MIME7_ERR_HEADER:
		return "a header field holds 8-bit octets, which only an "
		       "SMTPUTF8 peer takes";
	case MIME7_ERR_ENCODING:
		return "a part is in a transfer encoding that cannot be "
		       "encoded again";
	case MIME7_ERR_STRUCTURE:
		return "a part cannot be encoded again (a multipart without "
		       "its boundary, or a message/partial or "
		       "message/external-body part)";
	case MIME7_ERR_DEPTH:
		return "its parts are nested too deep to convert";
	case MIME7_SAME:
	case MIME7_CONVERTED:
		break;
	}
	return "";
}
