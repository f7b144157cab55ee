/*
 * test_greylist.c - greylisting against the real stores: a SQLite file in
 * a temporary directory and a redis-server of our own on a free loopback
 * port (the Redis tests are skipped only when redis-server is not
 * installed).  A fake clock stands in for time(NULL), so the delay,
 * expire and lifetime rules run without sleeping.
 *
 * Covered: the key (/24, /64, case, null sender), the allow-list (CIDR,
 * domain), first sight -> 450 wait=delay, early retry -> remaining wait,
 * retry after the delay -> pass, confirmed stays, unconfirmed expires,
 * confirmed lapses, state across a reopen, pruning, close drains the
 * queue, two nodes sharing one Redis, Redis stopped -> error and back,
 * a store path that cannot be opened, a locked database and writes the
 * kernel refuses -> error, never a pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include "policy/greylist.h"
#include "policy/greylist_int.h"

#define DELAY 60
#define EXPIRE 14400
#define LIFETIME 3110400
#define T0 1700000000
#define WAIT_SECONDS 15	    /* for a verdict before the test fails */
#define REDIS_START_MS 5000 /* for redis-server to answer PING */
#define STEP_MS 20

static char dir[] = "/tmp/postern-test-greylist-XXXXXX";
static struct event_base *base;
static time_t fake_now;

static time_t
fake_clock(void)
{
	return fake_now;
}

struct result {
	bool is_done;
	int calls;
	enum greylist_verdict v;
	unsigned wait;
};

static void
on_done(void *arg, enum greylist_verdict v, unsigned wait)
{
	struct result *r = arg;

	r->is_done = true;
	r->calls++;
	r->v = v;
	r->wait = wait;
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* Runs the loop until r is done; fails after WAIT_SECONDS. */
static void
wait_for(struct result *r)
{
	struct timeval tv = {WAIT_SECONDS, 0};
	bool is_late = false;
	struct event *t = evtimer_new(base, on_timeout, &is_late);

	evtimer_add(t, &tv);
	while (!r->is_done && !is_late)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	assert_true(r->is_done);
	assert_int_equal(r->calls, 1);
}

/* One check at fake time now; returns the verdict, the wait in *wait. */
static enum greylist_verdict
check_at(struct greylist *g, time_t now, const char *ip, const char *sender,
	 const char *rcpt, unsigned *wait)
{
	struct result r = {0};

	fake_now = now;
	greylist_check(g, ip, sender, rcpt, on_done, &r);
	assert_false(r.is_done); /* never inside greylist_check */
	wait_for(&r);
	*wait = r.wait;
	return r.v;
}

static struct config
make_cfg(const char *store, const char *allow)
{
	return (struct config){
	    .dir = dir,
	    .greylist_enabled = true,
	    .greylist_delay = DELAY,
	    .greylist_expire = EXPIRE,
	    .greylist_lifetime = LIFETIME,
	    .greylist_store = (char *)store,
	    .greylist_allow = (char *)allow,
	};
}

static struct greylist *
open_ok(const struct config *cfg)
{
	char err[512] = "";
	struct greylist *g = greylist_open(cfg, base, err, sizeof err);

	if (g == NULL)
		fail_msg("greylist_open: %s", err);
	greylist_set_clock(g, fake_clock);
	return g;
}

static void
expect(struct greylist *g, time_t now, const char *ip, const char *rcpt,
       enum greylist_verdict want, unsigned want_wait)
{
	unsigned wait = 0;
	enum greylist_verdict v =
	    check_at(g, now, ip, "sender@example.org", rcpt, &wait);

	assert_int_equal(v, want);
	assert_int_equal(wait, want_wait);
}

/* Rows in the SQLite table, read through a connection of our own. */
static int
count_rows(const char *file)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *s;
	int n = -1;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM greylist",
					    -1, &s, NULL),
			 SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

