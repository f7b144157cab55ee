/*
 * authcheck.c - runs SPF, DKIM and DMARC for one transaction on the loop
 * and says what to do with the message.
 *
 * Who calls it: the server's MAIL FROM (authcheck_start) and end of DATA
 * (authcheck_finish) for sessions on the smtp port that did not log in;
 * `postern auth check` for one message on stdin.
 *
 * How: a job holds the answers it was given.  Each round evaluates every
 * check that is not done from the start over those answers (the checks
 * are pure: src/auth/); the questions they could not answer are looked up
 * together - from the cache when it has them, else through c-ares - and
 * when the last of the round is answered the next round runs.  DMARC is
 * evaluated from the first round on, with SPF and DKIM's results so far,
 * so that its own lookups (the From: domain's _dmarc record and the
 * organizational domain's) go out with theirs; its result counts only
 * once both are final.  AUTHCHECK_ROUNDS_MAX rounds at most (SPF's ten
 * lookups and their MX/PTR names fit well within it): past it, temperror.
 *
 * Verdict (REPLY-CODES.md 451, 550): any temperror -> 451 4.4.3, nothing
 * stored; DMARC fail with a p=reject that applies (pct sampled) -> 550
 * 5.7.26; an SPF fail with [auth] spf_fail = reject and no DMARC pass ->
 * 550 5.7.23; everything else is accepted with the header, quarantine
 * included (the header says dmarc=fail and the policy; delivery to a junk
 * folder is the mailbox's business).  permerror is never a reason to
 * refuse: it is a broken record on the sender's side, which retrying does
 * not mend.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "auth/arh.h"
#include "auth/dkim.h"
#include "auth/dmarc.h"
#include "auth/hdr.h"
#include "auth/spf.h"
#include "policy/authcheck.h"
#include "policy/authcheck_int.h"
#include "policy/dns_int.h"
#include "util/log.h"

#define AUTHCHECK_ROUNDS_MAX 40
#define AUTHCHECK_CACHE_MAX 4096 /* answers kept at most */
#define AUTHCHECK_ANSWERS_MAX 128 /* questions per job at most */
#define AUTHCHECK_NAME_MAX 256
#define AUTHCHECK_SENDER_MAX 520
#define AUTHCHECK_DKIM_PASS_MAX 16

struct authcheck {
	const struct config *cfg;
	struct dns *d;
	struct adns_cache *cache;
	struct authcheck_job *jobs; /* not finished, for close */
};

/* One question of a job, with its answer once known. */
struct job_answer {
	char name[AUTHCHECK_NAME_MAX];
	enum adns_type type;
	struct adns_owned *a;	/* NULL while asked */
	struct adns_query *q;	/* in flight */
	struct authcheck_job *j;
};

struct authcheck_job {
	struct authcheck *ac;
	struct authcheck_job *next, *prev;
	bool do_spf, do_dkim, do_dmarc;
	bool is_spf_done, is_dkim_done, is_dmarc_done;
	bool has_text;	    /* authcheck_finish was called */
	bool is_reported;
	unsigned rounds;
	unsigned outstanding; /* queries in flight */
	struct event *ev;     /* runs a round, or the report, from the loop */
	authcheck_done_fn cb;
	void *arg;
	/* SPF */
	char ip[64], helo[AUTHCHECK_NAME_MAX], sender[AUTHCHECK_SENDER_MAX];
	struct spf_outcome spf;
	enum spf_result spf_r;
	/* DKIM */
	struct dkim_check *dkim;
	/* DMARC */
	char from_domain[AUTHCHECK_NAME_MAX];
	enum hdr_from_status from_status;
	struct dmarc_outcome dmarc;
	enum dmarc_result dmarc_r;
	unsigned sample;
	/* The answers this job was given. */
	struct job_answer *ans[AUTHCHECK_ANSWERS_MAX];
	size_t n_ans;
	bool is_over_budget;
};

const char *
authcheck_action_name(enum authcheck_action a)
{
	static const char *const names[] = {
	    [AUTHCHECK_ACCEPT] = "accept",
	    [AUTHCHECK_REJECT_DMARC] = "reject_dmarc",
	    [AUTHCHECK_REJECT_SPF] = "reject_spf",
	    [AUTHCHECK_TEMPFAIL] = "tempfail",
	};

	return (unsigned)a < sizeof names / sizeof *names ? names[a] : "?";
}

