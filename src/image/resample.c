/* Pillow's BICUBIC resize (libImaging/Resample.c), reproduced to the bit: per-axis
 * filter weights computed in double, normalised to sum 1, rounded to 22-bit fixed point;
 * a horizontal pass into an 8-bit image, then a vertical pass, each accumulating from
 * 1 << 21 in int32 and clipping to 0..255. A pass whose size does not change is skipped.
 *
 * The weights of every output column and row are computed once per call, and only the
 * requested window of the output is produced: a 224x224 centre crop of a 1493x224
 * resize filters 224 columns, not 1493, and gives the same pixels. Each pass comes in
 * portable C and in AVX2 (chosen at run time, the same bytes; about 2x faster on an AMD
 * EPYC Zen 5, docs/clip-model.md). */
#include "image/image_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX2_PASS 1
#include <immintrin.h>
#endif

enum { PRECISION_BITS = 32 - 8 - 2 };

static double bicubic_filter(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Fixed-point weights of `count` consecutive outputs starting at `first`, for resizing
 * one axis from in_size to out_size: output i reads inputs start[i] .. start[i]+taps[i]-1
 * with weights weight[i*max_taps ...]. */
struct axis_weights {
    int count, max_taps;
    int *start, *taps;
    int32_t *weight;
};

static void axis_weights_free(struct axis_weights *a)
{
    free(a->start);
    free(a->taps);
    free(a->weight);
    a->start = a->taps = NULL;
    a->weight = NULL;
}

static int axis_weights_compute(int in_size, int out_size, int first, int count,
                                struct axis_weights *a)
{
    const double support_unit = 2.0; /* bicubic */
    const double scale = (double)in_size / out_size;
    const double filter_scale = scale < 1.0 ? 1.0 : scale;
    const double support = support_unit * filter_scale;
    const double inverse_filter_scale = 1.0 / filter_scale;
    a->count = count;
    a->max_taps = (int)ceil(support) * 2 + 1;
    a->start = malloc(sizeof *a->start * count);
    a->taps = malloc(sizeof *a->taps * count);
    a->weight = malloc(sizeof *a->weight * (size_t)count * a->max_taps);
    double *w = malloc(sizeof *w * a->max_taps);
    if (!a->start || !a->taps || !a->weight || !w) {
        free(w);
        axis_weights_free(a);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        const int xx = first + i;
        const double center = (xx + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        const int taps = xmax - xmin;
        double total = 0.0;
        for (int x = 0; x < taps; x++) {
            w[x] = bicubic_filter((x + xmin - center + 0.5) * inverse_filter_scale);
            total += w[x];
        }
        int32_t *k = a->weight + (size_t)i * a->max_taps;
        for (int x = 0; x < taps; x++) {
            const double v = total != 0.0 ? w[x] / total : w[x];
            k[x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS)
                                   : 0.5 + v * (1 << PRECISION_BITS));
        }
        a->start[i] = xmin;
        a->taps[i] = taps;
    }
    free(w);
    return 0;
}

static inline uint8_t clip8(int32_t v)
{
    if (v >= (1 << PRECISION_BITS << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

/* The portable passes: plain C, the horizontal one with vector-extension types, the
 * vertical one shaped for the auto-vectoriser (a bulk whose trip count is a multiple of
 * 32, then a scalar tail). With GCC on x86-64 they are also built for AVX2 (the compiler's
 * own vectorisation, 2.6x faster than the baseline build), which is what
 * VDX_RESAMPLE_KERNEL=portable runs on a CPU with AVX2; by default such a CPU runs the
 * hand-written AVX2 passes further down. The int32 arithmetic, and so every result, is
 * the same on every path. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* Rows processed together by the horizontal pass: their samples of one input column sit
 * side by side (channel-major), so each tap is three 8-lane multiply-adds (GCC/Clang
 * vector extensions keep the sums in registers). */
enum { ROW_BLOCK = 8, COLUMN_LANES = 3 * ROW_BLOCK };
typedef int32_t lanes8 __attribute__((vector_size(ROW_BLOCK * sizeof(int32_t))));

/* Rows src[0..rows) of width src_w → rows of the window's columns. `columns` holds, for
 * each input column the window reads, COLUMN_LANES int32: channel c of block row r at
 * c * ROW_BLOCK + r. */
VECTOR_CLONES
static void resample_rows_horizontal(const uint8_t *src, int src_w, int rows,
                                     const struct axis_weights *ax, int32_t *columns,
                                     uint8_t *dst)
{
    const size_t src_stride = (size_t)src_w * 3, dst_stride = (size_t)ax->count * 3;
    const int first = ax->start[0];
    const int end = ax->start[ax->count - 1] + ax->taps[ax->count - 1];
    const lanes8 rounding = (lanes8){0} + (1 << (PRECISION_BITS - 1));
    for (int y0 = 0; y0 < rows; y0 += ROW_BLOCK) {
        const int block = rows - y0 < ROW_BLOCK ? rows - y0 : ROW_BLOCK;
        for (int r = 0; r < ROW_BLOCK; r++) {
            /* a short last block repeats its last row; those sums are not stored */
            const uint8_t *in = src + (size_t)(y0 + (r < block ? r : block - 1)) * src_stride;
            for (int x = first; x < end; x++) {
                int32_t *col = columns + (size_t)(x - first) * COLUMN_LANES;
                col[0 * ROW_BLOCK + r] = in[3 * x];
                col[1 * ROW_BLOCK + r] = in[3 * x + 1];
                col[2 * ROW_BLOCK + r] = in[3 * x + 2];
            }
        }
        for (int i = 0; i < ax->count; i++) {
            const int32_t *k = ax->weight + (size_t)i * ax->max_taps;
            const int32_t *col = columns + (size_t)(ax->start[i] - first) * COLUMN_LANES;
            lanes8 sum[3] = {rounding, rounding, rounding}; /* R, G, B of 8 rows */
            for (int t = 0, n = ax->taps[i]; t < n; t++, col += COLUMN_LANES)
                for (int c = 0; c < 3; c++) {
                    lanes8 samples;
                    memcpy(&samples, col + c * ROW_BLOCK, sizeof samples);
                    sum[c] += samples * k[t];
                }
            for (int r = 0; r < block; r++) {
                uint8_t *out = dst + (size_t)(y0 + r) * dst_stride + 3 * (size_t)i;
                out[0] = clip8(sum[0][r]);
                out[1] = clip8(sum[1][r]);
                out[2] = clip8(sum[2][r]);
            }
        }
    }
}

#ifdef HAVE_AVX2_PASS
/* The horizontal pass with AVX2 (x86-64 CPUs since 2013; chosen at run time), the same
 * int32 arithmetic and so the same pixels (tests/test_golden_image.c compares it with the
 * portable pass). The portable pass spends most of its time moving single samples into
 * and out of its column layout; here that layout is made of bytes with 8 x 8 byte
 * transposes, each tap widens its 8 samples as it loads them, and each output column's
 * shifted sums are packed to bytes with saturation (clip8's results: a sum <= 0 shifts
 * to 0 or less, one of 1 << 30 or more to 256 or more) straight into the layout the way
 * back reads. `scratch`: COLUMN_LANES bytes per input column read and per output column,
 * plus 8. */

/* 8 rows of 8 bytes → 8 rows of 8 bytes, transposed: out[k] byte r = in[r] byte k,
 * output rows 2m and 2m + 1 in the low and high halves of t[m]. */
#define TRANSPOSE_8X8(a, t)                                                                  \
    do {                                                                                     \
        const __m128i p0_ = _mm_unpacklo_epi8(a[0], a[1]), p1_ = _mm_unpacklo_epi8(a[2], a[3]); \
        const __m128i p2_ = _mm_unpacklo_epi8(a[4], a[5]), p3_ = _mm_unpacklo_epi8(a[6], a[7]); \
        const __m128i q0_ = _mm_unpacklo_epi16(p0_, p1_), q1_ = _mm_unpackhi_epi16(p0_, p1_);   \
        const __m128i q2_ = _mm_unpacklo_epi16(p2_, p3_), q3_ = _mm_unpackhi_epi16(p2_, p3_);   \
        t[0] = _mm_unpacklo_epi32(q0_, q2_);                                                 \
        t[1] = _mm_unpackhi_epi32(q0_, q2_);                                                 \
        t[2] = _mm_unpacklo_epi32(q1_, q3_);                                                 \
        t[3] = _mm_unpackhi_epi32(q1_, q3_);                                                 \
    } while (0)

__attribute__((target("avx2")))
static void resample_rows_horizontal_avx2(const uint8_t *src, int src_w, int rows,
                                          const struct axis_weights *ax, uint8_t *scratch,
                                          uint8_t *dst)
{
    const size_t src_stride = (size_t)src_w * 3, dst_stride = (size_t)ax->count * 3;
    const int first = ax->start[0];
    const int end = ax->start[ax->count - 1] + ax->taps[ax->count - 1];
    const size_t n_in = (size_t)(end - first) * 3;
    uint8_t *columns = scratch, *results = scratch + n_in * ROW_BLOCK;
    const __m256i rounding = _mm256_set1_epi32(1 << (PRECISION_BITS - 1));
    const __m256i channel_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int y0 = 0; y0 < rows; y0 += ROW_BLOCK) {
        const int block = rows - y0 < ROW_BLOCK ? rows - y0 : ROW_BLOCK;
        const uint8_t *in[ROW_BLOCK];
        for (int r = 0; r < ROW_BLOCK; r++) /* a short last block repeats its last row */
            in[r] = src + (size_t)(y0 + (r < block ? r : block - 1)) * src_stride +
                    (size_t)first * 3;
        /* columns[j * 8 + r] = in[r][j] */
        size_t j = 0;
        for (; j + 8 <= n_in; j += 8) {
            __m128i a[ROW_BLOCK], t[4];
            for (int r = 0; r < ROW_BLOCK; r++)
                a[r] = _mm_loadl_epi64((const __m128i *)(in[r] + j));
            TRANSPOSE_8X8(a, t);
            for (int m = 0; m < 4; m++)
                _mm_storeu_si128((__m128i *)(columns + j * ROW_BLOCK) + m, t[m]);
        }
        for (; j < n_in; j++)
            for (int r = 0; r < ROW_BLOCK; r++)
                columns[j * ROW_BLOCK + r] = in[r][j];

        for (int i = 0; i < ax->count; i++) {
            const int32_t *k = ax->weight + (size_t)i * ax->max_taps;
            const uint8_t *col = columns + (size_t)(ax->start[i] - first) * COLUMN_LANES;
            __m256i red = rounding, green = rounding, blue = rounding; /* 8 rows each */
            for (int t = 0, n = ax->taps[i]; t < n; t++, col += COLUMN_LANES) {
                const __m256i w = _mm256_set1_epi32(k[t]);
                const __m256i r8 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)col));
                const __m256i g8 =
                    _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(col + 8)));
                const __m256i b8 =
                    _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(col + 16)));
                red = _mm256_add_epi32(red, _mm256_mullo_epi32(r8, w));
                green = _mm256_add_epi32(green, _mm256_mullo_epi32(g8, w));
                blue = _mm256_add_epi32(blue, _mm256_mullo_epi32(b8, w));
            }
            red = _mm256_srai_epi32(red, PRECISION_BITS);
            green = _mm256_srai_epi32(green, PRECISION_BITS);
            blue = _mm256_srai_epi32(blue, PRECISION_BITS);
            /* per 128-bit half: R0-3 G0-3 B0-3 B0-3 | R4-7 G4-7 B4-7 B4-7, as dwords
             * reordered to R0-7 G0-7 B0-7 (and 8 bytes the next column overwrites) */
            const __m256i packed = _mm256_packus_epi16(_mm256_packs_epi32(red, green),
                                                       _mm256_packs_epi32(blue, blue));
            _mm256_storeu_si256((__m256i *)(results + (size_t)i * COLUMN_LANES),
                                _mm256_permutevar8x32_epi32(packed, channel_order));
        }

        /* row r of the block: out[j] = results[j * 8 + r] */
        uint8_t *out = dst + (size_t)y0 * dst_stride;
        for (j = 0; j + 8 <= dst_stride; j += 8) {
            __m128i a[ROW_BLOCK], t[4];
            for (int r = 0; r < ROW_BLOCK; r++)
                a[r] = _mm_loadl_epi64((const __m128i *)(results + (j + r) * ROW_BLOCK));
            TRANSPOSE_8X8(a, t);
            for (int r = 0; r < block; r++) {
                const __m128i row = r % 2 ? _mm_unpackhi_epi64(t[r / 2], t[r / 2]) : t[r / 2];
                _mm_storel_epi64((__m128i *)(out + (size_t)r * dst_stride + j), row);
            }
        }
        for (; j < dst_stride; j++)
            for (int r = 0; r < block; r++)
                out[(size_t)r * dst_stride + j] = results[j * ROW_BLOCK + r];
    }
}
#undef TRANSPOSE_8X8
#endif

