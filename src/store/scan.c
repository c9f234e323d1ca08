/* Exact nearest-neighbour search by brute force over the memory-mapped vector matrix.
 *
 * One query reads every row once, so the memory bus sets the speed: the kernels are
 * simple dot products (AVX2+FMA, with F16C widening for float16 rows, chosen at run time
 * with __builtin_cpu_supports; a portable loop otherwise), the members of OpenMP's
 * team (the model's pool too) claim chunks of rows from a shared counter (so a thread the
 * scheduler holds back delays nothing but its current chunk), each keeps its own bounded
 * max-heap of the best `want` rows, and the heaps are merged at the end. Distances are 1 - dot(q, v) with q
 * unit-length; equal distances are ordered by the caller's tie-break (the item id). */
#include <immintrin.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "store/scan.h"
#include "common/team.h"

/* Below this many bytes a single thread finishes before a second one would start. */
#define SCAN_PARALLEL_BYTES (4u << 20)
#define SCAN_MAX_THREADS 64

typedef float (*dot_kernel)(const float *q, const void *row, int dims);

/* ---- kernels ---- */

static float dot_f32_portable(const float *q, const void *row, int dims)
{
    const float *v = row;
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= dims; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += q[i + j] * v[i + j];
    float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < dims; i++)
        sum += q[i] * v[i];
    return sum;
}

static float dot_f16_portable(const float *q, const void *row, int dims)
{
    const uint16_t *v = row;
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= dims; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += q[i + j] * half_f16_to_f32(v[i + j]);
    float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < dims; i++)
        sum += q[i] * half_f16_to_f32(v[i]);
    return sum;
}

__attribute__((target("avx2,fma"))) static float horizontal_sum(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static float dot_f32_avx2(const float *q, const void *row,
                                                             int dims)
{
    const float *v = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 32 <= dims; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(v + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(v + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 16), _mm256_loadu_ps(v + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 24), _mm256_loadu_ps(v + i + 24), a3);
    }
    for (; i + 8 <= dims; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(v + i), a0);
    float sum = horizontal_sum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < dims; i++)
        sum += q[i] * v[i];
    return sum;
}

__attribute__((target("avx2,fma,f16c"))) static float dot_f16_avx2(const float *q,
                                                                  const void *row, int dims)
{
    const uint16_t *v = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
#define HALF8(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
    for (; i + 32 <= dims; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), HALF8(v + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), HALF8(v + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 16), HALF8(v + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 24), HALF8(v + i + 24), a3);
    }
    for (; i + 8 <= dims; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), HALF8(v + i), a0);
#undef HALF8
    float sum = horizontal_sum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < dims; i++)
        sum += q[i] * half_f16_to_f32(v[i]);
    return sum;
}

/* The SIMD kernel when the CPU has it, unless $VDX_SCAN_KERNEL=portable (tests compare
 * both against a reference). */
static dot_kernel pick_kernel(vdx_vector_type type)
{
    const char *forced = getenv("VDX_SCAN_KERNEL");
    int simd = !(forced && strcmp(forced, "portable") == 0) &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (type == VDX_VECTOR_F16)
        return simd && __builtin_cpu_supports("f16c") ? dot_f16_avx2 : dot_f16_portable;
    return simd ? dot_f32_avx2 : dot_f32_portable;
}

/* ---- the scan ---- */

int scan_threads(const vdx_scan_matrix *m)
{
    const char *env = getenv("VDX_SEARCH_THREADS");
    int threads = env && atoi(env) > 0 ? atoi(env) : vdx_cpu_count();
    size_t bytes = (size_t)m->n * (size_t)m->dims * (m->type == VDX_VECTOR_F16 ? 2 : 4);
    if (!env && bytes < SCAN_PARALLEL_BYTES)
        threads = 1;
    if (threads > SCAN_MAX_THREADS)
        threads = SCAN_MAX_THREADS;
    if (threads > m->n)
        threads = m->n > 0 ? (int)m->n : 1;
    return threads;
}

typedef struct scan_job {
    const vdx_scan_matrix *m;
    const float *q;
    const uint64_t *allowed;
    dot_kernel dot;
    atomic_llong *next_chunk; /* shared: chunks are claimed, not assigned */
    int64_t chunk_rows;
    /* nearest */
    int64_t want;
    vdx_scan_tie_break tie_break;
    const void *ctx;
    vdx_scan_hit *heap;
    int64_t n_heap;
    /* dots */
    float *dots;
} scan_job;

