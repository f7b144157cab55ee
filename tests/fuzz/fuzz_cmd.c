/*
 * fuzz_cmd.c - libFuzzer target for the command splitter
 * (src/proto/cmd.c).
 *
 * The input is one command line.  Checks: the argument lies inside the
 * line, has no leading or trailing space, and the verb's name matches the
 * line's first word; the same line in upper or lower case gives the same
 * verb and the same argument bounds, as verbs ignore case.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/cmd.h"

#define FUZZ_CHECK(cond)                                                      \
	do {                                                                  \
		if (!(cond))                                                  \
			__builtin_trap();                                     \
	} while (0)

static void
fuzz_check(const char *line, size_t len, enum cmd_result r,
	   const struct cmd *c)
{
	const char *name;
	size_t name_len;

	if (r != CMD_PARSE_OK)
		return;
	FUZZ_CHECK(c->verb > CMD_UNKNOWN && c->verb < CMD_VERB_COUNT);
	FUZZ_CHECK(c->arg >= line && c->arg + c->arg_len <= line + len);
	if (c->arg_len > 0)
		FUZZ_CHECK(c->arg[0] != ' ' && c->arg[c->arg_len - 1] != ' ');
	name = cmd_verb_name(c->verb);
	name_len = strlen(name);
	FUZZ_CHECK(len >= name_len && strncasecmp(line, name, name_len) == 0);
	FUZZ_CHECK(len == name_len || line[name_len] == ' ');
	if (c->verb == CMD_MAIL || c->verb == CMD_RCPT)
		FUZZ_CHECK(c->arg_len > 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct cmd c, cu;
	enum cmd_result r, ru;
	char *upper;
	size_t i;

	r = cmd_parse(line, size, &c);
	FUZZ_CHECK(r == CMD_PARSE_OK || r == CMD_ERR_UNKNOWN ||
		   r == CMD_ERR_SYNTAX);
	fuzz_check(line, size, r, &c);

	upper = malloc(size + 1);
	if (upper == NULL)
		abort();
	for (i = 0; i < size; i++) {
		char ch = line[i];

		upper[i] = ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') :
						    ch;
	}
	ru = cmd_parse(upper, size, &cu);
	FUZZ_CHECK(ru == r);
	if (r == CMD_PARSE_OK) {
		FUZZ_CHECK(cu.verb == c.verb && cu.arg_len == c.arg_len);
		FUZZ_CHECK(cu.arg - upper == c.arg - line);
	}
	free(upper);
	return 0;
}
