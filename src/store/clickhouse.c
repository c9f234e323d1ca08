/* The ClickHouse/MyScale store backend: a collection is three tables on the server
 *   T           id, url, vector Array(Float32), width, height, ingested_at, row, metadata
 *               columns (Nullable(String)); MergeTree ORDER BY id
 *   T_info      key/value: model name, fingerprint, dims, vector type, dialect, created
 *   T_failures  failed items (ReplacingMergeTree: a newer failure replaces an older one)
 * plus the local collection directory for what the server does not hold: thumbnails in
 * a small SQLite side file (clickhouse-side.db), the write lock, and the side files of
 * other modules (concepts, progress).
 *
 * T_info is written last when a collection is created, so its presence marks a complete
 * collection; a model mismatch is refused by store.c exactly as for the embedded store.
 *
 * No duplicates after a crash or a retried insert: an append first asks which ids of the
 * batch the table already holds (an id already stored is an error, as in the embedded
 * store), then sends the batch as one RowBinary INSERT that the server writes as one
 * block (max_insert_block_size is raised to the batch size, so the batch lands whole or
 * not at all). When the connection fails mid-insert, the backend asks again which ids
 * arrived before it retries: all of them means the insert did land, none means it is
 * sent again. Reads therefore need neither FINAL nor LIMIT 1 BY id on the items table.
 *
 * On a cluster (?cluster=NAME) the three names are Distributed tables over per-shard tables
 * T_shard, T_info_shard, T_failures_shard, rows placed by cityHash64(id) (of key for
 * T_info). DDL runs ON CLUSTER (the cluster's coordinator, ZooKeeper, runs it on every
 * node) or, with ?shards=HOST:PORT,..., on each shard's HTTP endpoint in turn. Inserts go
 * through the Distributed table synchronously (insert_distributed_sync=1), so an insert
 * returns only when every shard holds its part; a shard that fails mid-insert may leave
 * the other shards' parts stored, and the retry (after asking which ids arrived) sends
 * only the rest. Reads gather every shard; a shard that is down fails the read with an
 * error naming it (no partial results).
 *
 * Searches are exact on the `legacy` dialect (ClickHouse 18.16 and later) and use the
 * server's vector index on `clickhouse` and `myscale`; the SQL of each is in
 * clickhouse_sql.c, the transport in clickhouse_http.c. docs/clickhouse.md has the
 * user-facing description. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/sqlite_util.h"
#include "store/backend.h"
#include "store/backend_common.h"
#include "store/clickhouse.h"
#include "store/filter.h"
#include "store/scan.h"

#define CH_FORMAT_VERSION 1

/* Columns of the items table that are not metadata (and names metadata may not take), then
 * the search queries' own names (clickhouse_sql.c): ClickHouse resolves an alias before a
 * column, so a metadata column "dist" in a filter read the query's distance instead. */
static const char *const builtin_columns[] = {"id",      "url",         "vector", "width",
                                              "height",  "ingested_at", "row",    "failure",
                                              "failed_at", "vdx_q",     "vdx_dist", "vdx_d"};

typedef struct clickhouse {
    char collection[65];
    char dir[4096];
    char side_path[4200], lock_path[4200];
    ch_url url;
    char endpoint[300];
    ch_http *http;
    ch_tables tables;
    ch_dialect dialect;
    char version[64];
    char created[32];
    vdx_model_identity model;
    vdx_vector_type type;
    int read_only;
    int lock_fd;
    int64_t count;
    int n_shards;          /* per-shard DDL endpoints (?shards=), 0 = ON CLUSTER or no cluster */
    ch_http **shard_http;
    char (*shard_endpoint)[300];
    char **columns;
    int n_columns;
    sqlite3 *side; /* thumbnails; opened on first use */
} clickhouse;

/* ---- small helpers ---- */

static int oom(clickhouse *c, vdx_error *err)
{
    return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", c->collection);
}

/* The cluster's name for ON CLUSTER clauses: NULL without a cluster or with per-shard DDL. */
static const char *on_cluster(const clickhouse *c)
{
    return c->url.cluster[0] && c->n_shards == 0 ? c->url.cluster : NULL;
}

/* Codes of a Distributed query that could not reach a shard: NETWORK_ERROR,
 * SOCKET_TIMEOUT, ATTEMPT_TO_READ_AFTER_EOF, ALL_CONNECTION_TRIES_FAILED. */
static int is_shard_failure(int code)
{
    return code == 210 || code == 209 || code == 32 || code == 279;
}

/* After a read or insert failed for want of a shard: finds which shards of the cluster
 * the entry server cannot reach (a probe of each through remote()) and replaces *err
 * with a message naming them. Leaves *err as it is when every shard answers. */
static void name_down_shards(clickhouse *c, vdx_error *err)
{
    char *name = clickhouse_quote_string(c->url.cluster);
    strbuf sql = {0}, response = {0}, down = {0};
    if (!name)
        return;
    strbuf_printf(&sql, "SELECT shard_num, host_address, port FROM system.clusters WHERE "
                        "cluster = %s FORMAT TabSeparated",
                  name);
    free(name);
    ch_request req = {.sql = sql.data};
    int n_down = 0, n_shards = 0;
    if (!sql.oom && ch_http_run(c->http, &req, &response, NULL, NULL, NULL) == 0 && response.data) {
        char *save = NULL;
        for (char *line = strtok_r(response.data, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            int shard = 0, port = 0;
            char host[128];
            if (sscanf(line, "%d\t%127[^\t]\t%d", &shard, host, &port) != 3)
                continue;
            n_shards++;
            char addr[160], *quoted;
            snprintf(addr, sizeof addr, "%s:%d", host, port);
            strbuf probe = {0}, out = {0};
            if (!(quoted = clickhouse_quote_string(addr)))
                continue;
            strbuf_printf(&probe, "SELECT 1 FROM remote(%s, system, one)", quoted);
            free(quoted);
            ch_request preq = {.sql = probe.data};
            int code = 0;
            if (!probe.oom && ch_http_run(c->http, &preq, &out, NULL, &code, NULL) != 0 &&
                is_shard_failure(code)) {
                strbuf_printf(&down, "%sshard %d (%s)", n_down ? ", " : "", shard, addr);
                n_down++;
            }
            strbuf_free(&probe);
            strbuf_free(&out);
        }
    }
    if (n_down > 0 && !down.oom)
        vdx_fail_kind(err, VDX_ERR_IO,
                      "collection '%s': ClickHouse cluster '%s' (%d shards, entry server %s): "
                      "%s %s unreachable; a search or insert needs every shard, so no partial "
                      "result is returned: start %s and try again",
                      c->collection, c->url.cluster, n_shards, c->endpoint, down.data,
                      n_down > 1 ? "are" : "is", n_down > 1 ? "them" : "it");
    strbuf_free(&sql);
    strbuf_free(&response);
    strbuf_free(&down);
}

/* A read query (retried on transient failures); the response in *out. */
static int run_query(clickhouse *c, const char *sql, const ch_external *ext, strbuf *out,
                     int *code, vdx_error *err)
{
    ch_request req = {.sql = sql, .external = ext, .retry = 1};
    int local_code = 0;
    if (ch_http_run(c->http, &req, out, NULL, &local_code, err) != 0) {
        if (code)
            *code = local_code;
        if (c->url.cluster[0] && is_shard_failure(local_code)) {
            name_down_shards(c, err);
            return -1;
        }
        return vdx_error_prefix(err, "collection '%s'", c->collection);
    }
    return 0;
}

/* DDL: on the entry server (which, with ON CLUSTER in the SQL, has the coordinator run it
 * on every node), or with per-shard DDL on every shard and then on the entry server when
 * it is not one of them. A shard that is down fails ON CLUSTER DDL after
 * distributed_ddl_task_timeout, set to 60 s here instead of 180. */
static int run_ddl(clickhouse *c, const char *sql, int *code, vdx_error *err)
{
    int entry_is_shard = 0;
    for (int i = 0; i < c->n_shards; i++) {
        strbuf out = {0};
        ch_request req = {.sql = sql, .retry = 1};
        int rc = ch_http_run(c->shard_http[i], &req, &out, NULL, code, err);
        strbuf_free(&out);
        if (rc != 0)
            return vdx_error_prefix(err, "collection '%s': DDL on shard %d (%s) of cluster '%s'",
                                    c->collection, i + 1, c->shard_endpoint[i], c->url.cluster);
        entry_is_shard |= strcmp(c->shard_endpoint[i], c->endpoint) == 0;
    }
    if (entry_is_shard)
        return 0;
    strbuf out = {0};
    ch_request req = {.sql = sql, .retry = 1,
                      .settings = on_cluster(c) ? "distributed_ddl_task_timeout=60" : NULL};
    int rc = ch_http_run(c->http, &req, &out, NULL, code, err);
    strbuf_free(&out);
    return rc == 0 ? 0 : vdx_error_prefix(err, "collection '%s'", c->collection);
}

/* URL parameters of an insert: on a cluster, synchronous (every shard has its part when the
 * insert returns). */
static const char *insert_settings(const clickhouse *c)
{
    return c->url.cluster[0] ? "insert_distributed_sync=1" : NULL;
}

/* An external table `name` (id String) holding ids, TSV-escaped. */
static int ids_table(const char *name, const char *const *ids, size_t n, strbuf *tsv,
                     ch_external *ext)
{
    for (size_t i = 0; i < n; i++) {
        ch_tsv_escape(tsv, ids[i]);
        strbuf_put(tsv, "\n");
    }
    if (tsv->oom)
        return -1;
    *ext = (ch_external){name, "id String", tsv->data ? tsv->data : "", tsv->len};
    return 0;
}

static char *quoted_identifier(clickhouse *c, const char *name, vdx_error *err)
{
    char *q = clickhouse_quote_identifier(name);
    if (!q)
        oom(c, err);
    return q;
}

#define N_BUILTIN_COLUMNS (sizeof builtin_columns / sizeof builtin_columns[0])

static int is_builtin(const char *name)
{
    return backend_name_in(name, builtin_columns, N_BUILTIN_COLUMNS);
}

static int find_column(const clickhouse *c, const char *name)
{
    return backend_find_column(c->columns, c->n_columns, name);
}

static int cmp_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A sorted list of ids read from a RowBinary response of one String column. */
typedef struct id_set {
    char **ids;
    size_t n;
} id_set;

static void id_set_free(id_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->ids[i]);
    free(s->ids);
    *s = (id_set){0};
}

