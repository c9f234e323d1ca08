/* The generic half of the vector store: everything that is the same for every backend.
 *
 * It resolves where a collection lives (data directory, validated collection name),
 * chooses the backend from the store URL, refuses a model that differs from the one the
 * collection was embedded with, checks requests once (so backends can trust them) and
 * forwards each call to the backend (see backend.h), one call at a time per handle. Keeping these rules here means the
 * embedded and ClickHouse backends cannot drift apart on them. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strings.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/half.h"
#include "common/hash.h"
#include "store/backend.h"
#include "store/backend_common.h"

struct vdx_store {
    const vdx_store_backend *backend;
    void *state;
    vdx_model_identity model;
    char collection[65];
    char dir[4096];
    int read_only;
    pthread_mutex_t lock; /* calls on one handle are serialised: threads may share it */
};

/* [A-Za-z0-9_.-]{1,64}, and neither "." nor anything containing "..": the name becomes a
 * directory name, so it must not climb out of the data directory. */
static int check_collection_name(const char *name, vdx_error *err)
{
    size_t len = strlen(name);
    if (len == 0 || len > 64)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection name '%s' must be 1 to 64 characters long", name);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok)
            return vdx_fail_kind(err, VDX_ERR_INVALID,
                            "collection name '%s' has a character not allowed at byte %zu "
                            "(use letters, digits, '_', '.', '-')",
                            name, i);
    }
    if (strcmp(name, ".") == 0 || strstr(name, ".."))
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection name '%s' may not be '.' or contain '..'", name);
    return 0;
}

int vdx_store_resolve_dir(const vdx_store_options *opts, char *dir, size_t size,
                          vdx_error *err)
{
    const char *data = opts ? opts->data_dir : NULL;
    int n;
    if (data && *data) {
        n = snprintf(dir, size, "%s", data);
    } else if ((data = getenv("VDX_HOME")) && *data) {
        n = snprintf(dir, size, "%s", data);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "no data directory: pass --data DIR or set VDX_HOME "
                                 "(HOME is not set either)");
        n = snprintf(dir, size, "%s/.local/share/vdx", home);
    }
    if (n < 0 || (size_t)n >= size)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "data directory path is too long (%d bytes)", n);
    return 0;
}

