/* The approximate index of the embedded store (src/store/index_ivf.c) on synthetic
 * CLIP-like vectors: with every partition visited it returns exactly the exact scan's
 * results (ids and distances, with exclusions); filters and exclusions never leak and
 * give k results whenever k match; rows appended after a build are found; recall at the
 * default settings stays above a floor; an index that does not match the rows or is
 * corrupt is ignored (exact scan, reason in info); a build killed with SIGKILL leaves a
 * usable collection and the old index. */
#include <omp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/synth.h"
#include "test.h"
#include "test_tmp.h"
#include "vdx/store.h"

enum { DIMS = 64, ROWS = 6000, LISTS = 32 };

static char data_dir[4200];
static synth *gen;

static vdx_store *open_store(const char *name, int create, vdx_error *err)
{
    static vdx_model_identity m;
    snprintf(m.name, sizeof m.name, "synthetic");
    memset(m.config_hash, 's', 64);
    m.dims = DIMS;
    vdx_store_options o = {.data_dir = data_dir, .collection = name, .create = create,
                           .model = &m};
    return vdx_store_open(&o, err);
}

/* Appends rows [first, first + n) with ids "iN" and a bucket column = N % 100. */
static int fill(vdx_store *s, int first, int n, vdx_error *err)
{
    float *v = malloc(sizeof(float) * DIMS * (size_t)n);
    char (*ids)[16] = malloc(16 * (size_t)n), (*bucket)[8] = malloc(8 * (size_t)n);
    const char **values = malloc(sizeof(char *) * (size_t)n);
    vdx_item *items = calloc((size_t)n, sizeof *items);
    const char *names[1] = {"bucket"};
    synth_images(gen, (uint64_t)first, (size_t)n, v);
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], 16, "i%d", first + i);
        snprintf(bucket[i], 8, "%d", (first + i) % 100);
        values[i] = bucket[i];
        items[i] = (vdx_item){.id = ids[i], .url = "", .vector = v + (size_t)i * DIMS,
                              .meta_names = names, .meta_values = values + i, .n_meta = 1};
    }
    int rc = vdx_store_append(s, items, (size_t)n, err);
    free(v);
    free(ids);
    free(bucket);
    free(values);
    free(items);
    return rc;
}

static vdx_store *indexed_store_codes(const char *name, int codes)
{
    vdx_error err = {{0}};
    vdx_store *s = open_store(name, 1, &err);
    if (!s || fill(s, 0, ROWS, &err) != 0) {
        printf("    setup: %s\n", err.message);
        vdx_store_close(s);
        return NULL;
    }
    vdx_index_options o = {.lists = LISTS, .nprobe = 4, .codes = codes};
    if (vdx_store_index_build(s, &o, &err) != 0) {
        printf("    index build: %s\n", err.message);
        vdx_store_close(s);
        return NULL;
    }
    return s;
}

static vdx_store *indexed_store(const char *name)
{
    return indexed_store_codes(name, VDX_INDEX_CODES_AUTO);
}

static int search(vdx_store *s, const float *q, int k, const char *const *excl, size_t n_excl,
                  const char *where, int exact, vdx_hits *out)
{
    vdx_error err = {{0}};
    vdx_search_request req = {.query = q, .k = k, .exclude_ids = excl, .n_exclude = n_excl,
                               .where = where, .exact = exact};
    memset(out, 0, sizeof *out);
    if (vdx_store_search(s, &req, out, &err) != 0) {
        printf("    search: %s\n", err.message);
        return -1;
    }
    return 0;
}

static vdx_store *shared;

/* The kernels of the index's codes a test runs with: the fastest the CPU has (VNNI's
 * 16-bit integer sums where it has them), then the float kernels it can be held to. */
static const char *const code_kernels[4] = {NULL, "avx512", "avx2", "portable"};
static const char *code_kernel_name(int k) { return code_kernels[k] ? code_kernels[k] : "fastest"; }

