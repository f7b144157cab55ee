/*
 * client_tls.c - what TLS an outgoing connection owes its peer, and the
 * smart host's login: the policy of each address (DANE, MTA-STS, [delivery]
 * tls and the route's), the SSL object that carries it (SNI, the name to
 * verify, the TLSA records), the check once the handshake is done, the
 * TLS report's record of each session (RFC 8460), and AUTH PLAIN/LOGIN
 * to the relayhost (RFC 4954).
 *
 * client.c calls these and acts on their answers (next address, EHLO,
 * the transaction); nothing here calls back into client.c, so the two
 * halves stay one way (outbound_int.h).  Outcomes go into c->fail with
 * react_local(): 4.7.5 for TLS that does not verify where it must,
 * 4.7.0 or the relay's own reply for a login it refuses - deferrals, our
 * side's to fix, never bounces.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "outbound/client_int.h"
#include "tls/tls.h"
#include "util/log.h"
#include "util/str.h"

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

/* The SSL object for this address's handshake: SNI, and the name or the
 * DANE records its certificate is checked against; NULL with c->fail
 * set. */
SSL *
client_tls_ssl(struct conn *c)
{
	SSL *ssl = SSL_new(c->ob->tls_client);

	if (ssl == NULL) {
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "cannot start TLS with %s", c->peer);
		return NULL;
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
		return NULL;
	}
	if (c->n_tlsa == 0 &&
	    (c->tls_need == CONFIG_TLS_VERIFY || c->is_sts_testing) &&
	    SSL_set1_host(ssl, c->tls_name) != 1) {
		SSL_free(ssl);
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "cannot set the name %s to verify", c->tls_name);
		return NULL;
	}
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	return ssl;
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
void
client_tls_report(struct conn *c, const char *result, const char *reason)
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
 * before a word is sent over it: false, deferred with 4.7.5 and the
 * reason, never retried in clear text (REPLY-CODES.md).  MTA-STS testing
 * reports and goes on; TLS-Required: No (RFC 8689 5) waives it for that
 * message alone.
 */
bool
client_tls_check(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	bool is_checked = ssl != NULL && (c->tls_need == CONFIG_TLS_VERIFY ||
					  c->is_sts_testing);
	char why[256];
	const char *bad =
	    is_checked ? tls_verify_result(ssl, why, sizeof why) : NULL;

	c->is_tls = true;
	client_tls_report(c, bad ? tls_result_type(ssl, c->n_tlsa > 0) : NULL,
			  bad ? bad : "");
	if (bad != NULL && c->tls_need != CONFIG_TLS_VERIFY) {
		/* MTA-STS testing: reported, not enforced (RFC 8461 5). */
		log_msg(LOG_INFO,
			"ev=tls_verify_failed peer=%s name=%s "
			"reason=%s enforced=no",
			log_q(c->peer), log_q(c->tls_name), log_q(bad));
		bad = NULL;
	} else if (bad != NULL && c->job != NULL &&
		   (c->job->q->m->flags & MSG_F_TLS_OPTIONAL)) {
		/* RFC 8689 5: the sender asked that TLS policy failures not
		 * stop this message; it alone goes over this connection. */
		log_msg(LOG_INFO,
			"ev=tls_policy_waived qid=%s peer=%s "
			"reason=%s",
			c->job->q->m->qid_str, log_q(c->peer), log_q(bad));
		c->is_policy_waived = true;
		bad = NULL;
	} else if (bad != NULL) {
		react_local(&c->fail, OC_DEFER, "4.7.5",
			    "the TLS certificate of %s did not verify for "
			    "%s%s: %s; not sent",
			    c->peer, c->tls_name,
			    c->n_tlsa > 0    ? " against its DANE TLSA records"
			    : c->sts != NULL ? " (MTA-STS policy enforce)"
					     : "",
			    bad);
		log_msg(LOG_WARN,
			"ev=tls_verify_failed peer=%s name=%s "
			"reason=%s",
			log_q(c->peer), log_q(c->tls_name), log_q(bad));
		return false;
	}
	c->is_verified = c->tls_need == CONFIG_TLS_VERIFY && ssl != NULL &&
			 !c->is_policy_waived;
	return true;
}

