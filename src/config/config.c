/*
 * config.c - reading and checking postern.conf.
 *
 * Who calls it: cli/serve.c and cli/check.c at start-up (and a reload
 * later).  What it promises: a returned config has every key set, every
 * number within its row's min..max, every path absolute, listen addresses
 * parsed; or NULL and a list of errors that each name the file, the line
 * and the fix.  inih does the INI syntax (inline ";" comments included);
 * a reader wrapper counts lines so errors can name them.
 */
#include <errno.h>
#include <netinet/in.h>
#include <event2/util.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <openssl/crypto.h>

#include "config/config.h"
#include "util/str.h"

enum key_type { T_STR, T_PATH, T_LIST, T_LISTEN, T_RATE, T_UINT, T_BOOL };

struct key_row {
	const char *section;
	const char *key;
	enum key_type type;
	const char *def;
	uint64_t min, max;
	bool is_active;
	const char *help;
	size_t offset;
	char name[48];
};

static struct key_row keys[CONFIG_KEY_COUNT] = {
#define K(sec, key, type, def, min, max, active, help) \
	{#sec, #key, T_##type, def, min, max, active, help, \
	 offsetof(struct config, sec##_##key), #sec "." #key},
#include "config/keys.def"
#undef K
};

/* Errors gathered while loading: text grown line by line. */
struct load {
	struct config *cfg;
	FILE *fp;
	unsigned lineno;
	char *errors;
	size_t err_len;
	size_t n_errors;
	bool is_tool; /* config_load_tool: no tables, no account needed */
};

#define CONFIG_ERRORS_MAX 50
#define CONFIG_RETRY_SECONDS_MAX 604800
#define CONFIG_RETRY_DEFAULT 60
#define CONFIG_PASSWORD_MAX 512

static void __attribute__((format(printf, 3, 4)))
load_error(struct load *ld, unsigned line, const char *fmt, ...)
{
	char msg[1024];
	int n;
	va_list ap;
	char *grown;

	if (ld->n_errors++ >= CONFIG_ERRORS_MAX)
		return;
	n = line ? snprintf(msg, sizeof msg, "%s:%u: ", ld->cfg->path, line)
		 : snprintf(msg, sizeof msg, "%s: ", ld->cfg->path);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
	va_end(ap);
	n = (int)strlen(msg);
	grown = realloc(ld->errors, ld->err_len + (size_t)n + 2);
	if (grown == NULL)
		return;
	ld->errors = grown;
	memcpy(ld->errors + ld->err_len, msg, (size_t)n);
	ld->err_len += (size_t)n;
	ld->errors[ld->err_len++] = '\n';
	ld->errors[ld->err_len] = '\0';
}

const char *
config_key_name(enum config_key key)
{
	return keys[key].name;
}

static char **
str_field(struct config *cfg, const struct key_row *k)
{
	return (char **)((char *)cfg + k->offset);
}

/* Makes a relative path absolute against the config's directory. */
static char *
resolve(const struct config *cfg, const char *p)
{
	char *out;

	if (p[0] == '\0' || p[0] == '/')
		return strdup(p);
	if (asprintf(&out, "%s/%s", cfg->dir, p) < 0)
		return NULL;
	return out;
}

static bool
parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = true, true;
		if (strcasecmp(v, no[i]) == 0)
			return *out = false, true;
	}
	return false;
}

/*
 * "N/Ss" or "N/S" with N and S whole numbers, S > 0; the parts go to
 * *max_out and *window_out.
 */
static bool
rate_parse(const char *v, unsigned *max_out, unsigned *window_out)
{
	char buf[64], *slash, *end;
	uint64_t n, secs;
	size_t len;

	if (!str_set(buf, sizeof buf, v) || (slash = strchr(buf, '/')) == NULL)
		return false;
	*slash = '\0';
	end = slash + 1;
	len = strlen(end);
	if (len > 0 && end[len - 1] == 's')
		end[len - 1] = '\0';
	if (!str_to_u64(buf, &n) || !str_to_u64(end, &secs) || secs == 0 ||
	    n > UINT32_MAX || secs > UINT32_MAX)
		return false;
	*max_out = (unsigned)n;
	*window_out = (unsigned)secs;
	return true;
}

