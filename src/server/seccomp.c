/*
 * seccomp.c - the system calls a running postern may make (sandbox.h).
 *
 * The list was found by running the whole integration suite (every
 * listener, TLS, AUTH, Maildir, mbox, LMTP, milter, greylisting in SQLite
 * and Redis, DNS through c-ares, SMTP delivery, reloads, full disks) as
 * root with the filter on: a call outside it is not made, fails with
 * ENOSYS and writes one ev=seccomp_denied line naming it, which the test
 * harness treats as a failure.  docs/design/sandbox.md has the method.
 *
 * Not on the list, on purpose: execve and execveat, fork (clone without
 * CLONE_THREAD), ptrace, mount, setuid and friends (the drop is done),
 * prctl, bind and listen (every listener exists before the filter),
 * kernel modules, keyrings, bpf, ioctl other than the five below, and
 * sockets other than AF_UNIX, AF_INET and AF_INET6.  clone3 answers ENOSYS: its
 * flags live in memory where a filter cannot read them, and glibc falls back to
 * clone.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <ucontext.h>
#include <unistd.h>

#include <seccomp.h>

#include "server/sandbox.h"
#include "util/log.h"
#include "util/str.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) ||     \
    __has_feature(thread_sanitizer)
#define SANDBOX_SANITIZED 1
#endif
#endif

static const char *const allowed[] = {
    /* files and directories */
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "open",
    "openat",
    "openat2",
    "close",
    "close_range",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "lseek",
    "access",
    "faccessat",
    "faccessat2",
    "getdents64",
    "getcwd",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "mkdir",
    "mkdirat",
    "rmdir",
    "readlink",
    "readlinkat",
    "fchmod",
    "fchmodat",
    "chmod",
    "umask",
    "fsync",
    "fdatasync",
    "syncfs",
    "sync_file_range",
    "ftruncate",
    "fallocate",
    "fadvise64",
    "flock",
    "fcntl",
    "utimensat",
    "dup",
    "dup2",
    "dup3",
    "pipe",
    "pipe2",
    "sendfile",
    "copy_file_range",
    "splice",
    /* memory */
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "brk",
    "mincore",
    /* signals */
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "rt_sigtimedwait",
    "tgkill",
    "tkill",
    "restart_syscall",
    /* the network; socket() is narrowed below */
    "connect",
    "accept",
    "accept4",
    "getsockname",
    "getpeername",
    "setsockopt",
    "getsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    "socketpair",
    /* waiting */
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd2",
    "timerfd_create",
    "timerfd_settime",
    "nanosleep",
    "clock_nanosleep",
    "futex",
    "sched_yield",
    /* threads and the process */
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "set_tid_address",
    "exit",
    "exit_group",
    "getpid",
    "gettid",
    "getppid",
    "sched_getaffinity",
    "membarrier",
    /* who and where */
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "uname",
    "sysinfo",
    "getrlimit",
    "prlimit64",
    "getrusage",
    "times",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "getrandom",
};

/* ioctl(2) reaches every driver: only what libevent and the C library ask
 * of sockets and descriptors. */
static const unsigned long ioctls[] = {FIONREAD, FIONBIO, FIOCLEX, FIONCLEX,
				       TCGETS};

/* Names by number for the SIGSYS handler, which may not allocate. */
#define SECCOMP_NR_MAX 512
#define SECCOMP_NAME_MAX 32
static char names[SECCOMP_NR_MAX][SECCOMP_NAME_MAX];
static volatile sig_atomic_t seen[SECCOMP_NR_MAX];

static size_t
put(char *buf, size_t n, size_t cap, const char *s)
{
	while (*s && n < cap)
		buf[n++] = *s++;
	return n;
}

static size_t
put_uint(char *buf, size_t n, size_t cap, unsigned v)
{
	char d[12];
	size_t k = 0;

	do {
		d[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && k < sizeof d);
	while (k && n < cap)
		buf[n++] = d[--k];
	return n;
}

/* A call outside the list: say which, once per call, and make it fail
 * with ENOSYS.  Only async-signal-safe work here. */
static void
on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	char line[256];
	size_t n = 0, cap = sizeof line - 1;
	int nr = si->si_syscall;
	ucontext_t *uc = ctx;

	(void)sig;
	if (nr < 0 || nr >= SECCOMP_NR_MAX || !seen[nr]) {
		if (nr >= 0 && nr < SECCOMP_NR_MAX)
			seen[nr] = 1;
		n = put(line, n, cap, "ERR ev=seccomp_denied syscall=");
		n = put(line, n, cap,
			nr >= 0 && nr < SECCOMP_NR_MAX && names[nr][0]
			    ? names[nr]
			    : "unknown");
		n = put(line, n, cap, " nr=");
		n = put_uint(line, n, cap, (unsigned)nr);
		n = put(line, n, cap,
			" fix=\"a system call outside postern's allow-list "
			"(src/server/seccomp.c): report it\"\n");
		(void)!write(STDERR_FILENO, line, n);
	}
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
	uc->uc_mcontext.regs[0] = (unsigned long long)-ENOSYS;
#else
	(void)uc;
	_exit(70);
#endif
}

static int
add_rules(scmp_filter_ctx f)
{
	static const int families[] = {AF_UNIX, AF_INET, AF_INET6};

	for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) {
		int nr = seccomp_syscall_resolve_name(allowed[i]);
		/* A name this architecture lacks (open on arm64) is fine. */
		if (nr == __NR_SCMP_ERROR)
			continue;
		if (seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 0) != 0)
			return -1;
	}
	for (size_t i = 0; i < sizeof families / sizeof *families; i++)
		if (seccomp_rule_add(
			f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
			SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i])) != 0)
			return -1;
	for (size_t i = 0; i < sizeof ioctls / sizeof *ioctls; i++)
		if (seccomp_rule_add(
			f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)ioctls[i])) != 0)
			return -1;
	/* Threads, not processes. */
	if (seccomp_rule_add(
		f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
		SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)) != 0 ||
	    seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) !=
		0)
		return -1;
	return 0;
}

int
sandbox_seccomp(char *err, size_t size)
{
	struct sigaction sa;
	scmp_filter_ctx f;
	int r;

#ifdef SANDBOX_SANITIZED
	(void)err;
	(void)size;
	(void)add_rules;
	(void)on_sigsys;
	/* The sanitizers' own calls (reports, stack walks, shadow memory)
	 * are no part of postern's list. */
	log_msg(LOG_INFO, "ev=seccomp_off reason=sanitizer_build");
	return 0;
#else
	for (int nr = 0; nr < SECCOMP_NR_MAX; nr++) {
		char *name =
		    seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		if (name != NULL)
			str_set(names[nr], sizeof names[nr], name);
		free(name);
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) != 0) {
		snprintf(err, size, "cannot catch SIGSYS: %s", strerror(errno));
		return -1;
	}
	f = seccomp_init(SCMP_ACT_TRAP);
	if (f == NULL) {
		snprintf(err, size, "cannot build the seccomp filter");
		return -1;
	}
	r = seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1);
	if (r == 0)
		r = add_rules(f);
	if (r == 0)
		r = seccomp_load(f);
	seccomp_release(f);
	if (r != 0) {
		snprintf(err, size, "cannot load the seccomp filter: %s",
			 strerror(r < 0 ? -r : errno));
		return -1;
	}
	/* + socket, ioctl and clone, allowed with their arguments */
	log_msg(LOG_INFO, "ev=seccomp calls=%zu",
		sizeof allowed / sizeof *allowed + 3);
	return 0;
#endif
}
