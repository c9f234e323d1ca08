/* The numeric kernels of the CLIP towers: Linear layers and the two attention products
 * go through OpenBLAS (its AVX2/FMA kernels are where the time goes); LayerNorm,
 * bias+activation and softmax are plain loops split over rows or heads with a small
 * pthread fork-join. A Linear layer over a few rows (a text prompt) is memory-bound:
 * there OpenBLAS would copy ("pack") the whole weight matrix before using it once, so
 * a streaming kernel reads each weight row once and dots it with every input row. Numbers follow PyTorch's float32 CLIP (docs/clip-model.md): LayerNorm
 * statistics in double with the biased variance, QuickGELU x·σ(1.702x) or erf GELU. */
#include "clip/kernels.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "vdx/common.h"

#define MAX_THREADS 64

static atomic_int kernel_threads;

void clip_kernels_set_threads(int threads)
{
    if (threads < 1)
        threads = vdx_cpu_count();
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    atomic_store(&kernel_threads, threads);
    openblas_set_num_threads(threads);
}

int clip_kernels_threads(void)
{
    int threads = atomic_load(&kernel_threads);
    if (threads < 1)
        threads = vdx_cpu_count() < MAX_THREADS ? vdx_cpu_count() : MAX_THREADS;
    return threads;
}

/* ---- fork-join over an index range ---------------------------------------------- */

/* fn(ctx, slot, begin, end): slot is the slice's index, < the thread count used. */
typedef void (*range_fn)(void *ctx, int slot, int begin, int end);

typedef struct range_job {
    range_fn fn;
    void *ctx;
    int slot, begin, end;
} range_job;

static void *run_range_job(void *arg)
{
    range_job *job = arg;
    job->fn(job->ctx, job->slot, job->begin, job->end);
    return NULL;
}

/* At most this many input rows go through the streaming kernel instead of a GEMM. */
#define STREAMING_MAX_ROWS 24

/* A team for a forward pass over few rows (a text prompt): one helper thread per
 * extra core is started once for the whole pass instead of once per parallel call (a
 * 7-token prompt makes about 50 such calls, each thread start costs tens of
 * microseconds). Between calls the helpers spin on a ticket, yielding the core often,
 * so they only live, and only spin, while their caller's pass runs. The ticket packs
 * a generation number with that generation's slice count. Each caller thread has its
 * own team (thread-local), so concurrent callers share nothing. */
#define TICKET_SLICE_BITS 8 /* MAX_THREADS < 1 << TICKET_SLICE_BITS */
#define SPINS_PER_YIELD 64

struct clip_team {
    pthread_t ids[MAX_THREADS];
    int helpers;
    range_job jobs[MAX_THREADS];
    atomic_uint ticket; /* generation << TICKET_SLICE_BITS | slices; 0 slices = stop */
    atomic_int pending; /* helper slices of the current generation not yet done */
};

static _Thread_local clip_team *active_team;

typedef struct team_helper {
    clip_team *team;
    int slot;
} team_helper;

static void spin_pause(int spin)
{
    if (spin % SPINS_PER_YIELD == SPINS_PER_YIELD - 1)
        sched_yield();
    else
        _mm_pause();
}

static void *team_helper_main(void *arg)
{
    clip_team *team = ((team_helper *)arg)->team;
    int slot = ((team_helper *)arg)->slot;
    free(arg);
    unsigned seen = 0;
    for (;;) {
        unsigned ticket;
        for (int spin = 0; (ticket = atomic_load(&team->ticket)) == seen; spin++)
            spin_pause(spin);
        seen = ticket;
        int slices = (int)(ticket & ((1u << TICKET_SLICE_BITS) - 1));
        if (slices == 0)
            return NULL;
        if (slot < slices) {
            run_range_job(&team->jobs[slot]);
            atomic_fetch_sub(&team->pending, 1);
        }
    }
}

static void team_post(clip_team *team, int slices)
{
    unsigned generation = (atomic_load(&team->ticket) >> TICKET_SLICE_BITS) + 1;
    atomic_store(&team->ticket, generation << TICKET_SLICE_BITS | (unsigned)slices);
}

clip_team *clip_team_begin(int rows)
{
    int threads = clip_kernels_threads();
    if (rows > STREAMING_MAX_ROWS || threads < 2 || active_team)
        return NULL;
    clip_team *team = calloc(1, sizeof *team);
    if (!team)
        return NULL;
    for (int slot = 1; slot < threads; slot++) {
        team_helper *helper = malloc(sizeof *helper);
        if (!helper)
            break;
        *helper = (team_helper){team, slot};
        if (pthread_create(&team->ids[slot], NULL, team_helper_main, helper) != 0) {
            free(helper);
            break;
        }
        team->helpers = slot;
    }
    if (team->helpers == 0) {
        free(team);
        return NULL;
    }
    active_team = team;
    return team;
}

