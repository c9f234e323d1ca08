/* The map's computation on plain arrays: the exact k-nearest-neighbour graph (blocked
 * OpenBLAS products), UMAP's fuzzy simplicial set and its negative-sampling SGD (McInnes,
 * Healy, Melville 2018, "UMAP: Uniform Manifold Approximation and Projection", sections
 * 3 and 4: smooth kNN distances, the fuzzy union, the curve 1/(1+a d^2b) and the
 * cross-entropy gradients), a PCA start by power iteration, k-means of the layout and
 * zero-shot cluster naming. Everything that draws random numbers uses one seeded
 * splitmix64 stream in a fixed order and the SGD runs on one thread, so a seed gives the
 * same map whatever the machine load (the kNN products are OpenBLAS's, deterministic for
 * a thread count). The vectors are read as int8 codes with a scale an item (a quarter of
 * float32's memory) and widened to float a block at a time for the products, so the
 * build's memory stays near 1 KB an item. Why these choices: docs/map.md. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "map/map_internal.h"
#include "vdx/map.h"

uint64_t map_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rand_unit(uint64_t *state) /* [0, 1) */
{
    return (double)(map_rand(state) >> 11) * (1.0 / 9007199254740992.0);
}

void map_defaults(const vdx_map_options *in, vdx_map_options *o, int64_t n)
{
    *o = in ? *in : (vdx_map_options){0};
    if (o->neighbors <= 0)
        o->neighbors = 15;
    if (o->min_dist <= 0)
        o->min_dist = 0.1;
    if (o->epochs <= 0)
        o->epochs = n < 10000 ? 500 : 200;
    if (o->negatives <= 0)
        o->negatives = 5;
    if (o->seed == 0)
        o->seed = 1;
    if (o->clusters <= 0) {
        int k = (int)lround(sqrt((double)n / 10.0));
        o->clusters = k < 2 ? 2 : k > 64 ? 64 : k;
    }
    if (o->clusters > n)
        o->clusters = (int)n;
    if (o->exact_max <= 0)
        o->exact_max = 50000;
}

static void progress(const vdx_map_options *o, const char *stage, double f)
{
    if (o->on_progress)
        o->on_progress(stage, f, o->user);
}

/* ---- the vectors: int8 codes, a scale an item ---- */

int vdx_map_vectors_alloc(vdx_map_vectors *v, int64_t n, int dims, vdx_error *err)
{
    *v = (vdx_map_vectors){.n = n, .dims = dims};
    v->codes = malloc((size_t)(n > 0 ? n : 1) * (size_t)dims);
    v->scales = malloc((size_t)(n > 0 ? n : 1) * sizeof *v->scales);
    if (!v->codes || !v->scales) {
        vdx_map_vectors_free(v);
        return vdx_fail_oom(err, "for %lld vectors of %d dimensions (int8)", (long long)n, dims);
    }
    return 0;
}

int vdx_map_vectors_set(vdx_map_vectors *v, int64_t first, int64_t count, const float *x,
                        vdx_error *err)
{
    int dims = v->dims;
    for (int64_t r = 0; r < count; r++) {
        const float *row = x + r * dims;
        float big = 0;
        for (int j = 0; j < dims; j++) {
            if (!isfinite(row[j]))
                return vdx_fail_kind(err, VDX_ERR_INVALID,
                                     "vector %lld: dimension %d is not a finite number",
                                     (long long)(first + r), j);
            big = fabsf(row[j]) > big ? fabsf(row[j]) : big;
        }
        float scale = big / 127.0f;
        int8_t *c = v->codes + (first + r) * dims;
        for (int j = 0; j < dims; j++) {
            long q = scale > 0 ? lrintf(row[j] / scale) : 0;
            c[j] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
        }
        v->scales[first + r] = scale;
    }
    return 0;
}

void vdx_map_vectors_free(vdx_map_vectors *v)
{
    free(v->codes);
    free(v->scales);
    v->codes = NULL;
    v->scales = NULL;
}

/* Rows first..first+count-1 widened to float. */
static void widen(const vdx_map_vectors *v, int64_t first, int64_t count, float *out)
{
    int dims = v->dims;
    for (int64_t r = 0; r < count; r++) {
        const int8_t *c = v->codes + (first + r) * dims;
        float s = v->scales[first + r], *o = out + r * dims;
        for (int j = 0; j < dims; j++)
            o[j] = s * (float)c[j];
    }
}

/* ---- kNN ---- */

/* Keeps the k best (smallest distance, then smallest index) of one row, sorted. */
static void topk_insert(float *d, int32_t *ix, int k, int *have, float dist, int32_t j)
{
    int h = *have;
    if (h == k && (dist > d[k - 1] || (dist == d[k - 1] && j > ix[k - 1])))
        return;
    int p = h < k ? h : k - 1;
    while (p > 0 && (d[p - 1] > dist || (d[p - 1] == dist && ix[p - 1] > j))) {
        d[p] = d[p - 1];
        ix[p] = ix[p - 1];
        p--;
    }
    d[p] = dist;
    ix[p] = j;
    if (h < k)
        *have = h + 1;
}

