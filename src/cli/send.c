/*
 * send.c - `postern send [-f FROM] [-t] [-i] [-F NAME] [-c FILE] RCPT...`
 * and the same program called as `sendmail`: a local program's message,
 * read on stdin, left in SPOOL/maildrop for the server to queue.
 *
 * Called by main.c (argv[1] "send", or argv[0] named sendmail).  Promises:
 * exit 0 only once the maildrop file is on disk (spool/maildrop.c fsyncs
 * it and its directory), so the message survives a crash or a server that
 * is not running; every recipient was checked first - its syntax (RFC 5321
 * 4.1.2) and, in a local domain, that the user exists (policy/rcpt.c, as
 * the server's RCPT would) - so the server does not refuse what this
 * command accepted.  The text gets CRLF line ends, loses its Bcc: fields,
 * and gains Received: (RFC 5321 4.4) plus From:, Date: and Message-ID:
 * when missing (RFC 5322 3.6, 3.6.4; RFC 6409 8 lets a submission agent
 * add them).  Queuing and delivery are the server's (route/pickup.c);
 * docs/design/outbound.md, "postern send / sendmail".
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_int.h"
#include "policy/users.h"
#include "proto/addr.h"
#include "route/route.h"
#include "spool/maildrop.h"
#include "spool/msg.h"

#define SEND_ERR_MAX 1024
#define SEND_READ_CHUNK 65536
#define SEND_ADDR_MAX 1024 /* an address-list element, before checking */
#define SEND_HDR_MAX 2048  /* the headers this command adds */
#define SEND_DATE_MAX 64

static const char usage[] =
	"usage: postern send [-f FROM] [-t] [-i] [-F NAME] [-c FILE] RCPT...\n"
	"       sendmail [the same options] RCPT...\n"
	"\n"
	"Reads a message on stdin and queues it for the recipients, as mail\n"
	"from the submission port: it may go to any domain.  The message is\n"
	"kept in the spool's maildrop directory; the running server picks it\n"
	"up at once (or within a few seconds), and a server that is not\n"
	"running picks it up when `postern serve` starts.  Exit 0 means the\n"
	"message is safely on disk.\n"
	"\n"
	"  -f FROM   envelope sender (Return-Path); default: your user name at\n"
	"            the first [local] domain.  -f '<>' sends with none.\n"
	"  -F NAME   your full name, for the From: header added when the\n"
	"            message has none\n"
	"  -t        also send to the To:, Cc: and Bcc: addresses of the message\n"
	"  -i, -oi   a line holding only \".\" does not end the message;\n"
	"            without it, such a line ends the input (sendmail's way)\n"
	"  -c FILE   the config (also -C); default " CLI_DEFAULT_CONFIG "\n"
	"  -v        say what was done\n"
	"\n"
	"A RCPT without \"@\" is at the first [local] domain.  Recipients in a\n"
	"local domain must exist (users and forwards files), else the command\n"
	"exits 1 and nothing is queued.  Line ends may be LF or CRLF; a NUL\n"
	"octet or a message over [server] max_message_size is refused.  Bcc:\n"
	"fields are removed; Received:, and From:, Date: and Message-ID: when\n"
	"missing, are added.  Accepted and ignored for programs that pass\n"
	"them: -o... (other than -oi), -e..., -bm, -U, -B/-N/-R/-V/-L VALUE.\n"
	"When no server is running the message waits in the spool; on a\n"
	"terminal a line on stderr says so.\n"
	"Exit status: 0 queued, 1 refused (one line says why and the fix),\n"
	"2 usage error.\n";

struct send_opts {
	const char *prog;      /* for messages: "postern send" or "sendmail" */
	const char *config;
	const char *from;      /* -f, NULL: the invoking user */
	const char *full_name; /* -F, NULL: none */
	bool is_t, is_i, is_verbose;
	char **args; /* recipients as given */
	size_t n_args;
};

/* The message being built. */
struct send_job {
	const struct send_opts *o;
	struct config *cfg;
	struct users *users;
	char *sender;
	char **rcpts; /* "local@domain", checked, no duplicates */
	size_t n_rcpts, cap_rcpts;
	struct maildrop_text *text;
};

static int
usage_error(const struct send_opts *o, const char *what, const char *arg)
{
	fprintf(stderr, "%s: %s%s\n%s", o->prog, what, arg ? arg : "", usage);
	return 2;
}

