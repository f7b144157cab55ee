/*
 * session_cmd_simple.c - the commands that take no transaction: RSET,
 * NOOP, QUIT, VRFY (252, RFC 5321 3.5.3), HELP (214), and the ones this
 * version does not implement (EXPN, ETRN, TURN): 502 5.5.1.  STARTTLS
 * and AUTH without TLS are refused by the command table (session.c).
 * Also the argument checks that several rows share.
 */
#include "server/session.h"

bool
cmd_check_no_args(struct session *s, const struct cmd *c)
{
	if (c->arg_len > 0) {
		session_reply(s, REPLY_NO_ARGS, cmd_verb_name(c->verb));
		return false;
	}
	return true;
}

bool
cmd_vrfy_check(struct session *s, const struct cmd *c)
{
	if (c->arg_len == 0) {
		session_reply(s, REPLY_CMD_SYNTAX, "VRFY <address>");
		return false;
	}
	return true;
}

void
cmd_rset(struct session *s, const struct cmd *c)
{
	(void)c;
	session_txn_reset(s);
	session_reply(s, REPLY_RSET_OK);
}

void
cmd_noop(struct session *s, const struct cmd *c)
{
	(void)c;
	session_reply(s, REPLY_OK);
}

void
cmd_quit(struct session *s, const struct cmd *c)
{
	(void)c;
	session_reply(s, REPLY_QUIT, s->srv->cfg->server_hostname);
}

void
cmd_vrfy(struct session *s, const struct cmd *c)
{
	(void)c;
	session_reply(s, REPLY_VRFY);
}

void
cmd_help(struct session *s, const struct cmd *c)
{
	(void)c;
	session_reply(s, REPLY_HELP);
}

void
cmd_unimplemented(struct session *s, const struct cmd *c)
{
	session_reply(s, REPLY_NOT_IMPLEMENTED, cmd_verb_name(c->verb));
}
