/* Golden tests of image decoding and CLIP preprocessing against the outputs of
 * transformers' CLIPImageProcessor (Pillow 9.4) in ../shared/fixtures/golden/clip-tiny and
 * golden/clip-tiny-p16-336-gelu (336 px, the new config form): for every manifest image the
 * resized size, and where `pixels_exact` is set the uint8
 * crop and the float pixel_values bit for bit. Also: formats and layouts the fixtures do
 * not cover (interlaced and low-bit-depth PNG, BMP variants, GIF transparency, every EXIF
 * orientation) checked against pixels written by the test itself, preprocessor configs
 * in both JSON forms (thumbnails: test_thumbnail.c), and that the resampler's AVX2 and
 * portable passes give the same pixels for any geometry. */
#include "test.h"
#include "vdx/image.h"
#include "image/image_internal.h"

#include <cjson/cJSON.h>
#include <gif_lib.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>

#define GOLDEN "fixtures/golden/clip-tiny"

static void run_named(const char *name, void (*fn)(void))
{
    test_case_failed = test_case_skipped = 0;
    fflush(stdout);
    fn();
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

static void *read_all(const char *path, size_t *size)
{
    char *data;
    vdx_error err;
    if (vdx_read_file(path, &data, size, &err) != 0) {
        printf("    %s\n", err.message);
        return NULL;
    }
    return data;
}

/* ---- the manifest images ---- */

static cJSON *manifest;
static const cJSON *current; /* the manifest entry the golden case checks */
static const char *current_golden;         /* fixtures/golden/MODEL */
static vdx_preprocess_config current_cfg; /* from fixtures/MODEL/preprocessor_config.json */

static void golden_image_case(void)
{
    const char *name = cJSON_GetObjectItem(current, "name")->valuestring;
    const cJSON *wh = cJSON_GetObjectItem(current, "resized_wh");
    const int exact = cJSON_IsTrue(cJSON_GetObjectItem(current, "pixels_exact"));
    char rel[512];
    snprintf(rel, sizeof rel, "%s/images/%s", current_golden, name);
    NEED_SHARED(image_path, rel);
    snprintf(rel, sizeof rel, "%s/pixels/%s.u8", current_golden, name);
    NEED_SHARED(u8_path, rel);
    snprintf(rel, sizeof rel, "%s/pixels/%s.f32", current_golden, name);
    NEED_SHARED(f32_path, rel);

    vdx_image img;
    vdx_error err;
    REQUIRE(vdx_image_load(image_path, &img, &err) == 0, "%s", err.message);
    const vdx_preprocess_config cfg = current_cfg;
    const int cw = cfg.crop_width;
    int rw, rh;
    vdx_image_resized_size(&cfg, img.width, img.height, &rw, &rh);
    CHECK(rw == cJSON_GetArrayItem(wh, 0)->valueint && rh == cJSON_GetArrayItem(wh, 1)->valueint,
          "resized to %dx%d, golden %dx%d (decoded %dx%d)", rw, rh,
          cJSON_GetArrayItem(wh, 0)->valueint, cJSON_GetArrayItem(wh, 1)->valueint, img.width,
          img.height);

    const size_t N = (size_t)cfg.crop_height * cfg.crop_width * 3;
    uint8_t *crop = malloc(N);
    float *values = malloc(N * sizeof *values);
    size_t u8_size = 0, f32_size = 0;
    uint8_t *golden_u8 = read_all(u8_path, &u8_size);
    float *golden_f32 = read_all(f32_path, &f32_size);
    CHECK(u8_size == N && f32_size == N * sizeof(float), "golden sizes %zu, %zu", u8_size,
          f32_size);
    int ok = vdx_image_clip_crop(&img, &cfg, crop, &err) == 0;
    CHECK(ok, "%s", err.message);
    if (ok && u8_size == N && f32_size == N * sizeof(float)) {
        vdx_image_normalize(crop, &cfg, values);
        if (exact) {
            int differ = 0, first = -1, max_diff = 0;
            for (int i = 0; i < (int)N; i++)
                if (crop[i] != golden_u8[i]) {
                    int d = abs(crop[i] - golden_u8[i]);
                    if (first < 0)
                        first = i;
                    differ++;
                    max_diff = d > max_diff ? d : max_diff;
                }
            CHECK(differ == 0,
                  "%d of %zu u8 values differ (max %d), first at y=%d x=%d c=%d: %d vs golden %d",
                  differ, N, max_diff, first / 3 / cw, first / 3 % cw, first % 3,
                  first >= 0 ? crop[first] : 0, first >= 0 ? golden_u8[first] : 0);
            CHECK(memcmp(values, golden_f32, N * sizeof(float)) == 0,
                  "float pixel_values are not bit-identical to the golden file");
        } else {
            /* gray16: Pillow clips 16-bit grey to 255 (the golden crop is all white); we
             * keep the high byte instead, checked in png_16bit_grey_keeps_high_byte. All
             * we assert here is the shape of the deviation: grey pixels, not all white. */
            int grey = 1, white = 1;
            for (int i = 0; i < (int)N; i += 3) {
                grey &= crop[i] == crop[i + 1] && crop[i] == crop[i + 2];
                white &= crop[i] == 255;
            }
            CHECK(grey && !white, "16-bit grey crop should be grey and not saturated");
        }
    }
    free(crop);
    free(values);
    free(golden_u8);
    free(golden_f32);
    vdx_image_free(&img);
}

/* One case per image of fixtures/golden/MODEL/manifest.json, preprocessed with the
 * config of fixtures/MODEL. A missing or unreadable manifest is one failing case per
 * expected image (so the runner's case count sees it too), never a single quiet skip. */
static void run_manifest_cases(const char *model)
{
    enum { IMAGES = 20 };
    static char golden[256], rel[512];
    snprintf(golden, sizeof golden, "fixtures/golden/%s", model);
    current_golden = golden;
    snprintf(rel, sizeof rel, "%s/manifest.json", golden);
    char why[600] = "";
    test_case_failed = 0;
    const char *path = test_shared_path(rel);
    manifest = NULL;
    if (path) {
        size_t size;
        char *text = read_all(path, &size);
        manifest = text ? cJSON_Parse(text) : NULL;
        free(text);
    }
    char cfg_rel[512];
    snprintf(cfg_rel, sizeof cfg_rel, "fixtures/%s/preprocessor_config.json", model);
    const char *cfg_path = path ? test_shared_path(cfg_rel) : NULL;
    vdx_error err;
    const cJSON *images = cJSON_GetObjectItem(manifest, "images");
    if (!path)
        snprintf(why, sizeof why, "../shared/%s not found", rel);
    else if (!cJSON_IsArray(images) || cJSON_GetArraySize(images) != IMAGES)
        snprintf(why, sizeof why, "cannot read %d images from %s", IMAGES, path);
    else if (!cfg_path)
        snprintf(why, sizeof why, "../shared/%s not found", cfg_rel);
    else if (vdx_preprocess_config_load(cfg_path, &current_cfg, &err) != 0)
        snprintf(why, sizeof why, "%s", err.message);
    if (*why) {
        /* outside CI a missing shared folder skips each case; anything else fails */
        int skip = !path && !test_case_failed;
        for (int i = 0; i < IMAGES; i++) {
            if (skip) {
                printf("skip - golden %s image %d: %s\n", model, i, why);
                test_skipped++;
            } else {
                printf("not ok - golden %s image %d: %s\n", model, i, why);
                test_failed++;
            }
        }
        cJSON_Delete(manifest);
        return;
    }
    cJSON_ArrayForEach(current, images)
    {
        char name[300];
        snprintf(name, sizeof name, "golden %s %s", model,
                 cJSON_GetObjectItem(current, "name")->valuestring);
        run_named(name, golden_image_case);
    }
    cJSON_Delete(manifest);
}

/* ---- PNG variants written by the test ---- */

/* Writes a PNG of `channels`-sample rows (8 or 16 bits) to memory. */
struct mem_buffer {
    uint8_t *data;
    size_t size, cap;
};

static void mem_write(png_structp png, png_bytep data, size_t length)
{
    struct mem_buffer *b = png_get_io_ptr(png);
    if (b->size + length > b->cap) {
        b->cap = (b->size + length) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->size, data, length);
    b->size += length;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

struct png_spec {
    int width, height, depth, color_type, interlace;
    const uint8_t *samples; /* packed rows as PNG stores them */
    const png_color *palette;
    int palette_size;
    const uint8_t *exif;
    int exif_size;
    png_text *texts;
    int text_count;
};

static struct mem_buffer png_encode(const struct png_spec *s)
{
    struct mem_buffer out = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(out.data);
        out.data = NULL;
        return out;
    }
    png_set_write_fn(png, &out, mem_write, mem_flush);
    png_set_IHDR(png, info, s->width, s->height, s->depth, s->color_type, s->interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette)
        png_set_PLTE(png, info, s->palette, s->palette_size);
    if (s->exif)
        png_set_eXIf_1(png, info, s->exif_size, (png_bytep)s->exif);
    if (s->texts)
        png_set_text(png, info, s->texts, s->text_count);
    png_write_info(png, info);
    int channels = s->color_type == PNG_COLOR_TYPE_RGB         ? 3
                   : s->color_type == PNG_COLOR_TYPE_RGB_ALPHA  ? 4
                   : s->color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                                                                : 1;
    size_t row_bytes = ((size_t)s->width * channels * s->depth + 7) / 8;
    png_set_interlace_handling(png);
    png_bytep *rows = malloc(sizeof *rows * s->height);
    for (int y = 0; y < s->height; y++)
        rows[y] = (png_bytep)s->samples + y * row_bytes;
    png_write_image(png, rows);
    png_write_end(png, info);
    free(rows);
    png_destroy_write_struct(&png, &info);
    return out;
}

TEST(png_interlaced_rgba_drops_alpha)
{
    enum { W = 13, H = 11 };
    uint8_t samples[W * H * 4];
    for (int i = 0; i < W * H; i++) {
        samples[4 * i + 0] = (uint8_t)(i * 7);
        samples[4 * i + 1] = (uint8_t)(i * 13 + 1);
        samples[4 * i + 2] = (uint8_t)(255 - i);
        samples[4 * i + 3] = (uint8_t)(i * 31); /* alpha must not affect the colours */
    }
    struct png_spec spec = {.width = W, .height = H, .depth = 8, .color_type = PNG_COLOR_TYPE_RGB_ALPHA,
                            .interlace = PNG_INTERLACE_ADAM7, .samples = samples};
    struct mem_buffer png = png_encode(&spec);
    REQUIRE(png.data, "encoding failed");
    vdx_image img;
    vdx_error err;
    int rc = vdx_image_decode(png.data, png.size, "rgba.png", &img, &err);
    free(png.data);
    REQUIRE(rc == 0, "%s", err.message);
    CHECK(img.width == W && img.height == H, "%dx%d", img.width, img.height);
    int bad = 0;
    for (int i = 0; i < W * H; i++)
        bad += memcmp(img.rgb + 3 * i, samples + 4 * i, 3) != 0;
    CHECK(bad == 0, "%d pixels differ", bad);
    vdx_image_free(&img);
}

TEST(png_grey_alpha_and_2bit_grey)
{
    uint8_t ga[4 * 2] = {10, 0, 20, 255, 30, 128, 40, 7};
    struct png_spec spec = {.width = 4, .height = 1, .depth = 8,
                            .color_type = PNG_COLOR_TYPE_GRAY_ALPHA, .samples = ga};
    struct mem_buffer png = png_encode(&spec);
    vdx_image img;
    vdx_error err;
    REQUIRE(vdx_image_decode(png.data, png.size, "ga.png", &img, &err) == 0, "%s", err.message);
    const uint8_t want_ga[12] = {10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40};
    CHECK(memcmp(img.rgb, want_ga, 12) == 0, "grey+alpha not replicated");
    vdx_image_free(&img);
    free(png.data);

    uint8_t two_bit[1] = {0x1B}; /* 0,1,2,3 → 0, 85, 170, 255 as Pillow's L;2 */
    struct png_spec spec2 = {.width = 4, .height = 1, .depth = 2, .color_type = PNG_COLOR_TYPE_GRAY,
                             .samples = two_bit};
    png = png_encode(&spec2);
    REQUIRE(vdx_image_decode(png.data, png.size, "g2.png", &img, &err) == 0, "%s", err.message);
    const uint8_t want_g2[12] = {0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255};
    CHECK(memcmp(img.rgb, want_g2, 12) == 0, "2-bit grey: %d %d %d %d", img.rgb[0], img.rgb[3],
          img.rgb[6], img.rgb[9]);
    vdx_image_free(&img);
    free(png.data);
}

TEST(png_4bit_palette_missing_entries_are_grey_ramp)
{
    const png_color palette[2] = {{200, 10, 20}, {5, 6, 7}};
    uint8_t indices[2] = {0x01, 0x9F}; /* 0, 1, 9, 15 */
    struct png_spec spec = {.width = 4, .height = 1, .depth = 4, .color_type = PNG_COLOR_TYPE_PALETTE,
                            .samples = indices, .palette = palette, .palette_size = 2};
    struct mem_buffer png = png_encode(&spec);
    vdx_image img;
    vdx_error err;
    REQUIRE(vdx_image_decode(png.data, png.size, "p4.png", &img, &err) == 0, "%s", err.message);
    const uint8_t want[12] = {200, 10, 20, 5, 6, 7, 9, 9, 9, 15, 15, 15};
    CHECK(memcmp(img.rgb, want, 12) == 0, "got %d,%d,%d %d,%d,%d %d %d", img.rgb[0], img.rgb[1],
          img.rgb[2], img.rgb[3], img.rgb[4], img.rgb[5], img.rgb[6], img.rgb[9]);
    vdx_image_free(&img);
    free(png.data);
}

TEST(png_16bit_grey_keeps_high_byte)
{
    NEED_SHARED(path, GOLDEN "/images/gray16_200x150.png");
    /* Independent read of the raw 16-bit samples with libpng, no transforms. */
    FILE *f = fopen(path, "rb");
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    uint16_t *samples = malloc(200 * 150 * 2);
    png_bytep rows[150];
    for (int y = 0; y < 150; y++)
        rows[y] = (png_bytep)(samples + y * 200);
    png_init_io(png, f);
    png_read_info(png, info);
    REQUIRE(png_get_bit_depth(png, info) == 16, "not 16-bit");
    png_read_image(png, rows);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);

    vdx_image img;
    vdx_error err;
    REQUIRE(vdx_image_load(path, &img, &err) == 0, "%s", err.message);
    int bad = 0, distinct_high = 0;
    for (int i = 0; i < 200 * 150; i++) {
        const uint8_t *be = (const uint8_t *)(samples + i); /* PNG samples are big-endian */
        bad += img.rgb[3 * i] != be[0] || img.rgb[3 * i + 1] != be[0] || img.rgb[3 * i + 2] != be[0];
        distinct_high += be[0] != img.rgb[0];
    }
    CHECK(bad == 0, "%d pixels are not the high byte of their 16-bit sample", bad);
    CHECK(distinct_high > 0, "the fixture should not be flat");
    free(samples);
    vdx_image_free(&img);
}

