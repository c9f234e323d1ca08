/* Reduced JPEG decoding (vdx_image_decode_reduced, ingest's default; docs/ingest.md): the
 * scale it picks (the smallest M/8 keeping both requested sides, full size otherwise), the
 * original's size it reports (also after an EXIF rotation), the bomb limits of the encoded
 * size, and what it costs in embedding fidelity: clip-tiny's vector of every golden JPEG
 * and of every unsplash-sample photo enlarged to 2560 px (as a camera would give them),
 * decoded reduced the way ingest does, against the full decode: cosine >= 0.999. Last, a
 * folder ingest stores the original's size and the reduced vector by default and the
 * vector of the full decode, to the bit, with exact_decode. */
#include <dirent.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>

#include "test.h"
#include "test_tmp.h"
#include "vdx/clip.h"
#include "vdx/image.h"
#include "vdx/ingest.h"

/* ingest's rule for clip-tiny (shortest_edge 224) and 400-px thumbnails */
#define MIN_SHORT 448
#define MIN_LONG 800
#define COSINE_FLOOR 0.999

static vdx_clip_model *model;

/* A baseline JPEG of an RGB image (4:2:0, libjpeg's defaults) in a malloc'd buffer. */
static uint8_t *encode_jpeg(const uint8_t *rgb, int w, int h, int quality, size_t *size)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *buf = NULL;
    unsigned long n = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, &n);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * (size_t)w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *size = n;
    return buf;
}

/* A w x h test card: gradients with a fine checker, so no scale looks like another. */
static uint8_t *card(int w, int h)
{
    uint8_t *p = malloc((size_t)w * (size_t)h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * (size_t)w + (size_t)x) * 3;
            q[0] = (uint8_t)(x * 255 / w);
            q[1] = (uint8_t)(y * 255 / h);
            q[2] = (uint8_t)(((x / 3 + y / 3) & 1) ? 200 : 40);
        }
    return p;
}

/* Bilinear enlargement by `f` (the photo as a camera at f times the resolution gives it). */
static uint8_t *enlarge(const vdx_image *img, int f, int *w_out, int *h_out)
{
    const int w = img->width * f, h = img->height * f;
    uint8_t *p = malloc((size_t)w * (size_t)h * 3);
    for (int y = 0; y < h; y++) {
        double sy = (y + 0.5) / f - 0.5;
        int y0 = sy < 0 ? 0 : (int)sy, y1 = y0 + 1 < img->height ? y0 + 1 : y0;
        double fy = sy < 0 ? 0 : sy - y0;
        for (int x = 0; x < w; x++) {
            double sx = (x + 0.5) / f - 0.5;
            int x0 = sx < 0 ? 0 : (int)sx, x1 = x0 + 1 < img->width ? x0 + 1 : x0;
            double fx = sx < 0 ? 0 : sx - x0;
            for (int c = 0; c < 3; c++) {
#define PX(xx, yy) img->rgb[((size_t)(yy) * (size_t)img->width + (size_t)(xx)) * 3 + (size_t)c]
                double v = (1 - fy) * ((1 - fx) * PX(x0, y0) + fx * PX(x1, y0)) +
                           fy * ((1 - fx) * PX(x0, y1) + fx * PX(x1, y1));
#undef PX
                p[((size_t)y * (size_t)w + (size_t)x) * 3 + (size_t)c] = (uint8_t)(v + 0.5);
            }
        }
    }
    *w_out = w;
    *h_out = h;
    return p;
}

