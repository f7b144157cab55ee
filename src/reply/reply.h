/*
 * reply.h - rendering rows of replies.def into reply lines.
 *
 * Every reply postern sends comes from one row of src/reply/replies.def;
 * this module turns a row and its argument into "code enhanced text\r\n"
 * (RFC 5321 4.2, RFC 2034 enhanced codes), and multi-line replies into
 * "code-..." lines.  It never writes to a socket: server/ does.
 */
#ifndef POSTERN_REPLY_H
#define POSTERN_REPLY_H

#include <stddef.h>

enum reply_arg { ARG_NONE, ARG_STR, ARG_STR2, ARG_UINT, ARG_STR_UINT2 };

enum reply_id {
#define R(id, code, enh, kind, text) REPLY_##id,
#include "reply/replies.def"
#undef R
	REPLY_COUNT
};

struct reply_row {
	int code;
	const char *enhanced; /* NULL: none on this reply */
	enum reply_arg arg;
	const char *text; /* printf format with the row's argument */
	const char *name; /* "USER_UNKNOWN" */
};

/* The row for id; id must be below REPLY_COUNT. */
const struct reply_row *reply_row(enum reply_id id);

/* The row's id in lower case ("user_unknown"): the reason= word in logs. */
const char *reply_reason(enum reply_id id);

/*
 * Renders the reply id with its argument(s) (as the row's kind says: none,
 * a const char *, two, or an unsigned) into buf as one line ending in CRLF,
 * cut to SMTP_REPLY_LINE_MAX.  Returns the length written (buf always
 * NUL-terminated; size must be at least SMTP_REPLY_LINE_MAX + 1).
 */
size_t reply_format(char *buf, size_t size, enum reply_id id, ...);

/*
 * Renders a multi-line reply: lines[0..n) each become "code-text" but the
 * last "code text" (RFC 5321 4.2.1), with enhanced (may be NULL) after the
 * code on each.  Returns the length written; stops before a line that would
 * not fit.
 */
size_t reply_format_lines(char *buf, size_t size, int code,
			  const char *enhanced, const char *const *lines,
			  size_t n);

#endif
