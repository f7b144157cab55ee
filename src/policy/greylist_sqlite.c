/*
 * greylist_sqlite.c - the greylist state in an embedded SQLite file
 * ([greylist] store = sqlite:PATH, the default).
 *
 * One table, greylist(key TEXT PRIMARY KEY, first_seen INT, last_seen INT,
 * passed INT), in WAL mode so a reader (sqlite3 CLI, a backup) never blocks
 * the worker, with synchronous=NORMAL: a crash may forget the last
 * triplets, which only costs a sender one more 450.  Each batch of checks
 * is one BEGIN IMMEDIATE ... COMMIT through prepared statements; a lock
 * held elsewhere past GREYLIST_SQLITE_BUSY_MS, a full or read-only disk, a
 * corrupt file: the batch fails and greylist.c answers GREYLIST_ERROR.
 * Stale rows are deleted by prune(), which greylist.c calls about hourly.
 *
 * Called only by greylist.c: open on the loop thread at start, the rest on
 * the worker thread.  https://sqlite.org/wal.html
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "policy/greylist_int.h"
#include "util/str.h"
#include "util/fs.h"
#include "util/log.h"

#define GREYLIST_SQLITE_BUSY_MS 2000 /* waiting for another writer */

enum stmt_id {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_GET,
	STMT_PUT,
	STMT_PRUNE,
	STMT_COUNT
};

static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_GET] = "SELECT first_seen, last_seen, passed FROM greylist "
		 "WHERE key = ?1",
    [STMT_PUT] = "INSERT INTO greylist (key, first_seen, last_seen, "
		 "passed) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO "
		 "UPDATE SET first_seen = ?2, last_seen = ?3, passed = ?4",
    [STMT_PRUNE] = "DELETE FROM greylist WHERE (passed = 0 AND "
		   "first_seen < ?1) OR (passed <> 0 AND last_seen < ?2)",
};

static const char schema_sql[] = "PRAGMA synchronous = NORMAL;"
				 "CREATE TABLE IF NOT EXISTS greylist ("
				 " key TEXT PRIMARY KEY,"
				 " first_seen INTEGER NOT NULL,"
				 " last_seen INTEGER NOT NULL,"
				 " passed INTEGER NOT NULL)";

struct greylist_store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[STMT_COUNT];
};

/* Logs a failure with SQLite's own words; returns -1. */
static int
fail(struct greylist_store *st, const char *what)
{
	log_msg(LOG_WARN,
		"ev=greylist_store_failed store=sqlite path=%s "
		"op=%s error=%s",
		log_q(st->path), what, log_q(sqlite3_errmsg(st->db)));
	return -1;
}

