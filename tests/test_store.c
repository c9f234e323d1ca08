/* The vector store's behaviour suite, written against include/vdx/store.h only.
 *
 * It runs against the embedded backend by default and against any other backend when
 * $VDX_TEST_STORE_URL is set (e.g. clickhouse://127.0.0.1:8123/default), so every
 * backend is held to the same contract: create/open/model checks, append round trips,
 * atomic batches, duplicate ids, failures, exact search equal to a brute-force reference
 * (k, offset, exclusions, where), score_all, float16, readers refreshing while a writer
 * appends, the single-writer lock, and crash safety under SIGKILL. */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "vdx/store.h"

/* ---- helpers ---- */

static const char *store_url(void)
{
    const char *url = getenv("VDX_TEST_STORE_URL");
    return url && *url ? url : "";
}

static int embedded(void) { return !*store_url(); }

static vdx_model_identity model_identity(const char *name, char fingerprint_char, int dims)
{
    vdx_model_identity m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "%s", name);
    memset(m.config_hash, fingerprint_char, 64);
    m.config_hash[64] = 0;
    m.dims = dims;
    return m;
}

/* Collection names are unique per run so that a shared ClickHouse server is safe. */
static const char *collection_name(const char *tag)
{
    static char buf[8][80];
    static int slot;
    char *out = buf[slot++ % 8];
    snprintf(out, sizeof buf[0], "t%ld_%s", (long)getpid(), tag);
    return out;
}

static vdx_store *open_store(const char *data, const char *name, int create,
                             const vdx_model_identity *model, vdx_vector_type type,
                             int read_only, vdx_error *err)
{
    vdx_store_options o = {.data_dir = data, .collection = name, .url = store_url(),
                           .create = create, .model = model, .vector_type = type,
                           .read_only = read_only};
    return vdx_store_open(&o, err);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) / 9007199254740992.0; }

/* A random unit vector (Gaussian directions via Box-Muller). */
static void random_unit(uint64_t *s, float *v, int dims)
{
    double norm = 0;
    for (int d = 0; d < dims; d++) {
        double u1 = rng_uniform(s) + 1e-12, u2 = rng_uniform(s);
        double g = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
        v[d] = (float)g;
        norm += g * g;
    }
    norm = sqrt(norm);
    for (int d = 0; d < dims; d++)
        v[d] = (float)(v[d] / norm);
}

/* The vector the crash test writes for item i: recomputable by the checker. */
static void vector_for_index(long i, float *v, int dims)
{
    uint64_t s = 0x9e3779b97f4a7c15ull ^ (uint64_t)(i + 1) * 0xbf58476d1ce4e5b9ull;
    for (int k = 0; k < 4; k++)
        rng_next(&s);
    random_unit(&s, v, dims);
}

static int contains(const char *haystack, const char *needle)
{
    return haystack && strstr(haystack, needle) != NULL;
}

/* A collection of n random unit vectors with metadata grp (a/b/c), score (0..99, as
 * text) and name; ids "id-00000"... Vectors are kept in *vectors for references. */
typedef struct fixture {
    const char *data;
    const char *name;
    vdx_store *store;
    int dims, n;
    float *vectors; /* as written */
    char (*ids)[32];
    int *index_by_value; /* ids[index_by_value[v]] is "id-<v>" */
    char (*grp)[8];
    int *score;
} fixture;

static int make_fixture(fixture *f, const char *tag, int n, int dims, vdx_vector_type type,
                        uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->data = test_tmpdir(tag);
    f->name = collection_name(tag);
    f->dims = dims;
    f->n = n;
    vdx_model_identity m = model_identity("test-model", 'a', dims);
    vdx_error err = {{0}};
    f->store = open_store(f->data, f->name, 1, &m, type, 0, &err);
    if (!f->store) {
        printf("    open: %s\n", err.message);
        return -1;
    }
    f->vectors = malloc((size_t)n * dims * sizeof(float));
    f->ids = malloc((size_t)n * sizeof *f->ids);
    f->index_by_value = malloc((size_t)n * sizeof(int));
    f->grp = malloc((size_t)n * sizeof *f->grp);
    f->score = malloc((size_t)n * sizeof(int));
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        random_unit(&s, f->vectors + (size_t)i * dims, dims);
        /* ids are not in storage order, so the tie-break by id is tested for real */
        snprintf(f->ids[i], sizeof f->ids[i], "id-%05d", (i * 7919) % n);
        f->index_by_value[(i * 7919) % n] = i;
        snprintf(f->grp[i], sizeof f->grp[i], "%c", 'a' + (int)(rng_next(&s) % 3));
        f->score[i] = (int)(rng_next(&s) % 100);
    }
    const char *names[] = {"grp", "score", "name"};
    int batch = 500;
    for (int start = 0; start < n; start += batch) {
        int count = n - start < batch ? n - start : batch;
        vdx_item *items = calloc((size_t)count, sizeof *items);
        char (*score_text)[16] = malloc((size_t)count * sizeof *score_text);
        const char *(*values)[3] = malloc((size_t)count * sizeof *values);
        for (int j = 0; j < count; j++) {
            int i = start + j;
            snprintf(score_text[j], sizeof score_text[j], "%d", f->score[i]);
            values[j][0] = f->grp[i];
            values[j][1] = score_text[j];
            values[j][2] = i % 10 == 0 ? NULL : f->ids[i];
            items[j] = (vdx_item){.id = f->ids[i], .url = f->ids[i], .width = 640,
                                  .height = 480, .meta_names = names,
                                  .meta_values = values[j], .n_meta = 3,
                                  .vector = f->vectors + (size_t)i * dims};
        }
        int rc = vdx_store_append(f->store, items, (size_t)count, &err);
        free(items);
        free(score_text);
        free(values);
        if (rc != 0) {
            printf("    append: %s\n", err.message);
            return -1;
        }
    }
    return 0;
}

static void free_fixture(fixture *f)
{
    vdx_store_close(f->store);
    free(f->vectors);
    free(f->ids);
    free(f->index_by_value);
    free(f->grp);
    free(f->score);
    if (f->data)
        remove_tree(f->data);
}

typedef struct ref_hit {
    int index;
    double dist;
} ref_hit;

static const fixture *sort_fixture;
static int compare_ref(const void *a, const void *b)
{
    const ref_hit *x = a, *y = b;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    return strcmp(sort_fixture->ids[x->index], sort_fixture->ids[y->index]);
}

/* The vector as the store holds it (float16 collections round). */
static double stored_component(const fixture *f, vdx_vector_type type, int i, int d)
{
    float v = f->vectors[(size_t)i * f->dims + d];
    return type == VDX_VECTOR_F16 ? (double)(float)(_Float16)v : (double)v;
}

/* Reference search in double precision over the rows `allowed` accepts. */
static int reference_search(const fixture *f, vdx_vector_type type, const float *query,
                            int (*allowed)(const fixture *, int, const void *), const void *ctx,
                            ref_hit *out)
{
    double qn = 0;
    for (int d = 0; d < f->dims; d++)
        qn += (double)query[d] * query[d];
    qn = sqrt(qn);
    int n = 0;
    for (int i = 0; i < f->n; i++) {
        if (allowed && !allowed(f, i, ctx))
            continue;
        double dot = 0;
        for (int d = 0; d < f->dims; d++)
            dot += (double)(float)(query[d] / qn) * stored_component(f, type, i, d);
        out[n++] = (ref_hit){i, 1.0 - dot};
    }
    sort_fixture = f;
    qsort(out, (size_t)n, sizeof *out, compare_ref);
    return n;
}

static int index_of_id(const fixture *f, const char *id)
{
    int v;
    if (sscanf(id, "id-%d", &v) != 1 || v < 0 || v >= f->n)
        return -1;
    return f->index_by_value[v];
}

/* Hits equal the reference window [offset, offset+k): same ids in the same order, with
 * distances within 1e-6; two ids may trade places only when their reference distances
 * differ by less than 1e-6 (a float rounding tie). */
static int matches_reference(const fixture *f, const vdx_hits *hits, const ref_hit *ref,
                             int n_ref, int k, int offset, const char *label)
{
    int expect = n_ref - offset < k ? n_ref - offset : k;
    if (expect < 0)
        expect = 0;
    if (hits->n != expect) {
        printf("    %s: %d hits, expected %d\n", label, hits->n, expect);
        return 0;
    }
    for (int i = 0; i < expect; i++) {
        const ref_hit *r = &ref[offset + i];
        const vdx_hit *h = &hits->hits[i];
        if (fabs(h->dist - r->dist) > 1e-6) {
            printf("    %s: hit %d dist %.9f, reference %.9f\n", label, i, h->dist, r->dist);
            return 0;
        }
        if (strcmp(h->id, f->ids[r->index]) != 0) {
            int hi = index_of_id(f, h->id);
            double hd = 1e9;
            for (int j = 0; j < n_ref; j++)
                if (ref[j].index == hi)
                    hd = ref[j].dist;
            if (fabs(hd - r->dist) >= 1e-6) {
                printf("    %s: hit %d is %s, reference %s (dist %.9f vs %.9f)\n", label, i,
                       h->id, f->ids[r->index], hd, r->dist);
                return 0;
            }
        }
        if (strcmp(h->url, h->id) != 0) {
            printf("    %s: hit %d url '%s' for id '%s'\n", label, i, h->url, h->id);
            return 0;
        }
    }
    return 1;
}

/* ---- open, create, model identity ---- */

TEST(create_reopen_and_info)
{
    const char *data = test_tmpdir("store");
    const char *name = collection_name("create");
    vdx_model_identity m = model_identity("clip-test", 'b', 16);
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(s, "create: %s", err.message);
    CHECK(vdx_store_count(s) == 0, "count %lld", (long long)vdx_store_count(s));
    char expect_dir[4096];
    snprintf(expect_dir, sizeof expect_dir, "%s/collections/%s", data, name);
    CHECK(strcmp(vdx_store_dir(s), expect_dir) == 0, "dir %s", vdx_store_dir(s));
    CHECK(strcmp(vdx_store_collection(s), name) == 0, "name %s", vdx_store_collection(s));
    cJSON *info = NULL;
    REQUIRE(vdx_store_info(s, &info, &err) == 0, "info: %s", err.message);
    cJSON *model = cJSON_GetObjectItem(info, "model");
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(info, "collection")), name) == 0,
          "collection");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(model, "dims")) == 16, "dims");
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(model, "name")), "clip-test") == 0,
          "model name");
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(info, "vector_type")), "f32") == 0,
          "vector type");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(info, "count")) == 0, "count");
    cJSON_Delete(info);
    vdx_store_close(s);

    /* Reopen without a model: the identity comes from the collection. */
    s = open_store(data, name, 0, NULL, VDX_VECTOR_F32, 1, &err);
    REQUIRE(s, "reopen: %s", err.message);
    const vdx_model_identity *got = vdx_store_model(s);
    CHECK(strcmp(got->name, "clip-test") == 0 && got->dims == 16 &&
              strcmp(got->config_hash, m.config_hash) == 0,
          "identity %s %d %s", got->name, got->dims, got->config_hash);
    vdx_store_close(s);
    remove_tree(data);
}

TEST(missing_collection_refused)
{
    const char *data = test_tmpdir("store");
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, collection_name("absent"), 0, NULL, VDX_VECTOR_F32, 1, &err);
    CHECK(!s, "opened a collection that does not exist");
    CHECK(contains(err.message, "does not exist"), "message: %s", err.message);
    vdx_store_close(s);
    vdx_model_identity m = model_identity("m", 'a', 8);
    vdx_store_options o = {.data_dir = data, .collection = "x", .url = store_url(), .create = 1};
    CHECK(!vdx_store_open(&o, &err) && contains(err.message, "needs the model"),
          "create without model: %s", err.message);
    o.model = &m;
    o.read_only = 1;
    CHECK(!vdx_store_open(&o, &err) && contains(err.message, "read-only"),
          "create read-only: %s", err.message);
    remove_tree(data);
}

