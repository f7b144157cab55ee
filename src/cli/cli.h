/*
 * cli.h - the subcommands of postern(8).  main.c picks one by argv[1] and
 * hands it argc/argv with argv[0] being the subcommand's name.  Each returns
 * the process exit status: 0 success, 1 user error (one line on stderr that
 * names the fix), 2 usage error.
 */
#ifndef POSTERN_CLI_H
#define POSTERN_CLI_H

int cli_serve(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_explain(int argc, char **argv);
int cli_ctl(int argc, char **argv);
int cli_queue(int argc, char **argv);
int cli_send(int argc, char **argv);
int cli_auth(int argc, char **argv);
int cli_dkim(int argc, char **argv);
int cli_tlsreport(int argc, char **argv);

#endif
