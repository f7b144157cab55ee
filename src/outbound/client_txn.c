/*
 * client_txn.c - the transactions of one connection (client.c made it
 * and greeted the peer): per job MAIL, RCPT for each recipient, DATA, the
 * text dot-stuffed, the final dot; then the next job of the destination
 * (RSET first after a failed one) or QUIT.
 *
 * With PIPELINING (RFC 2920) MAIL, the RCPTs and DATA leave in one write
 * and the replies are matched in order.  LMTP answers the dot once per
 * accepted recipient (RFC 2033 4.2).  Every reply goes through react.c,
 * which decides each recipient's outcome; client_job_done() hands them to
 * finish_job().  What this peer cannot take (SMTPUTF8, SIZE, a text that
 * cannot be converted) is bounced before MAIL.  The text leaves as the
 * spool holds it (CRLF lines: no bare CR or LF can exist there) unless
 * it has lines over 998 octets, or 8-bit octets for a peer without
 * 8BITMIME (RFC 6152 3): then proto/mime7.c folds and encodes it, the
 * same way for mail from `postern send`, relayed mail and bounces, and
 * SIZE= counts what is sent.  A '.' is doubled at each line start (RFC
 * 5321 4.5.2).  A reply that ends the connection
 * (421, out of step) makes a function here return false: client.c ends
 * it, this file never calls back into client.c.
 */
#include <stdlib.h>
#include <string.h>

#include "outbound/client_int.h"
#include "proto/mime7.h"
#include "util/log.h"
#include "util/str.h"

#define CLIENT_CMD_MAX 2048
#define CLIENT_XTEXT_MAX 1024
#define CLIENT_QUIT_SECONDS 10

/* Every undecided recipient of the job gets oc. */
void
client_job_settle(struct conn *c, const struct outcome *oc)
{
	struct job *j = c->job;

	if (j == NULL)
		return;
	for (size_t k = 0; k < j->n; k++)
		if (j->out[k].kind == OC_NONE)
			j->out[k] = *oc;
}

/* The job is decided: finish_job() applies its outcomes. */
void
client_job_done(struct conn *c)
{
	struct job *j = c->job;

	if (j == NULL)
		return;
	c->job = NULL;
	if (j->remote[0] == '\0' && c->n_targets > 0)
		str_set(j->remote, sizeof j->remote,
			c->targets[c->ti < c->n_targets ? c->ti : 0].host);
	finish_job(c->ob, j);
}

/* xtext (RFC 3461 4): '+', '=' and octets outside 33..126 as +HH. */
static void
xtext(const char *s, char *buf, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s && o + 4 < size; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 33 || ch > 126 || ch == '+' || ch == '=') {
			buf[o++] = '+';
			buf[o++] = hex[ch >> 4];
			buf[o++] = hex[ch & 15];
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o] = '\0';
}

static bool
has_8bit(const char *s)
{
	return str_has_8bit(s, strlen(s));
}

/* True when the header section (up to the empty line) has 8-bit octets. */
static bool
header_has_8bit(const struct msg *m)
{
	const char *p = m->data, *end = m->data + m->data_len;
	bool is_line_start = true;

	for (; p < end; p++) {
		if (is_line_start && (*p == '\r' || *p == '\n'))
			return false;
		if ((unsigned char)*p >= 0x80)
			return true;
		is_line_start = *p == '\n';
	}
	return false;
}

/* True when the sender or a recipient of the job is non-ASCII. */
static bool
job_has_8bit_addr(const struct job *j)
{
	const struct msg *m = j->q->m;
	bool is_8bit = has_8bit(m->sender);

	for (size_t k = 0; k < j->n; k++)
		is_8bit |= has_8bit(m->rcpts[j->idx[k]].mailbox);
	return is_8bit;
}

