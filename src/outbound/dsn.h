/*
 * dsn.h - delivery status notifications: the bounce, the delay notice and
 * the success report a sender gets back (RFC 3464 multipart/report, RFC
 * 3461 semantics, RFC 6522 report type).
 *
 * dsn_format() is pure: it turns a description of what happened to some
 * recipients of one message into the text of one notice.  Deciding whether
 * a notice is owed (NOTIFY, the null sender), committing it to the spool and
 * marking recipients done are the caller's (docs/design/outbound.md,
 * "Bounces and delay notices").
 */
#ifndef POSTERN_OUTBOUND_DSN_H
#define POSTERN_OUTBOUND_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 3464 2.3.3 Action. */
enum dsn_action {
	DSN_FAILED,
	DSN_DELAYED,
	DSN_DELIVERED,
	DSN_RELAYED,
	DSN_EXPANDED
};

/* What happened to one recipient.  Every string is borrowed. */
struct dsn_rcpt {
	/* The mailbox "user@domain" as postern tried it. */
	const char *final_rcpt;
	/* RFC 3461 ORCPT as stored ("rfc822;a@b"), or NULL. */
	const char *orcpt;
	enum dsn_action action;
	/* The enhanced status, "5.1.1", "4.4.1" ...; NULL: "5.0.0", "4.0.0"
	 * or "2.0.0" by action. */
	const char *status;
	/* The peer's host name or address, or NULL. */
	const char *remote_mta;
	/* The remote's reply, "550 5.1.1 User unknown" (lines of a
	 * multi-line reply may be CRLF-separated), or NULL for a local
	 * reason. */
	const char *diagnostic;
	/* Plain words for people (may hold '\n'), or NULL. */
	const char *explanation;
	/* For a 551: the address the reply named, or NULL. */
	const char *forward;
	/* Unix seconds; 0 when never tried. */
	int64_t last_attempt;
	/* DSN_DELAYED: when the queue gives up; else 0. */
	int64_t will_retry_until;
	/* DSN_FAILED because the queue's lifetime ran out while every try
	 * failed for a temporary reason: diagnostic (or explanation) is the
	 * last of them, and is called temporary; Status defaults to 4.4.7
	 * (RFC 3463 X.4.7, delivery time expired). */
	bool is_expired;
};

/* One notice: the original message and the recipients it reports on. */
struct dsn_input {
	const char *reporting_mta; /* [server] hostname */
	const char *to;		   /* the envelope sender, never "" */
	const char *envid;	   /* RFC 3461 ENVID, or NULL */
	const char *orig_qid;	   /* the original's queue id (16 hex) */
	int64_t arrival;	   /* the original's arrival, Unix seconds */
	int64_t now;		   /* the notice's Date */
	const struct dsn_rcpt *rcpts;
	size_t n_rcpts; /* >= 1; all share one notice */
	/* [delivery] lifetime in seconds, named to an expired recipient;
	 * 0: not named. */
	int64_t lifetime;
	/* The original text, CRLF lines (header, empty line, body); NULL
	 * only when orig_len is 0. */
	const char *orig;
	size_t orig_len;
	/* RET=FULL: the whole original as message/rfc822; else its header
	 * only, as text/rfc822-headers (RFC 6522). */
	bool is_full;
};

/*
 * The whole notice, header and body, CRLF lines, ending in CRLF; malloc'd
 * (with a NUL after it, not counted), the caller frees it; *len_out is its
 * length.  Returns NULL with errno ENOMEM when out of memory, EINVAL when
 * in is unusable (no recipients, no to), EEXIST in the contrived case that
 * every boundary it tries occurs in the text.  Reads no clock: all times
 * come from in.  A value taken from in has its CR, LF and other control
 * characters made spaces before it goes into a header or report field, so
 * none can add a line of its own.
 */
char *dsn_format(const struct dsn_input *in, size_t *len_out);

/*
 * The Subject a notice about these recipients gets: the failure wording if
 * any failed, else the delay wording if any is delayed, else the success
 * wording.  A static string.
 */
const char *dsn_subject(const struct dsn_rcpt *rcpts, size_t n);

#endif
