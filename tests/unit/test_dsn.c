/*
 * test_dsn.c - delivery status notifications (src/outbound/dsn.c).
 *
 * Each case of the field table changes one thing in a base notice (one
 * failed recipient, RET=HDRS) and names text that must and must not
 * appear.  Every notice made here also passes the shape check: CRLF lines
 * only, none over 998 octets, a CRLF at the end.  The last test hands a
 * notice to Python's email package, an independent MIME parser.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "outbound/dsn.h"

#define TEST_WANT_MAX 6
#define TEST_LINE_MAX 998
#define TEST_OUT_MAX 4096
#define TEST_NOW 1764079331	/* Tue, 25 Nov 2025 14:02:11 +0000 */
#define TEST_ARRIVAL 1764069000 /* Tue, 25 Nov 2025 11:10:00 +0000 */
#define TEST_RETRY 1764500000	/* Sun, 30 Nov 2025 10:53:20 +0000 */
#define TEST_QID "0000019a6b3c2d10"
#define TEST_PYTHON "/usr/bin/python3"

static const char test_orig[] = "Received: from client.example.test\r\n"
				"From: Alice <alice@example.test>\r\n"
				"To: bob@remote.test\r\n"
				"Subject: Lunch\r\n"
				" on Friday?\r\n"
				"Message-ID: <abc@example.test>\r\n"
				"\r\n"
				"Shall we?\r\n"
				"BODY-MARKER\r\n";

static const struct dsn_rcpt test_base_rcpt = {
	.final_rcpt = "bob@remote.test",
	.action = DSN_FAILED,
	.status = "5.1.1",
	.remote_mta = "mx.remote.test",
	.diagnostic = "550 5.1.1 User unknown",
	.explanation = "The address does not exist there.",
	.last_attempt = TEST_NOW,
};

static void
test_input(struct dsn_input *in, const struct dsn_rcpt *rcpts, size_t n)
{
	memset(in, 0, sizeof *in);
	in->reporting_mta = "mx.example.test";
	in->to = "alice@example.test";
	in->orig_qid = TEST_QID;
	in->arrival = TEST_ARRIVAL;
	in->now = TEST_NOW;
	in->rcpts = rcpts;
	in->n_rcpts = n;
	in->orig = test_orig;
	in->orig_len = sizeof test_orig - 1;
}

/* CRLF lines only, none longer than RFC 5322 allows, CRLF at the end. */
static void
test_check_shape(const char *s, size_t len)
{
	size_t line = 0;

	assert_true(len >= 2);
	assert_memory_equal(s + len - 2, "\r\n", 2);
	assert_int_equal(strlen(s), len);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n')
			fail_msg("bare LF at %zu", i);
		if (s[i] == '\r') {
			if (i + 1 >= len || s[i + 1] != '\n')
				fail_msg("bare CR at %zu", i);
			i++;
			line = 0;
			continue;
		}
		if (++line > TEST_LINE_MAX)
			fail_msg("line over %d octets at %zu", TEST_LINE_MAX,
				 i);
	}
}

static char *
test_format(const struct dsn_input *in, size_t *len_out)
{
	char *s = dsn_format(in, len_out);

	assert_non_null(s);
	test_check_shape(s, *len_out);
	return s;
}

/* Whether a line of s starts with prefix. */
static bool
test_has_line(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(s, prefix, n) == 0)
		return true;
	for (const char *p = strstr(s, "\r\n"); p != NULL;
	     p = strstr(p + 2, "\r\n"))
		if (strncmp(p + 2, prefix, n) == 0)
			return true;
	return false;
}

static size_t
test_count(const char *s, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(s, needle); p != NULL;
	     p = strstr(p + 1, needle))
		n++;
	return n;
}

struct field_case {
	const char *name;
	struct dsn_rcpt rcpt;
	const char *envid;
	bool is_full;
	const char *want[TEST_WANT_MAX];
	const char *unwanted[TEST_WANT_MAX];
};

#define BASE_RCPT(...)                                                         \
	{                                                                      \
		.final_rcpt = "bob@remote.test", .action = DSN_FAILED,         \
		.status = "5.1.1", __VA_ARGS__                                 \
	}

