/* The numeric kernels of the transformer towers besides the Linear layers (those are
 * oneDNN matmuls, matmul.c): LayerNorm, bias+activation, the int8 products' conversions
 * of their rows (quantisation in, scaling back out), and attention, whose two per-head
 * products (small, strided: 50×50×64 per head for ViT-B/32) are oneDNN's sgemm: it picks
 * its kernel by the CPU at run time, where Debian's OpenBLAS 0.3.21 runs its AVX2 kernels
 * on CPUs newer than it knows (AMD Zen 4 and 5): 11 layers' attention for a batch of 32
 * took 31 ms with OpenBLAS and 22.5 ms with oneDNN on a 2-core AMD EPYC Zen 5, and the
 * same when oneDNN is held to AVX2 (docs/clip-engine.md). Row and head loops run on
 * OpenMP's team, the one oneDNN uses, so the whole forward pass shares one pool of
 * threads (a product called inside a head loop's parallel region runs on its thread). Numbers follow PyTorch's float32 CLIP
 * (docs/clip-model.md): LayerNorm statistics in double with the biased variance,
 * QuickGELU x·σ(1.702x) or erf GELU. */
#include "engine/kernels.h"

#include <dnnl.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "vdx/common.h"

#define MAX_THREADS 64

static atomic_int kernel_threads;

void engine_set_threads(int threads)
{
    if (threads < 1)
        threads = vdx_cpu_count();
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    atomic_store(&kernel_threads, threads);
}

int engine_threads(void)
{
    int threads = atomic_load(&kernel_threads);
    if (threads < 1)
        threads = vdx_cpu_count() < MAX_THREADS ? vdx_cpu_count() : MAX_THREADS;
    return threads;
}

void engine_enter(void)
{
    omp_set_num_threads(engine_threads());
}

/* ---- parallel loops on the one OpenMP team ----------------------------------------- */

/* fn(ctx, slot, begin, end): slot is the slice's index, < the thread count used. */
typedef void (*range_fn)(void *ctx, int slot, int begin, int end);

/* Calls fn over [0, n) split into contiguous slices, at most `threads` of them, never
 * giving one fewer than `grain` items, on OpenMP's thread team (the one oneDNN runs
 * on: libgomp keeps its threads between regions, so no call starts a thread). The
 * split depends only on n and the thread count, so results do not depend on which
 * thread runs a slice. */
static void parallel_for(int n, int grain, int threads, range_fn fn, void *ctx)
{
    if (grain < 1)
        grain = 1;
    if (threads > n / grain)
        threads = n / grain;
    if (threads <= 1) {
        fn(ctx, 0, 0, n);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int t = 0; t < threads; t++)
        fn(ctx, t, (int)((long long)n * t / threads), (int)((long long)n * (t + 1) / threads));
}

/* Elements of work below which a row loop stays on the calling thread: waking the team
 * costs microseconds, more than normalising a few short rows. */
#define PARALLEL_MIN_ELEMENTS (1 << 14)

static int row_grain(int cols)
{
    int grain = PARALLEL_MIN_ELEMENTS / (cols > 0 ? cols : 1);
    return grain > 0 ? grain : 1;
}

/* ---- vectorised row kernels ------------------------------------------------------
 * Written as plain loops over fixed lane counts that GCC vectorises, compiled three
 * times (target_clones: AVX-512, AVX2, portable) and chosen at run time by the CPU.
 * Reductions keep LANES independent partial sums (in double where the reference does),
 * so vectorising needs no reassociation: no -ffast-math, same bits on every run. The
 * Makefile compiles this file with -fvect-cost-model=dynamic: -O2's "very cheap" model
 * refuses every loop that needs a remainder or an alias check, i.e. all of these. */

#define LANES 16
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* exp(x) for x in float range: Cody-Waite reduction by ln 2, Cephes' degree-6 polynomial
 * (within 2 ulp of expf), 2^n built in the exponent bits; branch-free so it vectorises. */
