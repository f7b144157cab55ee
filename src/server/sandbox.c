/*
 * sandbox.c - the account, the directories, the capabilities and the
 * file-system view of a running postern (sandbox.h).  The system-call
 * filter is in seccomp.c.
 *
 * Started as root, postern keeps root only to bind its listeners, read
 * its config and TLS key, make its directories its user's and create its
 * control socket; every byte from the network is parsed after the drop.
 * Directories are created with 0755 parents (the user must be able to
 * walk to them) and given to the user: the spool and the state directory
 * wholly, the mail tree down to the first directory it already owns.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/landlock.h>

#include "server/sandbox.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/str.h"

#define SANDBOX_PARENT_MODE 0755
/* Searchable by all: `sendmail` of any local user reaches maildrop/;
 * what is in the spool is 0600. */
#define SANDBOX_SPOOL_MODE 0711
#define SANDBOX_FTW_FDS 32

int
sandbox_user_resolve(const struct config *cfg, struct sandbox_user *u,
		     char *err, size_t size)
{
	const char *name = cfg->server_user;
	struct passwd *pw;

	memset(u, 0, sizeof *u);
	if (geteuid() != 0) {
		u->uid = geteuid();
		u->gid = getegid();
		if (name[0] != '\0') {
			pw = getpwnam(name);
			if (pw == NULL || pw->pw_uid != u->uid)
				log_msg(LOG_INFO,
					"ev=user_kept user=%s uid=%u reason="
					"not_started_as_root",
					log_q(name), (unsigned)u->uid);
		}
		return 0;
	}
	if (name[0] == '\0') {
		snprintf(err, size,
			 "started as root without [server] user in %s: set "
			 "[server] user = postern (an account of its own, e.g. "
			 "useradd --system --user-group postern), or start "
			 "postern as an ordinary user",
			 cfg->path);
		return -1;
	}
	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL) {
		snprintf(err, size,
			 "[server] user = %s in %s: no such account; create "
			 "it (useradd --system --user-group %s) or name "
			 "another",
			 name, cfg->path, name);
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(err, size,
			 "[server] user = %s in %s: that account is root "
			 "(uid or gid 0); name an account of its own",
			 name, cfg->path);
		return -1;
	}
	u->drop = true;
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	str_set(u->name, sizeof u->name, name);
	return 0;
}

/* nftw() has no argument for its callback: one walk at a time (start-up
 * runs on one thread). */
static const struct sandbox_user *walk_user;
static bool walk_prune;
static int walk_errno;
static char walk_at[PATH_MAX]; /* the entry that stopped the walk */

static int
give_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	str_set(walk_at, sizeof walk_at, path);
	if (type == FTW_NS || type == FTW_DNR) {
		walk_errno = EACCES;
		return FTW_STOP;
	}
	if (st->st_uid == walk_user->uid && st->st_gid == walk_user->gid)
		return walk_prune && type == FTW_D && ftw->level > 0
			   ? FTW_SKIP_SUBTREE
			   : FTW_CONTINUE;
	/* A second name of someone else's file (a hard link the user made
	 * to /etc/shadow, say) is not given away. */
	if (type == FTW_F && st->st_nlink > 1) {
		walk_errno = EMLINK;
		return FTW_STOP;
	}
	if (lchown(path, walk_user->uid, walk_user->gid) != 0) {
		walk_errno = errno;
		return FTW_STOP;
	}
	return FTW_CONTINUE;
}

/* Gives path and what is below it to the user; with prune, a directory
 * below path that the user already owns is taken as done. */
static int
give_tree(const char *path, const struct sandbox_user *u, bool prune, char *err,
	  size_t size)
{
	walk_user = u;
	walk_prune = prune;
	walk_errno = 0;
	walk_at[0] = '\0';
	if (nftw(path, give_entry, SANDBOX_FTW_FDS,
		 FTW_PHYS | FTW_ACTIONRETVAL) == 0 &&
	    walk_errno == 0)
		return 0;
	if (walk_errno == EMLINK)
		snprintf(err, size,
			 "%s has a second name (a hard link) and is not "
			 "[server] user %s's: remove it from %s, or make it "
			 "that user's yourself if it is mail",
			 walk_at, u->name, path);
	else
		snprintf(err, size,
			 "cannot give %s to [server] user %s: %s; fix its "
			 "ownership (chown -R %s: %s)",
			 walk_at[0] ? walk_at : path, u->name,
			 strerror(walk_errno ? walk_errno : errno), u->name,
			 path);
	return -1;
}

