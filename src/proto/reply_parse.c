/*
 * reply_parse.c - the SMTP/LMTP client's reader of server replies.
 *
 * outbound/client.c feeds every line a peer sends, CRLF removed, to
 * reply_acc_line() until it answers OK or an error; the EHLO/LHLO reply's
 * lines also go to reply_ehlo_line().  outbound/react.c reads the result
 * (code, enhanced code, text), asks reply_wait_hint() how long a 4xx
 * wants us to wait and reply_551_address() where a 551 sends us, and logs
 * and puts in bounces what reply_acc_format() writes.  Pure: no
 * allocation, no I/O; only proto/ code is called, so the fuzz build links.
 *
 * What it promises: a reply is accepted only in RFC 5321 4.2's shape,
 * "ddd" alone, "ddd " + text or "ddd-" + text, with the first digit 2..5
 * (a 1xx or 6xx is no SMTP reply) and every line carrying the first line's
 * code (4.2.1); anything else is REPLY_PARSE_ERR_SYNTAX and the caller
 * drops the connection.  A reply is cut at REPLY_LINES_MAX lines and its
 * text at REPLY_TEXT_MAX bytes, so a peer cannot grow it.  The enhanced
 * code (RFC 3463 2, "class.subject.detail", class 2, 4 or 5 and equal to
 * the reply's first digit, subject and detail 1 to 3 digits) is taken from
 * the first line only; later lines that repeat it have it dropped so the
 * joined text reads once.  What a reply means is react.c's business.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proto/addr.h"
#include "proto/esmtp.h"
#include "proto/reply_parse.h"

#define REPLY_CODE_LEN 3     /* "250" */
#define REPLY_EHLO_CODE "250" /* the only code whose lines name extensions */
#define REPLY_ENH_PART_MAX 3 /* digits of subject and of detail */
#define REPLY_MASK_CHAR '?'
#define REPLY_DEL 0x7f

/* Seconds in one unit of a wait hint. */
#define REPLY_MINUTE 60u
#define REPLY_HOUR (60u * REPLY_MINUTE)
#define REPLY_DAY (24u * REPLY_HOUR)

