/*
 * fuzz_auth_srs.c - libFuzzer target for SRS (src/auth/srs.c).
 *
 * Input: bytes 0-1 a day number, byte 2 a max age; the rest (up to a NUL)
 * is tried as a local part to reverse and as a sender to forward.
 * Checks: srs_reverse never overruns and fills orig only on SRS_OK; a
 * forwarded sender reverses, the same day and within the age, to the
 * sender itself (an SRS0 sender: itself with the prefix "SRS0"; an SRS1
 * sender: an SRS0 address), also lowercased; with another hash character
 * it is BAD_HASH; forwarding into a buffer one octet short fails cleanly.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/srs.h"

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			__builtin_trap();                                      \
	} while (0)

#define FUZZ_SECRET "fuzz-secret"
#define FUZZ_OURS "fwd.example"
#define FUZZ_DAY 86400
#define FUZZ_BUF 2048

static void
fuzz_local_of(const char *addr, char *out, size_t size)
{
	const char *at = strrchr(addr, '@');

	FUZZ_CHECK(at != NULL);
	snprintf(out, size, "%.*s", (int)(at - addr), addr);
}

static void
fuzz_round_trip(const char *sender, int64_t now, unsigned age)
{
	static char out[FUZZ_BUF], local[FUZZ_BUF], orig[FUZZ_BUF],
	    short_out[FUZZ_BUF];
	int r =
	    srs_forward(FUZZ_SECRET, sender, FUZZ_OURS, now, out, sizeof out);
	enum srs_status st;
	size_t n;

	if (r != 0) {
		FUZZ_CHECK(out[0] == '\0');
		return;
	}
	n = strlen(out);
	FUZZ_CHECK(strncmp(out, "SRS", 3) == 0);
	FUZZ_CHECK(srs_forward(FUZZ_SECRET, sender, FUZZ_OURS, now, short_out,
			       n) == SRS_ERR_SPACE &&
		   short_out[0] == '\0');
	fuzz_local_of(out, local, sizeof local);
	st = srs_reverse(FUZZ_SECRET, local, now + (int64_t)age * FUZZ_DAY, age,
			 orig, sizeof orig);
	FUZZ_CHECK(st == SRS_OK);
	if (out[3] == '0') {
		FUZZ_CHECK(strcmp(orig, sender) == 0);
	} else if (strncasecmp(sender, "SRS0", 4) == 0) {
		FUZZ_CHECK(strncmp(orig, "SRS0", 4) == 0 &&
			   strcmp(orig + 4, sender + 4) == 0);
	} else {
		FUZZ_CHECK(strncmp(orig, "SRS0", 4) == 0);
	}
	for (char *p = local; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	FUZZ_CHECK(srs_reverse(FUZZ_SECRET, local, now, age, orig,
			       sizeof orig) == SRS_OK);
	FUZZ_CHECK(strcasecmp(orig, out[3] == '0' ? sender : orig) == 0);
	/* Another hash character (not just another case) never verifies;
	 * another secret could, once in about 2^21. */
	local[5] = local[5] == 'q' ? 'z' : 'q';
	FUZZ_CHECK(srs_reverse(FUZZ_SECRET, local, now, age, orig,
			       sizeof orig) == SRS_BAD_HASH);
	local[5] = out[5];
	for (char *p = local; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (out[3] == '0' && age < SRS_TIME_WRAP - 2)
		FUZZ_CHECK(srs_reverse(FUZZ_SECRET, local,
				       now + (int64_t)(age + 1) * FUZZ_DAY, age,
				       orig, sizeof orig) == SRS_EXPIRED);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char orig[FUZZ_BUF];
	char *text;
	int64_t now;
	unsigned age;
	enum srs_status st;

	if (size < 3)
		return 0;
	now = ((int64_t)data[0] << 8 | data[1]) * FUZZ_DAY + data[2];
	age = data[2] ? data[2] : SRS_MAX_AGE_DEFAULT;
	text = malloc(size - 2);
	if (text == NULL)
		abort();
	memcpy(text, data + 3, size - 3);
	text[size - 3] = '\0';

	memset(orig, 'x', sizeof orig);
	st = srs_reverse(FUZZ_SECRET, text, now, age, orig, sizeof orig);
	FUZZ_CHECK(memchr(orig, '\0', sizeof orig) != NULL);
	FUZZ_CHECK(st == SRS_OK ? strchr(orig, '@') != NULL : orig[0] == '\0');
	/* A tiny buffer never overflows. */
	(void)srs_reverse(FUZZ_SECRET, text, now, age, orig, 3);
	FUZZ_CHECK(strlen(orig) < 3);

	fuzz_round_trip(text, now, age);
	free(text);
	return 0;
}
