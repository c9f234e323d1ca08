/* Bad input to the image module: every error case ends in a clear message naming the
 * input, never a crash, a leak or a line on stderr. Truncated files are made by cutting
 * fixture bytes into a temporary directory; oversized headers are patched into real
 * files (with their checksums fixed) so only the claimed size is wrong. */
#include "test.h"
#include "vdx/image.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IMAGES "fixtures/golden/clip-tiny/images/"

static uint8_t *read_fixture(const char *path, size_t *size)
{
    char *data;
    vdx_error err;
    if (vdx_read_file(path, &data, size, &err) != 0) {
        printf("    %s\n", err.message);
        return NULL;
    }
    return (uint8_t *)data;
}

/* Decodes and expects failure with a message containing `want` (and the input name). */
static int expect_failure(const uint8_t *bytes, size_t size, const char *what, const char *want)
{
    vdx_image img;
    vdx_error err;
    err.message[0] = 0;
    if (vdx_image_decode(bytes, size, what, &img, &err) == 0) {
        printf("    %s: decoded %dx%d, expected an error containing \"%s\"\n", what, img.width,
               img.height, want);
        vdx_image_free(&img);
        return 0;
    }
    if (img.rgb) {
        printf("    %s: failed but left pixels allocated\n", what);
        return 0;
    }
    if (!strstr(err.message, want) || strncmp(err.message, what, strlen(what)) != 0) {
        printf("    %s: message \"%s\" does not start with the input name and contain \"%s\"\n",
               what, err.message, want);
        return 0;
    }
    return 1;
}

TEST(empty_input)
{
    vdx_image img;
    vdx_error err;
    CHECK(vdx_image_decode((const uint8_t *)"", 0, "empty.jpg", &img, &err) == -1, "decoded");
    CHECK(strcmp(err.message, "empty.jpg: empty file (0 bytes), not an image") == 0, "%s",
          err.message);
    const char *dir = test_tmpdir("imgerr");
    char path[4200];
    snprintf(path, sizeof path, "%s/empty.png", dir);
    fclose(fopen(path, "w"));
    CHECK(vdx_image_load(path, &img, &err) == -1, "decoded an empty file");
    char want[4300];
    snprintf(want, sizeof want, "%s: empty file (0 bytes), not an image", path);
    CHECK(strcmp(err.message, want) == 0, "%s", err.message);
    unlink(path);
    rmdir(dir);
}

TEST(missing_file)
{
    vdx_image img;
    vdx_error err;
    CHECK(vdx_image_load("/nonexistent/cat.jpg", &img, &err) == -1, "loaded");
    CHECK(strcmp(err.message, "/nonexistent/cat.jpg: cannot open: No such file or directory") == 0,
          "%s", err.message);
}

/* What is not a regular file of at most VDX_IMAGE_MAX_FILE_BYTES is refused before it is
 * read: a FIFO would block for ever, /dev/zero would never end, a 257 MiB file (sparse:
 * it takes no disk) would be held whole in memory. */
TEST(only_regular_files_of_bounded_size)
{
    vdx_image img = {0};
    vdx_error err = {{0}};
    const char *dir = test_tmpdir("imgfile");
    char fifo[4200], big[4200], want[4400];
    snprintf(fifo, sizeof fifo, "%s/photo.jpg", dir);
    REQUIRE(mkfifo(fifo, 0600) == 0, "mkfifo %s", fifo);
    CHECK(vdx_image_load(fifo, &img, &err) == -1 && err.kind == VDX_ERR_INVALID, "a FIFO");
    snprintf(want, sizeof want, "%s: not a regular file (a FIFO)", fifo);
    CHECK(!strcmp(err.message, want), "%s", err.message);
    CHECK(vdx_image_load("/dev/zero", &img, &err) == -1 &&
              !strcmp(err.message, "/dev/zero: not a regular file (a character device)"),
          "%s", err.message);
    snprintf(big, sizeof big, "%s/big.png", dir);
    REQUIRE(truncate(big, 0) == 0 || (fclose(fopen(big, "w")), 1), "create %s", big);
    REQUIRE(truncate(big, (off_t)VDX_IMAGE_MAX_FILE_BYTES + 1) == 0, "truncate %s", big);
    CHECK(vdx_image_load(big, &img, &err) == -1 && err.kind == VDX_ERR_INVALID, "a big file");
    snprintf(want, sizeof want, "%s: %zu bytes, more than the %zu allowed", big,
             VDX_IMAGE_MAX_FILE_BYTES + 1, VDX_IMAGE_MAX_FILE_BYTES);
    CHECK(!strcmp(err.message, want), "%s", err.message);
    CHECK(!img.rgb, "pixels left allocated");
    unlink(fifo);
    unlink(big);
    rmdir(dir);
}

