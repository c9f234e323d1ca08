/* Keeps a test program's temporary files in one private directory (TMPDIR is pointed at
 * it, so test_tmpdir() creates its folders inside) and removes it at the end. */
#ifndef VDX_TEST_TMP_H
#define VDX_TEST_TMP_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char test_tmp_root[4096];

static int test_tmp_remove(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void test_tmp_begin(const char *suite)
{
    const char *t = getenv("TMPDIR");
    snprintf(test_tmp_root, sizeof test_tmp_root, "%s/vdx-%s-XXXXXX", t && *t ? t : "/tmp",
             suite);
    if (!mkdtemp(test_tmp_root)) {
        perror("mkdtemp");
        exit(2);
    }
    setenv("TMPDIR", test_tmp_root, 1);
}

static inline void test_tmp_end(void)
{
    if (!getenv("VDX_KEEP_TMP"))
        nftw(test_tmp_root, test_tmp_remove, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
