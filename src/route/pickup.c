/*
 * pickup.c - SPOOL/maildrop into the spool: the server's half of
 * `postern send` (cli/send.c writes the files, spool/maildrop.c is their
 * format).
 *
 * server_new calls route_pickup_start once the spool is open and delivery
 * runs; it scans the directory then and every PICKUP_INTERVAL_SECONDS,
 * and route_pickup_run (the control socket's "pickup", which `postern
 * send` sends) scans at once.  For each file: its recipients are decided
 * by route_rcpt() as for a client of the submission port (trusted: any
 * domain; the forwards and subaddresses apply), the message is committed
 * to the spool and, from the commit callback only, the file is removed
 * and the message handed to route_committed.  So a file disappears only
 * once its message is durable in the spool; a crash between the two may
 * deliver it twice, never zero times.  A failed commit leaves the file
 * for the next scan; a file is never committed twice at once (the
 * in-flight list).  A file that is not a maildrop file, or whose
 * recipients are all refused now (the users changed since `postern send`
 * checked them), is moved to maildrop/bad/ with an err line; one refused
 * recipient among others is dropped with an err line
 * (ev=pickup_rcpt_refused).
 *
 * Reading the small files runs on the loop thread, as recovery does; the
 * fsync is the spool committer's.  docs/design/outbound.md, "postern send".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "route/route_int.h"
#include "spool/maildrop.h"
#include "util/log.h"
#include "util/str.h"

#define PICKUP_INTERVAL_SECONDS 5
/* Files read per scan; a full batch scans again at once. */
#define PICKUP_BATCH_MAX 100
/* Room for the envelope lines over the largest message. */
#define PICKUP_ENVELOPE_MAX 1048576
/* tmp/ files older than this are left by a `postern send` that died. */
#define PICKUP_TMP_MAX_AGE ((time_t)36 * 3600)
#define PICKUP_ERR_MAX 256

/* One file whose message is being committed. */
struct pickup_ticket {
	struct pickup_ticket *next;
	struct route_pickup *p; /* NULL once route_pickup_stop has run */
	struct router *r;
	char name[MAILDROP_NAME_MAX];
	char path[PATH_MAX];
};

struct route_pickup {
	char dir[PATH_MAX];
	struct event *ev_timer;
	struct pickup_ticket *in_flight;
	size_t n_in_flight;
	bool is_backlogged; /* a scan stopped at the cap: scan again when
			     * commits come back */
};

/* "a/b" into out; false when it does not fit. */
static bool
path_join(char *out, size_t size, const char *a, const char *b)
{
	int n = snprintf(out, size, "%s/%s", a, b);

	return n > 0 && (size_t)n < size;
}

/* Unlinks tk from its pickup's in-flight list. */
static void
ticket_drop(struct pickup_ticket *tk)
{
	if (tk->p == NULL)
		return;
	for (struct pickup_ticket **pp = &tk->p->in_flight; *pp;
	     pp = &(*pp)->next)
		if (*pp == tk) {
			*pp = tk->next;
			tk->p->n_in_flight--;
			if (tk->p->is_backlogged) {
				tk->p->is_backlogged = false;
				event_active(tk->p->ev_timer, EV_TIMEOUT, 0);
			}
			break;
		}
	tk->p = NULL;
}

static bool
is_in_flight(const struct route_pickup *p, const char *name)
{
	for (const struct pickup_ticket *tk = p->in_flight; tk; tk = tk->next)
		if (strcmp(tk->name, name) == 0)
			return true;
	return false;
}

static void
on_committed(void *arg, struct msg *m, int err)
{
	struct pickup_ticket *tk = arg;
	struct router *r = tk->r;

	r->commits_pending--;
	ticket_drop(tk);
	if (err != 0) {
		/* The file stays: the next scan tries again. */
		log_msg(LOG_ERR, "ev=pickup_spool_failed qid=%s file=%s "
			"error=%s", m->qid_str, tk->name,
			log_q(strerror(err)));
		msg_free(m);
		free(tk);
		return;
	}
	if (unlink(tk->path) != 0 && errno != ENOENT)
		log_msg(LOG_ERR, "ev=pickup_unlink_failed qid=%s file=%s "
			"error=%s", m->qid_str, tk->name,
			log_q(strerror(errno)));
	r->n_queued++;
	log_msg(LOG_INFO, "ev=pickup qid=%s file=%s from=%s rcpts=%zu "
		"size=%zu", m->qid_str, tk->name, log_q(m->sender),
		m->n_rcpts, m->data_len);
	free(tk);
	route_committed(r, m);
}

