/*
 * test_react.c - the sending side's reactions (src/outbound/react.c), the
 * "Sending side" table of REPLY-CODES.md as rows: a reply in, an action
 * out.
 *
 * Each row of the reply table is the peer's reply as it comes off the
 * wire (lines joined by "\n"), read by the same reader the client uses
 * (proto/reply_parse.c), and the phase it answers; out come the kind
 * (done, deferred, bounced, followed), whether it is charged and whether
 * the destination's next address gets it at once (421), the status
 * that goes into the DSN and `postern queue show`, the wait the text named
 * and the delay until the next try on the default schedule
 * (60,300,900,3600).  Then the local reasons (react_local) and the steps
 * of the back-off (react_backoff) on their own.
 *
 * What react.c leaves to the queue (tests/peer/ covers it end to end):
 * whether a 551 is followed (`follow_551`) and the bounce when a deferred
 * recipient's lifetime is over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "outbound/outbound_int.h"
#include "proto/reply_parse.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define TEST_LINE_MAX 1024

/* Phases, short, for the table. */
#define GR REACT_GREETING
#define HE REACT_HELO
#define MA REACT_MAIL
#define RC REACT_RCPT
#define DA REACT_DATA
#define DO REACT_DOT

/* The default [delivery] retry (config/keys.def), and its longest step. */
static const unsigned test_default_retry[] = {60, 300, 900, 3600};

/* CHARGED: counted as an attempt; FREE: not counted; NEXT: the next
 * address of the destination at once, and counted after the last one. */
enum charge { CHARGED, FREE, NEXT };

struct react_case {
	const char *name;
	enum react_phase ph;
	const char *reply; /* as the peer sends it, lines joined by "\n" */
	enum outcome_kind kind;
	enum charge charge;
	const char *status;
	unsigned wait_hint;  /* seconds the text named, 0: none */
	unsigned delay;	     /* next try after a first failure; 0: no retry */
	const char *forward; /* OC_FOLLOW: the address to resend to */
};

