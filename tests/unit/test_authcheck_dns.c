/*
 * test_authcheck_dns.c - the answers of the SPF, DKIM and DMARC lookups
 * (src/policy/authcheck_dns.c): DNS messages built here octet by octet,
 * as a server sends them, read into records (TXT strings joined, MX in
 * preference order through name compression, the lowest TTL), c-ares'
 * failures mapped so that nothing but NXDOMAIN and NODATA reads as "no
 * record", and the cache's TTLs.  The lookups themselves run against a
 * real DNS server in tests/integration/test_authcheck.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <ares.h>

#include "policy/authcheck_int.h"

#define MSG_MAX 1024

struct dnsmsg {
	unsigned char b[MSG_MAX];
	size_t n;
	unsigned ancount;
};

static void
put8(struct dnsmsg *m, unsigned v)
{
	m->b[m->n++] = (unsigned char)v;
}

static void
put16(struct dnsmsg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 0xff);
}

static void
put32(struct dnsmsg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

/* A name as labels ("a.b" -> 1a1b0). */
static void
put_name(struct dnsmsg *m, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t len = dot ? (size_t)(dot - name) : strlen(name);
		put8(m, (unsigned)len);
		memcpy(m->b + m->n, name, len);
		m->n += len;
		name += len + (dot ? 1 : 0);
	}
	put8(m, 0);
}

/* Header and one question for name/type; the question's name is at 12. */
static void
start(struct dnsmsg *m, const char *name, unsigned type)
{
	memset(m, 0, sizeof *m);
	put16(m, 0x1234);
	put16(m, 0x8180); /* response, RD, RA, NOERROR */
	put16(m, 1);
	put16(m, 0); /* ancount, set by finish() */
	put16(m, 0);
	put16(m, 0);
	put_name(m, name);
	put16(m, type);
	put16(m, 1);
}

/* An answer owned by the question's name (a pointer to offset 12). */
static void
rr(struct dnsmsg *m, unsigned type, uint32_t ttl, const void *rdata,
   size_t rdlen)
{
	put16(m, 0xc00c);
	put16(m, type);
	put16(m, 1);
	put32(m, ttl);
	put16(m, (unsigned)rdlen);
	memcpy(m->b + m->n, rdata, rdlen);
	m->n += rdlen;
	m->ancount++;
}

static const unsigned char *
finish(struct dnsmsg *m)
{
	m->b[6] = (unsigned char)(m->ancount >> 8);
	m->b[7] = (unsigned char)(m->ancount & 0xff);
	return m->b;
}

static void
test_txt_strings_of_a_record_are_joined(void **state)
{
	static const unsigned char one[] = "\x08v=spf1 a\x05 -all";
	static const unsigned char two[] = "\x0bv=DMARC1; x";
	struct dnsmsg m;
	struct adns_owned *a;

	(void)state;
	start(&m, "example.test", 16);
	rr(&m, 16, 300, one, sizeof one - 1);
	rr(&m, 16, 60, two, sizeof two - 1);
	a = adns_parse(ARES_SUCCESS, finish(&m), (int)m.n, ADNS_TXT);
	assert_non_null(a);
	assert_int_equal(a->ans.status, ADNS_OK);
	assert_int_equal(a->ans.n, 2);
	assert_string_equal(a->ans.rr[0], "v=spf1 a -all");
	assert_string_equal(a->ans.rr[1], "v=DMARC1; x");
	assert_int_equal(a->ttl, 60); /* the lowest */
	adns_owned_free(a);
}

static void
test_addresses_are_text(void **state)
{
	static const unsigned char v4[] = {192, 0, 2, 1};
	static const unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	struct dnsmsg m;
	struct adns_owned *a;

	(void)state;
	start(&m, "h.test", 1);
	rr(&m, 1, 10, v4, sizeof v4);
	a = adns_parse(ARES_SUCCESS, finish(&m), (int)m.n, ADNS_A);
	assert_string_equal(a->ans.rr[0], "192.0.2.1");
	adns_owned_free(a);
	start(&m, "h.test", 28);
	rr(&m, 28, 10, v6, sizeof v6);
	a = adns_parse(ARES_SUCCESS, finish(&m), (int)m.n, ADNS_AAAA);
	assert_string_equal(a->ans.rr[0], "2001:db8::1");
	adns_owned_free(a);
	/* an A of the wrong length is a broken answer, not "no address" */
	start(&m, "h.test", 1);
	rr(&m, 1, 10, v4, 3);
	a = adns_parse(ARES_SUCCESS, finish(&m), (int)m.n, ADNS_A);
	assert_int_equal(a->ans.status, ADNS_TEMPFAIL);
	adns_owned_free(a);
}

