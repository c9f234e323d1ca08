/* Module-private (src/common): the SQLite calls every SQLite user in vdx makes the same way
 * (the embedded store, the ClickHouse thumbnail side file, the concept book): open with a
 * busy timeout, exec, prepare, and errors whose kind follows SQLite's result code, so a
 * full disk is NO_SPACE, a damaged file CORRUPT and a failed allocation NO_MEMORY. */
#ifndef VDX_COMMON_SQLITE_UTIL_H
#define VDX_COMMON_SQLITE_UTIL_H

#include <sqlite3.h>

#include "vdx/common.h"

/* The error kind of a SQLite (extended) result code. */
vdx_error_kind sql_error_kind(int rc);
/* Sets err to "CONTEXT: sqlite's message" with the kind of the db's last result code
 * (db NULL: out of memory). Returns -1. */
int sql_fail(sqlite3 *db, vdx_error *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* sqlite3_open_v2 with flags | NOMUTEX and a 10 s busy timeout. On failure *db is NULL and
 * err says "CONTEXT: cannot open PATH: why". */
int sql_open(const char *path, int flags, sqlite3 **db, vdx_error *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Runs SQL (one or more statements); on failure "CONTEXT: SQL: why". */
int sql_exec(sqlite3 *db, const char *sql, vdx_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prepares one statement; on failure NULL and "CONTEXT: SQL: why". */
sqlite3_stmt *sql_prepare(sqlite3 *db, const char *sql, vdx_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* ROLLBACK when a transaction is open (tried twice: it can itself run out of memory). */
void sql_rollback(sqlite3 *db);

#endif
