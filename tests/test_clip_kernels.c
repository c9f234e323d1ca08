/* Tests of the CLIP kernels' thread teams (src/clip/kernels.c): a Linear layer over a
 * text prompt's few rows gives bit-identical results on one thread, on threads started
 * per call, on a team, and on teams of concurrent callers, and agrees with a double
 * precision reference. The golden model is too small to split its layers over threads,
 * so these shapes are those of a CLIP text layer (7 rows, 512 -> 1536). */
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

int main(void)
{
    fill_all();
    RUN(team_matches_per_call_threads_and_one_thread);
    RUN(team_only_for_few_rows_and_several_threads);
    RUN(concurrent_teams_are_identical);
    return test_summary("clip_kernels");
}