/* a comes after b in the result order */
static int hit_after(const scan_job *job, const vdx_scan_hit *a, const vdx_scan_hit *b)
{
    if (a->dist != b->dist)
        return a->dist > b->dist;
    return job->tie_break(a->row, b->row, job->ctx) > 0;
}

static void heap_sift_down(scan_job *job, int64_t i)
{
    vdx_scan_hit *h = job->heap;
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, worst = i;
        if (l < job->n_heap && hit_after(job, &h[l], &h[worst]))
            worst = l;
        if (r < job->n_heap && hit_after(job, &h[r], &h[worst]))
            worst = r;
        if (worst == i)
            return;
        vdx_scan_hit t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

static void heap_offer(scan_job *job, int64_t row, float dist)
{
    vdx_scan_hit *h = job->heap, hit = {row, dist};
    if (job->n_heap < job->want) {
        int64_t i = job->n_heap++;
        while (i > 0) { /* sift up: the worst hit stays at the root */
            int64_t parent = (i - 1) / 2;
            if (!hit_after(job, &hit, &h[parent]))
                break;
            h[i] = h[parent];
            i = parent;
        }
        h[i] = hit;
        return;
    }
    if (dist > h[0].dist || !hit_after(job, &h[0], &hit))
        return;
    h[0] = hit;
    heap_sift_down(job, 0);
}

static const void *row_at(const vdx_scan_matrix *m, int64_t row)
{
    size_t row_bytes = (size_t)m->dims * (m->type == VDX_VECTOR_F16 ? 2 : 4);
    return (const uint8_t *)m->rows + (size_t)row * row_bytes;
}

/* Claims the next chunk of rows [*lo, *hi); 0 when none is left. */
static int claim_chunk(scan_job *job, int64_t *lo, int64_t *hi)
{
    int64_t chunk = atomic_fetch_add(job->next_chunk, 1);
    *lo = chunk * job->chunk_rows;
    if (*lo >= job->m->n)
        return 0;
    *hi = *lo + job->chunk_rows < job->m->n ? *lo + job->chunk_rows : job->m->n;
    return 1;
}

static void *scan_nearest_chunks(void *arg)
{
    scan_job *job = arg;
    const vdx_scan_matrix *m = job->m;
    int64_t lo, hi;
    while (claim_chunk(job, &lo, &hi)) {
        for (int64_t r = lo; r < hi; r++) {
            if (job->allowed) {
                uint64_t word = job->allowed[r / 64];
                if (!word) { /* skip a whole word of filtered-out rows */
                    r |= 63;
                    continue;
                }
                if (!(word >> (r % 64) & 1))
                    continue;
            }
            float dist = 1.0f - job->dot(job->q, row_at(m, r), m->dims);
            if (job->n_heap < job->want || dist <= job->heap[0].dist)
                heap_offer(job, r, dist);
        }
    }
    return NULL;
}

static void *scan_dots_chunks(void *arg)
{
    scan_job *job = arg;
    int64_t lo, hi;
    while (claim_chunk(job, &lo, &hi))
        for (int64_t r = lo; r < hi; r++)
            if (!job->allowed || (job->allowed[r / 64] >> (r % 64) & 1))
                job->dots[r] = job->dot(job->q, row_at(job->m, r), job->m->dims);
    return NULL;
}

/* ---- the threads ----
 * A scan runs on OpenMP's team, the one the model's matrix engine (oneDNN) and kernels
 * use, so a process has one pool of worker threads (libgomp keeps them between regions:
 * no scan starts a thread). The members claim chunks from a shared counter, so a member
 * the scheduler holds back delays nothing but its current chunk. One region at a time
 * uses the team (common/team.h): a scan that finds it taken (another request's) runs on
 * its calling thread, so concurrent searches never put more threads on the cores than
 * there are. */

/* Runs fn on `threads` members of the team, job t on member t; chunks of about 1 MB of
 * rows (a multiple of 64 rows, so a bitmap word is never split) are claimed until none
 * is left. */
static void run_chunks(const vdx_scan_matrix *m, scan_job *jobs, int threads,
                       void *(*fn)(void *))
{
    atomic_llong next_chunk = 0;
    size_t row_bytes = (size_t)m->dims * (m->type == VDX_VECTOR_F16 ? 2 : 4);
    int64_t chunk_rows = (int64_t)(((1u << 20) / row_bytes + 63) / 64 * 64);
    for (int t = 0; t < threads; t++) {
        jobs[t].next_chunk = &next_chunk;
        jobs[t].chunk_rows = chunk_rows;
        jobs[t].n_heap = 0;
    }
    if ((threads = team_claim(threads)) == 1) {
        fn(&jobs[0]);
        return;
    }
#pragma omp parallel num_threads(threads)
    fn(&jobs[omp_get_thread_num()]);
    team_release(threads);
}

typedef struct sort_ctx {
    vdx_scan_tie_break tie_break;
    const void *ctx;
} sort_ctx;

static int compare_hits(const void *a, const void *b, void *arg)
{
    const vdx_scan_hit *x = a, *y = b;
    const sort_ctx *s = arg;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    return s->tie_break(x->row, y->row, s->ctx);
}

int64_t scan_nearest(const vdx_scan_matrix *m, const float *q, const uint64_t *allowed,
                         int64_t want, vdx_scan_tie_break tie_break, const void *ctx,
                         vdx_scan_hit *out, vdx_error *err)
{
    if (want <= 0 || m->n == 0)
        return 0;
    int threads = scan_threads(m);
    scan_job jobs[SCAN_MAX_THREADS];
    vdx_scan_hit *heaps = malloc((size_t)threads * (size_t)want * sizeof *heaps);
    if (!heaps)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "search: out of memory for %d heaps of %lld hits", threads,
                        (long long)want);
    for (int t = 0; t < threads; t++)
        jobs[t] = (scan_job){.m = m, .q = q, .allowed = allowed, .dot = pick_kernel(m->type),
                             .want = want, .tie_break = tie_break, .ctx = ctx,
                             .heap = heaps + (size_t)t * (size_t)want};
    run_chunks(m, jobs, threads, scan_nearest_chunks);
    /* Merge: gather every heap at the front, sort, keep the best `want`. */
    int64_t n = 0;
    for (int t = 0; t < threads; t++) {
        memmove(heaps + n, jobs[t].heap, (size_t)jobs[t].n_heap * sizeof *heaps);
        n += jobs[t].n_heap;
    }
    sort_ctx s = {tie_break, ctx};
    qsort_r(heaps, (size_t)n, sizeof *heaps, compare_hits, &s);
    if (n > want)
        n = want;
    memcpy(out, heaps, (size_t)n * sizeof *out);
    free(heaps);
    return n;
}

