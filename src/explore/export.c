/* Moving concepts out of and into a collection: labels (CSV per RFC 4180, or JSON lines),
 * the items scoring above a threshold (CSV / JSON lines), and the classifier itself as a
 * JSON document that another collection embedded with the same model can import.
 * Imports are validated field by field; another model's classifier is refused. */
#include "explore/book.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_check.h"
#include "common/strbuf.h"
#include "common/text.h"

#define CLASSIFIER_FORMAT "vdx-classifier"
#define CLASSIFIER_VERSION 1
/* A document's text quoted in a refusal is cut (between characters) to this many bytes. */
#define ECHO_MAX 64

int vdx_export_format_parse(const char *text)
{
    if (!text)
        return -1;
    if (!strcmp(text, "csv"))
        return VDX_EXPORT_CSV;
    if (!strcmp(text, "jsonl"))
        return VDX_EXPORT_JSONL;
    if (!strcmp(text, "json"))
        return VDX_EXPORT_JSON;
    return -1;
}

/* RFC 4180: a field holding a comma, quote, CR or LF is quoted, quotes doubled. */
static void append_csv_field(strbuf *b, const char *s)
{
    if (!s)
        return;
    if (!strpbrk(s, ",\"\r\n")) {
        strbuf_put(b, s);
        return;
    }
    strbuf_bytes(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            strbuf_bytes(b, "\"", 1);
        strbuf_bytes(b, p, 1);
    }
    strbuf_bytes(b, "\"", 1);
}

static void append_json_line(strbuf *b, cJSON *obj)
{
    char *line = cJSON_PrintUnformatted(obj);
    if (!line) {
        b->oom = 1;
        return;
    }
    strbuf_put(b, line);
    strbuf_bytes(b, "\n", 1);
    cJSON_free(line);
}

static int finish(strbuf *b, char **text, size_t *size, vdx_error *err)
{
    if (!b->data)
        strbuf_bytes(b, "", 0);
    if (b->oom) {
        free(b->data);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory writing an export");
    }
    *text = b->data;
    if (size)
        *size = b->len;
    return 0;
}

static int check_text_format(vdx_export_format format, const char *what, vdx_error *err)
{
    if (format != VDX_EXPORT_CSV && format != VDX_EXPORT_JSONL)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s export: format must be csv or jsonl", what);
    return 0;
}

int vdx_concept_export_labels(vdx_concepts *book, const char *name, vdx_export_format format,
                              char **text, size_t *size, vdx_error *err)
{
    *text = NULL;
    if (check_text_format(format, "labels", err) != 0)
        return -1;
    pthread_mutex_lock(&book->lock);
    concept_record rec;
    label_set set = {0};
    int rc = concept_find(book, name, &rec, err);
    if (rc == 0) {
        rc = concept_labels_load(book, rec.id, &set, err);
        concept_record_free(&rec);
    }
    pthread_mutex_unlock(&book->lock);
    if (rc != 0)
        return -1;
    strbuf b = {0};
    if (format == VDX_EXPORT_CSV)
        strbuf_put(&b, "id,url,label,time\r\n");
    for (size_t i = 0; i < set.n; i++) {
        if (format == VDX_EXPORT_CSV) {
            append_csv_field(&b, set.ids[i]);
            strbuf_bytes(&b, ",", 1);
            append_csv_field(&b, set.urls[i]);
            strbuf_printf(&b, ",%d,", set.labels[i]);
            append_csv_field(&b, set.times[i]);
            strbuf_bytes(&b, "\r\n", 2);
        } else {
            cJSON *line = label_set_item_json(&set, i);
            append_json_line(&b, line);
            cJSON_Delete(line);
        }
    }
    label_set_free(&set);
    return finish(&b, text, size, err);
}

