/*
 * render_html.c - a page of the reference as standalone, accessible HTML.
 *
 * One file, no scripts, no external resources: <html lang> is the page's
 * language, <title> and <h1> its title, the body sits in <main>, and the
 * headings never skip a level (h1 page, h2 per code or section, h3 per
 * code's sections).  Every string from the tables or the user is escaped.
 * site.c passes a struct explain_site_ctx so the same page carries a
 * language switcher and links to the other pages; without one the page
 * has no links at all.
 */
#include <stdio.h>
#include <string.h>

#include "explain/explain_int.h"

#define CLASS_BUF 16
#define PATH_BUF 512
#define ROOT_BUF 32

static const char css[] =
	"body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;"
	"margin:0 auto;padding:1rem;color:#1b1b1b;background:#fff}"
	"a{color:#0645ad}h1{font-size:1.6rem}h2{font-size:1.3rem;"
	"margin-top:2rem}h3{font-size:1.05rem;margin-bottom:.2rem}"
	".meta{color:#555;font-size:.9rem}code{font-size:.95em}"
	"nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;"
	"gap:.3rem 1rem}"
	"@media(prefers-color-scheme:dark){body{color:#e8e8e8;"
	"background:#161616}a{color:#8ab4f8}.meta{color:#aaa}}";

void
explain_html_escape(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': fputs("&amp;", fp); break;
		case '<': fputs("&lt;", fp); break;
		case '>': fputs("&gt;", fp); break;
		case '"': fputs("&quot;", fp); break;
		case '\'': fputs("&#39;", fp); break;
		default: fputc(*s, fp);
		}
	}
}

/* "../" once per level from the page up to DIR. */
static const char *
root_of(const struct explain_site_ctx *site, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i <= site->depth && off + 3 < size; i++, off += 3)
		memcpy(buf + off, "../", 4);
	return buf;
}

static void
lang_switcher(FILE *fp, const struct explain_lang *lang,
    const struct explain_site_ctx *site)
{
	char root[ROOT_BUF];

	root_of(site, root, sizeof root);
	fputs("<nav aria-label=\"", fp);
	explain_html_escape(fp, lang->site_language);
	fprintf(fp, "\"><ul>\n<li><a href=\"%s%s/index.html\">", root,
	    lang->tag);
	explain_html_escape(fp, lang->site_title);
	fputs("</a></li>\n", fp);
	for (size_t i = 0; i < explain_lang_count(); i++) {
		const struct explain_lang *l = explain_lang_at(i);

		if (l == lang)
			fprintf(fp, "<li><span lang=\"%s\" aria-current="
			    "\"page\">", l->tag);
		else
			fprintf(fp, "<li><a href=\"%s%s/%s\" hreflang=\"%s\" "
			    "lang=\"%s\">", root, l->tag, site->page, l->tag,
			    l->tag);
		explain_html_escape(fp, l->native);
		fputs(l == lang ? "</span></li>\n" : "</a></li>\n", fp);
	}
	fputs("</ul></nav>\n", fp);
}

void
explain_html_head(FILE *fp, const struct explain_lang *lang,
    const char *title, const struct explain_site_ctx *site)
{
	fprintf(fp, "<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n<meta name=\"viewport\" "
	    "content=\"width=device-width, initial-scale=1\">\n<title>",
	    lang->tag);
	explain_html_escape(fp, title);
	fprintf(fp, "</title>\n<style>%s</style>\n</head>\n<body>\n", css);
	if (site != NULL) {
		fputs("<header>\n", fp);
		lang_switcher(fp, lang, site);
		fputs("</header>\n", fp);
	}
	fputs("<main>\n", fp);
}

void
explain_html_foot(FILE *fp)
{
	fputs("</main>\n<footer><p class=\"meta\">postern explain — SMTP "
	    "reply codes after RFC 5321 and the IANA enhanced status code "
	    "registry.</p></footer>\n</body>\n</html>\n", fp);
}

/* The body text is English whatever the page's language (as in the
 * seeds): mark it so screen readers pronounce it as English. */
static const char *
en_attr(const struct explain_doc *doc)
{
	return strcmp(doc->lang->tag, "en") == 0 ? "" : " lang=\"en\"";
}

static void
para(FILE *fp, const char *attr, const char *s)
{
	fprintf(fp, "<p%s>", attr);
	explain_html_escape(fp, s);
	fputs("</p>\n", fp);
}

static void
meta(FILE *fp, const struct explain_item *it)
{
	const struct explain_code *r = it->row;
	char cls[CLASS_BUF];

	fprintf(fp, "<p class=\"meta\" lang=\"en\">Class: %s ",
	    explain_item_class(it, cls, sizeof cls));
	explain_html_escape(fp, explain_class_name(r->kind, it->class_digit));
	if (r->kind == EXPLAIN_ENHANCED) {
		fprintf(fp, " · Subject: X.%d.X ", r->subject);
		explain_html_escape(fp, explain_subject_name(r->subject));
		fputs(" · Used with: ", fp);
		explain_html_escape(fp, r->basic);
	}
	fputs(" · Reference: ", fp);
	explain_html_escape(fp, r->ref);
	fputs("</p>\n", fp);
}

