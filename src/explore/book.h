/* Private to src/explore/: the concept book's state and the helpers its files share
 * (book.c owns the database and its schema; concepts.c, labels.c, rounds.c,
 * candidates.c, evaluate.c and export.c work through these helpers). Every helper
 * expects the caller to hold book->lock. */
#ifndef VDX_EXPLORE_BOOK_H
#define VDX_EXPLORE_BOOK_H

#include <pthread.h>
#include <sqlite3.h>

#include "common/clock.h" /* clock_utc_iso_now: event and round times */
#include "explore/calibrate.h"
#include "vdx/explore.h"

struct vdx_concepts {
    vdx_store *store;
    sqlite3 *db;
    pthread_mutex_t lock;
    char path[4096];
};

/* One concept as stored, with its current weight. */
typedef struct concept_record {
    int64_t id;
    char *name, *prompt, *created, *updated, *examples_json;
    vdx_model_identity model;
    int dims;
    float *initial_weight; /* dims */
    float *weight;         /* dims: the last round's, else the initial one */
    double threshold;
    int trainer;           /* TRAINER_SEED, TRAINER_ANCHORED or TRAINER_AUTO, as set */
    int rounds;            /* number of rounds trained */
    int last_iters;        /* of the last round (VDX_FIT_ITERS when none) */
    float last_lr;
    calib_map calib;       /* the last round's calibration (identity when none) */
    int calibrated;        /* 1 when the last round has one */
} concept_record;

/* The trainers a concept can use: the original's fit, the anchored logistic regression
 * (vdx_classifier_fit_anchored) and auto (the default), which a round resolves to one of
 * the two (concept_next_trainer). */
enum { TRAINER_SEED, TRAINER_ANCHORED, TRAINER_AUTO };
/* "seed" / "anchored" / "auto" → the trainer, -1 for anything else; and back. */
int concept_trainer_parse(const char *name);
const char *concept_trainer_name(int trainer);

/* The probability the product shows for a logit: the concept's calibration of it. */
double concept_probability(const concept_record *rec, double score);
/* {"method":"platt","a","b","round","labels","audit_labels"} of the concept, or JSON null
 * before its first calibrated round. */
cJSON *concept_calibration_json(const concept_record *rec);

/* The labels of a concept, oldest first. */
typedef struct label_set {
    size_t n;
    char **ids, **urls, **times;
    int *labels; /* 1 / 0 */
} label_set;

/* Loads a concept by name ("no concept named 'NAME'"). */
int concept_find(vdx_concepts *book, const char *name, concept_record *rec, vdx_error *err);
void concept_record_free(concept_record *rec);
/* Refuses a concept whose model differs from the collection's. */
int concept_check_model(vdx_concepts *book, const concept_record *rec, vdx_error *err);
int concept_labels_load(vdx_concepts *book, int64_t concept_id, label_set *set, vdx_error *err);
/* The rows of `sql` (one parameter: the concept id) as a label_set: columns item, label,
 * and with with_url_time also url and time (else urls and times stay NULL). */
int label_set_load(vdx_concepts *book, const char *sql, int64_t concept_id, int with_url_time,
                   label_set *set, vdx_error *err);
/* Frees a set from either loader. */
void label_set_free(label_set *set);
/* Label i of the set as {"id", "url" (null when unknown), "label", "time"}. */
cJSON *label_set_item_json(const label_set *set, size_t i);
/* The rounds of a concept as a JSON array (see vdx_concept_get); with_weights adds each
 * round's "weight". */
int concept_history_json(vdx_concepts *book, int64_t concept_id, int with_weights,
                         cJSON **history, vdx_error *err);
/* Builds the vdx_concept_get object of a loaded concept. */
int concept_json(vdx_concepts *book, const concept_record *rec, int with_weight,
                 cJSON **concept, vdx_error *err);

/* Checks a concept name (see VDX_CONCEPT_NAME_MAX). */
int concept_name_check(const char *name, vdx_error *err);
/* Message naming two models, for refusals: "WHAT model X (fingerprint F, N dims); this
 * collection holds model Y (fingerprint G, M dims)". */
