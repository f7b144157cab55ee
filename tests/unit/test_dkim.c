/*
 * test_dkim.c - DKIM verification and signing (src/auth/dkim*.c).
 *
 * Outside vectors first: RFC 8463 Appendix A (an Ed25519 and an RSA
 * signature over one message, keys from A.2; the RSA key is RFC 6376
 * Appendix C's) must verify, and signing its header again with its Ed25519
 * key must give its b= octet for octet (Ed25519 is deterministic); the
 * canonicalization example of RFC 6376 3.4.5 exactly.  Then round trips
 * through dkim_sign() and the results for each broken case, with the keys
 * served from an adns_table.  Signatures with tags dkim_sign() never
 * writes (l=, x=, c=simple, a=rsa-sha1) are made by sign_custom() below
 * through the same internals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "adns_table.h"
#include "auth/dkim.h"
#include "auth/dkim_int.h"

#define NOW 1528637909 /* RFC 8463's t= */

/* RFC 8463 A.3, with CRLF line ends. */
static const char rfc8463_msg[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    " date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    "\r\n"
    "Hi.\r\n"
    "\r\n"
    "We lost the game.  Are you hungry yet?\r\n"
    "\r\n"
    "Joe.\r\n";

static const char rfc8463_b[] = "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSw"
				"hEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==";

/* RFC 8463 A.1: the seed nWGxne/9... in PKCS#8. */
static const char rfc8463_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n";

static const struct adns_row rfc_zone[] = {
    {"brisbane._domainkey.football.example.com",
     ADNS_TXT,
     ADNS_OK,
     {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}},
    {"test._domainkey.football.example.com",
     ADNS_TXT,
     ADNS_OK,
     {"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5"
      "V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzw"
      "Q/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G"
      "+2kryOTIKT+l/K4w3QIDAQAB"}},
    {0}};

static const char plain_msg[] = "From: Alice <alice@example.org>\r\n"
				"To: bob@example.net\r\n"
				"Subject: lunch\r\n"
				"Date: Sat, 5 Dec 2026 12:00:00 +0000\r\n"
				"Message-ID: <1@example.org>\r\n"
				"\r\n"
				"Shall we?\r\n"
				"\r\n";

/* Runs a check to its end with a lazy table; returns it. */
static struct dkim_check *
check_all(const char *msg, size_t len, const struct adns_row *zone, int64_t now,
	  unsigned *rounds_out)
{
	struct adns_table t;
	struct adns_view v = adns_table_view(&t, zone, true);
	struct dkim_check *c = dkim_check_new(msg, len, DKIM_SIGS_MAX, now);
	int guard = 0;

	assert_non_null(c);
	while (!dkim_check_eval(c, &v)) {
		assert_true(adns_table_round(&t));
		assert_true(++guard < 5);
	}
	if (rounds_out)
		*rounds_out = t.rounds;
	return c;
}

static enum dkim_result
result_of(const char *msg, const struct adns_row *zone, int64_t now,
	  const char *problem)
{
	struct dkim_check *c = check_all(msg, strlen(msg), zone, now, NULL);
	enum dkim_result r;

	assert_int_equal(dkim_check_count(c), 1);
	r = dkim_check_result(c, 0)->result;
	if (problem)
		assert_string_equal(dkim_check_result(c, 0)->problem, problem);
	dkim_check_free(c);
	return r;
}

static void
test_dkim_rfc8463_example_verifies(void **state)
{
	unsigned rounds = 0;
	struct dkim_check *c;
	const struct dkim_sig_result *r;

	(void)state;
	c = check_all(rfc8463_msg, strlen(rfc8463_msg), rfc_zone, NOW, &rounds);
	assert_int_equal(dkim_check_count(c), 2);
	r = dkim_check_result(c, 0);
	assert_string_equal(r->problem, "");
	assert_int_equal(r->result, DKIM_PASS);
	assert_string_equal(r->domain, "football.example.com");
	assert_string_equal(r->selector, "brisbane");
	assert_string_equal(r->algorithm, "ed25519-sha256");
	assert_string_equal(r->header_b, "/gCrinpc");
	assert_int_equal(r->key_bits, 256);
	r = dkim_check_result(c, 1);
	assert_string_equal(r->problem, "");
	assert_int_equal(r->result, DKIM_PASS);
	assert_string_equal(r->algorithm, "rsa-sha256");
	assert_int_equal(r->key_bits, 1024);
	assert_int_equal(rounds, 1); /* both keys asked in one round */
	assert_null(dkim_check_result(c, 2));
	dkim_check_free(c);
}

/* The RFC's own header data signed again gives the RFC's b=. */
static void
test_dkim_rfc8463_ed25519_signature_reproduced(void **state)
{
	static const char *const names[] = {"from",    "to",	     "subject",
					    "date",    "message-id", "from",
					    "subject", "date"};
	size_t lens[8], body = 0, sig_len = DKIM_SIG_OCTETS_MAX;
	struct dkim_field f[16];
	char err[256], b64[200];
	unsigned char hash[DKIM_HASH_LEN], sig[DKIM_SIG_OCTETS_MAX];
	const char *sig_field = strstr(rfc8463_msg, "DKIM-Signature");
	size_t n =
	    dkim_fields_split(rfc8463_msg, strlen(rfc8463_msg), f, 16, &body);
	/* The first field with its b= value cut out. */
	const char *b = strstr(f[0].p, " b=") + 3;
	char blank[600];
	size_t pre = (size_t)(b - f[0].p), blen;
	struct dkim_signer *k;

	(void)state;
	assert_int_equal(n, 7);
	assert_ptr_equal(sig_field, f[0].p);
	memcpy(blank, f[0].p, pre);
	memcpy(blank + pre, "\r\n", 2);
	blen = pre + 2;
	for (size_t i = 0; i < 8; i++)
		lens[i] = strlen(names[i]);
	assert_int_equal(
	    dkim_header_hash(f, n, names, lens, 8, blank, blen, true, hash), 0);
	k = dkim_signer_from_pem(rfc8463_pem, strlen(rfc8463_pem),
				 "football.example.com", "brisbane", err,
				 sizeof err);
	assert_non_null(k);
	assert_int_equal(dkim_sign_hash(k, hash, sig, &sig_len), 0);
	assert_int_equal(sig_len, 64);
	assert_int_equal(dkim_b64_encode(sig, sig_len, b64, sizeof b64), 0);
	assert_string_equal(b64, rfc8463_b);
	dkim_signer_free(k);
}

/* dkim_sign() on RFC 8463's message with its key and time verifies. */
static void
test_dkim_rfc8463_message_signed_by_us_verifies(void **state)
{
	const char *body = strstr(rfc8463_msg, "From: Joe");
	char err[256], *hdr, *msg;
	struct dkim_signer *k;

	(void)state;
	k = dkim_signer_from_pem(rfc8463_pem, strlen(rfc8463_pem),
				 "football.example.com", "brisbane", err,
				 sizeof err);
	assert_non_null(k);
	hdr = dkim_sign(k, body, strlen(body), NULL, NOW);
	assert_non_null(hdr);
	assert_non_null(strstr(hdr, "a=ed25519-sha256;"));
	assert_non_null(strstr(hdr, "t=1528637909;"));
	assert_non_null(strstr(hdr, "h=from:from:to:subject:"));
	assert_non_null(strstr(hdr, "date:message-id;"));
	assert_non_null(
	    strstr(hdr, "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="));
	for (const char *p = hdr; (p = strstr(p, "\r\n")) != NULL; p += 2)
		assert_true(p[2] == '\t' || p[2] == '\0');
	assert_int_equal(asprintf(&msg, "%s%s", hdr, body) > 0, 1);
	assert_int_equal(result_of(msg, rfc_zone, NOW, ""), DKIM_PASS);
	free(msg);
	free(hdr);
	dkim_signer_free(k);
}

static void
sha256_of(const char *s, unsigned char out[DKIM_HASH_LEN])
{
	SHA256((const unsigned char *)s, strlen(s), out);
}

/* RFC 6376 3.4.5, exactly. */
static void
test_dkim_canonicalization_rfc6376_example(void **state)
{
	static const char msg[] = "A: X\r\n"
				  "B : Y\t\r\n"
				  "\tZ  \r\n"
				  "\r\n"
				  " C \r\n"
				  " D \t E\r\n"
				  "\r\n"
				  "\r\n";
	struct dkim_field f[4];
	size_t body = 0, n, used = 0, cap = 0;
	unsigned char got[DKIM_HASH_LEN], want[DKIM_HASH_LEN];
	uint64_t clen = 0;
	char *buf = NULL;

	(void)state;
	n = dkim_fields_split(msg, sizeof msg - 1, f, 4, &body);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(dkim_canon_header(f[i].p, f[i].len, true, &buf,
						   &used, &cap),
				 0);
	assert_int_equal(used, 12);
	assert_memory_equal(buf, "a:X\r\nb:Y Z\r\n", 12);
	used = 0;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(dkim_canon_header(f[i].p, f[i].len, false,
						   &buf, &used, &cap),
				 0);
	assert_int_equal(used, 20);
	assert_memory_equal(buf, "A: X\r\nB : Y\t\r\n\tZ  \r\n", 20);
	free(buf);

	assert_int_equal(dkim_body_hash(msg + body, sizeof msg - 1 - body, true,
					DKIM_NO_LIMIT, got, &clen),
			 0);
	sha256_of(" C\r\n D E\r\n", want);
	assert_memory_equal(got, want, DKIM_HASH_LEN);
	assert_int_equal(clen, 10);
	assert_int_equal(dkim_body_hash(msg + body, sizeof msg - 1 - body,
					false, DKIM_NO_LIMIT, got, &clen),
			 0);
	sha256_of(" C \r\n D \t E\r\n", want);
	assert_memory_equal(got, want, DKIM_HASH_LEN);
	/* Empty bodies: CRLF in simple, nothing in relaxed (3.4.3, 3.4.4). */
	assert_int_equal(
	    dkim_body_hash("", 0, false, DKIM_NO_LIMIT, got, &clen), 0);
	sha256_of("\r\n", want);
	assert_memory_equal(got, want, DKIM_HASH_LEN);
	assert_int_equal(
	    dkim_body_hash("\r\n\r\n", 4, true, DKIM_NO_LIMIT, got, &clen), 0);
	sha256_of("", want);
	assert_memory_equal(got, want, DKIM_HASH_LEN);
	/* No final CRLF: one is added; l= cuts the canonical text. */
	assert_int_equal(dkim_body_hash("ab", 2, true, 3, got, &clen), 0);
	sha256_of("ab\r", want);
	assert_memory_equal(got, want, DKIM_HASH_LEN);
	assert_int_equal(clen, 4);
}

static void
test_dkim_tag_lists(void **state)
{
	struct dkim_tag t[DKIM_TAGS_MAX];
	const char *s = " v = 1 ;a=rsa-sha256;\r\n\th=from : to; ";

	(void)state;
	assert_int_equal(dkim_tags_parse(s, strlen(s), t, DKIM_TAGS_MAX), 3);
	assert_int_equal(t[0].val_len, 1);
	assert_memory_equal(t[2].val, "from : to", 9);
	assert_int_equal(dkim_tags_parse("a=1; a=2", 8, t, DKIM_TAGS_MAX), -1);
	assert_int_equal(dkim_tags_parse("=1", 2, t, DKIM_TAGS_MAX), -1);
	assert_int_equal(dkim_tags_parse("a", 1, t, DKIM_TAGS_MAX), -1);
	assert_int_equal(dkim_tags_parse("", 0, t, DKIM_TAGS_MAX), 0);
}

/* Test keys, made once. */
struct keys {
	struct dkim_signer *rsa, *ed;
	char rsa_txt[1024], ed_txt[256], small_txt[1024];
	struct adns_row zone[8];
};

static char *
pem_of(EVP_PKEY *key)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *out;
	long n;

	assert_int_equal(
	    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &data);
	out = strndup(data, (size_t)n);
	BIO_free(bio);
	return out;
}