static int id_set_read(clickhouse *c, const strbuf *response, id_set *s, vdx_error *err)
{
    ch_reader r = {(const uint8_t *)response->data, response->len, 0};
    size_t cap = 0;
    *s = (id_set){0};
    while (r.pos < r.len) {
        if (s->n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(s->ids, cap * sizeof *grown);
            if (!grown) {
                id_set_free(s);
                return oom(c, err);
            }
            s->ids = grown;
        }
        if (ch_read_string(&r, &s->ids[s->n], err) != 0) {
            id_set_free(s);
            return vdx_error_prefix(err, "collection '%s'", c->collection);
        }
        s->n++;
    }
    if (s->n > 1)
        qsort(s->ids, s->n, sizeof *s->ids, cmp_strings);
    return 0;
}

static int id_set_has(const id_set *s, const char *id)
{
    return s->n && bsearch(&id, s->ids, s->n, sizeof *s->ids, cmp_strings) != NULL;
}

/* Which of ids the items table (or, with failures=1, the failures table) holds. */
static int present_ids(clickhouse *c, const char *const *ids, size_t n, int failures,
                       id_set *out, vdx_error *err)
{
    *out = (id_set){0};
    if (n == 0)
        return 0;
    strbuf tsv = {0}, sql = {0}, response = {0};
    ch_external ext;
    if (ids_table("ids", ids, n, &tsv, &ext) != 0) {
        strbuf_free(&tsv);
        return oom(c, err);
    }
    char *table = quoted_identifier(c, failures ? c->tables.failures : c->tables.items, err);
    if (!table) {
        strbuf_free(&tsv);
        return -1;
    }
    strbuf_printf(&sql, "SELECT %sid FROM %s WHERE id IN (SELECT id FROM ids) FORMAT RowBinary",
                  failures ? "DISTINCT " : "", table);
    free(table);
    int rc = sql.oom ? oom(c, err) : run_query(c, sql.data, &ext, &response, NULL, err);
    if (rc == 0)
        rc = id_set_read(c, &response, out, err);
    strbuf_free(&tsv);
    strbuf_free(&sql);
    strbuf_free(&response);
    return rc;
}

/* ---- columns, count ---- */

static void free_columns(clickhouse *c)
{
    for (int i = 0; i < c->n_columns; i++)
        free(c->columns[i]);
    free(c->columns);
    c->columns = NULL;
    c->n_columns = 0;
}

/* Metadata columns: the items table's columns past the builtin ones, in table order. */
static int load_columns(clickhouse *c, vdx_error *err)
{
    strbuf sql = {0}, response = {0};
    char *name = clickhouse_quote_string(c->tables.items);
    if (!name)
        return oom(c, err);
    strbuf_printf(&sql, "SELECT name FROM system.columns WHERE database = currentDatabase() "
                        "AND table = %s FORMAT RowBinary",
                  name);
    free(name);
    int rc = sql.oom ? oom(c, err) : run_query(c, sql.data, NULL, &response, NULL, err);
    strbuf_free(&sql);
    if (rc != 0)
        return -1;
    free_columns(c);
    ch_reader r = {(const uint8_t *)response.data, response.len, 0};
    int cap = 0;
    while (rc == 0 && r.pos < r.len) {
        char *column;
        if (ch_read_string(&r, &column, err) != 0) {
            rc = vdx_error_prefix(err, "collection '%s': reading columns", c->collection);
            break;
        }
        if (is_builtin(column)) {
            free(column);
            continue;
        }
        if (c->n_columns == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(c->columns, (size_t)cap * sizeof *grown);
            if (!grown) {
                free(column);
                rc = oom(c, err);
                break;
            }
            c->columns = grown;
        }
        c->columns[c->n_columns++] = column;
    }
    strbuf_free(&response);
    return rc;
}

static int load_count(clickhouse *c, vdx_error *err)
{
    char *table = quoted_identifier(c, c->tables.items, err);
    if (!table)
        return -1;
    strbuf sql = {0}, response = {0};
    strbuf_printf(&sql, "SELECT count() FROM %s", table);
    free(table);
    int rc = sql.oom ? oom(c, err) : run_query(c, sql.data, NULL, &response, NULL, err);
    if (rc == 0) {
        char *end;
        long long n = strtoll(response.data ? response.data : "", &end, 10);
        if (end == response.data || n < 0)
            rc = vdx_fail(err, "collection '%s': unexpected count() answer '%.40s'",
                          c->collection, response.data ? response.data : "");
        else
            c->count = n;
    }
    strbuf_free(&sql);
    strbuf_free(&response);
    return rc;
}

/* ---- the write lock (local: one writer per collection directory) ---- */

/* A writer killed mid-append may leave its INSERT in the server's hands, and it still
 * lands a moment after the writer is gone (18.16 buffers an HTTP insert before it runs
 * it, so system.processes does not show it yet). The writer touches its lock file before
 * every insert and empties it when it closes; whoever opens the collection (to read which
 * ids are stored, or to write) and finds the file naming a writer that is gone, touched
 * less than CH_CRASH_GRACE_MS ago, waits until that much time has passed, so that it
 * never takes an id in flight for a missing one and appends it a second time. */
#define CH_CRASH_GRACE_MS 1000

