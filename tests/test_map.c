/* The map (src/map/): the vectors' int8 codes hold every value within half a step and
 * give the float32 vectors' exact neighbours but for near ties; the layout is the same bytes for the same seed and differs for
 * another; it keeps more of each item's 10 nearest neighbours than the PCA projection
 * does on clustered synthetic data; k-means on the layout finds separated blobs and
 * numbers them by size; cluster naming picks the vocabulary entry whose vector matches
 * the centroid (a constructed case); a collection's map round-trips through map.bin,
 * items ingested later are placed among their neighbours; a build killed with SIGKILL
 * leaves the old map (or none); a damaged map.bin is refused as corrupt, and so is a
 * damaged stored vector (naming the item, the old map kept); the WordNet
 * vocabulary holds visual nouns and not abstract ones, and round-trips through its file. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "map/map_internal.h"
#include "support/synth.h"
#include "test.h"
#include "test_tmp.h"
#include "vdx/map.h"

enum { DIMS = 64, N = 1200, CLUSTERS = 12 };

static char data_dir[4200];
static synth *gen;
static float *vecs;
static vdx_map_vectors codes; /* vecs as the layout reads them */

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

static int fill(vdx_store *s, int first, int n, vdx_error *err)
{
    char (*ids)[16] = malloc(16 * (size_t)n);
    vdx_item *items = calloc((size_t)n, sizeof *items);
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], 16, "i%d", first + i);
        items[i] = (vdx_item){.id = ids[i], .url = "", .vector = vecs + (size_t)(first + i) * DIMS};
    }
    int rc = vdx_store_append(s, items, (size_t)n, err);
    free(ids);
    free(items);
    return rc;
}

/* Keeps the k smallest distances seen (ascending) with their indices. */
static void keep_best(double *best, int32_t *bi, int k, int *have, double d, int32_t j)
{
    if (*have == k && d >= best[k - 1])
        return;
    int p = *have < k ? (*have)++ : k - 1;
    while (p > 0 && best[p - 1] > d) {
        best[p] = best[p - 1], bi[p] = bi[p - 1];
        p--;
    }
    best[p] = d, bi[p] = j;
}

/* Mean fraction of each item's 10 nearest (cosine, high-d) kept among its 10 nearest
 * on the map. */
static double kept10(const float *xy, int n)
{
    enum { K = 10 };
    int32_t *nb = malloc(sizeof(int32_t) * K * (size_t)n);
    float *nd = malloc(sizeof(float) * K * (size_t)n);
    vdx_map_options o = {0};
    vdx_map_vectors v = codes;
    v.n = n;
    map_knn(&v, K, &o, nb, nd, NULL);
    double kept = 0;
    for (int i = 0; i < n; i++) {
        double best[K];
        int32_t bi[K];
        int have = 0;
        for (int j = 0; j < n; j++) {
            if (j == i)
                continue;
            float dx = xy[2 * i] - xy[2 * j], dy = xy[2 * i + 1] - xy[2 * j + 1];
            keep_best(best, bi, K, &have, dx * dx + dy * dy, j);
        }
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++)
                if (nb[i * K + a] == bi[b])
                    kept++;
    }
    free(nb), free(nd);
    return kept / ((double)n * K);
}

TEST(layout_is_deterministic_for_a_seed)
{
    vdx_error err = {{0}};
    float *a = malloc(sizeof(float) * 2 * N), *b = malloc(sizeof(float) * 2 * N);
    vdx_map_options o = {.seed = 7, .epochs = 100};
    REQUIRE(vdx_map_layout(&codes, &o, a, &err) == 0, "%s", err.message);
    REQUIRE(vdx_map_layout(&codes, &o, b, &err) == 0, "%s", err.message);
    CHECK(memcmp(a, b, sizeof(float) * 2 * N) == 0, "two runs with seed 7 differ");
    int finite = 1;
    for (int i = 0; i < 2 * N; i++)
        finite &= isfinite(a[i]);
    CHECK(finite, "non-finite coordinates");
    o.seed = 8;
    REQUIRE(vdx_map_layout(&codes, &o, b, &err) == 0, "%s", err.message);
    CHECK(memcmp(a, b, sizeof(float) * 2 * N) != 0, "seed 8 gave seed 7's layout");
    free(a), free(b);
}

