/*
 * tlsrpt.c - the daily SMTP TLS reports (RFC 8460): once a day is over
 * (UTC), each recipient domain the sending side counted TLS sessions
 * with gets that day's report, at the addresses its _smtp._tls TXT
 * record names.  A mailto: rua gets a message from the null sender,
 * multipart/report; report-type="tlsrpt", the JSON gzip'd as its
 * attachment (5.3), signed like our bounces when [dkim] has a key for
 * the From: domain; an https: rua gets the gzip'd JSON POSTed (5.2).  A
 * domain without the record is marked done; a lookup that fails is
 * tried at the next tick.  `postern ctl tls-report send` sends what is
 * due now, today's counts included (for a test, or before a shutdown).
 *
 * The counting is policy/tlsreport.c's; this file composes and queues.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zlib.h>

#include "auth/tlsrpt.h"
#include "policy/tlspolicy.h"
#include "route/route_int.h"
#include "util/log.h"
#include "util/str.h"

#define TLSRPT_TICK_SECONDS 900 /* how often due reports are looked for */
#define TLSRPT_BATCH 64		/* reports started per tick at most */
#define TLSRPT_B64_LINE 57	/* input octets per 76-character line */

struct rpt {
	struct router *r;
	char day[16];
	char domain[256];
};

/* json gzip'd (RFC 1952, zlib's gzip wrapper); NULL when out of memory. */
static unsigned char *
gzip_json(const char *json, size_t len, size_t *out_len)
{
	z_stream z = {0};
	uLong bound;
	unsigned char *out;

	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	bound = deflateBound(&z, (uLong)len);
	out = malloc(bound);
	if (out == NULL) {
		deflateEnd(&z);
		return NULL;
	}
	z.next_in = (unsigned char *)json;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)bound;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(out);
		return NULL;
	}
	*out_len = z.total_out;
	deflateEnd(&z);
	return out;
}

