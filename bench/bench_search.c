/* Exact search speed of the embedded store, against the memory-bandwidth floor.
 *
 * For each collection size (default 25,000 and 1,000,000 random unit 512-d vectors) and
 * vector type (f32, f16) it fills a collection through vdx_store_append (reporting the
 * append rate), then times k=9 searches excluding 100 ids with 1 and 2 threads: median
 * ms per query, GB/s of vectors scanned, and the ratio to the floor set by the memory
 * bus (10 GB/s from one core, 15 GB/s from two on the reference machine; override with
 * --floor1/--floor2). It also times a plain read of the same bytes (no arithmetic) with
 * the same threads: what this machine's bus gives right now.
 *
 *   bench_search [--rows 25000,1000000] [--types f32,f16] [--queries 15] [--dir DIR]
 *                [--floor1 10] [--floor2 15] */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>

#include "vdx/store.h"
#include "bench.h"

#define DIMS 512
#define K 9
#define N_EXCLUDE 100

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* A random unit vector: uniform components, normalised (cheap; the scan does not care
 * about the distribution, only the bytes). */
static void random_unit(uint64_t *s, float *v)
{
    double norm = 0;
    for (int d = 0; d < DIMS; d++) {
        v[d] = (float)((double)(rng_next(s) >> 40) / 8388608.0 - 1.0);
        norm += (double)v[d] * v[d];
    }
    for (int d = 0; d < DIMS; d++)
        v[d] = (float)(v[d] / sqrt(norm));
}

/* ---- a plain read of the vector file: the bus speed right now ---- */

typedef struct read_job {
    const uint8_t *data;
    size_t size;
    float sink;
} read_job;

__attribute__((target("avx2"))) static void *read_range(void *arg)
{
    read_job *job = arg;
    __m256 acc = _mm256_setzero_ps();
    for (size_t i = 0; i + 32 <= job->size; i += 32)
        acc = _mm256_or_ps(acc, _mm256_loadu_ps((const float *)(job->data + i)));
    float out[8];
    _mm256_storeu_ps(out, acc);
    job->sink = out[0];
    return NULL;
}

static double read_seconds(const uint8_t *data, size_t size, int threads)
{
    read_job jobs[2];
    pthread_t tid;
    size_t half = size / (size_t)threads / 64 * 64;
    double t0 = vdx_now();
    jobs[0] = (read_job){data, threads == 2 ? half : size, 0};
    if (threads == 2) {
        jobs[1] = (read_job){data + half, size - half, 0};
        pthread_create(&tid, NULL, read_range, &jobs[1]);
    }
    read_range(&jobs[0]);
    if (threads == 2)
        pthread_join(tid, NULL);
    return vdx_now() - t0;
}

/* ---- filling a collection ---- */

static vdx_store *fill(const char *dir, const char *name, long rows, vdx_vector_type type,
                       double *append_rate)
{
    vdx_model_identity model;
    memset(&model, 0, sizeof model);
    snprintf(model.name, sizeof model.name, "bench-512");
    memset(model.config_hash, 'b', 64);
    model.dims = DIMS;
    vdx_store_options o = {.data_dir = dir, .collection = name, .url = "", .create = 1,
                           .model = &model, .vector_type = type};
    vdx_error err = {{0}};
    vdx_store *s = vdx_store_open(&o, &err);
    if (!s) {
        fprintf(stderr, "bench_search: %s\n", err.message);
        return NULL;
    }
    const long batch = 10000;
    float *vectors = malloc((size_t)batch * DIMS * sizeof(float));
    vdx_item *items = calloc((size_t)batch, sizeof *items);
    char (*ids)[16] = malloc((size_t)batch * sizeof *ids);
    uint64_t seed = 0x5eed ^ (uint64_t)rows;
    int tty = isatty(STDERR_FILENO);
    double t0 = vdx_now(), last_report = t0;
    for (long start = 0; start < rows; start += batch) {
        long n = rows - start < batch ? rows - start : batch;
        for (long j = 0; j < n; j++) {
            random_unit(&seed, vectors + j * DIMS);
            snprintf(ids[j], sizeof ids[j], "v%08ld", start + j);
            items[j] = (vdx_item){.id = ids[j], .url = ids[j], .vector = vectors + j * DIMS};
        }
        double a0 = vdx_now();
        if (vdx_store_append(s, items, (size_t)n, &err) != 0) {
            fprintf(stderr, "bench_search: %s\n", err.message);
            vdx_store_close(s);
            s = NULL;
            break;
        }
        *append_rate += vdx_now() - a0; /* seconds inside append, summed */
        double now = vdx_now();
        if (now - last_report > (tty ? 0.5 : 10) || start + n == rows) {
            double rate = (double)(start + n) / (now - t0);
            fprintf(stderr, "%s  filling %s: %ld/%ld rows, %.0f rows/s, ETA %.0f s%s",
                    tty ? "\r" : "", name, start + n, rows, rate,
                    (double)(rows - start - n) / rate, tty ? "   " : "\n");
            last_report = now;
        }
    }
    if (tty)
        fprintf(stderr, "\n");
    *append_rate = (double)rows / *append_rate;
    free(vectors);
    free(items);
    free(ids);
    return s;
}

