/* WebP decoding with libwebp. Pillow decodes WebP through WebPAnimDecoder (RGBA,
 * fancy upsampling, the first frame drawn on a transparent black canvas) and then drops
 * alpha; we do the same for animations, and for still images decode straight to RGB
 * (or RGBA when there is alpha), which gives the same colour values at less cost.
 * The EXIF chunk, read with the demuxer, gives the orientation. */
#include "image/image_internal.h"

#include <stdlib.h>
#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>

static const char *webp_status_text(VP8StatusCode status)
{
    switch (status) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated data";
    default: return "unknown error";
    }
}

/* Orientation from the EXIF chunk, and the canvas size (checked against the pixel
 * limit before the animation decoder allocates a canvas). */
static void webp_inspect(const WebPData *data, int *orientation, long long *canvas_width,
                         long long *canvas_height)
{
    *orientation = 1;
    *canvas_width = *canvas_height = 0;
    WebPDemuxer *demux = WebPDemux(data);
    if (!demux)
        return;
    *canvas_width = WebPDemuxGetI(demux, WEBP_FF_CANVAS_WIDTH);
    *canvas_height = WebPDemuxGetI(demux, WEBP_FF_CANVAS_HEIGHT);
    WebPChunkIterator chunk;
    if (WebPDemuxGetChunk(demux, "EXIF", 1, &chunk)) {
        const int tag = image_exif_orientation(chunk.chunk.bytes, chunk.chunk.size);
        *orientation = tag ? tag : 1;
        WebPDemuxReleaseChunkIterator(&chunk);
    }
    WebPDemuxDelete(demux);
}

static int webp_first_frame(const WebPData *data, long long canvas_width,
                            long long canvas_height, const char *what, vdx_image *out,
                            vdx_error *err)
{
    if (image_alloc(out, canvas_width, canvas_height, what, "animated WebP", err) != 0)
        return -1;
    WebPAnimDecoderOptions options;
    if (!WebPAnimDecoderOptionsInit(&options))
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: libwebp version mismatch", what);
    options.color_mode = MODE_RGBA;
    options.use_threads = 0;
    WebPAnimDecoder *dec = WebPAnimDecoderNew(data, &options);
    if (!dec)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt animated WebP (cannot parse its frames)", what);
    WebPAnimInfo info;
    uint8_t *canvas;
    int timestamp, rc = -1;
    if (!WebPAnimDecoderGetInfo(dec, &info) || (long long)info.canvas_width != canvas_width ||
        (long long)info.canvas_height != canvas_height)
        vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt animated WebP (inconsistent canvas size)", what);
    else if (!WebPAnimDecoderGetNext(dec, &canvas, &timestamp))
        vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt animated WebP: cannot decode the first frame", what);
    else {
        const size_t n = (size_t)out->width * out->height;
        for (size_t i = 0; i < n; i++)
            memcpy(out->rgb + 3 * i, canvas + 4 * i, 3);
        rc = 0;
    }
    WebPAnimDecoderDelete(dec);
    return rc;
}

int image_decode_webp(const uint8_t *bytes, size_t size, const char *what, vdx_image *out,
                      int *orientation, vdx_error *err)
{
    WebPBitstreamFeatures features;
    VP8StatusCode status = WebPGetFeatures(bytes, size, &features);
    if (status != VP8_STATUS_OK)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt WebP: %s while reading its header", what,
                        webp_status_text(status));
    const WebPData data = {bytes, size};
    long long canvas_width, canvas_height;
    webp_inspect(&data, orientation, &canvas_width, &canvas_height);
    if (features.has_animation)
        return webp_first_frame(&data, canvas_width, canvas_height, what, out, err);

    if (image_alloc(out, features.width, features.height, what, "WebP", err) != 0)
        return -1;
    WebPDecoderConfig config;
    if (!WebPInitDecoderConfig(&config)) {
        vdx_image_free(out);
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: libwebp version mismatch", what);
    }
    const size_t pixels = (size_t)out->width * out->height;
    uint8_t *rgba = NULL;
    if (features.has_alpha) {
        rgba = malloc(pixels * 4);
        if (!rgba) {
            vdx_image_free(out);
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", what);
        }
        config.output.colorspace = MODE_RGBA;
        config.output.u.RGBA.rgba = rgba;
        config.output.u.RGBA.stride = out->width * 4;
        config.output.u.RGBA.size = pixels * 4;
    } else {
        config.output.colorspace = MODE_RGB;
        config.output.u.RGBA.rgba = out->rgb;
        config.output.u.RGBA.stride = out->width * 3;
        config.output.u.RGBA.size = pixels * 3;
    }
    config.output.is_external_memory = 1;
    status = WebPDecode(bytes, size, &config);
    WebPFreeDecBuffer(&config.output);
    if (status != VP8_STATUS_OK) {
        free(rgba);
        vdx_image_free(out);
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt WebP: %s (%zu bytes)", what, webp_status_text(status),
                        size);
    }
    if (rgba) {
        for (size_t i = 0; i < pixels; i++)
            memcpy(out->rgb + 3 * i, rgba + 4 * i, 3);
        free(rgba);
    }
    return 0;
}
