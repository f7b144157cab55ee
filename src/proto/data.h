/*
 * data.h - the DATA and BDAT readers (pure).
 *
 * RFC 5321 4.1.1.4 and 4.5.2: message text ends only at CRLF "." CRLF, a
 * leading "." is removed from each line (dot-unstuffing).  A bare CR or a
 * NUL never ends a line and never starts one: they are flagged so the
 * whole message is refused, and scanning goes on until the real end, so
 * one transaction can never become two (SMTP smuggling, CVE-2023-51764 and
 * CVE-2023-51766).  A bare LF is flagged the same way, unless the limits
 * say to normalize it (below).  Lines longer than the limits' max_line
 * are flagged too.  RFC 3030: BDAT chunks carry no dot handling; the same
 * checks apply.  Output never grows past max_size: past it, the reader
 * only scans.
 */
#ifndef POSTERN_PROTO_DATA_H
#define POSTERN_PROTO_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum data_flag {
	/* A bare LF; when normalizing, one next to a line holding only ".",
	 * the SMTP smuggling shapes (<LF>.<LF>, <LF>.<CRLF>, <CRLF>.<LF>). */
	DATA_ERR_BARE_LF = 1 << 0,
	DATA_ERR_BARE_CR = 1 << 1,
	DATA_ERR_NUL = 1 << 2,
	DATA_ERR_LINE_TOO_LONG = 1 << 3, /* a line over max_line octets */
	DATA_ERR_TOO_BIG = 1 << 4,	 /* more than max_size octets of text */
};

enum data_result {
	DATA_MORE, /* all input consumed, the end not seen yet */
	DATA_END,  /* CRLF.CRLF seen; *consumed_out stops right after it */
};

enum data_state {
	DATA_S_BOL,    /* at the start of a line (after a line end) */
	DATA_S_TEXT,   /* inside a line */
	DATA_S_CR,     /* saw CR inside a line */
	DATA_S_DOT,    /* saw "." at the start of a line */
	DATA_S_DOT_CR, /* saw "." CR at the start of a line */
};

/* What a reader takes; the zero value is RFC 5321's strict reading. */
struct data_limits {
	uint64_t max_size; /* octets of text; 0 = no limit */
	/* Octets of text in one line before its line end; 0 = RFC 5321
	 * 4.5.3.1.6's 998 (SMTP_TEXT_LINE_MAX less the CR LF). */
	uint64_t max_line;
	/*
	 * A bare LF ends a line as CR LF would and is stored as CR LF
	 * (Postfix's smtpd_forbid_bare_newline = normalize).  Still only
	 * CR LF "." CR LF ends DATA, and a line holding only "." with a
	 * bare LF on either side is flagged DATA_ERR_BARE_LF, in DATA and
	 * in BDAT: the message is refused, never cut.
	 */
	bool is_lf_normalized;
};

struct data_reader {
	enum data_state state;
	bool is_bdat;	   /* no dot handling, no end marker */
	bool is_lf_bol;	   /* the current line began after a bare LF */
	unsigned flags;	   /* enum data_flag bits seen so far */
	uint64_t line_len; /* octets in the current line so far */
	uint64_t size;	   /* octets of text seen (unstuffed, normalized) */
	struct data_limits lim;
};

/* Octets of out a feed of len input octets may write at most. */
#define DATA_OUT_MAX(len) (2 * (len))

/* Starts a reader for DATA (is_bdat false) or a BDAT transaction; lim is
 * copied. */
void data_reader_init(struct data_reader *r, bool is_bdat,
		      const struct data_limits *lim);

/*
 * Feeds in[0..len).  The unstuffed text, with its CRLF line ends and without
 * the final "." CRLF, is appended to out[*out_len..]; out must have room for
 * DATA_OUT_MAX(len) more octets (a normalized bare LF becomes CR LF; without
 * normalizing, len is enough: unstuffing only shrinks).  *consumed_out is
 * len on DATA_MORE and the bytes through the final LF on DATA_END.  In BDAT
 * mode the result is always DATA_MORE; call data_reader_finish at BDAT LAST.
 */
enum data_result data_reader_feed(struct data_reader *r, const char *in,
				  size_t len, char *out, size_t *out_len,
				  size_t *consumed_out);

/* Ends a BDAT message: a trailing lone CR is flagged as bare CR. */
void data_reader_finish(struct data_reader *r);

#endif