static const struct field_case field_cases[] = {
	{ "base_fields",
	  BASE_RCPT(.remote_mta = "mx.remote.test",
		    .diagnostic = "550 5.1.1 User unknown",
		    .last_attempt = TEST_NOW),
	  NULL,
	  false,
	  { "\r\nReporting-MTA: dns; mx.example.test\r\n",
	    "\r\nArrival-Date: Tue, 25 Nov 2025 11:10:00 +0000\r\n",
	    "\r\n\r\nFinal-Recipient: rfc822; bob@remote.test\r\nAction: "
	    "failed\r\nStatus: 5.1.1\r\n",
	    "\r\nRemote-MTA: dns; mx.remote.test\r\n",
	    "\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n",
	    "\r\nLast-Attempt-Date: Tue, 25 Nov 2025 14:02:11 +0000\r\n" },
	  { "Original-Envelope-Id:", "Original-Recipient:", "Will-Retry-Until:",
	    "has moved to" } },
	{ "header_fields",
	  BASE_RCPT(.diagnostic = "550 5.1.1 User unknown"),
	  NULL,
	  false,
	  { "From: \"Mail Delivery System\" <MAILER-DAEMON@mx.example.test>"
	    "\r\n",
	    "\r\nTo: <alice@example.test>\r\n",
	    "\r\nSubject: Undelivered Mail Returned to Sender\r\n",
	    "\r\nDate: Tue, 25 Nov 2025 14:02:11 +0000\r\n",
	    "\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;"
	    "\r\n\tboundary=\"",
	    "\r\nMessage-ID: <1764079331." TEST_QID "." },
	  { NULL } },
	{ "envid_and_orcpt",
	  BASE_RCPT(.orcpt = "rfc822;Bob@Remote.test"),
	  "QQ314159",
	  false,
	  { "\r\nOriginal-Envelope-Id: QQ314159\r\n",
	    "\r\n\r\nOriginal-Recipient: rfc822;Bob@Remote.test\r\n"
	    "Final-Recipient: rfc822; bob@remote.test\r\n" },
	  { NULL } },
	{ "orcpt_without_type_gets_rfc822",
	  BASE_RCPT(.orcpt = "bob@x.test"),
	  NULL,
	  false,
	  { "\r\nOriginal-Recipient: rfc822; bob@x.test\r\n" },
	  { NULL } },
	{ "local_reason_has_no_remote_fields",
	  BASE_RCPT(.explanation = "The mailbox is full."),
	  NULL,
	  false,
	  { "  The reason:\r\n    The mailbox is full.\r\n" },
	  { "Remote-MTA:", "Diagnostic-Code:", "Last-Attempt-Date:",
	    "It replied:", "Remote server:" } },
	{ "delayed_has_will_retry_until",
	  { .final_rcpt = "bob@remote.test",
	    .action = DSN_DELAYED,
	    .status = "4.2.0",
	    .remote_mta = "mx.remote.test",
	    .diagnostic = "450 4.2.0 Greylisted, retry in 60 s",
	    .last_attempt = TEST_NOW,
	    .will_retry_until = TEST_RETRY },
	  NULL,
	  false,
	  { "\r\nAction: delayed\r\nStatus: 4.2.0\r\n",
	    "\r\nWill-Retry-Until: Sun, 30 Nov 2025 10:53:20 +0000\r\n",
	    "\r\nSubject: Delayed Mail (still being retried)\r\n",
	    "  It will keep trying until Sun, 30 Nov 2025 10:53:20 +0000.\r\n",
	    "  It replied:\r\n    450 4.2.0 Greylisted, retry in 60 s\r\n" },
	  { "Undelivered" } },
	{ "will_retry_until_only_when_delayed",
	  BASE_RCPT(.will_retry_until = TEST_RETRY),
	  NULL,
	  false,
	  { "Action: failed" },
	  { "Will-Retry-Until:", "keep trying until" } },
	{ "delivered",
	  { .final_rcpt = "bob@remote.test",
	    .action = DSN_DELIVERED,
	    .status = "2.0.0",
	    .remote_mta = "mx.remote.test",
	    .diagnostic = "250 2.0.0 Ok: queued as 1234",
	    .last_attempt = TEST_NOW },
	  NULL,
	  false,
	  { "\r\nAction: delivered\r\nStatus: 2.0.0\r\n",
	    "\r\nSubject: Successful Mail Delivery Report\r\n",
	    "\r\n  Delivered.\r\n" },
	  { "Will-Retry-Until:" } },
	{ "relayed",
	  { .final_rcpt = "bob@remote.test",
	    .action = DSN_RELAYED,
	    .status = "2.0.0" },
	  NULL,
	  false,
	  { "\r\nAction: relayed\r\n", "Successful Mail Delivery Report" },
	  { NULL } },
	{ "expanded",
	  { .final_rcpt = "list@remote.test",
	    .action = DSN_EXPANDED,
	    .status = "2.0.0" },
	  NULL,
	  false,
	  { "\r\nAction: expanded\r\n", "  alias or a mailing list).\r\n" },
	  { NULL } },
	{ "no_status_gets_class_default",
	  { .final_rcpt = "b@r.test" },
	  NULL,
	  false,
	  { "\r\nStatus: 5.0.0\r\n" },
	  { NULL } },
	{ "expired_is_4_4_7_with_the_last_temporary_reply",
	  { .final_rcpt = "bob@remote.test",
	    .action = DSN_FAILED,
	    .is_expired = true,
	    .remote_mta = "mx.remote.test",
	    .diagnostic = "451 4.3.0 Try again later",
	    .explanation = "A temporary local error there.",
	    .last_attempt = TEST_NOW },
	  NULL,
	  false,
	  { "\r\nAction: failed\r\nStatus: 4.4.7\r\n",
	    "\r\nDiagnostic-Code: smtp; 451 4.3.0 Try again later\r\n",
	    "  Its last reply, a temporary failure:\r\n"
	    "    451 4.3.0 Try again later\r\n",
	    "\r\nSubject: Undelivered Mail Returned to Sender\r\n",
	    "failed for a temporary reason" },
	  { "permanent", "will not try again", "Will-Retry-Until:",
	    "It replied:" } },
	{ "expired_local_reason_is_temporary_too",
	  { .final_rcpt = "bob@remote.test",
	    .action = DSN_FAILED,
	    .is_expired = true,
	    .status = "4.4.7",
	    .explanation = "4.4.1 connection refused by mx.remote.test" },
	  NULL,
	  false,
	  { "\r\nStatus: 4.4.7\r\n",
	    "  The last try failed for this temporary reason:\r\n"
	    "    4.4.1 connection refused by mx.remote.test\r\n" },
	  { "permanent", "Diagnostic-Code:", "  The reason:" } },
	{ "expired_only_counts_when_failed",
	  { .final_rcpt = "bob@remote.test",
	    .action = DSN_DELAYED,
	    .is_expired = true,
	    .diagnostic = "451 4.3.0 Try again later" },
	  NULL,
	  false,
	  { "\r\nAction: delayed\r\nStatus: 4.0.0\r\n", "  It replied:" },
	  { "4.4.7", "temporary failure:" } },
	{ "user_moved_names_forward",
	  { .final_rcpt = "bob@remote.test",
	    .action = DSN_FAILED,
	    .status = "5.1.6",
	    .remote_mta = "mx.remote.test",
	    .diagnostic = "551 5.1.6 User not local; please try "
			  "<bob@new.test>",
	    .forward = "bob@new.test" },
	  NULL,
	  false,
	  { "\r\n  The remote server says this person has moved to "
	    "<bob@new.test>; update\r\n  your address book and resend.\r\n",
	    "\r\nStatus: 5.1.6\r\n" },
	  { NULL } },
	{ "explanation_lines_indented",
	  BASE_RCPT(.diagnostic = "550 5.1.1 User unknown",
		    .explanation = "First line.\nSecond line.\n\nAfter gap."),
	  NULL,
	  false,
	  { "  In plain words:\r\n    First line.\r\n    Second line.\r\n"
	    "\r\n    After gap.\r\n" },
	  { NULL } },
	{ "multiline_reply_kept_as_lines_and_joined_in_field",
	  BASE_RCPT(.diagnostic = "550-5.7.1 Blocked\r\n550 5.7.1 See site"),
	  NULL,
	  false,
	  { "    550-5.7.1 Blocked\r\n    550 5.7.1 See site\r\n",
	    "\r\nDiagnostic-Code: smtp; 550-5.7.1 Blocked 550 5.7.1 See "
	    "site\r\n" },
	  { NULL } },
	{ "original_subject_unfolded_and_arrival_shown",
	  BASE_RCPT(),
	  NULL,
	  false,
	  { "\r\n  Subject: Lunch on Friday?\r\n",
	    "\r\n  Received: Tue, 25 Nov 2025 11:10:00 +0000\r\n",
	    "\r\n  Queue ID: " TEST_QID "\r\n" },
	  { NULL } },
	{ "headers_only",
	  BASE_RCPT(),
	  NULL,
	  false,
	  { "\r\nContent-Type: text/rfc822-headers\r\n",
	    "\r\nMessage-ID: <abc@example.test>\r\n\r\n--" },
	  { "BODY-MARKER", "message/rfc822" } },
	{ "full",
	  BASE_RCPT(),
	  NULL,
	  true,
	  { "\r\nContent-Type: message/rfc822\r\n",
	    "\r\n\r\nReceived: from client.example.test\r\n",
	    "\r\nShall we?\r\nBODY-MARKER\r\n\r\n--" },
	  { "text/rfc822-headers" } },
	{ "injection_neutralised",
	  { .final_rcpt = "bob@remote.test\r\nX-Bad-Rcpt: 1",
	    .orcpt = "rfc822;b@r\nX-Bad-Orcpt: 1",
	    .action = DSN_FAILED,
	    .status = "5.1.1\r\nX-Bad-Status: 1",
	    .remote_mta = "mx\r\nX-Bad-Mta: 1",
	    .diagnostic = "550 5.1.1 No\r\nX-Bad-Diag: 1\r\n\r\nbody",
	    .forward = "f@x\r\nX-Bad-Fwd: 1" },
	  "id\r\nX-Bad-Envid: 1\x01\x7f",
	  false,
	  { "\r\nDiagnostic-Code: smtp; 550 5.1.1 No X-Bad-Diag: 1 body\r\n",
	    "\r\nOriginal-Envelope-Id: id X-Bad-Envid: 1\r\n",
	    "\r\nFinal-Recipient: rfc822; bob@remote.test X-Bad-Rcpt: 1\r\n",
	    "\r\nRemote-MTA: dns; mx X-Bad-Mta: 1\r\n" },
	  { "\nX-Bad", "\x01", "\x7f" } },
	{ "utf8_address_gets_utf8_type",
	  { .final_rcpt = "j\xc3\xb6rg@remote.test",
	    .action = DSN_FAILED,
	    .status = "5.1.1" },
	  NULL,
	  false,
	  { "\r\nFinal-Recipient: utf-8; j\xc3\xb6rg@remote.test\r\n",
	    "\r\nContent-Type: message/global-delivery-status\r\n" },
	  { "Content-Type: message/delivery-status" } },
};

