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
#include "util/hist.h"

#define SPOOL_DONE_SYNC_SECONDS 1
/*
 * The segment being written rolls over at segment_size / SPOOL_ROLL_DIV,
 * and compaction keeps the dead octets of closed segments below the same
 * share (compact.c): a quarter each for those, for the current segment,
 * and for a compaction under way keeps disk use within the queue's own
 * octets + segment_size + the batch being written.
 */
#define SPOOL_ROLL_DIV 4
struct spool_done_rec {
	uint64_t qid;
	uint32_t idx;
	uint32_t crc; /* CRC-32C of the 12 octets before it */
};

/*
 * A message record with recipients not done (the committer's index,
 * keyed by qid): which segment holds it now, where, and which of its
 * recipients are done.  Gone once every recipient is done.
 */
struct spool_live {
	uint64_t qid;
	uint32_t segment;
	uint32_t n_rcpts;
	uint32_t undone; /* recipients not yet done */
	uint64_t off;	 /* of the record in its segment */
	uint64_t len;	 /* of the whole record */
	uint64_t bits;	 /* done recipients when n_rcpts <= 64 */
	uint64_t *big;	 /* else here: n_rcpts bits */
	uint32_t crc;	 /* the record's body_crc: a copy has the same */
	size_t rec_idx;	 /* recovery only: its place in the list */
};

/* The index: open addressing on qid, NULL slots empty. */
struct spool_index {
	struct spool_live **slot;
	size_t cap; /* a power of two, 0 before the first insert */
	size_t n;
};

/* A segment on disk: its bytes, and how many of them are still needed. */
struct spool_seg {
	uint32_t id;
	uint64_t outstanding; /* recipients not yet done */
	uint64_t size;	      /* octets of whole records */
	uint64_t live;	      /* octets of records with a recipient not done */
	uint64_t done_size;   /* octets of its .done file */
	uint64_t closed_ms;   /* when it stopped being written (monotonic
				 milliseconds); 0: before this start */
	int done_fd;	      /* -1 until the first done record */
	bool is_done_dirty;   /* done records written, not yet synced */
	bool is_kept;	      /* its bookkeeping is incomplete (out of
				 memory, a record that did not read back):
				 never removed or compacted until a restart */
};

/* A recipient reported done, waiting for the committer to record it. */
struct spool_done_item {
	uint64_t qid;
	uint32_t idx;
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
	/* The group commit's fdatasync times; guarded by hist_mu (the
	 * committer writes, /metrics reads). */
	pthread_mutex_t hist_mu;
	struct hist fsync_hist;
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
	struct spool_index index;
	uint64_t segment_size; /* the budget: see compact.c */
	/* For spool_stats() on any thread; written by the committer. */
	_Atomic uint64_t stat_live, stat_disk, stat_copied;
};

/* live.c: the index of records not done. */

/* The entry of qid, or NULL. */
struct spool_live *spool_live_find(const struct spool *sp, uint64_t qid);

/* Adds e (which the index then owns); -1 when out of memory. */
int spool_live_add(struct spool *sp, struct spool_live *e);

/*
 * A new entry, not yet in the index, for m's record at off (len octets,
 * body_crc crc) of segment, with m's done recipients marked.  Returns 0
 * with *out NULL when every recipient is done, -1 when out of memory.
 */
int spool_live_for(const struct msg *m, uint32_t segment, uint64_t off,
		   uint64_t len, uint32_t crc, struct spool_live **out);

/* Marks recipient idx done; false when it already was (or is out of
 * range), so a repeated report changes nothing. */
bool spool_live_mark(struct spool_live *e, uint32_t idx);

/* True when recipient idx of e is done. */
bool spool_live_is_done(const struct spool_live *e, uint32_t idx);

/* Frees an entry not in the index. */
void spool_live_free(struct spool_live *e);

/* Removes e from the index and frees it. */
void spool_live_remove(struct spool *sp, struct spool_live *e);

/* Every entry, in no order: fn may not add or remove. */
void spool_live_each(const struct spool *sp,
		     void (*fn)(void *arg, struct spool_live *e), void *arg);

/* Frees every entry and the index. */
void spool_live_free_all(struct spool *sp);

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

/*
 * Appends n done records of qid to seg's .done file (no sync); 0, or -1
 * with errno.
 */
int spool_seg_done_append(struct spool *sp, struct spool_seg *seg, uint64_t qid,
			  const uint32_t *idx, size_t n);

/* Removes seg when nothing in it is outstanding and it is not the one
 * being written. */
void spool_seg_retire(struct spool *sp, struct spool_seg *seg);

/* Recomputes stat_live and stat_disk from the bookkeeping. */
void spool_seg_stats_update(struct spool *sp);

/* Monotonic milliseconds. */
uint64_t spool_now_ms(void);

/* fdatasyncs the .done files written since the last call. */
void spool_seg_done_sync(struct spool *sp);

/* Closes every segment file (trimming the current one's zeros) and
 * frees the entries. */
void spool_seg_close_all(struct spool *sp);

/* compact.c: copying the live records out of mostly-dead segments. */

/*
 * When the dead octets of closed segments exceed the budget, copies the
 * live records of the worst segments into the current one, syncs them
 * and their done records, moves their index entries and removes the
 * emptied segments.  Committer thread (the current segment is open).
 * 0, or an errno value: then nothing moved and nothing was removed.
 */
int spool_compact(struct spool *sp);

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
