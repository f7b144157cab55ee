/*
 * outbound.c - the sending side's public API (outbound.h): start, reload,
 * submit, ready, stop.  `postern queue` requests are qctl.c's.
 *
 * outbound_start() reads [delivery] routes (dest.c) and SPOOL/
 * queue.state (state.c) and starts the scheduler's tick (dispatch.c);
 * nothing is sent before outbound_ready(), after the spool's recovery has
 * submitted every message it found.  A submitted message joins the queue
 * (queue.c) with the recipients route/ gave it (MSG_AGENT_OUTBOUND),
 * takes its saved state
 * and is due at the next dispatch.  outbound_stop() closes every
 * connection; what was not decided stays in the spool for the next start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbound/outbound_int.h"
#include "util/log.h"

struct outbound *
outbound_start(const struct config *cfg, struct event_base *base,
	       struct spool *sp, SSL_CTX *tls_client,
	       const struct outbound_hooks *hooks, char *err, size_t size)
{
	struct outbound *ob = calloc(1, sizeof *ob);

	if (ob == NULL) {
		snprintf(err, size, "out of memory");
		return NULL;
	}
	ob->cfg = cfg;
	ob->base = base;
	ob->sp = sp;
	ob->tls_client = tls_client;
	ob->hooks = *hooks;
	hist_init(&ob->delivery_hist, HIST_DELIVERY);
	if (dest_routes_load(ob, err, size) != 0 ||
	    state_open(ob, cfg->spool_dir, err, size) != 0 ||
	    dispatch_start(ob, err, size) != 0) {
		outbound_stop(ob);
		return NULL;
	}
	return ob;
}

int
outbound_reload(struct outbound *ob, const struct config *cfg, char *err,
		size_t size)
{
	const struct config *old_cfg = ob->cfg;
	struct ob_route *old = ob->routes, old_relay = ob->relay;
	size_t n_old = ob->n_routes;

	ob->cfg = cfg;
	ob->routes = NULL;
	ob->n_routes = 0;
	memset(&ob->relay, 0, sizeof ob->relay);
	if (dest_routes_load(ob, err, size) != 0) {
		dest_routes_free(ob);
		ob->cfg = old_cfg;
		ob->routes = old;
		ob->n_routes = n_old;
		ob->relay = old_relay;
		return -1;
	}
	for (size_t i = 0; i < n_old; i++) {
		free(old[i].domain);
		free(old[i].host);
	}
	free(old);
	free(old_relay.host);
	ob_wake(ob);
	return 0;
}

void
outbound_submit(struct outbound *ob, struct msg *m_take)
{
	struct qmsg *q = queue_add(ob, m_take);

	if (q == NULL)
		return;
	for (size_t i = 0; i < q->m->n_rcpts; i++)
		if (q->m->rcpts[i].agent == MSG_AGENT_OUTBOUND)
			q->r[i].state = QR_WAITING;
	state_apply(ob, q);
	dispatch_mark_due(ob, q);
}

void
outbound_ready(struct outbound *ob)
{
	state_compact(ob);
	ob->is_ready = true;
	log_msg(LOG_INFO, "ev=outbound_ready messages=%zu", ob->n_msgs);
	ob_wake(ob);
}

void
outbound_stop(struct outbound *ob)
{
	if (ob == NULL)
		return;
	ob->is_stopping = true;
	client_stop_all(ob);
	finish_detach(ob);
	jobs_free_ready(ob);
	queue_free_all(ob);
	state_close(ob);
	dest_free_all(ob);
	dest_routes_free(ob);
	dispatch_stop(ob);
	log_msg(LOG_INFO,
		"ev=outbound_stopped sent=%llu bounced=%llu "
		"deferred=%llu",
		ob->n_sent, ob->n_bounced, ob->n_deferred);
	free(ob);
}
