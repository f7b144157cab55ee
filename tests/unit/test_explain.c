/*
 * test_explain.c - the reply-code knowledge and its lookups (src/explain/).
 *
 * Over the tables: every code has every field, classes match the first
 * digit, the enhanced codes are exactly the IANA registry's (RFC 3463,
 * 5248 and later), texts do not carry the seeds' defects.  Over the code:
 * input -> expected tables for code lookup, reply parsing, the closest
 * codes, the language from the environment, the comparison sentences and
 * explain_reply_format().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explain_int.h"

#define N_OF(a) (sizeof (a) / sizeof (a)[0])

/* The IANA "SMTP Enhanced Status Codes" registry, enumerated codes. */
static const struct {
	int subject, detail;
} registry[] = {
	{ 0, 0 },
	{ 1, 0 }, { 1, 1 }, { 1, 2 }, { 1, 3 }, { 1, 4 }, { 1, 5 }, { 1, 6 },
	{ 1, 7 }, { 1, 8 }, { 1, 9 }, { 1, 10 },
	{ 2, 0 }, { 2, 1 }, { 2, 2 }, { 2, 3 }, { 2, 4 },
	{ 3, 0 }, { 3, 1 }, { 3, 2 }, { 3, 3 }, { 3, 4 }, { 3, 5 }, { 3, 6 },
	{ 4, 0 }, { 4, 1 }, { 4, 2 }, { 4, 3 }, { 4, 4 }, { 4, 5 }, { 4, 6 },
	{ 4, 7 },
	{ 5, 0 }, { 5, 1 }, { 5, 2 }, { 5, 3 }, { 5, 4 }, { 5, 5 }, { 5, 6 },
	{ 6, 0 }, { 6, 1 }, { 6, 2 }, { 6, 3 }, { 6, 4 }, { 6, 5 }, { 6, 6 },
	{ 6, 7 }, { 6, 8 }, { 6, 9 }, { 6, 10 },
	{ 7, 0 }, { 7, 1 }, { 7, 2 }, { 7, 3 }, { 7, 4 }, { 7, 5 }, { 7, 6 },
	{ 7, 7 }, { 7, 8 }, { 7, 9 }, { 7, 10 }, { 7, 11 }, { 7, 12 },
	{ 7, 13 }, { 7, 14 }, { 7, 15 }, { 7, 16 }, { 7, 17 }, { 7, 18 },
	{ 7, 19 }, { 7, 20 }, { 7, 21 }, { 7, 22 }, { 7, 23 }, { 7, 24 },
	{ 7, 25 }, { 7, 26 }, { 7, 27 }, { 7, 28 }, { 7, 29 }, { 7, 30 },
};

/* The basic codes issue 7 names, RFC 5321 and its extensions. */
static const char *const required_basic[] = {
	"211", "214", "220", "221", "235", "250", "251", "252", "334", "354",
	"421", "432", "450", "451", "452", "454", "455", "500", "501", "502",
	"503", "504", "521", "530", "534", "535", "538", "550", "551", "552",
	"553", "554", "555", "556",
};

static void
test_every_code_has_every_field(void **state)
{
	(void)state;
	for (size_t i = 0; i < explain_count(); i++) {
		const struct explain_code *c = explain_at(i);
		const char *texts[] = { c->name, c->ref, c->description,
		    c->when, c->fix };

		for (size_t k = 0; k < N_OF(texts); k++) {
			assert_non_null(texts[k]);
			assert_true(strlen(texts[k]) > 2);
		}
		/* Sentences: capital first, full stop last. */
		assert_true(isupper((unsigned char)c->description[0]));
		assert_true(isupper((unsigned char)c->when[0]));
		assert_true(isupper((unsigned char)c->fix[0]));
		assert_int_equal(c->description[strlen(c->description) - 1], '.');
		assert_int_equal(c->when[strlen(c->when) - 1], '.');
		assert_int_equal(c->fix[strlen(c->fix) - 1], '.');
	}
	assert_null(explain_at(explain_count()));
}

static void
test_texts_have_no_seed_defects(void **state)
{
	(void)state;
	for (size_t i = 0; i < explain_count(); i++) {
		const struct explain_code *c = explain_at(i);
		const char *texts[] = { c->description, c->when, c->fix };

		for (size_t k = 0; k < N_OF(texts); k++) {
			assert_null(strstr(texts[k], "when when"));
			assert_null(strstr(texts[k], "When when"));
			assert_null(strstr(texts[k], "identificati "));
			assert_null(strstr(texts[k], "  "));
		}
	}
	assert_non_null(strstr(explain_find("220")->description,
	    "software identification."));
}

