/* Tests of the explore loop on synthetic collections in the embedded store: clustered
 * random unit vectors where cluster 0 is "the concept" and a simulated user labels by
 * ground truth. Checks that the loop learns (precision@50 after 3 rounds beats the
 * zero-shot start), that nearest-mode rounds surface hard negatives, that a labelled item
 * is never offered again, persistence across a reopen, undo, every candidate mode,
 * evaluation, exports that parse back, imports, and the exact error messages. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <sqlite3.h>

#include "test.h"
#include "vdx/explore.h"

#define DIMS 32
#define CLUSTERS 8
#define PER_CLUSTER 120
#define N_ITEMS (CLUSTERS * PER_CLUSTER)

static const char *const model_hash_a =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *const model_hash_b =
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/* ---- the synthetic collection ------------------------------------------------------- */

static uint64_t rng_state = 42;
static double uniform(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((rng_state >> 11) + 0.5) / 9007199254740992.0;
}
static double gaussian(void)
{
    return sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform());
}

static float centres[CLUSTERS][DIMS];
static float vectors[N_ITEMS][DIMS];
static char ids[N_ITEMS][32];

static int cluster_of(const char *id)
{
    int c = -1, i = -1;
    if (sscanf(id, "c%d-%d", &c, &i) != 2)
        return -1;
    return c;
}

static void normalize(float *v, int n)
{
    double s = 0;
    for (int j = 0; j < n; j++)
        s += (double)v[j] * v[j];
    s = sqrt(s);
    for (int j = 0; j < n; j++)
        v[j] = (float)(v[j] / s);
}

static void make_vectors(void)
{
    rng_state = 42;
    for (int c = 0; c < CLUSTERS; c++) {
        for (int j = 0; j < DIMS; j++)
            centres[c][j] = (float)gaussian();
        normalize(centres[c], DIMS);
    }
    for (int c = 0; c < CLUSTERS; c++)
        for (int i = 0; i < PER_CLUSTER; i++) {
            int k = c * PER_CLUSTER + i;
            snprintf(ids[k], sizeof ids[k], "c%d-%03d", c, i);
            for (int j = 0; j < DIMS; j++)
                vectors[k][j] = centres[c][j] + 0.09f * (float)gaussian();
            normalize(vectors[k], DIMS);
        }
}

static vdx_model_identity identity(const char *hash)
{
    vdx_model_identity id;
    memset(&id, 0, sizeof id);
    snprintf(id.name, sizeof id.name, "synthetic-%c", hash[0]);
    snprintf(id.config_hash, sizeof id.config_hash, "%s", hash);
    id.dims = DIMS;
    return id;
}

static vdx_store *open_store(const char *dir, const char *collection, const char *hash,
                             int create)
{
    vdx_model_identity model = identity(hash);
    vdx_store_options opts = {.data_dir = dir, .collection = collection, .create = create,
                              .model = &model};
    vdx_error err = {{0}};
    vdx_store *store = vdx_store_open(&opts, &err);
    if (!store)
        printf("    vdx_store_open: %s\n", err.message);
    return store;
}

/* A store holding the clustered items (metadata "cluster"), plus `extra` items. */
static vdx_store *synthetic_store(const char *dir, const char *hash, const vdx_item *extra,
                                  size_t n_extra)
{
    make_vectors();
    vdx_store *store = open_store(dir, "synth", hash, 1);
    if (!store)
        return NULL;
    static const char *const names[] = {"cluster"};
    static char cluster_text[N_ITEMS][8];
    static const char *values[N_ITEMS][1];
    static char urls[N_ITEMS][64];
    vdx_item *items = calloc(N_ITEMS, sizeof *items);
    for (int k = 0; k < N_ITEMS; k++) {
        snprintf(cluster_text[k], sizeof cluster_text[k], "%d", k / PER_CLUSTER);
        snprintf(urls[k], sizeof urls[k], "https://example.org/%s.jpg", ids[k]);
        values[k][0] = cluster_text[k];
        items[k] = (vdx_item){.id = ids[k], .url = urls[k], .meta_names = names,
                              .meta_values = values[k], .n_meta = 1, .vector = vectors[k]};
    }
    vdx_error err = {{0}};
    int rc = vdx_store_append(store, items, N_ITEMS, &err);
    if (rc == 0 && n_extra)
        rc = vdx_store_append(store, extra, n_extra, &err);
    free(items);
    if (rc != 0) {
        printf("    vdx_store_append: %s\n", err.message);
        vdx_store_close(store);
        return NULL;
    }
    return store;
}

/* The zero-shot start: a "prompt" that mixes the concept with a neighbouring cluster, so
 * that its nearest items hold hard negatives from cluster 1. */
static void prompt_vector(float *w)
{
    for (int j = 0; j < DIMS; j++)
        w[j] = 3.0f * (centres[0][j] + 1.0f * centres[1][j]);
}

static vdx_concepts *open_book(vdx_store *store)
{
    vdx_error err = {{0}};
    vdx_concepts *book = vdx_concepts_open(store, &err);
    if (!book)
        printf("    vdx_concepts_open: %s\n", err.message);
    return book;
}

/* A concept from prompt_vector with the given trainer (NULL: the default). */
static int create_concept_trained_by(vdx_concepts *book, const char *name, const char *trainer)
{
    float w[DIMS];
    prompt_vector(w);
    vdx_concept_spec spec = {.name = name, .prompt = "a cluster zero", .text_vector = w,
                             .trainer = trainer};
    vdx_error err = {{0}};
    cJSON *c = NULL;
    int rc = vdx_concept_create(book, &spec, &c, &err);
    if (rc != 0)
        printf("    vdx_concept_create: %s\n", err.message);
    cJSON_Delete(c);
    return rc;
}

static int create_concept(vdx_concepts *book, const char *name)
{
    return create_concept_trained_by(book, name, NULL);
}

/* Fraction of the top 50 by score that belong to cluster 0. */
static double precision_at_50(vdx_concepts *book, const char *name)
{
    vdx_score_request req = {.top = 50};
    cJSON *out = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_score(book, name, &req, &out, &err) != 0) {
        printf("    score: %s\n", err.message);
        return -1;
    }
    int hits = 0, n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(out, "items"))
    {
        hits += cluster_of(cJSON_GetObjectItem(item, "id")->valuestring) == 0;
        n++;
    }
    cJSON_Delete(out);
    return n == 50 ? hits / 50.0 : -1;
}

/* Labels a page by ground truth; returns the number labelled. */
static int label_page(vdx_concepts *book, const char *name, const cJSON *page, char seen[][32],
                      int *n_seen)
{
    vdx_label_change changes[64];
    int n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(page, "items"))
    {
        const char *id = cJSON_GetObjectItem(item, "id")->valuestring;
        snprintf(seen[*n_seen], 32, "%s", id);
        (*n_seen)++;
        changes[n].id = seen[*n_seen - 1];
        changes[n].label = cluster_of(id) == 0 ? VDX_LABEL_POSITIVE : VDX_LABEL_NEGATIVE;
        n++;
    }
    vdx_error err = {{0}};
    if (vdx_concept_label(book, name, changes, (size_t)n, NULL, &err) != 0) {
        printf("    label: %s\n", err.message);
        return -1;
    }
    return n;
}

static cJSON *candidates(vdx_concepts *book, const char *name, vdx_candidates_mode mode, int k,
                         int page)
{
    vdx_candidates_request req = {.mode = mode, .k = k, .page = page};
    cJSON *out = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_candidates(book, name, &req, &out, &err) != 0)
        printf("    candidates: %s\n", err.message);
    return out;
}

/* Labels the next page of 9 nearest candidates of concept "zero" as label_page does:
 * the number labelled, -1 when there is no page. */
static int label_nearest_page(vdx_concepts *book, char seen[][32], int *n_seen)
{
    cJSON *page = candidates(book, "zero", VDX_CANDIDATES_NEAREST, 9, 0);
    int n = page ? label_page(book, "zero", page, seen, n_seen) : -1;
    cJSON_Delete(page);
    return n;
}

static int train(vdx_concepts *book, const char *name)
{
    vdx_error err = {{0}};
    cJSON *round = NULL;
    int rc = vdx_concept_train(book, name, 0, 0, &round, &err);
    if (rc != 0)
        printf("    train: %s\n", err.message);
    cJSON_Delete(round);
    return rc;
}

/* The first round of the reopen and undo tests: a synthetic store in dir, concept "zero",
 * one page of 9 nearest candidates labelled, trained. 0, or -1 when a step failed. */
static int first_round(const char *dir, vdx_store **store, vdx_concepts **book,
                       char seen[][32], int *n_seen)
{
    *book = NULL;
    *store = synthetic_store(dir, model_hash_a, NULL, 0);
    if (!*store || !(*book = open_book(*store)) || create_concept(*book, "zero") != 0)
        return -1;
    if (label_nearest_page(*book, seen, n_seen) != 9) {
        printf("    the first page did not label 9 items\n");
        return -1;
    }
    return train(*book, "zero");
}

static char *print_json(vdx_concepts *book, const char *name)
{
    cJSON *c = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_get(book, name, 1, &c, &err) != 0) {
        printf("    get: %s\n", err.message);
        return NULL;
    }
    cJSON *labels = NULL;
    if (vdx_concept_labels(book, name, &labels, &err) == 0)
        cJSON_AddItemToObject(c, "labels", labels);
    char *text = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return text;
}

/* A number field, NAN when missing. */
static double number_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* ---- the loop ----------------------------------------------------------------------- */

TEST(simulated_user_loop)
{
    const char *dir = test_tmpdir("explore-loop");
    vdx_store *store = synthetic_store(dir, model_hash_a, NULL, 0);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book, "book");
    REQUIRE(create_concept(book, "zero") == 0, "create");

    /* initial scores, to recognise hard negatives later */
    float w0[DIMS];
    prompt_vector(w0);
    double zero_shot = precision_at_50(book, "zero");
    static char seen[512][32];
    int n_seen = 0, negatives_seen = 0;
    double hard_scores = 0;
    for (int round = 0; round < 3; round++) {
        cJSON *page = candidates(book, "zero", VDX_CANDIDATES_NEAREST, 20, 0);
        REQUIRE(page, "candidates");
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(page, "items")) == 20, "page of 20");
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItem(page, "items"))
        {
            const char *id = cJSON_GetObjectItem(item, "id")->valuestring;
            for (int s = 0; s < n_seen; s++)
                CHECK(strcmp(seen[s], id) != 0, "round %d offers labelled item %s", round, id);
        }
        int first = n_seen;
        REQUIRE(label_page(book, "zero", page, seen, &n_seen) == 20, "label");
        cJSON_Delete(page);
        for (int s = first; s < n_seen; s++)
            if (cluster_of(seen[s]) != 0) {
                int k = cluster_of(seen[s]) * PER_CLUSTER + atoi(strchr(seen[s], '-') + 1);
                double score = 0;
                for (int j = 0; j < DIMS; j++)
                    score += (double)vectors[k][j] * w0[j];
                hard_scores += score;
                negatives_seen++;
            }
        REQUIRE(train(book, "zero") == 0, "train");
    }
    double trained = precision_at_50(book, "zero");
    printf("    precision@50: zero-shot %.2f, after 3 rounds %.2f\n", zero_shot, trained);
    CHECK(zero_shot >= 0 && trained > zero_shot, "precision@50 %.2f -> %.2f", zero_shot,
          trained);

    /* hard negatives: the labelled negatives score, under the initial weight, above 90%
     * of all the collection's negatives */
    REQUIRE(negatives_seen > 0, "the nearest rounds surfaced no negative at all");
    double mean_hard = hard_scores / negatives_seen;
    int below = 0, negatives = 0;
    for (int k = 0; k < N_ITEMS; k++) {
        if (k / PER_CLUSTER == 0)
            continue;
        double score = 0;
        for (int j = 0; j < DIMS; j++)
            score += (double)vectors[k][j] * w0[j];
        below += score < mean_hard;
        negatives++;
    }
    CHECK(below > 0.9 * negatives, "labelled negatives are not hard: mean initial score %.3f "
          "beats only %d of %d negatives", mean_hard, below, negatives);

    /* after the rounds: no page of any mode offers a labelled item */
    for (int mode = 0; mode < 3; mode++)
        for (int p = 0; p < 3; p++) {
            cJSON *page = candidates(book, "zero", (vdx_candidates_mode)mode, 30, p);
            REQUIRE(page, "candidates");
            const cJSON *item;
            cJSON_ArrayForEach(item, cJSON_GetObjectItem(page, "items"))
            {
                const char *id = cJSON_GetObjectItem(item, "id")->valuestring;
                for (int s = 0; s < n_seen; s++)
                    CHECK(strcmp(seen[s], id) != 0, "mode %d page %d offers labelled %s", mode,
                          p, id);
            }
            cJSON_Delete(page);
        }
    vdx_concepts_close(book);
    vdx_store_close(store);
}

