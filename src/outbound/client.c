/*
 * client.c - one outgoing SMTP or LMTP connection: it sends the jobs of
 * one destination, one transaction each, until none is left or
 * [delivery] max_messages_per_connection is reached.
 *
 * Resolve (MX or host) -> connect to each address in turn -> greeting ->
 * EHLO (HELO after a 5xx; LHLO for LMTP, RFC 2033) -> STARTTLS when offered
 * (and [delivery] tls allows; EHLO again over TLS) -> per job: MAIL, RCPT
 * for each recipient, DATA, the text dot-stuffed, the final dot.  With
 * PIPELINING (RFC 2920) MAIL, the RCPTs and DATA leave in one write and the
 * replies are matched in order.  LMTP answers the dot once per accepted
 * recipient.  Every reply goes through react.c, which decides each
 * recipient's outcome; finish_job() applies them.
 *
 * A connect failure, a timeout, a 421 or 4xx/5xx greeting or EHLO before
 * any transaction moves on to the next address with the same job; after
 * the last address the job's recipients are deferred (421: uncharged).
 * Losing the connection in a transaction defers what is undecided.  The
 * text leaves exactly as the spool holds it (CRLF lines: no bare CR or
 * LF can exist there), with a '.' doubled at each line start (RFC 5321
 * 4.5.2).  Timeouts are RFC 5321 4.5.3.2's, from [delivery].
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "outbound/outbound_int.h"
#include "proto/reply_parse.h"
#include "util/log.h"
#include "util/str.h"

#define CLIENT_LINE_MAX 4096 /* a reply line longer than this: error */
#define CLIENT_CMD_MAX 2048
#define CLIENT_XTEXT_MAX 1024
#define CLIENT_QUIT_SECONDS 10

enum cphase {
	CP_RESOLVE,
	CP_CONNECT,
	CP_GREETING,
	CP_EHLO,
	CP_HELO,
	CP_STARTTLS,
	CP_TLS,
	CP_RSET,
	CP_TXN,
	CP_DOT,
	CP_DOT_EMPTY, /* DATA said 354 with no recipient: an empty dot */
	CP_QUIT,
};

static const char *const phase_names[] = {
    "resolving",      "connecting",  "greeting",      "EHLO",
    "HELO",	      "STARTTLS",    "TLS handshake", "RSET",
    "MAIL/RCPT/DATA", "end of data", "end of data",   "QUIT",
};

enum cmd_kind { CMD_MAIL, CMD_RCPT, CMD_DATA };

struct conn {
	struct outbound *ob;
	struct dest *dest;
	struct conn *prev, *next;
	struct bufferevent *bev;
	void *resolving;
	struct outbound_target *targets;
	size_t n_targets, ti;
	enum cphase ph;
	struct reply_acc acc; /* the reply being read */
	struct reply_acc rep; /* the last complete reply, being handled */
	struct ehlo_caps caps;
	bool is_lmtp, is_tls, has_txn;
	bool was_served; /* some address got as far as a transaction */
	struct job *job;
	struct outcome fail; /* why the last address did not serve */
	/* The transaction: commands sent, replies matched in order. */
	enum cmd_kind cmds[OB_JOB_RCPTS_MAX + 2];
	size_t cmd_rcpt[OB_JOB_RCPTS_MAX + 2];
	size_t n_cmds, n_replied, rcpt_next;
	bool is_pipelined, is_mail_failed;
	size_t accepted[OB_JOB_RCPTS_MAX];
	size_t n_accepted, n_dot_replies;
	unsigned n_msgs;
	char peer[320]; /* "host[addr]:port" for logs */
};

static void conn_end(struct conn *c);
static bool try_target(struct conn *c);
static void start_txn(struct conn *c);

