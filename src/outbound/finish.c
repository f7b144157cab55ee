/*
 * finish.c - the finishing of a job: each recipient's outcome applied.
 * This is the one way an outcome comes back to the queue: a connection
 * calls finish_job() when its job is decided, and a notice's commit
 * reports through the callback finish_commit() gives the server.
 *
 *	done      the spool's done record (queue_mark_done), ev=sent, and a
 *	          success notice when NOTIFY=SUCCESS asked and the peer
 *	          could not pass the request on
 *	deferred  schedule_defer(): WAITING until the back-off or the peer's
 *	          wait, ev=deferred; past the lifetime: failed
 *	551       resent to the address it names ([delivery] follow_551),
 *	          else failed
 *	failed    ev=failed, one bounce per message and pass (notice.c),
 *	          unless the null sender or NOTIFY says no one is told
 *
 * The failed recipients are marked done in the spool only after their
 * bounce is committed: a crash in between bounces twice, never not at
 * all.  A notice that cannot be built or committed puts its recipients
 * back to WAITING for a minute.  Every deferral is appended to
 * SPOOL/queue.state (state.c).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outbound/outbound_int.h"
#include "util/log.h"
#include "util/str.h"

#define FINISH_RETRY_SECONDS 60

/* A notice being committed: which recipients it settles. */
struct notice_ctx {
	struct outbound *ob; /* NULL once the sending side stopped */
	struct notice_ctx *prev, *next;
	char qid[MSG_QID_LEN + 1];
	size_t idx[OB_JOB_RCPTS_MAX];
	size_t n;
	const char *ev; /* log event for the recipients once committed */
};

/* Recipients idx[0..n) of q wait a minute: their notice did not go. */
static void
retry_later(struct qmsg *q, const size_t *idx, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		q->r[idx[k]].state = QR_WAITING;
		q->r[idx[k]].next_try = ob_now() + FINISH_RETRY_SECONDS;
	}
}

static void
on_committed(void *arg, int err)
{
	struct notice_ctx *c = arg;
	struct outbound *ob = c->ob;
	struct qmsg *q;

	if (ob != NULL) {
		if (c->prev)
			c->prev->next = c->next;
		else
			ob->notices = c->next;
		if (c->next)
			c->next->prev = c->prev;
	}
	if (ob == NULL || (q = queue_find(ob, c->qid)) == NULL) {
		free(c);
		return;
	}
	q->n_pending--;
	for (size_t k = 0; k < c->n; k++) {
		struct qrcpt *r = &q->r[c->idx[k]];
		if (r->state != QR_FINISHING)
			continue;
		if (err != 0 && !q->is_deleted) {
			retry_later(q, &c->idx[k], 1);
			continue;
		}
		queue_mark_done(ob, q, c->idx[k], NULL, NULL);
		log_msg(LOG_INFO, "ev=%s qid=%s rcpt=%s", c->ev, q->m->qid_str,
			log_q(q->m->rcpts[c->idx[k]].mailbox));
	}
	free(c);
	queue_drop_done(ob, q);
}

void
finish_commit(struct outbound *ob, struct qmsg *q, struct msg *m_take,
	      const size_t *idx, size_t n, const char *ev)
{
	struct notice_ctx *c = calloc(1, sizeof *c);

	if (c == NULL) {
		msg_free(m_take);
		retry_later(q, idx, n);
		return;
	}
	c->ob = ob;
	str_set(c->qid, sizeof c->qid, q->m->qid_str);
	memcpy(c->idx, idx, n * sizeof *idx);
	c->n = n;
	c->ev = ev;
	c->next = ob->notices;
	if (ob->notices)
		ob->notices->prev = c;
	ob->notices = c;
	q->n_pending++;
	ob->hooks.inject(ob->hooks.arg, m_take, on_committed, c);
}

void
finish_detach(struct outbound *ob)
{
	for (struct notice_ctx *c = ob->notices; c; c = c->next)
		c->ob = NULL;
	ob->notices = NULL;
}

/* Failed recipients idx[0..n) of q (QR_FINISHING): a bounce, or done
 * when no one is to be told. */
static void
bounce(struct outbound *ob, struct qmsg *q, const size_t *idx,
       const struct outcome *oc, size_t n, const char *remote)
{
	size_t keep[OB_JOB_RCPTS_MAX], n_keep = 0;
	struct outcome *koc = malloc(n * sizeof *koc);
	struct msg *m;

	for (size_t k = 0; k < n; k++) {
		log_msg(LOG_INFO, "ev=failed qid=%s rcpt=%s status=%s reply=%s",
			q->m->qid_str, log_q(q->m->rcpts[idx[k]].mailbox),
			oc[k].status, log_q(oc[k].reply));
		if (koc != NULL && notice_wants_failure(q->m, idx[k])) {
			koc[n_keep] = oc[k];
			keep[n_keep++] = idx[k];
			continue;
		}
		/* No one to tell (null sender, NOTIFY): done, logged. */
		queue_mark_done(ob, q, idx[k], "bounce_suppressed", &oc[k]);
	}
	if (n_keep > 0) {
		m = notice_failed(ob, q, keep, koc, n_keep, remote);
		if (m == NULL)
			retry_later(q, keep, n_keep);
		else
			finish_commit(ob, q, m, keep, n_keep, "bounced");
	}
	free(koc);
}

