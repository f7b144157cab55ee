/*
 * maildir.c - delivery into Maildir, as the convention says: write
 * tmp/NAME, make it durable, rename it to new/NAME, make new/ durable.
 *
 * NAME is "ARRIVAL.QqidRidx.HOST": unique (the queue id is) and the same
 * on every attempt, so after a crash a recovered message whose done record
 * was lost is found in new/ or cur/ and not delivered twice, and a tmp/
 * file left by a crash is overwritten by the next attempt.  Lines are
 * stored with LF ends, as Unix mail readers expect, with Return-Path: and
 * Delivered-To: first (RFC 5321 4.4).
 *
 * Batches: the worker takes every message queued and runs the steps
 * above for all of them at once (docs/design/spool.md): write each tmp/
 * file; make them all durable; rename them all; make each new/ directory
 * durable; only then report the recipients done to the spool.  Making a
 * few files durable is an fsync each; more, one syncfs(2) per file system
 * (the fsync rate of a disk, not the message rate, is the limit, so one
 * sync for a whole batch is what lets delivery keep up with the group
 * commit in front of it).  syncfs reports writeback errors only since
 * Linux 5.8; on older kernels every file is fsync'd.  syncfs also flushes
 * whatever else is dirty on that file system: on a disk shared with heavy
 * writers a batch waits for them too.  A failed sync fails the whole
 * batch on that file system, and its recipients are tried again.
 *
 * A failure (permissions, full disk) leaves the recipient queued; the
 * worker tries again every DELIVER_RETRY_SECONDS and logs each failure.
 * Recipients routed to other hosts (or to LMTP) are the sending side's
 * (outbound/); the server hands this worker only messages with local
 * Maildir or mbox recipients.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "deliver/deliver.h"
#include "deliver/mbox.h"
#include "proto/limits.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/str.h"

#define DELIVER_RETRY_SECONDS 30
#define DELIVER_DIR_MODE 0700
/* A locked mbox is usually free again in moments (a reader's rewrite). */
#define DELIVER_LOCKED_RETRY_SECONDS 1
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

struct item {
	struct msg *m;
	time_t not_before;
	struct item *next;
};

struct deliver {
	const struct config *cfg;
	struct spool *sp;
	char host[256]; /* hostname made safe for file names */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool is_stopping;
	bool can_syncfs; /* syncfs reports writeback errors here */
	bool was_locked; /* this pass met a locked mbox: retry soon */
	struct item *queue, **tail;
};

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
	char *name; /* NAME, made once */
	bool is_present; /* found already delivered (recovery) */
	bool is_renamed;
	bool is_failed;
};

struct batch {
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
render(struct batch *b, const struct msg *m, size_t idx, size_t *len_out)
{
	char head[SMTP_PATH_MAX * 2 + 64];
	int h = snprintf(head, sizeof head,
			 "Return-Path: <%s>\nDelivered-To: %s\n", m->sender,
			 m->rcpts[idx].mailbox);
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
item_name(const struct deliver *d, const struct msg *m, size_t idx,
	  char *buf, size_t size)
{
	return path_fmt(buf, size, "%lld.Q%sR%zu.%s", (long long)m->arrival,
			m->qid_str, idx, d->host);
}

/*
 * The batch's entry for mailbox directory dir, made (with tmp, new, cur)
 * when missing; -1 with errno.  The first directory on each file system
 * keeps its tmp/ open: syncfs on it reports writeback errors from then.
 */
static ssize_t
batch_dir(struct batch *b, const char *dir)
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
tmp_write(struct batch *b, const struct msg *m, size_t idx, const char *dir,
	  const char *name, bool is_sync, bool *is_present_out)
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
item_path(const struct batch *b, const struct batch_item *it,
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
sync_filesystems(struct batch *b)
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
		log_msg(LOG_ERR, "ev=delivery_sync_failed mailbox=%s "
			"error=%s", log_q(bd->path), log_q(strerror(errno)));
		for (size_t k = 0; k < b->n_dirs; k++)
			if (b->dirs[k].dev == bd->dev)
				b->dirs[k].is_failed = true;
	}
}

/* Makes the batch's tmp/ files durable (unless written with fsync). */
static void
sync_files(struct deliver *d, struct batch *b, size_t n_written)
{
	char path[PATH_MAX];

	if (!d->can_syncfs)
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
			log_msg(LOG_ERR, "ev=delivery_sync_failed mailbox=%s "
				"error=%s", log_q(b->dirs[it->dir].path),
				log_q(strerror(errno)));
			b->dirs[it->dir].is_failed = true;
		}
	}
}

