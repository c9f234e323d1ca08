/* The few-shot linear classifier of the original explorer, step for step: `fit` runs
 * `iters` steps of w ← w/‖w‖, loss = mean BCEWithLogits(X·w, y), w ← w − lr·∂loss/∂w
 * (no bias, no momentum), the gradient taken at the normalised w. Sums are accumulated
 * in double and rounded to float where PyTorch holds a float32 tensor, which reproduces
 * its float32 trajectories to 1e-5 (tests/test_golden_classifier.c).
 *
 * fit and accuracy are compiled for AVX-512 and AVX2 too (target_clones, chosen at load
 * time): the same operations in the same order per lane (independent partial sums,
 * products of floats exact in double, no contraction under -std=c11), only wider, so the
 * results are bit for bit those of the default build. A round's cross-validation refits
 * five folds for up to 100 steps (classifier_fit_folds: all folds in one pass over the
 * rows, the same sums per fold, four folds' dot products at a time). */
#include "explore/classifier.h"

#include <math.h>
#include <stdlib.h>

/* log(1 + exp(-|z|)) + max(z, 0) - z·y: BCEWithLogits in its numerically stable form. */
static double bce_with_logits(double z, double y)
{
    return fmax(z, 0.0) - z * y + log1p(exp(-fabs(z)));
}

/* x·w accumulated in double over eight independent partial sums (exact products of
 * floats, so the order only moves the last bits; the compiler can keep them in SIMD
 * registers, which a single running sum would forbid unless reassociation were allowed). */
static inline __attribute__((always_inline)) double dot_f32(const float *x, const float *w, int n)
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

/* g += r·x: the gradient's accumulation, in double (restrict lets it vectorise). */
static inline __attribute__((always_inline)) void add_scaled_row(double *restrict g, const float *restrict x, double r, int n)
{
    for (int j = 0; j < n; j++)
        g[j] += r * x[j];
}

static double sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

#define FIT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

FIT_CLONES int vdx_classifier_fit(const float *X, const float *y, int n, int dims, float *w, int iters,
                       float lr, float *losses, vdx_error *err)
{
    if (n < 1)
        return vdx_fail(err, "classifier fit: no labelled rows");
    if (dims < 1)
        return vdx_fail(err, "classifier fit: %d dimensions", dims);
    double *grad = malloc((size_t)dims * sizeof *grad);
    float *residual = malloc((size_t)n * sizeof *residual);
    if (!grad || !residual) {
        free(grad);
        free(residual);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "classifier fit: out of memory for %d rows of %d", n, dims);
    }
    int rc = 0;
    for (int step = 0; step < iters; step++) {
        double norm2 = 0;
        for (int j = 0; j < dims; j++)
            norm2 += (double)w[j] * w[j];
        float norm = (float)sqrt(norm2);
        if (!(norm > 0) || !isfinite(norm)) {
            rc = vdx_fail(err, "classifier fit: the weight has norm %g at step %d", norm,
                          step + 1);
            break;
        }
        for (int j = 0; j < dims; j++)
            w[j] = w[j] / norm;

        double loss = 0;
        for (int i = 0; i < n; i++) {
            float z = (float)dot_f32(X + (size_t)i * dims, w, dims);
            loss += bce_with_logits(z, y[i]);
            residual[i] = (float)(sigmoid(z) - y[i]) / (float)n;
        }
        if (losses)
            losses[step] = (float)(loss / n);

        for (int j = 0; j < dims; j++)
            grad[j] = 0;
        for (int i = 0; i < n; i++)
            add_scaled_row(grad, X + (size_t)i * dims, residual[i], dims);
        for (int j = 0; j < dims; j++)
            w[j] = w[j] - lr * (float)grad[j];
    }
    free(grad);
    free(residual);
    return rc;
}

/* Four dot_f32 at once (x read once): each sum in dot_f32's lanes and order. */
static inline __attribute__((always_inline)) void dot4_f32(const float *x, const float *const w[4], int n,
                                                          double out[4])
{
    double a[8] = {0}, b[8] = {0}, c[8] = {0}, d[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) {
            double v = x[j + k];
            a[k] += v * w[0][j + k];
            b[k] += v * w[1][j + k];
            c[k] += v * w[2][j + k];
            d[k] += v * w[3][j + k];
        }
    for (; j < n; j++) {
        double v = x[j];
        a[0] += v * w[0][j];
        b[0] += v * w[1][j];
        c[0] += v * w[2][j];
        d[0] += v * w[3][j];
    }
    double *s[4] = {a, b, c, d};
    for (int f = 0; f < 4; f++)
        out[f] = ((s[f][0] + s[f][1]) + (s[f][2] + s[f][3])) + ((s[f][4] + s[f][5]) + (s[f][6] + s[f][7]));
}