static bool
reply_is_digit(unsigned char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool
reply_is_alpha(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool
reply_is_blank(unsigned char ch)
{
	return ch == ' ' || ch == '\t';
}

void
reply_acc_init(struct reply_acc *a)
{
	memset(a, 0, sizeof(*a));
}

/*
 * Length of the RFC 3463 code at s[0..len) whose class must be cls, 0 when
 * there is none.  It must end at the end or at a space.
 */
static size_t
reply_enh_len(const char *s, size_t len, char cls)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t pos = 1, n;
	int part;

	if (cls != '2' && cls != '4' && cls != '5')
		return 0;
	if (len < 2 || p[0] != (unsigned char)cls || p[1] != '.')
		return 0;
	for (part = 0; part < 2; part++) {
		if (pos >= len || p[pos] != '.')
			return 0;
		pos++;
		for (n = 0; pos < len && reply_is_digit(p[pos]); n++)
			pos++;
		if (n == 0 || n > REPLY_ENH_PART_MAX)
			return 0;
	}
	if (pos < len && p[pos] != ' ')
		return 0;
	return pos;
}

/* Appends s[0..len) to the joined text, one space before it, as fits. */
static void
reply_text_add(struct reply_acc *a, const char *s, size_t len)
{
	size_t room = REPLY_TEXT_MAX - 1 - a->text_len, i;

	if (len == 0)
		return;
	if (a->text_len > 0) {
		if (room < 2)
			return;
		a->text[a->text_len++] = ' ';
		room--;
	}
	if (len > room)
		len = room;
	for (i = 0; i < len; i++)
		a->text[a->text_len++] = s[i] == '\0' ? REPLY_MASK_CHAR : s[i];
	a->text[a->text_len] = '\0';
}

/* Drops the enhanced code and the spaces after it from text[0..*len). */
static const char *
reply_skip_enh(const char *text, size_t *len, size_t enh_len)
{
	const char *p = text + enh_len;
	size_t n = *len - enh_len;

	while (n > 0 && *p == ' ') {
		p++;
		n--;
	}
	*len = n;
	return p;
}

enum reply_parse_result
reply_acc_line(struct reply_acc *a, const char *line, size_t len)
{
	const unsigned char *p = (const unsigned char *)line;
	const char *text = line;
	size_t text_len = 0, enh_len;
	unsigned code;
	bool is_last;

	if (len < REPLY_CODE_LEN || p[0] < '2' || p[0] > '5' ||
	    !reply_is_digit(p[1]) || !reply_is_digit(p[2]))
		return REPLY_PARSE_ERR_SYNTAX;
	if (len > REPLY_CODE_LEN && p[3] != ' ' && p[3] != '-')
		return REPLY_PARSE_ERR_SYNTAX;
	code = (unsigned)(p[0] - '0') * 100 + (unsigned)(p[1] - '0') * 10 +
	       (unsigned)(p[2] - '0');
	if (a->n_lines > 0 && code != a->code)
		return REPLY_PARSE_ERR_SYNTAX;
	if (a->n_lines >= REPLY_LINES_MAX)
		return REPLY_PARSE_ERR_TOO_MANY_LINES;

	is_last = len == REPLY_CODE_LEN || p[3] == ' ';
	if (len > REPLY_CODE_LEN) {
		text = line + REPLY_CODE_LEN + 1;
		text_len = len - REPLY_CODE_LEN - 1;
	}
	if (a->n_lines == 0) {
		a->code = code;
		enh_len = reply_enh_len(text, text_len, (char)p[0]);
		if (enh_len > 0) {
			memcpy(a->enh, text, enh_len);
			a->enh[enh_len] = '\0';
			text = reply_skip_enh(text, &text_len, enh_len);
		}
	} else if (a->enh[0] != '\0') {
		enh_len = strlen(a->enh);
		if (text_len >= enh_len && memcmp(text, a->enh, enh_len) == 0 &&
		    (text_len == enh_len || text[enh_len] == ' '))
			text = reply_skip_enh(text, &text_len, enh_len);
	}
	reply_text_add(a, text, text_len);
	a->n_lines++;
	return is_last ? REPLY_PARSE_OK : REPLY_PARSE_MORE;
}

void
reply_acc_format(const struct reply_acc *a, char *buf, size_t size)
{
	size_t at, i;
	int w;

	if (size == 0)
		return;
	buf[0] = '\0';
	if (a->n_lines == 0)
		return;
	if (a->enh[0] != '\0')
		w = snprintf(buf, size, "%u %s", a->code, a->enh);
	else
		w = snprintf(buf, size, "%u", a->code);
	if (w < 0 || (size_t)w >= size || a->text_len == 0)
		return;
	at = (size_t)w;
	if (at + 1 >= size - 1)
		return; /* no room for the space and one character */
	buf[at++] = ' ';
	for (i = 0; i < a->text_len && at + 1 < size; i++) {
		unsigned char ch = (unsigned char)a->text[i];

		buf[at++] =
		    ch < ' ' || ch == REPLY_DEL ? REPLY_MASK_CHAR : (char)ch;
	}
	buf[at] = '\0';
}

/* One known EHLO keyword and its bit. */
struct reply_ehlo_kw {
	const char *name;
	unsigned bit;
};

static const struct reply_ehlo_kw reply_ehlo_kws[] = {
	{ "PIPELINING", EHLO_PIPELINING },
	{ "SIZE", EHLO_SIZE },
	{ "8BITMIME", EHLO_8BITMIME },
	{ "SMTPUTF8", EHLO_SMTPUTF8 },
	{ "STARTTLS", EHLO_STARTTLS },
	{ "DSN", EHLO_DSN },
	{ "CHUNKING", EHLO_CHUNKING },
	{ "ENHANCEDSTATUSCODES", EHLO_ENHANCEDSTATUSCODES },
	{ "REQUIRETLS", EHLO_REQUIRETLS },
};

/* Length of the word at s[0..len): up to the first blank or the end. */
static size_t
reply_word_len(const char *s, size_t len)
{
	size_t n = 0;

	while (n < len && !reply_is_blank((unsigned char)s[n]))
		n++;
	return n;
}

/* Skips blanks: the position of the first other byte at or after pos. */
static size_t
reply_skip_blanks(const char *s, size_t len, size_t pos)
{
	while (pos < len && reply_is_blank((unsigned char)s[pos]))
		pos++;
	return pos;
}

/* The mechanisms of an AUTH line from pos: a bit for each we can use. */
static void
reply_ehlo_auth(struct ehlo_caps *caps, const char *line, size_t len,
		size_t pos)
{
	while (pos < len) {
		size_t n;

		pos = reply_skip_blanks(line, len, pos);
		n = reply_word_len(line + pos, len - pos);
		if (n == 5 && strncasecmp(line + pos, "PLAIN", 5) == 0)
			caps->ext |= EHLO_AUTH_PLAIN;
		else if (n == 5 && strncasecmp(line + pos, "LOGIN", 5) == 0)
			caps->ext |= EHLO_AUTH_LOGIN;
		pos += n;
	}
}

void
reply_ehlo_line(struct ehlo_caps *caps, const char *line, size_t len,
		bool is_first)
{
	size_t pos, kw_len, v_at, i;
	uint64_t v;

	if (is_first) {
		memset(caps, 0, sizeof(*caps));
		return;
	}
	/* Only a 250 names extensions; a 5xx's text is no list of them. */
	if (len <= REPLY_CODE_LEN ||
	    memcmp(line, REPLY_EHLO_CODE, REPLY_CODE_LEN) != 0 ||
	    (line[REPLY_CODE_LEN] != ' ' && line[REPLY_CODE_LEN] != '-'))
		return;
	pos = reply_skip_blanks(line, len, REPLY_CODE_LEN + 1);
	kw_len = reply_word_len(line + pos, len - pos);
	if (kw_len >= 4 && strncasecmp(line + pos, "AUTH", 4) == 0 &&
	    (kw_len == 4 || line[pos + 4] == '=')) {
		reply_ehlo_auth(caps, line, len, pos + 5);
		return;
	}
	for (i = 0; i < sizeof(reply_ehlo_kws) / sizeof(reply_ehlo_kws[0]);
	     i++) {
		const struct reply_ehlo_kw *k = &reply_ehlo_kws[i];

		if (strlen(k->name) == kw_len &&
		    strncasecmp(line + pos, k->name, kw_len) == 0)
			break;
	}
	if (i == sizeof(reply_ehlo_kws) / sizeof(reply_ehlo_kws[0]))
		return;
	caps->ext |= reply_ehlo_kws[i].bit;
	if (reply_ehlo_kws[i].bit != EHLO_SIZE)
		return;
	caps->size_max = 0;
	v_at = reply_skip_blanks(line, len, pos + kw_len);
	if (esmtp_parse_uint(line + v_at,
			     reply_word_len(line + v_at, len - v_at), &v))
		caps->size_max = v;
}

/*
 * Wait hints.  A phrase is a list of words separated by blanks; the text
 * must hold it at a word start, then blanks, a number, optional blanks
 * and a unit word (or nothing, where is_bare_ok).
 */
#define REPLY_PHRASE_WORDS_MAX 4

struct reply_phrase {
	const char *words[REPLY_PHRASE_WORDS_MAX]; /* NULL after the last */
	bool is_bare_ok; /* a number without a unit is seconds */
};

static const struct reply_phrase reply_phrases[] = {
	{ { "retry", "in" }, true },
	{ { "retry", "again", "in" }, true },
	{ { "retry", "after" }, false },
	{ { "try", "again", "in" }, true },
	{ { "try", "again", "after" }, false },
	{ { "try", "again", "later", "in" }, true },
	{ { "wait" }, false },
	{ { "wait", "for" }, false },
};

struct reply_unit {
	const char *name;
	unsigned seconds;
};

static const struct reply_unit reply_units[] = {
	{ "s", 1 },
	{ "sec", 1 },
	{ "secs", 1 },
	{ "second", 1 },
	{ "seconds", 1 },
	{ "m", REPLY_MINUTE },
	{ "min", REPLY_MINUTE },
	{ "mins", REPLY_MINUTE },
	{ "minute", REPLY_MINUTE },
	{ "minutes", REPLY_MINUTE },
	{ "h", REPLY_HOUR },
	{ "hr", REPLY_HOUR },
	{ "hrs", REPLY_HOUR },
	{ "hour", REPLY_HOUR },
	{ "hours", REPLY_HOUR },
	{ "d", REPLY_DAY },
	{ "day", REPLY_DAY },
	{ "days", REPLY_DAY },
};

/* Length of the run of letters at s[pos..len). */
static size_t
reply_alpha_len(const char *s, size_t len, size_t pos)
{
	size_t n = 0;

	while (pos + n < len && reply_is_alpha((unsigned char)s[pos + n]))
		n++;
	return n;
}

/*
 * Matches phrase ph at s[pos..len), pos a word start; on a match returns
 * true with *end_out just past its last word.
 */
static bool
reply_phrase_at(const struct reply_phrase *ph, const char *s, size_t len,
		size_t pos, size_t *end_out)
{
	size_t i, n, at;

	for (i = 0; i < REPLY_PHRASE_WORDS_MAX && ph->words[i] != NULL; i++) {
		if (i > 0) {
			at = reply_skip_blanks(s, len, pos);
			if (at == pos)
				return false;
			pos = at;
		}
		n = strlen(ph->words[i]);
		if (reply_alpha_len(s, len, pos) != n ||
		    strncasecmp(s + pos, ph->words[i], n) != 0)
			return false;
		pos += n;
	}
	*end_out = pos;
	return true;
}

/* Seconds in the unit word s[0..n), 0 when it names none. */
static unsigned
reply_unit_seconds(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(reply_units) / sizeof(reply_units[0]); i++)
		if (strlen(reply_units[i].name) == n &&
		    strncasecmp(s, reply_units[i].name, n) == 0)
			return reply_units[i].seconds;
	return 0;
}

