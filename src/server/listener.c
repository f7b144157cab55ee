/*
 * listener.c - the listening sockets and the per-client session counts.
 *
 * Binds every address of [server] smtp (IPv4 and IPv6) with libevent's
 * evconnlistener; each accepted socket becomes a session.  When accept()
 * runs out of descriptors, accepting pauses for a second instead of
 * spinning (OpenSMTPD does the same).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/session.h"
#include "util/log.h"
#include "util/str.h"

#define LISTEN_BACKLOG 1024
#define ACCEPT_PAUSE_SECONDS 1

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
	  int salen, void *arg)
{
	struct server_listener *sl = arg;

	(void)l;
	session_start(sl->srv, sl->kind, fd, sa, salen);
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < srv->n_listeners; i++)
		evconnlistener_enable(srv->listeners[i].l);
}

static void
on_accept_error(struct evconnlistener *l, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = {ACCEPT_PAUSE_SECONDS, 0};
	int e = EVUTIL_SOCKET_ERROR();

	(void)l;
	log_msg(LOG_WARN, "ev=accept_failed error=%s pause=%ds",
		log_q(evutil_socket_error_to_string(e)), ACCEPT_PAUSE_SECONDS);
	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		for (size_t i = 0; i < srv->n_listeners; i++)
			evconnlistener_disable(srv->listeners[i].l);
		event_base_once(srv->base, -1, EV_TIMEOUT, on_resume, srv, &tv);
	}
}

int
listener_start(struct server *srv, char *err, size_t size)
{
	static const char *const kinds[] = {"smtp", "submission", "smtps"};
	const struct config *cfg = srv->cfg;

	for (size_t i = 0; i < cfg->n_listen; i++) {
		const struct config_listen *a = &cfg->listen[i];
		struct server_listener *sl = &srv->listeners[srv->n_listeners];

		sl->srv = srv;
		sl->kind = a->kind;
		sl->l = evconnlistener_new_bind(
			srv->base, on_accept, sl,
			LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
				LEV_OPT_CLOSE_ON_EXEC |
				/* [::]:25 beside 0.0.0.0:25 */
				(a->ss.ss_family == AF_INET6
					 ? LEV_OPT_BIND_IPV6ONLY
					 : 0),
			LISTEN_BACKLOG, (const struct sockaddr *)&a->ss,
			a->sslen);
		if (sl->l == NULL) {
			snprintf(err, size, "cannot listen on %s: %s; stop what "
				 "uses that port or change [server] %s in %s",
				 a->text, strerror(errno), kinds[a->kind],
				 cfg->path);
			return -1;
		}
		evconnlistener_set_error_cb(sl->l, on_accept_error);
		srv->n_listeners++;
		log_msg(LOG_INFO, "ev=listen addr=%s kind=%s", a->text,
			kinds[a->kind]);
	}
	return 0;
}

void
listener_stop(struct server *srv)
{
	for (size_t i = 0; i < srv->n_listeners; i++)
		evconnlistener_free(srv->listeners[i].l);
	srv->n_listeners = 0;
}
