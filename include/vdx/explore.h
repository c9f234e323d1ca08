/* The explore loop: few-shot concept classifiers over a collection's CLIP image vectors.
 *
 * A *concept* is a linear classifier w (no bias) that a person trains in rounds: start
 * from a prompt's CLIP text features (and/or example items), look at candidates (by
 * default the k nearest unlabelled items of w: where the classifier's mistakes are the
 * hard negatives), label them +1 / 0, train (one call of the concept's trainer: the
 * original's `fit`, or the anchored one below), repeat.
 *
 * Scores and the threshold. An item's score is the logit s = x·w (x the stored,
 * L2-normalised image vector; w the concept's weight, not normalised). The seed's
 * trainer renormalises w every step, so s is close to a cosine and sigmoid(s) is no
 * probability: after each round vdx fits a calibration p = sigmoid(a·s + b) (Platt
 * scaling) and every "probability" it reports (candidates, scores, exports, evaluation,
 * the threshold's) is that one. Each concept has a threshold on the logit (default 0):
 * an item is "positive" when s > threshold. Training accuracy, cross-validation, "above
 * threshold" counts and score exports all use it.
 *
 * Persistence: every concept of a collection lives in the *concept book*, the SQLite
 * database `concepts.db` in vdx_store_dir(store) (WAL; each operation is one
 * transaction), so it works for every store backend and survives restarts. Several
 * processes may use one book at once (a CLI beside a server).
 *
 * Threads: every function of a book takes the book's mutex, so one vdx_concepts may be
 * shared by the threads of a server. The store passed to vdx_concepts_open must outlive
 * the book; the book calls the store while holding its mutex.
 *
 * Results: structured results are cJSON objects the caller owns (cJSON_Delete). The
 * fields are listed beside each function; times are ISO-8601 UTC strings
 * ("2026-11-26T15:04:05Z"); numbers are JSON numbers.
 *
 * Errors: as everywhere in vdx (common.h). Messages worth knowing:
 *   "no concept named 'NAME'"                    (also after it was deleted)
 *   "a concept named 'NAME' already exists"
 *   "unknown item ids: a, b, c"                  (labels and examples; nothing is changed)
 *   "classifier was trained on vectors of model X (fingerprint F…); this collection
 *    holds model Y (fingerprint G…)"             (import, prompt vectors of another model)
 */
#ifndef VDX_EXPLORE_H
#define VDX_EXPLORE_H

#include <cjson/cJSON.h>

#include "vdx/clip.h"
#include "vdx/common.h"
#include "vdx/store.h"

/* ---- The classifier (the original's, exactly) ---------------------------------------- */

#define VDX_FIT_ITERS 5
#define VDX_FIT_LR 0.1f

/* fit(X, y, iters, lr): `iters` steps of
 *     w ← w/‖w‖;  loss = mean BCEWithLogits(X·w, y);  w ← w − lr·Xᵀ(σ(X·w) − y)/n
 * (no bias, no momentum; w is not renormalised after the last step). X is n×dims
 * row-major, y holds 0/1, w (dims) is updated in place, losses (may be NULL) gets the
 * loss of each step. Reproduces PyTorch float32 to 1e-5. Fails when n < 1 or w is zero. */
int vdx_classifier_fit(const float *X, const float *y, int n, int dims, float *w, int iters,
                       float lr, float *losses, vdx_error *err);
/* The anchored trainer, an option beside the original's (docs/explore.md): logistic
 * regression with a bias b, pulled toward the prompt, random items as weak negatives:
 *     minimise Σ BCE(X·w + b, y) + (ω/m) Σ_weak BCE(weak·w + b, 0) + (λ/2)‖w − c·t̂‖²
 * (t̂ the anchor, e.g. the prompt's text features, normalised; m = n_weak) from w = c·t̂,
 * b = 0, by `iters` steps of Nesterov's accelerated gradient. The result depends only on
 * the rows, not on a previous weight. losses (may be NULL) gets iters values. */