TEST(layout_keeps_neighbours_better_than_pca)
{
    vdx_error err = {{0}};
    float *xy = malloc(sizeof(float) * 2 * N), *pca = malloc(sizeof(float) * 2 * N);
    vdx_map_options o = {.seed = 1};
    REQUIRE(vdx_map_layout(&codes, &o, xy, &err) == 0, "%s", err.message);
    REQUIRE(map_pca(&codes, 1, pca, &err) == 0, "%s", err.message);
    double q = kept10(xy, N), p = kept10(pca, N);
    printf("    10-NN kept: map %.3f, PCA %.3f\n", q, p);
    CHECK(q > p + 0.1, "map keeps %.3f of the 10-NN, PCA %.3f", q, p);
    free(xy), free(pca);
}

TEST(partitioned_neighbours_find_most_exact_ones)
{
    vdx_error err = {{0}};
    enum { K = 15 };
    int32_t *a = malloc(sizeof(int32_t) * K * N), *b = malloc(sizeof(int32_t) * K * N);
    float *da = malloc(sizeof(float) * K * N), *db = malloc(sizeof(float) * K * N);
    vdx_map_options exact = {0}, part = {.exact_max = 100};
    REQUIRE(map_knn(&codes, K, &exact, a, da, &err) == 0, "%s", err.message);
    REQUIRE(map_knn(&codes, K, &part, b, db, &err) == 0, "%s", err.message);
    int64_t found = 0, sorted = 1;
    for (int i = 0; i < N; i++) {
        for (int x = 0; x < K; x++) {
            for (int y = 0; y < K; y++)
                found += a[i * K + x] == b[i * K + y];
            if (x && db[i * K + x] < db[i * K + x - 1])
                sorted = 0;
            if (b[i * K + x] == i)
                sorted = 0;
        }
    }
    double recall = (double)found / ((double)N * K);
    printf("    partitioned neighbours: recall %.3f of the exact 15\n", recall);
    CHECK(recall > 0.9, "recall %.3f", recall);
    CHECK(sorted, "partitioned neighbour lists unsorted or holding the item itself");
    /* one partition only: the search is the partitioned one, and it misses some */
    part.probe = 1;
    REQUIRE(map_knn(&codes, K, &part, b, db, &err) == 0, "%s", err.message);
    int64_t found1 = 0;
    for (int i = 0; i < N; i++)
        for (int x = 0; x < K; x++)
            for (int y = 0; y < K; y++)
                found1 += a[i * K + x] == b[i * K + y];
    printf("    with one partition: recall %.3f\n", (double)found1 / ((double)N * K));
    CHECK(found1 < found, "one partition found as many (%lld) as eight", (long long)found1);
    free(a), free(b), free(da), free(db);
}

/* The int8 codes: every value within half a step of its float, the scale max|x|/127,
 * a non-finite value refused with the row and dimension named. */
TEST(int8_codes_hold_each_value_within_half_a_step)
{
    vdx_error err = {{0}};
    double worst = 0;
    for (int i = 0; i < N; i++) {
        const float *x = vecs + (size_t)i * DIMS;
        const int8_t *c = codes.codes + (size_t)i * DIMS;
        float big = 0;
        for (int j = 0; j < DIMS; j++)
            big = fabsf(x[j]) > big ? fabsf(x[j]) : big;
        CHECK(codes.scales[i] == big / 127.0f, "row %d: scale %g for max %g", i, codes.scales[i],
              big);
        for (int j = 0; j < DIMS; j++) {
            double off = fabs(x[j] - (double)codes.scales[i] * c[j]) / codes.scales[i];
            worst = off > worst ? off : worst;
        }
    }
    CHECK(worst <= 0.5 + 1e-4, "a value %.4f steps from its code", worst);
    vdx_map_vectors q;
    float bad[2 * 4] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, NAN, 0.5f};
    REQUIRE(vdx_map_vectors_alloc(&q, 3, 4, &err) == 0, "%s", err.message);
    CHECK(vdx_map_vectors_set(&q, 1, 2, bad, &err) == -1 && err.kind == VDX_ERR_INVALID &&
              strstr(err.message, "vector 2: dimension 2"),
          "NaN accepted or named wrongly: %s", err.message);
    float zero[4] = {0};
    CHECK(vdx_map_vectors_set(&q, 0, 1, zero, &err) == 0 && q.scales[0] == 0 && q.codes[3] == 0,
          "a zero vector");
    vdx_map_vectors_free(&q);
}

