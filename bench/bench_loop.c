/* The explore loop simulated on synthetic concepts (issue 16): are the scores the product
 * shows probabilities, does the threshold mean something, do the audited estimates hold
 * the truth? 25,000 vectors with CLIP's geometry (tests/support/synth.h, 160 clusters,
 * docs/synthetic-data.md); five concept families: a clean cluster, a prompt halfway to a
 * look-alike cluster, a concept of two clusters, a rare concept (0.1%: part of a cluster)
 * and a common one (5%: several clusters). Each runs 8 rounds of the seed's loop: the 9
 * nearest unlabelled items labelled by ground truth, then the seed's trainer
 * (vdx_classifier_fit, 5 steps, lr 0.1, over all labels, the product's default), with
 * and without 20 audit labels drawn before round 1 (and trained on, as the product does
 * with every label): stratified by the prompt's score as the product draws them
 * (calib_strata), or uniformly at random (--audit-design uniform, the design before).
 *
 * Per round: average precision over the whole collection, precision@50, the true number
 * of positives, items above p = 0.5 (raw sigmoid of the logit, as the seed showed, and
 * calibrated), the expected calibration error (10 bins, over every item) of four maps
 * from the same labels: raw sigmoid, Platt on the labels, Platt with the audit weights
 * (the product), isotonic (PAV) with the audit weights (the alternative); the threshold
 * fitted for an expected precision of 0.9 (calib_best_cut, as the product's calibrated
 * fit) with the items above it and their realised precision; the audited estimates of
 * positives and of precision at that threshold (calib_estimate_all) with their 95%
 * intervals. Printed numbers only, never pass/fail; the targets of the issue are shown
 * beside round 5, with the most items any threshold on that round's ranking could hold
 * at a true precision >= 0.9 (what no calibration can exceed).
 *   usage: bench_loop [--items N] [--rounds 8] [--audit 20] [--audit-seed S]
 *                     [--audit-design stratified|uniform] [synthetic-data flags] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/support/synth.h"
#include "explore/calibrate.h"
#include "vdx/explore.h"

#define PAGE 9
#define MAX_CLUSTERS_PER_CONCEPT 16

typedef struct world {
    synth *gen;
    int n, dim, clusters;
    float *X;        /* n x dim */
    int *cluster;    /* n */
    int *size;       /* clusters */
    float *centre;   /* clusters x dim, the normalised mean of each cluster's images */
} world;

typedef struct concept {
    const char *family;
    unsigned char *truth; /* n */
    float *prompt;        /* dim */
    int positives;
} concept;

typedef struct round_stats {
    double ap, p50, ece[4], above_fit_precision, est_pos[3], est_prec[3];
    int above_raw, above_cal, above_fit, fitted;
    int above_f1;              /* items above the best-F1 threshold (fit-threshold's default) */
    double above_f1_precision; /* their true precision */
    int most_at_09; /* the most items a threshold on the ranking holds at true precision >= 0.9 */
} round_stats;

static const char *const map_names[4] = {"raw", "platt-labels", "platt-audit", "isotonic-audit"};

static void normalise(float *v, int dim)
{
    double s = 0;
    for (int j = 0; j < dim; j++)
        s += (double)v[j] * v[j];
    s = sqrt(s);
    for (int j = 0; j < dim; j++)
        v[j] = (float)(v[j] / s);
}

static double dot(const float *a, const float *b, int dim)
{
    double s = 0;
    for (int j = 0; j < dim; j++)
        s += (double)a[j] * b[j];
    return s;
}

/* ---- isotonic regression (the alternative to Platt, measured here only) --------------- */

typedef struct block {
    double lo, hi, wy, w;
} block;

typedef struct scored_label {
    double s, w;
    int y;
} scored_label;

static int by_s(const void *a, const void *b)
{
    double x = ((const scored_label *)a)->s, y = ((const scored_label *)b)->s;
    return x < y ? -1 : x > y;
}

