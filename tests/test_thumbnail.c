/* Thumbnails and previews against Pillow, the reference: every line of
 * tests/golden/thumbnails/manifest.tsv names an input (the clip-tiny golden images, and eight
 * small JPEGs with EXIF orientations 1-8), a longest side and a JPEG quality, and Pillow's
 * JPEG made by the rule of tests/tools/thumbnail_goldens.py (exif_transpose, RGB, BICUBIC
 * resize to round-half-up sizes, Pillow's JPEG encoder). vdx_image_thumbnail_jpeg must give
 * the same size and, decoded, the same pixels (same libjpeg-turbo): an upside-down or
 * mirrored thumbnail, a size truncated instead of rounded, another resampling filter or a
 * lower quality all show up as pixel differences. */
#include "test.h"
#include "vdx/common.h"
#include "vdx/image.h"

#include <stdint.h>

#define MANIFEST "tests/golden/thumbnails/manifest.tsv"

struct golden_case {
    char input[512], golden[512];
    int max_side, quality, width, height;
};

static const struct golden_case *current;

static void thumbnail_matches_pillow(void)
{
    const struct golden_case *g = current;
    const char *input = g->input;
    if (strncmp(input, "fixtures/", 9) == 0) {
        NEED_SHARED(path, g->input);
        input = path;
    }
    vdx_image img = {0}, mine = {0}, ref = {0};
    vdx_error err;
    REQUIRE(vdx_image_load(input, &img, &err) == 0, "%s", err.message);
    uint8_t *jpeg = NULL;
    size_t size = 0;
    int rc = vdx_image_thumbnail_jpeg(&img, g->max_side, g->quality, &jpeg, &size, &err);
    vdx_image_free(&img);
    REQUIRE(rc == 0, "thumbnail: %s", err.message);
    rc = vdx_image_decode(jpeg, size, "thumbnail", &mine, &err);
    free(jpeg);
    REQUIRE(rc == 0, "decoding our thumbnail: %s", err.message);
    char golden[600];
    snprintf(golden, sizeof golden, "tests/golden/thumbnails/%s", g->golden);
    if (vdx_image_load(golden, &ref, &err) != 0) {
        vdx_image_free(&mine);
        REQUIRE(0, "%s", err.message);
    }
    CHECK(mine.width == g->width && mine.height == g->height && ref.width == g->width &&
              ref.height == g->height,
          "thumbnail %dx%d, Pillow's %dx%d (manifest %dx%d)", mine.width, mine.height,
          ref.width, ref.height, g->width, g->height);
    if (mine.width == ref.width && mine.height == ref.height) {
        size_t n = (size_t)mine.width * mine.height * 3, differ = 0, first = 0;
        int max_diff = 0;
        for (size_t i = 0; i < n; i++) {
            int d = abs(mine.rgb[i] - ref.rgb[i]);
            if (d && !differ++)
                first = i;
            max_diff = d > max_diff ? d : max_diff;
        }
        /* measured 2026-12-03 (libjpeg-turbo 2.1.5, Pillow 9.4): 0 values differ in every
         * case — same resize to the bit, same encoder settings. A different-but-sane
         * encoder build may round a few DCT coefficients differently: allow a max
         * difference of 2. JPEG quality 10 instead of 85 differs by > 40, an upside-down
         * thumbnail by > 100, a size truncated by one pixel changes the size. */
        CHECK(max_diff <= 2,
              "%zu of %zu values differ from Pillow's (max %d), first at y=%zu x=%zu c=%zu: "
              "%d vs %d",
              differ, n, max_diff, first / 3 / (size_t)mine.width,
              first / 3 % (size_t)mine.width, first % 3, mine.rgb[first], ref.rgb[first]);
        if (differ)
            printf("    %zu of %zu values differ from Pillow's (max %d)\n", differ, n,
                   max_diff);
    }
    vdx_image_free(&mine);
    vdx_image_free(&ref);
}

/* The eight orientation inputs hold one picture: their thumbnails must agree with each
 * other (up to JPEG noise), not only with their goldens. */
TEST(all_eight_orientations_give_the_same_picture)
{
    vdx_image first = {0};
    vdx_error err;
    for (int o = 1; o <= 8; o++) {
        char path[128];
        snprintf(path, sizeof path, "tests/golden/thumbnails/orient-%d.jpg", o);
        vdx_image img = {0}, thumb = {0};
        REQUIRE(vdx_image_load(path, &img, &err) == 0, "%s", err.message);
        uint8_t *jpeg;
        size_t size;
        int rc = vdx_image_thumbnail_jpeg(&img, 64, 85, &jpeg, &size, &err);
        vdx_image_free(&img);
        REQUIRE(rc == 0, "%s", err.message);
        rc = vdx_image_decode(jpeg, size, path, &thumb, &err);
        free(jpeg);
        REQUIRE(rc == 0, "%s", err.message);
        if (o == 1) {
            first = thumb;
            continue;
        }
        int same_size = thumb.width == first.width && thumb.height == first.height;
        CHECK(same_size, "orientation %d: %dx%d, orientation 1: %dx%d", o, thumb.width,
              thumb.height, first.width, first.height);
        if (same_size) {
            double sum = 0;
            size_t n = (size_t)thumb.width * thumb.height * 3;
            for (size_t i = 0; i < n; i++)
                sum += abs(thumb.rgb[i] - first.rgb[i]);
            /* measured 2026-12-03: mean |difference| 1.6-2.1 (re-encoded JPEG noise); a
             * flipped or rotated picture differs by 48-57 */
            CHECK(sum / (double)n < 3.0, "orientation %d: mean |difference| %.2f", o,
                  sum / (double)n);
        }
        vdx_image_free(&thumb);
    }
    vdx_image_free(&first);
}

int main(void)
{
    FILE *f = fopen(MANIFEST, "r");
    if (!f) {
        printf("not ok - %s: cannot open (run from the project root)\n", MANIFEST);
        test_failed++;
        return test_summary("test_thumbnail");
    }
    static struct golden_case cases[64];
    int n = 0;
    char line[1400];
    while (fgets(line, sizeof line, f) && n < 64) {
        if (line[0] == '#')
            continue;
        struct golden_case *g = &cases[n];
        if (sscanf(line, "%511[^\t]\t%d\t%d\t%d\t%d\t%511[^\t\n]", g->input, &g->max_side,
                   &g->quality, &g->width, &g->height, g->golden) != 6) {
            printf("not ok - %s line %d: malformed: %s", MANIFEST, n + 2, line);
            test_failed++;
            continue;
        }
        n++;
    }
    fclose(f);
    for (int i = 0; i < n; i++) {
        char name[700];
        snprintf(name, sizeof name, "%s at %d px", cases[i].input, cases[i].max_side);
        current = &cases[i];
        test_case_failed = test_case_skipped = 0;
        thumbnail_matches_pillow();
        if (test_case_failed) {
            printf("not ok - %s\n", name);
            test_failed++;
        } else if (test_case_skipped) {
            printf("skip - %s: %s\n", name, test_skip_reason);
            test_skipped++;
        } else {
            printf("ok - %s\n", name);
            test_passed++;
        }
        fflush(stdout);
    }
    RUN(all_eight_orientations_give_the_same_picture);
    return test_summary("test_thumbnail");
}