TEST(collection_names_validated)
{
    const char *data = test_tmpdir("store");
    vdx_model_identity m = model_identity("m", 'a', 8);
    const char *bad[] = {"", "../etc", "a/b", "..", ".", "a b", "x..y", "é",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vdx_error err = {{0}};
        vdx_store *s = open_store(data, bad[i], 1, &m, VDX_VECTOR_F32, 0, &err);
        CHECK(!s, "name '%s' accepted", bad[i]);
        CHECK(contains(err.message, "collection name"), "'%s': %s", bad[i], err.message);
        vdx_store_close(s);
    }
    vdx_error err = {{0}};
    vdx_store_options o = {.data_dir = data, .collection = "ok-Name_1.2"};
    char dir[4096];
    CHECK(vdx_store_collection_dir(&o, dir, sizeof dir, &err) == 0, "%s", err.message);
    char expect[4096];
    snprintf(expect, sizeof expect, "%s/collections/ok-Name_1.2", data);
    CHECK(strcmp(dir, expect) == 0, "dir %s", dir);
    remove_tree(data);
}

TEST(data_dir_resolution)
{
    char dir[4096];
    vdx_error err = {{0}};
    vdx_store_options o = {.data_dir = "/explicit"};
    CHECK(vdx_store_resolve_dir(&o, dir, sizeof dir, &err) == 0 && strcmp(dir, "/explicit") == 0,
          "explicit: %s", dir);
    char *saved_home = getenv("VDX_HOME") ? strdup(getenv("VDX_HOME")) : NULL;
    setenv("VDX_HOME", "/from-env", 1);
    o.data_dir = NULL;
    CHECK(vdx_store_resolve_dir(&o, dir, sizeof dir, &err) == 0 && strcmp(dir, "/from-env") == 0,
          "VDX_HOME: %s", dir);
    unsetenv("VDX_HOME");
    char expect[4096];
    snprintf(expect, sizeof expect, "%s/.local/share/vdx", getenv("HOME"));
    CHECK(vdx_store_resolve_dir(&o, dir, sizeof dir, &err) == 0 && strcmp(dir, expect) == 0,
          "default: %s", dir);
    if (saved_home)
        setenv("VDX_HOME", saved_home, 1);
    free(saved_home);
}

TEST(unknown_store_url_refused)
{
    vdx_error err = {{0}};
    vdx_store_options o = {.data_dir = "/tmp", .url = "ftp://example.com/"};
    CHECK(!vdx_store_open(&o, &err), "opened ftp://");
    CHECK(contains(err.message, "unknown store URL 'ftp://example.com/'"), "%s", err.message);
}

TEST(model_mismatch_refused)
{
    const char *data = test_tmpdir("store");
    const char *name = collection_name("mismatch");
    vdx_model_identity big = model_identity("openai/clip-vit-base-patch32", 'c', 512);
    vdx_model_identity tiny = model_identity("clip-tiny", 'd', 32);
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, name, 1, &big, VDX_VECTOR_F32, 0, &err);
    REQUIRE(s, "create: %s", err.message);
    vdx_store_close(s);
    char expect[1024];
    snprintf(expect, sizeof expect,
             "collection '%s' was embedded with model openai/clip-vit-base-patch32 "
             "(fingerprint cccccccccccc…, 512-d); this model is clip-tiny (fingerprint "
             "dddddddddddd…, 32-d): use --model openai/clip-vit-base-patch32 or another "
             "--collection",
             name);
    s = open_store(data, name, 0, &tiny, VDX_VECTOR_F32, 1, &err);
    CHECK(!s, "query with another model accepted");
    CHECK(strcmp(err.message, expect) == 0, "message:\n      %s\n    expected:\n      %s",
          err.message, expect);
    vdx_store_close(s);
    /* An ingest (create) with another model is refused the same way. */
    s = open_store(data, name, 1, &tiny, VDX_VECTOR_F32, 0, &err);
    CHECK(!s && strcmp(err.message, expect) == 0, "ingest with another model: %s", err.message);
    vdx_store_close(s);
    /* Same fingerprint, other dims: refused too. */
    vdx_model_identity odd = big;
    odd.dims = 256;
    s = open_store(data, name, 0, &odd, VDX_VECTOR_F32, 1, &err);
    CHECK(!s && contains(err.message, "256-d"), "dims mismatch: %s", err.message);
    vdx_store_close(s);
    /* The same model under another file name is the same model. */
    vdx_model_identity renamed = big;
    snprintf(renamed.name, sizeof renamed.name, "pytorch_model.bin");
    s = open_store(data, name, 0, &renamed, VDX_VECTOR_F32, 1, &err);
    CHECK(s, "same fingerprint refused: %s", err.message);
    vdx_store_close(s);
    remove_tree(data);
}

/* ---- append and read back ---- */

TEST(append_round_trip)
{
    const char *data = test_tmpdir("store");
    const char *name = collection_name("roundtrip");
    vdx_model_identity m = model_identity("m", 'a', 8);
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(s, "create: %s", err.message);
    float v[3][8];
    uint64_t seed = 7;
    for (int i = 0; i < 3; i++)
        random_unit(&seed, v[i], 8);
    const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x00, 0x01, 0xff, 0xd9};
    const char *names[] = {"photo_description", "photographer_username", "ai_country"};
    const char *values0[] = {"A \"quoted\" café ☕ — O'Brien", "ann", NULL};
    const char *values1[] = {"", "bob", "FR"};
    const char *names2[] = {"photographer_username", "extra col \"x\""};
    const char *values2[] = {"cy", "weird"};
    vdx_item items[] = {
        {.id = "p1", .url = "https://images.example/p1", .width = 4000, .height = 3000,
         .meta_names = names, .meta_values = values0, .n_meta = 3, .vector = v[0],
         .thumbnail = jpeg, .thumbnail_size = sizeof jpeg},
        {.id = "broken", .url = "https://images.example/404", .failure = "HTTP 404"},
        {.id = "p2", .url = "https://images.example/p2", .width = 10, .height = 20,
         .meta_names = names, .meta_values = values1, .n_meta = 3, .vector = v[1]},
        {.id = "p3/ü.jpg", .url = "/data/p3.jpg", .meta_names = names2,
         .meta_values = values2, .n_meta = 2, .vector = v[2]},
    };
    REQUIRE(vdx_store_append(s, items, 4, &err) == 0, "append: %s", err.message);
    CHECK(vdx_store_count(s) == 3, "count %lld", (long long)vdx_store_count(s));

    char **cols = NULL;
    int n_cols = 0;
    REQUIRE(vdx_store_columns(s, &cols, &n_cols, &err) == 0, "columns: %s", err.message);
    CHECK(n_cols == 4, "%d columns", n_cols);
    const char *expect_cols[] = {"photo_description", "photographer_username", "ai_country",
                                 "extra col \"x\""};
    for (int i = 0; i < n_cols && i < 4; i++) {
        CHECK(strcmp(cols[i], expect_cols[i]) == 0, "column %d: %s", i, cols[i]);
    }
    for (int i = 0; i < n_cols; i++)
        free(cols[i]);
    free(cols);

    const char *ids[] = {"p3/ü.jpg", "p1"};
    float got[16];
    REQUIRE(vdx_store_get_vectors(s, ids, 2, got, &err) == 0, "get_vectors: %s", err.message);
    CHECK(memcmp(got, v[2], sizeof v[2]) == 0 && memcmp(got + 8, v[0], sizeof v[0]) == 0,
          "vectors differ");
    const char *unknown[] = {"p1", "nope"};
    CHECK(vdx_store_get_vectors(s, unknown, 2, got, &err) != 0 && contains(err.message, "'nope'"),
          "unknown id: %s", err.message);
    const char *failed_id[] = {"broken"};
    CHECK(vdx_store_get_vectors(s, failed_id, 1, got, &err) != 0 &&
              contains(err.message, "'broken'"),
          "failed id: %s", err.message);

    cJSON *item = NULL;
    REQUIRE(vdx_store_get_item(s, "p1", &item, &err) == 0, "get_item: %s", err.message);
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(item, "url")),
                 "https://images.example/p1") == 0, "url");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(item, "width")) == 4000, "width");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(item, "height")) == 3000, "height");
    const char *at = cJSON_GetStringValue(cJSON_GetObjectItem(item, "ingested_at"));
    CHECK(at && strlen(at) == 20 && at[10] == 'T' && at[19] == 'Z', "ingested_at %s", at ? at : "");
    cJSON *meta = cJSON_GetObjectItem(item, "metadata");
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(meta, "photo_description")),
                 values0[0]) == 0, "description");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(meta, "ai_country")), "NULL value");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(meta, "extra col \"x\"")), "absent column is null");
    CHECK(!cJSON_GetObjectItem(item, "failure"), "stored item has a failure field");
    cJSON_Delete(item);
    REQUIRE(vdx_store_get_item(s, "p2", &item, &err) == 0, "get_item p2: %s", err.message);
    meta = cJSON_GetObjectItem(item, "metadata");
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(meta, "photo_description")), "") == 0,
          "empty string kept apart from NULL");
    cJSON_Delete(item);
    CHECK(vdx_store_get_item(s, "zzz", &item, &err) != 0 && contains(err.message, "'zzz'"),
          "unknown item: %s", err.message);

    uint8_t *thumb = NULL;
    size_t thumb_size = 0;
    REQUIRE(vdx_store_get_thumbnail(s, "p1", &thumb, &thumb_size, &err) == 0, "thumbnail: %s",
            err.message);
    CHECK(thumb_size == sizeof jpeg && memcmp(thumb, jpeg, sizeof jpeg) == 0, "thumbnail bytes");
    free(thumb);
    CHECK(vdx_store_get_thumbnail(s, "p2", &thumb, &thumb_size, &err) != 0 &&
              contains(err.message, "'p2'"),
          "missing thumbnail: %s", err.message);

    cJSON *failures = NULL;
    REQUIRE(vdx_store_failures(s, &failures, &err) == 0, "failures: %s", err.message);
    CHECK(cJSON_GetArraySize(failures) == 1, "%d failures", cJSON_GetArraySize(failures));
    cJSON *f0 = cJSON_GetArrayItem(failures, 0);
    CHECK(f0 && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(f0, "id")), "broken") == 0 &&
              strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(f0, "reason")), "HTTP 404") == 0 &&
              strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(f0, "url")),
                     "https://images.example/404") == 0 &&
              cJSON_GetStringValue(cJSON_GetObjectItem(f0, "time")),
          "failure entry");
    cJSON_Delete(failures);

    const char *state_ids[] = {"p1", "broken", "never", "p3/ü.jpg"};
    vdx_item_state states[4];
    REQUIRE(vdx_store_item_states(s, state_ids, 4, states, &err) == 0, "states: %s", err.message);
    CHECK(states[0] == VDX_ITEM_STORED && states[1] == VDX_ITEM_FAILED &&
              states[2] == VDX_ITEM_ABSENT && states[3] == VDX_ITEM_STORED,
          "states %d %d %d %d", states[0], states[1], states[2], states[3]);
    vdx_store_close(s);

    /* Everything survives a reopen. */
    s = open_store(data, name, 0, &m, VDX_VECTOR_F32, 1, &err);
    REQUIRE(s, "reopen: %s", err.message);
    CHECK(vdx_store_count(s) == 3, "count after reopen %lld", (long long)vdx_store_count(s));
    REQUIRE(vdx_store_get_vectors(s, ids, 2, got, &err) == 0, "get_vectors: %s", err.message);
    CHECK(memcmp(got, v[2], sizeof v[2]) == 0, "vector after reopen");
    vdx_store_close(s);
    remove_tree(data);
}

