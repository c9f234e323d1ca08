/* Image decoding and CLIP preprocessing, bit-exact with the Pillow path of
 * transformers' CLIPImageProcessor (docs/clip-model.md, "Image preprocessing"), plus thumbnails.
 * Input formats: JPEG (incl. progressive, grey, CMYK), PNG (all colour types and depths,
 * interlaced), WebP (lossy, lossless, alpha, first frame of an animation), GIF (first
 * frame), BMP (1/4/8-bit palette incl. RLE, 16/24/32-bit); identified by their bytes.
 * Every function is reentrant: threads may decode and preprocess concurrently. */
#ifndef VDX_IMAGE_H
#define VDX_IMAGE_H

#include "vdx/common.h"

/* Refuse images with more pixels than this (decompression bombs); Pillow's default. */
#define VDX_IMAGE_MAX_PIXELS (89478485LL * 2)
/* ... and images whose RGB pixels would take more than VDX_IMAGE_MAX_RATIO times the
 * encoded file's size, once beyond VDX_IMAGE_FREE_BYTES (64 MiB: any image up to about
 * 4,700 x 4,700): a 500 KB PNG cannot claim 500 MB. Photos compress 10-50 times. */
#define VDX_IMAGE_MAX_RATIO 256
#define VDX_IMAGE_FREE_BYTES (64LL << 20)
/* An image file read from disk may hold at most this many bytes (and must be a regular
 * file): a 100-megapixel PNG is about 150 MB; /dev/zero or a FIFO named photo.jpg is
 * refused before it is read. Downloads have their own limit (docs/ingest.md). */
#define VDX_IMAGE_MAX_FILE_BYTES ((size_t)256 << 20)

typedef struct vdx_image {
    int width, height;
    uint8_t *rgb; /* width*height*3, HWC, after EXIF orientation and RGB conversion */
} vdx_image;

typedef struct vdx_preprocess_config {
    int shortest_edge;  /* resize target for the short side (224); 0 when resizing to a
                           fixed size_height x size_width (the {"height","width"} form) */
    int size_height, size_width;
    int crop_height, crop_width;
    int do_resize, do_center_crop, do_normalize;
    double rescale_factor; /* 1/255 */
    float mean[3], std[3];
    int resample;       /* 3 = bicubic (the only one supported) */
} vdx_preprocess_config;

/* Defaults of openai/clip-vit-base-patch32. */
void vdx_preprocess_config_default(vdx_preprocess_config *cfg);
/* Reads preprocessor_config.json (old int and new dict forms). */
int vdx_preprocess_config_load(const char *path, vdx_preprocess_config *cfg, vdx_error *err);

/* Decodes bytes (format sniffed from the content), applies the EXIF orientation (from
 * where Pillow finds it), converts to RGB as Pillow's convert("RGB") does. `what` names
 * the input in error messages (a path or URL). Empty, truncated, corrupt, unsupported
 * and oversized (> VDX_IMAGE_MAX_PIXELS, refused before allocating) inputs fail with a
 * message; out is then empty. */
int vdx_image_decode(const uint8_t *bytes, size_t size, const char *what, vdx_image *out,
                     vdx_error *err);
/* Like vdx_image_decode, but a JPEG may be decoded smaller, with libjpeg-turbo's
 * DCT-domain scaling (as Pillow's Image.draft): at the smallest scale M/8 whose result
 * still has a shorter side of at least min_short and a longer side of at least min_long
 * pixels (full size when no smaller scale does). Other formats decode at full size.
 * *full_width x *full_height get the original's size (after EXIF orientation). Ingest
 * decodes this way; `vdx embed` and --exact-decode use the full decode (docs/ingest.md). */
int vdx_image_decode_reduced(const uint8_t *bytes, size_t size, const char *what,
                             int min_short, int min_long, vdx_image *out, int *full_width,
                             int *full_height, vdx_error *err);
int vdx_image_load(const char *path, vdx_image *out, vdx_error *err);
void vdx_image_free(vdx_image *img);

/* The shorter side a reduced decode (vdx_image_decode_reduced) keeps for this
 * preprocessing: twice its resize target (the larger of a fixed size), so the resize
 * still has two source pixels per output pixel; 0 when it does not resize (CLIP then crops
 * the original pixels and nothing may be reduced). Ingest, the server's image upload and
 * `vdx search --image` decode with it. */
int vdx_preprocess_reduced_side(const vdx_preprocess_config *cfg);

/* The size the resize step gives a width x height image (before the crop). */
void vdx_image_resized_size(const vdx_preprocess_config *cfg, int width, int height,
                            int *resized_width, int *resized_height);

/* Resize (Pillow bicubic, fixed point) + floor centre crop: crop_out gets
 * crop_height*crop_width*3 uint8, HWC. Only the cropped pixels are computed; a crop
 * larger than the resized image is zero-padded, as transformers pads. */
int vdx_image_clip_crop(const vdx_image *img, const vdx_preprocess_config *cfg,
                        uint8_t *crop_out, vdx_error *err);
/* uint8 HWC crop → float CHW pixel_values, (v*rescale - mean)/std. */
void vdx_image_normalize(const uint8_t *crop, const vdx_preprocess_config *cfg, float *out);
/* Both steps: img → pixel_values (3*crop_height*crop_width floats). */
int vdx_image_preprocess(const vdx_image *img, const vdx_preprocess_config *cfg,
                         float *pixel_values, vdx_error *err);

/* A JPEG whose longer side is at most max_side (never upscaled); malloc'd into *jpeg. */
int vdx_image_thumbnail_jpeg(const vdx_image *img, int max_side, int quality,
                             uint8_t **jpeg, size_t *size, vdx_error *err);

#endif
