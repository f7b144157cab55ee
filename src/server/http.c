/*
 * http.c - [http] listen: libevent's evhttp on the server's own loop (no
 * second process, no thread) serving
 *
 *	/metrics      the Prometheus text format 0.0.4, prefix postern_
 *	/             the status page (server/status_page.c), HTML
 *	/api/status, /api/replies, /api/queue   the same data as JSON
 *
 * Bound with the SMTP listeners, before privileges are dropped; served
 * once the router is up.  On a loopback address anyone on the machine
 * may read it (as `postern queue` reads the control socket's owner's
 * view); on any other address the connection is TLS ([tls] cert and key,
 * config.c insists) and every request needs an HTTP Basic login of the
 * users file, checked with crypt_r - once per ten minutes per credential,
 * not on every scrape: the last good Authorization value is kept.
 *
 * Everything is computed at request time from counters the loop thread
 * keeps (server_stats, outbound, spool, deliver): a scrape costs a
 * formatting pass, the hot paths only plain increments.
 */
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "deliver/deliver.h"
#include "outbound/outbound.h"
#include "server/server.h"
#include "server/status_page.h"
#include "util/log.h"
#include "util/prom.h"
#include "util/str.h"

#define HTTP_TIMEOUT_SECONDS 30
#define HTTP_AUTH_CACHE_SECONDS 600
#define HTTP_AUTH_MAX 512
#define HTTP_BACKLOG 64

struct http {
	struct server *srv;
	struct evhttp *eh;
	char auth_ok[HTTP_AUTH_MAX]; /* the last Authorization that passed */
	int64_t auth_until;
};

int
http_bind(struct server *srv, char *err, size_t size)
{
	const struct config *cfg = srv->cfg;
	struct sockaddr_storage ss;
	int len = (int)sizeof ss, one = 1;
	evutil_socket_t fd;

	srv->http_fd = -1;
	if (cfg->http_listen[0] == '\0')
		return 0;
	if (evutil_parse_sockaddr_port(cfg->http_listen, (struct sockaddr *)&ss,
				       &len) != 0) {
		snprintf(err, size, "[http] listen = %s: write host:port",
			 cfg->http_listen);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, (socklen_t)len) != 0 ||
	    listen(fd, HTTP_BACKLOG) != 0) {
		snprintf(err, size, "[http] listen = %s: cannot listen: %s; "
			 "is another program on that port?", cfg->http_listen,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	srv->http_fd = fd;
	return 0;
}

/* -- /metrics ---------------------------------------------------------- */

static void
counter(FILE *fp, const char *name, const char *help, uint64_t v)
{
	prom_help_type(fp, name, help, PROM_COUNTER);
	prom_sample_u64(fp, name, NULL, 0, v);
}

static void
gauge(FILE *fp, const char *name, const char *help, double v)
{
	prom_help_type(fp, name, help, PROM_GAUGE);
	prom_sample_f64(fp, name, NULL, 0, v);
}

static void
metrics_replies(FILE *fp, const struct server_stats *st)
{
	prom_help_type(fp, "postern_replies_total",
		       "SMTP replies sent, by code, enhanced code and reason "
		       "(the words of the log's reason=)",
		       PROM_COUNTER);
	for (size_t id = 0; id < REPLY_COUNT; id++) {
		const struct reply_row *r = reply_row((enum reply_id)id);
		char code[8];
		struct prom_label l[3];
		if (st->replies[id] == 0)
			continue;
		snprintf(code, sizeof code, "%d", r->code);
		l[0] = (struct prom_label){"code", code};
		l[1] = (struct prom_label){"enhanced",
					   r->enhanced ? r->enhanced : ""};
		l[2] = (struct prom_label){"reason",
					   reply_reason((enum reply_id)id)};
		prom_sample_u64(fp, "postern_replies_total", l, 3,
				st->replies[id]);
	}
}

static void
metrics_queue(FILE *fp, const struct outbound_metrics *om)
{
	static const char *const states[] = {"queued", "active", "deferred",
					     "held", "bouncing"};
	size_t v[] = {om->queued, om->active, om->waiting, om->held,
		      om->bouncing};

	prom_help_type(fp, "postern_queue_recipients",
		       "recipients in the outgoing queue, by state",
		       PROM_GAUGE);
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		struct prom_label l = {"state", states[i]};
		prom_sample_u64(fp, "postern_queue_recipients", &l, 1, v[i]);
	}
	prom_help_type(fp, "postern_queue_destination_recipients",
		       "recipients in the outgoing queue, by destination (the "
		       "top 10, the rest as other)",
		       PROM_GAUGE);
	for (size_t i = 0; i < om->n_top; i++) {
		struct prom_label l = {"destination", om->top[i].destination};
		prom_sample_u64(fp, "postern_queue_destination_recipients", &l,
				1, om->top[i].recipients);
	}
	{
		struct prom_label l = {"destination", "other"};
		prom_sample_u64(fp, "postern_queue_destination_recipients", &l,
				1, om->other_recipients);
	}
}

