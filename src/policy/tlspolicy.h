/*
 * tlspolicy.h - what TLS the sending side owes a destination beyond its
 * configuration: the DANE TLSA records of an MX host (RFC 7672) and the
 * MTA-STS policy of a domain (RFC 8461).  The router lends both to
 * outbound/ through its hooks (outbound.h: tlsa_start, sts_start).
 *
 * Everything runs on the loop thread but the HTTPS fetch of a policy,
 * which runs on a worker thread of its own (libcurl's easy interface,
 * never the loop); lookups go through the server's c-ares channel.
 * Policies are kept in SPOOL/mta-sts.db for their max_age, so a restart
 * forgets none (RFC 8461 5: a policy is cached; a fetch that fails while
 * one is cached keeps using it).
 *
 * The same file counts the outcome of each TLS session for the daily
 * reports of RFC 8460, which tlspol_report_json() and the functions
 * after it read: those live in tlsreport.c, the rest in tlspolicy.c.
 */
#ifndef POSTERN_POLICY_TLSPOLICY_H
#define POSTERN_POLICY_TLSPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <event2/event.h>

#include "config/config.h"
#include "auth/peertls.h"
#include "policy/dns.h"

struct tlspol;

/*
 * Opens the policy cache in [spool] dir and starts the fetch thread.
 * cfg and d are borrowed and must outlive tp (tlspol_reload replaces
 * cfg).  NULL with the reason and its fix in err.
 */
struct tlspol *tlspol_open(const struct config *cfg, struct dns *d,
			   struct event_base *base, char *err, size_t size);
void tlspol_reload(struct tlspol *tp, const struct config *cfg);
/* Ends every request (their callbacks do not run) and frees tp. */
void tlspol_close(struct tlspol *tp);

/* outbound_hooks.tlsa_start / tlsa_cancel. */
void *tlspol_tlsa_start(struct tlspol *tp, const char *host, uint16_t port,
			outbound_tlsa_fn cb, void *cbarg);
void tlspol_tlsa_cancel(void *handle);

/* outbound_hooks.sts_start / sts_cancel. */
void *tlspol_sts_start(struct tlspol *tp, const char *domain,
		       outbound_sts_fn cb, void *cbarg);
void tlspol_sts_cancel(void *handle);

/* outbound_hooks.tls_result: counts r in today's (UTC) TLS report. */
void tlspol_tls_result(struct tlspol *tp, const struct outbound_tls_result *r);

/* The tables of SPOOL/mta-sts.db's TLS reporting: a row per day, policy
 * domain, policy, MX host and outcome (result "" for success), counted. */
#define TLSPOL_REPORT_SCHEMA                                                 \
	"CREATE TABLE IF NOT EXISTS tlsrpt (day TEXT NOT NULL, domain TEXT "  \
	"NOT NULL, ptype TEXT NOT NULL, pstrings TEXT NOT NULL, mx TEXT NOT " \
	"NULL, result TEXT NOT NULL, sending_ip TEXT NOT NULL, receiving_ip " \
	"TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL, "       \
	"PRIMARY KEY (day, domain, ptype, pstrings, mx, result, sending_ip, " \
	"receiving_ip, reason));"                                             \
	"CREATE TABLE IF NOT EXISTS tlsrpt_sent (day TEXT NOT NULL, domain "  \
	"TEXT NOT NULL, PRIMARY KEY (day, domain));"

/*
 * The RFC 8460 JSON report of day (UTC, "YYYY-MM-DD") for the policy
 * domain, from the cache file db_path (opened read-only); org names the
 * submitter.  malloc'd, or NULL with why in err (no sessions that day).
 */
char *tlspol_report_json(const char *db_path, const char *day,
			 const char *domain, const char *org, char *err,
			 size_t size);
/* Day's counts per domain, policy and MX host, a line each, into out. */
int tlspol_report_counts(const char *db_path, const char *day, FILE *out,
			 char *err, size_t size);

/* The (day, domain) pairs counted up to today (inclusive) whose report
 * was not sent yet, at most max, into day[] and domain[]. */
int tlspol_report_due(struct tlspol *tp, const char *today, char (*day)[16],
		      char (*domain)[256], size_t max, size_t *n_out);
/* Marks the report of (day, domain) sent: it is not sent again. */
void tlspol_report_sent(struct tlspol *tp, const char *day,
			const char *domain);
/* SPOOL/mta-sts.db's path into buf. */
const char *tlspol_db_path(const struct tlspol *tp, char *buf, size_t size);

#define TLSPOL_RUA_MAX 4
/* The rua URIs of _smtp._tls.DOMAIN (RFC 8460 3); is_temp: the lookup
 * failed, ask again later. */
typedef void (*tlspol_rua_fn)(void *cbarg, bool is_temp, char (*rua)[512],
			      size_t n);
bool tlspol_rua_start(struct tlspol *tp, const char *domain,
		      tlspol_rua_fn cb, void *cbarg);
/* POSTs a gzip'd report to an https rua on the fetch thread; the
 * outcome is logged. */
bool tlspol_post(struct tlspol *tp, const char *url, const unsigned char *data,
		 size_t len);

/*
 * Parses one TLSA record's text ("3 1 1 ab01...", src/auth/adns.h) into
 * r; false for a record RFC 7672 3.1 says an SMTP client cannot use
 * (PKIX-TA(0) and PKIX-EE(1) usages, unknown selectors and matching
 * types, a digest of the wrong length).  Pure: for the unit tests too.
 */
bool tlspol_tlsa_parse(const char *text, struct outbound_tlsa *r);

#endif
