/*
 * dkim_canon.c - the text side of DKIM (RFC 6376): tag lists (3.2),
 * base64, the split of a message into header fields and body, and the
 * simple and relaxed canonicalizations of both (3.4) with their SHA-256.
 * Called by the verifier (dkim.c) and the signer (dkim_sign.c), which
 * must canonicalize alike or nothing verifies.  Pure: no I/O.
 *
 * The body is hashed as it is canonicalized, in one pass and without a
 * copy; trailing empty lines are counted and only written out when more
 * text follows them (3.4.3, 3.4.4).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "auth/dkim_int.h"

#define DKIM_BUF_MIN 1024

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_alnumpunc(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

/* tval: %x21-3A / %x3C-7E; octets above 0x7f too (RFC 8616 UTF-8). */
static bool
is_tval_octet(unsigned char c)
{
	return (c >= 0x21 && c != ';' && c != 0x7f);
}

static void
trim(const char *s, size_t *a, size_t *b)
{
	while (*a < *b && is_fws(s[*a]))
		(*a)++;
	while (*b > *a && is_fws(s[*b - 1]))
		(*b)--;
}

int
dkim_tags_parse(const char *s, size_t len, struct dkim_tag *tags, size_t max)
{
	size_t i = 0, n = 0;

	while (i < len) {
		size_t name, name_end, a, b, j;

		while (i < len && is_fws(s[i]))
			i++;
		if (i == len)
			break;
		if (s[i] == ';') { /* an empty tag-spec: tolerated */
			i++;
			continue;
		}
		if (!is_alpha(s[i]))
			return -1;
		name = i;
		while (i < len && is_alnumpunc(s[i]))
			i++;
		name_end = i;
		while (i < len && is_fws(s[i]))
			i++;
		if (i == len || s[i] != '=' || n == max)
			return -1;
		a = ++i;
		while (i < len && s[i] != ';')
			i++;
		b = i;
		tags[n].raw_start = a;
		tags[n].raw_end = b;
		trim(s, &a, &b);
		for (j = a; j < b; j++)
			if (!is_tval_octet((unsigned char)s[j]) &&
			    !is_fws(s[j]))
				return -1;
		tags[n].name = s + name;
		tags[n].name_len = name_end - name;
		tags[n].val = s + a;
		tags[n].val_len = b - a;
		for (j = 0; j < n; j++)
			if (tags[j].name_len == tags[n].name_len &&
			    memcmp(tags[j].name, tags[n].name,
				   tags[n].name_len) == 0)
				return -1; /* 3.2: a duplicate is invalid */
		n++;
		if (i < len)
			i++;
	}
	return (int)n;
}

const struct dkim_tag *
dkim_tag_find(const struct dkim_tag *tags, size_t n, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (tags[i].name_len == len &&
		    memcmp(tags[i].name, name, len) == 0)
			return &tags[i];
	return NULL;
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
dkim_b64_decode(const char *s, size_t len, unsigned char *out, size_t size,
		size_t *n_out)
{
	unsigned acc = 0, bits = 0;
	size_t n = 0;
	bool is_pad = false;

	for (size_t i = 0; i < len; i++) {
		int v;

		if (is_fws(s[i]))
			continue;
		if (s[i] == '=') {
			is_pad = true;
			continue;
		}
		if (is_pad || (v = b64_value(s[i])) < 0)
			return -1;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == size)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	*n_out = n;
	return 0;
}

int
dkim_b64_encode(const unsigned char *in, size_t n, char *out, size_t size)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	if (size == 0 || (n + 2) / 3 * 4 >= size)
		return -1;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;

		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? abc[v & 63] : '=';
	}
	out[o] = '\0';
	return 0;
}

size_t
dkim_fields_split(const char *msg, size_t len, struct dkim_field *f, size_t max,
		  size_t *body_out)
{
	size_t i = 0, n = 0;

	while (i < len) {
		size_t start = i;
		const char *colon;

		if (len - i >= 2 && msg[i] == '\r' && msg[i + 1] == '\n') {
			*body_out = i + 2;
			return n;
		}
		for (;;) {
			const char *e = memmem(msg + i, len - i, "\r\n", 2);

			if (e == NULL) {
				i = len;
				break;
			}
			i = (size_t)(e - msg) + 2;
			if (i < len && is_wsp(msg[i]))
				continue;
			break;
		}
		if (n == max)
			continue;
		f[n].p = msg + start;
		f[n].len = i - start;
		colon = memchr(f[n].p, ':', f[n].len);
		f[n].name_len = colon ? (size_t)(colon - f[n].p) : f[n].len;
		n++;
	}
	*body_out = len;
	return n;
}

bool
dkim_field_is(const struct dkim_field *f, const char *name, size_t name_len)
{
	size_t n = f->name_len;

	if (n == f->len)
		return false;
	while (n > 0 && is_wsp(f->p[n - 1]))
		n--;
	return n == name_len && strncasecmp(f->p, name, n) == 0;
}

/* The canonical body goes to the hash, cut at limit octets. */
struct body_out {
	EVP_MD_CTX *md;
	uint64_t limit, total, n_empty;
	bool is_ok;
};

static void
body_emit(struct body_out *o, const char *p, size_t n)
{
	if (o->total < o->limit) {
		uint64_t room = o->limit - o->total;
		size_t k = n < room ? n : (size_t)room;

		if (k > 0 && !EVP_DigestUpdate(o->md, p, k))
			o->is_ok = false;
	}
	o->total += n;
}