int model_mismatch_fail(vdx_error *err, const char *what, const vdx_model_identity *theirs,
                        const vdx_model_identity *ours);

/* Imports a whole concept in one transaction (export.c). history entries as exported,
 * each with "weight". */
int concept_insert_imported(vdx_concepts *book, const char *name, const char *prompt,
                            const vdx_model_identity *model, const float *initial_weight,
                            double threshold, int trainer, const cJSON *history,
                            vdx_error *err);

/* Cross-validates the concept's training procedure on labels (evaluate.c): the
 * "cross_validation" object of vdx_concept_evaluate, or JSON null with fewer than 2
 * labels of a class. X holds set->n vectors, y their 0/1 labels; weak (n_weak vectors,
 * concept_weak_negatives) the anchored trainer's weak negatives. */
int concept_cross_validate(const concept_record *rec, const label_set *set, const float *X,
                           const float *y, const float *weak, int n_weak, cJSON **out,
                           vdx_error *err);

/* The weak negatives of a round of the anchored trainer (rounds.c): VDX_WEAK_NEGATIVES
 * vectors sampled from the store with a seed of the concept and the round, so the round,
 * its cross-validation and a later evaluation see the same ones. *weak (caller frees)
 * stays NULL for the seed's trainer. */
int concept_weak_negatives(vdx_concepts *book, const concept_record *rec, int round,
                           float **weak, size_t *n, vdx_error *err);

/* The cross-validation stored with the last round when it still holds: no label changed
 * since and the threshold is the one it was measured at; else *cv = NULL. */
int concept_current_cv(vdx_concepts *book, const concept_record *rec, cJSON **cv,
                       vdx_error *err);

/* Scores of every item matching where, in storage order (vdx_store_score_all); without
 * with_urls every hit's url is NULL (much faster at millions of items: give the few shown
 * theirs with book_fill_urls). */
int book_score_all(vdx_concepts *book, const float *weight, const char *where, int with_urls,
                   vdx_hits *hits, vdx_error *err);
/* A list of up to this many hits looks its urls up (book_fill_urls); a longer one reads
 * them all with the scores. */
#define URL_LOOKUPS_MAX 1000
/* The scores of every item that is not among `labelled`, in storage order, without ids
 * or urls (no string per item: at a million items the strings cost more than the scan).
 * Unless `exact`, estimated from the collection's approximate index where it has one
 * (vdx_store_score_values: *bound is then the largest error of any score, else 0). */
int book_score_unlabelled(vdx_concepts *book, const float *weight, const label_set *labelled,
                          int exact, float **scores, size_t *n, double *bound, vdx_error *err);
/* Fills the url of the n hits `which` (pointers into hits) that have none, from the store
 * (one lookup each). */
int book_fill_urls(vdx_concepts *book, vdx_hits *hits, const vdx_hit *const *which, size_t n,
                   vdx_error *err);

/* The collection ranked by score, descending, ties by id (evaluate.c): order points into
 * hits (free both); only_above keeps score > threshold; above counts those; limit > 0
 * ranks only the best `limit` (*n_order <= limit); urls as book_score_all's with_urls. */
int concept_ranking(vdx_concepts *book, const concept_record *rec, const char *where,
                    double threshold, int only_above, size_t limit, int with_urls, vdx_hits *hits,
                    const vdx_hit ***order, size_t *n_order, int *above, vdx_error *err);

/* A label lookup built from a label_set: the label of an id, or -1. */
typedef struct label_index {
    size_t n, cap;
    const char **keys;
    int *labels;
} label_index;
int label_index_build(const label_set *set, label_index *index, vdx_error *err);
int label_index_get(const label_index *index, const char *id);
void label_index_free(label_index *index);

/* The shortest decimal that reads back as the same float (JSON without float noise:
 * 0.1f prints 0.1, not 0.10000000149011612). */
double shortest_float(float f);
cJSON *json_float_array(const float *v, int n);

/* The random mode's default seed (candidates.c): a hash of the name, never 0. */
uint64_t seed_of_name(const char *name);