/* The lifetime ran out: the words name it ("5 days"), a notice that
 * also reports a 5xx keeps calling that one permanent, and only that
 * one. */
static void
test_dsn_expired_names_the_lifetime(void **state)
{
	static const struct {
		int64_t lifetime;
		const char *words;
	} spans[] = {
		{432000, "within 5 days, the time"},
		{3600, "within 1 hour, the time"},
		{5400, "within 90 minutes, the time"},
		{3, "within 3 seconds, the time"},
		{1, "within 1 second, the time"},
		{0, "keep a message for no time at all"},
	};
	struct dsn_rcpt rcpts[2] = {test_base_rcpt, test_base_rcpt};
	struct dsn_input in;
	size_t len;
	char *s;

	(void)state;
	rcpts[0].final_rcpt = "carol@remote.test";
	rcpts[0].status = NULL;
	rcpts[0].is_expired = true;
	rcpts[0].diagnostic = "450 4.2.1 Mailbox busy";
	for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) {
		test_input(&in, rcpts, 2);
		in.lifetime = spans[i].lifetime;
		s = test_format(&in, &len);
		if (strstr(s, spans[i].words) == NULL)
			fail_msg("missing \"%s\" in:\n%s", spans[i].words, s);
		assert_int_equal(test_count(s, "This is permanent"), 1);
		assert_non_null(strstr(s, "Final-Recipient: rfc822; "
					  "carol@remote.test\r\nAction: failed"
					  "\r\nStatus: 4.4.7\r\n"));
		assert_non_null(strstr(s, "Final-Recipient: rfc822; "
					  "bob@remote.test\r\nAction: failed"
					  "\r\nStatus: 5.1.1\r\n"));
		assert_int_equal(test_count(s, "a temporary failure:"), 1);
		free(s);
	}
}