static void settle_after_crash(clickhouse *c)
{
    int fd = open(c->lock_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    /* a shared lock we can take means no live writer holds the exclusive one */
    int orphaned = fstat(fd, &st) == 0 && st.st_size > 0 &&
                   (c->lock_fd >= 0 || flock(fd, LOCK_SH | LOCK_NB) == 0);
    close(fd);
    if (!orphaned)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double age_ms = (double)(now.tv_sec - st.st_mtim.tv_sec) * 1e3 +
                    (double)(now.tv_nsec - st.st_mtim.tv_nsec) / 1e6;
    if (age_ms >= 0 && age_ms < CH_CRASH_GRACE_MS) {
        double wait_ms = CH_CRASH_GRACE_MS - age_ms;
        struct timespec pause = {(time_t)(wait_ms / 1e3),
                                 (long)((wait_ms - 1e3 * (double)(time_t)(wait_ms / 1e3)) * 1e6)};
        nanosleep(&pause, NULL);
    }
}

static int take_write_lock(clickhouse *c, vdx_error *err)
{
    if (c->lock_fd >= 0)
        return 0;
    if (c->read_only)
        return vdx_fail(err, "collection '%s' is open read-only", c->collection);
    if (vdx_mkdirs(c->dir, err) != 0)
        return -1;
    int fd = backend_lock_open(c->collection, c->lock_path, err);
    if (fd < 0)
        return -1;
    c->lock_fd = fd;
    settle_after_crash(c); /* before our pid replaces the predecessor's */
    c->lock_fd = -1;
    if (backend_lock_claim(c->collection, c->lock_path, fd, err) != 0)
        return -1;
    c->lock_fd = fd;
    return 0;
}

/* The lock, then a fresh count so that new rows get numbers past everybody's. */
static int become_writer(clickhouse *c, vdx_error *err)
{
    if (c->lock_fd >= 0)
        return 0;
    if (take_write_lock(c, err) != 0)
        return -1;
    if (load_count(c, err) != 0 || load_columns(c, err) != 0) {
        close(c->lock_fd);
        c->lock_fd = -1;
        return -1;
    }
    return 0;
}

/* ---- the thumbnail side file ---- */

static int side_open(clickhouse *c, int write, vdx_error *err)
{
    if (c->side)
        return 0;
    int flags = write ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    if (sql_open(c->side_path, flags, &c->side, err, "collection '%s'", c->collection) != 0)
        return -1;
    if (write && sql_exec(c->side,
                          "PRAGMA journal_mode = WAL; CREATE TABLE IF NOT EXISTS "
                          "thumbnails(id TEXT PRIMARY KEY, jpeg BLOB NOT NULL)",
                          err, "collection '%s' (%s)", c->collection, c->side_path) != 0) {
        sqlite3_close(c->side);
        c->side = NULL;
        return -1;
    }
    return 0;
}

/* Thumbnails first (idempotent INSERT OR REPLACE, one transaction): a thumbnail whose
 * item insert then fails is harmless and replaced when the item is appended again. */
static int store_thumbnails(clickhouse *c, const vdx_item *items, size_t n, vdx_error *err)
{
    size_t with = 0;
    for (size_t i = 0; i < n; i++)
        with += items[i].vector && items[i].thumbnail && items[i].thumbnail_size > 0;
    if (with == 0)
        return 0;
    if (side_open(c, 1, err) != 0)
        return -1;
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_exec(c->side, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c->side,
                                "INSERT OR REPLACE INTO thumbnails(id, jpeg) VALUES (?1, ?2)",
                                -1, &stmt, NULL);
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        const vdx_item *it = &items[i];
        if (!it->vector || !it->thumbnail || it->thumbnail_size == 0)
            continue;
        sqlite3_bind_text(stmt, 1, it->id, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(stmt, 2, it->thumbnail, it->thumbnail_size, SQLITE_STATIC);
        rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->side, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sql_fail(c->side, err, "collection '%s': storing thumbnails in %s", c->collection,
                 c->side_path);
        sqlite3_exec(c->side, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

/* ---- open / create ---- */

static void clickhouse_close(void *state)
{
    clickhouse *c = state;
    if (!c)
        return;
    ch_http_free(c->http);
    for (int i = 0; i < c->n_shards; i++)
        ch_http_free(c->shard_http[i]);
    free(c->shard_http);
    free(c->shard_endpoint);
    free_columns(c);
    if (c->side)
        sqlite3_close(c->side);
    if (c->lock_fd >= 0) { /* an empty lock file tells the next writer we ended cleanly */
        if (ftruncate(c->lock_fd, 0) != 0) {
            /* then the next opener may wait CH_CRASH_GRACE_MS for nothing: harmless */
        }
        close(c->lock_fd);
    }
    memset(c->url.password, 0, sizeof c->url.password);
    free(c);
}

/* The server version and which dialect it speaks. */
static int detect_server(clickhouse *c, ch_dialect *detected, vdx_error *err)
{
    strbuf response = {0};
    if (run_query(c,
                  "SELECT version(), (SELECT count() FROM system.functions WHERE name = "
                  "'cosineDistance'), (SELECT count() FROM system.tables WHERE database = "
                  "'system' AND name = 'vector_indices') FORMAT TabSeparated",
                  NULL, &response, NULL, err) != 0)
        return -1;
    char version[64] = "";
    int cosine = 0, vector_indices = 0;
    if (sscanf(response.data ? response.data : "", "%63[^\t]\t%d\t%d", version, &cosine,
               &vector_indices) != 3) {
        vdx_fail(err, "collection '%s': ClickHouse at %s: unexpected answer to version(): "
                      "'%.60s'",
                 c->collection, c->endpoint, response.data ? response.data : "");
        strbuf_free(&response);
        return -1;
    }
    strbuf_free(&response);
    snprintf(c->version, sizeof c->version, "%s", version);
    *detected = vector_indices ? CH_DIALECT_MYSCALE
                : cosine       ? CH_DIALECT_CLICKHOUSE
                               : CH_DIALECT_LEGACY;
    return 0;
}

/* Reads T_info into the handle. *exists = 0 when the table is missing or empty. */
static int read_info(clickhouse *c, int *exists, vdx_error *err)
{
    *exists = 0;
    char *table = quoted_identifier(c, c->tables.info, err);
    if (!table)
        return -1;
    strbuf sql = {0}, response = {0};
    strbuf_printf(&sql, "SELECT key, value FROM %s FORMAT RowBinary", table);
    free(table);
    int code = 0;
    vdx_error local;
    if (sql.oom) {
        strbuf_free(&sql);
        return oom(c, err);
    }
    int rc = run_query(c, sql.data, NULL, &response, &code, &local);
    strbuf_free(&sql);
    if (rc != 0) {
        if (code == 60) /* UNKNOWN_TABLE */
            return 0;
        if (err)
            *err = local;
        return -1;
    }
    ch_reader r = {(const uint8_t *)response.data, response.len, 0};
    char dims[16] = "", version[16] = "", type[16] = "", dialect[32] = "";
    int found = 0;
    while (rc == 0 && r.pos < r.len) {
        char *key = NULL, *value = NULL;
        if (ch_read_string(&r, &key, err) != 0 || ch_read_string(&r, &value, err) != 0) {
            free(key);
            rc = vdx_error_prefix(err, "collection '%s': reading %s", c->collection,
                                  c->tables.info);
            break;
        }
        found++;
        struct {
            const char *key;
            char *out;
            size_t size;
        } fields[] = {{"format_version", version, sizeof version},
                      {"model_name", c->model.name, sizeof c->model.name},
                      {"model_fingerprint", c->model.config_hash, sizeof c->model.config_hash},
                      {"dims", dims, sizeof dims},
                      {"vector_type", type, sizeof type},
                      {"dialect", dialect, sizeof dialect},
                      {"created", c->created, sizeof c->created}};
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
            if (strcmp(key, fields[i].key) == 0)
                snprintf(fields[i].out, fields[i].size, "%s", value);
        free(key);
        free(value);
    }
    strbuf_free(&response);
    if (rc != 0 || found == 0)
        return rc;
    if (atoi(version) != CH_FORMAT_VERSION)
        return vdx_fail(err, "collection '%s': %s has format version '%s'; this vdx reads %d",
                        c->collection, c->tables.info, version, CH_FORMAT_VERSION);
    c->model.dims = atoi(dims);
    if (c->model.dims <= 0 || c->model.dims > 65536 || !c->model.config_hash[0])
        return vdx_fail(err, "collection '%s': %s: bad dims '%s' or no model fingerprint",
                        c->collection, c->tables.info, dims);
    if (strcmp(type, "f32") == 0)
        c->type = VDX_VECTOR_F32;
    else if (strcmp(type, "f16") == 0)
        c->type = VDX_VECTOR_F16;
    else
        return vdx_fail(err, "collection '%s': %s: unknown vector_type '%s'", c->collection,
                        c->tables.info, type);
    int d = ch_dialect_from_name(dialect);
    if (c->dialect == CH_DIALECT_AUTO) {
        if (d < 0)
            return vdx_fail(err, "collection '%s': %s: unknown dialect '%s'", c->collection,
                            c->tables.info, dialect);
        c->dialect = (ch_dialect)d;
    }
    *exists = 1;
    return 0;
}

/* The index the collection gets: the URL's choice, else the dialect's default; current
 * ClickHouse before 25.8 has no GA vector_similarity index, so none there. */
static const char *index_for(clickhouse *c)
{
    if (c->url.index_type[0])
        return c->url.index_type;
    if (c->dialect == CH_DIALECT_CLICKHOUSE) {
        int major = 0, minor = 0;
        sscanf(c->version, "%d.%d", &major, &minor);
        if (c->version[0] && (major < 25 || (major == 25 && minor < 8)))
            return "none";
    }
    return "";
}

/* Inserts (key, value) rows into the collection's info table (quoted name `info`) in one
 * request; a failure is prefixed with the collection. */
static int insert_info_rows(clickhouse *c, const char *info, const char *const (*pairs)[2],
                            size_t n, vdx_error *err)
{
    strbuf rows = {0}, sql = {0}, response = {0};
    for (size_t i = 0; i < n; i++) {
        ch_rb_string(&rows, pairs[i][0]);
        ch_rb_string(&rows, pairs[i][1]);
    }
    strbuf_printf(&sql, "INSERT INTO %s (key, value) FORMAT RowBinary", info);
    ch_request req = {.sql = sql.data, .body = rows.data, .body_len = rows.len,
                      .settings = insert_settings(c)};
    int rc = 0;
    if (rows.oom || sql.oom)
        rc = oom(c, err);
    else if (ch_http_run(c->http, &req, &response, NULL, NULL, err) != 0)
        rc = vdx_error_prefix(err, "collection '%s'", c->collection);
    strbuf_free(&rows);
    strbuf_free(&sql);
    strbuf_free(&response);
    return rc;
}

static int create_collection(clickhouse *c, const vdx_backend_open_args *args, vdx_error *err)
{
    if (take_write_lock(c, err) != 0)
        return -1;
    ch_dialect detected;
    if (detect_server(c, &detected, err) != 0)
        return -1;
    if (c->dialect == CH_DIALECT_AUTO)
        c->dialect = detected;
    c->model = *args->model;
    c->type = args->vector_type;
    clock_utc_iso_now(c->created);
    const char *index = index_for(c);

    /* A table of that name with rows but no T_info is not ours: refuse to adopt it. */
    char *items = quoted_identifier(c, c->tables.items, err);
    char *failures = items ? quoted_identifier(c, c->tables.failures, err) : NULL;
    char *info = failures ? quoted_identifier(c, c->tables.info, err) : NULL;
    /* on a cluster the items, failures and info tables are the shards' tables here */
    int cluster = c->url.cluster[0] != 0;
    const char *items_table = cluster ? c->tables.items_shard : c->tables.items;
    char *create_items = info ? ch_sql_create_items(c->dialect, items_table, on_cluster(c),
                                                    c->model.dims, index, c->url.index_params,
                                                    err)
                              : NULL;
    strbuf sql = {0};
    int rc = create_items ? 0 : -1, code = 0;
    if (rc == 0) {
        strbuf_printf(&sql, "EXISTS TABLE %s", items);
        strbuf response = {0};
        rc = sql.oom ? oom(c, err) : run_query(c, sql.data, NULL, &response, NULL, err);
        int exists = rc == 0 && response.data && response.data[0] == '1';
        strbuf_free(&response);
        if (rc == 0 && exists)
            rc = load_count(c, err);
        if (rc == 0 && exists && c->count > 0)
            rc = vdx_fail(err,
                          "collection '%s': table %s on ClickHouse at %s already holds %lld "
                          "rows but no %s: it was not made by vdx; choose another ?table=",
                          c->collection, items, c->endpoint, (long long)c->count, info);
    }
    if (rc == 0)
        rc = run_ddl(c, create_items, NULL, err);
    if (rc == 0) {
        char *alter = ch_sql_add_vector_index(c->dialect, items_table, on_cluster(c), index,
                                              c->url.index_params, err);
        if (alter) {
            vdx_error local;
            if (run_ddl(c, alter, &code, &local) != 0 && local.kind != VDX_ERR_CONFLICT) {
                if (err)
                    *err = local;
                rc = -1;
            }
            free(alter);
        }
    }
    struct {
        const char *table, *shard, *columns, *engine, *key;
    } companions[] = {
        {c->tables.failures, c->tables.failures_shard, CH_FAILURES_COLUMNS,
         "ReplacingMergeTree(version) ORDER BY id", "id"},
        {c->tables.info, c->tables.info_shard, CH_INFO_COLUMNS, "MergeTree ORDER BY key", "key"},
    };
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        char *table = quoted_identifier(c, cluster ? companions[i].shard : companions[i].table,
                                        err);
        if (!table) {
            rc = -1;
            break;
        }
        sql.len = 0;
        strbuf_printf(&sql, "CREATE TABLE IF NOT EXISTS %s", table);
        ch_sql_on_cluster(&sql, on_cluster(c));
        strbuf_printf(&sql, " (%s) ENGINE = %s", companions[i].columns, companions[i].engine);
        free(table);
        rc = sql.oom ? oom(c, err) : run_ddl(c, sql.data, NULL, err);
    }
    /* the Distributed tables over the shards' tables, the items table's first */
    struct {
        const char *table, *shard, *columns, *key;
    } distributed[] = {
        {c->tables.items, c->tables.items_shard, CH_ITEMS_COLUMNS, "id"},
        {c->tables.failures, c->tables.failures_shard, CH_FAILURES_COLUMNS, "id"},
        {c->tables.info, c->tables.info_shard, CH_INFO_COLUMNS, "key"},
    };
    for (size_t i = 0; cluster && i < 3 && rc == 0; i++) {
        char *ddl = ch_sql_create_distributed(distributed[i].table, on_cluster(c),
                                              c->url.cluster, c->url.database,
                                              distributed[i].shard, distributed[i].columns,
                                              distributed[i].key);
        rc = !ddl ? oom(c, err) : run_ddl(c, ddl, NULL, err);
        free(ddl);
    }
    if (rc == 0) { /* the marker of a complete collection, in one insert */
        char dims[16], version[16];
        snprintf(dims, sizeof dims, "%d", c->model.dims);
        snprintf(version, sizeof version, "%d", CH_FORMAT_VERSION);
        const char *pairs[][2] = {{"format_version", version},
                                  {"model_name", c->model.name},
                                  {"model_fingerprint", c->model.config_hash},
                                  {"dims", dims},
                                  {"vector_type", c->type == VDX_VECTOR_F16 ? "f16" : "f32"},
                                  {"dialect", ch_dialect_name(c->dialect)},
                                  {"created", c->created}};
        rc = insert_info_rows(c, info, pairs, sizeof pairs / sizeof pairs[0], err);
    }
    strbuf_free(&sql);
    free(create_items);
    free(items);
    free(failures);
    free(info);
    return rc;
}

/* With ?shards=: a connection to every shard's HTTP endpoint (same user, TLS, database). */
static int open_shards(clickhouse *c, vdx_error *err)
{
    size_t n = 0;
    for (const char *p = c->url.shards; *p; p++)
        n += *p == ',';
    n += c->url.shards[0] != 0;
    if (n == 0)
        return 0;
    c->shard_http = calloc(n, sizeof *c->shard_http);
    c->shard_endpoint = calloc(n, sizeof *c->shard_endpoint);
    if (!c->shard_http || !c->shard_endpoint)
        return oom(c, err);
    for (const char *p = c->url.shards; *p; c->n_shards++) {
        size_t len = strcspn(p, ",");
        ch_url shard = c->url; /* ch_url_parse checked every HOST:PORT */
        snprintf(c->shard_endpoint[c->n_shards], sizeof c->shard_endpoint[0], "%.*s", (int)len, p);
        char *colon = strrchr(c->shard_endpoint[c->n_shards], ':');
        snprintf(shard.host, sizeof shard.host, "%.*s",
                 (int)(colon - c->shard_endpoint[c->n_shards]), c->shard_endpoint[c->n_shards]);
        shard.port = atoi(colon + 1);
        c->shard_http[c->n_shards] = ch_http_new(&shard, err);
        memset(shard.password, 0, sizeof shard.password);
        if (!c->shard_http[c->n_shards])
            return -1;
        p += len + (p[len] == ',');
    }
    return 0;
}

static void *clickhouse_open(const vdx_backend_open_args *args, vdx_model_identity *stored,
                             vdx_error *err)
{
    clickhouse *c = calloc(1, sizeof *c);
    if (!c) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory opening collection '%s'", args->collection);
        return NULL;
    }
    c->lock_fd = -1;
    c->read_only = args->read_only;
    snprintf(c->collection, sizeof c->collection, "%s", args->collection);
    snprintf(c->dir, sizeof c->dir, "%s", args->collection_dir);
    snprintf(c->side_path, sizeof c->side_path, "%s/clickhouse-side.db", c->dir);
    snprintf(c->lock_path, sizeof c->lock_path, "%s/write.lock", c->dir);
    if (ch_url_parse(args->url, &c->url, err) != 0) {
        vdx_error_prefix(err, "collection '%s'", c->collection);
        goto fail;
    }
    ch_url_endpoint(&c->url, c->endpoint, sizeof c->endpoint);
    c->dialect = c->url.dialect;
    ch_tables_for(c->url.table, c->collection, &c->tables);
    if (!(c->http = ch_http_new(&c->url, err)) || open_shards(c, err) != 0)
        goto fail;
    settle_after_crash(c);
    int exists = 0;
    if (read_info(c, &exists, err) != 0)
        goto fail;
    if (!exists) {
        if (!args->create) {
            vdx_fail_kind(err, VDX_ERR_NOT_FOUND,
                     "collection '%s' does not exist on ClickHouse at %s (no table %s.%s): "
                     "ingest into it first, or check ?table= in the store URL",
                     c->collection, c->endpoint, c->url.database, c->tables.info);
            goto fail;
        }
        if (create_collection(c, args, err) != 0)
            goto fail;
        if (read_info(c, &exists, err) != 0)
            goto fail;
        if (!exists) {
            vdx_fail(err, "collection '%s': %s is still empty after creating it on %s",
                     c->collection, c->tables.info, c->endpoint);
            goto fail;
        }
    } else if (args->create && take_write_lock(c, err) != 0) {
        goto fail;
    }
    if (load_count(c, err) != 0 || load_columns(c, err) != 0)
        goto fail;
    *stored = c->model;
    return c;
fail:
    clickhouse_close(c);
    return NULL;
}

static int clickhouse_refresh(void *state, vdx_error *err)
{
    clickhouse *c = state;
    return load_count(c, err) == 0 && load_columns(c, err) == 0 ? 0 : -1;
}

static int64_t clickhouse_count(void *state) { return ((clickhouse *)state)->count; }
static vdx_vector_type clickhouse_vector_type(void *state) { return ((clickhouse *)state)->type; }

/* ---- columns ---- */

static int add_columns(clickhouse *c, const char *const *names, int n, vdx_error *err)
{
    int missing = backend_check_new_columns(c->collection, builtin_columns,
                                                N_BUILTIN_COLUMNS, c->columns, c->n_columns,
                                                names, n, err);
    if (missing <= 0)
        return missing;
    if (become_writer(c, err) != 0)
        return -1;
    /* on a cluster: the shards' tables first, then the Distributed table over them */
    const char *tables[2] = {c->url.cluster[0] ? c->tables.items_shard : c->tables.items,
                             c->url.cluster[0] ? c->tables.items : NULL};
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (!backend_column_to_add(c->columns, c->n_columns, names, i))
            continue;
        for (int t = 0; t < 2 && tables[t] && rc == 0; t++) {
            char *table = quoted_identifier(c, tables[t], err);
            char *column = table ? quoted_identifier(c, names[i], err) : NULL;
            strbuf sql = {0};
            if (!column) {
                rc = -1;
            } else {
                strbuf_printf(&sql, "ALTER TABLE %s", table);
                ch_sql_on_cluster(&sql, on_cluster(c));
                strbuf_printf(&sql, " ADD COLUMN %s Nullable(String)", column);
            }
            free(table);
            free(column);
            vdx_error local;
            /* CONFLICT: ClickHouse's "already exists", another writer added it */
            if (rc == 0 && (sql.oom ? oom(c, err) : run_ddl(c, sql.data, NULL, &local)) != 0 &&
                local.kind != VDX_ERR_CONFLICT) {
                if (err)
                    *err = local;
                rc = -1;
            }
            strbuf_free(&sql);
        }
    }
    if (load_columns(c, rc == 0 ? err : NULL) != 0)
        return -1;
    return rc;
}

static int clickhouse_add_columns(void *state, const char *const *names, int n, vdx_error *err)
{
    return add_columns(state, names, n, err);
}

static int clickhouse_columns(void *state, char ***names, int *n, vdx_error *err)
{
    clickhouse *c = state;
    return backend_copy_columns(c->collection, c->columns, c->n_columns, names, n, err);
}

/* ---- append ---- */

/* The RowBinary rows of the batch's items with a vector (but those in skip), for the column list
 * (id, url, vector, width, height, ingested_at, row, <every metadata column>). */
static int encode_items(clickhouse *c, const vdx_item *items, size_t n, const char *now,
                        const id_set *skip, strbuf *rows, vdx_error *err)
{
    int dims = c->model.dims;
    float *rounded = c->type == VDX_VECTOR_F16 ? malloc((size_t)dims * sizeof *rounded) : NULL;
    if (c->type == VDX_VECTOR_F16 && !rounded)
        return oom(c, err);
    int64_t row = c->count;
    for (size_t i = 0; i < n; i++) {
        const vdx_item *it = &items[i];
        if (!it->vector)
            continue;
        if (id_set_has(skip, it->id)) { /* landed before a retry: keeps its row number */
            row++;
            continue;
        }
        ch_rb_string(rows, it->id);
        ch_rb_string(rows, it->url);
        if (rounded) { /* an f16 collection stores what an f16 file would hold */
            for (int d = 0; d < dims; d++)
                rounded[d] = half_f16_to_f32(half_f32_to_f16(it->vector[d]));
            ch_rb_floats(rows, rounded, dims);
        } else {
            ch_rb_floats(rows, it->vector, dims);
        }
        ch_rb_nullable_int32(rows, it->width <= 0, it->width);
        ch_rb_nullable_int32(rows, it->height <= 0, it->height);
        ch_rb_string(rows, now);
        ch_rb_uint64(rows, (uint64_t)row++);
        for (int col = 0; col < c->n_columns; col++) {
            const char *value = NULL;
            for (int m = 0; m < it->n_meta; m++)
                if (strcasecmp(it->meta_names[m], c->columns[col]) == 0)
                    value = it->meta_values[m];
            ch_rb_nullable_string(rows, value);
        }
    }
    free(rounded);
    return rows->oom ? oom(c, err) : 0;
}

static int insert_sql(clickhouse *c, const char *table, int with_columns, strbuf *sql,
                      vdx_error *err)
{
    char *quoted = quoted_identifier(c, table, err);
    if (!quoted)
        return -1;
    if (with_columns) {
        strbuf_printf(sql, "INSERT INTO %s (id, url, vector, width, height, ingested_at, row",
                      quoted);
        for (int col = 0; col < c->n_columns; col++) {
            char *name = clickhouse_quote_identifier(c->columns[col]);
            strbuf_printf(sql, ", %s", name ? name : "");
            sql->oom |= !name;
            free(name);
        }
        strbuf_put(sql, ") FORMAT RowBinary");
    } else {
        strbuf_printf(sql, "INSERT INTO %s (id, url, reason, failed_at, version) FORMAT "
                           "RowBinary",
                      quoted);
    }
    free(quoted);
    return sql->oom ? oom(c, err) : 0;
}

/* Sends the items insert (the batch's items with a vector, ids); after a transient
 * failure, finds out which of them landed: all means done, none means send again; on a
 * cluster, where one shard may have stored its part and another not, the rest is sent. */
static int insert_items(clickhouse *c, const vdx_item *items, size_t n, const char *now,
                        const char *const *ids, size_t n_ids, vdx_error *err)
{
    char settings[96];
    snprintf(settings, sizeof settings, "max_insert_block_size=%zu%s%s", n_ids + 1048576,
             insert_settings(c) ? "&" : "", insert_settings(c) ? insert_settings(c) : "");
    strbuf sql = {0};
    if (insert_sql(c, c->tables.items, 1, &sql, err) != 0) {
        strbuf_free(&sql);
        return -1;
    }
    id_set landed = {0};
    int rc = -1;
    for (int attempt = 1;; attempt++) {
        strbuf response = {0}, rows = {0};
        int transient = 0, code = 0;
        if (futimens(c->lock_fd, NULL) != 0) { /* "an insert may be in flight": see above */
            vdx_fail_errno(err, errno, "collection '%s': cannot touch %s: %s", c->collection,
                           c->lock_path, strerror(errno));
            break;
        }
        if (encode_items(c, items, n, now, &landed, &rows, err) != 0) {
            strbuf_free(&rows);
            break;
        }
        ch_request req = {.sql = sql.data, .body = rows.data, .body_len = rows.len,
                          .settings = settings};
        rc = ch_http_run(c->http, &req, &response, &transient, &code, err);
        strbuf_free(&response);
        strbuf_free(&rows);
        if (rc == 0)
            break;
        rc = -1;
        int shard_down = c->url.cluster[0] && is_shard_failure(code);
        if ((!transient && !shard_down) || attempt >= CH_HTTP_ATTEMPTS) {
            if (shard_down)
                name_down_shards(c, err);
            vdx_error_prefix(err, "collection '%s': inserting %zu items", c->collection, n_ids);
            break;
        }
        ch_http_backoff(attempt);
        id_set now_landed;
        vdx_error local;
        if (present_ids(c, ids, n_ids, 0, &now_landed, &local) != 0)
            continue; /* still unreachable: try again (the next check decides) */
        id_set_free(&landed);
        landed = now_landed;
        if (landed.n == n_ids) {
            rc = 0; /* the lost response was a success */
            break;
        }
        if (landed.n != 0 && !c->url.cluster[0]) {
            vdx_fail(err, "collection '%s': after a lost connection %zu of %zu items of "
                          "the batch are on the server; append them again to finish",
                     c->collection, landed.n, n_ids);
            break;
        }
    }
    id_set_free(&landed);
    strbuf_free(&sql);
    return rc;
}

static int insert_failures(clickhouse *c, const vdx_item *items, size_t n, const char *now,
                           vdx_error *err)
{
    strbuf rows = {0}, sql = {0}, response = {0};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t version = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    size_t n_failures = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].vector)
            continue;
        ch_rb_string(&rows, items[i].id);
        ch_rb_string(&rows, items[i].url);
        ch_rb_string(&rows, items[i].failure);
        ch_rb_string(&rows, now);
        ch_rb_uint64(&rows, version + i);
        n_failures++;
    }
    int rc = 0;
    if (n_failures > 0) {
        rc = rows.oom ? oom(c, err) : insert_sql(c, c->tables.failures, 0, &sql, err);
        /* retrying is safe: the same (id, version) rows collapse in ReplacingMergeTree */
        ch_request req = {.sql = sql.data, .body = rows.data, .body_len = rows.len, .retry = 1,
                          .settings = insert_settings(c)};
        if (rc == 0 && ch_http_run(c->http, &req, &response, NULL, NULL, err) != 0)
            rc = vdx_error_prefix(err, "collection '%s': recording %zu failures",
                                  c->collection, n_failures);
    }
    strbuf_free(&rows);
    strbuf_free(&sql);
    strbuf_free(&response);
    return rc;
}

