/*
 * test_mime7.c - message text made fit for the next hop
 * (src/proto/mime7.c): long lines folded or encoded, 8-bit parts made
 * quoted-printable for a peer without 8BITMIME, what cannot be converted
 * refused.
 *
 * A table of input -> result and exact output, then properties over
 * generated messages: no line over 998 octets, no 8-bit octet for a
 * 7-bit peer, a second conversion changes nothing, the same output
 * whichever way put() is called, and quoted-printable that decodes to
 * the octets it encoded.
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

#include "proto/mime7.h"

#define T7 MIME7_F_7BIT
#define OUT_MAX (1 << 20)

struct sink {
	char *p;
	size_t n;
	size_t calls;
};

static void
sink_put(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	assert_true(s->n + n <= OUT_MAX);
	memcpy(s->p + s->n, p, n);
	s->n += n;
	s->calls++;
}

static enum mime7_result
run(const char *in, size_t len, unsigned flags, struct sink *s)
{
	s->n = 0;
	s->calls = 0;
	return mime7_convert(in, len, flags, sink_put, s);
}

struct m7_case {
	const char *name;
	const char *in;
	unsigned flags;
	enum mime7_result result;
	const char *out; /* NULL: the input (MIME7_SAME) or not looked at */
};

#define HDR "From: a@example.test\r\nSubject: s\r\n"
#define MIMEHDR HDR "MIME-Version: 1.0\r\n"

