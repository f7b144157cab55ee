/*
 * dsn.c - the text of a delivery status notification.
 *
 * The queue calls dsn_format() when recipients of one message failed, were
 * delayed past the notice threshold, or were delivered with NOTIFY=SUCCESS;
 * it commits the result like any message from the null sender.  The
 * notice is an RFC 6522 multipart/report of report-type delivery-status
 * with three parts:
 *
 *	1. text/plain, for people: which message, and per recipient what
 *	   happened, the remote server's reply as it came, and the caller's
 *	   explanation of it in plain words (explain_reply_format()).  A
 *	   recipient that failed because the lifetime ran out is not told
 *	   "permanent": it could not be delivered within the lifetime, and
 *	   the last reply is shown as the temporary one it was.
 *	2. message/delivery-status (RFC 3464 2.2, 2.3), for programs:
 *	   Reporting-MTA, Original-Envelope-Id, Arrival-Date; per recipient
 *	   Original-Recipient, Final-Recipient, Action, Status, Remote-MTA,
 *	   Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until.  Lifetime
 *	   expiry is Action: failed with Status: 4.4.7 and the last
 *	   temporary reply as the Diagnostic-Code (RFC 3464 2.3.3, 2.3.6).
 *	3. the original: message/rfc822 for RET=FULL, else its header as
 *	   text/rfc822-headers (RFC 3461 4.3, RFC 6522 4).
 *
 * Promises: CRLF lines only (bare CR or LF in the original become CRLF);
 * no line over 998 octets that we write (RFC 5322 2.1.1), report fields
 * folded at 78 columns; no value from outside (addresses, the remote's
 * reply, ENVID, the original's Subject) can add a header or field line,
 * since control characters become spaces; the boundary occurs nowhere in
 * the parts.  When part 2 holds non-ASCII (SMTPUTF8 addresses) it is
 * typed message/global-delivery-status and such an address gets the
 * "utf-8" address type (RFC 6533 3, 6).  Each value has a named cap, so the
 * notice is at most twice the original plus a fixed amount per recipient.
 *
 * Left to others: whether a notice is owed (RFC 3461 4.1 NOTIFY, never to
 * the null sender), the wording of explanations (explain/), delivery.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "outbound/dsn_int.h"

static const char *const dsn_action_names[] = {
	[DSN_FAILED] = "failed",       [DSN_DELAYED] = "delayed",
	[DSN_DELIVERED] = "delivered", [DSN_RELAYED] = "relayed",
	[DSN_EXPANDED] = "expanded",
};

/* The Status when the caller gave none: the class alone (RFC 3463 3.1). */
static const char *const dsn_action_status[] = {
	[DSN_FAILED] = "5.0.0",	   [DSN_DELAYED] = "4.0.0",
	[DSN_DELIVERED] = "2.0.0", [DSN_RELAYED] = "2.0.0",
	[DSN_EXPANDED] = "2.0.0",
};

/* What happened, in words, per action (part 1). */
static const char *const dsn_action_words[] = {
	[DSN_FAILED] = "Could not be delivered. This is permanent: the mail "
		       "system will not try again.",
	[DSN_DELAYED] = "Not delivered yet. Nothing is lost: the mail system "
			"keeps trying.",
	[DSN_DELIVERED] = "Delivered.",
	[DSN_RELAYED] = "Handed on to a mail system that does not send "
			"reports like this one, so you will hear nothing more "
			"about this address.",
	[DSN_EXPANDED] = "Delivered, and passed on to the addresses this one "
			 "forwards to (an alias or a mailing list).",
};

/*
 * Copies s keeping letters, digits and the characters of extra only (a
 * host name, an address literal, a queue id, all safe in a Message-ID);
 * fallback when nothing is left.
 */
static void
id_clean(char *dst, size_t size, const char *s, const char *extra,
	 const char *fallback)
{
	size_t o = 0;

	for (; s != NULL && *s != '\0' && o + 1 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(extra, c) != NULL)
			dst[o++] = (char)c;
	}
	dst[o] = '\0';
	if (o == 0)
		snprintf(dst, size, "%s", fallback);
}

