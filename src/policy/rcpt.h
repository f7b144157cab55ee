/*
 * rcpt.h - the verdict on one RCPT TO: local, forwarded, moved, unknown,
 * or a relay attempt.
 *
 * Pure policy: given the config, the tables and a parsed address, names
 * the reply (a replies.def id) and where the mail goes.  Never sends.
 */
#ifndef POSTERN_POLICY_RCPT_H
#define POSTERN_POLICY_RCPT_H

#include <stdbool.h>

#include "config/config.h"
#include "policy/users.h"
#include "proto/addr.h"
#include "reply/reply.h"

enum rcpt_route {
	RCPT_ROUTE_NONE,   /* rejected */
	RCPT_ROUTE_LOCAL,  /* deliver to a local mailbox */
	RCPT_ROUTE_REMOTE, /* send on to another host (forwards, relay) */
};

struct rcpt_verdict {
	enum reply_id reply; /* RCPT_OK, WILL_FORWARD, USER_MOVED, ... */
	enum rcpt_route route;
	/* The mailbox to deliver to: the user (subaddress removed) or the
	 * forward target; for a rejection the address as given. */
	char mailbox[SMTP_LOCAL_MAX + SMTP_DOMAIN_MAX + 2];
	char local[SMTP_LOCAL_MAX + 1]; /* of mailbox, lower case (local) */
	char domain[SMTP_DOMAIN_MAX + 1];
};

/*
 * Decides on rcpt.  is_authenticated lets a client relay to any domain.
 * Always fills *out; returns out->reply.
 */
enum reply_id policy_rcpt_check(const struct config *cfg,
				const struct users *users,
				const struct addr *rcpt, bool is_authenticated,
				struct rcpt_verdict *out);

#endif