/* SIZE= is text_len: the octets of the text as it will be sent. */
static void
send_mail(struct conn *c, size_t text_len)
{
	const struct msg *m = c->job->q->m;
	char params[CLIENT_CMD_MAX] = "", x[CLIENT_XTEXT_MAX];
	char sender[SMTP_PATH_MAX + 1];
	size_t o = 0;

	if (c->caps.ext & EHLO_SIZE)
		o += (size_t)snprintf(params + o, sizeof params - o,
				      " SIZE=%zu", text_len);
	if ((m->flags & MSG_F_8BITMIME) && (c->caps.ext & EHLO_8BITMIME) &&
	    o < sizeof params)
		o += (size_t)snprintf(params + o, sizeof params - o,
				      " BODY=8BITMIME");
	if ((c->caps.ext & EHLO_SMTPUTF8) && o < sizeof params &&
	    ((m->flags & MSG_F_SMTPUTF8) || job_has_8bit_addr(c->job)))
		o += (size_t)snprintf(params + o, sizeof params - o,
				      " SMTPUTF8");
	if ((c->caps.ext & EHLO_DSN) && m->ret != MSG_RET_NONE &&
	    o < sizeof params)
		o += (size_t)snprintf(params + o, sizeof params - o, " RET=%s",
				      m->ret == MSG_RET_FULL ? "FULL" : "HDRS");
	if ((m->flags & MSG_F_REQUIRETLS) && o < sizeof params)
		o += (size_t)snprintf(params + o, sizeof params - o,
				      " REQUIRETLS");
	if ((c->caps.ext & EHLO_DSN) && m->envid != NULL && o < sizeof params) {
		xtext(m->envid, x, sizeof x);
		snprintf(params + o, sizeof params - o, " ENVID=%s", x);
	}
	client_send_line(c, "MAIL FROM:<%s>%s",
			 outbound_sender(c->ob->cfg, m, sender, sizeof sender),
			 params);
	c->cmds[c->n_cmds++] = CMD_MAIL;
}

static void
send_rcpt(struct conn *c, size_t k)
{
	const struct msg_rcpt *r = &c->job->q->m->rcpts[c->job->idx[k]];
	char params[CLIENT_CMD_MAX] = "", x[CLIENT_XTEXT_MAX];
	size_t o = 0;

	if ((c->caps.ext & EHLO_DSN) && r->notify != 0) {
		static const char *const names[] = {"NEVER", "SUCCESS",
						    "FAILURE", "DELAY"};
		const char *sep = " NOTIFY=";
		for (unsigned b = 0; b < 4; b++)
			if ((r->notify & (1u << b)) && o < sizeof params) {
				o += (size_t)snprintf(params + o,
						      sizeof params - o, "%s%s",
						      sep, names[b]);
				sep = ",";
			}
	}
	if ((c->caps.ext & EHLO_DSN) && r->orcpt != NULL && o < sizeof params) {
		const char *semi = strchr(r->orcpt, ';');
		if (semi != NULL) {
			xtext(semi + 1, x, sizeof x);
			snprintf(params + o, sizeof params - o,
				 " ORCPT=%.*s;%s", (int)(semi - r->orcpt),
				 r->orcpt, x);
		}
	}
	client_send_line(c, "RCPT TO:<%s>%s", r->mailbox, params);
	c->cmd_rcpt[c->n_cmds] = k;
	c->cmds[c->n_cmds++] = CMD_RCPT;
}

/*
 * True when m must be converted before this peer may have it: 8-bit
 * text for a peer without 8BITMIME.  Lines over 998 octets alone are
 * folded or encoded when that works, and otherwise sent as they are
 * (most servers take them: liberal where refusing only hurts senders).
 */
static bool
must_convert(const struct conn *c, const struct msg *m)
{
	return !(c->caps.ext & EHLO_8BITMIME) && str_has_8bit(m->data, m->data_len);
}

/* What the text must become for this peer (proto/mime7.h). */
static unsigned
text_flags(const struct conn *c)
{
	return (c->caps.ext & EHLO_8BITMIME) ? 0 : MIME7_F_7BIT;
}

