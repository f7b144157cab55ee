/*
 * session.c - an SMTP session's I/O: greeting, the command loop, the DATA
 * and BDAT readers, timeouts and the one reply choke point.
 *
 * Who calls it: listener.c (session_start) and the spool's commit
 * callback.  What it promises (RFC 5321, REPLY-CODES.md):
 *  - every reply comes from replies.def through session_reply(), which
 *    closes the channel after 421 and logs every 4xx/5xx;
 *  - command lines over 512 octets, bare CR/LF and NUL get 500 and are
 *    dropped whole; text after DATA ends only at CRLF.CRLF (proto/data.c);
 *  - input is bounded: reading pauses at SESSION_READ_HIGH_WATER, message
 *    text past max_message_size is counted, not kept;
 *  - while the spool commits, pipelined input waits, so replies stay in
 *    order and the 250 follows the fsync;
 *  - idle_timeout of silence gives 421 4.4.2; max_bad_commands 5xx
 *    replies give 421 4.7.0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/session.h"
#include "util/log.h"
#include "util/str.h"

static void session_process(struct session *s);

/* Dispatch: verb -> handler.  Sequence checks live in the handlers. */
static void (*const handlers[CMD_VERB_COUNT])(struct session *,
					      const struct cmd *) = {
	[CMD_HELO] = cmd_helo,	   [CMD_EHLO] = cmd_helo,
	[CMD_MAIL] = cmd_mail,	   [CMD_RCPT] = cmd_rcpt,
	[CMD_DATA] = cmd_data,	   [CMD_BDAT] = cmd_bdat,
	[CMD_RSET] = cmd_simple,   [CMD_NOOP] = cmd_simple,
	[CMD_QUIT] = cmd_simple,   [CMD_VRFY] = cmd_simple,
	[CMD_EXPN] = cmd_simple,   [CMD_HELP] = cmd_simple,
	[CMD_STARTTLS] = cmd_simple, [CMD_AUTH] = cmd_simple,
	[CMD_ETRN] = cmd_simple,   [CMD_TURN] = cmd_simple,
};

