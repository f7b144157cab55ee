/*
 * router.c - the router: starting and stopping the delivery agents, and
 * the one split of a committed message between them.
 *
 * server/server.c starts the router once the spool is open (recovery
 * waits for it), hands it every recovered message, then calls
 * route_ready(); sessions, the pickup and the sending side hand it every
 * message they commit (route_committed).  Which agent takes a recipient
 * is decided here only: the Maildir worker for a local mailbox, the
 * sending side for another domain, and for a local mailbox too when
 * [local] lmtp is set.  The split is made again from the stored route at
 * every start, so a change of [local] lmtp applies to queued mail.
 */
#include <stdlib.h>
#include <string.h>

#include "deliver/deliver.h"
#include "outbound/outbound.h"
#include "policy/dns.h"
#include "policy/tlspolicy.h"
#include "route/route_int.h"
#include "tls/tls.h"

/*
 * Which agent delivers a recipient not done yet: another domain goes to
 * the sending side, a local mailbox to the Maildir worker, or to the
 * sending side's LMTP client when [local] lmtp is set.  While stopping,
 * an agent that is gone takes nothing: the spool keeps the recipient.
 */
static enum msg_agent
agent_of(const struct router *r, const struct msg_rcpt *mr)
{
	bool is_lmtp = r->cfg->lmtp_target != NULL;

	if (mr->is_done)
		return MSG_AGENT_NONE;
	if (mr->route == MSG_ROUTE_REMOTE ||
	    (mr->route == MSG_ROUTE_LOCAL && is_lmtp))
		return r->outbound != NULL ? MSG_AGENT_OUTBOUND
					   : MSG_AGENT_NONE;
	if (mr->route == MSG_ROUTE_LOCAL && r->deliver != NULL)
		return MSG_AGENT_MAILDIR;
	return MSG_AGENT_NONE;
}

void
route_committed(struct router *r, struct msg *m_take)
{
	bool is_local = false, is_out = false;

	for (size_t i = 0; i < m_take->n_rcpts; i++) {
		struct msg_rcpt *mr = &m_take->rcpts[i];
		mr->agent = agent_of(r, mr);
		is_out |= mr->agent == MSG_AGENT_OUTBOUND;
		is_local |= mr->agent == MSG_AGENT_MAILDIR;
	}
	if (is_out && is_local)
		msg_ref(m_take);
	if (is_out)
		outbound_submit(r->outbound, m_take);
	if (is_local)
		deliver_submit(r->deliver, m_take);
	if (!is_out && !is_local)
		msg_free(m_take);
}

/* The sending side: resolver, client TLS context, outbound/. */
static int
sending_start(struct router *r, char *err, size_t size)
{
	struct outbound_hooks hooks;

	r->resolver = dns_open(r->cfg, r->base, err, size);
	if (r->resolver == NULL)
		return -1;
	/* Made even with [delivery] tls = off: an smtps: relayhost or a
	 * tls= route still asks for TLS. */
	r->tls_client = tls_client_ctx_new(r->cfg->delivery_tls_ca, err, size);
	if (r->tls_client == NULL)
		return -1;
	r->tlspol = tlspol_open(r->cfg, r->resolver, r->base, err, size);
	if (r->tlspol == NULL || route_tlsrpt_start(r) != 0)
		return -1;
	route_hooks_fill(r, &hooks);
	r->outbound = outbound_start(r->cfg, r->base, r->spool, r->tls_client,
				     &hooks, err, size);
	return r->outbound == NULL ? -1 : 0;
}

int
route_start(struct router *r, const struct config *cfg,
	    const struct users *users, struct event_base *base,
	    struct spool *sp, char *err, size_t size)
{
	memset(r, 0, sizeof *r);
	r->cfg = cfg;
	r->users = users;
	r->base = base;
	r->spool = sp;
	r->signers = route_signers_load(cfg, err, size);
	if (r->signers == NULL)
		return -1;
	r->deliver = deliver_start(cfg, sp, err, size);
	if (r->deliver == NULL || sending_start(r, err, size) != 0) {
		route_stop(r);
		return -1;
	}
	return 0;
}

void
route_ready(struct router *r)
{
	outbound_ready(r->outbound);
}

int
route_reload(struct router *r, const struct config *cfg, char *err, size_t size)
{
	route_signers_free(r->signers_next);
	r->signers_next = route_signers_load(cfg, err, size);
	if (r->signers_next == NULL)
		return -1;
	if (r->outbound == NULL)
		return 0;
	return outbound_reload(r->outbound, cfg, err, size);
}

void
route_set_config(struct router *r, const struct config *cfg,
		 const struct users *users)
{
	r->cfg = cfg;
	r->users = users;
	tlspol_reload(r->tlspol, cfg);
	if (r->signers_next != NULL) {
		route_signers_free(r->signers);
		r->signers = r->signers_next;
		r->signers_next = NULL;
	}
}

void
route_stop(struct router *r)
{
	route_pickup_stop(r);
	/* Connections end first: what they settled reaches the spool. */
	outbound_stop(r->outbound);
	r->outbound = NULL;
	route_tlsrpt_stop(r);
	tlspol_close(r->tlspol);
	r->tlspol = NULL;
	dns_close(r->resolver);
	r->resolver = NULL;
	if (r->tls_client != NULL)
		SSL_CTX_free(r->tls_client);
	r->tls_client = NULL;
	/* Delivery reports done records to the spool: it stops before the
	 * spool closes.  A commit that still completes then finds no
	 * delivery agent and stays in the spool for the next start. */
	deliver_stop(r->deliver);
	r->deliver = NULL;
	route_signers_free(r->signers);
	route_signers_free(r->signers_next);
	r->signers = r->signers_next = NULL;
}
