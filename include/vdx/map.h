/* The map: 2-D coordinates for every item of a collection, computed from the vectors
 * (a k-nearest-neighbour graph, UMAP's fuzzy simplicial set, negative-sampling SGD from
 * a PCA start), clusters found on the layout and named by CLIP zero-shot naming against a
 * vocabulary of visual nouns. The layout is persisted beside the collection (map.bin,
 * written atomically with its parameters); items ingested after a build are placed at
 * the weighted mean of their mapped neighbours when the map is opened, until the next
 * build. Design, file format and measurements: docs/map.md. */
#ifndef VDX_MAP_H
#define VDX_MAP_H

#include <cjson/cJSON.h>

#include "vdx/store.h"
#include "vdx/textmodel.h"

typedef struct vdx_map_options {
    int neighbors;    /* k of the neighbour graph; 0: 15 */
    double min_dist;  /* UMAP's min_dist (how tightly points pack); 0: 0.1 */
    int epochs;       /* SGD epochs; 0: 500 below 10000 items, else 200 */
    int negatives;    /* negative samples per positive one; 0: 5 */
    uint64_t seed;    /* 0: 1. The same seed, data and thread count give the same map */
    int clusters;     /* clusters on the layout; 0: about √(n/10), between 2 and 64 */
    int threads;      /* kNN threads (OpenBLAS); 0: all cores */
    int exact_max;    /* up to this many items the neighbours are exact; above, they are
                       * searched in the `probe` nearest of √n k-means partitions; 0: 50000 */
    int probe;        /* partitions searched per item above exact_max; 0: 8 */
    /* progress: stage ("vectors", "neighbours", "graph", "init", "layout", "clusters",
     * "writing") and the fraction of that stage done; called from the calling thread */
    void (*on_progress)(const char *stage, double fraction, void *user);
    void *user;
} vdx_map_options;

/* ---- The computation on plain arrays (no store) ---- */

/* The vectors a layout reads, held as int8 codes with one scale an item: vector i is
 * scales[i] * codes[i*dims .. i*dims+dims-1]. A quarter of float32's memory (516 bytes
 * an item at 512-d), which keeps a build within 1 KB an item; the neighbours found from
 * the codes are the float32 ones but for near ties (measured: docs/map.md). */
typedef struct vdx_map_vectors {
    int8_t *codes;  /* n*dims */
    float *scales;  /* n */
    int64_t n;
    int dims;
} vdx_map_vectors;
/* Room for n vectors of dims values (-1 when out of memory). */
int vdx_map_vectors_alloc(vdx_map_vectors *v, int64_t n, int dims, vdx_error *err);
/* Rows first..first+count-1 from count*dims floats: scale max|x|/127, codes rounded to
 * nearest. A non-finite value is refused (INVALID, naming the row and dimension). */
int vdx_map_vectors_set(vdx_map_vectors *v, int64_t first, int64_t count, const float *x,
                        vdx_error *err);
void vdx_map_vectors_free(vdx_map_vectors *v);
/* 2-D layout of the n unit vectors of v into xy (2n floats: x0 y0 x1 y1 ...). Needs
 * n >= 2. Deterministic for the same input, options and thread count. */
int vdx_map_layout(const vdx_map_vectors *v, const vdx_map_options *opts, float *xy,
                   vdx_error *err);
/* k-means (k-means++ start from seed, Lloyd rounds) of the n points of xy into k
 * clusters: cluster[i] in 0..k-1, numbered by size (0 the largest). */
int vdx_map_cluster(const float *xy, int64_t n, int k, uint64_t seed, int32_t *cluster,
                    vdx_error *err);
/* For each of k clusters, a vocabulary entry (n_vocab vectors of v->dims floats) whose
 * direction matches the normalised mean of the cluster's vectors (cosine): names[c], or -1
 * for an empty cluster (or no vocabulary). Names are distinct while the vocabulary lasts:
 * the best (cluster, entry) pair of all is taken first, then the best of the rest (ties to
 * the lower cluster, then the lower entry). cluster holds v->n entries. */
int vdx_map_name_clusters(const vdx_map_vectors *v, const int32_t *cluster, int k,
                          const float *vocab, int n_vocab, int *names, vdx_error *err);

/* ---- The vocabulary of cluster names ---- */

typedef struct vdx_map_vocab {
    char **words;     /* n entries */
    float *vectors;   /* n*dims unit vectors of the prompts "a photo of a WORD" */
    int n, dims;
    char model[256];  /* the text model that embedded them */
} vdx_map_vocab;

/* Visual nouns from WordNet (data.noun and index.noun in wordnet_dir, e.g.
 * /usr/share/wordnet): single-word lemmas whose most frequent sense descends from
 * physical_entity.n.01 and which have at least min_tagged tagged senses (2 gives about
 * 870 words), sorted. Fills words/n only. */
int vdx_map_vocab_wordnet(const char *wordnet_dir, int min_tagged, vdx_map_vocab *vocab,
                          vdx_error *err);
/* Embeds every word as "a photo of a WORD" with the text tower (unit vectors), reporting
 * progress ("vocabulary", fraction). */
int vdx_map_vocab_embed(const vdx_text_model *model, vdx_map_vocab *vocab,
                        void (*on_progress)(const char *stage, double fraction, void *user),
                        void *user, vdx_error *err);
/* Stored beside the collection (map-vocab.bin, atomic). Load: NOT_FOUND when absent. */
int vdx_map_vocab_save(vdx_store *store, const vdx_map_vocab *vocab, vdx_error *err);
int vdx_map_vocab_load(vdx_store *store, vdx_map_vocab *vocab, vdx_error *err);
void vdx_map_vocab_free(vdx_map_vocab *vocab);

/* ---- The map of a collection ---- */

/* Computes the map of every item the handle sees and writes it to the collection's
 * map.bin atomically (a build killed at any point leaves the previous map or none).
 * vocab (may be NULL: clusters without names) must be of the collection's dims. */
int vdx_map_build(vdx_store *store, const vdx_map_options *opts, const vdx_map_vocab *vocab,
                  vdx_error *err);

typedef struct vdx_map vdx_map;

/* Opens the collection's map (NOT_FOUND when it was never built; CORRUPT when map.bin is
 * damaged) and places items stored since the build: each at the weighted mean of its
 * mapped nearest neighbours (the UMAP membership weights of the build's k). */
vdx_map *vdx_map_open(vdx_store *store, vdx_error *err);
void vdx_map_close(vdx_map *map);

typedef struct vdx_map_point {
    const char *id;
    float x, y;
    int32_t cluster;  /* -1 for a placed item */
    int placed;       /* 1: ingested after the build, placed among its neighbours */
} vdx_map_point;

int64_t vdx_map_count(const vdx_map *map);
/* Points in map order (the build's items, then the placed ones); i < count. */
const vdx_map_point *vdx_map_points(const vdx_map *map);
/* Index of id, or -1. */
int64_t vdx_map_find(const vdx_map *map, const char *id);
int vdx_map_cluster_count(const vdx_map *map);
/* The name of cluster c ("" when the map was built without a vocabulary). */
const char *vdx_map_cluster_name(const vdx_map *map, int c);
/* Bounding box of every point: min_x, min_y, max_x, max_y. */
void vdx_map_bounds(const vdx_map *map, float box[4]);
/* {"items","placed","parameters":{...},"built","seconds","clusters":[{"id","name","size",
 * "x","y"}]}: a new object. */
cJSON *vdx_map_describe(const vdx_map *map);
/* A string that changes whenever the map or the placed items change (for ETags). */
const char *vdx_map_version(const vdx_map *map);

#endif