TEST(add_columns_rules)
{
    const char *data = test_tmpdir("store");
    vdx_model_identity m = model_identity("m", 'a', 8);
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, collection_name("cols"), 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(s, "create: %s", err.message);
    const char *a[] = {"b", "a", "b"};
    CHECK(vdx_store_add_columns(s, a, 3, &err) == 0, "add: %s", err.message);
    CHECK(vdx_store_add_columns(s, a, 2, &err) == 0, "idempotent: %s", err.message);
    const char *builtin[] = {"URL"};
    CHECK(vdx_store_add_columns(s, builtin, 1, &err) != 0 && contains(err.message, "'URL'"),
          "builtin name: %s", err.message);
    char **cols;
    int n;
    REQUIRE(vdx_store_columns(s, &cols, &n, &err) == 0, "%s", err.message);
    CHECK(n == 2 && strcmp(cols[0], "b") == 0 && strcmp(cols[1], "a") == 0, "columns");
    for (int i = 0; i < n; i++)
        free(cols[i]);
    free(cols);
    vdx_store_close(s);
    remove_tree(data);
}

TEST(batch_is_atomic)
{
    const char *data = test_tmpdir("store");
    const char *name = collection_name("atomic");
    vdx_model_identity m = model_identity("m", 'a', 8);
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(s, "create: %s", err.message);
    float v[6][8];
    uint64_t seed = 11;
    for (int i = 0; i < 6; i++)
        random_unit(&seed, v[i], 8);
    vdx_item first = {.id = "taken", .url = "u", .vector = v[0]};
    REQUIRE(vdx_store_append(s, &first, 1, &err) == 0, "%s", err.message);
    /* The fourth item's id is already stored: nothing of this batch may stay. */
    vdx_item batch[] = {{.id = "n1", .url = "u1", .vector = v[1]},
                        {.id = "f1", .url = "uf", .failure = "timeout"},
                        {.id = "n2", .url = "u2", .vector = v[2]},
                        {.id = "taken", .url = "u3", .vector = v[3]}};
    CHECK(vdx_store_append(s, batch, 4, &err) != 0, "batch with a stored id accepted");
    CHECK(contains(err.message, "'taken'") && contains(err.message, "already stored"),
          "message: %s", err.message);
    CHECK(vdx_store_count(s) == 1, "count %lld", (long long)vdx_store_count(s));
    const char *ids[] = {"n1", "f1", "n2"};
    vdx_item_state st[3];
    REQUIRE(vdx_store_item_states(s, ids, 3, st, &err) == 0, "%s", err.message);
    CHECK(st[0] == VDX_ITEM_ABSENT && st[1] == VDX_ITEM_ABSENT && st[2] == VDX_ITEM_ABSENT,
          "states %d %d %d", st[0], st[1], st[2]);
    /* A NaN vector is refused before anything is written. */
    float bad[8];
    memcpy(bad, v[4], sizeof bad);
    bad[3] = NAN;
    vdx_item nan_batch[] = {{.id = "ok", .url = "u", .vector = v[4]},
                            {.id = "nan", .url = "u", .vector = bad}};
    CHECK(vdx_store_append(s, nan_batch, 2, &err) != 0 && contains(err.message, "nan") &&
              contains(err.message, "element 3"),
          "NaN: %s", err.message);
    /* Duplicates inside one batch. */
    vdx_item dup[] = {{.id = "d", .url = "u", .vector = v[4]},
                      {.id = "d", .url = "u", .vector = v[5]}};
    CHECK(vdx_store_append(s, dup, 2, &err) != 0 && contains(err.message, "'d'"),
          "duplicate in batch: %s", err.message);
    CHECK(vdx_store_count(s) == 1, "count %lld", (long long)vdx_store_count(s));
    /* The next good batch lands in the right rows. */
    vdx_item good[] = {{.id = "g1", .url = "u", .vector = v[4]},
                       {.id = "g2", .url = "u", .vector = v[5]}};
    REQUIRE(vdx_store_append(s, good, 2, &err) == 0, "%s", err.message);
    vdx_store_close(s);
    s = open_store(data, name, 0, NULL, VDX_VECTOR_F32, 1, &err);
    REQUIRE(s, "reopen: %s", err.message);
    CHECK(vdx_store_count(s) == 3, "count %lld", (long long)vdx_store_count(s));
    const char *gids[] = {"taken", "g1", "g2"};
    float got[24];
    REQUIRE(vdx_store_get_vectors(s, gids, 3, got, &err) == 0, "%s", err.message);
    CHECK(memcmp(got, v[0], 32) == 0 && memcmp(got + 8, v[4], 32) == 0 &&
              memcmp(got + 16, v[5], 32) == 0,
          "vectors after a failed batch");
    if (embedded()) {
        cJSON *info;
        REQUIRE(vdx_store_info(s, &info, &err) == 0, "%s", err.message);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(info, "vector_bytes")) == 64 + 3 * 32,
              "vector file holds exactly the committed rows: %g bytes",
              cJSON_GetNumberValue(cJSON_GetObjectItem(info, "vector_bytes")));
        cJSON_Delete(info);
    }
    vdx_store_close(s);
    remove_tree(data);
}

TEST(failure_then_success)
{
    const char *data = test_tmpdir("store");
    vdx_model_identity m = model_identity("m", 'a', 8);
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, collection_name("retry"), 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(s, "create: %s", err.message);
    float v[8];
    uint64_t seed = 3;
    random_unit(&seed, v, 8);
    vdx_item fail1 = {.id = "x", .url = "u", .failure = "timeout"};
    vdx_item fail2 = {.id = "x", .url = "u", .failure = "HTTP 503"};
    vdx_item other = {.id = "y", .url = "u", .failure = "not an image"};
    REQUIRE(vdx_store_append(s, &fail1, 1, &err) == 0, "%s", err.message);
    REQUIRE(vdx_store_append(s, &fail2, 1, &err) == 0, "failure replaces failure: %s",
            err.message);
    REQUIRE(vdx_store_append(s, &other, 1, &err) == 0, "%s", err.message);
    cJSON *failures;
    REQUIRE(vdx_store_failures(s, &failures, &err) == 0, "%s", err.message);
    CHECK(cJSON_GetArraySize(failures) == 2, "%d failures", cJSON_GetArraySize(failures));
    cJSON *f0 = cJSON_GetArrayItem(failures, 0);
    CHECK(f0 && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(f0, "reason")), "HTTP 503") == 0,
          "latest reason kept");
    cJSON_Delete(failures);
    vdx_item ok = {.id = "x", .url = "u", .vector = v};
    REQUIRE(vdx_store_append(s, &ok, 1, &err) == 0, "success replaces failure: %s", err.message);
    CHECK(vdx_store_count(s) == 1, "count");
    CHECK(vdx_store_append(s, &fail1, 1, &err) != 0 && contains(err.message, "already stored"),
          "failure for a stored id: %s", err.message);
    REQUIRE(vdx_store_failures(s, &failures, &err) == 0, "%s", err.message);
    CHECK(cJSON_GetArraySize(failures) == 1, "%d failures", cJSON_GetArraySize(failures));
    cJSON_Delete(failures);
    REQUIRE(vdx_store_clear_failures(s, &err) == 0, "%s", err.message);
    REQUIRE(vdx_store_failures(s, &failures, &err) == 0, "%s", err.message);
    CHECK(cJSON_GetArraySize(failures) == 0, "%d failures after clear",
          cJSON_GetArraySize(failures));
    cJSON_Delete(failures);
    const char *ids[] = {"x", "y"};
    vdx_item_state st[2];
    REQUIRE(vdx_store_item_states(s, ids, 2, st, &err) == 0, "%s", err.message);
    CHECK(st[0] == VDX_ITEM_STORED && st[1] == VDX_ITEM_ABSENT, "states %d %d", st[0], st[1]);
    vdx_store_close(s);
    remove_tree(data);
}

/* What embedded the vectors: runs recorded, summed per kind, kept across reopening,
 * refused on a read-only handle (which changes nothing). */
TEST(embedding_records_summed_in_info)
{
    const char *data = test_tmpdir("store");
    const char *name = collection_name("embedded-with");
    vdx_model_identity m = model_identity("m", 'e', 8);
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(s, "create: %s", err.message);
    cJSON *info = NULL;
    REQUIRE(vdx_store_info(s, &info, &err) == 0, "%s", err.message);
    CHECK(!cJSON_GetObjectItem(info, "embedded_with"), "a new collection has no record");
    cJSON_Delete(info);
    vdx_embedding_record bf16 = {"bf16", "brg:avx512_core_bf16", "reduced", 20};
    vdx_embedding_record fp32 = {"fp32", "brg:avx512_core", "exact", 5};
    vdx_embedding_record outside = {"external", NULL, NULL, 7};
    REQUIRE(vdx_store_record_embedding(s, &bf16, &err) == 0, "%s", err.message);
    REQUIRE(vdx_store_record_embedding(s, &fp32, &err) == 0, "%s", err.message);
    REQUIRE(vdx_store_record_embedding(s, &bf16, &err) == 0, "%s", err.message);
    REQUIRE(vdx_store_record_embedding(s, &outside, &err) == 0, "%s", err.message);
    vdx_embedding_record bad = {NULL, NULL, NULL, 1};
    CHECK(vdx_store_record_embedding(s, &bad, &err) != 0 &&
              contains(err.message, "needs a precision"), "a record without a precision: %s",
          err.message);
    vdx_store_close(s);
    s = open_store(data, name, 0, NULL, VDX_VECTOR_F32, 1, &err);
    REQUIRE(s, "reopen read-only: %s", err.message);
    CHECK(vdx_store_record_embedding(s, &fp32, &err) != 0 && contains(err.message, "read-only"),
          "read-only handle: %s", err.message);
    REQUIRE(vdx_store_info(s, &info, &err) == 0, "%s", err.message);
    cJSON *kinds = cJSON_GetObjectItem(info, "embedded_with");
    REQUIRE(cJSON_GetArraySize(kinds) == 3, "%d kinds", cJSON_GetArraySize(kinds));
    struct { const char *precision, *isa, *decode; double items, runs; } want[] = {
        {"bf16", "brg:avx512_core_bf16", "reduced", 40, 2},
        {"fp32", "brg:avx512_core", "exact", 5, 1},
        {"external", NULL, NULL, 7, 1}};
    for (int i = 0; i < 3; i++) {
        cJSON *k = cJSON_GetArrayItem(kinds, i);
        const char *isa = cJSON_GetStringValue(cJSON_GetObjectItem(k, "isa"));
        const char *decode = cJSON_GetStringValue(cJSON_GetObjectItem(k, "decode"));
        CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(k, "precision")), want[i].precision) == 0 &&
                  (want[i].isa ? isa && strcmp(isa, want[i].isa) == 0 : !isa) &&
                  (want[i].decode ? decode && strcmp(decode, want[i].decode) == 0 : !decode) &&
                  cJSON_GetNumberValue(cJSON_GetObjectItem(k, "items")) == want[i].items &&
                  cJSON_GetNumberValue(cJSON_GetObjectItem(k, "runs")) == want[i].runs &&
                  cJSON_GetStringValue(cJSON_GetObjectItem(k, "last"))[0] == '2',
              "kind %d (%s) differs", i, want[i].precision);
    }
    cJSON_Delete(info);
    vdx_store_close(s);
    remove_tree(data);
}

/* ---- search ---- */

typedef struct filter_case {
    const char *where;
    int (*allowed)(const fixture *, int, const void *);
} filter_case;

static int only_a(const fixture *f, int i, const void *ctx)
{
    (void)ctx;
    return strcmp(f->grp[i], "a") == 0;
}
static int score_over_50(const fixture *f, int i, const void *ctx)
{
    (void)ctx;
    return f->score[i] > 50;
}
static int a_or_c_mid(const fixture *f, int i, const void *ctx)
{
    (void)ctx;
    return (f->grp[i][0] == 'a' || f->grp[i][0] == 'c') && f->score[i] >= 10 &&
           f->score[i] <= 60;
}
static int name_null_or_b(const fixture *f, int i, const void *ctx)
{
    (void)ctx;
    return i % 10 == 0 || !(strcmp(f->grp[i], "b") != 0);
}

