/*
 * log.h - one line per event, key=value, event first (STYLE.md Logging).
 *
 *	log_msg(LOG_INFO, "ev=rcpt sid=%s reply=%d", ...);
 *
 * Lines go to stderr with a UTC timestamp and the level.  Callers quote
 * values that may hold spaces with log_q().  Thread-safe: one write(2) per
 * line, or per run of whole lines (log_buffer).
 */
#ifndef POSTERN_UTIL_LOG_H
#define POSTERN_UTIL_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Lines above this level are dropped (default LOG_INFO). */
void log_set_level(enum log_level level);

/* Formats and writes one line; a trailing newline is added. */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Returns s ready to be a value: as is when it holds no space, quote,
 * backslash, '=' or control octet, else in double quotes with those
 * escaped; "" for NULL or empty.  The result lives in one of a few
 * thread-local buffers, valid for the next few calls on this thread.
 */
const char *log_q(const char *s);
/*
 * For a thread with a natural moment to write (the event loop after each
 * turn, a worker after each batch): log_buffer(true) keeps its info and
 * debug lines until log_flush() - or until the next one does not fit in
 * PIPE_BUF octets; warn and err lines are written at once, after what is
 * gathered.  log_buffer(false) writes what is gathered and stops.  Other
 * threads write each line as it comes.
 */
void log_buffer(bool on);
void log_flush(void);

#endif
