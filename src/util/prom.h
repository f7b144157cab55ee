/*
 * prom.h - a writer for Prometheus's text exposition format 0.0.4 (the
 * body of GET /metrics, Content-Type "text/plain; version=0.0.4;
 * charset=utf-8"); no mail knowledge, no I/O beyond the FILE * it is given.
 *
 *	FILE *fp = open_memstream(&text, &len);
 *	struct prom_label l[] = { { "code", "250" }, { "reason", "ok" } };
 *
 *	prom_help_type(fp, "postern_replies_total", "Replies sent.",
 *		       PROM_COUNTER);
 *	prom_sample_u64(fp, "postern_replies_total", l, 2, n);
 *	prom_help_type(fp, "postern_spool_fsync_seconds", "...",
 *		       PROM_HISTOGRAM);
 *	prom_hist(fp, "postern_spool_fsync_seconds", NULL, 0, &h);
 *	fclose(fp);	// then text[0..len) goes into the reply's evbuffer
 *
 * Each function checks the metric and label names first and writes nothing
 * when one is invalid; label values and HELP text are escaped as the
 * format asks and made valid UTF-8 (an octet that is not part of a
 * well-formed sequence becomes U+FFFD), since Prometheus rejects a whole
 * scrape over one bad label value.  The caller writes each family's
 * HELP/TYPE once, before its samples, and keeps a family's samples
 * together; nothing here remembers what was written.
 *
 * Numbers: integers exactly; doubles in the shortest form that reads back
 * to the same value ("0.1", "1e-05"); +Inf, -Inf and NaN as "+Inf", "-Inf",
 * "NaN".  Relies on the C locale's "." (postern never calls setlocale).
 */
#ifndef POSTERN_UTIL_PROM_H
#define POSTERN_UTIL_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/hist.h"

/* Longest text prom_format_double() writes, with its NUL. */
#define PROM_DOUBLE_MAX 32

enum prom_type {
	PROM_COUNTER,
	PROM_GAUGE,
	PROM_HISTOGRAM,
};

/* One label: both strings borrowed for the call; value may be "". */
struct prom_label {
	const char *name;
	const char *value;
};

/* True when name matches [a-zA-Z_:][a-zA-Z0-9_:]* (a metric name). */
bool prom_name_is_valid(const char *name);

/*
 * True when name matches [a-zA-Z_][a-zA-Z0-9_]* and does not start with
 * "__" (reserved for Prometheus itself).
 */
bool prom_label_name_is_valid(const char *name);

/*
 * Writes v into buf (size bytes, PROM_DOUBLE_MAX is enough) as the format
 * spells it.  Returns 0, or -1 when it does not fit (buf then empty).
 */
int prom_format_double(char *buf, size_t size, double v);

/*
 * Writes "# HELP name help" (help escaped; no HELP line when help is NULL)
 * and "# TYPE name type".  Returns 0, or -1 on an invalid name or a write
 * error on fp.
 */
int prom_help_type(FILE *fp, const char *name, const char *help,
		   enum prom_type type);

/*
 * Writes one sample line: name{l0="v0",...} value.  labels may be NULL
 * when n is 0.  Returns 0, or -1 (nothing written) on an invalid metric or
 * label name, a label name given twice or a NULL value, or -1 on a write
 * error on fp.
 */
int prom_sample_u64(FILE *fp, const char *name, const struct prom_label *labels,
		    size_t n, uint64_t value);
int prom_sample_f64(FILE *fp, const char *name, const struct prom_label *labels,
		    size_t n, double value);

/*
 * Writes histogram h as name_bucket{...,le="B"} lines with cumulative
 * counts for each bound and le="+Inf", then name_sum and name_count, all
 * with the given labels.  The +Inf bucket and _count are the sum of the
 * per-bucket counts, so the lines agree with each other.  Returns 0, or
 * -1 as prom_sample_u64() does, and also when labels hold "le" or h has no
 * bucket set (nothing written then).
 */
int prom_hist(FILE *fp, const char *name, const struct prom_label *labels,
	      size_t n, const struct hist *h);

#endif
