/*
 * milter.c - the content filter's client: one message, one connection to
 * the milter named by [filter] milter, driven on the loop by a libevent
 * bufferevent and a timer.
 *
 * The server calls milter_check() at the end of DATA, before the spool
 * commit.  The check copies the message, connects, and plays a whole SMTP
 * transaction to the filter (milter protocol version 6, as Postfix):
 *
 *   OPTNEG   version 6, actions ADDHDRS|CHGHDRS|SETSYMLIST, and every
 *            protocol skip and no-reply flag we can honour (not
 *            HDR_LEADSPC); the filter's answer says which it takes
 *   CONNECT  (after macros j, {daemon_name}, v), HELO, MAIL (macros i,
 *            {mail_addr}), one RCPT per recipient ({rcpt_addr}), DATA,
 *            one HEADER per field, EOH, BODY in chunks of at most
 *            MILTER_CHUNK_MAX octets, BODYEOB, then QUIT
 *
 * Each step the filter answers waits for CONTINUE; ACCEPT ends the check
 * early (store it), REJECT, TEMPFAIL, DISCARD and REPLYCODE (4xx: tempfail,
 * 5xx: reject; the text is kept) end it with their verdict, SKIP during the
 * body jumps to BODYEOB, PROGRESS restarts the timer.  After BODYEOB the
 * filter may send ADDHEADER, INSHEADER and CHGHEADER (milter_proto.c
 * applies them to a copy) before its final ACCEPT or CONTINUE.  A reply to
 * a recipient or earlier step counts for the whole message: at the end of
 * DATA there is no recipient left to refuse alone.
 *
 * Promises: the loop never blocks (a host name is resolved once, in
 * milter_open()); every callback runs exactly once, on the loop thread,
 * after milter_check() has returned (out of memory before anything is set
 * up is the one exception, as in greylist.c); [filter] timeout bounds each
 * wait for the filter, connecting included; no reply grows past
 * MILTER_PACKET_MAX.  Anything unexpected - refused, reset, hung up, a
 * reply we did not ask for or do not know, an action not negotiated, the
 * timer - is MILTER_FAILED, logged once here with the reason.
 *
 * Left to others: the SMTP reply and [filter] on_failure (server/), the
 * packets we send (milter_send.c), the framing and header edits
 * (milter_proto.c).  Reuse of one connection for
 * several messages is a later optimisation.  REPLY-CODES.md row 451;
 * issue 4.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "policy/milter_int.h"
#include "proto/limits.h"
#include "util/log.h"
#include "util/str.h"

static const char *const verdict_names[] = {
    [MILTER_ACCEPT] = "accept",	    [MILTER_REJECT] = "reject",
    [MILTER_TEMPFAIL] = "tempfail", [MILTER_DISCARD] = "discard",
    [MILTER_FAILED] = "failed",
};

static void advance(struct milter_job *j);

/* ---- the end of a check ---- */

static void
timer_restart(struct milter_job *j)
{
	event_add(j->ev_timer, &j->m->timeout);
}