/* The recipients of j that failed (failed[] indexes j->idx): bounced. */
static void
finish_failed(struct outbound *ob, struct job *j, const size_t *failed,
	      size_t n_failed, int64_t now)
{
	struct qmsg *q = j->q;
	size_t idx[OB_JOB_RCPTS_MAX];
	struct outcome *oc = malloc(n_failed * sizeof *oc);

	if (oc == NULL) {
		/* Tried again later; nothing is lost. */
		for (size_t k = 0; k < n_failed; k++) {
			struct qrcpt *r = &q->r[j->idx[failed[k]]];
			r->state = QR_WAITING;
			r->next_try = now + react_backoff(ob->cfg, 1, 0);
		}
		return;
	}
	for (size_t k = 0; k < n_failed; k++) {
		idx[k] = j->idx[failed[k]];
		oc[k] = j->out[failed[k]];
		q->r[idx[k]].state = QR_FINISHING;
		ob->n_bounced++;
	}
	bounce(ob, q, idx, oc, n_failed, j->remote);
	free(oc);
}

/* A deferred recipient: it waits, or (false) its lifetime is over. */
static bool
defer(struct outbound *ob, struct qmsg *q, size_t idx, const struct outcome *oc,
      int64_t now)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (!schedule_defer(ob->cfg, q, idx, oc, now, &ts))
		return false;
	ob->n_deferred++;
	log_msg(LOG_INFO,
		"ev=deferred qid=%s rcpt=%s attempts=%u status=%s "
		"retry_in=%lld reply=%s",
		q->m->qid_str, log_q(q->m->rcpts[idx].mailbox),
		q->r[idx].attempts, oc->status,
		(long long)(q->r[idx].next_try - now), log_q(oc->reply));
	state_rcpt(ob, q, idx);
	return true;
}

/* A recipient the peer took. */
static void
sent(struct outbound *ob, const struct job *j, size_t i,
     const struct outcome *oc, int64_t now)
{
	struct qmsg *q = j->q;
	struct msg *m;

	q->r[i].attempts++;
	ob->n_sent++;
	ob->n_sent_lmtp += j->is_final;
	hist_observe(&ob->delivery_hist, ob_mono() - j->taken_at);
	queue_mark_done(ob, q, i, NULL, NULL);
	log_msg(LOG_INFO,
		"ev=sent qid=%s rcpt=%s relay=%s attempts=%u "
		"delay=%llds reply=%s",
		q->m->qid_str, log_q(q->m->rcpts[i].mailbox),
		log_q(j->remote[0] ? j->remote : "-"), q->r[i].attempts,
		(long long)(now - q->m->arrival), log_q(oc->reply));
	if ((q->m->rcpts[i].notify & MSG_NOTIFY_SUCCESS) &&
	    q->m->sender[0] != '\0' && (j->is_final || !j->is_dsn_passed) &&
	    (m = notice_success(ob, q, i, oc, j->remote, j->is_final)) != NULL)
		finish_commit(ob, q, m, &i, 0, NULL);
}

/* The last reply or local reason, kept for `postern queue` and notices. */
static void
keep_last(struct qrcpt *r, const struct outcome *oc)
{
	free(r->last);
	r->last = NULL;
	if (oc->is_remote)
		r->last = strdup(oc->reply);
	else if (asprintf(&r->last, "%s %s", oc->status, oc->reply) < 0)
		r->last = NULL;
}

/* Applies one outcome; true when the recipient failed (to bounce). */
static bool
apply(struct outbound *ob, struct job *j, size_t k, int64_t now)
{
	struct qmsg *q = j->q;
	size_t i = j->idx[k];
	struct outcome *oc = &j->out[k];
	struct msg *m;

	if (oc->kind == OC_NONE)
		react_local(oc, OC_DEFER, "4.4.2",
			    "connection ended before a reply");
	keep_last(&q->r[i], oc);
	if (q->is_deleted) {
		queue_mark_done(ob, q, i, NULL, NULL);
		return false;
	}
	switch (oc->kind) {
	case OC_DONE:
		sent(ob, j, i, oc, now);
		return false;
	case OC_FOLLOW:
		q->r[i].attempts++;
		if (!ob->cfg->delivery_follow_551)
			return true;
		q->r[i].state = QR_FINISHING;
		if ((m = notice_follow(q, i, oc)) == NULL)
			retry_later(q, &i, 1);
		else
			finish_commit(ob, q, m, &i, 1, "forwarded");
		return false;
	case OC_BOUNCE:
		q->r[i].attempts++;
		return true;
	case OC_NONE: /* made OC_DEFER above */
	case OC_DEFER:
		break;
	}
	return !defer(ob, q, i, oc, now);
}

/* At stop: what is done is recorded, the rest is sent after the restart. */
static void
finish_stopping(struct outbound *ob, struct job *j)
{
	for (size_t k = 0; k < j->n; k++) {
		struct qrcpt *r = &j->q->r[j->idx[k]];
		if (j->out[k].kind == OC_DONE)
			queue_mark_done(ob, j->q, j->idx[k], "sent",
					&j->out[k]);
		else if (r->state == QR_ACTIVE)
			r->state = QR_WAITING;
	}
}

void
finish_job(struct outbound *ob, struct job *j)
{
	struct qmsg *q = j->q;
	int64_t now = ob_now();
	size_t failed[OB_JOB_RCPTS_MAX], n_failed = 0;

	if (ob->is_stopping) {
		finish_stopping(ob, j);
		q->n_jobs--;
		free(j->out);
		free(j);
		return;
	}
	for (size_t k = 0; k < j->n; k++)
		if (q->r[j->idx[k]].state == QR_ACTIVE && apply(ob, j, k, now))
			failed[n_failed++] = k;
	if (n_failed > 0)
		finish_failed(ob, j, failed, n_failed, now);
	q->n_jobs--;
	free(j->out);
	free(j);
	queue_drop_done(ob, q);
	ob_wake(ob);
}
