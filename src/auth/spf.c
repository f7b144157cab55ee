/*
 * spf.c - RFC 7208 check_host(): record selection, the mechanisms and
 * modifiers and the processing limits, over the DNS view of auth/adns.h.
 * The record grammar is in spf_record.c, macros and domain names in
 * spf_macro.c; what the three share is in spf_int.h.
 *
 * Called by policy's auth run (and the unit tests, the fuzzer) through
 * spf_eval().  Pure and restartable: every call evaluates from the start
 * against the answers the view holds; at the first answer missing it asks
 * for it with need() and the whole evaluation reports SPF_PENDING.  Where
 * one step needs several answers at once (the addresses of every MX host,
 * of every PTR name) all are asked in the same round, and when a record
 * stops on a missing answer the TXT records of its later include: and
 * redirect= targets are asked ahead too.  Asking ahead never changes a
 * result: evaluation reads only what the sequential algorithm would read.
 *
 * What it promises (RFC 7208 sections):
 *   4.3   an initial domain that is malformed or does not exist: none
 *   4.5   exactly one TXT record starting "v=spf1" (then space or end);
 *         none: none; several: permerror
 *   4.6   the whole record is checked for syntax before anything is
 *         evaluated; any error is permerror
 *   4.6.4 10 DNS-querying terms (include a mx ptr exists redirect), 2
 *         void lookups (a term whose lookup got NODATA or NXDOMAIN), 10
 *         MX names (more: permerror), 10 PTR names (the rest ignored)
 *   5     the mechanisms, with 5.2's include table and dual CIDR lengths
 *   6     redirect= (once; no record there: permerror), exp= (once; only
 *         on fail; any trouble getting it: no explanation)
 *   7     macros s l o d i p v h, and c r t in exp= text only
 * A TEMPFAIL answer is temperror, except where 5.5 says a ptr lookup
 * error is no match, and for exp= (no explanation).
 *
 * Decisions where the RFC leaves room: the void limit counts one per
 * term (the a/exists address, the mx MX set, the ptr PTR set), not the
 * addresses of MX hosts; a target that is not a valid name after macro
 * expansion is a void lookup for a/mx/ptr/exists and "none" for
 * include/redirect (so permerror); %{d0} is a syntax error.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/spf.h"
#include "auth/spf_int.h"
#include "util/str.h"

/* include/redirect nesting; the lookup limit stops well before */
#define SPF_DEPTH_MAX 12
#define SPF_EXPAND_MAX 2048 /* a macro-expanded string before cutting */

static enum spf_result spf_check_host(struct spf_ctx *c, const char *domain,
				      unsigned depth, bool can_explain);

const char *
spf_result_name(enum spf_result r)
{
	static const char *const names[] = {
	    "none",	"neutral",   "pass",	  "fail",
	    "softfail", "temperror", "permerror", "pending",
	};

	return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

/* The first reason wins: it is the deepest, most specific one. */
void __attribute__((format(printf, 2, 3)))
spf_problem(struct spf_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->out->problem[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(c->out->problem, sizeof c->out->problem, fmt, ap);
	va_end(ap);
}

const struct adns_answer *
spf_get(struct spf_ctx *c, const char *name, enum adns_type type)
{
	const struct adns_answer *a = c->dns->get(c->dns->ctx, name, type);

	if (a == NULL && !c->is_quiet)
		c->dns->need(c->dns->ctx, name, type);
	return a;
}

static bool
spf_is_void(const struct adns_answer *a)
{
	return a->status == ADNS_NXDOMAIN || a->status == ADNS_NODATA ||
	       (a->status == ADNS_OK && a->n == 0);
}

static enum spf_result
spf_tempfail(struct spf_ctx *c, const char *name, enum adns_type type)
{
	spf_problem(c, "DNS error looking up %s %.*s", adns_type_name(type),
		    SPF_SHOWN_MAX, name);
	return SPF_TEMPERROR;
}

/* RFC 7208 4.6.4: one more void lookup; false past the limit. */
static bool
spf_count_void(struct spf_ctx *c)
{
	if (++c->voids <= SPF_VOID_MAX)
		return true;
	spf_problem(c, "%s", "void lookup limit");
	return false;
}

/* RFC 7208 4.6.4: one more DNS-querying term; false past the limit. */
static bool
spf_count_lookup(struct spf_ctx *c)
{
	if (++c->out->lookups <= SPF_LOOKUP_MAX)
		return true;
	spf_problem(c, "%s", "too many DNS lookups");
	return false;
}

/* ---- addresses ---- */

static bool
spf_ip_parse(const char *s, struct spf_ip *ip)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,	   0,
						 0, 0, 0, 0, 0xff, 0xff};

	memset(ip, 0, sizeof *ip);
	if (s == NULL)
		return false;
	if (inet_pton(AF_INET, s, ip->b) == 1)
		return true;
	if (inet_pton(AF_INET6, s, ip->b) != 1)
		return false;
	if (memcmp(ip->b, mapped, sizeof mapped) == 0) {
		memmove(ip->b, ip->b + 12, 4);
		memset(ip->b + 4, 0, 12);
		return true;
	}
	ip->is_v6 = true;
	return true;
}