/* The exact neighbours from the codes (tiles of 256 rows here, so the lists carry over
 * from tile to tile) are the float32 vectors' own, but for near ties. */
TEST(exact_neighbours_from_codes_match_float32)
{
    vdx_error err = {{0}};
    enum { K = 15 };
    int32_t *nb = malloc(sizeof(int32_t) * K * N);
    float *nd = malloc(sizeof(float) * K * N);
    vdx_map_options o = {0};
    REQUIRE(map_knn(&codes, K, &o, nb, nd, &err) == 0, "%s", err.message);
    int64_t found = 0;
    double worst = 0;
    for (int i = 0; i < N; i++) {
        /* the float32 truth, by brute force in double */
        double best[K];
        int32_t bi[K];
        int have = 0;
        for (int j = 0; j < N; j++) {
            if (j == i)
                continue;
            double dot = 0;
            for (int t = 0; t < DIMS; t++)
                dot += (double)vecs[(size_t)i * DIMS + t] * vecs[(size_t)j * DIMS + t];
            keep_best(best, bi, K, &have, 1 - dot, j);
        }
        for (int a = 0; a < K; a++) {
            for (int b = 0; b < K; b++)
                found += nb[i * K + a] == bi[b];
            double off = fabs(nd[i * K + a] - best[a]);
            worst = off > worst ? off : worst;
            CHECK(nb[i * K + a] != i && nb[i * K + a] >= 0 && nb[i * K + a] < N,
                  "row %d: neighbour %d", i, nb[i * K + a]);
        }
    }
    double recall = (double)found / ((double)N * K);
    printf("    exact neighbours from int8 codes: %.4f of the float32 ones, distances within %.2g\n",
           recall, worst);
    CHECK(recall >= 0.97, "recall %.4f of the float32 neighbours", recall);
    CHECK(worst < 5e-3, "a k-th distance %.3g away from float32's", worst);
    free(nb), free(nd);
}

TEST(kmeans_separates_blobs_numbered_by_size)
{
    vdx_error err = {{0}};
    enum { M = 300 };
    float xy[2 * M];
    int32_t cl[M];
    uint64_t rng = 3;
    for (int i = 0; i < M; i++) { /* 200 around (0,0), 100 around (50,50) */
        double cx = i < 200 ? 0 : 50;
        xy[2 * i] = (float)(cx + (double)(map_rand(&rng) % 1000) / 500.0);
        xy[2 * i + 1] = (float)(cx + (double)(map_rand(&rng) % 1000) / 500.0);
    }
    REQUIRE(vdx_map_cluster(xy, M, 2, 1, cl, &err) == 0, "%s", err.message);
    int wrong = 0;
    for (int i = 0; i < M; i++)
        wrong += cl[i] != (i < 200 ? 0 : 1);
    CHECK(wrong == 0, "%d points in the wrong cluster", wrong);
    CHECK(vdx_map_cluster(xy, M, 0, 1, cl, &err) == -1 && err.kind == VDX_ERR_INVALID,
          "0 clusters accepted");
}

