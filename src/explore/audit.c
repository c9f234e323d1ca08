/* The audit sample and what it measures. The loop's labels are the hardest cases by
 * construction (the nearest items of the weight), not a sample of the collection, so
 * they cannot say how many positives the collection holds or how precise the threshold
 * is. The audit sample is: items drawn at random from those neither labelled nor drawn
 * before, stratified by the concept's score (the top 1%, the next 9%, the rest:
 * calib_strata), each kept in concepts.db (audit_items) with its design weight until
 * labelled. Estimates split the collection: the labelled items outside the sample are a
 * census, and the labelled audit items a weighted sample of the rest (calibrate.c). The
 * same weights make the calibration fit stand for the collection. Their number also
 * decides the trainer of an "auto" concept's next round (concept_next_trainer). */
#include "explore/book.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_K 20
#define MAX_K 1000

int audit_items_load(vdx_concepts *book, int64_t concept_id, label_set *set, vdx_error *err)
{
    return label_set_load(
        book, "SELECT item, drawn FROM audit_items WHERE concept = ?1 ORDER BY drawn",
        concept_id, 0, set, err);
}

/* The number of labelled items in the concept's audit sample. */
static int audit_labels_count(vdx_concepts *book, int64_t concept_id, int *n, vdx_error *err)
{
    sqlite3_stmt *stmt = book_prepare(
        book,
        "SELECT COUNT(*) FROM audit_items a JOIN labels l ON l.concept = a.concept AND"
        " l.item = a.item WHERE a.concept = ?1",
        err);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, concept_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : book_fail(book, err, "counting the audit labels");
}

int concept_next_trainer(vdx_concepts *book, const concept_record *rec, int *trainer,
                         vdx_error *err)
{
    *trainer = rec->trainer;
    if (rec->trainer != TRAINER_AUTO)
        return 0;
    int audit_labels = 0;
    if (audit_labels_count(book, rec->id, &audit_labels, err) != 0)
        return -1;
    *trainer = audit_labels >= VDX_AUDIT_LABELS_FOR_ANCHORED ? TRAINER_ANCHORED : TRAINER_SEED;
    return 0;
}

/* The audit sample with its design weights: items in draw order, a lookup from an id to
 * its position, the weight of each. */
typedef struct audit_sample {
    label_set set;
    label_index at;
    double *design;
} audit_sample;

static void audit_sample_free(audit_sample *a)
{
    label_set_free(&a->set);
    label_index_free(&a->at);
    free(a->design);
    memset(a, 0, sizeof *a);
}

/* Items drawn before weights were recorded (books of schema 4) have none (NULL): they
 * were drawn uniformly, so each stands for the collection's items over their number.
 * A recorded weight is a stratum's size over its draws; anything but a positive finite
 * number there is a damaged book, refused rather than turned into NaN estimates. */
static int audit_sample_load(vdx_concepts *book, const concept_record *rec, audit_sample *a,
                             vdx_error *err)
{
    memset(a, 0, sizeof *a);
    int rc = audit_items_load(book, rec->id, &a->set, err);
    size_t n = a->set.n;
    int *positions = rc == 0 ? malloc((n + 1) * sizeof *positions) : NULL;
    a->design = rc == 0 ? calloc(n + 1, sizeof *a->design) : NULL;
    if (rc == 0 && (!positions || !a->design))
        rc = vdx_fail_oom(err, "out of memory for %zu audit items", n);
    sqlite3_stmt *stmt = rc == 0 ? book_prepare(book,
                                                "SELECT weight FROM audit_items WHERE concept = ?1"
                                                " ORDER BY drawn",
                                                err)
                                 : NULL;
    if (rc == 0 && !stmt)
        rc = -1;
    size_t i = 0, unweighted = 0;
    if (rc == 0) {
        sqlite3_bind_int64(stmt, 1, rec->id);
        while (rc == 0 && i < n && sqlite3_step(stmt) == SQLITE_ROW) {
            int recorded = sqlite3_column_type(stmt, 0) != SQLITE_NULL;
            double w = recorded ? sqlite3_column_double(stmt, 0) : 0;
            if (recorded && !(isfinite(w) && w > 0))
                rc = vdx_fail(err,
                              "concepts.db: audit item '%s' of concept '%s' has the design "
                              "weight %g; a drawn item's weight is a positive number (its "
                              "stratum's size over its draws)",
                              a->set.ids[i], rec->name, w);
            a->design[i] = w;
            unweighted += !recorded;
            i++;
        }
        if (rc == 0 && i != n)
            rc = book_fail(book, err, "reading the audit sample's weights");
    }
    sqlite3_finalize(stmt);
    double uniform = unweighted ? (double)vdx_store_count(book->store) / (double)unweighted : 0;
    for (i = 0; rc == 0 && i < n; i++) {
        positions[i] = (int)i;
        if (a->design[i] == 0)
            a->design[i] = uniform > 0 ? uniform : 1;
    }
    if (rc == 0) {
        label_set by_position = {.n = n, .ids = a->set.ids, .labels = positions};
        rc = label_index_build(&by_position, &a->at, err);
    }
    free(positions);
    if (rc != 0)
        audit_sample_free(a);
    return rc;
}

