/* Benchmark of the explore loop on the embedded store: 25k random 512-d items, a concept
 * with 500 labels. Prints the server-side time of one full round (train over all labels
 * with the round's cross-validation + the next 9 nearest candidates excluding the 500
 * labelled ids, which makes the round's candidate list), of its parts, of a later page
 * of the round (cut from that list), of
 * scoring the whole collection and of an evaluation (5-fold CV + histogram). Medians of
 * several repetitions; numbers only, no pass/fail. From 200k items the approximate
 * index is built first, as an ingest would (docs/index.md).
 *   usage: bench_explore [items=25000] [labels=500] [reps=15] [f32|f16] [round]
 *   (f32|f16: how the store keeps the vectors: f16 halves the bytes a scan reads, as for
 *   10M items; round: only the round's steps and the store's search, without the
 *   whole-collection scores, whose JSON for 10M items would not fit in memory beside
 *   the store's 15 GB of codes and vectors, and whose scans of every vector would push
 *   the index out of the page cache between the rounds)
 *   $VDX_BENCH_TRAINER=anchored trains with the anchored trainer (default: the seed's).
 *   $VDX_BENCH_STORE=DIR keeps the store (and its index) in DIR and reuses it when it
 *   already holds the items: the vectors come from a seeded generator, so a later run
 *   sees the same collection without the fill and the index build (20 min at 10M). */
#include <cjson/cJSON.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdx/explore.h"

#define DIMS 512

