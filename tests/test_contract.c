/* The JSON contract between the library and the CLI: every key src/cli/cmd_concept.c
 * reads from a library result, with the type it expects. The CLI's readers fall back to
 * NaN or "" for a missing key, so a renamed key would print nonsense rather than fail:
 * this test pins the names. When a key changes, change the CLI with it. (The server also
 * forwards these results as they are: docs/api.md documents them.) Also pins the HTTP
 * status of each error kind (server/api.c's table, docs/api.md). */
#include <cjson/cJSON.h>

#include "server/api.h"
#include "test.h"
#include "test_tmp.h"
#include "vdx/explore.h"
#include "vdx/store.h"

enum { NUMBER, STRING, ARRAY, OBJECT, BOOL, NUMBER_OR_NULL };

typedef struct key_rule {
    const char *key;
    int type;
} key_rule;

static int has(const cJSON *obj, const key_rule *rule)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, rule->key);
    switch (rule->type) {
    case NUMBER: return cJSON_IsNumber(v);
    case STRING: return cJSON_IsString(v);
    case ARRAY: return cJSON_IsArray(v);
    case OBJECT: return cJSON_IsObject(v);
    case BOOL: return cJSON_IsBool(v);
    default: return cJSON_IsNumber(v) || cJSON_IsNull(v);
    }
}

#define CHECK_KEYS(obj, what, ...)                                                        \
    do {                                                                                  \
        static const key_rule rules_[] = {__VA_ARGS__};                                   \
        for (size_t i_ = 0; i_ < sizeof rules_ / sizeof rules_[0]; i_++)                  \
            CHECK(has((obj), &rules_[i_]), "%s: key '%s' missing or of another type",     \
                  what, rules_[i_].key);                                                  \
    } while (0)

#define DIMS 8
#define N 30

