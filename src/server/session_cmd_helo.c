/*
 * session_cmd_helo.c - HELO and EHLO (RFC 5321 4.1.1.1), and the
 * extensions EHLO announces: PIPELINING (RFC 2920), SIZE (RFC 1870),
 * 8BITMIME (RFC 6152), ENHANCEDSTATUSCODES (RFC 2034), SMTPUTF8 (RFC 6531),
 * CHUNKING (RFC 3030), DSN (RFC 3461), and in a TLS session (after
 * STARTTLS, or on smtps) REQUIRETLS (RFC 8689) and AUTH.  REQUIRETLS is
 * never offered in clear text: a client must see the session encrypted
 * before it asks for TLS on every later hop, and MAIL refuses the
 * parameter there (555 5.7.30).  Either command resets the transaction
 * (4.1.4).
 */
#include <stdio.h>
#include <string.h>

#include "server/session_int.h"
#include "util/str.h"

#define EHLO_LINES_MAX 12

/* The argument: one token of printable ASCII (or UTF-8), no spaces. */
static bool
helo_arg_ok(const struct cmd *c)
{
	if (c->arg_len == 0 || c->arg_len > SMTP_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < c->arg_len; i++) {
		unsigned char ch = (unsigned char)c->arg[i];
		if (ch <= ' ' || ch == 0x7f)
			return false;
	}
	return true;
}

bool
cmd_helo_check(struct session *s, const struct cmd *c)
{
	if (!helo_arg_ok(c)) {
		session_reply(s, REPLY_HELO_DOMAIN);
		return false;
	}
	return true;
}

void
cmd_helo(struct session *s, const struct cmd *c)
{
	const struct config *cfg = s->srv->cfg;
	char greet[SMTP_REPLY_LINE_MAX], size[32];
	char buf[EHLO_LINES_MAX * SMTP_REPLY_LINE_MAX];
	const char *lines[EHLO_LINES_MAX];
	size_t n = 0, len;

	session_txn_reset(s);
	str_copy(s->helo, sizeof s->helo, c->arg, c->arg_len);
	s->has_helo = true;
	s->is_esmtp = c->verb == CMD_EHLO;
	if (session_check_sync(s, s->is_esmtp ? "EHLO" : "HELO"))
		return;
	if (!s->is_esmtp) {
		session_reply(s, REPLY_HELO_OK, cfg->server_hostname, s->helo);
		return;
	}
	snprintf(greet, sizeof greet, "%s Hello %s %s", cfg->server_hostname,
		 s->helo, s->literal);
	snprintf(size, sizeof size, "SIZE %llu",
		 (unsigned long long)cfg->server_max_message_size);
	lines[n++] = greet;
	lines[n++] = "PIPELINING";
	lines[n++] = size;
	lines[n++] = "8BITMIME";
	lines[n++] = "ENHANCEDSTATUSCODES";
	lines[n++] = "SMTPUTF8";
	lines[n++] = "CHUNKING";
	lines[n++] = "DSN";
	if (s->srv->tls_ctx != NULL && !s->is_tls)
		lines[n++] = "STARTTLS";
	if (s->is_tls) {
		lines[n++] = "REQUIRETLS"; /* before AUTH: AUTH stays last */
		lines[n++] = "AUTH PLAIN LOGIN";
	}
	len = reply_format_lines(buf, sizeof buf, 250, NULL, lines, n);
	session_reply_raw(s, buf, len);
}
