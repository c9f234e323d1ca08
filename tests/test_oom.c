/* Out-of-memory paths, exercised (SQLite's fault-simulation habit): an allocation
 * countdown fails the N-th allocation, and N walks upward until a run succeeds, over
 * model loading, the store (create, append, search, close), the concept book
 * (create, label, train with its calibration, undo, list, the audit sample) and the map
 * (built with exact and with partitioned neighbours, opened). Every failure must be reported as out of memory
 * (VDX_ERR_NO_MEMORY), nothing may crash, the allocations a failed run made must all be
 * freed again, and the model fingerprint must never change.
 *
 * The countdown sits under every allocation of the library: this program is linked with
 * -Wl,--wrap=malloc,calloc,realloc,free,strdup,strndup (Makefile), cJSON's hooks and
 * SQLite's SQLITE_CONFIG_MALLOC point at the same counters. (OpenBLAS, libcurl and
 * OpenSSL allocate for themselves and are not counted.) Time is bounded: when a scenario
 * makes more allocations than VDX_OOM_STEPS (default 400) runs can cover, N strides
 * across them evenly, always covering the first 200. */
#include <cjson/cJSON.h>
#include <execinfo.h>
#include <pthread.h>
#include <limits.h>
#include <malloc.h>
#include <sqlite3.h>
#include <stdint.h>

#include "test.h"
#include "test_tmp.h"
#include "vdx/clip.h"
#include "vdx/explore.h"
#include "vdx/map.h"
#include "vdx/store.h"

/* ---- the counting allocator ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

static long alloc_count; /* allocations made since the countdown was armed */
static long fail_at;     /* 0: never fail; else fail allocation number fail_at */
static long live;        /* blocks handed out here and not yet freed */
static int failed_once;  /* the countdown fired in this run */
static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;

/* The blocks handed out here (a pointer set: libraries free blocks of their own with
 * free() too, e.g. utf8proc's, and those must not count). Open addressing with
 * tombstones, in memory of its own. */
#define TRACK_CAP (1u << 21)
#define TOMBSTONE ((uintptr_t)1)
static uintptr_t *tracked;

static size_t track_slot(uintptr_t p) { return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ull) & (TRACK_CAP - 1); }

static void track(void *ptr)
{
    if (!ptr || !tracked)
        return;
    size_t i = track_slot((uintptr_t)ptr);
    while (tracked[i] > TOMBSTONE)
        i = (i + 1) & (TRACK_CAP - 1);
    tracked[i] = (uintptr_t)ptr;
    live++;
}

static void untrack(void *ptr)
{
    if (!ptr || !tracked)
        return;
    for (size_t i = track_slot((uintptr_t)ptr); tracked[i]; i = (i + 1) & (TRACK_CAP - 1))
        if (tracked[i] == (uintptr_t)ptr) {
            tracked[i] = TOMBSTONE;
            live--;
            return;
        }
}

static int trace; /* $VDX_OOM_TRACE: print the stack of each failed allocation */

static int should_fail(void)
{
    if (!fail_at)
        return 0;
    if (++alloc_count == fail_at) {
        failed_once = 1;
        if (trace) {
            void *frames[24];
            int n = backtrace(frames, 24);
            backtrace_symbols_fd(frames, n, 1);
        }
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n)
{
    pthread_mutex_lock(&alloc_lock);
    void *p = should_fail() ? NULL : __real_malloc(n);
    track(p);
    pthread_mutex_unlock(&alloc_lock);
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    pthread_mutex_lock(&alloc_lock);
    void *p = should_fail() ? NULL : __real_calloc(n, size);
    track(p);
    pthread_mutex_unlock(&alloc_lock);
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    pthread_mutex_lock(&alloc_lock);
    void *q = should_fail() ? NULL : __real_realloc(p, n);
    if (q || (p && !n)) { /* moved, or realloc(p, 0) freed p */
        untrack(p);
        track(q);
    }
    pthread_mutex_unlock(&alloc_lock);
    return q;
}

void __wrap_free(void *p)
{
    pthread_mutex_lock(&alloc_lock);
    untrack(p);
    pthread_mutex_unlock(&alloc_lock);
    __real_free(p);
}

char *__wrap_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = __wrap_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

char *__wrap_strndup(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *p = __wrap_malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static void *sql_malloc(int n) { return __wrap_malloc((size_t)n); }
static void sql_free(void *p) { __wrap_free(p); }
static void *sql_realloc(void *p, int n) { return __wrap_realloc(p, (size_t)n); }
static int sql_size(void *p) { return p ? (int)malloc_usable_size(p) : 0; }
static int sql_roundup(int n) { return (n + 7) & ~7; }
static int sql_init(void *app) { (void)app; return SQLITE_OK; }
static void sql_shutdown(void *app) { (void)app; }

static void install_allocator(void)
{
    tracked = __real_calloc(TRACK_CAP, sizeof *tracked);
    if (!tracked) {
        fprintf(stderr, "test_oom: no memory for the allocation tracker\n");
        exit(2);
    }
    static const sqlite3_mem_methods methods = {sql_malloc, sql_free, sql_realloc, sql_size,
                                                sql_roundup, sql_init, sql_shutdown, NULL};
    sqlite3_config(SQLITE_CONFIG_MALLOC, &methods);
    cJSON_Hooks hooks = {__wrap_malloc, __wrap_free};
    cJSON_InitHooks(&hooks);
}

/* ---- the walk ---- */

/* REQUIRE for the helpers below: prints and returns -1. */
#define REQUIRE_RUN(cond, ...)                                                           \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            printf("    ");                                                              \
            printf(__VA_ARGS__);                                                         \
            printf("\n");                                                                \
            return -1;                                                                   \
        }                                                                                \
    } while (0)