static void
test_dsn_fields(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof field_cases / sizeof field_cases[0];
	     i++) {
		const struct field_case *c = &field_cases[i];
		struct dsn_input in;
		size_t len;
		char *s;

		test_input(&in, &c->rcpt, 1);
		in.envid = c->envid;
		in.is_full = c->is_full;
		s = test_format(&in, &len);
		for (size_t k = 0; k < TEST_WANT_MAX && c->want[k]; k++)
			if (strstr(s, c->want[k]) == NULL)
				fail_msg("%s: missing \"%s\" in:\n%s", c->name,
					 c->want[k], s);
		for (size_t k = 0; k < TEST_WANT_MAX && c->unwanted[k]; k++)
			if (strstr(s, c->unwanted[k]) != NULL)
				fail_msg("%s: unwanted \"%s\" in:\n%s", c->name,
					 c->unwanted[k], s);
		free(s);
	}
}

struct subject_case {
	enum dsn_action actions[3];
	size_t n;
	const char *want;
};

static const struct subject_case subject_cases[] = {
	{ { DSN_FAILED }, 1, "Undelivered Mail Returned to Sender" },
	{ { DSN_DELAYED }, 1, "Delayed Mail (still being retried)" },
	{ { DSN_DELIVERED }, 1, "Successful Mail Delivery Report" },
	{ { DSN_RELAYED }, 1, "Successful Mail Delivery Report" },
	{ { DSN_EXPANDED }, 1, "Successful Mail Delivery Report" },
	{ { DSN_DELAYED, DSN_FAILED },
	  2,
	  "Undelivered Mail Returned to Sender" },
	{ { DSN_DELIVERED, DSN_DELAYED, DSN_FAILED },
	  3,
	  "Undelivered Mail Returned to Sender" },
	{ { DSN_DELIVERED, DSN_DELAYED },
	  2,
	  "Delayed Mail (still being retried)" },
	{ { DSN_RELAYED, DSN_DELIVERED },
	  2,
	  "Successful Mail Delivery Report" },
};