TEST(state_identical_after_reopen)
{
    const char *dir = test_tmpdir("explore-reopen");
    vdx_store *store;
    vdx_concepts *book;
    static char seen[64][32];
    int n_seen = 0;
    REQUIRE(first_round(dir, &store, &book, seen, &n_seen) == 0, "first round");
    vdx_label_change pending = {.id = ids[5 * PER_CLUSTER], .label = VDX_LABEL_NEGATIVE};
    vdx_error err = {{0}};
    int rc = vdx_concept_label(book, "zero", &pending, 1, NULL, &err);
    REQUIRE(rc == 0, "%s", err.message);
    char *before = print_json(book, "zero");
    cJSON *next_before = candidates(book, "zero", VDX_CANDIDATES_NEAREST, 9, 0);
    vdx_concepts_close(book);
    vdx_store_close(store);

    store = open_store(dir, "synth", model_hash_a, 0);
    REQUIRE(store, "reopen store");
    book = open_book(store);
    REQUIRE(book, "reopen book");
    char *after = print_json(book, "zero");
    cJSON *next_after = candidates(book, "zero", VDX_CANDIDATES_NEAREST, 9, 0);
    CHECK(before && after && strcmp(before, after) == 0, "concept differs after reopen:\n%s\n%s",
          before, after);
    CHECK(cJSON_Compare(next_before, next_after, 1), "next page differs after reopen");
    cJSON *c = NULL;
    rc = vdx_concept_get(book, "zero", 0, &c, &err);
    CHECK(rc == 0 && cJSON_GetObjectItem(c, "rounds")->valueint == 1 &&
              cJSON_GetObjectItem(c, "pending")->valueint == 1 &&
              cJSON_GetObjectItem(c, "negative")->valueint +
                      cJSON_GetObjectItem(c, "positive")->valueint == 10,
          "counts after reopen");
    cJSON_Delete(c);
    free(before);
    free(after);
    cJSON_Delete(next_before);
    cJSON_Delete(next_after);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

static const char *str_of(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int int_of(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    return cJSON_IsNumber(v) ? v->valueint : -999;
}

static int label_count(vdx_concepts *book, const char *name)
{
    cJSON *labels = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_labels(book, name, &labels, &err) != 0)
        return -1;
    int n = cJSON_GetArraySize(labels);
    cJSON_Delete(labels);
    return n;
}

TEST(undo_restores_weight_and_labels)
{
    const char *dir = test_tmpdir("explore-undo");
    vdx_store *store;
    vdx_concepts *book;
    static char seen[64][32];
    int n_seen = 0;
    vdx_error err = {{0}};
    REQUIRE(first_round(dir, &store, &book, seen, &n_seen) == 0, "first round");
    char *after_round1 = print_json(book, "zero");

    /* round 2 labels a page (one action) and relabels two items (another) */
    REQUIRE(label_nearest_page(book, seen, &n_seen) == 9, "label 2");
    vdx_label_change flip[2] = {{.id = seen[0], .label = VDX_LABEL_CLEAR},
                                {.id = seen[1], .label = cluster_of(seen[1]) == 0 ? 0 : 1}};
    int rc = vdx_concept_label(book, "zero", flip, 2, NULL, &err);
    REQUIRE(rc == 0, "%s", err.message);
    REQUIRE(train(book, "zero") == 0, "train 2");
    char *after_round2 = print_json(book, "zero");

    /* one label action after the round: undo takes back that one only, redo replays it */
    vdx_label_change extra = {.id = ids[7 * PER_CLUSTER + 3], .label = VDX_LABEL_POSITIVE};
    cJSON *result = NULL;
    rc = vdx_concept_label(book, "zero", &extra, 1, &result, &err);
    REQUIRE(rc == 0, "%s", err.message);
    int action = int_of(result, "action");
    cJSON_Delete(result);
    rc = vdx_concept_undo(book, "zero", &result, &err);
    REQUIRE(rc == 0, "%s", err.message);
    const cJSON *change = cJSON_GetArrayItem(cJSON_GetObjectItem(result, "changes"), 0);
    CHECK(!strcmp(str_of(result, "undone"), "labels") && int_of(result, "action") == action &&
              int_of(result, "labels_reverted") == 1 &&
              !strcmp(str_of(change, "id"), extra.id) &&
              cJSON_IsNull(cJSON_GetObjectItem(change, "label")) &&
              int_of(change, "previous") == 1 && int_of(result, "pending") == 0,
          "undo: %s", cJSON_PrintUnformatted(result));
    cJSON_Delete(result);
    char *undone = print_json(book, "zero");
    cJSON *a = cJSON_Parse(after_round2), *b = cJSON_Parse(undone);
    cJSON_DeleteItemFromObject(a, "updated");
    cJSON_DeleteItemFromObject(b, "updated");
    CHECK(cJSON_Compare(a, b, 1), "undo of one action is not round 2's state:\n%s\n%s",
          after_round2, undone);
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(undone);
    rc = vdx_concept_redo(book, "zero", &result, &err);
    CHECK(rc == 0 && !strcmp(str_of(result, "redone"), "labels") &&
              int_of(result, "labels_redone") == 1 && int_of(result, "pending") == 1,
          "redo: %s", rc == 0 ? cJSON_PrintUnformatted(result) : err.message);
    cJSON_Delete(result);
    rc = vdx_concept_redo(book, "zero", NULL, &err);
    CHECK(rc == -1 && !strcmp(err.message, "nothing to redo in concept 'zero'"), "%s",
          err.message);
    CHECK(label_count(book, "zero") == 18, "18 labels after redo, not %d",
          label_count(book, "zero"));

    /* undoing round 2 keeps its labels unless asked: here asked, back to round 1 exactly */
    rc = vdx_concept_undo(book, "zero", NULL, &err);
    REQUIRE(rc == 0, "%s", err.message);
    rc = vdx_concept_undo_round(book, "zero", 1, &result, &err);
    REQUIRE(rc == 0, "%s", err.message);
    CHECK(!strcmp(str_of(result, "undone"), "round") && int_of(result, "round") == 2 &&
              !strcmp(str_of(result, "weight"), "round 1") &&
              int_of(result, "labels_reverted") == 11 && int_of(result, "labels_kept") == 0,
          "undo round 2: %s", cJSON_PrintUnformatted(result));
    cJSON_Delete(result);
    char *after_undo = print_json(book, "zero");
    /* identical except "updated" (undo touches the concept) */
    a = cJSON_Parse(after_round1);
    b = cJSON_Parse(after_undo);
    cJSON_DeleteItemFromObject(a, "updated");
    cJSON_DeleteItemFromObject(b, "updated");
    CHECK(cJSON_Compare(a, b, 1), "undo did not restore round 1:\n%s\n%s", after_round1,
          after_undo);
    cJSON_Delete(a);
    cJSON_Delete(b);

    /* round 1, keeping its labels: the prompt's weight, 9 labels pending */
    rc = vdx_concept_undo_round(book, "zero", 0, &result, &err);
    REQUIRE(rc == 0, "%s", err.message);
    CHECK(int_of(result, "round") == 1 && !strcmp(str_of(result, "weight"), "initial") &&
              int_of(result, "labels_reverted") == 0 && int_of(result, "labels_kept") == 9 &&
              int_of(result, "pending") == 9,
          "undo round 1: %s", cJSON_PrintUnformatted(result));
    cJSON_Delete(result);
    float w[DIMS], w0[DIMS];
    prompt_vector(w0);
    rc = vdx_concept_weight(book, "zero", w, DIMS, &err);
    CHECK(rc == 0 && memcmp(w, w0, sizeof w) == 0, "undoing round 1 restores the prompt weight");
    CHECK(label_count(book, "zero") == 9, "round 1's labels are kept");
    rc = vdx_concept_undo_round(book, "zero", 0, NULL, &err);
    CHECK(rc == -1 && !strcmp(err.message, "concept 'zero' has no round to undo"), "%s",
          err.message);
    /* the labels themselves: one undo takes back round 1's page */
    rc = vdx_concept_undo(book, "zero", NULL, &err);
    CHECK(rc == 0 && label_count(book, "zero") == 0, "no labels after undoing everything");
    rc = vdx_concept_undo(book, "zero", NULL, &err);
    CHECK(rc == -1 && !strcmp(err.message, "nothing to undo in concept 'zero'"), "%s",
          err.message);
    rc = vdx_concept_redo(book, "zero", NULL, &err);
    CHECK(rc == 0 && label_count(book, "zero") == 9, "redo brings round 1's page back");

    /* the history lists actions newest first; reverting an old one is a new action */
    cJSON *history = NULL;
    rc = vdx_concept_history(book, "zero", 0, &history, &err);
    REQUIRE(rc == 0, "%s", err.message);
    const cJSON *actions = cJSON_GetObjectItem(history, "actions");
    const cJSON *oldest = cJSON_GetArrayItem(actions, cJSON_GetArraySize(actions) - 1);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(history, "can_undo")) &&
              cJSON_IsTrue(cJSON_GetObjectItem(history, "can_redo")) &&
              cJSON_IsFalse(cJSON_GetObjectItem(oldest, "undone")) &&
              cJSON_GetArraySize(cJSON_GetObjectItem(oldest, "changes")) == 9,
          "history: %s", cJSON_PrintUnformatted(history));
    int oldest_action = int_of(oldest, "action");
    cJSON_Delete(history);
    rc = vdx_concept_revert_action(book, "zero", oldest_action, &result, &err);
    CHECK(rc == 0 && int_of(result, "changed") == 9 &&
              int_of(result, "reverted_action") == oldest_action && label_count(book, "zero") == 0,
          "revert: %s", rc == 0 ? cJSON_PrintUnformatted(result) : err.message);
    cJSON_Delete(result);
    rc = vdx_concept_revert_action(book, "zero", 9999, NULL, &err);
    CHECK(rc == -1 && !strcmp(err.message, "concept 'zero' has no label action 9999"), "%s",
          err.message);
    rc = vdx_concept_undo(book, "zero", NULL, &err);
    CHECK(rc == 0 && label_count(book, "zero") == 9, "undoing the revert brings the labels back");
    free(after_round1);
    free(after_round2);
    free(after_undo);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* Random sequences of label actions, undo, redo, training and undoing rounds (keeping
 * labels), checked after every step against a model of the undo and redo stacks: no
 * label is ever lost or changed that was not asked to be. */
#define POOL 12
#define STEPS 400
typedef struct model_change {
    int item, before, after;
} model_change;
typedef struct model_action {
    int n;
    model_change changes[4];
} model_action;

TEST(undo_redo_never_loses_a_label)
{
    const char *dir = test_tmpdir("explore-undo-random");
    vdx_store *store = synthetic_store(dir, model_hash_a, NULL, 0);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "zero") == 0, "create");
    static model_action done[STEPS], undone_stack[STEPS];
    int n_done = 0, n_undone = 0, label[POOL], mismatches = 0, rounds = 0;
    for (int i = 0; i < POOL; i++)
        label[i] = -1;
    uint64_t state = 7;
    vdx_error err = {{0}};
    for (int step = 0; step < STEPS && mismatches == 0; step++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        int op = (int)((state >> 33) % 10);
        int rc;
        if (op < 4) { /* a label action of 1..3 distinct items */
            int n = 1 + (int)((state >> 40) % 3), first = (int)((state >> 20) % POOL);
            vdx_label_change changes[3];
            model_action a = {0};
            for (int i = 0; i < n; i++) {
                int item = (first + i * 5) % POOL, value = (int)((state >> (45 + 2 * i)) % 3) - 1;
                changes[i] = (vdx_label_change){.id = ids[item * 70], .label = value};
                if (label[item] != value) {
                    a.changes[a.n++] = (model_change){item, label[item], value};
                    label[item] = value;
                }
            }
            rc = vdx_concept_label(book, "zero", changes, (size_t)n, NULL, &err);
            if (a.n) {
                done[n_done++] = a;
                n_undone = 0;
            }
        } else if (op < 7) {
            rc = vdx_concept_undo(book, "zero", NULL, &err);
            if (n_done) {
                model_action a = done[--n_done];
                for (int i = a.n - 1; i >= 0; i--)
                    label[a.changes[i].item] = a.changes[i].before;
                undone_stack[n_undone++] = a;
            } else {
                rc = rc == -1 && strstr(err.message, "nothing to undo") ? 0 : -1;
            }
        } else if (op < 9) {
            rc = vdx_concept_redo(book, "zero", NULL, &err);
            if (n_undone) {
                model_action a = undone_stack[--n_undone];
                for (int i = 0; i < a.n; i++)
                    label[a.changes[i].item] = a.changes[i].after;
                done[n_done++] = a;
            } else {
                rc = rc == -1 && strstr(err.message, "nothing to redo") ? 0 : -1;
            }
        } else if ((state >> 50) % 2 || rounds == 0) {
            int any = 0;
            for (int i = 0; i < POOL; i++)
                any |= label[i] >= 0;
            rc = vdx_concept_train(book, "zero", 0, 0, NULL, &err);
            if (!any)
                rc = rc == -1 ? 0 : -1;
            else
                rounds += rc == 0;
        } else {
            rc = vdx_concept_undo_round(book, "zero", 0, NULL, &err);
            rounds--;
        }
        if (rc != 0) {
            mismatches++;
            CHECK(0, "step %d (op %d): %s", step, op, err.message);
        }
        cJSON *labels = NULL;
        REQUIRE(vdx_concept_labels(book, "zero", &labels, &err) == 0, "%s", err.message);
        int expected = 0;
        for (int i = 0; i < POOL; i++)
            expected += label[i] >= 0;
        const cJSON *l;
        int matched = 0;
        cJSON_ArrayForEach(l, labels)
        {
            for (int i = 0; i < POOL; i++)
                if (!strcmp(str_of(l, "id"), ids[i * 70]))
                    matched += label[i] == int_of(l, "label");
        }
        if (matched != expected || cJSON_GetArraySize(labels) != expected) {
            mismatches++;
            CHECK(0, "step %d (op %d): the labels %s differ from the model", step, op,
                  cJSON_PrintUnformatted(labels));
        }
        cJSON_Delete(labels);
    }
    printf("    %d steps, %d rounds standing at the end\n", STEPS, rounds);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* ---- candidates --------------------------------------------------------------------- */

TEST(candidate_modes_paging_filter_duplicates)
{
    /* two exact copies of c0-000 and one of c2-000 under other ids: near-duplicates */
    make_vectors();
    vdx_item extra[3] = {{.id = "dup-a", .url = "u", .vector = vectors[0]},
                         {.id = "dup-b", .url = "u", .vector = vectors[0]},
                         {.id = "dup-c", .url = "u", .vector = vectors[2 * PER_CLUSTER]}};
    const char *dir = test_tmpdir("explore-candidates");
    vdx_store *store = synthetic_store(dir, model_hash_a, extra, 3);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "zero") == 0, "create");
    vdx_error err = {{0}};

    /* paging: pages 0..2 of each mode are disjoint and full */
    for (int mode = 0; mode < 3; mode++) {
        char page_ids[3 * 10][32];
        int n = 0;
        for (int p = 0; p < 3; p++) {
            cJSON *page = candidates(book, "zero", (vdx_candidates_mode)mode, 10, p);
            REQUIRE(page, "page");
            CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(page, "items")) == 10, "full page");
            CHECK(cJSON_IsTrue(cJSON_GetObjectItem(page, "more")), "more pages");
            const cJSON *item;
            cJSON_ArrayForEach(item, cJSON_GetObjectItem(page, "items"))
            {
                const char *id = cJSON_GetObjectItem(item, "id")->valuestring;
                for (int s = 0; s < n; s++)
                    CHECK(strcmp(page_ids[s], id) != 0, "mode %d: %s on two pages", mode, id);
                snprintf(page_ids[n++], 32, "%s", id);
            }
            cJSON_Delete(page);
        }
    }

    /* nearest: ascending distance; boundary: ascending |score - threshold| */
    cJSON *page = candidates(book, "zero", VDX_CANDIDATES_NEAREST, 30, 0);
    double last = -1;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(page, "items"))
    {
        double d = cJSON_GetObjectItem(item, "dist")->valuedouble;
        CHECK(d >= last - 1e-6, "nearest not ascending");
        last = d;
    }
    cJSON_Delete(page);
    vdx_concept_set_threshold(book, "zero", 1.5, &err);
    page = candidates(book, "zero", VDX_CANDIDATES_BOUNDARY, 30, 0);
    last = -1;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(page, "items"))
    {
        double d = fabs(cJSON_GetObjectItem(item, "score")->valuedouble - 1.5);
        CHECK(d >= last - 1e-6, "boundary not ascending in |score - threshold|");
        last = d;
    }
    CHECK(cJSON_GetObjectItem(page, "unlabelled")->valueint == N_ITEMS + 3, "unlabelled count");
    cJSON_Delete(page);

    /* random: reproducible per seed and page, different for another seed, spread out */
    vdx_candidates_request req = {.mode = VDX_CANDIDATES_RANDOM, .k = 40, .page = 1, .seed = 7};
    cJSON *r1 = NULL, *r2 = NULL, *r3 = NULL;
    int rc = vdx_concept_candidates(book, "zero", &req, &r1, &err);
    rc |= vdx_concept_candidates(book, "zero", &req, &r2, &err);
    req.seed = 8;
    rc |= vdx_concept_candidates(book, "zero", &req, &r3, &err);
    REQUIRE(rc == 0, "%s", err.message);
    CHECK(cJSON_Compare(r1, r2, 1), "random page not reproducible");
    CHECK(!cJSON_Compare(r1, r3, 1), "random page ignores the seed");
    int clusters_seen[CLUSTERS + 1] = {0}, distinct = 0;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(r1, "items"))
    {
        int c = cluster_of(cJSON_GetObjectItem(item, "id")->valuestring);
        if (c >= 0 && !clusters_seen[c]++)
            distinct++;
    }
    CHECK(distinct >= 6, "random sample covers only %d of 8 clusters", distinct);
    cJSON_Delete(r1);
    cJSON_Delete(r2);
    cJSON_Delete(r3);

    /* where filter */
    vdx_candidates_request filtered = {.mode = VDX_CANDIDATES_NEAREST, .k = 15,
                                       .where = "cluster = '3'"};
    cJSON *f = NULL;
    rc = vdx_concept_candidates(book, "zero", &filtered, &f, &err);
    REQUIRE(rc == 0, "%s", err.message);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(f, "items")) == 15, "filtered page size");
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(f, "items"))
        CHECK(cluster_of(cJSON_GetObjectItem(item, "id")->valuestring) == 3, "filter leaked %s",
              cJSON_GetObjectItem(item, "id")->valuestring);
    cJSON_Delete(f);

    /* near-duplicate hiding: the copies of c0-000 are hidden behind the first of them */
    const char *const trio[] = {"c0-000", "dup-a", "dup-b"};
    float centre[DIMS];
    memcpy(centre, vectors[0], sizeof centre);
    vdx_concept_spec spec = {.name = "dups", .example_ids = trio, .n_examples = 3};
    rc = vdx_concept_create(book, &spec, NULL, &err);
    REQUIRE(rc == 0, "%s", err.message);
    vdx_candidates_request dup_req = {.mode = VDX_CANDIDATES_NEAREST, .k = 5,
                                      .hide_duplicates = 1};
    cJSON *d = NULL;
    rc = vdx_concept_candidates(book, "dups", &dup_req, &d, &err);
    REQUIRE(rc == 0, "%s", err.message);
    const cJSON *hidden = cJSON_GetObjectItem(d, "hidden");
    CHECK(cJSON_GetArraySize(hidden) == 2 &&
              cJSON_GetArraySize(cJSON_GetObjectItem(d, "items")) == 3,
          "hidden: %s", cJSON_PrintUnformatted(d));
    const char *first = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "items"),
                                                               0), "id")->valuestring;
    cJSON_ArrayForEach(item, hidden)
        CHECK(!strcmp(cJSON_GetObjectItem(item, "duplicate_of")->valuestring, first),
              "duplicate_of");
    cJSON_Delete(d);
    dup_req.mode = VDX_CANDIDATES_BOUNDARY;
    dup_req.k = N_ITEMS + 3;
    rc = vdx_concept_candidates(book, "dups", &dup_req, &d, &err);
    REQUIRE(rc == 0, "%s", err.message);
    /* the whole collection on one page: dup-a/dup-b/c0-000 collapse to one, dup-c/c2-000 too */
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(d, "hidden")) >= 3, "boundary hides %d",
          cJSON_GetArraySize(cJSON_GetObjectItem(d, "hidden")));
    cJSON_Delete(d);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* A round's pages are cut from one list fixed when the round starts: labelling page 1
 * and paging on shows ranks 10-18, in every mode; the next round starts a new list. */
