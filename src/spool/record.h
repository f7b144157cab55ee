/*
 * record.h - one message record of a spool segment, as bytes: pure
 * functions, no I/O (fuzzed by tests/fuzz/fuzz_segment.c).
 *
 * A segment (DIR/NNNNNNNN.log) is records back to back, little-endian:
 *
 *	struct spool_rec_hdr, envelope (env_len octets), text (data_len)
 *
 * followed, while it is being written, by zeros (space the committer
 * wrote ahead).  docs/design/spool.md.
 */
#ifndef POSTERN_SPOOL_RECORD_H
#define POSTERN_SPOOL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool/msg.h"

#define SPOOL_REC_MAGIC 0x314d5350u /* "PSM1" */
#define SPOOL_ENVELOPE_MAX (1u << 20)

struct spool_rec_hdr {
	uint32_t magic;
	uint32_t env_len;
	uint64_t data_len;
	uint64_t qid;
	uint32_t body_crc; /* CRC-32C of envelope then text */
	uint32_t hdr_crc;  /* CRC-32C of the 28 octets before it */
};

/* Fills h for a record of qid with this envelope and text. */
void spool_rec_hdr_fill(struct spool_rec_hdr *h, uint64_t qid, const char *env,
			size_t env_len, const char *data, size_t data_len);

/*
 * Checks the record at buf[off..len): its header, lengths and CRCs.
 * Returns its total size (header, envelope and text), with the header in
 * *h, or 0 when no whole record starts there.
 */
size_t spool_rec_check(const char *buf, size_t len, size_t off,
		       struct spool_rec_hdr *h);

/*
 * The message of the whole record at buf + off (as spool_rec_check
 * found it): qid, envelope and a copy of the text, every recipient not
 * done.  NULL when its envelope does not parse or memory runs out.
 */
struct msg *spool_rec_msg(const char *buf, size_t off,
			  const struct spool_rec_hdr *h);

/* True when p[0..len) is all zeros: space written ahead, not a record. */
bool spool_rec_is_zero(const char *p, size_t len);

/* Called by spool_rec_scan for each whole record, at buf + off. */
typedef void (*spool_rec_fn)(void *arg, const char *buf, size_t off,
			     size_t total, const struct spool_rec_hdr *h);

/*
 * Walks the records of a segment's bytes buf[0..len) in order, calling
 * fn for each whole one, up to the first that is not (a crash while it
 * was written) or the end.  Returns the offset where the whole records
 * end: the length to truncate the file to.  *is_torn_out (may be NULL)
 * is set when what follows is not only zeros.
 */
size_t spool_rec_scan(const char *buf, size_t len, spool_rec_fn fn, void *arg,
		      bool *is_torn_out);

#endif
