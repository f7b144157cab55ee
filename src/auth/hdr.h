/*
 * hdr.h - the header block of a message (RFC 5322 2.2, 3.6.2), read in
 * place: where it ends, its fields one by one, and the RFC5322.From
 * domain DMARC needs (RFC 7489 6.6.1).  Pure: no allocation, no I/O.
 *
 * Lines end in CRLF; a bare LF is taken as a line end too (messages from
 * local submission and files carry them).  A field is a line that does
 * not start with SP or HTAB plus the continuation lines that do.
 */
#ifndef POSTERN_AUTH_HDR_H
#define POSTERN_AUTH_HDR_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Sets *hdr_len to the length of the header block of msg[0..len),
 * including the empty line that ends it, and returns true.  With no empty
 * line the whole message is header: *hdr_len = len and false.
 */
bool hdr_end(const char *msg, size_t len, size_t *hdr_len);

/* One header field, pointing into the message. */
struct hdr_field {
	size_t at;  /* offset of the field's first octet */
	size_t len; /* octets through the last line end (or the block end) */
	const char *name;  /* the name, trailing WSP dropped; */
	size_t name_len;   /* 0 when the line has no ':' (garbage) */
	const char *value; /* after ':' to before the last line end, */
	size_t value_len;  /* folding (CRLF WSP) kept */
};

struct hdr_iter {
	const char *msg;
	size_t len; /* the header block's length (hdr_end) */
	size_t pos;
};

/* Iterates msg[0..len); it stops by itself at the empty line. */
void hdr_iter_init(struct hdr_iter *it, const char *msg, size_t len);

/* The next field into *f; false at the end of the header block. */
bool hdr_next(struct hdr_iter *it, struct hdr_field *f);

/* True when f's name is name, ignoring ASCII case. */
bool hdr_name_is(const struct hdr_field *f, const char *name);

enum hdr_from_status {
	HDR_FROM_OK,	   /* one From:, all its mailboxes in one domain */
	HDR_FROM_NONE,	   /* no From: field */
	HDR_FROM_MULTIPLE, /* several From: fields, or several domains */
	HDR_FROM_BAD,	   /* unparseable, no mailbox, no usable domain */
};

/*
 * The RFC5322.From domain of msg[0..len) (only its header block is read)
 * into domain (size bytes), ASCII lowercased, for DMARC (RFC 7489 6.6.1).
 * Display names, quoted strings, comments (nested), angle addresses,
 * groups and obs-route are understood; UTF-8 domains pass through.  A
 * domain literal, or a domain that does not fit, is HDR_FROM_BAD.  On
 * anything but HDR_FROM_OK, domain is "".
 */
enum hdr_from_status hdr_from_domain(const char *msg, size_t len, char *domain,
				     size_t size);

#endif
