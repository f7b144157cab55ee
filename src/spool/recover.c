/*
 * recover.c - reading the spool back at start-up.
 *
 * Every segment is read in order.  A record is whole when its header CRC,
 * lengths and body CRC hold (record.c); the first record that is not
 * ends the segment (a crash while writing it, before its 250 was sent)
 * and the file is truncated there.  Messages with a recipient not listed
 * in the .done file are handed to the caller, flagged is_recovered so
 * delivery checks the mailbox before writing (a done record may have
 * been lost), and indexed (live.c) for the committer.
 *
 * A message can be found twice: compaction (compact.c) copies records
 * into a newer segment and removes the old one only afterwards, so a
 * crash in between leaves both.  The copy in the newer segment is kept,
 * with the done records of both; the old copy counts as delivered mail,
 * and a segment left with nothing outstanding is removed.  Queue ids
 * issued after this are above every one on disk, so no other message can
 * ever be taken for a copy.  New records always go to a new segment.
 *
 * Called by spool_open() before the committer starts; it uses the
 * segment files (segment.c) and nothing of the committer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool/spool_int.h"
#include "util/crc32.h"
#include "util/log.h"
#include "util/str.h"

struct done_set {
	struct spool_done_rec *v;
	size_t n;
};

static int
done_cmp(const void *a, const void *b)
{
	const struct spool_done_rec *x = a, *y = b;

	if (x->qid != y->qid)
		return x->qid < y->qid ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Reads the whole .done file of a segment (missing is empty) and returns
 * its size.  A partial record at its end (a crash mid-write) is cut off,
 * so records appended later stay on the 16-octet grid.
 */
static uint64_t
done_load(const struct spool *sp, uint32_t id, struct done_set *ds)
{
	char path[PATH_MAX];
	struct stat st;
	uint64_t size = 0;
	int fd;
	size_t n = 0;

	ds->v = NULL;
	ds->n = 0;
	spool_seg_path(sp, id, "done", path, sizeof path);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		size = (uint64_t)st.st_size / sizeof *ds->v * sizeof *ds->v;
		if (size != (uint64_t)st.st_size &&
		    ftruncate(fd, (off_t)size) != 0)
			log_msg(LOG_WARN,
				"ev=spool_truncate_failed segment=%08u "
				"file=done",
				id);
	}
	if (size > 0 && (ds->v = malloc((size_t)size)) != NULL) {
		ssize_t r = read(fd, ds->v, (size_t)size);
		size_t count = r > 0 ? (size_t)r / sizeof *ds->v : 0;
		for (size_t i = 0; i < count; i++) {
			struct spool_done_rec *d = &ds->v[i];
			if (d->crc ==
			    crc32c(0, d, offsetof(struct spool_done_rec, crc)))
				ds->v[n++] = *d;
		}
		qsort(ds->v, n, sizeof *ds->v, done_cmp);
	}
	ds->n = n;
	close(fd);
	return size;
}

static bool
done_has(const struct done_set *ds, uint64_t qid, uint32_t idx)
{
	struct spool_done_rec key = {qid, idx, 0};

	return ds->n && bsearch(&key, ds->v, ds->n, sizeof *ds->v, done_cmp);
}

/* What recovery gathers while it reads the segments. */
struct found {
	struct spool *sp;
	struct msg **v; /* in the order found; NULL where a copy replaced */
	size_t n, cap;
	uint64_t qid_max;
	/* The segment being read: */
	struct spool_seg *seg;
	const struct done_set *ds;
	bool is_oom;
	bool is_done_lost; /* a merged done record could not be written */
};

static int
found_push(struct found *f, struct msg *m)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		struct msg **v = realloc(f->v, cap * sizeof(struct msg *));
		if (v == NULL)
			return -1;
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n++] = m;
	return 0;
}

/*
 * An earlier copy of the message in m (found in an older segment): its
 * done recipients count for m too, and it is dead from now on.  Those
 * only the old copy had are appended to this segment's .done (synced
 * before the old segment can go, spool_recover), so a second crash does
 * not forget them.  False when it is not the same record (never, while
 * qids are unique).
 */