/* An item's design weight, 0 when it is not in the sample. */
static double audit_design_of(const audit_sample *a, const char *id)
{
    int at = label_index_get(&a->at, id);
    return at >= 0 ? a->design[at] : 0;
}

static int hit_by_id(const void *a, const void *b)
{
    return strcmp((*(const vdx_hit *const *)a)->id, (*(const vdx_hit *const *)b)->id);
}

static int hit_by_score_desc(const void *a, const void *b)
{
    const vdx_hit *x = *(const vdx_hit *const *)a, *y = *(const vdx_hit *const *)b;
    if (x->dist != y->dist)
        return x->dist > y->dist ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* Draws `want` items from the scored items that are neither labelled nor in the sample,
 * stratified by score (calib_strata), and records them with their design weights (inside
 * a write transaction). */
static int draw_more(vdx_concepts *book, const concept_record *rec, const label_index *labelled,
                     const label_index *drawn, int n_drawn, const vdx_hits *hits, size_t want,
                     uint64_t seed, size_t *population, vdx_error *err)
{
    const vdx_hit **pool = malloc(((size_t)hits->n + 1) * sizeof *pool);
    double *design = malloc(((size_t)hits->n + 1) * sizeof *design);
    if (!pool || !design) {
        free(pool);
        free(design);
        return vdx_fail_oom(err, "out of memory for %d items", hits->n);
    }
    size_t n = 0;
    for (int i = 0; i < hits->n; i++)
        if (label_index_get(labelled, hits->hits[i].id) < 0 &&
            label_index_get(drawn, hits->hits[i].id) < 0)
            pool[n++] = &hits->hits[i];
    *population = n;
    /* the strata by score; in each, ids in sorted order, then a seeded shuffle: the same
     * draws on every backend; the drawn items move to the front of the pool */
    int rc = 0;
    qsort(pool, n, sizeof *pool, hit_by_score_desc);
    size_t bounds[CALIB_STRATA + 1], take[CALIB_STRATA], k = 0;
    calib_strata(n, want, bounds, take);
    uint64_t state = seed + (uint64_t)n_drawn * 0x9E3779B97F4A7C15ULL;
    for (int h = 0; h < CALIB_STRATA; h++) {
        size_t size = bounds[h + 1] - bounds[h];
        const vdx_hit **stratum = pool + bounds[h];
        qsort(stratum, size, sizeof *stratum, hit_by_id);
        calib_draw(stratum, size, sizeof *stratum, take[h], &state);
        for (size_t i = 0; i < take[h]; i++) {
            design[k] = (double)size / (double)take[h];
            pool[k++] = stratum[i]; /* k <= bounds[h] + i: never overwrites a draw to come */
        }
    }
    char now[32];
    clock_utc_iso_now(now);
    sqlite3_stmt *stmt = k ? book_prepare(book,
                                          "INSERT INTO audit_items(concept, item, drawn, time, weight)"
                                          " VALUES(?1, ?2, ?3, ?4, ?5)",
                                          err)
                           : NULL;
    if (k && !stmt)
        rc = -1;
    for (size_t i = 0; rc == 0 && i < k; i++) {
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, rec->id);
        sqlite3_bind_text(stmt, 2, pool[i]->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, (int64_t)n_drawn + (int64_t)i + 1);
        sqlite3_bind_text(stmt, 4, now, -1, SQLITE_STATIC);
        sqlite3_bind_double(stmt, 5, design[i]);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = book_fail(book, err, "recording an audit item");
    }
    sqlite3_finalize(stmt);
    free(pool);
    free(design);
    return rc;
}

