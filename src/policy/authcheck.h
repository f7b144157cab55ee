/*
 * authcheck.h - SPF, DKIM and DMARC of mail received on the smtp port
 * ([auth] spf, dkim, dmarc), on the loop thread, and the
 * Authentication-Results header (RFC 8601) that tells what they found.
 *
 * The checks themselves are pure functions in src/auth/; this module
 * feeds them DNS answers: every question of a round goes out at once
 * through c-ares, answers are kept for their TTL, and a check is
 * evaluated again when its round is answered.  SPF starts at MAIL FROM,
 * so its lookups run while the client sends RCPT and DATA; DKIM and DMARC
 * start at the end of the text.
 */
#ifndef POSTERN_POLICY_AUTHCHECK_H
#define POSTERN_POLICY_AUTHCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "policy/dns.h"

enum authcheck_action {
	AUTHCHECK_ACCEPT,	/* store, with the header */
	AUTHCHECK_REJECT_DMARC, /* 550 5.7.26 */
	AUTHCHECK_REJECT_SPF,	/* 550 5.7.23 ([auth] spf_fail = reject) */
	AUTHCHECK_TEMPFAIL,	/* 451 4.4.3: a lookup timed out or failed */
};

/* "accept", "reject_dmarc", "reject_spf", "tempfail": for the log. */
const char *authcheck_action_name(enum authcheck_action a);

#define AUTHCHECK_HEADER_MAX 4096

struct authcheck_verdict {
	enum authcheck_action action;
	char header[AUTHCHECK_HEADER_MAX]; /* "Authentication-Results: ...\r\n" */
	char why[512];	 /* for the log and the reply: what failed, where */
	char summary[160]; /* "spf=pass dkim=none dmarc=fail" for the log */
};

/* Called on the loop thread, once, never inside authcheck_finish(). */
typedef void (*authcheck_done_fn)(void *arg,
				  const struct authcheck_verdict *v);

struct authcheck;
struct authcheck_job;

/*
 * For the loop of base, resolving through d (not owned; must outlive the
 * result).  cfg is read at each job's start, and must outlive the jobs
 * made with it: a reload makes a new authcheck.  NULL when out of memory.
 */
struct authcheck *authcheck_open(const struct config *cfg, struct dns *d);

/* After a reload: jobs started from now read cfg.  a may be NULL. */
void authcheck_set_config(struct authcheck *a, const struct config *cfg);

/* Cancels the jobs still running; a may be NULL. */
void authcheck_close(struct authcheck *a);

/* True when any check is on ([auth] spf, dkim or dmarc). */
bool authcheck_is_on(const struct config *cfg);

/*
 * MAIL FROM: starts the checks of one transaction.  ip: the client's
 * address as text; helo as given; sender without brackets, "" for the
 * null sender.  NULL when out of memory (the caller replies 451).
 */
struct authcheck_job *authcheck_start(struct authcheck *a, const char *ip,
				      const char *helo, const char *sender);

/*
 * End of the text: msg[0..len) is the message as received (CRLF lines,
 * header first), read now and not kept.  cb runs once all checks are
 * done; the job frees itself after cb.
 */
void authcheck_finish(struct authcheck_job *j, const char *msg, size_t len,
		      authcheck_done_fn cb, void *arg);

/* Before cb ran: cb will not run and the job is freed. */
void authcheck_cancel(struct authcheck_job *j);

#endif