/* Every row against every row: tiles of up to TILE rows widened once (the right-hand
 * side), queries widened BLOCK rows at a time, BLOCK x TILE products: at most 25 MB at
 * 512-d whatever n, 192 bytes an item below 130k items; the k best of a row carry over
 * from tile to tile. */
static int knn_exact(const vdx_map_vectors *v, int k, const vdx_map_options *o, int32_t *nb,
                     float *nd, vdx_error *err)
{
    enum { TILE = 8192, BLOCK = 256 };
    int64_t n = v->n;
    int dims = v->dims;
    /* (n/16 rows between BLOCK and TILE: the buffers stay a fraction of the codes, and a
     * small collection crosses tiles as a large one does) */
    int64_t tile_rows = n / 16 < BLOCK ? BLOCK : n / 16 > TILE ? TILE : n / 16;
    int64_t block_rows = n < BLOCK ? n : BLOCK;
    if (tile_rows > n)
        tile_rows = n;
    float *tile = malloc((size_t)tile_rows * dims * sizeof *tile);
    float *q = malloc((size_t)block_rows * dims * sizeof *q);
    float *prod = malloc((size_t)block_rows * tile_rows * sizeof *prod);
    if (!tile || !q || !prod) {
        free(tile), free(q), free(prod);
        return vdx_fail_oom(err, "for the neighbour products (%lld x %lld floats)",
                            (long long)block_rows, (long long)tile_rows);
    }
    for (int64_t i = 0; i < n * k; i++)
        nd[i] = INFINITY, nb[i] = INT32_MAX;
    int64_t done = 0, total = ((n + tile_rows - 1) / tile_rows) * ((n + block_rows - 1) / block_rows);
    for (int64_t t0 = 0; t0 < n; t0 += tile_rows) {
        int64_t cols = n - t0 < tile_rows ? n - t0 : tile_rows;
        widen(v, t0, cols, tile);
        for (int64_t b0 = 0; b0 < n; b0 += block_rows) {
            int64_t rows = n - b0 < block_rows ? n - b0 : block_rows;
            widen(v, b0, rows, q);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, dims,
                        1.0f, q, dims, tile, dims, 0.0f, prod, (int)cols);
            for (int64_t r = 0; r < rows; r++) {
                int64_t i = b0 + r;
                const float *p = prod + r * cols;
                float *d = nd + i * k;
                int32_t *ix = nb + i * k;
                int have = k; /* the lists start full of +inf */
                for (int64_t c = 0; c < cols; c++) {
                    if (t0 + c == i)
                        continue;
                    float dist = 1.0f - p[c];
                    topk_insert(d, ix, k, &have, dist < 0 ? 0 : dist, (int32_t)(t0 + c));
                }
            }
            if ((++done & 15) == 0 || done == total)
                progress(o, "neighbours", (double)done / (double)total);
        }
    }
    free(tile), free(q), free(prod);
    return 0;
}

/* Large collections: the neighbours among the items of a few partitions only, an
 * inverted-file search like the store's index (src/store/index_ivf.c) built for this
 * pass: spherical k-means centres (√n lists, trained on a sample), every item in its
 * nearest list, and each list's items compared (one SGEMM per block) with the items of
 * the `probe` lists whose centres are nearest its own. */
static int nearest_centre(const float *x, int64_t n, int dims, const float *c, int lists,
                          int32_t *assign, vdx_error *err)
{
    int64_t block = (4 << 20) / lists;
    if (block < 1)
        block = 1;
    float *prod = malloc((size_t)block * lists * sizeof *prod);
    if (!prod)
        return vdx_fail_oom(err, "for the partition products");
    for (int64_t b0 = 0; b0 < n; b0 += block) {
        int64_t rows = n - b0 < block ? n - b0 : block;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, lists, dims, 1.0f,
                    x + b0 * dims, dims, c, dims, 0.0f, prod, lists);
        for (int64_t r = 0; r < rows; r++) {
            const float *p = prod + r * lists;
            int best = 0;
            for (int j = 1; j < lists; j++)
                if (p[j] > p[best])
                    best = j;
            assign[b0 + r] = best;
        }
    }
    free(prod);
    return 0;
}

