/*
 * status_page.c - the status page at / and its JSON twins (issue 19).
 *
 * Called by the HTTP handler with a struct status_view it gathered on the
 * loop; returns one malloc'd document.  Pure: no I/O beyond a memory
 * stream, no clock (the view carries "now"), no state.
 *
 * Promises: every string of the view is escaped (HTML or JSON) and
 * invalid UTF-8 becomes U+FFFD, so a remote's reply text can never become
 * markup; the page needs nothing but itself (inline CSS, inline SVG, no
 * script) and a Content-Security-Policy says so; the chart is a stacked
 * bar per minute whose heights are proportional to the counts, with the
 * numbers also in text (title, desc, legend) for those who cannot see it.
 * Reply codes are put into words by src/explain/, the same table and
 * the same headings as `postern explain CODE --lang L`; this file holds
 * only the page's own labels in the five languages.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "explain/explain.h"
#include "server/status_page.h"
#include "util/str.h"

#define SCHEMA "postern-status/1"
#define DEFAULT_LANG "en"

/* Reply codes the by-code table counts: RFC 5321 4.2.1, 2yz to 5yz. */
#define CODE_LOW 200
#define CODE_HIGH 599
#define CODE_BUF 8
#define TIME_BUF 48
#define DUR_BUF 64
#define ERR_BUF 256
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

/* q-values in thousandths (RFC 9110 12.4.2: at most three decimals). */
#define Q_ONE 1000
#define Q_DIGITS 3
/* A language subtag: 1*8 letters or digits (RFC 4647 2.1). */
#define SUBTAG_MAX 8
#define N_LANGS 5

/* The page's own words; code texts come from src/explain/. */
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

