/*
 * log.c - the log sink: key=value lines on stderr.
 *
 * Called from the loop thread and the spool and delivery workers; each line
 * is formatted into a stack buffer and written with one write(2), so lines
 * from different threads never interleave.  Over-long lines are cut, never
 * split.  A thread that turned buffering on (log_buffer) gathers its info
 * and debug lines in up to PIPE_BUF octets - whole lines, written with one
 * write(2), so still atomic on a pipe - until it calls log_flush() or the
 * next line does not fit; a warn or err line goes out at once, after them.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define LOG_LINE_MAX 2048
#define LOG_BUF_MAX PIPE_BUF /* one write(2) a pipe keeps whole */
#define LOG_Q_SLOTS 4
#define LOG_Q_MAX 1024
#define LOG_STAMP_MAX 32 /* "YYYY-MM-DDTHH:MM:SS" and room */

static enum log_level log_level = LOG_INFO;
static __thread char *log_buf; /* this thread's gathered lines, or NULL */
static __thread size_t log_buf_len;
static const struct {
	const char *name;
	size_t len;
} level_names[] = {{"err", 3}, {"warn", 4}, {"info", 4}, {"debug", 5}};

void
log_set_level(enum log_level level)
{
	log_level = level;
}

/*
 * Writes "YYYY-MM-DDTHH:MM:SS.mmmZ LEVEL " into line.  The seconds part
 * is formatted once per second and thread: gmtime_r and strftime for
 * every line were a tenth of the logging cost (callgrind).
 */
static size_t
stamp(char *line, enum log_level level)
{
	static __thread time_t cached_sec = -1;
	static __thread char cached[LOG_STAMP_MAX];
	static __thread size_t cached_len;
	size_t n, name_len = level_names[level].len;
	struct timespec ts;
	long ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != cached_sec) {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		cached_len = strftime(cached, sizeof cached,
				      "%Y-%m-%dT%H:%M:%S", &tm);
		cached_sec = ts.tv_sec;
	}
	memcpy(line, cached, cached_len);
	n = cached_len;
	ms = ts.tv_nsec / 1000000;
	line[n++] = '.';
	line[n++] = (char)('0' + ms / 100);
	line[n++] = (char)('0' + ms / 10 % 10);
	line[n++] = (char)('0' + ms % 10);
	line[n++] = 'Z';
	line[n++] = ' ';
	memcpy(line + n, level_names[level].name, name_len);
	n += name_len;
	line[n++] = ' ';
	return n;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	va_list ap;
	size_t n;
	int r;

	if (level > log_level)
		return;
	n = stamp(line, level);
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r < sizeof line - n - 1 ? (size_t)r
						     : sizeof line - n - 2;
	line[n++] = '\n';
	if (log_buf != NULL && level >= LOG_INFO) {
		if (log_buf_len + n > LOG_BUF_MAX)
			log_flush();
		memcpy(log_buf + log_buf_len, line, n);
		log_buf_len += n;
		return;
	}
	if (log_buf != NULL && log_buf_len > 0 &&
	    log_buf_len + n <= LOG_BUF_MAX) {
		/* After what is gathered, in the same write. */
		memcpy(log_buf + log_buf_len, line, n);
		log_buf_len += n;
		log_flush();
		return;
	}
	log_flush();
	/* A failed log write has nowhere to be reported. */
	(void)!write(STDERR_FILENO, line, n);
}

void
log_flush(void)
{
	size_t n = log_buf_len;

	log_buf_len = 0;
	if (n > 0)
		(void)!write(STDERR_FILENO, log_buf, n);
}

void
log_buffer(bool on)
{
	if (!on) {
		log_flush();
		free(log_buf);
		log_buf = NULL;
		return;
	}
	if (log_buf == NULL)
		log_buf = malloc(LOG_BUF_MAX); /* none: lines go out at once */
}

const char *
log_q(const char *s)
{
	static __thread char slots[LOG_Q_SLOTS][LOG_Q_MAX];
	static __thread unsigned next;
	char *out = slots[next++ % LOG_Q_SLOTS];
	size_t o = 0;
	int needs = 0;

	if (s == NULL || *s == '\0')
		return "\"\"";
	for (const char *p = s; *p; p++)
		if (*p == ' ' || *p == '"' || *p == '\\' || *p == '=' ||
		    (unsigned char)*p < 0x20 || *p == 0x7f)
			needs = 1;
	if (!needs)
		return s;
	out[o++] = '"';
	for (const char *p = s; *p && o < LOG_Q_MAX - 6; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, LOG_Q_MAX - o, "\\x%02x",
					      c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}