TEST(all_partitions_equal_the_exact_scan)
{
    REQUIRE(shared, "no indexed store");
    char *excl[100];
    for (int i = 0; i < 100; i++) {
        excl[i] = malloc(16);
        snprintf(excl[i], 16, "i%d", i * 37);
    }
    char lists[16];
    snprintf(lists, sizeof lists, "%d", LISTS);
    setenv("VDX_INDEX_NPROBE", lists, 1);
    float q[DIMS];
    /* on one thread, then with the partitions shared out among two; with each kernel of
     * the codes (the fastest this CPU has, then the float ones held back to) */
    int threads_before = omp_get_max_threads();
    for (int t = 0; t < 60; t++) {
        omp_set_num_threads(1 + t / 30);
        if (code_kernels[t % 4])
            setenv("VDX_SCAN_KERNEL", code_kernels[t % 4], 1);
        else
            unsetenv("VDX_SCAN_KERNEL");
        if (t % 3 == 0)
            synth_image(gen, (uint64_t)ROWS + (uint64_t)t, q);
        else if (t % 3 == 1)
            synth_text_for_item(gen, (uint64_t)t * 101, 0, q);
        else
            synth_text_for_cluster(gen, t, 0, q);
        for (int k = 9; k <= 60; k += 51) {
            vdx_hits a, b;
            REQUIRE(search(shared, q, k, (const char *const *)excl, t % 2 ? 100 : 0, NULL, 1,
                           &a) == 0 &&
                        search(shared, q, k, (const char *const *)excl, t % 2 ? 100 : 0, NULL, 0,
                               &b) == 0,
                    "search failed");
            CHECK(a.n == k && b.n == a.n,
                  "query %d k=%d (%d threads, kernel %s): %d exact hits, %d indexed", t, k,
                  1 + t / 30, code_kernel_name(t % 4), a.n, b.n);
            for (int i = 0; i < a.n && i < b.n; i++)
                if (strcmp(a.hits[i].id, b.hits[i].id) || a.hits[i].dist != b.hits[i].dist) {
                    CHECK(0, "query %d k=%d (%d threads, kernel %s) rank %d: exact %s %.9g, "
                          "index %s %.9g", t, k, 1 + t / 30, code_kernel_name(t % 4), i,
                          a.hits[i].id, (double)a.hits[i].dist, b.hits[i].id,
                          (double)b.hits[i].dist);
                    break;
                }
            vdx_hits_free(&a);
            vdx_hits_free(&b);
        }
    }
    omp_set_num_threads(threads_before);
    unsetenv("VDX_INDEX_NPROBE");
    unsetenv("VDX_SCAN_KERNEL");
    for (int i = 0; i < 100; i++)
        free(excl[i]);
}

/* The labelled items of an explore round are near its concept weight: excluding a
 * query's own nearest rows must still give the exact scan's answer among the rest when
 * every partition is visited (few exclusions: the index reads its allowed bitmap only
 * for rows that could be candidates; many: for every row), and at the default nprobe
 * never an excluded row and always k rows. */
TEST(excluding_the_nearest_rows_keeps_the_exact_answer)
{
    REQUIRE(shared, "no indexed store");
    char lists[16];
    snprintf(lists, sizeof lists, "%d", LISTS);
    float q[DIMS];
    for (int t = 0; t < 24; t++) {
        if (t % 2)
            synth_text_for_item(gen, (uint64_t)t * 53 + 1, 0, q);
        else
            synth_image(gen, (uint64_t)ROWS + 500 + (uint64_t)t, q);
        /* 20 nearest rows (few), or the 600 nearest (a tenth of the rows: many) */
        int n_excl = t % 4 < 2 ? 20 : 600;
        vdx_hits near;
        REQUIRE(search(shared, q, n_excl, NULL, 0, NULL, 1, &near) == 0 && near.n == n_excl,
                "exact search for the exclusions");
        const char **excl = malloc(sizeof *excl * (size_t)n_excl);
        for (int i = 0; i < n_excl; i++)
            excl[i] = near.hits[i].id;
        for (int visit_all = 1; visit_all >= 0; visit_all--) {
            if (visit_all)
                setenv("VDX_INDEX_NPROBE", lists, 1);
            else
                unsetenv("VDX_INDEX_NPROBE");
            vdx_hits a, b;
            REQUIRE(search(shared, q, 9, excl, (size_t)n_excl, NULL, 1, &a) == 0 &&
                        search(shared, q, 9, excl, (size_t)n_excl, NULL, 0, &b) == 0,
                    "search failed");
            CHECK(a.n == 9 && b.n == 9, "query %d, %d excluded: %d exact hits, %d indexed", t,
                  n_excl, a.n, b.n);
            for (int i = 0; i < b.n; i++) {
                for (int x = 0; x < n_excl; x++)
                    CHECK(strcmp(b.hits[i].id, excl[x]) != 0,
                          "query %d, %d excluded: excluded %s returned at rank %d", t, n_excl,
                          excl[x], i);
                if (visit_all && i < a.n && strcmp(a.hits[i].id, b.hits[i].id) != 0) {
                    CHECK(0, "query %d, %d excluded, every partition: rank %d exact %s, index %s",
                          t, n_excl, i, a.hits[i].id, b.hits[i].id);
                    break;
                }
            }
            vdx_hits_free(&a);
            vdx_hits_free(&b);
        }
        free(excl);
        vdx_hits_free(&near);
    }
    unsetenv("VDX_INDEX_NPROBE");
}