static void
item(FILE *fp, const struct explain_doc *doc, const struct explain_item *it,
    const struct explain_site_ctx *site)
{
	const struct explain_lang *l = doc->lang;
	const char *h = doc->n_items > 1 ? "h3" : "h2";
	const char *en = en_attr(doc);
	char page[PATH_BUF], root[ROOT_BUF];

	if (doc->n_items > 1) {
		fprintf(fp, "<section aria-labelledby=\"c-%s\">\n<h2 "
		    "id=\"c-%s\"%s>%s ", it->code, it->code, en, it->code);
		explain_html_escape(fp, it->row->name);
		fputs("</h2>\n", fp);
	}
	meta(fp, it);
	fprintf(fp, "<%s>", h);
	explain_html_escape(fp, l->h_description);
	fprintf(fp, "</%s>\n", h);
	para(fp, en, it->row->description);
	fprintf(fp, "<%s>", h);
	explain_html_escape(fp, l->h_when);
	fprintf(fp, "</%s>\n", h);
	para(fp, en, it->row->when);
	fprintf(fp, "<%s>", h);
	explain_html_escape(fp, l->h_fix);
	fprintf(fp, "</%s>\n", h);
	para(fp, en, it->row->fix);
	if (site != NULL && doc->n_items > 1 &&
	    site->code_page(it, page, sizeof page) != NULL) {
		root_of(site, root, sizeof root);
		fprintf(fp, "<p><a href=\"%s%s/%s\">", root, l->tag, page);
		explain_html_escape(fp, l->learn_more);
		fprintf(fp, ": %s</a></p>\n", it->code);
	}
	if (doc->n_items > 1)
		fputs("</section>\n", fp);
}

static void
replies(FILE *fp, const struct explain_doc *doc)
{
	for (size_t i = 0; i < doc->n_replies; i++) {
		const struct explain_reply *r = &doc->replies[i];

		if (!doc->has_reply[i])
			continue;
		fputs("<p lang=\"en\">Reply: <code>", fp);
		explain_html_escape(fp, r->basic);
		fputs(r->basic[0] && r->enhanced[0] ? " " : "", fp);
		explain_html_escape(fp, r->enhanced);
		fputs(r->text[0] ? " " : "", fp);
		explain_html_escape(fp, r->text);
		fputs("</code></p>\n", fp);
	}
	for (size_t i = 0; i < doc->n_notes; i++)
		para(fp, " class=\"meta\" lang=\"en\"", doc->notes[i]);
}

static void
compare_tail(FILE *fp, const struct explain_doc *doc)
{
	const struct explain_lang *l = doc->lang;

	fputs("<section aria-labelledby=\"differences\">\n"
	    "<h2 id=\"differences\">", fp);
	explain_html_escape(fp, l->h_differences);
	fputs("</h2>\n<ol>\n", fp);
	for (size_t i = 0; i < doc->n_diffs; i++) {
		fprintf(fp, "<li%s>", en_attr(doc));
		explain_html_escape(fp, doc->diffs[i]);
		fputs("</li>\n", fp);
	}
	fputs("</ol>\n</section>\n<section aria-labelledby=\"which\">\n"
	    "<h2 id=\"which\">", fp);
	explain_html_escape(fp, l->h_which);
	fputs("</h2>\n", fp);
	para(fp, en_attr(doc), doc->which[0]);
	para(fp, en_attr(doc), doc->which[1]);
	fputs("</section>\n", fp);
}

int
explain_html_page(FILE *fp, const struct explain_doc *doc,
    const struct explain_site_ctx *site)
{
	explain_html_head(fp, doc->lang, doc->title, site);
	fprintf(fp, "<h1%s>", en_attr(doc));
	explain_html_escape(fp, doc->title);
	fputs("</h1>\n", fp);
	replies(fp, doc);
	if (doc->is_compare)
		para(fp, en_attr(doc), doc->summary);
	for (size_t i = 0; i < doc->n_items; i++)
		item(fp, doc, &doc->items[i], site);
	if (doc->is_compare)
		compare_tail(fp, doc);
	if (site != NULL && site->extra != NULL)
		site->extra(fp, doc, site->extra_arg);
	explain_html_foot(fp);
	fflush(fp);
	return ferror(fp) ? -1 : 0;
}

int
explain_render_html(FILE *fp, const struct explain_doc *doc)
{
	return explain_html_page(fp, doc, NULL);
}
