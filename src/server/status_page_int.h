/*
 * status_page_int.h - internals shared by the three files of the status
 * page: status_page.c (the HTML page), status_json.c (its JSON twins)
 * and status_words.c (the page's words, the language pick, and the small
 * helpers below, defined there once).  Not for other modules: they use
 * server/status_page.h.
 */
#ifndef POSTERN_STATUS_PAGE_INT_H
#define POSTERN_STATUS_PAGE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "explain/explain.h"
#include "server/status_page.h"

/* The page's own words in one language; code texts come from
 * src/explain/. */
struct words {
	const char *tag;
	const char *title, *version, *uptime, *updated;
	const char *h_now, *sessions_open;
	const char *h_replies, *h_refused, *h_queue;
	const char *chart_title, *chart_desc, *total, *axis_now;
	const char *cls[STATUS_CLASSES];
	const char *col_code, *col_count, *col_meaning, *col_reply;
	const char *col_explanation, *col_dest, *col_rcpts, *col_last;
	const char *col_next;
	const char *no_replies, *no_refused, *queue_empty;
	const char *in_pre, *in_post, *due_now;
	const char *u_s, *u_min, *u_h, *u_d, *u_sep;
	const char *refresh_pre, *refresh_post, *json;
};

/* "2xx", "4xx", "5xx": the name of each of the STATUS_CLASSES. */
extern const char *const status_class_label[STATUS_CLASSES];

/* The words for language tag ("en", "id", "tr", "fr", "ko"); English's
 * when tag is NULL or none of those.  Static storage. */
const struct words *status_words_for(const char *tag);

/* explain's language (its headings) for w; explain's first language if
 * it lacks w's.  Static storage. */
const struct explain_lang *status_explain_lang(const struct words *w);

/* Length of the well-formed UTF-8 sequence at s[0..n) (n >= 1), or 0:
 * the escapers write U+FFFD for a byte where this is 0. */
size_t status_utf8_seq(const unsigned char *s, size_t n);

/* The fixed-size field f[0..fsize), which may lack its NUL, copied into
 * dst (size fsize + 1 keeps it whole) and NUL-terminated; returns dst. */
const char *status_field_str(char *dst, size_t size, const char *f,
			     size_t fsize);

/* a + b, or UINT64_MAX when that overflows. */
uint64_t status_add_sat(uint64_t a, uint64_t b);

/* tot[k]: the replies of class k in v's hour, saturating. */
void status_class_totals(const struct status_view *v,
			 uint64_t tot[STATUS_CLASSES]);

/* Closes the memory stream fp that open_memstream(buf, ...) made and
 * returns *buf (the caller frees it), or frees it and returns NULL if a
 * write failed. */
char *status_finish(FILE *fp, char **buf);

#endif
