/*
 * test_status_page.c - the status page and its JSON (src/server/
 * status_page.c, issue 19).
 *
 * Accept-Language -> language as a table; hostile strings from the view
 * (remote replies, a destination, the host name, bytes that are not
 * UTF-8, a field without its NUL) appear only escaped; the chart has a
 * bar per minute with heights proportional to the counts, stacked; a 4xx
 * row carries `postern explain`'s words in the page's language; the three
 * JSON documents parse (a small RFC 8259 checker below) and escape.
 *
 * With STATUS_PAGE_SAMPLE=FILE (and STATUS_PAGE_LANG=xx) the sample view
 * is also written to FILE, to look at in a browser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "explain/explain.h"
#include "server/status_page.h"

#define N_OF(a) (sizeof(a) / sizeof(a)[0])
#define NOW INT64_C(1796000000)
#define JSON_DEPTH_MAX 64

/* --- status_lang ---------------------------------------------------- */

/* clang-format off */
static const struct {
	const char *header, *want;
} lang_cases[] = {
	{ NULL, "en" },
	{ "", "en" },
	{ "fr", "fr" },
	{ "fr-CA", "fr" },
	{ "FR-ca", "fr" },
	{ "de", "en" },
	{ "de, fr;q=0.5", "fr" },
	{ "ko;q=0.3, tr;q=0.8", "tr" },
	{ "id, fr", "id" },			/* tie: first written */
	{ "fr;q=0.5, ko;q=0.5", "fr" },
	{ "*", "en" },
	{ "*;q=0.5, en;q=0", "id" },		/* "*" is every other one */
	{ "fr;q=0, *", "en" },
	{ "en;q=0, fr;q=0", "en" },		/* none acceptable */
	{ "da, en-GB;q=0.8, en;q=0.7", "en" },
	{ "zh-Hant-TW, ko-KR;q=0.9", "ko" },
	{ "tr;q=1.0", "tr" },
	{ "tr;q=1.000, id;q=0.999", "tr" },
	{ "fr;Q=0.5", "fr" },
	{ "fr ; q=0.9 , id;q=0.8", "fr" },	/* OWS around ";" */
	{ ",,, tr ,,", "tr" },			/* empty list elements */
	{ "x-klingon, id", "id" },
	/* Malformed elements are skipped, the rest still counts. */
	{ "tr;q=1.5, fr", "fr" },
	{ "ko;q=0.0001, fr;q=0.001", "fr" },
	{ "fr;q=0.8;foo=bar, ko;q=0.5", "ko" },
	{ "fr;q=, ko;q=0.1", "ko" },
	{ "fr;q=.5", "en" },
	{ "<script>, ko", "ko" },
	{ "francaisxyz, tr;q=0.2", "tr" },
	{ "fr-", "en" },
	{ "1fr", "en" },
	{ "\xff\xfe", "en" },
	{ "e", "en" },
};
/* clang-format on */

static void
test_lang_from_accept_language(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_OF(lang_cases); i++) {
		const char *got = status_lang(lang_cases[i].header);

		if (strcmp(got, lang_cases[i].want) != 0)
			fail_msg("'%s': got %s, want %s",
				 lang_cases[i].header ? lang_cases[i].header
						      : "(null)",
				 got, lang_cases[i].want);
	}
}

/* --- a sample view -------------------------------------------------- */

/* clang-format off */
static struct status_reply sample_replies[] = {
	{ 250, "2.0.0", "ok", "250 2.0.0 Ok: queued", 812 },
	{ 450, "4.2.0", "greylisted", "450 4.2.0 Greylisted, retry in 60 s",
	  57 },
	{ 451, "4.7.1", "milter_tempfail", "451 4.7.1 Try again later", 3 },
	{ 550, "5.1.1", "no_such_user", "550 5.1.1 No such user here", 21 },
	{ 452, "4.5.3", "too_many_rcpts", "", 2 },
};

