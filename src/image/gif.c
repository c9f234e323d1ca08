/* GIF decoding with giflib: the first frame only, converted to RGB as Pillow does.
 * Pillow opens frame 0 as a palette image the size of the logical screen (grown when
 * the frame sticks out of it), fills the area the frame does not cover with the
 * transparent index when the frame has one and with index 0 otherwise, and convert("RGB")
 * then looks every index up in the frame's colour table (local, else global, else a
 * grey ramp). Transparency therefore shows the colour its index has in the table. The
 * file is read record by record, so later frames of an animation cost nothing. */
#include "image/image_internal.h"

#include <gif_lib.h>
#include <stdlib.h>
#include <string.h>

struct gif_reader {
    const uint8_t *bytes;
    size_t size, offset;
};

static int gif_read_from_memory(GifFileType *gif, GifByteType *buf, int length)
{
    struct gif_reader *r = gif->UserData;
    size_t n = (size_t)length;
    if (n > r->size - r->offset)
        n = r->size - r->offset;
    memcpy(buf, r->bytes + r->offset, n);
    r->offset += n;
    return (int)n;
}

static int gif_fail(GifFileType *gif, const struct gif_reader *r, const char *what,
                    const char *doing, vdx_error *err)
{
    const char *reason = GifErrorString(gif->Error);
    if (r->offset >= r->size)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: truncated GIF: data ends after %zu bytes while %s", what,
                        r->size, doing);
    return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt GIF while %s (near byte offset %zu): %s", what, doing,
                    r->offset, reason ? reason : "unknown error");
}

/* Reads records up to the first image descriptor; remembers the transparent index of
 * the graphic control extension that precedes it (-1 when none). */
static int gif_seek_first_frame(GifFileType *gif, const struct gif_reader *r, const char *what,
                                int *transparent, vdx_error *err)
{
    *transparent = -1;
    for (;;) {
        GifRecordType type;
        if (DGifGetRecordType(gif, &type) == GIF_ERROR)
            return gif_fail(gif, r, what, "reading a record type", err);
        if (type == IMAGE_DESC_RECORD_TYPE)
            return DGifGetImageDesc(gif) == GIF_ERROR
                       ? gif_fail(gif, r, what, "reading the image descriptor", err)
                       : 0;
        if (type == TERMINATE_RECORD_TYPE)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: GIF holds no image (trailer at byte offset %zu)", what,
                            r->offset);
        if (type != EXTENSION_RECORD_TYPE)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt GIF: unknown record type at byte offset %zu",
                            what, r->offset);
        int code;
        GifByteType *ext;
        if (DGifGetExtension(gif, &code, &ext) == GIF_ERROR)
            return gif_fail(gif, r, what, "reading an extension", err);
        if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4 && (ext[1] & 1))
            *transparent = ext[4]; /* as Pillow: a later block without the flag keeps it */
        while (ext)
            if (DGifGetExtensionNext(gif, &ext) == GIF_ERROR)
                return gif_fail(gif, r, what, "reading an extension", err);
    }
}

static int gif_read_frame(GifFileType *gif, const struct gif_reader *r, const char *what,
                          vdx_image *out, vdx_error *err)
{
    int transparent;
    if (gif_seek_first_frame(gif, r, what, &transparent, err) != 0)
        return -1;
    const GifImageDesc *frame = &gif->Image;
    const long long left = frame->Left, top = frame->Top;
    const long long frame_w = frame->Width, frame_h = frame->Height;
    if (frame_w < 0 || frame_h < 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt GIF: negative frame size", what);
    long long width = gif->SWidth, height = gif->SHeight;
    if (left + frame_w > width)
        width = left + frame_w;
    if (top + frame_h > height)
        height = top + frame_h;
    if (image_alloc(out, width, height, what, "GIF", err) != 0)
        return -1;

    const ColorMapObject *map = frame->ColorMap ? frame->ColorMap : gif->SColorMap;
    uint8_t table[256 * 3];
    image_palette_init(table, map ? (const uint8_t *)map->Colors : NULL,
                       map ? map->ColorCount : 0, sizeof(GifColorType), 0);

    const size_t pixels = (size_t)width * height;
    uint8_t *indices = malloc(pixels);
    if (!indices)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", what);
    memset(indices, transparent >= 0 ? transparent : 0, pixels);

    static const int pass_start[4] = {0, 4, 2, 1}, pass_step[4] = {8, 8, 4, 2};
    const int passes = frame->Interlace ? 4 : 1;
    int rc = 0;
    for (int pass = 0; pass < passes && rc == 0; pass++) {
        const int start = frame->Interlace ? pass_start[pass] : 0;
        const int step = frame->Interlace ? pass_step[pass] : 1;
        for (long long y = start; y < frame_h; y += step) {
            uint8_t *row = indices + (size_t)(top + y) * width + left;
            if (DGifGetLine(gif, row, (int)frame_w) == GIF_ERROR) {
                rc = gif_fail(gif, r, what, "decoding the first frame", err);
                break;
            }
        }
    }
    if (rc == 0)
        for (size_t i = 0; i < pixels; i++)
            memcpy(out->rgb + 3 * i, table + 3 * indices[i], 3);
    free(indices);
    return rc;
}

int image_decode_gif(const uint8_t *bytes, size_t size, const char *what, vdx_image *out,
                     vdx_error *err)
{
    struct gif_reader reader = {bytes, size, 0};
    int error = 0;
    GifFileType *gif = DGifOpen(&reader, gif_read_from_memory, &error);
    if (!gif) {
        const char *reason = GifErrorString(error);
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: corrupt GIF header: %s", what,
                        reason ? reason : "unknown error");
    }
    int rc = gif_read_frame(gif, &reader, what, out, err);
    DGifCloseFile(gif, &error);
    if (rc != 0)
        vdx_image_free(out);
    return rc;
}