static const struct react_case react_cases[] = {
    /* 2xx: the recipient is done (at RCPT: accepted so far). */
    {"220_greeting", GR, "220 peer.test ESMTP", OC_DONE, CHARGED, "2.0.0", 0, 0,
     ""},
    {"250_helo", HE, "250 peer.test", OC_DONE, CHARGED, "2.0.0", 0, 0, ""},
    {"250_mail", MA, "250 2.1.0 Ok", OC_DONE, CHARGED, "2.1.0", 0, 0, ""},
    {"250_rcpt", RC, "250 2.1.5 Ok", OC_DONE, CHARGED, "2.1.5", 0, 0, ""},
    {"251_rcpt_will_forward", RC,
     "251 2.1.5 User not local; will forward to <b@elsewhere.test>", OC_DONE,
     CHARGED, "2.1.5", 0, 0, ""},
    {"250_dot", DO, "250 2.0.0 Ok: queued as PEER1", OC_DONE, CHARGED, "2.0.0",
     0, 0, ""},
    {"250_dot_without_enhanced_code", DO, "250 Ok", OC_DONE, CHARGED, "2.0.0",
     0, 0, ""},
    {"250_dot_multiline", DO, "250-2.0.0 queued\n250 2.0.0 as ML1", OC_DONE,
     CHARGED, "2.0.0", 0, 0, ""},

    /* 421 at each phase: close, the next address at once; counted after
     * the last one, on the back-off like any 4xx. */
    {"421_greeting", GR, "421 4.3.2 Service busy", OC_DEFER, NEXT, "4.3.2", 0,
     60, ""},
    {"421_helo", HE, "421 4.3.2 peer.test Service shutting down", OC_DEFER,
     NEXT, "4.3.2", 0, 60, ""},
    {"421_mail", MA, "421 4.3.2 peer.test Service shutting down", OC_DEFER,
     NEXT, "4.3.2", 0, 60, ""},
    {"421_rcpt", RC, "421 4.4.2 peer.test closing", OC_DEFER, NEXT, "4.4.2", 0,
     60, ""},
    {"421_data", DA, "421 4.3.2 peer.test Service shutting down", OC_DEFER,
     NEXT, "4.3.2", 0, 60, ""},
    {"421_dot", DO, "421 4.3.2 peer.test Service shutting down", OC_DEFER, NEXT,
     "4.3.2", 0, 60, ""},
    {"421_without_enhanced_code", GR, "421 peer.test busy", OC_DEFER, NEXT,
     "4.3.2", 0, 60, ""},
    {"421_with_a_wait", MA,
     "421 4.7.0 Too many connections, try again in 30 seconds", OC_DEFER, NEXT,
     "4.7.0", 30, 31, ""},

    /* Other 4xx: deferred, charged, on the back-off. */
    {"450_rcpt_greylisted", RC, "450 4.2.0 Greylisted, retry in 1 s", OC_DEFER,
     CHARGED, "4.2.0", 1, 2, ""},
    {"450_rcpt_try_again_in_seconds", RC,
     "450 4.7.1 Greylisted, try again in 1 seconds", OC_DEFER, CHARGED, "4.7.1",
     1, 2, ""},
    {"451_rcpt_try_again_in_second", RC,
     "451 4.7.1 Please try again in 1 second", OC_DEFER, CHARGED, "4.7.1", 1, 2,
     ""},
    {"450_rcpt_wait_in_minutes", RC,
     "450 4.2.0 Greylisted, try again in 5 minutes", OC_DEFER, CHARGED, "4.2.0",
     300, 301, ""},
    {"450_rcpt_wait_past_the_longest_step_is_cut", RC,
     "450 4.2.0 Greylisted, retry in 2 hours", OC_DEFER, CHARGED, "4.2.0", 7200,
     3600, ""},
    {"450_rcpt_wait_over_a_week_is_ignored", RC,
     "450 4.2.0 Greylisted, retry in 8 days", OC_DEFER, CHARGED, "4.2.0", 0, 60,
     ""},
    {"450_rcpt_multiline_wait_on_the_second_line", RC,
     "450-4.2.0 Greylisted\n450 4.2.0 retry in 10 s", OC_DEFER, CHARGED,
     "4.2.0", 10, 11, ""},
    {"450_rcpt_no_wait", RC, "450 4.2.1 Mailbox busy", OC_DEFER, CHARGED,
     "4.2.1", 0, 60, ""},
    {"451_rcpt", RC, "451 4.3.0 Temporary lookup failure", OC_DEFER, CHARGED,
     "4.3.0", 0, 60, ""},
    {"451_rcpt_without_enhanced_code", RC, "451 Try later", OC_DEFER, CHARGED,
     "4.0.0", 0, 60, ""},
    {"452_rcpt_mailbox_full", RC, "452 4.2.2 Mailbox full", OC_DEFER, CHARGED,
     "4.2.2", 0, 60, ""},
    {"452_rcpt_too_many_recipients", RC, "452 4.5.3 Too many recipients",
     OC_DEFER, CHARGED, "4.5.3", 0, 60, ""},
    {"452_rcpt_without_enhanced_code", RC, "452 Too many recipients", OC_DEFER,
     CHARGED, "4.5.3", 0, 60, ""},
    {"452_mail_without_enhanced_code", MA, "452 Insufficient storage", OC_DEFER,
     CHARGED, "4.0.0", 0, 60, ""},
    {"455_mail", MA, "455 4.5.4 Parameters cannot be accommodated right now",
     OC_DEFER, CHARGED, "4.5.4", 0, 60, ""},
    {"451_greeting", GR, "451 4.3.0 Not now", OC_DEFER, CHARGED, "4.3.0", 0, 60,
     ""},
    {"451_data", DA, "451 4.3.0 Try again later", OC_DEFER, CHARGED, "4.3.0", 0,
     60, ""},
    {"451_dot", DO, "451 4.3.0 Error: queue file write error", OC_DEFER,
     CHARGED, "4.3.0", 0, 60, ""},
    {"451_dot_later", DO, "451 4.3.0 Temporary failure, try again later",
     OC_DEFER, CHARGED, "4.3.0", 0, 60, ""},

    /* 551: follow the address named, or bounce when none is. */
    {"551_rcpt_names_an_address", RC,
     "551 5.1.6 User not local; please try <new@remote.test>", OC_FOLLOW,
     CHARGED, "5.1.6", 0, 0, "new@remote.test"},
    {"551_rcpt_bare_address", RC, "551 User has moved to new@remote.test.",
     OC_FOLLOW, CHARGED, "5.1.6", 0, 0, "new@remote.test"},
    {"551_rcpt_names_none", RC, "551 5.1.6 User not local", OC_BOUNCE, CHARGED,
     "5.1.6", 0, 0, ""},
    {"551_mail_is_any_5xx", MA,
     "551 5.7.1 Not here; please try <new@remote.test>", OC_BOUNCE, CHARGED,
     "5.7.1", 0, 0, ""},

    /* 552: at RCPT "too many recipients" (RFC 5321 4.5.3.1.10). */
    {"552_rcpt_defers", RC, "552 Too many recipients", OC_DEFER, CHARGED,
     "4.5.3", 0, 60, ""},
    {"552_rcpt_with_a_wait_defers", RC,
     "552 Too many recipients, try again in 10 s", OC_DEFER, CHARGED, "4.5.3",
     10, 11, ""},
    {"552_dot_bounces", DO, "552 Message too big", OC_BOUNCE, CHARGED, "5.3.4",
     0, 0, ""},
    {"552_mail_bounces", MA, "552 5.3.4 Message size exceeds fixed limit",
     OC_BOUNCE, CHARGED, "5.3.4", 0, 0, ""},

    /* Other 5xx: bounce now, the enhanced code as sent. */
    {"550_rcpt", RC,
     "550 5.1.1 <bob@remote.test>: Recipient address rejected: User unknown in "
     "virtual mailbox table",
     OC_BOUNCE, CHARGED, "5.1.1", 0, 0, ""},
    {"550_rcpt_without_enhanced_code", RC, "550 No such user", OC_BOUNCE,
     CHARGED, "5.1.1", 0, 0, ""},
    {"550_mail", MA, "550 5.7.1 Sender rejected", OC_BOUNCE, CHARGED, "5.7.1",
     0, 0, ""},
    {"550_mail_without_enhanced_code", MA, "550 Sender rejected", OC_BOUNCE,
     CHARGED, "5.0.0", 0, 0, ""},
    {"554_greeting", GR, "554 5.7.1 No service for you", OC_BOUNCE, CHARGED,
     "5.7.1", 0, 0, ""},
    {"502_helo", HE, "502 5.5.1 HELO not implemented", OC_BOUNCE, CHARGED,
     "5.5.1", 0, 0, ""},
    {"553_rcpt", RC, "553 5.1.3 Bad recipient address syntax", OC_BOUNCE,
     CHARGED, "5.1.3", 0, 0, ""},
    {"554_data", DA, "554 5.5.1 No valid recipients", OC_BOUNCE, CHARGED,
     "5.5.1", 0, 0, ""},
    {"554_dot", DO, "554 5.6.0 Message rejected: content", OC_BOUNCE, CHARGED,
     "5.6.0", 0, 0, ""},
    {"554_dot_without_enhanced_code", DO, "554 Rejected", OC_BOUNCE, CHARGED,
     "5.0.0", 0, 0, ""},
    {"5xx_with_a_wait_names_no_wait", RC, "550 5.7.1 Blocked, retry in 10 s",
     OC_BOUNCE, CHARGED, "5.7.1", 0, 0, ""},

    /* No 1xx or 3xx belongs here: a protocol error, retried later. */
    {"354_dot_is_a_protocol_error", DO, "354 go ahead", OC_DEFER, CHARGED,
     "4.5.0", 0, 60, ""},
    {"354_rcpt_is_a_protocol_error", RC, "354 go ahead", OC_DEFER, CHARGED,
     "4.5.0", 0, 60, ""},
};

