/*
 * cmd.c - splitting one SMTP command line into verb and argument.
 *
 * The session hands cmd_parse() a line that line_next() accepted (no CR, LF
 * or NUL in it) and dispatches on the verb.  The parser only finds the verb
 * and the argument's bounds; addr.c and esmtp.c read the argument.
 *
 * Rules (RFC 5321 4.1.1, 4.1.2):
 *   - the verb is the text up to the first space or the end of the line,
 *     compared without regard to case; anything else ("DATAX", "DATA\t")
 *     is CMD_ERR_UNKNOWN;
 *   - MAIL must go on with "FROM:" and RCPT with "TO:" (any case, after one
 *     or more spaces); spaces after the colon are skipped, as many clients
 *     send "MAIL FROM: <a@b>"; a MAIL or RCPT without that keyword, or with
 *     nothing after it, is CMD_ERR_SYNTAX (501);
 *   - for every verb the argument starts after the spaces and loses its
 *     trailing spaces; whether a verb may have one is the session's call.
 */
#include <stdbool.h>
#include <strings.h>

#include "proto/cmd.h"

struct cmd_verb_row {
	enum cmd_verb verb;
	const char *name;
	size_t name_len;
};

#define CMD_ROW(v, n) { v, n, sizeof(n) - 1 }

static const struct cmd_verb_row cmd_verbs[] = {
	CMD_ROW(CMD_HELO, "HELO"),
	CMD_ROW(CMD_EHLO, "EHLO"),
	CMD_ROW(CMD_MAIL, "MAIL"),
	CMD_ROW(CMD_RCPT, "RCPT"),
	CMD_ROW(CMD_DATA, "DATA"),
	CMD_ROW(CMD_BDAT, "BDAT"),
	CMD_ROW(CMD_RSET, "RSET"),
	CMD_ROW(CMD_NOOP, "NOOP"),
	CMD_ROW(CMD_QUIT, "QUIT"),
	CMD_ROW(CMD_VRFY, "VRFY"),
	CMD_ROW(CMD_EXPN, "EXPN"),
	CMD_ROW(CMD_HELP, "HELP"),
	CMD_ROW(CMD_STARTTLS, "STARTTLS"),
	CMD_ROW(CMD_AUTH, "AUTH"),
	CMD_ROW(CMD_ETRN, "ETRN"),
	CMD_ROW(CMD_TURN, "TURN"),
};

#define CMD_VERB_ROWS (sizeof(cmd_verbs) / sizeof(cmd_verbs[0]))

static size_t
cmd_skip_spaces(const char *s, size_t len, size_t pos)
{
	while (pos < len && s[pos] == ' ')
		pos++;
	return pos;
}

static enum cmd_verb
cmd_lookup(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < CMD_VERB_ROWS; i++) {
		if (cmd_verbs[i].name_len == len &&
		    strncasecmp(cmd_verbs[i].name, s, len) == 0)
			return cmd_verbs[i].verb;
	}
	return CMD_UNKNOWN;
}

/* True when s[pos..len) starts with kw, ignoring case. */
static bool
cmd_has_keyword(const char *s, size_t len, size_t pos, const char *kw,
		size_t kw_len)
{
	return len - pos >= kw_len && strncasecmp(s + pos, kw, kw_len) == 0;
}

enum cmd_result
cmd_parse(const char *line, size_t len, struct cmd *out)
{
	size_t verb_len = 0;
	size_t pos;
	size_t end = len;
	enum cmd_verb verb;

	while (verb_len < len && line[verb_len] != ' ')
		verb_len++;
	verb = cmd_lookup(line, verb_len);
	out->verb = verb;
	if (verb == CMD_UNKNOWN)
		return CMD_ERR_UNKNOWN;

	pos = cmd_skip_spaces(line, len, verb_len);
	if (verb == CMD_MAIL || verb == CMD_RCPT) {
		const char *kw = verb == CMD_MAIL ? "FROM:" : "TO:";
		size_t kw_len = verb == CMD_MAIL ? 5 : 3;

		if (pos == verb_len ||
		    !cmd_has_keyword(line, len, pos, kw, kw_len))
			return CMD_ERR_SYNTAX;
		pos = cmd_skip_spaces(line, len, pos + kw_len);
	}
	while (end > pos && line[end - 1] == ' ')
		end--;
	if ((verb == CMD_MAIL || verb == CMD_RCPT) && end == pos)
		return CMD_ERR_SYNTAX;

	out->verb = verb;
	out->arg = line + pos;
	out->arg_len = end - pos;
	return CMD_PARSE_OK;
}

const char *
cmd_verb_name(enum cmd_verb verb)
{
	size_t i;

	for (i = 0; i < CMD_VERB_ROWS; i++) {
		if (cmd_verbs[i].verb == verb)
			return cmd_verbs[i].name;
	}
	return "?";
}
