/*
 * mbox.h - delivery into an mbox file with the locks mail readers take
 * ([local] maildir = mbox:PATH).
 */
#ifndef POSTERN_DELIVER_MBOX_H
#define POSTERN_DELIVER_MBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "spool/msg.h"

/*
 * Appends recipient idx's copy of m to the mbox file path under a
 * dotlock (path.lock) and an fcntl write lock, then fsyncs it.  Returns
 * 0, or -1 with errno: EWOULDBLOCK when another process holds either
 * lock (try again later), anything else for a real failure.  A failed
 * write is cut off again, so the file never ends in half a message.
 */
int mbox_deliver(const char *path, const struct msg *m, size_t idx);

/* True when another process holds path's dotlock or fcntl lock now. */
bool mbox_is_locked(const char *path);

#endif
