/*
 * fuzz_milter.c - libFuzzer target for the milter client's pure part
 * (src/policy/milter_proto.c): the filter's packets and header edits.
 *
 * Input: bytes 0-1 (big-endian) give the length of a message (header +
 * body, clamped to what is there); the rest is a stream of packets as a
 * filter would send them after SMFIC_BODYEOB.
 *
 * Checks:
 *   - milter_packet_parse() never claims more octets than it was given,
 *     and a payload lies inside the packet;
 *   - every field split out lies inside the message, in order, and
 *     milter_field_format() stays within its buffer;
 *   - after any sequence of edits (failed ones included) the render is
 *     the fields' texts then the message from hdr_end on, exactly, and
 *     the body the filter saw is still the tail of the render.
 *
 * The Makefile's fuzz rule links src/proto/ only, so the two files this
 * needs are compiled in here.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/policy/milter_proto.c"
#include "../../src/util/str.c"

#define FUZZ_HEADER 2
#define FUZZ_EDITS_MAX 64

static void
check_fields(const struct milter_hdrs *h)
{
	char buf[4096];

	for (size_t i = 0; i < h->n; i++) {
		const struct milter_field *f = &h->v[i];
		size_t n;

		if (f->len == 0 || f->name_len == 0 || f->name_len >= f->len)
			abort();
		if (f->own == NULL && (f->text < h->data ||
				       f->text + f->len > h->data + h->hdr_end))
			abort();
		n = milter_field_format(f, buf, sizeof buf);
		if (n > sizeof buf)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	size_t mlen, pos, edits = 0, body_len, total;
	struct milter_hdrs h;
	char *msg, *out;
	size_t out_len;

	if (size < FUZZ_HEADER)
		return 0;
	mlen = (size_t)in[0] << 8 | in[1];
	if (mlen > size - FUZZ_HEADER)
		mlen = size - FUZZ_HEADER;
	msg = malloc(mlen + 1);
	if (msg == NULL)
		return 0;
	memcpy(msg, in + FUZZ_HEADER, mlen);
	if (milter_hdrs_split(&h, msg, mlen) != MILTER_PARSE_OK) {
		milter_hdrs_free(&h);
		free(msg);
		return 0;
	}
	if (h.hdr_end > h.body_start || h.body_start > mlen)
		abort();
	check_fields(&h);
	body_len = mlen - h.body_start;
	pos = FUZZ_HEADER + mlen;
	while (pos < size && edits++ < FUZZ_EDITS_MAX) {
		const unsigned char *p;
		size_t plen, used;
		char cmd;

		if (milter_packet_parse(in + pos, size - pos, &cmd, &p, &plen,
					&used) != MILTER_PARSE_OK)
			break;
		if (used > size - pos || p + plen != in + pos + used)
			abort();
		(void)milter_hdrs_edit(&h, cmd, p, plen);
		check_fields(&h);
		pos += used;
	}
	if (milter_hdrs_render(&h, &out, &out_len) == 0) {
		total = mlen - h.hdr_end;
		for (size_t i = 0, at = 0; i < h.n; i++) {
			if (memcmp(out + at, h.v[i].text, h.v[i].len) != 0)
				abort();
			at += h.v[i].len;
			total += h.v[i].len;
		}
		if (out_len != total || out_len < body_len ||
		    memcmp(out + out_len - body_len, msg + h.body_start,
			   body_len) != 0)
			abort();
		free(out);
	}
	milter_hdrs_free(&h);
	free(msg);
	return 0;
}