/* A value option's argument: the rest of the word or the next word. */
static const char *
opt_value(int argc, char **argv, int *i, const char *rest)
{
	if (rest[0] != '\0')
		return rest;
	if (*i + 1 < argc)
		return argv[++*i];
	return NULL;
}

/* -b MODE: only -bm (the default, "deliver mail") makes sense here. */
static int
mode_check(const struct send_opts *o, const char *mode)
{
	if (strcmp(mode, "m") == 0)
		return -1;
	if (strcmp(mode, "p") == 0)
		return usage_error(o, "-bp: use `postern queue list`", NULL);
	if (strcmp(mode, "s") == 0)
		return usage_error(o, "-bs: SMTP on stdin is not supported; "
				   "use the submission port", NULL);
	return usage_error(o, "unsupported mode -b", mode);
}

/* One option word (argv[*i] starts with "-"); -1 to go on, else exit. */
static int
opt_word(struct send_opts *o, int argc, char **argv, int *i)
{
	const char *w = argv[*i];

	for (size_t k = 1; w[k] != '\0'; k++) {
		const char *rest = w + k + 1, *v;
		switch (w[k]) {
		case 't': o->is_t = true; continue;
		case 'i': o->is_i = true; continue;
		case 'v': o->is_verbose = true; continue;
		case 'U': continue; /* initial submission: it is */
		case 'o':
			if (strcmp(rest, "i") == 0)
				o->is_i = true;
			else if (o->is_verbose)
				fprintf(stderr, "%s: ignoring -o%s\n",
					o->prog, rest);
			return -1;
		case 'e':
			return -1; /* error mode: errors are exit statuses */
		case 'b':
			return mode_check(o, rest);
		default:
			break;
		}
		if (strchr("frFcCBNRVL", w[k]) == NULL)
			return usage_error(o, "unknown option -", w + k);
		v = opt_value(argc, argv, i, rest);
		if (v == NULL)
			return usage_error(o, "a value is missing after -", w + k);
		if (w[k] == 'f' || w[k] == 'r')
			o->from = v;
		else if (w[k] == 'F')
			o->full_name = v;
		else if (w[k] == 'c' || w[k] == 'C')
			o->config = v;
		return -1;
	}
	return -1;
}

/* Reads argv; -1 to go on, else the exit status. */
static int
opts_parse(struct send_opts *o, int argc, char **argv)
{
	bool is_rest = false;

	o->n_args = 0;
	for (int i = 1; i < argc; i++) {
		int r;
		if (!is_rest && strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (!is_rest && strcmp(argv[i], "--") == 0) {
			is_rest = true;
			continue;
		}
		if (is_rest || argv[i][0] != '-' || argv[i][1] == '\0') {
			o->args[o->n_args++] = argv[i];
			continue;
		}
		r = opt_word(o, argc, argv, &i);
		if (r >= 0)
			return r;
	}
	return -1;
}

/* Address-list scanning state (RFC 5322 3.4, loosely: enough for -t). */
struct alist {
	char cur[SEND_ADDR_MAX], angle[SEND_ADDR_MAX];
	size_t n_cur, n_angle;
	bool has_angle, is_angle;
};

static void
alist_put(struct alist *a, char c)
{
	if (a->is_angle && a->n_angle + 1 < sizeof a->angle)
		a->angle[a->n_angle++] = c;
	else if (!a->is_angle && a->n_cur + 1 < sizeof a->cur)
		a->cur[a->n_cur++] = c;
}

typedef int (*addr_fn)(struct send_job *j, const char *addr);

/* Hands the element read so far to fn; resets. */
static int
alist_emit(struct send_job *j, struct alist *a, addr_fn fn)
{
	const char *s = a->has_angle ? a->angle : a->cur;
	size_t n = a->has_angle ? a->n_angle : a->n_cur;
	char buf[SEND_ADDR_MAX];
	int r = 0;

	memcpy(buf, s, n);
	buf[n] = '\0';
	if (n > 0)
		r = fn(j, buf);
	a->n_cur = a->n_angle = 0;
	a->has_angle = a->is_angle = false;
	return r;
}

/*
 * Calls fn with each address of the list s: "a@b", "Name <a@b>",
 * "a@b (comment)", "group: a@b, c@d;", quoted names with commas.
 */
static int
alist_each(struct send_job *j, const char *s, addr_fn fn)
{
	struct alist a = {0};
	bool is_quote = false;
	int depth = 0;

	for (; *s; s++) {
		char c = *s;
		if (depth > 0) { /* a comment */
			if (c == '\\' && s[1] != '\0')
				s++;
			else
				depth += c == '(' ? 1 : c == ')' ? -1 : 0;
			continue;
		}
		if (is_quote) {
			if (c == '\\' && s[1] != '\0') {
				alist_put(&a, c);
				c = *++s;
			} else if (c == '"') {
				is_quote = false;
			}
			alist_put(&a, c);
			continue;
		}
		if (c == '(') {
			depth = 1;
		} else if (c == '"') {
			is_quote = true;
			alist_put(&a, c);
		} else if (c == '<') {
			a.has_angle = a.is_angle = true;
			a.n_angle = 0;
		} else if (c == '>') {
			a.is_angle = false;
		} else if ((c == ',' && !a.is_angle) || c == ';') {
			if (alist_emit(j, &a, fn) != 0)
				return -1;
		} else if (c == ':' && !a.is_angle) {
			a.n_cur = 0; /* a group's name */
		} else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			alist_put(&a, c);
		}
	}
	return alist_emit(j, &a, fn);
}

