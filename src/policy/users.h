/*
 * users.h - the local users and forwards tables (read-only after load).
 *
 * The users file has one address a line, optionally followed by ": hash"
 * (a crypt(3) password hash for AUTH) and the flag "hold" (mail for the
 * user is refused with 450 4.2.1 until the flag goes); "#" starts a
 * comment.  The forwards file has `old@dom new@addr forward|refuse`
 * lines: forward gives 251 and delivery to the new address, refuse gives
 * 551 naming it (RFC 5321 3.4).  Lookups ignore ASCII case.
 */
#ifndef POSTERN_POLICY_USERS_H
#define POSTERN_POLICY_USERS_H

#include <stdbool.h>
#include <stddef.h>

struct users;

struct users_forward {
	const char *to; /* the new address */
	bool is_forward; /* true: 251 and forward; false: 551 */
};

/*
 * Loads the users file and, when forwards_path is not empty, the forwards
 * file.  On error returns NULL and writes "FILE:LINE: problem; fix" lines
 * to err (size bytes).
 */
struct users *users_load(const char *users_path, const char *forwards_path,
			 char *err, size_t size);

/* Frees u; users_free(NULL) is a no-op. */
void users_free(struct users *u);

/* True when mailbox ("local@domain", any case) is a user. */
bool users_has(const struct users *u, const char *mailbox);

/* True when mailbox is a user marked "hold" (450 4.2.1 for now). */
bool users_is_held(const struct users *u, const char *mailbox);

/* The password hash of mailbox, NULL when none or no such user. */
const char *users_hash(const struct users *u, const char *mailbox);

/* The forward entry for mailbox, NULL when none. Valid while u lives. */
const struct users_forward *users_forward(const struct users *u,
					  const char *mailbox);

/* Number of users loaded. */
size_t users_count(const struct users *u);

#endif
