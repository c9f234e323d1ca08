/* SQLite helpers shared by the embedded store, the ClickHouse side file and the concept
 * book (see sqlite_util.h): one place that turns SQLite's result codes into error kinds. */
#include "common/sqlite_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

vdx_error_kind sql_error_kind(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM: return VDX_ERR_NO_MEMORY;
    case SQLITE_FULL: return VDX_ERR_NO_SPACE;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return VDX_ERR_CORRUPT;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM: return (rc == SQLITE_IOERR_NOMEM) ? VDX_ERR_NO_MEMORY : VDX_ERR_IO;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CONSTRAINT: return VDX_ERR_CONFLICT;
    default: return VDX_ERR_INTERNAL;
    }
}

/* "CONTEXT: [SQL: ]why" with the kind of rc (db NULL: out of memory). */
static int fail_v(sqlite3 *db, int rc, const char *doing, const char *why, vdx_error *err,
                  const char *fmt, va_list ap)
{
    if (!err)
        return -1;
    char context[VDX_ERROR_MAX];
    vsnprintf(context, sizeof context, fmt, ap);
    if (!why)
        why = db ? sqlite3_errmsg(db) : "out of memory";
    vdx_error_kind kind = db ? sql_error_kind(rc) : VDX_ERR_NO_MEMORY;
    /* SQLite's "disk I/O error" or "unable to open database file" alone does not say
     * why: the system's reason does (a full disk, a read-only file system) */
    int sys = db && (kind == VDX_ERR_IO || kind == VDX_ERR_NO_SPACE) ? sqlite3_system_errno(db) : 0;
    if (sys == ENOENT) /* the last of SQLite's tries (e.g. -wal read-only after EROFS), not why */
        sys = 0;
    if (sys == ENOSPC || sys == EDQUOT || sys == EFBIG)
        kind = VDX_ERR_NO_SPACE;
    return vdx_fail_kind(err, kind, "%s: %s%s%s%s%s%s", context, doing ? doing : "",
                         doing ? ": " : "", why, sys ? " (" : "", sys ? strerror(sys) : "",
                         sys ? ")" : "");
}

/* What a failed statement's message says instead of the statement: SQL text is never
 * echoed (it may be long generated text, and messages reach HTTP clients). */
#define REFUSED "the database refused a statement"

int sql_fail(sqlite3 *db, vdx_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(db, db ? sqlite3_extended_errcode(db) : SQLITE_NOMEM, NULL, NULL, err, fmt, ap);
    va_end(ap);
    return -1;
}

int sql_open(const char *path, int flags, sqlite3 **db, vdx_error *err, const char *fmt, ...)
{
    *db = NULL;
    int rc = sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(*db, 10000);
        return 0;
    }
    char doing[4200];
    snprintf(doing, sizeof doing, "cannot open %s", path);
    va_list ap;
    va_start(ap, fmt);
    fail_v(*db, rc, doing, NULL, err, fmt, ap);
    va_end(ap);
    sqlite3_close(*db);
    *db = NULL;
    return -1;
}

int sql_exec(sqlite3 *db, const char *sql, vdx_error *err, const char *fmt, ...)
{
    if (strcmp(sql, "COMMIT") == 0 && sqlite3_get_autocommit(db)) {
        /* SQLite rolled the transaction back by itself: it does so after running out of
         * memory (or after an I/O error, which the failing statement reports first) */
        va_list ap;
        va_start(ap, fmt);
        fail_v(db, SQLITE_NOMEM, REFUSED, "out of memory: SQLite rolled the transaction back", err,
               fmt, ap);
        va_end(ap);
        return -1;
    }
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    va_list ap;
    va_start(ap, fmt);
    fail_v(db, sqlite3_extended_errcode(db), REFUSED, msg, err, fmt, ap);
    va_end(ap);
    sqlite3_free(msg);
    return -1;
}

sqlite3_stmt *sql_prepare(sqlite3 *db, const char *sql, vdx_error *err, const char *fmt, ...)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
    if (rc == SQLITE_OK && stmt)
        return stmt;
    va_list ap;
    va_start(ap, fmt);
    if (rc == SQLITE_OK) /* no statement from non-empty SQL: SQLite ran out of memory */
        fail_v(db, SQLITE_NOMEM, REFUSED, "out of memory", err, fmt, ap);
    else
        fail_v(db, sqlite3_extended_errcode(db), REFUSED, NULL, err, fmt, ap);
    va_end(ap);
    return NULL;
}

void sql_rollback(sqlite3 *db)
{
    /* ROLLBACK itself may fail when memory is short: one more try, and callers that
     * begin a transaction call this first, so none is ever left open */
    for (int i = 0; i < 2 && db && !sqlite3_get_autocommit(db); i++)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}
