/*
 * record.c - checking and decoding one segment record (record.h).
 *
 * Pure: the committer (commit.c) fills headers with it, recovery
 * (recover.c) and compaction read records back with it, and the fuzzer
 * feeds it torn and corrupted segments.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "spool/record.h"
#include "util/crc32.h"

void
spool_rec_hdr_fill(struct spool_rec_hdr *h, uint64_t qid, const char *env,
		   size_t env_len, const char *data, size_t data_len)
{
	h->magic = SPOOL_REC_MAGIC;
	h->env_len = (uint32_t)env_len;
	h->data_len = data_len;
	h->qid = qid;
	h->body_crc = crc32c(crc32c(0, env, env_len), data, data_len);
	h->hdr_crc = crc32c(0, h, offsetof(struct spool_rec_hdr, hdr_crc));
}

size_t
spool_rec_check(const char *buf, size_t len, size_t off, struct spool_rec_hdr *h)
{
	size_t room;

	if (off > len || len - off < sizeof *h)
		return 0;
	memcpy(h, buf + off, sizeof *h);
	room = len - off - sizeof *h;
	if (h->magic != SPOOL_REC_MAGIC ||
	    h->hdr_crc !=
		crc32c(0, h, offsetof(struct spool_rec_hdr, hdr_crc)) ||
	    h->env_len > SPOOL_ENVELOPE_MAX || h->env_len > room ||
	    h->data_len > room - h->env_len)
		return 0;
	if (h->body_crc != crc32c(0, buf + off + sizeof *h,
				  h->env_len + (size_t)h->data_len))
		return 0;
	return sizeof *h + h->env_len + (size_t)h->data_len;
}

struct msg *
spool_rec_msg(const char *buf, size_t off, const struct spool_rec_hdr *h)
{
	struct msg *m = msg_new();
	const char *env = buf + off + sizeof *h;

	if (m == NULL)
		return NULL;
	msg_set_qid(m, h->qid);
	m->data = malloc(h->data_len ? (size_t)h->data_len : 1);
	if (m->data == NULL || msg_envelope_parse(m, env, h->env_len) != 0) {
		msg_free(m);
		return NULL;
	}
	memcpy(m->data, env + h->env_len, (size_t)h->data_len);
	m->data_len = (size_t)h->data_len;
	return m;
}

bool
spool_rec_is_zero(const char *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

size_t
spool_rec_scan(const char *buf, size_t len, spool_rec_fn fn, void *arg,
	       bool *is_torn_out)
{
	size_t off = 0, total;
	struct spool_rec_hdr h;

	while ((total = spool_rec_check(buf, len, off, &h)) != 0) {
		fn(arg, buf, off, total, &h);
		off += total;
	}
	if (is_torn_out != NULL)
		/* An empty segment may come as a NULL buffer: no buf + 0. */
		*is_torn_out =
			off < len && !spool_rec_is_zero(buf + off, len - off);
	return off;
}
