/*
 * client.c - one outgoing SMTP or LMTP connection: it sends the jobs of
 * one destination, one transaction each, until none is left or
 * [delivery] max_messages_per_connection is reached.  The dispatcher
 * starts it (client_start) with a first job.
 *
 * This half is the connection: resolve (MX or host, through the server's
 * hooks) -> connect to each address in turn -> greeting -> EHLO (HELO
 * after a 5xx; LHLO for LMTP, RFC 2033) -> STARTTLS when offered (and
 * [delivery] tls allows; EHLO again over TLS), reading and parsing every
 * reply, and the end.  The transactions are client_txn.c's; a reply it
 * cannot live with makes it return false and the connection ends here.
 *
 * A connect failure, a timeout, a 421 or 4xx/5xx greeting or EHLO before
 * any transaction moves on to the next address with the same job.  So
 * does a 421 in a transaction (REPLY-CODES.md: the next MX host at once):
 * the recipients it left undecided go on in a job of their own, the
 * rest of the job is finished (jobs_split_next_host).  After the last
 * address the recipients are deferred and counted like any 4xx (one
 * attempt for the whole pass), and the destination rests
 * (schedule_suspend_secs) so its other jobs share that outcome.  Losing
 * the connection in a transaction defers what is undecided.  Outcomes
 * leave through finish_job() only.  Timeouts are RFC 5321 4.5.3.2's,
 * from [delivery].
 *
 * A TLS connection ends with close_notify (tls_close_notify): after
 * QUIT's reply it is sent, the write side shut, and the peer's end
 * awaited for up to TLS_CLOSE_SECONDS (CP_CLOSE); ended any other way,
 * the alert is sent if it can be, without waiting.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/bufferevent_ssl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "outbound/client_int.h"
#include "tls/tls.h"
#include "util/log.h"
#include "util/str.h"

#define CLIENT_LINE_MAX 4096 /* a reply line longer than this: error */
#define CLIENT_AUTH_MAX 1030 /* user + password + 2 NULs, RFC 4954's 12K
			      * is far more than any password needs */

static const char *const phase_names[] = {
    "MTA-STS policy", "resolving", "TLSA lookup", "connecting",  "greeting",      "EHLO",
    "HELO",	      "STARTTLS",    "TLS handshake", "AUTH",
    "AUTH",	      "AUTH",	     "RSET",	      "MAIL/RCPT/DATA",
    "end of data",    "end of data", "QUIT",	      "closing",
};

static void conn_end(struct conn *c);
static bool try_target(struct conn *c);
static bool connect_target(struct conn *c);
static bool wants_tlsa(const struct conn *c, const struct outbound_target *t);
static uint16_t target_port(const struct outbound_target *t);
static void on_tlsa(void *arg, enum outbound_tlsa_status st,
		    const struct outbound_tlsa *r, size_t n);
static bool auth_fail_local(struct conn *c);
static bool auth_reply(struct conn *c, const char *line);

static void report_tls(struct conn *c, const char *result,
		       const char *reason);

/* An address as text, "" when it is none. */
static void
addr_text(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	buf[0] = '\0';
	if (ss == NULL)
		return;
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
			  buf, (socklen_t)size);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)ss)->sin6_addr, buf,
			  (socklen_t)size);
}

/* The TLSA records as RFC 8460's policy-string lines. */
static void
tlsa_text(const struct conn *c, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < c->n_tlsa && o + 16 < size; i++) {
		const struct outbound_tlsa *r = &c->tlsa[i];
		o += (size_t)snprintf(buf + o, size - o, "%s%u %u %u ",
				      i ? "\n" : "", r->usage, r->selector,
				      r->mtype);
		for (size_t k = 0; k < r->len && o + 3 < size; k++) {
			buf[o++] = hex[r->data[k] >> 4];
			buf[o++] = hex[r->data[k] & 15];
		}
		buf[o < size ? o : size - 1] = '\0';
	}
}

/* The MTA-STS policy as RFC 8460's policy-string lines. */
static void
sts_text(const struct sts_policy *p, char *buf, size_t size)
{
	char tmp[STS_MX_MAX * 260 + 128];
	const char *lines[STS_MX_MAX + 4];
	size_t n = sts_policy_strings(p, tmp, sizeof tmp, lines,
				      sizeof lines / sizeof *lines);
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? "\n" : "",
				      lines[i]);
}

/* A name that is an address literal: no SNI (RFC 6066 3). */
static bool
is_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

