/* The few-shot linear classifier of the original explorer, step for step: `fit` runs
 * `iters` steps of w ← w/‖w‖, loss = mean BCEWithLogits(X·w, y), w ← w − lr·∂loss/∂w
 * (no bias, no momentum), the gradient taken at the normalised w. Like PyTorch, the
 * products and the gradient are float32 (the weight's norm and the loss are summed in
 * double), which reproduces its float32 trajectories to 1e-5
 * (tests/test_golden_classifier.c).
 *
 * The float32 sums use fused multiply-adds (C's fmaf: one rounding, defined to the bit)
 * in four chains of 16 independent partial sums combined in a fixed order, so the result
 * is the same on every CPU; fit and its helpers are compiled for x86-64-v4 (AVX-512) and -v3 (AVX2 +
 * FMA) too (target_clones, chosen at load time), where those sums become vector
 * instructions; the default build calls the C library's fmaf.
 *
 * A round's cross-validation refits five folds for up to 100 steps
 * (classifier_fit_folds): the folds are independent, so they are shared out among the
 * members of OpenMP's team, each running its folds over the rows in order with the very
 * operations of `fit`. A fold's result is bit for bit that of `fit` on its rows,
 * whatever the number of threads. The anchored trainer (an option, below) has its folds
 * shared out the same way (classifier_fit_anchored_folds). */
#include "explore/classifier.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/team.h"

/* log(1 + exp(-|z|)) + max(z, 0) - z·y: BCEWithLogits in its numerically stable form. */
static double bce_with_logits(double z, double y)
{
    return fmax(z, 0.0) - z * y + log1p(exp(-fabs(z)));
}

/* x·w accumulated in double over eight independent partial sums (exact products of
 * floats, so the order only moves the last bits): the accuracy's scores. */
static inline __attribute__((always_inline)) double dot_f64(const float *x, const float *w, int n)
{
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++)
            s[k] += (double)x[j + k] * w[j + k];
    for (; j < n; j++)
        s[0] += (double)x[j] * w[j];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

#define LANES 16 /* the halving in dot_fma assumes 16 */

/* x·w in float32: 4 × LANES partial sums of fused multiply-adds (four independent
 * chains of vector registers, so the adds' latency overlaps), then added pairwise. */
static inline __attribute__((always_inline)) float dot_fma(const float *restrict x,
                                                           const float *restrict w, int n)
{
    float s0[LANES] = {0}, s1[LANES] = {0}, s2[LANES] = {0}, s3[LANES] = {0};
    int j = 0;
    for (; j + 4 * LANES <= n; j += 4 * LANES)
        for (int k = 0; k < LANES; k++) {
            s0[k] = fmaf(x[j + k], w[j + k], s0[k]);
            s1[k] = fmaf(x[j + LANES + k], w[j + LANES + k], s1[k]);
            s2[k] = fmaf(x[j + 2 * LANES + k], w[j + 2 * LANES + k], s2[k]);
            s3[k] = fmaf(x[j + 3 * LANES + k], w[j + 3 * LANES + k], s3[k]);
        }
    for (; j < n; j++)
        s0[0] = fmaf(x[j], w[j], s0[0]);
    for (int k = 0; k < LANES; k++)
        s0[k] = (s0[k] + s1[k]) + (s2[k] + s3[k]);
    /* halved pairwise, with constant bounds so that each halving is one vector add */
    for (int k = 0; k < 8; k++)
        s0[k] += s0[k + 8];
    for (int k = 0; k < 4; k++)
        s0[k] += s0[k + 4];
    for (int k = 0; k < 2; k++)
        s0[k] += s0[k + 2];
    return s0[0] + s0[1];
}

/* g += r·x, one fused multiply-add per element (in blocks, which -O2 vectorises). */
static inline __attribute__((always_inline)) void add_scaled_row(float *restrict g,
                                                                 const float *restrict x,
                                                                 float r, int n)
{
    int j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int k = 0; k < LANES; k++)
            g[j + k] = fmaf(r, x[j + k], g[j + k]);
    for (; j < n; j++)
        g[j] = fmaf(r, x[j], g[j]);
}

/* w ← w/‖w‖ (the norm summed in double, rounded to float as PyTorch's is); 0 when the
 * norm is zero or not finite. */
