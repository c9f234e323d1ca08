/* Module-private (src/map): the pieces of the layout that the map file and the placement
 * of new items share with layout.c, and the benchmark's PCA baseline. */
#ifndef VDX_MAP_INTERNAL_H
#define VDX_MAP_INTERNAL_H

#include <stdint.h>

#include "vdx/map.h"

/* splitmix64 step */
uint64_t map_rand(uint64_t *state);
/* Options with every default filled in for n items. */
void map_defaults(const vdx_map_options *in, vdx_map_options *out, int64_t n);
/* The k nearest rows of every row of v (self excluded; k < n), cosine distance
 * ascending, ties by index: nb/nd hold n*k entries. Exact up to o->exact_max rows, else searched in the
 * o->probe nearest of √n k-means partitions. */
int map_knn(const vdx_map_vectors *v, int k, const vdx_map_options *o, int32_t *nb,
            float *nd, vdx_error *err);
/* UMAP's membership weights of one item's k neighbour distances (ascending). */
void map_smooth_weights(const float *d, int k, float *w);
/* a, b of the curve 1/(1 + a d^2b) closest to UMAP's target for min_dist (spread 1). */
void map_fit_ab(double min_dist, double *a, double *b);
/* The PCA projection onto the first two components, scaled into [-10, 10]. */
int map_pca(const vdx_map_vectors *v, uint64_t seed, float *xy, vdx_error *err);

#endif