static bool
replace_copy(struct found *f, struct spool_live *old, struct msg *m,
	     const struct spool_rec_hdr *h, size_t total)
{
	struct msg *prev = f->v[old->rec_idx];
	struct spool_seg *seg;

	if (old->crc != h->body_crc || old->len != total ||
	    old->n_rcpts != m->n_rcpts)
		return false;
	for (size_t i = 0; i < m->n_rcpts; i++) {
		uint32_t idx = (uint32_t)i;
		if (m->rcpts[i].is_done || !spool_live_is_done(old, idx))
			continue;
		m->rcpts[i].is_done = true;
		if (spool_seg_done_append(f->sp, f->seg, m->qid, &idx, 1) != 0) {
			log_msg(LOG_WARN,
				"ev=spool_done_write_failed segment=%08u "
				"error=%s",
				f->seg->id, log_q(strerror(errno)));
			f->is_done_lost = true;
		}
	}
	if ((seg = spool_seg_get(f->sp, old->segment)) != NULL) {
		seg->outstanding -= old->undone;
		seg->live -= old->len;
	}
	msg_free(prev);
	f->v[old->rec_idx] = NULL;
	spool_live_remove(f->sp, old);
	return true;
}

/* spool_rec_fn: one whole record of the segment being read. */
static void
found_record(void *arg, const char *buf, size_t off, size_t total,
	     const struct spool_rec_hdr *h)
{
	struct found *f = arg;
	struct spool_live *e, *old;
	struct msg *m = spool_rec_msg(buf, off, h);

	if (h->qid > f->qid_max)
		f->qid_max = h->qid;
	if (m == NULL) {
		log_msg(LOG_ERR,
			"ev=spool_bad_envelope segment=%08u qid=%016llX",
			f->seg->id, (unsigned long long)h->qid);
		return;
	}
	m->is_recovered = true;
	for (size_t i = 0; i < m->n_rcpts; i++)
		m->rcpts[i].is_done = done_has(f->ds, m->qid, (uint32_t)i);
	old = spool_live_find(f->sp, m->qid);
	if (old != NULL && !replace_copy(f, old, m, h, total)) {
		/* Another message with the same id: its done records could
		 * not be told apart from the first one's.  Kept on disk, not
		 * delivered; the log says which. */
		log_msg(LOG_ERR,
			"ev=spool_qid_twice segment=%08u qid=%016llX "
			"action=kept_undelivered",
			f->seg->id, (unsigned long long)m->qid);
		f->seg->is_kept = true;
		msg_free(m);
		return;
	}
	if (spool_live_for(m, f->seg->id, off, total, h->body_crc, &e) != 0) {
		f->is_oom = true;
		msg_free(m);
		return;
	}
	if (e == NULL) {
		msg_free(m); /* every recipient done */
		return;
	}
	e->rec_idx = f->n;
	if (found_push(f, m) != 0 || spool_live_add(f->sp, e) != 0) {
		if (f->n > 0 && f->v[f->n - 1] == m)
			f->n--;
		f->is_oom = true;
		spool_live_free(e);
		msg_free(m);
		return;
	}
	f->seg->outstanding += e->undone;
	f->seg->live += e->len;
}

/* Reads one segment into f; -1 with errno when it cannot be read. */
static int
segment_read(struct spool *sp, uint32_t id, struct found *f)
{
	char path[PATH_MAX];
	struct done_set ds;
	struct stat st;
	struct spool_seg *seg = spool_seg_get(sp, id);
	size_t len, end;
	bool is_torn;
	char *buf;
	int fd;

	spool_seg_path(sp, id, "log", path, sizeof path);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || seg == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	len = (size_t)st.st_size;
	buf = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	if (len && buf == MAP_FAILED) {
		close(fd);
		return -1;
	}
	seg->done_size = done_load(sp, id, &ds);
	f->seg = seg;
	f->ds = &ds;
	end = spool_rec_scan(buf, len, found_record, f, &is_torn);
	/* found_record may have grown sp->segs: seg is stale now. */
	seg = spool_seg_get(sp, id);
	seg->size = end;
	if (end < len) {
		if (is_torn)
			log_msg(LOG_WARN,
				"ev=spool_torn_record segment=%08u offset=%zu "
				"dropped=%zu",
				id, end, len - end);
		else
			log_msg(LOG_DEBUG,
				"ev=spool_tail_trimmed segment=%08u offset=%zu",
				id, end);
		if (ftruncate(fd, (off_t)end) != 0 || fsync(fd) != 0)
			log_msg(LOG_ERR,
				"ev=spool_truncate_failed segment=%08u", id);
	}
	if (len)
		munmap(buf, len);
	free(ds.v);
	close(fd);
	return 0;
}

