/*
 * authcheck_dns.c - answers to the DNS questions of the SPF, DKIM and
 * DMARC checks (src/auth/adns.h), through the server's c-ares channel,
 * and a cache that keeps them for their TTL.
 *
 * Who calls it: authcheck.c, on the loop thread only.
 *
 * Promises: an adns_query's callback runs exactly once, later, on the
 * loop (never inside adns_query), at the latest [dns] timeout seconds
 * after the question was sent, unless the query was dropped first.  A
 * timeout, SERVFAIL, REFUSED, an unreachable server, an answer that does
 * not parse or no memory is ADNS_TEMPFAIL (RFC 7208's temperror): never
 * taken for "no such record".  Answers are kept for the lowest TTL of
 * their records (at most ADNS_TTL_MAX); NXDOMAIN and NODATA for
 * ADNS_NEG_TTL (RFC 2308 would use the zone's SOA minimum, which c-ares
 * does not hand us parsed; a minute is short enough not to matter); a
 * TEMPFAIL is never kept, so the retry of a 451 asks again.  The cache
 * holds at most its max entries and drops the oldest first.
 *
 * The answer is read straight from the DNS message with c-ares' name
 * decompression (ares_expand_name): one walker for every type, because
 * c-ares 1.18's TXT, MX and PTR parsers do not report TTLs.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <ares.h>
#include <arpa/nameser.h>
#include <event2/event.h>

#include "policy/authcheck_int.h"
#include "policy/dns_int.h"
#include "util/log.h"

#define ADNS_TTL_MAX 86400  /* a day, whatever the zone says */
#define ADNS_NEG_TTL 60	    /* NXDOMAIN and NODATA */
#define ADNS_RR_MAX 64	    /* records of one answer kept at most */
#define ADNS_TEXT_MAX 65536 /* octets of record text of one answer */
#define ADNS_HEADER_LEN 12  /* RFC 1035 4.1.1 */
#define ADNS_RR_FIXED 10    /* type, class, TTL, RDLENGTH */
#define ADNS_NAME_MAX 256
#define ADNS_TLSA_DATA_MAX 2048 /* a full certificate in a TLSA record */


/* ------------------------------------------------------------------ */
/* Answers we own */

/* One allocation: the struct, the pointer array, then the texts. */
static struct adns_owned *
owned_new(enum adns_status st, char *const *rr, size_t n, unsigned ttl)
{
	size_t text = 0;
	struct adns_owned *a;
	const char **ptrs;
	char *p;

	for (size_t i = 0; i < n; i++)
		text += strlen(rr[i]) + 1;
	a = malloc(sizeof *a + n * sizeof *ptrs + text);
	if (a == NULL)
		return NULL;
	ptrs = (const char **)(a + 1);
	p = (char *)(ptrs + n);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(rr[i]) + 1;
		memcpy(p, rr[i], len);
		ptrs[i] = p;
		p += len;
	}
	a->ans.status = st;
	a->ans.n = n;
	a->ans.rr = n > 0 ? ptrs : NULL;
	a->ttl = ttl;
	a->is_secure = false;
	return a;
}

struct adns_owned *
adns_owned_copy(const struct adns_owned *a)
{
	struct adns_owned *c = owned_new(a->ans.status,
					 (char *const *)a->ans.rr, a->ans.n,
					 a->ttl);

	if (c != NULL)
		c->is_secure = a->is_secure;
	return c;
}

void
adns_owned_free(struct adns_owned *a)
{
	free(a);
}

static struct adns_owned *
owned_status(enum adns_status st)
{
	return owned_new(st, NULL, 0,
			 st == ADNS_TEMPFAIL ? 0 : ADNS_NEG_TTL);
}

/* ------------------------------------------------------------------ */
/* The walker */

struct rr_list {
	char *rr[ADNS_RR_MAX];
	unsigned pref[ADNS_RR_MAX]; /* MX only */
	size_t n;
	size_t text;
	uint32_t ttl;
};

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Skips a name at *p; false when it does not decompress. */
static bool
skip_name(const unsigned char **p, const unsigned char *abuf, int alen)
{
	char *name = NULL;
	long len = 0;

	if (ares_expand_name(*p, abuf, alen, &name, &len) != ARES_SUCCESS)
		return false;
	ares_free_string(name);
	*p += len;
	return true;
}