static char *
metrics_text(struct server *srv, size_t *len_out)
{
	const struct server_stats *st = &srv->stats;
	struct outbound_metrics *om = calloc(1, sizeof *om);
	struct hist fsync;
	uint64_t free_bytes = 0;
	char *text = NULL;
	size_t size = 0;
	FILE *fp;

	if (om == NULL || (fp = open_memstream(&text, &size)) == NULL) {
		free(om);
		return NULL;
	}
	if (srv->router.outbound != NULL)
		outbound_metrics(srv->router.outbound, om);
	else
		hist_init(&om->delivery, HIST_DELIVERY);
	prom_help_type(fp, "postern_build_info", "the running version",
		       PROM_GAUGE);
	{
		struct prom_label l = {"version", POSTERN_VERSION};
		prom_sample_u64(fp, "postern_build_info", &l, 1, 1);
	}
	gauge(fp, "postern_uptime_seconds", "seconds since the start",
	      (double)(time(NULL) - st->started));
	counter(fp, "postern_sessions_opened_total",
		"SMTP sessions accepted since the start", st->sessions_opened);
	gauge(fp, "postern_sessions_open", "SMTP sessions open now",
	      (double)srv->n_sessions);
	metrics_replies(fp, st);
	counter(fp, "postern_messages_accepted_total",
		"messages acknowledged with 250 (SMTP) or queued by postern "
		"send, on disk",
		srv->n_queued + srv->router.n_queued);
	prom_help_type(fp, "postern_messages_delivered_total",
		       "recipients delivered: to a local mailbox, to the LMTP "
		       "server, to another host",
		       PROM_COUNTER);
	{
		struct prom_label l = {"via", "local"};
		prom_sample_u64(fp, "postern_messages_delivered_total", &l, 1,
				deliver_count(srv->router.deliver));
		l.value = "lmtp";
		prom_sample_u64(fp, "postern_messages_delivered_total", &l, 1,
				om->sent_lmtp);
		l.value = "remote";
		prom_sample_u64(fp, "postern_messages_delivered_total", &l, 1,
				om->sent_remote);
	}
	counter(fp, "postern_messages_deferred_total",
		"recipients deferred (a 4xx, or a local reason to wait)",
		om->deferred);
	counter(fp, "postern_messages_bounced_total",
		"recipients that failed for good (5xx, or the lifetime over)",
		om->bounced);
	metrics_queue(fp, om);
	if (srv->spool != NULL)
		(void)spool_free_space(srv->spool, &free_bytes);
	gauge(fp, "postern_spool_free_bytes",
	      "octets free on the spool's file system", (double)free_bytes);
	gauge(fp, "postern_spool_reserve_bytes",
	      "octets kept free: below, new mail gets 452 4.3.1",
	      (double)srv->cfg->spool_reserve);
	counter(fp, "postern_greylist_hits_total",
		"recipients answered 450 4.2.0 (greylisted)",
		st->greylist_hits);
	prom_help_type(fp, "postern_tls_sessions_total",
		       "TLS handshakes completed on the SMTP ports, by version",
		       PROM_COUNTER);
	{
		static const char *const v[] = {"TLSv1.2", "TLSv1.3",
						"other"};
		for (size_t i = 0; i < 3; i++) {
			struct prom_label l = {"version", v[i]};
			prom_sample_u64(fp, "postern_tls_sessions_total", &l, 1,
					st->tls_sessions[i]);
		}
	}
	hist_init(&fsync, HIST_FSYNC);
	if (srv->spool != NULL)
		spool_fsync_hist(srv->spool, &fsync);
	prom_help_type(fp, "postern_spool_fsync_seconds",
		       "the spool's group-commit fdatasync", PROM_HISTOGRAM);
	prom_hist(fp, "postern_spool_fsync_seconds", NULL, 0, &fsync);
	prom_help_type(fp, "postern_data_to_reply_seconds",
		       "end of DATA (or BDAT LAST) to the 250 after the fsync",
		       PROM_HISTOGRAM);
	prom_hist(fp, "postern_data_to_reply_seconds", NULL, 0, &st->eod);
	prom_help_type(fp, "postern_delivery_seconds",
		       "one delivery attempt to LMTP or another host: taken "
		       "by a connection to its outcome",
		       PROM_HISTOGRAM);
	prom_hist(fp, "postern_delivery_seconds", NULL, 0, &om->delivery);
	free(om);
	if (fclose(fp) != 0) {
		free(text);
		return NULL;
	}
	*len_out = size;
	return text;
}

