/* PNG decoding with libpng, converted to RGB the way Pillow opens a PNG and then calls
 * convert("RGB"): grey is replicated, alpha dropped (no compositing), palette indices
 * looked up in a 256-entry table (missing entries are Pillow's grey ramp), tRNS ignored,
 * 1/2/4-bit grey scaled to 0..255, interlaced images de-interlaced. 16-bit samples keep
 * their high byte, which is what Pillow does for 16-bit RGB, RGBA and grey+alpha; for
 * plain 16-bit grey Pillow clips the 0..65535 value to 255 (a nearly white image), a
 * quirk we deliberately do not copy (the golden manifest marks it not pixel-exact).
 * The orientation comes from where Pillow 9.4's getexif() finds it: the eXIf chunk, else
 * ImageMagick's "Raw profile type exif" text, else XMP; before or after the image data.
 *
 * As with libjpeg, libpng's longjmp lands in a function of its own and all allocations
 * hang off a job struct owned by the caller. */
#include "image/image_internal.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct png_job {
    png_structp png;
    png_infop info;
    const uint8_t *bytes;
    size_t size, offset;
    char message[512];
    char warning[200]; /* the last libpng warning: often the reason for the error after it */
    uint8_t *samples;   /* the image in its own channel layout, when that is not RGB */
    png_bytep *rows;
};

static void png_read_from_memory(png_structp png, png_bytep data, size_t length)
{
    struct png_job *job = png_get_io_ptr(png);
    if (length > job->size - job->offset) {
        snprintf(job->message, sizeof job->message,
                 "truncated PNG: needed %zu bytes at offset %zu, the file has %zu", length,
                 job->offset, job->size);
        png_longjmp(png, 1);
    }
    memcpy(data, job->bytes + job->offset, length);
    job->offset += length;
}

static void png_on_error(png_structp png, png_const_charp message)
{
    struct png_job *job = png_get_error_ptr(png);
    if (job->warning[0])
        snprintf(job->message, sizeof job->message, "corrupt PNG: %s (%s; near byte offset %zu)",
                 message, job->warning, job->offset);
    else
        snprintf(job->message, sizeof job->message, "corrupt PNG: %s (near byte offset %zu)",
                 message, job->offset);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message)
{
    struct png_job *job = png_get_error_ptr(png);
    snprintf(job->warning, sizeof job->warning, "%s", message);
}

/* Reads the chunks after the image data for a late eXIf. A damaged tail (missing IEND,
 * bad CRC in an ancillary chunk) does not spoil pixels already decoded: ignore it. */
static void png_read_tail(struct png_job *job)
{
    if (setjmp(png_jmpbuf(job->png)))
        return;
    png_read_end(job->png, job->info);
}

/* ImageMagick stores EXIF in a text chunk, "Raw profile type exif": "\nexif\n  LENGTH\n"
 * then hex digits over many lines. Pillow reads it (bytes.fromhex of the lines after
 * the third) when there is no eXIf chunk. Returns the orientation tag or 0. */
static int png_raw_profile_orientation(const char *text, size_t length)
{
    size_t at = 0;
    for (int newlines = 0; newlines < 3; at++) {
        if (at >= length)
            return 0;
        newlines += text[at] == '\n';
    }
    uint8_t *bytes = malloc(length / 2 + 1);
    if (!bytes)
        return 0;
    size_t n = 0;
    int high = -1, ok = 1;
    for (; at < length && ok; at++) {
        const char c = text[at];
        int v = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0) {
            ok = c == '\n' || c == ' ' || c == '\t' || c == '\r';
            continue;
        }
        if (high < 0) {
            high = v;
        } else {
            bytes[n++] = (uint8_t)(high << 4 | v);
            high = -1;
        }
    }
    const int tag = ok ? image_exif_orientation(bytes, n) : 0;
    free(bytes);
    return tag;
}

static size_t png_text_length(const png_text *t)
{
    return t->compression >= PNG_ITXT_COMPRESSION_NONE ? t->itxt_length : t->text_length;
}

/* The orientation Pillow's getexif() finds in a PNG: the eXIf chunk, else ImageMagick's
 * raw profile text; when neither has the tag, XMP (text key "XML:com.adobe.xmp"). */
