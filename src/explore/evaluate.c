/* How good is a concept, and what does it find: training accuracy on the labels, a
 * cross-validated estimate (leave-one-out up to 50 labels, else 5-fold) of the same fit
 * procedure started from the concept's initial weight (at most 100 steps, over at most
 * 1000 labels sampled evenly within each class, so its cost stays bounded however many
 * rounds and labels the concept has), the collection's score
 * distribution (count above the threshold, histogram) and the ranking of the whole
 * collection by score (one matrix-vector product over the store's vectors). */
#include "explore/book.h"
#include "common/team.h"
#include "explore/classifier.h"

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BINS 40
#define MAX_BINS 10000
#define LEAVE_ONE_OUT_MAX 50
#define FOLDS 5
#define MAX_CV_STEPS 100
#define MAX_CV_LABELS 1000
/* labelled items listed with their scores (the histogram's ticks) */
#define MAX_TICKS 2000

/* Labels and their vectors, for the evaluation of a concept. */
typedef struct labelled_rows {
    label_set set;
    float *X, *y;
} labelled_rows;

static void labelled_rows_free(labelled_rows *rows)
{
    label_set_free(&rows->set);
    free(rows->X);
    free(rows->y);
    memset(rows, 0, sizeof *rows);
}

static int labelled_rows_load(vdx_concepts *book, const concept_record *rec,
                              labelled_rows *rows, vdx_error *err)
{
    memset(rows, 0, sizeof *rows);
    if (concept_labels_load(book, rec->id, &rows->set, err) != 0)
        return -1;
    size_t n = rows->set.n;
    rows->X = malloc((n ? n : 1) * (size_t)rec->dims * sizeof *rows->X);
    rows->y = malloc((n ? n : 1) * sizeof *rows->y);
    if (!rows->X || !rows->y) {
        labelled_rows_free(rows);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for %zu labelled vectors", n);
    }
    for (size_t i = 0; i < n; i++)
        rows->y[i] = (float)rows->set.labels[i];
    if (n && vdx_store_get_vectors(book->store, (const char *const *)rows->set.ids, n, rows->X,
                                   err) != 0) {
        labelled_rows_free(rows);
        return -1;
    }
    return 0;
}

static double dot(const float *a, const float *b, int dims)
{
    double s = 0;
    for (int j = 0; j < dims; j++)
        s += (double)a[j] * b[j];
    return s;
}

static void add_ratio(cJSON *obj, const char *key, int num, int den)
{
    if (den > 0)
        cJSON_AddNumberToObject(obj, key, (double)num / den);
    else
        cJSON_AddNullToObject(obj, key);
}

/* Chooses the labels the cross-validation uses: all of them up to MAX_CV_LABELS, else
 * MAX_CV_LABELS spread evenly over each class (in label order), each class keeping its
 * share and at least 2. Returns how many indices it put in `chosen`. */
static int choose_cv_labels(const label_set *set, int positive, int *chosen)
{
    int n = (int)set->n;
    if (n <= MAX_CV_LABELS) {
        for (int i = 0; i < n; i++)
            chosen[i] = i;
        return n;
    }
    int want_pos = (int)((double)MAX_CV_LABELS * positive / n + 0.5);
    want_pos = want_pos < 2 ? 2 : want_pos > MAX_CV_LABELS - 2 ? MAX_CV_LABELS - 2 : want_pos;
    int want[2] = {MAX_CV_LABELS - want_pos, want_pos}, have[2] = {n - positive, positive};
    int seen[2] = {0, 0}, taken[2] = {0, 0}, m = 0;
    for (int i = 0; i < n; i++) {
        int c = set->labels[i] == 1;
        /* item k of the class is taken when it is the first at or after taken·have/want */
        if (taken[c] < want[c] &&
            (int64_t)seen[c] * want[c] >= (int64_t)taken[c] * have[c]) {
            chosen[m++] = i;
            taken[c]++;
        }
        seen[c]++;
    }
    return m;
}

/* Precision, recall and F1 of counts (null when undefined). */
static void add_prf(cJSON *obj, int tp, int fp, int fn)
{
    add_ratio(obj, "precision", tp, tp + fp);
    add_ratio(obj, "recall", tp, tp + fn);
    add_ratio(obj, "f1", 2 * tp, 2 * tp + fp + fn);
}

