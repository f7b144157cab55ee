/*
 * ctl.c - the control socket: runtime control for `postern ctl`.
 *
 * A Unix stream socket at [control] socket, mode 0600 (only the server's
 * user may steer it).  A client sends one line and gets one line back:
 *
 *	maintenance on|off|status  ->  "ok maintenance on" / "maintenance off"
 *	reload                     ->  "ok reloaded" (as SIGHUP) or "error ..."
 *	stop                       ->  "ok stopping" (as SIGTERM)
 *	pickup                     ->  "ok" (`postern send` left mail)
 *	tls-report send            ->  "ok ..." (the TLS reports due and
 *	                               today's go out now)
 *	queue list|show ID|flush|delete ID|hold ID|release ID
 *	                           ->  "ok" and lines, or "error: ..."
 *	                               (outbound/qctl.c; postern queue)
 *	queue stats                ->  "ok" and the spool's figures
 *
 * The server closes the connection after its answer: a client reads to
 * the end.
 * Maintenance mode answers every new connection with 421 4.3.2 instead of
 * the banner (REPLY-CODES.md); sessions already open go on.  It is not
 * kept across a restart.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "outbound/outbound.h"
#include "server/server.h"
#include "util/log.h"
#include "util/str.h"

#define CTL_LINE_MAX 256
#define CTL_TIMEOUT_SECONDS 5
#define CTL_BACKLOG 16

struct ctl_conn {
	struct server *srv;
	struct bufferevent *bev;
	struct ctl_conn *next, *prev;
	bool is_stop_after; /* stop the server once the reply is out */
};

static void
conn_free(struct ctl_conn *c)
{
	struct server *srv = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		srv->ctl_conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	bufferevent_free(c->bev);
	free(c);
}

static void
on_conn_flushed(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;
	struct server *srv = c->srv;
	bool is_stop = c->is_stop_after;

	(void)bev;
	conn_free(c);
	if (is_stop)
		server_stop(srv);
}

/* The reply to one command line. */
static const char *
ctl_run(struct ctl_conn *c, const char *line)
{
	struct server *srv = c->srv;

	if (strcmp(line, "maintenance on") == 0 ||
	    strcmp(line, "maintenance off") == 0) {
		srv->is_maintenance = line[13] == 'n';
		log_msg(LOG_INFO, "ev=maintenance state=%s",
			srv->is_maintenance ? "on" : "off");
		return srv->is_maintenance ? "ok maintenance on"
					   : "ok maintenance off";
	}
	if (strcmp(line, "maintenance status") == 0)
		return srv->is_maintenance ? "maintenance on"
					   : "maintenance off";
	if (strcmp(line, "reload") == 0)
		return server_reload(srv) == 0
			       ? "ok reloaded"
			       : "error: reload failed; the server log says "
				 "which file and why (the old one stays in use)";
	if (strcmp(line, "stop") == 0) {
		c->is_stop_after = true;
		return "ok stopping";
	}
	if (strcmp(line, "pickup") == 0) {
		route_pickup_run(&srv->router);
		return "ok";
	}
	if (strcmp(line, "tls-report send") == 0)
		return route_tlsrpt_send(&srv->router, true) < 0
			   ? "error: the TLS report store cannot be read; "
			     "the server log says why"
			   : "ok sending the TLS reports due";
	return "error: unknown command; use maintenance on|off|status, "
	       "reload, stop, pickup, tls-report send or queue ...";
}

/*
 * The spool's octets: what queued mail (local and outgoing) needs, what
 * is on disk, what compaction copied; one "name: value" line each.
 */
static void
put_stats(const struct server *srv, struct evbuffer *out)
{
	struct spool_stats st;

	spool_stats(srv->spool, &st);
	evbuffer_add_printf(out,
			    "ok\n"
			    "spool needed: %llu octets (queued mail)\n"
			    "spool on disk: %llu octets (segments and done "
			    "records)\n"
			    "spool compaction copied: %llu octets since "
			    "start\n",
			    (unsigned long long)st.live,
			    (unsigned long long)st.disk,
			    (unsigned long long)st.copied);
}