/* A TIFF-structured EXIF block holding only the orientation tag (big-endian). */
static int exif_block(uint8_t out[64], int orientation)
{
    static const uint8_t head[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1,
                                   0x01, 0x12, 0, 3, 0, 0, 0, 1};
    memcpy(out, head, sizeof head);
    out[18] = 0;
    out[19] = (uint8_t)orientation;
    out[20] = out[21] = 0;
    memset(out + 22, 0, 4); /* next IFD: none */
    return 26;
}

/* 3x2 grey image: pixel value = 10*(y*3+x+1).
 *   a b c      a=10 b=20 c=30
 *   d e f      d=40 e=50 f=60
 * Expected layouts after Pillow's exif_transpose, row by row. */
static const uint8_t orientation_source[6] = {10, 20, 30, 40, 50, 60};
static const struct {
    int w, h;
    uint8_t v[6];
} oriented[9] = {
    {0, 0, {0}},
    {3, 2, {10, 20, 30, 40, 50, 60}}, /* 1 as stored */
    {3, 2, {30, 20, 10, 60, 50, 40}}, /* 2 mirrored */
    {3, 2, {60, 50, 40, 30, 20, 10}}, /* 3 rotated 180 */
    {3, 2, {40, 50, 60, 10, 20, 30}}, /* 4 flipped */
    {2, 3, {10, 40, 20, 50, 30, 60}}, /* 5 transposed */
    {2, 3, {40, 10, 50, 20, 60, 30}}, /* 6 rotated 90 clockwise */
    {2, 3, {60, 30, 50, 20, 40, 10}}, /* 7 transversed */
    {2, 3, {30, 60, 20, 50, 10, 40}}, /* 8 rotated 90 counter-clockwise */
};

