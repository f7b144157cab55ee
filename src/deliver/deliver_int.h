/*
 * deliver_int.h - between the delivery worker (deliver.c) and the
 * Maildir writer (maildir.c).  Only src/deliver/ includes it.
 */
#ifndef POSTERN_DELIVER_INT_H
#define POSTERN_DELIVER_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "spool/msg.h"

/* A failed recipient is tried again after this long. */
#define DELIVER_RETRY_SECONDS 30

/* Copies on their way into Maildir, made durable together. */
struct maildir_batch;

/* Called for each copy of a batch that is durable in its new/. */
typedef void (*maildir_delivered_fn)(void *arg, struct msg *m, size_t idx,
				     const char *dir);

/*
 * An empty batch; NAME ends in hostname (made safe for file names).  NULL
 * when out of memory.  One thread at a time uses it.
 */
struct maildir_batch *maildir_batch_new(const char *hostname);

/* Frees b (finish it first); maildir_batch_free(NULL) is a no-op. */
void maildir_batch_free(struct maildir_batch *b);

/* True when b takes no more copies before maildir_batch_finish(). */
bool maildir_batch_is_full(const struct maildir_batch *b);

/*
 * Writes recipient idx's copy of m into dir/tmp/ (or finds it delivered
 * already when m is recovered); m must live until the batch is finished.
 * 0, or -1 with errno (the copy is not in the batch).
 */
int maildir_batch_add(struct maildir_batch *b, struct msg *m, size_t idx,
		      const char *dir);

/*
 * Makes the batch's files durable, renames them into new/, makes new/
 * durable, then calls cb for each copy delivered; a copy that failed on
 * the way is logged, its tmp/ file removed, and not reported.  b is
 * empty afterwards.
 */
void maildir_batch_finish(struct maildir_batch *b, maildir_delivered_fn cb,
			  void *arg);

#endif