static const vdx_model_identity identity = {.name = "contract", .config_hash =
    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", .dims = DIMS};

TEST(cli_reads_these_keys)
{
    const char *data = test_tmpdir("contract");
    vdx_error err = {{0}};
    vdx_store_options o = {.data_dir = data, .collection = "c", .create = 1, .model = &identity};
    vdx_store *s = vdx_store_open(&o, &err);
    REQUIRE(s, "%s", err.message);
    float v[N][DIMS];
    char ids[N][16];
    vdx_item items[N];
    for (int i = 0; i < N; i++) {
        for (int d = 0; d < DIMS; d++)
            v[i][d] = (float)((i * 5 + d * 3) % 7) - 3.0f + (d == i % DIMS ? 3.0f : 0.0f);
        snprintf(ids[i], sizeof ids[i], "i%d", i);
        items[i] = (vdx_item){.id = ids[i], .url = "file:///x.jpg", .vector = v[i]};
    }
    REQUIRE(vdx_store_append(s, items, N, &err) == 0, "%s", err.message);
    vdx_concepts *book = vdx_concepts_open(s, &err);
    REQUIRE(book, "%s", err.message);
    const char *examples[1] = {"i0"};
    vdx_concept_spec spec = {.name = "k", .example_ids = examples, .n_examples = 1};
    cJSON *r = NULL;
    REQUIRE(vdx_concept_create(book, &spec, &r, &err) == 0, "%s", err.message);
    cJSON_Delete(r);

    vdx_label_change changes[6] = {{"i0", 1}, {"i8", 1}, {"i16", 1}, {"i1", 0}, {"i2", 0}, {"i3", 0}};
    REQUIRE(vdx_concept_label(book, "k", changes, 6, &r, &err) == 0, "%s", err.message);
    CHECK_KEYS(r, "label", {"changed", NUMBER}, {"positive", NUMBER}, {"negative", NUMBER},
               {"pending", NUMBER});
    cJSON_Delete(r);

    REQUIRE(vdx_concept_train(book, "k", 5, 0.1f, &r, &err) == 0, "%s", err.message);
    CHECK_KEYS(r, "train", {"round", NUMBER}, {"labels_added", NUMBER}, {"positive", NUMBER},
               {"negative", NUMBER}, {"losses", ARRAY}, {"training_accuracy", NUMBER},
               {"time", STRING});
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r, "losses")) == 5, "5 losses");
    cJSON_Delete(r);

    REQUIRE(vdx_concept_get(book, "k", 1, &r, &err) == 0, "%s", err.message);
    CHECK_KEYS(r, "get", {"name", STRING}, {"model", OBJECT}, {"positive", NUMBER},
               {"negative", NUMBER}, {"pending", NUMBER}, {"threshold", NUMBER},
               {"history", ARRAY}, {"rounds", NUMBER}, {"weight", ARRAY},
               {"threshold_probability", NUMBER}, {"trainer", STRING},
               {"next_trainer", STRING});
    /* the labels hold both classes: the round is calibrated */
    CHECK_KEYS(cJSON_GetObjectItem(r, "calibration"), "get.calibration", {"a", NUMBER},
               {"b", NUMBER}, {"round", NUMBER});
    CHECK_KEYS(cJSON_GetObjectItem(r, "model"), "get.model", {"dims", NUMBER},
               {"fingerprint", STRING});
    CHECK_KEYS(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "history"), 0), "get.history[0]",
               {"time", STRING}, {"labels_added", NUMBER}, {"positive", NUMBER},
               {"negative", NUMBER}, {"losses", ARRAY}, {"training_accuracy", NUMBER});
    cJSON_Delete(r);

    vdx_candidates_request cand = {.mode = VDX_CANDIDATES_NEAREST, .k = 5};
    REQUIRE(vdx_concept_candidates(book, "k", &cand, &r, &err) == 0, "%s", err.message);
    CHECK_KEYS(r, "candidates", {"items", ARRAY}, {"hidden", ARRAY}, {"more", BOOL});
    CHECK_KEYS(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "items"), 0), "candidates.items[0]",
               {"id", STRING}, {"url", STRING}, {"score", NUMBER}, {"probability", NUMBER});
    cJSON_Delete(r);

    vdx_evaluate_options eval = {.bins = 10};
    REQUIRE(vdx_concept_evaluate(book, "k", &eval, &r, &err) == 0, "%s", err.message);
    CHECK_KEYS(r, "evaluate", {"training_accuracy", NUMBER_OR_NULL}, {"count", NUMBER},
               {"cross_validation", OBJECT}, {"histogram", OBJECT});
    CHECK_KEYS(cJSON_GetObjectItem(r, "cross_validation"), "evaluate.cross_validation",
               {"method", STRING}, {"accuracy", NUMBER}, {"precision", NUMBER_OR_NULL},
               {"recall", NUMBER_OR_NULL});
    CHECK_KEYS(cJSON_GetObjectItem(r, "histogram"), "evaluate.histogram", {"counts", ARRAY},
               {"min", NUMBER}, {"bin_width", NUMBER});
    CHECK_KEYS(cJSON_GetObjectItem(r, "estimates"), "evaluate.estimates", {"status", STRING},
               {"audit_labels", NUMBER}, {"weight", NUMBER}, {"positives", NUMBER_OR_NULL},
               {"precision", NUMBER_OR_NULL}, {"recall", NUMBER_OR_NULL});
    cJSON_Delete(r);

    /* the audit sample, and the estimates with their intervals once it is labelled */
    vdx_candidates_request audit = {.mode = VDX_CANDIDATES_AUDIT, .k = 3};
    REQUIRE(vdx_concept_candidates(book, "k", &audit, &r, &err) == 0, "%s", err.message);
    CHECK_KEYS(cJSON_GetObjectItem(r, "audit"), "candidates.audit", {"design", STRING},
               {"drawn", NUMBER}, {"labelled", NUMBER}, {"pending", NUMBER});
    CHECK_KEYS(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "items"), 0), "candidates.audit item",
               {"id", STRING}, {"score", NUMBER}, {"probability", NUMBER}, {"rank", NUMBER},
               {"weight", NUMBER});
    vdx_label_change audit_labels[3];
    for (int i = 0; i < 3; i++)
        audit_labels[i] = (vdx_label_change){
            cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "items"), i), "id")->valuestring, 0};
    REQUIRE(vdx_concept_label(book, "k", audit_labels, 3, NULL, &err) == 0, "%s", err.message);
    cJSON_Delete(r);
    REQUIRE(vdx_concept_evaluate(book, "k", &eval, &r, &err) == 0, "%s", err.message);
    CHECK_KEYS(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "estimates"), "positives"),
               "evaluate.estimates.positives", {"value", NUMBER}, {"lo", NUMBER}, {"hi", NUMBER});
    cJSON_Delete(r);

    vdx_score_request score = {.top = 5, .threshold = NAN};
    REQUIRE(vdx_concept_score(book, "k", &score, &r, &err) == 0, "%s", err.message);
    CHECK_KEYS(r, "score", {"items", ARRAY}, {"above_threshold", NUMBER}, {"count", NUMBER},
               {"threshold", NUMBER});
    CHECK_KEYS(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "items"), 0), "score.items[0]",
               {"rank", NUMBER}, {"id", STRING}, {"url", STRING}, {"score", NUMBER},
               {"probability", NUMBER});
    cJSON_Delete(r);

    REQUIRE(vdx_concept_list(book, &r, &err) == 0, "%s", err.message);
    CHECK_KEYS(cJSON_GetArrayItem(r, 0), "list[0]", {"name", STRING}, {"positive", NUMBER},
               {"negative", NUMBER}, {"rounds", NUMBER}, {"updated", STRING});
    cJSON_Delete(r);

    REQUIRE(vdx_concept_undo(book, "k", &r, &err) == 0, "%s", err.message);
    CHECK_KEYS(r, "undo", {"undone", STRING}, {"action", NUMBER}, {"labels_reverted", NUMBER});
    cJSON_Delete(r);

    REQUIRE(vdx_concept_redo(book, "k", &r, &err) == 0, "%s", err.message);
    CHECK_KEYS(r, "redo", {"redone", STRING}, {"action", NUMBER}, {"labels_redone", NUMBER});
    cJSON_Delete(r);

    REQUIRE(vdx_concept_undo_round(book, "k", 0, &r, &err) == 0, "%s", err.message);
    CHECK_KEYS(r, "undo round", {"undone", STRING}, {"round", NUMBER}, {"weight", STRING},
               {"labels_reverted", NUMBER}, {"labels_kept", NUMBER});
    cJSON_Delete(r);

    vdx_concepts_close(book);
    vdx_store_close(s);
}

TEST(http_status_of_each_error_kind)
{
    static const struct { vdx_error_kind kind; int status; } table[] = {
        {VDX_ERR_INVALID, 400},        {VDX_ERR_NOT_FOUND, 404}, {VDX_ERR_CONFLICT, 409},
        {VDX_ERR_MODEL_MISMATCH, 409}, {VDX_ERR_IO, 500},        {VDX_ERR_NO_SPACE, 507},
        {VDX_ERR_NO_MEMORY, 500},      {VDX_ERR_CORRUPT, 500},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        vdx_error err = {.kind = table[i].kind};
        CHECK(api_status_of(&err, 418) == table[i].status, "%s → %d",
              vdx_error_kind_name(table[i].kind), api_status_of(&err, 418));
    }
    vdx_error internal = {{0}};
    CHECK(api_status_of(&internal, 400) == 400 && api_status_of(&internal, 500) == 500,
          "an unclassified error takes the route's fallback");
}

int main(void)
{
    test_tmp_begin("contract");
    RUN(cli_reads_these_keys);
    RUN(http_status_of_each_error_kind);
    test_tmp_end();
    return test_summary("contract");
}
