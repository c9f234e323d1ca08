/* Concepts' lifecycle in the book: create (the initial weight from a prompt and/or
 * examples), list, get, rename, delete, copy and the threshold. Each operation is one
 * write transaction (change_concept) under the book's lock. */
#include "explore/book.h"

#include "common/sqlite_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- create ------------------------------------------------------------------------- */

static int concept_name_taken(vdx_concepts *book, const char *name, vdx_error *err)
{
    sqlite3_stmt *stmt = book_prepare(book, "SELECT 1 FROM concepts WHERE name = ?1", err);
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_ROW)
        return vdx_fail_kind(err, VDX_ERR_CONFLICT, "a concept named '%s' already exists", name);
    return rc == SQLITE_DONE ? 0 : book_fail(book, err, "looking up a concept name");
}

/* Initial weight of a new concept from its prompt vector and/or examples. */
static int initial_weight(vdx_concepts *book, const vdx_concept_spec *spec, float *w,
                          int *truncated, vdx_error *err)
{
    const vdx_model_identity *ours = vdx_store_model(book->store);
    int dims = ours->dims;
    float *text = NULL, *mean = NULL;
    int rc = 0;
    if (spec->text_vector) {
        if (spec->text_model && (strcmp(spec->text_model->config_hash, ours->config_hash) != 0 ||
                                 spec->text_model->dims != dims))
            return model_mismatch_fail(err, "the prompt's text vector comes from",
                                       spec->text_model, ours);
        text = malloc((size_t)dims * sizeof *text);
        if (!text)
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        memcpy(text, spec->text_vector, (size_t)dims * sizeof *text);
    } else if (spec->prompt && spec->model) {
        vdx_model_identity theirs;
        vdx_clip_identity(spec->model, &theirs);
        if (strcmp(theirs.config_hash, ours->config_hash) != 0 || theirs.dims != dims)
            return model_mismatch_fail(err, "the prompt would be embedded by", &theirs, ours);
        text = malloc((size_t)dims * sizeof *text);
        if (!text)
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        if (vdx_clip_embed_text(spec->model, spec->prompt, text, truncated, err) != 0) {
            free(text);
            return vdx_error_prefix(err, "embedding the prompt");
        }
    } else if (spec->prompt) {
        return vdx_fail(err, "concept '%s': the prompt needs its text vector or a model to "
                             "embed it", spec->name);
    }
    if (spec->n_examples) {
        float *vectors = malloc(spec->n_examples * (size_t)dims * sizeof *vectors);
        mean = calloc((size_t)dims, sizeof *mean);
        if (!vectors || !mean) {
            rc = vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for %zu examples", spec->n_examples);
        } else if ((rc = book_check_ids_known(book, spec->example_ids, spec->n_examples, err)) == 0 &&
                   (rc = vdx_store_get_vectors(book->store, spec->example_ids, spec->n_examples,
                                               vectors, err)) == 0) {
            for (int j = 0; j < dims; j++) {
                double sum = 0;
                for (size_t i = 0; i < spec->n_examples; i++)
                    sum += vectors[i * (size_t)dims + (size_t)j];
                mean[j] = (float)(sum / (double)spec->n_examples);
            }
        }
        free(vectors);
    }
    if (rc == 0) {
        if (text && mean) {
            vdx_l2_normalize(text, dims);
            vdx_l2_normalize(mean, dims);
            for (int j = 0; j < dims; j++)
                w[j] = text[j] + mean[j];
        } else if (text) {
            memcpy(w, text, (size_t)dims * sizeof *w);
        } else if (mean) {
            memcpy(w, mean, (size_t)dims * sizeof *w);
        } else {
            rc = vdx_fail(err, "concept '%s' needs a prompt or example items to start from",
                          spec->name);
        }
    }
    if (rc == 0 && !weight_is_usable(w, dims))
        rc = vdx_fail(err, "concept '%s': the initial weight is zero or not finite",
                      spec->name);
    free(text);
    free(mean);
    return rc;
}

static int load_json(vdx_concepts *book, const char *name, cJSON **concept, vdx_error *err)
{
    concept_record rec;
    if (concept_find(book, name, &rec, err) != 0)
        return -1;
    int rc = concept_json(book, &rec, 0, concept, err);
    concept_record_free(&rec);
    return rc;
}

