/* The text side of the ClickHouse/MyScale backend: parsing the store URL, writing the
 * SQL of each dialect (table DDL, vector index DDL, search and score queries), encoding
 * and decoding RowBinary, and reading the server's error texts.
 *
 * Everything here is a pure function so that tests/test_clickhouse_sql.c can check the
 * exact SQL of the dialects no server here can run (MyScale, current ClickHouse). Values
 * never enter SQL text from here except float literals (formatted, not user text) and
 * identifiers (backtick-quoted with escapes): ids and filter values travel in external
 * tables or through the filter module's escaping. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/clickhouse.h"

/* ---- quoting (the filter module renders ClickHouse SQL with these) ---- */

char *clickhouse_quote_string(const char *s)
{
    strbuf b = {0};
    strbuf_put(&b, "'");
    for (; *s; s++) {
        switch (*s) {
        case '\\': strbuf_put(&b, "\\\\"); break;
        case '\'': strbuf_put(&b, "\\'"); break;
        case '\n': strbuf_put(&b, "\\n"); break;
        case '\t': strbuf_put(&b, "\\t"); break;
        case '\r': strbuf_put(&b, "\\r"); break;
        default: {
            char c[2] = {*s, 0};
            strbuf_put(&b, c);
        }
        }
    }
    strbuf_put(&b, "'");
    return strbuf_take(&b);
}

char *clickhouse_quote_identifier(const char *s)
{
    strbuf b = {0};
    strbuf_put(&b, "`");
    for (; *s; s++) {
        char c[3] = {*s, 0, 0};
        if (*s == '\\' || *s == '`') {
            c[0] = '\\';
            c[1] = *s;
        }
        strbuf_put(&b, c);
    }
    strbuf_put(&b, "`");
    return strbuf_take(&b);
}

/* ---- dialects ---- */

static const char *const dialect_names[] = {"auto", "legacy", "clickhouse", "myscale"};

const char *ch_dialect_name(ch_dialect dialect)
{
    return dialect >= CH_DIALECT_AUTO && dialect <= CH_DIALECT_MYSCALE ? dialect_names[dialect]
                                                                       : "?";
}

int ch_dialect_from_name(const char *name)
{
    for (int d = CH_DIALECT_LEGACY; d <= CH_DIALECT_MYSCALE; d++)
        if (strcmp(name, dialect_names[d]) == 0)
            return d;
    return -1;
}

/* ---- the store URL ---- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+n) into out; fails on a bad escape, a NUL or overflow. */
static int url_decode(const char *s, size_t n, char *out, size_t size)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (len + 1 >= size)
            return -1;
        out[len++] = c;
    }
    out[len] = 0;
    return 0;
}

static int all_chars_in(const char *s, const char *extra)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
            return 0;
    return 1;
}

