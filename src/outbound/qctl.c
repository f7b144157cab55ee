/*
 * qctl.c - `postern queue` on the server's side: list, show, flush,
 * delete, hold and release, answered from the queue in memory (the
 * control socket passes the request; server/ctl.c).
 *
 *	list          a line per message (QID SIZE ARRIVAL <SENDER>), an
 *	              indented line per recipient still queued (address,
 *	              state, attempts, next try, last reply), a count
 *	show ID       the envelope, each recipient with its last reply in
 *	              words, and the message's header
 *	flush         every deferred recipient is due now
 *	delete ID     dropped without a bounce (spool done records)
 *	hold ID       no attempt (and no expiry) until release ID
 *
 * Formats are in docs/design/outbound.md; ID is the 16-hex-digit queue
 * id the 250 reply and the logs name.  list runs through the messages
 * once: 100,000 take well under a second.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outbound/outbound_int.h"
#include "util/log.h"
#include "util/str.h"

#define QCTL_TIME_MAX 32
#define QCTL_EXPLAIN_MAX 2048
#define QCTL_HEADER_MAX 8192

static const char *
iso_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		str_set(buf, size, "-");
	return buf;
}

static const char *
state_name(const struct qmsg *q, const struct qrcpt *r, int64_t now)
{
	if (q->is_held && r->state != QR_ACTIVE)
		return "held";
	switch (r->state) {
	case QR_READY:
		return "queued";
	case QR_ACTIVE:
		return "active";
	case QR_FINISHING:
		return "bouncing";
	case QR_WAITING:
		return r->attempts == 0 && r->last == NULL && r->next_try <= now
			   ? "queued"
			   : "deferred";
	default:
		return "done";
	}
}

static bool
is_listed(const struct qrcpt *r)
{
	return r->state != QR_NOT_MINE && r->state != QR_DONE;
}

/* Quotes s for a list line: ' inside becomes ". */
static void
put_quoted(struct evbuffer *out, const char *s)
{
	evbuffer_add(out, "'", 1);
	for (; *s; s++)
		evbuffer_add(out, *s == '\'' ? "\"" : s, 1);
	evbuffer_add(out, "'", 1);
}

static void
list(struct outbound *ob, struct evbuffer *out)
{
	int64_t now = ob_now();
	size_t n_msgs = 0, n_rcpts = 0;
	char t1[QCTL_TIME_MAX], t2[QCTL_TIME_MAX];

	evbuffer_add(out, "ok\n", 3);
	for (const struct qmsg *q = ob->head; q; q = q->next) {
		bool is_first = true;
		for (size_t i = 0; i < q->m->n_rcpts; i++) {
			const struct qrcpt *r = &q->r[i];
			if (!is_listed(r))
				continue;
			if (is_first) {
				evbuffer_add_printf(
				    out, "%s  %zu  %s  <%s>\n", q->m->qid_str,
				    q->m->data_len,
				    iso_time(q->m->arrival, t1, sizeof t1),
				    q->m->sender);
				is_first = false;
				n_msgs++;
			}
			n_rcpts++;
			evbuffer_add_printf(
			    out,
			    "    %s  %s  attempts=%u  "
			    "next=%s  last=",
			    q->m->rcpts[i].mailbox, state_name(q, r, now),
			    r->attempts,
			    r->state == QR_WAITING && !q->is_held
				? iso_time(r->next_try, t2, sizeof t2)
				: "-");
			put_quoted(out, r->last ? r->last : "");
			evbuffer_add(out, "\n", 1);
		}
	}
	evbuffer_add_printf(out, "%zu message%s, %zu recipient%s\n", n_msgs,
			    n_msgs == 1 ? "" : "s", n_rcpts,
			    n_rcpts == 1 ? "" : "s");
}

/* The message's header, up to QCTL_HEADER_MAX octets, LF lines. */
static void
put_header(struct evbuffer *out, const struct msg *m)
{
	const char *p = m->data, *end = m->data + m->data_len;
	size_t n = 0;

	while (p < end && n < QCTL_HEADER_MAX) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0)
			break;
		evbuffer_add(out, "  ", 2);
		evbuffer_add(out, p, len);
		evbuffer_add(out, "\n", 1);
		n += len;
		p = nl ? nl + 1 : end;
	}
}