typedef struct scenario {
    const char *name;
    /* One run; 0 on success, else -1 with err set. Everything it allocates it frees. */
    int (*run)(void *ctx, int attempt, vdx_error *err);
    void *ctx;
} scenario;

/* Walks N upward; returns the number of failing runs checked, -1 when a check failed. */
static int walk(const scenario *sc)
{
    const char *env = getenv("VDX_OOM_STEPS");
    long steps = env && atol(env) > 0 ? atol(env) : 400;
    vdx_error err = {{0}};
    /* warm-up (lazy globals: SQLite's, the tokenizer's, ...) and the allocation count */
    fail_at = 0;
    REQUIRE_RUN(sc->run(sc->ctx, 0, &err) == 0, "%s: the clean run failed: %s", sc->name,
                err.message);
    long base_live = live;
    alloc_count = 0;
    fail_at = LONG_MAX;
    REQUIRE_RUN(sc->run(sc->ctx, 0, &err) == 0, "%s: the counting run failed: %s", sc->name,
                err.message);
    long total = alloc_count;
    fail_at = 0;
    REQUIRE_RUN(live == base_live, "%s: a clean run leaks %ld blocks", sc->name, live - base_live);
    long stride = total > steps ? (total - 200) / (steps - 200) + 1 : 1;
    int checked = 0, problems = 0;
    const char *only = getenv("VDX_OOM_AT"); /* one allocation number, for debugging */
    for (long n = only ? atol(only) : 1; n <= total && problems < 5;
         n = only ? total + 1 : n + (n < 200 ? 1 : stride)) {
        alloc_count = 0;
        failed_once = 0;
        fail_at = n;
        memset(&err, 0, sizeof err);
        int rc = sc->run(sc->ctx, (int)n, &err);
        fail_at = 0;
        if (rc != 0) {
            checked++;
            if (err.kind != VDX_ERR_NO_MEMORY) {
                printf("    %s: allocation %ld of %ld failed, reported as %s: %s\n", sc->name,
                       n, total, vdx_error_kind_name(err.kind), err.message);
                problems++;
            }
        } else if (!failed_once) {
            break; /* fewer allocations than n: done */
        }
        if (live != base_live) {
            printf("    %s: after failing allocation %ld of %ld, %ld blocks leaked (%s)\n",
                   sc->name, n, total, live - base_live, rc ? err.message : "run succeeded");
            problems++;
            base_live = live; /* report each leak once */
        }
    }
    printf("    %s: %ld allocations, %d failing runs checked\n", sc->name, total, checked);
    return problems ? -1 : checked;
}

/* ---- scenarios ---- */

typedef struct model_ctx {
    const char *dir;
    char fingerprint[65];
} model_ctx;

static int load_model(void *ctx, int attempt, vdx_error *err)
{
    model_ctx *m = ctx;
    vdx_clip_model *model = vdx_clip_load(m->dir, err);
    if (!model)
        return -1;
    const char *fp = vdx_clip_config_hash(model);
    int same = !m->fingerprint[0] || strcmp(fp, m->fingerprint) == 0;
    if (!m->fingerprint[0])
        snprintf(m->fingerprint, sizeof m->fingerprint, "%s", fp);
    else if (!same)
        vdx_fail(err, "run %d: the fingerprint changed to %.12s (was %.12s)", attempt, fp,
                 m->fingerprint);
    vdx_clip_free(model);
    return same ? 0 : -1;
}

#define DIMS 8
#define N_ITEMS 24

