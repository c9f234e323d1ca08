/* libFuzzer target for the metadata filter parser (src/store/filter.c), the `where` text of
 * web requests and of the CLI: the input (up to its first NUL) is parsed against a fixed
 * schema shaped like a collection's (the store's builtin columns, id, url, width, height
 * and ingested_at, then text metadata columns, names with a space, a backtick, a double
 * quote and a non-ASCII letter among them). A refusal must be VDX_ERR_INVALID with a
 * message "where: ..." that is valid UTF-8 when the input is, and that names a byte offset
 * inside the input ("byte N", N <= its length; "empty filter" and the length limit
 * excepted; a "byte N" beyond it must be the input's own text, echoed). An accepted filter
 * renders for SQLite with no single quote and no ';', '--' or '/ *' outside its quoted
 * names, only the grammar's keywords and functions as bare words, every quoted name one of
 * the schema's and parameters ?2..?N; the statement the embedded store builds from it
 * ("SELECT row FROM items WHERE row < ?1 AND (...)", filter_register_sqlite on the
 * connection) must prepare, bind (filter_bind_sqlite) and step to SQLITE_DONE over a few
 * fixed rows (the store fails the query on any other result). The ClickHouse rendering
 * must be non-NULL, its 'strings' and `names` closed (backslash escapes), nothing outside
 * them but ASCII keywords, functions, numbers, operators and parentheses (no ';', '--',
 * '/ *', '"' or '?'), every `name` one of the schema's, and valid UTF-8 when the input is.
 * Built by scripts/build-fuzz.sh.
 * FUZZ_SOURCES: src/store/filter.c src/store/clickhouse_sql.c src/common/sqlite_util.c src/common/strbuf.c src/common/common.c */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const vdx_filter_column columns[] = {
    {"id", VDX_COLUMN_TEXT},
    {"url", VDX_COLUMN_TEXT},
    {"width", VDX_COLUMN_INTEGER},
    {"height", VDX_COLUMN_INTEGER},
    {"ingested_at", VDX_COLUMN_TEXT},
    {"photo_description", VDX_COLUMN_TEXT},
    {"photo_width", VDX_COLUMN_TEXT},
    {"photo_featured", VDX_COLUMN_TEXT},
    {"odd name", VDX_COLUMN_TEXT},
    {"we`ird", VDX_COLUMN_TEXT},
    {"q\"uote", VDX_COLUMN_TEXT},
    {"café", VDX_COLUMN_TEXT},
};
#define N_COLUMNS ((int)(sizeof columns / sizeof columns[0]))

/* The store's items table (embedded.c), the metadata columns added as TEXT. */
static const char schema[] =
    "CREATE TABLE items(id TEXT NOT NULL UNIQUE, url TEXT, width INTEGER, height INTEGER, "
    "ingested_at TEXT, row INTEGER UNIQUE, failure TEXT, failed_at TEXT, "
    "photo_description TEXT, photo_width TEXT, photo_featured TEXT, \"odd name\" TEXT, "
    "\"we`ird\" TEXT, \"q\"\"uote\" TEXT, \"café\" TEXT);"
    "INSERT INTO items VALUES"
    "('a', 'https://h.example/a.jpg', 3840, 2562, '2026-12-06T04:00:00Z', 0, NULL, NULL, "
    " 'a red circle', '3840', 't', 'O''Brien', NULL, 'x', 'Éclair'),"
    "('b', 'https://h.example/b.jpg', NULL, NULL, '2026-12-06T04:00:01Z', 1, NULL, NULL, "
    " NULL, ' 7 ', 'f', '', 'w', NULL, 'ǅ ß İ'),"
    "('c', 'file:///tmp/c.png', 5, 7, NULL, 2, NULL, NULL, "
    " 'a1\\'' OR 1=1 --', '1e999', NULL, 'café', '%_', '0x10', '日本'),"
    "('d', 'https://h.example/d.jpg', -1, 0, '', 3, 'timeout', '2026-12-06T04:00:02Z', "
    " 'Ⱥ long long long long long long long long description', '-2.5', 't', 'nan', 'inf', "
    " '9223372036854775808', '');";