/* Checks and stores one value; line 0 means the default. */
static void
set_value(struct load *ld, struct key_row *k, const char *v, unsigned line)
{
	struct config *cfg = ld->cfg;
	void *field = (char *)cfg + k->offset;
	uint64_t u;
	bool b;

	switch (k->type) {
	case T_UINT:
		if (!str_to_u64(v, &u) || u < k->min || u > k->max) {
			load_error(ld, line, "[%s] %s = %s: must be a whole "
				   "number from %llu to %llu (%s); fix it or "
				   "delete the line for the default %s",
				   k->section, k->key, v,
				   (unsigned long long)k->min,
				   (unsigned long long)k->max, k->help, k->def);
			return;
		}
		*(uint64_t *)field = u;
		return;
	case T_BOOL:
		if (!parse_bool(v, &b)) {
			load_error(ld, line, "[%s] %s = %s: must be true or "
				   "false (%s)", k->section, k->key, v, k->help);
			return;
		}
		*(bool *)field = b;
		return;
	case T_RATE:
		if (v[0] != '\0' &&
		    !rate_parse(v, &cfg->rate_max, &cfg->rate_window)) {
			load_error(ld, line, "[%s] %s = %s: write it as "
				   "CONNECTIONS/SECONDSs, e.g. 30/60s (%s)",
				   k->section, k->key, v, k->help);
			return;
		}
		break;
	default:
		break;
	}
	free(*str_field(cfg, k));
	*str_field(cfg, k) = k->type == T_PATH ? resolve(cfg, v) : strdup(v);
}

/* inih's reader: fgets that counts lines for the handler. */
static char *
reader(char *str, int num, void *stream)
{
	struct load *ld = stream;
	char *r = fgets(str, num, ld->fp);

	if (r != NULL)
		ld->lineno++;
	return r;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct load *ld = user;
	bool known_section = false;

	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		if (strcmp(keys[i].section, section) != 0)
			continue;
		known_section = true;
		if (strcmp(keys[i].key, name) != 0)
			continue;
		if (ld->cfg->line[i] != 0)
			load_error(ld, ld->lineno, "[%s] %s is set twice (first "
				   "on line %u); keep one", section, name,
				   ld->cfg->line[i]);
		ld->cfg->line[i] = ld->lineno;
		set_value(ld, &keys[i], value, ld->lineno);
		return 1;
	}
	if (!known_section)
		load_error(ld, ld->lineno, "unknown section [%s]; the sections "
			   "are server, spool, local, greylist, control, "
			   "delivery, tls, dns, filter, auth, dkim, srs, http (see "
			   "postern.conf(5))",
			   section);
	else
		load_error(ld, ld->lineno, "unknown key '%s' in [%s]; check "
			   "the spelling against postern.conf(5)", name,
			   section);
	return 1;
}

/* Adds the addresses of one LISTEN key to cfg->listen[]. */
static void
derive_listen_key(struct load *ld, enum config_key key,
		  enum config_listen_kind kind)
{
	struct config *cfg = ld->cfg;
	char *list = strdup(*str_field(cfg, &keys[key])), *save = NULL;
	unsigned line = cfg->line[key];

	for (char *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		struct config_listen *l;
		str_trim(tok);
		if (*tok == '\0')
			continue;
		if (cfg->n_listen == CONFIG_LISTEN_MAX) {
			load_error(ld, line, "[server] at most %d listen "
				   "addresses in all", CONFIG_LISTEN_MAX);
			break;
		}
		l = &cfg->listen[cfg->n_listen];
		l->sslen = sizeof l->ss;
		l->kind = kind;
		if (evutil_parse_sockaddr_port(tok, (struct sockaddr *)&l->ss,
					       &l->sslen) != 0 ||
		    strchr(tok, ':') == NULL) {
			load_error(ld, line, "[server] %s: '%s' is not "
				   "HOST:PORT; write e.g. 127.0.0.1:2525 or "
				   "[::1]:2525", keys[key].key, tok);
			continue;
		}
		str_set(l->text, sizeof l->text, tok);
		cfg->n_listen++;
	}
	free(list);
}

