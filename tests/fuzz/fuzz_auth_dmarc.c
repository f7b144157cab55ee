/*
 * fuzz_auth_dmarc.c - libFuzzer target for the From reader (hdr.c), DMARC
 * (dmarc.c) and Authentication-Results (arh.c).
 *
 * Input: byte 0 is the pct sample and the SPF/DKIM switches; the rest up
 * to the first NUL is a message, after it a DMARC TXT record served at
 * _dmarc.FROM (bit 0x40 of byte 0: at _dmarc.ORG instead).  Checks:
 *   - hdr_from_domain gives a lowercase domain with no space, dot-free
 *     ends, only on HDR_FROM_OK;
 *   - dmarc_eval over an eager table never pends, and over a lazy table
 *     ends in at most two rounds with the same outcome;
 *   - disposition is never stronger than the policy, NONE unless fail;
 *   - arh_strip never grows the message, leaves the body alone and is
 *     idempotent; arh_format's output is CRLF lines, folded with a tab.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/adns_table.h"
#include "auth/arh.h"
#include "auth/dmarc.h"
#include "auth/hdr.h"

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			__builtin_trap();                                      \
	} while (0)

#define FUZZ_ID "mx.example.test"
#define FUZZ_NAME_SIZE 300
#define FUZZ_ARH_SIZE 4096

static void
fuzz_check_domain(const char *d)
{
	size_t n = strlen(d);

	FUZZ_CHECK(n > 0 && d[0] != '.' && d[n - 1] != '.');
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(d[i] != ' ' && !(d[i] >= 'A' && d[i] <= 'Z'));
}

static enum dmarc_result
fuzz_eval(const struct dmarc_input *in, const struct adns_row *rows,
	  bool is_lazy, struct dmarc_outcome *out)
{
	struct adns_table *t = malloc(sizeof *t);
	struct adns_view v;
	enum dmarc_result r = DMARC_PENDING;

	if (t == NULL)
		abort();
	v = adns_table_view(t, rows, is_lazy);
	for (int i = 0; i < 3; i++) {
		r = dmarc_eval(in, &v, out);
		if (r != DMARC_PENDING)
			break;
		FUZZ_CHECK(is_lazy && adns_table_round(t));
	}
	FUZZ_CHECK(r != DMARC_PENDING && t->rounds <= 1);
	free(t);
	return r;
}

static void
fuzz_dmarc(uint8_t flags, const char *from, const char *record)
{
	char org[DMARC_DOMAIN_SIZE], name[FUZZ_NAME_SIZE];
	const char *dkim[] = {from};
	struct dmarc_input in = {.from_domain = from,
				 .spf_pass = flags & 1,
				 .spf_domain =
				     (flags & 2) ? from : "other.test",
				 .dkim_pass_domains = dkim,
				 .n_dkim_pass = (flags & 4) ? 1 : 0,
				 .sample = (flags >> 3) % DMARC_SAMPLE_RANGE};
	struct adns_row rows[2];
	struct dmarc_outcome a, b;

	if (!dmarc_org_domain(from, org, sizeof org))
		return;
	snprintf(name, sizeof name, "_dmarc.%s", (flags & 0x40) ? org : from);
	memset(rows, 0, sizeof rows);
	rows[0].name = name;
	rows[0].type = ADNS_TXT;
	rows[0].status =
	    (flags & 0x80) && record[0] == '\0' ? ADNS_TEMPFAIL : ADNS_OK;
	rows[0].rr[0] = record;
	fuzz_eval(&in, rows, false, &a);
	fuzz_eval(&in, rows, true, &b);
	FUZZ_CHECK(a.result == b.result && a.policy == b.policy &&
		   a.disposition == b.disposition);
	FUZZ_CHECK(a.disposition <= a.policy);
	FUZZ_CHECK(a.result == DMARC_FAIL || a.disposition == DMARC_P_NONE);
	FUZZ_CHECK(a.result != DMARC_PASS || a.is_spf_aligned ||
		   a.is_dkim_aligned);
	FUZZ_CHECK(a.result != DMARC_FAIL ||
		   (!a.is_spf_aligned && !a.is_dkim_aligned));
	/* The From domain aligns with itself when its checks pass. */
	if (a.result == DMARC_FAIL || a.result == DMARC_PASS)
		FUZZ_CHECK((a.result == DMARC_PASS) ==
			   ((flags & 3) == 3 || (flags & 4)));
}

static void
fuzz_arh(const char *msg, size_t len, const char *domain)
{
	char *copy = malloc(len + 1), buf[FUZZ_ARH_SIZE];
	size_t hlen, n, m;
	const struct arh_entry e[] = {
	    {"dmarc",
	     "pass",
	     domain,
	     domain,
	     {{"header", "from", domain}, {"smtp", "mailfrom", domain}},
	     2},
	};

	if (copy == NULL)
		abort();
	memcpy(copy, msg, len);
	(void)hdr_end(msg, len, &hlen);
	n = arh_strip(copy, len, FUZZ_ID);
	FUZZ_CHECK(n <= len);
	FUZZ_CHECK(memcmp(copy + n - (len - hlen), msg + hlen, len - hlen) ==
		   0);
	m = arh_strip(copy, n, FUZZ_ID);
	FUZZ_CHECK(m == n);
	free(copy);

	n = arh_format(buf, sizeof buf, FUZZ_ID, e, 1);
	FUZZ_CHECK(n == strlen(buf));
	if (n == 0)
		return;
	FUZZ_CHECK(n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n');
	for (size_t i = 0; i + 2 < n; i++) {
		FUZZ_CHECK(buf[i] != '\n' || buf[i + 1] == '\t');
		FUZZ_CHECK(buf[i] != '\r' || buf[i + 1] == '\n');
	}
	/* What we wrote is ours to strip. */
	m = arh_strip(buf, n, FUZZ_ID);
	FUZZ_CHECK(m == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, domain[DMARC_DOMAIN_SIZE];
	const char *msg, *record;
	size_t msg_len;
	enum hdr_from_status st;

	if (size < 1)
		return 0;
	text = malloc(size);
	if (text == NULL)
		abort();
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	msg = text;
	msg_len = strlen(text);
	record = text + msg_len + (msg_len < size - 1 ? 1 : 0);

	st = hdr_from_domain(msg, msg_len, domain, sizeof domain);
	if (st == HDR_FROM_OK) {
		fuzz_check_domain(domain);
		fuzz_dmarc(data[0], domain, record);
	} else {
		FUZZ_CHECK(domain[0] == '\0');
	}
	fuzz_arh(msg, msg_len, st == HDR_FROM_OK ? domain : "x y\"z");
	free(text);
	return 0;
}