static sqlite3 *db;

static int utf8_ok(const char *s)
{
    size_t bad;
    return vdx_utf8_check(s, strlen(s), &bad) == 0;
}

static int is_column(const char *name, size_t len)
{
    for (int i = 0; i < N_COLUMNS; i++)
        if (strlen(columns[i].name) == len && !memcmp(columns[i].name, name, len))
            return 1;
    return 0;
}

static int word_in(const char *word, size_t len, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == len && !strncmp(*words, word, len))
            return 1;
    return 0;
}

/* Checks the text outside quotes: bare words from the list, numbers, parameters when
 * params (each in [2, max_param]), operators, parentheses, commas and spaces only. */
static void check_bare(const char *s, size_t len, const char *const *words, int params,
                       int max_param)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c == ';' || c == '"' || c == '\'' || c == '`' || c >= 0x80 || c < ' ' ||
            (c == '-' && i + 1 < len && s[i + 1] == '-') ||
            (c == '/' && i + 1 < len && s[i + 1] == '*'))
            abort(); /* quotes are handled by the caller; none of these is rendered bare */
        if (isalpha(c) || c == '_') {
            size_t j = i;
            while (j < len && (isalnum((unsigned char)s[j]) || s[j] == '_'))
                j++;
            if (!word_in(s + i, j - i, words))
                abort(); /* a bare word the renderer does not write: injected text */
            i = j;
        } else if (c == '?') {
            if (!params)
                abort();
            char *end;
            long n = strtol(s + i + 1, &end, 10);
            if (end == s + i + 1 || n < 2 || n > max_param)
                abort();
            i = (size_t)(end - s);
        } else if (isdigit(c) || c == '.') {
            while (i < len && (isdigit((unsigned char)s[i]) || s[i] == '.'))
                i++;
            if (i < len && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < len && (s[i] == '+' || s[i] == '-'))
                    i++;
                if (i >= len || !isdigit((unsigned char)s[i]))
                    abort();
                while (i < len && isdigit((unsigned char)s[i]))
                    i++;
            }
            if (i < len && (isalnum((unsigned char)s[i]) || s[i] == '_'))
                abort();
        } else if (strchr(" (),=<>!-+", c)) {
            i++;
        } else {
            abort();
        }
    }
}

static void check_sqlite_text(const char *sql, int max_param)
{
    static const char *const words[] = {"OR", "AND", "NOT", "IN", "LIKE", "IS", "NULL",
                                        "BETWEEN", "vdx_number", "vdx_lower", "vdx_upper",
                                        "length", NULL};
    char name[256];
    size_t start = 0, i = 0;
    while (sql[i]) {
        if (sql[i] != '"') {
            i++;
            continue;
        }
        check_bare(sql + start, i - start, words, 1, max_param);
        size_t n = 0;
        for (i++;; i++) {
            if (!sql[i])
                abort(); /* an unclosed quoted name */
            if (sql[i] == '"') {
                if (sql[i + 1] != '"')
                    break;
                i++;
            }
            if (n < sizeof name)
                name[n++] = sql[i];
        }
        if (!is_column(name, n))
            abort();
        start = ++i;
    }
    check_bare(sql + start, i - start, words, 1, max_param);
}

