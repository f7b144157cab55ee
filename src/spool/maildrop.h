/*
 * maildrop.h - SPOOL/maildrop, where `postern send` leaves a message for
 * the server to pick up (route/pickup.c), and the text clean-up the
 * sending command applies before it writes one.
 *
 * A maildrop file is text, one envelope line each, then the message:
 *
 *	postern-maildrop 1
 *	sender alice@example.test          ("sender " alone: the null path)
 *	rcpt bob@example.test              (one or more)
 *	<empty line>
 *	the message, CRLF line ends
 *
 * Files are written in DIR/tmp, fsync'd, renamed into DIR and the
 * directory fsync'd: a file in DIR is whole and durable.
 */
#ifndef POSTERN_SPOOL_MAILDROP_H
#define POSTERN_SPOOL_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool/msg.h"

#define MAILDROP_SUBDIR "maildrop"
#define MAILDROP_TMP "tmp"
#define MAILDROP_BAD "bad"
#define MAILDROP_MAGIC "postern-maildrop 1"
#define MAILDROP_NAME_MAX 64
/* maildrop/ and maildrop/tmp/: anyone may add a file, no one but the
 * owner may list or remove them (sticky, like /tmp without read), so
 * `sendmail` works for every local user; bad/ is the server's alone. */
#define MAILDROP_DIR_MODE 01733
#define MAILDROP_BAD_MODE 0700

/*
 * Writes "SPOOL_DIR/maildrop" into out (size bytes); false when it does
 * not fit.
 */
bool maildrop_dir_format(const char *spool_dir, char *out, size_t size);

/* Creates dir and dir/tmp (MAILDROP_DIR_MODE, whatever the umask, when
 * this process owns them) when missing; 0, or -1 with errno. */
int maildrop_dir_make(const char *dir);

/*
 * Writes m's sender, the orig address of each recipient and its data into
 * a new file of dir (made with maildrop_dir_make), durably.  Returns 0 and
 * the file's name (no directory) in name_out, or -1 with errno; nothing
 * is left in dir on failure.
 */
int maildrop_write(const char *dir, const struct msg *m, char *name_out,
		   size_t name_size);

enum maildrop_result {
	MAILDROP_OK,
	MAILDROP_ERR_IO,     /* could not read it (errno); try again later */
	MAILDROP_ERR_FORMAT, /* not a maildrop file or damaged; err says why */
};

/*
 * Parses the file's text buf[0..len) into a new message (*m_out, the
 * caller frees it): its sender, its recipients (mailbox and orig both the
 * address as written, route MSG_ROUTE_REMOTE until the server decides)
 * and its data.  On MAILDROP_ERR_FORMAT err (size bytes) says what is
 * wrong; MAILDROP_ERR_IO with ENOMEM when out of memory.
 */
enum maildrop_result maildrop_parse(const char *buf, size_t len,
				    struct msg **m_out, char *err,
				    size_t size);

/*
 * Reads dir/name into a new message as maildrop_parse does.  A file over
 * max_size octets is MAILDROP_ERR_FORMAT.
 */
enum maildrop_result maildrop_read(const char *dir, const char *name,
				   uint64_t max_size, struct msg **m_out,
				   char *err, size_t size);

/*
 * The message text as a local program hands it over, made ready for the
 * spool: LF or CRLF line ends become CRLF, a bare CR becomes a line end,
 * a last line without its end gets one.  With is_dot_end a line holding
 * only "." ends the text (sendmail's tradition; -i turns it off).
 */
struct maildrop_text {
	char *data;
	size_t len, cap;
	size_t max;	    /* more text than this sets is_too_big */
	size_t line_start;  /* offset of the line being read in data */
	bool is_dot_end;
	bool is_cr;	    /* the last octet given was a CR */
	bool is_done;	    /* the "." line was seen: the rest is ignored */
	bool has_nul;	    /* a NUL octet was given (refused) */
	bool is_too_big;    /* over max: the rest is ignored */
};

/* A new empty text; NULL when out of memory. */
struct maildrop_text *maildrop_text_new(bool is_dot_end, size_t max);

/* Frees t and its data; maildrop_text_free(NULL) is a no-op. */
void maildrop_text_free(struct maildrop_text *t);

/*
 * Adds buf[0..len) to t.  Returns -1 when out of memory, else 0; the
 * caller stops reading once is_done, has_nul or is_too_big is set.
 */
int maildrop_text_add(struct maildrop_text *t, const char *buf, size_t len);

/* Ends the input: a last line without its line end gets CRLF.  -1 OOM. */
int maildrop_text_end(struct maildrop_text *t);

#endif