static int insert_concept(vdx_concepts *book, const char *name, const char *prompt,
                          const char *examples_json, const vdx_model_identity *model,
                          const float *initial, double threshold, int trainer, int64_t *id,
                          vdx_error *err)
{
    char now[32];
    clock_utc_iso_now(now);
    sqlite3_stmt *stmt = book_prepare(
        book,
        "INSERT INTO concepts(name, prompt, examples, created, updated, model_name,"
        " model_fingerprint, dims, initial_weight, threshold, trainer)"
        " VALUES(?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (prompt)
        sqlite3_bind_text(stmt, 2, prompt, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, examples_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, model->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, model->config_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 7, model->dims);
    sqlite3_bind_blob(stmt, 8, initial, model->dims * (int)sizeof(float), SQLITE_STATIC);
    sqlite3_bind_double(stmt, 9, threshold);
    sqlite3_bind_text(stmt, 10, concept_trainer_name(trainer), -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return book_fail(book, err, "inserting a concept");
    *id = sqlite3_last_insert_rowid(book->db);
    return 0;
}

int vdx_concept_create(vdx_concepts *book, const vdx_concept_spec *spec, cJSON **concept,
                       vdx_error *err)
{
    if (concept)
        *concept = NULL;
    if (concept_name_check(spec->name, err) != 0)
        return -1;
    int trainer = spec->trainer ? concept_trainer_parse(spec->trainer) : TRAINER_AUTO;
    if (trainer < 0)
        return vdx_fail(err, "unknown trainer '%s' (" VDX_TRAINER_NAMES ")", spec->trainer);
    const vdx_model_identity *model = vdx_store_model(book->store);
    float *w = malloc((size_t)model->dims * sizeof *w);
    if (!w)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    /* the examples as recorded: every one, or out of memory */
    cJSON *examples = cJSON_CreateArray();
    int complete = examples != NULL;
    for (size_t i = 0; complete && i < spec->n_examples; i++) {
        cJSON *id = cJSON_CreateString(spec->example_ids[i] ? spec->example_ids[i] : "");
        complete = id && cJSON_AddItemToArray(examples, id);
        if (!complete)
            cJSON_Delete(id);
    }
    char *examples_json = complete ? cJSON_PrintUnformatted(examples) : NULL;
    cJSON_Delete(examples);
    if (!examples_json) {
        free(w);
        return vdx_fail_oom(err, "recording the examples of concept '%s'", spec->name);
    }

    pthread_mutex_lock(&book->lock);
    int64_t id;
    int truncated = 0;
    int rc = initial_weight(book, spec, w, &truncated, err);
    if (rc == 0 && (rc = book_begin_write(book, err)) == 0) {
        if ((rc = concept_name_taken(book, spec->name, err)) == 0)
            rc = insert_concept(book, spec->name, spec->prompt, examples_json, model, w, 0,
                                trainer, &id, err);
        rc = book_end_write(book, rc, err);
    }
    if (rc == 0 && concept)
        rc = load_json(book, spec->name, concept, err);
    if (rc == 0 && concept && truncated)
        cJSON_AddTrueToObject(*concept, "prompt_truncated");
    pthread_mutex_unlock(&book->lock);
    free(w);
    cJSON_free(examples_json);
    return rc;
}

int concept_insert_imported(vdx_concepts *book, const char *name, const char *prompt,
                            const vdx_model_identity *model, const float *initial_weight,
                            double threshold, int trainer, const cJSON *history,
                            vdx_error *err)
{
    if (book_begin_write(book, err) != 0)
        return -1;
    int64_t id;
    int rc = concept_name_taken(book, name, err);
    if (rc == 0)
        rc = insert_concept(book, name, prompt, "[]", model, initial_weight, threshold, trainer,
                            &id, err);
    sqlite3_stmt *stmt = rc == 0 ? book_prepare(book,
                                              "INSERT INTO rounds(concept, round, time,"
                                              " labels_added, positive, negative, iters, lr,"
                                              " losses, training_accuracy, weight, metrics)"
                                              " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
                                              err)
                                 : NULL;
    if (rc == 0 && !stmt)
        rc = -1;
    float *w = malloc((size_t)model->dims * sizeof *w);
    const cJSON *r;
    int round = 0;
    cJSON_ArrayForEach(r, history)
    {
        if (rc != 0 || !w)
            break;
        round++;
        const cJSON *weight = cJSON_GetObjectItem(r, "weight");
        for (int j = 0; j < model->dims; j++)
            w[j] = (float)cJSON_GetArrayItem(weight, j)->valuedouble;
        char *losses = cJSON_PrintUnformatted(cJSON_GetObjectItem(r, "losses"));
        /* the round's calibration travels with it (its probabilities stay the same) */
        char *metrics = NULL;
        const cJSON *c = cJSON_GetObjectItem(r, "calibration");
        const cJSON *a = cJSON_GetObjectItem(c, "a"), *b = cJSON_GetObjectItem(c, "b");
        int calibrated = cJSON_IsNumber(a) && cJSON_IsNumber(b) && a->valuedouble > 0 &&
                         isfinite(a->valuedouble) && isfinite(b->valuedouble);
        /* the round's trainer (and the anchored trainer's bias) travel with it too */
        const cJSON *trainer = cJSON_GetObjectItem(r, "trainer"), *bias = cJSON_GetObjectItem(r, "bias");
        int anchored = cJSON_IsString(trainer) &&
                       concept_trainer_parse(trainer->valuestring) == TRAINER_ANCHORED;
        if (calibrated || anchored) {
            cJSON *m = cJSON_CreateObject(), *calibration = NULL;
            int ok = m != NULL;
            if (ok && calibrated)
                ok = (calibration = cJSON_AddObjectToObject(m, "calibration")) &&
                     cJSON_AddStringToObject(calibration, "method", "platt") &&
                     cJSON_AddNumberToObject(calibration, "a", a->valuedouble) &&
                     cJSON_AddNumberToObject(calibration, "b", b->valuedouble);
            if (ok && anchored)
                ok = cJSON_AddStringToObject(m, "trainer", "anchored") &&
                     (!cJSON_IsNumber(bias) || !isfinite(bias->valuedouble) ||
                      cJSON_AddNumberToObject(m, "bias", bias->valuedouble));
            if (ok)
                metrics = cJSON_PrintUnformatted(m);
            cJSON_Delete(m);
            if (!metrics)
                rc = vdx_fail_oom(err, "importing the calibration of round %d", round);
        }
        if (rc != 0) {
            cJSON_free(losses);
            break;
        }
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, id);
        sqlite3_bind_int(stmt, 2, round);
        sqlite3_bind_text(stmt, 3, cJSON_GetObjectItem(r, "time")->valuestring, -1,
                          SQLITE_STATIC);
        sqlite3_bind_int(stmt, 4, cJSON_GetObjectItem(r, "labels_added")->valueint);
        sqlite3_bind_int(stmt, 5, cJSON_GetObjectItem(r, "positive")->valueint);
        sqlite3_bind_int(stmt, 6, cJSON_GetObjectItem(r, "negative")->valueint);
        sqlite3_bind_int(stmt, 7, cJSON_GetObjectItem(r, "iters")->valueint);
        sqlite3_bind_double(stmt, 8, cJSON_GetObjectItem(r, "lr")->valuedouble);
        sqlite3_bind_text(stmt, 9, losses ? losses : "[]", -1, SQLITE_STATIC);
        sqlite3_bind_double(stmt, 10,
                            cJSON_GetObjectItem(r, "training_accuracy")->valuedouble);
        sqlite3_bind_blob(stmt, 11, w, model->dims * (int)sizeof(float), SQLITE_STATIC);
        if (metrics)
            sqlite3_bind_text(stmt, 12, metrics, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(stmt, 12);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = book_fail(book, err, "inserting an imported round");
        cJSON_free(losses);
        cJSON_free(metrics);
    }
    if (!w && rc == 0)
        rc = vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    free(w);
    sqlite3_finalize(stmt);
    return book_end_write(book, rc, err);
}

/* ---- list / get / rename / delete / copy / threshold -------------------------------- */

int vdx_concept_list(vdx_concepts *book, cJSON **list, vdx_error *err)
{
    *list = NULL;
    pthread_mutex_lock(&book->lock);
    sqlite3_stmt *stmt = book_prepare(
        book,
        "SELECT c.name, c.prompt, c.created, c.updated, c.threshold,"
        " (SELECT COUNT(*) FROM labels l WHERE l.concept = c.id AND l.label = 1),"
        " (SELECT COUNT(*) FROM labels l WHERE l.concept = c.id AND l.label = 0),"
        " (SELECT COALESCE(MAX(round), 0) FROM rounds r WHERE r.concept = c.id)"
        " FROM concepts c ORDER BY c.id",
        err);
    int rc = stmt ? 0 : -1, step = SQLITE_DONE;
    cJSON *out = cJSON_CreateArray();
    if (stmt && !out)
        rc = vdx_fail_oom(err, "listing concepts");
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        /* every key or none: a summary with holes is wrong */
        cJSON *c = cJSON_CreateObject();
        int added = c && cJSON_AddItemToArray(out, c);
        if (!added)
            cJSON_Delete(c); /* not in the list: ours to free */
        const char *prompt = (const char *)sqlite3_column_text(stmt, 1);
        int ok = added &&
                 cJSON_AddStringToObject(c, "name", (const char *)sqlite3_column_text(stmt, 0)) &&
                 (sqlite3_column_type(stmt, 1) == SQLITE_NULL
                      ? cJSON_AddNullToObject(c, "prompt") != NULL
                      : prompt && cJSON_AddStringToObject(c, "prompt", prompt) != NULL) &&
                 cJSON_AddStringToObject(c, "created", (const char *)sqlite3_column_text(stmt, 2)) &&
                 cJSON_AddStringToObject(c, "updated", (const char *)sqlite3_column_text(stmt, 3)) &&
                 cJSON_AddNumberToObject(c, "threshold", sqlite3_column_double(stmt, 4)) &&
                 cJSON_AddNumberToObject(c, "positive", sqlite3_column_int(stmt, 5)) &&
                 cJSON_AddNumberToObject(c, "negative", sqlite3_column_int(stmt, 6)) &&
                 cJSON_AddNumberToObject(c, "rounds", sqlite3_column_int(stmt, 7));
        if (!ok)
            rc = vdx_fail_oom(err, "listing the concepts of %s", book->path);
    }
    if (rc == 0 && stmt && step != SQLITE_DONE)
        rc = book_fail(book, err, "listing concepts");
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&book->lock);
    if (rc != 0)
        cJSON_Delete(out);
    else
        *list = out;
    return rc;
}

