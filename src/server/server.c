/*
 * server.c - building the server, running the loop, stopping cleanly.
 *
 * Start-up order: users table, spool (recovery hands every acknowledged
 * message not yet delivered to the delivery agent), delivery agent,
 * listeners.  SIGTERM or SIGINT: stop accepting, 421 4.3.2 to every
 * session not waiting for a commit (those get their 250 or 451 first, then
 * the 421), wait for the spool, finish delivery, exit.  A second signal,
 * or SERVER_STOP_SECONDS passing, cuts the wait for clients short; mail
 * already acknowledged is never dropped, it is in the spool.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/thread.h>

#include "policy/dns.h"
#include "policy/greylist.h"
#include "policy/authcheck.h"
#include "policy/milter.h"
#include "server/clients.h"
#include "server/sandbox.h"
#include "server/session.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/str.h"

#define SERVER_STOP_SECONDS 10
#define SERVER_ERR_MAX 1024

/* Recovered messages wait here until the delivery agent exists. */
struct recovered {
	struct msg **v;
	size_t n, cap;
};

static void
on_recovered(void *arg, struct msg *m)
{
	struct recovered *r = arg;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct msg **v = realloc(r->v, cap * sizeof(struct msg *));
		if (v == NULL) {
			/* Still in the spool: the next start delivers it. */
			msg_free(m);
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = m;
}

static struct server *
server_build(const struct config *cfg, bool sandbox, char *err, size_t size)
{
	struct server *srv = calloc(1, sizeof *srv);
	struct recovered rec = {0};
	struct sandbox_user user;

	if (srv == NULL) {
		snprintf(err, size, "out of memory");
		return NULL;
	}
	srv->cfg = cfg;
	srv->sid_next = ((uint64_t)time(NULL) << 20);
	srv->http_fd = -1;
	srv->stats.started = (int64_t)time(NULL);
	hist_init(&srv->stats.eod, HIST_EOD);
	memset(&user, 0, sizeof user);
	if (sandbox && sandbox_user_resolve(cfg, &user, err, size) != 0)
		goto fail;
	evthread_use_pthreads();
	srv->base = event_base_new();
	if (srv->base == NULL) {
		snprintf(err, size, "cannot create the event loop");
		goto fail;
	}
	srv->users = users_load(cfg->local_users, cfg->local_forwards, err,
				size);
	if (srv->users == NULL)
		goto fail;
	if (cfg->has_tls &&
	    (srv->tls_ctx = tls_server_ctx_new(cfg->tls_cert, cfg->tls_key,
					       err, size)) == NULL)
		goto fail;
	/* What needs root: directories, listeners, the control socket. */
	if (sandbox_prepare_dirs(cfg, &user, err, size) != 0 ||
	    listener_start(srv, err, size) != 0 ||
	    http_bind(srv, err, size) != 0 ||
	    ctl_start(srv, err, size) != 0 ||
	    (srv->ctl_listener != NULL &&
	     sandbox_give(cfg->control_socket, &user, err, size) != 0))
		goto fail;
	/* Then nothing of it: every thread starts after this. */
	if (sandbox && (sandbox_drop(&user, err, size) != 0 ||
			sandbox_landlock(cfg, err, size) != 0))
		goto fail;
	sandbox_check_reload_files(cfg, &user);
	srv->spool = spool_open(cfg->spool_dir, cfg->spool_segment_size,
				srv->base, on_recovered, &rec, err, size);
	if (srv->spool == NULL)
		goto fail;
	if (cfg->filter_milter[0] != '\0' &&
	    (srv->milter = milter_open(cfg, srv->base, err, size)) == NULL)
		goto fail;
	if ((cfg->dns_check_sender_domain || authcheck_is_on(cfg)) &&
	    (srv->dns = dns_open(cfg, srv->base, err, size)) == NULL)
		goto fail;
	if (authcheck_is_on(cfg) &&
	    (srv->authcheck = authcheck_open(cfg, srv->dns)) == NULL) {
		snprintf(err, size, "out of memory for [auth]");
		goto fail;
	}
	if (cfg->greylist_enabled &&
	    (srv->greylist = greylist_open(cfg, srv->base, err, size)) == NULL)
		goto fail;
	if (route_start(&srv->router, cfg, srv->users, srv->base, srv->spool,
			err, size) != 0)
		goto fail;
	if (rec.n)
		log_msg(LOG_INFO, "ev=recovered messages=%zu", rec.n);
	for (size_t i = 0; i < rec.n; i++)
		route_committed(&srv->router, rec.v[i]);
	free(rec.v);
	rec.v = NULL;
	rec.n = 0;
	route_ready(&srv->router);
	if (route_pickup_start(&srv->router, err, size) != 0 ||
	    http_start(srv, err, size) != 0 ||
	    (sandbox && sandbox_seccomp(err, size) != 0))
		goto fail;
	return srv;
fail:
	for (size_t i = 0; i < rec.n; i++)
		msg_free(rec.v[i]);
	free(rec.v);
	server_free(srv);
	return NULL;
}

struct server *
server_new(const struct config *cfg, char *err, size_t size)
{
	return server_build(cfg, true, err, size);
}

struct server *
server_new_embedded(const struct config *cfg, char *err, size_t size)
{
	return server_build(cfg, false, err, size);
}

#define SERVER_STOP_TICK_USEC 50000

/* Ticks while stopping: exit once sessions and commits are done. */
static void
on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval tick = {0, SERVER_STOP_TICK_USEC};

	(void)fd;
	(void)what;
	if (time(NULL) >= srv->stop_deadline) {
		/* Clients still talking lose their transaction in progress;
		 * commits already handed to the spool complete below. */
		for (struct session *s = srv->sessions, *next; s; s = next) {
			next = s->next;
			if (s->state != SESSION_COMMIT)
				session_free(s);
		}
	}
	if (srv->sessions == NULL && srv->commits_pending == 0 &&
	    srv->router.commits_pending == 0) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	event_add(srv->ev_stop_timer, &tick);
}

