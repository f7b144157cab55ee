/*
 * tlspolicy.c - DANE TLSA records and MTA-STS policies for the sending
 * side (tlspolicy.h).
 *
 * DANE: one TLSA question per connection to an MX host whose MX records
 * were validated; the answer counts only when the resolver validated it
 * too (AD, believed because [dns] dnssec says the resolver validates).
 * Usable records are DANE-TA(2) and DANE-EE(3) with SPKI or full
 * certificate selectors and exact, SHA-256 or SHA-512 matching (RFC 7672
 * 3.1); OpenSSL matches them (the client adds them with
 * SSL_dane_tlsa_add).
 *
 * MTA-STS, per RFC 8461: the TXT record at _mta-sts.DOMAIN gives the
 * policy's id; a cached policy with the same id and time left is used as
 * it is; otherwise the policy is fetched from
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt - the address looked up
 * here (c-ares, the [dns] servers), the certificate checked against
 * [delivery] tls_ca or the system store, no redirects (3.3), 64 KiB at
 * most, text/plain only (3.2) - and kept for its max_age.  No TXT record
 * and no policy cached: no policy.  A failed fetch or lookup with a
 * policy cached: the cached one (5.1); without: no policy, and the error
 * goes to the caller for its TLS report.
 *
 * Callers: the router lends the lookups to outbound/ (route/hooks.c)
 * and opens, reloads and closes the object (route/router.c).  The TLS
 * reports counted in the same cache file are tlsreport.c's; their POST
 * to an https rua runs here, on the fetch worker (tlspol_post).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "auth/mtasts.h"
#include "policy/tlspolicy_int.h"
#include "util/log.h"
#include "util/str.h"
#include "util/worker.h"

#define STS_BODY_MAX 65536     /* RFC 8461 3.3: 64 KiB is plenty */
#define STS_FETCH_SECONDS 30   /* the whole HTTPS fetch */
#define TLSA_SHA256_LEN 32
#define TLSA_SHA512_LEN 64

/* The lengths of a's TXT records; false when there are too many. */
bool
tlspol_txt_lens(const struct adns_owned *a, size_t *lens)
{
	if (a->ans.n > TLSPOL_TXT_RECORDS_MAX)
		return false;
	for (size_t i = 0; i < a->ans.n; i++)
		lens[i] = strlen(a->ans.rr[i]);
	return true;
}

/* ------------------------------------------------------------------ */
/* DANE */

