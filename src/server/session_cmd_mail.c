/*
 * session_cmd_mail.c - MAIL FROM (RFC 5321 4.1.1.2) and its parameters:
 * SIZE (RFC 1870: 552 5.3.4 above max_message_size, 452 4.3.1 above the
 * space free beyond the spool reserve), BODY=7BIT/8BITMIME (RFC 6152),
 * SMTPUTF8 (RFC 6531), RET and ENVID (RFC 3461; 455 4.3.1 when the
 * spool has not dsn_reserve to spare for the notices - the same MAIL
 * without them succeeds now), REQUIRETLS (RFC 8689 4.1: the message is
 * tagged MSG_F_REQUIRETLS; only in a TLS session, as EHLO offers it only
 * there - in clear text 555 5.7.30; with a value or twice 501 5.5.4).
 * Anything else is 555 5.5.4.  With [dns]
 * check_sender_domain, the sender's domain must resolve (policy/dns.c):
 * none or a null MX is 550 5.1.8, a lookup that fails or times out 451
 * 4.4.3 - the client keeps the message and retries.  The path is read by
 * proto/addr.c: with [server] strict_envelopes = false (the default) also
 * without angle brackets and with a local part past RFC 5321's 64 octets,
 * up to the path limit (VERP, SRS); a path that does not parse is 501
 * 5.1.7, an empty one ("MAIL FROM:") the usage 501 5.5.4.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/authcheck.h"
#include "policy/dns.h"
#include "proto/esmtp.h"
#include "server/session.h"
#include "util/log.h"
#include "util/str.h"

/* RFC 3461 4.4: ENVID is at most 100 characters. */
#define MAIL_ENVID_MAX 100

/* Why MAIL's parameters were refused, or REPLY_COUNT when they are fine. */
struct mail_params {
	uint64_t size;
	bool has_size, has_body, is_8bit, is_utf8;
	bool is_requiretls;		 /* RFC 8689 REQUIRETLS */
	enum msg_ret ret;		 /* RFC 3461 RET */
	char envid[MAIL_ENVID_MAX + 1];	 /* RFC 3461 ENVID, decoded */
	bool has_envid;
	enum reply_id error;
	char bad[64];
};

static void
param_error(struct mail_params *p, enum reply_id id,
	    const struct esmtp_param *e)
{
	if (p->error != REPLY_COUNT)
		return;
	p->error = id;
	str_copy(p->bad, sizeof p->bad, e->key,
		 e->key_len < sizeof p->bad ? e->key_len : sizeof p->bad - 1);
}

/* RFC 8689 2: REQUIRETLS, a keyword alone, once, in a TLS session. */
static void
mail_param_requiretls(struct mail_params *p, const struct esmtp_param *e,
		      bool is_tls)
{
	switch (esmtp_requiretls_check(e, p->is_requiretls, is_tls)) {
	case ESMTP_REQUIRETLS_OK:
		break;
	case ESMTP_REQUIRETLS_NO_TLS:
		param_error(p, REPLY_REQUIRETLS_NEEDS_TLS, e);
		break;
	default:
		param_error(p, REPLY_PARAM_SYNTAX, e);
		break;
	}
	p->is_requiretls = true;
}

static void
mail_param(struct mail_params *p, const struct esmtp_param *e, bool is_tls)
{
	if (esmtp_param_is(e, "SIZE")) {
		if (p->has_size || e->value == NULL ||
		    !esmtp_parse_uint(e->value, e->value_len, &p->size))
			param_error(p, REPLY_PARAM_SYNTAX, e);
		p->has_size = true;
	} else if (esmtp_param_is(e, "BODY")) {
		bool is_7bit = e->value &&
			       str_eq_nocase(e->value, e->value_len, "7BIT");
		p->is_8bit = e->value &&
			     str_eq_nocase(e->value, e->value_len, "8BITMIME");
		if (e->value &&
		    str_eq_nocase(e->value, e->value_len, "BINARYMIME"))
			param_error(p, REPLY_PARAM_NOT_IMPL, e);
		else if (p->has_body || (!is_7bit && !p->is_8bit))
			param_error(p, REPLY_PARAM_SYNTAX, e);
		p->has_body = true;
	} else if (esmtp_param_is(e, "RET")) {
		enum msg_ret ret = MSG_RET_NONE;
		if (e->value && str_eq_nocase(e->value, e->value_len, "FULL"))
			ret = MSG_RET_FULL;
		if (e->value && str_eq_nocase(e->value, e->value_len, "HDRS"))
			ret = MSG_RET_HDRS;
		if (p->ret != MSG_RET_NONE || ret == MSG_RET_NONE)
			param_error(p, REPLY_PARAM_SYNTAX, e);
		p->ret = ret;
	} else if (esmtp_param_is(e, "ENVID")) {
		size_t n;
		if (p->has_envid || e->value == NULL ||
		    !esmtp_xtext_decode(e->value, e->value_len, p->envid,
					sizeof p->envid, &n) ||
		    n == 0)
			param_error(p, REPLY_PARAM_SYNTAX, e);
		p->has_envid = true;
	} else if (esmtp_param_is(e, "SMTPUTF8")) {
		if (p->is_utf8 || e->value != NULL)
			param_error(p, REPLY_PARAM_SYNTAX, e);
		p->is_utf8 = true;
	} else if (esmtp_param_is(e, "REQUIRETLS")) {
		mail_param_requiretls(p, e, is_tls);
	} else {
		param_error(p, REPLY_PARAM_UNKNOWN, e);
	}
}