static void check_clickhouse_text(const char *sql)
{
    static const char *const words[] = {"OR", "AND", "NOT", "IN", "LIKE", "IS", "NULL",
                                        "BETWEEN", "lowerUTF8", "upperUTF8", "lengthUTF8",
                                        "toFloat64OrNull", "replaceRegexpOne", "replaceAll", "if",
                                        "isNull", "match",
                                        NULL};
    char name[256];
    size_t start = 0, i = 0;
    while (sql[i]) {
        char quote = sql[i];
        if (quote != '\'' && quote != '`') {
            i++;
            continue;
        }
        check_bare(sql + start, i - start, words, 0, 0);
        size_t n = 0;
        for (i++; sql[i] != quote; i++) {
            if (!sql[i])
                abort(); /* an unclosed literal or name */
            if (sql[i] == '\\') {
                i++;
                if (!sql[i] || (quote == '`' && sql[i] != '\\' && sql[i] != '`') ||
                    (quote == '\'' && !strchr("\\'ntr", sql[i])))
                    abort(); /* an escape the quoting does not write */
            } else if (quote == '\'' && strchr("\n\t\r", sql[i])) {
                abort(); /* written escaped */
            }
            if (n < sizeof name)
                name[n++] = sql[i];
        }
        if (quote == '`' && !is_column(name, n))
            abort();
        start = ++i;
    }
    check_bare(sql + start, i - start, words, 0, 0);
}

/* Every "byte N" in a refusal: N within the input, unless the message echoes the input's
 * own text there. Returns whether one lies within the input. */
static int check_offsets(const char *message, const char *text, size_t len)
{
    int inside = 0;
    for (const char *m = message; (m = strstr(m, "byte ")) != NULL; m += 5) {
        if (!isdigit((unsigned char)m[5]))
            continue;
        char *end;
        unsigned long long at = strtoull(m + 5, &end, 10);
        if (at <= len) {
            inside = 1;
        } else if (!memmem(text, len, m, (size_t)(end - m))) {
            abort(); /* an offset past the end of the input */
        }
    }
    return inside;
}

static void run_sqlite(const vdx_filter *f)
{
    vdx_error err = {{0}};
    char *expr = filter_to_sqlite(f, 2, &err);
    if (!expr)
        abort(); /* only out of memory */
    char *sql = sqlite3_mprintf("SELECT row FROM items WHERE row < ?1 AND (%s)", expr);
    if (!sql)
        abort();
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK || !stmt)
        abort(); /* an accepted filter the store could not run */
    sqlite3_free(sql);
    int max_param = sqlite3_bind_parameter_count(stmt);
    check_sqlite_text(expr, max_param);
    free(expr);
    if (filter_bind_sqlite(f, stmt, 2, &err) != 0 || sqlite3_bind_int64(stmt, 1, 4) != SQLITE_OK)
        abort();
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        if (sqlite3_column_int64(stmt, 0) < 0 || sqlite3_column_int64(stmt, 0) >= 4)
            abort();
    if (rc != SQLITE_DONE)
        abort(); /* the store fails the whole query on any other result */
    sqlite3_finalize(stmt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!db) {
        vdx_error err = {{0}};
        if (sqlite3_open(":memory:", &db) != SQLITE_OK || filter_register_sqlite(db, &err) != 0 ||
            sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK)
            abort();
    }
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    size_t len = strlen(text);
    int text_utf8 = utf8_ok(text);

    vdx_error err = {{0}};
    vdx_filter *f = filter_parse(text, columns, N_COLUMNS, &err);
    if (!f) {
        if (err.kind != VDX_ERR_INVALID || strncmp(err.message, "where: ", 7) != 0 ||
            !err.message[7])
            abort(); /* a refusal says why, as an invalid filter */
        if (text_utf8 && !utf8_ok(err.message))
            abort(); /* messages reach JSON replies as text */
        int inside = check_offsets(err.message, text, len);
        if (!inside && strcmp(err.message, "where: empty filter") != 0 &&
            strncmp(err.message, "where: filter is ", 17) != 0)
            abort(); /* every other refusal says where */
        free(text);
        return 0;
    }
    run_sqlite(f);
    char *ch = filter_to_clickhouse(f, &err);
    if (!ch)
        abort();
    check_clickhouse_text(ch);
    if (text_utf8 && !utf8_ok(ch))
        abort();
    free(ch);
    filter_free(f);
    free(text);
    return 0;
}
