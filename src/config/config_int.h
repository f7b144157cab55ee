/*
 * config_int.h - what the two halves of config loading share: config.c
 * (the key table, the INI reading, defaults, free) and config_derive.c
 * (the values computed from the keys and the cross-key checks, each
 * error naming the line and the fix).
 */
#ifndef POSTERN_CONFIG_CONFIG_INT_H
#define POSTERN_CONFIG_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

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

/* Adds "FILE:LINE: message" to the errors (line 0: no line). */
void load_error(struct load *ld, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A relative path made absolute against the config's directory;
 * malloc'd, NULL when out of memory. */
char *config_resolve(const struct config *cfg, const char *p);
/* The key's name in its section ("smtp"), and a string key's value. */
const char *config_key_short(enum config_key key);
const char *config_key_value(const struct config *cfg, enum config_key key);

/* config_derive.c, in the order load() calls them. */
void config_derive_listen(struct load *ld);
void config_derive_tls(struct load *ld);
void config_derive_domains(struct load *ld);
void config_derive_maildir(struct load *ld);
void config_derive_control(struct load *ld);
void config_derive_delivery(struct load *ld);
void config_derive_checks(struct load *ld);

#endif
