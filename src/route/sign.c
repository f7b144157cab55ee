/*
 * sign.c - DKIM signatures on mail that leaves from us: the keys of
 * [dkim] keys, and the one function every entry point of such mail calls.
 *
 * Who calls it: the server for mail from the submission and smtps ports
 * and from authenticated sessions (server/session_cmd_data.c), the
 * maildrop pickup (`postern send`, pickup.c) and the messages the sending
 * side makes (bounces and notices from our domains, hooks.c).  Mail
 * received from outside on the smtp port is never signed, even when its
 * From: names one of our domains: a signature says "we sent this".
 *
 * Keys: every file DOMAIN.SELECTOR.key in the directory (PEM, RSA or
 * Ed25519; `postern dkim keygen` writes them).  The selector is the part
 * after the last dot, so a selector cannot hold a dot here.  Several keys
 * of one domain: the selector that sorts last signs (a new key of a
 * date-named selector, s202612 after s202606, takes over once it is in
 * place; publish its record first).  A key that does not load stops the
 * start, or fails the reload, naming the file.  A missing directory is no
 * key at all.  The keys are read at start and at each reload.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/dkim.h"
#include "auth/hdr.h"
#include "route/route_int.h"
#include "util/log.h"
#include "util/str.h"

#define SIGN_KEY_FILE_MAX 65536 /* a PEM key is a few kB */
#define SIGN_DOMAIN_MAX 256
#define SIGN_SELECTOR_MAX 64
#define SIGN_HEADERS_MAX 64

struct sign_key {
	char domain[SIGN_DOMAIN_MAX];
	char selector[SIGN_SELECTOR_MAX];
	struct dkim_signer *k;
};

struct route_signers {
	struct sign_key *keys;
	size_t n;
	char *headers_text;		       /* [dkim] headers, split */
	const char *headers[SIGN_HEADERS_MAX + 1]; /* NULL: the default */
	bool has_headers;
};

void
route_signers_free(struct route_signers *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		dkim_signer_free(s->keys[i].k);
	free(s->keys);
	free(s->headers_text);
	free(s);
}

/* The whole key file; NULL with err set. */
static char *
read_key(const char *path, size_t *len, char *err, size_t size)
{
	FILE *fp = fopen(path, "re");
	char *buf = NULL;

	if (fp == NULL) {
		snprintf(err, size, "cannot read the DKIM key %s: %s (it must "
			 "be readable by the user postern runs as)", path,
			 strerror(errno));
		return NULL;
	}
	buf = malloc(SIGN_KEY_FILE_MAX + 1);
	if (buf != NULL) {
		*len = fread(buf, 1, SIGN_KEY_FILE_MAX, fp);
		buf[*len] = '\0';
	} else {
		snprintf(err, size, "out of memory reading %s", path);
	}
	fclose(fp);
	return buf;
}

/* name = DOMAIN.SELECTOR.key: one key, in place of an older selector of
 * its domain.  0, or -1 with err set. */
static int
add_key(struct route_signers *s, const char *dir, const char *name,
	char *err, size_t size)
{
	char path[PATH_MAX], base[SIGN_DOMAIN_MAX + SIGN_SELECTOR_MAX];
	size_t n = strlen(name), len = 0;
	struct sign_key key = {0}, *grown;
	char *dot, *pem;

	if (n <= 4 || n - 4 >= sizeof base)
		return 0;
	str_copy(base, sizeof base, name, n - 4);
	dot = strrchr(base, '.');
	if (dot == NULL || dot == base || dot[1] == '\0')
		return 0; /* not DOMAIN.SELECTOR.key: not ours */
	*dot = '\0';
	str_set(key.domain, sizeof key.domain, base);
	str_set(key.selector, sizeof key.selector, dot + 1);
	for (char *p = key.domain; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >=
	    sizeof path) {
		snprintf(err, size, "the path of the DKIM key %s is too long",
			 name);
		return -1;
	}
	pem = read_key(path, &len, err, size);
	if (pem == NULL)
		return -1;
	key.k = dkim_signer_from_pem(pem, len, key.domain, key.selector, err,
				     size);
	free(pem);
	if (key.k == NULL) {
		char why[512];
		str_set(why, sizeof why, err);
		snprintf(err, size, "%s: %s", path, why);
		return -1;
	}
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->keys[i].domain, key.domain) != 0)
			continue;
		if (strcmp(s->keys[i].selector, key.selector) > 0) {
			dkim_signer_free(key.k); /* a newer one is in place */
			return 0;
		}
		dkim_signer_free(s->keys[i].k);
		s->keys[i] = key;
		return 0;
	}
	grown = realloc(s->keys, (s->n + 1) * sizeof *grown);
	if (grown == NULL) {
		dkim_signer_free(key.k);
		snprintf(err, size, "out of memory loading DKIM keys");
		return -1;
	}
	s->keys = grown;
	s->keys[s->n++] = key;
	return 0;
}

