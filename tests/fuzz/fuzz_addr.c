/*
 * fuzz_addr.c - libFuzzer target for the path parser (src/proto/addr.c).
 *
 * Input: byte 0 holds the ADDR_* flags, the rest is a path.
 * Checks on every accepted path: it starts with "<" and ends at ">" (or,
 * bare, is the text up to the first space, written exactly as the
 * mailbox), keeps the RFC 5321 4.5.3.1 lengths (64-octet local parts
 * with ADDR_STRICT_LOCAL), its mailbox is local "@" domain, and that
 * mailbox parses again as a bare mailbox to the same parts, its domain
 * passes addr_is_domain(), and, unless UTF-8, it parses without
 * ADDR_ALLOW_UTF8 too.  A bare path is accepted only with ADDR_ALLOW_BARE
 * and only when the same mailbox in brackets is; the flag changes nothing
 * for input starting with "<".  ADDR_STRICT_LOCAL only ever refuses more,
 * and only by the local part's length.  The input is also tried as a bare
 * mailbox and as a domain, and whatever is accepted there must be
 * accepted inside a path.  addr_utf8_valid() is compared with a decoder
 * written apart.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proto/addr.h"

#define FUZZ_BUF_MAX 1024

#define FUZZ_CHECK(cond)                                                      \
	do {                                                                  \
		if (!(cond))                                                  \
			__builtin_trap();                                     \
	} while (0)

/* RFC 3629 by decoding: code point ranges, not byte tables. */
static bool
fuzz_ref_utf8(const uint8_t *s, size_t len)
{
	static const uint32_t min_cp[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t i = 0, n, k;
	uint32_t cp;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xE0) == 0xC0) {
			n = 2;
			cp = s[i] & 0x1F;
		} else if ((s[i] & 0xF0) == 0xE0) {
			n = 3;
			cp = s[i] & 0x0F;
		} else if ((s[i] & 0xF8) == 0xF0) {
			n = 4;
			cp = s[i] & 0x07;
		} else {
			return false;
		}
		if (len - i < n)
			return false;
		for (k = 1; k < n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if (cp < min_cp[n] || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n;
	}
	return true;
}

/* A bare path: the first word, all mailbox, and a path in brackets. */
static void
fuzz_check_bare(const char *s, size_t len, unsigned flags,
		const struct addr *a, size_t consumed)
{
	char buf[FUZZ_BUF_MAX];
	struct addr b;
	size_t used;

	FUZZ_CHECK(flags & ADDR_ALLOW_BARE);
	FUZZ_CHECK(!a->is_null && !a->has_route);
	FUZZ_CHECK(consumed >= 1 && consumed <= len);
	FUZZ_CHECK(consumed <= SMTP_PATH_MAX - 2);
	FUZZ_CHECK(s[0] != '<' && s[0] != '@');
	FUZZ_CHECK(memchr(s, ' ', consumed) == NULL);
	FUZZ_CHECK(consumed == len || s[consumed] == ' ');
	FUZZ_CHECK(strlen(a->mailbox) == consumed &&
		   memcmp(a->mailbox, s, consumed) == 0);
	buf[0] = '<';
	memcpy(buf + 1, s, consumed);
	buf[consumed + 1] = '>';
	FUZZ_CHECK(addr_parse_path(buf, consumed + 2,
				   flags & ~(unsigned)ADDR_ALLOW_BARE, &b,
				   &used) == ADDR_OK);
	FUZZ_CHECK(used == consumed + 2 && !b.is_bare);
	FUZZ_CHECK(strcmp(a->mailbox, b.mailbox) == 0);
	FUZZ_CHECK(a->is_postmaster == b.is_postmaster);
}

static void
fuzz_check_path(const char *s, size_t len, unsigned flags,
		const struct addr *a, size_t consumed)
{
	struct addr b;
	size_t local_len = strlen(a->local);
	size_t domain_len = strlen(a->domain);

	FUZZ_CHECK(local_len <= ((flags & ADDR_STRICT_LOCAL)
					 ? SMTP_LOCAL_RFC_MAX
					 : SMTP_LOCAL_MAX));
	if (a->is_bare) {
		fuzz_check_bare(s, len, flags, a, consumed);
	} else {
		FUZZ_CHECK(consumed >= 2 && consumed <= len);
		FUZZ_CHECK(consumed <= SMTP_PATH_MAX);
		FUZZ_CHECK(s[0] == '<' && s[consumed - 1] == '>');
	}
	FUZZ_CHECK(domain_len <= SMTP_DOMAIN_MAX);
	FUZZ_CHECK(memchr(s, '\0', consumed) == NULL);
	FUZZ_CHECK(!a->is_utf8 || (flags & ADDR_ALLOW_UTF8));
	if (a->is_null) {
		FUZZ_CHECK(consumed == 2 && a->mailbox[0] == '\0');
		FUZZ_CHECK(!a->is_bare);
		return;
	}
	if (a->is_postmaster) {
		FUZZ_CHECK(strcasecmp(a->mailbox, "postmaster") == 0);
		return;
	}
	FUZZ_CHECK(strlen(a->mailbox) == local_len + 1 + domain_len);
	FUZZ_CHECK(memcmp(a->mailbox, a->local, local_len) == 0);
	FUZZ_CHECK(a->mailbox[local_len] == '@');
	FUZZ_CHECK(strcmp(a->mailbox + local_len + 1, a->domain) == 0);
	FUZZ_CHECK(addr_is_domain(a->domain, domain_len, a->is_utf8));
	FUZZ_CHECK(addr_parse_mailbox(a->mailbox, strlen(a->mailbox), 0,
				      &b) ==
		   (a->is_utf8 ? ADDR_ERR_NEEDS_UTF8 : ADDR_OK));
	FUZZ_CHECK(addr_parse_mailbox(a->mailbox, strlen(a->mailbox),
				      ADDR_ALLOW_UTF8, &b) == ADDR_OK);
	FUZZ_CHECK(strcmp(a->local, b.local) == 0);
	FUZZ_CHECK(strcmp(a->domain, b.domain) == 0);
	FUZZ_CHECK(a->is_quoted == b.is_quoted);
	FUZZ_CHECK(a->is_literal == b.is_literal);
	FUZZ_CHECK(a->is_utf8 == b.is_utf8);
	FUZZ_CHECK(fuzz_ref_utf8((const uint8_t *)a->mailbox,
				 strlen(a->mailbox)));
}