/* A table reads better as written, field after field. */
/* clang-format off */
static const struct words words[N_LANGS] = {
	{ .tag = "en", .title = "Status", .version = "Version",
	  .uptime = "Up for", .updated = "Updated", .h_now = "Now",
	  .sessions_open = "Sessions open",
	  .h_replies = "Replies in the last hour",
	  .h_refused = "Why mail was refused for now (4xx)",
	  .h_queue = "Queue by destination",
	  .chart_title = "Replies per minute, last hour",
	  .chart_desc = "One stacked bar per minute, oldest on the left.",
	  .total = "Total", .axis_now = "now",
	  .cls = { "accepted", "refused for now", "refused" },
	  .col_code = "Code", .col_count = "Count",
	  .col_meaning = "What it means", .col_reply = "Reply",
	  .col_explanation = "Explanation", .col_dest = "Destination",
	  .col_rcpts = "Recipients", .col_last = "Last reply",
	  .col_next = "Next try",
	  .no_replies = "No replies in the last hour.",
	  .no_refused = "No mail was refused for now in the last hour.",
	  .queue_empty = "The queue is empty.",
	  .in_pre = "in ", .in_post = "", .due_now = "due now",
	  .u_s = "s", .u_min = "min", .u_h = "h", .u_d = "d", .u_sep = " ",
	  .refresh_pre = "This page reloads every ", .refresh_post = ".",
	  .json = "The same data as JSON:" },
	{ .tag = "id", .title = "Status", .version = "Versi",
	  .uptime = "Aktif selama", .updated = "Diperbarui",
	  .h_now = "Sekarang", .sessions_open = "Sesi terbuka",
	  .h_replies = "Balasan dalam satu jam terakhir",
	  .h_refused = "Mengapa surat ditolak sementara (4xx)",
	  .h_queue = "Antrean menurut tujuan",
	  .chart_title = "Balasan per menit, satu jam terakhir",
	  .chart_desc = "Satu batang bertumpuk per menit, yang terlama di "
	      "kiri.",
	  .total = "Total", .axis_now = "sekarang",
	  .cls = { "diterima", "ditolak sementara", "ditolak" },
	  .col_code = "Kode", .col_count = "Jumlah",
	  .col_meaning = "Artinya", .col_reply = "Balasan",
	  .col_explanation = "Penjelasan", .col_dest = "Tujuan",
	  .col_rcpts = "Penerima", .col_last = "Balasan terakhir",
	  .col_next = "Percobaan berikutnya",
	  .no_replies = "Tidak ada balasan dalam satu jam terakhir.",
	  .no_refused = "Tidak ada surat yang ditolak sementara dalam satu "
	      "jam terakhir.",
	  .queue_empty = "Antrean kosong.",
	  .in_pre = "dalam ", .in_post = "", .due_now = "sekarang",
	  .u_s = "dtk", .u_min = "mnt", .u_h = "jam", .u_d = "hari",
	  .u_sep = " ",
	  .refresh_pre = "Halaman ini dimuat ulang setiap ",
	  .refresh_post = ".", .json = "Data yang sama dalam JSON:" },
	{ .tag = "tr", .title = "Durum", .version = "Sürüm",
	  .uptime = "Çalışma süresi", .updated = "Güncellendi",
	  .h_now = "Şu anda", .sessions_open = "Açık oturumlar",
	  .h_replies = "Son bir saatteki yanıtlar",
	  .h_refused = "Postalar neden geçici olarak reddedildi (4xx)",
	  .h_queue = "Hedefe göre kuyruk",
	  .chart_title = "Dakika başına yanıtlar, son bir saat",
	  .chart_desc = "Dakika başına bir yığılmış çubuk, en eskisi solda.",
	  .total = "Toplam", .axis_now = "şimdi",
	  .cls = { "kabul edildi", "geçici olarak reddedildi",
	      "reddedildi" },
	  .col_code = "Kod", .col_count = "Sayı", .col_meaning = "Anlamı",
	  .col_reply = "Yanıt", .col_explanation = "Açıklama",
	  .col_dest = "Hedef", .col_rcpts = "Alıcılar",
	  .col_last = "Son yanıt", .col_next = "Sonraki deneme",
	  .no_replies = "Son bir saatte yanıt yok.",
	  .no_refused = "Son bir saatte geçici olarak reddedilen posta yok.",
	  .queue_empty = "Kuyruk boş.",
	  .in_pre = "", .in_post = " sonra", .due_now = "şimdi",
	  .u_s = "sn", .u_min = "dk", .u_h = "sa", .u_d = "gün",
	  .u_sep = " ",
	  .refresh_pre = "Bu sayfa her ", .refresh_post = " yenilenir.",
	  .json = "Aynı veriler JSON olarak:" },
	{ .tag = "fr", .title = "État", .version = "Version",
	  .uptime = "En service depuis", .updated = "Mis à jour",
	  .h_now = "Maintenant", .sessions_open = "Sessions ouvertes",
	  .h_replies = "Réponses de la dernière heure",
	  .h_refused = "Pourquoi du courrier a été refusé temporairement "
	      "(4xx)",
	  .h_queue = "File d'attente par destination",
	  .chart_title = "Réponses par minute, dernière heure",
	  .chart_desc = "Une barre empilée par minute, la plus ancienne à "
	      "gauche.",
	  .total = "Total", .axis_now = "maintenant",
	  .cls = { "accepté", "refusé temporairement", "refusé" },
	  .col_code = "Code", .col_count = "Nombre",
	  .col_meaning = "Signification", .col_reply = "Réponse",
	  .col_explanation = "Explication", .col_dest = "Destination",
	  .col_rcpts = "Destinataires", .col_last = "Dernière réponse",
	  .col_next = "Prochain essai",
	  .no_replies = "Aucune réponse dans la dernière heure.",
	  .no_refused = "Aucun courrier refusé temporairement dans la "
	      "dernière heure.",
	  .queue_empty = "La file d'attente est vide.",
	  .in_pre = "dans ", .in_post = "", .due_now = "maintenant",
	  .u_s = "s", .u_min = "min", .u_h = "h", .u_d = "j", .u_sep = " ",
	  .refresh_pre = "Cette page se recharge toutes les ",
	  .refresh_post = ".", .json = "Les mêmes données en JSON :" },
	{ .tag = "ko", .title = "상태", .version = "버전",
	  .uptime = "가동 시간", .updated = "갱신", .h_now = "현재",
	  .sessions_open = "열린 세션",
	  .h_replies = "최근 1시간의 응답",
	  .h_refused = "메일이 일시적으로 거부된 이유 (4xx)",
	  .h_queue = "목적지별 대기열",
	  .chart_title = "분당 응답 수, 최근 1시간",
	  .chart_desc = "분마다 누적 막대 하나, 가장 오래된 것이 왼쪽.",
	  .total = "합계", .axis_now = "지금",
	  .cls = { "수락", "일시 거부", "거부" },
	  .col_code = "코드", .col_count = "횟수", .col_meaning = "의미",
	  .col_reply = "응답", .col_explanation = "설명",
	  .col_dest = "목적지", .col_rcpts = "수신자",
	  .col_last = "마지막 응답", .col_next = "다음 시도",
	  .no_replies = "최근 1시간 동안 응답이 없습니다.",
	  .no_refused = "최근 1시간 동안 일시적으로 거부된 메일이 없습니다.",
	  .queue_empty = "대기열이 비어 있습니다.",
	  .in_pre = "", .in_post = " 후", .due_now = "지금",
	  .u_s = "초", .u_min = "분", .u_h = "시간", .u_d = "일",
	  .u_sep = "",
	  .refresh_pre = "이 페이지는 ", .refresh_post = "마다 새로 고칩니다.",
	  .json = "같은 데이터 (JSON):" },
};
/* clang-format on */

