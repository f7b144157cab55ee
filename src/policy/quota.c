/*
 * quota.c - mailbox usage for [local] quota.
 *
 * Called by server/session_cmd_rcpt.c for a local recipient when a quota
 * is set; a recipient whose mailbox holds quota octets or more gets 452
 * 4.2.2 (RFC 3463 X.2.2 "mailbox full"), a temporary reply: the sender
 * retries after the user has made room.  The scan stats every file of
 * new/ and cur/ (no Maildir++ maildirsize cache yet): it runs on the
 * loop thread, so it suits mailboxes of thousands of messages, not
 * millions.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/quota.h"

static int
dir_usage(int parent, const char *sub, uint64_t *sum)
{
	int fd = openat(parent, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			*sum += (uint64_t)st.st_size;
	}
	closedir(d);
	return 0;
}

int
quota_usage(const char *maildir, uint64_t *octets_out)
{
	int fd = open(maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	*octets_out = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	r = dir_usage(fd, "new", octets_out) == 0 &&
			    dir_usage(fd, "cur", octets_out) == 0
		    ? 0
		    : -1;
	close(fd);
	return r;
}
