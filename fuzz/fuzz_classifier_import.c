/* libFuzzer target for the classifier import (vdx_concept_import_classifier in export.c of
 * src/explore), fed with a file by `vdx concept import` and with the request body by POST
 * /api/concepts/import: the input is imported into a concept book over an embedded store
 * (a per-process temporary directory) whose model is "fuzz-model", fingerprint "ab" x 32,
 * 4 dims. A refusal must say why, in valid UTF-8 when the input is (messages reach JSON
 * replies), within 1 KiB, and leave the book without concepts. An accepted document must
 * name exactly this model's fingerprint and give a concept with the document's name, which
 * exports (vdx_concept_export_classifier) to a document that imports again under another
 * name and exports to the same weight, initial weight, threshold, trainer, prompt and
 * history length; both concepts are then deleted. FUZZ_VERBOSE=1 prints each verdict.
 * Built by scripts/build-fuzz.sh. Importing embeds no text, trains nothing and searches
 * nothing: the CLIP entry points concepts.c names, the trainers (classifier.c of explore,
 * whose target_clones functions clang 14 cannot call from another file) and the vector
 * scans (scan.c of the store, whose __builtin_cpu_supports("f16c") clang 14 does not know)
 * are stubs here that abort.
 * FUZZ_SOURCES: src/explore/export.c src/explore/book.c src/explore/concepts.c src/explore/labels.c src/explore/rounds.c src/explore/calibrate.c src/explore/candidates.c src/explore/evaluate.c src/explore/audit.c src/store/store.c src/store/embedded.c src/store/clickhouse.c src/store/clickhouse_http.c src/store/clickhouse_sql.c src/store/backend_common.c src/store/filter.c src/store/index_ivf.c src/common/common.c src/common/half.c src/common/hash.c src/common/json_check.c src/common/random.c src/common/sqlite_util.c src/common/strbuf.c src/common/clock.c src/common/http_client.c src/common/team.c */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explore/classifier.h"
#include "store/scan.h"
#include "vdx/clip.h"
#include "vdx/explore.h"
#include "vdx/store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- never called by an import ---- */
void vdx_clip_identity(const vdx_clip_model *model, vdx_model_identity *out) { abort(); }
int vdx_clip_embed_text(const vdx_clip_model *model, const char *text, float *out,
                        int *truncated, vdx_error *err) { abort(); }
void vdx_l2_normalize(float *v, int n) { abort(); }
int64_t scan_nearest(const vdx_scan_matrix *m, const float *q, const uint64_t *allowed,
                     int64_t want, vdx_scan_tie_break tie_break, const void *ctx,
                     vdx_scan_hit *out, vdx_error *err) { abort(); }
int scan_dots(const vdx_scan_matrix *m, const float *q, const uint64_t *allowed, float *out,
              vdx_error *err) { abort(); }
void scan_dot_rows(const vdx_scan_matrix *m, const float *q, const int64_t *rows, size_t n,
                   float *out) { abort(); }
int vdx_classifier_fit(const float *X, const float *y, int n, int dims, float *w, int iters,
                       float lr, float *losses, vdx_error *err) { abort(); }
int vdx_classifier_fit_anchored(const float *X, const float *y, int n, const float *weak,
                                int n_weak, const float *anchor, int dims,
                                const vdx_anchored_options *opts, float *w, float *bias,
                                float *losses, vdx_error *err) { abort(); }
double vdx_classifier_accuracy(const float *X, const float *y, int n, int dims, const float *w,
                               double threshold) { abort(); }
int classifier_fit_folds(const float *X, const float *y, const int *fold_of, int n, int dims,
                         int folds, float *W, int iters, float lr, vdx_error *err) { abort(); }
int classifier_fit_anchored_folds(const float *X, const float *y, const int *fold_of, int n,
                                  const float *weak, int n_weak, const float *anchor, int dims,
                                  int folds, const vdx_anchored_options *opts, float *W,
                                  vdx_error *err) { abort(); }