enum reply_hint {
	REPLY_HINT_NONE, /* no number and unit here: look further */
	REPLY_HINT_BAD,	 /* a number here, but 0, too long or overflowing */
	REPLY_HINT_OK,
};

/* Reads "N unit" after a phrase that ended at s[pos]. */
static enum reply_hint
reply_hint_after(const struct reply_phrase *ph, const char *s, size_t len,
		 size_t pos, uint64_t *seconds_out)
{
	size_t at = reply_skip_blanks(s, len, pos), n;
	uint64_t v = 0;
	bool is_big = false;
	unsigned unit;

	if (at == pos || at == len || !reply_is_digit((unsigned char)s[at]))
		return REPLY_HINT_NONE;
	for (; at < len && reply_is_digit((unsigned char)s[at]); at++) {
		v = v * 10 + (uint64_t)(s[at] - '0');
		if (v > REPLY_WAIT_MAX) {
			is_big = true;
			v = REPLY_WAIT_MAX + 1; /* stays small: no overflow */
		}
	}
	/* "5.5 minutes" or "1,000 s" is no number we can read. */
	if (at + 1 < len && (s[at] == '.' || s[at] == ',') &&
	    reply_is_digit((unsigned char)s[at + 1]))
		return REPLY_HINT_NONE;
	at = reply_skip_blanks(s, len, at);
	n = reply_alpha_len(s, len, at);
	unit = n > 0 ? reply_unit_seconds(s + at, n) : 1;
	if (unit == 0 || (n == 0 && !ph->is_bare_ok))
		return REPLY_HINT_NONE;
	v *= unit;
	if (is_big || v == 0 || v > REPLY_WAIT_MAX)
		return REPLY_HINT_BAD;
	*seconds_out = v;
	return REPLY_HINT_OK;
}

