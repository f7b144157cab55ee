/*
 * segment.c - the spool's segment files: their names, the next one, the
 * .done records beside each, and their removal once all is done.
 *
 * DIR/NNNNNNNN.log holds records (written by commit.c, read by
 * recover.c); DIR/NNNNNNNN.done the fixed-size done records of its
 * finished recipients.  A segment and its .done file are removed when
 * every recipient in it is done and it is not the one being written.
 *
 * Called by the committer thread, and by recovery and spool_close() when
 * that thread is not running: nothing here locks.  Done records are
 * appended with one write per run of the same segment and synced by
 * spool_seg_done_sync(), at most once a second (commit.c): a crash may
 * forget a few, and recovery then checks the mailbox before delivering
 * again (deliver/maildir.c).  docs/design/spool.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool/spool_int.h"
#include "util/crc32.h"
#include "util/log.h"

#define SPOOL_DONE_BATCH 256 /* done records per write */

uint64_t
spool_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
spool_seg_path(const struct spool *sp, uint32_t id, const char *ext, char *buf,
	       size_t size)
{
	snprintf(buf, size, "%s/%08u.%s", sp->dir, id, ext);
}

static struct spool_seg *
seg_find(struct spool *sp, uint32_t id)
{
	for (size_t i = 0; i < sp->n_segs; i++)
		if (sp->segs[i].id == id)
			return &sp->segs[i];
	return NULL;
}

struct spool_seg *
spool_seg_get(struct spool *sp, uint32_t id)
{
	struct spool_seg *v = seg_find(sp, id);

	if (v != NULL)
		return v;
	v = realloc(sp->segs, (sp->n_segs + 1) * sizeof *v);
	if (v == NULL)
		return NULL;
	sp->segs = v;
	v[sp->n_segs] = (struct spool_seg){.id = id, .done_fd = -1};
	return &v[sp->n_segs++];
}

void
spool_seg_remove(struct spool *sp, struct spool_seg *seg)
{
	char path[PATH_MAX];

	spool_seg_path(sp, seg->id, "log", path, sizeof path);
	unlink(path);
	spool_seg_path(sp, seg->id, "done", path, sizeof path);
	unlink(path);
	if (seg->done_fd >= 0)
		close(seg->done_fd);
	*seg = sp->segs[--sp->n_segs];
}

void
spool_seg_retire(struct spool *sp, struct spool_seg *seg)
{
	if (seg->id == sp->seg_cur || seg->outstanding > 0 || seg->is_kept)
		return;
	spool_seg_remove(sp, seg);
}