int vdx_store_collection_dir(const vdx_store_options *opts, char *dir, size_t size,
                             vdx_error *err)
{
    char data[4096];
    const char *name = opts && opts->collection ? opts->collection : "default";
    if (check_collection_name(name, err) != 0 ||
        vdx_store_resolve_dir(opts, data, sizeof data, err) != 0)
        return -1;
    int n = snprintf(dir, size, "%s/collections/%s", data, name);
    if (n < 0 || (size_t)n >= size)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection directory path is too long (%d bytes)", n);
    return 0;
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* NULL/""/"embedded" → the embedded store; clickhouse:// and http(s):// → ClickHouse. */
static const vdx_store_backend *backend_for_url(const char *url, vdx_error *err)
{
    if (!url || !*url || strcmp(url, "embedded") == 0)
        return &vdx_embedded_backend;
    if (has_prefix(url, "clickhouse://") || has_prefix(url, "http://") ||
        has_prefix(url, "https://")) {
        return &vdx_clickhouse_backend;
    }
    vdx_fail_kind(err, VDX_ERR_INVALID,
             "unknown store URL '%s': use clickhouse://HOST:PORT/DATABASE or "
             "http(s)://HOST:PORT/?database=DB for ClickHouse, or leave it empty for the "
             "embedded store",
             url);
    return NULL;
}

static int check_model(const char *collection, const vdx_model_identity *stored,
                       const vdx_model_identity *wanted, vdx_error *err)
{
    if (!wanted)
        return 0;
    if (strcmp(stored->config_hash, wanted->config_hash) == 0 && stored->dims == wanted->dims)
        return 0;
    return vdx_fail_kind(err, VDX_ERR_MODEL_MISMATCH,
                    "collection '%s' was embedded with model %s (fingerprint %.12s…, %d-d); "
                    "this model is %s (fingerprint %.12s…, %d-d): use --model %s or another "
                    "--collection",
                    collection, stored->name, stored->config_hash, stored->dims, wanted->name,
                    wanted->config_hash, wanted->dims, stored->name);
}

vdx_store *vdx_store_open(const vdx_store_options *opts, vdx_error *err)
{
    static const vdx_store_options defaults;
    if (!opts)
        opts = &defaults;
    const char *collection = opts->collection ? opts->collection : "default";
    const char *url = opts->url ? opts->url : getenv("VDX_STORE");
    if (opts->create && opts->read_only) {
        vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': cannot create a collection read-only", collection);
        return NULL;
    }
    if (opts->create && !opts->model) {
        vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': creating a collection needs the model identity",
                 collection);
        return NULL;
    }
    if (opts->model && (opts->model->dims <= 0 || !opts->model->config_hash[0])) {
        vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': model identity without dims or fingerprint",
                 collection);
        return NULL;
    }
    if (opts->vector_type != VDX_VECTOR_F32 && opts->vector_type != VDX_VECTOR_F16) {
        vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': unknown vector type %d", collection,
                 (int)opts->vector_type);
        return NULL;
    }

    vdx_store *store = calloc(1, sizeof *store);
    if (!store) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory opening collection '%s'", collection);
        return NULL;
    }
    snprintf(store->collection, sizeof store->collection, "%s", collection);
    store->read_only = opts->read_only;
    if (vdx_store_collection_dir(opts, store->dir, sizeof store->dir, err) != 0)
        goto fail;
    store->backend = backend_for_url(url, err);
    if (!store->backend)
        goto fail;
    if (opts->create && vdx_mkdirs(store->dir, err) != 0)
        goto fail;

    vdx_backend_open_args args = {
        .collection = store->collection,
        .collection_dir = store->dir,
        .url = store->backend == &vdx_embedded_backend ? NULL : url,
        .create = opts->create,
        .model = opts->model,
        .vector_type = opts->vector_type,
        .read_only = opts->read_only,
    };
    store->state = store->backend->open(&args, &store->model, err);
    if (!store->state)
        goto fail;
    if (check_model(store->collection, &store->model, opts->model, err) != 0) {
        store->backend->close(store->state);
        goto fail;
    }
    pthread_mutex_init(&store->lock, NULL);
    return store;
fail:
    free(store);
    return NULL;
}

void vdx_store_close(vdx_store *store)
{
    if (!store)
        return;
    store->backend->close(store->state);
    pthread_mutex_destroy(&store->lock);
    free(store);
}

const vdx_model_identity *vdx_store_model(const vdx_store *store) { return &store->model; }
const char *vdx_store_dir(const vdx_store *store) { return store->dir; }
const char *vdx_store_collection(const vdx_store *store) { return store->collection; }

/* Runs one backend call under the handle's lock. */
#define LOCKED(store, call)                                                              \
    ({                                                                                   \
        pthread_mutex_lock(&(store)->lock);                                              \
        __typeof__(call) locked_result_ = (call);                                        \
        pthread_mutex_unlock(&(store)->lock);                                            \
        locked_result_;                                                                  \
    })

int vdx_store_refresh(vdx_store *store, vdx_error *err)
{
    return LOCKED(store, store->backend->refresh(store->state, err));
}

int64_t vdx_store_count(vdx_store *store)
{
    return LOCKED(store, store->backend->count(store->state));
}

int64_t vdx_store_indexed_rows(vdx_store *store)
{
    if (!store->backend->indexed_rows)
        return 0;
    return LOCKED(store, store->backend->indexed_rows(store->state));
}

static int check_writable(vdx_store *store, const char *what, vdx_error *err)
{
    if (store->read_only)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s' is open read-only: cannot %s", store->collection,
                        what);
    return 0;
}

int vdx_store_add_columns(vdx_store *store, const char *const *names, int n, vdx_error *err)
{
    if (check_writable(store, "add columns", err) != 0)
        return -1;
    if (n < 0 || (n > 0 && !names))
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': bad column list (%d names)", store->collection,
                        n);
    for (int i = 0; i < n; i++)
        if (!names[i] || !*names[i])
            return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': column %d has an empty name",
                            store->collection, i);
    return LOCKED(store, store->backend->add_columns(store->state, names, n, err));
}

int vdx_store_columns(vdx_store *store, char ***names, int *n, vdx_error *err)
{
    return LOCKED(store, store->backend->columns(store->state, names, n, err));
}

