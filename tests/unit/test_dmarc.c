/*
 * test_dmarc.c - DMARC evaluation (src/auth/dmarc.c) over a DNS table,
 * the organizational domain (libpsl), and the From domain reader
 * (src/auth/hdr.c) on the forms RFC 5322 allows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "adns_table.h"
#include "auth/dmarc.h"
#include "auth/hdr.h"

#define ROUNDS_MAX 5

static const struct adns_row zone[] = {
    {"_dmarc.example.org",
     ADNS_TXT,
     ADNS_OK,
     {"v=DMARC1; p=reject; sp=quarantine; pct=50; rua=mailto:d@example.org"}},
    {"_dmarc.strict.test",
     ADNS_TXT,
     ADNS_OK,
     {"v=DMARC1;p=reject;adkim=s;aspf=s"}},
    {"_dmarc.nosp.test", ADNS_TXT, ADNS_OK, {"v=DMARC1; p=quarantine"}},
    {"_dmarc.multi.test",
     ADNS_TXT,
     ADNS_OK,
     {"v=DMARC1; p=reject", "v=DMARC1; p=none"}},
    {"_dmarc.sub.multi.test", ADNS_TXT, ADNS_NODATA, {0}},
    {"_dmarc.other.test",
     ADNS_TXT,
     ADNS_OK,
     {"v=spf1 -all", "v=DMARC1 ; p = reject ; foo=bar"}},
    {"_dmarc.badp.test", ADNS_TXT, ADNS_OK, {"v=DMARC1; p=maybe"}},
    {"_dmarc.badprua.test",
     ADNS_TXT,
     ADNS_OK,
     {"v=DMARC1; p=maybe; rua=mailto:x@badprua.test"}},
    {"_dmarc.nop.test", ADNS_TXT, ADNS_OK, {"v=DMARC1; rua=mailto:a@b"}},
    {"_dmarc.notfirst.test", ADNS_TXT, ADNS_OK, {"p=reject; v=DMARC1"}},
    {"_dmarc.lower.test", ADNS_TXT, ADNS_OK, {"v=dmarc1; p=reject"}},
    {"_dmarc.temp.test", ADNS_TXT, ADNS_TEMPFAIL, {0}},
    {"_dmarc.orgtemp.test", ADNS_TXT, ADNS_TEMPFAIL, {0}},
    {"_dmarc.a.orgtemp.test", ADNS_TXT, ADNS_OK, {"v=DMARC1; p=reject"}},
    {"_dmarc.pct0.test", ADNS_TXT, ADNS_OK, {"v=DMARC1; p=quarantine; pct=0"}},
    {"_dmarc.badpct.test", ADNS_TXT, ADNS_OK, {"v=DMARC1; p=reject; pct=200"}},
    {"_dmarc.example.co.uk", ADNS_TXT, ADNS_OK, {"v=DMARC1; p=reject"}},
    {0}};

/* Runs dmarc_eval to the end over a lazy table; returns the rounds. */
static enum dmarc_result
eval(const struct dmarc_input *in, struct dmarc_outcome *out, unsigned *rounds)
{
	struct adns_table t;
	struct adns_view v = adns_table_view(&t, zone, true);
	enum dmarc_result r;

	for (int i = 0; i < ROUNDS_MAX; i++) {
		r = dmarc_eval(in, &v, out);
		if (r != DMARC_PENDING)
			break;
		assert_true(adns_table_round(&t));
	}
	if (rounds != NULL)
		*rounds = t.rounds;
	return r;
}

static struct dmarc_input
input(const char *from, const char *spf, const char *dkim0)
{
	static const char *dkim[1];
	struct dmarc_input in = {.from_domain = from};

	if (spf != NULL) {
		in.spf_pass = 1;
		in.spf_domain = spf;
	}
	if (dkim0 != NULL) {
		dkim[0] = dkim0;
		in.dkim_pass_domains = dkim;
		in.n_dkim_pass = 1;
	}
	return in;
}