static void
conn_close_bev(struct conn *c)
{
	if (c->bev != NULL) {
		/* Whatever ended it, the peer learns it was not cut off (a
		 * no-op once sent, or without TLS). */
		(void)tls_close_notify(c->bev);
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
}

/*
 * No address of the destination served: for retry[0] seconds (at most a
 * minute) its other due jobs get the same deferral without a connection
 * of their own, so a dead peer costs one attempt, not one per message.
 */
static void
dest_suspend(struct conn *c)
{
	struct dest *d = c->dest;

	if (d->dead == NULL && (d->dead = malloc(sizeof *d->dead)) == NULL)
		return;
	*d->dead = c->fail;
	d->dead_until = ob_now() + schedule_suspend_secs(c->ob->cfg);
}

/* The connection is over; an undecided job gets the last failure. */
static void
conn_end(struct conn *c)
{
	struct outbound *ob = c->ob;

	if (c->job != NULL && !c->was_served && c->fail.kind == OC_DEFER &&
	    !ob->is_stopping)
		dest_suspend(c);
	if (c->job != NULL) {
		if (c->fail.kind == OC_NONE)
			react_local(&c->fail, OC_DEFER, "4.4.2",
				    "connection with %s ended while %s",
				    c->peer[0] ? c->peer : c->dest->host,
				    phase_names[c->ph]);
		client_job_settle(c, &c->fail);
		client_job_done(c);
	}
	if (c->resolving != NULL)
		ob->hooks.resolve_cancel(ob->hooks.arg, c->resolving);
	if (c->tlsa_req != NULL)
		ob->hooks.tlsa_cancel(ob->hooks.arg, c->tlsa_req);
	if (c->sts_req != NULL)
		ob->hooks.sts_cancel(ob->hooks.arg, c->sts_req);
	free(c->tlsa);
	free(c->sts);
	conn_close_bev(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		ob->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ob->n_conns--;
	c->dest->n_conns--;
	free(c->targets);
	free(c);
	ob_wake(ob);
}

/* This address did not serve before a transaction: try the next.
 * Returns false when c is gone. */
static bool
next_target(struct conn *c)
{
	conn_close_bev(c);
	c->ti++;
	return try_target(c);
}

/*
 * A transaction ended the connection.  When a 421 did, what it left
 * undecided goes on to the next address at once, in a job of its own
 * (REPLY-CODES.md), and the rest of the job is finished now; after the
 * last address that job is deferred as if no address had served it.
 * Returns false: c is gone or on its next address.
 */
static bool
txn_closed(struct conn *c)
{
	struct job *j = c->job, *rest;
	const struct outcome *oc = NULL;

	for (size_t k = 0; j != NULL && k < j->n && oc == NULL; k++)
		if (j->out[k].is_next_host)
			oc = &j->out[k];
	if (oc == NULL) {
		conn_end(c);
		return false;
	}
	c->fail = *oc;
	c->was_served = false; /* a 421 served nobody */
	if (c->ti + 1 >= c->n_targets ||
	    (rest = jobs_split_next_host(j)) == NULL) {
		conn_end(c);
		return false;
	}
	log_msg(LOG_INFO, "ev=next_address qid=%s peer=%s rcpts=%zu reply=%s",
		j->q->m->qid_str, log_q(c->peer), rest->n,
		log_q(c->fail.reply));
	client_job_done(c);
	c->job = rest;
	next_target(c);
	return false;
}

static bool auth_start(struct conn *c);

static bool
after_ehlo(struct conn *c)
{
	const struct config *cfg = c->ob->cfg;

	if (!c->is_tls && !c->is_lmtp && (c->caps.ext & EHLO_STARTTLS) &&
	    c->ob->tls_client != NULL && c->tls_need != CONFIG_TLS_OFF) {
		client_send_line(c, "STARTTLS");
		c->ph = CP_STARTTLS;
		return true;
	}
	if (c->tls_need >= CONFIG_TLS_REQUIRED && !c->is_tls &&
	    c->job != NULL && (c->job->q->m->flags & MSG_F_TLS_OPTIONAL) &&
	    !(c->dest->is_smarthost && cfg->relay_password != NULL)) {
		/* RFC 8689 5: TLS-Required: No; never with our password. */
		log_msg(LOG_INFO, "ev=tls_policy_waived qid=%s peer=%s "
			"reason=no_starttls", c->job->q->m->qid_str,
			log_q(c->peer));
		c->is_policy_waived = true;
	} else if (c->tls_need >= CONFIG_TLS_REQUIRED && !c->is_tls) {
		report_tls(c, "starttls-not-supported",
			   "the MX host did not offer STARTTLS");
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "TLS is required for %s and %s did not offer "
			    "STARTTLS; nothing is sent in clear text",
			    c->dest->key, c->peer);
		return next_target(c);
	}
	if (c->dest->is_smarthost && cfg->relay_password != NULL &&
	    !c->is_authed)
		return auth_start(c);
	client_txn_start(c);
	return true;
}

static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_read(struct bufferevent *bev, void *arg);

/*
 * RFC 7672 through OpenSSL's DANE: the MX host name is the reference
 * identifier for DANE-TA(2); DANE-EE(3) matches the key alone, whatever
 * names or dates the certificate carries (3.1.1).
 */
static bool
dane_add(struct conn *c, SSL *ssl)
{
	size_t added = 0;

	if (SSL_dane_enable(ssl, c->tls_name) <= 0)
		return false;
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (size_t i = 0; i < c->n_tlsa; i++) {
		const struct outbound_tlsa *r = &c->tlsa[i];
		if (SSL_dane_tlsa_add(ssl, r->usage, r->selector, r->mtype,
				      r->data, r->len) > 0)
			added++;
	}
	return added > 0;
}

static bool
start_tls(struct conn *c)
{
	SSL *ssl = SSL_new(c->ob->tls_client);
	struct bufferevent *b;

	if (ssl == NULL) {
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "cannot start TLS with %s", c->peer);
		return next_target(c);
	}
	if (c->tls_name[0] != '\0' && !is_ip_literal(c->tls_name))
		SSL_set_tlsext_host_name(ssl, c->tls_name);
	/* The name the certificate must carry, or the DANE records it
	 * must match: checked into the verify result, read once the
	 * handshake is done (tls_done). */
	if (c->n_tlsa > 0 && !dane_add(c, ssl)) {
		SSL_free(ssl);
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "cannot use the TLSA records of %s", c->tls_name);
		return next_target(c);
	}
	if (c->n_tlsa == 0 &&
	    (c->tls_need == CONFIG_TLS_VERIFY || c->is_sts_testing) &&
	    SSL_set1_host(ssl, c->tls_name) != 1) {
		SSL_free(ssl);
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "cannot set the name %s to verify", c->tls_name);
		return next_target(c);
	}
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	b = bufferevent_openssl_filter_new(c->ob->base, c->bev, ssl,
					   BUFFEREVENT_SSL_CONNECTING,
					   BEV_OPT_CLOSE_ON_FREE);
	if (b == NULL) {
		SSL_free(ssl);
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "cannot start TLS with %s", c->peer);
		return next_target(c);
	}
	c->bev = b;
	c->ph = CP_TLS;
	bufferevent_setcb(b, on_read, NULL, on_event, c);
	client_set_timeouts(c, c->ob->cfg->delivery_command_timeout,
			    c->ob->cfg->delivery_command_timeout);
	bufferevent_enable(b, EV_READ | EV_WRITE);
	return true;
}