/* Why policy refused addr, as one line naming the fix. */
static void
refusal(const struct send_job *j, const char *addr,
	const struct rcpt_verdict *v)
{
	const char *p = j->o->prog;

	switch (v->reply) {
	case REPLY_USER_UNKNOWN:
		fprintf(stderr, "%s: no such user %s: add them to %s or fix "
			"the address\n", p, addr, j->cfg->local_users);
		break;
	case REPLY_USER_MOVED:
		fprintf(stderr, "%s: %s has moved to %s: send to that address "
			"instead\n", p, addr, v->mailbox);
		break;
	case REPLY_USER_HELD:
		fprintf(stderr, "%s: mail for %s is on hold: try again once "
			"the hold is lifted\n", p, addr);
		break;
	case REPLY_ROUTING_DENIED:
		fprintf(stderr, "%s: %s: routing with %% or ! is not accepted; "
			"fix the address\n", p, addr);
		break;
	default:
		fprintf(stderr, "%s: %s is refused by the recipient policy; "
			"fix the address\n", p, addr);
		break;
	}
}

/*
 * Parses raw ("a@b", "<a@b>", "<>" when is_sender, or "user" at the first
 * local domain) into *out.  false after printing what is wrong.
 */
static bool
addr_read(const struct send_job *j, const char *raw, bool is_sender,
	  struct addr *out)
{
	char path[SEND_ADDR_MAX + SMTP_DOMAIN_MAX + 4];
	size_t n = strlen(raw), used = 0;
	enum addr_result r;

	if (n >= 2 && raw[0] == '<' && raw[n - 1] == '>') {
		raw++;
		n -= 2;
	}
	if (n >= SEND_ADDR_MAX)
		n = SEND_ADDR_MAX - 1;
	if (memchr(raw, '@', n) != NULL || (is_sender && n == 0))
		snprintf(path, sizeof path, "<%.*s>", (int)n, raw);
	else
		snprintf(path, sizeof path, "<%.*s@%s>", (int)n, raw,
			 j->cfg->domains[0]);
	r = addr_parse_path(path, strlen(path),
			    is_sender ? ADDR_ALLOW_NULL : 0, out, &used);
	if (r == ADDR_OK && used == strlen(path))
		return true;
	fprintf(stderr, "%s: %s%s is not a valid address; write it as "
		"local@domain\n", j->o->prog, is_sender ? "-f " : "", path);
	return false;
}

/* Checks one recipient and adds it (once); -1 after saying why not. */
static int
rcpt_add(struct send_job *j, const char *raw)
{
	struct rcpt_verdict v;
	struct addr a;

	if (!addr_read(j, raw, false, &a))
		return -1;
	route_rcpt(&(const struct route_req){.cfg = j->cfg,
					    .users = j->users,
					    .is_trusted = true},
		   &a, &v);
	if (v.route == RCPT_ROUTE_NONE) {
		refusal(j, a.mailbox, &v);
		return -1;
	}
	for (size_t i = 0; i < j->n_rcpts; i++)
		if (strcasecmp(j->rcpts[i], a.mailbox) == 0)
			return 0;
	if (j->n_rcpts == j->cfg->server_max_recipients) {
		fprintf(stderr, "%s: more than %zu recipients ([server] "
			"max_recipients): split the message or raise the "
			"limit\n", j->o->prog, j->n_rcpts);
		return -1;
	}
	if (j->n_rcpts == j->cap_rcpts) {
		size_t cap = j->cap_rcpts ? j->cap_rcpts * 2 : 8;
		char **v2 = realloc(j->rcpts, cap * sizeof *v2);
		if (v2 == NULL)
			return -1;
		j->rcpts = v2;
		j->cap_rcpts = cap;
	}
	j->rcpts[j->n_rcpts] = strdup(a.mailbox);
	return j->rcpts[j->n_rcpts++] == NULL ? -1 : 0;
}

