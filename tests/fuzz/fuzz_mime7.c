/*
 * fuzz_mime7.c - libFuzzer target for the conversion of message text for
 * the next hop (src/proto/mime7.c).  Links src/proto/mime7.c alone.
 *
 * Input: byte 0 picks the flags (bit 0: MIME7_F_7BIT) and the shape
 * (bit 1: the rest is a body after a fixed header, else a whole message);
 * the rest is the text.
 *
 * Checks:
 *   - mime7_is_needed() says exactly when the result is not MIME7_SAME,
 *     and MIME7_SAME writes the input unchanged;
 *   - a conversion leaves no line over 998 octets and, for a 7-bit peer,
 *     no 8-bit octet; converting its output again gives MIME7_SAME;
 *   - the same input gives the same output;
 *   - a body after a header without MIME, once converted, decodes
 *     (quoted-printable) to its lines, each ended with CRLF where it had
 *     a line end.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mime7.h"

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			__builtin_trap();                                      \
	} while (0)

#define FUZZ_HEADER "Subject: fuzz\r\n\r\n"

struct fuzz_buf {
	char *p;
	size_t n, cap;
};

static void
fuzz_put(void *arg, const char *p, size_t n)
{
	struct fuzz_buf *b = arg;

	FUZZ_CHECK(n > 0);
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static enum mime7_result
fuzz_run(const char *in, size_t len, unsigned flags, struct fuzz_buf *b)
{
	b->n = 0;
	return mime7_convert(in, len, flags, fuzz_put, b);
}

static bool
fuzz_fits(const char *p, size_t n, bool is_7bit)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		if (is_7bit && (unsigned char)p[i] >= 0x80)
			return false;
		if (p[i] == '\n') {
			if (col - (col > 0 && p[i - 1] == '\r') > 998)
				return false;
			col = 0;
		} else {
			col++;
		}
	}
	return col <= 998;
}

static int
fuzz_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Checks that the body of out decodes to the lines of body[0..n). */
static void
fuzz_round_trip(const char *out, size_t out_n, const char *body, size_t n)
{
	const char *q = memmem(out, out_n, "\r\n\r\n", 4);
	char *dec, *want;
	size_t d = 0, w = 0;

	FUZZ_CHECK(q != NULL);
	q += 4;
	FUZZ_CHECK(memmem(out, (size_t)(q - out),
			  "Content-Transfer-Encoding: quoted-printable\r\n",
			  45) != NULL);
	dec = malloc(out_n + 1);
	want = malloc(2 * n + 1);
	if (dec == NULL || want == NULL)
		abort();
	for (const char *e = out + out_n; q < e; q++) {
		if (*q == '=' && e - q >= 3 && q[1] == '\r' && q[2] == '\n') {
			q += 2;
		} else if (*q == '=') {
			FUZZ_CHECK(e - q >= 3 && fuzz_hex(q[1]) >= 0 &&
				   fuzz_hex(q[2]) >= 0);
			dec[d++] = (char)(fuzz_hex(q[1]) * 16 + fuzz_hex(q[2]));
			q += 2;
		} else {
			dec[d++] = *q;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (body[i] == '\n') {
			if (w > 0 && want[w - 1] == '\r' && i > 0 &&
			    body[i - 1] == '\r')
				w--;
			want[w++] = '\r';
			want[w++] = '\n';
		} else {
			want[w++] = body[i];
		}
	}
	FUZZ_CHECK(d == w && memcmp(dec, want, w) == 0);
	free(dec);
	free(want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_buf a = {0}, b = {0}, c = {0};
	unsigned flags;
	bool is_body;
	char *in;
	size_t len, hlen = strlen(FUZZ_HEADER);
	enum mime7_result r;

	if (size < 1)
		return 0;
	flags = data[0] & 1 ? MIME7_F_7BIT : 0;
	is_body = data[0] & 2;
	len = size - 1 + (is_body ? hlen : 0);
	in = malloc(len + 1);
	if (in == NULL)
		abort();
	if (is_body)
		memcpy(in, FUZZ_HEADER, hlen);
	memcpy(in + (is_body ? hlen : 0), data + 1, size - 1);

	r = fuzz_run(in, len, flags, &a);
	FUZZ_CHECK(mime7_is_needed(in, len, flags) == (r != MIME7_SAME));
	if (r == MIME7_SAME)
		FUZZ_CHECK(a.n == len && (len == 0 || !memcmp(a.p, in, len)));
	if (r == MIME7_SAME || r == MIME7_CONVERTED) {
		FUZZ_CHECK(fuzz_fits(a.p, a.n, flags & MIME7_F_7BIT));
		FUZZ_CHECK(fuzz_run(a.p, a.n, flags, &c) == MIME7_SAME);
		FUZZ_CHECK(c.n == a.n && (a.n == 0 || !memcmp(c.p, a.p, a.n)));
	} else {
		FUZZ_CHECK(mime7_why(r)[0] != '\0');
	}
	FUZZ_CHECK(fuzz_run(in, len, flags, &b) == r);
	FUZZ_CHECK(b.n == a.n && (a.n == 0 || !memcmp(b.p, a.p, a.n)));
	if (is_body && r == MIME7_CONVERTED)
		fuzz_round_trip(a.p, a.n, in + hlen, len - hlen);
	free(a.p);
	free(b.p);
	free(c.p);
	free(in);
	return 0;
}
