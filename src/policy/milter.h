/*
 * milter.h - the content filter: a client of the Sendmail milter protocol,
 * version 6, as Postfix speaks it ([filter] milter, timeout).
 *
 * The server calls milter_check() once per message at the end of DATA,
 * before the spool commit, on the loop thread; the verdict comes back
 * later, on the loop thread, through a callback.  One connection to the
 * filter per message (reuse is a later optimisation).  See milter.c for
 * the exchange and REPLY-CODES.md (451 4.7.1 when the filter fails).
 *
 * The second half of this header is the pure part (milter_proto.c):
 * packet framing and header edits, shared with the unit test and
 * tests/fuzz/fuzz_milter.c.
 */
#ifndef POSTERN_POLICY_MILTER_H
#define POSTERN_POLICY_MILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "config/config.h"

#define MILTER_REPLY_TEXT_MAX 512

enum milter_verdict {
	MILTER_ACCEPT,	 /* store it (after applying the header edits) */
	MILTER_REJECT,	 /* 5xx: the filter refused it */
	MILTER_TEMPFAIL, /* 4xx: the filter said try later */
	MILTER_DISCARD,	 /* accept and drop silently */
	MILTER_FAILED,	 /* unreachable, died, protocol error or past
			    [filter] timeout: the server applies on_failure
			    (tempfail -> 451 4.7.1, accept -> store
			    unfiltered) */
};

/* What is checked; every pointer is borrowed for milter_check() only. */
struct milter_msg {
	const char *client_ip, *client_name, *helo, *sender; /* "" for <> */
	const char *const *rcpts;
	size_t n_rcpts;
	const char *data; /* header + body, CRLF lines, as received (without
			     the server's own Received:) */
	size_t data_len;
	const char *qid;
};

struct milter_result {
	enum milter_verdict verdict;
	/* SMFIR_REPLYCODE text like "550 5.7.1 Spam", or "". */
	char reply[MILTER_REPLY_TEXT_MAX];
	/* When the filter added, changed or inserted headers: the new
	 * header + body, malloc'd, the caller frees; NULL when unchanged. */
	char *data;
	size_t data_len;
};

/*
 * Called once per check on the loop thread.  res is valid during the call
 * only; the callee may take res->data (and set it to NULL), else it is
 * freed after the call.
 */
typedef void (*milter_done_fn)(void *arg, struct milter_result *res);

struct milter;

/*
 * Reads cfg->filter_milter ("inet:host:port", "inet:[v6]:port",
 * "inet:port@host" as OpenDKIM writes it, or "unix:PATH") and
 * cfg->filter_timeout (seconds per exchange with the filter).  A host
 * name is resolved here, once.  On a malformed value returns NULL with a
 * message naming the fix in err (size bytes).  A filter that is down is
 * no error here: each check then gives MILTER_FAILED.  cfg and base are
 * borrowed for the handle's life.  The caller ignores SIGPIPE (server.c
 * does).
 */
struct milter *milter_open(const struct config *cfg, struct event_base *base,
			   char *err, size_t size);

/*
 * Drops every connection in flight; each pending check gets MILTER_FAILED
 * (on the calling, loop thread) before this returns, and so does a check
 * started from one of those callbacks.  Frees m.  milter_close(NULL) is a
 * no-op.
 */
void milter_close(struct milter *m);

/*
 * Loop thread.  Starts the check of one message; what msg points to is
 * copied.  cb runs exactly once, later, on the loop thread, never inside
 * milter_check().
 */
void milter_check(struct milter *m, const struct milter_msg *msg,
		  milter_done_fn cb, void *arg);

/* ---- the pure part: milter_proto.c ---- */

#define MILTER_VERSION 6
#define MILTER_LEN_BYTES 4	       /* the packet's length prefix */
#define MILTER_CHUNK_MAX 65535	       /* octets of body per SMFIC_BODY */
#define MILTER_PACKET_MAX (256 * 1024) /* a reply we accept, cmd included */
#define MILTER_HEADERS_MAX 10000       /* header fields in one message */

/* Commands, MTA to filter. */
#define MILTER_C_ABORT 'A'
#define MILTER_C_BODY 'B'
#define MILTER_C_CONNECT 'C'
#define MILTER_C_MACRO 'D'
#define MILTER_C_BODYEOB 'E'
#define MILTER_C_HELO 'H'
#define MILTER_C_HEADER 'L'
#define MILTER_C_MAIL 'M'
#define MILTER_C_EOH 'N'
#define MILTER_C_OPTNEG 'O'
#define MILTER_C_QUIT 'Q'
#define MILTER_C_RCPT 'R'
#define MILTER_C_DATA 'T'

/* Replies, filter to MTA. */
#define MILTER_R_ACCEPT 'a'
#define MILTER_R_CONTINUE 'c'
#define MILTER_R_DISCARD 'd'
#define MILTER_R_CHGHEADER 'm'
#define MILTER_R_ADDHEADER 'h'
#define MILTER_R_INSHEADER 'i'
#define MILTER_R_PROGRESS 'p'
#define MILTER_R_REJECT 'r'
#define MILTER_R_SKIP 's'
#define MILTER_R_TEMPFAIL 't'
#define MILTER_R_REPLYCODE 'y'

