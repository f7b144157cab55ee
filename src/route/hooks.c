/*
 * hooks.c - what the router lends the sending side.
 *
 * outbound/ may not reach policy/ or explain/ (STYLE.md layers), so the
 * router lends it, through struct outbound_hooks: DNS resolution
 * (policy/dns_resolve.c), the commit of the messages it makes (bounces,
 * 551 resends) with their recipients decided by route_rcpt() as for a
 * trusted client, and the explain texts for bounces and `postern queue
 * show` (explain/, a layer outbound/ shares and so may not include).
 * route_hooks_fill() is called by router.c when it starts the sending side.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explain.h"
#include "outbound/outbound.h"
#include "policy/dns.h"
#include "policy/tlspolicy.h"
#include "route/route_int.h"
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
	struct resolving *rs = arg;
	struct outbound_target v[DNS_TARGETS_MAX];
	static const enum outbound_resolve_status map[] = {
	    [DNS_RESOLVED] = OUTBOUND_RESOLVED,
	    [DNS_RESOLVE_NOHOST] = OUTBOUND_NOHOST,
	    [DNS_RESOLVE_NULLMX] = OUTBOUND_NULLMX,
	    [DNS_RESOLVE_TEMPFAIL] = OUTBOUND_TEMPFAIL,
	};

	if (rs->cb != NULL) {
		if (n > DNS_TARGETS_MAX)
			n = DNS_TARGETS_MAX;
		for (size_t i = 0; i < n; i++) {
			str_set(v[i].host, sizeof v[i].host, t[i].host);
			memcpy(&v[i].ss, &t[i].ss, sizeof v[i].ss);
			v[i].sslen = t[i].sslen;
			v[i].is_secure = t[i].is_secure;
		}
		rs->cb(rs->cbarg, map[st], v, n);
	}
	free(rs);
}

static void *
hook_resolve_start(void *arg, const char *name, bool is_mx, uint16_t port,
		   outbound_resolved_fn cb, void *cbarg)
{
	struct router *r = arg;
	struct resolving *rs = calloc(1, sizeof *rs);

	if (rs == NULL)
		return NULL;
	rs->cb = cb;
	rs->cbarg = cbarg;
	if (dns_resolve_start(r->resolver, name, is_mx, port, on_resolved,
			      rs) == NULL) {
		free(rs);
		return NULL;
	}
	return rs;
}

static void
hook_resolve_cancel(void *arg, void *handle)
{
	struct resolving *rs = handle;

	(void)arg;
	rs->cb = NULL;
}

/* A message the sending side made, on its way into the spool. */
struct inject {
	struct router *r;
	outbound_injected_fn done;
	void *done_arg;
};

static void
on_inject_committed(void *arg, struct msg *m, int err)
{
	struct inject *in = arg;
	struct router *r = in->r;

	r->commits_pending--;
	in->done(in->done_arg, err);
	free(in);
	if (err != 0) {
		log_msg(LOG_ERR, "ev=spool_failed qid=%s error=%s", m->qid_str,
			log_q(strerror(err)));
		msg_free(m);
		return;
	}
	log_msg(LOG_INFO,
		"ev=queued qid=%s from=%s rcpts=%zu size=%zu "
		"origin=local",
		m->qid_str, log_q(m->sender), m->n_rcpts, m->data_len);
	route_committed(r, m);
}

/*
 * Routes every recipient as RCPT would for an authenticated client;
 * one that no longer exists is dropped (a bounce to a removed user goes
 * nowhere).  Returns the recipients left.
 */
static size_t
inject_rcpts(struct router *r, struct msg *m)
{
	const struct route_req rq = {
	    .cfg = r->cfg, .users = r->users, .is_trusted = true};
	size_t kept = 0;

	for (size_t i = 0; i < m->n_rcpts; i++) {
		struct msg_rcpt *mr = &m->rcpts[i];
		struct rcpt_verdict v;
		struct addr a;
		char *mb;

		if (addr_parse_mailbox(mr->mailbox, strlen(mr->mailbox),
				       ADDR_ALLOW_UTF8, &a) != ADDR_OK ||
		    (route_rcpt(&rq, &a, &v), v.route == RCPT_ROUTE_NONE) ||
		    (mb = strdup(v.mailbox)) == NULL) {
			log_msg(LOG_WARN,
				"ev=rcpt_dropped qid=%s rcpt=%s "
				"reason=no_such_recipient",
				m->qid_str, log_q(mr->mailbox));
			mr->is_done = true;
			continue;
		}
		free(mr->mailbox);
		mr->mailbox = mb;
		mr->route = route_msg_route(&v);
		kept++;
	}
	return kept;
}

static void
hook_inject(void *arg, struct msg *m, outbound_injected_fn done, void *done_arg)
{
	route_inject(arg, m, done, done_arg);
}

void
route_inject(struct router *r, struct msg *m, outbound_injected_fn done,
	     void *done_arg)
{
	struct inject *in;

	msg_set_qid(m, spool_new_qid(r->spool));
	if (inject_rcpts(r, m) == 0) {
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
	in->r = r;
	in->done = done;
	in->done_arg = done_arg;
	/* Our bounces and notices (the null sender) are signed; a 551
	 * resend keeps the sender's message as it came. */
	if (m->sender[0] == '\0' && route_sign_msg(r, m) != 0)
		log_msg(LOG_WARN, "ev=dkim_unsigned qid=%s "
			"reason=out_of_memory", m->qid_str);
	r->commits_pending++;
	spool_commit(r->spool, m, on_inject_committed, in);
}

static void
hook_explain(void *arg, const char *reply, char *buf, size_t size)
{
	(void)arg;
	if (size == 0)
		return;
	buf[0] = '\0';
	if (explain_reply_format(reply, buf, size) < 0)
		buf[0] = '\0';
}

static void *
hook_tlsa_start(void *arg, const char *host, uint16_t port,
		outbound_tlsa_fn cb, void *cbarg)
{
	struct router *r = arg;

	return tlspol_tlsa_start(r->tlspol, host, port, cb, cbarg);
}

static void
hook_tlsa_cancel(void *arg, void *handle)
{
	(void)arg;
	tlspol_tlsa_cancel(handle);
}

static void *
hook_sts_start(void *arg, const char *domain, outbound_sts_fn cb, void *cbarg)
{
	struct router *r = arg;

	return tlspol_sts_start(r->tlspol, domain, cb, cbarg);
}

static void
hook_sts_cancel(void *arg, void *handle)
{
	(void)arg;
	tlspol_sts_cancel(handle);
}

static void
hook_tls_result(void *arg, const struct outbound_tls_result *res)
{
	struct router *r = arg;

	tlspol_tls_result(r->tlspol, res);
}

void
route_hooks_fill(struct router *r, struct outbound_hooks *out)
{
	memset(out, 0, sizeof *out);
	out->arg = r;
	out->resolve_start = hook_resolve_start;
	out->resolve_cancel = hook_resolve_cancel;
	out->inject = hook_inject;
	out->explain = hook_explain;
	if (r->tlspol != NULL) {
		out->tlsa_start = hook_tlsa_start;
		out->tlsa_cancel = hook_tlsa_cancel;
		out->sts_start = hook_sts_start;
		out->sts_cancel = hook_sts_cancel;
		out->tls_result = hook_tls_result;
	}
}