TEST(cluster_name_is_the_matching_vocabulary_entry)
{
    vdx_error err = {{0}};
    enum { D = 8, M = 30 };
    float v[M * D] = {0}, vocab[4 * D] = {0};
    int32_t cl[M];
    /* cluster c's items point along axis 2c plus noise on axis 7 */
    for (int i = 0; i < M; i++) {
        cl[i] = i % 3;
        v[i * D + 2 * cl[i]] = 0.9f;
        v[i * D + 7] = (i & 1) ? 0.4f : -0.4f;
    }
    /* vocabulary: 0 "car" axis 4, 1 "sky" axes 0+1, 2 "dog" axis 0, 3 "cat" axis 2
     * (not unit: naming is by direction) */
    vocab[0 * D + 4] = 3;
    vocab[1 * D + 0] = 1, vocab[1 * D + 1] = 1;
    vocab[2 * D + 0] = 0.5f;
    vocab[3 * D + 2] = 2;
    int names[4] = {9, 9, 9, 9};
    vdx_map_vectors q;
    REQUIRE(vdx_map_vectors_alloc(&q, M, D, &err) == 0, "%s", err.message);
    REQUIRE(vdx_map_vectors_set(&q, 0, M, v, &err) == 0, "%s", err.message);
    REQUIRE(vdx_map_name_clusters(&q, cl, 4, vocab, 4, names, &err) == 0, "%s", err.message);
    vdx_map_vectors_free(&q);
    CHECK(names[0] == 2, "cluster 0 named %d, expected 2 (dog)", names[0]);
    CHECK(names[1] == 3, "cluster 1 named %d, expected 3 (cat)", names[1]);
    CHECK(names[2] == 0, "cluster 2 named %d, expected 0 (car)", names[2]);
    CHECK(names[3] == -1, "the empty cluster named %d", names[3]);
}

TEST(clusters_never_share_a_name)
{
    vdx_error err = {{0}};
    enum { D = 4, M = 30 };
    float v[M * D] = {0}, vocab[3 * D] = {0};
    int32_t cl[M];
    /* three clusters all nearest to entry 0 (axis 0); cluster 1 leans to axis 1, cluster 2
     * to axis 2: cluster 0 (closest to axis 0) keeps it, the others take their next best */
    for (int i = 0; i < M; i++) {
        cl[i] = i % 3;
        v[i * D + 0] = 1;
        if (cl[i] > 0)
            v[i * D + cl[i]] = cl[i] == 1 ? 0.5f : 0.7f;
    }
    vocab[0 * D + 0] = 1; /* "beach" */
    vocab[1 * D + 1] = 1; /* "shore" */
    vocab[2 * D + 2] = 1; /* "sea" */
    int names[3] = {9, 9, 9};
    vdx_map_vectors q;
    REQUIRE(vdx_map_vectors_alloc(&q, M, D, &err) == 0, "%s", err.message);
    REQUIRE(vdx_map_vectors_set(&q, 0, M, v, &err) == 0, "%s", err.message);
    REQUIRE(vdx_map_name_clusters(&q, cl, 3, vocab, 3, names, &err) == 0, "%s", err.message);
    CHECK(names[0] == 0 && names[1] == 1 && names[2] == 2,
          "names %d %d %d, expected 0 1 2 (each cluster its own word)", names[0], names[1],
          names[2]);
    /* fewer words than clusters: names repeat only once every word is taken */
    REQUIRE(vdx_map_name_clusters(&q, cl, 3, vocab, 2, names, &err) == 0, "%s", err.message);
    CHECK(names[0] == 0 && names[1] == 1 && names[2] == 0,
          "names %d %d %d with two words, expected 0 1 0", names[0], names[1], names[2]);
    vdx_map_vectors_free(&q);
}

