/*
 * adns_table.h - an adns_view over a table written in the test, for the
 * unit tests of src/auth/ (SPF, DKIM, DMARC).  The integration tests use
 * a real DNS server (dnsmasq) instead.
 *
 *   static const struct adns_row zone[] = {
 *       {"example.org", ADNS_TXT, ADNS_OK, {"v=spf1 a -all"}},
 *       {"example.org", ADNS_A, ADNS_OK, {"192.0.2.1"}},
 *       {"slow.example", ADNS_TXT, ADNS_TEMPFAIL, {0}},
 *       {0}};
 *   struct adns_table t;
 *   struct adns_view v = adns_table_view(&t, zone, true);
 *
 * A question with no row is NXDOMAIN when no row has its name, NODATA
 * when one does.  With is_lazy, get() answers only what was asked with
 * need() before the last adns_table_round(), as the real resolver does:
 * the test then calls the evaluator, adns_table_round(), the evaluator
 * again ... and can count rounds and questions.
 */
#ifndef POSTERN_TESTS_ADNS_TABLE_H
#define POSTERN_TESTS_ADNS_TABLE_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/adns.h"

#define ADNS_ROW_RR_MAX 16
#define ADNS_TABLE_ASKED_MAX 256

struct adns_row {
	const char *name;
	enum adns_type type;
	enum adns_status status;
	const char *rr[ADNS_ROW_RR_MAX];
};

struct adns_table_q {
	char name[256];
	enum adns_type type;
	bool is_answered;
	struct adns_answer ans;
};

struct adns_table {
	const struct adns_row *rows;
	bool is_lazy;
	struct adns_table_q asked[ADNS_TABLE_ASKED_MAX];
	size_t n_asked;
	unsigned rounds;   /* adns_table_round() calls that answered something */
	unsigned n_needs;  /* need() calls, repeats included */
	struct adns_answer nx, nodata;
};

static inline struct adns_table_q *
adns_table_find(struct adns_table *t, const char *name, enum adns_type type)
{
	for (size_t i = 0; i < t->n_asked; i++)
		if (t->asked[i].type == type &&
		    strcasecmp(t->asked[i].name, name) == 0)
			return &t->asked[i];
	return NULL;
}

static inline struct adns_answer
adns_table_lookup(struct adns_table *t, const char *name, enum adns_type type)
{
	struct adns_answer a = {ADNS_NXDOMAIN, 0, NULL};

	for (const struct adns_row *r = t->rows; r->name != NULL; r++) {
		if (strcasecmp(r->name, name) != 0)
			continue;
		if (a.status == ADNS_NXDOMAIN)
			a.status = ADNS_NODATA;
		if (r->type != type)
			continue;
		a.status = r->status;
		a.rr = r->rr;
		for (a.n = 0; a.n < ADNS_ROW_RR_MAX && r->rr[a.n]; a.n++)
			;
		if (a.status != ADNS_OK)
			a.n = 0;
		return a;
	}
	return a;
}

static inline const struct adns_answer *
adns_table_get(void *ctx, const char *name, enum adns_type type)
{
	struct adns_table *t = ctx;
	struct adns_table_q *q = adns_table_find(t, name, type);

	if (!t->is_lazy) {
		if (q == NULL && t->n_asked < ADNS_TABLE_ASKED_MAX) {
			q = &t->asked[t->n_asked++];
			snprintf(q->name, sizeof q->name, "%s", name);
			q->type = type;
		}
		if (q == NULL)
			return NULL;
		q->ans = adns_table_lookup(t, name, type);
		q->is_answered = true;
		return &q->ans;
	}
	return q != NULL && q->is_answered ? &q->ans : NULL;
}

static inline void
adns_table_need(void *ctx, const char *name, enum adns_type type)
{
	struct adns_table *t = ctx;
	struct adns_table_q *q = adns_table_find(t, name, type);

	t->n_needs++;
	if (q != NULL || t->n_asked >= ADNS_TABLE_ASKED_MAX)
		return;
	q = &t->asked[t->n_asked++];
	snprintf(q->name, sizeof q->name, "%s", name);
	q->type = type;
	q->is_answered = false;
}

/* Answers every question asked so far; false when there was none new. */
static inline bool
adns_table_round(struct adns_table *t)
{
	bool any = false;

	for (size_t i = 0; i < t->n_asked; i++) {
		struct adns_table_q *q = &t->asked[i];
		if (q->is_answered)
			continue;
		q->ans = adns_table_lookup(t, q->name, q->type);
		q->is_answered = true;
		any = true;
	}
	if (any)
		t->rounds++;
	return any;
}

static inline struct adns_view
adns_table_view(struct adns_table *t, const struct adns_row *rows,
		bool is_lazy)
{
	memset(t, 0, sizeof *t);
	t->rows = rows;
	t->is_lazy = is_lazy;
	return (struct adns_view){adns_table_get, adns_table_need, t};
}

#endif
