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
#include <unistd.h>

#include "spool/spool_int.h"
#include "util/crc32.h"
#include "util/log.h"

#define SPOOL_DONE_BATCH 256 /* done records per write */

void
spool_seg_path(const struct spool *sp, uint32_t id, const char *ext, char *buf,
	       size_t size)
{
	snprintf(buf, size, "%s/%08u.%s", sp->dir, id, ext);
}

struct spool_seg *
spool_seg_get(struct spool *sp, uint32_t id)
{
	struct spool_seg *v;

	for (size_t i = 0; i < sp->n_segs; i++)
		if (sp->segs[i].id == id)
			return &sp->segs[i];
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

/* Removes a segment whose recipients are all done (not the current one). */
static void
segment_retire(struct spool *sp, struct spool_seg *seg)
{
	if (seg->id == sp->seg_cur || seg->outstanding > 0)
		return;
	spool_seg_remove(sp, seg);
}

int
spool_seg_next(struct spool *sp)
{
	struct spool_seg *old = spool_seg_get(sp, sp->seg_cur);
	char path[PATH_MAX];
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
	if (old != NULL && old->outstanding == 0)
		segment_retire(sp, old);
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

/*
 * One write for each run of records of the same segment (a delivery
 * batch is one run as a rule), not one per recipient.
 */
void
spool_seg_done_write(struct spool *sp, const struct spool_done_item *items,
		     size_t n)
{
	struct spool_done_rec recs[SPOOL_DONE_BATCH];
	size_t i = 0;

	while (i < n) {
		uint32_t id = items[i].segment;
		struct spool_seg *seg = spool_seg_get(sp, id);
		size_t k = 0;

		for (; i < n && items[i].segment == id && k < SPOOL_DONE_BATCH;
		     i++, k++) {
			recs[k] = (struct spool_done_rec){items[i].qid,
							  items[i].idx, 0};
			recs[k].crc = crc32c(
			    0, &recs[k], offsetof(struct spool_done_rec, crc));
		}
		if (seg == NULL)
			continue;
		if (done_open(sp, seg) < 0 ||
		    write(seg->done_fd, recs, k * sizeof *recs) !=
			(ssize_t)(k * sizeof *recs))
			log_msg(LOG_WARN,
				"ev=spool_done_write_failed "
				"segment=%08u error=%s",
				seg->id, log_q(strerror(errno)));
		seg->is_done_dirty = true;
		seg->outstanding -= k < seg->outstanding ? k : seg->outstanding;
		if (seg->outstanding == 0)
			segment_retire(sp, seg);
	}
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