TEST(random_bytes_name_what_was_seen)
{
    const uint8_t junk[] = {0x13, 0x37, 0xde, 0xad, 'b', 'e', 'e', 'f', 0, 1, 2, 3, 4, 5, 6, 7,
                            8, 9};
    vdx_image img;
    vdx_error err;
    CHECK(vdx_image_decode(junk, sizeof junk, "junk.bin", &img, &err) == -1, "decoded");
    CHECK(strcmp(err.message,
                 "junk.bin: unsupported or unrecognised image format (first bytes: 13 37 de ad "
                 "62 65 65 66 00 01 02 03 04 05 06 07 \".7..beef........\"); supported: JPEG, "
                 "PNG, WebP, GIF, BMP") == 0,
          "%s", err.message);
    /* a long run of pseudo-random bytes, with and without a faked JPEG/PNG/GIF magic */
    uint8_t *noise = malloc(65536);
    uint32_t state = 12345;
    for (int i = 0; i < 65536; i++) {
        state = state * 1664525u + 1013904223u;
        noise[i] = (uint8_t)(state >> 24);
    }
    noise[0] = 0x42; /* not a magic of ours */
    CHECK(expect_failure(noise, 65536, "noise", "unrecognised image format"), "noise");
    memcpy(noise, "\xff\xd8\xff", 3);
    CHECK(expect_failure(noise, 65536, "noise.jpg", "cannot decode JPEG"), "jpeg noise");
    memcpy(noise, "\x89PNG\r\n\x1a\n", 8);
    CHECK(expect_failure(noise, 65536, "noise.png", "PNG"), "png noise");
    memcpy(noise, "GIF89a", 6);
    CHECK(expect_failure(noise, 65536, "noise.gif", "GIF"), "gif noise");
    memcpy(noise, "RIFF\x10\0\0\0WEBPVP8 ", 16);
    CHECK(expect_failure(noise, 65536, "noise.webp", "corrupt WebP"), "webp noise");
    memcpy(noise, "BM", 2);
    CHECK(expect_failure(noise, 65536, "noise.bmp", "BMP"), "bmp noise");
    free(noise);
}

TEST(known_unsupported_formats_are_named)
{
    const char html[] = "\n  <!DOCTYPE html><html><body>404</body></html>";
    CHECK(expect_failure((const uint8_t *)html, sizeof html - 1, "https://x/y",
                         "unsupported image format: HTML/XML text (first bytes: 0a 20 20 3c"),
          "html");
    const uint8_t heic[] = {0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'h', 'e', 'i', 'c', 0, 0};
    CHECK(expect_failure(heic, sizeof heic, "IMG_1.HEIC", "unsupported image format: HEIC/HEIF"),
          "heic");
    const uint8_t tiff[] = {'I', 'I', 42, 0, 8, 0, 0, 0};
    CHECK(expect_failure(tiff, sizeof tiff, "scan.tif", "unsupported image format: TIFF"),
          "tiff");
}

/* Writes the first `keep` bytes of a fixture to a temp file and loads that file. */
static void expect_truncation_error(const char *fixture, size_t keep, const char *want)
{
    char rel[256];
    snprintf(rel, sizeof rel, IMAGES "%s", fixture);
    NEED_SHARED(path, rel);
    size_t size;
    uint8_t *bytes = read_fixture(path, &size);
    REQUIRE(bytes && keep < size, "fixture");
    const char *dir = test_tmpdir("imgerr");
    char cut[4200];
    snprintf(cut, sizeof cut, "%s/cut-%s", dir, fixture);
    FILE *f = fopen(cut, "wb");
    fwrite(bytes, 1, keep, f);
    fclose(f);
    vdx_image img;
    vdx_error err;
    CHECK(vdx_image_load(cut, &img, &err) == -1, "a truncated %s decoded", fixture);
    CHECK(strncmp(err.message, cut, strlen(cut)) == 0 && strstr(err.message, want),
          "message \"%s\" lacks the path or \"%s\"", err.message, want);
    unlink(cut);
    rmdir(dir);
    free(bytes);
}