typedef struct vdx_anchored_options {
    float scale;       /* c: the anchor's length (the logit scale of a prompt match) */
    float pull;        /* λ */
    float weak_weight; /* ω: the weak negatives' total weight */
    int iters;
} vdx_anchored_options;
#define VDX_ANCHORED_DEFAULTS {20.0f, 0.3f, 1.0f, 100}
#define VDX_WEAK_NEGATIVES 128 /* random items a round of the anchored trainer draws */
int vdx_classifier_fit_anchored(const float *X, const float *y, int n, const float *weak,
                                int n_weak, const float *anchor, int dims,
                                const vdx_anchored_options *opts, float *w, float *bias,
                                float *losses, vdx_error *err);
/* Fraction of rows with (X·w > threshold) == (y > 0.5); 0 when n == 0. */
double vdx_classifier_accuracy(const float *X, const float *y, int n, int dims, const float *w,
                               double threshold);

/* ---- The concept book ---------------------------------------------------------------- */

typedef struct vdx_concepts vdx_concepts;

/* Opens (creating if needed) the concept book of a store's collection. */
vdx_concepts *vdx_concepts_open(vdx_store *store, vdx_error *err);
void vdx_concepts_close(vdx_concepts *book);

/* A concept name: 1..200 bytes of UTF-8, no control characters, not only spaces, not
 * "." or ".." (no URL path can address them). */
#define VDX_CONCEPT_NAME_MAX 200
/* That rule (the CLI and the API both go through it): 0, or -1 saying why not. */
int vdx_concept_check_name(const char *name, vdx_error *err);

typedef struct vdx_concept_spec {
    const char *name;
    /* The prompt (recorded for display and export; may be NULL when examples are given). */
    const char *prompt;
    /* The prompt's text features, unnormalised (dims floats), computed by the caller ... */
    const float *text_vector;
    /* ... by this model (when set, its identity must match the collection's) ... */
    const vdx_model_identity *text_model;
    /* ... or, when text_vector is NULL and prompt is set, embed the prompt with this
     * model (its fingerprint must match the collection's). */
    const vdx_clip_model *model;
    /* Example items (ids in the collection): their mean vector. */
    const char *const *example_ids;
    size_t n_examples;
    /* "seed", "anchored" or "auto" (NULL: auto, the default): see VDX_TRAINER_NAMES. */
    const char *trainer;
} vdx_concept_spec;

/* The trainers a concept can use (docs/explore.md): "seed", the original's fit
 * (vdx_classifier_fit); "anchored", vdx_classifier_fit_anchored; "auto", the default: a
 * round runs the seed's fit while the concept has fewer than VDX_AUDIT_LABELS_FOR_ANCHORED
 * labelled audit items, the anchored trainer from then on (bench_loop found the anchored
 * one at least as good on every simulated concept once 20 audit labels train it). */
#define VDX_TRAINER_NAMES "seed, anchored or auto"
#define VDX_AUDIT_LABELS_FOR_ANCHORED 20
/* 1 when name is one of VDX_TRAINER_NAMES, else 0 (a caller can refuse a bad name before
 * any work). */
int vdx_concept_trainer_known(const char *name);

/* Creates a concept. Initial weight: prompt only → its text features, unnormalised (as
 * the original); examples only → the mean of their vectors; both → the sum of the two
 * L2-normalised parts. Neither → error. Result: the concept, as vdx_concept_get, plus
 * "prompt_truncated": true when the prompt embedded here was cut to 77 tokens. */
int vdx_concept_create(vdx_concepts *book, const vdx_concept_spec *spec, cJSON **concept,
                       vdx_error *err);

/* The concepts, oldest first: JSON array of summaries
 *   {"name","prompt","created","updated","threshold","positive","negative","rounds"}. */
int vdx_concept_list(vdx_concepts *book, cJSON **list, vdx_error *err);

/* One concept:
 *   {"name","prompt","created","updated",
 *    "model":{"name","fingerprint","dims"},
 *    "threshold": logit threshold,
 *    "trainer": "seed"|"anchored"|"auto", "next_trainer": "seed"|"anchored" (the one the
 *    next round runs: for auto, anchored from VDX_AUDIT_LABELS_FOR_ANCHORED labelled audit
 *    items),
 *    "positive","negative": label counts, "pending": label changes since the last round,
 *    "examples":[ids], "rounds": number of rounds,
 *    "history":[{"round":1..,"time","labels_added","positive","negative","iters","lr",
 *                "losses":[per step],"trainer": the one it ran ("seed"|"anchored"; an
 *                anchored round also has its "bias"),"training_accuracy","weight_norm",
 *                "cross_validation": as vdx_concept_evaluate's, measured when the round was
 *                trained (null: too few labels, or a round imported or trained before
 *                vdx stored it)}],
 *    "weight":[dims floats]  (only when with_weight) }
 * "labels_added" counts the label changes (set or cleared) made since the previous round. */