/* Pool-adjacent-violators over weighted labels: blocks of increasing mean. */
static int isotonic_fit(scored_label *l, int n, block *blocks)
{
    qsort(l, (size_t)n, sizeof *l, by_s);
    int m = 0;
    for (int i = 0; i < n; i++) {
        blocks[m++] = (block){l[i].s, l[i].s, l[i].w * l[i].y, l[i].w};
        while (m > 1 && blocks[m - 2].wy / blocks[m - 2].w >= blocks[m - 1].wy / blocks[m - 1].w) {
            blocks[m - 2].hi = blocks[m - 1].hi;
            blocks[m - 2].wy += blocks[m - 1].wy;
            blocks[m - 2].w += blocks[m - 1].w;
            m--;
        }
    }
    return m;
}

static double isotonic_predict(const block *blocks, int m, double s)
{
    int lo = 0, hi = m - 1; /* the last block starting at or below s */
    if (s < blocks[0].lo)
        return blocks[0].wy / blocks[0].w;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (blocks[mid].lo <= s)
            lo = mid;
        else
            hi = mid - 1;
    }
    return blocks[lo].wy / blocks[lo].w;
}

/* ---- metrics ------------------------------------------------------------------------ */

static const double *sort_scores;
static int by_score_desc(const void *a, const void *b)
{
    double x = sort_scores[*(const int *)a], y = sort_scores[*(const int *)b];
    return x > y ? -1 : x < y;
}

/* Expected calibration error over 10 equal bins of p. */
static double ece(const double *p, const unsigned char *truth, int n)
{
    double sum_p[10] = {0}, sum_y[10] = {0};
    int count[10] = {0};
    for (int i = 0; i < n; i++) {
        int b = (int)(p[i] * 10);
        b = b < 0 ? 0 : b > 9 ? 9 : b;
        sum_p[b] += p[i];
        sum_y[b] += truth[i];
        count[b]++;
    }
    double e = 0;
    for (int b = 0; b < 10; b++)
        e += fabs(sum_p[b] - sum_y[b]) / n;
    return e;
}


/* ---- the simulated loop --------------------------------------------------------------- */

enum { TRAINER_SEED, TRAINER_ANCHORED };
static const char *const trainer_names[2] = {"seed", "anchored"};

static vdx_anchored_options anchored_opts = VDX_ANCHORED_DEFAULTS; /* --anchored-* flags */
static int audit_uniform; /* --audit-design uniform: the draw before the strata */

