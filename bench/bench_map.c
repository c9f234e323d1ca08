/* bench_map: the map's layout (src/map/layout.c) on synthetic clustered vectors with
 * CLIP's geometry (tests/support/synth.h; --synth-* flags), against the PCA projection of
 * the same vectors in the same run. Prints, never passes or fails:
 *   - seconds for the neighbour graph, the whole layout and the PCA projection;
 *   - the neighbour graph read from the int8 codes against the float32 vectors' exact
 *     10 nearest (recall, on the sampled items);
 *   - quality: the mean fraction of an item's 10 nearest neighbours (512-d cosine) that
 *     stay among its 10 nearest on the map (a sample of items, exact in both spaces),
 *     for the map and for PCA, and their ratio;
 *   - cluster separation: the fraction of items nearer (on the map) to the centre of
 *     their own synthetic cluster than to any other cluster's, map and PCA;
 *   - memory: the layout's peak above the codes, per item.
 * --store runs what `vdx map build` runs instead: a collection of N synthetic items in a
 * scratch store (float16 vectors; --f32 for float32), then vdx_map_build on it, reporting
 * its time, the process's peak anonymous memory per item (everything the build allocates)
 * and its peak resident size (which adds the pages of the mapped vector file it read).
 * Memory is sampled every 2 ms by a thread reading /proc/self/status.
 * Above --exact-max items (default 50000) the neighbours come from the partitioned search
 * (--probe partitions, default 8).
 * Usage: bench_map [--items N] [--sample N] [--seed N] [--exact-max N] [--probe N]
 * [--store [--f32] [--dir DIR]] [--synth-...]. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "../tests/support/synth.h"
#include "map/map_internal.h"
#include "vdx/map.h"

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, strlen(field)) == 0)
            kb = atol(line + strlen(field));
    if (f)
        fclose(f);
    return kb;
}

/* The memory sampler: the peaks of RssAnon and VmRSS since the last reset. */
static struct {
    pthread_mutex_t lock;
    long anon, rss;
    int stop;
} mem = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};

static void *sampler(void *arg)
{
    (void)arg;
    for (;;) {
        long a = status_kb("RssAnon:"), r = status_kb("VmRSS:");
        pthread_mutex_lock(&mem.lock);
        int stop = mem.stop;
        if (a > mem.anon)
            mem.anon = a;
        if (r > mem.rss)
            mem.rss = r;
        pthread_mutex_unlock(&mem.lock);
        if (stop)
            return NULL;
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
}

static void mem_reset(void)
{
    pthread_mutex_lock(&mem.lock);
    mem.anon = status_kb("RssAnon:"), mem.rss = status_kb("VmRSS:");
    pthread_mutex_unlock(&mem.lock);
}

static void mem_peaks(long *anon, long *rss)
{
    long a = status_kb("RssAnon:"), r = status_kb("VmRSS:");
    pthread_mutex_lock(&mem.lock);
    *anon = a > mem.anon ? a : mem.anon;
    *rss = r > mem.rss ? r : mem.rss;
    pthread_mutex_unlock(&mem.lock);
}

/* exact 10-NN of item i among all n in 2-D */
static const char *loadavg(void)
{
    static char buf[64] = "?\n";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            snprintf(buf, sizeof buf, "?\n");
        fclose(f);
    }
    return buf;
}

