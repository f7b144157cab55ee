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
 * Done records (spool_done) are appended to the segment's .done file and
 * synced at most once a second: a crash may forget a few, and recovery
 * then checks the mailbox before delivering again (deliver/maildir.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "spool/spool_int.h"
#include "util/crc32.h"
#include "util/log.h"

#define SPOOL_IOV_BATCH 1020 /* below IOV_MAX, a multiple of 3 */
#define SPOOL_DONE_BATCH 256  /* done records per write */
#define SPOOL_ZERO_BLOCK (64u << 10)
#define SPOOL_PREALLOC_STEP (1u << 20) /* a multiple of SPOOL_ZERO_BLOCK */

void
spool_seg_path(const struct spool *sp, uint32_t id, const char *ext,
	       char *buf, size_t size)
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

static void segment_retire(struct spool *sp, struct spool_seg *seg);

/* Opens the next segment and makes its directory entry durable. */
static int
segment_new(struct spool *sp)
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

/* Removes a segment whose recipients are all done (not the current one). */
static void
segment_retire(struct spool *sp, struct spool_seg *seg)
{
	char path[PATH_MAX];

	if (seg->id == sp->seg_cur || seg->outstanding > 0)
		return;
	spool_seg_path(sp, seg->id, "log", path, sizeof path);
	unlink(path);
	spool_seg_path(sp, seg->id, "done", path, sizeof path);
	unlink(path);
	if (seg->done_fd >= 0)
		close(seg->done_fd);
	*seg = sp->segs[--sp->n_segs];
}

static void
hdr_fill(struct spool_rec_hdr *h, const struct msg *m, const char *env,
	 size_t env_len)
{
	h->magic = SPOOL_REC_MAGIC;
	h->env_len = (uint32_t)env_len;
	h->data_len = m->data_len;
	h->qid = m->qid;
	h->body_crc = crc32c(crc32c(0, env, env_len), m->data, m->data_len);
	h->hdr_crc = crc32c(0, h, offsetof(struct spool_rec_hdr, hdr_crc));
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
	uint64_t to;

	if (end <= sp->seg_zeroed || sp->is_prealloc_off)
		return;
	to = (end / SPOOL_PREALLOC_STEP + 1) * SPOOL_PREALLOC_STEP;
	for (size_t i = 0; i < sizeof iov / sizeof iov[0]; i++)
		iov[i] = (struct iovec){zeros, sizeof zeros};
	while (sp->seg_zeroed < to) {
		uint64_t left = to - sp->seg_zeroed;
		int n = left >= SPOOL_PREALLOC_STEP
				? (int)(sizeof iov / sizeof iov[0])
				: (int)((left + SPOOL_ZERO_BLOCK - 1) /
					SPOOL_ZERO_BLOCK);
		ssize_t w = pwritev(sp->seg_fd, iov, n, (off_t)sp->seg_zeroed);
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

/* Writes and syncs one batch of jobs; returns 0 or an errno value. */
static int
commit_batch(struct spool *sp, struct spool_job *jobs)
{
	struct iovec iov[SPOOL_IOV_BATCH];
	struct spool_rec_hdr hdrs[SPOOL_IOV_BATCH / 3];
	char *envs[SPOOL_IOV_BATCH / 3];
	uint64_t start, bytes = 0;
	int n = 0, err = 0;
	size_t k = 0;

	if ((sp->seg_fd < 0 || sp->seg_size >= SPOOL_SEGMENT_MAX) &&
	    segment_new(sp) != 0)
		return errno;
	start = sp->seg_size;
	for (struct spool_job *j = jobs; j && !err; j = j->next) {
		size_t env_len;
		envs[k] = msg_envelope_format(j->m, &env_len);
		if (envs[k] == NULL) {
			err = ENOMEM;
			break;
		}
		hdr_fill(&hdrs[k], j->m, envs[k], env_len);
		iov[n++] = (struct iovec){&hdrs[k], sizeof hdrs[k]};
		iov[n++] = (struct iovec){envs[k], env_len};
		iov[n++] = (struct iovec){j->m->data, j->m->data_len};
		bytes += sizeof hdrs[k] + env_len + j->m->data_len;
		j->m->segment = sp->seg_cur;
		k++;
		if (n == SPOOL_IOV_BATCH || j->next == NULL) {
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
	if (!err && fdatasync(sp->seg_fd) != 0)
		err = errno;
	if (err) {
		log_msg(LOG_ERR, "ev=spool_write_failed segment=%08u error=%s",
			sp->seg_cur, log_q(strerror(err)));
		/* Never leave a torn record for a later one to hide behind. */
		if (ftruncate(sp->seg_fd, (off_t)start) != 0 ||
		    fdatasync(sp->seg_fd) != 0)
			log_msg(LOG_ERR, "ev=spool_truncate_failed segment=%08u",
				sp->seg_cur);
		sp->seg_size = sp->seg_zeroed = start;
		close(sp->seg_fd);
		sp->seg_fd = -1;
	}
	return err;
}

/* Opens the .done file of seg when it is not open yet; -1 on failure. */
static int
done_open(struct spool *sp, struct spool_seg *seg)
{
	char path[PATH_MAX];

	if (seg->done_fd < 0) {
		spool_seg_path(sp, seg->id, "done", path, sizeof path);
		seg->done_fd = open(path, O_WRONLY | O_CREAT | O_APPEND |
				    O_CLOEXEC, 0600);
	}
	return seg->done_fd;
}

/*
 * Appends done records to their segments' .done files: one write for
 * each run of records of the same segment (a delivery batch is one run
 * as a rule), not one per recipient.
 */
static void
write_done(struct spool *sp, struct spool_done_item *items, size_t n)
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
			recs[k].crc = crc32c(0, &recs[k],
					     offsetof(struct spool_done_rec,
						      crc));
		}
		if (seg == NULL)
			continue;
		if (done_open(sp, seg) < 0 ||
		    write(seg->done_fd, recs, k * sizeof *recs) !=
			    (ssize_t)(k * sizeof *recs))
			log_msg(LOG_WARN, "ev=spool_done_write_failed "
				"segment=%08u error=%s", seg->id,
				log_q(strerror(errno)));
		seg->is_done_dirty = true;
		seg->outstanding -= k < seg->outstanding ? k : seg->outstanding;
		if (seg->outstanding == 0)
			segment_retire(sp, seg);
	}
}

static void
sync_done(struct spool *sp)
{
	for (size_t i = 0; i < sp->n_segs; i++) {
		if (!sp->segs[i].is_done_dirty || sp->segs[i].done_fd < 0)
			continue;
		fdatasync(sp->segs[i].done_fd);
		sp->segs[i].is_done_dirty = false;
	}
}

static void *
committer(void *arg)
{
	struct spool *sp = arg;
	time_t last_sync = time(NULL);

	pthread_mutex_lock(&sp->mu);
	for (;;) {
		struct spool_job *jobs = sp->pending;
		struct spool_done_item *done = sp->done_q;
		size_t n_done = sp->n_done_q;
		int err;

		if (jobs == NULL && n_done == 0) {
			struct timespec ts;
			if (sp->is_stopping)
				break;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += SPOOL_DONE_SYNC_SECONDS;
			pthread_cond_timedwait(&sp->cv, &sp->mu, &ts);
			if (sp->pending == NULL && sp->n_done_q == 0) {
				pthread_mutex_unlock(&sp->mu);
				sync_done(sp);
				last_sync = time(NULL);
				pthread_mutex_lock(&sp->mu);
			}
			continue;
		}
		sp->pending = NULL;
		sp->pending_tail = &sp->pending;
		sp->done_q = NULL;
		sp->n_done_q = sp->cap_done_q = 0;
		pthread_mutex_unlock(&sp->mu);

		write_done(sp, done, n_done);
		free(done);
		err = jobs ? commit_batch(sp, jobs) : 0;
		for (struct spool_job *j = jobs; j; j = j->next) {
			j->err = err;
			if (!err) {
				struct spool_seg *seg =
					spool_seg_get(sp, sp->seg_cur);
				if (seg)
					seg->outstanding += j->m->n_rcpts;
			}
		}
		if (time(NULL) - last_sync >= SPOOL_DONE_SYNC_SECONDS) {
			sync_done(sp);
			last_sync = time(NULL);
		}
		pthread_mutex_lock(&sp->mu);
		if (jobs) {
			struct spool_job *last = jobs;
			while (last->next)
				last = last->next;
			*sp->completed_tail = jobs;
			sp->completed_tail = &last->next;
			event_active(sp->ev_complete, EV_READ, 0);
		}
	}
	pthread_mutex_unlock(&sp->mu);
	sync_done(sp);
	return NULL;
}

/* Runs the callbacks of committed jobs (loop thread). */
static void
run_completed(struct spool *sp)
{
	struct spool_job *jobs;

	pthread_mutex_lock(&sp->mu);
	jobs = sp->completed;
	sp->completed = NULL;
	sp->completed_tail = &sp->completed;
	pthread_mutex_unlock(&sp->mu);
	while (jobs) {
		struct spool_job *next = jobs->next;
		jobs->cb(jobs->arg, jobs->m, jobs->err);
		free(jobs);
		jobs = next;
	}
}

static void
on_complete(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_completed(arg);
}

uint64_t
spool_new_qid(struct spool *sp)
{
	return sp->qid_next++;
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
	pthread_mutex_lock(&sp->mu);
	*sp->pending_tail = j;
	sp->pending_tail = &j->next;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
}

void
spool_done(struct spool *sp, const struct msg *m, size_t idx)
{
	pthread_mutex_lock(&sp->mu);
	if (sp->n_done_q == sp->cap_done_q) {
		size_t cap = sp->cap_done_q ? sp->cap_done_q * 2 : 64;
		struct spool_done_item *v =
			realloc(sp->done_q, cap * sizeof *v);
		if (v == NULL) {
			/* Not fatal: recovery checks the mailbox first. */
			pthread_mutex_unlock(&sp->mu);
			return;
		}
		sp->done_q = v;
		sp->cap_done_q = cap;
	}
	sp->done_q[sp->n_done_q++] =
		(struct spool_done_item){m->qid, (uint32_t)idx, m->segment};
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
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
		snprintf(err, size, "cannot create spool directory %s: %s; "
			 "create it or fix [spool] dir", dir, strerror(errno));
		return -1;
	}
	sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof path, "%s/lock", dir);
	sp->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sp->dirfd < 0 || sp->lockfd < 0) {
		snprintf(err, size, "cannot open spool %s: %s; check its "
			 "owner and mode", dir, strerror(errno));
		return -1;
	}
	if (flock(sp->lockfd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, size, "spool %s is in use by another postern; "
			 "stop it or give this one its own [spool] dir", dir);
		return -1;
	}
	return 0;
}

