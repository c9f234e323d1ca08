/* BMP decoding: a careful reader rather than a library, since the format is a header
 * and raw rows. Handles the headers Windows and OS/2 write (12, 40, 52, 56, 64, 108 and
 * 124 bytes), 1/4/8-bit palettes, 16-bit (5-5-5 or bit fields), 24-bit, and 32-bit (BGRX
 * or bit fields, alpha dropped as Pillow's convert("RGB") drops it), bottom-up and
 * top-down. Bit-field channels narrower than 8 bits are scaled as Pillow's unpackers
 * do (v * 255 / max). 4- and 8-bit run-length compressed BMPs (RLE4, RLE8) are
 * expanded with runs, absolute runs, deltas and end-of-line codes; pixels the stream
 * never reaches keep palette index 0. Every header field and every run is checked
 * against the image and the file size before it is used. */
#include "image/image_internal.h"

#include <stdlib.h>
#include <string.h>

enum { BI_RGB = 0, BI_RLE8 = 1, BI_RLE4 = 2, BI_BITFIELDS = 3, BI_JPEG = 4, BI_PNG = 5,
       BI_ALPHABITFIELDS = 6 };

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned le16(const uint8_t *p)
{
    return (unsigned)(p[0] | p[1] << 8);
}

/* One colour channel of a bit-field pixel: shift, width and the scale to 8 bits. */
struct bmp_channel {
    int shift, bits;
    uint32_t max;
};

static int bmp_channel_from_mask(uint32_t mask, struct bmp_channel *c)
{
    if (!mask)
        return -1;
    c->shift = 0;
    while (!(mask & 1)) {
        mask >>= 1;
        c->shift++;
    }
    c->bits = 0;
    while (mask & 1) {
        mask >>= 1;
        c->bits++;
    }
    if (mask) /* holes in the mask */
        return -1;
    if (c->bits > 8) { /* keep the top 8 bits */
        c->shift += c->bits - 8;
        c->bits = 8;
    }
    c->max = (1u << c->bits) - 1;
    return 0;
}

static inline uint8_t bmp_channel_value(uint32_t pixel, const struct bmp_channel *c)
{
    uint32_t v = (pixel >> c->shift) & c->max;
    return (uint8_t)(v * 255 / c->max);
}

/* Expands RLE8/RLE4 data (rows bottom-up) into out, looking indices up in palette. */
static int bmp_expand_rle(const uint8_t *data, size_t size, size_t file_offset, int rle4,
                          const uint8_t palette[256 * 3], const char *what, vdx_image *out,
                          vdx_error *err)
{
    const size_t w = (size_t)out->width, h = (size_t)out->height;
    uint8_t *indices = calloc(w * h, 1);
    if (!indices)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", what);
    size_t x = 0, y = 0, p = 0; /* y counts rows from the bottom */
    int finished = 0;
    while (!finished && y < h) {
        if (size - p < 2)
            break;
        const unsigned count = data[p], code = data[p + 1];
        p += 2;
        if (count) { /* a run: one index, or two alternating nibbles */
            for (unsigned k = 0; k < count && x < w; k++, x++)
                indices[(h - 1 - y) * w + x] =
                    rle4 ? (uint8_t)(k & 1 ? code & 15 : code >> 4) : (uint8_t)code;
        } else if (code == 0) { /* end of line */
            x = 0;
            y++;
        } else if (code == 1) { /* end of bitmap */
            finished = 1;
        } else if (code == 2) { /* delta: skip right and up */
            if (size - p < 2)
                break;
            x += data[p];
            y += data[p + 1];
            p += 2;
        } else { /* absolute: `code` literal indices, padded to a 16-bit boundary */
            const size_t bytes = rle4 ? (code + 1) / 2 : code;
            if (size - p < bytes)
                break;
            for (unsigned k = 0; k < code; k++, x++)
                if (x < w)
                    indices[(h - 1 - y) * w + x] =
                        rle4 ? (uint8_t)(k & 1 ? data[p + k / 2] & 15 : data[p + k / 2] >> 4)
                             : data[p + k];
            p += bytes + (bytes & 1);
            if (p > size)
                p = size;
        }
    }
    if (!finished && y < h) {
        free(indices);
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: truncated BMP: RLE data ends at byte offset %zu before the "
                        "end-of-bitmap code", what, file_offset + p);
    }
    for (size_t i = 0; i < w * h; i++)
        memcpy(out->rgb + 3 * i, palette + 3 * indices[i], 3);
    free(indices);
    return 0;
}

