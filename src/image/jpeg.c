/* JPEG decoding with libjpeg-turbo, configured as Pillow configures it (library defaults:
 * JDCT_ISLOW, fancy upsampling, no DCT scaling) so the pixels are the ones transformers
 * sees. On request (ingest's default for large photos) the decoder reduces in the DCT
 * domain instead: scale M/8 with the smallest M whose output still has the requested
 * shorter and longer sides, which is what Pillow's Image.draft does; decoding a
 * 12-megapixel photo at 1/4 touches a sixteenth of the pixels (docs/ingest.md). Grey JPEGs are replicated to RGB; CMYK/YCCK ones are read as Adobe-inverted CMYK
 * and converted with Pillow's cmyk2rgb formula. The EXIF APP1 block gives the orientation.
 *
 * libjpeg reports fatal errors through a longjmp: the setjmp lives in its own function
 * and everything it allocates hangs off a job struct in the caller's frame, so the
 * caller frees it the same way on success and on failure. Warnings never reach stderr;
 * a premature end of data (a truncated file) is an error, as it is in Pillow. */
#include "image/image_internal.h"

#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */

#include <jerror.h>
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>

struct jpeg_job {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr errmgr;
    jmp_buf on_error;
    char message[JMSG_LENGTH_MAX];
    int truncated;
    uint8_t *cmyk_row; /* one row of 4-channel samples when the JPEG is CMYK/YCCK */
};

static void jpeg_error_exit(j_common_ptr cinfo)
{
    struct jpeg_job *job = (struct jpeg_job *)cinfo->client_data;
    cinfo->err->format_message(cinfo, job->message);
    longjmp(job->on_error, 1);
}

static void jpeg_emit_message(j_common_ptr cinfo, int level)
{
    struct jpeg_job *job = (struct jpeg_job *)cinfo->client_data;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
        job->truncated = 1;
    if (level < 0)
        cinfo->err->num_warnings++;
}

static void jpeg_output_nothing(j_common_ptr cinfo)
{
    (void)cinfo;
}

/* Pillow: MULDIV255(a, b) = ((a*b + 128) >> 8 + a*b + 128) >> 8. */
static inline uint8_t muldiv255(int a, int b)
{
    int t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* Pillow reads CMYK JPEGs as "CMYK;I" (inverted, Adobe convention) and converts with
 * cmyk2rgb: nk = 255 - K; channel = nk - nk*C/255 (clipped). */
static void cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, int width)
{
    for (int x = 0; x < width; x++, in += 4, out += 3) {
        int c = 255 - in[0], m = 255 - in[1], y = 255 - in[2], k = 255 - in[3];
        int nk = 255 - k;
        out[0] = (uint8_t)(nk - muldiv255(c, nk));
        out[1] = (uint8_t)(nk - muldiv255(m, nk));
        out[2] = (uint8_t)(nk - muldiv255(y, nk));
    }
}

static int jpeg_exif_orientation(j_decompress_ptr cinfo)
{
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            !memcmp(m->data, "Exif\0\0", 6))
            return image_exif_orientation(m->data, m->data_length);
    return 0;
}

/* Sets scale_num/scale_denom to the smallest M/8 (M = 1..8) at which the output's shorter
 * side is at least min_short and its longer side at least min_long; 8/8 when none is. */
static void jpeg_choose_scale(j_decompress_ptr cinfo, int min_short, int min_long)
{
    const long long w = cinfo->image_width, h = cinfo->image_height;
    const long long s = w < h ? w : h, l = w < h ? h : w;
    int m = 1;
    /* libjpeg's output size is ceil(side * M / 8) */
    while (m < 8 && ((s * m + 7) / 8 < min_short || (l * m + 7) / 8 < min_long))
        m++;
    cinfo->scale_num = (unsigned)m;
    cinfo->scale_denom = 8;
}

/* Runs libjpeg; returns -1 (message in job) when libjpeg fails. Allocations go to *out
 * and job, which the caller owns. */
static int jpeg_run(struct jpeg_job *job, const uint8_t *bytes, size_t size, const char *what,
                    const image_reduce *reduce, vdx_image *out, int *orientation,
                    vdx_error *err)
{
    j_decompress_ptr cinfo = &job->cinfo;
    if (setjmp(job->on_error))
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: cannot decode JPEG: %s", what, job->message);

    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, bytes, (unsigned long)size);
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(cinfo, TRUE);
    const int tag = jpeg_exif_orientation(cinfo);
    *orientation = tag ? tag : 1;

    int channels_in;
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo->out_color_space = JCS_GRAYSCALE;
        channels_in = 1;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo->out_color_space = JCS_CMYK;
        channels_in = 4;
        break;
    default:
        cinfo->out_color_space = JCS_RGB;
        channels_in = 3;
        break;
    }
    /* the bomb limits apply to the encoded size, whatever scale it is decoded at */
    if (image_check_size(cinfo->image_width, cinfo->image_height, what, "JPEG", err) != 0)
        return -1;
    if (reduce && (reduce->min_short > 0 || reduce->min_long > 0))
        jpeg_choose_scale(cinfo, reduce->min_short, reduce->min_long);
    jpeg_calc_output_dimensions(cinfo);
    if (image_alloc(out, cinfo->output_width, cinfo->output_height, what, "JPEG", err) != 0)
        return -1;
    if (channels_in == 4 && !(job->cmyk_row = malloc((size_t)out->width * 4)))
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", what);

    jpeg_start_decompress(cinfo);
    const size_t stride = (size_t)out->width * 3;
    while (cinfo->output_scanline < cinfo->output_height) {
        unsigned y = cinfo->output_scanline;
        uint8_t *row = out->rgb + y * stride;
        if (channels_in == 3) {
            JSAMPROW rows[1] = {row};
            jpeg_read_scanlines(cinfo, rows, 1);
        } else if (channels_in == 1) {
            /* decode into the row's first third, then spread right to left */
            JSAMPROW rows[1] = {row};
            jpeg_read_scanlines(cinfo, rows, 1);
            for (int x = out->width - 1; x >= 0; x--)
                row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = row[x];
        } else {
            JSAMPROW rows[1] = {job->cmyk_row};
            jpeg_read_scanlines(cinfo, rows, 1);
            cmyk_row_to_rgb(job->cmyk_row, row, out->width);
        }
        if (job->truncated)
            return vdx_fail_kind(err, VDX_ERR_INVALID,
                            "%s: truncated JPEG: data ends after %zu bytes, at row %u of %u",
                            what, size, y, (unsigned)cinfo->output_height);
    }
    jpeg_finish_decompress(cinfo);
    if (job->truncated)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: truncated JPEG: data ends after %zu bytes", what, size);
    return 0;
}

int image_decode_jpeg(const uint8_t *bytes, size_t size, const char *what,
                      const image_reduce *reduce, vdx_image *out, int *full_width,
                      int *full_height, int *orientation, vdx_error *err)
{
    struct jpeg_job job;
    memset(&job, 0, sizeof job);
    job.cinfo.err = jpeg_std_error(&job.errmgr);
    job.errmgr.error_exit = jpeg_error_exit;
    job.errmgr.emit_message = jpeg_emit_message;
    job.errmgr.output_message = jpeg_output_nothing;
    job.cinfo.client_data = &job;
    int rc = jpeg_run(&job, bytes, size, what, reduce, out, orientation, err);
    *full_width = (int)job.cinfo.image_width;
    *full_height = (int)job.cinfo.image_height;
    jpeg_destroy_decompress(&job.cinfo);
    free(job.cmyk_row);
    if (rc != 0)
        vdx_image_free(out);
    return rc;
}
