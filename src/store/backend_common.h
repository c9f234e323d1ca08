/* Helpers both store backends (embedded.c, clickhouse.c) need in exactly the same form:
 * the collection's write lock file, metadata column bookkeeping, timestamps. What
 * differs between the backends (how a column is added, what a lock protects) stays in
 * each backend; this is only the logic they would otherwise each repeat. */
#ifndef VDX_STORE_BACKEND_COMMON_H
#define VDX_STORE_BACKEND_COMMON_H

#include <stddef.h>
#include <sys/types.h>

#include "common/clock.h" /* clock_utc_iso_now: ingest times */
#include "store/filter.h"
#include "vdx/common.h"


/* pwrite() of all size bytes at offset, retried on EINTR. 0, or -1 with errno set. */
int backend_write_all(int fd, const void *data, size_t size, off_t offset);

/* Opens lock_path and takes its exclusive flock() without waiting. Returns the file
 * descriptor, or -1 with a message naming the collection and, when another process
 * holds the lock, the pid that process wrote into the file. */
int backend_lock_open(const char *collection, const char *lock_path, vdx_error *err);

/* Writes this process's pid into the locked file fd (replacing what was there). On
 * failure closes fd and returns -1. */
int backend_lock_claim(const char *collection, const char *lock_path, int fd,
                           vdx_error *err);

/* 1 when name equals (case-insensitively) one of the n names of list. */
int backend_name_in(const char *name, const char *const *list, size_t n);

/* Index of the metadata column called name among columns (names compare
 * case-insensitively, as both SQLite and the ClickHouse backend treat them), or -1. */
int backend_find_column(char *const *columns, int n_columns, const char *name);

/* Checks the metadata column names an add_columns call asks for against the builtin
 * names and the existing columns. Returns 1 when at least one of them is new, 0 when all
 * exist already, -1 (with a message) for a builtin name or a name that differs only in
 * case from an existing column. */
int backend_check_new_columns(const char *collection, const char *const *builtins,
                                  size_t n_builtins, char *const *columns, int n_columns,
                                  const char *const *names, int n, vdx_error *err);

/* 1 when names[i] must be added: no existing column has it and no earlier name of the
 * same call repeats it. */
int backend_column_to_add(char *const *columns, int n_columns, const char *const *names,
                              int i);

/* A malloc'd, NULL-terminated copy of the column names, for the columns() call. */
int backend_copy_columns(const char *collection, char *const *columns, int n_columns,
                             char ***names, int *n, vdx_error *err);

/* Parses a search filter over the builtin columns both backends offer (id, url, width,
 * height, ingested_at) and the collection's metadata columns (text). where is parsed as
 * given, so error offsets count from its first byte; *filter is NULL when where is NULL
 * or blank. */
int backend_parse_where(const char *collection, const char *where, char *const *columns,
                            int n_columns, vdx_filter **filter, vdx_error *err);

/* out = v / |v| over dims elements, the norm summed in double (the cosine query both
 * backends search with). v must not be the zero vector (store.c refuses it). */
void backend_unit_vector(const float *v, int dims, float *out);

#endif
