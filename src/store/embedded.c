/* The embedded store backend: a collection is a directory holding
 *   collection.db   SQLite (WAL): model identity, items and their metadata, thumbnails
 *   vectors.f32|f16 a 64-byte header, then one fixed-size row per stored item
 *   write.lock      flock()ed by the single writer
 * Readers memory-map the vector file and search it with scan.c; an in-memory hash map
 * id → row (built at open, extended at refresh) turns ids into rows.
 *
 * Crash safety (docs/store-format.md has the full argument): an append first writes the
 * batch's vectors past the committed rows and fdatasyncs them, then commits one SQLite
 * transaction that inserts the items with their row numbers and raises the committed
 * row count in `meta`. Rows at or past that count are invisible to everyone; the writer
 * truncates them away when it takes the lock. So a vector without its metadata, or
 * metadata without its vector, can never be observed. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/hash.h"
#include "common/random.h"
#include "common/sqlite_util.h"
#include "common/text.h"
#include "store/backend.h"
#include "store/backend_common.h"
#include "store/filter.h"
#include "store/index_ivf.h"
#include "store/scan.h"

#define VECTOR_MAGIC "VDXVECS\0"
#define VECTOR_FORMAT_VERSION 1
#define VECTOR_HEADER_SIZE 64
#define STORE_FORMAT_VERSION 1

/* Columns every item has; metadata columns may not take these names. */
static const char *const builtin_columns[] = {"id",     "url",    "width",     "height",
                                              "ingested_at", "row", "failure", "failed_at",
                                              "rowid",  "oid",    "_rowid_"};

/* Open-addressing hash set of rows keyed by their id (slot = row + 1, 0 = empty). */
typedef struct id_index {
    int64_t *slots;
    size_t cap; /* power of two */
    size_t n;
} id_index;

typedef struct embedded {
    char collection[65];
    char dir[4096];
    char db_path[4200], vec_path[4200], lock_path[4200];
    sqlite3 *db;
    int read_only;
    int lock_fd; /* -1 until this handle holds the write lock */
    int shared_lock_fd; /* write.lock held shared while reading without the WAL index, or -1 */
    vdx_model_identity model;
    vdx_vector_type type;
    size_t row_bytes;
    int vec_fd;
    uint8_t *map; /* the whole vector file as of the last mapping */
    size_t map_size;
    int64_t count; /* committed rows this handle knows */
    /* row → id: NUL-terminated ids packed in one buffer */
    char *id_chars;
    size_t id_chars_len, id_chars_cap;
    size_t *id_offsets;
    int64_t id_offsets_cap;
    id_index index;
    char **columns; /* metadata column names, in order */
    int n_columns;
    char created[64];   /* meta 'created': part of the index stamp */
    char ivf_path[4200];
    vdx_ivf *ivf;       /* the approximate index when one matches these rows, else NULL */
    char ivf_problem[512]; /* why an index file is not used (shown by info), or "" */
    struct stat ivf_seen;  /* the index file as last loaded (or found unusable) */
} embedded;

/* ---- small helpers ---- */

static int db_fail(embedded *e, vdx_error *err, const char *what)
{
    return sql_fail(e->db, err, "collection '%s' (%s): %s", e->collection, e->db_path, what);
}

static int exec_sql(embedded *e, const char *sql, vdx_error *err)
{
    /* never the statement itself nor the directory: the message may reach an HTTP client */
    return sql_exec(e->db, sql, err, "collection '%s' (collection.db)", e->collection);
}

static sqlite3_stmt *prepare(embedded *e, const char *sql, vdx_error *err)
{
    return sql_prepare(e->db, sql, err, "collection '%s' (collection.db)", e->collection);
}

static void rollback(embedded *e) { sql_rollback(e->db); }

static const char *type_name(vdx_vector_type type) { return type == VDX_VECTOR_F16 ? "f16" : "f32"; }

static const char *row_id(const embedded *e, int64_t row) { return e->id_chars + e->id_offsets[row]; }

/* ---- the id index ---- */

static int64_t index_find(const embedded *e, const char *id)
{
    if (!e->index.cap)
        return -1;
    size_t mask = e->index.cap - 1;
    for (size_t i = hash_str(id) & mask;; i = (i + 1) & mask) {
        int64_t slot = e->index.slots[i];
        if (!slot)
            return -1;
        if (strcmp(row_id(e, slot - 1), id) == 0)
            return slot - 1;
    }
}

static void index_put(embedded *e, int64_t row)
{
    size_t mask = e->index.cap - 1;
    size_t i = hash_str(row_id(e, row)) & mask;
    while (e->index.slots[i])
        i = (i + 1) & mask;
    e->index.slots[i] = row + 1;
    e->index.n++;
}

static int index_reserve(embedded *e, size_t n, vdx_error *err)
{
    if ((n + 1) * 2 <= e->index.cap)
        return 0;
    size_t cap = 1024;
    while (cap < (n + 1) * 2)
        cap *= 2;
    int64_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory for an id index of %zu items",
                        e->collection, n);
    int64_t *old = e->index.slots;
    size_t old_cap = e->index.cap;
    e->index.slots = slots;
    e->index.cap = cap;
    e->index.n = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i])
            index_put(e, old[i] - 1);
    free(old);
    return 0;
}

/* Records id for the next row (= the row number `row`, which must be e->count + k). */
static int remember_row_id(embedded *e, int64_t row, const char *id, vdx_error *err)
{
    size_t len = strlen(id) + 1;
    if (row >= e->id_offsets_cap) {
        int64_t cap = e->id_offsets_cap ? e->id_offsets_cap * 2 : 4096;
        while (cap <= row)
            cap *= 2;
        size_t *offsets = realloc(e->id_offsets, (size_t)cap * sizeof *offsets);
        if (!offsets)
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory for %lld ids", e->collection,
                            (long long)cap);
        e->id_offsets = offsets;
        e->id_offsets_cap = cap;
    }
    if (e->id_chars_len + len > e->id_chars_cap) {
        size_t cap = e->id_chars_cap ? e->id_chars_cap * 2 : 65536;
        while (cap < e->id_chars_len + len)
            cap *= 2;
        char *chars = realloc(e->id_chars, cap);
        if (!chars)
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory for ids", e->collection);
        e->id_chars = chars;
        e->id_chars_cap = cap;
    }
    memcpy(e->id_chars + e->id_chars_len, id, len);
    e->id_offsets[row] = e->id_chars_len;
    e->id_chars_len += len;
    if (index_reserve(e, (size_t)row + 1, err) != 0)
        return -1;
    index_put(e, row);
    return 0;
}

/* ---- the vector file ---- */

static void encode_header(uint8_t header[VECTOR_HEADER_SIZE], int dims, vdx_vector_type type)
{
    memset(header, 0, VECTOR_HEADER_SIZE);
    memcpy(header, VECTOR_MAGIC, 8);
    uint32_t fields[4] = {VECTOR_FORMAT_VERSION, (uint32_t)dims, (uint32_t)type,
                          (uint32_t)(dims * (type == VDX_VECTOR_F16 ? 2 : 4))};
    memcpy(header + 8, fields, sizeof fields); /* little-endian hosts only (x86-64, arm64) */
}