/* base64 of in[0..len) as a command line's argument into out. */
static bool
b64(const unsigned char *in, size_t len, char *out, size_t size)
{
	if (size < 4 * ((len + 2) / 3) + 1 || len > INT_MAX)
		return false;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return true;
}

/*
 * RFC 4954 as a client, to the relayhost only and only over TLS
 * (dest_tls_set made TLS required): PLAIN with its initial response
 * when offered, else LOGIN.  The password never reaches a log.
 */
static bool
auth_start(struct conn *c)
{
	const struct config *cfg = c->ob->cfg;
	const char *user = cfg->delivery_relay_user;
	const char *pass = cfg->relay_password;
	unsigned char raw[CLIENT_AUTH_MAX];
	char enc[CLIENT_AUTH_MAX * 2];
	size_t ul = strlen(user), pl = strlen(pass);

	if (!(c->caps.ext & (EHLO_AUTH_PLAIN | EHLO_AUTH_LOGIN))) {
		react_local(&c->fail, OC_DEFER, "4.7.0",
			    "the relayhost %s offers no AUTH PLAIN or LOGIN "
			    "after TLS, and [delivery] relay_user is set: "
			    "postern does not send without logging in (is it "
			    "the submission port, 587 or smtps:465?)",
			    c->peer);
		return next_target(c);
	}
	if (c->caps.ext & EHLO_AUTH_PLAIN) {
		/* authzid (empty) NUL authcid NUL passwd */
		if (ul + pl + 2 > sizeof raw)
			return auth_fail_local(c);
		raw[0] = '\0';
		memcpy(raw + 1, user, ul);
		raw[1 + ul] = '\0';
		memcpy(raw + 2 + ul, pass, pl);
		if (!b64(raw, ul + pl + 2, enc, sizeof enc)) {
			OPENSSL_cleanse(raw, sizeof raw);
			return auth_fail_local(c);
		}
		client_send_line(c, "AUTH PLAIN %s", enc);
		OPENSSL_cleanse(raw, sizeof raw);
		OPENSSL_cleanse(enc, sizeof enc);
	} else {
		client_send_line(c, "AUTH LOGIN");
	}
	c->ph = CP_AUTH;
	return true;
}

/* A name or password too long to encode: our configuration. */
static bool
auth_fail_local(struct conn *c)
{
	react_local(&c->fail, OC_DEFER, "4.7.0",
		    "[delivery] relay_user or the password is too long to "
		    "send to %s",
		    c->peer);
	return next_target(c);
}

/* LOGIN's 334 challenges get the user name, then the password. */
static bool
auth_login_send(struct conn *c, const char *what)
{
	char enc[CLIENT_AUTH_MAX * 2];

	if (!b64((const unsigned char *)what, strlen(what), enc, sizeof enc))
		return auth_fail_local(c);
	client_send_line(c, "%s", enc);
	OPENSSL_cleanse(enc, sizeof enc);
	c->ph = c->ph == CP_AUTH ? CP_AUTH_USER : CP_AUTH_PASS;
	return true;
}

