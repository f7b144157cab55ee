/*
 * queue.c - the sending side's queue manager: which recipient is tried
 * when, over which connection, and what becomes of it afterwards.
 *
 * Every message with a recipient for outbound/ (outbound_wants) is here
 * from its commit until each such recipient is done; its text stays in
 * memory.  A recipient is READY (due: in a job of its destination), ACTIVE
 * (a connection is sending it), WAITING (deferred until next_try),
 * FINISHING (its bounce or resend is being committed) or DONE.  A tick
 * (4 a second) makes WAITING recipients whose time has come READY, groups each
 * message's due recipients by destination into jobs (up to 100
 * recipients each) and starts connections (client.c) within
 * [delivery] max_connections and max_connections_per_destination; a
 * connection that finishes a job takes the next one of its destination.
 *
 * Outcomes (react.c decides them): done -> the spool's done record; 4xx
 * -> WAITING after react_backoff(), or bounced once `lifetime` has passed
 * since arrival (a 421 is not counted as an attempt); 5xx -> one bounce
 * per message and pass (notice.c); a 551 -> resent or bounced.  The
 * failed recipients are marked done in the spool only after their bounce
 * is committed: a crash in between bounces twice, never not at all.
 * Every outcome is appended to SPOOL/queue.state (state.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outbound/outbound_int.h"
#include "util/log.h"
#include "util/str.h"

/* Retries are due on whole seconds; a tick four times a second starts
 * them within a quarter of one (a pass over 100,000 messages is ~1 ms). */
#define QUEUE_TICK_USEC 250000
#define QUEUE_TIME_MAX 32

int64_t
queue_now(void)
{
	return (int64_t)time(NULL);
}

unsigned
ob_hash(const char *s, unsigned n)
{
	unsigned h = 5381;

	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h % n;
}

static unsigned
qid_hash(const char *qid)
{
	return ob_hash(qid, OB_HASH_BUCKETS);
}

struct qmsg *
queue_find(struct outbound *ob, const char *qid)
{
	for (struct qmsg *q = ob->by_qid[qid_hash(qid)]; q; q = q->hnext)
		if (strcasecmp(q->m->qid_str, qid) == 0)
			return q;
	return NULL;
}

bool
outbound_wants(const struct config *cfg, const struct msg_rcpt *r)
{
	if (r->is_done)
		return false;
	return r->route == MSG_ROUTE_REMOTE ||
	       (r->route == MSG_ROUTE_LOCAL && cfg->lmtp_target != NULL);
}

static void
qmsg_free(struct qmsg *q)
{
	for (size_t i = 0; i < q->m->n_rcpts; i++)
		free(q->r[i].last);
	free(q->r);
	msg_free(q->m);
	free(q);
}

/* Removes q once nothing of it is left to do here. */
void
queue_drop_done(struct outbound *ob, struct qmsg *q)
{
	struct qmsg **pp;

	if (q->n_pending > 0 || q->n_jobs > 0 || q->is_due_listed)
		return;
	for (size_t i = 0; i < q->m->n_rcpts; i++)
		if (q->r[i].state != QR_DONE && q->r[i].state != QR_NOT_MINE)
			return;
	for (pp = &ob->by_qid[qid_hash(q->m->qid_str)]; *pp; pp = &(*pp)->hnext)
		if (*pp == q) {
			*pp = q->hnext;
			break;
		}
	if (q->prev)
		q->prev->next = q->next;
	else
		ob->head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		ob->tail = q->prev;
	ob->n_msgs--;
	qmsg_free(q);
}

void
queue_mark_done(struct outbound *ob, struct qmsg *q, size_t idx,
		const char *ev, const struct outcome *oc)
{
	struct qrcpt *r = &q->r[idx];

	r->state = QR_DONE;
	q->m->rcpts[idx].is_done = true;
	spool_done(ob->sp, q->m, idx);
	if (ev != NULL)
		log_msg(LOG_INFO, "ev=%s qid=%s rcpt=%s attempts=%u status=%s "
			"reply=%s", ev, q->m->qid_str,
			log_q(q->m->rcpts[idx].mailbox), r->attempts,
			oc ? oc->status : "-", log_q(oc ? oc->reply : "-"));
}