struct tlsa_req {
	outbound_tlsa_fn cb; /* NULL once cancelled */
	void *cbarg;
	struct adns_query *q;
};

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool
tlspol_tlsa_parse(const char *text, struct outbound_tlsa *r)
{
	unsigned long u, s, m;
	const char *h = text;
	char *end;
	size_t n;

	u = strtoul(h, &end, 10);
	if (end == h || *end != ' ')
		return false;
	s = strtoul(h = end + 1, &end, 10);
	if (end == h || *end != ' ')
		return false;
	m = strtoul(h = end + 1, &end, 10);
	if (end == h || *end != ' ')
		return false;
	/* RFC 7672 3.1.3: PKIX-TA(0) and PKIX-EE(1) are not for SMTP. */
	if ((u != 2 && u != 3) || s > 1 || m > 2)
		return false;
	h = end + 1;
	n = strlen(h);
	if (n == 0 || n % 2 != 0 || n / 2 > sizeof r->data)
		return false;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval((unsigned char)h[2 * i]);
		int lo = hexval((unsigned char)h[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		r->data[i] = (unsigned char)(hi << 4 | lo);
	}
	r->len = n / 2;
	if ((m == 1 && r->len != TLSA_SHA256_LEN) ||
	    (m == 2 && r->len != TLSA_SHA512_LEN))
		return false;
	r->usage = (uint8_t)u;
	r->selector = (uint8_t)s;
	r->mtype = (uint8_t)m;
	return true;
}

static void
on_tlsa(void *arg, struct adns_owned *a)
{
	struct tlsa_req *rq = arg;
	struct outbound_tlsa *recs = NULL;
	enum outbound_tlsa_status st;
	size_t n = 0;

	if (rq->cb == NULL) {
		adns_owned_free(a);
		free(rq);
		return;
	}
	if (a == NULL || a->ans.status == ADNS_TEMPFAIL) {
		st = OUTBOUND_TLSA_FAIL; /* SERVFAIL: bogus or unreachable */
	} else if (!a->is_secure || a->ans.status != ADNS_OK) {
		st = OUTBOUND_TLSA_NONE; /* insecure, or no records */
	} else {
		recs = calloc(OUTBOUND_TLSA_MAX, sizeof *recs);
		for (size_t i = 0; recs != NULL && i < a->ans.n &&
				   n < OUTBOUND_TLSA_MAX;
		     i++)
			if (tlspol_tlsa_parse(a->ans.rr[i], &recs[n]))
				n++;
		st = recs == NULL  ? OUTBOUND_TLSA_FAIL
		     : n > 0	   ? OUTBOUND_TLSA_USABLE
				   : OUTBOUND_TLSA_UNUSABLE;
	}
	rq->cb(rq->cbarg, st, recs, n);
	free(recs);
	adns_owned_free(a);
	free(rq);
}

void *
tlspol_tlsa_start(struct tlspol *tp, const char *host, uint16_t port,
		  outbound_tlsa_fn cb, void *cbarg)
{
	struct tlsa_req *rq = calloc(1, sizeof *rq);
	char name[300];

	if (rq == NULL)
		return NULL;
	rq->cb = cb;
	rq->cbarg = cbarg;
	snprintf(name, sizeof name, "_%u._tcp.%s", port, host);
	rq->q = adns_query(tp->dns, name, ADNS_TLSA, on_tlsa, rq);
	if (rq->q == NULL) {
		free(rq);
		return NULL;
	}
	return rq;
}

void
tlspol_tlsa_cancel(void *handle)
{
	struct tlsa_req *rq = handle;

	/* The answer still comes (on_tlsa frees rq then). */
	if (rq != NULL)
		rq->cb = NULL;
}

/* ------------------------------------------------------------------ */
/* The MTA-STS cache: SPOOL/mta-sts.db */

struct sts_cached {
	char id[STS_ID_MAX];
	int64_t expires;
	char *body; /* malloc'd */
};

void
tlspol_db_log(const struct tlspol *tp, const char *what)
{
	log_msg(LOG_WARN, "ev=mta_sts_cache_failed op=%s error=%s", what,
		log_q(sqlite3_errmsg(tp->db)));
}

/* The policy cached for domain with time left; false when none. */
static bool
db_get(struct tlspol *tp, const char *domain, struct sts_cached *out)
{
	sqlite3_stmt *st = NULL;
	bool is_found = false;

	if (sqlite3_prepare_v2(tp->db,
			       "SELECT id, expires, body FROM sts WHERE "
			       "domain = ?1 AND expires > ?2",
			       -1, &st, NULL) != SQLITE_OK) {
		tlspol_db_log(tp, "select");
		return false;
	}
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const char *body = (const char *)sqlite3_column_text(st, 2);
		str_set(out->id, sizeof out->id, id ? id : "");
		out->expires = sqlite3_column_int64(st, 1);
		out->body = strdup(body ? body : "");
		is_found = out->body != NULL;
	}
	sqlite3_finalize(st);
	return is_found;
}

static void
db_put(struct tlspol *tp, const char *domain, const char *id,
       const struct sts_policy *p, const char *body)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(tp->db,
			       "INSERT OR REPLACE INTO sts (domain, id, "
			       "fetched, expires, body) VALUES (?1, ?2, ?3, "
			       "?4, ?5)",
			       -1, &st, NULL) != SQLITE_OK) {
		tlspol_db_log(tp, "insert");
		return;
	}
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL) + p->max_age);
	sqlite3_bind_text(st, 5, body, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		tlspol_db_log(tp, "insert");
	sqlite3_finalize(st);
}

/* ------------------------------------------------------------------ */
/* MTA-STS requests */

/* One fetch, made on the loop, run on the worker thread, back on the
 * loop.  Owned by its request; a cancelled request leaves it to finish. */
struct sts_fetch {
	struct worker_job wj; /* first */
	struct sts_req *rq;   /* NULL once the request is gone */
	char url[400];
	char resolve[400];
	char ca[4096];
	long http;
	char ctype[128];
	char *body;
	size_t len;
	bool is_too_big;
	char error[256];
	/* A report POSTed (RFC 8460 3: an https rua) rather than a GET. */
	unsigned char *post;
	size_t post_len;
};

struct sts_req {
	struct tlspol *tp;
	outbound_sts_fn cb; /* NULL once cancelled */
	void *cbarg;
	struct adns_query *q;
	struct sts_fetch *fetch;
	struct sts_cached cached;
	bool has_cached;
	char id[STS_ID_MAX]; /* the TXT record's id */
	char domain[256];
	struct sts_req *prev, *next;
};