static void
test_dmarc_record_at_from_domain(void **state)
{
	struct dmarc_input in = input("Example.ORG", "example.org", NULL);
	struct dmarc_outcome out;
	unsigned rounds;

	(void)state;
	assert_int_equal(eval(&in, &out, &rounds), DMARC_PASS);
	assert_int_equal(rounds, 1);
	assert_string_equal(out.policy_domain, "example.org");
	assert_string_equal(out.from_domain, "example.org");
	assert_int_equal(out.policy, DMARC_P_REJECT);
	assert_int_equal(out.disposition, DMARC_P_NONE);
	assert_true(out.is_spf_aligned);
	assert_false(out.is_dkim_aligned);
	assert_string_equal(dmarc_result_name(out.result), "pass");
}

static void
test_dmarc_subdomain_uses_org_record_and_sp(void **state)
{
	struct dmarc_input in = input("mail.example.org", NULL, NULL);
	struct dmarc_outcome out;
	unsigned rounds;

	(void)state;
	in.sample = 10; /* < pct=50: the policy applies */
	assert_int_equal(eval(&in, &out, &rounds), DMARC_FAIL);
	assert_int_equal(rounds, 1); /* both asked in round one */
	assert_string_equal(out.policy_domain, "example.org");
	assert_int_equal(out.policy, DMARC_P_QUARANTINE);
	assert_int_equal(out.disposition, DMARC_P_QUARANTINE);
	in.sample = 50; /* outside pct=50: one step milder */
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
	assert_int_equal(out.disposition, DMARC_P_NONE);
}

static void
test_dmarc_p_applies_at_from_domain_despite_sp(void **state)
{
	struct dmarc_input in = input("example.org", NULL, NULL);
	struct dmarc_outcome out;

	(void)state;
	in.sample = 49;
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
	assert_int_equal(out.policy, DMARC_P_REJECT);
	assert_int_equal(out.disposition, DMARC_P_REJECT);
	in.sample = 99;
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
	assert_int_equal(out.disposition, DMARC_P_QUARANTINE);
	assert_int_equal(out.pct, 50);
}

static void
test_dmarc_subdomain_without_sp_takes_p(void **state)
{
	struct dmarc_input in = input("x.y.nosp.test", NULL, NULL);
	struct dmarc_outcome out;

	(void)state;
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
	assert_int_equal(out.policy, DMARC_P_QUARANTINE);
	assert_int_equal(out.disposition, DMARC_P_QUARANTINE);
	assert_string_equal(out.policy_domain, "nosp.test");
}

static void
test_dmarc_pct_zero_and_invalid(void **state)
{
	struct dmarc_input in = input("pct0.test", NULL, NULL);
	struct dmarc_outcome out;

	(void)state;
	in.sample = 0;
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
	assert_int_equal(out.disposition, DMARC_P_NONE);
	in = input("badpct.test", NULL, NULL);
	in.sample = 99;
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
	assert_int_equal(out.pct, 100);
	assert_int_equal(out.disposition, DMARC_P_REJECT);
}

static void
test_dmarc_relaxed_alignment(void **state)
{
	struct dmarc_input in;
	struct dmarc_outcome out;

	(void)state;
	in = input("example.org", "bounce.example.org", NULL);
	assert_int_equal(eval(&in, &out, NULL), DMARC_PASS);
	assert_true(out.is_spf_aligned);
	in = input("news.example.org", NULL, "EXAMPLE.org");
	assert_int_equal(eval(&in, &out, NULL), DMARC_PASS);
	assert_true(out.is_dkim_aligned);
	in = input("example.org", "example.net", "example.com");
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
	in = input("example.org", "example.org", NULL);
	in.spf_pass = 0; /* SPF aligned but not passing */
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
	assert_false(out.is_spf_aligned);
}

static void
test_dmarc_strict_alignment(void **state)
{
	struct dmarc_input in;
	struct dmarc_outcome out;

	(void)state;
	in = input("strict.test", "a.strict.test", "a.strict.test");
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
	assert_false(out.is_spf_aligned || out.is_dkim_aligned);
	in = input("strict.test", "STRICT.test", NULL);
	assert_int_equal(eval(&in, &out, NULL), DMARC_PASS);
	assert_true(out.is_spf_aligned);
	in = input("strict.test", NULL, "strict.test.");
	assert_int_equal(eval(&in, &out, NULL), DMARC_PASS);
	assert_true(out.is_dkim_aligned);
	/* A subdomain under a strict org record: not equal, fails. */
	in = input("s.strict.test", NULL, "strict.test");
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
}

