/*
 * doc.c - one page of the reference: the codes a person asked about and,
 * for two codes, the comparison written the way the seeds write it.
 *
 * The comparison's sentences are composed here once, so text, JSON and
 * HTML say exactly the same thing:
 *   title    "SMTP 421 Service Not Available vs 451 Local Error"
 *   summary  "Both SMTP 421 (...) and 451 (...) belong to the 4xx
 *            Transient Negative category. 421 indicates that ...
 *            Meanwhile, 451 means that ..."  or, across classes,
 *            "SMTP 421 (...) is a 4xx ... response, while 551 (...) is a
 *            5xx ... response. 421 indicates that ... In contrast, ..."
 *   diffs    [class item,] "SMTP 421: ...", "You encounter 421 when ..."
 *   which    "For 421 (Service Not Available): ..."
 * The seeds' defects are not copied: "You encounter N when When ..." is
 * written with one "when".
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explain_int.h"

/* How many closest codes an "unknown code" error names. */
#define CLOSEST_SHOWN 3
#define CLOSEST_BUF 64
#define CLASS_BUF 16

char *
explain_lcfirst(const char *s)
{
	char *c = strdup(s);

	if (c != NULL && isupper((unsigned char)c[0]) &&
	    !isupper((unsigned char)c[1]))
		c[0] = (char)tolower((unsigned char)c[0]);
	return c;
}

char *
explain_item_title(const struct explain_item *it)
{
	char *s;

	if (asprintf(&s, "SMTP %s %s", it->code, it->row->name) < 0)
		return NULL;
	return s;
}

/* "4xx Transient Negative" */
static void
class_label(const struct explain_item *it, char *buf, size_t size)
{
	char cls[CLASS_BUF];

	snprintf(buf, size, "%s %s", explain_item_class(it, cls, sizeof cls),
	    explain_class_name(it->row->kind, it->class_digit));
}

void
explain_doc_free(struct explain_doc *doc)
{
	if (doc == NULL)
		return;
	free(doc->title);
	free(doc->summary);
	for (size_t i = 0; i < doc->n_diffs; i++)
		free(doc->diffs[i]);
	free(doc->which[0]);
	free(doc->which[1]);
	for (size_t i = 0; i < doc->n_notes; i++)
		free(doc->notes[i]);
	free(doc);
}

/* "when" text as it follows "You encounter N when ": one "when" only. */
static char *
when_clause(const char *when)
{
	static const char lead[] = "When ";

	if (strncmp(when, lead, sizeof lead - 1) == 0)
		return strdup(when + sizeof lead - 1);
	return explain_lcfirst(when);
}

static int
build_summary(struct explain_doc *doc)
{
	const struct explain_item *a = &doc->items[0], *b = &doc->items[1];
	char ca[CLASS_BUF * 4], cb[CLASS_BUF * 4];
	char *da = explain_lcfirst(a->row->description);
	char *db = explain_lcfirst(b->row->description);
	int rc;

	class_label(a, ca, sizeof ca);
	class_label(b, cb, sizeof cb);
	if (da == NULL || db == NULL)
		rc = -1;
	else if (doc->is_same_class)
		rc = asprintf(&doc->summary, "Both SMTP %s (%s) and %s (%s) "
		    "belong to the %s category. %s indicates that %s "
		    "Meanwhile, %s means that %s", a->code, a->row->name,
		    b->code, b->row->name, ca, a->code, da, b->code, db);
	else
		rc = asprintf(&doc->summary, "SMTP %s (%s) is a %s response, "
		    "while %s (%s) is a %s response. %s indicates that %s "
		    "In contrast, %s means that %s", a->code, a->row->name, ca,
		    b->code, b->row->name, cb, a->code, da, b->code, db);
	free(da);
	free(db);
	if (rc < 0)
		doc->summary = NULL;
	return rc < 0 ? -1 : 0;
}

/* Append a formatted difference; -1 on no memory. */
static int
add_diff(struct explain_doc *doc, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -1;
	doc->diffs[doc->n_diffs++] = s;
	return 0;
}

static int
build_diffs(struct explain_doc *doc)
{
	const struct explain_item *it[2] = { &doc->items[0], &doc->items[1] };
	char cl[2][CLASS_BUF * 4];

	if (!doc->is_same_class) {
		class_label(it[0], cl[0], sizeof cl[0]);
		class_label(it[1], cl[1], sizeof cl[1]);
		if (add_diff(doc, "%s is a %s response, while %s is a %s "
		    "response.", it[0]->code, cl[0], it[1]->code, cl[1]) != 0)
			return -1;
	}
	for (int i = 0; i < 2; i++)
		if (add_diff(doc, "SMTP %s: %s", it[i]->code,
		    it[i]->row->description) != 0)
			return -1;
	for (int i = 0; i < 2; i++) {
		char *w = when_clause(it[i]->row->when);
		int rc;

		if (w == NULL)
			return -1;
		rc = add_diff(doc, "You encounter %s when %s", it[i]->code, w);
		free(w);
		if (rc != 0)
			return -1;
	}
	for (int i = 0; i < 2; i++)
		if (asprintf(&doc->which[i], "For %s (%s): %s", it[i]->code,
		    it[i]->row->name, it[i]->row->fix) < 0) {
			doc->which[i] = NULL;
			return -1;
		}
	return 0;
}

static int
build_compare(struct explain_doc *doc)
{
	const struct explain_item *a = &doc->items[0], *b = &doc->items[1];

	doc->is_compare = true;
	doc->is_same_class = a->row->kind == b->row->kind &&
	    a->class_digit == b->class_digit;
	if (asprintf(&doc->title, "SMTP %s %s vs %s %s", a->code,
	    a->row->name, b->code, b->row->name) < 0) {
		doc->title = NULL;
		return -1;
	}
	if (build_summary(doc) != 0)
		return -1;
	return build_diffs(doc);
}