static const struct m7_case cases[] = {
	/* Nothing to do: the text goes as it is. */
	{"ascii_goes_as_it_is", HDR "\r\nhello\r\n", T7, MIME7_SAME, NULL},
	{"8bit_to_an_8bitmime_peer_goes_as_it_is",
	 HDR "\r\nGr\xc3\xbc\xc3\x9f" "e\r\n", 0, MIME7_SAME, NULL},
	{"8bit_header_to_an_8bitmime_peer_goes_as_it_is",
	 "Subject: K\xc3\xb6ln\r\n\r\nx\r\n", 0, MIME7_SAME, NULL},
	{"no_line_end_at_all", "Subject: x", T7, MIME7_SAME, NULL},

	/* A message without MIME becomes text/plain quoted-printable. */
	{"8bit_utf8_without_mime_becomes_mime",
	 HDR "\r\nGr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln\r\n", T7,
	 MIME7_CONVERTED,
	 HDR "MIME-Version: 1.0\r\n"
	     "Content-Type: text/plain; charset=utf-8\r\n"
	     "Content-Transfer-Encoding: quoted-printable\r\n"
	     "\r\nGr=C3=BC=C3=9Fe aus K=C3=B6ln\r\n"},
	{"8bit_latin1_without_mime_is_unknown_8bit",
	 HDR "\r\nK\xf6ln\r\n", T7, MIME7_CONVERTED,
	 HDR "MIME-Version: 1.0\r\n"
	     "Content-Type: text/plain; charset=unknown-8bit\r\n"
	     "Content-Transfer-Encoding: quoted-printable\r\n"
	     "\r\nK=F6ln\r\n"},
	{"declared_8bit_part_is_relabelled",
	 MIMEHDR "Content-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa4=\r\n",
	 T7, MIME7_CONVERTED,
	 MIMEHDR "Content-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n"
		 "\r\n=C3=A4=3D\r\n"},
	{"folded_cte_field_is_replaced_whole",
	 MIMEHDR "Content-Transfer-Encoding:\r\n 8bit\r\nX-After: y\r\n\r\n"
		 "\xc3\xa4\r\n",
	 T7, MIME7_CONVERTED,
	 MIMEHDR "X-After: y\r\n"
		 "Content-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n"
		 "\r\n=C3=A4\r\n"},
	{"blanks_at_a_line_end_are_encoded", HDR "\r\n\xc3\xa4 \r\nb\t\r\n",
	 T7, MIME7_CONVERTED,
	 HDR "MIME-Version: 1.0\r\n"
	     "Content-Type: text/plain; charset=utf-8\r\n"
	     "Content-Transfer-Encoding: quoted-printable\r\n"
	     "\r\n=C3=A4=20\r\nb=09\r\n"},
	{"bare_lf_lines_become_crlf_when_encoded", HDR "\r\n\xc3\xa4\nb\n",
	 T7, MIME7_CONVERTED,
	 HDR "MIME-Version: 1.0\r\n"
	     "Content-Type: text/plain; charset=utf-8\r\n"
	     "Content-Transfer-Encoding: quoted-printable\r\n"
	     "\r\n=C3=A4\r\nb\r\n"},
	{"no_blank_line_gets_one", "Subject: s\r\n\xc3\xa4\r\n", T7,
	 MIME7_CONVERTED,
	 "Subject: s\r\nMIME-Version: 1.0\r\n"
	 "Content-Type: text/plain; charset=utf-8\r\n"
	 "Content-Transfer-Encoding: quoted-printable\r\n"
	 "\r\n=C3=A4\r\n"},

	/* What cannot be converted. */
	{"8bit_header_to_a_7bit_peer", "Subject: K\xc3\xb6ln\r\n\r\nx\r\n", T7,
	 MIME7_ERR_HEADER, NULL},
	{"8bit_part_header_to_a_7bit_peer",
	 MIMEHDR "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
		 "Content-Disposition: attachment; filename=\xc3\xa4.txt\r\n"
		 "\r\nx\r\n--B--\r\n",
	 T7, MIME7_ERR_HEADER, NULL},
	{"unknown_encoding",
	 MIMEHDR "Content-Transfer-Encoding: x-uuencode\r\n\r\n\xc3\xa4\r\n",
	 T7, MIME7_ERR_ENCODING, NULL},
	{"multipart_without_boundary",
	 MIMEHDR "Content-Type: multipart/mixed\r\n\r\n\xc3\xa4\r\n", T7,
	 MIME7_ERR_STRUCTURE, NULL},
	{"multipart_whose_boundary_never_comes",
	 MIMEHDR "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
		 "--C\r\n\r\n\xc3\xa4\r\n",
	 T7, MIME7_ERR_STRUCTURE, NULL},
	{"multipart_in_base64",
	 MIMEHDR "Content-Type: multipart/mixed; boundary=B\r\n"
		 "Content-Transfer-Encoding: base64\r\n\r\n--B\r\n\r\n"
		 "\xc3\xa4\r\n--B--\r\n",
	 T7, MIME7_ERR_STRUCTURE, NULL},
	{"message_partial",
	 MIMEHDR "Content-Type: message/partial; id=x; number=1\r\n\r\n"
		 "\xc3\xa4\r\n",
	 T7, MIME7_ERR_STRUCTURE, NULL},

	/* Multipart: only the part that needs it changes. */
	{"only_the_8bit_part_changes",
	 MIMEHDR "Content-Type: multipart/alternative;\r\n"
		 "\tboundary=\"=_b 1\"\r\n\r\npreamble\r\n"
		 "--=_b 1\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
		 "--=_b 1\r\nContent-Type: text/html; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: 8bit\r\n\r\n<p>\xc3\xa4</p>\r\n"
		 "--=_b 1--  \r\nepilogue\r\n",
	 T7, MIME7_CONVERTED,
	 MIMEHDR "Content-Type: multipart/alternative;\r\n"
		 "\tboundary=\"=_b 1\"\r\n\r\npreamble\r\n"
		 "--=_b 1\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
		 "--=_b 1\r\nContent-Type: text/html; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "<p>=C3=A4</p>\r\n"
		 "--=_b 1--  \r\nepilogue\r\n"},
	{"boundary_prefix_lines_are_content",
	 MIMEHDR "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
		 "--B\r\n\r\n--Bx \xc3\xa4\r\n--B--\r\n",
	 T7, MIME7_CONVERTED,
	 MIMEHDR "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
		 "--B\r\nContent-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "--Bx =C3=A4\r\n--B--\r\n"},
	{"type_with_comments_and_odd_case",
	 MIMEHDR "CONTENT-TYPE: Multipart/Mixed (a comment) ;\r\n"
		 " BOUNDARY = \"B\" (another)\r\n\r\n"
		 "--B\r\n\r\n\xc3\xa4\r\n--B--\r\n",
	 T7, MIME7_CONVERTED,
	 MIMEHDR "CONTENT-TYPE: Multipart/Mixed (a comment) ;\r\n"
		 " BOUNDARY = \"B\" (another)\r\n\r\n"
		 "--B\r\nContent-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "=C3=A4\r\n--B--\r\n"},
	{"8bit_multipart_label_becomes_7bit",
	 MIMEHDR "Content-Type: multipart/mixed; boundary=B\r\n"
		 "Content-Transfer-Encoding: 8bit\r\n\r\n"
		 "--B\r\n\r\n\xc3\xa4\r\n--B--\r\n",
	 T7, MIME7_CONVERTED,
	 MIMEHDR "Content-Type: multipart/mixed; boundary=B\r\n"
		 "Content-Transfer-Encoding: 7bit\r\n\r\n"
		 "--B\r\nContent-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "=C3=A4\r\n--B--\r\n"},
	{"8bit_preamble_and_epilogue_become_question_marks",
	 MIMEHDR "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
		 "\xc3\xa4\r\n--B\r\n\r\nx\r\n--B--\r\n\xff\r\n",
	 T7, MIME7_CONVERTED,
	 MIMEHDR "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
		 "??\r\n--B\r\n\r\nx\r\n--B--\r\n?\r\n"},
	{"message_rfc822_is_converted_inside",
	 MIMEHDR "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
		 "--B\r\nContent-Type: message/rfc822\r\n"
		 "Content-Transfer-Encoding: 8bit\r\n\r\n"
		 "Subject: inner\r\n\r\n\xc3\xa4\r\n--B--\r\n",
	 T7, MIME7_CONVERTED,
	 MIMEHDR "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
		 "--B\r\nContent-Type: message/rfc822\r\n"
		 "Content-Transfer-Encoding: 7bit\r\n\r\n"
		 "Subject: inner\r\nMIME-Version: 1.0\r\n"
		 "Content-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "=C3=A4\r\n--B--\r\n"},
	{"digest_parts_are_messages",
	 MIMEHDR "Content-Type: multipart/digest; boundary=B\r\n\r\n"
		 "--B\r\n\r\nSubject: in\r\n\r\n\xc3\xa4\r\n--B--\r\n",
	 T7, MIME7_CONVERTED,
	 MIMEHDR "Content-Type: multipart/digest; boundary=B\r\n\r\n"
		 "--B\r\n\r\nSubject: in\r\nMIME-Version: 1.0\r\n"
		 "Content-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "=C3=A4\r\n--B--\r\n"},
	{"multipart_without_mime_version_gets_one",
	 HDR "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
	     "--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	     "\xc3\xa4\r\n--B--\r\n",
	 T7, MIME7_CONVERTED,
	 HDR "Content-Type: multipart/mixed; boundary=B\r\n"
	     "MIME-Version: 1.0\r\n\r\n"
	     "--B\r\nContent-Type: text/plain; charset=utf-8\r\n"
	     "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	     "=C3=A4\r\n--B--\r\n"},
	{"unclosed_multipart_converts_its_last_part",
	 MIMEHDR "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
		 "--B\r\n\r\n\xc3\xa4\r\n",
	 T7, MIME7_CONVERTED,
	 MIMEHDR "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
		 "--B\r\nContent-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "=C3=A4\r\n"},

	/* Parts already encoded are repaired in their encoding. */
	{"quoted_printable_with_8bit_and_a_stray_equals",
	 MIMEHDR "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "a=3D\xc3\xa4 =zz b=  \r\nc=\r\n",
	 T7, MIME7_CONVERTED,
	 MIMEHDR "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "a=3D=C3=A4 =3Dzz b=\r\nc=\r\n"},
	{"base64_with_8bit_noise_is_wrapped_again",
	 MIMEHDR "Content-Transfer-Encoding: base64\r\n\r\n"
		 "QUJD\xff REVG\r\n",
	 T7, MIME7_CONVERTED,
	 MIMEHDR "Content-Transfer-Encoding: base64\r\n\r\n"
		 "QUJDREVG\r\n"},
};

static void
test_mime7_cases(void **state)
{
	static char out[OUT_MAX];
	struct sink s = {out, 0, 0};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct m7_case *c = &cases[i];
		const char *want = c->out ? c->out : c->in;
		enum mime7_result r;

		print_message("case %s\n", c->name);
		r = run(c->in, strlen(c->in), c->flags, &s);
		assert_int_equal(r, c->result);
		assert_int_equal(mime7_is_needed(c->in, strlen(c->in),
						 c->flags),
				 r != MIME7_SAME);
		if (r > MIME7_CONVERTED) {
			assert_string_not_equal(mime7_why(r), "");
			continue;
		}
		s.p[s.n] = '\0';
		assert_string_equal(s.p, want);
	}
}

/* The longest line of p[0..n), line ends not counted. */
static size_t
longest_line(const char *p, size_t n)
{
	size_t max = 0, col = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			col -= col > 0 && p[i - 1] == '\r';
			max = col > max ? col : max;
			col = 0;
		} else {
			col++;
		}
	}
	return col > max ? col : max;
}

static bool
has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

/* A line of exactly 998 octets may go; 999 may not (RFC 5321
 * 4.5.3.1.6), in the header and in the body. */
static void
test_mime7_998_is_the_limit(void **state)
{
	static char in[4096], out[OUT_MAX];
	struct sink s = {out, 0, 0};
	size_t n;

	(void)state;
	for (size_t len = 997; len <= 1000; len++) {
		n = (size_t)snprintf(in, sizeof in, "Subject: x\r\n\r\n");
		memset(in + n, 'a', len);
		n += len;
		memcpy(in + n, "\r\n", 2);
		n += 2;
		assert_int_equal(run(in, n, 0, &s),
				 len > 998 ? MIME7_CONVERTED : MIME7_SAME);
		assert_true(longest_line(s.p, s.n) <= 998);
		/* A long line with no line end after it counts too. */
		assert_int_equal(run(in, n - 2, 0, &s),
				 len > 998 ? MIME7_CONVERTED : MIME7_SAME);

		n = (size_t)snprintf(in, sizeof in, "X-A: ");
		memset(in + n, 'b', len - 5);
		n += len - 5;
		memcpy(in + n, "\r\n\r\nbody\r\n", 10);
		n += 10;
		assert_int_equal(run(in, n, 0, &s),
				 len > 998 ? MIME7_CONVERTED : MIME7_SAME);
		assert_true(longest_line(s.p, s.n) <= 998);
	}
}

/* A long ASCII line is quoted-printable in lines of 76, soft breaks at
 * the ends, us-ascii; a '-' after a soft break is =2D, so a line can
 * never turn into "--boundary". */
static void
test_mime7_long_body_line(void **state)
{
	static char in[8192], out[OUT_MAX];
	struct sink s = {out, 0, 0};
	size_t n = (size_t)snprintf(in, sizeof in, "Subject: x\r\n\r\n");
	const char *body;

	(void)state;
	memset(in + n, 'a', 74);
	n += 74;
	memcpy(in + n, "--B", 3);
	n += 3;
	memset(in + n, 'c', 1000);
	n += 1000;
	memcpy(in + n, "\r\n", 2);
	n += 2;
	assert_int_equal(run(in, n, 0, &s), MIME7_CONVERTED);
	s.p[s.n] = '\0';
	assert_non_null(strstr(s.p, "charset=us-ascii\r\n"));
	body = strstr(s.p, "\r\n\r\n") + 4;
	/* 74 a, the first '-' (75), the soft break (76). */
	assert_memory_equal(body + 74, "-=\r\n=2DB", 8);
	assert_int_equal(longest_line(s.p, s.n), 76);
	assert_null(strstr(s.p, "\n--B"));
}

/* Header lines over 998 are folded before a blank; the fields unfold
 * to what they were. */
static void
test_mime7_header_folding(void **state)
{
	static char in[16384], out[OUT_MAX], unf[OUT_MAX];
	struct sink s = {out, 0, 0};
	size_t n = 0, u = 0;

	(void)state;
	n += (size_t)snprintf(in + n, sizeof in - n, "To: ");
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(in + n, sizeof in - n,
				      "%su%d@example.test", i ? ", " : "", i);
	n += (size_t)snprintf(in + n, sizeof in - n, "\r\n\r\nbody\r\n");
	assert_int_equal(run(in, n, 0, &s), MIME7_CONVERTED);
	assert_true(longest_line(s.p, s.n) <= 998);
	/* Unfolding (RFC 5322 2.2.3) removes each CRLF before a blank. */
	for (size_t i = 0; i < s.n; i++) {
		if (i + 2 < s.n && s.p[i] == '\r' && s.p[i + 1] == '\n' &&
		    s.p[i + 2] == ' ') {
			i++;
			continue;
		}
		unf[u++] = s.p[i];
	}
	assert_int_equal(u, n);
	assert_memory_equal(unf, in, n);
}

/* A header line with no blank to fold at: after a ',' (a space added),
 * else at the limit; never a line of blanks only. */
static void
test_mime7_header_without_blanks(void **state)
{
	static char in[8192], out[OUT_MAX];
	struct sink s = {out, 0, 0};
	size_t n = (size_t)snprintf(in, sizeof in, "X-Ids:");

	(void)state;
	for (int i = 0; i < 400; i++)
		n += (size_t)snprintf(in + n, sizeof in - n, "%sid%d",
				      i ? "," : "", i);
	n += (size_t)snprintf(in + n, sizeof in - n, "\r\n\r\nbody\r\n");
	assert_int_equal(run(in, n, 0, &s), MIME7_CONVERTED);
	assert_true(longest_line(s.p, s.n) <= 998);
	s.p[s.n] = '\0';
	assert_non_null(strstr(s.p, ",\r\n id"));

	n = (size_t)snprintf(in, sizeof in, "X-Blob: ");
	memset(in + n, 'q', 2500);
	n += 2500;
	memset(in + n, ' ', 1500);
	n += 1500;
	n += (size_t)snprintf(in + n, sizeof in - n, "end\r\n\r\nbody\r\n");
	assert_int_equal(run(in, n, 0, &s), MIME7_CONVERTED);
	assert_true(longest_line(s.p, s.n) <= 998);
	for (size_t i = 0; i + 2 < s.n; i++)
		if (s.p[i] == '\n') {
			size_t k = i + 1;
			while (k < s.n && s.p[k] == ' ')
				k++;
			assert_true(k == i + 1 || s.p[k] != '\r');
		}
}

/* Deeper than MIME7_DEPTH_MAX: refused when something there needs a
 * change, passed as it is when nothing does. */
static void
test_mime7_depth(void **state)
{
	static char in[65536], out[OUT_MAX];
	struct sink s = {out, 0, 0};
	size_t n = 0;
	int levels = MIME7_DEPTH_MAX + 8;

	(void)state;
	n += (size_t)snprintf(in + n, sizeof in - n, "Subject: deep\r\n");
	for (int i = 0; i < levels; i++)
		n += (size_t)snprintf(in + n, sizeof in - n,
				      "Content-Type: multipart/mixed; "
				      "boundary=b%d\r\n\r\n--b%d\r\n",
				      i, i);
	n += (size_t)snprintf(in + n, sizeof in - n, "\r\nplain\r\n");
	assert_int_equal(run(in, n, T7, &s), MIME7_SAME);
	assert_int_equal(s.n, n);
	n -= strlen("plain\r\n");
	n += (size_t)snprintf(in + n, sizeof in - n, "\xc3\xa4\r\n");
	assert_int_equal(run(in, n, T7, &s), MIME7_ERR_DEPTH);
}

/* A small quoted-printable decoder (RFC 2045 6.7), line ends CRLF. */
static size_t
qp_decode(const char *p, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '=' && i + 2 < n && p[i + 1] == '\r' &&
		    p[i + 2] == '\n') {
			i += 2;
		} else if (p[i] == '=' && i + 2 < n) {
			unsigned v;
			char h[3] = {p[i + 1], p[i + 2], 0};
			assert_int_equal(sscanf(h, "%2X", &v), 1);
			out[o++] = (char)v;
			i += 2;
		} else {
			assert_true(p[i] != '=');
			out[o++] = p[i];
		}
	}
	return o;
}

static uint32_t
xorshift(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/*
 * Generated bodies of lines of random octets (any octet but LF; CR only
 * before LF) of random lengths up to 3000: the body quoted-printable
 * decodes to the input; no line over 76 in it, no 8-bit octet; the
 * output converted again is the same; put() pieces do not matter.
 */
static void
test_mime7_qp_round_trip(void **state)
{
	static char in[65536], out[OUT_MAX], again[OUT_MAX], dec[OUT_MAX];
	struct sink s = {out, 0, 0}, s2 = {again, 0, 0};
	uint32_t seed = 12345;

	(void)state;
	for (int round = 0; round < 300; round++) {
		size_t n = (size_t)snprintf(in, sizeof in, "Subject: r\r\n\r\n");
		size_t start = n, lines = xorshift(&seed) % 6 + 1;
		const char *body;
		size_t dn;
		enum mime7_result r;

		for (size_t l = 0; l < lines; l++) {
			size_t len = xorshift(&seed) % 4 == 0
					     ? xorshift(&seed) % 3000
					     : xorshift(&seed) % 100;
			for (size_t k = 0; k < len; k++) {
				char c = (char)(xorshift(&seed) % 256);
				if (xorshift(&seed) % 3)
					c = "ab -.=\t \xc3"[xorshift(&seed) % 10];
				in[n++] = c == '\n' || c == '\r' ? 'x' : c;
			}
			memcpy(in + n, "\r\n", 2);
			n += 2;
		}
		r = run(in, n, T7, &s);
		if (!has_8bit(in, n) && longest_line(in, n) <= 998) {
			assert_int_equal(r, MIME7_SAME);
			continue;
		}
		assert_int_equal(r, MIME7_CONVERTED);
		assert_false(has_8bit(s.p, s.n));
		assert_true(longest_line(s.p, s.n) <= 998);
		body = memmem(s.p, s.n, "\r\n\r\n", 4);
		assert_non_null(body);
		body += 4;
		assert_true(longest_line(body, s.n - (size_t)(body - s.p)) <=
			    76);
		dn = qp_decode(body, s.n - (size_t)(body - s.p), dec);
		assert_int_equal(dn, n - start);
		assert_memory_equal(dec, in + start, dn);
		assert_int_equal(run(s.p, s.n, T7, &s2), MIME7_SAME);
		assert_int_equal(s2.n, s.n);
		assert_memory_equal(s2.p, s.p, s.n);
	}
}

/* The 8BITMIME peer gets 8-bit bodies as they are; only a long line
 * makes a part quoted-printable, and then its 8-bit octets too. */
static void
test_mime7_8bitmime_peer_long_line_only(void **state)
{
	static char in[8192], out[OUT_MAX];
	struct sink s = {out, 0, 0};
	size_t n = (size_t)snprintf(
	    in, sizeof in,
	    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
	    "boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\n\r\n\xc3\xa4\r\n--B\r\nContent-Type: "
	    "text/html\r\n\r\n");

	(void)state;
	memset(in + n, 'h', 1200);
	n += 1200;
	n += (size_t)snprintf(in + n, sizeof in - n, "\xc3\xa4\r\n--B--\r\n");
	assert_int_equal(run(in, n, 0, &s), MIME7_CONVERTED);
	s.p[s.n] = '\0';
	/* The first part as it was, 8-bit and all. */
	assert_non_null(strstr(s.p, "charset=utf-8\r\n\r\n\xc3\xa4\r\n--B\r\n"));
	assert_non_null(strstr(s.p, "Content-Type: text/html\r\n"
				    "Content-Transfer-Encoding: "
				    "quoted-printable\r\n\r\nhhhh"));
	assert_non_null(strstr(s.p, "hhh=\r\n=C3=A4\r\n--B--\r\n"));
	assert_true(longest_line(s.p, s.n) <= 76);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mime7_cases),
		cmocka_unit_test(test_mime7_998_is_the_limit),
		cmocka_unit_test(test_mime7_long_body_line),
		cmocka_unit_test(test_mime7_header_folding),
		cmocka_unit_test(test_mime7_header_without_blanks),
		cmocka_unit_test(test_mime7_depth),
		cmocka_unit_test(test_mime7_qp_round_trip),
		cmocka_unit_test(test_mime7_8bitmime_peer_long_line_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
