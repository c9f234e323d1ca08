/* Pillow's BICUBIC resize (libImaging/Resample.c), reproduced to the bit: per-axis
 * filter weights computed in double, normalised to sum 1, rounded to 22-bit fixed point;
 * a horizontal pass into an 8-bit image, then a vertical pass, each accumulating from
 * 1 << 21 in int32 and clipping to 0..255. A pass whose size does not change is skipped.
 *
 * The weights of every output column and row are computed once per call, and only the
 * requested window of the output is produced: a 224x224 centre crop of a 1493x224
 * resize filters 224 columns, not 1493, and gives the same pixels. */
#include "image/image_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* On x86-64 with GCC the two passes are also built for AVX2 and picked at load time.
 * The horizontal pass uses vector-extension types; the vertical one is plain C shaped for
 * the auto-vectoriser (a bulk whose trip count is a multiple of 32, then a scalar tail).
 * The int32 arithmetic, and so every result, is the same on every path. */
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

int image_resample_window(const uint8_t *src, int src_w, int src_h, int dst_w, int dst_h,
                          int x0, int y0, int win_w, int win_h, uint8_t *out, vdx_error *err)
{
    if (src_w <= 0 || src_h <= 0 || dst_w <= 0 || dst_h <= 0 || win_w <= 0 || win_h <= 0 ||
        x0 < 0 || y0 < 0 || x0 + win_w > dst_w || y0 + win_h > dst_h)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "resample: bad geometry %dx%d -> %dx%d, window %dx%d at %d,%d",
                        src_w, src_h, dst_w, dst_h, win_w, win_h, x0, y0);
    const int horizontal = dst_w != src_w, vertical = dst_h != src_h;
    struct axis_weights ax = {0}, ay = {0};
    uint8_t *temp = NULL;
    int32_t *acc = NULL, *column_block = NULL;
    int rc = -1;
    if ((horizontal && axis_weights_compute(src_w, dst_w, x0, win_w, &ax) != 0) ||
        (vertical && axis_weights_compute(src_h, dst_h, y0, win_h, &ay) != 0))
        goto out_of_memory;
    if (horizontal && !(column_block = malloc(sizeof *column_block * COLUMN_LANES * src_w)))
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
        resample_rows_horizontal(src + (size_t)y0 * src_stride, src_w, win_h, &ax, column_block,
                                 out);
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
            resample_rows_horizontal(columns, src_w, row_end - row_first, &ax, column_block,
                                     temp);
        else
            for (int y = row_first; y < row_end; y++)
                memcpy(temp + (size_t)(y - row_first) * win_stride,
                       src + (size_t)y * src_stride + (size_t)x0 * 3, win_stride);
        columns = temp;
    }
    acc = malloc(sizeof *acc * win_stride);
    if (!acc)
        goto out_of_memory;
    resample_rows_vertical(columns, win_w, row_first, &ay, acc, out);
    rc = 0;
    goto done;

out_of_memory:
    vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "resample: out of memory resizing %dx%d to %dx%d", src_w, src_h, dst_w, dst_h);
done:
    axis_weights_free(&ax);
    axis_weights_free(&ay);
    free(temp);
    free(acc);
    free(column_block);
    return rc;
}
