/* libFuzzer target: vdx_image_decode on arbitrary bytes (every format, chosen by the
 * input's magic bytes), then CLIP preprocessing and a thumbnail of whatever decodes; then
 * ingest's reduced decode (vdx_image_decode_reduced, DCT-domain scaling of JPEGs) with a
 * small request, which must agree with the full decode on the original's size and give an
 * image no larger than it. Any crash, sanitizer report or leak is a bug; a clean error
 * message is the expected outcome for nearly every input. Build and run: see
 * docs/testing.md (make fuzz).
 * FUZZ_SOURCES: src/common/common.c src/common/json_check.c src/image/bmp.c src/image/decode.c src/image/exif.c src/image/gif.c src/image/jpeg.c src/image/png.c src/image/preprocess.c src/image/resample.c src/image/thumbnail.c src/image/webp.c */
#include "vdx/image.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vdx_image img;
    vdx_error err;
    if (vdx_image_decode(data, size, "fuzz", &img, &err) != 0)
        return 0;
    vdx_preprocess_config cfg;
    vdx_preprocess_config_default(&cfg);
    float *values = malloc(sizeof *values * 3 * cfg.crop_height * cfg.crop_width);
    if (values)
        vdx_image_preprocess(&img, &cfg, values, &err);
    free(values);
    uint8_t *jpeg;
    size_t jpeg_size;
    if (vdx_image_thumbnail_jpeg(&img, 64, 80, &jpeg, &jpeg_size, &err) == 0)
        free(jpeg);
    /* a reduced decode of what decoded in full succeeds (a corrupt scan that the full
     * decode got through may still fail at another scale: only then may it differ) */
    vdx_image small;
    int full_w = 0, full_h = 0;
    if (vdx_image_decode_reduced(data, size, "fuzz", 16, 16, &small, &full_w, &full_h, &err) == 0) {
        if (full_w != img.width || full_h != img.height || small.width > img.width ||
            small.height > img.height || small.width < 1 || small.height < 1)
            abort();
        vdx_image_free(&small);
    }
    vdx_image_free(&img);
    return 0;
}