int vdx_concept_get(vdx_concepts *book, const char *name, int with_weight, cJSON **concept,
                    vdx_error *err);

/* The current weight (dims floats: the last round's, else the initial one). */
int vdx_concept_weight(vdx_concepts *book, const char *name, float *w, int dims,
                       vdx_error *err);

int vdx_concept_rename(vdx_concepts *book, const char *old_name, const char *new_name,
                       vdx_error *err);
/* Deletes a concept with its labels and history. */
int vdx_concept_delete(vdx_concepts *book, const char *name, vdx_error *err);
/* Copies a concept (weight, threshold, labels, history) under a new name. */
int vdx_concept_copy(vdx_concepts *book, const char *name, const char *new_name,
                     vdx_error *err);
/* Sets the trainer of the concept's next rounds: one of VDX_TRAINER_NAMES. */
int vdx_concept_set_trainer(vdx_concepts *book, const char *name, const char *trainer,
                            vdx_error *err);
/* Sets the logit threshold (any finite number). */
int vdx_concept_set_threshold(vdx_concepts *book, const char *name, double threshold,
                              vdx_error *err);

/* ---- Labels, training, undo ---------------------------------------------------------- */

#define VDX_LABEL_POSITIVE 1
#define VDX_LABEL_NEGATIVE 0
#define VDX_LABEL_CLEAR (-1)

typedef struct vdx_label_change {
    const char *id;
    int label; /* VDX_LABEL_POSITIVE / NEGATIVE / CLEAR */
} vdx_label_change;

/* Applies label changes in one transaction, stamped with the current time. Ids unknown
 * to the collection are refused all together ("unknown item ids: …"; items whose ingest
 * failed: "items without a vector (their ingest failed): …"), nothing changed.
 * An id given twice keeps its last change; setting a label to its current value or
 * clearing an unlabelled item is a no-op. One call is one *label action*: undo and redo
 * take it back and replay it whole (a page's "rest of the page negative" is one step).
 * A new action ends what could be redone. Result (may be NULL):
 *   {"changed": changes applied, "action": its number (null when nothing changed),
 *    "positive","negative": counts after, "pending", "next_trainer" (as vdx_concept_get's:
 *    audit labels can change it)}. */
int vdx_concept_label(vdx_concepts *book, const char *name, const vdx_label_change *changes,
                      size_t n, cJSON **result, vdx_error *err);

/* The labels, oldest first: [{"id","url","label":0|1,"time"}]. */
int vdx_concept_labels(vdx_concepts *book, const char *name, cJSON **labels, vdx_error *err);

/* One round of the trainer vdx_concept_get's "next_trainer" names, over all labels: the
 * seed's fit (iters <= 0 → 5, lr <= 0 → 0.1) from the current weight, or the anchored one
 * (iters <= 0 → 100, lr ignored); records the round with the trainer it ran. Fails when
 * there are no labels. Result: the new history entry (see vdx_concept_get). */
int vdx_concept_train(vdx_concepts *book, const char *name, int iters, float lr,
                      cJSON **round, vdx_error *err);

/* Undo and redo one label action at a time (Ctrl+Z / Ctrl+Shift+Z on the page, the same
 * stack for every client). Undo takes back the newest action still in force, each item
 * back to the label it had before; redo replays the oldest undone action. Labels of
 * other actions are never touched, whatever the sequence. Rounds are not affected.
 * Result:
 *   {"undone":"labels" | "redone":"labels", "action": n, "labels_reverted" | "labels_redone",
 *    "changes":[{"id","label": now (1|0|null),"previous": before}],
 *    "positive","negative","pending","next_trainer"}.
 * Fails with "nothing to undo in concept 'NAME'" / "nothing to redo in concept 'NAME'". */
int vdx_concept_undo(vdx_concepts *book, const char *name, cJSON **result, vdx_error *err);
int vdx_concept_redo(vdx_concepts *book, const char *name, cJSON **result, vdx_error *err);

