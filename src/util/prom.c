/*
 * prom.c - Prometheus text exposition format 0.0.4, written into a FILE *.
 *
 * Called by the /metrics handler in server/, which writes each family
 * (prom_help_type, then its samples) into an open_memstream() and copies
 * the text into the reply.  Promises: a line is written only after every
 * name in it has been checked, so an invalid name costs its own line and
 * never leaves half a line behind; label values and HELP text always come
 * out as valid, escaped UTF-8; numbers read back exactly.
 *
 * The format: one "name{label="value",...} value" line per sample;
 * "# HELP name text" and "# TYPE name counter|gauge|histogram" before a
 * family's samples.  Label values escape backslash, double quote and line
 * feed as \\, \" and \n; HELP text escapes backslash and line feed.  A
 * histogram is name_bucket lines with a cumulative count per "le" (less
 * than or equal) bound, the last le="+Inf", then name_sum and name_count.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/prom.h"

/* Written for an octet that is not part of well-formed UTF-8. */
#define PROM_REPLACEMENT "\xef\xbf\xbd"

/* [a-zA-Z_]: may start a name; digits (and ':') may only follow. */
static bool
prom_is_name_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
prom_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

bool
prom_name_is_valid(const char *name)
{
	if (name == NULL || !(prom_is_name_start(name[0]) || name[0] == ':'))
		return false;
	for (const char *p = name + 1; *p; p++)
		if (!prom_is_name_start(*p) && !prom_is_digit(*p) && *p != ':')
			return false;
	return true;
}

bool
prom_label_name_is_valid(const char *name)
{
	if (name == NULL || !prom_is_name_start(name[0]))
		return false;
	if (name[0] == '_' && name[1] == '_')
		return false;
	for (const char *p = name + 1; *p; p++)
		if (!prom_is_name_start(*p) && !prom_is_digit(*p))
			return false;
	return true;
}

int
prom_format_double(char *buf, size_t size, double v)
{
	const char *s = NULL;
	int w;

	if (isnan(v))
		s = "NaN";
	else if (isinf(v))
		s = v > 0 ? "+Inf" : "-Inf";
	if (s != NULL) {
		w = snprintf(buf, size, "%s", s);
	} else {
		/* The fewest digits that read back as v; 17 always do. */
		for (int prec = 15;; prec++) {
			w = snprintf(buf, size, "%.*g", prec, v);
			if (w < 0 || (size_t)w >= size || prec == 17 ||
			    strtod(buf, NULL) == v)
				break;
		}
	}
	if (w < 0 || (size_t)w >= size) {
		if (size > 0)
			buf[0] = '\0';
		return -1;
	}
	return 0;
}

/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * no surrogates, nothing past U+10FFFF), or 0 when s does not start one.
 */
static size_t
prom_utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* past U+10FFFF */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * Writes s escaped: backslash and line feed always, the double quote when
 * is_label (a label value; HELP text leaves it alone).  Ill-formed UTF-8
 * octets become U+FFFD one by one.
 */
static void
prom_put_escaped(FILE *fp, const char *s, bool is_label)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	while (*p) {
		if (*p == '\\') {
			fputs("\\\\", fp);
		} else if (*p == '\n') {
			fputs("\\n", fp);
		} else if (*p == '"' && is_label) {
			fputs("\\\"", fp);
		} else if ((n = prom_utf8_len(p)) == 0) {
			fputs(PROM_REPLACEMENT, fp);
		} else {
			fwrite(p, 1, n, fp);
			p += n;
			continue;
		}
		p++;
	}
}

static const char *
prom_type_name(enum prom_type type)
{
	switch (type) {
	case PROM_COUNTER:
		return "counter";
	case PROM_GAUGE:
		return "gauge";
	case PROM_HISTOGRAM:
		return "histogram";
	}
	return NULL;
}

int
prom_help_type(FILE *fp, const char *name, const char *help,
	       enum prom_type type)
{
	const char *tname = prom_type_name(type);

