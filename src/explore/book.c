/* The concept book's storage: the SQLite database `concepts.db` beside the collection
 * (vdx_store_dir) with its schema and migrations, WAL mode, one transaction per
 * operation so that a crash or a concurrent process never sees half an operation; and
 * the loaders and JSON views the other files of explore/ share (book.h). Concepts'
 * lifecycle is in concepts.c, labels and their undo log in labels.c, training rounds in
 * rounds.c. */
#include "explore/book.h"

#include "common/hash.h"
#include "common/json_check.h"
#include "common/sqlite_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "concepts.db stores weights as little-endian float32 BLOBs"
#endif

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS concepts("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  prompt TEXT,"
    "  examples TEXT NOT NULL DEFAULT '[]',"
    "  created TEXT NOT NULL,"
    "  updated TEXT NOT NULL,"
    "  model_name TEXT NOT NULL,"
    "  model_fingerprint TEXT NOT NULL,"
    "  dims INTEGER NOT NULL,"
    "  initial_weight BLOB NOT NULL,"
    "  threshold REAL NOT NULL DEFAULT 0);"
    /* the current label of each labelled item; seq orders them oldest first */
    "CREATE TABLE IF NOT EXISTS labels("
    "  concept INTEGER NOT NULL,"
    "  item TEXT NOT NULL,"
    "  url TEXT,"
    "  label INTEGER NOT NULL,"
    "  time TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  PRIMARY KEY(concept, item));"
    /* every label change, with what it replaced, tagged with the round it belongs to
     * (rounds trained + 1 while pending): undo replays them backwards */
    "CREATE TABLE IF NOT EXISTS label_events("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  concept INTEGER NOT NULL,"
    "  round INTEGER NOT NULL,"
    "  item TEXT NOT NULL,"
    "  new_label INTEGER,"
    "  new_url TEXT,"
    "  time TEXT NOT NULL,"
    "  old_label INTEGER,"
    "  old_url TEXT,"
    "  old_time TEXT,"
    "  old_seq INTEGER);"
    "CREATE INDEX IF NOT EXISTS label_events_by_round ON label_events(concept, round);"
    "CREATE TABLE IF NOT EXISTS rounds("
    "  concept INTEGER NOT NULL,"
    "  round INTEGER NOT NULL,"
    "  time TEXT NOT NULL,"
    "  labels_added INTEGER NOT NULL,"
    "  positive INTEGER NOT NULL,"
    "  negative INTEGER NOT NULL,"
    "  iters INTEGER NOT NULL,"
    "  lr REAL NOT NULL,"
    "  losses TEXT NOT NULL,"
    "  training_accuracy REAL NOT NULL,"
    "  weight BLOB NOT NULL,"
    "  PRIMARY KEY(concept, round));";

/* Version 2: label changes are grouped into actions (one call of vdx_concept_label, or
 * one revert) that undo and redo take back and replay whole; an undone action stays in
 * the log (undone = 1) until a new action clears the redo stack. Rounds keep the
 * metrics measured when they were trained. Candidate lists are fixed per round. */
static const char *const schema_v2_sql =
    "ALTER TABLE label_events ADD COLUMN action INTEGER;"
    "ALTER TABLE label_events ADD COLUMN undone INTEGER NOT NULL DEFAULT 0;"
    "UPDATE label_events SET action = seq;"
    "CREATE INDEX IF NOT EXISTS label_events_by_action ON label_events(concept, action);"
    "ALTER TABLE rounds ADD COLUMN metrics TEXT;"
    /* the ranking a round's candidate pages are cut from: ids (and urls) as JSON arrays,
     * kept until the concept's next round; `complete` when it holds every candidate */
    "CREATE TABLE IF NOT EXISTS candidate_lists("
    "  concept INTEGER NOT NULL,"
    "  round INTEGER NOT NULL,"
    "  mode TEXT NOT NULL,"
    "  filter TEXT NOT NULL,"
    "  seed INTEGER NOT NULL,"
    "  threshold REAL NOT NULL,"
    "  created TEXT NOT NULL,"
    "  unlabelled INTEGER NOT NULL,"
    "  complete INTEGER NOT NULL,"
    "  ids TEXT NOT NULL,"
    "  urls TEXT NOT NULL,"
    "  PRIMARY KEY(concept, round, mode, filter, seed, threshold));"
    "PRAGMA user_version = 2;";

/* Version 3: the audit sample, items drawn uniformly at random for the estimates (a
 * round's calibration lives in its metrics, beside the cross-validation). */
static const char *const schema_v3_sql =
    "CREATE TABLE IF NOT EXISTS audit_items("
    "  concept INTEGER NOT NULL,"
    "  item TEXT NOT NULL,"
    "  drawn INTEGER NOT NULL,"
    "  time TEXT NOT NULL,"
    "  PRIMARY KEY(concept, item));"
    "PRAGMA user_version = 3;";

/* Version 4: each concept's trainer ("seed", the original's fit, "anchored" or, a later
 * value in the same column, "auto"; docs/explore.md), "seed" for the concepts already
 * there. */
static const char *const schema_v4_sql =
    "ALTER TABLE concepts ADD COLUMN trainer TEXT NOT NULL DEFAULT 'seed';"
    "PRAGMA user_version = 4;";

/* Version 5: each audit item's design weight (1 / its chance of being drawn: the sample
 * is stratified by score). NULL for items drawn before, which were drawn uniformly. */
static const char *const schema_v5_sql =
    "ALTER TABLE audit_items ADD COLUMN weight REAL;"
    "PRAGMA user_version = 5;";

/* ---- small helpers ------------------------------------------------------------------ */

char *book_dup_text(const unsigned char *text)
{
    if (!text)
        return NULL;
    return strdup((const char *)text);
}

int book_fail(vdx_concepts *book, vdx_error *err, const char *doing)
{
    return sql_fail(book->db, err, "%s: %s", book->path, doing);
}

int book_exec(vdx_concepts *book, const char *sql, vdx_error *err)
{
    return sql_exec(book->db, sql, err, "%s", book->path);
}

sqlite3_stmt *book_prepare(vdx_concepts *book, const char *sql, vdx_error *err)
{
    return sql_prepare(book->db, sql, err, "%s", book->path);
}

int book_begin_write(vdx_concepts *book, vdx_error *err)
{
    sql_rollback(book->db); /* a transaction a failed rollback left open */
    return book_exec(book, "BEGIN IMMEDIATE", err);
}

static int book_commit(vdx_concepts *book, vdx_error *err)
{
    return book_exec(book, "COMMIT", err);
}

void book_rollback(vdx_concepts *book) { sql_rollback(book->db); }

/* Ends a write transaction begun with begin_write: commits when rc (the status so far) is
 * 0, rolls back otherwise or when the commit fails. Returns the final status. */
int book_end_write(vdx_concepts *book, int rc, vdx_error *err)
{
    if (rc == 0)
        rc = book_commit(book, err);
    if (rc != 0)
        book_rollback(book);
    return rc;
}

int model_mismatch_fail(vdx_error *err, const char *what, const vdx_model_identity *theirs,
                        const vdx_model_identity *ours)
{
    return vdx_fail_kind(err, VDX_ERR_MODEL_MISMATCH,
                    "%s model %s (fingerprint %s, %d dims); this collection holds "
                    "model %s (fingerprint %s, %d dims)",
                    what, theirs->name, theirs->config_hash, theirs->dims, ours->name,
                    ours->config_hash, ours->dims);
}

/* The one rule for concept names, shared by the CLI and the API: valid UTF-8 without
 * control characters, 1..VDX_CONCEPT_NAME_MAX bytes, not only spaces, and not "." or
 * "..", which no URL path can address (a path segment "." or ".." is resolved away). */
int concept_name_check(const char *name, vdx_error *err)
{
    if (!name || !*name)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "a concept name must not be empty");
    size_t len = strlen(name), bad;
    if (len > VDX_CONCEPT_NAME_MAX)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "concept name is %zu bytes long; the limit is %d", len,
                             VDX_CONCEPT_NAME_MAX);
    if (vdx_utf8_check(name, len, &bad) != 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "concept name is not valid UTF-8 (byte %zu)", bad);
    int visible = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7F)
            return vdx_fail_kind(err, VDX_ERR_INVALID,
                                 "concept name contains a control character (byte %zu)", i);
        visible |= c != ' ';
    }
    if (!visible)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "a concept name must not be only spaces");
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "a concept cannot be named '%s': no URL path can address it", name);
    return 0;
}

