/*
 * client.c - one outgoing SMTP or LMTP connection: it sends the jobs of
 * one destination, one transaction each, until none is left or
 * [delivery] max_messages_per_connection is reached.  The dispatcher
 * starts it (client_start) with a first job.
 *
 * This half is the connection; what its TLS owes the peer (DANE,
 * MTA-STS, verification) and the smart host's login are client_tls.c's
 * answers, acted on here.  Resolve (MX or host, through the server's
 * hooks) -> connect to each address in turn -> greeting -> EHLO (HELO
 * after a 5xx; LHLO for LMTP, RFC 2033) -> STARTTLS when offered (and
 * [delivery] tls allows; EHLO again over TLS), reading and parsing every
 * reply, and the end.  The transactions are client_txn.c's; a reply it
 * cannot live with makes it return false and the connection ends here.
 *
 * A connect failure, a timeout, a 421 or 4xx/5xx greeting or EHLO before
 * any transaction moves on to the next address with the same job.  So
 * does a 421 in a transaction (REPLY-CODES.md: the next MX host at once):
 * the recipients it left undecided go on in a job of their own, the
 * rest of the job is finished (jobs_split_next_host).  After the last
 * address the recipients are deferred and counted like any 4xx (one
 * attempt for the whole pass), and the destination rests
 * (schedule_suspend_secs) so its other jobs share that outcome.  Losing
 * the connection in a transaction defers what is undecided.  Outcomes
 * leave through finish_job() only.  Timeouts are RFC 5321 4.5.3.2's,
 * from [delivery].
 *
 * A TLS connection ends with close_notify (tls_close_notify): after
 * QUIT's reply it is sent, the write side shut, and the peer's end
 * awaited for up to TLS_CLOSE_SECONDS (CP_CLOSE); ended any other way,
 * the alert is sent if it can be, without waiting.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "outbound/client_int.h"
#include "tls/tls.h"
#include "util/log.h"
#include "util/str.h"

#define CLIENT_LINE_MAX 4096 /* a reply line longer than this: error */

static const char *const phase_names[] = {
    "MTA-STS policy", "resolving", "TLSA lookup", "connecting",  "greeting",      "EHLO",
    "HELO",	      "STARTTLS",    "TLS handshake", "AUTH",
    "AUTH",	      "AUTH",	     "RSET",	      "MAIL/RCPT/DATA",
    "end of data",    "end of data", "QUIT",	      "closing",
};

static void conn_end(struct conn *c);
static bool try_target(struct conn *c);
static bool connect_target(struct conn *c);
static void on_tlsa(void *arg, enum outbound_tlsa_status st,
		    const struct outbound_tlsa *r, size_t n);

