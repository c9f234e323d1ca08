/* bench_index: the approximate index of the embedded store (IVF + int8 codes + exact
 * rerank) against the exact scan and against hnswlib (bench/hnsw_shim.cpp), on the same
 * vectors in the same run. Prints, never passes or fails:
 *   - ingest and index build time, bytes per item on disk and resident (codes + lists);
 *   - per query kind (image→image, text→image, concept weight after 1 and 3 rounds),
 *     with 0 and 1,000 excluded ids: recall@9 and @100 against the exact scan and ms per
 *     query, for several nprobe values (each timed run after an untimed one);
 *   - text→image under filters keeping 100%, 10%, 1% and a single item;
 *   - queries/s with 1 and 2 threads;
 *   - every row estimated from its code, with each kernel of the codes (ms);
 *   - hnswlib (M=16, efConstruction=100): build time, bytes, recall and q/s per ef.
 * Data: synthetic vectors with CLIP's geometry (tests/support/synth.h, --synth-* flags),
 * or uniform random unit vectors (--synth-uniform=1). */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "../tests/support/synth.h"
#include "vdx/store.h"

typedef struct hnsw_shim hnsw_shim;
hnsw_shim *hnsw_shim_new(int dim, size_t max_elements, int m, int ef_construction);
void hnsw_shim_free(hnsw_shim *h);
int hnsw_shim_add(hnsw_shim *h, const float *v, size_t label);
void hnsw_shim_set_ef(hnsw_shim *h, size_t ef);
size_t hnsw_shim_bytes(const hnsw_shim *h);
int hnsw_shim_search(hnsw_shim *h, const float *q, int k, const size_t *exclude,
                     size_t n_exclude, size_t *labels, float *dists);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long long items = 1000000;
static int queries = 100, use_hnsw = 1, f16 = 0;
static const char *nprobes_arg = "8,16,32,64";
static const char *efs_arg = "32,64,128,256";
static const char *kinds_arg = "image,text,concept1,concept3,filters,threads,kernels";
static int lists_arg = 0;
static synth *gen;
static int dims;

static void id_of(int64_t i, char *out) { snprintf(out, 24, "i%lld", (long long)i); }

typedef struct qset {
    const char *name;
    float *q; /* queries × dims */
} qset;

/* Concept weights after `rounds` rounds of labelling, simulated: the cluster prompt plus
 * the mean of the positives found (images of the cluster) minus the mean of the negatives
 * (images of other clusters), 5 positives and 4 negatives more each round. Not unit. */
