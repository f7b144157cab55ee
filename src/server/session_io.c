/*
 * session_io.c - a session's socket: its replies on the way out, and its
 * closing.
 *
 * Who calls it: session.c (session_output from the reply choke point,
 * session_close_start after a reply that closes, session_set_bev at
 * accept), session_cmd_tls.c (session_set_bev after STARTTLS) and server.c
 * (session_free).  What it promises (docs/design/overview.md):
 *  - replies queued during one turn of the event loop leave in one
 *    writev at its end (session_on_flush); only what a plain socket does
 *    not take at once waits for libevent's write event, and TLS sessions
 *    always go through OpenSSL's bufferevent;
 *  - a client that does not read its replies stops the command loop
 *    until its output has drained (session_wait_drained);
 *  - after a 421, QUIT's 221 or a 554 5.5.0 nothing more is read, and
 *    the session is freed once its last reply has left - through the TLS
 *    filter and the socket below it; a TLS session then sends
 *    close_notify, shuts its write side (FIN right after the alert) and
 *    waits up to TLS_CLOSE_SECONDS for the client's end, reading and
 *    dropping what comes, so the close neither looks truncated to the
 *    client nor meets unread data (which turns a FIN into a RST); a
 *    session freed any other way sends close_notify if it can, without
 *    waiting;
 *  - idle_timeout of silence gives 421 4.4.2, except while the server
 *    itself is working (commit, password check, policy); EOF or an error
 *    drops whatever was in progress (nothing is half-stored).
 */
#include <stdlib.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>

#include "server/clients.h"
#include "server/session_int.h"
#include "util/log.h"

static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_written(struct bufferevent *bev, void *arg);

/* want_flush: call on_flushed once the output has drained. */
static void
set_callbacks(struct session *s, bool want_flush)
{
	s->want_flush = want_flush;
	bufferevent_setcb(s->bev, session_on_read, on_written, on_event, s);
}

#define SESSION_CLOSE_POLL_USEC 10000

static void close_when_sent(struct session *s);

static void
on_close_poll(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	close_when_sent(arg);
}

/* A closing TLS session: what the client still sends is dropped. */
static void
on_linger_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	(void)arg;
	evbuffer_drain(in, evbuffer_get_length(in));
}

/*
 * close_notify has left: FIN after it, then the client's end (its alert
 * or EOF: on_event frees s) or TLS_CLOSE_SECONDS, whichever comes first.
 */
static void
linger(struct session *s)
{
	struct timeval tv = {TLS_CLOSE_SECONDS, 0};

	if (s->ev_close != NULL)
		evtimer_del(s->ev_close);
	(void)shutdown(bufferevent_getfd(s->bev), SHUT_WR);
	bufferevent_setcb(s->bev, on_linger_read, NULL, on_event, s);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ);
}

/*
 * Frees s once its last reply has left: for STARTTLS sessions the filter's
 * drained output may still sit, encrypted, in the socket bufferevent
 * below it, so that one is checked too.  A TLS session ends with
 * close_notify first (linger).
 */
static void
close_when_sent(struct session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);
	struct timeval tv = {0, SESSION_CLOSE_POLL_USEC};

	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 &&
	    (under == NULL ||
	     evbuffer_get_length(bufferevent_get_output(under)) == 0)) {
		switch (s->is_direct ? TLS_CLOSE_NONE
				     : tls_close_notify(s->bev)) {
		case TLS_CLOSE_NONE:
			session_free(s);
			return;
		case TLS_CLOSE_SENT:
			linger(s);
			return;
		case TLS_CLOSE_PENDING:
			break; /* the socket is full: poll */
		}
	}
	if (s->ev_close == NULL)
		s->ev_close = evtimer_new(s->srv->base, on_close_poll, s);
	if (s->ev_close == NULL || evtimer_add(s->ev_close, &tv) != 0)
		session_free(s);
}

static void
on_flushed(struct session *s)
{
	if (s->state == SESSION_CLOSING) {
		close_when_sent(s);
		return;
	}
	/* Output drained: go on with the commands that waited. */
	set_callbacks(s, false);
	session_resume(s);
}

/*
 * The output has drained, whoever wrote it last.  On a plain socket the
 * write event goes (session_on_flush writes again; one left enabled would be
 * added and deleted for every later reply without ever calling back).
 */
static void
output_drained(struct session *s)
{
	if (s->is_direct && (bufferevent_get_enabled(s->bev) & EV_WRITE))
		bufferevent_disable(s->bev, EV_WRITE);
	if (s->want_flush)
		on_flushed(s);
}

/* libevent wrote the last of the output (bufferevent write callback). */
static void
on_written(struct bufferevent *bev, void *arg)
{
	(void)bev;
	output_drained(arg);
}

