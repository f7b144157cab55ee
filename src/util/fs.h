/*
 * fs.h - file system helpers; no mail knowledge.
 */
#ifndef POSTERN_UTIL_FS_H
#define POSTERN_UTIL_FS_H

#include <sys/types.h>

/* mkdir -p path with mode for each directory made; 0, or -1 with errno. */
int fs_mkdirs(const char *path, mode_t mode);

#endif