static void
derive_listen(struct load *ld)
{
	struct config *cfg = ld->cfg;

	derive_listen_key(ld, CONFIG_server_smtp, LISTEN_SMTP);
	derive_listen_key(ld, CONFIG_server_submission, LISTEN_SUBMISSION);
	derive_listen_key(ld, CONFIG_server_smtps, LISTEN_SMTPS);
	if (cfg->n_listen == 0 && ld->n_errors == 0)
		load_error(ld, cfg->line[CONFIG_server_smtp], "[server] no "
			   "listen address; set e.g. smtp = 127.0.0.1:2525");
}

/* TLS needs both files; smtps and submission need TLS. */
static void
derive_tls(struct load *ld)
{
	struct config *cfg = ld->cfg;
	bool has_cert = cfg->tls_cert[0] != '\0';
	bool has_key = cfg->tls_key[0] != '\0';

	if (has_cert != has_key) {
		load_error(ld, cfg->line[has_cert ? CONFIG_tls_cert
						  : CONFIG_tls_key],
			   "[tls] needs both cert and key; set the other one "
			   "(`make cert` makes a self-signed pair in etc/tls)");
		return;
	}
	for (int i = 0; has_cert && i < 2; i++) {
		const char *p = i ? cfg->tls_key : cfg->tls_cert;
		if (!ld->is_tool && access(p, R_OK) != 0)
			load_error(ld, cfg->line[i ? CONFIG_tls_key
						   : CONFIG_tls_cert],
				   "[tls] %s = %s: %s; run `make cert` for a "
				   "self-signed pair or give your own PEM file",
				   i ? "key" : "cert", p, strerror(errno));
	}
	cfg->has_tls = has_cert;
	if (!has_cert && cfg->server_smtps[0] != '\0')
		load_error(ld, cfg->line[CONFIG_server_smtps], "[server] smtps "
			   "needs [tls] cert and key; set them or remove "
			   "smtps");
	if (!has_cert && cfg->server_submission[0] != '\0')
		load_error(ld, cfg->line[CONFIG_server_submission], "[server] "
			   "submission needs [tls] cert and key (AUTH is only "
			   "offered under TLS); set them or remove submission");
}

static void
derive_domains(struct load *ld)
{
	struct config *cfg = ld->cfg;
	char *list = strdup(cfg->local_domains), *save = NULL;

	for (char *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		str_trim(tok);
		if (*tok == '\0')
			continue;
		if (cfg->n_domains == CONFIG_DOMAINS_MAX) {
			load_error(ld, cfg->line[CONFIG_local_domains],
				   "[local] domains: at most %d domains",
				   CONFIG_DOMAINS_MAX);
			break;
		}
		str_lower(tok);
		cfg->domains[cfg->n_domains++] = strdup(tok);
	}
	free(list);
	if (cfg->n_domains == 0)
		load_error(ld, cfg->line[CONFIG_local_domains],
			   "[local] domains is empty; name at least one "
			   "domain this server receives mail for");
}

static void
derive_maildir(struct load *ld)
{
	struct config *cfg = ld->cfg;
	const char *m = cfg->local_maildir;
	unsigned line = cfg->line[CONFIG_local_maildir];

	if (strncmp(m, "mbox:", 5) == 0) {
		cfg->is_mbox = true;
		m += 5;
	}
	if (strstr(m, "%u") == NULL)
		load_error(ld, line, "[local] maildir = %s: the path must hold "
			   "%%u (the user) so mailboxes differ, e.g. "
			   "var/mail/%%d/%%u", m);
	for (const char *p = strchr(m, '%'); p; p = strchr(p + 2, '%'))
		if (p[1] != 'u' && p[1] != 'd') {
			load_error(ld, line, "[local] maildir: only %%d and "
				   "%%u may follow %%");
			break;
		}
	cfg->maildir_path = resolve(cfg, m);
}

