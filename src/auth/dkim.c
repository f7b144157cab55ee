/*
 * dkim.c - verification of DKIM-Signature fields (RFC 6376 6, RFC 8463,
 * RFC 8301).  Called by the receiving side's authentication run
 * (policy/), which feeds DNS answers through an adns_view, and by
 * `postern auth check`.
 *
 * dkim_check_new() does all the work that needs the message: it parses
 * each signature (6.1.1) and hashes its body and header data now, so the
 * message need not be kept while keys are looked up.  dkim_check_eval()
 * then, per DNS round, parses each key record (3.6.1, 6.1.2) and checks
 * the signature over the stored hash.  Promises: at most DKIM_SIGS_MAX
 * signatures are looked at; rsa-sha1 and RSA keys under 1024 bits are
 * refused (RFC 8301: permerror); an expired signature fails.  Pure: no
 * I/O, no DNS of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "auth/dkim.h"
#include "auth/dkim_int.h"
#include "util/str.h"

#define DKIM_RSA_BITS_MIN 1024 /* RFC 8301 3.2 */
#define DKIM_KEY_OCTETS_MAX 2048
#define DKIM_NAME_MAX 320
#define DKIM_DNS_NAME_MAX 253
#define DKIM_DNS_LABEL_MAX 63
#define DKIM_HEADER_B_LEN 8

enum dkim_alg { DKIM_ALG_RSA, DKIM_ALG_ED25519 };

struct dkim_sig {
	struct dkim_sig_result r;
	bool is_done;
	enum dkim_alg alg;
	bool is_body_short; /* l= beyond the canonical body */
	unsigned char bh[DKIM_HASH_LEN];
	size_t bh_len;
	unsigned char body_hash[DKIM_HASH_LEN];
	unsigned char hdr_hash[DKIM_HASH_LEN];
	unsigned char b[DKIM_SIG_OCTETS_MAX];
	size_t b_len;
	char auid_domain[256]; /* i= after the @ */
	bool is_body_relaxed;
	bool has_body_hash;
	uint64_t limit;
};

struct dkim_check {
	size_t n;
	struct dkim_sig sig[];
};

