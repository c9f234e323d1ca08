/* Training rounds: one call of the concept's trainer over all labels (the original's fit,
 * or the anchored logistic regression with weak negatives sampled from the store; an
 * "auto" concept's round runs the one concept_next_trainer picks and records it),
 * recorded with its losses, weight and cross-validated metrics in one transaction, and
 * undoing the last round (optionally with the label changes it trained on). */
#include "explore/book.h"

#include "common/sqlite_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- train / undo ------------------------------------------------------------------- */

/* Adds a copy of item under key; 0 (nothing added, nothing leaked) when memory runs out.
 * (cJSON's add functions do not free an item they failed to attach, references
 * included.) */
static int add_copy(cJSON *object, const char *key, const cJSON *item)
{
    cJSON *copy = cJSON_Duplicate(item, 1);
    if (copy && cJSON_AddItemToObject(object, key, copy))
        return 1;
    cJSON_Delete(copy);
    return 0;
}

int concept_weak_negatives(vdx_concepts *book, const concept_record *rec, int round,
                           float **weak, size_t *n, vdx_error *err)
{
    *weak = NULL;
    *n = 0;
    if (rec->trainer != TRAINER_ANCHORED)
        return 0;
    *weak = malloc((size_t)VDX_WEAK_NEGATIVES * (size_t)rec->dims * sizeof **weak);
    if (!*weak)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for %d weak negatives",
                             VDX_WEAK_NEGATIVES);
    uint64_t seed = (uint64_t)rec->id * 0x9E3779B97F4A7C15ULL + (uint64_t)round;
    return vdx_store_sample_vectors(book->store, VDX_WEAK_NEGATIVES, seed, *weak, n, err);
}