static void __attribute__((format(printf, 2, 3)))
send_line(struct conn *c, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void
set_timeouts(struct conn *c, uint64_t read_s, uint64_t write_s)
{
	struct timeval r = {(time_t)read_s, 0}, w = {(time_t)write_s, 0};

	bufferevent_set_timeouts(c->bev, &r, &w);
}

/* Every undecided recipient of the job gets oc. */
static void
job_settle_rest(struct conn *c, const struct outcome *oc)
{
	struct job *j = c->job;

	if (j == NULL)
		return;
	for (size_t k = 0; k < j->n; k++)
		if (j->out[k].kind == OC_NONE)
			j->out[k] = *oc;
}

/* The job is decided: the queue applies its outcomes. */
static void
job_done(struct conn *c)
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

static void
conn_close_bev(struct conn *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
}

/*
 * No address of the destination served: for retry[0] seconds (at most a
 * minute) its other due jobs get the same deferral without a connection
 * of their own, so a dead peer costs one attempt, not one per message.
 */
static void
dest_suspend(struct conn *c)
{
	struct dest *d = c->dest;

	if (d->dead == NULL && (d->dead = malloc(sizeof *d->dead)) == NULL)
		return;
	*d->dead = c->fail;
	d->dead_until = ob_now() + schedule_suspend_secs(c->ob->cfg);
}

/* The connection is over; an undecided job gets the last failure. */
static void
conn_end(struct conn *c)
{
	struct outbound *ob = c->ob;

	if (c->job != NULL && !c->was_served && c->fail.kind == OC_DEFER &&
	    !ob->is_stopping)
		dest_suspend(c);
	if (c->job != NULL) {
		if (c->fail.kind == OC_NONE)
			react_local(&c->fail, OC_DEFER, "4.4.2",
				    "connection with %s ended while %s",
				    c->peer[0] ? c->peer : c->dest->host,
				    phase_names[c->ph]);
		job_settle_rest(c, &c->fail);
		job_done(c);
	}
	if (c->resolving != NULL)
		ob->hooks.resolve_cancel(ob->hooks.arg, c->resolving);
	conn_close_bev(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		ob->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ob->n_conns--;
	c->dest->n_conns--;
	free(c->targets);
	free(c);
	ob_wake(ob);
}

/* This address did not serve before a transaction: try the next.
 * Returns false when c is gone. */
static bool
next_target(struct conn *c)
{
	conn_close_bev(c);
	c->ti++;
	return try_target(c);
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
has_8bit_n(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

static bool
has_8bit(const char *s)
{
	return has_8bit_n(s, strlen(s));
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

static void
send_mail(struct conn *c)
{
	const struct msg *m = c->job->q->m;
	char params[CLIENT_CMD_MAX] = "", x[CLIENT_XTEXT_MAX];
	size_t o = 0;

	if (c->caps.ext & EHLO_SIZE)
		o += (size_t)snprintf(params + o, sizeof params - o,
				      " SIZE=%zu", m->data_len);
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
	if ((c->caps.ext & EHLO_DSN) && m->envid != NULL && o < sizeof params) {
		xtext(m->envid, x, sizeof x);
		snprintf(params + o, sizeof params - o, " ENVID=%s", x);
	}
	send_line(c, "MAIL FROM:<%s>%s", m->sender, params);
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
	send_line(c, "RCPT TO:<%s>%s", r->mailbox, params);
	c->cmd_rcpt[c->n_cmds] = k;
	c->cmds[c->n_cmds++] = CMD_RCPT;
}

/* The message text, dot-stuffed, and the final dot. */
static void
send_body(struct conn *c)
{
	const struct msg *m = c->job->q->m;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const char *p = m->data, *end = m->data + m->data_len;

	const char *seg = p;

	/* Runs of lines go out in one piece; a '.' is added before each
	 * line that starts with one. */
	if (p < end && *p == '.')
		evbuffer_add(out, ".", 1);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break;
		p = nl + 1;
		if (p < end && *p == '.') {
			evbuffer_add(out, seg, (size_t)(p - seg));
			evbuffer_add(out, ".", 1);
			seg = p;
		}
	}
	evbuffer_add(out, seg, (size_t)(end - seg));
	if (m->data_len > 0 && m->data[m->data_len - 1] != '\n')
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	c->ph = CP_DOT;
	c->n_dot_replies = 0;
	set_timeouts(c, c->ob->cfg->delivery_data_timeout,
		     c->ob->cfg->delivery_command_timeout);
}

/* The transaction ended; the next job, or QUIT. */
static void
txn_end(struct conn *c, bool needs_rset)
{
	struct job *j;

	job_done(c);
	c->has_txn = false;
	if (c->n_msgs >= c->ob->cfg->delivery_max_messages_per_connection ||
	    (j = jobs_next(c->ob, c->dest)) == NULL) {
		send_line(c, "QUIT");
		c->ph = CP_QUIT;
		/* Nothing rides on the answer: do not hold a slot for it. */
		set_timeouts(c, CLIENT_QUIT_SECONDS, CLIENT_QUIT_SECONDS);
		return;
	}
	c->job = j;
	if (needs_rset) {
		send_line(c, "RSET");
		c->ph = CP_RSET;
		return;
	}
	start_txn(c);
}

/* Local checks before MAIL: what this peer cannot take bounces. */
static bool
txn_refused_locally(struct conn *c)
{
	const struct msg *m = c->job->q->m;
	bool needs_utf8 = job_has_8bit_addr(c->job);

	/* RFC 6532 headers need the extension too; an 8-bit body alone
	 * only needs 8BITMIME. */
	needs_utf8 |= (m->flags & MSG_F_SMTPUTF8) && header_has_8bit(m);
	if (needs_utf8 && !(c->caps.ext & EHLO_SMTPUTF8)) {
		struct outcome oc;
		react_local(&oc, OC_BOUNCE, "5.6.7",
			    "the message has "
			    "non-ASCII addresses and %s does not offer "
			    "SMTPUTF8 (RFC 6531)",
			    c->peer);
		job_settle_rest(c, &oc);
		return true;
	}
	if (!(c->caps.ext & EHLO_8BITMIME) &&
	    ((m->flags & MSG_F_8BITMIME) || has_8bit_n(m->data, m->data_len))) {
		/* RFC 6152 3: convert or return; postern returns. */
		struct outcome oc;
		react_local(&oc, OC_BOUNCE, "5.6.3",
			    "the message has 8-bit "
			    "text and %s does not offer 8BITMIME (RFC 6152)",
			    c->peer);
		job_settle_rest(c, &oc);
		return true;
	}
	if ((c->caps.ext & EHLO_SIZE) && c->caps.size_max > 0 &&
	    m->data_len > c->caps.size_max) {
		struct outcome oc;
		react_local(&oc, OC_BOUNCE, "5.3.4",
			    "the message (%zu "
			    "octets) is larger than %s accepts (SIZE %llu)",
			    m->data_len, c->peer,
			    (unsigned long long)c->caps.size_max);
		job_settle_rest(c, &oc);
		return true;
	}
	return false;
}

static void
start_txn(struct conn *c)
{
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
		if (!txn_refused_locally(c))
			break;
		job_done(c);
		if (c->n_msgs >=
			c->ob->cfg->delivery_max_messages_per_connection ||
		    (j = jobs_next(c->ob, c->dest)) == NULL) {
			c->has_txn = false;
			send_line(c, "QUIT");
			c->ph = CP_QUIT;
			set_timeouts(c, CLIENT_QUIT_SECONDS,
				     CLIENT_QUIT_SECONDS);
			return;
		}
		c->job = j;
	}
	c->ph = CP_TXN;
	set_timeouts(c, c->ob->cfg->delivery_command_timeout,
		     c->ob->cfg->delivery_command_timeout);
	c->is_pipelined = (c->caps.ext & EHLO_PIPELINING) != 0;
	c->job->is_dsn_passed = (c->caps.ext & EHLO_DSN) != 0;
	c->job->is_final = c->is_lmtp;
	if (c->n_targets > 0 && c->ti < c->n_targets)
		str_set(c->job->remote, sizeof c->job->remote,
			c->targets[c->ti].host);
	send_mail(c);
	if (!c->is_pipelined)
		return;
	for (size_t k = 0; k < c->job->n; k++)
		send_rcpt(c, k);
	c->rcpt_next = c->job->n;
	send_line(c, "DATA");
	c->cmds[c->n_cmds++] = CMD_DATA;
}

static bool
after_ehlo(struct conn *c)
{
	const struct config *cfg = c->ob->cfg;

	if (!c->is_tls && !c->is_lmtp && (c->caps.ext & EHLO_STARTTLS) &&
	    c->ob->tls_client != NULL && cfg->tls_out != 0) {
		send_line(c, "STARTTLS");
		c->ph = CP_STARTTLS;
		return true;
	}
	if (c->dest->is_tls_required && !c->is_tls) {
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "TLS is required for %s and %s did not offer "
			    "STARTTLS",
			    c->dest->key, c->peer);
		return next_target(c);
	}
	start_txn(c);
	return true;
}

static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_read(struct bufferevent *bev, void *arg);

static bool
start_tls(struct conn *c)
{
	SSL *ssl = SSL_new(c->ob->tls_client);
	struct bufferevent *b;

	if (ssl == NULL) {
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "cannot start TLS with %s", c->peer);
		return next_target(c);
	}
	if (c->targets != NULL && c->ti < c->n_targets)
		SSL_set_tlsext_host_name(ssl, c->targets[c->ti].host);
	b = bufferevent_openssl_filter_new(c->ob->base, c->bev, ssl,
					   BUFFEREVENT_SSL_CONNECTING,
					   BEV_OPT_CLOSE_ON_FREE);
	if (b == NULL) {
		SSL_free(ssl);
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "cannot start TLS with %s", c->peer);
		return next_target(c);
	}
	c->bev = b;
	c->ph = CP_TLS;
	bufferevent_setcb(b, on_read, NULL, on_event, c);
	set_timeouts(c, c->ob->cfg->delivery_command_timeout,
		     c->ob->cfg->delivery_command_timeout);
	bufferevent_enable(b, EV_READ | EV_WRITE);
	return true;
}

