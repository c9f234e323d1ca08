/* Calibration and audited estimates, the arithmetic only. The seed's trainer ranks well
 * but its logits are not probabilities (its weight is renormalised every step, so a logit
 * is close to a cosine); Platt scaling maps the logit to a probability with a scale and
 * a bias fitted after each round, weighted so that the fit stands for the collection
 * (labels as a census of themselves, audit labels for the rest). Platt rather than
 * isotonic: two parameters fit from a few dozen labels, the map stays monotone and
 * smooth, and bench_loop measures both (docs/explore.md). The estimates of positives,
 * precision and recall come from the audit sample, drawn stratified by score with known
 * design weights (post-stratified by the threshold: weighted shares and Wilson intervals
 * at the effective sample size on each side), and the labels as a census, never from the
 * hard cases standing for the rest. */
#include "explore/calibrate.h"

#include "common/random.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double calib_probability(const calib_map *map, double s)
{
    double z = map->a * s + map->b;
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

double calib_logit_at(const calib_map *map, double p)
{
    return (log(p / (1 - p)) - map->b) / map->a;
}

/* Weighted negative log-likelihood of targets t at z = a·s + b, written to stay finite
 * for large |z|. */
static double platt_loss(const double *s, const int *y, double t_pos, double t_neg,
                         const double *w, size_t n, double a, double b)
{
    double loss = 0;
    for (size_t i = 0; i < n; i++) {
        double z = a * s[i] + b, wi = w ? w[i] : 1;
        /* -t·log σ(z) - (1-t)·log(1-σ(z)) = log(1+e^z) - t·z */
        double softplus = z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
        loss += wi * (softplus - (y[i] ? t_pos : t_neg) * z);
    }
    return loss;
}

int calib_platt_fit(const double *s, const int *y, const double *w, size_t n, calib_map *map)
{
    map->a = 1;
    map->b = 0;
    double pos = 0, neg = 0;
    for (size_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1;
        if (!(wi > 0))
            continue;
        if (y[i])
            pos += wi;
        else
            neg += wi;
    }
    if (!(pos > 0) || !(neg > 0))
        return -1;
    double t_pos = (pos + 1) / (pos + 2), t_neg = 1 / (neg + 2);
    /* start where Platt starts: slope 0, the prior's log-odds */
    double a = 0, b = log((pos + 1) / (neg + 1));
    double loss = platt_loss(s, y, t_pos, t_neg, w, n, a, b);
    for (int iter = 0; iter < 100; iter++) {
        double g_a = 0, g_b = 0, h_aa = 1e-12, h_ab = 0, h_bb = 1e-12;
        for (size_t i = 0; i < n; i++) {
            double wi = w ? w[i] : 1, z = a * s[i] + b;
            double p = z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z));
            double d = wi * (p - (y[i] ? t_pos : t_neg)), h = wi * p * (1 - p);
            g_a += d * s[i];
            g_b += d;
            h_aa += h * s[i] * s[i];
            h_ab += h * s[i];
            h_bb += h;
        }
        if (fabs(g_a) < 1e-9 * (pos + neg) && fabs(g_b) < 1e-9 * (pos + neg))
            break;
        double det = h_aa * h_bb - h_ab * h_ab;
        double da = -(h_bb * g_a - h_ab * g_b) / det, db = -(-h_ab * g_a + h_aa * g_b) / det;
        double step = 1, next = loss;
        while (step >= 1e-10) {
            next = platt_loss(s, y, t_pos, t_neg, w, n, a + step * da, b + step * db);
            if (next < loss + 1e-4 * step * (g_a * da + g_b * db))
                break;
            step /= 2;
        }
        if (step < 1e-10)
            break;
        a += step * da;
        b += step * db;
        loss = next;
    }
    if (!isfinite(a) || !isfinite(b) || !(a > 0))
        return -1; /* a map that would reverse the ranking is no calibration */
    map->a = a;
    map->b = b;
    return 0;
}

int calib_fit_labels(const double *s, const int *y, const double *design, size_t n,
                     int64_t total, double *w, calib_map *map, double *audit_weight)
{
    int64_t census = 0, audited = 0;
    double design_sum = 0;
    for (size_t i = 0; i < n; i++) {
        audited += design[i] > 0;
        census += !(design[i] > 0);
        design_sum += design[i] > 0 ? design[i] : 0;
    }
    double rest = total > census ? (double)(total - census) : 0;
    double scale = audited > 0 && rest > 0 ? rest / design_sum : 0;
    *audit_weight = scale > 0 ? rest / (double)audited : 1;
    for (size_t i = 0; i < n; i++)
        w[i] = design[i] > 0 ? (scale > 0 ? design[i] * scale : 1) : 1;
    return calib_platt_fit(s, y, w, n, map);
}

static int by_item_score_desc(const void *a, const void *b)
{
    const calib_item *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->positive < y->positive ? -1 : x->positive > y->positive; /* no optimistic cut */
}

size_t calib_best_cut(calib_item *items, size_t n, double precision_target, double *threshold,
                      double *precision, double *recall, double *f1, double *best_precision)
{
    qsort(items, n, sizeof *items, by_item_score_desc);
    double total = 0, tp = 0, best_value = -1, best_tp = 0;
    for (size_t i = 0; i < n; i++)
        total += items[i].positive;
    size_t best = 0;
    *best_precision = 0;
    for (size_t c = 1; c <= n; c++) {
        tp += items[c - 1].positive;
        if (c < n && items[c].score == items[c - 1].score)
            continue;
        double p = tp / (double)c, f = 2 * tp / ((double)c + total);
        double value = precision_target <= 0 ? f : p >= precision_target && tp > 0 ? tp : -1;
        *best_precision = fmax(*best_precision, p);
        if (value > best_value || (value == best_value && value >= 0 && precision_target > 0)) {
            best_value = value;
            best = c;
            best_tp = tp;
        }
    }
    if (best == 0 || best_value < 0)
        return 0;
    double spread = items[0].score - items[n - 1].score;
    *threshold = best < n ? (items[best - 1].score + items[best].score) / 2
                          : items[n - 1].score - (spread > 0 ? 0.01 * spread : 0.01);
    *precision = best_tp / (double)best;
    *recall = total > 0 ? best_tp / total : 0;
    *f1 = 2 * best_tp / ((double)best + total);
    return best;
}