static void
test_basic_class_matches_first_digit(void **state)
{
	(void)state;
	for (size_t i = 0; i < explain_count(); i++) {
		const struct explain_code *c = explain_at(i);
		char num[8];

		if (c->kind != EXPLAIN_BASIC)
			continue;
		snprintf(num, sizeof num, "%d", c->number);
		assert_string_equal(num, c->code);
		assert_true(c->number / 100 >= 2 && c->number / 100 <= 5);
		assert_true(explain_class_name(EXPLAIN_BASIC,
		    c->number / 100)[0] != '\0');
	}
	for (size_t i = 0; i < N_OF(required_basic); i++) {
		const struct explain_code *c = explain_find(required_basic[i]);

		assert_non_null(c);
		assert_int_equal(c->kind, EXPLAIN_BASIC);
	}
}

static void
test_enhanced_codes_are_the_registry(void **state)
{
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < explain_count(); i++) {
		const struct explain_code *c = explain_at(i);
		char code[EXPLAIN_CODE_MAX];
		bool is_listed = false;

		if (c->kind != EXPLAIN_ENHANCED)
			continue;
		n++;
		snprintf(code, sizeof code, "X.%d.%d", c->subject, c->detail);
		assert_string_equal(code, c->code);
		assert_true(explain_subject_name(c->subject)[0] != '\0');
		assert_true(c->classes[0] != '\0');
		for (const char *k = c->classes; *k != '\0'; k++)
			assert_non_null(strchr("245", *k));
		for (size_t r = 0; r < N_OF(registry); r++)
			if (registry[r].subject == c->subject &&
			    registry[r].detail == c->detail)
				is_listed = true;
		assert_true(is_listed);
	}
	assert_int_equal(n, N_OF(registry));
	for (size_t r = 0; r < N_OF(registry); r++) {
		char code[EXPLAIN_CODE_MAX];

		snprintf(code, sizeof code, "X.%d.%d", registry[r].subject,
		    registry[r].detail);
		assert_non_null(explain_find(code));
	}
}

static void
test_the_seed_codes_use_the_seed_names(void **state)
{
	static const struct {
		const char *code, *name;
	} seeds[] = {
		{ "220", "Service Ready" }, { "421", "Service Not Available" },
		{ "450", "Mailbox Unavailable" }, { "451", "Local Error" },
		{ "455", "Server Unable to Accommodate" },
		{ "551", "User Not Local" },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(seeds); i++)
		assert_string_equal(explain_find(seeds[i].code)->name,
		    seeds[i].name);
}

static void
test_item_set(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *code;
		int cls;
	} cases[] = {
		{ "421", 0, "421", 4 },
		{ "5.7.26", 0, "5.7.26", 5 },
		{ "4.7.1", 0, "4.7.1", 4 },
		{ "X.7.26", 0, "X.7.26", 0 },
		{ "x.1.1", 0, "X.1.1", 0 },
		{ "2.1.5", 0, "2.1.5", 2 },
		{ "2.7.26", -1, "", 0 },	/* not a success code */
		{ "5.1.5", -1, "", 0 },		/* only a success code */
		{ "299", -1, "", 0 },
		{ "4.9.9", -1, "", 0 },
		{ "3.1.1", -1, "", 0 },
		{ "5.1.1.1", -1, "", 0 },
		{ "5.1", -1, "", 0 },
		{ "5.1234.1", -1, "", 0 },
		{ "42", -1, "", 0 },
		{ "4211", -1, "", 0 },
		{ "", -1, "", 0 },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		struct explain_item it;

		assert_int_equal(explain_item_set(&it, cases[i].in),
		    cases[i].rc);
		if (cases[i].rc != 0) {
			assert_null(it.row);
			continue;
		}
		assert_string_equal(it.code, cases[i].code);
		assert_int_equal(it.class_digit, cases[i].cls);
	}
}

