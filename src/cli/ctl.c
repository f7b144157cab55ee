/*
 * ctl.c - `postern ctl maintenance on|off|status | reload | stop |
 * tls-report send [-c FILE]`:
 * one line to the running server's control socket ([control] socket of
 * the config), its one-line answer printed.  Exit 0 when the server says
 * ok, 1 when it says error or cannot be reached, 2 on a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_int.h"
#include "util/str.h"

#define CTL_REPLY_MAX 512
#define CTL_WORDS_MAX 2

static const char usage[] =
	"usage: postern ctl maintenance on|off|status [-c FILE]\n"
	"       postern ctl reload [-c FILE]\n"
	"       postern ctl stop [-c FILE]\n"
	"       postern ctl tls-report send [-c FILE]\n"
	"\n"
	"Steers the running server through its control socket ([control]\n"
	"socket in FILE, default " CLI_DEFAULT_CONFIG "):\n"
	"  maintenance on    new connections get 421 4.3.2 instead of the banner\n"
	"  maintenance off   back to normal\n"
	"  reload            re-read users, forwards and the TLS certificate\n"
	"  stop              421 4.3.2 to every session, then exit (as SIGTERM)\n"
	"  tls-report send   send the TLS reports (RFC 8460) due, today's too\n";

/* Joins the words into the protocol line; false on a usage error. */
static bool
command_line(int n, char **words, char *buf, size_t size)
{
	if (n == 2 && strcmp(words[0], "maintenance") == 0 &&
	    (strcmp(words[1], "on") == 0 || strcmp(words[1], "off") == 0 ||
	     strcmp(words[1], "status") == 0))
		return snprintf(buf, size, "maintenance %s\n", words[1]) > 0;
	if (n == 1 && (strcmp(words[0], "reload") == 0 ||
		       strcmp(words[0], "stop") == 0))
		return snprintf(buf, size, "%s\n", words[0]) > 0;
	if (n == 2 && strcmp(words[0], "tls-report") == 0 &&
	    strcmp(words[1], "send") == 0)
		return snprintf(buf, size, "tls-report send\n") > 0;
	return false;
}

char *
cli_ctl_request(const char *path, const char *line, size_t *len_out)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t got = 0, cap = CTL_REPLY_MAX;
	char *reply;
	int fd;

	if (!str_set(sun.sun_path, sizeof sun.sun_path, path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0 ||
	    write(fd, line, strlen(line)) != (ssize_t)strlen(line) ||
	    (reply = malloc(cap)) == NULL) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		errno = e;
		return NULL;
	}
	for (;;) {
		ssize_t r;
		if (got + 1 == cap) {
			char *more = realloc(reply, cap * 2);
			if (more == NULL)
				break;
			reply = more;
			cap *= 2;
		}
		r = read(fd, reply + got, cap - got - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	reply[got] = '\0';
	if (got == 0) {
		free(reply);
		errno = ECONNRESET;
		return NULL;
	}
	if (len_out != NULL)
		*len_out = got;
	return reply;
}

int
cli_ctl(int argc, char **argv)
{
	const char *path = CLI_DEFAULT_CONFIG;
	char *words[CTL_WORDS_MAX], line[64], *reply;
	struct config *cfg;
	int n = 0, status;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (n < CTL_WORDS_MAX) {
			words[n++] = argv[i];
		} else {
			fprintf(stderr, "postern ctl: unexpected '%s'\n%s",
				argv[i], usage);
			return 2;
		}
	}
	if (!command_line(n, words, line, sizeof line)) {
		fprintf(stderr, "postern ctl: say what to do\n%s", usage);
		return 2;
	}
	if ((cfg = cli_config_load(path)) == NULL)
		return 1;
	reply = cli_ctl_request(cfg->control_socket, line, NULL);
	if (reply == NULL) {
		fprintf(stderr, "postern ctl: cannot reach the server at %s: "
			"%s; is `postern serve -c %s` running?\n",
			cfg->control_socket, strerror(errno), path);
		config_free(cfg);
		return 1;
	}
	config_free(cfg);
	reply[strcspn(reply, "\n")] = '\0';
	printf("%s\n", reply);
	status = strncmp(reply, "error", 5) == 0 ? 1 : 0;
	free(reply);
	return status;
}
