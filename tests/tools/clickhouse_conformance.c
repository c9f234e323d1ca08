/* Conformance of the ClickHouse store backend with the embedded one, run by
 * tests/integration/clickhouse.sh against a throw-away server:
 *   clickhouse_conformance STORE_URL WORK_DIR
 * The same items go into an embedded collection and a ClickHouse collection; searches
 * (with paging, 5,000-id exclusion lists, filters), scores, lookups, failures and errors
 * must agree: same ids in the same order, distances within 1e-6. Ids and filter values
 * carry SQL-injection shapes (a1\' OR 1=1 --, quotes, backslashes, newlines, tabs). */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "vdx/store.h"

#define DIMS 32
#define N_ITEMS 400

static const char *store_url, *work_dir;
static char embedded_dir[4096], clickhouse_dir[4096];
static vdx_store *emb, *ch;
static char ids[N_ITEMS][64];
static float vectors[N_ITEMS][DIMS];

static const char *const tricky_ids[] = {"a1\\' OR 1=1 --", "quote'id", "back\\slash",
                                         "new\nline", "tab\tid", "semi;colon--"};
#define N_TRICKY (sizeof tricky_ids / sizeof tricky_ids[0])
static const char *const photographers[] = {"alice", "a1\\' OR 1=1 --", "O'Brien", "back\\slash",
                                            "multi\nline"};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void normalise(float *v)
{
    double n = 0;
    for (int d = 0; d < DIMS; d++)
        n += (double)v[d] * v[d];
    n = sqrt(n);
    for (int d = 0; d < DIMS; d++)
        v[d] = (float)(v[d] / n);
}

static vdx_model_identity model(const char *fingerprint)
{
    vdx_model_identity m = {.dims = DIMS};
    snprintf(m.name, sizeof m.name, "test/model");
    snprintf(m.config_hash, sizeof m.config_hash, "%s", fingerprint);
    return m;
}

static vdx_store *open_store(const char *url, const char *dir, int create, int read_only,
                             vdx_error *err)
{
    vdx_model_identity m = model("f00dfeed");
    vdx_store_options o = {.data_dir = dir, .collection = "conf", .url = url,
                           .create = create, .model = create ? &m : NULL,
                           .read_only = read_only};
    return vdx_store_open(&o, err);
}

/* Items: clustered vectors (10 centres), three metadata columns, tricky ids first. */
static void make_items(void)
{
    float centres[10][DIMS];
    for (int c = 0; c < 10; c++)
        for (int d = 0; d < DIMS; d++)
            centres[c][d] = (float)(uniform() * 2 - 1);
    for (int i = 0; i < N_ITEMS; i++) {
        if ((size_t)i < N_TRICKY)
            snprintf(ids[i], sizeof ids[i], "%s", tricky_ids[i]);
        else
            snprintf(ids[i], sizeof ids[i], "photo-%04d", i);
        for (int d = 0; d < DIMS; d++)
            vectors[i][d] = centres[i % 10][d] + (float)(uniform() - 0.5) * 0.6f;
        normalise(vectors[i]);
    }
}

static int append_all(vdx_store *s, vdx_error *err)
{
    static const char *const names[] = {"photographer", "featured", "photo_width"};
    for (int start = 0; start < N_ITEMS; start += 100) {
        vdx_item batch[100];
        char width[100][16];
        const char *values[100][3];
        for (int i = 0; i < 100; i++) {
            int k = start + i;
            snprintf(width[i], sizeof width[i], "%d", 1000 + k * 10);
            values[i][0] = photographers[k % 5];
            values[i][1] = k % 3 == 0 ? "t" : "f";
            values[i][2] = k % 7 == 0 ? NULL : width[i];
            static const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xd9};
            batch[i] = (vdx_item){.id = ids[k], .url = "https://example.org/x?a='1'",
                                  .width = 640 + k, .height = k % 4 ? 480 : 0,
                                  .meta_names = names, .meta_values = values[i], .n_meta = 3,
                                  .vector = vectors[k], .thumbnail = jpeg,
                                  .thumbnail_size = sizeof jpeg};
        }
        if (vdx_store_append(s, batch, 100, err) != 0)
            return -1;
    }
    return 0;
}

TEST(create_and_append_both)
{
    vdx_error err = {{0}};
    snprintf(embedded_dir, sizeof embedded_dir, "%s/embedded", work_dir);
    snprintf(clickhouse_dir, sizeof clickhouse_dir, "%s/clickhouse", work_dir);
    make_items();
    emb = open_store(NULL, embedded_dir, 1, 0, &err);
    REQUIRE(emb, "embedded: %s", err.message);
    ch = open_store(store_url, clickhouse_dir, 1, 0, &err);
    REQUIRE(ch, "clickhouse: %s", err.message);
    REQUIRE(append_all(emb, &err) == 0, "embedded append: %s", err.message);
    REQUIRE(append_all(ch, &err) == 0, "clickhouse append: %s", err.message);
    CHECK(vdx_store_count(ch) == N_ITEMS, "count %lld", (long long)vdx_store_count(ch));
}