static void
show(struct outbound *ob, const struct qmsg *q, struct evbuffer *out)
{
	int64_t now = ob_now();
	char t[QCTL_TIME_MAX], words[QCTL_EXPLAIN_MAX];

	evbuffer_add_printf(out,
			    "ok\nqid: %s\narrival: %s\nsender: <%s>\n"
			    "size: %zu\nheld: %s\n",
			    q->m->qid_str, iso_time(q->m->arrival, t, sizeof t),
			    q->m->sender, q->m->data_len,
			    q->is_held ? "yes" : "no");
	if (q->m->envid)
		evbuffer_add_printf(out, "envid: %s\n", q->m->envid);
	if (q->m->flags & MSG_F_REQUIRETLS)
		evbuffer_add_printf(out, "tls: REQUIRETLS (sent only over "
				    "verified TLS, RFC 8689)\n");
	if (q->m->flags & MSG_F_TLS_OPTIONAL)
		evbuffer_add_printf(out, "tls: TLS-Required: No (TLS policy "
				    "failures do not hold it, RFC 8689)\n");
	for (size_t i = 0; i < q->m->n_rcpts; i++) {
		const struct qrcpt *r = &q->r[i];
		const struct msg_rcpt *mr = &q->m->rcpts[i];
		if (r->state == QR_NOT_MINE)
			continue;
		evbuffer_add_printf(out,
				    "recipient: %s\n  state: %s\n"
				    "  attempts: %u\n",
				    mr->mailbox, state_name(q, r, now),
				    r->attempts);
		if (r->state == QR_WAITING && !q->is_held)
			evbuffer_add_printf(out, "  next try: %s\n",
					    iso_time(r->next_try, t, sizeof t));
		if (r->last == NULL)
			continue;
		evbuffer_add_printf(out, "  last reply: %s\n", r->last);
		ob->hooks.explain(ob->hooks.arg, r->last, words, sizeof words);
		if (words[0] != '\0')
			evbuffer_add_printf(out, "  in words: %s\n", words);
	}
	evbuffer_add(out, "header:\n", 8);
	put_header(out, q->m);
}

static void
set_held(struct outbound *ob, struct qmsg *q, bool is_held)
{
	if (is_held)
		schedule_hold(q, ob_now());
	else
		schedule_release(q, ob_now());
	state_flag(ob, q, is_held ? 'h' : 'u');
	log_msg(LOG_INFO, "ev=%s qid=%s", is_held ? "held" : "released",
		q->m->qid_str);
	if (!is_held)
		dispatch_mark_due(ob, q);
}

static void
delete_msg(struct outbound *ob, struct qmsg *q)
{
	q->is_deleted = true;
	state_flag(ob, q, 'd');
	log_msg(LOG_INFO, "ev=deleted qid=%s sender=%s", q->m->qid_str,
		log_q(q->m->sender));
	for (size_t i = 0; i < q->m->n_rcpts; i++)
		if (q->r[i].state == QR_WAITING || q->r[i].state == QR_READY)
			queue_mark_done(ob, q, i, NULL, NULL);
	/* ACTIVE ones are marked when their connection reports. */
	queue_drop_done(ob, q);
}

static size_t
flush(struct outbound *ob)
{
	int64_t now = ob_now();
	size_t n = 0;

	for (struct qmsg *q = ob->head; q; q = q->next) {
		size_t before = n;
		for (size_t i = 0; i < q->m->n_rcpts; i++)
			if (q->r[i].state == QR_WAITING && !q->is_held) {
				q->r[i].next_try = now;
				n++;
			}
		if (n > before)
			dispatch_mark_due(ob, q);
	}
	/* A flush means "try now": destinations resting after a failure
	 * are tried again too (as Postfix's postqueue -f). */
	for (size_t b = 0; b < OB_DEST_BUCKETS; b++)
		for (struct dest *d = ob->dests[b]; d; d = d->hnext)
			d->dead_until = 0;
	log_msg(LOG_INFO, "ev=flush rcpts=%zu", n);
	ob_wake(ob);
	return n;
}

