/*
 * test_cmd.c - splitting command lines into verb and argument
 * (src/proto/cmd.c).  One table: line -> result, verb, argument.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/cmd.h"

struct cmd_case {
	const char *name;
	const char *line;
	enum cmd_result result;
	enum cmd_verb verb;
	const char *arg; /* expected argument on CMD_PARSE_OK */
};

static const struct cmd_case cmd_cases[] = {
	{ "helo_with_domain", "HELO mx.example", CMD_PARSE_OK, CMD_HELO,
	  "mx.example" },
	{ "ehlo_lower_case_is_ehlo", "ehlo mx.example", CMD_PARSE_OK,
	  CMD_EHLO, "mx.example" },
	{ "mixed_case_verb", "QuIt", CMD_PARSE_OK, CMD_QUIT, "" },
	{ "mail_from", "MAIL FROM:<a@b>", CMD_PARSE_OK, CMD_MAIL, "<a@b>" },
	{ "mail_from_lower_case", "mail from:<a@b>", CMD_PARSE_OK, CMD_MAIL,
	  "<a@b>" },
	{ "mail_from_space_after_colon", "MAIL FROM: <a@b>", CMD_PARSE_OK,
	  CMD_MAIL, "<a@b>" },
	{ "mail_from_keeps_params", "MAIL FROM:<a@b> SIZE=10  BODY=8BITMIME",
	  CMD_PARSE_OK, CMD_MAIL, "<a@b> SIZE=10  BODY=8BITMIME" },
	{ "mail_from_trailing_spaces_trimmed", "MAIL FROM:<a@b>   ",
	  CMD_PARSE_OK, CMD_MAIL, "<a@b>" },
	{ "mail_two_spaces_before_from", "MAIL  FROM:<a@b>", CMD_PARSE_OK,
	  CMD_MAIL, "<a@b>" },
	{ "mail_null_path", "MAIL FROM:<>", CMD_PARSE_OK, CMD_MAIL, "<>" },
	{ "rcpt_to", "RCPT TO:<a@b>", CMD_PARSE_OK, CMD_RCPT, "<a@b>" },
	{ "rcpt_to_space_after_colon", "rcpt to:  <a@b> NOTIFY=NEVER",
	  CMD_PARSE_OK, CMD_RCPT, "<a@b> NOTIFY=NEVER" },
	{ "mail_alone_is_syntax", "MAIL", CMD_ERR_SYNTAX, 0, NULL },
	{ "mail_space_alone_is_syntax", "MAIL ", CMD_ERR_SYNTAX, 0, NULL },
	{ "mail_to_is_syntax", "MAIL TO:<x>", CMD_ERR_SYNTAX, 0, NULL },
	{ "mail_from_without_colon_is_syntax", "MAIL FROM <a@b>",
	  CMD_ERR_SYNTAX, 0, NULL },
	{ "mail_from_space_before_colon_is_syntax", "MAIL FROM :<a@b>",
	  CMD_ERR_SYNTAX, 0, NULL },
	{ "mail_from_empty_is_syntax", "MAIL FROM:", CMD_ERR_SYNTAX, 0,
	  NULL },
	{ "mail_from_only_spaces_is_syntax", "MAIL FROM:   ", CMD_ERR_SYNTAX,
	  0, NULL },
	{ "mailfrom_glued_is_unknown", "MAILFROM:<a@b>", CMD_ERR_UNKNOWN, 0,
	  NULL },
	{ "rcpt_from_is_syntax", "RCPT FROM:<a@b>", CMD_ERR_SYNTAX, 0, NULL },
	{ "rcpt_alone_is_syntax", "RCPT", CMD_ERR_SYNTAX, 0, NULL },
	{ "rcpt_to_empty_is_syntax", "RCPT TO:", CMD_ERR_SYNTAX, 0, NULL },
	{ "data_alone", "DATA", CMD_PARSE_OK, CMD_DATA, "" },
	{ "data_trailing_space_is_data", "DATA ", CMD_PARSE_OK, CMD_DATA,
	  "" },
	{ "datax_is_unknown", "DATAX", CMD_ERR_UNKNOWN, 0, NULL },
	{ "data_tab_is_unknown", "DATA\t", CMD_ERR_UNKNOWN, 0, NULL },
	{ "data_with_arg_is_parsed", "DATA x", CMD_PARSE_OK, CMD_DATA, "x" },
	{ "bdat_args", "BDAT 1000 LAST", CMD_PARSE_OK, CMD_BDAT,
	  "1000 LAST" },
	{ "rset", "RSET", CMD_PARSE_OK, CMD_RSET, "" },
	{ "noop_with_arg", "NOOP hello there ", CMD_PARSE_OK, CMD_NOOP,
	  "hello there" },
	{ "vrfy", "VRFY user", CMD_PARSE_OK, CMD_VRFY, "user" },
	{ "expn", "EXPN list", CMD_PARSE_OK, CMD_EXPN, "list" },
	{ "help", "HELP", CMD_PARSE_OK, CMD_HELP, "" },
	{ "starttls", "starttls", CMD_PARSE_OK, CMD_STARTTLS, "" },
	{ "auth", "AUTH PLAIN AGJvYgBwdw==", CMD_PARSE_OK, CMD_AUTH,
	  "PLAIN AGJvYgBwdw==" },
	{ "etrn", "ETRN example.org", CMD_PARSE_OK, CMD_ETRN, "example.org" },
	{ "turn", "TURN", CMD_PARSE_OK, CMD_TURN, "" },
	{ "empty_line_is_unknown", "", CMD_ERR_UNKNOWN, 0, NULL },
	{ "leading_space_is_unknown", " NOOP", CMD_ERR_UNKNOWN, 0, NULL },
	{ "unknown_verb", "XYZZY", CMD_ERR_UNKNOWN, 0, NULL },
	{ "verb_prefix_is_unknown", "HEL", CMD_ERR_UNKNOWN, 0, NULL },
	{ "http_request_is_unknown", "GET / HTTP/1.1", CMD_ERR_UNKNOWN, 0,
	  NULL },
};