static void parse_list(const char *arg, long *out, int *n)
{
    *n = 0;
    for (const char *p = arg; *p && *n < 8;) {
        out[(*n)++] = strtol(p, (char **)&p, 10);
        if (*p == ',')
            p++;
        else
            break;
    }
}

int main(int argc, char **argv)
{
    long rows[8] = {25000, 1000000};
    int n_rows = 2, queries = 15, types = 3; /* bit 0: f32, bit 1: f16 */
    double floor_gbs[3] = {0, 10, 15};
    char dir_template[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir_template, sizeof dir_template, "%s/vdx-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    const char *dir_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--rows") == 0 && next) {
            parse_list(next, rows, &n_rows);
            i++;
        } else if (strcmp(argv[i], "--types") == 0 && next) {
            types = (strstr(next, "f32") ? 1 : 0) | (strstr(next, "f16") ? 2 : 0);
            i++;
        } else if (strcmp(argv[i], "--queries") == 0 && next) {
            queries = atoi(next);
            i++;
        } else if (strcmp(argv[i], "--dir") == 0 && next) {
            dir_arg = next;
            i++;
        } else if (strcmp(argv[i], "--floor1") == 0 && next) {
            floor_gbs[1] = atof(next);
            i++;
        } else if (strcmp(argv[i], "--floor2") == 0 && next) {
            floor_gbs[2] = atof(next);
            i++;
        } else {
            fprintf(stderr, "usage: bench_search [--rows N,...] [--types f32,f16] "
                            "[--queries N] [--dir DIR] [--floor1 GB/s] [--floor2 GB/s]\n");
            return 2;
        }
    }
    if (queries < 1 || !types || n_rows == 0) {
        fprintf(stderr, "bench_search: nothing to do\n");
        return 2;
    }
    char dir[4096];
    if (dir_arg) {
        snprintf(dir, sizeof dir, "%s", dir_arg);
    } else {
        if (!mkdtemp(dir_template)) {
            perror("bench_search: mkdtemp");
            return 1;
        }
        snprintf(dir, sizeof dir, "%s", dir_template);
    }
    printf("# exact search, k=%d, %d excluded ids, %d-d random unit vectors, median of %d "
           "queries\n",
           K, N_EXCLUDE, DIMS, queries);
    printf("# floor = vector bytes / (%.0f GB/s on 1 thread, %.0f GB/s on 2); 'read' = a plain "
           "read of the same bytes here, now\n",
           floor_gbs[1], floor_gbs[2]);
    printf("%-9s %-4s %-12s %7s %9s %7s %9s %8s %9s %8s\n", "rows", "type", "append/s",
           "threads", "ms/query", "GB/s", "floor ms", "x floor", "read ms", "x read");
    int status = 0;
    for (int r = 0; r < n_rows && status == 0; r++) {
        for (int t = 0; t < 2 && status == 0; t++) {
            if (!(types & (1 << t)))
                continue;
            vdx_vector_type type = t ? VDX_VECTOR_F16 : VDX_VECTOR_F32;
            char name[64];
            snprintf(name, sizeof name, "bench-%ld-%s", rows[r], t ? "f16" : "f32");
            double append_rate = 0;
            vdx_error err = {{0}};
            vdx_store *s = fill(dir, name, rows[r], type, &append_rate);
            if (!s) {
                status = 1;
                break;
            }
            /* Reopen read-only, as a server would: loads every id into the index. */
            vdx_model_identity model = *vdx_store_model(s);
            vdx_store_close(s);
            vdx_store_options ro = {.data_dir = dir, .collection = name, .url = "",
                                    .model = &model, .read_only = 1};
            double open_t0 = vdx_now();
            s = vdx_store_open(&ro, &err);
            double open_ms = (vdx_now() - open_t0) * 1e3;
            if (!s) {
                fprintf(stderr, "bench_search: reopen: %s\n", err.message);
                status = 1;
                break;
            }
            fprintf(stderr, "  %s: reopened read-only (%ld ids loaded) in %.0f ms\n", name,
                    rows[r], open_ms);
            double bytes = (double)rows[r] * DIMS * (t ? 2 : 4);
            char path[4300];
            snprintf(path, sizeof path, "%s/vectors.%s", vdx_store_dir(s), t ? "f16" : "f32");
            uint8_t *file = NULL;
            size_t file_size = 0;
            FILE *f = fopen(path, "rb"); /* read into memory once for the read baseline */
            if (f) {
                fseek(f, 0, SEEK_END);
                file_size = (size_t)ftell(f);
                fseek(f, 0, SEEK_SET);
                file = malloc(file_size);
                if (!file || fread(file, 1, file_size, f) != file_size)
                    file_size = 0;
                fclose(f);
            }
            uint64_t seed = 42;
            const char *exclude[N_EXCLUDE];
            char exclude_ids[N_EXCLUDE][16];
            for (int i = 0; i < N_EXCLUDE; i++) {
                snprintf(exclude_ids[i], sizeof exclude_ids[i], "v%08ld",
                         (long)(rng_next(&seed) % (uint64_t)rows[r]));
                exclude[i] = exclude_ids[i];
            }
            float q[DIMS];
            double *ms = malloc((size_t)queries * sizeof *ms);
            for (int threads = 1; threads <= 2; threads++) {
                char env[8];
                snprintf(env, sizeof env, "%d", threads);
                setenv("VDX_SEARCH_THREADS", env, 1);
                for (int i = -1; i < queries; i++) { /* i = -1 warms the page cache */
                    random_unit(&seed, q);
                    vdx_search_request req = {.query = q, .k = K, .exclude_ids = exclude,
                                              .n_exclude = N_EXCLUDE};
                    vdx_hits hits = {0};
                    double t0 = vdx_now();
                    if (vdx_store_search(s, &req, &hits, &err) != 0 || hits.n != K) {
                        fprintf(stderr, "bench_search: search: %s (%d hits)\n", err.message,
                                hits.n);
                        status = 1;
                    }
                    if (i >= 0)
                        ms[i] = (vdx_now() - t0) * 1e3;
                    vdx_hits_free(&hits);
                }
                double read_ms[15];
                int n_read = 0;
                for (int i = 0; i < 15 && file_size; i++)
                    read_ms[n_read++] = read_seconds(file, file_size, threads) * 1e3;
                double m = bench_median(ms, queries);
                double floor_ms = bytes / (floor_gbs[threads] * 1e9) * 1e3;
                double rm = n_read ? bench_median(read_ms, n_read) : NAN;
                printf("%-9ld %-4s %-12.0f %7d %9.2f %7.2f %9.2f %8.2f %9.2f %8.2f\n", rows[r],
                       t ? "f16" : "f32", append_rate, threads, m, bytes / (m * 1e-3) / 1e9,
                       floor_ms, m / floor_ms, rm, m / rm);
                fflush(stdout);
            }
            unsetenv("VDX_SEARCH_THREADS");
            free(ms);
            free(file);
            char coll[4300];
            snprintf(coll, sizeof coll, "%s", vdx_store_dir(s));
            vdx_store_close(s);
            bench_remove_tree(coll);
        }
    }
    if (!dir_arg)
        bench_remove_tree(dir);
    return status;
}
