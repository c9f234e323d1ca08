/* Synthetic embeddings with CLIP's geometry (see synth.h and docs/synthetic-data.md).
 *
 * Construction, with orthonormal axes u (the image cone's axis) and g (the modality gap's
 * direction) and unit cluster centres m_k orthogonal to both:
 *   image x = a·u + √(1−a²)·s,          s = √β·m_k + √(1−β)·e   (e ⟂ u, g, m_k)
 *   text  t = at·u + ag·g + as·s + an·n                          (n ⟂ u, g, s)
 * so x·x' = a² across clusters, a² + (1−a²)β within one, t·x = at·a + as·√(1−a²) for
 * the caption of x, t·x' = at·a for an unrelated image and t·t' = at² + ag². The
 * coefficients are solved from the target cosines in synth_new. Random numbers come from
 * a counter-based hash (splitmix64 of seed, stream, item, variant), so every vector is a
 * pure function of its item number. */
#include "synth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct synth {
    synth_params p;
    double a, beta;             /* image: cone and cluster coefficients */
    double at, ag, as, an;      /* text: axis, gap, semantic, noise coefficients */
    float *u, *g;               /* dim each */
    float *centres;             /* clusters × dim */
    double *cdf;                /* clusters: cumulative cluster weights, last = 1 */
};

enum { STREAM_AXES = 1, STREAM_CENTRE, STREAM_CLUSTER, STREAM_IMAGE, STREAM_TEXT,
       STREAM_CTEXT, STREAM_MEASURE };

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct rng {
    uint64_t state;
} rng;

static rng rng_for(uint64_t seed, uint64_t stream, uint64_t item, uint64_t variant)
{
    rng r = { mix64(mix64(mix64(seed ^ mix64(stream)) ^ item) ^ variant) };
    return r;
}

static uint64_t rng_next(rng *r)
{
    r->state += 0x9e3779b97f4a7c15ull;
    return mix64(r->state);
}

/* Uniform in (0, 1). */
static double rng_uniform(rng *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* dim standard normal numbers (Box–Muller, both outputs used). */
static void rng_gauss(rng *r, float *out, int dim)
{
    for (int i = 0; i < dim; i += 2) {
        double u1 = rng_uniform(r), u2 = rng_uniform(r);
        double rad = sqrt(-2.0 * log(u1)), ang = 6.283185307179586 * u2;
        out[i] = (float)(rad * cos(ang));
        if (i + 1 < dim)
            out[i + 1] = (float)(rad * sin(ang));
    }
}

static double dot(const float *x, const float *y, int dim)
{
    double s = 0;
    for (int i = 0; i < dim; i++)
        s += (double)x[i] * y[i];
    return s;
}

static void normalize(float *x, int dim)
{
    double n = sqrt(dot(x, x, dim));
    if (n > 0)
        for (int i = 0; i < dim; i++)
            x[i] = (float)(x[i] / n);
}

/* Removes from x its components along the unit vectors axes[0..count-1] (Gram–Schmidt). */
static void orthogonalize(float *x, int dim, const float *const *axes, int count)
{
    for (int k = 0; k < count; k++) {
        double d = dot(x, axes[k], dim);
        for (int i = 0; i < dim; i++)
            x[i] = (float)(x[i] - d * axes[k][i]);
    }
}

/* A random unit vector orthogonal to the given unit axes. */
static void random_direction(rng *r, float *out, int dim, const float *const *axes, int count)
{
    rng_gauss(r, out, dim);
    orthogonalize(out, dim, axes, count);
    normalize(out, dim);
}

void synth_defaults(synth_params *p)
{
    *p = (synth_params){ .dim = 512, .clusters = 1000, .image_cos = 0.5, .cluster_cos = 0.75,
                         .text_cos = 0.6, .match_cos = 0.3, .cross_cos = 0.18, .skew = 0.5,
                         .seed = 1, .uniform = 0 };
}

static int parse_double(const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}

static int parse_u64(const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*v == '-')
        return -1;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end)
        return -1;
    *out = x;
    return 0;
}