static int create_vector_file(embedded *e, vdx_error *err)
{
    int fd = open(e->vec_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return vdx_fail_errno(err, errno, "collection '%s': cannot create %s: %s", e->collection,
                        e->vec_path, strerror(errno));
    uint8_t header[VECTOR_HEADER_SIZE];
    encode_header(header, e->model.dims, e->type);
    if (backend_write_all(fd, header, sizeof header, 0) != 0 || fsync(fd) != 0) {
        int saved = errno;
        close(fd);
        return vdx_fail_errno(err, saved, "collection '%s': cannot write %s: %s", e->collection,
                        e->vec_path, strerror(saved));
    }
    close(fd);
    return 0;
}

static int open_vector_file(embedded *e, vdx_error *err)
{
    e->vec_fd = open(e->vec_path, (e->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (e->vec_fd < 0)
        return vdx_fail_errno(err, errno, "collection '%s': cannot open %s: %s", e->collection, e->vec_path,
                        strerror(errno));
    uint8_t header[VECTOR_HEADER_SIZE], expected[VECTOR_HEADER_SIZE];
    ssize_t got = pread(e->vec_fd, header, sizeof header, 0);
    if (got != (ssize_t)sizeof header)
        return vdx_fail(err, "collection '%s': %s: header is %zd bytes, expected %d",
                        e->collection, e->vec_path, got, VECTOR_HEADER_SIZE);
    if (memcmp(header, VECTOR_MAGIC, 8) != 0)
        return vdx_fail(err, "collection '%s': %s: not a vdx vector file (bad magic at byte 0)",
                        e->collection, e->vec_path);
    encode_header(expected, e->model.dims, e->type);
    if (memcmp(header, expected, sizeof header) != 0) {
        uint32_t f[4];
        memcpy(f, header + 8, sizeof f);
        return vdx_fail(err,
                        "collection '%s': %s: header says version %u, %u dims, type %u; the "
                        "collection says version %d, %d dims, %s",
                        e->collection, e->vec_path, f[0], f[1], f[2], VECTOR_FORMAT_VERSION,
                        e->model.dims, type_name(e->type));
    }
    return 0;
}

/* Maps the file so that the first `rows` rows are readable. */
static int map_rows(embedded *e, int64_t rows, vdx_error *err)
{
    size_t need = VECTOR_HEADER_SIZE + (size_t)rows * e->row_bytes;
    if (e->map && e->map_size >= need)
        return 0;
    struct stat st;
    if (fstat(e->vec_fd, &st) != 0)
        return vdx_fail_errno(err, errno, "collection '%s': %s: %s", e->collection, e->vec_path,
                        strerror(errno));
    if ((size_t)st.st_size < need)
        return vdx_fail(err,
                        "collection '%s': %s holds %lld rows but the collection counts %lld "
                        "(the file was truncated or replaced)",
                        e->collection, e->vec_path,
                        (long long)(((size_t)st.st_size - VECTOR_HEADER_SIZE) / e->row_bytes),
                        (long long)rows);
    if (e->map)
        munmap(e->map, e->map_size);
    e->map = NULL;
    e->map_size = 0;
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, e->vec_fd, 0);
    if (map == MAP_FAILED)
        return vdx_fail_errno(err, errno, "collection '%s': cannot map %s (%lld bytes): %s", e->collection,
                        e->vec_path, (long long)st.st_size, strerror(errno));
    madvise(map, (size_t)st.st_size, MADV_WILLNEED);
    e->map = map;
    e->map_size = (size_t)st.st_size;
    return 0;
}

static const void *row_data(const embedded *e, int64_t row)
{
    return e->map + VECTOR_HEADER_SIZE + (size_t)row * e->row_bytes;
}

static void widen_row(const embedded *e, int64_t row, float *out)
{
    const void *src = row_data(e, row);
    int dims = e->model.dims;
    if (e->type == VDX_VECTOR_F32) {
        memcpy(out, src, (size_t)dims * sizeof(float));
    } else {
        const uint16_t *h = src;
        for (int d = 0; d < dims; d++)
            out[d] = half_f16_to_f32(h[d]);
    }
}

/* ---- metadata: meta table, columns, committed rows ---- */

static int read_meta(embedded *e, const char *key, char *out, size_t size, vdx_error *err)
{
    sqlite3_stmt *stmt = prepare(e, "SELECT value FROM meta WHERE key = ?1", err);
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        if (rc == SQLITE_DONE)
            return vdx_fail(err, "collection '%s': %s has no '%s' in table meta",
                            e->collection, e->db_path, key);
        return db_fail(e, err, "reading meta");
    }
    const unsigned char *v = sqlite3_column_text(stmt, 0);
    snprintf(out, size, "%s", v ? (const char *)v : "");
    sqlite3_finalize(stmt);
    return 0;
}

static int load_columns(embedded *e, vdx_error *err)
{
    sqlite3_stmt *stmt = prepare(e, "SELECT name FROM columns ORDER BY position", err);
    if (!stmt)
        return -1;
    for (int i = 0; i < e->n_columns; i++)
        free(e->columns[i]);
    e->n_columns = 0;
    int rc, cap = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (e->n_columns == cap) {
            cap = cap ? cap * 2 : 32;
            char **grown = realloc(e->columns, (size_t)cap * sizeof *grown);
            if (!grown) {
                sqlite3_finalize(stmt);
                return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
            }
            e->columns = grown;
        }
        char *name = strdup((const char *)sqlite3_column_text(stmt, 0));
        if (!name) {
            sqlite3_finalize(stmt);
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
        }
        e->columns[e->n_columns++] = name;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : db_fail(e, err, "reading columns");
}

/* Reads the committed count and the ids of rows [e->count, committed) in one read
 * transaction, and checks that those rows are exactly numbered. */
static int load_new_rows(embedded *e, vdx_error *err)
{
    if (exec_sql(e, "BEGIN", err) != 0)
        return -1;
    char value[64];
    if (read_meta(e, "count", value, sizeof value, err) != 0)
        goto fail;
    long long committed = atoll(value);
    if (committed < e->count) {
        vdx_fail(err, "collection '%s': committed count went down from %lld to %lld (%s)",
                 e->collection, (long long)e->count, committed, e->db_path);
        goto fail;
    }
    if (committed > e->count) {
        sqlite3_stmt *stmt = prepare(
            e, "SELECT row, id FROM items WHERE row >= ?1 AND row < ?2 ORDER BY row", err);
        if (!stmt)
            goto fail;
        sqlite3_bind_int64(stmt, 1, e->count);
        sqlite3_bind_int64(stmt, 2, committed);
        int64_t expect = e->count;
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            int64_t row = sqlite3_column_int64(stmt, 0);
            if (row != expect) {
                sqlite3_finalize(stmt);
                vdx_fail_kind(err, VDX_ERR_CORRUPT, "collection '%s': %s: no item holds vector row %lld",
                         e->collection, e->db_path, (long long)expect);
                goto fail;
            }
            if (remember_row_id(e, row, (const char *)sqlite3_column_text(stmt, 1), err) != 0) {
                sqlite3_finalize(stmt);
                goto fail;
            }
            expect++;
        }
        sqlite3_finalize(stmt);
        if (rc != SQLITE_DONE) {
            db_fail(e, err, "reading items");
            goto fail;
        }
        if (expect != committed) {
            vdx_fail_kind(err, VDX_ERR_CORRUPT, "collection '%s': %s: no item holds vector row %lld", e->collection,
                     e->db_path, (long long)expect);
            goto fail;
        }
        e->count = committed;
    }
    sqlite3_stmt *stmt = prepare(e, "SELECT count(*) FROM columns", err);
    if (!stmt)
        goto fail;
    int n_columns = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    if (n_columns != e->n_columns && load_columns(e, err) != 0)
        goto fail;
    return exec_sql(e, "COMMIT", err);
fail:
    rollback(e);
    return -1;
}

/* ---- the write lock ---- */

/* Takes the collection's write lock and discards vector rows a crashed writer left past
 * the committed count. Called at open (create) or at the first write. */
static int take_write_lock(embedded *e, vdx_error *err)
{
    if (e->lock_fd >= 0)
        return 0;
    if (e->read_only)
        return vdx_fail(err, "collection '%s' is open read-only", e->collection);
    int fd = backend_lock_open(e->collection, e->lock_path, err);
    if (fd < 0 || backend_lock_claim(e->collection, e->lock_path, fd, err) != 0)
        return -1;
    e->lock_fd = fd;
    return 0;
}

static int discard_uncommitted_rows(embedded *e, vdx_error *err)
{
    if (load_new_rows(e, err) != 0)
        return -1;
    off_t committed = VECTOR_HEADER_SIZE + (off_t)e->count * (off_t)e->row_bytes;
    struct stat st;
    if (fstat(e->vec_fd, &st) != 0)
        return vdx_fail_errno(err, errno, "collection '%s': %s: %s", e->collection, e->vec_path,
                        strerror(errno));
    if (st.st_size < committed)
        return vdx_fail(err,
                        "collection '%s': %s is %lld bytes, shorter than the %lld committed "
                        "rows need (%lld bytes)",
                        e->collection, e->vec_path, (long long)st.st_size, (long long)e->count,
                        (long long)committed);
    if (st.st_size > committed) {
        if (e->map) { /* never map past what we are about to cut */
            munmap(e->map, e->map_size);
            e->map = NULL;
            e->map_size = 0;
        }
        if (ftruncate(e->vec_fd, committed) != 0 || fsync(e->vec_fd) != 0)
            return vdx_fail_errno(err, errno, "collection '%s': cannot truncate %s to %lld bytes: %s",
                            e->collection, e->vec_path, (long long)committed, strerror(errno));
    }
    return 0;
}

static int become_writer(embedded *e, vdx_error *err)
{
    if (e->lock_fd >= 0)
        return 0;
    if (take_write_lock(e, err) != 0)
        return -1;
    if (discard_uncommitted_rows(e, err) != 0) {
        close(e->lock_fd);
        e->lock_fd = -1;
        return -1;
    }
    return 0;
}

/* ---- open / close ---- */