TEST(map_round_trip_and_later_items_placed_near_neighbours)
{
    vdx_error err = {{0}};
    vdx_store *s = open_store("rt", 1, &err);
    REQUIRE(s, "%s", err.message);
    REQUIRE(fill(s, 0, N - 20, &err) == 0, "%s", err.message);
    vdx_map_options o = {.seed = 5, .epochs = 150, .clusters = CLUSTERS};
    REQUIRE(vdx_map_build(s, &o, NULL, &err) == 0, "%s", err.message);
    vdx_map *m = vdx_map_open(s, &err);
    REQUIRE(m, "%s", err.message);
    CHECK(vdx_map_count(m) == N - 20, "count %lld", (long long)vdx_map_count(m));
    CHECK(vdx_map_cluster_count(m) == CLUSTERS, "%d clusters", vdx_map_cluster_count(m));
    /* the same coordinates as the layout of the same vectors and options */
    float *xy = malloc(sizeof(float) * 2 * N);
    vdx_map_vectors first = codes;
    first.n = N - 20;
    REQUIRE(vdx_map_layout(&first, &o, xy, &err) == 0, "%s", err.message);
    const vdx_map_point *p = vdx_map_points(m);
    int64_t at = vdx_map_find(m, "i17");
    CHECK(at >= 0 && p[at].x == xy[2 * 17] && p[at].y == xy[2 * 17 + 1] && !p[at].placed,
          "i17 at (%g, %g), layout says (%g, %g)", at >= 0 ? p[at].x : 0,
          at >= 0 ? p[at].y : 0, xy[34], xy[35]);
    cJSON *d = vdx_map_describe(m);
    cJSON *par = cJSON_GetObjectItemCaseSensitive(d, "parameters");
    CHECK(cJSON_GetObjectItemCaseSensitive(par, "seed")->valuedouble == 5 &&
              cJSON_GetObjectItemCaseSensitive(par, "epochs")->valuedouble == 150,
          "parameters not recorded");
    cJSON_Delete(d);
    char v1[64];
    snprintf(v1, sizeof v1, "%s", vdx_map_version(m));
    vdx_map_close(m);

    /* 20 more items: placed at the mean of their mapped neighbours, so each lands closer
     * to the centre of its own synthetic cluster's mapped items than to the others' */
    REQUIRE(fill(s, N - 20, 20, &err) == 0, "%s", err.message);
    m = vdx_map_open(s, &err);
    REQUIRE(m, "%s", err.message);
    REQUIRE(vdx_map_count(m) == N, "count %lld after adding 20", (long long)vdx_map_count(m));
    CHECK(strcmp(v1, vdx_map_version(m)) != 0, "version unchanged after placing items");
    p = vdx_map_points(m);
    double cx[CLUSTERS] = {0}, cy[CLUSTERS] = {0}, cn[CLUSTERS] = {0};
    for (int i = 0; i < N - 20; i++) {
        int c = synth_cluster_of(gen, (uint64_t)atoi(p[i].id + 1));
        cx[c] += p[i].x, cy[c] += p[i].y, cn[c]++;
    }
    int near = 0;
    for (int i = N - 20; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "i%d", i);
        int64_t j = vdx_map_find(m, id);
        REQUIRE(j >= N - 20 && p[j].placed && p[j].cluster == -1, "%s not placed", id);
        int own = synth_cluster_of(gen, (uint64_t)i), best = -1;
        double bd = INFINITY;
        for (int c = 0; c < CLUSTERS; c++) {
            if (cn[c] == 0)
                continue;
            double dx = p[j].x - cx[c] / cn[c], dy = p[j].y - cy[c] / cn[c];
            if (dx * dx + dy * dy < bd)
                bd = dx * dx + dy * dy, best = c;
        }
        near += best == own;
    }
    CHECK(near >= 18, "only %d of 20 placed items nearest their own cluster", near);
    vdx_map_close(m);
    free(xy);
    vdx_store_close(s);
}

static void die_at(const char *stage, double f, void *user)
{
    if (strcmp(stage, (const char *)user) == 0 && f >= 0.5)
        raise(SIGKILL);
}

static int file_bytes(const char *path, char **data, size_t *size)
{
    return vdx_read_file(path, data, size, NULL);
}

TEST(killed_build_leaves_the_old_map_or_none)
{
    vdx_error err = {{0}};
    vdx_store *s = open_store("kill", 1, &err);
    REQUIRE(s, "%s", err.message);
    REQUIRE(fill(s, 0, 400, &err) == 0, "%s", err.message);
    char path[4300];
    snprintf(path, sizeof path, "%s/map.bin", vdx_store_dir(s));
    const char *stages[] = {"neighbours", "layout", "clusters"};
    for (int round = 0; round < 2; round++) {
        char *before = NULL;
        size_t before_size = 0;
        int had = file_bytes(path, &before, &before_size) == 0;
        for (int st = 0; st < 3; st++) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                vdx_map_options o = {.seed = 99, .on_progress = die_at,
                                     .user = (void *)stages[st]};
                vdx_map_build(s, &o, NULL, NULL);
                _exit(0);
            }
            int status = 0;
            waitpid(pid, &status, 0);
            CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "the build was not killed at %s", stages[st]);
            char *after = NULL;
            size_t after_size = 0;
            int has = file_bytes(path, &after, &after_size) == 0;
            CHECK(has == had, "map.bin %s by a build killed at %s",
                  had ? "removed" : "created", stages[st]);
            if (had && has)
                CHECK(after_size == before_size && memcmp(before, after, after_size) == 0,
                      "map.bin changed by a build killed at %s", stages[st]);
            free(after);
        }
        free(before);
        if (round == 0) { /* now with a map: a killed rebuild must keep it */
            vdx_map_options o = {.seed = 1, .epochs = 50};
            REQUIRE(vdx_map_build(s, &o, NULL, &err) == 0, "%s", err.message);
        }
    }
    vdx_map *m = vdx_map_open(s, &err);
    CHECK(m && vdx_map_count(m) == 400, "the old map is unreadable: %s", err.message);
    vdx_map_close(m);
    vdx_store_close(s);
}