static const vdx_model_identity identity = {.name = "oom-model", .config_hash =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", .dims = DIMS};

static void item_vector(int i, float *v)
{
    for (int d = 0; d < DIMS; d++)
        v[d] = (float)((i * 7 + d * 3) % 11) - 5.0f + (d == i % DIMS ? 4.0f : 0.0f);
}

/* Creates collection NAME in data and appends N_ITEMS items with a metadata column. */
static int fill_collection(const char *data, const char *name, vdx_vector_type type,
                           vdx_error *err)
{
    vdx_store_options o = {.data_dir = data, .collection = name, .create = 1,
                           .model = &identity, .vector_type = type};
    vdx_store *s = vdx_store_open(&o, err);
    if (!s)
        return -1;
    float v[N_ITEMS][DIMS];
    char ids[N_ITEMS][16], colours[N_ITEMS][16];
    const char *names[1] = {"colour"};
    const char *values[N_ITEMS][1];
    vdx_item items[N_ITEMS];
    for (int i = 0; i < N_ITEMS; i++) {
        item_vector(i, v[i]);
        snprintf(ids[i], sizeof ids[i], "item-%d", i);
        snprintf(colours[i], sizeof colours[i], "%s", i % 3 ? "red" : "blue");
        values[i][0] = colours[i];
        items[i] = (vdx_item){.id = ids[i], .url = "file:///x.jpg", .vector = v[i],
                              .n_meta = 1, .meta_names = names, .meta_values = values[i]};
    }
    int rc = vdx_store_append(s, items, N_ITEMS, err);
    vdx_store_close(s);
    return rc;
}

static int runs; /* names of collections and concepts: one per run */

static int store_round_trip(void *ctx, int attempt, vdx_error *err)
{
    const char *data = ctx;
    char name[32];
    snprintf(name, sizeof name, "s%d", ++runs);
    if (fill_collection(data, name, runs % 2 ? VDX_VECTOR_F16 : VDX_VECTOR_F32, err) != 0)
        return -1;
    vdx_store_options o = {.data_dir = data, .collection = name, .model = &identity,
                           .read_only = 1};
    vdx_store *s = vdx_store_open(&o, err);
    if (!s)
        return -1;
    float q[DIMS];
    item_vector(3, q);
    const char *exclude[1] = {"item-3"};
    vdx_search_request req = {.query = q, .k = 5, .exclude_ids = exclude, .n_exclude = 1,
                              .where = "colour = 'red' OR length(id) > 6"};
    vdx_hits hits = {0};
    int rc = vdx_store_search(s, &req, &hits, err);
    if (rc == 0 && hits.n != 5)
        rc = vdx_fail(err, "search found %d hits, expected 5", hits.n);
    vdx_hits_free(&hits);
    cJSON *item = NULL;
    if (rc == 0)
        rc = vdx_store_get_item(s, "item-7", &item, err);
    cJSON_Delete(item);
    vdx_store_close(s);
    return rc;
}

static int concept_round(void *ctx, int attempt, vdx_error *err)
{
    const char *data = ctx;
    vdx_store_options o = {.data_dir = data, .collection = "book", .model = &identity};
    vdx_store *s = vdx_store_open(&o, err);
    if (!s)
        return -1;
    vdx_concepts *book = vdx_concepts_open(s, err);
    if (!book) {
        vdx_store_close(s);
        return -1;
    }
    char name[32];
    snprintf(name, sizeof name, "concept %d", ++runs);
    (void)attempt;
    const char *examples[2] = {"item-0", "item-8"};
    vdx_concept_spec spec = {.name = name, .example_ids = examples,
                             .n_examples = 2};
    cJSON *json = NULL;
    int rc = vdx_concept_create(book, &spec, &json, err);
    cJSON_Delete(json);
    json = NULL;
    vdx_label_change changes[6] = {{"item-0", 1}, {"item-3", 1}, {"item-6", 1},
                                   {"item-1", 0}, {"item-2", 0}, {"item-4", 0}};
    if (rc == 0)
        rc = vdx_concept_label(book, name, changes, 6, &json, err);
    /* the label result whole (down to the trainer of an auto concept's next round), or
     * out of memory */
    if (rc == 0 && !cJSON_IsString(cJSON_GetObjectItem(json, "next_trainer")))
        rc = vdx_fail(err, "run %d: a label result with keys missing", attempt);
    cJSON_Delete(json);
    json = NULL;
    if (rc == 0)
        rc = vdx_concept_train(book, name, 5, 0.1f, &json, err);
    cJSON_Delete(json);
    json = NULL;
    /* a round of the anchored trainer: the store's sample, the fit, its folds */
    if (rc == 0)
        rc = vdx_concept_set_trainer(book, name, "anchored", err);
    if (rc == 0)
        rc = vdx_concept_train(book, name, 0, 0, &json, err);
    if (rc == 0 && !cJSON_IsNumber(cJSON_GetObjectItem(json, "bias")))
        rc = vdx_fail(err, "run %d: an anchored round without its bias", attempt);
    cJSON_Delete(json);
    json = NULL;
    if (rc == 0)
        rc = vdx_concept_get(book, name, 1, &json, err);
    cJSON_Delete(json);
    json = NULL;
    if (rc == 0)
        rc = vdx_concept_undo(book, name, &json, err);
    cJSON_Delete(json);
    json = NULL;
    /* the list: every summary whole, or out of memory */
    if (rc == 0 && (rc = vdx_concept_list(book, &json, err)) == 0) {
        const cJSON *c;
        cJSON_ArrayForEach(c, json)
        if (rc == 0 && !(cJSON_IsNumber(cJSON_GetObjectItem(c, "rounds")) &&
                         cJSON_GetObjectItem(c, "prompt") && cJSON_GetObjectItem(c, "threshold")))
            rc = vdx_fail(err, "run %d: a concept summary with keys missing", attempt);
    }
    cJSON_Delete(json);
    json = NULL;
    /* the audit sample: drawn and listed whole, or out of memory */
    vdx_candidates_request audit = {.mode = VDX_CANDIDATES_AUDIT, .k = 3};
    if (rc == 0 && (rc = vdx_concept_candidates(book, name, &audit, &json, err)) == 0 &&
        cJSON_GetArraySize(cJSON_GetObjectItem(json, "items")) != 3)
        rc = vdx_fail(err, "run %d: the audit sample lists %d items, not 3", attempt,
                      cJSON_GetArraySize(cJSON_GetObjectItem(json, "items")));
    cJSON_Delete(json);
    vdx_concepts_close(book);
    vdx_store_close(s);
    return rc;
}

/* The map of the 24 items, built twice (exact neighbours, then partitioned ones) and
 * opened: every item mapped, or out of memory. */
static int map_round(void *ctx, int attempt, vdx_error *err)
{
    const char *data = ctx;
    vdx_store_options o = {.data_dir = data, .collection = "map", .model = &identity};
    vdx_store *s = vdx_store_open(&o, err);
    if (!s)
        return -1;
    vdx_map_options exact = {.seed = 2, .epochs = 20, .clusters = 3};
    vdx_map_options part = {.seed = 2, .epochs = 20, .clusters = 3, .exact_max = 8};
    int rc = vdx_map_build(s, &exact, NULL, err);
    if (rc == 0)
        rc = vdx_map_build(s, &part, NULL, err);
    vdx_map *map = rc == 0 ? vdx_map_open(s, err) : NULL;
    if (rc == 0 && !map)
        rc = -1;
    if (map && vdx_map_count(map) != N_ITEMS)
        rc = vdx_fail(err, "run %d: the map holds %lld items, not %d", attempt,
                      (long long)vdx_map_count(map), N_ITEMS);
    vdx_map_close(map);
    vdx_store_close(s);
    return rc;
}

TEST(model_loading_under_allocation_failures)
{
    NEED_SHARED(dir, "fixtures/clip-tiny");
    model_ctx ctx = {.dir = dir};
    scenario sc = {"clip-tiny load", load_model, &ctx};
    CHECK(walk(&sc) > 0, "see above");
}

TEST(store_under_allocation_failures)
{
    const char *data = test_tmpdir("oom-store");
    scenario sc = {"store create/append/search", store_round_trip, (void *)data};
    CHECK(walk(&sc) > 0, "see above");
}

TEST(concept_book_under_allocation_failures)
{
    const char *data = test_tmpdir("oom-book");
    vdx_error err = {{0}};
    REQUIRE(fill_collection(data, "book", VDX_VECTOR_F32, &err) == 0, "%s", err.message);
    scenario sc = {"concept create/label/train (seed, anchored)/undo/list/audit", concept_round,
                   (void *)data};
    CHECK(walk(&sc) > 0, "see above");
}

TEST(map_build_under_allocation_failures)
{
    const char *data = test_tmpdir("oom-map");
    vdx_error err = {{0}};
    REQUIRE(fill_collection(data, "map", VDX_VECTOR_F16, &err) == 0, "%s", err.message);
    scenario sc = {"map build (exact, partitioned) and open", map_round, (void *)data};
    CHECK(walk(&sc) > 0, "see above");
}

int main(void)
{
    install_allocator();
    trace = getenv("VDX_OOM_TRACE") != NULL;
    test_tmp_begin("oom");
    RUN(model_loading_under_allocation_failures);
    RUN(store_under_allocation_failures);
    RUN(concept_book_under_allocation_failures);
    RUN(map_build_under_allocation_failures);
    test_tmp_end();
    return test_summary("oom");
}