/* Same ids in the same order, distances within 1e-6. */
static void compare(const char *what, const vdx_search_request *req, int score_all)
{
    vdx_error err = {{0}};
    vdx_hits a = {0}, b = {0};
    int ra = score_all ? vdx_store_score_all(emb, req, &a, &err)
                       : vdx_store_search(emb, req, &a, &err);
    CHECK(ra == 0, "%s: embedded: %s", what, err.message);
    int rb = score_all ? vdx_store_score_all(ch, req, &b, &err)
                       : vdx_store_search(ch, req, &b, &err);
    CHECK(rb == 0, "%s: clickhouse: %s", what, err.message);
    CHECK(a.n == b.n, "%s: %d hits embedded, %d clickhouse", what, a.n, b.n);
    for (int i = 0; i < a.n && i < b.n; i++) {
        CHECK(strcmp(a.hits[i].id, b.hits[i].id) == 0, "%s: hit %d: '%s' vs '%s'", what, i,
              a.hits[i].id, b.hits[i].id);
        CHECK(fabsf(a.hits[i].dist - b.hits[i].dist) <= 1e-6f, "%s: hit %d dist %.9g vs %.9g",
              what, i, a.hits[i].dist, b.hits[i].dist);
        CHECK(strcmp(a.hits[i].url, b.hits[i].url) == 0, "%s: url", what);
        if (req->with_vectors && a.hits[i].vector && b.hits[i].vector)
            CHECK(memcmp(a.hits[i].vector, b.hits[i].vector, DIMS * sizeof(float)) == 0,
                  "%s: vector of hit %d differs", what, i);
    }
    vdx_hits_free(&a);
    vdx_hits_free(&b);
}

/* Each filter's 500 nearest to item `near`: the same on both backends. */
static void compare_filters(const char *const *filters, size_t n, int near)
{
    for (size_t f = 0; f < n; f++) {
        vdx_search_request req = {.query = vectors[near], .k = 500, .where = filters[f]};
        compare(filters[f], &req, 0);
    }
}

TEST(search_equals_embedded)
{
    REQUIRE(emb && ch, "no stores");
    for (int t = 0; t < 8; t++) {
        float q[DIMS];
        for (int d = 0; d < DIMS; d++)
            q[d] = (float)(uniform() * 2 - 1) * 3; /* not normalised: the store does it */
        char what[64];
        snprintf(what, sizeof what, "query %d", t);
        vdx_search_request req = {.query = q, .k = 12, .offset = t % 2 ? 5 : 0,
                                  .with_vectors = t == 3};
        compare(what, &req, 0);
    }
    vdx_search_request near = {.query = vectors[0], .k = 3};
    vdx_hits h = {0};
    vdx_error err = {{0}};
    REQUIRE(vdx_store_search(ch, &near, &h, &err) == 0, "%s", err.message);
    CHECK(h.n == 3 && strcmp(h.hits[0].id, ids[0]) == 0 && fabsf(h.hits[0].dist) < 1e-6f,
          "nearest of item 0 is '%s' at %g", h.n ? h.hits[0].id : "", h.n ? h.hits[0].dist : -1);
    vdx_hits_free(&h);
}

TEST(exclusions_5000_ids)
{
    REQUIRE(emb && ch, "no stores");
    static char extra[5000][48];
    const char *excl[5000];
    int n = 0;
    for (int i = 0; i < N_ITEMS; i += 2) /* half the collection, tricky ids included */
        excl[n++] = ids[i];
    while (n < 5000) {
        snprintf(extra[n], sizeof extra[n], "absent-%d-'\\\n%d", n, n);
        excl[n] = extra[n];
        n++;
    }
    for (int t = 0; t < 3; t++) {
        float q[DIMS];
        memcpy(q, vectors[t * 2], sizeof q); /* its nearest are excluded ones */
        vdx_search_request req = {.query = q, .k = 20, .exclude_ids = excl, .n_exclude = 5000};
        compare("5000 exclusions", &req, 0);
        vdx_hits h = {0};
        vdx_error err = {{0}};
        REQUIRE(vdx_store_search(ch, &req, &h, &err) == 0, "%s", err.message);
        CHECK(h.n == 20, "%d hits with exclusions, expected 20", h.n);
        for (int i = 0; i < h.n; i++)
            for (int j = 0; j < N_ITEMS; j += 2)
                CHECK(strcmp(h.hits[i].id, ids[j]) != 0, "excluded '%s' returned", ids[j]);
        vdx_hits_free(&h);
    }
}

