/*
 * render_text.c - a page of the reference for the terminal.
 *
 * Layout follows the seeds: title, summary, then for each code its
 * description, when you see it and how to fix it under the language's
 * headings, then the numbered key differences and "when to use which".
 * Body text is indented two columns; with width > 0 it is wrapped (the
 * CLI passes the terminal's width on a tty, 0 in a pipe so scripts get a
 * paragraph per line).  ANSI colour only when the caller says so (a tty
 * and no NO_COLOR: src/cli/explain.c decides).
 */
#include <stdio.h>
#include <string.h>

#include "explain/explain_int.h"

#define INDENT "  "
#define INDENT_LEN 2
#define CLASS_BUF 16

#define SGR_BOLD "\033[1m"
#define SGR_HEAD "\033[1;36m"
#define SGR_DIM "\033[2m"
#define SGR_OFF "\033[0m"

struct out {
	FILE *fp;
	bool is_color;
	unsigned width;
};

static void
style(const struct out *o, const char *sgr, const char *s)
{
	if (o->is_color)
		fprintf(o->fp, "%s%s%s\n", sgr, s, SGR_OFF);
	else
		fprintf(o->fp, "%s\n", s);
}

/* Columns a UTF-8 word takes: one per character (body text is English). */
static size_t
columns(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

/* One paragraph, indented, wrapped at o->width when it is set. */
static void
para(const struct out *o, const char *prefix, const char *s)
{
	size_t col, plen = strlen(prefix);

	fputs(INDENT, o->fp);
	fputs(prefix, o->fp);
	if (o->width == 0) {
		fprintf(o->fp, "%s\n", s);
		return;
	}
	col = INDENT_LEN + columns(prefix, plen);
	while (*s != '\0') {
		size_t n = strcspn(s, " ");
		size_t w = columns(s, n);

		if (col > INDENT_LEN + plen && col + 1 + w > o->width) {
			fprintf(o->fp, "\n%s%*s", INDENT, (int)plen, "");
			col = INDENT_LEN + plen;
		} else if (col > INDENT_LEN + plen) {
			fputc(' ', o->fp);
			col++;
		}
		fwrite(s, 1, n, o->fp);
		col += w;
		s += n;
		while (*s == ' ')
			s++;
	}
	fputc('\n', o->fp);
}

static void
section(const struct out *o, const char *heading, const char *body)
{
	fputc('\n', o->fp);
	style(o, SGR_BOLD, heading);
	para(o, "", body);
}

/* Class, subject, usual basic codes, reference: short dim lines. */
static void
meta(const struct out *o, const struct explain_item *it)
{
	const struct explain_code *r = it->row;
	char cls[CLASS_BUF], line[256];

	explain_item_class(it, cls, sizeof cls);
	snprintf(line, sizeof line, "Class: %s %s", cls,
	    explain_class_name(r->kind, it->class_digit));
	fputs(INDENT, o->fp);
	style(o, SGR_DIM, line);
	if (r->kind == EXPLAIN_ENHANCED) {
		snprintf(line, sizeof line, "Subject: X.%d.X %s", r->subject,
		    explain_subject_name(r->subject));
		fputs(INDENT, o->fp);
		style(o, SGR_DIM, line);
		snprintf(line, sizeof line, "Used with: %s", r->basic);
		fputs(INDENT, o->fp);
		style(o, SGR_DIM, line);
	}
	snprintf(line, sizeof line, "Reference: %s", r->ref);
	fputs(INDENT, o->fp);
	style(o, SGR_DIM, line);
}

static void
item(const struct out *o, const struct explain_doc *doc,
    const struct explain_item *it, bool has_heading)
{
	const struct explain_lang *l = doc->lang;

	if (has_heading) {
		char head[256];

		snprintf(head, sizeof head, "%s %s", it->code, it->row->name);
		fputc('\n', o->fp);
		style(o, SGR_HEAD, head);
	}
	meta(o, it);
	section(o, l->h_description, it->row->description);
	section(o, l->h_when, it->row->when);
	section(o, l->h_fix, it->row->fix);
}

static void
replies(const struct out *o, const struct explain_doc *doc)
{
	for (size_t i = 0; i < doc->n_replies; i++) {
		const struct explain_reply *r = &doc->replies[i];
		char line[EXPLAIN_REPLY_TEXT_MAX + 64];

		if (!doc->has_reply[i])
			continue;
		snprintf(line, sizeof line, "%s%s%s%s%s", r->basic,
		    r->basic[0] && r->enhanced[0] ? " " : "", r->enhanced,
		    r->text[0] ? " " : "", r->text);
		para(o, "Reply: ", line);
	}
	for (size_t i = 0; i < doc->n_notes; i++)
		para(o, "Note: ", doc->notes[i]);
}

/* The seeds end with "Learn more": here, the command for each code. */
static void
learn_more(const struct out *o, const struct explain_doc *doc)
{
	fputc('\n', o->fp);
	style(o, SGR_BOLD, doc->lang->learn_more);
	for (size_t i = 0; i < doc->n_items; i++)
		fprintf(o->fp, "%spostern explain %s\n", INDENT,
		    doc->items[i].code);
}

int
explain_render_text(FILE *fp, const struct explain_doc *doc, bool is_color,
    unsigned width)
{
	const struct out o = { fp, is_color, width };
	const struct explain_lang *l = doc->lang;

	style(&o, SGR_BOLD, doc->title);
	replies(&o, doc);
	if (doc->is_compare) {
		fputc('\n', fp);
		para(&o, "", doc->summary);
	}
	for (size_t i = 0; i < doc->n_items; i++)
		item(&o, doc, &doc->items[i], doc->n_items > 1);
	if (doc->is_compare) {
		char num[8];

		fputc('\n', fp);
		style(&o, SGR_BOLD, l->h_differences);
		for (size_t i = 0; i < doc->n_diffs; i++) {
			snprintf(num, sizeof num, "%zu. ", i + 1);
			para(&o, num, doc->diffs[i]);
		}
		fputc('\n', fp);
		style(&o, SGR_BOLD, l->h_which);
		para(&o, "", doc->which[0]);
		para(&o, "", doc->which[1]);
		learn_more(&o, doc);
	}
	fflush(fp);
	return ferror(fp) ? -1 : 0;
}