const char *
dkim_result_name(enum dkim_result r)
{
	static const char *const names[] = {"none",	"pass",	  "fail",
					    "neutral",	"policy", "temperror",
					    "permerror"};

	return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

static void
finish(struct dkim_sig *s, enum dkim_result r, const char *problem)
{
	s->r.result = r;
	snprintf(s->r.problem, sizeof s->r.problem, "%s", problem);
	s->is_done = true;
}

static bool
val_is(const struct dkim_tag *t, const char *lit)
{
	return t != NULL && str_eq_nocase(t->val, t->val_len, lit);
}

/* Decimal digits only (t=, x=, l=); overflow saturates at UINT64_MAX. */
static bool
parse_num(const struct dkim_tag *t, uint64_t *out)
{
	uint64_t v = 0;

	if (t->val_len == 0)
		return false;
	for (size_t i = 0; i < t->val_len; i++) {
		if (t->val[i] < '0' || t->val[i] > '9')
			return false;
		if (!str_mul_u64(v, 10, &v) ||
		    !str_add_u64(v, (uint64_t)(t->val[i] - '0'), &v))
			v = UINT64_MAX;
	}
	*out = v;
	return true;
}

/* True when the colon-separated list t holds item (any case). */
static bool
list_has(const struct dkim_tag *t, const char *item)
{
	size_t i = 0;

	while (i <= t->val_len) {
		size_t a = i, b;

		while (i < t->val_len && t->val[i] != ':')
			i++;
		b = i;
		while (a < b && strchr(" \t\r\n", t->val[a]))
			a++;
		while (b > a && strchr(" \t\r\n", t->val[b - 1]))
			b--;
		if (str_eq_nocase(t->val + a, b - a, item))
			return true;
		i++;
	}
	return false;
}

/* h=: names into names/lens; false on an empty name or too many. */
static bool
split_h(const struct dkim_tag *h, const char **names, size_t *lens,
	size_t *n_out)
{
	size_t i = 0, n = 0;

	while (i <= h->val_len) {
		size_t a = i, b;

		while (i < h->val_len && h->val[i] != ':')
			i++;
		b = i;
		while (a < b && strchr(" \t\r\n", h->val[a]))
			a++;
		while (b > a && strchr(" \t\r\n", h->val[b - 1]))
			b--;
		if (a == b || n == DKIM_HNAMES_MAX)
			return false;
		names[n] = h->val + a;
		lens[n++] = b - a;
		i++;
	}
	*n_out = n;
	return true;
}

static bool
copy_val(char *dst, size_t size, const struct dkim_tag *t)
{
	if (!str_copy(dst, size, t->val, t->val_len))
		return false;
	str_lower(dst);
	return dst[0] != '\0' && strpbrk(dst, " \t\r\n") == NULL;
}

/* The tags every signature needs (6.1.1) and what they may hold. */
static const char *
check_tags(struct dkim_sig *s, const struct dkim_tag *t, size_t n, int64_t now,
	   bool *is_fail)
{
	static const char *const required[] = {"v", "a", "b", "bh",
					       "d", "h", "s"};
	const struct dkim_tag *a = dkim_tag_find(t, n, "a");
	const struct dkim_tag *i = dkim_tag_find(t, n, "i");
	const struct dkim_tag *q = dkim_tag_find(t, n, "q");
	const struct dkim_tag *tt = dkim_tag_find(t, n, "t");
	const struct dkim_tag *x = dkim_tag_find(t, n, "x");
	uint64_t ts = 0, xs = 0;

	for (size_t k = 0; k < sizeof required / sizeof required[0]; k++)
		if (dkim_tag_find(t, n, required[k]) == NULL)
			return "a required tag is missing";
	if (!val_is(dkim_tag_find(t, n, "v"), "1"))
		return "unsupported version (v=)";
	str_copy(s->r.algorithm, sizeof s->r.algorithm, a->val, a->val_len);
	if (val_is(a, "rsa-sha256"))
		s->alg = DKIM_ALG_RSA;
	else if (val_is(a, "ed25519-sha256"))
		s->alg = DKIM_ALG_ED25519;
	else if (val_is(a, "rsa-sha1"))
		return "rsa-sha1 is not accepted (RFC 8301)";
	else
		return "unknown algorithm (a=)";
	if (!list_has(dkim_tag_find(t, n, "h"), "from"))
		return "From is not signed (h=)";
	if (q != NULL && !list_has(q, "dns/txt"))
		return "no known query method (q=)";
	if (i != NULL) {
		const char *at = memrchr(i->val, '@', i->val_len);
		size_t dl, ad;

		if (at == NULL ||
		    !str_copy(s->auid_domain, sizeof s->auid_domain, at + 1,
			      i->val_len - (size_t)(at + 1 - i->val)))
			return "bad identity (i=)";
		str_lower(s->auid_domain);
		dl = strlen(s->r.domain);
		ad = strlen(s->auid_domain);
		if (!(ad == dl ||
		      (ad > dl && s->auid_domain[ad - dl - 1] == '.')) ||
		    strcmp(s->auid_domain + ad - dl, s->r.domain) != 0)
			return "identity (i=) not within the domain (d=)";
	} else {
		snprintf(s->auid_domain, sizeof s->auid_domain, "%s",
			 s->r.domain);
	}
	if ((tt != NULL && !parse_num(tt, &ts)) ||
	    (x != NULL && !parse_num(x, &xs)))
		return "bad time stamp (t= or x=)";
	if (tt != NULL && x != NULL && xs < ts)
		return "expires before it was made (x= < t=)";
	if (x != NULL && now >= 0 && xs < (uint64_t)now) {
		*is_fail = true;
		return "signature expired";
	}
	return NULL;
}

/* The canonicalization c= and the body length l=. */
static const char *
check_canon(struct dkim_sig *s, const struct dkim_tag *t, size_t n,
	    bool *is_hdr_relaxed)
{
	const struct dkim_tag *c = dkim_tag_find(t, n, "c");
	const struct dkim_tag *l = dkim_tag_find(t, n, "l");
	const char *slash;
	size_t hl;

	*is_hdr_relaxed = false;
	s->is_body_relaxed = false;
	s->limit = DKIM_NO_LIMIT;
	if (c != NULL) {
		slash = memchr(c->val, '/', c->val_len);
		hl = slash ? (size_t)(slash - c->val) : c->val_len;
		if (str_eq_nocase(c->val, hl, "relaxed"))
			*is_hdr_relaxed = true;
		else if (!str_eq_nocase(c->val, hl, "simple"))
			return "unknown canonicalization (c=)";
		if (slash != NULL) {
			size_t bl = c->val_len - hl - 1;

			if (str_eq_nocase(slash + 1, bl, "relaxed"))
				s->is_body_relaxed = true;
			else if (!str_eq_nocase(slash + 1, bl, "simple"))
				return "unknown canonicalization (c=)";
		}
	}
	if (l != NULL && !parse_num(l, &s->limit))
		return "bad body length (l=)";
	return NULL;
}

/* The signature field with the value of b= taken out (3.7). */
static char *
blank_b(const struct dkim_field *f, const char *value, const struct dkim_tag *b,
	size_t *len_out)
{
	size_t off = (size_t)(value - f->p);
	size_t cut_a = off + b->raw_start, cut_b = off + b->raw_end;
	char *out = malloc(f->len + 1);

	if (out == NULL)
		return NULL;
	memcpy(out, f->p, cut_a);
	memcpy(out + cut_a, f->p + cut_b, f->len - cut_b);
	*len_out = f->len - (cut_b - cut_a);
	return out;
}

/* An earlier signature hashed the body alike: its hash serves. */
static bool
reuse_body_hash(struct dkim_sig *s, const struct dkim_sig *prev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!prev[i].has_body_hash ||
		    prev[i].is_body_relaxed != s->is_body_relaxed ||
		    prev[i].limit != s->limit)
			continue;
		memcpy(s->body_hash, prev[i].body_hash, DKIM_HASH_LEN);
		s->is_body_short = prev[i].is_body_short;
		s->has_body_hash = true;
		return true;
	}
	return false;
}

