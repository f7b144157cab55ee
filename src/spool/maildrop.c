/*
 * maildrop.c - the maildrop file: `postern send` writes one per message
 * (cli/send.c), the server reads it, commits it to the spool and removes
 * it (route/pickup.c).  docs/design/outbound.md, "postern send".
 *
 * Promises: maildrop_write returns only once the file and its directory
 * entry are on disk (tmp file, fsync, rename, fsync of the directory), so
 * a 0 exit of `postern send` means the message survives a crash;
 * maildrop_parse accepts only what maildrop_write makes (the magic line,
 * one sender line, at least one rcpt line, an empty line, CRLF text with
 * no NUL and no bare CR or LF) and says what is wrong otherwise.  Deciding
 * where each recipient goes is the server's (policy/rcpt.c), not ours.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/limits.h"
#include "spool/maildrop.h"
#include "util/fs.h"
#include "util/str.h"

#define MAILDROP_FILE_MODE 0600
#define MAILDROP_SPOOL_MODE 0711
#define MAILDROP_TEXT_CHUNK 65536
/* The envelope lines: keyword, space, an address (or the magic). */
#define MAILDROP_LINE_MAX (SMTP_PATH_MAX + 16)

bool
maildrop_dir_format(const char *spool_dir, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/%s", spool_dir, MAILDROP_SUBDIR);

	return n > 0 && (size_t)n < size;
}

/* mkdir, then the mode itself (mkdir's is cut by the umask) when the
 * directory is ours. */
static int
drop_dir_make(const char *path)
{
	struct stat st;

	if (mkdir(path, MAILDROP_DIR_MODE) != 0 && errno != EEXIST)
		return -1;
	if (stat(path, &st) != 0)
		return -1;
	if (st.st_uid == geteuid() &&
	    (st.st_mode & 07777) != MAILDROP_DIR_MODE &&
	    chmod(path, MAILDROP_DIR_MODE) != 0)
		return -1;
	return 0;
}

