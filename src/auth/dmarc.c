/*
 * dmarc.c - DMARC evaluation (RFC 7489).
 *
 * Called by the auth runner once SPF and DKIM are done; by the fuzzer and
 * the unit tests with a table for DNS.  Pure but for one thing: the
 * Public Suffix List is read once per process (dmarc_org_domain).  No
 * logging; what went wrong is in out->problem.
 *
 * Discovery, RFC 7489 6.6.3:
 *   1-2  TXT at _dmarc.FROM; keep the records that start with v=DMARC1
 *   3-4  none kept: the same at _dmarc.ORG when ORG differs from FROM
 *   5    several (or no) records kept: no DMARC (DMARC_NONE)
 *   6    no valid p= (or an invalid sp=): p=none when rua= holds a
 *        URI, else no DMARC
 * A transient DNS error where the answer would decide is
 * DMARC_TEMPERROR; NXDOMAIN and NODATA are "no records".  Both TXT
 * lookups are asked in the first round so that the caller resolves them
 * in parallel; the one at ORG is read only when FROM's holds no record,
 * so its answer (a TEMPFAIL included) changes nothing otherwise.
 *
 * Records (6.3, 6.4): tag=value pairs split by ";", whitespace around
 * both ignored, tag names without case.  The version must be the first
 * tag and read exactly "DMARC1" (6.4 writes it as %x44 %x4d ..., which
 * is case-sensitive).  p= and sp= none|quarantine|reject without case;
 * pct= 0..100 (else the default 100); adkim= and aspf= r|s (else r);
 * other tags, and rf=, ri=, ruf=, fo=, are ignored: reporting is not
 * done here.  A rua= counts when one of its comma-separated URIs has a
 * scheme ("mailto:...").
 *
 * Alignment (3.1): strict = the same name ignoring case; relaxed = the
 * same organizational domain.  pct= (6.6.4): the caller draws sample in
 * 0..99; the policy applies when sample < pct, otherwise the next milder
 * one does.
 */
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <libpsl.h>

#include "auth/dmarc.h"
#include "util/str.h"

#define DMARC_PREFIX "_dmarc."
#define DMARC_NAME_SIZE (sizeof(DMARC_PREFIX) - 1 + DMARC_DOMAIN_SIZE)
#define DMARC_VERSION "DMARC1"
/* A name in text, without the trailing dot. */
#define DMARC_DNS_NAME_MAX 253

struct dmarc_record {
	bool has_p, is_p_bad, has_sp, is_sp_bad, has_rua;
	enum dmarc_policy p, sp;
	unsigned pct;
	bool is_adkim_strict, is_aspf_strict;
};

/* The Public Suffix List, loaded once (see dmarc.h). */
static pthread_once_t dmarc_psl_once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *dmarc_psl;

static void
dmarc_psl_load(void)
{
	const psl_ctx_t *ctx = psl_latest(NULL);

	dmarc_psl = ctx != NULL ? ctx : psl_builtin();
}

bool
dmarc_org_domain(const char *domain, char *out, size_t size)
{
	char lower[DMARC_DOMAIN_SIZE];
	const char *reg = NULL;
	size_t n;

	if (size > 0)
		out[0] = '\0';
	if (domain == NULL)
		return false;
	n = strlen(domain);
	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || !str_copy(lower, sizeof lower, domain, n))
		return false;
	str_lower(lower);
	if (pthread_once(&dmarc_psl_once, dmarc_psl_load) == 0 &&
	    dmarc_psl != NULL)
		reg = psl_registrable_domain(dmarc_psl, lower);
	return str_set(out, size, reg != NULL ? reg : lower);
}

const char *
dmarc_result_name(enum dmarc_result r)
{
	static const char *const names[] = {
	    "none", "pass", "fail", "temperror", "permerror", "pending"};

	return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	static const char *const names[] = {"none", "quarantine", "reject"};

	return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "?";
}

