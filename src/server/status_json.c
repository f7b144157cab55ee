/*
 * status_json.c - the status page's JSON twins: /api/status,
 * /api/replies and /api/queue (issue 19, schema "postern-status/1").
 *
 * Called by the HTTP handler, through status_json() (status_page.h),
 * with the same struct status_view as the page; returns one malloc'd
 * document.  Pure: no I/O beyond a memory stream, no clock, no state.
 *
 * Promises: every string of the view is JSON-escaped (RFC 8259 7) and
 * invalid UTF-8 becomes U+FFFD, so the output is always valid JSON; each
 * reply and each queued destination carries the document `postern
 * explain LINE --lang L --format json` prints (schema postern-explain/1),
 * rendered by src/explain/ itself, or null for a code postern does not
 * know.  The figures are the page's (status_page.c): same totals, same
 * order.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explain.h"
#include "server/status_page.h"
#include "server/status_page_int.h"

#define SCHEMA "postern-status/1"
#define ERR_BUF 256

/* --- escaping ------------------------------------------------------- */

/* s[0..n) (stopping at a NUL) as a JSON string (RFC 8259 7). */
static void
json_n(FILE *fp, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', fp);
	for (size_t i = 0; p != NULL && i < n && p[i] != '\0';) {
		size_t k;

		if (p[i] == '"' || p[i] == '\\') {
			fprintf(fp, "\\%c", p[i]);
		} else if (p[i] == '\n') {
			fputs("\\n", fp);
		} else if (p[i] == '\r') {
			fputs("\\r", fp);
		} else if (p[i] == '\t') {
			fputs("\\t", fp);
		} else if (p[i] < 0x20 || p[i] == 0x7F) {
			fprintf(fp, "\\u%04x", p[i]);
		} else if ((k = status_utf8_seq(p + i, n - i)) == 0) {
			fputs("\\ufffd", fp);
		} else {
			fwrite(p + i, 1, k, fp);
			i += k;
			continue;
		}
		i++;
	}
	fputc('"', fp);
}

static void
json(FILE *fp, const char *s)
{
	if (s == NULL)
		fputs("null", fp);
	else
		json_n(fp, s, strlen(s));
}

/* A fixed-size field of the view, which may lack its NUL. */
#define JSON_FIELD(fp, f) json_n((fp), (f), sizeof(f))

/* --- JSON ----------------------------------------------------------- */

/* `postern explain INPUT --lang L --format json`'s document, or null
 * when the input holds no code postern knows. */
static void
json_explanation(FILE *fp, const char *input, const struct explain_lang *l)
{
	const char *inputs[1] = {input};
	char err[ERR_BUF];
	struct explain_doc *doc =
	    explain_doc_new(inputs, 1, l, err, sizeof err);

	if (doc == NULL) {
		fputs("null", fp);
		return;
	}
	explain_render_json(fp, doc);
	explain_doc_free(doc);
}

static void
json_status(FILE *fp, const struct status_view *v)
{
	uint64_t tot[STATUS_CLASSES];
	size_t rcpts = 0;

	status_class_totals(v, tot);
	for (size_t i = 0; i < v->n_dests; i++)
		rcpts += v->dests[i].recipients;
	fputs(",\n\"hostname\": ", fp);
	json(fp, v->hostname);
	fputs(",\n\"version\": ", fp);
	json(fp, v->version);
	fprintf(fp,
		",\n\"now\": %" PRId64 ",\n\"started\": %" PRId64
		",\n\"uptime\": %" PRId64 ",\n\"sessions_open\": %" PRIu64
		",\n\"last_hour\": {",
		v->now, v->started,
		v->now > v->started ? v->now - v->started : 0,
		v->sessions_open);
	for (int k = 0; k < STATUS_CLASSES; k++)
		fprintf(fp, "%s\"%s\": %" PRIu64, k ? ", " : "",
			status_class_label[k], tot[k]);
	fputs("},\n\"per_minute\": [", fp);
	for (int i = 0; i < STATUS_MINUTES; i++)
		fprintf(fp, "%s[%" PRIu64 ", %" PRIu64 ", %" PRIu64 "]",
			i ? ", " : "", v->minute[i][0], v->minute[i][1],
			v->minute[i][2]);
	fprintf(fp,
		"],\n\"replies\": %zu,\n\"queue\": {\"destinations\": "
		"%zu, \"recipients\": %zu}\n",
		v->n_replies, v->n_dests, rcpts);
}

static void
json_replies(FILE *fp, const struct status_view *v,
	     const struct explain_lang *l)
{
	fputs(",\n\"replies\": [", fp);
	for (size_t i = 0; i < v->n_replies; i++) {
		const struct status_reply *r = &v->replies[i];
		char line[sizeof r->line + 1], enh[sizeof r->enhanced + 1];

		status_field_str(line, sizeof line, r->line, sizeof r->line);
		status_field_str(enh, sizeof enh, r->enhanced,
				 sizeof r->enhanced);
		if (line[0] == '\0')
			snprintf(line, sizeof line, "%u %s", r->code, enh);
		fprintf(fp, "%s\n{\"code\": %u, \"enhanced\": ", i ? "," : "",
			r->code);
		JSON_FIELD(fp, r->enhanced);
		fputs(", \"reason\": ", fp);
		JSON_FIELD(fp, r->reason);
		fputs(", \"line\": ", fp);
		JSON_FIELD(fp, r->line);
		fprintf(fp, ", \"count\": %" PRIu64 ",\n\"explanation\": ",
			r->count);
		json_explanation(fp, line, l);
		fputc('}', fp);
	}
	fputs("\n]\n", fp);
}

static void
json_queue(FILE *fp, const struct status_view *v, const struct explain_lang *l)
{
	fprintf(fp, ",\n\"now\": %" PRId64 ",\n\"queue\": [", v->now);
	for (size_t i = 0; i < v->n_dests; i++) {
		const struct status_dest *d = &v->dests[i];
		char last[sizeof d->last_reply + 1];

		fprintf(fp, "%s\n{\"destination\": ", i ? "," : "");
		JSON_FIELD(fp, d->destination);
		fprintf(fp, ", \"recipients\": %zu, \"last_reply\": ",
			d->recipients);
		JSON_FIELD(fp, d->last_reply);
		if (d->next_try != 0)
			fprintf(fp, ", \"next_try\": %" PRId64, d->next_try);
		else
			fputs(", \"next_try\": null", fp);
		fputs(",\n\"explanation\": ", fp);
		status_field_str(last, sizeof last, d->last_reply,
				 sizeof d->last_reply);
		json_explanation(fp, last, l);
		fputc('}', fp);
	}
	fputs("\n]\n", fp);
}

char *
status_json(const struct status_view *v, const char *which, const char *lang)
{
	const struct explain_lang *l =
	    status_explain_lang(status_words_for(lang));
	char *buf = NULL;
	size_t len;
	FILE *fp;

	if (which == NULL ||
	    (strcmp(which, "status") != 0 && strcmp(which, "replies") != 0 &&
	     strcmp(which, "queue") != 0))
		return NULL;
	fp = open_memstream(&buf, &len);
	if (fp == NULL)
		return NULL;
	fputs("{\"schema\": ", fp);
	json(fp, SCHEMA);
	fputs(", \"lang\": ", fp);
	json(fp, l->tag);
	if (strcmp(which, "status") == 0)
		json_status(fp, v);
	else if (strcmp(which, "replies") == 0)
		json_replies(fp, v, l);
	else
		json_queue(fp, v, l);
	fputs("}\n", fp);
	return status_finish(fp, &buf);
}
