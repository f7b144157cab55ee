/*
 * arh.h - the Authentication-Results header field (RFC 8601): written
 * for the checks we ran, and our own id's stripped from what arrives.
 *
 * The caller (the auth runner, `postern auth check`) formats one field
 * after SPF, DKIM and DMARC, and strips fields that claim to be ours from
 * the received header before adding it (RFC 8601 5).
 */
#ifndef POSTERN_AUTH_ARH_H
#define POSTERN_AUTH_ARH_H

#include <stddef.h>

#define ARH_PROPS_MAX 6

/* ptype.property=value, e.g. smtp.mailfrom=example.org (RFC 8601 2.3). */
struct arh_prop {
	const char *ptype;    /* "smtp", "header", "policy" */
	const char *property; /* "mailfrom", "d", "from" */
	const char *value;    /* quoted when it is not a token or address */
};

/* One resinfo: method=result [(comment)] [reason="..."] props. */
struct arh_entry {
	const char *method;  /* "spf", "dkim", "dmarc" (a keyword) */
	const char *result;  /* "pass", "fail", ... (a keyword) */
	const char *comment; /* NULL, or free text written as (comment) */
	const char *reason;  /* NULL, or reason="..." (RFC 8601 2.2) */
	struct arh_prop props[ARH_PROPS_MAX];
	size_t n_props;
};

/*
 * Writes the whole field, name and final CRLF included, into buf (size
 * bytes, NUL-terminated):
 *   Authentication-Results: mx.example.test;\r\n
 *   \tspf=pass smtp.mailfrom=example.org;\r\n
 *   \tdmarc=pass header.from=example.org\r\n
 * an entry a line, a property folded onto a line of its own when the
 * line would pass 78 columns; n == 0 gives "...: id; none\r\n".  Returns
 * the length written, or 0 (and buf "") when it does not fit.
 */
size_t arh_format(char *buf, size_t size, const char *authserv_id,
		  const struct arh_entry *e, size_t n);

/*
 * Removes in place, from the header block of msg[0..len) (up to the first
 * empty line), every Authentication-Results field whose authserv-id is
 * authserv_id (without case), folded lines included.  Fields whose id
 * cannot be read are kept.  Returns the new length; the bytes after it
 * are left as they were.
 */
size_t arh_strip(char *msg, size_t len, const char *authserv_id);

#endif
