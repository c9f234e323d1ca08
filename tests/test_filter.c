/* The `where` filter parser: what it accepts, how it renders for SQLite (values as
 * parameters) and ClickHouse (escaped literals), what it refuses and where (byte
 * offsets), and what the SQLite rendering selects when run. Injection attempts are
 * among the cases. */
#include <sqlite3.h>

#include "store/clickhouse.h"
#include "store/filter.h"
#include "test.h"

static const vdx_filter_column columns[] = {
    {"id", VDX_COLUMN_TEXT},       {"width", VDX_COLUMN_INTEGER},
    {"photo_featured", VDX_COLUMN_TEXT}, {"odd name", VDX_COLUMN_TEXT},
    {"score", VDX_COLUMN_TEXT},    {"we`ird", VDX_COLUMN_TEXT},
};
#define N_COLUMNS ((int)(sizeof columns / sizeof columns[0]))

static char *render(const char *text, int clickhouse, vdx_error *err)
{
    vdx_filter *f = filter_parse(text, columns, N_COLUMNS, err);
    if (!f)
        return NULL;
    char *out = clickhouse ? filter_to_clickhouse(f, err) : filter_to_sqlite(f, 1, err);
    filter_free(f);
    return out;
}

TEST(renders_for_sqlite)
{
    struct { const char *in, *out; } cases[] = {
        {"photo_featured = 't'", "(\"photo_featured\" = ?1)"},
        {"width > 10 AND score >= 2.5", "((\"width\" > ?1) AND (vdx_number(\"score\") >= ?2))"},
        {"\"odd name\" <> 'x' OR NOT id IN ('a','b')",
         "((\"odd name\" <> ?1) OR (NOT (\"id\" IN (?2, ?3))))"},
        {"score BETWEEN -1 AND 1e3", "(vdx_number(\"score\") BETWEEN ?1 AND ?2)"},
        {"lower(id) LIKE 'a%' AND width IS NOT NULL",
         "((vdx_lower(vdx_lower(\"id\")) LIKE vdx_lower(?1)) AND (\"width\" IS NOT NULL))"},
        {"ID == 'a' or Width != 3 and not score is null",
         "((\"id\" = ?1) OR ((\"width\" <> ?2) AND (NOT (\"score\" IS NULL))))"},
        {"score NOT IN (1, 2) AND id NOT LIKE '%x' AND width NOT BETWEEN 1 AND 2",
         "((vdx_number(\"score\") NOT IN (?1, ?2)) AND (vdx_lower(\"id\") NOT LIKE "
         "vdx_lower(?3)) AND (\"width\" NOT BETWEEN ?4 AND ?5))"},
        {"  (  ( id = '日本' ) )  ", "(\"id\" = ?1)"},
        {"length(UPPER(id)) > 3", "(length(vdx_upper(\"id\")) > ?1)"},
        {"score = '7'", "(\"score\" = ?1)"},
        {"1 = 1", "(?1 = ?2)"},
        /* chains are flat; AND binds tighter than OR; parentheses of the same operator
         * merge into the chain, others stay */
        {"id = 'a' OR id = 'b' OR id = 'c'", "((\"id\" = ?1) OR (\"id\" = ?2) OR (\"id\" = ?3))"},
        {"width = 1 OR width = 2 AND width = 3 AND width = 4 OR width = 5",
         "((\"width\" = ?1) OR ((\"width\" = ?2) AND (\"width\" = ?3) AND (\"width\" = ?4)) OR "
         "(\"width\" = ?5))"},
        {"(width = 1 OR width = 2) OR (width = 3 OR width = 4)",
         "((\"width\" = ?1) OR (\"width\" = ?2) OR (\"width\" = ?3) OR (\"width\" = ?4))"},
        {"(width = 1 OR width = 2) AND width = 3 AND (width = 4 AND width = 5)",
         "(((\"width\" = ?1) OR (\"width\" = ?2)) AND (\"width\" = ?3) AND (\"width\" = ?4) AND "
         "(\"width\" = ?5))"},
        {"NOT (width = 1 OR width = 2) OR width = 3",
         "((NOT ((\"width\" = ?1) OR (\"width\" = ?2))) OR (\"width\" = ?3))"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vdx_error err = {{0}};
        char *out = render(cases[i].in, 0, &err);
        CHECK(out && strcmp(out, cases[i].out) == 0, "%s\n      got      %s\n      expected %s",
              cases[i].in, out ? out : err.message, cases[i].out);
        free(out);
    }
}

TEST(renders_for_clickhouse)
{
    struct { const char *in, *out; } cases[] = {
        {"photo_featured = 't'", "(`photo_featured` = 't')"},
        /* the id "a1\' OR 1=1 --", written as SQL with the quote doubled */
        {"id = 'a1\\'' OR 1=1 --'", "(`id` = 'a1\\\\\\' OR 1=1 --')"},
        {"id = 'line\nbreak\ttab\rcr'", "(`id` = 'line\\nbreak\\ttab\\rcr')"},
        {"score > 5 AND width <> 3", "((toFloat64OrNull(replaceRegexpOne(if(match(`score`, '^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$'), `score`, ''), '^[+]', '')) > 5) AND (`width` != 3))"},
        {"lower(id) LIKE 'x%' OR length(id) BETWEEN 1 AND 2.5",
         "((lowerUTF8(lowerUTF8(`id`)) LIKE replaceAll(lowerUTF8('x%'), '\\\\', '\\\\\\\\')) OR "
         "(lengthUTF8(`id`) BETWEEN 1 AND 2.5))"},
        {"upper(id) NOT LIKE 'É%'",
         "(lowerUTF8(upperUTF8(`id`)) NOT LIKE replaceAll(lowerUTF8('É%'), '\\\\', '\\\\\\\\'))"},
        /* '\' is literal in a pattern, as in SQLite: doubled for ClickHouse's LIKE, where it
         * escapes ("back\slash" matched "backslash", '%\%' only a '%') */
        {"id LIKE '%back\\s_ash%'",
         "(lowerUTF8(`id`) LIKE replaceAll(lowerUTF8('%back\\\\s_ash%'), '\\\\', '\\\\\\\\'))"},
        {"id LIKE photo_featured",
         "(lowerUTF8(`id`) LIKE replaceAll(lowerUTF8(`photo_featured`), '\\\\', '\\\\\\\\'))"},
        {"\"we`ird\" IS NULL AND \"odd name\" IN ('a', 'b''c')",
         "((`we\\`ird` IS NULL) AND (if(isNull(`odd name`), NULL, `odd name` IN ('a', "
         "'b\\'c'))))"},
        /* NULL [NOT] IN (...) is NULL, as in SQL, not ClickHouse's 0 (NOT IN: 1) */
        {"photo_featured NOT IN ('t')",
         "(if(isNull(`photo_featured`), NULL, `photo_featured` NOT IN ('t')))"},
        {"id = 'a' OR id = 'b' AND width = 1 OR id = 'c'",
         "((`id` = 'a') OR ((`id` = 'b') AND (`width` = 1)) OR (`id` = 'c'))"},
        /* 18.16 has no NOT BETWEEN: a syntax error there */
        {"width NOT BETWEEN 1 AND 2", "(NOT (`width` BETWEEN 1 AND 2))"},
        {"score IN (-1, .5)", "(if(isNull(toFloat64OrNull(replaceRegexpOne(if(match(`score`, '^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$'), `score`, ''), '^[+]', ''))), NULL, toFloat64OrNull(replaceRegexpOne(if(match(`score`, '^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$'), `score`, ''), '^[+]', '')) IN (-1, .5)))"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vdx_error err = {{0}};
        char *out = render(cases[i].in, 1, &err);
        CHECK(out && strcmp(out, cases[i].out) == 0, "%s\n      got      %s\n      expected %s",
              cases[i].in, out ? out : err.message, cases[i].out);
        free(out);
    }
}

TEST(clickhouse_quoting)
{
    struct { const char *in, *out; } cases[] = {
        {"O'Brien", "'O\\'Brien'"},
        {"back\\slash", "'back\\\\slash'"},
        {"a1\\' OR 1=1 --", "'a1\\\\\\' OR 1=1 --'"},
        {"\\'", "'\\\\\\''"},
        {"café ☕", "'café ☕'"},
        {"", "''"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = clickhouse_quote_string(cases[i].in);
        CHECK(out && strcmp(out, cases[i].out) == 0, "%s → %s, expected %s", cases[i].in,
              out ? out : "NULL", cases[i].out);
        free(out);
    }
    char *id = clickhouse_quote_identifier("a`b\\c");
    CHECK(id && strcmp(id, "`a\\`b\\\\c`") == 0, "identifier %s", id ? id : "NULL");
    free(id);
}

TEST(refuses_with_byte_offsets)
{
    struct { const char *in, *message; } cases[] = {
        {"id = 1;", "where: ';' at byte 6 is not allowed: a filter is one expression"},
        {"photo_featured = 't'; DROP TABLE items",
         "where: ';' at byte 20 is not allowed: a filter is one expression"},
        {"1=1 --", "where: comments are not allowed ('--' at byte 4)"},
        {"id = 'a' /**/", "where: comments are not allowed ('/*' at byte 9)"},
        {"id = 'a1\\' OR 1=1 --'", "where: comments are not allowed ('--' at byte 18)"},
        {"id = ", "where: expected a column, string or number at byte 5, found the end of the "
                  "filter"},
        {"(id = 'a'", "where: expected ')' at byte 9, found the end of the filter"},
        {"id = 'a' id = 'b'", "where: unexpected 'id' at byte 9 after a complete expression"},
        {"id = 'a' UNION SELECT 1",
         "where: unexpected 'UNION' at byte 9 after a complete expression"},
        {"id ! 'a'", "where: unexpected '!' at byte 3 (did you mean '!='?)"},
        {"id IN ('a', 1)", "where: the IN list mixes strings and numbers (byte 12)"},
        {"id IN ()", "where: expected a string or number in the IN list at byte 7, found ')'"},
        {"id IN (SELECT id FROM items)", "where: subqueries are not allowed (SELECT at byte 7)"},
        {"id = (SELECT 1)", "where: expected a column, string or number at byte 5, found '(' "
                            "(subexpressions go around conditions, not values)"},
        {"id = x'00'", "where: unknown column 'x' at byte 5 (columns: id, width, "
                       "photo_featured, odd name, score, we`ird)"},
        {"id = \"t\"", "where: unknown column 't' at byte 5 (columns: id, width, "
                       "photo_featured, odd name, score, we`ird); strings take single quotes"},
        {"id = NULL", "where: NULL at byte 5 is not a value: use IS NULL / IS NOT NULL"},
        {"id = 1abc", "where: malformed number at byte 5"},
        {"load_extension('x') = 1",
         "where: function 'load_extension' at byte 0 is not allowed (allowed: lower, upper, "
         "length)"},
        {"id = ?", "where: '?' at byte 5 is not allowed in a filter"},
        {"id = :x", "where: ':' at byte 5 is not allowed in a filter"},
        {"id = 'a' || 'b'", "where: '|' at byte 9 is not allowed in a filter"},
        {"idé = 1", "where: unexpected character at byte 2 (text outside quotes must be ASCII)"},
        {"id = 'open", "where: string starting at byte 5 is not closed"},
        {"\"open = 1", "where: quoted name starting at byte 0 is not closed"},
        {"id", "where: expected a comparison (=, <>, <, IN, LIKE, IS NULL, BETWEEN...) at byte "
               "2, found the end of the filter"},
        {"id IS 'a'", "where: expected NULL after IS at byte 6, found ''a''"},
        {"width BETWEEN 1 OR 2", "where: expected AND in BETWEEN at byte 16, found 'OR'"},
        {"id NOT = 'a'", "where: expected IN, LIKE or BETWEEN after NOT at byte 7, found '='"},
        {"", "where: empty filter"},
        {"   ", "where: empty filter"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vdx_error err = {{0}};
        vdx_filter *f = filter_parse(cases[i].in, columns, N_COLUMNS, &err);
        CHECK(!f, "accepted: %s", cases[i].in);
        CHECK(strcmp(err.message, cases[i].message) == 0,
              "%s\n      got      %s\n      expected %s", cases[i].in, err.message,
              cases[i].message);
        filter_free(f);
    }
}

static int valid_utf8(const char *s)
{
    size_t bad;
    return vdx_utf8_check(s, strlen(s), &bad) == 0;
}

/* Found by fuzz/fuzz_filter.c: a long name or token was echoed whole (a name) or cut at 40
 * bytes inside a character (a token), so the message lost its byte offset and the list of
 * columns past VDX_ERROR_MAX, or was no longer UTF-8 (it reaches JSON replies). Echoes
 * are now at most 40 bytes, cut at a character boundary, with "…". */
TEST(long_echoes_are_shortened)
{
    static char text[8192], expected[512];
    vdx_error err = {{0}};
    /* a quoted name of 2,000 'é': the offset and the columns stay in the message */
    size_t n = 0;
    text[n++] = '"';
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(text + n, "é");
    strcpy(text + n, "\" = 1");
    vdx_filter *f = filter_parse(text, columns, N_COLUMNS, &err);
    CHECK(!f && valid_utf8(err.message) &&
              !strcmp(err.message, "where: unknown column 'éééééééééééééééééééé…' at byte 0 "
                                   "(columns: id, width, photo_featured, odd name, score, "
                                   "we`ird); strings take single quotes"),
          "%s", err.message);
    filter_free(f);
    /* a function name of 2,000 bytes */
    memset(text, 'f', 2000);
    strcpy(text + 2000, "(id) = 'a'");
    f = filter_parse(text, columns, N_COLUMNS, &err);
    CHECK(!f && !strcmp(err.message, "where: function 'ffffffffffffffffffffffffffffffffffffffff…' "
                                     "at byte 0 is not allowed (allowed: lower, upper, length)"),
          "%s", err.message);
    filter_free(f);
    /* a token whose 40th byte is inside a character */
    f = filter_parse("id = id 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxéé'", columns, N_COLUMNS, &err);
    CHECK(!f && valid_utf8(err.message) &&
              !strcmp(err.message, "where: unexpected ''xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' at "
                                   "byte 8 after a complete expression"),
          "%s", err.message);
    filter_free(f);
    /* a schema whose names do not all fit: the list ends with "…", never inside a name */
    static char names[60][32];
    vdx_filter_column many[60];
    for (int i = 0; i < 60; i++) {
        snprintf(names[i], sizeof names[i], "column_%02d_ÿÿÿÿÿÿÿÿ", i);
        many[i] = (vdx_filter_column){names[i], VDX_COLUMN_TEXT};
    }
    f = filter_parse("nope = 1", many, 60, &err);
    snprintf(expected, sizeof expected, "where: unknown column 'nope' at byte 0 (columns: %s, %s",
             names[0], names[1]);
    CHECK(!f && valid_utf8(err.message) && !strncmp(err.message, expected, strlen(expected)) &&
              strstr(err.message, ", …)") && strlen(err.message) < VDX_ERROR_MAX - 1,
          "%s", err.message);
    filter_free(f);
}

TEST(deep_nesting_refused)
{
    char text[2100];
    size_t n = 0;
    for (int i = 0; i < 1000; i++)
        text[n++] = '(';
    strcpy(text + n, "id = 'a'");
    vdx_error err = {{0}};
    vdx_filter *f = filter_parse(text, columns, N_COLUMNS, &err);
    CHECK(!f && strstr(err.message, "nested too deeply"), "%s", err.message);
    filter_free(f);
    n = 0;
    for (int i = 0; i < 1000; i++) {
        memcpy(text + n, "NOT ", 4);
        n += 4;
        if (n > 2000)
            break;
    }
    strcpy(text + n, "id = 'a'");
    f = filter_parse(text, columns, N_COLUMNS, &err);
    CHECK(!f && strstr(err.message, "nested too deeply"), "%s", err.message);
    filter_free(f);
    f = filter_parse("NOT NOT (NOT id = 'a')", columns, N_COLUMNS, &err);
    CHECK(f, "a little nesting: %s", err.message);
    filter_free(f);
}

/* An in-memory SQLite database with the test schema as table t, the filter's functions
 * registered, and `rows` (SQL) run on it; NULL (with the reason printed) on failure. */
static sqlite3 *table_of(const char *rows)
{
    sqlite3 *db = NULL;
    vdx_error err = {{0}};
    if (sqlite3_open(":memory:", &db) != SQLITE_OK || filter_register_sqlite(db, &err) != 0 ||
        sqlite3_exec(db,
                     "CREATE TABLE t(id TEXT, width INTEGER, photo_featured TEXT, "
                     "\"odd name\" TEXT, score TEXT, \"we`ird\" TEXT);",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, rows, NULL, NULL, NULL) != SQLITE_OK) {
        printf("    the test table: %s %s\n", err.message, db ? sqlite3_errmsg(db) : "");
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* Runs a filter on a small SQLite table and returns the ids it selects, "a,b,...". */
static int select_ids(sqlite3 *db, const char *where, char *out, size_t size)
{
    vdx_error err = {{0}};
    vdx_filter *f = filter_parse(where, columns, N_COLUMNS, &err);
    if (!f) {
        snprintf(out, size, "error: %s", err.message);
        return -1;
    }
    char *expr = filter_to_sqlite(f, 1, &err);
    char *sql = sqlite3_mprintf("SELECT id FROM t WHERE %s ORDER BY id", expr);
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
    sqlite3_free(sql);
    free(expr);
    if (rc != SQLITE_OK || filter_bind_sqlite(f, stmt, 1, &err) != 0) {
        snprintf(out, size, "error: %s", rc != SQLITE_OK ? sqlite3_errmsg(db) : err.message);
        sqlite3_finalize(stmt);
        filter_free(f);
        return -1;
    }
    out[0] = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", len ? "," : "", sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    filter_free(f);
    return 0;
}

/* `k` nested calls of lower() around id, compared with 'a'. */
static void nested_lower(int k, char *out)
{
    out[0] = 0;
    for (int i = 0; i < k; i++)
        strcat(out, "lower(");
    strcat(out, "id");
    for (int i = 0; i < k; i++)
        strcat(out, ")");
    strcat(out, " = 'a'");
}

/* F10: function calls count towards the depth limit, and the deepest filter the parser
 * accepts (calls, parentheses or NOTs) runs on SQLite without a parser stack overflow. */
TEST(depth_counts_function_calls)
{
    static char text[8192], out[256];
    vdx_error err = {{0}};
    nested_lower(300, text);
    vdx_filter *f = filter_parse(text, columns, N_COLUMNS, &err);
    CHECK(!f && strstr(err.message, "nested too deeply") && !strstr(err.message, "SELECT"), "%s", err.message);
    filter_free(f);
    sqlite3 *db = table_of("INSERT INTO t(id) VALUES ('A'), ('b');");
    REQUIRE(db, "table");
    /* the deepest calls, parentheses and NOTs the parser accepts */
    int depth;
    for (depth = 1; depth < 200; depth++) {
        nested_lower(depth, text);
        f = filter_parse(text, columns, N_COLUMNS, &err);
        filter_free(f);
        if (!f)
            break;
    }
    nested_lower(depth - 1, text);
    CHECK(depth > 10 && select_ids(db, text, out, sizeof out) == 0 && !strcmp(out, "A"), "%d calls: %s",
          depth - 1, out);
    /* the deepest parentheses and NOTs the parser accepts */
    for (depth = 1; depth < 200; depth++) {
        text[0] = 0;
        for (int i = 0; i < depth; i++)
            strcat(text, "(");
        strcat(text, "id = 'b'");
        for (int i = 0; i < depth; i++)
            strcat(text, ")");
        f = filter_parse(text, columns, N_COLUMNS, &err);
        filter_free(f);
        if (!f)
            break;
    }
    text[0] = 0;
    for (int i = 0; i < depth - 1; i++)
        strcat(text, "(");
    strcat(text, "id = 'b'");
    for (int i = 0; i < depth - 1; i++)
        strcat(text, ")");
    CHECK(depth > 10 && select_ids(db, text, out, sizeof out) == 0 && !strcmp(out, "b"), "%d parentheses: %s",
          depth - 1, out);
    for (depth = 1; depth < 200; depth++) {
        text[0] = 0;
        for (int i = 0; i < depth; i++)
            strcat(text, "NOT ");
        strcat(text, "id = 'b'");
        f = filter_parse(text, columns, N_COLUMNS, &err);
        filter_free(f);
        if (!f)
            break;
    }
    text[0] = 0;
    for (int i = 0; i < depth - 1; i++)
        strcat(text, "NOT ");
    strcat(text, "id = 'b'");
    CHECK(select_ids(db, text, out, sizeof out) == 0 && !strcmp(out, (depth - 1) % 2 ? "A" : "b"),
          "%d NOTs: %s", depth - 1, out);
    sqlite3_close(db);
}

/* The deepest parenthesis in text. */
static int paren_depth(const char *text)
{
    int depth = 0, most = 0;
    for (; *text; text++) {
        depth += *text == '(' ? 1 : *text == ')' ? -1 : 0;
        most = depth > most ? depth : most;
    }
    return most;
}

/* A chain of n terms "col op <i>" joined by the keyword, for the values i of first,
 * first + step, ...; quoted makes the values '0001' strings. */
static void chain(char *out, size_t size, int n, const char *col, const char *op,
                  const char *keyword, int first, int step, int quoted)
{
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, quoted ? "%s%s %s '%04d'" : "%s%s %s %d",
                                i ? keyword : "", col, op, first + i * step);
}

/* A plain chain of 1,000 ORs (or ANDs) is one level of nesting, not 1,000: it is
 * accepted, renders a few parentheses deep on both backends and selects the right rows
 * on SQLite; it once became 1,000 nested pairs, "parser stack overflow" at 90 terms. */
TEST(long_chains)
{
    static char text[70000], out[20000], expected[20000];
    vdx_error err = {{0}};
    sqlite3 *db = table_of("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n "
                           "WHERE i < 1999) INSERT INTO t(id, width) SELECT printf('%04d', i), i "
                           "FROM n;");
    REQUIRE(db, "table");
    size_t len = 0; /* the odd rows, 0001,0003,...,1999 */
    for (int i = 1; i < 2000; i += 2)
        len += (size_t)snprintf(expected + len, sizeof expected - len, "%s%04d", i > 1 ? "," : "",
                                i);
    struct { const char *what, *col, *op, *keyword; int first, step, quoted; } cases[] = {
        {"1,000 ORs", "id", "=", " OR ", 1, 2, 1},     /* the odd ids */
        {"1,000 ANDs", "width", "<>", " AND ", 0, 2, 0}, /* not an even width */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        chain(text, sizeof text, 1000, cases[c].col, cases[c].op, cases[c].keyword,
              cases[c].first, cases[c].step, cases[c].quoted);
        CHECK(select_ids(db, text, out, sizeof out) == 0 && strcmp(out, expected) == 0,
              "%s: %.200s", cases[c].what, out);
        for (int clickhouse = 0; clickhouse <= 1; clickhouse++) {
            char *sql = render(text, clickhouse, &err);
            CHECK(sql && paren_depth(sql) <= 4, "%s for %s: %d parentheses deep", cases[c].what,
                  clickhouse ? "ClickHouse" : "SQLite", sql ? paren_depth(sql) : -1);
            free(sql);
        }
    }
    /* the longest chain the byte limit allows: 9,361 terms, 18,721 values */
    len = 0;
    while (len + strlen("1=0 OR id = '0007'") <= 65536)
        len += (size_t)snprintf(text + len, sizeof text - len, "1=0 OR ");
    strcpy(text + len, "id = '0007'");
    CHECK(select_ids(db, text, out, sizeof out) == 0 && strcmp(out, "0007") == 0,
          "%zu bytes of ORs: %.200s", strlen(text), out);
    /* a long chain inside the deepest parentheses the parser accepts */
    int depth;
    for (depth = 1; depth < 200; depth++) {
        len = 0;
        for (int i = 0; i < depth; i++)
            text[len++] = '(';
        chain(text + len, sizeof text - len, 1000, "id", "=", " OR ", 1, 2, 1);
        len = strlen(text);
        for (int i = 0; i < depth; i++)
            text[len++] = ')';
        text[len] = 0;
        vdx_filter *f = filter_parse(text, columns, N_COLUMNS, &err);
        filter_free(f);
        if (!f)
            break;
    }
    CHECK(depth > 10 && strstr(err.message, "nested too deeply"), "%d: %s", depth, err.message);
    len = strlen(text); /* one pair fewer */
    memmove(text, text + 1, len - 2);
    text[len - 2] = 0;
    CHECK(select_ids(db, text, out, sizeof out) == 0 && strcmp(out, expected) == 0,
          "%d parentheses around 1,000 ORs: %.200s", depth - 1, out);
    sqlite3_close(db);
}

/* SQLite refuses a LIKE pattern over 50,000 bytes only when the statement runs, and both
 * sides are lowered first (which can lengthen them by half): a literal pattern is refused
 * above 10,000 bytes when parsed; one of 10,000 bytes that grows when lowered still runs. */
TEST(long_like_patterns)
{
    static char text[40000];
    vdx_error err = {{0}};
    snprintf(text, sizeof text, "id LIKE '");
    memset(text + 9, 'a', 10001);
    strcpy(text + 9 + 10001, "'");
    vdx_filter *f = filter_parse(text, columns, N_COLUMNS, &err);
    CHECK(!f && err.kind == VDX_ERR_INVALID &&
              !strcmp(err.message, "where: the LIKE pattern at byte 8 is 10001 bytes; the limit "
                                   "is 10000"),
          "%s", err.message);
    filter_free(f);
    /* 5,000 'Ⱥ' (2 bytes each) lower to 5,000 'ⱥ' (3 bytes each): 15,000 bytes */
    size_t n = (size_t)snprintf(text, sizeof text, "\"odd name\" NOT LIKE '");
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "Ⱥ");
    snprintf(text + n, sizeof text - n, "'");
    f = filter_parse(text, columns, N_COLUMNS, &err);
    CHECK(f != NULL, "a 10,000-byte pattern: %s", err.message);
    filter_free(f);
    sqlite3 *db = table_of("INSERT INTO t VALUES ('a', 1, 't', 'x', '1', NULL);");
    REQUIRE(db, "table");
    char got[64];
    select_ids(db, text, got, sizeof got);
    CHECK(!strcmp(got, "a"), "the 10,000-byte pattern in SQLite: %s", got);
    sqlite3_close(db);
}

TEST(sqlite_semantics)
{
    sqlite3 *db = table_of("INSERT INTO t VALUES ('a', 100, 't', 'x', '10', NULL),"
                           "('b', 2000, 'f', 'O''Brien', '9.5', 'w'),"
                           "('c', NULL, 't', 'a1\\'' OR 1=1 --', ' 7 ', NULL),"
                           "('d', 5, 'f', 'café', '0x10', NULL),"
                           "('e', 6, 't', '', 'inf', NULL),"
                           "('f', 7, 'f', NULL, '1e3', NULL),"
                           "('g', 8, 't', NULL, '', NULL);");
    REQUIRE(db, "table");
    struct { const char *where, *ids; } cases[] = {
        {"photo_featured = 't'", "a,c,e,g"},
        {"score > 9", "a,b,f"},  /* numeric: '10' > 9 although '10' < '9' as text */
        {"score < 100", "a,b"}, /* ' 7 ', '0x10', 'inf', '' are not numbers */
        {"score = '10'", "a"},
        {"score BETWEEN 7 AND 10", "a,b"},
        {"score = '1e3' OR score > 999", "f"},
        {"score IN (10, 1000)", "a,f"},
        {"\"odd name\" = 'O''Brien'", "b"},
        {"\"odd name\" = 'a1\\'' OR 1=1 --'", "c"},
        {"\"odd name\" = 'café'", "d"},
        {"\"odd name\" IS NULL", "f,g"},
        {"\"odd name\" = ''", "e"},
        {"width >= 100 OR width IS NULL", "a,b,c"},
        {"NOT (photo_featured = 't') AND width < 1000", "d,f"},
        {"lower(\"odd name\") LIKE 'o%'", "b"},
        {"\"odd name\" LIKE 'CAFÉ'", "d"},          /* LIKE ignores case, Unicode too */
        {"upper(\"odd name\") = 'CAFÉ'", "d"},
        {"lower(upper(\"odd name\")) = 'café'", "d"},
        {"\"odd name\" LIKE '%brien'", "b"},
        {"length(\"odd name\") = 4", "d"},
        {"\"we`ird\" IS NOT NULL", "b"},
        {"id NOT IN ('a', 'b', 'c') AND id <> 'g'", "d,e,f"},
        {"1 = 1 AND id = 'a'", "a"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[256];
        select_ids(db, cases[i].where, got, sizeof got);
        CHECK(strcmp(got, cases[i].ids) == 0, "%s: %s, expected %s", cases[i].where, got,
              cases[i].ids);
    }
    sqlite3_close(db);
}

int main(void)
{
    RUN(renders_for_sqlite);
    RUN(renders_for_clickhouse);
    RUN(clickhouse_quoting);
    RUN(refuses_with_byte_offsets);
    RUN(long_echoes_are_shortened);
    RUN(long_like_patterns);
    RUN(deep_nesting_refused);
    RUN(depth_counts_function_calls);
    RUN(long_chains);
    RUN(sqlite_semantics);
    return test_summary("filter");
}
