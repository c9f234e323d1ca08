/* The routes of the JSON API (documented with examples in docs/api.md): collection info
 * and ingest progress, search (text, uploaded image, "more like this"), items and their
 * thumbnails, and the concept loop (CRUD, labels, train + next candidates, candidates,
 * evaluation with the score histogram, browsing above the threshold, exports as
 * downloads, undo/redo of label actions and of rounds, the label history, the threshold
 * fit, import). Each route validates its input completely before it calls
 * the library, so bad input gets a 4xx naming the field and changes nothing; library
 * failures are mapped to a status by their error kind (not found → 404, conflict and
 * model mismatch → 409, disk full → 507), with one table. */
#include "server/api.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdx/image.h"
#include "vdx/ingest.h"

#define MAX_K 200
#define MAX_OFFSET 1000000
#define MAX_EXCLUDE 100000
#define MAX_WHERE 4096
#define NEIGHBOURS_DEFAULT 8
/* the detail view's rendition: the longer side, never upscaled */
#define PREVIEW_SIDE 1600
#define PREVIEW_QUALITY 85
/* How often the store looks for rows appended by an ingest running beside the server. */
#define REFRESH_INTERVAL_S 0.5

/* ---- Library errors → HTTP statuses ----------------------------------------------- */

/* The HTTP status of each error kind (docs/api.md). VDX_ERR_INTERNAL (0) is an error no
 * raise site classified: it takes the route's `fallback`, 400 where the request is most
 * likely what failed, 500 for reads. Decided by the kind only, never by the message. */
static const int status_of_kind[VDX_ERR_KIND_COUNT] = {
    [VDX_ERR_INTERNAL] = 0,         [VDX_ERR_INVALID] = 400,
    [VDX_ERR_NOT_FOUND] = 404,      [VDX_ERR_CONFLICT] = 409,
    [VDX_ERR_MODEL_MISMATCH] = 409, [VDX_ERR_IO] = 500,
    [VDX_ERR_NO_SPACE] = 507,       [VDX_ERR_NO_MEMORY] = 500,
    [VDX_ERR_CORRUPT] = 500,
};

int api_status_of(const vdx_error *err, int fallback)
{
    int status = (unsigned)err->kind < VDX_ERR_KIND_COUNT ? status_of_kind[err->kind] : 0;
    return status ? status : fallback;
}

/* {"error": message, "kind": "not_found"} with the kind's status. */
static void reply_failure(http_request *req, const vdx_error *err, int fallback)
{
    cJSON *json = cJSON_CreateObject();
    if (json && (!cJSON_AddStringToObject(json, "error", err->message) ||
                 !cJSON_AddStringToObject(json, "kind", vdx_error_kind_name(err->kind)))) {
        cJSON_Delete(json); /* a reply without its message would hide the failure */
        json = NULL;
    }
    http_reply_json(req, json ? api_status_of(err, fallback) : 500, json);
}

/* ---- JSON input ------------------------------------------------------------------- */

/* Each getter replies 400 naming the field and returns -1 when the field is malformed. */
static int json_string(http_request *req, const cJSON *obj, const char *key, int required,
                       size_t max_len, const char **out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!item || cJSON_IsNull(item)) {
        if (required)
            return http_reply_error(req, 400, "field '%s' is required", key);
        return 0;
    }
    if (!cJSON_IsString(item))
        return http_reply_error(req, 400, "field '%s' must be a string", key);
    if (strlen(item->valuestring) > max_len)
        return http_reply_error(req, 400, "field '%s' is longer than %zu bytes", key, max_len);
    *out = item->valuestring;
    return 0;
}

static int json_long(http_request *req, const cJSON *obj, const char *key, long fallback,
                     long min, long max, long *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = fallback;
    if (!item || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble) ||
        item->valuedouble < min || item->valuedouble > max)
        return http_reply_error(req, 400, "field '%s' must be an integer from %ld to %ld", key, min, max);
    *out = (long)item->valuedouble;
    return 0;
}

static int json_double(http_request *req, const cJSON *obj, const char *key, double fallback,
                       double *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = fallback;
    if (!item || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return http_reply_error(req, 400, "field '%s' must be a finite number", key);
    *out = item->valuedouble;
    return 0;
}

static int json_bool(http_request *req, const cJSON *obj, const char *key, int fallback, int *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = fallback;
    if (!item || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsBool(item))
        return http_reply_error(req, 400, "field '%s' must be true or false", key);
    *out = cJSON_IsTrue(item);
    return 0;
}

/* A string array as borrowed pointers into `obj` (free only the array). */
static int json_string_array(http_request *req, const cJSON *obj, const char *key, size_t max,
                             const char ***out, size_t *n)
{
    const cJSON *array = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    *n = 0;
    if (!array || cJSON_IsNull(array))
        return 0;
    if (!cJSON_IsArray(array))
        return http_reply_error(req, 400, "field '%s' must be an array of strings", key);
    size_t count = (size_t)cJSON_GetArraySize(array);
    if (count > max)
        return http_reply_error(req, 400, "field '%s' holds %zu entries, more than %zu", key, count, max);
    const char **ids = calloc(count + 1, sizeof *ids);
    if (!ids)
        return http_reply_error(req, 500, "out of memory");
    size_t i = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, array) {
        if (!cJSON_IsString(entry)) {
            free(ids);
            return http_reply_error(req, 400, "field '%s' entry %zu must be a string", key, i);
        }
        ids[i++] = entry->valuestring;
    }
    *out = ids;
    *n = count;
    return 0;
}

/* ---- Store access ----------------------------------------------------------------- */

/* Takes a store handle; picks up rows an ingest appended, at most every
 * REFRESH_INTERVAL_S, so that search works while an ingest writes. */
static void lock_slot(store_slot *slot)
{
    pthread_mutex_lock(&slot->mutex);
    double now = vdx_now();
    if (now - slot->last_refresh < REFRESH_INTERVAL_S)
        return;
    slot->last_refresh = now;
    vdx_error err = {{0}};
    if (vdx_store_refresh(slot->store, &err) != 0 && slot->notice) {
        char line[VDX_ERROR_MAX + 64];
        snprintf(line, sizeof line, "vdx serve: refreshing the collection: %s", err.message);
        slot->notice(VDX_SERVER_WARNING, line, slot->notice_user);
    }
}

static void unlock_slot(store_slot *slot) { pthread_mutex_unlock(&slot->mutex); }
static void lock_store(api_context *ctx) { lock_slot(&ctx->search); }
static void unlock_store(api_context *ctx) { unlock_slot(&ctx->search); }

static cJSON *hits_json(const vdx_hits *hits)
{
    cJSON *items = cJSON_CreateArray();
    for (int i = 0; i < hits->n; i++) {
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "id", hits->hits[i].id);
        cJSON_AddStringToObject(item, "url", hits->hits[i].url ? hits->hits[i].url : "");
        cJSON_AddNumberToObject(item, "score", 1.0 - hits->hits[i].dist);
        cJSON_AddNumberToObject(item, "dist", hits->hits[i].dist);
        cJSON_AddItemToArray(items, item);
    }
    return items;
}

/* Runs a nearest-neighbour search of `query` and replies with the page of results. */
static void reply_search(api_context *ctx, http_request *req, const float *query,
                         const vdx_search_request *base, const char *query_kind)
{
    vdx_search_request search = *base;
    search.query = query;
    vdx_hits hits = {0};
    vdx_error err = {{0}};
    if (vdx_store_search(ctx->search.store, &search, &hits, &err) != 0) {
        reply_failure(req, &err, 400);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "query", query_kind);
    cJSON_AddNumberToObject(out, "k", search.k);
    cJSON_AddNumberToObject(out, "offset", search.offset);
    cJSON_AddNumberToObject(out, "count", (double)vdx_store_count(ctx->search.store));
    cJSON_AddItemToObject(out, "items", hits_json(&hits));
    vdx_hits_free(&hits);
    http_reply_json(req, 200, out);
}

static int require_model(api_context *ctx, http_request *req)
{
    if (ctx->model)
        return 0;
    return http_reply_error(req, 503, "no CLIP model is loaded: start 'vdx serve --model M' with "
                            "the model this collection was embedded with");
}

/* A prompt's features with the text tower in use (an M-CLIP tower when one is loaded, else
 * CLIP's): a malloc'd vector, or NULL after replying 503 (no model) or 500. */