/*
 * The relayhost's answer to our login.  Any refusal is our configuration
 * (a wrong user or password), not the recipient's: the mail is deferred,
 * never bounced, and the reason says what to fix.
 */
static bool
auth_reply(struct conn *c, const char *line)
{
	const struct config *cfg = c->ob->cfg;
	unsigned code = c->rep.code;

	if (code == 235) {
		c->is_authed = true;
		log_msg(LOG_INFO, "ev=relay_auth peer=%s user=%s",
			log_q(c->peer), log_q(cfg->delivery_relay_user));
		client_txn_start(c);
		return true;
	}
	if (code == 334 && c->ph == CP_AUTH && !(c->caps.ext & EHLO_AUTH_PLAIN))
		return auth_login_send(c, cfg->delivery_relay_user);
	if (code == 334 && c->ph == CP_AUTH_USER)
		return auth_login_send(c, cfg->relay_password);
	react_reply(c->ob, REACT_HELO, code, c->rep.enh, line, c->rep.text,
		    &c->fail);
	c->fail.kind = OC_DEFER;
	c->fail.is_next_host = false;
	if (code / 100 == 5 || code == 334) {
		char why[OB_REPLY_MAX + 256];
		snprintf(why, sizeof why, "%s (the relayhost refused the login "
			 "of [delivery] relay_user %s: check relay_user and "
			 "relay_password_file)", line, cfg->delivery_relay_user);
		str_set(c->fail.reply, sizeof c->fail.reply, why);
	}
	log_msg(LOG_WARN, "ev=relay_auth_failed peer=%s user=%s reply=%s",
		log_q(c->peer), log_q(cfg->delivery_relay_user), log_q(line));
	return next_target(c);
}

/* RFC 8460 4.3's result-type for a certificate that did not verify. */
static const char *
tls_result_type(const SSL *ssl, bool is_dane)
{
	switch (SSL_get_verify_result(ssl)) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
		return "certificate-host-mismatch";
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "certificate-expired";
	case X509_V_ERR_DANE_NO_MATCH:
		return "validation-failure";
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		return is_dane ? "validation-failure"
			       : "certificate-not-trusted";
	default:
		return "validation-failure";
	}
}

/*
 * One session's TLS outcome for the domain's TLS report (RFC 8460):
 * only for mail to a domain through its MX records, where a report can
 * go.  result NULL: success.
 */
static void
report_tls(struct conn *c, const char *result, const char *reason)
{
	struct outbound *ob = c->ob;
	struct outbound_tls_result r = {0};
	char pol[OUTBOUND_TLSA_MAX * (OUTBOUND_TLSA_DATA_MAX * 2 + 16) + 1];
	char rip[INET6_ADDRSTRLEN] = "", sip[INET6_ADDRSTRLEN] = "";
	const struct outbound_target *t;

	if (ob->hooks.tls_result == NULL || c->dest->kind != DEST_MX ||
	    c->ti >= c->n_targets)
		return;
	t = &c->targets[c->ti];
	addr_text(&t->ss, rip, sizeof rip);
	if (c->bev != NULL && bufferevent_getfd(c->bev) >= 0) {
		struct sockaddr_storage ss = {0};
		socklen_t len = sizeof ss;
		if (getsockname(bufferevent_getfd(c->bev),
				(struct sockaddr *)&ss, &len) == 0)
			addr_text(&ss, sip, sizeof sip);
	}
	pol[0] = '\0';
	if (c->n_tlsa > 0 || c->is_tlsa_unusable) {
		r.policy_type = "tlsa";
		tlsa_text(c, pol, sizeof pol);
	} else if (c->sts != NULL) {
		r.policy_type = "sts";
		sts_text(c->sts, pol, sizeof pol);
	} else {
		r.policy_type = "no-policy-found";
	}
	r.domain = c->dest->host;
	r.mx_host = t->host;
	r.receiving_ip = rip;
	r.sending_ip = sip;
	r.policy_strings = pol;
	r.result = result;
	r.reason = reason ? reason : "";
	ob->hooks.tls_result(ob->hooks.arg, &r);
}

/*
 * The handshake is done.  Where this address's policy asks for
 * verification, a certificate that does not verify ends the connection
 * before a word is sent over it: deferred with 4.7.5 and the reason,
 * never retried in clear text (REPLY-CODES.md).
 */