/* A reply outside a transaction (greeting to STARTTLS, RSET, QUIT). */
static bool
session_reply(struct conn *c, const char *line)
{
	unsigned code = c->rep.code;
	struct outcome oc;

	switch (c->ph) {
	case CP_GREETING:
	case CP_EHLO:
	case CP_HELO:
		if (code / 100 == 2) {
			if (c->ph == CP_GREETING) {
				memset(&c->caps, 0, sizeof c->caps);
				send_line(c, "%s %s",
					  c->is_lmtp ? "LHLO" : "EHLO",
					  c->ob->cfg->server_hostname);
				c->ph = CP_EHLO;
				return true;
			}
			return after_ehlo(c);
		}
		if (c->ph == CP_EHLO && code / 100 == 5 && !c->is_lmtp) {
			memset(&c->caps, 0, sizeof c->caps);
			send_line(c, "HELO %s", c->ob->cfg->server_hostname);
			c->ph = CP_HELO;
			return true;
		}
		react_reply(c->ob,
			    c->ph == CP_GREETING ? REACT_GREETING : REACT_HELO,
			    code, c->rep.enh, line, c->rep.text, &c->fail);
		return next_target(c);
	case CP_STARTTLS:
		if (code == 220)
			return start_tls(c);
		if (c->dest->is_tls_required || code == 421) {
			react_reply(c->ob, REACT_HELO, code, c->rep.enh, line,
				    c->rep.text, &c->fail);
			c->fail.kind = OC_DEFER;
			return next_target(c);
		}
		start_txn(c);
		return true;
	case CP_RSET:
		if (code / 100 == 2) {
			start_txn(c);
			return true;
		}
		react_local(&oc, OC_DEFER, "4.5.0", "%s refused RSET: %s",
			    c->peer, line);
		oc.is_uncharged = true;
		job_settle_rest(c, &oc);
		conn_end(c);
		return false;
	default:
		conn_end(c);
		return false;
	}
}