static uint64_t rng = 12345;
static double uniform(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((rng >> 11) + 0.5) / 9007199254740992.0;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Wall clock and the CPU time of the process (all threads), in seconds. */
typedef struct clock_mark {
    double wall, cpu;
} clock_mark;

static clock_mark mark(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (clock_mark){vdx_now(), ts.tv_sec + ts.tv_nsec * 1e-9};
}

typedef struct timing {
    double *wall, *cpu; /* per repetition, ms */
} timing;

static void record(timing *t, int rep, clock_mark from, clock_mark to)
{
    t->wall[rep] = (to.wall - from.wall) * 1e3;
    t->cpu[rep] = (to.cpu - from.cpu) * 1e3;
}

static void die(const char *what, const vdx_error *err)
{
    fprintf(stderr, "bench_explore: %s: %s\n", what, err->message);
    exit(1);
}

int main(int argc, char **argv)
{
    mallopt(M_MXFAST, 0); /* as the vdx program does (src/cli/main.c) */
    int n_items = argc > 1 ? atoi(argv[1]) : 25000;
    int n_labels = argc > 2 ? atoi(argv[2]) : 500;
    int reps = argc > 3 ? atoi(argv[3]) : 15;
    const char *type = argc > 4 ? argv[4] : "f32";
    int round_only = argc > 5 && strcmp(argv[5], "round") == 0;
    if (n_items < 100 || n_labels < 2 || n_labels > n_items || reps < 1 ||
        (strcmp(type, "f32") != 0 && strcmp(type, "f16") != 0) || (argc > 5 && !round_only)) {
        fprintf(stderr, "usage: bench_explore [items>=100] [labels>=2] [reps>=1] [f32|f16] "
                        "[round]\n");
        return 2;
    }
    const char *kept = getenv("VDX_BENCH_STORE");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", kept && *kept ? kept : "/tmp/vdx-bench-explore-XXXXXX");
    if (kept && *kept ? mkdir(dir, 0755) != 0 && errno != EEXIST : !mkdtemp(dir)) {
        perror(dir);
        return 1;
    }
    vdx_error err = {{0}};
    vdx_model_identity model = {.name = "bench", .dims = DIMS};
    memset(model.config_hash, 'b', 64);
    vdx_store_options opts = {.data_dir = dir, .collection = "bench", .create = 1,
                              .model = &model,
                              .vector_type = strcmp(type, "f16") ? VDX_VECTOR_F32 : VDX_VECTOR_F16};
    unsetenv("VDX_STORE");
    vdx_store *store = vdx_store_open(&opts, &err);
    if (!store)
        die("store", &err);

    printf("bench_explore: %d items x %d dims (%s), %d labels, %d repetitions\n", n_items, DIMS,
           type, n_labels, reps);
    double t0 = vdx_now();
    const int batch = 1000;
    float *vectors = malloc((size_t)batch * DIMS * sizeof *vectors);
    vdx_item *items = calloc((size_t)batch, sizeof *items);
    char (*ids)[16] = malloc((size_t)n_items * sizeof *ids);
    cJSON *info = NULL;
    double held = vdx_store_info(store, &info, &err) == 0
                      ? cJSON_GetObjectItemCaseSensitive(info, "count")->valuedouble
                      : -1;
    cJSON_Delete(info);
    int reuse = kept && *kept && held == n_items;
    if (reuse) { /* the generator's draws of the fill, then the ids, as if filled */
        for (size_t i = 0; i < (size_t)n_items * DIMS; i++)
            uniform();
        for (int i = 0; i < n_items; i++)
            snprintf(ids[i], sizeof ids[0], "item%06d", i);
        char db[4200];
        snprintf(db, sizeof db, "%s/collections/bench/concepts.db", dir);
        unlink(db);
        printf("  reusing the store in %s\n", dir);
    } else if (held != 0) {
        fprintf(stderr, "bench_explore: %s holds another collection; empty it first\n", dir);
        return 1;
    }
    for (int start = 0; start < n_items && !reuse; start += batch) {
        int n = n_items - start < batch ? n_items - start : batch;
        for (int i = 0; i < n; i++) {
            float *v = vectors + (size_t)i * DIMS;
            double norm = 0;
            for (int j = 0; j < DIMS; j++) {
                v[j] = (float)(uniform() - 0.5);
                norm += (double)v[j] * v[j];
            }
            for (int j = 0; j < DIMS; j++)
                v[j] = (float)(v[j] / sqrt(norm));
            snprintf(ids[start + i], sizeof ids[0], "item%06d", start + i);
            items[i] = (vdx_item){.id = ids[start + i], .url = "https://example.org/x.jpg",
                                  .vector = v};
        }
        if (vdx_store_append(store, items, (size_t)n, &err) != 0)
            die("append", &err);
    }
    printf("  filled the store in %.1f s\n", vdx_now() - t0);
    /* what an ingest does past VDX_INDEX_AUTO_ROWS: build the approximate index, which
     * the candidates ("next 9") then go through; scoring stays exact */
    int built = 0;
    t0 = vdx_now();
    if (vdx_store_index_auto(store, NULL, &built, &err) != 0)
        die("index", &err);
    if (built)
        printf("  built the approximate index in %.1f s (searches below use it)\n",
               vdx_now() - t0);

    vdx_concepts *book = vdx_concepts_open(store, &err);
    if (!book)
        die("concepts", &err);
    float w[DIMS];
    for (int j = 0; j < DIMS; j++)
        w[j] = (float)(uniform() - 0.5);
    const char *trainer = getenv("VDX_BENCH_TRAINER");
    vdx_concept_spec spec = {.name = "bench", .prompt = "random", .text_vector = w,
                             .trainer = trainer && *trainer ? trainer : "seed"};
    printf("  trainer: %s\n", spec.trainer);
    if (vdx_concept_create(book, &spec, NULL, &err) != 0)
        die("create", &err);
    vdx_label_change *changes = calloc((size_t)n_labels, sizeof *changes);
    for (int i = 0; i < n_labels; i++)
        changes[i] = (vdx_label_change){ids[(size_t)i * (size_t)n_items / (size_t)n_labels],
                                        uniform() < 0.3};
    t0 = vdx_now();
    if (vdx_concept_label(book, "bench", changes, (size_t)n_labels, NULL, &err) != 0)
        die("label", &err);
    printf("  labelling %d items (one call): %.1f ms\n", n_labels, (vdx_now() - t0) * 1e3);

    enum { TRAIN, NEXT, ROUND, PAGE2, SCORE_TOP, SCORE_ALL, EVALUATE, EVALUATE_EXACT, STORE_SCORE,
           STORE_SCORE_BARE, STORE_VALUES, STORE_VALUES_EXACT, STORE_SEARCH, STORE_VECTORS, METRICS };
    static const char *const names[METRICS] = {
        "    train over the labels (its steps + the round's CV)",
        "    next 9 nearest (makes the round's list of 100)",
        "  one round (train + next 9)",
        "  page 2 of the round (cut from its list)",
        "  score the collection, top 100 as JSON",
        "  score the collection, every item as JSON",
        "  evaluate (5-fold CV + histogram)",
        "  evaluate --exact (every score from its vector)",
        "  store alone: score_all",
        "  store alone: score_all without urls",
        "  store alone: score_values (index codes if any)",
        "  store alone: score_values, exact",
        "  store alone: search k=9 excluding the labelled ids",
        "  store alone: get_vectors of the labelled ids",
    };
    timing *t = calloc(METRICS, sizeof *t);
    for (int m = 0; m < METRICS; m++) {
        t[m].wall = calloc((size_t)reps, sizeof(double));
        t[m].cpu = calloc((size_t)reps, sizeof(double));
    }
    const char **label_ids = malloc((size_t)n_labels * sizeof *label_ids);
    float *label_vectors = malloc((size_t)n_labels * DIMS * sizeof *label_vectors);
    for (int i = 0; i < n_labels; i++)
        label_ids[i] = changes[i].id;
    for (int r = 0; r < reps; r++) {
        cJSON *out = NULL;
        clock_mark start = mark();
        if (vdx_concept_train(book, "bench", 0, 0, &out, &err) != 0)
            die("train", &err);
        cJSON_Delete(out);
        clock_mark trained = mark();
        vdx_candidates_request req = {.mode = VDX_CANDIDATES_NEAREST, .k = 9};
        if (vdx_concept_candidates(book, "bench", &req, &out, &err) != 0)
            die("candidates", &err);
        clock_mark fetched = mark();
        if (cJSON_GetArraySize(cJSON_GetObjectItem(out, "items")) != 9)
            die("candidates returned fewer than 9", &err);
        cJSON_Delete(out);
        record(&t[TRAIN], r, start, trained);
        record(&t[NEXT], r, trained, fetched);
        record(&t[ROUND], r, start, fetched);
        req.page = 1;
        start = mark();
        if (vdx_concept_candidates(book, "bench", &req, &out, &err) != 0)
            die("candidates page 2", &err);
        record(&t[PAGE2], r, start, mark());
        cJSON_Delete(out);

        vdx_score_request top = {.top = 100}, all = {.top = 0};
        vdx_hits hits = {0};
        if (!round_only) { /* the whole-collection steps */
            start = mark();
            if (vdx_concept_score(book, "bench", &top, &out, &err) != 0)
                die("score", &err);
            record(&t[SCORE_TOP], r, start, mark());
            cJSON_Delete(out);
            start = mark();
            if (vdx_concept_score(book, "bench", &all, &out, &err) != 0)
                die("score", &err);
            record(&t[SCORE_ALL], r, start, mark());
            cJSON_Delete(out);
            start = mark();
            if (vdx_concept_evaluate(book, "bench", NULL, &out, &err) != 0)
                die("evaluate", &err);
            record(&t[EVALUATE], r, start, mark());
            if (r == 0) {
                const cJSON *sc = cJSON_GetObjectItem(out, "scores");
                printf("  evaluate's scores: from %s, max error %.4f\n",
                       cJSON_GetStringValue(cJSON_GetObjectItem(sc, "source")),
                       cJSON_GetNumberValue(cJSON_GetObjectItem(sc, "max_error")));
            }
            cJSON_Delete(out);
            vdx_evaluate_options exact = {.exact = 1};
            start = mark();
            if (vdx_concept_evaluate(book, "bench", &exact, &out, &err) != 0)
                die("evaluate", &err);
            record(&t[EVALUATE_EXACT], r, start, mark());
            cJSON_Delete(out);

            /* the store's share: the calls the concept book makes */
            vdx_search_request scan = {.query = w};
            start = mark();
            if (vdx_store_score_all(store, &scan, &hits, &err) != 0)
                die("store score_all", &err);
            vdx_hits_free(&hits);
            record(&t[STORE_SCORE], r, start, mark());
            scan.without_urls = 1;
            start = mark();
            if (vdx_store_score_all(store, &scan, &hits, &err) != 0)
                die("store score_all", &err);
            vdx_hits_free(&hits);
            record(&t[STORE_SCORE_BARE], r, start, mark());
            float *scores[2] = {NULL, NULL};
            size_t n_scores[2] = {0, 0};
            double bound = 0, exact_bound = 0;
            for (int e = 0; e < 2; e++) {
                vdx_search_request values = {.query = w, .exclude_ids = label_ids,
                                             .n_exclude = (size_t)n_labels, .exact = e};
                start = mark();
                if (vdx_store_score_values(store, &values, &scores[e], &n_scores[e],
                                           e ? &exact_bound : &bound, &err) != 0)
                    die("store score_values", &err);
                record(&t[e ? STORE_VALUES_EXACT : STORE_VALUES], r, start, mark());
            }
            if (r == 0 && bound > 0 && n_scores[0] == n_scores[1]) {
                double sum = 0, worst = 0;
                for (size_t i = 0; i < n_scores[0]; i++) {
                    double e = fabs((double)scores[0][i] - scores[1][i]);
                    sum += e;
                    worst = e > worst ? e : worst;
                }
                double norm2 = 0;
                for (int j = 0; j < DIMS; j++)
                    norm2 += (double)w[j] * w[j];
                printf("  scores from the index's codes: mean error %.6f, largest %.6f, bound %.6f "
                       "(the scores' spread, |w| / sqrt(dims): %.4f)\n",
                       sum / (double)n_scores[0], worst, bound, sqrt(norm2 / DIMS));
            }
            free(scores[0]);
            free(scores[1]);
        }
        vdx_search_request near = {.query = w, .k = 9, .exclude_ids = label_ids,
                                   .n_exclude = (size_t)n_labels};
        start = mark();
        if (vdx_store_search(store, &near, &hits, &err) != 0)
            die("store search", &err);
        vdx_hits_free(&hits);
        record(&t[STORE_SEARCH], r, start, mark());
        start = mark();
        if (vdx_store_get_vectors(store, label_ids, (size_t)n_labels, label_vectors, &err) != 0)
            die("store get_vectors", &err);
        record(&t[STORE_VECTORS], r, start, mark());
    }
    printf("  %-52s %10s %10s\n", "median of each step", "wall ms", "cpu ms");
    for (int m = 0; m < METRICS; m++) {
        if (!round_only || m < SCORE_TOP || m > STORE_VALUES_EXACT) /* else not run */
            printf("  %-52s %10.2f %10.2f\n", names[m], median(t[m].wall, reps),
                   median(t[m].cpu, reps));
        free(t[m].wall);
        free(t[m].cpu);
    }
    printf("  (wall includes the fsync of each commit and time lost to other processes;\n"
           "   cpu is the work of all the process's threads)\n");
    free(t);
    free(label_ids);
    free(label_vectors);

    vdx_concepts_close(book);
    vdx_store_close(store);
    free(vectors);
    free(items);
    free(ids);
    free(changes);
    if (!(kept && *kept) && nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "bench_explore: could not remove %s\n", dir);
    return 0;
}
