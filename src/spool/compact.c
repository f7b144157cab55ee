/*
 * compact.c - keeping the spool's disk use near what the queue holds.
 *
 * A segment can go only when every recipient in it is done, so one
 * message waiting for a down destination would keep its whole segment,
 * and a spool could fill with mail long delivered.  Compaction copies the
 * records that are still needed ("live") out of such a segment into the
 * one being written, makes the copies and their done records durable,
 * points the index (live.c) at the copies, and then removes the old
 * segment.
 *
 * Which segments (S = [spool] segment_size, R = S / SPOOL_ROLL_DIV):
 *   - the segment being written rolls over at R (commit.c), so it never
 *     holds more than R octets of delivered mail and zeros, plus a batch;
 *   - a closed segment at least half dead, closed for a second, is
 *     compacted: every octet copied frees at least one (measurements in
 *     docs/design/spool.md);
 *   - and whenever the dead octets of all closed segments together pass
 *     R, the deadest closed segment is compacted, however live.
 * Together, with at most one closed segment (<= R + a batch) half copied:
 * disk use <= live octets + S + the batch being written.

 * At most COPY_STEP octets are copied per call, so a 250 waiting behind
 * a compaction waits for a few MiB, not a whole segment; the committer
 * calls again after each batch and every idle second until nothing
 * qualifies.
 *
 * A crash at any point leaves every live message at least once on disk:
 * the old segment is removed only after the copies and their done
 * records are synced, and recovery (recover.c) keeps the copy in the
 * higher segment of a message found twice, with the done records of
 * both.  Committer thread only.  docs/design/spool.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool/spool_int.h"
#include "util/log.h"

#define COPY_STEP (4u << 20)

/* A closed segment at most this live (percent, records and .done file
 * counted) is compacted; bench/compaction.py measures other values
 * (-DSPOOL_COMPACT_LIVE_PCT=25). */
#ifndef SPOOL_COMPACT_LIVE_PCT
#define SPOOL_COMPACT_LIVE_PCT 50
#endif

/* ... once it has been closed this long: mail it holds that is on its
 * way to a Maildir is delivered by then, not copied (bench/compaction.py:
 * a fifth of the copying at 1% deferred).  The budget does not wait. */
#ifndef SPOOL_SETTLE_MS
#define SPOOL_SETTLE_MS 1000
#endif

/* Octets of seg no longer needed: delivered records, its .done file. */
static uint64_t
dead_of(const struct spool_seg *seg)
{
	return (seg->size > seg->live ? seg->size - seg->live : 0) +
	       seg->done_size;
}

/* The closed segment to compact now, or NULL. */
static struct spool_seg *
pick_victim(struct spool *sp)
{
	struct spool_seg *worst = NULL, *half = NULL;
	uint64_t dead_closed = 0, now = spool_now_ms();

	for (size_t i = 0; i < sp->n_segs; i++) {
		struct spool_seg *seg = &sp->segs[i];
		if (seg->id == sp->seg_cur || seg->outstanding == 0 ||
		    seg->is_kept)
			continue;
		dead_closed += dead_of(seg);
		if (worst == NULL || dead_of(seg) > dead_of(worst))
			worst = seg;
		if (seg->live * 100 <=
			(seg->size + seg->done_size) * SPOOL_COMPACT_LIVE_PCT &&
		    now >= seg->closed_ms + SPOOL_SETTLE_MS &&
		    (half == NULL || dead_of(seg) > dead_of(half)))
			half = seg;
	}
	if (half != NULL)
		return half;
	return dead_closed > sp->segment_size / SPOOL_ROLL_DIV ? worst : NULL;
}

struct pick {
	uint32_t id;
	struct spool_live **v;
	size_t n, cap;
	int err;
};

static void
pick_add(void *arg, struct spool_live *e)
{
	struct pick *p = arg;

	if (e->segment != p->id || p->err)
		return;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct spool_live **v =
		    realloc(p->v, cap * sizeof(struct spool_live *));
		if (v == NULL) {
			p->err = ENOMEM;
			return;
		}
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = e;
}