static bool
tls_done(struct conn *c)
{
	const struct config *cfg = c->ob->cfg;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	bool is_checked = ssl != NULL && (c->tls_need == CONFIG_TLS_VERIFY ||
					  c->is_sts_testing);
	char why[256];
	const char *bad = is_checked ? tls_verify_result(ssl, why, sizeof why)
				     : NULL;

	c->is_tls = true;
	report_tls(c, bad ? tls_result_type(ssl, c->n_tlsa > 0) : NULL,
		   bad ? bad : "");
	if (bad != NULL && c->tls_need != CONFIG_TLS_VERIFY) {
		/* MTA-STS testing: reported, not enforced (RFC 8461 5). */
		log_msg(LOG_INFO, "ev=tls_verify_failed peer=%s name=%s "
			"reason=%s enforced=no", log_q(c->peer),
			log_q(c->tls_name), log_q(bad));
		bad = NULL;
	} else if (bad != NULL && c->job != NULL &&
		   (c->job->q->m->flags & MSG_F_TLS_OPTIONAL)) {
		/* RFC 8689 5: the sender asked that TLS policy failures not
		 * stop this message; it alone goes over this connection. */
		log_msg(LOG_INFO, "ev=tls_policy_waived qid=%s peer=%s "
			"reason=%s", c->job->q->m->qid_str, log_q(c->peer),
			log_q(bad));
		c->is_policy_waived = true;
		bad = NULL;
	} else if (bad != NULL) {
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "the TLS certificate of %s did not verify for "
			    "%s%s: %s; not sent",
			    c->peer, c->tls_name,
			    c->n_tlsa > 0 ? " against its DANE TLSA records"
			    : c->sts != NULL ? " (MTA-STS policy enforce)"
					     : "",
			    bad);
		log_msg(LOG_WARN, "ev=tls_verify_failed peer=%s name=%s "
			"reason=%s", log_q(c->peer), log_q(c->tls_name),
			log_q(bad));
		return next_target(c);
	}
	c->is_verified = c->tls_need == CONFIG_TLS_VERIFY && ssl != NULL &&
			 !c->is_policy_waived;
	memset(&c->caps, 0, sizeof c->caps);
	reply_acc_init(&c->acc);
	if (c->dest->is_implicit_tls) {
		c->ph = CP_GREETING; /* the 220 comes over TLS */
		return true;
	}
	client_send_line(c, "EHLO %s", cfg->server_hostname);
	c->ph = CP_EHLO;
	return true;
}

/* A reply before any transaction: greeting, EHLO/HELO, STARTTLS.
 * Returns false when c is gone. */
static bool
handshake_reply(struct conn *c, const char *line)
{
	unsigned code = c->rep.code;

	switch (c->ph) {
	case CP_GREETING:
	case CP_EHLO:
	case CP_HELO:
		if (code / 100 == 2) {
			if (c->ph == CP_GREETING) {
				memset(&c->caps, 0, sizeof c->caps);
				client_send_line(c, "%s %s",
						 c->is_lmtp ? "LHLO" : "EHLO",
						 c->ob->cfg->server_hostname);
				c->ph = CP_EHLO;
				return true;
			}
			return after_ehlo(c);
		}
		if (c->ph == CP_EHLO && code / 100 == 5 && !c->is_lmtp) {
			memset(&c->caps, 0, sizeof c->caps);
			client_send_line(c, "HELO %s",
					 c->ob->cfg->server_hostname);
			c->ph = CP_HELO;
			return true;
		}
		react_reply(c->ob,
			    c->ph == CP_GREETING ? REACT_GREETING : REACT_HELO,
			    code, c->rep.enh, line, c->rep.text, &c->fail);
		return next_target(c);
	case CP_AUTH:
	case CP_AUTH_USER:
	case CP_AUTH_PASS:
		return auth_reply(c, line);
	case CP_STARTTLS:
		if (code == 220)
			return start_tls(c);
		if (c->tls_need >= CONFIG_TLS_REQUIRED || code == 421) {
			react_reply(c->ob, REACT_HELO, code, c->rep.enh, line,
				    c->rep.text, &c->fail);
			c->fail.kind = OC_DEFER;
			return next_target(c);
		}
		client_txn_start(c);
		return true;
	default:
		conn_end(c);
		return false;
	}
}

/*
 * QUIT is answered.  Over TLS: close_notify, FIN after it, and the peer's
 * end (on_event) within TLS_CLOSE_SECONDS, so the session does not look
 * truncated to it and our close meets no unread data.
 */
static void
conn_quit_done(struct conn *c)
{
	struct timeval tv = {TLS_CLOSE_SECONDS, 0};
	enum tls_close r = c->is_tls ? tls_close_notify(c->bev)
				     : TLS_CLOSE_NONE;

	if (r == TLS_CLOSE_NONE) {
		conn_end(c);
		return;
	}
	/* Pending: the socket bufferevent sends the rest meanwhile. */
	if (r == TLS_CLOSE_SENT)
		(void)shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	c->ph = CP_CLOSE;
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ);
}