typedef struct excluded {
    const char *const *ids;
    size_t n;
    const filter_case *filter;
    char *mask; /* by fixture index, filled from ids */
} excluded;

static void fill_mask(const fixture *f, excluded *x)
{
    memset(x->mask, 0, (size_t)f->n);
    for (size_t j = 0; j < x->n; j++) {
        int i = index_of_id(f, x->ids[j]);
        if (i >= 0)
            x->mask[i] = 1;
    }
}

static int not_excluded(const fixture *f, int i, const void *ctx)
{
    const excluded *x = ctx;
    if (x->filter && x->filter->allowed && !x->filter->allowed(f, i, NULL))
        return 0;
    return !x->mask[i];
}

/* Search results equal the brute-force reference for many (k, offset, exclusion, where)
 * combinations, for the query vectors given. */
static void check_searches(fixture *f, vdx_vector_type type, const char *label)
{
    static const filter_case filters[] = {
        {NULL, NULL},
        {"grp = 'a'", only_a},
        {"score > 50", score_over_50},
        {"grp IN ('a', 'c') AND score BETWEEN 10 AND 60", a_or_c_mid},
        {"name IS NULL OR NOT (grp <> 'b')", name_null_or_b},
    };
    int ks[] = {1, 9, 40};
    int offsets[] = {0, 7};
    uint64_t seed = 99;
    float *q = malloc((size_t)f->dims * sizeof *q);
    char *mask = malloc((size_t)f->n);
    ref_hit *ref = malloc((size_t)f->n * sizeof *ref);
    size_t n_many = f->n > 5200 ? 5000 : (size_t)f->n / 2;
    const char **many = malloc((n_many + 20) * sizeof *many);
    for (size_t j = 0; j < n_many; j++)
        many[j] = f->ids[(j * 13) % f->n];
    for (size_t j = 0; j < 20; j++) /* ids the collection does not hold are ignored */
        many[n_many + j] = "not-an-id";
    for (int qi = 0; qi < 3 && !test_case_failed; qi++) {
        random_unit(&seed, q, f->dims);
        if (qi == 2) /* an unnormalised query: search normalises it */
            for (int d = 0; d < f->dims; d++)
                q[d] *= 3.5f;
        for (size_t fi = 0; fi < sizeof filters / sizeof filters[0]; fi++) {
            for (int ex = 0; ex < 3; ex++) {
                excluded x = {NULL, 0, &filters[fi], mask};
                fill_mask(f, &x);
                if (ex == 1) {
                    /* exclude the current top 5 hits */
                    ref_hit *top = malloc((size_t)f->n * sizeof *top);
                    int nt = reference_search(f, type, q, not_excluded, &x, top);
                    static const char *top_ids[5];
                    for (int j = 0; j < 5 && j < nt; j++)
                        top_ids[j] = f->ids[top[j].index];
                    x.ids = top_ids;
                    x.n = nt < 5 ? (size_t)nt : 5;
                    free(top);
                    fill_mask(f, &x);
                } else if (ex == 2) {
                    x.ids = many;
                    x.n = n_many + 20;
                    fill_mask(f, &x);
                }
                int n_ref = reference_search(f, type, q, not_excluded, &x, ref);
                for (size_t ki = 0; ki < 3; ki++)
                    for (size_t oi = 0; oi < 2; oi++) {
                        vdx_search_request req = {.query = q, .k = ks[ki], .offset = offsets[oi],
                                                  .exclude_ids = x.ids, .n_exclude = x.n,
                                                  .where = filters[fi].where};
                        vdx_hits hits = {0};
                        vdx_error err = {{0}};
                        if (vdx_store_search(f->store, &req, &hits, &err) != 0) {
                            CHECK(0, "%s: search where=%s: %s", label,
                                  filters[fi].where ? filters[fi].where : "-", err.message);
                            goto out;
                        }
                        char what[256];
                        snprintf(what, sizeof what,
                                 "%s query %d where=%s excluded=%zu k=%d offset=%d", label, qi,
                                 filters[fi].where ? filters[fi].where : "-", x.n, ks[ki],
                                 offsets[oi]);
                        CHECK(matches_reference(f, &hits, ref, n_ref, ks[ki], offsets[oi], what),
                              "%s", what);
                        vdx_hits_free(&hits);
                        if (test_case_failed)
                            goto out;
                    }
            }
        }
    }
out:
    free(q);
    free(mask);
    free(ref);
    free(many);
}

TEST(search_equals_brute_force)
{
    fixture f;
    if (make_fixture(&f, "search", 6000, 64, VDX_VECTOR_F32, 12345) != 0) {
        CHECK(0, "fixture");
        free_fixture(&f);
        return;
    }
    CHECK(vdx_store_count(f.store) == 6000, "count %lld", (long long)vdx_store_count(f.store));
    /* Default threading, forced threads (2 and 3 ranges), and the portable kernel. */
    check_searches(&f, VDX_VECTOR_F32, "default");
    if (embedded()) {
        setenv("VDX_SEARCH_THREADS", "3", 1);
        check_searches(&f, VDX_VECTOR_F32, "3 threads");
        setenv("VDX_SCAN_KERNEL", "portable", 1);
        setenv("VDX_SEARCH_THREADS", "2", 1);
        check_searches(&f, VDX_VECTOR_F32, "portable kernel, 2 threads");
        unsetenv("VDX_SCAN_KERNEL");
        unsetenv("VDX_SEARCH_THREADS");
    }
    free_fixture(&f);
}

TEST(search_float16_collection)
{
    fixture f;
    if (make_fixture(&f, "f16", 3000, 48, VDX_VECTOR_F16, 777) != 0) {
        CHECK(0, "fixture");
        free_fixture(&f);
        return;
    }
    cJSON *info = NULL;
    vdx_error err = {{0}};
    REQUIRE(vdx_store_info(f.store, &info, &err) == 0, "%s", err.message);
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(info, "vector_type")), "f16") == 0,
          "vector type");
    cJSON_Delete(info);
    /* Stored vectors are the float16 roundings (round to nearest even) of what was given. */
    float got[48];
    int mismatches = 0;
    for (int i = 0; i < f.n; i += 97) {
        const char *id = f.ids[i];
        REQUIRE(vdx_store_get_vectors(f.store, &id, 1, got, &err) == 0, "%s", err.message);
        for (int d = 0; d < 48; d++)
            mismatches += got[d] != (float)stored_component(&f, VDX_VECTOR_F16, i, d);
    }
    CHECK(mismatches == 0, "%d float16 components differ from _Float16 rounding", mismatches);
    check_searches(&f, VDX_VECTOR_F16, "f16");
    if (embedded()) {
        setenv("VDX_SCAN_KERNEL", "portable", 1);
        check_searches(&f, VDX_VECTOR_F16, "f16 portable");
        unsetenv("VDX_SCAN_KERNEL");
    }
    free_fixture(&f);
}

/* float16 storage rounds to nearest even like the compiler's _Float16, on the F16C and
 * the portable path, subnormals included; values beyond float16's range are refused. */
TEST(float16_rounding)
{
    const char *data = test_tmpdir("store");
    vdx_model_identity m = model_identity("m", 'a', 64);
    float v[50][64];
    uint64_t seed = 8;
    for (int i = 0; i < 50; i++)
        for (int d = 0; d < 64; d++) {
            /* random mantissa, exponents from 2^-30 (below float16 subnormals) to 2^15 */
            double mant = 1.0 + (double)(rng_next(&seed) >> 11) / 9007199254740992.0;
            int e2 = (int)(rng_next(&seed) % 46) - 30;
            v[i][d] = (float)ldexp(rng_next(&seed) & 1 ? -mant : mant, e2);
        }
    v[0][0] = 65504.0f;            /* the largest float16 */
    v[0][1] = 1.0f + 0x1p-11f;      /* halfway between 1 and the next float16: to even, 1 */
    v[0][4] = 1.0f + 0x3p-11f;      /* halfway again: to even, up */
    v[0][5] = 0x1.08p-20f;          /* subnormal halfway cases: 16.5 and 17.5 steps */
    v[0][6] = 0x1.18p-20f;
    v[0][2] = 0x1p-25f;             /* half the smallest subnormal: rounds to zero */
    v[0][3] = 0x1.8p-25f;           /* rounds up to the smallest subnormal */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            setenv("VDX_SCAN_KERNEL", "portable", 1);
        vdx_error err = {{0}};
        char name[64];
        snprintf(name, sizeof name, "%s%d", collection_name("round"), pass);
        vdx_store *s = open_store(data, name, 1, &m, VDX_VECTOR_F16, 0, &err);
        REQUIRE(s, "create: %s", err.message);
        vdx_item items[50];
        char ids[50][8];
        for (int i = 0; i < 50; i++) {
            snprintf(ids[i], sizeof ids[i], "h%d", i);
            items[i] = (vdx_item){.id = ids[i], .url = "u", .vector = v[i]};
        }
        REQUIRE(vdx_store_append(s, items, 50, &err) == 0, "%s", err.message);
        int bad = 0;
        for (int i = 0; i < 50; i++) {
            float got[64];
            const char *id = ids[i];
            REQUIRE(vdx_store_get_vectors(s, &id, 1, got, &err) == 0, "%s", err.message);
            for (int d = 0; d < 64; d++)
                if (got[d] != (float)(_Float16)v[i][d] && bad++ < 3)
                    printf("    pass %d: %a stored as %a, _Float16 gives %a\n", pass,
                           (double)v[i][d], (double)got[d], (double)(float)(_Float16)v[i][d]);
        }
        CHECK(bad == 0, "pass %d: %d components rounded differently", pass, bad);
        float big[64];
        memcpy(big, v[1], sizeof big);
        big[5] = 70000.0f;
        vdx_item too_big = {.id = "big", .url = "u", .vector = big};
        CHECK(vdx_store_append(s, &too_big, 1, &err) != 0 && err.kind == VDX_ERR_INVALID &&
                  contains(err.message, "element 5 (70000) does not fit a float16 collection"),
              "overflow: %s", err.message);
        vdx_store_close(s);
    }
    unsetenv("VDX_SCAN_KERNEL");
    remove_tree(data);
}

/* The batch rules store.c owns for every backend, one message each, nothing stored. */
TEST(batch_rules_are_the_same_for_every_backend)
{
    const char *data = test_tmpdir("store");
    vdx_model_identity m = model_identity("m", 'a', 16);
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, collection_name("batch"), 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(s, "create: %s", err.message);
    float v[16] = {1};
    const char *names[2] = {"Color", "color"}, *values[2] = {"red", "blue"};
    vdx_item twice[3] = {{.id = "a", .url = "u", .vector = v},
                         {.id = "b", .url = "u", .vector = v},
                         {.id = "a", .url = "u", .failure = "HTTP 404"}};
    CHECK(vdx_store_append(s, twice, 3, &err) != 0 && err.kind == VDX_ERR_INVALID &&
              contains(err.message, "id 'a' appears twice in the batch (items 0 and 2)"),
          "duplicate ids: %s", err.message);
    vdx_item columns = {.id = "c", .url = "u", .vector = v, .n_meta = 2,
                        .meta_names = names, .meta_values = values};
    CHECK(vdx_store_append(s, &columns, 1, &err) != 0 && err.kind == VDX_ERR_INVALID &&
              contains(err.message, "item 'c' names column 'color' twice"),
          "column twice: %s", err.message);
    CHECK(vdx_store_count(s) == 0, "a refused batch stored %lld items",
          (long long)vdx_store_count(s));
    vdx_store_close(s);
    remove_tree(data);
}

