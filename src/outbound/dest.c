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
 * `tls=required`.  It is read at start; a bad line stops the start with
 * FILE:LINE and the fix.  Destinations live until the sending side stops:
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

/* "host:port", "[v6]:port" or "host" into host and port. */
static bool
hostport_parse(const char *s, char *host, size_t size, uint16_t *port_out)
{
	const char *colon;
	unsigned long port = ROUTE_PORT_SMTP;
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

static int
dest_route_add(struct outbound *ob, const char *domain, const char *hp,
	  bool is_tls)
{
	char host[256];
	uint16_t port;
	struct ob_route *v, *r;

	if (!hostport_parse(hp, host, sizeof host, &port))
		return -1;
	v = realloc(ob->routes, (ob->n_routes + 1) * sizeof *v);
	if (v == NULL)
		return -1;
	ob->routes = v;
	r = &v[ob->n_routes];
	r->domain = strdup(domain);
	r->host = strdup(host);
	r->port = port;
	r->is_tls_required = is_tls;
	if (r->domain == NULL || r->host == NULL) {
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
	char line[ROUTE_LINE_MAX];
	unsigned n = 0;
	FILE *fp;

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
		n++;
		line[strcspn(line, "#\r\n")] = '\0';
		opt[0] = '\0';
		k = sscanf(line, "%255s %299s %63s", dom, hp, opt);
		if (k <= 0)
			continue;
		if (k < 2 || (k == 3 && strcmp(opt, "tls=required") != 0) ||
		    dest_route_add(ob, dom, hp, k == 3) != 0) {
			snprintf(err, size, "%s:%u: write `domain host:port` "
				 "(optionally `tls=required`), e.g. "
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
}

static struct dest *
dest_get(struct outbound *ob, const char *key, enum dest_kind kind,
	 const char *host, uint16_t port, bool is_tls)
{
	unsigned h = ob_hash(key, OB_DEST_BUCKETS);
	struct dest *d;

	for (d = ob->dests[h]; d; d = d->hnext)
		if (strcmp(d->key, key) == 0)
			return d;
	d = calloc(1, sizeof *d);
	if (d == NULL || (d->key = strdup(key)) == NULL) {
		free(d);
		return NULL;
	}
	d->kind = kind;
	str_set(d->host, sizeof d->host, host);
	d->port = port;
	d->is_tls_required = is_tls || ob->cfg->tls_out == 2;
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
						  0, false);
			if (d != NULL)
				d->is_unix = true;
			return d;
		}
		if (!hostport_parse(t + 5, host, sizeof host, &port))
			return NULL;
		return dest_get(ob, "lmtp", DEST_LMTP, host, port, false);
	}
	if (cfg->delivery_relayhost[0] != '\0') {
		if (!hostport_parse(cfg->delivery_relayhost, host, sizeof host,
				    &port))
			return NULL;
		snprintf(key, sizeof key, "relay:%s:%u", host, port);
		return dest_get(ob, key, DEST_RELAY, host, port, false);
	}
	rt = dest_route_find(ob, domain);
	if (rt != NULL) {
		snprintf(key, sizeof key, "route:%s:%u", rt->host, rt->port);
		return dest_get(ob, key, DEST_RELAY, rt->host, rt->port,
				rt->is_tls_required);
	}
	snprintf(key, sizeof key, "mx:%s", domain);
	for (char *p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return dest_get(ob, key, DEST_MX, key + 3,
			(uint16_t)cfg->delivery_mx_port, false);
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
