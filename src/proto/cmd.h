/*
 * cmd.h - splitting one SMTP command line into verb and argument (pure).
 *
 * RFC 5321 4.1.1: verbs are case-insensitive; MAIL and RCPT carry "FROM:" and
 * "TO:".  The parser does not interpret arguments; addr.h and esmtp.h do.
 */
#ifndef POSTERN_PROTO_CMD_H
#define POSTERN_PROTO_CMD_H

#include <stddef.h>

enum cmd_verb {
	CMD_UNKNOWN = 0,
	CMD_HELO,
	CMD_EHLO,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_BDAT,
	CMD_RSET,
	CMD_NOOP,
	CMD_QUIT,
	CMD_VRFY,
	CMD_EXPN,
	CMD_HELP,
	CMD_STARTTLS,
	CMD_AUTH,
	CMD_ETRN,
	CMD_TURN,
	CMD_VERB_COUNT
};

enum cmd_result {
	CMD_PARSE_OK,
	CMD_ERR_UNKNOWN, /* verb not recognised: 500 */
	CMD_ERR_SYNTAX,	 /* verb known, shape wrong (MAIL without FROM:): 501 */
};

/*
 * A parsed command.  arg points into the caller's line: for MAIL and RCPT it
 * starts after "FROM:"/"TO:" and any spaces, for other verbs after the verb
 * and the spaces following it; trailing spaces are not part of it.  arg_len
 * is 0 when there is no argument.
 */
struct cmd {
	enum cmd_verb verb;
	const char *arg;
	size_t arg_len;
};

/*
 * Parses line[0..len), which holds no CRLF.  Fills *out on CMD_PARSE_OK;
 * sets out->verb on every result (CMD_UNKNOWN when not recognised), so a
 * CMD_ERR_SYNTAX can name its command.
 */
enum cmd_result cmd_parse(const char *line, size_t len, struct cmd *out);

/* The verb's name in upper case ("MAIL"), "?" for CMD_UNKNOWN. */
const char *cmd_verb_name(enum cmd_verb verb);

#endif
