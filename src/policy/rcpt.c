/*
 * rcpt.c - recipient policy: local users, subaddresses, forwards (251/551)
 * and the relay rule.
 *
 * Called by server/session_cmd_rcpt.c for each RCPT.  Promises: no open
 * relay in any address form - a non-local domain or an address literal
 * without authentication is 550 5.7.1, and a local part carrying "%", "!"
 * or "@" (old routing forms, RFC 5321 3.6 and Appendix C) is refused
 * rather than interpreted.  Source routes were already dropped by the
 * parser (RFC 5321 Appendix C), so only the final mailbox counts.
 * "Postmaster" alone means postmaster at the first local domain (4.5.1).
 * A quoted local part means its value: <"alice"@dom> is alice; a value
 * holding "@", "%" or "!" is refused like the unquoted forms.
 */
#include <string.h>
#include <time.h>

#include "auth/srs.h"
#include "policy/rcpt.h"
#include "util/str.h"

/* Sets out's mailbox from its parts, lowered when is_local. */
static void
set_mailbox(struct rcpt_verdict *out, const char *local, size_t local_len,
	    const char *domain, bool is_local)
{
	str_copy(out->local, sizeof out->local, local, local_len);
	str_set(out->domain, sizeof out->domain, domain);
	if (is_local) {
		str_lower(out->local);
		str_lower(out->domain);
	}
	snprintf(out->mailbox, sizeof out->mailbox, "%s@%s", out->local,
		 out->domain);
}

static enum reply_id
verdict(struct rcpt_verdict *out, enum reply_id reply, enum rcpt_route route)
{
	out->reply = reply;
	out->route = route;
	return reply;
}

/*
 * RFC 5321 4.5.1: every domain we deliver for has a postmaster, listed
 * in the users file or not; unlisted, it gets its own mailbox.
 */
static bool
is_postmaster(const struct rcpt_verdict *v)
{
	return strcmp(v->local, "postmaster") == 0;
}

/* A local user: accepted, or 450 4.2.1 while on hold. */
static enum reply_id
local_ok(const struct users *users, struct rcpt_verdict *out)
{
	if (users_is_held(users, out->mailbox))
		return verdict(out, REPLY_USER_HELD, RCPT_ROUTE_NONE);
	return verdict(out, REPLY_RCPT_OK, RCPT_ROUTE_LOCAL);
}

/* Looks the forwards table up for the mailbox as given and as the user. */
static enum reply_id
check_forward(const struct config *cfg, const struct users *users,
	      const char *given, struct rcpt_verdict *out)
{
	const struct users_forward *f = users_forward(users, given);
	struct addr to;

	if (f == NULL)
		f = users_forward(users, out->mailbox);
	if (f == NULL)
		return REPLY_COUNT;
	if (!f->is_forward) {
		str_set(out->mailbox, sizeof out->mailbox, f->to);
		return verdict(out, REPLY_USER_MOVED, RCPT_ROUTE_NONE);
	}
	if (addr_parse_mailbox(f->to, strlen(f->to), ADDR_ALLOW_UTF8, &to) !=
	    ADDR_OK)
		return verdict(out, REPLY_USER_UNKNOWN, RCPT_ROUTE_NONE);
	set_mailbox(out, to.local, strlen(to.local), to.domain,
		    config_is_local_domain(cfg, to.domain));
	if (!config_is_local_domain(cfg, to.domain))
		return verdict(out, REPLY_WILL_FORWARD, RCPT_ROUTE_REMOTE);
	if (!users_has(users, out->mailbox))
		return verdict(out, REPLY_USER_UNKNOWN, RCPT_ROUTE_NONE);
	if (users_is_held(users, out->mailbox))
		return verdict(out, REPLY_USER_HELD, RCPT_ROUTE_NONE);
	return verdict(out, REPLY_WILL_FORWARD, RCPT_ROUTE_LOCAL);
}

/*
 * The local part's value: a quoted string without its quotes and
 * backslashes ("alice" is alice, RFC 5321 4.1.2 and RFC 5322 3.2.4).
 */
static void
unquote(const char *local, char *out, size_t size)
{
	size_t n = strlen(local), o = 0;

	if (n < 2 || local[0] != '"' || local[n - 1] != '"') {
		str_set(out, size, local);
		return;
	}
	for (size_t i = 1; i + 1 < n && o + 1 < size; i++) {
		if (local[i] == '\\' && i + 2 < n)
			i++;
		out[o++] = local[i];
	}
	out[o] = '\0';
}

