/*
 * sending.c - where committed messages go, and what the sending side
 * borrows from the server.
 *
 * server_route_committed() splits a message between the Maildir worker
 * (local recipients) and outbound/ (other domains; local ones too when
 * [local] lmtp is set); a message with both is shared by reference.
 * outbound/ may not reach policy/ or explain/ (STYLE.md layers), so the
 * server lends it: DNS resolution (policy/dns_resolve.c), the commit of
 * new messages with their recipients routed by the same policy as RCPT
 * (bounces, 551 resends), and the explain texts for bounces (which
 * cli/serve.c lends the server in srv->explain).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "outbound/outbound.h"
#include "policy/dns.h"
#include "policy/rcpt.h"
#include "server/server.h"
#include "util/log.h"
#include "util/str.h"

/* A resolution in flight; freed when DNS answers, even if cancelled. */
struct resolving {
	outbound_resolved_fn cb; /* NULL once cancelled */
	void *cbarg;
};

static void
on_resolved(void *arg, enum dns_resolve_status st, const struct dns_target *t,
	    size_t n)
{
	struct resolving *r = arg;
	struct outbound_target v[DNS_TARGETS_MAX];
	static const enum outbound_resolve_status map[] = {
		[DNS_RESOLVED] = OUTBOUND_RESOLVED,
		[DNS_RESOLVE_NOHOST] = OUTBOUND_NOHOST,
		[DNS_RESOLVE_NULLMX] = OUTBOUND_NULLMX,
		[DNS_RESOLVE_TEMPFAIL] = OUTBOUND_TEMPFAIL,
	};

	if (r->cb != NULL) {
		if (n > DNS_TARGETS_MAX)
			n = DNS_TARGETS_MAX;
		for (size_t i = 0; i < n; i++) {
			str_set(v[i].host, sizeof v[i].host, t[i].host);
			memcpy(&v[i].ss, &t[i].ss, sizeof v[i].ss);
			v[i].sslen = t[i].sslen;
		}
		r->cb(r->cbarg, map[st], v, n);
	}
	free(r);
}