static bool
dmarc_is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* s[0..n) with the whitespace around it dropped. */
static void
dmarc_trim(const char **s, size_t *n)
{
	while (*n > 0 && dmarc_is_wsp(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && dmarc_is_wsp((*s)[*n - 1]))
		(*n)--;
}

static bool
dmarc_policy_parse(const char *v, size_t n, enum dmarc_policy *p)
{
	if (str_eq_nocase(v, n, "none"))
		*p = DMARC_P_NONE;
	else if (str_eq_nocase(v, n, "quarantine"))
		*p = DMARC_P_QUARANTINE;
	else if (str_eq_nocase(v, n, "reject"))
		*p = DMARC_P_REJECT;
	else
		return false;
	return true;
}

/* pct=: 1*3DIGIT up to 100, else the default. */
static unsigned
dmarc_pct_parse(const char *v, size_t n)
{
	unsigned pct = 0;

	if (n == 0 || n > 3)
		return DMARC_PCT_DEFAULT;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return DMARC_PCT_DEFAULT;
		pct = pct * 10 + (unsigned)(v[i] - '0');
	}
	return pct <= DMARC_PCT_DEFAULT ? pct : DMARC_PCT_DEFAULT;
}

/* rua=: true when one URI of the list has a scheme (RFC 3986 3.1). */
static bool
dmarc_rua_parse(const char *v, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t start, j;

		while (i < n && (dmarc_is_wsp(v[i]) || v[i] == ','))
			i++;
		start = i;
		for (j = i; j < n && v[j] != ','; j++)
			;
		if (j > start && ((v[start] >= 'a' && v[start] <= 'z') ||
				  (v[start] >= 'A' && v[start] <= 'Z'))) {
			size_t k = start + 1;

			while (k < j && v[k] != ':' &&
			       (strchr("+-.", v[k]) != NULL ||
				(v[k] >= '0' && v[k] <= '9') ||
				(v[k] >= 'a' && v[k] <= 'z') ||
				(v[k] >= 'A' && v[k] <= 'Z')))
				k++;
			if (k < j && v[k] == ':' && k + 1 < j)
				return true;
		}
		i = j;
	}
	return false;
}

static void
dmarc_tag(struct dmarc_record *r, const char *t, size_t tn, const char *v,
	  size_t vn)
{
	if (str_eq_nocase(t, tn, "p")) {
		r->has_p = true;
		r->is_p_bad = !dmarc_policy_parse(v, vn, &r->p);
	} else if (str_eq_nocase(t, tn, "sp")) {
		r->has_sp = true;
		r->is_sp_bad = !dmarc_policy_parse(v, vn, &r->sp);
	} else if (str_eq_nocase(t, tn, "pct")) {
		r->pct = dmarc_pct_parse(v, vn);
	} else if (str_eq_nocase(t, tn, "adkim")) {
		r->is_adkim_strict = str_eq_nocase(v, vn, "s");
	} else if (str_eq_nocase(t, tn, "aspf")) {
		r->is_aspf_strict = str_eq_nocase(v, vn, "s");
	} else if (str_eq_nocase(t, tn, "rua")) {
		r->has_rua = r->has_rua || dmarc_rua_parse(v, vn);
	}
}

/* The next tag of s: false at the end; *rest is what follows. */
static bool
dmarc_next_tag(const char **rest, const char **t, size_t *tn, const char **v,
	       size_t *vn, bool *is_pair)
{
	const char *s = *rest, *semi, *eq;
	size_t n;

	if (s == NULL)
		return false;
	semi = strchr(s, ';');
	n = semi != NULL ? (size_t)(semi - s) : strlen(s);
	*rest = semi != NULL ? semi + 1 : NULL;
	eq = memchr(s, '=', n);
	*is_pair = eq != NULL;
	*t = s;
	*tn = eq != NULL ? (size_t)(eq - s) : n;
	*v = eq != NULL ? eq + 1 : s + n;
	*vn = eq != NULL ? n - *tn - 1 : 0;
	dmarc_trim(t, tn);
	dmarc_trim(v, vn);
	return true;
}

/*
 * Parses one TXT record; false when it is not a DMARC record at all (its
 * first tag is not v=DMARC1).  Later tags that are not tag=value are
 * skipped, and so is an empty one (a trailing ";").
 */
