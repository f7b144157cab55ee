/*
 * state.c - SPOOL/queue.state: what the queue knows about a recipient
 * beyond the spool (attempts, next try, last reply) and the operator's
 * hold and delete, kept across restarts.
 *
 * An append-only text journal, one line per event (docs/design/
 * outbound.md):
 *
 *	r QID IDX ATTEMPTS NEXT_TRY LAST REPLY...
 *	h QID    u QID    d QID
 *
 * Read at start into a table; each recovered message takes its entry
 * (state_apply); then the file is rewritten with only the live state
 * (state_compact), also whenever it has grown to many times that.
 * Recipient lines are flushed each tick and never fsync'd: a crash of
 * the machine costs at most those counters (a recipient is tried a little
 * early).  Hold and delete are the operator's word and are fdatasync'd
 * before the reply.  Whether a message is delivered is never decided
 * here: that is the spool's done record.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outbound/outbound_int.h"
#include "util/log.h"
#include "util/str.h"

#define STATE_FILE "queue.state"
#define STATE_LINE_MAX 1024
#define STATE_BUCKETS 4096
#define STATE_COMPACT_FACTOR 4
#define STATE_COMPACT_MIN 10000
#define STATE_FILE_MODE 0600

/* fopen with the spool's permissions: only the server's user reads it. */
static FILE *
open_private(const char *path, int flags, const char *mode)
{
	int fd =
	    open(path, flags | O_WRONLY | O_CREAT | O_CLOEXEC, STATE_FILE_MODE);
	FILE *fp;

	if (fd < 0)
		return NULL;
	fp = fdopen(fd, mode);
	if (fp == NULL)
		close(fd);
	return fp;
}

struct saved_rcpt {
	size_t idx;
	unsigned attempts;
	long long next_try;
	char *last;
	struct saved_rcpt *next;
};

struct state_saved {
	char qid[MSG_QID_LEN + 1];
	bool is_held, is_deleted;
	struct saved_rcpt *rcpts;
	struct state_saved *next;
};

static unsigned
bucket(const char *qid)
{
	return ob_hash(qid, STATE_BUCKETS);
}