bool
authcheck_is_on(const struct config *cfg)
{
	return cfg->auth_spf || cfg->auth_dkim || cfg->auth_dmarc;
}

struct authcheck *
authcheck_open(const struct config *cfg, struct dns *d)
{
	struct authcheck *a = calloc(1, sizeof *a);

	if (a == NULL)
		return NULL;
	a->cfg = cfg;
	a->d = d;
	a->cache = adns_cache_new(AUTHCHECK_CACHE_MAX);
	if (a->cache == NULL) {
		free(a);
		return NULL;
	}
	return a;
}

void
authcheck_set_config(struct authcheck *a, const struct config *cfg)
{
	if (a != NULL)
		a->cfg = cfg;
}

void
authcheck_close(struct authcheck *a)
{
	if (a == NULL)
		return;
	while (a->jobs)
		authcheck_cancel(a->jobs);
	adns_cache_free(a->cache);
	free(a);
}

/* ------------------------------------------------------------------ */
/* The view the checks read */

static struct job_answer *
answer_find(struct authcheck_job *j, const char *name, enum adns_type type)
{
	for (size_t i = 0; i < j->n_ans; i++)
		if (j->ans[i]->type == type &&
		    strcasecmp(j->ans[i]->name, name) == 0)
			return j->ans[i];
	return NULL;
}

static const struct adns_answer *
view_get(void *ctx, const char *name, enum adns_type type)
{
	struct job_answer *ja = answer_find(ctx, name, type);

	return ja != NULL && ja->a != NULL ? &ja->a->ans : NULL;
}

static void
view_need(void *ctx, const char *name, enum adns_type type)
{
	struct authcheck_job *j = ctx;
	struct job_answer *ja;

	if (answer_find(j, name, type) != NULL)
		return;
	if (j->n_ans >= AUTHCHECK_ANSWERS_MAX ||
	    strlen(name) >= AUTHCHECK_NAME_MAX) {
		j->is_over_budget = true;
		return;
	}
	ja = calloc(1, sizeof *ja);
	if (ja == NULL) {
		j->is_over_budget = true;
		return;
	}
	snprintf(ja->name, sizeof ja->name, "%s", name);
	ja->type = type;
	ja->j = j;
	j->ans[j->n_ans++] = ja;
}

/* ------------------------------------------------------------------ */
/* Rounds */

static void job_wake(struct authcheck_job *j);

static void
on_answer(void *arg, struct adns_owned *a)
{
	struct job_answer *ja = arg;
	struct authcheck_job *j = ja->j;

	ja->q = NULL;
	ja->a = a;
	if (a == NULL) /* out of memory: a tempfail, not kept */
		j->is_over_budget = true;
	else
		adns_cache_put(j->ac->cache, ja->name, ja->type, a);
	if (--j->outstanding == 0)
		job_wake(j);
}

/* Looks up every question not yet answered nor asked; the number of
 * queries sent (answers from the cache count as answered at once). */
static unsigned
ask(struct authcheck_job *j)
{
	unsigned sent = 0;

	for (size_t i = 0; i < j->n_ans; i++) {
		struct job_answer *ja = j->ans[i];
		if (ja->a != NULL || ja->q != NULL)
			continue;
		ja->a = adns_cache_get(j->ac->cache, ja->name, ja->type);
		if (ja->a != NULL)
			continue;
		ja->q = adns_query(j->ac->d, ja->name, ja->type, on_answer,
				   ja);
		if (ja->q == NULL) {
			j->is_over_budget = true;
			continue;
		}
		j->outstanding++;
		sent++;
	}
	return sent;
}

static bool
has_unanswered(const struct authcheck_job *j)
{
	for (size_t i = 0; i < j->n_ans; i++)
		if (j->ans[i]->a == NULL)
			return true;
	return false;
}