/* Parses the parameters after the path; p->error tells the verdict. */
static void
mail_params_parse(struct session *s, const char *rest, size_t len,
		  struct mail_params *p)
{
	struct esmtp_param e;
	size_t consumed;

	memset(p, 0, sizeof *p);
	p->error = REPLY_COUNT;
	for (;;) {
		enum esmtp_result r = esmtp_param_next(rest, len, &e, &consumed);
		if (r == ESMTP_END)
			break;
		if (r != ESMTP_OK) {
			p->error = REPLY_PARAM_SYNTAX;
			str_copy(p->bad, sizeof p->bad, rest,
				 len < sizeof p->bad ? len : sizeof p->bad - 1);
			break;
		}
		if (!s->is_esmtp)
			param_error(p, REPLY_PARAM_UNKNOWN, &e);
		else
			mail_param(p, &e, s->is_tls);
		rest += consumed;
		len -= consumed;
	}
}

/* 452 4.3.1 when the spool's disk is below its reserve (or SIZE won't fit). */
static bool
space_ok(struct session *s, uint64_t need)
{
	uint64_t avail, want;

	if (spool_free_space(s->srv->spool, &avail) != 0)
		return true; /* cannot tell: the write itself will say */
	if (!str_add_u64(s->srv->cfg->spool_reserve, need, &want))
		return false;
	return avail >= want;
}

/*
 * True when an authenticated user may send as from: the null sender, the
 * user's own address, or a subaddress of it (alice+x@ for alice@).
 */
static bool
sender_owned(const struct session *s, const struct addr *from)
{
	const char *delim = s->srv->cfg->local_recipient_delimiter;
	const char *at = strrchr(s->auth_user, '@');
	size_t user_len = at ? (size_t)(at - s->auth_user) : 0;
	size_t local_len = strlen(from->local);

	if (from->is_null)
		return true;
	if (at == NULL || strcasecmp(from->domain, at + 1) != 0)
		return false;
	if (local_len > user_len && delim[0] != '\0' &&
	    strchr(delim, from->local[user_len]) != NULL)
		local_len = user_len;
	return local_len == user_len &&
	       strncasecmp(from->local, s->auth_user, user_len) == 0;
}

bool
session_dsn_space_ok(struct session *s)
{
	uint64_t avail, want;

	if (spool_free_space(s->srv->spool, &avail) != 0)
		return true;
	if (!str_add_u64(s->srv->cfg->spool_reserve,
			 s->srv->cfg->spool_dsn_reserve, &want))
		return false;
	return avail >= want;
}

static enum reply_id
addr_reply(enum addr_result r)
{
	return r == ADDR_ERR_NEEDS_UTF8 ? REPLY_NEEDS_SMTPUTF8
					: REPLY_SENDER_SYNTAX;
}

/* Opens the transaction and says 250. */
static void
mail_accept(struct session *s, const struct addr *from,
	    const struct mail_params *p)
{
	s->txn = calloc(1, sizeof *s->txn);
	if (s->txn == NULL || (s->txn->msg = msg_new()) == NULL ||
	    (s->txn->text = evbuffer_new()) == NULL) {
		session_txn_reset(s);
		session_reply(s, REPLY_NO_MEMORY);
		return;
	}
	/* SPF, DKIM and DMARC for mail from outside: the smtp port, no
	 * login; SPF's lookups start now. */
	if (s->srv->authcheck != NULL && s->kind == LISTEN_SMTP &&
	    !s->is_auth) {
		s->txn->auth = authcheck_start(s->srv->authcheck, s->ip,
					       s->helo, from->mailbox);
		if (s->txn->auth == NULL) {
			session_txn_reset(s);
			session_reply(s, REPLY_NO_MEMORY);
			return;
		}
	}
	s->txn->from = *from;
	s->txn->is_smtputf8 = p->is_utf8;
	s->txn->is_8bitmime = p->is_8bit;
	free(s->txn->msg->sender);
	s->txn->msg->sender = strdup(from->mailbox);
	s->txn->msg->ret = p->ret;
	if (p->has_envid)
		s->txn->msg->envid = strdup(p->envid);
	/* Set here, kept by data_finish, stored in the envelope's flags. */
	if (p->is_requiretls)
		s->txn->msg->flags |= MSG_F_REQUIRETLS;
	log_msg(LOG_INFO, "ev=mail sid=%s client=%s from=%s size=%llu%s",
		s->sid, s->client, log_q(from->mailbox),
		(unsigned long long)p->size,
		p->is_requiretls ? " requiretls=yes" : "");
	session_reply(s, REPLY_SENDER_OK, from->mailbox);
}

