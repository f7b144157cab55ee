/*
 * site.c - `postern explain --site DIR`: the whole reference as a static
 * site, in every language of ref/lang.def.
 *
 *   DIR/index.html                 the languages
 *   DIR/LANG/index.html            every code and every comparison
 *   DIR/LANG/421.html              a page per basic code
 *   DIR/LANG/5.7.26.html           a page per enhanced code and class
 *   DIR/LANG/compare/A-vs-B.html   the seeds' pairs and the pairs people
 *                                  confuse most (pairs[] below)
 *
 * Every page links to its language's index and to the same page in the
 * other languages; links are relative, so DIR can be served from
 * anywhere or opened from disk.  Pages are written with stdio; the first
 * failure stops the run and is reported in err.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "explain/explain_int.h"

#define DIR_MODE 0755
#define NAME_BUF 64

/* The seeds' comparisons first, then commonly confused pairs. */
static const char *const pairs[][2] = {
	{ "421", "451" }, { "421", "551" }, { "421", "450" },
	{ "220", "451" }, { "421", "455" },
	{ "421", "452" }, { "450", "451" }, { "450", "452" },
	{ "451", "452" }, { "550", "551" }, { "550", "553" },
	{ "550", "554" }, { "551", "553" }, { "551", "554" },
	{ "553", "554" }, { "450", "550" }, { "452", "552" },
	{ "251", "551" }, { "530", "535" }, { "4.7.1", "5.7.1" },
	{ "5.1.1", "5.7.1" }, { "5.7.1", "5.7.26" },
};

#define N_PAIRS (sizeof pairs / sizeof pairs[0])

struct site {
	const char *dir;
	const struct explain_lang *lang;
	char *err;
	size_t errlen;
	int pages;
};

static const char *
code_page(const struct explain_item *it, char *buf, size_t size)
{
	if (it->class_digit == 0 && it->row->kind == EXPLAIN_ENHANCED)
		return NULL;
	snprintf(buf, size, "%s.html", it->code);
	return buf;
}

static void
pair_page(size_t i, char *buf, size_t size)
{
	snprintf(buf, size, "compare/%s-vs-%s.html", pairs[i][0], pairs[i][1]);
}

static int
make_dir(struct site *s, const char *path)
{
	if (mkdir(path, DIR_MODE) == 0 || errno == EEXIST)
		return 0;
	snprintf(s->err, s->errlen, "cannot create %s: %s; check the path "
	    "and its permissions", path, strerror(errno));
	return -1;
}

static FILE *
open_page(struct site *s, const char *lang, const char *page, char *path,
    size_t size)
{
	FILE *fp;

	if (lang != NULL)
		snprintf(path, size, "%s/%s/%s", s->dir, lang, page);
	else
		snprintf(path, size, "%s/%s", s->dir, page);
	fp = fopen(path, "w");
	if (fp == NULL)
		snprintf(s->err, s->errlen, "cannot write %s: %s", path,
		    strerror(errno));
	return fp;
}

static int
close_page(struct site *s, FILE *fp, const char *path)
{
	bool is_bad = ferror(fp) != 0;

	if (fclose(fp) != 0 || is_bad) {
		snprintf(s->err, s->errlen, "cannot write %s: %s", path,
		    strerror(errno));
		return -1;
	}
	s->pages++;
	return 0;
}

static void
link_item(FILE *fp, const char *root, const struct explain_item *it)
{
	char page[NAME_BUF];

	if (code_page(it, page, sizeof page) == NULL)
		return;
	fprintf(fp, "<li><a href=\"%s%s\">%s ", root, page, it->code);
	explain_html_escape(fp, it->row->name);
	fputs("</a></li>\n", fp);
}

static void
link_pair(FILE *fp, const char *root, size_t i)
{
	struct explain_item a, b;
	char page[NAME_BUF];

	if (explain_item_set(&a, pairs[i][0]) != 0 ||
	    explain_item_set(&b, pairs[i][1]) != 0)
		return;
	pair_page(i, page, sizeof page);
	fprintf(fp, "<li><a href=\"%s%s\">%s ", root, page, a.code);
	explain_html_escape(fp, a.row->name);
	fprintf(fp, " vs %s ", b.code);
	explain_html_escape(fp, b.row->name);
	fputs("</a></li>\n", fp);
}