/* True when the first bits of a and b agree. */
static bool
spf_ip_in(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	unsigned char mask;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* Does any address record in a fall in the client's network? */
bool
spf_addrs_match(const struct spf_ctx *c, const struct adns_answer *a,
		unsigned cidr)
{
	unsigned char b[16];

	for (size_t i = 0; a->status == ADNS_OK && i < a->n; i++) {
		memset(b, 0, sizeof b);
		if (inet_pton(c->ip.is_v6 ? AF_INET6 : AF_INET, a->rr[i], b) !=
		    1)
			continue;
		if (spf_ip_in(c->ip.b, b, cidr))
			return true;
	}
	return false;
}

/* The PTR query name of the client's address. */
void
spf_ip_reverse(const struct spf_ip *ip, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (!ip->is_v6) {
		snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", ip->b[3],
			 ip->b[2], ip->b[1], ip->b[0]);
		return;
	}
	for (int i = 31; i >= 0 && n + 2 < size; i--) {
		unsigned v = i % 2 ? ip->b[i / 2] & 0xf : ip->b[i / 2] >> 4;

		out[n++] = hex[v];
		out[n++] = '.';
	}
	out[n] = '\0';
	snprintf(out + n, size - n, "ip6.arpa");
}

/* ---- evaluation ---- */

/*
 * The target of a term: its domain-spec expanded and fitted (4.8), or the
 * current domain.  Returns 0, or 1 when pending.
 */
static int
spf_target(struct spf_ctx *c, const struct spf_term *t, const char *domain,
	   char *out, size_t size)
{
	char buf[SPF_EXPAND_MAX];
	int rc;

	if (t->spec == NULL) {
		snprintf(out, size, "%s", domain);
		return 0;
	}
	rc = spf_expand_str(c, t->spec, t->spec_len, domain, false, buf,
			    sizeof buf);
	if (rc > 0)
		return rc;
	if (rc < 0 || strlen(buf) + 1 >= sizeof buf)
		buf[0] = '\0'; /* too long to be cut right: not a name */
	spf_name_fit(buf);
	snprintf(out, size, "%s", buf);
	return 0;
}

/*
 * A lookup of a term's target: the answer, or NULL with *res_out set
 * (pending, temperror, or a void lookup: no match unless past the
 * limit).
 */
static const struct adns_answer *
spf_term_lookup(struct spf_ctx *c, const char *name, enum adns_type type,
		enum spf_step *step_out, enum spf_result *res_out)
{
	const struct adns_answer *a;

	*step_out = SPF_STOP;
	if (!spf_name_valid(name)) {
		*step_out = SPF_NOMATCH;
		if (!spf_count_void(c)) {
			*step_out = SPF_STOP;
			*res_out = SPF_PERMERROR;
		}
		return NULL;
	}
	a = spf_get(c, name, type);
	if (a == NULL) {
		*res_out = SPF_PENDING;
		return NULL;
	}
	if (a->status == ADNS_TEMPFAIL) {
		*res_out = spf_tempfail(c, name, type);
		return NULL;
	}
	if (spf_is_void(a)) {
		*step_out = SPF_NOMATCH;
		if (!spf_count_void(c)) {
			*step_out = SPF_STOP;
			*res_out = SPF_PERMERROR;
		}
		return NULL;
	}
	return a;
}

/* 5.4: the addresses of every MX host, all asked in one round. */
static enum spf_step
spf_eval_mx(struct spf_ctx *c, const char *name, unsigned cidr,
	    enum spf_result *res_out)
{
	const struct adns_answer *mx, *a;
	enum spf_step step;
	bool is_pending = false;