TEST(recall_floor_at_default_settings)
{
    REQUIRE(shared, "no indexed store");
    /* Image queries land inside the partitions the index was cut from: with 4 of 32
     * partitions (1/8 of the rows) visited, the measured recall@9 here is ≈ 0.99; 0.9
     * leaves room for the machine's float rounding, not for a broken index (a random
     * 1/8 of the rows would give ≈ 0.125). */
    double r = 0;
    float q[DIMS];
    int n = 40;
    for (int t = 0; t < n; t++) {
        synth_image(gen, (uint64_t)ROWS + 1000 + (uint64_t)t, q);
        vdx_hits a, b;
        REQUIRE(search(shared, q, 9, NULL, 0, NULL, 1, &a) == 0 &&
                    search(shared, q, 9, NULL, 0, NULL, 0, &b) == 0,
                "search failed");
        int found = 0;
        for (int i = 0; i < a.n; i++)
            for (int j = 0; j < b.n; j++)
                found += !strcmp(a.hits[i].id, b.hits[j].id);
        r += (double)found / a.n;
        vdx_hits_free(&a);
        vdx_hits_free(&b);
    }
    CHECK(r / n >= 0.9, "recall@9 of image queries %.3f", r / n);
}

static void filters_and_exclusions(vdx_store *store)
{
    static const struct {
        const char *where;
        int matching;
    } filters[] = {{"bucket >= 0", ROWS}, {"bucket < 50", ROWS / 2}, {"bucket < 10", ROWS / 10},
                   {"bucket = 7", ROWS / 100}, {"id = 'i4321'", 1}, {"id IN ('i1', 'i2', 'i3')", 3}};
    /* exclude 300 rows of bucket 7: leaves 60 - ... of it */
    char *excl[30];
    for (int i = 0; i < 30; i++) {
        excl[i] = malloc(16);
        snprintf(excl[i], 16, "i%d", 7 + 100 * i);
    }
    float q[DIMS];
    synth_text_for_cluster(gen, 3, 0, q);
    for (size_t f = 0; f < sizeof filters / sizeof filters[0]; f++) {
        int excluded = !strcmp(filters[f].where, "bucket = 7") ? 30 : 0;
        int expect = filters[f].matching - excluded < 50 ? filters[f].matching - excluded : 50;
        vdx_hits h;
        REQUIRE(search(store, q, 50, (const char *const *)excl, 30, filters[f].where, 0, &h) == 0,
                "search");
        CHECK(h.n == expect, "%s: %d results, %d expected", filters[f].where, h.n, expect);
        for (int i = 0; i < h.n; i++) {
            int row = atoi(h.hits[i].id + 1);
            for (int x = 0; x < 30; x++)
                CHECK(strcmp(h.hits[i].id, excl[x]) != 0, "%s: excluded %s returned",
                      filters[f].where, h.hits[i].id);
            if (!strcmp(filters[f].where, "bucket < 10"))
                CHECK(row % 100 < 10, "bucket < 10 returned %s", h.hits[i].id);
            if (!strcmp(filters[f].where, "bucket = 7"))
                CHECK(row % 100 == 7, "bucket = 7 returned %s", h.hits[i].id);
        }
        vdx_hits_free(&h);
    }
    for (int i = 0; i < 30; i++)
        free(excl[i]);
}

TEST(filters_and_exclusions_give_k_results)
{
    REQUIRE(shared, "no indexed store");
    filters_and_exclusions(shared);
}

/* Recall@9 of the index against the exact scan over n queries of each kind (image, text
 * of an item), nprobe from $VDX_INDEX_NPROBE. */
