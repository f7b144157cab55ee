/*
 * queue.c - `postern queue list | show ID | flush | delete ID | hold ID |
 * release ID | stats [-c FILE]`: the running server's queue of outgoing mail,
 * through its control socket (server/ctl.c, outbound/qctl.c).  Prints
 * the server's answer without its leading "ok" line; exit 0, 1 when the
 * server says error or cannot be reached, 2 on a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_int.h"

#define QUEUE_LINE_MAX 128
#define QUEUE_ID_MAX 32

static const char usage[] =
	"usage: postern queue list [-c FILE]\n"
	"       postern queue show ID [-c FILE]\n"
	"       postern queue flush [-c FILE]\n"
	"       postern queue delete|hold|release ID [-c FILE]\n"
	"       postern queue stats [-c FILE]\n"
	"\n"
	"The running server's outgoing queue (mail for other domains, and\n"
	"for LMTP), read through its control socket ([control] socket):\n"
	"  list          every queued message: QID, size, arrival, sender, and\n"
	"                per recipient its state (queued, deferred, held,\n"
	"                active), attempts, next try and the last reply\n"
	"  show ID       one message: envelope, last replies in plain words,\n"
	"                its header\n"
	"  flush         try every deferred recipient now\n"
	"  delete ID     drop a message without a bounce\n"
	"  hold ID       stop trying a message (and its expiry) until\n"
	"  release ID    lets it go again\n"
	"  stats         the spool's octets: needed by queued mail (local\n"
	"                and outgoing), on disk, copied by compaction\n"
	"ID is the queue id from `list`, the 250 reply or the log.\n";

static bool
needs_id(const char *verb)
{
	return strcmp(verb, "show") == 0 || strcmp(verb, "delete") == 0 ||
	       strcmp(verb, "hold") == 0 || strcmp(verb, "release") == 0;
}

int
cli_queue(int argc, char **argv)
{
	const char *path = CLI_DEFAULT_CONFIG, *verb = NULL, *id = NULL;
	char line[QUEUE_LINE_MAX], *reply, *body;
	struct config *cfg;
	int status;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (verb == NULL)
			verb = argv[i];
		else if (id == NULL)
			id = argv[i];
		else {
			fprintf(stderr, "postern queue: unexpected '%s'\n%s",
				argv[i], usage);
			return 2;
		}
	}
	if (verb == NULL ||
	    (strcmp(verb, "list") != 0 && strcmp(verb, "flush") != 0 &&
	     strcmp(verb, "stats") != 0 && !needs_id(verb))) {
		fprintf(stderr, "postern queue: say list, show, flush, delete, "
			"hold, release or stats\n%s", usage);
		return 2;
	}
	if (needs_id(verb) != (id != NULL) ||
	    (id != NULL && strlen(id) > QUEUE_ID_MAX)) {
		fprintf(stderr, "postern queue %s: %s\n%s", verb,
			id ? "takes no ID (or a shorter one)" : "needs an ID",
			usage);
		return 2;
	}
	snprintf(line, sizeof line, "queue %s%s%s\n", verb, id ? " " : "",
		 id ? id : "");
	if ((cfg = cli_config_load(path)) == NULL)
		return 1;
	reply = cli_ctl_request(cfg->control_socket, line, NULL);
	if (reply == NULL) {
		fprintf(stderr, "postern queue: cannot reach the server at %s: "
			"%s; is `postern serve -c %s` running? (the queue is "
			"kept in %s and sent when it starts)\n",
			cfg->control_socket, strerror(errno), path,
			cfg->spool_dir);
		config_free(cfg);
		return 1;
	}
	config_free(cfg);
	if (strncmp(reply, "error", 5) == 0) {
		fprintf(stderr, "postern queue: %s", reply + 7);
		status = 1;
	} else {
		/* "ok\n" + body, or one "ok ..." line. */
		body = reply;
		if (strncmp(reply, "ok\n", 3) == 0)
			body = reply + 3;
		fputs(body, stdout);
		status = 0;
	}
	free(reply);
	return status;
}