TEST(reduced_scale_choice)
{
    /* {width, height, reduced width, reduced height} */
    static const int cases[][4] = {
        {4000, 3000, 1000, 750}, /* 12 MP: 1/4 */
        {3000, 4000, 750, 1000}, /* portrait */
        {2560, 1600, 960, 600},  /* 3/8: 2/8 would leave a 400-px short side */
        {1024, 768, 896, 672},   /* 7/8: 5/8 has the short side but not the long one */
        {800, 533, 800, 533},    /* 7/8 would make the long side 700 */
        {640, 427, 640, 427},    /* the web-size photos: full size */
        {6000, 400, 6000, 400},  /* a panorama with a short side under 448 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int w = cases[i][0], h = cases[i][1];
        uint8_t *rgb = card(w, h);
        size_t size;
        uint8_t *jpeg = encode_jpeg(rgb, w, h, 85, &size);
        free(rgb);
        vdx_image img = {0}, full = {0};
        vdx_error err = {{0}};
        int fw = 0, fh = 0;
        int rc = vdx_image_decode_reduced(jpeg, size, "card.jpg", MIN_SHORT, MIN_LONG, &img, &fw,
                                          &fh, &err);
        CHECK(rc == 0, "%dx%d: %s", w, h, err.message);
        CHECK(img.width == cases[i][2] && img.height == cases[i][3] && fw == w && fh == h,
              "%dx%d decoded to %dx%d (want %dx%d), original %dx%d", w, h, img.width,
              img.height, cases[i][2], cases[i][3], fw, fh);
        vdx_image_free(&img);
        /* no reduction asked: the full decode, to the byte */
        rc = vdx_image_decode_reduced(jpeg, size, "card.jpg", 0, 0, &img, &fw, &fh, &err);
        int rc_full = vdx_image_decode(jpeg, size, "card.jpg", &full, &err);
        CHECK(rc == 0 && rc_full == 0 && img.width == w && img.height == h &&
                  !memcmp(img.rgb, full.rgb, (size_t)w * (size_t)h * 3),
              "%dx%d: the unreduced decode differs from vdx_image_decode", w, h);
        vdx_image_free(&img);
        vdx_image_free(&full);
        free(jpeg);
    }
    /* the shorter side a query's reduced decode keeps: twice the resize target */
    vdx_preprocess_config cfg;
    vdx_preprocess_config_default(&cfg);
    CHECK(vdx_preprocess_reduced_side(&cfg) == MIN_SHORT, "shortest_edge 224: %d",
          vdx_preprocess_reduced_side(&cfg));
    cfg.shortest_edge = 0;
    cfg.size_height = 256;
    cfg.size_width = 320;
    CHECK(vdx_preprocess_reduced_side(&cfg) == 640, "fixed 256x320: %d",
          vdx_preprocess_reduced_side(&cfg));
    cfg.do_resize = 0;
    CHECK(vdx_preprocess_reduced_side(&cfg) == 0, "no resize: %d",
          vdx_preprocess_reduced_side(&cfg));
}

TEST(reduced_reports_oriented_size_and_other_formats)
{
    NEED_SHARED(rotated, "fixtures/golden/clip-tiny/images/exif_orient6_600x400.jpg");
    NEED_SHARED(png, "fixtures/golden/clip-tiny/images/portrait_480x640.png");
    const char *paths[2] = {rotated, png};
    for (int i = 0; i < 2; i++) {
        char *bytes;
        size_t size;
        vdx_error err = {{0}};
        REQUIRE(vdx_read_file(paths[i], &bytes, &size, &err) == 0, "%s", err.message);
        vdx_image img = {0}, full = {0};
        int fw = 0, fh = 0;
        /* a tiny request: a JPEG could go down to 1/8, a PNG never reduces */
        int rc = vdx_image_decode_reduced((uint8_t *)bytes, size, paths[i], 10, 10, &img, &fw,
                                          &fh, &err);
        int rc_full = vdx_image_decode((uint8_t *)bytes, size, paths[i], &full, &err);
        free(bytes);
        CHECK(rc == 0 && rc_full == 0, "%s: %s", paths[i], err.message);
        CHECK(fw == full.width && fh == full.height, "%s: original %dx%d, full decode %dx%d",
              paths[i], fw, fh, full.width, full.height);
        if (i == 0) /* 600x400 stored, rotated to 400x600, decoded at 1/8 */
            CHECK(full.width == 400 && full.height == 600 && img.width == 50 &&
                      img.height == 75,
                  "rotated JPEG: full %dx%d reduced %dx%d", full.width, full.height, img.width,
                  img.height);
        else
            CHECK(img.width == full.width && img.height == full.height &&
                      !memcmp(img.rgb, full.rgb, (size_t)img.width * (size_t)img.height * 3),
                  "a PNG decoded reduced differs from its full decode");
        vdx_image_free(&img);
        vdx_image_free(&full);
    }
}

