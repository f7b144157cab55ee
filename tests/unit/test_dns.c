/*
 * test_dns.c - the sender-domain check against real DNS servers on
 * loopback: a dnsmasq of our own on a free port with the records below
 * (its cases are skipped only when /usr/sbin/dnsmasq, Debian package
 * dnsmasq-base, is missing), and fake servers made here: a UDP socket
 * that swallows every query, one that answers SERVFAIL or REFUSED, and a
 * port nobody listens on.  No mock of c-ares.
 *
 * Covered: MX -> ok; no MX but A, or only AAAA -> ok (implicit MX); MX to
 * a host without address -> ok; NXDOMAIN, null MX, a name with no MX, A
 * nor AAAA -> no_domain; case and a trailing dot; invalid names ->
 * no_domain without a query; timeout, SERVFAIL, REFUSED, no server
 * listening -> tempfail; the overall deadline cuts c-ares' own retries;
 * 300 concurrent lookups; close with lookups pending (and a callback
 * that starts one more); open errors that name the fix.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "policy/dns.h"

#define DNSMASQ "/usr/sbin/dnsmasq"
#define WAIT_SECONDS 10	      /* for a verdict before the test fails */
#define DNSMASQ_START_MS 5000 /* for dnsmasq to answer a query */
#define STEP_MS 50
#define START_TRIES 5
#define MANY 300
#define CLOSE_PENDING 50
#define DNS_HDR_LEN 12
#define DNS_PACKET_MAX 512
#define RCODE_SERVFAIL 2
#define RCODE_REFUSED 5

static struct event_base *base;
static pid_t dnsmasq_pid;
static int dnsmasq_port;
static char pidfile[] = "/tmp/postern-test-dns-XXXXXX";

struct result {
	int calls;
	enum dns_verdict v;
	struct timespec at;
};