/* -- the status page's data -------------------------------------------- */

/* A row's text with its arguments shown as "...", for a row whose
 * lines are not kept (2xx, 3xx). */
static void
template_line(char *buf, size_t size, const struct reply_row *r)
{
	size_t o = (size_t)snprintf(buf, size, "%d%s%s ", r->code,
				    r->enhanced ? " " : "",
				    r->enhanced ? r->enhanced : "");

	for (const char *p = r->text; *p && o + 4 < size; p++) {
		if (*p == '%' && p[1] != '\0') {
			p++;
			while (*p && strchr("0123456789.lz", *p) && p[1])
				p++;
			o += (size_t)snprintf(buf + o, size - o, "...");
			continue;
		}
		buf[o++] = *p;
	}
	buf[o < size ? o : size - 1] = '\0';
}

/* The view of now: the last hour's replies, the queue by destination. */
static struct status_view *
view_make(struct server *srv, struct outbound_metrics *om)
{
	const struct server_stats *st = &srv->stats;
	struct status_view *v = calloc(1, sizeof *v);
	struct status_reply *rows = calloc(REPLY_COUNT, sizeof *rows);
	struct status_dest *dests = calloc(OUTBOUND_TOP_DESTS, sizeof *dests);
	int64_t now = (int64_t)time(NULL), cur = now / 60;
	size_t n = 0;

	if (v == NULL || rows == NULL || dests == NULL) {
		free(v);
		free(rows);
		free(dests);
		return NULL;
	}
	v->hostname = srv->cfg->server_hostname;
	v->version = POSTERN_VERSION;
	v->now = now;
	v->started = st->started;
	v->sessions_open = srv->n_sessions;
	for (size_t id = 0; id < REPLY_COUNT; id++) {
		const struct reply_row *r = reply_row((enum reply_id)id);
		uint64_t count = 0;
		for (size_t m = 0; m < STATS_MINUTES; m++) {
			int64_t age = cur - st->minute_of[m];
			if (st->minute_of[m] == 0 || age < 0 ||
			    age >= STATS_MINUTES || st->minute[m][id] == 0)
				continue;
			count += st->minute[m][id];
			v->minute[STATS_MINUTES - 1 - age]
				 [r->code / 100 == 5 ? 2
				  : r->code / 100 == 4 ? 1
						       : 0] += st->minute[m][id];
		}
		if (count == 0)
			continue;
		rows[n].code = (unsigned)r->code;
		str_set(rows[n].enhanced, sizeof rows[n].enhanced,
			r->enhanced ? r->enhanced : "");
		str_set(rows[n].reason, sizeof rows[n].reason,
			reply_reason((enum reply_id)id));
		if (st->last_line[id][0] != '\0')
			str_set(rows[n].line, sizeof rows[n].line,
				st->last_line[id]);
		else
			template_line(rows[n].line, sizeof rows[n].line, r);
		rows[n].count = count;
		n++;
	}
	v->replies = rows;
	v->n_replies = n;
	if (srv->router.outbound != NULL)
		outbound_metrics(srv->router.outbound, om);
	for (size_t i = 0; i < om->n_top; i++) {
		str_set(dests[i].destination, sizeof dests[i].destination,
			om->top[i].destination);
		dests[i].recipients = om->top[i].recipients;
		str_set(dests[i].last_reply, sizeof dests[i].last_reply,
			om->top[i].last);
		dests[i].next_try = om->top[i].next_try;
	}
	v->dests = dests;
	v->n_dests = om->n_top;
	return v;
}

