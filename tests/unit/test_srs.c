/*
 * test_srs.c - the Sender Rewriting Scheme (src/auth/srs.c): round trips,
 * case changes, bad hashes, age and the 1024-day wrap, malformed forms,
 * SRS1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "auth/srs.h"

#define SECRET "s3cret"
#define OURS "fwd.example"
#define DAY ((int64_t)86400)
#define NOW ((int64_t)20000 * DAY + 3600)
#define BUF 512

/* The local part of addr (before its last "@") into out. */
static void
local_of(const char *addr, char *out, size_t size)
{
	const char *at = strrchr(addr, '@');

	assert_non_null(at);
	snprintf(out, size, "%.*s", (int)(at - addr), addr);
}

static void
test_srs_round_trip(void **state)
{
	static const char *const senders[] = {
	    "user@example.org", "a.b+c@sub.example.net",
	    "x=y@example.org",	"\"q@q\"@example.org",
	    "srs0@example.org", "SRS2=x@example.org"};
	char out[BUF], local[BUF], orig[BUF];

	(void)state;
	for (size_t i = 0; i < sizeof senders / sizeof senders[0]; i++) {
		assert_int_equal(
		    srs_forward(SECRET, senders[i], OURS, NOW, out, sizeof out),
		    0);
		assert_true(strncmp(out, "SRS0=", 5) == 0);
		local_of(out, local, sizeof local);
		assert_int_equal(
		    srs_reverse(SECRET, local, NOW, 0, orig, sizeof orig),
		    SRS_OK);
		assert_string_equal(orig, senders[i]);
	}
}

static void
test_srs_forward_form(void **state)
{
	char out[BUF];
	/* Day 20000 mod 1024 = 544 = 17 * 32 + 0: "RA". */
	(void)state;
	assert_int_equal(
	    srs_forward(SECRET, "user@example.org", OURS, NOW, out, sizeof out),
	    0);
	assert_int_equal(strlen(out),
			 strlen("SRS0=HHHH=RA=example.org=user@" OURS));
	assert_memory_equal(out + 9, "=RA=example.org=user@" OURS, 21);
}