int vdx_concept_train(vdx_concepts *book, const char *name, int iters, float lr,
                      cJSON **round, vdx_error *err)
{
    if (round)
        *round = NULL;
    if (iters > 10000 || (lr > 0 && !isfinite(lr)))
        return vdx_fail(err, "train: iters %d / lr %g out of range (iters <= 10000)", iters,
                        lr);
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    label_set set = {0};
    vdx_anchored_options anchored = VDX_ANCHORED_DEFAULTS;
    float *X = NULL, *y = NULL, *losses = NULL, *weak = NULL, bias = 0;
    size_t n_weak = 0;
    int rc = book_begin_write(book, err);
    /* from here on rec.trainer is the trainer this round runs (auto resolved) */
    if (rc == 0 && (rc = concept_find(book, name, &rec, err)) == 0 &&
        (rc = concept_next_trainer(book, &rec, &rec.trainer, err)) == 0) {
        /* iters and lr are the seed's; the anchored trainer takes iters only (its step is
         * fixed by its curvature bound) and records lr 0 */
        if (rec.trainer == TRAINER_ANCHORED) {
            iters = anchored.iters = iters > 0 ? iters : anchored.iters;
            lr = 0;
        } else {
            iters = iters > 0 ? iters : VDX_FIT_ITERS;
            lr = lr > 0 ? lr : VDX_FIT_LR;
        }
        if (!(losses = malloc((size_t)iters * sizeof *losses)))
            rc = vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    }
    if (rc == 0 && (rc = concept_check_model(book, &rec, err)) == 0 &&
        (rc = concept_labels_load(book, rec.id, &set, err)) == 0) {
        if (set.n == 0)
            rc = vdx_fail_kind(err, VDX_ERR_INVALID, "concept '%s' has no labels to train on",
                               name);
        X = rc == 0 ? malloc(set.n * (size_t)rec.dims * sizeof *X) : NULL;
        y = rc == 0 ? malloc(set.n * sizeof *y) : NULL;
        if (rc == 0 && (!X || !y))
            rc = vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for %zu labelled vectors", set.n);
        if (rc == 0)
            rc = vdx_store_get_vectors(book->store, (const char *const *)set.ids, set.n, X, err);
    }
    int positive = 0, negative = 0, pending = 0;
    double accuracy = 0;
    if (rc == 0) {
        for (size_t i = 0; i < set.n; i++)
            y[i] = (float)set.labels[i];
        if (rec.trainer == TRAINER_ANCHORED) {
            /* weak negatives: a uniform sample of the collection, drawn anew each round */
            rc = concept_weak_negatives(book, &rec, rec.rounds + 1, &weak, &n_weak, err);
            if (rc == 0)
                rc = vdx_classifier_fit_anchored(X, y, (int)set.n, weak, (int)n_weak,
                                                 rec.initial_weight, rec.dims, &anchored,
                                                 rec.weight, &bias, losses, err);
        } else {
            rc = vdx_classifier_fit(X, y, (int)set.n, rec.dims, rec.weight, iters, lr, losses,
                                    err);
        }
        if (rc == 0 && !weight_is_usable(rec.weight, rec.dims))
            rc = vdx_fail(err, "concept '%s': training produced a weight that is not finite "
                               "(lr %g too large?)", name, lr);
        if (rc != 0)
            vdx_error_prefix(err, "training concept '%s'", name);
    }
    cJSON *cv = NULL;
    if (rc == 0) {
        accuracy = vdx_classifier_accuracy(X, y, (int)set.n, rec.dims, rec.weight,
                                           rec.threshold);
        rc = concept_counts(book, &rec, &positive, &negative, &pending, err);
    }
    if (rc == 0) {
        /* the round's metrics, measured as evaluate would right after it */
        concept_record trained = rec;
        trained.rounds = rec.rounds + 1;
        trained.last_iters = iters;
        trained.last_lr = lr;
        rc = concept_cross_validate(&trained, &set, X, y, weak, (int)n_weak, &cv, err);
    }
    /* the calibration of the new weight, fitted on the labels (audit labels weighted for
     * the unlabelled collection); none when the labels hold one class only */
    cJSON *calibration = NULL;
    calib_map calib;
    int calibrated = 0;
    if (rc == 0)
        rc = audit_calibrate(book, &rec, rec.weight, &set, X, &calib, &calibrated, &calibration,
                             err);
    if (rc == 0) {
        cJSON *loss_list = json_float_array(losses, iters);
        char *losses_json = cJSON_PrintUnformatted(loss_list);
        cJSON_Delete(loss_list);
        char now[32];
        clock_utc_iso_now(now);
        sqlite3_stmt *stmt = book_prepare(
            book,
            "INSERT INTO rounds(concept, round, time, labels_added, positive, negative, iters,"
            " lr, losses, training_accuracy, weight, metrics)"
            " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
            err);
        cJSON *metrics = cJSON_CreateObject();
        int complete = metrics && add_copy(metrics, "cross_validation", cv) &&
                       cJSON_AddNumberToObject(metrics, "threshold", rec.threshold) &&
                       cJSON_AddStringToObject(metrics, "trainer",
                                               concept_trainer_name(rec.trainer)) &&
                       (rec.trainer != TRAINER_ANCHORED ||
                        cJSON_AddNumberToObject(metrics, "bias", shortest_float(bias))) &&
                       (!calibration || add_copy(metrics, "calibration", calibration));
        char *metrics_json = complete ? cJSON_PrintUnformatted(metrics) : NULL;
        cJSON_Delete(metrics);
        if (!stmt || !losses_json || !metrics_json) {
            rc = stmt ? vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory") : -1;
        } else {
            sqlite3_bind_int64(stmt, 1, rec.id);
            sqlite3_bind_int(stmt, 2, rec.rounds + 1);
            sqlite3_bind_text(stmt, 3, now, -1, SQLITE_STATIC);
            sqlite3_bind_int(stmt, 4, pending);
            sqlite3_bind_int(stmt, 5, positive);
            sqlite3_bind_int(stmt, 6, negative);
            sqlite3_bind_int(stmt, 7, iters);
            sqlite3_bind_double(stmt, 8, lr);
            sqlite3_bind_text(stmt, 9, losses_json, -1, SQLITE_STATIC);
            sqlite3_bind_double(stmt, 10, accuracy);
            sqlite3_bind_blob(stmt, 11, rec.weight, rec.dims * (int)sizeof(float),
                              SQLITE_STATIC); /* no copy that could fail: both live past the step */
            sqlite3_bind_text(stmt, 12, metrics_json, -1, SQLITE_STATIC);
            if (sqlite3_step(stmt) != SQLITE_DONE)
                rc = book_fail(book, err, "recording a round");
        }
        sqlite3_finalize(stmt);
        cJSON_free(losses_json);
        cJSON_free(metrics_json);
        if (rc == 0)
            rc = book_touch(book, rec.id, err);
    }
    rc = book_end_write(book, rc, err);
    if (rc == 0 && round) {
        /* the round is recorded: a result that cannot be built is reported, never
         * handed out with keys missing */
        cJSON *r = cJSON_CreateObject(), *loss_list = json_float_array(losses, iters);
        char now[32];
        clock_utc_iso_now(now);
        int ok = r && loss_list && cJSON_AddNumberToObject(r, "round", rec.rounds + 1) &&
                 cJSON_AddStringToObject(r, "time", now) &&
                 cJSON_AddNumberToObject(r, "labels_added", pending) &&
                 cJSON_AddNumberToObject(r, "positive", positive) &&
                 cJSON_AddNumberToObject(r, "negative", negative) &&
                 cJSON_AddNumberToObject(r, "iters", iters) &&
                 cJSON_AddNumberToObject(r, "lr", shortest_float(lr)) &&
                 cJSON_AddStringToObject(r, "trainer", concept_trainer_name(rec.trainer)) &&
                 (rec.trainer != TRAINER_ANCHORED ||
                  cJSON_AddNumberToObject(r, "bias", shortest_float(bias))) &&
                 cJSON_AddItemToObject(r, "losses", loss_list);
        if (ok)
            loss_list = NULL; /* r owns it */
        ok = ok && cJSON_AddNumberToObject(r, "training_accuracy", accuracy) &&
             cJSON_AddNumberToObject(r, "weight_norm", weight_norm(rec.weight, rec.dims));
        cJSON_Delete(loss_list);
        if (ok && cv) {
            ok = cJSON_AddItemToObject(r, "cross_validation", cv);
            if (ok)
                cv = NULL; /* r owns it */
        }
        if (ok) {
            cJSON *c = calibration ? calibration : cJSON_CreateNull();
            ok = c && cJSON_AddItemToObject(r, "calibration", c);
            if (ok || c == calibration)
                calibration = NULL; /* r owns it, or it is freed below */
            if (!ok)
                cJSON_Delete(c);
        }
        if (ok) {
            *round = r;
        } else {
            cJSON_Delete(r);
            rc = vdx_fail_oom(err, "describing round %d of concept '%s' (it is recorded)",
                              rec.rounds + 1, name);
        }
    }
    cJSON_Delete(cv);
    cJSON_Delete(calibration);
    pthread_mutex_unlock(&book->lock);
    concept_record_free(&rec);
    label_set_free(&set);
    free(X);
    free(y);
    free(losses);
    free(weak);
    return rc;
}