int synth_parse_flag(synth_params *p, const char *arg, char *err, size_t errlen)
{
    static const char prefix[] = "--synth-";
    if (strncmp(arg, prefix, sizeof prefix - 1) != 0)
        return 0;
    const char *name = arg + sizeof prefix - 1;
    const char *eq = strchr(name, '=');
    if (!eq) {
        snprintf(err, errlen, "%s: expected --synth-NAME=VALUE", arg);
        return -1;
    }
    size_t len = (size_t)(eq - name);
    const char *v = eq + 1;
    static const struct { const char *name; size_t off; } doubles[] = {
        { "image-cos", offsetof(synth_params, image_cos) },
        { "cluster-cos", offsetof(synth_params, cluster_cos) },
        { "text-cos", offsetof(synth_params, text_cos) },
        { "match-cos", offsetof(synth_params, match_cos) },
        { "cross-cos", offsetof(synth_params, cross_cos) },
        { "skew", offsetof(synth_params, skew) },
    };
    for (size_t i = 0; i < sizeof doubles / sizeof doubles[0]; i++) {
        if (strlen(doubles[i].name) == len && !strncmp(name, doubles[i].name, len)) {
            if (parse_double(v, (double *)((char *)p + doubles[i].off))) {
                snprintf(err, errlen, "%s: '%s' is not a number", arg, v);
                return -1;
            }
            return 1;
        }
    }
    uint64_t x;
    if ((len == 3 && !strncmp(name, "dim", 3)) || (len == 8 && !strncmp(name, "clusters", 8))) {
        if (parse_u64(v, &x) || x < 1 || x > 1000000) {
            snprintf(err, errlen, "%s: expected an integer from 1 to 1000000", arg);
            return -1;
        }
        if (name[0] == 'd')
            p->dim = (int)x;
        else
            p->clusters = (int)x;
        return 1;
    }
    if (len == 4 && !strncmp(name, "seed", 4)) {
        if (parse_u64(v, &x)) {
            snprintf(err, errlen, "%s: expected a non-negative integer", arg);
            return -1;
        }
        p->seed = x;
        return 1;
    }
    if (len == 7 && !strncmp(name, "uniform", 7)) {
        if (strcmp(v, "0") && strcmp(v, "1")) {
            snprintf(err, errlen, "%s: expected 0 or 1", arg);
            return -1;
        }
        p->uniform = v[0] == '1';
        return 1;
    }
    snprintf(err, errlen, "%s: unknown synthetic-data flag", arg);
    return -1;
}

void synth_flags_help(const synth_params *p, char *out, size_t outlen)
{
    snprintf(out, outlen,
             "  --synth-dim=%d          vector dimension\n"
             "  --synth-clusters=%d   image clusters\n"
             "  --synth-image-cos=%g    cosine of images of different clusters (the cone)\n"
             "  --synth-cluster-cos=%g cosine of images of one cluster\n"
             "  --synth-text-cos=%g     cosine of unrelated texts (the text cone)\n"
             "  --synth-match-cos=%g    cosine of a caption and its image\n"
             "  --synth-cross-cos=%g   cosine of a text and an unrelated image\n"
             "  --synth-skew=%g         cluster sizes ~ 1/(rank+1)^skew\n"
             "  --synth-seed=%llu          random seed\n"
             "  --synth-uniform=%d        1: uniform random unit vectors instead\n",
             p->dim, p->clusters, p->image_cos, p->cluster_cos, p->text_cos, p->match_cos,
             p->cross_cos, p->skew, (unsigned long long)p->seed, p->uniform);
}

