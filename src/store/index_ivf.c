/* The approximate index of the embedded store: IVF (inverted file) with int8 codes and an
 * exact rerank.
 *
 * Build: spherical k-means (OpenBLAS GEMMs for the assignments) on a sample cuts the
 * vectors into `lists` partitions; every row is assigned to its nearest centre and its
 * residual (vector − centre) is quantised to one signed byte per dimension with a
 * per-dimension scale (the largest residual magnitude of that dimension / 127, so no
 * value is clipped). The file holds, list after list, the row numbers and codes.
 *
 * Search: the query's dot with every centre ranks the partitions; the best `nprobe` are
 * visited (more under a filter), estimating each allowed row's dot as
 * q·c + Σ q_d·scale_d·code_d. Rounding makes each estimate at most
 * E = ½ Σ |q_d·scale_d| away from the true dot, so every row whose estimate is within 2E
 * of the want-th best estimate is re-scored exactly from the mapped vectors, with the
 * same kernel as the exact scan: the visited rows' true top `want` are always found, and
 * with every partition visited the result is exactly the exact scan's. Rows appended
 * after the build (the tail) are scored exactly and merged.
 *
 * Product codes instead (a quarter of the bytes, for 10M items and more): each pair of
 * residual dimensions is the number of its nearest of 16 centroids (4 bits), stored in
 * blocks of 32 rows so that a byte shuffle looks up 16 rows' table entries at once
 * (the "fast scan" of FAISS and ScaNN). No error bound: the best `rerank` estimates are
 * re-scored exactly.
 *
 * The file is written beside the collection as a temporary file, fsynced and renamed:
 * readers see the old index or the new one, never a part. It records the rows it covers
 * and a stamp of them; embedded.c ignores an index whose stamp does not match. */
#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/index_ivf.h"
#include "common/clock.h"
#include "common/half.h"
#include "common/team.h"

#define IVF_MAGIC "VDXIVF1\0"
#define IVF_VERSION 1       /* int8 codes */
#define IVF_VERSION_PQ8 2   /* 8-bit product codes of sessions 7-9: refused, rebuild */
#define IVF_VERSION_PQ 3    /* 4-bit product codes in blocks (an older reader refuses it) */
#define PQ_DSUB 2           /* dimensions per sub-quantiser */
#define PQ_KSUB 16          /* centroids per sub-quantiser: half a byte */
#define PQ_BLOCK 32         /* rows whose codes are interleaved (pq_sums_*) */
#define PQ_DIMS_MULTIPLE 8  /* sub-quantisers in fours: the AVX-512 step */
#define PQ_TRAIN 32768      /* residuals the sub-quantisers are trained on, at most */
#define IVF_HEADER 256
#define ALIGN64(x) (((x) + 63) & ~(uint64_t)63)

typedef struct ivf_header {
    char magic[8];
    uint32_t version, dims, lists, nprobe;
    uint64_t rows, stamp;
    uint32_t train_rows, iterations;
    double build_seconds;
    int64_t built;
    uint64_t off_scale, off_centres, off_starts, off_rows, off_codes, file_size;
    /* version 2 (zero in version 1 files) */
    uint32_t pq_m, pq_ksub, rerank, reserved;
    uint64_t off_codebooks; /* pq_m × pq_ksub × PQ_DSUB floats */
} ivf_header;

struct vdx_ivf {
    ivf_header h;
    uint8_t *map;
    size_t map_size;
    const float *scale, *centres;
    const uint64_t *starts; /* lists + 1 */
    const uint32_t *rows;   /* row numbers, list after list */
    const int8_t *codes;    /* int8: dims bytes per row, same order; pq: blocks (below) */
    const float *codebooks; /* pq: pq_m × pq_ksub × PQ_DSUB floats */
    uint64_t *pq_blocks;    /* pq: lists + 1; partition l's codes are blocks
                             * [pq_blocks[l], pq_blocks[l + 1]) of PQ_BLOCK rows each */
};

/* A query made ready for the int8 codes: qs_d = q_d · scale_d (the float kernels), and for
 * the VNNI kernel qs in whole steps of t (qi, 16-bit), summed exactly in 32-bit integers.
 * `bound` is the most any estimate can be off the row's true dot (code_query_init). */
typedef struct code_query code_query;
typedef float (*i8_kernel)(const code_query *cq, const int8_t *c, int dims);
struct code_query {
    float *qs;
    int16_t *qi;
    float t;
    double bound;
    i8_kernel dot;
};

static float dot_i8_portable(const code_query *cq, const int8_t *c, int dims)
{
    const float *qs = cq->qs;
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= dims; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += qs[i + j] * (float)c[i + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < dims; i++)
        s += qs[i] * (float)c[i];
    return s;
}

__attribute__((target("avx2,fma"))) static float dot_i8_avx2(const code_query *cq,
                                                            const int8_t *c, int dims)
{
    const float *qs = cq->qs;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 32 <= dims; i += 32) {
        __m128i b0 = _mm_loadu_si128((const __m128i *)(c + i));
        __m128i b1 = _mm_loadu_si128((const __m128i *)(c + i + 16));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qs + i), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b0)), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(qs + i + 8),
                             _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b0, 8))), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(qs + i + 16), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b1)), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(qs + i + 24),
                             _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b1, 8))), a3);
    }
    __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float sum = _mm_cvtss_f32(s);
    for (; i < dims; i++)
        sum += qs[i] * (float)c[i];
    return sum;
}

__attribute__((target("avx512f"))) static float dot_i8_avx512(const code_query *cq,
                                                              const int8_t *c, int dims)
{
    const float *qs = cq->qs;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 64 <= dims; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(qs + i),
                             _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(c + i)))), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(qs + i + 16),
                             _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(c + i + 16)))), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(qs + i + 32),
                             _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(c + i + 32)))), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(qs + i + 48),
                             _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(c + i + 48)))), a3);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (; i < dims; i++)
        sum += qs[i] * (float)c[i];
    return sum;
}

/* 16-bit query steps times the codes' bytes, 32 pairs an instruction (vpdpwssd), in
 * exact integer sums: half the instructions of the float kernels per byte of codes. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static float
dot_i8_vnni(const code_query *cq, const int8_t *c, int dims)
{
    const int16_t *qi = cq->qi;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0;
    int i = 0;
    for (; i + 64 <= dims; i += 64) {
        __m512i c0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(c + i)));
        __m512i c1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(c + i + 32)));
        a0 = _mm512_dpwssd_epi32(a0, c0, _mm512_loadu_si512((const void *)(qi + i)));
        a1 = _mm512_dpwssd_epi32(a1, c1, _mm512_loadu_si512((const void *)(qi + i + 32)));
    }
    int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1));
    for (; i < dims; i++)
        sum += (int32_t)qi[i] * c[i];
    return cq->t * (float)sum;
}

/* The fastest kernel the CPU has (VDX_SCAN_KERNEL=portable|avx2|avx512 holds it back to
 * that float kernel). The kernels sum in different orders, so an estimate may differ by
 * rounding from one CPU to another; the bound covers it, and the rerank is exact. */
