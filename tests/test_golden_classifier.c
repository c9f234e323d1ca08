/* Golden test of the few-shot classifier: replays every trajectory of
 * ../shared/fixtures/golden/<model>/classifier.json (recorded from the original PyTorch
 * code) round by round. A round's `labelled` lists every row labelled so far and `y` their
 * labels at that round (a row may be relabelled); each round fits them from the previous
 * round's weight. Every step's loss and the weight after each round must agree to 1e-5.
 * The cross-validation's all-folds refit (src/explore/classifier.h) equals one
 * vdx_classifier_fit per fold bit for bit. The anchored trainer (an option) is checked
 * against its objective: one step by hand, the gradient at its result, and its refusals. */
#include <cjson/cJSON.h>
#include <omp.h>

#include "test.h"
#include "explore/classifier.h"
#include "vdx/explore.h"

#define TOLERANCE 1e-5

static int read_floats(const cJSON *array, float *out, int max)
{
    int n = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, array)
    {
        if (n >= max || !cJSON_IsNumber(v))
            return -1;
        out[n++] = (float)v->valuedouble;
    }
    return n;
}

/* Replays one fixture file; returns the number of rounds checked (0 on a failure). */
static int replay_fixture(const char *path)
{
    char *text = NULL;
    size_t size = 0;
    vdx_error err = {{0}};
    if (vdx_read_file(path, &text, &size, &err) != 0) {
        CHECK(0, "%s", err.message);
        return 0;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) {
        CHECK(0, "%s: not JSON", path);
        return 0;
    }
    int iters = cJSON_GetObjectItem(root, "iters")->valueint;
    float lr = (float)cJSON_GetObjectItem(root, "lr")->valuedouble;
    CHECK(iters == VDX_FIT_ITERS && lr == VDX_FIT_LR, "fixture iters %d lr %g differ from "
          "the defaults", iters, lr);
    int rounds_checked = 0, case_index = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases"))
    {
        float w[1024], X[64 * 1024], Xl[64 * 1024], yl[64], losses[64], want[1024];
        int dims = read_floats(cJSON_GetObjectItem(c, "init"), w, 1024);
        int rows = 0;
        const cJSON *row;
        cJSON_ArrayForEach(row, cJSON_GetObjectItem(c, "X"))
        {
            CHECK(read_floats(row, X + rows * dims, dims) == dims, "case %d row %d", case_index,
                  rows);
            rows++;
        }
        int round_index = 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItem(c, "rounds"))
        {
            const cJSON *idx = cJSON_GetObjectItem(r, "labelled");
            const cJSON *y = cJSON_GetObjectItem(r, "y");
            int n = 0;
            for (int i = 0; i < cJSON_GetArraySize(idx); i++) {
                int k = cJSON_GetArrayItem(idx, i)->valueint;
                memcpy(Xl + n * dims, X + k * dims, (size_t)dims * sizeof(float));
                yl[n++] = (float)cJSON_GetArrayItem(y, i)->valuedouble;
            }
            int rc = vdx_classifier_fit(Xl, yl, n, dims, w, iters, lr, losses, &err);
            CHECK(rc == 0, "fit: %s", err.message);
            float want_losses[64];
            int n_losses = read_floats(cJSON_GetObjectItem(r, "losses"), want_losses, 64);
            CHECK(n_losses == iters, "case %d round %d: %d losses", case_index, round_index,
                  n_losses);
            for (int s = 0; s < n_losses; s++)
                CHECK(fabs(losses[s] - want_losses[s]) <= TOLERANCE,
                      "%s case %d round %d step %d: loss %.9g, want %.9g", path, case_index,
                      round_index, s, losses[s], want_losses[s]);
            CHECK(read_floats(cJSON_GetObjectItem(r, "weight"), want, 1024) == dims, "weight");
            double worst = 0;
            for (int j = 0; j < dims; j++)
                worst = fmax(worst, fabs(w[j] - want[j]));
            CHECK(worst <= TOLERANCE, "%s case %d round %d: weight differs by %.3g", path,
                  case_index, round_index, worst);
            round_index++;
            rounds_checked++;
        }
        case_index++;
    }
    cJSON_Delete(root);
    return test_case_failed ? 0 : rounds_checked;
}

TEST(golden_trajectories_clip_tiny)
{
    NEED_SHARED(path, "fixtures/golden/clip-tiny/classifier.json");
    CHECK(replay_fixture(path) == 12, "expected 4 cases x 3 rounds");
}

TEST(golden_trajectories_clip_tiny_f16)
{
    NEED_SHARED(path, "fixtures/golden/clip-tiny-f16/classifier.json");
    CHECK(replay_fixture(path) == 12, "expected 4 cases x 3 rounds");
}