/* CPU seconds of the process (user + system), a figure less hurt by a busy machine. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static void nn2d(const float *xy, int64_t n, int64_t i, int k, int64_t *out)
{
    float best[16];
    int have = 0;
    for (int64_t j = 0; j < n; j++) {
        if (j == i)
            continue;
        float dx = xy[2 * i] - xy[2 * j], dy = xy[2 * i + 1] - xy[2 * j + 1];
        float d = dx * dx + dy * dy;
        if (have == k && d >= best[k - 1])
            continue;
        int p = have < k ? have++ : k - 1;
        while (p > 0 && best[p - 1] > d) {
            best[p] = best[p - 1], out[p] = out[p - 1];
            p--;
        }
        best[p] = d, out[p] = j;
    }
}

static double kept(const float *xy, int64_t n, const int64_t *sample, int ns,
                   const int64_t *truth)
{
    double hits = 0;
    for (int s = 0; s < ns; s++) {
        int64_t got[10];
        nn2d(xy, n, sample[s], 10, got);
        for (int a = 0; a < 10; a++)
            for (int b = 0; b < 10; b++)
                hits += truth[s * 10 + a] == got[b];
    }
    return hits / (10.0 * ns);
}

static double separation(const float *xy, int64_t n, const int *cl, int k)
{
    double *c = calloc(3 * (size_t)k, sizeof *c);
    for (int64_t i = 0; i < n; i++)
        c[3 * cl[i]] += xy[2 * i], c[3 * cl[i] + 1] += xy[2 * i + 1], c[3 * cl[i] + 2]++;
    int64_t good = 0;
    for (int64_t i = 0; i < n; i++) {
        int best = -1;
        double bd = INFINITY;
        for (int j = 0; j < k; j++) {
            if (c[3 * j + 2] == 0)
                continue;
            double dx = xy[2 * i] - c[3 * j] / c[3 * j + 2], dy = xy[2 * i + 1] - c[3 * j + 1] / c[3 * j + 2];
            if (dx * dx + dy * dy < bd)
                bd = dx * dx + dy * dy, best = j;
        }
        good += best == cl[i];
    }
    free(c);
    return (double)good / (double)n;
}

static void on_progress(const char *stage, double f, void *user)
{
    (void)f;
    (void)user;
    static char last[32];
    if (strcmp(stage, last) != 0) {
        snprintf(last, sizeof last, "%s", stage);
        long anon, rss;
        mem_peaks(&anon, &rss);
        fprintf(stderr, "  stage %s: anonymous memory %.1f MB now, %.1f MB at the peak so far\n",
                stage, status_kb("RssAnon:") / 1024.0, anon / 1024.0);
    }
}

/* The layout on arrays: float32 vectors for the ground truth, their int8 codes for the
 * layout, PCA of the same codes. */
