/*
 * parse.c - find an SMTP reply in what a person pasted, and put a reply
 * into words for bounces and `postern queue show`.
 *
 * Accepts a bare code ("421", "4.7.1", "X.7.1"), a reply line ("550 5.7.1
 * Relaying denied"), a multi-line reply as RFC 5321 4.2.1 writes it
 * ("550-5.1.1 ...\r\n550 5.1.1 ...") and the same inside log lines
 * ("... said: 550 5.1.1 <a@b>: ..." from Postfix, "...: 550 5.1.1 ..."
 * from Exim).  Only the syntax of codes is checked here; table.c knows
 * which exist.  Input is text from a person or a peer: no length is
 * trusted, the kept text is capped at EXPLAIN_REPLY_TEXT_MAX.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "explain/explain.h"

/* Postfix's "host mx.example[192.0.2.1] said: 550 ..." */
#define LOG_SAID "said: "
/* One line of the pasted input; longer lines are cut here. */
#define PASTE_LINE_MAX 4096
/* "550" */
#define BASIC_LEN 3

static bool
is_boundary(const char *start, const char *p)
{
	return p == start || isspace((unsigned char)p[-1]) || p[-1] == ':' ||
	    p[-1] == '(' || p[-1] == '"' || p[-1] == '=' || p[-1] == '<';
}

static bool
is_end(char c)
{
	return c == '\0' || isspace((unsigned char)c);
}

/* "550" followed by SP, "-" or the end; first digit 2..5 unless strict
 * is off (a whole input of three digits). */
static bool
is_basic_at(const char *p, bool strict)
{
	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) ||
	    !isdigit((unsigned char)p[2]))
		return false;
	if (strict && (p[0] < '2' || p[0] > '5'))
		return false;
	return is_end(p[3]) || p[3] == '-';
}

/* "5.7.26" (or X.7.26) followed by the end or a space, length into *len. */
static bool
is_enhanced_at(const char *p, size_t *len)
{
	size_t i = 0, n;

	if (!(isdigit((unsigned char)p[0]) || p[0] == 'X' || p[0] == 'x') ||
	    p[1] != '.')
		return false;
	i = 2;
	for (int part = 0; part < 2; part++) {
		for (n = 0; isdigit((unsigned char)p[i + n]); n++)
			;
		if (n == 0 || n > 3)
			return false;
		i += n;
		if (part == 0 && p[i++] != '.')
			return false;
	}
	if (!is_end(p[i]) && p[i] != ',' && p[i] != ')' && p[i] != ';')
		return false;
	*len = i;
	return true;
}

/* Append s[0..n) to out->text, a space between pieces, cut on a UTF-8
 * character boundary when full. */
