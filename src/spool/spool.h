/*
 * spool.h - the durable message log, with group commit.
 *
 * A 250 after DATA is sent only from the commit callback with err == 0:
 * by then the message's record is written to a log segment and
 * fdatasync'd (and the segment's directory entry fsync'd when the segment
 * was created).  One fdatasync covers every message that arrived while
 * the previous one ran (group commit; docs/design/spool.md).
 */
#ifndef POSTERN_SPOOL_H
#define POSTERN_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "spool/msg.h"

struct spool;

/* Called on the loop thread: m is durable when err is 0, else errno. */
typedef void (*spool_commit_fn)(void *arg, struct msg *m, int err);

/* Called at open for each message with recipients not yet done. */
typedef void (*spool_recover_fn)(void *arg, struct msg *m_take);

/* [spool] segment_size when not set: disk use stays within live + 64 MiB. */
#define SPOOL_SEGMENT_SIZE_DEFAULT (64u << 20)

/*
 * Opens (creating) the spool directory, takes its lock, reads back every
 * message not yet done (passed to recover_cb, which takes it), and starts
 * the committer thread reporting on base.  segment_size (0: the default)
 * bounds the octets on disk beyond what the queue needs (compact.c).
 * NULL and a message naming the fix in err on failure.
 */
struct spool *spool_open(const char *dir, uint64_t segment_size,
			 struct event_base *base, spool_recover_fn recover_cb,
			 void *arg, char *err, size_t size);

/* Octets of the spool: of records still needed, on disk in all. */
struct spool_stats {
	uint64_t live;
	uint64_t disk;
	uint64_t copied; /* by compaction since the spool was opened */
};

/* The figures as of the committer's last run.  Any thread. */
void spool_stats(const struct spool *sp, struct spool_stats *out);

/*
 * Stops the committer after it has written what it was given and synced
 * the done records; spool_close(NULL) is a no-op.
 */
void spool_close(struct spool *sp);

/* A new queue id, unique in this spool (loop thread). */
uint64_t spool_new_qid(struct spool *sp);

/*
 * Queues m for the next group commit; cb runs on the loop thread with m
 * afterwards, the spool no longer holding it.  Loop thread only.
 */
void spool_commit(struct spool *sp, struct msg *m, spool_commit_fn cb,
		  void *arg);

/*
 * Records that recipient idx of m is finished (delivered or bounced).  Any
 * thread.  The record reaches the disk with the next commit or within a
 * second; a segment whose recipients are all done is removed.
 */
void spool_done(struct spool *sp, const struct msg *m, size_t idx);

/*
 * Free octets on the spool's file system for unprivileged writers; -1
 * with errno when statvfs fails.
 */
int spool_free_space(const struct spool *sp, uint64_t *free_out);

/* A copy of the group commit's fdatasync-time histogram.  Any thread. */
struct hist;
void spool_fsync_hist(struct spool *sp, struct hist *out);

#endif
