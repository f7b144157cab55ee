/*
 * dkim.h - DKIM signatures (RFC 6376), with Ed25519 (RFC 8463) and the key
 * rules of RFC 8301: verification of received mail and signing of mail
 * that leaves.  Pure: no file, no socket, no DNS of its own (keys come
 * through an adns_view), no logging.  OpenSSL 3 EVP underneath.
 *
 * Verification is split in two so that the server never holds a message
 * while it waits for DNS: dkim_check_new() parses every signature and
 * computes its hashes at once, dkim_check_eval() is called once per DNS
 * round and only looks keys up and checks the signatures over the stored
 * hashes.
 */
#ifndef POSTERN_AUTH_DKIM_H
#define POSTERN_AUTH_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/adns.h"

/* Signatures evaluated per message at most; further ones are ignored. */
#define DKIM_SIGS_MAX 10

enum dkim_result {
	DKIM_NONE,
	DKIM_PASS,
	DKIM_FAIL,
	DKIM_NEUTRAL,
	DKIM_POLICY,
	DKIM_TEMPERROR,
	DKIM_PERMERROR,
};

struct dkim_sig_result {
	enum dkim_result result;
	char domain[256];   /* d=, lower case */
	char selector[64];  /* s= */
	char header_b[16];  /* the first 8 characters of b= (RFC 6008) */
	char algorithm[24]; /* "rsa-sha256", "ed25519-sha256", as written */
	char problem[160];  /* fail/permerror/temperror: a short reason */
	unsigned key_bits;  /* of the key that checked it, else 0 */
};

struct dkim_check;

/*
 * Parses every DKIM-Signature field of msg (CRLF line ends; header, empty
 * line, body), at most max_sigs of them and never more than DKIM_SIGS_MAX
 * (further ones are ignored), and computes their body hashes and header
 * hashes now; msg is not kept.  now: the time x= is compared with.
 * NULL on out of memory only: a malformed signature is a PERMERROR result.
 */
struct dkim_check *dkim_check_new(const char *msg, size_t len, size_t max_sigs,
				  int64_t now);

/*
 * Evaluates the signatures still open with the keys in dns (TXT at
 * SELECTOR._domainkey.DOMAIN).  A key not yet in the view is asked for
 * with dns->need(); all missing keys are asked for in the same round.
 * True when every signature has its result; false: call again after the
 * round.
 */
bool dkim_check_eval(struct dkim_check *c, const struct adns_view *dns);

/* Signatures parsed; 0 means none (Authentication-Results dkim=none). */
size_t dkim_check_count(const struct dkim_check *c);

/* The i-th signature's result, in message order; NULL past the end. */
const struct dkim_sig_result *dkim_check_result(const struct dkim_check *c,
						size_t i);

void dkim_check_free(struct dkim_check *c);

/* RFC 8601 names: "none", "pass", "fail", "neutral", "policy",
 * "temperror", "permerror". */
const char *dkim_result_name(enum dkim_result r);

/* A private key loaded for one domain and selector. */
struct dkim_signer;

/*
 * Loads a PEM private key (PKCS#8 or traditional): RSA of at least 1024
 * bits (2048 recommended) or Ed25519.  NULL with err set to one line that
 * names the fix.  The caller reads the file (src/auth/ does no I/O).
 */
struct dkim_signer *dkim_signer_from_pem(const char *pem, size_t len,
					 const char *domain,
					 const char *selector, char *err,
					 size_t size);

/*
 * Returns a malloc'd "DKIM-Signature: ...\r\n" field, folded with CRLF TAB
 * at about 78 columns, to put at the top of msg; NULL on out of memory or
 * a key error.  headers: the field names to sign, lower case,
 * NULL-terminated (NULL: dkim_default_headers); names absent from msg are
 * left out, except "from".  Every instance present is signed and From is
 * listed once more than present, so a From added later breaks the
 * signature.  relaxed/relaxed, a= by the key's type, t=now, no l=, no x=.
 */
char *dkim_sign(const struct dkim_signer *k, const char *msg, size_t len,
		const char *const *headers, int64_t now);

/*
 * The DNS TXT record's value for k's public key: "v=DKIM1; k=rsa; p=..."
 * or k=ed25519.  0, or -1 when it does not fit or out of memory.
 */
int dkim_signer_txt(const struct dkim_signer *k, char *txt, size_t size);

/* The key's algorithm, "rsa" or "ed25519", and its size in bits. */
const char *dkim_signer_type(const struct dkim_signer *k);
unsigned dkim_signer_bits(const struct dkim_signer *k);

void dkim_signer_free(struct dkim_signer *k);

extern const char *const dkim_default_headers[];

/*
 * The two with file I/O live in src/cli/dkim.c (src/auth/ does none):
 *
 * dkim_signer_load: dkim_signer_from_pem() over the file at path; err
 * names the file and the fix.
 *
 * dkim_keygen: writes a new PEM key (PKCS#8) to path, mode 0600, never
 * over an existing file (O_EXCL), and fills txt with the DNS TXT record's
 * value ("v=DKIM1; k=rsa; p=BASE64" or k=ed25519).  type "rsa" (bits 0:
 * 2048; 1024..4096) or "ed25519".  0, or -1 with err set.
 */
struct dkim_signer *dkim_signer_load(const char *path, const char *domain,
				     const char *selector, char *err,
				     size_t size);
int dkim_keygen(const char *path, const char *type, unsigned bits, char *txt,
		size_t txtsize, char *err, size_t errsize);

#endif
