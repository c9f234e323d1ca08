/* Thumbnails for the web page: the image scaled (never enlarged) so its longer side is
 * at most max_side, with the same bicubic resampler as CLIP preprocessing, and encoded
 * as a baseline JPEG with libjpeg-turbo. The short side is rounded to the nearest pixel
 * (at least 1) so the aspect ratio is kept as closely as whole pixels allow. */
#include "image/image_internal.h"

#include <math.h>
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

struct jpeg_encode_job {
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr errmgr;
    jmp_buf on_error;
    char message[JMSG_LENGTH_MAX];
    unsigned char *buffer;
    unsigned long size;
};

static void encode_error_exit(j_common_ptr cinfo)
{
    struct jpeg_encode_job *job = (struct jpeg_encode_job *)cinfo->client_data;
    cinfo->err->format_message(cinfo, job->message);
    longjmp(job->on_error, 1);
}

static void encode_output_nothing(j_common_ptr cinfo)
{
    (void)cinfo;
}

static int jpeg_encode_run(struct jpeg_encode_job *job, const uint8_t *rgb, int width,
                           int height, int quality, vdx_error *err)
{
    if (setjmp(job->on_error))
        return vdx_fail(err, "thumbnail: JPEG encoder failed: %s", job->message);
    jpeg_create_compress(&job->cinfo);
    jpeg_mem_dest(&job->cinfo, &job->buffer, &job->size);
    job->cinfo.image_width = (JDIMENSION)width;
    job->cinfo.image_height = (JDIMENSION)height;
    job->cinfo.input_components = 3;
    job->cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&job->cinfo);
    jpeg_set_quality(&job->cinfo, quality, TRUE);
    jpeg_start_compress(&job->cinfo, TRUE);
    while (job->cinfo.next_scanline < job->cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)job->cinfo.next_scanline * width * 3);
        jpeg_write_scanlines(&job->cinfo, &row, 1);
    }
    jpeg_finish_compress(&job->cinfo);
    return 0;
}

int vdx_image_thumbnail_jpeg(const vdx_image *img, int max_side, int quality, uint8_t **jpeg,
                             size_t *size, vdx_error *err)
{
    *jpeg = NULL;
    *size = 0;
    if (max_side < 1 || quality < 1 || quality > 100)
        return vdx_fail(err, "thumbnail: bad arguments (max_side %d, quality %d)", max_side,
                        quality);
    if (!img->rgb || img->width < 1 || img->height < 1)
        return vdx_fail(err, "thumbnail: empty image");
    int w = img->width, h = img->height;
    if (w > max_side || h > max_side) {
        if (w >= h) {
            h = (int)lround((double)h * max_side / w);
            w = max_side;
        } else {
            w = (int)lround((double)w * max_side / h);
            h = max_side;
        }
        if (w < 1)
            w = 1;
        if (h < 1)
            h = 1;
    }
    const uint8_t *pixels = img->rgb;
    uint8_t *scaled = NULL;
    if (w != img->width || h != img->height) {
        scaled = malloc((size_t)w * h * 3);
        if (!scaled)
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "thumbnail: out of memory");
        if (image_resample_window(img->rgb, img->width, img->height, w, h, 0, 0, w, h, scaled,
                                  err) != 0) {
            free(scaled);
            return -1;
        }
        pixels = scaled;
    }
    struct jpeg_encode_job job;
    memset(&job, 0, sizeof job);
    job.cinfo.err = jpeg_std_error(&job.errmgr);
    job.errmgr.error_exit = encode_error_exit;
    job.errmgr.output_message = encode_output_nothing;
    job.cinfo.client_data = &job;
    int rc = jpeg_encode_run(&job, pixels, w, h, quality, err);
    jpeg_destroy_compress(&job.cinfo);
    free(scaled);
    if (rc != 0) {
        free(job.buffer);
        return -1;
    }
    *jpeg = job.buffer;
    *size = job.size;
    return 0;
}
