/*
 * test_policy.c - config loading errors (file, line, fix) and the
 * recipient verdicts: local users, subaddresses, postmaster, forwards
 * (251/551), and no open relay in any address form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "policy/rcpt.h"
#include "policy/users.h"

static char dir[] = "/tmp/postern-test-policy-XXXXXX";

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
load(const char *conf, char **errors)
{
	char path[512];

	write_file("postern.conf", conf);
	snprintf(path, sizeof path, "%s/postern.conf", dir);
	return config_load(path, errors);
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	write_file("users", "# comment\nalice@example.test\n"
			    "Bob@Example.test: $6$hash\npostmaster@example.test\n"
			    "held@example.test hold\n"
			    "heldtoo@example.test: $6$hash hold\n");
	write_file("forwards", "carol@example.test bob@example.test forward\n"
			       "dave@example.test dave@elsewhere.example refuse\n"
			       "erin@example.test erin@remote.example forward\n");
	return 0;
}

static const char good_conf[] =
	"[server]\nsmtp = 127.0.0.1:2525\n[local]\n"
	"domains = example.test, Other.Test\nusers = users\n"
	"forwards = forwards\nmaildir = mail/%d/%u\n";

static void
test_config_defaults_and_relative_paths(void **state)
{
	char *errors = NULL;
	struct config *cfg = load(good_conf, &errors);

	(void)state;
	assert_null(errors);
	assert_non_null(cfg);
	assert_int_equal(cfg->server_max_recipients, 100);
	assert_int_equal(cfg->n_domains, 2);
	assert_string_equal(cfg->domains[1], "other.test");
	assert_non_null(strstr(cfg->local_users, dir));
	assert_true(cfg->maildir_path[0] == '/');
	assert_int_equal(cfg->line[CONFIG_local_domains], 4);
	config_free(cfg);
}

static void
test_config_errors_name_file_line_and_fix(void **state)
{
	static const struct {
		const char *conf;
		const char *want;
	} cases[] = {
		{"[server]\nmax_recipients = 0\n", "postern.conf:2: [server] "
		 "max_recipients = 0: must be a whole number from 1 to"},
		{"[server]\nbogus = 1\n", "postern.conf:2: unknown key 'bogus'"},
		{"[nosuch]\nx = 1\n", "postern.conf:2: unknown section [nosuch]"},
		{"[server]\nsmtp = nowhere\n", "postern.conf:2: [server] smtp: "
		 "'nowhere' is not HOST:PORT"},
		{"[greylist]\nenabled = maybe\n", "must be true or false"},
		{"[local]\nusers = missing\n", "postern.conf:2: [local] users"},
		{"[server]\nidle_timeout = 5\nidle_timeout = 6\n",
		 "postern.conf:3: [server] idle_timeout is set twice"},
		{"just words\n", "postern.conf:1: not a `key = value` line"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *errors = NULL;
		struct config *cfg = load(cases[i].conf, &errors);
		assert_null(cfg);
		assert_non_null(errors);
		if (strstr(errors, cases[i].want) == NULL)
			fail_msg("case %zu: got '%s'", i, errors);
		free(errors);
	}
}

struct rcpt_case {
	const char *local, *domain;
	bool is_literal, is_postmaster;
	enum reply_id want;
	const char *want_mailbox;
	enum rcpt_route want_route;
};

static void
test_rcpt_verdicts(void **state)
{
	static const struct rcpt_case cases[] = {
		{"alice", "example.test", 0, 0, REPLY_RCPT_OK,
		 "alice@example.test", RCPT_ROUTE_LOCAL},
		{"ALICE", "EXAMPLE.TEST", 0, 0, REPLY_RCPT_OK,
		 "alice@example.test", RCPT_ROUTE_LOCAL},
		{"alice+news", "example.test", 0, 0, REPLY_RCPT_OK,
		 "alice@example.test", RCPT_ROUTE_LOCAL},
		{"bob", "example.test", 0, 0, REPLY_RCPT_OK,
		 "bob@example.test", RCPT_ROUTE_LOCAL},
		{"nobody", "example.test", 0, 0, REPLY_USER_UNKNOWN,
		 "nobody@example.test", RCPT_ROUTE_NONE},
		{"nobody+x", "example.test", 0, 0, REPLY_USER_UNKNOWN,
		 "nobody+x@example.test", RCPT_ROUTE_NONE},
		{"alice", "other.test", 0, 0, REPLY_USER_UNKNOWN,
		 "alice@other.test", RCPT_ROUTE_NONE},
		{"alice", "elsewhere.example", 0, 0, REPLY_RELAY_DENIED,
		 "alice@elsewhere.example", RCPT_ROUTE_NONE},
		{"alice", "[127.0.0.1]", 1, 0, REPLY_RELAY_DENIED,
		 "alice@[127.0.0.1]", RCPT_ROUTE_NONE},
		{"alice%evil.example", "example.test", 0, 0,
		 REPLY_ROUTING_DENIED, NULL, RCPT_ROUTE_NONE},
		{"evil.example!alice", "example.test", 0, 0,
		 REPLY_ROUTING_DENIED, NULL, RCPT_ROUTE_NONE},
		{"\"alice@evil.example\"", "example.test", 0, 0,
		 REPLY_ROUTING_DENIED, NULL, RCPT_ROUTE_NONE},
		{"\"alice\"", "example.test", 0, 0, REPLY_RCPT_OK,
		 "alice@example.test", RCPT_ROUTE_LOCAL},
		{"\"al\\ice+x\"", "example.test", 0, 0, REPLY_RCPT_OK,
		 "alice@example.test", RCPT_ROUTE_LOCAL},
		{"\"alice bob\"", "example.test", 0, 0, REPLY_USER_UNKNOWN,
		 NULL, RCPT_ROUTE_NONE},
		{"PostMaster", "other.test", 0, 0, REPLY_RCPT_OK,
		 "postmaster@other.test", RCPT_ROUTE_LOCAL},
		{"held", "example.test", 0, 0, REPLY_USER_HELD, NULL,
		 RCPT_ROUTE_NONE},
		{"heldtoo+x", "example.test", 0, 0, REPLY_USER_HELD, NULL,
		 RCPT_ROUTE_NONE},
		{"carol", "example.test", 0, 0, REPLY_WILL_FORWARD,
		 "bob@example.test", RCPT_ROUTE_LOCAL},
		{"carol+x", "example.test", 0, 0, REPLY_WILL_FORWARD,
		 "bob@example.test", RCPT_ROUTE_LOCAL},
		{"dave", "example.test", 0, 0, REPLY_USER_MOVED,
		 "dave@elsewhere.example", RCPT_ROUTE_NONE},
		{"erin", "example.test", 0, 0, REPLY_WILL_FORWARD,
		 "erin@remote.example", RCPT_ROUTE_REMOTE},
		{"", "", 0, 1, REPLY_RCPT_OK, "postmaster@example.test",
		 RCPT_ROUTE_LOCAL},
	};
	char *errors = NULL, err[256];
	struct config *cfg = load(good_conf, &errors);
	struct users *u;

	(void)state;
	assert_non_null(cfg);
	u = users_load(cfg->local_users, cfg->local_forwards, err, sizeof err);
	assert_non_null(u);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct rcpt_case *c = &cases[i];
		struct rcpt_verdict v;
		struct addr a = {0};
		snprintf(a.local, sizeof a.local, "%s", c->local);
		snprintf(a.domain, sizeof a.domain, "%s", c->domain);
		snprintf(a.mailbox, sizeof a.mailbox, "%s@%s", c->local,
			 c->domain);
		a.is_literal = c->is_literal;
		a.is_postmaster = c->is_postmaster;
		if (policy_rcpt_check(cfg, u, &a, false, &v) != c->want)
			fail_msg("case %zu (%s): got %s", i, a.mailbox,
				 reply_reason(v.reply));
		assert_int_equal(v.route, c->want_route);
		if (c->want_mailbox)
			assert_string_equal(v.mailbox, c->want_mailbox);
	}
	users_free(u);
	config_free(cfg);
}

static void
test_authenticated_client_may_relay(void **state)
{
	char *errors = NULL, err[256];
	struct config *cfg = load(good_conf, &errors);
	struct users *u = users_load(cfg->local_users, "", err, sizeof err);
	struct addr a = {0};
	struct rcpt_verdict v;

	(void)state;
	snprintf(a.local, sizeof a.local, "x");
	snprintf(a.domain, sizeof a.domain, "remote.example");
	assert_int_equal(policy_rcpt_check(cfg, u, &a, true, &v),
			 REPLY_RCPT_OK);
	assert_int_equal(v.route, RCPT_ROUTE_REMOTE);
	users_free(u);
	config_free(cfg);
}

static void
test_bad_users_line_names_file_and_line(void **state)
{
	char err[512], path[512];

	(void)state;
	write_file("badusers", "alice@example.test\nnot an address\n");
	snprintf(path, sizeof path, "%s/badusers", dir);
	assert_null(users_load(path, "", err, sizeof err));
	assert_non_null(strstr(err, "badusers:2: 'not'"));
	write_file("badflag", "alice@example.test: $6$x frozen\n");
	snprintf(path, sizeof path, "%s/badflag", dir);
	assert_null(users_load(path, "", err, sizeof err));
	assert_non_null(strstr(err, "badflag:1: unexpected 'frozen'"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults_and_relative_paths),
		cmocka_unit_test(test_config_errors_name_file_line_and_fix),
		cmocka_unit_test(test_rcpt_verdicts),
		cmocka_unit_test(test_authenticated_client_may_relay),
		cmocka_unit_test(test_bad_users_line_names_file_and_line),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