/* A lookup from an id to its position in hits. */
static int hits_index_build(const vdx_hits *hits, label_index *index, vdx_error *err)
{
    size_t n = (size_t)hits->n;
    char **ids = malloc((n + 1) * sizeof *ids);
    int *positions = malloc((n + 1) * sizeof *positions);
    int rc = ids && positions ? 0 : vdx_fail_oom(err, "out of memory for %zu items", n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        ids[i] = hits->hits[i].id;
        positions[i] = (int)i;
    }
    label_set set = {.n = n, .ids = ids, .labels = positions};
    if (rc == 0)
        rc = label_index_build(&set, index, err);
    free(ids);
    free(positions);
    return rc;
}

int audit_candidates(vdx_concepts *book, const char *name, const vdx_candidates_request *req,
                     cJSON **result, vdx_error *err)
{
    *result = NULL;
    int k = req->k > 0 ? req->k : DEFAULT_K;
    if (k > MAX_K)
        return vdx_fail(err, "candidates: k = %d is more than %d", k, MAX_K);
    if (req->where && *req->where)
        return vdx_fail(err, "the audit sample is drawn from the whole collection: it takes "
                             "no filter");
    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    label_set labels = {0}, audit = {0};
    label_index labelled = {0}, drawn = {0}, by_id = {0};
    audit_sample sample = {0};
    vdx_hits hits = {0};
    size_t population = 0;
    int rc = concept_find(book, name, &rec, err), pending = 0;
    if (rc == 0 && (rc = concept_check_model(book, &rec, err)) == 0 &&
        (rc = concept_labels_load(book, rec.id, &labels, err)) == 0 &&
        (rc = label_index_build(&labels, &labelled, err)) == 0 &&
        (rc = audit_items_load(book, rec.id, &audit, err)) == 0 &&
        (rc = label_index_build(&audit, &drawn, err)) == 0 &&
        (rc = book_score_all(book, rec.weight, NULL, 0, &hits, err)) == 0)
        rc = hits_index_build(&hits, &by_id, err);
    for (size_t i = 0; rc == 0 && i < audit.n; i++)
        pending += label_index_get(&labelled, audit.ids[i]) < 0;
    if (rc == 0 && (rc = book_begin_write(book, err)) == 0) {
        uint64_t seed = req->seed ? req->seed : seed_of_name(rec.name);
        size_t want = pending < k ? (size_t)(k - pending) : 0;
        rc = draw_more(book, &rec, &labelled, &drawn, (int)audit.n, &hits, want, seed,
                       &population, err);
        rc = book_end_write(book, rc, err);
        if (rc == 0)
            population = population > want ? population - want : 0;
    }
    /* the sample as recorded, with the new draws and their weights */
    if (rc == 0)
        rc = audit_sample_load(book, &rec, &sample, err);
    const label_set *audit_now = &sample.set;
    double norm = rc == 0 ? weight_norm(rec.weight, rec.dims) : 0;
    cJSON *out = rc == 0 ? cJSON_CreateObject() : NULL;
    if (rc == 0) {
        int ok = out && cJSON_AddStringToObject(out, "concept", rec.name) &&
                 cJSON_AddStringToObject(out, "mode", "audit") &&
                 cJSON_AddNumberToObject(out, "k", k) && cJSON_AddNumberToObject(out, "page", 0) &&
                 cJSON_AddNumberToObject(out, "round", rec.rounds);
        cJSON *items = ok ? cJSON_AddArrayToObject(out, "items") : NULL;
        ok = items && cJSON_AddArrayToObject(out, "hidden");
        int listed = 0, audit_labelled = 0;
        for (size_t i = 0; ok && i < audit_now->n; i++) {
            if (label_index_get(&labelled, audit_now->ids[i]) >= 0) {
                audit_labelled++;
                continue;
            }
            int at = label_index_get(&by_id, audit_now->ids[i]);
            if (at < 0 || listed >= k)
                continue; /* an item that lost its vector since it was drawn */
            const vdx_hit *h = &hits.hits[at];
            if ((rc = book_fill_urls(book, &hits, &h, 1, err)) != 0)
                break;
            cJSON *item = cJSON_CreateObject();
            ok = item && cJSON_AddItemToArray(items, item);
            if (!ok) {
                cJSON_Delete(item);
                break;
            }
            ok = cJSON_AddStringToObject(item, "id", h->id) &&
                 (h->url ? cJSON_AddStringToObject(item, "url", h->url)
                         : cJSON_AddNullToObject(item, "url")) &&
                 cJSON_AddNumberToObject(item, "score", h->dist) &&
                 cJSON_AddNumberToObject(item, "probability", concept_probability(&rec, h->dist)) &&
                 cJSON_AddNumberToObject(item, "dist", norm > 0 ? 1.0 - h->dist / norm : 1.0) &&
                 cJSON_AddNumberToObject(item, "rank", audit_now->labels[i]) &&
                 cJSON_AddNumberToObject(item, "weight", audit_design_of(&sample, h->id)) &&
                 cJSON_AddNullToObject(item, "label");
            listed++;
        }
        cJSON *about = ok ? cJSON_AddObjectToObject(out, "audit") : NULL;
        ok = ok && cJSON_AddNumberToObject(out, "unlabelled", (double)population) &&
             cJSON_AddBoolToObject(out, "more", population > 0) && about &&
             cJSON_AddStringToObject(about, "design", "stratified by score") &&
             cJSON_AddNumberToObject(about, "drawn", (double)audit_now->n) &&
             cJSON_AddNumberToObject(about, "labelled", audit_labelled) &&
             cJSON_AddNumberToObject(about, "pending", (double)audit_now->n - audit_labelled);
        if (!ok)
            rc = vdx_fail_oom(err, "listing the audit sample of concept '%s' (it is recorded)",
                              rec.name);
    }
    if (rc == 0)
        *result = out;
    else
        cJSON_Delete(out);
    vdx_hits_free(&hits);
    audit_sample_free(&sample);
    label_index_free(&by_id);
    label_index_free(&drawn);
    label_index_free(&labelled);
    label_set_free(&audit);
    label_set_free(&labels);
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    return rc;
}