void clip_team_end(clip_team *team)
{
    if (!team)
        return;
    team_post(team, 0);
    for (int slot = 1; slot <= team->helpers; slot++)
        pthread_join(team->ids[slot], NULL);
    active_team = NULL;
    free(team);
}

/* Runs jobs[0..threads) with the team: slot 0 and any slot without a helper here. */
static void run_on_team(clip_team *team, range_job *jobs, int threads)
{
    int slices = team->helpers + 1 < threads ? team->helpers + 1 : threads;
    memcpy(team->jobs, jobs, (size_t)slices * sizeof *jobs);
    atomic_store(&team->pending, slices - 1);
    team_post(team, slices);
    run_range_job(&jobs[0]);
    for (int t = slices; t < threads; t++)
        run_range_job(&jobs[t]);
    for (int spin = 0; atomic_load(&team->pending) > 0; spin++)
        spin_pause(spin);
}

/* Calls fn over [0, n) split into contiguous slices, at most `threads` of them, never
 * giving one fewer than `grain` items: on the calling thread's team when it has one,
 * else on threads started for this call. A thread that cannot be created runs inline.
 * The split depends only on n and the thread count, so results do not depend on which
 * threads run the slices. */
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
    range_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++)
        jobs[t] = (range_job){fn, ctx, t, (int)((long long)n * t / threads),
                              (int)((long long)n * (t + 1) / threads)};
    if (active_team) {
        run_on_team(active_team, jobs, threads);
        return;
    }
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&ids[t], NULL, run_range_job, &jobs[t]) == 0;
    run_range_job(&jobs[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(ids[t], NULL);
        else
            run_range_job(&jobs[t]);
    }
}

/* Elements of work below which a row loop stays on the calling thread: a thread costs
 * tens of microseconds to start, more than normalising a few short rows. */
#define PARALLEL_MIN_ELEMENTS (1 << 16)

static int row_grain(int cols)
{
    int grain = PARALLEL_MIN_ELEMENTS / (cols > 0 ? cols : 1);
    return grain > 0 ? grain : 1;
}

/* ---- Linear ------------------------------------------------------------------- */

typedef struct streaming_job {
    float *out;
    const float *x, *w, *bias;
    int m, n, k, accumulate;
} streaming_job;

/* out[r][c] (+)= bias[c] + x[r]·w[c] for the weight rows c of [begin, end). */
static void streaming_rows_portable(const streaming_job *job, int begin, int end)
{
    int k = job->k;
    for (int c = begin; c < end; c++) {
        const float *w = job->w + (size_t)c * k;
        for (int r = 0; r < job->m; r++) {
            const float *x = job->x + (size_t)r * k;
            float lanes[8] = {0};
            int i = 0;
            for (; i + 8 <= k; i += 8)
                for (int l = 0; l < 8; l++)
                    lanes[l] += x[i + l] * w[i + l];
            float sum = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) +
                        ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
            for (; i < k; i++)
                sum += x[i] * w[i];
            float *o = job->out + (size_t)r * job->n + c;
            sum += job->bias ? job->bias[c] : 0.0f;
            *o = job->accumulate ? *o + sum : sum;
        }
    }
}

