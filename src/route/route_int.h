/*
 * route_int.h - what the files of route/ share.
 */
#ifndef POSTERN_ROUTE_INT_H
#define POSTERN_ROUTE_INT_H

#include "outbound/outbound.h"
#include "route/route.h"

/* hooks.c: the hooks the sending side borrows from r. */
void route_hooks_fill(struct router *r, struct outbound_hooks *out);
/* hooks.c: queues a message the server made (a bounce, a TLS report):
 * its recipients routed, signed when from the null sender, committed;
 * done runs after the commit.  m is taken either way. */
void route_inject(struct router *r, struct msg *m, outbound_injected_fn done,
		  void *done_arg);
/* tlsrpt.c: the daily TLS reports. */
int route_tlsrpt_start(struct router *r);
void route_tlsrpt_stop(struct router *r);

/* pickup.c: stops scanning SPOOL/maildrop; commits in flight finish
 * without it.  No-op when not started. */
void route_pickup_stop(struct router *r);

#endif
