/*
 * status_page.c - the status page at / (issue 19): one standalone HTML
 * document.
 *
 * Called by the HTTP handler, through status_page_html() (status_page.h),
 * with a struct status_view it gathered on the loop; returns one malloc'd
 * document.  Pure: no I/O beyond a memory stream, no clock (the view
 * carries "now"), no state.
 *
 * Promises: every string of the view is HTML-escaped and invalid UTF-8
 * becomes U+FFFD, so a remote's reply text can never become markup; the
 * page needs nothing but itself (inline CSS, inline SVG, no script) and a
 * Content-Security-Policy says so; the chart is a stacked bar per minute
 * whose heights are proportional to the counts, with the numbers also in
 * text (title, desc, legend) for those who cannot see it.  Reply codes
 * are put into words by src/explain/, the same table and the same
 * headings as `postern explain CODE --lang L`; the page's own labels are
 * status_words.c's, its JSON twins status_json.c's.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "explain/explain.h"
#include "server/status_page.h"
#include "server/status_page_int.h"

/* Reply codes the by-code table counts: RFC 5321 4.2.1, 2yz to 5yz. */
#define CODE_LOW 200
#define CODE_HIGH 599
#define CODE_BUF 8
#define TIME_BUF 48
#define DUR_BUF 64
#define SEC_MIN 60
#define SEC_HOUR 3600
#define SEC_DAY 86400
/* The class digit of a basic code (RFC 5321 4.2.1). */
#define CODE_CLASS(c) ((c) / 100)
#define CLASS_TRANSIENT 4

/* The chart, in SVG user units: a bar per minute, BAR_STEP apart. */
#define CHART_LEFT 48
#define CHART_TOP 12
#define PLOT_H 160
#define BAR_STEP 10
#define BAR_W 8
#define CHART_W (CHART_LEFT + STATUS_MINUTES * BAR_STEP + 4)
#define CHART_H (CHART_TOP + PLOT_H + 28)
#define LABEL_Y (CHART_TOP + PLOT_H + 18)

/* Inline only: the policy forbids anything the page did not bring. */
static const char csp[] = "default-src 'none'; style-src 'unsafe-inline'";

static const char css[] =
    "body{font:15px/1.45 system-ui,sans-serif;max-width:72rem;"
    "margin:0 auto;padding:1rem;color:#1b1b1b;background:#fff}"
    "h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;"
    "margin-top:2rem;border-bottom:1px solid #ccc}"
    "header p,footer p{margin:.2rem 0;color:#444}footer{margin-top:2rem}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;"
    "border-bottom:1px solid #ddd}thead th{border-bottom:2px solid #888}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
    "code{font-size:.92em;word-break:break-word;white-space:pre-line}"
    ".ex{margin:0 0 .5rem}.ex p{margin:0}.ex dl{margin:.1rem 0 0}"
    ".ex dt{font-weight:600;font-size:.85rem;color:#555}"
    ".ex dd{margin:0 0 .2rem}.reason{color:#555;font-size:.85rem}"
    ".chart{display:flex;flex-wrap:wrap;gap:1rem;align-items:center}"
    ".chart>svg{flex:1 1 36rem;max-width:48rem;height:auto}"
    ".legend{list-style:none;padding:0;margin:0}"
    ".legend li{margin:.3rem 0}.legend svg{vertical-align:middle;"
    "margin-right:.4rem}.axis{font-size:11px;fill:currentColor}"
    ".big{font-size:1.5rem;font-weight:600}"
    "@media(prefers-color-scheme:dark){body{color:#e8e8e8;"
    "background:#161616}header p,footer p,.ex dt,.reason{color:#aaa}"
    "a{color:#8ab4f8}th,td{border-color:#444}}";

/* Three fills that differ in hue, lightness and pattern: a mid blue,
 * light orange with dark stripes, dark red with light dots. */
static const char svg_defs[] =
    "<defs>"
    "<pattern id=\"p4\" width=\"6\" height=\"6\" patternUnits="
    "\"userSpaceOnUse\" patternTransform=\"rotate(45)\">"
    "<rect width=\"6\" height=\"6\" fill=\"#f5c66b\"/>"
    "<rect width=\"2\" height=\"6\" fill=\"#8a5200\"/></pattern>"
    "<pattern id=\"p5\" width=\"5\" height=\"5\" patternUnits="
    "\"userSpaceOnUse\"><rect width=\"5\" height=\"5\" fill=\"#5b1508\"/>"
    "<circle cx=\"2.5\" cy=\"2.5\" r=\"1.1\" fill=\"#f2b8a8\"/></pattern>"
    "</defs>";