static float *embed_prompt(api_context *ctx, http_request *req, const char *text)
{
    if (!ctx->text_model && require_model(ctx, req) != 0)
        return NULL;
    int dims = ctx->text_model ? vdx_text_model_dims(ctx->text_model) : vdx_clip_embed_dim(ctx->model);
    float *v = malloc((size_t)dims * sizeof *v);
    vdx_error err = {{0}};
    int rc = !v ? -1
             : ctx->text_model ? vdx_text_model_embed(ctx->text_model, text, v, NULL, &err)
                               : vdx_clip_embed_text(ctx->model, text, v, NULL, &err);
    if (rc != 0) {
        http_reply_error(req, 500, "embedding the prompt: %s", v ? err.message : "out of memory");
        free(v);
        return NULL;
    }
    return v;
}

/* The stored vector of one item; replies 404 for an unknown id. */
static float *item_vector(api_context *ctx, http_request *req, const char *id)
{
    int dims = vdx_store_model(ctx->search.store)->dims;
    float *vector = malloc((size_t)dims * sizeof *vector);
    vdx_error err = {{0}};
    vdx_item_state state = VDX_ITEM_ABSENT;
    const char *ids[1] = {id};
    if (!vector) {
        http_reply_error(req, 500, "out of memory");
        return NULL;
    }
    if (vdx_store_item_states(ctx->search.store, ids, 1, &state, &err) != 0) {
        reply_failure(req, &err, 500);
    } else if (state != VDX_ITEM_STORED) {
        http_reply_error(req, 404, "no item '%s' in collection '%s'%s", id, ctx->collection,
                         state == VDX_ITEM_FAILED ? " (its ingest failed)" : "");
    } else if (vdx_store_get_vectors(ctx->search.store, ids, 1, vector, &err) != 0) {
        reply_failure(req, &err, 500);
    } else {
        return vector;
    }
    free(vector);
    return NULL;
}

/* ---- /api/info, /api/progress ------------------------------------------------------ */

/* progress.json of a running (or finished) ingest, or NULL. A "running" file whose
 * process is gone is reported as "interrupted". */
static cJSON *read_progress(api_context *ctx)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/progress.json", vdx_store_dir(ctx->search.store));
    char *text = NULL;
    size_t size = 0;
    if (vdx_read_file(path, &text, &size, NULL) != 0)
        return NULL;
    cJSON *progress = cJSON_ParseWithLength(text, size);
    free(text);
    if (!cJSON_IsObject(progress)) {
        cJSON_Delete(progress);
        return NULL;
    }
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(progress, "state");
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(progress, "pid");
    if (cJSON_IsString(state) && !strcmp(state->valuestring, "running") && cJSON_IsNumber(pid) &&
        pid->valuedouble > 0 && kill((pid_t)pid->valuedouble, 0) != 0 && errno == ESRCH)
        cJSON_ReplaceItemInObjectCaseSensitive(progress, "state", cJSON_CreateString("interrupted"));
    return progress;
}

static void route_info(api_context *ctx, http_request *req)
{
    cJSON *info = NULL;
    vdx_error err = {{0}};
    if (vdx_store_info(ctx->search.store, &info, &err) != 0) {
        reply_failure(req, &err, 500);
        return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(info, "count");
    cJSON_AddNumberToObject(info, "count", (double)vdx_store_count(ctx->search.store));
    cJSON_AddBoolToObject(info, "text_search", ctx->model != NULL || ctx->text_model != NULL);
    if (ctx->text_model || ctx->model) {
        cJSON *tm = cJSON_AddObjectToObject(info, "text_model");
        cJSON_AddStringToObject(tm, "name", ctx->text_model ? vdx_text_model_name(ctx->text_model)
                                                            : vdx_clip_model_name(ctx->model));
        cJSON_AddBoolToObject(tm, "multilingual",
                              ctx->text_model && vdx_text_model_multilingual(ctx->text_model));
    } else {
        cJSON_AddNullToObject(info, "text_model");
    }
    char **columns = NULL;
    int n_columns = 0;
    if (vdx_store_columns(ctx->search.store, &columns, &n_columns, &err) == 0) {
        cJSON *names = cJSON_CreateArray();
        for (int i = 0; i < n_columns; i++) {
            cJSON_AddItemToArray(names, cJSON_CreateString(columns[i]));
            free(columns[i]);
        }
        free(columns);
        /* one key each: the store's info may carry "columns" already */
        cJSON_DeleteItemFromObjectCaseSensitive(info, "columns");
        cJSON_AddItemToObject(info, "columns", names);
    }
    cJSON *progress = read_progress(ctx);
    cJSON_DeleteItemFromObjectCaseSensitive(info, "progress");
    cJSON_AddItemToObject(info, "progress", progress ? progress : cJSON_CreateNull());
    http_reply_json(req, 200, info);
}

/* GET /api/failures?limit=100 : the items an ingest could not add, oldest first. */
static void route_failures(api_context *ctx, http_request *req)
{
    long limit;
    if (http_query_int(req, "limit", 100, 1, 100000, &limit) != 0)
        return;
    cJSON *failures = NULL;
    vdx_error err = {{0}};
    if (vdx_store_failures(ctx->search.store, &failures, &err) != 0) {
        reply_failure(req, &err, 500);
        return;
    }
    /* the first `limit`, moved over in one walk (trimming from the end costs a walk of
     * the list per item removed: quadratic in the failures of a large ingest) */
    int count = cJSON_GetArraySize(failures);
    cJSON *kept = cJSON_CreateArray();
    for (long i = 0; kept && i < limit && failures->child; i++)
        cJSON_AddItemToArray(kept, cJSON_DetachItemViaPointer(failures, failures->child));
    cJSON_Delete(failures);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "count", count);
    cJSON_AddItemToObject(out, "failures", kept);
    http_reply_json(req, 200, out);
}

static void route_progress(api_context *ctx, http_request *req)
{
    cJSON *progress = read_progress(ctx);
    if (!progress) {
        progress = cJSON_CreateObject();
        cJSON_AddStringToObject(progress, "state", "none");
    }
    cJSON_AddNumberToObject(progress, "count", (double)vdx_store_count(ctx->search.store));
    http_reply_json(req, 200, progress);
}

/* ---- Search ----------------------------------------------------------------------- */

/* A "vector" member: an array of exactly dims finite numbers, not all zero. NULL (after
 * replying 400) when it is anything else. */
static float *json_vector(http_request *req, const cJSON *v, int dims)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != dims) {
        http_reply_error(req, 400, "'vector' must be an array of %d numbers (the collection's "
                                   "dimension)", dims);
        return NULL;
    }
    float *q = malloc((size_t)dims * sizeof *q);
    if (!q) {
        http_reply_error(req, 500, "out of memory");
        return NULL;
    }
    int i = 0, nonzero = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, v) {
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || fabs(x->valuedouble) > 3.4e38) {
            http_reply_error(req, 400, "'vector'[%d] is not a finite number", i);
            free(q);
            return NULL;
        }
        q[i] = (float)x->valuedouble;
        nonzero |= q[i] != 0;
        i++;
    }
    if (!nonzero) {
        http_reply_error(req, 400, "'vector' is all zeros");
        free(q);
        return NULL;
    }
    return q;
}

/* POST /api/search {"text"|"like"|"vector", "k", "offset", "where", "exclude", "exact"} */
static void route_search(api_context *ctx, http_request *req)
{
    cJSON *body = http_body_json(req);
    if (!body)
        return;
    const char *text, *like, *where;
    const char **exclude = NULL;
    size_t n_exclude = 0;
    long k, offset;
    float *query = NULL;
    if (json_string(req, body, "text", 0, 10000, &text) || json_string(req, body, "like", 0, 4096, &like) ||
        json_string(req, body, "where", 0, MAX_WHERE, &where) ||
        json_long(req, body, "k", 9, 1, MAX_K, &k) || json_long(req, body, "offset", 0, 0, MAX_OFFSET, &offset) ||
        json_string_array(req, body, "exclude", MAX_EXCLUDE, &exclude, &n_exclude))
        goto done;
    const cJSON *vector = cJSON_GetObjectItemCaseSensitive(body, "vector");
    const cJSON *exact = cJSON_GetObjectItemCaseSensitive(body, "exact");
    if (exact && !cJSON_IsBool(exact)) {
        http_reply_error(req, 400, "'exact' must be true or false");
        goto done;
    }
    if (!!text + !!like + !!vector != 1) {
        http_reply_error(req, 400, "give exactly one of 'text' (a prompt), 'like' (an item id) "
                                   "or 'vector' (an array of numbers)");
        goto done;
    }
    vdx_search_request search = {.k = (int)k, .offset = (int)offset, .exclude_ids = exclude,
                                 .n_exclude = n_exclude, .where = where && *where ? where : NULL,
                                 .exact = cJSON_IsTrue(exact)};
    if (vector) {
        lock_store(ctx);
        query = json_vector(req, vector, vdx_store_model(ctx->search.store)->dims);
        if (query)
            reply_search(ctx, req, query, &search, "vector");
        unlock_store(ctx);
    } else if (text) {
        if (!(query = embed_prompt(ctx, req, text)))
            goto done;
        lock_store(ctx);
        reply_search(ctx, req, query, &search, "text");
        unlock_store(ctx);
    } else {
        lock_store(ctx);
        query = item_vector(ctx, req, like);
        if (!query) {
            unlock_store(ctx);
            goto done;
        }
        /* "more like this" never shows the item itself */
        const char **with_self = realloc(exclude, (n_exclude + 1) * sizeof *exclude);
        if (!with_self) {
            http_reply_error(req, 500, "out of memory");
        } else {
            exclude = with_self;
            exclude[n_exclude] = like;
            search.exclude_ids = exclude;
            search.n_exclude = n_exclude + 1;
            reply_search(ctx, req, query, &search, "like");
        }
        unlock_store(ctx);
    }
done:
    free(query);
    free(exclude);
    cJSON_Delete(body);
}