/* nearest_centre over every row of v, widened a block at a time. */
static int nearest_centre_all(const vdx_map_vectors *v, const float *c, int lists,
                              int32_t *assign, vdx_error *err)
{
    enum { ROWS = 1024 };
    float *x = malloc((size_t)ROWS * v->dims * sizeof *x);
    if (!x)
        return vdx_fail_oom(err, "for the partition products");
    for (int64_t b0 = 0; b0 < v->n; b0 += ROWS) {
        int64_t rows = v->n - b0 < ROWS ? v->n - b0 : ROWS;
        widen(v, b0, rows, x);
        if (nearest_centre(x, rows, v->dims, c, lists, assign + b0, err) != 0) {
            free(x);
            return -1;
        }
    }
    free(x);
    return 0;
}

static int knn_partitioned(const vdx_map_vectors *v, int k, const vdx_map_options *o,
                           int32_t *nb, float *nd, vdx_error *err)
{
    int64_t n = v->n;
    int dims = v->dims;
    int lists = (int)sqrt((double)n);
    int probe = o->probe > 0 ? o->probe : 8;
    if (probe > lists)
        probe = lists;
    int64_t train = (int64_t)lists * 64 < n ? (int64_t)lists * 64 : n;
    float *c = malloc((size_t)lists * dims * sizeof *c);
    double *sum = malloc((size_t)lists * dims * sizeof *sum);
    int32_t *assign = malloc((size_t)n * sizeof *assign);
    int64_t *start = calloc((size_t)lists + 1, sizeof *start), *members = malloc((size_t)n * sizeof *members);
    int32_t *near = malloc((size_t)lists * probe * sizeof *near);
    float *cc = malloc((size_t)lists * lists * sizeof *cc);
    enum { ROWS = 1024 }; /* training rows widened at a time */
    float *sx = malloc((size_t)ROWS * dims * sizeof *sx);
    int32_t *sa = malloc((size_t)ROWS * sizeof *sa);
    int rc = -1;
    float *cand = NULL, *prod = NULL;
    int64_t *cand_ix = NULL;
    if (!c || !sum || !assign || !start || !members || !near || !cc || !sx || !sa) {
        vdx_fail_oom(err, "for the partitions of %lld items", (long long)n);
        goto out;
    }
    /* the training sample: every stride-th row from a shift drawn from the seed */
    uint64_t rng = o->seed ^ 0x5bd1e995u;
    int64_t stride = n / train, shift = (int64_t)(map_rand(&rng) % (uint64_t)stride);
    for (int l = 0; l < lists; l++) /* start: every (train/lists)-th sample row */
        widen(v, (int64_t)l * (train / lists) * stride + shift, 1, c + (int64_t)l * dims);
    for (int round = 0; round < 6; round++) {
        memset(sum, 0, (size_t)lists * dims * sizeof *sum);
        for (int64_t b0 = 0; b0 < train; b0 += ROWS) {
            int64_t rows = train - b0 < ROWS ? train - b0 : ROWS;
            for (int64_t r = 0; r < rows; r++)
                widen(v, (b0 + r) * stride + shift, 1, sx + r * dims);
            if (nearest_centre(sx, rows, dims, c, lists, sa, err) != 0)
                goto out;
            for (int64_t r = 0; r < rows; r++)
                for (int j = 0; j < dims; j++)
                    sum[(int64_t)sa[r] * dims + j] += sx[r * dims + j];
        }
        for (int l = 0; l < lists; l++) {
            double norm = 0;
            for (int j = 0; j < dims; j++)
                norm += sum[(int64_t)l * dims + j] * sum[(int64_t)l * dims + j];
            if (norm == 0)
                continue; /* an empty list keeps its centre */
            norm = 1.0 / sqrt(norm);
            for (int j = 0; j < dims; j++)
                c[(int64_t)l * dims + j] = (float)(sum[(int64_t)l * dims + j] * norm);
        }
        progress(o, "neighbours", 0.1 * (round + 1) / 6);
    }
    if (nearest_centre_all(v, c, lists, assign, err) != 0)
        goto out;
    for (int64_t i = 0; i < n; i++)
        start[assign[i] + 1]++;
    for (int l = 0; l < lists; l++)
        start[l + 1] += start[l];
    {
        int64_t *fill = malloc((size_t)lists * sizeof *fill);
        if (!fill) {
            vdx_fail_oom(err, "for the partitions");
            goto out;
        }
        memcpy(fill, start, (size_t)lists * sizeof *fill);
        for (int64_t i = 0; i < n; i++)
            members[fill[assign[i]]++] = i;
        free(fill);
    }
    /* each list's probe nearest lists (itself first) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, lists, lists, dims, 1.0f, c, dims, c,
                dims, 0.0f, cc, lists);
    for (int l = 0; l < lists; l++) {
        float *row = cc + (int64_t)l * lists;
        row[l] = INFINITY;
        for (int p = 0; p < probe; p++) {
            int best = 0;
            for (int j = 1; j < lists; j++)
                if (row[j] > row[best])
                    best = j;
            near[(int64_t)l * probe + p] = best;
            row[best] = -INFINITY;
        }
    }
    int64_t max_cand = 0;
    for (int l = 0; l < lists; l++) {
        int64_t m = 0;
        for (int p = 0; p < probe; p++)
            m += start[near[(int64_t)l * probe + p] + 1] - start[near[(int64_t)l * probe + p]];
        if (m > max_cand)
            max_cand = m;
    }
    int64_t block = (1 << 20) / (max_cand ? max_cand : 1); /* products of 4 MB */
    if (block < 32)
        block = 32;
    cand = malloc((size_t)(max_cand ? max_cand : 1) * dims * sizeof *cand);
    cand_ix = malloc((size_t)(max_cand ? max_cand : 1) * sizeof *cand_ix);
    prod = malloc((size_t)block * (max_cand ? max_cand : 1) * sizeof *prod);
    if (!cand || !cand_ix || !prod) {
        vdx_fail_oom(err, "for the candidates of a partition (%lld items)", (long long)max_cand);
        goto out;
    }
    for (int l = 0; l < lists; l++) {
        int64_t m = 0;
        for (int p = 0; p < probe; p++) {
            int q = near[(int64_t)l * probe + p];
            for (int64_t t = start[q]; t < start[q + 1]; t++) {
                cand_ix[m] = members[t];
                widen(v, members[t], 1, cand + m * dims);
                m++;
            }
        }
        /* the list's own items are the first start[l+1]-start[l] candidates */
        int64_t own = start[l + 1] - start[l];
        for (int64_t b0 = 0; b0 < own; b0 += block) {
            int64_t rows = own - b0 < block ? own - b0 : block;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)m, dims, 1.0f,
                        cand + b0 * dims, dims, cand, dims, 0.0f, prod, (int)m);
            for (int64_t r = 0; r < rows; r++) {
                int64_t i = cand_ix[b0 + r];
                float *d = nd + i * k;
                int32_t *ix = nb + i * k;
                int have = 0;
                for (int64_t j = 0; j < m; j++) {
                    if (cand_ix[j] == i)
                        continue;
                    float dist = 1.0f - prod[r * m + j];
                    topk_insert(d, ix, k, &have, dist < 0 ? 0 : dist, (int32_t)cand_ix[j]);
                }
                for (; have < k; have++) { /* a tiny neighbourhood: repeat the farthest */
                    d[have] = have ? d[have - 1] : 1.0f;
                    ix[have] = have ? ix[have - 1] : (int32_t)((i + 1) % n);
                }
            }
        }
        if ((l & 15) == 15 || l + 1 == lists)
            progress(o, "neighbours", 0.1 + 0.9 * (l + 1) / lists);
    }
    rc = 0;
