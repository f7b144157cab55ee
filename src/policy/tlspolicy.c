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
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <sqlite3.h>

#include "auth/mtasts.h"
#include "auth/tlsrpt.h"
#include "policy/authcheck_int.h"
#include "policy/tlspolicy.h"
#include "util/log.h"
#include "util/str.h"
#include "util/worker.h"

#define STS_BODY_MAX 65536     /* RFC 8461 3.3: 64 KiB is plenty */
#define STS_FETCH_SECONDS 30   /* the whole HTTPS fetch */
#define STS_DB_NAME "mta-sts.db"
#define TLSA_SHA256_LEN 32
#define TLSA_SHA512_LEN 64

struct tlspol {
	const struct config *cfg;
	struct dns *dns;
	struct event_base *base;
	sqlite3 *db;
	sqlite3_stmt *add_result; /* prepared on first use */
	struct worker *fetcher;
	struct sts_req *reqs; /* in progress, to end at close */
};

#define TXT_RECORDS_MAX 64 /* as adns keeps at most */

/* The lengths of a's TXT records; false when there are too many. */
static bool
txt_lens(const struct adns_owned *a, size_t *lens)
{
	if (a->ans.n > TXT_RECORDS_MAX)
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

static void
db_log(const struct tlspol *tp, const char *what)
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
		db_log(tp, "select");
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
		db_log(tp, "insert");
		return;
	}
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL) + p->max_age);
	sqlite3_bind_text(st, 5, body, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		db_log(tp, "insert");
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
	size_t lens[TXT_RECORDS_MAX];
	bool has_id;

	rq->q = NULL;
	has_id = a != NULL && a->ans.status == ADNS_OK &&
		 txt_lens(a, lens) &&
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
/* TLS reporting: the day's counts (RFC 8460 4) */

void
tlspol_tls_result(struct tlspol *tp, const struct outbound_tls_result *r)
{
	sqlite3_stmt *st = tp->add_result;
	char day[16];
	time_t now = time(NULL);
	struct tm tm;
	bool is_ok = r->result == NULL;

	gmtime_r(&now, &tm);
	strftime(day, sizeof day, "%Y-%m-%d", &tm);
	if (st == NULL &&
	    sqlite3_prepare_v3(
		tp->db,
		"INSERT INTO tlsrpt (day, domain, ptype, pstrings, mx, "
		"result, sending_ip, receiving_ip, reason, count) VALUES "
		"(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1) ON CONFLICT DO "
		"UPDATE SET count = count + 1",
		-1, SQLITE_PREPARE_PERSISTENT, &tp->add_result,
		NULL) != SQLITE_OK) {
		db_log(tp, "tlsrpt");
		return;
	}
	st = tp->add_result;
	sqlite3_bind_text(st, 1, day, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, r->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->policy_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->policy_strings, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->mx_host, -1, SQLITE_STATIC);
	/* A success needs no details: one row counts them all. */
	sqlite3_bind_text(st, 6, is_ok ? "" : r->result, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, is_ok ? "" : r->sending_ip, -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 8, is_ok ? "" : r->receiving_ip, -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 9, is_ok ? "" : r->reason, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		db_log(tp, "tlsrpt");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* One policy of a day's report, built from its rows. */
struct rpt_pol {
	struct tlsrpt_policy p;
	char *pstrings;	   /* the rows' policy text, for comparisons */
	char *lines;	   /* a copy, cut at its newlines */
	const char **strs; /* into lines */
	struct tlsrpt_failure *fails;
};

static void
rpt_free(struct rpt_pol *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].pstrings);
		free(v[i].lines);
		free(v[i].strs);
		free(v[i].fails);
	}
	free(v);
}