int vdx_store_check_where(vdx_store *store, const char *where, vdx_error *err)
{
    if (!where || !where[strspn(where, " \t\n\r")])
        return 0;
    char **columns = NULL;
    int n = 0;
    if (vdx_store_columns(store, &columns, &n, err) != 0)
        return -1;
    vdx_filter *filter = NULL;
    int rc = backend_parse_where(store->collection, where, columns, n, &filter, err);
    filter_free(filter);
    for (int i = 0; i < n; i++)
        free(columns[i]);
    free(columns);
    return rc;
}

static int check_vector(const float *v, int dims, const char *what, const char *id,
                        vdx_error *err)
{
    double norm = 0;
    for (int d = 0; d < dims; d++) {
        if (!isfinite(v[d]))
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s%s%s: element %d is not a finite number", what,
                            id ? " " : "", id ? id : "", d);
        norm += (double)v[d] * v[d];
    }
    if (norm == 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s%s%s: vector has zero length", what, id ? " " : "",
                        id ? id : "");
    return 0;
}

/* The rules of a batch that hold for every backend, one message each: ids unique within
 * the batch, no item naming a metadata column twice (names compare without case, as
 * SQL does), and in a float16 collection no element beyond float16's range (it would
 * be stored as infinity). */
static int check_batch(vdx_store *store, const vdx_item *items, size_t n, vdx_error *err)
{
    idset seen = {0};
    if (idset_reserve(&seen, n) != 0)
        return vdx_fail_oom(err, "checking a batch of %zu items in collection '%s'", n,
                            store->collection);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int64_t first = 0;
        if (idset_add(&seen, items[i].id, (int64_t)i, &first) == 0)
            rc = vdx_fail_kind(err, VDX_ERR_INVALID,
                               "collection '%s': id '%s' appears twice in the batch (items %lld "
                               "and %zu)",
                               store->collection, items[i].id, (long long)first, i);
    }
    idset_free(&seen);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const vdx_item *it = &items[i];
        for (int m = 1; m < it->n_meta && rc == 0; m++)
            for (int o = 0; o < m && rc == 0; o++)
                if (strcasecmp(it->meta_names[m], it->meta_names[o]) == 0)
                    rc = vdx_fail_kind(err, VDX_ERR_INVALID,
                                       "collection '%s': item '%s' names column '%s' twice",
                                       store->collection, it->id, it->meta_names[m]);
    }
    int f16 = store->backend->vector_type(store->state) == VDX_VECTOR_F16;
    for (size_t i = 0; i < n && rc == 0 && f16; i++)
        for (int d = 0; items[i].vector && d < store->model.dims && rc == 0; d++)
            if (fabsf(items[i].vector[d]) >= HALF_F16_OVERFLOW)
                rc = vdx_fail_kind(err, VDX_ERR_INVALID,
                                   "collection '%s': item '%s': element %d (%g) does not fit a "
                                   "float16 collection",
                                   store->collection, items[i].id, d, (double)items[i].vector[d]);
    return rc;
}

int vdx_store_append(vdx_store *store, const vdx_item *items, size_t n, vdx_error *err)
{
    if (check_writable(store, "append", err) != 0)
        return -1;
    if (n == 0)
        return 0;
    if (!items)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': append of %zu items from NULL",
                        store->collection, n);
    for (size_t i = 0; i < n; i++) {
        const vdx_item *it = &items[i];
        if (!it->id || !*it->id)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': item %zu of the batch has no id",
                            store->collection, i);
        if (!it->vector == !it->failure)
            return vdx_fail_kind(err, VDX_ERR_INVALID,
                            "collection '%s': item '%s' must have either a vector or a "
                            "failure reason",
                            store->collection, it->id);
        if (it->n_meta < 0 || (it->n_meta > 0 && (!it->meta_names || !it->meta_values)))
            return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': item '%s' has a bad metadata list",
                            store->collection, it->id);
        for (int m = 0; m < it->n_meta; m++)
            if (!it->meta_names[m] || !*it->meta_names[m])
                return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': item '%s': metadata column %d has no name",
                                store->collection, it->id, m);
        if (it->vector &&
            check_vector(it->vector, store->model.dims, "item", it->id, err) != 0)
            return vdx_error_prefix(err, "collection '%s'", store->collection);
    }
    if (check_batch(store, items, n, err) != 0) /* the vector type never changes: no lock */
        return -1;
    return LOCKED(store, store->backend->append(store->state, items, n, err));
}

