/*
 * spool_int.h - the spool's internals, shared by commit.c and recover.c.
 *
 * On disk (docs/design/spool.md): DIR/NNNNNNNN.log segments of records
 *
 *	struct spool_rec_hdr, envelope (env_len octets), text (data_len)
 *
 * little-endian, and beside each a DIR/NNNNNNNN.done file of fixed-size
 * struct spool_done_rec, one per finished recipient.
 */
#ifndef POSTERN_SPOOL_INT_H
#define POSTERN_SPOOL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "spool/spool.h"

#define SPOOL_REC_MAGIC 0x314d5350u /* "PSM1" */
#define SPOOL_SEGMENT_MAX (64u << 20)
#define SPOOL_DONE_SYNC_SECONDS 1
#define SPOOL_ENVELOPE_MAX (1u << 20)

struct spool_rec_hdr {
	uint32_t magic;
	uint32_t env_len;
	uint64_t data_len;
	uint64_t qid;
	uint32_t body_crc; /* CRC-32C of envelope then text */
	uint32_t hdr_crc;  /* CRC-32C of the 28 octets before it */
};

struct spool_done_rec {
	uint64_t qid;
	uint32_t idx;
	uint32_t crc; /* CRC-32C of the 12 octets before it */
};

/* A segment that still holds recipients not done. */
struct spool_seg {
	uint32_t id;
	uint64_t outstanding; /* recipients not yet done */
	int done_fd;	      /* -1 until the first done record */
	bool is_done_dirty;   /* done records written, not yet synced */
};

struct spool_job {
	struct msg *m;
	spool_commit_fn cb;
	void *arg;
	int err;
	struct spool_job *next;
};

struct spool_done_item {
	uint64_t qid;
	uint32_t idx;
	uint32_t segment;
};

struct spool {
	char *dir;
	int dirfd;
	int lockfd;
	struct event_base *base;
	struct event *ev_complete;
	pthread_t thread;
	bool has_thread;
	uint64_t qid_next;

	pthread_mutex_t mu; /* guards everything below up to the next line */
	pthread_cond_t cv;
	bool is_stopping;
	struct spool_job *pending, **pending_tail;
	struct spool_job *completed, **completed_tail;
	struct spool_done_item *done_q;
	size_t n_done_q, cap_done_q;
	/* Committer thread only: */
	uint32_t seg_cur;
	int seg_fd;
	uint64_t seg_size;   /* where the next record goes */
	uint64_t seg_zeroed; /* zeros written up to here (prealloc) */
	bool is_prealloc_off; /* zeros could not be written: not again */
	struct spool_seg *segs;
	size_t n_segs;
};

/* "DIR/NNNNNNNN.log" or ".done" into buf. */
void spool_seg_path(const struct spool *sp, uint32_t id, const char *ext,
		    char *buf, size_t size);

/* The bookkeeping entry of segment id, created when missing; NULL on OOM. */
struct spool_seg *spool_seg_get(struct spool *sp, uint32_t id);

/*
 * Reads every segment back, truncating torn tails, passes messages with
 * recipients not done to cb and sets sp->seg_cur past the highest id.
 * Returns 0, or -1 with err set.
 */
int spool_recover(struct spool *sp, spool_recover_fn cb, void *arg,
		  char *err, size_t size);

#endif
