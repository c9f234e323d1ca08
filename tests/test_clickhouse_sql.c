/* The text side of the ClickHouse backend, checked against expected text: store URL
 * parsing (and that no error repeats the password), the SQL of the myscale, clickhouse
 * and legacy dialects (tables, vector index DDL, searches), float literals, escaping of
 * strings, identifiers and external-table TSV, RowBinary bytes and server error texts.
 * No MyScale or current ClickHouse can run here, so their SQL is pinned as text; the
 * legacy dialect also runs against a real 18.16 in tests/integration/clickhouse.sh (and on
 * a two-shard cluster in tests/integration/clickhouse_cluster.sh). */
#include <stdlib.h>
#include <string.h>

#include "store/clickhouse.h"
#include "store/filter.h"
#include "test.h"

TEST(url_full_form)
{
    ch_url u;
    vdx_error err = {{0}};
    REQUIRE(ch_url_parse("clickhouse://alice:p%40ss:w@db.example.com:9000/vectors?table=photos"
                         "&dialect=myscale&index=SCANN&index_params=alpha=3",
                         &u, &err) == 0,
            "%s", err.message);
    CHECK(!u.https && strcmp(u.host, "db.example.com") == 0 && u.port == 9000, "host %s:%d",
          u.host, u.port);
    CHECK(strcmp(u.user, "alice") == 0 && strcmp(u.password, "p@ss:w") == 0, "credentials");
    CHECK(strcmp(u.database, "vectors") == 0 && strcmp(u.table, "photos") == 0, "db/table");
    CHECK(u.dialect == CH_DIALECT_MYSCALE, "dialect %d", u.dialect);
    CHECK(strcmp(u.index_type, "SCANN") == 0 && strcmp(u.index_params, "alpha=3") == 0, "index");
}

TEST(url_defaults_and_schemes)
{
    ch_url u;
    vdx_error err = {{0}};
    REQUIRE(ch_url_parse("clickhouse://localhost", &u, &err) == 0, "%s", err.message);
    CHECK(u.port == 8123 && !u.https && strcmp(u.database, "default") == 0 && !u.user[0] &&
              u.dialect == CH_DIALECT_AUTO && !u.table[0],
          "defaults: %d %s", u.port, u.database);
    REQUIRE(ch_url_parse("https://h.cloud:8443/?database=prod", &u, &err) == 0, "%s", err.message);
    CHECK(u.https && u.port == 8443 && strcmp(u.database, "prod") == 0, "https");
    REQUIRE(ch_url_parse("https://h.cloud", &u, &err) == 0, "%s", err.message);
    CHECK(u.port == 8443, "https default port %d", u.port);
    REQUIRE(ch_url_parse("clickhouse://h?secure=1", &u, &err) == 0, "%s", err.message);
    CHECK(u.https && u.port == 8443, "secure=1");
    REQUIRE(ch_url_parse("http://127.0.0.1:18123/?dialect=legacy", &u, &err) == 0, "%s",
            err.message);
    CHECK(u.dialect == CH_DIALECT_LEGACY && u.port == 18123, "legacy");
    char endpoint[64];
    ch_url_endpoint(&u, endpoint, sizeof endpoint);
    CHECK(strcmp(endpoint, "127.0.0.1:18123") == 0, "endpoint %s", endpoint);
}