/* The candidate lists concepts.db holds (WHERE clause or all). */
static long long candidate_lists(vdx_store *store, const char *where)
{
    char path[4200], sql[256];
    snprintf(path, sizeof path, "%s/concepts.db", vdx_store_dir(store));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM candidate_lists%s%s", where ? " WHERE " : "",
             where ? where : "");
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    long long n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
        n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
}

TEST(pages_keep_their_ranks)
{
    const char *dir = test_tmpdir("explore-pages");
    vdx_store *store = synthetic_store(dir, model_hash_a, NULL, 0);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "zero") == 0, "create");
    vdx_error err = {{0}};
    for (int mode = 0; mode < 3; mode++) {
        cJSON *before[2] = {candidates(book, "zero", (vdx_candidates_mode)mode, 9, 0),
                            candidates(book, "zero", (vdx_candidates_mode)mode, 9, 1)};
        REQUIRE(before[0] && before[1], "pages");
        /* label all of page 1 (one action) */
        vdx_label_change changes[9];
        int n = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItem(before[0], "items"))
        {
            changes[n].id = str_of(item, "id");
            changes[n].label = cluster_of(changes[n].id) == 0 ? 1 : 0;
            n++;
        }
        REQUIRE(n == 9, "page 1 holds %d items", n);
        int rc = vdx_concept_label(book, "zero", changes, 9, NULL, &err);
        REQUIRE(rc == 0, "%s", err.message);
        cJSON *after[2] = {candidates(book, "zero", (vdx_candidates_mode)mode, 9, 0),
                           candidates(book, "zero", (vdx_candidates_mode)mode, 9, 1)};
        REQUIRE(after[0] && after[1], "pages after labelling");
        /* page 2 is the same ranks 10-18; page 1 the same items, now with their labels */
        int same = 1, labelled = 0, rank = 10;
        for (int i = 0; i < 9; i++) {
            const cJSON *b = cJSON_GetArrayItem(cJSON_GetObjectItem(before[1], "items"), i);
            const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(after[1], "items"), i);
            same &= a && b && !strcmp(str_of(a, "id"), str_of(b, "id")) &&
                    int_of(a, "rank") == rank++;
            const cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(after[0], "items"), i);
            labelled += p && !strcmp(str_of(p, "id"), changes[i].id) &&
                        int_of(p, "label") == changes[i].label;
        }
        CHECK(same, "mode %d: page 2 changed after labelling page 1:\n%s\n%s", mode,
              cJSON_PrintUnformatted(before[1]), cJSON_PrintUnformatted(after[1]));
        CHECK(labelled == 9, "mode %d: page 1 shows %d of its 9 labels", mode, labelled);
        for (int i = 0; i < 2; i++) {
            cJSON_Delete(before[i]);
            cJSON_Delete(after[i]);
        }
        /* a new round: a new list, without the labelled items */
        REQUIRE(train(book, "zero") == 0, "train");
        cJSON *next = candidates(book, "zero", (vdx_candidates_mode)mode, 9, 0);
        REQUIRE(next, "next round's page");
        int fresh = 0;
        cJSON_ArrayForEach(item, cJSON_GetObjectItem(next, "items"))
            fresh += cJSON_IsNull(cJSON_GetObjectItem(item, "label"));
        CHECK(fresh == 9 && int_of(next, "round") == mode + 1,
              "mode %d: the next round's page holds labelled items: %s", mode,
              cJSON_PrintUnformatted(next));
        cJSON_Delete(next);
    }
    /* paging to the end of a list covers every unlabelled item once */
    int total = 0, pages = 0, more = 1;
    for (int p = 0; more && p < 100; p++, pages++) {
        cJSON *page = candidates(book, "zero", VDX_CANDIDATES_RANDOM, 100, p);
        REQUIRE(page, "random page %d", p);
        total += cJSON_GetArraySize(cJSON_GetObjectItem(page, "items"));
        more = cJSON_IsTrue(cJSON_GetObjectItem(page, "more"));
        cJSON_Delete(page);
    }
    CHECK(total == N_ITEMS - 27 && !more, "random pages cover %d items in %d pages, not %d",
          total, pages, N_ITEMS - 27);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* Pages reach the best 10,000 candidates: in a collection of 10,100 items page 48 of 200
 * says there is more, page 49 (ranks 9,801-10,000) is full but the last, page 50 is
 * refused with its numbers before anything is kept. */
TEST(pages_reach_the_best_10000)
{
    enum { EXTRA = 10100 - N_ITEMS };
    static float extra_vectors[EXTRA][DIMS];
    static char extra_ids[EXTRA][16];
    vdx_item *extra = calloc(EXTRA, sizeof *extra);
    REQUIRE(extra, "calloc");
    for (int i = 0; i < EXTRA; i++) {
        snprintf(extra_ids[i], sizeof extra_ids[i], "x%05d", i);
        for (int j = 0; j < DIMS; j++)
            extra_vectors[i][j] = (float)gaussian();
        normalize(extra_vectors[i], DIMS);
        extra[i] = (vdx_item){.id = extra_ids[i], .vector = extra_vectors[i]};
    }
    const char *dir = test_tmpdir("explore-deep");
    vdx_store *store = synthetic_store(dir, model_hash_a, extra, EXTRA);
    free(extra);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "zero") == 0, "create");
    cJSON *page = candidates(book, "zero", VDX_CANDIDATES_NEAREST, 200, 48);
    CHECK(page && cJSON_IsTrue(cJSON_GetObjectItem(page, "more")), "page 48 of 200 has no more");
    cJSON_Delete(page);
    page = candidates(book, "zero", VDX_CANDIDATES_NEAREST, 200, 49);
    CHECK(page && cJSON_GetArraySize(cJSON_GetObjectItem(page, "items")) == 200 &&
              int_of(cJSON_GetArrayItem(cJSON_GetObjectItem(page, "items"), 199), "rank") == 10000 &&
              cJSON_IsFalse(cJSON_GetObjectItem(page, "more")),
          "page 49 of 200 is not ranks 9801-10000 and the last: %.200s",
          page ? cJSON_PrintUnformatted(page) : "(none)");
    cJSON_Delete(page);
    long long lists = candidate_lists(store, NULL);
    vdx_error err = {{0}};
    vdx_candidates_request deep = {.mode = VDX_CANDIDATES_RANDOM, .k = 200, .page = 50};
    cJSON *refused = NULL;
    CHECK(vdx_concept_candidates(book, "zero", &deep, &refused, &err) == -1 && !refused &&
              err.kind == VDX_ERR_INVALID &&
              strstr(err.message, "page 50 of 200 is out of range (pages reach the best 10000"),
          "page 50 of 200: %s", err.message);
    CHECK(candidate_lists(store, NULL) == lists, "the refused page kept a list (%lld, not %lld)",
          candidate_lists(store, NULL), lists);
    deep = (vdx_candidates_request){.mode = VDX_CANDIDATES_NEAREST, .k = 9, .page = 1110};
    CHECK(vdx_candidates_check(&deep, &err) == 0, "page 1110 of 9 (ranks 9991-9999): %s",
          err.message);
    deep.page = 1111;
    CHECK(vdx_candidates_check(&deep, &err) == -1, "page 1111 of 9 (ranks 10000-10008) passes");
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* The lists a concept keeps for paging: one per filter, so each distinct `where` of a
 * request would add a row of up to 4 KB of filter text for ever; the book keeps the 16
 * most recently stored (the newest page's list among them), and a request that asks to
 * keep nothing (a read-only server's) writes nothing at all. */

TEST(kept_candidate_lists_are_bounded)
{
    const char *dir = test_tmpdir("explore-lists");
    vdx_store *store = synthetic_store(dir, model_hash_a, NULL, 0);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "zero") == 0, "create");
    vdx_error err = {{0}};
    char where[64];
    for (int i = 0; i < 20; i++) {
        snprintf(where, sizeof where, "id <> 'no-such-item-%d'", i);
        vdx_candidates_request req = {.mode = VDX_CANDIDATES_NEAREST, .k = 9, .where = where};
        cJSON *page = NULL;
        REQUIRE(vdx_concept_candidates(book, "zero", &req, &page, &err) == 0, "%s", err.message);
        cJSON_Delete(page);
    }
    CHECK(candidate_lists(store, NULL) == 16, "%lld lists kept after 20 filters, not 16",
          candidate_lists(store, NULL));
    CHECK(candidate_lists(store, "filter = 'id <> ''no-such-item-19'''") == 1 &&
              candidate_lists(store, "filter = 'id <> ''no-such-item-3'''") == 0,
          "the newest list must be kept and the oldest gone");
    snprintf(where, sizeof where, "id <> 'read-only'");
    vdx_candidates_request req = {.mode = VDX_CANDIDATES_RANDOM, .k = 9, .page = 2,
                                  .where = where, .keep_nothing = 1};
    cJSON *page = NULL;
    REQUIRE(vdx_concept_candidates(book, "zero", &req, &page, &err) == 0, "%s", err.message);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(page, "items")) == 9, "a page kept nowhere: %s",
          cJSON_PrintUnformatted(page));
    cJSON_Delete(page);
    CHECK(candidate_lists(store, "filter = 'id <> ''read-only'''") == 0 &&
              candidate_lists(store, NULL) == 16,
          "keep_nothing stored a list");
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* The threshold fit finds the best F1 on the labels (checked against every cut), meets a
 * precision target, and says why it cannot; warnings and ticks; each round keeps the
 * cross-validation measured when it was trained. */
TEST(threshold_fit_warnings_round_metrics)
{
    const char *dir = test_tmpdir("explore-fit");
    vdx_store *store = synthetic_store(dir, model_hash_a, NULL, 0);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "zero") == 0, "create");
    vdx_error err = {{0}};
    vdx_threshold_fit f1 = {.target = VDX_THRESHOLD_FIT_F1};
    int rc = vdx_concept_fit_threshold(book, "zero", &f1, NULL, &err);
    CHECK(rc == -1 && !strcmp(err.message, "fitting a threshold needs positive and negative "
                                           "labels; concept 'zero' has 0 positive and 0 negative"),
          "%s", err.message);
    static char seen[64][32];
    int n_seen = 0;
    for (int round = 0; round < 2; round++) {
        REQUIRE(label_nearest_page(book, seen, &n_seen) == 9, "label");
        REQUIRE(train(book, "zero") == 0, "train");
    }
    /* the round's stored metrics are what a fresh cross-validation says right after it
     * (evaluate reuses them while they hold: a threshold 1e-9 away makes it recompute) */
    cJSON *concept = NULL, *evaluation = NULL;
    REQUIRE(vdx_concept_get(book, "zero", 0, &concept, &err) == 0, "%s", err.message);
    REQUIRE(vdx_concept_set_threshold(book, "zero", 1e-9, &err) == 0, "%s", err.message);
    REQUIRE(vdx_concept_evaluate(book, "zero", NULL, &evaluation, &err) == 0, "%s", err.message);
    const cJSON *last = cJSON_GetArrayItem(cJSON_GetObjectItem(concept, "history"), 1);
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(last, "cross_validation")) &&
              cJSON_Compare(cJSON_GetObjectItem(last, "cross_validation"),
                            cJSON_GetObjectItem(evaluation, "cross_validation"), 1),
          "round 2's metrics %s differ from evaluate's %s",
          cJSON_PrintUnformatted(cJSON_GetObjectItem(last, "cross_validation")),
          cJSON_PrintUnformatted(cJSON_GetObjectItem(evaluation, "cross_validation")));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(evaluation, "labelled")) == 18,
          "18 ticks for 18 labels");
    cJSON_Delete(concept);
    cJSON_Delete(evaluation);

    /* a threshold above everything: the warnings say so */
    REQUIRE(vdx_concept_set_threshold(book, "zero", 1000, &err) == 0, "%s", err.message);
    REQUIRE(vdx_concept_evaluate(book, "zero", NULL, &evaluation, &err) == 0, "%s", err.message);
    char *text = cJSON_PrintUnformatted(cJSON_GetObjectItem(evaluation, "warnings"));
    CHECK(strstr(text, "\"no_positive_above\"") && strstr(text, "\"nothing_above\"") &&
              strstr(text, "is above the threshold"),
          "warnings: %s", text);
    free(text);
    cJSON_Delete(evaluation);

    /* best F1: no cut between two labels' scores does better */
    cJSON *fit = NULL;
    rc = vdx_concept_fit_threshold(book, "zero", &f1, &fit, &err);
    REQUIRE(rc == 0, "%s", err.message);
    double t = cJSON_GetObjectItem(fit, "threshold")->valuedouble;
    double got = cJSON_GetObjectItem(fit, "f1")->valuedouble;
    CHECK(cJSON_GetObjectItem(fit, "previous")->valuedouble == 1000, "previous threshold");
    REQUIRE(vdx_concept_evaluate(book, "zero", NULL, &evaluation, &err) == 0, "%s", err.message);
    const cJSON *ticks = cJSON_GetObjectItem(evaluation, "labelled"), *a, *b;
    CHECK(fabs(cJSON_GetObjectItem(cJSON_GetObjectItem(evaluation, "training"), "f1")
                   ->valuedouble - got) < 1e-12 &&
              cJSON_GetObjectItem(evaluation, "threshold")->valuedouble == t,
          "evaluate at the fitted threshold disagrees: %s", cJSON_PrintUnformatted(fit));
    double best = 0;
    cJSON_ArrayForEach(a, ticks)
    {
        double cut = cJSON_GetObjectItem(a, "score")->valuedouble - 1e-9;
        int tp = 0, fp = 0, fn = 0;
        cJSON_ArrayForEach(b, ticks)
        {
            int predicted = cJSON_GetObjectItem(b, "score")->valuedouble > cut;
            int positive = int_of(b, "label") == 1;
            tp += predicted && positive;
            fp += predicted && !positive;
            fn += !predicted && positive;
        }
        double f = 2.0 * tp / (2.0 * tp + fp + fn);
        best = f > best ? f : best;
    }
    CHECK(got >= best - 1e-12, "fitted F1 %.4f, but a cut gives %.4f", got, best);
    cJSON_Delete(evaluation);
    cJSON_Delete(fit);

    vdx_threshold_fit precise = {.target = VDX_THRESHOLD_FIT_PRECISION, .precision = 1.0};
    rc = vdx_concept_fit_threshold(book, "zero", &precise, &fit, &err);
    CHECK(rc == 0 && cJSON_GetObjectItem(fit, "precision")->valuedouble == 1.0,
          "precision 1: %s", rc == 0 ? cJSON_PrintUnformatted(fit) : err.message);
    cJSON_Delete(fit);
    precise.precision = 1.5;
    rc = vdx_concept_fit_threshold(book, "zero", &precise, NULL, &err);
    CHECK(rc == -1 && !strcmp(err.message, "threshold fit: the target precision must be in "
                                           "(0, 1], not 1.5"),
          "%s", err.message);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* ---- evaluate, score --------------------------------------------------------------- */

