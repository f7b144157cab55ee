/*
 * fuzz_auth_spf.c - libFuzzer target for the SPF check (src/auth/spf.c).
 *
 * Input: byte 0 picks the client (bit 0: IPv6, else IPv4) and the
 * identity (bit 1: the null sender, so postmaster@HELO); the rest is up
 * to four TXT records split at '\n'.  The first is the SPF record of
 * f.example (and of the HELO name), the others are served at
 * i1.f.example ... i3.f.example, where include:, redirect= and exp= can
 * reach them; the first is also served at loop.f.example, so records can
 * include themselves.  A few fixed rows give a/mx/ptr/exists something to
 * find: addresses, MX hosts (one null MX), PTR names, a TEMPFAIL name.
 *
 * Checks: spf_eval() terminates and answers a result (pending only when
 * the table ran out of room for questions); the outcome's strings are
 * terminated; the explanation is set on fail only; at most one lookup
 * past the limit is counted; two evaluations agree; and evaluating
 * lazily, round after round as the server does, ends in the same
 * outcome as answering at once.  The input is also expanded as a macro
 * string both ways.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../unit/adns_table.h"
#include "auth/spf.h"

#define FUZZ_TXT_MAX 4
#define FUZZ_TEXT_MAX 1024
#define FUZZ_ROUNDS_MAX 64

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			__builtin_trap();                                      \
	} while (0)

/* clang-format off */
static const struct adns_row fixed_rows[] = {
	{"f.example", ADNS_A, ADNS_OK, {"192.0.2.3", "198.51.100.1"}},
	{"f.example", ADNS_AAAA, ADNS_OK, {"2001:db8::cb01"}},
	{"f.example", ADNS_MX, ADNS_OK, {"mx.f.example", "", "a.f.example"}},
	{"mx.f.example", ADNS_A, ADNS_OK, {"192.0.2.4"}},
	{"mx.f.example", ADNS_AAAA, ADNS_OK, {"2001:db8::1"}},
	{"a.f.example", ADNS_A, ADNS_OK, {"192.0.2.3"}},
	{"t.f.example", ADNS_A, ADNS_TEMPFAIL, {0}},
	{"t.f.example", ADNS_TXT, ADNS_TEMPFAIL, {0}},
	{"3.2.0.192.in-addr.arpa", ADNS_PTR, ADNS_OK,
	 {"a.f.example", "f.example", "x.example"}},
	{"1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
	 "ip6.arpa", ADNS_PTR, ADNS_OK, {"f.example"}},
};
/* clang-format on */

#define FUZZ_FIXED (sizeof fixed_rows / sizeof fixed_rows[0])

static const char *const txt_names[FUZZ_TXT_MAX] = {
    "f.example", "i1.f.example", "i2.f.example", "i3.f.example"};

struct fuzz_zone {
	char text[FUZZ_TEXT_MAX + 1];
	struct adns_row rows[FUZZ_FIXED + FUZZ_TXT_MAX + 3];
};

/* Builds the zone: the fixed rows, then the records of the input. */
static void
fuzz_zone_build(struct fuzz_zone *z, const uint8_t *data, size_t size)
{
	size_t n = FUZZ_FIXED, k = 0, len = size;
	char *p;

	if (len > FUZZ_TEXT_MAX)
		len = FUZZ_TEXT_MAX;
	memcpy(z->text, data, len);
	z->text[len] = '\0';
	memset(z->rows, 0, sizeof z->rows);
	memcpy(z->rows, fixed_rows, sizeof fixed_rows);
	p = z->text;
	while (k < FUZZ_TXT_MAX) {
		char *nl = strchr(p, '\n');

		if (nl != NULL)
			*nl = '\0';
		z->rows[n].name = txt_names[k];
		z->rows[n].type = ADNS_TXT;
		z->rows[n].status = ADNS_OK;
		z->rows[n].rr[0] = p;
		n++;
		if (k == 0) {
			z->rows[n] = z->rows[n - 1];
			z->rows[n++].name = "loop.f.example";
			z->rows[n] = z->rows[n - 1];
			z->rows[n++].name = "helo.f.example";
		}
		k++;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}

static void
fuzz_check_outcome(const struct spf_outcome *o, const struct adns_table *t)
{
	FUZZ_CHECK((unsigned)o->result <= SPF_PENDING);
	FUZZ_CHECK(o->result != SPF_PENDING ||
		   t->n_asked == ADNS_TABLE_ASKED_MAX);
	FUZZ_CHECK(memchr(o->domain, '\0', sizeof o->domain) != NULL);
	FUZZ_CHECK(memchr(o->sender, '\0', sizeof o->sender) != NULL);
	FUZZ_CHECK(memchr(o->explanation, '\0', sizeof o->explanation) != NULL);
	FUZZ_CHECK(memchr(o->problem, '\0', sizeof o->problem) != NULL);
	FUZZ_CHECK(o->result == SPF_FAIL || o->explanation[0] == '\0');
	FUZZ_CHECK(o->lookups <= SPF_LOOKUP_MAX + 1);
	FUZZ_CHECK(o->identity != NULL);
	FUZZ_CHECK(strcmp(spf_result_name(o->result), "?") != 0);
}

static bool
fuzz_same(const struct spf_outcome *a, const struct spf_outcome *b)
{
	return a->result == b->result && a->lookups == b->lookups &&
	       strcmp(a->explanation, b->explanation) == 0 &&
	       strcmp(a->problem, b->problem) == 0 &&
	       strcmp(a->sender, b->sender) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_zone z;
	static struct adns_table t, lazy;
	struct spf_outcome o1, o2, o3;
	struct spf_request rq;
	struct adns_view v;
	char out[256];
	enum spf_result r = SPF_PENDING;
	int rc1, rc2;

	if (size < 1)
		return 0;
	fuzz_zone_build(&z, data + 1, size - 1);
	rq.ip = data[0] & 1 ? "2001:db8::cb01" : "192.0.2.3";
	rq.helo = "helo.f.example";
	rq.sender = data[0] & 2 ? "" : "user@f.example";
	rq.receiver = "mx.example.test";
	rq.now = 1700000000;

	v = adns_table_view(&t, z.rows, false);
	spf_eval(&rq, &v, &o1);
	fuzz_check_outcome(&o1, &t);
	spf_eval(&rq, &v, &o2);
	FUZZ_CHECK(fuzz_same(&o1, &o2));

	v = adns_table_view(&lazy, z.rows, true);
	for (int i = 0; i < FUZZ_ROUNDS_MAX; i++) {
		r = spf_eval(&rq, &v, &o3);
		if (r != SPF_PENDING || !adns_table_round(&lazy))
			break;
	}
	if (o1.result != SPF_PENDING && r != SPF_PENDING)
		FUZZ_CHECK(fuzz_same(&o1, &o3));

	v = adns_table_view(&t, z.rows, false);
	rc1 = spf_expand(&rq, &v, "f.example", z.text, false, out, sizeof out);
	FUZZ_CHECK(rc1 == 0 || rc1 == -1);
	FUZZ_CHECK(memchr(out, '\0', sizeof out) != NULL);
	rc2 = spf_expand(&rq, &v, "f.example", z.text, true, out, sizeof out);
	FUZZ_CHECK(rc2 == 0 || rc2 == -1);
	FUZZ_CHECK(rc1 != 0 || rc2 == 0); /* exp text allows more */
	return 0;
}