static bool
dmarc_record_parse(const char *txt, struct dmarc_record *r)
{
	const char *rest = txt, *t, *v;
	size_t tn, vn;
	bool is_pair;

	memset(r, 0, sizeof *r);
	r->pct = DMARC_PCT_DEFAULT;
	if (!dmarc_next_tag(&rest, &t, &tn, &v, &vn, &is_pair) || !is_pair ||
	    !str_eq_nocase(t, tn, "v") || vn != sizeof(DMARC_VERSION) - 1 ||
	    memcmp(v, DMARC_VERSION, vn) != 0)
		return false;
	while (dmarc_next_tag(&rest, &t, &tn, &v, &vn, &is_pair))
		if (is_pair)
			dmarc_tag(r, t, tn, v, vn);
	return true;
}

/* What one _dmarc TXT lookup gave. */
enum dmarc_found {
	DMARC_FOUND_PENDING,
	DMARC_FOUND_TEMPFAIL,
	DMARC_FOUND_NONE,    /* no DMARC record */
	DMARC_FOUND_SEVERAL, /* more than one: 6.6.3 step 5 */
	DMARC_FOUND_ONE,
};

static enum dmarc_found
dmarc_lookup(const struct adns_view *dns, const char *name,
	     struct dmarc_record *rec)
{
	const struct adns_answer *a = dns->get(dns->ctx, name, ADNS_TXT);
	struct dmarc_record tmp;
	unsigned n = 0;

	if (a == NULL)
		return DMARC_FOUND_PENDING;
	if (a->status == ADNS_TEMPFAIL)
		return DMARC_FOUND_TEMPFAIL;
	if (a->status != ADNS_OK)
		return DMARC_FOUND_NONE;
	for (size_t i = 0; i < a->n; i++) {
		if (a->rr[i] == NULL || !dmarc_record_parse(a->rr[i], &tmp))
			continue;
		if (n++ == 0)
			*rec = tmp;
	}
	return n == 0	? DMARC_FOUND_NONE
	       : n == 1 ? DMARC_FOUND_ONE
			: DMARC_FOUND_SEVERAL;
}

/* _dmarc.DOMAIN; false past what DNS can ask (RFC 1035 2.3.4). */
static bool
dmarc_name(char *name, size_t size, const char *domain)
{
	int n = snprintf(name, size, "%s%s", DMARC_PREFIX, domain);

	return n > 0 && (size_t)n < size && (size_t)n <= DMARC_DNS_NAME_MAX;
}

/* Relaxed or strict alignment of a with the From domain (3.1). */
static bool
dmarc_aligned(const char *a, const char *from, const char *from_org,
	      bool is_strict)
{
	char a_org[DMARC_DOMAIN_SIZE], tmp[DMARC_DOMAIN_SIZE];
	size_t n;

	if (a == NULL || a[0] == '\0')
		return false;
	n = strlen(a);
	if (a[n - 1] == '.')
		n--;
	if (!str_copy(tmp, sizeof tmp, a, n))
		return false;
	if (is_strict)
		return strcasecmp(tmp, from) == 0;
	return dmarc_org_domain(tmp, a_org, sizeof a_org) &&
	       strcmp(a_org, from_org) == 0;
}

static enum dmarc_result
dmarc_done(struct dmarc_outcome *out, enum dmarc_result r, const char *problem)
{
	out->result = r;
	if (problem != NULL)
		snprintf(out->problem, sizeof out->problem, "%s", problem);
	return r;
}

static enum dmarc_policy
dmarc_milder(enum dmarc_policy p)
{
	return p == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
}

/* 6.6.3 step 6 and the choice of p= or sp=, then alignment. */
static enum dmarc_result
dmarc_apply(const struct dmarc_input *in, struct dmarc_record *rec,
	    bool is_org_record, const char *from_org, struct dmarc_outcome *out)
{
	bool is_pass;

	if (!rec->has_p || rec->is_p_bad || rec->is_sp_bad) {
		if (!rec->has_rua)
			return dmarc_done(out, DMARC_NONE,
					  "record without a valid p= or sp="
					  " and no rua=: ignored");
		snprintf(out->problem, sizeof out->problem, "%s",
			 "no valid p= or sp=; rua= given: as p=none");
		rec->p = DMARC_P_NONE;
		rec->has_sp = false;
	}
	out->policy = is_org_record && rec->has_sp ? rec->sp : rec->p;
	out->pct = rec->pct;
	out->is_spf_aligned =
	    in->spf_pass == 1 && dmarc_aligned(in->spf_domain, out->from_domain,
					       from_org, rec->is_aspf_strict);
	for (size_t i = 0; i < in->n_dkim_pass && in->dkim_pass_domains; i++)
		if (dmarc_aligned(in->dkim_pass_domains[i], out->from_domain,
				  from_org, rec->is_adkim_strict))
			out->is_dkim_aligned = true;
	is_pass = out->is_spf_aligned || out->is_dkim_aligned;
	if (is_pass)
		return dmarc_done(out, DMARC_PASS, NULL);
	out->disposition =
	    in->sample < rec->pct ? out->policy : dmarc_milder(out->policy);
	return dmarc_done(out, DMARC_FAIL, NULL);
}

