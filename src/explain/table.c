/*
 * table.c - the reply-code knowledge as C tables, and lookups on them.
 *
 * ref/codes.def is included here with X-macros, so the reference is
 * compiled into the binary and nothing is read at run time.  This file
 * answers "what is code C" (explain_find, explain_item_set), names classes
 * and subjects (RFC 5321 4.2.1, RFC 3463 2-3) and suggests the nearest
 * known codes when a person types one postern does not know.
 *
 * Pure functions over const tables: callable from any thread.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explain.h"

#define ENH_NUMBER(subject, detail) ((subject) * 1000 + (detail))
/* Subjects and details have at most three digits (RFC 3463 2). */
#define ENH_PART_DIGITS_MAX 3
#define BASIC_DIGITS 3
/* Ranking of closest codes: a different first digit weighs this much. */
#define CLOSEST_OTHER_CLASS 1000
#define CLOSEST_OTHER_SUBJECT 100

static const struct explain_code codes[] = {
#define BASIC(c, n, r, d, w, f) \
	{ .kind = EXPLAIN_BASIC, .code = #c, .number = (c), .classes = "", \
	  .basic = "", .name = (n), .ref = (r), .description = (d), \
	  .when = (w), .fix = (f) },
#define ENH(s, dt, cl, n, r, b, d, w, f) \
	{ .kind = EXPLAIN_ENHANCED, .code = "X." #s "." #dt, \
	  .number = ENH_NUMBER(s, dt), .subject = (s), .detail = (dt), \
	  .classes = (cl), .basic = (b), .name = (n), .ref = (r), \
	  .description = (d), .when = (w), .fix = (f) },
#include "../../ref/codes.def"
};

#define N_CODES (sizeof codes / sizeof codes[0])

struct named_digit {
	int digit;
	const char *name;
};

static const struct named_digit basic_classes[] = {
#define BCLASS(d, n) { (d), (n) },
#include "../../ref/codes.def"
};

static const struct named_digit enh_classes[] = {
#define ECLASS(d, n) { (d), (n) },
#include "../../ref/codes.def"
};

static const struct named_digit subjects[] = {
#define SUBJECT(d, n) { (d), (n) },
#include "../../ref/codes.def"
};

#define N_OF(a) (sizeof (a) / sizeof (a)[0])

size_t
explain_count(void)
{
	return N_CODES;
}

const struct explain_code *
explain_at(size_t i)
{
	return i < N_CODES ? &codes[i] : NULL;
}

static const char *
digit_name(const struct named_digit *t, size_t n, int digit)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].digit == digit)
			return t[i].name;
	return "";
}

const char *
explain_class_name(enum explain_kind kind, int digit)
{
	if (kind == EXPLAIN_BASIC)
		return digit_name(basic_classes, N_OF(basic_classes), digit);
	if (digit == 0)
		return "Any Class";
	return digit_name(enh_classes, N_OF(enh_classes), digit);
}

const char *
explain_subject_name(int subject)
{
	return digit_name(subjects, N_OF(subjects), subject);
}

/* Digits [p, p+n) with 1 <= n <= max, value into *out; returns n or 0. */
static size_t
scan_number(const char *p, size_t max, int *out)
{
	size_t n = 0;
	int v = 0;

	while (n < max && isdigit((unsigned char)p[n])) {
		v = v * 10 + (p[n] - '0');
		n++;
	}
	if (n == 0 || isdigit((unsigned char)p[n]))
		return 0;
	*out = v;
	return n;
}

/*
 * Split "5.7.26" / "X.7.26" into class digit (0 for X), subject, detail;
 * or "421" into number.  Returns the kind, or -1 if malformed.
 */
static int
split_code(const char *code, int *cls, int *a, int *b)
{
	const char *p = code;
	size_t n;

	if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) && p[3] == '\0') {
		*cls = p[0] - '0';
		*a = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		*b = 0;
		return EXPLAIN_BASIC;
	}
	if (p[0] == 'X' || p[0] == 'x')
		*cls = 0;
	else if (isdigit((unsigned char)p[0]))
		*cls = p[0] - '0';
	else
		return -1;
	if (p[1] != '.')
		return -1;
	p += 2;
	if ((n = scan_number(p, ENH_PART_DIGITS_MAX, a)) == 0 || p[n] != '.')
		return -1;
	p += n + 1;
	if ((n = scan_number(p, ENH_PART_DIGITS_MAX, b)) == 0 || p[n] != '\0')
		return -1;
	return EXPLAIN_ENHANCED;
}

