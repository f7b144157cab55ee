/*
 * test_prom.c - the latency histogram (src/util/hist.c) and the Prometheus
 * text writer (src/util/prom.c).
 *
 * Histograms: where an observation lands (a value equal to a bound is in
 * that bound's bucket, "le"), what is dropped, merging per-thread copies,
 * and which bucket sets hist_init() refuses.  The writer: names checked
 * before anything is written, label values and HELP escaped and made valid
 * UTF-8, numbers that read back exactly, cumulative buckets up to +Inf,
 * and one whole exposition compared octet for octet with the text
 * `promtool check metrics` accepts.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/hist.h"
#include "util/prom.h"

#define TEST_NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const double test_le3[] = {0.001, 0.01, 0.1};
static const struct hist_buckets test_b3 = {test_le3, TEST_NELEM(test_le3)};

/* The same bounds at another address: merge compares values. */
static const double test_le3_copy[] = {0.001, 0.01, 0.1};
static const struct hist_buckets test_b3_copy = {test_le3_copy, 3};

static const double test_le2[] = {0.5, 1};
static const struct hist_buckets test_b2 = {test_le2, TEST_NELEM(test_le2)};

/* A FILE * on memory, and what was written to it. */
struct test_out {
	FILE *fp;
	char *text;
	size_t len;
};

static void
test_out_open(struct test_out *o)
{
	o->text = NULL;
	o->len = 0;
	o->fp = open_memstream(&o->text, &o->len);
	assert_non_null(o->fp);
}

/* Closes the stream; the caller frees o->text. */
static const char *
test_out_close(struct test_out *o)
{
	assert_int_equal(fclose(o->fp), 0);
	o->fp = NULL;
	return o->text;
}

/* Writes one sample with a single label l=value, returns the text. */
static char *
test_one_label(const char *value)
{
	struct test_out o;
	struct prom_label l = {"l", value};

	test_out_open(&o);
	assert_int_equal(prom_sample_u64(o.fp, "m", &l, 1, 1), 0);
	test_out_close(&o);
	return o.text;
}

static void
test_hist_observe_le_buckets(void **state)
{
	struct hist h;

	(void)state;
	assert_int_equal(hist_init(&h, &test_b3), 0);
	hist_observe(&h, 0.001);  /* equal to the bound: that bucket */
	hist_observe(&h, 0.0011); /* just above: the next */
	hist_observe(&h, 0.1);
	hist_observe(&h, 0.2);	    /* above the top: +Inf */
	hist_observe(&h, -3);	    /* clock stepped back: counts as 0 */
	hist_observe(&h, NAN);	    /* dropped */
	hist_observe(&h, INFINITY); /* dropped */
	assert_int_equal(h.counts[0], 2);
	assert_int_equal(h.counts[1], 1);
	assert_int_equal(h.counts[2], 1);
	assert_int_equal(h.counts[3], 1);
	assert_int_equal(h.count, 5);
	assert_true(fabs(h.sum - (0.001 + 0.0011 + 0.1 + 0.2)) < 1e-12);
}

static void
test_hist_init_refuses_bad_sets(void **state)
{
	static const double unsorted[] = {0.1, 0.01};
	static const double dup[] = {0.1, 0.1};
	static const double nan[] = {0.1, NAN};
	static const double many[HIST_BUCKETS_MAX + 1] = {0};
	const struct hist_buckets bad[] = {
	    {test_le3, 0}, {NULL, 1}, {unsorted, 2},
	    {dup, 2},	   {nan, 2},  {many, HIST_BUCKETS_MAX + 1},
	};
	struct hist h;

	(void)state;
	for (size_t i = 0; i < TEST_NELEM(bad); i++) {
		assert_int_equal(hist_init(&h, &bad[i]), -1);
		assert_null(h.buckets);
		hist_observe(&h, 1); /* no buckets: ignored, no crash */
		assert_int_equal(h.count, 0);
	}
	assert_int_equal(hist_init(&h, NULL), -1);
}

static void
test_hist_predefined_sets(void **state)
{
	const struct hist_buckets *sets[] = {HIST_FSYNC, HIST_EOD,
					     HIST_DELIVERY};
	const double lo[] = {0.0001, 0.0005, 0.001};
	const double hi[] = {1, 10, 600};
	struct hist h;

	(void)state;
	for (size_t i = 0; i < TEST_NELEM(sets); i++) {
		assert_int_equal(hist_init(&h, sets[i]), 0);
		assert_true(sets[i]->le[0] == lo[i]);
		assert_true(sets[i]->le[sets[i]->n - 1] == hi[i]);
	}
}