static void
test_key_groups_ipv4_by_24_and_ipv6_by_64(void **state)
{
	static const struct {
		const char *ip, *sender, *rcpt, *key;
	} rows[] = {
	    {"1.2.3.4", "a@b.example", "c@d.example",
	     "1.2.3.0/24|a@b.example|c@d.example"},
	    {"1.2.3.99", "a@b.example", "c@d.example",
	     "1.2.3.0/24|a@b.example|c@d.example"},
	    {"1.2.4.1", "a@b.example", "c@d.example",
	     "1.2.4.0/24|a@b.example|c@d.example"},
	    {"2001:DB8:0:1:AAAA::1", "a@b.example", "c@d.example",
	     "2001:db8:0:1::/64|a@b.example|c@d.example"},
	    {"2001:db8:0:1:ffff:ffff:ffff:ffff", "a@b.example", "c@d.example",
	     "2001:db8:0:1::/64|a@b.example|c@d.example"},
	    {"2001:db8:0:2::1", "a@b.example", "c@d.example",
	     "2001:db8:0:2::/64|a@b.example|c@d.example"},
	    {"::ffff:1.2.3.4", "a@b.example", "c@d.example",
	     "1.2.3.0/24|a@b.example|c@d.example"},
	    {"[::1]", "a@b.example", "c@d.example",
	     "::/64|a@b.example|c@d.example"},
	    {"1.2.3.4", "", "c@d.example", "1.2.3.0/24|<>|c@d.example"},
	    {"1.2.3.4", "<>", "c@d.example", "1.2.3.0/24|<>|c@d.example"},
	    {"1.2.3.4", NULL, "c@d.example", "1.2.3.0/24|<>|c@d.example"},
	    {"1.2.3.4", "<Alice@Example.ORG>", "<Bob@D.Example>",
	     "1.2.3.0/24|alice@example.org|bob@d.example"},
	    {"mx.example", "a@b.example", "c@d.example", NULL},
	    {"1.2.3.4", "a@b.example", "", NULL},
	    {"1.2.3.4", "a@b.example", NULL, NULL},
	};
	char buf[GREYLIST_KEY_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		bool ok = greylist_key(rows[i].ip, rows[i].sender, rows[i].rcpt,
				       buf, sizeof buf);
		if (rows[i].key == NULL) {
			assert_false(ok);
			continue;
		}
		assert_true(ok);
		assert_string_equal(buf, rows[i].key);
	}
	/* Too small a buffer is refused, not cut. */
	assert_false(greylist_key("1.2.3.4", "a@b", "c@d", buf, 10));
}