/* An empty [control] socket lives in the spool directory. */
static void
derive_control(struct load *ld)
{
	struct config *cfg = ld->cfg;
	char *path;

	if (cfg->control_socket[0] != '\0')
		return;
	if (asprintf(&path, "%s/postern.sock", cfg->spool_dir) < 0)
		return;
	free(cfg->control_socket);
	cfg->control_socket = path;
}

/*
 * [http] listen: an address and port; anywhere but loopback the pages
 * are served over TLS only (the login must not cross in clear).
 */
static void
derive_http(struct load *ld)
{
	struct config *cfg = ld->cfg;
	struct sockaddr_storage ss;
	int len = (int)sizeof ss;

	if (cfg->http_listen[0] == '\0')
		return;
	if (evutil_parse_sockaddr_port(cfg->http_listen, (struct sockaddr *)&ss,
				       &len) != 0 ||
	    (ss.ss_family == AF_INET &&
	     ((struct sockaddr_in *)&ss)->sin_port == 0) ||
	    (ss.ss_family == AF_INET6 &&
	     ((struct sockaddr_in6 *)&ss)->sin6_port == 0)) {
		load_error(ld, cfg->line[CONFIG_http_listen],
			   "[http] listen = %s: write host:port, e.g. "
			   "127.0.0.1:8025 or [::1]:8025", cfg->http_listen);
		return;
	}
	cfg->http_is_loopback =
	    (ss.ss_family == AF_INET &&
	     (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) ==
		 127) ||
	    (ss.ss_family == AF_INET6 &&
	     IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr));
	if (!cfg->http_is_loopback && !cfg->has_tls && !ld->is_tool)
		load_error(ld, cfg->line[CONFIG_http_listen],
			   "[http] listen = %s is not a loopback address: the "
			   "pages ask for a login there and are served over "
			   "HTTPS only; set [tls] cert and key, or listen on "
			   "127.0.0.1", cfg->http_listen);
}

/*
 * [delivery] relay_user and relay_password_file: the password is read
 * now (as root, before privileges are dropped, and again on a reload as
 * the service user), and a file others may read stops the start: a
 * password readable by every local account is not a secret.
 */
static void
derive_relay(struct load *ld)
{
	struct config *cfg = ld->cfg;
	const char *path = cfg->delivery_relay_password_file;
	char buf[CONFIG_PASSWORD_MAX + 2];
	struct stat st;
	size_t len;
	FILE *fp;

	if (cfg->delivery_relay_user[0] == '\0') {
		if (cfg->line[CONFIG_delivery_relay_password_file] != 0)
			load_error(ld,
				   cfg->line[CONFIG_delivery_relay_password_file],
				   "[delivery] relay_password_file is set but "
				   "relay_user is not: set both, or neither");
		return;
	}
	if (cfg->delivery_relayhost[0] == '\0')
		load_error(ld, cfg->line[CONFIG_delivery_relay_user],
			   "[delivery] relay_user = %s: it is the login at the "
			   "smart host; set [delivery] relayhost too (e.g. "
			   "smtp.example.net:587)", cfg->delivery_relay_user);
	if (path[0] == '\0') {
		load_error(ld, cfg->line[CONFIG_delivery_relay_user],
			   "[delivery] relay_user = %s needs relay_password_file "
			   "= FILE, a file whose one line is the password (chmod "
			   "600)", cfg->delivery_relay_user);
		return;
	}
	if (ld->is_tool)
		return;
	fp = fopen(path, "re");
	if (fp == NULL || fstat(fileno(fp), &st) != 0) {
		load_error(ld, cfg->line[CONFIG_delivery_relay_password_file],
			   "[delivery] relay_password_file = %s: %s; write the "
			   "password on its one line (chmod 600)", path,
			   strerror(errno));
		if (fp != NULL)
			fclose(fp);
		return;
	}
	if (st.st_mode & S_IRWXO) {
		load_error(ld, cfg->line[CONFIG_delivery_relay_password_file],
			   "[delivery] relay_password_file = %s: others may read "
			   "it (mode %04o); chmod 600 %s (or 640 with the group "
			   "of [server] user)", path,
			   (unsigned)(st.st_mode & 07777), path);
		fclose(fp);
		return;
	}
	if (fgets(buf, sizeof buf, fp) == NULL)
		buf[0] = '\0';
	fclose(fp);
	len = strcspn(buf, "\r\n");
	if (len == 0 || len > CONFIG_PASSWORD_MAX) {
		load_error(ld, cfg->line[CONFIG_delivery_relay_password_file],
			   "[delivery] relay_password_file = %s: its first line "
			   "must hold the password (1 to %d characters)", path,
			   CONFIG_PASSWORD_MAX);
		OPENSSL_cleanse(buf, sizeof buf);
		return;
	}
	cfg->relay_password = strndup(buf, len);
	OPENSSL_cleanse(buf, sizeof buf);
}

