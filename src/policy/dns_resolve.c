/*
 * dns_resolve.c - where mail for a domain goes: MX hosts in preference
 * order and their addresses, for the sending side.
 *
 * The server hands dns_resolve_start() to outbound/ as its resolver.  An
 * MX query first (is_mx); NXDOMAIN is DNS_RESOLVE_NOHOST, a null MX (RFC
 * 7505: every target the root) DNS_RESOLVE_NULLMX, no MX records the
 * implicit MX (the name itself, RFC 5321 5.1).  Then every host's
 * addresses are asked for at once (ares_getaddrinfo, so /etc/hosts counts
 * and both families come back); the result keeps MX order.  An implicit
 * MX without any address is NOHOST; MX hosts of which none has an
 * address are TEMPFAIL (a DNS change in progress is more likely than a
 * permanent state, and Postfix defers too).  The answer is delivered
 * through an activated event, never from inside c-ares.
 *
 * Limits: DNS_RESOLVE_HOSTS_MAX MX hosts, DNS_TARGETS_MAX addresses.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/nameser.h>
#include <event2/event.h>

#include "policy/dns_int.h"
#include "util/log.h"
#include "util/str.h"

#define DNS_RESOLVE_HOSTS_MAX 10
/* An MX lookup and then the hosts' addresses: two rounds of [dns]
 * timeout at most. */
#define DNS_RESOLVE_DEADLINE_FACTOR 2

struct resolve_host {
	char name[256];
	unsigned short pref;
	struct ares_addrinfo *ai; /* NULL until answered */
	int status;
};

struct dns_resolve {
	struct dns *d;
	dns_resolve_fn cb; /* NULL once cancelled */
	void *arg;
	uint16_t port;
	bool is_implicit;	/* no MX: the name itself */
	bool is_secure;		/* the MX answer was validated (AD) */
	int outstanding;	/* c-ares callbacks not yet run */
	size_t hosts_left;	/* address queries not yet answered */
	bool is_destroyed;	/* c-ares is shutting down */
	enum dns_resolve_status status;
	struct event *ev;	/* activated when the answer is ready */
	bool is_reported;
	bool is_finished;	/* status holds the answer */
	struct resolve_host hosts[DNS_RESOLVE_HOSTS_MAX];
	size_t n_hosts;
	struct dns_target targets[DNS_TARGETS_MAX];
	size_t n_targets;
	char name[256];
};

static void
resolve_free(struct dns_resolve *r)
{
	for (size_t i = 0; i < r->n_hosts; i++)
		if (r->hosts[i].ai != NULL)
			ares_freeaddrinfo(r->hosts[i].ai);
	if (r->ev != NULL)
		event_free(r->ev);
	free(r);
}

/* The answer is known: wake the event so cb runs from the loop. */
static void
finish(struct dns_resolve *r, enum dns_resolve_status st)
{
	if (r->is_reported || r->is_finished)
		return;
	r->is_finished = true;
	r->status = st;
	event_active(r->ev, EV_TIMEOUT, 0);
}

static void
on_report(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolve *r = arg;

	(void)fd;
	(void)what;
	if (!r->is_finished)
		r->status = DNS_RESOLVE_TEMPFAIL; /* past the deadline */
	r->is_reported = true;
	if (r->cb != NULL) {
		dns_resolve_fn cb = r->cb;
		r->cb = NULL;
		cb(r->arg, r->status, r->targets, r->n_targets);
	}
	if (r->outstanding == 0)
		resolve_free(r);
}

/* A c-ares callback has run; frees r once it is reported and idle. */
static void
query_done(struct dns_resolve *r)
{
	r->outstanding--;
	if (r->outstanding == 0 && r->is_reported)
		resolve_free(r);
}

static void
add_target(struct dns_resolve *r, const char *host,
	   const struct ares_addrinfo_node *n)
{
	struct dns_target *t;

	if (r->n_targets == DNS_TARGETS_MAX)
		return;
	if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
	    n->ai_addrlen > sizeof t->ss)
		return;
	t = &r->targets[r->n_targets++];
	str_set(t->host, sizeof t->host, host);
	t->is_secure = r->is_secure;
	memcpy(&t->ss, n->ai_addr, n->ai_addrlen);
	t->sslen = n->ai_addrlen;
	if (n->ai_family == AF_INET)
		((struct sockaddr_in *)&t->ss)->sin_port = htons(r->port);
	else
		((struct sockaddr_in6 *)&t->ss)->sin6_port = htons(r->port);
}

/* Every host answered: the targets in MX order, or why there are none. */
static void
collect(struct dns_resolve *r)
{
	bool has_tempfail = false;

	for (size_t i = 0; i < r->n_hosts; i++) {
		struct resolve_host *h = &r->hosts[i];
		if (h->ai == NULL) {
			has_tempfail |= h->status != ARES_ENOTFOUND &&
					h->status != ARES_ENODATA;
			continue;
		}
		for (const struct ares_addrinfo_node *n = h->ai->nodes; n;
		     n = n->ai_next)
			add_target(r, h->name, n);
	}
	if (r->n_targets > 0)
		finish(r, DNS_RESOLVED);
	else if (r->is_implicit && !has_tempfail)
		finish(r, DNS_RESOLVE_NOHOST);
	else
		finish(r, DNS_RESOLVE_TEMPFAIL);
}

