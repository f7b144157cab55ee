/*
 * fuzz_auth_dkim.c - libFuzzer target for DKIM (src/auth/dkim*.c).
 *
 * Input: a message (CRLF line ends expected, anything taken).  It goes
 * through dkim_check_new() and dkim_check_eval() with a table offering
 * RFC 8463's keys (brisbane: Ed25519, test: RSA 1024) and a few broken
 * records, lazily, as the resolver would; every result must be a known
 * value with NUL-terminated strings.  Then the message is signed with
 * RFC 8463's Ed25519 key and that signature must verify: what the signer
 * canonicalizes is what the verifier canonicalizes, for any header and
 * body (inputs that would join the signature field, or pass the field
 * limits, are left out of that check).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/adns.h"
#include "auth/dkim.h"
#include "auth/dkim_int.h"

#include "../unit/adns_table.h"

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			__builtin_trap();                                      \
	} while (0)

#define FUZZ_NOW 1528637909
#define FUZZ_LINES_MAX 400

static const char pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n";

static const struct adns_row zone[] = {
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
    {"gone._domainkey.football.example.com",
     ADNS_TXT,
     ADNS_OK,
     {"v=DKIM1; p="}},
    {"bad._domainkey.football.example.com",
     ADNS_TXT,
     ADNS_OK,
     {"v=DKIM1; k=rsa; p=MIGfMA0"}},
    {"slow._domainkey.football.example.com", ADNS_TXT, ADNS_TEMPFAIL, {0}},
    {0}};

static struct dkim_check *
run(const char *msg, size_t len)
{
	struct adns_table t;
	struct adns_view v = adns_table_view(&t, zone, true);
	struct dkim_check *c =
	    dkim_check_new(msg, len, DKIM_SIGS_MAX, FUZZ_NOW);
	int rounds = 0;

	if (c == NULL)
		return NULL;
	while (!dkim_check_eval(c, &v)) {
		FUZZ_CHECK(adns_table_round(&t));
		FUZZ_CHECK(++rounds <= 1); /* one round asks for every key */
	}
	FUZZ_CHECK(dkim_check_count(c) <= DKIM_SIGS_MAX);
	for (size_t i = 0; i < dkim_check_count(c); i++) {
		const struct dkim_sig_result *r = dkim_check_result(c, i);

		FUZZ_CHECK(r->result > DKIM_NONE &&
			   r->result <= DKIM_PERMERROR);
		FUZZ_CHECK(memchr(r->domain, 0, sizeof r->domain));
		FUZZ_CHECK(memchr(r->selector, 0, sizeof r->selector));
		FUZZ_CHECK(memchr(r->header_b, 0, sizeof r->header_b));
		FUZZ_CHECK(memchr(r->algorithm, 0, sizeof r->algorithm));
		FUZZ_CHECK(memchr(r->problem, 0, sizeof r->problem));
		FUZZ_CHECK(r->result == DKIM_PASS || r->problem[0] != '\0');
	}
	return c;
}

static size_t
count_crlf(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i + 1 < len; i++)
		if (s[i] == '\r' && s[i + 1] == '\n')
			n++;
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dkim_signer *k;
	const char *msg = (const char *)data;
	struct dkim_check *c;
	char err[256], *hdr, *signed_msg;
	size_t hlen;

	if (k == NULL)
		k = dkim_signer_from_pem(pem, sizeof pem - 1,
					 "football.example.com", "brisbane",
					 err, sizeof err);
	FUZZ_CHECK(k != NULL);
	dkim_check_free(run(msg, size));

	if (size > 0 && (msg[0] == ' ' || msg[0] == '\t'))
		return 0;
	if (count_crlf(msg, size) > FUZZ_LINES_MAX)
		return 0;
	hdr = dkim_sign(k, msg, size, NULL, FUZZ_NOW);
	FUZZ_CHECK(hdr != NULL);
	hlen = strlen(hdr);
	signed_msg = malloc(hlen + size + 1);
	FUZZ_CHECK(signed_msg != NULL);
	memcpy(signed_msg, hdr, hlen);
	memcpy(signed_msg + hlen, msg, size);
	c = run(signed_msg, hlen + size);
	FUZZ_CHECK(c != NULL && dkim_check_count(c) >= 1);
	FUZZ_CHECK(dkim_check_result(c, 0)->result == DKIM_PASS);
	dkim_check_free(c);
	free(signed_msg);
	free(hdr);
	return 0;
}