/* Refits from the initial weight without each fold and predicts the fold. */
int concept_cross_validate(const concept_record *rec, const label_set *set, const float *X_all,
                           const float *y_all, const float *weak, int n_weak, cJSON **out,
                           vdx_error *err)
{
    int n_labels = (int)set->n, dims = rec->dims, positive = 0;
    for (int i = 0; i < n_labels; i++)
        positive += set->labels[i] == 1;
    if (positive < 2 || n_labels - positive < 2) {
        *out = cJSON_CreateNull();
        return 0;
    }
    int *chosen = malloc((size_t)n_labels * sizeof *chosen);
    if (!chosen)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for cross-validating %d labels", n_labels);
    int n = choose_cv_labels(set, positive, chosen);
    int folds = n <= LEAVE_ONE_OUT_MAX ? n : FOLDS;
    int steps = rec->last_iters * (rec->rounds > 0 ? rec->rounds : 1);
    if (steps > MAX_CV_STEPS)
        steps = MAX_CV_STEPS;
    /* the chosen rows in order; row i belongs to fold i % folds (all folds at once) */
    float *X = malloc((size_t)n * (size_t)dims * sizeof *X), *y = malloc((size_t)n * sizeof *y);
    float *W = malloc((size_t)folds * (size_t)dims * sizeof *W);
    int *fold_of = malloc((size_t)n * sizeof *fold_of);
    int rc = X && y && W && fold_of ? 0 : vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for cross-validation");
    int tp = 0, fp = 0, tn = 0, fn = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        memcpy(X + (size_t)i * dims, X_all + (size_t)chosen[i] * dims, (size_t)dims * sizeof *X);
        y[i] = y_all[chosen[i]];
        fold_of[i] = i % folds;
    }
    for (int f = 0; rc == 0 && f < folds; f++)
        memcpy(W + (size_t)f * dims, rec->initial_weight, (size_t)dims * sizeof *W);
    if (rc == 0 && rec->trainer == TRAINER_ANCHORED) {
        /* the fit starts from the prompt whatever the weight was: each fold likewise */
        vdx_anchored_options anchored = VDX_ANCHORED_DEFAULTS;
        if (rec->rounds > 0 && rec->last_lr == 0) /* the last round was anchored too */
            anchored.iters = rec->last_iters;
        steps = anchored.iters;
        rc = classifier_fit_anchored_folds(X, y, fold_of, n, weak, n_weak, rec->initial_weight,
                                           dims, folds, &anchored, W, err);
    } else if (rc == 0) {
        rc = classifier_fit_folds(X, y, fold_of, n, dims, folds, W, steps,
                                  rec->last_lr > 0 ? rec->last_lr : VDX_FIT_LR, err);
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        int predicted = dot(X + (size_t)i * dims, W + (size_t)fold_of[i] * dims, dims) > rec->threshold;
        int actual = set->labels[chosen[i]] == 1;
        tp += predicted && actual;
        fp += predicted && !actual;
        tn += !predicted && !actual;
        fn += !predicted && actual;
    }
    free(chosen);
    free(X);
    free(y);
    free(W);
    free(fold_of);
    if (rc != 0)
        return vdx_error_prefix(err, "cross-validating concept '%s'", rec->name);
    cJSON *cv = cJSON_CreateObject();
    cJSON_AddStringToObject(cv, "method", folds == n ? "leave-one-out" : "5-fold");
    cJSON_AddNumberToObject(cv, "folds", folds);
    cJSON_AddNumberToObject(cv, "steps", steps);
    cJSON_AddNumberToObject(cv, "labels", n);
    add_ratio(cv, "accuracy", tp + tn, n);
    add_prf(cv, tp, fp, fn);
    *out = cv;
    return 0;
}