/* Encodes the 3x2 source with the given metadata, decodes it, compares with the
 * layout of orientation `want`. */
static void check_png_orientation(const char *label, const uint8_t *exif, int exif_size,
                                  png_text *texts, int text_count, int want)
{
    struct png_spec spec = {.width = 3, .height = 2, .depth = 8, .color_type = PNG_COLOR_TYPE_GRAY,
                            .samples = orientation_source, .exif = exif, .exif_size = exif_size,
                            .texts = texts, .text_count = text_count};
    struct mem_buffer png = png_encode(&spec);
    vdx_image img;
    vdx_error err;
    int rc = vdx_image_decode(png.data, png.size, label, &img, &err);
    free(png.data);
    CHECK(rc == 0, "%s: %s", label, err.message);
    if (rc)
        return;
    int same = img.width == oriented[want].w && img.height == oriented[want].h;
    for (int i = 0; same && i < 6; i++)
        same = img.rgb[3 * i] == oriented[want].v[i];
    CHECK(same, "%s: got %dx%d %d %d %d %d %d %d, want orientation %d", label, img.width,
          img.height, img.rgb[0], img.rgb[3], img.rgb[6], img.rgb[9], img.rgb[12], img.rgb[15],
          want);
    vdx_image_free(&img);
}

TEST(exif_orientation_all_eight)
{
    for (int o = 1; o <= 8; o++) {
        uint8_t exif[64];
        char label[32];
        snprintf(label, sizeof label, "eXIf orientation %d", o);
        check_png_orientation(label, exif, exif_block(exif, o), NULL, 0, o);
    }
}

