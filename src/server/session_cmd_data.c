/*
 * session_cmd_data.c - DATA (RFC 5321 4.1.1.4), BDAT (RFC 3030), the
 * readers of their text, the watch on a slow client, and the hand-over
 * of a finished message to the spool.
 *
 * Who calls it: the command table of session.c (the checks and proceeds
 * of DATA and BDAT, once the transaction has a recipient) and its
 * command loop (session_data_read, session_bdat_read while the text
 * comes in).
 *
 * Promises: the 250 is sent only from the spool's commit callback, once
 * the message is durable; a message refused for its text (bare CR, NUL,
 * bare LF - with [server] bare_newline = normalize only one beside a line
 * holding only "." - a line over max_line_length, over max_message_size)
 * leaves nothing behind and the transaction is reset.  Lines longer than
 * RFC 5321's 998 octets, up to max_line_length, are stored as they came;
 * with bare_newline = normalize a bare LF is stored as CR LF.  A BDAT
 * chunk that is refused is still read to its end, so its octets are never
 * taken for commands.  With [filter] milter the text goes to the content
 * filter first: its rejection is 550 5.7.1, its tempfail and its failure
 * (unreachable, died, timed out) 451 4.7.1 unless on_failure = accept;
 * its header edits are kept.  The message's flags: those MAIL set
 * (MSG_F_REQUIRETLS), SMTPUTF8 and 8BITMIME, and MSG_F_TLS_OPTIONAL when
 * the stored header holds "TLS-Required: No" and MAIL had no REQUIRETLS
 * (RFC 8689 3, 4.1; with REQUIRETLS the field is ignored and stays in
 * the text, which RFC 8689 allows to be relayed on).  RFC 8689 asks
 * nothing of the Received: field; it is written as before.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/arh.h"
#include "auth/hdr.h"
#include "policy/authcheck.h"
#include "policy/milter.h"
#include "proto/esmtp.h"
#include "server/session_int.h"
#include "util/log.h"
#include "util/str.h"

#define RECEIVED_MAX 1024
/* Recipients named to the content filter at most (the transaction may
 * hold more; all of them get the filter's verdict). */
#define SMTP_RCPT_MAX_FILTER 1000

/* A content-filter check in flight; s is NULL once the session is gone. */
struct data_pending {
	struct session *s;
};

#define SESSION_RATE_GRACE_MAX 30 /* seconds before the rate counts */
#define SESSION_RATE_CHECKS 3	   /* checks per grace period */

/* The grace period: 30 s, or idle_timeout when that is shorter. */
static unsigned
rate_grace(const struct session *s)
{
	uint64_t idle = s->srv->cfg->server_idle_timeout;

	return idle < SESSION_RATE_GRACE_MAX ? (unsigned)idle
					     : SESSION_RATE_GRACE_MAX;
}

static void
rate_arm(struct session *s)
{
	unsigned every = rate_grace(s) / SESSION_RATE_CHECKS;
	struct timeval tv = {every > 0 ? every : 1, 0};

	evtimer_add(s->ev_rate, &tv);
}

/*
 * A few times per grace period while text is read: a client that,
 * after the grace period, averages less than min_data_rate is a slowloris
 * holding a session open one octet at a time - 421 4.4.2 (RFC 5321
 * 4.5.3.2 lets a server end a stalled transfer).
 */
static void
on_rate_check(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct timespec now;
	double elapsed;

	(void)fd;
	(void)what;
	if (s->state != SESSION_DATA && s->state != SESSION_BDAT)
		return; /* the text has ended; the next DATA re-arms */
	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed = (double)(now.tv_sec - s->data_start.tv_sec) +
		  (double)(now.tv_nsec - s->data_start.tv_nsec) / 1e9;
	if (elapsed >= rate_grace(s) &&
	    (double)s->data_octets <
		    elapsed * (double)s->srv->cfg->server_min_data_rate) {
		log_msg(LOG_INFO, "ev=slow_client sid=%s client=%s octets=%llu "
			"seconds=%.0f", s->sid, s->client,
			(unsigned long long)s->data_octets, elapsed);
		session_reply(s, REPLY_TIMEOUT, s->srv->cfg->server_hostname);
		return;
	}
	rate_arm(s);
}

