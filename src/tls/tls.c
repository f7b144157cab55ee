/*
 * tls.c - building OpenSSL contexts, and ending a TLS session.
 *
 * The contexts are built by server/server.c at start-up.  The cipher list
 * keeps only ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 for
 * TLS 1.2; TLS 1.3 suites are OpenSSL's defaults, all AEAD.
 * Renegotiation and compression are off (CRIME, RFC 7457).
 *
 * tls_close_notify() is the one place a session's close_notify is sent,
 * for the server's sessions (server/session_io.c) and the sending side's
 * connections (outbound/client.c); the waiting for the peer's end is
 * theirs, on their own events, so nothing outlives its owner.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "tls/tls.h"

#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
#define TLS_GROUPS "X25519:P-256:P-384"
#define TLS_SESSION_ID "postern"

const char *
tls_error(void)
{
	static __thread char buf[256];
	unsigned long e = ERR_get_error();

	if (e == 0)
		return "";
	ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	return buf;
}

SSL_CTX *
tls_server_ctx_new(const char *cert, const char *key, char *err, size_t size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		snprintf(err, size, "cannot create a TLS context: %s",
			 tls_error());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
				 SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TLS_SESSION_ID,
				       sizeof TLS_SESSION_ID - 1);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
		snprintf(err, size, "cannot set the TLS ciphers: %s",
			 tls_error());
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, size, "[tls] cert = %s: cannot load a PEM "
			 "certificate chain (%s); run `make cert` for a "
			 "self-signed one", cert, tls_error());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, size, "[tls] key = %s: cannot load a PEM key "
			 "that matches %s (%s)", key, cert, tls_error());
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void
tls_describe(const SSL *ssl, char *buf, size_t size)
{
	int bits = 0;
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);

	if (c != NULL)
		SSL_CIPHER_get_bits(c, &bits);
	snprintf(buf, size, "version=%s cipher=%s bits=%d",
		 SSL_get_version(ssl), c ? SSL_CIPHER_get_name(c) : "none",
		 bits);
}

SSL_CTX *
tls_client_ctx_new(const char *ca_file, char *err, size_t size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		snprintf(err, size, "cannot create a TLS client context: %s",
			 tls_error());
		return NULL;
	}
	/* The handshake never fails over a certificate (opportunistic TLS,
	 * RFC 7435: a bad one must not stop mail); the chain is still
	 * checked against the trust store, and DANE records when a
	 * connection adds them, and the client reads the result where its
	 * policy asks for verification (tls_verify_result). */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
				 SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		snprintf(err, size, "cannot set the TLS ciphers: %s",
			 tls_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (ca_file != NULL && ca_file[0] != '\0'
		? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
		: SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(err, size, "[delivery] tls_ca = %s: cannot load "
			 "certificate authorities (%s); give a PEM file of CA "
			 "certificates, or leave it empty for the system store",
			 ca_file != NULL && ca_file[0] ? ca_file : "(system)",
			 tls_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_dane_enable(ctx) <= 0) {
		snprintf(err, size, "cannot enable DANE: %s", tls_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

const char *
tls_verify_result(const SSL *ssl, char *buf, size_t size)
{
	long r = SSL_get_verify_result(ssl);
	X509 *peer;

	if (r == X509_V_OK)
		return NULL;
	peer = SSL_get0_peer_certificate(ssl);
	if (peer == NULL) {
		snprintf(buf, size, "no certificate was presented");
		return buf;
	}
	snprintf(buf, size, "%s", X509_verify_cert_error_string(r));
	return buf;
}

enum tls_close
tls_close_notify(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	struct bufferevent *under = bufferevent_get_underlying(bev);
	struct evbuffer *out;

	/* A handshake not done, or failed, has no session to end (and after
	 * a fatal error SSL_shutdown must not be called). */
	if (ssl == NULL || !SSL_is_init_finished(ssl))
		return TLS_CLOSE_NONE;
	/* Sent at most once; again only while the alert itself waits for a
	 * full socket (a socket BIO: smtps). */
	if (!(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) ||
	    SSL_want_write(ssl)) {
		int r;
		ERR_clear_error();
		r = SSL_shutdown(ssl);
		if (r < 0 && SSL_get_error(ssl, r) == SSL_ERROR_WANT_WRITE)
			return TLS_CLOSE_PENDING;
		ERR_clear_error();
	}
	if (under == NULL)
		return TLS_CLOSE_SENT;
	/* A filter (STARTTLS): the alert sits in the socket bufferevent's
	 * output, which keeps its front frozen against drains other than
	 * its own, as session_io.c's flush does. */
	out = bufferevent_get_output(under);
	if (evbuffer_get_length(out) > 0) {
		evbuffer_unfreeze(out, 1);
		(void)evbuffer_write(out, bufferevent_getfd(under));
		evbuffer_freeze(out, 1);
	}
	return evbuffer_get_length(out) == 0 ? TLS_CLOSE_SENT
					     : TLS_CLOSE_PENDING;
}
