/* Benchmark of the explore loop on the embedded store: 25k random 512-d items, a concept
 * with 500 labels. Prints the server-side time of one full round (train over all labels
 * + the next 9 nearest candidates excluding the 500 labelled ids), of its parts, of
 * scoring the whole collection and of an evaluation (5-fold CV + histogram). Medians of
 * several repetitions; numbers only, no pass/fail.
 *   usage: bench_explore [items=25000] [labels=500] [reps=15] */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vdx/explore.h"
#include "bench.h"

#define DIMS 512

static uint64_t rng = 12345;
static double uniform(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((rng >> 11) + 0.5) / 9007199254740992.0;
}

static void die(const char *what, const vdx_error *err)
{
    fprintf(stderr, "bench_explore: %s: %s\n", what, err->message);
    exit(1);
}

int main(int argc, char **argv)
{
    int n_items = argc > 1 ? atoi(argv[1]) : 25000;
    int n_labels = argc > 2 ? atoi(argv[2]) : 500;
    int reps = argc > 3 ? atoi(argv[3]) : 15;
    if (n_items < 100 || n_labels < 2 || n_labels > n_items || reps < 1) {
        fprintf(stderr, "usage: bench_explore [items>=100] [labels>=2] [reps>=1]\n");
        return 2;
    }
    char dir[] = "/tmp/vdx-bench-explore-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    vdx_error err = {{0}};
    vdx_model_identity model = {.name = "bench", .dims = DIMS};
    memset(model.config_hash, 'b', 64);
    vdx_store_options opts = {.data_dir = dir, .collection = "bench", .create = 1,
                              .model = &model};
    unsetenv("VDX_STORE");
    vdx_store *store = vdx_store_open(&opts, &err);
    if (!store)
        die("store", &err);

    printf("bench_explore: %d items x %d dims, %d labels, %d repetitions\n", n_items, DIMS,
           n_labels, reps);
    double t0 = vdx_now();
    const int batch = 1000;
    float *vectors = malloc((size_t)batch * DIMS * sizeof *vectors);
    vdx_item *items = calloc((size_t)batch, sizeof *items);
    char (*ids)[16] = malloc((size_t)n_items * sizeof *ids);
    for (int start = 0; start < n_items; start += batch) {
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

    vdx_concepts *book = vdx_concepts_open(store, &err);
    if (!book)
        die("concepts", &err);
    float w[DIMS];
    for (int j = 0; j < DIMS; j++)
        w[j] = (float)(uniform() - 0.5);
    vdx_concept_spec spec = {.name = "bench", .prompt = "random", .text_vector = w};
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

    double *train_ms = calloc((size_t)reps, sizeof(double));
    double *next_ms = calloc((size_t)reps, sizeof(double));
    double *round_ms = calloc((size_t)reps, sizeof(double));
    double *score_ms = calloc((size_t)reps, sizeof(double));
    double *score_top_ms = calloc((size_t)reps, sizeof(double));
    double *eval_ms = calloc((size_t)reps, sizeof(double));
    for (int r = 0; r < reps; r++) {
        cJSON *out = NULL;
        double a = vdx_now();
        if (vdx_concept_train(book, "bench", 0, 0, &out, &err) != 0)
            die("train", &err);
        cJSON_Delete(out);
        double b = vdx_now();
        vdx_candidates_request req = {.mode = VDX_CANDIDATES_NEAREST, .k = 9};
        if (vdx_concept_candidates(book, "bench", &req, &out, &err) != 0)
            die("candidates", &err);
        double c = vdx_now();
        if (cJSON_GetArraySize(cJSON_GetObjectItem(out, "items")) != 9)
            die("candidates returned fewer than 9", &err);
        cJSON_Delete(out);
        train_ms[r] = (b - a) * 1e3;
        next_ms[r] = (c - b) * 1e3;
        round_ms[r] = (c - a) * 1e3;

        vdx_score_request all = {.top = 0};
        a = vdx_now();
        if (vdx_concept_score(book, "bench", &all, &out, &err) != 0)
            die("score", &err);
        score_ms[r] = (vdx_now() - a) * 1e3;
        cJSON_Delete(out);
        vdx_score_request top = {.top = 100};
        a = vdx_now();
        if (vdx_concept_score(book, "bench", &top, &out, &err) != 0)
            die("score", &err);
        score_top_ms[r] = (vdx_now() - a) * 1e3;
        cJSON_Delete(out);
        a = vdx_now();
        if (vdx_concept_evaluate(book, "bench", NULL, &out, &err) != 0)
            die("evaluate", &err);
        eval_ms[r] = (vdx_now() - a) * 1e3;
        cJSON_Delete(out);
    }
    /* the store's share: the same calls the concept book makes */
    double *store_score_ms = calloc((size_t)reps, sizeof(double));
    double *store_search_ms = calloc((size_t)reps, sizeof(double));
    double *store_vectors_ms = calloc((size_t)reps, sizeof(double));
    const char **label_ids = malloc((size_t)n_labels * sizeof *label_ids);
    float *label_vectors = malloc((size_t)n_labels * DIMS * sizeof *label_vectors);
    for (int i = 0; i < n_labels; i++)
        label_ids[i] = changes[i].id;
    for (int r = 0; r < reps; r++) {
        vdx_hits hits = {0};
        vdx_search_request all = {.query = w};
        double a = vdx_now();
        if (vdx_store_score_all(store, &all, &hits, &err) != 0)
            die("store score_all", &err);
        store_score_ms[r] = (vdx_now() - a) * 1e3;
        vdx_hits_free(&hits);
        vdx_search_request near = {.query = w, .k = 9, .exclude_ids = label_ids,
                                   .n_exclude = (size_t)n_labels};
        a = vdx_now();
        if (vdx_store_search(store, &near, &hits, &err) != 0)
            die("store search", &err);
        store_search_ms[r] = (vdx_now() - a) * 1e3;
        vdx_hits_free(&hits);
        a = vdx_now();
        if (vdx_store_get_vectors(store, label_ids, (size_t)n_labels, label_vectors, &err) != 0)
            die("store get_vectors", &err);
        store_vectors_ms[r] = (vdx_now() - a) * 1e3;
    }
    printf("  store calls alone: score_all %.2f ms, search k=9 excluding %d %.2f ms, "
           "get_vectors of %d %.2f ms\n", bench_median(store_score_ms, reps), n_labels,
           bench_median(store_search_ms, reps), n_labels, bench_median(store_vectors_ms, reps));
    free(store_score_ms);
    free(store_search_ms);
    free(store_vectors_ms);
    free(label_ids);
    free(label_vectors);

    printf("  one round (train + next 9 excluding %d ids): median %.2f ms\n", n_labels,
           bench_median(round_ms, reps));
    printf("    train over %d labels (5 steps, one transaction): median %.2f ms\n", n_labels,
           bench_median(train_ms, reps));
    printf("    next 9 nearest excluding %d ids: median %.2f ms\n", n_labels,
           bench_median(next_ms, reps));
    printf("  score all %d items, top 100 as JSON: median %.2f ms\n", n_items,
           bench_median(score_top_ms, reps));
    printf("  score all %d items, all %d as JSON: median %.2f ms\n", n_items, n_items,
           bench_median(score_ms, reps));
    printf("  evaluate (5-fold CV over %d labels + histogram): median %.2f ms\n", n_labels,
           bench_median(eval_ms, reps));

    vdx_concepts_close(book);
    vdx_store_close(store);
    free(vectors);
    free(items);
    free(ids);
    free(changes);
    free(train_ms);
    free(next_ms);
    free(round_ms);
    free(score_ms);
    free(score_top_ms);
    free(eval_ms);
    if (bench_remove_tree(dir) != 0)
        fprintf(stderr, "bench_explore: could not remove %s\n", dir);
    return 0;
}
