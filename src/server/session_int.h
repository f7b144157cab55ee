/*
 * session_int.h - the plumbing the files of the session share with
 * nobody else: session.c reads lines and runs the command table,
 * session_io.c owns the socket's output and closing, session_cmd_data.c
 * reads the message text.  (The checks and proceeds that fill the
 * table's rows are declared in session.h.)
 */
#ifndef POSTERN_SESSION_INT_H
#define POSTERN_SESSION_INT_H

#include "server/session.h"

/* Handles one SASL response line in SESSION_AUTH (session_cmd_auth.c). */
void session_auth_line(struct session *s, const char *line, size_t len);

/*
 * The readers of message text (session_cmd_data.c), run by the command
 * loop in SESSION_DATA and SESSION_BDAT: each takes what the input holds
 * and returns false when it needs more.
 */
bool session_data_read(struct session *s, struct evbuffer *in);
bool session_bdat_read(struct session *s, struct evbuffer *in);

/* True (and 554 sent) when the client talked before a reply it must
 * wait for (RFC 2920 3.1: EHLO, DATA end a pipelined group). */
bool session_check_sync(struct session *s, const char *after);

/* The command loop's read callback (session.c), installed by
 * session_io.c with the others. */
void session_on_read(struct bufferevent *bev, void *arg);

/*
 * Output and closing (session_io.c).
 */

/* Queues len octets of reply; a plain socket writes them this turn. */
void session_output(struct session *s, const char *buf, size_t len);

/* The per-turn write of a plain socket's queued replies (ev_flush). */
void session_on_flush(evutil_socket_t fd, short what, void *arg);

/* Stops reading and frees s once its last reply has left. */
void session_close_start(struct session *s);

/* The client does not read its replies: commands wait until the output
 * has drained, then the loop goes on (session_resume). */
void session_wait_drained(struct session *s);

#endif
