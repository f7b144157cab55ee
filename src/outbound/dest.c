/*
 * dest.c - where a recipient goes: its destination.
 *
 *	local, [local] lmtp set      -> "lmtp" (that socket)
 *	[delivery] relayhost set     -> "relay:HOST:PORT" for every domain
 *	a [delivery] routes line     -> "route:HOST:PORT"
 *	otherwise                    -> "mx:DOMAIN", through its MX records
 *
 * The routes file holds `domain host:port` lines (`[v6]:port`, `*` for
 * every domain not named, `# comments`); a line may end in
 * `tls=required` or `tls=verify`; `smtps:host:port` (or port 465) means
 * implicit TLS (RFC 8314), as in [delivery] relayhost.  Both are read at
 * start and reload; a bad line stops the start with FILE:LINE and the
 * fix.  Destinations live until the sending side stops:
 * there are as many as domains mail went to.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbound/outbound_int.h"
#include "util/str.h"

#define ROUTE_LINE_MAX 1024
#define ROUTE_PORT_SMTP 25
#define ROUTE_PORT_MAX 65535
#define ROUTE_PORT_SMTPS 465 /* RFC 8314 submissions: implicit TLS */

/* "host:port", "[v6]:port" or "host" (port def) into host and port. */
static bool
hostport_parse(const char *s, char *host, size_t size, uint16_t def,
	       uint16_t *port_out)
{
	const char *colon;
	unsigned long port = def;
	size_t len;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL)
			return false;
		len = (size_t)(end - s - 1);
		if (len == 0 || len >= size)
			return false;
		str_copy(host, size, s + 1, len);
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return false;
	} else {
		colon = strrchr(s, ':');
		len = colon ? (size_t)(colon - s) : strlen(s);
		if (len == 0 || len >= size)
			return false;
		str_copy(host, size, s, len);
	}
	if (colon != NULL) {
		char *end;
		errno = 0;
		port = strtoul(colon + 1, &end, 10);
		if (*end != '\0' || end == colon + 1 || port == 0 ||
		    port > ROUTE_PORT_MAX)
			return false;
	}
	*port_out = (uint16_t)port;
	return true;
}

/*
 * "host:port" or "smtps:host:port" into r's host, port and TLS; a bare
 * smtps: host gets port 465, and port 465 means implicit TLS either way.
 */
static bool
route_target_parse(const char *s, struct ob_route *r)
{
	char host[256];
	uint16_t port;
	bool is_smtps = strncasecmp(s, "smtps:", 6) == 0;

	if (is_smtps)
		s += 6;
	if (!hostport_parse(s, host, sizeof host,
			    is_smtps ? ROUTE_PORT_SMTPS : ROUTE_PORT_SMTP,
			    &port))
		return false;
	r->host = strdup(host);
	r->port = port;
	r->is_implicit_tls = is_smtps || port == ROUTE_PORT_SMTPS;
	return r->host != NULL;
}