int
maildrop_dir_make(const char *dir)
{
	char tmp[PATH_MAX], spool[PATH_MAX];
	const char *slash = strrchr(dir, '/');
	int n = snprintf(tmp, sizeof tmp, "%s/%s", dir, MAILDROP_TMP);

	if (n < 0 || (size_t)n >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* The spool itself, when `postern send` comes before the server
	 * ever ran (the server gives it to its user at start). */
	if (slash != NULL && slash != dir &&
	    str_copy(spool, sizeof spool, dir, (size_t)(slash - dir)) &&
	    fs_mkdirs(spool, MAILDROP_SPOOL_MODE) != 0)
		return -1;
	return drop_dir_make(dir) == 0 && drop_dir_make(tmp) == 0 ? 0 : -1;
}

/* The envelope lines; malloc'd, NULL when out of memory. */
static char *
envelope_format(const struct msg *m, size_t *len_out)
{
	size_t cap = sizeof MAILDROP_MAGIC + 16 + strlen(m->sender), len;
	char *buf;

	for (size_t i = 0; i < m->n_rcpts; i++)
		cap += strlen(m->rcpts[i].orig) + 8;
	buf = malloc(cap);
	if (buf == NULL)
		return NULL;
	len = (size_t)snprintf(buf, cap, "%s\nsender %s\n", MAILDROP_MAGIC,
			       m->sender);
	for (size_t i = 0; i < m->n_rcpts; i++)
		len += (size_t)snprintf(buf + len, cap - len, "rcpt %s\n",
					m->rcpts[i].orig);
	len += (size_t)snprintf(buf + len, cap - len, "\n");
	*len_out = len;
	return buf;
}

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* A name no other writer picks: seconds, pid, 64 random bits. */
static void
name_make(char *out, size_t size)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		r ^= (uint64_t)clock() ^ ((uint64_t)time(NULL) << 32);
	snprintf(out, size, "%lld.%ld.%016" PRIx64, (long long)time(NULL),
		 (long)getpid(), r);
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	if (r != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

/* A file written into a maildrop of another account (the server's:
 * [server] user) must be readable by it: root gives it away, anyone
 * else makes it 0644 (the directory cannot be listed, and the name is
 * random). */
static int
give_to_dir_owner(int fd, const char *dir)
{
	struct stat st;

	if (stat(dir, &st) != 0 || st.st_uid == geteuid())
		return 0;
	if (geteuid() == 0)
		return fchown(fd, st.st_uid, st.st_gid);
	return fchmod(fd, 0644);
}

int
maildrop_write(const char *dir, const struct msg *m, char *name_out,
	       size_t name_size)
{
	char name[MAILDROP_NAME_MAX], tmp[PATH_MAX], final[PATH_MAX];
	size_t hlen = 0;
	char *head = envelope_format(m, &hlen);
	int fd = -1, e;
	bool synced;

	if (head == NULL)
		return -1;
	name_make(name, sizeof name);
	if (snprintf(tmp, sizeof tmp, "%s/%s/%s", dir, MAILDROP_TMP, name) >=
		    (int)sizeof tmp ||
	    snprintf(final, sizeof final, "%s/%s", dir, name) >=
		    (int)sizeof final ||
	    !str_set(name_out, name_size, name)) {
		free(head);
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		  MAILDROP_FILE_MODE);
	if (fd < 0 || give_to_dir_owner(fd, dir) != 0 ||
	    write_all(fd, head, hlen) != 0 ||
	    write_all(fd, m->data, m->data_len) != 0 || fsync(fd) != 0)
		goto fail;
	free(head);
	head = NULL;
	if (rename(tmp, final) != 0)
		goto fail;
	/* The new name on disk too.  A local user may not open the
	 * maildrop (it is not listable): syncfs on the file's own file
	 * system commits the rename as well. */
	synced = fsync_dir(dir) == 0 || (errno == EACCES && syncfs(fd) == 0);
	e = errno;
	if (close(fd) != 0 && synced) {
		synced = false;
		e = errno;
	}
	if (!synced) {
		unlink(final);
		errno = e;
		return -1;
	}
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(head);
	errno = e;
	return -1;
}

/* The next "\n"-ended line at *pos; false at the end or without "\n". */
static bool
next_line(const char *buf, size_t len, size_t *pos, const char **line_out,
	  size_t *line_len_out)
{
	const char *nl;

	if (*pos >= len)
		return false;
	nl = memchr(buf + *pos, '\n', len - *pos);
	if (nl == NULL)
		return false;
	*line_out = buf + *pos;
	*line_len_out = (size_t)(nl - (buf + *pos));
	*pos += *line_len_out + 1;
	return true;
}

/*
 * An envelope address: within the path limit, no control octet (a quoted
 * local part may hold a space).
 */
static bool
is_address(const char *s, size_t len)
{
	if (len > SMTP_PATH_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
			return false;
	return true;
}

/* "KEY value" with key matching; value in *v (NUL-terminated copy). */
static bool
key_value(const char *line, size_t len, const char *key, char *v,
	  size_t size)
{
	size_t kl = strlen(key);

	if (len <= kl || memcmp(line, key, kl) != 0 || line[kl] != ' ' ||
	    !is_address(line + kl + 1, len - kl - 1))
		return false;
	return str_copy(v, size, line + kl + 1, len - kl - 1);
}

/* True when text is CRLF lines: no NUL, no bare CR or LF, CRLF at end. */
static bool
is_crlf_text(const char *p, size_t len, char *err, size_t size)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\0') {
			snprintf(err, size, "NUL octet in the message");
			return false;
		}
		if ((p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n')) ||
		    (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))) {
			snprintf(err, size, "bare CR or LF in the message at "
				 "octet %zu", i);
			return false;
		}
	}
	if (len > 0 && p[len - 1] != '\n') {
		snprintf(err, size, "the message does not end with CRLF");
		return false;
	}
	return true;
}