static bool
closes_session(enum reply_id id)
{
	return reply_row(id)->code == 421 || id == REPLY_QUIT ||
	       id == REPLY_PREGREET || id == REPLY_SYNC_ERROR;
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_flushed(struct bufferevent *bev, void *arg);

/* want_flush: call on_flushed once the output has drained. */
static void
set_callbacks(struct session *s, bool want_flush)
{
	bufferevent_setcb(s->bev, on_read, want_flush ? on_flushed : NULL,
			  on_event, s);
}

static void
on_flushed(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	(void)bev;
	if (s->state == SESSION_CLOSING) {
		session_free(s);
		return;
	}
	/* Output drained: go on with the commands that waited. */
	set_callbacks(s, false);
	session_process(s);
}

static void
start_closing(struct session *s)
{
	s->state = SESSION_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	set_callbacks(s, true);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_free(s);
}

void
session_reply_raw(struct session *s, const char *buf, size_t len)
{
	bufferevent_write(s->bev, buf, len);
}

void
session_reply(struct session *s, enum reply_id id, ...)
{
	const struct reply_row *r = reply_row(id);
	char buf[SMTP_REPLY_LINE_MAX + 1];
	const char *a1 = NULL, *a2 = NULL;
	unsigned u = 0;
	size_t len;
	va_list ap;

	va_start(ap, id);
	if (r->arg == ARG_STR || r->arg == ARG_STR2)
		a1 = va_arg(ap, const char *);
	if (r->arg == ARG_STR2)
		a2 = va_arg(ap, const char *);
	if (r->arg == ARG_UINT)
		u = va_arg(ap, unsigned);
	va_end(ap);
	switch (r->arg) {
	case ARG_NONE: len = reply_format(buf, sizeof buf, id); break;
	case ARG_STR: len = reply_format(buf, sizeof buf, id, a1); break;
	case ARG_STR2: len = reply_format(buf, sizeof buf, id, a1, a2); break;
	default: len = reply_format(buf, sizeof buf, id, u); break;
	}
	bufferevent_write(s->bev, buf, len);
	if (r->code >= 400)
		log_msg(LOG_INFO, "ev=reply sid=%s client=%s cmd=%s reply=%d "
			"enh=%s reason=%s", s->sid, s->client,
			cmd_verb_name(s->verb), r->code,
			r->enhanced ? r->enhanced : "-", reply_reason(id));
	if (r->code >= 500 && !closes_session(id) &&
	    ++s->n_bad > s->srv->cfg->server_max_bad_commands) {
		session_reply(s, REPLY_TOO_MANY_ERRORS,
			      s->srv->cfg->server_hostname);
		return;
	}
	if (closes_session(id) && s->state != SESSION_CLOSING)
		start_closing(s);
}

void
session_txn_reset(struct session *s)
{
	struct txn *t = s->txn;

	if (t == NULL)
		return;
	msg_free(t->msg);
	if (t->text)
		evbuffer_free(t->text);
	free(t);
	s->txn = NULL;
}

void
session_shutdown(struct session *s)
{
	if (s->state == SESSION_CLOSING)
		return;
	if (s->state == SESSION_COMMIT)
		return; /* the commit callback replies, then we close */
	session_reply(s, REPLY_SHUTDOWN, s->srv->cfg->server_hostname);
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
	log_msg(LOG_INFO, "ev=disconnect sid=%s client=%s messages=%u",
		s->sid, s->client, s->n_msgs);
	session_txn_reset(s);
	if (s->ev_greet)
		event_free(s->ev_greet);
	if (s->bev)
		bufferevent_free(s->bev);
	if (s->is_counted)
		server_client_dec(srv, s->ip);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->n_sessions--;
	free(s);
}

bool
session_check_sync(struct session *s, const char *after)
{
	if (evbuffer_get_length(bufferevent_get_input(s->bev)) == 0)
		return false;
	session_reply(s, REPLY_SYNC_ERROR, after);
	return true;
}

/* Handles one complete command line. */
static void
handle_line(struct session *s, const char *line, size_t len)
{
	struct cmd c;

	switch (cmd_parse(line, len, &c)) {
	case CMD_PARSE_OK:
		s->verb = c.verb;
		if (handlers[c.verb] != NULL) {
			handlers[c.verb](s, &c);
			return;
		}
		break;
	case CMD_ERR_SYNTAX:
		s->verb = c.verb;
		session_reply(s, REPLY_CMD_SYNTAX,
			      c.verb == CMD_MAIL ? "MAIL FROM:<address>"
						 : "RCPT TO:<address>");
		return;
	case CMD_ERR_UNKNOWN:
		break;
	}
	s->verb = CMD_UNKNOWN;
	session_reply(s, REPLY_CMD_UNKNOWN);
}

/* Reads one command line from input; false when more input is needed. */
static bool
process_command(struct session *s, struct evbuffer *in)
{
	char line[SMTP_CMD_LINE_MAX];
	size_t len = evbuffer_get_length(in), line_len = 0, consumed = 0;
	size_t want = len < SMTP_CMD_LINE_MAX ? len : SMTP_CMD_LINE_MAX;
	const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
	enum line_result r;

	if (p == NULL)
		return false;
	r = line_next(&s->lines, p, want, SMTP_CMD_LINE_MAX, &line_len,
		      &consumed);
	if (r == LINE_OK)
		memcpy(line, p, line_len);
	evbuffer_drain(in, consumed);
	s->verb = CMD_UNKNOWN;
	switch (r) {
	case LINE_OK:
		handle_line(s, line, line_len);
		return true;
	case LINE_MORE:
		return consumed > 0;
	case LINE_SKIP:
		return true;
	case LINE_ERR_TOO_LONG:
		session_reply(s, REPLY_LINE_TOO_LONG);
		return true;
	case LINE_ERR_BARE_LF:
		session_reply(s, REPLY_BARE_LF);
		return true;
	case LINE_ERR_BARE_CR:
		session_reply(s, REPLY_BARE_CR);
		return true;
	case LINE_ERR_NUL:
		session_reply(s, REPLY_NUL_IN_CMD);
		return true;
	}
	return false;
}

/* Feeds up to n octets of input to the transaction's reader. */
static enum data_result
feed_reader(struct session *s, struct evbuffer *in, size_t n)
{
	struct txn *t = s->txn;
	char out[SESSION_DATA_CHUNK];
	struct evbuffer_iovec v;
	size_t used = 0, consumed = 0, take;
	enum data_result r;

	if (evbuffer_peek(in, (ev_ssize_t)n, NULL, &v, 1) < 1)
		return DATA_MORE;
	take = v.iov_len < n ? v.iov_len : n;
	if (take > sizeof out)
		take = sizeof out;
	r = data_reader_feed(&t->reader, v.iov_base, take, out, &used,
			     &consumed);
	if (used > 0 && evbuffer_add(t->text, out, used) != 0)
		t->reader.flags |= DATA_ERR_TOO_BIG;
	evbuffer_drain(in, consumed);
	if (s->state == SESSION_BDAT)
		s->bdat_left -= consumed;
	return r;
}

static bool
process_data(struct session *s, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);

	if (len == 0)
		return false;
	if (feed_reader(s, in, len) == DATA_END)
		session_data_finish(s);
	return true;
}