int ch_url_parse(const char *url, ch_url *out, vdx_error *err)
{
    memset(out, 0, sizeof *out);
    const char *p;
    int secure_scheme = -1;
    if (strncmp(url, "clickhouse://", 13) == 0) {
        p = url + 13;
    } else if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
        secure_scheme = 0;
    } else if (strncmp(url, "https://", 8) == 0) {
        p = url + 8;
        secure_scheme = 1;
    } else {
        return vdx_fail(err, "store URL: must start with clickhouse://, http:// or https://");
    }
    out->https = secure_scheme == 1;
    size_t authority_len = strcspn(p, "/?#");
    if (p[authority_len] == '#')
        return vdx_fail(err, "store URL: a '#' fragment is not allowed");
    /* user:password@ — the last '@' of the authority ends it */
    const char *at = NULL;
    for (size_t i = 0; i < authority_len; i++)
        if (p[i] == '@')
            at = p + i;
    if (at) {
        size_t info_len = (size_t)(at - p);
        const char *colon = memchr(p, ':', info_len);
        size_t user_len = colon ? (size_t)(colon - p) : info_len;
        if (user_len == 0)
            return vdx_fail(err, "store URL: empty user name before '@'");
        if (url_decode(p, user_len, out->user, sizeof out->user) != 0)
            return vdx_fail(err, "store URL: bad user name (percent escape or longer than "
                                 "%zu bytes)",
                            sizeof out->user - 1);
        if (colon && url_decode(colon + 1, info_len - user_len - 1, out->password,
                                sizeof out->password) != 0)
            return vdx_fail(err, "store URL: bad password (percent escape or too long); "
                                 "the password is not shown");
        authority_len -= info_len + 1;
        p = at + 1;
    }
    /* host[:port] */
    const char *colon = memchr(p, ':', authority_len);
    size_t host_len = colon ? (size_t)(colon - p) : authority_len;
    if (host_len == 0)
        return vdx_fail(err, "store URL: no host name");
    if (host_len >= sizeof out->host)
        return vdx_fail(err, "store URL: host name longer than %zu bytes", sizeof out->host - 1);
    memcpy(out->host, p, host_len);
    out->host[host_len] = 0;
    if (!all_chars_in(out->host, ".-_"))
        return vdx_fail(err, "store URL: host '%s' has a character that is not a letter, digit, "
                             "'.', '-' or '_'",
                        out->host);
    out->port = 0;
    if (colon) {
        const char *port = colon + 1;
        size_t port_len = authority_len - host_len - 1;
        long value = 0;
        if (port_len == 0 || port_len > 5)
            return vdx_fail(err, "store URL: bad port after host '%s'", out->host);
        for (size_t i = 0; i < port_len; i++) {
            if (!isdigit((unsigned char)port[i]))
                return vdx_fail(err, "store URL: port of '%s' must be a number", out->host);
            value = value * 10 + (port[i] - '0');
        }
        if (value < 1 || value > 65535)
            return vdx_fail(err, "store URL: port %ld is outside 1..65535", value);
        out->port = (int)value;
    }
    p += authority_len;
    /* /database */
    if (*p == '/') {
        p++;
        size_t db_len = strcspn(p, "?#");
        if (p[db_len] == '#')
            return vdx_fail(err, "store URL: a '#' fragment is not allowed");
        if (db_len > 0) {
            if (memchr(p, '/', db_len))
                return vdx_fail(err, "store URL: the path must be /DATABASE (one component)");
            if (url_decode(p, db_len, out->database, sizeof out->database) != 0 ||
                !out->database[0])
                return vdx_fail(err, "store URL: bad database name in the path");
        }
        p += db_len;
    }
    /* ?key=value&... */
    int secure = -1;
    char seen[10][16];
    int n_seen = 0;
    if (*p == '?') {
        p++;
        while (*p) {
            size_t pair_len = strcspn(p, "&");
            const char *eq = memchr(p, '=', pair_len);
            if (!eq || eq == p)
                return vdx_fail(err, "store URL: parameter '%.*s' is not name=value",
                                (int)(pair_len > 40 ? 40 : pair_len), p);
            size_t key_len = (size_t)(eq - p);
            char key[32], value[512];
            if (key_len >= sizeof key)
                return vdx_fail(err, "store URL: unknown parameter '%.*s'", (int)key_len, p);
            memcpy(key, p, key_len);
            key[key_len] = 0;
            if (url_decode(eq + 1, pair_len - key_len - 1, value, sizeof value) != 0)
                return vdx_fail(err, "store URL: bad value of parameter '%s'", key);
            for (int i = 0; i < n_seen; i++)
                if (strcmp(seen[i], key) == 0)
                    return vdx_fail(err, "store URL: parameter '%s' given twice", key);
            if (n_seen < 10)
                snprintf(seen[n_seen++], sizeof seen[0], "%s", key);
            if (strcmp(key, "table") == 0) {
                if (!value[0] || strlen(value) > 100 || !all_chars_in(value, "_"))
                    return vdx_fail(err, "store URL: table '%s' must be 1 to 100 letters, "
                                         "digits or '_'",
                                    value);
                snprintf(out->table, sizeof out->table, "%s", value);
            } else if (strcmp(key, "dialect") == 0) {
                int d = ch_dialect_from_name(value);
                if (d < 0 && strcmp(value, "auto") != 0)
                    return vdx_fail(err, "store URL: unknown dialect '%s' (use myscale, "
                                         "clickhouse, legacy or auto)",
                                    value);
                out->dialect = d < 0 ? CH_DIALECT_AUTO : (ch_dialect)d;
            } else if (strcmp(key, "database") == 0) {
                if (!value[0] || strlen(value) >= sizeof out->database)
                    return vdx_fail(err, "store URL: bad database '%s'", value);
                if (out->database[0] && strcmp(out->database, value) != 0)
                    return vdx_fail(err, "store URL: database '%s' in the path and '%s' in "
                                         "?database= differ",
                                    out->database, value);
                snprintf(out->database, sizeof out->database, "%s", value);
            } else if (strcmp(key, "index") == 0) {
                if (!value[0] || strlen(value) >= sizeof out->index_type ||
                    !all_chars_in(value, "_"))
                    return vdx_fail(err, "store URL: index '%s' must be a name such as MSTG, "
                                         "SCANN, hnsw or none",
                                    value);
                snprintf(out->index_type, sizeof out->index_type, "%s", value);
            } else if (strcmp(key, "index_params") == 0) {
                if (!all_chars_in(value, "_=.,-"))
                    return vdx_fail(err, "store URL: index_params '%s' may hold only letters, "
                                         "digits and '_=.,-'",
                                    value);
                snprintf(out->index_params, sizeof out->index_params, "%s", value);
            } else if (strcmp(key, "cluster") == 0) {
                if (!value[0] || strlen(value) >= sizeof out->cluster ||
                    !all_chars_in(value, "_-."))
                    return vdx_fail(err, "store URL: cluster '%s' must be a name of letters, "
                                         "digits and '_-.'",
                                    value);
                snprintf(out->cluster, sizeof out->cluster, "%s", value);
            } else if (strcmp(key, "shards") == 0) {
                if (!value[0] || strlen(value) >= sizeof out->shards ||
                    !all_chars_in(value, "_-.:,"))
                    return vdx_fail(err, "store URL: shards '%s' must be HOST:PORT,HOST:PORT "
                                         "(the shards' HTTP endpoints)",
                                    value);
                for (const char *s = value; *s;) {
                    size_t n = strcspn(s, ",");
                    const char *colon = memchr(s, ':', n);
                    int port = colon ? atoi(colon + 1) : 0;
                    if (!colon || colon == s || port < 1 || port > 65535 ||
                        (size_t)(colon - s) + 1 + strspn(colon + 1, "0123456789") != n)
                        return vdx_fail(err, "store URL: shard '%.*s' in shards= is not "
                                             "HOST:PORT",
                                        (int)(n > 60 ? 60 : n), s);
                    s += n + (s[n] == ',');
                }
                snprintf(out->shards, sizeof out->shards, "%s", value);
            } else if (strcmp(key, "secure") == 0) {
                if (strcmp(value, "1") != 0 && strcmp(value, "0") != 0)
                    return vdx_fail(err, "store URL: secure must be 0 or 1");
                secure = value[0] == '1';
            } else {
                return vdx_fail(err, "store URL: unknown parameter '%s' (known: table, "
                                     "dialect, database, index, index_params, secure, "
                                     "cluster, shards)",
                                key);
            }
            p += pair_len;
            if (*p == '&')
                p++;
        }
    }
    if (secure >= 0) {
        if (secure_scheme >= 0 && secure != secure_scheme)
            return vdx_fail(err, "store URL: secure=%d contradicts the %s:// scheme", secure,
                            secure_scheme ? "https" : "http");
        out->https = secure;
    }
    if (out->shards[0] && !out->cluster[0])
        return vdx_fail(err, "store URL: shards= needs cluster=NAME");
    if (!out->port)
        out->port = out->https ? 8443 : 8123;
    if (!out->database[0])
        snprintf(out->database, sizeof out->database, "default");
    if (strchr(out->database, '`') || strchr(out->database, '\\'))
        return vdx_fail(err, "store URL: database '%s' has a '`' or '\\'", out->database);
    return 0;
}