static void
conn_close_bev(struct conn *c)
{
	if (c->bev != NULL) {
		/* Whatever ended it, the peer learns it was not cut off (a
		 * no-op once sent, or without TLS). */
		(void)tls_close_notify(c->bev);
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
		client_job_settle(c, &c->fail);
		client_job_done(c);
	}
	if (c->resolving != NULL)
		ob->hooks.resolve_cancel(ob->hooks.arg, c->resolving);
	if (c->tlsa_req != NULL)
		ob->hooks.tlsa_cancel(ob->hooks.arg, c->tlsa_req);
	if (c->sts_req != NULL)
		ob->hooks.sts_cancel(ob->hooks.arg, c->sts_req);
	free(c->tlsa);
	free(c->sts);
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

/*
 * A transaction ended the connection.  When a 421 did, what it left
 * undecided goes on to the next address at once, in a job of its own
 * (REPLY-CODES.md), and the rest of the job is finished now; after the
 * last address that job is deferred as if no address had served it.
 * Returns false: c is gone or on its next address.
 */
static bool
txn_closed(struct conn *c)
{
	struct job *j = c->job, *rest;
	const struct outcome *oc = NULL;

	for (size_t k = 0; j != NULL && k < j->n && oc == NULL; k++)
		if (j->out[k].is_next_host)
			oc = &j->out[k];
	if (oc == NULL) {
		conn_end(c);
		return false;
	}
	c->fail = *oc;
	c->was_served = false; /* a 421 served nobody */
	if (c->ti + 1 >= c->n_targets ||
	    (rest = jobs_split_next_host(j)) == NULL) {
		conn_end(c);
		return false;
	}
	log_msg(LOG_INFO, "ev=next_address qid=%s peer=%s rcpts=%zu reply=%s",
		j->q->m->qid_str, log_q(c->peer), rest->n,
		log_q(c->fail.reply));
	client_job_done(c);
	c->job = rest;
	next_target(c);
	return false;
}

/* What the login step said: wait, the transaction, or the next address. */
static bool
auth_act(struct conn *c, enum client_auth r)
{
	if (r == CLIENT_AUTH_FAILED)
		return next_target(c);
	if (r == CLIENT_AUTH_DONE)
		client_txn_start(c);
	return true;
}

static bool
after_ehlo(struct conn *c)
{
	const struct config *cfg = c->ob->cfg;

	if (!c->is_tls && !c->is_lmtp && (c->caps.ext & EHLO_STARTTLS) &&
	    c->ob->tls_client != NULL && c->tls_need != CONFIG_TLS_OFF) {
		client_send_line(c, "STARTTLS");
		c->ph = CP_STARTTLS;
		return true;
	}
	if (c->tls_need >= CONFIG_TLS_REQUIRED && !c->is_tls &&
	    c->job != NULL && (c->job->q->m->flags & MSG_F_TLS_OPTIONAL) &&
	    !(c->dest->is_smarthost && cfg->relay_password != NULL)) {
		/* RFC 8689 5: TLS-Required: No; never with our password. */
		log_msg(LOG_INFO, "ev=tls_policy_waived qid=%s peer=%s "
			"reason=no_starttls", c->job->q->m->qid_str,
			log_q(c->peer));
		c->is_policy_waived = true;
	} else if (c->tls_need >= CONFIG_TLS_REQUIRED && !c->is_tls) {
		client_tls_report(c, "starttls-not-supported",
				  "the MX host did not offer STARTTLS");
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "TLS is required for %s and %s did not offer "
			    "STARTTLS; nothing is sent in clear text",
			    c->dest->key, c->peer);
		return next_target(c);
	}
	if (c->dest->is_smarthost && cfg->relay_password != NULL &&
	    !c->is_authed)
		return auth_act(c, client_auth_start(c));
	client_txn_start(c);
	return true;
}

static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_read(struct bufferevent *bev, void *arg);

static bool
start_tls(struct conn *c)
{
	SSL *ssl = client_tls_ssl(c);
	struct bufferevent *b;

	if (ssl == NULL)
		return next_target(c);
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
	client_set_timeouts(c, c->ob->cfg->delivery_command_timeout,
			    c->ob->cfg->delivery_command_timeout);
	bufferevent_enable(b, EV_READ | EV_WRITE);
	return true;
}

/*
 * The handshake is done.  Where this address's policy asks for
 * verification, a certificate that does not verify ends the connection
 * before a word is sent over it: deferred with 4.7.5 and the reason,
 * never retried in clear text (REPLY-CODES.md).
 */
static bool
tls_done(struct conn *c)
{
	const struct config *cfg = c->ob->cfg;

	if (!client_tls_check(c))
		return next_target(c);
	memset(&c->caps, 0, sizeof c->caps);
	reply_acc_init(&c->acc);
	if (c->dest->is_implicit_tls) {
		c->ph = CP_GREETING; /* the 220 comes over TLS */
		return true;
	}
	client_send_line(c, "EHLO %s", cfg->server_hostname);
	c->ph = CP_EHLO;
	return true;
}

/* A reply before any transaction: greeting, EHLO/HELO, STARTTLS.
 * Returns false when c is gone. */
