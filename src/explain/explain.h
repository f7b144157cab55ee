/*
 * explain.h - what SMTP reply codes mean, for people.
 *
 * The knowledge is ref/codes.def (every basic reply code of RFC 5321 and
 * its extensions, every enhanced status code of the IANA registry) and
 * ref/lang.def (section headings in en, id, tr, fr, ko), compiled in.
 * `postern explain` (src/cli/explain.c) renders it as text, JSON or HTML
 * or writes a static site; bounces and `postern queue show` call
 * explain_reply_format() to put a remote's reply into words.
 *
 * Nothing here allocates except explain_doc_new(); every function is safe
 * to call from any thread (the tables are const).
 */
#ifndef POSTERN_EXPLAIN_H
#define POSTERN_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* "5.7.26" plus NUL, and room for longer, invalid input to be rejected. */
#define EXPLAIN_CODE_MAX 16
/* The text of one reply kept by explain_reply_parse(), lines joined. */
#define EXPLAIN_REPLY_TEXT_MAX 1024
/* CODE [CODE2] */
#define EXPLAIN_INPUTS_MAX 2

enum explain_kind {
	EXPLAIN_BASIC,		/* 421 */
	EXPLAIN_ENHANCED,	/* X.7.26, used as 4.7.26 / 5.7.26 */
};

/* One row of ref/codes.def. */
struct explain_code {
	enum explain_kind kind;
	const char *code;	/* "421" or "X.7.26" */
	int number;		/* 421; or subject * 1000 + detail */
	int subject, detail;	/* enhanced only */
	const char *classes;	/* enhanced: class digits it is used with */
	const char *basic;	/* enhanced: basic codes it usually goes with */
	const char *name;	/* "Service Not Available" */
	const char *ref;	/* "RFC 5321 4.2.3, 3.8" */
	const char *description;
	const char *when;	/* starts "When ..."; see ref/codes.def */
	const char *fix;
};

/* A code as written, resolved to its row: "5.7.26" -> X.7.26, class 5. */
struct explain_item {
	char code[EXPLAIN_CODE_MAX];
	int class_digit;	/* first digit: 2..5 */
	const struct explain_code *row;
};

/* A reply as pasted by a person: codes and text, either may be missing. */
struct explain_reply {
	char basic[4];				/* "550" or "" */
	char enhanced[EXPLAIN_CODE_MAX];	/* "5.7.1" or "" */
	char text[EXPLAIN_REPLY_TEXT_MAX];	/* "Relaying denied" or "" */
};

/* One row of ref/lang.def. */
struct explain_lang {
	const char *tag;	/* "fr": --lang value and HTML lang */
	const char *native;	/* "Français" */
	const char *h_description, *h_when, *h_fix, *h_differences, *h_which;
	const char *learn_more;
	const char *site_title, *site_basic, *site_enhanced, *site_compare;
	const char *site_language;
};

/*
 * The row for a code: "421", "5.7.26" (class must be one the code is used
 * with) or "X.7.26".  NULL if postern does not know the code.
 */
const struct explain_code *explain_find(const char *code);

/* Rows in table order (basic codes ascending, then enhanced); NULL past
 * the end. */
size_t explain_count(void);
const struct explain_code *explain_at(size_t i);

/*
 * Resolve a code as written into *out.  Returns 0, or -1 if the code is
 * malformed or unknown (out->row is then NULL).
 */
int explain_item_set(struct explain_item *out, const char *code);

/* "4xx" or "4.X.X" into buf (at least 8 bytes); returns buf. */
const char *explain_item_class(const struct explain_item *it, char *buf,
    size_t size);

/* "Transient Negative", "Persistent Transient Failure"; "" if unknown. */
const char *explain_class_name(enum explain_kind kind, int digit);

/* "Security or Policy Status" for subject 7; "" if unknown. */
const char *explain_subject_name(int subject);

/*
 * The known codes nearest to an unknown one, as "252, 251, 250" (at most
 * `n` of them, same kind and class first).  Returns the length written, as
 * snprintf does.
 */
int explain_closest_format(const char *code, size_t n, char *buf,
    size_t size);

enum explain_parse_result {
	EXPLAIN_PARSE_OK = 0,
	EXPLAIN_PARSE_ERR_NO_CODE = -1,	/* nothing that looks like a code */
};

/*
 * Find the reply in what a person pasted: "421", "4.7.1", "550 5.7.1
 * Relaying denied", a multi-line reply ("550-5.1.1 ...\n550 5.1.1 ...")
 * or a log line ("... said: 550 5.1.1 <a@b>: User unknown").  The codes
 * are syntactic only: check them with explain_item_set().
 */
int explain_reply_parse(const char *input, struct explain_reply *out);

/*
 * Put a remote's reply into one short paragraph of plain English for a
 * bounce or `postern queue show`, e.g. "550 (Mailbox Unavailable): The
 * requested action was not taken ... 5.1.1 (Bad Destination Mailbox
 * Address): The mailbox ...".  Writes at most `size` bytes, always
 * NUL-terminated when size > 0.  Returns the length it wanted to write, as
 * snprintf does, or -1 if the reply holds no known code (buf is then "").
 */
int explain_reply_format(const char *reply, char *buf, size_t size);

/* Languages: "en", "id", "tr", "fr", "ko".  NULL if unknown. */
const struct explain_lang *explain_lang_find(const char *tag);
size_t explain_lang_count(void);
const struct explain_lang *explain_lang_at(size_t i);

/* From LC_ALL, LC_MESSAGES, LANG in that order ("fr_FR.UTF-8" -> fr);
 * English when none names one of ours. */
const struct explain_lang *explain_lang_from_env(void);

/*
 * One page: one input explained, or two compared the way the seeds do.
 * Returns NULL with one line in err (which names the fix) if an input has
 * no code or an unknown one, or if the two inputs are the same code.
 * Free with explain_doc_free().
 */
struct explain_doc;
struct explain_doc *explain_doc_new(const char *const *inputs, size_t n,
    const struct explain_lang *lang, char *err, size_t errlen);
void explain_doc_free(struct explain_doc *doc);

/*
 * Renderers.  Text: colour (ANSI) only when is_color; width > 0 wraps the
 * body at that many columns, 0 keeps a paragraph per line.  JSON: the
 * schema in docs/design/explain-json.md.  HTML: one standalone page.
 * Each returns 0, or -1 on a write error.
 */
int explain_render_text(FILE *fp, const struct explain_doc *doc,
    bool is_color, unsigned width);
int explain_render_json(FILE *fp, const struct explain_doc *doc);
int explain_render_html(FILE *fp, const struct explain_doc *doc);

/*
 * Write the whole reference as a static site under dir: dir/index.html,
 * and for each language dir/LANG/index.html, a page per code and a page
 * per compared pair.  Creates dir if needed.  Returns the number of pages
 * written, or -1 with one line in err.
 */
int explain_site_write(const char *dir, char *err, size_t errlen);

#endif