static const char *const class_fill[STATUS_CLASSES] = {"#2f6db5", "url(#p4)",
						       "url(#p5)"};

/* --- escaping ------------------------------------------------------- */

/* s[0..n) (stopping at a NUL) as HTML text or attribute value. */
static void
html_n(FILE *fp, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n && p[i] != '\0';) {
		size_t k;

		switch (p[i]) {
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
			/* Line breaks of a multi-line reply stay (CSS
			 * pre-line shows them); other controls go. */
			if (p[i] == '\n') {
				fputc('\n', fp);
				break;
			}
			if (p[i] < 0x20 || p[i] == 0x7F) {
				fputc(' ', fp);
				break;
			}
			k = status_utf8_seq(p + i, n - i);
			if (k == 0) {
				fputs("\xEF\xBF\xBD", fp);
				break;
			}
			fwrite(p + i, 1, k, fp);
			i += k;
			continue;
		}
		i++;
	}
}

static void
html(FILE *fp, const char *s)
{
	if (s != NULL)
		html_n(fp, s, strlen(s));
}

/* A fixed-size field of the view, which may lack its NUL. */
#define HTML_FIELD(fp, f) html_n((fp), (f), sizeof(f))

/* --- numbers and times ---------------------------------------------- */

/* "3 d 4 h 5 min", "2 h 0 min", "5 min", "45 s" in w's units. */
static const char *
dur_format(char *buf, size_t size, int64_t secs, const struct words *w)
{
	int64_t d = secs / SEC_DAY, h = secs % SEC_DAY / SEC_HOUR;
	int64_t m = secs % SEC_HOUR / SEC_MIN;
	const char *sp = w->u_sep;

	if (secs < 0)
		secs = d = h = m = 0;
	if (d > 0)
		snprintf(buf, size,
			 "%" PRId64 "%s%s %" PRId64 "%s%s %" PRId64 "%s%s", d,
			 sp, w->u_d, h, sp, w->u_h, m, sp, w->u_min);
	else if (h > 0)
		snprintf(buf, size, "%" PRId64 "%s%s %" PRId64 "%s%s", h, sp,
			 w->u_h, m, sp, w->u_min);
	else if (m > 0)
		snprintf(buf, size, "%" PRId64 "%s%s", m, sp, w->u_min);
	else
		snprintf(buf, size, "%" PRId64 "%s%s", secs, sp, w->u_s);
	return buf;
}

/* "2026-12-06 00:35 UTC" and its machine form "2026-12-06T00:35:00Z". */
static void
time_format(int64_t t, char *text, char *iso, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(text, size, "%Y-%m-%d %H:%M UTC", &tm) == 0 ||
	    strftime(iso, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		snprintf(text, size, "?");
		snprintf(iso, size, "?");
	}
}

/* --- the page: explanations ----------------------------------------- */

/* lang="en" on explain's body text, which is English in every language
 * (ref/lang.def), so a screen reader switches voice. */
static const char *
en_attr(const struct explain_lang *l)
{
	return strcmp(l->tag, "en") == 0 ? "" : " lang=\"en\"";
}

/* One code in words: name, then explain's description and fix under
 * its headings; false if the code is unknown. */
static bool
html_explain_code(FILE *fp, const char *code, const struct explain_lang *l)
{
	struct explain_item it;

	if (code[0] == '\0' || explain_item_set(&it, code) != 0)
		return false;
	fputs("<div class=\"ex\"><p><b>", fp);
	html(fp, it.code);
	fprintf(fp, "</b> <span%s>", en_attr(l));
	html(fp, it.row->name);
	fputs("</span></p><dl><dt>", fp);
	html(fp, l->h_description);
	fprintf(fp, "</dt><dd%s>", en_attr(l));
	html(fp, it.row->description);
	fputs("</dd><dt>", fp);
	html(fp, l->h_fix);
	fprintf(fp, "</dt><dd%s>", en_attr(l));
	html(fp, it.row->fix);
	fputs("</dd></dl></div>", fp);
	return true;
}