int scan_dots(const vdx_scan_matrix *m, const float *q, const uint64_t *allowed,
                  float *out, vdx_error *err)
{
    if (m->n == 0)
        return 0;
    int threads = scan_threads(m);
    scan_job jobs[SCAN_MAX_THREADS];
    for (int t = 0; t < threads; t++)
        jobs[t] = (scan_job){.m = m, .q = q, .allowed = allowed, .dot = pick_kernel(m->type),
                             .dots = out};
    run_chunks(m, jobs, threads, scan_dots_chunks);
    return 0;
}

/* Rows ahead whose lines are asked for before they are scored: rows at random places
 * each miss the caches, and asking early overlaps the misses instead of waiting for
 * one after another. */
#define DOT_ROWS_AHEAD 8
/* From this many rows the list is shared out among the team when it is free. */
#define DOT_ROWS_PARALLEL 1024

static void dot_rows_part(const vdx_scan_matrix *m, const float *q, const int64_t *rows,
                          size_t n, float *out, dot_kernel dot)
{
    size_t row_bytes = (size_t)m->dims * (m->type == VDX_VECTOR_F16 ? 2 : 4);
    for (size_t i = 0; i < n; i++) {
        if (i + DOT_ROWS_AHEAD < n) {
            const char *ahead = row_at(m, rows[i + DOT_ROWS_AHEAD]);
            for (size_t b = 0; b < row_bytes; b += 64)
                __builtin_prefetch(ahead + b);
        }
        out[i] = dot(q, row_at(m, rows[i]), m->dims);
    }
}

void scan_dot_rows(const vdx_scan_matrix *m, const float *q, const int64_t *rows, size_t n,
                       float *out)
{
    dot_kernel dot = pick_kernel(m->type);
    int threads = n >= DOT_ROWS_PARALLEL ? team_claim(omp_get_max_threads()) : 1;
    if (threads == 1) {
        dot_rows_part(m, q, rows, n, out, dot);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        size_t t = (size_t)omp_get_thread_num(), first = n * t / (size_t)threads,
               end = n * (t + 1) / (size_t)threads;
        dot_rows_part(m, q, rows + first, end - first, out + first, dot);
    }
    team_release(threads);
}