synth *synth_new(const synth_params *p, char *err, size_t errlen)
{
    if (p->dim < 8 || p->clusters < 1) {
        snprintf(err, errlen, "synthetic data: dim must be at least 8 and clusters at least 1");
        return NULL;
    }
    if (!p->uniform && (p->clusters + 3 > p->dim * 64)) {
        snprintf(err, errlen, "synthetic data: %d clusters is too many for dimension %d",
                 p->clusters, p->dim);
        return NULL;
    }
    double a2 = p->image_cos;
    if (!p->uniform) {
        if (!(a2 > 0 && a2 < 1) || !(p->cluster_cos >= a2 && p->cluster_cos < 1)) {
            snprintf(err, errlen, "synthetic data: need 0 < image-cos (%g) <= cluster-cos (%g) < 1",
                     a2, p->cluster_cos);
            return NULL;
        }
        if (!(p->cross_cos >= 0 && p->match_cos >= p->cross_cos && p->match_cos < 1)) {
            snprintf(err, errlen, "synthetic data: need 0 <= cross-cos (%g) <= match-cos (%g) < 1",
                     p->cross_cos, p->match_cos);
            return NULL;
        }
        if (p->skew < 0 || p->skew > 10) {
            snprintf(err, errlen, "synthetic data: skew %g is outside 0..10", p->skew);
            return NULL;
        }
    }
    synth *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "synthetic data: out of memory");
        return NULL;
    }
    s->p = *p;
    if (!p->uniform) {
        s->a = sqrt(a2);
        s->beta = (p->cluster_cos - a2) / (1 - a2);
        s->at = p->cross_cos / s->a;
        s->as = (p->match_cos - p->cross_cos) / sqrt(1 - a2);
        double ag2 = p->text_cos - s->at * s->at;
        double an2 = 1 - p->text_cos - s->as * s->as;
        if (ag2 < 0 || an2 < 0) {
            snprintf(err, errlen,
                     "synthetic data: text-cos %g is unreachable with these cosines (it must lie "
                     "in [%g, %g])", p->text_cos, s->at * s->at, 1 - s->as * s->as);
            free(s);
            return NULL;
        }
        s->ag = sqrt(ag2);
        s->an = sqrt(an2);
    }
    int dim = p->dim, nc = p->uniform ? 1 : p->clusters;
    s->u = malloc(sizeof(float) * (size_t)dim * 2);
    s->centres = malloc(sizeof(float) * (size_t)dim * nc);
    s->cdf = malloc(sizeof(double) * nc);
    if (!s->u || !s->centres || !s->cdf) {
        synth_free(s);
        snprintf(err, errlen, "synthetic data: out of memory");
        return NULL;
    }
    s->g = s->u + dim;
    rng r = rng_for(p->seed, STREAM_AXES, 0, 0);
    random_direction(&r, s->u, dim, NULL, 0);
    const float *axes[2] = { s->u, s->g };
    random_direction(&r, s->g, dim, axes, 1);
    double total = 0;
    for (int k = 0; k < nc; k++) {
        rng rc = rng_for(p->seed, STREAM_CENTRE, (uint64_t)k, 0);
        random_direction(&rc, s->centres + (size_t)k * dim, dim, axes, 2);
        total += p->uniform ? 1 : pow(k + 1.0, -p->skew);
        s->cdf[k] = total;
    }
    for (int k = 0; k < nc; k++)
        s->cdf[k] /= total;
    s->cdf[nc - 1] = 1;
    return s;
}

void synth_free(synth *s)
{
    if (!s)
        return;
    free(s->u);
    free(s->centres);
    free(s->cdf);
    free(s);
}

const synth_params *synth_params_of(const synth *s)
{
    return &s->p;
}

