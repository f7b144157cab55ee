/*
 * cli_int.h - what the subcommands share: the -c option and loading the
 * config with its errors printed.
 */
#ifndef POSTERN_CLI_INT_H
#define POSTERN_CLI_INT_H

#include "config/config.h"

/*
 * The config read without -c.  The development build reads the embedded
 * default beside the tree; `make install` and the Debian package build
 * with -DCLI_DEFAULT_CONFIG='"/etc/postern/postern.conf"'.
 */
#ifndef CLI_DEFAULT_CONFIG
#define CLI_DEFAULT_CONFIG "etc/postern.conf"
#endif

/*
 * Reads "[-c FILE]" and "--help" from argv (argv[0] is the subcommand).
 * Returns -1 to go on with *path_out set, or an exit status: 0 after
 * printing usage for --help, 2 after a usage error.
 */
int cli_config_arg(int argc, char **argv, const char *usage,
		   const char **path_out);

/* Loads path, printing every error to stderr; NULL on failure. */
struct config *cli_config_load(const char *path);
/* The same for a tool that needs no users file nor TLS files. */
struct config *cli_config_load_tool(const char *path);

/*
 * Sends line (ending in "\n") to the control socket at path and reads the
 * whole answer, until the server closes.  Returns it malloc'd and
 * NUL-terminated (*len_out its length when not NULL), or NULL with errno
 * when the server cannot be reached or says nothing.
 */
char *cli_ctl_request(const char *path, const char *line, size_t *len_out);

#endif