/* A JPEG header claiming 60000 x 60000 pixels: refused before decoding, reduced or not. */
TEST(reduced_keeps_the_bomb_limits)
{
    uint8_t *rgb = card(16, 16);
    size_t size;
    uint8_t *jpeg = encode_jpeg(rgb, 16, 16, 85, &size);
    free(rgb);
    int patched = 0;
    for (size_t i = 0; i + 9 < size; i++)
        if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) { /* SOF0: length, precision, h, w */
            jpeg[i + 5] = 0xEA, jpeg[i + 6] = 0x60, jpeg[i + 7] = 0xEA, jpeg[i + 8] = 0x60;
            patched = 1;
            break;
        }
    REQUIRE(patched, "no SOF0 marker in the encoded JPEG");
    vdx_image img = {0};
    vdx_error err = {{0}};
    int fw, fh;
    int rc = vdx_image_decode_reduced(jpeg, size, "bomb.jpg", MIN_SHORT, MIN_LONG, &img, &fw,
                                      &fh, &err);
    free(jpeg);
    CHECK(rc == -1 && img.rgb == NULL, "a 60000x60000 JPEG header was decoded");
    CHECK(strstr(err.message, "bomb.jpg") && strstr(err.message, "60000x60000") &&
              strstr(err.message, "decompression bomb"),
          "message: %s", err.message);
}

/* cosine of the clip-tiny vectors of bytes decoded in full and reduced as ingest does;
 * *reduced tells whether the reduced decode was smaller. */
static int embed_both(const uint8_t *bytes, size_t size, const char *what, double *cosine,
                      int *reduced)
{
    const vdx_preprocess_config *pre = vdx_clip_get_preprocess(model);
    const int dims = vdx_clip_embed_dim(model);
    const size_t n_px = (size_t)3 * (size_t)pre->crop_height * (size_t)pre->crop_width;
    float *px = malloc(2 * n_px * sizeof *px), *vec = malloc(2 * (size_t)dims * sizeof *vec);
    vdx_image full = {0}, small = {0};
    vdx_error err = {{0}};
    int fw, fh, rc = -1;
    if (vdx_image_decode(bytes, size, what, &full, &err) == 0 &&
        vdx_image_decode_reduced(bytes, size, what, 2 * pre->shortest_edge, MIN_LONG, &small,
                                 &fw, &fh, &err) == 0 &&
        vdx_image_preprocess(&full, pre, px, &err) == 0 &&
        vdx_image_preprocess(&small, pre, px + n_px, &err) == 0 &&
        vdx_clip_embed_images(model, px, 2, vec, &err) == 0) {
        double dot = 0, a = 0, b = 0;
        for (int d = 0; d < dims; d++) {
            dot += (double)vec[d] * vec[dims + d];
            a += (double)vec[d] * vec[d];
            b += (double)vec[dims + d] * vec[dims + d];
        }
        *cosine = dot / sqrt(a * b);
        *reduced = small.width < full.width;
        rc = fw == full.width && fh == full.height ? 0 : -1;
        if (rc)
            printf("    %s: original size %dx%d, full decode %dx%d\n", what, fw, fh,
                   full.width, full.height);
    } else
        printf("    %s: %s\n", what, err.message);
    vdx_image_free(&full);
    vdx_image_free(&small);
    free(px);
    free(vec);
    return rc;
}

