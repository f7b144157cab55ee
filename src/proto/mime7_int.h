/*
 * mime7_int.h - what mime7.c (the walk over entities, the leaves) and
 * mime7_head.c (header sections: parsed, folded, written) share.
 */
#ifndef POSTERN_PROTO_MIME7_INT_H
#define POSTERN_PROTO_MIME7_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/limits.h"
#include "proto/mime7.h"

/* RFC 5321 4.5.3.1.6: octets in a line, CRLF not counted. */
#define MIME7_LINE_MAX (SMTP_TEXT_LINE_MAX - 2)
/* RFC 2045 6.7 (5) and 6.8: encoded lines. */
#define MIME7_QP_LINE 76
#define MIME7_B64_LINE 76
/* Our own output is gathered up to this before put(). */
#define MIME7_BUF 1024
/* RFC 2046 5.1.1 allows 70; longer is taken up to this. */
#define MIME7_BOUNDARY_MAX 200
/* A Content-Type or Content-Transfer-Encoding value, unfolded. */
#define MIME7_FIELD_MAX 4096
/* Type and subtype as far as they are looked at. */
#define MIME7_TYPE_MAX 64

struct m7 {
	unsigned flags;
	void (*put)(void *arg, const char *p, size_t n);
	void *arg;
	enum mime7_result err; /* the first error, or MIME7_SAME */
	char buf[MIME7_BUF];
	size_t n;
};

/* One line: its text, and its end (CRLF, LF, or none at the very end). */
struct line {
	const char *p;
	size_t len;
	size_t eol_len;
};

enum cte {
	CTE_NONE, /* no field: 7bit */
	CTE_7BIT,
	CTE_8BIT,
	CTE_BINARY,
	CTE_QP,
	CTE_BASE64,
	CTE_OTHER,
};

/* What an entity's header section says, as far as it matters here. */
struct head {
	char type[MIME7_TYPE_MAX]; /* "text/plain", lower case; "" none */
	char boundary[MIME7_BOUNDARY_MAX + 1];
	bool has_boundary;
	bool has_type;
	bool has_mime_version;
	bool has_8bit;
	enum cte cte;
	size_t len;	  /* the header section's octets */
	size_t blank_len; /* the empty line after it: 0, 1 or 2 octets */
	bool has_blank;
};

static inline bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static inline char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Output (mime7.c): n octets of our own, a C string. */
void m7_put_s(struct m7 *x, const char *s, size_t n);
void m7_put_str(struct m7 *x, const char *s);

/* The line at *pos (before end) into *l, *pos moved past it; false at
 * the end. */
bool m7_line_next(const char **pos, const char *end, struct line *l);

/* l's line end as CRLF (none when it had none). */
void m7_put_eol(struct m7 *x, const struct line *l);

/* mime7_head.c: the header section at s[0..n) into *h. */
void m7_parse_head(const char *s, size_t n, struct head *h);

/*
 * Writes the header section s (as m7_parse_head read it into h), long
 * lines folded; with cte not NULL its Content-Transfer-Encoding fields
 * are left out and, after the fields of add (may be NULL), one of value
 * cte is written.
 */
void m7_put_head(struct m7 *x, const char *s, const struct head *h,
		 const char *add, const char *cte);

#endif