void
server_stop(struct server *srv)
{
	struct timeval tick = {0, SERVER_STOP_TICK_USEC};

	if (srv->is_stopping) {
		srv->stop_deadline = time(NULL); /* asked twice: now */
		return;
	}
	srv->is_stopping = true;
	sandbox_notify("STOPPING=1");
	srv->router.is_stopping = true;
	srv->stop_deadline = time(NULL) + SERVER_STOP_SECONDS;
	log_msg(LOG_INFO, "ev=stopping sessions=%zu", srv->n_sessions);
	listener_stop(srv);
	ctl_stop(srv);
	http_stop(srv);
	for (struct session *s = srv->sessions, *next; s; s = next) {
		next = s->next;
		session_shutdown(s);
	}
	srv->ev_stop_timer = evtimer_new(srv->base, on_stop_timer, srv);
	if (srv->ev_stop_timer != NULL)
		event_add(srv->ev_stop_timer, &tick);
	else
		event_base_loopexit(srv->base, NULL);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	log_msg(LOG_INFO, "ev=signal signal=%d", (int)sig);
	server_stop(arg);
}

/* Keys read only at start-up: a reload that changes them says so. */
static const enum config_key restart_keys[] = {
	CONFIG_server_smtp,	     CONFIG_server_submission,
	CONFIG_server_smtps,	     CONFIG_spool_dir,
	CONFIG_control_socket,	     CONFIG_local_maildir,
	CONFIG_greylist_enabled,     CONFIG_greylist_store,
	CONFIG_dns_check_sender_domain, CONFIG_dns_servers,
	CONFIG_filter_milter,	     CONFIG_local_lmtp,
	CONFIG_delivery_tls,	     CONFIG_auth_spf,
	CONFIG_auth_dkim,	     CONFIG_auth_dmarc,
};

static void
note_restart_keys(const struct config *old, const struct config *new)
{
	for (size_t i = 0; i < sizeof restart_keys / sizeof *restart_keys;
	     i++) {
		enum config_key k = restart_keys[i];
		if (config_value_differs(old, new, k))
			log_msg(LOG_WARN, "ev=reload_needs_restart key=%s",
				config_key_name(k));
	}
}