out:
    free(c), free(sum), free(assign), free(start), free(members), free(near), free(cc);
    free(sx), free(sa), free(cand), free(cand_ix), free(prod);
    return rc;
}

int map_knn(const vdx_map_vectors *v, int k, const vdx_map_options *o, int32_t *nb,
            float *nd, vdx_error *err)
{
    int exact_max = o->exact_max > 0 ? o->exact_max : 50000;
    return v->n > exact_max ? knn_partitioned(v, k, o, nb, nd, err)
                            : knn_exact(v, k, o, nb, nd, err);
}

/* ---- the fuzzy simplicial set ---- */

void map_smooth_weights(const float *d, int k, float *w)
{
    /* rho: distance to the nearest neighbour; sigma: sum exp(-(d - rho)/sigma) = log2 k */
    double rho = d[0], target = log2((double)k);
    double lo = 0, hi = INFINITY, sigma = 1.0;
    for (int it = 0; it < 64; it++) {
        double s = 0;
        for (int j = 0; j < k; j++) {
            double e = d[j] - rho;
            s += e > 0 ? exp(-e / sigma) : 1.0;
        }
        if (fabs(s - target) < 1e-5)
            break;
        if (s > target) {
            hi = sigma;
            sigma = (lo + hi) / 2;
        } else {
            lo = sigma;
            sigma = isinf(hi) ? sigma * 2 : (lo + hi) / 2;
        }
    }
    double mean = 0;
    for (int j = 0; j < k; j++)
        mean += d[j];
    mean /= k;
    if (sigma < 1e-3 * mean)
        sigma = 1e-3 * mean;
    if (sigma <= 0)
        sigma = 1e-12;
    for (int j = 0; j < k; j++) {
        double e = d[j] - rho;
        w[j] = (float)(e > 0 ? exp(-e / sigma) : 1.0);
    }
}

typedef struct edge {
    int32_t a, b;
    float w;
} edge;

/* Where i is in a neighbour list (its first place), or -1. */
static int listed(const int32_t *list, int k, int32_t i)
{
    for (int j = 0; j < k; j++)
        if (list[j] == i)
            return j;
    return -1;
}