TEST(reduced_embedding_cosine_fixtures_and_samples)
{
    REQUIRE(model, "clip-tiny did not load");
    NEED_SHARED(golden, "fixtures/golden/clip-tiny/images");
    NEED_SHARED(samples, "data/unsplash-sample/images");
    double worst = 1;
    char worst_name[300] = "";
    int n = 0, n_reduced = 0;
    /* the golden JPEGs as they are */
    DIR *d = opendir(golden);
    REQUIRE(d, "cannot list %s", golden);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".jpg"))
            continue;
        char path[4400], *bytes;
        size_t size;
        snprintf(path, sizeof path, "%s/%s", golden, e->d_name);
        if (vdx_read_file(path, &bytes, &size, NULL) != 0) {
            CHECK(0, "cannot read %s", path);
            continue;
        }
        double cosine = 0;
        int reduced = 0;
        CHECK(embed_both((uint8_t *)bytes, size, path, &cosine, &reduced) == 0, "%s", path);
        free(bytes);
        n++, n_reduced += reduced;
        if (cosine < worst)
            worst = cosine, snprintf(worst_name, sizeof worst_name, "%s", e->d_name);
        CHECK(cosine >= COSINE_FLOOR, "%s: cosine %.6f", e->d_name, cosine);
    }
    closedir(d);
    /* the sample photos enlarged 4x (2560 px) and encoded at quality 90 */
    d = opendir(samples);
    REQUIRE(d, "cannot list %s", samples);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", samples, e->d_name);
        vdx_image img = {0};
        vdx_error err = {{0}};
        if (vdx_image_load(path, &img, &err) != 0) {
            CHECK(0, "%s", err.message);
            continue;
        }
        int w, h;
        uint8_t *big = enlarge(&img, 4, &w, &h);
        vdx_image_free(&img);
        size_t size;
        uint8_t *jpeg = encode_jpeg(big, w, h, 90, &size);
        free(big);
        double cosine = 0;
        int reduced = 0;
        CHECK(embed_both(jpeg, size, e->d_name, &cosine, &reduced) == 0, "%s", e->d_name);
        free(jpeg);
        n++, n_reduced += reduced;
        if (cosine < worst)
            worst = cosine, snprintf(worst_name, sizeof worst_name, "%s (x4)", e->d_name);
        CHECK(reduced, "%s enlarged to %dx%d was not reduced", e->d_name, w, h);
        CHECK(cosine >= COSINE_FLOOR, "%s x4: cosine %.6f", e->d_name, cosine);
    }
    closedir(d);
    printf("    %d images, %d decoded reduced; lowest cosine to the full decode %.6f (%s)\n", n,
           n_reduced, worst, worst_name);
    CHECK(n >= 50 && n_reduced >= 45, "%d images, %d reduced", n, n_reduced);
}

static vdx_store *open_store(const char *data, const char *collection)
{
    vdx_model_identity id;
    memset(&id, 0, sizeof id);
    snprintf(id.name, sizeof id.name, "%s", vdx_clip_model_name(model));
    snprintf(id.config_hash, sizeof id.config_hash, "%s", vdx_clip_config_hash(model));
    id.dims = vdx_clip_embed_dim(model);
    vdx_store_options so = {0};
    so.data_dir = data;
    so.collection = collection;
    so.create = 1;
    so.model = &id;
    vdx_error err = {{0}};
    vdx_store *s = vdx_store_open(&so, &err);
    if (!s)
        printf("    store: %s\n", err.message);
    return s;
}

/* Ingests dir into a new collection; the stored vector and item of `id`. */
static int ingest_one(const char *dir, const char *data, const char *collection, int exact,
                      const char *id, float *vec, int *width, int *height)
{
    vdx_error err = {{0}};
    vdx_source *src = vdx_source_folder(dir, &err);
    vdx_store *store = src ? open_store(data, collection) : NULL;
    int rc = -1;
    if (store) {
        vdx_ingest_options o;
        vdx_ingest_options_default(&o);
        o.workers = 2;
        o.exact_decode = exact;
        vdx_ingest_report rep;
        const char *ids[1] = {id};
        cJSON *item = NULL;
        if (vdx_ingest_run(store, model, src, &o, &rep, &err) == 0 &&
            vdx_store_get_vectors(store, ids, 1, vec, &err) == 0 &&
            vdx_store_get_item(store, id, &item, &err) == 0) {
            *width = cJSON_GetObjectItem(item, "width")->valueint;
            *height = cJSON_GetObjectItem(item, "height")->valueint;
            rc = rep.stats.stored == 1 ? 0 : -1;
            cJSON_Delete(item);
        }
        vdx_ingest_report_free(&rep);
        vdx_store_close(store);
    }
    if (rc)
        printf("    ingest (exact %d): %s\n", exact, err.message);
    vdx_source_free(src);
    return rc;
}