TEST(evaluate_and_score)
{
    const char *dir = test_tmpdir("explore-eval");
    vdx_store *store = synthetic_store(dir, model_hash_a, NULL, 0);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "zero") == 0, "create");
    vdx_error err = {{0}};
    cJSON *e = NULL;
    int rc = vdx_concept_evaluate(book, "zero", NULL, &e, &err);
    REQUIRE(rc == 0, "%s", err.message);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(e, "cross_validation")) &&
              cJSON_IsNull(cJSON_GetObjectItem(e, "training_accuracy")),
          "no labels: no estimates");
    cJSON_Delete(e);

    /* 6 positives, 6 negatives from the cluster the prompt likes least: leave-one-out */
    int neg = 2;
    double least = INFINITY;
    for (int c = 2; c < CLUSTERS; c++) {
        double d = 0;
        for (int j = 0; j < DIMS; j++)
            d += (double)centres[c][j] * (centres[0][j] + centres[1][j]);
        if (d < least) {
            least = d;
            neg = c;
        }
    }
    vdx_label_change changes[12];
    for (int i = 0; i < 12; i++)
        changes[i] = (vdx_label_change){ids[(i < 6 ? 0 : neg * PER_CLUSTER) + i], i < 6};
    rc = vdx_concept_label(book, "zero", changes, 12, NULL, &err);
    REQUIRE(rc == 0, "%s", err.message);
    REQUIRE(train(book, "zero") == 0, "train");
    vdx_evaluate_options opts = {.bins = 20};
    rc = vdx_concept_evaluate(book, "zero", &opts, &e, &err);
    REQUIRE(rc == 0, "%s", err.message);
    const cJSON *cv = cJSON_GetObjectItem(e, "cross_validation");
    CHECK(!strcmp(cJSON_GetObjectItem(cv, "method")->valuestring, "leave-one-out") &&
              cJSON_GetObjectItem(cv, "folds")->valueint == 12,
          "method");
    /* the same leave-one-out by hand: refit from the prompt weight (one round = 5 steps)
     * without each label, predict it at threshold 0 */
    float X[12][DIMS], y[12], w0[DIMS], w[DIMS];
    prompt_vector(w0);
    int tp = 0, fp = 0, tn = 0, fn = 0;
    for (int out = 0; out < 12; out++) {
        int m = 0;
        for (int i = 0; i < 12; i++)
            if (i != out) {
                memcpy(X[m], vectors[(i < 6 ? 0 : neg * PER_CLUSTER) + i], sizeof X[m]);
                y[m++] = i < 6;
            }
        memcpy(w, w0, sizeof w);
        rc = vdx_classifier_fit(&X[0][0], y, m, DIMS, w, 5, 0.1f, NULL, &err);
        REQUIRE(rc == 0, "%s", err.message);
        double s = 0;
        for (int j = 0; j < DIMS; j++)
            s += (double)vectors[(out < 6 ? 0 : neg * PER_CLUSTER) + out][j] * w[j];
        tp += s > 0 && out < 6;
        fp += s > 0 && out >= 6;
        tn += s <= 0 && out >= 6;
        fn += s <= 0 && out < 6;
    }
    CHECK(fabs(cJSON_GetObjectItem(cv, "accuracy")->valuedouble - (tp + tn) / 12.0) < 1e-12,
          "LOO accuracy %g, by hand %g", cJSON_GetObjectItem(cv, "accuracy")->valuedouble,
          (tp + tn) / 12.0);
    CHECK(fabs(cJSON_GetObjectItem(cv, "recall")->valuedouble - tp / 6.0) < 1e-12, "recall");
    if (tp + fp)
        CHECK(fabs(cJSON_GetObjectItem(cv, "precision")->valuedouble - (double)tp / (tp + fp)) <
                  1e-12,
              "precision");
    else
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(cv, "precision")), "precision undefined");
    /* training accuracy: the current weight on the 12 labels */
    rc = vdx_concept_weight(book, "zero", w, DIMS, &err);
    REQUIRE(rc == 0, "%s", err.message);
    float all[12][DIMS], labels_y[12];
    for (int i = 0; i < 12; i++) {
        memcpy(all[i], vectors[(i < 6 ? 0 : neg * PER_CLUSTER) + i], sizeof all[i]);
        labels_y[i] = i < 6;
    }
    double want_accuracy = vdx_classifier_accuracy(&all[0][0], labels_y, 12, DIMS, w, 0);
    CHECK(cJSON_GetObjectItem(e, "training_accuracy")->valuedouble == want_accuracy,
          "training accuracy %g, want %g",
          cJSON_GetObjectItem(e, "training_accuracy")->valuedouble, want_accuracy);
    printf("    LOO accuracy %.3f, training accuracy %.3f\n", (tp + tn) / 12.0, want_accuracy);
    /* the clusters are far apart: measured 12 of 12 in both (an accuracy of 0 or 0.5, a
     * classifier that learnt nothing, must not pass) */
    CHECK(tp + tn == 12 && want_accuracy == 1.0, "LOO %d of 12 right, training accuracy %g",
          tp + tn, want_accuracy);
    CHECK(cJSON_GetObjectItem(e, "count")->valueint == N_ITEMS, "count");
    const cJSON *h = cJSON_GetObjectItem(e, "histogram");
    int total = 0, bins = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(h, "counts"))
    {
        total += c->valueint;
        bins++;
    }
    CHECK(bins == 20 && total == N_ITEMS, "histogram %d bins, %d items", bins, total);
    int above = cJSON_GetObjectItem(e, "above_threshold")->valueint;
    cJSON_Delete(e);

    /* score: the threshold list has exactly above_threshold items, descending, labelled */
    vdx_score_request req = {.use_threshold = 1, .threshold = NAN};
    cJSON *s = NULL;
    rc = vdx_concept_score(book, "zero", &req, &s, &err);
    REQUIRE(rc == 0, "%s", err.message);
    const cJSON *items = cJSON_GetObjectItem(s, "items");
    CHECK(cJSON_GetArraySize(items) == above && above > 0, "%d above, %d listed", above,
          cJSON_GetArraySize(items));
    double last = INFINITY;
    int labelled_seen = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, items)
    {
        double score = cJSON_GetObjectItem(item, "score")->valuedouble;
        CHECK(score <= last && score > 0, "order / threshold");
        last = score;
        labelled_seen += cJSON_IsNumber(cJSON_GetObjectItem(item, "label"));
    }
    CHECK(labelled_seen >= 6, "labelled items carry their label");
    cJSON_Delete(s);
    /* top + offset: ranks 11..15 of the full ranking */
    vdx_score_request full = {0}, top = {.top = 5, .offset = 10};
    cJSON *everything = NULL;
    rc = vdx_concept_score(book, "zero", &full, &everything, &err);
    REQUIRE(rc == 0, "%s", err.message);
    rc = vdx_concept_score(book, "zero", &top, &s, &err);
    REQUIRE(rc == 0, "%s", err.message);
    items = cJSON_GetObjectItem(s, "items");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(everything, "items")) == N_ITEMS,
          "full ranking");
    CHECK(cJSON_GetArraySize(items) == 5, "page size");
    for (int i = 0; i < cJSON_GetArraySize(items); i++)
        CHECK(cJSON_Compare(cJSON_GetArrayItem(items, i),
                            cJSON_GetArrayItem(cJSON_GetObjectItem(everything, "items"), 10 + i),
                            1),
              "rank %d differs from the full ranking", 11 + i);
    cJSON_Delete(s);
    cJSON_Delete(everything);
    /* a metadata filter restricts the ranking */
    vdx_score_request filtered = {.where = "cluster = '3'"};
    rc = vdx_concept_score(book, "zero", &filtered, &s, &err);
    REQUIRE(rc == 0, "%s", err.message);
    CHECK(cJSON_GetObjectItem(s, "count")->valueint == PER_CLUSTER, "filtered count");
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(s, "items"))
        CHECK(cluster_of(cJSON_GetObjectItem(item, "id")->valuestring) == 3, "filter leaked");
    cJSON_Delete(s);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* Over 1000 labels the cross-validation uses 1000 of them (5 folds), so its cost stays
 * bounded however many labels the concept has. */
TEST(evaluate_bounds_cross_validation_labels)
{
    const char *dir = test_tmpdir("explore-eval-many");
    enum { EXTRA = 100 };
    static char extra_ids[EXTRA][16];
    static float extra_vectors[EXTRA][DIMS];
    vdx_item extra[EXTRA];
    make_vectors();
    for (int k = 0; k < EXTRA; k++) {
        snprintf(extra_ids[k], sizeof extra_ids[k], "x-%03d", k);
        for (int j = 0; j < DIMS; j++)
            extra_vectors[k][j] = centres[3][j] + 0.2f * (float)gaussian();
        normalize(extra_vectors[k], DIMS);
        extra[k] = (vdx_item){.id = extra_ids[k], .vector = extra_vectors[k]};
    }
    vdx_store *store = synthetic_store(dir, model_hash_a, extra, EXTRA);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "many") == 0, "create");
    enum { LABELS = N_ITEMS + EXTRA };
    static vdx_label_change changes[LABELS];
    for (int k = 0; k < N_ITEMS; k++)
        changes[k] = (vdx_label_change){ids[k], cluster_of(ids[k]) == 0};
    for (int k = 0; k < EXTRA; k++)
        changes[N_ITEMS + k] = (vdx_label_change){extra_ids[k], 0};
    vdx_error err = {{0}};
    int rc = vdx_concept_label(book, "many", changes, LABELS, NULL, &err);
    REQUIRE(rc == 0, "%s", err.message);
    REQUIRE(train(book, "many") == 0, "train");
    cJSON *e = NULL;
    rc = vdx_concept_evaluate(book, "many", NULL, &e, &err);
    REQUIRE(rc == 0, "%s", err.message);
    const cJSON *cv = cJSON_GetObjectItem(e, "cross_validation");
    CHECK(cJSON_GetObjectItem(e, "positive")->valueint == PER_CLUSTER &&
              cJSON_GetObjectItem(e, "negative")->valueint == LABELS - PER_CLUSTER,
          "label counts: %s", cJSON_PrintUnformatted(e));
    CHECK(cJSON_IsObject(cv) && !strcmp(cJSON_GetObjectItem(cv, "method")->valuestring, "5-fold") &&
              cJSON_GetObjectItem(cv, "folds")->valueint == 5 &&
              cJSON_GetObjectItem(cv, "steps")->valueint == 5 &&
              cJSON_IsNumber(cJSON_GetObjectItem(cv, "labels")) &&
              cJSON_GetObjectItem(cv, "labels")->valueint == 1000,
          "cross-validation over 1000 of %d labels: %s", LABELS, cJSON_PrintUnformatted(cv));
    /* accuracy is a count over exactly those 1000 labels */
    double accuracy = cJSON_GetObjectItem(cv, "accuracy")->valuedouble;
    CHECK(fabs(accuracy * 1000 - round(accuracy * 1000)) < 1e-9 && accuracy >= 0 &&
              accuracy <= 1,
          "accuracy %.6f", accuracy);
    cJSON_Delete(e);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* More than 50 labels: 5 folds (label i in fold i mod 5), checked against a hand computation
 * on the hard pair of clusters 0 (positive) and 1 (negative). */
TEST(five_fold_cross_validation)
{
    const char *dir = test_tmpdir("explore-5fold");
    vdx_store *store = synthetic_store(dir, model_hash_a, NULL, 0);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "zero") == 0, "create");
    enum { N = 60 };
    vdx_label_change changes[N];
    int rows[N];
    for (int i = 0; i < N; i++) {
        rows[i] = (i % 2 ? PER_CLUSTER : 0) + i / 2;
        changes[i] = (vdx_label_change){ids[rows[i]], i % 2 == 0};
    }
    vdx_error err = {{0}};
    int rc = vdx_concept_label(book, "zero", changes, N, NULL, &err);
    REQUIRE(rc == 0, "%s", err.message);
    REQUIRE(train(book, "zero") == 0 && train(book, "zero") == 0, "two rounds");
    /* a threshold between the two clusters' scores, so that predictions differ */
    const double threshold = 0.72;
    rc = vdx_concept_set_threshold(book, "zero", threshold, &err);
    REQUIRE(rc == 0, "%s", err.message);
    cJSON *e = NULL;
    rc = vdx_concept_evaluate(book, "zero", NULL, &e, &err);
    REQUIRE(rc == 0, "%s", err.message);
    const cJSON *cv = cJSON_GetObjectItem(e, "cross_validation");
    CHECK(!strcmp(cJSON_GetObjectItem(cv, "method")->valuestring, "5-fold") &&
              cJSON_GetObjectItem(cv, "folds")->valueint == 5 &&
              cJSON_GetObjectItem(cv, "steps")->valueint == 10,
          "%s", cJSON_PrintUnformatted(cv));
    static float X[N][DIMS];
    float y[N], w0[DIMS], w[DIMS];
    prompt_vector(w0);
    int tp = 0, fp = 0, fn = 0, correct = 0;
    for (int fold = 0; fold < 5; fold++) {
        int m = 0;
        for (int i = 0; i < N; i++)
            if (i % 5 != fold) {
                memcpy(X[m], vectors[rows[i]], sizeof X[m]);
                y[m++] = i % 2 == 0;
            }
        memcpy(w, w0, sizeof w);
        rc = vdx_classifier_fit(&X[0][0], y, m, DIMS, w, 10, 0.1f, NULL, &err);
        REQUIRE(rc == 0, "%s", err.message);
        for (int i = fold; i < N; i += 5) {
            double score = 0;
            for (int j = 0; j < DIMS; j++)
                score += (double)vectors[rows[i]][j] * w[j];
            int predicted = score > threshold, actual = i % 2 == 0;
            tp += predicted && actual;
            fp += predicted && !actual;
            fn += !predicted && actual;
            correct += predicted == actual;
        }
    }
    printf("    5-fold: accuracy %.3f, tp %d fp %d fn %d\n", correct / (double)N, tp, fp, fn);
    /* measured 59 of 60 (tp 29, fp 0, fn 1) on this hard pair: a classifier that learnt
     * nothing (30 of 60) or an inverted one must fail */
    CHECK(correct >= 57, "5-fold: %d of %d right, measured 59", correct, N);
    CHECK(fabs(cJSON_GetObjectItem(cv, "accuracy")->valuedouble - correct / (double)N) < 1e-12,
          "accuracy %g, by hand %g", cJSON_GetObjectItem(cv, "accuracy")->valuedouble,
          correct / (double)N);
    CHECK(fabs(cJSON_GetObjectItem(cv, "recall")->valuedouble - tp / (double)(tp + fn)) < 1e-12,
          "recall");
    if (tp + fp)
        CHECK(fabs(cJSON_GetObjectItem(cv, "precision")->valuedouble -
                   tp / (double)(tp + fp)) < 1e-12,
              "precision");
    cJSON_Delete(e);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* Two books on one collection (as two processes would have): no cached state. */