	mx = spf_term_lookup(c, name, ADNS_MX, &step, res_out);
	if (mx == NULL)
		return step; /* pending, temperror, void or a bad name */
	if (mx->n > SPF_MX_MAX) {
		spf_problem(c, "more than %d MX records for %.*s", SPF_MX_MAX,
			    SPF_SHOWN_MAX, name);
		*res_out = SPF_PERMERROR;
		return SPF_STOP;
	}
	for (size_t i = 0; i < mx->n; i++) {
		if (mx->rr[i][0] == '\0' || !spf_name_valid(mx->rr[i]))
			continue; /* null MX (RFC 7505) */
		a = spf_get(c, mx->rr[i], spf_addr_type(c));
		if (a == NULL) {
			is_pending = true;
			continue;
		}
		if (is_pending)
			continue;
		if (a->status == ADNS_TEMPFAIL) {
			*res_out = spf_tempfail(c, mx->rr[i], spf_addr_type(c));
			return SPF_STOP;
		}
		if (spf_addrs_match(c, a, cidr))
			return SPF_MATCH;
	}
	if (is_pending) {
		*res_out = SPF_PENDING;
		return SPF_STOP;
	}
	return SPF_NOMATCH;
}

/*
 * 5.5: a PTR name of the client, among the first 10, that is target or
 * under it and has the client's address.  DNS errors are no match.  Only
 * the names that could match are looked up, all in one round.
 */
static enum spf_step
spf_eval_ptr(struct spf_ctx *c, const char *target, enum spf_result *res_out)
{
	char rev[SPF_REV_MAX];
	const struct adns_answer *ptr, *a;
	size_t tlen = strlen(target);
	bool is_pending = false;

	spf_ip_reverse(&c->ip, rev, sizeof rev);
	ptr = spf_get(c, rev, ADNS_PTR);
	if (ptr == NULL) {
		*res_out = SPF_PENDING;
		return SPF_STOP;
	}
	if (ptr->status == ADNS_TEMPFAIL)
		return SPF_NOMATCH;
	if (spf_is_void(ptr)) {
		if (spf_count_void(c))
			return SPF_NOMATCH;
		*res_out = SPF_PERMERROR;
		return SPF_STOP;
	}
	for (size_t i = 0; i < ptr->n && i < SPF_PTR_MAX; i++) {
		const char *name = ptr->rr[i];
		size_t nlen = strlen(name);

		if (strcasecmp(name, target) != 0 &&
		    !(nlen > tlen && name[nlen - tlen - 1] == '.' &&
		      strcasecmp(name + nlen - tlen, target) == 0))
			continue;
		if (!spf_name_valid(name))
			continue;
		a = spf_get(c, name, spf_addr_type(c));
		if (a == NULL)
			is_pending = true;
		else if (spf_addrs_match(c, a, c->ip.is_v6 ? 128 : 32))
			return SPF_MATCH;
	}
	if (is_pending) {
		*res_out = SPF_PENDING;
		return SPF_STOP;
	}
	return SPF_NOMATCH;
}

/* 5.2: include's result table. */
static enum spf_step
spf_eval_include(struct spf_ctx *c, const char *target, unsigned depth,
		 enum spf_result *res_out)
{
	enum spf_result r = spf_check_host(c, target, depth + 1, false);

	switch (r) {
	case SPF_PASS:
		return SPF_MATCH;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
	case SPF_NEUTRAL:
		return SPF_NOMATCH;
	case SPF_NONE:
		c->out->problem[0] = '\0';
		spf_problem(c, "no SPF record at included %.*s", SPF_SHOWN_MAX,
			    target);
		*res_out = SPF_PERMERROR;
		return SPF_STOP;
	default:
		*res_out = r;
		return SPF_STOP;
	}
}

/* One mechanism: match, no match, or a result that ends it all. */
static enum spf_step
spf_eval_mech(struct spf_ctx *c, const struct spf_term *t, const char *domain,
	      unsigned depth, enum spf_result *res_out)
{
	char target[SPF_NAME_MAX + 2];
	const struct adns_answer *a;
	enum spf_step step;
	unsigned cidr = c->ip.is_v6 ? t->cidr6 : t->cidr4;

	switch (t->mech) {
	case SPF_M_ALL:
		return SPF_MATCH;
	case SPF_M_IP4:
		return !c->ip.is_v6 && spf_ip_in(c->ip.b, t->net, t->cidr4)
			   ? SPF_MATCH
			   : SPF_NOMATCH;
	case SPF_M_IP6:
		return c->ip.is_v6 && spf_ip_in(c->ip.b, t->net, t->cidr4)
			   ? SPF_MATCH
			   : SPF_NOMATCH;
	default:
		break;
	}
	if (!spf_count_lookup(c)) {
		*res_out = SPF_PERMERROR;
		return SPF_STOP;
	}
	if (spf_target(c, t, domain, target, sizeof target) != 0) {
		*res_out = SPF_PENDING;
		return SPF_STOP;
	}
	switch (t->mech) {
	case SPF_M_INCLUDE:
		return spf_eval_include(c, target, depth, res_out);
	case SPF_M_A:
		a = spf_term_lookup(c, target, spf_addr_type(c), &step,
				    res_out);
		if (a == NULL)
			return step;
		return spf_addrs_match(c, a, cidr) ? SPF_MATCH : SPF_NOMATCH;
	case SPF_M_MX:
		return spf_eval_mx(c, target, cidr, res_out);
	case SPF_M_PTR:
		return spf_eval_ptr(c, target, res_out);
	default: /* exists: always an A query (5.7) */
		a = spf_term_lookup(c, target, ADNS_A, &step, res_out);
		return a == NULL ? step : SPF_MATCH;
	}
}

