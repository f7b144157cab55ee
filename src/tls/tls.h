/*
 * tls.h - OpenSSL contexts for the server and the client, and the end of
 * a TLS session.
 *
 * TLS 1.2 and 1.3 only, forward-secret AEAD ciphers only, no compression,
 * no renegotiation (RFC 8996, RFC 7525 / BCP 195).
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stddef.h>

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

/* Seconds a side that sent close_notify waits for the peer's end (its
 * close_notify or EOF) before it closes anyway: a peer that never
 * answers costs a socket this long, no more. */
#define TLS_CLOSE_SECONDS 2

/* What tls_close_notify() did. */
enum tls_close {
	TLS_CLOSE_NONE,	   /* no TLS session to end: close the socket now */
	TLS_CLOSE_SENT,	   /* close_notify is in the kernel: shut down
			    * writing, wait for the peer's end */
	TLS_CLOSE_PENDING, /* the socket is full: call again later */
};

/*
 * A server context with the PEM certificate chain and key; NULL with a
 * message naming the fix in err.  Free with SSL_CTX_free.
 */
SSL_CTX *tls_server_ctx_new(const char *cert, const char *key, char *err,
			    size_t size);

/*
 * A client context for STARTTLS and implicit TLS towards other servers:
 * TLS 1.2 or newer, the server's cipher choice, trusting the CAs of
 * ca_file (PEM; NULL or "": the system store), DANE enabled.  No
 * handshake fails over the peer's certificate: where a connection's
 * policy wants it verified (SSL_set1_host, SSL_dane_enable), the caller
 * asks tls_verify_result() after the handshake.  NULL with a message in
 * err.  Free with SSL_CTX_free.
 */
SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t size);

/*
 * NULL when the peer's certificate verified (chain to a trusted CA, the
 * name set with SSL_set1_host, or a DANE TLSA match); otherwise why not,
 * in words ("certificate has expired", "hostname mismatch") in buf.
 */
const char *tls_verify_result(const SSL *ssl, char *buf, size_t size);

/*
 * Describes the session's protocol and cipher as RFC 8314 / Postfix-style
 * "version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256" into buf.
 */
void tls_describe(const SSL *ssl, char *buf, size_t size);

/* The last OpenSSL error as text (thread-local buffer), "" when none. */
const char *tls_error(void);

/*
 * Sends TLS close_notify (RFC 8446 6.1: each side sends one before it
 * closes its write side) on bev - an OpenSSL bufferevent over a socket,
 * or a filter over a socket bufferevent - when its handshake is done,
 * once; what the filter's socket bufferevent then holds is written at
 * once.  Never blocks.  libevent 2.1 does none of this when the
 * bufferevent is freed: without it every session ends looking truncated
 * to the peer.
 */
enum tls_close tls_close_notify(struct bufferevent *bev);

#endif
