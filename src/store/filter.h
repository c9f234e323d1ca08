/* Metadata filters (`--where`, the web page's filter box): untrusted text parsed into an
 * expression tree by filter.c, then rendered for a backend. The text never reaches a
 * database as SQL: column names are checked against the collection and re-quoted,
 * values are bound as parameters (SQLite) or escaped by the backend's literal rules
 * (ClickHouse). Grammar and semantics: see "Filters" in include/vdx/store.h. */
#ifndef VDX_STORE_FILTER_H
#define VDX_STORE_FILTER_H

#include <sqlite3.h>

#include "vdx/common.h"

typedef enum { VDX_COLUMN_TEXT = 0, VDX_COLUMN_INTEGER = 1 } vdx_column_type;

/* A column a filter may name. */
typedef struct vdx_filter_column {
    const char *name;
    vdx_column_type type;
} vdx_filter_column;

typedef struct vdx_filter vdx_filter;

/* Parses text into a filter over the given columns. Errors give the byte offset and what
 * was found: "where: unknown column 'x' at byte 0 (columns: id, url, ...)",
 * "where: ';' at byte 21 is not allowed: a filter is one expression". */
vdx_filter *filter_parse(const char *text, const vdx_filter_column *columns,
                             int n_columns, vdx_error *err);
void filter_free(vdx_filter *filter);

/* SQLite: the expression as SQL text (malloc'd) with values as numbered parameters
 * ?first_param, ?first_param+1, ...; identifiers double-quoted. Numeric comparisons
 * on text columns call vdx_number(), lower/upper and LIKE vdx_lower()/vdx_upper(), which
 * filter_register_sqlite defines. */
char *filter_to_sqlite(const vdx_filter *filter, int first_param, vdx_error *err);
int filter_bind_sqlite(const vdx_filter *filter, sqlite3_stmt *stmt, int first_param,
                           vdx_error *err);
/* Defines on a connection vdx_number(x): x as a REAL when the whole text is a decimal
 * number (no spaces, like ClickHouse's toFloat64OrNull), else NULL; vdx_lower(x) and
 * vdx_upper(x): Unicode case mapping (like ClickHouse's lowerUTF8/upperUTF8). */
int filter_register_sqlite(sqlite3 *db, vdx_error *err);

/* ClickHouse: the expression as SQL text (malloc'd), identifiers in backticks, strings
 * as escaped literals, numeric comparisons on String columns through toFloat64OrNull,
 * lower/upper/length as lowerUTF8/upperUTF8/lengthUTF8. LIKE ignores case on both
 * backends: both sides are lowered. */
char *filter_to_clickhouse(const vdx_filter *filter, vdx_error *err);

#endif