bool
reply_wait_hint(const char *text, size_t len, unsigned *seconds_out)
{
	size_t pos, i, end;
	uint64_t v;
	enum reply_hint h;

	for (pos = 0; pos < len; pos++) {
		if (!reply_is_alpha((unsigned char)text[pos]) ||
		    (pos > 0 && reply_is_alpha((unsigned char)text[pos - 1])))
			continue;
		for (i = 0;
		     i < sizeof(reply_phrases) / sizeof(reply_phrases[0]);
		     i++) {
			if (!reply_phrase_at(&reply_phrases[i], text, len, pos,
					     &end))
				continue;
			h = reply_hint_after(&reply_phrases[i], text, len, end,
					     &v);
			if (h == REPLY_HINT_BAD)
				return false;
			if (h == REPLY_HINT_OK) {
				*seconds_out = (unsigned)v;
				return true;
			}
		}
	}
	return false;
}

/* Copies a's mailbox into buf when it fits. */
static bool
reply_copy_mailbox(const struct addr *a, char *buf, size_t size)
{
	size_t n = strlen(a->mailbox);

	if (n == 0 || n >= size)
		return false;
	memcpy(buf, a->mailbox, n + 1);
	return true;
}

/* True with *a set when a "<...>" in text[0..len) parses as a path. */
static bool
reply_551_bracketed(const char *text, size_t len, struct addr *a)
{
	const char *p = text, *lt;
	size_t consumed;

	if (len == 0)
		return false;
	while ((lt = memchr(p, '<', len - (size_t)(p - text))) != NULL) {
		if (addr_parse_path(lt, len - (size_t)(lt - text),
				    ADDR_ALLOW_UTF8, a, &consumed) == ADDR_OK)
			return true;
		p = lt + 1;
	}
	return false;
}

/* Trailing punctuation a sentence puts after an address. */
static bool
reply_is_trailing_punct(char ch)
{
	return ch == '.' || ch == ',' || ch == ';' || ch == ':' || ch == ')';
}

/* The first word of text[0..len) with an "@" that parses as a mailbox. */
static bool
reply_551_bare(const char *text, size_t len, struct addr *a)
{
	size_t pos = 0, n;
	const char *w;

	while (pos < len) {
		pos = reply_skip_blanks(text, len, pos);
		w = text + pos;
		n = reply_word_len(w, len - pos);
		pos += n;
		if (n > 0 && *w == '(') {
			w++;
			n--;
		}
		while (n > 0 && reply_is_trailing_punct(w[n - 1]))
			n--;
		if (n > 0 && memchr(w, '@', n) != NULL &&
		    addr_parse_mailbox(w, n, ADDR_ALLOW_UTF8, a) == ADDR_OK)
			return true;
	}
	return false;
}

bool
reply_551_address(const char *text, size_t len, char *buf, size_t size)
{
	struct addr a;

	if (reply_551_bracketed(text, len, &a) || reply_551_bare(text, len, &a))
		return reply_copy_mailbox(&a, buf, size);
	return false;
}