/* What was accepted bare must be accepted inside prefix ... suffix. */
static void
fuzz_check_wrapped(const char *prefix, const char *s, size_t len,
		   const char *suffix)
{
	char buf[FUZZ_BUF_MAX];
	struct addr a;
	size_t n = strlen(prefix), m = strlen(suffix), total, consumed;
	enum addr_result r;

	total = n + len + m;
	if (total > sizeof(buf))
		return;
	memcpy(buf, prefix, n);
	memcpy(buf + n, s, len);
	memcpy(buf + n + len, suffix, m);
	r = addr_parse_path(buf, total, ADDR_ALLOW_UTF8, &a, &consumed);
	FUZZ_CHECK(r == ADDR_OK ||
		   (r == ADDR_ERR_PATH_TOO_LONG && total > SMTP_PATH_MAX));
	FUZZ_CHECK(r != ADDR_OK || consumed == total);
}

/*
 * The flags that widen (ADDR_ALLOW_BARE) or narrow (ADDR_STRICT_LOCAL) a
 * server's envelopes change only what they say they change.
 */
static void
fuzz_check_envelope_flags(const char *s, size_t len, unsigned flags,
			  enum addr_result r, const struct addr *a)
{
	unsigned plain = flags & ~(unsigned)(ADDR_ALLOW_BARE |
					     ADDR_STRICT_LOCAL);
	struct addr b;
	size_t used;
	enum addr_result rb;

	rb = addr_parse_path(s, len, plain, &b, &used);
	if (len > 0 && s[0] == '<' && !(flags & ADDR_STRICT_LOCAL)) {
		FUZZ_CHECK(rb == r);
	} else if (r == ADDR_OK && !a->is_bare) {
		FUZZ_CHECK(rb == ADDR_OK);
	}
	if (!(flags & ADDR_ALLOW_BARE) && (len == 0 || s[0] != '<'))
		FUZZ_CHECK(r == ADDR_ERR_SYNTAX);
	if (rb == ADDR_OK && r != ADDR_OK && len > 0 && s[0] == '<')
		FUZZ_CHECK(r == ADDR_ERR_LOCAL_TOO_LONG &&
			   (flags & ADDR_STRICT_LOCAL) &&
			   strlen(b.local) > SMTP_LOCAL_RFC_MAX);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;
	struct addr a;
	size_t len, consumed = 99;
	unsigned flags;
	enum addr_result r;

	if (size < 1)
		return 0;
	flags = data[0] & (ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER |
			   ADDR_ALLOW_UTF8 | ADDR_ALLOW_BARE |
			   ADDR_STRICT_LOCAL);
	len = size - 1;

	FUZZ_CHECK(addr_utf8_valid(s, len) ==
		   fuzz_ref_utf8(data + 1, len));

	r = addr_parse_path(s, len, flags, &a, &consumed);
	if (r == ADDR_OK)
		fuzz_check_path(s, len, flags, &a, consumed);
	else
		FUZZ_CHECK(consumed == 0);
	fuzz_check_envelope_flags(s, len, flags, r, &a);

	r = addr_parse_mailbox(s, len, ADDR_ALLOW_UTF8, &a);
	if (r == ADDR_OK) {
		FUZZ_CHECK(len <= SMTP_PATH_MAX - 2);
		FUZZ_CHECK(strlen(a.mailbox) == len &&
			   memcmp(a.mailbox, s, len) == 0);
		fuzz_check_wrapped("<", s, len, ">");
	}
	if (addr_is_domain(s, len, true)) {
		FUZZ_CHECK(len <= SMTP_DOMAIN_MAX);
		if (s[0] != '[')
			fuzz_check_wrapped("<@", s, len, ":a@b>");
		fuzz_check_wrapped("<a@", s, len, ">");
	}
	return 0;
}