/* The policy entry for (ptype, pstrings), added when new. */
static struct rpt_pol *
rpt_get(struct rpt_pol **v, size_t *n, const char *ptype,
	const char *pstrings, const char *domain)
{
	struct rpt_pol *e, *nv;
	size_t k = 0;

	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i].p.policy_type, ptype) == 0 &&
		    strcmp((*v)[i].pstrings ? (*v)[i].pstrings : "",
			   pstrings) == 0)
			return &(*v)[i];
	nv = realloc(*v, (*n + 1) * sizeof *nv);
	if (nv == NULL)
		return NULL;
	*v = nv;
	e = &nv[(*n)++];
	memset(e, 0, sizeof *e);
	str_set(e->p.policy_type, sizeof e->p.policy_type, ptype);
	str_set(e->p.policy_domain, sizeof e->p.policy_domain, domain);
	e->pstrings = strdup(pstrings);
	if (e->pstrings == NULL)
		return NULL;
	{
		size_t lines = 1;
		for (const char *p = pstrings; *p; p++)
			lines += *p == '\n';
		e->lines = strdup(pstrings);
		e->strs = calloc(lines, sizeof *e->strs);
		if (e->lines == NULL || e->strs == NULL)
			return NULL;
		for (char *save = NULL,
			  *t = strtok_r(e->lines, "\n", &save);
		     t != NULL && k < lines; t = strtok_r(NULL, "\n", &save))
			e->strs[k++] = t;
	}
	e->p.policy_strings = e->strs;
	e->p.n_strings = k;
	return e;
}

char *
tlspol_report_json(const char *db_path, const char *day, const char *domain,
		   const char *org, char *err, size_t size)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct rpt_pol *pols = NULL;
	struct tlsrpt_policy *flat = NULL;
	struct tlsrpt_report rep = {0};
	size_t n = 0;
	char *json = NULL;
	struct tm tm = {0};
	char contact[300];

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) !=
		SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "SELECT ptype, pstrings, mx, result, "
			       "sending_ip, receiving_ip, reason, count FROM "
			       "tlsrpt WHERE day = ?1 AND domain = ?2 ORDER BY "
			       "ptype, pstrings, result",
			       -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, size, "cannot read %s: %s", db_path,
			 db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *col[7];
		struct rpt_pol *e;
		uint64_t count = (uint64_t)sqlite3_column_int64(st, 7);
		for (int i = 0; i < 7; i++) {
			col[i] = (const char *)sqlite3_column_text(st, i);
			if (col[i] == NULL)
				col[i] = "";
		}
		e = rpt_get(&pols, &n, col[0], col[1], domain);
		if (e == NULL) {
			snprintf(err, size, "out of memory");
			goto out;
		}
		if (col[3][0] == '\0') {
			e->p.n_success += count;
			continue;
		}
		e->p.n_failure += count;
		{
			struct tlsrpt_failure *f =
			    realloc(e->fails, (e->p.n_failures + 1) * sizeof *f);
			if (f == NULL) {
				snprintf(err, size, "out of memory");
				goto out;
			}
			e->fails = f;
			f = &f[e->p.n_failures++];
			memset(f, 0, sizeof *f);
			str_set(f->result_type, sizeof f->result_type, col[3]);
			str_set(f->sending_mta_ip, sizeof f->sending_mta_ip,
				col[4]);
			str_set(f->receiving_mx_hostname,
				sizeof f->receiving_mx_hostname, col[2]);
			str_set(f->receiving_ip, sizeof f->receiving_ip,
				col[5]);
			str_set(f->failure_reason_code,
				sizeof f->failure_reason_code, col[6]);
			f->count = count;
		}
	}
	if (n == 0) {
		snprintf(err, size, "no TLS sessions with %s on %s", domain,
			 day);
		goto out;
	}
	flat = calloc(n, sizeof *flat);
	if (flat == NULL) {
		snprintf(err, size, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		flat[i] = pols[i].p;
		flat[i].failures = pols[i].fails;
	}
	if (strptime(day, "%Y-%m-%d", &tm) == NULL) {
		snprintf(err, size, "%s: give the day as YYYY-MM-DD", day);
		goto out;
	}
	snprintf(contact, sizeof contact, "postmaster@%s", org);
	rep.org_name = org;
	rep.contact_info = contact;
	snprintf(rep.report_id, sizeof rep.report_id, "%s.%s@%s", day, domain,
		 org);
	rep.start = (int64_t)timegm(&tm);
	rep.end = rep.start + 86399; /* 23:59:59Z, as RFC 8460 4.4 */
	rep.policies = flat;
	rep.n_policies = n;
	json = tlsrpt_json(&rep);
	if (json == NULL)
		snprintf(err, size, "out of memory");
out:
	free(flat);
	rpt_free(pols, n);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return json;
}