static int
build_single(struct explain_doc *doc)
{
	const struct explain_item *a = &doc->items[0];
	int rc;

	if (doc->n_items == 1)
		rc = asprintf(&doc->title, "SMTP %s %s", a->code, a->row->name);
	else
		rc = asprintf(&doc->title, "SMTP %s %s, %s %s", a->code,
		    a->row->name, doc->items[1].code, doc->items[1].row->name);
	if (rc < 0)
		doc->title = NULL;
	return rc < 0 ? -1 : 0;
}

struct explain_doc *
explain_doc_from_items(const struct explain_item *items, size_t n,
    bool is_compare, const struct explain_lang *lang)
{
	struct explain_doc *doc;

	if (n == 0 || n > EXPLAIN_INPUTS_MAX || (is_compare && n != 2))
		return NULL;
	doc = calloc(1, sizeof *doc);
	if (doc == NULL)
		return NULL;
	doc->lang = lang;
	memcpy(doc->items, items, n * sizeof items[0]);
	doc->n_items = n;
	if ((is_compare ? build_compare(doc) : build_single(doc)) != 0) {
		explain_doc_free(doc);
		return NULL;
	}
	return doc;
}

/* One code of an input into *it, or one line naming the fix into err. */
static int
resolve(struct explain_item *it, const char *code, char *err,
    size_t errlen)
{
	char near[CLOSEST_BUF];

	if (explain_item_set(it, code) == 0)
		return 0;
	explain_closest_format(code, CLOSEST_SHOWN, near, sizeof near);
	if (near[0] != '\0')
		snprintf(err, errlen, "unknown reply code '%s'; closest known "
		    "codes: %s (see `postern explain --list`)", code, near);
	else
		snprintf(err, errlen, "'%s' is not an SMTP reply code; give "
		    "one such as 421 or 5.7.1", code);
	return -1;
}

/* A reply whose enhanced code disagrees with its basic code's class. */
static int
note_mismatch(struct explain_doc *doc, const struct explain_reply *r)
{
	char *s;

	if (r->basic[0] == '\0' || r->enhanced[0] == '\0' ||
	    r->basic[0] == r->enhanced[0] || doc->n_notes >= EXPLAIN_NOTES_MAX)
		return 0;
	if (asprintf(&s, "In this reply the enhanced code %s (class %c) does "
	    "not match the basic code %s (class %c); RFC 3463 says they "
	    "should agree, and the basic code decides.", r->enhanced,
	    r->enhanced[0], r->basic, r->basic[0]) < 0)
		return -1;
	doc->notes[doc->n_notes++] = s;
	return 0;
}

/* Inputs to replies and items; the first code of each reply when two
 * inputs are compared, both codes of a single reply otherwise. */
static int
collect(struct explain_doc *doc, const char *const *inputs, size_t n,
    struct explain_item *items, size_t *n_items, char *err, size_t errlen)
{
	*n_items = 0;
	for (size_t i = 0; i < n; i++) {
		struct explain_reply *r = &doc->replies[i];
		const char *codes[2] = { r->basic, r->enhanced };

		if (explain_reply_parse(inputs[i], r) != EXPLAIN_PARSE_OK) {
			snprintf(err, errlen, "no SMTP reply code in '%.40s'; "
			    "give a code such as 421 or 5.7.1, or a whole "
			    "reply line", inputs[i]);
			return -1;
		}
		doc->has_reply[i] = r->text[0] != '\0' ||
		    (r->basic[0] != '\0' && r->enhanced[0] != '\0');
		for (int k = 0; k < 2; k++) {
			if (codes[k][0] == '\0')
				continue;
			if (resolve(&items[*n_items], codes[k], err,
			    errlen) != 0)
				return -1;
			(*n_items)++;
			if (n > 1)
				break;
		}
		if (note_mismatch(doc, r) != 0)
			return -1;
	}
	return 0;
}

struct explain_doc *
explain_doc_new(const char *const *inputs, size_t n,
    const struct explain_lang *lang, char *err, size_t errlen)
{
	struct explain_doc tmp, *doc;
	struct explain_item items[EXPLAIN_ITEMS_MAX];
	size_t n_items;

	if (n == 0 || n > EXPLAIN_INPUTS_MAX) {
		snprintf(err, errlen, "give one code to explain or two to "
		    "compare");
		return NULL;
	}
	memset(&tmp, 0, sizeof tmp);
	if (collect(&tmp, inputs, n, items, &n_items, err, errlen) != 0) {
		for (size_t i = 0; i < tmp.n_notes; i++)
			free(tmp.notes[i]);
		return NULL;
	}
	if (n == 2 && strcmp(items[0].code, items[1].code) == 0) {
		snprintf(err, errlen, "both inputs are %s; give two different "
		    "codes to compare", items[0].code);
		for (size_t i = 0; i < tmp.n_notes; i++)
			free(tmp.notes[i]);
		return NULL;
	}
	doc = explain_doc_from_items(items, n_items, n == 2, lang);
	if (doc == NULL) {
		snprintf(err, errlen, "out of memory");
		for (size_t i = 0; i < tmp.n_notes; i++)
			free(tmp.notes[i]);
		return NULL;
	}
	memcpy(doc->replies, tmp.replies, sizeof tmp.replies);
	memcpy(doc->has_reply, tmp.has_reply, sizeof tmp.has_reply);
	doc->n_replies = n;
	doc->n_notes = tmp.n_notes;
	memcpy(doc->notes, tmp.notes, sizeof tmp.notes);
	return doc;
}