int vdx_concept_check_name(const char *name, vdx_error *err) { return concept_name_check(name, err); }

int weight_is_usable(const float *w, int dims)
{
    double norm2 = 0;
    for (int j = 0; j < dims; j++) {
        if (!isfinite(w[j]))
            return 0;
        norm2 += (double)w[j] * w[j];
    }
    return norm2 > 0;
}

double weight_norm(const float *w, int dims)
{
    double norm2 = 0;
    for (int j = 0; j < dims; j++)
        norm2 += (double)w[j] * w[j];
    return sqrt(norm2);
}

static const char *const trainer_names[] = {
    [TRAINER_SEED] = "seed", [TRAINER_ANCHORED] = "anchored", [TRAINER_AUTO] = "auto"};

int concept_trainer_parse(const char *name)
{
    for (int t = 0; name && t < (int)(sizeof trainer_names / sizeof trainer_names[0]); t++)
        if (strcmp(name, trainer_names[t]) == 0)
            return t;
    return -1;
}

const char *concept_trainer_name(int trainer)
{
    return trainer_names[trainer];
}

int vdx_concept_trainer_known(const char *name)
{
    return concept_trainer_parse(name) >= 0;
}

/* ---- open / close ------------------------------------------------------------------- */

static int schema_version(vdx_concepts *book, int *version, vdx_error *err)
{
    sqlite3_stmt *stmt = book_prepare(book, "PRAGMA user_version", err);
    if (!stmt)
        return -1;
    int rc = sqlite3_step(stmt);
    *version = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : book_fail(book, err, "reading the schema version");
}