int
tlspol_report_counts(const char *db_path, const char *day, FILE *out,
		     char *err, size_t size)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	unsigned rows = 0;

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) !=
		SQLITE_OK ||
	    sqlite3_prepare_v2(
		db,
		"SELECT domain, ptype, mx, SUM(CASE WHEN result = '' THEN "
		"count ELSE 0 END), SUM(CASE WHEN result = '' THEN 0 ELSE "
		"count END), GROUP_CONCAT(DISTINCT NULLIF(result, '')) FROM "
		"tlsrpt WHERE day = ?1 GROUP BY domain, ptype, mx ORDER BY "
		"domain, mx",
		-1, &st, NULL) != SQLITE_OK) {
		snprintf(err, size, "cannot read %s: %s", db_path,
			 db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return -1;
	}
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	fprintf(out, "%-30s %-16s %-30s %8s %8s  %s\n", "DOMAIN", "POLICY",
		"MX", "OK", "FAILED", "FAILURES");
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *why = (const char *)sqlite3_column_text(st, 5);
		fprintf(out, "%-30s %-16s %-30s %8lld %8lld  %s\n",
			sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
			sqlite3_column_text(st, 2),
			(long long)sqlite3_column_int64(st, 3),
			(long long)sqlite3_column_int64(st, 4), why ? why : "");
		rows++;
	}
	fprintf(out, "%u row%s for %s (UTC)\n", rows, rows == 1 ? "" : "s",
		day);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Sending reports: which are due, where they go */

int
tlspol_report_due(struct tlspol *tp, const char *today, char (*day)[16],
		  char (*domain)[256], size_t max, size_t *n_out)
{
	sqlite3_stmt *st = NULL;
	size_t n = 0;

	*n_out = 0;
	if (sqlite3_prepare_v2(tp->db,
			       "SELECT DISTINCT day, domain FROM tlsrpt t "
			       "WHERE day <= ?1 AND NOT EXISTS (SELECT 1 FROM "
			       "tlsrpt_sent s WHERE s.day = t.day AND "
			       "s.domain = t.domain) ORDER BY day, domain",
			       -1, &st, NULL) != SQLITE_OK) {
		db_log(tp, "tlsrpt_due");
		return -1;
	}
	sqlite3_bind_text(st, 1, today, -1, SQLITE_STATIC);
	while (n < max && sqlite3_step(st) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 0);
		const char *m = (const char *)sqlite3_column_text(st, 1);
		str_set(day[n], sizeof day[n], d ? d : "");
		str_set(domain[n], sizeof domain[n], m ? m : "");
		n++;
	}
	sqlite3_finalize(st);
	*n_out = n;
	return 0;
}

void
tlspol_report_sent(struct tlspol *tp, const char *day, const char *domain)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(tp->db,
			       "INSERT OR IGNORE INTO tlsrpt_sent (day, "
			       "domain) VALUES (?1, ?2)",
			       -1, &st, NULL) != SQLITE_OK) {
		db_log(tp, "tlsrpt_sent");
		return;
	}
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		db_log(tp, "tlsrpt_sent");
	sqlite3_finalize(st);
}

const char *
tlspol_db_path(const struct tlspol *tp, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", tp->cfg->spool_dir, STS_DB_NAME);
	return buf;
}

struct rua_req {
	tlspol_rua_fn cb;
	void *cbarg;
};

static void
on_rua(void *arg, struct adns_owned *a)
{
	struct rua_req *rq = arg;
	char rua[TLSPOL_RUA_MAX][512];
	size_t lens[TXT_RECORDS_MAX];
	size_t n = 0;
	bool is_temp = a == NULL || a->ans.status == ADNS_TEMPFAIL;

	if (!is_temp && a->ans.status == ADNS_OK && txt_lens(a, lens))
		n = tlsrpt_txt_pick((const char *const *)a->ans.rr, lens,
				    a->ans.n, rua, TLSPOL_RUA_MAX);
	rq->cb(rq->cbarg, is_temp, rua, n);
	adns_owned_free(a);
	free(rq);
}

bool
tlspol_rua_start(struct tlspol *tp, const char *domain, tlspol_rua_fn cb,
		 void *cbarg)
{
	struct rua_req *rq = calloc(1, sizeof *rq);
	char name[300];

	if (rq == NULL)
		return false;
	rq->cb = cb;
	rq->cbarg = cbarg;
	snprintf(name, sizeof name, "_smtp._tls.%s", domain);
	if (adns_query(tp->dns, name, ADNS_TXT, on_rua, rq) == NULL) {
		free(rq);
		return false;
	}
	return true;
}

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
	snprintf(path, sizeof path, "%s/%s", cfg->spool_dir, STS_DB_NAME);
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