void
outbound_submit(struct outbound *ob, struct msg *m_take)
{
	struct qmsg *q = calloc(1, sizeof *q);
	unsigned h;
	int64_t now = queue_now();

	if (q == NULL ||
	    (q->r = calloc(m_take->n_rcpts ? m_take->n_rcpts : 1,
			   sizeof *q->r)) == NULL) {
		/* Still in the spool: the next start sends it. */
		log_msg(LOG_ERR, "ev=outbound_out_of_memory qid=%s",
			m_take->qid_str);
		free(q);
		msg_free(m_take);
		return;
	}
	q->m = m_take;
	for (size_t i = 0; i < m_take->n_rcpts; i++) {
		bool is_mine = outbound_wants(ob->cfg, &m_take->rcpts[i]);
		q->r[i].state = is_mine ? QR_WAITING : QR_NOT_MINE;
		q->r[i].next_try = now;
	}
	h = qid_hash(m_take->qid_str);
	q->hnext = ob->by_qid[h];
	ob->by_qid[h] = q;
	q->prev = ob->tail;
	if (ob->tail)
		ob->tail->next = q;
	else
		ob->head = q;
	ob->tail = q;
	ob->n_msgs++;
	state_apply(ob, q);
	queue_mark_due(ob, q);
}

void
queue_mark_due(struct outbound *ob, struct qmsg *q)
{
	if (!q->is_due_listed) {
		q->is_due_listed = true;
		q->due_next = ob->due;
		ob->due = q;
	}
	queue_schedule_dispatch(ob);
}

/* Groups q's due recipients into jobs per destination. */
static void
make_jobs(struct outbound *ob, struct qmsg *q, int64_t now)
{
	struct job *open[OB_JOB_RCPTS_MAX] = {0};
	size_t n_open = 0;

	if (q->is_held || q->is_deleted)
		return;
	for (size_t i = 0; i < q->m->n_rcpts; i++) {
		struct qrcpt *r = &q->r[i];
		struct dest *d;
		struct job *j = NULL;

		if (r->state != QR_WAITING || r->next_try > now)
			continue;
		d = route_dest(ob, &q->m->rcpts[i]);
		if (d == NULL) {
			log_msg(LOG_ERR, "ev=no_route qid=%s rcpt=%s",
				q->m->qid_str, log_q(q->m->rcpts[i].mailbox));
			r->next_try = now + react_backoff(ob->cfg, 1, 0);
			continue;
		}
		for (size_t k = 0; k < n_open; k++)
			if (open[k]->dest == d && open[k]->n < OB_JOB_RCPTS_MAX)
				j = open[k];
		if (j == NULL) {
			if (n_open == OB_JOB_RCPTS_MAX ||
			    (j = calloc(1, sizeof *j)) == NULL)
				continue;
			j->q = q;
			j->dest = d;
			q->n_jobs++;
			open[n_open++] = j;
		}
		j->idx[j->n++] = i;
		r->state = QR_READY;
	}
	for (size_t k = 0; k < n_open; k++) {
		struct dest *d = open[k]->dest;
		*d->ready_tail = open[k];
		d->ready_tail = &open[k]->next;
		d->n_ready++;
	}
}

/* Puts a job's recipients back to WAITING without an attempt. */
static void
job_unwind(struct job *j)
{
	for (size_t k = 0; k < j->n; k++) {
		struct qrcpt *r = &j->q->r[j->idx[k]];
		if (r->state == QR_READY || r->state == QR_ACTIVE)
			r->state = QR_WAITING;
	}
	j->q->n_jobs--;
	free(j->out);
	free(j);
}