/* A mime7 sink that only counts. */
static void
count_put(void *arg, const char *p, size_t n)
{
	(void)p;
	*(size_t *)arg += n;
}

/* A mime7 sink that dot-stuffs into an evbuffer: a '.' is added before
 * each line that starts with one (RFC 5321 4.5.2). */
struct stuffer {
	struct evbuffer *out;
	bool is_bol;
	char last; /* the last octet of the text, '\n' before any */
};

static void
stuff_put(void *arg, const char *p, size_t n)
{
	struct stuffer *st = arg;
	const char *end = p + n, *seg = p;

	/* Runs of lines go out in one piece. */
	while (p < end) {
		const char *nl;
		if (st->is_bol && *p == '.') {
			evbuffer_add(st->out, seg, (size_t)(p - seg));
			evbuffer_add(st->out, ".", 1);
			seg = p;
		}
		nl = memchr(p, '\n', (size_t)(end - p));
		st->is_bol = nl != NULL;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	evbuffer_add(st->out, seg, (size_t)(end - seg));
	if (n > 0)
		st->last = end[-1];
}

/* The message text, converted if this peer needs it, dot-stuffed, and
 * the final dot.  False (the job settled) when the conversion that
 * txn_refused_locally() found possible is not: the data must not end. */
static bool
send_body(struct conn *c)
{
	const struct msg *m = c->job->q->m;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct stuffer st = {out, true, '\n'};
	unsigned flags = text_flags(c);

	if (mime7_is_needed(m->data, m->data_len, flags)) {
		/* Whole, or not at all: into a buffer of its own first. */
		struct evbuffer *tmp = evbuffer_new();
		enum mime7_result r = MIME7_CONVERTED;
		st.out = tmp;
		if (tmp != NULL)
			r = mime7_convert(m->data, m->data_len, flags,
					  stuff_put, &st);
		if (tmp != NULL && r != MIME7_CONVERTED && !must_convert(c, m)) {
			/* Long lines that cannot be encoded: as they are. */
			evbuffer_free(tmp);
			st = (struct stuffer){out, true, '\n'};
			stuff_put(&st, m->data, m->data_len);
		} else if (tmp == NULL || r != MIME7_CONVERTED) {
			struct outcome oc;
			react_local(&oc, OC_DEFER, "4.3.0",
				    "the message could not be converted for %s",
				    c->peer);
			client_job_settle(c, &oc);
			if (tmp != NULL)
				evbuffer_free(tmp);
			return false;
		} else {
			evbuffer_add_buffer(out, tmp);
			evbuffer_free(tmp);
			st.out = out;
		}
	} else {
		stuff_put(&st, m->data, m->data_len);
	}
	if (st.last != '\n')
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	c->ph = CP_DOT;
	c->n_dot_replies = 0;
	client_set_timeouts(c, c->ob->cfg->delivery_data_timeout,
			    c->ob->cfg->delivery_command_timeout);
	return true;
}

/* No job left for this connection (or it sent its share): QUIT. */
static void
txn_quit(struct conn *c)
{
	c->has_txn = false;
	client_send_line(c, "QUIT");
	c->ph = CP_QUIT;
	/* Nothing rides on the answer: do not hold a slot for it. */
	client_set_timeouts(c, CLIENT_QUIT_SECONDS, CLIENT_QUIT_SECONDS);
}

/* The transaction ended; the next job, or QUIT. */
static void
txn_end(struct conn *c, bool needs_rset)
{
	struct job *j;

	client_job_done(c);
	c->has_txn = false;
	if (c->n_msgs >= c->ob->cfg->delivery_max_messages_per_connection ||
	    c->is_policy_waived || (j = jobs_next(c->ob, c->dest)) == NULL) {
		txn_quit(c);
		return;
	}
	c->job = j;
	if (needs_rset) {
		client_send_line(c, "RSET");
		c->ph = CP_RSET;
		return;
	}
	client_txn_start(c);
}

/*
 * The text for this peer: its length as it will be sent into *len_out,
 * or a 5.6.3 bounce for what cannot be converted (RFC 6152 3: convert or
 * return).  True when it bounced.
 */
static bool
text_refused(struct conn *c, size_t *len_out)
{
	const struct msg *m = c->job->q->m;
	unsigned flags = text_flags(c);
	enum mime7_result r;
	struct outcome oc;
	size_t n = 0;

	*len_out = m->data_len;
	if (!mime7_is_needed(m->data, m->data_len, flags))
		return false;
	r = mime7_convert(m->data, m->data_len, flags, count_put, &n);
	if (r == MIME7_CONVERTED) {
		*len_out = n;
		return false;
	}
	if (!must_convert(c, m)) {
		/* Lines over 998 octets that cannot be encoded: sent as they
		 * are, as Postfix does; most servers take them. */
		log_msg(LOG_INFO,
			"ev=text_sent_unconverted qid=%s peer=%s reason=%s",
			m->qid_str, log_q(c->peer), log_q(mime7_why(r)));
		return false;
	}
	react_local(&oc, OC_BOUNCE, "5.6.3",
		    "the message has 8-bit text, %s does not offer "
		    "8BITMIME (RFC 6152), and it cannot be converted: %s",
		    c->peer, mime7_why(r));
	client_job_settle(c, &oc);
	return true;
}

/*
 * RFC 8689 4.2.1: a message that came with REQUIRETLS goes on only to a
 * next hop that was authenticated - MX records and certificate by DANE,
 * or an MTA-STS policy in enforce mode and a verified certificate; a
 * configured relay or route with a verified certificate - and that
 * offers REQUIRETLS itself.  Otherwise it is returned with 5.7.30.
 */
static bool
requiretls_refused(struct conn *c)
{
	const char *why = NULL;
	struct outcome oc;

	if (!c->is_verified)
		why = c->is_tls ? "its certificate was not verified"
				: "the connection is not encrypted";
	else if (c->dest->kind == DEST_MX && c->n_tlsa == 0 &&
		 !(c->sts != NULL && c->sts->mode == STS_MODE_ENFORCE))
		why = "its MX records are protected neither by DNSSEC (DANE) "
		      "nor by an MTA-STS policy in enforce mode";
	else if (!(c->caps.ext & EHLO_REQUIRETLS))
		why = "it does not offer REQUIRETLS";
	if (why == NULL)
		return false;
	react_local(&oc, OC_BOUNCE, "5.7.30",
		    "REQUIRETLS support required: the message asked to travel "
		    "only over verified TLS (RFC 8689) and %s: %s",
		    c->peer, why);
	client_job_settle(c, &oc);
	return true;
}

/* Local checks before MAIL: what this peer cannot take bounces.  The
 * length of the text as it will be sent goes into *len_out. */
static bool
txn_refused_locally(struct conn *c, size_t *len_out)
{
	const struct msg *m = c->job->q->m;
	bool needs_utf8 = job_has_8bit_addr(c->job);

	/* RFC 6532 headers need the extension too; an 8-bit body alone
	 * only needs 8BITMIME, or a conversion. */
	if ((m->flags & MSG_F_REQUIRETLS) && !c->is_lmtp &&
	    requiretls_refused(c))
		return true;
	needs_utf8 |= (m->flags & MSG_F_SMTPUTF8) && header_has_8bit(m);
	if (needs_utf8 && !(c->caps.ext & EHLO_SMTPUTF8)) {
		struct outcome oc;
		react_local(&oc, OC_BOUNCE, "5.6.7",
			    "the message has "
			    "non-ASCII addresses and %s does not offer "
			    "SMTPUTF8 (RFC 6531)",
			    c->peer);
		client_job_settle(c, &oc);
		return true;
	}
	if (text_refused(c, len_out))
		return true;
	if ((c->caps.ext & EHLO_SIZE) && c->caps.size_max > 0 &&
	    *len_out > c->caps.size_max) {
		struct outcome oc;
		react_local(&oc, OC_BOUNCE, "5.3.4",
			    "the message (%zu "
			    "octets) is larger than %s accepts (SIZE %llu)",
			    *len_out, c->peer,
			    (unsigned long long)c->caps.size_max);
		client_job_settle(c, &oc);
		return true;
	}
	return false;
}

void
client_txn_start(struct conn *c)
{
	size_t text_len = 0;

	c->has_txn = true;
	c->was_served = true;
	c->dest->dead_until = 0; /* it answers again */
	c->n_cmds = c->n_replied = c->rcpt_next = 0;
	c->n_accepted = 0;
	c->is_mail_failed = false;
	/* Jobs this peer cannot take are settled here, in a loop (not by
	 * recursion through txn_end) and counted as messages. */
	for (;;) {
		struct job *j;
		memset(c->job->out, 0, c->job->n * sizeof *c->job->out);
		c->n_msgs++;
		if (!txn_refused_locally(c, &text_len))
			break;
		client_job_done(c);
		if (c->n_msgs >=
			c->ob->cfg->delivery_max_messages_per_connection ||
		    (j = jobs_next(c->ob, c->dest)) == NULL) {
			txn_quit(c);
			return;
		}
		c->job = j;
	}
	c->ph = CP_TXN;
	client_set_timeouts(c, c->ob->cfg->delivery_command_timeout,
			    c->ob->cfg->delivery_command_timeout);
	c->is_pipelined = (c->caps.ext & EHLO_PIPELINING) != 0;
	c->job->is_dsn_passed = (c->caps.ext & EHLO_DSN) != 0;
	c->job->is_final = c->is_lmtp;
	if (c->n_targets > 0 && c->ti < c->n_targets)
		str_set(c->job->remote, sizeof c->job->remote,
			c->targets[c->ti].host);
	send_mail(c, text_len);
	if (!c->is_pipelined)
		return;
	for (size_t k = 0; k < c->job->n; k++)
		send_rcpt(c, k);
	c->rcpt_next = c->job->n;
	client_send_line(c, "DATA");
	c->cmds[c->n_cmds++] = CMD_DATA;
}

/* Next command of an unpipelined transaction after a reply.  Returns
 * false when the connection must end. */
static bool
txn_continue(struct conn *c)
{
	if (c->is_pipelined || c->is_mail_failed)
		return true;
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
		/* More than one reply to one command: out of step. */
		react_local(&c->fail, OC_DEFER, "4.5.0",
			    "%s sent a reply "
			    "nobody asked for",
			    c->peer);
		return false;
	}
	if (c->rcpt_next < c->job->n) {
		send_rcpt(c, c->rcpt_next++);
		return true;
	}
	if (c->n_accepted > 0) {
		client_send_line(c, "DATA");
		c->cmds[c->n_cmds++] = CMD_DATA;
	}
	return true;
}