/* The query argument `where` (NULL when absent or empty), at most MAX_WHERE bytes as in a
 * JSON body: a filter is evaluated for every row, so its length bounds a request's work. */
static int query_where(http_request *req, const char **where)
{
    *where = http_query(req, "where");
    if (*where && !**where)
        *where = NULL;
    if (*where && strlen(*where) > MAX_WHERE)
        return http_reply_error(req, 400, "query argument 'where' is longer than %d bytes", MAX_WHERE);
    return 0;
}

/* POST /api/search/image?k=&offset=&where= with the image bytes as the body. */
static void route_search_image(api_context *ctx, http_request *req)
{
    long k, offset;
    const char *where;
    if (http_query_int(req, "k", 9, 1, MAX_K, &k) || http_query_int(req, "offset", 0, 0, MAX_OFFSET, &offset) ||
        query_where(req, &where) || require_model(ctx, req))
        return;
    if (!req->body || req->body_size == 0) {
        http_reply_error(req, 400, "the request body must hold an image (JPEG, PNG, WebP, GIF or BMP)");
        return;
    }
    const vdx_preprocess_config *pre = vdx_clip_get_preprocess(ctx->model);
    int dims = vdx_clip_embed_dim(ctx->model);
    float *pixels = malloc((size_t)3 * pre->crop_height * pre->crop_width * sizeof *pixels);
    float *query = malloc((size_t)dims * sizeof *query);
    if (!pixels || !query) {
        http_reply_error(req, 500, "out of memory");
        goto done;
    }
    /* A large JPEG is decoded reduced in the DCT domain, as ingest decodes it, to a shorter
     * side of at least twice CLIP's resize target (docs/ingest.md): a 12-MP photo's query
     * is then about four times quicker and its pixels a sixteenth. */
    int min_side = vdx_preprocess_reduced_side(pre), full_width, full_height;
    vdx_image image = {0};
    vdx_error err = {{0}};
    pthread_mutex_lock(ctx->decode_lock);
    int rc = vdx_image_decode_reduced((const uint8_t *)req->body, req->body_size, "the uploaded image",
                                      min_side, min_side, &image, &full_width, &full_height, &err);
    if (rc == 0)
        rc = vdx_image_preprocess(&image, pre, pixels, &err) != 0 ? 500 : 0;
    else
        rc = 400;
    vdx_image_free(&image);
    pthread_mutex_unlock(ctx->decode_lock);
    if (rc == 400) {
        http_reply_error(req, 400, "%s", err.message);
    } else if (rc != 0 || vdx_clip_embed_images(ctx->model, pixels, 1, query, &err) != 0) {
        http_reply_error(req, 500, "embedding the uploaded image: %s", err.message);
    } else {
        vdx_search_request search = {.k = (int)k, .offset = (int)offset, .where = where};
        lock_store(ctx);
        reply_search(ctx, req, query, &search, "image");
        unlock_store(ctx);
    }
done:
    free(pixels);
    free(query);
}

/* ---- Items ------------------------------------------------------------------------ */

static void route_item(api_context *ctx, http_request *req, const char *id)
{
    long n_neighbours;
    if (http_query_int(req, "neighbours", NEIGHBOURS_DEFAULT, 0, MAX_K, &n_neighbours) != 0)
        return;
    float *vector = item_vector(ctx, req, id);
    if (!vector)
        return;
    cJSON *item = NULL;
    vdx_error err = {{0}};
    vdx_hits hits = {0};
    const char *self[1] = {id};
    vdx_search_request search = {.query = vector, .k = (int)n_neighbours, .exclude_ids = self, .n_exclude = 1};
    if (vdx_store_get_item(ctx->search.store, id, &item, &err) != 0 ||
        (n_neighbours > 0 && vdx_store_search(ctx->search.store, &search, &hits, &err) != 0)) {
        cJSON_Delete(item);
        reply_failure(req, &err, 500);
    } else {
        cJSON_AddItemToObject(item, "neighbours", hits_json(&hits));
        http_reply_json(req, 200, item);
    }
    vdx_hits_free(&hits);
    free(vector);
}

/* GET /api/sample?k=24&seed=N&metadata=COLUMN : k items drawn uniformly at random (the
 * page's opening view; its example prompts come from the sampled items' COLUMN). The same
 * seed and collection give the same sample; without a seed it differs every time. */
static void route_sample(api_context *ctx, http_request *req)
{
    long k, seed;
    if (http_query_int(req, "k", 24, 1, MAX_K, &k) || http_query_int(req, "seed", 0, 0, 1L << 40, &seed))
        return;
    const char *column = http_query(req, "metadata");
    int dims = vdx_store_model(ctx->search.store)->dims;
    float *query = malloc((size_t)dims * sizeof *query);
    vdx_hits hits = {0};
    vdx_error err = {{0}};
    if (!query) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    for (int j = 0; j < dims; j++)
        query[j] = 1.0f;
    /* the ids of all, the url and metadata of the k drawn only (one lookup each) */
    vdx_search_request all = {.query = query, .without_urls = 1};
    if (vdx_store_score_all(ctx->search.store, &all, &hits, &err) != 0) {
        free(query);
        reply_failure(req, &err, 500);
        return;
    }
    /* the first k places of a Fisher-Yates shuffle (xorshift64*, seeded) */
    uint64_t state = seed ? (uint64_t)seed : (uint64_t)(vdx_now() * 1e6) ^ 0x9E3779B97F4A7C15ULL;
    cJSON *out = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(out, "items");
    for (int i = 0; i < hits.n && i < k; i++) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        int j = i + (int)((state * 0x2545F4914F6CDD1DULL) % (uint64_t)(hits.n - i));
        vdx_hit t = hits.hits[i];
        hits.hits[i] = hits.hits[j];
        hits.hits[j] = t;
        cJSON *full = NULL;
        /* the item's row, unless the scores came with its url and no column is asked for;
         * an item gone since the scores were read is listed without a url, any other
         * failure fails the request */
        if ((!hits.hits[i].url || (column && *column)) &&
            vdx_store_get_item(ctx->search.store, hits.hits[i].id, &full, &err) != 0) {
            full = NULL;
            if (err.kind != VDX_ERR_NOT_FOUND) {
                cJSON_Delete(out);
                vdx_hits_free(&hits);
                free(query);
                reply_failure(req, &err, 500);
                return;
            }
        }
        cJSON *item = cJSON_CreateObject();
        const cJSON *url = cJSON_GetObjectItem(full, "url");
        const char *link = hits.hits[i].url ? hits.hits[i].url : cJSON_IsString(url) ? url->valuestring : "";
        cJSON_AddStringToObject(item, "id", hits.hits[i].id);
        cJSON_AddStringToObject(item, "url", link);
        if (column && *column) {
            cJSON *meta = cJSON_AddObjectToObject(item, "metadata");
            cJSON *value = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(full, "metadata"), column);
            if (value)
                cJSON_AddItemToObject(meta, column, cJSON_Duplicate(value, 1));
        }
        cJSON_Delete(full);
        cJSON_AddItemToArray(items, item);
    }
    cJSON_AddNumberToObject(out, "count", hits.n);
    vdx_hits_free(&hits);
    free(query);
    http_reply_json(req, 200, out);
}