void ch_url_endpoint(const ch_url *url, char *out, size_t size)
{
    snprintf(out, size, "%s:%d", url->host, url->port);
}

/* ---- RowBinary ---- */

void ch_rb_varint(strbuf *b, uint64_t v)
{
    uint8_t bytes[10];
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        bytes[n++] = (uint8_t)(byte | (v ? 0x80 : 0));
    } while (v);
    strbuf_bytes(b, bytes, n);
}

void ch_rb_string(strbuf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    ch_rb_varint(b, n);
    strbuf_bytes(b, s ? s : "", n);
}

void ch_rb_nullable_string(strbuf *b, const char *s)
{
    uint8_t is_null = s == NULL;
    strbuf_bytes(b, &is_null, 1);
    if (s)
        ch_rb_string(b, s);
}

void ch_rb_nullable_int32(strbuf *b, int is_null, int32_t v)
{
    uint8_t flag = is_null != 0;
    strbuf_bytes(b, &flag, 1);
    if (!is_null) { /* little-endian hosts (x86-64, arm64), like the vector files */
        strbuf_bytes(b, &v, 4);
    }
}

void ch_rb_uint64(strbuf *b, uint64_t v) { strbuf_bytes(b, &v, 8); }

void ch_rb_floats(strbuf *b, const float *v, int n)
{
    ch_rb_varint(b, (uint64_t)n);
    strbuf_bytes(b, v, (size_t)n * sizeof *v);
}