/* Renames every durable tmp/ file into new/. */
static void
rename_all(struct batch *b)
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
			log_msg(LOG_ERR, "ev=delivery_failed qid=%s rcpt=%s "
				"error=%s retry_in=%d", it->m->qid_str,
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
sync_dirs(struct batch *b, bool can_syncfs)
{
	char path[PATH_MAX];
	size_t n = 0;

	for (size_t i = 0; i < b->n_dirs; i++) {
		b->dirs[i].is_used = false;
		for (size_t k = 0; k < b->n_items && !b->dirs[i].is_used; k++)
			b->dirs[i].is_used = b->items[k].dir == i &&
					     (b->items[k].is_renamed ||
					      b->items[k].is_present);
		n += b->dirs[i].is_used && !b->dirs[i].is_failed;
	}
	if (can_syncfs && n > DELIVER_FSYNC_MAX) {
		sync_filesystems(b);
		return;
	}
	for (size_t i = 0; i < b->n_dirs; i++) {
		struct batch_dir *bd = &b->dirs[i];
		if (!bd->is_used || bd->is_failed)
			continue;
		if (!path_fmt(path, sizeof path, "%s/new", bd->path) ||
		    sync_path(path, O_DIRECTORY) != 0) {
			log_msg(LOG_ERR, "ev=delivery_sync_failed mailbox=%s "
				"error=%s", log_q(bd->path),
				log_q(strerror(errno)));
			bd->is_failed = true;
		}
	}
}

/*
 * Delivers recipient idx of m into dir as part of the batch: the file
 * is written now, made durable and renamed in batch_finish.  0 or -1
 * with errno.
 */
static int
batch_add(struct deliver *d, struct batch *b, struct msg *m, size_t idx,
	  const char *dir)
{
	ssize_t k = batch_dir(b, dir);
	char name[NAME_MAX + 1], *copy;
	struct batch_item *it;
	bool is_present;

	if (k < 0 || !item_name(d, m, idx, name, sizeof name) ||
	    tmp_write(b, m, idx, dir, name, !d->can_syncfs, &is_present) != 0)
		return -1;
	if ((copy = strdup(name)) == NULL) {
		char tmp[PATH_MAX];
		if (!is_present && path_join(tmp, sizeof tmp, dir, "tmp", name))
			unlink(tmp);
		errno = ENOMEM;
		return -1;
	}
	it = &b->items[b->n_items++];
	*it = (struct batch_item){.m = m, .idx = idx, .dir = (size_t)k,
				  .name = copy, .is_present = is_present};
	b->dirs[k].is_used = true;
	return 0;
}

static void batch_finish(struct deliver *d, struct batch *b);

/* [local] maildir = mbox:PATH: one append under the mail readers' locks. */
static void
deliver_mbox(struct deliver *d, struct msg *m, size_t idx)
{
	struct msg_rcpt *r = &m->rcpts[idx];
	char path[PATH_MAX];

	if (deliver_maildir_path(d->cfg->maildir_path, r->mailbox, path,
				 sizeof path) &&
	    mbox_deliver(path, m, idx) == 0) {
		r->is_done = true;
		spool_done(d->sp, m, idx);
		log_msg(LOG_INFO, "ev=delivered qid=%s rcpt=%s mailbox=%s",
			m->qid_str, log_q(r->mailbox), log_q(path));
		return;
	}
	if (errno == EWOULDBLOCK) {
		d->was_locked = true;
		log_msg(LOG_INFO, "ev=deferred qid=%s rcpt=%s "
			"reason=mailbox_locked retry_in=%d", m->qid_str,
			log_q(r->mailbox), DELIVER_LOCKED_RETRY_SECONDS);
		return;
	}
	log_msg(LOG_ERR, "ev=delivery_failed qid=%s rcpt=%s error=%s "
		"retry_in=%d", m->qid_str, log_q(r->mailbox),
		log_q(strerror(errno)), DELIVER_RETRY_SECONDS);
}

/* Delivers every local recipient of m not done yet. */
static void
deliver_msg(struct deliver *d, struct msg *m, struct batch *b)
{
	for (size_t i = 0; i < m->n_rcpts; i++) {
		struct msg_rcpt *r = &m->rcpts[i];
		char dir[PATH_MAX];

		if (r->is_done)
			continue;
		if (r->route != MSG_ROUTE_LOCAL)
			continue; /* the sending side's */
		if (d->cfg->is_mbox) {
			deliver_mbox(d, m, i);
			continue;
		}
		if (b->n_dirs == DELIVER_BATCH_DIRS ||
		    b->n_items == b->cap_items)
			batch_finish(d, b);
		if (b->cap_items == 0 ||
		    !deliver_maildir_path(d->cfg->maildir_path, r->mailbox,
					  dir, sizeof dir) ||
		    batch_add(d, b, m, i, dir) != 0) {
			log_msg(LOG_ERR, "ev=delivery_failed qid=%s rcpt=%s "
				"error=%s retry_in=%d", m->qid_str,
				log_q(r->mailbox), log_q(strerror(errno)),
				DELIVER_RETRY_SECONDS);
			continue;
		}
	}
}

/*
 * Makes the batch's files durable, renames them, makes new/ durable,
 * then reports the recipients done; what failed on the way stays to
 * be tried again, its tmp/ file removed.
 */
static void
batch_finish(struct deliver *d, struct batch *b)
{
	char path[PATH_MAX];
	size_t n_written = 0;

	for (size_t i = 0; i < b->n_items; i++)
		n_written += !b->items[i].is_present;
	sync_files(d, b, n_written);
	rename_all(b);
	sync_dirs(b, d->can_syncfs);
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
		it->m->rcpts[it->idx].is_done = true;
		spool_done(d->sp, it->m, it->idx);
		log_msg(LOG_INFO, "ev=delivered qid=%s rcpt=%s mailbox=%s",
			it->m->qid_str, log_q(it->m->rcpts[it->idx].mailbox),
			log_q(bd->path));
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

/* True when m still has a local recipient to deliver. */
static bool
has_local_left(const struct msg *m)
{
	for (size_t i = 0; i < m->n_rcpts; i++)
		if (!m->rcpts[i].is_done && m->rcpts[i].route == MSG_ROUTE_LOCAL)
			return true;
	return false;
}

static void *
worker(void *arg)
{
	struct deliver *d = arg;
	struct batch b = {0};

	log_buffer(true); /* flushed after each batch */
	b.cap_items = DELIVER_BATCH_ITEMS;
	b.items = malloc(b.cap_items * sizeof *b.items);
	if (b.items == NULL)
		b.cap_items = 0;
	pthread_mutex_lock(&d->mu);
	for (;;) {
		struct item *todo = d->queue, *later = NULL, **later_tail = &later;
		time_t now = time(NULL), wake = 0;

		if (todo == NULL) {
			if (d->is_stopping)
				break;
			pthread_cond_wait(&d->cv, &d->mu);
			continue;
		}
		d->queue = NULL;
		d->tail = &d->queue;
		d->was_locked = false;
		pthread_mutex_unlock(&d->mu);
		for (struct item *it = todo; it; it = it->next)
			if (it->not_before <= now)
				deliver_msg(d, it->m, &b);
		batch_finish(d, &b);
		log_flush();
		while (todo) {
			struct item *next = todo->next;
			if (has_local_left(todo->m)) {
				if (todo->not_before <= now)
					todo->not_before =
						now + (d->was_locked
							       ? DELIVER_LOCKED_RETRY_SECONDS
							       : DELIVER_RETRY_SECONDS);
				if (!wake || todo->not_before < wake)
					wake = todo->not_before;
				todo->next = NULL;
				*later_tail = todo;
				later_tail = &todo->next;
			} else {
				msg_free(todo->m);
				free(todo);
			}
			todo = next;
		}
		pthread_mutex_lock(&d->mu);
		if (later) {
			*later_tail = d->queue;
			if (d->queue == NULL)
				d->tail = later_tail;
			d->queue = later;
			if (d->is_stopping)
				break;
			if (d->queue == later) {
				struct timespec ts = {wake, 0};
				pthread_cond_timedwait(&d->cv, &d->mu, &ts);
			}
		}
	}
	pthread_mutex_unlock(&d->mu);
	log_buffer(false);
	free(b.items);
	free(b.buf);
	return NULL;
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

struct deliver *
deliver_start(const struct config *cfg, struct spool *sp, char *err,
	      size_t size)
{
	struct deliver *d = calloc(1, sizeof *d);

	if (d == NULL) {
		snprintf(err, size, "out of memory");
		return NULL;
	}
	d->cfg = cfg;
	d->sp = sp;
	d->tail = &d->queue;
	d->can_syncfs = syncfs_reports_errors();
	str_set(d->host, sizeof d->host, cfg->server_hostname);
	for (char *p = d->host; *p; p++)
		if (*p == '/' || *p == ':')
			*p = '_';
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	if (pthread_create(&d->thread, NULL, worker, d) != 0) {
		snprintf(err, size, "cannot start the delivery thread");
		free(d);
		return NULL;
	}
	return d;
}

void
deliver_submit(struct deliver *d, struct msg *m_take)
{
	struct item *it = calloc(1, sizeof *it);

	if (it == NULL) {
		/* It stays in the spool and is delivered after a restart. */
		log_msg(LOG_ERR, "ev=delivery_queue_full qid=%s",
			m_take->qid_str);
		msg_free(m_take);
		return;
	}
	it->m = m_take;
	pthread_mutex_lock(&d->mu);
	*d->tail = it;
	d->tail = &it->next;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

void
deliver_stop(struct deliver *d)
{
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->mu);
	d->is_stopping = true;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->thread, NULL);
	while (d->queue) {
		struct item *next = d->queue->next;
		msg_free(d->queue->m);
		free(d->queue);
		d->queue = next;
	}
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	free(d);
}
