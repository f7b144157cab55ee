/*
 * maildir.c - delivery into Maildir, as the convention says: write
 * tmp/NAME, fsync it, rename it to new/NAME, fsync new/.
 *
 * NAME is "ARRIVAL.QqidRidx.HOST": unique (the queue id is) and the same
 * on every attempt, so after a crash a recovered message whose done record
 * was lost is found in new/ or cur/ and not delivered twice.  Lines are
 * stored with LF ends, as Unix mail readers expect, with Return-Path: and
 * Delivered-To: first (RFC 5321 4.4).  The new/ directories of a batch are
 * synced once each, after all of the batch's renames.
 *
 * A failure (permissions, full disk) leaves the recipient queued; the
 * worker tries again every DELIVER_RETRY_SECONDS and logs each failure.
 * Recipients routed to other hosts wait for the sending side.
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
#include <time.h>
#include <unistd.h>

#include "deliver/deliver.h"
#include "util/log.h"
#include "util/str.h"

#define DELIVER_RETRY_SECONDS 30
#define DELIVER_BATCH_DIRS 256

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

static int
mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Makes dir/{tmp,new,cur}. */
static int
maildir_make(const char *dir)
{
	static const char *const subs[] = {"tmp", "new", "cur"};
	char path[PATH_MAX];

	for (size_t i = 0; i < 3; i++) {
		if (!path_fmt(path, sizeof path, "%s/%s", dir, subs[i]) ||
		    mkdirs(path) != 0)
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

/* The file's bytes: headers we add, then the text with LF line ends. */
static char *
render(const struct msg *m, size_t idx, size_t *len_out)
{
	char head[1024];
	int h = snprintf(head, sizeof head,
			 "Return-Path: <%s>\nDelivered-To: %s\n", m->sender,
			 m->rcpts[idx].mailbox);
	char *out = malloc((size_t)h + m->data_len + 1);
	size_t o = (size_t)h;

	if (out == NULL)
		return NULL;
	memcpy(out, head, (size_t)h);
	for (size_t i = 0; i < m->data_len; i++) {
		if (m->data[i] == '\r' && i + 1 < m->data_len &&
		    m->data[i + 1] == '\n')
			continue;
		out[o++] = m->data[i];
	}
	*len_out = o;
	return out;
}

/*
 * Delivers recipient idx into dir; adds dir to the batch's sync list.
 * Returns 0 or -1 with errno.
 */
static int
deliver_one(struct deliver *d, struct msg *m, size_t idx, const char *dir)
{
	char name[512], tmp[PATH_MAX], dst[PATH_MAX];
	size_t len;
	char *body;
	int fd, e;

	if (!path_fmt(name, sizeof name, "%lld.Q%sR%zu.%s",
		      (long long)m->arrival, m->qid_str, idx, d->host) ||
	    !path_fmt(tmp, sizeof tmp, "%s/tmp/%s", dir, name) ||
	    !path_fmt(dst, sizeof dst, "%s/new/%s", dir, name) ||
	    maildir_make(dir) != 0)
		return -1;
	if (m->is_recovered && maildir_has(dir, name))
		return 0;
	if ((body = render(m, idx, &len)) == NULL)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_full(fd, body, len) != 0 || fsync(fd) != 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		free(body);
		errno = e;
		return -1;
	}
	free(body);
	if (close(fd) != 0 || rename(tmp, dst) != 0) {
		e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

static int
sync_dir(const char *dir)
{
	char path[PATH_MAX];
	int fd, r;

	if (!path_fmt(path, sizeof path, "%s/new", dir))
		return -1;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

struct batch {
	char *dirs[DELIVER_BATCH_DIRS];
	size_t n_dirs;
	struct {
		struct msg *m;
		size_t idx;
		size_t dir;
	} *done;
	size_t n_done, cap_done;
};

static size_t
batch_dir(struct batch *b, const char *dir)
{
	for (size_t i = 0; i < b->n_dirs; i++)
		if (strcmp(b->dirs[i], dir) == 0)
			return i;
	b->dirs[b->n_dirs] = strdup(dir);
	return b->n_dirs++;
}

static void batch_finish(struct deliver *d, struct batch *b);

/* Delivers every local recipient of m not done yet. */
static void
deliver_msg(struct deliver *d, struct msg *m, struct batch *b)
{
	for (size_t i = 0; i < m->n_rcpts; i++) {
		struct msg_rcpt *r = &m->rcpts[i];
		char dir[PATH_MAX];
		size_t k;

		if (r->is_done)
			continue;
		if (r->route != MSG_ROUTE_LOCAL) {
			log_msg(LOG_WARN, "ev=deferred qid=%s rcpt=%s "
				"reason=no_sending_side", m->qid_str,
				log_q(r->mailbox));
			continue;
		}
		if (b->n_dirs == DELIVER_BATCH_DIRS || b->n_done == b->cap_done)
			batch_finish(d, b);
		if (b->cap_done == 0 ||
		    !deliver_maildir_path(d->cfg->maildir_path, r->mailbox,
					  dir, sizeof dir) ||
		    deliver_one(d, m, i, dir) != 0) {
			log_msg(LOG_ERR, "ev=delivery_failed qid=%s rcpt=%s "
				"error=%s retry_in=%d", m->qid_str,
				log_q(r->mailbox), log_q(strerror(errno)),
				DELIVER_RETRY_SECONDS);
			continue;
		}
		k = batch_dir(b, dir);
		b->done[b->n_done].m = m;
		b->done[b->n_done].idx = i;
		b->done[b->n_done++].dir = k;
	}
}

/* Syncs the batch's directories, then reports its recipients done. */
static void
batch_finish(struct deliver *d, struct batch *b)
{
	bool is_synced[DELIVER_BATCH_DIRS];

	for (size_t i = 0; i < b->n_dirs; i++)
		is_synced[i] = sync_dir(b->dirs[i]) == 0;
	for (size_t i = 0; i < b->n_done; i++) {
		struct msg *m = b->done[i].m;
		size_t idx = b->done[i].idx;
		if (!is_synced[b->done[i].dir])
			continue;
		m->rcpts[idx].is_done = true;
		spool_done(d->sp, m, idx);
		log_msg(LOG_INFO, "ev=delivered qid=%s rcpt=%s mailbox=%s",
			m->qid_str, log_q(m->rcpts[idx].mailbox),
			log_q(b->dirs[b->done[i].dir]));
	}
	for (size_t i = 0; i < b->n_dirs; i++)
		free(b->dirs[i]);
	b->n_dirs = b->n_done = 0;
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

	b.cap_done = 4096;
	b.done = malloc(b.cap_done * sizeof *b.done);
	if (b.done == NULL)
		b.cap_done = 0;
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
		pthread_mutex_unlock(&d->mu);
		for (struct item *it = todo; it; it = it->next)
			if (it->not_before <= now)
				deliver_msg(d, it->m, &b);
		batch_finish(d, &b);
		while (todo) {
			struct item *next = todo->next;
			if (has_local_left(todo->m)) {
				if (todo->not_before <= now)
					todo->not_before =
						now + DELIVER_RETRY_SECONDS;
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
	free(b.done);
	return NULL;
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