/* Empty lines held back are real once text follows them. */
static void
body_flush_empty(struct body_out *o)
{
	for (; o->n_empty > 0; o->n_empty--)
		body_emit(o, "\r\n", 2);
}

static void
body_line_relaxed(struct body_out *o, const char *p, size_t n)
{
	bool has_text = false, has_sp = false;
	size_t k = 0;

	while (k < n) {
		size_t r = k;

		if (is_wsp(p[k])) {
			has_sp = true;
			k++;
			continue;
		}
		while (r < n && !is_wsp(p[r]))
			r++;
		if (!has_text)
			body_flush_empty(o);
		if (has_sp)
			body_emit(o, " ", 1);
		body_emit(o, p + k, r - k);
		has_text = true;
		has_sp = false;
		k = r;
	}
	if (has_text)
		body_emit(o, "\r\n", 2);
	else
		o->n_empty++;
}

int
dkim_body_hash(const char *body, size_t len, bool is_relaxed, uint64_t limit,
	       unsigned char out[DKIM_HASH_LEN], uint64_t *canon_len_out)
{
	struct body_out o = {EVP_MD_CTX_new(), limit, 0, 0, true};
	size_t pos = 0;
	unsigned md_len = 0;

	if (o.md == NULL || !EVP_DigestInit_ex(o.md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(o.md);
		return -1;
	}
	while (pos < len) {
		const char *e = memmem(body + pos, len - pos, "\r\n", 2);
		size_t end = e ? (size_t)(e - body) : len;

		if (is_relaxed) {
			body_line_relaxed(&o, body + pos, end - pos);
		} else if (end == pos) {
			o.n_empty++;
		} else {
			body_flush_empty(&o);
			body_emit(&o, body + pos, end - pos);
			body_emit(&o, "\r\n", 2);
		}
		pos = e ? end + 2 : len;
	}
	if (!is_relaxed && o.total == 0)
		body_emit(&o, "\r\n", 2); /* 3.4.3: an empty body is CRLF */
	if (!o.is_ok || !EVP_DigestFinal_ex(o.md, out, &md_len)) {
		EVP_MD_CTX_free(o.md);
		return -1;
	}
	EVP_MD_CTX_free(o.md);
	*canon_len_out = o.total;
	return 0;
}

static int
buf_add(char **buf, size_t *used, size_t *cap, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (n > *cap - *used) {
		size_t want = *cap ? *cap : DKIM_BUF_MIN;
		char *nb;

		while (want - *used < n) {
			if (want > SIZE_MAX / 2)
				return -1;
			want *= 2;
		}
		if ((nb = realloc(*buf, want)) == NULL)
			return -1;
		*buf = nb;
		*cap = want;
	}
	memcpy(*buf + *used, p, n);
	*used += n;
	return 0;
}

int
dkim_canon_header(const char *p, size_t len, bool is_relaxed, char **buf,
		  size_t *used, size_t *cap)
{
	const char *colon;
	size_t name_len, i;
	bool has_text = false, has_sp = false;
	int r = 0;

	if (!is_relaxed)
		return buf_add(buf, used, cap, p, len);
	colon = memchr(p, ':', len);
	name_len = colon ? (size_t)(colon - p) : len;
	while (name_len > 0 && is_fws(p[name_len - 1]))
		name_len--;
	for (i = 0; i < name_len && r == 0; i++) {
		char c = p[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		r = buf_add(buf, used, cap, &c, 1);
	}
	r |= buf_add(buf, used, cap, ":", 1);
	for (i = colon ? (size_t)(colon - p) + 1 : len; i < len && r == 0;
	     i++) {
		size_t k = i;

		if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n') {
			i++; /* unfold: CRLF goes, the WSP after it stays */
			continue;
		}
		if (is_wsp(p[i])) {
			has_sp = has_text;
			continue;
		}
		while (k + 1 < len && !is_wsp(p[k + 1]) && p[k + 1] != '\r')
			k++;
		if (has_sp)
			r |= buf_add(buf, used, cap, " ", 1);
		r |= buf_add(buf, used, cap, p + i, k - i + 1);
		has_text = true;
		has_sp = false;
		i = k;
	}
	return r != 0 ? -1 : buf_add(buf, used, cap, "\r\n", 2);
}

int
dkim_header_hash(const struct dkim_field *f, size_t n_fields,
		 const char *const *names, const size_t *name_lens, size_t n,
		 const char *sig, size_t sig_len, bool is_relaxed,
		 unsigned char out[DKIM_HASH_LEN])
{
	bool *used = calloc(n_fields ? n_fields : 1, sizeof *used);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	unsigned md_len = 0;
	int r = used ? 0 : -1;

	for (size_t i = 0; i < n && r == 0; i++) {
		for (size_t j = n_fields; j-- > 0;) {
			if (used[j] ||
			    !dkim_field_is(&f[j], names[i], name_lens[i]))
				continue;
			used[j] = true;
			r = dkim_canon_header(f[j].p, f[j].len, is_relaxed,
					      &buf, &len, &cap);
			break;
		}
	}
	if (r == 0)
		r = dkim_canon_header(sig, sig_len, is_relaxed, &buf, &len,
				      &cap);
	if (r == 0 && len >= 2 && buf[len - 2] == '\r' && buf[len - 1] == '\n')
		len -= 2; /* 3.7: the signature field without its CRLF */
	if (r == 0 && EVP_Digest(buf ? buf : "", len, out, &md_len,
				 EVP_sha256(), NULL) != 1)
		r = -1;
	free(buf);
	free(used);
	return r;
}
