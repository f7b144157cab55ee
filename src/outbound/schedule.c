/*
 * schedule.c - the scheduler's decisions, as pure functions: when a
 * recipient is due, when it is tried again after a deferral (the back-off
 * of [delivery] retry, or the wait a peer named: "retry in 60 s"), when
 * its lifetime is over, and what a hold does to both.
 *
 * No I/O, no clock, no allocation: the caller passes the time.  The
 * scheduler (dispatch.c, jobs.c) and the finishing of a job (finish.c)
 * call these; tests/unit/test_schedule.c tests them.  The back-off table
 * itself is react_backoff() (react.c), beside the reply table that feeds
 * it the peer's wait.
 */
#include "outbound/outbound_int.h"

#define SCHEDULE_SUSPEND_MAX 60 /* seconds a failing destination rests */

bool
schedule_is_due(const struct qmsg *q, const struct qrcpt *r, int64_t now)
{
	return !q->is_held && !q->is_deleted && r->state == QR_WAITING &&
	       r->next_try <= now;
}

bool
schedule_is_expired(const struct config *cfg, const struct qmsg *q, int64_t now)
{
	/* Time spent held does not count (postern queue hold). */
	return now - q->m->arrival - q->held_secs >=
	       (int64_t)cfg->delivery_lifetime;
}

int64_t
schedule_retry_at(const struct config *cfg, unsigned attempts,
		  const struct outcome *oc, const struct timespec *ts)
{
	/* Rounded up from the real time: a peer that said "retry in 2 s"
	 * at 10.9 s is tried at 13 s, not at 12.  A local hitch that is
	 * not counted (out of memory) waits the first step.  A 421 is
	 * counted like any 4xx: a peer that keeps saying it is rate
	 * limiting us, and backing off is what it asks for. */
	return (int64_t)ts->tv_sec + (ts->tv_nsec > 0) +
	       react_backoff(cfg, oc->is_uncharged ? 1 : attempts,
			     oc->wait_hint);
}

bool
schedule_defer(const struct config *cfg, struct qmsg *q, size_t idx,
	       const struct outcome *oc, int64_t now, const struct timespec *ts)
{
	struct qrcpt *r = &q->r[idx];

	if (!oc->is_uncharged)
		r->attempts++;
	if (schedule_is_expired(cfg, q, now))
		return false;
	r->state = QR_WAITING;
	r->next_try = schedule_retry_at(cfg, r->attempts, oc, ts);
	return true;
}

void
schedule_hold(struct qmsg *q, int64_t now)
{
	if (!q->is_held)
		q->held_since = now;
	q->is_held = true;
}

void
schedule_release(struct qmsg *q, int64_t now)
{
	if (q->is_held)
		q->held_secs += now - q->held_since;
	q->is_held = false;
	for (size_t i = 0; i < q->m->n_rcpts; i++)
		if (q->r[i].state == QR_WAITING)
			q->r[i].next_try = now;
}

unsigned
schedule_suspend_secs(const struct config *cfg)
{
	unsigned wait = cfg->retry[0];

	return wait < SCHEDULE_SUSPEND_MAX ? wait : SCHEDULE_SUSPEND_MAX;
}