/*
 * Parses one signature, s = the idx_sig-th of an array, and hashes what
 * it signs; -1: out of memory.
 */
static int
sig_prepare(struct dkim_sig *s, size_t idx_sig, const struct dkim_field *fields,
	    size_t n_fields, size_t idx, const char *body, size_t body_len,
	    int64_t now)
{
	const struct dkim_field *f = &fields[idx];
	const char *value = f->p + f->name_len + 1;
	size_t vlen = f->len - f->name_len - 1, n_names = 0, blen = 0;
	struct dkim_tag t[DKIM_TAGS_MAX];
	const char *names[DKIM_HNAMES_MAX];
	size_t lens[DKIM_HNAMES_MAX];
	const struct dkim_tag *b, *bh;
	const char *problem;
	bool is_hdr_relaxed = false, is_fail = false;
	uint64_t canon_len = 0;
	char *blanked;
	int n, r;

	s->r.result = DKIM_NONE;
	n = dkim_tags_parse(value, vlen, t, DKIM_TAGS_MAX);
	if (n < 0) {
		finish(s, DKIM_PERMERROR, "signature syntax error");
		return 0;
	}
	if ((b = dkim_tag_find(t, (size_t)n, "b")) != NULL) {
		size_t o = 0; /* RFC 6008 2: 8 characters, FWS left out */

		for (size_t j = 0; j < b->val_len && o < DKIM_HEADER_B_LEN; j++)
			if (!strchr(" \t\r\n", b->val[j]))
				s->r.header_b[o++] = b->val[j];
		s->r.header_b[o] = '\0';
	}
	if (dkim_tag_find(t, (size_t)n, "d") != NULL &&
	    !copy_val(s->r.domain, sizeof s->r.domain,
		      dkim_tag_find(t, (size_t)n, "d"))) {
		finish(s, DKIM_PERMERROR, "bad domain (d=)");
		return 0;
	}
	if (dkim_tag_find(t, (size_t)n, "s") != NULL &&
	    !copy_val(s->r.selector, sizeof s->r.selector,
		      dkim_tag_find(t, (size_t)n, "s"))) {
		finish(s, DKIM_PERMERROR, "bad selector (s=)");
		return 0;
	}
	problem = check_tags(s, t, (size_t)n, now, &is_fail);
	if (problem == NULL)
		problem = check_canon(s, t, (size_t)n, &is_hdr_relaxed);
	bh = dkim_tag_find(t, (size_t)n, "bh");
	if (problem == NULL && (b == NULL || bh == NULL))
		problem = "a required tag is missing";
	if (problem == NULL &&
	    (dkim_b64_decode(bh->val, bh->val_len, s->bh, sizeof s->bh,
			     &s->bh_len) != 0 ||
	     dkim_b64_decode(b->val, b->val_len, s->b, sizeof s->b,
			     &s->b_len) != 0 ||
	     s->b_len == 0))
		problem = "bad base64 in b= or bh=";
	if (problem == NULL &&
	    !split_h(dkim_tag_find(t, (size_t)n, "h"), names, lens, &n_names))
		problem = "bad header list (h=)";
	if (problem != NULL) {
		finish(s, is_fail ? DKIM_FAIL : DKIM_PERMERROR, problem);
		return 0;
	}
	if (!reuse_body_hash(s, s - idx_sig, idx_sig)) {
		if (dkim_body_hash(body, body_len, s->is_body_relaxed, s->limit,
				   s->body_hash, &canon_len) != 0)
			return -1;
		s->is_body_short =
		    s->limit != DKIM_NO_LIMIT && s->limit > canon_len;
		s->has_body_hash = true;
	}
	if ((blanked = blank_b(f, value, b, &blen)) == NULL)
		return -1;
	r = dkim_header_hash(fields, n_fields, names, lens, n_names, blanked,
			     blen, is_hdr_relaxed, s->hdr_hash);
	free(blanked);
	return r;
}