static inline __attribute__((always_inline)) int normalise(float *w, int dims, float *norm_out)
{
    double norm2 = 0;
    for (int j = 0; j < dims; j++)
        norm2 += (double)w[j] * w[j];
    float norm = (float)sqrt(norm2);
    *norm_out = norm;
    if (!(norm > 0) || !isfinite(norm))
        return 0;
    for (int j = 0; j < dims; j++)
        w[j] = w[j] / norm;
    return 1;
}

static double sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

#define FIT_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

/* The residual of row x: (sigmoid(x·w) − y) / rows, rounded to float as PyTorch's
 * gradient of the mean is; *z gets the logit. */
static inline __attribute__((always_inline)) float residual_of(const float *x, float y,
                                                               const float *w, int dims,
                                                               int rows, float *z)
{
    *z = dot_fma(x, w, dims);
    return (float)(sigmoid(*z) - y) / (float)rows;
}

FIT_CLONES int vdx_classifier_fit(const float *X, const float *y, int n, int dims, float *w,
                                  int iters, float lr, float *losses, vdx_error *err)
{
    if (n < 1)
        return vdx_fail(err, "classifier fit: no labelled rows");
    if (dims < 1)
        return vdx_fail(err, "classifier fit: %d dimensions", dims);
    float *grad = malloc((size_t)dims * sizeof *grad);
    float *residual = malloc((size_t)n * sizeof *residual);
    if (!grad || !residual) {
        free(grad);
        free(residual);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "classifier fit: out of memory for %d rows of %d", n, dims);
    }
    int rc = 0;
    for (int step = 0; step < iters; step++) {
        float norm;
        if (!normalise(w, dims, &norm)) {
            rc = vdx_fail(err, "classifier fit: the weight has norm %g at step %d", norm,
                          step + 1);
            break;
        }
        double loss = 0;
        for (int i = 0; i < n; i++) {
            float z;
            residual[i] = residual_of(X + (size_t)i * dims, y[i], w, dims, n, &z);
            loss += bce_with_logits(z, y[i]);
        }
        if (losses)
            losses[step] = (float)(loss / n);
        for (int j = 0; j < dims; j++)
            grad[j] = 0;
        for (int i = 0; i < n; i++)
            add_scaled_row(grad, X + (size_t)i * dims, residual[i], dims);
        for (int j = 0; j < dims; j++)
            w[j] = w[j] - lr * grad[j];
    }
    free(grad);
    free(residual);
    return rc;
}

/* ---- the anchored trainer (an option; docs/explore.md) --------------------------------
 * Logistic regression with a bias, pulled toward the prompt, with random items of the
 * collection as weak negatives: minimise
 *     Σ_labels BCE(x·w + b, y) + (ω/m) Σ_weak BCE(x·w + b, 0) + (λ/2)‖w − c·t̂‖²
 * from w = c·t̂, b = 0, by `iters` steps of Nesterov's accelerated gradient for strongly
 * convex problems: step 1/L, momentum (√L − √λ)/(√L + √λ), L a bound on the curvature
 * and λ the least curvature the pull guarantees; it converges linearly, by about
 * 1 − √(λ/L) per step. CLIP's rows share the image cone's mean direction, which the bias
 * column nearly repeats: an ill-conditioned problem (slow at hundreds of labels). So the
 * steps run on centred rows, z = (x − μ)·w + c with μ the rows' weighted mean and
 * b = c − μ·w (the same optimum, reparametrised), and L is the top eigenvalue of the
 * centred rows' second moment (power iteration) with a margin, not the trace. The
 * problem is strictly convex: the result depends on the labels and the weak rows, not on
 * earlier rounds. Sums are the fit's float32 fused multiply-adds, the loss in double. */

#define POWER_STEPS 20
#define CURVATURE_MARGIN 1.25

/* The row i of the fit (labels, then weak rows), its target and weight. */
static inline __attribute__((always_inline)) const float *fit_row(const float *X, const float *y, int n,
                                                                  const float *weak, float weak_each,
                                                                  int dims, int i, float *target,
                                                                  float *each)
{
    *target = i < n ? y[i] : 0;
    *each = i < n ? 1 : weak_each;
    return i < n ? X + (size_t)i * dims : weak + (size_t)(i - n) * dims;
}

/* A bound on the largest curvature of the weighted logistic loss over the centred rows
 * with a bias column: ¼·λmax(Σ each·u·uᵀ), u = (x − μ, 1), by power iteration from a
 * fixed start, with a margin; never above the trace ¼·Σ each·‖u‖². */
