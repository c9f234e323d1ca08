/* The protobuf wire format, read field by field (protobuf.h). Each field is a varint key
 * `number << 3 | wire_type` followed by its value: a varint (0), 8 little-endian bytes
 * (1), a varint length and that many bytes (2), or 4 little-endian bytes (5). Groups (3,
 * 4) are obsolete and refused. Every length is checked against what is left. */
#include "text/protobuf.h"

#include <string.h>

pb_reader pb_reader_init(const uint8_t *buf, size_t size, const char *what)
{
    return (pb_reader){buf, buf, buf + size, what};
}

pb_reader pb_reader_sub(const pb_reader *parent, const pb_field *f)
{
    return (pb_reader){parent->base, f->data, f->data + f->size, parent->what};
}

static int read_varint(pb_reader *r, uint64_t *out, vdx_error *err)
{
    size_t start = (size_t)(r->pos - r->base);
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->pos >= r->end)
            return vdx_fail(err, "%s: protobuf varint at byte %zu runs past the end", r->what,
                            start);
        uint8_t b = *r->pos++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return vdx_fail(err, "%s: protobuf varint at byte %zu is longer than 10 bytes", r->what,
                    start);
}

int pb_next(pb_reader *r, pb_field *f, vdx_error *err)
{
    if (r->pos >= r->end)
        return 0;
    memset(f, 0, sizeof *f);
    f->offset = (size_t)(r->pos - r->base);
    uint64_t key;
    if (read_varint(r, &key, err))
        return -1;
    f->wire_type = (int)(key & 7);
    uint64_t number = key >> 3;
    if (number == 0 || number > 0x1fffffff)
        return vdx_fail(err, "%s: protobuf field at byte %zu has invalid number %llu", r->what,
                        f->offset, (unsigned long long)number);
    f->number = (uint32_t)number;
    size_t left;
    switch (f->wire_type) {
    case PB_VARINT:
        return read_varint(r, &f->value, err) ? -1 : 1;
    case PB_FIXED64:
    case PB_FIXED32: {
        size_t n = f->wire_type == PB_FIXED64 ? 8 : 4;
        if ((size_t)(r->end - r->pos) < n)
            return vdx_fail(err, "%s: protobuf field %u at byte %zu: %zu-byte value runs past "
                            "the end", r->what, f->number, f->offset, n);
        for (size_t i = 0; i < n; i++)
            f->value |= (uint64_t)r->pos[i] << (8 * i);
        r->pos += n;
        return 1;
    }
    case PB_BYTES:
        if (read_varint(r, &f->value, err))
            return -1;
        left = (size_t)(r->end - r->pos);
        if (f->value > left)
            return vdx_fail(err, "%s: protobuf field %u at byte %zu: length %llu but only %zu "
                            "bytes left", r->what, f->number, f->offset,
                            (unsigned long long)f->value, left);
        f->data = r->pos;
        f->size = (size_t)f->value;
        r->pos += f->size;
        return 1;
    default:
        return vdx_fail(err, "%s: protobuf field %u at byte %zu has unsupported wire type %d",
                        r->what, f->number, f->offset, f->wire_type);
    }
}

static int wrong_type(const pb_reader *r, const pb_field *f, const char *name, const char *want,
                      vdx_error *err)
{
    return vdx_fail(err, "%s: protobuf field %s (%u) at byte %zu has wire type %d, expected %s",
                    r->what, name, f->number, f->offset, f->wire_type, want);
}

int pb_get_float(const pb_reader *r, const pb_field *f, const char *name, float *out,
                 vdx_error *err)
{
    if (f->wire_type != PB_FIXED32)
        return wrong_type(r, f, name, "fixed32 (float)", err);
    uint32_t bits = (uint32_t)f->value;
    memcpy(out, &bits, sizeof *out);
    return 0;
}

int pb_get_int32(const pb_reader *r, const pb_field *f, const char *name, int32_t *out,
                 vdx_error *err)
{
    if (f->wire_type != PB_VARINT)
        return wrong_type(r, f, name, "varint", err);
    *out = (int32_t)(uint32_t)f->value; /* int32 is encoded sign-extended to 64 bits */
    return 0;
}

int pb_get_bool(const pb_reader *r, const pb_field *f, const char *name, int *out,
                vdx_error *err)
{
    if (f->wire_type != PB_VARINT)
        return wrong_type(r, f, name, "varint", err);
    *out = f->value != 0;
    return 0;
}

int pb_expect_bytes(const pb_reader *r, const pb_field *f, const char *name, vdx_error *err)
{
    return f->wire_type == PB_BYTES ? 0 : wrong_type(r, f, name, "length-delimited", err);
}