static void route_thumbnail(api_context *ctx, http_request *req, const char *id)
{
    uint8_t *jpeg = NULL;
    size_t size = 0;
    vdx_error err = {{0}};
    vdx_item_state state = VDX_ITEM_ABSENT;
    const char *ids[1] = {id};
    if (vdx_store_item_states(ctx->search.store, ids, 1, &state, &err) != 0) {
        reply_failure(req, &err, 500);
        return;
    }
    if (state != VDX_ITEM_STORED) {
        http_reply_error(req, 404, "no item '%s' in collection '%s'", id, ctx->collection);
        return;
    }
    if (vdx_store_get_thumbnail(ctx->search.store, id, &jpeg, &size, &err) != 0) {
        reply_failure(req, &err, 404);
        return;
    }
    char hex[65], etag[24];
    vdx_sha256_hex(jpeg, size, hex);
    snprintf(etag, sizeof etag, "\"%.16s\"", hex);
    http_body_options opts = {.etag = etag, .cache_control = "private, max-age=3600"};
    http_reply_bytes(req, 200, "image/jpeg", jpeg, size, HTTP_TAKE, &opts);
}

/* GET /api/items/ID/preview: the detail view's large rendition (longer side 1600 px,
 * never upscaled) of the item's original: its file (folder collections) or its URL,
 * downloaded by the server through the ingest's download cache (from the mirror the
 * collection was ingested from, when it was: fetch.json), so the page never loads
 * another origin. Made once and kept beside the thumbnails as
 * COLLECTION_DIR/previews/<sha256 of the id>.jpg. When the original cannot be had, the
 * thumbnail, not kept, with "X-Vdx-Preview: thumbnail; REASON". Runs without the store
 * mutex while it downloads and resizes. */
static void route_preview(api_context *ctx, http_request *req, const char *id)
{
    char dir[4096], path[4200], hex[65], *url = NULL;
    cJSON *item = NULL;
    vdx_error err = {{0}};
    lock_store(ctx);
    int rc = vdx_store_get_item(ctx->search.store, id, &item, &err);
    snprintf(dir, sizeof dir, "%s", vdx_store_dir(ctx->search.store));
    unlock_store(ctx);
    if (rc != 0) {
        reply_failure(req, &err, 404);
        return;
    }
    const cJSON *u = cJSON_GetObjectItem(item, "url");
    url = cJSON_IsString(u) && *u->valuestring ? strdup(u->valuestring) : NULL;
    cJSON_Delete(item);
    vdx_sha256_hex(id, strlen(id), hex);
    snprintf(path, sizeof path, "%s/previews/%s.jpg", dir, hex);
    char *data = NULL;
    size_t size = 0;
    if (vdx_read_file(path, &data, &size, &err) != 0) {
        /* not made yet: the original's bytes, from its file or its URL */
        uint8_t *original = NULL;
        size_t original_size = 0;
        if (!url) {
            rc = vdx_fail(&err, "item '%s' has no URL or file", id);
        } else if (vdx_is_http_url(url)) {
            char cache[4200];
            snprintf(cache, sizeof cache, "%s", dir);
            char *cut = strstr(cache, "/collections/");
            if (cut)
                snprintf(cut, sizeof cache - (size_t)(cut - cache), "/cache/http");
            vdx_fetch_options o;
            vdx_fetch_options_default(&o);
            o.parallel = 1;
            o.retries = 1;
            o.timeout_ms = 30000;
            o.cache_dir = cut ? cache : NULL;
            o.imgix_params = "w=2048&fm=jpg&q=85";
            /* a collection ingested from a mirror (--base-url) has its originals there */
            char *base = vdx_fetch_origin_load(dir);
            o.base_url = base;
            vdx_fetch_result result = {0};
            const char *urls[1] = {url};
            rc = vdx_fetch_all(&o, urls, 1, &result, &err);
            free(base);
            if (rc == 0 && !result.ok)
                rc = vdx_fail(&err, "%s", result.reason);
            if (rc == 0) {
                original = result.data;
                original_size = result.size;
                result.data = NULL;
            }
            vdx_fetch_result_clear(&result);
        } else {
            rc = vdx_read_file_at_most(url, VDX_IMAGE_MAX_FILE_BYTES, (char **)&original,
                                       &original_size, &err);
        }
        vdx_image image = {0};
        uint8_t *jpeg = NULL;
        if (rc == 0 && (rc = vdx_image_decode(original, original_size, url, &image, &err)) == 0)
            rc = vdx_image_thumbnail_jpeg(&image, PREVIEW_SIDE, PREVIEW_QUALITY, &jpeg, &size, &err);
        vdx_image_free(&image);
        free(original);
        char previews[4200];
        snprintf(previews, sizeof previews, "%s/previews", dir);
        if (rc == 0 && (vdx_mkdirs(previews, &err) != 0 || vdx_write_file_atomic(path, jpeg, size, &err) != 0))
        {
            if (ctx->search.notice) {
                char line[VDX_ERROR_MAX + 512];
                snprintf(line, sizeof line, "vdx serve: keeping the preview of '%s': %s", id, err.message);
                ctx->search.notice(VDX_SERVER_WARNING, line, ctx->search.notice_user);
            }
        }
        if (rc != 0) {
            /* the thumbnail is the best there is; the header says why */
            free(jpeg);
            free(url);
            char reason[VDX_ERROR_MAX + 64];
            snprintf(reason, sizeof reason, "thumbnail; %s", err.message);
            for (char *c = reason; *c; c++) /* one header line of printable ASCII */
                if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
                    *c = ' ';
            uint8_t *thumb = NULL;
            lock_store(ctx);
            rc = vdx_store_get_thumbnail(ctx->search.store, id, &thumb, &size, &err);
            unlock_store(ctx);
            if (rc != 0) {
                http_reply_error(req, 404, "no preview of '%s': %s", id, reason + strlen("thumbnail; "));
                return;
            }
            http_body_options fallback = {.cache_control = "no-store", .header_name = "X-Vdx-Preview",
                                          .header_value = reason};
            http_reply_bytes(req, 200, "image/jpeg", thumb, size, HTTP_TAKE, &fallback);
            return;
        }
        data = (char *)jpeg;
    }
    free(url);
    char sum[65], etag[24];
    vdx_sha256_hex(data, size, sum);
    snprintf(etag, sizeof etag, "\"%.16s\"", sum);
    http_body_options opts = {.etag = etag, .cache_control = "private, max-age=3600"};
    http_reply_bytes(req, 200, "image/jpeg", data, size, HTTP_TAKE, &opts);
}

/* ---- Concepts --------------------------------------------------------------------- */

static void route_concepts_list(api_context *ctx, http_request *req)
{
    cJSON *list = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_list(ctx->concepts, &list, &err) != 0)
        reply_failure(req, &err, 500);
    else
        http_reply_json(req, 200, list);
}

/* POST /api/concepts {"name","prompt","examples":[ids],"trainer":"seed"|"anchored"|"auto"}
 * (no trainer: auto) */
static void route_concept_create(api_context *ctx, http_request *req)
{
    cJSON *body = http_body_json(req);
    if (!body)
        return;
    const char *name, *prompt, *trainer;
    const char **examples = NULL;
    size_t n_examples = 0;
    float *text_vector = NULL;
    if (json_string(req, body, "name", 1, VDX_CONCEPT_NAME_MAX, &name) ||
        json_string(req, body, "prompt", 0, 10000, &prompt) ||
        json_string(req, body, "trainer", 0, 20, &trainer) ||
        json_string_array(req, body, "examples", 1000, &examples, &n_examples))
        goto done;
    if ((!prompt || !*prompt) && n_examples == 0) {
        http_reply_error(req, 400, "a concept starts from a 'prompt', 'examples' (item ids) or both");
        goto done;
    }
    int has_prompt = prompt && *prompt;
    vdx_error err = {{0}};
    if (has_prompt) {
        if (!(text_vector = embed_prompt(ctx, req, prompt)))
            goto done;
    }
    /* A separate text tower was checked against the collection when the server started. */
    vdx_concept_spec spec = {.name = name, .prompt = has_prompt ? prompt : NULL,
                             .text_vector = text_vector,
                             .text_model = has_prompt && !ctx->text_model ? &ctx->model_identity : NULL,
                             .example_ids = examples, .n_examples = n_examples,
                             .trainer = trainer};
    cJSON *concept = NULL;
    lock_slot(&ctx->book);
    if (vdx_concept_create(ctx->concepts, &spec, &concept, &err) != 0)
        reply_failure(req, &err, 400);
    else
        http_reply_json(req, 201, concept);
    unlock_slot(&ctx->book);
done:
    free(text_vector);
    free(examples);
    cJSON_Delete(body);
}