/* A complete reply arrived.  Returns false when c is gone. */
static bool
on_reply(struct conn *c)
{
	char line[OB_REPLY_MAX];

	reply_acc_format(&c->rep, line, sizeof line);
	log_msg(LOG_DEBUG, "ev=client_reply peer=%s phase=%s reply=%s",
		log_q(c->peer), phase_names[c->ph], log_q(line));
	switch (c->ph) {
	case CP_RSET:
	case CP_TXN:
	case CP_DOT:
	case CP_DOT_EMPTY:
		if (client_txn_reply(c, line))
			return true;
		return txn_closed(c);
	case CP_QUIT:
		conn_quit_done(c);
		return false;
	default:
		return handshake_reply(c, line);
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->ph == CP_CLOSE) {
		/* Nothing the peer says now matters. */
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	for (;;) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		enum reply_parse_result r;

		if (line == NULL) {
			if (evbuffer_get_length(in) > CLIENT_LINE_MAX) {
				react_local(&c->fail, OC_DEFER, "4.5.0",
					    "%s sent a line longer than %d "
					    "octets",
					    c->peer, CLIENT_LINE_MAX);
				conn_end(c);
			}
			return;
		}
		if (c->ph == CP_EHLO)
			reply_ehlo_line(&c->caps, line, len,
					c->acc.n_lines == 0);
		r = reply_acc_line(&c->acc, line, len);
		free(line);
		if (r == REPLY_PARSE_MORE)
			continue;
		if (r != REPLY_PARSE_OK) {
			react_local(&c->fail, OC_DEFER, "4.5.0",
				    "%s sent a malformed reply", c->peer);
			conn_end(c);
			return;
		}
		{
			/* Handlers may free c (conn_end) or replace its
			 * buffer (TLS, next address): stop reading then. */
			struct bufferevent *was = c->bev;
			c->rep = c->acc;
			reply_acc_init(&c->acc);
			if (!on_reply(c) || c->bev != was)
				return;
		}
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	bool is_before_txn = !c->has_txn;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		const struct config *cfg = c->ob->cfg;
		client_set_timeouts(c, cfg->delivery_command_timeout,
				    cfg->delivery_command_timeout);
		reply_acc_init(&c->acc);
		if (c->ph == CP_TLS) {
			(void)tls_done(c);
			return;
		}
		if (c->dest->is_implicit_tls) {
			(void)start_tls(c);
			return;
		}
		c->ph = CP_GREETING;
		return;
	}
	if (c->ph == CP_QUIT || c->ph == CP_CLOSE) {
		conn_end(c);
		return;
	}
	if (c->ph == CP_TLS && !(what & BEV_EVENT_TIMEOUT)) {
		unsigned long e = bufferevent_get_openssl_error(c->bev);
		char buf[256] = "the peer closed the connection";
		if (e != 0)
			ERR_error_string_n(e, buf, sizeof buf);
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "TLS handshake with %s failed: %s", c->peer, buf);
	} else if (c->ph == CP_CONNECT)
		react_local(
		    &c->fail, OC_DEFER, "4.4.1", "connect to %s failed: %s",
		    c->peer,
		    (what & BEV_EVENT_TIMEOUT)
			? "timed out"
			: evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	else
		react_local(&c->fail, OC_DEFER, "4.4.2", "%s with %s while %s",
			    (what & BEV_EVENT_TIMEOUT) ? "timeout"
						       : "lost connection",
			    c->peer, phase_names[c->ph]);
	if (is_before_txn && c->ph != CP_QUIT) {
		next_target(c);
		return;
	}
	conn_end(c);
}

static void
peer_name(struct conn *c, const struct outbound_target *t)
{
	char addr[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (t->ss.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)&t->ss;
		inet_ntop(AF_INET, &s->sin_addr, addr, sizeof addr);
		port = ntohs(s->sin_port);
	} else if (t->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)&t->ss;
		inet_ntop(AF_INET6, &s->sin6_addr, addr, sizeof addr);
		port = ntohs(s->sin6_port);
	} else {
		snprintf(c->peer, sizeof c->peer, "%s", t->host);
		return;
	}
	snprintf(c->peer, sizeof c->peer, "%s[%s]:%u", t->host, addr, port);
}

static bool
try_target(struct conn *c)
{
	const struct outbound_target *t;

	if (c->ti >= c->n_targets) {
		if (c->fail.kind == OC_NONE)
			react_local(&c->fail, OC_DEFER, "4.4.1",
				    "no address of %s answered", c->dest->host);
		conn_end(c);
		return false;
	}
	t = &c->targets[c->ti];
	peer_name(c, t);
	/* A new connection: nothing of the last one's TLS or count holds
	 * (a host that fails after STARTTLS must not make the next one
	 * look encrypted). */
	c->has_txn = false;
	c->is_tls = false;
	c->is_authed = false;
	c->is_verified = false;
	c->is_policy_waived = false;
	c->n_msgs = 0;
	free(c->tlsa);
	c->tlsa = NULL;
	c->n_tlsa = 0;
	c->is_tlsa_unusable = false;
	/* The name connected to: the MX host, or the route's host. */
	str_set(c->tls_name, sizeof c->tls_name,
		c->dest->kind == DEST_MX ? t->host : c->dest->host);
	if (wants_tlsa(c, t)) {
		c->ph = CP_TLSA;
		c->tlsa_req = c->ob->hooks.tlsa_start(c->ob->hooks.arg, t->host,
						      target_port(t), on_tlsa,
						      c);
		if (c->tlsa_req != NULL)
			return true;
		react_local(&c->fail, OC_DEFER, "4.3.0", "out of memory");
		return next_target(c);
	}
	return connect_target(c);
}