/* The symmetric fuzzy union w_ij + w_ji - w_ij w_ji over the directed kNN weights, one
 * edge per pair, in the order of the lists (item by item): no sort, so no copy of the
 * edges. nd's distances are turned into the weights in place. */
static edge *fuzzy_graph(const int32_t *nb, float *nd, int64_t n, int k, int64_t *n_edges,
                         vdx_error *err)
{
    float *w = malloc((size_t)k * sizeof *w);
    if (!w) {
        vdx_fail_oom(err, "for the neighbour weights");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        map_smooth_weights(nd + i * k, k, w);
        memcpy(nd + i * k, w, (size_t)k * sizeof *w);
    }
    free(w);
    /* an edge i-t comes from the lower of the two when both list each other, else from
     * the one that lists the other; a repeated entry of a list counts once */
    int64_t m = 0;
    for (int pass = 0; pass < 2; pass++) {
        edge *e = NULL;
        if (pass == 1 && !(e = malloc((size_t)(m ? m : 1) * sizeof *e))) {
            vdx_fail_oom(err, "for the neighbour graph (%lld edges)", (long long)m);
            return NULL;
        }
        int64_t at = 0;
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < k; j++) {
                int32_t t = nb[i * k + j];
                if (listed(nb + i * k, j, t) >= 0)
                    continue;
                int back = listed(nb + (int64_t)t * k, k, (int32_t)i);
                if (back >= 0 && t < i)
                    continue; /* t made this edge */
                if (pass == 1) {
                    float a = nd[i * k + j], b = back >= 0 ? nd[(int64_t)t * k + back] : 0;
                    e[at] = (edge){(int32_t)(i < t ? i : t), (int32_t)(i < t ? t : i),
                                   a + b - a * b};
                }
                at++;
            }
        if (pass == 1) {
            *n_edges = m;
            return e;
        }
        m = at;
    }
    return NULL;
}

/* ---- the curve 1 / (1 + a d^2b) fitted to min_dist (spread 1) ---- */

void map_fit_ab(double min_dist, double *a, double *b)
{
    enum { P = 300 };
    double xs[P], ys[P];
    for (int i = 0; i < P; i++) {
        xs[i] = 3.0 * i / (P - 1);
        ys[i] = xs[i] < min_dist ? 1.0 : exp(-(xs[i] - min_dist));
    }
    double la = log(1.0), bb = 1.0, sa = 2.5, sb = 0.8; /* centre and half-width */
    double best = INFINITY, ba = 1.0, bbest = 1.0;
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i <= 40; i++)
            for (int j = 0; j <= 40; j++) {
                double ca = exp(la - sa + 2 * sa * i / 40), cb = bb - sb + 2 * sb * j / 40;
                if (cb <= 0.05)
                    continue;
                double s = 0;
                for (int p = 0; p < P; p++) {
                    double r = 1.0 / (1.0 + ca * pow(xs[p], 2 * cb)) - ys[p];
                    s += r * r;
                }
                if (s < best) {
                    best = s;
                    ba = ca;
                    bbest = cb;
                }
            }
        la = log(ba);
        bb = bbest;
        sa /= 4;
        sb /= 4;
    }
    *a = ba;
    *b = bbest;
}

/* ---- PCA start ---- */

