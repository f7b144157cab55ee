/*
 * dsn_int.h - what dsn.c (the notice: its parts and words) and
 * dsn_text.c (an output buffer with a ceiling; words flowed into lines;
 * header fields, text blocks and dates written safely) share.
 */
#ifndef POSTERN_OUTBOUND_DSN_INT_H
#define POSTERN_OUTBOUND_DSN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outbound/dsn.h"
#include "proto/limits.h"
#include "util/str.h"

/* RFC 5322 2.1.1: lines should stay within 78 columns, must within 998
 * octets; a longer run without a blank is broken to keep the latter. */
#define DSN_FOLD_COLS 78
#define DSN_WORD_MAX 900
/* Lines of the text part wrap here, indentation included. */
#define DSN_WRAP_COLS 72
/* Caps on values taken from the input, in octets. */
#define DSN_ADDR_MAX SMTP_PATH_MAX
#define DSN_HOST_MAX SMTP_DOMAIN_MAX
#define DSN_STATUS_MAX 16
#define DSN_ENVID_MAX 100 /* RFC 3461 4.4 */
#define DSN_DIAG_MAX 4096
#define DSN_EXPLANATION_MAX 8192
#define DSN_SUBJECT_MAX 120
#define DSN_QID_MAX 16
/* The output never grows past twice the original plus these. */
#define DSN_BUDGET_BASE 16384
#define DSN_BUDGET_RCPT 65536
/* One formatted piece of our own (dates, a host name and ids), and the
 * first buffer. */
#define DSN_FMT_MAX 512
#define DSN_BUF_INIT 4096
/* Boundaries tried before giving up (each has 64 pseudo-random bits). */
#define DSN_BOUNDARY_TRIES 16
#define DSN_BOUNDARY_MAX 80

/* A growing output buffer with a ceiling; a failure sticks. */
struct dsn_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
	bool is_failed;
};

void dsn_buf_put(struct dsn_buf *b, const char *s, size_t n);

void dsn_buf_str(struct dsn_buf *b, const char *s);

/* Our own short pieces only; never a value from outside. */
void __attribute__((format(printf, 2, 3)))
dsn_buf_fmt(struct dsn_buf *b, const char *fmt, ...);

/* The longest prefix of s[0..len) of at most max octets that does not end
 * inside a UTF-8 sequence. */
size_t dsn_utf8_cut(const char *s, size_t len, size_t max);

/*
 * Appends "name: prefix value", value (at most max octets of raw[0..len))
 * cleaned and the whole folded before column 78 (RFC 5322 2.2.3).  Only a
 * run of over DSN_WORD_MAX octets without a blank is broken inside, which
 * adds a space to it but keeps every line under 998.
 */
void dsn_put_field(struct dsn_buf *b, const char *name, const char *prefix,
		   const char *raw, size_t len, size_t max);

/* put_field for a NUL-terminated value or NULL. */
void dsn_put_str_field(struct dsn_buf *b, const char *name, const char *prefix,
		       const char *raw, size_t max);

/*
 * The line of s[0..len) that starts at i: returns where its text ends and
 * sets *next to the start of the line after it.  CRLF, a bare LF or a bare
 * CR ends a line, as orig_part() will write them all as CRLF.
 */
size_t dsn_line_at(const char *s, size_t len, size_t i, size_t *next);

/*
 * Appends text (at most max octets) for people: each of its lines
 * cleaned and wrapped at DSN_WRAP_COLS with indent before every piece; a
 * line with no words stays empty.
 */
void dsn_put_text(struct dsn_buf *b, const char *indent, const char *text,
		  size_t max);

/* before, the RFC 5322 3.3 date-time in UTC ("Tue, 25 Nov 2025 14:02:11
 * +0000"), after. */
void dsn_put_date(struct dsn_buf *b, const char *before, int64_t when,
		  const char *after);

#endif
