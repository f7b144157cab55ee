/*
 * test_util.c - util/: CRC-32C against its published check value and
 * across any split of the input (the spool checks records written in
 * one call and read in another), and the bounded string helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/crc32.h"
#include "util/str.h"

static void
test_crc32c_check_value_and_splits(void **state)
{
	unsigned char buf[4099];
	uint32_t whole;

	(void)state;
	/* RFC 3720 B.4 / the CRC catalogue's check value for CRC-32C. */
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c(0, "", 0), 0);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	whole = crc32c(0, buf, sizeof buf);
	for (size_t cut = 0; cut <= sizeof buf; cut += 13)
		assert_int_equal(crc32c(crc32c(0, buf, cut), buf + cut,
					sizeof buf - cut),
				 whole);
	/* Unaligned starts give the same value. */
	assert_int_equal(crc32c(0, buf + 1, 100),
			 crc32c(crc32c(0, buf + 1, 3), buf + 4, 97));
}

static void
test_str_helpers_refuse_what_does_not_fit(void **state)
{
	char small[4];
	uint64_t v;

	(void)state;
	assert_true(str_set(small, sizeof small, "abc"));
	assert_false(str_set(small, sizeof small, "abcd"));
	assert_string_equal(small, "");
	assert_true(str_to_u64("18446744073709551615", &v));
	assert_false(str_to_u64("18446744073709551616", &v));
	assert_false(str_to_u64("", &v));
	assert_false(str_to_u64("1x", &v));
	assert_true(str_eq_nocase("HeLo", 4, "helo"));
	assert_false(str_eq_nocase("Hel", 3, "helo"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_check_value_and_splits),
		cmocka_unit_test(test_str_helpers_refuse_what_does_not_fit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