static void
html_explain(FILE *fp, const char *basic, const char *enhanced,
	     const struct explain_lang *l)
{
	bool has_basic = html_explain_code(fp, basic, l);
	bool has_enh = html_explain_code(fp, enhanced, l);

	if (!has_basic && !has_enh)
		fputs("&#8212;", fp);
}

/* --- the page: sections --------------------------------------------- */

static void
html_head(FILE *fp, const struct status_view *v, const struct words *w)
{
	fprintf(fp,
		"<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n"
		"<meta charset=\"utf-8\">\n"
		"<meta http-equiv=\"Content-Security-Policy\" content=\"%s\">\n"
		"<meta http-equiv=\"refresh\" content=\"%d\">\n"
		"<meta name=\"viewport\" content=\"width=device-width, "
		"initial-scale=1\">\n<title>",
		w->tag, csp, STATUS_REFRESH_S);
	html(fp, w->title);
	fputs(": ", fp);
	html(fp, v->hostname);
	fprintf(fp, "</title>\n<style>%s</style>\n</head>\n<body>\n", css);
}

static void
html_header(FILE *fp, const struct status_view *v, const struct words *w)
{
	char dur[DUR_BUF], text[TIME_BUF], iso[TIME_BUF];

	fputs("<header>\n<h1>", fp);
	html(fp, v->hostname);
	fputs("</h1>\n<p>postern ", fp);
	html(fp, w->version);
	fputs(" <b>", fp);
	html(fp, v->version);
	fputs("</b> &#183; ", fp);
	html(fp, w->uptime);
	fputs(" <b>", fp);
	html(fp, dur_format(dur, sizeof dur, v->now - v->started, w));
	fputs("</b> &#183; ", fp);
	html(fp, w->updated);
	time_format(v->now, text, iso, sizeof text);
	fprintf(fp, " <time datetime=\"%s\">%s</time></p>\n</header>\n<main>\n",
		iso, text);
	fputs("<section aria-labelledby=\"now\">\n<h2 id=\"now\">", fp);
	html(fp, w->h_now);
	fputs("</h2>\n<p>", fp);
	html(fp, w->sessions_open);
	fprintf(fp,
		": <span class=\"big\">%" PRIu64 "</span></p>\n"
		"</section>\n",
		v->sessions_open);
}

/* One bar: its minute and counts in <title>, a rect per class, stacked
 * from the bottom, heights count * PLOT_H / max. */
static void
svg_bar(FILE *fp, const struct status_view *v, int i, double scale,
	const struct words *w)
{
	double base = CHART_TOP + PLOT_H;
	const uint64_t *c = v->minute[i];

	fprintf(fp,
		"<g class=\"bar\" data-minute=\"-%d\"><title>-%d%s%s: "
		"2xx %" PRIu64 ", 4xx %" PRIu64 ", 5xx %" PRIu64 "</title>",
		STATUS_MINUTES - i, STATUS_MINUTES - i, w->u_sep, w->u_min,
		c[0], c[1], c[2]);
	for (int k = 0; k < STATUS_CLASSES; k++) {
		double h = (double)c[k] * scale;

		if (c[k] == 0)
			continue;
		base -= h;
		fprintf(fp,
			"<rect class=\"c%c\" x=\"%d\" y=\"%.2f\" "
			"width=\"%d\" height=\"%.2f\" fill=\"%s\"/>",
			status_class_label[k][0], CHART_LEFT + i * BAR_STEP + 1,
			base, BAR_W, h, class_fill[k]);
	}
	fputs("</g>\n", fp);
}

static uint64_t
chart_max(const struct status_view *v)
{
	uint64_t max = 0;

	for (int i = 0; i < STATUS_MINUTES; i++) {
		uint64_t t = status_add_sat(
		    status_add_sat(v->minute[i][0], v->minute[i][1]),
		    v->minute[i][2]);

		max = t > max ? t : max;
	}
	return max;
}