TEST(two_books_share_one_database)
{
    const char *dir = test_tmpdir("explore-two-books");
    vdx_store *store = synthetic_store(dir, model_hash_a, NULL, 0);
    REQUIRE(store, "store");
    vdx_store *store2 = open_store(dir, "synth", model_hash_a, 0);
    REQUIRE(store2, "second store");
    vdx_concepts *a = open_book(store), *b = open_book(store2);
    REQUIRE(a && b, "books");
    REQUIRE(create_concept(a, "zero") == 0, "create in a");
    vdx_error err = {{0}};
    vdx_label_change changes[2] = {{"c0-001", 1}, {"c3-001", 0}};
    int rc = vdx_concept_label(b, "zero", changes, 2, NULL, &err);
    CHECK(rc == 0, "label in b: %s", err.message);
    rc = vdx_concept_train(a, "zero", 0, 0, NULL, &err);
    CHECK(rc == 0, "train in a: %s", err.message);
    cJSON *c = NULL;
    rc = vdx_concept_get(b, "zero", 0, &c, &err);
    CHECK(rc == 0 && cJSON_GetObjectItem(c, "rounds")->valueint == 1 &&
              cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(c, "history"), 0),
                                  "labels_added")->valueint == 2,
          "b sees a's round");
    cJSON_Delete(c);
    rc = vdx_concept_delete(a, "zero", &err);
    CHECK(rc == 0, "%s", err.message);
    rc = vdx_concept_label(b, "zero", changes, 1, NULL, &err);
    CHECK(rc == -1 && !strcmp(err.message, "no concept named 'zero'"), "%s", err.message);
    vdx_concepts_close(a);
    vdx_concepts_close(b);
    vdx_store_close(store2);
    vdx_store_close(store);
}

/* ---- CRUD and errors ---------------------------------------------------------------- */

TEST(crud_and_exact_errors)
{
    const char *dir = test_tmpdir("explore-crud");
    vdx_item broken = {.id = "broken", .url = "https://example.org/broken.jpg",
                       .failure = "cannot decode"};
    vdx_store *store = synthetic_store(dir, model_hash_a, &broken, 1);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "zero") == 0, "create");
    vdx_error err = {{0}};
    float w[DIMS];
    prompt_vector(w);
    vdx_concept_spec spec = {.name = "zero", .text_vector = w};
    CHECK(vdx_concept_create(book, &spec, NULL, &err) == -1 &&
              !strcmp(err.message, "a concept named 'zero' already exists"),
          "%s", err.message);
    spec.name = "bad\nname";
    CHECK(vdx_concept_create(book, &spec, NULL, &err) == -1 &&
              !strcmp(err.message, "concept name contains a control character (byte 3)"),
          "%s", err.message);
    spec.name = "nothing";
    spec.text_vector = NULL;
    CHECK(vdx_concept_create(book, &spec, NULL, &err) == -1 &&
              !strcmp(err.message, "concept 'nothing' needs a prompt or example items to start "
                                   "from"),
          "%s", err.message);
    vdx_model_identity other = identity(model_hash_b);
    spec.text_vector = w;
    spec.text_model = &other;
    CHECK(vdx_concept_create(book, &spec, NULL, &err) == -1 &&
              strstr(err.message, "the prompt's text vector comes from model synthetic-b"),
          "%s", err.message);
    const char *const unknown_examples[] = {"c0-001", "ghost"};
    vdx_concept_spec by_examples = {.name = "ex", .example_ids = unknown_examples,
                                    .n_examples = 2};
    CHECK(vdx_concept_create(book, &by_examples, NULL, &err) == -1 &&
              !strcmp(err.message, "unknown item ids: ghost"),
          "%s", err.message);

    /* unknown ids: refused all together, nothing changed */
    vdx_label_change changes[3] = {{"c0-001", 1}, {"nope-1", 0}, {"nope-2", 1}};
    CHECK(vdx_concept_label(book, "zero", changes, 3, NULL, &err) == -1 &&
              !strcmp(err.message, "unknown item ids: nope-1, nope-2"),
          "%s", err.message);
    cJSON *labels = NULL;
    vdx_concept_labels(book, "zero", &labels, &err);
    CHECK(cJSON_GetArraySize(labels) == 0, "a refused batch changed labels");
    cJSON_Delete(labels);
    vdx_label_change failed_item = {"broken", 1};
    CHECK(vdx_concept_label(book, "zero", &failed_item, 1, NULL, &err) == -1 &&
              !strcmp(err.message, "items without a vector (their ingest failed): broken"),
          "%s", err.message);
    vdx_label_change bad_value = {"c0-001", 2};
    CHECK(vdx_concept_label(book, "zero", &bad_value, 1, NULL, &err) == -1 &&
              !strcmp(err.message, "label change 1 (item 'c0-001'): label 2 is not 1, 0 or -1"),
          "%s", err.message);
    CHECK(vdx_concept_train(book, "zero", 0, 0, NULL, &err) == -1 &&
              !strcmp(err.message, "concept 'zero' has no labels to train on"),
          "%s", err.message);

    /* an id given twice keeps its last change; relabelling to the same value is a no-op */
    vdx_label_change twice[3] = {{"c0-001", 1}, {"c0-002", 1}, {"c0-001", 0}};
    cJSON *result = NULL;
    int rc = vdx_concept_label(book, "zero", twice, 3, &result, &err);
    REQUIRE(rc == 0, "%s", err.message);
    CHECK(cJSON_GetObjectItem(result, "changed")->valueint == 2 &&
              cJSON_GetObjectItem(result, "positive")->valueint == 1 &&
              cJSON_GetObjectItem(result, "negative")->valueint == 1,
          "%s", cJSON_PrintUnformatted(result));
    cJSON_Delete(result);
    rc = vdx_concept_label(book, "zero", twice + 1, 1, &result, &err);
    CHECK(rc == 0 && cJSON_GetObjectItem(result, "changed")->valueint == 0, "no-op relabel");
    cJSON_Delete(result);

    /* copy, rename, list, delete */
    rc = vdx_concept_copy(book, "zero", "zero copy", &err);
    CHECK(rc == 0, "%s", err.message);
    rc = vdx_concept_rename(book, "zero copy", "renamed", &err);
    CHECK(rc == 0, "%s", err.message);
    CHECK(vdx_concept_rename(book, "renamed", "zero", &err) == -1 &&
              !strcmp(err.message, "a concept named 'zero' already exists"),
          "%s", err.message);
    cJSON *list = NULL;
    rc = vdx_concept_list(book, &list, &err);
    CHECK(rc == 0 && cJSON_GetArraySize(list) == 2 &&
              !strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "name")->valuestring,
                      "renamed") &&
              cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "positive")->valueint == 1,
          "list");
    cJSON_Delete(list);
    rc = vdx_concept_delete(book, "renamed", &err);
    CHECK(rc == 0, "%s", err.message);
    vdx_label_change one = {"c0-003", 1};
    CHECK(vdx_concept_label(book, "renamed", &one, 1, NULL, &err) == -1 &&
              !strcmp(err.message, "no concept named 'renamed'"),
          "labelling a deleted concept: %s", err.message);
    CHECK(vdx_concept_delete(book, "renamed", &err) == -1 &&
              !strcmp(err.message, "no concept named 'renamed'"),
          "%s", err.message);
    /* the original kept its labels */
    rc = vdx_concept_labels(book, "zero", &labels, &err);
    CHECK(rc == 0 && cJSON_GetArraySize(labels) == 2, "labels of the original");
    cJSON_Delete(labels);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* ---- export / import ---------------------------------------------------------------- */

/* Splits RFC 4180 CSV into fields (rows end with CRLF); returns the number of rows. */
static int parse_csv(const char *text, char fields[][8][128], int max_rows)
{
    int row = 0, col = 0;
    size_t len = 0;
    const char *p = text;
    while (*p && row < max_rows) {
        if (*p == '"') {
            p++;
            while (*p && !(*p == '"' && p[1] != '"')) {
                if (*p == '"')
                    p++;
                fields[row][col][len++] = *p++;
            }
            p++;
        } else if (*p == ',') {
            fields[row][col][len] = 0;
            col++;
            len = 0;
            p++;
        } else if (*p == '\r' && p[1] == '\n') {
            fields[row][col][len] = 0;
            row++;
            col = 0;
            len = 0;
            p += 2;
        } else {
            fields[row][col][len++] = *p++;
        }
    }
    return row;
}