/*
 * Asks ahead for the TXT records of the include: and redirect= targets
 * after pos in rec, when an earlier term waits for DNS.
 */
static void
spf_ask_ahead(struct spf_ctx *c, const char *rec, size_t pos,
	      const char *domain)
{
	char target[SPF_NAME_MAX + 2];
	struct spf_term t;
	const char *s;
	size_t len;

	c->is_quiet = true;
	while (spf_next_term(rec, &pos, &s, &len)) {
		if (!spf_parse_term(s, len, &t))
			break;
		if (t.is_modifier ? t.mod != SPF_MOD_REDIRECT
				  : t.mech != SPF_M_INCLUDE)
			continue;
		if (spf_target(c, &t, domain, target, sizeof target) != 0 ||
		    !spf_name_valid(target))
			continue;
		c->dns->need(c->dns->ctx, target, ADNS_TXT);
	}
	c->is_quiet = false;
}

/* 6.2: the explanation of a fail, when there is one to be had. */
static enum spf_result
spf_explain(struct spf_ctx *c, const struct spf_term *exp, const char *domain)
{
	char target[SPF_NAME_MAX + 2];
	const struct adns_answer *a;
	char *out = c->out->explanation;

	if (exp->spec == NULL)
		return SPF_FAIL;
	if (spf_target(c, exp, domain, target, sizeof target) != 0)
		return SPF_PENDING;
	if (!spf_name_valid(target))
		return SPF_FAIL;
	a = spf_get(c, target, ADNS_TXT);
	if (a == NULL)
		return SPF_PENDING;
	if (a->status != ADNS_OK || a->n != 1)
		return SPF_FAIL;
	switch (spf_expand_str(c, a->rr[0], strlen(a->rr[0]), domain, true, out,
			       sizeof c->out->explanation)) {
	case 1:
		out[0] = '\0';
		return SPF_PENDING;
	case -1:
		out[0] = '\0';
		return SPF_FAIL;
	default:
		return SPF_FAIL;
	}
}

/* 4.4, 4.5: the one SPF record of domain, or a result. */
static enum spf_result
spf_select(struct spf_ctx *c, const char *domain, const char **rec_out)
{
	const struct adns_answer *a;
	size_t found = 0;

	if (!spf_name_valid(domain)) {
		spf_problem(c, "invalid domain '%.*s'", SPF_SHOWN_MAX, domain);
		return SPF_NONE;
	}
	a = spf_get(c, domain, ADNS_TXT);
	if (a == NULL)
		return SPF_PENDING;
	if (a->status == ADNS_TEMPFAIL)
		return spf_tempfail(c, domain, ADNS_TXT);
	for (size_t i = 0; a->status == ADNS_OK && i < a->n; i++) {
		if (spf_version_len(a->rr[i]) == 0)
			continue;
		*rec_out = a->rr[i];
		found++;
	}
	if (found > 1) {
		spf_problem(c, "several SPF records at %.*s", SPF_SHOWN_MAX,
			    domain);
		return SPF_PERMERROR;
	}
	if (found == 0) {
		spf_problem(c, "%s %.*s",
			    a->status == ADNS_NXDOMAIN ? "no domain"
						       : "no SPF record at",
			    SPF_SHOWN_MAX, domain);
		return SPF_NONE;
	}
	return SPF_NEUTRAL; /* found one; the value only means "go on" */
}