/* FNV-1a over s, folded into h. */
static uint64_t
hash_str(uint64_t h, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* A well-mixed 64-bit value (the splitmix64 finaliser). */
static uint64_t
mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* What sets this notice apart from another about the same message in the
 * same second: the recipients, their actions and their codes. */
static uint64_t
input_hash(const struct dsn_input *in)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = hash_str(h, in->orig_qid);
	h ^= (uint64_t)in->now;
	for (size_t i = 0; i < in->n_rcpts; i++) {
		h = hash_str(h, in->rcpts[i].final_rcpt);
		h = mix(h ^ (uint64_t)in->rcpts[i].action);
		h = hash_str(h, in->rcpts[i].status);
	}
	return mix(h);
}

/* DSN_FAILED if any failed, else DSN_DELAYED if any is delayed, else
 * DSN_DELIVERED: what the notice as a whole is about. */
static enum dsn_action
gravest(const struct dsn_rcpt *rcpts, size_t n)
{
	enum dsn_action g = DSN_DELIVERED;

	for (size_t i = 0; rcpts != NULL && i < n; i++) {
		if (rcpts[i].action == DSN_FAILED)
			return DSN_FAILED;
		if (rcpts[i].action == DSN_DELAYED)
			g = DSN_DELAYED;
	}
	return g;
}

const char *
dsn_subject(const struct dsn_rcpt *rcpts, size_t n)
{
	enum dsn_action g = gravest(rcpts, n);

	if (g == DSN_FAILED)
		return "Undelivered Mail Returned to Sender";
	if (g == DSN_DELAYED)
		return "Delayed Mail (still being retried)";
	return "Successful Mail Delivery Report";
}

/* Where the original's header ends: the start of its first empty line,
 * or len when it has none. */
static size_t
header_len(const char *s, size_t len)
{
	size_t i = 0, next;

	while (i < len) {
		if (dsn_line_at(s, len, i, &next) == i)
			return i;
		i = next;
	}
	return len;
}

/* Where the Subject in header s[0..len) starts, its length (folds
 * included) in *n_out; NULL if it has none. */
static const char *
find_subject(const char *s, size_t len, size_t *n_out)
{
	static const char name[] = "Subject:";
	size_t i = 0, n = sizeof name - 1, end, next;

	while (i < len && !(len - i > n && strncasecmp(s + i, name, n) == 0)) {
		dsn_line_at(s, len, i, &next);
		i = next;
	}
	if (i >= len)
		return NULL;
	end = i += n;
	do {
		end = dsn_line_at(s, len, end, &next);
		if (next < len && (s[next] == ' ' || s[next] == '\t'))
			end = next;
		else
			break;
	} while (end < len);
	*n_out = end - i;
	return s + i;
}

/* The first paragraph of part 1, by the gravest action reported. */
static const char *
intro(const struct dsn_input *in)
{
	enum dsn_action g = gravest(in->rcpts, in->n_rcpts);

	if (g == DSN_FAILED)
		return "Your message could not be delivered to one or more of "
		       "its recipients. The details are below; the part "
		       "after them is for mail programs.";
	if (g == DSN_DELAYED)
		return "Your message has not reached one or more of its "
		       "recipients yet. There is nothing you need to do now: "
		       "the mail system keeps trying, and will write again "
		       "if it has to give up.";
	return "You asked to be told when your message arrived. Here is how "
	       "it went.";
}

/* A span of seconds in words: "5 days", "1 hour", "90 seconds". */
static void
duration_words(char *buf, size_t size, int64_t secs)
{
	static const struct {
		int64_t secs;
		const char *unit;
	} units[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}};
	int64_t n = secs;
	const char *unit = "second";

	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (secs >= units[i].secs && secs % units[i].secs == 0) {
			n = secs / units[i].secs;
			unit = units[i].unit;
			break;
		}
	snprintf(buf, size, "%" PRId64 " %s%s", n, unit, n == 1 ? "" : "s");
}

/* What happened to a recipient whose lifetime ran out, in words. */
static void
expired_words(struct dsn_buf *b, int64_t lifetime)
{
	char words[DSN_FMT_MAX], span[DSN_FMT_MAX / 4];

	if (lifetime > 0) {
		duration_words(span, sizeof span, lifetime);
		snprintf(words, sizeof words,
			 "Could not be delivered within %s, the time the mail "
			 "system keeps a message and tries again. Every try "
			 "failed for a temporary reason, and it has now "
			 "stopped trying.",
			 span);
	} else {
		snprintf(words, sizeof words,
			 "Could not be delivered: the try failed for a "
			 "temporary reason, and the mail system is set to "
			 "keep a message for no time at all, so it did not "
			 "try again.");
	}
	dsn_put_text(b, "  ", words, sizeof words);
}