static void
on_done(void *arg, enum dns_verdict v)
{
	struct result *r = arg;

	r->calls++;
	r->v = v;
	clock_gettime(CLOCK_MONOTONIC, &r->at);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

static double
seconds_since(const struct timespec *t0, const struct timespec *t1)
{
	return (double)(t1->tv_sec - t0->tv_sec) +
	       (double)(t1->tv_nsec - t0->tv_nsec) / 1e9;
}

/* Runs the loop until n results are in; fails after WAIT_SECONDS. */
static void
wait_for(struct result *r, size_t n)
{
	struct timeval tv = {WAIT_SECONDS, 0};
	bool is_late = false;
	struct event *t = evtimer_new(base, on_timeout, &is_late);
	size_t done = 0;

	evtimer_add(t, &tv);
	while (!is_late) {
		done = 0;
		for (size_t i = 0; i < n; i++)
			done += r[i].calls > 0;
		if (done == n)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(t);
	assert_int_equal(done, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(r[i].calls, 1);
}

/* Runs the loop for ms milliseconds. */
static void
run_for(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static struct config
make_cfg(const char *servers, uint64_t timeout)
{
	return (struct config){
	    .dns_servers = (char *)servers,
	    .dns_timeout = timeout,
	    .dns_check_sender_domain = true,
	};
}

static struct dns *
open_ok(const char *servers, uint64_t timeout)
{
	struct config cfg = make_cfg(servers, timeout);
	char err[512] = "";
	struct dns *d = dns_open(&cfg, base, err, sizeof err);

	if (d == NULL)
		fail_msg("dns_open: %s", err);
	return d;
}

/* One lookup; returns its verdict, its time in *secs_out if asked. */
static enum dns_verdict
check(struct dns *d, const char *domain, double *secs_out)
{
	struct result r = {0};
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	dns_check_domain(d, domain, on_done, &r);
	assert_int_equal(r.calls, 0); /* never inside dns_check_domain */
	wait_for(&r, 1);
	if (secs_out)
		*secs_out = seconds_since(&t0, &r.at);
	return r.v;
}

/* A UDP socket on 127.0.0.1 and a free port; returns the fd. */
static int
udp_bind(int *port_out)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port_out = ntohs(sa.sin_port);
	return fd;
}

/* A fake server that answers every query with one rcode. */
struct fake {
	int fd, port, rcode, queries;
	struct event *ev;
};

static void
fake_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct fake *f = arg;
	unsigned char buf[DNS_PACKET_MAX];
	struct sockaddr_storage from;
	socklen_t flen = sizeof from;
	ssize_t n;

	(void)what;
	n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
	if (n < DNS_HDR_LEN)
		return;
	f->queries++;
	/* QR (a response); then RA and the rcode. */
	buf[2] |= 0x80;
	buf[3] = (unsigned char)(0x80 | f->rcode);
	sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen);
}

static void
fake_start(struct fake *f, int rcode)
{
	*f = (struct fake){.rcode = rcode};
	f->fd = udp_bind(&f->port);
	f->ev = event_new(base, f->fd, EV_READ | EV_PERSIST, fake_on_read, f);
	event_add(f->ev, NULL);
}

static void
fake_stop(struct fake *f)
{
	event_free(f->ev);
	close(f->fd);
}

/* Sends one MX query for good.test to port; true on any answer. */
static bool
dns_ping(int port)
{
	static const unsigned char q[] = {
	    0x12, 0x34, 0x01, 0x00, 0,	 1,   0,   0,	0, 0, 0,  0, 4, 'g',
	    'o',  'o',	'd',  4,    't', 'e', 's', 't', 0, 0, 15, 0, 1};
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	unsigned char buf[DNS_PACKET_MAX];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	bool is_ok = false;

	if (fd < 0)
		return false;
	if (sendto(fd, q, sizeof q, 0, (struct sockaddr *)&sa, sizeof sa) > 0 &&
	    poll(&pfd, 1, STEP_MS) == 1)
		is_ok = recv(fd, buf, sizeof buf, 0) > DNS_HDR_LEN;
	close(fd);
	return is_ok;
}

static bool
dnsmasq_start(int port)
{
	char port_arg[32], pid_arg[300];

	snprintf(port_arg, sizeof port_arg, "--port=%d", port);
	snprintf(pid_arg, sizeof pid_arg, "--pid-file=%s/dnsmasq.pid", pidfile);
	dnsmasq_pid = fork();
	assert_true(dnsmasq_pid >= 0);
	if (dnsmasq_pid == 0) {
		execl(DNSMASQ, DNSMASQ, "--no-resolv", "--no-hosts",
		      "--conf-file=/dev/null", port_arg,
		      "--listen-address=127.0.0.1", "--bind-interfaces",
		      pid_arg, "--keep-in-foreground", "--local=/test/",
		      "--mx-host=good.test,mail.good.test,10",
		      "--host-record=mail.good.test,127.0.0.2",
		      "--host-record=amonly.test,127.0.0.3",
		      "--host-record=v6only.test,::3",
		      "--mx-host=nullmx.test,.,0",
		      "--mx-host=mxnohost.test,nowhere.test,10",
		      "--txt-record=txtonly.test,no mail here", (char *)NULL);
		_exit(127);
	}
	for (int ms = 0; ms < DNSMASQ_START_MS; ms += STEP_MS) {
		if (dns_ping(port))
			return true;
		if (waitpid(dnsmasq_pid, NULL, WNOHANG) == dnsmasq_pid) {
			dnsmasq_pid = 0;
			return false; /* the port was taken meanwhile */
		}
	}
	return false;
}

static void
dnsmasq_stop(void)
{
	if (dnsmasq_pid <= 0)
		return;
	kill(dnsmasq_pid, SIGTERM);
	waitpid(dnsmasq_pid, NULL, 0);
	dnsmasq_pid = 0;
}

/* "127.0.0.1:PORT" of our dnsmasq; skips the test when there is none. */
static const char *
dnsmasq_servers(void)
{
	static char buf[64];

	if (dnsmasq_port == 0)
		skip();
	snprintf(buf, sizeof buf, "127.0.0.1:%d", dnsmasq_port);
	return buf;
}

static void
test_dnsmasq_verdicts(void **state)
{
	static const struct {
		const char *domain;
		enum dns_verdict v;
	} rows[] = {
	    {"good.test", DNS_OK},	      /* MX */
	    {"GOOD.Test.", DNS_OK},	      /* case, trailing dot */
	    {"amonly.test", DNS_OK},	      /* no MX, an A */
	    {"v6only.test", DNS_OK},	      /* no MX, an AAAA */
	    {"mxnohost.test", DNS_OK},	      /* an MX is enough */
	    {"mail.good.test", DNS_OK},	      /* an A */
	    {"nxdomain.test", DNS_NO_DOMAIN}, /* NXDOMAIN */
	    {"nullmx.test", DNS_NO_DOMAIN},   /* RFC 7505 */
	    {"txtonly.test", DNS_NO_DOMAIN},  /* no MX, A nor AAAA */
	};
	struct dns *d = open_ok(dnsmasq_servers(), 5);

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		enum dns_verdict v = check(d, rows[i].domain, NULL);

		if (v != rows[i].v)
			fail_msg("%s: got %d, want %d", rows[i].domain, v,
				 rows[i].v);
	}
	dns_close(d);
}