static struct status_dest sample_dests[] = {
	{ "example.org", 12, "451 4.4.1 Connection timed out", NOW + 300 },
	{ "mail.example.net", 1,
	  "421-4.7.0 Try again later\n421 4.7.0 (rate limited)", NOW - 20 },
	{ "slow.example", 3, "", 0 },
};
/* clang-format on */

static void
sample_view(struct status_view *v)
{
	memset(v, 0, sizeof *v);
	v->hostname = "mx.example.test";
	v->version = "0.1.0";
	v->now = NOW;
	v->started = NOW - (3 * 86400 + 4 * 3600 + 5 * 60 + 7);
	v->sessions_open = 7;
	for (int i = 0; i < STATUS_MINUTES; i++) {
		v->minute[i][0] = (uint64_t)(10 + (i * 7) % 13);
		v->minute[i][1] = (uint64_t)(i % 5 == 0 ? 4 : i % 3);
		v->minute[i][2] = (uint64_t)(i % 11 == 0 ? 2 : 0);
	}
	v->replies = sample_replies;
	v->n_replies = N_OF(sample_replies);
	v->dests = sample_dests;
	v->n_dests = N_OF(sample_dests);
}

static void
test_write_sample(void **state)
{
	const char *path = getenv("STATUS_PAGE_SAMPLE");
	const char *lang = getenv("STATUS_PAGE_LANG");
	struct status_view v;
	char *page;
	FILE *fp;

	(void)state;
	if (path == NULL)
		skip();
	sample_view(&v);
	page = status_page_html(&v, lang != NULL ? lang : "en");
	assert_non_null(page);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(page, fp);
	assert_int_equal(fclose(fp), 0);
	free(page);
}

/* --- the page ------------------------------------------------------- */

static size_t
count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* s as the page writes text: & < > " ' escaped. */
static char *
html_escaped(const char *s)
{
	char *buf = NULL;
	size_t len;
	FILE *fp = open_memstream(&buf, &len);

	assert_non_null(fp);
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", fp);
			break;
		case '<':
			fputs("&lt;", fp);
			break;
		case '>':
			fputs("&gt;", fp);
			break;
		case '"':
			fputs("&quot;", fp);
			break;
		case '\'':
			fputs("&#39;", fp);
			break;
		default:
			fputc(*s, fp);
		}
	}
	fclose(fp);
	return buf;
}

static void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("missing: %s", needle);
}

static void
assert_lacks(const char *hay, const char *needle)
{
	if (strstr(hay, needle) != NULL)
		fail_msg("present: %s", needle);
}

static void
test_page_sections_and_words(void **state)
{
	struct status_view v;
	char *page;

	(void)state;
	sample_view(&v);
	page = status_page_html(&v, "en");
	assert_non_null(page);
	assert_true(strncmp(page, "<!DOCTYPE html>", 15) == 0);
	assert_contains(page, "<html lang=\"en\">");
	assert_contains(page, "<meta http-equiv=\"refresh\" content=\"30\">");
	assert_contains(page, "<h1>mx.example.test</h1>");
	assert_contains(page, "<b>0.1.0</b>");
	assert_contains(page, "3 d 4 h 5 min");
	assert_contains(page, "Sessions open: <span class=\"big\">7</span>");
	assert_contains(page, "Replies in the last hour");
	assert_contains(page, "Why mail was refused for now (4xx)");
	assert_contains(page, "Queue by destination");
	assert_contains(page, "in 5 min");
	assert_contains(page, "due now");
	assert_contains(page, "<time datetime=\"2026-11-30T00:58:20Z\">");
	assert_contains(page, "href=\"/api/status\"");
	assert_contains(page, "href=\"/api/replies\"");
	assert_contains(page, "href=\"/api/queue\"");
	assert_contains(page, "href=\"/metrics\"");
	/* Accessible: table headers, a labelled and described chart. */
	assert_contains(page, "<th scope=\"col\">");
	assert_contains(page, "<th scope=\"row\">example.org</th>");
	assert_contains(page, "role=\"img\" aria-label=\"Replies per minute");
	assert_contains(page, "<desc id=\"chart-desc\">");
	assert_contains(page, "<title>Replies per minute, last hour</title>");
	/* Self-contained: nothing fetched, nothing run. */
	assert_lacks(page, "<script");
	assert_lacks(page, "src=");
	assert_lacks(page, "<link");
	/* The 4xx section lists the 4xx rows only, the last one without a
	 * line as code and enhanced code. */
	assert_contains(page,
			"<code>450 4.2.0 Greylisted, retry in 60 s</code>");
	assert_contains(page, "<code>452 4.5.3</code>");
	assert_lacks(page, "<code>550 5.1.1 No such user here</code>");
	/* The table by code sums the rows of one code. */
	assert_contains(page, "<tr><th scope=\"row\">250</th><td class=\"n\">"
			      "812</td>");
	free(page);
}