static void
text_rcpt(struct dsn_buf *b, const struct dsn_rcpt *r, int64_t lifetime)
{
	enum dsn_action a = r->action <= DSN_EXPANDED ? r->action : DSN_FAILED;
	bool is_expired = a == DSN_FAILED && r->is_expired;
	char line[DSN_ADDR_MAX + DSN_FMT_MAX];
	int fwd_len;

	dsn_buf_str(b, "\r\n");
	dsn_put_str_field(b, "Recipient", "", r->final_rcpt, DSN_ADDR_MAX);
	if (is_expired)
		expired_words(b, lifetime);
	else
		dsn_put_text(b, "  ", dsn_action_words[a], DSN_FMT_MAX);
	if (a == DSN_DELAYED && r->will_retry_until != 0) {
		dsn_put_date(b, "  It will keep trying until ",
			     r->will_retry_until, ".\r\n");
	}
	if (r->remote_mta != NULL)
		dsn_put_str_field(b, "  Remote server", "", r->remote_mta,
				  DSN_HOST_MAX);
	if (r->diagnostic != NULL) {
		dsn_buf_str(b, is_expired ? "  Its last reply, a temporary "
					    "failure:\r\n"
					  : "  It replied:\r\n");
		dsn_put_text(b, "    ", r->diagnostic, DSN_DIAG_MAX);
	}
	if (r->explanation != NULL) {
		dsn_buf_str(b, r->diagnostic != NULL ? "  In plain words:\r\n"
			       : is_expired ? "  The last try failed for "
					      "this temporary reason:\r\n"
					    : "  The reason:\r\n");
		dsn_put_text(b, "    ", r->explanation, DSN_EXPLANATION_MAX);
	}
	if (r->forward != NULL) {
		fwd_len = (int)dsn_utf8_cut(r->forward, strlen(r->forward),
					    DSN_ADDR_MAX);
		snprintf(line, sizeof line,
			 "The remote server says this person has moved to "
			 "<%.*s>; update your address book and resend.",
			 fwd_len, r->forward);
		dsn_put_text(b, "  ", line, sizeof line);
	}
}

/* Part 1: for people. */
static void
text_part(struct dsn_buf *b, const struct dsn_input *in, const char *host,
	  const char *qid)
{
	const char *subj = NULL;
	size_t n = 0;

	dsn_buf_fmt(b, "This is the mail system at %s.\r\n\r\n", host);
	dsn_put_text(b, "", intro(in), DSN_BUF_INIT);
	dsn_put_date(b, "\r\nYour message\r\n  Received: ", in->arrival,
		     "\r\n");
	if (in->orig != NULL)
		subj = find_subject(in->orig,
				    header_len(in->orig, in->orig_len), &n);
	if (subj != NULL)
		dsn_put_field(b, "  Subject", "", subj, n, DSN_SUBJECT_MAX);
	dsn_buf_fmt(b, "  Queue ID: %s\r\n", qid);
	for (size_t i = 0; i < in->n_rcpts; i++)
		text_rcpt(b, &in->rcpts[i], in->lifetime);
}

/* Final-Recipient or Original-Recipient of an address we name the type
 * of: "rfc822", or "utf-8" when it is not ASCII (RFC 6533 3). */
static void
put_addr_field(struct dsn_buf *b, const char *name, const char *addr)
{
	const char *a = addr ? addr : "";

	dsn_put_str_field(b, name,
			  str_has_8bit(a, strlen(a)) ? "utf-8;" : "rfc822;", a,
			  DSN_ADDR_MAX);
}