static void
test_dsn_subject_gravest_wins(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof subject_cases / sizeof subject_cases[0];
	     i++) {
		const struct subject_case *c = &subject_cases[i];
		struct dsn_rcpt r[3] = { test_base_rcpt, test_base_rcpt,
					 test_base_rcpt };

		for (size_t k = 0; k < c->n; k++)
			r[k].action = c->actions[k];
		assert_string_equal(dsn_subject(r, c->n), c->want);
	}
}

/* The field's value with its folds (CRLF before a blank) taken out. */
static void
test_unfold(const char *s, const char *name, char *out, size_t size)
{
	const char *p = strstr(s, name);
	size_t o = 0;

	assert_non_null(p);
	p += strlen(name);
	while (*p != '\0' && o + 1 < size) {
		if (p[0] == '\r' && p[1] == '\n' && p[2] != ' ' && p[2] != '\t')
			break;
		if (p[0] == '\r' && p[1] == '\n') {
			p += 2;
			continue;
		}
		out[o++] = *p++;
	}
	out[o] = '\0';
}

static void
test_dsn_long_diagnostic_is_folded(void **state)
{
	char diag[600], got[TEST_OUT_MAX], want[TEST_OUT_MAX];
	struct dsn_rcpt r = test_base_rcpt;
	struct dsn_input in;
	const char *p, *end;
	size_t len, o = 0;
	char *s;

	(void)state;
	o += (size_t)snprintf(diag, sizeof diag, "550 5.7.1");
	while (o + 12 < sizeof diag)
		o += (size_t)snprintf(diag + o, sizeof diag - o, " word%03zu",
				      o);
	r.diagnostic = diag;
	test_input(&in, &r, 1);
	s = test_format(&in, &len);
	test_unfold(s, "\r\nDiagnostic-Code: ", got, sizeof got);
	snprintf(want, sizeof want, "smtp; %s", diag);
	assert_string_equal(got, want);
	/* Every line of the field fits in 78 columns. */
	p = strstr(s, "\r\nDiagnostic-Code: ") + 2;
	for (int lines = 0;; lines++) {
		end = strstr(p, "\r\n");
		assert_true(end - p <= 78);
		if (end[2] != ' ') {
			assert_true(lines > 5);
			break;
		}
		p = end + 2;
	}
	/* The text part wraps the reply at 72. */
	assert_non_null(strstr(s, "  It replied:\r\n    550 5.7.1 word"));
	free(s);
}

