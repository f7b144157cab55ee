/*
 * react.c - the sending side's reactions: REPLY-CODES.md's sending table
 * as data.  Each row names the replies it covers and what becomes of the
 * recipients they concern; the first matching row wins.
 *
 *	2xx            done (RCPT: accepted, the dot's reply decides)
 *	421            close; the next address of the destination at once,
 *	               and after the last one deferred like any 4xx
 *	4xx            deferred: retry on the back-off until the lifetime
 *	551 at RCPT    follow the address it names, or bounce naming it
 *	5xx            bounced now
 *
 * A reply without an enhanced code gets the class's generic one (RFC 3463
 * section 3.1: X.0.0), except where the basic code alone says more.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "outbound/outbound_int.h"
#include "proto/reply_parse.h"
#include "util/str.h"

struct react_row {
	unsigned lo, hi;    /* codes covered */
	unsigned phases;    /* 1 << enum react_phase; 0: any */
	enum outcome_kind kind;
	bool is_next_host;  /* 421: the next address of the destination now */
	const char *status; /* when the reply carries none */
};

#define PH(p) (1u << (p))

static const struct react_row rows[] = {
	{200, 299, 0, OC_DONE, false, "2.0.0"},
	{421, 421, 0, OC_DEFER, true, "4.3.2"},
	{452, 452, PH(REACT_RCPT), OC_DEFER, false, "4.5.3"},
	{400, 499, 0, OC_DEFER, false, "4.0.0"},
	{551, 551, PH(REACT_RCPT), OC_FOLLOW, false, "5.1.6"},
	/* RFC 5321 4.5.3.1.10: 552 to RCPT is "too many recipients". */
	{552, 552, PH(REACT_RCPT), OC_DEFER, false, "4.5.3"},
	{552, 552, 0, OC_BOUNCE, false, "5.3.4"},
	{550, 550, PH(REACT_RCPT), OC_BOUNCE, false, "5.1.1"},
	{500, 599, 0, OC_BOUNCE, false, "5.0.0"},
};

void
react_reply(const struct outbound *ob, enum react_phase ph, unsigned code,
	    const char *enh, const char *line, const char *text,
	    struct outcome *oc)
{
	const struct react_row *row = NULL;

	(void)ob;
	memset(oc, 0, sizeof *oc);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (code >= rows[i].lo && code <= rows[i].hi &&
		    (rows[i].phases == 0 || (rows[i].phases & PH(ph)))) {
			row = &rows[i];
			break;
		}
	oc->is_remote = true;
	str_set(oc->reply, sizeof oc->reply, line);
	if (row == NULL) {
		/* 1xx or 3xx where none belongs: a protocol error. */
		oc->kind = OC_DEFER;
		str_set(oc->status, sizeof oc->status, "4.5.0");
		return;
	}
	oc->kind = row->kind;
	oc->is_next_host = row->is_next_host;
	str_set(oc->status, sizeof oc->status,
		enh != NULL && enh[0] != '\0' ? enh : row->status);
	if (oc->kind == OC_DEFER) {
		unsigned s = 0;
		if (reply_wait_hint(text, strlen(text), &s))
			oc->wait_hint = s;
	}
	if (oc->kind == OC_FOLLOW &&
	    !reply_551_address(text, strlen(text), oc->forward,
			       sizeof oc->forward)) {
		/* Moved, but nowhere we can tell: permanent as any 5xx. */
		oc->kind = OC_BOUNCE;
	}
}

void
react_local(struct outcome *oc, enum outcome_kind kind, const char *status,
	    const char *fmt, ...)
{
	va_list ap;

	memset(oc, 0, sizeof *oc);
	oc->kind = kind;
	str_set(oc->status, sizeof oc->status, status);
	va_start(ap, fmt);
	vsnprintf(oc->reply, sizeof oc->reply, fmt, ap);
	va_end(ap);
}

unsigned
react_backoff(const struct config *cfg, unsigned attempts, unsigned hint)
{
	size_t i = attempts == 0 ? 0 : attempts - 1;
	unsigned delay, longest = 0;

	if (i >= cfg->n_retry)
		i = cfg->n_retry - 1;
	delay = cfg->retry[i];
	for (size_t k = 0; k < cfg->n_retry; k++)
		if (cfg->retry[k] > longest)
			longest = cfg->retry[k];
	if (hint > 0) {
		/* Just after the wait the peer named, within the schedule's
		 * bounds: greylisting costs one retry, not a queue cycle. */
		delay = hint + 1;
		if (delay > longest)
			delay = longest;
	}
	return delay;
}