/* Brings a book of an older version up to date (inside the opening transaction). */
static int migrate(vdx_concepts *book, vdx_error *err)
{
    int version;
    if (schema_version(book, &version, err) != 0)
        return -1;
    if (version > 5)
        return vdx_fail(err, "%s: schema version %d is newer than this vdx (5)", book->path,
                        version);
    if (version < 2 && book_exec(book, schema_v2_sql, err) != 0)
        return -1;
    if (version < 3 && book_exec(book, schema_v3_sql, err) != 0)
        return -1;
    if (version < 4 && book_exec(book, schema_v4_sql, err) != 0)
        return -1;
    return version < 5 ? book_exec(book, schema_v5_sql, err) : 0;
}

vdx_concepts *vdx_concepts_open(vdx_store *store, vdx_error *err)
{
    vdx_concepts *book = calloc(1, sizeof *book);
    if (!book) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    book->store = store;
    snprintf(book->path, sizeof book->path, "%s/concepts.db", vdx_store_dir(store));
    if (sql_open(book->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &book->db, err,
                 "concept book") != 0) {
        free(book);
        return NULL;
    }
    if (book_exec(book, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err) != 0 ||
        book_exec(book, "BEGIN IMMEDIATE", err) != 0 || book_exec(book, schema_sql, err) != 0 ||
        migrate(book, err) != 0 || book_commit(book, err) != 0) {
        book_rollback(book);
        sqlite3_close(book->db);
        /* SQLite's "unable to open database file" does not say why */
        if (err && err->kind == VDX_ERR_IO && access(vdx_store_dir(store), W_OK) != 0)
            vdx_fail_errno(err, errno, "%s: cannot write in %s (%s): concepts need it",
                           book->path, vdx_store_dir(store), strerror(errno));
        free(book);
        return NULL;
    }
    pthread_mutex_init(&book->lock, NULL);
    return book;
}

void vdx_concepts_close(vdx_concepts *book)
{
    if (!book)
        return;
    sqlite3_close(book->db);
    pthread_mutex_destroy(&book->lock);
    free(book);
}

/* ---- loading ------------------------------------------------------------------------ */

void concept_record_free(concept_record *rec)
{
    free(rec->name);
    free(rec->prompt);
    free(rec->created);
    free(rec->updated);
    free(rec->examples_json);
    free(rec->initial_weight);
    free(rec->weight);
    memset(rec, 0, sizeof *rec);
}

static int blob_to_weight(sqlite3_stmt *stmt, int col, int dims, float **out,
                          const char *what, const char *name, vdx_error *err)
{
    int bytes = sqlite3_column_bytes(stmt, col);
    const void *blob = sqlite3_column_blob(stmt, col);
    if (bytes != dims * (int)sizeof(float) || !blob)
        return vdx_fail(err, "concept '%s': %s holds %d bytes, expected %d float32 (%d bytes)",
                        name, what, bytes, dims, dims * (int)sizeof(float));
    *out = malloc((size_t)bytes);
    if (!*out)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    memcpy(*out, blob, (size_t)bytes);
    return 0;
}

/* The calibration stored in a round's metrics: {"calibration":{"a","b",...}}. */
static void read_calibration(sqlite3_stmt *stmt, int col, concept_record *rec)
{
    rec->calib = (calib_map){1, 0};
    rec->calibrated = 0;
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
        return;
    cJSON *metrics = cJSON_Parse((const char *)sqlite3_column_text(stmt, col));
    const cJSON *c = cJSON_GetObjectItem(metrics, "calibration");
    const cJSON *a = cJSON_GetObjectItem(c, "a"), *b = cJSON_GetObjectItem(c, "b");
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b) && a->valuedouble > 0 && isfinite(b->valuedouble)) {
        rec->calib = (calib_map){a->valuedouble, b->valuedouble};
        rec->calibrated = 1;
    }
    cJSON_Delete(metrics);
}

double concept_probability(const concept_record *rec, double score)
{
    return calib_probability(&rec->calib, score);
}