static void
test_dsn_unbroken_run_stays_under_998(void **state)
{
	char diag[3000];
	struct dsn_rcpt r = test_base_rcpt;
	struct dsn_input in;
	size_t len;
	char *s;

	(void)state;
	memset(diag, 'x', sizeof diag - 1);
	diag[sizeof diag - 1] = '\0';
	r.diagnostic = diag;
	r.explanation = diag;
	test_input(&in, &r, 1);
	s = test_format(&in, &len); /* the shape check does the work */
	free(s);
}

/* The boundary parameter of s, into bd. */
static void
test_boundary(const char *s, char *bd, size_t size)
{
	const char *p = strstr(s, "boundary=\""), *q;

	assert_non_null(p);
	p += strlen("boundary=\"");
	q = strchr(p, '"');
	assert_non_null(q);
	assert_true((size_t)(q - p) < size);
	memcpy(bd, p, (size_t)(q - p));
	bd[q - p] = '\0';
}

static void
test_dsn_boundary_avoids_the_original(void **state)
{
	char first[128], orig[512], line[160], bd[128];
	struct dsn_rcpt r = test_base_rcpt;
	struct dsn_input in;
	size_t len;
	char *s;

	(void)state;
	test_input(&in, &r, 1);
	in.is_full = true;
	s = test_format(&in, &len);
	test_boundary(s, first, sizeof first);
	free(s);

	snprintf(orig, sizeof orig,
		 "Subject: trap\r\n\r\n--%s\r\nContent-Type: text/plain\r\n"
		 "\r\nfake\r\n--%s--\r\n",
		 first, first);
	in.orig = orig;
	in.orig_len = strlen(orig);
	s = test_format(&in, &len);
	test_boundary(s, bd, sizeof bd);
	assert_string_not_equal(bd, first);
	snprintf(line, sizeof line, "\r\n--%s\r\n", bd);
	assert_int_equal(test_count(s, line), 3);
	assert_int_equal(test_count(s, bd), 1 + 3 + 1);
	free(s);

	/* The same, with the boundary in the headers only notice. */
	in.is_full = false;
	snprintf(orig, sizeof orig, "X-Trap: %s\r\n\r\nbody\r\n", first);
	in.orig_len = strlen(orig);
	s = test_format(&in, &len);
	test_boundary(s, bd, sizeof bd);
	assert_string_not_equal(bd, first);
	free(s);
}

static void
test_dsn_to_cannot_add_a_header(void **state)
{
	struct dsn_rcpt r = test_base_rcpt;
	struct dsn_input in;
	size_t len;
	char *s;

	(void)state;
	test_input(&in, &r, 1);
	in.to = "alice@example.test\r\nBcc: victim@example.test";
	in.reporting_mta = "mx.example.test\r\nX-Bad: 1";
	s = test_format(&in, &len);
	assert_false(test_has_line(s, "Bcc:"));
	assert_false(test_has_line(s, "X-Bad:"));
	assert_true(test_has_line(
		s, "To: <alice@example.test Bcc: victim@example.test>\r\n"));
	assert_true(test_has_line(s, "Reporting-MTA: dns; "
				     "mx.example.testX-Bad:1\r\n"));
	free(s);
}

static void
test_dsn_longest_names_fit(void **state)
{
	char host[254], to[257], want[300];
	struct dsn_rcpt r = test_base_rcpt;
	struct dsn_input in;
	size_t len;
	char *s;

	(void)state;
	memset(host, 'h', sizeof host - 1);
	host[sizeof host - 1] = '\0';
	memset(to, 't', sizeof to - 1);
	to[sizeof to - 1] = '\0';
	to[100] = '@';
	r.final_rcpt = to;
	r.remote_mta = host;
	test_input(&in, &r, 1);
	in.reporting_mta = host;
	in.to = to;
	s = test_format(&in, &len);
	snprintf(want, sizeof want, "\r\nReporting-MTA: dns; %s\r\n", host);
	assert_non_null(strstr(s, want));
	snprintf(want, sizeof want, "\r\nTo: <%s>\r\n", to);
	assert_non_null(strstr(s, want));
	snprintf(want, sizeof want, "This is the mail system at %s.", host);
	assert_non_null(strstr(s, want));
	free(s);
}

