/*
 * server.h - the server's context: everything mutable lives here.
 *
 * One process, one libevent base, every session on it (no thread or
 * process per session).  The spool committer and the delivery agent are
 * worker threads reporting back through the base.  A session reaches the
 * context through s->srv.
 */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config/config.h"
#include "policy/users.h"
#include "route/route.h"
#include "spool/spool.h"
#include "reply/reply.h"
#include "tls/tls.h"
#include "util/hist.h"

struct session;
struct client_stat;
struct greylist;
struct dns;
struct milter;
struct authcheck;
struct ctl_conn;

/* A listening socket and what it speaks. */
struct server_listener {
	struct evconnlistener *l;
	struct server *srv;
	enum config_listen_kind kind;
};

#define SERVER_CLIENT_BUCKETS 4096

/* What /metrics and the status page show of the receiving side; plain
 * counters, written and read on the loop thread only. */
#define STATS_MINUTES 60
#define STATS_LINE_MAX 160
struct server_stats {
	int64_t started; /* Unix seconds */
	uint64_t sessions_opened;
	uint64_t replies[REPLY_COUNT];
	/* The last hour: per minute (minute_of: its Unix minute), the
	 * replies sent of each row. */
	int64_t minute_of[STATS_MINUTES];
	uint32_t minute[STATS_MINUTES][REPLY_COUNT];
	uint64_t tls_sessions[3]; /* TLSv1.2, TLSv1.3, other */
	uint64_t greylist_hits;	  /* RCPTs answered "greylisted" */
	/* The last 4xx/5xx line sent of each row, for the status page. */
	char last_line[REPLY_COUNT][STATS_LINE_MAX];
	struct hist eod;	  /* end of DATA/BDAT LAST -> the 250 */
};

/* One reply sent (line: as sent, CRLF and all): counted overall and in
 * its minute; a refusal's line is kept. */
void stats_reply(struct server_stats *st, enum reply_id id, int64_t now,
		 const char *line, size_t len);
/* CLOCK_MONOTONIC in seconds, for durations. */
double stats_now(void);

struct server {
	const struct config *cfg; /* the current one (a reload swaps it) */
	struct config **old_cfgs; /* configs reloads made, freed at the end */
	size_t n_old_cfgs;
	struct users *users;
	struct event_base *base;
	struct server_listener listeners[CONFIG_LISTEN_MAX];
	size_t n_listeners;
	SSL_CTX *tls_ctx; /* NULL without [tls] cert and key */
	struct greylist *greylist; /* NULL unless [greylist] enabled */
	struct dns *dns;	   /* NULL unless check_sender_domain or [auth] */
	struct authcheck *authcheck; /* NULL unless [auth] spf, dkim or dmarc */
	struct milter *milter;	   /* NULL unless [filter] milter */
	struct spool *spool;
	/* Where committed mail goes: Maildir, LMTP, SMTP (route/). */
	struct router router;
	struct event *ev_term, *ev_int, *ev_hup;
	struct event *ev_stop_timer;
	/* Sessions, newest first. */
	struct session *sessions;
	size_t n_sessions;
	/* Per client address: sessions, AUTH failures, rate (clients.c). */
	struct client_stat *clients[SERVER_CLIENT_BUCKETS];
	size_t n_clients;
	bool is_maintenance;  /* new clients get 421 4.3.2 (postern ctl) */
	struct evconnlistener *ctl_listener;
	struct ctl_conn *ctl_conns;
	uint64_t sid_next;
	unsigned commits_pending; /* messages handed to the spool, no reply */
	bool is_stopping;
	time_t stop_deadline; /* then sessions still talking are dropped */
	/* Counters for the log at exit. */
	uint64_t n_accepted, n_refused, n_queued;
	struct server_stats stats;
	struct http *http; /* [http] listen, or NULL */
	evutil_socket_t http_fd; /* bound before the sandbox, -1 none */
};

/*
 * Builds the server for cfg (borrowed, must outlive it): loads the users,
 * opens and recovers the spool, starts delivery, binds the listeners,
 * then gives up what it no longer needs (sandbox.h: [server] user,
 * capabilities, Landlock, seccomp).
 * NULL with a message naming the fix in err on failure.
 */
struct server *server_new(const struct config *cfg, char *err, size_t size);

/* The same server inside a process that is not postern's own (the
 * in-process fuzzer, tests/fuzz/fuzz_session.c): the process keeps its
 * account, files and system calls - no drop, Landlock or filter. */
struct server *server_new_embedded(const struct config *cfg, char *err,
				   size_t size);

/* Runs the loop until SIGTERM/SIGINT and a clean stop; returns 0. */
int server_run(struct server *srv);

/* Frees srv; server_free(NULL) is a no-op. */
void server_free(struct server *srv);

/* Listener (listener.c): binds every [server] smtp address. */
int listener_start(struct server *srv, char *err, size_t size);
void listener_stop(struct server *srv);

/* Reads srv->cfg again where that is safe (SIGHUP, postern ctl reload):
 * users, forwards, the TLS certificate and key.  Returns 0 or -1. */
int server_reload(struct server *srv);

/* Starts the stop (SIGTERM, postern ctl stop). */
void server_stop(struct server *srv);

/* The control socket (ctl.c): start, stop listening, free connections. */
/* http.c: [http] listen - bound with the listeners (before the
 * sandbox), served once the router is up. */
int http_bind(struct server *srv, char *err, size_t size);
int http_start(struct server *srv, char *err, size_t size);
void http_stop(struct server *srv);

int ctl_start(struct server *srv, char *err, size_t size);
void ctl_stop(struct server *srv);
void ctl_free(struct server *srv);

#endif
