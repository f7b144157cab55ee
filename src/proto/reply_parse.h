/*
 * reply_parse.h - the SMTP/LMTP client's reader of server replies (pure).
 *
 * RFC 5321 4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 * Reply-code [ SP textstring ] CRLF; RFC 3463 enhanced status codes; RFC
 * 5321 4.1.1.1 / RFC 2033 EHLO and LHLO keywords; the wait a 4xx text
 * names; the forward-path a 551 text names (RFC 5321 3.4).  Bytes from
 * the peer are (ptr, len) slices and are never read past len.
 */
#ifndef POSTERN_PROTO_REPLY_PARSE_H
#define POSTERN_PROTO_REPLY_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPLY_TEXT_MAX 2048   /* joined text kept, NUL included; rest cut */
#define REPLY_LINES_MAX 1000  /* lines of one reply before it is refused */
#define REPLY_ENH_MAX 16      /* "c.sss.ddd" and its NUL, with room */
#define REPLY_WAIT_MAX 604800 /* 7 days: a longer wait hint is ignored */

enum reply_parse_result {
	REPLY_PARSE_OK,	  /* the last line of the reply ("250 ...") */
	REPLY_PARSE_MORE, /* a continuation line ("250-..."): feed more */
	/*
	 * Not "ddd", "ddd " + text or "ddd-" + text; first digit not 2..5;
	 * a code that differs from the first line's.  The reply is unusable:
	 * the caller drops the connection.
	 */
	REPLY_PARSE_ERR_SYNTAX,
	REPLY_PARSE_ERR_TOO_MANY_LINES, /* more than REPLY_LINES_MAX lines */
};

struct reply_acc {
	unsigned code; /* 200..599 once the first line is read, else 0 */
	/* RFC 3463 enhanced code of the first line ("5.1.1"), "" if none. */
	char enh[REPLY_ENH_MAX];
	/*
	 * Every line's text after the code (and, where it repeats the first
	 * line's, the enhanced code), empty pieces skipped, joined with one
	 * space; cut at REPLY_TEXT_MAX - 1 bytes and NUL-terminated.  A NUL
	 * from the peer is stored as '?', so strlen(text) == text_len; other
	 * control characters are kept (reply_acc_format() masks them).
	 */
	char text[REPLY_TEXT_MAX];
	size_t text_len;
	size_t n_lines; /* lines accepted so far */
};

/* Empties *a for the next reply. */
void reply_acc_init(struct reply_acc *a);

/*
 * Adds one reply line, without its CRLF: line[0..len), not NUL-terminated,
 * any bytes.  REPLY_PARSE_MORE until the last line, then REPLY_PARSE_OK.
 * On an error *a is left as it was before the call.  After OK or an
 * error, call reply_acc_init() before the next reply.
 */
enum reply_parse_result reply_acc_line(struct reply_acc *a, const char *line,
				       size_t len);

/*
 * Writes the one-line summary "550 5.1.1 text" ("550 text" without an
 * enhanced code, "550" without text, "" before any line) into buf of size
 * bytes: always NUL-terminated when size > 0, cut to fit.  Control
 * characters (below 0x20, and 0x7f) in the text become '?', so the result
 * is safe for logs and a DSN's Diagnostic-Code.
 */
void reply_acc_format(const struct reply_acc *a, char *buf, size_t size);

enum ehlo_ext {
	EHLO_PIPELINING = 1 << 0,	   /* RFC 2920 */
	EHLO_SIZE = 1 << 1,		   /* RFC 1870 */
	EHLO_8BITMIME = 1 << 2,		   /* RFC 6152 */
	EHLO_SMTPUTF8 = 1 << 3,		   /* RFC 6531 */
	EHLO_STARTTLS = 1 << 4,		   /* RFC 3207 */
	EHLO_DSN = 1 << 5,		   /* RFC 3461 */
	EHLO_CHUNKING = 1 << 6,		   /* RFC 3030 */
	EHLO_ENHANCEDSTATUSCODES = 1 << 7, /* RFC 2034 */
	EHLO_REQUIRETLS = 1 << 8,	   /* RFC 8689 */
	EHLO_AUTH_PLAIN = 1 << 9,	   /* RFC 4954 AUTH ... PLAIN ... */
	EHLO_AUTH_LOGIN = 1 << 10,	   /* AUTH ... LOGIN ... */
};

struct ehlo_caps {
	unsigned ext;	   /* enum ehlo_ext bits */
	uint64_t size_max; /* SIZE n; 0 when SIZE names no usable number */
};

/*
 * Reads one line of a 250 EHLO (or LMTP LHLO) reply: the whole line with
 * its "250-" / "250 ", line[0..len).  is_first marks the first line (the
 * greeting domain), which names no extension: it clears *caps, so a second
 * EHLO (after STARTTLS, RFC 3207 4.2) forgets what the first one said.
 * Keywords compare case-insensitively (RFC 5321 2.4); "SIZE 1000000" sets
 * the bit and size_max, a bare "SIZE", or a value that is not a number or
 * overflows 64 bits, sets the bit and leaves size_max 0 (no known limit).
 * "AUTH PLAIN LOGIN ..." (also the pre-RFC "AUTH=LOGIN") sets a bit per
 * mechanism postern can use, none for AUTH alone.
 * Unknown keywords, and lines that do not start "250-" or "250 " (a 5xx
 * answer to EHLO names no extension), are ignored.
 */
void reply_ehlo_line(struct ehlo_caps *caps, const char *line, size_t len,
		     bool is_first);

/*
 * The seconds a 4xx reply's text asks the client to wait, into
 * *seconds_out.  Phrases (any case): "retry in", "retry again in",
 * "retry after", "try again in", "try again after", "try again later in",
 * "wait", "wait for", then a number, then a unit: s sec secs second seconds,
 * m min mins minute minutes, h hr hrs hour hours, d day days (the number
 * may touch the unit: "300s").  After a phrase ending in "in" a number with
 * no unit means seconds.  The first phrase followed by a number and a
 * unit it allows decides: false when there is none, or its wait is 0,
 * over REPLY_WAIT_MAX or overflows.  *seconds_out is set only on true.
 */
bool reply_wait_hint(const char *text, size_t len, unsigned *seconds_out);

/*
 * The forward-path a 551 reply's text names (RFC 5321 3.4, "User not
 * local; please try <forward-path>"): the first "<...>" that addr.h parses
 * as a path (a source route is dropped), else the first word (split at
 * spaces and tabs) holding an "@" that parses as a mailbox once a leading
 * "(" and trailing ". , ; : )" are stripped.  UTF-8 mailboxes (RFC 6531)
 * are accepted; the caller checks SMTPUTF8 before using one.  Copies
 * "local@domain" into buf (size bytes, NUL-terminated); false when there
 * is none or it does not fit.
 */
bool reply_551_address(const char *text, size_t len, char *buf, size_t size);

#endif