/* Next command of an unpipelined transaction after a reply.  Returns
 * false when c is gone. */
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
		conn_end(c);
		return false;
	}
	if (c->rcpt_next < c->job->n) {
		send_rcpt(c, c->rcpt_next++);
		return true;
	}
	if (c->n_accepted > 0) {
		send_line(c, "DATA");
		c->cmds[c->n_cmds++] = CMD_DATA;
	}
	return true;
}

/* One reply in the MAIL/RCPT/DATA exchange.  Returns false when the
 * connection was ended. */
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
		conn_end(c);
		return false;
	}
	kind = c->cmds[c->n_replied];
	if (kind == CMD_MAIL) {
		if (code / 100 != 2) {
			react_reply(c->ob, REACT_MAIL, code, c->rep.enh, line,
				    c->rep.text, &oc);
			job_settle_rest(c, &oc);
			c->is_mail_failed = true;
		}
	} else if (kind == CMD_RCPT) {
		size_t k = c->cmd_rcpt[c->n_replied];
		if (c->is_mail_failed) {
			/* Its MAIL failed: that reply decided already. */
		} else if (code / 100 == 2) {
			c->accepted[c->n_accepted++] = k;
		} else {
			react_reply(c->ob, REACT_RCPT, code, c->rep.enh, line,
				    c->rep.text, &j->out[k]);
		}
	} else {
		c->n_replied++;
		if (code == 354 && c->n_accepted > 0 && !c->is_mail_failed) {
			send_body(c);
			return true;
		}
		if (code == 354) {
			evbuffer_add(bufferevent_get_output(c->bev), ".\r\n",
				     3);
			c->ph = CP_DOT_EMPTY;
			return true;
		}
		if (code / 100 == 2) {
			/* Only 354 lets the text go: a 2xx here is out of
			 * step, and must never count as delivered. */
			react_local(&oc, OC_DEFER, "4.5.0",
				    "%s answered DATA "
				    "with %s",
				    c->peer, line);
			job_settle_rest(c, &oc);
			conn_end(c);
			return false;
		}
		react_reply(c->ob, REACT_DATA, code, c->rep.enh, line,
			    c->rep.text, &oc);
		job_settle_rest(c, &oc);
		if (code == 421) {
			conn_end(c);
			return false;
		}
		txn_end(c, true);
		return true;
	}
	c->n_replied++;
	if (code == 421) {
		react_reply(c->ob, REACT_RCPT, code, c->rep.enh, line,
			    c->rep.text, &oc);
		job_settle_rest(c, &oc);
		conn_end(c);
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
			job_settle_rest(c, &oc);
			conn_end(c);
			return false;
		}
		if (c->n_dot_replies < c->n_accepted)
			return true;
	} else {
		for (size_t a = 0; a < c->n_accepted; a++)
			j->out[c->accepted[a]] = oc;
	}
	job_settle_rest(c, &oc);
	set_timeouts(c, c->ob->cfg->delivery_command_timeout,
		     c->ob->cfg->delivery_command_timeout);
	if (code == 421) {
		conn_end(c);
		return false;
	}
	txn_end(c, code / 100 != 2);
	return true;
}