TEST(exports_parse_back_and_import)
{
    make_vectors();
    vdx_item odd = {.id = "odd,\"id\"", .url = "https://example.org/a,b.jpg",
                    .vector = vectors[3]};
    const char *dir = test_tmpdir("explore-export");
    vdx_store *store = synthetic_store(dir, model_hash_a, &odd, 1);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "zero") == 0, "create");
    vdx_error err = {{0}};
    vdx_label_change changes[3] = {{"odd,\"id\"", 1}, {"c0-010", 1}, {"c5-010", 0}};
    int rc = vdx_concept_label(book, "zero", changes, 3, NULL, &err);
    REQUIRE(rc == 0, "%s", err.message);
    REQUIRE(train(book, "zero") == 0, "train");

    char *text = NULL;
    rc = vdx_concept_export_labels(book, "zero", VDX_EXPORT_CSV, &text, NULL, &err);
    REQUIRE(rc == 0, "%s", err.message);
    static char fields[16][8][128];
    int rows = parse_csv(text, fields, 16);
    CHECK(rows == 4, "csv rows %d:\n%s", rows, text);
    CHECK(!strcmp(fields[0][0], "id") && !strcmp(fields[0][3], "time"), "header");
    CHECK(!strcmp(fields[1][0], "odd,\"id\"") &&
              !strcmp(fields[1][1], "https://example.org/a,b.jpg") && !strcmp(fields[1][2], "1"),
          "quoted row: %s|%s|%s", fields[1][0], fields[1][1], fields[1][2]);
    CHECK(!strcmp(fields[3][0], "c5-010") && !strcmp(fields[3][2], "0") &&
              strlen(fields[3][3]) == 20,
          "last row");
    free(text);

    rc = vdx_concept_export_labels(book, "zero", VDX_EXPORT_JSONL, &text, NULL, &err);
    REQUIRE(rc == 0, "%s", err.message);
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *l = cJSON_Parse(line);
        CHECK(l && cJSON_IsString(cJSON_GetObjectItem(l, "id")) &&
                  cJSON_IsNumber(cJSON_GetObjectItem(l, "label")) &&
                  cJSON_IsString(cJSON_GetObjectItem(l, "url")) &&
                  cJSON_IsString(cJSON_GetObjectItem(l, "time")),
              "jsonl line %s", line);
        if (lines == 0)
            CHECK(!strcmp(cJSON_GetObjectItem(l, "id")->valuestring, "odd,\"id\""), "first");
        cJSON_Delete(l);
        lines++;
    }
    CHECK(lines == 3, "%d jsonl lines", lines);
    free(text);

    /* scores above 0: as many rows as score's above_threshold, CSV and JSONL agree */
    cJSON *s = NULL;
    vdx_score_request all = {0};
    rc = vdx_concept_score(book, "zero", &all, &s, &err);
    REQUIRE(rc == 0, "%s", err.message);
    int above = cJSON_GetObjectItem(s, "above_threshold")->valueint;
    cJSON_Delete(s);
    rc = vdx_concept_export_scores(book, "zero", NAN, VDX_EXPORT_CSV, &text, NULL, &err);
    REQUIRE(rc == 0, "%s", err.message);
    int csv_rows = 0;
    for (const char *p = text; (p = strstr(p, "\r\n")); p += 2)
        csv_rows++;
    CHECK(csv_rows == above + 1, "%d csv rows for %d above", csv_rows, above);
    CHECK(!strncmp(text, "rank,id,url,score,probability\r\n1,", 33), "scores header");
    free(text);
    rc = vdx_concept_export_scores(book, "zero", 0.5, VDX_EXPORT_JSONL, &text, NULL, &err);
    REQUIRE(rc == 0, "%s", err.message);
    cJSON *firstline = cJSON_Parse(text);
    CHECK(firstline && cJSON_GetObjectItem(firstline, "score")->valuedouble > 0.5 &&
              cJSON_GetObjectItem(firstline, "rank")->valueint == 1,
          "scores jsonl");
    cJSON_Delete(firstline);
    free(text);

    /* the classifier: into a second collection of the same model, then refused by another */
    cJSON *classifier = NULL;
    rc = vdx_concept_export_classifier(book, "zero", &classifier, &err);
    REQUIRE(rc == 0, "%s", err.message);
    char *json = cJSON_Print(classifier);
    float w[DIMS];
    vdx_concept_weight(book, "zero", w, DIMS, &err);

    vdx_store *same = open_store(dir, "same-model", model_hash_a, 1);
    vdx_concepts *same_book = same ? open_book(same) : NULL;
    REQUIRE(same_book, "second collection");
    cJSON *imported = NULL;
    rc = vdx_concept_import_classifier(same_book, json, strlen(json), NULL, &imported, &err);
    CHECK(rc == 0, "import: %s", err.message);
    float w2[DIMS];
    rc = vdx_concept_weight(same_book, "zero", w2, DIMS, &err);
    CHECK(rc == 0 && !memcmp(w, w2, sizeof w), "imported weight differs");
    CHECK(imported && cJSON_GetObjectItem(imported, "rounds")->valueint == 1 &&
              cJSON_GetObjectItem(imported, "positive")->valueint == 0,
          "imported: rounds kept, no labels");
    /* the round's calibration travels with it: the same probabilities */
    const cJSON *cal_out = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(classifier, "history"), 0), "calibration");
    const cJSON *cal_in = cJSON_GetObjectItem(imported, "calibration");
    CHECK(cJSON_IsObject(cal_out) && cJSON_IsObject(cal_in) &&
              number_of(cal_in, "a") == number_of(cal_out, "a") &&
              number_of(cal_in, "b") == number_of(cal_out, "b"),
          "calibration exported %s, imported %s", cJSON_PrintUnformatted(cal_out),
          cJSON_PrintUnformatted(cal_in));
    cJSON_Delete(imported);
    rc = vdx_concept_import_classifier(same_book, json, strlen(json), NULL, NULL, &err);
    CHECK(rc == -1 && !strcmp(err.message, "a concept named 'zero' already exists"), "%s",
          err.message);
    rc = vdx_concept_import_classifier(same_book, json, strlen(json), "zero 2", NULL, &err);
    CHECK(rc == 0, "import under another name: %s", err.message);
    rc = vdx_concept_undo_round(same_book, "zero 2", 0, NULL, &err);
    CHECK(rc == 0, "undo an imported round: %s", err.message);
    float w0[DIMS];
    prompt_vector(w0);
    vdx_concept_weight(same_book, "zero 2", w2, DIMS, &err);
    CHECK(!memcmp(w0, w2, sizeof w0), "undo of an imported round restores its initial weight");

    vdx_store *other = open_store(dir, "other-model", model_hash_b, 1);
    vdx_concepts *other_book = other ? open_book(other) : NULL;
    REQUIRE(other_book, "other collection");
    rc = vdx_concept_import_classifier(other_book, json, strlen(json), NULL, NULL, &err);
    char want[1024];
    snprintf(want, sizeof want,
             "classifier was trained on vectors of model synthetic-a (fingerprint %s, 32 "
             "dims); this collection holds model synthetic-b (fingerprint %s, 32 dims)",
             model_hash_a, model_hash_b);
    CHECK(rc == -1 && !strcmp(err.message, want) && err.kind == VDX_ERR_MODEL_MISMATCH,
          "%s (%s)", err.message, vdx_error_kind_name(err.kind));

    /* malformed documents, with the reason */
    static const struct {
        const char *json, *message;
    } bad[] = {
        {"{\"format\": \"vdx-classifier\",\n \"version\": 1,, }",
         "classifier: not valid JSON at line 2, column 16 (byte 44)"},
        {"[1, 2]", "classifier: the document is not a JSON object"},
        {"{\"format\": \"other\", \"version\": 1}",
         "classifier: \"format\" is \"other\", expected \"vdx-classifier\""},
        {"{\"format\": \"vdx-classifier\", \"version\": 1}",
         "classifier: the document has no \"name\""},
        {"{\"format\": \"vdx-classifier\", \"version\": 2}",
         "classifier: version 2 is not supported (this vdx reads 1)"},
        {"{} trailing", "classifier: unexpected text after the JSON document (byte 3)"},
        /* what no user's JSON may hold: a \u0000 would cut the name short ("imp"), bytes
         * that are not UTF-8 would be stored and served as they are */
        {"{\"name\": \"imp\\u0000x\"}",
         "classifier: the document holds a NUL character (\\u0000) in a string at byte 13"},
        {"{\"name\": \"p\xff\xfe\"}", "classifier: the document is not valid UTF-8 at byte 11"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = vdx_concept_import_classifier(same_book, bad[i].json, strlen(bad[i].json), "x",
                                           NULL, &err);
        CHECK(rc == -1 && !strcmp(err.message, bad[i].message), "case %zu: %s", i, err.message);
    }
    /* a zero weight could never be trained */
    cJSON *zero = cJSON_Duplicate(classifier, 1);
    cJSON_ReplaceItemInObject(zero, "weight", cJSON_CreateFloatArray((float[DIMS]){0}, DIMS));
    char *zero_json = cJSON_Print(zero);
    rc = vdx_concept_import_classifier(same_book, zero_json, strlen(zero_json), "x", NULL, &err);
    CHECK(rc == -1 && !strcmp(err.message, "classifier: the document \"weight\" is the zero "
                                           "vector"),
          "%s", err.message);
    free(zero_json);
    cJSON_Delete(zero);
    /* a weight of floats near FLT_MAX: every score would overflow to infinity */
    cJSON *huge = cJSON_Duplicate(classifier, 1);
    float big[DIMS];
    for (int j = 0; j < DIMS; j++)
        big[j] = 3e38f;
    cJSON_ReplaceItemInObject(huge, "weight", cJSON_CreateFloatArray(big, DIMS));
    char *huge_json = cJSON_Print(huge);
    rc = vdx_concept_import_classifier(same_book, huge_json, strlen(huge_json), "x", NULL, &err);
    CHECK(rc == -1 && !strcmp(err.message, "classifier: the document \"weight\" has length "
                                           "1.7e+39, more than 1e+06: not a classifier's weight "
                                           "(scores would overflow)"),
          "%s", err.message);
    free(huge_json);
    cJSON_Delete(huge);
    /* a weight of the wrong length */
    cJSON *weight = cJSON_GetObjectItem(classifier, "weight");
    cJSON_DeleteItemFromArray(weight, 0);
    char *short_json = cJSON_Print(classifier);
    rc = vdx_concept_import_classifier(same_book, short_json, strlen(short_json), "x", NULL,
                                       &err);
    CHECK(rc == -1 && !strcmp(err.message, "classifier: the document \"weight\" has 31 numbers, "
                                           "the model has 32 dims"),
          "%s", err.message);
    free(short_json);
    free(json);
    cJSON_Delete(classifier);
    vdx_concepts_close(other_book);
    vdx_store_close(other);
    vdx_concepts_close(same_book);
    vdx_store_close(same);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* Found by fuzz_classifier_import: a refusal quoted the document's "format" whole, so a
 * long one was cut at the 1 KiB message limit inside a UTF-8 character (messages reach
 * JSON replies); the fingerprint was compared after its copy was cut to 64 bytes, so this
 * collection's fingerprint followed by anything passed for it. */
TEST(import_quotes_safely_and_compares_whole_fingerprints)
{
    const char *dir = test_tmpdir("import-echo");
    vdx_store *store = open_store(dir, "echo", model_hash_a, 1);
    vdx_concepts *book = store ? open_book(store) : NULL;
    REQUIRE(book, "book");
    vdx_error err = {{0}};
    char json[2048] = "{\"format\": \"x", want[256] = "classifier: \"format\" is \"x";
    for (int i = 0; i < 600; i++)
        strcat(json, "\xc3\xa9");
    strcat(json, "\", \"version\": 1}");
    for (int i = 0; i < 31; i++) /* 63 bytes: a 32nd é would end at byte 65 */
        strcat(want, "\xc3\xa9");
    strcat(want, "\", expected \"vdx-classifier\"");
    int rc = vdx_concept_import_classifier(book, json, strlen(json), "x", NULL, &err);
    CHECK(rc == -1 && !strcmp(err.message, want), "%s", err.message);

    snprintf(json, sizeof json,
             "{\"format\": \"vdx-classifier\", \"version\": 1, \"name\": \"n\", \"model\": "
             "{\"name\": \"synthetic-a\", \"fingerprint\": \"%s-other\", \"dims\": %d}}",
             model_hash_a, DIMS);
    rc = vdx_concept_import_classifier(book, json, strlen(json), "x", NULL, &err);
    CHECK(rc == -1 && !strcmp(err.message, "classifier: \"model\" \"fingerprint\" is 70 bytes "
                                           "long, not a model fingerprint (at most 64)") &&
              err.kind == VDX_ERR_INVALID,
          "%s", err.message);
    cJSON *list = NULL;
    CHECK(vdx_concept_list(book, &list, &err) == 0 && cJSON_GetArraySize(list) == 0,
          "no concept imported");
    cJSON_Delete(list);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* ---- threads ------------------------------------------------------------------------ */

typedef struct worker {
    vdx_concepts *book;
    int index, failures;
} worker;

static void *label_and_train(void *arg)
{
    worker *w = arg;
    vdx_error err = {{0}};
    for (int i = 0; i < 10; i++) {
        vdx_label_change change = {ids[w->index * PER_CLUSTER + i], w->index == 0};
        cJSON *out = NULL;
        if (vdx_concept_label(w->book, "zero", &change, 1, NULL, &err) != 0 ||
            vdx_concept_train(w->book, "zero", 0, 0, &out, &err) != 0)
            w->failures++;
        cJSON_Delete(out);
        vdx_candidates_request req = {.k = 9};
        if (vdx_concept_candidates(w->book, "zero", &req, &out, &err) != 0)
            w->failures++;
        cJSON_Delete(out);
    }
    return NULL;
}

TEST(concurrent_threads_share_a_book)
{
    const char *dir = test_tmpdir("explore-threads");
    vdx_store *store = synthetic_store(dir, model_hash_a, NULL, 0);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "zero") == 0, "create");
    pthread_t threads[4];
    worker workers[4];
    for (int t = 0; t < 4; t++) {
        workers[t] = (worker){book, t, 0};
        pthread_create(&threads[t], NULL, label_and_train, &workers[t]);
    }
    int failures = 0;
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        failures += workers[t].failures;
    }
    CHECK(failures == 0, "%d operations failed", failures);
    cJSON *c = NULL;
    vdx_error err = {{0}};
    int rc = vdx_concept_get(book, "zero", 0, &c, &err);
    CHECK(rc == 0 && cJSON_GetObjectItem(c, "rounds")->valueint == 40 &&
              cJSON_GetObjectItem(c, "positive")->valueint == 10 &&
              cJSON_GetObjectItem(c, "negative")->valueint == 30,
          "after the threads: %s", rc == 0 ? cJSON_PrintUnformatted(c) : err.message);
    cJSON_Delete(c);
    vdx_concepts_close(book);
    vdx_store_close(store);
}


/* ---- calibration and the audit sample ----------------------------------------------- */


/* Three rounds of the loop, then the audit: before audit labels the estimates are
 * "unknown" (null, not a number); 20 audit items are drawn from the unlabelled items,
 * stratified by score (7 from the top 1%, 7 from the next 9%, 6 from the rest, each with
 * its stratum's size over its draws as weight), kept until labelled (asking again shows the same ones), never offered by
 * another mode's labels; once labelled by ground truth, the estimates' intervals hold
 * the true number of positives (120), precision and recall at the threshold; every
 * probability shown is the round's calibration of the score; the calibrated threshold
 * fit reaches its expected precision. */