static inline float vexp(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.7f ? 88.7f : x;
    const float shifter = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer */
    float n = (x * 1.44269504088896341f + shifter) - shifter;
    n = n == n ? n : 0.0f; /* NaN in, NaN out (through r), and no NaN converted to int */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* ---- LayerNorm ------------------------------------------------------------------ */

typedef struct layer_norm_job {
    float *out;
    const float *in, *gamma, *beta;
    int dim;
    double eps;
} layer_norm_job;

CLONES static void layer_norm_rows(void *arg, int slot, int begin, int end)
{
    const layer_norm_job *job = arg;
    int dim = job->dim, whole = dim / LANES * LANES;
    const float *restrict gamma = job->gamma, *restrict beta = job->beta;
    for (int r = begin; r < end; r++) {
        const float *x = job->in + (size_t)r * dim;
        float *y = job->out + (size_t)r * dim; /* may be x: each element is read first */
        double lanes[LANES] = {0};
        for (int i = 0; i < whole; i += LANES)
            for (int l = 0; l < LANES; l++)
                lanes[l] += x[i + l];
        double sum = 0;
        for (int l = 0; l < LANES; l++)
            sum += lanes[l];
        for (int i = whole; i < dim; i++)
            sum += x[i];
        double mean = sum / dim;
        double squares[LANES] = {0};
        for (int i = 0; i < whole; i += LANES)
            for (int l = 0; l < LANES; l++) {
                double d = x[i + l] - mean;
                squares[l] += d * d;
            }
        double var = 0;
        for (int l = 0; l < LANES; l++)
            var += squares[l];
        for (int i = whole; i < dim; i++)
            var += (x[i] - mean) * (x[i] - mean);
        double inv_std = 1.0 / sqrt(var / dim + job->eps);
        for (int i = 0; i < dim; i++)
            y[i] = (float)((x[i] - mean) * inv_std) * gamma[i] + beta[i];
    }
}

void engine_layer_norm(float *out, const float *in, const float *gamma, const float *beta,
                     int rows, int dim, double eps)
{
    layer_norm_job job = {out, in, gamma, beta, dim, eps};
    parallel_for(rows, row_grain(dim), omp_get_max_threads(), layer_norm_rows, &job);
}

/* ---- bias + activation ---------------------------------------------------------- */

/* The erf GELU 0.5·v·(1 + erf(v/√2)) over a row. GCC does not vectorise erff without
 * -ffast-math, and one call per element was 12% of an XLM-R Large prompt (perf, bf16), so
 * whole vectors go to glibc's vector math library (libmvec, GLIBC 2.35: erff 16 or 8
 * lanes wide), chosen by the CPU; the tail and other CPUs take erff. Measured over every
 * 37th positive and negative float: at most 4 ulp from erff (AVX-512), 2 (AVX2), and
 * 2.4e-7 relative to erf in double outside the subnormals. The two loops below are the
 * same loop at two vector widths. tests/test_clip_kernels.c checks the GELU against erf
 * in double and PyTorch's values. */
__m512 _ZGVeN16v_erff(__m512 x);
__m256 _ZGVdN8v_erff(__m256 x);

__attribute__((target("avx512f"))) static int gelu_avx512(float *x, int n)
{
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    const __m512 scale = _mm512_set1_ps((float)M_SQRT1_2);
    int c = 0;
    for (; c + 16 <= n; c += 16) {
        __m512 v = _mm512_loadu_ps(x + c);
        __m512 e = _ZGVeN16v_erff(_mm512_mul_ps(v, scale));
        _mm512_storeu_ps(x + c, _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, e)));
    }
    return c;
}

__attribute__((target("avx2"))) static int gelu_avx2(float *x, int n)
{
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 scale = _mm256_set1_ps((float)M_SQRT1_2);
    int c = 0;
    for (; c + 8 <= n; c += 8) {
        __m256 v = _mm256_loadu_ps(x + c);
        __m256 e = _ZGVdN8v_erff(_mm256_mul_ps(v, scale));
        _mm256_storeu_ps(x + c, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, e)));
    }
    return c;
}

static void gelu_row(float *x, int n)
{
    int c = __builtin_cpu_supports("avx512f") ? gelu_avx512(x, n)
            : __builtin_cpu_supports("avx2") ? gelu_avx2(x, n)
                                               : 0;
    for (; c < n; c++)
        x[c] = 0.5f * x[c] * (1.0f + erff(x[c] * (float)M_SQRT1_2));
}