static inline __attribute__((always_inline)) double
centred_curvature(const float *X, const float *y, int n, const float *weak, int n_weak,
                  float weak_each, const float *mean, int dims, float *v, float *mv)
{
    double trace = 0, lambda = 0;
    for (int i = 0; i < n + n_weak; i++) {
        float target, each;
        const float *x = fit_row(X, y, n, weak, weak_each, dims, i, &target, &each);
        double sq = 1;
        for (int j = 0; j < dims; j++)
            sq += ((double)x[j] - mean[j]) * ((double)x[j] - mean[j]);
        trace += each * sq;
    }
    float vb = 1, mvb;
    for (int j = 0; j < dims; j++)
        v[j] = 1;
    for (int step = 0; step < POWER_STEPS; step++) {
        double norm2 = (double)vb * vb;
        for (int j = 0; j < dims; j++)
            norm2 += (double)v[j] * v[j];
        float inv = (float)(1 / sqrt(norm2));
        for (int j = 0; j < dims; j++)
            v[j] *= inv;
        vb *= inv;
        float mean_dot = dot_fma(mean, v, dims);
        for (int j = 0; j < dims; j++)
            mv[j] = 0;
        mvb = 0;
        for (int i = 0; i < n + n_weak; i++) { /* mv = Σ each·u·(u·v), u = (x − μ, 1) */
            float target, each;
            const float *x = fit_row(X, y, n, weak, weak_each, dims, i, &target, &each);
            float s = each * (dot_fma(x, v, dims) - mean_dot + vb);
            add_scaled_row(mv, x, s, dims);
            mvb += s;
        }
        float s_total = mvb; /* the −μ part of Σ s·(x − μ) */
        lambda = (double)mvb * vb; /* the Rayleigh quotient vᵀMv (v unit) */
        for (int j = 0; j < dims; j++) {
            mv[j] -= s_total * mean[j];
            lambda += (double)mv[j] * v[j];
        }
        memcpy(v, mv, (size_t)dims * sizeof *v);
        vb = mvb;
    }
    return fmin(CURVATURE_MARGIN * lambda, trace) / 4;
}

FIT_CLONES int vdx_classifier_fit_anchored(const float *X, const float *y, int n,
                                           const float *weak, int n_weak, const float *anchor,
                                           int dims, const vdx_anchored_options *opts,
                                           float *w, float *bias, float *losses,
                                           vdx_error *err)
{
    if (n < 1)
        return vdx_fail(err, "classifier fit: no labelled rows");
    if (dims < 1)
        return vdx_fail(err, "classifier fit: %d dimensions", dims);
    if (n_weak < 0 || (n_weak > 0 && !weak))
        return vdx_fail(err, "classifier fit: %d weak negatives without rows", n_weak);
    float scale = opts->scale, pull = opts->pull, weak_weight = n_weak ? opts->weak_weight : 0;
    if (!(scale > 0) || !(pull > 0) || !(weak_weight >= 0) || !isfinite(scale) ||
        !isfinite(pull) || !isfinite(weak_weight) || opts->iters < 1 || opts->iters > 10000)
        return vdx_fail(err, "classifier fit: anchored options out of range (scale %g, pull %g, "
                             "weak weight %g, iters %d)",
                        scale, pull, weak_weight, opts->iters);
    float *buf = malloc(6 * (size_t)dims * sizeof *buf);
    if (!buf)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "classifier fit: out of memory for %d dimensions", dims);
    float *dir = buf, *prev = buf + dims, *ahead = buf + 2 * dims, *grad = buf + 3 * dims;
    float *mean = buf + 4 * dims, *scratch = buf + 5 * dims;
    float norm;
    memcpy(dir, anchor, (size_t)dims * sizeof *dir);
    if (!normalise(dir, dims, &norm)) {
        free(buf);
        return vdx_fail(err, "classifier fit: the prompt's vector has norm %g", norm);
    }
    float weak_each = n_weak ? weak_weight / (float)n_weak : 0;
    double total = n + (double)weak_weight;
    for (int j = 0; j < dims; j++)
        mean[j] = 0;
    for (int i = 0; i < n + n_weak; i++) {
        float target, each;
        const float *x = fit_row(X, y, n, weak, weak_each, dims, i, &target, &each);
        add_scaled_row(mean, x, (float)(each / total), dims);
    }
    /* w and c (= b + μ·w) from w = c·t̂, b = 0; the power iteration borrows grad */
    double curvature = centred_curvature(X, y, n, weak, n_weak, weak_each, mean, dims, grad,
                                         scratch) + pull;
    double step = 1.0 / curvature;
    float momentum = (float)((sqrt(curvature) - sqrt(pull)) / (sqrt(curvature) + sqrt(pull)));
    for (int j = 0; j < dims; j++)
        w[j] = prev[j] = scale * dir[j];
    float c = dot_fma(mean, w, dims), c_prev = c;
    int rc = 0;
    for (int it = 0; it < opts->iters; it++) {
        for (int j = 0; j < dims; j++)
            ahead[j] = w[j] + momentum * (w[j] - prev[j]);
        float c_ahead = c + momentum * (c - c_prev), grad_c = 0;
        float mean_dot = dot_fma(mean, ahead, dims);
        double loss = 0, penalty = 0;
        for (int j = 0; j < dims; j++) {
            float d = ahead[j] - scale * dir[j];
            grad[j] = pull * d;
            penalty += (double)d * d;
        }
        for (int i = 0; i < n + n_weak; i++) {
            float target, each;
            const float *x = fit_row(X, y, n, weak, weak_each, dims, i, &target, &each);
            float z = dot_fma(x, ahead, dims) - mean_dot + c_ahead;
            float r = each * (float)(sigmoid(z) - target);
            loss += each * bce_with_logits(z, target);
            add_scaled_row(grad, x, r, dims);
            grad_c += r;
        }
        for (int j = 0; j < dims; j++) /* Σ r·(x − μ) */
            grad[j] -= grad_c * mean[j];
        if (losses)
            losses[it] = (float)((loss + pull / 2 * penalty) / total);
        if (!isfinite(loss)) {
            rc = vdx_fail(err, "classifier fit: the loss is not finite at step %d", it + 1);
            break;
        }
        for (int j = 0; j < dims; j++) {
            prev[j] = w[j];
            w[j] = ahead[j] - (float)step * grad[j];
        }
        c_prev = c;
        c = c_ahead - (float)step * grad_c;
    }
    *bias = c - dot_fma(mean, w, dims);
    free(buf);
    return rc;
}