static double recall9(vdx_store *s, int n, int texts)
{
    double r = 0;
    float q[DIMS];
    for (int t = 0; t < n; t++) {
        if (texts)
            synth_text_for_item(gen, (uint64_t)t * 131 + 5, 0, q);
        else
            synth_image(gen, (uint64_t)ROWS + 2000 + (uint64_t)t, q);
        vdx_hits a, b;
        if (search(s, q, 9, NULL, 0, NULL, 1, &a) != 0 || search(s, q, 9, NULL, 0, NULL, 0, &b) != 0)
            return -1;
        int found = 0;
        for (int i = 0; i < a.n; i++)
            for (int j = 0; j < b.n; j++)
                found += !strcmp(a.hits[i].id, b.hits[j].id);
        r += (double)found / a.n;
        vdx_hits_free(&a);
        vdx_hits_free(&b);
    }
    return r / n;
}

/* Product-quantised codes (4 bits per 2 dimensions: DIMS / 4 bytes per row): the file is
 * that small; re-scoring every estimate gives the exact scan's answer; re-scoring few
 * keeps recall above a floor with every partition visited, and every kernel of the codes
 * gives the same answer; filters and exclusions hold as for int8. */
TEST(pq_codes)
{
    vdx_error err = {{0}};
    vdx_store *s = indexed_store_codes("pq", VDX_INDEX_CODES_PQ);
    REQUIRE(s, "setup failed");
    cJSON *info;
    REQUIRE(vdx_store_info(s, &info, &err) == 0, "%s", err.message);
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(info, "index");
    double bytes = ix ? cJSON_GetObjectItemCaseSensitive(ix, "bytes_on_disk")->valuedouble : 0;
    /* codes + row numbers, plus the fixed part: header, scales, centres, partition table,
     * 32 sub-quantisers × 16 centroids × 2 floats, each partition's last block of 32 rows
     * padded, section alignment */
    double fixed = 256 + DIMS * 4 + LISTS * DIMS * 4 + (LISTS + 1) * 8 + 32 * 16 * 2 * 4 +
                   LISTS * 31 * (DIMS / 4) + 5 * 64;
    CHECK(ix && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ix, "kind")), "ivf-pq") &&
              bytes <= ROWS * (DIMS / 4 + 4) + fixed,
          "info: %s (%.0f bytes, at most %.0f)", ix ? cJSON_PrintUnformatted(ix) : "no index",
          bytes, ROWS * (DIMS / 4 + 4) + fixed);
    cJSON_Delete(info);
    char lists[16], rows[16];
    snprintf(lists, sizeof lists, "%d", LISTS);
    snprintf(rows, sizeof rows, "%d", ROWS);
    setenv("VDX_INDEX_NPROBE", lists, 1);
    setenv("VDX_INDEX_RERANK", rows, 1);
    double all_image = recall9(s, 20, 0), all_text = recall9(s, 20, 1);
    CHECK(all_image == 1.0 && all_text == 1.0,
          "every estimate re-scored: recall@9 %.3f (images) %.3f (texts), not 1", all_image,
          all_text);
    /* with only 100 of the 6,000 estimates re-scored the codes must carry the ranking:
     * measured here 0.997 (images) and 0.942 (texts); 0.9 is far above codes that carried no
     * information (100 random rows of 6,000: ≈ 0.017) */
    setenv("VDX_INDEX_RERANK", "100", 1);
    double image = recall9(s, 40, 0), text = recall9(s, 40, 1);
    CHECK(image >= 0.9 && text >= 0.9, "recall@9 %.3f (images) %.3f (texts)", image, text);
    printf("# recall@9 %.3f (images) %.3f (texts)\n", image, text);
    /* every kernel sums the 4-bit table entries exactly: the same candidates, the same
     * answer, here with only 100 estimates re-scored (so a different sum would show) */
    float q[DIMS];
    for (int t = 0; t < 12; t++) {
        synth_text_for_item(gen, (uint64_t)t * 71 + 3, 0, q);
        vdx_hits first = {0};
        for (int k = 0; k < 4; k++) {
            if (code_kernels[k])
                setenv("VDX_SCAN_KERNEL", code_kernels[k], 1);
            else
                unsetenv("VDX_SCAN_KERNEL");
            vdx_hits h;
            REQUIRE(search(s, q, 30, NULL, 0, NULL, 0, &h) == 0, "search failed");
            if (k == 0) {
                first = h;
                continue;
            }
            /* the same rows; "portable" also holds back the rerank's float kernel, whose
             * sums may round differently */
            int same = h.n == first.n;
            for (int i = 0; same && i < h.n; i++)
                same = !strcmp(h.hits[i].id, first.hits[i].id) &&
                       fabsf(h.hits[i].dist - first.hits[i].dist) <= 1e-6f;
            CHECK(same, "query %d: kernel %s answers other than the fastest kernel", t,
                  code_kernel_name(k));
            vdx_hits_free(&h);
        }
        vdx_hits_free(&first);
    }
    unsetenv("VDX_SCAN_KERNEL");
    /* Without exclusions a block's rows are passed on only when their sum can reach the
     * heap; with more than 1 row in 16 excluded every row is offered one by one. Excluding
     * the 400 rows farthest from the query (never among its 100 best estimates) must
     * therefore change nothing: the same 100 estimates are re-scored, and with k = 100
     * they are the answer, so a row the first way dropped would show. */
    const char **far = malloc(400 * sizeof *far);
    for (int t = 0; t < 12; t++) {
        synth_text_for_item(gen, (uint64_t)t * 37 + 11, 0, q);
        vdx_hits all, plain, excluded;
        REQUIRE(search(s, q, ROWS, NULL, 0, NULL, 1, &all) == 0 && all.n == ROWS, "exact scan");
        for (int i = 0; i < 400; i++)
            far[i] = all.hits[ROWS - 1 - i].id;
        REQUIRE(search(s, q, 100, NULL, 0, NULL, 0, &plain) == 0 &&
                    search(s, q, 100, far, 400, NULL, 0, &excluded) == 0,
                "search failed");
        int same = plain.n == 100 && excluded.n == 100;
        for (int i = 0; same && i < 100; i++)
            same = !strcmp(plain.hits[i].id, excluded.hits[i].id) &&
                   plain.hits[i].dist == excluded.hits[i].dist;
        CHECK(same, "query %d: excluding the 400 farthest rows changed the answer", t);
        vdx_hits_free(&all);
        vdx_hits_free(&plain);
        vdx_hits_free(&excluded);
    }
    free(far);
    unsetenv("VDX_INDEX_RERANK");
    unsetenv("VDX_INDEX_NPROBE");
    filters_and_exclusions(s);
    /* product-quantised codes bound no error: score_values scans the vectors */
    float *values = NULL;
    size_t n_values = 0;
    double bound = -1;
    synth_image(gen, 12345, q);
    vdx_search_request req = {.query = q};
    vdx_hits all = {0};
    REQUIRE(vdx_store_score_all(s, &req, &all, &err) == 0 &&
                vdx_store_score_values(s, &req, &values, &n_values, &bound, &err) == 0,
            "%s", err.message);
    int same = 0;
    for (int i = 0; i < all.n && (size_t)i < n_values; i++)
        same += values[i] == all.hits[i].dist;
    CHECK(bound == 0 && n_values == (size_t)all.n && same == all.n,
          "pq: bound %g, %d of %d scores equal score_all's", bound, same, all.n);
    free(values);
    vdx_hits_free(&all);
    vdx_store_close(s);
}

