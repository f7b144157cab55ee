/*
 * session.c - an SMTP session: its greeting, the command loop and the
 * command table, and the one reply choke point.
 *
 * Who calls it: listener.c (session_start), server.c (session_shutdown)
 * and the callbacks of the spool, the policy and the password check
 * (session_resume).  Each command is a row of the table below, as
 * OpenSMTPD splits smtp_check_* from smtp_proceed_*: the state the
 * command needs, with the reply for each thing missing, in the order
 * they are checked; where the check of its arguments falls among them;
 * and the proceed, in session_cmd_<verb>.c, which runs only in an
 * allowed state.  session_cmd_data.c reads message text, session_io.c
 * writes replies and closes.  What it promises (RFC 5321,
 * REPLY-CODES.md):
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
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/crypto.h>

#include "policy/authcheck.h"
#include "server/clients.h"
#include "server/session_int.h"
#include "util/log.h"
#include "util/str.h"

/* clang-format off */
/* What a command can need of the session; each row names the reply
 * when it is missing. */
enum session_need {
	NEED_END = 0,	  /* the row's list ends */
	NEED_ARGS,	  /* the row's check takes the arguments (it replies) */
	NEED_HELO,	  /* HELO or EHLO was given */
	NEED_EHLO,	  /* EHLO was given */
	NEED_TXN,	  /* MAIL was accepted */
	NEED_NO_TXN,	  /* no transaction is open */
	NEED_RCPT_TRIED,  /* RCPT was given in it, accepted or not */
	NEED_RCPT,	  /* it has a recipient */
	NEED_NO_BDAT,	  /* it has not used BDAT */
	NEED_TLS,	  /* TLS is up */
	NEED_NO_TLS,	  /* TLS is not up */
	NEED_TLS_OFFERED, /* the server has a certificate */
	NEED_NO_AUTH,	  /* the client has not authenticated */
	NEED_MAY_MAIL,	  /* port 25, or authenticated (submission, smtps) */
};

struct session_rule {
	enum session_need need;
	enum reply_id refusal; /* takes no argument, or the verb's name */
};

#define SESSION_RULES_MAX 6

/* One row: the verb is its index in the table. */
struct session_cmd {
	struct session_rule rules[SESSION_RULES_MAX];
	bool (*check)(struct session *s, const struct cmd *c);
	void (*proceed)(struct session *s, const struct cmd *c);
	/* When set, a refusal for the state is handed to it instead of
	 * being sent (BDAT reads its chunk first). */
	void (*refuse)(struct session *s, enum reply_id id);
};

#define ARGS {NEED_ARGS, REPLY_COUNT}
#define HELO_FIRST {NEED_HELO, REPLY_NEED_HELO}
#define MAIL_FIRST {NEED_TXN, REPLY_NEED_MAIL}
#define RCPT_FIRST {NEED_RCPT_TRIED, REPLY_NEED_RCPT}, \
		   {NEED_RCPT, REPLY_NO_VALID_RCPTS}

/*
 * The command table.  A row reads: {what the command needs, in the order
 * it is checked, each with the reply when missing; ARGS is where the
 * command's check of its arguments runs}, check, proceed, refuse.  Rules
 * after MAIL_FIRST may look into the transaction.  The order is the wire's:
 * DATA says 554 to pipelined text and 501 to an argument before any 503,
 * MAIL 503 before it reads its path; tests/integration/
 * test_session_order.py pins every verb in every state.
 */