TEST(search_ties_by_id_and_vectors)
{
    const char *data = test_tmpdir("store");
    vdx_model_identity m = model_identity("m", 'a', 16);
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, collection_name("ties"), 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(s, "create: %s", err.message);
    float v[4][16];
    uint64_t seed = 5;
    for (int i = 0; i < 4; i++)
        random_unit(&seed, v[i], 16);
    /* Three copies of one vector under ids appended out of order. */
    vdx_item items[] = {{.id = "m", .url = "u-m", .vector = v[0]},
                        {.id = "other1", .url = "u1", .vector = v[1]},
                        {.id = "c", .url = "u-c", .vector = v[0]},
                        {.id = "x", .url = "u-x", .vector = v[0]},
                        {.id = "other2", .url = "u2", .vector = v[2]}};
    REQUIRE(vdx_store_append(s, items, 5, &err) == 0, "%s", err.message);
    vdx_search_request req = {.query = v[0], .k = 3, .with_vectors = 1};
    vdx_hits hits = {0};
    REQUIRE(vdx_store_search(s, &req, &hits, &err) == 0, "%s", err.message);
    REQUIRE(hits.n == 3, "%d hits", hits.n);
    CHECK(strcmp(hits.hits[0].id, "c") == 0 && strcmp(hits.hits[1].id, "m") == 0 &&
              strcmp(hits.hits[2].id, "x") == 0,
          "tie order %s %s %s", hits.hits[0].id, hits.hits[1].id, hits.hits[2].id);
    CHECK(hits.hits[0].dist == hits.hits[1].dist && fabs(hits.hits[0].dist) < 1e-6,
          "dist %g %g", hits.hits[0].dist, hits.hits[1].dist);
    CHECK(strcmp(hits.hits[0].url, "u-c") == 0, "url %s", hits.hits[0].url);
    CHECK(hits.hits[2].vector && memcmp(hits.hits[2].vector, v[0], sizeof v[0]) == 0,
          "with_vectors");
    vdx_hits_free(&hits);
    /* Paging past the end, k = 0, everything excluded, a where matching nothing. */
    req = (vdx_search_request){.query = v[1], .k = 9, .offset = 4};
    REQUIRE(vdx_store_search(s, &req, &hits, &err) == 0, "%s", err.message);
    CHECK(hits.n == 1, "offset 4 of 5: %d hits", hits.n);
    vdx_hits_free(&hits);
    req.offset = 5;
    REQUIRE(vdx_store_search(s, &req, &hits, &err) == 0, "%s", err.message);
    CHECK(hits.n == 0 && !hits.hits, "offset 5 of 5: %d hits", hits.n);
    req = (vdx_search_request){.query = v[1], .k = 0};
    REQUIRE(vdx_store_search(s, &req, &hits, &err) == 0 && hits.n == 0, "k=0");
    const char *all[] = {"m", "other1", "c", "x", "other2"};
    req = (vdx_search_request){.query = v[1], .k = 3, .exclude_ids = all, .n_exclude = 5};
    REQUIRE(vdx_store_search(s, &req, &hits, &err) == 0 && hits.n == 0, "all excluded");
    req = (vdx_search_request){.query = v[1], .k = 3, .where = "url = 'nothing'"};
    REQUIRE(vdx_store_search(s, &req, &hits, &err) == 0 && hits.n == 0, "where nothing");
    /* Bad queries. */
    float zero[16] = {0};
    req = (vdx_search_request){.query = zero, .k = 3};
    CHECK(vdx_store_search(s, &req, &hits, &err) != 0 && contains(err.message, "zero length"),
          "zero query: %s", err.message);
    float nan_q[16];
    memcpy(nan_q, v[1], sizeof nan_q);
    nan_q[15] = INFINITY;
    req.query = nan_q;
    CHECK(vdx_store_search(s, &req, &hits, &err) != 0 && contains(err.message, "element 15"),
          "inf query: %s", err.message);
    req = (vdx_search_request){.query = v[1], .k = -1};
    CHECK(vdx_store_search(s, &req, &hits, &err) != 0, "negative k accepted");
    vdx_store_close(s);
    remove_tree(data);
}

TEST(score_all_is_raw_dot_products)
{
    fixture f;
    if (make_fixture(&f, "score", 1500, 32, VDX_VECTOR_F32, 4242) != 0) {
        CHECK(0, "fixture");
        free_fixture(&f);
        return;
    }
    float w[32];
    uint64_t seed = 1;
    random_unit(&seed, w, 32);
    for (int d = 0; d < 32; d++)
        w[d] *= 7.0f; /* a classifier weight is not unit-length */
    const char *excl[] = {f.ids[3], f.ids[4]};
    vdx_search_request req = {.query = w, .k = 1, .offset = 3, .where = "grp = 'a'",
                              .exclude_ids = excl, .n_exclude = 2, .with_vectors = 1};
    vdx_hits hits = {0};
    vdx_error err = {{0}};
    REQUIRE(vdx_store_score_all(f.store, &req, &hits, &err) == 0, "%s", err.message);
    int expect = 0, j = 0;
    for (int i = 0; i < f.n; i++) {
        if (strcmp(f.grp[i], "a") != 0 || i == 3 || i == 4)
            continue;
        expect++;
        if (j >= hits.n)
            continue;
        const vdx_hit *h = &hits.hits[j++];
        double dot = 0;
        for (int d = 0; d < 32; d++)
            dot += (double)w[d] * f.vectors[(size_t)i * 32 + d];
        CHECK(strcmp(h->id, f.ids[i]) == 0, "order: %s, expected %s", h->id, f.ids[i]);
        CHECK(fabs(h->dist - dot) < 1e-5, "%s: %f vs %f", h->id, h->dist, dot);
        CHECK(h->vector && memcmp(h->vector, f.vectors + (size_t)i * 32, 128) == 0, "vector");
        CHECK(h->url && strcmp(h->url, f.ids[i]) == 0, "%s: url %s", h->id, h->url ? h->url : "NULL");
        if (test_case_failed)
            break;
    }
    CHECK(hits.n == expect, "%d scores, expected %d", hits.n, expect);
    /* without_urls: the same ids and scores; a url only where the backend has it anyway
     * (ClickHouse), and then the right one */
    vdx_hits bare = {0};
    req.without_urls = 1;
    req.with_vectors = 0;
    REQUIRE(vdx_store_score_all(f.store, &req, &bare, &err) == 0, "%s", err.message);
    CHECK(bare.n == hits.n, "without urls: %d scores, with: %d", bare.n, hits.n);
    for (int i = 0; i < bare.n && i < hits.n && !test_case_failed; i++)
        CHECK(!strcmp(bare.hits[i].id, hits.hits[i].id) && bare.hits[i].dist == hits.hits[i].dist &&
                  (!bare.hits[i].url || !strcmp(bare.hits[i].url, hits.hits[i].url)) &&
                  (bare.hits[i].url == NULL) == embedded() &&
                  !bare.hits[i].vector,
              "without urls, hit %d: %s %g url %s", i, bare.hits[i].id, bare.hits[i].dist,
              bare.hits[i].url ? bare.hits[i].url : "NULL");
    vdx_hits_free(&bare);
    /* without_ids: the scores alone, in the same order */
    req.without_ids = 1;
    REQUIRE(vdx_store_score_all(f.store, &req, &bare, &err) == 0, "%s", err.message);
    CHECK(bare.n == hits.n, "without ids: %d scores, with: %d", bare.n, hits.n);
    for (int i = 0; i < bare.n && i < hits.n && !test_case_failed; i++)
        CHECK(!bare.hits[i].id && !bare.hits[i].url && bare.hits[i].dist == hits.hits[i].dist,
              "without ids, hit %d: id %s, %g vs %g", i, bare.hits[i].id ? bare.hits[i].id : "NULL",
              bare.hits[i].dist, hits.hits[i].dist);
    vdx_hits_free(&bare);
    /* score_values: the same scores as floats (no index here: exact, bound 0) */
    float *values = NULL;
    size_t n_values = 0;
    double bound = -1;
    REQUIRE(vdx_store_score_values(f.store, &req, &values, &n_values, &bound, &err) == 0, "%s",
            err.message);
    CHECK(n_values == (size_t)hits.n && bound == 0, "score_values: %zu scores (%d), bound %g",
          n_values, hits.n, bound);
    for (size_t i = 0; i < n_values && i < (size_t)hits.n && !test_case_failed; i++)
        CHECK(values[i] == hits.hits[i].dist, "score_values %zu: %g vs %g", i, values[i],
              hits.hits[i].dist);
    free(values);
    vdx_hits_free(&hits);
    free_fixture(&f);
}

/* Threads sharing one handle get the same answers as one thread alone. */
typedef struct shared_search {
    vdx_store *store;
    const float *queries;
    char (*expect)[8][16]; /* top-8 ids per query */
    int n_queries, dims, wrong;
    int growing; /* a writer appends meanwhile: check order only, refresh first */
} shared_search;

typedef struct background_writer {
    const fixture *f;
    int appended, failed;
} background_writer;

static void *append_more(void *arg)
{
    background_writer *w = arg;
    vdx_model_identity m = model_identity("test-model", 'a', w->f->dims);
    vdx_error err = {{0}};
    vdx_store *s = open_store(w->f->data, w->f->name, 0, &m, VDX_VECTOR_F32, 0, &err);
    if (!s) {
        w->failed = 1;
        return NULL;
    }
    uint64_t seed = 77;
    float v[64];
    for (int i = 0; i < 150 && !w->failed; i++) {
        char id[24];
        snprintf(id, sizeof id, "more-%d", i);
        random_unit(&seed, v, w->f->dims);
        vdx_item it = {.id = id, .url = id, .vector = v};
        w->failed = vdx_store_append(s, &it, 1, &err) != 0;
        w->appended += !w->failed;
    }
    vdx_store_close(s);
    return NULL;
}

static void *search_many(void *arg)
{
    shared_search *job = arg;
    for (int round = 0; round < 5; round++)
        for (int q = 0; q < job->n_queries; q++) {
            vdx_error err = {{0}};
            if (job->growing) { /* another handle appends: answers change, order must hold */
                vdx_search_request req = {.query = job->queries + (size_t)q * job->dims, .k = 8};
                vdx_hits hits = {0};
                if (vdx_store_refresh(job->store, &err) != 0 ||
                    vdx_store_search(job->store, &req, &hits, &err) != 0 || hits.n != 8) {
                    job->wrong++;
                    continue;
                }
                for (int i = 1; i < 8; i++)
                    job->wrong += hits.hits[i].dist < hits.hits[i - 1].dist;
                vdx_hits_free(&hits);
                continue;
            }
            vdx_search_request req = {.query = job->queries + (size_t)q * job->dims, .k = 8,
                                      .where = q % 2 ? "grp <> 'b'" : NULL};
            vdx_hits hits = {0};
            if (vdx_store_search(job->store, &req, &hits, &err) != 0 || hits.n != 8) {
                job->wrong++;
                continue;
            }
            for (int i = 0; i < 8; i++)
                job->wrong += strcmp(hits.hits[i].id, job->expect[q][i]) != 0;
            vdx_hits_free(&hits);
        }
    return NULL;
}