/* score_values: with an int8 index the scores are estimated from the codes, each within
 * the reported bound of the exact score (and most much closer); with `exact`, or on a
 * pq index (no bound), they are score_all's scores bit for bit; exclusions are left out
 * and rows appended after the build are scored exactly. */
TEST(score_values_from_the_codes_stay_within_their_bound)
{
    vdx_error err = {{0}};
    vdx_store *s = indexed_store("values");
    REQUIRE(s, "setup failed");
    REQUIRE(fill(s, ROWS, 40, &err) == 0, "%s", err.message);
    float q[DIMS];
    synth_text_for_cluster(gen, 3, 0, q);
    for (int j = 0; j < DIMS; j++)
        q[j] *= 1.7f; /* a classifier's weight: not a unit vector */
    const char *excl[3] = {"i5", "i77", "i6003"};
    vdx_search_request req = {.query = q, .exclude_ids = excl, .n_exclude = 3};
    vdx_hits all = {0};
    REQUIRE(vdx_store_score_all(s, &req, &all, &err) == 0, "%s", err.message);
    float *exact = NULL;
    size_t n_exact = 0;
    double exact_bound = -1;
    req.exact = 1;
    REQUIRE(vdx_store_score_values(s, &req, &exact, &n_exact, &exact_bound, &err) == 0, "%s",
            err.message);
    int same = 0;
    for (int i = 0; i < all.n && (size_t)i < n_exact; i++)
        same += exact[i] == all.hits[i].dist;
    CHECK(all.n == ROWS + 40 - 3 && n_exact == (size_t)all.n && exact_bound == 0,
          "%d scored, %zu exact, bound %g", all.n, n_exact, exact_bound);
    CHECK(same == all.n, "exact: %d of %d equal score_all's", same, all.n);
    req.exact = 0;
    /* each kernel of the codes: the fastest this CPU has, then the float ones */
    for (int k = 0; k < 4; k++) {
        if (code_kernels[k])
            setenv("VDX_SCAN_KERNEL", code_kernels[k], 1);
        else
            unsetenv("VDX_SCAN_KERNEL");
        float *approx = NULL, *vectors = NULL; /* the appended rows' exact scores come from
                                                 * the scan's kernel, which "portable" holds
                                                 * back too */
        size_t n_approx = 0, n_vectors = 0;
        double bound = -1, none = -1;
        REQUIRE(vdx_store_score_values(s, &req, &approx, &n_approx, &bound, &err) == 0, "%s",
                err.message);
        req.exact = 1;
        REQUIRE(vdx_store_score_values(s, &req, &vectors, &n_vectors, &none, &err) == 0, "%s",
                err.message);
        req.exact = 0;
        CHECK(n_approx == (size_t)all.n && n_vectors == n_approx && bound > 0 && bound < 0.2,
              "kernel %s: %zu estimated of %d, bound %g", code_kernel_name(k), n_approx, all.n,
              bound);
        int within = 0, tail_exact = 0;
        double worst = 0, sum = 0;
        for (int i = 0; i < all.n && (size_t)i < n_approx; i++) {
            double e = fabs((double)approx[i] - all.hits[i].dist);
            within += e <= bound;
            worst = fmax(worst, e);
            sum += e;
            tail_exact += i >= ROWS - 2 && approx[i] == vectors[i]; /* 2 excluded before */
        }
        CHECK(within == all.n, "kernel %s: %d of %d estimates within the bound %g (worst %g)",
              code_kernel_name(k), within, all.n, bound, worst);
        CHECK(sum / all.n < bound / 10, "kernel %s: mean error %g against the bound %g",
              code_kernel_name(k), sum / all.n, bound);
        CHECK(tail_exact == 40 - 1, "kernel %s: %d of the 39 appended rows kept scored exactly",
              code_kernel_name(k), tail_exact);
        free(approx);
        free(vectors);
    }
    unsetenv("VDX_SCAN_KERNEL");
    free(exact);
    vdx_hits_free(&all);
    vdx_store_close(s);
}