/*
 * This address's TLS, strongest rule first: DANE (RFC 8461 2: it wins
 * over MTA-STS), then the MTA-STS policy in enforce mode (the host must
 * be one the policy names, RFC 8461 4.1, and its certificate verify),
 * then [delivery] tls and the route.  False: the address is skipped.
 */
static bool
target_policy(struct conn *c, const struct outbound_target *t)
{
	c->tls_need = c->dest->tls;
	c->is_sts_testing = false;
	if (c->n_tlsa > 0) {
		c->tls_need = CONFIG_TLS_VERIFY;
		return true;
	}
	if (c->is_tlsa_unusable) {
		if (c->tls_need < CONFIG_TLS_REQUIRED)
			c->tls_need = CONFIG_TLS_REQUIRED;
		return true;
	}
	if (c->sts != NULL && c->sts->mode == STS_MODE_ENFORCE) {
		if (!sts_mx_match(c->sts, t->host)) {
			react_local(&c->fail, OC_DEFER, "4.7.5",
				    "%s is not an MX host the MTA-STS policy "
				    "of %s names (mode enforce); not sent",
				    t->host, c->dest->host);
			report_tls(c, "validation-failure",
				   "the MX host is not in the MTA-STS policy");
			return false;
		}
		c->tls_need = CONFIG_TLS_VERIFY;
	} else if (c->sts != NULL && c->sts->mode == STS_MODE_TESTING) {
		c->is_sts_testing = true;
		if (!sts_mx_match(c->sts, t->host))
			report_tls(c, "validation-failure",
				   "the MX host is not in the MTA-STS policy");
	}
	return true;
}

static bool
connect_target(struct conn *c)
{
	const struct outbound_target *t = &c->targets[c->ti];

	if (!target_policy(c, t))
		return next_target(c);
	c->bev = bufferevent_socket_new(c->ob->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		react_local(&c->fail, OC_DEFER, "4.3.0", "out of memory");
		conn_end(c);
		return false;
	}
	c->ph = CP_CONNECT;
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	client_set_timeouts(c, c->ob->cfg->delivery_connect_timeout,
			    c->ob->cfg->delivery_connect_timeout);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&t->ss,
				       (int)t->sslen) != 0) {
		react_local(&c->fail, OC_DEFER, "4.4.1",
			    "connect to %s failed: %s", c->peer,
			    strerror(errno));
		return next_target(c);
	}
	return true;
}

/* DANE applies to an MX host whose MX records were validated, when the
 * resolver is trusted to validate (RFC 7672 2.2). */
static bool
wants_tlsa(const struct conn *c, const struct outbound_target *t)
{
	const struct config *cfg = c->ob->cfg;

	return c->dest->kind == DEST_MX && t->is_secure && cfg->dns_dnssec &&
	       cfg->delivery_dane && c->dest->tls != CONFIG_TLS_OFF &&
	       c->ob->hooks.tlsa_start != NULL;
}

static uint16_t
target_port(const struct outbound_target *t)
{
	if (t->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&t->ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&t->ss)->sin_port);
}

static void
on_tlsa(void *arg, enum outbound_tlsa_status st, const struct outbound_tlsa *r,
	size_t n)
{
	struct conn *c = arg;
	const char *host = c->targets[c->ti].host;

	c->tlsa_req = NULL;
	if (st == OUTBOUND_TLSA_FAIL) {
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "the TLSA lookup of %s failed or did not validate "
			    "(DNSSEC); the host is not used until it does",
			    host);
		log_msg(LOG_WARN, "ev=dane_lookup_failed host=%s", log_q(host));
		report_tls(c, "dnssec-invalid",
			   "the TLSA lookup failed or did not validate");
		(void)next_target(c);
		return;
	}
	if (st == OUTBOUND_TLSA_USABLE && n > 0 &&
	    (c->tlsa = malloc(n * sizeof *r)) != NULL) {
		memcpy(c->tlsa, r, n * sizeof *r);
		c->n_tlsa = n;
	}
	c->is_tlsa_unusable = st == OUTBOUND_TLSA_UNUSABLE ||
			      (st == OUTBOUND_TLSA_USABLE && c->n_tlsa == 0);
	log_msg(LOG_INFO, "ev=dane host=%s records=%zu unusable=%d",
		log_q(host), c->n_tlsa, c->is_tlsa_unusable);
	(void)connect_target(c);
}