static void concept_weight(int cluster, int rounds, uint64_t salt, float *w)
{
    float *t = malloc(sizeof(float) * dims), *v = malloc(sizeof(float) * dims);
    synth_text_for_cluster(gen, cluster, salt, w);
    int pos = 0, neg = 0;
    for (int64_t i = (int64_t)(salt * 7919 % (uint64_t)items); pos < 5 * rounds || neg < 4 * rounds;
         i = (i + 1) % items) {
        int c = synth_cluster_of(gen, (uint64_t)i);
        if ((c == cluster && pos < 5 * rounds) || (c != cluster && neg < 4 * rounds)) {
            synth_image(gen, (uint64_t)i, v);
            float sgn = c == cluster ? 0.6f / (5 * rounds) : -0.4f / (4 * rounds);
            for (int d = 0; d < dims; d++)
                w[d] += sgn * v[d];
            if (c == cluster)
                pos++;
            else
                neg++;
        }
    }
    for (int d = 0; d < dims; d++)
        w[d] *= 3.0f; /* logits of a trained classifier are larger than cosines */
    free(t);
    free(v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static double recall(const vdx_hits *got, const vdx_hits *want, int k)
{
    int n = want->n < k ? want->n : k, found = 0;
    if (n == 0)
        return 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < got->n && j < k; j++)
            if (!strcmp(want->hits[i].id, got->hits[j].id)) {
                found++;
                break;
            }
    return (double)found / n;
}

typedef struct run_args {
    vdx_store *store;
    const qset *qs;
    int k, first, count;
    const char *const *exclude;
    size_t n_exclude;
    const char *where;
    int exact;
    vdx_hits *out; /* count results, or NULL */
    double seconds;
} run_args;

static void *run_queries(void *arg)
{
    run_args *a = arg;
    vdx_error err = {{0}};
    double t0 = now_s();
    for (int i = 0; i < a->count; i++) {
        vdx_search_request req = {.query = a->qs->q + (size_t)(a->first + i) * dims, .k = a->k,
                                  .exclude_ids = a->exclude, .n_exclude = a->n_exclude,
                                  .where = a->where, .exact = a->exact};
        vdx_hits h = {0};
        if (vdx_store_search(a->store, &req, &h, &err) != 0) {
            fprintf(stderr, "search: %s\n", err.message);
            exit(1);
        }
        if (a->out)
            a->out[i] = h;
        else
            vdx_hits_free(&h);
    }
    a->seconds = now_s() - t0;
    return NULL;
}

static void free_results(vdx_hits *h, int n)
{
    for (int i = 0; i < n; i++)
        vdx_hits_free(&h[i]);
}

/* two threads add points to hnswlib, as its own builders do */
typedef struct add_args {
    hnsw_shim *h;
    long long from, to;
} add_args;

static void *hnsw_add_range(void *arg)
{
    add_args *aa = arg;
    float *vv = malloc(sizeof(float) * dims);
    for (long long i = aa->from; i < aa->to; i++) {
        synth_image(gen, (uint64_t)i, vv);
        hnsw_shim_add(aa->h, vv, (size_t)i);
    }
    free(vv);
    return NULL;
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    for (const char *p = s; *p && n < max;) {
        out[n++] = atoi(p);
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Whether `name` is one of the comma-separated kinds of --kinds. */
static int kind_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (!strncmp(p, name, n) && (p[n] == ',' || !p[n]))
            return 1;
    return 0;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    synth_params sp;
    synth_defaults(&sp);
    const char *dir_arg = NULL;
    char err_text[256];
    for (int i = 1; i < argc; i++) {
        int r = synth_parse_flag(&sp, argv[i], err_text, sizeof err_text);
        if (r < 0) {
            fprintf(stderr, "bench_index: %s\n", err_text);
            return 2;
        }
        if (r)
            continue;
        if (!strcmp(argv[i], "--items") && i + 1 < argc)
            items = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc)
            queries = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--nprobe") && i + 1 < argc)
            nprobes_arg = argv[++i];
        else if (!strcmp(argv[i], "--ef") && i + 1 < argc)
            efs_arg = argv[++i];
        else if (!strcmp(argv[i], "--no-hnsw"))
            use_hnsw = 0;
        else if (!strcmp(argv[i], "--f16"))
            f16 = 1;
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir_arg = argv[++i];
        else if (!strcmp(argv[i], "--kinds") && i + 1 < argc)
            kinds_arg = argv[++i];
        else if (!strcmp(argv[i], "--lists") && i + 1 < argc)
            lists_arg = atoi(argv[++i]);
        else {
            char help[2048];
            synth_flags_help(&sp, help, sizeof help);
            printf("usage: bench_index [--items N] [--queries N] [--nprobe 8,16,...] "
                   "[--ef 32,64,...] [--no-hnsw] [--f16] [--dir DIR] [--lists N]\n"
                   "       [--kinds image,text,concept1,concept3,filters,threads,kernels]\n"
                   "       [synthetic-data flags]\n%s",
                   help);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    gen = synth_new(&sp, err_text, sizeof err_text);
    if (!gen) {
        fprintf(stderr, "bench_index: %s\n", err_text);
        return 2;
    }
    dims = sp.dim;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/vdx-bench-index-XXXXXX", dir_arg ? dir_arg : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    printf("bench_index: %lld items, %d-d %s, %s data (clusters %d, seed %llu), %d queries per set\n",
           items, dims, f16 ? "f16" : "f32", sp.uniform ? "uniform random" : "CLIP-like synthetic",
           sp.clusters, (unsigned long long)sp.seed, queries);

    /* ---- ingest ---- */
    vdx_model_identity m = {0};
    snprintf(m.name, sizeof m.name, "synthetic");
    memset(m.config_hash, 's', 64);
    m.dims = dims;
    vdx_store_options o = {.data_dir = dir, .collection = "bench", .create = 1, .model = &m,
                           .vector_type = f16 ? VDX_VECTOR_F16 : VDX_VECTOR_F32};
    vdx_error err = {{0}};
    vdx_store *store = vdx_store_open(&o, &err);
    if (!store) {
        fprintf(stderr, "bench_index: %s\n", err.message);
        return 1;
    }
    double t0 = now_s();
    if (synth_fill_store(gen, store, items, "bucket", &err) != 0) {
        fprintf(stderr, "bench_index: append: %s\n", err.message);
        return 1;
    }
    double t_ingest = now_s() - t0;
    printf("ingest (generate + append): %.1f s, %.0f items/s\n", t_ingest, items / t_ingest);
    long rss0 = rss_kb();
    t0 = now_s();
    vdx_index_options io = {.lists = lists_arg};
    if (vdx_store_index_build(store, &io, &err) != 0) {
        fprintf(stderr, "bench_index: index build: %s\n", err.message);
        return 1;
    }
    double t_build = now_s() - t0;
    cJSON *info;
    vdx_store_info(store, &info, &err);
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(info, "index");
    double ix_bytes = cJSON_GetObjectItemCaseSensitive(ix, "bytes_on_disk")->valuedouble;
    double vec_bytes = cJSON_GetObjectItemCaseSensitive(info, "vector_bytes")->valuedouble;
    int lists = (int)cJSON_GetObjectItemCaseSensitive(ix, "lists")->valuedouble;
    int nprobe_default = (int)cJSON_GetObjectItemCaseSensitive(ix, "nprobe")->valuedouble;
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ix, "kind"));
    printf("index build: %.1f s; %s, %d lists, default nprobe %d; index %.1f bytes/item on disk "
           "(codes + row numbers; all of it resident once touched), vectors %.0f bytes/item "
           "(mapped, read only by the rerank)\n",
           t_build, kind ? kind : "?", lists, nprobe_default, ix_bytes / items,
           vec_bytes / items);
    cJSON_Delete(info);
    (void)rss0;

    /* ---- queries ---- */
    qset sets[4] = {{"image->image", NULL}, {"text->image", NULL}, {"concept 1 round", NULL},
                    {"concept 3 rounds", NULL}};
    for (int s = 0; s < 4; s++)
        sets[s].q = malloc(sizeof(float) * (size_t)queries * dims);
    for (int i = 0; i < queries; i++) {
        uint64_t item = (uint64_t)(((uint64_t)i * 2654435761u) % (uint64_t)items);
        synth_image(gen, (uint64_t)items + (uint64_t)i, sets[0].q + (size_t)i * dims); /* new image */
        synth_text_for_item(gen, item, 0, sets[1].q + (size_t)i * dims);
        int cluster = synth_cluster_of(gen, item);
        concept_weight(cluster, 1, (uint64_t)i, sets[2].q + (size_t)i * dims);
        concept_weight(cluster, 3, (uint64_t)i, sets[3].q + (size_t)i * dims);
    }
    /* 1,000 excluded ids: the "labelled" items, taken near the text queries' answers so
     * that they matter (they are what a concept's rounds have shown) */
    size_t n_excl = items > 20000 ? 1000 : (size_t)items / 20;
    char **excl = malloc(sizeof(char *) * n_excl);
    size_t *excl_rows = malloc(sizeof(size_t) * n_excl);
    {
        vdx_hits h = {0};
        size_t got = 0;
        for (int i = 0; i < queries && got < n_excl; i++) {
            vdx_search_request req = {.query = sets[1].q + (size_t)i * dims, .k = 20, .exact = 1};
            vdx_store_search(store, &req, &h, &err);
            for (int j = 0; j < h.n && got < n_excl; j++) {
                int dup = 0;
                for (size_t x = 0; x < got && !dup; x++)
                    dup = !strcmp(excl[x], h.hits[j].id);
                if (!dup)
                    excl[got++] = strdup(h.hits[j].id);
            }
            vdx_hits_free(&h);
        }
        for (size_t x = got; x < n_excl; x++) {
            char id[24];
            id_of((int64_t)((x * 104729) % (size_t)items), id);
            excl[x] = strdup(id);
        }
        qsort(excl, n_excl, sizeof *excl, cmp_str);
        size_t u = 0;
        for (size_t x = 0; x < n_excl; x++)
            if (!u || strcmp(excl[u - 1], excl[x]))
                excl[u++] = excl[x];
            else
                free(excl[x]);
        n_excl = u;
        for (size_t x = 0; x < n_excl; x++)
            excl_rows[x] = (size_t)atoll(excl[x] + 1);
    }
    int nprobes[16], n_np = parse_list(nprobes_arg, nprobes, 16);
    vdx_hits *truth9 = calloc((size_t)queries, sizeof *truth9),
             *truth100 = calloc((size_t)queries, sizeof *truth100),
             *got = calloc((size_t)queries, sizeof *got);
    printf("\n%-17s %5s %7s | %-28s | %s\n", "query kind", "excl", "exact", "", "index: nprobe  recall@9  recall@100  ms/query (k=9)");
    double exact_ms_text_excl = 0;
    static const char *const kind_names[4] = {"image", "text", "concept1", "concept3"};
    for (int s = 0; s < 4; s++)
        for (int e = 0; e < 2 && kind_listed(kinds_arg, kind_names[s]); e++) {
            size_t ne = e ? n_excl : 0;
            run_args a = {store, &sets[s], 9, 0, queries, (const char *const *)excl, ne, NULL, 1,
                          truth9, 0};
            run_queries(&a);
            double exact_ms = a.seconds * 1000 / queries;
            if (s == 1 && e)
                exact_ms_text_excl = exact_ms;
            a.k = 100;
            a.out = truth100;
            run_queries(&a);
            for (int p = 0; p < n_np; p++) {
                char v[16];
                snprintf(v, sizeof v, "%d", nprobes[p]);
                setenv("VDX_INDEX_NPROBE", v, 1);
                run_args b = {store, &sets[s], 9, 0, queries, (const char *const *)excl, ne,
                              NULL, 0, NULL, 0};
                run_queries(&b); /* warm-up, untimed: the exact scans before it evicted the
                                  * index's pages from the caches and the TLB */
                b.out = got;
                run_queries(&b);
                double r9 = 0, r100 = 0;
                for (int i = 0; i < queries; i++)
                    r9 += recall(&got[i], &truth9[i], 9);
                free_results(got, queries);
                double ms = b.seconds * 1000 / queries;
                b.k = 100;
                run_queries(&b);
                for (int i = 0; i < queries; i++)
                    r100 += recall(&got[i], &truth100[i], 100);
                free_results(got, queries);
                printf("%-17s %5zu %6.2fms | %-28s | %5d  %8.4f  %10.4f  %8.3f  (%.0fx exact)\n",
                       p ? "" : sets[s].name, ne, exact_ms, "", nprobes[p], r9 / queries,
                       r100 / queries, ms, exact_ms / ms);
            }
            free_results(truth9, queries);
            free_results(truth100, queries);
        }
    unsetenv("VDX_INDEX_NPROBE");

    /* ---- filters, text->image with the exclusions ---- */
    static const struct {
        const char *name, *where;
    } filters[] = {{"100%", "bucket >= 0"}, {"10%", "bucket < 10"}, {"1%", "bucket = 7"},
                   {"one item", "id = 'i12345'"}};
    if (kind_listed(kinds_arg, "filters"))
        printf("\nfilters (text->image, %zu excluded, default nprobe %d):\n", n_excl, nprobe_default);
    for (size_t f = 0; f < sizeof filters / sizeof filters[0] && kind_listed(kinds_arg, "filters");
         f++) {
        run_args a = {store, &sets[1], 9, 0, queries, (const char *const *)excl, n_excl,
                      filters[f].where, 1, truth9, 0};
        run_queries(&a);
        run_args b = a;
        b.exact = 0;
        b.out = got;
        run_queries(&b);
        double r9 = 0;
        int short_results = 0;
        for (int i = 0; i < queries; i++) {
            r9 += recall(&got[i], &truth9[i], 9);
            short_results += got[i].n < truth9[i].n;
        }
        printf("  %-9s (%-14s) exact %8.2f ms  index %8.2f ms  recall@9 %.4f  queries with "
               "fewer than k results: %d\n",
               filters[f].name, filters[f].where, a.seconds * 1000 / queries,
               b.seconds * 1000 / queries, r9 / queries, short_results);
        free_results(truth9, queries);
        free_results(got, queries);
    }

    /* ---- threads ---- */
    if (kind_listed(kinds_arg, "threads"))
        printf("\nqueries/s, text->image, %zu excluded, k=9, default nprobe:\n", n_excl);
    for (int threads = 1; threads <= 2 && kind_listed(kinds_arg, "threads"); threads++) {
        vdx_store *handles[2] = {store, NULL};
        if (threads == 2) {
            vdx_store_options ro = o;
            ro.create = 0;
            ro.read_only = 1;
            handles[1] = vdx_store_open(&ro, &err);
        }
        for (int exact = 1; exact >= 0; exact--) {
            pthread_t th[2];
            run_args a[2];
            double t = now_s();
            for (int k = 0; k < threads; k++) {
                a[k] = (run_args){handles[k], &sets[1], 9, 0, queries, (const char *const *)excl,
                                  n_excl, NULL, exact, NULL, 0};
                pthread_create(&th[k], NULL, run_queries, &a[k]);
            }
            for (int k = 0; k < threads; k++)
                pthread_join(th[k], NULL);
            t = now_s() - t;
            printf("  %d thread%s %-6s %8.1f q/s\n", threads, threads > 1 ? "s" : " ",
                   exact ? "exact" : "index", threads * queries / t);
        }
        if (handles[1])
            vdx_store_close(handles[1]);
    }
    (void)exact_ms_text_excl;

    /* ---- the codes' kernels: every row estimated from its code (what the explore page's
     * counts and histogram use), each kernel in turn, five times, medians ---- */
    if (kind_listed(kinds_arg, "kernels")) {
        static const char *const kernels[3] = {NULL, "avx512", "avx2"};
        double ms[3][5];
        for (int rep = 0; rep < 5; rep++)
            for (int k = 0; k < 3; k++) {
                if (kernels[k])
                    setenv("VDX_SCAN_KERNEL", kernels[k], 1);
                else
                    unsetenv("VDX_SCAN_KERNEL");
                vdx_search_request req = {.query = sets[1].q + (size_t)rep * dims};
                float *values = NULL;
                size_t n_values = 0;
                double bound = 0, t = now_s();
                if (vdx_store_score_values(store, &req, &values, &n_values, &bound, &err) != 0) {
                    fprintf(stderr, "bench_index: score_values: %s\n", err.message);
                    return 1;
                }
                ms[k][rep] = (now_s() - t) * 1000;
                free(values);
            }
        unsetenv("VDX_SCAN_KERNEL");
        printf("\nevery row estimated from its code (vdx_store_score_values), median of 5:\n");
        for (int k = 0; k < 3; k++) {
            qsort(ms[k], 5, sizeof ms[k][0], cmp_double);
            printf("  kernel %-8s %8.2f ms  (%.2fx the fastest's time)\n",
                   kernels[k] ? kernels[k] : "fastest", ms[k][2], ms[k][2] / ms[0][2]);
        }
    }

    /* ---- hnswlib on the same vectors ---- */
    if (use_hnsw) {
        long before = rss_kb();
        hnsw_shim *h = hnsw_shim_new(dims, (size_t)items, 16, 100);
        t0 = now_s();
        float *v = malloc(sizeof(float) * dims);
        /* the first point alone (hnswlib needs an entry point before parallel adds) */
        synth_image(gen, 0, v);
        hnsw_shim_add(h, v, 0);
        pthread_t th[2];
        add_args aa[2] = {{h, 1, 1 + (items - 1) / 2}, {h, 1 + (items - 1) / 2, items}};
        for (int k = 0; k < 2; k++)
            pthread_create(&th[k], NULL, hnsw_add_range, &aa[k]);
        for (int k = 0; k < 2; k++)
            pthread_join(th[k], NULL);
        double hb = now_s() - t0;
        printf("\nhnswlib 0.6.2 (M=16, efConstruction=100, 2 threads): build %.1f s (%.1fx the "
               "vdx index's), %.0f bytes/item resident (graph + its own f32 copy of the "
               "vectors; RSS grew %.0f MB)\n",
               hb, hb / t_build, (double)hnsw_shim_bytes(h) / items, (rss_kb() - before) / 1024.0);
        int efs[16], n_ef = parse_list(efs_arg, efs, 16);
        size_t labels[1200];
        float dists[1200];
        printf("%-17s %5s | ef  recall@9  ms/query (k=9)\n", "query kind", "excl");
        for (int s = 0; s < 4; s++)
            for (int e = 0; e < 2 && kind_listed(kinds_arg, kind_names[s]); e++) {
                size_t ne = e ? n_excl : 0;
                run_args a = {store, &sets[s], 9, 0, queries, (const char *const *)excl, ne, NULL,
                              1, truth9, 0};
                run_queries(&a);
                for (int p = 0; p < n_ef; p++) {
                    hnsw_shim_set_ef(h, (size_t)efs[p]);
                    double r9 = 0, t = now_s();
                    for (int i = 0; i < queries; i++) {
                        float *q = sets[s].q + (size_t)i * dims;
                        float qn[2048];
                        double nn = 0;
                        for (int d = 0; d < dims; d++)
                            nn += (double)q[d] * q[d];
                        for (int d = 0; d < dims; d++)
                            qn[d] = (float)(q[d] / sqrt(nn));
                        int n = hnsw_shim_search(h, qn, 9, excl_rows, ne, labels, dists);
                        int found = 0;
                        for (int j = 0; j < truth9[i].n; j++)
                            for (int x = 0; x < n; x++)
                                if ((size_t)atoll(truth9[i].hits[j].id + 1) == labels[x]) {
                                    found++;
                                    break;
                                }
                        r9 += truth9[i].n ? (double)found / truth9[i].n : 1;
                    }
                    t = now_s() - t;
                    printf("%-17s %5zu | %4d  %8.4f  %8.3f\n", p ? "" : sets[s].name, ne, efs[p],
                           r9 / queries, t * 1000 / queries);
                }
                free_results(truth9, queries);
            }
        free(v);
        hnsw_shim_free(h);
    }
    vdx_store_close(store);
    bench_remove_tree(dir);
    synth_free(gen);
    return 0;
}