static int short_read(ch_reader *r, const char *what, vdx_error *err)
{
    return vdx_fail(err, "ClickHouse response: truncated %s at byte %zu of %zu", what, r->pos,
                    r->len);
}

int ch_read_varint(ch_reader *r, uint64_t *v, vdx_error *err)
{
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->pos >= r->len)
            return short_read(r, "length", err);
        uint8_t byte = r->data[r->pos++];
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *v = value;
            return 0;
        }
    }
    return vdx_fail(err, "ClickHouse response: bad length at byte %zu", r->pos);
}

int ch_read_string(ch_reader *r, char **s, vdx_error *err)
{
    uint64_t n;
    *s = NULL;
    if (ch_read_varint(r, &n, err) != 0)
        return -1;
    if (n > r->len - r->pos)
        return short_read(r, "string", err);
    if (memchr(r->data + r->pos, 0, (size_t)n))
        return vdx_fail(err, "ClickHouse response: string with a NUL byte at byte %zu", r->pos);
    *s = malloc((size_t)n + 1);
    if (!*s)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory reading a ClickHouse response");
    memcpy(*s, r->data + r->pos, (size_t)n);
    (*s)[n] = 0;
    r->pos += (size_t)n;
    return 0;
}

int ch_read_float64(ch_reader *r, double *v, vdx_error *err)
{
    if (r->len - r->pos < 8)
        return short_read(r, "Float64", err);
    memcpy(v, r->data + r->pos, 8);
    r->pos += 8;
    return 0;
}

int ch_read_floats(ch_reader *r, float *out, int dims, vdx_error *err)
{
    uint64_t n;
    size_t at = r->pos;
    if (ch_read_varint(r, &n, err) != 0)
        return -1;
    if (n != (uint64_t)dims)
        return vdx_fail(err, "ClickHouse response: a vector of %llu floats at byte %zu, the "
                             "collection has %d dims",
                        (unsigned long long)n, at, dims);
    size_t bytes = (size_t)dims * sizeof(float);
    if (r->len - r->pos < bytes)
        return short_read(r, "vector", err);
    if (out)
        memcpy(out, r->data + r->pos, bytes);
    r->pos += bytes;
    return 0;
}

/* ---- SQL ---- */

void ch_tables_for(const char *table, const char *collection, ch_tables *out)
{
    if (table && *table)
        snprintf(out->items, sizeof out->items, "%s", table);
    else
        snprintf(out->items, sizeof out->items, "vdx_%s", collection);
    snprintf(out->info, sizeof out->info, "%s_info", out->items);
    snprintf(out->failures, sizeof out->failures, "%s_failures", out->items);
    snprintf(out->items_shard, sizeof out->items_shard, "%s_shard", out->items);
    snprintf(out->info_shard, sizeof out->info_shard, "%s_shard", out->info);
    snprintf(out->failures_shard, sizeof out->failures_shard, "%s_shard", out->failures);
}

static void put_identifier(strbuf *b, const char *name)
{
    char *quoted = clickhouse_quote_identifier(name);
    if (!quoted)
        b->oom = 1;
    else
        strbuf_put(b, quoted);
    free(quoted);
}

static void put_string(strbuf *b, const char *s)
{
    char *quoted = clickhouse_quote_string(s);
    if (!quoted)
        b->oom = 1;
    else
        strbuf_put(b, quoted);
    free(quoted);
}

void ch_sql_float_array(strbuf *b, const float *v, int n)
{
    strbuf_put(b, "[");
    for (int i = 0; i < n; i++) {
        char num[40];
        snprintf(num, sizeof num, "%.9g", (double)v[i]);
        if (!strpbrk(num, ".eE"))
            strcat(num, ".0");
        if (i)
            strbuf_put(b, ", ");
        strbuf_put(b, num);
    }
    strbuf_put(b, "]");
}