static int clickhouse_append(void *state, const vdx_item *items, size_t n, vdx_error *err)
{
    clickhouse *c = state;
    if (become_writer(c, err) != 0) /* the batch rules are store.c's */
        return -1;
    for (size_t i = 0; i < n; i++)
        for (int m = 0; m < items[i].n_meta; m++)
            if (find_column(c, items[i].meta_names[m]) < 0 &&
                add_columns(c, items[i].meta_names, items[i].n_meta, err) != 0)
                return vdx_error_prefix(err, "item '%s'", items[i].id);

    /* zeroed, so that GCC (-O2 with sanitizers) sees the n == 0 case initialised */
    const char **ids = calloc(n ? n : 1, sizeof *ids),
               **vector_ids = calloc(n ? n : 1, sizeof *vector_ids);
    int rc = -1;
    size_t n_vectors = 0;
    if (!ids || !vector_ids) {
        oom(c, err);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = items[i].id;
        if (items[i].vector)
            vector_ids[n_vectors++] = items[i].id;
    }
    id_set stored;
    if (present_ids(c, ids, n, 0, &stored, err) != 0)
        goto done;
    for (size_t i = 0; i < n; i++)
        if (id_set_has(&stored, items[i].id)) {
            vdx_fail(err, "collection '%s': id '%s' is already stored (batch item %zu)",
                     c->collection, items[i].id, i);
            id_set_free(&stored);
            goto done;
        }
    id_set_free(&stored);
    char now[32];
    clock_utc_iso_now(now);
    if (n_vectors > 0) {
        if (store_thumbnails(c, items, n, err) != 0 ||
            insert_items(c, items, n, now, vector_ids, n_vectors, err) != 0)
            goto done;
        c->count += (int64_t)n_vectors;
    }
    rc = insert_failures(c, items, n, now, err);
done:
    free(ids);
    free(vector_ids);
    return rc;
}