TEST(png_orientation_from_raw_profile_and_xmp)
{
    /* ImageMagick's raw profile text (zTXt): "\nexif\n  LENGTH\n" + hex lines */
    uint8_t block[64];
    const int n = exif_block(block, 6);
    char profile[512];
    int len = snprintf(profile, sizeof profile, "\nexif\n      %d\n457869660000", n + 6);
    for (int i = 0; i < n; i++)
        len += snprintf(profile + len, sizeof profile - len, "%s%02x", i % 16 == 10 ? "\n" : "",
                        block[i]);
    png_text raw = {.compression = PNG_TEXT_COMPRESSION_zTXt,
                    .key = "Raw profile type exif",
                    .text = profile,
                    .text_length = strlen(profile)};
    check_png_orientation("raw profile", NULL, 0, &raw, 1, 6);

    /* XMP in iTXt, element form; the first attribute-like match wins */
    char xmp[] = "<x:xmpmeta><rdf:Description tiff:Orientation='5'>"
                 "<tiff:Orientation>8</tiff:Orientation></rdf:Description></x:xmpmeta>";
    png_text itxt = {.compression = PNG_ITXT_COMPRESSION_NONE,
                     .key = "XML:com.adobe.xmp",
                     .text = xmp,
                     .itxt_length = strlen(xmp),
                     .lang = "",
                     .lang_key = ""};
    check_png_orientation("xmp", NULL, 0, &itxt, 1, 8);

    /* an EXIF orientation tag, even 1, takes precedence over XMP */
    uint8_t exif[64];
    check_png_orientation("exif over xmp", exif, exif_block(exif, 1), &itxt, 1, 1);
}

/* ---- BMP variants written by the test ---- */

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xFFFF);
    put16(p + 2, v >> 16);
}

/* 3x2 BMP with a 40-byte header; rows given top to bottom, stored per `top_down`. */
static size_t bmp_build(uint8_t *out, int bpp, int top_down, const uint8_t *palette_bgrx,
                        int colors, const uint8_t *const rows[2], size_t row_len)
{
    const size_t stride = ((3 * (size_t)bpp + 31) / 32) * 4;
    const size_t offset = 14 + 40 + (size_t)colors * 4;
    memset(out, 0, offset + 2 * stride);
    out[0] = 'B';
    out[1] = 'M';
    put32(out + 2, (uint32_t)(offset + 2 * stride));
    put32(out + 10, (uint32_t)offset);
    put32(out + 14, 40);
    put32(out + 18, 3);
    put32(out + 22, top_down ? (uint32_t)-2 : 2);
    put16(out + 26, 1);
    put16(out + 28, (unsigned)bpp);
    put32(out + 46, (uint32_t)colors);
    memcpy(out + 54, palette_bgrx, (size_t)colors * 4);
    for (int y = 0; y < 2; y++)
        memcpy(out + offset + (top_down ? y : 1 - y) * stride, rows[y], row_len);
    return offset + 2 * stride;
}