struct dkim_check *
dkim_check_new(const char *msg, size_t len, size_t max_sigs, int64_t now)
{
	struct dkim_field *f = calloc(DKIM_FIELDS_MAX, sizeof *f);
	struct dkim_check *c = NULL;
	size_t body = 0, n_fields, n = 0, k = 0;

	if (f == NULL)
		return NULL;
	if (max_sigs > DKIM_SIGS_MAX)
		max_sigs = DKIM_SIGS_MAX;
	n_fields = dkim_fields_split(msg, len, f, DKIM_FIELDS_MAX, &body);
	for (size_t i = 0; i < n_fields; i++)
		if (dkim_field_is(&f[i], "dkim-signature", 14))
			n++;
	if (n > max_sigs)
		n = max_sigs;
	c = calloc(1, sizeof *c + n * sizeof c->sig[0]);
	if (c == NULL)
		goto fail;
	c->n = n;
	for (size_t i = 0; i < n_fields && k < n; i++) {
		if (!dkim_field_is(&f[i], "dkim-signature", 14))
			continue;
		if (sig_prepare(&c->sig[k], k, f, n_fields, i, msg + body,
				len - body, now) != 0)
			goto fail;
		k++;
	}
	free(f);
	return c;
fail:
	free(f);
	free(c);
	return NULL;
}

/* p= of an RSA record: SubjectPublicKeyInfo, or a bare RSAPublicKey. */
static EVP_PKEY *
key_decode(enum dkim_alg alg, const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *k;

	if (alg == DKIM_ALG_ED25519)
		return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der,
						   len);
	k = d2i_PUBKEY(NULL, &p, (long)len);
	if (k == NULL) {
		p = der;
		k = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
	}
	if (k != NULL && EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	return k;
}

/* The key record's rules (3.6.1); NULL when it may check s. */
static const char *
key_rules(struct dkim_sig *s, const struct dkim_tag *t, size_t n,
	  bool *is_revoked)
{
	const struct dkim_tag *v = dkim_tag_find(t, n, "v");
	const struct dkim_tag *k = dkim_tag_find(t, n, "k");
	const struct dkim_tag *h = dkim_tag_find(t, n, "h");
	const struct dkim_tag *sv = dkim_tag_find(t, n, "s");
	const struct dkim_tag *fl = dkim_tag_find(t, n, "t");
	const struct dkim_tag *p = dkim_tag_find(t, n, "p");

	if (v != NULL && (v != &t[0] || !val_is(v, "DKIM1")))
		return "bad key record version (v=)";
	if (p == NULL)
		return "key record without p=";
	if (k != NULL && !val_is(k, "rsa") && !val_is(k, "ed25519"))
		return "unknown key type (k=)";
	if ((s->alg == DKIM_ALG_RSA) != (k == NULL || val_is(k, "rsa")))
		return "key type (k=) does not match the algorithm (a=)";
	if (h != NULL && !list_has(h, "sha256"))
		return "key does not allow sha256 (h=)";
	if (sv != NULL && !list_has(sv, "email") && !list_has(sv, "*"))
		return "key not for email (s=)";
	if (fl != NULL && list_has(fl, "s") &&
	    strcmp(s->auid_domain, s->r.domain) != 0)
		return "key is strict (t=s) and i= is a subdomain of d=";
	*is_revoked = p->val_len == 0;
	return NULL;
}

static bool
sig_verify(const struct dkim_sig *s, EVP_PKEY *key)
{
	EVP_PKEY_CTX *pc = NULL;
	EVP_MD_CTX *mc = NULL;
	bool is_ok = false;

	if (s->alg == DKIM_ALG_RSA) {
		pc = EVP_PKEY_CTX_new(key, NULL);
		is_ok =
		    pc != NULL && EVP_PKEY_verify_init(pc) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
		    EVP_PKEY_verify(pc, s->b, s->b_len, s->hdr_hash,
				    sizeof s->hdr_hash) == 1;
		EVP_PKEY_CTX_free(pc);
		return is_ok;
	}
	/* RFC 8463 3: Ed25519 signs the SHA-256 of the header data. */
	mc = EVP_MD_CTX_new();
	is_ok = mc != NULL &&
		EVP_DigestVerifyInit(mc, NULL, NULL, NULL, key) == 1 &&
		EVP_DigestVerify(mc, s->b, s->b_len, s->hdr_hash,
				 sizeof s->hdr_hash) == 1;
	EVP_MD_CTX_free(mc);
	return is_ok;
}

