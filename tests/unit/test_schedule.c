/*
 * test_schedule.c - the scheduler's decisions (src/outbound/schedule.c),
 * without a socket or a clock: when a deferred recipient is tried again
 * (the back-off of [delivery] retry, the last step repeating; a 421
 * counted like any 4xx, a local hitch not counted; the wait a reply
 * names, "retry in 60 s"), when its lifetime is
 * over (the time held not counted), what hold and release do, and how
 * long a destination whose every address failed rests.
 *
 * The config is the default [delivery] retry = 60,300,900,3600 and
 * lifetime = 432000 (5 days).  Replies go through react_reply() as the
 * client's do, so a wait named in the text is read as in service.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "outbound/outbound_int.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define TEST_NOW 1764079331 /* Tue, 25 Nov 2025 14:02:11 +0000 */
#define TEST_LIFETIME 432000
#define TEST_LONGEST 3600
#define TEST_RCPTS 2

static struct config test_cfg;

/* One message of TEST_RCPTS recipients, both WAITING and due at arrival. */
struct fixture {
	struct msg m;
	struct msg_rcpt mr[TEST_RCPTS];
	struct qrcpt r[TEST_RCPTS];
	struct qmsg q;
};

static void
test_config(struct config *cfg)
{
	static const unsigned retry[] = {60, 300, 900, TEST_LONGEST};

	memset(cfg, 0, sizeof *cfg);
	memcpy(cfg->retry, retry, sizeof retry);
	cfg->n_retry = N_ELEMS(retry);
	cfg->delivery_lifetime = TEST_LIFETIME;
}

static void
fixture_init(struct fixture *f, int64_t arrival)
{
	memset(f, 0, sizeof *f);
	f->m.arrival = arrival;
	f->m.rcpts = f->mr;
	f->m.n_rcpts = TEST_RCPTS;
	for (size_t i = 0; i < TEST_RCPTS; i++) {
		f->r[i].state = QR_WAITING;
		f->r[i].next_try = arrival;
	}
	f->q.m = &f->m;
	f->q.r = f->r;
}

/* A reply at RCPT, as the client reads it. */
static void
test_reply(unsigned code, const char *enh, const char *text, struct outcome *oc)
{
	char line[OB_REPLY_MAX];

	snprintf(line, sizeof line, "%u %s %s", code, enh, text);
	react_reply(NULL, REACT_RCPT, code, enh, line, text, oc);
}

struct backoff_case {
	unsigned attempts_before; /* failures counted so far */
	unsigned wait;		  /* seconds until the next try */
};

static void
test_schedule_backoff_steps_then_the_last_repeats(void **state)
{
	static const struct backoff_case cases[] = {
	    {0, 60}, {1, 300}, {2, 900}, {3, 3600}, {4, 3600}, {40, 3600},
	};
	struct timespec ts = {TEST_NOW, 0};
	struct outcome oc;
	struct fixture f;

	(void)state;
	test_reply(450, "4.2.1", "Mailbox busy", &oc);
	assert_int_equal(oc.kind, OC_DEFER);
	assert_int_equal(oc.wait_hint, 0);
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		fixture_init(&f, TEST_NOW - 10);
		f.r[0].state = QR_ACTIVE;
		f.r[0].attempts = cases[i].attempts_before;
		assert_true(
		    schedule_defer(&test_cfg, &f.q, 0, &oc, TEST_NOW, &ts));
		assert_int_equal(f.r[0].state, QR_WAITING);
		assert_int_equal(f.r[0].attempts, cases[i].attempts_before + 1);
		assert_int_equal(f.r[0].next_try, TEST_NOW + cases[i].wait);
		/* The other recipient is not touched. */
		assert_int_equal(f.r[1].attempts, 0);
		assert_int_equal(f.r[1].next_try, TEST_NOW - 10);
	}
}