static void
status_rcpt(struct dsn_buf *b, const struct dsn_rcpt *r)
{
	enum dsn_action a = r->action <= DSN_EXPANDED ? r->action : DSN_FAILED;

	dsn_buf_str(b, "\r\n");
	if (r->orcpt != NULL && strchr(r->orcpt, ';') != NULL)
		dsn_put_str_field(b, "Original-Recipient", "", r->orcpt,
				  DSN_ADDR_MAX + DSN_STATUS_MAX);
	else if (r->orcpt != NULL)
		put_addr_field(b, "Original-Recipient", r->orcpt);
	put_addr_field(b, "Final-Recipient", r->final_rcpt);
	dsn_buf_fmt(b, "Action: %s\r\n", dsn_action_names[a]);
	dsn_put_str_field(b, "Status", "",
			  r->status ? r->status
			  : a == DSN_FAILED && r->is_expired
			      ? "4.4.7"
			      : dsn_action_status[a],
			  DSN_STATUS_MAX);
	if (r->remote_mta != NULL)
		dsn_put_str_field(b, "Remote-MTA", "dns;", r->remote_mta,
				  DSN_HOST_MAX);
	if (r->diagnostic != NULL)
		dsn_put_str_field(b, "Diagnostic-Code", "smtp;", r->diagnostic,
				  DSN_DIAG_MAX);
	if (r->last_attempt != 0)
		dsn_put_date(b, "Last-Attempt-Date: ", r->last_attempt, "\r\n");
	if (a == DSN_DELAYED && r->will_retry_until != 0)
		dsn_put_date(b, "Will-Retry-Until: ", r->will_retry_until,
			     "\r\n");
}

/* Part 2: RFC 3464 2.2 per-message fields, 2.3 a group per recipient. */
static void
status_part(struct dsn_buf *b, const struct dsn_input *in, const char *host,
	    const char *qid)
{
	dsn_buf_fmt(b, "Reporting-MTA: dns; %s\r\n", host);
	dsn_buf_fmt(b, "X-Postern-Queue-ID: %s\r\n", qid);
	if (in->envid != NULL)
		dsn_put_str_field(b, "Original-Envelope-Id", "", in->envid,
				  DSN_ENVID_MAX);
	dsn_put_date(b, "Arrival-Date: ", in->arrival, "\r\n");
	for (size_t i = 0; i < in->n_rcpts; i++)
		status_rcpt(b, &in->rcpts[i]);
}

/* Part 3's content: s[0..len) with every line ending made CRLF, and a
 * last CRLF added if missing. */
static void
orig_part(struct dsn_buf *b, const char *s, size_t len)
{
	size_t i = 0, end, next;

	while (i < len) {
		end = dsn_line_at(s, len, i, &next);
		dsn_buf_put(b, s + i, end - i);
		dsn_buf_str(b, "\r\n");
		i = next;
	}
}

/* A boundary from the queue id and the time, changed while it occurs in
 * one of the parts.  false when every try did. */
static bool
pick_boundary(char *bd, size_t size, const char *qid, int64_t now,
	      const struct dsn_buf *parts, size_t n)
{
	for (unsigned k = 0; k < DSN_BOUNDARY_TRIES; k++) {
		size_t i = 0;

		snprintf(bd, size, "=_postern_%s_%" PRId64, qid, now);
		if (k > 0)
			snprintf(bd + strlen(bd), size - strlen(bd),
				 "_%016" PRIx64,
				 mix(hash_str((uint64_t)now ^ k, qid)));
		while (i < n &&
		       (parts[i].len == 0 ||
			!memmem(parts[i].data, parts[i].len, bd, strlen(bd))))
			i++;
		if (i == n)
			return true;
	}
	return false;
}

static void
put_header(struct dsn_buf *b, const struct dsn_input *in, const char *host,
	   const char *qid, const char *bd)
{
	char to[DSN_ADDR_MAX + DSN_FMT_MAX];

	dsn_buf_fmt(b, "From: \"Mail Delivery System\" <MAILER-DAEMON@%s>\r\n",
		    host);
	snprintf(to, sizeof to, "<%.*s>",
		 (int)dsn_utf8_cut(in->to, strlen(in->to), DSN_ADDR_MAX),
		 in->to);
	dsn_put_str_field(b, "To", "", to, sizeof to);
	dsn_buf_fmt(b, "Subject: %s\r\n", dsn_subject(in->rcpts, in->n_rcpts));
	dsn_put_date(b, "Date: ", in->now, "\r\n");
	dsn_buf_fmt(b, "Message-ID: <%" PRId64 ".%s.%08" PRIx64 ".dsn@%s>\r\n",
		    in->now, qid, input_hash(in) & 0xffffffffU, host);
	dsn_buf_str(b, "Auto-Submitted: auto-replied\r\n");
	dsn_buf_str(b, "MIME-Version: 1.0\r\n");
	dsn_buf_str(b, "Content-Type: multipart/report; "
		       "report-type=delivery-status;\r\n");
	dsn_buf_fmt(b, "\tboundary=\"%s\"\r\n", bd);
	dsn_buf_str(b, "\r\nThis is a MIME-encapsulated message.\r\n");
}