static void
view_free(struct status_view *v)
{
	if (v == NULL)
		return;
	free((void *)v->replies);
	free((void *)v->dests);
	free(v);
}

/* -- serving ----------------------------------------------------------- */

/* HTTP Basic against the users file; the last good value is kept. */
static bool
is_authorized(struct http *h, struct evhttp_request *req)
{
	const char *a = evhttp_find_header(evhttp_request_get_input_headers(req),
					   "Authorization");
	unsigned char dec[HTTP_AUTH_MAX];
	char user[HTTP_AUTH_MAX];
	const char *hash, *colon, *out;
	struct crypt_data *cd;
	int64_t now = (int64_t)time(NULL);
	size_t alen;
	int n;
	bool is_ok;

	if (h->srv->cfg->http_is_loopback)
		return true;
	if (a == NULL || strncasecmp(a, "Basic ", 6) != 0)
		return false;
	alen = strlen(a);
	if (alen >= HTTP_AUTH_MAX)
		return false;
	if (now < h->auth_until && strlen(h->auth_ok) == alen &&
	    CRYPTO_memcmp(h->auth_ok, a, alen) == 0)
		return true;
	n = EVP_DecodeBlock(dec, (const unsigned char *)a + 6,
			    (int)strlen(a + 6));
	if (n <= 0)
		return false;
	while (n > 0 && dec[n - 1] == '\0')
		n--; /* EVP_DecodeBlock counts the padding */
	dec[n] = '\0';
	colon = strchr((const char *)dec, ':');
	if (colon == NULL ||
	    !str_copy(user, sizeof user, (const char *)dec,
		      (size_t)(colon - (const char *)dec)) ||
	    (hash = users_hash(h->srv->users, user)) == NULL ||
	    (cd = calloc(1, sizeof *cd)) == NULL) {
		OPENSSL_cleanse(dec, sizeof dec);
		return false;
	}
	out = crypt_r(colon + 1, hash, cd);
	is_ok = out != NULL && out[0] != '*' && strlen(out) == strlen(hash) &&
		CRYPTO_memcmp(out, hash, strlen(hash)) == 0;
	OPENSSL_cleanse(dec, sizeof dec);
	OPENSSL_cleanse(cd, sizeof *cd);
	free(cd);
	if (is_ok) {
		str_set(h->auth_ok, sizeof h->auth_ok, a);
		h->auth_until = now + HTTP_AUTH_CACHE_SECONDS;
	}
	log_msg(is_ok ? LOG_DEBUG : LOG_WARN, "ev=http_login user=%s ok=%s",
		log_q(user), is_ok ? "yes" : "no");
	return is_ok;
}

static void
reply_text(struct evhttp_request *req, int code, const char *reason,
	   const char *ctype, char *body, size_t len)
{
	struct evbuffer *out = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", ctype);
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Cache-Control", "no-store");
	if (out != NULL && body != NULL)
		evbuffer_add(out, body, len);
	evhttp_send_reply(req, code, reason, out);
	if (out != NULL)
		evbuffer_free(out);
	free(body);
}

