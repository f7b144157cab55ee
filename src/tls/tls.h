/*
 * tls.h - OpenSSL contexts for the server (and, later, the client).
 *
 * TLS 1.2 and 1.3 only, forward-secret AEAD ciphers only, no compression,
 * no renegotiation (RFC 8996, RFC 7525 / BCP 195).
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * A server context with the PEM certificate chain and key; NULL with a
 * message naming the fix in err.  Free with SSL_CTX_free.
 */
SSL_CTX *tls_server_ctx_new(const char *cert, const char *key, char *err,
			    size_t size);

/*
 * A client context for STARTTLS towards other servers: TLS 1.2 or newer,
 * the server's cipher choice, certificates not verified (opportunistic,
 * RFC 7435).  NULL with a message in err.  Free with SSL_CTX_free.
 */
SSL_CTX *tls_client_ctx_new(char *err, size_t size);

/*
 * Describes the session's protocol and cipher as RFC 8314 / Postfix-style
 * "version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256" into buf.
 */
void tls_describe(const SSL *ssl, char *buf, size_t size);

/* The last OpenSSL error as text (thread-local buffer), "" when none. */
const char *tls_error(void);

#endif