static void add_warning(cJSON *list, const char *code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static void add_warning(cJSON *list, const char *code, const char *format, ...)
{
    char text[256];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    cJSON *w = cJSON_CreateObject();
    cJSON_AddStringToObject(w, "code", code);
    cJSON_AddStringToObject(w, "message", text);
    cJSON_AddItemToArray(list, w);
}

/* What a person should know before trusting the numbers (and, once an audit sample is
 * labelled on a concept set to the seed's trainer, that the anchored one is worth a try:
 * docs/explore.md; an auto concept switches by itself). */
static cJSON *warnings(int positive, int negative, int tp, int above, int count,
                       const cJSON *cv, int trainer, int audit_labels)
{
    cJSON *list = cJSON_CreateArray();
    int n = positive + negative;
    if (positive > 0 && tp == 0)
        add_warning(list, "no_positive_above",
                    "none of your %d positives is above the threshold: fit the threshold or "
                    "train more rounds", positive);
    if (count > 0 && above == 0)
        add_warning(list, "nothing_above", "no item of the collection is above the threshold");
    if (positive < 2 || negative < 2)
        add_warning(list, "few_labels",
                    "cross-validation needs at least 2 positives and 2 negatives (%d and %d)",
                    positive, negative);
    else if (n >= 10 && (positive * 10 < n || negative * 10 < n))
        add_warning(list, "imbalanced",
                    "only %d%% of your labels are %s: accuracy mostly counts the other class",
                    (positive < negative ? positive : negative) * 100 / n,
                    positive < negative ? "positive" : "negative");
    const cJSON *recall = cJSON_GetObjectItem(cv, "recall");
    if (cJSON_IsNumber(recall) && recall->valuedouble < 0.5)
        add_warning(list, "low_recall",
                    "cross-validated recall is %.0f%%: most positives would be missed",
                    recall->valuedouble * 100);
    if (trainer == TRAINER_SEED && audit_labels >= VDX_AUDIT_LABELS_FOR_ANCHORED)
        add_warning(list, "try_anchored",
                    "with %d audit labels the anchored trainer ranked at least as well as "
                    "this one on every simulated concept, and far better on rare and broad "
                    "ones: consider switching the trainer", audit_labels);
    return list;
}

static cJSON *histogram(const float *scores, size_t n, double threshold, int bins)
{
    float lo_f = INFINITY, hi_f = -INFINITY; /* the scores are finite floats */
    for (size_t i = 0; i < n; i++) {
        lo_f = scores[i] < lo_f ? scores[i] : lo_f;
        hi_f = scores[i] > hi_f ? scores[i] : hi_f;
    }
    double lo = fmin(threshold, lo_f), hi = fmax(threshold, hi_f);
    if (hi - lo <= 0) {
        lo -= 0.5;
        hi += 0.5;
    }
    double width = (hi - lo) / bins;
    int *counts = calloc((size_t)bins, sizeof *counts);
    cJSON *h = cJSON_CreateObject();
    cJSON_AddNumberToObject(h, "min", lo);
    cJSON_AddNumberToObject(h, "max", hi);
    cJSON_AddNumberToObject(h, "bin_width", width);
    cJSON *list = cJSON_AddArrayToObject(h, "counts");
    for (size_t i = 0; counts && i < n; i++) {
        int bin = (int)((scores[i] - lo) / width);
        counts[bin < 0 ? 0 : bin >= bins ? bins - 1 : bin]++;
    }
    for (int b = 0; counts && b < bins; b++)
        cJSON_AddItemToArray(list, cJSON_CreateNumber(counts[b]));
    free(counts);
    return h;
}

/* Each score's calibrated probability (NULL when memory runs out). At a million items
 * these are most of evaluate's counting, so they are computed once, on the team when it
 * is free (each one on its own: the same on any number of threads). */
static double *probabilities(const concept_record *rec, const float *scores, size_t n)
{
    double *p = malloc((n + 1) * sizeof *p);
    if (!p)
        return NULL;
    int threads = team_claim(n >= 65536 ? omp_get_max_threads() : 1);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (size_t i = 0; i < n; i++)
        p[i] = concept_probability(rec, scores[i]);
    team_release(threads);
    return p;
}

/* The items' calibrated probabilities in `bins` equal bins over [0, 1]. */
static cJSON *probability_histogram(const double *p, size_t n, int bins)
{
    int *counts = calloc((size_t)bins, sizeof *counts);
    cJSON *h = cJSON_CreateObject(), *list = NULL;
    int ok = p && counts && h && cJSON_AddNumberToObject(h, "min", 0) &&
             cJSON_AddNumberToObject(h, "max", 1) &&
             cJSON_AddNumberToObject(h, "bin_width", 1.0 / bins) &&
             (list = cJSON_AddArrayToObject(h, "counts"));
    for (size_t i = 0; ok && i < n; i++) {
        int bin = (int)(p[i] * bins);
        counts[bin < 0 ? 0 : bin >= bins ? bins - 1 : bin]++;
    }
    for (int b = 0; ok && b < bins; b++) {
        cJSON *count = cJSON_CreateNumber(counts[b]);
        ok = count && cJSON_AddItemToArray(list, count);
        if (!ok)
            cJSON_Delete(count);
    }
    free(counts);
    if (!ok) {
        cJSON_Delete(h);
        return NULL;
    }
    return h;
}

/* Each label's score under the concept's weight, from the label's vector (rounded to a
 * float, as the store's scores are, so that the histogram and the estimates agree). */
static double *label_scores(const concept_record *rec, const labelled_rows *rows, vdx_error *err)
{
    double *scores = malloc((rows->set.n + 1) * sizeof *scores);
    if (!scores) {
        vdx_fail_oom(err, "out of memory for %zu scores", rows->set.n);
        return NULL;
    }
    for (size_t i = 0; i < rows->set.n; i++)
        scores[i] = (float)dot(rows->X + i * (size_t)rec->dims, rec->weight, rec->dims);
    return scores;
}

/* Every item's score under the concept's weight (in no particular order) and the
 * estimates' counts at its threshold. Without a filter, the store scores the unlabelled
 * items without ids (the labelled ones excluded; their scores come from their vectors):
 * no string per item, which at a million items costs more than the scan; unless `exact`,
 * from the approximate index's codes where there is one (*bound: their largest error).
 * A filter needs each item's id, to tell which labelled items it keeps. */
static int collection_scores(vdx_concepts *book, const concept_record *rec,
                             const labelled_rows *rows, const char *where, int exact,
                             float **all, double **all_p, size_t *n_all, double *bound,
                             calib_counts *counts, vdx_error *err)
{
    *all = NULL;
    *all_p = NULL;
    *n_all = 0;
    *bound = 0;
    if (!where) {
        size_t n_unlabelled = 0, n_labels = rows->set.n;
        float *scores = NULL;
        double *p = NULL, *labelled = label_scores(rec, rows, err);
        int rc = labelled ? book_score_unlabelled(book, rec->weight, &rows->set, exact, &scores,
                                                  &n_unlabelled, bound, err)
                          : -1;
        if (rc == 0 && !(p = probabilities(rec, scores, n_unlabelled)))
            rc = vdx_fail_oom(err, "out of memory for %zu probabilities", n_unlabelled);
        if (rc == 0)
            rc = audit_counts_split(book, rec, &rows->set, labelled, scores, p, n_unlabelled,
                                    rec->threshold, counts, err);
        float *grown = rc == 0 ? realloc(scores, (n_unlabelled + n_labels + 1) * sizeof *scores)
                               : NULL;
        double *grown_p = grown ? realloc(p, (n_unlabelled + n_labels + 1) * sizeof *p) : NULL;
        if (grown)
            scores = grown;
        if (grown_p)
            p = grown_p;
        if (rc == 0 && (!grown || !grown_p))
            rc = vdx_fail_oom(err, "out of memory for %zu scores", n_unlabelled + n_labels);
        for (size_t i = 0; rc == 0 && i < n_labels; i++) {
            scores[n_unlabelled + i] = (float)labelled[i];
            p[n_unlabelled + i] = concept_probability(rec, scores[n_unlabelled + i]);
        }
        free(labelled);
        if (rc != 0) {
            free(scores);
            free(p);
            return -1;
        }
        *all = scores;
        *all_p = p;
        *n_all = n_unlabelled + n_labels;
        return 0;
    }
    vdx_hits hits = {0};
    int rc = book_score_all(book, rec->weight, where, 0, &hits, err);
    if (rc == 0)
        rc = audit_counts(book, rec, &rows->set, &hits, rec->threshold, counts, err);
    if (rc == 0 && !(*all = malloc(((size_t)hits.n + 1) * sizeof **all)))
        rc = vdx_fail_oom(err, "out of memory for %d scores", hits.n);
    for (int i = 0; rc == 0 && i < hits.n; i++)
        (*all)[i] = hits.hits[i].dist;
    if (rc == 0 && !(*all_p = probabilities(rec, *all, (size_t)hits.n)))
        rc = vdx_fail_oom(err, "out of memory for %d probabilities", hits.n);
    if (rc == 0)
        *n_all = (size_t)hits.n;
    vdx_hits_free(&hits);
    if (rc != 0) {
        free(*all);
        *all = NULL;
    }
    return rc;
}

/* Cross-validates the labels as they are now, with the last round's weak negatives
 * when the trainer is the anchored one. An auto concept refits with the trainer that made
 * its current weight: the last round's (lr 0 marks an anchored round), the seed's before
 * any round. */
static int cross_validate_current(vdx_concepts *book, const concept_record *rec,
                                  const labelled_rows *rows, cJSON **cv, vdx_error *err)
{
    concept_record fit = *rec; /* a view with the trainer resolved; rec owns the memory */
    if (fit.trainer == TRAINER_AUTO)
        fit.trainer = rec->rounds > 0 && rec->last_lr == 0 ? TRAINER_ANCHORED : TRAINER_SEED;
    float *weak;
    size_t n_weak;
    int rc = concept_weak_negatives(book, &fit, fit.rounds, &weak, &n_weak, err);
    if (rc == 0)
        rc = concept_cross_validate(&fit, &rows->set, rows->X, rows->y, weak, (int)n_weak, cv,
                                    err);
    free(weak);
    return rc;
}

int vdx_concept_evaluate(vdx_concepts *book, const char *name, const vdx_evaluate_options *opts,
                         cJSON **result, vdx_error *err)
{
    *result = NULL;
    int bins = opts && opts->bins > 0 ? opts->bins : DEFAULT_BINS;
    if (bins > MAX_BINS)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "evaluate: %d histogram bins is more than %d",
                             bins, MAX_BINS);
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    labelled_rows rows = {0};
    float *scores = NULL;
    double *probs = NULL;
    size_t n_scores = 0;
    double bound = 0;
    calib_counts counts = {0};
    cJSON *cv = NULL;
    int rc = concept_find(book, name, &rec, err);
    if (rc == 0 && (rc = concept_check_model(book, &rec, err)) == 0 &&
        (rc = labelled_rows_load(book, &rec, &rows, err)) == 0 &&
        (rc = concept_current_cv(book, &rec, &cv, err)) == 0 &&
        (cv || (rc = cross_validate_current(book, &rec, &rows, &cv, err)) == 0))
        rc = collection_scores(book, &rec, &rows, opts ? opts->where : NULL,
                               opts && opts->exact, &scores, &probs, &n_scores, &bound, &counts,
                               err);
    if (rc == 0) {
        int n = (int)rows.set.n, positive = 0, above = 0;
        for (int i = 0; i < n; i++)
            positive += rows.set.labels[i] == 1;
        for (size_t i = 0; i < n_scores; i++)
            above += scores[i] > rec.threshold;
        /* the labels' own scores: confusion counts at the threshold, the histogram's ticks */
        int tp = 0, fp = 0, fn = 0;
        cJSON *ticks = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            double score = dot(rows.X + (size_t)i * rec.dims, rec.weight, rec.dims);
            int predicted = score > rec.threshold, actual = rows.set.labels[i] == 1;
            tp += predicted && actual;
            fp += predicted && !actual;
            fn += !predicted && actual;
            if (i < MAX_TICKS) {
                cJSON *t = cJSON_CreateObject();
                cJSON_AddStringToObject(t, "id", rows.set.ids[i]);
                cJSON_AddNumberToObject(t, "score", score);
                cJSON_AddNumberToObject(t, "probability", concept_probability(&rec, score));
                cJSON_AddNumberToObject(t, "label", rows.set.labels[i]);
                cJSON_AddItemToArray(ticks, t);
            }
        }
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "concept", rec.name);
        cJSON_AddNumberToObject(out, "threshold", rec.threshold);
        cJSON_AddNumberToObject(out, "threshold_probability",
                                concept_probability(&rec, rec.threshold));
        cJSON_AddItemToObject(out, "calibration", concept_calibration_json(&rec));
        cJSON_AddNumberToObject(out, "positive", positive);
        cJSON_AddNumberToObject(out, "negative", n - positive);
        if (n)
            cJSON_AddNumberToObject(out, "training_accuracy",
                                    vdx_classifier_accuracy(rows.X, rows.y, n, rec.dims,
                                                            rec.weight, rec.threshold));
        else
            cJSON_AddNullToObject(out, "training_accuracy");
        cJSON *training = cJSON_AddObjectToObject(out, "training");
        add_prf(training, tp, fp, fn);
        cJSON *balance = cJSON_AddObjectToObject(out, "balance");
        cJSON_AddNumberToObject(balance, "positive", positive);
        cJSON_AddNumberToObject(balance, "negative", n - positive);
        add_ratio(balance, "positive_share", positive, n);
        cJSON_AddItemToObject(out, "warnings",
                              warnings(positive, n - positive, tp, above, (int)n_scores, cv,
                                       rec.trainer, counts.audit));
        cJSON_AddItemToObject(out, "cross_validation", cv);
        cv = NULL;
        cJSON_AddNumberToObject(out, "count", (double)n_scores);
        cJSON_AddNumberToObject(out, "above_threshold", above);
        cJSON *source = cJSON_AddObjectToObject(out, "scores");
        cJSON_AddStringToObject(source, "source", bound > 0 ? "index" : "vectors");
        cJSON_AddNumberToObject(source, "max_error", bound);
        cJSON_AddItemToObject(out, "histogram", histogram(scores, n_scores, rec.threshold, bins));
        cJSON_AddItemToObject(out, "probability_histogram",
                              probability_histogram(probs, n_scores, bins));
        cJSON_AddItemToObject(out, "estimates", audit_estimates_json(&counts));
        cJSON_AddItemToObject(out, "labelled", ticks);
        *result = out;
    }
    cJSON_Delete(cv);
    free(scores);
    free(probs);
    labelled_rows_free(&rows);
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    return rc;
}