static int
keys_setup(void **state)
{
	struct keys *k = calloc(1, sizeof *k);
	EVP_PKEY *rsa = EVP_RSA_gen(2048), *small = EVP_RSA_gen(512);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	unsigned char der[512], *p = der;
	char err[256], *pem, b64[800];
	int n;

	if (k == NULL || rsa == NULL || small == NULL || ed == NULL)
		return -1;
	pem = pem_of(rsa);
	k->rsa = dkim_signer_from_pem(pem, strlen(pem), "example.org", "r1",
				      err, sizeof err);
	free(pem);
	pem = pem_of(ed);
	k->ed = dkim_signer_from_pem(pem, strlen(pem), "example.org", "e1", err,
				     sizeof err);
	free(pem);
	if (k->rsa == NULL || k->ed == NULL ||
	    dkim_signer_txt(k->rsa, k->rsa_txt, sizeof k->rsa_txt) != 0 ||
	    dkim_signer_txt(k->ed, k->ed_txt, sizeof k->ed_txt) != 0)
		return -1;
	n = i2d_PUBKEY(small, &p);
	if (n <= 0 || dkim_b64_encode(der, (size_t)n, b64, sizeof b64) != 0)
		return -1;
	snprintf(k->small_txt, sizeof k->small_txt, "v=DKIM1; k=rsa; p=%s",
		 b64);
	k->zone[0] = (struct adns_row){
	    "r1._domainkey.example.org", ADNS_TXT, ADNS_OK, {k->rsa_txt}};
	k->zone[1] = (struct adns_row){
	    "e1._domainkey.example.org", ADNS_TXT, ADNS_OK, {k->ed_txt}};
	k->zone[2] = (struct adns_row){
	    "small._domainkey.example.org", ADNS_TXT, ADNS_OK, {k->small_txt}};
	k->zone[3] = (struct adns_row){"gone._domainkey.example.org",
				       ADNS_TXT,
				       ADNS_OK,
				       {"v=DKIM1; k=rsa; p="}};
	k->zone[4] = (struct adns_row){
	    "slow._domainkey.example.org", ADNS_TXT, ADNS_TEMPFAIL, {0}};
	k->zone[5] = (struct adns_row){"two._domainkey.example.org",
				       ADNS_TXT,
				       ADNS_OK,
				       {k->rsa_txt, k->rsa_txt}};
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(small);
	EVP_PKEY_free(ed);
	*state = k;
	return 0;
}

