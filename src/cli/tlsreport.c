/*
 * tlsreport.c - `postern tls-report [--day YYYY-MM-DD] [--domain D
 * [--json]] [-c FILE]`: what the sending side counted of its TLS
 * sessions per recipient domain (RFC 8460), read from SPOOL/mta-sts.db.
 * Without --domain, a line per domain, policy and MX host: sessions that
 * succeeded and failed, and the failures' result types.  With --domain
 * and --json, the day's aggregate report for that domain in RFC 8460's
 * JSON, as the server mails it to the domain's rua once the day is over.
 * The sibling of `postern queue`: it reads a file, it changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_int.h"
#include "policy/tlspolicy.h"

#define TLSREPORT_ERR_MAX 512

static const char usage[] =
	"usage: postern tls-report [--day YYYY-MM-DD] [--domain DOMAIN "
	"[--json]] [-c FILE]\n"
	"\n"
	"The TLS outcomes of the day's (UTC; default today) sending sessions "
	"per\n"
	"recipient domain, policy (sts, tlsa, no-policy-found) and MX host, "
	"from\n"
	"[spool] dir/mta-sts.db; with --domain and --json, that domain's "
	"report\n"
	"in the JSON of RFC 8460 (SMTP TLS Reporting).\n";

int
cli_tlsreport(int argc, char **argv)
{
	const char *conf = CLI_DEFAULT_CONFIG, *day = NULL, *domain = NULL;
	bool is_json = false;
	char today[16], path[4096], err[TLSREPORT_ERR_MAX] = "";
	struct config *cfg;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		bool has_arg = i + 1 < argc;
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "-c") == 0 && has_arg) {
			conf = argv[++i];
		} else if (strcmp(argv[i], "--day") == 0 && has_arg) {
			day = argv[++i];
		} else if (strcmp(argv[i], "--domain") == 0 && has_arg) {
			domain = argv[++i];
		} else if (strcmp(argv[i], "--json") == 0) {
			is_json = true;
		} else {
			fprintf(stderr, "postern tls-report: unknown argument "
				"'%s'\n%s", argv[i], usage);
			return 2;
		}
	}
	if (is_json && domain == NULL) {
		fprintf(stderr, "postern tls-report: --json needs --domain "
			"DOMAIN (a report is per domain)\n");
		return 2;
	}
	if (day == NULL) {
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(today, sizeof today, "%Y-%m-%d", &tm);
		day = today;
	}
	if ((cfg = cli_config_load_tool(conf)) == NULL)
		return 1;
	snprintf(path, sizeof path, "%s/mta-sts.db", cfg->spool_dir);
	if (is_json) {
		char *json = tlspol_report_json(path, day, domain,
						cfg->server_hostname, err,
						sizeof err);
		if (json == NULL) {
			fprintf(stderr, "postern tls-report: %s\n", err);
			rc = 1;
		} else {
			printf("%s\n", json);
			free(json);
		}
	} else if (tlspol_report_counts(path, day, stdout, err, sizeof err) !=
		   0) {
		fprintf(stderr, "postern tls-report: %s (has the server sent "
			"anything yet?)\n", err);
		rc = 1;
	}
	config_free(cfg);
	return rc;
}