static int bench_arrays(synth *g, int64_t n, int ns, const vdx_map_options *o, int clusters)
{
    int d = synth_params_of(g)->dim;
    uint64_t seed = o->seed;
    float *x = malloc(sizeof(float) * (size_t)n * d);
    float *xy = malloc(sizeof(float) * 2 * (size_t)n), *pca = malloc(sizeof(float) * 2 * (size_t)n);
    int *cl = malloc(sizeof(int) * (size_t)n);
    vdx_map_vectors v = {0};
    vdx_error e = {{0}};
    if (!x || !xy || !pca || !cl || vdx_map_vectors_alloc(&v, n, d, &e) != 0) {
        fprintf(stderr, "bench_map: out of memory for %lld items\n", (long long)n);
        return 1;
    }
    synth_images(g, 0, (size_t)n, x);
    for (int64_t i = 0; i < n; i++)
        cl[i] = synth_cluster_of(g, (uint64_t)i);
    if (vdx_map_vectors_set(&v, 0, n, x, &e) != 0) {
        fprintf(stderr, "bench_map: %s\n", e.message);
        return 1;
    }

    /* ground truth: exact 10-NN (512-d, float32) of a spread sample */
    int64_t *sample = malloc(sizeof(int64_t) * (size_t)ns), *truth = malloc(sizeof(int64_t) * 10 * (size_t)ns);
    for (int s = 0; s < ns; s++) {
        sample[s] = (int64_t)((double)s * (double)n / ns);
        const float *q = x + sample[s] * d;
        float best[10];
        int have = 0;
        for (int64_t j = 0; j < n; j++) {
            if (j == sample[s])
                continue;
            float dot = 0;
            for (int t = 0; t < d; t++)
                dot += q[t] * x[j * d + t];
            float dist = 1 - dot;
            if (have == 10 && dist >= best[9])
                continue;
            int pp = have < 10 ? have++ : 9;
            while (pp > 0 && best[pp - 1] > dist) {
                best[pp] = best[pp - 1], truth[s * 10 + pp] = truth[s * 10 + pp - 1];
                pp--;
            }
            best[pp] = dist, truth[s * 10 + pp] = j;
        }
    }
    free(x); /* the layout reads the codes only */

    /* the neighbour graph alone, for the split of the time and its recall */
    int32_t *nb = malloc(sizeof(int32_t) * 15 * (size_t)n);
    float *nd = malloc(sizeof(float) * 15 * (size_t)n);
    double t0 = vdx_now(), c0 = cpu_s();
    if (map_knn(&v, 15, o, nb, nd, &e) != 0) {
        fprintf(stderr, "bench_map: %s\n", e.message);
        return 1;
    }
    double t_knn = vdx_now() - t0, c_knn = cpu_s() - c0, found = 0;
    for (int s = 0; s < ns; s++)
        for (int a = 0; a < 10; a++)
            for (int b = 0; b < 10; b++)
                found += nb[sample[s] * 15 + a] == truth[s * 10 + b];
    free(nb), free(nd);

    long before = status_kb("RssAnon:");
    mem_reset();
    t0 = vdx_now(), c0 = cpu_s();
    if (vdx_map_layout(&v, o, xy, &e) != 0) {
        fprintf(stderr, "bench_map: %s\n", e.message);
        return 1;
    }
    double t_map = vdx_now() - t0, c_map = cpu_s() - c0;
    long peak, rss;
    mem_peaks(&peak, &rss);
    t0 = vdx_now();
    map_pca(&v, seed, pca, &e);
    double t_pca = vdx_now() - t0;

    double q_map = kept(xy, n, sample, ns, truth), q_pca = kept(pca, n, sample, ns, truth);
    double s_map = separation(xy, n, cl, clusters), s_pca = separation(pca, n, cl, clusters);
    printf("time: neighbours %.2f s (%.2f CPU s), layout (neighbours + graph + PCA start + SGD) "
           "%.2f s (%.2f CPU s), PCA alone %.2f s (layout/PCA %.1fx); load average %s", t_knn,
           c_knn, t_map, c_map, t_pca, t_map / t_pca, loadavg());
    printf("neighbour graph from the int8 codes: %.3f of the float32 vectors' exact 10 nearest "
           "(%d items sampled)\n", found / (10.0 * ns), ns);
    printf("10-NN kept (512-d -> 2-D, %d items sampled): map %.3f, PCA %.3f", ns, q_map, q_pca);
    if (q_pca > 0)
        printf(" (map/PCA %.2fx)", q_map / q_pca);
    printf("\n");
    printf("cluster separation (items nearest their own cluster's centre): map %.3f, PCA %.3f\n",
           s_map, s_pca);
    printf("memory: the codes take %d bytes/item; the layout's peak adds %.0f bytes/item "
           "(anonymous memory %.1f MB before, %.1f MB at the peak)\n", d + 4,
           (double)(peak - before) * 1024 / n, before / 1024.0, peak / 1024.0);
    vdx_map_vectors_free(&v);
    free(xy), free(pca), free(cl), free(sample), free(truth);
    return 0;
}

