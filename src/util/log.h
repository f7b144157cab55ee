/*
 * log.h - one line per event, key=value, event first (STYLE.md Logging).
 *
 *	log_msg(LOG_INFO, "ev=rcpt sid=%s reply=%d", ...);
 *
 * Lines go to stderr with a UTC timestamp and the level.  Callers quote
 * values that may hold spaces with log_q().  Thread-safe: one write(2) per
 * line.
 */
#ifndef POSTERN_UTIL_LOG_H
#define POSTERN_UTIL_LOG_H

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

#endif