/* One item into the counts: its score, its calibrated probability when the caller has it
 * (else NAN), its label (-1: none) and its design weight in the audit sample (0: not
 * drawn). */
static void count_item(calib_counts *c, const concept_record *rec, double score, double p,
                       double threshold, int label, double design)
{
    int in_audit = design > 0;
    int above = score > threshold;
    c->total++;
    c->above += above;
    if (label < 0 || in_audit) { /* an item of R, the part the audit sample stands for */
        if (isnan(p))
            p = concept_probability(rec, score);
        c->expected_above += above ? p : 0;
        c->expected_below += above ? 0 : p;
    }
    if (label < 0)
        return;
    if (in_audit) {
        calib_count_audit(c, design, above, label == 1);
    } else {
        c->census++;
        c->census_above += above;
        c->census_pos_above += label == 1 && above;
        c->census_pos_below += label == 1 && !above;
    }
}

int audit_counts(vdx_concepts *book, const concept_record *rec, const label_set *labels,
                 const vdx_hits *hits, double threshold, calib_counts *c, vdx_error *err)
{
    memset(c, 0, sizeof *c);
    audit_sample audit = {0};
    label_index labelled = {0};
    int rc = audit_sample_load(book, rec, &audit, err);
    if (rc == 0)
        rc = label_index_build(labels, &labelled, err);
    for (int i = 0; rc == 0 && i < hits->n; i++)
        count_item(c, rec, hits->hits[i].dist, NAN, threshold,
                   label_index_get(&labelled, hits->hits[i].id),
                   audit_design_of(&audit, hits->hits[i].id));
    label_index_free(&labelled);
    audit_sample_free(&audit);
    return rc;
}