cJSON *concept_calibration_json(const concept_record *rec)
{
    if (!rec->calibrated)
        return cJSON_CreateNull();
    cJSON *c = cJSON_CreateObject();
    if (c && (!cJSON_AddStringToObject(c, "method", "platt") ||
              !cJSON_AddNumberToObject(c, "a", rec->calib.a) ||
              !cJSON_AddNumberToObject(c, "b", rec->calib.b) ||
              !cJSON_AddNumberToObject(c, "round", rec->rounds))) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

int concept_find(vdx_concepts *book, const char *name, concept_record *rec, vdx_error *err)
{
    memset(rec, 0, sizeof *rec);
    rec->calib = (calib_map){1, 0};
    if (!name)
        return vdx_fail(err, "no concept name given");
    sqlite3_stmt *stmt = book_prepare(
        book,
        "SELECT id, name, prompt, examples, created, updated, model_name, model_fingerprint,"
        " dims, initial_weight, threshold, trainer FROM concepts WHERE name = ?1",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            vdx_fail_kind(err, VDX_ERR_NOT_FOUND, "no concept named '%s'", name);
        else
            book_fail(book, err, "reading a concept");
        sqlite3_finalize(stmt);
        return -1;
    }
    rec->id = sqlite3_column_int64(stmt, 0);
    rec->name = book_dup_text(sqlite3_column_text(stmt, 1));
    rec->prompt = book_dup_text(sqlite3_column_text(stmt, 2));
    rec->examples_json = book_dup_text(sqlite3_column_text(stmt, 3));
    rec->created = book_dup_text(sqlite3_column_text(stmt, 4));
    rec->updated = book_dup_text(sqlite3_column_text(stmt, 5));
    snprintf(rec->model.name, sizeof rec->model.name, "%s", sqlite3_column_text(stmt, 6));
    snprintf(rec->model.config_hash, sizeof rec->model.config_hash, "%s",
             sqlite3_column_text(stmt, 7));
    rec->dims = rec->model.dims = sqlite3_column_int(stmt, 8);
    rec->threshold = sqlite3_column_double(stmt, 10);
    rec->trainer = concept_trainer_parse((const char *)sqlite3_column_text(stmt, 11));
    int ok = rec->trainer < 0
                 ? vdx_fail(err, "concept '%s': unknown trainer '%s' in %s", name,
                            (const char *)sqlite3_column_text(stmt, 11), book->path)
                 : blob_to_weight(stmt, 9, rec->dims, &rec->initial_weight,
                                  "the initial weight", name, err);
    sqlite3_finalize(stmt);
    if (ok != 0) {
        concept_record_free(rec);
        return -1;
    }

    stmt = book_prepare(book,
                      "SELECT round, iters, lr, weight, metrics FROM rounds WHERE concept = ?1"
                      " ORDER BY round DESC LIMIT 1",
                      err);
    if (!stmt) {
        concept_record_free(rec);
        return -1;
    }
    sqlite3_bind_int64(stmt, 1, rec->id);
    rc = sqlite3_step(stmt);
    rec->last_iters = VDX_FIT_ITERS;
    rec->last_lr = VDX_FIT_LR;
    if (rc == SQLITE_ROW) {
        rec->rounds = sqlite3_column_int(stmt, 0);
        rec->last_iters = sqlite3_column_int(stmt, 1);
        rec->last_lr = (float)sqlite3_column_double(stmt, 2);
        ok = blob_to_weight(stmt, 3, rec->dims, &rec->weight, "the weight of the last round",
                            name, err);
        read_calibration(stmt, 4, rec);
    } else if (rc == SQLITE_DONE) {
        rec->weight = malloc((size_t)rec->dims * sizeof(float));
        ok = rec->weight ? 0 : vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        if (rec->weight)
            memcpy(rec->weight, rec->initial_weight, (size_t)rec->dims * sizeof(float));
    } else {
        ok = book_fail(book, err, "reading the rounds of a concept");
    }
    sqlite3_finalize(stmt);
    if (ok != 0) {
        concept_record_free(rec);
        return -1;
    }
    return 0;
}

int concept_check_model(vdx_concepts *book, const concept_record *rec, vdx_error *err)
{
    const vdx_model_identity *ours = vdx_store_model(book->store);
    if (strcmp(rec->model.config_hash, ours->config_hash) != 0 || rec->dims != ours->dims) {
        char what[512];
        snprintf(what, sizeof what, "concept '%s' was trained on vectors of", rec->name);
        return model_mismatch_fail(err, what, &rec->model, ours);
    }
    return 0;
}

void label_set_free(label_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->ids[i]);
        if (set->urls)
            free(set->urls[i]);
        if (set->times)
            free(set->times[i]);
    }
    free(set->ids);
    free(set->urls);
    free(set->times);
    free(set->labels);
    memset(set, 0, sizeof *set);
}