/* Checks s with the one key record rr. */
static void
sig_check(struct dkim_sig *s, const char *rr)
{
	struct dkim_tag t[DKIM_TAGS_MAX];
	unsigned char der[DKIM_KEY_OCTETS_MAX];
	size_t der_len = 0;
	bool is_revoked = false;
	const char *problem;
	EVP_PKEY *key;
	int n = dkim_tags_parse(rr, strlen(rr), t, DKIM_TAGS_MAX);

	if (n < 0) {
		finish(s, DKIM_PERMERROR, "key record syntax error");
		return;
	}
	if ((problem = key_rules(s, t, (size_t)n, &is_revoked)) != NULL) {
		finish(s, DKIM_PERMERROR, problem);
		return;
	}
	if (is_revoked) {
		finish(s, DKIM_FAIL, "key revoked (empty p=)");
		return;
	}
	const struct dkim_tag *p = dkim_tag_find(t, (size_t)n, "p");
	if (dkim_b64_decode(p->val, p->val_len, der, sizeof der, &der_len) !=
		0 ||
	    (key = key_decode(s->alg, der, der_len)) == NULL) {
		finish(s, DKIM_PERMERROR, "bad public key (p=)");
		return;
	}
	s->r.key_bits = (unsigned)EVP_PKEY_get_bits(key);
	if (s->alg == DKIM_ALG_RSA && s->r.key_bits < DKIM_RSA_BITS_MIN) {
		snprintf(s->r.problem, sizeof s->r.problem,
			 "key too small (%u bits)", s->r.key_bits);
		s->r.result = DKIM_PERMERROR;
		s->is_done = true;
	} else if (s->is_body_short) {
		finish(s, DKIM_FAIL, "body shorter than l=");
	} else if (s->bh_len != DKIM_HASH_LEN ||
		   memcmp(s->bh, s->body_hash, DKIM_HASH_LEN) != 0) {
		finish(s, DKIM_FAIL, "body hash did not verify");
	} else if (!sig_verify(s, key)) {
		finish(s, DKIM_FAIL, "signature did not verify");
	} else {
		finish(s, DKIM_PASS, "");
	}
	EVP_PKEY_free(key);
}

/*
 * SELECTOR._domainkey.DOMAIN, when it can be asked for: at most 253
 * octets, labels of 1 to 63 (RFC 1035 2.3.4).  A name the resolver would
 * refuse has no key.
 */
static bool
key_name(const struct dkim_sig *s, char *name, size_t size)
{
	int n = snprintf(name, size, "%s._domainkey.%s", s->r.selector,
			 s->r.domain);
	size_t label = 0;

	if (n < 0 || (size_t)n > DKIM_DNS_NAME_MAX || (size_t)n >= size)
		return false;
	for (const char *p = name;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > DKIM_DNS_LABEL_MAX)
				return false;
			if (*p == '\0')
				return true;
			label = 0;
		} else {
			label++;
		}
	}
}

bool
dkim_check_eval(struct dkim_check *c, const struct adns_view *dns)
{
	bool is_all = true;

	for (size_t i = 0; i < c->n; i++) {
		struct dkim_sig *s = &c->sig[i];
		const struct adns_answer *a;
		char name[DKIM_NAME_MAX];

		if (s->is_done)
			continue;
		if (!key_name(s, name, sizeof name)) {
			finish(s, DKIM_PERMERROR, "key name is not a DNS name");
			continue;
		}
		a = dns->get(dns->ctx, name, ADNS_TXT);
		if (a == NULL) {
			dns->need(dns->ctx, name, ADNS_TXT);
			is_all = false;
			continue;
		}
		if (a->status == ADNS_TEMPFAIL)
			finish(s, DKIM_TEMPERROR, "key lookup failed");
		else if (a->status != ADNS_OK || a->n == 0)
			finish(s, DKIM_PERMERROR, "no key for selector");
		else if (a->n > 1)
			finish(s, DKIM_PERMERROR, "several key records");
		else
			sig_check(s, a->rr[0]);
	}
	return is_all;
}

size_t
dkim_check_count(const struct dkim_check *c)
{
	return c ? c->n : 0;
}

const struct dkim_sig_result *
dkim_check_result(const struct dkim_check *c, size_t i)
{
	return c != NULL && i < c->n ? &c->sig[i].r : NULL;
}

void
dkim_check_free(struct dkim_check *c)
{
	free(c);
}