static void
test_allowed_by_cidr_address_and_sender_domain(void **state)
{
	struct config cfg = make_cfg(
	    "sqlite:x.db", " 192.0.2.0/24, 198.51.100.7 ,"
			   "2001:db8:1::/48,Example.ORG, .trusted.test");
	static const struct {
		const char *ip, *sender;
		bool is_allowed;
	} rows[] = {
	    {"192.0.2.200", "x@spam.example", true},
	    {"::ffff:192.0.2.9", "x@spam.example", true},
	    {"192.0.3.1", "x@spam.example", false},
	    {"198.51.100.7", "x@spam.example", true},
	    {"198.51.100.8", "x@spam.example", false},
	    {"2001:db8:1:ffff::1", "x@spam.example", true},
	    {"2001:db8:2::1", "x@spam.example", false},
	    {"203.0.113.1", "x@example.org", true},
	    {"203.0.113.1", "<x@MAIL.Example.Org>", true},
	    {"203.0.113.1", "x@badexample.org", false},
	    {"203.0.113.1", "x@example.org.evil", false},
	    {"203.0.113.1", "x@a.trusted.test", true},
	    {"203.0.113.1", "", false},
	    {"203.0.113.1", NULL, false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (greylist_allowed(&cfg, rows[i].ip, rows[i].sender) !=
		    rows[i].is_allowed)
			fail_msg("row %zu: %s %s", i, rows[i].ip,
				 rows[i].sender ? rows[i].sender : "(null)");
	cfg.greylist_allow = NULL;
	assert_false(greylist_allowed(&cfg, "192.0.2.1", "x@example.org"));
}

static void
test_decide_clock_going_back_never_passes_early(void **state)
{
	struct greylist_policy pol = {DELAY, EXPIRE, LIFETIME};
	struct greylist_rec old = {T0, T0, false};
	struct greylist_outcome out;

	(void)state;
	greylist_decide(&old, T0 - 30, &pol, &out);
	assert_int_equal(out.verdict, GREYLIST_DEFER);
	assert_int_equal(out.wait, DELAY);
	assert_false(out.is_dirty);
}

static void
test_sqlite_first_defer_then_early_retry_then_pass(void **state)
{
	struct config cfg = make_cfg("sqlite:grey1.db", "");
	struct greylist *g = open_ok(&cfg);
	const char *r = "rcpt@example.test";

	(void)state;
	expect(g, T0, "1.2.3.4", r, GREYLIST_DEFER, DELAY);
	expect(g, T0 + 20, "1.2.3.4", r, GREYLIST_DEFER, DELAY - 20);
	/* Another host of the same /24 is the same triplet. */
	expect(g, T0 + 59, "1.2.3.99", r, GREYLIST_DEFER, 1);
	/* Another /24 is not. */
	expect(g, T0 + 59, "1.2.4.1", r, GREYLIST_DEFER, DELAY);
	expect(g, T0 + DELAY, "1.2.3.99", r, GREYLIST_PASS, 0);
	/* Confirmed: passes at once, each pass renewing its lifetime. */
	expect(g, T0 + DELAY + 1, "1.2.3.4", r, GREYLIST_PASS, 0);
	expect(g, T0 + LIFETIME, "1.2.3.4", r, GREYLIST_PASS, 0);
	expect(g, T0 + 2 * LIFETIME, "1.2.3.4", r, GREYLIST_PASS, 0);
	/* Unused past its lifetime: greylisted again. */
	expect(g, T0 + 3 * LIFETIME + 1, "1.2.3.4", r, GREYLIST_DEFER, DELAY);
	/* IPv6 by /64. */
	expect(g, T0, "2001:db8::1", r, GREYLIST_DEFER, DELAY);
	expect(g, T0 + DELAY, "2001:db8::ffff:2", r, GREYLIST_PASS, 0);
	expect(g, T0 + DELAY, "2001:db8:0:1::1", r, GREYLIST_DEFER, DELAY);
	greylist_close(g);
}

static void
test_sqlite_unconfirmed_triplet_expires(void **state)
{
	struct config cfg = make_cfg("sqlite:grey2.db", "");
	struct greylist *g = open_ok(&cfg);
	const char *r = "rcpt@example.test";

	(void)state;
	expect(g, T0, "10.0.0.1", r, GREYLIST_DEFER, DELAY);
	expect(g, T0 + EXPIRE - 1, "10.0.0.1", r, GREYLIST_PASS, 0);
	expect(g, T0, "10.0.1.1", r, GREYLIST_DEFER, DELAY);
	/* Retried too late: forgotten, starts over. */
	expect(g, T0 + EXPIRE, "10.0.1.1", r, GREYLIST_DEFER, DELAY);
	expect(g, T0 + EXPIRE + 10, "10.0.1.1", r, GREYLIST_DEFER, DELAY - 10);
	expect(g, T0 + EXPIRE + DELAY, "10.0.1.1", r, GREYLIST_PASS, 0);
	greylist_close(g);
}

static void
test_sqlite_state_survives_reopen(void **state)
{
	struct config cfg = make_cfg("sqlite:grey3.db", "");
	struct greylist *g = open_ok(&cfg);

	(void)state;
	expect(g, T0, "10.0.0.1", "a@example.test", GREYLIST_DEFER, DELAY);
	greylist_close(g);
	g = open_ok(&cfg);
	expect(g, T0 + DELAY, "10.0.0.1", "a@example.test", GREYLIST_PASS, 0);
	greylist_close(g);
	assert_int_equal(count_rows("grey3.db"), 1);
}

static void
test_allowed_client_passes_without_touching_store(void **state)
{
	struct config cfg =
	    make_cfg("sqlite:grey4.db", "192.0.2.0/24,example.org");
	struct greylist *g = open_ok(&cfg);
	unsigned wait;

	(void)state;
	assert_int_equal(check_at(g, T0, "192.0.2.5", "x@spam.example",
				  "a@example.test", &wait),
			 GREYLIST_PASS);
	assert_int_equal(check_at(g, T0, "203.0.113.5", "x@sub.example.org",
				  "a@example.test", &wait),
			 GREYLIST_PASS);
	assert_int_equal(check_at(g, T0, "203.0.113.5", "x@spam.example",
				  "a@example.test", &wait),
			 GREYLIST_DEFER);
	greylist_close(g);
	assert_int_equal(count_rows("grey4.db"), 1);
}

static void
test_sqlite_prunes_stale_triplets(void **state)
{
	struct config cfg = make_cfg("sqlite:grey5.db", "");
	struct greylist *g = open_ok(&cfg);

	(void)state;
	expect(g, T0, "10.0.0.1", "old@example.test", GREYLIST_DEFER, DELAY);
	expect(g, T0, "10.0.0.2", "conf@example.test", GREYLIST_DEFER, DELAY);
	expect(g, T0 + DELAY, "10.0.0.2", "conf@example.test", GREYLIST_PASS,
	       0);
	/* The unconfirmed one is past expire, the confirmed one lives. */
	expect(g, T0 + EXPIRE + 1, "10.0.0.3", "new@example.test",
	       GREYLIST_DEFER, DELAY);
	greylist_close(g);
	assert_int_equal(count_rows("grey5.db"), 2);
}

static void
test_close_finishes_queued_checks(void **state)
{
	struct config cfg = make_cfg("sqlite:grey6.db", "");
	struct greylist *g = open_ok(&cfg);
	struct result r[3] = {0};
	char rcpt[64];

	(void)state;
	fake_now = T0;
	for (int i = 0; i < 3; i++) {
		snprintf(rcpt, sizeof rcpt, "u%d@example.test", i);
		greylist_check(g, "10.1.1.1", "s@example.org", rcpt, on_done,
			       &r[i]);
	}
	greylist_close(g);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].v, GREYLIST_DEFER);
	}
	greylist_close(NULL);
}