static void run_family(const world *w, const concept *c, int trainer, int rounds,
                       int audit_size, uint64_t audit_seed, round_stats *out)
{
    int n = w->n, dim = w->dim;
    signed char *label = malloc((size_t)n);
    unsigned char *in_audit = calloc((size_t)n, 1);
    int *order = malloc((size_t)n * sizeof *order), *labelled = malloc((size_t)n * sizeof *labelled);
    double *s = malloc((size_t)n * sizeof *s), *p = malloc((size_t)n * sizeof *p);
    float *weight = malloc((size_t)dim * sizeof *weight);
    int n_labelled = 0;
    memset(label, -1, (size_t)n);
    memcpy(weight, c->prompt, (size_t)dim * sizeof *weight);
    /* the audit sample: uniform over the collection, before any round */
    for (int i = 0; i < n; i++)
        order[i] = i;
    uint64_t state = audit_seed;
    double *design = calloc((size_t)n, sizeof *design);
    if (audit_uniform) {
        calib_draw(order, (size_t)n, sizeof *order, (size_t)audit_size, &state);
        for (int i = 0; i < audit_size; i++)
            design[order[i]] = (double)n / audit_size;
    } else { /* the product's: strata by the prompt's score (calib_strata) */
        for (int i = 0; i < n; i++)
            s[i] = dot(w->X + (size_t)i * dim, weight, dim);
        sort_scores = s;
        qsort(order, (size_t)n, sizeof *order, by_score_desc);
        size_t bounds[CALIB_STRATA + 1], take[CALIB_STRATA];
        calib_strata((size_t)n, (size_t)audit_size, bounds, take);
        for (int h = 0; h < CALIB_STRATA; h++) {
            size_t size = bounds[h + 1] - bounds[h];
            calib_draw(order + bounds[h], size, sizeof *order, take[h], &state);
            for (size_t i = 0; i < take[h]; i++)
                design[order[bounds[h] + i]] = (double)size / (double)take[h];
        }
    }
    for (int i = 0; i < n; i++)
        if (design[i] > 0) {
            label[i] = (signed char)c->truth[i];
            in_audit[i] = 1;
            labelled[n_labelled++] = i;
        }
    float *Xl = malloc((size_t)n * (size_t)dim * sizeof *Xl), *yl = malloc((size_t)n * sizeof *yl);
    float *weak = malloc((size_t)VDX_WEAK_NEGATIVES * (size_t)dim * sizeof *weak);
    double *ls = malloc((size_t)n * sizeof *ls), *lw = malloc((size_t)n * sizeof *lw);
    int *ly = malloc((size_t)n * sizeof *ly);
    double *la = malloc((size_t)n * sizeof *la);
    scored_label *sl = malloc((size_t)n * sizeof *sl);
    block *blocks = malloc((size_t)n * sizeof *blocks);
    calib_item *items = malloc((size_t)n * sizeof *items);
    for (int r = 0; r < rounds; r++) {
        /* the 9 nearest unlabelled items of the weight (x unit: cosine order = score order) */
        for (int i = 0; i < n; i++)
            s[i] = dot(w->X + (size_t)i * dim, weight, dim);
        for (int i = 0; i < n; i++)
            order[i] = i;
        sort_scores = s;
        qsort(order, (size_t)n, sizeof *order, by_score_desc);
        for (int i = 0, taken = 0; i < n && taken < PAGE; i++)
            if (label[order[i]] < 0) {
                label[order[i]] = (signed char)c->truth[order[i]];
                labelled[n_labelled++] = order[i];
                taken++;
            }
        /* the trainer over every label (the seed's continues from the current weight) */
        for (int k = 0; k < n_labelled; k++) {
            memcpy(Xl + (size_t)k * dim, w->X + (size_t)labelled[k] * dim, (size_t)dim * sizeof *Xl);
            yl[k] = (float)label[labelled[k]];
        }
        vdx_error err = {{0}};
        int rc;
        if (trainer == TRAINER_ANCHORED) {
            /* VDX_WEAK_NEGATIVES distinct items drawn uniformly from the whole collection
             * (labelled or not), anew each round, as the product's store sample */
            for (int i = 0; i < n; i++)
                order[i] = i;
            uint64_t draw_state = audit_seed * 0x9E3779B97F4A7C15ULL + (uint64_t)r + 1;
            calib_draw(order, (size_t)n, sizeof *order, VDX_WEAK_NEGATIVES, &draw_state);
            for (int k = 0; k < VDX_WEAK_NEGATIVES; k++)
                memcpy(weak + (size_t)k * dim, w->X + (size_t)order[k] * dim,
                       (size_t)dim * sizeof *weak);
            float bias;
            rc = vdx_classifier_fit_anchored(Xl, yl, n_labelled, weak, VDX_WEAK_NEGATIVES,
                                             c->prompt, dim, &anchored_opts, weight, &bias, NULL,
                                             &err);
        } else {
            rc = vdx_classifier_fit(Xl, yl, n_labelled, dim, weight, VDX_FIT_ITERS, VDX_FIT_LR,
                                    NULL, &err);
        }
        if (rc != 0) {
            fprintf(stderr, "bench_loop: fit: %s\n", err.message);
            exit(1);
        }
        for (int i = 0; i < n; i++)
            s[i] = dot(w->X + (size_t)i * dim, weight, dim);
        round_stats *st = &out[r];
        memset(st, 0, sizeof *st);
        /* ranking: AP over the collection, P@50 */
        for (int i = 0; i < n; i++)
            order[i] = i;
        qsort(order, (size_t)n, sizeof *order, by_score_desc);
        double tp = 0, ap = 0;
        for (int i = 0; i < n; i++)
            if (c->truth[order[i]]) {
                tp++;
                ap += tp / (i + 1);
                if (tp >= 0.9 * (i + 1))
                    st->most_at_09 = i + 1;
                if (i < 50)
                    st->p50 += 1.0 / 50;
            }
        st->ap = ap / c->positives;
        /* the four maps from the same labels */
        for (int k = 0; k < n_labelled; k++) {
            ls[k] = s[labelled[k]];
            ly[k] = label[labelled[k]];
            la[k] = design[labelled[k]];
        }
        calib_map plain, audited;
        double audit_weight = 1;
        if (calib_platt_fit(ls, ly, NULL, (size_t)n_labelled, &plain) != 0)
            plain = (calib_map){1, 0};
        if (calib_fit_labels(ls, ly, la, (size_t)n_labelled, n, lw, &audited, &audit_weight) != 0)
            audited = (calib_map){1, 0};
        for (int k = 0; k < n_labelled; k++)
            sl[k] = (scored_label){ls[k], lw[k], ly[k]};
        int m = isotonic_fit(sl, n_labelled, blocks);
        for (int map = 0; map < 4; map++) {
            for (int i = 0; i < n; i++)
                p[i] = map == 0   ? 1 / (1 + exp(-s[i]))
                       : map == 1 ? calib_probability(&plain, s[i])
                       : map == 2 ? calib_probability(&audited, s[i])
                                  : isotonic_predict(blocks, m, s[i]);
            st->ece[map] = ece(p, c->truth, n);
            if (map == 0)
                for (int i = 0; i < n; i++)
                    st->above_raw += p[i] > 0.5;
        }
        /* the product's map: p = 0.5, the calibrated threshold fit at precision 0.9, and the
         * audited estimates there */
        for (int i = 0; i < n; i++) {
            p[i] = calib_probability(&audited, s[i]);
            st->above_cal += p[i] > 0.5;
            items[i] = (calib_item){s[i], label[i] >= 0 ? label[i] : p[i]};
        }
        double threshold = 0, precision, recall, f1, best;
        if (calib_best_cut(items, (size_t)n, 0, &threshold, &precision, &recall, &f1, &best) > 0) {
            int true_above = 0;
            for (int i = 0; i < n; i++) {
                st->above_f1 += s[i] > threshold;
                true_above += s[i] > threshold && c->truth[i];
            }
            st->above_f1_precision = st->above_f1 ? (double)true_above / st->above_f1 : NAN;
        }
        st->fitted = calib_best_cut(items, (size_t)n, 0.9, &threshold, &precision, &recall, &f1,
                                    &best) > 0;
        if (!st->fitted)
            continue;
        calib_counts counts = {0};
        int true_above = 0;
        for (int i = 0; i < n; i++) {
            int above = s[i] > threshold, pos = c->truth[i];
            counts.total++;
            counts.above += above;
            st->above_fit += above;
            true_above += above && pos;
            if (label[i] < 0 || in_audit[i]) {
                counts.expected_above += above ? p[i] : 0;
                counts.expected_below += above ? 0 : p[i];
            }
            if (label[i] < 0)
                continue;
            if (in_audit[i]) {
                calib_count_audit(&counts, design[i], above, pos);
            } else {
                counts.census++;
                counts.census_above += above;
                counts.census_pos_above += pos && above;
                counts.census_pos_below += pos && !above;
            }
        }
        st->above_fit_precision = st->above_fit ? (double)true_above / st->above_fit : NAN;
        calib_estimates e;
        calib_estimate_all(&counts, &e);
        st->est_pos[0] = e.positives.known ? e.positives.value : NAN;
        st->est_pos[1] = e.positives.known ? e.positives.lo : NAN;
        st->est_pos[2] = e.positives.known ? e.positives.hi : NAN;
        st->est_prec[0] = e.precision.known ? e.precision.value : NAN;
        st->est_prec[1] = e.precision.known ? e.precision.lo : NAN;
        st->est_prec[2] = e.precision.known ? e.precision.hi : NAN;
    }
    free(label);
    free(in_audit);
    free(design);
    free(order);
    free(labelled);
    free(s);
    free(p);
    free(weight);
    free(Xl);
    free(yl);
    free(weak);
    free(ls);
    free(lw);
    free(ly);
    free(la);
    free(sl);
    free(blocks);
    free(items);
}

