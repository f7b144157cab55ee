/*
 * common.c - the few helpers every file of outbound/ may call: the hash
 * of the queue's tables, the clock, and the request for a dispatch.
 *
 * It calls no other file of outbound/, so anything may call it without
 * making a circle (outbound_int.h draws who calls whom).
 */
#include <time.h>

#include "outbound/outbound_int.h"

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