static void
expect_open_error(const struct config *cfg, const char *needle)
{
	char err[512] = "";
	struct greylist *g = greylist_open(cfg, base, err, sizeof err);

	assert_null(g);
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

static void
test_open_errors_name_the_fix(void **state)
{
	struct config cfg = make_cfg("sqlite:plainfile/grey.db", "");
	char path[512];
	FILE *fp;

	(void)state;
	/* A missing directory is made; one that cannot be (a regular file
	 * in the way) is an error naming the fix. */
	snprintf(path, sizeof path, "%s/plainfile", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	expect_open_error(&cfg, "fix [greylist] store");
	expect_open_error(&cfg, "plainfile/grey.db");
	/* A directory where the file should be. */
	snprintf(path, sizeof path, "sqlite:%s", dir);
	cfg.greylist_store = path;
	expect_open_error(&cfg, "fix [greylist] store");
	cfg.greylist_store = "sqlite:";
	expect_open_error(&cfg, "[greylist] store");
	cfg.greylist_store = "memcached://127.0.0.1";
	expect_open_error(&cfg, "fix [greylist] store");
	cfg.greylist_store = "redis://127.0.0.1:notaport/0";
	expect_open_error(&cfg, "fix [greylist] store");
	cfg.greylist_store = "redis://127.0.0.1:70000";
	expect_open_error(&cfg, "fix [greylist] store");
	cfg.greylist_store = "sqlite:grey7.db";
	cfg.greylist_allow = "10.0.0.0/33";
	expect_open_error(&cfg, "fix [greylist] allow");
	cfg.greylist_allow = "10.0.0.256";
	expect_open_error(&cfg, "fix [greylist] allow");
	cfg.greylist_allow = "";
	cfg.greylist_expire = DELAY;
	expect_open_error(&cfg, "fix [greylist] expire");
}

static void
test_sqlite_locked_by_another_writer_gives_error(void **state)
{
	struct config cfg = make_cfg("sqlite:grey8.db", "");
	struct greylist *g = open_ok(&cfg);
	char path[512];
	sqlite3 *other;

	(void)state;
	expect(g, T0, "10.0.0.1", "a@example.test", GREYLIST_DEFER, DELAY);
	snprintf(path, sizeof path, "%s/grey8.db", dir);
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
	    SQLITE_OK);
	/* Past the delay, but the store cannot be written: no pass. */
	expect(g, T0 + DELAY, "10.0.0.1", "a@example.test", GREYLIST_ERROR, 0);
	expect(g, T0 + DELAY, "10.0.0.9", "b@example.test", GREYLIST_ERROR, 0);
	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(other);
	expect(g, T0 + DELAY, "10.0.0.1", "a@example.test", GREYLIST_PASS, 0);
	greylist_close(g);
}

static void
test_sqlite_writes_refused_by_kernel_give_error(void **state)
{
	struct config cfg = make_cfg("sqlite:grey9.db", "");
	struct greylist *g = open_ok(&cfg);
	struct rlimit old, none = {0, 0};
	unsigned wait;
	enum greylist_verdict v;

	(void)state;
	expect(g, T0, "10.0.0.1", "a@example.test", GREYLIST_DEFER, DELAY);
	/* RLIMIT_FSIZE 0: every write to a regular file fails (EFBIG),
	 * for root too, unlike a chmod after the file is open. */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	none.rlim_max = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &none), 0);
	v = check_at(g, T0 + DELAY, "10.0.0.1", "a@example.test",
		     "a@example.test", &wait);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(v, GREYLIST_ERROR);
	expect(g, T0 + DELAY, "10.0.0.1", "a@example.test", GREYLIST_PASS, 0);
	greylist_close(g);
}