/*
 * A peer that answers 421 on every pass (every address of the destination
 * said it, client.c): each pass is one attempt and the waits grow on the
 * back-off like any 4xx; a peer that keeps saying 421 is rate limiting
 * us (REPLY-CODES.md).  Only the lifetime ends it: tried at arrival and
 * after 60, 300, 900 and then every 3600 s, the recipient is still
 * waiting just before 432000 s and bounces at the first pass after.
 */
static void
test_schedule_421_every_pass_backs_off_and_bounces_only_at_the_lifetime(
    void **state)
{
	static const unsigned waits[] = {60, 300, 900, TEST_LONGEST,
					 TEST_LONGEST};
	struct outcome oc;
	struct fixture f;
	int64_t now = TEST_NOW;
	unsigned n = 0;

	(void)state;
	test_reply(421, "4.3.2", "Service shutting down", &oc);
	assert_true(oc.is_next_host);
	assert_false(oc.is_uncharged);
	fixture_init(&f, TEST_NOW);
	for (;;) {
		struct timespec ts = {now, 0};
		f.r[0].state = QR_ACTIVE;
		if (!schedule_defer(&test_cfg, &f.q, 0, &oc, now, &ts))
			break;
		n++;
		assert_int_equal(f.r[0].attempts, n);
		if (n <= N_ELEMS(waits) &&
		    f.r[0].next_try - now != waits[n - 1])
			fail_msg("421 pass %u: waits %lld s, not %u", n,
				 (long long)(f.r[0].next_try - now),
				 waits[n - 1]);
		assert_true(now - TEST_NOW < TEST_LIFETIME);
		now = f.r[0].next_try;
	}
	/* The first pass at or after the lifetime, and only that one. */
	assert_true(now - TEST_NOW >= TEST_LIFETIME);
	assert_true(now - TEST_NOW < TEST_LIFETIME + TEST_LONGEST);
	/* Passes at 0, 60 and 360 s, then from 1260 s one an hour: 123 in
	 * 5 days, where a 421 used to cost 7200 (one a minute). */
	assert_int_equal(n, 3 + (TEST_LIFETIME - 1260 + TEST_LONGEST - 1) /
				    TEST_LONGEST);
	assert_int_equal(n, 123);
	assert_int_equal(f.r[0].attempts, n + 1);
}

/* A local hitch that is no one's fault (out of memory before a
 * connection) is not counted and waits the first step. */
static void
test_schedule_an_uncharged_deferral_waits_the_first_step(void **state)
{
	struct timespec ts = {TEST_NOW, 0};
	struct outcome oc;
	struct fixture f;

	(void)state;
	react_local(&oc, OC_DEFER, "4.3.0", "out of memory");
	oc.is_uncharged = true;
	fixture_init(&f, TEST_NOW - 10);
	f.r[0].attempts = 3;
	assert_true(schedule_defer(&test_cfg, &f.q, 0, &oc, TEST_NOW, &ts));
	assert_int_equal(f.r[0].attempts, 3);
	assert_int_equal(f.r[0].next_try, TEST_NOW + 60);
}

struct wait_case {
	const char *text;  /* a 450's text */
	unsigned attempts; /* failures counted before it */
	unsigned wait;	   /* seconds until the next try */
};

static void
test_schedule_waits_just_past_the_wait_the_reply_names(void **state)
{
	/* One second past the named wait, whatever the step; never past
	 * the longest step. */
	static const struct wait_case cases[] = {
	    {"Greylisted, retry in 60 s", 0, 61},
	    {"Greylisted, retry in 60 s", 3, 61},
	    {"Greylisted, retry in 2 s", 0, 3},
	    {"Try again in 5 minutes", 0, 301},
	    {"try again in 1 hour", 2, TEST_LONGEST},
	    {"Greylisted, retry in 86400 s", 0, TEST_LONGEST},
	    {"Mailbox busy", 1, 300},
	};
	struct timespec ts = {TEST_NOW, 0};
	struct outcome oc;
	struct fixture f;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		test_reply(450, "4.2.0", cases[i].text, &oc);
		assert_int_equal(oc.kind, OC_DEFER);
		fixture_init(&f, TEST_NOW - 10);
		f.r[0].attempts = cases[i].attempts;
		assert_true(
		    schedule_defer(&test_cfg, &f.q, 0, &oc, TEST_NOW, &ts));
		if (f.r[0].next_try != TEST_NOW + cases[i].wait)
			fail_msg("'%s' after %u: waits %lld s, not %u",
				 cases[i].text, cases[i].attempts,
				 (long long)(f.r[0].next_try - TEST_NOW),
				 cases[i].wait);
	}
}