static void
test_dnsmasq_many_concurrent_lookups(void **state)
{
	static const char *const names[] = {"good.test", "nxdomain.test",
					    "amonly.test", "nullmx.test"};
	static const enum dns_verdict want[] = {DNS_OK, DNS_NO_DOMAIN, DNS_OK,
						DNS_NO_DOMAIN};
	struct result *r = calloc(MANY, sizeof *r);
	struct dns *d = open_ok(dnsmasq_servers(), 5);
	char name[64];

	(void)state;
	assert_non_null(r);
	for (size_t i = 0; i < MANY; i++) {
		/* Distinct names for half, so the cache does not do it all. */
		if (i % 2)
			snprintf(name, sizeof name, "n%zu.%s", i,
				 i % 4 == 1 ? "nxdomain.test" : "x.test");
		else
			snprintf(name, sizeof name, "%s", names[i / 2 % 4]);
		dns_check_domain(d, name, on_done, &r[i]);
	}
	wait_for(r, MANY);
	for (size_t i = 0; i < MANY; i++) {
		enum dns_verdict w = i % 2 ? DNS_NO_DOMAIN : want[i / 2 % 4];

		if (r[i].v != w)
			fail_msg("lookup %zu: got %d, want %d", i, r[i].v, w);
	}
	dns_close(d);
	free(r);
}

static void
test_invalid_names_are_no_domain_without_a_query(void **state)
{
	static const char *const bad[] = {
	    "",
	    ".",
	    "a..b",
	    "-a.test",
	    "a-.test",
	    "a b.test",
	    "a@b.test",
	    "[127.0.0.1]",
	    /* A label of 64 octets. */
	    ("x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
	};
	struct fake f;
	struct dns *d;
	char servers[64];

	(void)state;
	fake_start(&f, RCODE_SERVFAIL);
	snprintf(servers, sizeof servers, "127.0.0.1:%d", f.port);
	d = open_ok(servers, 5);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(check(d, bad[i], NULL), DNS_NO_DOMAIN);
	assert_int_equal(f.queries, 0);
	/* Non-ASCII (an SMTPUTF8 U-label) is not checked: ok. */
	assert_int_equal(check(d,
			       "b\xc3\xbc"
			       "cher.test",
			       NULL),
			 DNS_OK);
	assert_int_equal(f.queries, 0);
	dns_close(d);
	fake_stop(&f);
}

static void
test_swallowed_queries_tempfail_within_timeout(void **state)
{
	int port, fd = udp_bind(&port);
	char servers[64];
	struct dns *d;
	double secs;

	(void)state;
	snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
	d = open_ok(servers, 1);
	assert_int_equal(check(d, "good.test", &secs), DNS_TEMPFAIL);
	assert_true(secs >= 0.5 && secs < 2.5);
	dns_close(d);
	close(fd);
}

static void
test_deadline_cuts_retries_over_many_servers(void **state)
{
	int port[3], fd[3];
	char servers[128];
	struct dns *d;
	double secs;

	(void)state;
	for (int i = 0; i < 3; i++)
		fd[i] = udp_bind(&port[i]);
	snprintf(servers, sizeof servers,
		 "127.0.0.1:%d, 127.0.0.1:%d ,127.0.0.1:%d", port[0], port[1],
		 port[2]);
	/* c-ares alone would take 3 servers x 2 tries of 250 ms and more. */
	d = open_ok(servers, 1);
	assert_int_equal(check(d, "good.test", &secs), DNS_TEMPFAIL);
	assert_true(secs >= 0.9 && secs < 1.8);
	/* The orphaned queries end on their own, later. */
	run_for(2500);
	dns_close(d);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
}

static void
test_servfail_refused_and_no_listener_tempfail(void **state)
{
	static const int rcodes[] = {RCODE_SERVFAIL, RCODE_REFUSED};
	char servers[64];
	struct dns *d;
	double secs;
	int port, fd;

	(void)state;
	for (size_t i = 0; i < sizeof rcodes / sizeof rcodes[0]; i++) {
		struct fake f;

		fake_start(&f, rcodes[i]);
		snprintf(servers, sizeof servers, "127.0.0.1:%d", f.port);
		d = open_ok(servers, 5);
		assert_int_equal(check(d, "good.test", &secs), DNS_TEMPFAIL);
		assert_true(secs < 2.0);
		assert_true(f.queries >= 1);
		dns_close(d);
		fake_stop(&f);
	}
	/* A port nobody listens on: ICMP port unreachable. */
	fd = udp_bind(&port);
	close(fd);
	snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
	d = open_ok(servers, 5);
	assert_int_equal(check(d, "good.test", &secs), DNS_TEMPFAIL);
	assert_true(secs < 2.0);
	dns_close(d);
}

struct chain {
	struct dns *d;
	int calls;
	struct result again;
};

/* A callback run by dns_close that starts one more lookup. */
static void
on_done_again(void *arg, enum dns_verdict v)
{
	struct chain *c = arg;

	c->calls++;
	assert_int_equal(v, DNS_TEMPFAIL);
	dns_check_domain(c->d, "good.test", on_done, &c->again);
}

static void
test_close_with_lookups_pending_tempfails_them(void **state)
{
	struct result r[CLOSE_PENDING] = {0};
	struct chain c = {0};
	int port, fd = udp_bind(&port);
	char servers[64];
	struct dns *d;

	(void)state;
	snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
	d = open_ok(servers, 5);
	c.d = d;
	for (size_t i = 0; i < CLOSE_PENDING; i++)
		dns_check_domain(d, i % 2 ? "good.test" : "bad..name", on_done,
				 &r[i]);
	dns_check_domain(d, "other.test", on_done_again, &c);
	run_for(100); /* the queries are out; the invalid names settle */
	dns_close(d);
	for (size_t i = 0; i < CLOSE_PENDING; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].v, i % 2 ? DNS_TEMPFAIL : DNS_NO_DOMAIN);
	}
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.again.calls, 1);
	assert_int_equal(c.again.v, DNS_TEMPFAIL);
	close(fd);
	dns_close(NULL);
}