/* POST /api/concepts/import?name=NEW with a classifier JSON (as exported) as the body. */
static void route_concept_import(api_context *ctx, http_request *req)
{
    const char *name = http_query(req, "name");
    cJSON *concept = NULL;
    vdx_error err = {{0}};
    if (!req->body || !req->body_size) {
        http_reply_error(req, 400, "the body must be a classifier JSON as exported");
        return;
    }
    if (vdx_concept_import_classifier(ctx->concepts, req->body, req->body_size, name && *name ? name : NULL,
                                      &concept, &err) != 0)
        reply_failure(req, &err, 400);
    else
        http_reply_json(req, 201, concept);
}

static void route_concept_get(api_context *ctx, http_request *req, const char *name)
{
    cJSON *concept = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_get(ctx->concepts, name, 0, &concept, &err) != 0)
        reply_failure(req, &err, 500);
    else
        http_reply_json(req, 200, concept);
}

/* PATCH /api/concepts/NAME {"name": new name, "threshold": logit,
 *                         "trainer": "seed"|"anchored"|"auto"} */
static void route_concept_update(api_context *ctx, http_request *req, const char *name)
{
    cJSON *body = http_body_json(req);
    if (!body)
        return;
    const char *new_name, *trainer;
    double threshold;
    vdx_error err = {{0}};
    if (json_string(req, body, "name", 0, VDX_CONCEPT_NAME_MAX, &new_name) ||
        json_double(req, body, "threshold", NAN, &threshold) ||
        json_string(req, body, "trainer", 0, 20, &trainer))
        goto done;
    if (!new_name && isnan(threshold) && !trainer) {
        http_reply_error(req, 400, "nothing to change: give 'name', 'threshold' and/or 'trainer'");
        goto done;
    }
    if (trainer && !vdx_concept_trainer_known(trainer)) {
        http_reply_error(req, 400, "field 'trainer': " VDX_TRAINER_NAMES ", not '%s'", trainer);
        goto done;
    }
    int renaming = new_name && strcmp(new_name, name);
    if (renaming && vdx_concept_check_name(new_name, &err) != 0) {
        http_reply_error(req, 400, "field 'name': %s", err.message);
        goto done;
    }
    /* the rename first: it is the part that can be refused (a taken name); setting a
     * finite threshold or a known trainer on a concept that exists cannot be */
    if (renaming && vdx_concept_rename(ctx->concepts, name, new_name, &err) != 0) {
        reply_failure(req, &err, 400);
        goto done;
    }
    if (!isnan(threshold) &&
        vdx_concept_set_threshold(ctx->concepts, renaming ? new_name : name, threshold, &err) != 0) {
        reply_failure(req, &err, 400);
        goto done;
    }
    if (trainer &&
        vdx_concept_set_trainer(ctx->concepts, renaming ? new_name : name, trainer, &err) != 0) {
        reply_failure(req, &err, 400);
        goto done;
    }
    route_concept_get(ctx, req, new_name ? new_name : name);
done:
    cJSON_Delete(body);
}

static void route_concept_delete(api_context *ctx, http_request *req, const char *name)
{
    vdx_error err = {{0}};
    if (vdx_concept_delete(ctx->concepts, name, &err) != 0) {
        reply_failure(req, &err, 500);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "deleted", name);
    http_reply_json(req, 200, out);
}

/* POST /api/concepts/NAME/copy {"name": new name} */
static void route_concept_copy(api_context *ctx, http_request *req, const char *name)
{
    cJSON *body = http_body_json(req);
    if (!body)
        return;
    const char *new_name;
    vdx_error err = {{0}};
    if (json_string(req, body, "name", 1, VDX_CONCEPT_NAME_MAX, &new_name) == 0) {
        if (vdx_concept_copy(ctx->concepts, name, new_name, &err) != 0)
            reply_failure(req, &err, 400);
        else
            route_concept_get(ctx, req, new_name);
    }
    cJSON_Delete(body);
}

static void route_labels_get(api_context *ctx, http_request *req, const char *name)
{
    cJSON *labels = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_labels(ctx->concepts, name, &labels, &err) != 0)
        reply_failure(req, &err, 500);
    else
        http_reply_json(req, 200, labels);
}

/* POST /api/concepts/NAME/labels {"labels":[{"id","label": 1 | 0 | null}]} */
static void route_labels_set(api_context *ctx, http_request *req, const char *name)
{
    cJSON *body = http_body_json(req);
    if (!body)
        return;
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(body, "labels");
    vdx_label_change *changes = NULL;
    size_t n = 0;
    if (!cJSON_IsArray(labels)) {
        http_reply_error(req, 400, "field 'labels' must be an array of {\"id\", \"label\": 1, 0 or null}");
        goto done;
    }
    size_t count = (size_t)cJSON_GetArraySize(labels);
    if (count == 0 || count > MAX_EXCLUDE) {
        http_reply_error(req, 400, "field 'labels' must hold 1 to %d changes", MAX_EXCLUDE);
        goto done;
    }
    changes = calloc(count, sizeof *changes);
    if (!changes) {
        http_reply_error(req, 500, "out of memory");
        goto done;
    }
    const cJSON *entry;
    cJSON_ArrayForEach(entry, labels) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(entry, "id");
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(entry, "label");
        if (!cJSON_IsString(id)) {
            http_reply_error(req, 400, "labels[%zu]: 'id' must be a string", n);
            goto done;
        }
        int value;
        if (cJSON_IsNull(label))
            value = VDX_LABEL_CLEAR;
        else if (cJSON_IsNumber(label) && (label->valuedouble == 1 || label->valuedouble == 0))
            value = label->valuedouble == 1 ? VDX_LABEL_POSITIVE : VDX_LABEL_NEGATIVE;
        else {
            http_reply_error(req, 400, "labels[%zu]: 'label' must be 1 (positive), 0 (negative) or null (clear)", n);
            goto done;
        }
        changes[n].id = id->valuestring;
        changes[n].label = value;
        n++;
    }
    cJSON *result = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_label(ctx->concepts, name, changes, n, &result, &err) != 0)
        reply_failure(req, &err, 400);
    else
        http_reply_json(req, 200, result);
done:
    free(changes);
    cJSON_Delete(body);
}

/* Reads the candidate options from JSON (train's "next") or from the query string. */
static int candidates_from_json(http_request *req, const cJSON *obj, vdx_candidates_request *out)
{
    const char *mode = NULL, *where = NULL;
    long k, page;
    int hide = 0;
    if (json_string(req, obj, "mode", 0, 16, &mode) || json_long(req, obj, "k", 9, 1, MAX_K, &k) ||
        json_long(req, obj, "page", 0, 0, MAX_OFFSET, &page) ||
        json_string(req, obj, "where", 0, MAX_WHERE, &where) ||
        json_bool(req, obj, "hide_duplicates", 0, &hide))
        return -1;
    int parsed = mode ? vdx_candidates_mode_parse(mode) : VDX_CANDIDATES_NEAREST;
    if (parsed < 0)
        return http_reply_error(req, 400, "field 'mode' must be nearest, boundary, random or audit, not '%s'", mode);
    *out = (vdx_candidates_request){.mode = parsed, .k = (int)k, .page = (int)page,
                                    .where = where && *where ? where : NULL, .hide_duplicates = hide};
    return 0;
}

static int candidates_from_query(http_request *req, vdx_candidates_request *out)
{
    long k, page, hide;
    const char *mode = http_query(req, "mode"), *where;
    if (http_query_int(req, "k", 9, 1, MAX_K, &k) || http_query_int(req, "page", 0, 0, MAX_OFFSET, &page) ||
        http_query_int(req, "hide_duplicates", 0, 0, 1, &hide) || query_where(req, &where))
        return -1;
    int parsed = mode && *mode ? vdx_candidates_mode_parse(mode) : VDX_CANDIDATES_NEAREST;
    if (parsed < 0)
        return http_reply_error(req, 400, "query argument 'mode' must be nearest, boundary, random or audit, not '%s'", mode);
    *out = (vdx_candidates_request){.mode = parsed, .k = (int)k, .page = (int)page,
                                    .where = where, .hide_duplicates = (int)hide};
    return 0;
}

