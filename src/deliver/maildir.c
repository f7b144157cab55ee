/*
 * maildir.c - the Maildir writer: a batch of recipients' copies written
 * into Maildir as the convention says: write tmp/NAME, make it durable,
 * rename it to new/NAME, make new/ durable.  The delivery worker
 * (deliver.c) fills a batch and finishes it; this file knows nothing of
 * threads, queues or the spool.
 *
 * NAME is "ARRIVAL.QqidRidx.HOST": unique (the queue id is) and the same
 * on every attempt, so after a crash a recovered message whose done record
 * was lost is found in new/ or cur/ and not delivered twice, and a tmp/
 * file left by a crash is overwritten by the next attempt.  Lines are
 * stored with LF ends, as Unix mail readers expect, with Return-Path: and
 * Delivered-To: first (RFC 5321 4.4).
 *
 * Batches (docs/design/spool.md): maildir_batch_add() writes each tmp/
 * file; maildir_batch_finish() makes them all durable, renames them all,
 * makes each new/ directory durable, and only then reports each copy
 * delivered to its caller.  Making a few files durable is an fsync each;
 * more, one syncfs(2) per file system (the fsync rate of a disk, not the
 * message rate, is the limit, so one sync for a whole batch is what lets
 * delivery keep up with the group commit in front of it).  syncfs reports
 * writeback errors only since Linux 5.8; on older kernels every file is
 * fsync'd.  syncfs also flushes whatever else is dirty on that file
 * system: on a disk shared with heavy writers a batch waits for them too.
 * A failed sync fails the whole batch on that file system; its copies
 * are not reported, their tmp/ files removed, and the worker tries them
 * again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "deliver/deliver.h"
#include "deliver/deliver_int.h"
#include "proto/limits.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/str.h"

#define DELIVER_DIR_MODE 0700
#define DELIVER_BATCH_DIRS 256
#define DELIVER_BATCH_ITEMS 4096
/* Up to this many files (or directories) a batch fsyncs each; beyond,
 * one syncfs per file system is cheaper. */
#define DELIVER_FSYNC_MAX 4
/* A render buffer larger than this is freed after its batch. */
#define DELIVER_BUF_KEEP (1u << 20)
/* Linux from which syncfs(2) returns writeback errors (errseq). */
#define DELIVER_SYNCFS_MAJOR 5
#define DELIVER_SYNCFS_MINOR 8

bool
deliver_maildir_path(const char *tmpl, const char *mailbox, char *buf,
		     size_t size)
{
	const char *at = strrchr(mailbox, '@');
	size_t o = 0;

	if (at == NULL)
		return false;
	for (const char *p = tmpl; *p; p++) {
		const char *s = NULL, *e = NULL;
		if (p[0] == '%' && p[1] == 'u')
			s = mailbox, e = at;
		else if (p[0] == '%' && p[1] == 'd')
			s = at + 1, e = at + strlen(at);
		if (s == NULL) {
			if (o + 1 >= size)
				return false;
			buf[o++] = *p;
			continue;
		}
		p++;
		for (; s < e; s++) {
			if (o + 1 >= size)
				return false;
			buf[o++] = *s == '/' ? '_' : *s;
		}
	}
	buf[o] = '\0';
	return true;
}

/* snprintf that reports truncation: false when buf was too small. */
static bool __attribute__((format(printf, 3, 4)))
path_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return false;
	}
	return true;
}

/* "dir/sub/name" into buf without printf (it runs three times for each
 * file); false with ENAMETOOLONG when it does not fit. */
static bool
path_join(char *buf, size_t size, const char *dir, const char *sub,
	  const char *name)
{
	size_t a = strlen(dir), b = strlen(sub), c = strlen(name);

	if (a + b + c + 3 > size) {
		errno = ENAMETOOLONG;
		return false;
	}
	/* Each piece NUL-terminated; the next one overwrites the NUL. */
	str_copy(buf, size, dir, a);
	buf[a] = '/';
	str_copy(buf + a + 1, size - a - 1, sub, b);
	buf[a + 1 + b] = '/';
	str_copy(buf + a + b + 2, size - a - b - 2, name, c);
	return true;
}

/* Makes dir/{tmp,new,cur}. */
static int
maildir_make(const char *dir)
{
	static const char *const subs[] = {"tmp", "new", "cur"};
	char path[PATH_MAX];

	for (size_t i = 0; i < 3; i++) {
		if (!path_fmt(path, sizeof path, "%s/%s", dir, subs[i]) ||
		    fs_mkdirs(path, DELIVER_DIR_MODE) != 0)
			return -1;
	}
	return 0;
}