void
outbound_metrics(struct outbound *ob, struct outbound_metrics *out)
{
	int64_t now = ob_now();

	memset(out, 0, sizeof *out);
	out->sent_remote = ob->n_sent - ob->n_sent_lmtp;
	out->sent_lmtp = ob->n_sent_lmtp;
	out->deferred = ob->n_deferred;
	out->bounced = ob->n_bounced;
	out->delivery = ob->delivery_hist;
	for (size_t b = 0; b < OB_DEST_BUCKETS; b++)
		for (struct dest *d = ob->dests[b]; d; d = d->hnext) {
			d->m_count = 0;
			d->m_last = NULL;
			d->m_next = 0;
		}
	for (struct qmsg *q = ob->head; q; q = q->next)
		for (size_t i = 0; i < q->m->n_rcpts; i++) {
			const struct qrcpt *r = &q->r[i];
			const char *st;
			struct dest *d;
			if (r->state == QR_NOT_MINE || r->state == QR_DONE)
				continue;
			st = state_name(q, r, now);
			out->queued += strcmp(st, "queued") == 0;
			out->active += strcmp(st, "active") == 0;
			out->waiting += strcmp(st, "deferred") == 0;
			out->held += strcmp(st, "held") == 0;
			out->bouncing += strcmp(st, "bouncing") == 0;
			d = dest_of(ob, &q->m->rcpts[i]);
			if (d == NULL)
				continue;
			d->m_count++;
			if (r->last != NULL)
				d->m_last = r->last;
			if (r->state == QR_WAITING &&
			    (d->m_next == 0 || r->next_try < d->m_next))
				d->m_next = r->next_try;
		}
	/* The top destinations by recipients, by insertion into a short
	 * sorted array; the rest counted together. */
	for (size_t b = 0; b < OB_DEST_BUCKETS; b++)
		for (struct dest *d = ob->dests[b]; d; d = d->hnext) {
			size_t k;
			if (d->m_count == 0)
				continue;
			for (k = out->n_top; k > 0 &&
					     out->top[k - 1].recipients <
						 d->m_count;
			     k--)
				;
			if (k == OUTBOUND_TOP_DESTS) {
				out->other_recipients += d->m_count;
				continue;
			}
			if (out->n_top == OUTBOUND_TOP_DESTS)
				out->other_recipients +=
				    out->top[OUTBOUND_TOP_DESTS - 1].recipients;
			else
				out->n_top++;
			memmove(&out->top[k + 1], &out->top[k],
				(out->n_top - 1 - k) * sizeof out->top[0]);
			str_set(out->top[k].destination,
				sizeof out->top[k].destination, d->key);
			out->top[k].recipients = d->m_count;
			str_set(out->top[k].last, sizeof out->top[k].last,
				d->m_last ? d->m_last : "");
			out->top[k].next_try = d->m_next;
		}
}

int
outbound_ctl(struct outbound *ob, const char *request, struct evbuffer *out)
{
	char verb[16] = "", id[MSG_QID_LEN + 8] = "";
	struct qmsg *q;

	if (sscanf(request, "%15s %23s", verb, id) < 1) {
		evbuffer_add_printf(out, "error: say list, show ID, flush, "
					 "delete ID, hold ID or release ID\n");
		return -1;
	}
	if (strcmp(verb, "list") == 0) {
		list(ob, out);
		return 0;
	}
	if (strcmp(verb, "flush") == 0) {
		evbuffer_add_printf(out, "ok flushed %zu recipient(s)\n",
				    flush(ob));
		return 0;
	}
	if (strcmp(verb, "show") != 0 && strcmp(verb, "delete") != 0 &&
	    strcmp(verb, "hold") != 0 && strcmp(verb, "release") != 0) {
		evbuffer_add_printf(out,
				    "error: unknown queue command '%s'; "
				    "use list, show, flush, delete, hold or "
				    "release\n",
				    verb);
		return -1;
	}
	if (id[0] == '\0' || (q = queue_find(ob, id)) == NULL ||
	    q->is_deleted) {
		evbuffer_add_printf(out,
				    "error: no message %s in the queue; "
				    "`postern queue list` shows the IDs\n",
				    id[0] ? id : "(none given)");
		return -1;
	}
	if (strcmp(verb, "show") == 0)
		show(ob, q, out);
	else if (strcmp(verb, "delete") == 0) {
		evbuffer_add_printf(out, "ok deleted %s\n", q->m->qid_str);
		delete_msg(ob, q);
	} else {
		bool is_hold = strcmp(verb, "hold") == 0;
		set_held(ob, q, is_hold);
		evbuffer_add_printf(out, "ok %s %s\n",
				    is_hold ? "held" : "released",
				    q->m->qid_str);
	}
	return 0;
}