static i8_kernel pick_i8_kernel(void)
{
    const char *forced = getenv("VDX_SCAN_KERNEL");
    if (forced && strcmp(forced, "portable") == 0)
        return dot_i8_portable;
    int avx2 = !(forced && strcmp(forced, "avx2") == 0);
    if (avx2 && !(forced && strcmp(forced, "avx512") == 0) && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni"))
        return dot_i8_vnni;
    if (avx2 && __builtin_cpu_supports("avx512f"))
        return dot_i8_avx512;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? dot_i8_avx2
                                                                          : dot_i8_portable;
}

/* Readies query q for the codes of ix with the fastest kernel, and its error bound:
 * E = ½ Σ|qs_d| (a code is its residual rounded to the nearest step of scale_d); with
 * 16-bit steps also 127 Σ|qs_d − t·qi_d| (the query's own rounding, times the largest
 * code) and the rounding of t times the integer sum; and the float rounding of the
 * sums. t keeps every integer sum within 32 bits. -1 when memory runs out. */
static int code_query_init(code_query *cq, const vdx_ivf *ix, const float *q)
{
    int d = (int)ix->h.dims;
    cq->dot = pick_i8_kernel();
    cq->qs = malloc((size_t)d * sizeof *cq->qs);
    cq->qi = cq->dot == dot_i8_vnni ? malloc((size_t)d * sizeof *cq->qi) : NULL;
    if (!cq->qs || (cq->dot == dot_i8_vnni && !cq->qi))
        return -1;
    double e = 0, norm2 = 0, most = 0;
    for (int j = 0; j < d; j++) {
        cq->qs[j] = q[j] * ix->scale[j];
        e += fabs((double)cq->qs[j]);
        norm2 += (double)q[j] * q[j];
        most = fmax(most, fabs((double)cq->qs[j]));
    }
    cq->bound = e * 0.5 + 1e-4 * sqrt(norm2) + 1e-5;
    if (cq->qi) {
        double steps = fmin(32767, floor(2147483647.0 / (127.0 * d)));
        cq->t = most > 0 ? (float)(most / steps) : 1.0f;
        double off = 0, mass = 0;
        for (int j = 0; j < d; j++) {
            double v = fmax(-steps, fmin(steps, nearbyint(cq->qs[j] / (double)cq->t)));
            cq->qi[j] = (int16_t)v;
            off += fabs((double)cq->qs[j] - (double)cq->t * v);
            mass += fabs(v);
        }
        cq->bound += 127 * off + ldexp(127 * mass * cq->t, -22);
    }
    return 0;
}

static void code_query_free(code_query *cq)
{
    free(cq->qs);
    free(cq->qi);
}

/* ---- pq: 4-bit codes looked up 32 rows at a time ---- */

/* A query made ready for product codes: a table of one byte per sub-quantiser and
 * centroid, lut[s * 16 + j] = round((q_s·centroid_j − low_s) / step) where low_s is the
 * least of sub-quantiser s's dots and step the widest range over `top`; a row's estimate
 * is q·c + low + step × Σ_s lut[s * 16 + code_s] (low = Σ low_s). `top` keeps the sum of
 * pq_m entries within 16 bits, so every kernel sums exactly, to the same integers. */
typedef struct pq_query pq_query;
typedef void (*pq_kernel)(const uint8_t *block, const uint8_t *lut, int pq_m, uint16_t *sums);
struct pq_query {
    uint8_t *lut;
    float low, step;
    pq_kernel sums;
};

/* sums[i] = Σ_s lut[s * 16 + code of row i for s] for the PQ_BLOCK rows of a block. */
static void pq_sums_portable(const uint8_t *block, const uint8_t *lut, int pq_m, uint16_t *sums)
{
    unsigned acc[PQ_BLOCK] = {0};
    for (int s = 0; s < pq_m; s++) {
        const uint8_t *c = block + s * 16, *t = lut + s * 16;
        for (int i = 0; i < 16; i++) {
            acc[i] += t[c[i] & 15];
            acc[i + 16] += t[c[i] >> 4];
        }
    }
    for (int i = 0; i < PQ_BLOCK; i++)
        sums[i] = (uint16_t)acc[i];
}

/* The SIMD kernels look up 16 codes in one byte shuffle, a 16-byte table per 128-bit
 * lane (two sub-quantisers per AVX2 register, four per AVX-512). Bytes are summed in
 * 16-bit lanes: `a` adds each pair of neighbouring rows as (even + 256 × odd), `b` adds
 * the odd rows alone, so even = a − 256 b (exact modulo 2^16, and every sum is below it).
 * pq_finish adds the register's 128-bit lanes (a and b summed over them) and writes
 * the 16 rows in order. */
static void pq_finish(__m128i a, __m128i b, uint16_t *sums)
{
    __m128i even = _mm_sub_epi16(a, _mm_slli_epi16(b, 8));
    _mm_storeu_si128((__m128i *)sums, _mm_unpacklo_epi16(even, b));
    _mm_storeu_si128((__m128i *)(sums + 8), _mm_unpackhi_epi16(even, b));
}

__attribute__((target("avx2"))) static void pq_sums_avx2(const uint8_t *block, const uint8_t *lut,
                                                         int pq_m, uint16_t *sums)
{
    const __m256i low4 = _mm256_set1_epi8(15);
    __m256i lo_a = _mm256_setzero_si256(), lo_b = lo_a, hi_a = lo_a, hi_b = lo_a;
    for (int s = 0; s < pq_m; s += 2) {
        __m256i c = _mm256_loadu_si256((const __m256i *)(block + s * 16));
        __m256i t = _mm256_loadu_si256((const __m256i *)(lut + s * 16));
        __m256i lo = _mm256_shuffle_epi8(t, _mm256_and_si256(c, low4));
        __m256i hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), low4));
        lo_a = _mm256_add_epi16(lo_a, lo);
        lo_b = _mm256_add_epi16(lo_b, _mm256_srli_epi16(lo, 8));
        hi_a = _mm256_add_epi16(hi_a, hi);
        hi_b = _mm256_add_epi16(hi_b, _mm256_srli_epi16(hi, 8));
    }
#define LANES2(x) _mm_add_epi16(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1))
    pq_finish(LANES2(lo_a), LANES2(lo_b), sums);
    pq_finish(LANES2(hi_a), LANES2(hi_b), sums + 16);
#undef LANES2
}

__attribute__((target("avx512f,avx512bw"))) static void
pq_sums_avx512(const uint8_t *block, const uint8_t *lut, int pq_m, uint16_t *sums)
{
    const __m512i low4 = _mm512_set1_epi8(15);
    __m512i lo_a = _mm512_setzero_si512(), lo_b = lo_a, hi_a = lo_a, hi_b = lo_a;
    for (int s = 0; s < pq_m; s += 4) {
        __m512i c = _mm512_loadu_si512((const void *)(block + s * 16));
        __m512i t = _mm512_loadu_si512((const void *)(lut + s * 16));
        __m512i lo = _mm512_shuffle_epi8(t, _mm512_and_si512(c, low4));
        __m512i hi = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(c, 4), low4));
        lo_a = _mm512_add_epi16(lo_a, lo);
        lo_b = _mm512_add_epi16(lo_b, _mm512_srli_epi16(lo, 8));
        hi_a = _mm512_add_epi16(hi_a, hi);
        hi_b = _mm512_add_epi16(hi_b, _mm512_srli_epi16(hi, 8));
    }
#define LANES4(x)                                                                               \
    _mm_add_epi16(_mm_add_epi16(_mm512_castsi512_si128(x), _mm512_extracti32x4_epi32(x, 1)),   \
                  _mm_add_epi16(_mm512_extracti32x4_epi32(x, 2), _mm512_extracti32x4_epi32(x, 3)))
    pq_finish(LANES4(lo_a), LANES4(lo_b), sums);
    pq_finish(LANES4(hi_a), LANES4(hi_b), sums + 16);
#undef LANES4
}

/* The fastest kernel the CPU has (VDX_SCAN_KERNEL=portable|avx2|avx512 holds it back);
 * they all give the same sums. pq_m is a multiple of 4 (PQ_DIMS_MULTIPLE). */