/* The envelope lines through the empty line; pos at the text after. */
static enum maildrop_result
envelope_parse(struct msg *m, const char *buf, size_t len, size_t *pos,
	       char *err, size_t size)
{
	static const char sender[] = "sender ";
	const size_t sl = sizeof sender - 1;
	char v[MAILDROP_LINE_MAX];
	const char *line;
	size_t ll;

	if (!next_line(buf, len, pos, &line, &ll) ||
	    ll != strlen(MAILDROP_MAGIC) ||
	    memcmp(line, MAILDROP_MAGIC, ll) != 0) {
		snprintf(err, size, "not a maildrop file (no '%s' line)",
			 MAILDROP_MAGIC);
		return MAILDROP_ERR_FORMAT;
	}
	if (!next_line(buf, len, pos, &line, &ll) || ll < sl ||
	    memcmp(line, sender, sl) != 0 ||
	    !is_address(line + sl, ll - sl) ||
	    !str_copy(v, sizeof v, line + sl, ll - sl)) {
		snprintf(err, size, "line 2 is not 'sender ADDRESS'");
		return MAILDROP_ERR_FORMAT;
	}
	free(m->sender);
	m->sender = strdup(v);
	if (m->sender == NULL)
		return MAILDROP_ERR_IO;
	for (;;) {
		if (!next_line(buf, len, pos, &line, &ll)) {
			snprintf(err, size, "the envelope does not end with "
				 "an empty line");
			return MAILDROP_ERR_FORMAT;
		}
		if (ll == 0)
			break;
		if (!key_value(line, ll, "rcpt", v, sizeof v)) {
			snprintf(err, size, "envelope line %zu is not "
				 "'rcpt ADDRESS'", m->n_rcpts + 3);
			return MAILDROP_ERR_FORMAT;
		}
		if (msg_add_rcpt(m, v, v, MSG_ROUTE_REMOTE) != 0)
			return MAILDROP_ERR_IO;
	}
	if (m->n_rcpts == 0) {
		snprintf(err, size, "no 'rcpt ADDRESS' line");
		return MAILDROP_ERR_FORMAT;
	}
	return MAILDROP_OK;
}

enum maildrop_result
maildrop_parse(const char *buf, size_t len, struct msg **m_out, char *err,
	       size_t size)
{
	struct msg *m = msg_new();
	enum maildrop_result r;
	size_t pos = 0;

	*m_out = NULL;
	if (m == NULL) {
		errno = ENOMEM;
		return MAILDROP_ERR_IO;
	}
	r = envelope_parse(m, buf, len, &pos, err, size);
	if (r != MAILDROP_OK) {
		msg_free(m);
		if (r == MAILDROP_ERR_IO)
			errno = ENOMEM;
		return r;
	}
	if (!is_crlf_text(buf + pos, len - pos, err, size)) {
		msg_free(m);
		return MAILDROP_ERR_FORMAT;
	}
	m->data = malloc(len - pos + 1);
	if (m->data == NULL) {
		msg_free(m);
		errno = ENOMEM;
		return MAILDROP_ERR_IO;
	}
	memcpy(m->data, buf + pos, len - pos);
	m->data[len - pos] = '\0';
	m->data_len = len - pos;
	*m_out = m;
	return MAILDROP_OK;
}

