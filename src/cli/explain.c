/*
 * cli/explain.c - `postern explain`: what an SMTP reply code means, or how
 * two compare, in five languages, as text, JSON or HTML; or the whole
 * reference as a static site.
 *
 *   postern explain CODE [CODE2] [--lang en|id|tr|fr|ko]
 *                   [--format text|json|html]
 *   postern explain --site DIR
 *   postern explain --list
 *
 * CODE is "421", "4.7.1", a whole reply line, a multi-line reply pasted
 * from a log, or "-" to read one from standard input.  Exit status
 * (CONTRACT.md): 0 done, 1 an unknown code or unwritable DIR (one line on
 * stderr naming the fix), 2 a usage error.  The knowledge and the
 * renderers are src/explain/; this file only reads argv and picks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/cli.h"
#include "explain/explain.h"

#define ERR_MAX 256
/* Text is wrapped at the terminal's width, but no wider than this. */
#define WRAP_MAX 100
#define WRAP_DEFAULT 80
/* A reply read from stdin with "-": a generous multi-line reply. */
#define STDIN_MAX 16384

enum format { FORMAT_TEXT, FORMAT_JSON, FORMAT_HTML };

struct opts {
	const struct explain_lang *lang;
	enum format format;
	const char *site;
	bool is_list;
	size_t n_codes;
	const char *codes[EXPLAIN_INPUTS_MAX];
};

static void
usage(FILE *fp)
{
	fputs("usage: postern explain CODE [CODE2] [--lang en|id|tr|fr|ko] "
	    "[--format text|json|html]\n"
	    "       postern explain --site DIR\n"
	    "       postern explain --list\n"
	    "\n"
	    "Explain an SMTP reply code, or compare two, the way a reference "
	    "page does:\nclass, description, when you see it, how to fix it; "
	    "for two codes also the\nkey differences and when to use which.\n"
	    "\n"
	    "CODE may be a basic code (421), an enhanced status code (5.7.26), "
	    "a whole\nreply line (\"550 5.7.1 Relaying denied\"), a "
	    "multi-line reply or log line\npasted in quotes, or - to read "
	    "one from standard input.\n"
	    "\n"
	    "  --lang L     headings in en, id, tr, fr or ko (default: from "
	    "LC_ALL,\n               LC_MESSAGES or LANG, else en)\n"
	    "  --format F   text (default), json (schema postern-explain/1) "
	    "or html\n"
	    "  --site DIR   write the whole reference, every language, as a "
	    "static site\n"
	    "  --list       list every code postern knows\n"
	    "  --help       this text\n"
	    "\n"
	    "Colour only on a terminal, and never when NO_COLOR is set.\n"
	    "Exit status: 0 done, 1 unknown code, 2 usage error.\n", fp);
}

static int
usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "postern explain: %s%s%s; see `postern explain "
	    "--help`\n", what, arg != NULL ? " " : "", arg != NULL ? arg : "");
	return 2;
}

/* "--name VALUE" or "--name=VALUE": the value, or NULL if not this one. */
static const char *
opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (argv[*i] == NULL || strncmp(argv[*i], name, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc || argv[*i + 1] == NULL)
		return "";
	return argv[++*i];
}

static int
parse_format(const char *v, enum format *out)
{
	static const char *const names[] = { "text", "json", "html" };

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(v, names[i]) == 0) {
			*out = (enum format)i;
			return 0;
		}
	return -1;
}