static void
on_conn_read(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = 0;
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
	const char *reply;

	if (line == NULL) {
		if (evbuffer_get_length(in) > CTL_LINE_MAX)
			conn_free(c);
		return;
	}
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, on_conn_flushed, NULL, c);
	if (strcmp(line, "queue stats") == 0) {
		put_stats(c->srv, bufferevent_get_output(bev));
		free(line);
		return;
	}
	if (n <= CTL_LINE_MAX && strncmp(line, "queue ", 6) == 0 &&
	    c->srv->router.outbound != NULL) {
		outbound_ctl(c->srv->router.outbound, line + 6,
			     bufferevent_get_output(bev));
		free(line);
		return;
	}
	reply = n > CTL_LINE_MAX ? "error: line too long" : ctl_run(c, line);
	free(line);
	evbuffer_add_printf(bufferevent_get_output(bev), "%s\n", reply);
}

static void
on_conn_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	conn_free(arg);
}

static void
on_ctl_accept(struct evconnlistener *l, evutil_socket_t fd,
	      struct sockaddr *sa, int salen, void *arg)
{
	struct server *srv = arg;
	struct ctl_conn *c = calloc(1, sizeof *c);
	struct timeval tv = {CTL_TIMEOUT_SECONDS, 0};

	(void)l;
	(void)sa;
	(void)salen;
	if (c == NULL ||
	    (c->bev = bufferevent_socket_new(srv->base, fd,
					     BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(c);
		close(fd);
		return;
	}
	c->srv = srv;
	c->next = srv->ctl_conns;
	if (c->next)
		c->next->prev = c;
	srv->ctl_conns = c;
	bufferevent_setcb(c->bev, on_conn_read, NULL, on_conn_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* True when a server already answers on path. */
static bool
is_in_use(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool in_use;

	if (fd < 0)
		return false;
	in_use = connect(fd, (const struct sockaddr *)sun, sizeof *sun) == 0;
	close(fd);
	return in_use;
}

int
ctl_start(struct server *srv, char *err, size_t size)
{
	const char *path = srv->cfg->control_socket;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	mode_t old;
	int fd;

	if (path[0] == '\0')
		return 0;
	if (!str_set(sun.sun_path, sizeof sun.sun_path, path)) {
		snprintf(err, size, "[control] socket = %s: longer than %zu "
			 "octets; choose a shorter path", path,
			 sizeof sun.sun_path - 1);
		return -1;
	}
	if (is_in_use(&sun)) {
		snprintf(err, size, "[control] socket %s is in use by another "
			 "postern; stop it or give this one its own socket",
			 path);
		return -1;
	}
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	old = umask(0177); /* the socket is born 0600 */
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		umask(old);
		snprintf(err, size, "cannot create the control socket %s: %s; "
			 "check that its directory exists and is writable",
			 path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	umask(old);
	srv->ctl_listener = evconnlistener_new(
		srv->base, on_ctl_accept, srv,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, CTL_BACKLOG, fd);
	if (srv->ctl_listener == NULL) {
		close(fd);
		snprintf(err, size, "cannot listen on the control socket %s",
			 path);
		return -1;
	}
	log_msg(LOG_INFO, "ev=listen addr=%s kind=control", log_q(path));
	return 0;
}

void
ctl_stop(struct server *srv)
{
	if (srv->ctl_listener == NULL)
		return;
	evconnlistener_free(srv->ctl_listener);
	srv->ctl_listener = NULL;
	unlink(srv->cfg->control_socket);
}

void
ctl_free(struct server *srv)
{
	struct ctl_conn *c = srv->ctl_conns, *next;

	ctl_stop(srv);
	srv->ctl_conns = NULL;
	for (; c != NULL; c = next) {
		next = c->next;
		bufferevent_free(c->bev);
		free(c);
	}
}