/* The directory part of path: "." for a bare name, "" for "/x" or "". */
static void
dir_of(const char *path, char *out, size_t size)
{
	const char *slash = strrchr(path, '/');

	out[0] = '\0';
	if (slash != NULL && slash != path)
		str_copy(out, size, path, (size_t)(slash - path));
	else if (slash == NULL && path[0] != '\0')
		str_set(out, size, ".");
}

/* mkdir -p with parents 0755 and the last one mode; "" is nothing. */
static int
make_dir(const char *path, mode_t mode, const char *key, char *err, size_t size)
{
	char parent[PATH_MAX];

	if (path[0] == '\0')
		return 0;
	dir_of(path, parent, sizeof parent);
	if (parent[0] != '\0' && fs_mkdirs(parent, SANDBOX_PARENT_MODE) != 0)
		goto fail;
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		goto fail;
	return 0;
fail:
	snprintf(err, size,
		 "cannot create the directory %s: %s; create it "
		 "or change %s",
		 path, strerror(errno), key);
	return -1;
}

/* Adds search permission for all (an older spool was 0700; mkdir's
 * mode is cut by the umask). */
static int
searchable(const char *path, char *err, size_t size)
{
	struct stat st;

	if (stat(path, &st) != 0)
		goto fail;
	if ((st.st_mode & 0011) == 0011 ||
	    (st.st_uid != geteuid() && geteuid() != 0))
		return 0;
	if (chmod(path, (st.st_mode & 07777) | 0011) == 0)
		return 0;
fail:
	snprintf(err, size, "cannot make %s searchable: %s; chmod 711 it",
		 path, strerror(errno));
	return -1;
}

/* The directory part of a %-template: up to the last '/' before the
 * first '%' ("/var/mail/vhosts/%d/%u" -> "/var/mail/vhosts"). */
static bool
template_base(const char *tmpl, char *out, size_t size)
{
	const char *pct = strchr(tmpl, '%');
	size_t n = pct ? (size_t)(pct - tmpl) : strlen(tmpl);

	while (n > 0 && tmpl[n - 1] != '/')
		n--;
	while (n > 1 && tmpl[n - 1] == '/')
		n--;
	return n > 0 && str_copy(out, size, tmpl, n);
}

/* The directory of an SQLite greylist store, "" for none. */
static void
state_dir(const struct config *cfg, char *out, size_t size)
{
	const char *spec = cfg->greylist_store;
	char path[PATH_MAX];

	out[0] = '\0';
	if (!cfg->greylist_enabled || strncmp(spec, "sqlite:", 7) != 0)
		return;
	spec += 7;
	if (spec[0] == '\0')
		return;
	if (spec[0] == '/')
		str_set(path, sizeof path, spec);
	else
		snprintf(path, sizeof path, "%s/%s", cfg->dir, spec);
	dir_of(path, out, size);
}

int
sandbox_prepare_dirs(const struct config *cfg, const struct sandbox_user *u,
		     char *err, size_t size)
{
	char mail[PATH_MAX], state[PATH_MAX];

	state_dir(cfg, state, sizeof state);
	if (make_dir(cfg->spool_dir, SANDBOX_SPOOL_MODE, "[spool] dir", err,
		     size) != 0 ||
	    searchable(cfg->spool_dir, err, size) != 0 ||
	    make_dir(state, SANDBOX_PARENT_MODE, "[greylist] store", err,
		     size) != 0)
		return -1;
	if (!template_base(cfg->maildir_path, mail, sizeof mail))
		mail[0] = '\0';
	if (make_dir(mail, SANDBOX_PARENT_MODE, "[local] maildir", err, size) !=
	    0)
		return -1;
	if (!u->drop)
		return 0;
	if (give_tree(cfg->spool_dir, u, false, err, size) != 0 ||
	    (state[0] != '\0' && give_tree(state, u, false, err, size) != 0))
		return -1;
	if (mail[0] != '\0' && strcmp(mail, "/") != 0 &&
	    give_tree(mail, u, true, err, size) != 0)
		return -1;
	return 0;
}

