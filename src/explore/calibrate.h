/* Private to src/explore/ (and the loop benchmark): the numbers behind calibrated
 * probabilities and audited estimates, free of any storage (calibrate.c). */
#ifndef VDX_EXPLORE_CALIBRATE_H
#define VDX_EXPLORE_CALIBRATE_H

#include <stddef.h>
#include <stdint.h>

/* Platt scaling on the logit: p = sigmoid(a·s + b). The identity map is {1, 0}. */
typedef struct calib_map {
    double a, b;
} calib_map;

/* Fits a and b by weighted maximum likelihood (Newton with backtracking, Lin, Lin and
 * Weng's robust form of Platt's algorithm) with Platt's smoothed targets
 * (W+ + 1)/(W+ + 2) and 1/(W- + 2), W± the classes' total weights, so that separable
 * labels give a finite map. s: n logits, y: 0/1, w: weights (NULL: all 1). Returns 0, or
 * -1 (map set to the identity) without a positive and a negative of positive weight. */
int calib_platt_fit(const double *s, const int *y, const double *w, size_t n,
                    calib_map *map);
double calib_probability(const calib_map *map, double s);
/* The logit at which the map gives probability p (0 < p < 1; a > 0). */
double calib_logit_at(const calib_map *map, double p);

/* The calibration of a round from its labels' scores s and labels y: the labels outside
 * the audit sample (design[i] = 0) weigh 1, a census of themselves; the audit labels
 * (design[i] > 0: their design weight, 1 / the chance of being drawn) share the weight of
 * the items of the collection (`total`) nobody labelled in proportion to their design
 * weights. w is scratch space for n weights; *audit_weight gets an audit label's mean
 * weight (1 without audit labels). Returns calib_platt_fit's status. */
int calib_fit_labels(const double *s, const int *y, const double *design, size_t n,
                     int64_t total, double *w, calib_map *map, double *audit_weight);

/* An item of the collection for the threshold fit: its score and how much of a positive
 * it counts for (its label when labelled, else its calibrated probability). */
typedef struct calib_item {
    double score, positive;
} calib_item;

/* The cut of the threshold fit over expected counts: sorts items by score (descending)
 * and, predicting the c best positive for every c at a change of score, picks the best
 * F1 (precision_target <= 0) or the most recall with expected precision >=
 * precision_target. Returns c (0 when no cut meets the target) with the threshold
 * halfway between the scores either side of the cut (below the lowest when c = n) and
 * the expected precision, recall and F1 there; *best_precision gets the best expected
 * precision of any cut. */
size_t calib_best_cut(calib_item *items, size_t n, double precision_target, double *threshold,
                      double *precision, double *recall, double *f1, double *best_precision);

/* Wilson score interval of k successes in n trials at z (1.96: 95%); [0, 1] when n = 0. */
void calib_wilson(double k, double n, double z, double *lo, double *hi);

/* What the estimates are made of. The collection is split into the labelled items that
 * are not audit items (a census: their labels are known) and the rest, R, of which the
 * labelled audit items are a random sample with known design weights (all equal for a
 * uniform draw); R is split again by the threshold (post-stratification: how many items
 * of R lie above it is known exactly). */
typedef struct calib_counts {
    int64_t total, above;           /* the collection: items, items above the threshold */
    int64_t census, census_above;   /* labelled items outside the audit sample */
    int64_t census_pos_above, census_pos_below;
    int64_t audit, audit_above;     /* labelled audit items, those above the threshold */
    /* the audit labels' design weights summed on each side of the threshold: w, w² (for
     * the effective sample size) and w over the positives */
    double audit_w_above, audit_w2_above, audit_wpos_above;
    double audit_w_below, audit_w2_below, audit_wpos_below;
    /* the calibrated probabilities summed over R's items above / below the threshold:
     * the point estimate of a stratum no audit label fell in */
    double expected_above, expected_below;
} calib_counts;

/* One labelled audit item into the counts: its design weight, whether it is above the
 * threshold and positive. */
void calib_count_audit(calib_counts *c, double design, int above, int positive);

/* An estimate with its interval; known = 0 when there is nothing to estimate from. */
typedef struct calib_estimate {
    int known;
    double value, lo, hi;
} calib_estimate;

typedef struct calib_estimates {
    double weight;                  /* an audit label's mean weight: |R| / audit */
    calib_estimate positives, precision, recall;
} calib_estimates;

/* Estimates at the threshold with 95% intervals. True positives = the census's
 * positives above + R_above · (the audit's weighted positive share above), false
 * negatives the same below (the Hajek estimator within each side: with equal weights, a
 * label there stands for R_x / audit_x items). Each side's interval is the Wilson
 * interval of that share at Kish's effective sample size (sum w)^2 / sum w^2, scaled to
 * R_x. A side without audit labels takes the calibrated expectation as its point and
 * [0, R_x] as its interval (the sample says nothing about it). Precision = TP / above
 * (above is counted exactly); recall = TP / (TP + FN), its interval from the extreme
 * pairs of the TP and FN intervals. Without audit labels (and a non-empty R) every
 * estimate is unknown; precision is unknown when nothing is above. */
void calib_estimate_all(const calib_counts *c, calib_estimates *e);

/* Puts k of the n items of list (each `size` bytes) drawn uniformly without
 * replacement first, in draw order (a partial Fisher-Yates shuffle; k <= n). The audit
 * sample and the random candidates are drawn with it (common/random.h's generator). */
void calib_draw(void *list, size_t n, size_t size, size_t k, uint64_t *state);

/* The audit sample's design, stratified by score: a pool of n items ranked by the
 * concept's score (best first) is cut at ranks ceil(n/100) and ceil(n/10), so the top 1%,
 * the next 9% and the other 90% are CALIB_STRATA strata; k draws are shared equally
 * (the first strata get the remainder, a stratum smaller than its share gives the rest
 * to the next). Stratum h is ranks [bounds[h], bounds[h + 1]); take[h] items are drawn
 * from it uniformly, each with design weight (its size) / take[h]. Uniform sampling
 * almost never lands in the top 1%, where the threshold lives. */
enum { CALIB_STRATA = 3 };
void calib_strata(size_t n, size_t k, size_t bounds[CALIB_STRATA + 1], size_t take[CALIB_STRATA]);

#endif