/* A complete reply arrived.  Returns false when c is gone. */
static bool
on_reply(struct conn *c)
{
	char line[OB_REPLY_MAX];

	reply_acc_format(&c->rep, line, sizeof line);
	log_msg(LOG_DEBUG, "ev=client_reply peer=%s phase=%s reply=%s",
		log_q(c->peer), phase_names[c->ph], log_q(line));
	switch (c->ph) {
	case CP_TXN:
		return txn_reply(c, line);
	case CP_DOT:
	case CP_DOT_EMPTY:
		return dot_reply(c, line);
	case CP_QUIT:
		conn_end(c);
		return false;
	default:
		return session_reply(c, line);
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		enum reply_parse_result r;

		if (line == NULL) {
			if (evbuffer_get_length(in) > CLIENT_LINE_MAX) {
				react_local(&c->fail, OC_DEFER, "4.5.0",
					    "%s sent a line longer than %d "
					    "octets",
					    c->peer, CLIENT_LINE_MAX);
				conn_end(c);
			}
			return;
		}
		if (c->ph == CP_EHLO)
			reply_ehlo_line(&c->caps, line, len,
					c->acc.n_lines == 0);
		r = reply_acc_line(&c->acc, line, len);
		free(line);
		if (r == REPLY_PARSE_MORE)
			continue;
		if (r != REPLY_PARSE_OK) {
			react_local(&c->fail, OC_DEFER, "4.5.0",
				    "%s sent a malformed reply", c->peer);
			conn_end(c);
			return;
		}
		{
			/* Handlers may free c (conn_end) or replace its
			 * buffer (TLS, next address): stop reading then. */
			struct bufferevent *was = c->bev;
			c->rep = c->acc;
			reply_acc_init(&c->acc);
			if (!on_reply(c) || c->bev != was)
				return;
		}
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	bool is_before_txn = !c->has_txn;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		const struct config *cfg = c->ob->cfg;
		set_timeouts(c, cfg->delivery_command_timeout,
			     cfg->delivery_command_timeout);
		reply_acc_init(&c->acc);
		if (c->ph == CP_TLS) {
			c->is_tls = true;
			memset(&c->caps, 0, sizeof c->caps);
			send_line(c, "EHLO %s", cfg->server_hostname);
			c->ph = CP_EHLO;
			return;
		}
		c->ph = CP_GREETING;
		return;
	}
	if (c->ph == CP_QUIT) {
		conn_end(c);
		return;
	}
	if (c->ph == CP_CONNECT)
		react_local(
		    &c->fail, OC_DEFER, "4.4.1", "connect to %s failed: %s",
		    c->peer,
		    (what & BEV_EVENT_TIMEOUT)
			? "timed out"
			: evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	else
		react_local(&c->fail, OC_DEFER, "4.4.2", "%s with %s while %s",
			    (what & BEV_EVENT_TIMEOUT) ? "timeout"
						       : "lost connection",
			    c->peer, phase_names[c->ph]);
	if (is_before_txn && c->ph != CP_QUIT) {
		next_target(c);
		return;
	}
	conn_end(c);
}

static void
peer_name(struct conn *c, const struct outbound_target *t)
{
	char addr[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (t->ss.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)&t->ss;
		inet_ntop(AF_INET, &s->sin_addr, addr, sizeof addr);
		port = ntohs(s->sin_port);
	} else if (t->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)&t->ss;
		inet_ntop(AF_INET6, &s->sin6_addr, addr, sizeof addr);
		port = ntohs(s->sin6_port);
	} else {
		snprintf(c->peer, sizeof c->peer, "%s", t->host);
		return;
	}
	snprintf(c->peer, sizeof c->peer, "%s[%s]:%u", t->host, addr, port);
}