static void
test_page_empty_view(void **state)
{
	struct status_view v;
	char *page;

	(void)state;
	memset(&v, 0, sizeof v);
	v.hostname = "mx";
	v.version = "x";
	v.now = v.started = NOW;
	page = status_page_html(&v, NULL);
	assert_non_null(page);
	assert_contains(page, "<html lang=\"en\">");
	assert_contains(page, "No replies in the last hour.");
	assert_contains(page, "No mail was refused for now in the last hour.");
	assert_contains(page, "The queue is empty.");
	assert_int_equal(count_of(page, "<g class=\"bar\""), STATUS_MINUTES);
	assert_int_equal(count_of(page, "<rect class="), 0);
	free(page);
}

static void
test_page_escapes_hostile_strings(void **state)
{
	struct status_reply r[] = {
	    {451, "4.7.1\"><i>", "x\"y<z>",
	     "451 4.7.1 <svg onload=alert(2)> caf\xc3\xa9 \xff\xfe", 1},
	};
	struct status_dest d[2] = {
	    {"<img src=x onerror=alert(1)>", 1, "<script>alert(1)</script>",
	     NOW + 60},
	};
	struct status_view v;
	char *page;

	(void)state;
	/* A destination that fills its array, with no NUL. */
	memset(d[1].destination, 'A', sizeof d[1].destination);
	memset(&v, 0, sizeof v);
	v.hostname = "<b>mx</b>";
	v.version = "1\"><x>";
	v.now = v.started = NOW;
	v.replies = r;
	v.n_replies = N_OF(r);
	v.dests = d;
	v.n_dests = N_OF(d);
	page = status_page_html(&v, "fr");
	assert_non_null(page);
	assert_lacks(page, "<script");
	assert_lacks(page, "<img");
	assert_lacks(page, "<svg onload");
	assert_lacks(page, "<b>mx</b>");
	assert_lacks(page, "<i>");
	assert_lacks(page, "<x>");
	assert_lacks(page, "<z>");
	assert_lacks(page, "\xff");
	assert_contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;");
	assert_contains(page, "&lt;img src=x onerror=alert(1)&gt;");
	assert_contains(page, "&lt;svg onload=alert(2)&gt; caf\xc3\xa9 "
			      "\xef\xbf\xbd\xef\xbf\xbd");
	assert_contains(page, "<h1>&lt;b&gt;mx&lt;/b&gt;</h1>");
	assert_contains(page, "1&quot;&gt;&lt;x&gt;");
	assert_contains(page, "x&quot;y&lt;z&gt;");
	/* The unterminated field: all of it and not a byte more. */
	{
		char want[sizeof d[1].destination + 32];

		memset(want, 'A', sizeof d[1].destination);
		snprintf(want + sizeof d[1].destination, 32, "</th>");
		assert_contains(page, want);
	}
	free(page);
}