/* Redis: a server of our own. */

struct redis {
	pid_t pid;
	int port;
	char url[64];
};

static bool
has_redis_server(void)
{
	const char *path = getenv("PATH");
	char buf[4096], file[4200];

	if (path == NULL || strlen(path) >= sizeof buf)
		return false;
	snprintf(buf, sizeof buf, "%s", path);
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(file, sizeof file, "%s/redis-server", d);
		if (access(file, X_OK) == 0)
			return true;
	}
	return false;
}

/* A loopback port free right now. */
static int
free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static bool
redis_ping(int port)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
	bool is_ok = r && r->type == REDIS_REPLY_STATUS;

	freeReplyObject(r);
	if (c)
		redisFree(c);
	return is_ok;
}

static bool
redis_start(struct redis *rs)
{
	char port[16];

	snprintf(port, sizeof port, "%d", rs->port);
	rs->pid = fork();
	assert_true(rs->pid >= 0);
	if (rs->pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execlp("redis-server", "redis-server", "--port", port, "--bind",
		       "127.0.0.1", "--save", "", "--appendonly", "no",
		       "--daemonize", "no", (char *)NULL);
		_exit(127);
	}
	for (int ms = 0; ms < REDIS_START_MS; ms += STEP_MS) {
		if (redis_ping(rs->port))
			return true;
		if (waitpid(rs->pid, NULL, WNOHANG) == rs->pid)
			return false; /* the port was taken meanwhile */
		usleep(STEP_MS * 1000);
	}
	return false;
}

static void
redis_stop(struct redis *rs)
{
	if (rs->pid <= 0)
		return;
	kill(rs->pid, SIGTERM);
	waitpid(rs->pid, NULL, 0);
	rs->pid = 0;
}

static void
redis_up(struct redis *rs, unsigned db)
{
	if (!has_redis_server()) {
		skip();
	}
	for (int tries = 0; tries < 5; tries++) {
		rs->port = free_port();
		if (redis_start(rs)) {
			snprintf(rs->url, sizeof rs->url,
				 "redis://127.0.0.1:%d/%u", rs->port, db);
			return;
		}
		redis_stop(rs);
	}
	fail_msg("redis-server did not start");
}

/* The TTL of a triplet's key in db, -2 when absent. */
static long long
redis_ttl(int port, unsigned db, const char *key)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	redisReply *r;
	long long ttl = -3;

	assert_true(c && !c->err);
	freeReplyObject(redisCommand(c, "SELECT %u", db));
	r = redisCommand(c, "TTL postern:greylist:%s", key);
	if (r && r->type == REDIS_REPLY_INTEGER)
		ttl = r->integer;
	freeReplyObject(r);
	redisFree(c);
	return ttl;
}

static void
redis_set_raw(int port, unsigned db, const char *key, const char *value)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);

	assert_true(c && !c->err);
	freeReplyObject(redisCommand(c, "SELECT %u", db));
	freeReplyObject(
	    redisCommand(c, "SET postern:greylist:%s %s", key, value));
	redisFree(c);
}