int audit_counts_split(vdx_concepts *book, const concept_record *rec, const label_set *labels,
                       const double *label_scores, const float *unlabelled,
                       const double *unlabelled_p, size_t n_unlabelled, double threshold,
                       calib_counts *c, vdx_error *err)
{
    memset(c, 0, sizeof *c);
    audit_sample audit = {0};
    int rc = audit_sample_load(book, rec, &audit, err);
    /* the unlabelled items (all of R): count_item's work for label -1, in one loop without
     * branches (an item is above or below at random: a branch would be mispredicted half
     * the time); a·p is p or +0, so the sums are count_item's */
    double expected_above = 0, expected_below = 0;
    int64_t above = 0;
    for (size_t i = 0; rc == 0 && i < n_unlabelled; i++) {
        double p = unlabelled_p ? unlabelled_p[i] : concept_probability(rec, unlabelled[i]);
        int is_above = unlabelled[i] > threshold;
        double a = is_above;
        above += is_above;
        expected_above += a * p;
        expected_below += (1 - a) * p;
    }
    c->total += (int64_t)n_unlabelled;
    c->above += above;
    c->expected_above += expected_above;
    c->expected_below += expected_below;
    for (size_t i = 0; rc == 0 && i < labels->n; i++)
        count_item(c, rec, label_scores[i], NAN, threshold, labels->labels[i],
                   audit_design_of(&audit, labels->ids[i]));
    audit_sample_free(&audit);
    return rc;
}

static cJSON *estimate_json(const calib_estimate *e)
{
    if (!e->known)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddNumberToObject(o, "value", e->value) ||
              !cJSON_AddNumberToObject(o, "lo", e->lo) || !cJSON_AddNumberToObject(o, "hi", e->hi))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *audit_estimates_json(const calib_counts *counts)
{
    calib_estimates e;
    calib_estimate_all(counts, &e);
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "status", e.positives.known ? "estimated" : "unknown") &&
             cJSON_AddNumberToObject(o, "audit_labels", (double)counts->audit) &&
             cJSON_AddNumberToObject(o, "census_labels", (double)counts->census) &&
             cJSON_AddNumberToObject(o, "weight", e.weight) &&
             cJSON_AddNumberToObject(o, "interval", 0.95);
    const char *keys[] = {"positives", "precision", "recall"};
    const calib_estimate *values[] = {&e.positives, &e.precision, &e.recall};
    for (int i = 0; ok && i < 3; i++) {
        cJSON *v = estimate_json(values[i]);
        ok = v && cJSON_AddItemToObject(o, keys[i], v);
        if (!ok)
            cJSON_Delete(v);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int audit_calibrate(vdx_concepts *book, const concept_record *rec, const float *weight,
                    const label_set *set, const float *X, calib_map *map, int *fitted,
                    cJSON **about, vdx_error *err)
{
    *fitted = 0;
    *about = NULL;
    *map = (calib_map){1, 0};
    audit_sample audit = {0};
    size_t n = set->n;
    double *s = malloc((n + 1) * sizeof *s), *w = malloc((n + 1) * sizeof *w);
    double *design = malloc((n + 1) * sizeof *design);
    int *y = malloc((n + 1) * sizeof *y);
    int rc = s && w && y && design ? 0
                                   : vdx_fail_oom(err, "out of memory for calibrating %zu labels", n);
    if (rc == 0)
        rc = audit_sample_load(book, rec, &audit, err);
    int64_t audited = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        double dot = 0;
        for (int j = 0; j < rec->dims; j++)
            dot += (double)X[i * (size_t)rec->dims + j] * weight[j];
        s[i] = dot;
        y[i] = set->labels[i] == 1;
        design[i] = audit_design_of(&audit, set->ids[i]);
        audited += design[i] > 0;
    }
    double audit_weight = 1;
    if (rc == 0 && calib_fit_labels(s, y, design, n, vdx_store_count(book->store), w, map,
                                    &audit_weight) == 0) {
        *fitted = 1;
        cJSON *o = cJSON_CreateObject();
        int ok = o && cJSON_AddStringToObject(o, "method", "platt") &&
                 cJSON_AddNumberToObject(o, "a", map->a) && cJSON_AddNumberToObject(o, "b", map->b) &&
                 cJSON_AddNumberToObject(o, "labels", (double)n) &&
                 cJSON_AddNumberToObject(o, "audit_labels", (double)audited) &&
                 cJSON_AddNumberToObject(o, "audit_weight", audit_weight);
        if (ok)
            *about = o;
        else {
            cJSON_Delete(o);
            rc = vdx_fail_oom(err, "describing a calibration");
        }
    }
    free(s);
    free(w);
    free(y);
    free(design);
    audit_sample_free(&audit);
    return rc;
}
