/*
 * dkim_sign.c - DKIM signing of mail that leaves (RFC 6376 5, RFC 8463):
 * a key loaded from PEM text, the DKIM-Signature field for a message and
 * the DNS TXT record that publishes the key.  Called by the sending side
 * (the integrator's outbound path) and by `postern dkim keygen`.
 *
 * Promises: relaxed/relaxed, rsa-sha256 or ed25519-sha256 by the key,
 * From over-signed; the header hash is computed through the same code the
 * verifier uses (dkim_canon.c) over the very folded text that is returned,
 * so what is signed is what a verifier sees.  Pure: no I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "auth/dkim.h"
#include "auth/dkim_int.h"
#include "util/str.h"

#define DKIM_RSA_BITS_MIN 1024 /* RFC 8301 3.2 */
#define DKIM_FOLD_COL 78
#define DKIM_B64_MAX ((DKIM_SIG_OCTETS_MAX + 2) / 3 * 4 + 1)
#define DKIM_PUB_DER_MAX 2048

struct dkim_signer {
	EVP_PKEY *key;
	bool is_ed25519;
	char domain[256];
	char selector[64];
};

const char *const dkim_default_headers[] = {"from",
					    "to",
					    "cc",
					    "subject",
					    "date",
					    "message-id",
					    "reply-to",
					    "in-reply-to",
					    "references",
					    "mime-version",
					    "content-type",
					    "content-transfer-encoding",
					    "list-id",
					    "list-unsubscribe",
					    "list-unsubscribe-post",
					    "sender",
					    NULL};

/* Letters, digits, '-', '_' and inner dots: safe in a tag and a name. */
static bool
is_label_text(const char *s)
{
	if (s[0] == '\0' || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
		      (*s == '.' && s[1] != '.' && s[1] != '\0')))
			return false;
	return true;
}

struct dkim_signer *
dkim_signer_from_pem(const char *pem, size_t len, const char *domain,
		     const char *selector, char *err, size_t size)
{
	struct dkim_signer *k;
	BIO *bio;
	int id;

	if (!is_label_text(domain) || !is_label_text(selector)) {
		snprintf(err, size,
			 "bad domain or selector '%s'/'%s': use "
			 "letters, digits, '-' and dots",
			 domain, selector);
		return NULL;
	}
	if ((k = calloc(1, sizeof *k)) == NULL ||
	    (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		free(k);
		snprintf(err, size, "out of memory");
		return NULL;
	}
	k->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (k->key == NULL) {
		snprintf(err, size,
			 "not a PEM private key; make one with "
			 "`postern dkim keygen %s`",
			 domain);
		free(k);
		return NULL;
	}
	id = EVP_PKEY_get_base_id(k->key);
	k->is_ed25519 = id == EVP_PKEY_ED25519;
	if (id != EVP_PKEY_RSA && !k->is_ed25519) {
		snprintf(err, size,
			 "key is neither RSA nor Ed25519; make one "
			 "with `postern dkim keygen %s`",
			 domain);
		dkim_signer_free(k);
		return NULL;
	}
	if (!k->is_ed25519 && EVP_PKEY_get_bits(k->key) < DKIM_RSA_BITS_MIN) {
		snprintf(err, size,
			 "RSA key of %d bits is too small (RFC "
			 "8301: at least 1024, 2048 recommended); make a new "
			 "one with `postern dkim keygen %s`",
			 EVP_PKEY_get_bits(k->key), domain);
		dkim_signer_free(k);
		return NULL;
	}
	str_set(k->domain, sizeof k->domain, domain);
	str_set(k->selector, sizeof k->selector, selector);
	return k;
}

void
dkim_signer_free(struct dkim_signer *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->key);
	free(k);
}

const char *
dkim_signer_type(const struct dkim_signer *k)
{
	return k->is_ed25519 ? "ed25519" : "rsa";
}