static void route_candidates(api_context *ctx, http_request *req, const char *name)
{
    vdx_candidates_request cand;
    if (candidates_from_query(req, &cand) != 0)
        return;
    if (ctx->read_only && cand.mode == VDX_CANDIDATES_AUDIT) { /* drawing it is recorded */
        http_reply_error(req, 403, "this server is read-only (vdx serve --read-only): drawing "
                         "an audit sample would change the concept book");
        return;
    }
    cand.keep_nothing = ctx->read_only; /* the page, not a list kept for paging */
    cJSON *result = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_candidates(ctx->concepts, name, &cand, &result, &err) != 0)
        reply_failure(req, &err, 400);
    else
        http_reply_json(req, 200, result);
}

/* POST /api/concepts/NAME/train {"iters","lr","next":{candidate options}}: one round,
 * then the next page of candidates, in one request (the page's Enter key). */
static void route_train(api_context *ctx, http_request *req, const char *name)
{
    cJSON *body = http_body_json(req);
    if (!body)
        return;
    long iters;
    double lr;
    vdx_candidates_request cand;
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(body, "next");
    cJSON *round = NULL, *candidates = NULL;
    vdx_error err = {{0}};
    if (json_long(req, body, "iters", VDX_FIT_ITERS, 1, 1000, &iters) || json_double(req, body, "lr", VDX_FIT_LR, &lr))
        goto done;
    if (lr <= 0 || lr > 100) {
        http_reply_error(req, 400, "field 'lr' must be in (0, 100]");
        goto done;
    }
    if (next && !cJSON_IsNull(next) && !cJSON_IsObject(next)) {
        http_reply_error(req, 400, "field 'next' must be an object of candidate options or null");
        goto done;
    }
    if (cJSON_IsObject(next) && candidates_from_json(req, next, &cand) != 0)
        goto done;
    /* every part is checked before the round is stored: a bad filter changes nothing */
    if (cJSON_IsObject(next) && (vdx_candidates_check(&cand, &err) != 0 ||
                                 vdx_store_check_where(ctx->book.store, cand.where, &err) != 0)) {
        http_reply_error(req, 400, "next: %s", err.message);
        goto done;
    }
    if (vdx_concept_train(ctx->concepts, name, (int)iters, (float)lr, &round, &err) != 0) {
        reply_failure(req, &err, 400);
        goto done;
    }
    if (cJSON_IsObject(next) && vdx_concept_candidates(ctx->concepts, name, &cand, &candidates, &err) != 0) {
        cJSON_Delete(round);
        reply_failure(req, &err, 500);
        goto done;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "round", round);
    cJSON_AddItemToObject(out, "candidates", candidates ? candidates : cJSON_CreateNull());
    http_reply_json(req, 200, out);
done:
    cJSON_Delete(body);
}

/* POST /api/concepts/NAME/undo {} : the newest label action;
 * {"round": true, "revert_labels": false} : the last round (weight only, by default). */
static void route_undo(api_context *ctx, http_request *req, const char *name)
{
    cJSON *body = http_body_json(req);
    if (!body)
        return;
    int round, revert_labels;
    cJSON *result = NULL;
    vdx_error err = {{0}};
    if (json_bool(req, body, "round", 0, &round) == 0 &&
        json_bool(req, body, "revert_labels", 0, &revert_labels) == 0) {
        if (!round && revert_labels)
            http_reply_error(req, 400, "field 'revert_labels' goes with \"round\": true");
        else if ((round ? vdx_concept_undo_round(ctx->concepts, name, revert_labels, &result, &err)
                        : vdx_concept_undo(ctx->concepts, name, &result, &err)) != 0)
            reply_failure(req, &err, 500);
        else
            http_reply_json(req, 200, result);
    }
    cJSON_Delete(body);
}

/* POST /api/concepts/NAME/redo {} : replays the newest undone label action. */
static void route_redo(api_context *ctx, http_request *req, const char *name)
{
    cJSON *result = NULL;
    vdx_error err = {{0}};
    if (req->body_size) { /* no fields, but a body must still be a JSON object */
        cJSON *body = http_body_json(req);
        if (!body)
            return;
        cJSON_Delete(body);
    }
    if (vdx_concept_redo(ctx->concepts, name, &result, &err) != 0)
        reply_failure(req, &err, 500);
    else
        http_reply_json(req, 200, result);
}

/* GET /api/concepts/NAME/history?limit= : the label actions, newest first. */
static void route_history(api_context *ctx, http_request *req, const char *name)
{
    long limit;
    if (http_query_int(req, "limit", 100, 1, 10000, &limit) != 0)
        return;
    cJSON *result = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_history(ctx->concepts, name, (int)limit, &result, &err) != 0)
        reply_failure(req, &err, 500);
    else
        http_reply_json(req, 200, result);
}

/* POST /api/concepts/NAME/revert {"action": N} : a new action undoing action N. */
static void route_revert(api_context *ctx, http_request *req, const char *name)
{
    cJSON *body = http_body_json(req);
    if (!body)
        return;
    long action;
    cJSON *result = NULL;
    vdx_error err = {{0}};
    if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(body, "action")))
        http_reply_error(req, 400, "field 'action' is required: the number of a label action");
    else if (json_long(req, body, "action", 0, 1, 1L << 50, &action) == 0) {
        if (vdx_concept_revert_action(ctx->concepts, name, action, &result, &err) != 0)
            reply_failure(req, &err, 400);
        else
            http_reply_json(req, 200, result);
    }
    cJSON_Delete(body);
}

/* POST /api/concepts/NAME/threshold/fit {"target":"f1"} | {"target":"precision",
 * "precision":0.9 (the default)}, "source":"auto" (default: the calibration when the
 * concept has one, else the labels) | "calibration" | "labels" : sets the threshold. */
static void route_threshold_fit(api_context *ctx, http_request *req, const char *name)
{
    cJSON *body = http_body_json(req);
    if (!body)
        return;
    const char *target = NULL, *source = NULL;
    double precision;
    cJSON *result = NULL;
    vdx_error err = {{0}};
    if (json_string(req, body, "target", 0, 16, &target) == 0 &&
        json_string(req, body, "source", 0, 16, &source) == 0 &&
        json_double(req, body, "precision", 0.9, &precision) == 0) {
        int parsed = target ? vdx_threshold_target_parse(target) : VDX_THRESHOLD_FIT_F1;
        int from = source ? vdx_threshold_source_parse(source) : VDX_THRESHOLD_FROM_AUTO;
        if (parsed < 0)
            http_reply_error(req, 400, "field 'target' must be f1 or precision, not '%s'", target);
        else if (from < 0)
            http_reply_error(req, 400, "field 'source' must be auto, calibration or labels, not '%s'", source);
        else if (parsed == VDX_THRESHOLD_FIT_PRECISION && !(precision > 0 && precision <= 1))
            http_reply_error(req, 400, "field 'precision' must be a number in (0, 1] with \"target\": \"precision\"");
        else {
            vdx_threshold_fit fit = {.target = parsed, .precision = precision, .source = from};
            if (vdx_concept_fit_threshold(ctx->concepts, name, &fit, &result, &err) != 0)
                reply_failure(req, &err, 400);
            else
                http_reply_json(req, 200, result);
        }
    }
    cJSON_Delete(body);
}

/* GET /api/concepts/NAME/evaluate?bins=&where=&exact= : accuracy, cross-validation,
 * histogram (exact=1: every score from its vector, not from the index's codes) */
static void route_evaluate(api_context *ctx, http_request *req, const char *name)
{
    long bins, exact;
    const char *where;
    if (http_query_int(req, "bins", 40, 1, 1000, &bins) != 0 ||
        http_query_int(req, "exact", 0, 0, 1, &exact) != 0 || query_where(req, &where))
        return;
    vdx_evaluate_options opts = {.bins = (int)bins, .where = where, .exact = (int)exact};
    cJSON *result = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_evaluate(ctx->concepts, name, &opts, &result, &err) != 0)
        reply_failure(req, &err, 400);
    else
        http_reply_json(req, 200, result);
}

static int query_threshold(http_request *req, double *threshold)
{
    const char *text = http_query(req, "threshold");
    *threshold = NAN;
    if (!text || !*text)
        return 0;
    char *end;
    *threshold = strtod(text, &end);
    if (*end || !isfinite(*threshold))
        return http_reply_error(req, 400, "query argument 'threshold' must be a finite number, got '%s'", text);
    return 0;
}

/* GET /api/concepts/NAME/scores?threshold=&top=&offset=&where=&all= : the collection
 * ranked by the concept, by default only the items above the threshold. */