int vdx_concept_export_scores(vdx_concepts *book, const char *name, double threshold,
                              vdx_export_format format, char **text, size_t *size,
                              vdx_error *err)
{
    *text = NULL;
    if (check_text_format(format, "scores", err) != 0)
        return -1;
    pthread_mutex_lock(&book->lock);
    concept_record rec;
    vdx_hits hits = {0};
    const vdx_hit **order = NULL;
    size_t n = 0;
    int above = 0;
    calib_map calib = {1, 0};
    int rc = concept_find(book, name, &rec, err);
    if (rc == 0) {
        if (isnan(threshold))
            threshold = rec.threshold;
        if ((rc = concept_check_model(book, &rec, err)) == 0)
            rc = concept_ranking(book, &rec, NULL, threshold, 1, 0, 1, &hits, &order, &n, &above,
                                 err);
        calib = rec.calib;
        concept_record_free(&rec);
    }
    pthread_mutex_unlock(&book->lock);
    strbuf b = {0};
    if (rc == 0 && format == VDX_EXPORT_CSV)
        strbuf_put(&b, "rank,id,url,score,probability\r\n");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        double score = order[i]->dist;
        if (format == VDX_EXPORT_CSV) {
            strbuf_printf(&b, "%zu,", i + 1);
            append_csv_field(&b, order[i]->id);
            strbuf_bytes(&b, ",", 1);
            append_csv_field(&b, order[i]->url);
            strbuf_printf(&b, ",%.9g,%.9g\r\n", score, calib_probability(&calib, score));
        } else {
            cJSON *line = cJSON_CreateObject();
            cJSON_AddNumberToObject(line, "rank", (double)i + 1);
            cJSON_AddStringToObject(line, "id", order[i]->id);
            if (order[i]->url)
                cJSON_AddStringToObject(line, "url", order[i]->url);
            else
                cJSON_AddNullToObject(line, "url");
            cJSON_AddNumberToObject(line, "score", score);
            cJSON_AddNumberToObject(line, "probability", calib_probability(&calib, score));
            append_json_line(&b, line);
            cJSON_Delete(line);
        }
    }
    free(order);
    vdx_hits_free(&hits);
    if (rc != 0)
        return -1;
    return finish(&b, text, size, err);
}

int vdx_concept_export_classifier(vdx_concepts *book, const char *name, cJSON **classifier,
                                  vdx_error *err)
{
    *classifier = NULL;
    pthread_mutex_lock(&book->lock);
    concept_record rec;
    cJSON *history = NULL;
    int rc = concept_find(book, name, &rec, err);
    if (rc == 0) {
        rc = concept_history_json(book, rec.id, 1, &history, err);
        if (rc == 0) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "format", CLASSIFIER_FORMAT);
            cJSON_AddNumberToObject(c, "version", CLASSIFIER_VERSION);
            cJSON_AddStringToObject(c, "name", rec.name);
            if (rec.prompt)
                cJSON_AddStringToObject(c, "prompt", rec.prompt);
            else
                cJSON_AddNullToObject(c, "prompt");
            cJSON_AddStringToObject(c, "created", rec.created);
            cJSON *model = cJSON_AddObjectToObject(c, "model");
            cJSON_AddStringToObject(model, "name", rec.model.name);
            cJSON_AddStringToObject(model, "fingerprint", rec.model.config_hash);
            cJSON_AddNumberToObject(model, "dims", rec.dims);
            cJSON_AddItemToObject(c, "weight", json_float_array(rec.weight, rec.dims));
            cJSON_AddItemToObject(c, "initial_weight",
                                  json_float_array(rec.initial_weight, rec.dims));
            cJSON_AddNumberToObject(c, "threshold", rec.threshold);
            cJSON_AddStringToObject(c, "trainer", concept_trainer_name(rec.trainer));
            cJSON_AddItemToObject(c, "history", history);
            *classifier = c;
        }
        concept_record_free(&rec);
    }
    pthread_mutex_unlock(&book->lock);
    return rc;
}

/* ---- import ------------------------------------------------------------------------- */

