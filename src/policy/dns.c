/*
 * dns.c - the sender-domain check: does the domain of MAIL FROM exist and
 * take mail?  c-ares, driven by the libevent loop.
 *
 * The server calls dns_check_domain() for MAIL FROM on the loop thread
 * when [dns] check_sender_domain is on.  A lookup asks for MX first; an
 * MX with a real target is DNS_OK; only null MX records (RFC 7505: one MX
 * of preference 0 and target ".") are DNS_NO_DOMAIN.  When the domain has
 * no MX (NODATA), A and AAAA are asked together, since an address is an
 * implicit MX (RFC 5321 5.1): either one is DNS_OK, neither is
 * DNS_NO_DOMAIN.  NXDOMAIN anywhere is DNS_NO_DOMAIN.  Anything else
 * (timeout, SERVFAIL, REFUSED, an unparsable answer, no server reachable,
 * out of memory) is DNS_TEMPFAIL: a lookup that did not finish never
 * becomes a 550.
 *
 * c-ares runs on the loop: it reports the sockets it wants watched through
 * ARES_OPT_SOCK_STATE_CB, each becomes a persistent libevent event, and
 * one timer follows ares_timeout().  Besides c-ares' own per-try timeout
 * (a share of [dns] timeout, DNS_TRIES tries), each lookup has its own
 * deadline timer of [dns] timeout seconds: past it, DNS_TEMPFAIL, whatever
 * c-ares is still doing.  A verdict is never delivered from inside c-ares
 * or dns_check_domain(): it activates the lookup's event, and the
 * callback runs from the loop.  c-ares 1.18 (Debian 12) cannot cancel one
 * query, so a lookup reported early stays, as an orphan, until its
 * queries end.
 *
 * Domains: one trailing dot is dropped and case does not matter.  A name
 * that is no valid host name (RFC 1123 letters, digits, hyphens; '_'
 * tolerated; labels of 1-63, SMTP_DOMAIN_MAX in all) is DNS_NO_DOMAIN
 * without a query.  A name with non-ASCII octets (an SMTPUTF8 U-label) is
 * DNS_OK without a query: we cannot turn it into an A-label (no IDNA
 * library), and a 550 for a valid domain would be worse than no check.
 *
 * Left to others: the replies and the log line that names them
 * (server/session_cmd_mail.c picks 550 5.1.8 or 451 4.4.3; this module
 * logs only at debug level, with c-ares' reason).  REPLY-CODES.md rows
 * 451 and 550; issue 4; RFC 5321 5.1, RFC 7505.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <arpa/nameser.h>
#include <event2/event.h>

#include "policy/dns.h"
#include "policy/dns_int.h"
#include "proto/limits.h"
#include "util/log.h"
#include "util/str.h"

#define DNS_TRIES 2	   /* c-ares tries per server and query */
#define DNS_TRY_SHARES 4   /* per-try timeout = [dns] timeout / this */
#define DNS_TRY_MIN_MS 100 /* the shortest per-try timeout */
#define DNS_MS_PER_SECOND 1000
#define DNS_PORT_DEFAULT 53
#define DNS_PORT_MAX 65535
#define DNS_SERVER_TEXT_MAX 64 /* "[v6 address]:port" */
#define DNS_SERVERS_MAX 16     /* entries in [dns] servers */

/* One socket c-ares asked us to watch. */
struct dns_sock {
	struct dns_sock *next;
	ares_socket_t fd;
	struct event *ev;
};

struct dns_lookup {
	struct dns_lookup *prev, *next; /* in pending or orphans */
	struct dns *d;
	dns_done_fn cb;
	void *arg;
	struct event *ev;  /* deadline timer, activated on a verdict */
	int outstanding;   /* c-ares queries not yet called back */
	int addr_left;	   /* A/AAAA queries not yet answered */
	bool is_settled;   /* verdict holds the answer */
	bool is_reported;  /* cb has run (or is running) */
	bool has_address;  /* the A/AAAA round found an address */
	bool has_tempfail; /* the A/AAAA round had a failure */
	enum dns_verdict verdict;
	char domain[SMTP_DOMAIN_MAX + 1];
};

struct dns {
	struct event_base *base;
	ares_channel ch;
	bool has_channel;
	bool is_closing;
	struct timeval deadline;
	struct event *ev_timer; /* c-ares' next timeout */
	struct dns_sock *socks;
	struct dns_lookup *pending; /* not yet reported */
	struct dns_lookup *orphans; /* reported, queries still out */
};