static const char *const class_label[STATUS_CLASSES] = {"2xx", "4xx", "5xx"};

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

static const struct words *
words_for(const char *tag)
{
	for (size_t i = 0; tag != NULL && i < N_LANGS; i++)
		if (strcmp(words[i].tag, tag) == 0)
			return &words[i];
	return &words[0];
}

static const struct explain_lang *
explain_lang_for(const struct words *w)
{
	const struct explain_lang *l = explain_lang_find(w->tag);

	return l != NULL ? l : explain_lang_at(0);
}

/* --- escaping ------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : 2;
	if (s[0] < 0xC2 || s[0] > 0xF4 || len > n)
		return 0;
	cp = s[0] & (0x7F >> len);
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return len;
}

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
			k = utf8_seq(p + i, n - i);
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
		} else if ((k = utf8_seq(p + i, n - i)) == 0) {
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
#define HTML_FIELD(fp, f) html_n((fp), (f), sizeof(f))
#define JSON_FIELD(fp, f) json_n((fp), (f), sizeof(f))

/* A field copied into a NUL-terminated buffer of size sizeof(f) + 1. */
static const char *
field_str(char *dst, size_t size, const char *f, size_t fsize)
{
	size_t n = strnlen(f, fsize);

	str_copy(dst, size, f, n < size ? n : size - 1);
	return dst;
}

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

static uint64_t
add_sat(uint64_t a, uint64_t b)
{
	uint64_t s;

	return str_add_u64(a, b, &s) ? s : UINT64_MAX;
}

static void
class_totals(const struct status_view *v, uint64_t tot[STATUS_CLASSES])
{
	for (int k = 0; k < STATUS_CLASSES; k++) {
		tot[k] = 0;
		for (int i = 0; i < STATUS_MINUTES; i++)
			tot[k] = add_sat(tot[k], v->minute[i][k]);
	}
}

/* --- Accept-Language ------------------------------------------------ */

struct lang_pick {
	int q[N_LANGS]; /* -1: not named */
	size_t pos[N_LANGS];
	int star_q;
	size_t star_pos;
};

/* "q=0.8" (after the ";" and spaces) into thousandths; -1 if malformed
 * or followed by anything but spaces. */
static int
parse_weight(const char *p, const char *end)
{
	int q, digits = 0;
	bool is_one;

	if (end - p < 3 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' ||
	    (p[2] != '0' && p[2] != '1'))
		return -1;
	is_one = p[2] == '1';
	q = is_one ? Q_ONE : 0;
	p += 3;
	if (p < end && *p == '.') {
		int scale = Q_ONE / 10;

		for (p++;
		     p < end && *p >= '0' && *p <= '9' && digits < Q_DIGITS;
		     p++, digits++, scale /= 10) {
			if (is_one && *p != '0')
				return -1;
			q += (*p - '0') * scale;
		}
	}
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p == end ? q : -1;
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The language range at [p, end): index into words[], N_LANGS for one of
 * no interest, N_LANGS + 1 for "*", -1 if malformed.  *len_out: its
 * length. */
static int
parse_range(const char *p, const char *end, size_t *len_out)
{
	size_t n = 0, sub = 0, primary = 0;
	char tag[SUBTAG_MAX + 1];

	if (p < end && *p == '*') {
		*len_out = 1;
		return N_LANGS + 1;
	}
	for (; p + n < end; n++) {
		char c = p[n];

		if (c == '-' && sub > 0) {
			primary = primary ? primary : sub;
			sub = 0;
		} else if (sub < SUBTAG_MAX &&
			   (is_alpha(c) || (primary > 0 && is_digit(c)))) {
			/* The primary subtag is letters only. */
			sub++;
		} else {
			break;
		}
	}
	if (sub == 0)
		return -1;
	primary = primary ? primary : sub;
	*len_out = n;
	if (primary >= sizeof tag)
		return N_LANGS;
	memcpy(tag, p, primary);
	tag[primary] = '\0';
	str_lower(tag);
	for (int i = 0; i < N_LANGS; i++)
		if (strcmp(words[i].tag, tag) == 0)
			return i;
	return N_LANGS;
}

/* One element of the list, [p, end), the pos'th. */
static void
pick_element(struct lang_pick *pk, const char *p, const char *end, size_t pos)
{
	size_t len;
	int which, q = Q_ONE;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (p == end || (which = parse_range(p, end, &len)) < 0)
		return;
	p += len;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end) {
		if (*p++ != ';')
			return;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if ((q = parse_weight(p, end)) < 0)
			return;
	}
	if (which == N_LANGS + 1) {
		if (pk->star_q < 0) {
			pk->star_q = q;
			pk->star_pos = pos;
		}
	} else if (which < N_LANGS && q > pk->q[which]) {
		pk->q[which] = q;
		pk->pos[which] = pos;
	}
}

