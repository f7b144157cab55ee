/*
 * session_cmd_rcpt.c - RCPT TO (RFC 5321 4.1.1.3): syntax here, the
 * verdict from policy/rcpt.c, the 452 4.5.3 past max_recipients (the
 * recipients accepted before stay accepted, RFC 5321 4.5.3.1.10).
 */
#include <string.h>

#include "policy/rcpt.h"
#include "proto/esmtp.h"
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

void
cmd_rcpt(struct session *s, const struct cmd *c)
{
	struct txn *t = s->txn;
	struct rcpt_verdict v;
	struct esmtp_param e;
	struct addr to;
	size_t used = 0, consumed;
	enum addr_result ar;
	enum reply_id id;

	if (t == NULL) {
		session_reply(s, s->has_helo ? REPLY_NEED_MAIL
					     : REPLY_NEED_HELO);
		return;
	}
	t->n_rcpt_tries++;
	if (t->msg->n_rcpts >= s->srv->cfg->server_max_recipients) {
		session_reply(s, REPLY_TOO_MANY_RCPTS);
		return;
	}
	ar = addr_parse_path(c->arg, c->arg_len,
			     ADDR_ALLOW_POSTMASTER | ADDR_ALLOW_UTF8, &to,
			     &used);
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
	switch (esmtp_param_next(c->arg + used, c->arg_len - used, &e,
				 &consumed)) {
	case ESMTP_END:
		break;
	case ESMTP_OK: {
		char key[64];
		str_copy(key, sizeof key, e.key,
			 e.key_len < sizeof key ? e.key_len : sizeof key - 1);
		session_reply(s, REPLY_PARAM_UNKNOWN, key);
		return;
	}
	default:
		session_reply(s, REPLY_PARAM_SYNTAX, "RCPT TO parameters");
		return;
	}
	id = policy_rcpt_check(s->srv->cfg, s->srv->users, &to, s->is_auth,
			       &v);
	log_rcpt(s, &to, id);
	if (v.route != RCPT_ROUTE_NONE && !has_rcpt(t->msg, v.mailbox) &&
	    msg_add_rcpt(t->msg, v.mailbox, to.mailbox,
			 v.route == RCPT_ROUTE_LOCAL ? MSG_ROUTE_LOCAL
						     : MSG_ROUTE_REMOTE) != 0) {
		session_reply(s, REPLY_NO_MEMORY);
		return;
	}
	switch (id) {
	case REPLY_WILL_FORWARD:
	case REPLY_USER_MOVED:
		session_reply(s, id, v.mailbox);
		break;
	default:
		session_reply(s, id, to.mailbox);
		break;
	}
}