/* True when NAME is already in new/ or (with flags) in cur/. */
static bool
maildir_has(const char *dir, const char *name)
{
	char path[PATH_MAX];
	size_t n = strlen(name);
	struct dirent *de;
	bool found = false;
	DIR *d;

	if (!path_fmt(path, sizeof path, "%s/new/%s", dir, name))
		return false;
	if (access(path, F_OK) == 0)
		return true;
	if (!path_fmt(path, sizeof path, "%s/cur", dir) ||
	    (d = opendir(path)) == NULL)
		return false;
	while (!found && (de = readdir(d)) != NULL)
		found = strncmp(de->d_name, name, n) == 0 &&
			(de->d_name[n] == ':' || de->d_name[n] == '\0');
	closedir(d);
	return found;
}

/* Writes the whole buffer; -1 with errno. */
static int
write_full(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* A mailbox directory of the batch. */
struct batch_dir {
	char *path;
	dev_t dev;
	int sync_fd;  /* its tmp/, when first of its file system, else -1 */
	bool is_used; /* holds a file to make durable */
	bool is_failed;
};

/* A recipient of the batch. */
struct batch_item {
	struct msg *m;
	size_t idx;
	size_t dir;
	char *name;	 /* NAME, made once */
	bool is_present; /* found already delivered (recovery) */
	bool is_renamed;
	bool is_failed;
};

struct maildir_batch {
	char host[256];	 /* hostname made safe for file names */
	bool can_syncfs; /* syncfs reports writeback errors here */
	struct batch_dir dirs[DELIVER_BATCH_DIRS];
	size_t n_dirs;
	struct batch_item *items;
	size_t n_items, cap_items;
	char *buf; /* the file being written */
	size_t cap_buf;
};

/* Renders the file (our headers, then the text with LF line ends) into
 * b->buf; -1 when out of memory. */
static int
render(struct maildir_batch *b, const struct msg *m, size_t idx,
       size_t *len_out)
{
	char head[SMTP_PATH_MAX * 2 + 64];
	int h =
	    snprintf(head, sizeof head, "Return-Path: <%s>\nDelivered-To: %s\n",
		     m->sender, m->rcpts[idx].mailbox);
	const char *p = m->data, *end = m->data + m->data_len;
	size_t need, o;

	if (h < 0 || (size_t)h >= sizeof head)
		return errno = ENAMETOOLONG, -1;
	need = (size_t)h + m->data_len;
	if (b->buf == NULL || need > b->cap_buf) {
		char *v = realloc(b->buf, need);
		if (v == NULL)
			return -1;
		b->buf = v;
		b->cap_buf = need;
	}
	memcpy(b->buf, head, (size_t)h);
	o = (size_t)h;
	while (p < end) {
		const char *cr = memchr(p, '\r', (size_t)(end - p));
		size_t n = (size_t)((cr ? cr : end) - p);
		memcpy(b->buf + o, p, n);
		o += n;
		if (cr == NULL)
			break;
		if (cr + 1 == end || cr[1] != '\n')
			b->buf[o++] = '\r';
		p = cr + 1;
	}
	*len_out = o;
	return 0;
}

/* The file name of recipient idx: the same on every attempt. */
static bool
item_name(const struct maildir_batch *b, const struct msg *m, size_t idx,
	  char *buf, size_t size)
{
	return path_fmt(buf, size, "%lld.Q%sR%zu.%s", (long long)m->arrival,
			m->qid_str, idx, b->host);
}

/*
 * The batch's entry for mailbox directory dir, made (with tmp, new, cur)
 * when missing; -1 with errno.  The first directory on each file system
 * keeps its tmp/ open: syncfs on it reports writeback errors from then.
 */
static ssize_t
batch_dir(struct maildir_batch *b, const char *dir)
{
	struct batch_dir *bd;
	char path[PATH_MAX];
	struct stat st;
	int fd, e;

	for (size_t i = 0; i < b->n_dirs; i++)
		if (strcmp(b->dirs[i].path, dir) == 0)
			return (ssize_t)i;
	if (!path_fmt(path, sizeof path, "%s/tmp", dir))
		return -1;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && maildir_make(dir) == 0)
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	bd = &b->dirs[b->n_dirs];
	if (fstat(fd, &st) != 0 || (bd->path = strdup(dir)) == NULL) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	bd->dev = st.st_dev;
	bd->sync_fd = fd;
	bd->is_used = bd->is_failed = false;
	for (size_t i = 0; i < b->n_dirs; i++) {
		if (b->dirs[i].sync_fd >= 0 && b->dirs[i].dev == st.st_dev) {
			close(fd);
			bd->sync_fd = -1;
			break;
		}
	}
	return (ssize_t)b->n_dirs++;
}

