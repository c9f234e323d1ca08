/* Helpers both store backends need in the same form (see backend_common.h): one copy of
 * the write-lock file protocol, the metadata column name rules and the small utilities,
 * so that the embedded and ClickHouse backends cannot drift apart on them. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "store/backend_common.h"

/* The builtin columns a filter may name, in the order error messages list them. */
static const vdx_filter_column filter_builtins[] = {
    {"id", VDX_COLUMN_TEXT},       {"url", VDX_COLUMN_TEXT},
    {"width", VDX_COLUMN_INTEGER}, {"height", VDX_COLUMN_INTEGER},
    {"ingested_at", VDX_COLUMN_TEXT},
};

int backend_write_all(int fd, const void *data, size_t size, off_t offset)
{
    const uint8_t *p = data;
    while (size > 0) {
        ssize_t w = pwrite(fd, p, size, offset);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        size -= (size_t)w;
        offset += w;
    }
    return 0;
}

/* ---- the write lock file: flock()ed by the single writer, holding its pid ---- */

int backend_lock_open(const char *collection, const char *lock_path, vdx_error *err)
{
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return vdx_fail_errno(err, errno, "collection '%s': cannot open %s: %s", collection, lock_path,
                        strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int saved = errno;
        char pid[32] = "";
        ssize_t got = pread(fd, pid, sizeof pid - 1, 0);
        pid[got > 0 ? got : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        /* only readers hold it shared: ones that read without SQLite's write-ahead log
         * (embedded.c, on a read-only or full file system) */
        int readers = saved == EWOULDBLOCK && flock(fd, LOCK_SH | LOCK_NB) == 0;
        close(fd);
        if (readers)
            return vdx_fail_kind(err, VDX_ERR_CONFLICT,
                                 "collection '%s' is being read by a process that could not create "
                                 "SQLite's write-ahead log files (it holds %s shared): wait for it "
                                 "to finish, or free space beside the collection",
                                 collection, lock_path);
        if (saved == EWOULDBLOCK)
            return vdx_fail_kind(err, VDX_ERR_CONFLICT,
                            "collection '%s' is being written by another process (pid %s holds "
                            "%s): wait for that ingest to finish",
                            collection, pid[0] ? pid : "?", lock_path);
        return vdx_fail_errno(err, saved, "collection '%s': cannot lock %s: %s", collection, lock_path,
                        strerror(saved));
    }
    return fd;
}

int backend_lock_claim(const char *collection, const char *lock_path, int fd,
                           vdx_error *err)
{
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || backend_write_all(fd, pid, (size_t)len, 0) != 0) {
        int saved = errno;
        close(fd);
        return vdx_fail_errno(err, saved, "collection '%s': cannot write %s: %s", collection, lock_path,
                        strerror(saved));
    }
    return 0;
}

/* ---- metadata columns ---- */

int backend_name_in(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(name, list[i]) == 0)
            return 1;
    return 0;
}

int backend_find_column(char *const *columns, int n_columns, const char *name)
{
    for (int i = 0; i < n_columns; i++)
        if (strcasecmp(columns[i], name) == 0)
            return i;
    return -1;
}

int backend_check_new_columns(const char *collection, const char *const *builtins,
                                  size_t n_builtins, char *const *columns, int n_columns,
                                  const char *const *names, int n, vdx_error *err)
{
    int missing = 0;
    for (int i = 0; i < n; i++) {
        if (backend_name_in(names[i], builtins, n_builtins))
            return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': metadata column '%s' has the name of a "
                                 "builtin column",
                            collection, names[i]);
        int at = backend_find_column(columns, n_columns, names[i]);
        if (at >= 0 && strcmp(columns[at], names[i]) != 0)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': column '%s' differs only in case from "
                                 "existing column '%s'",
                            collection, names[i], columns[at]);
        missing |= at < 0;
    }
    return missing;
}

int backend_column_to_add(char *const *columns, int n_columns, const char *const *names,
                              int i)
{
    if (backend_find_column(columns, n_columns, names[i]) >= 0)
        return 0;
    for (int j = 0; j < i; j++)
        if (strcasecmp(names[j], names[i]) == 0)
            return 0;
    return 1;
}

int backend_copy_columns(const char *collection, char *const *columns, int n_columns,
                             char ***names, int *n, vdx_error *err)
{
    *names = calloc((size_t)n_columns + 1, sizeof **names);
    if (!*names)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", collection);
    for (int i = 0; i < n_columns; i++) {
        if (!((*names)[i] = strdup(columns[i]))) {
            for (int j = 0; j < i; j++)
                free((*names)[j]);
            free(*names);
            *names = NULL;
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", collection);
        }
    }
    *n = n_columns;
    return 0;
}

int backend_parse_where(const char *collection, const char *where, char *const *columns,
                            int n_columns, vdx_filter **filter, vdx_error *err)
{
    *filter = NULL;
    if (!where || !where[strspn(where, " \t\n\r")])
        return 0;
    int nb = (int)(sizeof filter_builtins / sizeof filter_builtins[0]);
    vdx_filter_column *cols = malloc((size_t)(nb + n_columns) * sizeof *cols);
    if (!cols)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", collection);
    memcpy(cols, filter_builtins, sizeof filter_builtins);
    for (int i = 0; i < n_columns; i++)
        cols[nb + i] = (vdx_filter_column){columns[i], VDX_COLUMN_TEXT};
    *filter = filter_parse(where, cols, nb + n_columns, err);
    free(cols);
    return *filter ? 0 : -1;
}

void backend_unit_vector(const float *v, int dims, float *out)
{
    double norm = 0;
    for (int d = 0; d < dims; d++)
        norm += (double)v[d] * v[d];
    norm = sqrt(norm);
    for (int d = 0; d < dims; d++)
        out[d] = (float)(v[d] / norm);
}