static struct config test_cfg;
static struct outbound test_ob;

static const char *
kind_name(enum outcome_kind k)
{
	switch (k) {
	case OC_NONE:
		return "none";
	case OC_DONE:
		return "done";
	case OC_DEFER:
		return "defer";
	case OC_BOUNCE:
		return "bounce";
	case OC_FOLLOW:
		return "follow";
	}
	return "?";
}

static void
set_retry(struct config *cfg, const unsigned *steps, size_t n)
{
	memset(cfg->retry, 0, sizeof cfg->retry);
	memcpy(cfg->retry, steps, n * sizeof steps[0]);
	cfg->n_retry = n;
}

static int
setup(void **state)
{
	(void)state;
	set_retry(&test_cfg, test_default_retry, N_ELEMS(test_default_retry));
	test_ob.cfg = &test_cfg;
	return 0;
}

/*
 * Reads reply (lines joined by "\n") as client.c does and hands it to
 * react_reply; line_out gets the one-line summary client.c logs.
 */
static void
react_wire(enum react_phase ph, const char *reply, char *line_out, size_t size,
	   struct outcome *oc)
{
	struct reply_acc acc;
	const char *p = reply;
	enum reply_parse_result r = REPLY_PARSE_MORE;

	reply_acc_init(&acc);
	while (r == REPLY_PARSE_MORE) {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);