/* ---- score -------------------------------------------------------------------------- */

typedef struct ranked {
    const vdx_hit *hit;
} ranked;

static int by_score_desc(const void *a, const void *b)
{
    const vdx_hit *x = ((const ranked *)a)->hit, *y = ((const ranked *)b)->hit;
    if (x->dist != y->dist)
        return x->dist > y->dist ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* Sifts entry i of a heap whose root ranks last (by_score_desc). */
static void sift_down(const vdx_hit **heap, size_t n, size_t i)
{
    for (;;) {
        size_t worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && by_score_desc(&heap[l], &heap[worst]) > 0)
            worst = l;
        if (r < n && by_score_desc(&heap[r], &heap[worst]) > 0)
            worst = r;
        if (worst == i)
            return;
        const vdx_hit *t = heap[i];
        heap[i] = heap[worst];
        heap[worst] = t;
        i = worst;
    }
}

/* Puts the `limit` best of list[0..n) first, in order (all of them when limit is 0):
 * a bounded heap when few are wanted, else a full sort. */
static size_t rank_best(const vdx_hit **list, size_t n, size_t limit)
{
    if (limit == 0 || limit >= n / 8) {
        qsort(list, n, sizeof *list, by_score_desc);
        return limit && limit < n ? limit : n;
    }
    for (size_t i = limit / 2 + 1; i-- > 0;)
        sift_down(list, limit, i);
    for (size_t i = limit; i < n; i++)
        if (by_score_desc(&list[i], &list[0]) < 0) {
            list[0] = list[i];
            sift_down(list, limit, 0);
        }
    qsort(list, limit, sizeof *list, by_score_desc);
    return limit;
}

