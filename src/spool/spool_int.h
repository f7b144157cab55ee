/*
 * spool_int.h - the spool's internals, shared by spool.c (open, close),
 * segment.c (the files), commit.c (the committer) and recover.c.
 *
 * On disk (docs/design/spool.md): DIR/NNNNNNNN.log segments of records
 * (record.h), and beside each a DIR/NNNNNNNN.done file of fixed-size
 * struct spool_done_rec, one per finished recipient.
 */
#ifndef POSTERN_SPOOL_INT_H
#define POSTERN_SPOOL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "spool/record.h"
#include "spool/spool.h"

#define SPOOL_SEGMENT_MAX (64u << 20)
#define SPOOL_DONE_SYNC_SECONDS 1
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

/* A recipient reported done, waiting for the committer to record it. */
struct spool_done_item {
	uint64_t qid;
	uint32_t idx;
	uint32_t segment;
};

struct worker;

struct spool {
	char *dir;
	int dirfd;
	int lockfd;
	struct event_base *base;
	struct worker *committer;
	uint64_t qid_next;

	pthread_mutex_t done_mu; /* guards the done queue (any thread) */
	struct spool_done_item *done_q;
	size_t n_done_q, cap_done_q;
	/* Committer thread only (and recovery before it starts): */
	time_t last_sync; /* of the done records */
	uint32_t seg_cur;
	int seg_fd;
	uint64_t seg_size;    /* where the next record goes */
	uint64_t seg_zeroed;  /* zeros written up to here (prealloc) */
	bool is_prealloc_off; /* zeros could not be written: not again */
	struct spool_seg *segs;
	size_t n_segs;
};

/* segment.c: the segment files, their names, their removal. */

/* "DIR/NNNNNNNN.log" or ".done" into buf. */
void spool_seg_path(const struct spool *sp, uint32_t id, const char *ext,
		    char *buf, size_t size);

/* The bookkeeping entry of segment id, created when missing; NULL on OOM. */
struct spool_seg *spool_seg_get(struct spool *sp, uint32_t id);

/*
 * Closes the segment being written and opens the next (sp->seg_cur + 1),
 * its directory entry made durable; removes the old one if all its
 * recipients are done.  0, or -1 with errno.
 */
int spool_seg_next(struct spool *sp);

/* Removes seg's files and its entry (seg is invalid afterwards). */
void spool_seg_remove(struct spool *sp, struct spool_seg *seg);

/*
 * Appends done records to the .done files of their segments and removes
 * the segments left with nothing outstanding (not the current one).
 */
void spool_seg_done_write(struct spool *sp, const struct spool_done_item *items,
			  size_t n);

/* fdatasyncs the .done files written since the last call. */
void spool_seg_done_sync(struct spool *sp);

/* Closes every segment file (trimming the current one's zeros) and
 * frees the entries. */
void spool_seg_close_all(struct spool *sp);

/* commit.c: the committer thread. */

/* Starts it on sp->base; 0, or -1 (out of memory, no thread). */
int spool_committer_start(struct spool *sp);

/* Commits what is queued, syncs the done records, runs the callbacks
 * of what was committed, and stops.  No-op when not started. */
void spool_committer_stop(struct spool *sp);

/* recover.c */

/*
 * Reads every segment back, truncating torn tails, passes messages with
 * recipients not done to cb and sets sp->seg_cur past the highest id.
 * Returns 0, or -1 with err set.
 */
int spool_recover(struct spool *sp, spool_recover_fn cb, void *arg, char *err,
		  size_t size);

#endif