static int is_number(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s) && *s != '.')
            return 0;
    return 1;
}

/* index_params "a=1,b" → each item as a quoted string (MyScale) or, when numeric, bare
 * (ClickHouse's positional vector_similarity arguments). */
static void put_index_params(strbuf *b, const char *params, int numbers_bare)
{
    const char *p = params;
    while (*p) {
        size_t n = strcspn(p, ",");
        char item[512];
        snprintf(item, sizeof item, "%.*s", (int)n, p);
        if (item[0]) {
            strbuf_put(b, ", ");
            if (numbers_bare && is_number(item))
                strbuf_put(b, item);
            else
                put_string(b, item);
        }
        p += n;
        if (*p == ',')
            p++;
    }
}

static int index_wanted(const char *index_type) { return strcasecmp(index_type, "none") != 0; }

void ch_sql_on_cluster(strbuf *b, const char *cluster)
{
    if (!cluster || !*cluster)
        return;
    strbuf_put(b, " ON CLUSTER ");
    put_identifier(b, cluster);
}

char *ch_sql_create_items(ch_dialect dialect, const char *table, const char *on_cluster,
                          int dims, const char *index_type, const char *index_params,
                          vdx_error *err)
{
    strbuf b = {0};
    strbuf_put(&b, "CREATE TABLE IF NOT EXISTS ");
    put_identifier(&b, table);
    ch_sql_on_cluster(&b, on_cluster);
    strbuf_put(&b, " (" CH_ITEMS_COLUMNS);
    if (dialect != CH_DIALECT_LEGACY) /* 18.16 and other old servers have no CONSTRAINT */
        strbuf_printf(&b, ", CONSTRAINT vec_len CHECK length(vector) = %d", dims);
    if (dialect == CH_DIALECT_CLICKHOUSE && index_wanted(index_type)) {
        const char *method = index_type[0] ? index_type : "hnsw";
        strbuf_put(&b, ", INDEX vi vector TYPE vector_similarity(");
        put_string(&b, method);
        strbuf_printf(&b, ", 'cosineDistance', %d", dims);
        put_index_params(&b, index_params, 1);
        strbuf_put(&b, ")");
    }
    strbuf_put(&b, ") ENGINE = MergeTree ORDER BY id");
    char *sql = strbuf_take(&b);
    if (!sql)
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory writing CREATE TABLE");
    return sql;
}

char *ch_sql_add_vector_index(ch_dialect dialect, const char *table, const char *on_cluster,
                              const char *index_type, const char *index_params, vdx_error *err)
{
    if (dialect != CH_DIALECT_MYSCALE || !index_wanted(index_type))
        return NULL;
    strbuf b = {0};
    strbuf_put(&b, "ALTER TABLE ");
    put_identifier(&b, table);
    ch_sql_on_cluster(&b, on_cluster);
    strbuf_printf(&b, " ADD VECTOR INDEX vindex vector TYPE %s('metric_type=Cosine'",
                  index_type[0] ? index_type : "MSTG");
    put_index_params(&b, index_params, 0);
    strbuf_put(&b, ")");
    char *sql = strbuf_take(&b);
    if (!sql)
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory writing ALTER TABLE");
    return sql;
}

char *ch_sql_create_distributed(const char *table, const char *on_cluster, const char *cluster,
                                const char *database, const char *shard_table,
                                const char *columns, const char *key)
{
    strbuf b = {0};
    strbuf_put(&b, "CREATE TABLE IF NOT EXISTS ");
    put_identifier(&b, table);
    ch_sql_on_cluster(&b, on_cluster);
    strbuf_printf(&b, " (%s) ENGINE = Distributed(", columns);
    put_string(&b, cluster);
    strbuf_put(&b, ", ");
    put_string(&b, database);
    strbuf_put(&b, ", ");
    put_string(&b, shard_table);
    strbuf_put(&b, ", cityHash64(");
    put_identifier(&b, key);
    strbuf_put(&b, "))");
    return strbuf_take(&b);
}

static void put_conditions(strbuf *b, const ch_search_sql *s)
{
    if (!s->has_exclusions && !s->where)
        return;
    strbuf_put(b, " WHERE ");
    if (s->has_exclusions)
        strbuf_put(b, "id NOT IN (SELECT id FROM excl)");
    if (s->has_exclusions && s->where)
        strbuf_put(b, " AND ");
    if (s->where)
        strbuf_printf(b, "(%s)", s->where);
}