static void
test_reply_parse(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *basic, *enhanced, *text;
	} cases[] = {
		{ "421", 0, "421", "", "" },
		{ "  299\n", 0, "299", "", "" },
		{ "4.7.1", 0, "", "4.7.1", "" },
		{ "550 5.7.1 Relaying denied", 0, "550", "5.7.1",
		  "Relaying denied" },
		{ "550-5.1.1 No such user. Please\r\n550-5.1.1 check the "
		  "address\r\n550 5.1.1 https://help.example/x\r\n", 0, "550",
		  "5.1.1", "No such user. Please check the address "
		  "https://help.example/x" },
		{ "452 Too many recipients", 0, "452", "",
		  "Too many recipients" },
		{ "status=bounced (host mx.example[192.0.2.1] said: 550 5.1.1 "
		  "<a@b.example>: User unknown (in reply to RCPT TO command))",
		  0, "550", "5.1.1",
		  "<a@b.example>: User unknown (in reply to RCPT TO command)" },
		{ "H=mx.example [192.0.2.1]: SMTP error from remote mail "
		  "server after RCPT TO:<a@b.example>: 550 5.7.26 Unauthenticated",
		  0, "550", "5.7.26", "Unauthenticated" },
		{ "relay=mx.example[192.0.2.1]:25, dsn=4.7.1, status=deferred",
		  0, "", "4.7.1", ", status=deferred" },
		{ "221 2.0.0 Bye", 0, "221", "2.0.0", "Bye" },
		{ "hello", -1, "", "", "" },
		{ "", -1, "", "", "" },
		{ "127.0.0.1:2525", -1, "", "", "" },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		struct explain_reply r;

		assert_int_equal(explain_reply_parse(cases[i].in, &r),
		    cases[i].rc);
		if (cases[i].rc != 0)
			continue;
		assert_string_equal(r.basic, cases[i].basic);
		assert_string_equal(r.enhanced, cases[i].enhanced);
		assert_string_equal(r.text, cases[i].text);
	}
}

static void
test_reply_parse_caps_long_text(void **state)
{
	size_t n = EXPLAIN_REPLY_TEXT_MAX * 3;
	char *in = malloc(n + 1);
	struct explain_reply r;

	(void)state;
	assert_non_null(in);
	memcpy(in, "550 ", 4);
	memset(in + 4, 'x', n - 4);
	in[n] = '\0';
	assert_int_equal(explain_reply_parse(in, &r), EXPLAIN_PARSE_OK);
	assert_true(strlen(r.text) < EXPLAIN_REPLY_TEXT_MAX);
	free(in);
}

static void
test_closest(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "299", "252, 251, 250" },
		{ "4.9.9", "4.7.9, 4.7.8, 4.7.10" },
		{ "558", "556, 555, 554" },
		{ "hello", "" },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		char buf[128];

		explain_closest_format(cases[i].in, 3, buf, sizeof buf);
		assert_string_equal(buf, cases[i].want);
	}
}

static void
test_lang_from_env(void **state)
{
	static const struct {
		const char *lc_all, *lc_messages, *lang, *want;
	} cases[] = {
		{ NULL, NULL, "fr_FR.UTF-8", "fr" },
		{ NULL, NULL, "ko_KR.UTF-8", "ko" },
		{ NULL, NULL, "id_ID", "id" },
		{ NULL, NULL, "tr", "tr" },
		{ NULL, NULL, "de_DE.UTF-8", "en" },
		{ NULL, NULL, "C", "en" },
		{ NULL, NULL, NULL, "en" },
		{ "tr_TR.UTF-8", NULL, "fr_FR.UTF-8", "tr" },
		{ NULL, "id_ID.UTF-8", "fr_FR.UTF-8", "id" },
		{ "", NULL, "ko_KR", "ko" },
	};
	const char *names[] = { "LC_ALL", "LC_MESSAGES", "LANG" };

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		const char *v[] = { cases[i].lc_all, cases[i].lc_messages,
		    cases[i].lang };

		for (size_t k = 0; k < N_OF(names); k++) {
			if (v[k] != NULL)
				setenv(names[k], v[k], 1);
			else
				unsetenv(names[k]);
		}
		assert_string_equal(explain_lang_from_env()->tag,
		    cases[i].want);
	}
	assert_null(explain_lang_find("de"));
	assert_string_equal(explain_lang_find("ko")->h_which,
	    "언제 어떤 것을 사용할지");
}

