/*
 * notice.c - what the queue sends about a message: bounces (RFC 3464
 * "failed"), delay notices ("delayed") and resends to the address a 551
 * names.
 *
 * Each is a new message committed through the server (hooks.inject), so
 * it is as durable as any other.  The recipients a notice is about stay
 * FINISHING until its commit; then they are marked done in the spool.  A
 * success notice (NOTIFY=SUCCESS) is sent when the peer could not take
 * the request on: "delivered" from LMTP, "relayed" from an SMTP peer
 * without DSN (RFC 3461 5.2.2, 6.2).  A
 * failed commit puts them back to WAITING: they are tried (and, if still
 * failing, reported) again.  Nothing goes to the null sender (a bounce
 * never causes another), and NOTIFY (RFC 3461 4.1) is obeyed: NEVER, or a
 * list without FAILURE, means no bounce.
 */
#include <stdlib.h>
#include <string.h>

#include "outbound/dsn.h"
#include "outbound/outbound_int.h"
#include "util/log.h"
#include "util/str.h"

#define NOTICE_EXPLAIN_MAX 2048
#define NOTICE_RETRY_SECONDS 60

/* A notice being committed: which recipients it settles. */
struct notice_ctx {
	struct outbound *ob; /* NULL once the sending side stopped */
	struct notice_ctx *prev, *next;
	char qid[MSG_QID_LEN + 1];
	size_t idx[OB_JOB_RCPTS_MAX];
	size_t n;
	const char *ev; /* log event for the recipients once committed */
};

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
			r->state = QR_WAITING;
			r->next_try = queue_now() + NOTICE_RETRY_SECONDS;
			continue;
		}
		queue_mark_done(ob, q, c->idx[k], NULL, NULL);
		log_msg(LOG_INFO, "ev=%s qid=%s rcpt=%s", c->ev, q->m->qid_str,
			log_q(q->m->rcpts[c->idx[k]].mailbox));
	}
	free(c);
	queue_drop_done(ob, q);
}

static struct notice_ctx *
ctx_new(struct outbound *ob, struct qmsg *q, const size_t *idx, size_t n,
	const char *ev)
{
	struct notice_ctx *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
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
	return c;
}

/* Commits m; on success the recipients idx of q become done. */
static void
inject(struct outbound *ob, struct qmsg *q, struct msg *m, const size_t *idx,
       size_t n, const char *ev)
{
	struct notice_ctx *c = ctx_new(ob, q, idx, n, ev);

	if (c == NULL) {
		msg_free(m);
		for (size_t k = 0; k < n; k++) {
			q->r[idx[k]].state = QR_WAITING;
			q->r[idx[k]].next_try = queue_now() + NOTICE_RETRY_SECONDS;
		}
		return;
	}
	ob->hooks.inject(ob->hooks.arg, m, on_committed, c);
}

/* True when the sender asked for (or did not refuse) a bounce. */
static bool
wants_failure(const struct msg *m, size_t idx)
{
	unsigned notify = m->rcpts[idx].notify;

	if (m->sender[0] == '\0')
		return false;
	return notify == 0 || (notify & MSG_NOTIFY_FAILURE);
}

/* A new message from the null sender to the original sender. */
static struct msg *
notice_msg(const struct msg *orig, char *text, size_t len)
{
	struct msg *m = msg_new();

	if (m == NULL || msg_add_rcpt(m, orig->sender, orig->sender,
				      MSG_ROUTE_REMOTE) != 0) {
		msg_free(m);
		free(text);
		return NULL;
	}
	m->data = text;
	m->data_len = len;
	m->arrival = queue_now();
	return m;
}

/* Builds and commits one notice about recipients idx of q. */
static int
send_notice(struct outbound *ob, struct qmsg *q, const size_t *idx,
	    const struct outcome *oc, size_t n, const char *remote,
	    enum dsn_action action, const char *ev)
{
	struct dsn_rcpt *dr = calloc(n, sizeof *dr);
	char (*words)[NOTICE_EXPLAIN_MAX] = calloc(n, sizeof *words);
	struct dsn_input in = {0};
	int64_t now = queue_now();
	struct msg *m;
	char *text;
	size_t len;