/* [delivery] retry as numbers; [local] lmtp resolved; [delivery] tls. */
static void
derive_delivery(struct load *ld)
{
	struct config *cfg = ld->cfg;
	static const char *const tls_modes[] = {"off", "opportunistic",
						"required", "verify"};
	const char *p = cfg->delivery_retry;
	const char *l = cfg->local_lmtp;

	while (*p) {
		char *end;
		unsigned long v;
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		v = strtoul(p, &end, 10);
		if (end == p || v < 1 || v > CONFIG_RETRY_SECONDS_MAX ||
		    cfg->n_retry == CONFIG_RETRY_MAX) {
			load_error(ld, cfg->line[CONFIG_delivery_retry],
				   "[delivery] retry = %s: give up to %d "
				   "numbers of seconds (1..%d), comma-separated, "
				   "e.g. 60,300,900,3600", cfg->delivery_retry,
				   CONFIG_RETRY_MAX, CONFIG_RETRY_SECONDS_MAX);
			break;
		}
		cfg->retry[cfg->n_retry++] = (unsigned)v;
		p = end;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '\0' && *p != ',') {
			load_error(ld, cfg->line[CONFIG_delivery_retry],
				   "[delivery] retry = %s: only numbers and "
				   "commas, e.g. 60,300,900,3600",
				   cfg->delivery_retry);
			break;
		}
	}
	if (cfg->n_retry == 0)
		cfg->retry[cfg->n_retry++] = CONFIG_RETRY_DEFAULT;
	cfg->tls_out = -1;
	for (int i = 0; i <= CONFIG_TLS_VERIFY; i++)
		if (strcmp(cfg->delivery_tls, tls_modes[i]) == 0)
			cfg->tls_out = i;
	if (cfg->tls_out < 0)
		load_error(ld, cfg->line[CONFIG_delivery_tls],
			   "[delivery] tls = %s: use opportunistic, required, "
			   "verify or off", cfg->delivery_tls);
	derive_relay(ld);
	derive_http(ld);
	if (l[0] == '\0')
		return;
	if (strncmp(l, "unix:", 5) == 0 && l[5] != '\0') {
		char *abs = resolve(cfg, l + 5);
		if (abs != NULL && asprintf(&cfg->lmtp_target, "unix:%s",
					    abs) < 0)
			cfg->lmtp_target = NULL;
		free(abs);
	} else if (strncmp(l, "inet:", 5) == 0 && strrchr(l + 5, ':')) {
		cfg->lmtp_target = strdup(l);
	} else {
		load_error(ld, cfg->line[CONFIG_local_lmtp],
			   "[local] lmtp = %s: use unix:PATH (e.g. "
			   "unix:/run/dovecot/lmtp) or inet:host:port", l);
	}
}