/* ---- the concept families ----------------------------------------------------------- */

/* The cluster whose size is closest to `want` items. */
static int cluster_of_size(const world *w, int want, int avoid)
{
    int best = -1;
    for (int k = 0; k < w->clusters; k++)
        if (k != avoid && (best < 0 || abs(w->size[k] - want) < abs(w->size[best] - want)))
            best = k;
    return best;
}

/* The cluster whose centre is nearest cluster c's (its look-alike). */
static int nearest_cluster(const world *w, int c)
{
    int best = -1;
    double best_cos = -2;
    for (int k = 0; k < w->clusters; k++) {
        double cs = dot(w->centre + (size_t)k * w->dim, w->centre + (size_t)c * w->dim, w->dim);
        if (k != c && w->size[k] > 0 && cs > best_cos) {
            best_cos = cs;
            best = k;
        }
    }
    return best;
}

static void concept_of_clusters(const world *w, concept *c, const int *ks, int nk, int prompt_k)
{
    c->truth = calloc((size_t)w->n, 1);
    c->prompt = calloc((size_t)w->dim, sizeof *c->prompt);
    c->positives = 0;
    for (int i = 0; i < w->n; i++)
        for (int j = 0; j < nk; j++)
            if (w->cluster[i] == ks[j]) {
                c->truth[i] = 1;
                c->positives++;
            }
    float *t = malloc((size_t)w->dim * sizeof *t);
    for (int j = 0; j < prompt_k; j++) {
        synth_text_for_cluster(w->gen, ks[j], 0, t);
        for (int d = 0; d < w->dim; d++)
            c->prompt[d] += t[d];
    }
    free(t);
    normalise(c->prompt, w->dim);
}