static void
svg_axes(FILE *fp, uint64_t max, const struct words *w)
{
	const int right = CHART_LEFT + STATUS_MINUTES * BAR_STEP;
	const int bottom = CHART_TOP + PLOT_H;

	fprintf(
	    fp,
	    "<g aria-hidden=\"true\" class=\"axis\">"
	    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>"
	    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\" "
	    "stroke-dasharray=\"3 3\"/>"
	    "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%" PRIu64 "</text>"
	    "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>"
	    "<text x=\"%d\" y=\"%d\">-%d%s",
	    CHART_LEFT, bottom, right, bottom, CHART_LEFT, CHART_TOP, right,
	    CHART_TOP, CHART_LEFT - 4, CHART_TOP + 4, max, CHART_LEFT - 4,
	    bottom, CHART_LEFT, LABEL_Y, STATUS_MINUTES, w->u_sep);
	html(fp, w->u_min);
	fprintf(fp,
		"</text><text x=\"%d\" y=\"%d\" text-anchor=\"middle\">"
		"-%d%s",
		CHART_LEFT + STATUS_MINUTES / 2 * BAR_STEP, LABEL_Y,
		STATUS_MINUTES / 2, w->u_sep);
	html(fp, w->u_min);
	fprintf(fp, "</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">",
		right, LABEL_Y);
	html(fp, w->axis_now);
	fputs("</text></g>\n", fp);
}

/* The legend: a swatch, the class and its total in the hour. */
static void
html_legend(FILE *fp, const uint64_t tot[STATUS_CLASSES], const struct words *w)
{
	fputs("<ul class=\"legend\">\n", fp);
	for (int k = 0; k < STATUS_CLASSES; k++) {
		fprintf(
		    fp,
		    "<li><svg width=\"16\" height=\"16\" aria-hidden="
		    "\"true\"><rect width=\"16\" height=\"16\" fill=\"%s\"/>"
		    "</svg>%s ",
		    class_fill[k], status_class_label[k]);
		html(fp, w->cls[k]);
		fprintf(fp, ": <b>%" PRIu64 "</b></li>\n", tot[k]);
	}
	fputs("<li>", fp);
	html(fp, w->total);
	fprintf(fp, ": <b>%" PRIu64 "</b></li>\n</ul>\n",
		status_add_sat(status_add_sat(tot[0], tot[1]), tot[2]));
}

static void
html_chart(FILE *fp, const struct status_view *v, const struct words *w)
{
	uint64_t tot[STATUS_CLASSES], max = chart_max(v);
	double scale = max > 0 ? (double)PLOT_H / (double)max : 0;

	status_class_totals(v, tot);
	fputs("<div class=\"chart\">\n<svg role=\"img\" aria-label=\"", fp);
	html(fp, w->chart_title);
	fprintf(
	    fp,
	    "\" aria-describedby=\"chart-desc\" viewBox=\"0 0 %d %d\" "
	    "width=\"%d\" height=\"%d\" xmlns=\"http://www.w3.org/2000/svg\">"
	    "\n<title>",
	    CHART_W, CHART_H, CHART_W, CHART_H);
	html(fp, w->chart_title);
	fputs("</title>\n<desc id=\"chart-desc\">", fp);
	html(fp, w->chart_desc);
	for (int k = 0; k < STATUS_CLASSES; k++) {
		fprintf(fp, " %s ", status_class_label[k]);
		html(fp, w->cls[k]);
		fprintf(fp, ": %" PRIu64 ".", tot[k]);
	}
	fprintf(fp, "</desc>\n%s\n", svg_defs);
	svg_axes(fp, max, w);
	for (int i = 0; i < STATUS_MINUTES; i++)
		svg_bar(fp, v, i, scale, w);
	fputs("</svg>\n", fp);
	html_legend(fp, tot, w);
	fputs("</div>\n", fp);
}