int concept_ranking(vdx_concepts *book, const concept_record *rec, const char *where,
                    double threshold, int only_above, size_t limit, int with_urls, vdx_hits *hits,
                    const vdx_hit ***order, size_t *n_order, int *above, vdx_error *err)
{
    *order = NULL;
    *n_order = 0;
    if (book_score_all(book, rec->weight, where, with_urls, hits, err) != 0)
        return -1;
    const vdx_hit **list = malloc(((size_t)hits->n + 1) * sizeof *list);
    if (!list)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for %d scores", hits->n);
    size_t n = 0;
    *above = 0;
    for (int i = 0; i < hits->n; i++) {
        int is_above = hits->hits[i].dist > threshold;
        *above += is_above;
        if (is_above || !only_above)
            list[n++] = &hits->hits[i];
    }
    *order = list;
    *n_order = rank_best(list, n, limit);
    return 0;
}

/* The ranking's first `limit` items through the approximate index, for a collection that
 * has one (no filter, a page of at most URL_LOOKUPS_MAX): the nearest items to the weight
 * (the same order as by score: the stored vectors are unit length and the weight's norm is
 * fixed), each re-scored from its
 * vector, and the counts from the index's codes (score_values: *bound their largest
 * error). */
static int ranking_by_index(vdx_concepts *book, const concept_record *rec, double threshold,
                            int only_above, size_t limit, vdx_hits *hits,
                            const vdx_hit ***order, size_t *n_order, int *above, int *count,
                            double *bound, vdx_error *err)
{
    float *scores = NULL, *vectors = NULL;
    size_t n = 0;
    vdx_search_request all = {.query = rec->weight};
    if (vdx_store_score_values(book->store, &all, &scores, &n, bound, err) != 0)
        return -1;
    *count = (int)n;
    *above = 0;
    for (size_t i = 0; i < n; i++)
        *above += scores[i] > threshold;
    free(scores);
    vdx_search_request near = {.query = rec->weight, .k = (int)limit};
    int rc = vdx_store_search(book->store, &near, hits, err);
    const char **ids = rc == 0 ? malloc(((size_t)hits->n + 1) * sizeof *ids) : NULL;
    vectors = ids ? malloc(((size_t)hits->n + 1) * (size_t)rec->dims * sizeof *vectors) : NULL;
    const vdx_hit **list = vectors ? malloc(((size_t)hits->n + 1) * sizeof *list) : NULL;
    if (rc == 0 && !list)
        rc = vdx_fail_oom(err, "out of memory for %d scores", hits->n);
    for (int i = 0; rc == 0 && i < hits->n; i++)
        ids[i] = hits->hits[i].id;
    if (rc == 0)
        rc = vdx_store_get_vectors(book->store, ids, (size_t)hits->n, vectors, err);
    size_t kept = 0;
    for (int i = 0; rc == 0 && i < hits->n; i++) {
        hits->hits[i].dist = (float)dot(vectors + (size_t)i * rec->dims, rec->weight, rec->dims);
        if (!only_above || hits->hits[i].dist > threshold)
            list[kept++] = &hits->hits[i];
    }
    free(ids);
    free(vectors);
    if (rc != 0) {
        free(list);
        return -1;
    }
    *order = list;
    *n_order = rank_best(list, kept, 0);
    return 0;
}