/* One step by hand: X = I (2×2), y = (1, 0), w = (3, 4) → w/‖w‖ = (0.6, 0.8);
 * loss = (softplus(-0.6) + softplus(0.8)) / 2; w' = w/‖w‖ - lr·(σ(z) - y)/2. */
TEST(single_step_by_hand)
{
    float X[4] = {1, 0, 0, 1}, y[2] = {1, 0}, w[2] = {3, 4}, loss;
    vdx_error err = {{0}};
    int rc = vdx_classifier_fit(X, y, 2, 2, w, 1, 0.1f, &loss, &err);
    REQUIRE(rc == 0, "%s", err.message);
    double want_loss = (log1p(exp(-0.6)) + log1p(exp(0.8))) / 2;
    double s0 = 1 / (1 + exp(-0.6)), s1 = 1 / (1 + exp(-0.8));
    CHECK(fabs(loss - want_loss) < 1e-6, "loss %.9g want %.9g", loss, want_loss);
    CHECK(fabs(w[0] - (0.6 - 0.1 * (s0 - 1) / 2)) < 1e-6, "w0 %.9g", w[0]);
    CHECK(fabs(w[1] - (0.8 - 0.1 * s1 / 2)) < 1e-6, "w1 %.9g", w[1]);
}

TEST(refuses_degenerate_input)
{
    float X[2] = {1, 0}, y[1] = {1}, w[2] = {0, 0};
    vdx_error err = {{0}};
    CHECK(vdx_classifier_fit(X, y, 0, 2, w, 5, 0.1f, NULL, &err) == -1, "n = 0 accepted");
    CHECK(strcmp(err.message, "classifier fit: no labelled rows") == 0, "%s", err.message);
    CHECK(vdx_classifier_fit(X, y, 1, 2, w, 5, 0.1f, NULL, &err) == -1, "zero w accepted");
    CHECK(strcmp(err.message, "classifier fit: the weight has norm 0 at step 1") == 0, "%s",
          err.message);
}

TEST(accuracy_counts_threshold_side)
{
    float X[6] = {1, 0, 0, 1, -1, 0}, y[3] = {1, 0, 0}, w[2] = {1, 0.5f};
    /* scores 1, 0.5, -1: with threshold 0 → predictions 1,1,0 → 2 of 3 right */
    CHECK(fabs(vdx_classifier_accuracy(X, y, 3, 2, w, 0) - 2.0 / 3) < 1e-12, "threshold 0");
    CHECK(fabs(vdx_classifier_accuracy(X, y, 3, 2, w, 0.75) - 1.0) < 1e-12, "threshold 0.75");
}

/* classifier_fit_folds against one vdx_classifier_fit per fold on that fold's rows: the
 * same bits, for 5 folds and for leave-one-out (23 folds), at a width that is not a
 * multiple of the 16 lanes, on 1, 2 and 3 threads (the work is above the size from which
 * the folds are shared out among the team). */
TEST(all_folds_fit_equals_one_fit_per_fold)
{
    enum { N = 23, D = 37, STEPS = 30 };
    static float X[N * D], y[N], w0[D], W[N * D], part[N * D], py[N], w[D];
    int fold_of[N];
    uint64_t r = 99;
    for (int i = 0; i < N * D; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        X[i] = (float)((double)(r >> 11) / 9007199254740992.0 - 0.5);
    }
    for (int i = 0; i < N; i++)
        y[i] = (float)(i % 3 == 0);
    for (int j = 0; j < D; j++)
        w0[j] = X[j] + X[D + j];
    const int fold_counts[] = {5, N}, threads_before = omp_get_max_threads();
    for (int c = 0; c < 6; c++) {
        int folds = fold_counts[c % 2], threads = 1 + c / 2;
        omp_set_num_threads(threads);
        for (int i = 0; i < N; i++)
            fold_of[i] = i % folds;
        for (int f = 0; f < folds; f++)
            memcpy(W + f * D, w0, sizeof w0);
        vdx_error err = {{0}};
        REQUIRE(classifier_fit_folds(X, y, fold_of, N, D, folds, W, STEPS, 0.1f, &err) == 0, "%s", err.message);
        int same = 0;
        for (int f = 0; f < folds; f++) {
            int m = 0;
            for (int i = 0; i < N; i++)
                if (fold_of[i] != f) {
                    memcpy(part + m * D, X + i * D, D * sizeof *X);
                    py[m++] = y[i];
                }
            memcpy(w, w0, sizeof w0);
            REQUIRE(vdx_classifier_fit(part, py, m, D, w, STEPS, 0.1f, NULL, &err) == 0, "%s", err.message);
            same += !memcmp(w, W + f * D, sizeof w);
        }
        CHECK(same == folds, "%d folds on %d threads: %d of them equal one fit per fold bit for bit",
              folds, threads, same);
    }
    omp_set_num_threads(threads_before);
}