struct job *
queue_next_job(struct outbound *ob, struct dest *d)
{
	struct job *j;

	while ((j = d->ready) != NULL) {
		d->ready = j->next;
		if (d->ready == NULL)
			d->ready_tail = &d->ready;
		d->n_ready--;
		j->next = NULL;
		if (j->q->is_held || j->q->is_deleted || ob->is_stopping) {
			struct qmsg *q = j->q;
			job_unwind(j);
			if (q->is_deleted)
				queue_drop_done(ob, q);
			continue;
		}
		j->out = calloc(j->n, sizeof *j->out);
		if (j->out == NULL) {
			job_unwind(j); /* tried again on the next tick */
			return NULL;
		}
		for (size_t k = 0; k < j->n; k++)
			j->q->r[j->idx[k]].state = QR_ACTIVE;
		return j;
	}
	return NULL;
}

/* A destination that just failed: its due jobs share that outcome. */
static void
defer_suspended(struct outbound *ob, struct dest *d)
{
	struct job *j;

	while ((j = queue_next_job(ob, d)) != NULL) {
		for (size_t k = 0; k < j->n; k++)
			j->out[k] = *d->dead;
		queue_job_finish(ob, j);
	}
}

static void
dispatch(struct outbound *ob)
{
	const struct config *cfg = ob->cfg;
	int64_t now = queue_now();

	for (size_t b = 0; b < OB_DEST_BUCKETS; b++)
		for (struct dest *d = ob->dests[b]; d; d = d->hnext) {
			if (d->n_ready > 0 && d->dead != NULL &&
			    d->dead_until > now) {
				defer_suspended(ob, d);
				continue;
			}
			while (d->n_ready > 0 &&
			       d->n_conns < cfg->delivery_max_connections_per_destination &&
			       ob->n_conns < cfg->delivery_max_connections) {
				struct job *j = queue_next_job(ob, d);
				if (j == NULL)
					break;
				if (client_start(ob, d, j) != 0)
					break;
			}
		}
}

static void
on_dispatch(evutil_socket_t fd, short what, void *arg)
{
	struct outbound *ob = arg;
	int64_t now = queue_now();

	(void)fd;
	(void)what;
	if (!ob->is_ready || ob->is_stopping)
		return;
	/* Only what changed: a full pass is the tick's, once a second. */
	while (ob->due != NULL) {
		struct qmsg *q = ob->due;
		ob->due = q->due_next;
		q->is_due_listed = false;
		make_jobs(ob, q, now);
		queue_drop_done(ob, q);
	}
	dispatch(ob);
}

void
queue_schedule_dispatch(struct outbound *ob)
{
	if (ob->is_ready && !ob->is_stopping)
		event_active(ob->ev_dispatch, EV_TIMEOUT, 0);
}

/* Delay notices for recipients waiting longer than delay_warning. */
static void
check_delays(struct outbound *ob, struct qmsg *q, int64_t now)
{
	uint64_t warn = ob->cfg->delivery_delay_warning;

	if (warn == 0 || q->m->sender[0] == '\0' ||
	    now - q->m->arrival < (int64_t)warn)
		return;
	for (size_t i = 0; i < q->m->n_rcpts; i++) {
		struct qrcpt *r = &q->r[i];
		unsigned notify = q->m->rcpts[i].notify;
		if (r->state != QR_WAITING || r->is_delay_sent ||
		    r->attempts == 0)
			continue;
		r->is_delay_sent = true;
		/* RFC 3461 4.1: without NOTIFY the MTA decides; with it,
		 * only when DELAY is asked for. */
		if (notify != 0 && !(notify & MSG_NOTIFY_DELAY))
			continue;
		notice_delayed(ob, q, i);
	}
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct outbound *ob = arg;
	int64_t now = queue_now();

	(void)fd;
	(void)what;
	if (!ob->is_ready || ob->is_stopping)
		return;
	for (struct qmsg *q = ob->head, *next; q; q = next) {
		next = q->next;
		check_delays(ob, q, now);
		make_jobs(ob, q, now);
	}
	dispatch(ob);
	if (ob->state_fp != NULL)
		fflush(ob->state_fp);
}