TEST(truncated_jpeg)
{
    expect_truncation_error("landscape_640x480.jpg", 40000,
                            ": truncated JPEG: data ends after 40000 bytes, at row");
}

TEST(truncated_progressive_jpeg)
{
    expect_truncation_error("progressive_800x533.jpg", 30000,
                            ": truncated JPEG: data ends after 30000 bytes");
}

TEST(truncated_png)
{
    expect_truncation_error("portrait_480x640.png", 300000,
                            ": truncated PNG: needed 8192 bytes at offset 295001, the file has "
                            "300000");
}

TEST(truncated_gif)
{
    expect_truncation_error("gif_256x200.gif", 20000,
                            ": truncated GIF: data ends after 20000 bytes while decoding the "
                            "first frame");
}

TEST(truncated_webp)
{
    expect_truncation_error("tall_300x1500.webp", 60000, ": corrupt WebP: truncated data");
}

TEST(truncated_bmp)
{
    expect_truncation_error("bmp_300x250.bmp", 100000,
                            ": truncated BMP: 250 rows of 900 bytes at byte offset 54, the file "
                            "has 100000 bytes");
}

/* Every prefix of every format's fixture either decodes or fails cleanly. */
TEST(every_cut_fails_cleanly)
{
    const char *fixtures[] = {"odd_225x301.jpg", "small_100x80.png", "gif_256x200.gif",
                              "tall_300x1500.webp", "bmp_300x250.bmp", "exif_orient6_600x400.jpg"};
    for (size_t k = 0; k < sizeof fixtures / sizeof *fixtures; k++) {
        char rel[256];
        snprintf(rel, sizeof rel, IMAGES "%s", fixtures[k]);
        NEED_SHARED(path, rel);
        size_t size;
        uint8_t *bytes = read_fixture(path, &size);
        REQUIRE(bytes, "fixture");
        int decoded_short = 0;
        for (size_t cut = 0; cut < size; cut += cut < 64 ? 1 : size / 37 + 1) {
            vdx_image img;
            vdx_error err;
            err.message[0] = 0;
            int rc = vdx_image_decode(bytes, cut, fixtures[k], &img, &err);
            if (rc == 0) {
                decoded_short++;
                vdx_image_free(&img);
            } else {
                CHECK(err.message[0] && !img.rgb, "%s cut at %zu: no message", fixtures[k], cut);
            }
        }
        CHECK(decoded_short == 0, "%s: %d truncated copies decoded as if complete", fixtures[k],
              decoded_short);
        free(bytes);
    }
}

/* ---- decompression bombs: a header claiming a huge size is refused before any
 * pixel buffer exists (a 100000 x 100000 RGB buffer would be 30 GB) ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

TEST(bomb_png_100000_square)
{
    NEED_SHARED(path, IMAGES "small_100x80.png");
    size_t size;
    uint8_t *png = read_fixture(path, &size);
    REQUIRE(png, "fixture");
    /* IHDR data at offset 16 (width, height), CRC over type+data at 29 */
    put_be32(png + 16, 100000);
    put_be32(png + 20, 100000);
    put_be32(png + 29, (uint32_t)crc32(crc32(0, NULL, 0), png + 12, 17));
    CHECK(expect_failure(png, size, "bomb.png",
                         "bomb.png: PNG image of 100000x100000 pixels exceeds the limit of "
                         "178956970 pixels (refused as a possible decompression bomb)"),
          "png bomb");
    free(png);
}

/* F12: under the pixel cap, a small file still may not claim hundreds of MB: a
 * 13000 x 13000 PNG header (169 M pixels, 507 MB decoded) in a few hundred bytes. */