/*
 * Writes recipient idx's file dir/tmp/name (fsync'd only when
 * is_sync); sets *is_present_out when recovery finds it delivered
 * already.  0 or -1 with errno.
 */
static int
tmp_write(struct maildir_batch *b, const struct msg *m, size_t idx,
	  const char *dir, const char *name, bool is_sync, bool *is_present_out)
{
	char tmp[PATH_MAX];
	size_t len;
	int fd, e;

	*is_present_out = false;
	if (!path_join(tmp, sizeof tmp, dir, "tmp", name))
		return -1;
	if (m->is_recovered && maildir_has(dir, name)) {
		*is_present_out = true;
		return 0;
	}
	if (render(b, m, idx, &len) != 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write_full(fd, b->buf, len) != 0 || (is_sync && fsync(fd) != 0)) {
		e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		return -1;
	}
	if (close(fd) != 0) {
		e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

/* "dir/tmp/NAME" or "dir/new/NAME" of an item. */
static bool
item_path(const struct maildir_batch *b, const struct batch_item *it,
	  const char *sub, char *buf, size_t size)
{
	return path_join(buf, size, b->dirs[it->dir].path, sub, it->name);
}

/* fsync of path (a file, or a directory); 0 or -1 with errno. */
static int
sync_path(const char *path, int flags)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | flags), r, e;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	e = errno;
	close(fd);
	errno = e;
	return r;
}

/* syncfs on every file system of the used directories; a failure fails
 * every directory on that file system. */
static void
sync_filesystems(struct maildir_batch *b)
{
	for (size_t i = 0; i < b->n_dirs; i++) {
		struct batch_dir *bd = &b->dirs[i];
		bool is_needed = false;
		if (bd->sync_fd < 0)
			continue;
		for (size_t k = 0; k < b->n_dirs; k++)
			is_needed |= b->dirs[k].dev == bd->dev &&
				     b->dirs[k].is_used &&
				     !b->dirs[k].is_failed;
		if (!is_needed || syncfs(bd->sync_fd) == 0)
			continue;
		log_msg(LOG_ERR,
			"ev=delivery_sync_failed mailbox=%s "
			"error=%s",
			log_q(bd->path), log_q(strerror(errno)));
		for (size_t k = 0; k < b->n_dirs; k++)
			if (b->dirs[k].dev == bd->dev)
				b->dirs[k].is_failed = true;
	}
}

/* Makes the batch's tmp/ files durable (unless written with fsync). */
static void
sync_files(struct maildir_batch *b, size_t n_written)
{
	char path[PATH_MAX];

	if (!b->can_syncfs)
		return; /* fsync'd as written */
	if (n_written > DELIVER_FSYNC_MAX) {
		sync_filesystems(b);
		return;
	}
	for (size_t i = 0; i < b->n_items; i++) {
		struct batch_item *it = &b->items[i];
		if (it->is_failed || it->is_present)
			continue;
		if (!item_path(b, it, "tmp", path, sizeof path) ||
		    sync_path(path, 0) != 0) {
			log_msg(LOG_ERR,
				"ev=delivery_sync_failed mailbox=%s "
				"error=%s",
				log_q(b->dirs[it->dir].path),
				log_q(strerror(errno)));
			b->dirs[it->dir].is_failed = true;
		}
	}
}

/* Renames every durable tmp/ file into new/. */
static void
rename_all(struct maildir_batch *b)
{
	char tmp[PATH_MAX], dst[PATH_MAX];

	for (size_t i = 0; i < b->n_items; i++) {
		struct batch_item *it = &b->items[i];
		if (it->is_failed || it->is_present ||
		    b->dirs[it->dir].is_failed)
			continue;
		if (!item_path(b, it, "tmp", tmp, sizeof tmp) ||
		    !item_path(b, it, "new", dst, sizeof dst) ||
		    rename(tmp, dst) != 0) {
			log_msg(LOG_ERR,
				"ev=delivery_failed qid=%s rcpt=%s "
				"error=%s retry_in=%d",
				it->m->qid_str,
				log_q(it->m->rcpts[it->idx].mailbox),
				log_q(strerror(errno)), DELIVER_RETRY_SECONDS);
			it->is_failed = true;
			continue;
		}
		it->is_renamed = true;
	}
}