static int clickhouse_item_states(void *state, const char *const *ids, size_t n,
                                  vdx_item_state *states, vdx_error *err)
{
    clickhouse *c = state;
    id_set stored, failed;
    if (present_ids(c, ids, n, 0, &stored, err) != 0)
        return -1;
    if (present_ids(c, ids, n, 1, &failed, err) != 0) {
        id_set_free(&stored);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        states[i] = id_set_has(&stored, ids[i])   ? VDX_ITEM_STORED
                    : id_set_has(&failed, ids[i]) ? VDX_ITEM_FAILED
                                                  : VDX_ITEM_ABSENT;
    id_set_free(&stored);
    id_set_free(&failed);
    return 0;
}

/* ---- search ---- */

/* The request's where, parsed against this collection's columns and rendered for
 * ClickHouse (NULL when there is none). */
static int render_where(clickhouse *c, const char *where, char **out, vdx_error *err)
{
    *out = NULL;
    vdx_filter *filter; /* offsets in messages count from the filter's first byte, as embedded */
    if (backend_parse_where(c->collection, where, c->columns, c->n_columns, &filter,
                                err) != 0)
        return -1;
    if (!filter)
        return 0;
    *out = filter_to_clickhouse(filter, err);
    filter_free(filter);
    return *out ? 0 : -1;
}

static int read_hits(clickhouse *c, const strbuf *response, int with_vectors, vdx_hits *out,
                     vdx_error *err)
{
    ch_reader r = {(const uint8_t *)response->data, response->len, 0};
    int cap = 0;
    while (r.pos < r.len) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            vdx_hit *grown = realloc(out->hits, (size_t)cap * sizeof *grown);
            if (!grown)
                return oom(c, err);
            out->hits = grown;
        }
        vdx_hit *hit = &out->hits[out->n];
        *hit = (vdx_hit){0};
        out->n++;
        double dist;
        if (ch_read_string(&r, &hit->id, err) != 0 || ch_read_string(&r, &hit->url, err) != 0 ||
            ch_read_float64(&r, &dist, err) != 0)
            return vdx_error_prefix(err, "collection '%s'", c->collection);
        hit->dist = (float)dist;
        if (with_vectors) {
            if (!(hit->vector = malloc((size_t)c->model.dims * sizeof(float))))
                return oom(c, err);
            if (ch_read_floats(&r, hit->vector, c->model.dims, err) != 0)
                return vdx_error_prefix(err, "collection '%s'", c->collection);
        }
    }
    return 0;
}

