/*
 * spool.c - opening and closing the spool: its directory, its lock, the
 * read-back of what was not done (recover.c) and the committer thread
 * (commit.c); queue ids; free space.
 *
 * Called by the server at start and stop, and by the CLI.  Promises: one
 * server per spool directory (flock on DIR/lock); every message not done
 * is handed to the caller before the committer starts; closing commits
 * what was queued and syncs the done records (commit.c) before the files
 * are closed (segment.c).  docs/design/spool.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "spool/spool_int.h"

uint64_t
spool_new_qid(struct spool *sp)
{
	return sp->qid_next++;
}

int
spool_free_space(const struct spool *sp, uint64_t *free_out)
{
	struct statvfs st;

	if (fstatvfs(sp->dirfd, &st) != 0)
		return -1;
	*free_out = (uint64_t)st.f_bavail * st.f_frsize;
	return 0;
}

static int
open_dir(struct spool *sp, const char *dir, char *err, size_t size)
{
	char path[PATH_MAX];

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, size,
			 "cannot create spool directory %s: %s; "
			 "create it or fix [spool] dir",
			 dir, strerror(errno));
		return -1;
	}
	sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof path, "%s/lock", dir);
	sp->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sp->dirfd < 0 || sp->lockfd < 0) {
		snprintf(err, size,
			 "cannot open spool %s: %s; check its "
			 "owner and mode",
			 dir, strerror(errno));
		return -1;
	}
	if (flock(sp->lockfd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, size,
			 "spool %s is in use by another postern; "
			 "stop it or give this one its own [spool] dir",
			 dir);
		return -1;
	}
	return 0;
}

void
spool_stats(const struct spool *sp, struct spool_stats *out)
{
	out->live = sp->stat_live;
	out->disk = sp->stat_disk;
	out->copied = sp->stat_copied;
}

void
spool_fsync_hist(struct spool *sp, struct hist *out)
{
	pthread_mutex_lock(&sp->hist_mu);
	*out = sp->fsync_hist;
	pthread_mutex_unlock(&sp->hist_mu);
}

struct spool *
spool_open(const char *dir, uint64_t segment_size, struct event_base *base,
	   spool_recover_fn recover_cb, void *arg, char *err, size_t size)
{
	struct spool *sp = calloc(1, sizeof *sp);
	struct timespec now;

	if (sp == NULL) {
		snprintf(err, size, "out of memory");
		return NULL;
	}
	sp->dirfd = sp->lockfd = sp->seg_fd = -1;
	sp->dir = strdup(dir);
	sp->base = base;
	sp->segment_size =
	    segment_size ? segment_size : SPOOL_SEGMENT_SIZE_DEFAULT;
	pthread_mutex_init(&sp->done_mu, NULL);
	pthread_mutex_init(&sp->hist_mu, NULL);
	hist_init(&sp->fsync_hist, HIST_FSYNC);
	clock_gettime(CLOCK_REALTIME, &now);
	/* Seconds in the high bits, a random start below: unique across
	 * restarts without state. */
	sp->qid_next = ((uint64_t)now.tv_sec << 24) |
		       (((uint64_t)now.tv_nsec ^ (uint64_t)getpid()) & 0xfffff);
	if (open_dir(sp, dir, err, size) != 0 ||
	    spool_recover(sp, recover_cb, arg, err, size) != 0)
		goto fail;
	spool_seg_stats_update(sp);
	if (spool_committer_start(sp) != 0) {
		snprintf(err, size, "cannot start the spool committer");
		goto fail;
	}
	return sp;
fail:
	spool_close(sp);
	return NULL;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	spool_committer_stop(sp);
	spool_seg_close_all(sp);
	free(sp->done_q);
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	if (sp->lockfd >= 0)
		close(sp->lockfd);
	pthread_mutex_destroy(&sp->done_mu);
	pthread_mutex_destroy(&sp->hist_mu);
	free(sp->dir);
	free(sp);
}