static void
test_dsn_many_recipients_share_one_notice(void **state)
{
	struct dsn_rcpt r[3] = { test_base_rcpt, test_base_rcpt,
				 test_base_rcpt };
	struct dsn_input in;
	const char *a, *b, *c;
	size_t len;
	char *s;

	(void)state;
	r[1].final_rcpt = "carol@remote.test";
	r[1].action = DSN_DELAYED;
	r[1].status = "4.4.1";
	r[1].diagnostic = NULL;
	r[1].explanation = "No answer from the remote server.";
	r[1].will_retry_until = TEST_RETRY;
	r[2].final_rcpt = "dave@other.test";
	r[2].status = "5.7.1";
	r[2].remote_mta = "mx.other.test";
	r[2].diagnostic = "554 5.7.1 Rejected";
	test_input(&in, r, 3);
	s = test_format(&in, &len);
	assert_int_equal(test_count(s, "\r\nFinal-Recipient: "), 3);
	assert_int_equal(test_count(s, "\r\nAction: failed\r\n"), 2);
	assert_int_equal(test_count(s, "\r\nAction: delayed\r\n"), 1);
	assert_int_equal(test_count(s, "\r\nWill-Retry-Until: "), 1);
	assert_int_equal(test_count(s, "\r\nReporting-MTA: "), 1);
	assert_int_equal(test_count(s, "\r\nRecipient: "), 3);
	assert_true(test_has_line(s, "Subject: Undelivered Mail Returned"));
	a = strstr(s, "Final-Recipient: rfc822; bob@remote.test");
	b = strstr(s, "Final-Recipient: rfc822; carol@remote.test");
	c = strstr(s, "Final-Recipient: rfc822; dave@other.test");
	assert_true(a != NULL && b != NULL && c != NULL && a < b && b < c);
	assert_non_null(strstr(s, "\r\nDiagnostic-Code: smtp; 554 5.7.1 "
				  "Rejected\r\n"));
	free(s);
}

static void
test_dsn_message_id_differs_per_notice(void **state)
{
	struct dsn_rcpt r = test_base_rcpt;
	struct dsn_input in;
	char id1[128], id2[128];
	const char *p;
	size_t len;
	char *s;

	(void)state;
	test_input(&in, &r, 1);
	s = test_format(&in, &len);
	p = strstr(s, "\r\nMessage-ID: ");
	assert_non_null(p);
	snprintf(id1, sizeof id1, "%.*s", (int)strcspn(p + 2, "\r"), p + 2);
	free(s);
	r.action = DSN_DELAYED;
	s = test_format(&in, &len);
	p = strstr(s, "\r\nMessage-ID: ");
	assert_non_null(p);
	snprintf(id2, sizeof id2, "%.*s", (int)strcspn(p + 2, "\r"), p + 2);
	assert_string_not_equal(id1, id2);
	free(s);
}

static void
test_dsn_bare_lf_in_original_becomes_crlf(void **state)
{
	static const char orig[] = "Subject: x\nA: b\r\rC: d\n\nbody\nend";
	struct dsn_rcpt r = test_base_rcpt;
	struct dsn_input in;
	size_t len;
	char *s;

	(void)state;
	test_input(&in, &r, 1);
	in.orig = orig;
	in.orig_len = sizeof orig - 1;
	in.is_full = true;
	s = test_format(&in, &len);
	assert_non_null(strstr(s, "\r\n\r\nSubject: x\r\nA: b\r\n\r\nC: d"
				  "\r\n\r\nbody\r\nend\r\n\r\n--"));
	free(s);
	in.is_full = false;
	s = test_format(&in, &len);
	assert_non_null(strstr(s, "\r\n\r\nSubject: x\r\nA: b\r\n\r\n--"));
	assert_null(strstr(s, "C: d"));
	free(s);
}

static void
test_dsn_rejects_no_recipients(void **state)
{
	struct dsn_input in;
	size_t len;

	(void)state;
	test_input(&in, &test_base_rcpt, 0);
	errno = 0;
	assert_null(dsn_format(&in, &len));
	assert_int_equal(errno, EINVAL);
	assert_null(dsn_format(NULL, &len));
}