/* Below this many multiply-adds (rows × dims × steps × folds) the folds run on the
 * calling thread: starting the team would cost more than it saves. */
#define FOLDS_PARALLEL_MIN 100000.0

FIT_CLONES int classifier_fit_folds(const float *X, const float *y, const int *fold_of, int n,
                                    int dims, int folds, float *W, int iters, float lr,
                                    vdx_error *err)
{
    if (n < 1 || folds < 1)
        return vdx_fail(err, "classifier fit: no labelled rows");
    if (dims < 1)
        return vdx_fail(err, "classifier fit: %d dimensions", dims);
    /* Each fold's weight and gradient in its own cache lines: the members write them for
     * every row, and two members writing the two ends of one line made it bounce between
     * the cores (two threads were slower than one: 118 against 63 ns per row and fold,
     * docs/explore.md). */
    size_t stride = ((size_t)dims + 15) & ~(size_t)15;
    float *G = aligned_alloc(64, 2 * (size_t)folds * stride * sizeof *G);
    float *Wp = G ? G + (size_t)folds * stride : NULL;
    int *rows = calloc((size_t)folds, sizeof *rows), *failed = calloc((size_t)folds, sizeof *failed);
    float *failed_norm = calloc((size_t)folds, sizeof *failed_norm);
    if (!G || !rows || !failed || !failed_norm) {
        free(G);
        free(rows);
        free(failed);
        free(failed_norm);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "classifier fit: out of memory for %d folds of %d", folds, dims);
    }
    for (int i = 0; i < n; i++)
        if (fold_of[i] >= 0 && fold_of[i] < folds)
            rows[fold_of[i]]++;
    for (int f = 0; f < folds; f++)
        rows[f] = n - rows[f]; /* the rows fold f trains on */
    int want = folds < omp_get_max_threads() ? folds : omp_get_max_threads();
    if ((double)n * dims * iters * folds < FOLDS_PARALLEL_MIN)
        want = 1;
    for (int f = 0; f < folds; f++)
        for (int j = 0; j < dims; j++)
            Wp[(size_t)f * stride + j] = W[(size_t)f * dims + j];
    int threads = team_claim(want);
    /* member t runs folds t, t + threads, ...: every step over the rows in order, as fit */
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int first = threads > 1 ? omp_get_thread_num() : 0;
        for (int step = 0; step < iters; step++) {
            for (int f = first; f < folds; f += threads) {
                if (!failed[f] && !normalise(Wp + (size_t)f * stride, dims, &failed_norm[f]))
                    failed[f] = step + 1;
                for (int j = 0; j < dims; j++)
                    G[(size_t)f * stride + j] = 0;
            }
            for (int i = 0; i < n; i++) {
                const float *x = X + (size_t)i * dims;
                for (int f = first; f < folds; f += threads) {
                    if (f == fold_of[i] || failed[f])
                        continue;
                    float z, r = residual_of(x, y[i], Wp + (size_t)f * stride, dims, rows[f], &z);
                    add_scaled_row(G + (size_t)f * stride, x, r, dims);
                }
            }
            for (int f = first; f < folds; f += threads)
                for (int j = 0; !failed[f] && j < dims; j++)
                    Wp[(size_t)f * stride + j] =
                        Wp[(size_t)f * stride + j] - lr * G[(size_t)f * stride + j];
        }
    }
    team_release(threads);
    for (int f = 0; f < folds; f++)
        for (int j = 0; j < dims; j++)
            W[(size_t)f * dims + j] = Wp[(size_t)f * stride + j];
    int rc = 0;
    for (int f = 0; f < folds && rc == 0; f++)
        if (failed[f])
            rc = vdx_fail(err, "classifier fit: fold %d's weight has norm %g at step %d", f + 1,
                          failed_norm[f], failed[f]);
    free(G);
    free(rows);
    free(failed);
    free(failed_norm);
    return rc;
}