/* The DMARC input from SPF's and DKIM's results so far. */
static void
dmarc_round(struct authcheck_job *j, const struct adns_view *v)
{
	const char *pass[AUTHCHECK_DKIM_PASS_MAX];
	size_t n = 0, count = j->dkim ? dkim_check_count(j->dkim) : 0;
	struct dmarc_input in = {0};

	for (size_t i = 0; i < count && n < AUTHCHECK_DKIM_PASS_MAX; i++) {
		const struct dkim_sig_result *r = dkim_check_result(j->dkim, i);
		if (r->result == DKIM_PASS)
			pass[n++] = r->domain;
	}
	in.from_domain = j->from_domain;
	in.spf_pass = j->is_spf_done && j->spf_r == SPF_PASS;
	in.spf_domain = j->spf.domain;
	in.dkim_pass_domains = pass;
	in.n_dkim_pass = n;
	in.sample = j->sample;
	j->dmarc_r = dmarc_eval(&in, v, &j->dmarc);
	if (j->dmarc_r != DMARC_PENDING && j->is_spf_done && j->is_dkim_done)
		j->is_dmarc_done = true;
}

/* One evaluation of every check not done; true when every check that
 * can run now is done (before the text: SPF only). */
static bool
evaluate(struct authcheck_job *j)
{
	struct adns_view v = {view_get, view_need, j};

	if (j->do_spf && !j->is_spf_done) {
		struct spf_request rq = {
		    .ip = j->ip,
		    .helo = j->helo,
		    .sender = j->sender,
		    .receiver = j->ac->cfg->server_hostname,
		    .now = (int64_t)time(NULL),
		};
		j->spf_r = spf_eval(&rq, &v, &j->spf);
		j->is_spf_done = j->spf_r != SPF_PENDING;
	}
	if (!j->has_text)
		return !j->do_spf || j->is_spf_done;
	if (j->do_dkim && !j->is_dkim_done)
		j->is_dkim_done = j->dkim == NULL || dkim_check_eval(j->dkim, &v);
	if (j->do_dmarc && !j->is_dmarc_done) {
		if (j->from_status != HDR_FROM_OK)
			j->is_dmarc_done = true;
		else
			dmarc_round(j, &v);
	}
	return (!j->do_spf || j->is_spf_done) &&
	       (!j->do_dkim || j->is_dkim_done) &&
	       (!j->do_dmarc || j->is_dmarc_done);
}

static void report(struct authcheck_job *j);

/* Rounds until a lookup must be waited for, or all that can be known
 * now is. */
static void
run(struct authcheck_job *j)
{
	for (;;) {
		size_t n_before = j->n_ans;

		if (evaluate(j)) {
			if (j->has_text)
				report(j);
			return;
		}
		if (++j->rounds > AUTHCHECK_ROUNDS_MAX)
			j->is_over_budget = true;
		if (!j->is_over_budget && ask(j) > 0)
			return; /* on_answer runs the next round */
		if (!j->is_over_budget && j->n_ans == n_before &&
		    !has_unanswered(j))
			j->is_over_budget = true; /* pending, asking nothing */
		if (j->is_over_budget) {
			if (j->has_text && j->outstanding == 0)
				report(j);
			return;
		}
		/* every new question was answered from the cache */
	}
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run(arg);
}

static void
job_wake(struct authcheck_job *j)
{
	event_active(j->ev, EV_TIMEOUT, 0);
}

/* ------------------------------------------------------------------ */
/* The verdict */

static bool
any_dkim_temperror(const struct authcheck_job *j, char *why, size_t size)
{
	size_t n = j->dkim ? dkim_check_count(j->dkim) : 0;

	for (size_t i = 0; i < n; i++) {
		const struct dkim_sig_result *r = dkim_check_result(j->dkim, i);
		if (r->result == DKIM_TEMPERROR) {
			snprintf(why, size, "DKIM key of %s (selector %s): %s",
				 r->domain, r->selector, r->problem);
			return true;
		}
	}
	return false;
}

