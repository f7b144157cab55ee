/*
 * test_tlspolicy.c - which TLSA records the sending side can use for
 * DANE (src/policy/tlspolicy.c, tlspol_tlsa_parse): RFC 7672 3.1 keeps
 * DANE-TA(2) and DANE-EE(3) only, RFC 6698 2.1 gives the fields and the
 * digest lengths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/tlspolicy.h"

#define SHA256_HEX                                                         \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
test_tlsa_usable_records(void **state)
{
	struct outbound_tlsa r;

	(void)state;
	assert_true(tlspol_tlsa_parse("3 1 1 " SHA256_HEX, &r));
	assert_int_equal(r.usage, 3);
	assert_int_equal(r.selector, 1);
	assert_int_equal(r.mtype, 1);
	assert_int_equal(r.len, 32);
	assert_int_equal(r.data[0], 0x01);
	assert_int_equal(r.data[31], 0xef);
	assert_true(tlspol_tlsa_parse("2 0 1 " SHA256_HEX, &r));
	assert_true(tlspol_tlsa_parse("3 1 2 " SHA256_HEX SHA256_HEX, &r));
	assert_int_equal(r.len, 64);
	/* matching type 0: the whole key or certificate, any length */
	assert_true(tlspol_tlsa_parse("3 1 0 3059301306072a8648ce3d", &r));
	assert_int_equal(r.len, 11);
	/* hex in upper case is the same record */
	assert_true(tlspol_tlsa_parse("3 1 1 0123456789ABCDEF0123456789ABCDEF"
				      "0123456789ABCDEF0123456789ABCDEF",
				      &r));
}

static void
test_tlsa_unusable_records(void **state)
{
	static const char *const bad[] = {
	    "0 0 1 " SHA256_HEX, /* PKIX-TA: not for SMTP (RFC 7672 3.1.3) */
	    "1 1 1 " SHA256_HEX, /* PKIX-EE */
	    "4 1 1 " SHA256_HEX, /* unknown usage */
	    "3 2 1 " SHA256_HEX, /* unknown selector */
	    "3 1 3 " SHA256_HEX, /* unknown matching type */
	    "3 1 1 0123",	 /* SHA-256 of the wrong length */
	    "3 1 2 " SHA256_HEX, /* SHA-512 of the wrong length */
	    "3 1 1 " SHA256_HEX "0", /* odd number of digits */
	    "3 1 1 zz23456789abcdef0123456789abcdef0123456789abcdef01234567"
	    "89abcdef",
	    "3 1 1 ",
	    "3 1",
	    "",
	};
	struct outbound_tlsa r;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (tlspol_tlsa_parse(bad[i], &r))
			fail_msg("'%s' was taken as usable", bad[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tlsa_usable_records),
	    cmocka_unit_test(test_tlsa_unusable_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
