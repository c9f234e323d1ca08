/* The embedded store's approximate index (index_ivf.c): inverted lists over spherical
 * k-means partitions, int8 or 4-bit product residual codes scanned first, then an exact
 * rerank from the memory-mapped vectors. docs/index.md has the design, guarantees and measurements. */
#ifndef VDX_STORE_INDEX_IVF_H
#define VDX_STORE_INDEX_IVF_H

#include <stdint.h>

#include "store/scan.h"
#include "vdx/store.h"

typedef struct vdx_ivf vdx_ivf;

typedef struct vdx_ivf_build_params {
    int lists;        /* partitions; 0: 2√rows (at least 16) */
    int nprobe;       /* partitions a search visits by default; 0: chosen from lists */
    int train_rows;   /* k-means sample; 0: min(rows, 64 × lists, 262144) */
    int iterations;   /* k-means rounds; 0: 10 */
    uint64_t seed;    /* sample and initial centres; 0: 1 */
    int pq;           /* 1: product-quantised residual codes (dims / 4 bytes per row: 4 bits
                       * per 2 dimensions, 16 centroids each) instead of int8 */
    int rerank;       /* pq: estimates re-scored exactly per search; 0: max(20 × want, 1000) */
    uint64_t stamp;   /* identifies the rows indexed (embedded.c: collection creation time
                       * and the last indexed id), checked at open */
    /* progress: what ("training", "assigning", "encoding", "writing") and a fraction */
    void (*on_progress)(const char *stage, double fraction, void *user);
    void *user;
} vdx_ivf_build_params;

/* Builds an index of the first m->n rows into `path`, atomically: written to a
 * temporary file beside it, fsynced, renamed over the old one (a build killed at any
 * point leaves the old index or none, and stale temporary files are removed by the next
 * build). */
int ivf_build(const vdx_scan_matrix *m, const char *path, const vdx_ivf_build_params *p,
                  vdx_error *err);

/* Maps an index file. Returns NULL with err->message empty when there is no file; NULL
 * with a message when it is unusable (corrupt, other dimension). The caller compares
 * ivf_rows/stamp with the collection before use. */
vdx_ivf *ivf_open(const char *path, int dims, vdx_error *err);
void ivf_close(vdx_ivf *ix);
int64_t ivf_rows(const vdx_ivf *ix);
uint64_t ivf_stamp(const vdx_ivf *ix);
/* {"rows","lists","nprobe","train_rows","iterations","built","build_seconds",
 *  "bytes_on_disk","bytes_per_item"} */
void ivf_describe(const vdx_ivf *ix, cJSON *out);

typedef struct vdx_ivf_query {
    const float *q;            /* unit query */
    const uint64_t *allowed;   /* over all m->n rows, NULL: all */
    int64_t n_allowed;         /* rows allowed (m->n when allowed is NULL) */
    int64_t want;
    int nprobe;                /* 0: the index's default; >= lists: every partition */
    vdx_scan_tie_break tie_break;
    const void *ctx;
} vdx_ivf_query;

/* The `want` nearest allowed rows of m (which may have more rows than the index: the
 * tail past ivf_rows is scanned exactly and merged), sorted like scan_nearest.
 * Visits at least nprobe partitions (more under a filter, in proportion to the rows it
 * removes, and until `want` allowed rows were seen); with every partition visited the
 * result equals the exact scan's. Returns the number found or -1. */
int64_t ivf_search(const vdx_ivf *ix, const vdx_scan_matrix *m, const vdx_ivf_query *q,
                       vdx_scan_hit *out, vdx_error *err);

/* Every row's dot with q (any vector, not only a unit one) estimated from the int8 codes:
 * out[r] for r < m->n, the rows past the index (the tail) scored exactly; partitions
 * shared out among OpenMP's team when it is free. Each estimate is within *bound of the
 * exact dot (the bound of ivf_search: ½ Σ |q_d·scale_d|, plus float rounding). Fails for
 * an index of product-quantised codes (no bound): see ivf_has_bound. */
int ivf_estimate_all(const vdx_ivf *ix, const vdx_scan_matrix *m, const float *q, float *out,
                     double *bound, vdx_error *err);
/* 1 when the index's codes bound their error (int8), 0 for product-quantised codes. */
int ivf_has_bound(const vdx_ivf *ix);

#endif