int synth_cluster_of(const synth *s, uint64_t item)
{
    if (s->p.uniform)
        return 0;
    rng r = rng_for(s->p.seed, STREAM_CLUSTER, item, 0);
    double x = rng_uniform(&r);
    int lo = 0, hi = s->p.clusters - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (s->cdf[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The semantic unit vector of an image: √β·m_k + √(1−β)·e, e ⟂ u, g, m_k. */
static void image_semantic(const synth *s, uint64_t item, float *out)
{
    int dim = s->p.dim, k = synth_cluster_of(s, item);
    const float *m = s->centres + (size_t)k * dim;
    const float *axes[3] = { s->u, s->g, m };
    rng r = rng_for(s->p.seed, STREAM_IMAGE, item, 0);
    random_direction(&r, out, dim, axes, 3);
    double cb = sqrt(s->beta), ce = sqrt(1 - s->beta);
    for (int i = 0; i < dim; i++)
        out[i] = (float)(cb * m[i] + ce * out[i]);
}

void synth_image(const synth *s, uint64_t item, float *out)
{
    int dim = s->p.dim;
    if (s->p.uniform) {
        rng r = rng_for(s->p.seed, STREAM_IMAGE, item, 0);
        random_direction(&r, out, dim, NULL, 0);
        return;
    }
    image_semantic(s, item, out);
    double ca = s->a, cs = sqrt(1 - s->a * s->a);
    for (int i = 0; i < dim; i++)
        out[i] = (float)(ca * s->u[i] + cs * out[i]);
    normalize(out, dim); /* exact unit length after float rounding */
}

void synth_images(const synth *s, uint64_t first, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++)
        synth_image(s, first + i, out + i * (size_t)s->p.dim);
}

/* t = at·u + ag·g + as·sem + an·n, n ⟂ u, g, sem. sem is a unit vector; out may not alias it. */
static void text_from_semantic(const synth *s, const float *sem, rng *r, float *out)
{
    int dim = s->p.dim;
    const float *axes[3] = { s->u, s->g, sem };
    random_direction(r, out, dim, axes, 3);
    for (int i = 0; i < dim; i++)
        out[i] = (float)(s->at * s->u[i] + s->ag * s->g[i] + s->as * sem[i] + s->an * out[i]);
    normalize(out, dim);
}

void synth_text_for_item(const synth *s, uint64_t item, uint64_t variant, float *out)
{
    int dim = s->p.dim;
    rng r = rng_for(s->p.seed, STREAM_TEXT, item, variant);
    if (s->p.uniform) {
        random_direction(&r, out, dim, NULL, 0);
        return;
    }
    float *sem = malloc(sizeof(float) * (size_t)dim);
    if (!sem) {
        abort(); /* a test helper: 2 KB that cannot be had is not worth a code path */
    }
    image_semantic(s, item, sem);
    normalize(sem, dim);
    text_from_semantic(s, sem, &r, out);
    free(sem);
}

void synth_text_for_cluster(const synth *s, int cluster, uint64_t variant, float *out)
{
    int dim = s->p.dim;
    rng r = rng_for(s->p.seed, STREAM_CTEXT, (uint64_t)cluster, variant);
    if (s->p.uniform) {
        random_direction(&r, out, dim, NULL, 0);
        return;
    }
    int k = cluster < 0 ? 0 : cluster >= s->p.clusters ? s->p.clusters - 1 : cluster;
    text_from_semantic(s, s->centres + (size_t)k * dim, &r, out);
}

void synth_measure(const synth *s, int pairs, synth_stats *out)
{
    int dim = s->p.dim;
    float *x = malloc(sizeof(float) * (size_t)dim * 6);
    double *mt = calloc((size_t)dim * 2, sizeof(double));
    if (!x || !mt)
        abort();
    float *y = x + dim, *t = x + 2 * dim, *t2 = x + 3 * dim, *z = x + 4 * dim;
    double *mi = mt + dim;
    memset(out, 0, sizeof *out);
    int same = 0, diff = 0;
    rng r = rng_for(s->p.seed, STREAM_MEASURE, 0, 0);
    for (int n = 0; n < pairs; n++) {
        uint64_t i = rng_next(&r) >> 24, j = rng_next(&r) >> 24;
        synth_image(s, i, x);
        synth_image(s, j, y);
        synth_text_for_item(s, i, 0, t);
        synth_text_for_item(s, j, 1, t2);
        if (synth_cluster_of(s, i) != synth_cluster_of(s, j)) {
            out->image_image += dot(x, y, dim);
            out->cross += dot(t, y, dim);
            out->text_text += dot(t, t2, dim);
            diff++;
        }
        out->matched += dot(t, x, dim);
        /* a second image of i's cluster: the next items until one falls in it */
        uint64_t k = i + 1;
        while (!s->p.uniform && synth_cluster_of(s, k) != synth_cluster_of(s, i) && k < i + 1000000)
            k++;
        synth_image(s, k, z);
        out->same_cluster += dot(x, z, dim);
        same++;
        for (int d = 0; d < dim; d++) {
            mt[d] += t[d];
            mi[d] += x[d];
        }
    }
    if (diff) {
        out->image_image /= diff;
        out->cross /= diff;
        out->text_text /= diff;
    }
    if (pairs > 0) {
        out->matched /= pairs;
        out->same_cluster /= same;
        double g2 = 0;
        for (int d = 0; d < dim; d++) {
            double gd = (mt[d] - mi[d]) / pairs;
            g2 += gd * gd;
        }
        out->gap_norm = sqrt(g2);
    }
    free(x);
    free(mt);
}

int synth_fill_store(const synth *s, vdx_store *store, int64_t n, const char *bucket_column,
                     vdx_error *err)
{
    enum { BATCH = 4096 };
    int dims = s->p.dim;
    float *vecs = malloc(sizeof(float) * BATCH * (size_t)dims);
    char (*ids)[24] = malloc((size_t)BATCH * 24);
    char (*bucket)[8] = malloc((size_t)BATCH * 8);
    const char **values = malloc(sizeof(char *) * BATCH);
    vdx_item *items = calloc(BATCH, sizeof *items);
    int rc = -1;
    if (!vecs || !ids || !bucket || !values || !items) {
        vdx_fail_oom(err, "for a batch of synthetic items");
        goto out;
    }
    const char *names[1] = {bucket_column};
    for (int64_t first = 0; first < n; first += BATCH) {
        int b = (int)(n - first < BATCH ? n - first : BATCH);
        synth_images(s, (uint64_t)first, (size_t)b, vecs);
        for (int i = 0; i < b; i++) {
            snprintf(ids[i], 24, "i%lld", (long long)(first + i));
            snprintf(bucket[i], 8, "%d", (int)((first + i) * 7919 % 100));
            values[i] = bucket[i];
            items[i] = (vdx_item){.id = ids[i], .url = "", .vector = vecs + (size_t)i * dims,
                                  .meta_names = names, .meta_values = values + i,
                                  .n_meta = bucket_column ? 1 : 0};
        }
        if (vdx_store_append(store, items, (size_t)b, err) != 0)
            goto out;
    }
    rc = 0;
out:
    free(vecs), free(ids), free(bucket), free(values), free(items);
    return rc;
}