static void embedded_close(void *state)
{
    embedded *e = state;
    if (!e)
        return;
    if (e->map)
        munmap(e->map, e->map_size);
    if (e->vec_fd >= 0)
        close(e->vec_fd);
    if (e->db)
        sqlite3_close(e->db);
    if (e->lock_fd >= 0)
        close(e->lock_fd); /* releases the flock */
    if (e->shared_lock_fd >= 0)
        close(e->shared_lock_fd);
    for (int i = 0; i < e->n_columns; i++)
        free(e->columns[i]);
    free(e->columns);
    free(e->id_chars);
    free(e->id_offsets);
    free(e->index.slots);
    ivf_close(e->ivf);
    free(e);
}

/* ---- the approximate index (index_ivf.c) ---- */

/* What an index of the first `rows` rows must record: the collection's creation time
 * and the id of its last row (rows are never rewritten, so these pin them down). */
static uint64_t index_stamp(const embedded *e, int64_t rows)
{
    uint64_t h = hash_str(e->created);
    return rows > 0 ? h * 31 + hash_str(row_id(e, rows - 1)) + (uint64_t)rows : h;
}

/* (Re)maps index.ivf when it matches the rows; otherwise remembers why not. */
static void load_index(embedded *e)
{
    if (stat(e->ivf_path, &e->ivf_seen) != 0)
        memset(&e->ivf_seen, 0, sizeof e->ivf_seen);
    ivf_close(e->ivf);
    e->ivf = NULL;
    e->ivf_problem[0] = 0;
    vdx_error err = {{0}};
    vdx_ivf *ix = ivf_open(e->ivf_path, e->model.dims, &err);
    if (!ix) {
        snprintf(e->ivf_problem, sizeof e->ivf_problem, "%s", err.message);
        return;
    }
    int64_t rows = ivf_rows(ix);
    if (rows > e->count || ivf_stamp(ix) != index_stamp(e, rows)) {
        snprintf(e->ivf_problem, sizeof e->ivf_problem,
                 "index.ivf does not describe these rows (built for %lld rows of another "
                 "state of the collection): rebuild it with 'vdx index build'", (long long)rows);
        ivf_close(ix);
        return;
    }
    e->ivf = ix;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* "a, b, c" of the collections next to this one, for a helpful "does not exist". */
static void list_collections(const char *collection_dir, char *out, size_t size)
{
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", collection_dir);
    char *slash = strrchr(parent, '/');
    if (slash)
        *slash = 0;
    out[0] = 0;
    DIR *dir = opendir(parent);
    if (!dir)
        return;
    struct dirent *ent;
    size_t len = 0;
    while ((ent = readdir(dir))) {
        char db[4400];
        if (ent->d_name[0] == '.')
            continue;
        snprintf(db, sizeof db, "%s/%s/collection.db", parent, ent->d_name);
        if (!file_exists(db))
            continue;
        int n = snprintf(out + len, size - len, "%s%s", len ? ", " : "", ent->d_name);
        if (n < 0 || (size_t)n >= size - len)
            break;
        len += (size_t)n;
    }
    closedir(dir);
}

static int create_schema(embedded *e, const vdx_model_identity *model, vdx_error *err)
{
    /* The vector file first: if we crash before the schema commits, the next create
     * starts over and rewrites it. */
    if (create_vector_file(e, err) != 0)
        return -1;
    if (exec_sql(e,
                 "BEGIN IMMEDIATE;"
                 "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                 "CREATE TABLE columns(position INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
                 "CREATE TABLE items(id TEXT NOT NULL UNIQUE, url TEXT, width INTEGER, "
                 "height INTEGER, ingested_at TEXT, row INTEGER UNIQUE, failure TEXT, "
                 "failed_at TEXT);"
                 "CREATE TABLE thumbnails(id TEXT PRIMARY KEY, jpeg BLOB NOT NULL);",
                 err) != 0)
        goto fail;
    char now[32], dims[16];
    clock_utc_iso_now(now);
    snprintf(dims, sizeof dims, "%d", model->dims);
    const char *pairs[][2] = {{"format_version", "1"},
                              {"model_name", model->name},
                              {"model_fingerprint", model->config_hash},
                              {"dims", dims},
                              {"vector_type", type_name(e->type)},
                              {"created", now},
                              {"count", "0"}};
    sqlite3_stmt *stmt = prepare(e, "INSERT INTO meta(key, value) VALUES (?1, ?2)", err);
    if (!stmt)
        goto fail;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        sqlite3_bind_text(stmt, 1, pairs[i][0], -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, pairs[i][1], -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) != SQLITE_DONE) {
            sqlite3_finalize(stmt);
            db_fail(e, err, "writing meta");
            goto fail;
        }
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    if (exec_sql(e, "COMMIT", err) != 0)
        goto fail;
    return 0;
fail:
    rollback(e);
    return -1;
}

/* ---- reading where SQLite cannot make its WAL index ---- */

/* Reading a WAL database takes collection.db-shm and -wal beside it, which SQLite creates
 * when they are missing; on a read-only file system, in a directory this user may not
 * write, or on a full disk it cannot, and every read fails. A read-only handle then reads
 * the database file alone (SQLite's immutable mode). That is the database as of its last
 * commit only if (1) no log holds commits the file lacks: the -wal is absent or empty; and
 * (2) nothing writes the file while the handle reads it: the handle holds write.lock
 * shared, so a writer's exclusive flock fails (backend_lock_open says why). */
static int is_wal_index_failure(int rc)
{
    int primary = rc & 0xff;
    return primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR || primary == SQLITE_READONLY;
}

static int open_without_wal_index(embedded *e, vdx_error *err)
{
    char why[VDX_ERROR_MAX];
    snprintf(why, sizeof why, "%s", err ? err->message : "");
    e->shared_lock_fd = open(e->lock_path, O_RDONLY | O_CLOEXEC);
    if (e->shared_lock_fd < 0)
        return vdx_fail_errno(err, errno, "%s; reading without it needs %s: %s", why, e->lock_path,
                              strerror(errno));
    if (flock(e->shared_lock_fd, LOCK_SH | LOCK_NB) != 0)
        return vdx_fail_kind(err, VDX_ERR_CONFLICT,
                             "%s; and a writer holds %s, so the database cannot be read without "
                             "SQLite's write-ahead log: retry when it is done",
                             why, e->lock_path);
    char wal[4300];
    struct stat st;
    snprintf(wal, sizeof wal, "%s-wal", e->db_path);
    if (stat(wal, &st) == 0 && st.st_size > 0)
        return vdx_fail_kind(err, VDX_ERR_IO,
                             "%s; and %s holds %lld bytes of commits not yet in the database, "
                             "which only SQLite's log index can read: make the directory "
                             "writable (or free space) and retry",
                             why, wal, (long long)st.st_size);
    /* file: URI of the path, every byte outside the unreserved set percent-encoded */
    char uri[3 * sizeof e->db_path + 32];
    size_t len = (size_t)snprintf(uri, sizeof uri, "file:");
    for (const unsigned char *c = (const unsigned char *)e->db_path; *c; c++)
        len += (size_t)snprintf(uri + len, sizeof uri - len,
                                strchr("/-._~", *c) || (*c < 128 && isalnum(*c)) ? "%c" : "%%%02X",
                                *c);
    snprintf(uri + len, sizeof uri - len, "?immutable=1");
    sqlite3_close(e->db);
    return sql_open(uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, &e->db, err, "collection '%s'",
                    e->collection);
}

static int has_meta_table(embedded *e, int *has, vdx_error *err)
{
    sqlite3_stmt *stmt =
        prepare(e, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'", err);
    if (!stmt)
        return -1;
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(e, err, "reading the schema");
    *has = rc == SQLITE_ROW;
    return 0;
}

static int read_identity(embedded *e, vdx_error *err)
{
    char version[16], dims[16], type[16];
    if (read_meta(e, "format_version", version, sizeof version, err) != 0)
        return -1;
    if (atoi(version) != STORE_FORMAT_VERSION)
        return vdx_fail(err, "collection '%s': %s has format version %s; this vdx reads %d",
                        e->collection, e->db_path, version, STORE_FORMAT_VERSION);
    if (read_meta(e, "model_name", e->model.name, sizeof e->model.name, err) != 0 ||
        read_meta(e, "model_fingerprint", e->model.config_hash, sizeof e->model.config_hash,
                  err) != 0 ||
        read_meta(e, "dims", dims, sizeof dims, err) != 0 ||
        read_meta(e, "vector_type", type, sizeof type, err) != 0)
        return -1;
    e->model.dims = atoi(dims);
    if (e->model.dims <= 0 || e->model.dims > 65536)
        return vdx_fail(err, "collection '%s': %s: bad dims '%s' in meta", e->collection,
                        e->db_path, dims);
    if (strcmp(type, "f32") == 0)
        e->type = VDX_VECTOR_F32;
    else if (strcmp(type, "f16") == 0)
        e->type = VDX_VECTOR_F16;
    else
        return vdx_fail(err, "collection '%s': %s: unknown vector_type '%s' in meta",
                        e->collection, e->db_path, type);
    return 0;
}

static void *embedded_open(const vdx_backend_open_args *args, vdx_model_identity *stored,
                           vdx_error *err)
{
    embedded *e = calloc(1, sizeof *e);
    if (!e) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory opening collection '%s'", args->collection);
        return NULL;
    }
    e->lock_fd = e->vec_fd = e->shared_lock_fd = -1;
    e->read_only = args->read_only;
    snprintf(e->collection, sizeof e->collection, "%s", args->collection);
    snprintf(e->dir, sizeof e->dir, "%s", args->collection_dir);
    snprintf(e->db_path, sizeof e->db_path, "%s/collection.db", e->dir);
    snprintf(e->lock_path, sizeof e->lock_path, "%s/write.lock", e->dir);

    if (!file_exists(e->db_path) && !args->create) {
        char others[1024];
        list_collections(e->dir, others, sizeof others);
        vdx_fail_kind(err, VDX_ERR_NOT_FOUND, "collection '%s' does not exist (no %s; %s%s): create it with 'vdx ingest folder|unsplash|urls SOURCE --collection %s', or name another with --collection/--data",
                 e->collection, e->db_path, others[0] ? "collections there: " : "there are no collections there",
                 others, e->collection);
        goto fail;
    }
    if (args->create && take_write_lock(e, err) != 0)
        goto fail;
    int flags = (e->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
                (args->create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    if (sql_open(e->db_path, flags, &e->db, err, "collection '%s'", e->collection) != 0)
        goto fail;
    int has_meta = 0;
    if ((!e->read_only && exec_sql(e, "PRAGMA journal_mode = WAL", err) != 0) ||
        has_meta_table(e, &has_meta, err) != 0) {
        if (!is_wal_index_failure(sqlite3_extended_errcode(e->db)))
            goto fail;
        if (!e->read_only) {
            int saved = access(e->dir, W_OK) == 0 ? 0 : errno;
            if (saved)
                vdx_fail_errno(err, saved, "collection '%s': cannot write in %s (%s), which "
                               "this command needs", e->collection, e->dir, strerror(saved));
            goto fail;
        }
        if (open_without_wal_index(e, err) != 0 || has_meta_table(e, &has_meta, err) != 0)
            goto fail;
    }
    if (exec_sql(e, "PRAGMA synchronous = FULL", err) != 0 ||
        filter_register_sqlite(e->db, err) != 0)
        goto fail;
    if (!has_meta) {
        if (!args->create) {
            vdx_fail_kind(err, VDX_ERR_NOT_FOUND, "collection '%s' does not exist (%s holds no collection: its "
                          "creation was interrupted)",
                     e->collection, e->db_path);
            goto fail;
        }
        e->model = *args->model;
        e->type = args->vector_type;
        snprintf(e->vec_path, sizeof e->vec_path, "%s/vectors.%s", e->dir, type_name(e->type));
        if (create_schema(e, args->model, err) != 0)
            goto fail;
    }
    if (read_identity(e, err) != 0)
        goto fail;
    e->row_bytes = (size_t)e->model.dims * (e->type == VDX_VECTOR_F16 ? 2 : 4);
    snprintf(e->vec_path, sizeof e->vec_path, "%s/vectors.%s", e->dir, type_name(e->type));
    if (open_vector_file(e, err) != 0)
        goto fail;
    if (e->lock_fd >= 0 ? discard_uncommitted_rows(e, err) : load_new_rows(e, err))
        goto fail;
    if (map_rows(e, e->count, err) != 0)
        goto fail;
    if (read_meta(e, "created", e->created, sizeof e->created, err) != 0)
        goto fail;
    snprintf(e->ivf_path, sizeof e->ivf_path, "%s/index.ivf", e->dir);
    load_index(e);
    *stored = e->model;
    return e;
fail:
    embedded_close(e);
    return NULL;
}

static int embedded_refresh(void *state, vdx_error *err)
{
    embedded *e = state;
    if (load_new_rows(e, err) != 0 || map_rows(e, e->count, err) != 0)
        return -1;
    /* an index file that appeared, changed or went away since it was last looked at */
    struct stat st;
    if (stat(e->ivf_path, &st) != 0)
        memset(&st, 0, sizeof st);
    if (st.st_ino != e->ivf_seen.st_ino || st.st_dev != e->ivf_seen.st_dev ||
        st.st_size != e->ivf_seen.st_size || st.st_mtim.tv_sec != e->ivf_seen.st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != e->ivf_seen.st_mtim.tv_nsec)
        load_index(e);
    return 0;
}

static int64_t embedded_count(void *state) { return ((embedded *)state)->count; }
static int64_t embedded_indexed_rows(void *state)
{
    embedded *e = state;
    return e->ivf && ivf_has_bound(e->ivf) ? ivf_rows(e->ivf) : 0;
}
static vdx_vector_type embedded_vector_type(void *state) { return ((embedded *)state)->type; }

/* ---- columns ---- */

#define N_BUILTIN_COLUMNS (sizeof builtin_columns / sizeof builtin_columns[0])

static int is_builtin(const char *name)
{
    return backend_name_in(name, builtin_columns, N_BUILTIN_COLUMNS);
}

/* Index of the metadata column named name (SQLite compares names case-insensitively),
 * or -1. */
static int find_column(const embedded *e, const char *name)
{
    return backend_find_column(e->columns, e->n_columns, name);
}

static int add_columns(embedded *e, const char *const *names, int n, vdx_error *err)
{
    int missing = backend_check_new_columns(e->collection, builtin_columns,
                                                N_BUILTIN_COLUMNS, e->columns, e->n_columns,
                                                names, n, err);
    if (missing <= 0)
        return missing;
    rollback(e); /* a transaction a failed rollback left open */
    if (become_writer(e, err) != 0 || exec_sql(e, "BEGIN IMMEDIATE", err) != 0)
        return -1;
    sqlite3_stmt *insert = prepare(e, "INSERT INTO columns(name) VALUES (?1)", err);
    if (!insert)
        goto fail;
    for (int i = 0; i < n; i++) {
        if (!backend_column_to_add(e->columns, e->n_columns, names, i))
            continue;
        char *sql = sqlite3_mprintf("ALTER TABLE items ADD COLUMN \"%w\" TEXT", names[i]);
        if (!sql) {
            vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
            goto fail_insert;
        }
        int rc = exec_sql(e, sql, err);
        sqlite3_free(sql);
        if (rc != 0)
            goto fail_insert;
        sqlite3_bind_text(insert, 1, names[i], -1, SQLITE_STATIC);
        if (sqlite3_step(insert) != SQLITE_DONE) {
            db_fail(e, err, "recording a column");
            goto fail_insert;
        }
        sqlite3_reset(insert);
    }
    sqlite3_finalize(insert);
    if (exec_sql(e, "COMMIT", err) != 0)
        goto fail;
    return load_columns(e, err);
fail_insert:
    sqlite3_finalize(insert);
fail:
    rollback(e);
    load_columns(e, NULL);
    return -1;
}

static int embedded_add_columns(void *state, const char *const *names, int n, vdx_error *err)
{
    return add_columns(state, names, n, err);
}

static int embedded_columns(void *state, char ***names, int *n, vdx_error *err)
{
    embedded *e = state;
    return backend_copy_columns(e->collection, e->columns, e->n_columns, names, n, err);
}

/* ---- append ---- */

/* INSERT for one item; its column list depends on which metadata the item carries. */
static sqlite3_stmt *prepare_insert(embedded *e, const vdx_item *item, vdx_error *err)
{
    sqlite3_str *sql = sqlite3_str_new(e->db);
    sqlite3_str_appendall(sql, "INSERT INTO items(id, url, width, height, ingested_at, row, "
                               "failure, failed_at");
    for (int m = 0; m < item->n_meta; m++) /* %w doubles quotes inside the identifier */
        sqlite3_str_appendf(sql, ", \"%w\"", e->columns[find_column(e, item->meta_names[m])]);
    sqlite3_str_appendall(sql, ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8");
    for (int m = 0; m < item->n_meta; m++)
        sqlite3_str_appendf(sql, ", ?%d", 9 + m);
    sqlite3_str_appendall(sql, ")");
    char *text = sqlite3_str_finish(sql);
    if (!text) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
        return NULL;
    }
    sqlite3_stmt *stmt = prepare(e, text, err);
    sqlite3_free(text);
    return stmt;
}

static int same_meta_names(const vdx_item *a, const vdx_item *b)
{
    if (!a || a->n_meta != b->n_meta)
        return 0;
    for (int m = 0; m < a->n_meta; m++)
        if (strcmp(a->meta_names[m], b->meta_names[m]) != 0)
            return 0;
    return 1;
}

static int insert_items(embedded *e, const vdx_item *items, size_t n, vdx_error *err)
{
    char now[32];
    clock_utc_iso_now(now);
    sqlite3_stmt *remove_failure = prepare(e, "DELETE FROM items WHERE id = ?1 AND row IS NULL", err);
    sqlite3_stmt *thumbnail =
        remove_failure ? prepare(e, "INSERT OR REPLACE INTO thumbnails(id, jpeg) VALUES (?1, ?2)", err)
                       : NULL;
    sqlite3_stmt *insert = NULL;
    const vdx_item *insert_shape = NULL;
    int rc = thumbnail ? 0 : -1;
    int64_t row = e->count;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const vdx_item *it = &items[i];
        if (index_find(e, it->id) >= 0) {
            rc = vdx_fail(err, "collection '%s': id '%s' is already stored (batch item %zu)",
                          e->collection, it->id, i);
            break;
        }
        sqlite3_bind_text(remove_failure, 1, it->id, -1, SQLITE_STATIC);
        if (sqlite3_step(remove_failure) != SQLITE_DONE) {
            rc = db_fail(e, err, "replacing a failure");
            break;
        }
        sqlite3_reset(remove_failure);
        if (!same_meta_names(insert_shape, it)) {
            sqlite3_finalize(insert);
            insert = prepare_insert(e, it, err);
            insert_shape = it;
            if (!insert) {
                rc = -1;
                break;
            }
        }
        sqlite3_bind_text(insert, 1, it->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(insert, 2, it->url, -1, SQLITE_STATIC);
        if (it->width > 0)
            sqlite3_bind_int(insert, 3, it->width);
        else
            sqlite3_bind_null(insert, 3);
        if (it->height > 0)
            sqlite3_bind_int(insert, 4, it->height);
        else
            sqlite3_bind_null(insert, 4);
        sqlite3_bind_text(insert, 5, now, -1, SQLITE_STATIC);
        if (it->vector) {
            sqlite3_bind_int64(insert, 6, row++);
            sqlite3_bind_null(insert, 7);
            sqlite3_bind_null(insert, 8);
        } else {
            sqlite3_bind_null(insert, 6);
            sqlite3_bind_text(insert, 7, it->failure, -1, SQLITE_STATIC);
            sqlite3_bind_text(insert, 8, now, -1, SQLITE_STATIC);
        }
        for (int m = 0; m < it->n_meta; m++)
            sqlite3_bind_text(insert, 9 + m, it->meta_values[m], -1, SQLITE_STATIC);
        if (sqlite3_step(insert) != SQLITE_DONE) {
            rc = sql_fail(e->db, err, "collection '%s': storing item '%s' (batch item %zu)",
                          e->collection, it->id, i);
            break;
        }
        sqlite3_reset(insert);
        sqlite3_clear_bindings(insert);
        if (it->vector && it->thumbnail && it->thumbnail_size > 0) {
            sqlite3_bind_text(thumbnail, 1, it->id, -1, SQLITE_STATIC);
            sqlite3_bind_blob64(thumbnail, 2, it->thumbnail, it->thumbnail_size, SQLITE_STATIC);
            if (sqlite3_step(thumbnail) != SQLITE_DONE) {
                rc = sql_fail(e->db, err, "collection '%s': storing the thumbnail of '%s'",
                              e->collection, it->id);
                break;
            }
            sqlite3_reset(thumbnail);
        }
    }
    if (rc == 0) {
        sqlite3_stmt *count = prepare(e, "UPDATE meta SET value = ?1 WHERE key = 'count'", err);
        if (!count)
            rc = -1;
        else {
            sqlite3_bind_int64(count, 1, row);
            if (sqlite3_step(count) != SQLITE_DONE || sqlite3_changes(e->db) != 1)
                rc = db_fail(e, err, "raising the committed count");
            sqlite3_finalize(count);
        }
    }
    sqlite3_finalize(insert);
    sqlite3_finalize(thumbnail);
    sqlite3_finalize(remove_failure);
    return rc;
}

/* Writes the batch's vectors at rows [count, count + n_vectors) and makes them durable. */
static int write_vectors(embedded *e, const vdx_item *items, size_t n, size_t n_vectors,
                         vdx_error *err)
{
    if (n_vectors == 0)
        return 0;
    int dims = e->model.dims;
    size_t chunk_rows = (4u << 20) / e->row_bytes + 1, done = 0;
    uint8_t *buf = malloc(chunk_rows * e->row_bytes);
    if (!buf)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
    off_t offset = VECTOR_HEADER_SIZE + (off_t)e->count * (off_t)e->row_bytes;
    size_t i = 0;
    while (done < n_vectors) {
        size_t rows = 0;
        for (; i < n && rows < chunk_rows; i++) {
            if (!items[i].vector)
                continue;
            uint8_t *dst = buf + rows * e->row_bytes;
            if (e->type == VDX_VECTOR_F32)
                memcpy(dst, items[i].vector, e->row_bytes);
            else /* rows are 2-byte aligned: the buffer is malloc'd, row_bytes even */
                half_f32_to_f16_array(items[i].vector, (uint16_t *)(void *)dst, (size_t)dims);
            rows++;
        }
        if (backend_write_all(e->vec_fd, buf, rows * e->row_bytes, offset) != 0) {
            int saved = errno;
            free(buf);
            return vdx_fail_errno(err, saved, "collection '%s': writing %zu vectors to %s at byte %lld: %s",
                            e->collection, rows, e->vec_path, (long long)offset,
                            strerror(saved));
        }
        offset += (off_t)(rows * e->row_bytes);
        done += rows;
    }
    free(buf);
    if (fdatasync(e->vec_fd) != 0)
        return vdx_fail_errno(err, errno, "collection '%s': syncing %s: %s", e->collection, e->vec_path,
                        strerror(errno));
    return 0;
}

static int embedded_append(void *state, const vdx_item *items, size_t n, vdx_error *err)
{
    embedded *e = state;
    if (become_writer(e, err) != 0)
        return -1;
    /* Metadata columns first (their own transaction: harmless if the batch fails). */
    for (size_t i = 0; i < n; i++) {
        for (int m = 0; m < items[i].n_meta; m++) {
            if (find_column(e, items[i].meta_names[m]) < 0 &&
                add_columns(e, items[i].meta_names, items[i].n_meta, err) != 0)
                return vdx_error_prefix(err, "item '%s'", items[i].id);
        }
    }
    size_t n_vectors = 0; /* the batch rules (ids, columns, float16 range): store.c */
    for (size_t i = 0; i < n; i++)
        n_vectors += items[i].vector != NULL;
    off_t committed = VECTOR_HEADER_SIZE + (off_t)e->count * (off_t)e->row_bytes;
    if (write_vectors(e, items, n, n_vectors, err) != 0)
        goto undo_vectors;
    rollback(e); /* a transaction a failed rollback left open */
    if (exec_sql(e, "BEGIN IMMEDIATE", err) != 0)
        goto undo_vectors;
    if (insert_items(e, items, n, err) != 0 || exec_sql(e, "COMMIT", err) != 0) {
        rollback(e);
        goto undo_vectors;
    }
    /* Committed: the rows are now visible; remember their ids. */
    int64_t row = e->count;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].vector)
            continue;
        if (remember_row_id(e, row, items[i].id, err) != 0)
            return -1;
        row++;
    }
    e->count = row;
    return 0;
undo_vectors:
    /* Cut this batch's rows. Should that fail as well, they stay past the committed
     * count: invisible, and cut when a writer next takes the lock. */
    if (ftruncate(e->vec_fd, committed) != 0)
        vdx_error_prefix(err, "%s keeps uncommitted rows until the next write (%s)",
                         e->vec_path, strerror(errno));
    return -1;
}