static pq_kernel pick_pq_kernel(void)
{
    const char *forced = getenv("VDX_SCAN_KERNEL");
    if (forced && strcmp(forced, "portable") == 0)
        return pq_sums_portable;
    if (!(forced && strcmp(forced, "avx2") == 0) && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw"))
        return pq_sums_avx512;
    return __builtin_cpu_supports("avx2") ? pq_sums_avx2 : pq_sums_portable;
}

/* Readies query q for the product codes of ix (struct pq_query); -1 when memory runs out. */
static int pq_query_init(pq_query *pq, const vdx_ivf *ix, const float *q)
{
    int pq_m = (int)ix->h.pq_m, ksub = (int)ix->h.pq_ksub;
    int top = 65535 / pq_m < 255 ? 65535 / pq_m : 255;
    size_t n = (size_t)pq_m * 16;
    pq->sums = pick_pq_kernel();
    pq->lut = aligned_alloc(64, ALIGN64(n));
    float *dots = malloc(n * sizeof *dots), *lows = malloc((size_t)pq_m * sizeof *lows);
    if (!pq->lut || !dots || !lows) {
        free(dots);
        free(lows);
        return -1;
    }
    memset(pq->lut, 0, n); /* entries past ksub: a code that names none adds nothing */
    float widest = 0;
    for (int s = 0; s < pq_m; s++) {
        float lo = INFINITY, hi = -INFINITY;
        for (int j = 0; j < ksub; j++) {
            const float *cb = ix->codebooks + ((size_t)s * ksub + j) * PQ_DSUB;
            float v = q[s * PQ_DSUB] * cb[0] + q[s * PQ_DSUB + 1] * cb[1];
            dots[s * 16 + j] = v;
            lo = fminf(lo, v);
            hi = fmaxf(hi, v);
        }
        lows[s] = lo;
        widest = fmaxf(widest, hi - lo);
    }
    pq->step = widest > 0 ? widest / (float)top : 1.0f;
    pq->low = 0;
    for (int s = 0; s < pq_m; s++) {
        pq->low += lows[s];
        for (int j = 0; j < ksub; j++) {
            float v = nearbyintf((dots[s * 16 + j] - lows[s]) / pq->step);
            /* (a NaN, from centroids so large that the dots overflow, counts as 0) */
            pq->lut[s * 16 + j] = (uint8_t)(v > (float)top ? (float)top : v >= 0 ? v : 0);
        }
    }
    free(dots);
    free(lows);
    return 0;
}

/* ---- build ---- */

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void widen(const vdx_scan_matrix *m, int64_t row, float *out)
{
    size_t d = (size_t)m->dims;
    if (m->type == VDX_VECTOR_F16) {
        const uint16_t *v = (const uint16_t *)m->rows + (size_t)row * d;
        for (size_t i = 0; i < d; i++)
            out[i] = half_f16_to_f32(v[i]);
    } else
        memcpy(out, (const float *)m->rows + (size_t)row * d, d * sizeof(float));
}

static void normalize(float *x, int d)
{
    double s = 0;
    for (int i = 0; i < d; i++)
        s += (double)x[i] * x[i];
    if (s > 0) {
        float inv = (float)(1 / sqrt(s));
        for (int i = 0; i < d; i++)
            x[i] *= inv;
    }
}

/* assign[i] = argmax_l x_i·c_l for n rows of x (f32, n × d), through GEMMs of `block`
 * rows; scores has room for block × lists. OpenBLAS runs on its callers' threads
 * (team_serial_blas), so the rows are split over OpenMP's team: each part is one GEMM
 * into its own rows of scores. */
static void assign_block(const float *x, int64_t n, const float *c, int lists, int d,
                         float *scores, uint32_t *assign)
{
    int threads = team_claim(n >= 256 ? omp_get_max_threads() : 1);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int t = 0; t < threads; t++) {
        int64_t first = n * t / threads, end = n * (t + 1) / threads;
        if (end > first)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(end - first), lists, d,
                        1.0f, x + (size_t)first * d, d, c, d, 0.0f,
                        scores + (size_t)first * lists, lists);
        for (int64_t i = first; i < end; i++) {
            const float *s = scores + (size_t)i * (size_t)lists;
            int best = 0;
            for (int l = 1; l < lists; l++)
                if (s[l] > s[best])
                    best = l;
            assign[i] = (uint32_t)best;
        }
    }
    team_release(threads);
}

static int fsync_dir_of(const char *path)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Removes temporary files of builds that were killed (PATH.tmp.*). */
static void remove_stale_temps(const char *path)
{
    char dir[4200], prefix[512];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) {
            char full[4600];
            snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
            unlink(full);
        }
    closedir(d);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress(const vdx_ivf_build_params *p, const char *stage, double f)
{
    if (p->on_progress)
        p->on_progress(stage, f, p->user);
}

/* The nearest of ksub centroids cb (PQ_DSUB = 2 floats each, squared norms in cnorm) to
 * the 2 floats at x; the lowest number among equal distances. */
static int pq_nearest(const float *x, const float *cb, const float *cnorm, int ksub)
{
    int best = 0;
    float best_d = INFINITY;
    for (int j = 0; j < ksub; j++) {
        float dj = cnorm[j] - 2 * (x[0] * cb[2 * j] + x[1] * cb[2 * j + 1]);
        if (dj < best_d) {
            best_d = dj;
            best = j;
        }
    }
    return best;
}

/* out[i * out_stride] = the nearest of ksub centroids cb (PQ_DSUB floats each) to the
 * PQ_DSUB floats at x + i * stride, for n rows. */
static void pq_assign(const float *x, int64_t n, int stride, const float *cb, int ksub,
                      uint8_t *out, int out_stride)
{
    float cnorm[PQ_KSUB];
    for (int j = 0; j < ksub; j++)
        cnorm[j] = cb[2 * j] * cb[2 * j] + cb[2 * j + 1] * cb[2 * j + 1];
    for (int64_t i = 0; i < n; i++)
        out[(size_t)i * out_stride] = (uint8_t)pq_nearest(x + (size_t)i * stride, cb, cnorm, ksub);
}

/* Trains the d / PQ_DSUB sub-quantisers (k-means, L2) on t residuals (t × d) into cb
 * (m × ksub × PQ_DSUB). Returns -1 when out of memory. */
static int pq_train(const float *res, int64_t t, int d, int ksub, int iterations, uint64_t seed,
                    float *cb)
{
    int m = d / PQ_DSUB;
    uint8_t *code = malloc((size_t)t);
    double *sums = malloc((size_t)ksub * PQ_DSUB * sizeof *sums);
    int64_t *counts = malloc((size_t)ksub * sizeof *counts);
    int rc = code && sums && counts ? 0 : -1;
    for (int s = 0; s < m && rc == 0; s++) {
        float *c = cb + (size_t)s * ksub * PQ_DSUB;
        const float *x = res + (size_t)s * PQ_DSUB;
        for (int j = 0; j < ksub; j++) /* evenly spaced residuals to start */
            memcpy(c + j * PQ_DSUB, x + (size_t)((int64_t)j * t / ksub) * d,
                   PQ_DSUB * sizeof *c);
        for (int it = 0; it < iterations; it++) {
            pq_assign(x, t, d, c, ksub, code, 1);
            memset(sums, 0, (size_t)ksub * PQ_DSUB * sizeof *sums);
            memset(counts, 0, (size_t)ksub * sizeof *counts);
            for (int64_t i = 0; i < t; i++) {
                for (int k = 0; k < PQ_DSUB; k++)
                    sums[code[i] * PQ_DSUB + k] += x[(size_t)i * d + k];
                counts[code[i]]++;
            }
            for (int j = 0; j < ksub; j++) {
                if (counts[j] == 0) { /* an empty centroid takes a random residual */
                    int64_t r = (int64_t)(mix64(seed ^ ((uint64_t)s << 40) ^ ((uint64_t)it << 20) ^
                                                (uint64_t)j) % (uint64_t)t);
                    memcpy(c + j * PQ_DSUB, x + (size_t)r * d, PQ_DSUB * sizeof *c);
                    continue;
                }
                for (int k = 0; k < PQ_DSUB; k++)
                    c[j * PQ_DSUB + k] = (float)(sums[j * PQ_DSUB + k] / (double)counts[j]);
            }
        }
    }
    free(code);
    free(sums);
    free(counts);
    return rc;
}

/* Codes of PQ_BLOCK rows: for each sub-quantiser 16 bytes, byte i holding row i's code
 * in its low half and row i + 16's in its high half. A block of codes is what one
 * shuffle of a 16-entry table (pq_sums_avx2, pq_sums_avx512) looks up in one go. */
static uint64_t pq_block_bytes(int pq_m) { return (uint64_t)pq_m * (PQ_BLOCK / 2); }

/* blocks[l] = partition l's first code block (blocks[lists]: how many there are): its
 * rows take ceil(rows / PQ_BLOCK) blocks, the last one padded with zero codes. */
static void pq_block_table(const uint64_t *starts, uint32_t lists, uint64_t *blocks)
{
    blocks[0] = 0;
    for (uint32_t l = 0; l < lists; l++)
        blocks[l + 1] = blocks[l] + (starts[l + 1] - starts[l] + PQ_BLOCK - 1) / PQ_BLOCK;
}

/* Writes the pq_m codes of row i (0 ≤ i < PQ_BLOCK) of a zero-filled block. */
static void pq_put_code(uint8_t *block, int pq_m, int i, const uint8_t *code)
{
    for (int s = 0; s < pq_m; s++)
        block[s * (PQ_BLOCK / 2) + i % 16] |= (uint8_t)(i < 16 ? code[s] : code[s] << 4);
}

static int default_nprobe(int lists)
{
    int nprobe = (int)lround(2 * sqrt((double)lists));
    return nprobe > 8 ? nprobe : 8;
}