static const struct session_cmd commands[CMD_VERB_COUNT] = {
	[CMD_HELO] = {{ARGS}, cmd_helo_check, cmd_helo, NULL},
	[CMD_EHLO] = {{ARGS}, cmd_helo_check, cmd_helo, NULL},
	[CMD_MAIL] = {{HELO_FIRST,
		       {NEED_NO_TXN, REPLY_NESTED_MAIL},
		       {NEED_MAY_MAIL, REPLY_AUTH_REQUIRED}},
		      NULL, cmd_mail, NULL},
	[CMD_RCPT] = {{HELO_FIRST, MAIL_FIRST}, NULL, cmd_rcpt, NULL},
	[CMD_DATA] = {{ARGS, HELO_FIRST, MAIL_FIRST, RCPT_FIRST,
		       {NEED_NO_BDAT, REPLY_BDAT_THEN_DATA}},
		      cmd_data_check, cmd_data, NULL},
	[CMD_BDAT] = {{ARGS, HELO_FIRST, MAIL_FIRST, RCPT_FIRST},
		      cmd_bdat_check, cmd_bdat, cmd_bdat_refuse},
	[CMD_RSET] = {{ARGS}, cmd_check_no_args, cmd_rset, NULL},
	[CMD_NOOP] = {{{NEED_END}}, NULL, cmd_noop, NULL},
	[CMD_QUIT] = {{ARGS}, cmd_check_no_args, cmd_quit, NULL},
	[CMD_VRFY] = {{ARGS}, cmd_vrfy_check, cmd_vrfy, NULL},
	[CMD_EXPN] = {{{NEED_END}}, NULL, cmd_unimplemented, NULL},
	[CMD_HELP] = {{{NEED_END}}, NULL, cmd_help, NULL},
	[CMD_STARTTLS] = {{{NEED_TLS_OFFERED, REPLY_NOT_IMPLEMENTED}, ARGS,
			   {NEED_NO_TLS, REPLY_TLS_ALREADY}},
			  cmd_check_no_args, cmd_starttls, NULL},
	[CMD_AUTH] = {{{NEED_TLS, REPLY_AUTH_NEEDS_TLS},
		       {NEED_EHLO, REPLY_NEED_HELO},
		       {NEED_NO_AUTH, REPLY_AUTH_ALREADY},
		       {NEED_NO_TXN, REPLY_AUTH_ALREADY}},
		      NULL, cmd_auth, NULL},
	[CMD_ETRN] = {{{NEED_END}}, NULL, cmd_unimplemented, NULL},
	[CMD_TURN] = {{{NEED_END}}, NULL, cmd_unimplemented, NULL},
};

/* True when the session has what need names. */
static bool
session_has(const struct session *s, enum session_need need)
{
	switch (need) {
	case NEED_HELO: return s->has_helo;
	case NEED_EHLO: return s->has_helo && s->is_esmtp;
	case NEED_TXN: return s->txn != NULL;
	case NEED_NO_TXN: return s->txn == NULL;
	case NEED_RCPT_TRIED: return s->txn->n_rcpt_tries > 0;
	case NEED_RCPT: return s->txn->msg->n_rcpts > 0;
	case NEED_NO_BDAT: return !s->txn->is_bdat;
	case NEED_TLS: return s->is_tls;
	case NEED_NO_TLS: return !s->is_tls;
	case NEED_TLS_OFFERED: return s->srv->tls_ctx != NULL;
	case NEED_NO_AUTH: return !s->is_auth;
	case NEED_MAY_MAIL: return s->kind == LISTEN_SMTP || s->is_auth;
	default: return true;
	}
}
/* clang-format on */

/*
 * Runs c through its row: each rule in order (the first one missing
 * sends its refusal), then the proceed.
 */
static void
dispatch(struct session *s, const struct cmd *c)
{
	const struct session_cmd *row = &commands[c->verb];

	for (size_t i = 0; i < SESSION_RULES_MAX; i++) {
		const struct session_rule *r = &row->rules[i];
		if (r->need == NEED_END)
			break;
		if (r->need == NEED_ARGS) {
			if (!row->check(s, c))
				return;
		} else if (!session_has(s, r->need)) {
			if (row->refuse != NULL)
				row->refuse(s, r->refusal);
			else
				session_reply(s, r->refusal,
					      cmd_verb_name(c->verb));
			return;
		}
	}
	row->proceed(s, c);
}

static bool
closes_session(enum reply_id id)
{
	return reply_row(id)->code == 421 || id == REPLY_QUIT ||
	       id == REPLY_PREGREET || id == REPLY_SYNC_ERROR;
}

void
session_reply_raw(struct session *s, const char *buf, size_t len)
{
	if (s->state == SESSION_CLOSING)
		return; /* as in session_reply */
	session_output(s, buf, len);
}

