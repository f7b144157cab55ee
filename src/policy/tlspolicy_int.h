/*
 * tlspolicy_int.h - what tlspolicy.c (DANE, MTA-STS, the fetch worker)
 * and tlsreport.c (the TLS reports of RFC 8460) share: the policy object
 * with its SQLite cache file, and two helpers.  Only those two files
 * include it; everyone else has tlspolicy.h.
 */
#ifndef POSTERN_POLICY_TLSPOLICY_INT_H
#define POSTERN_POLICY_TLSPOLICY_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "policy/authcheck_int.h"
#include "policy/tlspolicy.h"

#define TLSPOL_DB_NAME "mta-sts.db" /* in [spool] dir */
#define TLSPOL_TXT_RECORDS_MAX 64   /* as adns keeps at most */

struct worker;
struct sts_req;

struct tlspol {
	const struct config *cfg;
	struct dns *dns;
	struct event_base *base;
	sqlite3 *db;
	sqlite3_stmt *add_result; /* prepared on first use */
	struct worker *fetcher;
	struct sts_req *reqs; /* in progress, to end at close */
};

/* Logs a failed statement on the cache file; what names it. */
void tlspol_db_log(const struct tlspol *tp, const char *what);

/* The lengths of a's TXT records into lens (TLSPOL_TXT_RECORDS_MAX
 * long); false when there are too many. */
bool tlspol_txt_lens(const struct adns_owned *a, size_t *lens);

#endif