/* ---- item lookups ---- */

static int lookup_failure(embedded *e, const char *id, int *failed, vdx_error *err)
{
    sqlite3_stmt *stmt = prepare(e, "SELECT 1 FROM items WHERE id = ?1 AND row IS NULL", err);
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(e, err, "looking up an item");
    *failed = rc == SQLITE_ROW;
    return 0;
}

static int embedded_item_states(void *state, const char *const *ids, size_t n,
                                vdx_item_state *states, vdx_error *err)
{
    embedded *e = state;
    sqlite3_stmt *stmt = NULL;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (index_find(e, ids[i]) >= 0) {
            states[i] = VDX_ITEM_STORED;
            continue;
        }
        if (!stmt && !(stmt = prepare(e, "SELECT row FROM items WHERE id = ?1", err)))
            return -1;
        sqlite3_bind_text(stmt, 1, ids[i], -1, SQLITE_STATIC);
        int step = sqlite3_step(stmt);
        if (step == SQLITE_ROW)
            /* a row past our count was appended by another process since our refresh */
            states[i] = sqlite3_column_type(stmt, 0) == SQLITE_NULL ? VDX_ITEM_FAILED
                                                                    : VDX_ITEM_STORED;
        else if (step == SQLITE_DONE)
            states[i] = VDX_ITEM_ABSENT;
        else
            rc = db_fail(e, err, "looking up items");
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* Row of a stored id; refreshes once when the id is unknown (another process may have
 * appended it). Unknown ids are an error naming them. */
static int64_t row_of(embedded *e, const char *id, vdx_error *err)
{
    int64_t row = index_find(e, id);
    if (row >= 0)
        return row;
    if (load_new_rows(e, err) != 0 || map_rows(e, e->count, err) != 0)
        return -1;
    row = index_find(e, id);
    if (row >= 0)
        return row;
    int failed = 0;
    if (lookup_failure(e, id, &failed, err) != 0)
        return -1;
    vdx_fail_kind(err, failed ? VDX_ERR_INVALID : VDX_ERR_NOT_FOUND,
                  failed ? "collection '%s': item '%s' failed to ingest and has no vector"
                         : "collection '%s': no item '%s'",
             e->collection, id);
    return -1;
}

static int embedded_get_vectors(void *state, const char *const *ids, size_t n, float *out,
                                vdx_error *err)
{
    embedded *e = state;
    if (map_rows(e, e->count, err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int64_t row = row_of(e, ids[i], err);
        if (row < 0)
            return -1;
        widen_row(e, row, out + i * (size_t)e->model.dims);
    }
    return 0;
}

/* Floyd's sampling: k distinct rows of [0, count), each set equally likely. */
static int embedded_sample_vectors(void *state, size_t k, uint64_t seed, float *out, size_t *got,
                                   vdx_error *err)
{
    embedded *e = state;
    if (load_new_rows(e, err) != 0 || map_rows(e, e->count, err) != 0)
        return -1;
    size_t n = (size_t)e->count, want = k < n ? k : n;
    int64_t *rows = malloc((want ? want : 1) * sizeof *rows);
    if (!rows)
        return vdx_fail_oom(err, "collection '%s': out of memory sampling %zu rows", e->collection,
                            want);
    uint64_t random = seed;
    for (size_t j = n - want, m = 0; j < n; j++) {
        int64_t pick = (int64_t)random_below(&random, j + 1);
        for (size_t i = 0; i < m; i++)
            if (rows[i] == pick) {
                pick = (int64_t)j;
                break;
            }
        rows[m++] = pick;
    }
    for (size_t i = 0; i < want; i++)
        widen_row(e, rows[i], out + i * (size_t)e->model.dims);
    free(rows);
    *got = want;
    return 0;
}

static cJSON *column_value(sqlite3_stmt *stmt, int col)
{
    switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_NULL:
        return cJSON_CreateNull();
    case SQLITE_INTEGER:
        return cJSON_CreateNumber((double)sqlite3_column_int64(stmt, col));
    default:
        return cJSON_CreateString((const char *)sqlite3_column_text(stmt, col));
    }
}

/* Runs sql, whose one parameter ?1 is the id, and steps to its row: the statement, or
 * NULL with "collection 'C': <missing> 'ID'" when there is no row. */
static sqlite3_stmt *select_by_id(embedded *e, const char *sql, const char *id,
                                  const char *missing, const char *doing, vdx_error *err)
{
    sqlite3_stmt *stmt = prepare(e, sql, err);
    if (!stmt)
        return NULL;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        return stmt;
    if (rc == SQLITE_DONE)
        vdx_fail_kind(err, VDX_ERR_NOT_FOUND, "collection '%s': %s '%s'", e->collection, missing, id);
    else
        db_fail(e, err, doing);
    sqlite3_finalize(stmt);
    return NULL;
}

static int embedded_get_item(void *state, const char *id, cJSON **item, vdx_error *err)
{
    embedded *e = state;
    sqlite3_stmt *stmt = select_by_id(e, "SELECT * FROM items WHERE id = ?1", id, "no item",
                                      "reading an item", err);
    if (!stmt)
        return -1;
    cJSON *obj = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    int is_failure = sqlite3_column_type(stmt, 6) != SQLITE_NULL;
    int ok = obj && meta;
    for (int c = 0; ok && c < sqlite3_column_count(stmt); c++) {
        const char *name = sqlite3_column_name(stmt, c);
        if (strcmp(name, "row") == 0 || (!is_failure && (strcmp(name, "failure") == 0 ||
                                                         strcmp(name, "failed_at") == 0)))
            continue;
        cJSON *value = name ? column_value(stmt, c) : NULL;
        ok = value && cJSON_AddItemToObject(is_builtin(name) ? obj : meta, name, value);
        if (!ok)
            cJSON_Delete(value);
    }
    sqlite3_finalize(stmt);
    if (ok && !cJSON_AddItemToObject(obj, "metadata", meta))
        ok = 0;
    else if (ok)
        meta = NULL; /* obj owns it */
    cJSON_Delete(meta);
    if (!ok) { /* an item with a key missing would be wrong, not smaller */
        cJSON_Delete(obj);
        return vdx_fail_oom(err, "reading item '%s' of collection '%s'", id, e->collection);
    }
    *item = obj;
    return 0;
}

static int embedded_get_thumbnail(void *state, const char *id, uint8_t **jpeg, size_t *size,
                                  vdx_error *err)
{
    embedded *e = state;
    sqlite3_stmt *stmt = select_by_id(e, "SELECT jpeg FROM thumbnails WHERE id = ?1", id,
                                      "no thumbnail for item", "reading a thumbnail", err);
    if (!stmt)
        return -1;
    size_t n = (size_t)sqlite3_column_bytes(stmt, 0);
    *jpeg = malloc(n ? n : 1);
    if (!*jpeg) {
        sqlite3_finalize(stmt);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
    }
    memcpy(*jpeg, sqlite3_column_blob(stmt, 0), n);
    *size = n;
    sqlite3_finalize(stmt);
    return 0;
}

static int embedded_failures(void *state, cJSON **failures, vdx_error *err)
{
    embedded *e = state;
    sqlite3_stmt *stmt = prepare(e,
                                 "SELECT id, url, failure, failed_at FROM items WHERE row IS "
                                 "NULL ORDER BY failed_at, rowid",
                                 err);
    if (!stmt)
        return -1;
    cJSON *list = cJSON_CreateArray();
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddItemToObject(f, "id", column_value(stmt, 0));
        cJSON_AddItemToObject(f, "url", column_value(stmt, 1));
        cJSON_AddItemToObject(f, "reason", column_value(stmt, 2));
        cJSON_AddItemToObject(f, "time", column_value(stmt, 3));
        cJSON_AddItemToArray(list, f);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(list);
        return db_fail(e, err, "reading failures");
    }
    *failures = list;
    return 0;
}

