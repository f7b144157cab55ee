/*
 * status_words.c - the status page's words in postern's five languages,
 * the pick of one from an Accept-Language header, and the few helpers
 * the page and its JSON share (UTF-8 check, field copy, saturating
 * counts, closing the memory stream).
 *
 * Called by status_page.c and status_json.c (through status_page_int.h)
 * and by the HTTP handler (status_lang(), status_page.h).  Pure: no I/O,
 * no clock, no state; the tables are static const.
 *
 * Promises: status_lang() follows RFC 9110 12.5.4 (highest q-value wins,
 * the first written on a tie, "*" for any language not named, q=0 as "not
 * this one", malformed elements skipped) and only ever returns one of the
 * five tags; every lookup falls back to English.  The texts of the reply
 * codes are not here: they are src/explain/'s, as `postern explain` shows.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explain.h"
#include "server/status_page.h"
#include "server/status_page_int.h"
#include "util/str.h"

#define DEFAULT_LANG "en"

/* q-values in thousandths (RFC 9110 12.4.2: at most three decimals). */
#define Q_ONE 1000
#define Q_DIGITS 3
/* A language subtag: 1*8 letters or digits (RFC 4647 2.1). */
#define SUBTAG_MAX 8
#define N_LANGS 5

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

const char *const status_class_label[STATUS_CLASSES] = {"2xx", "4xx", "5xx"};

const struct words *
status_words_for(const char *tag)
{
	for (size_t i = 0; tag != NULL && i < N_LANGS; i++)
		if (strcmp(words[i].tag, tag) == 0)
			return &words[i];
	return &words[0];
}

const struct explain_lang *
status_explain_lang(const struct words *w)
{
	const struct explain_lang *l = explain_lang_find(w->tag);

	return l != NULL ? l : explain_lang_at(0);
}

/* --- shared by the page and the JSON -------------------------------- */

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0. */
size_t
status_utf8_seq(const unsigned char *s, size_t n)
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

/* A field copied into a NUL-terminated buffer of size sizeof(f) + 1. */
const char *
status_field_str(char *dst, size_t size, const char *f, size_t fsize)
{
	size_t n = strnlen(f, fsize);

	str_copy(dst, size, f, n < size ? n : size - 1);
	return dst;
}

uint64_t
status_add_sat(uint64_t a, uint64_t b)
{
	uint64_t s;

	return str_add_u64(a, b, &s) ? s : UINT64_MAX;
}

void
status_class_totals(const struct status_view *v, uint64_t tot[STATUS_CLASSES])
{
	for (int k = 0; k < STATUS_CLASSES; k++) {
		tot[k] = 0;
		for (int i = 0; i < STATUS_MINUTES; i++)
			tot[k] = status_add_sat(tot[k], v->minute[i][k]);
	}
}

/* The memory stream's buffer (open_memstream sets *buf at the flush and
 * the close, so it is read after them), or NULL if a write failed. */
char *
status_finish(FILE *fp, char **buf)
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