static int
off_cmp(const void *a, const void *b)
{
	const struct spool_live *x = *(struct spool_live *const *)a;
	const struct spool_live *y = *(struct spool_live *const *)b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/*
 * Copies the record of e from from_fd to the end of the current
 * segment; 0, or an errno value: EBADMSG when the record read back is
 * not the one the index expected (then it is left where it is).
 */
static int
copy_record(struct spool *sp, int from_fd, const struct spool_live *e,
	    uint64_t at)
{
	struct spool_rec_hdr h;
	char *buf = malloc(e->len ? (size_t)e->len : 1);
	int err = 0;

	if (buf == NULL)
		return ENOMEM;
	if (pread(from_fd, buf, (size_t)e->len, (off_t)e->off) !=
		(ssize_t)e->len)
		err = errno ? errno : EIO;
	else if (spool_rec_check(buf, (size_t)e->len, 0, &h) != e->len ||
		 h.qid != e->qid)
		err = EBADMSG;
	else if (pwrite(sp->seg_fd, buf, (size_t)e->len, (off_t)at) !=
		 (ssize_t)e->len)
		err = errno ? errno : ENOSPC;
	free(buf);
	return err;
}

/* Writes the done records of e (those done so far) to seg's .done. */
static int
copy_done(struct spool *sp, struct spool_seg *seg, const struct spool_live *e)
{
	uint32_t stack[64], *idx = stack;
	size_t n = 0;
	int r;

	if (e->n_rcpts > 64 && (idx = malloc(e->n_rcpts * sizeof *idx)) == NULL)
		return -1;
	for (uint32_t i = 0; i < e->n_rcpts; i++)
		if (spool_live_is_done(e, i))
			idx[n++] = i;
	r = n ? spool_seg_done_append(sp, seg, e->qid, idx, n) : 0;
	if (idx != stack)
		free(idx);
	return r;
}

/* Copies entries v[0..n) of victim into the current segment, durably. */
static int
copy_all(struct spool *sp, struct spool_seg *victim, struct spool_live **v,
	 size_t n)
{
	char path[PATH_MAX];
	uint64_t start = sp->seg_size, at = start;
	struct spool_seg *cur;
	bool had_done;
	int fd, err = 0;

	spool_seg_path(sp, victim->id, "log", path, sizeof path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno;
	for (size_t i = 0; i < n && !err; i++) {
		errno = 0;
		err = copy_record(sp, fd, v[i], at);
		at += v[i]->len;
	}
	close(fd);
	if (!err && fdatasync(sp->seg_fd) != 0)
		err = errno;
	cur = spool_seg_get(sp, sp->seg_cur);
	if (cur == NULL)
		err = err ? err : ENOMEM;
	had_done = cur != NULL && cur->done_fd >= 0;
	for (size_t i = 0; i < n && !err; i++)
		if (copy_done(sp, cur, v[i]) != 0)
			err = errno ? errno : EIO;
	if (!err && cur->done_fd >= 0 && fdatasync(cur->done_fd) != 0)
		err = errno;
	/* A .done file made just now: its name must last too. */
	if (!err && !had_done && cur->done_fd >= 0 && fsync(sp->dirfd) != 0)
		err = errno;
	if (err) {
		/* Nothing moved: the old segment stays whole and in use.
		 * After a write or sync error the current segment is done
		 * with, as after a failed batch (commit.c). */
		if (ftruncate(sp->seg_fd, (off_t)start) != 0)
			log_msg(LOG_ERR,
				"ev=spool_truncate_failed segment=%08u",
				sp->seg_cur);
		if (sp->seg_zeroed > start)
			sp->seg_zeroed = start;
		if (err != EBADMSG && err != ENOMEM) {
			close(sp->seg_fd);
			sp->seg_fd = -1;
		}
		return err;
	}
	for (size_t i = 0; i < n; i++) {
		struct spool_live *e = v[i];
		victim = spool_seg_get(sp, e->segment);
		victim->outstanding -= e->undone;
		victim->live -= e->len;
		e->segment = sp->seg_cur;
		e->off = sp->seg_size;
		sp->seg_size += e->len;
		cur = spool_seg_get(sp, sp->seg_cur);
		cur->outstanding += e->undone;
		cur->live += e->len;
		cur->size = sp->seg_size;
		sp->stat_copied += e->len;
	}
	if (sp->seg_zeroed < sp->seg_size)
		sp->seg_zeroed = sp->seg_size;
	return 0;
}

int
spool_compact(struct spool *sp)
{
	struct spool_seg *victim = pick_victim(sp);
	struct pick p = {0};
	uint64_t bytes = 0;
	uint32_t id;
	size_t n = 0;
	int err;

	if (victim == NULL)
		return 0;
	if (sp->seg_fd < 0 && spool_seg_next(sp) != 0)
		return errno;
	/* spool_seg_next may have moved the entries: find it again. */
	victim = pick_victim(sp);
	if (victim == NULL)
		return 0;
	id = victim->id;
	p.id = id;
	spool_live_each(sp, pick_add, &p);
	if (p.err) {
		free(p.v);
		return p.err;
	}
	if (p.n == 0) {
		/* Outstanding recipients and no record to copy: the
		 * bookkeeping is off; keep the segment, do not spin. */
		log_msg(LOG_ERR, "ev=spool_compact_nothing segment=%08u", id);
		victim->is_kept = true;
		free(p.v);
		return 0;
	}
	qsort(p.v, p.n, sizeof(struct spool_live *), off_cmp);
	while (n < p.n && (n == 0 || bytes + p.v[n]->len <= COPY_STEP))
		bytes += p.v[n++]->len;
	err = copy_all(sp, victim, p.v, n);
	free(p.v);
	if (err) {
		log_msg(LOG_WARN,
			"ev=spool_compact_failed segment=%08u error=%s", id,
			log_q(strerror(err)));
		/* A record that did not read back as the index said: keep
		 * the segment as it is rather than try again and again. */
		if (err == EBADMSG && (victim = spool_seg_get(sp, id)) != NULL)
			victim->is_kept = true;
		return err;
	}
	log_msg(LOG_INFO,
		"ev=spool_compacted segment=%08u into=%08u records=%zu "
		"octets=%llu",
		id, sp->seg_cur, n, (unsigned long long)bytes);
	victim = spool_seg_get(sp, id);
	if (victim != NULL)
		spool_seg_retire(sp, victim);
	return 0;
}