/* --- the chart ------------------------------------------------------ */

/* The number in the first NAME="..." at or after p. */
static double
attr(const char *p, const char *name)
{
	char key[32];
	const char *at;
	char *end;
	double d;

	snprintf(key, sizeof key, " %s=\"", name);
	at = strstr(p, key);
	assert_non_null(at);
	d = strtod(at + strlen(key), &end);
	assert_true(*end == '"');
	return d;
}

static void
test_chart_bars_proportional(void **state)
{
	static const char cls[STATUS_CLASSES] = {'2', '4', '5'};
	struct status_view v;
	const char *p;
	double ratio = 0;
	char *page;

	(void)state;
	sample_view(&v);
	v.minute[17][0] = 0; /* a minute with no 2xx: no rect for it */
	page = status_page_html(&v, "en");
	assert_non_null(page);
	assert_int_equal(count_of(page, "<g class=\"bar\""), STATUS_MINUTES);
	p = page;
	for (int i = 0; i < STATUS_MINUTES; i++) {
		const char *end;
		double below = -1;

		p = strstr(p, "<g class=\"bar\"");
		assert_non_null(p);
		end = strstr(p, "</g>");
		assert_non_null(end);
		for (int k = 0; k < STATUS_CLASSES; k++) {
			char tag[32];
			const char *r;
			double y, h;

			snprintf(tag, sizeof tag, "<rect class=\"c%c\"",
				 cls[k]);
			r = strstr(p, tag);
			if (v.minute[i][k] == 0) {
				assert_true(r == NULL || r > end);
				continue;
			}
			assert_true(r != NULL && r < end);
			y = attr(r, "y");
			h = attr(r, "height");
			if (ratio == 0)
				ratio = h / (double)v.minute[i][k];
			/* Proportional to the count, within the rounding of
			 * the printed two decimals. */
			assert_true(h > (double)v.minute[i][k] * ratio - 0.02 &&
				    h < (double)v.minute[i][k] * ratio + 0.02);
			/* Stacked: each class sits on the one below it. */
			if (below >= 0)
				assert_true(y + h > below - 0.02 &&
					    y + h < below + 0.02);
			below = y;
		}
		p = end;
	}
	assert_true(ratio > 0);
	free(page);
}

/* --- explanations --------------------------------------------------- */

/* What `postern explain CODE --lang L` prints, as text. */
static char *
explain_text(const char *code, const char *lang)
{
	const char *in[1] = {code};
	char err[256], *buf = NULL;
	size_t len;
	struct explain_doc *doc =
	    explain_doc_new(in, 1, explain_lang_find(lang), err, sizeof err);
	FILE *fp = open_memstream(&buf, &len);

	assert_non_null(doc);
	assert_non_null(fp);
	assert_int_equal(explain_render_text(fp, doc, false, 0), 0);
	fclose(fp);
	explain_doc_free(doc);
	return buf;
}

/* The page in lang holds explain's heading and text, both as explain
 * prints them for that language. */
static void
assert_explained(const char *page, const char *code, const char *lang)
{
	const struct explain_lang *l = explain_lang_find(lang);
	const struct explain_code *row = explain_find(code);
	char *text = explain_text(code, lang);
	const char *pairs[][2] = {{l->h_description, row->description},
				  {l->h_fix, row->fix}};

	for (size_t i = 0; i < N_OF(pairs); i++) {
		char *h = html_escaped(pairs[i][0]);
		char *b = html_escaped(pairs[i][1]);

		assert_contains(text, pairs[i][0]);
		assert_contains(text, pairs[i][1]);
		assert_contains(page, h);
		assert_contains(page, b);
		free(h);
		free(b);
	}
	free(text);
}