TEST(appended_rows_are_found_and_info_reports_them)
{
    vdx_error err = {{0}};
    vdx_store *s = indexed_store("tail");
    REQUIRE(s, "setup failed");
    REQUIRE(fill(s, ROWS, 50, &err) == 0, "%s", err.message);
    float q[DIMS];
    synth_image(gen, ROWS + 17, q);
    vdx_hits h;
    REQUIRE(search(s, q, 3, NULL, 0, NULL, 0, &h) == 0, "search");
    CHECK(h.n == 3 && !strcmp(h.hits[0].id, "i6017") && h.hits[0].dist < 1e-5f,
          "appended row not first: %s %g", h.n ? h.hits[0].id : "-", h.n ? (double)h.hits[0].dist : 0);
    vdx_hits_free(&h);
    cJSON *info;
    REQUIRE(vdx_store_info(s, &info, &err) == 0, "%s", err.message);
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(info, "index");
    CHECK(ix && cJSON_GetObjectItemCaseSensitive(ix, "rows")->valuedouble == ROWS &&
              cJSON_GetObjectItemCaseSensitive(ix, "unindexed")->valuedouble == 50 &&
              cJSON_GetObjectItemCaseSensitive(ix, "lists")->valuedouble == LISTS,
          "info: %s", ix ? cJSON_PrintUnformatted(ix) : "no index");
    cJSON_Delete(info);
    /* another handle (a reader) sees the same index and the tail */
    vdx_store *r = open_store("tail", 0, &err);
    REQUIRE(r, "%s", err.message);
    REQUIRE(search(r, q, 1, NULL, 0, NULL, 0, &h) == 0, "search");
    CHECK(h.n == 1 && !strcmp(h.hits[0].id, "i6017"), "reader found %s", h.n ? h.hits[0].id : "-");
    vdx_hits_free(&h);
    vdx_store_close(r);
    vdx_store_close(s);
}