/* [dkim] headers as a NULL-terminated list of lower-case names. */
static int
split_headers(struct route_signers *s, const char *list, char *err,
	      size_t size)
{
	size_t n = 0;
	char *save = NULL;

	if (list[0] == '\0')
		return 0;
	s->headers_text = strdup(list);
	if (s->headers_text == NULL) {
		snprintf(err, size, "out of memory");
		return -1;
	}
	for (char *p = s->headers_text; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	for (char *t = strtok_r(s->headers_text, ", \t", &save); t;
	     t = strtok_r(NULL, ", \t", &save)) {
		if (n == SIGN_HEADERS_MAX) {
			snprintf(err, size, "[dkim] headers names more than "
				 "%d fields", SIGN_HEADERS_MAX);
			return -1;
		}
		s->headers[n++] = t;
	}
	s->headers[n] = NULL;
	s->has_headers = n > 0;
	return 0;
}

struct route_signers *
route_signers_load(const struct config *cfg, char *err, size_t size)
{
	struct route_signers *s = calloc(1, sizeof *s);
	struct dirent **names = NULL;
	int n;

	if (s == NULL) {
		snprintf(err, size, "out of memory");
		return NULL;
	}
	if (split_headers(s, cfg->dkim_headers, err, size) != 0)
		goto fail;
	n = scandir(cfg->dkim_keys, &names, NULL, alphasort);
	if (n < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return s; /* no keys: nothing is signed */
		snprintf(err, size, "cannot read [dkim] keys %s: %s",
			 cfg->dkim_keys, strerror(errno));
		goto fail;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		size_t len = strlen(name);
		if (s != NULL && name[0] != '.' && len > 4 &&
		    strcmp(name + len - 4, ".key") == 0 &&
		    add_key(s, cfg->dkim_keys, name, err, size) != 0) {
			route_signers_free(s);
			s = NULL;
		}
		free(names[i]);
	}
	free(names);
	if (s != NULL && s->n > 0)
		log_msg(LOG_INFO, "ev=dkim_keys dir=%s keys=%zu",
			log_q(cfg->dkim_keys), s->n);
	return s;
fail:
	route_signers_free(s);
	return NULL;
}

char *
route_sign(const struct router *r, const char *text, size_t len)
{
	const struct route_signers *s = r->signers;
	char domain[SIGN_DOMAIN_MAX];

	if (s == NULL || s->n == 0 ||
	    hdr_from_domain(text, len, domain, sizeof domain) != HDR_FROM_OK)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (strcasecmp(s->keys[i].domain, domain) == 0)
			return dkim_sign(s->keys[i].k, text, len,
					 s->has_headers ? s->headers : NULL,
					 (int64_t)time(NULL));
	return NULL;
}

int
route_sign_msg(const struct router *r, struct msg *m)
{
	char *h = route_sign(r, m->data, m->data_len);
	size_t hlen;
	char *data;

	if (h == NULL)
		return 0;
	hlen = strlen(h);
	data = malloc(hlen + m->data_len + 1);
	if (data == NULL) {
		free(h);
		return -1;
	}
	memcpy(data, h, hlen);
	memcpy(data + hlen, m->data, m->data_len);
	free(h);
	free(m->data);
	m->data = data;
	m->data_len += hlen;
	return 0;
}