/* Undoes the last round: its weight is dropped (the previous round's, or the initial
 * weight, is current again). Its labels stay, now pending for the next round, unless
 * revert_labels, which takes back (as undo would, so redo can replay them) every
 * action made since the round before. Result:
 *   {"undone":"round","round": n,"weight":"round N-1"|"initial","labels_reverted",
 *    "labels_kept": label changes now pending,"positive","negative","pending"}.
 * Fails with "concept 'NAME' has no round to undo". */
int vdx_concept_undo_round(vdx_concepts *book, const char *name, int revert_labels,
                           cJSON **result, vdx_error *err);

/* The label history, newest action first (at most limit actions; <= 0 → 100):
 *   {"actions":[{"action","time","round","undone":bool,
 *                "changes":[{"id","label","previous"}]}],"can_undo","can_redo","rounds"}. */
int vdx_concept_history(vdx_concepts *book, const char *name, int limit, cJSON **result,
                        vdx_error *err);

/* Reverts one action of the history (any, not only the newest): a new label action that
 * sets each of its items back to the label it had before that action. Result: as
 * vdx_concept_label, plus "reverted_action". Fails for an unknown or undone action. */
int vdx_concept_revert_action(vdx_concepts *book, const char *name, int64_t action,
                              cJSON **result, vdx_error *err);

/* ---- Candidates ---------------------------------------------------------------------- */

typedef enum {
    /* the k nearest unlabelled items of w by cosine distance (the original) */
    VDX_CANDIDATES_NEAREST = 0,
    /* unlabelled items whose score is closest to the threshold */
    VDX_CANDIDATES_BOUNDARY = 1,
    /* uniformly random unlabelled items: an unbiased check */
    VDX_CANDIDATES_RANDOM = 2,
    /* the audit sample: items drawn uniformly at random from the whole collection
     * (neither labelled nor drawn before), kept until labelled; their labels, and only
     * theirs, feed the estimates of vdx_concept_evaluate. Ignores page and where. */
    VDX_CANDIDATES_AUDIT = 3,
} vdx_candidates_mode;

/* "nearest" | "boundary" | "random" | "audit" → mode; -1 for anything else. */
int vdx_candidates_mode_parse(const char *text);
const char *vdx_candidates_mode_name(vdx_candidates_mode mode);

typedef struct vdx_candidates_request {
    vdx_candidates_mode mode;
    int k;                 /* <= 0 → 9 */
    int page;              /* page n = items n·k .. n·k+k-1 of the mode's ordering */
    const char *where;     /* metadata filter (store syntax), or NULL */
    int hide_duplicates;   /* drop items with cosine >= duplicate_cosine to an earlier
                            * item of the same page */
    double duplicate_cosine; /* <= 0 → 0.94 */
    uint64_t seed;         /* random mode; 0 → derived from the concept's name */
    int keep_nothing;      /* make the page without keeping its list in the concept book
                            * (a read-only server; otherwise a concept keeps its 16 most
                            * recent lists of its current round, for stable paging) */
} vdx_candidates_request;

/* Candidates of a page. Labelled items are never offered. Result:
 *   {"concept","mode","k" (audit: <= 0 → 20),"page",
 *    "items":[{"id","url","score": logit x·w,"probability": calibrated,
 *              "dist": cosine distance to w}],
 *    "hidden":[{"id","duplicate_of"}]   (near-duplicates removed from this page),
 *    "unlabelled": unlabelled items matching where (boundary/random modes; -1 for nearest),
 *    "more": true when a next page may hold items,
 *    "audit": {"drawn","labelled","pending"} (audit mode only: "unlabelled" then counts
 *       the items that could still be drawn)}. */
int vdx_concept_candidates(vdx_concepts *book, const char *name,
                           const vdx_candidates_request *req, cJSON **result, vdx_error *err);
/* The checks vdx_concept_candidates makes of a request before it reads anything (k, the
 * page's range, the mode): -1 with VDX_ERR_INVALID when one fails. A caller that does
 * something else first (train, then the next page) checks with it before changing
 * anything. */
int vdx_candidates_check(const vdx_candidates_request *req, vdx_error *err);

/* ---- Evaluation and scoring ---------------------------------------------------------- */