TEST(damaged_map_file_is_refused_as_corrupt)
{
    vdx_error err = {{0}};
    vdx_store *s = open_store("bad", 1, &err);
    REQUIRE(s, "%s", err.message);
    vdx_map *m = vdx_map_open(s, &err);
    CHECK(!m && err.kind == VDX_ERR_NOT_FOUND && strstr(err.message, "vdx map build"),
          "no map: kind %d, %s", err.kind, err.message);
    REQUIRE(fill(s, 0, 50, &err) == 0, "%s", err.message);
    vdx_map_options o = {.epochs = 20};
    REQUIRE(vdx_map_build(s, &o, NULL, &err) == 0, "%s", err.message);
    char path[4300];
    snprintf(path, sizeof path, "%s/map.bin", vdx_store_dir(s));
    char *data;
    size_t size;
    REQUIRE(file_bytes(path, &data, &size) == 0, "no map.bin");
    data[size / 2] ^= 0x40;
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, size, f);
    fclose(f);
    free(data);
    m = vdx_map_open(s, &err);
    CHECK(!m && err.kind == VDX_ERR_CORRUPT && strstr(err.message, "checksum") &&
              strstr(err.message, "map.bin"),
          "damaged map: kind %d, %s", err.kind, err.message);
    vdx_map_close(m);
    vdx_store_close(s);
}

/* A stored vector damaged on disk (a NaN where the store had accepted a number): the
 * build names the item, calls it corrupt data and leaves the previous map in place. */
TEST(damaged_vector_names_the_item_and_keeps_the_old_map)
{
    vdx_error err = {{0}};
    vdx_store *s = open_store("nan", 1, &err);
    REQUIRE(s, "%s", err.message);
    REQUIRE(fill(s, 0, 60, &err) == 0, "%s", err.message);
    vdx_map_options o = {.epochs = 20};
    REQUIRE(vdx_map_build(s, &o, NULL, &err) == 0, "%s", err.message);
    char path[4300];
    snprintf(path, sizeof path, "%s/map.bin", vdx_store_dir(s));
    char *before;
    size_t before_size;
    REQUIRE(file_bytes(path, &before, &before_size) == 0, "no map.bin");
    /* row 7, dimension 3 of vectors.f32 (a 64-byte header, then DIMS floats a row) */
    char vec_path[4300];
    snprintf(vec_path, sizeof vec_path, "%s/vectors.f32", vdx_store_dir(s));
    vdx_store_close(s);
    FILE *f = fopen(vec_path, "r+b");
    REQUIRE(f, "%s: %s", vec_path, strerror(errno));
    float nan = NAN;
    fseek(f, 64 + (7 * DIMS + 3) * (long)sizeof(float), SEEK_SET);
    fwrite(&nan, sizeof nan, 1, f);
    fclose(f);
    s = open_store("nan", 0, &err);
    REQUIRE(s, "%s", err.message);
    CHECK(vdx_map_build(s, &o, NULL, &err) == -1 && err.kind == VDX_ERR_CORRUPT &&
              strstr(err.message, "item 'i7'") && strstr(err.message, "dimension 3"),
          "kind %d: %s", err.kind, err.message);
    char *after;
    size_t after_size;
    REQUIRE(file_bytes(path, &after, &after_size) == 0, "map.bin gone after a refused build");
    CHECK(after_size == before_size && memcmp(before, after, before_size) == 0,
          "a refused build changed map.bin");
    free(before), free(after);
    vdx_store_close(s);
}