int ivf_build(const vdx_scan_matrix *m, const char *path, const vdx_ivf_build_params *p,
                  vdx_error *err)
{
    team_serial_blas();
    int64_t n = m->n;
    int d = m->dims;
    if (n < 1)
        return vdx_fail(err, "index: the collection is empty");
    if (n > (int64_t)UINT32_MAX)
        return vdx_fail(err, "index: %lld rows is more than the index holds (2^32 - 1)",
                        (long long)n);
    double t0 = now_s();
    /* 2√n partitions: at 1M, text→image queries reach recall@9 0.98 reading half the
     * rows they read with √n (docs/index.md), for twice the build time */
    int lists = p->lists > 0 ? p->lists : (int)lround(2 * sqrt((double)n));
    if (lists < 16)
        lists = 16;
    if (lists > n)
        lists = (int)n;
    int64_t train = p->train_rows > 0 ? p->train_rows : (int64_t)lists * 64;
    if (train > 262144 && p->train_rows <= 0)
        train = 262144;
    if (train > n)
        train = n;
    if (train < lists)
        train = lists;
    int iterations = p->iterations > 0 ? p->iterations : 10;
    uint64_t seed = p->seed ? p->seed : 1;
    /* 2√lists: a share of the partitions that falls as they grow (a fixed share, lists/16
     * before, made a search's cost grow with n); text→image recall@9 0.99 at 1M, 0.97–0.99
     * at 200k (docs/index.md) */
    int nprobe = p->nprobe > 0 ? p->nprobe : default_nprobe(lists);
    if (nprobe > lists)
        nprobe = lists;
    int pq = p->pq != 0;
    if (pq && d % PQ_DIMS_MULTIPLE != 0)
        return vdx_fail(err, "index: product quantisation needs a dimension divisible by %d "
                             "(this collection has %d)",
                        PQ_DIMS_MULTIPLE, d);
    int pq_m = pq ? d / PQ_DSUB : 0;
    int64_t pq_train_rows = train < PQ_TRAIN ? train : PQ_TRAIN;
    int pq_ksub = pq_train_rows < PQ_KSUB ? (int)pq_train_rows : PQ_KSUB;
    float *codebooks = NULL, *pq_res = NULL;

    const int64_t block = 4096;
    float *x = malloc((size_t)train * (size_t)d * sizeof *x);
    float *c = malloc((size_t)lists * (size_t)d * sizeof *c);
    double *sums = malloc((size_t)lists * (size_t)d * sizeof *sums);
    int64_t *counts = malloc((size_t)lists * sizeof *counts);
    float *scores = malloc((size_t)block * (size_t)lists * sizeof *scores);
    uint32_t *assign = malloc((size_t)(train > n ? train : n) * sizeof *assign);
    float *buf = malloc((size_t)block * (size_t)d * sizeof *buf);
    float *maxabs = calloc((size_t)d, sizeof *maxabs);
    uint64_t *cursor = NULL;
    char tmp[4300];
    int fd = -1, rc = -1;
    uint8_t *out = MAP_FAILED;
    uint64_t size = 0;
    tmp[0] = 0;
    if (!x || !c || !sums || !counts || !scores || !assign || !buf || !maxabs) {
        vdx_fail(err, "index: out of memory for %lld training rows of %d lists",
                 (long long)train, lists);
        goto done;
    }
    /* training sample: evenly spaced rows */
    for (int64_t i = 0; i < train; i++)
        widen(m, (int64_t)((__int128)i * n / train), x + (size_t)i * (size_t)d);
    /* initial centres: distinct sample rows, a seeded partial shuffle */
    {
        int64_t *pick = malloc((size_t)train * sizeof *pick);
        if (!pick) {
            vdx_fail(err, "index: out of memory");
            goto done;
        }
        for (int64_t i = 0; i < train; i++)
            pick[i] = i;
        for (int l = 0; l < lists; l++) {
            int64_t j = l + (int64_t)(mix64(seed ^ (uint64_t)l) % (uint64_t)(train - l));
            int64_t t = pick[l];
            pick[l] = pick[j];
            pick[j] = t;
            memcpy(c + (size_t)l * d, x + (size_t)pick[l] * d, (size_t)d * sizeof *c);
        }
        free(pick);
    }
    for (int it = 0; it < iterations; it++) {
        progress(p, "training", (double)it / iterations);
        for (int64_t i = 0; i < train; i += block) {
            int64_t b = train - i < block ? train - i : block;
            assign_block(x + (size_t)i * d, b, c, lists, d, scores, assign + i);
        }
        memset(sums, 0, (size_t)lists * d * sizeof *sums);
        memset(counts, 0, (size_t)lists * sizeof *counts);
        for (int64_t i = 0; i < train; i++) {
            double *s = sums + (size_t)assign[i] * d;
            const float *v = x + (size_t)i * d;
            for (int j = 0; j < d; j++)
                s[j] += v[j];
            counts[assign[i]]++;
        }
        for (int l = 0; l < lists; l++) {
            float *cl = c + (size_t)l * d;
            if (counts[l] == 0) { /* an empty partition takes a random sample row */
                int64_t r = (int64_t)(mix64(seed ^ ((uint64_t)it << 32) ^ (uint64_t)l) %
                                      (uint64_t)train);
                memcpy(cl, x + (size_t)r * d, (size_t)d * sizeof *cl);
                continue;
            }
            for (int j = 0; j < d; j++)
                cl[j] = (float)sums[(size_t)l * d + j];
            normalize(cl, d);
        }
    }
    if (pq) { /* the sub-quantisers, on the residuals of evenly spaced sample rows */
        progress(p, "training", 1.0);
        pq_res = malloc((size_t)pq_train_rows * d * sizeof *pq_res);
        codebooks = malloc((size_t)pq_m * pq_ksub * PQ_DSUB * sizeof *codebooks);
        if (!pq_res || !codebooks) {
            vdx_fail(err, "index: out of memory for the product quantiser");
            goto done;
        }
        for (int64_t i = 0; i < pq_train_rows; i++)
            memcpy(pq_res + (size_t)i * d, x + (size_t)(i * train / pq_train_rows) * d,
                   (size_t)d * sizeof *pq_res);
        for (int64_t i = 0; i < pq_train_rows; i += block) {
            int64_t b = pq_train_rows - i < block ? pq_train_rows - i : block;
            assign_block(pq_res + (size_t)i * d, b, c, lists, d, scores, assign + i);
            for (int64_t r = 0; r < b; r++) {
                float *v = pq_res + (size_t)(i + r) * d;
                const float *cl = c + (size_t)assign[i + r] * d;
                for (int j = 0; j < d; j++)
                    v[j] -= cl[j];
            }
        }
        if (pq_train(pq_res, pq_train_rows, d, pq_ksub, iterations, seed, codebooks) != 0) {
            vdx_fail(err, "index: out of memory training the product quantiser");
            goto done;
        }
        free(pq_res);
        pq_res = NULL;
    }
    free(x);
    x = NULL;
    /* every row to its partition; the largest residual per dimension */
    memset(counts, 0, (size_t)lists * sizeof *counts);
    for (int64_t i = 0; i < n; i += block) {
        progress(p, "assigning", (double)i / n);
        int64_t b = n - i < block ? n - i : block;
        for (int64_t r = 0; r < b; r++)
            widen(m, i + r, buf + (size_t)r * d);
        assign_block(buf, b, c, lists, d, scores, assign + i);
        for (int64_t r = 0; r < b; r++) {
            const float *v = buf + (size_t)r * d, *cl = c + (size_t)assign[i + r] * d;
            for (int j = 0; j < d; j++) {
                float a = fabsf(v[j] - cl[j]);
                if (a > maxabs[j])
                    maxabs[j] = a;
            }
            counts[assign[i + r]]++;
        }
    }
    /* the file, mapped for writing */
    ivf_header h = {0};
    memcpy(h.magic, IVF_MAGIC, 8);
    h.version = IVF_VERSION;
    h.dims = (uint32_t)d;
    h.lists = (uint32_t)lists;
    h.nprobe = (uint32_t)nprobe;
    h.rows = (uint64_t)n;
    h.stamp = p->stamp;
    h.train_rows = (uint32_t)train;
    h.iterations = (uint32_t)iterations;
    h.built = (int64_t)time(NULL);
    h.off_scale = IVF_HEADER;
    h.off_centres = ALIGN64(h.off_scale + (uint64_t)d * 4);
    h.off_starts = ALIGN64(h.off_centres + (uint64_t)lists * d * 4);
    h.off_rows = ALIGN64(h.off_starts + ((uint64_t)lists + 1) * 8);
    if (pq) {
        uint64_t blocks = 0;
        for (int l = 0; l < lists; l++)
            blocks += ((uint64_t)counts[l] + PQ_BLOCK - 1) / PQ_BLOCK;
        h.version = IVF_VERSION_PQ;
        h.pq_m = (uint32_t)pq_m;
        h.pq_ksub = (uint32_t)pq_ksub;
        h.rerank = p->rerank > 0 ? (uint32_t)p->rerank : 0;
        h.off_codebooks = ALIGN64(h.off_rows + (uint64_t)n * 4);
        h.off_codes = ALIGN64(h.off_codebooks + (uint64_t)pq_m * pq_ksub * PQ_DSUB * 4);
        h.file_size = size = ALIGN64(h.off_codes + blocks * pq_block_bytes(pq_m));
    } else {
        h.off_codes = ALIGN64(h.off_rows + (uint64_t)n * 4);
        h.file_size = size = ALIGN64(h.off_codes + (uint64_t)n * d);
    }
    remove_stale_temps(path);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        vdx_fail(err, "index: cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    out = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (out == MAP_FAILED) {
        vdx_fail(err, "index: cannot map %s (%llu bytes): %s", tmp, (unsigned long long)size,
                 strerror(errno));
        goto done;
    }
    float *scale = (float *)(out + h.off_scale);
    for (int j = 0; j < d; j++)
        scale[j] = maxabs[j] > 0 ? maxabs[j] / 127.0f : 1.0f;
    memcpy(out + h.off_centres, c, (size_t)lists * d * sizeof *c);
    uint64_t *starts = (uint64_t *)(out + h.off_starts);
    cursor = malloc((size_t)lists * sizeof *cursor);
    if (!cursor) {
        vdx_fail(err, "index: out of memory");
        goto done;
    }
    starts[0] = 0;
    for (int l = 0; l < lists; l++) {
        starts[l + 1] = starts[l] + (uint64_t)counts[l];
        cursor[l] = starts[l];
    }
    uint32_t *rows = (uint32_t *)(out + h.off_rows);
    int8_t *codes = (int8_t *)(out + h.off_codes);
    float *inv = malloc((size_t)d * sizeof *inv);
    if (!inv) {
        vdx_fail(err, "index: out of memory");
        goto done;
    }
    for (int j = 0; j < d; j++)
        inv[j] = 1.0f / scale[j];
    if (pq) { /* block by block: residuals, then each sub-quantiser's nearest centroid */
        memcpy(out + h.off_codebooks, codebooks, (size_t)pq_m * pq_ksub * PQ_DSUB * 4);
        uint8_t *block_codes = malloc((size_t)block * pq_m);
        uint64_t *first_block = malloc(((size_t)lists + 1) * sizeof *first_block);
        if (!block_codes || !first_block) {
            free(block_codes);
            free(first_block);
            free(inv);
            vdx_fail(err, "index: out of memory");
            goto done;
        }
        pq_block_table(starts, (uint32_t)lists, first_block);
        for (int64_t i = 0; i < n; i += block) {
            progress(p, "encoding", (double)i / n);
            int64_t b = n - i < block ? n - i : block;
            for (int64_t r = 0; r < b; r++) {
                float *v = buf + (size_t)r * d;
                widen(m, i + r, v);
                const float *cl = c + (size_t)assign[i + r] * d;
                for (int j = 0; j < d; j++)
                    v[j] -= cl[j];
            }
#pragma omp parallel for schedule(static)
            for (int s = 0; s < pq_m; s++) {
                const float *cb = codebooks + (size_t)s * pq_ksub * PQ_DSUB;
                pq_assign(buf + (size_t)s * PQ_DSUB, b, d, cb, pq_ksub, block_codes + s, pq_m);
            }
            for (int64_t r = 0; r < b; r++) {
                uint32_t l = assign[i + r];
                uint64_t pos = cursor[l]++, k = pos - starts[l];
                rows[pos] = (uint32_t)(i + r);
                pq_put_code((uint8_t *)codes + (first_block[l] + k / PQ_BLOCK) * pq_block_bytes(pq_m),
                            pq_m, (int)(k % PQ_BLOCK), block_codes + (size_t)r * pq_m);
            }
        }
        free(block_codes);
        free(first_block);
    }
    for (int64_t i = 0; i < n && !pq; i++) {
        if (i % 65536 == 0)
            progress(p, "encoding", (double)i / n);
        widen(m, i, buf);
        uint32_t l = assign[i];
        uint64_t pos = cursor[l]++;
        rows[pos] = (uint32_t)i;
        const float *cl = c + (size_t)l * d;
        int8_t *code = codes + pos * (uint64_t)d;
        for (int j = 0; j < d; j++) {
            float q = nearbyintf((buf[j] - cl[j]) * inv[j]);
            code[j] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
        }
    }
    free(inv);
    progress(p, "writing", 1.0);
    h.build_seconds = now_s() - t0;
    memcpy(out, &h, sizeof h);
    if (msync(out, size, MS_SYNC) != 0 || fsync(fd) != 0) {
        vdx_fail(err, "index: writing %s: %s", tmp, strerror(errno));
        goto done;
    }
    munmap(out, size);
    out = MAP_FAILED;
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        vdx_fail(err, "index: cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto done;
    }
    tmp[0] = 0;
    fsync_dir_of(path);
    rc = 0;
done:
    if (out != MAP_FAILED)
        munmap(out, size);
    if (fd >= 0)
        close(fd);
    if (tmp[0])
        unlink(tmp);
    free(x);
    free(c);
    free(sums);
    free(counts);
    free(scores);
    free(assign);
    free(buf);
    free(maxabs);
    free(cursor);
    free(codebooks);
    free(pq_res);
    return rc;
}