static int
keys_teardown(void **state)
{
	struct keys *k = *state;

	dkim_signer_free(k->rsa);
	dkim_signer_free(k->ed);
	free(k);
	return 0;
}

/* hdr + msg, malloc'd. */
static char *
join(const char *hdr, const char *msg)
{
	char *out;

	assert_true(asprintf(&out, "%s%s", hdr, msg) > 0);
	return out;
}

static char *
signed_by(const struct dkim_signer *s, const char *msg)
{
	char *hdr = dkim_sign(s, msg, strlen(msg), NULL, NOW), *out;

	assert_non_null(hdr);
	out = join(hdr, msg);
	free(hdr);
	return out;
}

/*
 * A signature with the tags given (everything but b=), signed by s over
 * the names of h=, which must be "from:to:subject" here.
 */
static char *
sign_custom(const struct dkim_signer *s, const char *tags, const char *msg,
	    bool is_relaxed)
{
	static const char *const names[] = {"from", "to", "subject"};
	static const size_t lens[] = {4, 2, 7};
	struct dkim_field f[16];
	size_t body = 0, n = dkim_fields_split(msg, strlen(msg), f, 16, &body);
	size_t sig_len = DKIM_SIG_OCTETS_MAX;
	unsigned char hash[DKIM_HASH_LEN], sig[DKIM_SIG_OCTETS_MAX];
	char *field, *out, b64[1400];

	assert_true(asprintf(&field, "DKIM-Signature: %s; b=\r\n", tags) > 0);
	assert_int_equal(dkim_header_hash(f, n, names, lens, 3, field,
					  strlen(field), is_relaxed, hash),
			 0);
	assert_int_equal(dkim_sign_hash(s, hash, sig, &sig_len), 0);
	assert_int_equal(dkim_b64_encode(sig, sig_len, b64, sizeof b64), 0);
	field[strlen(field) - 2] = '\0';
	assert_true(asprintf(&out, "%s%s\r\n%s", field, b64, msg) > 0);
	free(field);
	return out;
}