static void
test_redis_two_nodes_share_state(void **state)
{
	struct redis rs = {0};
	struct config cfg;
	struct greylist *a, *b;
	const char *r = "rcpt@example.test";

	(void)state;
	redis_up(&rs, 3);
	cfg = make_cfg(rs.url, "");
	a = open_ok(&cfg);
	b = open_ok(&cfg);
	expect(a, T0, "10.0.0.1", r, GREYLIST_DEFER, DELAY);
	assert_in_range(redis_ttl(rs.port, 3,
				  "10.0.0.0/24|sender@example.org|"
				  "rcpt@example.test"),
			1, EXPIRE);
	expect(b, T0 + 10, "10.0.0.7", r, GREYLIST_DEFER, DELAY - 10);
	expect(b, T0 + DELAY, "10.0.0.7", r, GREYLIST_PASS, 0);
	assert_in_range(redis_ttl(rs.port, 3,
				  "10.0.0.0/24|sender@example.org|"
				  "rcpt@example.test"),
			EXPIRE + 1, LIFETIME);
	expect(a, T0 + DELAY + 1, "10.0.0.1", r, GREYLIST_PASS, 0);
	/* A value that is not ours is overwritten as a first sight. */
	redis_set_raw(rs.port, 3,
		      "10.0.9.0/24|sender@example.org|"
		      "rcpt@example.test",
		      "garbage");
	expect(a, T0, "10.0.9.1", r, GREYLIST_DEFER, DELAY);
	expect(b, T0 + DELAY, "10.0.9.1", r, GREYLIST_PASS, 0);
	/* Nothing in db 0: the /3 was honoured. */
	assert_int_equal(redis_ttl(rs.port, 0,
				   "10.0.0.0/24|sender@example.org|"
				   "rcpt@example.test"),
			 -2);
	greylist_close(a);
	greylist_close(b);
	redis_stop(&rs);
}

static void
test_redis_stopped_gives_error_and_restart_recovers(void **state)
{
	struct redis rs = {0};
	struct config cfg;
	struct greylist *g;
	const char *r = "rcpt@example.test";

	(void)state;
	redis_up(&rs, 0);
	cfg = make_cfg(rs.url, "");
	g = open_ok(&cfg);
	expect(g, T0, "10.0.0.1", r, GREYLIST_DEFER, DELAY);
	redis_stop(&rs);
	/* Past the delay, but no store: never a pass. */
	expect(g, T0 + DELAY, "10.0.0.1", r, GREYLIST_ERROR, 0);
	expect(g, T0 + DELAY, "10.0.0.1", r, GREYLIST_ERROR, 0);
	assert_true(redis_start(&rs));
	/* The first check after the restart works (state was not saved). */
	expect(g, T0 + DELAY, "10.0.0.1", r, GREYLIST_DEFER, DELAY);
	expect(g, T0 + 2 * DELAY, "10.0.0.1", r, GREYLIST_PASS, 0);
	/* A restart between two checks: the kept connection is stale. */
	redis_stop(&rs);
	assert_true(redis_start(&rs));
	expect(g, T0 + 2 * DELAY, "10.0.0.1", r, GREYLIST_DEFER, DELAY);
	greylist_close(g);
	redis_stop(&rs);
}

static void
test_redis_down_at_open_is_not_an_open_error(void **state)
{
	struct config cfg;
	struct greylist *g;
	char url[64];

	(void)state;
	snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", free_port());
	cfg = make_cfg(url, "");
	g = open_ok(&cfg);
	expect(g, T0, "10.0.0.1", "a@example.test", GREYLIST_ERROR, 0);
	greylist_close(g);
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL || evthread_use_pthreads() != 0)
		return -1;
	base = event_base_new();
	return base ? 0 : -1;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
teardown(void **state)
{
	(void)state;
	event_base_free(base);
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_groups_ipv4_by_24_and_ipv6_by_64),
	    cmocka_unit_test(test_allowed_by_cidr_address_and_sender_domain),
	    cmocka_unit_test(test_decide_clock_going_back_never_passes_early),
	    cmocka_unit_test(
		test_sqlite_first_defer_then_early_retry_then_pass),
	    cmocka_unit_test(test_sqlite_unconfirmed_triplet_expires),
	    cmocka_unit_test(test_sqlite_state_survives_reopen),
	    cmocka_unit_test(test_allowed_client_passes_without_touching_store),
	    cmocka_unit_test(test_sqlite_prunes_stale_triplets),
	    cmocka_unit_test(test_close_finishes_queued_checks),
	    cmocka_unit_test(test_open_errors_name_the_fix),
	    cmocka_unit_test(test_sqlite_locked_by_another_writer_gives_error),
	    cmocka_unit_test(test_sqlite_writes_refused_by_kernel_give_error),
	    cmocka_unit_test(test_redis_two_nodes_share_state),
	    cmocka_unit_test(
		test_redis_stopped_gives_error_and_restart_recovers),
	    cmocka_unit_test(test_redis_down_at_open_is_not_an_open_error),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
