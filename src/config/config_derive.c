/*
 * config_derive.c - what postern.conf's keys mean together: the listen
 * addresses parsed, paths made absolute, [local] domains split, the TLS
 * pair and the tables checked readable, [delivery]'s retry list, TLS mode,
 * relayhost login and password file, [http] listen, and the checks across
 * keys.  config.c calls these after every key has its value; each problem
 * becomes one "FILE:LINE: what is wrong; the fix" line (load_error).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/util.h>
#include <openssl/crypto.h>

#include "config/config_int.h"
#include "util/str.h"

/* Adds the addresses of one LISTEN key to cfg->listen[]. */
static void
derive_listen_key(struct load *ld, enum config_key key,
		  enum config_listen_kind kind)
{
	struct config *cfg = ld->cfg;
	char *list = strdup(config_key_value(cfg, key)), *save = NULL;
	unsigned line = cfg->line[key];

	for (char *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		struct config_listen *l;
		str_trim(tok);
		if (*tok == '\0')
			continue;
		if (cfg->n_listen == CONFIG_LISTEN_MAX) {
			load_error(ld, line,
				   "[server] at most %d listen "
				   "addresses in all",
				   CONFIG_LISTEN_MAX);
			break;
		}
		l = &cfg->listen[cfg->n_listen];
		l->sslen = sizeof l->ss;
		l->kind = kind;
		if (evutil_parse_sockaddr_port(tok, (struct sockaddr *)&l->ss,
					       &l->sslen) != 0 ||
		    strchr(tok, ':') == NULL) {
			load_error(ld, line,
				   "[server] %s: '%s' is not "
				   "HOST:PORT; write e.g. 127.0.0.1:2525 or "
				   "[::1]:2525",
				   config_key_short(key), tok);
			continue;
		}
		str_set(l->text, sizeof l->text, tok);
		cfg->n_listen++;
	}
	free(list);
}

void
config_derive_listen(struct load *ld)
{
	struct config *cfg = ld->cfg;

	derive_listen_key(ld, CONFIG_server_smtp, LISTEN_SMTP);
	derive_listen_key(ld, CONFIG_server_submission, LISTEN_SUBMISSION);
	derive_listen_key(ld, CONFIG_server_smtps, LISTEN_SMTPS);
	if (cfg->n_listen == 0 && ld->n_errors == 0)
		load_error(ld, cfg->line[CONFIG_server_smtp],
			   "[server] no "
			   "listen address; set e.g. smtp = 127.0.0.1:2525");
}

/* TLS needs both files; smtps and submission need TLS. */
void
config_derive_tls(struct load *ld)
{
	struct config *cfg = ld->cfg;
	bool has_cert = cfg->tls_cert[0] != '\0';
	bool has_key = cfg->tls_key[0] != '\0';

	if (has_cert != has_key) {
		load_error(
		    ld, cfg->line[has_cert ? CONFIG_tls_cert : CONFIG_tls_key],
		    "[tls] needs both cert and key; set the other one "
		    "(`make cert` makes a self-signed pair in etc/tls)");
		return;
	}
	for (int i = 0; has_cert && i < 2; i++) {
		const char *p = i ? cfg->tls_key : cfg->tls_cert;
		if (!ld->is_tool && access(p, R_OK) != 0)
			load_error(
			    ld, cfg->line[i ? CONFIG_tls_key : CONFIG_tls_cert],
			    "[tls] %s = %s: %s; run `make cert` for a "
			    "self-signed pair or give your own PEM file",
			    i ? "key" : "cert", p, strerror(errno));
	}
	cfg->has_tls = has_cert;
	if (!has_cert && cfg->server_smtps[0] != '\0')
		load_error(ld, cfg->line[CONFIG_server_smtps],
			   "[server] smtps "
			   "needs [tls] cert and key; set them or remove "
			   "smtps");
	if (!has_cert && cfg->server_submission[0] != '\0')
		load_error(ld, cfg->line[CONFIG_server_submission],
			   "[server] "
			   "submission needs [tls] cert and key (AUTH is only "
			   "offered under TLS); set them or remove submission");
}

void
config_derive_domains(struct load *ld)
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

void
config_derive_maildir(struct load *ld)
{
	struct config *cfg = ld->cfg;
	const char *m = cfg->local_maildir;
	unsigned line = cfg->line[CONFIG_local_maildir];

	if (strncmp(m, "mbox:", 5) == 0) {
		cfg->is_mbox = true;
		m += 5;
	}
	if (strstr(m, "%u") == NULL)
		load_error(ld, line,
			   "[local] maildir = %s: the path must hold "
			   "%%u (the user) so mailboxes differ, e.g. "
			   "var/mail/%%d/%%u",
			   m);
	for (const char *p = strchr(m, '%'); p; p = strchr(p + 2, '%'))
		if (p[1] != 'u' && p[1] != 'd') {
			load_error(ld, line,
				   "[local] maildir: only %%d and "
				   "%%u may follow %%");
			break;
		}
	cfg->maildir_path = config_resolve(cfg, m);
}