int classifier_fit_anchored_folds(const float *X, const float *y, const int *fold_of, int n,
                                  const float *weak, int n_weak, const float *anchor, int dims,
                                  int folds, const vdx_anchored_options *opts, float *W,
                                  vdx_error *err)
{
    if (n < 1 || folds < 1)
        return vdx_fail(err, "classifier fit: no labelled rows");
    int want = folds < omp_get_max_threads() ? folds : omp_get_max_threads();
    if ((double)(n + n_weak) * dims * opts->iters * folds < FOLDS_PARALLEL_MIN)
        want = 1;
    int *failed = calloc((size_t)folds, sizeof *failed);
    vdx_error *errors = calloc((size_t)folds, sizeof *errors);
    if (!failed || !errors) {
        free(failed);
        free(errors);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "classifier fit: out of memory for %d folds", folds);
    }
    int threads = team_claim(want);
    /* member t fits folds t, t + threads, ...: each fold one fit on its own copy of the
     * other folds' rows, so the result does not depend on the number of threads */
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int first = threads > 1 ? omp_get_thread_num() : 0;
        float *Xf = malloc((size_t)n * (size_t)dims * sizeof *Xf), *yf = malloc((size_t)n * sizeof *yf);
        for (int f = first; f < folds; f += threads) {
            if (!Xf || !yf) {
                failed[f] = vdx_fail_kind(&errors[f], VDX_ERR_NO_MEMORY,
                                          "classifier fit: out of memory for fold %d", f + 1);
                continue;
            }
            int m = 0;
            float bias;
            for (int i = 0; i < n; i++)
                if (fold_of[i] != f) {
                    memcpy(Xf + (size_t)m * dims, X + (size_t)i * dims, (size_t)dims * sizeof *Xf);
                    yf[m++] = y[i];
                }
            failed[f] = m == 0 ? vdx_fail(&errors[f], "classifier fit: fold %d leaves no rows", f + 1)
                               : vdx_classifier_fit_anchored(Xf, yf, m, weak, n_weak, anchor, dims,
                                                             opts, W + (size_t)f * dims, &bias,
                                                             NULL, &errors[f]);
        }
        free(Xf);
        free(yf);
    }
    team_release(threads);
    int rc = 0;
    for (int f = 0; f < folds && rc == 0; f++)
        if (failed[f]) {
            *err = errors[f];
            rc = -1;
        }
    free(failed);
    free(errors);
    return rc;
}

FIT_CLONES double vdx_classifier_accuracy(const float *X, const float *y, int n, int dims, const float *w,
                               double threshold)
{
    if (n <= 0)
        return 0;
    int correct = 0;
    for (int i = 0; i < n; i++) {
        double score = dot_f64(X + (size_t)i * dims, w, dims);
        correct += (score > threshold) == (y[i] > 0.5f);
    }
    return (double)correct / n;
}
