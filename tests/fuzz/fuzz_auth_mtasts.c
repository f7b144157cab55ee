/*
 * fuzz_auth_mtasts.c - libFuzzer target for MTA-STS (src/auth/mtasts.c).
 *
 * Input: a policy body, a NUL, an MX host name, a NUL, then TXT records
 * split by LF (missing parts are empty).
 * Checks: a parsed policy keeps the RFC 8461 limits (mode, max_age, at
 * least one mx unless mode none, patterns of letters, digits, "-", "."
 * and a leading "*."); a refused one says why and is zeroed; the
 * policy's canonical lines parse back to the same policy; every plain
 * pattern matches itself, upper-cased and with a trailing dot, and a
 * wildcard matches one more label; a picked TXT id is 1 to 32
 * alphanumerics; small buffers never overflow.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/mtasts.h"

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			__builtin_trap();                                      \
	} while (0)

#define FUZZ_TXT_MAX 8
#define FUZZ_LINES_MAX (STS_MX_MAX + 3)
#define FUZZ_BUF 16384
#define FUZZ_HOST 600

/* Splits data at the first NUL: *part the bytes before it, *rest after. */
static void
fuzz_cut(const uint8_t **data, size_t *size, const char **part, size_t *len)
{
	const uint8_t *nul = memchr(*data, '\0', *size);

	*part = (const char *)*data;
	*len = nul != NULL ? (size_t)(nul - *data) : *size;
	*data += *len + (nul != NULL ? 1 : 0);
	*size -= *len + (nul != NULL ? 1 : 0);
}

static void
fuzz_check_policy(const struct sts_policy *p)
{
	FUZZ_CHECK(p->mode == STS_MODE_NONE || p->mode == STS_MODE_TESTING ||
		   p->mode == STS_MODE_ENFORCE);
	FUZZ_CHECK(p->max_age <= STS_MAX_AGE_LIMIT);
	FUZZ_CHECK(p->n_mx <= STS_MX_MAX);
	FUZZ_CHECK(p->mode == STS_MODE_NONE || p->n_mx > 0);
	for (size_t k = 0; k < p->n_mx; k++) {
		const char *m = p->mx[k];
		size_t len = strnlen(m, STS_MX_SIZE);

		FUZZ_CHECK(len > 0 && len < STS_MX_SIZE);
		for (size_t i = m[0] == '*' ? 2 : 0; i < len; i++)
			FUZZ_CHECK(strchr("abcdefghijklmnopqrstuvwxyz"
					  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					  "0123456789-.",
					  m[i]) != NULL);
		FUZZ_CHECK(m[0] != '*' || m[1] == '.');
	}
}

/* The canonical lines parse back to the same policy. */
static void
fuzz_round_trip(const struct sts_policy *p)
{
	static char buf[FUZZ_BUF], text[FUZZ_BUF];
	static struct sts_policy again;
	const char *lines[FUZZ_LINES_MAX];
	char err[STS_ERR_SIZE];
	size_t n =
	    sts_policy_strings(p, buf, sizeof buf, lines, FUZZ_LINES_MAX);
	size_t off = 0;

	FUZZ_CHECK(n == p->n_mx + 3);
	for (size_t k = 0; k < n; k++)
		off += (size_t)snprintf(text + off, sizeof text - off, "%s\r\n",
					lines[k]);
	FUZZ_CHECK(sts_policy_parse(text, off, &again, err, sizeof err) == 0);
	FUZZ_CHECK(again.mode == p->mode && again.max_age == p->max_age &&
		   again.n_mx == p->n_mx);
	for (size_t k = 0; k < p->n_mx; k++)
		FUZZ_CHECK(strcmp(again.mx[k], p->mx[k]) == 0);
	/* Any smaller room: a prefix of the lines, never an overrun. */
	for (size_t size = 0; size < 40; size += 7)
		FUZZ_CHECK(sts_policy_strings(p, buf, size, lines,
					      FUZZ_LINES_MAX) <= n);
}

static void
fuzz_self_match(const struct sts_policy *p)
{
	char host[FUZZ_HOST];

	for (size_t k = 0; k < p->n_mx; k++) {
		const char *m = p->mx[k];

		if (m[0] == '*') {
			(void)snprintf(host, sizeof host, "mx-1%s", m + 1);
			FUZZ_CHECK(sts_mx_match(p, host));
			continue;
		}
		FUZZ_CHECK(sts_mx_match(p, m));
		(void)snprintf(host, sizeof host, "%s.", m);
		for (char *c = host; *c != '\0'; c++)
			if (*c >= 'a' && *c <= 'z')
				*c = (char)(*c - 'a' + 'A');
		FUZZ_CHECK(sts_mx_match(p, host));
	}
}

static void
fuzz_txt(const char *s, size_t len)
{
	const char *txt[FUZZ_TXT_MAX];
	size_t lens[FUZZ_TXT_MAX], n = 0, pos = 0;
	char id[STS_ID_MAX];

	while (n < FUZZ_TXT_MAX && pos <= len) {
		const char *nl = memchr(s + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - s) : len;

		txt[n] = s + pos;
		lens[n++] = end - pos;
		pos = end + 1;
	}
	memset(id, 'x', sizeof id);
	if (sts_txt_pick(txt, lens, n, id) == 0) {
		size_t idlen = strnlen(id, sizeof id);

		FUZZ_CHECK(idlen >= 1 && idlen < STS_ID_MAX);
		for (size_t i = 0; i < idlen; i++)
			FUZZ_CHECK((id[i] >= '0' && id[i] <= '9') ||
				   (id[i] >= 'a' && id[i] <= 'z') ||
				   (id[i] >= 'A' && id[i] <= 'Z'));
	} else {
		FUZZ_CHECK(id[0] == '\0');
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sts_policy p;
	const char *body, *host_in, *txt;
	size_t body_len, host_len, txt_len;
	char err[STS_ERR_SIZE], tiny[4], *host;

	fuzz_cut(&data, &size, &body, &body_len);
	fuzz_cut(&data, &size, &host_in, &host_len);
	txt = (const char *)data;
	txt_len = size;

	memset(&p, 0x5a, sizeof p);
	if (sts_policy_parse(body, body_len, &p, err, sizeof err) == 0) {
		FUZZ_CHECK(err[0] == '\0');
		fuzz_check_policy(&p);
		fuzz_round_trip(&p);
		fuzz_self_match(&p);
	} else {
		FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err));
		FUZZ_CHECK(p.n_mx == 0 && p.max_age == 0);
	}
	(void)sts_policy_parse(body, body_len, &p, tiny, sizeof tiny);
	FUZZ_CHECK(memchr(tiny, '\0', sizeof tiny) != NULL);

	host = malloc(host_len + 1);
	if (host == NULL)
		abort();
	memcpy(host, host_in, host_len);
	host[host_len] = '\0';
	(void)sts_mx_match(&p, host);
	free(host);

	fuzz_txt(txt, txt_len);
	return 0;
}
