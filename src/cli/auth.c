/*
 * auth.c - `postern auth check --ip IP [--helo NAME] [--from ADDR]
 * [-c FILE] < MESSAGE`: the SPF, DKIM and DMARC checks the server makes of
 * mail received on the smtp port, run once on a message from stdin, with
 * the config's resolver ([dns] servers).  Prints the Authentication-Results
 * header the server would add and what it would answer - an
 * administrator's tool, as spfquery and opendkim-testmsg are for others.
 *
 * With every check off in the config, all three run (and stderr says
 * so): the point is to see what turning them on would do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cli/cli.h"
#include "cli/cli_int.h"
#include "policy/authcheck.h"
#include "policy/dns.h"
#include "reply/reply.h"

#define AUTHCLI_ERR_MAX 512
#define AUTHCLI_REPLY_MAX 1024
#define AUTHCLI_READ_CHUNK 65536
#define AUTHCLI_NAME_MAX 300

static const char usage[] =
	"usage: postern auth check --ip IP [--helo NAME] [--from ADDR] "
	"[-c FILE] < MESSAGE\n"
	"\n"
	"Runs the SPF, DKIM and DMARC checks ([auth] in the config, default "
	CLI_DEFAULT_CONFIG ")\n"
	"on the message read from stdin, as if a client at IP had sent it "
	"with\n"
	"EHLO NAME and MAIL FROM:<ADDR> (no --from: the null sender), and "
	"prints\n"
	"the Authentication-Results header postern would add, then the reply "
	"it\n"
	"would give.  DNS goes to [dns] servers (default /etc/resolv.conf).\n"
	"With every check off in the config, all three run.\n";

struct run {
	bool is_done;
	struct authcheck_verdict v;
	struct event_base *base;
};

static void
on_done(void *arg, const struct authcheck_verdict *v)
{
	struct run *r = arg;

	r->v = *v;
	r->is_done = true;
	event_base_loopexit(r->base, NULL);
}

/* stdin, with bare LF line ends made CRLF as the server stores them. */
static char *
read_message(size_t *len_out)
{
	size_t len = 0, cap = AUTHCLI_READ_CHUNK, n;
	char *buf = malloc(cap), *out;
	size_t o = 0;

	if (buf == NULL)
		return NULL;
	while ((n = fread(buf + len, 1, cap - len, stdin)) > 0) {
		char *nb;
		len += n;
		if (len < cap)
			continue;
		nb = realloc(buf, cap * 2);
		if (nb == NULL) {
			free(buf);
			return NULL;
		}
		buf = nb;
		cap *= 2;
	}
	out = malloc(len * 2 + 1);
	if (out == NULL) {
		free(buf);
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = buf[i];
	}
	out[o] = '\0';
	free(buf);
	*len_out = o;
	return out;
}

/* Prints text with CRLF as LF. */
static void
print_lf(const char *text)
{
	for (const char *p = text; *p; p++)
		if (!(p[0] == '\r' && p[1] == '\n'))
			putchar(*p);
}

static void
print_reply(const struct authcheck_verdict *v)
{
	char line[AUTHCLI_REPLY_MAX];

	switch (v->action) {
	case AUTHCHECK_ACCEPT:
		snprintf(line, sizeof line, "accept (the message is stored "
			 "with this header)");
		break;
	case AUTHCHECK_REJECT_DMARC:
		reply_format(line, sizeof line, REPLY_DMARC_REJECT, v->why);
		break;
	case AUTHCHECK_REJECT_SPF:
		reply_format(line, sizeof line, REPLY_SPF_REJECT, v->why);
		break;
	default:
		reply_format(line, sizeof line, REPLY_AUTHCHECK_TEMPFAIL,
			     v->why);
		break;
	}
	printf("reply: ");
	print_lf(line);
	if (line[0] != '\0' && line[strlen(line) - 1] != '\n')
		putchar('\n');
}

struct check_args {
	const char *ip, *helo, *from, *path;
};