static void route_scores(api_context *ctx, http_request *req, const char *name)
{
    long top, offset, all, exact;
    double threshold;
    const char *where;
    if (http_query_int(req, "top", 48, 1, 10000, &top) || http_query_int(req, "offset", 0, 0, MAX_OFFSET, &offset) ||
        http_query_int(req, "all", 0, 0, 1, &all) || http_query_int(req, "exact", 0, 0, 1, &exact) ||
        query_threshold(req, &threshold) || query_where(req, &where))
        return;
    vdx_score_request score = {.top = (int)top, .offset = (int)offset, .use_threshold = !all,
                               .threshold = threshold, .where = where, .exact = (int)exact};
    cJSON *result = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_score(ctx->concepts, name, &score, &result, &err) != 0)
        reply_failure(req, &err, 400);
    else
        http_reply_json(req, 200, result);
}

/* A file name from a concept name: letters, digits, '-', '_' and '.'; the rest '_'. */
static void download_name(const char *concept, const char *what, const char *ext, char *out, size_t size)
{
    char safe[VDX_CONCEPT_NAME_MAX + 1];
    size_t j = 0;
    for (size_t i = 0; concept[i] && j < sizeof safe - 1; i++) {
        char c = concept[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || (c == '.' && j > 0);
        safe[j++] = ok ? c : '_';
    }
    safe[j] = 0;
    snprintf(out, size, "%s-%s.%s", safe, what, ext);
}

/* GET /api/concepts/NAME/export?what=labels|scores|classifier&format=csv|jsonl|json
 * [&threshold=] : a download (Content-Disposition: attachment). */
static void route_export(api_context *ctx, http_request *req, const char *name)
{
    const char *what = http_query(req, "what");
    const char *format_text = http_query(req, "format");
    double threshold;
    if (query_threshold(req, &threshold) != 0)
        return;
    if (!what || (strcmp(what, "labels") && strcmp(what, "scores") && strcmp(what, "classifier"))) {
        http_reply_error(req, 400, "query argument 'what' must be labels, scores or classifier");
        return;
    }
    int is_classifier = !strcmp(what, "classifier");
    int format = format_text ? vdx_export_format_parse(format_text)
                             : is_classifier ? VDX_EXPORT_JSON : VDX_EXPORT_CSV;
    if (format < 0 || (is_classifier != (format == VDX_EXPORT_JSON))) {
        http_reply_error(req, 400, "query argument 'format' must be %s for %s",
                         is_classifier ? "json" : "csv or jsonl", what);
        return;
    }
    char *text = NULL;
    size_t size = 0;
    vdx_error err = {{0}};
    int rc;
    if (is_classifier) {
        cJSON *classifier = NULL;
        rc = vdx_concept_export_classifier(ctx->concepts, name, &classifier, &err);
        if (rc == 0) {
            text = cJSON_Print(classifier);
            size = text ? strlen(text) : 0;
            cJSON_Delete(classifier);
        }
    } else if (!strcmp(what, "labels")) {
        rc = vdx_concept_export_labels(ctx->concepts, name, format, &text, &size, &err);
    } else {
        rc = vdx_concept_export_scores(ctx->concepts, name, threshold, format, &text, &size, &err);
    }
    if (rc != 0) {
        reply_failure(req, &err, 500);
        return;
    }
    if (!text) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    static const char *const types[] = {"text/csv; charset=utf-8", "application/x-ndjson", "application/json"};
    static const char *const extensions[] = {"csv", "jsonl", "json"};
    char file_name[VDX_CONCEPT_NAME_MAX + 40];
    download_name(name, what, extensions[format], file_name, sizeof file_name);
    http_body_options opts = {.attachment_name = file_name};
    http_reply_bytes(req, 200, types[format], text, size, HTTP_TAKE, &opts);
}

/* ---- Routing ---------------------------------------------------------------------- */

static int is(const http_request *req, const char *method) { return !strcmp(req->method, method); }

static void route_concept(api_context *ctx, http_request *req, const char *name, const char *action)
{
    if (!action) {
        if (is(req, "GET") || is(req, "HEAD"))
            route_concept_get(ctx, req, name);
        else if (is(req, "PATCH"))
            route_concept_update(ctx, req, name);
        else if (is(req, "DELETE"))
            route_concept_delete(ctx, req, name);
        else
            http_reply_error(req, 405, "%s is not allowed on a concept (GET, PATCH, DELETE)", req->method);
        return;
    }
    static const struct {
        const char *action, *method;
        void (*route)(api_context *, http_request *, const char *);
    } routes[] = {
        {"labels", "GET", route_labels_get},       {"labels", "POST", route_labels_set},
        {"train", "POST", route_train},            {"undo", "POST", route_undo},
        {"copy", "POST", route_concept_copy},      {"candidates", "GET", route_candidates},
        {"evaluate", "GET", route_evaluate},       {"scores", "GET", route_scores},
        {"export", "GET", route_export},           {"redo", "POST", route_redo},
        {"history", "GET", route_history},         {"revert", "POST", route_revert},
        {"threshold/fit", "POST", route_threshold_fit},
    };
    int known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(routes[i].action, action))
            continue;
        known = 1;
        if (is(req, routes[i].method) || (is(req, "HEAD") && !strcmp(routes[i].method, "GET"))) {
            routes[i].route(ctx, req, name);
            return;
        }
    }
    if (known)
        http_reply_error(req, 405, "%s is not allowed on /api/concepts/NAME/%s", req->method, action);
    else
        http_reply_error(req, 404, "no such concept endpoint: %s", action);
}

static void dispatch(api_context *ctx, http_request *req)
{
    int n = req->n_segments;
    char **seg = req->segments;
    const char *what = n >= 2 ? seg[1] : "";
    if (n == 2 && !strcmp(what, "info") && (is(req, "GET") || is(req, "HEAD")))
        route_info(ctx, req);
    else if (n == 2 && !strcmp(what, "progress") && (is(req, "GET") || is(req, "HEAD")))
        route_progress(ctx, req);
    else if (n == 2 && !strcmp(what, "failures") && (is(req, "GET") || is(req, "HEAD")))
        route_failures(ctx, req);
    else if (n == 2 && !strcmp(what, "sample") && (is(req, "GET") || is(req, "HEAD")))
        route_sample(ctx, req);
    else if (n == 2 && !strcmp(what, "search") && is(req, "POST"))
        route_search(ctx, req);
    else if (n == 3 && !strcmp(what, "search") && !strcmp(seg[2], "image") && is(req, "POST"))
        route_search_image(ctx, req);
    else if ((n == 2 || (n == 3 && !strcmp(seg[2], "image"))) && !strcmp(what, "search"))
        http_reply_error(req, 405, "%s is not allowed on %s (POST)", req->method, req->raw_path);
    else if (n == 2 && (!strcmp(what, "info") || !strcmp(what, "progress")))
        http_reply_error(req, 405, "%s is not allowed on %s (GET)", req->method, req->raw_path);
    else if (!strcmp(what, "items") && (n == 3 || n == 4) && !is(req, "GET") && !is(req, "HEAD"))
        http_reply_error(req, 405, "%s is not allowed on %s (GET)", req->method, req->raw_path);
    else if (!strcmp(what, "items") && (n == 3 || n == 4)) {
        if (n == 3)
            route_item(ctx, req, seg[2]);
        else if (!strcmp(seg[3], "thumbnail"))
            route_thumbnail(ctx, req, seg[2]);
        else if (!strcmp(seg[3], "preview"))
            route_preview(ctx, req, seg[2]);
        else
            http_reply_error(req, 404, "no such item endpoint: %s", seg[3]);
    } else if (!strcmp(what, "concepts") && n == 2) {
        if (is(req, "GET") || is(req, "HEAD"))
            route_concepts_list(ctx, req);
        else if (is(req, "POST"))
            route_concept_create(ctx, req);
        else
            http_reply_error(req, 405, "%s is not allowed on /api/concepts (GET, POST)", req->method);
    } else if (!strcmp(what, "concepts") && n == 3 && !strcmp(seg[2], "import") && is(req, "POST"))
        route_concept_import(ctx, req);
    else if (!strcmp(what, "concepts") && (n == 3 || n == 4))
        route_concept(ctx, req, seg[2], n == 4 ? seg[3] : NULL);
    else if (!strcmp(what, "concepts") && n == 5 && !strcmp(seg[3], "threshold") && !strcmp(seg[4], "fit"))
        route_concept(ctx, req, seg[2], "threshold/fit");
    else if (!strcmp(what, "map"))
        api_map_route(ctx, req);
    else
        http_reply_error(req, 404, "no such endpoint: %s %s (see docs/api.md)", req->method, req->raw_path);
}