TEST(bomb_png_bytes_cap)
{
    NEED_SHARED(path, IMAGES "small_100x80.png");
    size_t size;
    uint8_t *png = read_fixture(path, &size);
    REQUIRE(png, "fixture");
    put_be32(png + 16, 13000);
    put_be32(png + 20, 13000);
    put_be32(png + 29, (uint32_t)crc32(crc32(0, NULL, 0), png + 12, 17));
    char expected[400];
    snprintf(expected, sizeof expected,
             "bomb.png: PNG image of 13000x13000 pixels would take 483 MB decoded from a %zu-byte "
             "file (more than 256 times its size): refused as a possible decompression bomb", size);
    CHECK(expect_failure(png, size, "bomb.png", expected), "png bomb under the pixel cap");
    free(png);
}

TEST(bomb_jpeg_65500_square)
{
    NEED_SHARED(path, IMAGES "odd_225x301.jpg");
    size_t size;
    uint8_t *jpg = read_fixture(path, &size);
    REQUIRE(jpg, "fixture");
    size_t at = 2;
    while (at + 9 < size && !(jpg[at] == 0xFF && (jpg[at + 1] == 0xC0 || jpg[at + 1] == 0xC2)))
        at += 2 + (size_t)(jpg[at + 2] << 8 | jpg[at + 3]);
    REQUIRE(at + 9 < size, "no SOF marker");
    jpg[at + 5] = jpg[at + 7] = 0xFF; /* height, width = 65500 */
    jpg[at + 6] = jpg[at + 8] = 0xDC;
    CHECK(expect_failure(jpg, size, "bomb.jpg",
                         "bomb.jpg: JPEG image of 65500x65500 pixels exceeds the limit"),
          "jpeg bomb");
    free(jpg);
}