TEST(filters_and_injection)
{
    REQUIRE(emb && ch, "no stores");
    static const char *const filters[] = {
        "photographer = 'a1\\'' OR 1=1 --'", /* the value a1\' OR 1=1 -- */
        "photographer = 'O''Brien'",
        "photographer = 'back\\slash'",
        "photographer IN ('alice', 'O''Brien')",
        "featured = 't' AND (photo_width >= 2500 OR photographer = 'alice')",
        "photo_width IS NULL",
        "width BETWEEN 700 AND 800",
        "height IS NULL AND NOT featured = 'f'",
        "id = 'a1\\'' OR 1=1 --'",
        "length(photographer) = 5",
        "lower(photographer) = 'o''brien'",
        "photo_width NOT BETWEEN 1500 AND 3000", /* a syntax error on 18.16 before */
        "NOT (width NOT BETWEEN 700 AND 800) AND featured = 't'",
        /* photo_width is NULL on every 7th item: NULL [NOT] IN is NULL, never a match */
        "photo_width NOT IN (1000, 1010)",
        "NOT (photo_width IN (1070, 1140))",
        "NOT (height NOT IN (480))",
    };
    compare_filters(filters, sizeof filters / sizeof filters[0], 7);
    const float *q = vectors[7];
    /* chains of 1,000 ORs and ANDs: one level of nesting, the same rows on both */
    static char chain[40000];
    size_t len = 0;
    for (int i = 0; i < 999; i++)
        len += (size_t)snprintf(chain + len, sizeof chain - len, "photo_width = %d OR ", 3 * i);
    snprintf(chain + len, sizeof chain - len, "photographer = 'O''Brien'");
    vdx_search_request chained = {.query = q, .k = 500, .where = chain};
    compare("1,000 ORs", &chained, 0);
    len = 0;
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(chain + len, sizeof chain - len, "%swidth <> %d", i ? " AND " : "",
                                640 + 2 * i);
    compare("1,000 ANDs", &chained, 0);
    /* the injection value matches exactly its 80 items, not every row */
    vdx_search_request req = {.query = q, .k = 1000, .where = filters[0]};
    vdx_hits h = {0};
    vdx_error err = {{0}};
    REQUIRE(vdx_store_search(ch, &req, &h, &err) == 0, "%s", err.message);
    CHECK(h.n == N_ITEMS / 5, "%d rows match the injection value, expected %d", h.n,
          N_ITEMS / 5);
    vdx_hits_free(&h);
    req.where = "id = 'x'; DROP TABLE t";
    CHECK(vdx_store_search(ch, &req, &h, &err) != 0 && strstr(err.message, "';' at byte"),
          "a ';' filter is refused: %s", err.message);
    req.where = "nosuch = 1";
    CHECK(vdx_store_search(ch, &req, &h, &err) != 0 &&
              strstr(err.message, "unknown column 'nosuch'"),
          "unknown column: %s", err.message);
}

/* '\\' in a LIKE pattern is a plain character, as in SQLite: ClickHouse's LIKE took it
 * for an escape ('back\\slash' matched "backslash", not the photographer back\\slash) */
TEST(filter_like_backslash_is_literal)
{
    REQUIRE(emb && ch, "no stores");
    static const char *const filters[] = {
        "photographer LIKE 'back\\slash'",
        "photographer LIKE '%\\%'",
        "photographer LIKE '%k\\_%'",
        "photographer NOT LIKE '%\\s%'",
        "id LIKE '%\\'' OR 1=1 --'",
    };
    compare_filters(filters, sizeof filters / sizeof filters[0], 3);
    const float *q = vectors[3];
    vdx_search_request req = {.query = q, .k = 500, .where = filters[0]};
    vdx_hits h = {0};
    vdx_error err = {{0}};
    REQUIRE(vdx_store_search(ch, &req, &h, &err) == 0, "%s", err.message);
    CHECK(h.n == N_ITEMS / 5, "%d rows match 'back\\slash', expected %d", h.n, N_ITEMS / 5);
    vdx_hits_free(&h);
}

TEST(score_all_equals_embedded)
{
    REQUIRE(emb && ch, "no stores");
    float w[DIMS];
    for (int d = 0; d < DIMS; d++)
        w[d] = (float)(uniform() * 4 - 2);
    const char *excl[] = {ids[1], ids[2], "nope"};
    vdx_search_request req = {.query = w, .exclude_ids = excl, .n_exclude = 3,
                              .where = "featured = 'f'"};
    compare("score_all", &req, 1);
}