static bool
process_bdat(struct session *s, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	size_t n = s->bdat_left < len ? (size_t)s->bdat_left : len;

	if (s->bdat_left > 0) {
		if (n == 0)
			return false;
		if (s->is_bdat_discard) {
			evbuffer_drain(in, n);
			s->bdat_left -= n;
		} else {
			feed_reader(s, in, n);
		}
		if (s->bdat_left > 0)
			return true;
	}
	s->state = SESSION_CMD;
	if (s->is_bdat_discard) {
		s->is_bdat_discard = false;
		session_reply(s, s->bdat_error);
		return true;
	}
	if (s->is_bdat_last) {
		data_reader_finish(&s->txn->reader);
		session_data_finish(s);
		return true;
	}
	if (s->txn->reader.flags & DATA_ERR_TOO_BIG) {
		session_txn_reset(s);
		session_reply(s, REPLY_SIZE_TOO_BIG);
		return true;
	}
	session_reply(s, REPLY_BDAT_CHUNK_OK,
		      (unsigned)evbuffer_get_length(s->txn->text));
	return true;
}

/* Runs every complete command in the input, in order. */
static void
session_process(struct session *s)
{
	for (;;) {
		struct evbuffer *in = bufferevent_get_input(s->bev);
		bool is_progress = false;

		if (evbuffer_get_length(bufferevent_get_output(s->bev)) >
		    SESSION_OUTPUT_MAX) {
			/* The client does not read its replies: wait. */
			set_callbacks(s, true);
			return;
		}
		switch (s->state) {
		case SESSION_CMD:
			is_progress = process_command(s, in);
			break;
		case SESSION_DATA:
			is_progress = process_data(s, in);
			break;
		case SESSION_BDAT:
			is_progress = process_bdat(s, in);
			break;
		default:
			/* Greeting, commit, closing: input waits (and when
			 * closing, s may be freed: touch nothing). */
			return;
		}
		if (!is_progress)
			return;
	}
}