/* A sender-domain lookup in flight; s is NULL once the session is gone. */
struct mail_pending {
	struct session *s;
	struct addr from;
	struct mail_params params;
};

static void
on_dns(void *arg, enum dns_verdict v)
{
	struct mail_pending *p = arg;
	struct session *s = p->s;

	if (s == NULL || s->state == SESSION_CLOSING) {
		free(p);
		return;
	}
	s->mail_pending = NULL;
	s->state = SESSION_CMD;
	switch (v) {
	case DNS_OK:
		mail_accept(s, &p->from, &p->params);
		break;
	case DNS_NO_DOMAIN:
		session_reply(s, REPLY_SENDER_DOMAIN_UNKNOWN, p->from.domain);
		break;
	default:
		log_msg(LOG_ERR, "ev=local_error sid=%s part=dns domain=%s",
			s->sid, log_q(p->from.domain));
		session_reply(s, REPLY_DNS_TEMPFAIL, p->from.domain);
		break;
	}
	free(p);
	session_resume(s);
}

/* check_sender_domain: looks the sender's domain up before the 250. */
static void
dns_start(struct session *s, const struct addr *from,
	  const struct mail_params *params)
{
	struct mail_pending *p = malloc(sizeof *p);

	if (p == NULL) {
		session_reply(s, REPLY_NO_MEMORY);
		return;
	}
	p->s = s;
	p->from = *from;
	p->params = *params;
	s->mail_pending = p;
	s->state = SESSION_POLICY;
	dns_check_domain(s->srv->dns, from->domain, on_dns, p);
}

void
session_mail_cancel(struct session *s)
{
	if (s->mail_pending != NULL)
		s->mail_pending->s = NULL;
	s->mail_pending = NULL;
}

void
cmd_mail(struct session *s, const struct cmd *c)
{
	const struct config *cfg = s->srv->cfg;
	struct mail_params p;
	struct addr from;
	size_t used = 0;
	unsigned flags;
	enum addr_result ar;

	/* [server] strict_envelopes: brackets and 64-octet local parts. */
	flags = ADDR_ALLOW_NULL | ADDR_ALLOW_UTF8 |
		addr_envelope_flags(cfg->server_strict_envelopes);
	ar = addr_parse_path(c->arg, c->arg_len, flags, &from, &used);
	if (ar != ADDR_OK || (used < c->arg_len && c->arg[used] != ' ')) {
		char shown[SMTP_PATH_MAX + 1];
		str_copy(shown, sizeof shown, c->arg,
			 c->arg_len < SMTP_PATH_MAX ? c->arg_len : SMTP_PATH_MAX);
		session_reply(s, addr_reply(ar), shown);
		return;
	}
	mail_params_parse(s, c->arg + used, c->arg_len - used, &p);
	if (p.error != REPLY_COUNT) {
		session_reply(s, p.error, p.bad);
		return;
	}
	if (s->is_auth && !sender_owned(s, &from)) {
		session_reply(s, REPLY_SENDER_NOT_OWNED, from.mailbox);
		return;
	}
	if (from.is_utf8 && !p.is_utf8) {
		session_reply(s, REPLY_NEEDS_SMTPUTF8);
		return;
	}
	if (p.has_size && p.size > cfg->server_max_message_size) {
		session_reply(s, REPLY_SIZE_TOO_BIG);
		return;
	}
	if (!space_ok(s, p.has_size ? p.size : 0)) {
		session_reply(s, REPLY_NO_SPACE);
		return;
	}
	if ((p.ret != MSG_RET_NONE || p.has_envid) && !session_dsn_space_ok(s)) {
		session_reply(s, REPLY_DSN_NO_ROOM);
		return;
	}
	if (s->srv->dns != NULL && s->srv->cfg->dns_check_sender_domain &&
	    !from.is_null && !from.is_literal) {
		dns_start(s, &from, &p);
		return;
	}
	mail_accept(s, &from, &p);
}
