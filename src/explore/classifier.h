/* Private to src/explore/: the classifier's cross-validation refits (classifier.c). */
#ifndef VDX_EXPLORE_CLASSIFIER_H
#define VDX_EXPLORE_CLASSIFIER_H

#include "vdx/explore.h"

/* `folds` refits of vdx_classifier_fit: fold f trains W's row f (dims floats, its start
 * in, its result out) on the rows i with fold_of[i] != f, in row order, for `iters` steps
 * of rate lr. The folds are shared out among OpenMP's team (when it is free and the work
 * is worth it); each fold's result is bit for bit what vdx_classifier_fit gives on its
 * rows alone (the same operations in the same order), whatever the number of threads. */
int classifier_fit_folds(const float *X, const float *y, const int *fold_of, int n, int dims,
                         int folds, float *W, int iters, float lr, vdx_error *err);

#endif