static enum dmarc_result
dmarc_found_end(struct dmarc_outcome *out, enum dmarc_found f, const char *name)
{
	char why[DMARC_PROBLEM_SIZE];

	/* The name cut to what fits with the words (a problem is a hint). */
	snprintf(why, sizeof why, "%s %.120s",
		 f == DMARC_FOUND_TEMPFAIL ? "lookup failed:"
					   : "several DMARC records at",
		 name);
	return dmarc_done(
	    out, f == DMARC_FOUND_TEMPFAIL ? DMARC_TEMPERROR : DMARC_NONE, why);
}

enum dmarc_result
dmarc_eval(const struct dmarc_input *in, const struct adns_view *dns,
	   struct dmarc_outcome *out)
{
	char org[DMARC_DOMAIN_SIZE], from_name[DMARC_NAME_SIZE],
	    org_name[DMARC_NAME_SIZE];
	struct dmarc_record rec;
	enum dmarc_found f, g;
	bool has_org;
	size_t n;

	memset(out, 0, sizeof *out);
	memset(&rec, 0, sizeof rec);
	if (in->from_domain == NULL)
		return dmarc_done(out, DMARC_PERMERROR, "no From domain");
	n = strlen(in->from_domain);
	if (n > 0 && in->from_domain[n - 1] == '.')
		n--;
	if (n == 0 ||
	    !str_copy(out->from_domain, sizeof out->from_domain,
		      in->from_domain, n) ||
	    !dmarc_org_domain(out->from_domain, org, sizeof org))
		return dmarc_done(out, DMARC_PERMERROR, "bad From domain");
	str_lower(out->from_domain);
	has_org = strcmp(org, out->from_domain) != 0;
	if (!dmarc_name(from_name, sizeof from_name, out->from_domain) ||
	    !dmarc_name(org_name, sizeof org_name, org))
		return dmarc_done(out, DMARC_PERMERROR, "From domain too long");

	f = dmarc_lookup(dns, from_name, &rec);
	if (f == DMARC_FOUND_PENDING) {
		/* Both now, in parallel: the second is likely needed. */
		dns->need(dns->ctx, from_name, ADNS_TXT);
		if (has_org && dns->get(dns->ctx, org_name, ADNS_TXT) == NULL)
			dns->need(dns->ctx, org_name, ADNS_TXT);
		return dmarc_done(out, DMARC_PENDING, NULL);
	}
	if (f == DMARC_FOUND_TEMPFAIL || f == DMARC_FOUND_SEVERAL)
		return dmarc_found_end(out, f, from_name);
	if (f == DMARC_FOUND_ONE) {
		str_set(out->policy_domain, sizeof out->policy_domain,
			out->from_domain);
		return dmarc_apply(in, &rec, false, org, out);
	}
	if (!has_org)
		return dmarc_done(out, DMARC_NONE, "no DMARC record");
	g = dmarc_lookup(dns, org_name, &rec);
	if (g == DMARC_FOUND_PENDING) {
		dns->need(dns->ctx, org_name, ADNS_TXT);
		return dmarc_done(out, DMARC_PENDING, NULL);
	}
	if (g == DMARC_FOUND_TEMPFAIL || g == DMARC_FOUND_SEVERAL)
		return dmarc_found_end(out, g, org_name);
	if (g == DMARC_FOUND_NONE)
		return dmarc_done(out, DMARC_NONE, "no DMARC record");
	str_set(out->policy_domain, sizeof out->policy_domain, org);
	return dmarc_apply(in, &rec, true, org, out);
}