static int pca_init(const vdx_map_vectors *x, uint64_t *rng, float *xy, vdx_error *err)
{
    enum { ROWS = 1024 };
    int64_t n = x->n;
    int dims = x->dims;
    double *mean = calloc((size_t)dims, sizeof *mean);
    float *cov = malloc((size_t)dims * dims * sizeof *cov);
    double *v = malloc(2 * (size_t)dims * sizeof *v), *t = malloc((size_t)dims * sizeof *t);
    float *rows = malloc((size_t)ROWS * dims * sizeof *rows);
    if (!mean || !cov || !v || !t || !rows) {
        free(mean), free(cov), free(v), free(t), free(rows);
        return vdx_fail_oom(err, "for the PCA start (%d dimensions)", dims);
    }
    /* X^T X / n (upper triangle from ssyrk, a block of rows at a time) - mean mean^T */
    for (int64_t b0 = 0; b0 < n; b0 += ROWS) {
        int64_t m = n - b0 < ROWS ? n - b0 : ROWS;
        widen(x, b0, m, rows);
        for (int64_t i = 0; i < m; i++)
            for (int j = 0; j < dims; j++)
                mean[j] += rows[i * dims + j];
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, dims, (int)m, 1.0f / (float)n, rows,
                    dims, b0 ? 1.0f : 0.0f, cov, dims);
    }
    for (int j = 0; j < dims; j++)
        mean[j] /= (double)n;
    for (int r = 0; r < dims; r++)
        for (int c = r; c < dims; c++) {
            float val = (float)(cov[r * dims + c] - mean[r] * mean[c]);
            cov[r * dims + c] = cov[c * dims + r] = val;
        }
    for (int comp = 0; comp < 2; comp++) {
        double *vc = v + comp * dims;
        for (int j = 0; j < dims; j++)
            vc[j] = rand_unit(rng) - 0.5;
        for (int it = 0; it < 300; it++) {
            for (int r = 0; r < dims; r++) {
                double s = 0;
                for (int c = 0; c < dims; c++)
                    s += cov[r * dims + c] * vc[c];
                t[r] = s;
            }
            if (comp == 1) { /* deflate: stay orthogonal to the first component */
                double p = 0;
                for (int j = 0; j < dims; j++)
                    p += t[j] * v[j];
                for (int j = 0; j < dims; j++)
                    t[j] -= p * v[j];
            }
            double norm = 0, diff = 0;
            for (int j = 0; j < dims; j++)
                norm += t[j] * t[j];
            norm = sqrt(norm);
            if (norm == 0)
                break;
            for (int j = 0; j < dims; j++) {
                double nv = t[j] / norm;
                diff += fabs(nv - vc[j]);
                vc[j] = nv;
            }
            if (diff < 1e-9 * dims)
                break;
        }
        /* a fixed sign: the largest component positive */
        int big = 0;
        for (int j = 1; j < dims; j++)
            if (fabs(vc[j]) > fabs(vc[big]))
                big = j;
        if (vc[big] < 0)
            for (int j = 0; j < dims; j++)
                vc[j] = -vc[j];
    }
    double lim = 0;
    for (int64_t i = 0; i < n; i++)
        for (int comp = 0; comp < 2; comp++) {
            if (comp == 0)
                widen(x, i, 1, rows);
            double s = 0;
            for (int j = 0; j < dims; j++)
                s += (rows[j] - mean[j]) * v[comp * dims + j];
            xy[2 * i + comp] = (float)s;
            if (fabs(s) > lim)
                lim = fabs(s);
        }
    /* UMAP scales its start into [-10, 10] and adds a little noise */
    double scale = lim > 0 ? 10.0 / lim : 1.0;
    for (int64_t i = 0; i < 2 * n; i++)
        xy[i] = (float)(xy[i] * scale + (rand_unit(rng) - 0.5) * 1e-4);
    free(mean), free(cov), free(v), free(t), free(rows);
    return 0;
}

int map_pca(const vdx_map_vectors *v, uint64_t seed, float *xy, vdx_error *err)
{
    uint64_t rng = seed;
    return pca_init(v, &rng, xy, err);
}

/* ---- SGD ---- */

static inline float clip4(float v)
{
    return v > 4 ? 4 : v < -4 ? -4 : v;
}

static void sgd(float *y, int64_t n, const edge *e, int64_t m, const vdx_map_options *o,
                double a, double b, uint64_t *rng, float *next, float *per, float *next_neg)
{
    float wmax = 0;
    for (int64_t i = 0; i < m; i++)
        if (e[i].w > wmax)
            wmax = e[i].w;
    for (int64_t i = 0; i < m; i++) {
        /* edges too weak to be sampled once in every epoch are dropped (per = -1) */
        per[i] = e[i].w >= wmax / o->epochs ? wmax / e[i].w : -1;
        next[i] = per[i];
        next_neg[i] = per[i] / (float)o->negatives;
    }
    const float fa = (float)a, fb = (float)b;
    for (int ep = 0; ep < o->epochs; ep++) {
        float alpha = 1.0f - (float)ep / (float)o->epochs;
        for (int64_t i = 0; i < m; i++) {
            if (per[i] < 0 || next[i] > ep)
                continue;
            float *yi = y + 2 * (int64_t)e[i].a, *yj = y + 2 * (int64_t)e[i].b;
            float dx = yi[0] - yj[0], dy = yi[1] - yj[1], d2 = dx * dx + dy * dy;
            if (d2 > 0) {
                float pw = powf(d2, fb);
                float g = (-2.0f * fa * fb * pw / d2) / (fa * pw + 1.0f);
                float gx = clip4(g * dx) * alpha, gy = clip4(g * dy) * alpha;
                yi[0] += gx, yi[1] += gy;
                yj[0] -= gx, yj[1] -= gy;
            }
            next[i] += per[i];
            float per_neg = per[i] / (float)o->negatives;
            int negs = (int)((ep - next_neg[i]) / per_neg);
            for (int s = 0; s < negs; s++) {
                int64_t t = (int64_t)(map_rand(rng) % (uint64_t)n);
                if (t == e[i].a)
                    continue;
                float *yt = y + 2 * t;
                dx = yi[0] - yt[0], dy = yi[1] - yt[1], d2 = dx * dx + dy * dy;
                float gx, gy;
                if (d2 > 0) {
                    float g = 2.0f * fb / ((0.001f + d2) * (fa * powf(d2, fb) + 1.0f));
                    gx = clip4(g * dx), gy = clip4(g * dy);
                } else {
                    gx = gy = 4.0f;
                }
                yi[0] += gx * alpha, yi[1] += gy * alpha;
            }
            next_neg[i] += negs * per_neg;
        }
        if ((ep & 7) == 7 || ep + 1 == o->epochs)
            progress(o, "layout", (double)(ep + 1) / o->epochs);
    }
}