int vdx_concept_score(vdx_concepts *book, const char *name, const vdx_score_request *req,
                      cJSON **result, vdx_error *err)
{
    *result = NULL;
    if (req->offset < 0)
        return vdx_fail(err, "score: offset %d is negative", req->offset);
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    label_set set = {0};
    label_index labels = {0};
    vdx_hits hits = {0};
    const vdx_hit **order = NULL;
    size_t n = 0;
    int above = 0;
    int rc = concept_find(book, name, &rec, err);
    double threshold = req->use_threshold && !isnan(req->threshold) ? req->threshold
                                                                    : rec.threshold;
    if (rc == 0 && (rc = concept_check_model(book, &rec, err)) == 0 &&
        (rc = concept_labels_load(book, rec.id, &set, err)) == 0)
        rc = label_index_build(&set, &labels, err);
    /* a page of up to URL_LOOKUPS_MAX items looks its urls up; a longer one reads them all */
    int with_urls = req->top <= 0 || req->top > URL_LOOKUPS_MAX;
    size_t limit = req->top > 0 ? (size_t)req->offset + (size_t)req->top : 0;
    int count = -1;
    double bound = 0;
    int indexed = rc == 0 && !req->where && limit > 0 && limit <= URL_LOOKUPS_MAX &&
                  !req->exact && vdx_store_indexed_rows(book->store) > 0;
    if (indexed)
        rc = ranking_by_index(book, &rec, threshold, req->use_threshold, limit, &hits, &order, &n,
                              &above, &count, &bound, err);
    else if (rc == 0)
        rc = concept_ranking(book, &rec, req->where, threshold, req->use_threshold, limit,
                             with_urls, &hits, &order, &n, &above, err);
    size_t end = req->top > 0 && (size_t)req->offset + (size_t)req->top < n
                     ? (size_t)req->offset + (size_t)req->top
                     : n;
    /* the urls of the page only */
    if (rc == 0 && (size_t)req->offset < end)
        rc = book_fill_urls(book, &hits, order + req->offset, end - (size_t)req->offset, err);
    if (rc == 0) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "concept", rec.name);
        cJSON_AddNumberToObject(out, "threshold", threshold);
        cJSON_AddNumberToObject(out, "count", count >= 0 ? count : hits.n);
        cJSON_AddNumberToObject(out, "above_threshold", above);
        cJSON *source = cJSON_AddObjectToObject(out, "scores");
        cJSON_AddStringToObject(source, "source", bound > 0 ? "index" : "vectors");
        cJSON_AddNumberToObject(source, "max_error", bound);
        cJSON *items = cJSON_AddArrayToObject(out, "items");
        for (size_t i = (size_t)req->offset; i < end; i++) {
            cJSON *item = cJSON_CreateObject();
            cJSON_AddNumberToObject(item, "rank", (double)i + 1);
            cJSON_AddStringToObject(item, "id", order[i]->id);
            if (order[i]->url)
                cJSON_AddStringToObject(item, "url", order[i]->url);
            else
                cJSON_AddNullToObject(item, "url");
            cJSON_AddNumberToObject(item, "score", order[i]->dist);
            cJSON_AddNumberToObject(item, "probability", concept_probability(&rec, order[i]->dist));
            int label = label_index_get(&labels, order[i]->id);
            if (label >= 0)
                cJSON_AddNumberToObject(item, "label", label);
            else
                cJSON_AddNullToObject(item, "label");
            cJSON_AddItemToArray(items, item);
        }
        *result = out;
    }
    free(order);
    vdx_hits_free(&hits);
    label_index_free(&labels);
    label_set_free(&set);
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    return rc;
}

/* ---- threshold fit ------------------------------------------------------------------ */

static int fit_on_calibration(vdx_concepts *book, const concept_record *rec,
                              const vdx_threshold_fit *fit, double *threshold, cJSON *out,
                              vdx_error *err);
static int check_fit(const vdx_threshold_fit *fit, vdx_error *err)
{
    if (fit->target != VDX_THRESHOLD_FIT_F1 && fit->target != VDX_THRESHOLD_FIT_PRECISION)
        return vdx_fail(err, "threshold fit: unknown target %d", (int)fit->target);
    if (fit->target == VDX_THRESHOLD_FIT_PRECISION && !(fit->precision > 0 && fit->precision <= 1))
        return vdx_fail(err, "threshold fit: the target precision must be in (0, 1], not %g",
                        fit->precision);
    if (fit->source != VDX_THRESHOLD_FROM_LABELS && fit->source != VDX_THRESHOLD_FROM_CALIBRATION &&
        fit->source != VDX_THRESHOLD_FROM_AUTO)
        return vdx_fail(err, "threshold fit: unknown source %d", (int)fit->source);
    return 0;
}