static int run_search(clickhouse *c, const vdx_search_request *req, int score_all,
                      vdx_hits *out, vdx_error *err)
{
    int dims = c->model.dims;
    if (!score_all && req->k == 0)
        return 0;
    float *q = malloc((size_t)dims * sizeof *q);
    char *where = NULL, *sql = NULL;
    strbuf tsv = {0}, response = {0};
    ch_external ext;
    int rc = -1;
    if (!q) {
        oom(c, err);
        goto done;
    }
    if (score_all) {
        memcpy(q, req->query, (size_t)dims * sizeof *q);
    } else { /* cosine: the literal is the unit vector, as the embedded scan uses */
        backend_unit_vector(req->query, dims, q);
    }
    if (render_where(c, req->where, &where, err) != 0)
        goto done;
    if (req->n_exclude > 0 && ids_table("excl", req->exclude_ids, req->n_exclude, &tsv, &ext) != 0) {
        oom(c, err);
        goto done;
    }
    ch_search_sql s = {
        .dialect = c->dialect,
        .table = c->tables.items,
        .query = q,
        .dims = dims,
        .k = req->k,
        .offset = req->offset,
        .has_exclusions = req->n_exclude > 0,
        .n_exclude = req->n_exclude,
        .where = where,
        .with_vectors = req->with_vectors,
        .score_all = score_all,
    };
    if (!(sql = ch_sql_search(&s))) {
        oom(c, err);
        goto done;
    }
    if (run_query(c, sql, req->n_exclude > 0 ? &ext : NULL, &response, NULL, err) != 0)
        goto done;
    rc = read_hits(c, &response, req->with_vectors, out, err);
done:
    if (rc != 0)
        vdx_hits_free(out);
    free(q);
    free(where);
    free(sql);
    strbuf_free(&tsv);
    strbuf_free(&response);
    return rc;
}

static int clickhouse_search(void *state, const vdx_search_request *req, vdx_hits *out,
                             vdx_error *err)
{
    return run_search(state, req, 0, out, err);
}

static int clickhouse_score_all(void *state, const vdx_search_request *req, vdx_hits *out,
                                vdx_error *err)
{
    return run_search(state, req, 1, out, err);
}

/* ---- lookups ---- */

/* The error for an id that has no vector: failed, or unknown. */
static int missing_item(clickhouse *c, const char *id, vdx_error *err)
{
    id_set failed;
    if (present_ids(c, &id, 1, 1, &failed, err) != 0)
        return -1;
    int was_failure = failed.n > 0;
    id_set_free(&failed);
    return vdx_fail_kind(err, was_failure ? VDX_ERR_INVALID : VDX_ERR_NOT_FOUND,
                    was_failure ? "collection '%s': item '%s' failed to ingest and has no "
                                       "vector"
                                     : "collection '%s': no item '%s'",
                    c->collection, id);
}

typedef struct found_row {
    const char *id;
    size_t row;
} found_row;

static int cmp_found_rows(const void *a, const void *b)
{
    return strcmp(((const found_row *)a)->id, ((const found_row *)b)->id);
}

