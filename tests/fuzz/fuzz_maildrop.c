/*
 * fuzz_maildrop.c - libFuzzer target for the maildrop file reader and the
 * text clean-up of `postern send` (src/spool/maildrop.c).
 *
 * Byte 0 picks the mode (bit 0):
 *
 *   0 FILE  byte 1 sizes the error buffer; the rest is a maildrop file's
 *           text for maildrop_parse.
 *   1 TEXT  byte 1: bit 0 is_dot_end (sendmail's "." line), bit 1 a small
 *           max (byte 1 >> 2, times 3) instead of no limit; bytes 2-5 seed
 *           the split points; the rest is what `postern send` reads on its
 *           standard input.
 *
 * Checks:
 *   - FILE: a refusal says why within the error buffer; an accepted file
 *     has a sender and at least one recipient (mailbox and orig the
 *     address as written, route remote), all without control octets and
 *     within the path limit, and its text is the rest of the file, CRLF
 *     lines only.  maildrop.c promises to accept only what maildrop_write
 *     makes: maildrop_write of the parsed message (into a temporary
 *     directory) writes the very same octets, and maildrop_read reads
 *     them back to the same message.  The envelope survives the spool's
 *     encoding (msg_envelope_format + msg_envelope_parse), which is what
 *     happens to it when the server picks it up and commits it.
 *   - TEXT: feeding in random pieces gives what one whole feed gives; an
 *     independent model of the rules agrees on the text and the flags
 *     (LF, CRLF and a bare CR each end a line, a last line gets its CRLF,
 *     a NUL stops it, a "." line ends it with is_dot_end, more than max
 *     octets of text sets is_too_big); the text has CRLF line ends only,
 *     and a maildrop file made of it parses to the same text.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>

#include "proto/limits.h"
#include "spool/maildrop.h"
#include "spool/msg.h"

#define FUZZ_CHECK(cond)                                                      \
	do {                                                                  \
		if (!(cond))                                                  \
			__builtin_trap();                                     \
	} while (0)

#define FUZZ_ERR_MAX 256
#define FUZZ_CANARY 0x55
#define FUZZ_CHUNK_MAX 64
#define FUZZ_MAX_STEP 3
#define FUZZ_NO_LIMIT ((size_t)1 << 30)
#define FUZZ_FILE_MAX (1u << 20)

/* A temporary maildrop directory, made once per process. */
static char drop_dir[256];

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
drop_dir_remove(void)
{
	if (drop_dir[0] != '\0')
		nftw(drop_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void
drop_dir_make(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	snprintf(drop_dir, sizeof drop_dir, "%s/postern-fuzz-drop-XXXXXX",
		 base);
	if (mkdtemp(drop_dir) == NULL || maildrop_dir_make(drop_dir) != 0) {
		perror("fuzz_maildrop: temporary directory");
		abort();
	}
	atexit(drop_dir_remove);
}

static bool
str_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
msg_same(const struct msg *a, const struct msg *b)
{
	if (!str_same(a->sender, b->sender) || a->n_rcpts != b->n_rcpts ||
	    a->flags != b->flags || a->ret != b->ret ||
	    !str_same(a->envid, b->envid) || a->data_len != b->data_len ||
	    (a->data_len && memcmp(a->data, b->data, a->data_len) != 0))
		return false;
	for (size_t i = 0; i < a->n_rcpts; i++) {
		const struct msg_rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
		if (!str_same(x->mailbox, y->mailbox) ||
		    !str_same(x->orig, y->orig) || x->route != y->route ||
		    x->notify != y->notify || !str_same(x->orcpt, y->orcpt))
			return false;
	}
	return true;
}

/* An address maildrop_parse may hand on: short, no control octet. */
static void
check_address(const char *s)
{
	size_t len = strlen(s);

	FUZZ_CHECK(len <= SMTP_PATH_MAX);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK((unsigned char)s[i] >= ' ' && s[i] != 0x7f);
}

/* CRLF lines only: no NUL, no bare CR or LF, a CRLF at the end. */
static void
check_crlf_text(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		FUZZ_CHECK(p[i] != '\0');
		if (p[i] == '\r')
			FUZZ_CHECK(i + 1 < len && p[i + 1] == '\n');
		if (p[i] == '\n')
			FUZZ_CHECK(i > 0 && p[i - 1] == '\r');
	}
	FUZZ_CHECK(len == 0 || p[len - 1] == '\n');
}

/* The file's octets, for comparison; malloc'd. */
static char *
slurp(const char *path, size_t *len_out)
{
	char *buf = malloc(FUZZ_FILE_MAX);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (buf == NULL || fd < 0)
		abort();
	n = read(fd, buf, FUZZ_FILE_MAX);
	close(fd);
	if (n < 0)
		abort();
	*len_out = (size_t)n;
	return buf;
}

/* What the server does with an accepted file: write it again, read it. */
static void
check_rewrite(const struct msg *m, const char *in, size_t len)
{
	char name[MAILDROP_NAME_MAX], path[512], err[FUZZ_ERR_MAX];
	struct msg *back = NULL, *spooled = msg_new();
	size_t file_len, env_len;
	char *file, *env;

	if (drop_dir[0] == '\0')
		drop_dir_make();
	if (maildrop_write(drop_dir, m, name, sizeof name) != 0) {
		perror("fuzz_maildrop: maildrop_write");
		abort();
	}
	snprintf(path, sizeof path, "%s/%s", drop_dir, name);
	file = slurp(path, &file_len);
	FUZZ_CHECK(file_len == len && memcmp(file, in, len) == 0);
	FUZZ_CHECK(maildrop_read(drop_dir, name, FUZZ_FILE_MAX, &back, err,
				 sizeof err) == MAILDROP_OK);
	FUZZ_CHECK(msg_same(m, back));
	unlink(path);
	free(file);
	msg_free(back);

	/* Committed to the spool and read back by recovery. */
	if (spooled == NULL || (env = msg_envelope_format(m, &env_len)) == NULL)
		abort();
	FUZZ_CHECK(msg_envelope_parse(spooled, env, env_len) == 0);
	spooled->data = m->data;
	spooled->data_len = m->data_len;
	FUZZ_CHECK(msg_same(m, spooled));
	spooled->data = NULL;
	free(env);
	msg_free(spooled);
}

static void
run_file(const char *in, size_t len, size_t err_size)
{
	char err[FUZZ_ERR_MAX + 1];
	struct msg *m = NULL;
	enum maildrop_result r;

	memset(err, FUZZ_CANARY, sizeof err);
	r = maildrop_parse(in, len, &m, err, err_size);
	FUZZ_CHECK((unsigned char)err[err_size] == FUZZ_CANARY);
	if (r != MAILDROP_OK) {
		FUZZ_CHECK(r == MAILDROP_ERR_FORMAT && m == NULL);
		FUZZ_CHECK(memchr(err, '\0', err_size) != NULL);
		FUZZ_CHECK(err[0] != '\0' || err_size == 1);
		return;
	}
	FUZZ_CHECK(m != NULL && m->n_rcpts > 0);
	check_address(m->sender);
	for (size_t i = 0; i < m->n_rcpts; i++) {
		check_address(m->rcpts[i].orig);
		FUZZ_CHECK(strcmp(m->rcpts[i].mailbox, m->rcpts[i].orig) == 0);
		FUZZ_CHECK(m->rcpts[i].route == MSG_ROUTE_REMOTE);
	}
	FUZZ_CHECK(m->data_len <= len);
	FUZZ_CHECK(memcmp(m->data, in + len - m->data_len, m->data_len) == 0);
	FUZZ_CHECK(m->data[m->data_len] == '\0');
	check_crlf_text(m->data, m->data_len);
	check_rewrite(m, in, len);
	msg_free(m);
}

/* What maildrop_text is expected to give. */
struct text_model {
	char *data;
	size_t len;
	bool is_done, has_nul, is_too_big;
};

/*
 * The rules, written again the simple way: a line ends at CRLF, LF or a
 * bare CR and gets CRLF; a NUL stops everything; with is_dot_end a line
 * of only "." ends the text and is not part of it; the text may be max
 * octets at most.
 */
static void
text_model(const char *in, size_t len, bool is_dot_end, size_t max,
	   struct text_model *tm)
{
	size_t i = 0, line = 0; /* where the current line starts in data */

	tm->len = 0;
	tm->is_done = tm->has_nul = tm->is_too_big = false;
	while (i < len) {
		if (in[i] == '\0') {
			tm->has_nul = true;
			break;
		}
		if (in[i] != '\r' && in[i] != '\n') {
			tm->data[tm->len++] = in[i++];
			continue;
		}
		if (is_dot_end && tm->len == line + 1 && tm->data[line] == '.') {
			tm->len = line;
			tm->is_done = true;
			break;
		}
		tm->data[tm->len++] = '\r';
		tm->data[tm->len++] = '\n';
		line = tm->len;
		i += in[i] == '\r' && i + 1 < len && in[i + 1] == '\n' ? 2 : 1;
	}
	if (i == len && tm->len > line) { /* the end: a last line's CRLF */
		if (is_dot_end && tm->len == line + 1 && tm->data[line] == '.') {
			tm->len = line;
			tm->is_done = true;
		} else {
			tm->data[tm->len++] = '\r';
			tm->data[tm->len++] = '\n';
		}
	}
	tm->is_too_big = tm->len > max;
}

static uint32_t
fuzz_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* Feeds in[0..len) in pieces (seed 0: whole) as send.c does. */
static struct maildrop_text *
text_feed(const char *in, size_t len, bool is_dot_end, size_t max,
	  uint32_t seed)
{
	struct maildrop_text *t = maildrop_text_new(is_dot_end, max);
	size_t from = 0;

	if (t == NULL)
		abort();
	while (from < len && !t->is_done && !t->has_nul && !t->is_too_big) {
		size_t n = seed ? fuzz_rand(&seed) % FUZZ_CHUNK_MAX : len;
		if (n > len - from)
			n = len - from;
		if (maildrop_text_add(t, in + from, n) != 0)
			abort();
		from += n;
	}
	if (maildrop_text_end(t) != 0)
		abort();
	return t;
}

/* A maildrop file made of the text parses, and gives the text back. */
static void
check_text_in_file(const char *text, size_t len)
{
	static const char head[] = MAILDROP_MAGIC "\nsender a@example.test\n"
					      "rcpt b@example.test\n\n";
	char *file = malloc(sizeof head + len), err[FUZZ_ERR_MAX];
	struct msg *m;

	if (file == NULL)
		abort();
	memcpy(file, head, sizeof head - 1);
	memcpy(file + sizeof head - 1, text, len);
	FUZZ_CHECK(maildrop_parse(file, sizeof head - 1 + len, &m, err,
				  sizeof err) == MAILDROP_OK);
	FUZZ_CHECK(m->data_len == len && memcmp(m->data, text, len) == 0);
	msg_free(m);
	free(file);
}

static void
run_text(const char *in, size_t len, unsigned opts, uint32_t seed)
{
	bool is_dot_end = opts & 1;
	size_t max = opts & 2 ? (opts >> 2) * FUZZ_MAX_STEP : FUZZ_NO_LIMIT;
	struct maildrop_text *whole, *piece;
	struct text_model tm;

	tm.data = malloc(2 * len + 2);
	if (tm.data == NULL)
		abort();
	text_model(in, len, is_dot_end, max, &tm);
	whole = text_feed(in, len, is_dot_end, max, 0);
	piece = text_feed(in, len, is_dot_end, max, seed ? seed : 1);
	FUZZ_CHECK(whole->is_too_big == tm.is_too_big);
	FUZZ_CHECK(piece->is_too_big == tm.is_too_big);
	if (!tm.is_too_big) {
		FUZZ_CHECK(whole->is_done == tm.is_done &&
			   whole->has_nul == tm.has_nul);
		FUZZ_CHECK(piece->is_done == tm.is_done &&
			   piece->has_nul == tm.has_nul);
		/* After a NUL the text is refused whole: only flags count. */
		if (!tm.has_nul) {
			FUZZ_CHECK(whole->len == tm.len && piece->len == tm.len);
			FUZZ_CHECK(tm.len == 0 ||
				   (memcmp(whole->data, tm.data, tm.len) == 0 &&
				    memcmp(piece->data, tm.data, tm.len) == 0));
			check_crlf_text(tm.data, tm.len);
			check_text_in_file(tm.data, tm.len);
		}
	}
	maildrop_text_free(whole);
	maildrop_text_free(piece);
	free(tm.data);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seed;

	if (size < 2)
		return 0;
	if ((data[0] & 1) == 0) {
		run_file((const char *)data + 2, size - 2,
			 1 + data[1] % FUZZ_ERR_MAX);
		return 0;
	}
	if (size < 6)
		return 0;
	memcpy(&seed, data + 2, sizeof seed);
	run_text((const char *)data + 6, size - 6, data[1], seed);
	return 0;
}
