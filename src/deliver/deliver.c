/*
 * deliver.c - the local delivery agent's worker: the queue of committed
 * messages, the batches, the retries, and the report of each recipient
 * done to the spool.
 *
 * The server hands it messages with local Maildir or mbox recipients
 * (deliver_submit, any thread); recipients routed to other hosts (or to
 * LMTP) are the sending side's (outbound/).  The thread (util/worker.c)
 * takes every message queued and delivers each local recipient not done:
 * into Maildir through one batch of the Maildir writer (maildir.c), made
 * durable together; into an mbox one append at a time (mbox.c).  A
 * recipient is reported done to the spool (spool_done) only once its copy
 * is durable, so a message leaves the spool only once its delivery is.
 *
 * A failure (permissions, full disk) leaves the recipient queued; it is
 * tried again after DELIVER_RETRY_SECONDS, and each failure is logged.  A
 * locked mbox is tried again after DELIVER_LOCKED_RETRY_SECONDS.  The log
 * lines of a batch leave in one write when the batch ends.
 * docs/design/spool.md.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deliver/deliver.h"
#include "deliver/deliver_int.h"
#include "deliver/mbox.h"
#include "util/log.h"
#include "util/worker.h"

/* A locked mbox is usually free again in moments (a reader's rewrite). */
#define DELIVER_LOCKED_RETRY_SECONDS 1

/* A queued message; wj first (util/worker.h). */
struct item {
	struct worker_job wj;
	struct msg *m;
	time_t not_before;
};

struct deliver {
	const struct config *cfg;
	struct spool *sp;
	struct worker *w;
	struct maildir_batch *b; /* worker thread only */
	bool was_locked;	 /* this pass met a locked mbox: retry soon */
	/* Recipients delivered (worker thread adds, /metrics reads). */
	atomic_ullong n_delivered;
};

static struct item *
item_of(struct worker_job *wj)
{
	return (struct item *)wj;
}

/* Recipient idx of m is durable: the spool may forget it. */
static void
report_done(struct deliver *d, struct msg *m, size_t idx, const char *where)
{
	m->rcpts[idx].is_done = true;
	spool_done(d->sp, m, idx);
	atomic_fetch_add_explicit(&d->n_delivered, 1, memory_order_relaxed);
	log_msg(LOG_INFO, "ev=delivered qid=%s rcpt=%s mailbox=%s", m->qid_str,
		log_q(m->rcpts[idx].mailbox), log_q(where));
}

static void
on_delivered(void *arg, struct msg *m, size_t idx, const char *dir)
{
	report_done(arg, m, idx, dir);
}

static void
finish(struct deliver *d)
{
	maildir_batch_finish(d->b, on_delivered, d);
}

/* [local] maildir = mbox:PATH: one append under the mail readers' locks. */
static void
deliver_mbox(struct deliver *d, struct msg *m, size_t idx)
{
	struct msg_rcpt *r = &m->rcpts[idx];
	char path[PATH_MAX];

	if (deliver_maildir_path(d->cfg->maildir_path, r->mailbox, path,
				 sizeof path) &&
	    mbox_deliver(path, m, idx) == 0) {
		report_done(d, m, idx, path);
		return;
	}
	if (errno == EWOULDBLOCK) {
		d->was_locked = true;
		log_msg(LOG_INFO,
			"ev=deferred qid=%s rcpt=%s "
			"reason=mailbox_locked retry_in=%d",
			m->qid_str, log_q(r->mailbox),
			DELIVER_LOCKED_RETRY_SECONDS);
		return;
	}
	log_msg(LOG_ERR,
		"ev=delivery_failed qid=%s rcpt=%s error=%s "
		"retry_in=%d",
		m->qid_str, log_q(r->mailbox), log_q(strerror(errno)),
		DELIVER_RETRY_SECONDS);
}

