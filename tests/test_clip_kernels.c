/* Tests of the CLIP kernels (src/engine/kernels.c, src/engine/matmul.c). The oneDNN matmul
 * of a Linear layer over a text prompt's few rows agrees with a double precision
 * reference in fp32 (1, 2, 4 threads within 1e-6 of each other), bf16 and int8 within
 * their rounding; concurrent callers sharing one packed matrix get identical results.
 * The golden model is too small to split its layers over threads, so these shapes are
 * those of a CLIP text layer (7 rows, 512 -> 1536). Activations:
 * QuickGELU and the exact erf GELU (`hidden_act: gelu`, which no golden fixture uses)
 * against their definitions in double and torch's values. Attention, over every query and
 * over one (the last layer's pooled row), against its definition in double; the int8
 * activations' quantisation against its definition, ties included. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kernels.h"
#include "engine/matmul.h"
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

/* The double-precision reference of row r, column c (+ bias). */
static double reference(int r, int c)
{
    double dot = bias[c];
    for (int i = 0; i < IN; i++)
        dot += (double)inputs[r * IN + i] * weights[c * IN + i];
    return dot;
}

/* Worst |out - reference| relative to the row's largest reference value. */
static double worst_error(const float *out)
{
    double worst = 0;
    for (int r = 0; r < ROWS; r++) {
        double scale = 0;
        for (int c = 0; c < OUT; c++)
            scale = fmax(scale, fabs(reference(r, c)));
        for (int c = 0; c < OUT; c++)
            worst = fmax(worst, fabs(out[r * OUT + c] - reference(r, c)) / scale);
    }
    return worst;
}

/* fp32 on 1, 2 and 4 threads agrees with the reference and, to 1e-6 relative, with itself;
 * the residual form adds exactly what the plain form computes. */
TEST(fp32_matmul_matches_reference_on_1_2_4_threads)
{
    static float out[3][ROWS * OUT], twice[ROWS * OUT];
    vdx_error err = {{0}};
    engine_matrix w;
    REQUIRE(engine_matrix_pack(&w, weights, OUT, IN, VDX_PRECISION_FP32, &err) == 0, "%s",
            err.message);
    const int threads[3] = {1, 2, 4};
    for (int t = 0; t < 3; t++) {
        engine_set_threads(threads[t]);
        engine_enter(); /* every thread */
        CHECK(engine_matmul(out[t], inputs, &w, bias, ROWS, 0, &err) == 0, "%s", err.message);
    }
    double worst = worst_error(out[0]);
    CHECK(worst <= 1e-5, "fp32 off the double reference by %g", worst);
    for (int t = 1; t < 3; t++)
        for (int i = 0; i < ROWS * OUT; i++)
            if (fabsf(out[t][i] - out[0][i]) > 1e-6f * fmaxf(1.0f, fabsf(out[0][i]))) {
                CHECK(0, "%d threads: element %d is %.9g, 1 thread %.9g", threads[t], i,
                      out[t][i], out[0][i]);
                break;
            }
    memcpy(twice, out[0], sizeof twice);
    engine_set_threads(2);
    engine_enter(); /* every thread */
    CHECK(engine_matmul(twice, inputs, &w, bias, ROWS, 1, &err) == 0, "%s", err.message);
    double off = 0;
    for (int i = 0; i < ROWS * OUT; i++)
        off = fmax(off, fabs(twice[i] - 2.0 * out[1][i]) / fmax(1.0, fabs(out[1][i])));
    CHECK(off <= 1e-6, "the residual form is off twice the output by %g", off);
    engine_matrix_free(&w);
}

/* bf16 (where native) and int8 stay within their rounding of the reference. */
TEST(bf16_and_int8_matmul_near_reference)
{
    static float out[ROWS * OUT];
    vdx_error err = {{0}};
    const vdx_precision precisions[2] = {VDX_PRECISION_BF16, VDX_PRECISION_INT8};
    const double bounds[2] = {1e-2, 3e-2};
    engine_set_threads(2);
    engine_enter(); /* every thread */
    for (int p = 0; p < 2; p++) {
        if (precisions[p] == VDX_PRECISION_BF16 && !engine_cpu_has_bf16()) {
            SKIP("bf16: CPU lacks avx512_bf16");
            continue;
        }
        engine_matrix w;
        REQUIRE(engine_matrix_pack(&w, weights, OUT, IN, precisions[p], &err) == 0, "%s",
                err.message);
        CHECK(engine_matmul(out, inputs, &w, bias, ROWS, 0, &err) == 0, "%s", err.message);
        double worst = worst_error(out);
        CHECK(worst <= bounds[p] && worst > 0, "%s off the reference by %g (bound %g)",
              vdx_precision_name(precisions[p]), worst, bounds[p]);
        engine_matrix_free(&w);
    }
}

