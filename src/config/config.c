/*
 * config.c - reading and checking postern.conf.
 *
 * Who calls it: cli/serve.c and cli/check.c at start-up (and a reload
 * later).  What it promises: a returned config has every key set, every
 * number within its row's min..max, every path absolute, listen addresses
 * parsed; or NULL and a list of errors that each name the file, the line
 * and the fix.  inih does the INI syntax (inline ";" comments included);
 * a reader wrapper counts lines so errors can name them.  What the keys
 * mean together (listen addresses, paths, the cross-key checks) is
 * config_derive.c's.
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
#include "config/config_int.h"
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

void
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

const char *
config_key_short(enum config_key key)
{
	return keys[key].key;
}

const char *
config_key_value(const struct config *cfg, enum config_key key)
{
	return *(char *const *)((const char *)cfg + keys[key].offset);
}

static char **
str_field(struct config *cfg, const struct key_row *k)
{
	return (char **)((char *)cfg + k->offset);
}

/* Makes a relative path absolute against the config's directory. */
char *
config_resolve(const struct config *cfg, const char *p)
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
	*str_field(cfg, k) =
	    k->type == T_PATH ? config_resolve(cfg, v) : strdup(v);
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
	config_derive_listen(&ld);
	config_derive_tls(&ld);
	config_derive_domains(&ld);
	config_derive_maildir(&ld);
	config_derive_control(&ld);
	config_derive_delivery(&ld);
	config_derive_checks(&ld);
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