TEST(bomb_gif_bmp_webp)
{
    /* GIF: a 65535 x 65535 logical screen */
    uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0,
                     ',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4C, 0x01, 0, ';'};
    CHECK(expect_failure(gif, sizeof gif, "bomb.gif",
                         "GIF image of 65535x65535 pixels exceeds the limit"),
          "gif bomb");
    /* BMP: 100000 x -100000 (top-down) claimed, with no pixel data behind it */
    uint8_t bmp[54] = {'B', 'M'};
    bmp[10] = 54;
    bmp[14] = 40;
    const int32_t w = 100000, h = -100000;
    memcpy(bmp + 18, &w, 4);
    memcpy(bmp + 22, &h, 4);
    bmp[26] = 1;
    bmp[28] = 24;
    CHECK(expect_failure(bmp, sizeof bmp, "bomb.bmp",
                         "BMP image of 100000x100000 pixels exceeds the limit"),
          "bmp bomb");
    /* WebP lossless (VP8L) header: 16384 x 16384 */
    uint8_t webp[] = {'R', 'I', 'F', 'F', 26, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'L',
                      14, 0, 0, 0, 0x2F, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK(expect_failure(webp, sizeof webp, "bomb.webp",
                         "WebP image of 16384x16384 pixels exceeds the limit"),
          "webp bomb");
}

TEST(corrupt_headers)
{
    NEED_SHARED(png_path, IMAGES "small_100x80.png");
    size_t size;
    uint8_t *png = read_fixture(png_path, &size);
    REQUIRE(png, "fixture");
    png[20] ^= 0x01; /* height changed, CRC left stale */
    CHECK(expect_failure(png, size, "crc.png", "corrupt PNG: IHDR: CRC error"), "png crc");
    png[20] ^= 0x01;
    put_be32(png + 16, 0); /* zero width, CRC fixed */
    put_be32(png + 29, (uint32_t)crc32(crc32(0, NULL, 0), png + 12, 17));
    CHECK(expect_failure(png, size, "zero.png", "corrupt PNG: Invalid IHDR data (Image width is zero in IHDR; near byte offset 33)"),
          "png zero width");
    free(png);

    NEED_SHARED(jpg_path, IMAGES "odd_225x301.jpg");
    uint8_t *jpg = read_fixture(jpg_path, &size);
    REQUIRE(jpg, "fixture");
    memset(jpg + 20, 0xFF, 200); /* wreck the tables */
    CHECK(expect_failure(jpg, size, "bad.jpg", "bad.jpg: cannot decode JPEG: "), "jpeg");
    free(jpg);

    uint8_t bmp[54] = {'B', 'M'};
    bmp[14] = 41;
    CHECK(expect_failure(bmp, sizeof bmp, "h.bmp",
                         "h.bmp: corrupt BMP: unknown DIB header size 41 at byte offset 14"),
          "bmp header size");
    bmp[14] = 40;
    bmp[18] = 2;
    bmp[22] = 2;
    bmp[26] = 1;
    bmp[28] = 8;
    bmp[30] = 1; /* RLE8 */
    CHECK(expect_failure(bmp, sizeof bmp, "rle.bmp",
                         "rle.bmp: truncated BMP: palette of 256 colours at byte offset 54"),
          "bmp rle palette");
    bmp[28] = 24;
    CHECK(expect_failure(bmp, sizeof bmp, "rle24.bmp",
                         "rle24.bmp: corrupt BMP: RLE8 with 24 bits per pixel"),
          "bmp rle depth");
    bmp[28] = 8;
    bmp[30] = 0;
    bmp[18] = 0;
    bmp[10] = 54;
    CHECK(expect_failure(bmp, sizeof bmp, "zero.bmp", "zero.bmp: BMP image has zero size (0x2)"),
          "bmp zero width");

    const uint8_t no_image[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0, ';'};
    CHECK(expect_failure(no_image, sizeof no_image, "empty.gif",
                         "empty.gif: GIF holds no image"),
          "gif without a frame");
}

TEST(libjpeg_never_writes_to_stderr)
{
    NEED_SHARED(path, IMAGES "landscape_640x480.jpg");
    size_t size;
    uint8_t *jpg = read_fixture(path, &size);
    REQUIRE(jpg, "fixture");
    /* extraneous bytes before the EOI marker make libjpeg warn; it must stay silent */
    uint8_t *odd = malloc(size + 4);
    memcpy(odd, jpg, size - 2);
    memcpy(odd + size - 2, "\x00\x11\x22\x33\xff\xd9", 6);
    fflush(stderr);
    char log[] = "/tmp/vdx-stderr-XXXXXX";
    int fd = mkstemp(log), saved = dup(2);
    dup2(fd, 2);
    vdx_image img;
    vdx_error err;
    int rc_warn = vdx_image_decode(odd, size + 4, "odd.jpg", &img, &err);
    if (rc_warn == 0)
        vdx_image_free(&img);
    int rc_cut = vdx_image_decode(jpg, size / 2, "cut.jpg", &img, &err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t written = lseek(fd, 0, SEEK_END);
    close(fd);
    unlink(log);
    CHECK(rc_warn == 0, "a JPEG with a recoverable glitch should decode, as in Pillow");
    CHECK(rc_cut == -1, "a truncated JPEG should fail");
    CHECK(written == 0, "%lld bytes written to stderr", (long long)written);
    free(odd);
    free(jpg);
}

TEST(config_errors)
{
    const char *dir = test_tmpdir("imgcfg");
    char path[4200];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"size\": 224,", ": invalid JSON at line 1, column 13 (byte 12)"},
        {"{\"resample\": 2}", ": \"resample\" is 2; only 3 (bicubic, what CLIP uses) is supported"},
        {"{\"size\": {\"longest_edge\": 3}}",
         ": \"size\" must hold \"shortest_edge\" or \"height\" and \"width\""},
        {"{\"crop_size\": -4}", ": \"crop_size\" must be an integer from 1 to 65536"},
        {"{\"image_mean\": [0.5, 0.5]}", ": \"image_mean\" must be a list of 3 numbers"},
        {"{\"image_std\": [0.5, 0, 0.5]}", ": \"image_std\"[1] is zero"},
        {"{\"do_resize\": \"yes\"}", ": \"do_resize\" must be true or false"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        FILE *f = fopen(path, "w");
        fputs(cases[i].json, f);
        fclose(f);
        vdx_preprocess_config cfg;
        vdx_error err;
        CHECK(vdx_preprocess_config_load(path, &cfg, &err) == -1, "accepted %s", cases[i].json);
        CHECK(strncmp(err.message, path, strlen(path)) == 0 && strstr(err.message, cases[i].want),
              "%s: \"%s\"", cases[i].json, err.message);
    }
    unlink(path);
    rmdir(dir);
}

/* Found by fuzz_preprocess_config: a mean or std no float holds was converted to float
 * (undefined behaviour), and a huge rescale_factor or a tiny std gave normalised pixels of
 * ±inf (NaN image features downstream). Each is refused, naming the key. */
TEST(config_values_fit_a_float)
{
    const char *dir = test_tmpdir("imgcfg-float");
    char path[4200];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"image_mean\": [0.5, 1e300, 0.5]}", ": \"image_mean\"[1] is not a finite float"},
        {"{\"image_std\": -1e39}", ": \"image_std\" is not a finite float"},
        {"{\"rescale_factor\": 1e308}", ": \"rescale_factor\" must be a number in (0, 1] (CLIP's is 1/255)"},
        {"{\"rescale_factor\": 2}", ": \"rescale_factor\" must be a number in (0, 1] (CLIP's is 1/255)"},
        {"{\"image_std\": [0.5, 0.5, 1e-40]}",
         ": \"image_mean\"[2] 0.408211 and \"image_std\"[2] 9.99995e-41 normalise pixels beyond a float's range"},
        {"{\"image_mean\": 3e38, \"image_std\": 0.01}",
         ": \"image_mean\"[0] 3e+38 and \"image_std\"[0] 0.01 normalise pixels beyond a float's range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        FILE *f = fopen(path, "w");
        fputs(cases[i].json, f);
        fclose(f);
        vdx_preprocess_config cfg;
        vdx_error err = {{0}};
        CHECK(vdx_preprocess_config_load(path, &cfg, &err) == -1, "accepted %s", cases[i].json);
        CHECK(strncmp(err.message, path, strlen(path)) == 0 &&
                  !strcmp(err.message + strlen(path), cases[i].want),
              "%s: \"%s\"", cases[i].json, err.message);
    }
    /* without normalisation the mean and std are not used */
    FILE *f = fopen(path, "w");
    fputs("{\"do_normalize\": false, \"image_std\": [1e-40, 1, 1]}", f);
    fclose(f);
    vdx_preprocess_config cfg;
    vdx_error err = {{0}};
    CHECK(vdx_preprocess_config_load(path, &cfg, &err) == 0, "%s", err.message);
    unlink(path);
    rmdir(dir);
}