/*
 * This address's TLS, strongest rule first: DANE (RFC 8461 2: it wins
 * over MTA-STS), then the MTA-STS policy in enforce mode (the host must
 * be one the policy names, RFC 8461 4.1, and its certificate verify),
 * then [delivery] tls and the route.  False: the address is skipped.
 */
bool
client_tls_policy(struct conn *c, const struct outbound_target *t)
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
			client_tls_report(
			    c, "validation-failure",
			    "the MX host is not in the MTA-STS policy");
			return false;
		}
		c->tls_need = CONFIG_TLS_VERIFY;
	} else if (c->sts != NULL && c->sts->mode == STS_MODE_TESTING) {
		c->is_sts_testing = true;
		if (!sts_mx_match(c->sts, t->host))
			client_tls_report(
			    c, "validation-failure",
			    "the MX host is not in the MTA-STS policy");
	}
	return true;
}

/* DANE applies to an MX host whose MX records were validated, when the
 * resolver is trusted to validate (RFC 7672 2.2). */
bool
client_wants_tlsa(const struct conn *c, const struct outbound_target *t)
{
	const struct config *cfg = c->ob->cfg;

	return c->dest->kind == DEST_MX && t->is_secure && cfg->dns_dnssec &&
	       cfg->delivery_dane && c->dest->tls != CONFIG_TLS_OFF &&
	       c->ob->hooks.tlsa_start != NULL;
}

uint16_t
client_target_port(const struct outbound_target *t)
{
	if (t->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&t->ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&t->ss)->sin_port);
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

/* A name or password too long to encode: our configuration. */
static enum client_auth
auth_fail_local(struct conn *c)
{
	react_local(&c->fail, OC_DEFER, "4.7.0",
		    "[delivery] relay_user or the password is too long to "
		    "send to %s",
		    c->peer);
	return CLIENT_AUTH_FAILED;
}

/*
 * RFC 4954 as a client, to the relayhost only and only over TLS
 * (dest_tls_set made TLS required): PLAIN with its initial response
 * when offered, else LOGIN.  The password never reaches a log.
 */
enum client_auth
client_auth_start(struct conn *c)
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
		return CLIENT_AUTH_FAILED;
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
	return CLIENT_AUTH_WAIT;
}

/* LOGIN's 334 challenges get the user name, then the password. */
static enum client_auth
auth_login_send(struct conn *c, const char *what)
{
	char enc[CLIENT_AUTH_MAX * 2];

	if (!b64((const unsigned char *)what, strlen(what), enc, sizeof enc))
		return auth_fail_local(c);
	client_send_line(c, "%s", enc);
	OPENSSL_cleanse(enc, sizeof enc);
	c->ph = c->ph == CP_AUTH ? CP_AUTH_USER : CP_AUTH_PASS;
	return CLIENT_AUTH_WAIT;
}

/*
 * The relayhost's answer to our login.  Any refusal is our configuration
 * (a wrong user or password), not the recipient's: the mail is deferred,
 * never bounced, and the reason says what to fix.
 */
enum client_auth
client_auth_reply(struct conn *c, const char *line)
{
	const struct config *cfg = c->ob->cfg;
	unsigned code = c->rep.code;

	if (code == 235) {
		c->is_authed = true;
		log_msg(LOG_INFO, "ev=relay_auth peer=%s user=%s",
			log_q(c->peer), log_q(cfg->delivery_relay_user));
		return CLIENT_AUTH_DONE;
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
		snprintf(why, sizeof why,
			 "%s (the relayhost refused the login "
			 "of [delivery] relay_user %s: check relay_user and "
			 "relay_password_file)",
			 line, cfg->delivery_relay_user);
		str_set(c->fail.reply, sizeof c->fail.reply, why);
	}
	log_msg(LOG_WARN, "ev=relay_auth_failed peer=%s user=%s reply=%s",
		log_q(c->peer), log_q(cfg->delivery_relay_user), log_q(line));
	return CLIENT_AUTH_FAILED;
}