TEST(handle_shared_by_threads)
{
    fixture f;
    if (make_fixture(&f, "shared", 2000, 32, VDX_VECTOR_F32, 99) != 0) {
        CHECK(0, "fixture");
        free_fixture(&f);
        return;
    }
    enum { QUERIES = 6, THREADS = 4 };
    float queries[QUERIES * 32];
    char expect[QUERIES][8][16];
    uint64_t seed = 5;
    for (int q = 0; q < QUERIES; q++) {
        random_unit(&seed, queries + q * 32, 32);
        vdx_search_request req = {.query = queries + q * 32, .k = 8,
                                  .where = q % 2 ? "grp <> 'b'" : NULL};
        vdx_hits hits = {0};
        vdx_error err = {{0}};
        REQUIRE(vdx_store_search(f.store, &req, &hits, &err) == 0 && hits.n == 8, "%s",
                err.message);
        for (int i = 0; i < 8; i++)
            snprintf(expect[q][i], sizeof expect[q][i], "%s", hits.hits[i].id);
        vdx_hits_free(&hits);
    }
    shared_search jobs[THREADS];
    pthread_t tids[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (shared_search){f.store, queries, expect, QUERIES, 32, 0, 0};
        pthread_create(&tids[t], NULL, search_many, &jobs[t]);
    }
    int wrong = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(tids[t], NULL);
        wrong += jobs[t].wrong;
    }
    CHECK(wrong == 0, "%d wrong answers from threads sharing the handle", wrong);

    /* Threads sharing a reader handle that refreshes (remaps, grows its id index) while
     * another handle appends (the fixture's writer lets go of the write lock first). */
    vdx_store_close(f.store);
    f.store = NULL;
    vdx_error err = {{0}};
    vdx_store *reader = open_store(f.data, f.name, 0, NULL, VDX_VECTOR_F32, 1, &err);
    REQUIRE(reader, "%s", err.message);
    background_writer w = {&f, 0, 0};
    pthread_t writer;
    pthread_create(&writer, NULL, append_more, &w);
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (shared_search){reader, queries, expect, QUERIES, 32, 0, 1};
        pthread_create(&tids[t], NULL, search_many, &jobs[t]);
    }
    wrong = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(tids[t], NULL);
        wrong += jobs[t].wrong;
    }
    pthread_join(writer, NULL);
    CHECK(!w.failed && w.appended == 150, "background appends: %d", w.appended);
    CHECK(wrong == 0, "%d failed or unordered searches while the collection grew", wrong);
    REQUIRE(vdx_store_refresh(reader, &err) == 0, "%s", err.message);
    CHECK(vdx_store_count(reader) == 2150, "count %lld", (long long)vdx_store_count(reader));
    vdx_store_close(reader);
    free_fixture(&f);
}

/* ---- filters through the store ---- */

TEST(where_filters_are_safe)
{
    const char *data = test_tmpdir("store");
    vdx_model_identity m = model_identity("m", 'a', 8);
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, collection_name("where"), 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(s, "create: %s", err.message);
    float v[6][8];
    uint64_t seed = 17;
    for (int i = 0; i < 6; i++)
        random_unit(&seed, v[i], 8);
    const char *names[] = {"photo_featured", "label", "photo_width"};
    const char *vals[6][3] = {{"t", "O'Brien", "5000"},   {"f", "a1\\' OR 1=1 --", "800"},
                              {"t", "café ☕!", "1200"},    {"f", "plain", "n/a"},
                              {"t", "\"dq\"", "  90000 "}, {"f", "x; DROP TABLE items", NULL}};
    vdx_item items[6];
    char ids[6][8];
    for (int i = 0; i < 6; i++) {
        snprintf(ids[i], sizeof ids[i], "w%d", i);
        items[i] = (vdx_item){.id = ids[i], .url = ids[i], .meta_names = names,
                              .meta_values = vals[i], .n_meta = 3, .vector = v[i]};
    }
    REQUIRE(vdx_store_append(s, items, 6, &err) == 0, "%s", err.message);
    struct {
        const char *where;
        const char *ids; /* expected matches, by id digit, or NULL for an error */
        const char *message;
    } cases[] = {
        {"photo_featured = 't'", "024", NULL},
        {"label = 'O''Brien'", "0", NULL},
        {"label = 'a1\\'' OR 1=1 --'", "1", NULL},
        {"label = 'café ☕!'", "2", NULL},
        {"label = '\"dq\"'", "4", NULL},
        {"label = 'x; DROP TABLE items'", "5", NULL},
        {"photo_width > 1000", "02", NULL}, /* "  90000 " with spaces is not a number */
        {"photo_width >= 800 AND photo_width < 5000", "12", NULL},
        {"photo_width IN (800, 5000)", "01", NULL},
        {"photo_width IS NULL", "5", NULL},
        {"photo_width = '800'", "1", NULL},
        {"lower(label) LIKE 'o''b%'", "0", NULL},
        {"label LIKE 'CAFÉ%'", "2", NULL},
        {"upper(label) = 'CAFÉ ☕!'", "2", NULL},
        {"length(label) = 7", "02", NULL},
        {"id = 'w1' OR id = 'w3'", "13", NULL},
        {"NOT photo_featured = 't' AND label NOT LIKE '%DROP%'", "13", NULL},
        {"photo_featured = 't'; DROP TABLE items", NULL, "';' at byte 20 is not allowed"},
        {"1=1 --", NULL, "comments are not allowed ('--' at byte 4)"},
        {"label = 'a1\\' OR 1=1 --'", NULL, "comments are not allowed"},
        {"label = 'open", NULL, "string starting at byte 8 is not closed"},
        {"nope = 1", NULL, "unknown column 'nope' at byte 0 (columns: id, url, width, height, "
                           "ingested_at, photo_featured, label, photo_width)"},
        {"photo_featured = \"t\"", NULL, "unknown column 't' at byte 17"},
        {"id IN (SELECT id FROM items)", NULL, "subqueries are not allowed (SELECT at byte 7)"},
        {"sqlite_version() = 1", NULL, "function 'sqlite_version' at byte 0 is not allowed"},
        {"label = 'a' /* x */", NULL, "comments are not allowed ('/*' at byte 12)"},
        {"label", NULL, "expected a comparison"},
        {"", NULL, NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vdx_search_request req = {.query = v[0], .k = 10, .where = cases[c].where};
        vdx_hits hits = {0};
        int rc = vdx_store_search(s, &req, &hits, &err);
        if (!cases[c].ids && cases[c].where[0]) {
            CHECK(rc != 0, "where %s: accepted", cases[c].where);
            CHECK(contains(err.message, cases[c].message), "where %s: %s", cases[c].where,
                  err.message);
            continue;
        }
        if (rc != 0) {
            CHECK(0, "where %s: %s", cases[c].where, err.message);
            continue;
        }
        char got[16] = "";
        for (int i = 0; i < hits.n && i < 15; i++)
            got[strlen(got)] = hits.hits[i].id[1];
        /* sort the digits */
        for (size_t a = 0; got[a]; a++)
            for (size_t b = a + 1; got[b]; b++)
                if (got[b] < got[a]) {
                    char t = got[a];
                    got[a] = got[b];
                    got[b] = t;
                }
        const char *want = cases[c].ids ? cases[c].ids : "012345";
        CHECK(strcmp(got, want) == 0, "where %s: matched %s, expected %s", cases[c].where, got,
              want);
        vdx_hits_free(&hits);
    }
    /* a blank filter is no filter, on every backend */
    vdx_search_request blank = {.query = v[0], .k = 10, .where = " \t "};
    vdx_hits all = {0};
    CHECK(vdx_store_search(s, &blank, &all, &err) == 0 && all.n == 6, "blank where: %d hits (%s)",
          all.n, err.message);
    vdx_hits_free(&all);
    CHECK(vdx_store_count(s) == 6, "the collection is intact: %lld", (long long)vdx_store_count(s));
    /* a filter that fails while it runs (a column as LIKE pattern holding 60,000 bytes: SQLite
     * refuses patterns over 50,000) says why, quoting at most 80 bytes of the filter
     * (ClickHouse refuses a column as the pattern outright) */
    static char long_label[60001], long_where[400];
    memset(long_label, 'a', sizeof long_label - 1);
    const char *long_vals[3] = {"t", long_label, "1"};
    vdx_item long_item = {.id = "w6", .url = "w6", .meta_names = names,
                          .meta_values = long_vals, .n_meta = 3, .vector = v[0]};
    REQUIRE(vdx_store_append(s, &long_item, 1, &err) == 0, "%s", err.message);
    snprintf(long_where, sizeof long_where, "id <> '%0300d' AND photo_featured LIKE label", 0);
    vdx_search_request failing = {.query = v[0], .k = 10, .where = long_where};
    vdx_hits none = {0};
    int failed = vdx_store_search(s, &failing, &none, &err) != 0;
    CHECK(failed && (!embedded() || (contains(err.message, "where \"id <> '000000") &&
                                     contains(err.message, "...\": LIKE or GLOB pattern too complex") &&
                                     strlen(err.message) < 200)),
          "a filter failing at run time: %s", err.message);
    vdx_hits_free(&none);
    vdx_store_close(s);
    remove_tree(data);
}

/* ---- concurrency ---- */

TEST(reader_sees_appends_after_refresh)
{
    const char *data = test_tmpdir("store");
    const char *name = collection_name("readers");
    vdx_model_identity m = model_identity("m", 'a', 8);
    vdx_error err = {{0}};
    vdx_store *w = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(w, "writer: %s", err.message);
    float v[40][8];
    uint64_t seed = 23;
    for (int i = 0; i < 40; i++)
        random_unit(&seed, v[i], 8);
    vdx_item first = {.id = "r0", .url = "u", .vector = v[0]};
    REQUIRE(vdx_store_append(w, &first, 1, &err) == 0, "%s", err.message);
    vdx_store *r = open_store(data, name, 0, &m, VDX_VECTOR_F32, 1, &err);
    REQUIRE(r, "reader: %s", err.message);
    CHECK(vdx_store_count(r) == 1, "reader count %lld", (long long)vdx_store_count(r));
    /* Many appends, each growing the vector file; the reader refreshes in between. */
    for (int i = 1; i < 40; i++) {
        char id[8];
        snprintf(id, sizeof id, "r%d", i);
        vdx_item it = {.id = id, .url = "u", .vector = v[i]};
        REQUIRE(vdx_store_append(w, &it, 1, &err) == 0, "%s", err.message);
        if (i % 13 == 0) {
            CHECK(vdx_store_count(r) < i + 1 || !embedded(), "reader saw rows before refresh");
            REQUIRE(vdx_store_refresh(r, &err) == 0, "refresh: %s", err.message);
            CHECK(vdx_store_count(r) == i + 1, "after refresh %lld, expected %d",
                  (long long)vdx_store_count(r), i + 1);
            vdx_search_request req = {.query = v[i], .k = 1};
            vdx_hits hits = {0};
            REQUIRE(vdx_store_search(r, &req, &hits, &err) == 0, "%s", err.message);
            CHECK(hits.n == 1 && strcmp(hits.hits[0].id, id) == 0, "reader finds %s", id);
            vdx_hits_free(&hits);
        }
    }
    /* get_vectors of an id appended after the last refresh still works. */
    const char *late[] = {"r39"};
    float got[8];
    CHECK(vdx_store_get_vectors(r, late, 1, got, &err) == 0 && memcmp(got, v[39], 32) == 0,
          "late id: %s", err.message);
    /* A read-only handle refuses writes. */
    vdx_item it = {.id = "ro", .url = "u", .vector = v[0]};
    CHECK(vdx_store_append(r, &it, 1, &err) != 0 && contains(err.message, "read-only"),
          "read-only append: %s", err.message);
    CHECK(vdx_store_clear_failures(r, &err) != 0, "read-only clear");
    vdx_store_close(r);
    vdx_store_close(w);
    remove_tree(data);
}

TEST(single_writer_lock)
{
    const char *data = test_tmpdir("store");
    const char *name = collection_name("lock");
    vdx_model_identity m = model_identity("m", 'a', 8);
    vdx_error err = {{0}};
    vdx_store *a = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(a, "first writer: %s", err.message);
    vdx_store *b = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
    char expect[256];
    snprintf(expect, sizeof expect, "collection '%s' is being written by another process (pid %ld",
             name, (long)getpid());
    CHECK(!b, "second writer opened");
    CHECK(contains(err.message, expect), "message: %s", err.message);
    vdx_store_close(b);
    /* A plain (not create) handle opens, reads, and fails only when it writes. */
    vdx_store *c = open_store(data, name, 0, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(c, "non-writing handle: %s", err.message);
    float v[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    vdx_item it = {.id = "a", .url = "u", .vector = v};
    CHECK(vdx_store_append(c, &it, 1, &err) != 0 && contains(err.message, "another process"),
          "second writer append: %s", err.message);
    /* Once the first writer is gone, the lock is free. */
    vdx_store_close(a);
    CHECK(vdx_store_append(c, &it, 1, &err) == 0, "append after release: %s", err.message);
    vdx_store_close(c);
    remove_tree(data);
}

/* ---- crash safety ---- */

/* What a writer killed between its vector write and its commit leaves behind (rows past
 * the committed count) is invisible to readers and cut by the next writer; a vector file
 * shorter than the committed count is reported, never read past its end. */
TEST(uncommitted_rows_invisible_then_cut)
{
    if (!embedded())
        SKIP("the vector file is the embedded backend's");
    const char *data = test_tmpdir("store");
    const char *name = collection_name("torn");
    vdx_model_identity m = model_identity("m", 'a', 8);
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(s, "create: %s", err.message);
    float v[4][8];
    uint64_t seed = 31;
    for (int i = 0; i < 4; i++)
        random_unit(&seed, v[i], 8);
    vdx_item items[] = {{.id = "a", .url = "u", .vector = v[0]},
                        {.id = "b", .url = "u", .vector = v[1]},
                        {.id = "c", .url = "u", .vector = v[2]}};
    REQUIRE(vdx_store_append(s, items, 3, &err) == 0, "%s", err.message);
    char path[4200];
    snprintf(path, sizeof path, "%s/vectors.f32", vdx_store_dir(s));
    vdx_store_close(s);
    FILE *f = fopen(path, "ab");
    REQUIRE(f, "open %s", path);
    uint8_t junk[80];
    memset(junk, 0x7f, sizeof junk); /* 2.5 rows of garbage */
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);

    vdx_store *r = open_store(data, name, 0, &m, VDX_VECTOR_F32, 1, &err);
    REQUIRE(r, "reader: %s", err.message);
    CHECK(vdx_store_count(r) == 3, "reader count %lld", (long long)vdx_store_count(r));
    vdx_search_request req = {.query = v[3], .k = 10};
    vdx_hits hits = {0};
    REQUIRE(vdx_store_search(r, &req, &hits, &err) == 0, "%s", err.message);
    CHECK(hits.n == 3, "reader searched %d rows", hits.n);
    vdx_hits_free(&hits);
    vdx_store_close(r);

    vdx_store *w = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(w, "writer: %s", err.message);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 64 + 3 * 32, "vector file %lld bytes after the "
          "writer opened", (long long)st.st_size);
    vdx_item d = {.id = "d", .url = "u", .vector = v[3]};
    REQUIRE(vdx_store_append(w, &d, 1, &err) == 0, "%s", err.message);
    const char *ids[] = {"c", "d"};
    float got[16];
    REQUIRE(vdx_store_get_vectors(w, ids, 2, got, &err) == 0, "%s", err.message);
    CHECK(memcmp(got, v[2], 32) == 0 && memcmp(got + 8, v[3], 32) == 0, "vectors after the cut");
    vdx_store_close(w);

    /* A vector file cut short (damage): both kinds of open say so. */
    REQUIRE(truncate(path, 64 + 2 * 32) == 0, "truncate");
    r = open_store(data, name, 0, &m, VDX_VECTOR_F32, 1, &err);
    CHECK(!r && contains(err.message, "holds 2 rows but the collection counts 4"), "reader: %s",
          err.message);
    vdx_store_close(r);
    w = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
    CHECK(!w && contains(err.message, "shorter than the 4 committed rows need"), "writer: %s",
          err.message);
    vdx_store_close(w);
    remove_tree(data);
}

/* ---- reading where SQLite cannot create its write-ahead log files ---- */

/* What a read-only handle opened in a child process that may not grow any file (as on a
 * full disk: SQLite cannot size collection.db-shm) reports back. */
typedef struct wal_less_read {
    int opened;
    long long count;
    char first_id[32];
    char message[VDX_ERROR_MAX];
} wal_less_read;

/* Forks a reader under RLIMIT_FSIZE = 0 that opens the collection read-only, searches,
 * reports on *report, then keeps its handle until the parent writes to *hold. */
static pid_t wal_less_reader(const char *data, const char *name, int read_only, const float *query,
                             int report[2], int hold[2])
{
    if (pipe(report) != 0 || pipe(hold) != 0)
        return -1;
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_FSIZE, &none);
    wal_less_read r;
    memset(&r, 0, sizeof r);
    vdx_model_identity m = model_identity("m", 'a', 8);
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, name, 0, &m, VDX_VECTOR_F32, read_only, &err);
    vdx_search_request req = {.query = query, .k = 1};
    vdx_hits hits = {0};
    if (s && vdx_store_search(s, &req, &hits, &err) == 0 && hits.n == 1) {
        r.opened = 1;
        r.count = (long long)vdx_store_count(s);
        snprintf(r.first_id, sizeof r.first_id, "%s", hits.hits[0].id);
    }
    snprintf(r.message, sizeof r.message, "%s", err.message);
    vdx_hits_free(&hits);
    if (write(report[1], &r, sizeof r) != (ssize_t)sizeof r)
        _exit(1);
    char c;
    if (read(hold[0], &c, 1) < 0)
        _exit(1);
    vdx_store_close(s);
    _exit(0);
}