int vdx_map_layout(const vdx_map_vectors *v, const vdx_map_options *opts, float *xy,
                   vdx_error *err)
{
    int64_t n = v->n;
    if (n < 2)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "a map needs at least 2 items, not %lld",
                             (long long)n);
    if (n > INT32_MAX)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "too many items for a map: %lld",
                             (long long)n);
    vdx_map_options o;
    map_defaults(opts, &o, n);
    /* the neighbour products are large GEMMs outside any parallel region: here OpenBLAS
     * runs them on its own threads, then goes back to the callers' threads (team.h) */
    int blas_before = openblas_get_num_threads();
    openblas_set_num_threads(o.threads > 0 ? o.threads : vdx_cpu_count());
    int k = o.neighbors < n - 1 ? o.neighbors : (int)(n - 1);
    int32_t *nb = malloc((size_t)n * k * sizeof *nb);
    float *nd = malloc((size_t)n * k * sizeof *nd);
    int rc = -1;
    edge *e = NULL;
    float *work = NULL;
    if (!nb || !nd) {
        vdx_fail_oom(err, "for the neighbour lists of %lld items", (long long)n);
        goto out;
    }
    progress(&o, "neighbours", 0);
    if (map_knn(v, k, &o, nb, nd, err) != 0)
        goto out;
    progress(&o, "graph", 0);
    int64_t m = 0;
    if (!(e = fuzzy_graph(nb, nd, n, k, &m, err)))
        goto out;
    free(nb), free(nd);
    nb = NULL, nd = NULL;
    progress(&o, "graph", 1);
    uint64_t rng = o.seed;
    progress(&o, "init", 0);
    if (pca_init(v, &rng, xy, err) != 0)
        goto out;
    progress(&o, "init", 1);
    double a, b;
    map_fit_ab(o.min_dist, &a, &b);
    if (!(work = malloc(3 * (size_t)m * sizeof *work))) {
        vdx_fail_oom(err, "for the layout's schedule (%lld edges)", (long long)m);
        goto out;
    }
    sgd(xy, n, e, m, &o, a, b, &rng, work, work + m, work + 2 * m);
    rc = 0;
out:
    openblas_set_num_threads(blas_before);
    free(nb), free(nd), free(e), free(work);
    return rc;
}

/* ---- clusters ---- */

int vdx_map_cluster(const float *xy, int64_t n, int k, uint64_t seed, int32_t *cluster,
                    vdx_error *err)
{
    if (k < 1 || k > n)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%d clusters for %lld items", k,
                             (long long)n);
    double *c = malloc(2 * (size_t)k * sizeof *c), *sum = malloc(3 * (size_t)k * sizeof *sum);
    double *d2 = malloc((size_t)n * sizeof *d2);
    if (!c || !sum || !d2) {
        free(c), free(sum), free(d2);
        return vdx_fail_oom(err, "for %d clusters", k);
    }
    uint64_t rng = seed ? seed : 1;
    /* k-means++: each next centre drawn with probability ∝ squared distance */
    int64_t first = (int64_t)(map_rand(&rng) % (uint64_t)n);
    c[0] = xy[2 * first], c[1] = xy[2 * first + 1];
    for (int64_t i = 0; i < n; i++) {
        double dx = xy[2 * i] - c[0], dy = xy[2 * i + 1] - c[1];
        d2[i] = dx * dx + dy * dy;
    }
    for (int j = 1; j < k; j++) {
        double total = 0;
        for (int64_t i = 0; i < n; i++)
            total += d2[i];
        double r = rand_unit(&rng) * total;
        int64_t pick = n - 1;
        for (int64_t i = 0; i < n; i++) {
            r -= d2[i];
            if (r < 0) {
                pick = i;
                break;
            }
        }
        c[2 * j] = xy[2 * pick], c[2 * j + 1] = xy[2 * pick + 1];
        for (int64_t i = 0; i < n; i++) {
            double dx = xy[2 * i] - c[2 * j], dy = xy[2 * i + 1] - c[2 * j + 1];
            double v = dx * dx + dy * dy;
            if (v < d2[i])
                d2[i] = v;
        }
    }
    for (int round = 0; round < 100; round++) {
        int64_t moved = 0;
        memset(sum, 0, 3 * (size_t)k * sizeof *sum);
        for (int64_t i = 0; i < n; i++) {
            int best = 0;
            double bd = INFINITY;
            for (int j = 0; j < k; j++) {
                double dx = xy[2 * i] - c[2 * j], dy = xy[2 * i + 1] - c[2 * j + 1];
                double v = dx * dx + dy * dy;
                if (v < bd)
                    bd = v, best = j;
            }
            if (round == 0 || cluster[i] != best)
                moved++;
            cluster[i] = best;
            sum[3 * best] += xy[2 * i], sum[3 * best + 1] += xy[2 * i + 1], sum[3 * best + 2]++;
        }
        for (int j = 0; j < k; j++)
            if (sum[3 * j + 2] > 0)
                c[2 * j] = sum[3 * j] / sum[3 * j + 2], c[2 * j + 1] = sum[3 * j + 1] / sum[3 * j + 2];
        if (moved == 0)
            break;
    }
    /* renumber by size, largest first (ties: the older number) */
    int *order = malloc((size_t)k * sizeof *order), *rank = malloc((size_t)k * sizeof *rank);
    if (!order || !rank) {
        free(c), free(sum), free(d2), free(order), free(rank);
        return vdx_fail_oom(err, "for %d clusters", k);
    }
    for (int j = 0; j < k; j++)
        order[j] = j;
    for (int i = 1; i < k; i++) /* insertion sort: k is small */
        for (int j = i; j > 0 && sum[3 * order[j] + 2] > sum[3 * order[j - 1] + 2]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int j = 0; j < k; j++)
        rank[order[j]] = j;
    for (int64_t i = 0; i < n; i++)
        cluster[i] = rank[cluster[i]];
    free(c), free(sum), free(d2), free(order), free(rank);
    return 0;
}