const char *
status_lang(const char *accept_language)
{
	struct lang_pick pk = {.star_q = -1};
	const char *p = accept_language;
	int best = -1, best_q = 0;
	size_t best_pos = 0;

	if (p == NULL)
		return DEFAULT_LANG;
	for (int i = 0; i < N_LANGS; i++)
		pk.q[i] = -1;
	for (size_t pos = 0;; pos++) {
		const char *end = p + strcspn(p, ",");

		pick_element(&pk, p, end, pos);
		if (*end == '\0')
			break;
		p = end + 1;
	}
	for (int i = 0; i < N_LANGS; i++) {
		int q = pk.q[i] >= 0 ? pk.q[i] : pk.star_q;
		size_t pos = pk.q[i] >= 0 ? pk.pos[i] : pk.star_pos;

		if (q > best_q || (q == best_q && q > 0 && pos < best_pos)) {
			best = i;
			best_q = q;
			best_pos = pos;
		}
	}
	return best >= 0 ? words[best].tag : DEFAULT_LANG;
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
			class_label[k][0], CHART_LEFT + i * BAR_STEP + 1, base,
			BAR_W, h, class_fill[k]);
	}
	fputs("</g>\n", fp);
}

static uint64_t
chart_max(const struct status_view *v)
{
	uint64_t max = 0;

	for (int i = 0; i < STATUS_MINUTES; i++) {
		uint64_t t = add_sat(add_sat(v->minute[i][0], v->minute[i][1]),
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
		    class_fill[k], class_label[k]);
		html(fp, w->cls[k]);
		fprintf(fp, ": <b>%" PRIu64 "</b></li>\n", tot[k]);
	}
	fputs("<li>", fp);
	html(fp, w->total);
	fprintf(fp, ": <b>%" PRIu64 "</b></li>\n</ul>\n",
		add_sat(add_sat(tot[0], tot[1]), tot[2]));
}

static void
html_chart(FILE *fp, const struct status_view *v, const struct words *w)
{
	uint64_t tot[STATUS_CLASSES], max = chart_max(v);
	double scale = max > 0 ? (double)PLOT_H / (double)max : 0;

	class_totals(v, tot);
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
		fprintf(fp, " %s ", class_label[k]);
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
		    add_sat(sum[c - CODE_LOW], v->replies[i].count);
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
	    field_str(enh, sizeof enh, r->enhanced, sizeof r->enhanced), l);
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
	field_str(last, sizeof last, d->last_reply, sizeof d->last_reply);
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

/* The memory stream's buffer (open_memstream sets *buf at the flush and
 * the close, so it is read after them), or NULL if a write failed. */
static char *
finish(FILE *fp, char **buf)
{
	bool is_ok = fflush(fp) == 0 && !ferror(fp);

	if (fclose(fp) != 0)
		is_ok = false;
	if (!is_ok) {
		free(*buf);
		return NULL;
	}
	return *buf;
}

char *
status_page_html(const struct status_view *v, const char *lang)
{
	const struct words *w = words_for(lang);
	const struct explain_lang *l = explain_lang_for(w);
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
	return finish(fp, &buf);
}

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

	class_totals(v, tot);
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
		fprintf(fp, "%s\"%s\": %" PRIu64, k ? ", " : "", class_label[k],
			tot[k]);
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

		field_str(line, sizeof line, r->line, sizeof r->line);
		field_str(enh, sizeof enh, r->enhanced, sizeof r->enhanced);
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
		field_str(last, sizeof last, d->last_reply,
			  sizeof d->last_reply);
		json_explanation(fp, last, l);
		fputc('}', fp);
	}
	fputs("\n]\n", fp);
}

char *
status_json(const struct status_view *v, const char *which, const char *lang)
{
	const struct explain_lang *l = explain_lang_for(words_for(lang));
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
	return finish(fp, &buf);
}