static int embedded_clear_failures(void *state, vdx_error *err)
{
    embedded *e = state;
    if (become_writer(e, err) != 0)
        return -1;
    return exec_sql(e, "DELETE FROM items WHERE row IS NULL", err);
}

static int embedded_add_note(void *state, const char *key, const char *value, vdx_error *err)
{
    embedded *e = state;
    if (become_writer(e, err) != 0)
        return -1;
    sqlite3_stmt *stmt = prepare(e, "INSERT INTO meta(key, value) VALUES (?1, ?2)", err);
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : db_fail(e, err, "writing a note in meta");
    sqlite3_finalize(stmt);
    return rc;
}

static int embedded_notes(void *state, const char *prefix, cJSON **values, vdx_error *err)
{
    embedded *e = state;
    *values = cJSON_CreateArray();
    /* rowid order is insertion order: oldest first */
    sqlite3_stmt *stmt = *values ? prepare(e, "SELECT value FROM meta WHERE substr(key, 1, "
                                              "length(?1)) = ?1 ORDER BY rowid", err)
                                 : NULL;
    if (!stmt) {
        if (!*values)
            vdx_fail_oom(err, "collection '%s': reading notes", e->collection);
        cJSON_Delete(*values);
        *values = NULL;
        return -1;
    }
    sqlite3_bind_text(stmt, 1, prefix, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const unsigned char *text = sqlite3_column_text(stmt, 0);
        if (!text)
            continue; /* a NULL value (a damaged file): not a note */
        cJSON *v = cJSON_CreateString((const char *)text);
        if (!v || !cJSON_AddItemToArray(*values, v)) {
            cJSON_Delete(v);
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(*values);
        *values = NULL;
        return rc == SQLITE_NOMEM ? vdx_fail_oom(err, "collection '%s': reading notes", e->collection)
                                  : db_fail(e, err, "reading notes in meta");
    }
    return 0;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

static int embedded_info(void *state, cJSON *info, vdx_error *err)
{
    embedded *e = state;
    char created[64], wal[4300], shm[4300];
    sqlite3_stmt *stmt = prepare(e, "SELECT count(*) FROM items WHERE row IS NULL", err);
    if (!stmt)
        return -1;
    long long failed = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    if (failed < 0)
        return db_fail(e, err, "counting failures");
    if (read_meta(e, "created", created, sizeof created, err) != 0)
        return -1;
    snprintf(wal, sizeof wal, "%s-wal", e->db_path);
    snprintf(shm, sizeof shm, "%s-shm", e->db_path);
    cJSON_AddNumberToObject(info, "count", (double)e->count);
    cJSON_AddNumberToObject(info, "failed", (double)failed);
    cJSON_AddStringToObject(info, "vector_type", type_name(e->type));
    cJSON_AddNumberToObject(info, "bytes_on_disk",
                            (double)(file_size(e->db_path) + file_size(wal) + file_size(shm) +
                                     file_size(e->vec_path)));
    cJSON_AddNumberToObject(info, "vector_bytes", (double)file_size(e->vec_path));
    cJSON_AddStringToObject(info, "created", created);
    cJSON *columns = cJSON_CreateArray();
    for (int i = 0; i < e->n_columns; i++)
        cJSON_AddItemToArray(columns, cJSON_CreateString(e->columns[i]));
    cJSON_AddItemToObject(info, "columns", columns);
    if (e->ivf) {
        cJSON *ix = cJSON_CreateObject();
        ivf_describe(e->ivf, ix);
        int64_t rows = ivf_rows(e->ivf);
        cJSON_AddNumberToObject(ix, "unindexed", (double)(e->count - rows));
        cJSON_AddNumberToObject(ix, "coverage",
                                e->count ? round((double)rows / e->count * 10000) / 10000 : 1);
        cJSON_AddItemToObject(info, "index", ix);
    } else {
        cJSON *ix = cJSON_CreateObject();
        cJSON_AddStringToObject(ix, "kind", "none");
        cJSON_AddStringToObject(ix, "search", "exact scan");
        if (e->ivf_problem[0])
            cJSON_AddStringToObject(ix, "problem", e->ivf_problem);
        cJSON_AddItemToObject(info, "index", ix);
    }
    return 0;
}

/* ---- search ---- */

static int tie_by_id(int64_t a, int64_t b, const void *ctx)
{
    const embedded *e = ctx;
    return strcmp(row_id(e, a), row_id(e, b));
}

static uint64_t *new_bitmap(int64_t rows, int all_set)
{
    size_t words = (size_t)(rows + 63) / 64;
    uint64_t *bits = malloc((words ? words : 1) * sizeof *bits);
    if (!bits)
        return NULL;
    memset(bits, all_set ? 0xff : 0, words * sizeof *bits);
    if (all_set && rows % 64)
        bits[words - 1] = (UINT64_C(1) << (rows % 64)) - 1;
    return bits;
}

/* Rows allowed by the request's where and exclusions: a bitmap, or NULL for all rows. */
static int allowed_rows(embedded *e, const vdx_search_request *req, uint64_t **allowed,
                        vdx_error *err)
{
    *allowed = NULL;
    vdx_filter *filter;
    if (backend_parse_where(e->collection, req->where, e->columns, e->n_columns, &filter,
                                err) != 0)
        return -1;
    if (filter) {
        char *expr = filter_to_sqlite(filter, 2, err);
        char *sql = expr ? sqlite3_mprintf("SELECT row FROM items WHERE row < ?1 AND (%s)", expr)
                         : NULL;
        free(expr);
        if (expr && !sql)
            vdx_fail_oom(err, "filtering collection '%s'", e->collection);
        sqlite3_stmt *stmt = sql ? prepare(e, sql, err) : NULL;
        sqlite3_free(sql);
        if (!stmt || filter_bind_sqlite(filter, stmt, 2, err) != 0) {
            filter_free(filter);
            sqlite3_finalize(stmt);
            return -1;
        }
        filter_free(filter);
        sqlite3_bind_int64(stmt, 1, e->count);
        *allowed = new_bitmap(e->count, 0);
        if (!*allowed) {
            sqlite3_finalize(stmt);
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
        }
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            int64_t row = sqlite3_column_int64(stmt, 0);
            (*allowed)[row / 64] |= UINT64_C(1) << (row % 64);
        }
        sqlite3_finalize(stmt);
        if (rc != SQLITE_DONE) {
            free(*allowed);
            *allowed = NULL;
            size_t len = strlen(req->where), shown = utf8_prefix(req->where, len, 80);
            return sql_fail(e->db, err, "collection '%s': where \"%.*s%s\"", e->collection,
                            (int)shown, req->where, shown < len ? "..." : "");
        }
    }
    if (req->n_exclude > 0) {
        if (!*allowed && !(*allowed = new_bitmap(e->count, 1)))
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
        for (size_t i = 0; i < req->n_exclude; i++) {
            int64_t row = index_find(e, req->exclude_ids[i]);
            if (row >= 0)
                (*allowed)[row / 64] &= ~(UINT64_C(1) << (row % 64));
        }
    }
    return 0;
}

static int row_urls(embedded *e, const int64_t *rows, int n, char **urls, vdx_error *err)
{
    sqlite3_stmt *stmt = prepare(e, "SELECT url FROM items WHERE row = ?1", err);
    if (!stmt)
        return -1;
    for (int i = 0; i < n; i++) {
        sqlite3_bind_int64(stmt, 1, rows[i]);
        int rc = sqlite3_step(stmt);
        const unsigned char *url = rc == SQLITE_ROW ? sqlite3_column_text(stmt, 0) : NULL;
        int url_oom = rc == SQLITE_ROW && !url && sqlite3_errcode(e->db) == SQLITE_NOMEM;
        urls[i] = url_oom ? NULL : strdup(url ? (const char *)url : "");
        sqlite3_reset(stmt);
        if (rc == SQLITE_ROW && !urls[i]) {
            sqlite3_finalize(stmt);
            return vdx_fail_oom(err, "reading the urls of collection '%s'", e->collection);
        }
        if (rc != SQLITE_ROW) {
            sqlite3_finalize(stmt);
            return rc == SQLITE_DONE
                       ? vdx_fail_kind(err, VDX_ERR_CORRUPT, "collection '%s': no item for row %lld",
                                       e->collection, (long long)rows[i])
                       : db_fail(e, err, "reading urls");
        }
    }
    sqlite3_finalize(stmt);
    return 0;
}

static vdx_scan_matrix matrix_of(const embedded *e)
{
    return (vdx_scan_matrix){row_data(e, 0), e->count, e->model.dims, e->type};
}

static int fill_hit(embedded *e, vdx_hit *hit, int64_t row, float dist, char *url,
                    int with_vector, vdx_error *err)
{
    hit->id = strdup(row_id(e, row));
    hit->url = url;
    hit->dist = dist;
    hit->vector = with_vector ? malloc((size_t)e->model.dims * sizeof(float)) : NULL;
    if (!hit->id || (with_vector && !hit->vector))
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
    if (with_vector)
        widen_row(e, row, hit->vector);
    return 0;
}

/* Past this many bytes of int8 codes (rows × dims: 4.2M items at 512 d) an index whose
 * codes are not chosen gets product codes, a quarter of the bytes (docs/index.md). */
#define INDEX_INT8_MAX_BYTES (2ull << 30)

/* $VDX_INDEX_NPROBE: partitions a search visits (0 or unset: the index's default). */
static int index_nprobe(void)
{
    const char *v = getenv("VDX_INDEX_NPROBE");
    int n = v ? atoi(v) : 0;
    return n > 0 ? n : 0;
}

static int embedded_index_build(void *state, const vdx_index_options *opts, int force,
                                int *built, vdx_error *err)
{
    embedded *e = state;
    *built = 0;
    if (become_writer(e, err) != 0 || map_rows(e, e->count, err) != 0)
        return -1;
    if (!force) {
        int64_t covered = e->ivf ? ivf_rows(e->ivf) : 0;
        if (e->count < VDX_INDEX_AUTO_ROWS || (e->ivf && (e->count - covered) * 5 <= e->count))
            return 0;
    }
    if (e->count == 0)
        return vdx_fail(err, "collection '%s' is empty: nothing to index", e->collection);
    vdx_ivf_build_params p = {.stamp = index_stamp(e, e->count)};
    if (opts) {
        p.lists = opts->lists;
        p.nprobe = opts->nprobe;
        p.train_rows = opts->train_rows;
        p.iterations = opts->iterations;
        p.pq = opts->codes == VDX_INDEX_CODES_PQ;
        p.rerank = opts->rerank;
        p.on_progress = opts->on_progress;
        p.user = opts->user;
    }
    if (!opts || opts->codes == VDX_INDEX_CODES_AUTO) {
        const char *codes = getenv("VDX_INDEX_CODES");
        if (codes && strcmp(codes, "pq") != 0 && strcmp(codes, "int8") != 0)
            return vdx_fail_kind(err, VDX_ERR_INVALID,
                                 "VDX_INDEX_CODES='%s': use int8 or pq", codes);
        p.pq = codes ? strcmp(codes, "pq") == 0
                     : (uint64_t)e->count * (uint64_t)e->model.dims > INDEX_INT8_MAX_BYTES &&
                           e->model.dims % 8 == 0;
    }
    vdx_scan_matrix m = matrix_of(e);
    if (ivf_build(&m, e->ivf_path, &p, err) != 0)
        return vdx_error_prefix(err, "collection '%s'", e->collection);
    load_index(e);
    if (!e->ivf)
        return vdx_fail(err, "collection '%s': the index just built cannot be used: %s",
                        e->collection, e->ivf_problem);
    *built = 1;
    return 0;
}

static int embedded_search(void *state, const vdx_search_request *req, vdx_hits *out,
                           vdx_error *err)
{
    embedded *e = state;
    int dims = e->model.dims;
    if (map_rows(e, e->count, err) != 0)
        return -1;
    int64_t want = (int64_t)req->k + req->offset;
    if (want > e->count)
        want = e->count;
    if (req->k == 0 || want <= req->offset)
        return 0;
    uint64_t *allowed;
    if (allowed_rows(e, req, &allowed, err) != 0)
        return -1;
    float *q = malloc((size_t)dims * sizeof *q);
    vdx_scan_hit *found = malloc((size_t)want * sizeof *found);
    int rc = -1;
    if (!q || !found) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
        goto done;
    }
    backend_unit_vector(req->query, dims, q);
    vdx_scan_matrix m = matrix_of(e);
    int64_t n_allowed = e->count;
    if (allowed) {
        n_allowed = 0;
        for (int64_t w = 0; w < (e->count + 63) / 64; w++)
            n_allowed += __builtin_popcountll(allowed[w]);
    }
    int64_t n_found;
    if (e->ivf && !req->exact &&
        (double)n_allowed >= VDX_INDEX_MIN_FILTERED_SHARE * (double)e->count) {
        vdx_ivf_query iq = {.q = q, .allowed = allowed, .n_allowed = n_allowed, .want = want,
                            .nprobe = index_nprobe(), .tie_break = tie_by_id, .ctx = e};
        n_found = ivf_search(e->ivf, &m, &iq, found, err);
    } else
        n_found = scan_nearest(&m, q, allowed, want, tie_by_id, e, found, err);
    if (n_found < 0)
        goto done;
    int n = n_found > req->offset ? (int)(n_found - req->offset) : 0;
    if (n == 0) {
        rc = 0;
        goto done;
    }
    int64_t *rows = malloc((size_t)n * sizeof *rows);
    char **urls = calloc((size_t)n, sizeof *urls);
    out->hits = calloc((size_t)n, sizeof *out->hits);
    if (!rows || !urls || !out->hits) {
        free(rows);
        free(urls);
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
        goto done;
    }
    for (int i = 0; i < n; i++)
        rows[i] = found[req->offset + i].row;
    rc = row_urls(e, rows, n, urls, err);
    for (int i = 0; i < n; i++) {
        out->n = i + 1;
        if (rc == 0)
            rc = fill_hit(e, &out->hits[i], rows[i], found[req->offset + i].dist, urls[i],
                          req->with_vectors, err);
        else
            free(urls[i]);
    }
    free(rows);
    free(urls);
done:
    if (rc != 0)
        vdx_hits_free(out);
    free(q);
    free(found);
    free(allowed);
    return rc;
}