/* A deferred recipient: wait, or bounce when its lifetime is over. */
static bool
defer(struct outbound *ob, struct qmsg *q, size_t idx,
      const struct outcome *oc, int64_t now)
{
	struct qrcpt *r = &q->r[idx];

	struct timespec ts;

	if (!oc->is_uncharged)
		r->attempts++;
	/* Time spent held does not count (postern queue hold). */
	if (now - q->m->arrival - q->held_secs >=
	    (int64_t)ob->cfg->delivery_lifetime)
		return false;
	r->state = QR_WAITING;
	/* Rounded up from the real time: a peer that said "retry in 2 s"
	 * at 10.9 s is tried at 13 s, not at 12. */
	clock_gettime(CLOCK_REALTIME, &ts);
	r->next_try = (int64_t)ts.tv_sec + (ts.tv_nsec > 0) +
		      react_backoff(ob->cfg, oc->is_uncharged ? 1 : r->attempts,
				    oc->wait_hint);
	ob->n_deferred++;
	log_msg(LOG_INFO, "ev=deferred qid=%s rcpt=%s attempts=%u status=%s "
		"retry_in=%lld reply=%s", q->m->qid_str,
		log_q(q->m->rcpts[idx].mailbox), r->attempts, oc->status,
		(long long)(r->next_try - now), log_q(oc->reply));
	state_rcpt(ob, q, idx);
	return true;
}

void
queue_job_finish(struct outbound *ob, struct job *j)
{
	struct qmsg *q = j->q;
	int64_t now = queue_now();
	size_t failed[OB_JOB_RCPTS_MAX], n_failed = 0;
	struct outcome failed_oc[1];
	struct outcome *ocs = j->out;

	(void)failed_oc;
	for (size_t k = 0; k < j->n; k++) {
		size_t i = j->idx[k];
		struct qrcpt *r = &q->r[i];
		struct outcome *oc = &ocs[k];

		if (r->state != QR_ACTIVE)
			continue;
		if (oc->kind == OC_NONE)
			react_local(oc, OC_DEFER, "4.4.2",
				    "connection ended before a reply");
		free(r->last);
		r->last = NULL;
		if (oc->kind != OC_NONE && oc->is_remote)
			r->last = strdup(oc->reply);
		else if (oc->kind != OC_NONE &&
			 asprintf(&r->last, "%s %s", oc->status, oc->reply) < 0)
			r->last = NULL;
		if (q->is_deleted) {
			queue_mark_done(ob, q, i, NULL, NULL);
			continue;
		}
		switch (oc->kind) {
		case OC_DONE:
			r->attempts++;
			ob->n_sent++;
			queue_mark_done(ob, q, i, NULL, NULL);
			log_msg(LOG_INFO, "ev=sent qid=%s rcpt=%s relay=%s "
				"attempts=%u delay=%llds reply=%s",
				q->m->qid_str, log_q(q->m->rcpts[i].mailbox),
				log_q(j->remote[0] ? j->remote : "-"),
				r->attempts, (long long)(now - q->m->arrival),
				log_q(oc->reply));
			if ((q->m->rcpts[i].notify & MSG_NOTIFY_SUCCESS) &&
			    q->m->sender[0] != '\0' &&
			    (j->is_final || !j->is_dsn_passed))
				notice_success(ob, q, i, oc, j->remote,
					       j->is_final);
			break;
		case OC_FOLLOW:
			r->attempts++;
			if (ob->cfg->delivery_follow_551) {
				r->state = QR_FINISHING;
				notice_follow(ob, q, i, oc);
				break;
			}
			failed[n_failed++] = k;
			break;
		case OC_BOUNCE:
			r->attempts++;
			failed[n_failed++] = k;
			break;
		case OC_NONE: /* made OC_DEFER above */
		case OC_DEFER:
			if (!defer(ob, q, i, oc, now))
				failed[n_failed++] = k;
			break;
		}
	}
	if (n_failed > 0) {
		size_t idx[OB_JOB_RCPTS_MAX];
		struct outcome *oc = malloc(n_failed * sizeof *oc);
		if (oc == NULL) {
			/* Tried again later; nothing is lost. */
			for (size_t k = 0; k < n_failed; k++) {
				struct qrcpt *r = &q->r[j->idx[failed[k]]];
				r->state = QR_WAITING;
				r->next_try = now + react_backoff(ob->cfg, 1, 0);
			}
		} else {
			for (size_t k = 0; k < n_failed; k++) {
				idx[k] = j->idx[failed[k]];
				oc[k] = ocs[failed[k]];
				q->r[idx[k]].state = QR_FINISHING;
				ob->n_bounced++;
			}
			notice_failed(ob, q, idx, oc, n_failed, j->remote);
			free(oc);
		}
	}
	q->n_jobs--;
	free(j->out);
	free(j);
	queue_drop_done(ob, q);
	queue_schedule_dispatch(ob);
}

