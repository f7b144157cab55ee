/*
 * clients.c - the per-client-address table: a hash of small records.
 *
 * Used by session.c (sessions per client, max_connections_per_client;
 * connection rate, max_connection_rate) and session_cmd_auth.c (AUTH
 * failures).  A record lives while a session of that address is open or
 * one of its windows still counts, and the table never holds more than
 * CLIENT_TABLE_MAX records, so a flood of addresses cannot grow it.
 */
#include <stdlib.h>
#include <string.h>

#include "server/clients.h"
#include "server/server.h"
#include "util/str.h"

static size_t
bucket(const char *ip)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *ip; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % SERVER_CLIENT_BUCKETS;
}

/* Zeroes counters whose window is over. */
static void
age(const struct server *srv, struct client_stat *c, time_t now)
{
	if (c->auth_failures && now - c->auth_last > CLIENT_AUTH_WINDOW)
		c->auth_failures = 0;
	if (c->rate_count && now - c->rate_start >= srv->cfg->rate_window)
		c->rate_count = 0;
}

static bool
is_idle(const struct client_stat *c)
{
	return c->sessions == 0 && c->auth_failures == 0 && c->rate_count == 0;
}

struct client_stat *
clients_get(struct server *srv, const char *ip, bool create)
{
	struct client_stat **pp = &srv->clients[bucket(ip)], *c;
	time_t now = time(NULL);

	while ((c = *pp) != NULL) {
		age(srv, c, now);
		if (strcmp(c->ip, ip) == 0)
			return c;
		if (is_idle(c)) { /* tidy the chain on the way */
			*pp = c->next;
			free(c);
			srv->n_clients--;
			continue;
		}
		pp = &c->next;
	}
	if (!create || srv->n_clients >= CLIENT_TABLE_MAX ||
	    (c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	str_set(c->ip, sizeof c->ip, ip);
	c->next = srv->clients[bucket(ip)];
	srv->clients[bucket(ip)] = c;
	srv->n_clients++;
	return c;
}

void
clients_release(struct server *srv, const char *ip)
{
	struct client_stat **pp = &srv->clients[bucket(ip)], *c;

	for (; (c = *pp) != NULL; pp = &c->next) {
		if (strcmp(c->ip, ip) != 0)
			continue;
		age(srv, c, time(NULL));
		if (is_idle(c)) {
			*pp = c->next;
			free(c);
			srv->n_clients--;
		}
		return;
	}
}

void
clients_free(struct server *srv)
{
	for (size_t i = 0; i < SERVER_CLIENT_BUCKETS; i++)
		while (srv->clients[i]) {
			struct client_stat *c = srv->clients[i];
			srv->clients[i] = c->next;
			free(c);
		}
	srv->n_clients = 0;
}