cJSON *label_set_item_json(const label_set *set, size_t i)
{
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, "id", set->ids[i]);
    if (set->urls[i])
        cJSON_AddStringToObject(l, "url", set->urls[i]);
    else
        cJSON_AddNullToObject(l, "url");
    cJSON_AddNumberToObject(l, "label", set->labels[i]);
    cJSON_AddStringToObject(l, "time", set->times[i]);
    return l;
}

/* Rows of (item, label[, url, time]) into a label_set; with_url_time says whether the
 * query has the last two columns (an audit sample has neither). */
int label_set_load(vdx_concepts *book, const char *sql, int64_t concept_id, int with_url_time,
                   label_set *set, vdx_error *err)
{
    memset(set, 0, sizeof *set);
    sqlite3_stmt *stmt = book_prepare(book, sql, err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept_id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (set->n == cap) {
            cap = cap ? cap * 2 : 64;
            char **ids = realloc(set->ids, cap * sizeof *ids);
            if (ids)
                set->ids = ids;
            int *labels = realloc(set->labels, cap * sizeof *labels);
            if (labels)
                set->labels = labels;
            char **urls = NULL, **times = NULL;
            if (with_url_time && (urls = realloc(set->urls, cap * sizeof *urls)))
                set->urls = urls;
            if (with_url_time && (times = realloc(set->times, cap * sizeof *times)))
                set->times = times;
            if (!ids || !labels || (with_url_time && (!urls || !times))) {
                sqlite3_finalize(stmt);
                label_set_free(set);
                return vdx_fail_oom(err, "out of memory for %zu labels", cap);
            }
        }
        size_t i = set->n++;
        set->ids[i] = book_dup_text(sqlite3_column_text(stmt, 0));
        set->labels[i] = sqlite3_column_int(stmt, 1);
        int lost = !set->ids[i]; /* id and time are NOT NULL: a missing copy is a failed allocation */
        if (with_url_time) {
            set->urls[i] = book_dup_text(sqlite3_column_text(stmt, 2));
            set->times[i] = book_dup_text(sqlite3_column_text(stmt, 3));
            lost |= !set->times[i] || (!set->urls[i] && sqlite3_column_type(stmt, 2) != SQLITE_NULL);
        }
        if (lost) {
            sqlite3_finalize(stmt);
            label_set_free(set);
            return vdx_fail_oom(err, "reading the labels of %s", book->path);
        }
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        label_set_free(set);
        return book_fail(book, err, "reading labels");
    }
    return 0;
}

int concept_labels_load(vdx_concepts *book, int64_t concept_id, label_set *set, vdx_error *err)
{
    return label_set_load(book,
                          "SELECT item, label, url, time FROM labels WHERE concept = ?1 ORDER BY seq",
                          concept_id, 1, set, err);
}

/* ---- a hash set of labelled ids ----------------------------------------------------- */

int label_index_build(const label_set *set, label_index *index, vdx_error *err)
{
    index->n = set->n;
    index->cap = 16;
    while (index->cap < set->n * 2 + 1)
        index->cap *= 2;
    index->keys = calloc(index->cap, sizeof *index->keys);
    index->labels = calloc(index->cap, sizeof *index->labels);
    if (!index->keys || !index->labels) {
        label_index_free(index);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for %zu labels", set->n);
    }
    for (size_t i = 0; i < set->n; i++) {
        size_t slot = hash_str(set->ids[i]) & (index->cap - 1);
        while (index->keys[slot] && strcmp(index->keys[slot], set->ids[i]) != 0)
            slot = (slot + 1) & (index->cap - 1);
        index->keys[slot] = set->ids[i];
        index->labels[slot] = set->labels[i];
    }
    return 0;
}

int label_index_get(const label_index *index, const char *id)
{
    size_t slot = hash_str(id) & (index->cap - 1);
    while (index->keys[slot]) {
        if (strcmp(index->keys[slot], id) == 0)
            return index->labels[slot];
        slot = (slot + 1) & (index->cap - 1);
    }
    return -1;
}

void label_index_free(label_index *index)
{
    free(index->keys);
    free(index->labels);
    memset(index, 0, sizeof *index);
}

/* ---- JSON views --------------------------------------------------------------------- */

double shortest_float(float f)
{
    char text[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)f);
        if ((float)strtod(text, NULL) == f)
            return strtod(text, NULL);
    }
    return f;
}

cJSON *json_float_array(const float *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(shortest_float(v[i])));
    return a;
}