TEST(mismatched_or_corrupt_index_is_ignored)
{
    vdx_error err = {{0}};
    vdx_store *s = indexed_store("corrupt");
    REQUIRE(s, "setup failed");
    char path[4400];
    snprintf(path, sizeof path, "%s/index.ivf", vdx_store_dir(s));
    vdx_store_close(s);
    FILE *f = fopen(path, "r+b");
    REQUIRE(f, "no index file at %s", path);
    fseek(f, 300, SEEK_SET);
    uint32_t bad = 0xffffffffu; /* a NaN in the per-dimension scales */
    fwrite(&bad, sizeof bad, 1, f);
    fclose(f);
    s = open_store("corrupt", 0, &err);
    REQUIRE(s, "%s", err.message);
    float q[DIMS];
    synth_image(gen, 5, q);
    vdx_hits h;
    REQUIRE(search(s, q, 1, NULL, 0, NULL, 0, &h) == 0, "search with a corrupt index");
    CHECK(h.n == 1 && !strcmp(h.hits[0].id, "i5"), "found %s", h.n ? h.hits[0].id : "-");
    vdx_hits_free(&h);
    cJSON *info;
    REQUIRE(vdx_store_info(s, &info, &err) == 0, "%s", err.message);
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(info, "index");
    const cJSON *problem = cJSON_GetObjectItemCaseSensitive(ix, "problem");
    CHECK(cJSON_IsString(problem) && strstr(problem->valuestring, "index.ivf"),
          "info names no problem: %s", cJSON_PrintUnformatted(ix));
    cJSON_Delete(info);
    vdx_store_close(s);
}

/* A product-code index file that was tampered with: an 8-bit pq file of an older vdx is
 * refused with "rebuild", one that lists a row twice with the entry that does; bytes
 * overwritten anywhere in the header, the tables or the
 * first codes never crash a search (the ASan and valgrind runs watch) and either keep
 * the index (a code or centroid changed) or make the store scan exactly with the reason
 * in info; every search still returns k items. */