typedef struct activation_job {
    float *x;
    const float *bias;
    int cols;
    engine_activation act;
} activation_job;

CLONES static void activation_rows(void *arg, int slot, int begin, int end)
{
    const activation_job *job = arg;
    int cols = job->cols;
    const float *restrict bias = job->bias;
    for (int r = begin; r < end; r++) {
        float *restrict x = job->x + (size_t)r * cols;
        if (job->act == ENGINE_ACT_QUICK_GELU) {
            for (int c = 0; c < cols; c++) {
                float v = x[c] + bias[c];
                x[c] = v / (1.0f + vexp(-1.702f * v));
            }
        } else {
            for (int c = 0; c < cols; c++)
                x[c] += bias[c];
            gelu_row(x, cols);
        }
    }
}

void engine_bias_activation(float *x, const float *bias, int rows, int cols,
                          engine_activation act)
{
    activation_job job = {x, bias, cols, act};
    parallel_for(rows, row_grain(cols), omp_get_max_threads(), activation_rows, &job);
}

/* ---- int8 activations ----------------------------------------------------------- */

/* One row → int8 with its scale (max |x| / 127; 1 for a zero row): partial maxima in
 * LANES lanes (max is exact, so the order does not matter), rintf rounding (to nearest
 * even, as lrintf did, but vectorised: lrintf was a libm call per element). */
CLONES static void quantise_row(const float *row, int k, int8_t *q, float *scale_out)
{
    float lane[LANES] = {0}, max = 0;
    int whole = k / LANES * LANES;
    for (int i = 0; i < whole; i += LANES)
        for (int l = 0; l < LANES; l++) {
            float a = fabsf(row[i + l]);
            lane[l] = a > lane[l] ? a : lane[l];
        }
    for (int l = 0; l < LANES; l++)
        max = lane[l] > max ? lane[l] : max;
    for (int i = whole; i < k; i++)
        max = fabsf(row[i]) > max ? fabsf(row[i]) : max;
    float scale = max > 0 ? max / 127.0f : 1.0f, inv = 1.0f / scale;
    *scale_out = scale;
    for (int i = 0; i < k; i++)
        q[i] = (int8_t)(int)rintf(row[i] * inv);
}

void engine_quantise_rows(const float *x, int m, int k, int8_t *q, float *scales)
{
#pragma omp parallel for schedule(static) if ((size_t)m * k >= PARALLEL_MIN_ELEMENTS)
    for (int r = 0; r < m; r++)
        quantise_row(x + (size_t)r * k, k, q + (size_t)r * k, &scales[r]);
}

/* One row of an int8 product back to float32, in simple passes that vectorise: the
 * product scaled by its row's and each column's scale, plus the bias (0 when there is
 * none: the sum still runs, as it always has, turning a -0 into +0), then added to
 * out when accumulating (product is then a buffer of its own; else it is out). */
CLONES static void scale_back_row(float *product, float row_scale, const float *column_scales,
                                  const float *bias, int n, int accumulate, float *out)
{
    for (int j = 0; j < n; j++)
        product[j] = product[j] * (row_scale * column_scales[j]);
    if (bias)
        for (int j = 0; j < n; j++)
            product[j] = product[j] + bias[j];
    else
        for (int j = 0; j < n; j++)
            product[j] = product[j] + 0.0f;
    if (accumulate)
        for (int j = 0; j < n; j++)
            out[j] = out[j] + product[j];
}

void engine_int8_scale_back(float *product, int m, int n, const float *row_scales,
                            const float *column_scales, const float *bias, int accumulate,
                            float *out)
{
#pragma omp parallel for schedule(static) if ((size_t)m * n >= PARALLEL_MIN_ELEMENTS)
    for (int r = 0; r < m; r++)
        scale_back_row(product + (size_t)r * n, row_scales[r], column_scales, bias, n,
                       accumulate, out + (size_t)r * n);
}

/* ---- attention ------------------------------------------------------------------ */

