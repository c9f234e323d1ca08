/* The arithmetic behind calibrated probabilities and audited estimates
 * (src/explore/calibrate.c): Platt scaling recovers a known map from constructed scores,
 * weights act as repetitions, separable labels still give a finite map; the Wilson
 * interval and the post-stratified estimates equal hand-computed values, with equal and
 * with unequal design weights; unknown stays unknown without audit labels; the strata of
 * the audit sample and their shares; the sampler that draws within a stratum is uniform
 * (a chi-square check on a seeded run). */
#include "test.h"

#include "explore/calibrate.h"

static uint64_t rng = 7;
static double uniform(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((rng >> 11) + 0.5) / 9007199254740992.0;
}

/* Scores uniform in [-2, 2], labels drawn from p = sigmoid(2s - 1): the fit finds a ≈ 2,
 * b ≈ -1 (Platt's target smoothing is negligible with 40,000 labels). */
TEST(platt_recovers_a_known_map)
{
    enum { N = 40000 };
    static double s[N];
    static int y[N];
    rng = 7;
    for (int i = 0; i < N; i++) {
        s[i] = 4 * uniform() - 2;
        y[i] = uniform() < 1 / (1 + exp(-(2 * s[i] - 1)));
    }
    calib_map map;
    int rc = calib_platt_fit(s, y, NULL, N, &map);
    CHECK(rc == 0 && fabs(map.a - 2) < 0.08 && fabs(map.b + 1) < 0.05,
          "fit a = %.4f, b = %.4f (want 2, -1)", map.a, map.b);
    CHECK(fabs(calib_probability(&map, 0.5) - 0.5) < 0.02 &&
              fabs(calib_logit_at(&map, calib_probability(&map, 0.3)) - 0.3) < 1e-9,
          "probability at the midpoint %.4f; logit_at inverts", calib_probability(&map, 0.5));
}

/* A weight of 3 is three copies of the row; separable labels give a finite, increasing
 * map; one class only is refused with the identity map. */
TEST(platt_weights_separable_one_class)
{
    double s[] = {-1.0, -0.4, -0.1, 0.2, 0.3, 0.9};
    int y[] = {0, 0, 1, 0, 1, 1};
    double w[] = {1, 3, 1, 1, 2, 1};
    double s_rep[10];
    int y_rep[10], n = 0;
    for (int i = 0; i < 6; i++)
        for (int r = 0; r < (int)w[i]; r++) {
            s_rep[n] = s[i];
            y_rep[n++] = y[i];
        }
    calib_map weighted, repeated;
    int rc1 = calib_platt_fit(s, y, w, 6, &weighted), rc2 = calib_platt_fit(s_rep, y_rep, NULL, (size_t)n, &repeated);
    CHECK(rc1 == 0 && rc2 == 0 && fabs(weighted.a - repeated.a) < 1e-6 &&
              fabs(weighted.b - repeated.b) < 1e-6,
          "weighted (%.6f, %.6f) vs repeated (%.6f, %.6f)", weighted.a, weighted.b, repeated.a,
          repeated.b);
    double sep[] = {-0.3, -0.2, -0.1, 0.1, 0.2, 0.3};
    int ysep[] = {0, 0, 0, 1, 1, 1};
    calib_map m;
    rc1 = calib_platt_fit(sep, ysep, NULL, 6, &m);
    /* Platt's targets 4/5 and 1/5 for 3 + 3 labels: the fit passes near p(0.2) = 0.8 */
    CHECK(rc1 == 0 && isfinite(m.a) && m.a > 0 && fabs(m.b) < 1e-6 &&
              calib_probability(&m, 0.2) > 0.7 && calib_probability(&m, 0.2) < 0.9,
          "separable: a = %g, b = %g, p(0.2) = %g", m.a, m.b, calib_probability(&m, 0.2));
    int ones[] = {1, 1, 1, 1, 1, 1};
    rc1 = calib_platt_fit(sep, ones, NULL, 6, &m);
    CHECK(rc1 == -1 && m.a == 1 && m.b == 0, "one class: rc %d, a %g, b %g", rc1, m.a, m.b);
}

