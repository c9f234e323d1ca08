/* Exact vector search over an in-memory (memory-mapped) matrix: the embedded backend's
 * search engine, in scan.c. Rows are float32 or IEEE float16, `dims` elements each. */
#ifndef VDX_STORE_SCAN_H
#define VDX_STORE_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "common/half.h" /* the f16 rows' conversions */
#include "vdx/store.h"

typedef struct vdx_scan_matrix {
    const void *rows; /* n * dims elements of `type` */
    int64_t n;
    int dims;
    vdx_vector_type type;
} vdx_scan_matrix;

typedef struct vdx_scan_hit {
    int64_t row;
    float dist; /* 1 - dot(q, row) */
} vdx_scan_hit;

/* Orders two rows whose distances are equal (<0, 0, >0): the tie-break by id. */
typedef int (*vdx_scan_tie_break)(int64_t a, int64_t b, const void *ctx);

/* Threads a scan of m uses: $VDX_SEARCH_THREADS when set (>= 1), else the number of
 * cores, but one below the size where starting threads costs more than it saves. */
int scan_threads(const vdx_scan_matrix *m);

/* The `want` rows nearest to the unit query q (distance 1 - dot, then tie_break),
 * among rows whose bit is set in `allowed` (NULL: all rows), sorted ascending into out
 * (room for `want`). Returns the number found (<= want), or -1 with err. */
int64_t scan_nearest(const vdx_scan_matrix *m, const float *q, const uint64_t *allowed,
                         int64_t want, vdx_scan_tie_break tie_break, const void *ctx,
                         vdx_scan_hit *out, vdx_error *err);

/* out[row] = dot(q, row) for every row allowed (others untouched). */
int scan_dots(const vdx_scan_matrix *m, const float *q, const uint64_t *allowed,
                  float *out, vdx_error *err);

/* out[i] = dot(q, row rows[i]) for a list of rows, with the kernel the scans use, so a
 * rerank (index_ivf.c) computes bit for bit the distances an exact scan would. */
void scan_dot_rows(const vdx_scan_matrix *m, const float *q, const int64_t *rows, size_t n,
                       float *out);

#endif
