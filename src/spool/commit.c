/*
 * commit.c - the committer thread: group commit of message records.
 *
 * The loop thread queues finished transactions with spool_commit().  The
 * committer takes everything queued, writes the records with one pwritev
 * per IOV batch, calls fdatasync once, and hands the whole batch back to
 * the loop (an activated libevent event), which then sends the 250s.
 * While one fdatasync runs, new transactions pile up for the next: under
 * load many sessions share each sync (Redis's beforeSleep() shape).
 *
 * Failure: a write or sync error truncates the segment back to where the
 * batch began and reports errno to every job of the batch (451/452), so no
 * half record is left that a later append could hide behind; the next
 * batch goes to a fresh segment.
 *
 * Done records (spool_done, any thread) wait in a queue of their own and
 * wake the thread with worker_kick(); it appends them to the segments'
 * .done files (segment.c) before each batch and syncs them at most once
 * a second, and when the spool closes.
 *
 * The thread, its queue and the hand-back are util/worker.c's; the
 * segment files segment.c's.  docs/design/spool.md.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "spool/spool_int.h"
#include "util/log.h"
#include "util/worker.h"

#define SPOOL_IOV_BATCH 1020 /* below IOV_MAX, a multiple of 3 */
#define SPOOL_ZERO_BLOCK (64u << 10)
#define SPOOL_PREALLOC_STEP (1u << 20) /* a multiple of SPOOL_ZERO_BLOCK */

/* A message waiting for its commit; wj first (util/worker.h). */
struct spool_job {
	struct worker_job wj;
	struct msg *m;
	spool_commit_fn cb;
	void *arg;
	int err;
	uint64_t off, len; /* of its record in the current segment */
	uint32_t crc;	   /* the record's body_crc */
};

static struct spool_job *
job_of(struct worker_job *wj)
{
	return (struct spool_job *)wj;
}

