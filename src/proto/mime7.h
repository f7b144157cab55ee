/*
 * mime7.h - message text made fit for the next hop (pure): lines of at
 * most 998 octets, and 7-bit text for a peer without 8BITMIME.
 *
 * RFC 5322 2.1.1 and RFC 5321 4.5.3.1.6 limit a line to 998 octets; RFC
 * 6152 3 lets a client that holds 8-bit text for a server without
 * 8BITMIME convert it to 7 bit.  mime7_convert() does both, the way
 * Postfix does, in one place on the sending path:
 *
 *   - a header line over 998 octets is folded at white space (RFC 5322
 *     2.2.3), so unfolding gives the field back;
 *   - a body part that needs it (a long line; 8-bit octets when the peer
 *     takes 7 bit only) is encoded as quoted-printable (RFC 2045 6.7) and
 *     its Content-Transfer-Encoding says so; a part already in
 *     quoted-printable or base64 is repaired in that encoding; multipart
 *     boundaries and every other header stay as they were, and a part
 *     that needs nothing is copied octet for octet;
 *   - message/rfc822 parts are converted inside (their own header and
 *     parts), since a message part may only be 7bit, 8bit or binary;
 *   - a message without MIME whose body must change becomes a text/plain
 *     quoted-printable MIME message.
 *
 * What cannot be converted is said, not sent: 8-bit octets in a header
 * field (they need SMTPUTF8, RFC 6532), and, where they need a change, a
 * part in an encoding this does not know, a multipart whose boundary is
 * missing or never found, message/partial and message/external-body, or
 * parts nested deeper than MIME7_DEPTH_MAX.
 */
#ifndef POSTERN_PROTO_MIME7_H
#define POSTERN_PROTO_MIME7_H

#include <stdbool.h>
#include <stddef.h>

/* Nesting (multipart in multipart, message in message) followed. */
#define MIME7_DEPTH_MAX 32

enum mime7_flag {
	/* The peer did not offer 8BITMIME: no octet over 0x7f may go. */
	MIME7_F_7BIT = 1 << 0,
};

enum mime7_result {
	MIME7_SAME,	 /* nothing to change: the text went out as it is */
	MIME7_CONVERTED, /* lines folded or parts encoded */
	/* Cannot be sent to this peer (the output is to be dropped): */
	MIME7_ERR_HEADER,    /* 8-bit octets in a header field (7 bit) */
	MIME7_ERR_ENCODING,  /* a part in a transfer encoding not known */
	MIME7_ERR_STRUCTURE, /* a multipart without its boundary, a part
			      * that may not be re-encoded */
	MIME7_ERR_DEPTH,     /* deeper than MIME7_DEPTH_MAX */
};

/*
 * True when text[0..len) has a line over 998 octets or, with
 * MIME7_F_7BIT, an octet over 0x7f: mime7_convert() would not return
 * MIME7_SAME.  One pass, no allocation.
 */
bool mime7_is_needed(const char *text, size_t len, unsigned flags);

/*
 * Writes the text made fit for a peer (flags: enum mime7_flag) through
 * put, in pieces, and returns what it did.  Line ends are CRLF in every
 * part it changes, and as they came elsewhere; the output has no line
 * over 998 octets and, with MIME7_F_7BIT, no 8-bit octet, unless the
 * result is an error, after which the output is incomplete.  The same
 * input gives the same output; converting the output again gives
 * MIME7_SAME.  No allocation; stack use is bounded by MIME7_DEPTH_MAX.
 */
enum mime7_result mime7_convert(const char *text, size_t len, unsigned flags,
				void (*put)(void *arg, const char *p, size_t n),
				void *arg);

/* What an error result means, in words for a bounce ("" for the others). */
const char *mime7_why(enum mime7_result r);

#endif
