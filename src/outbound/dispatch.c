/*
 * dispatch.c - the scheduler's loop: which jobs get a connection, when.
 *
 * A tick (4 a second) makes WAITING recipients whose time has come into
 * jobs (jobs.c), sends delay notices, and starts connections (client.c)
 * within [delivery] max_connections and max_connections_per_destination.
 * Between ticks a dispatch runs at the end of any loop turn that changed
 * something (ob_wake): it looks only at the messages marked due (new,
 * released, flushed) and at the destinations' ready jobs.  A destination
 * resting after every address failed (client.c) has its due jobs deferred
 * with that failure, without a connection of their own.
 *
 * It decides nothing about time itself (schedule.c) and applies no
 * outcome itself (finish.c).
 */
#include <stdio.h>

#include "outbound/outbound_int.h"

/* Retries are due on whole seconds; a tick four times a second starts
 * them within a quarter of one (a pass over 100,000 messages is ~1 ms). */
#define DISPATCH_TICK_USEC 250000

void
dispatch_mark_due(struct outbound *ob, struct qmsg *q)
{
	if (!q->is_due_listed) {
		q->is_due_listed = true;
		q->due_next = ob->due;
		ob->due = q;
	}
	ob_wake(ob);
}

/* A destination that just failed: its due jobs share that outcome. */
static void
defer_suspended(struct outbound *ob, struct dest *d)
{
	struct job *j;

	while ((j = jobs_next(ob, d)) != NULL) {
		for (size_t k = 0; k < j->n; k++)
			j->out[k] = *d->dead;
		finish_job(ob, j);
	}
}

static void
dispatch(struct outbound *ob)
{
	const struct config *cfg = ob->cfg;
	int64_t now = ob_now();

	for (size_t b = 0; b < OB_DEST_BUCKETS; b++)
		for (struct dest *d = ob->dests[b]; d; d = d->hnext) {
			if (d->n_ready > 0 && d->dead != NULL &&
			    d->dead_until > now) {
				defer_suspended(ob, d);
				continue;
			}
			while (
			    d->n_ready > 0 &&
			    d->n_conns <
				cfg->delivery_max_connections_per_destination &&
			    ob->n_conns < cfg->delivery_max_connections) {
				struct job *j = jobs_next(ob, d);
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
	int64_t now = ob_now();

	(void)fd;
	(void)what;
	if (!ob->is_ready || ob->is_stopping)
		return;
	/* Only what changed: a full pass is the tick's. */
	while (ob->due != NULL) {
		struct qmsg *q = ob->due;
		ob->due = q->due_next;
		q->is_due_listed = false;
		jobs_make(ob, q, now);
		queue_drop_done(ob, q);
	}
	dispatch(ob);
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
		struct msg *m;
		if (r->state != QR_WAITING || r->is_delay_sent ||
		    r->attempts == 0)
			continue;
		r->is_delay_sent = true;
		/* RFC 3461 4.1: without NOTIFY the MTA decides; with it,
		 * only when DELAY is asked for. */
		if (notify != 0 && !(notify & MSG_NOTIFY_DELAY))
			continue;
		if ((m = notice_delayed(ob, q, i)) != NULL)
			finish_commit(ob, q, m, &i, 0, NULL);
	}
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct outbound *ob = arg;
	int64_t now = ob_now();

	(void)fd;
	(void)what;
	if (!ob->is_ready || ob->is_stopping)
		return;
	for (struct qmsg *q = ob->head, *next; q; q = next) {
		next = q->next;
		check_delays(ob, q, now);
		jobs_make(ob, q, now);
	}
	dispatch(ob);
	if (ob->state_fp != NULL)
		fflush(ob->state_fp);
}

int
dispatch_start(struct outbound *ob, char *err, size_t size)
{
	struct timeval tick = {0, DISPATCH_TICK_USEC};

	ob->ev_tick = event_new(ob->base, -1, EV_PERSIST, on_tick, ob);
	ob->ev_dispatch = event_new(ob->base, -1, 0, on_dispatch, ob);
	if (ob->ev_tick == NULL || ob->ev_dispatch == NULL) {
		snprintf(err, size, "out of memory");
		return -1;
	}
	event_add(ob->ev_tick, &tick);
	return 0;
}

void
dispatch_stop(struct outbound *ob)
{
	if (ob->ev_tick)
		event_free(ob->ev_tick);
	if (ob->ev_dispatch)
		event_free(ob->ev_dispatch);
	ob->ev_tick = NULL;
	ob->ev_dispatch = NULL;
}