/* The table by basic code: count and what the code means. */
static void
html_by_code(FILE *fp, const struct status_view *v, const struct words *w,
	     const struct explain_lang *l)
{
	uint64_t sum[CODE_HIGH - CODE_LOW + 1] = {0};
	bool has[CODE_HIGH - CODE_LOW + 1] = {false};

	for (size_t i = 0; i < v->n_replies; i++) {
		unsigned c = v->replies[i].code;

		if (c < CODE_LOW || c > CODE_HIGH)
			continue;
		sum[c - CODE_LOW] =
		    status_add_sat(sum[c - CODE_LOW], v->replies[i].count);
		has[c - CODE_LOW] = true;
	}
	fputs("<table>\n<thead><tr><th scope=\"col\">", fp);
	html(fp, w->col_code);
	fputs("</th><th scope=\"col\" class=\"n\">", fp);
	html(fp, w->col_count);
	fputs("</th><th scope=\"col\">", fp);
	html(fp, w->col_meaning);
	fputs("</th></tr></thead>\n<tbody>\n", fp);
	for (unsigned c = CODE_LOW; c <= CODE_HIGH; c++) {
		char code[CODE_BUF];
		const struct explain_code *row;

		if (!has[c - CODE_LOW])
			continue;
		snprintf(code, sizeof code, "%u", c);
		row = explain_find(code);
		fprintf(fp,
			"<tr><th scope=\"row\">%u</th><td class=\"n\">%" PRIu64
			"</td><td%s>",
			c, sum[c - CODE_LOW], en_attr(l));
		if (row != NULL) {
			fputs("<b>", fp);
			html(fp, row->name);
			fputs("</b>: ", fp);
			html(fp, row->description);
		}
		fputs("</td></tr>\n", fp);
	}
	fputs("</tbody>\n</table>\n", fp);
}

static void
html_replies(FILE *fp, const struct status_view *v, const struct words *w,
	     const struct explain_lang *l)
{
	fputs("<section aria-labelledby=\"replies\">\n<h2 id=\"replies\">", fp);
	html(fp, w->h_replies);
	fputs("</h2>\n", fp);
	html_chart(fp, v, w);
	if (v->n_replies == 0) {
		fputs("<p>", fp);
		html(fp, w->no_replies);
		fputs("</p>\n", fp);
	} else {
		html_by_code(fp, v, w, l);
	}
	fputs("</section>\n", fp);
}

static void
html_refused_row(FILE *fp, const struct status_reply *r,
		 const struct explain_lang *l)
{
	char basic[CODE_BUF], enh[sizeof r->enhanced + 1];

	fputs("<tr><td><code>", fp);
	if (r->line[0] != '\0') {
		HTML_FIELD(fp, r->line);
	} else {
		fprintf(fp, "%u ", r->code);
		HTML_FIELD(fp, r->enhanced);
	}
	fputs("</code>", fp);
	if (r->reason[0] != '\0') {
		fputs("<br><span class=\"reason\">", fp);
		HTML_FIELD(fp, r->reason);
		fputs("</span>", fp);
	}
	fprintf(fp, "</td><td class=\"n\">%" PRIu64 "</td><td>", r->count);
	snprintf(basic, sizeof basic, "%u", r->code);
	html_explain(
	    fp, basic,
	    status_field_str(enh, sizeof enh, r->enhanced, sizeof r->enhanced),
	    l);
	fputs("</td></tr>\n", fp);
}

static void
html_refused(FILE *fp, const struct status_view *v, const struct words *w,
	     const struct explain_lang *l)
{
	bool has_any = false;

	fputs("<section aria-labelledby=\"refused\">\n<h2 id=\"refused\">", fp);
	html(fp, w->h_refused);
	fputs("</h2>\n", fp);
	for (size_t i = 0; i < v->n_replies; i++) {
		const struct status_reply *r = &v->replies[i];

		if (CODE_CLASS(r->code) != CLASS_TRANSIENT)
			continue;
		if (!has_any) {
			fputs("<table>\n<thead><tr><th scope=\"col\">", fp);
			html(fp, w->col_reply);
			fputs("</th><th scope=\"col\" class=\"n\">", fp);
			html(fp, w->col_count);
			fputs("</th><th scope=\"col\">", fp);
			html(fp, w->col_explanation);
			fputs("</th></tr></thead>\n<tbody>\n", fp);
			has_any = true;
		}
		html_refused_row(fp, r, l);
	}
	if (has_any) {
		fputs("</tbody>\n</table>\n", fp);
	} else {
		fputs("<p>", fp);
		html(fp, w->no_refused);
		fputs("</p>\n", fp);
	}
	fputs("</section>\n", fp);
}