static void
test_4xx_row_explained_in_fr(void **state)
{
	struct status_reply r[] = {
	    {451, "4.7.1", "milter_tempfail", "451 4.7.1 Try again later", 3},
	};
	struct status_view v;
	const char *row;
	char *page;

	(void)state;
	memset(&v, 0, sizeof v);
	v.hostname = "mx";
	v.version = "x";
	v.now = v.started = NOW;
	v.replies = r;
	v.n_replies = 1;
	page = status_page_html(&v, "fr");
	assert_non_null(page);
	assert_contains(page, "<html lang=\"fr\">");
	assert_contains(page, "Pourquoi du courrier a été refusé");
	/* Inside the 4xx section's row. */
	row = strstr(page, "<code>451 4.7.1 Try again later</code>");
	assert_non_null(row);
	assert_explained(row, "451", "fr");
	assert_explained(row, "4.7.1", "fr");
	assert_contains(row, "Comment résoudre");
	free(page);

	page = status_page_html(&v, "ko");
	assert_non_null(page);
	assert_explained(page, "451", "ko");
	free(page);
}

static void
test_queue_last_reply_explained(void **state)
{
	struct status_view v;
	char *page;

	(void)state;
	sample_view(&v);
	page = status_page_html(&v, "tr");
	assert_non_null(page);
	assert_contains(page, "<html lang=\"tr\">");
	assert_explained(strstr(page, "<th scope=\"row\">example.org</th>"),
			 "4.4.1", "tr");
	/* The multi-line reply: both lines shown, its codes explained. */
	assert_explained(strstr(page, "mail.example.net"), "421", "tr");
	assert_contains(page, "<code>421-4.7.0 Try again later\n421 4.7.0 "
			      "(rate limited)</code>");
	/* No reply yet, no try scheduled: dashes. */
	assert_contains(page, "<th scope=\"row\">slow.example</th><td "
			      "class=\"n\">3</td><td>&#8212;</td><td>&#8212;"
			      "</td><td>&#8212;</td>");
	assert_contains(page, "5 dk sonra");
	free(page);
}

/* --- JSON ----------------------------------------------------------- */

static const char *json_value(const char *p, int depth);

static const char *
json_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *
json_string(const char *p)
{
	for (p++; *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p != '\\')
			continue;
		p++;
		if (*p == 'u') {
			for (int i = 1; i <= 4; i++)
				if (strchr("0123456789abcdefABCDEF", p[i]) ==
					NULL ||
				    p[i] == '\0')
					return NULL;
			p += 4;
		} else if (*p == '\0' || strchr("\"\\/bfnrt", *p) == NULL) {
			return NULL;
		}
	}
	return p + 1;
}

static const char *
json_number(const char *p)
{
	const char *d;

	if (*p == '-')
		p++;
	d = p;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p == d || (*d == '0' && p - d > 1))
		return NULL;
	if (*p == '.') {
		d = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == d)
			return NULL;
	}
	return p;
}

/* Members or elements up to close; p is past the opening bracket. */
static const char *
json_list(const char *p, char close, int depth)
{
	p = json_ws(p);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (close == '}') {
			if (*p != '"' || (p = json_string(p)) == NULL)
				return NULL;
			p = json_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		if ((p = json_value(p, depth + 1)) == NULL)
			return NULL;
		p = json_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
		p = json_ws(p);
	}
}

static const char *
json_value(const char *p, int depth)
{
	if (depth > JSON_DEPTH_MAX)
		return NULL;
	p = json_ws(p);
	switch (*p) {
	case '{':
		return json_list(p + 1, '}', depth);
	case '[':
		return json_list(p + 1, ']', depth);
	case '"':
		return json_string(p);
	case 't':
		return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
	case 'f':
		return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
	case 'n':
		return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
	default:
		return json_number(p);
	}
}

static void
assert_json(const char *doc)
{
	const char *end = json_value(doc, 0);

	if (end == NULL || *json_ws(end) != '\0')
		fail_msg("not JSON near offset %td: %.60s",
			 end ? end - doc : (ptrdiff_t)-1, doc);
}

