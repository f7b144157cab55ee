/*
 * common.c - the few helpers every file of outbound/ may call: the hash
 * of the queue's tables, the clock, and the request for a dispatch.
 *
 * It calls no other file of outbound/, so anything may call it without
 * making a circle (outbound_int.h draws who calls whom).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/srs.h"
#include "outbound/outbound_int.h"
#include "util/log.h"

unsigned
ob_hash(const char *s, unsigned n)
{
	unsigned h = 5381;

	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h % n;
}

int64_t
ob_now(void)
{
	return (int64_t)time(NULL);
}

/* The dispatch event is dispatch.c's; activating it is all a connection
 * or an outcome needs, so they need not call the scheduler itself. */
void
ob_wake(struct outbound *ob)
{
	if (ob->is_ready && !ob->is_stopping)
		event_active(ob->ev_dispatch, EV_TIMEOUT, 0);
}

const char *
outbound_sender(const struct config *cfg, const struct msg *m, char *buf,
		size_t size)
{
	const char *at = strrchr(m->sender, '@');
	const char *domain = cfg->srs_domain[0] ? cfg->srs_domain
						: cfg->domains[0];

	if (cfg->srs_secret[0] == '\0' || m->sender[0] == '\0' ||
	    at == NULL || config_is_local_domain(cfg, at + 1))
		return m->sender;
	if (srs_forward(cfg->srs_secret, m->sender, domain, ob_now(), buf,
			size) != 0) {
		/* too long for a path: better unrewritten than unsent */
		log_msg(LOG_WARN, "ev=srs_not_rewritten qid=%s sender=%s",
			m->qid_str, log_q(m->sender));
		return m->sender;
	}
	return buf;
}

double
ob_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