static void
on_resolved(void *arg, enum outbound_resolve_status st,
	    const struct outbound_target *t, size_t n)
{
	struct conn *c = arg;

	c->resolving = NULL;
	if (st != OUTBOUND_RESOLVED || n == 0) {
		if (st == OUTBOUND_NULLMX)
			react_local(&c->fail, OC_BOUNCE, "5.1.10",
				    "%s accepts no mail: its MX record is the "
				    "null MX (RFC 7505)",
				    c->dest->host);
		else if (st == OUTBOUND_NOHOST)
			react_local(&c->fail, OC_BOUNCE, "5.1.2",
				    "the domain %s does not exist or has no "
				    "address for mail (DNS)",
				    c->dest->host);
		else
			react_local(&c->fail, OC_DEFER, "4.4.3",
				    "DNS lookup of %s failed for now",
				    c->dest->host);
		conn_end(c);
		return;
	}
	c->targets = malloc(n * sizeof *t);
	if (c->targets == NULL) {
		react_local(&c->fail, OC_DEFER, "4.3.0", "out of memory");
		conn_end(c);
		return;
	}
	memcpy(c->targets, t, n * sizeof *t);
	c->n_targets = n;
	c->ti = 0;
	if (c->sts_error[0] != '\0') {
		/* "result-type: words" from the policy fetch, reported once
		 * per connection (RFC 8460 4.3, the sts-* types). */
		char type[48];
		const char *colon = strchr(c->sts_error, ':');
		size_t len = colon ? (size_t)(colon - c->sts_error) : 0;
		if (len > 0 && len < sizeof type) {
			str_copy(type, sizeof type, c->sts_error, len);
			report_tls(c, type, colon + 2);
		}
	}
	try_target(c);
}

static void
start_resolve(struct conn *c)
{
	struct outbound *ob = c->ob;
	struct dest *d = c->dest;

	c->ph = CP_RESOLVE;
	c->resolving =
	    ob->hooks.resolve_start(ob->hooks.arg, d->host, d->kind == DEST_MX,
				    d->port, on_resolved, c);
	if (c->resolving == NULL) {
		react_local(&c->fail, OC_DEFER, "4.3.0",
			    "cannot start resolving %s", d->host);
		conn_end(c);
	}
}

/* MTA-STS applies to a domain reached through its MX records. */
static bool
wants_sts(const struct conn *c)
{
	const struct config *cfg = c->ob->cfg;

	return c->dest->kind == DEST_MX && cfg->delivery_mta_sts &&
	       c->dest->tls != CONFIG_TLS_OFF &&
	       c->ob->hooks.sts_start != NULL;
}

static void
on_sts(void *arg, const struct sts_policy *p, const char *error)
{
	struct conn *c = arg;

	c->sts_req = NULL;
	if (p != NULL && p->mode != STS_MODE_NONE &&
	    (c->sts = malloc(sizeof *c->sts)) != NULL)
		*c->sts = *p;
	str_set(c->sts_error, sizeof c->sts_error, error ? error : "");
	start_resolve(c);
}

/* A literal address or a Unix socket needs no DNS. */
static bool
literal_target(struct conn *c)
{
	struct dest *d = c->dest;
	struct outbound_target t = {0};

	if (d->is_unix) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&t.ss;
		sun->sun_family = AF_UNIX;
		if (!str_set(sun->sun_path, sizeof sun->sun_path, d->host))
			return false;
		t.sslen = sizeof *sun;
	} else if (d->kind != DEST_MX) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&t.ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t.ss;
		if (inet_pton(AF_INET, d->host, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons(d->port);
			t.sslen = sizeof *s4;
		} else if (inet_pton(AF_INET6, d->host, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(d->port);
			t.sslen = sizeof *s6;
		} else {
			return false;
		}
	} else {
		return false;
	}
	str_set(t.host, sizeof t.host, d->host);
	on_resolved(c, OUTBOUND_RESOLVED, &t, 1);
	return true;
}

int
client_start(struct outbound *ob, struct dest *d, struct job *j)
{
	struct conn *c = calloc(1, sizeof *c);

	if (c == NULL) {
		/* The job's recipients wait for the next tick. */
		struct outcome oc;
		react_local(&oc, OC_DEFER, "4.3.0", "out of memory");
		oc.is_uncharged = true;
		for (size_t k = 0; k < j->n; k++)
			j->out[k] = oc;
		finish_job(ob, j);
		return -1;
	}
	c->ob = ob;
	c->dest = d;
	c->job = j;
	c->is_lmtp = d->kind == DEST_LMTP;
	c->ph = CP_RESOLVE;
	c->next = ob->conns;
	if (ob->conns)
		ob->conns->prev = c;
	ob->conns = c;
	ob->n_conns++;
	d->n_conns++;
	if (literal_target(c))
		return 0;
	if (wants_sts(c)) {
		c->ph = CP_POLICY;
		c->sts_req = ob->hooks.sts_start(ob->hooks.arg, d->host, on_sts,
						 c);
		if (c->sts_req != NULL)
			return 0;
	}
	start_resolve(c);
	return 0;
}

void
client_stop_all(struct outbound *ob)
{
	/* conn_end() unlinks what it frees, so the head is new each time;
	 * the analyzer cannot follow the list through it. */
	/* NOLINTBEGIN(clang-analyzer-unix.Malloc) */
	while (ob->conns != NULL) {
		struct conn *c = ob->conns;
		/* What was not decided is sent again after the restart. */
		if (c->job != NULL) {
			struct job *j = c->job;
			c->job = NULL;
			finish_job(ob, j);
		}
		conn_end(c);
	}
	/* NOLINTEND(clang-analyzer-unix.Malloc) */
}
