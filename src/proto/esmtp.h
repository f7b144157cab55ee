/*
 * esmtp.h - ESMTP parameters after MAIL/RCPT paths (pure).
 *
 * RFC 5321 4.1.2: esmtp-param = esmtp-keyword ["=" esmtp-value], keyword =
 * (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"), value = 1*(%d33-60 / %d62-126)
 * (RFC 6531 adds UTF-8 in values).  Keywords compare case-insensitively.
 */
#ifndef POSTERN_PROTO_ESMTP_H
#define POSTERN_PROTO_ESMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum esmtp_result {
	ESMTP_OK,	  /* one parameter in *out */
	ESMTP_END,	  /* no more parameters */
	ESMTP_ERR_SYNTAX, /* malformed keyword or value */
};

struct esmtp_param {
	const char *key; /* slice into the caller's buffer */
	size_t key_len;
	const char *value; /* NULL when there is no "=" */
	size_t value_len;
};

/*
 * Reads the next parameter from s[0..len): leading spaces are skipped, the
 * parameter ends at a space or the end.  *consumed_out counts the bytes
 * taken (the caller advances by it and calls again).
 */
enum esmtp_result esmtp_param_next(const char *s, size_t len,
				   struct esmtp_param *out,
				   size_t *consumed_out);

/* True when the parameter's keyword is kw (case-insensitive). */
bool esmtp_param_is(const struct esmtp_param *p, const char *kw);

/*
 * Parses a decimal value of 1 to 20 digits into *out; false on any other
 * character, an empty value or overflow (RFC 1870 SIZE, RFC 3030 BDAT).
 */
bool esmtp_parse_uint(const char *s, size_t len, uint64_t *out);

/*
 * RFC 3461 4: xtext = *( xchar / "+" 2HEXCHAR ), xchar = "!".."~" but
 * "+" and "=".  Decodes s[0..len) into out (NUL-terminated, size bytes);
 * false when it is not xtext, decodes to a control octet, or does not
 * fit.  *out_len gets the decoded length.
 */
bool esmtp_xtext_decode(const char *s, size_t len, char *out, size_t size,
			size_t *out_len);

/* The verdict on a REQUIRETLS parameter of MAIL FROM (RFC 8689 2). */
enum esmtp_requiretls {
	ESMTP_REQUIRETLS_OK,	 /* take it: tag the message */
	ESMTP_REQUIRETLS_SYNTAX, /* it has a value, or came twice */
	ESMTP_REQUIRETLS_NO_TLS, /* the session is in clear text */
};

/*
 * Judges REQUIRETLS (p's keyword, which the caller has matched): a
 * keyword without a value, at most once per MAIL (has_seen: an earlier
 * one), and only in a TLS session, since the EHLO of a clear session
 * does not offer the extension.  Clear text is judged first: there the
 * parameter is unavailable whatever its form.
 */
enum esmtp_requiretls esmtp_requiretls_check(const struct esmtp_param *p,
					     bool has_seen, bool is_tls);

#endif