/* Best effort: QUIT on the socket, unless data is still queued. */
static void
say_quit(struct milter_job *j)
{
	static const unsigned char quit[] = {0, 0, 0, 1, MILTER_C_QUIT};
	evutil_socket_t fd = bufferevent_getfd(j->bev);
	ssize_t n;

	if (fd < 0 || evbuffer_get_length(bufferevent_get_output(j->bev)))
		return;
	n = send(fd, quit, sizeof quit, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n;
}

/* Settles j; the callback runs from the loop (on_finish). */
static void
finish(struct milter_job *j, enum milter_verdict v, const char *why)
{
	if (j->is_finished)
		return;
	j->is_finished = true;
	j->res.verdict = v;
	str_set(j->why, sizeof j->why, why ? why : "");
	if (j->ev_timer)
		event_del(j->ev_timer);
	if (j->bev) {
		if (v != MILTER_FAILED)
			say_quit(j);
		bufferevent_free(j->bev);
		j->bev = NULL;
	}
	if (v == MILTER_ACCEPT && j->hdrs.is_edited &&
	    milter_hdrs_render(&j->hdrs, &j->res.data, &j->res.data_len)) {
		j->res.verdict = MILTER_FAILED;
		str_set(j->why, sizeof j->why, "out_of_memory");
	}
	event_active(j->ev_finish, 0, 0);
}

static void
job_free(struct milter_job *j)
{
	if (j->bev)
		bufferevent_free(j->bev);
	if (j->ev_timer)
		event_free(j->ev_timer);
	if (j->ev_finish)
		event_free(j->ev_finish);
	milter_hdrs_free(&j->hdrs);
	free(j->client_ip);
	free(j->client_name);
	free(j->helo);
	free(j->sender);
	free(j->qid);
	for (size_t i = 0; i < j->n_rcpts; i++)
		free(j->rcpts[i]);
	free(j->rcpts);
	free(j->data);
	free(j->res.data);
	free(j);
}

static void
job_unlink(struct milter_job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		j->m->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->prev = j->next = NULL;
}

/* Logs the verdict, runs the callback, frees j (loop thread). */
static void
job_done(struct milter_job *j)
{
	struct milter_result *r = &j->res;

	job_unlink(j);
	if (r->verdict == MILTER_FAILED)
		log_msg(LOG_WARN, "ev=milter_failed qid=%s milter=%s reason=%s",
			log_q(j->qid), log_q(j->m->spec), log_q(j->why));
	else
		log_msg(LOG_INFO,
			"ev=milter qid=%s verdict=%s reply=%s edited=%s",
			log_q(j->qid), verdict_names[r->verdict],
			log_q(r->reply), r->data ? "yes" : "no");
	j->cb(j->arg, r);
	job_free(j);
}

static void
on_finish(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	job_done(arg);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg, MILTER_FAILED, "timeout");
}

/* ---- replies in ---- */