/* Makes the new/ directories that received files durable. */
static void
sync_dirs(struct maildir_batch *b)
{
	char path[PATH_MAX];
	size_t n = 0;

	for (size_t i = 0; i < b->n_dirs; i++) {
		b->dirs[i].is_used = false;
		for (size_t k = 0; k < b->n_items && !b->dirs[i].is_used; k++)
			b->dirs[i].is_used =
			    b->items[k].dir == i &&
			    (b->items[k].is_renamed || b->items[k].is_present);
		n += b->dirs[i].is_used && !b->dirs[i].is_failed;
	}
	if (b->can_syncfs && n > DELIVER_FSYNC_MAX) {
		sync_filesystems(b);
		return;
	}
	for (size_t i = 0; i < b->n_dirs; i++) {
		struct batch_dir *bd = &b->dirs[i];
		if (!bd->is_used || bd->is_failed)
			continue;
		if (!path_fmt(path, sizeof path, "%s/new", bd->path) ||
		    sync_path(path, O_DIRECTORY) != 0) {
			log_msg(LOG_ERR,
				"ev=delivery_sync_failed mailbox=%s "
				"error=%s",
				log_q(bd->path), log_q(strerror(errno)));
			bd->is_failed = true;
		}
	}
}

int
maildir_batch_add(struct maildir_batch *b, struct msg *m, size_t idx,
		  const char *dir)
{
	ssize_t k;
	char name[NAME_MAX + 1], *copy;
	struct batch_item *it;
	bool is_present;

	if (b->cap_items == 0)
		return errno = ENOMEM, -1;
	k = batch_dir(b, dir);
	if (k < 0 || !item_name(b, m, idx, name, sizeof name) ||
	    tmp_write(b, m, idx, dir, name, !b->can_syncfs, &is_present) != 0)
		return -1;
	if ((copy = strdup(name)) == NULL) {
		char tmp[PATH_MAX];
		if (!is_present && path_join(tmp, sizeof tmp, dir, "tmp", name))
			unlink(tmp);
		errno = ENOMEM;
		return -1;
	}
	it = &b->items[b->n_items++];
	*it = (struct batch_item){.m = m,
				  .idx = idx,
				  .dir = (size_t)k,
				  .name = copy,
				  .is_present = is_present};
	b->dirs[k].is_used = true;
	return 0;
}

void
maildir_batch_finish(struct maildir_batch *b, maildir_delivered_fn cb,
		     void *arg)
{
	char path[PATH_MAX];
	size_t n_written = 0;

	for (size_t i = 0; i < b->n_items; i++)
		n_written += !b->items[i].is_present;
	sync_files(b, n_written);
	rename_all(b);
	sync_dirs(b);
	for (size_t i = 0; i < b->n_items; i++) {
		struct batch_item *it = &b->items[i];
		struct batch_dir *bd = &b->dirs[it->dir];
		if (it->is_failed || bd->is_failed) {
			if (!it->is_renamed && !it->is_present &&
			    item_path(b, it, "tmp", path, sizeof path))
				unlink(path);
			free(it->name);
			continue;
		}
		free(it->name);
		cb(arg, it->m, it->idx, bd->path);
	}
	for (size_t i = 0; i < b->n_dirs; i++) {
		if (b->dirs[i].sync_fd >= 0)
			close(b->dirs[i].sync_fd);
		free(b->dirs[i].path);
	}
	b->n_dirs = b->n_items = 0;
	if (b->cap_buf > DELIVER_BUF_KEEP) {
		free(b->buf);
		b->buf = NULL;
		b->cap_buf = 0;
	}
}

/* True when this kernel's syncfs(2) returns writeback errors. */
static bool
syncfs_reports_errors(void)
{
	struct utsname u;
	unsigned long major, minor;
	char *end;

	if (uname(&u) != 0)
		return false;
	major = strtoul(u.release, &end, 10);
	if (*end != '.')
		return false;
	minor = strtoul(end + 1, NULL, 10);
	return major > DELIVER_SYNCFS_MAJOR ||
	       (major == DELIVER_SYNCFS_MAJOR && minor >= DELIVER_SYNCFS_MINOR);
}

bool
maildir_batch_is_full(const struct maildir_batch *b)
{
	return b->n_dirs == DELIVER_BATCH_DIRS || b->n_items == b->cap_items;
}

struct maildir_batch *
maildir_batch_new(const char *hostname)
{
	struct maildir_batch *b = calloc(1, sizeof *b);

	if (b == NULL)
		return NULL;
	b->can_syncfs = syncfs_reports_errors();
	str_set(b->host, sizeof b->host, hostname);
	for (char *p = b->host; *p; p++)
		if (*p == '/' || *p == ':')
			*p = '_';
	b->cap_items = DELIVER_BATCH_ITEMS;
	b->items = malloc(b->cap_items * sizeof *b->items);
	if (b->items == NULL)
		b->cap_items = 0;
	return b;
}

void
maildir_batch_free(struct maildir_batch *b)
{
	if (b == NULL)
		return;
	free(b->items);
	free(b->buf);
	free(b);
}
