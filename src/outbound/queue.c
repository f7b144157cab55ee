/*
 * queue.c - the sending side's messages in memory: a list in arrival
 * order and a table by queue id.
 *
 * Every message with a recipient for outbound/ (MSG_AGENT_OUTBOUND) is here
 * from its commit until each such recipient is done; its text stays in
 * memory.  A recipient is READY (due: in a job of its destination), ACTIVE
 * (a connection is sending it), WAITING (deferred until next_try),
 * FINISHING (its bounce or resend is being committed) or DONE.  Marking a
 * recipient done writes the spool's done record: the only place that
 * decides a message is delivered.  A message is freed when no recipient,
 * job or commit of it is left.
 *
 * This file decides nothing about time or outcomes (schedule.c,
 * finish.c); it calls only common.c.
 */
#include <stdlib.h>
#include <string.h>

#include "outbound/outbound_int.h"
#include "util/log.h"

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

static void
qmsg_free(struct qmsg *q)
{
	for (size_t i = 0; i < q->m->n_rcpts; i++)
		free(q->r[i].last);
	free(q->r);
	msg_free(q->m);
	free(q);
}

struct qmsg *
queue_add(struct outbound *ob, struct msg *m_take)
{
	struct qmsg *q = calloc(1, sizeof *q);
	unsigned h;
	int64_t now = ob_now();

	if (q == NULL || (q->r = calloc(m_take->n_rcpts ? m_take->n_rcpts : 1,
					sizeof *q->r)) == NULL) {
		/* Still in the spool: the next start sends it. */
		log_msg(LOG_ERR, "ev=outbound_out_of_memory qid=%s",
			m_take->qid_str);
		free(q);
		msg_free(m_take);
		return NULL;
	}
	q->m = m_take;
	for (size_t i = 0; i < m_take->n_rcpts; i++) {
		q->r[i].state = QR_NOT_MINE;
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
	return q;
}

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
queue_mark_done(struct outbound *ob, struct qmsg *q, size_t idx, const char *ev,
		const struct outcome *oc)
{
	struct qrcpt *r = &q->r[idx];

	r->state = QR_DONE;
	q->m->rcpts[idx].is_done = true;
	spool_done(ob->sp, q->m, idx);
	if (ev != NULL)
		log_msg(LOG_INFO,
			"ev=%s qid=%s rcpt=%s attempts=%u status=%s "
			"reply=%s",
			ev, q->m->qid_str, log_q(q->m->rcpts[idx].mailbox),
			r->attempts, oc ? oc->status : "-",
			log_q(oc ? oc->reply : "-"));
}

void
queue_free_all(struct outbound *ob)
{
	while (ob->head) {
		struct qmsg *q = ob->head;
		ob->head = q->next;
		qmsg_free(q);
	}
	ob->tail = NULL;
}