static const cJSON *field(const cJSON *obj, const char *where, const char *key,
                          int (*is_type)(const cJSON *), const char *type, vdx_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        vdx_fail_kind(err, VDX_ERR_INVALID, "classifier: %s has no \"%s\"", where, key);
        return NULL;
    }
    if (!is_type(v)) {
        vdx_fail_kind(err, VDX_ERR_INVALID, "classifier: %s \"%s\" is not %s", where, key, type);
        return NULL;
    }
    return v;
}

static int is_int(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
           fabs(v->valuedouble) < 2e9;
}

static int is_finite_number(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble);
}

static int is_string(const cJSON *v)
{
    return cJSON_IsString(v) != 0;
}

static int is_array(const cJSON *v)
{
    return cJSON_IsArray(v) != 0;
}

static int is_object(const cJSON *v)
{
    return cJSON_IsObject(v) != 0;
}

/* A weight's length at most: a trained one's is about 1 (the seed's trainer renormalises
 * it) to a few dozen (the anchored trainer's prompt scale); far beyond, an item's score
 * x·w could overflow a float to infinity, and every probability and threshold with it. */
#define WEIGHT_NORM_MAX 1e6

/* A vector field: an array of exactly dims finite numbers that fit a float, of length at
 * most WEIGHT_NORM_MAX (each is a classifier's weight). */
static int vector_field(const cJSON *obj, const char *where, const char *key, int dims, float *out,
                        vdx_error *err)
{
    const cJSON *a = field(obj, where, key, is_array, "an array", err);
    if (!a)
        return -1;
    int n = cJSON_GetArraySize(a);
    if (n != dims)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "classifier: %s \"%s\" has %d numbers, the model has %d dims",
                             where, key, n, dims);
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, a)
    {
        if (!is_finite_number(v) || fabs(v->valuedouble) > 3.4e38)
            return vdx_fail_kind(err, VDX_ERR_INVALID,
                                 "classifier: %s \"%s\"[%d] is not a finite float", where, key,
                                 i);
        out[i++] = (float)v->valuedouble;
    }
    double norm2 = 0;
    for (int j = 0; j < dims; j++)
        norm2 += (double)out[j] * out[j];
    if (sqrt(norm2) > WEIGHT_NORM_MAX)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "classifier: %s \"%s\" has length %.3g, more than %g: not a "
                             "classifier's weight (scores would overflow)",
                             where, key, sqrt(norm2), WEIGHT_NORM_MAX);
    return 0;
}

static int validate_history(const cJSON *history, int dims, float *scratch, vdx_error *err)
{
    int i = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, history)
    {
        char where[64];
        snprintf(where, sizeof where, "history[%d]", i);
        if (!is_object(r))
            return vdx_fail_kind(err, VDX_ERR_INVALID, "classifier: %s is not an object", where);
        static const char *const ints[] = {"labels_added", "positive", "negative", "iters"};
        for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++)
            if (!field(r, where, ints[k], is_int, "an integer", err))
                return -1;
        if (!field(r, where, "time", is_string, "a string", err) ||
            !field(r, where, "lr", is_finite_number, "a number", err) ||
            !field(r, where, "training_accuracy", is_finite_number, "a number", err))
            return -1;
        const cJSON *losses = field(r, where, "losses", is_array, "an array", err);
        if (!losses)
            return -1;
        const cJSON *loss;
        cJSON_ArrayForEach(loss, losses) if (!is_finite_number(loss)) return vdx_fail(
            err, "classifier: %s \"losses\" holds something that is not a number", where);
        if (vector_field(r, where, "weight", dims, scratch, err) != 0)
            return -1;
        i++;
    }
    return 0;
}