static void
test_mx_come_in_preference_order_through_compression(void **state)
{
	/* pref 20 "b" + pointer to the question's name; pref 10 "a" + ptr;
	 * a null MX (".") of pref 0 */
	static const unsigned char b20[] = {0, 20, 1, 'b', 0xc0, 0x0c};
	static const unsigned char a10[] = {0, 10, 1, 'a', 0xc0, 0x0c};
	static const unsigned char null0[] = {0, 0, 0};
	struct dnsmsg m;
	struct adns_owned *a;

	(void)state;
	start(&m, "mx.test", 15);
	rr(&m, 15, 100, b20, sizeof b20);
	rr(&m, 15, 100, a10, sizeof a10);
	a = adns_parse(ARES_SUCCESS, finish(&m), (int)m.n, ADNS_MX);
	assert_int_equal(a->ans.n, 2);
	assert_string_equal(a->ans.rr[0], "a.mx.test");
	assert_string_equal(a->ans.rr[1], "b.mx.test");
	adns_owned_free(a);
	start(&m, "mx.test", 15);
	rr(&m, 15, 100, null0, sizeof null0);
	a = adns_parse(ARES_SUCCESS, finish(&m), (int)m.n, ADNS_MX);
	assert_int_equal(a->ans.n, 1);
	assert_string_equal(a->ans.rr[0], "");
	adns_owned_free(a);
}

static void
test_only_records_of_the_type_asked_count(void **state)
{
	/* a CNAME to elsewhere and nothing else: no record of this name */
	static const unsigned char cname[] = {1, 'x', 0xc0, 0x0c};
	static const unsigned char ptr[] = {4, 'h', 'o', 's', 't', 0};
	struct dnsmsg m;
	struct adns_owned *a;

	(void)state;
	start(&m, "alias.test", 16);
	rr(&m, 5, 100, cname, sizeof cname);
	a = adns_parse(ARES_SUCCESS, finish(&m), (int)m.n, ADNS_TXT);
	assert_int_equal(a->ans.status, ADNS_NODATA);
	adns_owned_free(a);
	start(&m, "1.2.0.192.in-addr.arpa", 12);
	rr(&m, 12, 100, ptr, sizeof ptr);
	a = adns_parse(ARES_SUCCESS, finish(&m), (int)m.n, ADNS_PTR);
	assert_string_equal(a->ans.rr[0], "host");
	adns_owned_free(a);
}

/* RFC 6698 2.2: "3 1 1 <hex>"; AD (RFC 4035 3.2.3) says validated; an
 * RCODE in a raw answer (ares_send) decides the status. */
static void
test_tlsa_records_ad_bit_and_rcode(void **state)
{
	static const unsigned char tlsa[] = {3, 1, 1, 0xab, 0x01, 0xff};
	struct dnsmsg m;
	struct adns_owned *a;

	(void)state;
	start(&m, "_25._tcp.mx.example.test", 52);
	rr(&m, 52, 300, tlsa, sizeof tlsa);
	a = adns_parse(ARES_SUCCESS, finish(&m), (int)m.n, ADNS_TLSA);
	assert_int_equal(a->ans.status, ADNS_OK);
	assert_string_equal(a->ans.rr[0], "3 1 1 ab01ff");
	assert_false(a->is_secure);
	adns_owned_free(a);
	m.b[3] |= 0x20; /* AD */
	a = adns_parse(ARES_SUCCESS, m.b, (int)m.n, ADNS_TLSA);
	assert_true(a->is_secure);
	adns_owned_free(a);
	m.b[3] = (unsigned char)((m.b[3] & 0xf0) | 3); /* NXDOMAIN */
	a = adns_parse(ARES_SUCCESS, m.b, (int)m.n, ADNS_TLSA);
	assert_int_equal(a->ans.status, ADNS_NXDOMAIN);
	adns_owned_free(a);
	m.b[3] = (unsigned char)((m.b[3] & 0xf0) | 2); /* SERVFAIL */
	a = adns_parse(ARES_SUCCESS, m.b, (int)m.n, ADNS_TLSA);
	assert_int_equal(a->ans.status, ADNS_TEMPFAIL);
	adns_owned_free(a);
	/* rdata too short to be TLSA: the answer is malformed */
	start(&m, "_25._tcp.mx.example.test", 52);
	rr(&m, 52, 300, tlsa, 3);
	a = adns_parse(ARES_SUCCESS, finish(&m), (int)m.n, ADNS_TLSA);
	assert_int_equal(a->ans.status, ADNS_TEMPFAIL);
	adns_owned_free(a);
}