TEST(tampered_pq_index_never_breaks_a_search)
{
    vdx_error err = {{0}};
    vdx_store *s = indexed_store_codes("pqbad", VDX_INDEX_CODES_PQ);
    REQUIRE(s, "setup failed");
    char path[4400];
    snprintf(path, sizeof path, "%s/index.ivf", vdx_store_dir(s));
    vdx_store_close(s);
    FILE *f = fopen(path, "rb");
    REQUIRE(f, "no index file at %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    unsigned char *good = malloc((size_t)size);
    fseek(f, 0, SEEK_SET);
    REQUIRE(fread(good, 1, (size_t)size, f) == (size_t)size, "read %s", path);
    fclose(f);
    uint64_t rng = 99;
    float q[DIMS];
    int refused = 0, kept = 0;
    for (int t = 0; t < 41; t++) {
        unsigned char *bad = malloc((size_t)size);
        memcpy(bad, good, (size_t)size);
        if (t == 0) {
            bad[8] = 2; /* version 2: the 8-bit codes of sessions 7-9 */
        } else if (t == 1) { /* the first entry's row number copied into the second */
            uint64_t off_rows;
            memcpy(&off_rows, good + 88, sizeof off_rows); /* header: off_rows at 88 */
            memcpy(bad + off_rows + 4, good + off_rows, 4);
        } else {
            for (int k = 0; k < 4; k++) { /* 4 random bytes of the first 24 KB */
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                long at = (long)((rng >> 33) % (uint64_t)(size < 24576 ? size : 24576));
                bad[at] = (unsigned char)(rng >> 13);
            }
        }
        f = fopen(path, "wb");
        REQUIRE(f && fwrite(bad, 1, (size_t)size, f) == (size_t)size && fclose(f) == 0,
                "write %s", path);
        free(bad);
        s = open_store("pqbad", 0, &err);
        REQUIRE(s, "%s", err.message);
        synth_text_for_item(gen, (uint64_t)t * 17, 0, q);
        vdx_hits h;
        REQUIRE(search(s, q, 9, NULL, 0, NULL, 0, &h) == 0, "search %d failed", t);
        CHECK(h.n == 9, "tampering %d: %d results", t, h.n);
        vdx_hits_free(&h);
        cJSON *info;
        REQUIRE(vdx_store_info(s, &info, &err) == 0, "%s", err.message);
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(info, "index");
        const cJSON *problem = cJSON_GetObjectItemCaseSensitive(ix, "problem");
        if (t == 0)
            CHECK(cJSON_IsString(problem) && strstr(problem->valuestring, "8-bit product codes") &&
                      strstr(problem->valuestring, "rebuild"),
                  "version 2: %s", cJSON_PrintUnformatted(ix));
        if (t == 1)
            CHECK(cJSON_IsString(problem) && strstr(problem->valuestring, "a second time"),
                  "a row listed twice: %s", cJSON_PrintUnformatted(ix));
        refused += cJSON_IsString(problem);
        kept += !cJSON_IsString(problem);
        cJSON_Delete(info);
        vdx_store_close(s);
    }
    printf("# %d tampered files refused, %d kept\n", refused, kept);
    free(good);
}

static void kill_self(const char *stage, double fraction, void *user)
{
    (void)user;
    if (!strcmp(stage, "encoding") && fraction > 0)
        raise(SIGKILL);
}

TEST(killed_build_leaves_the_old_index)
{
    vdx_error err = {{0}};
    vdx_store *s = indexed_store("killed");
    REQUIRE(s, "setup failed");
    REQUIRE(fill(s, ROWS, 70000, &err) == 0, "%s", err.message); /* encoding reports past 65536 */
    vdx_store_close(s);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* a fresh process: libgomp's thread team does not survive fork() */
        execl("/proc/self/exe", "test_index", "--killed-build-child", data_dir, (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
    s = open_store("killed", 0, &err);
    REQUIRE(s, "%s", err.message);
    cJSON *info;
    REQUIRE(vdx_store_info(s, &info, &err) == 0, "%s", err.message);
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(info, "index");
    CHECK(cJSON_GetObjectItemCaseSensitive(ix, "rows") &&
              cJSON_GetObjectItemCaseSensitive(ix, "rows")->valuedouble == ROWS,
          "old index not in use: %s", cJSON_PrintUnformatted(ix));
    cJSON_Delete(info);
    float q[DIMS];
    synth_image(gen, ROWS + 60000, q);
    vdx_hits h;
    REQUIRE(search(s, q, 1, NULL, 0, NULL, 0, &h) == 0, "search");
    CHECK(h.n == 1 && !strcmp(h.hits[0].id, "i66000"), "found %s", h.n ? h.hits[0].id : "-");
    vdx_hits_free(&h);
    /* the next build removes the dead one's temporary file and covers every row */
    vdx_index_options o = {.lists = LISTS};
    REQUIRE(vdx_store_index_build(s, &o, &err) == 0, "%s", err.message);
    char cmd[4600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", vdx_store_dir(s));
    FILE *p = popen(cmd, "r");
    int temps = -1;
    if (p) {
        if (fscanf(p, "%d", &temps) != 1)
            temps = -1;
        pclose(p);
    }
    CHECK(temps == 0, "%d temporary files left", temps);
    vdx_store_close(s);
}

/* The child of killed_build_leaves_the_old_index: builds the index of collection "killed"
 * under DATA_DIR and is killed by its own progress callback while encoding. */
static int killed_build_child(const char *dir)
{
    snprintf(data_dir, sizeof data_dir, "%s", dir);
    vdx_error err = {{0}};
    vdx_store *c = open_store("killed", 0, &err);
    vdx_index_options o = {.lists = LISTS, .on_progress = kill_self};
    if (c)
        vdx_store_index_build(c, &o, &err);
    return 3; /* the build should never get here */
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--killed-build-child"))
        return killed_build_child(argv[2]);
    test_tmp_begin("index");
    snprintf(data_dir, sizeof data_dir, "%s/data", getenv("TMPDIR"));
    synth_params p;
    synth_defaults(&p);
    p.dim = DIMS;
    p.clusters = 60;
    char err[256];
    gen = synth_new(&p, err, sizeof err);
    if (!gen) {
        printf("synth: %s\n", err);
        return 1;
    }
    shared = indexed_store("shared");
    RUN(all_partitions_equal_the_exact_scan);
    RUN(excluding_the_nearest_rows_keeps_the_exact_answer);
    RUN(recall_floor_at_default_settings);
    RUN(filters_and_exclusions_give_k_results);
    RUN(pq_codes);
    RUN(score_values_from_the_codes_stay_within_their_bound);
    RUN(appended_rows_are_found_and_info_reports_them);
    RUN(mismatched_or_corrupt_index_is_ignored);
    RUN(tampered_pq_index_never_breaks_a_search);
    RUN(killed_build_leaves_the_old_index);
    vdx_store_close(shared);
    synth_free(gen);
    test_tmp_end();
    return test_summary("index");
}