static void finish_reader(pid_t pid, int report[2], int hold[2])
{
    if (write(hold[1], "x", 1) != 1)
        kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(report[0]);
    close(report[1]);
    close(hold[0]);
    close(hold[1]);
}

/* On a read-only file system, in a directory the user may not write or on a full disk,
 * SQLite cannot create collection.db-shm and every read used to fail ("unable to open
 * database file", "disk I/O error"). A read-only handle now reads the database file alone
 * while it holds write.lock shared: it sees the last commit, a writer is refused with
 * the reason while it reads, it is refused while a writer holds the lock, and a log
 * holding commits the file lacks is refused rather than ignored. */
TEST(reader_without_wal_index)
{
    if (!embedded())
        SKIP("the WAL files are the embedded backend's");
    const char *data = test_tmpdir("store");
    const char *name = collection_name("walless");
    vdx_model_identity m = model_identity("m", 'a', 8);
    vdx_error err = {{0}};
    float v[3][8];
    uint64_t seed = 77;
    for (int i = 0; i < 3; i++)
        random_unit(&seed, v[i], 8);
    vdx_store *w = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
    REQUIRE(w, "create: %s", err.message);
    vdx_item items[] = {{.id = "a", .url = "u", .vector = v[0]},
                        {.id = "b", .url = "u", .vector = v[1]},
                        {.id = "c", .url = "u", .vector = v[2]}};
    REQUIRE(vdx_store_append(w, items, 3, &err) == 0, "%s", err.message);
    char dir[4200], wal[4300], shm[4300];
    snprintf(dir, sizeof dir, "%s", vdx_store_dir(w));
    snprintf(wal, sizeof wal, "%s/collection.db-wal", dir);
    snprintf(shm, sizeof shm, "%s/collection.db-shm", dir);
    vdx_store_close(w); /* the last connection: SQLite removes -wal and -shm */
    struct stat st;
    REQUIRE(stat(shm, &st) != 0, "%s still there after the writer closed", shm);

    int report[2], hold[2];
    wal_less_read r;
    pid_t pid = wal_less_reader(data, name, 1, v[1], report, hold);
    REQUIRE(pid > 0, "fork");
    ssize_t got = read(report[0], &r, sizeof r);
    CHECK(got == (ssize_t)sizeof r && r.opened && r.count == 3 && strcmp(r.first_id, "b") == 0,
          "reader: opened %d, count %lld, nearest '%s': %s", r.opened, r.count, r.first_id,
          r.message);
    /* while it reads, a writer is refused and told why */
    w = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
    CHECK(!w && contains(err.message, "is being read by a process that could not create SQLite's "
                                      "write-ahead log files"),
          "writer beside it: %s", err.message);
    vdx_store_close(w);
    finish_reader(pid, report, hold);

    /* while a writer holds the lock (here: has just taken it, before SQLite made the log
     * files a reader beside it would share), such a reader is refused */
    char lock[4300];
    snprintf(lock, sizeof lock, "%s/write.lock", dir);
    int lock_fd = open(lock, O_RDWR);
    REQUIRE(lock_fd >= 0 && flock(lock_fd, LOCK_EX | LOCK_NB) == 0, "lock %s", lock);
    pid = wal_less_reader(data, name, 1, v[1], report, hold);
    REQUIRE(pid > 0, "fork");
    got = read(report[0], &r, sizeof r);
    CHECK(got == (ssize_t)sizeof r && !r.opened && contains(r.message, "and a writer holds"),
          "reader beside a writer: opened %d: %s", r.opened, r.message);
    finish_reader(pid, report, hold);
    close(lock_fd);

    /* a log with content (a writer killed before its checkpoint) is not skipped */
    FILE *f = fopen(wal, "wb");
    REQUIRE(f, "create %s", wal);
    fputs("not yet in the database", f);
    fclose(f);
    pid = wal_less_reader(data, name, 1, v[1], report, hold);
    REQUIRE(pid > 0, "fork");
    got = read(report[0], &r, sizeof r);
    CHECK(got == (ssize_t)sizeof r && !r.opened && contains(r.message, "collection.db-wal holds 23 bytes"),
          "reader with a log: opened %d: %s", r.opened, r.message);
    finish_reader(pid, report, hold);
    /* a handle that may write cannot do without the log: the error names the file and
     * the system's reason, not only SQLite's "disk I/O error" */
    remove(wal);
    pid = wal_less_reader(data, name, 0, v[1], report, hold);
    REQUIRE(pid > 0, "fork");
    got = read(report[0], &r, sizeof r);
    CHECK(got == (ssize_t)sizeof r && !r.opened && contains(r.message, "(collection.db)") &&
              contains(r.message, "(File too large)"),
          "writer that cannot grow files: opened %d: %s", r.opened, r.message);
    finish_reader(pid, report, hold);
    remove_tree(data);
}

#define CRASH_DIMS 32
#define CRASH_BATCH 25

/* Child: opens the store, reports on `ready`, then appends batches of items "c<i>"
 * with vector_for_index(i) (plus one failure per batch), reporting each, until killed. */
static void crash_writer(const char *data, const char *name, int ready)
{
    vdx_model_identity m = model_identity("m", 'a', CRASH_DIMS);
    vdx_error err = {{0}};
    vdx_store *s = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
    if (!s) {
        fprintf(stderr, "crash writer: %s\n", err.message);
        _exit(3);
    }
    if (write(ready, "r", 1) != 1)
        _exit(5);
    static float vectors[CRASH_BATCH][CRASH_DIMS];
    static char ids[CRASH_BATCH][24], meta[CRASH_BATCH][24];
    static const uint8_t thumb[300];
    const char *names[] = {"n"};
    for (long next = vdx_store_count(s);; next += CRASH_BATCH) {
        vdx_item items[CRASH_BATCH + 1];
        const char *values[CRASH_BATCH][1];
        for (int j = 0; j < CRASH_BATCH; j++) {
            snprintf(ids[j], sizeof ids[j], "c%ld", next + j);
            snprintf(meta[j], sizeof meta[j], "%ld", next + j);
            values[j][0] = meta[j];
            vector_for_index(next + j, vectors[j], CRASH_DIMS);
            items[j] = (vdx_item){.id = ids[j], .url = ids[j], .meta_names = names,
                                  .meta_values = values[j], .n_meta = 1,
                                  .vector = vectors[j], .thumbnail = thumb,
                                  .thumbnail_size = sizeof thumb};
        }
        char fail_id[32];
        snprintf(fail_id, sizeof fail_id, "failed%ld", next);
        items[CRASH_BATCH] = (vdx_item){.id = fail_id, .url = "u", .failure = "boom"};
        if (vdx_store_append(s, items, CRASH_BATCH + 1, &err) != 0) {
            fprintf(stderr, "crash writer: %s\n", err.message);
            _exit(4);
        }
        if (write(ready, "a", 1) != 1) /* one byte per committed batch */
            _exit(5);
    }
}