/* ---- open ---- */

vdx_ivf *ivf_open(const char *path, int dims, vdx_error *err)
{
    err->message[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            vdx_fail(err, "index %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    vdx_ivf *ix = calloc(1, sizeof *ix);
    if (!ix || fstat(fd, &st) != 0) {
        vdx_fail(err, "index %s: %s", path, ix ? strerror(errno) : "out of memory");
        goto fail;
    }
    if ((size_t)st.st_size < IVF_HEADER) {
        vdx_fail(err, "index %s: %lld bytes is shorter than its header", path,
                 (long long)st.st_size);
        goto fail;
    }
    ix->map_size = (size_t)st.st_size;
    ix->map = mmap(NULL, ix->map_size, PROT_READ, MAP_SHARED, fd, 0);
    if (ix->map == MAP_FAILED) {
        ix->map = NULL;
        vdx_fail(err, "index %s: cannot map: %s", path, strerror(errno));
        goto fail;
    }
    memcpy(&ix->h, ix->map, sizeof ix->h);
    const ivf_header *h = &ix->h;
    uint64_t d = h->dims;
    if (!memcmp(h->magic, IVF_MAGIC, 8) && h->version == IVF_VERSION_PQ8) {
        vdx_fail(err, "index %s: 8-bit product codes of an older vdx; rebuild the index with "
                      "'vdx index build'", path);
        goto fail;
    }
    if (memcmp(h->magic, IVF_MAGIC, 8) ||
        (h->version != IVF_VERSION && h->version != IVF_VERSION_PQ)) {
        vdx_fail(err, "index %s: not a vdx index (version %u)", path, h->version);
        goto fail;
    }
    int pq = h->version == IVF_VERSION_PQ;
    uint64_t codes_at = pq ? ALIGN64(h->off_codebooks + (uint64_t)h->pq_m * h->pq_ksub * PQ_DSUB * 4)
                           : ALIGN64(h->off_rows + h->rows * 4);
    int header_ok = (int)h->dims == dims && d % (pq ? PQ_DIMS_MULTIPLE : 1) == 0 &&
                    h->lists >= 1 && h->lists <= h->rows && h->rows <= UINT32_MAX &&
                    (!pq || ((uint64_t)h->pq_m * PQ_DSUB == d && h->pq_ksub >= 1 &&
                             h->pq_ksub <= PQ_KSUB &&
                             h->off_codebooks == ALIGN64(h->off_rows + h->rows * 4))) &&
                    h->off_scale == IVF_HEADER && h->off_centres == ALIGN64(h->off_scale + d * 4) &&
                    h->off_starts == ALIGN64(h->off_centres + (uint64_t)h->lists * d * 4) &&
                    h->off_rows == ALIGN64(h->off_starts + ((uint64_t)h->lists + 1) * 8) &&
                    h->off_codes == codes_at && h->off_codes <= ix->map_size &&
                    h->file_size == ix->map_size;
    if (header_ok && !pq)
        header_ok = h->file_size == ALIGN64(h->off_codes + h->rows * d);
    if (!header_ok) {
        vdx_fail(err, "index %s: inconsistent header (dims %u of %d, %llu rows, %llu bytes)",
                 path, h->dims, dims, (unsigned long long)h->rows,
                 (unsigned long long)ix->map_size);
        goto fail;
    }
    ix->scale = (const float *)(ix->map + h->off_scale);
    ix->centres = (const float *)(ix->map + h->off_centres);
    ix->starts = (const uint64_t *)(ix->map + h->off_starts);
    ix->rows = (const uint32_t *)(ix->map + h->off_rows);
    ix->codes = (const int8_t *)(ix->map + h->off_codes);
    if (pq) { /* a code past pq_ksub reads a zero table entry (pq_query_init): harmless */
        ix->codebooks = (const float *)(ix->map + h->off_codebooks);
        for (uint64_t j = 0; j < (uint64_t)h->pq_m * h->pq_ksub * PQ_DSUB; j++)
            if (!isfinite(ix->codebooks[j])) {
                vdx_fail(err, "index %s: product quantiser centroid %llu is not finite", path,
                         (unsigned long long)(j / PQ_DSUB));
                goto fail;
            }
    }
    for (uint64_t j = 0; j < d; j++)
        if (!(ix->scale[j] > 0) || !isfinite(ix->scale[j])) {
            vdx_fail(err, "index %s: scale of dimension %llu is not a positive number", path,
                     (unsigned long long)j);
            goto fail;
        }
    for (uint64_t j = 0; j < (uint64_t)h->lists * d; j++)
        if (!isfinite(ix->centres[j])) {
            vdx_fail(err, "index %s: partition centre %llu is not finite", path,
                     (unsigned long long)(j / d));
            goto fail;
        }
    if (ix->starts[0] != 0 || ix->starts[h->lists] != h->rows) {
        vdx_fail(err, "index %s: partition table does not cover %llu rows", path,
                 (unsigned long long)h->rows);
        goto fail;
    }
    for (uint32_t l = 0; l < h->lists; l++)
        if (ix->starts[l + 1] < ix->starts[l]) {
            vdx_fail(err, "index %s: partition %u ends before it starts", path, l);
            goto fail;
        }
    /* every row exactly once (a row listed twice would come back twice from a search) */
    uint64_t *listed = calloc((size_t)(h->rows + 63) / 64, sizeof *listed);
    if (!listed) {
        vdx_fail(err, "index %s: out of memory", path);
        goto fail;
    }
    for (uint64_t i = 0; i < h->rows; i++) {
        uint32_t r = ix->rows[i];
        if (r >= h->rows || (listed[r / 64] >> (r % 64) & 1)) {
            if (r >= h->rows)
                vdx_fail(err, "index %s: entry %llu names row %u of %llu", path,
                         (unsigned long long)i, r, (unsigned long long)h->rows);
            else
                vdx_fail(err, "index %s: entry %llu names row %u a second time", path,
                         (unsigned long long)i, r);
            free(listed);
            goto fail;
        }
        listed[r / 64] |= 1ull << (r % 64);
    }
    free(listed);
    if (pq) {
        ix->pq_blocks = malloc(((size_t)h->lists + 1) * sizeof *ix->pq_blocks);
        if (!ix->pq_blocks) {
            vdx_fail(err, "index %s: out of memory", path);
            goto fail;
        }
        pq_block_table(ix->starts, h->lists, ix->pq_blocks);
        if (h->file_size != ALIGN64(h->off_codes + ix->pq_blocks[h->lists] * pq_block_bytes((int)h->pq_m))) {
            vdx_fail(err, "index %s: %llu bytes do not hold the codes of %llu rows in %u partitions",
                     path, (unsigned long long)ix->map_size, (unsigned long long)h->rows, h->lists);
            goto fail;
        }
    }
    close(fd);
    return ix;
fail:
    close(fd);
    ivf_close(ix);
    return NULL;
}

void ivf_close(vdx_ivf *ix)
{
    if (!ix)
        return;
    if (ix->map)
        munmap(ix->map, ix->map_size);
    free(ix->pq_blocks);
    free(ix);
}

int64_t ivf_rows(const vdx_ivf *ix) { return (int64_t)ix->h.rows; }
uint64_t ivf_stamp(const vdx_ivf *ix) { return ix->h.stamp; }

void ivf_describe(const vdx_ivf *ix, cJSON *out)
{
    const ivf_header *h = &ix->h;
    char built[32];
    clock_utc_iso((double)h->built, built);
    cJSON_AddStringToObject(out, "kind", h->version == IVF_VERSION_PQ ? "ivf-pq" : "ivf-int8");
    if (h->version == IVF_VERSION_PQ) {
        cJSON_AddNumberToObject(out, "pq_bytes", h->pq_m / 2); /* 4 bits per sub-quantiser */
        cJSON_AddNumberToObject(out, "rerank", h->rerank);
    }
    cJSON_AddNumberToObject(out, "rows", (double)h->rows);
    cJSON_AddNumberToObject(out, "lists", h->lists);
    cJSON_AddNumberToObject(out, "nprobe", h->nprobe);
    cJSON_AddNumberToObject(out, "train_rows", h->train_rows);
    cJSON_AddNumberToObject(out, "iterations", h->iterations);
    cJSON_AddStringToObject(out, "built", built);
    cJSON_AddNumberToObject(out, "build_seconds", round(h->build_seconds * 10) / 10);
    cJSON_AddNumberToObject(out, "bytes_on_disk", (double)h->file_size);
    cJSON_AddNumberToObject(out, "bytes_per_item", round((double)h->file_size / h->rows * 10) / 10);
}

/* ---- search ---- */

typedef struct cand {
    float approx;
    int64_t row;
} cand;

typedef struct sort_ctx {
    vdx_scan_tie_break tie_break;
    const void *ctx;
} sort_ctx;

static int by_dist(const void *a, const void *b, void *arg)
{
    const vdx_scan_hit *x = a, *y = b;
    const sort_ctx *s = arg;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    return s->tie_break(x->row, y->row, s->ctx);
}

static int by_estimate_desc(const void *a, const void *b)
{
    float x = ((const cand *)a)->approx, y = ((const cand *)b)->approx;
    return x > y ? -1 : x < y ? 1 : 0;
}

/* Partitions best score first, ties by number. */
static int list_before(const float *ls, uint32_t a, uint32_t b)
{
    return ls[a] > ls[b] || (ls[a] == ls[b] && a < b);
}

static int by_list_score(const void *a, const void *b, void *arg)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return list_before(arg, x, y) ? -1 : list_before(arg, y, x) ? 1 : 0;
}

/* order[0, top) = the `top` best partitions, best first; order[top, lists) = the others,
 * unsorted (sort them before visiting them in order). A heap of the best `top` so far
 * (its root the worst of them) costs O(lists log top) instead of sorting all of them. */
static void rank_lists(const float *ls, int lists, int64_t top, uint32_t *order)
{
    if (top < 1)
        top = 1;
    if (top >= lists) {
        for (int l = 0; l < lists; l++)
            order[l] = (uint32_t)l;
        qsort_r(order, (size_t)lists, sizeof *order, by_list_score, (void *)ls);
        return;
    }
    int64_t n = 0;
    for (uint32_t l = 0; l < (uint32_t)lists; l++) {
        int64_t i;
        if (n < top) { /* push, then up while before its parent */
            i = n++;
            order[i] = l;
            while (i > 0 && list_before(ls, order[(i - 1) / 2], order[i])) {
                uint32_t t = order[i];
                order[i] = order[(i - 1) / 2];
                order[(i - 1) / 2] = t;
                i = (i - 1) / 2;
            }
            continue;
        }
        if (!list_before(ls, l, order[0])) {
            order[l] = l; /* not among the best: after them (slot l is past the heap) */
            continue;
        }
        order[l] = order[0]; /* the evicted worst goes after them */
        order[0] = l;
        i = 0;
        for (;;) { /* down while a child ranks after it */
            int64_t c = 2 * i + 1, w = i;
            if (c < top && list_before(ls, order[w], order[c]))
                w = c;
            if (c + 1 < top && list_before(ls, order[w], order[c + 1]))
                w = c + 1;
            if (w == i)
                break;
            uint32_t t = order[i];
            order[i] = order[w];
            order[w] = t;
            i = w;
        }
    }
    qsort_r(order, (size_t)top, sizeof *order, by_list_score, (void *)ls);
}

/* Min-heap of the best `k` estimates: heap[0] is the k-th best so far. */
static void heap_push(float *heap, int64_t *n, int64_t k, float v)
{
    if (*n < k) {
        int64_t i = (*n)++;
        heap[i] = v;
        while (i > 0 && heap[(i - 1) / 2] > heap[i]) {
            float t = heap[i];
            heap[i] = heap[(i - 1) / 2];
            heap[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (v > heap[0]) {
        heap[0] = v;
        int64_t i = 0;
        for (;;) {
            int64_t l = 2 * i + 1, r = l + 1, s = i;
            if (l < k && heap[l] < heap[s])
                s = l;
            if (r < k && heap[r] < heap[s])
                s = r;
            if (s == i)
                break;
            float t = heap[i];
            heap[i] = heap[s];
            heap[s] = t;
            i = s;
        }
    }
}

static int allowed_row(const uint64_t *allowed, int64_t r)
{
    return !allowed || (allowed[r / 64] >> (r % 64) & 1);
}

/* The allowed bitmap is read late (visit_ctx) when at most 1 row in this many is left out. */
#define LATE_CHECK_SHARE 16

/* One member's share of a search: the allowed rows it estimated (seen; with the late
 * check, every row), the heap of its best `keep` estimates and the candidates: the rows
 * whose estimate was within `margin` of the heap's least when they were seen. The heap's
 * least only rises, and the merged heap's least is at least any member's, so a row left
 * out can never reach the final floor (the want-th best estimate less 2E) that the
 * rerank starts from. */
typedef struct visit_state {
    cand *cands;
    int64_t n, cap, n_heap, seen;
    float *heap;
} visit_state;

/* What every member reads while visiting partitions. */
typedef struct visit_ctx {
    const vdx_ivf *ix;
    const vdx_ivf_query *q;
    const float *ls;
    const code_query *cq; /* int8 */
    const pq_query *pq;   /* pq */
    int64_t indexed, keep;
    float margin; /* int8: 2E (and a little for the rounding of the floor); pq: 0 */
    /* Few rows excluded (labelled items, no selective filter): every row is estimated
     * and the allowed bitmap read only for the few that could be candidates, instead
     * of for every row (a random read per row that cost more than the estimates the
     * excluded rows add). `seen` then counts excluded rows too; `unseen` is how many it
     * may overcount. */
    int late_check;
    int64_t unseen;
} visit_ctx;

/* Row r, estimated at a, joins the heap and the candidates when it could be one; -1 when
 * memory runs out. */
static int offer_row(const visit_ctx *v, visit_state *st, int64_t r, float a)
{
    if (st->n_heap == v->keep && a < st->heap[0] - v->margin)
        return 0; /* cannot be a candidate (most rows end here) */
    if (v->late_check && !allowed_row(v->q->allowed, r))
        return 0;
    heap_push(st->heap, &st->n_heap, v->keep, a);
    if (st->n_heap == v->keep && a < st->heap[0] - v->margin)
        return 0;
    if (st->n == st->cap) {
        int64_t cap = st->cap ? st->cap * 2 : 1024;
        cand *grown = realloc(st->cands, (size_t)cap * sizeof *grown);
        if (!grown)
            return -1;
        st->cands = grown;
        st->cap = cap;
    }
    st->cands[st->n].approx = a;
    st->cands[st->n].row = r;
    st->n++;
    return 0;
}

/* Whether row r is estimated at all: indexed and, unless read late, allowed. */
static int row_visited(const visit_ctx *v, int64_t r)
{
    return r < v->indexed && (v->late_check || allowed_row(v->q->allowed, r));
}

/* Estimates every allowed row of partition l into st; -1 when memory runs out. */
static int visit_list(const visit_ctx *v, uint32_t l, visit_state *st)
{
    const vdx_ivf *ix = v->ix;
    float base = v->ls[l];
    uint64_t first = ix->starts[l], end = ix->starts[l + 1];
    if (v->pq) { /* a block of PQ_BLOCK rows at a time */
        const pq_query *pq = v->pq;
        int pq_m = (int)ix->h.pq_m;
        uint64_t bytes = pq_block_bytes(pq_m);
        const uint8_t *block = (const uint8_t *)ix->codes + ix->pq_blocks[l] * bytes;
        /* every row is visited (no bitmap read first, the whole index in use): count
         * the block's rows at once, and pass on only those whose sum can reach the heap */
        int every_row = (v->late_check || !v->q->allowed) && v->indexed >= (int64_t)ix->h.rows;
        uint16_t sums[PQ_BLOCK];
        for (uint64_t at = first; at < end; at += PQ_BLOCK, block += bytes) {
            pq->sums(block, pq->lut, pq_m, sums);
            int n = end - at < PQ_BLOCK ? (int)(end - at) : PQ_BLOCK;
            if (!every_row) {
                for (int i = 0; i < n; i++) {
                    int64_t r = ix->rows[at + i];
                    if (!row_visited(v, r))
                        continue;
                    st->seen++;
                    if (offer_row(v, st, r, base + (pq->low + pq->step * (float)sums[i])) != 0)
                        return -1;
                }
                continue;
            }
            st->seen += n;
            /* a sum below `least` cannot reach the heap's least (one less than the
             * float bound, for its rounding; offer_row decides exactly) */
            int32_t least = -1;
            if (st->n_heap == v->keep) {
                float need = (st->heap[0] - v->margin - base - pq->low) / pq->step;
                least = !(need > -2) ? -1 : need > 70000 ? 70000 : (int32_t)floorf(need) - 1;
            }
            uint32_t pass = 0;
            for (int i = 0; i < n; i++)
                pass |= (uint32_t)((int32_t)sums[i] >= least) << i;
            for (; pass; pass &= pass - 1) {
                int i = __builtin_ctz(pass);
                if (offer_row(v, st, ix->rows[at + i],
                              base + (pq->low + pq->step * (float)sums[i])) != 0)
                    return -1;
            }
        }
        return 0;
    }
    int d = (int)ix->h.dims;
    for (uint64_t pos = first; pos < end; pos++) {
        int64_t r = ix->rows[pos];
        if (!row_visited(v, r))
            continue;
        st->seen++;
        if (offer_row(v, st, r, base + v->cq->dot(v->cq, ix->codes + pos * (uint64_t)d, d)) != 0)
            return -1;
    }
    return 0;
}

/* Below this many partitions to visit a search runs on its calling thread. */
#define VISIT_PARALLEL_MIN 8

int64_t ivf_search(const vdx_ivf *ix, const vdx_scan_matrix *m, const vdx_ivf_query *q,
                       vdx_scan_hit *out, vdx_error *err)
{
    const ivf_header *h = &ix->h;
    int d = (int)h->dims, lists = (int)h->lists;
    int64_t want = q->want;
    if (want <= 0 || m->n == 0)
        return 0;
    int64_t indexed = (int64_t)h->rows < m->n ? (int64_t)h->rows : m->n;
    /* partitions to visit: nprobe, scaled up by the share of rows a filter removes */
    int64_t nprobe = q->nprobe > 0 ? q->nprobe : (int64_t)h->nprobe;
    if (q->n_allowed < m->n && q->n_allowed > 0)
        nprobe = (int64_t)ceil((double)nprobe * (double)m->n / (double)q->n_allowed);
    if (nprobe > lists)
        nprobe = lists;
    float *ls = malloc((size_t)lists * sizeof *ls);
    uint32_t *order = malloc((size_t)lists * sizeof *order);
    int pq = h->version == IVF_VERSION_PQ;
    code_query cq = {0};
    int cq_failed = !pq && code_query_init(&cq, ix, q->q) != 0;
    /* pq: the best `keep` estimates are re-scored (no bound: approximate); int8: `want`
     * and every estimate within 2E of them (exact among the visited partitions) */
    int64_t keep = want;
    if (pq) {
        keep = h->rerank ? (int64_t)h->rerank : want * 20 > 1000 ? want * 20 : 1000;
        const char *env = getenv("VDX_INDEX_RERANK");
        if (env && atoll(env) > 0)
            keep = atoll(env);
        if (keep < want)
            keep = want;
    }
    float *heap = malloc((size_t)keep * sizeof *heap);
    pq_query pq_q = {0};
    int pq_failed = pq && pq_query_init(&pq_q, ix, q->q) != 0;
    cand *cands = NULL;
    visit_state *states = NULL;
    int threads = 1;
    int64_t n_cands = 0, n_heap = 0;
    int64_t *rr = NULL;
    float *dots = NULL;
    vdx_scan_hit *hits = NULL;
    int64_t result = -1;
    if (!ls || !order || cq_failed || !heap || pq_failed) {
        vdx_fail(err, "search: out of memory");
        goto done;
    }
    /* the centres' scores with the scans' kernel on OpenMP's team (OpenBLAS's own
     * threads would spin on the cores for a while after each call) */
    vdx_scan_matrix centres = {ix->centres, lists, d, VDX_VECTOR_F32};
    if (scan_dots(&centres, q->q, NULL, ls, err) != 0)
        goto done;
    rank_lists(ls, lists, nprobe, order);
    double bound = cq.bound;
    /* the first nprobe partitions, shared out among the team's members (every member's
     * candidates and heap are merged below: the same set whatever the split); then one
     * by one until `want` allowed rows were seen */
    int late_check = q->allowed && (m->n - q->n_allowed) * LATE_CHECK_SHARE <= m->n;
    visit_ctx v = {ix, q, ls, pq ? NULL : &cq, pq ? &pq_q : NULL, indexed, keep,
                   (float)(2 * bound * (1 + 1e-6) + 1e-6), late_check,
                   late_check ? m->n - q->n_allowed : 0};
    threads = nprobe >= VISIT_PARALLEL_MIN ? omp_get_max_threads() : 1;
    threads = team_claim(threads > (int)nprobe ? (int)nprobe : threads);
    states = calloc((size_t)threads, sizeof *states);
    int failed = !states;
    for (int t = 1; !failed && t < threads; t++)
        failed = !(states[t].heap = malloc((size_t)keep * sizeof *states[t].heap));
    if (!failed) {
        states[0].heap = heap;
        heap = NULL; /* states[0] owns it */
#pragma omp parallel num_threads(threads) if (threads > 1) reduction(| : failed)
        {
            int t = threads > 1 ? omp_get_thread_num() : 0;
            for (int64_t li = t; li < nprobe && !failed; li += threads)
                failed = visit_list(&v, order[li], &states[t]) != 0;
        }
    }
    team_release(threads);
    visit_state *all = states;
    for (int t = 1; !failed && t < threads; t++) {
        if (all->n + states[t].n > all->cap) {
            int64_t cap = all->n + states[t].n;
            cand *grown = realloc(all->cands, (size_t)cap * sizeof *grown);
            failed = !grown;
            if (grown) {
                all->cands = grown;
                all->cap = cap;
            }
        }
        if (!failed) {
            memcpy(all->cands + all->n, states[t].cands, (size_t)states[t].n * sizeof *all->cands);
            all->n += states[t].n;
            all->seen += states[t].seen;
            for (int64_t i = 0; i < states[t].n_heap; i++)
                heap_push(all->heap, &all->n_heap, keep, states[t].heap[i]);
        }
    }
    if (!failed && nprobe < lists && all->seen - v.unseen < want) /* the rest, best first */
        qsort_r(order + nprobe, (size_t)(lists - nprobe), sizeof *order, by_list_score, ls);
    for (int64_t li = nprobe; !failed && li < lists && all->seen - v.unseen < want; li++)
        failed = visit_list(&v, order[li], all) != 0;
    if (failed) {
        vdx_fail(err, "search: out of memory");
        goto done;
    }
    cands = all->cands;
    n_cands = all->n;
    n_heap = all->n_heap;
    heap = all->heap;
    all->cands = NULL;
    all->heap = NULL;
    /* rerank: the unindexed tail, then the estimates within 2E of the want-th best (int8;
     * pq: the `keep` best), best estimate first. With int8 codes the rerank stops at the
     * first estimate that cannot reach the want-th best exact score even with its whole
     * error E, less 1e-6 so that no skipped row can tie it once distances are rounded to
     * floats: the result stays the exact one among the visited rows. */
    float floor = n_heap < keep ? -INFINITY : (float)(heap[0] - 2 * bound);
    int64_t n_tail = 0, n_sel = 0;
    for (int64_t r = indexed; r < m->n; r++)
        n_tail += allowed_row(q->allowed, r);
    for (int64_t i = 0; i < n_cands; i++)
        if (cands[i].approx >= floor)
            cands[n_sel++] = cands[i];
    if (!pq)
        qsort(cands, (size_t)n_sel, sizeof *cands, by_estimate_desc);
    int64_t n_rr = 0;
    rr = malloc((size_t)(n_sel + n_tail + 1) * sizeof *rr);
    dots = malloc((size_t)(n_sel + n_tail + 1) * sizeof *dots);
    hits = malloc((size_t)(n_sel + n_tail + 1) * sizeof *hits);
    float *best = malloc((size_t)want * sizeof *best);
    if (!rr || !dots || !hits || !best) {
        free(best);
        vdx_fail(err, "search: out of memory");
        goto done;
    }
    for (int64_t r = indexed; r < m->n; r++)
        if (allowed_row(q->allowed, r))
            rr[n_rr++] = r;
    scan_dot_rows(m, q->q, rr, (size_t)n_rr, dots);
    int64_t n_best = 0;
    for (int64_t i = 0; i < n_rr; i++)
        heap_push(best, &n_best, want, dots[i]);
    /* int8: batches, to stop early; pq: all at once (shared out among the team) */
    int64_t batch = pq ? n_sel : 32;
    for (int64_t i = 0; i < n_sel; i += batch) {
        if (!pq && n_best == want && (double)cands[i].approx + bound + 1e-6 < best[0])
            break;
        int64_t end = i + batch < n_sel ? i + batch : n_sel, first = n_rr;
        for (int64_t j = i; j < end; j++)
            rr[n_rr++] = cands[j].row;
        scan_dot_rows(m, q->q, rr + first, (size_t)(n_rr - first), dots + first);
        for (int64_t j = first; j < n_rr; j++)
            heap_push(best, &n_best, want, dots[j]);
    }
    free(best);
    for (int64_t i = 0; i < n_rr; i++) {
        hits[i].row = rr[i];
        hits[i].dist = 1.0f - dots[i];
    }
    sort_ctx s = {q->tie_break, q->ctx};
    qsort_r(hits, (size_t)n_rr, sizeof *hits, by_dist, &s);
    result = n_rr < want ? n_rr : want;
    memcpy(out, hits, (size_t)result * sizeof *out);
done:
    for (int t = 0; states && t < threads; t++) {
        free(states[t].cands);
        free(states[t].heap);
    }
    free(states);
    free(ls);
    free(order);
    code_query_free(&cq);
    free(heap);
    free(pq_q.lut);
    free(cands);
    free(rr);
    free(dots);
    free(hits);
    return result;
}

int ivf_has_bound(const vdx_ivf *ix) { return ix->h.version == IVF_VERSION; }

/* The estimates of one member's partitions (member, member + members, ...) into out,
 * indexed by row (ivf_estimate_all). */
static void estimate_lists(const vdx_ivf *ix, const float *ls, const code_query *cq,
                           int64_t indexed, float *out, int member, int members)
{
    int d = (int)ix->h.dims;
    for (int64_t l = member; l < (int64_t)ix->h.lists; l += members)
        for (uint64_t pos = ix->starts[l]; pos < ix->starts[l + 1]; pos++) {
            int64_t r = ix->rows[pos];
            if (r < indexed)
                out[r] = ls[l] + cq->dot(cq, ix->codes + pos * (uint64_t)d, d);
        }
}

int ivf_estimate_all(const vdx_ivf *ix, const vdx_scan_matrix *m, const float *q, float *out,
                     double *bound, vdx_error *err)
{
    const ivf_header *h = &ix->h;
    int d = (int)h->dims, lists = (int)h->lists;
    if (h->version != IVF_VERSION)
        return vdx_fail(err, "index: product-quantised codes give no error bound");
    int64_t indexed = (int64_t)h->rows < m->n ? (int64_t)h->rows : m->n;
    float *ls = malloc((size_t)lists * sizeof *ls);
    code_query cq = {0};
    if (!ls || code_query_init(&cq, ix, q) != 0) {
        free(ls);
        code_query_free(&cq);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "index: out of memory");
    }
    vdx_scan_matrix centres = {ix->centres, lists, d, VDX_VECTOR_F32};
    int rc = scan_dots(&centres, q, NULL, ls, err);
    *bound = cq.bound;
    if (rc == 0) {
        int threads = team_claim(omp_get_max_threads() < lists ? omp_get_max_threads() : 1);
#pragma omp parallel num_threads(threads) if (threads > 1)
        estimate_lists(ix, ls, &cq, indexed, out, threads > 1 ? omp_get_thread_num() : 0,
                       threads);
        team_release(threads);
    }
    /* the rows appended after the build: exact */
    if (rc == 0 && indexed < m->n) {
        size_t row_bytes = (size_t)d * (m->type == VDX_VECTOR_F16 ? 2 : 4);
        vdx_scan_matrix tail = {(const uint8_t *)m->rows + (size_t)indexed * row_bytes,
                                m->n - indexed, d, m->type};
        rc = scan_dots(&tail, q, NULL, out + indexed, err);
    }
    free(ls);
    code_query_free(&cq);
    return rc;
}