TEST(bmp_8bit_palette_24_and_32bit_both_row_orders)
{
    const uint8_t want[18] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 1, 2, 3, 40, 50, 60, 7, 8, 9};
    uint8_t palette[6 * 4];
    for (int i = 0; i < 6; i++) { /* BGRX */
        palette[4 * i + 0] = want[3 * i + 2];
        palette[4 * i + 1] = want[3 * i + 1];
        palette[4 * i + 2] = want[3 * i + 0];
        palette[4 * i + 3] = 0;
    }
    const uint8_t p_row0[3] = {0, 1, 2}, p_row1[3] = {3, 4, 5};
    uint8_t bgr[2][9], bgrx[2][12];
    for (int i = 0; i < 6; i++) {
        int y = i / 3, x = i % 3;
        bgr[y][3 * x] = bgrx[y][4 * x] = want[3 * i + 2];
        bgr[y][3 * x + 1] = bgrx[y][4 * x + 1] = want[3 * i + 1];
        bgr[y][3 * x + 2] = bgrx[y][4 * x + 2] = want[3 * i];
        bgrx[y][4 * x + 3] = 0x55; /* ignored, as Pillow's BGRX */
    }
    for (int top_down = 0; top_down <= 1; top_down++) {
        uint8_t file[512];
        const uint8_t *p_rows[2] = {p_row0, p_row1}, *c_rows[2] = {bgr[0], bgr[1]},
                      *x_rows[2] = {bgrx[0], bgrx[1]};
        const struct {
            int bpp, colors;
            const uint8_t *const *rows;
            size_t len;
        } cases[3] = {{8, 6, p_rows, 3}, {24, 0, c_rows, 9}, {32, 0, x_rows, 12}};
        for (int c = 0; c < 3; c++) {
            size_t n = bmp_build(file, cases[c].bpp, top_down, palette, cases[c].colors,
                                 cases[c].rows, cases[c].len);
            vdx_image img;
            vdx_error err;
            int rc = vdx_image_decode(file, n, "t.bmp", &img, &err);
            CHECK(rc == 0, "%d-bit: %s", cases[c].bpp, err.message);
            if (rc)
                continue;
            CHECK(img.width == 3 && img.height == 2 && memcmp(img.rgb, want, 18) == 0,
                  "%d-bit %s: wrong pixels (%d,%d,%d first)", cases[c].bpp,
                  top_down ? "top-down" : "bottom-up", img.rgb[0], img.rgb[1], img.rgb[2]);
            vdx_image_free(&img);
        }
    }
}

/* 40-byte-header RLE BMP with a 16-colour palette where index i is (10i, 20i, 30i). */
static size_t rle_bmp_build(uint8_t *out, int width, int height, int rle4, const uint8_t *data,
                            size_t data_len)
{
    const size_t offset = 14 + 40 + 16 * 4;
    memset(out, 0, offset);
    out[0] = 'B';
    out[1] = 'M';
    put32(out + 2, (uint32_t)(offset + data_len));
    put32(out + 10, (uint32_t)offset);
    put32(out + 14, 40);
    put32(out + 18, (uint32_t)width);
    put32(out + 22, (uint32_t)height);
    put16(out + 26, 1);
    put16(out + 28, rle4 ? 4 : 8);
    put32(out + 30, rle4 ? 2 : 1);
    put32(out + 46, 16);
    for (int i = 0; i < 16; i++) {
        out[54 + 4 * i + 0] = (uint8_t)(30 * i); /* B */
        out[54 + 4 * i + 1] = (uint8_t)(20 * i); /* G */
        out[54 + 4 * i + 2] = (uint8_t)(10 * i); /* R */
    }
    memcpy(out + offset, data, data_len);
    return offset + data_len;
}

static int indices_match(const vdx_image *img, const int *want, int n)
{
    for (int i = 0; i < n; i++)
        if (img->rgb[3 * i] != 10 * want[i] || img->rgb[3 * i + 1] != 20 * want[i] ||
            img->rgb[3 * i + 2] != 30 * want[i])
            return 0;
    return 1;
}

TEST(bmp_rle8_and_rle4)
{
    /* RLE8, 3x2, bottom row first: absolute 3,4,5 (padded), end of line, run of two 1s,
     * run of one 2, end of line, end of bitmap. */
    const uint8_t rle8[] = {0, 3, 3, 4, 5, 0, 0, 0, 2, 1, 1, 2, 0, 0, 0, 1};
    uint8_t file[256];
    size_t n = rle_bmp_build(file, 3, 2, 0, rle8, sizeof rle8);
    vdx_image img;
    vdx_error err;
    REQUIRE(vdx_image_decode(file, n, "rle8.bmp", &img, &err) == 0, "%s", err.message);
    const int want8[6] = {1, 1, 2, 3, 4, 5};
    CHECK(img.width == 3 && img.height == 2 && indices_match(&img, want8, 6), "RLE8 pixels");
    vdx_image_free(&img);

    /* RLE4, 4x2: bottom row: run of 3 alternating 3,3 then a run of one 4; end of line;
     * top row: delta 2 right, run 1,2; end of bitmap. */
    const uint8_t rle4[] = {3, 0x33, 1, 0x40, 0, 0, 0, 2, 2, 0, 2, 0x12, 0, 1};
    n = rle_bmp_build(file, 4, 2, 1, rle4, sizeof rle4);
    REQUIRE(vdx_image_decode(file, n, "rle4.bmp", &img, &err) == 0, "%s", err.message);
    const int want4[8] = {0, 0, 1, 2, 3, 3, 3, 4};
    CHECK(img.width == 4 && img.height == 2 && indices_match(&img, want4, 8), "RLE4 pixels");
    vdx_image_free(&img);

    /* the same stream without its end-of-bitmap code, cut short: an error */
    n = rle_bmp_build(file, 4, 3, 1, rle4, sizeof rle4 - 2);
    CHECK(vdx_image_decode(file, n, "cut.bmp", &img, &err) == -1, "decoded a cut RLE stream");
    CHECK(strcmp(err.message, "cut.bmp: truncated BMP: RLE data ends at byte offset 130 before "
                              "the end-of-bitmap code") == 0,
          "%s", err.message);
}

