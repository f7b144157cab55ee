/*
 * main.c - argv to one cli_* function; nothing else.  Called as
 * `sendmail` (a link named so), it is `postern send`.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_int.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
	const char *what;
} commands[] = {
	{"serve", cli_serve, "serve   [-c FILE]", "run the server in the foreground"},
	{"check", cli_check, "check   [-c FILE]", "validate a config, print what is wrong, exit 1"},
	{"ctl", cli_ctl, "ctl     maintenance on|off|status | reload | stop | tls-report send  [-c FILE]",
	 "steer the running server through its control socket"},
	{"queue", cli_queue,
	 "queue   list | show ID | flush | delete ID | hold ID | release ID | stats  [-c FILE]",
	 "the outgoing queue: what waits, why, and what to do with it"},
	{"send", cli_send, "send    [-f FROM] [-t] [-i] [-F NAME] [-c FILE] RCPT...",
	 "read a message on stdin and queue it (also as `sendmail`)"},
	{"auth", cli_auth,
	 "auth    check --ip IP [--helo NAME] [--from ADDR] [-c FILE] < MESSAGE",
	 "print the Authentication-Results (SPF, DKIM, DMARC) postern would add"},
	{"dkim", cli_dkim, "dkim    keygen DOMAIN [--selector S] [--type rsa|ed25519] [-c FILE]",
	 "write [dkim] keys/DOMAIN.S.key, print the DNS TXT record"},
	{"tls-report", cli_tlsreport,
	 "tls-report [--day YYYY-MM-DD] [--domain D [--json]] [-c FILE]",
	 "the day's TLS outcomes of sending, per domain (RFC 8460 reports)"},
	{"explain", cli_explain,
	 "explain CODE [CODE2] [--lang en|id|tr|fr|ko] [--format text|json|html]\n"
	 "  postern explain --site DIR | --list",
	 "explain an SMTP reply code or compare two; write the reference as a "
	 "site"},
};

static void
usage(FILE *fp)
{
	fprintf(fp, "postern %s - a mail transfer agent\n\nusage:\n",
		POSTERN_VERSION);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(fp, "  postern %s\n      %s\n", commands[i].usage,
			commands[i].what);
	fprintf(fp, "\n  postern COMMAND --help   details of one command\n"
		    "  postern --version\n\n"
		    "Without -c, the config is " CLI_DEFAULT_CONFIG ".  Start with "
		    "`make run`\n(SMTP on 127.0.0.1:2525, domain example.test) "
		    "and see README.md.\n");
}

int
main(int argc, char **argv)
{
	const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;

	if (argc > 0 && strcmp(base ? base + 1 : argv[0], "sendmail") == 0)
		return cli_send(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("postern %s\n", POSTERN_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "postern: unknown command '%s'; run `postern --help` "
		"for the list\n", argv[1]);
	return 2;
}