/* Every invariant a reader can check: count == items with vectors, whole batches only,
 * ids c0..c<count-1> in storage order, each vector exactly what was written for its id,
 * one failure per batch. */
static int check_crashed_store(vdx_store *s, const char *when)
{
    vdx_error err = {{0}};
    int64_t count = vdx_store_count(s);
    if (count % CRASH_BATCH != 0) {
        printf("    %s: count %lld is not a whole number of batches\n", when, (long long)count);
        return 0;
    }
    float q[CRASH_DIMS] = {1};
    vdx_search_request req = {.query = q, .with_vectors = 1};
    vdx_hits hits = {0};
    if (vdx_store_score_all(s, &req, &hits, &err) != 0) {
        printf("    %s: score_all: %s\n", when, err.message);
        return 0;
    }
    int ok = hits.n == count;
    if (!ok)
        printf("    %s: %d items with vectors, count %lld\n", when, hits.n, (long long)count);
    float expect[CRASH_DIMS];
    for (int i = 0; i < hits.n && ok; i++) {
        char id[24];
        snprintf(id, sizeof id, "c%d", i);
        vector_for_index(i, expect, CRASH_DIMS);
        if (strcmp(hits.hits[i].id, id) != 0 || memcmp(hits.hits[i].vector, expect, sizeof expect)) {
            printf("    %s: row %d holds '%s' (%s vector)\n", when, i, hits.hits[i].id,
                   memcmp(hits.hits[i].vector, expect, sizeof expect) ? "wrong" : "right");
            ok = 0;
        }
    }
    vdx_hits_free(&hits);
    cJSON *failures = NULL;
    if (ok && vdx_store_failures(s, &failures, &err) == 0) {
        if (cJSON_GetArraySize(failures) != count / CRASH_BATCH) {
            printf("    %s: %d failures for %lld batches\n", when, cJSON_GetArraySize(failures),
                   (long long)(count / CRASH_BATCH));
            ok = 0;
        }
        cJSON_Delete(failures);
    }
    if (ok && count > 0) {
        char last[24];
        snprintf(last, sizeof last, "c%lld", (long long)count - 1);
        cJSON *item = NULL;
        if (vdx_store_get_item(s, last, &item, &err) != 0) {
            printf("    %s: %s\n", when, err.message);
            ok = 0;
        } else {
            const char *n = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(item, "metadata"), "n"));
            ok = n && atoll(n) == count - 1;
            if (!ok)
                printf("    %s: metadata of %s is %s\n", when, last, n ? n : "missing");
            cJSON_Delete(item);
        }
    }
    return ok;
}

TEST(crash_safety_under_sigkill)
{
    if (!embedded())
        SKIP("crash safety is proven for the embedded backend");
    const char *data = test_tmpdir("crash");
    const char *name = collection_name("crash");
    vdx_model_identity m = model_identity("m", 'a', CRASH_DIMS);
    /* a new seed each run (printed); VDX_TEST_SEED=N replays one */
    const char *given = getenv("VDX_TEST_SEED");
    uint64_t seed = given && *given ? strtoull(given, NULL, 0)
                                    : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
    printf("    seed %llu (VDX_TEST_SEED=%llu replays the kill times)\n", (unsigned long long)seed,
           (unsigned long long)seed);
    fflush(stdout);
    int rounds = 30, grew = 0, cut = 0;
    int64_t last_count = 0;
    for (int round = 0; round < rounds && !test_case_failed; round++) {
        int ready[2];
        REQUIRE(pipe(ready) == 0, "pipe");
        pid_t pid = fork();
        REQUIRE(pid >= 0, "fork");
        if (pid == 0) {
            close(ready[0]);
            crash_writer(data, name, ready[1]);
        }
        close(ready[1]);
        char byte;
        ssize_t got = read(ready[0], &byte, 1);
        /* Every third round, wait for a first committed batch (so that the store grows
         * however loaded the machine is); then kill it at a random moment 0 to 40 ms
         * later, and every fifth round right away. */
        if (got == 1 && round % 3 == 0)
            got = read(ready[0], &byte, 1);
        if (round % 5 != 4) {
            struct timespec ts = {0, (long)(rng_next(&seed) % 40000) * 1000L};
            nanosleep(&ts, NULL);
        }
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        close(ready[0]);
        REQUIRE(got == 1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                "round %d: writer ended before the kill (status %d)", round, status);
        vdx_error err = {{0}};
        /* A reader first (it must not see leftovers), then a writer (it cuts them). */
        vdx_store *r = open_store(data, name, 0, &m, VDX_VECTOR_F32, 1, &err);
        REQUIRE(r, "round %d: reader open: %s", round, err.message);
        cJSON *before = NULL;
        REQUIRE(vdx_store_info(r, &before, &err) == 0, "%s", err.message);
        cut += cJSON_GetNumberValue(cJSON_GetObjectItem(before, "vector_bytes")) >
               64 + (double)vdx_store_count(r) * CRASH_DIMS * 4;
        cJSON_Delete(before);
        char when[64];
        snprintf(when, sizeof when, "round %d (reader)", round);
        CHECK(check_crashed_store(r, when), "%s", when);
        vdx_store_close(r);
        vdx_store *w = open_store(data, name, 1, &m, VDX_VECTOR_F32, 0, &err);
        REQUIRE(w, "round %d: writer open: %s", round, err.message);
        snprintf(when, sizeof when, "round %d (writer)", round);
        CHECK(check_crashed_store(w, when), "%s", when);
        cJSON *info = NULL;
        REQUIRE(vdx_store_info(w, &info, &err) == 0, "%s", err.message);
        double bytes = cJSON_GetNumberValue(cJSON_GetObjectItem(info, "vector_bytes"));
        CHECK(bytes == 64 + (double)vdx_store_count(w) * CRASH_DIMS * 4,
              "round %d: vector file %g bytes for %lld rows", round, bytes,
              (long long)vdx_store_count(w));
        cJSON_Delete(info);
        grew += vdx_store_count(w) > last_count;
        CHECK(vdx_store_count(w) >= last_count, "round %d: count went down", round);
        last_count = vdx_store_count(w);
        vdx_store_close(w);
    }
    CHECK(grew >= rounds / 3, "the writer made progress in only %d of %d rounds", grew, rounds);
    printf("    %d kills, %lld items stored, progress in %d rounds, uncommitted vector rows "
           "left behind (and cut) in %d\n",
           rounds, (long long)last_count, grew, cut);
    remove_tree(data);
}

/* vdx_store_sample_vectors: distinct rows of the collection, the same for the same seed,
 * all of them when k exceeds the count, uniform (chi-square over 300 seeded draws), and
 * the refusal of an oversized request. */
TEST(sample_vectors_seeded_distinct_uniform)
{
    enum { N = 120, D = 16, K = 12, DRAWS = 300 };
    fixture f;
    if (make_fixture(&f, "sample", N, D, VDX_VECTOR_F32, 77) != 0) {
        CHECK(0, "fixture");
        free_fixture(&f);
        return;
    }
    static float out[N * D], again[N * D];
    int count[N] = {0};
    vdx_error err = {{0}};
    size_t got = 0;
    int bad_rows = 0, repeats = 0, changed_by_seed = 0;
    for (int draw = 0; draw < DRAWS; draw++) {
        REQUIRE(vdx_store_sample_vectors(f.store, K, (uint64_t)draw + 1, out, &got, &err) == 0,
                "%s", err.message);
        REQUIRE(got == K, "draw %d: %zu vectors, asked %d", draw, got, K);
        int seen[N] = {0};
        for (int k = 0; k < K; k++) {
            int row = -1;
            for (int i = 0; i < N && row < 0; i++)
                if (!memcmp(out + k * D, f.vectors + (size_t)i * D, D * sizeof(float)))
                    row = i;
            bad_rows += row < 0;
            if (row >= 0) {
                repeats += seen[row]++ > 0;
                count[row]++;
            }
        }
        if (draw < 3) {
            REQUIRE(vdx_store_sample_vectors(f.store, K, (uint64_t)draw + 1, again, &got, &err) == 0,
                    "%s", err.message);
            CHECK(got == K && !memcmp(out, again, K * D * sizeof(float)),
                  "seed %d drew other items the second time", draw + 1);
            REQUIRE(vdx_store_sample_vectors(f.store, K, (uint64_t)draw + 1000, again, &got, &err) == 0,
                    "%s", err.message);
            changed_by_seed += memcmp(out, again, K * D * sizeof(float)) != 0;
        }
    }
    CHECK(bad_rows == 0 && repeats == 0, "%d vectors not in the collection, %d repeats in a draw",
          bad_rows, repeats);
    CHECK(changed_by_seed == 3, "another seed gave the same draw %d times of 3", 3 - changed_by_seed);
    /* chi-square with N - 1 = 119 degrees of freedom: mean 119, sd 15.4; 200 is 5 sd */
    double expected = (double)DRAWS * K / N, chi2 = 0;
    for (int i = 0; i < N; i++)
        chi2 += (count[i] - expected) * (count[i] - expected) / expected;
    CHECK(chi2 < 200, "chi-square %.1f over %d rows: not uniform", chi2, N);
    /* more than the collection: every row once */
    REQUIRE(vdx_store_sample_vectors(f.store, 1000, 9, out, &got, &err) == 0, "%s", err.message);
    int all_once = got == N;
    for (int i = 0; all_once && i < N; i++) {
        int times = 0;
        for (size_t k = 0; k < got; k++)
            times += !memcmp(out + k * D, f.vectors + (size_t)i * D, D * sizeof(float));
        all_once = times == 1;
    }
    CHECK(all_once, "k > count: %zu vectors, not each of the %d rows once", got, N);
    REQUIRE(vdx_store_sample_vectors(f.store, 0, 9, out, &got, &err) == 0 && got == 0, "k = 0");
    CHECK(vdx_store_sample_vectors(f.store, VDX_SAMPLE_MAX + 1, 9, out, &got, &err) == -1 &&
              strstr(err.message, "a sample of 65537 vectors (at most 65536, with an output)"),
          "%s", err.message);
    free_fixture(&f);
}

int main(void)
{
    printf("# store backend: %s\n", embedded() ? "embedded" : store_url());
    RUN(create_reopen_and_info);
    RUN(missing_collection_refused);
    RUN(collection_names_validated);
    RUN(data_dir_resolution);
    RUN(unknown_store_url_refused);
    RUN(model_mismatch_refused);
    RUN(append_round_trip);
    RUN(add_columns_rules);
    RUN(batch_is_atomic);
    RUN(failure_then_success);
    RUN(search_equals_brute_force);
    RUN(search_float16_collection);
    RUN(float16_rounding);
    RUN(search_ties_by_id_and_vectors);
    RUN(score_all_is_raw_dot_products);
    RUN(handle_shared_by_threads);
    RUN(where_filters_are_safe);
    RUN(batch_rules_are_the_same_for_every_backend);
    RUN(embedding_records_summed_in_info);
    RUN(reader_sees_appends_after_refresh);
    RUN(single_writer_lock);
    RUN(reader_without_wal_index);
    RUN(uncommitted_rows_invisible_then_cut);
    RUN(crash_safety_under_sigkill);
    RUN(sample_vectors_seeded_distinct_uniform);
    return test_summary("store");
}
