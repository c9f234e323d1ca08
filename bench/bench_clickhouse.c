/* Store backends side by side: bulk insert throughput (rows/s, MB/s of vectors) and
 * search latency for N×D clustered unit vectors, embedded store vs ClickHouse.
 *   bench_clickhouse STORE_URL [N [DIMS]]      (default 25000 × 512)
 * bench/bench_clickhouse.sh starts a throw-away server and runs this. Prints numbers,
 * never passes or fails on them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vdx/store.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void normalise(float *v, int dims)
{
    double n = 0;
    for (int d = 0; d < dims; d++)
        n += (double)v[d] * v[d];
    n = sqrt(n);
    for (int d = 0; d < dims; d++)
        v[d] = (float)(v[d] / n);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    double insert_s;
    double search_ms[3]; /* plain, 1,000 exclusions, filter */
    char label[48];      /* backend/dialect */
} result;

static int run(const char *label, const char *url, const char *dir, int n, int dims,
               const float *vectors, char (*ids)[24], result *out)
{
    vdx_error err = {{0}};
    vdx_model_identity m = {.dims = dims};
    snprintf(m.name, sizeof m.name, "bench/random");
    snprintf(m.config_hash, sizeof m.config_hash, "bench%d", dims);
    vdx_store_options o = {.data_dir = dir, .collection = "bench", .url = url, .create = 1,
                           .model = &m};
    vdx_store *s = vdx_store_open(&o, &err);
    if (!s) {
        fprintf(stderr, "%s: %s\n", label, err.message);
        return -1;
    }
    const int batch = 1000;
    static const char *const names[] = {"group"};
    vdx_item *items = calloc((size_t)batch, sizeof *items);
    const char **values = calloc((size_t)batch, sizeof *values);
    static const char *const groups[] = {"a", "b", "c", "d"};
    double t0 = vdx_now();
    for (int start = 0; start < n; start += batch) {
        int count = n - start < batch ? n - start : batch;
        for (int i = 0; i < count; i++) {
            values[i] = groups[(start + i) % 4];
            items[i] = (vdx_item){.id = ids[start + i], .url = "https://example.org/p",
                                  .width = 640, .height = 480, .meta_names = names,
                                  .meta_values = &values[i], .n_meta = 1,
                                  .vector = vectors + (size_t)(start + i) * dims};
        }
        if (vdx_store_append(s, items, (size_t)count, &err) != 0) {
            fprintf(stderr, "%s: %s\n", label, err.message);
            vdx_store_close(s);
            free(items);
            free(values);
            return -1;
        }
        if ((start + count) % 5000 == 0 || start + count == n) {
            double t = vdx_now() - t0;
            fprintf(stderr, "  %s: %d/%d rows, %.0f rows/s, ETA %.0f s\n", label, start + count,
                    n, (start + count) / t, (n - start - count) / ((start + count) / t));
        }
    }
    out->insert_s = vdx_now() - t0;
    free(items);
    free(values);

    const char *excl[1000];
    for (int i = 0; i < 1000; i++)
        excl[i] = ids[(i * 7) % n];
    const int queries = 9;
    for (int kind = 0; kind < 3; kind++) {
        double ms[16];
        for (int q = 0; q < queries; q++) {
            float *query = malloc((size_t)dims * sizeof *query);
            for (int d = 0; d < dims; d++)
                query[d] = vectors[(size_t)((q * 997) % n) * dims + d] + (float)(uniform() * 0.1);
            vdx_search_request req = {.query = query, .k = 9,
                                      .exclude_ids = kind == 1 ? excl : NULL,
                                      .n_exclude = kind == 1 ? 1000 : 0,
                                      .where = kind == 2 ? "\"group\" = 'b'" : NULL};
            vdx_hits h = {0};
            double t = vdx_now();
            int rc = vdx_store_search(s, &req, &h, &err);
            ms[q] = (vdx_now() - t) * 1000;
            free(query);
            if (rc != 0 || h.n != 9) {
                fprintf(stderr, "%s: search: %s (%d hits)\n", label, rc ? err.message : "", h.n);
                vdx_hits_free(&h);
                vdx_store_close(s);
                return -1;
            }
            vdx_hits_free(&h);
        }
        qsort(ms, queries, sizeof ms[0], cmp_double);
        out->search_ms[kind] = ms[queries / 2];
    }
    cJSON *info = NULL;
    if (vdx_store_info(s, &info, &err) == 0) {
        const char *dialect = cJSON_GetStringValue(cJSON_GetObjectItem(info, "dialect"));
        snprintf(out->label, sizeof out->label, "%s%s%s", label, dialect ? "/" : "",
                 dialect ? dialect : "");
    }
    cJSON_Delete(info);
    vdx_store_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s STORE_URL [N [DIMS]]\n", argv[0]);
        return 2;
    }
    const char *url = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 25000, dims = argc > 3 ? atoi(argv[3]) : 512;
    if (n < 1000 || dims < 2) {
        fprintf(stderr, "N must be at least 1000 and DIMS at least 2\n");
        return 2;
    }
    float *vectors = malloc((size_t)n * dims * sizeof *vectors);
    char(*ids)[24] = malloc((size_t)n * sizeof *ids);
    float *centres = malloc((size_t)100 * dims * sizeof *centres);
    if (!vectors || !ids || !centres)
        return 1;
    for (int i = 0; i < 100 * dims; i++)
        centres[i] = (float)(uniform() * 2 - 1);
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "p%07d", i);
        for (int d = 0; d < dims; d++)
            vectors[(size_t)i * dims + d] =
                centres[(size_t)(i % 100) * dims + d] + (float)(uniform() - 0.5);
        normalise(vectors + (size_t)i * dims, dims);
    }
    char dir[] = "/tmp/vdx-bench-ch-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char emb_dir[64], ch_dir[64];
    snprintf(emb_dir, sizeof emb_dir, "%s/embedded", dir);
    snprintf(ch_dir, sizeof ch_dir, "%s/clickhouse", dir);
    result emb = {0}, ch = {0};
    int rc = run("embedded", "", emb_dir, n, dims, vectors, ids, &emb) != 0 ||
             run("clickhouse", url, ch_dir, n, dims, vectors, ids, &ch) != 0;
    if (rc == 0) {
        double mb = (double)n * dims * 4 / 1e6;
        printf("store backends: %d x %d float32 vectors (%.1f MB), batches of 1000, k = 9, "
               "median of 9 queries\n",
               n, dims, mb);
        printf("%-20s %14s %8s %10s %18s %11s\n", "backend", "insert rows/s", "MB/s",
               "search ms", "+1000 excluded ms", "+filter ms");
        const result *r[2] = {&emb, &ch};
        for (int i = 0; i < 2; i++)
            printf("%-20s %14.0f %8.1f %10.2f %18.2f %11.2f\n", r[i]->label, n / r[i]->insert_s,
                   mb / r[i]->insert_s, r[i]->search_ms[0], r[i]->search_ms[1],
                   r[i]->search_ms[2]);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    free(vectors);
    free(ids);
    free(centres);
    return rc;
}