/* ---- the anchored trainer -------------------------------------------------------------- */

static void random_unit_rows(float *X, int n, int d, uint64_t *r)
{
    for (int i = 0; i < n; i++) {
        double norm = 0;
        for (int j = 0; j < d; j++) {
            *r = *r * 6364136223846793005ULL + 1442695040888963407ULL;
            X[i * d + j] = (float)((double)(*r >> 11) / 9007199254740992.0 - 0.5);
            norm += (double)X[i * d + j] * X[i * d + j];
        }
        for (int j = 0; j < d; j++)
            X[i * d + j] = (float)(X[i * d + j] / sqrt(norm));
    }
}

/* One step by hand: X = I (2×2), y = (1, 0), no weak rows, anchor (3, 4) → t̂ = (0.6, 0.8),
 * c = 1, λ = 1. The steps run on centred rows: μ = (0.5, 0.5), u = (x − μ, 1), so
 * Σ u·uᵀ = [[.5 −.5 0] [−.5 .5 0] [0 0 2]], top eigenvalue 2 (the bias), trace 3: the
 * curvature bound L = min(1.25·2, 3)/4 + λ = 1.625. From w0 = t̂ and c0 = μ·w0 = 0.7 the
 * logits are x·w0 = (0.6, 0.8); r = (σ(0.6) − 1, σ(0.8)); the penalty's gradient is 0;
 * ∇w = Σ r·(x − μ) = ((r0 − r1)/2, (r1 − r0)/2), ∇c = r0 + r1; one step of 1/L (the
 * momentum has nothing to carry yet); b1 = c1 − μ·w1. */
TEST(anchored_step_by_hand)
{
    float X[4] = {1, 0, 0, 1}, y[2] = {1, 0}, anchor[2] = {3, 4}, w[2] = {7, 7}, b, loss;
    vdx_anchored_options opts = {1.0f, 1.0f, 1.0f, 1};
    vdx_error err = {{0}};
    REQUIRE(vdx_classifier_fit_anchored(X, y, 2, NULL, 0, anchor, 2, &opts, w, &b, &loss, &err) == 0,
            "%s", err.message);
    double r0 = 1 / (1 + exp(-0.6)) - 1, r1 = 1 / (1 + exp(-0.8)), step = 1 / 1.625;
    double w0 = 0.6 - step * (r0 - r1) / 2, w1 = 0.8 - step * (r1 - r0) / 2;
    double c1 = 0.7 - step * (r0 + r1), b1 = c1 - 0.5 * (w0 + w1);
    double want_loss = (log1p(exp(-0.6)) + log1p(exp(0.8))) / 2;
    CHECK(fabs(loss - want_loss) < 1e-6, "loss %.9g want %.9g", loss, want_loss);
    CHECK(fabs(w[0] - w0) < 1e-6 && fabs(w[1] - w1) < 1e-6, "w (%.9g, %.9g) want (%.9g, %.9g)",
          w[0], w[1], w0, w1);
    CHECK(fabs(b - b1) < 1e-6, "b %.9g want %.9g", b, b1);
}

/* The objective's gradient (w and b, in double) at the fit's result is near zero: the
 * default steps reach the optimum of the problem it states. Also: the result does not
 * depend on what w held before, ranks the labels better than the prompt did, and a strong
 * pull keeps w at the anchor. */
