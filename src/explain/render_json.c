/*
 * render_json.c - a page of the reference as JSON, schema
 * "postern-explain/1" (docs/design/explain-json.md; fields are only ever
 * added within a schema version).
 *
 * Strings are escaped per RFC 8259: quote, backslash and control
 * characters; valid UTF-8 passes through, and an invalid byte (a pasted
 * reply can hold anything) becomes U+FFFD so the output always parses.
 */
#include <stdio.h>
#include <string.h>

#include "explain/explain_int.h"

#define SCHEMA "postern-explain/1"
#define CLASS_BUF 16

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		n = 2, cp = s[0] & 0x1F;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		n = 3, cp = s[0] & 0x0F;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return n;
}

static void
jstr(FILE *fp, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (s == NULL) {
		fputs("null", fp);
		return;
	}
	fputc('"', fp);
	while (*p != '\0') {
		size_t n;

		if (*p == '"' || *p == '\\')
			fprintf(fp, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", fp);
		else if (*p == '\r')
			fputs("\\r", fp);
		else if (*p == '\t')
			fputs("\\t", fp);
		else if (*p < 0x20 || *p == 0x7F)
			fprintf(fp, "\\u%04x", *p);
		else if ((n = utf8_len(p)) == 0)
			fputs("\\ufffd", fp);
		else {
			fwrite(p, 1, n, fp);
			p += n;
			continue;
		}
		p++;
	}
	fputc('"', fp);
}

/* "key": "value", with the comma before all but the first. */
static void
field(FILE *fp, const char *indent, bool *first, const char *key,
    const char *value)
{
	fprintf(fp, "%s\n%s\"%s\": ", *first ? "" : ",", indent, key);
	*first = false;
	jstr(fp, value);
}

/* "450, 451, 550" -> ["450", "451", "550"]; "-" (none listed) -> []. */
static void
used_with(FILE *fp, const char *list)
{
	char code[EXPLAIN_CODE_MAX];
	const char *p = list;
	bool first = true;

	fputc('[', fp);
	while (strcmp(list, "-") != 0 && *p != '\0') {
		size_t n = strcspn(p, ",");

		if (n >= sizeof code)
			n = sizeof code - 1;
		memcpy(code, p, n);
		code[n] = '\0';
		fputs(first ? "" : ", ", fp);
		jstr(fp, code);
		first = false;
		p += strcspn(p, ",");
		p += strspn(p, ", ");
	}
	fputc(']', fp);
}

static void
code_obj(FILE *fp, const struct explain_item *it)
{
	const struct explain_code *r = it->row;
	char cls[CLASS_BUF], subj[CLASS_BUF];
	bool first = true;
	const char *in = "      ";

	fputs("    {", fp);
	field(fp, in, &first, "code", it->code);
	field(fp, in, &first, "kind",
	    r->kind == EXPLAIN_BASIC ? "basic" : "enhanced");
	field(fp, in, &first, "class", explain_item_class(it, cls, sizeof cls));
	field(fp, in, &first, "class_name",
	    explain_class_name(r->kind, it->class_digit));
	if (r->kind == EXPLAIN_ENHANCED) {
		snprintf(subj, sizeof subj, "X.%d.X", r->subject);
		field(fp, in, &first, "subject", subj);
		field(fp, in, &first, "subject_name",
		    explain_subject_name(r->subject));
		fputs(",\n      \"used_with\": ", fp);
		used_with(fp, r->basic);
	} else {
		field(fp, in, &first, "subject", NULL);
		field(fp, in, &first, "subject_name", NULL);
		field(fp, in, &first, "used_with", NULL);
	}
	field(fp, in, &first, "name", r->name);
	field(fp, in, &first, "reference", r->ref);
	field(fp, in, &first, "description", r->description);
	field(fp, in, &first, "when", r->when);
	field(fp, in, &first, "fix", r->fix);
	fputs("\n    }", fp);
}

static void
headings(FILE *fp, const struct explain_lang *l)
{
	bool first = true;
	const char *in = "    ";

	fputs("  \"headings\": {", fp);
	field(fp, in, &first, "description", l->h_description);
	field(fp, in, &first, "when", l->h_when);
	field(fp, in, &first, "fix", l->h_fix);
	field(fp, in, &first, "differences", l->h_differences);
	field(fp, in, &first, "which", l->h_which);
	field(fp, in, &first, "learn_more", l->learn_more);
	fputs("\n  },\n", fp);
}

static void
inputs(FILE *fp, const struct explain_doc *doc)
{
	fputs("  \"inputs\": [", fp);
	for (size_t i = 0; i < doc->n_replies; i++) {
		const struct explain_reply *r = &doc->replies[i];
		bool first = true;
		const char *in = "      ";

		fprintf(fp, "%s\n    {", i ? "," : "");
		field(fp, in, &first, "basic", r->basic[0] ? r->basic : NULL);
		field(fp, in, &first, "enhanced",
		    r->enhanced[0] ? r->enhanced : NULL);
		field(fp, in, &first, "text", r->text[0] ? r->text : NULL);
		fputs("\n    }", fp);
	}
	fputs("\n  ],\n  \"notes\": [", fp);
	for (size_t i = 0; i < doc->n_notes; i++) {
		fputs(i ? ", " : "", fp);
		jstr(fp, doc->notes[i]);
	}
	fputs("],\n", fp);
}

static void
comparison(FILE *fp, const struct explain_doc *doc)
{
	bool first = true;
	const char *in = "    ";

	if (!doc->is_compare) {
		fputs("  \"comparison\": null\n", fp);
		return;
	}
	fputs("  \"comparison\": {", fp);
	field(fp, in, &first, "summary", doc->summary);
	fprintf(fp, ",\n    \"same_class\": %s,\n    \"differences\": [",
	    doc->is_same_class ? "true" : "false");
	for (size_t i = 0; i < doc->n_diffs; i++) {
		fprintf(fp, "%s\n      ", i ? "," : "");
		jstr(fp, doc->diffs[i]);
	}
	fputs("\n    ],\n    \"which\": [", fp);
	for (size_t i = 0; i < 2; i++) {
		fprintf(fp, "%s\n      {\"code\": ", i ? "," : "");
		jstr(fp, doc->items[i].code);
		fputs(", \"text\": ", fp);
		jstr(fp, doc->which[i]);
		fputc('}', fp);
	}
	fputs("\n    ]\n  }\n", fp);
}

int
explain_render_json(FILE *fp, const struct explain_doc *doc)
{
	fputs("{\n  \"schema\": ", fp);
	jstr(fp, SCHEMA);
	fputs(",\n  \"lang\": ", fp);
	jstr(fp, doc->lang->tag);
	fputs(",\n  \"title\": ", fp);
	jstr(fp, doc->title);
	fputs(",\n", fp);
	headings(fp, doc->lang);
	inputs(fp, doc);
	fputs("  \"codes\": [", fp);
	for (size_t i = 0; i < doc->n_items; i++) {
		fputs(i ? ",\n" : "\n", fp);
		code_obj(fp, &doc->items[i]);
	}
	fputs("\n  ],\n", fp);
	comparison(fp, doc);
	fputs("}\n", fp);
	fflush(fp);
	return ferror(fp) ? -1 : 0;
}
