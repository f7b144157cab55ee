/*
 * check.c - `postern check [-c FILE]`: validate a config and the tables it
 * names; print every problem as FILE:LINE: what and the fix; exit 1 when
 * there is one.  Also shared by serve: cli_config_arg, cli_config_load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"
#include "policy/users.h"
#include "route/route.h"

#define CHECK_ERR_MAX 1024

static const char usage[] =
	"usage: postern check [-c FILE]\n"
	"\n"
	"Validates the config (default " CLI_DEFAULT_CONFIG ") and the\n"
	"users and forwards files and the [dkim] keys it names.  Prints each problem with its file, line\n"
	"and fix and exits 1; prints \"FILE: ok\" and exits 0 when all is "
	"well.\n";

int
cli_config_arg(int argc, char **argv, const char *text, const char **path_out)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			fputs(text, stdout);
			return 0;
		}
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			*path_out = argv[++i];
			continue;
		}
		fprintf(stderr, "postern %s: unexpected '%s'\n%s", argv[0],
			argv[i], text);
		return 2;
	}
	return -1;
}

/* Runs load, printing every error to stderr. */
static struct config *
load_printing(struct config *(*load)(const char *, char **),
	      const char *path)
{
	char *errors = NULL;
	struct config *cfg = load(path, &errors);

	if (cfg == NULL) {
		fputs(errors ? errors : "postern: out of memory\n", stderr);
		free(errors);
	}
	return cfg;
}

struct config *
cli_config_load(const char *path)
{
	return load_printing(config_load, path);
}

struct config *
cli_config_load_tool(const char *path)
{
	return load_printing(config_load_tool, path);
}

int
cli_check(int argc, char **argv)
{
	const char *path = CLI_DEFAULT_CONFIG;
	char err[CHECK_ERR_MAX];
	struct config *cfg;
	struct users *users;
	struct route_signers *signers;
	int r = cli_config_arg(argc, argv, usage, &path);

	if (r >= 0)
		return r;
	if ((cfg = cli_config_load(path)) == NULL)
		return 1;
	users = users_load(cfg->local_users, cfg->local_forwards, err,
			   sizeof err);
	if (users == NULL) {
		fprintf(stderr, "%s\n", err);
		config_free(cfg);
		return 1;
	}
	signers = route_signers_load(cfg, err, sizeof err);
	if (signers == NULL) {
		fprintf(stderr, "%s\n", err);
		users_free(users);
		config_free(cfg);
		return 1;
	}
	route_signers_free(signers);
	config_notes(cfg, stdout);
	printf("%s: ok (%zu users, %zu local domains, listening on %zu "
	       "addresses)\n", path, users_count(users), cfg->n_domains,
	       cfg->n_listen);
	users_free(users);
	config_free(cfg);
	return 0;
}