/* Logs each line of a config error text. */
static void
log_config_errors(char *errors)
{
	char *save = NULL;

	for (char *line = strtok_r(errors, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		log_msg(LOG_ERR, "ev=reload_failed part=config error=%s",
			log_q(line));
}

static int
reload(struct server *srv)
{
	char err[SERVER_ERR_MAX], *errors = NULL;
	struct config *cfg = config_load(srv->cfg->path, &errors);
	struct config **kept;
	struct users *users;
	SSL_CTX *ctx = NULL;

	if (cfg == NULL) {
		log_config_errors(errors);
		free(errors);
		return -1;
	}
	users = users_load(cfg->local_users, cfg->local_forwards, err,
			   sizeof err);
	if (users == NULL)
		log_msg(LOG_ERR, "ev=reload_failed part=users error=%s",
			log_q(err));
	if (users != NULL && cfg->has_tls &&
	    (ctx = tls_server_ctx_new(cfg->tls_cert, cfg->tls_key, err,
				      sizeof err)) == NULL)
		log_msg(LOG_ERR, "ev=reload_failed part=tls error=%s",
			log_q(err));
	kept = realloc(srv->old_cfgs,
		       (srv->n_old_cfgs + 1) * sizeof(struct config *));
	if (users != NULL && (!cfg->has_tls || ctx != NULL) && kept != NULL &&
	    route_reload(&srv->router, cfg, err, sizeof err) != 0) {
		log_msg(LOG_ERR, "ev=reload_failed part=routes error=%s",
			log_q(err));
		users_free(users);
		users = NULL;
	}
	if (users == NULL || (cfg->has_tls && ctx == NULL) || kept == NULL) {
		users_free(users);
		SSL_CTX_free(ctx);
		config_free(cfg);
		if (kept != NULL)
			srv->old_cfgs = kept;
		return -1; /* all or nothing: the old config stays */
	}
	note_restart_keys(srv->cfg, cfg);
	/* Workers started with the old config keep reading it. */
	srv->old_cfgs = kept;
	srv->old_cfgs[srv->n_old_cfgs++] = cfg;
	srv->cfg = cfg;
	users_free(srv->users);
	srv->users = users;
	route_set_config(&srv->router, cfg, users);
	authcheck_set_config(srv->authcheck, cfg);
	if (ctx != NULL) {
		SSL_CTX_free(srv->tls_ctx);
		srv->tls_ctx = ctx;
	}
	log_set_level(config_log_level(cfg));
	log_msg(LOG_INFO, "ev=reload users=%zu", users_count(srv->users));
	return 0;
}

int
server_reload(struct server *srv)
{
	int r;

	sandbox_notify("RELOADING=1");
	r = reload(srv);
	sandbox_notify("READY=1");
	return r;
}

/*
 * SIGHUP (and postern ctl reload): read the config, the users and
 * forwards files and the TLS certificate and key again, without dropping
 * a session (a session in TLS keeps the context it started with; OpenSSL
 * counts the references).  Anything that fails to load leaves the old
 * config in place, whole.  Limits, timeouts, hostname, policy settings
 * take effect at once; listeners, the spool, the mailbox path and the
 * workers' settings wait for a restart, and the log names those keys.
 */
static void
on_reload(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	server_reload(arg);
}

int
server_run(struct server *srv)
{
	srv->ev_term = evsignal_new(srv->base, SIGTERM, on_signal, srv);
	srv->ev_int = evsignal_new(srv->base, SIGINT, on_signal, srv);
	srv->ev_hup = evsignal_new(srv->base, SIGHUP, on_reload, srv);
	event_add(srv->ev_hup, NULL);
	signal(SIGPIPE, SIG_IGN);
	event_add(srv->ev_term, NULL);
	event_add(srv->ev_int, NULL);
	log_msg(LOG_INFO, "ev=started version=%s hostname=%s", POSTERN_VERSION,
		srv->cfg->server_hostname);
	sandbox_notify("READY=1");
	/* One turn of the loop at a time: the log lines of a turn go out in
	 * one write when it ends, before the loop waits again. */
	log_buffer(true);
	while (event_base_loop(srv->base, EVLOOP_ONCE) == 0) {
		log_flush();
		if (event_base_got_exit(srv->base) ||
		    event_base_got_break(srv->base))
			break;
	}
	log_buffer(false);
	log_msg(LOG_INFO, "ev=stopped queued=%llu",
		(unsigned long long)srv->n_queued +
			(unsigned long long)srv->router.n_queued);
	return 0;
}

void
server_free(struct server *srv)
{
	if (srv == NULL)
		return;
	listener_stop(srv);
	http_stop(srv);
	ctl_free(srv);
	while (srv->sessions)
		session_free(srv->sessions);
	greylist_close(srv->greylist);
	authcheck_close(srv->authcheck);
	dns_close(srv->dns);
	milter_close(srv->milter);
	/* Pickup, sending and delivery stop before the spool closes.  The
	 * loop ended with no commit in flight (server_stop waits for them);
	 * one that still completes in spool_close finds no delivery agent
	 * and stays in the spool for the next start. */
	route_stop(&srv->router);
	spool_close(srv->spool);
	users_free(srv->users);
	clients_free(srv);
	for (size_t i = 0; i < srv->n_old_cfgs; i++)
		config_free(srv->old_cfgs[i]);
	free(srv->old_cfgs);
	if (srv->tls_ctx)
		SSL_CTX_free(srv->tls_ctx);
	if (srv->ev_term)
		event_free(srv->ev_term);
	if (srv->ev_int)
		event_free(srv->ev_int);
	if (srv->ev_hup)
		event_free(srv->ev_hup);
	if (srv->ev_stop_timer)
		event_free(srv->ev_stop_timer);
	if (srv->base)
		event_base_free(srv->base);
	free(srv);
}