TEST(lookups_with_tricky_ids)
{
    REQUIRE(emb && ch, "no stores");
    vdx_error err = {{0}};
    const char *want[N_TRICKY + 1];
    for (size_t i = 0; i < N_TRICKY; i++)
        want[i] = tricky_ids[N_TRICKY - 1 - i];
    want[N_TRICKY] = ids[N_ITEMS - 1];
    static float got[(N_TRICKY + 1) * DIMS];
    REQUIRE(vdx_store_get_vectors(ch, want, N_TRICKY + 1, got, &err) == 0, "%s", err.message);
    for (size_t i = 0; i < N_TRICKY; i++)
        CHECK(memcmp(got + i * DIMS, vectors[N_TRICKY - 1 - i], sizeof vectors[0]) == 0,
              "vector of '%s'", want[i]);
    const char *unknown[] = {"a1' OR '1'='1"};
    CHECK(vdx_store_get_vectors(ch, unknown, 1, got, &err) != 0 &&
              strcmp(err.message, "collection 'conf': no item 'a1' OR '1'='1'") == 0,
          "unknown id: %s", err.message);
    for (size_t i = 0; i < N_TRICKY; i++) {
        cJSON *a = NULL, *b = NULL;
        CHECK(vdx_store_get_item(emb, tricky_ids[i], &a, &err) == 0, "%s", err.message);
        CHECK(vdx_store_get_item(ch, tricky_ids[i], &b, &err) == 0, "%s", err.message);
        if (a && b) {
            /* equal but for the ingestion time */
            cJSON_DeleteItemFromObject(a, "ingested_at");
            cJSON_DeleteItemFromObject(b, "ingested_at");
            char *ta = cJSON_PrintUnformatted(a), *tb = cJSON_PrintUnformatted(b);
            CHECK(strcmp(ta, tb) == 0, "get_item:\n  embedded   %s\n  clickhouse %s", ta, tb);
            free(ta);
            free(tb);
        }
        cJSON_Delete(a);
        cJSON_Delete(b);
    }
    uint8_t *jpeg = NULL;
    size_t size = 0;
    CHECK(vdx_store_get_thumbnail(ch, tricky_ids[0], &jpeg, &size, &err) == 0 && size == 4 &&
              jpeg[0] == 0xff && jpeg[3] == 0xd9,
          "thumbnail: %s", err.message);
    free(jpeg);
    char **names = NULL;
    int n = 0;
    REQUIRE(vdx_store_columns(ch, &names, &n, &err) == 0, "%s", err.message);
    CHECK(n == 3 && strcmp(names[0], "photographer") == 0 && strcmp(names[2], "photo_width") == 0,
          "columns: %d", n);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

TEST(failures_and_states)
{
    REQUIRE(emb && ch, "no stores");
    vdx_error err = {{0}};
    vdx_item failed[2] = {{.id = "broken'1", .url = "u1", .failure = "HTTP 404"},
                          {.id = "broken\\2", .url = "u2", .failure = "not an image"}};
    REQUIRE(vdx_store_append(ch, failed, 2, &err) == 0, "%s", err.message);
    failed[0].failure = "HTTP 500"; /* replaces the first failure */
    REQUIRE(vdx_store_append(ch, failed, 1, &err) == 0, "%s", err.message);
    const char *q[] = {ids[10], "broken'1", "nowhere", "broken\\2"};
    vdx_item_state st[4];
    REQUIRE(vdx_store_item_states(ch, q, 4, st, &err) == 0, "%s", err.message);
    CHECK(st[0] == VDX_ITEM_STORED && st[1] == VDX_ITEM_FAILED && st[2] == VDX_ITEM_ABSENT &&
              st[3] == VDX_ITEM_FAILED,
          "states %d %d %d %d", st[0], st[1], st[2], st[3]);
    cJSON *list = NULL;
    REQUIRE(vdx_store_failures(ch, &list, &err) == 0, "%s", err.message);
    CHECK(cJSON_GetArraySize(list) == 2, "%d failures", cJSON_GetArraySize(list));
    cJSON *f;
    int saw_500 = 0;
    cJSON_ArrayForEach(f, list)
        saw_500 |= strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(f, "reason")), "HTTP 500") == 0;
    CHECK(saw_500, "the newer failure replaced the older");
    cJSON_Delete(list);
    /* an item that succeeds later is no longer a failure */
    float v[DIMS];
    memcpy(v, vectors[5], sizeof v);
    vdx_item ok = {.id = "broken\\2", .url = "u2", .vector = v};
    REQUIRE(vdx_store_append(ch, &ok, 1, &err) == 0, "%s", err.message);
    REQUIRE(vdx_store_failures(ch, &list, &err) == 0, "%s", err.message);
    CHECK(cJSON_GetArraySize(list) == 1, "%d failures after a success", cJSON_GetArraySize(list));
    cJSON_Delete(list);
    CHECK(vdx_store_append(ch, &ok, 1, &err) != 0 &&
              strstr(err.message, "id 'broken\\2' is already stored"),
          "a stored id again: %s", err.message);
    CHECK(vdx_store_count(ch) == N_ITEMS + 1, "count %lld", (long long)vdx_store_count(ch));
    REQUIRE(vdx_store_clear_failures(ch, &err) == 0, "%s", err.message);
    REQUIRE(vdx_store_failures(ch, &list, &err) == 0, "%s", err.message);
    CHECK(cJSON_GetArraySize(list) == 0, "failures after clear");
    cJSON_Delete(list);
}