/* The envelope sender: -f, or the invoking user at the first domain. */
static int
sender_set(struct send_job *j)
{
	const struct passwd *pw = getpwuid(getuid());
	const char *raw = j->o->from;
	struct addr a;

	if (raw == NULL && pw == NULL) {
		fprintf(stderr, "%s: uid %u has no user name; give the sender "
			"with -f\n", j->o->prog, (unsigned)getuid());
		return -1;
	}
	if (!addr_read(j, raw ? raw : pw->pw_name, true, &a))
		return -1;
	j->sender = strdup(a.mailbox);
	return j->sender ? 0 : -1;
}

/* Reads stdin into j->text; -1 after saying why not. */
static int
text_read(struct send_job *j)
{
	struct maildrop_text *t = j->text;
	char buf[SEND_READ_CHUNK];

	while (!t->is_done && !t->has_nul && !t->is_too_big) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "%s: cannot read the message on stdin: "
				"%s\n", j->o->prog, strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		if (maildrop_text_add(t, buf, (size_t)n) != 0)
			goto oom;
	}
	if (maildrop_text_end(t) != 0)
		goto oom;
	if (t->has_nul) {
		fprintf(stderr, "%s: the message holds a NUL octet; remove it "
			"(binary data must be MIME-encoded)\n", j->o->prog);
		return -1;
	}
	return 0;
oom:
	fprintf(stderr, "%s: out of memory reading the message\n",
		j->o->prog);
	return -1;
}

/* The header section: where it ends, and whether an empty line does. */
struct hdrs {
	size_t len;	    /* octets of header lines */
	bool has_empty; /* an empty line follows them */
};

static bool
is_field_start(const char *p, size_t n)
{
	size_t k = 0;

	while (k < n && p[k] > ' ' && p[k] < 0x7f && p[k] != ':')
		k++;
	while (k > 0 && k < n && (p[k] == ' ' || p[k] == '\t'))
		k++; /* RFC 5322 4.5.3: obsolete space before the colon */
	return k > 0 && k < n && p[k] == ':';
}

static struct hdrs
hdrs_find(const char *d, size_t len)
{
	struct hdrs h = {0};
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(d + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - d - pos) + 1 : len - pos;
		if (n == 2) { /* CRLF alone */
			h.has_empty = true;
			break;
		}
		if (!is_field_start(d + pos, n) &&
		    !(pos > 0 && (d[pos] == ' ' || d[pos] == '\t')))
			break;
		pos += n;
	}
	h.len = pos;
	return h;
}

/* The length of the field at d[pos..], continuation lines included. */
static size_t
field_len(const char *d, size_t end, size_t pos)
{
	size_t p = pos;

	do {
		const char *nl = memchr(d + p, '\n', end - p);
		p = nl ? (size_t)(nl - d) + 1 : end;
	} while (p < end && (d[p] == ' ' || d[p] == '\t'));
	return p - pos;
}

/* True when the field at f is named name (any case). */
static bool
field_is(const char *f, size_t n, const char *name)
{
	size_t k = strlen(name);

	if (n <= k || strncasecmp(f, name, k) != 0)
		return false;
	while (k < n && (f[k] == ' ' || f[k] == '\t'))
		k++;
	return k < n && f[k] == ':';
}

static bool
hdrs_has(const char *d, struct hdrs h, const char *name)
{
	for (size_t pos = 0; pos < h.len;) {
		size_t n = field_len(d, h.len, pos);
		if (field_is(d + pos, n, name))
			return true;
		pos += n;
	}
	return false;
}