/* ---- the database (book.c) ---- */
/* Reports the database's last error: "PATH: DOING: message". */
int book_fail(vdx_concepts *book, vdx_error *err, const char *doing);
int book_exec(vdx_concepts *book, const char *sql, vdx_error *err);
sqlite3_stmt *book_prepare(vdx_concepts *book, const char *sql, vdx_error *err);
/* A write transaction: book_begin_write, then book_end_write(rc), which commits when rc
 * is 0 and rolls back otherwise (or when the commit fails); returns the final status. */
int book_begin_write(vdx_concepts *book, vdx_error *err);
int book_end_write(vdx_concepts *book, int rc, vdx_error *err);
void book_rollback(vdx_concepts *book);
char *book_dup_text(const unsigned char *text);
/* Runs one UPDATE/DELETE bound to (text ?1, int64 ?2). */
int book_run_on_concept(vdx_concepts *book, const char *sql, const char *text, int64_t id,
                        vdx_error *err);
/* Sets a concept's "updated" time to now. */
int book_touch(vdx_concepts *book, int64_t id, vdx_error *err);
/* Refuses ids the collection does not hold with a vector ("unknown item ids: ..."). */
int book_check_ids_known(vdx_concepts *book, const char *const *ids, size_t n,
                         vdx_error *err);
/* Label counts and the number of label changes since the last round (pending may be
 * NULL). */
int concept_counts(vdx_concepts *book, const concept_record *rec, int *positive,
                   int *negative, int *pending, vdx_error *err);
/* Finite and not all zero. */
int weight_is_usable(const float *w, int dims);
double weight_norm(const float *w, int dims);

/* ---- the audit sample (audit.c) ---- */
/* The audit items of a concept (label = the order they were drawn in, from 1; urls and
 * times NULL). */
int audit_items_load(vdx_concepts *book, int64_t concept_id, label_set *set, vdx_error *err);
/* The "audit" candidates: the audit items still unlabelled, drawing more uniformly at
 * random from the items neither labelled nor drawn until k are pending. */
int audit_candidates(vdx_concepts *book, const char *name, const vdx_candidates_request *req,
                     cJSON **result, vdx_error *err);
/* Counts for the estimates at threshold over hits (the items scored). */
int audit_counts(vdx_concepts *book, const concept_record *rec, const label_set *labels,
                 const vdx_hits *hits, double threshold, calib_counts *counts, vdx_error *err);
/* The same from the collection split in two (book_score_unlabelled): the scores of the
 * unlabelled items (with their calibrated probabilities when the caller has them, else
 * NULL) and each label's score (label_scores[i] for labels->ids[i]). */
int audit_counts_split(vdx_concepts *book, const concept_record *rec, const label_set *labels,
                       const double *label_scores, const float *unlabelled,
                       const double *unlabelled_p, size_t n_unlabelled, double threshold,
                       calib_counts *counts, vdx_error *err);
/* The "estimates" object of vdx_concept_evaluate. */
cJSON *audit_estimates_json(const calib_counts *counts);
/* The trainer the concept's next round runs, TRAINER_SEED or TRAINER_ANCHORED: the one
 * set, or for TRAINER_AUTO the anchored one once the concept has
 * VDX_AUDIT_LABELS_FOR_ANCHORED labelled audit items, else the seed's. */
int concept_next_trainer(vdx_concepts *book, const concept_record *rec, int *trainer,
                         vdx_error *err);
/* Fits the calibration of a weight from the labels (X their vectors): audit labels
 * weigh for the unlabelled part of the collection, the other labels for themselves.
 * Returns 0 with *fitted = 0 when the labels cannot calibrate (one class only). */
int audit_calibrate(vdx_concepts *book, const concept_record *rec, const float *weight,
                    const label_set *set, const float *X, calib_map *map, int *fitted,
                    cJSON **about, vdx_error *err);

/* ---- the label log (labels.c) ---- */
/* Takes back (redo = 0: newest change first, each item back to what it replaced) or
 * replays (redo = 1: oldest first) the changes of one label action and marks it; *n
 * counts them. changes gets [{"id","label","previous"}] (may be NULL). Inside a write
 * transaction. */
int label_action_replay(vdx_concepts *book, int64_t concept, int64_t action, int redo,
                        cJSON *changes, int *n, vdx_error *err);

#endif