static void
test_cmd_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
		const struct cmd_case *c = &cmd_cases[i];
		size_t len = strlen(c->line);
		struct cmd cmd = { CMD_UNKNOWN, NULL, 0 };
		enum cmd_result r = cmd_parse(c->line, len, &cmd);

		if (r != c->result)
			fail_msg("%s: result %d, want %d", c->name, r,
				 c->result);
		if (r != CMD_PARSE_OK)
			continue;
		if (cmd.verb != c->verb)
			fail_msg("%s: verb %d, want %d", c->name, cmd.verb,
				 c->verb);
		if (cmd.arg_len != strlen(c->arg) ||
		    memcmp(cmd.arg, c->arg, cmd.arg_len) != 0)
			fail_msg("%s: arg \"%.*s\", want \"%s\"", c->name,
				 (int)cmd.arg_len, cmd.arg, c->arg);
		assert_true(cmd.arg >= c->line && cmd.arg <= c->line + len);
	}
}

/* The line is not NUL-terminated: nothing past len may be read. */
static void
test_cmd_reads_only_len_octets(void **state)
{
	const char line[] = "MAIL FROM:<a@b>XXXX";
	struct cmd cmd;

	(void)state;
	assert_int_equal(cmd_parse(line, 15, &cmd), CMD_PARSE_OK);
	assert_int_equal(cmd.arg_len, 5);
	assert_int_equal(cmd_parse(line, 4, &cmd), CMD_ERR_SYNTAX);
	assert_int_equal(cmd_parse("DATAX", 4, &cmd), CMD_PARSE_OK);
	assert_int_equal(cmd.verb, CMD_DATA);
	assert_int_equal(cmd.arg_len, 0);
}

static void
test_cmd_verb_names_are_upper_case(void **state)
{
	struct cmd cmd;
	int v;

	(void)state;
	assert_string_equal(cmd_verb_name(CMD_UNKNOWN), "?");
	assert_string_equal(cmd_verb_name(CMD_VERB_COUNT), "?");
	assert_string_equal(cmd_verb_name(CMD_STARTTLS), "STARTTLS");
	/* Every verb's name parses back to the verb. */
	for (v = CMD_HELO; v < CMD_VERB_COUNT; v++) {
		const char *name = cmd_verb_name((enum cmd_verb)v);
		enum cmd_result r = cmd_parse(name, strlen(name), &cmd);

		if (v == CMD_MAIL || v == CMD_RCPT) {
			assert_int_equal(r, CMD_ERR_SYNTAX);
			continue;
		}
		assert_int_equal(r, CMD_PARSE_OK);
		assert_int_equal(cmd.verb, v);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_cases),
		cmocka_unit_test(test_cmd_reads_only_len_octets),
		cmocka_unit_test(test_cmd_verb_names_are_upper_case),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