/* Moves dir/name to dir/bad/name, saying why. */
static void
file_bad(const struct route_pickup *p, const char *name, const char *why)
{
	char bad[PATH_MAX], from[PATH_MAX], to[PATH_MAX];

	if (!path_join(bad, sizeof bad, p->dir, MAILDROP_BAD) ||
	    !path_join(from, sizeof from, p->dir, name) ||
	    !path_join(to, sizeof to, bad, name)) {
		errno = ENAMETOOLONG;
		to[0] = '\0';
	}
	if (to[0] == '\0' ||
	    (mkdir(bad, MAILDROP_BAD_MODE) != 0 && errno != EEXIST) ||
	    rename(from, to) != 0) {
		log_msg(LOG_ERR, "ev=pickup_bad file=%s reason=%s moved=no "
			"error=%s", name, log_q(why), log_q(strerror(errno)));
		return;
	}
	log_msg(LOG_ERR, "ev=pickup_bad file=%s reason=%s moved=%s", name,
		log_q(why), log_q(to));
}

/*
 * Decides recipient i of in, as RCPT from a trusted client would, and
 * adds it to out; a refused one is logged and left out.  -1 when out of
 * memory.
 */
static int
rcpt_route(const struct router *r, const char *name,
	   const struct msg_rcpt *mr, struct msg *out)
{
	const struct route_req rq = {
		.cfg = r->cfg, .users = r->users, .is_trusted = true};
	struct rcpt_verdict v = {0};
	struct addr a;
	enum reply_id id = REPLY_USER_UNKNOWN;

	if (addr_parse_mailbox(mr->orig, strlen(mr->orig), ADDR_ALLOW_UTF8,
			       &a) == ADDR_OK)
		id = route_rcpt(&rq, &a, &v);
	if (id == REPLY_USER_HELD) /* accepted by send: deliver */
		return msg_add_rcpt(out, v.mailbox, mr->orig, MSG_ROUTE_LOCAL);
	if (id == REPLY_USER_UNKNOWN || v.route == RCPT_ROUTE_NONE) {
		log_msg(LOG_ERR, "ev=pickup_rcpt_refused file=%s rcpt=%s "
			"reason=%s", name, log_q(mr->orig), reply_reason(id));
		return 0;
	}
	return msg_add_rcpt(out, v.mailbox, mr->orig, route_msg_route(&v));
}

/* The message to commit, from what the file says; NULL when none. */
static struct msg *
msg_build(struct router *r, const char *name, struct msg *in)
{
	struct msg *m = msg_new();

	if (m == NULL)
		return NULL;
	free(m->sender);
	m->sender = in->sender;
	in->sender = NULL;
	m->data = in->data;
	m->data_len = in->data_len;
	in->data = NULL;
	for (size_t i = 0; i < in->n_rcpts; i++)
		if (rcpt_route(r, name, &in->rcpts[i], m) != 0) {
			msg_free(m);
			return NULL;
		}
	for (size_t i = 0; i < m->data_len; i++)
		if ((unsigned char)m->data[i] >= 0x80) {
			m->flags |= MSG_F_8BITMIME;
			break;
		}
	/* Local submission: signed as mail from the submission port is. */
	if (route_sign_msg(r, m) != 0)
		log_msg(LOG_WARN, "ev=dkim_unsigned file=%s "
			"reason=out_of_memory", name);
	return m;
}

/* Reads one file and commits its message; true when it went to the
 * spool. */
static bool
file_take(struct router *r, struct route_pickup *p, const char *name)
{
	char err[PICKUP_ERR_MAX] = "";
	struct pickup_ticket *tk;
	struct msg *in = NULL, *m;
	enum maildrop_result res;

	res = maildrop_read(p->dir, name,
			    r->cfg->server_max_message_size +
				    PICKUP_ENVELOPE_MAX,
			    &in, err, sizeof err);
	if (res == MAILDROP_ERR_FORMAT) {
		file_bad(p, name, err);
		return false;
	}
	if (res != MAILDROP_OK) {
		if (errno != ENOENT)
			log_msg(LOG_WARN, "ev=pickup_failed file=%s error=%s",
				name, log_q(strerror(errno)));
		return false;
	}
	m = msg_build(r, name, in);
	msg_free(in);
	if (m == NULL || m->n_rcpts == 0) {
		if (m == NULL)
			log_msg(LOG_WARN, "ev=pickup_failed file=%s "
				"error=\"out of memory\"", name);
		else
			file_bad(p, name, "every recipient was refused");
		msg_free(m);
		return false;
	}
	tk = calloc(1, sizeof *tk);
	if (tk == NULL || !str_set(tk->name, sizeof tk->name, name) ||
	    !path_join(tk->path, sizeof tk->path, p->dir, name)) {
		free(tk);
		msg_free(m);
		return false;
	}
	tk->p = p;
	tk->r = r;
	tk->next = p->in_flight;
	p->in_flight = tk;
	p->n_in_flight++;
	msg_set_qid(m, spool_new_qid(r->spool));
	m->arrival = (int64_t)time(NULL);
	r->commits_pending++;
	spool_commit(r->spool, m, on_committed, tk);
	return true;
}