typedef struct vdx_evaluate_options {
    int bins;            /* histogram bins, <= 0 → 40 */
    const char *where;   /* restrict the collection part (counts, histogram) */
    int exact;           /* score every item from its vector even when the collection has an
                          * approximate index (by default, without `where`, the unlabelled
                          * items' scores are estimated from the index's int8 codes) */
} vdx_evaluate_options;

/* How good is the concept:
 *   {"threshold","threshold_probability": its calibrated probability,
 *    "calibration": {"method":"platt","a","b","round"}: p = sigmoid(a·score + b), fitted
 *       after the last round (null before: p = sigmoid(score)),
 *    "positive","negative",
 *    "training_accuracy": accuracy of the current weight on the labels (null: no labels),
 *    "training": {"precision","recall","f1"} of the labels at the threshold (null when
 *       undefined),
 *    "balance": {"positive","negative","positive_share"},
 *    "warnings": [{"code","message"}]: no_positive_above, nothing_above, few_labels,
 *       imbalanced, low_recall,
 *    "labelled": [{"id","score","label"}] the labels' scores (at most 2000),
 *    "cross_validation": {"method":"leave-one-out"|"5-fold","accuracy","precision",
 *                         "recall","f1","folds","steps","labels"} or null with fewer than 2 labels of each
 *       class. Each fold refits from the concept's initial weight with the concept's
 *       training procedure (iters·max(rounds,1) steps, at most 100, the last round's lr)
 *       on the other labels and predicts the held-out ones; precision/recall are null when
 *       undefined. Over 1000 labels it uses 1000 ("labels"), spread evenly over each
 *       class with the class's share, so its cost is bounded.
 *    "count": items scored, "above_threshold": items with score > threshold,
 *    "scores": {"source": "vectors" | "index", "max_error"}: where the collection's
 *       scores came from; "index": the unlabelled items' scores were estimated from the
 *       approximate index's int8 codes (an embedded collection with an index, no `where`,
 *       `exact` unset), each within max_error of the exact score (the labels' scores are
 *       always exact); the counts, histograms and estimates use them,
 *    "histogram":{"min","max","bin_width","counts":[bins]} of all items' scores
 *       (range = [min, max] of scores, widened to include the threshold),
 *    "probability_histogram": the same items over calibrated probability, [0, 1],
 *    "estimates": {"status":"estimated"|"unknown","audit_labels","census_labels",
 *       "weight": the Horvitz-Thompson weight of an audit label,"interval":0.95,
 *       "positives","precision","recall": {"value","lo","hi"} or null}: from the audit
 *       sample (VDX_CANDIDATES_AUDIT) and the other labels as a census, never from the
 *       scores; "unknown" with every value null until an audit item is labelled}.
 * The labelled ticks carry their "probability" too. */
int vdx_concept_evaluate(vdx_concepts *book, const char *name, const vdx_evaluate_options *opts,
                         cJSON **result, vdx_error *err);

/* Threshold fit: sets the concept's threshold from its labels' current scores. */
typedef enum {
    VDX_THRESHOLD_FIT_F1 = 0,        /* the best F1 */
    VDX_THRESHOLD_FIT_PRECISION = 1, /* the most recall with precision >= precision */
} vdx_threshold_target;

/* "f1" | "precision" → target; -1 otherwise. */
int vdx_threshold_target_parse(const char *text);

/* What the fit measures precision and recall on. */
typedef enum {
    /* the labels' scores: the loop's hard cases, not a sample of the collection */
    VDX_THRESHOLD_FROM_LABELS = 0,
    /* the whole collection: each labelled item by its label, every other item by its
     * calibrated probability (the calibration weighs the audit sample for the unlabelled
     * items), so precision and recall are expected values over the collection */
    VDX_THRESHOLD_FROM_CALIBRATION = 1,
    /* the calibration when the concept has one (a round trained on both classes), else
     * the labels */
    VDX_THRESHOLD_FROM_AUTO = 2,
} vdx_threshold_source;

/* "labels" | "calibration" | "auto" → source; -1 otherwise. */
int vdx_threshold_source_parse(const char *text);

typedef struct vdx_threshold_fit {
    vdx_threshold_target target;
    double precision; /* VDX_THRESHOLD_FIT_PRECISION: in (0, 1] */
    vdx_threshold_source source;
} vdx_threshold_fit;