int
spool_seg_next(struct spool *sp)
{
	char path[PATH_MAX];
	uint32_t old_id = sp->seg_cur;
	struct spool_seg *old;
	int fd;

	if (sp->seg_fd >= 0)
		close(sp->seg_fd);
	sp->seg_fd = -1;
	sp->seg_cur++;
	spool_seg_path(sp, sp->seg_cur, "log", path, sizeof path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (fsync(sp->dirfd) != 0) {
		int e = errno;
		close(fd);
		unlink(path);
		errno = e;
		return -1;
	}
	sp->seg_fd = fd;
	sp->seg_size = sp->seg_zeroed = 0;
	sp->is_prealloc_off = false;
	if ((old = seg_find(sp, old_id)) != NULL) {
		old->closed_ms = spool_now_ms();
		spool_seg_retire(sp, old);
	}
	return spool_seg_get(sp, sp->seg_cur) ? 0 : (errno = ENOMEM, -1);
}

/* Opens the .done file of seg when it is not open yet; -1 on failure. */
static int
done_open(struct spool *sp, struct spool_seg *seg)
{
	char path[PATH_MAX];

	if (seg->done_fd < 0) {
		spool_seg_path(sp, seg->id, "done", path, sizeof path);
		seg->done_fd =
		    open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	}
	return seg->done_fd;
}

/* Appends n records to seg's .done file; 0 or -1 with errno. */
static int
done_put(struct spool *sp, struct spool_seg *seg,
	 const struct spool_done_rec *recs, size_t n)
{
	ssize_t w;

	if (done_open(sp, seg) < 0)
		return -1;
	w = write(seg->done_fd, recs, n * sizeof *recs);
	if (w != (ssize_t)(n * sizeof *recs)) {
		int e = w >= 0 ? ENOSPC : errno;
		/* A half record would put every later one off the 16-octet
		 * grid, and recovery would drop them all. */
		if (w > 0 && ftruncate(seg->done_fd, (off_t)seg->done_size) != 0)
			log_msg(LOG_ERR,
				"ev=spool_truncate_failed segment=%08u "
				"file=done",
				seg->id);
		errno = e;
		return -1;
	}
	seg->done_size += (uint64_t)w;
	seg->is_done_dirty = true;
	return 0;
}

static void
done_rec(struct spool_done_rec *r, uint64_t qid, uint32_t idx)
{
	*r = (struct spool_done_rec){qid, idx, 0};
	r->crc = crc32c(0, r, offsetof(struct spool_done_rec, crc));
}

int
spool_seg_done_append(struct spool *sp, struct spool_seg *seg, uint64_t qid,
		      const uint32_t *idx, size_t n)
{
	struct spool_done_rec recs[SPOOL_DONE_BATCH];

	while (n > 0) {
		size_t k = n < SPOOL_DONE_BATCH ? n : SPOOL_DONE_BATCH;
		for (size_t i = 0; i < k; i++)
			done_rec(&recs[i], qid, idx[i]);
		if (done_put(sp, seg, recs, k) != 0)
			return -1;
		idx += k;
		n -= k;
	}
	return 0;
}

/* Writes the gathered records of one segment (a run of done items). */
static void
done_flush(struct spool *sp, uint32_t id, const struct spool_done_rec *recs,
	   size_t n)
{
	struct spool_seg *seg;

	if (n == 0 || (seg = spool_seg_get(sp, id)) == NULL)
		return;
	if (done_put(sp, seg, recs, n) != 0)
		log_msg(LOG_WARN,
			"ev=spool_done_write_failed segment=%08u error=%s",
			seg->id, log_q(strerror(errno)));
}

/*
 * Each item is looked up in the index, which knows the segment that
 * holds its message now (compaction may have moved it since the item
 * was queued), and a repeated report is ignored.  One write for each
 * run of records of the same segment (a delivery batch is one run as a
 * rule), not one per recipient.
 */
void
spool_seg_done_write(struct spool *sp, const struct spool_done_item *items,
		     size_t n)
{
	struct spool_done_rec recs[SPOOL_DONE_BATCH];
	uint32_t run = 0;
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		struct spool_live *e = spool_live_find(sp, items[i].qid);
		struct spool_seg *seg;

		if (e == NULL || !spool_live_mark(e, items[i].idx))
			continue;
		if (k == SPOOL_DONE_BATCH || (k > 0 && e->segment != run)) {
			done_flush(sp, run, recs, k);
			k = 0;
		}
		run = e->segment;
		done_rec(&recs[k++], e->qid, items[i].idx);
		seg = spool_seg_get(sp, e->segment);
		if (seg != NULL && seg->outstanding > 0)
			seg->outstanding--;
		if (e->undone == 0) {
			if (seg != NULL)
				seg->live -=
				    e->len < seg->live ? e->len : seg->live;
			spool_live_remove(sp, e);
		}
	}
	done_flush(sp, run, recs, k);
	/* Backwards: spool_seg_remove moves the last entry into the hole. */
	for (size_t i = sp->n_segs; i-- > 0;)
		spool_seg_retire(sp, &sp->segs[i]);
}

void
spool_seg_stats_update(struct spool *sp)
{
	uint64_t live = 0, disk = 0;

	for (size_t i = 0; i < sp->n_segs; i++) {
		live += sp->segs[i].live;
		disk += sp->segs[i].size + sp->segs[i].done_size;
	}
	if (sp->seg_fd >= 0 && sp->seg_zeroed > sp->seg_size)
		disk += sp->seg_zeroed - sp->seg_size;
	sp->stat_live = live;
	sp->stat_disk = disk;
}

void
spool_seg_done_sync(struct spool *sp)
{
	for (size_t i = 0; i < sp->n_segs; i++) {
		if (!sp->segs[i].is_done_dirty || sp->segs[i].done_fd < 0)
			continue;
		fdatasync(sp->segs[i].done_fd);
		sp->segs[i].is_done_dirty = false;
	}
}

void
spool_seg_close_all(struct spool *sp)
{
	for (size_t i = 0; i < sp->n_segs; i++)
		if (sp->segs[i].done_fd >= 0)
			close(sp->segs[i].done_fd);
	free(sp->segs);
	sp->segs = NULL;
	sp->n_segs = 0;
	spool_live_free_all(sp);
	if (sp->seg_fd >= 0) {
		/* The zeros past the last record are not needed any more
		 * (recovery would trim them too). */
		if (sp->seg_zeroed > sp->seg_size &&
		    ftruncate(sp->seg_fd, (off_t)sp->seg_size) != 0)
			log_msg(LOG_WARN, "ev=spool_trim_failed segment=%08u",
				sp->seg_cur);
		close(sp->seg_fd);
		sp->seg_fd = -1;
	}
}