/* bh= of msg's body, relaxed or simple, cut at limit. */
static void
bh_of(const char *msg, bool is_relaxed, uint64_t limit, char *out, size_t size)
{
	const char *body = strstr(msg, "\r\n\r\n") + 4;
	unsigned char h[DKIM_HASH_LEN];
	uint64_t clen = 0;

	assert_int_equal(
	    dkim_body_hash(body, strlen(body), is_relaxed, limit, h, &clen), 0);
	assert_int_equal(dkim_b64_encode(h, sizeof h, out, size), 0);
}

static void
test_dkim_round_trip_rsa_and_ed25519(void **state)
{
	struct keys *k = *state;
	char *m;

	m = signed_by(k->rsa, plain_msg);
	assert_int_equal(result_of(m, k->zone, NOW, ""), DKIM_PASS);
	free(m);
	m = signed_by(k->ed, plain_msg);
	assert_int_equal(result_of(m, k->zone, NOW, ""), DKIM_PASS);
	free(m);
	assert_int_equal(dkim_signer_bits(k->rsa), 2048);
	assert_string_equal(dkim_signer_type(k->ed), "ed25519");
}

static void
test_dkim_tampering_fails(void **state)
{
	struct keys *k = *state;
	char *m = signed_by(k->rsa, plain_msg), *p;

	p = strstr(m, "Subject: lunch");
	p[9] = 'L';
	assert_int_equal(result_of(m, k->zone, NOW, "signature did not verify"),
			 DKIM_FAIL);
	p[9] = 'l';
	p = strstr(m, "Shall");
	p[0] = 's';
	assert_int_equal(result_of(m, k->zone, NOW, "body hash did not verify"),
			 DKIM_FAIL);
	free(m);
	/* A second From: added on top breaks the over-signed From. */
	m = signed_by(k->ed, plain_msg);
	p = join("From: mallory@example.com\r\n", m);
	assert_int_equal(result_of(p, k->zone, NOW, NULL), DKIM_FAIL);
	free(p);
	free(m);
}