static int
dest_route_add(struct outbound *ob, const char *domain, const char *hp,
	       int tls)
{
	struct ob_route *v, *r;

	v = realloc(ob->routes, (ob->n_routes + 1) * sizeof *v);
	if (v == NULL)
		return -1;
	ob->routes = v;
	r = &v[ob->n_routes];
	memset(r, 0, sizeof *r);
	if (!route_target_parse(hp, r)) {
		free(r->host);
		return -1;
	}
	r->domain = strdup(domain);
	r->tls = tls;
	if (r->domain == NULL) {
		free(r->domain);
		free(r->host);
		return -1;
	}
	for (char *p = r->domain; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	ob->n_routes++;
	return 0;
}

int
dest_routes_load(struct outbound *ob, char *err, size_t size)
{
	const char *path = ob->cfg->delivery_routes;
	const char *relay = ob->cfg->delivery_relayhost;
	char line[ROUTE_LINE_MAX];
	unsigned n = 0;
	FILE *fp;

	if (relay[0] != '\0' && !route_target_parse(relay, &ob->relay)) {
		snprintf(err, size, "[delivery] relayhost = %s: write host:port "
			 "(e.g. smtp.example.net:587) or smtps:host:port for "
			 "implicit TLS (e.g. smtps:smtp.example.net:465)", relay);
		return -1;
	}
	if (path[0] == '\0')
		return 0;
	fp = fopen(path, "re");
	if (fp == NULL && errno == ENOENT &&
	    ob->cfg->line[CONFIG_delivery_routes] == 0)
		return 0; /* the default file, not made: no routes */
	if (fp == NULL) {
		snprintf(err, size, "[delivery] routes = %s: %s; create it "
			 "(`domain host:port` lines) or remove the key", path,
			 strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, fp) != NULL) {
		char dom[256], hp[300], opt[64];
		int k;
		int tls = CONFIG_TLS_OFF;
		n++;
		line[strcspn(line, "#\r\n")] = '\0';
		opt[0] = '\0';
		k = sscanf(line, "%255s %299s %63s", dom, hp, opt);
		if (k <= 0)
			continue;
		if (strcmp(opt, "tls=required") == 0)
			tls = CONFIG_TLS_REQUIRED;
		else if (strcmp(opt, "tls=verify") == 0)
			tls = CONFIG_TLS_VERIFY;
		if (k < 2 || (k == 3 && tls == CONFIG_TLS_OFF) ||
		    dest_route_add(ob, dom, hp, tls) != 0) {
			snprintf(err, size, "%s:%u: write `domain host:port` "
				 "(optionally `tls=required` or `tls=verify`; "
				 "smtps:host:port for implicit TLS), e.g. "
				 "`remote.test 127.0.0.1:2526`", path, n);
			fclose(fp);
			return -1;
		}
	}
	fclose(fp);
	return 0;
}

void
dest_routes_free(struct outbound *ob)
{
	for (size_t i = 0; i < ob->n_routes; i++) {
		free(ob->routes[i].domain);
		free(ob->routes[i].host);
	}
	free(ob->routes);
	ob->routes = NULL;
	ob->n_routes = 0;
	free(ob->relay.host);
	ob->relay.host = NULL;
}

/* What TLS d gets: [delivery] tls, raised by its route or relayhost. */
static void
dest_tls_set(const struct outbound *ob, struct dest *d,
	     const struct ob_route *rt)
{
	d->tls = ob->cfg->tls_out;
	d->is_implicit_tls = false;
	d->is_smarthost = false;
	if (rt != NULL) {
		if (rt->tls > d->tls)
			d->tls = rt->tls;
		d->is_implicit_tls = rt->is_implicit_tls;
		d->is_smarthost = rt == &ob->relay;
		/* A login is sent over TLS only. */
		if (d->is_smarthost && ob->cfg->relay_password != NULL &&
		    d->tls < CONFIG_TLS_REQUIRED)
			d->tls = CONFIG_TLS_REQUIRED;
	}
	if (d->kind == DEST_LMTP)
		d->tls = CONFIG_TLS_OFF;
}

static struct dest *
dest_get(struct outbound *ob, const char *key, enum dest_kind kind,
	 const char *host, uint16_t port, const struct ob_route *rt)
{
	unsigned h = ob_hash(key, OB_DEST_BUCKETS);
	struct dest *d;

	for (d = ob->dests[h]; d; d = d->hnext)
		if (strcmp(d->key, key) == 0)
			break;
	if (d != NULL) {
		dest_tls_set(ob, d, rt); /* a reload may have changed it */
		return d;
	}
	d = calloc(1, sizeof *d);
	if (d == NULL || (d->key = strdup(key)) == NULL) {
		free(d);
		return NULL;
	}
	d->kind = kind;
	str_set(d->host, sizeof d->host, host);
	d->port = port;
	dest_tls_set(ob, d, rt);
	d->ready_tail = &d->ready;
	d->hnext = ob->dests[h];
	ob->dests[h] = d;
	return d;
}

static const struct ob_route *
dest_route_find(const struct outbound *ob, const char *domain)
{
	const struct ob_route *star = NULL;

	for (size_t i = 0; i < ob->n_routes; i++) {
		if (strcasecmp(ob->routes[i].domain, domain) == 0)
			return &ob->routes[i];
		if (strcmp(ob->routes[i].domain, "*") == 0)
			star = &ob->routes[i];
	}
	return star;
}

struct dest *
dest_of(struct outbound *ob, const struct msg_rcpt *r)
{
	const struct config *cfg = ob->cfg;
	const char *at = strrchr(r->mailbox, '@');
	const char *domain = at ? at + 1 : "";
	char key[600], host[256];
	uint16_t port;
	const struct ob_route *rt;

	if (r->route == MSG_ROUTE_LOCAL && cfg->lmtp_target != NULL) {
		const char *t = cfg->lmtp_target;
		if (strncmp(t, "unix:", 5) == 0) {
			struct dest *d = dest_get(ob, "lmtp", DEST_LMTP, t + 5,
						  0, NULL);
			if (d != NULL)
				d->is_unix = true;
			return d;
		}
		if (!hostport_parse(t + 5, host, sizeof host, ROUTE_PORT_SMTP,
				    &port))
			return NULL;
		return dest_get(ob, "lmtp", DEST_LMTP, host, port, NULL);
	}
	if (ob->relay.host != NULL) {
		snprintf(key, sizeof key, "relay:%s:%u", ob->relay.host,
			 ob->relay.port);
		return dest_get(ob, key, DEST_RELAY, ob->relay.host,
				ob->relay.port, &ob->relay);
	}
	rt = dest_route_find(ob, domain);
	if (rt != NULL) {
		snprintf(key, sizeof key, "route:%s:%u", rt->host, rt->port);
		return dest_get(ob, key, DEST_RELAY, rt->host, rt->port, rt);
	}
	snprintf(key, sizeof key, "mx:%s", domain);
	for (char *p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return dest_get(ob, key, DEST_MX, key + 3,
			(uint16_t)cfg->delivery_mx_port, NULL);
}

void
dest_free_all(struct outbound *ob)
{
	for (size_t i = 0; i < OB_DEST_BUCKETS; i++) {
		struct dest *d = ob->dests[i], *next;
		for (; d; d = next) {
			next = d->hnext;
			free(d->dead);
			free(d->key);
			free(d);
		}
		ob->dests[i] = NULL;
	}
}