static void *
hook_resolve_start(void *arg, const char *name, bool is_mx, uint16_t port,
		   outbound_resolved_fn cb, void *cbarg)
{
	struct server *srv = arg;
	struct resolving *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->cb = cb;
	r->cbarg = cbarg;
	if (dns_resolve_start(srv->resolver, name, is_mx, port, on_resolved,
			      r) == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

static void
hook_resolve_cancel(void *arg, void *handle)
{
	struct resolving *r = handle;

	(void)arg;
	r->cb = NULL;
}

/* A message the sending side made, on its way into the spool. */
struct inject {
	struct server *srv;
	outbound_injected_fn done;
	void *done_arg;
};

static void
on_inject_committed(void *arg, struct msg *m, int err)
{
	struct inject *in = arg;
	struct server *srv = in->srv;

	srv->commits_pending--;
	in->done(in->done_arg, err);
	free(in);
	if (err != 0) {
		log_msg(LOG_ERR, "ev=spool_failed qid=%s error=%s",
			m->qid_str, log_q(strerror(err)));
		msg_free(m);
		return;
	}
	log_msg(LOG_INFO, "ev=queued qid=%s from=%s rcpts=%zu size=%zu "
		"origin=local", m->qid_str, log_q(m->sender), m->n_rcpts,
		m->data_len);
	server_route_committed(srv, m);
}

/*
 * Routes every recipient as RCPT would for an authenticated client;
 * one that no longer exists is dropped (a bounce to a removed user goes
 * nowhere).  Returns the recipients left.
 */
static size_t
route_rcpts(struct server *srv, struct msg *m)
{
	size_t kept = 0;

	for (size_t i = 0; i < m->n_rcpts; i++) {
		struct msg_rcpt *r = &m->rcpts[i];
		struct rcpt_verdict v;
		struct addr a;
		char *mb;

		if (addr_parse_mailbox(r->mailbox, strlen(r->mailbox),
				       ADDR_ALLOW_UTF8, &a) != ADDR_OK ||
		    (policy_rcpt_check(srv->cfg, srv->users, &a, true, &v),
		     v.route == RCPT_ROUTE_NONE) ||
		    (mb = strdup(v.mailbox)) == NULL) {
			log_msg(LOG_WARN, "ev=rcpt_dropped qid=%s rcpt=%s "
				"reason=no_such_recipient", m->qid_str,
				log_q(r->mailbox));
			r->is_done = true;
			continue;
		}
		free(r->mailbox);
		r->mailbox = mb;
		r->route = v.route == RCPT_ROUTE_LOCAL ? MSG_ROUTE_LOCAL
						       : MSG_ROUTE_REMOTE;
		kept++;
	}
	return kept;
}

static void
hook_inject(void *arg, struct msg *m, outbound_injected_fn done,
	    void *done_arg)
{
	struct server *srv = arg;
	struct inject *in;

	msg_set_qid(m, spool_new_qid(srv->spool));
	if (route_rcpts(srv, m) == 0) {
		/* Nobody to send it to: settled, as a 550 would be. */
		msg_free(m);
		done(done_arg, 0);
		return;
	}
	in = calloc(1, sizeof *in);
	if (in == NULL) {
		msg_free(m);
		done(done_arg, ENOMEM);
		return;
	}
	in->srv = srv;
	in->done = done;
	in->done_arg = done_arg;
	srv->commits_pending++;
	spool_commit(srv->spool, m, on_inject_committed, in);
}

static void
hook_explain(void *arg, const char *reply, char *buf, size_t size)
{
	struct server *srv = arg;

	if (size == 0)
		return;
	buf[0] = '\0';
	if (srv->explain != NULL && srv->explain(reply, buf, size) < 0)
		buf[0] = '\0';
}

int
sending_start(struct server *srv, char *err, size_t size)
{
	const struct config *cfg = srv->cfg;
	struct outbound_hooks hooks = {
		.arg = srv,
		.resolve_start = hook_resolve_start,
		.resolve_cancel = hook_resolve_cancel,
		.inject = hook_inject,
		.explain = hook_explain,
	};

	srv->resolver = dns_open(cfg, srv->base, err, size);
	if (srv->resolver == NULL)
		return -1;
	if (cfg->tls_out != 0 &&
	    (srv->tls_client = tls_client_ctx_new(err, size)) == NULL)
		return -1;
	srv->outbound = outbound_start(cfg, srv->base, srv->spool,
				       srv->tls_client, &hooks, err, size);
	return srv->outbound == NULL ? -1 : 0;
}

void
sending_stop(struct server *srv)
{
	outbound_stop(srv->outbound);
	srv->outbound = NULL;
	dns_close(srv->resolver);
	srv->resolver = NULL;
	if (srv->tls_client != NULL)
		SSL_CTX_free(srv->tls_client);
	srv->tls_client = NULL;
}

void
server_route_committed(struct server *srv, struct msg *m_take)
{
	bool is_local = false, is_out = false;

	for (size_t i = 0; i < m_take->n_rcpts; i++) {
		const struct msg_rcpt *r = &m_take->rcpts[i];
		if (r->is_done)
			continue;
		if (srv->outbound != NULL && outbound_wants(srv->cfg, r))
			is_out = true;
		else if (r->route == MSG_ROUTE_LOCAL)
			is_local = true;
	}
	if (srv->deliver == NULL)
		is_local = false; /* stopping: it stays in the spool */
	if (is_out && is_local)
		msg_ref(m_take);
	if (is_out)
		outbound_submit(srv->outbound, m_take);
	if (is_local)
		deliver_submit(srv->deliver, m_take);
	if (!is_out && !is_local)
		msg_free(m_take);
}