int vdx_concept_get(vdx_concepts *book, const char *name, int with_weight, cJSON **concept,
                    vdx_error *err)
{
    *concept = NULL;
    pthread_mutex_lock(&book->lock);
    concept_record rec;
    int rc = -1;
    if (book_exec(book, "BEGIN", err) == 0) {
        if (concept_find(book, name, &rec, err) == 0) {
            rc = concept_json(book, &rec, with_weight, concept, err);
            concept_record_free(&rec);
        }
        book_rollback(book);
    }
    pthread_mutex_unlock(&book->lock);
    return rc;
}

int vdx_concept_weight(vdx_concepts *book, const char *name, float *w, int dims,
                       vdx_error *err)
{
    pthread_mutex_lock(&book->lock);
    concept_record rec;
    int rc = concept_find(book, name, &rec, err);
    if (rc == 0) {
        if (rec.dims != dims)
            rc = vdx_fail(err, "concept '%s' has %d dims, not %d", name, rec.dims, dims);
        else
            memcpy(w, rec.weight, (size_t)dims * sizeof *w);
        concept_record_free(&rec);
    }
    pthread_mutex_unlock(&book->lock);
    return rc;
}

/* One change to a stored concept: runs inside change_concept's write transaction. */
typedef int (*concept_change)(vdx_concepts *book, const concept_record *rec, const void *arg,
                              vdx_error *err);