static void
test_dkim_body_length_limit(void **state)
{
	struct keys *k = *state;
	char bh[64], tags[300], *m, *longer;
	size_t clen = strlen("Shall we?\r\n");

	bh_of(plain_msg, true, clen, bh, sizeof bh);
	snprintf(tags, sizeof tags,
		 "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.org; "
		 "s=e1; h=from:to:subject; l=%zu; bh=%s",
		 clen, bh);
	m = sign_custom(k->ed, tags, plain_msg, true);
	assert_int_equal(result_of(m, k->zone, NOW, ""), DKIM_PASS);
	longer = join(m, "-- \r\nappended by a list\r\n");
	assert_int_equal(result_of(longer, k->zone, NOW, ""), DKIM_PASS);
	free(longer);
	free(m);
	/* l= beyond the body: fail. */
	snprintf(tags, sizeof tags,
		 "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.org; "
		 "s=e1; h=from:to:subject; l=%zu; bh=%s",
		 clen + 5, bh);
	m = sign_custom(k->ed, tags, plain_msg, true);
	assert_int_equal(result_of(m, k->zone, NOW, "body shorter than l="),
			 DKIM_FAIL);
	free(m);
}

static void
test_dkim_simple_canonicalization_round_trip(void **state)
{
	struct keys *k = *state;
	char bh[64], tags[300], *m, *p;

	bh_of(plain_msg, false, DKIM_NO_LIMIT, bh, sizeof bh);
	snprintf(tags, sizeof tags,
		 "v=1; a=rsa-sha256; c=simple/simple; d=example.org; "
		 "s=r1; h=from:to:subject; bh=%s",
		 bh);
	m = sign_custom(k->rsa, tags, plain_msg, false);
	assert_int_equal(result_of(m, k->zone, NOW, ""), DKIM_PASS);
	p = strstr(m, "Subject: lunch");
	p[8] = '\t'; /* simple sees whitespace; relaxed would not */
	assert_int_equal(result_of(m, k->zone, NOW, NULL), DKIM_FAIL);
	free(m);
}