/* 0 to go on, or the exit status (help: 0, usage error: 2) plus one. */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	for (int i = 1; i < argc && argv[i] != NULL; i++) {
		const char *v;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 1;
		} else if (strcmp(argv[i], "--list") == 0) {
			o->is_list = true;
		} else if ((v = opt_value(argc, argv, &i, "--lang")) != NULL) {
			if ((o->lang = explain_lang_find(v)) == NULL)
				return 1 + usage_error("--lang takes en, id, tr, "
				    "fr or ko, not", v[0] ? v : "nothing");
		} else if ((v = opt_value(argc, argv, &i, "--format")) != NULL) {
			if (parse_format(v, &o->format) != 0)
				return 1 + usage_error("--format takes text, "
				    "json or html, not", v[0] ? v : "nothing");
		} else if ((v = opt_value(argc, argv, &i, "--site")) != NULL) {
			if (v[0] == '\0')
				return 1 + usage_error("--site needs a "
				    "directory", NULL);
			o->site = v;
		} else if (argv[i] == NULL) {
			break;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return 1 + usage_error("unknown option", argv[i]);
		} else if (o->n_codes == EXPLAIN_INPUTS_MAX) {
			return 1 + usage_error("give one code to explain or "
			    "two to compare, not more; extra:", argv[i]);
		} else {
			o->codes[o->n_codes++] = argv[i];
		}
	}
	if ((o->site != NULL || o->is_list) && o->n_codes > 0)
		return 1 + usage_error("--site and --list take no codes", NULL);
	if (o->site == NULL && !o->is_list && o->n_codes == 0)
		return 1 + usage_error("give a code, e.g. `postern explain "
		    "421`", NULL);
	return 0;
}

static void
list_codes(void)
{
	for (size_t i = 0; i < explain_count(); i++) {
		const struct explain_code *c = explain_at(i);

		if (c->kind == EXPLAIN_BASIC)
			printf("%-7s %s\n", c->code, c->name);
		else
			printf("%-7s %s (classes %s)\n", c->code, c->name,
			    c->classes);
	}
}

/* "-": one reply from standard input, into a static buffer. */
static const char *
read_stdin(void)
{
	static char buf[STDIN_MAX];
	size_t n = fread(buf, 1, sizeof buf - 1, stdin);

	buf[n] = '\0';
	return buf;
}

static unsigned
term_width(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0)
		return WRAP_DEFAULT;
	return ws.ws_col < WRAP_MAX ? ws.ws_col : WRAP_MAX;
}

static int
render(const struct opts *o)
{
	char err[ERR_MAX];
	struct explain_doc *doc;
	bool is_tty = isatty(STDOUT_FILENO);
	int rc;

	doc = explain_doc_new(o->codes, o->n_codes, o->lang, err, sizeof err);
	if (doc == NULL) {
		fprintf(stderr, "postern explain: %s\n", err);
		return 1;
	}
	if (o->format == FORMAT_JSON)
		rc = explain_render_json(stdout, doc);
	else if (o->format == FORMAT_HTML)
		rc = explain_render_html(stdout, doc);
	else
		rc = explain_render_text(stdout, doc,
		    is_tty && getenv("NO_COLOR") == NULL,
		    is_tty ? term_width() : 0);
	explain_doc_free(doc);
	if (rc != 0) {
		fprintf(stderr, "postern explain: cannot write the output\n");
		return 1;
	}
	return 0;
}

int
cli_explain(int argc, char **argv)
{
	struct opts o = { .format = FORMAT_TEXT };
	char err[ERR_MAX];
	int rc;

	if ((rc = parse_args(argc, argv, &o)) != 0)
		return rc - 1;
	if (o.lang == NULL)
		o.lang = explain_lang_from_env();
	if (o.is_list) {
		list_codes();
		return 0;
	}
	if (o.site != NULL) {
		if ((rc = explain_site_write(o.site, err, sizeof err)) < 0) {
			fprintf(stderr, "postern explain: %s\n", err);
			return 1;
		}
		fprintf(stderr, "postern explain: wrote %d pages to %s; open "
		    "%s/index.html\n", rc, o.site, o.site);
		return 0;
	}
	for (size_t i = 0; i < o.n_codes; i++)
		if (strcmp(o.codes[i], "-") == 0)
			o.codes[i] = read_stdin();
	return render(&o);
}