unsigned
dkim_signer_bits(const struct dkim_signer *k)
{
	return (unsigned)EVP_PKEY_get_bits(k->key);
}

int
dkim_signer_txt(const struct dkim_signer *k, char *txt, size_t size)
{
	unsigned char der[DKIM_PUB_DER_MAX], *p = der;
	char b64[(DKIM_PUB_DER_MAX + 2) / 3 * 4 + 1];
	size_t n = sizeof der;
	int len;

	if (k->is_ed25519) {
		if (EVP_PKEY_get_raw_public_key(k->key, der, &n) != 1)
			return -1;
	} else {
		len = i2d_PUBKEY(k->key, NULL);
		if (len <= 0 || (size_t)len > sizeof der ||
		    i2d_PUBKEY(k->key, &p) != len)
			return -1;
		n = (size_t)len;
	}
	if (dkim_b64_encode(der, n, b64, sizeof b64) != 0)
		return -1;
	len = snprintf(txt, size, "v=DKIM1; k=%s; p=%s", dkim_signer_type(k),
		       b64);
	return len < 0 || (size_t)len >= size ? -1 : 0;
}

int
dkim_sign_hash(const struct dkim_signer *k,
	       const unsigned char hash[DKIM_HASH_LEN], unsigned char *sig,
	       size_t *n_out)
{
	EVP_PKEY_CTX *pc;
	EVP_MD_CTX *mc;
	int ok;

	if (k->is_ed25519) {
		mc = EVP_MD_CTX_new();
		ok = mc != NULL &&
		     EVP_DigestSignInit(mc, NULL, NULL, NULL, k->key) == 1 &&
		     EVP_DigestSign(mc, sig, n_out, hash, DKIM_HASH_LEN) == 1;
		EVP_MD_CTX_free(mc);
		return ok ? 0 : -1;
	}
	pc = EVP_PKEY_CTX_new(k->key, NULL);
	ok = pc != NULL && EVP_PKEY_sign_init(pc) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
	     EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
	     EVP_PKEY_sign(pc, sig, n_out, hash, DKIM_HASH_LEN) == 1;
	EVP_PKEY_CTX_free(pc);
	return ok ? 0 : -1;
}

/* A growing text with a column, for folding. */
struct fold {
	char *p;
	size_t len, cap, col;
	bool is_oom;
};

static void
fold_raw(struct fold *f, const char *s, size_t n)
{
	if (f->is_oom)
		return;
	if (n + 1 > f->cap - f->len) {
		size_t want = (f->cap + n + 1) * 2;
		char *np = realloc(f->p, want);

		if (np == NULL) {
			f->is_oom = true;
			return;
		}
		f->p = np;
		f->cap = want;
	}
	memcpy(f->p + f->len, s, n);
	f->len += n;
	f->p[f->len] = '\0';
	for (size_t i = 0; i < n; i++)
		f->col = s[i] == '\n' ? 0 : f->col + 1;
}

/* Adds a word, after a space or, past the column limit, CRLF TAB. */
static void
fold_word(struct fold *f, const char *s, size_t n, bool is_space)
{
	if (f->col + n + 1 > DKIM_FOLD_COL && f->col > 1)
		fold_raw(f, "\r\n\t", 3);
	else if (is_space)
		fold_raw(f, " ", 1);
	fold_raw(f, s, n);
}