/* The AVX2 passes where the CPU has AVX2, unless VDX_RESAMPLE_KERNEL=portable (the tests
 * compare the two). */
static int use_avx2_passes(void)
{
#ifdef HAVE_AVX2_PASS
    const char *forced = getenv("VDX_RESAMPLE_KERNEL");
    return !(forced && strcmp(forced, "portable") == 0) && __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

static void resample_rows_horizontal_best(int avx2, const uint8_t *src, int src_w, int rows,
                                          const struct axis_weights *ax, uint8_t *scratch,
                                          uint8_t *dst)
{
#ifdef HAVE_AVX2_PASS
    if (avx2) {
        resample_rows_horizontal_avx2(src, src_w, rows, ax, scratch, dst);
        return;
    }
#endif
    (void)avx2;
    resample_rows_horizontal(src, src_w, rows, ax, (int32_t *)(void *)scratch, dst);
}

/* Each output row i of the window: weighted sum of rows of src (row_offset is the
 * index of src's first row in the full input), accumulated across the whole row. */
VECTOR_CLONES
static void resample_rows_vertical(const uint8_t *restrict src, int width, int row_offset,
                                   const struct axis_weights *ay, int32_t *restrict acc,
                                   uint8_t *restrict dst)
{
    const size_t n = (size_t)width * 3, bulk = n & ~(size_t)31;
    for (int i = 0; i < ay->count; i++) {
        const int32_t *k = ay->weight + (size_t)i * ay->max_taps;
        for (size_t j = 0; j < n; j++)
            acc[j] = 1 << (PRECISION_BITS - 1);
        for (int t = 0; t < ay->taps[i]; t++) {
            const uint8_t *restrict row = src + (size_t)(ay->start[i] - row_offset + t) * n;
            const int32_t kt = k[t];
            for (size_t j = 0; j < bulk; j++)
                acc[j] += row[j] * kt;
            for (size_t j = bulk; j < n; j++)
                acc[j] += row[j] * kt;
        }
        uint8_t *restrict out = dst + (size_t)i * n;
        for (size_t j = 0; j < bulk; j++)
            out[j] = clip8(acc[j]);
        for (size_t j = bulk; j < n; j++)
            out[j] = clip8(acc[j]);
    }
}

#ifdef HAVE_AVX2_PASS
/* The vertical pass with AVX2: 32 bytes of the output row at a time, their sums kept in
 * four registers across the taps (the portable pass keeps them in memory), packed with
 * saturation as in the horizontal pass. */
__attribute__((target("avx2")))
static void resample_rows_vertical_avx2(const uint8_t *src, int width, int row_offset,
                                        const struct axis_weights *ay, uint8_t *dst)
{
    const size_t n = (size_t)width * 3;
    const __m256i rounding = _mm256_set1_epi32(1 << (PRECISION_BITS - 1));
    const __m256i dword_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int i = 0; i < ay->count; i++) {
        const int32_t *k = ay->weight + (size_t)i * ay->max_taps;
        const uint8_t *rows = src + (size_t)(ay->start[i] - row_offset) * n;
        const int taps = ay->taps[i];
        uint8_t *out = dst + (size_t)i * n;
        size_t j = 0;
        for (; j + 32 <= n; j += 32) {
            __m256i sum[4] = {rounding, rounding, rounding, rounding};
            const uint8_t *p = rows + j;
            for (int t = 0; t < taps; t++, p += n) {
                const __m256i w = _mm256_set1_epi32(k[t]);
                for (int q = 0; q < 4; q++) {
                    const __m256i v =
                        _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * q)));
                    sum[q] = _mm256_add_epi32(sum[q], _mm256_mullo_epi32(v, w));
                }
            }
            for (int q = 0; q < 4; q++)
                sum[q] = _mm256_srai_epi32(sum[q], PRECISION_BITS);
            const __m256i packed = _mm256_packus_epi16(_mm256_packs_epi32(sum[0], sum[1]),
                                                       _mm256_packs_epi32(sum[2], sum[3]));
            _mm256_storeu_si256((__m256i *)(out + j),
                                _mm256_permutevar8x32_epi32(packed, dword_order));
        }
        for (; j < n; j++) {
            int32_t v = 1 << (PRECISION_BITS - 1);
            for (int t = 0; t < taps; t++)
                v += rows[(size_t)t * n + j] * k[t];
            out[j] = clip8(v);
        }
    }
}
#endif