static int embedded_score_all(void *state, const vdx_search_request *req, vdx_hits *out,
                              vdx_error *err)
{
    embedded *e = state;
    if (map_rows(e, e->count, err) != 0)
        return -1;
    if (e->count == 0)
        return 0;
    uint64_t *allowed;
    if (allowed_rows(e, req, &allowed, err) != 0)
        return -1;
    float *dots = malloc((size_t)e->count * sizeof *dots);
    char **urls = calloc((size_t)e->count, sizeof *urls);
    int64_t n = 0;
    int rc = -1;
    sqlite3_stmt *stmt = NULL;
    if (!dots || !urls) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
        goto done;
    }
    vdx_scan_matrix m = matrix_of(e);
    if (scan_dots(&m, req->query, allowed, dots, err) != 0)
        goto done;
    for (int64_t r = 0; r < e->count; r++)
        n += !allowed || (allowed[r / 64] >> (r % 64) & 1);
    int step = SQLITE_DONE;
    if (!req->without_urls && !req->without_ids) {
        stmt = prepare(e, "SELECT row, url FROM items WHERE row < ?1", err);
        if (!stmt)
            goto done;
        sqlite3_bind_int64(stmt, 1, e->count);
    }
    while (stmt && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t r = sqlite3_column_int64(stmt, 0);
        if (allowed && !(allowed[r / 64] >> (r % 64) & 1))
            continue;
        const unsigned char *url = sqlite3_column_text(stmt, 1);
        if (!(urls[r] = strdup(url ? (const char *)url : ""))) {
            vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
            goto done;
        }
    }
    if (step != SQLITE_DONE) {
        db_fail(e, err, "reading urls");
        goto done;
    }
    out->hits = calloc((size_t)(n ? n : 1), sizeof *out->hits);
    if (!out->hits) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
        goto done;
    }
    rc = 0;
    for (int64_t r = 0; r < e->count && rc == 0; r++) {
        if (allowed && !(allowed[r / 64] >> (r % 64) & 1))
            continue;
        vdx_hit *hit = &out->hits[out->n++];
        if (req->without_ids && !req->with_vectors) {
            hit->dist = dots[r];
            continue;
        }
        rc = fill_hit(e, hit, r, dots[r], urls[r], req->with_vectors, err);
        urls[r] = NULL;
        if (rc == 0 && req->without_ids) {
            free(hit->id);
            hit->id = NULL;
        }
    }
