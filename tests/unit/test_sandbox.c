/*
 * test_sandbox.c - the seccomp filter and the Landlock rules, each put on
 * a forked child: a call outside the allow-list fails with ENOSYS and
 * names itself on stderr; a process stays a thread-maker, not a
 * process-maker; outside the config's directories nothing can be read or
 * written, inside the spool and mail directories everything a delivery
 * does works (a rename from tmp/ to new/ included).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "server/sandbox.h"

static char dir[] = "/tmp/postern-test-sandbox-XXXXXX";
static char outside[] = "/tmp/postern-test-outside-XXXXXX";

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

static void
write_file(const char *base, const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s", base, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL || mkdtemp(outside) == NULL)
		return -1;
	write_file(dir, "users", "alice@example.test\n");
	write_file(dir, "postern.conf",
		   "[server]\nsmtp = 127.0.0.1:2525\n[spool]\ndir = spool\n"
		   "[local]\ndomains = example.test\nusers = users\n"
		   "maildir = mail/%d/%u\n");
	write_file(outside, "secret", "not for postern\n");
	return 0;
}

/* Runs fn in a child with its stderr in a file; returns the exit status
 * and leaves what it wrote in out. */
static int
in_child(void (*fn)(void), char *out, size_t size)
{
	char path[600];
	pid_t pid;
	int status, fd;
	ssize_t n;

	snprintf(path, sizeof path, "%s/stderr", dir);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(90);
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, out, size - 1);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void *
thread_main(void *arg)
{
	return arg;
}

static void
seccomp_child(void)
{
	static int token;
	char err[256];
	int fds[2], n = -1;
	pthread_t t;
	void *ret = NULL;

	if (sandbox_seccomp(err, sizeof err) != 0)
		_exit(91);
	/* Allowed: threads, files. */
	if (pthread_create(&t, NULL, thread_main, &token) != 0 ||
	    pthread_join(t, &ret) != 0 || ret != &token)
		_exit(92);
	if (getpid() <= 0)
		_exit(93);
	/* Not allowed: a new process, a program, ptrace. */
	if (fork() != -1 || errno != ENOSYS)
		_exit(94);
	if (syscall(SYS_ptrace, 0, 0, 0, 0) != -1 || errno != ENOSYS)
		_exit(95);
	if (syscall(SYS_setuid, 0) != -1 || errno != ENOSYS)
		_exit(96);
	/* ioctl: FIONREAD yes, a terminal's input queue no. */
	if (pipe(fds) != 0 || ioctl(fds[0], FIONREAD, &n) != 0 || n != 0)
		_exit(97);
	if (ioctl(fds[0], TIOCSTI, "x") != -1 || errno != ENOSYS)
		_exit(98);
	_exit(0);
}

static void
test_seccomp_allows_threads_and_names_what_it_refuses(void **state)
{
	char out[4096];
	int rc;

	(void)state;
#ifdef SANITIZED
	skip();
#endif
	rc = in_child(seccomp_child, out, sizeof out);
	if (rc != 0)
		fprintf(stderr, "child said:\n%s\n", out);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "ev=seccomp_denied syscall=ptrace"));
	assert_non_null(strstr(out, "ev=seccomp_denied syscall=setuid"));
	/* fork() is clone without CLONE_THREAD */
	assert_non_null(strstr(out, "ev=seccomp_denied syscall=clone "));
	assert_non_null(strstr(out, "ev=seccomp_denied syscall=ioctl"));
}

static struct config *child_cfg;

static int
try_open(const char *base, const char *name, int flags)
{
	char path[600];
	int fd;

	snprintf(path, sizeof path, "%s/%s", base, name);
	fd = open(path, flags | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	return fd >= 0 ? 0 : errno;
}

static void
landlock_child(void)
{
	char err[256], a[600], b[600];

	if (sandbox_landlock(child_cfg, err, sizeof err) != 0)
		_exit(81);
	if (syscall(SYS_landlock_create_ruleset, NULL, 0, 1UL) < 0)
		_exit(0); /* no Landlock here: nothing to see */
	/* Outside: neither read nor write. */
	if (try_open(outside, "secret", O_RDONLY) != EACCES)
		_exit(82);
	if (try_open(outside, "new", O_WRONLY | O_CREAT) != EACCES)
		_exit(83);
	/* The config directory: read, not write. */
	if (try_open(dir, "users", O_RDONLY) != 0)
		_exit(84);
	if (try_open(dir, "users", O_WRONLY) != EACCES)
		_exit(85);
	/* Mail: a Maildir delivery, tmp/ to new/. */
	snprintf(a, sizeof a, "%s/mail/example.test/alice/tmp", dir);
	snprintf(b, sizeof b, "%s/mail/example.test/alice/new", dir);
	if (mkdir(a, 0700) != 0 || mkdir(b, 0700) != 0)
		_exit(86);
	if (try_open(a, "m1", O_WRONLY | O_CREAT | O_EXCL) != 0)
		_exit(87);
	snprintf(a, sizeof a, "%s/mail/example.test/alice/tmp/m1", dir);
	snprintf(b, sizeof b, "%s/mail/example.test/alice/new/m1", dir);
	if (rename(a, b) != 0)
		_exit(88);
	/* The spool: create, truncate, remove. */
	snprintf(a, sizeof a, "%s/spool", dir);
	if (try_open(a, "seg", O_WRONLY | O_CREAT | O_TRUNC) != 0)
		_exit(89);
	snprintf(a, sizeof a, "%s/spool/seg", dir);
	if (unlink(a) != 0)
		_exit(79);
	_exit(0);
}

static void
test_landlock_keeps_postern_to_its_directories(void **state)
{
	char path[600], out[4096], err[256], *errors = NULL;
	struct sandbox_user u = {0};
	int rc;

	(void)state;
	snprintf(path, sizeof path, "%s/postern.conf", dir);
	child_cfg = config_load(path, &errors);
	assert_non_null(child_cfg);
	assert_int_equal(sandbox_prepare_dirs(child_cfg, &u, err, sizeof err),
			 0);
	snprintf(path, sizeof path, "%s/mail/example.test", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/mail/example.test/alice", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	rc = in_child(landlock_child, out, sizeof out);
	if (rc != 0)
		fprintf(stderr, "child exit %d, said:\n%s\n", rc, out);
	assert_int_equal(rc, 0);
	config_free(child_cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
		test_seccomp_allows_threads_and_names_what_it_refuses),
	    cmocka_unit_test(test_landlock_keeps_postern_to_its_directories),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