void
session_resume(struct session *s)
{
	session_process(s);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	(void)bev;
	if (s->state == SESSION_GREETING) {
		/* Talking before the banner (RFC 5321 3.1 says wait). */
		session_reply(s, REPLY_PREGREET);
		return;
	}
	session_process(s);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	(void)bev;
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    s->state != SESSION_CLOSING) {
		bufferevent_enable(s->bev, EV_WRITE);
		session_reply(s, REPLY_TIMEOUT, s->srv->cfg->server_hostname);
		return;
	}
	/* EOF, error or a client that stopped reading: drop whatever was in
	 * progress (never half-stored: nothing reaches the spool before the
	 * end of DATA). */
	session_free(s);
}

static void
send_greeting(struct session *s)
{
	s->state = SESSION_CMD;
	session_reply(s, REPLY_GREETING, s->srv->cfg->server_hostname,
		      POSTERN_VERSION);
}

static void
on_greet_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_greeting(arg);
}

/* Fills ip, client and literal from the peer address. */
static void
name_client(struct session *s, const struct sockaddr *sa)
{
	int port = 0;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, s->ip, sizeof s->ip);
		port = ntohs(in6->sin6_port);
		snprintf(s->client, sizeof s->client, "[%s]:%d", s->ip, port);
		snprintf(s->literal, sizeof s->literal, "[IPv6:%s]", s->ip);
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const void *)sa;
		inet_ntop(AF_INET, &in4->sin_addr, s->ip, sizeof s->ip);
		port = ntohs(in4->sin_port);
		snprintf(s->client, sizeof s->client, "%s:%d", s->ip, port);
		snprintf(s->literal, sizeof s->literal, "[%s]", s->ip);
	} else {
		str_set(s->ip, sizeof s->ip, "unknown");
		str_set(s->client, sizeof s->client, "unknown");
		str_set(s->literal, sizeof s->literal, "[unknown]");
	}
}

/* True when the client sent bytes before we could even greet it. */
static bool
is_early_talker(evutil_socket_t fd)
{
	char c;

	return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

void
session_start(struct server *srv, evutil_socket_t fd,
	      const struct sockaddr *sa, int salen)
{
	const struct config *cfg = srv->cfg;
	struct session *s = calloc(1, sizeof *s);
	struct timeval idle = {(time_t)cfg->server_idle_timeout, 0};
	unsigned per_client;

	(void)salen;
	if (s == NULL) {
		close(fd);
		return;
	}
	s->srv = srv;
	snprintf(s->sid, sizeof s->sid, "%016llx",
		 (unsigned long long)srv->sid_next++);
	name_client(s, sa);
	s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		close(fd);
		free(s);
		return;
	}
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	srv->n_sessions++;
	set_callbacks(s, false);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_READ_HIGH_WATER);
	bufferevent_set_timeouts(s->bev, &idle, &idle);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->state = SESSION_GREETING;
	per_client = server_client_inc(srv, s->ip);
	s->is_counted = true;
	log_msg(LOG_INFO, "ev=connect sid=%s client=%s sessions=%zu", s->sid,
		s->client, srv->n_sessions);
	if (srv->is_stopping) {
		session_reply(s, REPLY_SHUTDOWN, cfg->server_hostname);
	} else if (srv->n_sessions > cfg->server_max_connections) {
		session_reply(s, REPLY_TOO_MANY_CONNS, cfg->server_hostname);
	} else if (per_client > cfg->server_max_connections_per_client) {
		session_reply(s, REPLY_TOO_MANY_CLIENT_CONNS,
			      cfg->server_hostname);
	} else if (is_early_talker(fd)) {
		session_reply(s, REPLY_PREGREET);
	} else if (cfg->server_greet_pause > 0) {
		struct timeval tv = {
			(time_t)(cfg->server_greet_pause / 1000),
			(suseconds_t)(cfg->server_greet_pause % 1000) * 1000};
		s->ev_greet = evtimer_new(srv->base, on_greet_timer, s);
		if (s->ev_greet == NULL || evtimer_add(s->ev_greet, &tv) != 0)
			send_greeting(s);
	} else {
		send_greeting(s);
	}
}