static int
parse_args(int argc, char **argv, struct check_args *a)
{
	int i;

	for (i = 2; i < argc; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (i + 1 >= argc)
			goto bad;
		if (strcmp(o, "--ip") == 0)
			a->ip = argv[++i];
		else if (strcmp(o, "--helo") == 0)
			a->helo = argv[++i];
		else if (strcmp(o, "--from") == 0)
			a->from = argv[++i];
		else if (strcmp(o, "-c") == 0)
			a->path = argv[++i];
		else
			goto bad;
	}
	if (a->ip == NULL) {
		fprintf(stderr, "postern auth check: --ip is required (the "
			"client's address, e.g. --ip 192.0.2.1)\n%s", usage);
		return 2;
	}
	return -1;
bad:
	fprintf(stderr, "postern auth check: unexpected '%s'\n%s", argv[i],
		usage);
	return 2;
}

/* The sender without <>, and a HELO name when none was given. */
static void
envelope(const struct check_args *a, char *from, size_t fsize, char *helo,
	 size_t hsize)
{
	const char *f = a->from ? a->from : "";
	size_t n = strlen(f);
	const char *at;

	if (n >= 2 && f[0] == '<' && f[n - 1] == '>')
		snprintf(from, fsize, "%.*s", (int)(n - 2), f + 1);
	else
		snprintf(from, fsize, "%s", f);
	at = strrchr(from, '@');
	if (a->helo != NULL)
		snprintf(helo, hsize, "%s", a->helo);
	else if (at != NULL)
		snprintf(helo, hsize, "%s", at + 1);
	else
		snprintf(helo, hsize, "[%s]", a->ip);
}

static int
check(const struct check_args *a)
{
	char err[AUTHCLI_ERR_MAX], from[AUTHCLI_NAME_MAX], helo[AUTHCLI_NAME_MAX];
	struct run r = {0};
	struct config *cfg = cli_config_load_tool(a->path);
	struct dns *d = NULL;
	struct authcheck *ac = NULL;
	struct authcheck_job *j;
	char *msg = NULL;
	size_t len = 0;
	int rc = 1;

	if (cfg == NULL)
		return 1;
	if (!authcheck_is_on(cfg)) {
		fprintf(stderr, "postern auth check: [auth] spf, dkim and dmarc "
			"are off in %s; running all three\n", a->path);
		cfg->auth_spf = cfg->auth_dkim = cfg->auth_dmarc = true;
	}
	envelope(a, from, sizeof from, helo, sizeof helo);
	msg = read_message(&len);
	r.base = event_base_new();
	if (msg == NULL || r.base == NULL) {
		fprintf(stderr, "postern auth check: out of memory\n");
		goto out;
	}
	d = dns_open(cfg, r.base, err, sizeof err);
	if (d == NULL) {
		fprintf(stderr, "postern auth check: %s\n", err);
		goto out;
	}
	ac = authcheck_open(cfg, d);
	j = ac ? authcheck_start(ac, a->ip, helo, from) : NULL;
	if (j == NULL) {
		fprintf(stderr, "postern auth check: out of memory\n");
		goto out;
	}
	authcheck_finish(j, msg, len, on_done, &r);
	event_base_dispatch(r.base);
	if (!r.is_done) {
		fprintf(stderr, "postern auth check: the checks did not end\n");
		goto out;
	}
	print_lf(r.v.header);
	print_reply(&r.v);
	rc = 0;
out:
	authcheck_close(ac);
	dns_close(d);
	if (r.base)
		event_base_free(r.base);
	free(msg);
	config_free(cfg);
	return rc;
}

int
cli_auth(int argc, char **argv)
{
	struct check_args a = {.path = CLI_DEFAULT_CONFIG};
	int r;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
			  strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		fprintf(stderr, "postern auth: say which: postern auth check "
			"...\n%s", usage);
		return 2;
	}
	r = parse_args(argc, argv, &a);
	return r >= 0 ? r : check(&a);
}