/* The calibration source: finds the concept, fits, sets the threshold, describes it. */
static int fit_threshold_calibrated(vdx_concepts *book, const char *name,
                                    const vdx_threshold_fit *fit, cJSON **result,
                                    vdx_error *err)
{
    if (result)
        *result = NULL;
    if (check_fit(fit, err) != 0)
        return -1;
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    cJSON *out = cJSON_CreateObject();
    double threshold = 0;
    int rc = out ? concept_find(book, name, &rec, err) : vdx_fail_oom(err, "out of memory");
    if (rc == 0 && (rc = concept_check_model(book, &rec, err)) == 0) {
        int ok = cJSON_AddStringToObject(out, "target", fit->target == VDX_THRESHOLD_FIT_F1 ? "f1" : "precision") &&
                 (fit->target != VDX_THRESHOLD_FIT_PRECISION ||
                  cJSON_AddNumberToObject(out, "precision_target", fit->precision)) &&
                 cJSON_AddNumberToObject(out, "previous", rec.threshold);
        rc = ok ? fit_on_calibration(book, &rec, fit, &threshold, out, err)
                : vdx_fail_oom(err, "describing a threshold fit");
    }
    if (rc == 0 && (!cJSON_AddNumberToObject(out, "threshold", threshold) ||
                    !cJSON_AddNumberToObject(out, "threshold_probability",
                                             concept_probability(&rec, threshold))))
        rc = vdx_fail_oom(err, "describing a threshold fit");
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    if (rc == 0)
        rc = vdx_concept_set_threshold(book, name, threshold, err);
    if (rc == 0 && result) {
        *result = out;
        out = NULL;
    }
    cJSON_Delete(out);
    return rc;
}

typedef struct labelled_score {
    double score;
    int positive;
} labelled_score;

static int by_labelled_score_desc(const void *a, const void *b)
{
    const labelled_score *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->positive - y->positive; /* negatives first among ties: no optimistic cut */
}

int vdx_threshold_source_parse(const char *text)
{
    if (!text)
        return -1;
    if (!strcmp(text, "labels"))
        return VDX_THRESHOLD_FROM_LABELS;
    if (!strcmp(text, "calibration"))
        return VDX_THRESHOLD_FROM_CALIBRATION;
    if (!strcmp(text, "auto"))
        return VDX_THRESHOLD_FROM_AUTO;
    return -1;
}

int vdx_threshold_target_parse(const char *text)
{
    if (!text)
        return -1;
    if (!strcmp(text, "f1"))
        return VDX_THRESHOLD_FIT_F1;
    if (!strcmp(text, "precision"))
        return VDX_THRESHOLD_FIT_PRECISION;
    return -1;
}

/* The calibration source of vdx_concept_fit_threshold (book locked, rec loaded). */
static int fit_on_calibration(vdx_concepts *book, const concept_record *rec,
                              const vdx_threshold_fit *fit, double *threshold, cJSON *out,
                              vdx_error *err)
{
    if (!rec->calibrated)
        return vdx_fail_kind(err, VDX_ERR_CONFLICT,
                             "concept '%s' has no calibration yet: train a round with positive "
                             "and negative labels", rec->name);
    labelled_rows rows = {0};
    double *labelled = NULL;
    float *unlabelled = NULL;
    size_t n_unlabelled = 0;
    double bound = 0;
    calib_item *items = NULL;
    int rc = labelled_rows_load(book, rec, &rows, err);
    if (rc == 0 && !(labelled = label_scores(rec, &rows, err)))
        rc = -1;
    if (rc == 0)
        rc = book_score_unlabelled(book, rec->weight, &rows.set, 1, &unlabelled, &n_unlabelled,
                                   &bound, err);
    size_t n = rc == 0 ? n_unlabelled + rows.set.n : 0;
    if (rc == 0 && !(items = malloc((n + 1) * sizeof *items)))
        rc = vdx_fail_oom(err, "out of memory for %zu scores", n);
    for (size_t i = 0; rc == 0 && i < n_unlabelled; i++) {
        items[i].score = unlabelled[i];
        items[i].positive = concept_probability(rec, items[i].score);
    }
    for (size_t i = 0; rc == 0 && i < rows.set.n; i++) {
        items[n_unlabelled + i].score = labelled[i];
        items[n_unlabelled + i].positive = rows.set.labels[i];
    }
    if (rc == 0 && n == 0)
        rc = vdx_fail_kind(err, VDX_ERR_CONFLICT,
                           "concept '%s': the collection has no items to fit a threshold on",
                           rec->name);
    double precision = 0, recall = 0, f1 = 0, best_precision = 0;
    if (rc == 0 &&
        calib_best_cut(items, n, fit->target == VDX_THRESHOLD_FIT_PRECISION ? fit->precision : 0,
                       threshold, &precision, &recall, &f1, &best_precision) == 0)
        rc = vdx_fail_kind(err, VDX_ERR_CONFLICT,
                           "no threshold gives an expected precision >= %g over the "
                           "collection for concept '%s' (the best is %.3f)",
                           fit->precision, rec->name, best_precision);
    if (rc == 0) {
        calib_counts counts;
        rc = audit_counts_split(book, rec, &rows.set, labelled, unlabelled, NULL, n_unlabelled,
                                *threshold, &counts, err);
        cJSON *estimates = rc == 0 ? audit_estimates_json(&counts) : NULL;
        int ok = rc != 0 || (cJSON_AddStringToObject(out, "source", "calibration") &&
                             cJSON_AddNumberToObject(out, "items", (double)n) &&
                             cJSON_AddNumberToObject(out, "precision", precision) &&
                             cJSON_AddNumberToObject(out, "recall", recall) &&
                             cJSON_AddNumberToObject(out, "f1", f1) && estimates &&
                             cJSON_AddItemToObject(out, "estimates", estimates));
        if (!ok) {
            cJSON_Delete(estimates);
            rc = vdx_fail_oom(err, "describing a threshold fit");
        }
    }
    free(items);
    free(unlabelled);
    free(labelled);
    labelled_rows_free(&rows);
    return rc;
}

