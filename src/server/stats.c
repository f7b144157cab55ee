/*
 * stats.c - the receiving side's counters for /metrics and the status
 * page (struct server_stats, server.h): session_reply() counts every reply
 * here, overall and in its minute of the last hour, and keeps a refusal's
 * line; the data path times end of data -> 250 with stats_now().  Loop
 * thread only; http.c reads them.
 */
#include <string.h>
#include <time.h>

#include "server/server.h"
#include "util/str.h"

void
stats_reply(struct server_stats *st, enum reply_id id, int64_t now,
	    const char *line, size_t len)
{
	int64_t minute = now / 60;
	size_t slot = (size_t)(minute % STATS_MINUTES);

	st->replies[id]++;
	if (reply_row(id)->code >= 400) {
		/* its last line only (a multi-line reply ends the text) */
		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		str_copy(st->last_line[id], sizeof st->last_line[id], line,
			 len < sizeof st->last_line[id]
			     ? len
			     : sizeof st->last_line[id] - 1);
	}
	if (st->minute_of[slot] != minute) {
		memset(st->minute[slot], 0, sizeof st->minute[slot]);
		st->minute_of[slot] = minute;
	}
	st->minute[slot][id]++;
}

double
stats_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
