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
 * five folds for up to 100 steps; this is most of a round's time at 25k items. */
#include "vdx/explore.h"

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