static void
test_json_documents(void **state)
{
	struct status_view v;
	char *s;

	(void)state;
	sample_view(&v);
	s = status_json(&v, "status", "en");
	assert_non_null(s);
	assert_json(s);
	assert_contains(s, "\"schema\": \"postern-status/1\"");
	assert_contains(s, "\"hostname\": \"mx.example.test\"");
	assert_contains(s, "\"sessions_open\": 7");
	assert_contains(s, "\"uptime\": 273907");
	assert_contains(s, "\"queue\": {\"destinations\": 3, "
			   "\"recipients\": 16}");
	assert_int_equal(count_of(s, "["), STATUS_MINUTES + 1);
	free(s);

	s = status_json(&v, "replies", "fr");
	assert_non_null(s);
	assert_json(s);
	assert_contains(s, "\"lang\": \"fr\"");
	assert_contains(s, "\"line\": \"450 4.2.0 Greylisted, retry in 60 s\"");
	assert_contains(s, "\"count\": 57");
	assert_contains(s, "\"schema\": \"postern-explain/1\"");
	assert_contains(s, "\"fix\": \"Comment résoudre\"");
	free(s);

	s = status_json(&v, "queue", "en");
	assert_non_null(s);
	assert_json(s);
	assert_contains(s, "\"next_try\": 1796000300");
	assert_contains(s, "\"next_try\": null");
	assert_contains(s, "\"last_reply\": \"421-4.7.0 Try again later\\n"
			   "421 4.7.0 (rate limited)\"");
	/* slow.example has no reply yet: nothing to explain. */
	assert_contains(s, "\"last_reply\": \"\", \"next_try\": null,\n"
			   "\"explanation\": null}");
	free(s);

	assert_null(status_json(&v, "nope", "en"));
	assert_null(status_json(&v, NULL, "en"));
}

static void
test_json_escapes(void **state)
{
	struct status_reply r[] = {
	    {451, "4.7.1", "a\"b", "451 4.7.1 \"q\" \\ \x01\t\xff end", 1},
	};
	struct status_dest d[] = {
	    {"a\"b\\c\x01<x>", 1, "<script>alert(1)</script>", 0},
	};
	static const char *const which[] = {"status", "replies", "queue"};
	struct status_view v;

	(void)state;
	memset(&v, 0, sizeof v);
	v.hostname = "h\"\\\n";
	v.version = "\x7f";
	v.now = v.started = NOW;
	v.replies = r;
	v.n_replies = 1;
	v.dests = d;
	v.n_dests = 1;
	for (size_t i = 0; i < N_OF(which); i++) {
		char *s = status_json(&v, which[i], "ko");

		assert_non_null(s);
		assert_json(s);
		assert_lacks(s, "\xff");
		assert_lacks(s, "\x01");
		assert_lacks(s, "\x7f");
		if (i == 0) {
			assert_contains(s, "\"hostname\": \"h\\\"\\\\\\n\"");
			assert_contains(s, "\"version\": \"\\u007f\"");
		} else if (i == 1) {
			assert_contains(s, "\"line\": \"451 4.7.1 \\\"q\\\" "
					   "\\\\ \\u0001\\t\\ufffd end\"");
		} else {
			assert_contains(s, "\"destination\": "
					   "\"a\\\"b\\\\c\\u0001<x>\"");
		}
		free(s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lang_from_accept_language),
	    cmocka_unit_test(test_page_sections_and_words),
	    cmocka_unit_test(test_page_empty_view),
	    cmocka_unit_test(test_page_escapes_hostile_strings),
	    cmocka_unit_test(test_chart_bars_proportional),
	    cmocka_unit_test(test_4xx_row_explained_in_fr),
	    cmocka_unit_test(test_queue_last_reply_explained),
	    cmocka_unit_test(test_json_documents),
	    cmocka_unit_test(test_json_escapes),
	    cmocka_unit_test(test_write_sample),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