/* Each host's query carries this: the request and the host's slot. */
struct host_query {
	struct dns_resolve *r;
	size_t idx;
};

static void
on_host(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct host_query *q = arg;
	struct dns_resolve *r = q->r;
	struct resolve_host *h = &r->hosts[q->idx];

	(void)timeouts;
	free(q);
	h->status = status;
	if (status == ARES_SUCCESS)
		h->ai = ai;
	else if (ai != NULL)
		ares_freeaddrinfo(ai);
	r->is_destroyed |= status == ARES_EDESTRUCTION;
	if (--r->hosts_left == 0) {
		if (r->is_destroyed)
			finish(r, DNS_RESOLVE_TEMPFAIL);
		else
			collect(r);
	}
	query_done(r);
}

static void
ask_hosts(struct dns_resolve *r)
{
	struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC};

	/* Counted first: an answer may come back inside the call. */
	r->outstanding += (int)r->n_hosts;
	r->hosts_left = r->n_hosts;
	for (size_t i = 0; i < r->n_hosts; i++) {
		struct host_query *q = malloc(sizeof *q);
		if (q == NULL) {
			/* Not reported before the event runs: no free here. */
			r->hosts[i].status = ARES_ENOMEM;
			r->outstanding--;
			if (--r->hosts_left == 0)
				collect(r);
			continue;
		}
		q->r = r;
		q->idx = i;
		ares_getaddrinfo(dns_channel(r->d), r->hosts[i].name, NULL,
				 &hints, on_host, q);
	}
	dns_queries_sent(r->d);
}

static int
pref_cmp(const void *a, const void *b)
{
	const struct resolve_host *x = a, *y = b;

	return (int)x->pref - (int)y->pref;
}

static void
on_mx(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_resolve *r = arg;
	struct ares_mx_reply *mx = NULL;

	(void)timeouts;
	status = dns_answer_status(status, abuf, alen);
	if (status == ARES_SUCCESS)
		r->is_secure = dns_answer_is_secure(abuf, alen);
	if (status == ARES_SUCCESS)
		status = ares_parse_mx_reply(abuf, alen, &mx);
	if (status == ARES_SUCCESS && mx == NULL)
		status = ARES_ENODATA;
	if (status == ARES_SUCCESS && dns_is_null_mx(mx)) {
		finish(r, DNS_RESOLVE_NULLMX);
	} else if (status == ARES_SUCCESS) {
		for (struct ares_mx_reply *m = mx; m; m = m->next) {
			const char *h = m->host ? m->host : "";
			if (h[0] == '\0' || strcmp(h, ".") == 0 ||
			    r->n_hosts == DNS_RESOLVE_HOSTS_MAX)
				continue;
			str_set(r->hosts[r->n_hosts].name,
				sizeof r->hosts[0].name, h);
			r->hosts[r->n_hosts++].pref = m->priority;
		}
		/* Lowest preference first (RFC 5321 5.1). */
		qsort(r->hosts, r->n_hosts, sizeof r->hosts[0], pref_cmp);
		ask_hosts(r);
	} else if (status == ARES_ENOTFOUND) {
		finish(r, DNS_RESOLVE_NOHOST);
	} else if (status == ARES_ENODATA) {
		r->is_implicit = true;
		str_set(r->hosts[0].name, sizeof r->hosts[0].name, r->name);
		r->n_hosts = 1;
		ask_hosts(r);
	} else {
		log_msg(LOG_DEBUG, "ev=dns_mx domain=%s error=%s",
			log_q(r->name), log_q(ares_strerror(status)));
		finish(r, DNS_RESOLVE_TEMPFAIL);
	}
	if (mx != NULL)
		ares_free_data(mx);
	query_done(r);
}

struct dns_resolve *
dns_resolve_start(struct dns *d, const char *name, bool is_mx, uint16_t port,
		  dns_resolve_fn cb, void *arg)
{
	struct dns_resolve *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->ev = event_new(dns_base(d), -1, 0, on_report, r);
	if (r->ev == NULL) {
		free(r);
		return NULL;
	}
	r->d = d;
	r->cb = cb;
	r->arg = arg;
	r->port = port;
	str_set(r->name, sizeof r->name, name);
	/* r is freed only after its event ran (on_report), never inside
	 * this call, even when c-ares answers at once.  The event also
	 * fires at the [dns] timeout deadline: whatever c-ares is still
	 * doing, the answer is then "try later" (as dns.c's lookups). */
	{
		struct timeval dl = dns_deadline(d);
		dl.tv_sec *= DNS_RESOLVE_DEADLINE_FACTOR;
		event_add(r->ev, &dl);
	}
	if (is_mx) {
		r->outstanding++;
		dns_query_ad(d, r->name, ns_t_mx, on_mx, r);
	} else {
		r->is_implicit = true;
		str_set(r->hosts[0].name, sizeof r->hosts[0].name, r->name);
		r->n_hosts = 1;
		ask_hosts(r);
	}
	dns_queries_sent(d);
	return r;
}

void
dns_resolve_cancel(struct dns_resolve *r)
{
	if (r != NULL)
		r->cb = NULL;
}