static void
test_schedule_retry_rounds_up_to_the_next_second(void **state)
{
	/* "retry in 2 s" heard at 10.9 s is tried at 13 s, not at 12. */
	struct timespec whole = {TEST_NOW, 0}, late = {TEST_NOW, 900000000};
	struct outcome oc;

	(void)state;
	test_reply(450, "4.2.0", "Greylisted, retry in 2 s", &oc);
	assert_int_equal(schedule_retry_at(&test_cfg, 1, &oc, &whole),
			 TEST_NOW + 3);
	assert_int_equal(schedule_retry_at(&test_cfg, 1, &oc, &late),
			 TEST_NOW + 4);
}

struct lifetime_case {
	int64_t age;	   /* seconds since arrival */
	int64_t held_secs; /* of them, held */
	uint64_t lifetime;
	bool is_expired;
};

static void
test_schedule_lifetime_does_not_count_held_time(void **state)
{
	static const struct lifetime_case cases[] = {
	    {0, 0, TEST_LIFETIME, false},
	    {TEST_LIFETIME - 1, 0, TEST_LIFETIME, false},
	    {TEST_LIFETIME, 0, TEST_LIFETIME, true},
	    {TEST_LIFETIME + 86400, 86400, TEST_LIFETIME, true},
	    {TEST_LIFETIME + 86400, 86401, TEST_LIFETIME, false},
	    {0, 0, 0, true}, /* lifetime 0: bounce on the first 4xx */
	};
	struct config cfg = test_cfg;
	struct fixture f;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		fixture_init(&f, TEST_NOW - cases[i].age);
		f.q.held_secs = cases[i].held_secs;
		cfg.delivery_lifetime = cases[i].lifetime;
		if (schedule_is_expired(&cfg, &f.q, TEST_NOW) !=
		    cases[i].is_expired)
			fail_msg("case %zu: age %lld held %lld lifetime %llu",
				 i, (long long)cases[i].age,
				 (long long)cases[i].held_secs,
				 (unsigned long long)cases[i].lifetime);
	}
}

static void
test_schedule_defer_past_the_lifetime_is_a_bounce(void **state)
{
	struct timespec ts = {TEST_NOW, 0};
	struct outcome oc;
	struct fixture f;

	(void)state;
	test_reply(450, "4.2.0", "Greylisted, retry in 60 s", &oc);
	fixture_init(&f, TEST_NOW - TEST_LIFETIME);
	f.r[0].state = QR_ACTIVE;
	f.r[0].attempts = 7;
	assert_false(schedule_defer(&test_cfg, &f.q, 0, &oc, TEST_NOW, &ts));
	/* Counted, and left to the caller to bounce. */
	assert_int_equal(f.r[0].attempts, 8);
	assert_int_equal(f.r[0].state, QR_ACTIVE);
}

struct due_case {
	enum qr_state st;
	int64_t next_try;
	bool is_held, is_deleted;
	bool is_due;
};

