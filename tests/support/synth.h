/* Synthetic embeddings with CLIP's geometry, for tests and benchmarks at any scale.
 *
 * CLIP's unit vectors are not spread over the sphere: image vectors sit in a narrow cone
 * (two unrelated photos have cosine ≈ 0.5), grouped in clusters of similar content, and
 * text vectors sit in another cone, offset from the images' by a shared "modality gap"
 * vector, so a caption and its photo have cosine only ≈ 0.3. An index built on image
 * vectors sees text queries out of its distribution; uniform random vectors (the worst
 * case for any index) are available with `uniform`. docs/synthetic-data.md derives the
 * mixing coefficients from the target cosines below.
 *
 * Every vector is a pure function of (parameters, seed, item number): items can be made
 * in any order, in parallel, and item i is the same whatever n is. Vectors are float32,
 * unit length. Nothing here allocates per item; a synth is read-only after synth_init,
 * so any number of threads may generate from one. */
#ifndef VDX_TESTS_SYNTH_H
#define VDX_TESTS_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "vdx/store.h"

typedef struct synth_params {
    int dim;             /* vector dimension (512) */
    int clusters;        /* number of image clusters (1000) */
    double image_cos;    /* mean cosine of two images of different clusters: the cone (0.5) */
    double cluster_cos;  /* mean cosine of two images of the same cluster (0.75) */
    double text_cos;     /* mean cosine of two unrelated texts: the text cone (0.6) */
    double match_cos;    /* cosine of a caption and the image it describes (0.3) */
    double cross_cos;    /* mean cosine of a text and an unrelated image (0.18) */
    double skew;         /* cluster sizes ∝ 1/(rank+1)^skew; 0 = equal sizes (0.5) */
    uint64_t seed;       /* everything follows from it (1) */
    int uniform;         /* 1: i.i.d. uniform unit vectors for images and texts alike (0) */
} synth_params;

/* Measured cosines of a generator (synth_measure): means over random pairs. */
typedef struct synth_stats {
    double image_image;    /* images of different clusters */
    double same_cluster;   /* two images of one cluster */
    double text_text;      /* captions of unrelated images */
    double matched;        /* a caption and its own image */
    double cross;          /* a caption and an unrelated image */
    double gap_norm;       /* |mean(text) - mean(image)| */
} synth_stats;

typedef struct synth synth;

/* The defaults above. */
void synth_defaults(synth_params *p);

/* Parses one command-line flag `--synth-NAME=VALUE` (NAME: dim, clusters, image-cos,
 * cluster-cos, text-cos, match-cos, cross-cos, skew, seed, uniform). Returns 1 when the
 * flag was one of these and was set, 0 when it is not a synth flag, -1 (with a message in
 * err) when its value is bad. */
int synth_parse_flag(synth_params *p, const char *arg, char *err, size_t errlen);

/* One line per flag with its current value, for a program's --help. */
void synth_flags_help(const synth_params *p, char *out, size_t outlen);

/* Validates the parameters (the target cosines must be reachable: docs/synthetic-data.md)
 * and builds the generator. Returns NULL with a message in err when they are not. */
synth *synth_new(const synth_params *p, char *err, size_t errlen);
void synth_free(synth *s);
const synth_params *synth_params_of(const synth *s);

/* The cluster item `item` belongs to (0..clusters-1; 0 when uniform). */
int synth_cluster_of(const synth *s, uint64_t item);

/* Appends the image vectors of items 0..n-1 to store (its model's dims must be the
 * generator's), with ids "i<item>" and no url; with bucket_column, also a metadata column
 * of that name holding (item × 7919) mod 100 (a 1 % filter is `column = 'K'`). Batches of
 * 4,096. 0, or -1 with err set. */
int synth_fill_store(const synth *s, vdx_store *store, int64_t n, const char *bucket_column,
                     vdx_error *err);

/* Image vector of one item; n consecutive items from `first` into out[n * dim]. */
void synth_image(const synth *s, uint64_t item, float *out);
void synth_images(const synth *s, uint64_t first, size_t n, float *out);

/* A caption of image `item` (text→image query whose right answer is that item and its
 * cluster); `variant` picks one of many captions of the same image. */
void synth_text_for_item(const synth *s, uint64_t item, uint64_t variant, float *out);

/* A prompt for a whole cluster ("a photo of a dog"): its semantic part is the cluster's
 * centre instead of one image's. */
void synth_text_for_cluster(const synth *s, int cluster, uint64_t variant, float *out);

/* Measures the realised geometry over `pairs` random pairs of each kind. */
void synth_measure(const synth *s, int pairs, synth_stats *out);

#endif