int
sandbox_give(const char *path, const struct sandbox_user *u, char *err,
	     size_t size)
{
	if (!u->drop || path[0] == '\0')
		return 0;
	if (lchown(path, u->uid, u->gid) != 0) {
		snprintf(err, size, "cannot give %s to [server] user %s: %s",
			 path, u->name, strerror(errno));
		return -1;
	}
	return 0;
}

/* Clears the effective, permitted and inheritable sets of this thread and
 * the ambient set: what an ordinary start with AmbientCapabilities=
 * (systemd) would otherwise keep. */
static int
clear_caps(void)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof data);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 &&
	    errno != EINVAL)
		return -1;
	return (int)syscall(SYS_capset, &hdr, data);
}

int
sandbox_drop(const struct sandbox_user *u, char *err, size_t size)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (u->drop) {
		if (setgroups(0, NULL) != 0 ||
		    setresgid(u->gid, u->gid, u->gid) != 0 ||
		    setresuid(u->uid, u->uid, u->uid) != 0) {
			snprintf(err, size,
				 "cannot become [server] user %s: %s", u->name,
				 strerror(errno));
			return -1;
		}
		if (getresuid(&ru, &eu, &su) != 0 ||
		    getresgid(&rg, &eg, &sg) != 0 || ru != u->uid ||
		    eu != u->uid || su != u->uid || rg != u->gid ||
		    eg != u->gid || sg != u->gid || setuid(0) == 0) {
			snprintf(err, size,
				 "the switch to [server] user %s "
				 "did not hold; refusing to run",
				 u->name);
			return -1;
		}
	}
	if (clear_caps() != 0) {
		snprintf(err, size, "cannot clear capabilities: %s",
			 strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, size, "cannot set no_new_privs: %s",
			 strerror(errno));
		return -1;
	}
	if (u->drop)
		log_msg(LOG_INFO, "ev=privileges_dropped user=%s uid=%u gid=%u",
			log_q(u->name), (unsigned)u->uid, (unsigned)u->gid);
	return 0;
}

static void
check_readable(const char *path, const char *key, const char *user)
{
	if (path[0] == '\0' || access(path, R_OK) == 0)
		return;
	log_msg(LOG_WARN,
		"ev=reload_cannot_read file=%s key=%s user=%s error=%s "
		"fix=%s",
		log_q(path), log_q(key), log_q(user), log_q(strerror(errno)),
		log_q("make it readable by the user, e.g. chgrp it to the "
		      "user's group and chmod 640"));
}

void
sandbox_check_reload_files(const struct config *cfg,
			   const struct sandbox_user *u)
{
	if (!u->drop)
		return;
	check_readable(cfg->path, "config", u->name);
	check_readable(cfg->local_users, "[local] users", u->name);
	check_readable(cfg->local_forwards, "[local] forwards", u->name);
	if (cfg->has_tls) {
		check_readable(cfg->tls_cert, "[tls] cert", u->name);
		check_readable(cfg->tls_key, "[tls] key", u->name);
	}
}

/* -- Landlock (linux/landlock.h; glibc 2.36 has no wrappers) */

#define LL_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_WRITE                                                               \
	(LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |       \
	 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |        \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |          \
	 LANDLOCK_ACCESS_FS_REFER)
#define LL_ALL                                                                 \
	(LL_READ | LL_WRITE | LANDLOCK_ACCESS_FS_EXECUTE |                     \
	 LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_FIFO |         \
	 LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM)
