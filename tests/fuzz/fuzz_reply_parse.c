/*
 * fuzz_reply_parse.c - libFuzzer target for the client's reader of server
 * replies (src/proto/reply_parse.c).
 *
 * The input is what a peer sends: it is split at "\n" (a "\r" before it
 * dropped) and each line goes to reply_acc_line(), a new reply starting
 * after each OK or error, and to reply_ehlo_line().  Checks: a line is
 * refused exactly when it breaks the RFC 5321 4.2 shape or changes the
 * code; the accumulated reply keeps its bounds (code, enhanced code of
 * the reply's class, NUL-terminated text without inner NUL, line count);
 * reply_acc_format() stays in its buffer, writes no control character and
 * cuts to a prefix of the full summary; EHLO sets only known bits, and
 * only from lines starting "250";
 * reply_wait_hint() answers 1 to REPLY_WAIT_MAX seconds; and an address
 * reply_551_address() returns parses as a mailbox again and fits.  The
 * wait and 551 readers also get the whole input and each line.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/addr.h"
#include "proto/reply_parse.h"

#define FUZZ_FORMAT_MAX 4096
#define FUZZ_MAILBOX_MAX 512
#define FUZZ_SMALL_MAILBOX 12
#define FUZZ_ENH_PART_MAX 3

#define FUZZ_CHECK(cond)                                                      \
	do {                                                                  \
		if (!(cond))                                                  \
			__builtin_trap();                                     \
	} while (0)

#define FUZZ_EHLO_ALL                                                         \
	(EHLO_PIPELINING | EHLO_SIZE | EHLO_8BITMIME | EHLO_SMTPUTF8 |        \
	 EHLO_STARTTLS | EHLO_DSN | EHLO_CHUNKING | EHLO_ENHANCEDSTATUSCODES | \
	 EHLO_REQUIRETLS | EHLO_AUTH_PLAIN | EHLO_AUTH_LOGIN)

static bool
fuzz_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The RFC 5321 4.2 shape of one line, and its code. */
static bool
fuzz_ref_line(const char *s, size_t len, unsigned *code_out)
{
	if (len < 3 || s[0] < '2' || s[0] > '5' || !fuzz_is_digit(s[1]) ||
	    !fuzz_is_digit(s[2]))
		return false;
	if (len > 3 && s[3] != ' ' && s[3] != '-')
		return false;
	*code_out = (unsigned)(s[0] - '0') * 100 +
		    (unsigned)(s[1] - '0') * 10 + (unsigned)(s[2] - '0');
	return true;
}

/* "c.sss.ddd" with c the class of code. */
static void
fuzz_check_enh(const char *enh, unsigned code)
{
	size_t pos = 2, n, part;

	if (enh[0] == '\0')
		return;
	FUZZ_CHECK(code / 100 != 3);
	FUZZ_CHECK(enh[0] == (char)('0' + code / 100) && enh[1] == '.');
	for (part = 0; part < 2; part++) {
		for (n = 0; fuzz_is_digit(enh[pos]); n++)
			pos++;
		FUZZ_CHECK(n >= 1 && n <= FUZZ_ENH_PART_MAX);
		if (part == 0)
			FUZZ_CHECK(enh[pos++] == '.');
	}
	FUZZ_CHECK(enh[pos] == '\0');
}

static void
fuzz_check_format(const struct reply_acc *a)
{
	static const size_t sizes[] = { 1, 2, 4, 5, 7, 11, 64 };
	char full[FUZZ_FORMAT_MAX], buf[FUZZ_FORMAT_MAX];
	size_t i, n;

	reply_acc_format(a, full, sizeof(full));
	n = strnlen(full, sizeof(full));
	FUZZ_CHECK(n < sizeof(full));
	for (i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)full[i] >= ' ' && full[i] != 0x7f);
	if (a->n_lines > 0)
		FUZZ_CHECK(n >= 3 && full[0] == (char)('0' + a->code / 100));
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		memset(buf, '#', sizeof(buf));
		reply_acc_format(a, buf, sizes[i]);
		FUZZ_CHECK(buf[sizes[i]] == '#');
		n = strnlen(buf, sizes[i]);
		FUZZ_CHECK(n < sizes[i]);
		FUZZ_CHECK(strncmp(buf, full, n) == 0);
	}
	buf[0] = '#';
	reply_acc_format(a, buf, 0);
	FUZZ_CHECK(buf[0] == '#');
}