static void
rate_start(struct session *s)
{
	clock_gettime(CLOCK_MONOTONIC, &s->data_start);
	s->data_octets = 0;
	if (s->srv->cfg->server_min_data_rate == 0)
		return;
	if (s->ev_rate == NULL)
		s->ev_rate = evtimer_new(s->srv->base, on_rate_check, s);
	if (s->ev_rate != NULL)
		rate_arm(s);
}

bool
cmd_data_check(struct session *s, const struct cmd *c)
{
	/* RFC 2920 3.1: DATA ends a pipelined group, whatever its reply.
	 * Text sent before the reply would otherwise run as commands when
	 * DATA fails. */
	if (session_check_sync(s, "DATA"))
		return false;
	return cmd_check_no_args(s, c);
}

/* The reader's limits from the config ([server] max_message_size,
 * max_line_length, bare_newline). */
static void
reader_start(struct session *s, bool is_bdat)
{
	const struct config *cfg = s->srv->cfg;
	struct data_limits lim = {
	    .max_size = cfg->server_max_message_size,
	    .max_line = cfg->server_max_line_length,
	    .is_lf_normalized =
		strcmp(cfg->server_bare_newline, "normalize") == 0,
	};

	data_reader_init(&s->txn->reader, is_bdat, &lim);
}

void
cmd_data(struct session *s, const struct cmd *c)
{
	(void)c;
	reader_start(s, false);
	s->state = SESSION_DATA;
	rate_start(s);
	session_reply(s, REPLY_DATA_GO);
}

/* Parses "SIZE [LAST]"; false on bad syntax. */
static bool
bdat_args(const struct cmd *c, uint64_t *size_out, bool *is_last_out)
{
	const char *sp = memchr(c->arg, ' ', c->arg_len);
	size_t n = sp ? (size_t)(sp - c->arg) : c->arg_len;

	if (!esmtp_parse_uint(c->arg, n, size_out))
		return false;
	*is_last_out = false;
	if (sp == NULL)
		return true;
	*is_last_out = str_eq_nocase(sp + 1, c->arg_len - n - 1, "LAST");
	return *is_last_out;
}

bool
cmd_bdat_check(struct session *s, const struct cmd *c)
{
	uint64_t size;
	bool is_last;

	if (!bdat_args(c, &size, &is_last)) {
		/* The chunk's length is unknown: its octets cannot be told
		 * from commands, so the session ends (RFC 3030 2). */
		session_reply(s, REPLY_BDAT_SYNTAX);
		session_reply(s, REPLY_TOO_MANY_ERRORS,
			      s->srv->cfg->server_hostname);
		return false;
	}
	s->bdat_left = size;
	s->is_bdat_last = is_last;
	return true;
}

void
cmd_bdat_refuse(struct session *s, enum reply_id id)
{
	s->state = SESSION_BDAT;
	s->is_bdat_discard = true;
	s->bdat_error = id;
}

void
cmd_bdat(struct session *s, const struct cmd *c)
{
	(void)c;
	s->state = SESSION_BDAT;
	if (!s->txn->is_bdat) {
		s->txn->is_bdat = true;
		reader_start(s, true);
		rate_start(s);
	}
}

