/*
 * sandbox.h - what postern gives up once it is listening: the account it
 * was started as (root, for port 25), its capabilities, file-system
 * access outside the directories its config names (Landlock) and every
 * system call it does not need (seccomp).  docs/design/sandbox.md.
 *
 * The order, in server_new():
 *	sandbox_user_resolve	root: [server] user is required
 *	... config, users, TLS key read; listeners and control socket bound
 *	sandbox_prepare_dirs	spool, mail and state directories: created,
 *				owned by the user
 *	sandbox_drop		groups, gid, uid; capabilities; no_new_privs
 *	sandbox_landlock	before any thread exists: threads inherit it
 *	... spool, workers, resolver started
 *	sandbox_seccomp		on every thread at once (TSYNC)
 */
#ifndef POSTERN_SERVER_SANDBOX_H
#define POSTERN_SERVER_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/config.h"

struct sandbox_user {
	bool drop; /* started as root: become uid/gid */
	uid_t uid;
	gid_t gid;
	char name[64];
};

/* Started as root: looks up [server] user (required, not root itself).
 * Otherwise: runs as who started it (drop false), noting a differing
 * [server] user in the log.  -1 with err naming the fix. */
int sandbox_user_resolve(const struct config *cfg, struct sandbox_user *u,
			 char *err, size_t size);

/* Creates the spool directory, the base of the mail template and the
 * directory of an SQLite greylist store; as root also gives them (and,
 * for spool and state, everything in them) to the user.  -1 with err. */
int sandbox_prepare_dirs(const struct config *cfg, const struct sandbox_user *u,
			 char *err, size_t size);

/* Gives one file (the control socket) to the user; 0 when not root. */
int sandbox_give(const char *path, const struct sandbox_user *u, char *err,
		 size_t size);

/* Becomes the user (root) and clears every capability either way; sets
 * no_new_privs.  -1 with err: the caller must not go on. */
int sandbox_drop(const struct sandbox_user *u, char *err, size_t size);

/* Warns, once at start, about files a reload re-reads that the user
 * cannot read (the TLS key, the users file, the config itself). */
void sandbox_check_reload_files(const struct config *cfg,
				const struct sandbox_user *u);

/* Restricts the file system to what the config names (read: the config's
 * files and the system's /etc and /usr; read-write: spool, mail, state
 * and control socket directories).  A kernel without Landlock: logged
 * once, and postern runs on.  -1 with err only when a rule fails. */
int sandbox_landlock(const struct config *cfg, char *err, size_t size);

/* Installs the system-call allow-list on every thread of the process.
 * A call outside it fails with ENOSYS and logs its name once
 * (ev=seccomp_denied).  Off in sanitizer builds (logged).  -1 with err. */
int sandbox_seccomp(char *err, size_t size);

/* Tells systemd (Type=notify) a state, e.g. "READY=1"; nothing when
 * NOTIFY_SOCKET is unset. */
void sandbox_notify(const char *state);

#endif