TEST(ingest_reduces_by_default_and_exact_decode_is_exact)
{
    REQUIRE(model, "clip-tiny did not load");
    NEED_SHARED(ladybird, "fixtures/golden/clip-tiny/images/real_LadyBird.jpg");
    const char *dir = test_tmpdir("reduced-src"), *data = test_tmpdir("reduced-data");
    char path[4400], *bytes;
    size_t size;
    vdx_error err = {{0}};
    REQUIRE(vdx_read_file(ladybird, &bytes, &size, &err) == 0, "%s", err.message);
    snprintf(path, sizeof path, "%s/ladybird.jpg", dir);
    FILE *f = fopen(path, "wb");
    REQUIRE(f && fwrite(bytes, 1, size, f) == size && fclose(f) == 0, "cannot write %s", path);
    free(bytes);

    const int dims = vdx_clip_embed_dim(model);
    float *fast = malloc((size_t)dims * sizeof *fast), *exact = malloc((size_t)dims * sizeof *exact);
    float *want = malloc((size_t)dims * sizeof *want);
    int w1 = 0, h1 = 0, w2 = 0, h2 = 0;
    int rc1 = ingest_one(dir, data, "reduced", 0, "ladybird.jpg", fast, &w1, &h1);
    int rc2 = ingest_one(dir, data, "exact", 1, "ladybird.jpg", exact, &w2, &h2);
    /* what `vdx embed` computes: the full decode */
    vdx_image img = {0};
    const vdx_preprocess_config *pre = vdx_clip_get_preprocess(model);
    float *px = malloc((size_t)3 * (size_t)pre->crop_height * (size_t)pre->crop_width * sizeof *px);
    int rc3 = vdx_image_load(path, &img, &err) == 0 && vdx_image_preprocess(&img, pre, px, &err) == 0 &&
                      vdx_clip_embed_images(model, px, 1, want, &err) == 0
                  ? 0
                  : -1;
    vdx_l2_normalize(want, dims);
    vdx_image_free(&img);
    free(px);
    CHECK(rc1 == 0 && rc2 == 0 && rc3 == 0, "ingest %d %d, reference %d: %s", rc1, rc2, rc3,
          err.message);
    if (rc1 == 0 && rc2 == 0 && rc3 == 0) {
        CHECK(w1 == 2560 && h1 == 1600 && w2 == 2560 && h2 == 1600,
              "stored sizes %dx%d and %dx%d, not the original's 2560x1600", w1, h1, w2, h2);
        double dot = 0, worst = 0, differ = 0;
        for (int d = 0; d < dims; d++) {
            dot += (double)fast[d] * want[d];
            worst = fmax(worst, fabs((double)exact[d] - want[d]));
            differ = fmax(differ, fabs((double)fast[d] - want[d]));
        }
        printf("    default ingest: cosine %.6f to the full decode; exact_decode: max |d| %g\n",
               dot, worst);
        CHECK(dot >= COSINE_FLOOR, "reduced ingest vector: cosine %.6f", dot);
        CHECK(differ > 0, "the default ingest decoded the 2560x1600 JPEG at full size");
        CHECK(worst < 1e-6, "exact_decode vector differs from the full decode by %g", worst);
    }
    free(fast);
    free(exact);
    free(want);
}

int main(void)
{
    const char *dir = test_shared_path("fixtures/clip-tiny");
    vdx_error err = {{0}};
    if (dir && !(model = vdx_clip_load(dir, &err)))
        printf("clip-tiny: %s\n", err.message);
    RUN(reduced_scale_choice);
    RUN(reduced_reports_oriented_size_and_other_formats);
    RUN(reduced_keeps_the_bomb_limits);
    RUN(reduced_embedding_cosine_fixtures_and_samples);
    RUN(ingest_reduces_by_default_and_exact_decode_is_exact);
    vdx_clip_free(model);
    return test_summary("test_decode_reduced");
}