/* Delivers every local recipient of m not done yet. */
static void
deliver_msg(struct deliver *d, struct msg *m)
{
	for (size_t i = 0; i < m->n_rcpts; i++) {
		struct msg_rcpt *r = &m->rcpts[i];
		char dir[PATH_MAX];

		if (r->is_done)
			continue;
		if (r->agent != MSG_AGENT_MAILDIR)
			continue; /* the sending side's */
		if (d->cfg->is_mbox) {
			deliver_mbox(d, m, i);
			continue;
		}
		if (maildir_batch_is_full(d->b))
			finish(d);
		if (!deliver_maildir_path(d->cfg->maildir_path, r->mailbox, dir,
					  sizeof dir) ||
		    maildir_batch_add(d->b, m, i, dir) != 0) {
			log_msg(LOG_ERR,
				"ev=delivery_failed qid=%s rcpt=%s "
				"error=%s retry_in=%d",
				m->qid_str, log_q(r->mailbox),
				log_q(strerror(errno)), DELIVER_RETRY_SECONDS);
			continue;
		}
	}
}

/* True when m still has a local recipient to deliver. */
static bool
has_local_left(const struct msg *m)
{
	for (size_t i = 0; i < m->n_rcpts; i++)
		if (!m->rcpts[i].is_done &&
		    m->rcpts[i].agent == MSG_AGENT_MAILDIR)
			return true;
	return false;
}

/*
 * Worker thread: delivers what is due in the batch, then frees the
 * messages done and requeues the others for their retry.
 */
static void
deliver_run(void *arg, struct worker_job *batch)
{
	struct deliver *d = arg;
	struct worker_job *later = NULL, **later_tail = &later;
	time_t now = time(NULL), wake = 0;

	d->was_locked = false;
	for (struct worker_job *wj = batch; wj; wj = wj->next)
		if (item_of(wj)->not_before <= now)
			deliver_msg(d, item_of(wj)->m);
	finish(d);
	log_flush();
	while (batch) {
		struct worker_job *next = batch->next;
		struct item *it = item_of(batch);
		if (has_local_left(it->m)) {
			if (it->not_before <= now)
				it->not_before =
				    now + (d->was_locked
					       ? DELIVER_LOCKED_RETRY_SECONDS
					       : DELIVER_RETRY_SECONDS);
			if (!wake || it->not_before < wake)
				wake = it->not_before;
			batch->next = NULL;
			*later_tail = batch;
			later_tail = &batch->next;
		} else {
			msg_free(it->m);
			free(it);
		}
		batch = next;
	}
	if (later)
		worker_requeue(d->w, later, wake);
}

static void
deliver_thread_start(void *arg)
{
	(void)arg;
	log_buffer(true); /* flushed after each batch */
}

static void
deliver_thread_exit(void *arg)
{
	(void)arg;
	log_buffer(false);
}

static const struct worker_ops deliver_ops = {
    .run = deliver_run,
    .thread_start = deliver_thread_start,
    .thread_exit = deliver_thread_exit,
};

struct deliver *
deliver_start(const struct config *cfg, struct spool *sp, char *err,
	      size_t size)
{
	struct deliver *d = calloc(1, sizeof *d);

	if (d == NULL ||
	    (d->b = maildir_batch_new(cfg->server_hostname)) == NULL) {
		snprintf(err, size, "out of memory");
		free(d);
		return NULL;
	}
	d->cfg = cfg;
	d->sp = sp;
	d->w = worker_start(&deliver_ops, d, NULL);
	if (d->w == NULL) {
		snprintf(err, size, "cannot start the delivery thread");
		maildir_batch_free(d->b);
		free(d);
		return NULL;
	}
	return d;
}

unsigned long long
deliver_count(struct deliver *d)
{
	return d == NULL ? 0
			 : atomic_load_explicit(&d->n_delivered,
						memory_order_relaxed);
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
	if (!worker_submit(d->w, &it->wj)) {
		/* Stopping: the same as above, it waits in the spool. */
		msg_free(m_take);
		free(it);
	}
}

void
deliver_stop(struct deliver *d)
{
	struct worker_job *left;

	if (d == NULL)
		return;
	/* Delivers what is queued, not waiting out retries. */
	left = worker_stop(d->w);
	while (left) {
		struct worker_job *next = left->next;
		msg_free(item_of(left)->m);
		free(left);
		left = next;
	}
	maildir_batch_free(d->b);
	free(d);
}
