/*
 * reply.c - the one place reply text is made.
 *
 * Callers: server/ only (session_reply), and tests/unit/test_reply.c, which
 * renders every row.  Promises: every line ends in CRLF, is at most
 * SMTP_REPLY_LINE_MAX octets, carries the row's enhanced code right after
 * the basic code (RFC 2034 3), and never holds CR or LF inside (arguments
 * come from validated addresses and config values, and are checked again).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/limits.h"
#include "reply/reply.h"

static const struct reply_row rows[REPLY_COUNT] = {
#define R(id, code, enh, kind, text) {code, enh, kind, text, #id},
#include "reply/replies.def"
#undef R
};

static char reasons[REPLY_COUNT][32];
static pthread_once_t reasons_once = PTHREAD_ONCE_INIT;

static void
reasons_init(void)
{
	for (size_t i = 0; i < REPLY_COUNT; i++) {
		size_t j;
		for (j = 0; rows[i].name[j] && j < sizeof reasons[i] - 1; j++) {
			char c = rows[i].name[j];
			reasons[i][j] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
		}
		reasons[i][j] = '\0';
	}
}

const struct reply_row *
reply_row(enum reply_id id)
{
	return &rows[id];
}

const char *
reply_reason(enum reply_id id)
{
	pthread_once(&reasons_once, reasons_init);
	return reasons[id];
}

/* Replaces CR, LF and other controls so a line can never be split. */
static void
scrub(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
}

/* Writes "code[-| ][enh ]" into buf; returns its length. */
static size_t
prefix(char *buf, size_t size, int code, char sep, const char *enh)
{
	int n = enh ? snprintf(buf, size, "%03d%c%s ", code, sep, enh)
		    : snprintf(buf, size, "%03d%c", code, sep);
	return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* Ends the line at buf[len], cut so the whole stays within the RFC limit. */
static size_t
finish(char *buf, size_t size, size_t start, size_t len)
{
	size_t max = start + SMTP_REPLY_LINE_MAX - 2;

	if (len > max)
		len = max;
	if (len + 3 > size)
		len = size - 3;
	scrub(buf + start, len - start);
	buf[len++] = '\r';
	buf[len++] = '\n';
	buf[len] = '\0';
	return len;
}

size_t
reply_format(char *buf, size_t size, enum reply_id id, ...)
{
	const struct reply_row *r = &rows[id];
	size_t n = prefix(buf, size, r->code, ' ', r->enhanced);
	va_list ap;
	int t;

	va_start(ap, id);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	t = vsnprintf(buf + n, size - n, r->text, ap);
#pragma GCC diagnostic pop
	va_end(ap);
	if (t > 0)
		n += (size_t)t < size - n ? (size_t)t : size - n - 1;
	return finish(buf, size, 0, n);
}

size_t
reply_format_lines(char *buf, size_t size, int code, const char *enhanced,
		   const char *const *lines, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		size_t need = strlen(lines[i]) + 16 +
			      (enhanced ? strlen(enhanced) : 0);
		size_t start = len;

		if (len + need >= size)
			break;
		len += prefix(buf + len, size - len, code,
			      i + 1 < n ? '-' : ' ', enhanced);
		len += (size_t)snprintf(buf + len, size - len, "%s", lines[i]);
		len = finish(buf, size, start, len);
	}
	return len;
}
