/*
 * session_cmd_rcpt.c - RCPT TO (RFC 5321 4.1.1.3): syntax here, the
 * verdict from route_rcpt(), the 452 4.5.3 past max_recipients (the
 * recipients accepted before stay accepted, RFC 5321 4.5.3.1.10), then,
 * an mbox locked by a mail reader gets 450 4.2.1, a local mailbox at or
 * over [local] quota gets 452 4.2.2, and, for
 * unauthenticated clients with [greylist] enabled, the greylist:
 * 450 4.2.0 naming the wait on first sight, 451 4.3.0 when its store
 * fails (never a silent accept that skips the policy).  The path is read
 * as MAIL's (bare and long local parts unless [server] strict_envelopes);
 * one that does not parse is 501 5.1.3.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>

#include "policy/greylist.h"
#include "proto/esmtp.h"
#include "route/route.h"
#include "server/session.h"
#include "util/log.h"
#include "util/str.h"

/* True when mailbox is already a recipient (a duplicate is delivered once). */
static bool
has_rcpt(const struct msg *m, const char *mailbox)
{
	for (size_t i = 0; i < m->n_rcpts; i++)
		if (strcmp(m->rcpts[i].mailbox, mailbox) == 0)
			return true;
	return false;
}

static void
log_rcpt(struct session *s, const struct addr *a, enum reply_id id)
{
	log_msg(LOG_INFO, "ev=rcpt sid=%s client=%s to=%s reply=%d enh=%s "
		"reason=%s", s->sid, s->client, log_q(a->mailbox),
		reply_row(id)->code, reply_row(id)->enhanced,
		reply_reason(id));
}

/* What RCPT's DSN parameters asked for (RFC 3461). */
struct rcpt_dsn {
	unsigned notify;		/* enum msg_notify bits */
	char orcpt[SMTP_PATH_MAX + 32]; /* decoded, "" when absent */
};

/* Records an accepted recipient and sends the verdict's reply. */
static void
rcpt_finish(struct session *s, const struct addr *to,
	    const struct rcpt_verdict *v, enum reply_id id,
	    const struct rcpt_dsn *dsn)
{
	struct txn *t = s->txn;

	log_rcpt(s, to, id);
	if (v->route != RCPT_ROUTE_NONE && !has_rcpt(t->msg, v->mailbox) &&
	    (msg_add_rcpt(t->msg, v->mailbox, to->mailbox,
			  route_msg_route(v)) != 0 ||
	     msg_rcpt_set_dsn(t->msg, t->msg->n_rcpts - 1, dsn->notify,
			      dsn->orcpt[0] ? dsn->orcpt : NULL) != 0)) {
		session_reply(s, REPLY_NO_MEMORY);
		return;
	}
	switch (id) {
	case REPLY_WILL_FORWARD:
	case REPLY_USER_MOVED:
		session_reply(s, id, v->mailbox);
		break;
	default:
		session_reply(s, id, to->mailbox);
		break;
	}
}

/* A greylist check in flight; s is NULL once the session is gone. */
struct rcpt_pending {
	struct session *s;
	struct addr to;
	struct rcpt_verdict v;
	struct rcpt_dsn dsn;
};

static void
on_greylisted(void *arg, enum greylist_verdict gv, unsigned wait)
{
	struct rcpt_pending *p = arg;
	struct session *s = p->s;

	if (s == NULL || s->state == SESSION_CLOSING) {
		free(p);
		return;
	}
	s->rcpt_pending = NULL;
	s->state = SESSION_CMD;
	switch (gv) {
	case GREYLIST_PASS:
		rcpt_finish(s, &p->to, &p->v, p->v.reply, &p->dsn);
		break;
	case GREYLIST_DEFER:
		log_rcpt(s, &p->to, REPLY_GREYLISTED);
		s->srv->stats.greylist_hits++;
		session_reply(s, REPLY_GREYLISTED, wait);
		break;
	default:
		log_msg(LOG_ERR, "ev=local_error sid=%s part=greylist "
			"store=%s", s->sid,
			log_q(s->srv->cfg->greylist_store));
		log_rcpt(s, &p->to, REPLY_STATE_STORE_ERROR);
		session_reply(s, REPLY_STATE_STORE_ERROR);
		break;
	}
	free(p);
	session_resume(s);
}

/* Asks the greylist about an otherwise accepted recipient. */
static void
greylist_start(struct session *s, const struct addr *to,
	       const struct rcpt_verdict *v, const struct rcpt_dsn *dsn)
{
	struct rcpt_pending *p = malloc(sizeof *p);

	if (p == NULL) {
		session_reply(s, REPLY_NO_MEMORY);
		return;
	}
	p->s = s;
	p->to = *to;
	p->v = *v;
	p->dsn = *dsn;
	s->rcpt_pending = p;
	s->state = SESSION_POLICY;
	greylist_check(s->srv->greylist, s->ip, s->txn->from.mailbox,
		       to->mailbox, on_greylisted, p);
}

void
session_rcpt_cancel(struct session *s)
{
	if (s->rcpt_pending != NULL)
		s->rcpt_pending->s = NULL;
	s->rcpt_pending = NULL;
}

/* RFC 3461 5.1: NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY. */
static bool
parse_notify(const char *v, size_t len, unsigned *out)
{
	static const struct {
		const char *word;
		unsigned bit;
	} words[] = {{"NEVER", MSG_NOTIFY_NEVER},
		     {"SUCCESS", MSG_NOTIFY_SUCCESS},
		     {"FAILURE", MSG_NOTIFY_FAILURE},
		     {"DELAY", MSG_NOTIFY_DELAY}};
	size_t start = 0;

	*out = 0;
	while (start <= len) {
		const char *comma = memchr(v + start, ',', len - start);
		size_t n = comma ? (size_t)(comma - (v + start)) : len - start;
		unsigned bit = 0;
		for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
			if (str_eq_nocase(v + start, n, words[i].word))
				bit = words[i].bit;
		if (bit == 0 || (*out & bit))
			return false;
		*out |= bit;
		start += n + 1;
	}
	return !((*out & MSG_NOTIFY_NEVER) && *out != MSG_NOTIFY_NEVER);
}