/* Runs a statement bound to (concept ?1, int ?2). */
static int run_on_round(vdx_concepts *book, const char *sql, int64_t concept, int round,
                        vdx_error *err)
{
    sqlite3_stmt *stmt = book_prepare(book, sql, err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept);
    sqlite3_bind_int(stmt, 2, round);
    int rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : book_fail(book, err, "undoing a round");
    sqlite3_finalize(stmt);
    return rc;
}

int vdx_concept_undo_round(vdx_concepts *book, const char *name, int revert_labels,
                           cJSON **result, vdx_error *err)
{
    if (result)
        *result = NULL;
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    int rc = book_begin_write(book, err), round = 0, reverted = 0, kept = 0;
    if (rc == 0 && (rc = concept_find(book, name, &rec, err)) == 0) {
        round = rec.rounds;
        if (round == 0)
            rc = vdx_fail_kind(err, VDX_ERR_CONFLICT, "concept '%s' has no round to undo", name);
        /* the changes made since the round go with the changes it trained on */
        if (rc == 0)
            rc = run_on_round(book,
                              "UPDATE label_events SET round = ?2 WHERE concept = ?1"
                              " AND round = ?2 + 1",
                              rec.id, round, err);
        if (rc == 0)
            rc = run_on_round(book, "DELETE FROM rounds WHERE concept = ?1 AND round = ?2",
                              rec.id, round, err);
        if (rc == 0)
            rc = run_on_round(book, "DELETE FROM candidate_lists WHERE concept = ?1 AND round >= ?2",
                              rec.id, round, err);
        /* take back, newest first, every action of those changes still in force */
        while (rc == 0 && revert_labels) {
            sqlite3_stmt *stmt = book_prepare(
                book,
                "SELECT COALESCE(MAX(action), 0) FROM label_events WHERE concept = ?1"
                " AND round = ?2 AND undone = 0",
                err);
            if (!stmt) {
                rc = -1;
                break;
            }
            sqlite3_bind_int64(stmt, 1, rec.id);
            sqlite3_bind_int(stmt, 2, round);
            int64_t action = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
            sqlite3_finalize(stmt);
            if (action < 0)
                rc = book_fail(book, err, "finding a label action");
            if (action <= 0)
                break;
            int n = 0;
            rc = label_action_replay(book, rec.id, action, 0, NULL, &n, err);
            reverted += n;
        }
        if (rc == 0)
            rc = book_touch(book, rec.id, err);
    }
    rc = book_end_write(book, rc, err);
    if (rc == 0) {
        concept_record after;
        rc = concept_find(book, name, &after, err);
        int positive = 0, negative = 0;
        if (rc == 0)
            rc = concept_counts(book, &after, &positive, &negative, &kept, err);
        if (rc == 0 && result) {
            cJSON *out = cJSON_CreateObject();
            char weight[64];
            if (after.rounds)
                snprintf(weight, sizeof weight, "round %d", after.rounds);
            else
                snprintf(weight, sizeof weight, "initial");
            cJSON_AddStringToObject(out, "undone", "round");
            cJSON_AddNumberToObject(out, "round", round);
            cJSON_AddStringToObject(out, "weight", weight);
            cJSON_AddNumberToObject(out, "labels_reverted", reverted);
            cJSON_AddNumberToObject(out, "labels_kept", revert_labels ? 0 : kept);
            cJSON_AddNumberToObject(out, "positive", positive);
            cJSON_AddNumberToObject(out, "negative", negative);
            cJSON_AddNumberToObject(out, "pending", kept);
            *result = out;
        }
        if (rc == 0)
            concept_record_free(&after);
    }
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    return rc;
}