static bool
handshake_reply(struct conn *c, const char *line)
{
	unsigned code = c->rep.code;

	switch (c->ph) {
	case CP_GREETING:
	case CP_EHLO:
	case CP_HELO:
		if (code / 100 == 2) {
			if (c->ph == CP_GREETING) {
				memset(&c->caps, 0, sizeof c->caps);
				client_send_line(c, "%s %s",
						 c->is_lmtp ? "LHLO" : "EHLO",
						 c->ob->cfg->server_hostname);
				c->ph = CP_EHLO;
				return true;
			}
			return after_ehlo(c);
		}
		if (c->ph == CP_EHLO && code / 100 == 5 && !c->is_lmtp) {
			memset(&c->caps, 0, sizeof c->caps);
			client_send_line(c, "HELO %s",
					 c->ob->cfg->server_hostname);
			c->ph = CP_HELO;
			return true;
		}
		react_reply(c->ob,
			    c->ph == CP_GREETING ? REACT_GREETING : REACT_HELO,
			    code, c->rep.enh, line, c->rep.text, &c->fail);
		return next_target(c);
	case CP_AUTH:
	case CP_AUTH_USER:
	case CP_AUTH_PASS:
		return auth_act(c, client_auth_reply(c, line));
	case CP_STARTTLS:
		if (code == 220)
			return start_tls(c);
		if (c->tls_need >= CONFIG_TLS_REQUIRED || code == 421) {
			react_reply(c->ob, REACT_HELO, code, c->rep.enh, line,
				    c->rep.text, &c->fail);
			c->fail.kind = OC_DEFER;
			return next_target(c);
		}
		client_txn_start(c);
		return true;
	default:
		conn_end(c);
		return false;
	}
}

/*
 * QUIT is answered.  Over TLS: close_notify, FIN after it, and the peer's
 * end (on_event) within TLS_CLOSE_SECONDS, so the session does not look
 * truncated to it and our close meets no unread data.
 */
static void
conn_quit_done(struct conn *c)
{
	struct timeval tv = {TLS_CLOSE_SECONDS, 0};
	enum tls_close r = c->is_tls ? tls_close_notify(c->bev)
				     : TLS_CLOSE_NONE;

	if (r == TLS_CLOSE_NONE) {
		conn_end(c);
		return;
	}
	/* Pending: the socket bufferevent sends the rest meanwhile. */
	if (r == TLS_CLOSE_SENT)
		(void)shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	c->ph = CP_CLOSE;
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ);
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
	case CP_RSET:
	case CP_TXN:
	case CP_DOT:
	case CP_DOT_EMPTY:
		if (client_txn_reply(c, line))
			return true;
		return txn_closed(c);
	case CP_QUIT:
		conn_quit_done(c);
		return false;
	default:
		return handshake_reply(c, line);
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->ph == CP_CLOSE) {
		/* Nothing the peer says now matters. */
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
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
		client_set_timeouts(c, cfg->delivery_command_timeout,
				    cfg->delivery_command_timeout);
		reply_acc_init(&c->acc);
		if (c->ph == CP_TLS) {
			(void)tls_done(c);
			return;
		}
		if (c->dest->is_implicit_tls) {
			(void)start_tls(c);
			return;
		}
		c->ph = CP_GREETING;
		return;
	}
	if (c->ph == CP_QUIT || c->ph == CP_CLOSE) {
		conn_end(c);
		return;
	}
	if (c->ph == CP_TLS && !(what & BEV_EVENT_TIMEOUT)) {
		unsigned long e = bufferevent_get_openssl_error(c->bev);
		char buf[256] = "the peer closed the connection";
		if (e != 0)
			ERR_error_string_n(e, buf, sizeof buf);
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "TLS handshake with %s failed: %s", c->peer, buf);
	} else if (c->ph == CP_CONNECT)
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
	/* A new connection: nothing of the last one's TLS or count holds
	 * (a host that fails after STARTTLS must not make the next one
	 * look encrypted). */
	c->has_txn = false;
	c->is_tls = false;
	c->is_authed = false;
	c->is_verified = false;
	c->is_policy_waived = false;
	c->n_msgs = 0;
	free(c->tlsa);
	c->tlsa = NULL;
	c->n_tlsa = 0;
	c->is_tlsa_unusable = false;
	/* The name connected to: the MX host, or the route's host. */
	str_set(c->tls_name, sizeof c->tls_name,
		c->dest->kind == DEST_MX ? t->host : c->dest->host);
	if (client_wants_tlsa(c, t)) {
		c->ph = CP_TLSA;
		c->tlsa_req =
		    c->ob->hooks.tlsa_start(c->ob->hooks.arg, t->host,
					    client_target_port(t), on_tlsa, c);
		if (c->tlsa_req != NULL)
			return true;
		react_local(&c->fail, OC_DEFER, "4.3.0", "out of memory");
		return next_target(c);
	}
	return connect_target(c);
}