static int make_families(const world *w, concept *fam)
{
    int n = w->n;
    /* clean: one cluster of ~0.6% */
    int c0 = cluster_of_size(w, (int)(0.006 * n), -1);
    fam[0].family = "clean";
    concept_of_clusters(w, &fam[0], &c0, 1, 1);
    /* look-alike: the same concept, the prompt halfway to the nearest cluster */
    int look = nearest_cluster(w, c0);
    fam[1].family = "look-alike";
    concept_of_clusters(w, &fam[1], &c0, 1, 1);
    float *t = malloc((size_t)w->dim * sizeof *t);
    synth_text_for_cluster(w->gen, look, 0, t);
    for (int d = 0; d < w->dim; d++)
        fam[1].prompt[d] += t[d];
    normalise(fam[1].prompt, w->dim);
    /* two clusters: the concept is both, the prompt names both */
    int two[2] = {c0, cluster_of_size(w, (int)(0.006 * n), c0)};
    fam[2].family = "two-clusters";
    concept_of_clusters(w, &fam[2], two, 2, 2);
    /* rare: 0.1% of the collection, the items of one cluster furthest along a direction
     * of its own (a sub-concept the prompt does not separate from the cluster) */
    int rare = cluster_of_size(w, (int)(0.004 * n), c0);
    fam[3].family = "rare-0.1%";
    concept_of_clusters(w, &fam[3], &rare, 1, 1);
    int want = (int)(0.001 * n) > 1 ? (int)(0.001 * n) : 1;
    synth_image(w->gen, (uint64_t)n + 7, t); /* a direction: another image */
    double *proj = malloc((size_t)n * sizeof *proj);
    int *idx = malloc((size_t)n * sizeof *idx), m = 0;
    for (int i = 0; i < n; i++)
        if (w->cluster[i] == rare) {
            proj[i] = dot(w->X + (size_t)i * w->dim, t, w->dim);
            idx[m++] = i;
        }
    sort_scores = proj;
    qsort(idx, (size_t)m, sizeof *idx, by_score_desc);
    memset(fam[3].truth, 0, (size_t)n);
    fam[3].positives = m < want ? m : want;
    for (int j = 0; j < fam[3].positives; j++)
        fam[3].truth[idx[j]] = 1;
    free(proj);
    free(idx);
    free(t);
    /* common: the largest clusters until 5% of the collection */
    int ks[MAX_CLUSTERS_PER_CONCEPT], nk = 0, total = 0;
    while (total < 0.05 * n && nk < MAX_CLUSTERS_PER_CONCEPT) {
        int best = -1;
        for (int k = 0; k < w->clusters; k++) {
            int used = 0;
            for (int j = 0; j < nk; j++)
                used |= ks[j] == k;
            if (!used && (best < 0 || w->size[k] > w->size[best]))
                best = k;
        }
        ks[nk++] = best;
        total += w->size[best];
    }
    fam[4].family = "common-5%";
    concept_of_clusters(w, &fam[4], ks, nk, nk);
    return 5;
}