static void
test_hist_merge_sums_thread_copies(void **state)
{
	const double obs[] = {0.0005, 0.002, 0.02, 0.05, 0.5, 7};
	struct hist one, a, b, total, other;

	(void)state;
	assert_int_equal(hist_init(&one, &test_b3), 0);
	assert_int_equal(hist_init(&a, &test_b3), 0);
	assert_int_equal(hist_init(&b, &test_b3_copy), 0);
	assert_int_equal(hist_init(&total, &test_b3), 0);
	for (size_t i = 0; i < TEST_NELEM(obs); i++) {
		hist_observe(&one, obs[i]);
		hist_observe(i % 2 ? &a : &b, obs[i]);
	}
	assert_int_equal(hist_merge(&total, &a), 0);
	assert_int_equal(hist_merge(&total, &b), 0);
	assert_memory_equal(total.counts, one.counts, sizeof(one.counts));
	assert_int_equal(total.count, one.count);
	assert_true(fabs(total.sum - one.sum) < 1e-12);

	/* Another bucket set: refused, dst untouched. */
	assert_int_equal(hist_init(&other, &test_b2), 0);
	hist_observe(&other, 0.7);
	assert_int_equal(hist_merge(&total, &other), -1);
	assert_int_equal(total.count, one.count);
	assert_memory_equal(total.counts, one.counts, sizeof(one.counts));
}

static void
test_prom_names(void **state)
{
	const char *good[] = {"a",	    "_",   ":", "postern_replies_total",
			      "job:rate5m", "A9_:"};
	const char *bad[] = {"", "9a", "a-b", "a b", "é", "a.b"};
	const char *lgood[] = {"a", "_a", "code", "L9"};
	const char *lbad[] = {"", "__name__", "__x", "9a", "a:b", "a-b"};

	(void)state;
	for (size_t i = 0; i < TEST_NELEM(good); i++)
		assert_true(prom_name_is_valid(good[i]));
	for (size_t i = 0; i < TEST_NELEM(bad); i++)
		assert_false(prom_name_is_valid(bad[i]));
	assert_false(prom_name_is_valid(NULL));
	for (size_t i = 0; i < TEST_NELEM(lgood); i++)
		assert_true(prom_label_name_is_valid(lgood[i]));
	for (size_t i = 0; i < TEST_NELEM(lbad); i++)
		assert_false(prom_label_name_is_valid(lbad[i]));
}

static void
test_prom_invalid_writes_nothing(void **state)
{
	struct prom_label dup[] = {{"a", "1"}, {"a", "2"}};
	struct prom_label badname[] = {{"__a", "1"}};
	struct prom_label nullval[] = {{"a", NULL}};
	struct prom_label le[] = {{"le", "1"}};
	struct test_out o;
	struct hist h;

	(void)state;
	assert_int_equal(hist_init(&h, &test_b3), 0);
	test_out_open(&o);
	assert_int_equal(prom_help_type(o.fp, "bad-name", "x", PROM_GAUGE), -1);
	assert_int_equal(prom_sample_u64(o.fp, "9", NULL, 0, 1), -1);
	assert_int_equal(prom_sample_u64(o.fp, "m", dup, 2, 1), -1);
	assert_int_equal(prom_sample_u64(o.fp, "m", badname, 1, 1), -1);
	assert_int_equal(prom_sample_f64(o.fp, "m", nullval, 1, 1), -1);
	assert_int_equal(prom_sample_u64(o.fp, "m", NULL, 1, 1), -1);
	assert_int_equal(prom_hist(o.fp, "m", le, 1, &h), -1);
	assert_int_equal(prom_hist(o.fp, "m-x", NULL, 0, &h), -1);
	/* "le" is fine on a plain sample. */
	assert_int_equal(prom_sample_u64(o.fp, "m", le, 1, 1), 0);
	test_out_close(&o);
	assert_string_equal(o.text, "m{le=\"1\"} 1\n");
	free(o.text);
}

static void
test_prom_label_value_escaping(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"", "m{l=\"\"} 1\n"},
	    {"plain", "m{l=\"plain\"} 1\n"},
	    {"a\\b", "m{l=\"a\\\\b\"} 1\n"},
	    {"say \"hi\"", "m{l=\"say \\\"hi\\\"\"} 1\n"},
	    {"two\nlines", "m{l=\"two\\nlines\"} 1\n"},
	    /* Other controls and {},= pass as they are. */
	    {"t\tr\r{a=b,c}", "m{l=\"t\tr\r{a=b,c}\"} 1\n"},
	    /* Well-formed UTF-8 kept. */
	    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa8",
	     "m{l=\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa8\"} 1\n"},
	    /* Stray, overlong, surrogate, past U+10FFFF, cut short. */
	    {"a\xff", "m{l=\"a\xef\xbf\xbd\"} 1\n"},
	    {"\xc0\xaf", "m{l=\"\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"},
	    {"\xed\xa0\x80",
	     "m{l=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"},
	    {"\xf4\x90\x80\x80z",
	     "m{l=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz\"}"
	     " 1\n"},
	    {"\xe2\x82", "m{l=\"\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"},
	};

	(void)state;
	for (size_t i = 0; i < TEST_NELEM(cases); i++) {
		char *text = test_one_label(cases[i].in);

		assert_string_equal(text, cases[i].out);
		free(text);
	}
}