static void
test_open_errors_name_the_fix(void **state)
{
	static const char *const bad[] = {
	    "mx.example:53", "127.0.0.1:0", "127.0.0.1:65536",	"127.0.0.1:x",
	    "[::1",	     "[::1]x",	    "127.0.0.1, ,  mx", "999.1.1.1",
	};
	static const char *const good[] = {
	    "127.0.0.1",
	    "127.0.0.1:5353, [::1]:53",
	    " 10.0.0.1 ,::1 ",
	    "127.0.0.1,",
	};
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct config cfg = make_cfg(bad[i], 5);

		err[0] = '\0';
		assert_null(dns_open(&cfg, base, err, sizeof err));
		if (strstr(err, "[dns] servers") == NULL)
			fail_msg("%s: %s", bad[i], err);
	}
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		dns_close(open_ok(good[i], 5));
	dns_close(open_ok("", 5)); /* /etc/resolv.conf */
}

static int
setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (base == NULL || mkdtemp(pidfile) == NULL)
		return -1;
	if (access(DNSMASQ, X_OK) != 0)
		return 0; /* the dnsmasq cases skip */
	for (int tries = 0; tries < START_TRIES; tries++) {
		int fd = udp_bind(&dnsmasq_port);

		close(fd);
		if (dnsmasq_start(dnsmasq_port))
			return 0;
		dnsmasq_stop();
	}
	fprintf(stderr, "dnsmasq did not start\n");
	return -1;
}

static int
teardown(void **state)
{
	char path[300];

	(void)state;
	dnsmasq_stop();
	event_base_free(base);
	snprintf(path, sizeof path, "%s/dnsmasq.pid", pidfile);
	unlink(path);
	return rmdir(pidfile);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dnsmasq_verdicts),
	    cmocka_unit_test(test_dnsmasq_many_concurrent_lookups),
	    cmocka_unit_test(test_invalid_names_are_no_domain_without_a_query),
	    cmocka_unit_test(test_swallowed_queries_tempfail_within_timeout),
	    cmocka_unit_test(test_deadline_cuts_retries_over_many_servers),
	    cmocka_unit_test(test_servfail_refused_and_no_listener_tempfail),
	    cmocka_unit_test(test_close_with_lookups_pending_tempfails_them),
	    cmocka_unit_test(test_open_errors_name_the_fix),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