static const char *const verdict_names[] = {
    [DNS_OK] = "ok",
    [DNS_NO_DOMAIN] = "no_domain",
    [DNS_TEMPFAIL] = "tempfail",
};

static void
list_add(struct dns_lookup **head, struct dns_lookup *l)
{
	l->prev = NULL;
	l->next = *head;
	if (*head)
		(*head)->prev = l;
	*head = l;
}

static void
list_del(struct dns_lookup **head, struct dns_lookup *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		*head = l->next;
	if (l->next)
		l->next->prev = l->prev;
	l->prev = l->next = NULL;
}

/* Sets the timer to c-ares' next timeout, or clears it. */
static void
timer_update(struct dns *d)
{
	struct timeval tv, *tvp;

	if (!d->has_channel || d->is_closing)
		return;
	tvp = ares_timeout(d->ch, NULL, &tv);
	if (tvp != NULL)
		evtimer_add(d->ev_timer, tvp);
	else
		evtimer_del(d->ev_timer);
}

static void
on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	ares_socket_t rfd = (what & EV_READ) ? fd : ARES_SOCKET_BAD;
	ares_socket_t wfd = (what & EV_WRITE) ? fd : ARES_SOCKET_BAD;

	/* May call on_sock_state() and free this very event. */
	ares_process_fd(d->ch, rfd, wfd);
	timer_update(d);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	(void)fd;
	(void)what;
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	timer_update(d);
}

/* c-ares: watch fd for reading and/or writing, or stop (0, 0). */
static void
on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	struct dns_sock **pp = &d->socks, *s;
	short what =
	    (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));

	while (*pp && (*pp)->fd != fd)
		pp = &(*pp)->next;
	s = *pp;
	if (s != NULL) {
		event_free(s->ev);
		s->ev = NULL;
	}
	if (what == 0) {
		if (s != NULL) {
			*pp = s->next;
			free(s);
		}
		return;
	}
	if (s == NULL) {
		s = calloc(1, sizeof *s);
		if (s == NULL)
			goto oom;
		s->fd = fd;
		s->next = d->socks;
		d->socks = s;
	}
	s->ev = event_new(d->base, fd, (short)(what | EV_PERSIST), on_sock, d);
	if (s->ev != NULL && event_add(s->ev, NULL) == 0)
		return;
oom:
	/* The query times out on our deadline: DNS_TEMPFAIL. */
	log_msg(LOG_ERR, "ev=dns_out_of_memory fd=%d", (int)fd);
}

/* Records the verdict and wakes the lookup's event (at most once). */
static void
settle(struct dns_lookup *l, enum dns_verdict v, const char *why)
{
	if (l->is_settled || l->is_reported)
		return;
	l->is_settled = true;
	l->verdict = v;
	log_msg(LOG_DEBUG, "ev=dns_lookup domain=%s verdict=%s reason=%s",
		log_q(l->domain), verdict_names[v], log_q(why));
	event_active(l->ev, EV_TIMEOUT, 0);
}

static void
lookup_free(struct dns_lookup *l)
{
	if (l->ev)
		event_free(l->ev);
	free(l);
}

/* A c-ares callback is done with l: frees an orphan with none left. */
static void
query_done(struct dns_lookup *l)
{
	l->outstanding--;
	if (l->is_reported && l->outstanding == 0) {
		list_del(&l->d->orphans, l);
		lookup_free(l);
	}
}

/* Runs l's callback; l stays as an orphan while queries are out. */
static void
report(struct dns_lookup *l, enum dns_verdict v)
{
	struct dns *d = l->d;
	dns_done_fn cb = l->cb;
	void *arg = l->arg;

	list_del(&d->pending, l);
	l->is_reported = true;
	event_free(l->ev);
	l->ev = NULL;
	if (l->outstanding > 0)
		list_add(&d->orphans, l);
	else
		lookup_free(l);
	cb(arg, v);
}

/* The lookup's event: a verdict was settled, or the deadline passed. */
static void
on_lookup(evutil_socket_t fd, short what, void *arg)
{
	struct dns_lookup *l = arg;

	(void)fd;
	(void)what;
	if (!l->is_settled)
		log_msg(LOG_DEBUG,
			"ev=dns_lookup domain=%s verdict=tempfail "
			"reason=deadline",
			log_q(l->domain));
	report(l, l->is_settled ? l->verdict : DNS_TEMPFAIL);
}

static void on_mx(void *arg, int status, int timeouts, unsigned char *abuf,
		  int alen);
static void on_addr(void *arg, int status, int timeouts, unsigned char *abuf,
		    int alen);