typedef struct attention_job {
    float *out;
    const float *qkv;
    float *scores; /* seq_len*seq_len floats per slot */
    int seq_len, dim, n_heads, causal, query;
    atomic_int failed; /* a product oneDNN refused (it allocates: out of memory) */
} attention_job;

/* Rows of scores → probabilities, in place: `rows` rows for the queries first, first + 1,
 * ...; the query at position i of a causal sequence sees keys 0..i. */
CLONES static void softmax_rows(float *scores, int rows, int first, int seq_len, int causal)
{
    for (int r = 0; r < rows; r++) {
        float *row = scores + (size_t)r * seq_len;
        int visible = causal ? first + r + 1 : seq_len;
        /* the maximum in LANES partial maxima (exact in any order, so it vectorises) */
        int whole = visible / LANES * LANES;
        float lane_max[LANES], max = row[0];
        for (int l = 0; l < LANES; l++)
            lane_max[l] = row[0];
        for (int j = 0; j < whole; j += LANES)
            for (int l = 0; l < LANES; l++)
                lane_max[l] = row[j + l] > lane_max[l] ? row[j + l] : lane_max[l];
        for (int l = 0; l < LANES; l++)
            max = lane_max[l] > max ? lane_max[l] : max;
        for (int j = whole; j < visible; j++)
            max = row[j] > max ? row[j] : max;
        for (int j = 0; j < visible; j++)
            row[j] = vexp(row[j] - max);
        double lanes[LANES] = {0}, sum = 0;
        for (int j = 0; j < whole; j += LANES)
            for (int l = 0; l < LANES; l++)
                lanes[l] += row[j + l];
        for (int l = 0; l < LANES; l++)
            sum += lanes[l];
        for (int j = whole; j < visible; j++)
            sum += row[j];
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < visible; j++)
            row[j] *= inv;
        for (int j = visible; j < seq_len; j++)
            row[j] = 0.0f;
    }
}

/* Tasks are (sequence, head) pairs: task = seq * n_heads + head. */
static void attention_tasks(void *arg, int slot, int begin, int end)
{
    const attention_job *job = arg;
    int t = job->seq_len, dim = job->dim, head_dim = dim / job->n_heads;
    int stride = 3 * dim;
    /* every query, or the one at position job->query (its output row packed per sequence) */
    int queries = job->query < 0 ? t : 1, first = job->query < 0 ? 0 : job->query;
    float scale = (float)(1.0 / sqrt((double)head_dim));
    float *scores = job->scores + (size_t)slot * t * t;
    for (int task = begin; task < end; task++) {
        int seq = task / job->n_heads, head = task % job->n_heads;
        const float *k = job->qkv + (size_t)seq * t * stride + (size_t)head * head_dim + dim;
        const float *q = k - dim + (size_t)first * stride, *v = k + dim;
        float *o = job->out + (size_t)seq * queries * dim + (size_t)head * head_dim;
        if (dnnl_sgemm('N', 'T', queries, t, head_dim, scale, q, stride, k, stride, 0.0f,
                       scores, t) != dnnl_success) {
            atomic_store(&job->failed, 1);
            return;
        }
        softmax_rows(scores, queries, first, t, job->causal);
        if (dnnl_sgemm('N', 'N', queries, head_dim, t, 1.0f, scores, t, v, stride, 0.0f, o,
                       dim) != dnnl_success) {
            atomic_store(&job->failed, 1);
            return;
        }
    }
}

int engine_attention(float *out, const float *qkv, int n_seq, int seq_len, int dim,
                   int n_heads, int causal, int query)
{
    int threads = omp_get_max_threads();
    float *scores = malloc((size_t)threads * seq_len * seq_len * sizeof *scores);
    if (!scores)
        return -1;
    attention_job job = {out, qkv, scores, seq_len, dim, n_heads, causal, query, 0};
    long long per_task = 2LL * (query < 0 ? seq_len : 1) * seq_len * (dim / n_heads);
    int grain = (int)(PARALLEL_MIN_ELEMENTS / (per_task > 0 ? per_task : 1));
    parallel_for(n_seq * n_heads, grain, threads, attention_tasks, &job);
    free(scores);
    return atomic_load(&job.failed) ? -1 : 0;
}
