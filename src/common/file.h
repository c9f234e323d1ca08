/* Module-private (src/common): opening a file with its metadata, the step every reader
 * that must check what it opened before reading shares (a bounded read of regular files
 * only in common.c, the checkpoint maps in src/weights). */
#ifndef VDX_COMMON_FILE_H
#define VDX_COMMON_FILE_H

#include <sys/stat.h>

#include "vdx/common.h"

/* open(path, flags | O_CLOEXEC) and fstat: the descriptor, or -1 with err naming the path
 * and the failing call's reason (its kind from errno: a missing file is NOT_FOUND). */
int file_open_stat(const char *path, int flags, struct stat *st, vdx_error *err);

#endif
