/* A minimal test harness shared by every tests/test_*.c program (TAP-like output).
 *
 *   TEST(name) { CHECK(x == 1, "x is %d", x); }
 *   int main(void) { RUN(name); return test_summary("suite"); }
 *
 * Each case prints "ok - name", "not ok - name: why" or "skip - name: why"; the program
 * ends with "suite: N passed, N failed, N skipped" and exits non-zero on a failure.
 * scripts/run-tests.sh adds the counts of all programs. Fixtures come from ../shared
 * (or $VDX_SHARED); outside CI a missing fixture skips, under CI=true it fails. */
#ifndef VDX_TEST_H
#define VDX_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int test_passed, test_failed, test_skipped;
static int test_case_failed, test_case_skipped;
static char test_skip_reason[512];

#define TEST(name) static void name(void)

#define CHECK(cond, ...) CHECK_VALUE_(!!(cond), #cond, __VA_ARGS__)
#define CHECK_VALUE_(ok, text, ...)                                                      \
    do {                                                                                 \
        if (!(ok)) {                                                                     \
            if (!test_case_failed)                                                       \
                printf("\n");                                                            \
            printf("    %s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, text);           \
            printf(__VA_ARGS__);                                                         \
            printf("\n");                                                                \
            test_case_failed = 1;                                                        \
        }                                                                                \
    } while (0)

/* Like CHECK but stops the test case when it fails. */
#define REQUIRE(cond, ...)                                                               \
    do {                                                                                 \
        int require_ok_ = !!(cond); /* evaluated once */                                 \
        CHECK_VALUE_(require_ok_, #cond, __VA_ARGS__);                                   \
        if (!require_ok_)                                                                \
            return;                                                                      \
    } while (0)

#define SKIP(...)                                                                        \
    do {                                                                                 \
        snprintf(test_skip_reason, sizeof test_skip_reason, __VA_ARGS__);                \
        test_case_skipped = 1;                                                           \
        return;                                                                          \
    } while (0)

#define RUN(name)                                                                        \
    do {                                                                                 \
        test_case_failed = test_case_skipped = 0;                                        \
        fflush(stdout);                                                                  \
        name();                                                                          \
        if (test_case_failed) {                                                          \
            printf("not ok - %s\n", #name);                                              \
            test_failed++;                                                               \
        } else if (test_case_skipped) {                                                  \
            printf("skip - %s: %s\n", #name, test_skip_reason);                          \
            test_skipped++;                                                              \
        } else {                                                                         \
            printf("ok - %s\n", #name);                                                  \
            test_passed++;                                                               \
        }                                                                                \
        fflush(stdout);                                                                  \
    } while (0)

static inline int test_summary(const char *suite)
{
    printf("%s: %d passed, %d failed, %d skipped\n", suite, test_passed, test_failed,
           test_skipped);
    return test_failed ? 1 : 0;
}

/* Path of a file under ../shared (or $VDX_SHARED). Returns NULL when the shared folder
 * is absent: the caller then SKIPs; under CI=true, a missing fixture fails the case. */
static inline const char *test_shared_path(const char *rel)
{
    static char buf[8][4096];
    static int slot;
    const char *root = getenv("VDX_SHARED");
    if (!root || !*root)
        root = "../shared";
    char *out = buf[slot++ % 8];
    snprintf(out, sizeof buf[0], "%s/%s", root, rel);
    struct stat st;
    if (stat(out, &st) != 0) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0) {
            printf("    missing fixture %s (CI=true: a missing fixture is a failure)\n", out);
            test_case_failed = 1;
        }
        return NULL;
    }
    return out;
}

/* SKIPs (or, under CI, fails) the current case when a shared fixture is missing. */
#define NEED_SHARED(var, rel)                                                            \
    const char *var = test_shared_path(rel);                                             \
    if (!var) {                                                                          \
        if (test_case_failed)                                                            \
            return;                                                                      \
        SKIP("../shared/%s not found", rel);                                             \
    }

/* A fresh empty temporary directory (under $TMPDIR), path in a static buffer. */
static inline const char *test_tmpdir(const char *tag)
{
    static char buf[8][4096];
    static int slot;
    const char *t = getenv("TMPDIR");
    char *out = buf[slot++ % 8];
    snprintf(out, sizeof buf[0], "%s/vdx-test-%s-XXXXXX", t && *t ? t : "/tmp", tag);
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        exit(2);
    }
    return out;
}

#endif