/* Wilson 95% of 1 in 20 is [0.0089, 0.2361] (the textbook value); 0 in n starts at 0. */
TEST(wilson_interval)
{
    double lo, hi;
    calib_wilson(1, 20, 1.96, &lo, &hi);
    CHECK(fabs(lo - 0.0089) < 5e-5 && fabs(hi - 0.2361) < 5e-5, "1/20: [%.5f, %.5f]", lo, hi);
    calib_wilson(0, 20, 1.96, &lo, &hi);
    CHECK(lo == 0 && fabs(hi - 0.1611) < 5e-5, "0/20: [%.5f, %.5f]", lo, hi);
    calib_wilson(0, 0, 1.96, &lo, &hi);
    CHECK(lo == 0 && hi == 1, "0/0: [%g, %g]", lo, hi);
}

/* 1,000 items, 100 above the threshold; 40 labelled outside the audit (30 above: 20
 * positives; 5 positives below); 20 audit labels, 2 above (1 positive) and 18 below (1
 * positive). R = 960 items: 70 above, each audit label there standing for 35; 890
 * below, each standing for 890 / 18. TP = 20 + 35 = 55, FN = 5 + 890 / 18; the
 * intervals scale the Wilson bounds of 1/2 and 1/18 to 70 and 890. */
TEST(estimates_with_known_weights)
{
    calib_counts c = {.total = 1000, .above = 100, .census = 40, .census_above = 30,
                      .census_pos_above = 20, .census_pos_below = 5,
                      .expected_above = 99, .expected_below = 99};
    for (int i = 0; i < 20; i++) /* a uniform draw: every label weighs the same */
        calib_count_audit(&c, 48, i < 2, i == 0 || i == 2);
    calib_estimates e;
    calib_estimate_all(&c, &e);
    const double half_lo = 0.0945286548, half_hi = 0.9054713452; /* Wilson 1/2 */
    const double lo18 = 0.0098749358, hi18 = 0.2575779980;       /* Wilson 1/18 */
    double tp = 55, fn = 5 + 890.0 / 18;
    double tp_lo = 20 + 70 * half_lo, tp_hi = 20 + 70 * half_hi;
    double fn_lo = 5 + 890 * lo18, fn_hi = 5 + 890 * hi18;
    CHECK(e.weight == 48, "weight %g", e.weight);
    CHECK(e.positives.known && fabs(e.positives.value - (tp + fn)) < 1e-9 &&
              fabs(e.positives.lo - (tp_lo + fn_lo)) < 1e-6 &&
              fabs(e.positives.hi - (tp_hi + fn_hi)) < 1e-6,
          "positives %g [%g, %g]", e.positives.value, e.positives.lo, e.positives.hi);
    CHECK(e.precision.known && fabs(e.precision.value - 0.55) < 1e-12 &&
              fabs(e.precision.lo - tp_lo / 100) < 1e-8 && fabs(e.precision.hi - tp_hi / 100) < 1e-8,
          "precision %g [%g, %g]", e.precision.value, e.precision.lo, e.precision.hi);
    CHECK(e.recall.known && fabs(e.recall.value - tp / (tp + fn)) < 1e-12 &&
              fabs(e.recall.lo - tp_lo / (tp_lo + fn_hi)) < 1e-8 &&
              fabs(e.recall.hi - tp_hi / (tp_hi + fn_lo)) < 1e-8,
          "recall %g [%g, %g]", e.recall.value, e.recall.lo, e.recall.hi);
    /* no audit label above: that stratum's point is the calibrated expectation (12.5 of
     * its 70 items), its interval every possibility, [0, 70] */
    c.audit -= c.audit_above;
    c.audit_above = 0;
    c.audit_w_above = c.audit_w2_above = c.audit_wpos_above = 0;
    c.expected_above = 12.5;
    calib_estimate_all(&c, &e);
    CHECK(fabs(e.precision.value - (20 + 12.5) / 100) < 1e-12 && fabs(e.precision.lo - 0.2) < 1e-12 &&
              fabs(e.precision.hi - 0.9) < 1e-12,
          "precision without audit labels above: %g [%g, %g]", e.precision.value, e.precision.lo,
          e.precision.hi);
    /* no audit label at all: unknown, not a number */
    c.audit = 0;
    c.audit_w_below = c.audit_w2_below = c.audit_wpos_below = 0;
    calib_estimate_all(&c, &e);
    CHECK(!e.positives.known && !e.precision.known && !e.recall.known, "unknown without audit");
    /* every item labelled: the census is exact, without audit labels */
    calib_counts all = {.total = 10, .above = 4, .census = 10, .census_above = 4,
                        .census_pos_above = 3, .census_pos_below = 1};
    calib_estimate_all(&all, &e);
    CHECK(e.positives.known && e.positives.value == 4 && e.positives.lo == 4 &&
              e.positives.hi == 4 && e.precision.value == 0.75 && e.recall.value == 0.75,
          "census: %g %g %g", e.positives.value, e.precision.value, e.recall.value);
}