static vdx_store *store;
static vdx_concepts *book;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static char dir[] = "/tmp/vdx-fuzz-classifier-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    vdx_model_identity model;
    memset(&model, 0, sizeof model);
    snprintf(model.name, sizeof model.name, "fuzz-model");
    for (int i = 0; i < 64; i++)
        model.config_hash[i] = "ab"[i % 2];
    model.dims = 4;
    vdx_store_options opts = {.data_dir = dir, .collection = "fuzz", .create = 1, .model = &model};
    vdx_error err = {{0}};
    if (!(store = vdx_store_open(&opts, &err)) || !(book = vdx_concepts_open(store, &err))) {
        fprintf(stderr, "fuzz_classifier_import: %s\n", err.message);
        exit(1);
    }
    return 0;
}

static int book_is_empty(void)
{
    cJSON *list = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_list(book, &list, &err) != 0)
        abort();
    int n = cJSON_GetArraySize(cJSON_IsArray(list) ? list : cJSON_GetObjectItem(list, "concepts"));
    cJSON_Delete(list);
    return n == 0;
}

static int same(const cJSON *a, const cJSON *b, const char *key)
{
    return cJSON_Compare(cJSON_GetObjectItem(a, key), cJSON_GetObjectItem(b, key), 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vdx_error err = {{0}};
    cJSON *concept = NULL;
    int rc = vdx_concept_import_classifier(book, (const char *)data, size, NULL, &concept, &err);
    if (getenv("FUZZ_VERBOSE")) /* to see what a seed does */
        fprintf(stderr, "%s\n", rc == 0 ? "imported" : err.message);
    if (rc != 0) {
        size_t len = strnlen(err.message, sizeof err.message), bad;
        if (len == 0 || len >= sizeof err.message || concept)
            abort(); /* a refusal says why */
        if (vdx_utf8_check((const char *)data, size, &bad) == 0 &&
            vdx_utf8_check(err.message, len, &bad) != 0)
            abort(); /* in UTF-8 */
        if (!book_is_empty())
            abort(); /* and changes nothing */
        return 0;
    }
    const cJSON *name = cJSON_GetObjectItem(concept, "name");
    if (!cJSON_IsString(name))
        abort();
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    const cJSON *fingerprint = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "model"), "fingerprint");
    if (!cJSON_IsString(fingerprint) ||
        strcmp(fingerprint->valuestring, vdx_store_model(store)->config_hash) != 0 ||
        strcmp(cJSON_GetObjectItem(doc, "name")->valuestring, name->valuestring) != 0)
        abort(); /* only this model's classifier, under its own name */
    cJSON_Delete(doc);
    char *first_name = strdup(name->valuestring);
    cJSON_Delete(concept);

    cJSON *exported = NULL, *again = NULL;
    if (vdx_concept_export_classifier(book, first_name, &exported, &err) != 0)
        abort();
    char *text = cJSON_PrintUnformatted(exported);
    if (!text || vdx_concept_import_classifier(book, text, strlen(text), "fuzz round trip",
                                               NULL, &err) != 0) {
        fprintf(stderr, "re-import refused: %s\n%s\n", err.message, text);
        abort(); /* what vdx exports, vdx imports */
    }
    if (vdx_concept_export_classifier(book, "fuzz round trip", &again, &err) != 0)
        abort();
    if (!same(exported, again, "weight") || !same(exported, again, "initial_weight") ||
        !same(exported, again, "threshold") || !same(exported, again, "trainer") ||
        !same(exported, again, "prompt") ||
        cJSON_GetArraySize(cJSON_GetObjectItem(exported, "history")) !=
            cJSON_GetArraySize(cJSON_GetObjectItem(again, "history")))
        abort(); /* and the same classifier comes back */
    if (vdx_concept_delete(book, first_name, &err) != 0 ||
        vdx_concept_delete(book, "fuzz round trip", &err) != 0 || !book_is_empty())
        abort();
    cJSON_free(text);
    cJSON_Delete(exported);
    cJSON_Delete(again);
    free(first_name);
    return 0;
}