int vdx_map_name_clusters(const vdx_map_vectors *vectors, const int32_t *cluster, int k,
                          const float *vocab, int n_vocab, int *names, vdx_error *err)
{
    int dims = vectors->dims;
    double *cen = calloc((size_t)k * dims, sizeof *cen);
    float *row = malloc((size_t)dims * sizeof *row);
    double *cosines = calloc((size_t)k * (size_t)(n_vocab > 0 ? n_vocab : 1), sizeof *cosines);
    unsigned char *taken = calloc((size_t)(n_vocab > 0 ? n_vocab : 1), 1);
    if (!cen || !row || !cosines || !taken) {
        free(cen), free(row), free(cosines), free(taken);
        return vdx_fail_oom(err, "for %d cluster centroids", k);
    }
    for (int64_t i = 0; i < vectors->n; i++) {
        if (cluster[i] < 0 || cluster[i] >= k) {
            free(cen), free(row), free(cosines), free(taken);
            return vdx_fail_kind(err, VDX_ERR_INVALID, "item %lld: cluster %d outside 0..%d",
                                 (long long)i, cluster[i], k - 1);
        }
        widen(vectors, i, 1, row);
        for (int j = 0; j < dims; j++)
            cen[(int64_t)cluster[i] * dims + j] += row[j];
    }
    /* each cluster's cosine to each entry (|centroid| is common to a row, so it is left
     * out); an empty cluster stays unnamed (-1) and takes no entry */
    int unnamed = 0;
    for (int c = 0; c < k; c++) {
        double *v = cen + (int64_t)c * dims, norm = 0;
        for (int j = 0; j < dims; j++)
            norm += v[j] * v[j];
        names[c] = norm > 0 && n_vocab > 0 ? -2 : -1; /* -2: to be named */
        unnamed += names[c] == -2;
        for (int w = 0; w < n_vocab && norm > 0; w++) {
            const float *t = vocab + (int64_t)w * dims;
            double dot = 0, tn = 0;
            for (int j = 0; j < dims; j++)
                dot += v[j] * t[j], tn += (double)t[j] * t[j];
            cosines[(int64_t)c * n_vocab + w] = tn > 0 ? dot / sqrt(tn) / sqrt(norm) : -INFINITY;
        }
    }
    /* Distinct names: the best-matching (cluster, entry) pair of all is named first, then
     * the best of what remains, so two clusters never share a name while the vocabulary
     * lasts; the cluster that matches a word best keeps it and the other gets its next best
     * (two beach clusters: "beach" and "shore"). Once every entry is taken, entries repeat. */
    for (; unnamed > 0; unnamed--) {
        int best_c = -1, best_w = -1, reuse = 1;
        for (int w = 0; w < n_vocab && reuse; w++)
            reuse = taken[w];
        double best = -INFINITY;
        for (int c = 0; c < k; c++)
            for (int w = 0; names[c] == -2 && w < n_vocab; w++) {
                double cosv = cosines[(int64_t)c * n_vocab + w];
                if ((reuse || !taken[w]) && (best_c < 0 || cosv > best))
                    best = cosv, best_c = c, best_w = w;
            }
        names[best_c] = best_w;
        taken[best_w] = 1;
    }
    free(cen), free(row), free(cosines), free(taken);
    return 0;
}