TEST(reopen_read_only_and_model_mismatch)
{
    REQUIRE(ch, "no store");
    vdx_error err = {{0}};
    vdx_store *ro = open_store(store_url, clickhouse_dir, 0, 1, &err);
    REQUIRE(ro, "reopen: %s", err.message);
    CHECK(vdx_store_count(ro) == vdx_store_count(ch), "count after reopen");
    vdx_item it = {.id = "new", .url = "", .vector = vectors[0]};
    CHECK(vdx_store_append(ro, &it, 1, &err) != 0 && strstr(err.message, "read-only"),
          "read-only append: %s", err.message);
    cJSON *info = NULL;
    REQUIRE(vdx_store_info(ro, &info, &err) == 0, "%s", err.message);
    const char *dialect = cJSON_GetStringValue(cJSON_GetObjectItem(info, "dialect"));
    CHECK(dialect && strcmp(dialect, "legacy") == 0, "dialect on 18.16: %s", dialect);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(info, "count")) == N_ITEMS + 1, "info count");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(info, "bytes_on_disk")) > 0, "bytes");
    cJSON_Delete(info);
    vdx_store_close(ro);

    vdx_model_identity other = model("0123456789abcdef");
    vdx_store_options o = {.data_dir = clickhouse_dir, .collection = "conf", .url = store_url,
                           .model = &other};
    CHECK(!vdx_store_open(&o, &err) && strstr(err.message, "collection 'conf' was embedded with "
                                                           "model test/model (fingerprint f00dfeed"),
          "mismatch: %s", err.message);
    o.collection = "nosuch";
    o.model = NULL;
    CHECK(!vdx_store_open(&o, &err) && strstr(err.message, "collection 'nosuch' does not exist "
                                                           "on ClickHouse at 127.0.0.1:"),
          "missing collection: %s", err.message);
}

TEST(connection_and_auth_errors)
{
    vdx_error err = {{0}};
    vdx_model_identity m = model("f00dfeed");
    vdx_store_options o = {.data_dir = clickhouse_dir, .collection = "conf",
                           .url = "clickhouse://bob:s3cret@127.0.0.1:1/default", .model = &m};
    CHECK(!vdx_store_open(&o, &err) &&
              strstr(err.message, "cannot connect to ClickHouse at 127.0.0.1:1: connection "
                                  "refused — is the server running?") &&
              !strstr(err.message, "s3cret"),
          "refused: %s", err.message);
    char url[512];
    const char *hostport = strstr(store_url, "127.0.0.1");
    snprintf(url, sizeof url, "http://bob:s3cret@%s", hostport ? hostport : "x");
    o.url = url;
    CHECK(!vdx_store_open(&o, &err) &&
              strstr(err.message, "refused the login of user 'bob' (Code: 192") &&
              strstr(err.message, "check USER:PASSWORD") && !strstr(err.message, "s3cret"),
          "auth: %s", err.message);
    snprintf(url, sizeof url, "http://%s/nodb", hostport ? hostport : "x");
    CHECK(!vdx_store_open(&o, &err) && strstr(err.message, "database 'nodb' does not exist"),
          "database: %s", err.message);
    o.url = "clickhouse://u:s3cret@host:99999/db";
    CHECK(!vdx_store_open(&o, &err) && strstr(err.message, "port 99999 is outside") &&
              !strstr(err.message, "s3cret"),
          "bad port: %s", err.message);
}