/* Predicting the c best-scoring labels (VDX_THRESHOLD_FROM_CALIBRATION: items) positive,
 * for every c at a change of score, picks the cut that meets the target and sets the
 * threshold halfway between the scores either side of it (below the lowest when every
 * one is predicted positive). Needs a positive and a negative label; the calibration
 * source needs a calibrated round ("concept 'NAME' has no calibration yet: train a round
 * with positive and negative labels"). Result:
 *   {"target":"f1"|"precision",["precision_target"],"source":"labels"|"calibration",
 *    "threshold","threshold_probability","previous","labels" (labels source) | "items",
 *    "precision","recall","f1": on the labels, or expected over the collection, at the
 *    new threshold;
 *    "estimates": the audited estimates at the new threshold (calibration source; as
 *    vdx_concept_evaluate's)}.
 * Fails with "no threshold gives precision >= P on the labels of concept 'NAME' (the best
 * is Q)" when no cut reaches the target. */
int vdx_concept_fit_threshold(vdx_concepts *book, const char *name,
                              const vdx_threshold_fit *fit, cJSON **result, vdx_error *err);

typedef struct vdx_score_request {
    int top;             /* at most this many items (<= 0: all that pass) */
    int offset;          /* skip this many of the ranking (paging) */
    int use_threshold;   /* keep only score > threshold */
    double threshold;    /* when use_threshold; NAN → the concept's threshold */
    const char *where;   /* metadata filter, or NULL */
    int exact;           /* rank by every item's exact score even with an approximate index */
} vdx_score_request;

/* Ranks the collection by score, descending (ties by id). Result:
 *   {"concept","threshold","count": items scored,"above_threshold": items > threshold,
 *    "scores": {"source": "vectors" | "index", "max_error"},
 *    "items":[{"rank":1..,"id","url","score","probability","label":1|0|null}]}.
 * In an embedded collection with an approximate index, a page of at most 1,000 items
 * without `where` (and `exact` unset) is found through the index: the nearest items to
 * the weight (the same order as by score; the index's recall, not a guarantee), each
 * scored exactly from its vector, while "count" and "above_threshold" come from the
 * index's int8 codes ("scores": "index", each score within max_error). */
int vdx_concept_score(vdx_concepts *book, const char *name, const vdx_score_request *req,
                      cJSON **result, vdx_error *err);

/* ---- Export / import ----------------------------------------------------------------- */

typedef enum {
    VDX_EXPORT_CSV = 0,   /* RFC 4180, header row, CRLF line ends */
    VDX_EXPORT_JSONL = 1, /* one JSON object per line */
    VDX_EXPORT_JSON = 2,  /* the classifier */
} vdx_export_format;

/* "csv" | "jsonl" | "json" → format; -1 otherwise. */
int vdx_export_format_parse(const char *text);

/* Labels as text (malloc'd, NUL-terminated): columns/keys id, url, label (1|0),
 * time. CSV or JSONL. */
int vdx_concept_export_labels(vdx_concepts *book, const char *name, vdx_export_format format,
                              char **text, size_t *size, vdx_error *err);
/* Items with score > threshold (NAN → the concept's), best first: rank, id, url, score,
 * probability. CSV or JSONL. */
int vdx_concept_export_scores(vdx_concepts *book, const char *name, double threshold,
                              vdx_export_format format, char **text, size_t *size,
                              vdx_error *err);
/* The classifier as JSON:
 *   {"format":"vdx-classifier","version":1,"name","prompt","created",
 *    "model":{"name","fingerprint","dims"},"weight":[dims],"initial_weight":[dims],
 *    "threshold","history":[as vdx_concept_get, each round with its "weight"]} */
int vdx_concept_export_classifier(vdx_concepts *book, const char *name, cJSON **classifier,
                                  vdx_error *err);
/* Imports a classifier JSON text (as exported) as a new concept named new_name (NULL:
 * its own name). Refuses malformed JSON (with the parser's position), missing or
 * wrongly typed fields (naming them) and another model's classifier. The concept gets
 * the weight, threshold and history; no labels (ids belong to the other collection).
 * Result: the concept, as vdx_concept_get. */
int vdx_concept_import_classifier(vdx_concepts *book, const char *json, size_t size,
                                  const char *new_name, cJSON **concept, vdx_error *err);

#endif