static void
test_srs_case_changed_still_verifies(void **state)
{
	char out[BUF], local[BUF], orig[BUF];

	(void)state;
	assert_int_equal(
	    srs_forward(SECRET, "User@Example.ORG", OURS, NOW, out, sizeof out),
	    0);
	local_of(out, local, sizeof local);
	for (char *p = local; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	assert_int_equal(srs_reverse(SECRET, local, NOW, 0, orig, sizeof orig),
			 SRS_OK);
	assert_string_equal(orig, "user@example.org");
	/* The other separators after the prefix. */
	local[4] = '+';
	assert_int_equal(srs_reverse(SECRET, local, NOW, 0, orig, sizeof orig),
			 SRS_OK);
	local[4] = '-';
	assert_int_equal(srs_reverse(SECRET, local, NOW, 0, orig, sizeof orig),
			 SRS_OK);
}

static void
test_srs_bad_hash(void **state)
{
	char out[BUF], local[BUF], orig[BUF];

	(void)state;
	assert_int_equal(
	    srs_forward(SECRET, "user@example.org", OURS, NOW, out, sizeof out),
	    0);
	local_of(out, local, sizeof local);
	assert_int_equal(srs_reverse("other", local, NOW, 0, orig, sizeof orig),
			 SRS_BAD_HASH);
	assert_string_equal(orig, "");
	local[5] = local[5] == 'A' ? 'B' : 'A';
	assert_int_equal(srs_reverse(SECRET, local, NOW, 0, orig, sizeof orig),
			 SRS_BAD_HASH);
	/* The domain changed under a valid hash. */
	local_of(out, local, sizeof local);
	local[13] = 'X';
	assert_int_equal(srs_reverse(SECRET, local, NOW, 0, orig, sizeof orig),
			 SRS_BAD_HASH);
	/* A hash of the wrong length. */
	assert_int_equal(srs_reverse(SECRET, "SRS0=abc=RA=example.org=u", NOW,
				     0, orig, sizeof orig),
			 SRS_BAD_HASH);
	assert_int_equal(srs_reverse("", local, NOW, 0, orig, sizeof orig),
			 SRS_BAD_HASH);
}

static void
test_srs_age_and_wrap(void **state)
{
	char out[BUF], local[BUF], orig[BUF];

	(void)state;
	assert_int_equal(
	    srs_forward(SECRET, "user@example.org", OURS, NOW, out, sizeof out),
	    0);
	local_of(out, local, sizeof local);
	assert_int_equal(
	    srs_reverse(SECRET, local, NOW + 21 * DAY, 0, orig, sizeof orig),
	    SRS_OK);
	assert_int_equal(
	    srs_reverse(SECRET, local, NOW + 22 * DAY, 0, orig, sizeof orig),
	    SRS_EXPIRED);
	assert_int_equal(
	    srs_reverse(SECRET, local, NOW + 5 * DAY, 4, orig, sizeof orig),
	    SRS_EXPIRED);
	assert_int_equal(
	    srs_reverse(SECRET, local, NOW + 30 * DAY, 40, orig, sizeof orig),
	    SRS_OK);
	/* A day before: from the future, very old. */
	assert_int_equal(
	    srs_reverse(SECRET, local, NOW - DAY, 0, orig, sizeof orig),
	    SRS_EXPIRED);
	/* 1024 days later the stamp comes round again (by design). */
	assert_int_equal(
	    srs_reverse(SECRET, local, NOW + 1024 * DAY, 0, orig, sizeof orig),
	    SRS_OK);
	/* Made on day 1023, read on day 1024 + 3: age 4 across the wrap. */
	assert_int_equal(srs_forward(SECRET, "u@example.org", OURS,
				     (int64_t)1023 * DAY, out, sizeof out),
			 0);
	assert_memory_equal(out + 9, "=77=", 4);
	local_of(out, local, sizeof local);
	assert_int_equal(srs_reverse(SECRET, local, (int64_t)1027 * DAY, 0,
				     orig, sizeof orig),
			 SRS_OK);
	assert_int_equal(srs_reverse(SECRET, local, (int64_t)1027 * DAY, 3,
				     orig, sizeof orig),
			 SRS_EXPIRED);
}

static void
test_srs_malformed_and_not_srs(void **state)
{
	static const char *const malformed[] = {"SRS0=",
						"SRS0=abcd",
						"SRS0=abcd=",
						"SRS0=abcd=RA",
						"SRS0=abcd=RA=",
						"SRS0=abcd=RA=example.org",
						"SRS0=abcd=RA=example.org=",
						"SRS0=abcd=R1=example.org=u",
						"SRS0=abcd=RAB=example.org=u",
						"SRS0=abcd=RA==u",
						"SRS1=abcd",
						"SRS1=abcd=first",
						"SRS1=abcd=first=",
						"SRS1=abcd=first=x",
						"SRS1=abcd==x"};
	static const char *const not_srs[] = {
	    "user",	 "", "SRS", "SRS0", "SRS0x", "SRS2=abcd=RA=a=b",
	    "xSRS0=abcd"};
	char orig[BUF];

	(void)state;
	for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
		if (srs_reverse(SECRET, malformed[i], NOW, 0, orig,
				sizeof orig) != SRS_MALFORMED)
			fail_msg("%s not malformed", malformed[i]);
	for (size_t i = 0; i < sizeof not_srs / sizeof not_srs[0]; i++)
		assert_int_equal(
		    srs_reverse(SECRET, not_srs[i], NOW, 0, orig, sizeof orig),
		    SRS_NOT_SRS);
}

static void
test_srs_forward_errors(void **state)
{
	char out[BUF];

	(void)state;
	assert_int_equal(srs_forward(SECRET, "", OURS, NOW, out, sizeof out),
			 SRS_ERR_NULL_SENDER);
	assert_int_equal(srs_forward(SECRET, "<>", OURS, NOW, out, sizeof out),
			 SRS_ERR_NULL_SENDER);
	assert_int_equal(
	    srs_forward(SECRET, "user", OURS, NOW, out, sizeof out),
	    SRS_ERR_SENDER);
	assert_int_equal(srs_forward(SECRET, "@x", OURS, NOW, out, sizeof out),
			 SRS_ERR_SENDER);
	assert_int_equal(srs_forward(SECRET, "u@", OURS, NOW, out, sizeof out),
			 SRS_ERR_SENDER);
	assert_int_equal(
	    srs_forward(SECRET, "u@a=b", OURS, NOW, out, sizeof out),
	    SRS_ERR_SENDER);
	assert_int_equal(srs_forward("", "u@x", OURS, NOW, out, sizeof out),
			 SRS_ERR_SECRET);
	assert_int_equal(
	    srs_forward(SECRET, "u@example.org", OURS, NOW, out, 20),
	    SRS_ERR_SPACE);
	assert_string_equal(out, "");
	/* Exactly enough room. */
	assert_int_equal(
	    srs_forward(SECRET, "u@example.org", OURS, NOW, out,
			strlen("SRS0=HHHH=RA=example.org=u@" OURS) + 1),
	    0);
	assert_int_equal(
	    srs_forward(SECRET, "u@example.org", OURS, NOW, out,
			strlen("SRS0=HHHH=RA=example.org=u@" OURS)),
	    SRS_ERR_SPACE);
}

static void
test_srs1(void **state)
{
	char first[BUF], local[BUF], second[BUF], orig[BUF], third[BUF];

	(void)state;
	/* The first forwarder, first.example, with its own secret. */
	assert_int_equal(srs_forward("firstsecret", "user@example.org",
				     "first.example", NOW, first, sizeof first),
			 0);
	/* We forward again: SRS1 keeping first.example. */
	assert_int_equal(
	    srs_forward(SECRET, first, OURS, NOW, second, sizeof second), 0);
	assert_true(strncmp(second, "SRS1=", 5) == 0);
	assert_non_null(strstr(second, "=first.example=="));
	local_of(second, local, sizeof local);
	assert_int_equal(srs_reverse(SECRET, local, NOW, 0, orig, sizeof orig),
			 SRS_OK);
	assert_string_equal(orig, first);
	/* The first forwarder then takes its SRS0 back. */
	local_of(orig, local, sizeof local);
	assert_int_equal(
	    srs_reverse("firstsecret", local, NOW, 0, orig, sizeof orig),
	    SRS_OK);
	assert_string_equal(orig, "user@example.org");
	/* A third forwarder rewrites SRS1 keeping the first domain. */
	assert_int_equal(srs_forward("third", second, "third.example", NOW,
				     third, sizeof third),
			 0);
	assert_non_null(strstr(third, "=first.example=="));
	local_of(third, local, sizeof local);
	assert_int_equal(srs_reverse("third", local, NOW, 0, orig, sizeof orig),
			 SRS_OK);
	assert_string_equal(orig, first);
	assert_int_equal(srs_reverse(SECRET, local, NOW, 0, orig, sizeof orig),
			 SRS_BAD_HASH);
	/* Lowercased SRS1 still verifies (and yields an SRS0 prefix). */
	local_of(second, local, sizeof local);
	for (char *p = local; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	assert_int_equal(srs_reverse(SECRET, local, NOW, 0, orig, sizeof orig),
			 SRS_OK);
	assert_int_equal(strncmp(orig, "SRS0=", 5), 0);
	assert_true(strcasecmp(orig, first) == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_srs_round_trip),
	    cmocka_unit_test(test_srs_forward_form),
	    cmocka_unit_test(test_srs_case_changed_still_verifies),
	    cmocka_unit_test(test_srs_bad_hash),
	    cmocka_unit_test(test_srs_age_and_wrap),
	    cmocka_unit_test(test_srs_malformed_and_not_srs),
	    cmocka_unit_test(test_srs_forward_errors),
	    cmocka_unit_test(test_srs1),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