static void
test_dsn_empty_original(void **state)
{
	struct dsn_rcpt r = test_base_rcpt;
	struct dsn_input in;
	size_t len;
	char *s;

	(void)state;
	test_input(&in, &r, 1);
	in.orig = NULL;
	in.orig_len = 0;
	s = test_format(&in, &len);
	assert_null(strstr(s, "  Subject:"));
	free(s);
}

/* Prints what an independent parser sees; no single quotes inside. */
static const char test_py[] =
	"import sys, email, email.policy\n"
	"m = email.message_from_bytes(open(sys.argv[1], \"rb\").read(),\n"
	"    policy=email.policy.default)\n"
	"print(m.get_content_type(), m.get_param(\"report-type\"))\n"
	"print(m[\"subject\"], m[\"auto-submitted\"], m[\"to\"])\n"
	"ps = m.get_payload()\n"
	"print(len(ps), *[p.get_content_type() for p in ps])\n"
	"print(*[str(d) for d in m.defects], *[str(d) for p in m.walk()\n"
	"    for d in p.defects], \"defects\")\n"
	"g = ps[1].get_payload()\n"
	"print(len(g), g[0][\"reporting-mta\"], "
	"g[0][\"original-envelope-id\"])\n"
	"for r in g[1:]:\n"
	"    print(r[\"final-recipient\"], r[\"action\"], r[\"status\"],\n"
	"        \" \".join(str(r[\"diagnostic-code\"]).split()))\n"
	"print(ps[2].get_payload(0)[\"subject\"])\n";

static const char test_py_want[] =
	"multipart/report delivery-status\n"
	"Undelivered Mail Returned to Sender auto-replied "
	"alice@example.test\n"
	"3 text/plain message/delivery-status message/rfc822\n"
	"defects\n"
	"3 dns; mx.example.test QQ314159\n"
	"rfc822; bob@remote.test failed 5.1.1 smtp; 550 5.1.1 User unknown\n"
	"rfc822; carol@remote.test delayed 4.4.1 None\n"
	"Lunch on Friday?\n";

static void
test_dsn_python_email_parses_it(void **state)
{
	char path[] = "/tmp/test_dsn_XXXXXX", cmd[TEST_OUT_MAX];
	char got[TEST_OUT_MAX];
	struct dsn_rcpt r[2] = { test_base_rcpt, test_base_rcpt };
	struct dsn_input in;
	size_t len, n;
	FILE *f;
	char *s;
	int fd;

	(void)state;
	if (access(TEST_PYTHON, X_OK) != 0)
		skip();
	r[1].final_rcpt = "carol@remote.test";
	r[1].action = DSN_DELAYED;
	r[1].status = "4.4.1";
	r[1].diagnostic = NULL;
	r[1].will_retry_until = TEST_RETRY;
	test_input(&in, r, 2);
	in.envid = "QQ314159";
	in.is_full = true;
	s = test_format(&in, &len);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, len), (ssize_t)len);
	close(fd);
	free(s);
	snprintf(cmd, sizeof cmd, "%s -c '%s' %s", TEST_PYTHON, test_py, path);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(got, 1, sizeof got - 1, f);
	got[n] = '\0';
	assert_int_equal(pclose(f), 0);
	unlink(path);
	assert_string_equal(got, test_py_want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dsn_fields),
		cmocka_unit_test(test_dsn_expired_names_the_lifetime),
		cmocka_unit_test(test_dsn_subject_gravest_wins),
		cmocka_unit_test(test_dsn_long_diagnostic_is_folded),
		cmocka_unit_test(test_dsn_unbroken_run_stays_under_998),
		cmocka_unit_test(test_dsn_boundary_avoids_the_original),
		cmocka_unit_test(test_dsn_to_cannot_add_a_header),
		cmocka_unit_test(test_dsn_longest_names_fit),
		cmocka_unit_test(test_dsn_many_recipients_share_one_notice),
		cmocka_unit_test(test_dsn_message_id_differs_per_notice),
		cmocka_unit_test(test_dsn_bare_lf_in_original_becomes_crlf),
		cmocka_unit_test(test_dsn_rejects_no_recipients),
		cmocka_unit_test(test_dsn_empty_original),
		cmocka_unit_test(test_dsn_python_email_parses_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
