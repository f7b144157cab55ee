/*
 * config.h - the configuration: keys.def rows read from an INI file.
 *
 * config_load() reads the file through inih, checks every value against its
 * row (type, min, max) and resolves relative paths against the file's
 * directory.  A config is immutable once loaded; a reload builds a new one.
 * See postern.conf(5) and ../shared/CONTRACT.md.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define CFG_TYPE_STR char *
#define CFG_TYPE_PATH char *
#define CFG_TYPE_LIST char *
#define CFG_TYPE_LISTEN char *
#define CFG_TYPE_RATE char *
#define CFG_TYPE_UINT uint64_t
#define CFG_TYPE_BOOL bool

enum config_key {
#define K(sec, key, type, def, min, max, active, help) CONFIG_##sec##_##key,
#include "config/keys.def"
#undef K
	CONFIG_KEY_COUNT
};

/* What a listener speaks: the [server] key it comes from. */
enum config_listen_kind {
	LISTEN_SMTP,	   /* port 25: STARTTLS offered, AUTH under TLS */
	LISTEN_SUBMISSION, /* port 587: STARTTLS, AUTH required before MAIL */
	LISTEN_SMTPS,	   /* port 465: TLS from the first octet (RFC 8314) */
};

/* One listening address of a LISTEN key. */
struct config_listen {
	struct sockaddr_storage ss;
	int sslen;
	enum config_listen_kind kind;
	char text[64]; /* as written: "127.0.0.1:2525", "[::1]:2525" */
};

#define CONFIG_LISTEN_MAX 16
#define CONFIG_DOMAINS_MAX 256
#define CONFIG_RETRY_MAX 32

/* [delivery] tls, in order of strength. */
enum {
	CONFIG_TLS_OFF,
	CONFIG_TLS_OPPORTUNISTIC,
	CONFIG_TLS_REQUIRED,
	CONFIG_TLS_VERIFY,
};

struct config {
	char *path; /* the file read */
	char *dir;  /* its directory: base of relative paths */
#define K(sec, key, type, def, min, max, active, help) \
	CFG_TYPE_##type sec##_##key;
#include "config/keys.def"
#undef K
	/* The line each key was set on, 0 when it has its default. */
	unsigned line[CONFIG_KEY_COUNT];
	/* Derived from server_smtp, server_submission, server_smtps. */
	struct config_listen listen[CONFIG_LISTEN_MAX];
	size_t n_listen;
	/* True when [tls] cert and key are set (and readable). */
	bool has_tls;
	/* Derived from local_domains, lower case. */
	char *domains[CONFIG_DOMAINS_MAX];
	size_t n_domains;
	/* local_maildir made absolute (a %-template), without "mbox:". */
	char *maildir_path;
	bool is_mbox; /* local_maildir said mbox:PATH: one locked file each */
	/* Derived from server_max_connection_rate; rate_window 0: no limit. */
	unsigned rate_max, rate_window;
	/* Derived from delivery_retry: seconds, at least one entry. */
	unsigned retry[CONFIG_RETRY_MAX];
	size_t n_retry;
	/* Derived from local_lmtp: "unix:/abs/path" or "inet:host:port"
	 * with a relative unix path made absolute; NULL when unset. */
	char *lmtp_target;
	/* Derived from delivery_tls: CONFIG_TLS_OFF .. CONFIG_TLS_VERIFY. */
	int tls_out;
	/* Derived from delivery_relay_password_file: its one line, NULL when
	 * relay_user is empty. */
	char *relay_password;
	/* Derived from http_listen: a loopback address (no login asked). */
	bool http_is_loopback;
};

/*
 * Loads path.  On success returns the config and sets *errors_out to NULL.
 * On any error returns NULL and sets *errors_out to a malloc'd text, one
 * line per problem ("FILE:LINE: what is wrong; the fix"), for the caller
 * to print and free.
 */
struct config *config_load(const char *path, char **errors_out);

/*
 * As config_load, for the tools that use only some of it (`postern auth
 * check`, `postern dkim keygen`): the users and forwards files and the
 * TLS files need not exist or be readable.
 */
struct config *config_load_tool(const char *path, char **errors_out);

/* Frees cfg; config_free(NULL) is a no-op. */
void config_free(struct config *cfg);

/*
 * Writes a note for each key that is set in the file but that this version
 * does not use yet, so nobody believes a setting works when it does not.
 * Returns the number of notes written.
 */
size_t config_notes(const struct config *cfg, FILE *fp);

/* True when domain (any case) is one of local_domains. */
bool config_is_local_domain(const struct config *cfg, const char *domain);

/* True when key has different values in a and b. */
bool config_value_differs(const struct config *a, const struct config *b,
			  enum config_key key);

/* server.log_level as a util/log.h level. */
int config_log_level(const struct config *cfg);

/* The key's "section.key" name, for messages. */
const char *config_key_name(enum config_key key);

#endif