/* Sends one query for l; the callback may run before this returns. */
static void
query(struct dns_lookup *l, int type, ares_callback cb)
{
	l->outstanding++;
	ares_query(l->d->ch, l->domain, ns_c_in, type, cb, l);
}

/* True when status means "the name has no such record" (not a failure). */
static bool
is_nodata(int status)
{
	return status == ARES_ENODATA;
}

bool
dns_is_null_mx(const struct ares_mx_reply *mx)
{
	for (; mx; mx = mx->next) {
		const char *h = mx->host ? mx->host : "";

		if (h[0] != '\0' && strcmp(h, ".") != 0)
			return false;
	}
	return true;
}

/* The MX answer: a verdict, or on to A and AAAA. */
static void
mx_answer(struct dns_lookup *l, int status, unsigned char *abuf, int alen)
{
	struct ares_mx_reply *mx = NULL;

	if (status == ARES_SUCCESS) {
		status = ares_parse_mx_reply(abuf, alen, &mx);
		if (status == ARES_SUCCESS) {
			if (dns_is_null_mx(mx))
				settle(l, DNS_NO_DOMAIN, "null MX");
			else
				settle(l, DNS_OK, "MX");
			ares_free_data(mx);
			return;
		}
	}
	if (status == ARES_ENOTFOUND) {
		settle(l, DNS_NO_DOMAIN, "NXDOMAIN");
	} else if (is_nodata(status)) {
		/* No MX: an address is an implicit MX (RFC 5321 5.1). */
		l->addr_left = 2;
		query(l, ns_t_a, on_addr);
		query(l, ns_t_aaaa, on_addr);
	} else {
		settle(l, DNS_TEMPFAIL, ares_strerror(status));
	}
}

static void
on_mx(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_lookup *l = arg;

	(void)timeouts;
	if (!l->is_reported && !l->d->is_closing)
		mx_answer(l, status, abuf, alen);
	query_done(l);
}

/* ARES_SUCCESS when an A or AAAA answer holds an address. */
static int
addr_parse(unsigned char *abuf, int alen)
{
	struct ares_addrttl a[1];
	struct ares_addr6ttl a6[1];
	int n = 1, status;

	status = ares_parse_a_reply(abuf, alen, NULL, a, &n);
	if (status == ARES_SUCCESS && n > 0)
		return ARES_SUCCESS;
	n = 1;
	status = ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
	if (status == ARES_SUCCESS && n > 0)
		return ARES_SUCCESS;
	return status == ARES_SUCCESS ? ARES_ENODATA : status;
}

static void
on_addr(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_lookup *l = arg;

	(void)timeouts;
	if (l->is_reported || l->d->is_closing) {
		query_done(l);
		return;
	}
	if (status == ARES_SUCCESS)
		status = addr_parse(abuf, alen);
	l->addr_left--;
	if (status == ARES_SUCCESS)
		l->has_address = true;
	else if (status != ARES_ENOTFOUND && !is_nodata(status))
		l->has_tempfail = true;
	if (l->has_address)
		settle(l, DNS_OK, "address");
	else if (l->addr_left == 0 && l->has_tempfail)
		settle(l, DNS_TEMPFAIL, ares_strerror(status));
	else if (l->addr_left == 0)
		settle(l, DNS_NO_DOMAIN, "no MX, A or AAAA");
	query_done(l);
}

/*
 * Copies domain into buf lower-cased without one trailing dot.  Returns
 * 1 for a valid host name, 0 for an invalid one, -1 for non-ASCII.
 */
static int
domain_norm(const char *domain, char *buf, size_t size)
{
	size_t len = strlen(domain), label = 0;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len >= size || len > SMTP_DOMAIN_MAX - 2)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)domain[i];

		if (c >= 0x80)
			return -1;
	}
	if (!str_copy(buf, size, domain, len))
		return 0;
	str_lower(buf);
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || buf[i - 1] == '-')
				return 0;
			label = 0;
		} else if (isalnum(c) || c == '_' || (c == '-' && label > 0)) {
			if (++label > SMTP_LABEL_MAX)
				return 0;
		} else {
			return 0;
		}
	}
	return 1;
}