struct outbound *
outbound_start(const struct config *cfg, struct event_base *base,
	       struct spool *sp, SSL_CTX *tls_client,
	       const struct outbound_hooks *hooks, char *err, size_t size)
{
	struct outbound *ob = calloc(1, sizeof *ob);
	struct timeval tick = {0, QUEUE_TICK_USEC};

	if (ob == NULL) {
		snprintf(err, size, "out of memory");
		return NULL;
	}
	ob->cfg = cfg;
	ob->base = base;
	ob->sp = sp;
	ob->tls_client = tls_client;
	ob->hooks = *hooks;
	if (route_load(ob, err, size) != 0)
		goto fail;
	if (state_open(ob, cfg->spool_dir, err, size) != 0)
		goto fail;
	ob->ev_tick = event_new(base, -1, EV_PERSIST, on_tick, ob);
	ob->ev_dispatch = event_new(base, -1, 0, on_dispatch, ob);
	if (ob->ev_tick == NULL || ob->ev_dispatch == NULL) {
		snprintf(err, size, "out of memory");
		goto fail;
	}
	event_add(ob->ev_tick, &tick);
	return ob;
fail:
	outbound_stop(ob);
	return NULL;
}

int
outbound_reload(struct outbound *ob, const struct config *cfg, char *err,
		size_t size)
{
	const struct config *old_cfg = ob->cfg;
	struct route *old = ob->routes;
	size_t n_old = ob->n_routes;

	ob->cfg = cfg;
	ob->routes = NULL;
	ob->n_routes = 0;
	if (route_load(ob, err, size) != 0) {
		route_free(ob);
		ob->cfg = old_cfg;
		ob->routes = old;
		ob->n_routes = n_old;
		return -1;
	}
	for (size_t i = 0; i < n_old; i++) {
		free(old[i].domain);
		free(old[i].host);
	}
	free(old);
	queue_schedule_dispatch(ob);
	return 0;
}

void
outbound_ready(struct outbound *ob)
{
	state_compact(ob);
	ob->is_ready = true;
	log_msg(LOG_INFO, "ev=outbound_ready messages=%zu", ob->n_msgs);
	queue_schedule_dispatch(ob);
}

void
outbound_stop(struct outbound *ob)
{
	if (ob == NULL)
		return;
	ob->is_stopping = true;
	client_stop_all(ob);
	notice_detach(ob);
	for (size_t b = 0; b < OB_DEST_BUCKETS; b++)
		for (struct dest *d = ob->dests[b]; d; d = d->hnext) {
			struct job *j;
			while ((j = d->ready) != NULL) {
				d->ready = j->next;
				free(j->out);
				free(j);
			}
		}
	while (ob->head) {
		struct qmsg *q = ob->head;
		ob->head = q->next;
		qmsg_free(q);
	}
	state_close(ob);
	route_free_dests(ob);
	route_free(ob);
	if (ob->ev_tick)
		event_free(ob->ev_tick);
	if (ob->ev_dispatch)
		event_free(ob->ev_dispatch);
	log_msg(LOG_INFO, "ev=outbound_stopped sent=%llu bounced=%llu "
		"deferred=%llu", ob->n_sent, ob->n_bounced, ob->n_deferred);
	free(ob);
}
