/*
 * status_page.h - the live status page at / and its JSON twins
 * (/api/status, /api/replies, /api/queue), issue 19.
 *
 * A pure renderer: the caller (the HTTP handler on the server's loop)
 * gathers a struct status_view, picks a language with status_lang() and
 * gets one malloc'd document back.  Nothing here does I/O, logs, reads
 * the clock or keeps state; every function may run on any thread.
 *
 * Every string of the view is treated as hostile (reply texts come from
 * remote servers): HTML-escaped in the page, JSON-escaped in the JSON,
 * invalid UTF-8 replaced by U+FFFD.  Fixed-size char arrays below need
 * not be NUL-terminated: the renderer reads at most their size.
 */
#ifndef POSTERN_STATUS_PAGE_H
#define POSTERN_STATUS_PAGE_H

#include <stddef.h>
#include <stdint.h>

/* The chart's span: one bar per minute of the last hour. */
#define STATUS_MINUTES 60
/* Reply classes counted per minute: 2xx, 4xx, 5xx (index 0, 1, 2). */
#define STATUS_CLASSES 3
/* Seconds between the page's own reloads (<meta http-equiv=refresh>). */
#define STATUS_REFRESH_S 30

/* One distinct reply sent in the last hour. */
struct status_reply {
	unsigned code;	   /* 450 */
	char enhanced[16]; /* "4.2.0", or "" */
	char reason[48];   /* the reply id in lower case: "greylisted" */
	char line[256];	   /* as sent: "450 4.2.0 Greylisted, retry..." */
	uint64_t count;	   /* times sent in the last hour */
};

/* The queue's recipients for one destination (domain or relay host). */
struct status_dest {
	char destination[300];
	size_t recipients;
	char last_reply[512]; /* the remote's last reply, "" if none yet */
	int64_t next_try;     /* Unix seconds; 0: none scheduled */
};

struct status_view {
	const char *hostname; /* [server] hostname */
	const char *version;  /* POSTERN_VERSION */
	int64_t now, started; /* Unix seconds */
	uint64_t sessions_open;
	/* The last hour, oldest minute first; per minute the replies sent of
	 * class 2xx, 4xx, 5xx. */
	uint64_t minute[STATUS_MINUTES][STATUS_CLASSES];
	/* Every reply sent in the last hour, one row per distinct (code,
	 * enhanced, reason); shown in this order (pass them by count,
	 * highest first). */
	const struct status_reply *replies;
	size_t n_replies;
	/* Shown in this order. */
	const struct status_dest *dests;
	size_t n_dests;
};

/*
 * The language for an Accept-Language header (RFC 9110 12.5.4): the
 * language range with the highest q-value among postern's five (en, id,
 * tr, fr, ko); "fr-CA" counts as fr, "*" as any language the header does
 * not name, q=0 as "not this one"; on a tie the range written first wins.
 * Malformed elements are skipped.  Returns "en" when none matches or the
 * header is NULL.  The string is static.
 */
const char *status_lang(const char *accept_language);

/*
 * The page: one standalone HTML document (inline CSS and SVG, no script,
 * <html lang> set, reloads itself every STATUS_REFRESH_S seconds) in
 * language lang ("en" if NULL or not one of the five).  Sections: header
 * (name, version, uptime), now (sessions open), replies of the last hour
 * (a stacked bar chart and a table by code in words), every 4xx sent with
 * its explanation, the queue by destination with its explanation, and a
 * footer linking /api/status, /api/replies, /api/queue and /metrics.
 * Explanations are `postern explain`'s: its headings in lang, its texts.
 * Returns a malloc'd NUL-terminated string the caller frees, or NULL when
 * out of memory.
 */
char *status_page_html(const struct status_view *v, const char *lang);

/*
 * The same data as JSON (schema "postern-status/1"), malloc'd, NULL when
 * out of memory or which is unknown:
 *   "status"   name, version, now, started, uptime, sessions open, the
 *              totals of the last hour by class and per minute, how many
 *              reply rows and queued destinations/recipients there are;
 *   "replies"  each reply row with "explanation": the document
 *              `postern explain LINE --lang L --format json` prints
 *              (schema postern-explain/1), or null for an unknown code;
 *   "queue"    each destination, next_try (null when none) and the
 *              explanation of its last reply, likewise.
 */
char *status_json(const struct status_view *v, const char *which,
		  const char *lang);

#endif