__attribute__((target("avx2,fma"))) static float horizontal_sum(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Finishes the dots of input row r with weight rows c..c+3: lane sums, the tail past a
 * multiple of 8, the bias, then the output (or the residual it adds to). */
__attribute__((target("avx2,fma"))) static void finish_dots(const streaming_job *job, int r,
                                                            int c, const __m256 acc[4],
                                                            const float *const w[4])
{
    int k = job->k;
    const float *x = job->x + (size_t)r * k;
    float *o = job->out + (size_t)r * job->n + c;
    for (int j = 0; j < 4; j++) {
        float sum = horizontal_sum(acc[j]);
        for (int i = k & ~7; i < k; i++)
            sum += x[i] * w[j][i];
        sum += job->bias ? job->bias[c + j] : 0.0f;
        o[j] = job->accumulate ? o[j] + sum : sum;
    }
}

/* Four weight rows at a time stay in L1 while every input row is dotted with them, two
 * input rows per pass (8 accumulators: each weight load feeds two FMAs). */
__attribute__((target("avx2,fma"))) static void streaming_rows_avx2(const streaming_job *job,
                                                                    int begin, int end)
{
    int k = job->k, k8 = k & ~7;
    int c = begin;
    for (; c + 4 <= end; c += 4) {
        const float *w0 = job->w + (size_t)c * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        const float *const w[4] = {w0, w1, w2, w3};
        int r = 0;
        for (; r + 2 <= job->m; r += 2) {
            const float *x0 = job->x + (size_t)r * k, *x1 = x0 + k;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (int i = 0; i < k8; i += 8) {
                __m256 u = _mm256_loadu_ps(x0 + i), v = _mm256_loadu_ps(x1 + i);
                __m256 q = _mm256_loadu_ps(w0 + i);
                a0 = _mm256_fmadd_ps(u, q, a0);
                b0 = _mm256_fmadd_ps(v, q, b0);
                q = _mm256_loadu_ps(w1 + i);
                a1 = _mm256_fmadd_ps(u, q, a1);
                b1 = _mm256_fmadd_ps(v, q, b1);
                q = _mm256_loadu_ps(w2 + i);
                a2 = _mm256_fmadd_ps(u, q, a2);
                b2 = _mm256_fmadd_ps(v, q, b2);
                q = _mm256_loadu_ps(w3 + i);
                a3 = _mm256_fmadd_ps(u, q, a3);
                b3 = _mm256_fmadd_ps(v, q, b3);
            }
            const __m256 first[4] = {a0, a1, a2, a3}, second[4] = {b0, b1, b2, b3};
            finish_dots(job, r, c, first, w);
            finish_dots(job, r + 1, c, second, w);
        }
        for (; r < job->m; r++) {
            const float *x = job->x + (size_t)r * k;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int i = 0; i < k8; i += 8) {
                __m256 u = _mm256_loadu_ps(x + i);
                a0 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w0 + i), a0);
                a1 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w1 + i), a1);
                a2 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w2 + i), a2);
                a3 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w3 + i), a3);
            }
            const __m256 only[4] = {a0, a1, a2, a3};
            finish_dots(job, r, c, only, w);
        }
    }
    if (c < end)
        streaming_rows_portable(job, c, end);
}

/* The AVX2 kernel when the CPU has it, unless $VDX_CLIP_KERNEL=portable (the golden
 * tests run both). */
static int use_avx2(void)
{
    const char *forced = getenv("VDX_CLIP_KERNEL");
    return !(forced && strcmp(forced, "portable") == 0) && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
}

/* A parallel_for slice of 4-row groups. */
static void streaming_groups(void *arg, int slot, int begin, int end)
{
    const streaming_job *job = arg;
    int first = 4 * begin, last = 4 * end < job->n ? 4 * end : job->n;
    if (use_avx2())
        streaming_rows_avx2(job, first, last);
    else
        streaming_rows_portable(job, first, last);
}

static void streaming_linear(float *out, const float *x, const float *w, const float *bias,
                             int m, int n, int k, int accumulate)
{
    streaming_job job = {out, x, w, bias, m, n, k, accumulate};
    /* slices of whole 4-row groups, each at least PARALLEL_MIN_ELEMENTS weights */
    int groups = (n + 3) / 4;
    int grain = PARALLEL_MIN_ELEMENTS / (4 * k > 0 ? 4 * k : 1);
    parallel_for(groups, grain, clip_kernels_threads(), streaming_groups, &job);
}

void clip_linear(float *out, const float *x, const float *w, const float *bias, int m, int n,
                 int k)
{
    if (m <= STREAMING_MAX_ROWS) {
        streaming_linear(out, x, w, bias, m, n, k, 0);
        return;
    }
    if (bias) {
        for (int r = 0; r < m; r++)
            for (int c = 0; c < n; c++)
                out[(size_t)r * n + c] = bias[c];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w, k,
                bias ? 1.0f : 0.0f, out, n);
}

void clip_linear_residual(float *h, const float *x, const float *w, const float *bias,
                          int m, int n, int k)
{
    if (m <= STREAMING_MAX_ROWS) {
        streaming_linear(h, x, w, bias, m, n, k, 1);
        return;
    }
    for (int r = 0; r < m; r++)
        for (int c = 0; c < n; c++)
            h[(size_t)r * n + c] += bias[c];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w, k, 1.0f, h,
                n);
}

/* ---- LayerNorm ------------------------------------------------------------------ */

