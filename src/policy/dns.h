/*
 * dns.h - can the sender's domain receive mail?  An MX lookup through
 * c-ares for MAIL FROM with [dns] check_sender_domain (550 5.1.8 when the
 * domain does not exist or says it takes no mail, 451 4.4.3 when DNS does
 * not answer in time).
 *
 * The server calls dns_check_domain() on the loop thread; the verdict
 * comes back later, on the loop thread, through a callback.  c-ares runs
 * on the loop itself (its sockets and timer are libevent events): no
 * thread.  See dns.c for the rules and REPLY-CODES.md (451, 550).
 */
#ifndef POSTERN_POLICY_DNS_H
#define POSTERN_POLICY_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "config/config.h"

enum dns_verdict {
	DNS_OK,	       /* a non-null MX, or (no MX) an A or AAAA: RFC 5321
			* 5.1 implicit MX */
	DNS_NO_DOMAIN, /* NXDOMAIN, a null MX (RFC 7505), no MX, A nor AAAA,
			* or no valid domain name: 550 5.1.8 */
	DNS_TEMPFAIL,  /* timeout, SERVFAIL, refused, no server reachable,
			* out of memory, closing: 451 4.4.3 */
};

/* Called on the loop thread, exactly once per dns_check_domain(). */
typedef void (*dns_done_fn)(void *arg, enum dns_verdict v);

struct dns;

/*
 * Makes a resolver on base for the loop thread.  Uses cfg->dns_servers
 * ("host:port, host:port", IP addresses, IPv6 as "[::1]:53", port 53 when
 * left out; empty: /etc/resolv.conf) and cfg->dns_timeout (seconds for a
 * whole lookup, retries and the A/AAAA fallback included).  Does not look
 * at cfg->dns_check_sender_domain: the caller opens only when it is on.
 * On error returns NULL with a message naming the fix in err (size
 * bytes).  cfg is read only here.
 */
struct dns *dns_open(const struct config *cfg, struct event_base *base,
		     char *err, size_t size);

/*
 * Loop thread.  Every lookup still pending gets its DNS_TEMPFAIL callback
 * before this returns (a callback that calls dns_check_domain() gets
 * DNS_TEMPFAIL too, also before this returns); then frees d.
 * dns_close(NULL) is a no-op.
 */
void dns_close(struct dns *d);

/*
 * Loop thread.  Starts the lookup of domain (copied; any case, one
 * trailing dot allowed; no address literals).  cb runs exactly once,
 * later, on the loop thread, never inside dns_check_domain(), at the
 * latest [dns] timeout seconds from now.
 */
void dns_check_domain(struct dns *d, const char *domain, dns_done_fn cb,
		      void *arg);

/* Where a domain's mail goes: dns_resolve's answers. */
enum dns_resolve_status {
	DNS_RESOLVED,	     /* at least one address, in order */
	DNS_RESOLVE_NOHOST,  /* NXDOMAIN, or no MX and no address: 5.1.2 */
	DNS_RESOLVE_NULLMX,  /* RFC 7505 null MX: the domain takes no mail */
	DNS_RESOLVE_TEMPFAIL /* timeout, SERVFAIL, MX hosts without an
			      * address yet, out of memory: try later */
};

/* One address to try, with the host name it came from. */
struct dns_target {
	char host[256];
	struct sockaddr_storage ss; /* port already set */
	socklen_t sslen;
	/* The MX records naming host were validated (AD; believed only
	 * with [dns] dnssec): DANE may apply to it (RFC 7672 2.2). */
	bool is_secure;
};

#define DNS_TARGETS_MAX 20 /* addresses reported at most */

/* Called on the loop thread, once, unless cancelled first. */
typedef void (*dns_resolve_fn)(void *arg, enum dns_resolve_status st,
			       const struct dns_target *t, size_t n);

struct dns_resolve;

/*
 * Loop thread.  Resolves name for sending: with is_mx, its MX hosts in
 * preference order (no MX: the name itself, RFC 5321 5.1), each host's
 * IPv4 and IPv6 addresses (c-ares getaddrinfo: /etc/hosts, then DNS);
 * without, only name's addresses.  Every address gets port.  cb runs later
 * on the loop thread, never inside this call.  Returns a handle for
 * dns_resolve_cancel, or NULL when out of memory (cb is then not called).
 */
struct dns_resolve *dns_resolve_start(struct dns *d, const char *name,
				      bool is_mx, uint16_t port,
				      dns_resolve_fn cb, void *arg);

/* cb will not be called; the handle frees itself when c-ares is done. */
void dns_resolve_cancel(struct dns_resolve *r);

#endif