/* Writes iov[0..n) at sp->seg_size; -1 with errno on failure. */
static int
write_all(struct spool *sp, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = pwritev(sp->seg_fd, iov, n, (off_t)sp->seg_size);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		sp->seg_size += (uint64_t)w;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/*
 * Makes sure the segment holds written zeros up to at least end, in
 * steps of SPOOL_PREALLOC_STEP.  Records then overwrite blocks that are
 * already allocated, so most fdatasyncs write the data and nothing else
 * (no size or extent update): 4,400 -> 6,800 syncs/s of 40 KiB here.
 * No sync of its own: the batch's fdatasync covers the zeros too.  Only
 * an optimisation: when the zeros cannot be written (a full disk, a file
 * size limit) they are cut off again and the segment goes on without.
 */
static void
prealloc(struct spool *sp, uint64_t end)
{
	static char zeros[SPOOL_ZERO_BLOCK]; /* in .bss, never written */
	struct iovec iov[SPOOL_PREALLOC_STEP / SPOOL_ZERO_BLOCK];
	uint64_t to, roll = sp->segment_size / SPOOL_ROLL_DIV;

	if (end <= sp->seg_zeroed || sp->is_prealloc_off)
		return;
	/* Never past the roll-over point: zeros count as disk in use. */
	to = (end / SPOOL_PREALLOC_STEP + 1) * SPOOL_PREALLOC_STEP;
	if (to > roll)
		to = end > roll ? end : roll;
	while (sp->seg_zeroed < to) {
		uint64_t left = to - sp->seg_zeroed;
		int n = 0;
		ssize_t w;
		for (; left > 0 && n < (int)(sizeof iov / sizeof iov[0]); n++) {
			size_t k = left < sizeof zeros ? (size_t)left
						       : sizeof zeros;
			iov[n] = (struct iovec){zeros, k};
			left -= k;
		}
		w = pwritev(sp->seg_fd, iov, n, (off_t)sp->seg_zeroed);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		sp->seg_zeroed += (uint64_t)w;
	}
	if (sp->seg_zeroed >= to)
		return;
	log_msg(LOG_DEBUG, "ev=spool_prealloc_off segment=%08u error=%s",
		sp->seg_cur, log_q(strerror(errno)));
	sp->is_prealloc_off = true;
	if (ftruncate(sp->seg_fd, (off_t)sp->seg_size) == 0)
		sp->seg_zeroed = sp->seg_size;
}

/*
 * True when the next batch goes to a new segment: none is open, the
 * current one is full (SPOOL_ROLL_DIV), or everything in it is done and
 * it is big enough that removing it is worth a new file.
 */
static bool
must_roll(struct spool *sp)
{
	struct spool_seg *cur;

	if (sp->seg_fd < 0 ||
	    sp->seg_size >= sp->segment_size / SPOOL_ROLL_DIV)
		return true;
	cur = spool_seg_get(sp, sp->seg_cur);
	return cur != NULL && cur->outstanding == 0 &&
	       sp->seg_size >= sp->segment_size / SPOOL_ROLL_DIV / 8;
}

/* Writes and syncs one batch of jobs; returns 0 or an errno value. */
static int
commit_batch(struct spool *sp, struct worker_job *jobs)
{
	struct iovec iov[SPOOL_IOV_BATCH];
	struct spool_rec_hdr hdrs[SPOOL_IOV_BATCH / 3];
	char *envs[SPOOL_IOV_BATCH / 3];
	uint64_t start, bytes = 0;
	int n = 0, err = 0;
	size_t k = 0;

	if (must_roll(sp) && spool_seg_next(sp) != 0)
		return errno;
	/* No bookkeeping entry, no record: an unindexed segment could be
	 * taken for an empty one and removed. */
	if (spool_seg_get(sp, sp->seg_cur) == NULL)
		return ENOMEM;
	start = sp->seg_size;
	for (struct worker_job *wj = jobs; wj && !err; wj = wj->next) {
		struct spool_job *j = job_of(wj);
		size_t env_len;
		envs[k] = msg_envelope_format(j->m, &env_len);
		if (envs[k] == NULL) {
			err = ENOMEM;
			break;
		}
		spool_rec_hdr_fill(&hdrs[k], j->m->qid, envs[k], env_len,
				   j->m->data, j->m->data_len);
		iov[n++] = (struct iovec){&hdrs[k], sizeof hdrs[k]};
		iov[n++] = (struct iovec){envs[k], env_len};
		iov[n++] = (struct iovec){j->m->data, j->m->data_len};
		j->len = sizeof hdrs[k] + env_len + j->m->data_len;
		j->crc = hdrs[k].body_crc;
		j->off = sp->seg_size + bytes;
		bytes += j->len;
		k++;
		if (n == SPOOL_IOV_BATCH || wj->next == NULL) {
			prealloc(sp, sp->seg_size + bytes);
			if (write_all(sp, iov, n) != 0)
				err = errno;
			bytes = 0;
			for (size_t i = 0; i < k; i++)
				free(envs[i]);
			n = 0;
			k = 0;
		}
	}
	for (size_t i = 0; i < k; i++)
		free(envs[i]);
	if (!err) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (fdatasync(sp->seg_fd) != 0)
			err = errno;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		pthread_mutex_lock(&sp->hist_mu);
		hist_observe(&sp->fsync_hist,
			     (double)(t1.tv_sec - t0.tv_sec) +
				 (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		pthread_mutex_unlock(&sp->hist_mu);
	}
	if (err) {
		log_msg(LOG_ERR, "ev=spool_write_failed segment=%08u error=%s",
			sp->seg_cur, log_q(strerror(err)));
		/* Never leave a torn record for a later one to hide behind. */
		if (ftruncate(sp->seg_fd, (off_t)start) != 0 ||
		    fdatasync(sp->seg_fd) != 0)
			log_msg(LOG_ERR,
				"ev=spool_truncate_failed segment=%08u",
				sp->seg_cur);
		sp->seg_size = sp->seg_zeroed = start;
		close(sp->seg_fd);
		sp->seg_fd = -1;
	}
	return err;
}

/* Takes the queued done records and appends them (segment.c). */
static void
write_done(struct spool *sp)
{
	struct spool_done_item *done;
	size_t n_done;

	pthread_mutex_lock(&sp->done_mu);
	done = sp->done_q;
	n_done = sp->n_done_q;
	sp->done_q = NULL;
	sp->n_done_q = sp->cap_done_q = 0;
	pthread_mutex_unlock(&sp->done_mu);
	if (n_done > 0)
		spool_seg_done_write(sp, done, n_done);
	free(done);
}

/*
 * Indexes a committed message (live.c).  When that fails the segment is
 * kept until a restart, which indexes it again: never removed while the
 * message may still need it.  Recipients already done when it was
 * committed (routing dropped them from a bounce) get their done records
 * now, so a restart does not deliver them.
 */
static void
index_add(struct spool *sp, struct spool_seg *seg, const struct spool_job *j)
{
	const struct msg *m = j->m;
	struct spool_live *e;

	seg->size = sp->seg_size;
	for (size_t i = 0; i < m->n_rcpts; i++) {
		uint32_t idx = (uint32_t)i;
		if (m->rcpts[i].is_done &&
		    spool_seg_done_append(sp, seg, m->qid, &idx, 1) != 0)
			log_msg(LOG_WARN,
				"ev=spool_done_write_failed segment=%08u "
				"error=%s",
				seg->id, log_q(strerror(errno)));
	}
	if (spool_live_for(m, seg->id, j->off, j->len, j->crc, &e) != 0) {
		seg->is_kept = true;
		return;
	}
	if (e == NULL)
		return; /* nothing to deliver: dead octets already */
	if (spool_live_add(sp, e) != 0) {
		spool_live_free(e);
		seg->is_kept = true;
		return;
	}
	seg->outstanding += e->undone;
	seg->live += e->len;
}

/*
 * Worker thread: done records, then one group commit of the batch, the
 * 250s released, then a step of compaction (which the next batch waits
 * for, the 250s of this one do not).
 */
static void
committer_run(void *arg, struct worker_job *batch)
{
	struct spool *sp = arg;
	int err;

	write_done(sp);
	err = batch ? commit_batch(sp, batch) : 0;
	for (struct worker_job *wj = batch; wj; wj = wj->next) {
		struct spool_job *j = job_of(wj);
		j->err = err;
		if (!err) {
			struct spool_seg *seg = spool_seg_get(sp, sp->seg_cur);
			if (seg)
				index_add(sp, seg, j);
		}
	}
	spool_seg_stats_update(sp);
	if (time(NULL) - sp->last_sync >= SPOOL_DONE_SYNC_SECONDS) {
		spool_seg_done_sync(sp);
		sp->last_sync = time(NULL);
	}
	if (batch)
		worker_hand_back(sp->committer, batch);
	if (spool_compact(sp) == 0)
		spool_seg_stats_update(sp);
}

/*
 * Worker thread, a second without work: the done records to disk; the
 * current segment removed when everything in it is done (the next
 * commit opens a new one); a step of compaction.
 */
static void
committer_idle(void *arg)
{
	struct spool *sp = arg;
	struct spool_seg *cur = spool_seg_get(sp, sp->seg_cur);

	spool_seg_done_sync(sp);
	sp->last_sync = time(NULL);
	if (sp->seg_fd >= 0 && cur != NULL && cur->outstanding == 0 &&
	    !cur->is_kept && sp->seg_size > 0) {
		close(sp->seg_fd);
		sp->seg_fd = -1;
		sp->seg_size = sp->seg_zeroed = 0;
		spool_seg_remove(sp, cur);
	}
	spool_compact(sp);
	spool_seg_stats_update(sp);
}

static void
committer_exit(void *arg)
{
	spool_seg_done_sync(arg);
}

/* Loop thread: the commit callback of one message. */
static void
committer_done(void *arg, struct worker_job *wj)
{
	struct spool_job *j = job_of(wj);

	(void)arg;
	j->cb(j->arg, j->m, j->err);
	free(j);
}

static const struct worker_ops committer_ops = {
    .run = committer_run,
    .done = committer_done,
    .idle = committer_idle,
    .thread_exit = committer_exit,
    .idle_seconds = SPOOL_DONE_SYNC_SECONDS,
};

int
spool_committer_start(struct spool *sp)
{
	sp->last_sync = time(NULL);
	sp->committer = worker_start(&committer_ops, sp, sp->base);
	return sp->committer ? 0 : -1;
}

void
spool_committer_stop(struct spool *sp)
{
	/* Nothing is requeued: nothing is left. */
	(void)worker_stop(sp->committer);
	sp->committer = NULL;
}

void
spool_commit(struct spool *sp, struct msg *m, spool_commit_fn cb, void *arg)
{
	struct spool_job *j = calloc(1, sizeof *j);

	if (j == NULL) {
		cb(arg, m, ENOMEM);
		return;
	}
	j->m = m;
	j->cb = cb;
	j->arg = arg;
	if (!worker_submit(sp->committer, &j->wj)) {
		free(j);
		cb(arg, m, ESHUTDOWN);
	}
}

/*
 * Only the record that finds the queue empty wakes the committer: while
 * the queue holds records, its kick is pending, or a run that began
 * after it has yet to take the queue (write_done).  A delivery batch
 * that reports many recipients wakes the committer once.
 */
void
spool_done(struct spool *sp, const struct msg *m, size_t idx)
{
	bool is_first;

	pthread_mutex_lock(&sp->done_mu);
	if (sp->n_done_q == sp->cap_done_q) {
		size_t cap = sp->cap_done_q ? sp->cap_done_q * 2 : 64;
		struct spool_done_item *v =
		    realloc(sp->done_q, cap * sizeof *v);
		if (v == NULL) {
			/* Not fatal: recovery checks the mailbox first. */
			pthread_mutex_unlock(&sp->done_mu);
			return;
		}
		sp->done_q = v;
		sp->cap_done_q = cap;
	}
	is_first = sp->n_done_q == 0;
	sp->done_q[sp->n_done_q++] =
	    (struct spool_done_item){m->qid, (uint32_t)idx};
	pthread_mutex_unlock(&sp->done_mu);
	if (is_first)
		worker_kick(sp->committer);
}