static bool
connect_target(struct conn *c)
{
	const struct outbound_target *t = &c->targets[c->ti];

	if (!client_tls_policy(c, t))
		return next_target(c);
	c->bev = bufferevent_socket_new(c->ob->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		react_local(&c->fail, OC_DEFER, "4.3.0", "out of memory");
		conn_end(c);
		return false;
	}
	c->ph = CP_CONNECT;
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	client_set_timeouts(c, c->ob->cfg->delivery_connect_timeout,
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
on_tlsa(void *arg, enum outbound_tlsa_status st, const struct outbound_tlsa *r,
	size_t n)
{
	struct conn *c = arg;
	const char *host = c->targets[c->ti].host;

	c->tlsa_req = NULL;
	if (st == OUTBOUND_TLSA_FAIL) {
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "the TLSA lookup of %s failed or did not validate "
			    "(DNSSEC); the host is not used until it does",
			    host);
		log_msg(LOG_WARN, "ev=dane_lookup_failed host=%s", log_q(host));
		client_tls_report(c, "dnssec-invalid",
				  "the TLSA lookup failed or did not validate");
		(void)next_target(c);
		return;
	}
	if (st == OUTBOUND_TLSA_USABLE && n > 0 &&
	    (c->tlsa = malloc(n * sizeof *r)) != NULL) {
		memcpy(c->tlsa, r, n * sizeof *r);
		c->n_tlsa = n;
	}
	c->is_tlsa_unusable = st == OUTBOUND_TLSA_UNUSABLE ||
			      (st == OUTBOUND_TLSA_USABLE && c->n_tlsa == 0);
	log_msg(LOG_INFO, "ev=dane host=%s records=%zu unusable=%d",
		log_q(host), c->n_tlsa, c->is_tlsa_unusable);
	(void)connect_target(c);
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
	if (c->sts_error[0] != '\0') {
		/* "result-type: words" from the policy fetch, reported once
		 * per connection (RFC 8460 4.3, the sts-* types). */
		char type[48];
		const char *colon = strchr(c->sts_error, ':');
		size_t len = colon ? (size_t)(colon - c->sts_error) : 0;
		if (len > 0 && len < sizeof type) {
			str_copy(type, sizeof type, c->sts_error, len);
			client_tls_report(c, type, colon + 2);
		}
	}
	try_target(c);
}

static void
start_resolve(struct conn *c)
{
	struct outbound *ob = c->ob;
	struct dest *d = c->dest;

	c->ph = CP_RESOLVE;
	c->resolving =
	    ob->hooks.resolve_start(ob->hooks.arg, d->host, d->kind == DEST_MX,
				    d->port, on_resolved, c);
	if (c->resolving == NULL) {
		react_local(&c->fail, OC_DEFER, "4.3.0",
			    "cannot start resolving %s", d->host);
		conn_end(c);
	}
}

/* MTA-STS applies to a domain reached through its MX records. */
static bool
wants_sts(const struct conn *c)
{
	const struct config *cfg = c->ob->cfg;

	return c->dest->kind == DEST_MX && cfg->delivery_mta_sts &&
	       c->dest->tls != CONFIG_TLS_OFF &&
	       c->ob->hooks.sts_start != NULL;
}

static void
on_sts(void *arg, const struct sts_policy *p, const char *error)
{
	struct conn *c = arg;

	c->sts_req = NULL;
	if (p != NULL && p->mode != STS_MODE_NONE &&
	    (c->sts = malloc(sizeof *c->sts)) != NULL)
		*c->sts = *p;
	str_set(c->sts_error, sizeof c->sts_error, error ? error : "");
	start_resolve(c);
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
	if (wants_sts(c)) {
		c->ph = CP_POLICY;
		c->sts_req = ob->hooks.sts_start(ob->hooks.arg, d->host, on_sts,
						 c);
		if (c->sts_req != NULL)
			return 0;
	}
	start_resolve(c);
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