static void
req_unlink_free(struct sts_req *rq)
{
	struct tlspol *tp = rq->tp;

	if (rq->prev)
		rq->prev->next = rq->next;
	else
		tp->reqs = rq->next;
	if (rq->next)
		rq->next->prev = rq->prev;
	if (rq->q != NULL)
		adns_query_drop(rq->q);
	if (rq->fetch != NULL)
		rq->fetch->rq = NULL; /* the worker's result is dropped */
	free(rq->cached.body);
	free(rq);
}

/* The answer: body parsed (the fetched or the cached one), or none. */
static void
sts_report(struct sts_req *rq, const char *body, const char *error)
{
	struct sts_policy *p = NULL;
	char why[200] = "";

	if (body != NULL && (p = calloc(1, sizeof *p)) != NULL &&
	    sts_policy_parse(body, strlen(body), p, why, sizeof why) != 0) {
		free(p);
		p = NULL;
	}
	if (rq->cb != NULL)
		rq->cb(rq->cbarg, p, error);
	free(p);
	req_unlink_free(rq);
}

/* A failed fetch: the cached policy when there is one (RFC 8461 5.1). */
static void
sts_failed(struct sts_req *rq, const char *error)
{
	log_msg(LOG_WARN, "ev=mta_sts_fetch_failed domain=%s error=%s%s",
		log_q(rq->domain), log_q(error),
		rq->has_cached ? " using=cached" : "");
	sts_report(rq, rq->has_cached ? rq->cached.body : NULL, error);
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct sts_fetch *f = arg;
	size_t len = size * n;
	char *b;

	if (f->len + len > STS_BODY_MAX) {
		f->is_too_big = true;
		return 0; /* curl stops: CURLE_WRITE_ERROR */
	}
	b = realloc(f->body, f->len + len + 1);
	if (b == NULL)
		return 0;
	memcpy(b + f->len, data, len);
	f->body = b;
	f->len += len;
	f->body[f->len] = '\0';
	return len;
}

/* Worker thread: the HTTPS GET, with libcurl's blocking interface. */
static void
fetch_one(struct sts_fetch *f)
{
	CURL *h = curl_easy_init();
	struct curl_slist *res = NULL, *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	const char *ct = NULL;
	CURLcode rc;

	if (h == NULL) {
		snprintf(f->error, sizeof f->error, "out of memory");
		return;
	}
	if (f->resolve[0] != '\0')
		res = curl_slist_append(NULL, f->resolve);
	curl_easy_setopt(h, CURLOPT_URL, f->url);
	curl_easy_setopt(h, CURLOPT_RESOLVE, res);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)STS_FETCH_SECONDS);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (f->ca[0] != '\0')
		curl_easy_setopt(h, CURLOPT_CAINFO, f->ca);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "postern/" POSTERN_VERSION);
	if (f->post != NULL) {
		hdrs = curl_slist_append(NULL, "Content-Type: "
					 "application/tlsrpt+gzip");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, f->post);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)f->post_len);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		snprintf(f->error, sizeof f->error, "%s",
			 f->is_too_big ? "the policy is over 64 KiB"
			 : errbuf[0]   ? errbuf
				       : curl_easy_strerror(rc));
		/* RFC 8460's result types: a certificate problem is
		 * sts-webpki-invalid, anything else a fetch error. */
		if (rc == CURLE_PEER_FAILED_VERIFICATION ||
		    rc == CURLE_SSL_CACERT_BADFILE)
			f->http = -1;
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &f->http);
		curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
		str_set(f->ctype, sizeof f->ctype, ct ? ct : "");
	}
	curl_slist_free_all(res);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
}

static void
fetch_run(void *arg, struct worker_job *batch)
{
	struct tlspol *tp = arg;

	for (struct worker_job *j = batch, *next; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		fetch_one((struct sts_fetch *)j);
		worker_hand_back(tp->fetcher, j);
	}
}