int vdx_store_item_states(vdx_store *store, const char *const *ids, size_t n,
                          vdx_item_state *states, vdx_error *err)
{
    if (n == 0)
        return 0;
    if (!ids || !states)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': item_states without ids or output",
                        store->collection);
    for (size_t i = 0; i < n; i++)
        if (!ids[i])
            return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': id %zu is NULL", store->collection, i);
    return LOCKED(store, store->backend->item_states(store->state, ids, n, states, err));
}

static int check_request(vdx_store *store, const vdx_search_request *req, int normalised,
                         vdx_error *err)
{
    if (!req || !req->query)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': search without a query vector",
                        store->collection);
    if (req->k < 0 || req->offset < 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': k (%d) and offset (%d) must not be negative",
                        store->collection, req->k, req->offset);
    if (req->n_exclude > 0 && !req->exclude_ids)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': %zu excluded ids given as NULL",
                        store->collection, req->n_exclude);
    for (size_t i = 0; i < req->n_exclude; i++)
        if (!req->exclude_ids[i])
            return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': excluded id %zu is NULL", store->collection,
                            i);
    for (int d = 0; d < store->model.dims; d++)
        if (!isfinite(req->query[d]))
            return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': query element %d is not a finite number",
                            store->collection, d);
    if (normalised && check_vector(req->query, store->model.dims, "query", NULL, err) != 0)
        return vdx_error_prefix(err, "collection '%s'", store->collection);
    return 0;
}

int vdx_store_search(vdx_store *store, const vdx_search_request *req, vdx_hits *out,
                     vdx_error *err)
{
    out->hits = NULL;
    out->n = 0;
    if (check_request(store, req, 1, err) != 0)
        return -1;
    return LOCKED(store, store->backend->search(store->state, req, out, err));
}

int vdx_store_score_all(vdx_store *store, const vdx_search_request *req, vdx_hits *out,
                        vdx_error *err)
{
    out->hits = NULL;
    out->n = 0;
    if (check_request(store, req, 0, err) != 0)
        return -1;
    int rc = LOCKED(store, store->backend->score_all(store->state, req, out, err));
    for (int i = 0; rc == 0 && req->without_ids && i < out->n; i++) {
        free(out->hits[i].url); /* a backend that sends them anyway (ClickHouse) */
        free(out->hits[i].id);
        out->hits[i].url = out->hits[i].id = NULL;
    }
    return rc;
}

int vdx_store_score_values(vdx_store *store, const vdx_search_request *req, float **scores,
                           size_t *n, double *bound, vdx_error *err)
{
    *scores = NULL;
    *n = 0;
    *bound = 0;
    if (check_request(store, req, 0, err) != 0)
        return -1;
    if (store->backend->score_values)
        return LOCKED(store, store->backend->score_values(store->state, req, scores, n, bound, err));
    vdx_search_request bare = *req;
    bare.without_ids = bare.without_urls = 1;
    bare.with_vectors = 0;
    vdx_hits hits = {0};
    if (vdx_store_score_all(store, &bare, &hits, err) != 0)
        return -1;
    *scores = malloc(((size_t)hits.n + 1) * sizeof **scores);
    if (!*scores) {
        vdx_hits_free(&hits);
        return vdx_fail_oom(err, "out of memory for %d scores", hits.n);
    }
    for (int i = 0; i < hits.n; i++)
        (*scores)[i] = hits.hits[i].dist;
    *n = (size_t)hits.n;
    vdx_hits_free(&hits);
    return 0;
}

void vdx_hits_free(vdx_hits *hits)
{
    if (!hits)
        return;
    for (int i = 0; i < hits->n; i++) {
        free(hits->hits[i].id);
        free(hits->hits[i].url);
        free(hits->hits[i].vector);
    }
    free(hits->hits);
    hits->hits = NULL;
    hits->n = 0;
}

int vdx_store_get_vectors(vdx_store *store, const char *const *ids, size_t n, float *out,
                          vdx_error *err)
{
    if (n == 0)
        return 0;
    if (!ids || !out)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': get_vectors without ids or output",
                        store->collection);
    for (size_t i = 0; i < n; i++)
        if (!ids[i])
            return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': id %zu is NULL", store->collection, i);
    return LOCKED(store, store->backend->get_vectors(store->state, ids, n, out, err));
}