static char *
custom_rsa(struct keys *k, const char *extra, const char *sel, const char *alg)
{
	char bh[64], tags[400];

	bh_of(plain_msg, true, DKIM_NO_LIMIT, bh, sizeof bh);
	snprintf(tags, sizeof tags,
		 "v=1; a=%s; c=relaxed/relaxed; d=example.org; s=%s; "
		 "h=from:to:subject; %sbh=%s",
		 alg, sel, extra, bh);
	return sign_custom(k->rsa, tags, plain_msg, true);
}

static void
test_dkim_verdicts_for_broken_cases(void **state)
{
	struct keys *k = *state;
	static const struct {
		const char *extra, *sel, *alg;
		enum dkim_result r;
		const char *problem;
	} cases[] = {
	    {"t=1000; x=2000; ", "r1", "rsa-sha256", DKIM_FAIL,
	     "signature expired"},
	    {"t=3000000000; x=4000000000; ", "r1", "rsa-sha256", DKIM_PASS, ""},
	    {"t=2000; x=1000; ", "r1", "rsa-sha256", DKIM_PERMERROR,
	     "expires before it was made (x= < t=)"},
	    {"", "gone", "rsa-sha256", DKIM_FAIL, "key revoked (empty p=)"},
	    {"", "r1", "rsa-sha1", DKIM_PERMERROR,
	     "rsa-sha1 is not accepted (RFC 8301)"},
	    {"", "small", "rsa-sha256", DKIM_PERMERROR,
	     "key too small (512 bits)"},
	    {"", "nokey", "rsa-sha256", DKIM_PERMERROR, "no key for selector"},
	    {"", "slow", "rsa-sha256", DKIM_TEMPERROR, "key lookup failed"},
	    {"", "two", "rsa-sha256", DKIM_PERMERROR, "several key records"},
	    {"", "e1", "rsa-sha256", DKIM_PERMERROR,
	     "key type (k=) does not match the algorithm (a=)"},
	    {"i=joe@mail.example.org; ", "r1", "rsa-sha256", DKIM_PASS, ""},
	    {"i=joe@example.com; ", "r1", "rsa-sha256", DKIM_PERMERROR,
	     "identity (i=) not within the domain (d=)"},
	    {"q=dns/txt; ", "r1", "rsa-sha256", DKIM_PASS, ""},
	    {"q=http; ", "r1", "rsa-sha256", DKIM_PERMERROR,
	     "no known query method (q=)"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *m =
		    custom_rsa(k, cases[i].extra, cases[i].sel, cases[i].alg);

		print_message("case %zu: %s %s\n", i, cases[i].extra,
			      cases[i].sel);
		assert_int_equal(result_of(m, k->zone, NOW, cases[i].problem),
				 cases[i].r);
		free(m);
	}
}

static void
test_dkim_key_record_rules(void **state)
{
	struct keys *k = *state;
	const char *p = strstr(k->rsa_txt, "p=");
	static const struct {
		const char *fmt; /* %s: the p= tag */
		enum dkim_result r;
	} cases[] = {
	    {"v=DKIM1; k=rsa; %s", DKIM_PASS},
	    {"%s", DKIM_PASS},
	    {"k=rsa; v=DKIM1; %s", DKIM_PERMERROR},
	    {"v=DKIM2; %s", DKIM_PERMERROR},
	    {"v=DKIM1; h=sha1; %s", DKIM_PERMERROR},
	    {"v=DKIM1; h=sha1:sha256; %s", DKIM_PASS},
	    {"v=DKIM1; s=email; %s", DKIM_PASS},
	    {"v=DKIM1; s=*; %s", DKIM_PASS},
	    {"v=DKIM1; s=other; %s", DKIM_PERMERROR},
	    {"v=DKIM1; t=s; %s", DKIM_PASS},
	    {"v=DKIM1; k=dsa; %s", DKIM_PERMERROR},
	    {"v=DKIM1; k=rsa; p=AAAA", DKIM_PERMERROR},
	    {"v=DKIM1; k=rsa", DKIM_PERMERROR},
	    {"v=DKIM1; bad", DKIM_PERMERROR},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char rr[1200];
		struct adns_row zone[] = {
		    {"r1._domainkey.example.org", ADNS_TXT, ADNS_OK, {rr}},
		    {0}};
		char *m = custom_rsa(k, "", "r1", "rsa-sha256");

		snprintf(rr, sizeof rr, cases[i].fmt, p);
		print_message("key case %zu: %s\n", i, cases[i].fmt);
		assert_int_equal(result_of(m, zone, NOW, NULL), cases[i].r);
		free(m);
	}
	/* t=s: i= must be d= exactly. */
	{
		char rr[1200], *m;
		struct adns_row zone[] = {
		    {"r1._domainkey.example.org", ADNS_TXT, ADNS_OK, {rr}},
		    {0}};

		snprintf(rr, sizeof rr, "v=DKIM1; t=y:s; %s", p);
		m = custom_rsa(k, "i=a@sub.example.org; ", "r1", "rsa-sha256");
		assert_int_equal(result_of(m, zone, NOW, NULL), DKIM_PERMERROR);
		free(m);
	}
}

static void
test_dkim_malformed_signatures_are_permerror(void **state)
{
	static const char *const sigs[] = {
	    "DKIM-Signature: v=1; a=rsa-sha256\r\n",
	    "DKIM-Signature: garbage\r\n",
	    "DKIM-Signature: v=2; a=rsa-sha256; d=example.org; s=r1; "
	    "h=from; bh=AAAA; b=AAAA\r\n",
	    "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=r1; "
	    "h=to:subject; bh=AAAA; b=AAAA\r\n",
	    "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=r1; "
	    "h=from; bh=AAAA; b=!!!!\r\n",
	    "DKIM-Signature: v=1; a=rsa-sha256; c=odd; d=example.org; "
	    "s=r1; h=from; bh=AAAA; b=AAAA\r\n",
	    "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=r1; "
	    "h=from::to; bh=AAAA; b=AAAA\r\n",
	    "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=r1; "
	    "l=x; h=from; bh=AAAA; b=AAAA\r\n",
	    /* a 64-octet label: no DNS name, so no lookup */
	    "DKIM-Signature: v=1; a=rsa-sha256; d=a23456789012345678901234"
	    "5678901234567890123456789012345678901234.org; s=r1; h=from; "
	    "bh=AAAA; b=AAAA\r\n",
	};
	struct keys *k = *state;

	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		char *m = join(sigs[i], plain_msg);

		print_message("sig %zu\n", i);
		assert_int_equal(result_of(m, k->zone, NOW, NULL),
				 DKIM_PERMERROR);
		free(m);
	}
}

