/*
 * session_cmd_tls.c - STARTTLS (RFC 3207).
 *
 * Promises: whatever the client sent after STARTTLS in the same burst is
 * thrown away before TLS starts, so plaintext can never be executed as if
 * it came through TLS (CVE-2011-0411); after the handshake the session
 * forgets HELO and the transaction (RFC 3207 4.2) - session_tls_ready();
 * a local failure to start TLS gets 454 4.7.0.  The command table refuses
 * STARTTLS without a certificate (502), with an argument (501 5.5.4) and
 * once TLS is up (503, smtps included).
 */
#include <event2/bufferevent_ssl.h>

#include "server/session.h"
#include "util/log.h"

void
cmd_starttls(struct session *s, const struct cmd *c)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct bufferevent *plain = s->bev, *bev;
	size_t discarded;
	SSL *ssl;

	(void)c;
	ssl = SSL_new(s->srv->tls_ctx);
	if (ssl == NULL) {
		log_msg(LOG_ERR, "ev=tls_unavailable sid=%s error=%s", s->sid,
			log_q(tls_error()));
		session_reply(s, REPLY_TLS_UNAVAILABLE);
		return;
	}
	session_reply(s, REPLY_TLS_GO);
	discarded = evbuffer_get_length(in);
	if (discarded > 0) {
		evbuffer_drain(in, discarded);
		log_msg(LOG_WARN, "ev=starttls_injection sid=%s client=%s "
			"discarded=%zu", s->sid, s->client, discarded);
	}
	session_txn_reset(s);
	/* The 220 (still queued) and all TLS records leave through
	 * libevent from now on. */
	bufferevent_enable(plain, EV_WRITE);
	bufferevent_set_timeouts(plain, NULL, NULL);
	bev = bufferevent_openssl_filter_new(s->srv->base, plain, ssl,
					     BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		session_reply(s, REPLY_TOO_MANY_ERRORS,
			      s->srv->cfg->server_hostname);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	s->state = SESSION_TLS;
	session_set_bev(s, bev);
}