TEST(extreme_aspect_ratio_refused)
{
    /* 1 x 2,000,000: its short side would be scaled to 224, the long one to 448 million */
    vdx_image img = {1, 2000000, calloc(2000000, 3)};
    vdx_preprocess_config cfg;
    vdx_preprocess_config_default(&cfg);
    uint8_t *crop = malloc(224 * 224 * 3);
    vdx_error err;
    CHECK(vdx_image_clip_crop(&img, &cfg, crop, &err) == -1, "accepted");
    CHECK(strcmp(err.message, "preprocess: a 1x2000000 image would be resized to 224x448000000; "
                              "its aspect ratio is too extreme") == 0,
          "%s", err.message);
    /* 1 x 100000 is fine: 224 x 22400000, of which only the crop is computed */
    img.height = 100000;
    CHECK(vdx_image_clip_crop(&img, &cfg, crop, &err) == 0, "%s", err.message);
    free(crop);
    free(img.rgb);
}

int main(void)
{
    RUN(empty_input);
    RUN(missing_file);
    RUN(only_regular_files_of_bounded_size);
    RUN(random_bytes_name_what_was_seen);
    RUN(known_unsupported_formats_are_named);
    RUN(truncated_jpeg);
    RUN(truncated_progressive_jpeg);
    RUN(truncated_png);
    RUN(truncated_gif);
    RUN(truncated_webp);
    RUN(truncated_bmp);
    RUN(every_cut_fails_cleanly);
    RUN(bomb_png_100000_square);
    RUN(bomb_png_bytes_cap);
    RUN(bomb_jpeg_65500_square);
    RUN(bomb_gif_bmp_webp);
    RUN(corrupt_headers);
    RUN(libjpeg_never_writes_to_stderr);
    RUN(config_errors);
    RUN(config_values_fit_a_float);
    RUN(extreme_aspect_ratio_refused);
    return test_summary("test_image_errors");
}