TEST(anchored_fit_reaches_its_optimum)
{
    enum { N = 40, M = 16, D = 37 };
    static float X[N * D], y[N], weak[M * D], anchor[D], w[D], w2[D], dir[D];
    uint64_t r = 7;
    random_unit_rows(X, N, D, &r);
    random_unit_rows(weak, M, D, &r);
    random_unit_rows(anchor, 1, D, &r);
    random_unit_rows(dir, 1, D, &r);
    for (int j = 0; j < D; j++) /* the prompt: near the hidden direction, not on it */
        anchor[j] = dir[j] + 0.5f * anchor[j];
    for (int i = 0; i < N; i++) { /* labels by a hidden direction: separable */
        double s = 0;
        for (int j = 0; j < D; j++)
            s += (double)X[i * D + j] * dir[j];
        y[i] = (float)(s > 0);
    }
    vdx_anchored_options opts = VDX_ANCHORED_DEFAULTS;
    vdx_error err = {{0}};
    float b, b2, losses[1000];
    REQUIRE(vdx_classifier_fit_anchored(X, y, N, weak, M, anchor, D, &opts, w, &b, losses, &err) == 0,
            "%s", err.message);
    CHECK(losses[opts.iters - 1] < losses[0], "loss %g -> %g", losses[0], losses[opts.iters - 1]);
    double gw[D], gb = 0, gnorm = 0, anchor_norm = 0;
    for (int j = 0; j < D; j++)
        anchor_norm += (double)anchor[j] * anchor[j];
    anchor_norm = sqrt(anchor_norm);
    for (int j = 0; j < D; j++)
        gw[j] = opts.pull * ((double)w[j] - opts.scale * anchor[j] / anchor_norm);
    for (int i = 0; i < N + M; i++) {
        const float *x = i < N ? X + i * D : weak + (i - N) * D;
        double z = b, each = i < N ? 1 : opts.weak_weight / M, target = i < N ? y[i] : 0;
        for (int j = 0; j < D; j++)
            z += (double)x[j] * w[j];
        double res = each * (1 / (1 + exp(-z)) - target);
        for (int j = 0; j < D; j++)
            gw[j] += res * x[j];
        gb += res;
    }
    for (int j = 0; j < D; j++)
        gnorm += gw[j] * gw[j];
    gnorm = sqrt(gnorm + gb * gb);
    CHECK(gnorm < 1e-3, "gradient norm %g at the result after %d steps", gnorm, opts.iters);
    /* a function of the rows: another starting w, the same bits */
    for (int j = 0; j < D; j++)
        w2[j] = -3;
    REQUIRE(vdx_classifier_fit_anchored(X, y, N, weak, M, anchor, D, &opts, w2, &b2, NULL, &err) == 0,
            "%s", err.message);
    CHECK(!memcmp(w, w2, sizeof w) && b == b2, "the result depends on the starting weight");
    /* the labels taught it: positives rank above negatives more often than under the
     * prompt alone (the area under the ROC curve, over every pair) */
    double auc[2] = {0, 0};
    int pairs = 0;
    for (int k = 0; k < 2; k++) {
        const float *v = k ? w : anchor;
        for (int i = 0; i < N; i++)
            for (int m = 0; m < N; m++) {
                if (!(y[i] > 0) || y[m] > 0)
                    continue;
                double si = 0, sm = 0;
                for (int j = 0; j < D; j++) {
                    si += (double)X[i * D + j] * v[j];
                    sm += (double)X[m * D + j] * v[j];
                }
                auc[k] += si > sm;
                pairs += k == 0;
            }
    }
    CHECK(pairs > 0 && auc[1] > auc[0] && auc[1] / pairs > 0.9,
          "AUC of the prompt %.3f, of the fit %.3f (%d pairs)", auc[0] / pairs, auc[1] / pairs,
          pairs);
    /* a strong pull: w stays at c·t̂ */
    opts.pull = 1e4f;
    REQUIRE(vdx_classifier_fit_anchored(X, y, N, weak, M, anchor, D, &opts, w, &b, NULL, &err) == 0,
            "%s", err.message);
    double far = 0;
    for (int j = 0; j < D; j++)
        far = fmax(far, fabs(w[j] - opts.scale * anchor[j] / anchor_norm));
    CHECK(far < 1e-2, "with pull 1e4 w moved %g from the anchor", far);
}

TEST(anchored_fit_refuses_bad_input)
{
    float X[2] = {1, 0}, y[1] = {1}, w[2], b, zero[2] = {0, 0}, anchor[2] = {1, 1};
    vdx_anchored_options opts = VDX_ANCHORED_DEFAULTS;
    vdx_error err = {{0}};
    CHECK(vdx_classifier_fit_anchored(X, y, 0, NULL, 0, anchor, 2, &opts, w, &b, NULL, &err) == -1 &&
              strcmp(err.message, "classifier fit: no labelled rows") == 0,
          "%s", err.message);
    CHECK(vdx_classifier_fit_anchored(X, y, 1, NULL, 0, zero, 2, &opts, w, &b, NULL, &err) == -1 &&
              strcmp(err.message, "classifier fit: the prompt's vector has norm 0") == 0,
          "%s", err.message);
    CHECK(vdx_classifier_fit_anchored(X, y, 1, NULL, 3, anchor, 2, &opts, w, &b, NULL, &err) == -1 &&
              strcmp(err.message, "classifier fit: 3 weak negatives without rows") == 0,
          "%s", err.message);
    opts.pull = -1;
    CHECK(vdx_classifier_fit_anchored(X, y, 1, NULL, 0, anchor, 2, &opts, w, &b, NULL, &err) == -1 &&
              strstr(err.message, "anchored options out of range (scale 20, pull -1,"),
          "%s", err.message);
}

int main(void)
{
    RUN(golden_trajectories_clip_tiny);
    RUN(golden_trajectories_clip_tiny_f16);
    RUN(single_step_by_hand);
    RUN(refuses_degenerate_input);
    RUN(accuracy_counts_threshold_side);
    RUN(all_folds_fit_equals_one_fit_per_fold);
    RUN(anchored_step_by_hand);
    RUN(anchored_fit_reaches_its_optimum);
    RUN(anchored_fit_refuses_bad_input);
    return test_summary("golden_classifier");
}
