/*
 * serve.c - `postern serve [-c FILE]`: load the config, run the server in
 * the foreground, log to stderr.  Exit 1 with one line naming the fix when
 * the config or the start-up fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"
#include "server/server.h"
#include "util/log.h"

#define SERVE_ERR_MAX 1024

static const char usage[] =
	"usage: postern serve [-c FILE]\n"
	"\n"
	"Runs the mail server in the foreground, logging to stderr, until\n"
	"SIGTERM or Ctrl-C.  FILE defaults to " CLI_DEFAULT_CONFIG "; see\n"
	"postern.conf(5) and README.md.\n"
	"\n"
	"Started as root (for port 25) it needs [server] user: it binds,\n"
	"reads its key, makes its directories that user's, then runs as\n"
	"that user with no capabilities, Landlock and a seccomp filter.\n"
	"Started as anyone else it runs as that user.  See postern(8),\n"
	"PRIVILEGES.\n";

int
cli_serve(int argc, char **argv)
{
	const char *path = CLI_DEFAULT_CONFIG;
	char err[SERVE_ERR_MAX] = "";
	struct config *cfg;
	struct server *srv;
	int r = cli_config_arg(argc, argv, usage, &path);

	if (r >= 0)
		return r;
	cfg = cli_config_load(path);
	if (cfg == NULL)
		return 1;
	log_set_level((enum log_level)config_log_level(cfg));
	config_notes(cfg, stderr);
	srv = server_new(cfg, err, sizeof err);
	if (srv == NULL) {
		fprintf(stderr, "postern: %s\n", err);
		config_free(cfg);
		return 1;
	}
	r = server_run(srv);
	server_free(srv);
	config_free(cfg);
	return r;
}