int concept_history_json(vdx_concepts *book, int64_t concept_id, int with_weights,
                         cJSON **history, vdx_error *err)
{
    *history = NULL;
    sqlite3_stmt *stmt = book_prepare(
        book,
        "SELECT round, time, labels_added, positive, negative, iters, lr, losses,"
        " training_accuracy, weight, metrics FROM rounds WHERE concept = ?1 ORDER BY round",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept_id);
    cJSON *list = cJSON_CreateArray();
    int rc = SQLITE_DONE, ok = list != NULL; /* every key or none: a history with holes is wrong */
    while (ok && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        cJSON *r = cJSON_CreateObject();
        const char *time = (const char *)sqlite3_column_text(stmt, 1);
        int added = r && time && cJSON_AddItemToArray(list, r);
        if (!added)
            cJSON_Delete(r); /* not in the list: ours to free */
        ok = added && cJSON_AddNumberToObject(r, "round", sqlite3_column_int(stmt, 0)) &&
             cJSON_AddStringToObject(r, "time", time) &&
             cJSON_AddNumberToObject(r, "labels_added", sqlite3_column_int(stmt, 2)) &&
             cJSON_AddNumberToObject(r, "positive", sqlite3_column_int(stmt, 3)) &&
             cJSON_AddNumberToObject(r, "negative", sqlite3_column_int(stmt, 4)) &&
             cJSON_AddNumberToObject(r, "iters", sqlite3_column_int(stmt, 5)) &&
             cJSON_AddNumberToObject(r, "lr",
                                     shortest_float((float)sqlite3_column_double(stmt, 6)));
        if (!ok)
            break;
        const char *losses_text = (const char *)sqlite3_column_text(stmt, 7);
        cJSON *losses = losses_text ? cJSON_Parse(losses_text) : NULL;
        if (!losses && losses_text && !json_text_is_valid(losses_text, strlen(losses_text))) {
            losses = cJSON_CreateArray(); /* unreadable losses: shown as none */
        }
        ok = losses && cJSON_AddItemToObject(r, "losses", losses);
        if (!ok) {
            cJSON_Delete(losses);
            break;
        }
        /* the round's stored cross-validation (null for rounds from before schema v2) */
        cJSON *metrics = sqlite3_column_type(stmt, 10) == SQLITE_NULL
                             ? NULL
                             : cJSON_Parse((const char *)sqlite3_column_text(stmt, 10));
        cJSON *cv = cJSON_DetachItemFromObject(metrics, "cross_validation");
        cJSON *calibration = cJSON_DetachItemFromObject(metrics, "calibration");
        /* the trainer of the round (rounds recorded before it was: the seed's) */
        const cJSON *trainer = cJSON_GetObjectItem(metrics, "trainer");
        int anchored = cJSON_IsString(trainer) &&
                       concept_trainer_parse(trainer->valuestring) == TRAINER_ANCHORED;
        cJSON *bias = anchored ? cJSON_DetachItemFromObject(metrics, "bias") : NULL;
        cJSON_Delete(metrics);
        ok = cJSON_AddStringToObject(r, "trainer", anchored ? "anchored" : "seed") &&
             (!bias || cJSON_AddItemToObject(r, "bias", bias));
        if (!ok) {
            cJSON_Delete(bias);
            cJSON_Delete(calibration);
            cJSON_Delete(cv);
            break;
        }
        if (!calibration)
            calibration = cJSON_CreateNull();
        ok = calibration && cJSON_AddItemToObject(r, "calibration", calibration);
        if (!ok) {
            cJSON_Delete(calibration);
            cJSON_Delete(cv);
            break;
        }
        if (!cv)
            cv = cJSON_CreateNull();
        ok = cv && cJSON_AddItemToObject(r, "cross_validation", cv);
        if (!ok) {
            cJSON_Delete(cv);
            break;
        }
        int bytes = sqlite3_column_bytes(stmt, 9);
        const float *w = sqlite3_column_blob(stmt, 9);
        int dims = bytes / (int)sizeof(float);
        float *copy = malloc((size_t)bytes + 1);
        if (copy && w)
            memcpy(copy, w, (size_t)bytes);
        ok = copy && cJSON_AddNumberToObject(r, "training_accuracy", sqlite3_column_double(stmt, 8)) &&
             cJSON_AddNumberToObject(r, "weight_norm", weight_norm(copy, dims));
        if (ok && with_weights) {
            cJSON *weight = json_float_array(copy, dims);
            ok = weight && cJSON_AddItemToObject(r, "weight", weight);
            if (!ok)
                cJSON_Delete(weight);
        }
        free(copy);
    }
    sqlite3_finalize(stmt);
    if (!ok) {
        cJSON_Delete(list);
        return vdx_fail_oom(err, "reading the rounds of %s", book->path);
    }
    if (rc != SQLITE_DONE) {
        cJSON_Delete(list);
        return book_fail(book, err, "reading the rounds of a concept");
    }
    *history = list;
    return 0;
}

