/*
 * mbox.c - the mbox mailbox: one file per user, messages appended.
 *
 * Locking as mail readers do it on Debian (mutt, Dovecot's mbox driver):
 * first the dotlock, path.lock (a pid file hard-linked into place), then
 * an fcntl write lock on the file.  Both are taken without waiting: when someone else holds
 * one, delivery reports EWOULDBLOCK and the worker tries again shortly,
 * and RCPT for the user is answered 450 4.2.1 meanwhile (REPLY-CODES.md:
 * a mailbox locked or busy).  The format is mboxrd: a "From " line, the
 * message with LF line ends and every line matching /^>*From / given one
 * more ">", then an empty line.  The append is fsync'd before the
 * recipient is reported done; a failed write is truncated away.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deliver/mbox.h"
#include "util/fs.h"
#include "util/str.h"

#define MBOX_MODE 0600
#define MBOX_DIR_MODE 0700
#define MBOX_HEAD_MAX 1024

static bool
lock_path(const char *path, char *buf, size_t size)
{
	return snprintf(buf, size, "%s.lock", path) < (int)size;
}

/* True when the dotlock holds our pid: our own delivery, not a reader. */
static bool
is_own_dotlock(const char *lock)
{
	char buf[32], want[32];
	int fd = open(lock, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	snprintf(want, sizeof want, "%ld\n", (long)getpid());
	return n > 0 && (buf[n] = '\0', strcmp(buf, want) == 0);
}

/*
 * Takes the dotlock the NFS-safe way: a unique file holding our pid,
 * hard-linked to path.lock (link fails when the lock exists).  0, or -1
 * with errno (EWOULDBLOCK when someone holds it).
 */
static int
dotlock_take(const char *lock)
{
	char tmp[PATH_MAX], pid[32];
	int fd, n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	int r, e;

	if (snprintf(tmp, sizeof tmp, "%s.%ld", lock, (long)getpid()) >=
	    (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, MBOX_MODE);
	if (fd < 0)
		return -1;
	r = write(fd, pid, (size_t)n) == n ? link(tmp, lock) : -1;
	e = errno;
	close(fd);
	unlink(tmp);
	errno = (r != 0 && e == EEXIST) ? EWOULDBLOCK : e;
	return r;
}

bool
mbox_is_locked(const char *path)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	char lock[PATH_MAX];
	int fd;
	bool is_locked = false;

	if (lock_path(path, lock, sizeof lock) && access(lock, F_OK) == 0 &&
	    !is_own_dotlock(lock))
		return true;
	/* fcntl locks of this process never conflict with F_GETLK here. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
		is_locked = true;
	close(fd);
	return is_locked;
}

/* True when line[0..len) is ">*From " and needs one more ">". */
static bool
needs_quote(const char *line, size_t len)
{
	size_t i = 0;

	while (i < len && line[i] == '>')
		i++;
	return len - i >= 5 && memcmp(line + i, "From ", 5) == 0;
}

/* The mboxrd text of recipient idx: From line, headers, quoted body. */
static char *
render(const struct msg *m, size_t idx, size_t *len_out)
{
	char head[MBOX_HEAD_MAX], date[64];
	time_t t = (time_t)m->arrival;
	struct tm tm;
	size_t cap, o;
	char *out;
	int h;

	gmtime_r(&t, &tm);
	strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
	h = snprintf(head, sizeof head,
		     "From %s %s\nReturn-Path: <%s>\nDelivered-To: %s\n",
		     m->sender[0] ? m->sender : "MAILER-DAEMON", date,
		     m->sender, m->rcpts[idx].mailbox);
	if (h < 0 || (size_t)h >= sizeof head)
		return NULL;
	/* Worst case: every line gains a ">"; plus the final newlines. */
	cap = (size_t)h + m->data_len * 2 + 3;
	if ((out = malloc(cap)) == NULL)
		return NULL;
	memcpy(out, head, (size_t)h);
	o = (size_t)h;
	for (size_t i = 0; i < m->data_len;) {
		const char *nl = memchr(m->data + i, '\n', m->data_len - i);
		size_t end = nl ? (size_t)(nl - m->data) : m->data_len;
		size_t len = end - i;
		if (len > 0 && m->data[end - 1] == '\r' && nl != NULL)
			len--;
		if (needs_quote(m->data + i, len))
			out[o++] = '>';
		memcpy(out + o, m->data + i, len);
		o += len;
		out[o++] = '\n';
		i = nl ? end + 1 : m->data_len;
	}
	out[o++] = '\n'; /* the empty line that ends a message */
	*len_out = o;
	return out;
}

static int
append(int fd, const char *buf, size_t len)
{
	struct stat st;
	size_t done = 0;

	if (fstat(fd, &st) != 0)
		return -1;
	while (done < len) {
		ssize_t w = write(fd, buf + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;
			/* Never leave half a message behind. */
			if (ftruncate(fd, st.st_size) != 0)
				e = errno;
			errno = e;
			return -1;
		}
		done += (size_t)w;
	}
	return fsync(fd);
}

int
mbox_deliver(const char *path, const struct msg *m, size_t idx)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	char lock[PATH_MAX], dir[PATH_MAX], *slash, *text;
	size_t len;
	int fd, r = -1, e;

	if (!lock_path(path, lock, sizeof lock) ||
	    !str_set(dir, sizeof dir, path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (fs_mkdirs(dir, MBOX_DIR_MODE) != 0)
			return -1;
	}
	if ((text = render(m, idx, &len)) == NULL)
		return -1;
	if (dotlock_take(lock) != 0) {
		e = errno;
		free(text);
		errno = e;
		return -1;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, MBOX_MODE);
	if (fd >= 0 && fcntl(fd, F_SETLK, &fl) != 0)
		errno = (errno == EACCES || errno == EAGAIN) ? EWOULDBLOCK
							     : errno;
	else if (fd >= 0)
		r = append(fd, text, len);
	e = errno;
	if (fd >= 0)
		close(fd); /* drops the fcntl lock */
	unlink(lock);
	free(text);
	errno = e;
	return r;
}