/* The reply to DATA.  Returns false when the connection must end. */
static bool
data_reply(struct conn *c, const char *line)
{
	unsigned code = c->rep.code;
	struct outcome oc;

	c->n_replied++;
	if (code == 354 && c->n_accepted > 0 && !c->is_mail_failed)
		return send_body(c);
	if (code == 354) {
		evbuffer_add(bufferevent_get_output(c->bev), ".\r\n", 3);
		c->ph = CP_DOT_EMPTY;
		return true;
	}
	if (code / 100 == 2) {
		/* Only 354 lets the text go: a 2xx here is out of step, and
		 * must never count as delivered. */
		react_local(&oc, OC_DEFER, "4.5.0", "%s answered DATA with %s",
			    c->peer, line);
		client_job_settle(c, &oc);
		return false;
	}
	react_reply(c->ob, REACT_DATA, code, c->rep.enh, line, c->rep.text,
		    &oc);
	client_job_settle(c, &oc);
	if (code == 421)
		return false;
	txn_end(c, true);
	return true;
}

/* One reply in the MAIL/RCPT/DATA exchange.  Returns false when the
 * connection must end. */
static bool
txn_reply(struct conn *c, const char *line)
{
	unsigned code = c->rep.code;
	struct job *j = c->job;
	enum cmd_kind kind;
	struct outcome oc;

	if (c->n_replied >= c->n_cmds) {
		react_local(&c->fail, OC_DEFER, "4.5.0",
			    "%s sent a reply nobody asked for: %s", c->peer,
			    line);
		return false;
	}
	kind = c->cmds[c->n_replied];
	if (kind == CMD_DATA)
		return data_reply(c, line);
	if (kind == CMD_MAIL && code / 100 != 2) {
		react_reply(c->ob, REACT_MAIL, code, c->rep.enh, line,
			    c->rep.text, &oc);
		client_job_settle(c, &oc);
		c->is_mail_failed = true;
	} else if (kind == CMD_RCPT && !c->is_mail_failed) {
		/* After a failed MAIL, that reply decided already. */
		size_t k = c->cmd_rcpt[c->n_replied];
		if (code / 100 == 2)
			c->accepted[c->n_accepted++] = k;
		else
			react_reply(c->ob, REACT_RCPT, code, c->rep.enh, line,
				    c->rep.text, &j->out[k]);
	}
	c->n_replied++;
	if (code == 421) {
		react_reply(c->ob, REACT_RCPT, code, c->rep.enh, line,
			    c->rep.text, &oc);
		client_job_settle(c, &oc);
		return false;
	}
	if (!c->is_pipelined && c->n_replied == c->n_cmds &&
	    (c->is_mail_failed ||
	     (c->rcpt_next == j->n && c->n_accepted == 0))) {
		/* Nothing more to send in this transaction. */
		txn_end(c, true);
		return true;
	}
	return txn_continue(c);
}