/* Loop thread: the fetch is over. */
static void
fetch_done(void *arg, struct worker_job *j)
{
	struct sts_fetch *f = (struct sts_fetch *)j;
	struct sts_req *rq = f->rq;
	struct sts_policy p;
	char why[800];

	(void)arg;
	if (f->post != NULL) {
		/* A report: its outcome is the log's. */
		if (f->error[0] != '\0' || f->http / 100 != 2)
			log_msg(LOG_WARN, "ev=tlsrpt_post_failed url=%s http=%ld "
				"error=%s", log_q(f->url), f->http,
				log_q(f->error));
		else
			log_msg(LOG_INFO, "ev=tlsrpt_posted url=%s http=%ld",
				log_q(f->url), f->http);
		free(f->post);
		goto out;
	}
	if (rq == NULL)
		goto out;
	rq->fetch = NULL;
	if (f->error[0] != '\0') {
		snprintf(why, sizeof why, "%s: %s",
			 f->http == -1 ? "sts-webpki-invalid"
				       : "sts-policy-fetch-error",
			 f->error);
		sts_failed(rq, why);
	} else if (f->http != 200) {
		snprintf(why, sizeof why,
			 "sts-policy-fetch-error: %s answered HTTP %ld", f->url,
			 f->http);
		sts_failed(rq, why);
	} else if (strncasecmp(f->ctype, "text/plain", 10) != 0) {
		snprintf(why, sizeof why,
			 "sts-policy-invalid: %s is %s, not text/plain", f->url,
			 f->ctype[0] ? f->ctype : "of no media type");
		sts_failed(rq, why);
	} else if (f->body == NULL ||
		   sts_policy_parse(f->body, f->len, &p, why, sizeof why) !=
		       0) {
		char msg[900];
		snprintf(msg, sizeof msg, "sts-policy-invalid: %s",
			 f->body == NULL ? "empty policy" : why);
		sts_failed(rq, msg);
	} else {
		log_msg(LOG_INFO, "ev=mta_sts_policy domain=%s id=%s mode=%s "
			"max_age=%u mx=%zu", log_q(rq->domain), log_q(rq->id),
			p.mode == STS_MODE_ENFORCE   ? "enforce"
			: p.mode == STS_MODE_TESTING ? "testing"
						     : "none",
			(unsigned)p.max_age, p.n_mx);
		db_put(rq->tp, rq->domain, rq->id, &p, f->body);
		sts_report(rq, f->body, NULL);
	}
out:
	free(f->body);
	free(f);
}

static const struct worker_ops fetch_ops = {
    .run = fetch_run,
    .done = fetch_done,
    .batch_max = 1,
};

/* The policy host's address is known: the fetch goes to the worker. */
static void
on_sts_addr(void *arg, struct adns_owned *a)
{
	struct sts_req *rq = arg;
	const struct config *cfg = rq->tp->cfg;
	struct sts_fetch *f;
	unsigned port = (unsigned)cfg->delivery_mta_sts_port;
	char host[300];

	rq->q = NULL;
	if (a == NULL || a->ans.status != ADNS_OK) {
		char why[400];
		snprintf(why, sizeof why, "sts-policy-fetch-error: the lookup "
			 "of mta-sts.%s %s", rq->domain,
			 a == NULL || a->ans.status == ADNS_TEMPFAIL
			     ? "failed"
			     : "found no IPv4 address");
		adns_owned_free(a);
		sts_failed(rq, why);
		return;
	}
	f = calloc(1, sizeof *f);
	if (f == NULL) {
		adns_owned_free(a);
		sts_failed(rq, "sts-policy-fetch-error: out of memory");
		return;
	}
	snprintf(host, sizeof host, "mta-sts.%s", rq->domain);
	if (port == 443)
		snprintf(f->url, sizeof f->url,
			 "https://%s/.well-known/mta-sts.txt", host);
	else
		snprintf(f->url, sizeof f->url,
			 "https://%s:%u/.well-known/mta-sts.txt", host, port);
	snprintf(f->resolve, sizeof f->resolve, "%s:%u:%s", host, port,
		 a->ans.rr[0]);
	str_set(f->ca, sizeof f->ca, cfg->delivery_tls_ca);
	adns_owned_free(a);
	f->rq = rq;
	rq->fetch = f;
	if (!worker_submit(rq->tp->fetcher, &f->wj)) {
		rq->fetch = NULL;
		free(f);
		sts_failed(rq, "sts-policy-fetch-error: shutting down");
	}
}

/* The TXT record of _mta-sts.DOMAIN (RFC 8461 3.1). */
static void
on_sts_txt(void *arg, struct adns_owned *a)
{
	struct sts_req *rq = arg;
	char host[300];
	size_t lens[TLSPOL_TXT_RECORDS_MAX];
	bool has_id;

	rq->q = NULL;
	has_id = a != NULL && a->ans.status == ADNS_OK &&
		 tlspol_txt_lens(a, lens) &&
		 sts_txt_pick((const char *const *)a->ans.rr, lens, a->ans.n,
			      rq->id) == 0;
	if (!has_id) {
		/* No policy announced (or the lookup failed): a cached one
		 * holds until it expires (RFC 8461 5.1). */
		adns_owned_free(a);
		sts_report(rq, rq->has_cached ? rq->cached.body : NULL, NULL);
		return;
	}
	adns_owned_free(a);
	if (rq->has_cached && strcmp(rq->cached.id, rq->id) == 0) {
		sts_report(rq, rq->cached.body, NULL);
		return;
	}
	snprintf(host, sizeof host, "mta-sts.%s", rq->domain);
	rq->q = adns_query(rq->tp->dns, host, ADNS_A, on_sts_addr, rq);
	if (rq->q == NULL)
		sts_failed(rq, "sts-policy-fetch-error: out of memory");
}

