/*
 * test_route.c - route_rcpt(), the one decision on a recipient: the
 * verdict every entry point gets (local, forward, moved, unknown, held,
 * relay refused, relayed when trusted), the msg_route it stores, and the
 * mailbox checks only RCPT asks for (a Maildir at or over [local] quota).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "route/route.h"

static char dir[] = "/tmp/postern-test-route-XXXXXX";

static void
write_file(const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static struct config *
load(const char *extra)
{
	char path[512], conf[1024];
	char *errors = NULL;
	struct config *cfg;

	snprintf(conf, sizeof conf,
		 "[server]\nsmtp = 127.0.0.1:2525\n[local]\n"
		 "domains = example.test\nusers = users\n"
		 "forwards = forwards\nmaildir = mail/%%d/%%u\n%s",
		 extra);
	write_file("postern.conf", conf);
	snprintf(path, sizeof path, "%s/postern.conf", dir);
	cfg = config_load(path, &errors);
	assert_null(errors);
	assert_non_null(cfg);
	return cfg;
}

static struct users *
users_of(const struct config *cfg)
{
	char err[256];
	struct users *u =
	    users_load(cfg->local_users, cfg->local_forwards, err, sizeof err);

	assert_non_null(u);
	return u;
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	write_file("users", "alice@example.test\nbob@example.test\n"
			    "held@example.test hold\n");
	write_file("forwards",
		   "carol@example.test bob@example.test forward\n"
		   "dave@example.test dave@elsewhere.example refuse\n"
		   "erin@example.test erin@remote.example forward\n");
	return 0;
}

static void
parse(const char *path, struct addr *a)
{
	size_t used = 0;

	assert_int_equal(
	    addr_parse_path(path, strlen(path),
			    ADDR_ALLOW_POSTMASTER | ADDR_ALLOW_UTF8, a, &used),
	    ADDR_OK);
}

static void
test_route_rcpt_verdicts(void **state)
{
	static const struct {
		const char *path;
		bool is_trusted;
		enum reply_id reply;
		enum msg_route route; /* 0: refused */
		const char *mailbox;
	} cases[] = {
	    {"<alice@example.test>", false, REPLY_RCPT_OK, MSG_ROUTE_LOCAL,
	     "alice@example.test"},
	    {"<Alice+tag@Example.TEST>", false, REPLY_RCPT_OK, MSG_ROUTE_LOCAL,
	     "alice@example.test"},
	    {"<carol@example.test>", false, REPLY_WILL_FORWARD, MSG_ROUTE_LOCAL,
	     "bob@example.test"},
	    {"<erin@example.test>", false, REPLY_WILL_FORWARD, MSG_ROUTE_REMOTE,
	     "erin@remote.example"},
	    {"<dave@example.test>", false, REPLY_USER_MOVED, 0, NULL},
	    {"<nobody@example.test>", false, REPLY_USER_UNKNOWN, 0, NULL},
	    {"<held@example.test>", false, REPLY_USER_HELD, 0, NULL},
	    {"<x@remote.example>", false, REPLY_RELAY_DENIED, 0, NULL},
	    {"<x@remote.example>", true, REPLY_RCPT_OK, MSG_ROUTE_REMOTE,
	     "x@remote.example"},
	    {"<a%b@example.test>", true, REPLY_ROUTING_DENIED, 0, NULL},
	};
	struct config *cfg = load("");
	struct users *users = users_of(cfg);

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct route_req rq = {.cfg = cfg,
				       .users = users,
				       .is_trusted = cases[i].is_trusted,
				       .check_mailbox = true};
		struct rcpt_verdict v;
		struct addr a;

		parse(cases[i].path, &a);
		print_message("%s trusted=%d\n", cases[i].path,
			      cases[i].is_trusted);
		assert_int_equal(route_rcpt(&rq, &a, &v), cases[i].reply);
		assert_int_equal(route_msg_route(&v), cases[i].route);
		if (cases[i].mailbox != NULL)
			assert_string_equal(v.mailbox, cases[i].mailbox);
	}
	users_free(users);
	config_free(cfg);
}

static void
make_dir(const char *rel)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", dir, rel);
	assert_true(mkdir(path, 0700) == 0 || access(path, F_OK) == 0);
}

/* 64 octets in alice's Maildir: a quota of 64 is full, 65 is not. */
static void
test_route_rcpt_quota_only_when_asked(void **state)
{
	char body[65];
	struct config *full = load("quota = 64\n");
	struct config *room = load("quota = 65\n");
	struct users *users = users_of(full);
	struct rcpt_verdict v;
	struct addr a;

	(void)state;
	make_dir("mail");
	make_dir("mail/example.test");
	make_dir("mail/example.test/alice");
	make_dir("mail/example.test/alice/new");
	make_dir("mail/example.test/alice/cur");
	memset(body, 'x', 64);
	body[64] = '\0';
	write_file("mail/example.test/alice/new/1.msg", body);
	parse("<alice@example.test>", &a);

	assert_int_equal(route_rcpt(&(struct route_req){.cfg = full,
							.users = users,
							.check_mailbox = true},
				    &a, &v),
			 REPLY_OVER_QUOTA);
	assert_string_equal(v.mailbox, "alice@example.test");
	/* The pickup, bounces and postern send do not look at the box. */
	assert_int_equal(route_rcpt(&(struct route_req){.cfg = full,
							.users = users,
							.is_trusted = true},
				    &a, &v),
			 REPLY_RCPT_OK);
	assert_int_equal(route_rcpt(&(struct route_req){.cfg = room,
							.users = users,
							.check_mailbox = true},
				    &a, &v),
			 REPLY_RCPT_OK);
	/* A refusal is never turned into a quota reply. */
	parse("<nobody@example.test>", &a);
	assert_int_equal(route_rcpt(&(struct route_req){.cfg = full,
							.users = users,
							.check_mailbox = true},
				    &a, &v),
			 REPLY_USER_UNKNOWN);
	users_free(users);
	config_free(full);
	config_free(room);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_route_rcpt_verdicts),
	    cmocka_unit_test(test_route_rcpt_quota_only_when_asked),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