/* -t: the addresses of To:, Cc: and Bcc:, unfolded. */
static int
rcpts_from_hdrs(struct send_job *j, const char *d, struct hdrs h)
{
	static const char *const names[] = {"to", "cc", "bcc"};

	for (size_t pos = 0; pos < h.len;) {
		size_t n = field_len(d, h.len, pos);
		for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
			const char *colon;
			char *v;
			int r;
			if (!field_is(d + pos, n, names[k]))
				continue;
			colon = memchr(d + pos, ':', n);
			v = strndup(colon + 1, n - (size_t)(colon + 1 - (d + pos)));
			if (v == NULL)
				return -1;
			r = alist_each(j, v, rcpt_add);
			free(v);
			if (r != 0)
				return -1;
		}
		pos += n;
	}
	return 0;
}

/* A quoted-string of name (RFC 5322 3.2.4) into out. */
static void
quote_name(const char *name, char *out, size_t size)
{
	size_t o = 0;

	if (size < 3)
		return;
	out[o++] = '"';
	for (; *name && o + 3 < size; name++) {
		if (*name == '\r' || *name == '\n')
			continue;
		if (*name == '"' || *name == '\\')
			out[o++] = '\\';
		out[o++] = *name;
	}
	out[o++] = '"';
	out[o] = '\0';
}

/* Received:, and From:, Date:, Message-ID: when missing, into buf. */
static size_t
hdrs_format(const struct send_job *j, const char *d, struct hdrs h,
	    char *buf, size_t size)
{
	const char *host = j->cfg->server_hostname;
	char date[SEND_DATE_MAX], name[SEND_ADDR_MAX] = "";
	time_t now = time(NULL);
	uint64_t r = 0;
	struct tm tm;
	size_t n;

	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	n = (size_t)snprintf(buf, size, "Received: by %s (postern send, uid "
			     "%u);\r\n\t%s\r\n", host, (unsigned)getuid(),
			     date);
	if (!hdrs_has(d, h, "from") && n < size) {
		const struct passwd *pw = getpwuid(getuid());
		char self[SEND_ADDR_MAX];
		if (j->o->full_name != NULL)
			quote_name(j->o->full_name, name, sizeof name);
		snprintf(self, sizeof self, "%s@%s", pw ? pw->pw_name : "root",
			 j->cfg->domains[0]);
		n += (size_t)snprintf(buf + n, size - n, "From: %s%s%s%s\r\n",
				      name, name[0] ? " <" : "",
				      j->sender[0] ? j->sender : self,
				      name[0] ? ">" : "");
	}
	if (!hdrs_has(d, h, "date") && n < size)
		n += (size_t)snprintf(buf + n, size - n, "Date: %s\r\n", date);
	if (!hdrs_has(d, h, "message-id") && n < size) {
		if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
			r = (uint64_t)clock();
		n += (size_t)snprintf(buf + n, size - n,
				      "Message-ID: <%lld.%ld.%016llx@%s>\r\n",
				      (long long)now, (long)getpid(),
				      (unsigned long long)r, host);
	}
	return n < size ? n : size - 1;
}

/* The final text: our headers, theirs without Bcc:, the body. */
static char *
text_compose(const struct send_job *j, size_t *len_out)
{
	const char *d = j->text->data ? j->text->data : "";
	size_t len = j->text->len, o;
	struct hdrs h = hdrs_find(d, len);
	char head[SEND_HDR_MAX];
	size_t hl = hdrs_format(j, d, h, head, sizeof head);
	char *out = malloc(hl + len + 3);

	if (out == NULL)
		return NULL;
	memcpy(out, head, hl);
	o = hl;
	for (size_t pos = 0; pos < h.len;) {
		size_t n = field_len(d, h.len, pos);
		if (!field_is(d + pos, n, "bcc")) {
			memcpy(out + o, d + pos, n);
			o += n;
		}
		pos += n;
	}
	if (!h.has_empty && h.len < len) {
		out[o++] = '\r'; /* a body with no empty line before it */
		out[o++] = '\n';
	}
	memcpy(out + o, d + h.len, len - h.len);
	o += len - h.len;
	*len_out = o;
	return out;
}

