/* Image decoding entry points: identify the format by its first bytes (never by a file
 * name or a Content-Type), dispatch to the decoder of that format, apply the EXIF
 * orientation, and refuse decompression bombs before any pixel buffer is allocated.
 * Anything that is not an image we read gets a message naming what its bytes look like. */
#include "image/image_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The size of the encoded input being decoded on this thread, for the byte cap below
 * (set by vdx_image_decode; C11 thread storage, so decoders stay reentrant). */
static _Thread_local size_t input_size;

int image_check_size(long long width, long long height, const char *what, const char *format,
                     vdx_error *err)
{
    if (width <= 0 || height <= 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: %s image has zero size (%lldx%lld)", what, format, width,
                        height);
    if (width > VDX_IMAGE_MAX_PIXELS / height)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                        "%s: %s image of %lldx%lld pixels exceeds the limit of %lld pixels "
                        "(refused as a possible decompression bomb)",
                        what, format, width, height, (long long)VDX_IMAGE_MAX_PIXELS);
    /* bytes, not only pixels: a small file may not decode to more than
     * VDX_IMAGE_MAX_RATIO times its size, beyond VDX_IMAGE_FREE_BYTES */
    long long bytes = width * height * 3;
    if (input_size && bytes > VDX_IMAGE_FREE_BYTES &&
        (unsigned long long)bytes / VDX_IMAGE_MAX_RATIO > input_size)
        return vdx_fail(err,
                        "%s: %s image of %lldx%lld pixels would take %lld MB decoded from a "
                        "%zu-byte file (more than %d times its size): refused as a possible "
                        "decompression bomb",
                        what, format, width, height, bytes >> 20, input_size, VDX_IMAGE_MAX_RATIO);
    return 0;
}

int image_alloc(vdx_image *img, long long width, long long height, const char *what,
                const char *format, vdx_error *err)
{
    img->rgb = NULL;
    if (image_check_size(width, height, what, format, err) != 0)
        return -1;
    img->rgb = malloc((size_t)width * (size_t)height * 3);
    if (!img->rgb)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory for a %lldx%lld %s image", what, width, height,
                        format);
    img->width = (int)width;
    img->height = (int)height;
    return 0;
}

void image_palette_init(uint8_t table[256 * 3], const uint8_t *colors, int count, int stride,
                        int bgr)
{
    for (int i = 0; i < 256; i++)
        table[i * 3 + 0] = table[i * 3 + 1] = table[i * 3 + 2] = (uint8_t)i;
    for (int i = 0; i < count && i < 256; i++) {
        const uint8_t *c = colors + (size_t)i * stride;
        table[i * 3 + 0] = bgr ? c[2] : c[0];
        table[i * 3 + 1] = c[1];
        table[i * 3 + 2] = bgr ? c[0] : c[2];
    }
}

/* Formats recognised only to name them in the error message. */
static const char *unsupported_format_name(const uint8_t *b, size_t n)
{
    if (n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4)))
        return "TIFF";
    if (n >= 12 && !memcmp(b + 4, "ftyp", 4)) {
        if (!memcmp(b + 8, "avif", 4) || !memcmp(b + 8, "avis", 4))
            return "AVIF";
        if (!memcmp(b + 8, "hei", 3) || !memcmp(b + 8, "mif1", 4) || !memcmp(b + 8, "msf1", 4))
            return "HEIC/HEIF";
        return "ISO media (MP4/QuickTime)";
    }
    if (n >= 2 && b[0] == 0xFF && b[1] == 0x0A)
        return "JPEG XL";
    if (n >= 12 && !memcmp(b, "\0\0\0\x0cJXL ", 8))
        return "JPEG XL";
    if (n >= 4 && !memcmp(b, "\0\0\1\0", 4))
        return "ICO";
    if (n >= 5 && !memcmp(b, "%PDF-", 5))
        return "PDF";
    if (n >= 4 && !memcmp(b, "8BPS", 4))
        return "Photoshop PSD";
    if (n >= 4 && !memcmp(b, "RIFF", 4))
        return "RIFF (not WebP)";
    size_t i = 0;
    while (i < n && i < 64 && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n'))
        i++;
    if (i < n && b[i] == '<')
        return "HTML/XML text";
    if (i < n && (b[i] == '{' || b[i] == '['))
        return "JSON text";
    return NULL;
}