TEST(calibration_and_audit_estimates)
{
    const char *dir = test_tmpdir("explore-audit");
    vdx_store *store = synthetic_store(dir, model_hash_a, NULL, 0);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    /* the seed's trainer set explicitly: the audit labels below would switch an auto
     * concept, and the suggestion to switch is for this one */
    REQUIRE(book && create_concept_trained_by(book, "zero", "seed") == 0, "create");
    static char seen[128][32];
    int n_seen = 0;
    for (int round = 0; round < 3; round++) {
        REQUIRE(label_nearest_page(book, seen, &n_seen) == 9, "label");
        REQUIRE(train(book, "zero") == 0, "train");
    }
    vdx_error err = {{0}};
    cJSON *ev = NULL;
    REQUIRE(vdx_concept_evaluate(book, "zero", NULL, &ev, &err) == 0, "%s", err.message);
    const cJSON *est = cJSON_GetObjectItem(ev, "estimates");
    const cJSON *cal = cJSON_GetObjectItem(ev, "calibration");
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(est, "status")), "unknown") &&
              cJSON_IsNull(cJSON_GetObjectItem(est, "positives")) &&
              cJSON_IsNull(cJSON_GetObjectItem(est, "precision")) &&
              cJSON_IsNull(cJSON_GetObjectItem(est, "recall")),
          "estimates before the audit: %s", cJSON_PrintUnformatted(est));
    double a = number_of(cal, "a"), b = number_of(cal, "b");
    CHECK(a > 0 && isfinite(b) && number_of(cal, "round") == 3, "calibration %s",
          cJSON_PrintUnformatted(cal));
    /* the calibrated histogram counts every item */
    const cJSON *ph = cJSON_GetObjectItem(ev, "probability_histogram"), *c;
    int total = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ph, "counts")) total += c->valueint;
    CHECK(total == N_ITEMS && number_of(ph, "min") == 0 && number_of(ph, "max") == 1,
          "probability histogram holds %d of %d items", total, N_ITEMS);
    cJSON_Delete(ev);

    /* scores and candidates show the calibrated probability */
    vdx_score_request sreq = {.top = 5};
    cJSON *scores = NULL;
    REQUIRE(vdx_concept_score(book, "zero", &sreq, &scores, &err) == 0, "%s", err.message);
    const cJSON *item;
    int calibrated_ok = 1;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(scores, "items"))
    {
        double s = number_of(item, "score"), p = number_of(item, "probability");
        calibrated_ok &= fabs(p - 1 / (1 + exp(-(a * s + b)))) < 1e-12;
    }
    CHECK(calibrated_ok, "score probabilities are not sigmoid(a s + b): %s",
          cJSON_PrintUnformatted(scores));
    cJSON_Delete(scores);

    /* the audit sample: 20 unlabelled items, the same ones until labelled */
    cJSON *audit = candidates(book, "zero", VDX_CANDIDATES_AUDIT, 0, 0);
    REQUIRE(audit, "audit candidates");
    cJSON *again = candidates(book, "zero", VDX_CANDIDATES_AUDIT, 0, 0);
    const cJSON *items = cJSON_GetObjectItem(audit, "items");
    int unlabelled = 1;
    cJSON_ArrayForEach(item, items)
    {
        for (int i = 0; i < n_seen; i++)
            unlabelled &= strcmp(seen[i], cJSON_GetObjectItem(item, "id")->valuestring) != 0;
        double s = number_of(item, "score"), p = number_of(item, "probability");
        calibrated_ok &= fabs(p - 1 / (1 + exp(-(a * s + b)))) < 1e-12;
    }
    CHECK(cJSON_GetArraySize(items) == 20 && unlabelled && calibrated_ok &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(audit, "mode")), "audit") &&
              number_of(cJSON_GetObjectItem(audit, "audit"), "drawn") == 20 &&
              number_of(audit, "unlabelled") == N_ITEMS - 27 - 20,
          "audit page: %s", cJSON_PrintUnformatted(audit));
    CHECK(cJSON_Compare(items, cJSON_GetObjectItem(again, "items"), 1),
          "asking again changed the audit sample");
    {
        /* the pool of N_ITEMS - 27 items in strata of ceil(1%), ceil(10%) - ceil(1%), rest */
        size_t pool = N_ITEMS - 27, top = (pool + 99) / 100, next = (pool + 9) / 10 - top;
        double weight_sum = 0, lowest_top = INFINITY, highest_rest = -INFINITY;
        int in_top = 0, in_next = 0, in_rest = 0;
        cJSON_ArrayForEach(item, items)
        {
            double wt = number_of(item, "weight"), s = number_of(item, "score");
            weight_sum += wt;
            if (fabs(wt - top / 7.0) < 1e-9) {
                in_top++;
                lowest_top = fmin(lowest_top, s);
            } else if (fabs(wt - next / 7.0) < 1e-9) {
                in_next++;
            } else if (fabs(wt - (pool - top - next) / 6.0) < 1e-9) {
                in_rest++;
                highest_rest = fmax(highest_rest, s);
            }
        }
        CHECK(fabs(weight_sum - (double)pool) < 1e-6 && in_top == 7 && in_next == 7 &&
                  in_rest == 6 && lowest_top > highest_rest,
              "audit strata: weights sum to %g of %zu; %d / %d / %d drawn; top from %g, rest "
              "up to %g",
              weight_sum, pool, in_top, in_next, in_rest, lowest_top, highest_rest);
    }
    cJSON_Delete(again);
    vdx_candidates_request filtered = {.mode = VDX_CANDIDATES_AUDIT, .where = "cluster = '1'"};
    cJSON *none = NULL;
    int rc = vdx_concept_candidates(book, "zero", &filtered, &none, &err);
    CHECK(rc == -1 && !strcmp(err.message, "the audit sample is drawn from the whole collection: "
                                           "it takes no filter"),
          "%s", err.message);
    int in_sample = label_page(book, "zero", audit, seen, &n_seen);
    REQUIRE(in_sample == 20, "label the audit sample");
    cJSON_Delete(audit);

    REQUIRE(vdx_concept_evaluate(book, "zero", NULL, &ev, &err) == 0, "%s", err.message);
    est = cJSON_GetObjectItem(ev, "estimates");
    /* the truth at the threshold, from the collection's scores */
    vdx_score_request all = {0};
    REQUIRE(vdx_concept_score(book, "zero", &all, &scores, &err) == 0, "%s", err.message);
    double threshold = number_of(ev, "threshold");
    int tp = 0, above = 0;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(scores, "items"))
    {
        int is_above = number_of(item, "score") > threshold;
        above += is_above;
        tp += is_above && cluster_of(cJSON_GetObjectItem(item, "id")->valuestring) == 0;
    }
    cJSON_Delete(scores);
    const cJSON *pos = cJSON_GetObjectItem(est, "positives");
    const cJSON *prec = cJSON_GetObjectItem(est, "precision");
    const cJSON *rec = cJSON_GetObjectItem(est, "recall");
    double true_precision = above ? (double)tp / above : NAN, true_recall = tp / 120.0;
    printf("    positives %.1f [%.1f, %.1f] (truth 120); precision %.3f (truth %.3f); "
           "recall %.3f (truth %.3f)\n",
           number_of(pos, "value"), number_of(pos, "lo"), number_of(pos, "hi"),
           number_of(prec, "value"), true_precision, number_of(rec, "value"), true_recall);
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(est, "status")), "estimated") &&
              number_of(est, "audit_labels") == 20 && number_of(est, "census_labels") == 27 &&
              fabs(number_of(est, "weight") - (N_ITEMS - 27) / 20.0) < 1e-9,
          "estimates: %s", cJSON_PrintUnformatted(est));
    CHECK(number_of(pos, "lo") <= 120 && 120 <= number_of(pos, "hi") &&
              number_of(rec, "lo") <= true_recall && true_recall <= number_of(rec, "hi") &&
              (!above || (number_of(prec, "lo") <= true_precision &&
                          true_precision <= number_of(prec, "hi"))),
          "the intervals miss the truth: %s", cJSON_PrintUnformatted(est));
    char *before = cJSON_PrintUnformatted(est);
    cJSON_Delete(ev);
    {
        /* a hand-edited book whose audit item has an infinite or negative design weight
         * is refused with the item named, not turned into NaN estimates; restored, the
         * estimates are those of before */
        char db_path[4200], item[64] = "";
        snprintf(db_path, sizeof db_path, "%s/concepts.db", vdx_store_dir(store));
        sqlite3 *db = NULL;
        sqlite3_stmt *first = NULL;
        REQUIRE(sqlite3_open(db_path, &db) == SQLITE_OK, "%s", db_path);
        REQUIRE(sqlite3_prepare_v2(db, "SELECT item FROM audit_items ORDER BY drawn LIMIT 1", -1,
                                   &first, NULL) == SQLITE_OK &&
                    sqlite3_step(first) == SQLITE_ROW,
                "%s", sqlite3_errmsg(db));
        snprintf(item, sizeof item, "%s", (const char *)sqlite3_column_text(first, 0));
        sqlite3_finalize(first);
        const char *damage[] = {"9e999", "-3"}, *shown[] = {"inf", "-3"};
        for (int d = 0; d < 2; d++) {
            char sql[256];
            snprintf(sql, sizeof sql,
                     "CREATE TEMP TABLE IF NOT EXISTS kept AS SELECT item, weight FROM audit_items;"
                     " UPDATE audit_items SET weight = %s WHERE item = '%s'",
                     damage[d], item);
            REQUIRE(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));
            char want[256];
            snprintf(want, sizeof want,
                     "concepts.db: audit item '%s' of concept 'zero' has the design weight %s; "
                     "a drawn item's weight is a positive number (its stratum's size over its "
                     "draws)",
                     item, shown[d]);
            ev = NULL;
            int refused = vdx_concept_evaluate(book, "zero", NULL, &ev, &err);
            CHECK(refused == -1 && !ev && !strcmp(err.message, want), "evaluate with weight %s: %s",
                  damage[d], err.message);
            vdx_candidates_request audit_again = {.mode = VDX_CANDIDATES_AUDIT};
            cJSON *page = NULL;
            refused = vdx_concept_candidates(book, "zero", &audit_again, &page, &err);
            CHECK(refused == -1 && !page && !strcmp(err.message, want),
                  "audit page with weight %s: %s", damage[d], err.message);
        }
        REQUIRE(sqlite3_exec(db,
                             "UPDATE audit_items SET weight = (SELECT weight FROM kept WHERE "
                             "kept.item = audit_items.item); DROP TABLE kept",
                             NULL, NULL, NULL) == SQLITE_OK,
                "%s", sqlite3_errmsg(db));
        sqlite3_close(db);
        REQUIRE(vdx_concept_evaluate(book, "zero", NULL, &ev, &err) == 0, "%s", err.message);
        char *after = cJSON_PrintUnformatted(cJSON_GetObjectItem(ev, "estimates"));
        CHECK(!strcmp(before, after), "restored weights: %s\nbefore: %s", after, before);
        free(after);
        cJSON_Delete(ev);
    }
    free(before);
    /* 20 audit labels on the seed's trainer: the evaluation suggests the anchored one,
     * and stops once it is chosen */
    REQUIRE(vdx_concept_evaluate(book, "zero", NULL, &ev, &err) == 0, "%s", err.message);
    char *warned = cJSON_PrintUnformatted(cJSON_GetObjectItem(ev, "warnings"));
    CHECK(strstr(warned, "\"try_anchored\"") && strstr(warned, "with 20 audit labels the anchored"),
          "warnings: %s", warned);
    free(warned);
    cJSON_Delete(ev);
    REQUIRE(vdx_concept_set_trainer(book, "zero", "anchored", &err) == 0, "%s", err.message);
    REQUIRE(vdx_concept_evaluate(book, "zero", NULL, &ev, &err) == 0, "%s", err.message);
    warned = cJSON_PrintUnformatted(cJSON_GetObjectItem(ev, "warnings"));
    CHECK(!strstr(warned, "try_anchored"), "warnings after the switch: %s", warned);
    free(warned);
    cJSON_Delete(ev);
    REQUIRE(vdx_concept_set_trainer(book, "zero", "seed", &err) == 0, "%s", err.message);

    /* the next round's calibration weighs the audit labels for the unlabelled items */
    REQUIRE(train(book, "zero") == 0, "train");
    cJSON *concept = NULL;
    REQUIRE(vdx_concept_get(book, "zero", 0, &concept, &err) == 0, "%s", err.message);
    const cJSON *last = cJSON_GetArrayItem(cJSON_GetObjectItem(concept, "history"), 3);
    const cJSON *lc = cJSON_GetObjectItem(last, "calibration");
    CHECK(number_of(lc, "audit_labels") == 20 && number_of(lc, "labels") == 47 &&
              fabs(number_of(lc, "audit_weight") - (N_ITEMS - 27) / 20.0) < 1e-9 &&
              number_of(cJSON_GetObjectItem(concept, "calibration"), "a") == number_of(lc, "a"),
          "round 4's calibration: %s", cJSON_PrintUnformatted(lc));
    cJSON_Delete(concept);

    /* the calibrated threshold fit: expected precision >= 0.9 over the collection */
    vdx_threshold_fit fit = {.target = VDX_THRESHOLD_FIT_PRECISION, .precision = 0.9,
                             .source = VDX_THRESHOLD_FROM_CALIBRATION};
    cJSON *result = NULL;
    rc = vdx_concept_fit_threshold(book, "zero", &fit, &result, &err);
    CHECK(rc == 0 && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(result, "source")), "calibration") &&
              number_of(result, "precision") >= 0.9 && number_of(result, "items") == N_ITEMS &&
              cJSON_IsObject(cJSON_GetObjectItem(result, "estimates")),
          "calibrated fit: %s", rc == 0 ? cJSON_PrintUnformatted(result) : err.message);
    if (rc == 0)
        printf("    calibrated fit at 0.9: threshold %.4f (p %.3f), expected precision %.3f "
               "recall %.3f\n",
               number_of(result, "threshold"), number_of(result, "threshold_probability"),
               number_of(result, "precision"), number_of(result, "recall"));
    cJSON_Delete(result);
    /* a concept without a round has no calibration to fit on */
    REQUIRE(create_concept(book, "fresh") == 0, "create");
    rc = vdx_concept_fit_threshold(book, "fresh", &fit, NULL, &err);
    CHECK(rc == -1 && err.kind == VDX_ERR_CONFLICT &&
              !strcmp(err.message, "concept 'fresh' has no calibration yet: train a round with "
                                   "positive and negative labels"),
          "%s", err.message);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* With an approximate index, `score` pages come through the index and `evaluate` counts
 * from its codes; with every partition visited the page is the exact ranking (the same
 * ids, scores and labels), the counts are within the codes' error of the exact ones, and
 * both say where their scores came from. */
TEST(score_and_evaluate_through_the_index)
{
    const char *dir = test_tmpdir("explore-index");
    vdx_store *store = synthetic_store(dir, model_hash_a, NULL, 0);
    REQUIRE(store, "store");
    vdx_error err = {{0}};
    vdx_index_options o = {.lists = 16};
    REQUIRE(vdx_store_index_build(store, &o, &err) == 0, "%s", err.message);
    CHECK(vdx_store_indexed_rows(store) == N_ITEMS, "indexed rows %lld",
          (long long)vdx_store_indexed_rows(store));
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "zero") == 0, "concept");
    vdx_label_change changes[2] = {{ids[0], 1}, {ids[PER_CLUSTER], 0}};
    REQUIRE(vdx_concept_label(book, "zero", changes, 2, NULL, &err) == 0, "%s", err.message);
    setenv("VDX_INDEX_NPROBE", "16", 1);
    cJSON *fast = NULL, *exact = NULL;
    vdx_score_request req = {.top = 30, .offset = 5};
    REQUIRE(vdx_concept_score(book, "zero", &req, &fast, &err) == 0, "%s", err.message);
    req.exact = 1;
    REQUIRE(vdx_concept_score(book, "zero", &req, &exact, &err) == 0, "%s", err.message);
    const cJSON *fs = cJSON_GetObjectItem(fast, "scores"), *es = cJSON_GetObjectItem(exact, "scores");
    CHECK(!strcmp(str_of(fs, "source"), "index") && number_of(fs, "max_error") > 0 &&
              !strcmp(str_of(es, "source"), "vectors") && number_of(es, "max_error") == 0,
          "sources %s / %s", str_of(fs, "source"), str_of(es, "source"));
    const cJSON *fi = cJSON_GetObjectItem(fast, "items"), *ei = cJSON_GetObjectItem(exact, "items");
    CHECK(cJSON_GetArraySize(fi) == 30 && cJSON_GetArraySize(ei) == 30, "%d and %d items",
          cJSON_GetArraySize(fi), cJSON_GetArraySize(ei));
    for (int i = 0; i < cJSON_GetArraySize(fi) && i < cJSON_GetArraySize(ei); i++) {
        const cJSON *a = cJSON_GetArrayItem(fi, i), *b = cJSON_GetArrayItem(ei, i);
        CHECK(!strcmp(str_of(a, "id"), str_of(b, "id")) &&
                  fabs(number_of(a, "score") - number_of(b, "score")) < 1e-5 &&
                  number_of(a, "rank") == number_of(b, "rank") &&
                  cJSON_Compare(cJSON_GetObjectItem(a, "label"), cJSON_GetObjectItem(b, "label"), 1) &&
                  !strcmp(str_of(a, "url"), str_of(b, "url")),
              "rank %d: %s %g, exact %s %g", i + 6, str_of(a, "id"), number_of(a, "score"),
              str_of(b, "id"), number_of(b, "score"));
        if (test_case_failed)
            break;
    }
    double bound = number_of(fs, "max_error");
    CHECK(number_of(fast, "count") == number_of(exact, "count"), "count %g vs %g",
          number_of(fast, "count"), number_of(exact, "count"));
    /* the codes may move the items within the bound of the threshold across it, no others */
    CHECK(fabs(number_of(fast, "above_threshold") - number_of(exact, "above_threshold")) <=
              0.05 * N_ITEMS,
          "above %g vs %g (bound %g)", number_of(fast, "above_threshold"),
          number_of(exact, "above_threshold"), bound);
    cJSON_Delete(fast);
    cJSON_Delete(exact);
    vdx_evaluate_options eo = {0};
    REQUIRE(vdx_concept_evaluate(book, "zero", &eo, &fast, &err) == 0, "%s", err.message);
    eo.exact = 1;
    REQUIRE(vdx_concept_evaluate(book, "zero", &eo, &exact, &err) == 0, "%s", err.message);
    fs = cJSON_GetObjectItem(fast, "scores");
    es = cJSON_GetObjectItem(exact, "scores");
    CHECK(!strcmp(str_of(fs, "source"), "index") && !strcmp(str_of(es, "source"), "vectors"),
          "evaluate sources %s / %s", str_of(fs, "source"), str_of(es, "source"));
    CHECK(number_of(fast, "count") == N_ITEMS && number_of(exact, "count") == N_ITEMS,
          "evaluate counts %g / %g", number_of(fast, "count"), number_of(exact, "count"));
    const cJSON *fh = cJSON_GetObjectItem(cJSON_GetObjectItem(fast, "probability_histogram"), "counts"),
                *eh = cJSON_GetObjectItem(cJSON_GetObjectItem(exact, "probability_histogram"), "counts");
    int moved = 0;
    for (int b = 0; b < cJSON_GetArraySize(fh) && b < cJSON_GetArraySize(eh); b++)
        moved += abs(cJSON_GetArrayItem(fh, b)->valueint - cJSON_GetArrayItem(eh, b)->valueint);
    CHECK(cJSON_GetArraySize(fh) == 40 && moved <= N_ITEMS / 10,
          "%d items changed probability bins between the codes and the vectors", moved);
    unsetenv("VDX_INDEX_NPROBE");
    cJSON_Delete(fast);
    cJSON_Delete(exact);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* The anchored trainer through the book: chosen at creation, recorded per round (lr 0,
 * its steps, its bias), a round repeated after undoing it gives the same bits (its weak
 * negatives are a seeded sample of the store), switching back to the seed's trainer,
 * refusals that change nothing, copy / export / import keep it, and a book of schema
 * version 3 opens with every concept on the seed's trainer. */
