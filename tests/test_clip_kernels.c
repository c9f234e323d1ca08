/* Tests of the CLIP kernels (src/clip/kernels.c). Thread teams: a Linear layer over a
 * text prompt's few rows gives bit-identical results on one thread, on threads started
 * per call, on a team, and on teams of concurrent callers, and agrees with a double
 * precision reference. The golden model is too small to split its layers over threads,
 * so these shapes are those of a CLIP text layer (7 rows, 512 -> 1536). Activations:
 * QuickGELU and the exact erf GELU (`hidden_act: gelu`, which no golden fixture uses)
 * against their definitions in double and torch's values. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clip/kernels.h"
#include "test.h"

enum { ROWS = 7, OUT = 1536, IN = 512, CALLERS = 4, CALLS_PER_CALLER = 10 };

static float inputs[ROWS * IN], weights[OUT * IN], bias[OUT];

static void fill(float *v, int n, unsigned *state)
{
    for (int i = 0; i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        v[i] = (float)((*state >> 8) % 2001) / 1000.0f - 1.0f;
    }
}

static void fill_all(void)
{
    unsigned state = 12345;
    fill(inputs, ROWS * IN, &state);
    fill(weights, OUT * IN, &state);
    fill(bias, OUT, &state);
}

TEST(team_matches_per_call_threads_and_one_thread)
{
    static float one[ROWS * OUT], per_call[ROWS * OUT], teamed[ROWS * OUT];
    clip_kernels_set_threads(1);
    clip_linear(one, inputs, weights, bias, ROWS, OUT, IN);
    clip_kernels_set_threads(2);
    clip_linear(per_call, inputs, weights, bias, ROWS, OUT, IN);
    clip_team *team = clip_team_begin(ROWS);
    REQUIRE(team != NULL, "no team for %d rows on 2 threads", ROWS);
    clip_linear(teamed, inputs, weights, bias, ROWS, OUT, IN);
    clip_linear_residual(teamed, inputs, weights, bias, ROWS, OUT, IN);
    clip_team_end(team);
    CHECK(memcmp(one, per_call, sizeof one) == 0, "2 threads differ from 1 thread");
    double worst = 0;
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < OUT; c++) {
            double dot = bias[c];
            for (int i = 0; i < IN; i++)
                dot += (double)inputs[r * IN + i] * weights[c * IN + i];
            double delta = fabs(2 * (double)one[r * OUT + c] - teamed[r * OUT + c]);
            if (teamed[r * OUT + c] != 2 * one[r * OUT + c])
                worst = delta > worst ? delta : worst;
            double error = fabs(one[r * OUT + c] - dot);
            CHECK(error <= 1e-4, "row %d column %d: %.9g, reference %.9g", r, c,
                  one[r * OUT + c], dot);
            if (error > 1e-4)
                return;
        }
    CHECK(worst == 0, "team residual is not exactly twice the output (off by %g)", worst);
}

TEST(team_only_for_few_rows_and_several_threads)
{
    clip_kernels_set_threads(2);
    CHECK(clip_team_begin(25) == NULL, "a team for 25 rows (GEMM territory)");
    clip_team *team = clip_team_begin(ROWS);
    CHECK(team != NULL, "no team for %d rows", ROWS);
    CHECK(clip_team_begin(ROWS) == NULL, "a nested team");
    clip_team_end(team);
    clip_kernels_set_threads(1);
    CHECK(clip_team_begin(ROWS) == NULL, "a team with one thread");
    clip_team_end(NULL);
    clip_kernels_set_threads(2);
}

static float expected[ROWS * OUT];
static float results[CALLERS][ROWS * OUT];

static void *caller(void *arg)
{
    float *out = arg;
    for (int call = 0; call < CALLS_PER_CALLER; call++) {
        clip_team *team = clip_team_begin(ROWS);
        clip_linear(out, inputs, weights, bias, ROWS, OUT, IN);
        clip_team_end(team);
    }
    return NULL;
}

TEST(concurrent_teams_are_identical)
{
    clip_kernels_set_threads(2);
    clip_linear(expected, inputs, weights, bias, ROWS, OUT, IN);
    pthread_t ids[CALLERS];
    for (int t = 0; t < CALLERS; t++)
        REQUIRE(pthread_create(&ids[t], NULL, caller, results[t]) == 0, "thread %d", t);
    for (int t = 0; t < CALLERS; t++)
        pthread_join(ids[t], NULL);
    for (int t = 0; t < CALLERS; t++)
        CHECK(memcmp(results[t], expected, sizeof expected) == 0, "caller %d differs", t);
}

/* act(x + bias) for x in [-8, 8], against the definitions computed in double, and the
 * exact GELU against values torch.nn.functional.gelu gives. */
TEST(activations_match_their_definitions)
{
    enum { N = 1601 };
    static float x[N], zero[N], quick[N], exact[N];
    for (int i = 0; i < N; i++)
        x[i] = -8.0f + 0.01f * (float)i;
    memcpy(quick, x, sizeof x);
    memcpy(exact, x, sizeof x);
    clip_bias_activation(quick, zero, 1, N, CLIP_ACT_QUICK_GELU);
    clip_bias_activation(exact, zero, 1, N, CLIP_ACT_GELU);
    double worst_quick = 0, worst_exact = 0;
    for (int i = 0; i < N; i++) {
        double v = x[i];
        double q = v / (1.0 + exp(-1.702 * v)), e = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
        double dq = fabs(quick[i] - q) / fmax(1.0, fabs(q)), de = fabs(exact[i] - e) / fmax(1.0, fabs(e));
        worst_quick = fmax(worst_quick, dq);
        worst_exact = fmax(worst_exact, de);
    }
    CHECK(worst_quick < 1e-6, "QuickGELU off its definition by %g", worst_quick);
    CHECK(worst_exact < 1e-6, "GELU off its definition by %g", worst_exact);
    static const struct { float x; double torch; } known[] = {
        {1.0f, 0.8413447460685429}, {-1.0f, -0.15865525393145707},
        {2.0f, 1.9544997361036416}, {-3.0f, -0.0040496982740940255},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        float v = known[i].x, b = 0.0f;
        clip_bias_activation(&v, &b, 1, 1, CLIP_ACT_GELU);
        CHECK(fabs(v - known[i].torch) < 1e-6, "gelu(%g) = %.9g, torch %.9g", known[i].x, v,
              known[i].torch);
    }
    /* the bias is added before the activation */
    float v = 0.5f, b = 0.5f;
    clip_bias_activation(&v, &b, 1, 1, CLIP_ACT_GELU);
    CHECK(fabs(v - 0.8413447460685429) < 1e-6, "gelu(0.5 + 0.5) = %.9g", v);
}

int main(void)
{
    fill_all();
    RUN(team_matches_per_call_threads_and_one_thread);
    RUN(team_only_for_few_rows_and_several_threads);
    RUN(concurrent_teams_are_identical);
    RUN(activations_match_their_definitions);
    return test_summary("clip_kernels");
}
