/* bench_map: the map's layout (src/map/layout.c) on synthetic clustered vectors with
 * CLIP's geometry (tests/support/synth.h; --synth-* flags), against the PCA projection of
 * the same vectors in the same run. Prints, never passes or fails:
 *   - seconds for the neighbour graph, the whole layout and the PCA projection;
 *   - quality: the mean fraction of an item's 10 nearest neighbours (512-d cosine) that
 *     stay among its 10 nearest on the map (a sample of items, exact in both spaces),
 *     for the map and for PCA, and their ratio;
 *   - cluster separation: the fraction of items nearer (on the map) to the centre of
 *     their own synthetic cluster than to any other cluster's, map and PCA;
 *   - peak resident memory per item during the layout (the vectors themselves included).
 * Above --exact-max items (default 50000) the neighbours come from the partitioned search
 * (--probe partitions, default 8).
 * Usage: bench_map [--items N] [--sample N] [--seed N] [--exact-max N] [--probe N]
 * [--synth-...]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"
#include "../tests/support/synth.h"
#include "map/map_internal.h"
#include "vdx/map.h"

/* Resets the peak resident size (Linux >= 4.0), so VmHWM measures one phase. */
static void rss_reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

static long rss_kb(const char *field)
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

int main(int argc, char **argv)
{
    synth_params p;
    synth_defaults(&p);
    p.clusters = 100;
    int64_t n = 25000;
    int ns = 1000;
    uint64_t seed = 1;
    int exact_max = 0, probe = 0;
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
        else {
            char help[2048];
            synth_flags_help(&p, help, sizeof help);
            fprintf(stderr, "usage: bench_map [--items N] [--sample N] [--seed N] [--exact-max N] "
                            "[--probe N]\n%s", help);
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
    int d = p.dim;
    float *x = malloc(sizeof(float) * (size_t)n * d);
    float *xy = malloc(sizeof(float) * 2 * (size_t)n), *pca = malloc(sizeof(float) * 2 * (size_t)n);
    int *cl = malloc(sizeof(int) * (size_t)n);
    if (!x || !xy || !pca || !cl) {
        fprintf(stderr, "bench_map: out of memory for %lld items\n", (long long)n);
        return 1;
    }
    synth_images(g, 0, (size_t)n, x);
    for (int64_t i = 0; i < n; i++)
        cl[i] = synth_cluster_of(g, (uint64_t)i);
    printf("items %lld, %d-d, %d synthetic clusters (skew %.2f), seed %llu\n", (long long)n, d,
           p.clusters, p.skew, (unsigned long long)seed);

    /* the neighbour graph alone, for the split of the time */
    vdx_error e = {{0}};
    vdx_map_options o = {.seed = seed, .exact_max = exact_max, .probe = probe};
    int32_t *nb = malloc(sizeof(int32_t) * 15 * (size_t)n);
    float *nd = malloc(sizeof(float) * 15 * (size_t)n);
    double t0 = vdx_now(), c0 = cpu_s();
    map_knn(x, n, d, 15, &o, nb, nd, &e);
    double t_knn = vdx_now() - t0, c_knn = cpu_s() - c0;
    free(nb), free(nd);

    long before = rss_kb("VmRSS:");
    rss_reset_peak();
    t0 = vdx_now(), c0 = cpu_s();
    if (vdx_map_layout(x, n, d, &o, xy, &e) != 0) {
        fprintf(stderr, "bench_map: %s\n", e.message);
        return 1;
    }
    double t_map = vdx_now() - t0, c_map = cpu_s() - c0;
    long peak = rss_kb("VmHWM:");
    t0 = vdx_now();
    map_pca(x, n, d, seed, pca, &e);
    double t_pca = vdx_now() - t0;

    /* ground truth: exact 10-NN (512-d) of a spread sample */
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
    double q_map = kept(xy, n, sample, ns, truth), q_pca = kept(pca, n, sample, ns, truth);
    double s_map = separation(xy, n, cl, p.clusters), s_pca = separation(pca, n, cl, p.clusters);
    printf("time: neighbours %.2f s (%.2f CPU s), layout (neighbours + graph + PCA start + SGD) "
           "%.2f s (%.2f CPU s), PCA alone %.2f s (layout/PCA %.1fx); load average %s", t_knn,
           c_knn, t_map, c_map, t_pca, t_map / t_pca, loadavg());
    printf("10-NN kept (512-d -> 2-D, %d items sampled): map %.3f, PCA %.3f (map/PCA %.2fx)\n",
           ns, q_map, q_pca, q_map / q_pca);
    printf("cluster separation (items nearest their own cluster's centre): map %.3f, PCA %.3f\n",
           s_map, s_pca);
    printf("memory: %d bytes/item of vectors (f32); the layout's peak adds %.0f bytes/item "
           "(resident %.1f MB before, %.1f MB at the peak)\n", d * 4,
           (double)(peak - before) * 1024 / n, before / 1024.0, peak / 1024.0);
    free(x), free(xy), free(pca), free(cl), free(sample), free(truth);
    synth_free(g);
    return 0;
}