/* The report message (RFC 8460 5.3), CRLF lines; NULL: out of memory. */
static char *
compose(const struct router *r, const struct rpt *p, const char *rcpt,
	const unsigned char *gz, size_t gz_len, size_t *len_out)
{
	const struct config *cfg = r->cfg;
	const char *host = cfg->server_hostname;
	const char *from_dom = cfg->n_domains > 0 ? cfg->domains[0] : host;
	char date[64], id[600], boundary[48], subject[900], fname[900];
	char uniq[16];
	unsigned char rnd[12];
	time_t now = time(NULL);
	struct tm tm, day = {0};
	char *out = NULL;
	size_t size = 0;
	FILE *fp = open_memstream(&out, &size);
	char line[80];

	if (fp == NULL)
		return NULL;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		memset(rnd, 0, sizeof rnd);
	snprintf(boundary, sizeof boundary, "tlsrpt-%02x%02x%02x%02x%02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	snprintf(id, sizeof id, "%s.%s@%s", p->day, p->domain, host);
	(void)strptime(p->day, "%Y-%m-%d", &day);
	strftime(uniq, sizeof uniq, "%Y%m%d", &day);
	if (!tlsrpt_subject(subject, sizeof subject, p->domain, host, id) ||
	    !tlsrpt_filename(fname, sizeof fname, host, p->domain,
			     (int64_t)timegm(&day), (int64_t)timegm(&day) + 86399,
			     uniq, true)) {
		fclose(fp);
		free(out);
		return NULL;
	}
	fprintf(fp,
		"From: TLS reports <postmaster@%s>\r\n"
		"To: <%s>\r\n"
		"Date: %s\r\n"
		"Subject: %s\r\n"
		"Message-ID: <tlsrpt.%02x%02x%02x%02x%02x%02x.%s>\r\n"
		"TLS-Report-Domain: %s\r\n"
		"TLS-Report-Submitter: %s\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n"
		"\tboundary=\"%s\"\r\n"
		"\r\n"
		"--%s\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n"
		"\r\n"
		"The SMTP TLS report (RFC 8460) of %s for %s on %s (UTC).\r\n"
		"\r\n"
		"--%s\r\n"
		"Content-Type: application/tlsrpt+gzip\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"Content-Disposition: attachment;\r\n"
		"\tfilename=\"%s\"\r\n"
		"\r\n",
		from_dom, rcpt, date, subject, rnd[6], rnd[7], rnd[8], rnd[9],
		rnd[10], rnd[11], host, p->domain, host, boundary, boundary,
		host, p->domain, p->day, boundary, fname);
	for (size_t i = 0; i < gz_len; i += TLSRPT_B64_LINE) {
		size_t n = gz_len - i < TLSRPT_B64_LINE ? gz_len - i
							 : TLSRPT_B64_LINE;
		EVP_EncodeBlock((unsigned char *)line, gz + i, (int)n);
		fprintf(fp, "%s\r\n", line);
	}
	fprintf(fp, "\r\n--%s--\r\n", boundary);
	if (fclose(fp) != 0) {
		free(out);
		return NULL;
	}
	*len_out = size;
	return out;
}

static void
on_queued(void *arg, int err)
{
	struct rpt *p = arg;

	if (err != 0)
		log_msg(LOG_WARN, "ev=tlsrpt_failed domain=%s day=%s "
			"reason=spool", log_q(p->domain), p->day);
	free(p);
}

static void
send_mailto(struct rpt *p, const char *rcpt, const unsigned char *gz,
	    size_t gz_len)
{
	struct router *r = p->r;
	struct msg *m = msg_new();
	struct rpt *copy = malloc(sizeof *copy);
	size_t len = 0;
	char *text = compose(r, p, rcpt, gz, gz_len, &len);

	/* msg_new() gives the null sender already. */
	if (m == NULL || copy == NULL || text == NULL ||
	    msg_add_rcpt(m, rcpt, rcpt, MSG_ROUTE_REMOTE) != 0) {
		msg_free(m);
		free(copy);
		free(text);
		log_msg(LOG_WARN, "ev=tlsrpt_failed domain=%s day=%s "
			"reason=out_of_memory", log_q(p->domain), p->day);
		return;
	}
	m->data = text;
	m->data_len = len;
	m->arrival = (int64_t)time(NULL);
	*copy = *p;
	log_msg(LOG_INFO, "ev=tlsrpt_sent domain=%s day=%s rua=%s",
		log_q(p->domain), p->day, log_q(rcpt));
	route_inject(r, m, on_queued, copy);
}

static void
on_rua(void *arg, bool is_temp, char (*rua)[512], size_t n)
{
	struct rpt *p = arg;
	struct router *r = p->r;
	char err[256], path[4096], addr[512];
	char *json;
	unsigned char *gz = NULL;
	size_t gz_len = 0;

	if (is_temp || r->tlspol == NULL) {
		free(p); /* the next tick asks again */
		return;
	}
	if (n == 0) {
		tlspol_report_sent(r->tlspol, p->day, p->domain);
		free(p);
		return;
	}
	json = tlspol_report_json(tlspol_db_path(r->tlspol, path,
						 sizeof path),
				  p->day, p->domain, r->cfg->server_hostname,
				  err, sizeof err);
	if (json != NULL)
		gz = gzip_json(json, strlen(json), &gz_len);
	if (gz == NULL) {
		log_msg(LOG_WARN, "ev=tlsrpt_failed domain=%s day=%s "
			"reason=%s", log_q(p->domain), p->day,
			log_q(json ? "out of memory" : err));
		free(json);
		free(p);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (tlsrpt_rua_mailto(rua[i], addr, sizeof addr))
			send_mailto(p, addr, gz, gz_len);
		else if (tlsrpt_rua_is_https(rua[i]) &&
			 tlspol_post(r->tlspol, rua[i], gz, gz_len))
			log_msg(LOG_INFO, "ev=tlsrpt_post domain=%s day=%s "
				"rua=%s", log_q(p->domain), p->day,
				log_q(rua[i]));
	}
	tlspol_report_sent(r->tlspol, p->day, p->domain);
	free(gz);
	free(json);
	free(p);
}

int
route_tlsrpt_send(struct router *r, bool is_today_too)
{
	char day[TLSRPT_BATCH][16], dom[TLSRPT_BATCH][256], upto[16];
	time_t now = time(NULL) - (is_today_too ? 0 : 86400);
	struct tm tm;
	size_t n = 0;
	int started = 0;

	if (r->tlspol == NULL)
		return 0;
	gmtime_r(&now, &tm);
	strftime(upto, sizeof upto, "%Y-%m-%d", &tm);
	if (tlspol_report_due(r->tlspol, upto, day, dom, TLSRPT_BATCH, &n) !=
	    0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct rpt *p = calloc(1, sizeof *p);
		if (p == NULL)
			break;
		p->r = r;
		str_set(p->day, sizeof p->day, day[i]);
		str_set(p->domain, sizeof p->domain, dom[i]);
		if (!tlspol_rua_start(r->tlspol, p->domain, on_rua, p)) {
			free(p);
			break;
		}
		started++;
	}
	return started;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)route_tlsrpt_send(arg, false);
}

int
route_tlsrpt_start(struct router *r)
{
	struct timeval tv = {TLSRPT_TICK_SECONDS, 0};

	r->tlsrpt_tick = event_new(r->base, -1, EV_PERSIST, on_tick, r);
	if (r->tlsrpt_tick == NULL)
		return -1;
	return event_add(r->tlsrpt_tick, &tv);
}

void
route_tlsrpt_stop(struct router *r)
{
	if (r->tlsrpt_tick != NULL)
		event_free(r->tlsrpt_tick);
	r->tlsrpt_tick = NULL;
}