/* A short text answer (401, 404). */
static void
reply_msg(struct evhttp_request *req, int code, const char *reason,
	  const char *msg)
{
	char *body = strdup(msg);

	reply_text(req, code, reason, "text/plain; charset=utf-8", body,
		   body ? strlen(body) : 0);
}

#define HTTP_NOT_FOUND                                                      \
	"no such page: try /, /metrics, /api/status, /api/replies or "      \
	"/api/queue\n"

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *lang = status_lang(evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Accept-Language"));
	char *body = NULL;
	size_t len = 0;

	if (!is_authorized(h, req)) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "WWW-Authenticate",
				  "Basic realm=\"postern\", charset=\"UTF-8\"");
		reply_msg(req, 401, "Unauthorized",
			  "log in with a user of the users file\n");
		return;
	}
	if (path == NULL || path[0] == '\0')
		path = "/";
	if (strcmp(path, "/metrics") == 0) {
		body = metrics_text(h->srv, &len);
		reply_text(req, body ? 200 : 500, body ? "OK" : "Error",
			   "text/plain; version=0.0.4; charset=utf-8", body,
			   len);
		return;
	}
	if (strcmp(path, "/") == 0 || strncmp(path, "/api/", 5) == 0) {
		struct outbound_metrics *om = calloc(1, sizeof *om);
		struct status_view *v = om ? view_make(h->srv, om) : NULL;
		bool is_page = strcmp(path, "/") == 0;
		const char *which = is_page ? NULL : path + 5;
		if (v != NULL && is_page)
			body = status_page_html(v, lang);
		else if (v != NULL && (strcmp(which, "status") == 0 ||
				       strcmp(which, "replies") == 0 ||
				       strcmp(which, "queue") == 0))
			body = status_json(v, which, lang);
		else if (v != NULL) {
			view_free(v);
			free(om);
			reply_msg(req, 404, "Not Found", HTTP_NOT_FOUND);
			return;
		}
		view_free(v);
		free(om);
		reply_text(req, body ? 200 : 500, body ? "OK" : "Error",
			   is_page ? "text/html; charset=utf-8"
				   : "application/json; charset=utf-8",
			   body, body ? strlen(body) : 0);
		return;
	}
	reply_msg(req, 404, "Not Found", HTTP_NOT_FOUND);
}

static struct bufferevent *
tls_bev(struct event_base *base, void *arg)
{
	struct http *h = arg;
	SSL *ssl = SSL_new(h->srv->tls_ctx);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl,
					      BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
}

int
http_start(struct server *srv, char *err, size_t size)
{
	struct http *h;

	if (srv->http_fd < 0)
		return 0;
	h = calloc(1, sizeof *h);
	if (h == NULL || (h->eh = evhttp_new(srv->base)) == NULL) {
		free(h);
		snprintf(err, size, "cannot start the HTTP server: out of "
			 "memory");
		return -1;
	}
	h->srv = srv;
	evhttp_set_allowed_methods(h->eh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(h->eh, HTTP_TIMEOUT_SECONDS);
	evhttp_set_gencb(h->eh, on_request, h);
	if (!srv->cfg->http_is_loopback && srv->tls_ctx != NULL)
		evhttp_set_bevcb(h->eh, tls_bev, h);
	if (evhttp_accept_socket(h->eh, srv->http_fd) != 0) {
		snprintf(err, size, "[http] listen = %s: cannot serve it",
			 srv->cfg->http_listen);
		evhttp_free(h->eh);
		free(h);
		return -1;
	}
	srv->http_fd = -1; /* evhttp owns it now */
	srv->http = h;
	log_msg(LOG_INFO, "ev=http_listen address=%s tls=%s",
		log_q(srv->cfg->http_listen),
		srv->cfg->http_is_loopback ? "no" : "yes");
	return 0;
}

void
http_stop(struct server *srv)
{
	if (srv->http != NULL) {
		evhttp_free(srv->http->eh);
		free(srv->http);
		srv->http = NULL;
	}
	if (srv->http_fd >= 0) {
		close(srv->http_fd);
		srv->http_fd = -1;
	}
}