static void
test_dmarc_any_dkim_signature_may_align(void **state)
{
	static const char *const d[] = {"example.net", "mail.example.org"};
	struct dmarc_input in = {.from_domain = "example.org",
				 .dkim_pass_domains = d,
				 .n_dkim_pass = 2};
	struct dmarc_outcome out;

	(void)state;
	assert_int_equal(eval(&in, &out, NULL), DMARC_PASS);
	assert_true(out.is_dkim_aligned);
}

static void
test_dmarc_no_record_and_invalid_records(void **state)
{
	struct dmarc_input in;
	struct dmarc_outcome out;

	(void)state;
	in = input("nothing.test", NULL, NULL);
	assert_int_equal(eval(&in, &out, NULL), DMARC_NONE);
	assert_int_equal(out.policy, DMARC_P_NONE);
	in = input("badp.test", NULL, NULL);
	assert_int_equal(eval(&in, &out, NULL), DMARC_NONE);
	in = input("notfirst.test", NULL, NULL);
	assert_int_equal(eval(&in, &out, NULL), DMARC_NONE);
	in = input("lower.test", NULL, NULL);
	assert_int_equal(eval(&in, &out, NULL), DMARC_NONE);
	/* Invalid p= but a rua=: as p=none. */
	in = input("badprua.test", NULL, NULL);
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
	assert_int_equal(out.policy, DMARC_P_NONE);
	assert_int_equal(out.disposition, DMARC_P_NONE);
	assert_true(out.problem[0] != '\0');
	in = input("nop.test", NULL, NULL);
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
	assert_int_equal(out.policy, DMARC_P_NONE);
	/* Other TXT records are discarded, spaces around tags allowed. */
	in = input("other.test", NULL, NULL);
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
	assert_int_equal(out.policy, DMARC_P_REJECT);
}

static void
test_dmarc_several_records_are_none(void **state)
{
	struct dmarc_input in = input("multi.test", NULL, NULL);
	struct dmarc_outcome out;

	(void)state;
	assert_int_equal(eval(&in, &out, NULL), DMARC_NONE);
	assert_non_null(strstr(out.problem, "several"));
	in = input("sub.multi.test", NULL, NULL);
	assert_int_equal(eval(&in, &out, NULL), DMARC_NONE);
}

static void
test_dmarc_temperror(void **state)
{
	struct dmarc_input in = input("temp.test", NULL, NULL);
	struct dmarc_outcome out;

	(void)state;
	assert_int_equal(eval(&in, &out, NULL), DMARC_TEMPERROR);
	assert_string_equal(dmarc_result_name(out.result), "temperror");
	/* The org lookup failed but the From domain's record decides. */
	in = input("a.orgtemp.test", NULL, NULL);
	assert_int_equal(eval(&in, &out, NULL), DMARC_FAIL);
	assert_int_equal(out.policy, DMARC_P_REJECT);
	in = input("b.orgtemp.test", NULL, NULL);
	assert_int_equal(eval(&in, &out, NULL), DMARC_TEMPERROR);
}

static void
test_dmarc_parallel_ask(void **state)
{
	struct adns_table t;
	struct adns_view v = adns_table_view(&t, zone, true);
	struct dmarc_input in = input("a.b.example.org", NULL, NULL);
	struct dmarc_outcome out;

	(void)state;
	assert_int_equal(dmarc_eval(&in, &v, &out), DMARC_PENDING);
	assert_int_equal(t.n_asked, 2);
	assert_non_null(
	    adns_table_find(&t, "_dmarc.a.b.example.org", ADNS_TXT));
	assert_non_null(adns_table_find(&t, "_dmarc.example.org", ADNS_TXT));
	assert_true(adns_table_round(&t));
	assert_int_equal(dmarc_eval(&in, &v, &out), DMARC_FAIL);
	assert_int_equal(t.rounds, 1);
	assert_int_equal(t.n_asked, 2);
	/* The org domain itself: one question. */
	v = adns_table_view(&t, zone, true);
	in = input("example.org", NULL, NULL);
	assert_int_equal(dmarc_eval(&in, &v, &out), DMARC_PENDING);
	assert_int_equal(t.n_asked, 1);
}