/* A code page's tail: the other classes of the code, its comparisons. */
static void
code_extra(FILE *fp, const struct explain_doc *doc, void *arg)
{
	const struct explain_item *it = &doc->items[0];
	const struct explain_lang *l = ((struct site *)arg)->lang;
	bool has_any = false;

	fputs("<section aria-labelledby=\"more\">\n<h2 id=\"more\">", fp);
	explain_html_escape(fp, l->learn_more);
	fputs("</h2>\n<ul>\n", fp);
	if (it->row->kind == EXPLAIN_ENHANCED) {
		for (const char *c = it->row->classes; *c != '\0'; c++) {
			struct explain_item other;
			char code[EXPLAIN_CODE_MAX];

			if (*c - '0' == it->class_digit)
				continue;
			snprintf(code, sizeof code, "%c.%d.%d", *c,
			    it->row->subject, it->row->detail);
			if (explain_item_set(&other, code) == 0) {
				link_item(fp, "", &other);
				has_any = true;
			}
		}
	}
	for (size_t i = 0; i < N_PAIRS; i++)
		if (strcmp(pairs[i][0], it->code) == 0 ||
		    strcmp(pairs[i][1], it->code) == 0) {
			link_pair(fp, "", i);
			has_any = true;
		}
	if (!has_any) {
		fprintf(fp, "<li><a href=\"index.html\">");
		explain_html_escape(fp, l->site_title);
		fputs("</a></li>\n", fp);
	}
	fputs("</ul>\n</section>\n", fp);
}

static int
write_doc(struct site *s, const char *page, int depth,
    const struct explain_item *items, size_t n, bool is_compare)
{
	struct explain_site_ctx ctx = {
		.page = page, .depth = depth, .code_page = code_page,
		.extra = is_compare ? NULL : code_extra, .extra_arg = s,
	};
	struct explain_doc *doc;
	char path[PATH_MAX];
	FILE *fp;
	int rc;

	doc = explain_doc_from_items(items, n, is_compare, s->lang);
	if (doc == NULL) {
		snprintf(s->err, s->errlen, "out of memory");
		return -1;
	}
	fp = open_page(s, s->lang->tag, page, path, sizeof path);
	if (fp == NULL) {
		explain_doc_free(doc);
		return -1;
	}
	explain_html_page(fp, doc, &ctx);
	explain_doc_free(doc);
	rc = close_page(s, fp, path);
	return rc;
}

static int
write_codes(struct site *s)
{
	for (size_t i = 0; i < explain_count(); i++) {
		const struct explain_code *row = explain_at(i);
		const char *c = row->kind == EXPLAIN_BASIC ? "-" : row->classes;

		for (; *c != '\0'; c++) {
			struct explain_item it;
			char code[EXPLAIN_CODE_MAX], page[NAME_BUF];

			if (row->kind == EXPLAIN_BASIC)
				snprintf(code, sizeof code, "%s", row->code);
			else
				snprintf(code, sizeof code, "%c.%d.%d", *c,
				    row->subject, row->detail);
			if (explain_item_set(&it, code) != 0)
				continue;
			code_page(&it, page, sizeof page);
			if (write_doc(s, page, 0, &it, 1, false) != 0)
				return -1;
		}
	}
	return 0;
}

static int
write_pairs(struct site *s)
{
	for (size_t i = 0; i < N_PAIRS; i++) {
		struct explain_item it[2];
		char page[NAME_BUF];

		if (explain_item_set(&it[0], pairs[i][0]) != 0 ||
		    explain_item_set(&it[1], pairs[i][1]) != 0) {
			snprintf(s->err, s->errlen, "site pair %s/%s names an "
			    "unknown code", pairs[i][0], pairs[i][1]);
			return -1;
		}
		pair_page(i, page, sizeof page);
		if (write_doc(s, page, 1, it, 2, true) != 0)
			return -1;
	}
	return 0;
}