int vdx_store_sample_vectors(vdx_store *store, size_t k, uint64_t seed, float *out, size_t *got,
                             vdx_error *err)
{
    *got = 0;
    if (k == 0)
        return 0;
    if (!out || k > VDX_SAMPLE_MAX)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "collection '%s': a sample of %zu vectors (at most %d, with an output)",
                             store->collection, k, VDX_SAMPLE_MAX);
    return LOCKED(store, store->backend->sample_vectors(store->state, k, seed, out, got, err));
}

int vdx_store_get_item(vdx_store *store, const char *id, cJSON **item, vdx_error *err)
{
    *item = NULL;
    if (!id)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': get_item without an id", store->collection);
    return LOCKED(store, store->backend->get_item(store->state, id, item, err));
}

int vdx_store_get_thumbnail(vdx_store *store, const char *id, uint8_t **jpeg, size_t *size,
                            vdx_error *err)
{
    *jpeg = NULL;
    *size = 0;
    if (!id)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': get_thumbnail without an id",
                        store->collection);
    return LOCKED(store, store->backend->get_thumbnail(store->state, id, jpeg, size, err));
}

int vdx_store_failures(vdx_store *store, cJSON **failures, vdx_error *err)
{
    *failures = NULL;
    return LOCKED(store, store->backend->failures(store->state, failures, err));
}

/* Notes of what embedded the vectors: key "embedding:TIME:PID:N" (unique, in time order),
 * value {"precision","isa","decode","items","at","vdx"}. */
#define EMBEDDING_NOTE "embedding:"

int vdx_store_record_embedding(vdx_store *store, const vdx_embedding_record *record,
                               vdx_error *err)
{
    static _Atomic unsigned serial;
    if (check_writable(store, "record what embedded it", err) != 0)
        return -1;
    if (!record || !record->precision || record->items < 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "collection '%s': an embedding record "
                             "needs a precision and an item count", store->collection);
    char now[32], key[96];
    clock_utc_iso_now(now);
    snprintf(key, sizeof key, "%s%s:%ld:%u", EMBEDDING_NOTE, now, (long)getpid(), serial++);
    cJSON *value = cJSON_CreateObject();
    if (value) {
        cJSON_AddStringToObject(value, "precision", record->precision);
        if (record->isa)
            cJSON_AddStringToObject(value, "isa", record->isa);
        if (record->decode)
            cJSON_AddStringToObject(value, "decode", record->decode);
        cJSON_AddNumberToObject(value, "items", (double)record->items);
        cJSON_AddStringToObject(value, "at", now);
        cJSON_AddStringToObject(value, "vdx", VDX_VERSION);
    }
    char *text = value ? cJSON_PrintUnformatted(value) : NULL;
    cJSON_Delete(value);
    if (!text)
        return vdx_fail_oom(err, "collection '%s': recording what embedded it", store->collection);
    int rc = LOCKED(store, store->backend->add_note(store->state, key, text, err));
    free(text);
    return rc;
}