/* Reads the whole file at path (at most max octets) into *buf_out. */
static enum maildrop_result
file_slurp(const char *path, uint64_t max, char **buf_out, size_t *len_out,
	   char *err, size_t size)
{
	struct stat st;
	size_t got = 0;
	char *buf;
	/* O_NONBLOCK: a FIFO renamed there by a local user must not stop
	 * the server; it fails the S_ISREG test below. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	int e;

	if (fd < 0 || fstat(fd, &st) != 0)
		goto io;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		close(fd);
		snprintf(err, size, "%s", S_ISREG(st.st_mode)
			 ? "larger than any message can be"
			 : "not a regular file");
		return MAILDROP_ERR_FORMAT;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		goto io;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			e = r == 0 ? EIO : errno;
			free(buf);
			close(fd);
			errno = e;
			return MAILDROP_ERR_IO;
		}
		got += (size_t)r;
	}
	close(fd);
	*buf_out = buf;
	*len_out = got;
	return MAILDROP_OK;
io:
	e = errno;
	if (fd >= 0)
		close(fd);
	errno = e;
	return MAILDROP_ERR_IO;
}

enum maildrop_result
maildrop_read(const char *dir, const char *name, uint64_t max_size,
	      struct msg **m_out, char *err, size_t size)
{
	char path[PATH_MAX], *buf = NULL;
	size_t len = 0;
	enum maildrop_result r;
	int e;

	*m_out = NULL;
	if (snprintf(path, sizeof path, "%s/%s", dir, name) >=
	    (int)sizeof path) {
		errno = ENAMETOOLONG;
		return MAILDROP_ERR_IO;
	}
	r = file_slurp(path, max_size, &buf, &len, err, size);
	if (r != MAILDROP_OK)
		return r;
	r = maildrop_parse(buf, len, m_out, err, size);
	e = errno;
	free(buf);
	errno = e;
	return r;
}

struct maildrop_text *
maildrop_text_new(bool is_dot_end, size_t max)
{
	struct maildrop_text *t = calloc(1, sizeof *t);

	if (t == NULL)
		return NULL;
	t->is_dot_end = is_dot_end;
	t->max = max;
	return t;
}

void
maildrop_text_free(struct maildrop_text *t)
{
	if (t == NULL)
		return;
	free(t->data);
	free(t);
}

/*
 * Appends n octets; over max sets is_too_big instead.  -1 OOM.  A "."
 * opening a line may be the end mark that text_eol takes away again, so
 * it may lie one past max until the line goes on (a text of exactly max
 * octets ended by "." is not too big).
 */
static int
text_put(struct maildrop_text *t, const char *p, size_t n)
{
	bool is_mark = t->is_dot_end && t->len == t->line_start && n == 1 &&
		       p[0] == '.';

	if (t->len + n - is_mark > t->max) {
		t->is_too_big = true;
		return 0;
	}
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : MAILDROP_TEXT_CHUNK;
		char *d;
		while (cap < t->len + n + 1)
			cap *= 2;
		d = realloc(t->data, cap);
		if (d == NULL)
			return -1;
		t->data = d;
		t->cap = cap;
	}
	memcpy(t->data + t->len, p, n);
	t->len += n;
	t->data[t->len] = '\0';
	return 0;
}

/* Ends the current line with CRLF; a lone "." may end the text. */
static int
text_eol(struct maildrop_text *t)
{
	if (t->is_dot_end && t->len == t->line_start + 1 &&
	    t->data[t->line_start] == '.') {
		t->len = t->line_start;
		t->data[t->len] = '\0';
		t->is_done = true;
		return 0;
	}
	if (text_put(t, "\r\n", 2) != 0)
		return -1;
	t->line_start = t->len;
	return 0;
}

int
maildrop_text_add(struct maildrop_text *t, const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len && !t->is_done && !t->is_too_big) {
		size_t run = 0;
		char c = buf[i];

		if (t->is_cr) { /* CRLF, or a bare CR: a line end either way */
			t->is_cr = false;
			if (text_eol(t) != 0)
				return -1;
			if (c == '\n')
				i++;
			continue;
		}
		if (c == '\0') {
			/* A "." let one past max as a possible end mark is
			 * text after all: the NUL ends no line. */
			t->has_nul = true;
			t->is_too_big = t->len > t->max;
			return 0;
		}
		if (c == '\r' || c == '\n') {
			t->is_cr = c == '\r';
			if (c == '\n' && text_eol(t) != 0)
				return -1;
			i++;
			continue;
		}
		while (i + run < len && buf[i + run] != '\r' &&
		       buf[i + run] != '\n' && buf[i + run] != '\0')
			run++;
		if (text_put(t, buf + i, run) != 0)
			return -1;
		i += run;
	}
	return 0;
}

int
maildrop_text_end(struct maildrop_text *t)
{
	if (t->is_done || t->is_too_big || t->has_nul)
		return 0;
	if (t->is_cr) {
		t->is_cr = false;
		return text_eol(t);
	}
	if (t->len > t->line_start)
		return text_eol(t);
	return 0;
}