/* Finds the concept called name and applies change to it in one write transaction under
 * the book's lock: committed when the change succeeds, rolled back otherwise. */
static int change_concept(vdx_concepts *book, const char *name, concept_change change,
                          const void *arg, vdx_error *err)
{
    pthread_mutex_lock(&book->lock);
    int rc = book_begin_write(book, err);
    if (rc == 0) {
        concept_record rec;
        rc = concept_find(book, name, &rec, err);
        if (rc == 0)
            rc = change(book, &rec, arg, err);
        concept_record_free(&rec);
        rc = book_end_write(book, rc, err);
    }
    pthread_mutex_unlock(&book->lock);
    return rc;
}

typedef struct rename_args {
    const char *old_name, *new_name;
} rename_args;

static int rename_concept(vdx_concepts *book, const concept_record *rec, const void *arg,
                          vdx_error *err)
{
    const rename_args *names = arg;
    if (strcmp(names->old_name, names->new_name) == 0)
        return 0;
    int rc = concept_name_taken(book, names->new_name, err);
    if (rc == 0)
        rc = book_run_on_concept(book, "UPDATE concepts SET name = ?1 WHERE id = ?2",
                            names->new_name, rec->id, err);
    if (rc == 0)
        rc = book_touch(book, rec->id, err);
    return rc;
}

int vdx_concept_rename(vdx_concepts *book, const char *old_name, const char *new_name,
                       vdx_error *err)
{
    if (concept_name_check(new_name, err) != 0)
        return -1;
    rename_args names = {old_name, new_name};
    return change_concept(book, old_name, rename_concept, &names, err);
}