void
dns_check_domain(struct dns *d, const char *domain, dns_done_fn cb, void *arg)
{
	struct dns_lookup *l = calloc(1, sizeof *l);
	int kind;

	if (l != NULL)
		l->ev = evtimer_new(d->base, on_lookup, l);
	if (l == NULL || l->ev == NULL) {
		/* The one case where cb runs inside dns_check_domain. */
		free(l);
		log_msg(LOG_ERR, "ev=dns_out_of_memory");
		cb(arg, DNS_TEMPFAIL);
		return;
	}
	l->d = d;
	l->cb = cb;
	l->arg = arg;
	list_add(&d->pending, l);
	evtimer_add(l->ev, &d->deadline);
	kind = domain_norm(domain ? domain : "", l->domain, sizeof l->domain);
	if (d->is_closing)
		settle(l, DNS_TEMPFAIL, "closing");
	else if (kind == 0)
		settle(l, DNS_NO_DOMAIN, "invalid domain");
	else if (kind < 0)
		settle(l, DNS_OK, "non-ASCII domain not checked");
	else
		query(l, ns_t_mx, on_mx);
	timer_update(d);
}

/* One "host[:port]" item of [dns] servers, as "[v6]:port" or "v4:port". */
static int
server_norm(const char *item, char *out, size_t size)
{
	char host[DNS_SERVER_TEXT_MAX];
	unsigned char addr[sizeof(struct in6_addr)];
	const char *colon = strrchr(item, ':'), *end = item + strlen(item);
	uint64_t port = DNS_PORT_DEFAULT;
	bool is_v6;

	if (item[0] == '[') {
		const char *rb = strchr(item, ']');

		if (rb == NULL || (rb[1] != '\0' && rb[1] != ':'))
			return -1;
		if (!str_copy(host, sizeof host, item + 1,
			      (size_t)(rb - item - 1)))
			return -1;
		colon = rb[1] == ':' ? rb + 1 : NULL;
	} else if (colon != NULL && strchr(item, ':') != colon) {
		colon = NULL; /* a bare IPv6 address, no port */
		if (!str_set(host, sizeof host, item))
			return -1;
	} else if (!str_copy(host, sizeof host, item,
			     (size_t)((colon ? colon : end) - item))) {
		return -1;
	}
	if (colon != NULL &&
	    (!str_to_u64(colon + 1, &port) || port == 0 || port > DNS_PORT_MAX))
		return -1;
	is_v6 = inet_pton(AF_INET6, host, addr) == 1;
	if (!is_v6 && inet_pton(AF_INET, host, addr) != 1)
		return -1;
	snprintf(out, size, is_v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
	return 0;
}

/* [dns] servers, checked and rewritten as c-ares' CSV; -1 with the fix. */
static int
servers_csv(const char *list, char **csv_out, char *err, size_t size)
{
	char item[DNS_SERVER_TEXT_MAX], one[DNS_SERVER_TEXT_MAX];
	size_t cap = (size_t)DNS_SERVERS_MAX * DNS_SERVER_TEXT_MAX, n = 0;
	char *csv = calloc(1, cap);
	const char *p = list;

	if (csv == NULL) {
		snprintf(err, size, "out of memory");
		return -1;
	}
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		bool fits = str_copy(item, sizeof item, p, len);

		p += comma ? len + 1 : len;
		str_trim(item);
		if (fits && item[0] == '\0')
			continue;
		if (!fits || server_norm(item, one, sizeof one) != 0 ||
		    ++n > DNS_SERVERS_MAX) {
			snprintf(err, size,
				 "dns server \"%s\" is not an IP address "
				 "with an optional port (at most %d); fix "
				 "[dns] servers, e.g. 127.0.0.1:53, [::1]:53",
				 fits ? item : "(too long)", DNS_SERVERS_MAX);
			free(csv);
			return -1;
		}
		snprintf(csv + strlen(csv), cap - strlen(csv), "%s%s",
			 n > 1 ? "," : "", one);
	}
	*csv_out = csv;
	return 0;
}

/* The channel, with our sockets, timeouts and servers. */
static int
channel_open(struct dns *d, const struct config *cfg, char *err, size_t size)
{
	struct ares_options o = {0};
	uint64_t ms = cfg->dns_timeout * DNS_MS_PER_SECOND / DNS_TRY_SHARES;
	char *csv = NULL;
	int status;

	if (cfg->dns_servers && cfg->dns_servers[0] &&
	    servers_csv(cfg->dns_servers, &csv, err, size) != 0)
		return -1;
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = d;
	o.timeout = (int)(ms < DNS_TRY_MIN_MS ? DNS_TRY_MIN_MS : ms);
	o.tries = DNS_TRIES;
	o.flags = ARES_FLAG_NOSEARCH;
	status = ares_init_options(&d->ch, &o,
				   ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
				       ARES_OPT_TRIES | ARES_OPT_FLAGS);
	if (status != ARES_SUCCESS) {
		free(csv);
		snprintf(err, size,
			 "cannot start the DNS resolver: %s; check "
			 "/etc/resolv.conf or set [dns] servers",
			 ares_strerror(status));
		return -1;
	}
	d->has_channel = true;
	if (csv != NULL) {
		status = ares_set_servers_ports_csv(d->ch, csv);
		free(csv);
		if (status != ARES_SUCCESS) {
			snprintf(err, size,
				 "c-ares refused [dns] servers: %s; fix "
				 "[dns] servers, e.g. 127.0.0.1:53",
				 ares_strerror(status));
			return -1;
		}
	}
	return 0;
}

