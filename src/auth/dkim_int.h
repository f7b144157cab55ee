/*
 * dkim_int.h - what the DKIM verifier (dkim.c) and signer (dkim_sign.c)
 * share from dkim_canon.c: tag lists, base64, the header split and the
 * two canonicalizations (RFC 6376 3.2, 3.4).  The unit tests use it too.
 */
#ifndef POSTERN_AUTH_DKIM_INT_H
#define POSTERN_AUTH_DKIM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/dkim.h"

#define DKIM_HASH_LEN 32	 /* SHA-256 */
#define DKIM_TAGS_MAX 32	 /* tags in one tag list */
#define DKIM_FIELDS_MAX 1000	 /* header fields looked at; more are ignored */
#define DKIM_HNAMES_MAX 128	 /* names in h= */
#define DKIM_SIG_OCTETS_MAX 1024 /* b= decoded: RSA up to 8192 bits */
#define DKIM_NO_LIMIT UINT64_MAX

/* One tag of a tag list; name and value trimmed of FWS. */
struct dkim_tag {
	const char *name;
	size_t name_len;
	const char *val;
	size_t val_len;
	size_t raw_start; /* offset just after '=' */
	size_t raw_end;	  /* offset of the ';' after it, or the end */
};

/*
 * Parses s[0..len) as an RFC 6376 3.2 tag list.  Returns the number of
 * tags (at most max), or -1 on a syntax error or a duplicated tag.
 */
int dkim_tags_parse(const char *s, size_t len, struct dkim_tag *tags,
		    size_t max);

/* The tag named name, or NULL. */
const struct dkim_tag *dkim_tag_find(const struct dkim_tag *tags, size_t n,
				     const char *name);

/* Decodes base64, skipping FWS; -1 on a bad character or no room. */
int dkim_b64_decode(const char *s, size_t len, unsigned char *out, size_t size,
		    size_t *n_out);

/* Encodes n octets into out (NUL-terminated); -1 when it does not fit. */
int dkim_b64_encode(const unsigned char *in, size_t n, char *out, size_t size);

/* One header field: the whole of it, continuation lines and CRLF included. */
struct dkim_field {
	const char *p;
	size_t len;
	size_t name_len; /* up to the colon (trailing WSP included) */
};

/*
 * Splits msg's header into fields (at most max, more are ignored) and
 * finds the body.  Returns the field count; *body_out is the offset of
 * the body (len when there is none).
 */
size_t dkim_fields_split(const char *msg, size_t len, struct dkim_field *f,
			 size_t max, size_t *body_out);

/* True when field f is named name (any case, WSP before the colon). */
bool dkim_field_is(const struct dkim_field *f, const char *name,
		   size_t name_len);

/*
 * The SHA-256 of the body canonicalized (simple or relaxed), of its first
 * limit octets when limit is not DKIM_NO_LIMIT.  *canon_len_out: the
 * whole canonical body's length.  -1 on an OpenSSL failure.
 */
int dkim_body_hash(const char *body, size_t len, bool is_relaxed,
		   uint64_t limit, unsigned char out[DKIM_HASH_LEN],
		   uint64_t *canon_len_out);

/*
 * The SHA-256 of the header part of the signed data: the fields named in
 * names (n of them; each picks the next instance from the bottom not yet
 * picked; a name with none left adds nothing), then the signature field
 * sig[0..sig_len) itself (b= already blanked), without its final CRLF.
 * -1 on an OpenSSL failure or out of memory.
 */
int dkim_header_hash(const struct dkim_field *f, size_t n_fields,
		     const char *const *names, const size_t *name_lens,
		     size_t n, const char *sig, size_t sig_len, bool is_relaxed,
		     unsigned char out[DKIM_HASH_LEN]);

/*
 * Appends the canonical form of field p[0..len) to *buf (malloc'd, grown
 * as needed; *used its length): simple is the bytes as they are, relaxed
 * RFC 6376 3.4.2.  -1 on out of memory.
 */
int dkim_canon_header(const char *p, size_t len, bool is_relaxed, char **buf,
		      size_t *used, size_t *cap);

/*
 * Signs a header hash with k (RSASSA-PKCS1-v1_5 over SHA-256, or Ed25519
 * over the hash, RFC 8463 3); sig has *n_out octets of room, then holds
 * the signature's length.  -1 on an OpenSSL failure.
 */
int dkim_sign_hash(const struct dkim_signer *k,
		   const unsigned char hash[DKIM_HASH_LEN], unsigned char *sig,
		   size_t *n_out);

#endif
