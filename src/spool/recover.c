/*
 * recover.c - reading the spool back at start-up.
 *
 * Every segment is read in order.  A record is whole when its header CRC,
 * lengths and body CRC hold; the first record that is not ends the
 * segment (a crash while writing it, before its 250 was sent) and the
 * file is truncated there.  Messages with a recipient not listed in the
 * .done file are handed to the caller, flagged is_recovered so delivery
 * checks the mailbox before writing (a done record may have been lost).
 * Orphan .done files are removed.  New records always go to a new segment.
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

/* Reads the whole .done file of a segment (missing is empty). */
static void
done_load(const struct spool *sp, uint32_t id, struct done_set *ds)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;
	size_t n = 0;

	ds->v = NULL;
	ds->n = 0;
	spool_seg_path(sp, id, "done", path, sizeof path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size > 0 &&
	    (ds->v = malloc((size_t)st.st_size)) != NULL) {
		ssize_t r = read(fd, ds->v, (size_t)st.st_size);
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
}

static bool
done_has(const struct done_set *ds, uint64_t qid, uint32_t idx)
{
	struct spool_done_rec key = {qid, idx, 0};

	return ds->n && bsearch(&key, ds->v, ds->n, sizeof *ds->v, done_cmp);
}

/* Reads one segment; passes undone messages to cb. */
static int
segment_read(struct spool *sp, uint32_t id, spool_recover_fn cb, void *arg)
{
	char path[PATH_MAX];
	struct done_set ds;
	struct stat st;
	struct spool_seg *seg = spool_seg_get(sp, id);
	size_t off = 0, len;
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
	done_load(sp, id, &ds);
	while (off < len) {
		struct spool_rec_hdr h;
		size_t total = spool_rec_check(buf, len, off, &h);
		struct msg *m;
		size_t undone = 0;

		if (total == 0) {
			if (spool_rec_is_zero(buf + off, len - off))
				log_msg(LOG_DEBUG,
					"ev=spool_tail_trimmed "
					"segment=%08u offset=%zu",
					id, off);
			else
				log_msg(LOG_WARN,
					"ev=spool_torn_record "
					"segment=%08u offset=%zu dropped=%zu",
					id, off, len - off);
			if (ftruncate(fd, (off_t)off) != 0 || fsync(fd) != 0)
				log_msg(LOG_ERR,
					"ev=spool_truncate_failed "
					"segment=%08u",
					id);
			break;
		}
		m = spool_rec_msg(buf, off, &h);
		if (m != NULL) {
			m->segment = id;
			m->is_recovered = true;
		}
		off += total;
		if (m == NULL) {
			log_msg(LOG_ERR,
				"ev=spool_bad_envelope segment=%08u "
				"qid=%016llX",
				id, (unsigned long long)h.qid);
			continue;
		}
		for (size_t i = 0; i < m->n_rcpts; i++) {
			m->rcpts[i].is_done =
			    done_has(&ds, m->qid, (uint32_t)i);
			undone += !m->rcpts[i].is_done;
		}
		seg->outstanding += undone;
		if (undone)
			cb(arg, m);
		else
			msg_free(m);
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

	if (d == NULL) {
		snprintf(err, size, "cannot read spool %s: %s", sp->dir,
			 strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char digits[9];
		uint64_t id;
		if (strlen(de->d_name) != 12 ||
		    strcmp(de->d_name + 8, ".log") != 0 ||
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
	for (size_t i = 0; i < n; i++) {
		if (segment_read(sp, ids[i], cb, arg) != 0) {
			snprintf(err, size,
				 "cannot read spool segment "
				 "%s/%08u.log: %s; fix its permissions (never "
				 "delete it: it holds accepted mail)",
				 sp->dir, ids[i], strerror(errno));
			free(ids);
			return -1;
		}
		sp->seg_cur = ids[i];
	}
	/* Segments with nothing left can go now. */
	for (size_t i = 0; i < n; i++) {
		struct spool_seg *seg = spool_seg_get(sp, ids[i]);
		if (seg && seg->outstanding == 0)
			spool_seg_remove(sp, seg);
	}
	free(ids);
	return 0;
}