/* What to do, and why, from the results. */
static void
decide(const struct authcheck_job *j, struct authcheck_verdict *v)
{
	const struct config *cfg = j->ac->cfg;

	v->action = AUTHCHECK_ACCEPT;
	if (j->is_over_budget) {
		v->action = AUTHCHECK_TEMPFAIL;
		snprintf(v->why, sizeof v->why, "the DNS lookups did not "
			 "finish (resolver failure or too many)");
	} else if (j->do_spf && j->spf_r == SPF_TEMPERROR) {
		v->action = AUTHCHECK_TEMPFAIL;
		snprintf(v->why, sizeof v->why, "SPF of %s: %s", j->spf.domain,
			 j->spf.problem);
	} else if (j->do_dkim && any_dkim_temperror(j, v->why, sizeof v->why)) {
		v->action = AUTHCHECK_TEMPFAIL;
	} else if (j->do_dmarc && j->dmarc_r == DMARC_TEMPERROR) {
		v->action = AUTHCHECK_TEMPFAIL;
		snprintf(v->why, sizeof v->why, "DMARC record of %s: %s",
			 j->from_domain, j->dmarc.problem);
	} else if (j->do_dmarc && cfg->auth_dmarc &&
		   j->dmarc_r == DMARC_FAIL &&
		   j->dmarc.disposition == DMARC_P_REJECT) {
		v->action = AUTHCHECK_REJECT_DMARC;
		snprintf(v->why, sizeof v->why, "%s", j->dmarc.from_domain);
	} else if (j->do_spf && cfg->auth_spf && j->spf_r == SPF_FAIL &&
		   strcmp(cfg->auth_spf_fail, "reject") == 0 &&
		   !(j->do_dmarc && j->dmarc_r == DMARC_PASS)) {
		v->action = AUTHCHECK_REJECT_SPF;
		snprintf(v->why, sizeof v->why, "%s", j->spf.domain);
	}
}

#define AUTHCHECK_ENTRIES_MAX (2 + AUTHCHECK_DKIM_PASS_MAX)

static void
prop(struct arh_entry *e, const char *ptype, const char *property,
     const char *value)
{
	if (e->n_props < ARH_PROPS_MAX)
		e->props[e->n_props++] =
		    (struct arh_prop){ptype, property, value};
}

/* The Authentication-Results header and the log summary. */
static void
compose(const struct authcheck_job *j, struct authcheck_verdict *v)
{
	struct arh_entry e[AUTHCHECK_ENTRIES_MAX];
	char dmarc_comment[64];
	size_t n = 0, nsig = j->dkim ? dkim_check_count(j->dkim) : 0;
	size_t used = 0;

	memset(e, 0, sizeof e);
	if (j->do_spf) {
		e[n].method = "spf";
		e[n].result = spf_result_name(j->spf_r);
		if (j->spf_r != SPF_PASS && j->spf.problem[0] != '\0')
			e[n].reason = j->spf.problem;
		prop(&e[n], "smtp",
		     strcmp(j->spf.identity, "helo") == 0 ? "helo" : "mailfrom",
		     j->spf.domain);
		n++;
	}
	if (j->do_dkim && nsig == 0) {
		e[n].method = "dkim";
		e[n].result = "none";
		n++;
	}
	for (size_t i = 0; j->do_dkim && i < nsig && n + 1 < AUTHCHECK_ENTRIES_MAX;
	     i++) {
		const struct dkim_sig_result *r = dkim_check_result(j->dkim, i);
		e[n].method = "dkim";
		e[n].result = dkim_result_name(r->result);
		if (r->result != DKIM_PASS && r->problem[0] != '\0')
			e[n].reason = r->problem;
		prop(&e[n], "header", "d", r->domain);
		prop(&e[n], "header", "s", r->selector);
		if (r->header_b[0] != '\0')
			prop(&e[n], "header", "b", r->header_b);
		n++;
	}
	if (j->do_dmarc) {
		e[n].method = "dmarc";
		if (j->from_status != HDR_FROM_OK) {
			e[n].result = j->from_status == HDR_FROM_NONE
					      ? "none"
					      : "permerror";
			e[n].reason = j->from_status == HDR_FROM_NONE
					      ? "no From: header"
					      : "From: names several domains "
						"or none";
		} else {
			e[n].result = dmarc_result_name(j->dmarc_r);
			if (j->dmarc_r == DMARC_PASS || j->dmarc_r == DMARC_FAIL) {
				snprintf(dmarc_comment, sizeof dmarc_comment,
					 "p=%s dis=%s",
					 dmarc_policy_name(j->dmarc.policy),
					 dmarc_policy_name(j->dmarc.disposition));
				e[n].comment = dmarc_comment;
			} else if (j->dmarc.problem[0] != '\0') {
				e[n].reason = j->dmarc.problem;
			}
			prop(&e[n], "header", "from", j->from_domain);
		}
		n++;
	}
	arh_format(v->header, sizeof v->header, j->ac->cfg->server_hostname,
		   e, n);
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(v->summary + used, sizeof v->summary - used,
				 "%s%s=%s", i ? " " : "", e[i].method,
				 e[i].result);
		if (k < 0 || (size_t)k >= sizeof v->summary - used)
			break;
		used += (size_t)k;
	}
}