/* The reply (or, for LMTP, one of the replies) to the final dot. */
static bool
dot_reply(struct conn *c, const char *line)
{
	unsigned code = c->rep.code;
	struct job *j = c->job;
	struct outcome oc;

	if (c->ph == CP_DOT_EMPTY) {
		txn_end(c, true);
		return true;
	}
	react_reply(c->ob, REACT_DOT, code, c->rep.enh, line, c->rep.text, &oc);
	if (c->is_lmtp) {
		size_t k = c->accepted[c->n_dot_replies++];
		j->out[k] = oc;
		if (code == 421) {
			/* The rest are not charged either. */
			client_job_settle(c, &oc);
			return false;
		}
		if (c->n_dot_replies < c->n_accepted)
			return true;
	} else {
		for (size_t a = 0; a < c->n_accepted; a++)
			j->out[c->accepted[a]] = oc;
	}
	client_job_settle(c, &oc);
	client_set_timeouts(c, c->ob->cfg->delivery_command_timeout,
			    c->ob->cfg->delivery_command_timeout);
	if (code == 421)
		return false;
	txn_end(c, code / 100 != 2);
	return true;
}

/* The reply to RSET before the next job. */
static bool
rset_reply(struct conn *c, const char *line)
{
	struct outcome oc;

	if (c->rep.code / 100 == 2) {
		client_txn_start(c);
		return true;
	}
	react_local(&oc, OC_DEFER, "4.5.0", "%s refused RSET: %s", c->peer,
		    line);
	oc.is_uncharged = true;
	client_job_settle(c, &oc);
	return false;
}

bool
client_txn_reply(struct conn *c, const char *line)
{
	switch (c->ph) {
	case CP_RSET:
		return rset_reply(c, line);
	case CP_TXN:
		return txn_reply(c, line);
	default: /* CP_DOT, CP_DOT_EMPTY */
		return dot_reply(c, line);
	}
}