/* Label counts and the number of label changes since the last round: the changes made
 * since, and the undone changes of earlier rounds. */
int concept_counts(vdx_concepts *book, const concept_record *rec, int *positive,
                          int *negative, int *pending, vdx_error *err)
{
    sqlite3_stmt *stmt = book_prepare(
        book,
        "SELECT (SELECT COUNT(*) FROM labels WHERE concept = ?1 AND label = 1),"
        " (SELECT COUNT(*) FROM labels WHERE concept = ?1 AND label = 0),"
        " (SELECT COUNT(*) FROM label_events WHERE concept = ?1 AND"
        "  ((round = ?2 AND undone = 0) OR (round < ?2 AND undone = 1)))",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, rec->id);
    sqlite3_bind_int(stmt, 2, rec->rounds + 1);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *positive = sqlite3_column_int(stmt, 0);
        *negative = sqlite3_column_int(stmt, 1);
        if (pending)
            *pending = sqlite3_column_int(stmt, 2);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : book_fail(book, err, "counting labels");
}

int concept_current_cv(vdx_concepts *book, const concept_record *rec, cJSON **cv,
                       vdx_error *err)
{
    *cv = NULL;
    int positive, negative, pending;
    if (rec->rounds == 0)
        return 0;
    if (concept_counts(book, rec, &positive, &negative, &pending, err) != 0)
        return -1;
    if (pending)
        return 0;
    sqlite3_stmt *stmt = book_prepare(
        book, "SELECT metrics FROM rounds WHERE concept = ?1 AND round = ?2", err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, rec->id);
    sqlite3_bind_int(stmt, 2, rec->rounds);
    cJSON *metrics = NULL;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL)
        metrics = cJSON_Parse((const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    const cJSON *threshold = cJSON_GetObjectItem(metrics, "threshold");
    if (cJSON_IsNumber(threshold) && threshold->valuedouble == rec->threshold)
        *cv = cJSON_DetachItemFromObject(metrics, "cross_validation");
    cJSON_Delete(metrics);
    return 0;
}

int concept_json(vdx_concepts *book, const concept_record *rec, int with_weight,
                 cJSON **concept, vdx_error *err)
{
    *concept = NULL;
    int positive = 0, negative = 0, pending = 0, next_trainer = 0;
    cJSON *history = NULL;
    if (concept_counts(book, rec, &positive, &negative, &pending, err) != 0 ||
        concept_next_trainer(book, rec, &next_trainer, err) != 0 ||
        concept_history_json(book, rec->id, 0, &history, err) != 0)
        return -1;
    cJSON *c = cJSON_CreateObject(), *model = NULL;
    int ok = c && cJSON_AddStringToObject(c, "name", rec->name) &&
             (rec->prompt ? cJSON_AddStringToObject(c, "prompt", rec->prompt) != NULL
                          : cJSON_AddNullToObject(c, "prompt") != NULL) &&
             cJSON_AddStringToObject(c, "created", rec->created) &&
             cJSON_AddStringToObject(c, "updated", rec->updated) &&
             (model = cJSON_AddObjectToObject(c, "model")) &&
             cJSON_AddStringToObject(model, "name", rec->model.name) &&
             cJSON_AddStringToObject(model, "fingerprint", rec->model.config_hash) &&
             cJSON_AddNumberToObject(model, "dims", rec->dims) &&
             cJSON_AddNumberToObject(c, "threshold", rec->threshold) &&
             cJSON_AddStringToObject(c, "trainer", concept_trainer_name(rec->trainer)) &&
             cJSON_AddStringToObject(c, "next_trainer", concept_trainer_name(next_trainer)) &&
             cJSON_AddNumberToObject(c, "positive", positive) &&
             cJSON_AddNumberToObject(c, "negative", negative) &&
             cJSON_AddNumberToObject(c, "pending", pending);
    const char *examples_text = rec->examples_json ? rec->examples_json : "[]";
    cJSON *examples = ok ? cJSON_Parse(examples_text) : NULL;
    if (ok && !examples && !json_text_is_valid(examples_text, strlen(examples_text)))
        examples = cJSON_CreateArray(); /* unreadable examples: shown as none */
    ok = ok && examples && cJSON_AddItemToObject(c, "examples", examples);
    if (!ok)
        cJSON_Delete(examples);
    cJSON *calibration = ok ? concept_calibration_json(rec) : NULL;
    ok = ok && calibration && cJSON_AddItemToObject(c, "calibration", calibration);
    if (!ok)
        cJSON_Delete(calibration);
    ok = ok && cJSON_AddNumberToObject(c, "threshold_probability",
                                       concept_probability(rec, rec->threshold)) &&
         cJSON_AddNumberToObject(c, "rounds", rec->rounds) &&
         cJSON_AddItemToObject(c, "history", history);
    if (ok)
        history = NULL; /* c owns it */
    if (ok && with_weight) {
        cJSON *weight = json_float_array(rec->weight, rec->dims);
        ok = weight && cJSON_AddItemToObject(c, "weight", weight);
        if (!ok)
            cJSON_Delete(weight);
    }
    cJSON_Delete(history);
    if (!ok) {
        cJSON_Delete(c);
        return vdx_fail_oom(err, "describing concept '%s'", rec->name);
    }
    *concept = c;
    return 0;
}

/* Lists up to 10 ids of a set of bad ones: "a, b, c (and 5 more)". */
static void list_ids(char *out, size_t size, const char *const *ids, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && i < 10; i++)
        len += (size_t)snprintf(out + len, len < size ? size - len : 0, "%s%s", i ? ", " : "",
                                ids[i]);
    if (n > 10 && len < size)
        snprintf(out + len, size - len, " (and %zu more)", n - 10);
}