static void
test_dmarc_bad_from_is_permerror(void **state)
{
	struct dmarc_input in = input(NULL, NULL, NULL);
	struct dmarc_outcome out;

	(void)state;
	assert_int_equal(eval(&in, &out, NULL), DMARC_PERMERROR);
	in = input("", NULL, NULL);
	assert_int_equal(eval(&in, &out, NULL), DMARC_PERMERROR);
}

static void
test_dmarc_org_domain(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"a.b.example.co.uk", "example.co.uk"},
	    {"example.co.uk", "example.co.uk"},
	    {"co.uk", "co.uk"},
	    {"example.test", "example.test"},
	    {"a.b.example.test", "example.test"},
	    {"test", "test"},
	    {"Mail.Example.COM.", "example.com"},
	    {"x.unknowntld", "x.unknowntld"},
	};
	char out[DMARC_DOMAIN_SIZE];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_true(dmarc_org_domain(cases[i].in, out, sizeof out));
		assert_string_equal(out, cases[i].out);
	}
	assert_false(dmarc_org_domain("", out, sizeof out));
	assert_false(dmarc_org_domain("example.com", out, 4));
	/* Via the evaluator: a subdomain of example.co.uk. */
	{
		struct dmarc_input in = input("a.b.example.co.uk", NULL, NULL);
		struct dmarc_outcome o;

		assert_int_equal(eval(&in, &o, NULL), DMARC_FAIL);
		assert_string_equal(o.policy_domain, "example.co.uk");
	}
}

struct from_case {
	const char *msg;
	enum hdr_from_status status;
	const char *domain;
};

static const struct from_case from_cases[] = {
    {"From: a@Example.COM\r\n\r\nbody", HDR_FROM_OK, "example.com"},
    {"From: Joe <joe@example.org>\r\n\r\n", HDR_FROM_OK, "example.org"},
    {"from:joe@example.org\n\nbody", HDR_FROM_OK, "example.org"},
    {"FROM : <joe@example.org>\r\n", HDR_FROM_OK, "example.org"},
    {"From: \"Doe, John\" <j@x.example>\r\n\r\n", HDR_FROM_OK, "x.example"},
    {"From: \"a@evil.test\" <j@x.example>\r\n\r\n", HDR_FROM_OK, "x.example"},
    {"From: j@x.example (Joe (the \\) man))\r\n\r\n", HDR_FROM_OK, "x.example"},
    {"From: (c) Joe (d) <(e) j (f) @ (g) x.example (h)> (i)\r\n\r\n",
     HDR_FROM_OK, "x.example"},
    {"From: Joe\r\n <joe@\r\n\texample.org>\r\n\r\n", HDR_FROM_OK,
     "example.org"},
    {"From: \"j@k\"@x.example\r\n\r\n", HDR_FROM_OK, "x.example"},
    {"From: a@x.example, B <b@X.Example>\r\n\r\n", HDR_FROM_OK, "x.example"},
    {"From: a@x.example, b@y.example\r\n\r\n", HDR_FROM_MULTIPLE, ""},
    {"From: Team: a@x.example, b@x.example;\r\n\r\n", HDR_FROM_OK, "x.example"},
    {"From: Team: a@x.example;, c@y.example\r\n\r\n", HDR_FROM_MULTIPLE, ""},
    {"From: undisclosed:;\r\n\r\n", HDR_FROM_BAD, ""},
    {"From: <@route.test,@r2.test:j@x.example>\r\n\r\n", HDR_FROM_OK,
     "x.example"},
    {"From: j@x . example\r\n\r\n", HDR_FROM_OK, "x.example"},
    {"From: j@x.example.\r\n\r\n", HDR_FROM_OK, "x.example"},
    {"From: j@b\xc3\xbc"
     "cher.example\r\n\r\n",
     HDR_FROM_OK,
     "b\xc3\xbc"
     "cher.example"},
    {"From: , j@x.example,\r\n\r\n", HDR_FROM_OK, "x.example"},
    {"To: a@b\r\n\r\nFrom: a@c\r\n", HDR_FROM_NONE, ""},
    {"", HDR_FROM_NONE, ""},
    {"From: a@b.example\r\nFrom: a@b.example\r\n\r\n", HDR_FROM_MULTIPLE, ""},
    {"From: joe\r\n\r\n", HDR_FROM_BAD, ""},
    {"From: <>\r\n\r\n", HDR_FROM_BAD, ""},
    {"From: \r\n\r\n", HDR_FROM_BAD, ""},
    {"From: j@[192.0.2.1]\r\n\r\n", HDR_FROM_BAD, ""},
    {"From: j@x.example (open\r\n\r\n", HDR_FROM_BAD, ""},
    {"From: \"open <j@x.example>\r\n\r\n", HDR_FROM_BAD, ""},
    {"From: <j@x.example\r\n\r\n", HDR_FROM_BAD, ""},
    {"From: j@x.example>\r\n\r\n", HDR_FROM_BAD, ""},
    {"From: j@x..example\r\n\r\n", HDR_FROM_BAD, ""},
    {"From: j@x example\r\n\r\n", HDR_FROM_BAD, ""},
    {"From: j@\r\n\r\n", HDR_FROM_BAD, ""},
    {"From: a@x.example;\r\n\r\n", HDR_FROM_BAD, ""},
    {"Subject: hi\r\nFrom: a@x.example", HDR_FROM_OK, "x.example"},
};

