/*
 * notice.c - the messages the queue sends about a message: bounces (RFC
 * 3464 "failed"), delay notices ("delayed"), success notices
 * ("delivered" from LMTP, "relayed" from an SMTP peer without DSN, RFC
 * 3461 5.2.2, 6.2) and resends to the address a 551 names.  A bounce for
 * a recipient whose lifetime ran out (its outcome a deferral) reports
 * Status 4.4.7 with the last temporary reply (dsn.h, is_expired).
 *
 * Each function builds one new message and logs it (ev=bounce,
 * delay_notice, success_notice, followed_551); it changes nothing in the
 * queue.  The caller commits it with finish_commit(), so it is as durable
 * as any other message, and learns the commit's result there.  Nothing
 * goes to the null sender (a bounce never causes another), and NOTIFY
 * (RFC 3461 4.1) is obeyed: NEVER, or a list without FAILURE, means no
 * bounce (notice_wants_failure).
 */
#include <stdlib.h>
#include <string.h>

#include "outbound/dsn.h"
#include "outbound/outbound_int.h"
#include "util/log.h"
#include "util/str.h"

#define NOTICE_EXPLAIN_MAX 2048

/* True when the sender asked for (or did not refuse) a bounce. */
bool
notice_wants_failure(const struct msg *m, size_t idx)
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
	m->arrival = ob_now();
	return m;
}

/* What a notice is about: recipients idx[0..n) of q and their outcomes. */
struct notice_about {
	const struct qmsg *q;
	const size_t *idx;
	const struct outcome *oc;
	size_t n;
	const char *remote; /* the peer, for Remote-MTA, or NULL */
	enum dsn_action action;
};

/* The per-recipient part of the notice. */
static void
fill_rcpts(struct outbound *ob, const struct notice_about *a,
	   struct dsn_rcpt *dr, char (*words)[NOTICE_EXPLAIN_MAX], int64_t now)
{
	const struct qmsg *q = a->q;

	for (size_t k = 0; k < a->n; k++) {
		const struct msg_rcpt *r = &q->m->rcpts[a->idx[k]];
		const struct outcome *oc = &a->oc[k];
		/* A failure that was a deferral: the lifetime ran out (the
		 * only way finish.c bounces an OC_DEFER). */
		bool is_expired = a->action == DSN_FAILED &&
				  oc->kind == OC_DEFER;
		ob->hooks.explain(ob->hooks.arg, oc->reply, words[k],
				  sizeof words[k]);
		dr[k].final_rcpt = r->mailbox;
		dr[k].orcpt = r->orcpt;
		dr[k].action = a->action;
		dr[k].is_expired = is_expired;
		dr[k].status = is_expired ? "4.4.7" : oc->status;
		dr[k].remote_mta = oc->is_remote && a->remote && a->remote[0]
				       ? a->remote
				       : NULL;
		dr[k].diagnostic = oc->is_remote ? oc->reply : NULL;
		dr[k].explanation = oc->is_remote ? words[k] : oc->reply;
		dr[k].forward = oc->kind == OC_FOLLOW ? oc->forward : NULL;
		dr[k].last_attempt = q->r[a->idx[k]].attempts ? now : 0;
		if (a->action == DSN_DELAYED)
			dr[k].will_retry_until =
			    q->m->arrival + (int64_t)ob->cfg->delivery_lifetime;
	}
}