static struct state_saved *
saved_get(struct outbound *ob, const char *qid, bool is_create)
{
	unsigned b = bucket(qid);
	struct state_saved *s;

	for (s = ob->saved[b]; s; s = s->next)
		if (strcmp(s->qid, qid) == 0)
			return s;
	if (!is_create || (s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	str_set(s->qid, sizeof s->qid, qid);
	s->next = ob->saved[b];
	ob->saved[b] = s;
	return s;
}

static void
saved_free(struct state_saved *s)
{
	while (s->rcpts) {
		struct saved_rcpt *r = s->rcpts;
		s->rcpts = r->next;
		free(r->last);
		free(r);
	}
	free(s);
}

/* " IDX ATTEMPTS NEXT_TRY " after "r QID"; *used_out: offset of LAST
 * from line's start (the caller adds the prefix). */
static bool
parse_rcpt(const char *p, size_t *idx_out, unsigned *attempts_out,
	   long long *next_out, int *used_out)
{
	const char *start = p;
	char *end;
	unsigned long long v[3];

	for (int i = 0; i < 3; i++) {
		if (*p != ' ')
			return false;
		v[i] = strtoull(p + 1, &end, 10);
		if (end == p + 1)
			return false;
		p = end;
	}
	if (*p == ' ')
		p++;
	*idx_out = (size_t)v[0];
	*attempts_out = (unsigned)v[1];
	*next_out = (long long)v[2];
	*used_out = (int)(p - start);
	return true;
}

static void
read_line(struct outbound *ob, char *line)
{
	char kind, qid[MSG_QID_LEN + 2];
	size_t idx;
	unsigned attempts;
	long long next;
	int used = 0;
	struct state_saved *s;
	struct saved_rcpt *r;

	line[strcspn(line, "\n")] = '\0';
	if (strlen(line) < 2 + MSG_QID_LEN || line[1] != ' ')
		return;
	kind = line[0];
	str_copy(qid, sizeof qid, line + 2, MSG_QID_LEN);
	if ((line[2 + MSG_QID_LEN] != ' ' && line[2 + MSG_QID_LEN] != '\0') ||
	    (s = saved_get(ob, qid, true)) == NULL)
		return;
	if (kind == 'h' || kind == 'u') {
		s->is_held = kind == 'h';
		return;
	}
	if (kind == 'd') {
		s->is_deleted = true;
		return;
	}
	if (kind != 'r' ||
	    !parse_rcpt(line + 2 + MSG_QID_LEN, &idx, &attempts, &next, &used))
		return;
	for (r = s->rcpts; r; r = r->next)
		if (r->idx == idx)
			break;
	if (r == NULL) {
		if ((r = calloc(1, sizeof *r)) == NULL)
			return;
		r->idx = idx;
		r->next = s->rcpts;
		s->rcpts = r;
	}
	r->attempts = attempts;
	r->next_try = next;
	free(r->last);
	used += 2 + MSG_QID_LEN;
	r->last = line[used] ? strdup(line + used) : NULL;
}

int
state_open(struct outbound *ob, const char *spool_dir, char *err, size_t size)
{
	char line[STATE_LINE_MAX];
	FILE *fp;

	if (asprintf(&ob->state_path, "%s/%s", spool_dir, STATE_FILE) < 0 ||
	    (ob->saved = calloc(STATE_BUCKETS, sizeof(struct state_saved *))) ==
		NULL) {
		ob->state_path = NULL;
		snprintf(err, size, "out of memory");
		return -1;
	}
	fp = fopen(ob->state_path, "re");
	if (fp == NULL && errno != ENOENT) {
		snprintf(err, size,
			 "cannot read %s: %s; check the spool "
			 "directory's permissions",
			 ob->state_path, strerror(errno));
		return -1;
	}
	if (fp != NULL) {
		while (fgets(line, sizeof line, fp) != NULL)
			read_line(ob, line);
		fclose(fp);
	}
	ob->state_fp = open_private(ob->state_path, O_APPEND, "a");
	if (ob->state_fp == NULL) {
		snprintf(err, size,
			 "cannot write %s: %s; check the spool "
			 "directory's permissions",
			 ob->state_path, strerror(errno));
		return -1;
	}
	return 0;
}

void
state_apply(struct outbound *ob, struct qmsg *q)
{
	struct state_saved *s, **pp;

	if (ob->saved == NULL ||
	    (s = saved_get(ob, q->m->qid_str, false)) == NULL)
		return;
	if (s->is_held)
		schedule_hold(q, ob_now()); /* the hold before is not known */
	for (struct saved_rcpt *r = s->rcpts; r; r = r->next) {
		struct qrcpt *qr;
		if (r->idx >= q->m->n_rcpts)
			continue;
		qr = &q->r[r->idx];
		qr->attempts = r->attempts;
		qr->next_try = r->next_try;
		free(qr->last);
		qr->last = r->last;
		r->last = NULL;
	}
	if (s->is_deleted) {
		q->is_deleted = true;
		for (size_t i = 0; i < q->m->n_rcpts; i++)
			if (q->r[i].state != QR_NOT_MINE &&
			    q->r[i].state != QR_DONE)
				queue_mark_done(ob, q, i, "deleted", NULL);
	}
	for (pp = &ob->saved[bucket(s->qid)]; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	saved_free(s);
}

static void
write_rcpt(FILE *fp, const struct qmsg *q, size_t i)
{
	const struct qrcpt *r = &q->r[i];

	fprintf(fp, "r %s %zu %u %lld %s\n", q->m->qid_str, i, r->attempts,
		(long long)r->next_try, r->last ? r->last : "");
}

static void
saved_clear(struct outbound *ob)
{
	if (ob->saved == NULL)
		return;
	for (size_t b = 0; b < STATE_BUCKETS; b++)
		while (ob->saved[b]) {
			struct state_saved *s = ob->saved[b];
			ob->saved[b] = s->next;
			saved_free(s);
		}
	free(ob->saved);
	ob->saved = NULL;
}

void
state_compact(struct outbound *ob)
{
	char *tmp = NULL;
	FILE *fp;
	size_t n = 0;

	saved_clear(ob);
	if (asprintf(&tmp, "%s.tmp", ob->state_path) < 0 ||
	    (fp = open_private(tmp, O_TRUNC, "w")) == NULL) {
		log_msg(LOG_ERR, "ev=queue_state_failed error=%s",
			log_q(strerror(errno)));
		free(tmp);
		return;
	}
	for (const struct qmsg *q = ob->head; q; q = q->next) {
		if (q->is_held) {
			fprintf(fp, "h %s\n", q->m->qid_str);
			n++;
		}
		for (size_t i = 0; i < q->m->n_rcpts; i++)
			if (q->r[i].state != QR_NOT_MINE &&
			    q->r[i].state != QR_DONE &&
			    (q->r[i].attempts > 0 || q->r[i].last)) {
				write_rcpt(fp, q, i);
				n++;
			}
	}
	bool is_ok = fflush(fp) == 0 && fdatasync(fileno(fp)) == 0;

	is_ok &= fclose(fp) == 0;
	if (!is_ok || rename(tmp, ob->state_path) != 0) {
		log_msg(LOG_ERR, "ev=queue_state_failed error=%s",
			log_q(strerror(errno)));
		unlink(tmp);
		free(tmp);
		return;
	}
	free(tmp);
	if (ob->state_fp != NULL)
		fclose(ob->state_fp);
	ob->state_fp = open_private(ob->state_path, O_APPEND, "a");
	ob->state_lines = n;
	ob->state_live = n;
}

/* Rewrites the journal when it holds mostly dead lines. */
static void
maybe_compact(struct outbound *ob)
{
	size_t live = ob->state_live > STATE_COMPACT_MIN ? ob->state_live
							 : STATE_COMPACT_MIN;

	/* Against the live lines of the last rewrite: a queue with many
	 * deferred recipients must not be rewritten on every deferral. */
	if (ob->state_lines > STATE_COMPACT_FACTOR * live)
		state_compact(ob);
}

void
state_rcpt(struct outbound *ob, const struct qmsg *q, size_t idx)
{
	if (ob->state_fp == NULL)
		return;
	write_rcpt(ob->state_fp, q, idx);
	ob->state_lines++;
	maybe_compact(ob);
}

void
state_flag(struct outbound *ob, const struct qmsg *q, char flag)
{
	if (ob->state_fp == NULL)
		return;
	fprintf(ob->state_fp, "%c %s\n", flag, q->m->qid_str);
	ob->state_lines++;
	if (fflush(ob->state_fp) != 0 || fdatasync(fileno(ob->state_fp)) != 0)
		log_msg(LOG_ERR, "ev=queue_state_failed error=%s",
			log_q(strerror(errno)));
}

void
state_close(struct outbound *ob)
{
	saved_clear(ob);
	if (ob->state_fp != NULL)
		fclose(ob->state_fp);
	ob->state_fp = NULL;
	free(ob->state_path);
	ob->state_path = NULL;
}