TEST(url_errors_never_show_the_password)
{
    static const struct {
        const char *url, *message;
    } cases[] = {
        {"mysql://u:hunter2@h/db", "store URL: must start with clickhouse://, http:// or https://"},
        {"clickhouse://u:hunter2@h:0/db", "store URL: port 0 is outside 1..65535"},
        {"clickhouse://u:hunter2@h:80x/db", "store URL: port of 'h' must be a number"},
        {"clickhouse://u:hunter2@/db", "store URL: no host name"},
        {"clickhouse://:hunter2@h/db", "store URL: empty user name before '@'"},
        {"clickhouse://u:hunter2%zz@h/db",
         "store URL: bad password (percent escape or too long); the password is not shown"},
        {"clickhouse://u:hunter2@h/db/x", "store URL: the path must be /DATABASE (one component)"},
        {"clickhouse://u:hunter2@h/db?dialect=oracle",
         "store URL: unknown dialect 'oracle' (use myscale, clickhouse, legacy or auto)"},
        {"clickhouse://u:hunter2@h/db?tabel=x",
         "store URL: unknown parameter 'tabel' (known: table, dialect, database, index, "
         "index_params, secure, cluster, shards)"},
        {"clickhouse://u:hunter2@h/db?table=a`b",
         "store URL: table 'a`b' must be 1 to 100 letters, digits or '_'"},
        {"clickhouse://u:hunter2@h/db?table=a&table=b", "store URL: parameter 'table' given twice"},
        {"clickhouse://u:hunter2@h/db?database=other",
         "store URL: database 'db' in the path and 'other' in ?database= differ"},
        {"clickhouse://u:hunter2@h/db?index_params=a')--",
         "store URL: index_params 'a')--' may hold only letters, digits and '_=.,-'"},
        {"https://u:hunter2@h/db?secure=0", "store URL: secure=0 contradicts the https:// scheme"},
        {"clickhouse://u:hunter2@h;rm/db",
         "store URL: host 'h;rm' has a character that is not a letter, digit, '.', '-' or '_'"},
        {"clickhouse://u:hunter2@h/db#frag", "store URL: a '#' fragment is not allowed"},
        {"clickhouse://u:hunter2@h/db?table", "store URL: parameter 'table' is not name=value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ch_url u;
        vdx_error err = {{0}};
        CHECK(ch_url_parse(cases[i].url, &u, &err) == -1, "%s parsed", cases[i].url);
        CHECK(strcmp(err.message, cases[i].message) == 0, "%s:\n      got  %s\n      want %s",
              cases[i].url, err.message, cases[i].message);
        CHECK(!strstr(err.message, "hunter2"), "password in '%s'", err.message);
    }
}

TEST(float_literals_always_parse_as_floats)
{
    const float v[] = {1.0f, -2.0f, 0.5f, 1e-8f, 123456789.0f, 0.1f, -0.0f, 3e20f};
    strbuf b = {0};
    ch_sql_float_array(&b, v, 8);
    char *s = strbuf_take(&b);
    REQUIRE(s, "oom");
    CHECK(strcmp(s, "[1.0, -2.0, 0.5, 9.99999994e-09, 123456792.0, 0.100000001, -0.0, "
                    "3.00000006e+20]") == 0,
          "got %s", s);
    /* %.9g round-trips every float exactly */
    const char *p = s + 1;
    for (int i = 0; i < 8; i++) {
        char *end;
        float back = strtof(p, &end);
        CHECK(back == v[i] && memcmp(&back, &v[i], 4) == 0, "element %d: %s", i, p);
        p = end + 2;
    }
    free(s);
}

TEST(create_table_per_dialect)
{
    vdx_error err = {{0}};
    char *legacy = ch_sql_create_items(CH_DIALECT_LEGACY, "vdx_photos", NULL, 512, "", "", &err);
    CHECK(legacy && strcmp(legacy,
                           "CREATE TABLE IF NOT EXISTS `vdx_photos` (id String, url String, "
                           "vector Array(Float32), width Nullable(Int32), height Nullable(Int32), "
                           "ingested_at String, row UInt64) ENGINE = MergeTree ORDER BY id") == 0,
          "legacy: %s", legacy);
    char *myscale = ch_sql_create_items(CH_DIALECT_MYSCALE, "unsplash_25k", NULL, 512, "", "", &err);
    CHECK(myscale && strcmp(myscale,
                            "CREATE TABLE IF NOT EXISTS `unsplash_25k` (id String, url String, "
                            "vector Array(Float32), width Nullable(Int32), height "
                            "Nullable(Int32), ingested_at String, row UInt64, CONSTRAINT vec_len "
                            "CHECK length(vector) = 512) ENGINE = MergeTree ORDER BY id") == 0,
          "myscale: %s", myscale);
    char *current = ch_sql_create_items(CH_DIALECT_CLICKHOUSE, "t", NULL, 768, "", "", &err);
    CHECK(current && strcmp(current,
                            "CREATE TABLE IF NOT EXISTS `t` (id String, url String, vector "
                            "Array(Float32), width Nullable(Int32), height Nullable(Int32), "
                            "ingested_at String, row UInt64, CONSTRAINT vec_len CHECK "
                            "length(vector) = 768, INDEX vi vector TYPE "
                            "vector_similarity('hnsw', 'cosineDistance', 768)) ENGINE = "
                            "MergeTree ORDER BY id") == 0,
          "clickhouse: %s", current);
    char *tuned = ch_sql_create_items(CH_DIALECT_CLICKHOUSE, "t", NULL, 512, "hnsw", "bf16,32,256", &err);
    CHECK(tuned && strstr(tuned, "INDEX vi vector TYPE vector_similarity('hnsw', "
                                 "'cosineDistance', 512, 'bf16', 32, 256))"),
          "tuned: %s", tuned);
    char *none = ch_sql_create_items(CH_DIALECT_CLICKHOUSE, "t", NULL, 512, "none", "", &err);
    CHECK(none && !strstr(none, "INDEX") && strstr(none, "CONSTRAINT vec_len"), "none: %s", none);
    free(legacy);
    free(myscale);
    free(current);
    free(tuned);
    free(none);
}

TEST(myscale_vector_index_ddl)
{
    vdx_error err = {{0}};
    char *mstg = ch_sql_add_vector_index(CH_DIALECT_MYSCALE, "unsplash_25k", NULL, "", "", &err);
    CHECK(mstg && strcmp(mstg, "ALTER TABLE `unsplash_25k` ADD VECTOR INDEX vindex vector TYPE "
                               "MSTG('metric_type=Cosine')") == 0,
          "mstg: %s", mstg);
    char *scann = ch_sql_add_vector_index(CH_DIALECT_MYSCALE, "t", NULL, "SCANN", "alpha=3,x=1", &err);
    CHECK(scann && strcmp(scann, "ALTER TABLE `t` ADD VECTOR INDEX vindex vector TYPE "
                                 "SCANN('metric_type=Cosine', 'alpha=3', 'x=1')") == 0,
          "scann: %s", scann);
    CHECK(!ch_sql_add_vector_index(CH_DIALECT_MYSCALE, "t", NULL, "none", "", &err), "none");
    CHECK(!ch_sql_add_vector_index(CH_DIALECT_CLICKHOUSE, "t", NULL, "", "", &err), "clickhouse");
    CHECK(!ch_sql_add_vector_index(CH_DIALECT_LEGACY, "t", NULL, "", "", &err), "legacy");
    free(mstg);
    free(scann);
}

static const float q3[] = {0.6f, 0.0f, -0.8f};

TEST(search_sql_legacy)
{
    ch_search_sql s = {.dialect = CH_DIALECT_LEGACY, .table = "vdx_c", .query = q3, .dims = 3,
                       .k = 9, .offset = 18};
    char *sql = ch_sql_search(&s);
    CHECK(sql && strcmp(sql, "WITH CAST([0.600000024, 0.0, -0.800000012] AS Array(Float32)) AS vdx_q SELECT id, url, 1 - "
                             "arraySum((x, y) -> x * y, vector, vdx_q) AS vdx_dist FROM `vdx_c` ORDER BY "
                             "vdx_dist, id LIMIT 1 BY id LIMIT 18, 9 FORMAT RowBinary") == 0,
          "got %s", sql);
    free(sql);
    s.has_exclusions = 1;
    s.n_exclude = 5000;
    s.where = "(`featured` = 't')";
    s.with_vectors = 1;
    sql = ch_sql_search(&s);
    CHECK(sql && strcmp(sql, "WITH CAST([0.600000024, 0.0, -0.800000012] AS Array(Float32)) AS vdx_q SELECT id, url, 1 - "
                             "arraySum((x, y) -> x * y, vector, vdx_q) AS vdx_dist, vector FROM `vdx_c` "
                             "WHERE id NOT IN (SELECT id FROM excl) AND ((`featured` = 't')) "
                             "ORDER BY vdx_dist, id LIMIT 1 BY id LIMIT 18, 9 FORMAT RowBinary") == 0,
          "got %s", sql);
    free(sql);
}

TEST(search_sql_myscale)
{
    ch_search_sql s = {.dialect = CH_DIALECT_MYSCALE, .table = "unsplash_25k", .query = q3,
                       .dims = 3, .k = 9, .has_exclusions = 1, .n_exclude = 2};
    char *sql = ch_sql_search(&s);
    CHECK(sql && strcmp(sql, "SELECT id, url, toFloat64(vdx_d) AS vdx_dist FROM (SELECT id, url, "
                             "distance(vector, [0.600000024, 0.0, -0.800000012]) AS vdx_d FROM "
                             "`unsplash_25k` WHERE id NOT IN (SELECT id FROM excl) ORDER BY vdx_d "
                             "LIMIT 11) ORDER BY vdx_dist, id LIMIT 1 BY id LIMIT 0, 9 FORMAT RowBinary") == 0,
          "got %s", sql);
    free(sql);
}

TEST(search_sql_clickhouse_overfetch_and_prefilter)
{
    ch_search_sql s = {.dialect = CH_DIALECT_CLICKHOUSE, .table = "t", .query = q3, .dims = 3,
                       .k = 9, .offset = 9, .has_exclusions = 1, .n_exclude = 40,
                       .where = "(`featured` = 't')", .with_vectors = 1};
    char *sql = ch_sql_search(&s);
    CHECK(sql && strcmp(sql, "SELECT id, url, toFloat64(vdx_d) AS vdx_dist, vector FROM (SELECT id, "
                             "url, vector, cosineDistance(vector, [0.600000024, 0.0, "
                             "-0.800000012]) AS vdx_d FROM `t` WHERE id NOT IN (SELECT id FROM "
                             "excl) AND ((`featured` = 't')) ORDER BY vdx_d LIMIT 58) ORDER BY "
                             "vdx_dist, id LIMIT 1 BY id LIMIT 9, 9 SETTINGS vector_search_filter_strategy = "
                             "'prefilter' FORMAT RowBinary") == 0,
          "got %s", sql);
    free(sql);
    s.where = NULL;
    s.has_exclusions = 0;
    s.n_exclude = 0;
    s.with_vectors = 0;
    sql = ch_sql_search(&s);
    CHECK(sql && strcmp(sql, "SELECT id, url, toFloat64(vdx_d) AS vdx_dist FROM (SELECT id, url, "
                             "cosineDistance(vector, [0.600000024, 0.0, -0.800000012]) AS vdx_d "
                             "FROM `t` ORDER BY vdx_d LIMIT 18) ORDER BY vdx_dist, id LIMIT 1 BY id "
                             "LIMIT 9, 9 "
                             "FORMAT RowBinary") == 0,
          "got %s", sql);
    free(sql);
}

TEST(score_all_sql_is_portable)
{
    for (int d = CH_DIALECT_LEGACY; d <= CH_DIALECT_MYSCALE; d++) {
        ch_search_sql s = {.dialect = (ch_dialect)d, .table = "t", .query = q3, .dims = 3,
                           .score_all = 1, .where = "(`a` = 'x')"};
        char *sql = ch_sql_search(&s);
        CHECK(sql && strcmp(sql, "WITH CAST([0.600000024, 0.0, -0.800000012] AS Array(Float32)) AS vdx_q SELECT id, url, "
                                 "arraySum((x, y) -> x * y, vector, vdx_q) AS vdx_dist FROM `t` WHERE "
                                 "((`a` = 'x')) ORDER BY row LIMIT 1 BY id FORMAT RowBinary") == 0,
              "%s: %s", ch_dialect_name((ch_dialect)d), sql);
        free(sql);
    }
}

TEST(filter_values_are_escaped_not_doubled)
{
    const vdx_filter_column cols[] = {{"id", VDX_COLUMN_TEXT}, {"photo`grapher", VDX_COLUMN_TEXT},
                                      {"width", VDX_COLUMN_INTEGER}};
    vdx_error err = {{0}};
    /* the value a1\' OR 1=1 -- written in filter syntax ('' is a quote) */
    vdx_filter *f = filter_parse("id = 'a1\\'' OR 1=1 --' OR \"photo`grapher\" = 'x\ny'",
                                     cols, 3, &err);
    REQUIRE(f, "%s", err.message);
    char *sql = filter_to_clickhouse(f, &err);
    CHECK(sql && strcmp(sql, "((`id` = 'a1\\\\\\' OR 1=1 --') OR (`photo\\`grapher` = 'x\\ny'))") ==
                     0,
          "got %s", sql);
    free(sql);
    filter_free(f);
    char *quoted = clickhouse_quote_string("it's \\ a\ttab\r");
    CHECK(quoted && strcmp(quoted, "'it\\'s \\\\ a\\ttab\\r'") == 0, "got %s", quoted);
    free(quoted);
}

TEST(tsv_escaping_of_external_tables)
{
    strbuf b = {0};
    ch_tsv_escape(&b, "a\\b\tc\nd\re'f");
    char *s = strbuf_take(&b);
    CHECK(s && strcmp(s, "a\\\\b\\tc\\nd\\re'f") == 0, "got %s", s);
    free(s);
}

TEST(rowbinary_round_trip)
{
    strbuf b = {0};
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ch_rb_string(&b, "id'1");
    ch_rb_string(&b, big); /* 299 bytes: a two-byte LEB128 length */
    ch_rb_nullable_string(&b, NULL);
    ch_rb_nullable_int32(&b, 0, 640);
    const float v[2] = {1.5f, -2.0f};
    ch_rb_floats(&b, v, 2);
    REQUIRE(!b.oom, "oom");
    const uint8_t expect_head[] = {4, 'i', 'd', '\'', '1', 0xab, 0x02};
    CHECK(memcmp(b.data, expect_head, sizeof expect_head) == 0, "string encoding");
    size_t at = 7 + 299;
    const uint8_t expect_tail[] = {1, 0, 0x80, 0x02, 0, 0, 2, 0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0};
    CHECK(b.len == at + sizeof expect_tail && memcmp(b.data + at, expect_tail,
                                                      sizeof expect_tail) == 0,
          "nullable/array encoding (%zu bytes)", b.len);
    ch_reader r = {(const uint8_t *)b.data, b.len, 0};
    char *s = NULL;
    vdx_error err = {{0}};
    CHECK(ch_read_string(&r, &s, &err) == 0 && strcmp(s, "id'1") == 0, "read id");
    free(s);
    CHECK(ch_read_string(&r, &s, &err) == 0 && strlen(s) == 299, "read long string");
    free(s);
    r.pos += 1 + 5;
    float back[2];
    CHECK(ch_read_floats(&r, back, 2, &err) == 0 && back[0] == 1.5f && back[1] == -2.0f,
          "read floats: %s", err.message);
    r.pos = b.len - 9;
    CHECK(ch_read_floats(&r, back, 3, &err) == -1 &&
              strstr(err.message, "a vector of 2 floats at byte"),
          "dims mismatch: %s", err.message);
    r.pos = b.len - 3;
    double d;
    CHECK(ch_read_float64(&r, &d, &err) == -1 &&
              strcmp(err.message, "ClickHouse response: truncated Float64 at byte 318 of 321") == 0,
          "truncated: %s", err.message);
    strbuf_free(&b);
}

TEST(server_error_texts)
{
    int code;
    char msg[256];
    CHECK(ch_parse_server_error("Code: 60, e.displayText() = DB::Exception: Table "
                                "default.nonexist doesn't exist., e.what() = DB::Exception\n",
                                &code, msg, sizeof msg) == 0 &&
              code == 60 && strcmp(msg, "Table default.nonexist doesn't exist.") == 0,
          "18.16: %d %s", code, msg);
    CHECK(ch_parse_server_error("Code: 516. DB::Exception: bob: Authentication failed: password "
                                "is incorrect, or there is no user with such name. "
                                "(AUTHENTICATION_FAILED) (version 24.8.4.13 (official build))\n",
                                &code, msg, sizeof msg) == 0 &&
              code == 516 && strcmp(msg, "bob: Authentication failed: password is incorrect, or "
                                         "there is no user with such name. "
                                         "(AUTHENTICATION_FAILED)") == 0,
          "current: %d %s", code, msg);
    CHECK(ch_parse_server_error("<html>Bad Gateway</html>\nmore", &code, msg, sizeof msg) == -1 &&
              code == 0 && strcmp(msg, "<html>Bad Gateway</html>") == 0,
          "no code: %s", msg);
}

/* Issue 10: ClickHouse's error texts quote the SQL we sent; what reaches API clients and
 * the CLI is cut before it (server_failure in clickhouse_http.c applies this). */
TEST(server_errors_never_quote_sql)
{
    static const char *const cases[][2] = {
        {"Code: 62, e.displayText() = DB::Exception: Syntax error: failed at position 35: "
         "lower(lower(x))) FROM vdx.items WHERE 1. Expected one of: token, e.what() = "
         "DB::Exception\n",
         "Syntax error: failed at position 35 (the query text it quoted is not shown)"},
        {"Code: 62. DB::Exception: Syntax error: failed at position 8 ('FROMM') (line 1, col 8): "
         "FROMM vdx.items. Expected one of: FROM. (SYNTAX_ERROR) (version 24.8.4.13 (official "
         "build))\n",
         "Syntax error: failed at position 8 (the query text it quoted is not shown)"},
        {"Code: 47. DB::Exception: Missing columns: 'foo' while processing query: 'SELECT id "
         "FROM vdx.items WHERE foo = 1', required columns: 'foo' 'id'. (UNKNOWN_IDENTIFIER) "
         "(version 22.8.1)\n",
         "Missing columns: 'foo' (the query text it quoted is not shown)"},
        {"Code: 47. DB::Exception: Unknown expression identifier `foo` in scope SELECT id FROM "
         "vdx.items WHERE foo = 1. (UNKNOWN_IDENTIFIER) (version 24.8.4.13)\n",
         "Unknown expression identifier `foo` (the query text it quoted is not shown)"},
        {"Code: 306. DB::Exception: Maximum parse depth (1000) exceeded: SELECT lower(lower("
         "lower(x)) FROM vdx.items. (TOO_DEEP_RECURSION)\n",
         "Maximum parse depth (1000) exceeded (the query text it quoted is not shown)"},
        {"Code: 60, e.displayText() = DB::Exception: Table default.nonexist doesn't exist., "
         "e.what() = DB::Exception\n",
         "Table default.nonexist doesn't exist."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int code;
        char msg[600];
        CHECK(ch_parse_server_error(cases[i][0], &code, msg, sizeof msg) == 0, "case %zu", i);
        ch_redact_server_error(msg, sizeof msg);
        CHECK(!strcmp(msg, cases[i][1]), "case %zu: '%s', want '%s'", i, msg, cases[i][1]);
        CHECK(!strstr(msg, "vdx.items") && !strstr(msg, "SELECT"), "case %zu quotes SQL: %s", i,
              msg);
    }
}

TEST(collection_tables)
{
    ch_tables t;
    ch_tables_for("", "my.photos-1", &t);
    CHECK(strcmp(t.items, "vdx_my.photos-1") == 0 && strcmp(t.info, "vdx_my.photos-1_info") == 0 &&
              strcmp(t.failures, "vdx_my.photos-1_failures") == 0,
          "%s %s %s", t.items, t.info, t.failures);
    ch_tables_for("unsplash_25k", "default", &t);
    CHECK(strcmp(t.items, "unsplash_25k") == 0 && strcmp(t.info, "unsplash_25k_info") == 0, "%s",
          t.items);
}

TEST(cluster_url)
{
    ch_url u;
    vdx_error err = {{0}};
    REQUIRE(ch_url_parse("clickhouse://h:8123/db?cluster=two_shards&shards=a.lan:8123,b-2:18123",
                         &u, &err) == 0,
            "%s", err.message);
    CHECK(strcmp(u.cluster, "two_shards") == 0 && strcmp(u.shards, "a.lan:8123,b-2:18123") == 0,
          "cluster '%s' shards '%s'", u.cluster, u.shards);
    REQUIRE(ch_url_parse("clickhouse://h?cluster=c", &u, &err) == 0, "%s", err.message);
    CHECK(!u.shards[0], "no shards: ON CLUSTER");
    const struct {
        const char *url, *message;
    } bad[] = {
        {"clickhouse://h?shards=a:1", "shards= needs cluster=NAME"},
        {"clickhouse://h?cluster=c&shards=a:1,b", "shard 'b' in shards= is not HOST:PORT"},
        {"clickhouse://h?cluster=c&shards=a:0", "shard 'a:0' in shards= is not HOST:PORT"},
        {"clickhouse://h?cluster=c&shards=a:12x", "shard 'a:12x' in shards= is not HOST:PORT"},
        {"clickhouse://h?cluster=c%60x", "cluster 'c`x' must be a name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = (vdx_error){{0}};
        CHECK(ch_url_parse(bad[i].url, &u, &err) == -1 && strstr(err.message, bad[i].message),
              "%s: '%s'", bad[i].url, err.message);
    }
}

/* The cluster DDL of every dialect: the shards' table ON CLUSTER, the Distributed table. */
TEST(cluster_ddl_per_dialect)
{
    vdx_error err = {{0}};
    char *legacy = ch_sql_create_items(CH_DIALECT_LEGACY, "p_shard", "vdx_two", 512, "", "", &err);
    CHECK(legacy && strcmp(legacy, "CREATE TABLE IF NOT EXISTS `p_shard` ON CLUSTER `vdx_two` "
                                   "(id String, url String, vector Array(Float32), width "
                                   "Nullable(Int32), height Nullable(Int32), ingested_at String, "
                                   "row UInt64) ENGINE = MergeTree ORDER BY id") == 0,
          "legacy: %s", legacy);
    char *current = ch_sql_create_items(CH_DIALECT_CLICKHOUSE, "p_shard", "c", 768, "", "", &err);
    CHECK(current && strcmp(current,
                            "CREATE TABLE IF NOT EXISTS `p_shard` ON CLUSTER `c` (id String, url "
                            "String, vector Array(Float32), width Nullable(Int32), height "
                            "Nullable(Int32), ingested_at String, row UInt64, CONSTRAINT vec_len "
                            "CHECK length(vector) = 768, INDEX vi vector TYPE "
                            "vector_similarity('hnsw', 'cosineDistance', 768)) ENGINE = "
                            "MergeTree ORDER BY id") == 0,
          "clickhouse: %s", current);
    char *myscale = ch_sql_create_items(CH_DIALECT_MYSCALE, "p_shard", "c", 512, "", "", &err);
    CHECK(myscale && strstr(myscale, "CREATE TABLE IF NOT EXISTS `p_shard` ON CLUSTER `c` (id ") &&
              strstr(myscale, "CONSTRAINT vec_len CHECK length(vector) = 512)"),
          "myscale: %s", myscale);
    char *index = ch_sql_add_vector_index(CH_DIALECT_MYSCALE, "p_shard", "c", "", "", &err);
    CHECK(index && strcmp(index, "ALTER TABLE `p_shard` ON CLUSTER `c` ADD VECTOR INDEX vindex "
                                 "vector TYPE MSTG('metric_type=Cosine')") == 0,
          "myscale index: %s", index);
    char *empty = ch_sql_create_items(CH_DIALECT_LEGACY, "p_shard", "", 4, "", "", &err);
    CHECK(empty && !strstr(empty, "ON CLUSTER"), "per-shard DDL: %s", empty);
    char *dist = ch_sql_create_distributed("p", "c", "c", "db", "p_shard", CH_ITEMS_COLUMNS, "id");
    CHECK(dist && strcmp(dist, "CREATE TABLE IF NOT EXISTS `p` ON CLUSTER `c` (id String, url "
                               "String, vector Array(Float32), width Nullable(Int32), height "
                               "Nullable(Int32), ingested_at String, row UInt64) ENGINE = "
                               "Distributed('c', 'db', 'p_shard', cityHash64(`id`))") == 0,
          "distributed: %s", dist);
    char *info = ch_sql_create_distributed("p_info", NULL, "it's", "db", "p_info_shard",
                                           CH_INFO_COLUMNS, "key");
    CHECK(info && strcmp(info, "CREATE TABLE IF NOT EXISTS `p_info` (key String, value String) "
                               "ENGINE = Distributed('it\\'s', 'db', 'p_info_shard', "
                               "cityHash64(`key`))") == 0,
          "distributed info, per-shard DDL: %s", info);
    ch_tables t;
    ch_tables_for("p", "default", &t);
    CHECK(strcmp(t.items_shard, "p_shard") == 0 && strcmp(t.info_shard, "p_info_shard") == 0 &&
              strcmp(t.failures_shard, "p_failures_shard") == 0,
          "%s %s %s", t.items_shard, t.info_shard, t.failures_shard);
    free(legacy);
    free(current);
    free(myscale);
    free(index);
    free(empty);
    free(dist);
    free(info);
}

int main(void)
{
    RUN(url_full_form);
    RUN(url_defaults_and_schemes);
    RUN(url_errors_never_show_the_password);
    RUN(float_literals_always_parse_as_floats);
    RUN(create_table_per_dialect);
    RUN(myscale_vector_index_ddl);
    RUN(search_sql_legacy);
    RUN(search_sql_myscale);
    RUN(search_sql_clickhouse_overfetch_and_prefilter);
    RUN(score_all_sql_is_portable);
    RUN(filter_values_are_escaped_not_doubled);
    RUN(tsv_escaping_of_external_tables);
    RUN(rowbinary_round_trip);
    RUN(server_error_texts);
    RUN(server_errors_never_quote_sql);
    RUN(collection_tables);
    RUN(cluster_url);
    RUN(cluster_ddl_per_dialect);
    return test_summary("clickhouse_sql");
}