static bool
try_target(struct conn *c)
{
	const struct outbound_target *t;

	if (c->ti >= c->n_targets) {
		if (c->fail.kind == OC_NONE)
			react_local(&c->fail, OC_DEFER, "4.4.1",
				    "no address of %s answered", c->dest->host);
		conn_end(c);
		return false;
	}
	t = &c->targets[c->ti];
	peer_name(c, t);
	c->has_txn = false;
	c->bev = bufferevent_socket_new(c->ob->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		react_local(&c->fail, OC_DEFER, "4.3.0", "out of memory");
		conn_end(c);
		return false;
	}
	c->ph = CP_CONNECT;
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	set_timeouts(c, c->ob->cfg->delivery_connect_timeout,
		     c->ob->cfg->delivery_connect_timeout);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&t->ss,
				       (int)t->sslen) != 0) {
		react_local(&c->fail, OC_DEFER, "4.4.1",
			    "connect to %s failed: %s", c->peer,
			    strerror(errno));
		return next_target(c);
	}
	return true;
}

static void
on_resolved(void *arg, enum outbound_resolve_status st,
	    const struct outbound_target *t, size_t n)
{
	struct conn *c = arg;

	c->resolving = NULL;
	if (st != OUTBOUND_RESOLVED || n == 0) {
		if (st == OUTBOUND_NULLMX)
			react_local(&c->fail, OC_BOUNCE, "5.1.10",
				    "%s accepts no mail: its MX record is the "
				    "null MX (RFC 7505)",
				    c->dest->host);
		else if (st == OUTBOUND_NOHOST)
			react_local(&c->fail, OC_BOUNCE, "5.1.2",
				    "the domain %s does not exist or has no "
				    "address for mail (DNS)",
				    c->dest->host);
		else
			react_local(&c->fail, OC_DEFER, "4.4.3",
				    "DNS lookup of %s failed for now",
				    c->dest->host);
		conn_end(c);
		return;
	}
	c->targets = malloc(n * sizeof *t);
	if (c->targets == NULL) {
		react_local(&c->fail, OC_DEFER, "4.3.0", "out of memory");
		conn_end(c);
		return;
	}
	memcpy(c->targets, t, n * sizeof *t);
	c->n_targets = n;
	c->ti = 0;
	try_target(c);
}