/* ABI 3 adds truncate(2) and O_TRUNC as their own right. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

static int
ll_add(int ruleset, const char *path, __u64 access, __u64 handled)
{
	struct landlock_path_beneath_attr pb = {0};
	struct stat st;
	int fd, r;

	if (path[0] == '\0')
		return 0;
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	/* A file takes only file rights. */
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		access &= LANDLOCK_ACCESS_FS_READ_FILE |
			  LANDLOCK_ACCESS_FS_WRITE_FILE |
			  LANDLOCK_ACCESS_FS_EXECUTE |
			  LANDLOCK_ACCESS_FS_TRUNCATE;
	pb.allowed_access = access & handled;
	pb.parent_fd = fd;
	r = (int)syscall(SYS_landlock_add_rule, ruleset,
			 LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	close(fd);
	return r;
}

int
sandbox_landlock(const struct config *cfg, char *err, size_t size)
{
	static const char *const system_ro[] = {"/etc", "/run", "/proc", "/sys",
						"/dev"};
	struct landlock_ruleset_attr attr = {0};
	char mail[PATH_MAX], state[PATH_MAX], d[PATH_MAX];
	const char *files[] = {cfg->path,	    cfg->local_users,
			       cfg->local_forwards, cfg->delivery_routes,
			       cfg->tls_cert,	    cfg->tls_key,
			       cfg->delivery_tls_ca,
			       cfg->delivery_relay_password_file};
	const char *rw[3];
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
			   LANDLOCK_CREATE_RULESET_VERSION);
	__u64 handled, rw_access;
	int rs, bad = 0;

	if (abi < 2) {
		/* ABI 1 refuses every rename across directories, which a
		 * Maildir delivery (tmp/ to new/) needs. */
		log_msg(LOG_INFO, "ev=landlock_off reason=%s",
			abi < 0 ? "kernel_without_landlock" : "abi_1");
		return 0;
	}
	handled = LL_ALL | (abi >= 3 ? LANDLOCK_ACCESS_FS_TRUNCATE : 0);
	rw_access =
	    LL_READ | LL_WRITE | (abi >= 3 ? LANDLOCK_ACCESS_FS_TRUNCATE : 0);
	attr.handled_access_fs = handled;
	rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
	if (rs < 0) {
		snprintf(err, size, "cannot create a Landlock ruleset: %s",
			 strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof system_ro / sizeof *system_ro; i++)
		bad |= ll_add(rs, system_ro[i], LL_READ, handled);
	bad |=
	    ll_add(rs, "/usr", LL_READ | LANDLOCK_ACCESS_FS_EXECUTE, handled);
	bad |= ll_add(rs, "/dev/null", LL_READ | LANDLOCK_ACCESS_FS_WRITE_FILE,
		      handled);
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		dir_of(files[i], d, sizeof d);
		bad |= ll_add(rs, d, LL_READ, handled);
	}
	bad |= ll_add(rs, cfg->dir, LL_READ, handled);
	bad |= ll_add(rs, cfg->dkim_keys, LL_READ, handled);
	state_dir(cfg, state, sizeof state);
	if (!template_base(cfg->maildir_path, mail, sizeof mail))
		mail[0] = '\0';
	rw[0] = cfg->spool_dir;
	rw[1] = mail;
	rw[2] = state;
	for (size_t i = 0; i < sizeof rw / sizeof *rw; i++)
		bad |= ll_add(rs, rw[i], rw_access, handled);
	dir_of(cfg->control_socket, d, sizeof d);
	bad |= ll_add(rs, d, LANDLOCK_ACCESS_FS_REMOVE_FILE, handled);
	if (bad != 0 || syscall(SYS_landlock_restrict_self, rs, 0) != 0) {
		snprintf(err, size, "cannot apply the Landlock rules: %s",
			 strerror(errno));
		close(rs);
		return -1;
	}
	close(rs);
	log_msg(LOG_INFO, "ev=landlock abi=%ld", abi);
	return 0;
}

void
sandbox_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    !str_set(sun.sun_path, sizeof sun.sun_path, path))
		return;
	len =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0'; /* an abstract socket */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		   (struct sockaddr *)&sun, len) < 0)
		log_msg(LOG_WARN, "ev=notify_failed state=%s error=%s",
			log_q(state), log_q(strerror(errno)));
	close(fd);
}