	if (dr == NULL || words == NULL) {
		free(dr);
		free(words);
		return -1;
	}
	for (size_t k = 0; k < n; k++) {
		const struct msg_rcpt *r = &q->m->rcpts[idx[k]];
		ob->hooks.explain(ob->hooks.arg, oc[k].reply, words[k],
				  sizeof words[k]);
		dr[k].final_rcpt = r->mailbox;
		dr[k].orcpt = r->orcpt;
		dr[k].action = action;
		dr[k].status = oc[k].status;
		dr[k].remote_mta = oc[k].is_remote && remote && remote[0]
					   ? remote : NULL;
		dr[k].diagnostic = oc[k].is_remote ? oc[k].reply : NULL;
		dr[k].explanation = oc[k].is_remote ? words[k] : oc[k].reply;
		dr[k].forward = oc[k].kind == OC_FOLLOW ? oc[k].forward : NULL;
		dr[k].last_attempt = q->r[idx[k]].attempts ? now : 0;
		if (action == DSN_DELAYED)
			dr[k].will_retry_until =
				q->m->arrival +
				(int64_t)ob->cfg->delivery_lifetime;
	}
	in.reporting_mta = ob->cfg->server_hostname;
	in.to = q->m->sender;
	in.envid = q->m->envid;
	in.orig_qid = q->m->qid_str;
	in.arrival = q->m->arrival;
	in.now = now;
	in.rcpts = dr;
	in.n_rcpts = n;
	in.orig = q->m->data;
	in.orig_len = q->m->data_len;
	in.is_full = q->m->ret == MSG_RET_FULL && action == DSN_FAILED;
	text = dsn_format(&in, &len);
	free(dr);
	free(words);
	if (text == NULL || (m = notice_msg(q->m, text, len)) == NULL)
		return -1;
	log_msg(LOG_INFO, "ev=%s qid=%s to=%s rcpts=%zu", ev, q->m->qid_str,
		log_q(q->m->sender), n);
	inject(ob, q, m, idx, action == DSN_FAILED ? n : 0, "bounced");
	return 0;
}

void
notice_failed(struct outbound *ob, struct qmsg *q, const size_t *idx,
	      const struct outcome *oc, size_t n, const char *remote)
{
	size_t keep[OB_JOB_RCPTS_MAX], n_keep = 0;
	struct outcome *koc = malloc(n * sizeof *koc);

	for (size_t k = 0; k < n; k++) {
		log_msg(LOG_INFO, "ev=failed qid=%s rcpt=%s status=%s reply=%s",
			q->m->qid_str, log_q(q->m->rcpts[idx[k]].mailbox),
			oc[k].status, log_q(oc[k].reply));
		if (koc != NULL && wants_failure(q->m, idx[k])) {
			koc[n_keep] = oc[k];
			keep[n_keep++] = idx[k];
			continue;
		}
		/* No one to tell (null sender, NOTIFY): done, logged. */
		queue_mark_done(ob, q, idx[k], "bounce_suppressed", &oc[k]);
	}
	if (n_keep > 0 &&
	    send_notice(ob, q, keep, koc, n_keep, remote, DSN_FAILED,
			"bounce") != 0) {
		for (size_t k = 0; k < n_keep; k++) {
			q->r[keep[k]].state = QR_WAITING;
			q->r[keep[k]].next_try =
				queue_now() + NOTICE_RETRY_SECONDS;
		}
	}
	free(koc);
}

void
notice_success(struct outbound *ob, struct qmsg *q, size_t idx,
	       const struct outcome *oc, const char *remote, bool is_final)
{
	send_notice(ob, q, &idx, oc, 1, remote,
		    is_final ? DSN_DELIVERED : DSN_RELAYED, "success_notice");
}

void
notice_delayed(struct outbound *ob, struct qmsg *q, size_t idx)
{
	struct outcome oc;
	const char *last = q->r[idx].last ? q->r[idx].last : "";

	react_local(&oc, OC_DEFER, "4.0.0", "%s", last);
	oc.is_remote = last[0] >= '4' && last[0] <= '5';
	if (oc.is_remote && last[3] == ' ' && last[4] >= '2' && last[4] <= '5')
		str_copy(oc.status, sizeof oc.status, last + 4,
			 strcspn(last + 4, " "));
	send_notice(ob, q, &idx, &oc, 1, NULL, DSN_DELAYED, "delay_notice");
}

void
notice_follow(struct outbound *ob, struct qmsg *q, size_t idx,
	      const struct outcome *oc)
{
	struct msg *m = msg_new();
	const struct msg_rcpt *r = &q->m->rcpts[idx];
	char *data = malloc(q->m->data_len ? q->m->data_len : 1);

	if (m == NULL || data == NULL ||
	    msg_add_rcpt(m, oc->forward, oc->forward, MSG_ROUTE_REMOTE) != 0 ||
	    msg_rcpt_set_dsn(m, 0, r->notify, r->orcpt) != 0) {
		msg_free(m);
		free(data);
		q->r[idx].state = QR_WAITING;
		q->r[idx].next_try = queue_now() + NOTICE_RETRY_SECONDS;
		return;
	}
	free(m->sender);
	m->sender = strdup(q->m->sender);
	if (m->sender == NULL) {
		msg_free(m);
		free(data);
		q->r[idx].state = QR_WAITING;
		return;
	}
	memcpy(data, q->m->data, q->m->data_len);
	m->data = data;
	m->data_len = q->m->data_len;
	m->flags = q->m->flags;
	m->ret = q->m->ret;
	m->envid = q->m->envid ? strdup(q->m->envid) : NULL;
	m->arrival = queue_now();
	log_msg(LOG_INFO, "ev=followed_551 qid=%s rcpt=%s forward=%s",
		q->m->qid_str, log_q(r->mailbox), log_q(oc->forward));
	inject(ob, q, m, &idx, 1, "forwarded");
}

void
notice_detach(struct outbound *ob)
{
	for (struct notice_ctx *c = ob->notices; c; c = c->next)
		c->ob = NULL;
	ob->notices = NULL;
}