/* Builds the notice a describes and logs it as ev. */
static struct msg *
build_notice(struct outbound *ob, const struct notice_about *a, const char *ev)
{
	const struct msg *orig = a->q->m;
	struct dsn_rcpt *dr = calloc(a->n, sizeof *dr);
	char(*words)[NOTICE_EXPLAIN_MAX] = calloc(a->n, sizeof *words);
	struct dsn_input in = {0};
	int64_t now = ob_now();
	struct msg *m;
	char *text;
	size_t len;

	if (dr == NULL || words == NULL) {
		free(dr);
		free(words);
		return NULL;
	}
	fill_rcpts(ob, a, dr, words, now);
	in.reporting_mta = ob->cfg->server_hostname;
	in.to = orig->sender;
	in.envid = orig->envid;
	in.orig_qid = orig->qid_str;
	in.arrival = orig->arrival;
	in.now = now;
	in.rcpts = dr;
	in.n_rcpts = a->n;
	in.lifetime = (int64_t)ob->cfg->delivery_lifetime;
	in.orig = orig->data;
	in.orig_len = orig->data_len;
	in.is_full = orig->ret == MSG_RET_FULL && a->action == DSN_FAILED;
	text = dsn_format(&in, &len);
	free(dr);
	free(words);
	if (text == NULL || (m = notice_msg(orig, text, len)) == NULL)
		return NULL;
	/* RFC 8689: a notice about a REQUIRETLS message carries its header,
	 * so it travels under REQUIRETLS too. */
	m->flags |= orig->flags & MSG_F_REQUIRETLS;
	log_msg(LOG_INFO, "ev=%s qid=%s to=%s rcpts=%zu", ev, orig->qid_str,
		log_q(orig->sender), a->n);
	return m;
}

struct msg *
notice_failed(struct outbound *ob, const struct qmsg *q, const size_t *idx,
	      const struct outcome *oc, size_t n, const char *remote)
{
	struct notice_about a = {q, idx, oc, n, remote, DSN_FAILED};

	return build_notice(ob, &a, "bounce");
}

struct msg *
notice_success(struct outbound *ob, const struct qmsg *q, size_t idx,
	       const struct outcome *oc, const char *remote, bool is_final)
{
	struct notice_about a = {
	    q, &idx, oc, 1, remote, is_final ? DSN_DELIVERED : DSN_RELAYED};

	return build_notice(ob, &a, "success_notice");
}

struct msg *
notice_delayed(struct outbound *ob, const struct qmsg *q, size_t idx)
{
	struct outcome oc;
	const char *last = q->r[idx].last ? q->r[idx].last : "";
	struct notice_about a = {q, &idx, NULL, 1, NULL, DSN_DELAYED};

	react_local(&oc, OC_DEFER, "4.0.0", "%s", last);
	oc.is_remote = last[0] >= '4' && last[0] <= '5';
	if (oc.is_remote && last[3] == ' ' && last[4] >= '2' && last[4] <= '5')
		str_copy(oc.status, sizeof oc.status, last + 4,
			 strcspn(last + 4, " "));
	a.oc = &oc;
	return build_notice(ob, &a, "delay_notice");
}

struct msg *
notice_follow(const struct qmsg *q, size_t idx, const struct outcome *oc)
{
	struct msg *m = msg_new();
	const struct msg_rcpt *r = &q->m->rcpts[idx];
	char *data = malloc(q->m->data_len ? q->m->data_len : 1);

	if (m == NULL || data == NULL ||
	    msg_add_rcpt(m, oc->forward, oc->forward, MSG_ROUTE_REMOTE) != 0 ||
	    msg_rcpt_set_dsn(m, 0, r->notify, r->orcpt) != 0) {
		msg_free(m);
		free(data);
		return NULL;
	}
	free(m->sender);
	m->sender = strdup(q->m->sender);
	if (m->sender == NULL) {
		msg_free(m);
		free(data);
		return NULL;
	}
	memcpy(data, q->m->data, q->m->data_len);
	m->data = data;
	m->data_len = q->m->data_len;
	m->flags = q->m->flags;
	m->ret = q->m->ret;
	m->envid = q->m->envid ? strdup(q->m->envid) : NULL;
	m->arrival = ob_now();
	log_msg(LOG_INFO, "ev=followed_551 qid=%s rcpt=%s forward=%s",
		q->m->qid_str, log_q(r->mailbox), log_q(oc->forward));
	return m;
}