/* add_scaled_row into four gradients (x read once; each element's operation unchanged). */
static inline __attribute__((always_inline)) void add4_scaled_rows(double *restrict g0, double *restrict g1,
                                                                  double *restrict g2, double *restrict g3,
                                                                  const float *restrict x, const double r[4], int n)
{
    /* in blocks of 8, as in dot_f32: -O2's cheap vectorisation takes those, not a loop
     * whose length it does not know */
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) {
            double v = x[j + k];
            g0[j + k] += r[0] * v;
            g1[j + k] += r[1] * v;
            g2[j + k] += r[2] * v;
            g3[j + k] += r[3] * v;
        }
    for (; j < n; j++) {
        double v = x[j];
        g0[j] += r[0] * v;
        g1[j] += r[1] * v;
        g2[j] += r[2] * v;
        g3[j] += r[3] * v;
    }
}

FIT_CLONES int classifier_fit_folds(const float *X, const float *y, const int *fold_of, int n,
                                    int dims, int folds, float *W, int iters, float lr,
                                    vdx_error *err)
{
    if (n < 1 || folds < 1)
        return vdx_fail(err, "classifier fit: no labelled rows");
    if (dims < 1)
        return vdx_fail(err, "classifier fit: %d dimensions", dims);
    double *G = calloc((size_t)folds * dims, sizeof *G);
    int *rows = calloc((size_t)folds, sizeof *rows), *others = malloc((size_t)folds * sizeof *others);
    if (!G || !rows || !others) {
        free(G);
        free(rows);
        free(others);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "classifier fit: out of memory for %d folds of %d", folds, dims);
    }
    for (int i = 0; i < n; i++)
        if (fold_of[i] >= 0 && fold_of[i] < folds)
            rows[fold_of[i]]++;
    for (int f = 0; f < folds; f++)
        rows[f] = n - rows[f]; /* the rows fold f trains on */
    int rc = 0;
    for (int step = 0; step < iters && rc == 0; step++) {
        for (int f = 0; f < folds && rc == 0; f++) {
            float *w = W + (size_t)f * dims;
            double norm2 = 0;
            for (int j = 0; j < dims; j++)
                norm2 += (double)w[j] * w[j];
            float norm = (float)sqrt(norm2);
            if (!(norm > 0) || !isfinite(norm))
                rc = vdx_fail(err, "classifier fit: fold %d's weight has norm %g at step %d", f + 1,
                              norm, step + 1);
            for (int j = 0; rc == 0 && j < dims; j++)
                w[j] = w[j] / norm;
        }
        if (rc != 0)
            break;
        for (size_t k = 0; k < (size_t)folds * dims; k++)
            G[k] = 0;
        for (int i = 0; i < n; i++) {
            const float *x = X + (size_t)i * dims;
            int m = 0;
            for (int f = 0; f < folds; f++)
                if (f != fold_of[i])
                    others[m++] = f;
            int f0 = 0;
            for (; f0 + 4 <= m; f0 += 4) {
                const float *w[4];
                double z[4];
                for (int t = 0; t < 4; t++)
                    w[t] = W + (size_t)others[f0 + t] * dims;
                dot4_f32(x, w, dims, z);
                double r[4];
                for (int t = 0; t < 4; t++)
                    r[t] = (float)(sigmoid((float)z[t]) - y[i]) / (float)rows[others[f0 + t]];
                add4_scaled_rows(G + (size_t)others[f0] * dims, G + (size_t)others[f0 + 1] * dims,
                                 G + (size_t)others[f0 + 2] * dims, G + (size_t)others[f0 + 3] * dims, x, r, dims);
            }
            for (; f0 < m; f0++) {
                int f = others[f0];
                float z = (float)dot_f32(x, W + (size_t)f * dims, dims);
                float r = (float)(sigmoid(z) - y[i]) / (float)rows[f];
                add_scaled_row(G + (size_t)f * dims, x, r, dims);
            }
        }
        for (int f = 0; f < folds; f++)
            for (int j = 0; j < dims; j++)
                W[(size_t)f * dims + j] = W[(size_t)f * dims + j] - lr * (float)G[(size_t)f * dims + j];
    }
    free(G);
    free(rows);
    free(others);
    return rc;
}

FIT_CLONES double vdx_classifier_accuracy(const float *X, const float *y, int n, int dims, const float *w,
                               double threshold)
{
    if (n <= 0)
        return 0;
    int correct = 0;
    for (int i = 0; i < n; i++) {
        double score = dot_f32(X + (size_t)i * dims, w, dims);
        correct += (score > threshold) == (y[i] > 0.5f);
    }
    return (double)correct / n;
}