int vdx_concept_import_classifier(vdx_concepts *book, const char *json, size_t size,
                                  const char *new_name, cJSON **concept, vdx_error *err)
{
    if (concept)
        *concept = NULL;
    const char *what;
    size_t bad;
    if (json_text_clean(json, size, &what, &bad) != 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "classifier: the document %s at byte %zu",
                             what, bad);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, size, &end, 0);
    if (!root && json_text_is_valid(json, size))
        return vdx_fail_oom(err, "reading the classifier");
    if (!root) {
        size_t offset = end && end >= json ? (size_t)(end - json) : 0;
        int line;
        size_t column;
        json_text_position(json, offset, &line, &column);
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "classifier: not valid JSON at line %d, column %zu (byte %zu)",
                             line, column, offset);
    }
    for (; end && (size_t)(end - json) < size && strchr(" \t\r\n", *end) && *end; end++)
        ;
    if (end && (size_t)(end - json) < size && *end) {
        cJSON_Delete(root);
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "classifier: unexpected text after the JSON document (byte %zu)",
                             (size_t)(end - json));
    }
    const vdx_model_identity *ours = vdx_store_model(book->store);
    float *weight = malloc((size_t)ours->dims * sizeof *weight);
    float *initial = malloc((size_t)ours->dims * sizeof *initial);
    int rc = weight && initial ? 0 : vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    const cJSON *format = NULL, *version = NULL, *name = NULL, *prompt = NULL, *model = NULL,
                *threshold = NULL, *history = NULL;
    if (rc == 0 && !is_object(root))
        rc = vdx_fail_kind(err, VDX_ERR_INVALID, "classifier: the document is not a JSON object");
    if (rc == 0 && (!(format = field(root, "the document", "format", is_string, "a string",
                                     err)) ||
                    !(version = field(root, "the document", "version", is_int, "an integer",
                                      err))))
        rc = -1;
    if (rc == 0 && strcmp(format->valuestring, CLASSIFIER_FORMAT) != 0)
        rc = vdx_fail_kind(err, VDX_ERR_INVALID,
                           "classifier: \"format\" is \"%.*s\", expected \"%s\"",
                           (int)utf8_prefix(format->valuestring, strlen(format->valuestring),
                                            ECHO_MAX),
                           format->valuestring, CLASSIFIER_FORMAT);
    if (rc == 0 && version->valueint != CLASSIFIER_VERSION)
        rc = vdx_fail_kind(err, VDX_ERR_INVALID,
                           "classifier: version %d is not supported (this vdx reads %d)",
                           version->valueint, CLASSIFIER_VERSION);
    if (rc == 0 && (!(name = field(root, "the document", "name", is_string, "a string", err)) ||
                    !(model = field(root, "the document", "model", is_object, "an object",
                                    err))))
        rc = -1;
    vdx_model_identity theirs;
    memset(&theirs, 0, sizeof theirs);
    if (rc == 0) {
        const cJSON *model_name = field(model, "\"model\"", "name", is_string, "a string", err);
        const cJSON *fingerprint =
            model_name ? field(model, "\"model\"", "fingerprint", is_string, "a string", err)
                       : NULL;
        const cJSON *dims =
            fingerprint ? field(model, "\"model\"", "dims", is_int, "an integer", err) : NULL;
        if (!dims) {
            rc = -1;
        } else {
            const char *their_name = model_name->valuestring;
            const char *their_hash = fingerprint->valuestring;
            snprintf(theirs.name, sizeof theirs.name, "%.*s",
                     (int)utf8_prefix(their_name, strlen(their_name), sizeof theirs.name - 1),
                     their_name);
            snprintf(theirs.config_hash, sizeof theirs.config_hash, "%.*s",
                     (int)utf8_prefix(their_hash, strlen(their_hash),
                                      sizeof theirs.config_hash - 1),
                     their_hash);
            theirs.dims = dims->valueint;
            /* the whole fingerprint: ours followed by more text is not ours (the copy above
             * is cut to the identity's 64 bytes, and was all that was compared) */
            if (strlen(their_hash) >= sizeof theirs.config_hash)
                rc = vdx_fail_kind(err, VDX_ERR_INVALID,
                                   "classifier: \"model\" \"fingerprint\" is %zu bytes long, "
                                   "not a model fingerprint (at most %zu)", strlen(their_hash),
                                   sizeof theirs.config_hash - 1);
            else if (strcmp(their_hash, ours->config_hash) != 0 || theirs.dims != ours->dims)
                rc = model_mismatch_fail(err, "classifier was trained on vectors of", &theirs,
                                         ours);
        }
    }
    if (rc == 0) {
        prompt = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        if (prompt && !cJSON_IsNull(prompt) && !cJSON_IsString(prompt))
            rc = vdx_fail_kind(err, VDX_ERR_INVALID,
                               "classifier: the document \"prompt\" is not a string or null");
    }
    if (rc == 0 && (vector_field(root, "the document", "weight", ours->dims, weight, err) != 0 ||
                    vector_field(root, "the document", "initial_weight", ours->dims, initial,
                                 err) != 0))
        rc = -1;
    for (int which = 0; rc == 0 && which < 2; which++) {
        const float *v = which ? initial : weight;
        double norm2 = 0;
        for (int j = 0; j < ours->dims; j++)
            norm2 += (double)v[j] * v[j];
        if (!(norm2 > 0))
            rc = vdx_fail_kind(err, VDX_ERR_INVALID,
                               "classifier: the document \"%s\" is the zero vector",
                               which ? "initial_weight" : "weight");
    }
    if (rc == 0 &&
        (!(threshold = field(root, "the document", "threshold", is_finite_number, "a number",
                             err)) ||
         !(history = field(root, "the document", "history", is_array, "an array", err))))
        rc = -1;
    /* the trainer (documents before it was recorded: the seed's) */
    int trainer = TRAINER_SEED;
    const cJSON *trainer_field = cJSON_GetObjectItemCaseSensitive(root, "trainer");
    if (rc == 0 && trainer_field &&
        (!cJSON_IsString(trainer_field) ||
         (trainer = concept_trainer_parse(trainer_field->valuestring)) < 0))
        rc = vdx_fail_kind(err, VDX_ERR_INVALID,
                           "classifier: \"trainer\" must be " VDX_TRAINER_NAMES);
    float *last = malloc((size_t)ours->dims * sizeof *last);
    if (rc == 0 && !last)
        rc = vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    if (rc == 0)
        rc = validate_history(history, ours->dims, last, err);
    /* the current weight is the last round's; without rounds it is the initial one */
    if (rc == 0) {
        int rounds = cJSON_GetArraySize(history);
        if (rounds > 0)
            rc = vector_field(cJSON_GetArrayItem(history, rounds - 1), "the last round",
                              "weight", ours->dims, last, err);
        else
            memcpy(last, initial, (size_t)ours->dims * sizeof *last);
        if (rc == 0 && memcmp(last, weight, (size_t)ours->dims * sizeof *last) != 0)
            rc = vdx_fail_kind(err, VDX_ERR_INVALID,
                               "classifier: \"weight\" differs from the weight of the last "
                               "round of \"history\" (or \"initial_weight\" without rounds)");
    }
    free(last);
    const char *target = new_name ? new_name : rc == 0 ? name->valuestring : NULL;
    if (rc == 0)
        rc = concept_name_check(target, err);
    if (rc == 0) {
        pthread_mutex_lock(&book->lock);
        rc = concept_insert_imported(book, target,
                                     cJSON_IsString(prompt) ? prompt->valuestring : NULL, ours,
                                     initial, threshold->valuedouble, trainer, history, err);
        if (rc == 0 && concept) {
            concept_record rec;
            rc = concept_find(book, target, &rec, err);
            if (rc == 0) {
                rc = concept_json(book, &rec, 0, concept, err);
                concept_record_free(&rec);
            }
        }
        pthread_mutex_unlock(&book->lock);
    }
    free(weight);
    free(initial);
    cJSON_Delete(root);
    return rc;
}
