/*
 * jobs.c - jobs: a message's due recipients grouped by destination (up
 * to 100 each, RFC 5321 4.5.3.1.8), in their destination's ready list
 * until a connection takes them.
 *
 * The scheduler (dispatch.c) makes jobs and hands the first of a
 * destination to a new connection; a connection that finishes a job takes
 * the next one of its destination here (client_txn.c).  A job taken is
 * the taker's until finish_job().  A job of a message held or deleted
 * meanwhile is put back, not sent.  A 421 splits a job: what it left
 * undecided goes on to the destination's next address as a job of its
 * own, the rest is finished (client.c).
 */
#include <stdlib.h>

#include "outbound/outbound_int.h"
#include "util/log.h"

void
jobs_make(struct outbound *ob, struct qmsg *q, int64_t now)
{
	struct job *open[OB_JOB_RCPTS_MAX] = {0};
	size_t n_open = 0;

	if (q->is_held || q->is_deleted)
		return;
	for (size_t i = 0; i < q->m->n_rcpts; i++) {
		struct qrcpt *r = &q->r[i];
		struct dest *d;
		struct job *j = NULL;

		if (!schedule_is_due(q, r, now))
			continue;
		d = dest_of(ob, &q->m->rcpts[i]);
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
jobs_next(struct outbound *ob, struct dest *d)
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
		j->taken_at = ob_mono();
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

struct job *
jobs_split_next_host(struct job *j)
{
	struct job *rest;
	size_t n = 0, keep = 0;

	for (size_t k = 0; k < j->n; k++)
		n += j->out[k].is_next_host;
	if (n == 0 || (rest = calloc(1, sizeof *rest)) == NULL)
		return NULL;
	rest->taken_at = ob_mono();
	if ((rest->out = calloc(n, sizeof *rest->out)) == NULL) {
		free(rest);
		return NULL;
	}
	rest->q = j->q;
	rest->dest = j->dest;
	for (size_t k = 0; k < j->n; k++) {
		if (j->out[k].is_next_host) {
			rest->idx[rest->n++] = j->idx[k];
			continue;
		}
		j->idx[keep] = j->idx[k];
		j->out[keep++] = j->out[k];
	}
	j->n = keep;
	j->q->n_jobs++;
	return rest;
}

void
jobs_free_ready(struct outbound *ob)
{
	for (size_t b = 0; b < OB_DEST_BUCKETS; b++)
		for (struct dest *d = ob->dests[b]; d; d = d->hnext) {
			struct job *j;
			while ((j = d->ready) != NULL) {
				d->ready = j->next;
				free(j->out);
				free(j);
			}
		}
}
