/*
 * clients.h - what the server remembers per client address: sessions open
 * now, recent AUTH failures, and connections in the current rate window.
 * Internal to server/; loop thread only.
 */
#ifndef POSTERN_CLIENTS_H
#define POSTERN_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct server;

struct client_stat {
	struct client_stat *next;
	unsigned sessions;	/* open now */
	unsigned auth_failures; /* within CLIENT_AUTH_WINDOW of auth_last */
	time_t auth_last;
	unsigned rate_count; /* connections since rate_start */
	time_t rate_start;
	char ip[64];
};

/* Seconds an AUTH failure is remembered. */
#define CLIENT_AUTH_WINDOW 600
/* Client addresses remembered at most; past it new ones are not tracked. */
#define CLIENT_TABLE_MAX 65536

/*
 * The record of ip, made when create is true; NULL when absent or the
 * table is full.  Counters whose window has passed read as zero.  Valid
 * until the next clients_* call.
 */
struct client_stat *clients_get(struct server *srv, const char *ip,
				bool create);

/* Drops ip's record when nothing in it matters any more. */
void clients_release(struct server *srv, const char *ip);

/* Frees the whole table (server_free). */
void clients_free(struct server *srv);

#endif