/* The enhanced codes of one subject, each with links to its classes. */
static void
index_subject(FILE *fp, int subject)
{
	fprintf(fp, "<h3>X.%d.X ", subject);
	explain_html_escape(fp, explain_subject_name(subject));
	fputs("</h3>\n<ul>\n", fp);
	for (size_t i = 0; i < explain_count(); i++) {
		const struct explain_code *row = explain_at(i);

		if (row->kind != EXPLAIN_ENHANCED || row->subject != subject)
			continue;
		fprintf(fp, "<li>%s ", row->code);
		explain_html_escape(fp, row->name);
		fputs(":", fp);
		for (const char *c = row->classes; *c != '\0'; c++)
			fprintf(fp, " <a href=\"%c.%d.%d.html\">%c.%d.%d</a>",
			    *c, row->subject, row->detail, *c, row->subject,
			    row->detail);
		fputs("</li>\n", fp);
	}
	fputs("</ul>\n", fp);
}

static int
write_lang_index(struct site *s)
{
	const struct explain_lang *l = s->lang;
	struct explain_site_ctx ctx = { .page = "index.html", .depth = 0 };
	char path[PATH_MAX];
	FILE *fp = open_page(s, l->tag, "index.html", path, sizeof path);

	if (fp == NULL)
		return -1;
	explain_html_head(fp, l, l->site_title, &ctx);
	fputs("<h1>", fp);
	explain_html_escape(fp, l->site_title);
	fputs("</h1>\n<section aria-labelledby=\"compare\">\n<h2 "
	    "id=\"compare\">", fp);
	explain_html_escape(fp, l->site_compare);
	fputs("</h2>\n<ul>\n", fp);
	for (size_t i = 0; i < N_PAIRS; i++)
		link_pair(fp, "", i);
	fputs("</ul>\n</section>\n<section aria-labelledby=\"basic\">\n<h2 "
	    "id=\"basic\">", fp);
	explain_html_escape(fp, l->site_basic);
	fputs("</h2>\n<ul>\n", fp);
	for (size_t i = 0; i < explain_count(); i++) {
		struct explain_item it;

		if (explain_at(i)->kind == EXPLAIN_BASIC &&
		    explain_item_set(&it, explain_at(i)->code) == 0)
			link_item(fp, "", &it);
	}
	fputs("</ul>\n</section>\n<section aria-labelledby=\"enhanced\">\n"
	    "<h2 id=\"enhanced\">", fp);
	explain_html_escape(fp, l->site_enhanced);
	fputs("</h2>\n", fp);
	for (int subject = 0; explain_subject_name(subject)[0] != '\0';
	    subject++)
		index_subject(fp, subject);
	fputs("</section>\n", fp);
	explain_html_foot(fp);
	return close_page(s, fp, path);
}

/* DIR/index.html: the way into each language. */
static int
write_root_index(struct site *s)
{
	const struct explain_lang *en = explain_lang_at(0);
	char path[PATH_MAX];
	FILE *fp = open_page(s, NULL, "index.html", path, sizeof path);

	if (fp == NULL)
		return -1;
	explain_html_head(fp, en, en->site_title, NULL);
	fputs("<h1>", fp);
	explain_html_escape(fp, en->site_title);
	fputs("</h1>\n<nav aria-label=\"Language\"><ul>\n", fp);
	for (size_t i = 0; i < explain_lang_count(); i++) {
		const struct explain_lang *l = explain_lang_at(i);

		fprintf(fp, "<li><a href=\"%s/index.html\" hreflang=\"%s\" "
		    "lang=\"%s\">", l->tag, l->tag, l->tag);
		explain_html_escape(fp, l->native);
		fputs(" — ", fp);
		explain_html_escape(fp, l->site_title);
		fputs("</a></li>\n", fp);
	}
	fputs("</ul></nav>\n", fp);
	explain_html_foot(fp);
	return close_page(s, fp, path);
}

int
explain_site_write(const char *dir, char *err, size_t errlen)
{
	struct site s = { .dir = dir, .err = err, .errlen = errlen };
	char path[PATH_MAX];

	if (make_dir(&s, dir) != 0)
		return -1;
	for (size_t i = 0; i < explain_lang_count(); i++) {
		s.lang = explain_lang_at(i);
		snprintf(path, sizeof path, "%s/%s", dir, s.lang->tag);
		if (make_dir(&s, path) != 0)
			return -1;
		snprintf(path, sizeof path, "%s/%s/compare", dir, s.lang->tag);
		if (make_dir(&s, path) != 0)
			return -1;
		if (write_codes(&s) != 0 || write_pairs(&s) != 0 ||
		    write_lang_index(&s) != 0)
			return -1;
	}
	if (write_root_index(&s) != 0)
		return -1;
	return s.pages;
}