static int clickhouse_get_vectors(void *state, const char *const *ids, size_t n, float *out,
                                  vdx_error *err)
{
    clickhouse *c = state;
    int dims = c->model.dims;
    strbuf tsv = {0}, sql = {0}, response = {0};
    ch_external ext;
    char *table = quoted_identifier(c, c->tables.items, err);
    char **found_ids = NULL;
    found_row *order = NULL;
    float *found = NULL;
    size_t n_found = 0, cap = 0;
    int rc = -1;
    if (!table)
        return -1;
    if (ids_table("ids", ids, n, &tsv, &ext) != 0) {
        oom(c, err);
        goto done;
    }
    strbuf_printf(&sql, "SELECT id, vector FROM %s WHERE id IN (SELECT id FROM ids) FORMAT "
                        "RowBinary",
                  table);
    if (sql.oom ? oom(c, err) : run_query(c, sql.data, &ext, &response, NULL, err))
        goto done;
    ch_reader r = {(const uint8_t *)response.data, response.len, 0};
    while (r.pos < r.len) {
        if (n_found == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown_ids = realloc(found_ids, cap * sizeof *grown_ids);
            if (grown_ids)
                found_ids = grown_ids;
            float *grown = realloc(found, cap * (size_t)dims * sizeof *grown);
            if (grown)
                found = grown;
            if (!grown_ids || !grown) {
                oom(c, err);
                goto done;
            }
        }
        if (ch_read_string(&r, &found_ids[n_found], err) != 0)
            goto done;
        n_found++;
        if (ch_read_floats(&r, found + (n_found - 1) * (size_t)dims, dims, err) != 0)
            goto done;
    }
    /* answer rows in request order: sort (id, row) pairs once, look each id up */
    if (!(order = malloc((n_found ? n_found : 1) * sizeof *order))) {
        oom(c, err);
        goto done;
    }
    for (size_t j = 0; j < n_found; j++)
        order[j] = (found_row){found_ids[j], j};
    if (n_found > 1)
        qsort(order, n_found, sizeof *order, cmp_found_rows);
    for (size_t i = 0; i < n; i++) {
        found_row key = {ids[i], 0};
        found_row *hit =
            n_found ? bsearch(&key, order, n_found, sizeof *order, cmp_found_rows) : NULL;
        if (!hit) {
            missing_item(c, ids[i], err);
            goto done;
        }
        memcpy(out + i * (size_t)dims, found + hit->row * (size_t)dims,
               (size_t)dims * sizeof *out);
    }
    rc = 0;
done:
    free(order);
    for (size_t j = 0; j < n_found; j++)
        free(found_ids[j]);
    free(found_ids);
    free(found);
    free(table);
    strbuf_free(&tsv);
    strbuf_free(&sql);
    strbuf_free(&response);
    return rc;
}

/* The items with the smallest sipHash64(id, seed): a uniform draw that is a function of
 * the seed and the ids, whatever the shards and the order of the parts. */
static int clickhouse_sample_vectors(void *state, size_t k, uint64_t seed, float *out,
                                     size_t *got, vdx_error *err)
{
    clickhouse *c = state;
    strbuf sql = {0}, response = {0};
    char *table = quoted_identifier(c, c->tables.items, err);
    int rc = -1;
    if (!table)
        return -1;
    strbuf_printf(&sql, "SELECT vector FROM %s ORDER BY sipHash64(id, toUInt64(%llu)), id "
                        "LIMIT %zu FORMAT RowBinary",
                  table, (unsigned long long)seed, k);
    if (sql.oom ? oom(c, err) : run_query(c, sql.data, NULL, &response, NULL, err))
        goto done;
    ch_reader r = {(const uint8_t *)response.data, response.len, 0};
    size_t n = 0;
    while (r.pos < r.len && n < k) {
        if (ch_read_floats(&r, out + n * (size_t)c->model.dims, c->model.dims, err) != 0)
            goto done;
        n++;
    }
    *got = n;
    rc = 0;
done:
    free(table);
    strbuf_free(&sql);
    strbuf_free(&response);
    return rc;
}

/* The first JSONEachRow object of a SELECT (NULL *row when there is none). */
static int select_json_row(clickhouse *c, const char *sql, cJSON **row, vdx_error *err)
{
    strbuf response = {0};
    *row = NULL;
    if (run_query(c, sql, NULL, &response, NULL, err) != 0)
        return -1;
    if (response.data && response.data[0]) {
        *row = cJSON_Parse(response.data);
        if (!*row) {
            strbuf_free(&response);
            return vdx_fail(err, "collection '%s': ClickHouse sent JSON that does not parse",
                            c->collection);
        }
    }
    strbuf_free(&response);
    return 0;
}

static int clickhouse_get_item(void *state, const char *id, cJSON **item, vdx_error *err)
{
    clickhouse *c = state;
    char *literal = clickhouse_quote_string(id);
    char *items = quoted_identifier(c, c->tables.items, err);
    char *failures = items ? quoted_identifier(c, c->tables.failures, err) : NULL;
    strbuf sql = {0};
    cJSON *row = NULL;
    int rc = -1;
    if (!literal || !failures) {
        if (!literal)
            oom(c, err);
        goto done;
    }
    strbuf_put(&sql, "SELECT id, url, width, height, ingested_at");
    for (int i = 0; i < c->n_columns; i++) {
        char *name = clickhouse_quote_identifier(c->columns[i]);
        strbuf_printf(&sql, ", %s", name ? name : "");
        sql.oom |= !name;
        free(name);
    }
    strbuf_printf(&sql, " FROM %s WHERE id = %s LIMIT 1 FORMAT JSONEachRow", items, literal);
    if (sql.oom ? oom(c, err) : select_json_row(c, sql.data, &row, err))
        goto done;
    if (row) {
        cJSON *obj = cJSON_CreateObject(), *meta = cJSON_CreateObject();
        if (!obj || !meta) {
            cJSON_Delete(obj);
            cJSON_Delete(meta);
            oom(c, err);
            goto done;
        }
        cJSON *field = row->child;
        while (field) {
            cJSON *next = field->next;
            cJSON_DetachItemViaPointer(row, field);
            cJSON_AddItemToObject(is_builtin(field->string) ? obj : meta, field->string, field);
            field = next;
        }
        cJSON_AddItemToObject(obj, "metadata", meta);
        *item = obj;
        rc = 0;
        goto done;
    }
    sql.len = 0;
    strbuf_printf(&sql, "SELECT id, url, reason AS failure, failed_at FROM %s FINAL WHERE id = "
                        "%s LIMIT 1 FORMAT JSONEachRow",
                  failures, literal);
    if (sql.oom ? oom(c, err) : select_json_row(c, sql.data, &row, err))
        goto done;
    if (!row) {
        vdx_fail_kind(err, VDX_ERR_NOT_FOUND, "collection '%s': no item '%s'", c->collection, id);
        goto done;
    }
    cJSON_AddItemToObject(row, "width", cJSON_CreateNull());
    cJSON_AddItemToObject(row, "height", cJSON_CreateNull());
    cJSON_AddItemToObject(row, "ingested_at",
                          cJSON_CreateString(cJSON_GetStringValue(
                              cJSON_GetObjectItemCaseSensitive(row, "failed_at"))));
    cJSON_AddItemToObject(row, "metadata", cJSON_CreateObject());
    *item = row;
    row = NULL;
    rc = 0;
done:
    cJSON_Delete(row);
    free(literal);
    free(items);
    free(failures);
    strbuf_free(&sql);
    return rc;
}

static int clickhouse_get_thumbnail(void *state, const char *id, uint8_t **jpeg, size_t *size,
                                    vdx_error *err)
{
    clickhouse *c = state;
    struct stat st;
    if (!c->side && stat(c->side_path, &st) != 0)
        return vdx_fail(err, "collection '%s': no thumbnail for item '%s' (no %s here)",
                        c->collection, id, c->side_path);
    if (side_open(c, 0, err) != 0)
        return -1;
    sqlite3_stmt *stmt = sql_prepare(c->side, "SELECT jpeg FROM thumbnails WHERE id = ?1", err,
                                     "collection '%s' (%s)", c->collection, c->side_path);
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    int rc;
    if (step == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(stmt, 0);
        *jpeg = malloc(n ? n : 1);
        if (*jpeg) {
            memcpy(*jpeg, sqlite3_column_blob(stmt, 0), n);
            *size = n;
            rc = 0;
        } else {
            rc = oom(c, err);
        }
    } else if (step == SQLITE_DONE) {
        rc = vdx_fail_kind(err, VDX_ERR_NOT_FOUND, "collection '%s': no thumbnail for item '%s'",
                           c->collection, id);
    } else {
        rc = sql_fail(c->side, err, "collection '%s': reading a thumbnail from %s", c->collection,
                      c->side_path);
    }
    sqlite3_finalize(stmt);
    return rc;
}

static int clickhouse_failures(void *state, cJSON **failures, vdx_error *err)
{
    clickhouse *c = state;
    /* on a cluster the subquery reads each shard's own items: ids are sharded alike */
    char *items = quoted_identifier(
        c, c->url.cluster[0] ? c->tables.items_shard : c->tables.items, err);
    char *table = items ? quoted_identifier(c, c->tables.failures, err) : NULL;
    strbuf sql = {0}, response = {0};
    int rc = -1;
    if (!table)
        goto done;
    strbuf_printf(&sql,
                  "SELECT id, url, reason, failed_at AS time FROM %s FINAL WHERE id NOT IN "
                  "(SELECT id FROM %s) ORDER BY failed_at, version FORMAT JSONEachRow",
                  table, items);
    if (sql.oom ? oom(c, err) : run_query(c, sql.data, NULL, &response, NULL, err))
        goto done;
    cJSON *list = cJSON_CreateArray();
    if (!list) {
        oom(c, err);
        goto done;
    }
    for (char *line = response.data; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        if (*line) {
            cJSON *f = cJSON_Parse(line);
            if (!f) {
                cJSON_Delete(list);
                vdx_fail(err, "collection '%s': ClickHouse sent a failure row that does not "
                              "parse",
                         c->collection);
                goto done;
            }
            cJSON_AddItemToArray(list, f);
        }
        line = end ? end + 1 : NULL;
    }
    *failures = list;
    rc = 0;
done:
    free(items);
    free(table);
    strbuf_free(&sql);
    strbuf_free(&response);
    return rc;
}

