/*
 * tlsreport.c - SMTP TLS reporting (RFC 8460) on the policy cache file
 * SPOOL/mta-sts.db (tlspolicy.h): the outcome of each TLS session the
 * sending side tries is counted per day (UTC), policy domain, policy, MX
 * host and failure; the day's report is built from those rows as RFC
 * 8460 4 JSON; the reports due and sent are kept; the rua of a domain
 * is looked up in its _smtp._tls TXT record (3).
 *
 * Callers: outbound/ through route/hooks.c's tls_result hook (the
 * counting), route/tlsrpt.c (what is due, the rua, marking sent) and
 * `postern tls-report` (cli/tlsreport.c: the JSON and the counts, read
 * from the file without a running server).  In the server it runs on
 * the loop thread; a failed write to the file is logged and the count
 * lost, never the session's.  Composing, gzipping and sending the
 * report is route/tlsrpt.c's; POSTing one is tlspolicy.c's fetch
 * worker's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/tlsrpt.h"
#include "policy/tlspolicy_int.h"
#include "util/str.h"

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
		tlspol_db_log(tp, "tlsrpt");
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
		tlspol_db_log(tp, "tlsrpt");
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
		tlspol_db_log(tp, "tlsrpt_due");
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
		tlspol_db_log(tp, "tlsrpt_sent");
		return;
	}
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		tlspol_db_log(tp, "tlsrpt_sent");
	sqlite3_finalize(st);
}

const char *
tlspol_db_path(const struct tlspol *tp, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", tp->cfg->spool_dir, TLSPOL_DB_NAME);
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
	size_t lens[TLSPOL_TXT_RECORDS_MAX];
	size_t n = 0;
	bool is_temp = a == NULL || a->ans.status == ADNS_TEMPFAIL;

	if (!is_temp && a->ans.status == ADNS_OK && tlspol_txt_lens(a, lens))
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