/* "2026-12-06 00:35 UTC" and "in 5 min" (or "due now"); a dash if none. */
static void
html_next_try(FILE *fp, int64_t next, int64_t now, const struct words *w)
{
	char text[TIME_BUF], iso[TIME_BUF], dur[DUR_BUF];

	if (next == 0) {
		fputs("&#8212;", fp);
		return;
	}
	time_format(next, text, iso, sizeof text);
	fprintf(fp, "<time datetime=\"%s\">%s</time><br>", iso, text);
	if (next <= now) {
		html(fp, w->due_now);
		return;
	}
	html(fp, w->in_pre);
	html(fp, dur_format(dur, sizeof dur, next - now, w));
	html(fp, w->in_post);
}

static void
html_dest_row(FILE *fp, const struct status_view *v,
	      const struct status_dest *d, const struct words *w,
	      const struct explain_lang *l)
{
	char last[sizeof d->last_reply + 1];
	struct explain_reply r;

	fputs("<tr><th scope=\"row\">", fp);
	HTML_FIELD(fp, d->destination);
	fprintf(fp, "</th><td class=\"n\">%zu</td><td>", d->recipients);
	if (d->last_reply[0] != '\0') {
		fputs("<code>", fp);
		HTML_FIELD(fp, d->last_reply);
		fputs("</code>", fp);
	} else {
		fputs("&#8212;", fp);
	}
	fputs("</td><td>", fp);
	html_next_try(fp, d->next_try, v->now, w);
	fputs("</td><td>", fp);
	status_field_str(last, sizeof last, d->last_reply,
			 sizeof d->last_reply);
	if (explain_reply_parse(last, &r) == EXPLAIN_PARSE_OK)
		html_explain(fp, r.basic, r.enhanced, l);
	else
		fputs("&#8212;", fp);
	fputs("</td></tr>\n", fp);
}

static void
html_queue(FILE *fp, const struct status_view *v, const struct words *w,
	   const struct explain_lang *l)
{
	const char *cols[] = {w->col_dest, w->col_rcpts, w->col_last,
			      w->col_next, w->col_explanation};

	fputs("<section aria-labelledby=\"queue\">\n<h2 id=\"queue\">", fp);
	html(fp, w->h_queue);
	fputs("</h2>\n", fp);
	if (v->n_dests == 0) {
		fputs("<p>", fp);
		html(fp, w->queue_empty);
		fputs("</p>\n</section>\n", fp);
		return;
	}
	fputs("<table>\n<thead><tr>", fp);
	for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
		fprintf(fp, "<th scope=\"col\"%s>",
			i == 1 ? " class=\"n\"" : "");
		html(fp, cols[i]);
		fputs("</th>", fp);
	}
	fputs("</tr></thead>\n<tbody>\n", fp);
	for (size_t i = 0; i < v->n_dests; i++)
		html_dest_row(fp, v, &v->dests[i], w, l);
	fputs("</tbody>\n</table>\n</section>\n", fp);
}

static void
html_footer(FILE *fp, const struct words *w)
{
	char dur[DUR_BUF];

	fputs("</main>\n<footer>\n<p>", fp);
	html(fp, w->json);
	fputs(" <a href=\"/api/status\">/api/status</a> &#183; "
	      "<a href=\"/api/replies\">/api/replies</a> &#183; "
	      "<a href=\"/api/queue\">/api/queue</a> &#183; Prometheus: "
	      "<a href=\"/metrics\">/metrics</a></p>\n<p>",
	      fp);
	html(fp, w->refresh_pre);
	html(fp, dur_format(dur, sizeof dur, STATUS_REFRESH_S, w));
	html(fp, w->refresh_post);
	fputs("</p>\n</footer>\n</body>\n</html>\n", fp);
}

char *
status_page_html(const struct status_view *v, const char *lang)
{
	const struct words *w = status_words_for(lang);
	const struct explain_lang *l = status_explain_lang(w);
	char *buf = NULL;
	size_t len;
	FILE *fp = open_memstream(&buf, &len);

	if (fp == NULL)
		return NULL;
	html_head(fp, v, w);
	html_header(fp, v, w);
	html_replies(fp, v, w, l);
	html_refused(fp, v, w, l);
	html_queue(fp, v, w, l);
	html_footer(fp, w);
	return status_finish(fp, &buf);
}
