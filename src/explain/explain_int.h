/*
 * explain_int.h - internals shared by the files of src/explain/: the page
 * model that doc.c builds and the three renderers read, and small string
 * helpers.  Not for other modules: they use explain.h.
 */
#ifndef POSTERN_EXPLAIN_INT_H
#define POSTERN_EXPLAIN_INT_H

#include "explain/explain.h"

/* A reply explains its basic and its enhanced code. */
#define EXPLAIN_ITEMS_MAX (EXPLAIN_INPUTS_MAX * 2)
/* Key differences: the class item, two descriptions, two "when"s. */
#define EXPLAIN_DIFFS_MAX 5
#define EXPLAIN_NOTES_MAX EXPLAIN_INPUTS_MAX

struct explain_doc {
	const struct explain_lang *lang;
	size_t n_replies;
	struct explain_reply replies[EXPLAIN_INPUTS_MAX];
	bool has_reply[EXPLAIN_INPUTS_MAX];	/* input was more than a code */
	size_t n_items;
	struct explain_item items[EXPLAIN_ITEMS_MAX];
	/* Comparison: items[0] against items[1]; the strings below are set. */
	bool is_compare;
	bool is_same_class;
	char *title;			/* "SMTP 421 Service ... vs 451 ..." */
	char *summary;			/* "Both SMTP 421 (...) and ..." */
	size_t n_diffs;
	char *diffs[EXPLAIN_DIFFS_MAX];
	char *which[2];			/* "For 421 (...): fix" */
	size_t n_notes;
	char *notes[EXPLAIN_NOTES_MAX];	/* class mismatch in a reply */
};

/* Where an HTML page sits in a site, so it can link; NULL: standalone. */
struct explain_site_ctx {
	const char *page;	/* path under DIR/LANG/: "421.html" */
	int depth;		/* directories below DIR/LANG/ (compare/: 1) */
	const char *(*code_page)(const struct explain_item *it, char *buf,
	    size_t size);	/* "5.7.26.html", or NULL for no page */
	/* Extra body before </main>, e.g. the comparisons a code is in. */
	void (*extra)(FILE *fp, const struct explain_doc *doc, void *arg);
	void *extra_arg;
};

int explain_html_page(FILE *fp, const struct explain_doc *doc,
    const struct explain_site_ctx *site);

/* HTML scaffolding the site's index pages share with explain_html_page. */
void explain_html_head(FILE *fp, const struct explain_lang *lang,
    const char *title, const struct explain_site_ctx *site);
void explain_html_foot(FILE *fp);
void explain_html_escape(FILE *fp, const char *s);

/* "SMTP 421 Service Not Available" etc.: malloc'd, NULL on no memory. */
char *explain_item_title(const struct explain_item *it);

/* A copy of s with its first letter lowered ("When x" -> "when x"),
 * unless it starts an acronym ("SMTP ...").  malloc'd. */
char *explain_lcfirst(const char *s);

/* Build a doc from items already resolved (the site's pages): one code,
 * a reply's two codes, or (is_compare) two codes compared.  NULL on no
 * memory. */
struct explain_doc *explain_doc_from_items(const struct explain_item *items,
    size_t n, bool is_compare, const struct explain_lang *lang);

#endif