struct spool *
spool_open(const char *dir, struct event_base *base,
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
	sp->pending_tail = &sp->pending;
	sp->completed_tail = &sp->completed;
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->cv, NULL);
	clock_gettime(CLOCK_REALTIME, &now);
	/* Seconds in the high bits, a random start below: unique across
	 * restarts without state. */
	sp->qid_next = ((uint64_t)now.tv_sec << 24) |
		       (((uint64_t)now.tv_nsec ^ (uint64_t)getpid()) & 0xfffff);
	if (open_dir(sp, dir, err, size) != 0 ||
	    spool_recover(sp, recover_cb, arg, err, size) != 0)
		goto fail;
	sp->ev_complete = event_new(base, -1, 0, on_complete, sp);
	if (sp->ev_complete == NULL ||
	    pthread_create(&sp->thread, NULL, committer, sp) != 0) {
		snprintf(err, size, "cannot start the spool committer");
		goto fail;
	}
	sp->has_thread = true;
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
	if (sp->has_thread) {
		pthread_mutex_lock(&sp->mu);
		sp->is_stopping = true;
		pthread_cond_signal(&sp->cv);
		pthread_mutex_unlock(&sp->mu);
		pthread_join(sp->thread, NULL);
		run_completed(sp);
	}
	for (size_t i = 0; i < sp->n_segs; i++)
		if (sp->segs[i].done_fd >= 0)
			close(sp->segs[i].done_fd);
	free(sp->segs);
	free(sp->done_q);
	if (sp->ev_complete)
		event_free(sp->ev_complete);
	if (sp->seg_fd >= 0) {
		/* The zeros past the last record are not needed any more
		 * (recovery would trim them too). */
		if (sp->seg_zeroed > sp->seg_size &&
		    ftruncate(sp->seg_fd, (off_t)sp->seg_size) != 0)
			log_msg(LOG_WARN, "ev=spool_trim_failed segment=%08u",
				sp->seg_cur);
		close(sp->seg_fd);
	}
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	if (sp->lockfd >= 0)
		close(sp->lockfd);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->cv);
	free(sp->dir);
	free(sp);
}