/* The same collection with unequal design weights (a stratified draw): above the
 * threshold a positive of weight 10 and a negative of 30, so a quarter of the 70 items
 * are positive; below, a positive of 100 and negatives of 300 and 500, a ninth of 890.
 * TP = 20 + 17.5, FN = 5 + 890 / 9; the intervals are the Wilson intervals at Kish's
 * effective sizes 40^2 / 1000 = 1.6 and 900^2 / 350000 (values computed by hand). */
TEST(estimates_with_unequal_weights)
{
    calib_counts c = {.total = 1000, .above = 100, .census = 40, .census_above = 30,
                      .census_pos_above = 20, .census_pos_below = 5,
                      .expected_above = 99, .expected_below = 99};
    calib_count_audit(&c, 10, 1, 1);
    calib_count_audit(&c, 30, 1, 0);
    calib_count_audit(&c, 100, 0, 1);
    calib_count_audit(&c, 300, 0, 0);
    calib_count_audit(&c, 500, 0, 0);
    calib_estimates e;
    calib_estimate_all(&c, &e);
    const double above_lo = 0.0221178078, above_hi = 0.8308666085; /* Wilson 0.4 of 1.6 */
    const double below_lo = 0.0066212266, below_hi = 0.7009756841; /* 1/9 of 2.3142857 */
    double tp = 37.5, fn = 5 + 890.0 / 9;
    double tp_lo = 20 + 70 * above_lo, tp_hi = 20 + 70 * above_hi;
    double fn_lo = 5 + 890 * below_lo, fn_hi = 5 + 890 * below_hi;
    CHECK(c.audit == 5 && c.audit_above == 2 && e.weight == 960.0 / 5, "weight %g", e.weight);
    CHECK(e.positives.known && fabs(e.positives.value - (tp + fn)) < 1e-9 &&
              fabs(e.positives.lo - (tp_lo + fn_lo)) < 1e-6 &&
              fabs(e.positives.hi - (tp_hi + fn_hi)) < 1e-6,
          "positives %g [%g, %g] (want %g [%g, %g])", e.positives.value, e.positives.lo,
          e.positives.hi, tp + fn, tp_lo + fn_lo, tp_hi + fn_hi);
    CHECK(fabs(e.precision.value - 0.375) < 1e-12 && fabs(e.precision.lo - tp_lo / 100) < 1e-8 &&
              fabs(e.precision.hi - tp_hi / 100) < 1e-8 &&
              fabs(e.recall.value - tp / (tp + fn)) < 1e-12,
          "precision %g [%g, %g], recall %g", e.precision.value, e.precision.lo,
          e.precision.hi, e.recall.value);
    /* the calibration fit shares R's 960 items among the audit labels by design weight:
     * census labels weigh 1, the audit labels 960 · w / 940 */
    double s[] = {2, 1, 0.5, -1, -2, -3}, w[6], design[] = {0, 10, 30, 100, 300, 500};
    int y[] = {1, 1, 0, 1, 0, 0};
    calib_map map;
    double mean = 0;
    int rc = calib_fit_labels(s, y, design, 6, 1000 - 35, w, &map, &mean);
    /* total 1000 - 35 = 965 items, 1 census label: the rest 964 over design 940 */
    double scale = 964.0 / 940;
    CHECK(rc == 0 && w[0] == 1 && fabs(w[1] - 10 * scale) < 1e-12 &&
              fabs(w[5] - 500 * scale) < 1e-12 && fabs(mean - 964.0 / 5) < 1e-12,
          "weights %g %g %g, mean %g", w[0], w[1], w[5], mean);
}

