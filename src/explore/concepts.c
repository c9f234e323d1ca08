/* The concept book: concepts, their labels (with an event log for undo) and their
 * training rounds, persisted in SQLite `concepts.db` beside the collection
 * (vdx_store_dir), WAL mode, one transaction per operation so that a crash or a
 * concurrent process never sees half an operation. Training (one call of the original's
 * fit over all labels) lives here too because it is one transaction over this state. */
#include "explore/book.h"

#include "common/hash.h"
#include "common/json_check.h"
#include "common/sqlite_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* ---- small helpers ------------------------------------------------------------------ */

double sigmoid_of(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

static char *dup_text(const unsigned char *text)
{
    if (!text)
        return NULL;
    return strdup((const char *)text);
}

static int db_fail(vdx_concepts *book, vdx_error *err, const char *doing)
{
    return sql_fail(book->db, err, "%s: %s", book->path, doing);
}

static int db_exec(vdx_concepts *book, const char *sql, vdx_error *err)
{
    return sql_exec(book->db, sql, err, "%s", book->path);
}

static sqlite3_stmt *db_prepare(vdx_concepts *book, const char *sql, vdx_error *err)
{
    return sql_prepare(book->db, sql, err, "%s", book->path);
}

static int begin_write(vdx_concepts *book, vdx_error *err)
{
    sql_rollback(book->db); /* a transaction a failed rollback left open */
    return db_exec(book, "BEGIN IMMEDIATE", err);
}

static int commit(vdx_concepts *book, vdx_error *err)
{
    return db_exec(book, "COMMIT", err);
}

static void rollback(vdx_concepts *book) { sql_rollback(book->db); }

/* Ends a write transaction begun with begin_write: commits when rc (the status so far) is
 * 0, rolls back otherwise or when the commit fails. Returns the final status. */
static int end_write(vdx_concepts *book, int rc, vdx_error *err)
{
    if (rc == 0)
        rc = commit(book, err);
    if (rc != 0)
        rollback(book);
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
        return vdx_fail(err, "a concept name must not be empty");
    size_t len = strlen(name), bad;
    if (len > VDX_CONCEPT_NAME_MAX)
        return vdx_fail(err, "concept name is %zu bytes long; the limit is %d", len,
                        VDX_CONCEPT_NAME_MAX);
    if (vdx_utf8_check(name, len, &bad) != 0)
        return vdx_fail(err, "concept name is not valid UTF-8 (byte %zu)", bad);
    int visible = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7F)
            return vdx_fail(err, "concept name contains a control character (byte %zu)", i);
        visible |= c != ' ';
    }
    if (!visible)
        return vdx_fail(err, "a concept name must not be only spaces");
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return vdx_fail(err, "a concept cannot be named '%s': no URL path can address it", name);
    return 0;
}

int vdx_concept_check_name(const char *name, vdx_error *err) { return concept_name_check(name, err); }

static int weight_is_usable(const float *w, int dims)
{
    double norm2 = 0;
    for (int j = 0; j < dims; j++) {
        if (!isfinite(w[j]))
            return 0;
        norm2 += (double)w[j] * w[j];
    }
    return norm2 > 0;
}

static double weight_norm(const float *w, int dims)
{
    double norm2 = 0;
    for (int j = 0; j < dims; j++)
        norm2 += (double)w[j] * w[j];
    return sqrt(norm2);
}

/* ---- open / close ------------------------------------------------------------------- */

static int schema_version(vdx_concepts *book, int *version, vdx_error *err)
{
    sqlite3_stmt *stmt = db_prepare(book, "PRAGMA user_version", err);
    if (!stmt)
        return -1;
    int rc = sqlite3_step(stmt);
    *version = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : db_fail(book, err, "reading the schema version");
}