TEST(anchored_trainer_through_the_book)
{
    const char *dir = test_tmpdir("explore-anchored");
    vdx_store *store = synthetic_store(dir, model_hash_a, NULL, 0);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book, "book");
    float w[DIMS];
    prompt_vector(w);
    vdx_error err = {{0}};
    cJSON *c = NULL;
    vdx_concept_spec bad = {.name = "bad", .prompt = "p", .text_vector = w, .trainer = "sgd"};
    CHECK(vdx_concept_create(book, &bad, &c, &err) == -1 &&
              !strcmp(err.message, "unknown trainer 'sgd' (seed, anchored or auto)"),
          "%s", err.message);
    CHECK(vdx_concept_get(book, "bad", 0, &c, &err) == -1, "a refused concept was created");
    vdx_concept_spec spec = {.name = "anch", .prompt = "a cluster zero", .text_vector = w,
                             .trainer = "anchored"};
    REQUIRE(vdx_concept_create(book, &spec, &c, &err) == 0, "%s", err.message);
    CHECK(!strcmp(cJSON_GetObjectItem(c, "trainer")->valuestring, "anchored"), "trainer");
    cJSON_Delete(c);
    double zero_shot = precision_at_50(book, "anch");
    static char seen[512][32];
    int n_seen = 0;
    cJSON *round = NULL;
    for (int r = 0; r < 3; r++) {
        cJSON *page = candidates(book, "anch", VDX_CANDIDATES_NEAREST, 20, 0);
        REQUIRE(page && label_page(book, "anch", page, seen, &n_seen) == 20, "label");
        cJSON_Delete(page);
        cJSON_Delete(round);
        REQUIRE(vdx_concept_train(book, "anch", 0, 0, &round, &err) == 0, "%s", err.message);
    }
    const cJSON *bias = cJSON_GetObjectItem(round, "bias");
    CHECK(!strcmp(cJSON_GetObjectItem(round, "trainer")->valuestring, "anchored") &&
              number_of(round, "lr") == 0 && number_of(round, "iters") == 100 &&
              cJSON_GetArraySize(cJSON_GetObjectItem(round, "losses")) == 100 &&
              cJSON_IsNumber(bias) && isfinite(bias->valuedouble),
          "round: %s", cJSON_PrintUnformatted(round));
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(round, "cross_validation")), "cross-validated");
    cJSON_Delete(round);
    double trained = precision_at_50(book, "anch");
    CHECK(trained > zero_shot, "precision@50 %.2f -> %.2f", zero_shot, trained);
    /* the third round again: the same weight, bit for bit */
    float before[DIMS], again[DIMS];
    REQUIRE(vdx_concept_weight(book, "anch", before, DIMS, &err) == 0, "%s", err.message);
    REQUIRE(vdx_concept_undo_round(book, "anch", 0, NULL, &err) == 0, "%s", err.message);
    REQUIRE(vdx_concept_train(book, "anch", 0, 0, NULL, &err) == 0, "%s", err.message);
    REQUIRE(vdx_concept_weight(book, "anch", again, DIMS, &err) == 0, "%s", err.message);
    CHECK(!memcmp(before, again, sizeof before), "a repeated round differs");
    /* refusals change nothing; the seed's trainer from the next round */
    CHECK(vdx_concept_set_trainer(book, "anch", "newton", &err) == -1 &&
              !strcmp(err.message, "unknown trainer 'newton' (seed, anchored or auto)"),
          "%s", err.message);
    CHECK(vdx_concept_set_trainer(book, "nope", "seed", &err) == -1 &&
              !strcmp(err.message, "no concept named 'nope'"),
          "%s", err.message);
    REQUIRE(vdx_concept_copy(book, "anch", "anch2", &err) == 0, "%s", err.message);
    REQUIRE(vdx_concept_set_trainer(book, "anch2", "seed", &err) == 0, "%s", err.message);
    REQUIRE(vdx_concept_train(book, "anch2", 0, 0, &round, &err) == 0, "%s", err.message);
    CHECK(!strcmp(cJSON_GetObjectItem(round, "trainer")->valuestring, "seed") &&
              fabs(number_of(round, "lr") - 0.1) < 1e-7 && !cJSON_GetObjectItem(round, "bias"),
          "seed round: lr %g", number_of(round, "lr"));
    cJSON_Delete(round);
    REQUIRE(vdx_concept_get(book, "anch", 0, &c, &err) == 0, "%s", err.message);
    CHECK(!strcmp(cJSON_GetObjectItem(c, "trainer")->valuestring, "anchored"),
          "the copy's switch changed the original");
    cJSON_Delete(c);
    /* export and import keep the trainer and each round's */
    cJSON *doc = NULL;
    REQUIRE(vdx_concept_export_classifier(book, "anch", &doc, &err) == 0, "%s", err.message);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    REQUIRE(vdx_concept_import_classifier(book, text, strlen(text), "imported", &c, &err) == 0,
            "%s", err.message);
    cJSON_Delete(c);
    free(text);
    REQUIRE(vdx_concept_get(book, "imported", 0, &c, &err) == 0, "%s", err.message);
    const cJSON *last = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "history"), 2);
    CHECK(!strcmp(cJSON_GetObjectItem(c, "trainer")->valuestring, "anchored") && last &&
              !strcmp(cJSON_GetObjectItem(last, "trainer")->valuestring, "anchored") &&
              cJSON_IsNumber(cJSON_GetObjectItem(last, "bias")),
          "imported: %s", cJSON_PrintUnformatted(c));
    cJSON_Delete(c);
    vdx_concepts_close(book);
    /* a version 3 book (no trainer column, no audit weights) opens, every concept on the
     * seed's trainer */
    char path[4200];
    snprintf(path, sizeof path, "%s/concepts.db", vdx_store_dir(store));
    sqlite3 *db = NULL;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK, "%s", path);
    CHECK(sqlite3_exec(db, "ALTER TABLE concepts DROP COLUMN trainer; ALTER TABLE audit_items DROP COLUMN "
                       "weight; PRAGMA user_version = 3;",
                       NULL, NULL, NULL) == SQLITE_OK,
          "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    book = open_book(store);
    REQUIRE(book, "reopen a version 3 book");
    REQUIRE(vdx_concept_get(book, "anch", 0, &c, &err) == 0, "%s", err.message);
    CHECK(!strcmp(cJSON_GetObjectItem(c, "trainer")->valuestring, "seed"), "migrated trainer");
    cJSON_Delete(c);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

/* The trainer of a concept's round, from vdx_concept_get: "trainer" and "next_trainer". */
static int trainers_are(vdx_concepts *book, const char *name, const char *trainer,
                        const char *next_trainer)
{
    cJSON *c = NULL;
    vdx_error err = {{0}};
    if (vdx_concept_get(book, name, 0, &c, &err) != 0) {
        printf("    get: %s\n", err.message);
        return 0;
    }
    int same = !strcmp(str_of(c, "trainer"), trainer) &&
               !strcmp(str_of(c, "next_trainer"), next_trainer);
    if (!same)
        printf("    '%s': trainer %s, next_trainer %s\n", name, str_of(c, "trainer"),
               str_of(c, "next_trainer"));
    cJSON_Delete(c);
    return same;
}

/* The default trainer, auto: a concept created without one runs the seed's fit, bit for
 * bit as a "seed" concept with the same prompt and labels, until 20 of its audit items are
 * labelled (19 are not enough); the next round is then anchored (lr 0, a bias), and
 * evaluate cross-validates with the trainer of the last round. set_trainer, copy, export
 * and import keep "auto"; an unknown name is refused with the names listed. */
TEST(auto_trainer_through_the_book)
{
    const char *dir = test_tmpdir("explore-auto");
    vdx_store *store = synthetic_store(dir, model_hash_a, NULL, 0);
    REQUIRE(store, "store");
    vdx_concepts *book = open_book(store);
    REQUIRE(book && create_concept(book, "auto") == 0 &&
                create_concept_trained_by(book, "seeded", "seed") == 0,
            "create");
    CHECK(trainers_are(book, "auto", "auto", "seed") && trainers_are(book, "seeded", "seed", "seed"),
          "a concept created without a trainer is auto, its next round the seed's");
    CHECK(vdx_concept_trainer_known("auto") && vdx_concept_trainer_known("seed") &&
              vdx_concept_trainer_known("anchored") && !vdx_concept_trainer_known("Auto") &&
              !vdx_concept_trainer_known(NULL),
          "vdx_concept_trainer_known");
    vdx_error err = {{0}};
    static char seen[256][32], seen_seeded[256][32];
    int n_seen = 0, n_seeded = 0;
    /* three rounds on the same labels: the same rounds, the same weights */
    for (int r = 0; r < 3; r++) {
        cJSON *page = candidates(book, "auto", VDX_CANDIDATES_NEAREST, 9, 0);
        REQUIRE(page && label_page(book, "auto", page, seen, &n_seen) == 9 &&
                    label_page(book, "seeded", page, seen_seeded, &n_seeded) == 9,
                "label round %d", r + 1);
        cJSON_Delete(page);
        cJSON *a = NULL, *b = NULL;
        REQUIRE(vdx_concept_train(book, "auto", 0, 0, &a, &err) == 0, "%s", err.message);
        REQUIRE(vdx_concept_train(book, "seeded", 0, 0, &b, &err) == 0, "%s", err.message);
        static const char *const same[] = {"iters", "lr", "trainer", "losses",
                                           "training_accuracy", "weight_norm",
                                           "cross_validation", "calibration"};
        for (size_t k = 0; k < sizeof same / sizeof same[0]; k++)
            CHECK(cJSON_Compare(cJSON_GetObjectItem(a, same[k]), cJSON_GetObjectItem(b, same[k]), 1),
                  "round %d: %s differs: auto %s, seed %s", r + 1, same[k],
                  cJSON_PrintUnformatted(cJSON_GetObjectItem(a, same[k])),
                  cJSON_PrintUnformatted(cJSON_GetObjectItem(b, same[k])));
        CHECK(!strcmp(str_of(a, "trainer"), "seed") && !cJSON_GetObjectItem(a, "bias"),
              "round %d of the auto concept: %s", r + 1, cJSON_PrintUnformatted(a));
        cJSON_Delete(a);
        cJSON_Delete(b);
        float wa[DIMS], wb[DIMS];
        REQUIRE(vdx_concept_weight(book, "auto", wa, DIMS, &err) == 0 &&
                    vdx_concept_weight(book, "seeded", wb, DIMS, &err) == 0,
                "%s", err.message);
        CHECK(!memcmp(wa, wb, sizeof wa), "round %d: the weights differ", r + 1);
    }

    /* the audit sample: 19 labels keep the seed's trainer, the 20th switches */
    cJSON *audit = candidates(book, "auto", VDX_CANDIDATES_AUDIT, 0, 0);
    REQUIRE(audit && cJSON_GetArraySize(cJSON_GetObjectItem(audit, "items")) == 20, "audit");
    vdx_label_change changes[20];
    int n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(audit, "items"))
    {
        const char *id = cJSON_GetObjectItem(item, "id")->valuestring;
        changes[n].id = id;
        changes[n++].label = cluster_of(id) == 0 ? VDX_LABEL_POSITIVE : VDX_LABEL_NEGATIVE;
    }
    cJSON *result = NULL;
    REQUIRE(vdx_concept_label(book, "auto", changes, 19, &result, &err) == 0, "%s", err.message);
    CHECK(!strcmp(str_of(result, "next_trainer"), "seed"), "after 19 audit labels: %s",
          cJSON_PrintUnformatted(result));
    cJSON_Delete(result);
    CHECK(trainers_are(book, "auto", "auto", "seed"), "19 audit labels");
    REQUIRE(vdx_concept_label(book, "auto", changes + 19, 1, &result, &err) == 0, "%s",
            err.message);
    CHECK(!strcmp(str_of(result, "next_trainer"), "anchored"), "after 20 audit labels: %s",
          cJSON_PrintUnformatted(result));
    cJSON_Delete(result);
    CHECK(trainers_are(book, "auto", "auto", "anchored"), "20 audit labels");
    /* before the anchored round, evaluate refits with the trainer of the last round (the
     * seed's: 5 steps x 3 rounds) and suggests nothing: auto switches by itself */
    cJSON *ev = NULL;
    REQUIRE(vdx_concept_evaluate(book, "auto", NULL, &ev, &err) == 0, "%s", err.message);
    const cJSON *cv = cJSON_GetObjectItem(ev, "cross_validation");
    char *warned = cJSON_PrintUnformatted(cJSON_GetObjectItem(ev, "warnings"));
    CHECK(number_of(cv, "steps") == 15 && !strstr(warned, "try_anchored"),
          "evaluate before the anchored round: cv %s, warnings %s", cJSON_PrintUnformatted(cv),
          warned);
    free(warned);
    cJSON_Delete(ev);

    cJSON *round = NULL;
    REQUIRE(vdx_concept_train(book, "auto", 0, 0, &round, &err) == 0, "%s", err.message);
    const cJSON *bias = cJSON_GetObjectItem(round, "bias");
    CHECK(!strcmp(str_of(round, "trainer"), "anchored") && number_of(round, "lr") == 0 &&
              number_of(round, "iters") == 100 && cJSON_IsNumber(bias) &&
              isfinite(bias->valuedouble) &&
              cJSON_IsObject(cJSON_GetObjectItem(round, "cross_validation")),
          "round 4: %s", cJSON_PrintUnformatted(round));
    cJSON_Delete(round);
    CHECK(trainers_are(book, "auto", "auto", "anchored"), "after the anchored round");
    /* a label changed since: evaluate cross-validates anew, with the anchored trainer */
    vdx_label_change flip = {changes[0].id, changes[0].label == VDX_LABEL_POSITIVE
                                                ? VDX_LABEL_NEGATIVE
                                                : VDX_LABEL_POSITIVE};
    REQUIRE(vdx_concept_label(book, "auto", &flip, 1, NULL, &err) == 0, "%s", err.message);
    cJSON_Delete(audit); /* changes[] pointed into it */
    ev = NULL;
    int rc = vdx_concept_evaluate(book, "auto", NULL, &ev, &err);
    cv = cJSON_GetObjectItem(ev, "cross_validation");
    CHECK(rc == 0 && cJSON_IsObject(cv) && number_of(cv, "steps") == 100,
          "evaluate after the anchored round: %s",
          rc == 0 ? cJSON_PrintUnformatted(cv) : err.message);
    cJSON_Delete(ev);
    REQUIRE(vdx_concept_undo(book, "auto", NULL, &err) == 0, "%s", err.message);

    /* set_trainer: each name round-trips; an unknown one is refused, nothing changed */
    REQUIRE(vdx_concept_set_trainer(book, "auto", "seed", &err) == 0, "%s", err.message);
    CHECK(trainers_are(book, "auto", "seed", "seed"), "set seed");
    REQUIRE(vdx_concept_set_trainer(book, "auto", "anchored", &err) == 0, "%s", err.message);
    CHECK(trainers_are(book, "auto", "anchored", "anchored"), "set anchored");
    REQUIRE(vdx_concept_set_trainer(book, "auto", "auto", &err) == 0, "%s", err.message);
    CHECK(trainers_are(book, "auto", "auto", "anchored"), "set auto");
    CHECK(vdx_concept_set_trainer(book, "auto", "automatic", &err) == -1 &&
              !strcmp(err.message, "unknown trainer 'automatic' (seed, anchored or auto)") &&
              trainers_are(book, "auto", "auto", "anchored"),
          "%s", err.message);

    /* a copy keeps the trainer and the audit sample; an exported classifier keeps the
     * trainer, not the audit sample (its next round is the seed's) */
    REQUIRE(vdx_concept_copy(book, "auto", "auto copy", &err) == 0, "%s", err.message);
    CHECK(trainers_are(book, "auto copy", "auto", "anchored"), "copy");
    cJSON *doc = NULL;
    REQUIRE(vdx_concept_export_classifier(book, "auto", &doc, &err) == 0, "%s", err.message);
    CHECK(!strcmp(str_of(doc, "trainer"), "auto"), "exported trainer %s", str_of(doc, "trainer"));
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    cJSON *c = NULL;
    REQUIRE(vdx_concept_import_classifier(book, text, strlen(text), "auto imported", &c, &err) == 0,
            "%s", err.message);
    CHECK(!strcmp(str_of(c, "trainer"), "auto") && !strcmp(str_of(c, "next_trainer"), "seed"),
          "imported: trainer %s, next %s", str_of(c, "trainer"), str_of(c, "next_trainer"));
    cJSON_Delete(c);
    free(text);
    vdx_concepts_close(book);
    vdx_store_close(store);
}

int main(void)
{
    unsetenv("VDX_STORE");
    RUN(simulated_user_loop);
    RUN(state_identical_after_reopen);
    RUN(undo_restores_weight_and_labels);
    RUN(undo_redo_never_loses_a_label);
    RUN(pages_keep_their_ranks);
    RUN(pages_reach_the_best_10000);
    RUN(kept_candidate_lists_are_bounded);
    RUN(threshold_fit_warnings_round_metrics);
    RUN(candidate_modes_paging_filter_duplicates);
    RUN(evaluate_and_score);
    RUN(evaluate_bounds_cross_validation_labels);
    RUN(five_fold_cross_validation);
    RUN(two_books_share_one_database);
    RUN(crud_and_exact_errors);
    RUN(exports_parse_back_and_import);
    RUN(import_quotes_safely_and_compares_whole_fingerprints);
    RUN(concurrent_threads_share_a_book);
    RUN(calibration_and_audit_estimates);
    RUN(score_and_evaluate_through_the_index);
    RUN(anchored_trainer_through_the_book);
    RUN(auto_trainer_through_the_book);
    return test_summary("explore");
}