int vdx_concept_fit_threshold(vdx_concepts *book, const char *name, const vdx_threshold_fit *fit,
                              cJSON **result, vdx_error *err)
{
    if (fit->source == VDX_THRESHOLD_FROM_AUTO) {
        pthread_mutex_lock(&book->lock);
        concept_record rec;
        int calibrated = 0, rc = concept_find(book, name, &rec, err);
        if (rc == 0) {
            calibrated = rec.calibrated;
            concept_record_free(&rec);
        }
        pthread_mutex_unlock(&book->lock);
        if (rc != 0)
            return rc;
        vdx_threshold_fit chosen = *fit;
        chosen.source = calibrated ? VDX_THRESHOLD_FROM_CALIBRATION : VDX_THRESHOLD_FROM_LABELS;
        return vdx_concept_fit_threshold(book, name, &chosen, result, err);
    }
    if (fit->source == VDX_THRESHOLD_FROM_CALIBRATION)
        return fit_threshold_calibrated(book, name, fit, result, err);
    if (result)
        *result = NULL;
    if (check_fit(fit, err) != 0)
        return -1;
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    labelled_rows rows = {0};
    labelled_score *s = NULL;
    int rc = concept_find(book, name, &rec, err), n = 0, positive = 0;
    if (rc == 0 && (rc = concept_check_model(book, &rec, err)) == 0)
        rc = labelled_rows_load(book, &rec, &rows, err);
    if (rc == 0) {
        n = (int)rows.set.n;
        s = malloc(((size_t)n + 1) * sizeof *s);
        if (!s)
            rc = vdx_fail(err, "out of memory for %d scores", n);
        for (int i = 0; rc == 0 && i < n; i++) {
            s[i].score = dot(rows.X + (size_t)i * rec.dims, rec.weight, rec.dims);
            s[i].positive = rows.set.labels[i] == 1;
            positive += s[i].positive;
        }
        if (rc == 0 && (positive == 0 || positive == n))
            rc = vdx_fail_kind(err, VDX_ERR_CONFLICT, "fitting a threshold needs positive and negative labels; concept "
                               "'%s' has %d positive and %d negative", name, positive,
                          n - positive);
    }
    /* cut c predicts the c best-scoring labels positive; cuts fall between distinct
     * scores, the threshold halfway */
    int best = -1, tp = 0, fp = 0, best_tp = 0, best_fp = 0;
    double best_value = -1, best_precision = 0;
    if (rc == 0) {
        qsort(s, (size_t)n, sizeof *s, by_labelled_score_desc);
        for (int c = 1; c <= n; c++) {
            tp += s[c - 1].positive;
            fp += !s[c - 1].positive;
            if (c < n && s[c].score == s[c - 1].score)
                continue;
            double precision = (double)tp / c;
            double f1 = 2.0 * tp / (2.0 * tp + fp + (positive - tp));
            double value = fit->target == VDX_THRESHOLD_FIT_F1 ? f1
                           : precision >= fit->precision && tp > 0 ? (double)tp
                                                                   : -1;
            best_precision = precision > best_precision && tp > 0 ? precision : best_precision;
            if (value > best_value || (value == best_value && value >= 0 &&
                                       fit->target == VDX_THRESHOLD_FIT_PRECISION)) {
                best_value = value;
                best = c;
                best_tp = tp;
                best_fp = fp;
            }
        }
        if (best < 0 || best_value < 0)
            rc = vdx_fail_kind(err, VDX_ERR_CONFLICT, "no threshold gives precision >= %g on the labels of concept "
                               "'%s' (the best is %.3f)", fit->precision, name, best_precision);
    }
    double threshold = 0, previous = rec.threshold;
    calib_map calib = rec.calib;
    if (rc == 0) {
        double spread = s[0].score - s[n - 1].score;
        threshold = best < n ? (s[best - 1].score + s[best].score) / 2
                             : s[n - 1].score - (spread > 0 ? 0.01 * spread : 0.01);
    }
    labelled_rows_free(&rows);
    concept_record_free(&rec);
    free(s);
    pthread_mutex_unlock(&book->lock);
    if (rc == 0)
        rc = vdx_concept_set_threshold(book, name, threshold, err);
    if (rc == 0 && result) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "target",
                                fit->target == VDX_THRESHOLD_FIT_F1 ? "f1" : "precision");
        if (fit->target == VDX_THRESHOLD_FIT_PRECISION)
            cJSON_AddNumberToObject(out, "precision_target", fit->precision);
        cJSON_AddStringToObject(out, "source", "labels");
        cJSON_AddNumberToObject(out, "threshold", threshold);
        cJSON_AddNumberToObject(out, "threshold_probability", calib_probability(&calib, threshold));
        cJSON_AddNumberToObject(out, "previous", previous);
        cJSON_AddNumberToObject(out, "labels", n);
        add_prf(out, best_tp, best_fp, positive - best_tp);
        *result = out;
    }
    return rc;
}