TEST(f16_collection_and_foreign_table)
{
    vdx_error err = {{0}};
    vdx_model_identity m = model("f00dfeed");
    char dir_e[4200], dir_c[4200];
    snprintf(dir_e, sizeof dir_e, "%s/f16-embedded", work_dir);
    snprintf(dir_c, sizeof dir_c, "%s/f16-clickhouse", work_dir);
    vdx_store_options o = {.data_dir = dir_e, .collection = "half", .create = 1, .model = &m,
                           .vector_type = VDX_VECTOR_F16};
    vdx_store *e = vdx_store_open(&o, &err);
    REQUIRE(e, "%s", err.message);
    o.data_dir = dir_c;
    o.url = store_url;
    vdx_store *c = vdx_store_open(&o, &err);
    if (!c)
        vdx_store_close(e);
    REQUIRE(c, "%s", err.message);
    vdx_item batch[20];
    const char *want[20];
    for (int i = 0; i < 20; i++) {
        batch[i] = (vdx_item){.id = ids[i], .url = "", .vector = vectors[i]};
        want[i] = ids[i];
    }
    CHECK(vdx_store_append(e, batch, 20, &err) == 0, "%s", err.message);
    CHECK(vdx_store_append(c, batch, 20, &err) == 0, "%s", err.message);
    static float a[20 * DIMS], b[20 * DIMS];
    CHECK(vdx_store_get_vectors(e, want, 20, a, &err) == 0, "%s", err.message);
    CHECK(vdx_store_get_vectors(c, want, 20, b, &err) == 0, "%s", err.message);
    CHECK(memcmp(a, b, sizeof a) == 0, "f16 vectors differ between the backends");
    CHECK(memcmp(a, vectors, sizeof a) != 0, "f16 vectors were not rounded");
    vdx_store_close(e);
    vdx_store_close(c);

    /* a table with rows that vdx did not create is refused, not adopted */
    char url[600];
    snprintf(url, sizeof url, "%s/default?table=vdx_conf_info", store_url); /* has rows */
    o = (vdx_store_options){.data_dir = dir_c, .collection = "foreign", .url = url,
                            .create = 1, .model = &m};
    vdx_store *f = vdx_store_open(&o, &err);
    CHECK(!f && strstr(err.message, "already holds") && strstr(err.message, "not made by vdx"),
          "foreign table: %s", f ? "opened" : err.message);
    vdx_store_close(f);
}

/* A writer killed mid-ingest leaves whole batches only; resuming with item_states adds
 * exactly the missing items. */
TEST(killed_writer_then_resume)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/killed", work_dir);
    vdx_error err = {{0}};
    vdx_model_identity m = model("f00dfeed");
    vdx_store_options o = {.data_dir = dir, .collection = "killed", .url = store_url,
                           .create = 1, .model = &m};
    vdx_store *s = vdx_store_open(&o, &err);
    REQUIRE(s, "%s", err.message);
    vdx_store_close(s);
    o.create = 0; /* writers that look up ids before they take the lock at their first append */
    o.model = NULL;
    int total_killed = 0;
    for (int round = 0; round < 4; round++) {
        int progress[2];
        REQUIRE(pipe(progress) == 0, "pipe");
        pid_t child = fork();
        REQUIRE(child >= 0, "fork");
        if (child == 0) { /* append everything, 25 items a batch, until killed */
            close(progress[0]);
            vdx_store *w = vdx_store_open(&o, &err);
            for (int start = 0; w && start < N_ITEMS; start += 25) {
                const char *batch_ids[25];
                vdx_item_state st[25];
                for (int i = 0; i < 25; i++)
                    batch_ids[i] = ids[start + i];
                if (vdx_store_item_states(w, batch_ids, 25, st, &err) != 0)
                    _exit(3);
                vdx_item batch[25];
                int n = 0;
                for (int i = 0; i < 25; i++)
                    if (st[i] == VDX_ITEM_ABSENT)
                        batch[n++] = (vdx_item){.id = ids[start + i], .url = "",
                                                .vector = vectors[start + i]};
                if (n && write(progress[1], "b", 1) != 1) /* about to append */
                    _exit(5);
                if (n && vdx_store_append(w, batch, (size_t)n, &err) != 0)
                    _exit(4);
            }
            _exit(w ? 0 : 2);
        }
        /* killed as it starts its third batch: during the id check or the INSERT */
        close(progress[1]);
        char done[3];
        size_t got = 0;
        ssize_t r;
        while (got < 3 && (r = read(progress[0], done + got, 3 - got)) > 0)
            got += (size_t)r;
        close(progress[0]);
        struct timespec pause = {0, 3000000L * round}; /* 0, 3, 6, 9 ms into the append */
        nanosleep(&pause, NULL);
        total_killed += kill(child, SIGKILL) == 0;
        int status;
        waitpid(child, &status, 0);
        CHECK(!WIFEXITED(status) || WEXITSTATUS(status) == 0, "writer exited %d",
              WEXITSTATUS(status));
    }
    /* resume in this process: every item once */
    s = vdx_store_open(&o, &err);
    REQUIRE(s, "%s", err.message);
    int64_t before = vdx_store_count(s);
    const char *all[N_ITEMS];
    vdx_item_state st[N_ITEMS];
    for (int i = 0; i < N_ITEMS; i++)
        all[i] = ids[i];
    REQUIRE(vdx_store_item_states(s, all, N_ITEMS, st, &err) == 0, "%s", err.message);
    static vdx_item rest[N_ITEMS];
    int n = 0, stored = 0;
    for (int i = 0; i < N_ITEMS; i++) {
        stored += st[i] == VDX_ITEM_STORED;
        if (st[i] == VDX_ITEM_ABSENT)
            rest[n++] = (vdx_item){.id = ids[i], .url = "", .vector = vectors[i]};
    }
    CHECK(stored == before,
          "%d stored ids, count %lld: no duplicates", stored, (long long)before);
    printf("# %d kills left %d of %d items stored; resuming adds %d\n", total_killed, stored,
           N_ITEMS, n);
    REQUIRE(n == 0 || vdx_store_append(s, rest, (size_t)n, &err) == 0, "%s", err.message);
    REQUIRE(vdx_store_refresh(s, &err) == 0, "%s", err.message);
    CHECK(vdx_store_count(s) == N_ITEMS, "%lld rows after resuming (%d were there, %d kills)",
          (long long)vdx_store_count(s), stored, total_killed);
    vdx_search_request req = {.query = vectors[3], .k = N_ITEMS * 2};
    vdx_hits h = {0};
    CHECK(vdx_store_search(s, &req, &h, &err) == 0 && h.n == N_ITEMS, "%d hits", h.n);
    vdx_hits_free(&h);
    vdx_store_close(s);
}