static void
test_hdr_from_domain_forms(void **state)
{
	char d[DMARC_DOMAIN_SIZE];

	(void)state;
	for (size_t i = 0; i < sizeof from_cases / sizeof from_cases[0]; i++) {
		const struct from_case *c = &from_cases[i];
		enum hdr_from_status s =
		    hdr_from_domain(c->msg, strlen(c->msg), d, sizeof d);

		if (s != c->status || strcmp(d, c->domain) != 0)
			fail_msg("case %zu %s: got %d \"%s\"", i, c->msg, s, d);
	}
	assert_int_equal(hdr_from_domain("From: a@x.example\r\n", 19, d, 5),
			 HDR_FROM_BAD);
}

static void
test_hdr_end_and_fields(void **state)
{
	static const char m[] = "A: 1\r\nB: 2\r\n\tcont\r\n\r\nbody\r\n";
	struct hdr_iter it;
	struct hdr_field f;
	size_t n;

	(void)state;
	assert_true(hdr_end(m, sizeof m - 1, &n));
	assert_int_equal(n, 21);
	assert_false(hdr_end("A: 1\r\nB: 2", 10, &n));
	assert_int_equal(n, 10);
	assert_true(hdr_end("A: 1\n\nx", 7, &n));
	assert_int_equal(n, 6);
	assert_true(hdr_end("\r\nbody", 6, &n));
	assert_int_equal(n, 2);
	hdr_iter_init(&it, m, sizeof m - 1);
	assert_true(hdr_next(&it, &f));
	assert_true(hdr_name_is(&f, "a"));
	assert_int_equal(f.value_len, 2);
	assert_true(hdr_next(&it, &f));
	assert_true(hdr_name_is(&f, "B"));
	assert_int_equal(f.value_len, 9);
	assert_memory_equal(f.value, " 2\r\n\tcont", 9);
	assert_int_equal(f.at, 6);
	assert_int_equal(f.len, 13);
	assert_false(hdr_next(&it, &f));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dmarc_record_at_from_domain),
	    cmocka_unit_test(test_dmarc_subdomain_uses_org_record_and_sp),
	    cmocka_unit_test(test_dmarc_p_applies_at_from_domain_despite_sp),
	    cmocka_unit_test(test_dmarc_subdomain_without_sp_takes_p),
	    cmocka_unit_test(test_dmarc_pct_zero_and_invalid),
	    cmocka_unit_test(test_dmarc_relaxed_alignment),
	    cmocka_unit_test(test_dmarc_strict_alignment),
	    cmocka_unit_test(test_dmarc_any_dkim_signature_may_align),
	    cmocka_unit_test(test_dmarc_no_record_and_invalid_records),
	    cmocka_unit_test(test_dmarc_several_records_are_none),
	    cmocka_unit_test(test_dmarc_temperror),
	    cmocka_unit_test(test_dmarc_parallel_ask),
	    cmocka_unit_test(test_dmarc_bad_from_is_permerror),
	    cmocka_unit_test(test_dmarc_org_domain),
	    cmocka_unit_test(test_hdr_from_domain_forms),
	    cmocka_unit_test(test_hdr_end_and_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