static int
id_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int
spool_recover(struct spool *sp, spool_recover_fn cb, void *arg, char *err,
	      size_t size)
{
	DIR *d = opendir(sp->dir);
	struct dirent *de;
	uint32_t *ids = NULL;
	size_t n = 0, cap = 0;
	struct found f = {.sp = sp};
	int r = 0;

	if (d == NULL) {
		snprintf(err, size, "cannot read spool %s: %s", sp->dir,
			 strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char digits[9], path[PATH_MAX];
		struct stat st;
		uint64_t id;
		size_t len = strlen(de->d_name);
		if (len == 13 && strcmp(de->d_name + 8, ".done") == 0) {
			/* A crash between the two unlinks of a removed
			 * segment leaves its .done alone: not needed, and
			 * a later segment of that number must start empty. */
			snprintf(path, sizeof path, "%s/%.8s.log", sp->dir,
				 de->d_name);
			if (stat(path, &st) != 0 && errno == ENOENT &&
			    unlinkat(sp->dirfd, de->d_name, 0) == 0)
				log_msg(LOG_INFO,
					"ev=spool_orphan_removed file=%s",
					log_q(de->d_name));
			continue;
		}
		if (len != 12 || strcmp(de->d_name + 8, ".log") != 0 ||
		    !str_copy(digits, sizeof digits, de->d_name, 8) ||
		    !str_to_u64(digits, &id) || id > UINT32_MAX)
			continue;
		if (n == cap) {
			uint32_t *v = realloc(ids, (cap = cap ? cap * 2 : 16) *
						       sizeof *v);
			if (v == NULL)
				break;
			ids = v;
		}
		ids[n++] = (uint32_t)id;
	}
	closedir(d);
	if (n > 0)
		qsort(ids, n, sizeof *ids, id_cmp);
	for (size_t i = 0; i < n && r == 0; i++) {
		if (segment_read(sp, ids[i], &f) != 0) {
			snprintf(err, size,
				 "cannot read spool segment "
				 "%s/%08u.log: %s; fix its permissions (never "
				 "delete it: it holds accepted mail)",
				 sp->dir, ids[i], strerror(errno));
			r = -1;
		} else if (f.is_oom) {
			snprintf(err, size,
				 "out of memory reading spool segment "
				 "%s/%08u.log; give postern more memory",
				 sp->dir, ids[i]);
			r = -1;
		}
		sp->seg_cur = ids[i];
	}
	/* Handed over only now, when every copy has been seen. */
	for (size_t i = 0; i < f.n; i++) {
		if (f.v[i] == NULL)
			continue;
		if (r == 0)
			cb(arg, f.v[i]);
		else
			msg_free(f.v[i]);
	}
	free(f.v);
	if (f.qid_max >= sp->qid_next)
		sp->qid_next = f.qid_max + 1;
	/* Segments with nothing left can go now, once the done records
	 * merged from old copies are on disk. */
	spool_seg_done_sync(sp);
	for (size_t i = 0; i < n && r == 0 && !f.is_done_lost; i++) {
		struct spool_seg *seg = spool_seg_get(sp, ids[i]);
		if (seg && seg->outstanding == 0 && !seg->is_kept)
			spool_seg_remove(sp, seg);
	}
	free(ids);
	return r;
}