static void
on_optneg(struct milter_job *j, char cmd, const unsigned char *p, size_t len)
{
	uint32_t w[MILTER_OPTNEG_WORDS];

	if (cmd != MILTER_C_OPTNEG ||
	    len < (size_t)MILTER_OPTNEG_WORDS * MILTER_LEN_BYTES) {
		finish(j, MILTER_FAILED, "bad_optneg");
		return;
	}
	for (size_t i = 0; i < MILTER_OPTNEG_WORDS; i++, p += MILTER_LEN_BYTES)
		w[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		       (uint32_t)p[2] << 8 | p[3];
	/* Any macro lists after the words: we send ours regardless. */
	if (w[0] < 2 || w[0] > MILTER_VERSION) {
		finish(j, MILTER_FAILED, "version");
		return;
	}
	if ((w[1] & ~MILTER_ACTIONS) || (w[2] & ~MILTER_PROTOCOL)) {
		finish(j, MILTER_FAILED, "options_not_offered");
		return;
	}
	j->actions = w[1];
	j->protocol = w[2];
	j->step = STEP_CONNECT;
	j->is_waiting = false;
	advance(j);
}

/* SMFIR_REPLYCODE: "4xx ..." tempfails, "5xx ..." rejects. */
static void
on_replycode(struct milter_job *j, const unsigned char *p, size_t len)
{
	const char *t = (const char *)p;
	size_t n = strnlen(t, len);

	if (n < MILTER_REPLY_MIN_DIGITS || (t[0] != '4' && t[0] != '5') ||
	    t[1] < '0' || t[1] > '9' || t[2] < '0' || t[2] > '9') {
		finish(j, MILTER_FAILED, "bad_replycode");
		return;
	}
	if (n >= sizeof j->res.reply)
		n = sizeof j->res.reply - 1;
	memcpy(j->res.reply, t, n);
	j->res.reply[n] = '\0';
	finish(j, t[0] == '4' ? MILTER_TEMPFAIL : MILTER_REJECT, NULL);
}

static void
on_edit(struct milter_job *j, char cmd, const unsigned char *p, size_t len)
{
	uint32_t need =
	    cmd == MILTER_R_CHGHEADER ? MILTER_F_CHGHDRS : MILTER_F_ADDHDRS;

	if (j->awaited != STEP_EOB || !(j->actions & need)) {
		finish(j, MILTER_FAILED, "edit_not_allowed");
		return;
	}
	if (milter_hdrs_edit(&j->hdrs, cmd, p, len) != MILTER_PARSE_OK)
		finish(j, MILTER_FAILED, "bad_edit");
}

static void
on_reply(struct milter_job *j, char cmd, const unsigned char *p, size_t len)
{
	if (!j->is_waiting) {
		finish(j, MILTER_FAILED, "unasked_reply");
		return;
	}
	if (j->awaited == STEP_OPTNEG) {
		on_optneg(j, cmd, p, len);
		return;
	}
	switch (cmd) {
	case MILTER_R_PROGRESS:
		timer_restart(j);
		return;
	case MILTER_R_CONTINUE:
		if (j->awaited == STEP_EOB) {
			finish(j, MILTER_ACCEPT, NULL);
			return;
		}
		j->is_waiting = false;
		advance(j);
		return;
	case MILTER_R_SKIP:
		if (j->awaited != STEP_BODY || !(j->protocol & MILTER_P_SKIP)) {
			finish(j, MILTER_FAILED, "bad_skip");
			return;
		}
		j->step = STEP_EOB;
		j->is_waiting = false;
		advance(j);
		return;
	case MILTER_R_ACCEPT:
		finish(j, MILTER_ACCEPT, NULL);
		return;
	case MILTER_R_REJECT:
		finish(j, MILTER_REJECT, NULL);
		return;
	case MILTER_R_TEMPFAIL:
		finish(j, MILTER_TEMPFAIL, NULL);
		return;
	case MILTER_R_DISCARD:
		finish(j, MILTER_DISCARD, NULL);
		return;
	case MILTER_R_REPLYCODE:
		on_replycode(j, p, len);
		return;
	case MILTER_R_ADDHEADER:
	case MILTER_R_INSHEADER:
	case MILTER_R_CHGHEADER:
		on_edit(j, cmd, p, len);
		return;
	default:
		finish(j, MILTER_FAILED, "unknown_reply");
		return;
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct milter_job *j = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!j->is_finished) {
		size_t have = evbuffer_get_length(in), plen, used;
		const unsigned char *buf, *payload;
		enum milter_parse rc;
		char cmd;

		if (have < MILTER_LEN_BYTES)
			return;
		buf = evbuffer_pullup(in, MILTER_LEN_BYTES);
		rc = milter_packet_parse(buf, MILTER_LEN_BYTES, &cmd, &payload,
					 &plen, &used);
		if (rc == MILTER_PARSE_ERR_LENGTH) {
			finish(j, MILTER_FAILED, "bad_length");
			return;
		}
		buf = evbuffer_pullup(in, -1);
		rc = milter_packet_parse(buf, have, &cmd, &payload, &plen,
					 &used);
		if (rc == MILTER_PARSE_MORE)
			return;
		on_reply(j, cmd, payload, plen);
		if (j->is_finished)
			return;
		evbuffer_drain(in, used);
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct milter_job *j = arg;

	if (what & BEV_EVENT_CONNECTED) {
		if (milter_send_optneg(bufferevent_get_output(bev)) != 0) {
			finish(j, MILTER_FAILED, "out_of_memory");
			return;
		}
		j->awaited = STEP_OPTNEG;
		j->is_waiting = true;
		timer_restart(j);
		return;
	}
	if (what & BEV_EVENT_EOF)
		finish(j, MILTER_FAILED, "hung_up");
	else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		finish(j, MILTER_FAILED,
		       evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* Sends steps until one awaits a reply (or all are sent). */
static void
advance(struct milter_job *j)
{
	struct evbuffer *out = bufferevent_get_output(j->bev);

	while (!j->is_finished && !j->is_waiting && j->step < STEP_END) {
		bool is_reply;

		if (milter_emit(j, out, &is_reply) != 0) {
			finish(j, MILTER_FAILED, "out_of_memory");
			return;
		}
		if (is_reply) {
			j->is_waiting = true;
			timer_restart(j);
		}
	}
}

/* ---- checks ---- */

static char *
dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

/* Copies msg into j; -1 when out of memory. */
static int
job_copy(struct milter_job *j, const struct milter_msg *msg)
{
	j->client_ip = dup_or_empty(msg->client_ip);
	j->client_name = dup_or_empty(msg->client_name);
	j->helo = dup_or_empty(msg->helo);
	j->sender = dup_or_empty(msg->sender);
	j->qid = dup_or_empty(msg->qid);
	if (!j->client_ip || !j->client_name || !j->helo || !j->sender ||
	    !j->qid)
		return -1;
	if (msg->n_rcpts > 0) {
		j->rcpts = calloc(msg->n_rcpts, sizeof *j->rcpts);
		if (j->rcpts == NULL)
			return -1;
		for (; j->n_rcpts < msg->n_rcpts; j->n_rcpts++)
			if (!(j->rcpts[j->n_rcpts] =
				  dup_or_empty(msg->rcpts[j->n_rcpts])))
				return -1;
	}
	j->data = malloc(msg->data_len + 1);
	if (j->data == NULL)
		return -1;
	if (msg->data_len)
		memcpy(j->data, msg->data, msg->data_len);
	j->data[msg->data_len] = '\0';
	j->data_len = msg->data_len;
	return 0;
}

/* Connects j's bufferevent; failures settle j. */
static void
job_start(struct milter_job *j)
{
	struct milter *m = j->m;
	enum milter_parse rc;

	if (m->is_closing) {
		finish(j, MILTER_FAILED, "closing");
		return;
	}
	rc = milter_hdrs_split(&j->hdrs, j->data, j->data_len);
	if (rc != MILTER_PARSE_OK) {
		finish(j, MILTER_FAILED,
		       rc == MILTER_PARSE_ERR_TOO_MANY ? "too_many_headers"
						       : "out_of_memory");
		return;
	}
	j->bev = bufferevent_socket_new(m->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (j->bev == NULL) {
		finish(j, MILTER_FAILED, "out_of_memory");
		return;
	}
	bufferevent_setcb(j->bev, on_read, NULL, on_event, j);
	bufferevent_setwatermark(j->bev, EV_READ, 0,
				 MILTER_PACKET_MAX + MILTER_LEN_BYTES);
	timer_restart(j);
	if (bufferevent_socket_connect(j->bev, (struct sockaddr *)&m->ss,
				       (int)m->sslen) != 0) {
		finish(j, MILTER_FAILED, "connect_failed");
		return;
	}
	bufferevent_enable(j->bev, EV_READ | EV_WRITE);
}

void
milter_check(struct milter *m, const struct milter_msg *msg, milter_done_fn cb,
	     void *arg)
{
	struct milter_job *j = calloc(1, sizeof *j);

	if (j != NULL) {
		j->m = m;
		j->cb = cb;
		j->arg = arg;
		j->ev_finish = event_new(m->base, -1, 0, on_finish, j);
		j->ev_timer = evtimer_new(m->base, on_timeout, j);
	}
	if (j == NULL || !j->ev_finish || !j->ev_timer) {
		struct milter_result res = {.verdict = MILTER_FAILED};

		/* Nothing to defer the callback with: it runs now. */
		log_msg(LOG_ERR, "ev=milter_out_of_memory qid=%s",
			log_q(msg->qid));
		if (j != NULL)
			job_free(j);
		cb(arg, &res);
		return;
	}
	j->next = m->jobs;
	if (m->jobs)
		m->jobs->prev = j;
	m->jobs = j;
	if (job_copy(j, msg) != 0)
		finish(j, MILTER_FAILED, "out_of_memory");
	else
		job_start(j);
}

/* ---- the handle ---- */

/* "[v6]:port", "host:port" or "port@host" into host and port. */
static int
inet_split(const char *s, char *host, size_t size, uint64_t *port_out)
{
	const char *at = strchr(s, '@'), *colon, *h, *p;
	size_t hlen;

	if (at != NULL) {
		h = at + 1;
		hlen = strlen(h);
		p = s;
		if (!str_copy(host, size, p, (size_t)(at - p)) ||
		    !str_to_u64(host, port_out))
			return -1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		h = s;
		hlen = (size_t)(colon - s);
		if (!str_to_u64(colon + 1, port_out))
			return -1;
	}
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen == 0 || *port_out == 0 || *port_out > MILTER_PORT_MAX)
		return -1;
	return str_copy(host, size, h, hlen) ? 0 : -1;
}

static int
addr_inet(struct milter *m, const char *s, char *err, size_t size)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	char host[SMTP_DOMAIN_MAX + 1], port[sizeof "65535"];
	struct addrinfo *res = NULL;
	uint64_t n;
	int rc;

	if (inet_split(s, host, sizeof host, &n) != 0)
		return -1;
	snprintf(port, sizeof port, "%u", (unsigned)n);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || res == NULL || res->ai_addrlen > sizeof m->ss) {
		snprintf(err, size,
			 "cannot resolve the milter host \"%s\" (%s); fix "
			 "[filter] milter",
			 host, rc ? gai_strerror(rc) : "no address");
		if (res)
			freeaddrinfo(res);
		return -2;
	}
	memcpy(&m->ss, res->ai_addr, res->ai_addrlen);
	m->sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int
addr_unix(struct milter *m, const char *path)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&m->ss;

	sun->sun_family = AF_UNIX;
	if (!str_set(sun->sun_path, sizeof sun->sun_path, path) ||
	    path[0] == '\0')
		return -1;
	m->sslen = sizeof *sun;
	return 0;
}

/* Fills m->ss from spec; -1 with the fix in err. */
static int
addr_parse(struct milter *m, const char *spec, char *err, size_t size)
{
	int rc = -1;

	if (strncmp(spec, "unix:", 5) == 0)
		rc = addr_unix(m, spec + 5);
	else if (strncmp(spec, "local:", 6) == 0)
		rc = addr_unix(m, spec + 6);
	else if (strncmp(spec, "inet:", 5) == 0)
		rc = addr_inet(m, spec + 5, err, size);
	else if (strncmp(spec, "inet6:", 6) == 0)
		rc = addr_inet(m, spec + 6, err, size);
	if (rc == -1)
		snprintf(err, size,
			 "milter \"%s\" is neither inet:host:port nor "
			 "unix:PATH; fix [filter] milter",
			 spec);
	return rc == 0 ? 0 : -1;
}

struct milter *
milter_open(const struct config *cfg, struct event_base *base, char *err,
	    size_t size)
{
	const char *spec = cfg->filter_milter ? cfg->filter_milter : "";
	struct milter *m = calloc(1, sizeof *m);

	if (m == NULL) {
		snprintf(err, size, "out of memory");
		return NULL;
	}
	m->cfg = cfg;
	m->base = base;
	m->timeout.tv_sec = (time_t)cfg->filter_timeout;
	str_set(m->spec, sizeof m->spec, spec);
	if (addr_parse(m, spec, err, size) != 0) {
		free(m);
		return NULL;
	}
	return m;
}

void
milter_close(struct milter *m)
{
	if (m == NULL)
		return;
	m->is_closing = true;
	/* Callbacks may start more checks; those fail and join the list. */
	/* NOLINTBEGIN(clang-analyzer-unix.Malloc) */
	while (m->jobs != NULL) {
		struct milter_job *j = m->jobs;

		/* job_done() unlinks j from m->jobs before freeing it; the
		 * analyzer cannot follow that through the calls. */
		finish(j, MILTER_FAILED, "closing");
		event_del(j->ev_finish);
		job_done(j);
	}
	/* NOLINTEND(clang-analyzer-unix.Malloc) */
	free(m);
}
