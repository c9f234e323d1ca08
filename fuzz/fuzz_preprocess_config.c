/* libFuzzer target for the preprocessor_config.json reader (src/image/preprocess.c), read
 * from every model directory downloaded from the Hugging Face hub. The input goes through a
 * memfd, since the reader takes a path. A refusal must start with that path and ": ", be
 * valid UTF-8 when the input is, and leave the defaults in place. An accepted config must
 * keep its sides in 1..65536 (shortest_edge 0 only with a fixed size), its flags 0 or 1 and
 * resample 3, and normalise every byte value of every channel to a finite float (the table
 * vdx_image_normalize builds, recomputed here: a float cast of an out-of-range double is
 * undefined behaviour, and an infinite pixel would make NaN features); then a small
 * gradient image goes through the whole preprocessing when the crop is at most 256 px a
 * side, and every output value must be finite. Built by scripts/build-fuzz.sh.
 * FUZZ_SOURCES: src/image/preprocess.c src/image/resample.c src/common/common.c src/common/json_check.c */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vdx/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int side_ok(int v) { return v >= 1 && v <= 65536; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("preprocessor_config.json", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    vdx_preprocess_config cfg, defaults;
    vdx_preprocess_config_default(&defaults);
    vdx_error err = {{0}};
    int rc = vdx_preprocess_config_load(path, &cfg, &err);
    close(fd);
    if (rc != 0) {
        size_t len = strlen(path), bad;
        if (strncmp(err.message, path, len) != 0 || strncmp(err.message + len, ": ", 2) != 0)
            abort(); /* a refusal names the file */
        if (vdx_utf8_check((const char *)data, size, &bad) == 0 &&
            vdx_utf8_check(err.message, strlen(err.message), &bad) != 0)
            abort(); /* in UTF-8 */
        if (memcmp(&cfg, &defaults, sizeof cfg) != 0)
            abort(); /* and leaves the defaults */
        return 0;
    }
    if (cfg.shortest_edge ? !side_ok(cfg.shortest_edge)
                          : !(side_ok(cfg.size_height) && side_ok(cfg.size_width)))
        abort();
    if (!side_ok(cfg.crop_height) || !side_ok(cfg.crop_width) || cfg.resample != 3 ||
        (cfg.do_resize | cfg.do_center_crop | cfg.do_normalize) & ~1 ||
        !(cfg.rescale_factor > 0) || !isfinite(cfg.rescale_factor))
        abort();
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v += 255) { /* the table is monotonic: its ends suffice */
            double scaled = (double)v * cfg.rescale_factor;
            if (!(fabs(scaled) <= 3.4028234663852886e38))
                abort();
            float x = cfg.do_normalize ? ((float)scaled - cfg.mean[c]) / cfg.std[c] : (float)scaled;
            if (!isfinite(x))
                abort();
        }
    if ((long)cfg.crop_height * cfg.crop_width > 256 * 256)
        return 0;
    vdx_image img = {0};
    img.width = 40;
    img.height = 30;
    img.rgb = malloc(40 * 30 * 3);
    for (int i = 0; i < 40 * 30 * 3; i++)
        img.rgb[i] = (uint8_t)(i * 7);
    size_t n = (size_t)3 * cfg.crop_height * cfg.crop_width;
    float *pixels = malloc(n * sizeof *pixels);
    if (vdx_image_preprocess(&img, &cfg, pixels, &err) == 0)
        for (size_t i = 0; i < n; i++)
            if (!isfinite(pixels[i]))
                abort();
    free(pixels);
    free(img.rgb);
    return 0;
}