/* Actions (SMFIF_*) the filter may take. */
#define MILTER_F_ADDHDRS 0x01u /* ADDHEADER and INSHEADER */
#define MILTER_F_CHGHDRS 0x10u
#define MILTER_F_SETSYMLIST 0x100u /* it may name macros; we send ours */

/* Protocol flags (SMFIP_*): steps the filter may skip or not answer. */
#define MILTER_P_NOCONNECT 0x1u
#define MILTER_P_NOHELO 0x2u
#define MILTER_P_NOMAIL 0x4u
#define MILTER_P_NORCPT 0x8u
#define MILTER_P_NOBODY 0x10u
#define MILTER_P_NOHDRS 0x20u
#define MILTER_P_NOEOH 0x40u
#define MILTER_P_NR_HDR 0x80u
#define MILTER_P_NOUNKNOWN 0x100u
#define MILTER_P_NODATA 0x200u
#define MILTER_P_SKIP 0x400u
#define MILTER_P_RCPT_REJ 0x800u
#define MILTER_P_NR_CONN 0x1000u
#define MILTER_P_NR_HELO 0x2000u
#define MILTER_P_NR_MAIL 0x4000u
#define MILTER_P_NR_RCPT 0x8000u
#define MILTER_P_NR_DATA 0x10000u
#define MILTER_P_NR_UNKN 0x20000u
#define MILTER_P_NR_EOH 0x40000u
#define MILTER_P_NR_BODY 0x80000u
#define MILTER_P_HDR_LEADSPC 0x100000u

enum milter_parse {
	MILTER_PARSE_OK,
	MILTER_PARSE_MORE,	   /* not a whole packet yet */
	MILTER_PARSE_ERR_LENGTH,   /* 0 or over MILTER_PACKET_MAX */
	MILTER_PARSE_ERR_SYNTAX,   /* a payload not as its command says */
	MILTER_PARSE_ERR_TOO_MANY, /* past MILTER_HEADERS_MAX fields */
	MILTER_PARSE_ERR_NO_MEMORY,
};

/*
 * Pure.  Finds one packet at the start of buf (len octets).  On
 * MILTER_PARSE_OK sets *cmd_out, the payload (a slice of buf) and
 * *used_out, the octets the packet took.
 */
enum milter_parse milter_packet_parse(const unsigned char *buf, size_t len,
				      char *cmd_out,
				      const unsigned char **payload_out,
				      size_t *payload_len_out,
				      size_t *used_out);

/* One header field: a slice of the message or text of our own. */
struct milter_field {
	const char *text; /* "Name: value\r\n" with its folded lines */
	size_t len;
	size_t name_len; /* "Name", without the colon */
	char *own;	 /* text when malloc'd by an edit, else NULL */
};

/* The message seen as header fields and the rest. */
struct milter_hdrs {
	const char *data; /* the message, borrowed */
	size_t data_len;
	struct milter_field *v;
	size_t n, cap;
	size_t hdr_end;	   /* where the fields end: the empty line or the
			      first line that is no field */
	size_t body_start; /* after the empty line, when there is one */
	bool is_edited;
};

/*
 * Pure.  Splits data into fields (a line starting with a space or tab
 * continues the field before it) up to the first empty line or the first
 * line that is not a field.  The fields borrow data.  MILTER_PARSE_OK or
 * _ERR_TOO_MANY / _ERR_NO_MEMORY; milter_hdrs_free() in every case.
 */
enum milter_parse milter_hdrs_split(struct milter_hdrs *h, const char *data,
				    size_t len);

/*
 * Pure.  The name and value of field i as the filter gets them: the value
 * without the spaces after the colon, folded lines joined by LF (not
 * CRLF), without the final CRLF.  Writes "name\0value\0" into buf; returns
 * the octets written, 0 when it does not fit in size.
 */
size_t milter_field_format(const struct milter_field *f, char *buf,
			   size_t size);

/*
 * Pure.  Applies one SMFIR_ADDHEADER, _INSHEADER or _CHGHEADER payload
 * (see milter.c): the value's LF line ends become CRLF and ": " joins
 * name and value.  MILTER_PARSE_OK or an error, h unchanged then.
 */
enum milter_parse milter_hdrs_edit(struct milter_hdrs *h, char cmd,
				   const unsigned char *payload, size_t len);

/*
 * Pure.  The fields, then the message from hdr_end on, into a malloc'd
 * *data_out; -1 when out of memory.
 */
int milter_hdrs_render(const struct milter_hdrs *h, char **data_out,
		       size_t *len_out);

/* Frees the fields' own text and the array; h is reusable after. */
void milter_hdrs_free(struct milter_hdrs *h);

#endif