static void
test_prom_help_escaping(void **state)
{
	struct test_out o;

	(void)state;
	test_out_open(&o);
	assert_int_equal(prom_help_type(o.fp, "m_total", "a\\b \"q\"\nnext\xff",
					PROM_COUNTER),
			 0);
	assert_int_equal(prom_help_type(o.fp, "g", NULL, PROM_GAUGE), 0);
	test_out_close(&o);
	assert_string_equal(o.text, "# HELP m_total a\\\\b \"q\"\\nnext"
				    "\xef\xbf\xbd\n"
				    "# TYPE m_total counter\n"
				    "# TYPE g gauge\n");
	free(o.text);
}

static void
test_prom_numbers(void **state)
{
	static const struct {
		double v;
		const char *out;
	} cases[] = {
	    {0, "0"},
	    {1, "1"},
	    {-2.5, "-2.5"},
	    {0.1, "0.1"},
	    {0.1 + 0.2, "0.30000000000000004"},
	    {0.00001, "1e-05"},
	    {1e21, "1e+21"},
	    {9007199254740993.0, "9007199254740992"},
	    {1.0 / 3, "0.3333333333333333"},
	    {INFINITY, "+Inf"},
	    {-INFINITY, "-Inf"},
	    {NAN, "NaN"},
	};
	char buf[PROM_DOUBLE_MAX];
	struct test_out o;

	(void)state;
	for (size_t i = 0; i < TEST_NELEM(cases); i++) {
		assert_int_equal(
		    prom_format_double(buf, sizeof(buf), cases[i].v), 0);
		assert_string_equal(buf, cases[i].out);
		if (isfinite(cases[i].v))
			assert_true(strtod(buf, NULL) == cases[i].v);
	}
	assert_int_equal(prom_format_double(buf, 3, 0.125), -1);
	assert_string_equal(buf, "");

	test_out_open(&o);
	assert_int_equal(prom_sample_u64(o.fp, "u", NULL, 0, UINT64_MAX), 0);
	assert_int_equal(prom_sample_f64(o.fp, "f", NULL, 0, 1.5), 0);
	test_out_close(&o);
	assert_string_equal(o.text, "u 18446744073709551615\nf 1.5\n");
	free(o.text);
}

static void
test_prom_hist_cumulative(void **state)
{
	struct prom_label l[] = {{"via", "lmtp"}};
	struct test_out o;
	struct hist h;

	(void)state;
	assert_int_equal(hist_init(&h, &test_b2), 0);
	test_out_open(&o);
	/* Empty: every bucket 0, sum 0. */
	assert_int_equal(prom_hist(o.fp, "d_seconds", l, 1, &h), 0);
	hist_observe(&h, 0.25);
	hist_observe(&h, 0.75);
	hist_observe(&h, 1);
	hist_observe(&h, 4);
	assert_int_equal(prom_hist(o.fp, "d_seconds", l, 1, &h), 0);
	test_out_close(&o);
	assert_string_equal(o.text,
			    "d_seconds_bucket{via=\"lmtp\",le=\"0.5\"} 0\n"
			    "d_seconds_bucket{via=\"lmtp\",le=\"1\"} 0\n"
			    "d_seconds_bucket{via=\"lmtp\",le=\"+Inf\"} 0\n"
			    "d_seconds_sum{via=\"lmtp\"} 0\n"
			    "d_seconds_count{via=\"lmtp\"} 0\n"
			    "d_seconds_bucket{via=\"lmtp\",le=\"0.5\"} 1\n"
			    "d_seconds_bucket{via=\"lmtp\",le=\"1\"} 3\n"
			    "d_seconds_bucket{via=\"lmtp\",le=\"+Inf\"} 4\n"
			    "d_seconds_sum{via=\"lmtp\"} 6\n"
			    "d_seconds_count{via=\"lmtp\"} 4\n");
	free(o.text);
}