/* h=: every instance of each wanted name present, From once more. */
static void
add_h(struct fold *f, const struct dkim_field *fields, size_t n_fields,
      const char *const *headers, const char **names, size_t *lens,
      size_t *n_out)
{
	size_t n = 0;
	bool is_first = true;

	/* From first and always (RFC 6376 5.4), then the rest in order. */
	for (size_t i = 0; i == 0 || headers[i - 1] != NULL; i++) {
		const char *name = i == 0 ? "from" : headers[i - 1];
		size_t len = strlen(name), count = 0;
		bool is_from = i == 0;

		if (i > 0 && strcmp(name, "from") == 0)
			continue;

		for (size_t j = 0; j < n_fields; j++)
			if (dkim_field_is(&fields[j], name, len))
				count++;
		if (is_from)
			count++;
		for (; count > 0 && n < DKIM_HNAMES_MAX; count--) {
			char word[64];
			int w = snprintf(word, sizeof word,
					 "%s%s:", is_first ? "h=" : "", name);

			if (w < 0 || (size_t)w >= sizeof word)
				break;
			names[n] = name;
			lens[n++] = len;
			fold_word(f, word, (size_t)w, is_first);
			is_first = false;
		}
	}
	if (n > 0 && f->len > 0 && !f->is_oom)
		f->p[f->len - 1] = ';'; /* the last ':' ends the tag */
	*n_out = n;
}

char *
dkim_sign(const struct dkim_signer *k, const char *msg, size_t len,
	  const char *const *headers, int64_t now)
{
	struct dkim_field *fields = calloc(DKIM_FIELDS_MAX, sizeof *fields);
	const char *names[DKIM_HNAMES_MAX];
	size_t lens[DKIM_HNAMES_MAX], n_names = 0, body = 0, n_fields;
	unsigned char bh[DKIM_HASH_LEN], hh[DKIM_HASH_LEN];
	unsigned char sig[DKIM_SIG_OCTETS_MAX];
	char b64[DKIM_B64_MAX], word[300];
	size_t sig_len = sizeof sig;
	uint64_t canon_len = 0;
	struct fold f = {0};
	int w;

	if (fields == NULL)
		return NULL;
	if (headers == NULL)
		headers = dkim_default_headers;
	n_fields = dkim_fields_split(msg, len, fields, DKIM_FIELDS_MAX, &body);
	if (dkim_body_hash(msg + body, len - body, true, DKIM_NO_LIMIT, bh,
			   &canon_len) != 0 ||
	    dkim_b64_encode(bh, sizeof bh, b64, sizeof b64) != 0)
		goto fail;
	fold_raw(&f, "DKIM-Signature: v=1;", 20);
	w = snprintf(word, sizeof word, "a=%s-sha256;",
		     k->is_ed25519 ? "ed25519" : "rsa");
	fold_word(&f, word, (size_t)w, true);
	fold_word(&f, "c=relaxed/relaxed;", 18, true);
	w = snprintf(word, sizeof word, "d=%s;", k->domain);
	fold_word(&f, word, (size_t)w, true);
	w = snprintf(word, sizeof word, "s=%s;", k->selector);
	fold_word(&f, word, (size_t)w, true);
	w = snprintf(word, sizeof word, "t=%lld;", (long long)now);
	fold_word(&f, word, (size_t)w, true);
	add_h(&f, fields, n_fields, headers, names, lens, &n_names);
	w = snprintf(word, sizeof word, "bh=%s;", b64);
	fold_word(&f, word, (size_t)w, true);
	fold_word(&f, "b=", 2, true);
	if (f.is_oom ||
	    dkim_header_hash(fields, n_fields, names, lens, n_names, f.p, f.len,
			     true, hh) != 0 ||
	    dkim_sign_hash(k, hh, sig, &sig_len) != 0 ||
	    dkim_b64_encode(sig, sig_len, b64, sizeof b64) != 0)
		goto fail;
	/* b='s value may be folded anywhere: FWS in it is ignored. */
	for (size_t i = 0, n = strlen(b64); i < n;) {
		size_t room = f.col < DKIM_FOLD_COL ? DKIM_FOLD_COL - f.col : 0;
		size_t take = n - i < room ? n - i : room;

		if (take == 0) {
			fold_raw(&f, "\r\n\t", 3);
			continue;
		}
		fold_raw(&f, b64 + i, take);
		i += take;
	}
	fold_raw(&f, "\r\n", 2);
	if (f.is_oom)
		goto fail;
	free(fields);
	return f.p;
fail:
	free(fields);
	free(f.p);
	return NULL;
}