/* ---- a fault-injecting proxy: loses one INSERT before or after the server sees it ---- */

typedef struct proxy {
    int listen_fd, port, upstream_port;
    volatile int stop;
    volatile int drop_after, drop_before; /* INSERTs still to lose, and how */
    volatile int answer_503;              /* requests to answer 503 Service Unavailable */
    volatile int dropped;
    pthread_t thread;
} proxy;

static int read_request(int fd, char *buf, size_t cap, size_t *len)
{
    size_t n = 0, need = 0;
    for (;;) {
        if (n == cap)
            return -1;
        ssize_t got = read(fd, buf + n, cap - n);
        if (got <= 0)
            return -1;
        n += (size_t)got;
        char *end = memmem(buf, n, "\r\n\r\n", 4);
        if (end && !need) {
            size_t head = (size_t)(end - buf) + 4, body = 0;
            for (char *h = buf; h < end; h = strstr(h, "\r\n") + 2)
                if (strncasecmp(h, "Content-Length:", 15) == 0)
                    body = (size_t)atol(h + 15);
            need = head + body;
        }
        if (need && n >= need) {
            *len = n;
            return 0;
        }
    }
}

static void serve_connection(proxy *p, int client)
{
    static char req[1 << 22], resp[1 << 22];
    size_t len = 0, rlen = 0;
    if (read_request(client, req, sizeof req, &len) != 0)
        return;
    int insert = memmem(req, len < 600 ? len : 600, "query=INSERT", 12) != NULL;
    if (p->answer_503 > 0) { /* an overloaded server or a proxy in front of it */
        static const char busy[] = "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 4\r\n"
                                   "\r\nbusy";
        p->answer_503--;
        p->dropped++;
        if (write(client, busy, sizeof busy - 1) != (ssize_t)(sizeof busy - 1))
            return;
        return;
    }
    if (insert && p->drop_before > 0) { /* lost on the way: the server never sees it */
        p->drop_before--;
        p->dropped++;
        return;
    }
    int up = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->upstream_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (up < 0 || connect(up, (struct sockaddr *)&a, sizeof a) != 0) {
        if (up >= 0)
            close(up);
        return;
    }
    /* HTTP/1.0: the server closes after its answer, so its end is the end of the stream */
    char *version = memmem(req, len, " HTTP/1.1\r\n", 11);
    if (version)
        version[8] = '0';
    if (write(up, req, len) != (ssize_t)len) {
        close(up);
        return;
    }
    ssize_t got;
    while (rlen < sizeof resp && (got = read(up, resp + rlen, sizeof resp - rlen)) > 0)
        rlen += (size_t)got;
    close(up);
    if (insert && p->drop_after > 0) { /* the server wrote the rows; the answer is lost */
        p->drop_after--;
        p->dropped++;
        return;
    }
    if (write(client, resp, rlen) != (ssize_t)rlen)
        return;
}