/* The name at p as text ("" for the root), or NULL. */
static char *
read_name(const unsigned char *p, const unsigned char *abuf, int alen)
{
	char *name = NULL, *copy;
	long len = 0;

	if (ares_expand_name(p, abuf, alen, &name, &len) != ARES_SUCCESS)
		return NULL;
	copy = strdup(name);
	ares_free_string(name);
	return copy;
}

/* TXT rdata: its character-strings joined (RFC 7208 3.3). */
static char *
read_txt(const unsigned char *rd, size_t rdlen)
{
	char *out = malloc(rdlen + 1);
	size_t o = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < rdlen;) {
		size_t n = rd[i++];
		if (n > rdlen - i)
			n = rdlen - i;
		memcpy(out + o, rd + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* TLSA rdata (RFC 6698 2.1) as "u s m hex". */
static char *
read_tlsa(const unsigned char *rd, size_t rdlen)
{
	static const char hex[] = "0123456789abcdef";
	char *out, *o;

	if (rdlen < 4 || rdlen > ADNS_TLSA_DATA_MAX)
		return NULL;
	out = malloc(16 + 2 * (rdlen - 3) + 1);
	if (out == NULL)
		return NULL;
	o = out + snprintf(out, 16, "%u %u %u ", rd[0], rd[1], rd[2]);
	for (size_t i = 3; i < rdlen; i++) {
		*o++ = hex[rd[i] >> 4];
		*o++ = hex[rd[i] & 15];
	}
	*o = '\0';
	return out;
}

static char *
read_rdata(enum adns_type type, const unsigned char *rd, size_t rdlen,
	   const unsigned char *abuf, int alen, unsigned *pref)
{
	char addr[INET6_ADDRSTRLEN];

	switch (type) {
	case ADNS_TXT:
		return read_txt(rd, rdlen);
	case ADNS_A:
		if (rdlen != 4 || !inet_ntop(AF_INET, rd, addr, sizeof addr))
			return NULL;
		return strdup(addr);
	case ADNS_AAAA:
		if (rdlen != 16 ||
		    !inet_ntop(AF_INET6, rd, addr, sizeof addr))
			return NULL;
		return strdup(addr);
	case ADNS_MX:
		if (rdlen < 3)
			return NULL;
		*pref = get16(rd);
		return read_name(rd + 2, abuf, alen);
	case ADNS_PTR:
		return read_name(rd, abuf, alen);
	case ADNS_TLSA:
		return read_tlsa(rd, rdlen);
	}
	return NULL;
}

static const int qtypes[] = {
    [ADNS_TXT] = ns_t_txt, [ADNS_A] = ns_t_a, [ADNS_AAAA] = ns_t_aaaa,
    [ADNS_MX] = ns_t_mx,   [ADNS_PTR] = ns_t_ptr, [ADNS_TLSA] = 52,
};

/* Collects the answer section's records of type; false: malformed. */
static bool
walk(const unsigned char *abuf, int alen, enum adns_type type,
     struct rr_list *l)
{
	const unsigned char *p = abuf + ADNS_HEADER_LEN;
	const unsigned char *end = abuf + alen;
	unsigned qd, an;

	if (alen < ADNS_HEADER_LEN)
		return false;
	qd = get16(abuf + 4);
	an = get16(abuf + 6);
	for (unsigned i = 0; i < qd; i++)
		if (!skip_name(&p, abuf, alen) || end - p < 4)
			return false;
		else
			p += 4;
	for (unsigned i = 0; i < an; i++) {
		unsigned rtype, rclass, rdlen, pref = 0;
		uint32_t ttl;
		char *text;

		if (!skip_name(&p, abuf, alen) || end - p < ADNS_RR_FIXED)
			return false;
		rtype = get16(p);
		rclass = get16(p + 2);
		ttl = get32(p + 4);
		rdlen = get16(p + 8);
		p += ADNS_RR_FIXED;
		if ((size_t)(end - p) < rdlen)
			return false;
		if (rtype == (unsigned)qtypes[type] && rclass == ns_c_in &&
		    l->n < ADNS_RR_MAX) {
			text = read_rdata(type, p, rdlen, abuf, alen, &pref);
			if (text == NULL)
				return false;
			if (l->text + strlen(text) > ADNS_TEXT_MAX) {
				free(text);
				return false;
			}
			l->text += strlen(text);
			l->pref[l->n] = pref;
			l->rr[l->n++] = text;
			if (ttl < l->ttl)
				l->ttl = ttl;
		}
		p += rdlen;
	}
	return true;
}

/* MX in preference order; stable, so equal ones keep the server's. */
static void
sort_mx(struct rr_list *l)
{
	for (size_t i = 1; i < l->n; i++)
		for (size_t j = i; j > 0 && l->pref[j - 1] > l->pref[j]; j--) {
			unsigned tp = l->pref[j];
			char *tr = l->rr[j];
			l->pref[j] = l->pref[j - 1];
			l->rr[j] = l->rr[j - 1];
			l->pref[j - 1] = tp;
			l->rr[j - 1] = tr;
		}
}

struct adns_owned *
adns_parse(int status, const unsigned char *abuf, int alen,
	   enum adns_type type)
{
	struct rr_list l = {.ttl = ADNS_TTL_MAX};
	struct adns_owned *a;
	bool is_ok;

	/* ares_send hands back any answer: its RCODE decides. */
	status = dns_answer_status(status, abuf, alen);
	switch (status) {
	case ARES_SUCCESS:
		break;
	case ARES_ENODATA:
		return owned_status(ADNS_NODATA);
	case ARES_ENOTFOUND:
	case ARES_EBADNAME: /* a name that cannot exist cannot answer */
		return owned_status(ADNS_NXDOMAIN);
	default:
		return owned_status(ADNS_TEMPFAIL);
	}
	is_ok = abuf != NULL && walk(abuf, alen, type, &l);
	if (type == ADNS_MX)
		sort_mx(&l);
	if (!is_ok)
		a = owned_status(ADNS_TEMPFAIL);
	else if (l.n == 0) /* e.g. only a CNAME to a name without one */
		a = owned_status(ADNS_NODATA);
	else
		a = owned_new(ADNS_OK, l.rr, l.n, l.ttl);
	if (a != NULL && is_ok)
		a->is_secure = dns_answer_is_secure(abuf, alen);
	for (size_t i = 0; i < l.n; i++)
		free(l.rr[i]);
	return a;
}

/* ------------------------------------------------------------------ */
/* The cache: a FIFO list, searched from the newest (a few thousand
 * entries at most; a message asks a dozen questions). */

struct cache_entry {
	struct cache_entry *newer, *older;
	enum adns_type type;
	time_t expires;
	struct adns_owned *a;
	char name[];
};

struct adns_cache {
	struct cache_entry *newest, *oldest;
	size_t n, max;
};

struct adns_cache *
adns_cache_new(size_t max)
{
	struct adns_cache *c = calloc(1, sizeof *c);

	if (c != NULL)
		c->max = max;
	return c;
}

static void
entry_del(struct adns_cache *c, struct cache_entry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	c->n--;
	adns_owned_free(e->a);
	free(e);
}

void
adns_cache_free(struct adns_cache *c)
{
	if (c == NULL)
		return;
	/* entry_del() unlinks what it frees: the head is new each time. */
	while (c->oldest)
		entry_del(c, c->oldest); // NOLINT(clang-analyzer-unix.Malloc)
	free(c);
}

static time_t
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static struct cache_entry *
entry_find(struct adns_cache *c, const char *name, enum adns_type type)
{
	time_t now = now_mono();

	for (struct cache_entry *e = c->newest; e; e = e->older) {
		if (e->type != type || strcasecmp(e->name, name) != 0)
			continue;
		if (e->expires > now)
			return e;
		entry_del(c, e);
		return NULL;
	}
	return NULL;
}

struct adns_owned *
adns_cache_get(struct adns_cache *c, const char *name, enum adns_type type)
{
	struct cache_entry *e = c ? entry_find(c, name, type) : NULL;

	return e ? adns_owned_copy(e->a) : NULL;
}

void
adns_cache_put(struct adns_cache *c, const char *name, enum adns_type type,
	       const struct adns_owned *a)
{
	struct cache_entry *e, *old;
	size_t len = strlen(name) + 1;

	if (c == NULL || c->max == 0 || a->ans.status == ADNS_TEMPFAIL ||
	    a->ttl == 0)
		return;
	old = entry_find(c, name, type);
	if (old != NULL)
		entry_del(c, old);
	e = malloc(sizeof *e + len);
	if (e == NULL)
		return;
	e->a = adns_owned_copy(a);
	if (e->a == NULL) {
		free(e);
		return;
	}
	memcpy(e->name, name, len);
	e->type = type;
	e->expires = now_mono() + (time_t)a->ttl;
	e->newer = NULL;
	e->older = c->newest;
	if (c->newest) /* a live entry: evictions unlinked the freed ones */
		c->newest->newer = e; // NOLINT(clang-analyzer-unix.Malloc)
	c->newest = e;
	if (c->oldest == NULL)
		c->oldest = e;
	if (++c->n > c->max)
		entry_del(c, c->oldest);
}

/* ------------------------------------------------------------------ */
/* Queries */

struct adns_query {
	struct dns *d;
	enum adns_type type;
	adns_done_fn cb;
	void *arg;
	struct event *ev;	/* the deadline, activated on an answer */
	struct adns_owned *ans; /* set once, by c-ares or the deadline */
	bool is_cares_done;	/* c-ares called back (or never will) */
	bool is_reported;	/* cb ran or the query was dropped */
	char name[ADNS_NAME_MAX];
};

static void
query_maybe_free(struct adns_query *q)
{
	if (!q->is_cares_done || !q->is_reported)
		return;
	if (q->ev)
		event_free(q->ev);
	adns_owned_free(q->ans);
	free(q);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct adns_query *q = arg;
	struct adns_owned *a;

	(void)fd;
	(void)what;
	if (q->ans == NULL) {
		log_msg(LOG_DEBUG, "ev=auth_dns name=%s type=%s "
			"status=tempfail reason=deadline", log_q(q->name),
			adns_type_name(q->type));
		q->ans = owned_status(ADNS_TEMPFAIL);
	}
	a = q->ans;
	q->ans = NULL;
	q->is_reported = true;
	q->cb(q->arg, a); /* NULL only when out of memory: the caller
			   * takes that as a TEMPFAIL */
	query_maybe_free(q);
}

static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct adns_query *q = arg;

	(void)timeouts;
	q->is_cares_done = true;
	if (!q->is_reported && q->ans == NULL) {
		q->ans = adns_parse(status, abuf, alen, q->type);
		log_msg(LOG_DEBUG, "ev=auth_dns name=%s type=%s status=%s",
			log_q(q->name), adns_type_name(q->type),
			ares_strerror(status));
		event_active(q->ev, EV_TIMEOUT, 0);
		return;
	}
	query_maybe_free(q);
}

struct adns_query *
adns_query(struct dns *d, const char *name, enum adns_type type,
	   adns_done_fn cb, void *arg)
{
	struct adns_query *q = calloc(1, sizeof *q);
	struct timeval tv;

	if (q == NULL)
		return NULL;
	q->d = d;
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	snprintf(q->name, sizeof q->name, "%s", name);
	q->ev = evtimer_new(dns_base(d), on_deadline, q);
	if (q->ev == NULL) {
		free(q);
		return NULL;
	}
	tv = dns_deadline(d);
	evtimer_add(q->ev, &tv);
	if (strlen(name) >= sizeof q->name) {
		q->is_cares_done = true;
		q->ans = owned_status(ADNS_NXDOMAIN);
		event_active(q->ev, EV_TIMEOUT, 0);
		return q;
	}
	dns_query_ad(d, q->name, qtypes[type], on_answer, q);
	dns_queries_sent(d);
	return q;
}

void
adns_query_drop(struct adns_query *q)
{
	if (q == NULL || q->is_reported)
		return;
	q->is_reported = true;
	event_del(q->ev);
	query_maybe_free(q);
}
