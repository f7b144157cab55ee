/*
 * fs.c - mkdir -p.  Used where a configured directory's parents may not
 * exist yet (var/ on a fresh tree).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/str.h"

int
fs_mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (!str_set(buf, sizeof buf, path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, mode) != 0 && errno != EEXIST ? -1 : 0;
}