static void
test_dkim_two_signatures_both_reported(void **state)
{
	struct keys *k = *state;
	char *good = signed_by(k->ed, plain_msg), *bad, *m, *p, *other;
	struct dkim_check *c;
	unsigned rounds = 0;

	/* An RSA signature of another body on top of a good Ed25519 one. */
	other = strdup(plain_msg);
	p = strstr(other, "Shall");
	p[0] = 'W';
	bad = signed_by(k->rsa, other);
	p = strstr(bad, "\r\nFrom:");
	p[2] = '\0';
	m = join(bad, good);
	free(good);
	free(bad);
	free(other);
	c = check_all(m, strlen(m), k->zone, NOW, &rounds);
	assert_int_equal(dkim_check_count(c), 2);
	assert_int_equal(dkim_check_result(c, 0)->result, DKIM_FAIL);
	assert_string_equal(dkim_check_result(c, 0)->problem,
			    "body hash did not verify");
	assert_string_equal(dkim_check_result(c, 0)->selector, "r1");
	assert_int_equal(dkim_check_result(c, 1)->result, DKIM_PASS);
	assert_string_equal(dkim_check_result(c, 1)->selector, "e1");
	assert_int_equal(rounds, 1);
	dkim_check_free(c);
	free(m);

	/* One good, one with an unknown key. */
	good = signed_by(k->ed, plain_msg);
	m = join("DKIM-Signature: v=1; a=rsa-sha256; d=example.org; "
		 "s=nokey; h=from; bh=AAAA; b=AAAA\r\n",
		 good);
	c = check_all(m, strlen(m), k->zone, NOW, NULL);
	assert_int_equal(dkim_check_count(c), 2);
	assert_int_equal(dkim_check_result(c, 0)->result, DKIM_PERMERROR);
	assert_int_equal(dkim_check_result(c, 1)->result, DKIM_PASS);
	dkim_check_free(c);
	free(m);
	free(good);
}

