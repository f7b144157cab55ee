/*
 * users.c - loading the users and forwards files into sorted arrays.
 *
 * Called at start-up (and by `postern check`).  Entries are kept in lower
 * case and sorted, so a lookup is a binary search; the tables are never
 * changed after load, so the loop thread and workers may share them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/users.h"
#include "proto/addr.h"
#include "util/str.h"

#define USERS_LINE_MAX 1024

struct entry {
	char *key;   /* lower-case "local@domain" */
	char *value; /* hash (users) or new address (forwards), may be NULL */
	struct users_forward fwd; /* forwards: the view users_forward() gives */
	bool is_held;		  /* users: "hold" */
};

struct table {
	struct entry *v;
	size_t n, cap;
};

struct users {
	struct table users;
	struct table forwards;
};

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->key,
		      ((const struct entry *)b)->key);
}

static bool
table_add(struct table *t, const char *key, const char *value, bool is_fwd)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct entry *v = realloc(t->v, cap * sizeof *v);
		if (v == NULL)
			return false;
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n].key = strdup(key);
	t->v[t->n].value = value ? strdup(value) : NULL;
	t->v[t->n].fwd.to = t->v[t->n].value;
	t->v[t->n].fwd.is_forward = is_fwd;
	t->v[t->n].is_held = false;
	str_lower(t->v[t->n].key);
	t->n++;
	return true;
}

static const struct entry *
table_find(const struct table *t, const char *mailbox)
{
	char key[SMTP_PATH_MAX + 1];
	struct entry probe = {.key = key};

	if (!str_set(key, sizeof key, mailbox))
		return NULL;
	str_lower(key);
	if (t->n == 0)
		return NULL;
	return bsearch(&probe, t->v, t->n, sizeof *t->v, entry_cmp);
}

static bool
valid_mailbox(const char *s)
{
	struct addr a;

	return addr_parse_mailbox(s, strlen(s), ADDR_ALLOW_UTF8, &a) == ADDR_OK;
}

/* Splits a users line "addr[: hash]" and adds it; false on a bad line. */
/*
 * A users line: "addr", "addr: HASH", optionally followed by the flag
 * "hold" (RCPT gets 450 4.2.1 until it is removed); false on a bad line.
 */
static bool
users_line(struct users *u, char *line, const char *path, unsigned lineno,
	   char *err, size_t size)
{
	size_t end = strcspn(line, ": \t");
	char *rest = line + end, *save = NULL, *hash = NULL, *tok;
	bool is_colon = *rest == ':', is_held = false;

	if (*rest != '\0')
		*rest++ = '\0';
	if (!valid_mailbox(line)) {
		snprintf(err, size, "%s:%u: '%s' is not an address; write "
			 "one user a line as user@domain (optionally "
			 "`: HASH`, then `hold`)", path, lineno, line);
		return false;
	}
	for (tok = strtok_r(rest, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save)) {
		if (strcmp(tok, "hold") == 0) {
			is_held = true;
		} else if (is_colon && hash == NULL && !is_held) {
			hash = tok;
		} else {
			snprintf(err, size, "%s:%u: unexpected '%s'; after the "
				 "address come `: HASH` and the flag `hold`",
				 path, lineno, tok);
			return false;
		}
	}
	if (!table_add(&u->users, line, hash, false))
		return false;
	u->users.v[u->users.n - 1].is_held = is_held;
	return true;
}

static bool
forwards_line(struct users *u, char *line, const char *path,
	      unsigned lineno, char *err, size_t size)
{
	char from[USERS_LINE_MAX], to[USERS_LINE_MAX], mode[16], extra[2];
	int n = sscanf(line, "%1023s %1023s %15s %1s", from, to, mode, extra);

	if (n != 3 || !valid_mailbox(from) || !valid_mailbox(to) ||
	    (strcmp(mode, "forward") != 0 && strcmp(mode, "refuse") != 0)) {
		snprintf(err, size, "%s:%u: write `old@domain new@address "
			 "forward` or `... refuse` (forward: 251 and resend; "
			 "refuse: 551 naming the new address)", path, lineno);
		return false;
	}
	return table_add(&u->forwards, from, to, mode[0] == 'f');
}

typedef bool (*line_fn)(struct users *, char *, const char *, unsigned,
			char *, size_t);

static bool
load_file(struct users *u, const char *path, line_fn fn, char *err,
	  size_t size)
{
	char line[USERS_LINE_MAX];
	unsigned lineno = 0;
	FILE *fp = fopen(path, "r");

	if (fp == NULL) {
		snprintf(err, size, "%s: %s; create it or fix the path in the "
			 "config", path, strerror(errno));
		return false;
	}
	while (fgets(line, sizeof line, fp) != NULL) {
		char *hashmark = strchr(line, '#');
		lineno++;
		if (hashmark != NULL)
			*hashmark = '\0';
		str_trim(line);
		if (line[0] == '\0')
			continue;
		if (!fn(u, line, path, lineno, err, size)) {
			fclose(fp);
			return false;
		}
	}
	fclose(fp);
	return true;
}

static void
table_free(struct table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].key);
		free(t->v[i].value);
	}
	free(t->v);
}

struct users *
users_load(const char *users_path, const char *forwards_path, char *err,
	   size_t size)
{
	struct users *u = calloc(1, sizeof *u);

	if (u == NULL) {
		snprintf(err, size, "out of memory loading %s", users_path);
		return NULL;
	}
	if (!load_file(u, users_path, users_line, err, size) ||
	    (forwards_path && forwards_path[0] &&
	     !load_file(u, forwards_path, forwards_line, err, size))) {
		users_free(u);
		return NULL;
	}
	if (u->users.n > 0)
		qsort(u->users.v, u->users.n, sizeof *u->users.v, entry_cmp);
	if (u->forwards.n > 0)
		qsort(u->forwards.v, u->forwards.n, sizeof *u->forwards.v,
		      entry_cmp);
	return u;
}

void
users_free(struct users *u)
{
	if (u == NULL)
		return;
	table_free(&u->users);
	table_free(&u->forwards);
	free(u);
}

bool
users_has(const struct users *u, const char *mailbox)
{
	return table_find(&u->users, mailbox) != NULL;
}

bool
users_is_held(const struct users *u, const char *mailbox)
{
	const struct entry *e = table_find(&u->users, mailbox);

	return e != NULL && e->is_held;
}

const char *
users_hash(const struct users *u, const char *mailbox)
{
	const struct entry *e = table_find(&u->users, mailbox);

	return e ? e->value : NULL;
}

const struct users_forward *
users_forward(const struct users *u, const char *mailbox)
{
	const struct entry *e = table_find(&u->forwards, mailbox);

	return e ? &e->fwd : NULL;
}

size_t
users_count(const struct users *u)
{
	return u->users.n;
}