void
session_reply(struct session *s, enum reply_id id, ...)
{
	const struct reply_row *r = reply_row(id);
	char buf[SMTP_REPLY_LINE_MAX + 1];
	const char *a1 = NULL, *a2 = NULL;
	unsigned u = 0, u2 = 0;
	size_t len;
	va_list ap;

	/* A reply that closes the session is the last one: a handler that
	 * goes on replying after it (BDAT's 501 + 421, when the 501 was the
	 * error too many) sends nothing more. */
	if (s->state == SESSION_CLOSING)
		return;
	va_start(ap, id);
	if (r->arg == ARG_STR || r->arg == ARG_STR2 || r->arg == ARG_STR_UINT2)
		a1 = va_arg(ap, const char *);
	if (r->arg == ARG_STR2)
		a2 = va_arg(ap, const char *);
	if (r->arg == ARG_UINT || r->arg == ARG_STR_UINT2)
		u = va_arg(ap, unsigned);
	if (r->arg == ARG_STR_UINT2)
		u2 = va_arg(ap, unsigned);
	va_end(ap);
	switch (r->arg) {
	case ARG_NONE: len = reply_format(buf, sizeof buf, id); break;
	case ARG_STR: len = reply_format(buf, sizeof buf, id, a1); break;
	case ARG_STR2: len = reply_format(buf, sizeof buf, id, a1, a2); break;
	case ARG_STR_UINT2:
		len = reply_format(buf, sizeof buf, id, a1, u, u2);
		break;
	default: len = reply_format(buf, sizeof buf, id, u); break;
	}
	session_output(s, buf, len);
	stats_reply(&s->srv->stats, id, (int64_t)time(NULL), buf, len);
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
		session_close_start(s);
}

