/*
 * quota.h - how full a Maildir is, for [local] quota (452 4.2.2).
 */
#ifndef POSTERN_POLICY_QUOTA_H
#define POSTERN_POLICY_QUOTA_H

#include <stdint.h>

/*
 * Sums the sizes of the messages in maildir's new/ and cur/ into
 * *octets_out.  A mailbox that does not exist yet is empty.  Returns 0,
 * or -1 with errno when a directory cannot be read.
 */
int quota_usage(const char *maildir, uint64_t *octets_out);

#endif