/* Runs a statement without results; 0 or -1. */
static int
exec_stmt(struct greylist_store *st, enum stmt_id id)
{
	sqlite3_stmt *s = st->stmt[id];
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
sqlite_close(struct greylist_store *st)
{
	for (size_t i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

/* Sets WAL mode, makes the table, prepares the statements. */
static int
prepare(struct greylist_store *st)
{
	sqlite3_stmt *s;
	const char *mode = NULL;
	int rc;

	if (sqlite3_busy_timeout(st->db, GREYLIST_SQLITE_BUSY_MS) !=
		SQLITE_OK ||
	    sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s,
			       NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		mode = (const char *)sqlite3_column_text(s, 0);
	rc = mode && strcmp(mode, "wal") == 0 ? 0 : -1;
	sqlite3_finalize(s);
	if (rc != 0 ||
	    sqlite3_exec(st->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	for (size_t i = 0; i < STMT_COUNT; i++)
		if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
				       NULL) != SQLITE_OK)
			return -1;
	/* Prove we may write now, not at the first RCPT. */
	if (exec_stmt(st, STMT_BEGIN) != 0)
		return -1;
	return exec_stmt(st, STMT_COMMIT);
}

/*
 * Creates the database's directory when it is missing (var/ on a fresh
 * tree), as the spool's is; a failure shows in sqlite3_open_v2's error.
 */
#define GREYLIST_DIR_MODE 0700

static void
make_parent(const char *path)
{
	char parent[PATH_MAX], *slash;

	if (!str_set(parent, sizeof parent, path) ||
	    (slash = strrchr(parent, '/')) == NULL || slash == parent)
		return;
	*slash = '\0';
	(void)fs_mkdirs(parent, GREYLIST_DIR_MODE);
}

static struct greylist_store *
sqlite_open(const char *spec, const char *dir, char *err, size_t size)
{
	struct greylist_store *st = calloc(1, sizeof *st);
	char path[PATH_MAX];
	int n;

	if (spec[0] == '\0') {
		snprintf(err, size,
			 "greylist store sqlite: names no file; "
			 "write sqlite:PATH in [greylist] store");
		free(st);
		return NULL;
	}
	n = spec[0] == '/' ? snprintf(path, sizeof path, "%s", spec)
			   : snprintf(path, sizeof path, "%s/%s", dir, spec);
	if (st == NULL || n < 0 || (size_t)n >= sizeof path ||
	    (st->path = strdup(path)) == NULL) {
		snprintf(err, size,
			 "greylist store path too long or out of "
			 "memory; fix [greylist] store");
		free(st);
		return NULL;
	}
	make_parent(path);
	if (sqlite3_open_v2(path, &st->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
	    st->db == NULL || sqlite3_db_readonly(st->db, "main") == 1 ||
	    prepare(st) != 0) {
		const char *why = st->db == NULL ? "out of memory"
				  : sqlite3_db_readonly(st->db, "main") == 1
				      ? "the file is read-only"
				      : sqlite3_errmsg(st->db);
		char *slash = strrchr(path, '/');
		struct stat sb;

		if (slash != NULL && slash != path) {
			*slash = '\0'; /* path is now its directory */
			if (stat(path, &sb) != 0)
				why = "its directory does not exist";
			else if (!S_ISDIR(sb.st_mode))
				why = "its directory is not a directory";
			*slash = '/';
		}

		snprintf(err, size,
			 "cannot open greylist store sqlite:%s: %s; "
			 "make the file and its directory writable by postern "
			 "(the WAL files live beside it), or fix [greylist] "
			 "store",
			 path, why);
		sqlite_close(st);
		return NULL;
	}
	return st;
}

static int
sqlite_begin(struct greylist_store *st)
{
	return exec_stmt(st, STMT_BEGIN) == 0 ? 0 : fail(st, "begin");
}

static int
sqlite_commit(struct greylist_store *st)
{
	return exec_stmt(st, STMT_COMMIT) == 0 ? 0 : fail(st, "commit");
}

static void
sqlite_rollback(struct greylist_store *st)
{
	/* Fails harmlessly when SQLite already rolled back on its own. */
	if (sqlite3_get_autocommit(st->db) == 0)
		exec_stmt(st, STMT_ROLLBACK);
}

/* Reads key's record: 1 found, 0 none, -1 error. */
static int
get(struct greylist_store *st, const char *key, struct greylist_rec *rec)
{
	sqlite3_stmt *s = st->stmt[STMT_GET];
	int rc;

	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		rec->first_seen = (time_t)sqlite3_column_int64(s, 0);
		rec->last_seen = (time_t)sqlite3_column_int64(s, 1);
		rec->is_passed = sqlite3_column_int(s, 2) != 0;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
put(struct greylist_store *st, const char *key, const struct greylist_rec *r)
{
	sqlite3_stmt *s = st->stmt[STMT_PUT];
	int rc;

	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)r->first_seen);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)r->last_seen);
	sqlite3_bind_int(s, 4, r->is_passed);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
sqlite_update(struct greylist_store *st, const char *key, time_t now,
	      const struct greylist_policy *pol, struct greylist_outcome *out)
{
	struct greylist_rec old;
	int found = get(st, key, &old);

	if (found < 0)
		return fail(st, "select");
	greylist_decide(found ? &old : NULL, now, pol, out);
	if (out->is_dirty && put(st, key, &out->rec) != 0)
		return fail(st, "upsert");
	return 0;
}

static void
sqlite_prune(struct greylist_store *st, time_t now,
	     const struct greylist_policy *pol)
{
	sqlite3_stmt *s = st->stmt[STMT_PRUNE];
	int rc;

	sqlite3_bind_int64(s, 1, (sqlite3_int64)(now - pol->expire));
	sqlite3_bind_int64(s, 2, (sqlite3_int64)(now - pol->lifetime));
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		fail(st, "prune");
		return;
	}
	log_msg(LOG_DEBUG, "ev=greylist_pruned store=sqlite rows=%d",
		sqlite3_changes(st->db));
}

const struct greylist_store_ops greylist_sqlite_ops = {
    .scheme = "sqlite:",
    .open = sqlite_open,
    .begin = sqlite_begin,
    .update = sqlite_update,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .prune = sqlite_prune,
    .close = sqlite_close,
};