static const struct explain_code *
find_row(enum explain_kind kind, int number)
{
	for (size_t i = 0; i < N_CODES; i++)
		if (codes[i].kind == kind && codes[i].number == number)
			return &codes[i];
	return NULL;
}

int
explain_item_set(struct explain_item *out, const char *code)
{
	int kind, cls, a, b;
	const struct explain_code *row;

	memset(out, 0, sizeof *out);
	if (strlen(code) >= sizeof out->code)
		return -1;
	kind = split_code(code, &cls, &a, &b);
	if (kind == EXPLAIN_BASIC)
		row = find_row(EXPLAIN_BASIC, a);
	else if (kind == EXPLAIN_ENHANCED)
		row = find_row(EXPLAIN_ENHANCED, ENH_NUMBER(a, b));
	else
		return -1;
	if (row == NULL)
		return -1;
	if (kind == EXPLAIN_ENHANCED && cls != 0 &&
	    strchr(row->classes, '0' + cls) == NULL)
		return -1;
	if (kind == EXPLAIN_ENHANCED && cls == 0)
		snprintf(out->code, sizeof out->code, "X.%d.%d", a, b);
	else if (kind == EXPLAIN_ENHANCED)
		snprintf(out->code, sizeof out->code, "%d.%d.%d", cls, a, b);
	else
		snprintf(out->code, sizeof out->code, "%d", a);
	out->class_digit = cls;
	out->row = row;
	return 0;
}

const struct explain_code *
explain_find(const char *code)
{
	struct explain_item it;

	if (code == NULL || explain_item_set(&it, code) != 0)
		return NULL;
	return it.row;
}

const char *
explain_item_class(const struct explain_item *it, char *buf, size_t size)
{
	if (it->row == NULL || it->row->kind == EXPLAIN_BASIC)
		snprintf(buf, size, "%dxx", it->class_digit);
	else if (it->class_digit == 0)
		snprintf(buf, size, "X.X.X");
	else
		snprintf(buf, size, "%d.X.X", it->class_digit);
	return buf;
}

struct ranked {
	const struct explain_code *row;
	int cls;
	int score;
};

static int
ranked_cmp(const void *x, const void *y)
{
	const struct ranked *a = x, *b = y;

	if (a->score != b->score)
		return a->score < b->score ? -1 : 1;
	return a->row->number < b->row->number ? -1 : 1;
}

/* The class to show an enhanced row with: the one asked for if it fits. */
static int
row_class(const struct explain_code *row, int wanted)
{
	if (wanted != 0 && strchr(row->classes, '0' + wanted) != NULL)
		return wanted;
	return row->classes[0] - '0';
}

int
explain_closest_format(const char *code, size_t n, char *buf, size_t size)
{
	struct ranked r[N_CODES];
	size_t nr = 0;
	int kind, cls, a, b, len = 0;

	if (size > 0)
		buf[0] = '\0';
	kind = split_code(code, &cls, &a, &b);
	if (kind < 0)
		return 0;
	for (size_t i = 0; i < N_CODES; i++) {
		const struct explain_code *row = &codes[i];
		int score;

		if ((int)row->kind != kind)
			continue;
		if (kind == EXPLAIN_BASIC) {
			score = abs(row->number - a);
			if (row->number / 100 != a / 100)
				score += CLOSEST_OTHER_CLASS;
		} else {
			score = abs(row->subject - a) * CLOSEST_OTHER_SUBJECT +
			    abs(row->detail - b);
			if (cls != 0 && strchr(row->classes, '0' + cls) == NULL)
				score += CLOSEST_OTHER_CLASS;
		}
		r[nr++] = (struct ranked){ row, row_class(row, cls), score };
	}
	qsort(r, nr, sizeof r[0], ranked_cmp);
	for (size_t i = 0; i < nr && i < n; i++) {
		size_t off = (size_t)len < size ? (size_t)len : size;
		const char *sep = i > 0 ? ", " : "";

		if (kind == EXPLAIN_BASIC)
			len += snprintf(buf + off, size - off, "%s%s", sep,
			    r[i].row->code);
		else
			len += snprintf(buf + off, size - off, "%s%d.%d.%d",
			    sep, r[i].cls, r[i].row->subject,
			    r[i].row->detail);
	}
	return len;
}