/* No [server] hostname: this machine's name, as Postfix's myhostname. */
static void
default_hostname(struct config *cfg)
{
	char name[HOST_NAME_MAX + 1] = "";
	char *dup;

	if (gethostname(name, sizeof name) != 0 || name[0] == '\0')
		return;
	name[sizeof name - 1] = '\0';
	dup = strdup(name);
	if (dup == NULL)
		return;
	free(cfg->server_hostname);
	cfg->server_hostname = dup;
}

static void
derive_checks(struct load *ld)
{
	struct config *cfg = ld->cfg;
	static const char *const levels[] = {"err", "warn", "info", "debug"};
	bool ok = false;

	for (size_t i = 0; i < 4; i++)
		ok |= strcmp(cfg->server_log_level, levels[i]) == 0;
	if (!ok)
		load_error(ld, cfg->line[CONFIG_server_log_level],
			   "[server] log_level = %s: use err, warn, info or "
			   "debug", cfg->server_log_level);
	if (strcmp(cfg->filter_on_failure, "tempfail") != 0 &&
	    strcmp(cfg->filter_on_failure, "accept") != 0)
		load_error(ld, cfg->line[CONFIG_filter_on_failure],
			   "[filter] on_failure = %s: use tempfail (451 4.7.1, "
			   "the client retries) or accept (store unfiltered)",
			   cfg->filter_on_failure);
	if (strcmp(cfg->server_bare_newline, "normalize") != 0 &&
	    strcmp(cfg->server_bare_newline, "reject") != 0)
		load_error(ld, cfg->line[CONFIG_server_bare_newline],
			   "[server] bare_newline = %s: use normalize (take "
			   "lines ending in LF as if they ended in CRLF) or "
			   "reject (554 5.6.0)", cfg->server_bare_newline);
	if (strcmp(cfg->auth_spf_fail, "header") != 0 &&
	    strcmp(cfg->auth_spf_fail, "reject") != 0)
		load_error(ld, cfg->line[CONFIG_auth_spf_fail],
			   "[auth] spf_fail = %s: use header (accept, the "
			   "result in Authentication-Results) or reject "
			   "(550 5.7.23)", cfg->auth_spf_fail);
	if (cfg->srs_secret[0] != '\0' && strlen(cfg->srs_secret) < 16)
		load_error(ld, cfg->line[CONFIG_srs_secret],
			   "[srs] secret is too short: use at least 16 "
			   "random characters, e.g. the output of "
			   "`openssl rand -base64 24`");
	/* Only root switches to it (src/server/sandbox.c). */
	if (geteuid() == 0 && cfg->server_user[0] != '\0' &&
	    getpwnam(cfg->server_user) == NULL)
		load_error(ld, cfg->line[CONFIG_server_user],
			   "[server] user = %s: no such account; create it "
			   "(useradd --system --user-group %s) or name another",
			   cfg->server_user, cfg->server_user);
	if (cfg->server_hostname[0] == '\0' &&
	    cfg->line[CONFIG_server_hostname] == 0)
		default_hostname(cfg);
	if (cfg->server_hostname[0] == '\0' ||
	    strpbrk(cfg->server_hostname, " \t<>") != NULL)
		load_error(ld, cfg->line[CONFIG_server_hostname],
			   "[server] hostname = '%s': give this server's "
			   "fully qualified name, e.g. mx.example.test",
			   cfg->server_hostname);
	if (ld->is_tool)
		return; /* the tables are the server's business */
	if (access(cfg->local_users, R_OK) != 0)
		load_error(ld, cfg->line[CONFIG_local_users],
			   "[local] users = %s: %s; create the file (one "
			   "address a line, e.g. alice@example.test)",
			   cfg->local_users, strerror(errno));
	if (cfg->local_forwards[0] != '\0' &&
	    access(cfg->local_forwards, R_OK) != 0)
		load_error(ld, cfg->line[CONFIG_local_forwards],
			   "[local] forwards = %s: %s; create the file or "
			   "remove the key", cfg->local_forwards,
			   strerror(errno));
}

static char *
dir_of(const char *path)
{
	char *abs = realpath(path, NULL), *slash;

	if (abs == NULL)
		return NULL;
	slash = strrchr(abs, '/');
	if (slash == abs)
		slash[1] = '\0';
	else
		*slash = '\0';
	return abs;
}