void
session_txn_reset(struct session *s)
{
	struct txn *t = s->txn;

	if (t == NULL)
		return;
	msg_free(t->msg);
	authcheck_cancel(t->auth);
	free(t->auth_header);
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
		if (commands[c.verb].proceed != NULL) {
			dispatch(s, &c);
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

/*
 * Reads one line from input: a command (SESSION_CMD, at most 512 octets)
 * or a SASL response (SESSION_AUTH, RFC 4954's 12288).  False when more
 * input is needed.
 */
static bool
process_line(struct session *s, struct evbuffer *in)
{
	static char line[SMTP_AUTH_LINE_MAX];
	bool is_auth = s->state == SESSION_AUTH;
	size_t len = evbuffer_get_length(in), line_len = 0, consumed = 0;
	size_t max = SMTP_AUTH_LINE_MAX, want = len < max ? len : max;
	const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
	enum line_result r;

	if (p == NULL)
		return false;
	/* RFC 4954 4: an AUTH line may be longer than other commands.
	 * While an over-long line is skipped, it stays what it was. */
	if (!s->lines.is_skipping)
		s->is_auth_line = !is_auth && want >= 5 &&
				  strncasecmp(p, "AUTH ", 5) == 0;
	if (!is_auth && !s->is_auth_line)
		max = SMTP_CMD_LINE_MAX;
	if (want > max)
		want = max;
	r = line_next(&s->lines, p, want, max, &line_len, &consumed);
	if (r == LINE_OK)
		memcpy(line, p, line_len);
	evbuffer_drain(in, consumed);
	if (!is_auth)
		s->verb = CMD_UNKNOWN;
	switch (r) {
	case LINE_OK:
		if (is_auth)
			session_auth_line(s, line, line_len);
		else
			handle_line(s, line, line_len);
		OPENSSL_cleanse(line, line_len);
		return true;
	case LINE_MORE:
		return consumed > 0;
	case LINE_SKIP:
		return true;
	case LINE_ERR_TOO_LONG:
		if (is_auth || s->is_auth_line) {
			s->state = SESSION_CMD;
			session_reply(s, REPLY_AUTH_LINE_TOO_LONG);
		} else {
			session_reply(s, REPLY_LINE_TOO_LONG);
		}
		return true;
	case LINE_ERR_BARE_LF:
		s->state = SESSION_CMD;
		session_reply(s, REPLY_BARE_LF);
		return true;
	case LINE_ERR_BARE_CR:
		s->state = SESSION_CMD;
		session_reply(s, REPLY_BARE_CR);
		return true;
	case LINE_ERR_NUL:
		s->state = SESSION_CMD;
		session_reply(s, REPLY_NUL_IN_CMD);
		return true;
	}
	return false;
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
			session_wait_drained(s);
			return;
		}
		switch (s->state) {
		case SESSION_CMD:
		case SESSION_AUTH:
			is_progress = process_line(s, in);
			break;
		case SESSION_DATA:
			is_progress = session_data_read(s, in);
			break;
		case SESSION_BDAT:
			is_progress = session_bdat_read(s, in);
			break;
		default:
			/* Greeting, commit, TLS handshake, password check,
			 * closing: input waits (and when closing, s may be
			 * freed: touch nothing). */
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

void
session_on_read(struct bufferevent *bev, void *arg)
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

/* Counts the session for its client: sessions open, the rate window. */
static void
count_client(struct session *s)
{
	struct server *srv = s->srv;
	struct client_stat *c = clients_get(srv, s->ip, true);
	time_t now = time(NULL);

	s->is_counted = true;
	if (c == NULL)
		return; /* table full: this client is not limited */
	s->n_per_client = ++c->sessions;
	if (srv->cfg->rate_window > 0) {
		if (c->rate_count == 0)
			c->rate_start = now;
		s->n_rate = ++c->rate_count;
	}
}

/* Sends the banner, or the 421/554 that refuses the client instead. */
static void
greet_or_refuse(struct session *s)
{
	const struct config *cfg = s->srv->cfg;
	struct server *srv = s->srv;

	s->is_greeted = true;
	if (srv->is_stopping) {
		session_reply(s, REPLY_SHUTDOWN, cfg->server_hostname);
	} else if (srv->is_maintenance) {
		session_reply(s, REPLY_MAINTENANCE, cfg->server_hostname);
	} else if (srv->n_sessions > cfg->server_max_connections) {
		session_reply(s, REPLY_TOO_MANY_CONNS, cfg->server_hostname);
	} else if (s->n_per_client > cfg->server_max_connections_per_client) {
		session_reply(s, REPLY_TOO_MANY_CLIENT_CONNS,
			      cfg->server_hostname);
	} else if (cfg->rate_window > 0 && s->n_rate > cfg->rate_max) {
		session_reply(s, REPLY_RATE_LIMITED, cfg->server_hostname,
			      cfg->rate_max, cfg->rate_window);
	} else if (!s->is_tls && is_early_talker(bufferevent_getfd(s->bev))) {
		session_reply(s, REPLY_PREGREET);
	} else if (cfg->server_greet_pause > 0) {
		struct timeval tv = {
			(time_t)(cfg->server_greet_pause / 1000),
			(suseconds_t)(cfg->server_greet_pause % 1000) * 1000};
		s->ev_greet = evtimer_new(s->srv->base, on_greet_timer, s);
		if (s->ev_greet == NULL || evtimer_add(s->ev_greet, &tv) != 0)
			send_greeting(s);
	} else {
		send_greeting(s);
	}
}

void
session_tls_ready(struct session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

	s->is_tls = true;
	tls_describe(ssl, s->tls_info, sizeof s->tls_info);
	{
		int v = ssl ? SSL_version(ssl) : 0;
		s->srv->stats.tls_sessions[v == TLS1_2_VERSION	 ? 0
					   : v == TLS1_3_VERSION ? 1
								 : 2]++;
	}
	log_msg(LOG_INFO, "ev=tls sid=%s client=%s %s", s->sid, s->client,
		s->tls_info);
	if (!s->is_greeted) {
		s->state = SESSION_GREETING;
		greet_or_refuse(s);
		return;
	}
	/* RFC 3207 4.2: forget everything learnt before TLS. */
	session_txn_reset(s);
	s->has_helo = false;
	s->is_esmtp = false;
	s->helo[0] = '\0';
	s->state = SESSION_CMD;
	session_process(s);
}

void
session_start(struct server *srv, enum config_listen_kind kind,
	      evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
	struct session *s = calloc(1, sizeof *s);
	struct bufferevent *bev = NULL;
	SSL *ssl = NULL;

	(void)salen;
	if (s == NULL) {
		close(fd);
		return;
	}
	s->srv = srv;
	s->kind = kind;
	s->ev_flush = event_new(srv->base, -1, 0, session_on_flush, s);
	snprintf(s->sid, sizeof s->sid, "%016llx",
		 (unsigned long long)srv->sid_next++);
	name_client(s, sa);
	if (kind == LISTEN_SMTPS && srv->tls_ctx != NULL &&
	    (ssl = SSL_new(srv->tls_ctx)) != NULL) {
		bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
						     BUFFEREVENT_SSL_ACCEPTING,
						     BEV_OPT_CLOSE_ON_FREE);
		if (bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	} else if (kind != LISTEN_SMTPS) {
		bev = bufferevent_socket_new(srv->base, fd,
					     BEV_OPT_CLOSE_ON_FREE);
	}
	if (bev == NULL) {
		if (ssl != NULL)
			SSL_free(ssl);
		if (s->ev_flush != NULL)
			event_free(s->ev_flush);
		close(fd);
		free(s);
		return;
	}
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	srv->n_sessions++;
	srv->stats.sessions_opened++;
	session_set_bev(s, bev);
	count_client(s);
	log_msg(LOG_INFO, "ev=connect sid=%s client=%s sessions=%zu", s->sid,
		s->client, srv->n_sessions);
	if (kind == LISTEN_SMTPS) {
		s->state = SESSION_TLS; /* the banner follows the handshake */
		return;
	}
	s->state = SESSION_GREETING;
	greet_or_refuse(s);
}