static void
test_schedule_due_only_when_waiting_and_its_time_came(void **state)
{
	static const struct due_case cases[] = {
	    {QR_WAITING, TEST_NOW, false, false, true},
	    {QR_WAITING, TEST_NOW - 1, false, false, true},
	    {QR_WAITING, TEST_NOW + 1, false, false, false},
	    {QR_WAITING, TEST_NOW, true, false, false},
	    {QR_WAITING, TEST_NOW, false, true, false},
	    {QR_READY, TEST_NOW, false, false, false},
	    {QR_ACTIVE, TEST_NOW, false, false, false},
	    {QR_FINISHING, TEST_NOW, false, false, false},
	    {QR_DONE, TEST_NOW, false, false, false},
	    {QR_NOT_MINE, TEST_NOW, false, false, false},
	};
	struct fixture f;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		fixture_init(&f, TEST_NOW - 10);
		f.r[0].state = cases[i].st;
		f.r[0].next_try = cases[i].next_try;
		f.q.is_held = cases[i].is_held;
		f.q.is_deleted = cases[i].is_deleted;
		if (schedule_is_due(&f.q, &f.r[0], TEST_NOW) != cases[i].is_due)
			fail_msg("case %zu", i);
	}
}

static void
test_schedule_hold_stops_tries_and_the_lifetime_clock(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f, TEST_NOW - TEST_LIFETIME + 100);
	f.r[0].next_try = TEST_NOW + 500;
	f.r[1].state = QR_ACTIVE;
	f.r[1].next_try = TEST_NOW + 500;
	schedule_hold(&f.q, TEST_NOW);
	assert_true(f.q.is_held);
	assert_false(schedule_is_due(&f.q, &f.r[0], TEST_NOW + 1000));
	/* A second hold does not restart the held time. */
	schedule_hold(&f.q, TEST_NOW + 50);
	assert_int_equal(f.q.held_since, TEST_NOW);
	/* Held for 1000 s: the message has 1100 s of lifetime left. */
	schedule_release(&f.q, TEST_NOW + 1000);
	assert_false(f.q.is_held);
	assert_int_equal(f.q.held_secs, 1000);
	assert_false(schedule_is_expired(&test_cfg, &f.q, TEST_NOW + 1099));
	assert_true(schedule_is_expired(&test_cfg, &f.q, TEST_NOW + 1100));
	/* Released: a waiting recipient is due now, a sending one is not
	 * touched. */
	assert_int_equal(f.r[0].next_try, TEST_NOW + 1000);
	assert_true(schedule_is_due(&f.q, &f.r[0], TEST_NOW + 1000));
	assert_int_equal(f.r[1].next_try, TEST_NOW + 500);
	/* A release of a message not held adds no held time. */
	schedule_release(&f.q, TEST_NOW + 2000);
	assert_int_equal(f.q.held_secs, 1000);
}

static void
test_schedule_failing_destination_rests_at_most_a_minute(void **state)
{
	static const unsigned first[][2] = {
	    {1, 1}, {30, 30}, {60, 60}, {61, 60}, {3600, 60},
	};
	struct config cfg = test_cfg;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(first); i++) {
		cfg.retry[0] = first[i][0];
		assert_int_equal(schedule_suspend_secs(&cfg), first[i][1]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_schedule_backoff_steps_then_the_last_repeats),
	    cmocka_unit_test(
		test_schedule_421_every_pass_backs_off_and_bounces_only_at_the_lifetime),
	    cmocka_unit_test(
		test_schedule_an_uncharged_deferral_waits_the_first_step),
	    cmocka_unit_test(
		test_schedule_waits_just_past_the_wait_the_reply_names),
	    cmocka_unit_test(test_schedule_retry_rounds_up_to_the_next_second),
	    cmocka_unit_test(test_schedule_lifetime_does_not_count_held_time),
	    cmocka_unit_test(test_schedule_defer_past_the_lifetime_is_a_bounce),
	    cmocka_unit_test(
		test_schedule_due_only_when_waiting_and_its_time_came),
	    cmocka_unit_test(
		test_schedule_hold_stops_tries_and_the_lifetime_clock),
	    cmocka_unit_test(
		test_schedule_failing_destination_rests_at_most_a_minute),
	};

	test_config(&test_cfg);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