/*
 * Runs once per event loop turn in which replies were queued on a plain
 * socket: writes them all with one writev, so a reply costs no epoll
 * changes and no extra turn of the loop.  What the socket does not take
 * now (or an error) is left to the bufferevent: EV_WRITE finishes it,
 * or reports the error to on_event.
 */
void
session_on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct evbuffer *out = bufferevent_get_output(s->bev);

	(void)fd;
	(void)what;
	if (!s->is_direct || evbuffer_get_length(out) == 0)
		return;
	/* The bufferevent keeps its output's front frozen against other
	 * drains; it thaws it the same way around its own writes. */
	evbuffer_unfreeze(out, 1);
	(void)evbuffer_write(out, bufferevent_getfd(s->bev));
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) > 0) {
		bufferevent_enable(s->bev, EV_WRITE);
		return;
	}
	output_drained(s);
}

void
session_output(struct session *s, const char *buf, size_t len)
{
	bufferevent_write(s->bev, buf, len);
	if (s->is_direct)
		event_active(s->ev_flush, 0, 0);
}

void
session_close_start(struct session *s)
{
	s->state = SESSION_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	set_callbacks(s, true);
	if (!s->is_direct) {
		/* Closing is bounded: a client that stops reading now is
		 * let go after TLS_CLOSE_SECONDS without progress, on the
		 * filter and the socket below it (which has no timeouts). */
		struct timeval tv = {TLS_CLOSE_SECONDS, 0};
		struct bufferevent *under = bufferevent_get_underlying(s->bev);
		bufferevent_set_timeouts(s->bev, &tv, &tv);
		if (under != NULL)
			bufferevent_set_timeouts(under, &tv, &tv);
	}
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		close_when_sent(s);
}

void
session_wait_drained(struct session *s)
{
	set_callbacks(s, true);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		session_tls_ready(s);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    (s->state == SESSION_COMMIT || s->state == SESSION_AUTH_CHECK ||
	     s->state == SESSION_POLICY)) {
		/* Silence is expected while we work: keep waiting. */
		bufferevent_enable(s->bev, EV_READ);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    s->state != SESSION_CLOSING && s->state != SESSION_TLS) {
		if (!s->is_direct)
			bufferevent_enable(s->bev, EV_WRITE);
		session_reply(s, REPLY_TIMEOUT, s->srv->cfg->server_hostname);
		return;
	}
	/* EOF, error or a client that stopped reading: drop whatever was in
	 * progress (never half-stored: nothing reaches the spool before the
	 * end of DATA). */
	if ((what & BEV_EVENT_ERROR) && s->state == SESSION_TLS)
		log_msg(LOG_INFO, "ev=tls_failed sid=%s client=%s error=%s",
			s->sid, s->client, log_q(tls_error()));
	session_free(s);
}

void
session_set_bev(struct session *s, struct bufferevent *bev)
{
	struct timeval idle = {(time_t)s->srv->cfg->server_idle_timeout, 0};

	s->bev = bev;
	/* TLS output goes through OpenSSL's bufferevent as it likes. */
	s->is_direct =
	    s->ev_flush != NULL && bufferevent_openssl_get_ssl(bev) == NULL;
	set_callbacks(s, false);
	bufferevent_setwatermark(bev, EV_READ, 0, SESSION_READ_HIGH_WATER);
	bufferevent_set_timeouts(bev, &idle, &idle);
	bufferevent_enable(bev, EV_READ);
	if (s->is_direct)
		bufferevent_disable(bev, EV_WRITE); /* enabled from birth */
	else
		bufferevent_enable(bev, EV_WRITE);
}

void
session_free(struct session *s)
{
	struct server *srv = s->srv;

	if (s->ticket != NULL) {
		/* The commit callback finds the session gone and still
		 * delivers the message (session_cmd_data.c). */
		s->ticket->s = NULL;
	}
	log_msg(LOG_INFO, "ev=disconnect sid=%s client=%s messages=%u", s->sid,
		s->client, s->n_msgs);
	session_auth_cancel(s);
	session_rcpt_cancel(s);
	session_mail_cancel(s);
	session_data_cancel(s);
	session_txn_reset(s);
	if (s->ev_greet)
		event_free(s->ev_greet);
	if (s->ev_close)
		event_free(s->ev_close);
	if (s->ev_rate)
		event_free(s->ev_rate);
	if (s->ev_flush)
		event_free(s->ev_flush);
	if (s->bev) {
		/* Whatever ended it, the client learns it was not cut off
		 * (a no-op when close_notify went already or TLS never
		 * came up). */
		if (!s->is_direct)
			(void)tls_close_notify(s->bev);
		bufferevent_free(s->bev);
	}
	if (s->is_counted) {
		struct client_stat *c = clients_get(srv, s->ip, false);
		if (c != NULL && c->sessions > 0)
			c->sessions--;
		clients_release(srv, s->ip);
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->n_sessions--;
	free(s);
}