struct dns *
dns_open(const struct config *cfg, struct event_base *base, char *err,
	 size_t size)
{
	struct dns *d = calloc(1, sizeof *d);

	if (d == NULL) {
		snprintf(err, size, "out of memory");
		return NULL;
	}
	d->base = base;
	d->deadline.tv_sec = (time_t)cfg->dns_timeout;
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
		free(d);
		snprintf(err, size, "cannot initialise c-ares");
		return NULL;
	}
	d->ev_timer = evtimer_new(base, on_timer, d);
	if (d->ev_timer == NULL) {
		snprintf(err, size, "out of memory");
		goto fail;
	}
	if (channel_open(d, cfg, err, size) != 0)
		goto fail;
	return d;
fail:
	dns_close(d);
	return NULL;
}

void
dns_close(struct dns *d)
{
	if (d == NULL)
		return;
	d->is_closing = true;
	/* Callbacks may start more lookups; those settle as tempfails.
	 * report() and list_del() unlink what is freed, so the head is new
	 * each time; the analyzer cannot follow the lists through them. */
	/* NOLINTBEGIN(clang-analyzer-unix.Malloc) */
	while (d->pending != NULL)
		report(d->pending, DNS_TEMPFAIL);
	/* Calls on_mx/on_addr with ARES_EDESTRUCTION (freeing the orphans)
	 * and on_sock_state(fd, 0, 0) for every socket. */
	if (d->has_channel)
		ares_destroy(d->ch);
	while (d->orphans != NULL) {
		struct dns_lookup *l = d->orphans;

		list_del(&d->orphans, l);
		lookup_free(l);
	}
	/* NOLINTEND(clang-analyzer-unix.Malloc) */
	while (d->socks != NULL) {
		struct dns_sock *s = d->socks;

		d->socks = s->next;
		if (s->ev)
			event_free(s->ev);
		free(s);
	}
	if (d->ev_timer)
		event_free(d->ev_timer);
	free(d);
	ares_library_cleanup();
}

ares_channel
dns_channel(struct dns *d)
{
	return d->ch;
}

void
dns_queries_sent(struct dns *d)
{
	timer_update(d);
}

struct timeval
dns_deadline(const struct dns *d)
{
	return d->deadline;
}

struct event_base *
dns_base(struct dns *d)
{
	return d->base;
}

#define DNS_HEADER_LEN 12  /* RFC 1035 4.1.1 */
#define DNS_FLAG_AD 0x20   /* the header's fourth octet: RA Z AD CD RCODE */
#define DNS_RCODE_MASK 0x0f
#define DNS_EDNS_UDP 1232  /* the DNS flag day 2020 size */

void
dns_query_ad(struct dns *d, const char *name, int type, ares_callback cb,
	     void *arg)
{
	unsigned char *buf = NULL;
	int len = 0;

	if (ares_create_query(name, ns_c_in, type, 0, 1, &buf, &len,
			      DNS_EDNS_UDP) != ARES_SUCCESS ||
	    len < DNS_HEADER_LEN) {
		if (buf != NULL)
			ares_free_string(buf);
		ares_query(dns_channel(d), name, ns_c_in, type, cb, arg);
		return;
	}
	buf[3] |= DNS_FLAG_AD;
	ares_send(dns_channel(d), buf, len, cb, arg);
	ares_free_string(buf);
}

int
dns_answer_status(int status, const unsigned char *abuf, int alen)
{
	unsigned rcode;

	if (status != ARES_SUCCESS || abuf == NULL || alen < DNS_HEADER_LEN)
		return status;
	rcode = abuf[3] & DNS_RCODE_MASK;
	if (rcode == ns_r_nxdomain)
		return ARES_ENOTFOUND;
	return rcode == ns_r_noerror ? status : ARES_ESERVFAIL;
}

bool
dns_answer_is_secure(const unsigned char *abuf, int alen)
{
	return abuf != NULL && alen >= DNS_HEADER_LEN &&
	       (abuf[3] & DNS_FLAG_AD) != 0;
}