		r = reply_acc_line(&acc, p, len);
		p = nl != NULL ? nl + 1 : p + len;
	}
	assert_int_equal(r, REPLY_PARSE_OK);
	assert_true(*p == '\0'); /* every line read */
	reply_acc_format(&acc, line_out, size);
	/* Garbage from an earlier call must not leak into the outcome. */
	memset(oc, 0x5a, sizeof *oc);
	react_reply(&test_ob, ph, acc.code, acc.enh, line_out, acc.text, oc);
}

/* One line saying what became of a reply, to compare whole: a failing
 * row is named in the message. */
static void
describe(char *buf, size_t size, const char *name, enum outcome_kind kind,
	 bool is_free, bool is_next, const char *status, unsigned hint,
	 unsigned delay, const char *forward)
{
	snprintf(buf, size, "%s: %s%s%s status=%s hint=%u delay=%u fwd=<%s>",
		 name, kind_name(kind), is_free ? " uncharged" : "",
		 is_next ? " next-host" : "", status, hint, delay, forward);
}

static void
check_case(const struct react_case *c)
{
	char line[TEST_LINE_MAX], got[TEST_LINE_MAX], want[TEST_LINE_MAX];
	struct outcome oc;
	unsigned delay = 0;

	react_wire(c->ph, c->reply, line, sizeof line, &oc);
	if (oc.kind == OC_DEFER)
		delay = react_backoff(&test_cfg, 1, oc.wait_hint);
	describe(got, sizeof got, c->name, oc.kind, oc.is_uncharged,
		 oc.is_next_host, oc.status, oc.wait_hint, delay, oc.forward);
	describe(want, sizeof want, c->name, c->kind, c->charge == FREE,
		 c->charge == NEXT, c->status, c->wait_hint, c->delay,
		 c->forward);
	assert_string_equal(got, want);
	/* The reply is kept whole for the DSN and `postern queue show`. */
	assert_true(oc.is_remote);
	assert_string_equal(oc.reply, line);
}

static void
test_every_row_of_the_sending_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMS(react_cases); i++)
		check_case(&react_cases[i]);
}

/* 421 at every phase, whatever its text: the next address at once, and
 * counted like any 4xx (a peer that keeps saying it is rate limiting us:
 * it gets the back-off, not a try every retry[0]).  No other 4xx moves on
 * within the attempt. */
static void
test_421_moves_on_and_is_charged_at_any_phase(void **state)
{
	static const enum react_phase phases[] = {GR, HE, MA, RC, DA, DO};
	char line[TEST_LINE_MAX];
	struct outcome oc;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(phases); i++) {
		react_wire(phases[i], "421 4.7.0 rate limited", line,
			   sizeof line, &oc);
		assert_int_equal(oc.kind, OC_DEFER);
		assert_true(oc.is_next_host);
		assert_false(oc.is_uncharged);
		react_wire(phases[i], "450 4.7.0 rate limited", line,
			   sizeof line, &oc);
		assert_int_equal(oc.kind, OC_DEFER);
		assert_false(oc.is_next_host);
		assert_false(oc.is_uncharged);
	}
}

/* Every 5xx but 551/552 at RCPT bounces at every phase. */
static void
test_5xx_bounce_at_every_phase(void **state)
{
	static const enum react_phase phases[] = {GR, HE, MA, RC, DA, DO};
	char line[TEST_LINE_MAX], reply[64];
	struct outcome oc;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(phases); i++)
		for (unsigned code = 500; code <= 599; code++) {
			if (phases[i] == RC && (code == 551 || code == 552))
				continue;
			snprintf(reply, sizeof reply, "%u refused", code);
			react_wire(phases[i], reply, line, sizeof line, &oc);
			assert_int_equal(oc.kind, OC_BOUNCE);
			assert_int_equal(oc.status[0], '5');
		}
}

struct local_case {
	enum outcome_kind kind;
	const char *status;
	const char *reason;
};

/* Reasons client.c and queue.c give when no reply decides. */
static const struct local_case local_cases[] = {
    {OC_DEFER, "4.4.1", "connection refused"},
    {OC_DEFER, "4.4.2", "connection ended before a reply"},
    {OC_DEFER, "4.7.5", "peer.test offers no STARTTLS"},
    {OC_DEFER, "4.5.0", "peer.test sent a reply that is not SMTP"},
    {OC_DEFER, "4.3.0", "out of memory"},
    {OC_DEFER, "4.4.3", "DNS lookup failed for remote.test"},
    {OC_BOUNCE, "5.1.2", "remote.test has no mail host"},
    {OC_BOUNCE, "5.1.10", "remote.test accepts no mail (null MX)"},
    {OC_BOUNCE, "5.6.7", "the message has an UTF-8 address"},
    {OC_BOUNCE, "5.6.3", "the message has 8-bit text"},
    {OC_BOUNCE, "5.3.4", "the message (123 octets) is over 100"},
};

