/* Image pipeline speed: milliseconds per image for decode, resize+crop (Pillow bicubic),
 * normalise, the whole CLIP preprocessing, and a 400 px thumbnail, on a 640x427 JPEG
 * generated here from a synthetic pattern (the size of an Unsplash "small" photo) and on
 * the 1024x768 4:2:0 fixture. The target: decode + preprocess of the 640x427 JPEG under
 * 10% of one ViT-B/32 image embedding (~50 ms here), i.e. well under 5 ms. Prints
 * numbers; passes or fails nothing.
 *   bench_image [IMAGE...]   (default: the generated JPEG and $VDX_SHARED or ../shared
 *                             fixtures/golden/clip-tiny/images/subsampled420_1024x768.jpg) */
#include "vdx/image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jpeglib.h>

enum { CROP = 224 };
static const double EMBED_MS = 50.0; /* one ViT-B/32 image embedding on this machine */

/* A 640x427 photo-like pattern (smooth gradients, edges, texture), JPEG quality 90. */
static unsigned char *synthetic_jpeg(int width, int height, unsigned long *size)
{
    unsigned char *rgb = malloc((size_t)width * height * 3);
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            unsigned char *p = rgb + ((size_t)y * width + x) * 3;
            double r = hypot(x - width * 0.3, y - height * 0.6);
            p[0] = (unsigned char)(128 + 100 * sin(r / 17.0));
            p[1] = (unsigned char)((x * 255) / width);
            p[2] = (unsigned char)(((x / 40 + y / 40) & 1) ? 200 - (y * 150) / height : 30 + ((x * y) % 23));
        }
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    *size = 0;
    jpeg_mem_dest(&c, &out, size);
    c.image_width = (JDIMENSION)width;
    c.image_height = (JDIMENSION)height;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = rgb + (size_t)c.next_scanline * width * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(rgb);
    return out;
}

/* Thread CPU time in seconds: on a machine shared with other jobs, wall time measures
 * the queue as much as the code. The closing line gives wall time for comparison. */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int repetitions_for(double probe_ms)
{
    int n = (int)(300.0 / (probe_ms > 0.01 ? probe_ms : 0.01)); /* ~0.3 s per measurement */
    return n < 5 ? 5 : n > 2000 ? 2000 : n;
}

static int bench_bytes(const char *label, const uint8_t *bytes, size_t size)
{
    vdx_preprocess_config cfg;
    vdx_preprocess_config_default(&cfg);
    vdx_image img;
    vdx_error err;
    double t0 = cpu_now();
    if (vdx_image_decode(bytes, size, label, &img, &err) != 0) {
        fprintf(stderr, "bench_image: %s\n", err.message);
        return 1;
    }
    const int reps = repetitions_for((cpu_now() - t0) * 1e3);
    vdx_image_free(&img);

    t0 = cpu_now();
    for (int i = 0; i < reps; i++) {
        vdx_image_decode(bytes, size, label, &img, &err);
        if (i + 1 < reps)
            vdx_image_free(&img);
    }
    const double decode_ms = (cpu_now() - t0) * 1e3 / reps;

    uint8_t *crop = malloc(CROP * CROP * 3);
    float *values = malloc(sizeof *values * 3 * CROP * CROP);
    t0 = cpu_now();
    for (int i = 0; i < reps; i++)
        vdx_image_clip_crop(&img, &cfg, crop, &err);
    const double crop_ms = (cpu_now() - t0) * 1e3 / reps;

    t0 = cpu_now();
    for (int i = 0; i < reps * 4; i++)
        vdx_image_normalize(crop, &cfg, values);
    const double normalize_ms = (cpu_now() - t0) * 1e3 / (reps * 4);

    t0 = cpu_now();
    for (int i = 0; i < reps; i++)
        vdx_image_preprocess(&img, &cfg, values, &err);
    const double preprocess_ms = (cpu_now() - t0) * 1e3 / reps;

    uint8_t *thumb = NULL;
    size_t thumb_size = 0;
    t0 = cpu_now();
    for (int i = 0; i < reps; i++) {
        free(thumb);
        vdx_image_thumbnail_jpeg(&img, 400, 85, &thumb, &thumb_size, &err);
    }
    const double thumb_ms = (cpu_now() - t0) * 1e3 / reps;

    const double total = decode_ms + preprocess_ms;
    printf("%-28s %4dx%-4d %7.2f %9.2f %9.3f %10.2f %9.2f   %6.2f ms = %4.1f%% of a %.0f ms "
           "embedding  (thumbnail %zu bytes, %d runs)\n",
           label, img.width, img.height, decode_ms, crop_ms, normalize_ms, preprocess_ms,
           thumb_ms, total, 100.0 * total / EMBED_MS, EMBED_MS, thumb_size, reps);
    free(thumb);
    free(crop);
    free(values);
    vdx_image_free(&img);
    return 0;
}

int main(int argc, char **argv)
{
    printf("CPU ms per image, one thread            decode resize+crop normalise preprocess "
           "thumbnail   decode+preprocess\n");
    const double wall_start = vdx_now(), cpu_start = cpu_now();
    int failed = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            char *data;
            size_t size;
            vdx_error err;
            if (vdx_read_file(argv[i], &data, &size, &err) != 0) {
                fprintf(stderr, "bench_image: %s\n", err.message);
                failed = 1;
                continue;
            }
            const char *base = strrchr(argv[i], '/');
            failed |= bench_bytes(base ? base + 1 : argv[i], (const uint8_t *)data, size);
            free(data);
        }
        return failed;
    }
    unsigned long size;
    unsigned char *jpeg = synthetic_jpeg(640, 427, &size);
    failed |= bench_bytes("synthetic 640x427 JPEG q90", jpeg, size);
    free(jpeg);

    const char *root = getenv("VDX_SHARED");
    char path[4096];
    snprintf(path, sizeof path, "%s/fixtures/golden/clip-tiny/images/subsampled420_1024x768.jpg",
             root && *root ? root : "../shared");
    char *data;
    size_t fixture_size;
    vdx_error err;
    if (vdx_read_file(path, &data, &fixture_size, &err) != 0) {
        printf("(skipping the 1024x768 fixture: %s)\n", err.message);
        return failed;
    }
    failed |= bench_bytes("subsampled420_1024x768.jpg", (const uint8_t *)data, fixture_size);
    free(data);
    printf("wall time / CPU time over the run: %.2f (above 1 when other jobs share the cores)\n",
           (vdx_now() - wall_start) / (cpu_now() - cpu_start));
    return failed;
}