static void resample_rows_vertical_best(int avx2, const uint8_t *src, int width,
                                        int row_offset, const struct axis_weights *ay,
                                        int32_t *acc, uint8_t *dst)
{
#ifdef HAVE_AVX2_PASS
    if (avx2) {
        resample_rows_vertical_avx2(src, width, row_offset, ay, dst);
        return;
    }
#endif
    (void)avx2;
    resample_rows_vertical(src, width, row_offset, ay, acc, dst);
}

int image_resample_window(const uint8_t *src, int src_w, int src_h, int dst_w, int dst_h,
                          int x0, int y0, int win_w, int win_h, uint8_t *out, vdx_error *err)
{
    if (src_w <= 0 || src_h <= 0 || dst_w <= 0 || dst_h <= 0 || win_w <= 0 || win_h <= 0 ||
        x0 < 0 || y0 < 0 || x0 + win_w > dst_w || y0 + win_h > dst_h)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "resample: bad geometry %dx%d -> %dx%d, window %dx%d at %d,%d",
                        src_w, src_h, dst_w, dst_h, win_w, win_h, x0, y0);
    const int horizontal = dst_w != src_w, vertical = dst_h != src_h;
    const int avx2 = use_avx2_passes();
    struct axis_weights ax = {0}, ay = {0};
    uint8_t *temp = NULL;
    int32_t *acc = NULL;
    uint8_t *scratch = NULL;
    int rc = -1;
    if ((horizontal && axis_weights_compute(src_w, dst_w, x0, win_w, &ax) != 0) ||
        (vertical && axis_weights_compute(src_h, dst_h, y0, win_h, &ay) != 0))
        goto out_of_memory;
    /* the portable pass's int32 columns, or the AVX2 pass's bytes (docs above) */
    if (horizontal && !(scratch = malloc(sizeof(int32_t) * COLUMN_LANES * (size_t)src_w +
                                         COLUMN_LANES * (size_t)win_w + 8)))
        goto out_of_memory;

    /* Input rows the vertical pass reads (all of the window's rows when it is skipped). */
    int row_first = y0, row_end = y0 + win_h;
    if (vertical) {
        row_first = ay.start[0];
        row_end = ay.start[win_h - 1] + ay.taps[win_h - 1];
    }
    const size_t src_stride = (size_t)src_w * 3, win_stride = (size_t)win_w * 3;
    if (!horizontal && !vertical) {
        for (int y = 0; y < win_h; y++)
            memcpy(out + y * win_stride, src + (size_t)(y0 + y) * src_stride + (size_t)x0 * 3,
                   win_stride);
        rc = 0;
        goto done;
    }
    if (!vertical) { /* the horizontal pass alone writes the window */
        resample_rows_horizontal_best(avx2, src + (size_t)y0 * src_stride, src_w, win_h, &ax,
                                      scratch, out);
        rc = 0;
        goto done;
    }
    /* rows row_first..row_end of the input, the window's columns only */
    const uint8_t *columns = src + (size_t)row_first * src_stride;
    if (horizontal || x0 != 0 || win_w != src_w) {
        temp = malloc((size_t)(row_end - row_first) * win_stride);
        if (!temp)
            goto out_of_memory;
        if (horizontal)
            resample_rows_horizontal_best(avx2, columns, src_w, row_end - row_first, &ax,
                                          scratch, temp);
        else
            for (int y = row_first; y < row_end; y++)
                memcpy(temp + (size_t)(y - row_first) * win_stride,
                       src + (size_t)y * src_stride + (size_t)x0 * 3, win_stride);
        columns = temp;
    }
    if (!avx2 && !(acc = malloc(sizeof *acc * win_stride))) /* the portable pass's sums */
        goto out_of_memory;
    resample_rows_vertical_best(avx2, columns, win_w, row_first, &ay, acc, out);
    rc = 0;
    goto done;

out_of_memory:
    vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "resample: out of memory resizing %dx%d to %dx%d", src_w, src_h, dst_w, dst_h);
done:
    axis_weights_free(&ax);
    axis_weights_free(&ay);
    free(temp);
    free(acc);
    free(scratch);
    return rc;
}
