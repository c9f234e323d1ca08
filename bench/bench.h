/* Helpers the benchmark programs share: the median of timing samples and removing a
 * scratch directory tree. Header-only, because every file of bench/ is a program of its own. */
#ifndef VDX_BENCH_H
#define VDX_BENCH_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* qsort() order for doubles, ascending. */
static inline int bench_compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of the n samples of v (sorts v). */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_compare_doubles);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static inline int bench_remove_entry(const char *path, const struct stat *st, int flag,
                                     struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything below it (links are removed, not followed). 0 or -1. */
static inline int bench_remove_tree(const char *dir)
{
    return nftw(dir, bench_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