typedef struct layer_norm_job {
    float *out;
    const float *in, *gamma, *beta;
    int dim;
    double eps;
} layer_norm_job;

static void layer_norm_rows(void *arg, int slot, int begin, int end)
{
    const layer_norm_job *job = arg;
    int dim = job->dim;
    for (int r = begin; r < end; r++) {
        const float *x = job->in + (size_t)r * dim;
        float *y = job->out + (size_t)r * dim;
        double sum = 0;
        for (int i = 0; i < dim; i++)
            sum += x[i];
        double mean = sum / dim;
        double squares = 0;
        for (int i = 0; i < dim; i++) {
            double d = x[i] - mean;
            squares += d * d;
        }
        double inv_std = 1.0 / sqrt(squares / dim + job->eps);
        for (int i = 0; i < dim; i++)
            y[i] = (float)((x[i] - mean) * inv_std) * job->gamma[i] + job->beta[i];
    }
}

void clip_layer_norm(float *out, const float *in, const float *gamma, const float *beta,
                     int rows, int dim, double eps)
{
    layer_norm_job job = {out, in, gamma, beta, dim, eps};
    parallel_for(rows, row_grain(dim), clip_kernels_threads(), layer_norm_rows, &job);
}

/* ---- bias + activation ---------------------------------------------------------- */

typedef struct activation_job {
    float *x;
    const float *bias;
    int cols;
    clip_activation act;
} activation_job;

static void activation_rows(void *arg, int slot, int begin, int end)
{
    const activation_job *job = arg;
    int cols = job->cols;
    for (int r = begin; r < end; r++) {
        float *x = job->x + (size_t)r * cols;
        if (job->act == CLIP_ACT_QUICK_GELU) {
            for (int c = 0; c < cols; c++) {
                float v = x[c] + job->bias[c];
                x[c] = v / (1.0f + expf(-1.702f * v));
            }
        } else {
            for (int c = 0; c < cols; c++) {
                float v = x[c] + job->bias[c];
                x[c] = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
            }
        }
    }
}

void clip_bias_activation(float *x, const float *bias, int rows, int cols,
                          clip_activation act)
{
    activation_job job = {x, bias, cols, act};
    parallel_for(rows, row_grain(cols), clip_kernels_threads(), activation_rows, &job);
}

/* ---- attention ------------------------------------------------------------------ */

typedef struct attention_job {
    float *out;
    const float *qkv;
    float *scores; /* seq_len*seq_len floats per slot */
    int seq_len, dim, n_heads, causal;
} attention_job;

/* Rows of scores → probabilities, in place. Row i of a causal sequence sees keys 0..i. */
static void softmax_rows(float *scores, int seq_len, int causal)
{
    for (int i = 0; i < seq_len; i++) {
        float *row = scores + (size_t)i * seq_len;
        int visible = causal ? i + 1 : seq_len;
        float max = row[0];
        for (int j = 1; j < visible; j++)
            if (row[j] > max)
                max = row[j];
        double sum = 0;
        for (int j = 0; j < visible; j++) {
            row[j] = expf(row[j] - max);
            sum += row[j];
        }
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
    float scale = (float)(1.0 / sqrt((double)head_dim));
    float *scores = job->scores + (size_t)slot * t * t;
    for (int task = begin; task < end; task++) {
        int seq = task / job->n_heads, head = task % job->n_heads;
        const float *q = job->qkv + (size_t)seq * t * stride + (size_t)head * head_dim;
        const float *k = q + dim, *v = q + 2 * dim;
        float *o = job->out + (size_t)seq * t * dim + (size_t)head * head_dim;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, head_dim, scale, q, stride,
                    k, stride, 0.0f, scores, t);
        softmax_rows(scores, t, job->causal);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, head_dim, t, 1.0f, scores,
                    t, v, stride, 0.0f, o, dim);
    }
}

int clip_attention(float *out, const float *qkv, int n_seq, int seq_len, int dim,
                   int n_heads, int causal)
{
    int threads = clip_kernels_threads();
    float *scores = malloc((size_t)threads * seq_len * seq_len * sizeof *scores);
    if (!scores)
        return -1;
    attention_job job = {out, qkv, scores, seq_len, dim, n_heads, causal};
    long long per_task = 2LL * seq_len * seq_len * (dim / n_heads);
    int grain = (int)(PARALLEL_MIN_ELEMENTS / (per_task > 0 ? per_task : 1));
    parallel_for(n_seq * n_heads, grain, threads, attention_tasks, &job);
    free(scores);
    return 0;
}