static float expected[ROWS * OUT];
static float results[CALLERS][ROWS * OUT];
static engine_matrix shared_matrix;

static void *caller(void *arg)
{
    float *out = arg;
    vdx_error err = {{0}};
    engine_enter(); /* every thread */
    for (int call = 0; call < CALLS_PER_CALLER; call++)
        if (engine_matmul(out, inputs, &shared_matrix, bias, ROWS, 0, &err) != 0)
            memset(out, 0, sizeof expected);
    return NULL;
}

TEST(concurrent_and_repeated_calls_are_identical)
{
    vdx_error err = {{0}};
    REQUIRE(engine_matrix_pack(&shared_matrix, weights, OUT, IN, VDX_PRECISION_FP32, &err) == 0,
            "%s", err.message);
    engine_set_threads(2);
    engine_enter(); /* every thread */
    REQUIRE(engine_matmul(expected, inputs, &shared_matrix, bias, ROWS, 0, &err) == 0, "%s",
            err.message);
    pthread_t ids[CALLERS];
    for (int t = 0; t < CALLERS; t++)
        REQUIRE(pthread_create(&ids[t], NULL, caller, results[t]) == 0, "thread %d", t);
    for (int t = 0; t < CALLERS; t++)
        pthread_join(ids[t], NULL);
    for (int t = 0; t < CALLERS; t++)
        CHECK(memcmp(results[t], expected, sizeof expected) == 0, "caller %d differs", t);
    engine_matrix_free(&shared_matrix);
}

TEST(precision_names_parse_and_refuse)
{
    vdx_error err = {{0}};
    vdx_precision p = VDX_PRECISION_AUTO;
    CHECK(vdx_precision_parse("int8", &p, &err) == 0 && p == VDX_PRECISION_INT8, "int8");
    CHECK(strcmp(vdx_precision_name(VDX_PRECISION_BF16), "bf16") == 0, "bf16 name");
    CHECK(vdx_precision_parse("fp16", &p, &err) != 0 && err.kind == VDX_ERR_INVALID &&
              strstr(err.message, "'fp16': expected fp32, bf16, int8 or auto"),
          "%s", err.message);
    const char *why = NULL;
    vdx_precision got = vdx_precision_resolve(VDX_PRECISION_BF16, &why);
    if (engine_cpu_has_bf16())
        CHECK(got == VDX_PRECISION_BF16 && !why, "bf16 on a bf16 CPU became %s",
              vdx_precision_name(got));
    else
        CHECK(got == VDX_PRECISION_FP32 && why && strstr(why, "running fp32"), "fallback");
    CHECK(vdx_precision_resolve(VDX_PRECISION_AUTO, NULL) != VDX_PRECISION_AUTO,
          "auto stays auto");
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
    engine_bias_activation(quick, zero, 1, N, ENGINE_ACT_QUICK_GELU);
    engine_bias_activation(exact, zero, 1, N, ENGINE_ACT_GELU);
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
        engine_bias_activation(&v, &b, 1, 1, ENGINE_ACT_GELU);
        CHECK(fabs(v - known[i].torch) < 1e-6, "gelu(%g) = %.9g, torch %.9g", known[i].x, v,
              known[i].torch);
    }
    /* the bias is added before the activation */
    float v = 0.5f, b = 0.5f;
    engine_bias_activation(&v, &b, 1, 1, ENGINE_ACT_GELU);
    CHECK(fabs(v - 0.8413447460685429) < 1e-6, "gelu(0.5 + 0.5) = %.9g", v);
}

/* Attention against softmax(q·kᵀ/√d)·v in double, every query and each single one (the
 * last layer's pooled row), with and without the causal mask, over 2 sequences of 9
 * tokens with 3 heads of 8. */