done:
    sqlite3_finalize(stmt);
    if (urls)
        for (int64_t r = 0; r < e->count; r++)
            free(urls[r]);
    free(urls);
    free(dots);
    free(allowed);
    if (rc != 0)
        vdx_hits_free(out);
    return rc;
}


/* score_all's scores alone, from the index's int8 codes when there is one (req->exact
 * unset): a quarter of the bytes of float32 vectors, each score within the codes' bound. */
static int embedded_score_values(void *state, const vdx_search_request *req, float **scores,
                                 size_t *n_out, double *bound, vdx_error *err)
{
    embedded *e = state;
    *scores = NULL;
    *n_out = 0;
    *bound = 0;
    if (map_rows(e, e->count, err) != 0)
        return -1;
    uint64_t *allowed;
    if (allowed_rows(e, req, &allowed, err) != 0)
        return -1;
    float *dots = malloc((size_t)(e->count + 1) * sizeof *dots);
    if (!dots) {
        free(allowed);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "collection '%s': out of memory", e->collection);
    }
    vdx_scan_matrix m = matrix_of(e);
    int rc = e->ivf && !req->exact && ivf_has_bound(e->ivf)
                 ? ivf_estimate_all(e->ivf, &m, req->query, dots, bound, err)
                 : scan_dots(&m, req->query, allowed, dots, err);
    size_t n = 0;
    for (int64_t r = 0; rc == 0 && r < e->count; r++)
        if (!allowed || (allowed[r / 64] >> (r % 64) & 1))
            dots[n++] = dots[r];
    free(allowed);
    if (rc != 0) {
        free(dots);
        return vdx_error_prefix(err, "collection '%s'", e->collection);
    }
    *scores = dots;
    *n_out = n;
    return 0;
}

const vdx_store_backend vdx_embedded_backend = {
    .name = "embedded",
    .open = embedded_open,
    .close = embedded_close,
    .refresh = embedded_refresh,
    .count = embedded_count,
    .indexed_rows = embedded_indexed_rows,
    .vector_type = embedded_vector_type,
    .add_columns = embedded_add_columns,
    .columns = embedded_columns,
    .append = embedded_append,
    .item_states = embedded_item_states,
    .search = embedded_search,
    .score_all = embedded_score_all,
    .score_values = embedded_score_values,
    .get_vectors = embedded_get_vectors,
    .sample_vectors = embedded_sample_vectors,
    .get_item = embedded_get_item,
    .get_thumbnail = embedded_get_thumbnail,
    .failures = embedded_failures,
    .info = embedded_info,
    .clear_failures = embedded_clear_failures,
    .add_note = embedded_add_note,
    .notes = embedded_notes,
    .index_build = embedded_index_build,
};