/* The queries' own names are vdx_q, vdx_dist and vdx_d, names no metadata column may take
 * (clickhouse.c): ClickHouse resolves an alias before a column of the same name. */
char *ch_sql_search(const ch_search_sql *s)
{
    strbuf b = {0};
    if (s->score_all || s->dialect == CH_DIALECT_LEGACY) {
        /* Portable: a WITH constant and a two-array lambda work on every version. The
         * constant is cast to Float32, the exact floats of the query (and 18.16 multiplies
         * Float32 pairs about a quarter faster than Float32 × Float64). */
        strbuf_put(&b, "WITH CAST(");
        ch_sql_float_array(&b, s->query, s->dims);
        strbuf_printf(&b, " AS Array(Float32)) AS vdx_q SELECT id, url, %sarraySum((x, y) -> x * y, vector, vdx_q) AS vdx_dist%s"
                          " FROM ",
                      s->score_all ? "" : "1 - ", s->with_vectors ? ", vector" : "");
        put_identifier(&b, s->table);
        put_conditions(&b, s);
        if (s->score_all)
            strbuf_put(&b, " ORDER BY row LIMIT 1 BY id");
        else
            strbuf_printf(&b, " ORDER BY vdx_dist, id LIMIT 1 BY id LIMIT %d, %d", s->offset, s->k);
    } else {
        /* Index dialects: the inner query is the shape the index recognises (ORDER BY the
         * distance of a literal, LIMIT); it over-fetches by the number of exclusions. The
         * outer one breaks ties by id and pages. */
        long long fetch = (long long)s->offset + s->k + (long long)s->n_exclude;
        strbuf_printf(&b, "SELECT id, url, toFloat64(vdx_d) AS vdx_dist%s FROM (SELECT id, url, ",
                      s->with_vectors ? ", vector" : "");
        if (s->with_vectors)
            strbuf_put(&b, "vector, ");
        strbuf_put(&b, s->dialect == CH_DIALECT_MYSCALE ? "distance(vector, "
                                                        : "cosineDistance(vector, ");
        ch_sql_float_array(&b, s->query, s->dims);
        strbuf_put(&b, ") AS vdx_d FROM ");
        put_identifier(&b, s->table);
        put_conditions(&b, s);
        strbuf_printf(&b, " ORDER BY vdx_d LIMIT %lld) ORDER BY vdx_dist, id LIMIT 1 BY id LIMIT %d, %d", fetch,
                      s->offset, s->k);
        if (s->dialect == CH_DIALECT_CLICKHOUSE && s->where)
            strbuf_put(&b, " SETTINGS vector_search_filter_strategy = 'prefilter'");
    }
    strbuf_put(&b, " FORMAT RowBinary");
    return strbuf_take(&b);
}

/* ---- server errors ---- */

static void first_line(const char *s, char *out, size_t size)
{
    size_t n = strcspn(s, "\r\n");
    if (n >= size)
        n = size - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

int ch_parse_server_error(const char *body, int *code, char *msg, size_t size)
{
    *code = 0;
    const char *at = strstr(body, "Code: ");
    if (!at || !isdigit((unsigned char)at[6])) {
        first_line(body, msg, size);
        return -1;
    }
    *code = atoi(at + 6);
    const char *p = at + 6;
    while (isdigit((unsigned char)*p))
        p++;
    if (strncmp(p, ", e.displayText() = ", 20) == 0)
        p += 20;
    else if (strncmp(p, ". ", 2) == 0 || strncmp(p, ", ", 2) == 0)
        p += 2;
    if (strncmp(p, "DB::Exception: ", 15) == 0)
        p += 15;
    char line[1024];
    first_line(p, line, sizeof line);
    const char *ends[] = {", e.what() = ", " (version "};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        char *cut = strstr(line, ends[i]);
        if (cut)
            *cut = 0;
    }
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        line[--n] = 0;
    snprintf(msg, size, "%s", line);
    return 0;
}

void ch_tsv_escape(strbuf *b, const char *s)
{
    for (; *s; s++) {
        const char *esc = NULL;
        switch (*s) {
        case '\\': esc = "\\\\"; break;
        case '\t': esc = "\\t"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default: break;
        }
        if (esc)
            strbuf_put(b, esc);
        else
            strbuf_bytes(b, s, 1);
    }
}