/* The Received: header (RFC 5321 4.4, RFC 3848 protocol names). */
static size_t
received_format(struct session *s, char *buf, size_t size)
{
	const struct msg *m = s->txn->msg;
	char proto[16], date[64], fortxt[SMTP_PATH_MAX + 16] = "";
	char tls[sizeof s->tls_info + 16] = "";
	struct tm tm;
	time_t now = (time_t)m->arrival;
	int n;

	/* RFC 3848 and RFC 6531: ESMTP[S][A], UTF8SMTP[S][A]. */
	snprintf(proto, sizeof proto, "%s%s%s",
		 !s->is_esmtp ? "SMTP" : s->txn->is_smtputf8 ? "UTF8SMTP"
							      : "ESMTP",
		 s->is_esmtp && s->is_tls ? "S" : "",
		 s->is_esmtp && s->is_auth ? "A" : "");
	if (s->is_tls)
		snprintf(tls, sizeof tls, "\r\n\t(%s)", s->tls_info);
	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (m->n_rcpts == 1)
		snprintf(fortxt, sizeof fortxt, "\r\n\tfor <%s>",
			 m->rcpts[0].orig);
	n = snprintf(buf, size,
		     "Received: from %s (%s)%s\r\n\tby %s (postern) with %s "
		     "id %s%s;\r\n\t%s\r\n",
		     s->helo, s->literal, tls, s->srv->cfg->server_hostname,
		     proto, m->qid_str, fortxt, date);
	return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* WSP and line ends around a field value (folding included). */
static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * True when the header block of text[0..len) (never the body) has a
 * "TLS-Required: No" field, name and value in any case (RFC 8689 3).
 * Another value is not defined and asks for nothing.
 */
static bool
has_tls_required_no(const char *text, size_t len)
{
	struct hdr_iter it;
	struct hdr_field f;

	hdr_iter_init(&it, text, len);
	while (hdr_next(&it, &f)) {
		const char *v = f.value;
		size_t n = f.value_len;
		if (!hdr_name_is(&f, "TLS-Required"))
			continue;
		while (n > 0 && is_fws(v[0])) {
			v++;
			n--;
		}
		while (n > 0 && is_fws(v[n - 1]))
			n--;
		if (str_eq_nocase(v, n, "No"))
			return true;
	}
	return false;
}

static enum reply_id
text_error(unsigned flags)
{
	if (flags & DATA_ERR_TOO_BIG)
		return REPLY_SIZE_TOO_BIG;
	if (flags & DATA_ERR_NUL)
		return REPLY_DATA_NUL;
	if (flags & DATA_ERR_BARE_LF)
		return REPLY_DATA_BARE_LF;
	if (flags & DATA_ERR_BARE_CR)
		return REPLY_DATA_BARE_CR;
	if (flags & DATA_ERR_LINE_TOO_LONG)
		return REPLY_DATA_LINE_OVER_LIMIT;
	return REPLY_COUNT;
}

static void
on_committed(void *arg, struct msg *m, int err)
{
	struct commit_ticket *tk = arg;
	struct session *s = tk->s;
	struct server *srv = tk->srv;

	srv->commits_pending--;
	if (err == 0)
		hist_observe(&srv->stats.eod, stats_now() - tk->eod_at);
	free(tk);
	if (err == 0) {
		srv->n_queued++;
		log_msg(LOG_INFO,
			"ev=queued qid=%s sid=%s from=%s rcpts=%zu "
			"size=%zu%s%s",
			m->qid_str, s ? s->sid : "-", log_q(m->sender),
			m->n_rcpts, m->data_len,
			m->flags & MSG_F_REQUIRETLS ? " requiretls=yes" : "",
			m->flags & MSG_F_TLS_OPTIONAL ? " tls_required=no"
						      : "");
	}
	if (s != NULL && s->state == SESSION_CLOSING)
		s = NULL; /* it said 421 meanwhile (shutdown deadline) */
	if (s != NULL) {
		s->ticket = NULL;
		s->state = SESSION_CMD;
		if (err == 0) {
			s->n_msgs++;
			s->n_bad = 0; /* errors count until mail is delivered */
			session_reply(s, REPLY_QUEUED, m->qid_str);
		} else {
			log_msg(LOG_ERR, "ev=spool_failed sid=%s qid=%s "
				"error=%s", s->sid, m->qid_str,
				log_q(strerror(err)));
			session_reply(s, err == ENOSPC || err == EDQUOT
						 ? REPLY_NO_SPACE
						 : REPLY_SPOOL_ERROR);
		}
		if (srv->is_stopping)
			session_shutdown(s);
	}
	if (err == 0)
		route_committed(&srv->router, m);
	else
		msg_free(m);
	if (s != NULL && s->state == SESSION_CMD)
		session_resume(s);
}

/*
 * Builds the message (our Received: header, then text[0..len), or with
 * text NULL the transaction's text buffer) and hands it to the spool;
 * the 250 comes from on_committed.
 */
static void
data_commit(struct session *s, const char *text, size_t len)
{
	struct txn *t = s->txn;
	struct msg *m = t->msg;
	char received[RECEIVED_MAX];
	size_t rlen = received_format(s, received, sizeof received);
	size_t alen = t->auth_header ? strlen(t->auth_header) : 0, slen = 0;
	char *body, *sig = NULL;
	bool is_outside = s->kind == LISTEN_SMTP && !s->is_auth;

	if (text == NULL) /* straight from the text buffer: one copy */
		len = evbuffer_get_length(t->text);
	/* Mail that leaves from us (submission, smtps, a login) is signed
	 * when its From: domain has a [dkim] key. */
	if (!is_outside && len > 0)
		sig = route_sign(&s->srv->router,
				 text ? text
				      : (const char *)evbuffer_pullup(t->text, -1),
				 len);
	slen = sig ? strlen(sig) : 0;
	m->data = malloc(alen + slen + rlen + len + 1);
	s->ticket = m->data ? malloc(sizeof *s->ticket) : NULL;
	if (s->ticket != NULL)
		s->ticket->eod_at = s->txn->eod_at;
	if (s->ticket == NULL) {
		free(sig);
		session_txn_reset(s);
		session_reply(s, REPLY_NO_MEMORY);
		return;
	}
	/* Our Authentication-Results or DKIM-Signature, then our
	 * Received:, at the top. */
	memcpy(m->data, t->auth_header ? t->auth_header : "", alen);
	memcpy(m->data + alen, sig ? sig : "", slen);
	free(sig);
	alen += slen;
	memcpy(m->data + alen, received, rlen);
	body = m->data + alen + rlen;
	if (text == NULL)
		evbuffer_remove(t->text, body, len);
	else
		memcpy(body, text, len);
	/* Mail from outside cannot speak for us: any Authentication-Results
	 * it carries under our name goes (RFC 8601 5). */
	if (is_outside)
		len = arh_strip(body, len, s->srv->cfg->server_hostname);
	/* RFC 8689 4.1: REQUIRETLS on MAIL outranks the header field. */
	if (!(m->flags & MSG_F_REQUIRETLS) && has_tls_required_no(body, len))
		m->flags |= MSG_F_TLS_OPTIONAL;
	m->data_len = alen + rlen + len;
	s->ticket->s = s;
	s->ticket->srv = s->srv;
	t->msg = NULL; /* the spool holds it now */
	session_txn_reset(s);
	s->state = SESSION_COMMIT;
	s->srv->commits_pending++;
	spool_commit(s->srv->spool, m, on_committed, s->ticket);
}

/* The text of a filter's reply without its codes ("550 5.7.1 Spam"). */
static const char *
reply_text(const char *reply)
{
	const char *p = reply;

	if (strlen(p) >= 4 && p[3] == ' ')
		p += 4;
	if (p[0] >= '2' && p[0] <= '5' && p[1] == '.') {
		const char *sp = strchr(p, ' ');
		p = sp ? sp + 1 : p + strlen(p);
	}
	return p;
}

static void
on_filtered(void *arg, struct milter_result *res)
{
	struct data_pending *p = arg;
	struct session *s = p->s;
	const char *why = res->reply[0] ? reply_text(res->reply) : "";

	free(p);
	if (s == NULL || s->state == SESSION_CLOSING)
		return;
	s->data_pending = NULL;
	s->state = SESSION_CMD;
	log_msg(LOG_INFO, "ev=filtered sid=%s qid=%s verdict=%d", s->sid,
		s->txn->msg->qid_str, (int)res->verdict);
	switch (res->verdict) {
	case MILTER_ACCEPT:
		/* With header edits, the filter's text; else ours. */
		data_commit(s, res->data, res->data ? res->data_len : 0);
		break;
	case MILTER_REJECT:
		session_txn_reset(s);
		session_reply(s, REPLY_FILTER_REJECT,
			      why[0] ? why : "refused");
		break;
	case MILTER_TEMPFAIL:
		session_txn_reset(s);
		session_reply(s, REPLY_FILTER_TEMPFAIL, "asked to try later");
		break;
	case MILTER_DISCARD:
		/* Accepted and dropped, as the filter asked (the 250 is
		 * true: the server took responsibility and discarded). */
		log_msg(LOG_INFO, "ev=discarded sid=%s qid=%s reason=milter",
			s->sid, s->txn->msg->qid_str);
		session_reply(s, REPLY_QUEUED, s->txn->msg->qid_str);
		session_txn_reset(s);
		break;
	default:
		log_msg(LOG_ERR, "ev=local_error sid=%s part=milter "
			"milter=%s on_failure=%s", s->sid,
			log_q(s->srv->cfg->filter_milter),
			s->srv->cfg->filter_on_failure);
		if (strcmp(s->srv->cfg->filter_on_failure, "accept") == 0) {
			data_commit(s, NULL, 0);
			break;
		}
		session_txn_reset(s);
		session_reply(s, REPLY_FILTER_TEMPFAIL, "is unavailable");
		break;
	}
	if (s->state == SESSION_CMD)
		session_resume(s);
}

/* Asks the content filter about the text before it is stored. */
static void
filter_start(struct session *s)
{
	struct txn *t = s->txn;
	const char *rcpts[SMTP_RCPT_MAX_FILTER];
	struct milter_msg mm = {0};
	struct data_pending *p = malloc(sizeof *p);
	size_t n = 0;

	if (p == NULL) {
		session_txn_reset(s);
		session_reply(s, REPLY_NO_MEMORY);
		return;
	}
	for (size_t i = 0; i < t->msg->n_rcpts && n < SMTP_RCPT_MAX_FILTER; i++)
		rcpts[n++] = t->msg->rcpts[i].orig;
	mm.client_ip = s->ip;
	mm.client_name = s->literal;
	mm.helo = s->helo;
	mm.sender = t->msg->sender;
	mm.rcpts = rcpts;
	mm.n_rcpts = n;
	mm.data = (const char *)evbuffer_pullup(t->text, -1);
	mm.data_len = evbuffer_get_length(t->text);
	mm.qid = t->msg->qid_str;
	p->s = s;
	s->data_pending = p;
	s->state = SESSION_POLICY;
	milter_check(s->srv->milter, &mm, on_filtered, p);
}

void
session_data_cancel(struct session *s)
{
	if (s->data_pending != NULL && s->state == SESSION_POLICY &&
	    s->txn != NULL && s->txn->auth != NULL) {
		/* the checks' callback will not run: its pending goes here */
		authcheck_cancel(s->txn->auth);
		s->txn->auth = NULL;
		free(s->data_pending);
		s->data_pending = NULL;
		return;
	}
	if (s->data_pending != NULL)
		s->data_pending->s = NULL;
	s->data_pending = NULL;
}

/* The text is stored, or goes to the content filter first. */
static void
data_store(struct session *s)
{
	if (s->srv->milter != NULL) {
		filter_start(s);
		return;
	}
	data_commit(s, NULL, 0);
}

static void
on_authchecked(void *arg, const struct authcheck_verdict *v)
{
	struct data_pending *p = arg;
	struct session *s = p->s;

	free(p);
	if (s == NULL || s->state == SESSION_CLOSING)
		return;
	s->data_pending = NULL;
	s->state = SESSION_CMD;
	s->txn->auth = NULL; /* it frees itself after this call */
	log_msg(LOG_INFO, "ev=authchecked sid=%s qid=%s %s action=%s%s%s",
		s->sid, s->txn->msg->qid_str, v->summary,
		authcheck_action_name(v->action),
		v->why[0] ? " why=" : "", v->why[0] ? log_q(v->why) : "");
	switch (v->action) {
	case AUTHCHECK_ACCEPT:
		s->txn->auth_header = strdup(v->header);
		if (s->txn->auth_header == NULL) {
			session_txn_reset(s);
			session_reply(s, REPLY_NO_MEMORY);
			break;
		}
		data_store(s);
		break;
	case AUTHCHECK_REJECT_DMARC:
		session_txn_reset(s);
		session_reply(s, REPLY_DMARC_REJECT, v->why);
		break;
	case AUTHCHECK_REJECT_SPF:
		session_txn_reset(s);
		session_reply(s, REPLY_SPF_REJECT, v->why);
		break;
	default:
		log_msg(LOG_ERR, "ev=local_error sid=%s part=dns check=auth "
			"why=%s", s->sid, log_q(v->why));
		session_txn_reset(s);
		session_reply(s, REPLY_AUTHCHECK_TEMPFAIL, v->why);
		break;
	}
	if (s->state == SESSION_CMD)
		session_resume(s);
}

/* SPF, DKIM and DMARC before the text is stored. */
static void
auth_start(struct session *s)
{
	struct txn *t = s->txn;
	struct data_pending *p = malloc(sizeof *p);

	if (p == NULL) {
		session_txn_reset(s);
		session_reply(s, REPLY_NO_MEMORY);
		return;
	}
	p->s = s;
	s->data_pending = p;
	s->state = SESSION_POLICY;
	authcheck_finish(t->auth, (const char *)evbuffer_pullup(t->text, -1),
			 evbuffer_get_length(t->text), on_authchecked, p);
}

/* Hands the finished text to the spool (end of DATA / BDAT LAST). */
static void
data_finish(struct session *s)
{
	struct txn *t = s->txn;
	enum reply_id id = text_error(t->reader.flags);
	struct msg *m;

	s->state = SESSION_CMD;
	t->eod_at = stats_now();
	if (id != REPLY_COUNT) {
		/* the long-line reply names the limit to fold to */
		unsigned max_line = (unsigned)t->reader.lim.max_line;
		session_txn_reset(s);
		if (id == REPLY_DATA_LINE_OVER_LIMIT)
			session_reply(s, id, max_line);
		else
			session_reply(s, id);
		return;
	}
	m = t->msg;
	msg_set_qid(m, spool_new_qid(s->srv->spool));
	m->arrival = (int64_t)time(NULL);
	/* |=: MAIL has set MSG_F_REQUIRETLS already */
	m->flags |= (t->is_smtputf8 ? MSG_F_SMTPUTF8 : 0) |
		    (t->is_8bitmime ? MSG_F_8BITMIME : 0);
	if (t->auth != NULL) {
		auth_start(s);
		return;
	}
	data_store(s);
}

/* Feeds up to n octets of input to the transaction's reader. */
static enum data_result
feed_reader(struct session *s, struct evbuffer *in, size_t n)
{
	struct txn *t = s->txn;
	char out[SESSION_DATA_CHUNK];
	struct evbuffer_iovec v;
	size_t used = 0, consumed = 0, take;
	enum data_result r;

	if (evbuffer_peek(in, (ev_ssize_t)n, NULL, &v, 1) < 1)
		return DATA_MORE;
	take = v.iov_len < n ? v.iov_len : n;
	if (DATA_OUT_MAX(take) > sizeof out)
		take = sizeof out / 2; /* a bare LF may become CR LF */
	r = data_reader_feed(&t->reader, v.iov_base, take, out, &used,
			     &consumed);
	if (used > 0 && evbuffer_add(t->text, out, used) != 0)
		t->reader.flags |= DATA_ERR_TOO_BIG;
	evbuffer_drain(in, consumed);
	if (s->state == SESSION_BDAT)
		s->bdat_left -= consumed;
	s->data_octets += consumed;
	return r;
}

bool
session_data_read(struct session *s, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);

	if (len == 0)
		return false;
	if (feed_reader(s, in, len) == DATA_END)
		data_finish(s);
	return true;
}

bool
session_bdat_read(struct session *s, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	size_t n = s->bdat_left < len ? (size_t)s->bdat_left : len;

	if (s->bdat_left > 0) {
		if (n == 0)
			return false;
		if (s->is_bdat_discard) {
			evbuffer_drain(in, n);
			s->bdat_left -= n;
		} else {
			feed_reader(s, in, n);
		}
		if (s->bdat_left > 0)
			return true;
	}
	s->state = SESSION_CMD;
	if (s->is_bdat_discard) {
		s->is_bdat_discard = false;
		session_reply(s, s->bdat_error);
		return true;
	}
	if (s->is_bdat_last) {
		data_reader_finish(&s->txn->reader);
		data_finish(s);
		return true;
	}
	if (s->txn->reader.flags & DATA_ERR_TOO_BIG) {
		session_txn_reset(s);
		session_reply(s, REPLY_SIZE_TOO_BIG);
		return true;
	}
	session_reply(s, REPLY_BDAT_CHUNK_OK,
		      (unsigned)evbuffer_get_length(s->txn->text));
	return true;
}