/* One body part: its boundary line, header, and content. */
static void
put_part(struct dsn_buf *b, const char *bd, const char *type, const char *desc,
	 const struct dsn_buf *content)
{
	dsn_buf_fmt(b, "\r\n--%s\r\nContent-Type: %s\r\n", bd, type);
	dsn_buf_fmt(b, "Content-Description: %s\r\n", desc);
	if (str_has_8bit(content->data, content->len))
		dsn_buf_str(b, "Content-Transfer-Encoding: 8bit\r\n");
	dsn_buf_str(b, "\r\n");
	dsn_buf_put(b, content->data, content->len);
}

/* The output's ceiling: twice the original (bare LFs may double) plus a
 * budget per recipient; 0 on overflow. */
static size_t
budget(const struct dsn_input *in)
{
	size_t max, rcpts;

	if (__builtin_mul_overflow(in->orig_len, (size_t)2, &max) ||
	    __builtin_mul_overflow(in->n_rcpts, (size_t)DSN_BUDGET_RCPT,
				   &rcpts) ||
	    __builtin_add_overflow(max, rcpts, &max) ||
	    __builtin_add_overflow(max, (size_t)DSN_BUDGET_BASE, &max))
		return 0;
	return max;
}

static char *
assemble(const struct dsn_input *in, struct dsn_buf *parts, const char *host,
	 const char *qid, size_t *len_out)
{
	char bd[DSN_BOUNDARY_MAX];
	bool is_global = str_has_8bit(parts[1].data, parts[1].len);
	struct dsn_buf out;

	if (!pick_boundary(bd, sizeof bd, qid, in->now, parts, 3)) {
		errno = EEXIST;
		return NULL;
	}
	memset(&out, 0, sizeof out);
	out.max = budget(in);
	put_header(&out, in, host, qid, bd);
	put_part(&out, bd, "text/plain; charset=utf-8", "Notification",
		 &parts[0]);
	put_part(&out, bd,
		 is_global ? "message/global-delivery-status"
			   : "message/delivery-status",
		 "Delivery report", &parts[1]);
	put_part(&out, bd,
		 in->is_full ? "message/rfc822" : "text/rfc822-headers",
		 in->is_full ? "Undelivered message" : "Message headers",
		 &parts[2]);
	dsn_buf_fmt(&out, "\r\n--%s--\r\n", bd);
	dsn_buf_put(&out, "", 1); /* a NUL after the text, for C callers */
	if (out.is_failed) {
		free(out.data);
		errno = ENOMEM;
		return NULL;
	}
	*len_out = out.len - 1;
	return out.data;
}

char *
dsn_format(const struct dsn_input *in, size_t *len_out)
{
	char host[DSN_HOST_MAX + 1], qid[DSN_QID_MAX + 1];
	struct dsn_buf parts[3];
	size_t max, n;
	char *out = NULL;

	if (in == NULL || in->to == NULL || in->rcpts == NULL ||
	    in->n_rcpts == 0 || (in->orig == NULL && in->orig_len > 0) ||
	    len_out == NULL || (max = budget(in)) == 0) {
		errno = EINVAL;
		return NULL;
	}
	id_clean(host, sizeof host, in->reporting_mta, ".-_[]:", "localhost");
	id_clean(qid, sizeof qid, in->orig_qid, "", "0");
	memset(parts, 0, sizeof parts);
	for (size_t i = 0; i < 3; i++)
		parts[i].max = max;
	text_part(&parts[0], in, host, qid);
	status_part(&parts[1], in, host, qid);
	n = in->is_full || in->orig == NULL
		    ? in->orig_len
		    : header_len(in->orig, in->orig_len);
	if (in->orig != NULL)
		orig_part(&parts[2], in->orig, n);
	if (parts[0].is_failed || parts[1].is_failed || parts[2].is_failed)
		errno = ENOMEM;
	else
		out = assemble(in, parts, host, qid, len_out);
	for (size_t i = 0; i < 3; i++)
		free(parts[i].data);
	return out;
}