static int clickhouse_clear_failures(void *state, vdx_error *err)
{
    clickhouse *c = state;
    if (become_writer(c, err) != 0)
        return -1;
    char *table = quoted_identifier(
        c, c->url.cluster[0] ? c->tables.failures_shard : c->tables.failures, err);
    if (!table)
        return -1;
    strbuf sql = {0};
    strbuf_printf(&sql, "TRUNCATE TABLE %s", table);
    ch_sql_on_cluster(&sql, on_cluster(c));
    free(table);
    int rc = sql.oom ? oom(c, err) : run_ddl(c, sql.data, NULL, err);
    strbuf_free(&sql);
    return rc;
}

static int clickhouse_add_note(void *state, const char *key, const char *value, vdx_error *err)
{
    clickhouse *c = state;
    if (become_writer(c, err) != 0)
        return -1;
    char *info = quoted_identifier(c, c->tables.info, err);
    if (!info)
        return -1;
    const char *pair[1][2] = {{key, value}};
    int rc = insert_info_rows(c, info, pair, 1, err);
    free(info);
    return rc != 0 ? vdx_error_prefix(err, "writing a note") : 0;
}

static int clickhouse_notes(void *state, const char *prefix, cJSON **values, vdx_error *err)
{
    clickhouse *c = state;
    *values = NULL;
    char *info = quoted_identifier(c, c->tables.info, err);
    char *quoted = info ? clickhouse_quote_string(prefix) : NULL;
    strbuf sql = {0}, response = {0};
    int rc = -1;
    if (!quoted) {
        if (info)
            oom(c, err);
        goto done;
    }
    /* keys start with a UTC timestamp: their order is the notes' */
    strbuf_printf(&sql, "SELECT value FROM %s WHERE substring(key, 1, %zu) = %s ORDER BY key "
                        "FORMAT RowBinary", info, strlen(prefix), quoted);
    if (sql.oom ? oom(c, err) : run_query(c, sql.data, NULL, &response, NULL, err))
        goto done;
    if (!(*values = cJSON_CreateArray())) {
        oom(c, err);
        goto done;
    }
    ch_reader r = {(const uint8_t *)response.data, response.len, 0};
    while (r.pos < r.len) {
        char *value = NULL;
        if (ch_read_string(&r, &value, err) != 0)
            goto done;
        cJSON *v = cJSON_CreateString(value);
        free(value);
        if (!v || !cJSON_AddItemToArray(*values, v)) {
            cJSON_Delete(v);
            oom(c, err);
            goto done;
        }
    }
    rc = 0;
done:
    if (rc != 0) {
        cJSON_Delete(*values);
        *values = NULL;
    }
    free(info);
    free(quoted);
    strbuf_free(&sql);
    strbuf_free(&response);
    return rc;
}

/* One number from a query answering a single value (-1 when it does not parse). */
static int query_number(clickhouse *c, const char *sql, double *value, vdx_error *err)
{
    strbuf response = {0};
    if (run_query(c, sql, NULL, &response, NULL, err) != 0)
        return -1;
    char *end;
    *value = strtod(response.data ? response.data : "", &end);
    int ok = response.data && end != response.data;
    strbuf_free(&response);
    return ok ? 0 : vdx_fail(err, "collection '%s': unexpected answer to '%.60s'",
                             c->collection, sql);
}

static int clickhouse_info(void *state, cJSON *info, vdx_error *err)
{
    clickhouse *c = state;
    int cluster = c->url.cluster[0] != 0;
    /* on a cluster the subquery reads each shard's own items: ids are sharded alike */
    char *items = quoted_identifier(c, cluster ? c->tables.items_shard : c->tables.items, err);
    char *failures = items ? quoted_identifier(c, c->tables.failures, err) : NULL;
    char *names[3] = {clickhouse_quote_string(cluster ? c->tables.items_shard : c->tables.items),
                      clickhouse_quote_string(cluster ? c->tables.info_shard : c->tables.info),
                      clickhouse_quote_string(cluster ? c->tables.failures_shard
                                                      : c->tables.failures)};
    char *cluster_name = clickhouse_quote_string(c->url.cluster);
    strbuf sql = {0};
    double failed = 0, bytes = 0;
    int rc = -1;
    if (!failures || !names[0] || !names[1] || !names[2] || !cluster_name) {
        if (failures)
            oom(c, err);
        goto done;
    }
    strbuf_printf(&sql, "SELECT uniqExact(id) FROM %s WHERE id NOT IN (SELECT id FROM %s)",
                  failures, items);
    if (sql.oom ? oom(c, err) : query_number(c, sql.data, &failed, err))
        goto done;
    sql.len = 0;
    /* on a cluster: the parts of every shard */
    if (cluster)
        strbuf_printf(&sql, "SELECT sum(bytes_on_disk) FROM cluster(%s, system, parts) WHERE "
                            "active AND database = currentDatabase() AND table IN (%s, %s, %s)",
                      cluster_name, names[0], names[1], names[2]);
    else
        strbuf_printf(&sql, "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND "
                            "database = currentDatabase() AND table IN (%s, %s, %s)",
                      names[0], names[1], names[2]);
    if (sql.oom ? oom(c, err) : query_number(c, sql.data, &bytes, err))
        goto done;
    if (!c->version[0]) {
        ch_dialect ignored;
        if (detect_server(c, &ignored, err) != 0)
            goto done;
    }
    cJSON_AddNumberToObject(info, "count", (double)c->count);
    cJSON_AddNumberToObject(info, "failed", failed);
    cJSON_AddStringToObject(info, "vector_type", c->type == VDX_VECTOR_F16 ? "f16" : "f32");
    cJSON_AddNumberToObject(info, "bytes_on_disk", bytes);
    cJSON_AddStringToObject(info, "created", c->created);
    cJSON_AddStringToObject(info, "server", c->endpoint);
    cJSON_AddStringToObject(info, "server_version", c->version);
    cJSON_AddStringToObject(info, "database", c->url.database);
    cJSON_AddStringToObject(info, "table", c->tables.items);
    cJSON_AddStringToObject(info, "dialect", ch_dialect_name(c->dialect));
    if (cluster) {
        cJSON_AddStringToObject(info, "cluster", c->url.cluster);
        cJSON_AddStringToObject(info, "cluster_ddl", c->n_shards ? "per-shard" : "ON CLUSTER");
    }
    if (c->dialect == CH_DIALECT_MYSCALE) {
        strbuf response = {0};
        sql.len = 0;
        strbuf_printf(&sql, "SELECT status FROM system.vector_indices WHERE database = "
                            "currentDatabase() AND table = %s FORMAT TabSeparated",
                      names[0]);
        if (sql.oom ? oom(c, err) : run_query(c, sql.data, NULL, &response, NULL, err))
            goto done;
        if (response.data)
            response.data[strcspn(response.data, "\n")] = 0;
        cJSON_AddStringToObject(info, "index_status",
                                response.data && response.data[0] ? response.data : "none");
        strbuf_free(&response);
    }
    cJSON *columns = cJSON_CreateArray();
    for (int i = 0; columns && i < c->n_columns; i++)
        cJSON_AddItemToArray(columns, cJSON_CreateString(c->columns[i]));
    cJSON_AddItemToObject(info, "columns", columns);
    rc = 0;
done:
    free(items);
    free(failures);
    for (int i = 0; i < 3; i++)
        free(names[i]);
    free(cluster_name);
    strbuf_free(&sql);
    return rc;
}

const vdx_store_backend vdx_clickhouse_backend = {
    .name = "clickhouse",
    .open = clickhouse_open,
    .close = clickhouse_close,
    .refresh = clickhouse_refresh,
    .count = clickhouse_count,
    .vector_type = clickhouse_vector_type,
    .add_columns = clickhouse_add_columns,
    .columns = clickhouse_columns,
    .append = clickhouse_append,
    .item_states = clickhouse_item_states,
    .search = clickhouse_search,
    .score_all = clickhouse_score_all,
    .get_vectors = clickhouse_get_vectors,
    .sample_vectors = clickhouse_sample_vectors,
    .get_item = clickhouse_get_item,
    .get_thumbnail = clickhouse_get_thumbnail,
    .failures = clickhouse_failures,
    .info = clickhouse_info,
    .clear_failures = clickhouse_clear_failures,
    .add_note = clickhouse_add_note,
    .notes = clickhouse_notes,
};