	if (!prom_name_is_valid(name) || tname == NULL)
		return -1;
	if (help != NULL) {
		fprintf(fp, "# HELP %s ", name);
		prom_put_escaped(fp, help, false);
		fputc('\n', fp);
	}
	fprintf(fp, "# TYPE %s %s\n", name, tname);
	return ferror(fp) ? -1 : 0;
}

/*
 * True when labels[0..n) may be written: valid names, no name twice, no
 * NULL value, and none named reserved (NULL: no reserved name).
 */
static bool
prom_labels_are_valid(const struct prom_label *labels, size_t n,
		      const char *reserved)
{
	if (n > 0 && labels == NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!prom_label_name_is_valid(labels[i].name) ||
		    labels[i].value == NULL)
			return false;
		if (reserved != NULL && strcmp(labels[i].name, reserved) == 0)
			return false;
		for (size_t j = 0; j < i; j++)
			if (strcmp(labels[i].name, labels[j].name) == 0)
				return false;
	}
	return true;
}

/*
 * Writes "name<suffix>{labels[,le="le"]} value\n"; le may be NULL.  The
 * names are already checked.
 */
static void
prom_put_line(FILE *fp, const char *name, const char *suffix,
	      const struct prom_label *labels, size_t n, const char *le,
	      const char *value)
{
	fprintf(fp, "%s%s", name, suffix);
	if (n > 0 || le != NULL) {
		fputc('{', fp);
		for (size_t i = 0; i < n; i++) {
			fprintf(fp, "%s%s=\"", i > 0 ? "," : "",
				labels[i].name);
			prom_put_escaped(fp, labels[i].value, true);
			fputc('"', fp);
		}
		if (le != NULL)
			fprintf(fp, "%sle=\"%s\"", n > 0 ? "," : "", le);
		fputc('}', fp);
	}
	fprintf(fp, " %s\n", value);
}

static int
prom_sample_str(FILE *fp, const char *name, const struct prom_label *labels,
		size_t n, const char *value)
{
	if (!prom_name_is_valid(name) ||
	    !prom_labels_are_valid(labels, n, NULL))
		return -1;
	prom_put_line(fp, name, "", labels, n, NULL, value);
	return ferror(fp) ? -1 : 0;
}

int
prom_sample_u64(FILE *fp, const char *name, const struct prom_label *labels,
		size_t n, uint64_t value)
{
	char buf[PROM_DOUBLE_MAX];

	snprintf(buf, sizeof(buf), "%" PRIu64, value);
	return prom_sample_str(fp, name, labels, n, buf);
}

int
prom_sample_f64(FILE *fp, const char *name, const struct prom_label *labels,
		size_t n, double value)
{
	char buf[PROM_DOUBLE_MAX];

	if (prom_format_double(buf, sizeof(buf), value) != 0)
		return -1;
	return prom_sample_str(fp, name, labels, n, buf);
}

int
prom_hist(FILE *fp, const char *name, const struct prom_label *labels, size_t n,
	  const struct hist *h)
{
	const struct hist_buckets *b = h->buckets;
	char le[PROM_DOUBLE_MAX], value[PROM_DOUBLE_MAX], sum[PROM_DOUBLE_MAX];
	uint64_t cum = 0;

	/* Bounds are finite (hist_init), so only the sum is formatted first. */
	if (b == NULL || b->n > HIST_BUCKETS_MAX || !prom_name_is_valid(name) ||
	    !prom_labels_are_valid(labels, n, "le") ||
	    prom_format_double(sum, sizeof(sum), h->sum) != 0)
		return -1;
	for (size_t i = 0; i <= b->n; i++) {
		cum += h->counts[i];
		if (i < b->n) {
			if (prom_format_double(le, sizeof(le), b->le[i]) != 0)
				return -1;
		} else {
			snprintf(le, sizeof(le), "+Inf");
		}
		snprintf(value, sizeof(value), "%" PRIu64, cum);
		prom_put_line(fp, name, "_bucket", labels, n, le, value);
	}
	prom_put_line(fp, name, "_sum", labels, n, NULL, sum);
	snprintf(value, sizeof(value), "%" PRIu64, cum);
	prom_put_line(fp, name, "_count", labels, n, NULL, value);
	return ferror(fp) ? -1 : 0;
}