/* ---- GIF written by the test ---- */

static int gif_mem_write(GifFileType *gif, const GifByteType *data, int length)
{
    struct mem_buffer *b = gif->UserData;
    if (b->size + length > b->cap) {
        b->cap = (b->size + length) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->size, data, length);
    b->size += length;
    return length;
}

TEST(gif_first_frame_transparency_and_uncovered_area)
{
    /* 4x3 screen; a 2x2 interlaced frame at (1,1) with a transparent index 2; the area
     * the frame does not cover shows the transparent index's colour. A second frame
     * must be ignored. */
    struct mem_buffer out = {0};
    int error;
    GifFileType *gif = EGifOpen(&out, gif_mem_write, &error);
    REQUIRE(gif, "EGifOpen");
    GifColorType colors[4] = {{1, 2, 3}, {40, 50, 60}, {200, 100, 0}, {9, 9, 9}};
    ColorMapObject *map = GifMakeMapObject(4, colors);
    EGifPutScreenDesc(gif, 4, 3, 2, 0, map);
    GifByteType gce[4] = {0x01, 0, 0, 2}; /* transparent index 2 */
    EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, 4, gce);
    EGifPutImageDesc(gif, 1, 1, 2, 2, true, NULL);
    GifPixelType row0[2] = {0, 1}, row1[2] = {3, 2};
    EGifPutLine(gif, row0, 2);
    EGifPutLine(gif, row1, 2);
    EGifPutImageDesc(gif, 0, 0, 4, 3, false, NULL);
    GifPixelType second[4] = {3, 3, 3, 3};
    for (int y = 0; y < 3; y++)
        EGifPutLine(gif, second, 4);
    EGifCloseFile(gif, &error);
    GifFreeMapObject(map);

    vdx_image img;
    vdx_error err;
    int rc = vdx_image_decode(out.data, out.size, "t.gif", &img, &err);
    free(out.data);
    REQUIRE(rc == 0, "%s", err.message);
    REQUIRE(img.width == 4 && img.height == 3, "%dx%d", img.width, img.height);
    const int want_index[12] = {2, 2, 2, 2, 2, 0, 1, 2, 2, 3, 2, 2};
    int bad = 0;
    for (int i = 0; i < 12; i++) {
        const GifColorType *c = &colors[want_index[i]];
        bad += img.rgb[3 * i] != c->Red || img.rgb[3 * i + 1] != c->Green ||
               img.rgb[3 * i + 2] != c->Blue;
    }
    CHECK(bad == 0, "%d pixels differ", bad);
    vdx_image_free(&img);
}

/* ---- animated WebP built around a fixture's still frame ---- */

static void put24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
}

TEST(webp_animation_first_frame_on_black_canvas)
{
    /* The 'VP8 ' chunk of a still WebP becomes frame 1 of an animation, placed at (2, 4)
     * on a canvas 4 pixels wider and 6 taller, followed by a second frame. Pillow's
     * WebPAnimDecoder path gives the frame's pixels inside it and transparent black,
     * i.e. black after convert("RGB"), around it. */
    NEED_SHARED(path, GOLDEN "/images/tall_300x1500.webp");
    size_t size;
    uint8_t *still = read_all(path, &size);
    REQUIRE(still && size > 20 && !memcmp(still + 12, "VP8 ", 4), "not a simple lossy WebP");
    const uint32_t chunk_size = (uint32_t)(8 + still[16] + (still[17] << 8) + (still[18] << 16) +
                                           ((uint32_t)still[19] << 24));
    const uint32_t padded = chunk_size + (chunk_size & 1);
    REQUIRE(12 + padded <= size, "chunk size");
    const int fw = 300, fh = 1500, cw = fw + 4, ch = fh + 6;
    const size_t anmf_payload = 16 + padded;
    const size_t total = 12 + (8 + 10) + (8 + 6) + 2 * (8 + anmf_payload);
    uint8_t *anim = calloc(1, total);
    uint8_t *p = anim;
    memcpy(p, "RIFF", 4);
    put32(p + 4, (uint32_t)(total - 8));
    memcpy(p + 8, "WEBP", 4);
    p += 12;
    memcpy(p, "VP8X", 4);
    put32(p + 4, 10);
    p[8] = 0x02; /* animation */
    put24(p + 12, cw - 1);
    put24(p + 15, ch - 1);
    p += 18;
    memcpy(p, "ANIM", 4);
    put32(p + 4, 6);
    memcpy(p + 8, "\x10\x20\x30\xff", 4); /* a background colour the decoder must not use */
    p += 14;
    for (int frame = 0; frame < 2; frame++) {
        memcpy(p, "ANMF", 4);
        put32(p + 4, (uint32_t)anmf_payload);
        put24(p + 8, frame ? 0 : 1);  /* x offset / 2 */
        put24(p + 11, frame ? 0 : 2); /* y offset / 2 */
        put24(p + 14, fw - 1);
        put24(p + 17, fh - 1);
        put24(p + 20, 100);
        p[23] = 0x02; /* no blending */
        memcpy(p + 24, still + 12, chunk_size);
        p += 8 + anmf_payload;
    }
    vdx_image frame_img, still_img;
    vdx_error err;
    int rc = vdx_image_decode(anim, total, "anim.webp", &frame_img, &err);
    free(anim);
    CHECK(rc == 0, "%s", err.message);
    if (rc == 0 && vdx_image_decode(still, size, "still.webp", &still_img, &err) == 0) {
        CHECK(frame_img.width == cw && frame_img.height == ch, "canvas %dx%d", frame_img.width,
              frame_img.height);
        int outside = 0, inside = 0;
        for (int y = 0; y < ch && frame_img.width == cw; y++)
            for (int x = 0; x < cw; x++) {
                const uint8_t *got = frame_img.rgb + ((size_t)y * cw + x) * 3;
                if (x >= 2 && x < 2 + fw && y >= 4 && y < 4 + fh)
                    inside += memcmp(got, still_img.rgb + ((size_t)(y - 4) * fw + x - 2) * 3, 3) != 0;
                else
                    outside += got[0] || got[1] || got[2];
            }
        CHECK(inside == 0 && outside == 0, "%d frame pixels differ from the still, %d canvas "
              "pixels are not black", inside, outside);
        vdx_image_free(&still_img);
    }
    if (rc == 0)
        vdx_image_free(&frame_img);
    free(still);
}