int image_decode_bmp(const uint8_t *b, size_t size, const char *what, vdx_image *out,
                     vdx_error *err)
{
    enum { FILE_HEADER = 14 };
    if (size < FILE_HEADER + 4)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: truncated BMP: %zu bytes, too short for the headers", what,
                        size);
    const uint32_t pixel_offset = le32(b + 10);
    const uint32_t header_size = le32(b + 14);
    if (header_size != 12 && header_size != 40 && header_size != 52 && header_size != 56 &&
        header_size != 64 && header_size != 108 && header_size != 124)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt BMP: unknown DIB header size %u at byte offset 14",
                        what, (unsigned)header_size);
    if (size < FILE_HEADER + (size_t)header_size)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: truncated BMP: the %u-byte DIB header needs %u bytes, the "
                        "file has %zu", what, (unsigned)header_size,
                        (unsigned)(FILE_HEADER + header_size), size);
    const uint8_t *h = b + FILE_HEADER;
    long long width, height;
    unsigned planes, bpp;
    uint32_t compression = BI_RGB, colors_used = 0;
    if (header_size == 12) {
        width = le16(h + 4);
        height = le16(h + 6);
        planes = le16(h + 8);
        bpp = le16(h + 10);
    } else {
        width = (int32_t)le32(h + 4);
        height = (int32_t)le32(h + 8);
        planes = le16(h + 12);
        bpp = le16(h + 14);
        compression = le32(h + 16);
        colors_used = le32(h + 32);
    }
    const int top_down = height < 0;
    if (planes != 1)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt BMP: %u colour planes (must be 1)", what, planes);
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: unsupported BMP: %u bits per pixel", what, bpp);
    const int rle = compression == BI_RLE8 || compression == BI_RLE4;
    if (rle && (bpp != (compression == BI_RLE8 ? 8u : 4u) || height < 0))
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt BMP: RLE%d with %u bits per pixel%s", what,
                        compression == BI_RLE8 ? 8 : 4, bpp, height < 0 ? ", top-down" : "");
    if (compression == BI_JPEG || compression == BI_PNG)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: unsupported BMP: embedded %s data", what,
                        compression == BI_JPEG ? "JPEG" : "PNG");
    if (!rle && compression != BI_RGB && compression != BI_BITFIELDS &&
        compression != BI_ALPHABITFIELDS)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt BMP: unknown compression %u", what,
                        (unsigned)compression);
    const int bitfields = compression == BI_BITFIELDS || compression == BI_ALPHABITFIELDS;
    if (top_down)
        height = -height;
    if (image_check_size(width, height, what, "BMP", err) != 0)
        return -1;
    if (bitfields && bpp != 16 && bpp != 32)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt BMP: bit fields with %u bits per pixel", what, bpp);

    /* Channel masks: in the header (52+ bytes) or just after a 40-byte one. */
    struct bmp_channel red, green, blue;
    size_t palette_at = FILE_HEADER + header_size;
    if (bitfields) {
        size_t masks_at = FILE_HEADER + 40;
        if (header_size == 40)
            palette_at += compression == BI_ALPHABITFIELDS ? 16 : 12;
        if (size < masks_at + 12)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: truncated BMP: bit-field masks at byte offset %zu", what,
                            masks_at);
        if (bmp_channel_from_mask(le32(b + masks_at), &red) ||
            bmp_channel_from_mask(le32(b + masks_at + 4), &green) ||
            bmp_channel_from_mask(le32(b + masks_at + 8), &blue))
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: unsupported BMP: bit-field masks %08x %08x %08x", what,
                            (unsigned)le32(b + masks_at), (unsigned)le32(b + masks_at + 4),
                            (unsigned)le32(b + masks_at + 8));
    } else if (bpp == 16) { /* BI_RGB 16-bit is 5-5-5 */
        bmp_channel_from_mask(0x7C00, &red);
        bmp_channel_from_mask(0x03E0, &green);
        bmp_channel_from_mask(0x001F, &blue);
    } else {
        bmp_channel_from_mask(0xFF0000, &red);
        bmp_channel_from_mask(0x00FF00, &green);
        bmp_channel_from_mask(0x0000FF, &blue);
    }

    uint8_t palette[256 * 3];
    if (bpp <= 8) {
        const unsigned max_colors = 1u << bpp;
        const unsigned entry = header_size == 12 ? 3 : 4;
        unsigned colors = colors_used ? colors_used : max_colors;
        if (colors > max_colors)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt BMP: %u palette colours for %u bits per pixel",
                            what, colors, bpp);
        if (palette_at + (size_t)colors * entry > size)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: truncated BMP: palette of %u colours at byte offset %zu",
                            what, colors, palette_at);
        image_palette_init(palette, b + palette_at, (int)colors, (int)entry, 1);
    }

    if (rle) {
        if (pixel_offset < FILE_HEADER + header_size || pixel_offset >= size)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: truncated BMP: RLE data at byte offset %u, the file has "
                            "%zu bytes", what, (unsigned)pixel_offset, size);
        if (image_alloc(out, width, height, what, "BMP", err) != 0)
            return -1;
        return bmp_expand_rle(b + pixel_offset, size - pixel_offset, pixel_offset,
                              compression == BI_RLE4, palette, what, out, err);
    }
    const size_t stride = (((size_t)width * bpp + 31) / 32) * 4;
    if (pixel_offset < FILE_HEADER + header_size || pixel_offset > size ||
        (size - pixel_offset) / stride < (size_t)height)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: truncated BMP: %lld rows of %zu bytes at byte offset %u, the "
                        "file has %zu bytes", what, height, stride, (unsigned)pixel_offset, size);
    if (image_alloc(out, width, height, what, "BMP", err) != 0)
        return -1;

    for (long long y = 0; y < height; y++) {
        const uint8_t *row = b + pixel_offset + (size_t)(top_down ? y : height - 1 - y) * stride;
        uint8_t *d = out->rgb + (size_t)y * width * 3;
        for (long long x = 0; x < width; x++, d += 3) {
            if (bpp <= 8) {
                const unsigned per_byte = 8 / bpp;
                const unsigned shift = 8 - bpp - (unsigned)(x % per_byte) * bpp;
                const unsigned index = (row[x / per_byte] >> shift) & ((1u << bpp) - 1);
                memcpy(d, palette + 3 * index, 3);
            } else if (bpp == 24) {
                const uint8_t *p = row + x * 3;
                d[0] = p[2];
                d[1] = p[1];
                d[2] = p[0];
            } else {
                const uint32_t pixel = bpp == 16 ? le16(row + x * 2) : le32(row + x * 4);
                d[0] = bmp_channel_value(pixel, &red);
                d[1] = bmp_channel_value(pixel, &green);
                d[2] = bmp_channel_value(pixel, &blue);
            }
        }
    }
    return 0;
}