/* --store: a collection in a scratch store, then vdx_map_build on it. */
static int bench_store(synth *g, int64_t n, int f32, const char *dir_arg,
                       const vdx_map_options *o, int clusters)
{
    int d = synth_params_of(g)->dim;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/vdx-bench-map-XXXXXX", dir_arg);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    vdx_model_identity m = {0};
    snprintf(m.name, sizeof m.name, "synthetic");
    memset(m.config_hash, 's', 64);
    m.dims = d;
    vdx_store_options so = {.data_dir = dir, .collection = "bench", .create = 1, .model = &m,
                            .vector_type = f32 ? VDX_VECTOR_F32 : VDX_VECTOR_F16};
    vdx_error e = {{0}};
    vdx_store *store = vdx_store_open(&so, &e);
    if (!store) {
        fprintf(stderr, "bench_map: %s\n", e.message);
        return 1;
    }
    double t0 = vdx_now();
    if (synth_fill_store(g, store, n, NULL, &e) != 0) {
        fprintf(stderr, "bench_map: append: %s\n", e.message);
        return 1;
    }
    printf("store: %lld items of %d-d %s in %.1f s (%s)\n", (long long)n, d,
           f32 ? "float32" : "float16", vdx_now() - t0, dir);
    vdx_store_close(store);
    if (!(store = vdx_store_open(&so, &e))) { /* a fresh handle, as `vdx map build` has */
        fprintf(stderr, "bench_map: %s\n", e.message);
        return 1;
    }
    long anon0 = status_kb("RssAnon:");
    mem_reset();
    double c0 = cpu_s();
    t0 = vdx_now();
    if (vdx_map_build(store, o, NULL, &e) != 0) {
        fprintf(stderr, "bench_map: map build: %s\n", e.message);
        return 1;
    }
    double t = vdx_now() - t0, c = cpu_s() - c0;
    long anon, rss;
    mem_peaks(&anon, &rss);
    printf("map build: %.1f s (%.1f CPU s); load average %s", t, c, loadavg());
    printf("memory of the build: peak anonymous %.1f MB = %.0f bytes/item (%.1f MB before it); "
           "peak resident %.1f MB = %.0f bytes/item, the difference being the mapped vector "
           "file's pages (page cache, %d bytes/item on disk)\n",
           anon / 1024.0, anon * 1024.0 / n, anon0 / 1024.0, rss / 1024.0, rss * 1024.0 / n,
           d * (f32 ? 4 : 2));
    vdx_map *map = vdx_map_open(store, &e);
    if (map) {
        const vdx_map_point *pt = vdx_map_points(map);
        float *xy = malloc(sizeof(float) * 2 * (size_t)n);
        int *cl = malloc(sizeof(int) * (size_t)n);
        for (int64_t i = 0; i < n; i++) {
            int64_t at = atoll(pt[i].id + 1);
            xy[2 * at] = pt[i].x, xy[2 * at + 1] = pt[i].y;
            cl[at] = synth_cluster_of(g, (uint64_t)at);
        }
        printf("cluster separation of the built map: %.3f\n", separation(xy, n, cl, clusters));
        free(xy), free(cl);
        vdx_map_close(map);
    } else {
        fprintf(stderr, "bench_map: %s\n", e.message);
    }
    vdx_store_close(store);
    bench_remove_tree(dir);
    return 0;
}

int main(int argc, char **argv)
{
    synth_params p;
    synth_defaults(&p);
    p.clusters = 100;
    int64_t n = 25000;
    int ns = 1000;
    uint64_t seed = 1;
    int exact_max = 0, probe = 0, store = 0, f32 = 0;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i < argc; i++) {
        char err[256];
        int r = synth_parse_flag(&p, argv[i], err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "bench_map: %s\n", err);
            return 2;
        }
        if (r == 1)
            continue;
        if (strcmp(argv[i], "--items") == 0 && i + 1 < argc)
            n = atoll(argv[++i]);
        else if (strcmp(argv[i], "--sample") == 0 && i + 1 < argc)
            ns = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--exact-max") == 0 && i + 1 < argc)
            exact_max = atoi(argv[++i]);
        else if (strcmp(argv[i], "--probe") == 0 && i + 1 < argc)
            probe = atoi(argv[++i]);
        else if (strcmp(argv[i], "--store") == 0)
            store = 1;
        else if (strcmp(argv[i], "--f32") == 0)
            f32 = 1;
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else {
            char help[2048];
            synth_flags_help(&p, help, sizeof help);
            fprintf(stderr, "usage: bench_map [--items N] [--sample N] [--seed N] [--exact-max N] "
                            "[--probe N] [--store [--f32] [--dir DIR]]\n%s", help);
            return 2;
        }
    }
    if (ns > n)
        ns = (int)n;
    char err[256];
    synth *g = synth_new(&p, err, sizeof err);
    if (!g) {
        fprintf(stderr, "bench_map: %s\n", err);
        return 2;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, sampler, NULL) != 0) {
        fprintf(stderr, "bench_map: cannot start the memory sampler\n");
        return 1;
    }
    printf("items %lld, %d-d, %d synthetic clusters (skew %.2f), seed %llu\n", (long long)n,
           p.dim, p.clusters, p.skew, (unsigned long long)seed);
    vdx_map_options o = {.seed = seed, .exact_max = exact_max, .probe = probe};
    int rc;
    if (store) {
        o.on_progress = on_progress;
        rc = bench_store(g, n, f32, dir, &o, p.clusters);
    } else {
        rc = bench_arrays(g, n, ns, &o, p.clusters);
    }
    pthread_mutex_lock(&mem.lock);
    mem.stop = 1;
    pthread_mutex_unlock(&mem.lock);
    pthread_join(th, NULL);
    synth_free(g);
    return rc;
}
