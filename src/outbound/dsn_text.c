/*
 * dsn_text.c - the writing underneath dsn.c: an output buffer that grows
 * up to a ceiling (a failure sticks, so callers check once at the end),
 * words flowed into folded header lines or wrapped text lines, values
 * that can never add a line of their own, RFC 5322 dates.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outbound/dsn_int.h"

/* RFC 5322 3.3 names, three letters each, never the locale's. */
static const char dsn_days[] = "SunMonTueWedThuFriSat";
static const char dsn_months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

static bool
buf_grow(struct dsn_buf *b, size_t n)
{
	size_t want, cap;
	char *p;

	if (b->is_failed)
		return false;
	if (__builtin_add_overflow(b->len, n, &want) || want > b->max) {
		b->is_failed = true;
		return false;
	}
	if (want <= b->cap && b->data != NULL)
		return true;
	cap = b->cap ? b->cap : DSN_BUF_INIT;
	while (cap < want)
		cap = cap > b->max / 2 ? b->max : cap * 2;
	if ((p = realloc(b->data, cap)) == NULL) {
		b->is_failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void
dsn_buf_put(struct dsn_buf *b, const char *s, size_t n)
{
	if (n == 0 || !buf_grow(b, n) || b->data == NULL)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

void
dsn_buf_str(struct dsn_buf *b, const char *s)
{
	dsn_buf_put(b, s, strlen(s));
}

/* Our own short pieces only; never a value from outside. */
void __attribute__((format(printf, 2, 3)))
dsn_buf_fmt(struct dsn_buf *b, const char *fmt, ...)
{
	char piece[DSN_FMT_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(piece, sizeof piece, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof piece) {
		b->is_failed = true;
		return;
	}
	dsn_buf_put(b, piece, (size_t)n);
}

/* What separates words: a space, or any control character (so CR and LF
 * never reach the output from a value). */
static bool
is_sep(char ch)
{
	unsigned char c = (unsigned char)ch;

	return c <= 0x20 || c == 0x7f;
}

/* The longest prefix of s[0..len) of at most max octets that does not end
 * inside a UTF-8 sequence. */
size_t
dsn_utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

/* Columns s[0..len) takes, counting a UTF-8 sequence as one. */
static size_t
cols(const char *s, size_t len)
{
	size_t c = 0;

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			c++;
	return c;
}

/*
 * Words flowed into lines: a word that would pass width starts a new line
 * with cont before it; a word wider than hard columns (or longer than
 * DSN_WORD_MAX octets) is cut at a character.  Separators (is_sep) between
 * words become one space, so a value can never add a line of its own.
 */
struct dsn_flow {
	const char *cont; /* starts each continuation line */
	size_t width;
	size_t hard;
	size_t col;
	bool is_first;
};

static void
flow_word(struct dsn_buf *b, struct dsn_flow *f, const char *w, size_t n)
{
	size_t wc = cols(w, n);

	if (!f->is_first && f->col + 1 + wc > f->width) {
		dsn_buf_fmt(b, "\r\n%s", f->cont);
		f->col = strlen(f->cont);
	} else if (!f->is_first) {
		dsn_buf_put(b, " ", 1);
		f->col++;
	}
	f->is_first = false;
	while (wc > f->hard || n > DSN_WORD_MAX) {
		size_t cut = dsn_utf8_cut(w, n, f->hard);

		cut = cut ? cut : f->hard;
		dsn_buf_put(b, w, cut);
		dsn_buf_fmt(b, "\r\n%s", f->cont);
		f->col = strlen(f->cont);
		w += cut;
		n -= cut;
		wc = cols(w, n);
	}
	dsn_buf_put(b, w, n);
	f->col += wc;
}

/* Flows the words of s[0..len), cut to max octets ("..." marks a cut). */
static void
flow(struct dsn_buf *b, struct dsn_flow *f, const char *s, size_t len,
     size_t max)
{
	size_t n = dsn_utf8_cut(s, len, max), i = 0;

	while (i < n) {
		size_t w = 0;

		while (i < n && is_sep(s[i]))
			i++;
		while (i + w < n && !is_sep(s[i + w]))
			w++;
		if (w > 0)
			flow_word(b, f, s + i, w);
		i += w;
	}
	if (n < len)
		flow_word(b, f, "...", 3);
}

/*
 * Appends "name: prefix value", value (at most max octets of raw[0..len))
 * cleaned and the whole folded before column 78 (RFC 5322 2.2.3).  Only a
 * run of over DSN_WORD_MAX octets without a blank is broken inside, which
 * adds a space to it but keeps every line under 998.
 */
void
dsn_put_field(struct dsn_buf *b, const char *name, const char *prefix,
	      const char *raw, size_t len, size_t max)
{
	struct dsn_flow f = {" ", DSN_FOLD_COLS, DSN_WORD_MAX, strlen(name) + 2,
			     true};

	dsn_buf_fmt(b, "%s: ", name);
	flow(b, &f, prefix, strlen(prefix), DSN_FMT_MAX);
	if (raw != NULL)
		flow(b, &f, raw, len, max);
	dsn_buf_str(b, "\r\n");
}

/* put_field for a NUL-terminated value or NULL. */
void
dsn_put_str_field(struct dsn_buf *b, const char *name, const char *prefix,
		  const char *raw, size_t max)
{
	dsn_put_field(b, name, prefix, raw, raw ? strlen(raw) : 0, max);
}

/*
 * The line of s[0..len) that starts at i: returns where its text ends and
 * sets *next to the start of the line after it.  CRLF, a bare LF or a bare
 * CR ends a line, as orig_part() will write them all as CRLF.
 */
size_t
dsn_line_at(const char *s, size_t len, size_t i, size_t *next)
{
	size_t end = i;

	while (end < len && s[end] != '\r' && s[end] != '\n')
		end++;
	*next = end;
	if (end < len && s[end] == '\r' && end + 1 < len && s[end + 1] == '\n')
		*next = end + 2;
	else if (end < len)
		*next = end + 1;
	return end;
}

/*
 * Appends text (at most max octets) for people: each of its lines
 * cleaned and wrapped at DSN_WRAP_COLS with indent before every piece; a
 * line with no words stays empty.
 */
void
dsn_put_text(struct dsn_buf *b, const char *indent, const char *text,
	     size_t max)
{
	size_t len = dsn_utf8_cut(text, strlen(text), max), i = 0, end, next;

	while (i < len) {
		struct dsn_flow f = {indent, DSN_WRAP_COLS,
				     DSN_WRAP_COLS - strlen(indent),
				     strlen(indent), true};
		size_t k;

		end = dsn_line_at(text, len, i, &next);
		for (k = i; k < end && is_sep(text[k]); k++)
			;
		if (k < end) {
			dsn_buf_str(b, indent);
			flow(b, &f, text + i, end - i, end - i);
		}
		dsn_buf_str(b, "\r\n");
		i = next;
	}
}

/* before, the RFC 5322 3.3 date-time in UTC ("Tue, 25 Nov 2025 14:02:11
 * +0000"), after. */
void
dsn_put_date(struct dsn_buf *b, const char *before, int64_t when,
	     const char *after)
{
	time_t t = (time_t)when;
	size_t wday, mon;
	struct tm tm;

	if ((int64_t)t != when || gmtime_r(&t, &tm) == NULL) {
		t = 0; /* out of range: the epoch, rather than no date */
		if (gmtime_r(&t, &tm) == NULL) {
			b->is_failed = true;
			return;
		}
	}
	wday = (size_t)(tm.tm_wday % 7);
	mon = (size_t)(tm.tm_mon % 12);
	dsn_buf_fmt(b, "%s%.3s, %02d %.3s %04d %02d:%02d:%02d +0000%s", before,
		    dsn_days + 3 * wday, tm.tm_mday, dsn_months + 3 * mon,
		    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, after);
}