static void
job_free(struct authcheck_job *j)
{
	struct authcheck *a = j->ac;

	if (j->prev)
		j->prev->next = j->next;
	else if (a->jobs == j)
		a->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	for (size_t i = 0; i < j->n_ans; i++) {
		adns_query_drop(j->ans[i]->q);
		adns_owned_free(j->ans[i]->a);
		free(j->ans[i]);
	}
	dkim_check_free(j->dkim);
	if (j->ev)
		event_free(j->ev);
	free(j);
}

static void
report(struct authcheck_job *j)
{
	struct authcheck_verdict *v;

	if (j->is_reported)
		return;
	j->is_reported = true;
	v = calloc(1, sizeof *v);
	if (v == NULL) {
		static const struct authcheck_verdict oom = {
		    .action = AUTHCHECK_TEMPFAIL,
		    .why = "out of memory",
		};
		j->cb(j->arg, &oom);
	} else {
		decide(j, v);
		compose(j, v);
		j->cb(j->arg, v);
		free(v);
	}
	job_free(j);
}

struct authcheck_job *
authcheck_start(struct authcheck *a, const char *ip, const char *helo,
		const char *sender)
{
	struct authcheck_job *j = calloc(1, sizeof *j);
	const struct config *cfg = a->cfg;

	if (j == NULL)
		return NULL;
	j->ev = event_new(dns_base(a->d), -1, 0, on_wake, j);
	if (j->ev == NULL) {
		free(j);
		return NULL;
	}
	j->ac = a;
	j->do_dmarc = cfg->auth_dmarc;
	j->do_spf = cfg->auth_spf || j->do_dmarc;
	j->do_dkim = cfg->auth_dkim || j->do_dmarc;
	snprintf(j->ip, sizeof j->ip, "%s", ip);
	snprintf(j->helo, sizeof j->helo, "%s", helo);
	snprintf(j->sender, sizeof j->sender, "%s", sender);
	j->next = a->jobs;
	if (a->jobs)
		a->jobs->prev = j;
	a->jobs = j;
	run(j); /* SPF's first lookups go out now */
	/* run() reports (and may end the job) only once the message text
	 * is there: not yet, so j lives; the analyzer cannot see has_text. */
	return j; // NOLINT(clang-analyzer-unix.Malloc)
}

void
authcheck_finish(struct authcheck_job *j, const char *msg, size_t len,
		 authcheck_done_fn cb, void *arg)
{
	const struct config *cfg = j->ac->cfg;

	j->cb = cb;
	j->arg = arg;
	j->has_text = true;
	if (j->do_dkim) {
		j->dkim = dkim_check_new(msg, len, cfg->auth_max_signatures,
					 (int64_t)time(NULL));
		if (j->dkim == NULL)
			j->is_over_budget = true; /* out of memory: 451 */
	}
	if (j->do_dmarc) {
		j->from_status = hdr_from_domain(msg, len, j->from_domain,
						 sizeof j->from_domain);
		j->sample = arc4random_uniform(100);
	}
	/* from the loop, never inside this call */
	if (j->outstanding == 0)
		job_wake(j);
}

void
authcheck_cancel(struct authcheck_job *j)
{
	if (j == NULL)
		return;
	j->is_reported = true;
	job_free(j);
}