TEST(wordnet_vocabulary_holds_visual_nouns_and_round_trips)
{
    vdx_error err = {{0}};
    vdx_map_vocab v;
    REQUIRE(vdx_map_vocab_wordnet("/usr/share/wordnet", 2, &v, &err) == 0, "%s (install "
            "wordnet-base: scripts/deps.sh)", err.message);
    int dog = 0, car = 0, idea = 0, sorted = 1;
    for (int i = 0; i < v.n; i++) {
        dog += strcmp(v.words[i], "bird") == 0;
        car += strcmp(v.words[i], "lamp") == 0;
        idea += strcmp(v.words[i], "idea") == 0 || strcmp(v.words[i], "happiness") == 0;
        if (i && strcmp(v.words[i - 1], v.words[i]) >= 0)
            sorted = 0;
    }
    CHECK(v.n > 500 && v.n < 3000, "%d words", v.n);
    CHECK(dog && car && !idea && sorted, "bird %d lamp %d abstract %d sorted %d", dog, car, idea,
          sorted);
    /* save/load with made-up vectors (embedding needs a model: integration/map.sh) */
    v.dims = DIMS;
    snprintf(v.model, sizeof v.model, "test-model");
    v.vectors = malloc(sizeof(float) * DIMS * (size_t)v.n);
    for (int i = 0; i < v.n * DIMS; i++)
        v.vectors[i] = (float)(i % 17) / 17.0f;
    vdx_store *s = open_store("vocab", 1, &err);
    REQUIRE(s, "%s", err.message);
    vdx_map_vocab w;
    CHECK(vdx_map_vocab_load(s, &w, &err) == -1 && err.kind == VDX_ERR_NOT_FOUND,
          "absent vocabulary: kind %d", err.kind);
    REQUIRE(vdx_map_vocab_save(s, &v, &err) == 0, "%s", err.message);
    REQUIRE(vdx_map_vocab_load(s, &w, &err) == 0, "%s", err.message);
    CHECK(w.n == v.n && w.dims == DIMS && strcmp(w.model, "test-model") == 0 &&
              strcmp(w.words[w.n - 1], v.words[v.n - 1]) == 0 &&
              memcmp(w.vectors, v.vectors, sizeof(float) * DIMS * (size_t)v.n) == 0,
          "vocabulary changed in its round trip");
    vdx_map_vocab_free(&w);
    vdx_map_vocab_free(&v);
    vdx_store_close(s);
}

int main(void)
{
    test_tmp_begin("map");
    snprintf(data_dir, sizeof data_dir, "%s/data", getenv("TMPDIR"));
    synth_params p;
    synth_defaults(&p);
    p.dim = DIMS;
    p.clusters = CLUSTERS;
    p.skew = 0;
    char err[256];
    gen = synth_new(&p, err, sizeof err);
    if (!gen) {
        printf("synth: %s\n", err);
        return 1;
    }
    vecs = malloc(sizeof(float) * DIMS * N);
    synth_images(gen, 0, N, vecs);
    vdx_error e = {{0}};
    if (vdx_map_vectors_alloc(&codes, N, DIMS, &e) != 0 ||
        vdx_map_vectors_set(&codes, 0, N, vecs, &e) != 0) {
        printf("codes: %s\n", e.message);
        return 1;
    }
    RUN(int8_codes_hold_each_value_within_half_a_step);
    RUN(exact_neighbours_from_codes_match_float32);
    RUN(layout_is_deterministic_for_a_seed);
    RUN(layout_keeps_neighbours_better_than_pca);
    RUN(partitioned_neighbours_find_most_exact_ones);
    RUN(kmeans_separates_blobs_numbered_by_size);
    RUN(cluster_name_is_the_matching_vocabulary_entry);
    RUN(clusters_never_share_a_name);
    RUN(map_round_trip_and_later_items_placed_near_neighbours);
    RUN(killed_build_leaves_the_old_map_or_none);
    RUN(damaged_map_file_is_refused_as_corrupt);
    RUN(damaged_vector_names_the_item_and_keeps_the_old_map);
    RUN(wordnet_vocabulary_holds_visual_nouns_and_round_trips);
    free(vecs);
    vdx_map_vectors_free(&codes);
    synth_free(gen);
    test_tmp_end();
    return test_summary("map");
}