/* Refuses ids the collection does not hold with a vector: "unknown item ids: …", then
 * "items without a vector (their ingest failed): …". */
int book_check_ids_known(vdx_concepts *book, const char *const *ids, size_t n,
                           vdx_error *err)
{
    if (n == 0)
        return 0;
    vdx_item_state *states = malloc(n * sizeof *states);
    const char **bad = malloc(n * sizeof *bad);
    if (!states || !bad) {
        free(states);
        free(bad);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for %zu ids", n);
    }
    int rc = vdx_store_item_states(book->store, ids, n, states, err);
    static const struct {
        vdx_item_state state;
        vdx_error_kind kind;
        const char *message;
    } refusals[] = {
        {VDX_ITEM_ABSENT, VDX_ERR_NOT_FOUND, "unknown item ids: %s"},
        {VDX_ITEM_FAILED, VDX_ERR_INVALID, "items without a vector (their ingest failed): %s"},
    };
    for (size_t r = 0; rc == 0 && r < sizeof refusals / sizeof refusals[0]; r++) {
        size_t n_bad = 0;
        for (size_t i = 0; i < n; i++)
            if (states[i] == refusals[r].state)
                bad[n_bad++] = ids[i];
        if (n_bad) {
            char list[VDX_ERROR_MAX];
            list_ids(list, sizeof list, bad, n_bad);
            rc = vdx_fail_kind(err, refusals[r].kind, refusals[r].message, list);
        }
    }
    free(states);
    free(bad);
    return rc;
}

/* Runs one UPDATE/DELETE bound to (text ?1, int64 ?2). */
int book_run_on_concept(vdx_concepts *book, const char *sql, const char *text, int64_t id,
                          vdx_error *err)
{
    sqlite3_stmt *stmt = book_prepare(book, sql, err);
    if (!stmt)
        return -1;
    if (text)
        sqlite3_bind_text(stmt, 1, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, id);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : book_fail(book, err, "updating a concept");
}

int book_touch(vdx_concepts *book, int64_t id, vdx_error *err)
{
    char now[32];
    clock_utc_iso_now(now);
    return book_run_on_concept(book, "UPDATE concepts SET updated = ?1 WHERE id = ?2", now, id,
                          err);
}

int book_score_all(vdx_concepts *book, const float *weight, const char *where, int with_urls,
                   vdx_hits *hits, vdx_error *err)
{
    vdx_search_request req = {.query = weight, .where = where, .without_urls = !with_urls};
    return vdx_store_score_all(book->store, &req, hits, err);
}

int book_score_unlabelled(vdx_concepts *book, const float *weight, const label_set *labelled,
                          int exact, float **scores, size_t *n, double *bound, vdx_error *err)
{
    vdx_search_request req = {.query = weight, .exclude_ids = (const char *const *)labelled->ids,
                              .n_exclude = labelled->n, .exact = exact};
    return vdx_store_score_values(book->store, &req, scores, n, bound, err);
}

int book_fill_urls(vdx_concepts *book, vdx_hits *hits, const vdx_hit *const *which, size_t n,
                   vdx_error *err)
{
    for (size_t i = 0; i < n; i++) {
        vdx_hit *hit = hits->hits + (which[i] - hits->hits);
        if (hit->url)
            continue;
        cJSON *item = NULL;
        if (vdx_store_get_item(book->store, hit->id, &item, err) != 0)
            return -1;
        const cJSON *url = cJSON_GetObjectItem(item, "url");
        hit->url = cJSON_IsString(url) ? strdup(url->valuestring) : NULL;
        int lost = cJSON_IsString(url) && !hit->url;
        cJSON_Delete(item);
        if (lost)
            return vdx_fail_oom(err, "out of memory for the url of item '%s'", hit->id);
    }
    return 0;
}