static void
test_local_reasons(void **state)
{
	struct outcome oc;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(local_cases); i++) {
		const struct local_case *c = &local_cases[i];

		memset(&oc, 0x5a, sizeof oc);
		react_local(&oc, c->kind, c->status, "%s", c->reason);
		assert_int_equal(oc.kind, c->kind);
		assert_string_equal(oc.status, c->status);
		assert_string_equal(oc.reply, c->reason);
		assert_false(oc.is_remote);
		assert_false(oc.is_uncharged);
		assert_false(oc.is_next_host);
		assert_int_equal(oc.wait_hint, 0);
		assert_string_equal(oc.forward, "");
	}
}

static void
test_local_reason_is_formatted_and_cut(void **state)
{
	char big[OB_REPLY_MAX * 2];
	struct outcome oc;

	(void)state;
	react_local(&oc, OC_DEFER, "4.4.2", "%s with %s while %s", "peer.test",
		    "timeout", "reading the greeting");
	assert_string_equal(
	    oc.reply, "peer.test with timeout while reading the greeting");
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	react_local(&oc, OC_DEFER, "4.3.0", "%s", big);
	assert_int_equal(strlen(oc.reply), OB_REPLY_MAX - 1);
}

struct backoff_case {
	const char *retry; /* the schedule, for the message */
	unsigned steps[4];
	size_t n;
	unsigned attempts, hint, want;
};

static const struct backoff_case backoff_cases[] = {
    /* The steps in order; the last repeats. */
    {"60,300,900,3600", {60, 300, 900, 3600}, 4, 0, 0, 60},
    {"60,300,900,3600", {60, 300, 900, 3600}, 4, 1, 0, 60},
    {"60,300,900,3600", {60, 300, 900, 3600}, 4, 2, 0, 300},
    {"60,300,900,3600", {60, 300, 900, 3600}, 4, 3, 0, 900},
    {"60,300,900,3600", {60, 300, 900, 3600}, 4, 4, 0, 3600},
    {"60,300,900,3600", {60, 300, 900, 3600}, 4, 5, 0, 3600},
    {"60,300,900,3600", {60, 300, 900, 3600}, 4, 1000, 0, 3600},
    {"1,1,2", {1, 1, 2}, 3, 1, 0, 1},
    {"1,1,2", {1, 1, 2}, 3, 3, 0, 2},
    {"600", {600}, 1, 1, 0, 600},
    {"600", {600}, 1, 7, 0, 600},
    /* A named wait: just after it, shorter than the step or longer. */
    {"8", {8}, 1, 1, 1, 2},
    {"9", {9}, 1, 1, 1, 2},
    {"60,300,900,3600", {60, 300, 900, 3600}, 4, 4, 1, 2},
    {"60,300,900,3600", {60, 300, 900, 3600}, 4, 1, 600, 601},
    /* ...but never past the longest step of the schedule. */
    {"1,2", {1, 2}, 2, 1, 300, 2},
    {"60,300,900,3600", {60, 300, 900, 3600}, 4, 1, 3599, 3600},
    {"60,300,900,3600", {60, 300, 900, 3600}, 4, 1, 3600, 3600},
    {"60,300,900,3600", {60, 300, 900, 3600}, 4, 1, 604800, 3600},
    {"3600,60", {3600, 60}, 2, 2, 1800, 1801},
};

static void
test_backoff_steps(void **state)
{
	struct config cfg;

	(void)state;
	memset(&cfg, 0, sizeof cfg);
	for (size_t i = 0; i < N_ELEMS(backoff_cases); i++) {
		const struct backoff_case *c = &backoff_cases[i];
		unsigned got;

		set_retry(&cfg, c->steps, c->n);
		got = react_backoff(&cfg, c->attempts, c->hint);
		if (got != c->want)
			fail_msg("retry=%s attempts=%u hint=%u: %u, want %u",
				 c->retry, c->attempts, c->hint, got, c->want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_row_of_the_sending_table),
	    cmocka_unit_test(test_421_moves_on_and_is_charged_at_any_phase),
	    cmocka_unit_test(test_5xx_bounce_at_every_phase),
	    cmocka_unit_test(test_local_reasons),
	    cmocka_unit_test(test_local_reason_is_formatted_and_cut),
	    cmocka_unit_test(test_backoff_steps),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