static void cpu_name(char *out, size_t size)
{
    snprintf(out, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(out, size, "%s", strchr(line, ':') + 2);
            out[strcspn(out, "\n")] = 0;
            break;
        }
    if (f)
        fclose(f);
}

static void print_interval(const double *v, int integer)
{
    if (isnan(v[0]))
        printf(" %21s", "unknown");
    else if (integer)
        printf(" %6.0f [%5.0f,%6.0f]", v[0], v[1], v[2]);
    else
        printf(" %6.3f [%5.3f,%5.3f]", v[0], v[1], v[2]);
}

int main(int argc, char **argv)
{
    synth_params sp;
    synth_defaults(&sp);
    sp.clusters = 160;
    int items = 25000, rounds = 8, audit = 20, trainers = 3; /* bit 0 seed, bit 1 anchored */
    uint64_t audit_seed = 16;
    char err_text[256];
    for (int i = 1; i < argc; i++) {
        int r = synth_parse_flag(&sp, argv[i], err_text, sizeof err_text);
        if (r < 0) {
            fprintf(stderr, "bench_loop: %s\n", err_text);
            return 2;
        }
        if (r > 0)
            continue;
        if (!strcmp(argv[i], "--items") && i + 1 < argc)
            items = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--audit") && i + 1 < argc)
            audit = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--trainer") && i + 1 < argc) {
            i++;
            trainers = !strcmp(argv[i], "seed") ? 1 : !strcmp(argv[i], "anchored") ? 2
                       : !strcmp(argv[i], "both") ? 3 : 0;
            if (!trainers) {
                fprintf(stderr, "bench_loop: --trainer seed|anchored|both, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--anchored-scale") && i + 1 < argc) {
            anchored_opts.scale = strtof(argv[++i], NULL);
        } else if (!strcmp(argv[i], "--anchored-pull") && i + 1 < argc) {
            anchored_opts.pull = strtof(argv[++i], NULL);
        } else if (!strcmp(argv[i], "--anchored-weak-weight") && i + 1 < argc) {
            anchored_opts.weak_weight = strtof(argv[++i], NULL);
        } else if (!strcmp(argv[i], "--anchored-iters") && i + 1 < argc) {
            anchored_opts.iters = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--audit-design") && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "stratified") && strcmp(argv[i], "uniform")) {
                fprintf(stderr, "bench_loop: --audit-design stratified|uniform, not '%s'\n", argv[i]);
                return 2;
            }
            audit_uniform = !strcmp(argv[i], "uniform");
        } else if (!strcmp(argv[i], "--audit-seed") && i + 1 < argc)
            audit_seed = strtoull(argv[++i], NULL, 10);
        else {
            char help[2048];
            synth_flags_help(&sp, help, sizeof help);
            printf("usage: bench_loop [--items 25000] [--rounds 8] [--audit 20] [--audit-seed 16] "
                   "[--audit-design stratified|uniform]\n       [--trainer seed|anchored|both] "
                   "[--anchored-scale 20] "
                   "[--anchored-pull 0.3] [--anchored-weak-weight 1] [--anchored-iters 100] "
                   "[synthetic-data flags]\n%s", help);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (items < 1000 || rounds < 1 || rounds > 50 || audit < 0 || audit > items / 2) {
        fprintf(stderr, "bench_loop: --items >= 1000, 1 <= --rounds <= 50, 0 <= --audit <= items/2\n");
        return 2;
    }
    world w = {.n = items, .dim = sp.dim, .clusters = sp.clusters};
    w.gen = synth_new(&sp, err_text, sizeof err_text);
    if (!w.gen) {
        fprintf(stderr, "bench_loop: %s\n", err_text);
        return 2;
    }
    w.X = malloc((size_t)items * (size_t)w.dim * sizeof *w.X);
    w.cluster = malloc((size_t)items * sizeof *w.cluster);
    w.size = calloc((size_t)w.clusters, sizeof *w.size);
    w.centre = calloc((size_t)w.clusters * (size_t)w.dim, sizeof *w.centre);
    synth_images(w.gen, 0, (size_t)items, w.X);
    for (int i = 0; i < items; i++) {
        int k = w.cluster[i] = synth_cluster_of(w.gen, (uint64_t)i);
        w.size[k]++;
        for (int d = 0; d < w.dim; d++)
            w.centre[(size_t)k * w.dim + d] += w.X[(size_t)i * w.dim + d];
    }
    for (int k = 0; k < w.clusters; k++)
        if (w.size[k])
            normalise(w.centre + (size_t)k * w.dim, w.dim);
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    vdx_anchored_options anchored = anchored_opts;
    printf("bench_loop: %d items, %d dims, %d clusters (CLIP-like synthetic, seed %llu), %d rounds "
           "of %d labels; seed trainer (%d steps, lr %g), anchored trainer (scale %g, pull %g, "
           "%d weak negatives of total weight %g, %d steps); audit sample %d (%s, seed %llu)\n"
           "CPU: %s\n",
           items, w.dim, w.clusters, (unsigned long long)sp.seed, rounds, PAGE, VDX_FIT_ITERS,
           (double)VDX_FIT_LR, (double)anchored.scale, (double)anchored.pull,
           VDX_WEAK_NEGATIVES, (double)anchored.weak_weight, anchored.iters, audit,
           audit_uniform ? "uniform" : "stratified by the prompt's score", (unsigned long long)audit_seed,
           cpu);
    concept fam[5];
    int n_fam = make_families(&w, fam);
    round_stats *plain[2], *with_audit[2];
    for (int t = 0; t < 2; t++) {
        plain[t] = malloc((size_t)rounds * sizeof *plain[t]);
        with_audit[t] = malloc((size_t)rounds * sizeof *with_audit[t]);
    }
    double worst_gap[5][2]; /* per family: min over rounds of AP(anchored) - AP(seed) */
    double t0 = vdx_now();
    for (int f = 0; f < n_fam; f++) {
        printf("\n%s: %d positives (%.2f%%)\n", fam[f].family, fam[f].positives,
               100.0 * fam[f].positives / items);
        for (int t = 0; t < 2; t++) {
            if (!(trainers & (1 << t)))
                continue;
            run_family(&w, &fam[f], t, rounds, 0, audit_seed, plain[t]);
            run_family(&w, &fam[f], t, rounds, audit, audit_seed, with_audit[t]);
            printf("%s trainer\n", trainer_names[t]);
            printf("round   AP(alone) AP(+audit) P@50  >0.5 raw  >0.5 cal | ECE: raw  platt-lab "
                   "platt-aud iso-aud | fit@0.9: above prec | est. positives [95%%]  est. "
                   "precision [95%%]\n");
            for (int r = 0; r < rounds; r++) {
                const round_stats *a = &with_audit[t][r];
                printf("%5d   %9.3f %10.3f %5.2f %9d %9d | %9.3f %10.3f %9.3f %7.3f |", r + 1,
                       plain[t][r].ap, a->ap, a->p50, a->above_raw, a->above_cal, a->ece[0],
                       a->ece[1], a->ece[2], a->ece[3]);
                if (a->fitted) {
                    printf(" %13d %5.3f |", a->above_fit, a->above_fit_precision);
                    print_interval(a->est_pos, 1);
                    print_interval(a->est_prec, 0);
                } else {
                    printf(" %19s | (no threshold to estimate at)", "no cut reaches 0.9");
                }
                printf("\n");
            }
            int r5 = rounds >= 5 ? 4 : rounds - 1;
            const round_stats *a = &with_audit[t][r5];
            double ratio = fam[f].positives ? (double)a->above_fit / fam[f].positives : NAN;
            printf("%s, targets after round %d: ECE %.4f (%s 0.05); above the fitted threshold "
                   "%d vs %d positives (ratio %.2f, %s 1.5x); realised precision at 0.9 "
                   "%.3f (>= 0.85 on clean and look-alike); AP with audit - alone %+.3f; the ranking "
                   "holds at most %d items at a true precision >= 0.9\n",
                   trainer_names[t], r5 + 1, a->ece[2], a->ece[2] <= 0.05 ? "<=" : "above",
                   a->above_fit, fam[f].positives, ratio,
                   ratio >= 1 / 1.5 && ratio <= 1.5 ? "within" : "outside", a->above_fit_precision,
                   a->ap - plain[t][r5].ap, a->most_at_09);
            double ratio_f1 = fam[f].positives ? (double)a->above_f1 / fam[f].positives : NAN;
            printf("%s, after round %d: above the best-F1 threshold (fit-threshold's default) %d "
                   "vs %d positives (ratio %.2f, %s 1.5x), realised precision %.3f\n",
                   trainer_names[t], r5 + 1, a->above_f1, fam[f].positives, ratio_f1,
                   ratio_f1 >= 1 / 1.5 && ratio_f1 <= 1.5 ? "within" : "outside",
                   a->above_f1_precision);
            printf("%s, ECE of the raw probabilities without audit after round %d: %.3f; Platt "
                   "on its labels: %.3f\n", trainer_names[t], r5 + 1, plain[t][r5].ece[0],
                   plain[t][r5].ece[1]);
        }
        if (trainers == 3) {
            worst_gap[f][0] = worst_gap[f][1] = INFINITY;
            for (int r = 0; r < rounds; r++) {
                worst_gap[f][0] = fmin(worst_gap[f][0], plain[1][r].ap - plain[0][r].ap);
                worst_gap[f][1] = fmin(worst_gap[f][1], with_audit[1][r].ap - with_audit[0][r].ap);
            }
            printf("anchored - seed, AP: alone r1 %+.3f r5 %+.3f r%d %+.3f, worst round %+.3f; "
                   "with audit r1 %+.3f r5 %+.3f r%d %+.3f, worst round %+.3f\n",
                   plain[1][0].ap - plain[0][0].ap,
                   plain[1][rounds >= 5 ? 4 : 0].ap - plain[0][rounds >= 5 ? 4 : 0].ap, rounds,
                   plain[1][rounds - 1].ap - plain[0][rounds - 1].ap, worst_gap[f][0],
                   with_audit[1][0].ap - with_audit[0][0].ap,
                   with_audit[1][rounds >= 5 ? 4 : 0].ap - with_audit[0][rounds >= 5 ? 4 : 0].ap,
                   rounds, with_audit[1][rounds - 1].ap - with_audit[0][rounds - 1].ap,
                   worst_gap[f][1]);
        }
    }
    if (trainers == 3) {
        printf("\nanchored against seed, the worst round's AP difference per family (alone / "
               "with audit):");
        for (int f = 0; f < n_fam; f++)
            printf(" %s %+.3f / %+.3f;", fam[f].family, worst_gap[f][0], worst_gap[f][1]);
        printf("\n");
    }
    printf("\n(%s; the maps: %s, %s, %s, %s; %.1f s)\n", cpu, map_names[0], map_names[1],
           map_names[2], map_names[3], vdx_now() - t0);
    for (int f = 0; f < n_fam; f++) {
        free(fam[f].truth);
        free(fam[f].prompt);
    }
    for (int t = 0; t < 2; t++) {
        free(plain[t]);
        free(with_audit[t]);
    }
    free(w.X);
    free(w.cluster);
    free(w.size);
    free(w.centre);
    synth_free(w.gen);
    return 0;
}