void *
tlspol_sts_start(struct tlspol *tp, const char *domain, outbound_sts_fn cb,
		 void *cbarg)
{
	struct sts_req *rq = calloc(1, sizeof *rq);
	char name[300];

	if (rq == NULL)
		return NULL;
	rq->tp = tp;
	rq->cb = cb;
	rq->cbarg = cbarg;
	str_set(rq->domain, sizeof rq->domain, domain);
	for (char *p = rq->domain; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	rq->has_cached = db_get(tp, rq->domain, &rq->cached);
	rq->next = tp->reqs;
	if (tp->reqs)
		tp->reqs->prev = rq;
	tp->reqs = rq;
	snprintf(name, sizeof name, "_mta-sts.%s", rq->domain);
	rq->q = adns_query(tp->dns, name, ADNS_TXT, on_sts_txt, rq);
	if (rq->q == NULL) {
		rq->cb = NULL;
		req_unlink_free(rq);
		return NULL;
	}
	return rq;
}

void
tlspol_sts_cancel(void *handle)
{
	struct sts_req *rq = handle;

	if (rq != NULL)
		req_unlink_free(rq);
}

/* ------------------------------------------------------------------ */
/* TLS reports POSTed to an https rua: the fetch worker's other job */

bool
tlspol_post(struct tlspol *tp, const char *url, const unsigned char *data,
	    size_t len)
{
	struct sts_fetch *f = calloc(1, sizeof *f);

	if (f == NULL || (f->post = malloc(len ? len : 1)) == NULL) {
		free(f);
		return false;
	}
	memcpy(f->post, data, len);
	f->post_len = len;
	str_set(f->url, sizeof f->url, url);
	str_set(f->ca, sizeof f->ca, tp->cfg->delivery_tls_ca);
	/* The name resolves through the system's resolver here: a report
	 * host is not a policy host, nothing hangs on its address. */
	f->resolve[0] = '\0';
	if (!worker_submit(tp->fetcher, &f->wj)) {
		free(f->post);
		free(f);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */

struct tlspol *
tlspol_open(const struct config *cfg, struct dns *d, struct event_base *base,
	    char *err, size_t size)
{
	struct tlspol *tp = calloc(1, sizeof *tp);
	char path[4096];

	if (tp == NULL) {
		snprintf(err, size, "out of memory");
		return NULL;
	}
	tp->cfg = cfg;
	tp->dns = d;
	tp->base = base;
	snprintf(path, sizeof path, "%s/%s", cfg->spool_dir, TLSPOL_DB_NAME);
	if (sqlite3_open_v2(path, &tp->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_exec(tp->db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
			 "CREATE TABLE IF NOT EXISTS sts (domain TEXT PRIMARY "
			 "KEY, id TEXT NOT NULL, fetched INTEGER NOT NULL, "
			 "expires INTEGER NOT NULL, body TEXT NOT NULL);"
			 TLSPOL_REPORT_SCHEMA,
			 NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, size, "cannot open the MTA-STS cache %s: %s; "
			 "check that [spool] dir is writable", path,
			 tp->db ? sqlite3_errmsg(tp->db) : "out of memory");
		tlspol_close(tp);
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (tp->fetcher = worker_start(&fetch_ops, tp, base)) == NULL) {
		snprintf(err, size, "cannot start the MTA-STS fetch thread");
		tlspol_close(tp);
		return NULL;
	}
	return tp;
}

void
tlspol_reload(struct tlspol *tp, const struct config *cfg)
{
	if (tp != NULL)
		tp->cfg = cfg;
}

void
tlspol_close(struct tlspol *tp)
{
	if (tp == NULL)
		return;
	/* req_unlink_free() unlinks what it frees: a new head each time. */
	while (tp->reqs != NULL)
		req_unlink_free(tp->reqs); // NOLINT(clang-analyzer-unix.Malloc)
	if (tp->fetcher != NULL)
		worker_stop(tp->fetcher);
	if (tp->add_result != NULL)
		sqlite3_finalize(tp->add_result);
	if (tp->db != NULL)
		sqlite3_close(tp->db);
	free(tp);
}