/* What `promtool check metrics` accepts without a word (checked by hand). */
static const char test_exposition[] =
    "# HELP postern_replies_total Replies sent, by code and reason.\n"
    "# TYPE postern_replies_total counter\n"
    "postern_replies_total{code=\"250\",enhanced=\"2.0.0\",reason=\"ok\"}"
    " 12\n"
    "postern_replies_total{code=\"450\",enhanced=\"4.2.0\","
    "reason=\"greylisted\"} 3\n"
    "# HELP postern_sessions_open SMTP sessions open now.\n"
    "# TYPE postern_sessions_open gauge\n"
    "postern_sessions_open 2\n"
    "# HELP postern_queue_destination_recipients Queued recipients by "
    "destination.\n"
    "# TYPE postern_queue_destination_recipients gauge\n"
    "postern_queue_destination_recipients{destination=\"a\\\"b\\\\c\\n\"}"
    " 1\n"
    "# HELP postern_spool_fsync_seconds Group-commit fsync time.\n"
    "# TYPE postern_spool_fsync_seconds histogram\n"
    "postern_spool_fsync_seconds_bucket{le=\"0.001\"} 1\n"
    "postern_spool_fsync_seconds_bucket{le=\"0.01\"} 3\n"
    "postern_spool_fsync_seconds_bucket{le=\"0.1\"} 3\n"
    "postern_spool_fsync_seconds_bucket{le=\"+Inf\"} 4\n"
    "postern_spool_fsync_seconds_sum 2.0166015625\n"
    "postern_spool_fsync_seconds_count 4\n"
    "# HELP postern_uptime_seconds Seconds since the server started.\n"
    "# TYPE postern_uptime_seconds gauge\n"
    "postern_uptime_seconds 0.1\n";

static void
test_prom_full_exposition(void **state)
{
	struct prom_label ok[] = {
	    {"code", "250"}, {"enhanced", "2.0.0"}, {"reason", "ok"}};
	struct prom_label grey[] = {
	    {"code", "450"}, {"enhanced", "4.2.0"}, {"reason", "greylisted"}};
	struct prom_label dest[] = {{"destination", "a\"b\\c\n"}};
	struct test_out o;
	struct hist h;
	FILE *fp;

	(void)state;
	/* Dyadic values: the sum is exact, so the text is fixed. */
	assert_int_equal(hist_init(&h, &test_b3), 0);
	hist_observe(&h, 0.0009765625);
	hist_observe(&h, 0.0078125);
	hist_observe(&h, 0.0078125);
	hist_observe(&h, 2);

	test_out_open(&o);
	fp = o.fp;
	assert_int_equal(prom_help_type(fp, "postern_replies_total",
					"Replies sent, by code and reason.",
					PROM_COUNTER),
			 0);
	assert_int_equal(
	    prom_sample_u64(fp, "postern_replies_total", ok, 3, 12), 0);
	assert_int_equal(
	    prom_sample_u64(fp, "postern_replies_total", grey, 3, 3), 0);
	assert_int_equal(prom_help_type(fp, "postern_sessions_open",
					"SMTP sessions open now.", PROM_GAUGE),
			 0);
	assert_int_equal(
	    prom_sample_u64(fp, "postern_sessions_open", NULL, 0, 2), 0);
	assert_int_equal(
	    prom_help_type(fp, "postern_queue_destination_recipients",
			   "Queued recipients by destination.", PROM_GAUGE),
	    0);
	assert_int_equal(prom_sample_u64(fp,
					 "postern_queue_destination_recipients",
					 dest, 1, 1),
			 0);
	assert_int_equal(prom_help_type(fp, "postern_spool_fsync_seconds",
					"Group-commit fsync time.",
					PROM_HISTOGRAM),
			 0);
	assert_int_equal(
	    prom_hist(fp, "postern_spool_fsync_seconds", NULL, 0, &h), 0);
	assert_int_equal(prom_help_type(fp, "postern_uptime_seconds",
					"Seconds since the server started.",
					PROM_GAUGE),
			 0);
	assert_int_equal(
	    prom_sample_f64(fp, "postern_uptime_seconds", NULL, 0, 0.1), 0);
	test_out_close(&o);
	assert_string_equal(o.text, test_exposition);
	free(o.text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hist_observe_le_buckets),
	    cmocka_unit_test(test_hist_init_refuses_bad_sets),
	    cmocka_unit_test(test_hist_predefined_sets),
	    cmocka_unit_test(test_hist_merge_sums_thread_copies),
	    cmocka_unit_test(test_prom_names),
	    cmocka_unit_test(test_prom_invalid_writes_nothing),
	    cmocka_unit_test(test_prom_label_value_escaping),
	    cmocka_unit_test(test_prom_help_escaping),
	    cmocka_unit_test(test_prom_numbers),
	    cmocka_unit_test(test_prom_hist_cumulative),
	    cmocka_unit_test(test_prom_full_exposition),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