/* ---- Collections ------------------------------------------------------------------ */

static api_context *context_open(api_collections *all, const char *name, vdx_error *err)
{
    api_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        vdx_fail_oom(err, "opening collection '%s'", name);
        return NULL;
    }
    pthread_mutex_init(&ctx->search.mutex, NULL);
    pthread_mutex_init(&ctx->book.mutex, NULL);
    ctx->search.last_refresh = ctx->book.last_refresh = vdx_now();
    ctx->search.notice = ctx->book.notice = all->notice;
    ctx->search.notice_user = ctx->book.notice_user = all->notice_user;
    ctx->model = all->model;
    if (all->model)
        ctx->model_identity = all->model_identity;
    ctx->text_model = all->text_model;
    ctx->read_only = all->read_only;
    ctx->decode_lock = &all->decode_lock;
    snprintf(ctx->collection, sizeof ctx->collection, "%s", name);
    vdx_store_options opts = all->store;
    opts.collection = name;
    opts.create = 0;
    opts.read_only = 1;
    if ((ctx->search.store = vdx_store_open(&opts, err)) && (ctx->book.store = vdx_store_open(&opts, err)) &&
        (ctx->concepts = vdx_concepts_open(ctx->book.store, err)))
        return ctx;
    vdx_store_close(ctx->book.store);
    vdx_store_close(ctx->search.store);
    pthread_mutex_destroy(&ctx->search.mutex);
    pthread_mutex_destroy(&ctx->book.mutex);
    free(ctx);
    return NULL;
}

static void context_close(api_context *ctx)
{
    if (!ctx)
        return;
    vdx_concepts_close(ctx->concepts);
    api_map_release(ctx);
    vdx_store_close(ctx->book.store);
    vdx_store_close(ctx->search.store);
    pthread_mutex_destroy(&ctx->search.mutex);
    pthread_mutex_destroy(&ctx->book.mutex);
    free(ctx);
}

int api_collections_init(api_collections *all, const vdx_store_options *store, vdx_error *err)
{
    pthread_mutex_init(&all->mutex, NULL);
    pthread_mutex_init(&all->decode_lock, NULL);
    all->store = *store;
    all->data_dir = store->data_dir ? strdup(store->data_dir) : NULL;
    all->store_url = store->url ? strdup(store->url) : NULL;
    if ((store->data_dir && !all->data_dir) || (store->url && !all->store_url))
        return vdx_fail_oom(err, "opening the collection");
    all->store.data_dir = all->data_dir;
    all->store.url = all->store_url;
    all->store.collection = NULL;
    all->store.model = NULL;
    api_context *first = context_open(all, store->collection ? store->collection : "default", err);
    if (!first)
        return -1;
    all->open[all->n++] = first;
    /* the others must share the first one's model: its CLIP model's identity when one
     * is loaded (the store checked it), else the one the first was embedded with */
    all->model_identity = *vdx_store_model(first->search.store);
    all->store.model = &all->model_identity;
    return 0;
}

api_context *api_collection_get(api_collections *all, const char *name, vdx_error *err)
{
    api_context *found = NULL;
    pthread_mutex_lock(&all->mutex);
    for (int i = 0; i < all->n && !found; i++)
        if (!strcmp(all->open[i]->collection, name))
            found = all->open[i];
    if (!found && all->n == API_MAX_COLLECTIONS)
        vdx_fail_kind(err, VDX_ERR_CONFLICT, "this server has %d collections open already, the most it "
                      "keeps: start another 'vdx serve --collection %s'", all->n, name);
    else if (!found && (found = context_open(all, name, err)))
        all->open[all->n++] = found;
    pthread_mutex_unlock(&all->mutex);
    return found;
}

void api_collections_close(api_collections *all)
{
    for (int i = 0; i < all->n; i++)
        context_close(all->open[i]);
    all->n = 0;
    vdx_clip_free(all->model);
    all->model = NULL;
    free(all->data_dir);
    free(all->store_url);
    pthread_mutex_destroy(&all->mutex);
    pthread_mutex_destroy(&all->decode_lock);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* GET /api/collections : the collections of the server's data directory, by name, with
 * whether this server can serve each (same model) and, for those, the item count:
 * {"default": "sample", "collections": [{"name", "count", "open"} | {"name",
 * "available": false, "reason"}]}. The page's collection switcher. */
static void route_collections(api_collections *all, http_request *req)
{
    char data[4096], parent[4200];
    vdx_error err = {{0}};
    if (vdx_store_resolve_dir(&all->store, data, sizeof data, &err) != 0) {
        reply_failure(req, &err, 500);
        return;
    }
    snprintf(parent, sizeof parent, "%s/collections", data);
    char *names[256];
    int n = 0;
    DIR *dir = opendir(parent);
    for (struct dirent *ent; dir && n < 256 && (ent = readdir(dir));) {
        if (ent->d_name[0] != '.' && (names[n] = strdup(ent->d_name)))
            n++;
    }
    if (dir)
        closedir(dir);
    qsort(names, (size_t)n, sizeof *names, by_name);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "default", all->open[0]->collection);
    cJSON *list = cJSON_AddArrayToObject(out, "collections");
    for (int i = 0; i < n; i++) {
        /* a count from the open handle, else from a handle opened for the question */
        api_context *ctx = NULL;
        pthread_mutex_lock(&all->mutex);
        for (int j = 0; j < all->n && !ctx; j++)
            if (!strcmp(all->open[j]->collection, names[i]))
                ctx = all->open[j];
        pthread_mutex_unlock(&all->mutex);
        vdx_error why = {{0}};
        vdx_store_options opts = all->store;
        opts.collection = names[i];
        opts.create = 0;
        opts.read_only = 1;
        vdx_store *store = ctx ? NULL : vdx_store_open(&opts, &why);
        if (ctx || store || why.kind != VDX_ERR_NOT_FOUND) { /* a directory without a collection is no entry */
            cJSON *entry = cJSON_CreateObject();
            cJSON_AddStringToObject(entry, "name", names[i]);
            cJSON_AddBoolToObject(entry, "available", ctx || store);
            if (ctx) {
                lock_slot(&ctx->search);
                cJSON_AddNumberToObject(entry, "count", (double)vdx_store_count(ctx->search.store));
                unlock_slot(&ctx->search);
            } else if (store) {
                cJSON_AddNumberToObject(entry, "count", (double)vdx_store_count(store));
            } else {
                cJSON_AddStringToObject(entry, "reason", why.message);
            }
            cJSON_AddItemToArray(list, entry);
        }
        vdx_store_close(store);
        free(names[i]);
    }
    http_reply_json(req, 200, out);
}

void api_handle(api_collections *all, http_request *req)
{
    if (req->n_segments == 2 && !strcmp(req->segments[1], "collections")) {
        if (is(req, "GET") || is(req, "HEAD"))
            route_collections(all, req);
        else
            http_reply_error(req, 405, "%s is not allowed on %s (GET)", req->method, req->raw_path);
        return;
    }
    /* ?collection=NAME on any route: another collection of the data directory */
    const char *name = http_query(req, "collection");
    api_context *ctx = all->open[0];
    vdx_error err = {{0}};
    if (name && *name && !(ctx = api_collection_get(all, name, &err))) {
        reply_failure(req, &err, 400);
        return;
    }

    /* searches are POSTs that change nothing */
    int search = req->n_segments >= 2 && !strcmp(req->segments[1], "search");
    if (ctx->read_only && !is(req, "GET") && !is(req, "HEAD") && !search) {
        http_reply_error(req, 403, "this server is read-only (vdx serve --read-only): %s %s would "
                         "change the concept book", req->method, req->raw_path);
        return;
    }
    /* the routes that run CLIP take their mutex themselves, after embedding */
    int concepts = req->n_segments >= 2 && !strcmp(req->segments[1], "concepts");
    int embeds = req->n_segments >= 2 && is(req, "POST") &&
                 (!strcmp(req->segments[1], "search") || (concepts && req->n_segments == 2));
    /* a preview may download an original: it takes the store's mutex only to read the item */
    int preview = req->n_segments == 4 && !strcmp(req->segments[1], "items") &&
                  !strcmp(req->segments[3], "preview");
    store_slot *slot = embeds || preview ? NULL : concepts ? &ctx->book : &ctx->search;
    if (slot)
        lock_slot(slot);
    dispatch(ctx, req);
    if (slot)
        unlock_slot(slot);
}