/* The strata of the audit sample: the top 1% and the next 9% of the pool by score, then
 * the rest; 20 draws shared 7 / 7 / 6; a small pool gives its top strata's shortfall to
 * the rest; a pool smaller than the draw is taken whole. */
TEST(audit_strata)
{
    size_t b[CALIB_STRATA + 1], t[CALIB_STRATA];
    calib_strata(25000, 20, b, t);
    CHECK(b[0] == 0 && b[1] == 250 && b[2] == 2500 && b[3] == 25000 && t[0] == 7 && t[1] == 7 &&
              t[2] == 6,
          "25000: %zu %zu %zu | %zu %zu %zu", b[1], b[2], b[3], t[0], t[1], t[2]);
    calib_strata(50, 20, b, t);
    CHECK(b[1] == 1 && b[2] == 5 && b[3] == 50 && t[0] == 1 && t[1] == 4 && t[2] == 15,
          "50: %zu %zu %zu | %zu %zu %zu", b[1], b[2], b[3], t[0], t[1], t[2]);
    calib_strata(10, 20, b, t);
    CHECK(t[0] + t[1] + t[2] == 10 && t[0] == b[1] - b[0] && t[1] == b[2] - b[1] &&
              t[2] == b[3] - b[2],
          "10: %zu %zu %zu", t[0], t[1], t[2]);
    calib_strata(0, 20, b, t);
    CHECK(b[3] == 0 && t[0] + t[1] + t[2] == 0, "an empty pool draws nothing");
}

/* 30,000 seeded draws of 3 of 12 items: each item is drawn about 7,500 times and first
 * about 2,500 times; chi-square with 11 degrees of freedom stays below 31.26 (p = 0.001). */
TEST(audit_sampler_is_uniform)
{
    enum { N = 12, K = 3, TRIALS = 30000 };
    long drawn[N] = {0}, first[N] = {0};
    for (int t = 0; t < TRIALS; t++) {
        int list[N];
        for (int i = 0; i < N; i++)
            list[i] = i;
        uint64_t state = 1000 + (uint64_t)t;
        calib_draw(list, N, sizeof *list, K, &state);
        int seen[N] = {0}, distinct = 1;
        for (int i = 0; i < K; i++) {
            drawn[list[i]]++;
            distinct &= !seen[list[i]]++;
        }
        first[list[0]]++;
        if (!distinct) {
            CHECK(0, "trial %d drew an item twice", t);
            return;
        }
    }
    double chi_drawn = 0, chi_first = 0, e_drawn = (double)TRIALS * K / N, e_first = (double)TRIALS / N;
    for (int i = 0; i < N; i++) {
        chi_drawn += (drawn[i] - e_drawn) * (drawn[i] - e_drawn) / e_drawn;
        chi_first += (first[i] - e_first) * (first[i] - e_first) / e_first;
    }
    printf("    chi-square: drawn %.2f, first %.2f (11 df)\n", chi_drawn, chi_first);
    CHECK(chi_drawn < 31.26 && chi_first < 31.26, "chi-square %.2f / %.2f", chi_drawn, chi_first);
    /* a biased sampler fails the same check: always keeping item 0 */
    long biased[N] = {0};
    for (int t = 0; t < TRIALS; t++)
        biased[t % 4 == 0 ? 0 : 1 + t % (N - 1)] += 1;
    double chi_biased = 0;
    for (int i = 0; i < N; i++)
        chi_biased += (biased[i] - e_first) * (biased[i] - e_first) / e_first;
    CHECK(chi_biased > 31.26, "the check notices a biased sampler (%.1f)", chi_biased);
}

int main(void)
{
    RUN(platt_recovers_a_known_map);
    RUN(platt_weights_separable_one_class);
    RUN(wilson_interval);
    RUN(estimates_with_known_weights);
    RUN(estimates_with_unequal_weights);
    RUN(audit_strata);
    RUN(audit_sampler_is_uniform);
    return test_summary("calibrate");
}