/* True for a name that may be a maildrop file (not tmp/, bad/, dot). */
static bool
is_candidate(int dfd, const struct dirent *de)
{
	struct stat st;

	if (de->d_name[0] == '.' ||
	    strlen(de->d_name) >= MAILDROP_NAME_MAX)
		return false;
	if (de->d_type == DT_REG)
		return true;
	if (de->d_type != DT_UNKNOWN)
		return false;
	return fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

void
route_pickup_run(struct router *r)
{
	struct route_pickup *p = r->pickup;
	const struct dirent *de;
	size_t n = 0;
	DIR *d;

	if (p == NULL || r->is_stopping)
		return;
	d = opendir(p->dir);
	if (d == NULL) {
		log_msg(LOG_ERR, "ev=pickup_failed dir=%s error=%s",
			log_q(p->dir), log_q(strerror(errno)));
		return;
	}
	/* At most PICKUP_BATCH_MAX messages in flight: a backlog is read as
	 * its commits come back (ticket_drop scans again), not all at once;
	 * only files handed to the spool count, so files that keep failing
	 * wait for the timer instead of spinning. */
	while (n < PICKUP_BATCH_MAX && p->n_in_flight < PICKUP_BATCH_MAX &&
	       (de = readdir(d)) != NULL) {
		if (!is_candidate(dirfd(d), de) ||
		    is_in_flight(p, de->d_name))
			continue;
		if (file_take(r, p, de->d_name))
			n++;
	}
	closedir(d);
	if (n == PICKUP_BATCH_MAX || p->n_in_flight >= PICKUP_BATCH_MAX)
		p->is_backlogged = true;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	route_pickup_run(arg);
}

/* Removes tmp/ files a `postern send` that died left behind. */
static void
tmp_clean(const struct route_pickup *p)
{
	char tmp[PATH_MAX];
	time_t now = time(NULL);
	const struct dirent *de;
	struct stat st;
	DIR *d;

	if (!path_join(tmp, sizeof tmp, p->dir, MAILDROP_TMP))
		return;
	d = opendir(tmp);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' &&
		    fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) &&
		    now - st.st_mtime > PICKUP_TMP_MAX_AGE &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0)
			log_msg(LOG_INFO, "ev=pickup_tmp_removed file=%s",
				log_q(de->d_name));
	closedir(d);
}

int
route_pickup_start(struct router *r, char *err, size_t size)
{
	const struct timeval every = {PICKUP_INTERVAL_SECONDS, 0};
	struct route_pickup *p = calloc(1, sizeof *p);

	if (p == NULL) {
		snprintf(err, size, "out of memory");
		return -1;
	}
	if (!maildrop_dir_format(r->cfg->spool_dir, p->dir, sizeof p->dir) ||
	    maildrop_dir_make(p->dir) != 0) {
		snprintf(err, size, "cannot create the maildrop directory "
			 "%s/%s: %s; check the permissions of [spool] dir",
			 r->cfg->spool_dir, MAILDROP_SUBDIR,
			 strerror(errno));
		free(p);
		return -1;
	}
	p->ev_timer = event_new(r->base, -1, EV_PERSIST, on_timer, r);
	if (p->ev_timer == NULL || event_add(p->ev_timer, &every) != 0) {
		snprintf(err, size, "cannot start the maildrop timer");
		if (p->ev_timer != NULL)
			event_free(p->ev_timer);
		free(p);
		return -1;
	}
	r->pickup = p;
	tmp_clean(p);
	route_pickup_run(r);
	return 0;
}

void
route_pickup_stop(struct router *r)
{
	struct route_pickup *p = r->pickup;

	if (p == NULL)
		return;
	event_free(p->ev_timer);
	/* Commits still in flight finish without us (spool_close). */
	while (p->in_flight != NULL)
		ticket_drop(p->in_flight);
	free(p);
	r->pickup = NULL;
}