void calib_wilson(double k, double n, double z, double *lo, double *hi)
{
    if (!(n > 0)) {
        *lo = 0;
        *hi = 1;
        return;
    }
    double p = k / n, z2 = z * z, den = 1 + z2 / n;
    double centre = (p + z2 / (2 * n)) / den;
    double half = z * sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / den;
    *lo = fmax(0, centre - half);
    *hi = fmin(1, centre + half);
    if (k <= 0)
        *lo = 0;
    if (k >= n)
        *hi = 1;
}

static void set_estimate(calib_estimate *e, double value, double lo, double hi)
{
    e->known = 1;
    e->value = value;
    e->lo = fmin(lo, value);
    e->hi = fmax(hi, value);
}

/* One side of the threshold in R: its estimated positives and their interval, from the
 * audit labels there (w: their weights summed, w2: the squares, wpos: over positives). */
static void side(double items, int64_t audit, double w, double w2, double wpos, double expected,
                 double *value, double *lo, double *hi)
{
    if (items <= 0) {
        *value = *lo = *hi = 0;
        return;
    }
    if (audit <= 0 || !(w > 0)) {
        *value = fmin(fmax(expected, 0), items);
        *lo = 0;
        *hi = items;
        return;
    }
    double share = wpos / w, effective = w * w / w2, wl, wh;
    calib_wilson(share * effective, effective, 1.96, &wl, &wh);
    *value = items * share;
    *lo = items * wl;
    *hi = items * wh;
}

void calib_count_audit(calib_counts *c, double design, int above, int positive)
{
    c->audit++;
    c->audit_above += above != 0;
    if (above) {
        c->audit_w_above += design;
        c->audit_w2_above += design * design;
        c->audit_wpos_above += positive ? design : 0;
    } else {
        c->audit_w_below += design;
        c->audit_w2_below += design * design;
        c->audit_wpos_below += positive ? design : 0;
    }
}

void calib_estimate_all(const calib_counts *c, calib_estimates *e)
{
    memset(e, 0, sizeof *e);
    double rest = (double)(c->total - c->census);
    if (rest > 0 && c->audit <= 0)
        return; /* unknown: nothing stands for the items nobody labelled */
    e->weight = c->audit > 0 ? rest / (double)c->audit : 0;
    double rest_above = (double)(c->above - c->census_above), rest_below = rest - rest_above;
    double tp, tp_lo, tp_hi, fn, fn_lo, fn_hi;
    side(rest_above, c->audit_above, c->audit_w_above, c->audit_w2_above, c->audit_wpos_above,
         c->expected_above, &tp, &tp_lo, &tp_hi);
    side(rest_below, c->audit - c->audit_above, c->audit_w_below, c->audit_w2_below,
         c->audit_wpos_below, c->expected_below, &fn, &fn_lo, &fn_hi);
    double census_tp = (double)c->census_pos_above, census_fn = (double)c->census_pos_below;
    tp += census_tp;
    tp_lo += census_tp;
    tp_hi += census_tp;
    fn += census_fn;
    fn_lo += census_fn;
    fn_hi += census_fn;
    set_estimate(&e->positives, tp + fn, tp_lo + fn_lo, tp_hi + fn_hi);
    double above = (double)c->above;
    if (above > 0)
        set_estimate(&e->precision, tp / above, tp_lo / above, tp_hi / above);
    if (tp + fn > 0)
        set_estimate(&e->recall, tp / (tp + fn),
                     tp_lo + fn_hi > 0 ? tp_lo / (tp_lo + fn_hi) : 0,
                     tp_hi + fn_lo > 0 ? tp_hi / (tp_hi + fn_lo) : 1);
}

void calib_draw(void *list, size_t n, size_t size, size_t k, uint64_t *state)
{
    unsigned char *bytes = list, tmp[64];
    for (size_t i = 0; i < k && i < n; i++) {
        size_t j = i + random_below(state, n - i);
        if (j == i)
            continue;
        for (size_t off = 0; off < size; off += sizeof tmp) {
            size_t len = size - off < sizeof tmp ? size - off : sizeof tmp;
            memcpy(tmp, bytes + i * size + off, len);
            memcpy(bytes + i * size + off, bytes + j * size + off, len);
            memcpy(bytes + j * size + off, tmp, len);
        }
    }
}

void calib_strata(size_t n, size_t k, size_t bounds[CALIB_STRATA + 1], size_t take[CALIB_STRATA])
{
    bounds[0] = 0;
    bounds[1] = (n + 99) / 100;
    bounds[2] = (n + 9) / 10;
    bounds[3] = n;
    size_t left = k < n ? k : n;
    for (int h = 0; h < CALIB_STRATA; h++) {
        size_t size = bounds[h + 1] - bounds[h], strata_left = (size_t)(CALIB_STRATA - h);
        size_t share = (left + strata_left - 1) / strata_left;
        take[h] = share < size ? share : size;
        left -= take[h];
    }
}