static void *proxy_main(void *arg)
{
    proxy *p = arg;
    while (!p->stop) {
        struct pollfd pfd = {p->listen_fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int client = accept(p->listen_fd, NULL, NULL);
        if (client < 0)
            continue;
        serve_connection(p, client);
        close(client);
    }
    return NULL;
}

static int proxy_start(proxy *p, int upstream_port)
{
    memset(p, 0, sizeof *p);
    p->upstream_port = upstream_port;
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(p->listen_fd, 8) != 0 ||
        getsockname(p->listen_fd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    p->port = ntohs(a.sin_port);
    return pthread_create(&p->thread, NULL, proxy_main, p);
}

static void proxy_stop(proxy *p)
{
    p->stop = 1;
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
}

TEST(lost_insert_is_retried_without_duplicates)
{
    const char *port_text = strrchr(store_url, ':');
    REQUIRE(port_text, "no port in %s", store_url);
    proxy p;
    REQUIRE(proxy_start(&p, atoi(port_text + 1)) == 0, "proxy");
    char url[128], dir[4200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/default?table=retry_test", p.port);
    snprintf(dir, sizeof dir, "%s/retry", work_dir);
    vdx_error err = {{0}};
    vdx_model_identity m = model("f00dfeed");
    vdx_store_options o = {.data_dir = dir, .collection = "retry", .url = url, .create = 1,
                           .model = &m};
    vdx_store *s = vdx_store_open(&o, &err);
    if (!s)
        proxy_stop(&p);
    REQUIRE(s, "%s", err.message);
    vdx_item batch[50];
    for (int i = 0; i < 50; i++)
        batch[i] = (vdx_item){.id = ids[i], .url = "", .vector = vectors[i]};
    p.drop_after = 1; /* the rows land, the client never hears so */
    CHECK(vdx_store_append(s, batch, 50, &err) == 0, "append after a lost answer: %s",
          err.message);
    for (int i = 0; i < 50; i++)
        batch[i] = (vdx_item){.id = ids[50 + i], .url = "", .vector = vectors[50 + i]};
    p.drop_before = 1; /* the request never arrives */
    CHECK(vdx_store_append(s, batch, 50, &err) == 0, "append after a lost request: %s",
          err.message);
    CHECK(p.dropped == 2, "%d requests dropped, expected 2", p.dropped);
    p.answer_503 = 2; /* reads are retried through 5xx answers */
    vdx_search_request busy = {.query = vectors[0], .k = 5};
    vdx_hits bh = {0};
    CHECK(vdx_store_search(s, &busy, &bh, &err) == 0 && bh.n == 5 &&
              strcmp(bh.hits[0].id, ids[0]) == 0,
          "search through two 503 answers: %s", err.message);
    vdx_hits_free(&bh);
    CHECK(p.dropped == 4 && p.answer_503 == 0, "%d answers were 503", p.dropped - 2);
    p.answer_503 = 10; /* more than the attempts: the error says what happened */
    CHECK(vdx_store_search(s, &busy, &bh, &err) != 0 &&
              strstr(err.message, "answered HTTP 503: busy"),
          "persistent 503: %s", err.message);
    p.answer_503 = 0;
    vdx_store_close(s);
    proxy_stop(&p);
    /* straight to the server: exactly 100 rows, each id once */
    char direct[600];
    snprintf(direct, sizeof direct, "%s/default?table=retry_test", store_url);
    o = (vdx_store_options){.data_dir = dir, .collection = "retry", .url = direct,
                            .read_only = 1};
    s = vdx_store_open(&o, &err);
    REQUIRE(s, "%s", err.message);
    CHECK(vdx_store_count(s) == 100, "%lld rows after two lost inserts, expected 100",
          (long long)vdx_store_count(s));
    vdx_search_request req = {.query = vectors[0], .k = 1000};
    vdx_hits h = {0};
    CHECK(vdx_store_search(s, &req, &h, &err) == 0 && h.n == 100, "%d hits", h.n);
    vdx_hits_free(&h);
    vdx_store_close(s);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s STORE_URL WORK_DIR\n", argv[0]);
        return 2;
    }
    store_url = argv[1];
    work_dir = argv[2];
    RUN(create_and_append_both);
    RUN(search_equals_embedded);
    RUN(exclusions_5000_ids);
    RUN(filters_and_injection);
    RUN(filter_like_backslash_is_literal);
    RUN(score_all_equals_embedded);
    RUN(lookups_with_tricky_ids);
    RUN(failures_and_states);
    RUN(reopen_read_only_and_model_mismatch);
    RUN(connection_and_auth_errors);
    RUN(lost_insert_is_retried_without_duplicates);
    RUN(f16_collection_and_foreign_table);
    RUN(killed_writer_then_resume);
    vdx_store_close(emb);
    vdx_store_close(ch);
    return test_summary("clickhouse_conformance");
}