static int fail_unsupported(const uint8_t *b, size_t n, const char *what, vdx_error *err)
{
    char hex[3 * 16 + 1] = "", text[16 + 1] = "";
    size_t shown = n < 16 ? n : 16, pos = 0;
    for (size_t i = 0; i < shown; i++) {
        pos += (size_t)snprintf(hex + pos, sizeof hex - pos, "%s%02x", i ? " " : "", b[i]);
        text[i] = (b[i] >= 0x20 && b[i] < 0x7f) ? (char)b[i] : '.';
    }
    text[shown] = 0;
    const char *name = unsupported_format_name(b, n);
    if (name)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                        "%s: unsupported image format: %s (first bytes: %s \"%s\"); "
                        "supported: JPEG, PNG, WebP, GIF, BMP",
                        what, name, hex, text);
    return vdx_fail_kind(err, VDX_ERR_INVALID,
                    "%s: unsupported or unrecognised image format (first bytes: %s \"%s\"); "
                    "supported: JPEG, PNG, WebP, GIF, BMP",
                    what, hex, text);
}

/* Both entry points: reduce NULL decodes at full size. */
static int decode_any(const uint8_t *bytes, size_t size, const char *what,
                      const image_reduce *reduce, vdx_image *out, int *full_width,
                      int *full_height, vdx_error *err)
{
    out->width = out->height = 0;
    out->rgb = NULL;
    if (!what)
        what = "image";
    if (!bytes || size == 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: empty file (0 bytes), not an image", what);
    input_size = size;

    int orientation = 1, rc, jpeg_w = 0, jpeg_h = 0;
    if (size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
        rc = image_decode_jpeg(bytes, size, what, reduce, out, &jpeg_w, &jpeg_h, &orientation,
                               err);
    else if (size >= 8 && !memcmp(bytes, "\x89PNG\r\n\x1a\n", 8))
        rc = image_decode_png(bytes, size, what, out, &orientation, err);
    else if (size >= 12 && !memcmp(bytes, "RIFF", 4) && !memcmp(bytes + 8, "WEBP", 4))
        rc = image_decode_webp(bytes, size, what, out, &orientation, err);
    else if (size >= 6 && (!memcmp(bytes, "GIF87a", 6) || !memcmp(bytes, "GIF89a", 6)))
        rc = image_decode_gif(bytes, size, what, out, err);
    else if (size >= 2 && bytes[0] == 'B' && bytes[1] == 'M')
        rc = image_decode_bmp(bytes, size, what, out, err);
    else
        return fail_unsupported(bytes, size, what, err);

    if (rc == 0 && full_width) {
        /* the original's size as the oriented image has it: 5..8 swap the axes */
        const int w = jpeg_w ? jpeg_w : out->width, h = jpeg_h ? jpeg_h : out->height;
        const int swap = orientation >= 5 && orientation <= 8;
        *full_width = swap ? h : w;
        *full_height = swap ? w : h;
    }
    if (rc == 0 && image_apply_orientation(out, orientation, what, err) != 0)
        rc = -1;
    if (rc != 0)
        vdx_image_free(out);
    return rc;
}

int vdx_image_decode(const uint8_t *bytes, size_t size, const char *what, vdx_image *out,
                     vdx_error *err)
{
    return decode_any(bytes, size, what, NULL, out, NULL, NULL, err);
}

int vdx_image_decode_reduced(const uint8_t *bytes, size_t size, const char *what,
                             int min_short, int min_long, vdx_image *out, int *full_width,
                             int *full_height, vdx_error *err)
{
    const image_reduce reduce = {min_short, min_long};
    return decode_any(bytes, size, what, &reduce, out, full_width, full_height, err);
}

int vdx_image_load(const char *path, vdx_image *out, vdx_error *err)
{
    char *data;
    size_t size;
    out->width = out->height = 0;
    out->rgb = NULL;
    if (vdx_read_file_at_most(path, VDX_IMAGE_MAX_FILE_BYTES, &data, &size, err) != 0)
        return -1;
    int rc = vdx_image_decode((const uint8_t *)data, size, path, out, err);
    free(data);
    return rc;
}

void vdx_image_free(vdx_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}