static void
fuzz_check_acc(const struct reply_acc *a)
{
	FUZZ_CHECK(a->n_lines <= REPLY_LINES_MAX);
	FUZZ_CHECK(a->text_len < REPLY_TEXT_MAX);
	FUZZ_CHECK(a->text[a->text_len] == '\0');
	FUZZ_CHECK(strlen(a->text) == a->text_len);
	FUZZ_CHECK(strnlen(a->enh, sizeof(a->enh)) < sizeof(a->enh));
	if (a->n_lines == 0) {
		FUZZ_CHECK(a->code == 0 && a->text_len == 0);
		FUZZ_CHECK(a->enh[0] == '\0');
	} else {
		FUZZ_CHECK(a->code >= 200 && a->code <= 599);
		fuzz_check_enh(a->enh, a->code);
	}
	fuzz_check_format(a);
}

static void
fuzz_check_text(const char *s, size_t len)
{
	char buf[FUZZ_MAILBOX_MAX], small[FUZZ_SMALL_MAILBOX];
	struct addr a;
	unsigned secs = 0;
	size_t n;
	bool is_found, is_small_found;

	if (reply_wait_hint(s, len, &secs))
		FUZZ_CHECK(secs >= 1 && secs <= REPLY_WAIT_MAX);
	is_found = reply_551_address(s, len, buf, sizeof(buf));
	if (is_found) {
		n = strnlen(buf, sizeof(buf));
		FUZZ_CHECK(n > 0 && n < sizeof(buf));
		FUZZ_CHECK(memchr(buf, '@', n) != NULL);
		FUZZ_CHECK(addr_parse_mailbox(buf, n, ADDR_ALLOW_UTF8, &a) ==
			   ADDR_OK);
	}
	is_small_found = reply_551_address(s, len, small, sizeof(small));
	FUZZ_CHECK(!is_small_found ||
		   (is_found && strcmp(small, buf) == 0));
	FUZZ_CHECK(is_small_found ==
		   (is_found && strlen(buf) < sizeof(small)));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *nl;
	struct reply_acc acc;
	struct ehlo_caps caps = { 0, 0 };
	enum reply_parse_result r;
	size_t pos = 0, len;
	struct ehlo_caps was;
	unsigned code;
	bool is_first = true, is_valid, is_250;

	fuzz_check_text(s, size);
	reply_acc_init(&acc);
	while (pos < size) {
		nl = memchr(s + pos, '\n', size - pos);
		len = nl != NULL ? (size_t)(nl - (s + pos)) : size - pos;
		if (len > 0 && s[pos + len - 1] == '\r')
			len--;

		is_valid = fuzz_ref_line(s + pos, len, &code) &&
			   (acc.n_lines == 0 || code == acc.code);
		r = reply_acc_line(&acc, s + pos, len);
		FUZZ_CHECK(is_valid == (r != REPLY_PARSE_ERR_SYNTAX));
		if (r == REPLY_PARSE_ERR_TOO_MANY_LINES)
			FUZZ_CHECK(acc.n_lines == REPLY_LINES_MAX);
		fuzz_check_acc(&acc);

		is_250 = len > 3 && memcmp(s + pos, "250", 3) == 0;
		was = caps;
		reply_ehlo_line(&caps, s + pos, len, is_first);
		FUZZ_CHECK(is_first || is_250 || caps.ext == was.ext);
		FUZZ_CHECK(is_first || is_250 || caps.size_max == was.size_max);
		FUZZ_CHECK((caps.ext & ~(unsigned)FUZZ_EHLO_ALL) == 0);
		FUZZ_CHECK((caps.ext & EHLO_SIZE) || caps.size_max == 0);
		fuzz_check_text(s + pos, len);

		is_first = r != REPLY_PARSE_MORE;
		if (is_first)
			reply_acc_init(&acc);
		pos = nl != NULL ? (size_t)(nl - s) + 1 : size;
	}
	return 0;
}