/* Writes the maildrop file; -1 after saying why not. */
static int
job_write(struct send_job *j, char *data, size_t len, char *name,
	  size_t name_size)
{
	char dir[SEND_ERR_MAX];
	struct msg *m = msg_new();
	int r = -1;

	if (m == NULL || !maildrop_dir_format(j->cfg->spool_dir, dir,
					      sizeof dir))
		goto out;
	free(m->sender);
	m->sender = j->sender;
	j->sender = NULL;
	for (size_t i = 0; i < j->n_rcpts; i++)
		if (msg_add_rcpt(m, j->rcpts[i], j->rcpts[i],
				 MSG_ROUTE_REMOTE) != 0)
			goto out;
	m->data = data; /* lent: taken back below */
	m->data_len = len;
	r = maildrop_dir_make(dir) == 0 &&
		    maildrop_write(dir, m, name, name_size) == 0
	    ? 0 : -1;
	m->data = NULL;
	if (r != 0)
		fprintf(stderr, "%s: cannot write the message into %s: %s; "
			"check that it is writable by uid %u\n", j->o->prog,
			dir, strerror(errno), (unsigned)getuid());
out:
	if (m == NULL || r != 0)
		fprintf(stderr, "%s: the message was not queued\n",
			j->o->prog);
	msg_free(m);
	return r;
}

/* Tells the running server to look at the maildrop now. */
static void
server_poke(const struct send_job *j, const char *name)
{
	char *reply = cli_ctl_request(j->cfg->control_socket, "pickup\n",
				      NULL);

	if (reply == NULL && isatty(STDERR_FILENO))
		fprintf(stderr, "%s: queued; the server is not running, it "
			"will be sent when `postern serve` starts\n",
			j->o->prog);
	if (j->o->is_verbose)
		fprintf(stderr, "%s: queued as maildrop/%s for %zu "
			"recipient(s)\n", j->o->prog, name, j->n_rcpts);
	free(reply);
}

static int
too_big(const struct send_job *j)
{
	fprintf(stderr, "%s: the message is over [server] max_message_size "
		"(%llu octets): send a smaller one or raise the limit\n",
		j->o->prog,
		(unsigned long long)j->cfg->server_max_message_size);
	return 1;
}

/* After the options: everything that can fail with exit 1. */
static int
job_run(struct send_job *j)
{
	char err[SEND_ERR_MAX], name[MAILDROP_NAME_MAX];
	const struct send_opts *o = j->o;
	char *data;
	size_t len = 0;
	int r;

	j->users = users_load(j->cfg->local_users, j->cfg->local_forwards,
			      err, sizeof err);
	if (j->users == NULL) {
		fprintf(stderr, "%s: %s\n", o->prog, err);
		return 1;
	}
	if (sender_set(j) != 0)
		return 1;
	for (size_t i = 0; i < o->n_args; i++)
		if (alist_each(j, o->args[i], rcpt_add) != 0)
			return 1;
	if (o->n_args == 0 && !o->is_t)
		return usage_error(o, "no recipients: name them or use -t",
				   NULL);
	j->text = maildrop_text_new(!o->is_i,
				    (size_t)j->cfg->server_max_message_size);
	if (j->text == NULL || text_read(j) != 0)
		return 1;
	if (j->text->is_too_big)
		return too_big(j);
	if (o->is_t &&
	    rcpts_from_hdrs(j, j->text->data ? j->text->data : "",
			    hdrs_find(j->text->data ? j->text->data : "",
				      j->text->len)) != 0)
		return 1;
	if (j->n_rcpts == 0)
		return usage_error(o, "no recipients: the message has no To:, "
				   "Cc: or Bcc: and none was named", NULL);
	data = text_compose(j, &len);
	if (data == NULL)
		return 1;
	if (len > j->cfg->server_max_message_size) {
		free(data);
		return too_big(j);
	}
	r = job_write(j, data, len, name, sizeof name);
	free(data);
	if (r != 0)
		return 1;
	server_poke(j, name);
	return 0;
}

int
cli_send(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	struct send_opts o = {.config = CLI_DEFAULT_CONFIG};
	struct send_job j = {.o = &o};
	int r;

	base = base ? base + 1 : argv[0];
	o.prog = strcmp(base, "sendmail") == 0 ? "sendmail" : "postern send";
	o.args = calloc((size_t)argc + 1, sizeof *o.args);
	if (o.args == NULL)
		return 1;
	r = opts_parse(&o, argc, argv);
	if (r < 0) {
		j.cfg = cli_config_load(o.config);
		r = j.cfg ? job_run(&j) : 1;
	}
	for (size_t i = 0; i < j.n_rcpts; i++)
		free(j.rcpts[i]);
	free(j.rcpts);
	free(j.sender);
	maildrop_text_free(j.text);
	users_free(j.users);
	config_free(j.cfg);
	free(o.args);
	return r;
}