static void
test_dkim_no_signature_and_limits(void **state)
{
	struct keys *k = *state;
	struct dkim_check *c =
	    check_all(plain_msg, strlen(plain_msg), k->zone, NOW, NULL);
	char *m = signed_by(k->ed, plain_msg), *many = strdup(m), *t;

	assert_int_equal(dkim_check_count(c), 0);
	dkim_check_free(c);
	for (int i = 0; i < 12; i++) {
		t = join("DKIM-Signature: v=1\r\n", many);
		free(many);
		many = t;
	}
	c = dkim_check_new(many, strlen(many), 100, NOW);
	assert_int_equal(dkim_check_count(c), DKIM_SIGS_MAX);
	dkim_check_free(c);
	c = dkim_check_new(many, strlen(many), 2, NOW);
	assert_int_equal(dkim_check_count(c), 2);
	dkim_check_free(c);
	free(many);
	free(m);
	assert_string_equal(dkim_result_name(DKIM_PASS), "pass");
	assert_string_equal(dkim_result_name(DKIM_PERMERROR), "permerror");
	assert_string_equal(dkim_result_name(DKIM_NONE), "none");
}

static void
test_dkim_sign_header_choice(void **state)
{
	struct keys *k = *state;
	static const char *const hs[] = {"subject", "x-absent", NULL};
	char *hdr = dkim_sign(k->ed, plain_msg, strlen(plain_msg), hs, NOW);
	char err[256];

	assert_non_null(hdr);
	/* From always, over-signed; absent names left out. */
	assert_non_null(strstr(hdr, "h=from:from:subject;"));
	assert_null(strstr(hdr, "x-absent"));
	free(hdr);
	assert_null(dkim_signer_from_pem("junk", 4, "example.org", "s", err,
					 sizeof err));
	assert_non_null(strstr(err, "postern dkim keygen"));
	assert_null(dkim_signer_from_pem(rfc8463_pem, strlen(rfc8463_pem),
					 "bad domain", "s", err, sizeof err));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dkim_rfc8463_example_verifies),
	    cmocka_unit_test(test_dkim_rfc8463_ed25519_signature_reproduced),
	    cmocka_unit_test(test_dkim_rfc8463_message_signed_by_us_verifies),
	    cmocka_unit_test(test_dkim_canonicalization_rfc6376_example),
	    cmocka_unit_test(test_dkim_tag_lists),
	    cmocka_unit_test(test_dkim_round_trip_rsa_and_ed25519),
	    cmocka_unit_test(test_dkim_tampering_fails),
	    cmocka_unit_test(test_dkim_body_length_limit),
	    cmocka_unit_test(test_dkim_simple_canonicalization_round_trip),
	    cmocka_unit_test(test_dkim_verdicts_for_broken_cases),
	    cmocka_unit_test(test_dkim_key_record_rules),
	    cmocka_unit_test(test_dkim_malformed_signatures_are_permerror),
	    cmocka_unit_test(test_dkim_two_signatures_both_reported),
	    cmocka_unit_test(test_dkim_no_signature_and_limits),
	    cmocka_unit_test(test_dkim_sign_header_choice),
	};

	return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
