/*
 * rcpt.c - route_rcpt(): the one decision on where a recipient goes.
 *
 * Called for RCPT TO (server/session_cmd_rcpt.c), by `postern send`
 * (cli/send.c), by the maildrop pickup and for the messages the sending
 * side makes (route/pickup.c, route/hooks.c).  The verdict itself is
 * policy/rcpt.c's (users, subaddresses, forwards 251/551, the relay
 * rule); for a session it adds what only the mailbox can tell: an mbox
 * locked by a mail reader (450 4.2.1) and a mailbox at or over [local]
 * quota (452 4.2.2).  A quota that cannot be read is not a refusal: the
 * delivery itself will tell.  Never sends anything.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "deliver/deliver.h"
#include "deliver/mbox.h"
#include "policy/quota.h"
#include "route/route.h"
#include "util/log.h"

/* mbox:PATH: true while a mail reader holds the user's mailbox lock. */
static bool
is_mbox_locked(const struct config *cfg, const struct rcpt_verdict *v)
{
	char path[PATH_MAX];

	return cfg->is_mbox &&
	       deliver_maildir_path(cfg->maildir_path, v->mailbox, path,
				    sizeof path) &&
	       mbox_is_locked(path);
}

/* [local] quota: true when the user's Maildir is full already. */
static bool
is_over_quota(const struct route_req *rq, const struct rcpt_verdict *v)
{
	const struct config *cfg = rq->cfg;
	char path[PATH_MAX];
	uint64_t used;

	if (cfg->local_quota == 0 ||
	    !deliver_maildir_path(cfg->maildir_path, v->mailbox, path,
				  sizeof path))
		return false;
	if (cfg->is_mbox) {
		struct stat st;
		return stat(path, &st) == 0 &&
		       (uint64_t)st.st_size >= cfg->local_quota;
	}
	if (quota_usage(path, &used) != 0) {
		log_msg(LOG_WARN, "ev=quota_unknown sid=%s mailbox=%s error=%s",
			rq->sid ? rq->sid : "-", log_q(path),
			log_q(strerror(errno)));
		return false; /* delivery itself will tell */
	}
	return used >= cfg->local_quota;
}

enum reply_id
route_rcpt(const struct route_req *rq, const struct addr *to,
	   struct rcpt_verdict *out)
{
	enum reply_id id =
	    policy_rcpt_check(rq->cfg, rq->users, to, rq->is_trusted, out);

	if (!rq->check_mailbox || out->route != RCPT_ROUTE_LOCAL)
		return id;
	if (is_mbox_locked(rq->cfg, out))
		return REPLY_MAILBOX_LOCKED;
	if (is_over_quota(rq, out))
		return REPLY_OVER_QUOTA;
	return id;
}

enum msg_route
route_msg_route(const struct rcpt_verdict *v)
{
	switch (v->route) {
	case RCPT_ROUTE_LOCAL:
		return MSG_ROUTE_LOCAL;
	case RCPT_ROUTE_REMOTE:
		return MSG_ROUTE_REMOTE;
	default:
		return 0;
	}
}
