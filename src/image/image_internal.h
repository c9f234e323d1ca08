/* Private interface between the files of src/image: one decoder per format (each
 * produces an 8-bit RGB image converted the way Pillow's convert("RGB") does, plus the
 * EXIF orientation it found), the orientation transform, and the bicubic resampler. */
#ifndef VDX_IMAGE_INTERNAL_H
#define VDX_IMAGE_INTERNAL_H

#include "vdx/image.h"

/* Refuses a width x height image that is empty or has more than VDX_IMAGE_MAX_PIXELS. */
int image_check_size(long long width, long long height, const char *what, const char *format,
                     vdx_error *err);
/* Allocates img->rgb for width x height after refusing empty or oversized images
 * (VDX_IMAGE_MAX_PIXELS), so no decoder allocates for a decompression bomb. `format`
 * names the format in messages ("JPEG", "PNG"...). */
int image_alloc(vdx_image *img, long long width, long long height, const char *what,
                const char *format, vdx_error *err);

/* Each decoder: bytes of one file → RGB image and EXIF orientation (1..8, 1 when absent).
 * The JPEG decoder may reduce in the DCT domain (reduce non-NULL with a non-zero side:
 * the smallest M/8 scale keeping both sides, before orientation) and gives the encoded
 * size before any reduction. */
typedef struct image_reduce {
    int min_short, min_long;
} image_reduce;
int image_decode_jpeg(const uint8_t *bytes, size_t size, const char *what,
                      const image_reduce *reduce, vdx_image *out, int *full_width,
                      int *full_height, int *orientation, vdx_error *err);
int image_decode_png(const uint8_t *bytes, size_t size, const char *what, vdx_image *out,
                     int *orientation, vdx_error *err);
int image_decode_webp(const uint8_t *bytes, size_t size, const char *what, vdx_image *out,
                      int *orientation, vdx_error *err);
int image_decode_gif(const uint8_t *bytes, size_t size, const char *what, vdx_image *out,
                     vdx_error *err);
int image_decode_bmp(const uint8_t *bytes, size_t size, const char *what, vdx_image *out,
                     vdx_error *err);

/* Orientation tag (0x0112) of an EXIF block (an optional "Exif\0\0" prefix, then a TIFF
 * header and IFD0): 1..8, 1 for a value outside that range, 0 when the block is absent or
 * malformed or has no such tag. A broken EXIF block never makes an image unreadable. */
int image_exif_orientation(const uint8_t *exif, size_t size);
/* Pillow's XMP fallback, used when EXIF has no orientation tag: the first match of
 * tiff:Orientation(="|>)([0-9]). Same return values as image_exif_orientation. */
int image_xmp_orientation(const char *xmp, size_t size);
/* Applies an orientation as Pillow's ImageOps.exif_transpose does (in place: img->rgb
 * may be replaced). */
int image_apply_orientation(vdx_image *img, int orientation, const char *what, vdx_error *err);

/* Pillow's palette lookup table: 256 RGB entries, the first `count` from `colors`
 * (3 bytes each, red first or, with `bgr`, blue first, `stride` bytes apart), the rest
 * the grey ramp Pillow 9.4 (the golden reference) initialises a palette with; Pillow
 * 10.1 and later leave them black. */
void image_palette_init(uint8_t table[256 * 3], const uint8_t *colors, int count, int stride,
                        int bgr);

/* Pillow's BICUBIC resize of an RGB src_w x src_h image to dst_w x dst_h, computing only
 * the window [x0, x0+win_w) x [y0, y0+win_h) of the result into out (win_w*win_h*3). Every
 * window pixel equals the one of the full resize: a centre crop costs only its own pixels.
 * An axis whose size is unchanged is copied, not filtered. */
int image_resample_window(const uint8_t *src, int src_w, int src_h, int dst_w, int dst_h,
                          int x0, int y0, int win_w, int win_h, uint8_t *out, vdx_error *err);

#endif