/* 4: check_host(<ip>, <domain>, <sender>). */
static enum spf_result
spf_check_host(struct spf_ctx *c, const char *domain, unsigned depth,
	       bool can_explain)
{
	struct spf_term redir = {0}, exp = {0}, t;
	char target[SPF_NAME_MAX + 2];
	const char *rec = NULL, *s;
	size_t pos, len;
	enum spf_result r;

	if (depth > SPF_DEPTH_MAX) {
		spf_problem(c, "%s", "too many DNS lookups");
		return SPF_PERMERROR;
	}
	r = spf_select(c, domain, &rec);
	if (rec == NULL || r != SPF_NEUTRAL)
		return r;
	if (!spf_record_check(c, rec, &redir, &exp))
		return SPF_PERMERROR;
	pos = spf_version_len(rec);
	while (spf_next_term(rec, &pos, &s, &len)) {
		enum spf_step step;

		(void)spf_parse_term(s, len, &t);
		if (t.is_modifier)
			continue;
		step = spf_eval_mech(c, &t, domain, depth, &r);
		if (step == SPF_NOMATCH)
			continue;
		if (step == SPF_STOP) {
			if (r == SPF_PENDING)
				spf_ask_ahead(c, rec, pos, domain);
			return r;
		}
		if (t.qualifier == SPF_FAIL && can_explain)
			return spf_explain(c, &exp, domain);
		return t.qualifier;
	}
	if (redir.spec == NULL)
		return SPF_NEUTRAL;
	if (!spf_count_lookup(c))
		return SPF_PERMERROR;
	if (spf_target(c, &redir, domain, target, sizeof target) != 0)
		return SPF_PENDING;
	r = spf_check_host(c, target, depth + 1, can_explain);
	if (r == SPF_NONE) {
		c->out->problem[0] = '\0';
		spf_problem(c, "no SPF record at redirect %.*s", SPF_SHOWN_MAX,
			    target);
		return SPF_PERMERROR;
	}
	return r;
}

/* Sets the identity, <sender>, local part and domain (RFC 7208 2.4, 4.3). */
static void
spf_ctx_init(struct spf_ctx *c, const struct spf_request *rq,
	     const struct adns_view *dns, struct spf_outcome *out)
{
	const char *sender = rq->sender ? rq->sender : "";
	const char *at = strrchr(sender, '@');
	const char *helo = rq->helo ? rq->helo : "";
	const char *dom;
	size_t llen;

	memset(c, 0, sizeof *c);
	memset(out, 0, sizeof *out);
	c->rq = rq;
	c->dns = dns;
	c->out = out;
	if (sender[0] == '\0') {
		out->identity = "helo";
		llen = 0;
		dom = helo;
	} else {
		out->identity = "mailfrom";
		llen = at ? (size_t)(at - sender) : 0;
		dom = at ? at + 1 : sender;
	}
	if (llen == 0 ||
	    !str_copy(c->local_buf, sizeof c->local_buf, sender, llen))
		snprintf(c->local_buf, sizeof c->local_buf, "postmaster");
	c->local = c->local_buf;
	snprintf(out->domain, sizeof out->domain, "%s", dom);
	llen = strlen(out->domain);
	if (llen > 0 && out->domain[llen - 1] == '.')
		out->domain[llen - 1] = '\0';
	c->sdom = out->domain;
	snprintf(out->sender, sizeof out->sender, "%s@%s", c->local,
		 out->domain);
}

enum spf_result
spf_eval(const struct spf_request *rq, const struct adns_view *dns,
	 struct spf_outcome *out)
{
	struct spf_ctx c;
	enum spf_result r;

	spf_ctx_init(&c, rq, dns, out);
	if (!spf_ip_parse(rq->ip, &c.ip)) {
		spf_problem(&c, "%s", "client address is not an IP address");
		out->result = SPF_PERMERROR;
		return out->result;
	}
	r = spf_check_host(&c, out->domain, 0, true);
	if (r != SPF_FAIL)
		out->explanation[0] = '\0';
	if (r == SPF_PASS || r == SPF_FAIL || r == SPF_SOFTFAIL ||
	    r == SPF_NEUTRAL || r == SPF_PENDING)
		out->problem[0] = '\0';
	out->result = r;
	return r;
}

int
spf_expand(const struct spf_request *rq, const struct adns_view *dns,
	   const char *domain, const char *spec, bool is_exp, char *out,
	   size_t size)
{
	struct spf_outcome o;
	struct spf_ctx c;

	if (size == 0)
		return -1;
	out[0] = '\0';
	spf_ctx_init(&c, rq, dns, &o);
	if (!spf_ip_parse(rq->ip, &c.ip))
		return -1;
	return spf_expand_str(&c, spec, strlen(spec), domain, is_exp, out,
			      size);
}