static struct config *
load(const char *path, bool is_tool, char **errors_out)
{
	struct load ld = {.is_tool = is_tool};
	struct config *cfg = calloc(1, sizeof *cfg);
	int r;

	*errors_out = NULL;
	if (cfg == NULL)
		return NULL;
	ld.cfg = cfg;
	cfg->path = strdup(path);
	ld.fp = fopen(path, "r");
	cfg->dir = ld.fp ? dir_of(path) : NULL;
	if (ld.fp == NULL || cfg->dir == NULL) {
		load_error(&ld, 0, "cannot read the config: %s; give an "
			   "existing file with -c FILE (the default is "
			   "etc/postern.conf in the source tree, "
			   "/etc/postern/postern.conf when installed)",
			   strerror(errno));
		goto fail;
	}
	r = ini_parse_stream(reader, &ld, handler, &ld);
	fclose(ld.fp);
	if (r > 0)
		load_error(&ld, (unsigned)r, "not a `key = value` line nor a "
			   "[section] header (a line starting with a space "
			   "continues the previous value)");
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++)
		if (cfg->line[i] == 0)
			set_value(&ld, &keys[i], keys[i].def, 0);
	if (ld.n_errors)
		goto fail;
	derive_listen(&ld);
	derive_tls(&ld);
	derive_domains(&ld);
	derive_maildir(&ld);
	derive_control(&ld);
	derive_delivery(&ld);
	derive_checks(&ld);
	if (ld.n_errors)
		goto fail;
	return cfg;
fail:
	if (ld.n_errors > CONFIG_ERRORS_MAX)
		load_error(&ld, 0, "and more errors");
	*errors_out = ld.errors;
	config_free(cfg);
	return NULL;
}

struct config *
config_load(const char *path, char **errors_out)
{
	return load(path, false, errors_out);
}

struct config *
config_load_tool(const char *path, char **errors_out)
{
	return load(path, true, errors_out);
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++)
		if (keys[i].type != T_UINT && keys[i].type != T_BOOL)
			free(*str_field(cfg, &keys[i]));
	for (size_t i = 0; i < cfg->n_domains; i++)
		free(cfg->domains[i]);
	free(cfg->maildir_path);
	free(cfg->lmtp_target);
	if (cfg->relay_password != NULL) {
		OPENSSL_cleanse(cfg->relay_password, strlen(cfg->relay_password));
		free(cfg->relay_password);
	}
	free(cfg->path);
	free(cfg->dir);
	free(cfg);
}

size_t
config_notes(const struct config *cfg, FILE *fp)
{
	size_t n = 0;

	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		if (keys[i].is_active || cfg->line[i] == 0)
			continue;
		fprintf(fp, "%s:%u: note: [%s] %s is accepted but not used "
			"by postern %s yet; it has no effect\n", cfg->path,
			cfg->line[i], keys[i].section, keys[i].key,
			POSTERN_VERSION);
		n++;
	}
	return n;
}

bool
config_is_local_domain(const struct config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->n_domains; i++)
		if (strcasecmp(cfg->domains[i], domain) == 0)
			return true;
	return false;
}

bool
config_value_differs(const struct config *a, const struct config *b,
		     enum config_key key)
{
	const struct key_row *k = &keys[key];
	const char *pa = (const char *)a + k->offset;
	const char *pb = (const char *)b + k->offset;

	switch (k->type) {
	case T_UINT:
		return *(const uint64_t *)pa != *(const uint64_t *)pb;
	case T_BOOL:
		return *(const bool *)pa != *(const bool *)pb;
	default:
		return strcmp(*(char *const *)pa, *(char *const *)pb) != 0;
	}
}

int
config_log_level(const struct config *cfg)
{
	static const char *const names[] = {"err", "warn", "info", "debug"};

	for (int i = 0; i < 4; i++)
		if (strcmp(cfg->server_log_level, names[i]) == 0)
			return i;
	return 2; /* info */
}