static void
text_append(struct explain_reply *out, const char *s, size_t n)
{
	size_t have = strlen(out->text);
	size_t room;

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	if (n == 0)
		return;
	if (have > 0 && have + 1 < sizeof out->text)
		out->text[have++] = ' ';
	room = sizeof out->text - 1 - have;
	if (n > room) {
		n = room;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(out->text + have, s, n);
	out->text[have + n] = '\0';
}

/* Where the reply starts in one line: after "said: " if there is one,
 * else at the first code at a word boundary.  NULL if none. */
static const char *
find_basic(const char *line)
{
	const char *p = strstr(line, LOG_SAID);

	if (p != NULL)
		line = p + strlen(LOG_SAID);
	for (p = line; *p != '\0'; p++)
		if (is_boundary(line, p) && is_basic_at(p, true))
			return p;
	return NULL;
}

/* One line that carries a basic code: codes into out (first line) and
 * the text after them. */
static void
take_line(const char *p, struct explain_reply *out)
{
	size_t len;

	if (out->basic[0] == '\0')
		memcpy(out->basic, p, BASIC_LEN);
	p += BASIC_LEN;
	if (*p == '-' || *p == ' ')
		p++;
	while (*p == ' ' || *p == '\t')
		p++;
	if (is_enhanced_at(p, &len)) {
		if (out->enhanced[0] == '\0' && len < sizeof out->enhanced)
			memcpy(out->enhanced, p, len);
		p += len;
	}
	text_append(out, p, strlen(p));
}

/* No basic code anywhere: an enhanced code alone ("4.7.1", "dsn=5.1.1"). */
static int
parse_enhanced_only(const char *input, struct explain_reply *out)
{
	size_t len;

	for (const char *p = input; *p != '\0'; p++) {
		if (!is_boundary(input, p) || !is_enhanced_at(p, &len))
			continue;
		if (len >= sizeof out->enhanced)
			continue;
		memcpy(out->enhanced, p, len);
		out->enhanced[len] = '\0';
		text_append(out, p + len, strcspn(p + len, "\r\n"));
		return EXPLAIN_PARSE_OK;
	}
	return EXPLAIN_PARSE_ERR_NO_CODE;
}

/* A log wraps the reply in "(...)": drop the closing one it leaves. */
static void
drop_unbalanced_paren(char *text)
{
	int depth = 0;
	size_t n = strlen(text);

	for (size_t i = 0; i < n; i++)
		depth += text[i] == '(' ? 1 : text[i] == ')' ? -1 : 0;
	if (depth < 0 && n > 0 && text[n - 1] == ')')
		text[n - 1] = '\0';
}

int
explain_reply_parse(const char *input, struct explain_reply *out)
{
	char line[PASTE_LINE_MAX];
	const char *p = input, *nl;
	size_t n;

	memset(out, 0, sizeof *out);
	while (isspace((unsigned char)*p))
		p++;
	/* A whole input of three digits is a code, even an unknown one. */
	if (is_basic_at(p, false)) {
		n = strspn(p + BASIC_LEN, " \t\r\n");
		if (p[BASIC_LEN + n] == '\0') {
			memcpy(out->basic, p, BASIC_LEN);
			return EXPLAIN_PARSE_OK;
		}
	}
	for (; *p != '\0'; p = *nl != '\0' ? nl + 1 : nl) {
		const char *code;

		nl = p + strcspn(p, "\n");
		n = (size_t)(nl - p);
		if (n >= sizeof line)
			n = sizeof line - 1;
		memcpy(line, p, n);
		line[n] = '\0';
		line[strcspn(line, "\r")] = '\0';
		code = find_basic(line);
		/* Every line of a multi-line reply carries the code (RFC 5321
		 * 4.2.1); other lines of a pasted log are not the reply's. */
		if (code != NULL &&
		    (out->basic[0] == '\0' ||
		     strncmp(code, out->basic, BASIC_LEN) == 0))
			take_line(code, out);
	}
	if (out->basic[0] == '\0' &&
	    parse_enhanced_only(input, out) != EXPLAIN_PARSE_OK)
		return EXPLAIN_PARSE_ERR_NO_CODE;
	drop_unbalanced_paren(out->text);
	return EXPLAIN_PARSE_OK;
}

/* The first sentence of s: up to and including the first ". ". */
static int
first_sentence_len(const char *s)
{
	const char *end = strstr(s, ". ");

	return end != NULL ? (int)(end - s + 1) : (int)strlen(s);
}

static int
append_code(char *buf, size_t size, int len, const struct explain_item *it)
{
	size_t off = (size_t)len < size ? (size_t)len : size;
	const char *d = it->row->description;

	return len + snprintf(buf + off, size - off, "%s%s (%s): %.*s",
	    len > 0 ? " " : "", it->code, it->row->name,
	    first_sentence_len(d), d);
}

int
explain_reply_format(const char *reply, char *buf, size_t size)
{
	struct explain_reply r;
	struct explain_item basic, enh;
	const struct explain_item *last = NULL;
	int len = 0;
	size_t off;

	if (size > 0)
		buf[0] = '\0';
	if (reply == NULL || explain_reply_parse(reply, &r) != EXPLAIN_PARSE_OK)
		return -1;
	if (r.basic[0] != '\0' && explain_item_set(&basic, r.basic) == 0) {
		len = append_code(buf, size, len, &basic);
		last = &basic;
	}
	if (r.enhanced[0] != '\0' && explain_item_set(&enh, r.enhanced) == 0) {
		len = append_code(buf, size, len, &enh);
		last = &enh;
	}
	if (last == NULL)
		return -1;
	off = (size_t)len < size ? (size_t)len : size;
	len += snprintf(buf + off, size - off, " What to do: %.*s",
	    first_sentence_len(last->row->fix), last->row->fix);
	return len;
}