static void
test_failures_are_never_no_record(void **state)
{
	static const int tempfails[] = {ARES_ETIMEOUT, ARES_ESERVFAIL,
					ARES_ECONNREFUSED, ARES_EREFUSED,
					ARES_ENOMEM, ARES_EDESTRUCTION,
					ARES_EFORMERR};
	struct adns_owned *a;
	struct dnsmsg m;

	(void)state;
	for (size_t i = 0; i < sizeof tempfails / sizeof *tempfails; i++) {
		a = adns_parse(tempfails[i], NULL, 0, ADNS_TXT);
		assert_int_equal(a->ans.status, ADNS_TEMPFAIL);
		assert_int_equal(a->ttl, 0);
		adns_owned_free(a);
	}
	a = adns_parse(ARES_ENOTFOUND, NULL, 0, ADNS_TXT);
	assert_int_equal(a->ans.status, ADNS_NXDOMAIN);
	adns_owned_free(a);
	a = adns_parse(ARES_ENODATA, NULL, 0, ADNS_TXT);
	assert_int_equal(a->ans.status, ADNS_NODATA);
	adns_owned_free(a);
	/* a message cut short in its answer */
	start(&m, "cut.test", 16);
	rr(&m, 16, 100, "\x05hello", 6);
	a = adns_parse(ARES_SUCCESS, finish(&m), (int)m.n - 3, ADNS_TXT);
	assert_int_equal(a->ans.status, ADNS_TEMPFAIL);
	adns_owned_free(a);
}

static void
test_cache_keeps_answers_for_their_ttl_and_never_a_tempfail(void **state)
{
	struct adns_cache *c = adns_cache_new(2);
	static const char *const rec[] = {"v=spf1 -all"};
	struct adns_owned ok = {{ADNS_OK, 1, rec}, 300, false};
	struct adns_owned gone = {{ADNS_OK, 1, rec}, 0, false};
	struct adns_owned temp = {{ADNS_TEMPFAIL, 0, NULL}, 300, false};
	struct adns_owned *a;

	(void)state;
	adns_cache_put(c, "A.test", ADNS_TXT, &ok);
	adns_cache_put(c, "zero.test", ADNS_TXT, &gone);
	adns_cache_put(c, "temp.test", ADNS_TXT, &temp);
	a = adns_cache_get(c, "a.TEST", ADNS_TXT); /* any case */
	assert_non_null(a);
	assert_string_equal(a->ans.rr[0], "v=spf1 -all");
	adns_owned_free(a);
	assert_null(adns_cache_get(c, "a.test", ADNS_A)); /* other type */
	assert_null(adns_cache_get(c, "zero.test", ADNS_TXT));
	assert_null(adns_cache_get(c, "temp.test", ADNS_TXT));
	/* two entries at most: the oldest goes */
	adns_cache_put(c, "b.test", ADNS_TXT, &ok);
	adns_cache_put(c, "c.test", ADNS_TXT, &ok);
	assert_null(adns_cache_get(c, "a.test", ADNS_TXT));
	a = adns_cache_get(c, "c.test", ADNS_TXT);
	assert_non_null(a);
	adns_owned_free(a);
	adns_cache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt_strings_of_a_record_are_joined),
		cmocka_unit_test(test_addresses_are_text),
		cmocka_unit_test(
		    test_mx_come_in_preference_order_through_compression),
		cmocka_unit_test(test_only_records_of_the_type_asked_count),
		cmocka_unit_test(test_failures_are_never_no_record),
	    cmocka_unit_test(test_tlsa_records_ad_bit_and_rcode),
		cmocka_unit_test(
		    test_cache_keeps_answers_for_their_ttl_and_never_a_tempfail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