/* An empty [control] socket lives in the spool directory. */
void
config_derive_control(struct load *ld)
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
			   "127.0.0.1:8025 or [::1]:8025",
			   cfg->http_listen);
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
			   "127.0.0.1",
			   cfg->http_listen);
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
			load_error(
			    ld, cfg->line[CONFIG_delivery_relay_password_file],
			    "[delivery] relay_password_file is set but "
			    "relay_user is not: set both, or neither");
		return;
	}
	if (cfg->delivery_relayhost[0] == '\0')
		load_error(ld, cfg->line[CONFIG_delivery_relay_user],
			   "[delivery] relay_user = %s: it is the login at the "
			   "smart host; set [delivery] relayhost too (e.g. "
			   "smtp.example.net:587)",
			   cfg->delivery_relay_user);
	if (path[0] == '\0') {
		load_error(
		    ld, cfg->line[CONFIG_delivery_relay_user],
		    "[delivery] relay_user = %s needs relay_password_file "
		    "= FILE, a file whose one line is the password (chmod "
		    "600)",
		    cfg->delivery_relay_user);
		return;
	}
	if (ld->is_tool)
		return;
	fp = fopen(path, "re");
	if (fp == NULL || fstat(fileno(fp), &st) != 0) {
		load_error(ld, cfg->line[CONFIG_delivery_relay_password_file],
			   "[delivery] relay_password_file = %s: %s; write the "
			   "password on its one line (chmod 600)",
			   path, strerror(errno));
		if (fp != NULL)
			fclose(fp);
		return;
	}
	if (st.st_mode & S_IRWXO) {
		load_error(
		    ld, cfg->line[CONFIG_delivery_relay_password_file],
		    "[delivery] relay_password_file = %s: others may read "
		    "it (mode %04o); chmod 600 %s (or 640 with the group "
		    "of [server] user)",
		    path, (unsigned)(st.st_mode & 07777), path);
		fclose(fp);
		return;
	}
	if (fgets(buf, sizeof buf, fp) == NULL)
		buf[0] = '\0';
	fclose(fp);
	len = strcspn(buf, "\r\n");
	if (len == 0 || len > CONFIG_PASSWORD_MAX) {
		load_error(
		    ld, cfg->line[CONFIG_delivery_relay_password_file],
		    "[delivery] relay_password_file = %s: its first line "
		    "must hold the password (1 to %d characters)",
		    path, CONFIG_PASSWORD_MAX);
		OPENSSL_cleanse(buf, sizeof buf);
		return;
	}
	cfg->relay_password = strndup(buf, len);
	OPENSSL_cleanse(buf, sizeof buf);
}

/* [delivery] retry as numbers; [local] lmtp resolved; [delivery] tls. */
void
config_derive_delivery(struct load *ld)
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
			load_error(
			    ld, cfg->line[CONFIG_delivery_retry],
			    "[delivery] retry = %s: give up to %d "
			    "numbers of seconds (1..%d), comma-separated, "
			    "e.g. 60,300,900,3600",
			    cfg->delivery_retry, CONFIG_RETRY_MAX,
			    CONFIG_RETRY_SECONDS_MAX);
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
			   "verify or off",
			   cfg->delivery_tls);
	derive_relay(ld);
	derive_http(ld);
	if (l[0] == '\0')
		return;
	if (strncmp(l, "unix:", 5) == 0 && l[5] != '\0') {
		char *abs = config_resolve(cfg, l + 5);
		if (abs != NULL &&
		    asprintf(&cfg->lmtp_target, "unix:%s", abs) < 0)
			cfg->lmtp_target = NULL;
		free(abs);
	} else if (strncmp(l, "inet:", 5) == 0 && strrchr(l + 5, ':')) {
		cfg->lmtp_target = strdup(l);
	} else {
		load_error(ld, cfg->line[CONFIG_local_lmtp],
			   "[local] lmtp = %s: use unix:PATH (e.g. "
			   "unix:/run/dovecot/lmtp) or inet:host:port",
			   l);
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

void
config_derive_checks(struct load *ld)
{
	struct config *cfg = ld->cfg;
	static const char *const levels[] = {"err", "warn", "info", "debug"};
	bool ok = false;

	for (size_t i = 0; i < 4; i++)
		ok |= strcmp(cfg->server_log_level, levels[i]) == 0;
	if (!ok)
		load_error(ld, cfg->line[CONFIG_server_log_level],
			   "[server] log_level = %s: use err, warn, info or "
			   "debug",
			   cfg->server_log_level);
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
			   "reject (554 5.6.0)",
			   cfg->server_bare_newline);
	if (strcmp(cfg->auth_spf_fail, "header") != 0 &&
	    strcmp(cfg->auth_spf_fail, "reject") != 0)
		load_error(ld, cfg->line[CONFIG_auth_spf_fail],
			   "[auth] spf_fail = %s: use header (accept, the "
			   "result in Authentication-Results) or reject "
			   "(550 5.7.23)",
			   cfg->auth_spf_fail);
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
			   "remove the key",
			   cfg->local_forwards, strerror(errno));
}