/* ---- CMYK JPEG ---- */

TEST(jpeg_cmyk_converted_like_pillow)
{
    /* A flat Adobe CMYK JPEG (stored inverted, as Photoshop writes it). Pillow reads it
     * as CMYK;I and converts: R = (255-K') - MULDIV255(255-C', 255-K') with C', K' the
     * stored samples, i.e. a flat colour we can compute. */
    enum { W = 16, H = 16 };
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *buf = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &buf, &size);
    c.image_width = W;
    c.image_height = H;
    c.input_components = 4;
    c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    uint8_t row[W * 4];
    for (int x = 0; x < W; x++) {
        row[4 * x + 0] = 200;
        row[4 * x + 1] = 100;
        row[4 * x + 2] = 50;
        row[4 * x + 3] = 230;
    }
    while (c.next_scanline < H) {
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);

    vdx_image img;
    vdx_error err;
    int rc = vdx_image_decode(buf, size, "cmyk.jpg", &img, &err);
    free(buf);
    REQUIRE(rc == 0, "%s", err.message);
    /* flat input survives JPEG at quality 100 within +-1 per stored sample */
    const int stored[4] = {200, 100, 50, 230};
    const int nk = stored[3];
    for (int ch = 0; ch < 3; ch++) {
        int t = (255 - stored[ch]) * nk + 128;
        int want = nk - (((t >> 8) + t) >> 8);
        int got = img.rgb[(5 * W + 5) * 3 + ch];
        CHECK(abs(got - want) <= 2, "channel %d: %d, want %d", ch, got, want);
    }
    vdx_image_free(&img);
}

/* ---- preprocessor_config.json ---- */

TEST(config_old_form_fixture_equals_defaults)
{
    NEED_SHARED(path, "fixtures/clip-tiny/preprocessor_config.json");
    vdx_preprocess_config cfg, def;
    vdx_error err;
    REQUIRE(vdx_preprocess_config_load(path, &cfg, &err) == 0, "%s", err.message);
    vdx_preprocess_config_default(&def);
    CHECK(memcmp(&cfg, &def, sizeof cfg) == 0, "fixture config differs from the defaults");
}

static int load_config_text(const char *json, vdx_preprocess_config *cfg, vdx_error *err)
{
    const char *dir = test_tmpdir("imgcfg");
    char path[4200];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    FILE *f = fopen(path, "w");
    fputs(json, f);
    fclose(f);
    int rc = vdx_preprocess_config_load(path, cfg, err);
    unlink(path);
    rmdir(dir);
    return rc;
}

TEST(config_new_dict_form)
{
    vdx_preprocess_config cfg;
    vdx_error err;
    REQUIRE(load_config_text("{\"size\": {\"shortest_edge\": 336}, \"crop_size\": {\"height\": "
                             "336, \"width\": 336}, \"do_convert_rgb\": true, \"rescale_factor\":"
                             " 0.00392156862745098, \"image_mean\": [0.5, 0.5, 0.5], "
                             "\"image_std\": [0.25, 0.25, 0.25], \"resample\": 3}",
                             &cfg, &err) == 0,
            "%s", err.message);
    CHECK(cfg.shortest_edge == 336 && cfg.crop_height == 336 && cfg.crop_width == 336,
          "sizes %d %d %d", cfg.shortest_edge, cfg.crop_height, cfg.crop_width);
    CHECK(cfg.rescale_factor == 1.0 / 255.0 && cfg.mean[1] == 0.5f && cfg.std[2] == 0.25f,
          "values");
    int rw, rh;
    vdx_image_resized_size(&cfg, 640, 480, &rw, &rh);
    CHECK(rw == 448 && rh == 336, "resized %dx%d", rw, rh);

    REQUIRE(load_config_text("{\"size\": {\"height\": 100, \"width\": 50}, \"crop_size\": 40}",
                             &cfg, &err) == 0,
            "%s", err.message);
    vdx_image_resized_size(&cfg, 640, 480, &rw, &rh);
    CHECK(rw == 50 && rh == 100 && cfg.crop_width == 40, "fixed size %dx%d", rw, rh);
}

