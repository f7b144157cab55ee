/*
 * deliver.h - the local delivery agent: a worker thread writing committed
 * messages into Maildir mailboxes.
 *
 * A message reaches it only after its spool commit; each local recipient
 * is reported done to the spool only after its Maildir file and the new/
 * directory entry are fsync'd, so a message leaves the spool only once its
 * delivery is durable.
 */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H

#include <stddef.h>

#include "config/config.h"
#include "spool/msg.h"
#include "spool/spool.h"

struct deliver;

/* Starts the worker; NULL with a message in err on failure. */
struct deliver *deliver_start(const struct config *cfg, struct spool *sp,
			      char *err, size_t size);

/* Queues m (taken) for delivery.  Any thread. */
void deliver_submit(struct deliver *d, struct msg *m_take);

/* Recipients delivered to mailboxes since the start.  Any thread. */
unsigned long long deliver_count(struct deliver *d);

/*
 * Delivers what is queued (not waiting out retries), then stops the
 * worker and frees d; deliver_stop(NULL) is a no-op.
 */
void deliver_stop(struct deliver *d);

/*
 * Writes the Maildir path for mailbox ("user@domain") from the template
 * (%d domain, %u local part, "/" in either made "_") into buf.  Returns
 * false when it does not fit.  Pure; exposed for tests.
 */
bool deliver_maildir_path(const char *tmpl, const char *mailbox, char *buf,
			  size_t size);

#endif