/* RFC 3461 4.2: ORCPT=addr-type;xtext, kept decoded. */
static bool
parse_orcpt(const char *v, size_t len, char *out, size_t size)
{
	const char *semi = memchr(v, ';', len);
	size_t type_len = semi ? (size_t)(semi - v) : 0, n;

	if (semi == NULL || type_len == 0 || type_len + 2 >= size)
		return false;
	for (size_t i = 0; i < type_len; i++)
		if (!(v[i] >= 'a' && v[i] <= 'z') &&
		    !(v[i] >= 'A' && v[i] <= 'Z') &&
		    !(v[i] >= '0' && v[i] <= '9') && v[i] != '-')
			return false;
	memcpy(out, v, type_len + 1);
	return esmtp_xtext_decode(semi + 1, len - type_len - 1,
				  out + type_len + 1, size - type_len - 1,
				  &n) && n > 0;
}

/*
 * RCPT's parameters: NOTIFY and ORCPT (RFC 3461), 455 4.3.1 when a DSN
 * cannot be promised now (the notice spool is short of space), 555 for
 * anything else.  False when a reply was sent.
 */
static bool
rcpt_params(struct session *s, const char *rest, size_t len,
	    struct rcpt_dsn *dsn)
{
	struct esmtp_param e;
	size_t consumed;
	enum esmtp_result r;

	memset(dsn, 0, sizeof *dsn);
	while ((r = esmtp_param_next(rest, len, &e, &consumed)) == ESMTP_OK) {
		bool ok;
		char key[64];
		str_copy(key, sizeof key, e.key,
			 e.key_len < sizeof key ? e.key_len : sizeof key - 1);
		if (!s->is_esmtp ||
		    (!esmtp_param_is(&e, "NOTIFY") &&
		     !esmtp_param_is(&e, "ORCPT"))) {
			session_reply(s, REPLY_PARAM_UNKNOWN, key);
			return false;
		}
		if (esmtp_param_is(&e, "NOTIFY"))
			ok = dsn->notify == 0 && e.value &&
			     parse_notify(e.value, e.value_len, &dsn->notify);
		else
			ok = dsn->orcpt[0] == '\0' && e.value &&
			     parse_orcpt(e.value, e.value_len, dsn->orcpt,
					 sizeof dsn->orcpt);
		if (!ok) {
			session_reply(s, REPLY_PARAM_SYNTAX, key);
			return false;
		}
		rest += consumed;
		len -= consumed;
	}
	if (r != ESMTP_END) {
		session_reply(s, REPLY_PARAM_SYNTAX, "RCPT TO parameters");
		return false;
	}
	if ((dsn->notify || dsn->orcpt[0]) && !session_dsn_space_ok(s)) {
		session_reply(s, REPLY_DSN_NO_ROOM);
		return false;
	}
	return true;
}

void
cmd_rcpt(struct session *s, const struct cmd *c)
{
	struct txn *t = s->txn;
	struct rcpt_verdict v;
	struct rcpt_dsn dsn;
	struct addr to;
	size_t used = 0;
	unsigned flags;
	enum addr_result ar;
	enum reply_id id;

	t->n_rcpt_tries++;
	if (t->msg->n_rcpts >= s->srv->cfg->server_max_recipients) {
		session_reply(s, REPLY_TOO_MANY_RCPTS);
		return;
	}
	/* [server] strict_envelopes: brackets and 64-octet local parts. */
	flags = ADDR_ALLOW_POSTMASTER | ADDR_ALLOW_UTF8 |
		addr_envelope_flags(s->srv->cfg->server_strict_envelopes);
	ar = addr_parse_path(c->arg, c->arg_len, flags, &to, &used);
	if (ar != ADDR_OK || (used < c->arg_len && c->arg[used] != ' ')) {
		char shown[SMTP_PATH_MAX + 1];
		str_copy(shown, sizeof shown, c->arg,
			 c->arg_len < SMTP_PATH_MAX ? c->arg_len : SMTP_PATH_MAX);
		session_reply(s, ar == ADDR_ERR_NEEDS_UTF8
					 ? REPLY_NEEDS_SMTPUTF8
					 : REPLY_RCPT_SYNTAX, shown);
		return;
	}
	if (to.is_utf8 && !t->is_smtputf8) {
		session_reply(s, REPLY_NEEDS_SMTPUTF8);
		return;
	}
	if (!rcpt_params(s, c->arg + used, c->arg_len - used, &dsn))
		return;
	id = route_rcpt(&(const struct route_req){.cfg = s->srv->cfg,
						  .users = s->srv->users,
						  .is_trusted = s->is_auth,
						  .check_mailbox = true,
						  .sid = s->sid},
			&to, &v);
	if (id == REPLY_MAILBOX_LOCKED || id == REPLY_OVER_QUOTA) {
		log_rcpt(s, &to, id);
		session_reply(s, id, v.mailbox);
		return;
	}
	if (v.route != RCPT_ROUTE_NONE && s->srv->greylist != NULL &&
	    !s->is_auth) {
		greylist_start(s, &to, &v, &dsn);
		return;
	}
	rcpt_finish(s, &to, &v, id, &dsn);
}