/* A literal address or a Unix socket needs no DNS. */
static bool
literal_target(struct conn *c)
{
	struct dest *d = c->dest;
	struct outbound_target t = {0};

	if (d->is_unix) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&t.ss;
		sun->sun_family = AF_UNIX;
		if (!str_set(sun->sun_path, sizeof sun->sun_path, d->host))
			return false;
		t.sslen = sizeof *sun;
	} else if (d->kind != DEST_MX) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&t.ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t.ss;
		if (inet_pton(AF_INET, d->host, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons(d->port);
			t.sslen = sizeof *s4;
		} else if (inet_pton(AF_INET6, d->host, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(d->port);
			t.sslen = sizeof *s6;
		} else {
			return false;
		}
	} else {
		return false;
	}
	str_set(t.host, sizeof t.host, d->host);
	on_resolved(c, OUTBOUND_RESOLVED, &t, 1);
	return true;
}

int
client_start(struct outbound *ob, struct dest *d, struct job *j)
{
	struct conn *c = calloc(1, sizeof *c);

	if (c == NULL) {
		/* The job's recipients wait for the next tick. */
		struct outcome oc;
		react_local(&oc, OC_DEFER, "4.3.0", "out of memory");
		oc.is_uncharged = true;
		for (size_t k = 0; k < j->n; k++)
			j->out[k] = oc;
		finish_job(ob, j);
		return -1;
	}
	c->ob = ob;
	c->dest = d;
	c->job = j;
	c->is_lmtp = d->kind == DEST_LMTP;
	c->ph = CP_RESOLVE;
	c->next = ob->conns;
	if (ob->conns)
		ob->conns->prev = c;
	ob->conns = c;
	ob->n_conns++;
	d->n_conns++;
	if (literal_target(c))
		return 0;
	c->resolving =
	    ob->hooks.resolve_start(ob->hooks.arg, d->host, d->kind == DEST_MX,
				    d->port, on_resolved, c);
	if (c->resolving == NULL) {
		react_local(&c->fail, OC_DEFER, "4.3.0",
			    "cannot start resolving %s", d->host);
		conn_end(c);
	}
	return 0;
}

void
client_stop_all(struct outbound *ob)
{
	/* conn_end() unlinks what it frees, so the head is new each time;
	 * the analyzer cannot follow the list through it. */
	/* NOLINTBEGIN(clang-analyzer-unix.Malloc) */
	while (ob->conns != NULL) {
		struct conn *c = ob->conns;
		/* What was not decided is sent again after the restart. */
		if (c->job != NULL) {
			struct job *j = c->job;
			c->job = NULL;
			finish_job(ob, j);
		}
		conn_end(c);
	}
	/* NOLINTEND(clang-analyzer-unix.Malloc) */
}