static int delete_concept(vdx_concepts *book, const concept_record *rec, const void *arg,
                          vdx_error *err)
{
    static const char *const deletes[] = {
        "DELETE FROM labels WHERE ?1 IS NULL AND concept = ?2",
        "DELETE FROM label_events WHERE ?1 IS NULL AND concept = ?2",
        "DELETE FROM rounds WHERE ?1 IS NULL AND concept = ?2",
        "DELETE FROM candidate_lists WHERE ?1 IS NULL AND concept = ?2",
        "DELETE FROM audit_items WHERE ?1 IS NULL AND concept = ?2",
        "DELETE FROM concepts WHERE ?1 IS NULL AND id = ?2",
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof deletes / sizeof deletes[0]; i++)
        rc = book_run_on_concept(book, deletes[i], NULL, rec->id, err);
    return rc;
}

int vdx_concept_delete(vdx_concepts *book, const char *name, vdx_error *err)
{
    return change_concept(book, name, delete_concept, NULL, err);
}

static int copy_concept(vdx_concepts *book, const concept_record *rec, const void *arg,
                        vdx_error *err)
{
    static const char *const copies[] = {
        "INSERT INTO labels(concept, item, url, label, time, seq)"
        " SELECT ?1, item, url, label, time, seq FROM labels WHERE concept = ?2",
        "INSERT INTO label_events(concept, round, item, new_label, new_url, time, old_label,"
        " old_url, old_time, old_seq, action, undone) SELECT ?1, round, item, new_label,"
        " new_url, time, old_label, old_url, old_time, old_seq, action, undone"
        " FROM label_events WHERE concept = ?2 ORDER BY seq",
        "INSERT INTO rounds(concept, round, time, labels_added, positive, negative, iters, lr,"
        " losses, training_accuracy, weight, metrics) SELECT ?1, round, time, labels_added,"
        " positive, negative, iters, lr, losses, training_accuracy, weight, metrics"
        " FROM rounds WHERE concept = ?2",
        "INSERT INTO audit_items(concept, item, drawn, time, weight)"
        " SELECT ?1, item, drawn, time, weight FROM audit_items WHERE concept = ?2",
    };
    const char *new_name = arg;
    int64_t new_id = 0;
    int rc = concept_name_taken(book, new_name, err);
    if (rc == 0)
        rc = insert_concept(book, new_name, rec->prompt, rec->examples_json, &rec->model,
                            rec->initial_weight, rec->threshold, rec->trainer, &new_id, err);
    for (size_t i = 0; rc == 0 && i < sizeof copies / sizeof copies[0]; i++) {
        sqlite3_stmt *stmt = book_prepare(book, copies[i], err);
        if (!stmt)
            return -1;
        sqlite3_bind_int64(stmt, 1, new_id);
        sqlite3_bind_int64(stmt, 2, rec->id);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = book_fail(book, err, "copying a concept");
        sqlite3_finalize(stmt);
    }
    return rc;
}

int vdx_concept_copy(vdx_concepts *book, const char *name, const char *new_name,
                     vdx_error *err)
{
    if (concept_name_check(new_name, err) != 0)
        return -1;
    return change_concept(book, name, copy_concept, new_name, err);
}

static int set_threshold(vdx_concepts *book, const concept_record *rec, const void *arg,
                         vdx_error *err)
{
    sqlite3_stmt *stmt = book_prepare(book, "UPDATE concepts SET threshold = ?1 WHERE id = ?2",
                                    err);
    if (!stmt)
        return -1;
    sqlite3_bind_double(stmt, 1, *(const double *)arg);
    sqlite3_bind_int64(stmt, 2, rec->id);
    int rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : book_fail(book, err, "setting the threshold");
    sqlite3_finalize(stmt);
    return rc == 0 ? book_touch(book, rec->id, err) : rc;
}

static int set_trainer(vdx_concepts *book, const concept_record *rec, const void *arg,
                       vdx_error *err)
{
    int rc = book_run_on_concept(book, "UPDATE concepts SET trainer = ?1 WHERE id = ?2",
                                 concept_trainer_name(*(const int *)arg), rec->id, err);
    return rc == 0 ? book_touch(book, rec->id, err) : rc;
}

int vdx_concept_set_trainer(vdx_concepts *book, const char *name, const char *trainer,
                            vdx_error *err)
{
    int which = concept_trainer_parse(trainer);
    if (which < 0)
        return vdx_fail(err, "unknown trainer '%s' (" VDX_TRAINER_NAMES ")",
                        trainer ? trainer : "");
    return change_concept(book, name, set_trainer, &which, err);
}

int vdx_concept_set_threshold(vdx_concepts *book, const char *name, double threshold,
                              vdx_error *err)
{
    if (!isfinite(threshold))
        return vdx_fail(err, "the threshold must be a finite number");
    return change_concept(book, name, set_threshold, &threshold, err);
}