/*
 * A bounce to an address we rewrote (SRS0=HASH=TT=domain=local@ours):
 * back to the original sender when the hash and the time stamp verify,
 * 550 5.1.1 when they do not; REPLY_COUNT when local is no SRS address.
 * The original is then checked as any recipient would be (a local one
 * goes to its mailbox; a remote one is sent on: the hash is what allows
 * this relay, and only we can make it).
 */
static enum reply_id
check_srs(const struct config *cfg, const struct users *users,
	  const char *local, struct rcpt_verdict *out)
{
	char orig[SMTP_PATH_MAX + 1];
	struct addr a;
	enum srs_status st = srs_reverse(cfg->srs_secret, local,
					 (int64_t)time(NULL),
					 (unsigned)cfg->srs_max_age, orig,
					 sizeof orig);

	if (st == SRS_NOT_SRS)
		return REPLY_COUNT;
	if (st != SRS_OK ||
	    addr_parse_mailbox(orig, strlen(orig),
			       ADDR_ALLOW_UTF8 | addr_envelope_flags(false),
			       &a) != ADDR_OK)
		return verdict(out, REPLY_SRS_INVALID, RCPT_ROUTE_NONE);
	if (a.is_literal || !config_is_local_domain(cfg, a.domain)) {
		str_set(out->mailbox, sizeof out->mailbox, a.mailbox);
		str_set(out->domain, sizeof out->domain, a.domain);
		return verdict(out, REPLY_RCPT_OK, RCPT_ROUTE_REMOTE);
	}
	return policy_rcpt_check(cfg, users, &a, false, out);
}

enum reply_id
policy_rcpt_check(const struct config *cfg, const struct users *users,
		  const struct addr *rcpt, bool is_authenticated,
		  struct rcpt_verdict *out)
{
	const char *delim = cfg->local_recipient_delimiter;
	const char *local, *domain = rcpt->domain;
	char value[SMTP_LOCAL_MAX + 1];
	enum reply_id fwd;
	size_t local_len;

	memset(out, 0, sizeof *out);
	unquote(rcpt->local, value, sizeof value);
	local = value;
	str_set(out->mailbox, sizeof out->mailbox, rcpt->mailbox);
	if (rcpt->is_postmaster) {
		local = "postmaster";
		domain = cfg->domains[0];
	}
	if (rcpt->is_literal || !config_is_local_domain(cfg, domain)) {
		if (!is_authenticated)
			return verdict(out, REPLY_RELAY_DENIED,
				       RCPT_ROUTE_NONE);
		return verdict(out, REPLY_RCPT_OK, RCPT_ROUTE_REMOTE);
	}
	if (cfg->srs_secret[0] != '\0') {
		enum reply_id srs = check_srs(cfg, users, local, out);
		if (srs != REPLY_COUNT)
			return srs;
	}
	if (strpbrk(local, "%!@") != NULL)
		return verdict(out, REPLY_ROUTING_DENIED, RCPT_ROUTE_NONE);
	set_mailbox(out, local, strlen(local), domain, true);
	fwd = check_forward(cfg, users, out->mailbox, out);
	if (fwd != REPLY_COUNT)
		return fwd;
	if (users_has(users, out->mailbox) || is_postmaster(out))
		return local_ok(users, out);
	/* alice+tag@ is alice@ (subaddressing). */
	local_len = delim[0] ? strcspn(out->local, delim) : strlen(out->local);
	if (local_len > 0 && local_len < strlen(out->local)) {
		char given[sizeof out->mailbox], user[sizeof out->local];
		char dom[sizeof out->domain];
		str_set(given, sizeof given, out->mailbox);
		str_copy(user, sizeof user, out->local, local_len);
		str_set(dom, sizeof dom, out->domain);
		set_mailbox(out, user, local_len, dom, true);
		fwd = check_forward(cfg, users, out->mailbox, out);
		if (fwd != REPLY_COUNT)
			return fwd;
		if (users_has(users, out->mailbox))
			return local_ok(users, out);
		str_set(out->mailbox, sizeof out->mailbox, given);
	}
	str_set(out->mailbox, sizeof out->mailbox, rcpt->mailbox);
	return verdict(out, REPLY_USER_UNKNOWN, RCPT_ROUTE_NONE);
}
