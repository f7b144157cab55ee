/*
 * route_int.h - what the files of route/ share.
 */
#ifndef POSTERN_ROUTE_INT_H
#define POSTERN_ROUTE_INT_H

#include "outbound/outbound.h"
#include "route/route.h"

/* hooks.c: the hooks the sending side borrows from r. */
void route_hooks_fill(struct router *r, struct outbound_hooks *out);

/* pickup.c: stops scanning SPOOL/maildrop; commits in flight finish
 * without it.  No-op when not started. */
void route_pickup_stop(struct router *r);

#endif