/* Brings a book of an older version up to date (inside the opening transaction). */
static int migrate(vdx_concepts *book, vdx_error *err)
{
    int version;
    if (schema_version(book, &version, err) != 0)
        return -1;
    if (version > 2)
        return vdx_fail(err, "%s: schema version %d is newer than this vdx (2)", book->path,
                        version);
    return version < 2 ? db_exec(book, schema_v2_sql, err) : 0;
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
    if (db_exec(book, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err) != 0 ||
        db_exec(book, "BEGIN IMMEDIATE", err) != 0 || db_exec(book, schema_sql, err) != 0 ||
        migrate(book, err) != 0 || commit(book, err) != 0) {
        rollback(book);
        sqlite3_close(book->db);
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

int concept_find(vdx_concepts *book, const char *name, concept_record *rec, vdx_error *err)
{
    memset(rec, 0, sizeof *rec);
    if (!name)
        return vdx_fail(err, "no concept name given");
    sqlite3_stmt *stmt = db_prepare(
        book,
        "SELECT id, name, prompt, examples, created, updated, model_name, model_fingerprint,"
        " dims, initial_weight, threshold FROM concepts WHERE name = ?1",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            vdx_fail_kind(err, VDX_ERR_NOT_FOUND, "no concept named '%s'", name);
        else
            db_fail(book, err, "reading a concept");
        sqlite3_finalize(stmt);
        return -1;
    }
    rec->id = sqlite3_column_int64(stmt, 0);
    rec->name = dup_text(sqlite3_column_text(stmt, 1));
    rec->prompt = dup_text(sqlite3_column_text(stmt, 2));
    rec->examples_json = dup_text(sqlite3_column_text(stmt, 3));
    rec->created = dup_text(sqlite3_column_text(stmt, 4));
    rec->updated = dup_text(sqlite3_column_text(stmt, 5));
    snprintf(rec->model.name, sizeof rec->model.name, "%s", sqlite3_column_text(stmt, 6));
    snprintf(rec->model.config_hash, sizeof rec->model.config_hash, "%s",
             sqlite3_column_text(stmt, 7));
    rec->dims = rec->model.dims = sqlite3_column_int(stmt, 8);
    rec->threshold = sqlite3_column_double(stmt, 10);
    int ok = blob_to_weight(stmt, 9, rec->dims, &rec->initial_weight, "the initial weight",
                            name, err);
    sqlite3_finalize(stmt);
    if (ok != 0) {
        concept_record_free(rec);
        return -1;
    }

    stmt = db_prepare(book,
                      "SELECT round, iters, lr, weight FROM rounds WHERE concept = ?1"
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
    } else if (rc == SQLITE_DONE) {
        rec->weight = malloc((size_t)rec->dims * sizeof(float));
        ok = rec->weight ? 0 : vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        if (rec->weight)
            memcpy(rec->weight, rec->initial_weight, (size_t)rec->dims * sizeof(float));
    } else {
        ok = db_fail(book, err, "reading the rounds of a concept");
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
        free(set->urls[i]);
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

int concept_labels_load(vdx_concepts *book, int64_t concept_id, label_set *set, vdx_error *err)
{
    memset(set, 0, sizeof *set);
    sqlite3_stmt *stmt = db_prepare(
        book, "SELECT item, url, label, time FROM labels WHERE concept = ?1 ORDER BY seq", err);
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
            char **urls = realloc(set->urls, cap * sizeof *urls);
            if (urls)
                set->urls = urls;
            char **times = realloc(set->times, cap * sizeof *times);
            if (times)
                set->times = times;
            int *labels = realloc(set->labels, cap * sizeof *labels);
            if (labels)
                set->labels = labels;
            if (!ids || !urls || !times || !labels) {
                sqlite3_finalize(stmt);
                label_set_free(set);
                return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for %zu labels", cap);
            }
        }
        set->ids[set->n] = dup_text(sqlite3_column_text(stmt, 0));
        set->urls[set->n] = dup_text(sqlite3_column_text(stmt, 1));
        set->times[set->n] = dup_text(sqlite3_column_text(stmt, 3));
        set->labels[set->n] = sqlite3_column_int(stmt, 2);
        int lost = !set->ids[set->n] || !set->times[set->n] ||
                   (!set->urls[set->n] && sqlite3_column_type(stmt, 1) != SQLITE_NULL);
        set->n++;
        if (lost) { /* id and time are NOT NULL: a missing copy is a failed allocation */
            sqlite3_finalize(stmt);
            label_set_free(set);
            return vdx_fail_oom(err, "reading the labels of %s", book->path);
        }
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        label_set_free(set);
        return db_fail(book, err, "reading labels");
    }
    return 0;
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
    sqlite3_stmt *stmt = db_prepare(
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
        cJSON_Delete(metrics);
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
        return db_fail(book, err, "reading the rounds of a concept");
    }
    *history = list;
    return 0;
}

/* Label counts and the number of label changes since the last round: the changes made
 * since, and the undone changes of earlier rounds. */
static int concept_counts(vdx_concepts *book, const concept_record *rec, int *positive,
                          int *negative, int *pending, vdx_error *err)
{
    sqlite3_stmt *stmt = db_prepare(
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
    return rc == SQLITE_ROW ? 0 : db_fail(book, err, "counting labels");
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
    sqlite3_stmt *stmt = db_prepare(
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
    int positive = 0, negative = 0, pending = 0;
    cJSON *history = NULL;
    if (concept_counts(book, rec, &positive, &negative, &pending, err) != 0 ||
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
    ok = ok && cJSON_AddNumberToObject(c, "rounds", rec->rounds) &&
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

/* ---- create ------------------------------------------------------------------------- */

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
static int check_ids_known(vdx_concepts *book, const char *const *ids, size_t n,
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

static int concept_name_taken(vdx_concepts *book, const char *name, vdx_error *err)
{
    sqlite3_stmt *stmt = db_prepare(book, "SELECT 1 FROM concepts WHERE name = ?1", err);
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_ROW)
        return vdx_fail_kind(err, VDX_ERR_CONFLICT, "a concept named '%s' already exists", name);
    return rc == SQLITE_DONE ? 0 : db_fail(book, err, "looking up a concept name");
}

/* Initial weight of a new concept from its prompt vector and/or examples. */
static int initial_weight(vdx_concepts *book, const vdx_concept_spec *spec, float *w,
                          int *truncated, vdx_error *err)
{
    const vdx_model_identity *ours = vdx_store_model(book->store);
    int dims = ours->dims;
    float *text = NULL, *mean = NULL;
    int rc = 0;
    if (spec->text_vector) {
        if (spec->text_model && (strcmp(spec->text_model->config_hash, ours->config_hash) != 0 ||
                                 spec->text_model->dims != dims))
            return model_mismatch_fail(err, "the prompt's text vector comes from",
                                       spec->text_model, ours);
        text = malloc((size_t)dims * sizeof *text);
        if (!text)
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        memcpy(text, spec->text_vector, (size_t)dims * sizeof *text);
    } else if (spec->prompt && spec->model) {
        vdx_model_identity theirs;
        vdx_clip_identity(spec->model, &theirs);
        if (strcmp(theirs.config_hash, ours->config_hash) != 0 || theirs.dims != dims)
            return model_mismatch_fail(err, "the prompt would be embedded by", &theirs, ours);
        text = malloc((size_t)dims * sizeof *text);
        if (!text)
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        if (vdx_clip_embed_text(spec->model, spec->prompt, text, truncated, err) != 0) {
            free(text);
            return vdx_error_prefix(err, "embedding the prompt");
        }
    } else if (spec->prompt) {
        return vdx_fail(err, "concept '%s': the prompt needs its text vector or a model to "
                             "embed it", spec->name);
    }
    if (spec->n_examples) {
        float *vectors = malloc(spec->n_examples * (size_t)dims * sizeof *vectors);
        mean = calloc((size_t)dims, sizeof *mean);
        if (!vectors || !mean) {
            rc = vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for %zu examples", spec->n_examples);
        } else if ((rc = check_ids_known(book, spec->example_ids, spec->n_examples, err)) == 0 &&
                   (rc = vdx_store_get_vectors(book->store, spec->example_ids, spec->n_examples,
                                               vectors, err)) == 0) {
            for (int j = 0; j < dims; j++) {
                double sum = 0;
                for (size_t i = 0; i < spec->n_examples; i++)
                    sum += vectors[i * (size_t)dims + (size_t)j];
                mean[j] = (float)(sum / (double)spec->n_examples);
            }
        }
        free(vectors);
    }
    if (rc == 0) {
        if (text && mean) {
            vdx_l2_normalize(text, dims);
            vdx_l2_normalize(mean, dims);
            for (int j = 0; j < dims; j++)
                w[j] = text[j] + mean[j];
        } else if (text) {
            memcpy(w, text, (size_t)dims * sizeof *w);
        } else if (mean) {
            memcpy(w, mean, (size_t)dims * sizeof *w);
        } else {
            rc = vdx_fail(err, "concept '%s' needs a prompt or example items to start from",
                          spec->name);
        }
    }
    if (rc == 0 && !weight_is_usable(w, dims))
        rc = vdx_fail(err, "concept '%s': the initial weight is zero or not finite",
                      spec->name);
    free(text);
    free(mean);
    return rc;
}

static int load_json(vdx_concepts *book, const char *name, cJSON **concept, vdx_error *err)
{
    concept_record rec;
    if (concept_find(book, name, &rec, err) != 0)
        return -1;
    int rc = concept_json(book, &rec, 0, concept, err);
    concept_record_free(&rec);
    return rc;
}

static int insert_concept(vdx_concepts *book, const char *name, const char *prompt,
                          const char *examples_json, const vdx_model_identity *model,
                          const float *initial, double threshold, int64_t *id, vdx_error *err)
{
    char now[32];
    clock_utc_iso_now(now);
    sqlite3_stmt *stmt = db_prepare(
        book,
        "INSERT INTO concepts(name, prompt, examples, created, updated, model_name,"
        " model_fingerprint, dims, initial_weight, threshold)"
        " VALUES(?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9)",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (prompt)
        sqlite3_bind_text(stmt, 2, prompt, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, examples_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, model->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, model->config_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 7, model->dims);
    sqlite3_bind_blob(stmt, 8, initial, model->dims * (int)sizeof(float), SQLITE_STATIC);
    sqlite3_bind_double(stmt, 9, threshold);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return db_fail(book, err, "inserting a concept");
    *id = sqlite3_last_insert_rowid(book->db);
    return 0;
}

int vdx_concept_create(vdx_concepts *book, const vdx_concept_spec *spec, cJSON **concept,
                       vdx_error *err)
{
    if (concept)
        *concept = NULL;
    if (concept_name_check(spec->name, err) != 0)
        return -1;
    const vdx_model_identity *model = vdx_store_model(book->store);
    float *w = malloc((size_t)model->dims * sizeof *w);
    if (!w)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    cJSON *examples = cJSON_CreateArray();
    for (size_t i = 0; i < spec->n_examples; i++)
        cJSON_AddItemToArray(examples, cJSON_CreateString(spec->example_ids[i]));
    char *examples_json = cJSON_PrintUnformatted(examples);
    cJSON_Delete(examples);

    pthread_mutex_lock(&book->lock);
    int64_t id;
    int truncated = 0;
    int rc = initial_weight(book, spec, w, &truncated, err);
    if (rc == 0 && (rc = begin_write(book, err)) == 0) {
        if ((rc = concept_name_taken(book, spec->name, err)) == 0)
            rc = insert_concept(book, spec->name, spec->prompt, examples_json, model, w, 0, &id,
                                err);
        rc = end_write(book, rc, err);
    }
    if (rc == 0 && concept)
        rc = load_json(book, spec->name, concept, err);
    if (rc == 0 && concept && truncated)
        cJSON_AddTrueToObject(*concept, "prompt_truncated");
    pthread_mutex_unlock(&book->lock);
    free(w);
    cJSON_free(examples_json);
    return rc;
}

int concept_insert_imported(vdx_concepts *book, const char *name, const char *prompt,
                            const vdx_model_identity *model, const float *initial_weight,
                            double threshold, const cJSON *history, vdx_error *err)
{
    if (begin_write(book, err) != 0)
        return -1;
    int64_t id;
    int rc = concept_name_taken(book, name, err);
    if (rc == 0)
        rc = insert_concept(book, name, prompt, "[]", model, initial_weight, threshold, &id,
                            err);
    sqlite3_stmt *stmt = rc == 0 ? db_prepare(book,
                                              "INSERT INTO rounds(concept, round, time,"
                                              " labels_added, positive, negative, iters, lr,"
                                              " losses, training_accuracy, weight)"
                                              " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
                                              err)
                                 : NULL;
    if (rc == 0 && !stmt)
        rc = -1;
    float *w = malloc((size_t)model->dims * sizeof *w);
    const cJSON *r;
    int round = 0;
    cJSON_ArrayForEach(r, history)
    {
        if (rc != 0 || !w)
            break;
        round++;
        const cJSON *weight = cJSON_GetObjectItem(r, "weight");
        for (int j = 0; j < model->dims; j++)
            w[j] = (float)cJSON_GetArrayItem(weight, j)->valuedouble;
        char *losses = cJSON_PrintUnformatted(cJSON_GetObjectItem(r, "losses"));
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, id);
        sqlite3_bind_int(stmt, 2, round);
        sqlite3_bind_text(stmt, 3, cJSON_GetObjectItem(r, "time")->valuestring, -1,
                          SQLITE_STATIC);
        sqlite3_bind_int(stmt, 4, cJSON_GetObjectItem(r, "labels_added")->valueint);
        sqlite3_bind_int(stmt, 5, cJSON_GetObjectItem(r, "positive")->valueint);
        sqlite3_bind_int(stmt, 6, cJSON_GetObjectItem(r, "negative")->valueint);
        sqlite3_bind_int(stmt, 7, cJSON_GetObjectItem(r, "iters")->valueint);
        sqlite3_bind_double(stmt, 8, cJSON_GetObjectItem(r, "lr")->valuedouble);
        sqlite3_bind_text(stmt, 9, losses ? losses : "[]", -1, SQLITE_STATIC);
        sqlite3_bind_double(stmt, 10,
                            cJSON_GetObjectItem(r, "training_accuracy")->valuedouble);
        sqlite3_bind_blob(stmt, 11, w, model->dims * (int)sizeof(float), SQLITE_STATIC);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = db_fail(book, err, "inserting an imported round");
        cJSON_free(losses);
    }
    if (!w && rc == 0)
        rc = vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    free(w);
    sqlite3_finalize(stmt);
    return end_write(book, rc, err);
}

/* ---- list / get / rename / delete / copy / threshold -------------------------------- */

int vdx_concept_list(vdx_concepts *book, cJSON **list, vdx_error *err)
{
    *list = NULL;
    pthread_mutex_lock(&book->lock);
    sqlite3_stmt *stmt = db_prepare(
        book,
        "SELECT c.name, c.prompt, c.created, c.updated, c.threshold,"
        " (SELECT COUNT(*) FROM labels l WHERE l.concept = c.id AND l.label = 1),"
        " (SELECT COUNT(*) FROM labels l WHERE l.concept = c.id AND l.label = 0),"
        " (SELECT COALESCE(MAX(round), 0) FROM rounds r WHERE r.concept = c.id)"
        " FROM concepts c ORDER BY c.id",
        err);
    int rc = stmt ? 0 : -1, step;
    cJSON *out = cJSON_CreateArray();
    while (stmt && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", (const char *)sqlite3_column_text(stmt, 0));
        if (sqlite3_column_type(stmt, 1) == SQLITE_NULL)
            cJSON_AddNullToObject(c, "prompt");
        else
            cJSON_AddStringToObject(c, "prompt", (const char *)sqlite3_column_text(stmt, 1));
        cJSON_AddStringToObject(c, "created", (const char *)sqlite3_column_text(stmt, 2));
        cJSON_AddStringToObject(c, "updated", (const char *)sqlite3_column_text(stmt, 3));
        cJSON_AddNumberToObject(c, "threshold", sqlite3_column_double(stmt, 4));
        cJSON_AddNumberToObject(c, "positive", sqlite3_column_int(stmt, 5));
        cJSON_AddNumberToObject(c, "negative", sqlite3_column_int(stmt, 6));
        cJSON_AddNumberToObject(c, "rounds", sqlite3_column_int(stmt, 7));
        cJSON_AddItemToArray(out, c);
    }
    if (stmt && step != SQLITE_DONE)
        rc = db_fail(book, err, "listing concepts");
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&book->lock);
    if (rc != 0)
        cJSON_Delete(out);
    else
        *list = out;
    return rc;
}

int vdx_concept_get(vdx_concepts *book, const char *name, int with_weight, cJSON **concept,
                    vdx_error *err)
{
    *concept = NULL;
    pthread_mutex_lock(&book->lock);
    concept_record rec;
    int rc = -1;
    if (db_exec(book, "BEGIN", err) == 0) {
        if (concept_find(book, name, &rec, err) == 0) {
            rc = concept_json(book, &rec, with_weight, concept, err);
            concept_record_free(&rec);
        }
        rollback(book);
    }
    pthread_mutex_unlock(&book->lock);
    return rc;
}

int vdx_concept_weight(vdx_concepts *book, const char *name, float *w, int dims,
                       vdx_error *err)
{
    pthread_mutex_lock(&book->lock);
    concept_record rec;
    int rc = concept_find(book, name, &rec, err);
    if (rc == 0) {
        if (rec.dims != dims)
            rc = vdx_fail(err, "concept '%s' has %d dims, not %d", name, rec.dims, dims);
        else
            memcpy(w, rec.weight, (size_t)dims * sizeof *w);
        concept_record_free(&rec);
    }
    pthread_mutex_unlock(&book->lock);
    return rc;
}

/* Runs one UPDATE/DELETE bound to (text ?1, int64 ?2). */
static int run_on_concept(vdx_concepts *book, const char *sql, const char *text, int64_t id,
                          vdx_error *err)
{
    sqlite3_stmt *stmt = db_prepare(book, sql, err);
    if (!stmt)
        return -1;
    if (text)
        sqlite3_bind_text(stmt, 1, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, id);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : db_fail(book, err, "updating a concept");
}

static int touch(vdx_concepts *book, int64_t id, vdx_error *err)
{
    char now[32];
    clock_utc_iso_now(now);
    return run_on_concept(book, "UPDATE concepts SET updated = ?1 WHERE id = ?2", now, id,
                          err);
}

/* One change to a stored concept: runs inside change_concept's write transaction. */
typedef int (*concept_change)(vdx_concepts *book, const concept_record *rec, const void *arg,
                              vdx_error *err);

/* Finds the concept called name and applies change to it in one write transaction under
 * the book's lock: committed when the change succeeds, rolled back otherwise. */
static int change_concept(vdx_concepts *book, const char *name, concept_change change,
                          const void *arg, vdx_error *err)
{
    pthread_mutex_lock(&book->lock);
    int rc = begin_write(book, err);
    if (rc == 0) {
        concept_record rec;
        rc = concept_find(book, name, &rec, err);
        if (rc == 0)
            rc = change(book, &rec, arg, err);
        concept_record_free(&rec);
        rc = end_write(book, rc, err);
    }
    pthread_mutex_unlock(&book->lock);
    return rc;
}

typedef struct rename_args {
    const char *old_name, *new_name;
} rename_args;

static int rename_concept(vdx_concepts *book, const concept_record *rec, const void *arg,
                          vdx_error *err)
{
    const rename_args *names = arg;
    if (strcmp(names->old_name, names->new_name) == 0)
        return 0;
    int rc = concept_name_taken(book, names->new_name, err);
    if (rc == 0)
        rc = run_on_concept(book, "UPDATE concepts SET name = ?1 WHERE id = ?2",
                            names->new_name, rec->id, err);
    if (rc == 0)
        rc = touch(book, rec->id, err);
    return rc;
}

int vdx_concept_rename(vdx_concepts *book, const char *old_name, const char *new_name,
                       vdx_error *err)
{
    if (concept_name_check(new_name, err) != 0)
        return -1;
    rename_args names = {old_name, new_name};
    return change_concept(book, old_name, rename_concept, &names, err);
}

static int delete_concept(vdx_concepts *book, const concept_record *rec, const void *arg,
                          vdx_error *err)
{
    static const char *const deletes[] = {
        "DELETE FROM labels WHERE ?1 IS NULL AND concept = ?2",
        "DELETE FROM label_events WHERE ?1 IS NULL AND concept = ?2",
        "DELETE FROM rounds WHERE ?1 IS NULL AND concept = ?2",
        "DELETE FROM candidate_lists WHERE ?1 IS NULL AND concept = ?2",
        "DELETE FROM concepts WHERE ?1 IS NULL AND id = ?2",
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof deletes / sizeof deletes[0]; i++)
        rc = run_on_concept(book, deletes[i], NULL, rec->id, err);
    return rc;
}

int vdx_concept_delete(vdx_concepts *book, const char *name, vdx_error *err)
{
    return change_concept(book, name, delete_concept, NULL, err);
}

static int copy_concept(vdx_concepts *book, const concept_record *rec, const void *arg,
                        vdx_error *err)
{
    static const char *const copies[] = {
        "INSERT INTO labels(concept, item, url, label, time, seq)"
        " SELECT ?1, item, url, label, time, seq FROM labels WHERE concept = ?2",
        "INSERT INTO label_events(concept, round, item, new_label, new_url, time, old_label,"
        " old_url, old_time, old_seq, action, undone) SELECT ?1, round, item, new_label,"
        " new_url, time, old_label, old_url, old_time, old_seq, action, undone"
        " FROM label_events WHERE concept = ?2 ORDER BY seq",
        "INSERT INTO rounds(concept, round, time, labels_added, positive, negative, iters, lr,"
        " losses, training_accuracy, weight, metrics) SELECT ?1, round, time, labels_added,"
        " positive, negative, iters, lr, losses, training_accuracy, weight, metrics"
        " FROM rounds WHERE concept = ?2",
    };
    const char *new_name = arg;
    int64_t new_id = 0;
    int rc = concept_name_taken(book, new_name, err);
    if (rc == 0)
        rc = insert_concept(book, new_name, rec->prompt, rec->examples_json, &rec->model,
                            rec->initial_weight, rec->threshold, &new_id, err);
    for (size_t i = 0; rc == 0 && i < sizeof copies / sizeof copies[0]; i++) {
        sqlite3_stmt *stmt = db_prepare(book, copies[i], err);
        if (!stmt)
            return -1;
        sqlite3_bind_int64(stmt, 1, new_id);
        sqlite3_bind_int64(stmt, 2, rec->id);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = db_fail(book, err, "copying a concept");
        sqlite3_finalize(stmt);
    }
    return rc;
}

int vdx_concept_copy(vdx_concepts *book, const char *name, const char *new_name,
                     vdx_error *err)
{
    if (concept_name_check(new_name, err) != 0)
        return -1;
    return change_concept(book, name, copy_concept, new_name, err);
}

static int set_threshold(vdx_concepts *book, const concept_record *rec, const void *arg,
                         vdx_error *err)
{
    sqlite3_stmt *stmt = db_prepare(book, "UPDATE concepts SET threshold = ?1 WHERE id = ?2",
                                    err);
    if (!stmt)
        return -1;
    sqlite3_bind_double(stmt, 1, *(const double *)arg);
    sqlite3_bind_int64(stmt, 2, rec->id);
    int rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : db_fail(book, err, "setting the threshold");
    sqlite3_finalize(stmt);
    return rc == 0 ? touch(book, rec->id, err) : rc;
}

int vdx_concept_set_threshold(vdx_concepts *book, const char *name, double threshold,
                              vdx_error *err)
{
    if (!isfinite(threshold))
        return vdx_fail(err, "the threshold must be a finite number");
    return change_concept(book, name, set_threshold, &threshold, err);
}

/* ---- labels ------------------------------------------------------------------------- */

/* The current label of an item (-1 when unlabelled) with its url, time and seq. */
typedef struct current_label {
    int label;
    char *url, *time;
    int64_t seq;
} current_label;

static int read_current_label(vdx_concepts *book, int64_t concept, const char *item,
                              current_label *cur, vdx_error *err)
{
    memset(cur, 0, sizeof *cur);
    cur->label = -1;
    sqlite3_stmt *stmt = db_prepare(
        book, "SELECT label, url, time, seq FROM labels WHERE concept = ?1 AND item = ?2",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    sqlite3_bind_text(stmt, 2, item, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        cur->label = sqlite3_column_int(stmt, 0);
        cur->url = dup_text(sqlite3_column_text(stmt, 1));
        cur->time = dup_text(sqlite3_column_text(stmt, 2));
        cur->seq = sqlite3_column_int64(stmt, 3);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(book, err, "reading a label");
}

/* Sets (label >= 0) or removes (label < 0) an item's label row. */
static int write_label(vdx_concepts *book, int64_t concept, const char *item, int label,
                       const char *url, const char *time, int64_t seq, vdx_error *err)
{
    sqlite3_stmt *stmt = db_prepare(
        book,
        label >= 0 ? "INSERT INTO labels(concept, item, url, label, time, seq)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(concept, item) DO UPDATE"
                     " SET url = excluded.url, label = excluded.label, time = excluded.time,"
                     " seq = excluded.seq"
                   : "DELETE FROM labels WHERE concept = ?1 AND item = ?2",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    sqlite3_bind_text(stmt, 2, item, -1, SQLITE_STATIC);
    if (label >= 0) {
        if (url)
            sqlite3_bind_text(stmt, 3, url, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 4, label);
        sqlite3_bind_text(stmt, 5, time, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 6, seq);
    }
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : db_fail(book, err, "writing a label");
}

/* Applies one change: logs the event (with what it replaces) and updates the label. */
static int apply_change(vdx_concepts *book, const concept_record *rec, int64_t action,
                        const char *item, int label, const char *url, const char *now,
                        int *changed, vdx_error *err)
{
    current_label cur;
    if (read_current_label(book, rec->id, item, &cur, err) != 0)
        return -1;
    int rc = 0;
    if (cur.label != (label < 0 ? -1 : label)) {
        sqlite3_stmt *stmt = db_prepare(
            book,
            "INSERT INTO label_events(concept, round, item, new_label, new_url, time,"
            " old_label, old_url, old_time, old_seq, action)"
            " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
            err);
        if (!stmt) {
            rc = -1;
        } else {
            sqlite3_bind_int64(stmt, 1, rec->id);
            sqlite3_bind_int(stmt, 2, rec->rounds + 1);
            sqlite3_bind_text(stmt, 3, item, -1, SQLITE_STATIC);
            if (label >= 0)
                sqlite3_bind_int(stmt, 4, label);
            if (url)
                sqlite3_bind_text(stmt, 5, url, -1, SQLITE_STATIC);
            sqlite3_bind_text(stmt, 6, now, -1, SQLITE_STATIC);
            if (cur.label >= 0) {
                sqlite3_bind_int(stmt, 7, cur.label);
                if (cur.url)
                    sqlite3_bind_text(stmt, 8, cur.url, -1, SQLITE_STATIC);
                sqlite3_bind_text(stmt, 9, cur.time, -1, SQLITE_STATIC);
                sqlite3_bind_int64(stmt, 10, cur.seq);
            }
            sqlite3_bind_int64(stmt, 11, action);
            if (sqlite3_step(stmt) != SQLITE_DONE)
                rc = db_fail(book, err, "logging a label change");
            sqlite3_finalize(stmt);
        }
        if (rc == 0)
            rc = write_label(book, rec->id, item, label, url, now,
                             sqlite3_last_insert_rowid(book->db), err);
        if (rc == 0)
            (*changed)++;
    }
    free(cur.url);
    free(cur.time);
    return rc;
}

static int next_action(vdx_concepts *book, int64_t concept, int64_t *action, vdx_error *err);

/* The url of an item as the store knows it (NULL when it has none). */
static int item_url(vdx_concepts *book, const char *id, char **url, vdx_error *err)
{
    *url = NULL;
    cJSON *item = NULL;
    if (vdx_store_get_item(book->store, id, &item, err) != 0)
        return -1;
    const cJSON *u = cJSON_GetObjectItem(item, "url");
    if (cJSON_IsString(u))
        *url = strdup(u->valuestring);
    cJSON_Delete(item);
    return 0;
}

int vdx_concept_label(vdx_concepts *book, const char *name, const vdx_label_change *changes,
                      size_t n, cJSON **result, vdx_error *err)
{
    if (result)
        *result = NULL;
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    char **urls = calloc(n ? n : 1, sizeof *urls);
    unsigned char *superseded = calloc(n ? n : 1, 1);
    if (!ids || !urls || !superseded) {
        free(ids);
        free(urls);
        free(superseded);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for %zu label changes", n);
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        ids[i] = changes[i].id;
        if (!changes[i].id || !*changes[i].id)
            rc = vdx_fail(err, "label change %zu has no item id", i + 1);
        else if (changes[i].label != VDX_LABEL_POSITIVE &&
                 changes[i].label != VDX_LABEL_NEGATIVE && changes[i].label != VDX_LABEL_CLEAR)
            rc = vdx_fail(err, "label change %zu (item '%s'): label %d is not 1, 0 or -1",
                          i + 1, changes[i].id, changes[i].label);
    }
    /* an id given twice keeps its last change: index each id by its position, later
     * positions overwriting earlier ones */
    if (rc == 0 && n > 1) {
        int *positions = malloc(n * sizeof *positions);
        label_set by_position = {.n = n, .ids = (char **)ids, .labels = positions};
        label_index index;
        if (!positions) {
            rc = vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        } else {
            for (size_t i = 0; i < n; i++)
                positions[i] = (int)i;
            rc = label_index_build(&by_position, &index, err);
            for (size_t i = 0; rc == 0 && i < n; i++)
                superseded[i] = label_index_get(&index, ids[i]) != (int)i;
            if (rc == 0)
                label_index_free(&index);
        }
        free(positions);
    }
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    if (rc == 0)
        rc = concept_find(book, name, &rec, err);
    if (rc == 0)
        rc = check_ids_known(book, ids, n, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!superseded[i] && changes[i].label >= 0)
            rc = item_url(book, ids[i], &urls[i], err);
    int changed = 0;
    int64_t action = 0;
    if (rc == 0 && (rc = begin_write(book, err)) == 0) {
        /* reload inside the transaction: another process may have trained meanwhile */
        concept_record_free(&rec);
        rc = concept_find(book, name, &rec, err);
        char now[32];
        clock_utc_iso_now(now);
        if (rc == 0)
            rc = next_action(book, rec.id, &action, err);
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (!superseded[i])
                rc = apply_change(book, &rec, action, ids[i], changes[i].label, urls[i], now,
                                  &changed, err);
        /* a new action ends what could be redone */
        if (rc == 0 && changed)
            rc = run_on_concept(book,
                                "DELETE FROM label_events WHERE undone = 1 AND ?1 IS NULL"
                                " AND concept = ?2",
                                NULL, rec.id, err);
        if (rc == 0 && changed)
            rc = touch(book, rec.id, err);
        rc = end_write(book, rc, err);
    }
    if (rc == 0 && result) {
        int positive = 0, negative = 0, pending = 0;
        rc = concept_counts(book, &rec, &positive, &negative, &pending, err);
        if (rc == 0) {
            *result = cJSON_CreateObject();
            cJSON_AddNumberToObject(*result, "changed", changed);
            if (changed)
                cJSON_AddNumberToObject(*result, "action", (double)action);
            else
                cJSON_AddNullToObject(*result, "action");
            cJSON_AddNumberToObject(*result, "positive", positive);
            cJSON_AddNumberToObject(*result, "negative", negative);
            cJSON_AddNumberToObject(*result, "pending", pending);
        }
    }
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    for (size_t i = 0; i < n; i++)
        free(urls[i]);
    free(urls);
    free(ids);
    free(superseded);
    return rc;
}

int vdx_concept_labels(vdx_concepts *book, const char *name, cJSON **labels, vdx_error *err)
{
    *labels = NULL;
    pthread_mutex_lock(&book->lock);
    concept_record rec;
    label_set set;
    int rc = concept_find(book, name, &rec, err);
    if (rc == 0) {
        rc = concept_labels_load(book, rec.id, &set, err);
        concept_record_free(&rec);
    }
    if (rc == 0) {
        cJSON *list = cJSON_CreateArray();
        for (size_t i = 0; i < set.n; i++)
            cJSON_AddItemToArray(list, label_set_item_json(&set, i));
        label_set_free(&set);
        *labels = list;
    }
    pthread_mutex_unlock(&book->lock);
    return rc;
}

/* ---- train / undo ------------------------------------------------------------------- */

int vdx_concept_train(vdx_concepts *book, const char *name, int iters, float lr,
                      cJSON **round, vdx_error *err)
{
    if (round)
        *round = NULL;
    if (iters <= 0)
        iters = VDX_FIT_ITERS;
    if (!(lr > 0))
        lr = VDX_FIT_LR;
    if (iters > 10000 || !isfinite(lr))
        return vdx_fail(err, "train: iters %d / lr %g out of range (iters <= 10000)", iters,
                        lr);
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    label_set set = {0};
    float *X = NULL, *y = NULL, *losses = malloc((size_t)iters * sizeof *losses);
    int rc = losses ? begin_write(book, err) : vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    if (rc == 0 && (rc = concept_find(book, name, &rec, err)) == 0 &&
        (rc = concept_check_model(book, &rec, err)) == 0 &&
        (rc = concept_labels_load(book, rec.id, &set, err)) == 0) {
        if (set.n == 0)
            rc = vdx_fail(err, "concept '%s' has no labels to train on", name);
        X = rc == 0 ? malloc(set.n * (size_t)rec.dims * sizeof *X) : NULL;
        y = rc == 0 ? malloc(set.n * sizeof *y) : NULL;
        if (rc == 0 && (!X || !y))
            rc = vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for %zu labelled vectors", set.n);
        if (rc == 0)
            rc = vdx_store_get_vectors(book->store, (const char *const *)set.ids, set.n, X, err);
    }
    int positive = 0, negative = 0, pending = 0;
    double accuracy = 0;
    if (rc == 0) {
        for (size_t i = 0; i < set.n; i++)
            y[i] = (float)set.labels[i];
        rc = vdx_classifier_fit(X, y, (int)set.n, rec.dims, rec.weight, iters, lr, losses, err);
        if (rc == 0 && !weight_is_usable(rec.weight, rec.dims))
            rc = vdx_fail(err, "concept '%s': training produced a weight that is not finite "
                               "(lr %g too large?)", name, lr);
        if (rc != 0)
            vdx_error_prefix(err, "training concept '%s'", name);
    }
    cJSON *cv = NULL;
    if (rc == 0) {
        accuracy = vdx_classifier_accuracy(X, y, (int)set.n, rec.dims, rec.weight,
                                           rec.threshold);
        rc = concept_counts(book, &rec, &positive, &negative, &pending, err);
    }
    if (rc == 0) {
        /* the round's metrics, measured as evaluate would right after it */
        concept_record trained = rec;
        trained.rounds = rec.rounds + 1;
        trained.last_iters = iters;
        trained.last_lr = lr;
        rc = concept_cross_validate(&trained, &set, X, y, &cv, err);
    }
    if (rc == 0) {
        cJSON *loss_list = json_float_array(losses, iters);
        char *losses_json = cJSON_PrintUnformatted(loss_list);
        cJSON_Delete(loss_list);
        char now[32];
        clock_utc_iso_now(now);
        sqlite3_stmt *stmt = db_prepare(
            book,
            "INSERT INTO rounds(concept, round, time, labels_added, positive, negative, iters,"
            " lr, losses, training_accuracy, weight, metrics)"
            " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
            err);
        cJSON *metrics = cJSON_CreateObject();
        cJSON_AddItemReferenceToObject(metrics, "cross_validation", cv);
        cJSON_AddNumberToObject(metrics, "threshold", rec.threshold);
        char *metrics_json = cJSON_PrintUnformatted(metrics);
        cJSON_Delete(metrics);
        if (!stmt || !losses_json || !metrics_json) {
            rc = stmt ? vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory") : -1;
        } else {
            sqlite3_bind_int64(stmt, 1, rec.id);
            sqlite3_bind_int(stmt, 2, rec.rounds + 1);
            sqlite3_bind_text(stmt, 3, now, -1, SQLITE_STATIC);
            sqlite3_bind_int(stmt, 4, pending);
            sqlite3_bind_int(stmt, 5, positive);
            sqlite3_bind_int(stmt, 6, negative);
            sqlite3_bind_int(stmt, 7, iters);
            sqlite3_bind_double(stmt, 8, lr);
            sqlite3_bind_text(stmt, 9, losses_json, -1, SQLITE_STATIC);
            sqlite3_bind_double(stmt, 10, accuracy);
            sqlite3_bind_blob(stmt, 11, rec.weight, rec.dims * (int)sizeof(float),
                              SQLITE_STATIC); /* no copy that could fail: both live past the step */
            sqlite3_bind_text(stmt, 12, metrics_json, -1, SQLITE_STATIC);
            if (sqlite3_step(stmt) != SQLITE_DONE)
                rc = db_fail(book, err, "recording a round");
        }
        sqlite3_finalize(stmt);
        cJSON_free(losses_json);
        cJSON_free(metrics_json);
        if (rc == 0)
            rc = touch(book, rec.id, err);
    }
    rc = end_write(book, rc, err);
    if (rc == 0 && round) {
        /* the round is recorded: a result that cannot be built is reported, never
         * handed out with keys missing */
        cJSON *r = cJSON_CreateObject(), *loss_list = json_float_array(losses, iters);
        char now[32];
        clock_utc_iso_now(now);
        int ok = r && loss_list && cJSON_AddNumberToObject(r, "round", rec.rounds + 1) &&
                 cJSON_AddStringToObject(r, "time", now) &&
                 cJSON_AddNumberToObject(r, "labels_added", pending) &&
                 cJSON_AddNumberToObject(r, "positive", positive) &&
                 cJSON_AddNumberToObject(r, "negative", negative) &&
                 cJSON_AddNumberToObject(r, "iters", iters) &&
                 cJSON_AddNumberToObject(r, "lr", shortest_float(lr)) &&
                 cJSON_AddItemToObject(r, "losses", loss_list);
        if (ok)
            loss_list = NULL; /* r owns it */
        ok = ok && cJSON_AddNumberToObject(r, "training_accuracy", accuracy) &&
             cJSON_AddNumberToObject(r, "weight_norm", weight_norm(rec.weight, rec.dims));
        cJSON_Delete(loss_list);
        if (ok && cv) {
            ok = cJSON_AddItemToObject(r, "cross_validation", cv);
            if (ok)
                cv = NULL; /* r owns it */
        }
        if (ok) {
            *round = r;
        } else {
            cJSON_Delete(r);
            rc = vdx_fail_oom(err, "describing round %d of concept '%s' (it is recorded)",
                              rec.rounds + 1, name);
        }
    }
    cJSON_Delete(cv);
    pthread_mutex_unlock(&book->lock);
    concept_record_free(&rec);
    label_set_free(&set);
    free(X);
    free(y);
    free(losses);
    return rc;
}

/* ---- undo / redo / history ---------------------------------------------------------- */

/* The number the next label action of a concept gets. */
static int next_action(vdx_concepts *book, int64_t concept, int64_t *action, vdx_error *err)
{
    sqlite3_stmt *stmt = db_prepare(
        book, "SELECT COALESCE(MAX(action), 0) + 1 FROM label_events WHERE concept = ?1", err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    int rc = sqlite3_step(stmt);
    *action = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : db_fail(book, err, "numbering a label action");
}

/* The newest action not undone (undo) or the oldest undone one (redo); 0 when none. */
static int pick_action(vdx_concepts *book, int64_t concept, int redo, int64_t *action,
                       vdx_error *err)
{
    sqlite3_stmt *stmt = db_prepare(
        book,
        redo ? "SELECT COALESCE(MIN(action), 0) FROM label_events WHERE concept = ?1"
               " AND undone = 1"
             : "SELECT COALESCE(MAX(action), 0) FROM label_events WHERE concept = ?1"
               " AND undone = 0",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    int rc = sqlite3_step(stmt);
    *action = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : db_fail(book, err, "finding a label action");
}

/* Takes back (redo = 0: newest change first, each item back to what it replaced) or
 * replays (redo = 1: oldest first) the changes of one action and marks it. changes gets
 * [{"id","label","previous"}] as the labels are now and were before (may be NULL). */
static int replay_action(vdx_concepts *book, int64_t concept, int64_t action, int redo,
                         cJSON *changes, int *n, vdx_error *err)
{
    sqlite3_stmt *stmt = db_prepare(
        book,
        redo ? "SELECT item, new_label, new_url, time, seq, old_label FROM label_events"
               " WHERE concept = ?1 AND action = ?2 ORDER BY seq"
             : "SELECT item, old_label, old_url, old_time, old_seq, new_label FROM label_events"
               " WHERE concept = ?1 AND action = ?2 ORDER BY seq DESC",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    sqlite3_bind_int64(stmt, 2, action);
    int rc = 0, step;
    *n = 0;
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *item = (const char *)sqlite3_column_text(stmt, 0);
        int to = sqlite3_column_type(stmt, 1) == SQLITE_NULL ? -1 : sqlite3_column_int(stmt, 1);
        int from = sqlite3_column_type(stmt, 5) == SQLITE_NULL ? -1 : sqlite3_column_int(stmt, 5);
        rc = write_label(book, concept, item, to, (const char *)sqlite3_column_text(stmt, 2),
                         (const char *)sqlite3_column_text(stmt, 3),
                         sqlite3_column_int64(stmt, 4), err);
        if (rc == 0 && changes) {
            /* every key or none: a change listed with holes is wrong, and an item that
             * could not be attached is ours to free */
            cJSON *c = cJSON_CreateObject();
            cJSON *label = to < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(to);
            cJSON *previous = from < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(from);
            int ok = c && label && previous && cJSON_AddStringToObject(c, "id", item);
            if (ok && (ok = cJSON_AddItemToObject(c, "label", label)))
                label = NULL;
            if (ok && (ok = cJSON_AddItemToObject(c, "previous", previous)))
                previous = NULL;
            if (ok && (ok = cJSON_AddItemToArray(changes, c)))
                c = NULL;
            cJSON_Delete(c);
            cJSON_Delete(label);
            cJSON_Delete(previous);
            if (!ok)
                rc = vdx_fail_oom(err, "listing the changes of label action %lld",
                                  (long long)action);
        }
        (*n)++;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(book, err, "reading label events");
    sqlite3_finalize(stmt);
    if (rc != 0)
        return rc;
    stmt = db_prepare(book, "UPDATE label_events SET undone = ?3 WHERE concept = ?1 AND action = ?2",
                      err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    sqlite3_bind_int64(stmt, 2, action);
    sqlite3_bind_int(stmt, 3, !redo);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        rc = db_fail(book, err, "marking a label action");
    sqlite3_finalize(stmt);
    return rc;
}

/* Appends the counts after a change to a result. */
static int add_counts(vdx_concepts *book, const concept_record *rec, cJSON *out, vdx_error *err)
{
    int positive = 0, negative = 0, pending = 0;
    if (concept_counts(book, rec, &positive, &negative, &pending, err) != 0)
        return -1;
    if (!cJSON_AddNumberToObject(out, "positive", positive) ||
        !cJSON_AddNumberToObject(out, "negative", negative) ||
        !cJSON_AddNumberToObject(out, "pending", pending))
        return vdx_fail_oom(err, "describing the label counts");
    return 0;
}

static int undo_or_redo(vdx_concepts *book, const char *name, int redo, cJSON **result,
                        vdx_error *err)
{
    if (result)
        *result = NULL;
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    cJSON *out = cJSON_CreateObject(), *changes = cJSON_CreateArray();
    int64_t action = 0;
    int n = 0, rc = begin_write(book, err);
    if (rc == 0 && (rc = concept_find(book, name, &rec, err)) == 0 &&
        (rc = pick_action(book, rec.id, redo, &action, err)) == 0) {
        if (action == 0)
            rc = vdx_fail_kind(err, VDX_ERR_CONFLICT, "nothing to %s in concept '%s'", redo ? "redo" : "undo", name);
        else
            rc = replay_action(book, rec.id, action, redo, changes, &n, err);
        if (rc == 0)
            rc = touch(book, rec.id, err);
    }
    rc = end_write(book, rc, err);
    if (rc == 0) {
        int ok = out && cJSON_AddStringToObject(out, redo ? "redone" : "undone", "labels") &&
                 cJSON_AddNumberToObject(out, "action", (double)action) &&
                 cJSON_AddNumberToObject(out, redo ? "labels_redone" : "labels_reverted", n);
        if (ok && (ok = changes && cJSON_AddItemToObject(out, "changes", changes)))
            changes = NULL; /* out owns it */
        rc = ok ? add_counts(book, &rec, out, err)
                : vdx_fail_oom(err, "describing the %s in concept '%s' (it is recorded)",
                               redo ? "redo" : "undo", name);
    }
    if (rc == 0 && result) {
        *result = out;
        out = NULL;
    }
    cJSON_Delete(out);
    cJSON_Delete(changes);
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    return rc;
}

int vdx_concept_undo(vdx_concepts *book, const char *name, cJSON **result, vdx_error *err)
{
    return undo_or_redo(book, name, 0, result, err);
}

int vdx_concept_redo(vdx_concepts *book, const char *name, cJSON **result, vdx_error *err)
{
    return undo_or_redo(book, name, 1, result, err);
}

/* Runs a statement bound to (concept ?1, int ?2). */
static int run_on_round(vdx_concepts *book, const char *sql, int64_t concept, int round,
                        vdx_error *err)
{
    sqlite3_stmt *stmt = db_prepare(book, sql, err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    sqlite3_bind_int(stmt, 2, round);
    int rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : db_fail(book, err, "undoing a round");
    sqlite3_finalize(stmt);
    return rc;
}

int vdx_concept_undo_round(vdx_concepts *book, const char *name, int revert_labels,
                           cJSON **result, vdx_error *err)
{
    if (result)
        *result = NULL;
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    int rc = begin_write(book, err), round = 0, reverted = 0, kept = 0;
    if (rc == 0 && (rc = concept_find(book, name, &rec, err)) == 0) {
        round = rec.rounds;
        if (round == 0)
            rc = vdx_fail_kind(err, VDX_ERR_CONFLICT, "concept '%s' has no round to undo", name);
        /* the changes made since the round go with the changes it trained on */
        if (rc == 0)
            rc = run_on_round(book,
                              "UPDATE label_events SET round = ?2 WHERE concept = ?1"
                              " AND round = ?2 + 1",
                              rec.id, round, err);
        if (rc == 0)
            rc = run_on_round(book, "DELETE FROM rounds WHERE concept = ?1 AND round = ?2",
                              rec.id, round, err);
        if (rc == 0)
            rc = run_on_round(book, "DELETE FROM candidate_lists WHERE concept = ?1 AND round >= ?2",
                              rec.id, round, err);
        /* take back, newest first, every action of those changes still in force */
        while (rc == 0 && revert_labels) {
            sqlite3_stmt *stmt = db_prepare(
                book,
                "SELECT COALESCE(MAX(action), 0) FROM label_events WHERE concept = ?1"
                " AND round = ?2 AND undone = 0",
                err);
            if (!stmt) {
                rc = -1;
                break;
            }
            sqlite3_bind_int64(stmt, 1, rec.id);
            sqlite3_bind_int(stmt, 2, round);
            int64_t action = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
            sqlite3_finalize(stmt);
            if (action < 0)
                rc = db_fail(book, err, "finding a label action");
            if (action <= 0)
                break;
            int n = 0;
            rc = replay_action(book, rec.id, action, 0, NULL, &n, err);
            reverted += n;
        }
        if (rc == 0)
            rc = touch(book, rec.id, err);
    }
    rc = end_write(book, rc, err);
    if (rc == 0) {
        concept_record after;
        rc = concept_find(book, name, &after, err);
        int positive = 0, negative = 0;
        if (rc == 0)
            rc = concept_counts(book, &after, &positive, &negative, &kept, err);
        if (rc == 0 && result) {
            cJSON *out = cJSON_CreateObject();
            char weight[64];
            if (after.rounds)
                snprintf(weight, sizeof weight, "round %d", after.rounds);
            else
                snprintf(weight, sizeof weight, "initial");
            cJSON_AddStringToObject(out, "undone", "round");
            cJSON_AddNumberToObject(out, "round", round);
            cJSON_AddStringToObject(out, "weight", weight);
            cJSON_AddNumberToObject(out, "labels_reverted", reverted);
            cJSON_AddNumberToObject(out, "labels_kept", revert_labels ? 0 : kept);
            cJSON_AddNumberToObject(out, "positive", positive);
            cJSON_AddNumberToObject(out, "negative", negative);
            cJSON_AddNumberToObject(out, "pending", kept);
            *result = out;
        }
        if (rc == 0)
            concept_record_free(&after);
    }
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    return rc;
}

int vdx_concept_history(vdx_concepts *book, const char *name, int limit, cJSON **result,
                        vdx_error *err)
{
    *result = NULL;
    if (limit <= 0)
        limit = 100;
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    sqlite3_stmt *stmt = NULL;
    int rc = concept_find(book, name, &rec, err), step = SQLITE_DONE;
    if (rc == 0 && !(stmt = db_prepare(
                         book,
                         "SELECT action, seq, round, item, new_label, old_label, time, undone"
                         " FROM label_events WHERE concept = ?1 AND action IN (SELECT DISTINCT"
                         " action FROM label_events WHERE concept = ?1 ORDER BY action DESC"
                         " LIMIT ?2) ORDER BY action DESC, seq",
                         err)))
        rc = -1;
    cJSON *out = cJSON_CreateObject(), *actions = cJSON_AddArrayToObject(out, "actions");
    cJSON *current = NULL, *changes = NULL;
    int64_t current_action = -1, can_undo = 0, can_redo = 0;
    if (stmt) {
        sqlite3_bind_int64(stmt, 1, rec.id);
        sqlite3_bind_int(stmt, 2, limit);
        while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
            int64_t action = sqlite3_column_int64(stmt, 0);
            int undone = sqlite3_column_int(stmt, 7);
            if (action != current_action) {
                current_action = action;
                current = cJSON_CreateObject();
                cJSON_AddNumberToObject(current, "action", (double)action);
                cJSON_AddStringToObject(current, "time", (const char *)sqlite3_column_text(stmt, 6));
                cJSON_AddNumberToObject(current, "round", sqlite3_column_int(stmt, 2));
                cJSON_AddBoolToObject(current, "undone", undone);
                changes = cJSON_AddArrayToObject(current, "changes");
                cJSON_AddItemToArray(actions, current);
                can_undo |= !undone;
                can_redo |= undone;
            }
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "id", (const char *)sqlite3_column_text(stmt, 3));
            for (int col = 4; col <= 5; col++)
                cJSON_AddItemToObject(c, col == 4 ? "label" : "previous",
                                      sqlite3_column_type(stmt, col) == SQLITE_NULL
                                          ? cJSON_CreateNull()
                                          : cJSON_CreateNumber(sqlite3_column_int(stmt, col)));
            cJSON_AddItemToArray(changes, c);
        }
        sqlite3_finalize(stmt);
        if (step != SQLITE_DONE)
            rc = db_fail(book, err, "reading the label history");
    }
    if (rc == 0) {
        cJSON_AddBoolToObject(out, "can_undo", can_undo);
        cJSON_AddBoolToObject(out, "can_redo", can_redo);
        cJSON_AddNumberToObject(out, "rounds", rec.rounds);
        *result = out;
    } else {
        cJSON_Delete(out);
    }
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    return rc;
}

int vdx_concept_revert_action(vdx_concepts *book, const char *name, int64_t action,
                              cJSON **result, vdx_error *err)
{
    if (result)
        *result = NULL;
    /* the items of the action, with the label each had before it */
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    sqlite3_stmt *stmt = NULL;
    size_t n = 0, cap = 0;
    vdx_label_change *changes = NULL;
    char **ids = NULL;
    int rc = concept_find(book, name, &rec, err), step = SQLITE_DONE;
    if (rc == 0 && !(stmt = db_prepare(book,
                                       "SELECT item, old_label, undone FROM label_events"
                                       " WHERE concept = ?1 AND action = ?2 ORDER BY seq",
                                       err)))
        rc = -1;
    int undone = 0;
    if (stmt) {
        sqlite3_bind_int64(stmt, 1, rec.id);
        sqlite3_bind_int64(stmt, 2, action);
        while ((step = sqlite3_step(stmt)) == SQLITE_ROW && rc == 0) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                vdx_label_change *c = realloc(changes, cap * sizeof *c);
                char **i = realloc(ids, cap * sizeof *i);
                if (c)
                    changes = c;
                if (i)
                    ids = i;
                if (!c || !i) {
                    rc = vdx_fail(err, "out of memory");
                    break;
                }
            }
            ids[n] = dup_text(sqlite3_column_text(stmt, 0));
            changes[n].id = ids[n];
            changes[n].label = sqlite3_column_type(stmt, 1) == SQLITE_NULL
                                   ? VDX_LABEL_CLEAR
                                   : sqlite3_column_int(stmt, 1);
            undone = sqlite3_column_int(stmt, 2);
            n++;
        }
        sqlite3_finalize(stmt);
        if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
            rc = db_fail(book, err, "reading a label action");
    }
    if (rc == 0 && n == 0)
        rc = vdx_fail_kind(err, VDX_ERR_NOT_FOUND, "concept '%s' has no label action %lld", name, (long long)action);
    else if (rc == 0 && undone)
        rc = vdx_fail_kind(err, VDX_ERR_CONFLICT, "label action %lld of concept '%s' is undone already (redo brings it "
                           "back)", (long long)action, name);
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    /* one new action (so that it can be undone in turn) */
    if (rc == 0)
        rc = vdx_concept_label(book, name, changes, n, result, err);
    if (rc == 0 && result)
        cJSON_AddNumberToObject(*result, "reverted_action", (double)action);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(changes);
    return rc;
}

int book_score_all(vdx_concepts *book, const float *weight, const char *where, vdx_hits *hits,
                   vdx_error *err)
{
    vdx_search_request req = {.query = weight, .where = where};
    return vdx_store_score_all(book->store, &req, hits, err);
}
