/* Private to src/explore/: the classifiers' cross-validation refits (classifier.c). */
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

/* `folds` fits of vdx_classifier_fit_anchored: fold f fits W's row f (dims floats, out)
 * on the rows i with fold_of[i] != f, with every weak row; shared out among OpenMP's
 * team like classifier_fit_folds, each fold's result that of one call on its rows. */
int classifier_fit_anchored_folds(const float *X, const float *y, const int *fold_of, int n,
                                  const float *weak, int n_weak, const float *anchor, int dims,
                                  int folds, const vdx_anchored_options *opts, float *W,
                                  vdx_error *err);

#endif
