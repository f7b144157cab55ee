/*
 * session_cmd_simple.c - the commands that take no transaction: RSET,
 * NOOP, QUIT, VRFY (252, RFC 5321 3.5.3), HELP (214), and the ones this
 * version does not implement (EXPN, ETRN, TURN, and STARTTLS and AUTH,
 * which are not offered without TLS): 502 5.5.1.
 */
#include "server/session.h"

void
cmd_simple(struct session *s, const struct cmd *c)
{
	switch (c->verb) {
	case CMD_RSET:
		if (c->arg_len > 0) {
			session_reply(s, REPLY_NO_ARGS, "RSET");
			return;
		}
		session_txn_reset(s);
		session_reply(s, REPLY_RSET_OK);
		return;
	case CMD_NOOP:
		session_reply(s, REPLY_OK);
		return;
	case CMD_QUIT:
		if (c->arg_len > 0) {
			session_reply(s, REPLY_NO_ARGS, "QUIT");
			return;
		}
		session_reply(s, REPLY_QUIT, s->srv->cfg->server_hostname);
		return;
	case CMD_VRFY:
		if (c->arg_len == 0) {
			session_reply(s, REPLY_CMD_SYNTAX, "VRFY <address>");
			return;
		}
		session_reply(s, REPLY_VRFY);
		return;
	case CMD_HELP:
		session_reply(s, REPLY_HELP);
		return;
	default:
		session_reply(s, REPLY_NOT_IMPLEMENTED, cmd_verb_name(c->verb));
		return;
	}
}