static int png_orientation(struct png_job *job)
{
    int tag = 0, have_exif = 0;
#ifdef PNG_eXIf_SUPPORTED
    png_uint_32 length;
    png_bytep exif;
    if (png_get_eXIf_1(job->png, job->info, &length, &exif) & PNG_INFO_eXIf) {
        have_exif = 1;
        tag = image_exif_orientation(exif, length);
    }
#endif
    png_textp texts;
    int count = 0;
    png_get_text(job->png, job->info, &texts, &count);
    for (int i = 0; i < count && !have_exif; i++)
        if (texts[i].key && !strcmp(texts[i].key, "Raw profile type exif")) {
            have_exif = 1;
            tag = png_raw_profile_orientation(texts[i].text, png_text_length(&texts[i]));
        }
    for (int i = 0; i < count && !tag; i++)
        if (texts[i].key && !strcmp(texts[i].key, "XML:com.adobe.xmp"))
            tag = image_xmp_orientation(texts[i].text, png_text_length(&texts[i]));
    return tag ? tag : 1;
}

static int png_run(struct png_job *job, const char *what, vdx_image *out, vdx_error *err)
{
    if (setjmp(png_jmpbuf(job->png)))
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: %s", what, job->message);

    png_set_read_fn(job->png, job, png_read_from_memory);
    png_read_info(job->png, job->info);
    png_uint_32 width, height;
    int depth, color_type, interlace;
    png_get_IHDR(job->png, job->info, &width, &height, &depth, &color_type, &interlace, NULL,
                 NULL);
    if (image_alloc(out, width, height, what, "PNG", err) != 0)
        return -1;

    if (depth == 16)
        png_set_strip_16(job->png);
    if (depth < 8) {
        if (color_type == PNG_COLOR_TYPE_GRAY)
            png_set_expand_gray_1_2_4_to_8(job->png);
        else
            png_set_packing(job->png);
    }
    png_set_interlace_handling(job->png);
    png_read_update_info(job->png, job->info);
    const int channels = png_get_channels(job->png, job->info);
    const size_t row_bytes = png_get_rowbytes(job->png, job->info);
    if (row_bytes != (size_t)width * channels)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: PNG row of %zu bytes where %u x %d were expected", what,
                        row_bytes, (unsigned)width, channels);

    uint8_t *target = out->rgb;
    if (!(channels == 3 && color_type != PNG_COLOR_TYPE_PALETTE)) {
        job->samples = malloc((size_t)height * row_bytes);
        if (!job->samples)
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", what);
        target = job->samples;
    }
    job->rows = malloc(sizeof *job->rows * height);
    if (!job->rows)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", what);
    for (png_uint_32 y = 0; y < height; y++)
        job->rows[y] = target + (size_t)y * row_bytes;
    png_read_image(job->png, job->rows);
    return 0;
}

/* Converts the decoded samples to RGB (Pillow's P→RGB, L→RGB, LA→RGB, RGBA→RGB). */
static void png_samples_to_rgb(struct png_job *job, vdx_image *out)
{
    const size_t n = (size_t)out->width * out->height;
    const uint8_t *s = job->samples;
    uint8_t *d = out->rgb;
    int color_type = png_get_color_type(job->png, job->info);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_colorp colors = NULL;
        int count = 0;
        png_get_PLTE(job->png, job->info, &colors, &count);
        uint8_t table[256 * 3];
        image_palette_init(table, (const uint8_t *)colors, count, sizeof *colors, 0);
        for (size_t i = 0; i < n; i++)
            memcpy(d + 3 * i, table + 3 * s[i], 3);
        return;
    }
    const int channels = png_get_channels(job->png, job->info);
    if (channels <= 2) { /* grey, grey + alpha */
        for (size_t i = 0; i < n; i++)
            d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = s[i * channels];
    } else { /* RGBA */
        for (size_t i = 0; i < n; i++)
            memcpy(d + 3 * i, s + 4 * i, 3);
    }
}

int image_decode_png(const uint8_t *bytes, size_t size, const char *what, vdx_image *out,
                     int *orientation, vdx_error *err)
{
    struct png_job job;
    memset(&job, 0, sizeof job);
    job.bytes = bytes;
    job.size = size;
    job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, png_on_error, png_on_warning);
    if (!job.png)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: cannot initialise libpng", what);
    job.info = png_create_info_struct(job.png);
    int rc = job.info ? png_run(&job, what, out, err)
                      : vdx_fail_kind(err, VDX_ERR_INVALID, "%s: cannot initialise libpng", what);
    if (rc == 0) {
        png_read_tail(&job);
        *orientation = png_orientation(&job);
        if (job.samples)
            png_samples_to_rgb(&job, out);
    }
    png_destroy_read_struct(&job.png, job.info ? &job.info : NULL, NULL);
    free(job.samples);
    free(job.rows);
    if (rc != 0)
        vdx_image_free(out);
    return rc;
}