static void
test_compare_across_classes(void **state)
{
	const char *in[] = { "421", "551" };
	char err[128];
	struct explain_doc *doc;

	(void)state;
	doc = explain_doc_new(in, 2, explain_lang_find("tr"), err, sizeof err);
	assert_non_null(doc);
	assert_true(doc->is_compare);
	assert_false(doc->is_same_class);
	assert_string_equal(doc->title,
	    "SMTP 421 Service Not Available vs 551 User Not Local");
	assert_non_null(strstr(doc->summary, "SMTP 421 (Service Not Available) "
	    "is a 4xx Transient Negative response, while 551 (User Not Local) "
	    "is a 5xx Permanent Negative response. 421 indicates that the "
	    "SMTP service"));
	assert_non_null(strstr(doc->summary, "In contrast, 551 means that the "
	    "recipient"));
	assert_int_equal(doc->n_diffs, 5);
	assert_string_equal(doc->diffs[0], "421 is a 4xx Transient Negative "
	    "response, while 551 is a 5xx Permanent Negative response.");
	assert_non_null(strstr(doc->diffs[3], "You encounter 421 when "
	    "connecting to a mail server"));
	assert_non_null(strstr(doc->which[1], "For 551 (User Not Local): "));
	explain_doc_free(doc);
}

static void
test_compare_same_class(void **state)
{
	const char *in[] = { "220", "451" };
	const char *same[] = { "421", "450" };
	char err[128];
	struct explain_doc *doc;

	(void)state;
	doc = explain_doc_new(same, 2, explain_lang_find("fr"), err,
	    sizeof err);
	assert_non_null(doc);
	assert_true(doc->is_same_class);
	assert_int_equal(doc->n_diffs, 4);
	assert_non_null(strstr(doc->summary, "Both SMTP 421 (Service Not "
	    "Available) and 450 (Mailbox Unavailable) belong to the 4xx "
	    "Transient Negative category."));
	assert_non_null(strstr(doc->summary, "Meanwhile, 450 means that"));
	explain_doc_free(doc);
	/* The seeds write "when immediately" for 220: one "when", kept. */
	doc = explain_doc_new(in, 2, explain_lang_find("id"), err, sizeof err);
	assert_non_null(doc);
	assert_string_equal(doc->diffs[3], "You encounter 220 when "
	    "immediately after establishing a TCP connection to the mail "
	    "server on port 25, 465, or 587. This is the server's welcome "
	    "banner confirming it is ready to accept commands.");
	explain_doc_free(doc);
}

static void
test_doc_errors_name_the_fix(void **state)
{
	static const struct {
		const char *in[2];
		size_t n;
		const char *want;
	} cases[] = {
		{ { "299" }, 1, "closest known codes: 252, 251, 250" },
		{ { "4.9.9" }, 1, "closest known codes: 4.7.9" },
		{ { "hello" }, 1, "no SMTP reply code" },
		{ { "421", "421" }, 2, "give two different codes" },
		{ { "421", "5.9.9" }, 2, "unknown reply code '5.9.9'" },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		char err[256] = "";

		assert_null(explain_doc_new(cases[i].in, cases[i].n,
		    explain_lang_find("en"), err, sizeof err));
		assert_non_null(strstr(err, cases[i].want));
	}
}

static void
test_reply_format(void **state)
{
	char buf[1024], small[16];
	int n;

	(void)state;
	n = explain_reply_format("550 5.1.1 <a@b.example>: User unknown", buf,
	    sizeof buf);
	assert_int_equal(n, (int)strlen(buf));
	assert_non_null(strstr(buf, "550 (Mailbox Unavailable): The requested "
	    "action was not taken"));
	assert_non_null(strstr(buf, "5.1.1 (Bad Destination Mailbox Address): "
	    "The mailbox"));
	assert_non_null(strstr(buf, "What to do: Check the recipient address"));
	assert_int_equal(explain_reply_format("550 5.1.1 x", small,
	    sizeof small), n);
	assert_int_equal(strlen(small), sizeof small - 1);
	n = explain_reply_format("421 4.4.2 idle too long", buf, sizeof buf);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "421 (Service Not Available)"));
	assert_int_equal(explain_reply_format("hello", buf, sizeof buf), -1);
	assert_string_equal(buf, "");
	assert_int_equal(explain_reply_format("299 what", buf, sizeof buf), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_code_has_every_field),
		cmocka_unit_test(test_texts_have_no_seed_defects),
		cmocka_unit_test(test_basic_class_matches_first_digit),
		cmocka_unit_test(test_enhanced_codes_are_the_registry),
		cmocka_unit_test(test_the_seed_codes_use_the_seed_names),
		cmocka_unit_test(test_item_set),
		cmocka_unit_test(test_reply_parse),
		cmocka_unit_test(test_reply_parse_caps_long_text),
		cmocka_unit_test(test_closest),
		cmocka_unit_test(test_lang_from_env),
		cmocka_unit_test(test_compare_across_classes),
		cmocka_unit_test(test_compare_same_class),
		cmocka_unit_test(test_doc_errors_name_the_fix),
		cmocka_unit_test(test_reply_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