static int same_string(const cJSON *a, const cJSON *b)
{
    const char *x = cJSON_GetStringValue(a), *y = cJSON_GetStringValue(b);
    return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

/* The embedding notes summed per (precision, isa, decode) into info's "embedded_with". */
static int add_embedded_with(vdx_store *store, cJSON *info, vdx_error *err)
{
    cJSON *notes = NULL;
    if (LOCKED(store, store->backend->notes(store->state, EMBEDDING_NOTE, &notes, err)) != 0)
        return -1;
    cJSON *kinds = cJSON_CreateArray(), *note;
    int oom = !kinds;
    cJSON_ArrayForEach(note, notes) {
        cJSON *run = cJSON_Parse(cJSON_GetStringValue(note));
        if (!cJSON_IsString(cJSON_GetObjectItem(run, "precision"))) {
            cJSON_Delete(run); /* a note this vdx cannot read: not counted */
            continue;
        }
        cJSON *kind = NULL, *k;
        cJSON_ArrayForEach(k, kinds)
            if (same_string(cJSON_GetObjectItem(k, "precision"), cJSON_GetObjectItem(run, "precision")) &&
                same_string(cJSON_GetObjectItem(k, "isa"), cJSON_GetObjectItem(run, "isa")) &&
                same_string(cJSON_GetObjectItem(k, "decode"), cJSON_GetObjectItem(run, "decode")))
                kind = k;
        double items = cJSON_GetNumberValue(cJSON_GetObjectItem(run, "items"));
        if (!kind && !oom) {
            kind = cJSON_CreateObject();
            oom = !kind || !cJSON_AddItemToArray(kinds, kind);
            if (!oom) {
                const char *keys[] = {"precision", "isa", "decode"};
                for (int i = 0; i < 3; i++) {
                    cJSON *v = cJSON_GetObjectItem(run, keys[i]);
                    if (cJSON_IsString(v))
                        oom |= !cJSON_AddStringToObject(kind, keys[i], v->valuestring);
                }
                oom |= !cJSON_AddNumberToObject(kind, "items", 0) ||
                       !cJSON_AddNumberToObject(kind, "runs", 0) ||
                       !cJSON_AddStringToObject(kind, "last", "");
            }
        }
        if (kind && !oom) {
            cJSON *n = cJSON_GetObjectItem(kind, "items"), *r = cJSON_GetObjectItem(kind, "runs");
            cJSON_SetNumberValue(n, n->valuedouble + (isnan(items) ? 0 : items));
            cJSON_SetNumberValue(r, r->valuedouble + 1);
            cJSON *at = cJSON_GetObjectItem(run, "at");
            if (cJSON_IsString(at))
                oom |= !cJSON_ReplaceItemInObject(kind, "last", cJSON_CreateString(at->valuestring));
        }
        cJSON_Delete(run);
    }
    cJSON_Delete(notes);
    if (oom || (cJSON_GetArraySize(kinds) > 0 && !cJSON_AddItemToObject(info, "embedded_with", kinds))) {
        cJSON_Delete(kinds);
        return vdx_fail_oom(err, "collection '%s': describing what embedded it", store->collection);
    }
    if (cJSON_GetArraySize(kinds) == 0)
        cJSON_Delete(kinds);
    return 0;
}

int vdx_store_info(vdx_store *store, cJSON **info, vdx_error *err)
{
    *info = cJSON_CreateObject();
    cJSON *model = cJSON_CreateObject();
    if (!*info || !model) {
        cJSON_Delete(*info);
        cJSON_Delete(model);
        *info = NULL;
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory describing collection '%s'", store->collection);
    }
    cJSON_AddStringToObject(*info, "collection", store->collection);
    cJSON_AddStringToObject(*info, "backend", store->backend->name);
    cJSON_AddStringToObject(*info, "dir", store->dir);
    cJSON_AddStringToObject(model, "name", store->model.name);
    cJSON_AddStringToObject(model, "fingerprint", store->model.config_hash);
    cJSON_AddNumberToObject(model, "dims", store->model.dims);
    cJSON_AddItemToObject(*info, "model", model);
    if (LOCKED(store, store->backend->info(store->state, *info, err)) != 0 ||
        add_embedded_with(store, *info, err) != 0) {
        cJSON_Delete(*info);
        *info = NULL;
        return -1;
    }
    return 0;
}

int vdx_store_index_build(vdx_store *store, const vdx_index_options *opts, vdx_error *err)
{
    if (!store->backend->index_build)
        return vdx_fail(err, "collection '%s': the %s backend has no vdx index (the server "
                             "indexes its tables itself)", store->collection, store->backend->name);
    if (check_writable(store, "build an index", err) != 0)
        return -1;
    int built = 0;
    return LOCKED(store, store->backend->index_build(store->state, opts, 1, &built, err));
}

int vdx_store_index_auto(vdx_store *store, const vdx_index_options *opts, int *built,
                         vdx_error *err)
{
    *built = 0;
    if (!store->backend->index_build)
        return 0;
    if (check_writable(store, "build an index", err) != 0)
        return -1;
    return LOCKED(store, store->backend->index_build(store->state, opts, 0, built, err));
}

int vdx_store_clear_failures(vdx_store *store, vdx_error *err)
{
    if (check_writable(store, "clear failures", err) != 0)
        return -1;
    return LOCKED(store, store->backend->clear_failures(store->state, err));
}