TEST(resize_rule_truncates_and_crop_pads)
{
    vdx_preprocess_config cfg;
    vdx_preprocess_config_default(&cfg);
    int rw, rh;
    vdx_image_resized_size(&cfg, 225, 301, &rw, &rh); /* 224*301/225 = 299.66 → 299 */
    CHECK(rw == 224 && rh == 299, "%dx%d", rw, rh);
    vdx_image_resized_size(&cfg, 2000, 300, &rw, &rh); /* 1493.33 → 1493 */
    CHECK(rw == 1493 && rh == 224, "%dx%d", rw, rh);

    /* a crop larger than the resized image is zero-padded around it, as transformers'
     * center_crop pads: 224x224 resized, 230x226 crop → 3 columns left (floor of -6/2 is
     * -3), 1 row on top */
    cfg.crop_width = 230;
    cfg.crop_height = 226;
    vdx_image img = {224, 224, malloc(224 * 224 * 3)};
    memset(img.rgb, 77, 224 * 224 * 3);
    uint8_t *crop = malloc(230 * 226 * 3);
    vdx_error err;
    REQUIRE(vdx_image_clip_crop(&img, &cfg, crop, &err) == 0, "%s", err.message);
    CHECK(crop[0] == 0 && crop[(1 * 230 + 3) * 3] == 77 && crop[(1 * 230 + 2) * 3] == 0 &&
              crop[(225 * 230 + 100) * 3] == 0 && crop[(224 * 230 + 226) * 3] == 77 &&
              crop[(224 * 230 + 227) * 3] == 0,
          "padding misplaced");
    free(crop);
    free(img.rgb);
}

/* The resampler's AVX2 passes (chosen where the CPU has AVX2) against its portable ones
 * (VDX_RESAMPLE_KERNEL=portable), byte for byte: random sizes up and down on each axis,
 * windows anywhere in the output, widths whose byte count is not a multiple of the
 * passes' 8- and 32-byte steps, blocks of fewer than 8 rows, and inputs of only 0 and 255
 * (whose sums overshoot and clip). The golden cases above check the default passes
 * against Pillow, so this carries that to the portable ones. */
static uint64_t next_random(uint64_t *state) /* xorshift64 */
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

TEST(resample_avx2_and_portable_passes_agree)
{
    if (!__builtin_cpu_supports("avx2"))
        SKIP("CPU lacks avx2: only the portable passes run here (the golden cases check them)");
    uint64_t state = 0x9e3779b97f4a7c15u;
    int cases = 0, differ = 0, resized_both = 0;
    char first[160] = "";
    for (int c = 0; c < 1500; c++) {
        int sw = 1 + (int)(next_random(&state) % 300);
        int sh = 1 + (int)(next_random(&state) % 120);
        int dw = c % 5 == 0 ? sw : 1 + (int)(next_random(&state) % 300);
        int dh = c % 7 == 0 ? sh : 1 + (int)(next_random(&state) % 120);
        int ww = 1 + (int)(next_random(&state) % (uint64_t)dw);
        int wh = 1 + (int)(next_random(&state) % (uint64_t)dh);
        int x0 = (int)(next_random(&state) % (uint64_t)(dw - ww + 1));
        int y0 = (int)(next_random(&state) % (uint64_t)(dh - wh + 1));
        size_t n_src = (size_t)sw * sh * 3, n_out = (size_t)ww * wh * 3;
        uint8_t *src = malloc(n_src), *fast = malloc(n_out), *portable = malloc(n_out);
        REQUIRE(src && fast && portable, "out of memory");
        for (size_t i = 0; i < n_src; i++) {
            uint64_t v = next_random(&state);
            src[i] = c % 3 == 0 ? (v & 1 ? 255 : 0) : (uint8_t)v;
        }
        vdx_error err;
        unsetenv("VDX_RESAMPLE_KERNEL");
        int rc_fast = image_resample_window(src, sw, sh, dw, dh, x0, y0, ww, wh, fast, &err);
        setenv("VDX_RESAMPLE_KERNEL", "portable", 1);
        int rc_portable =
            image_resample_window(src, sw, sh, dw, dh, x0, y0, ww, wh, portable, &err);
        unsetenv("VDX_RESAMPLE_KERNEL");
        cases++;
        resized_both += dw != sw && dh != sh;
        if (rc_fast != 0 || rc_portable != 0 || memcmp(fast, portable, n_out) != 0) {
            if (!differ++)
                snprintf(first, sizeof first, "%dx%d -> %dx%d, window %dx%d at %d,%d (rc %d/%d)",
                         sw, sh, dw, dh, ww, wh, x0, y0, rc_fast, rc_portable);
        }
        free(src);
        free(fast);
        free(portable);
    }
    CHECK(differ == 0, "%d of %d geometries differ, first %s", differ, cases, first);
    CHECK(resized_both > 800, "only %d geometries resize both axes", resized_both);
}

int main(void)
{
    run_manifest_cases("clip-tiny");
    run_manifest_cases("clip-tiny-p16-336-gelu");
    RUN(png_interlaced_rgba_drops_alpha);
    RUN(png_grey_alpha_and_2bit_grey);
    RUN(png_4bit_palette_missing_entries_are_grey_ramp);
    RUN(png_16bit_grey_keeps_high_byte);
    RUN(exif_orientation_all_eight);
    RUN(png_orientation_from_raw_profile_and_xmp);
    RUN(bmp_8bit_palette_24_and_32bit_both_row_orders);
    RUN(bmp_rle8_and_rle4);
    RUN(gif_first_frame_transparency_and_uncovered_area);
    RUN(webp_animation_first_frame_on_black_canvas);
    RUN(jpeg_cmyk_converted_like_pillow);
    RUN(config_old_form_fixture_equals_defaults);
    RUN(config_new_dict_form);
    RUN(resize_rule_truncates_and_crop_pads);
    RUN(resample_avx2_and_portable_passes_agree);
    return test_summary("test_golden_image");
}