TEST(attention_matches_its_definition_for_every_and_one_query)
{
    enum { SEQS = 2, T = 9, HEADS = 3, HD = 8, D = HEADS * HD };
    static float qkv[SEQS * T * 3 * D], all[SEQS * T * D], one[SEQS * D];
    unsigned state = 777;
    fill(qkv, SEQS * T * 3 * D, &state);
    for (int causal = 0; causal < 2; causal++) {
        REQUIRE(engine_attention(all, qkv, SEQS, T, D, HEADS, causal, -1) == 0, "attention");
        double worst = 0;
        for (int s = 0; s < SEQS; s++)
            for (int i = 0; i < T; i++)
                for (int h = 0; h < HEADS; h++) {
                    const float *q = qkv + ((size_t)s * T + i) * 3 * D + h * HD;
                    double p[T], sum = 0, top = -INFINITY;
                    int visible = causal ? i + 1 : T;
                    for (int j = 0; j < visible; j++) {
                        const float *k = qkv + ((size_t)s * T + j) * 3 * D + D + h * HD;
                        double dot = 0;
                        for (int e = 0; e < HD; e++)
                            dot += (double)q[e] * k[e];
                        p[j] = dot / sqrt((double)HD);
                        top = fmax(top, p[j]);
                    }
                    for (int j = 0; j < visible; j++)
                        sum += p[j] = exp(p[j] - top);
                    for (int e = 0; e < HD; e++) {
                        double o = 0;
                        for (int j = 0; j < visible; j++)
                            o += p[j] / sum * qkv[((size_t)s * T + j) * 3 * D + 2 * D + h * HD + e];
                        worst = fmax(worst, fabs(all[((size_t)s * T + i) * D + h * HD + e] - o));
                    }
                }
        CHECK(worst < 1e-6, "attention (causal %d) off its definition by %g", causal, worst);
        for (int query = 0; query < T; query++) {
            REQUIRE(engine_attention(one, qkv, SEQS, T, D, HEADS, causal, query) == 0, "attention");
            double off = 0;
            for (int s = 0; s < SEQS; s++)
                for (int e = 0; e < D; e++)
                    off = fmax(off, fabs(one[s * D + e] - all[((size_t)s * T + query) * D + e]));
            CHECK(off < 1e-6, "query %d alone (causal %d) differs from its row by %g", query,
                  causal, off);
        }
    }
}

/* The int8 activations: per row, scale max|x| / 127 (1 for a zero row), each value
 * rounded to nearest even (ties included: rows built so that x / scale hits n + 0.5),
 * over row lengths with and without a tail past the vector lanes. */
TEST(int8_quantisation_matches_its_definition)
{
    enum { M = 4, K = 37 };
    static float x[M * K], scales[M];
    static int8_t q[M * K];
    unsigned state = 99;
    fill(x, M * K, &state);
    for (int i = 0; i < K; i++) /* row 1: max 127, halves in between (ties to even) */
        x[K + i] = i == 0 ? -127.0f : (float)(i % 9) - 4.5f;
    for (int i = 0; i < K; i++)
        x[2 * K + i] = 0.0f; /* row 2: zero */
    x[3 * K + K - 1] = 50.0f; /* row 3: the largest value in the tail */
    engine_quantise_rows(x, M, K, q, scales);
    for (int r = 0; r < M; r++) {
        float max = 0;
        for (int i = 0; i < K; i++)
            max = fmaxf(max, fabsf(x[r * K + i]));
        float want_scale = max > 0 ? max / 127.0f : 1.0f;
        CHECK(scales[r] == want_scale, "row %d: scale %g, want %g", r, scales[r], want_scale);
        for (int i = 0; i < K; i++) {
            long want = lrintf(x[r * K + i] * (1.0f / want_scale));
            CHECK(q[r * K + i] == want, "row %d, column %d: %d, want %ld (x %g)", r, i,
                  q[r * K + i], want, x[r * K + i]);
        }
    }
    CHECK(q[K + 5] == -0 && q[K + 6] == 2 && q[K + 1] == -4, "ties: %d %d %d", q[K + 5],
          q[K + 6], q[K + 1]);
}

int main(void)
{
    fill_all();
    RUN(fp32_matmul_matches_reference_on_1_2_4_threads);
    RUN(bf16_and_int8_matmul_near_reference);
    RUN(concurrent_and_repeated_calls_are_identical);
    RUN(precision_names_parse_and_refuse);
    RUN(activations_match_their_definitions);
    RUN(attention_matches_its_definition_for_every_and_one_query);
    RUN(int8_quantisation_matches_its_definition);
    return test_summary("clip_kernels");
}
