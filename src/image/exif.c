/* EXIF orientation: read tag 0x0112 from IFD0 of an EXIF block's TIFF structure (every
 * offset bounds-checked: the block comes from untrusted files) and apply it the way
 * Pillow's ImageOps.exif_transpose does, which transformers calls on every image it
 * loads from a path or URL. Cameras store portrait photos as rotated landscape pixels
 * plus this tag, so skipping it would embed a sideways picture. */
#include "image/image_internal.h"

#include <stdlib.h>
#include <string.h>

static unsigned read_u16(const uint8_t *p, int big_endian)
{
    return big_endian ? (unsigned)(p[0] << 8 | p[1]) : (unsigned)(p[1] << 8 | p[0]);
}

static uint32_t read_u32(const uint8_t *p, int big_endian)
{
    return big_endian ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
                      : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int image_exif_orientation(const uint8_t *exif, size_t size)
{
    enum { TAG_ORIENTATION = 0x0112, TYPE_BYTE = 1, TYPE_SHORT = 3, TYPE_LONG = 4 };
    if (!exif)
        return 0;
    if (size >= 6 && !memcmp(exif, "Exif\0\0", 6)) {
        exif += 6;
        size -= 6;
    }
    if (size < 8)
        return 0;
    int big_endian;
    if (!memcmp(exif, "MM", 2))
        big_endian = 1;
    else if (!memcmp(exif, "II", 2))
        big_endian = 0;
    else
        return 0;
    if (read_u16(exif + 2, big_endian) != 42)
        return 0;
    uint32_t ifd = read_u32(exif + 4, big_endian);
    if (ifd > size || size - ifd < 2)
        return 0;
    unsigned entries = read_u16(exif + ifd, big_endian);
    for (unsigned i = 0; i < entries; i++) {
        size_t at = (size_t)ifd + 2 + (size_t)i * 12;
        if (at + 12 > size)
            return 0;
        const uint8_t *e = exif + at;
        if (read_u16(e, big_endian) != TAG_ORIENTATION)
            continue;
        unsigned type = read_u16(e + 2, big_endian);
        uint32_t count = read_u32(e + 4, big_endian);
        uint32_t value;
        if (count < 1)
            return 0;
        if (type == TYPE_SHORT)
            value = read_u16(e + 8, big_endian);
        else if (type == TYPE_LONG)
            value = read_u32(e + 8, big_endian);
        else if (type == TYPE_BYTE)
            value = e[8];
        else
            return 0;
        return value >= 1 && value <= 8 ? (int)value : 1;
    }
    return 0;
}

int image_xmp_orientation(const char *xmp, size_t size)
{
    static const char key[] = "tiff:Orientation";
    const size_t key_len = sizeof key - 1;
    for (size_t i = 0; xmp && i + key_len + 1 < size; i++) {
        if (memcmp(xmp + i, key, key_len) != 0)
            continue;
        const char *rest = xmp + i + key_len;
        const size_t left = size - i - key_len;
        char digit = 0;
        if (left >= 3 && rest[0] == '=' && rest[1] == '"')
            digit = rest[2];
        else if (left >= 2 && rest[0] == '>')
            digit = rest[1];
        if (digit >= '0' && digit <= '9')
            return digit >= '1' && digit <= '8' ? digit - '0' : 1;
    }
    return 0;
}

int image_apply_orientation(vdx_image *img, int orientation, const char *what, vdx_error *err)
{
    if (orientation < 2 || orientation > 8)
        return 0;
    const int w = img->width, h = img->height;
    const int swaps_axes = orientation >= 5;
    const int out_w = swaps_axes ? h : w, out_h = swaps_axes ? w : h;
    uint8_t *out = malloc((size_t)w * h * 3);
    if (!out)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory applying EXIF orientation %d", what,
                        orientation);
    /* For each output pixel (ox, oy), the source pixel (sx, sy) of Pillow's transposes:
     * 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270,
     * 7 TRANSVERSE, 8 ROTATE_90. */
    for (int oy = 0; oy < out_h; oy++) {
        uint8_t *dst = out + (size_t)oy * out_w * 3;
        for (int ox = 0; ox < out_w; ox++) {
            int sx, sy;
            switch (orientation) {
            case 2: sx = w - 1 - ox; sy = oy; break;
            case 3: sx = w - 1 - ox; sy = h - 1 - oy; break;
            case 4: sx = ox; sy = h - 1 - oy; break;
            case 5: sx = oy; sy = ox; break;
            case 6: sx = oy; sy = h - 1 - ox; break;
            case 7: sx = w - 1 - oy; sy = h - 1 - ox; break;
            default: sx = w - 1 - oy; sy = ox; break; /* 8 */
            }
            const uint8_t *src = img->rgb + ((size_t)sy * w + sx) * 3;
            dst[ox * 3 + 0] = src[0];
            dst[ox * 3 + 1] = src[1];
            dst[ox * 3 + 2] = src[2];
        }
    }
    free(img->rgb);
    img->rgb = out;
    img->width = out_w;
    img->height = out_h;
    return 0;
}
