/* A small reader of the protobuf wire format (proto2/proto3 encoding), enough to walk a
 * serialized message field by field: varints, fixed32, fixed64 and length-delimited
 * fields; groups are refused. It never allocates and checks every length against the
 * bytes left, so a hostile buffer gives an error with its byte offset. Private to
 * src/clip/ (sentencepiece.c reads `.model` files with it). */
#ifndef VDX_TEXT_PROTOBUF_H
#define VDX_TEXT_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

#include "vdx/common.h"

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_BYTES = 2, PB_FIXED32 = 5 };

typedef struct pb_reader {
    const uint8_t *base; /* start of the whole buffer: offsets in errors count from here */
    const uint8_t *pos, *end;
    const char *what;    /* file name or description for errors */
} pb_reader;

typedef struct pb_field {
    uint32_t number;
    int wire_type;
    uint64_t value;      /* PB_VARINT, PB_FIXED32, PB_FIXED64 */
    const uint8_t *data; /* PB_BYTES */
    size_t size;
    size_t offset;       /* of the field's key in the whole buffer */
} pb_field;

/* A reader over buf[0..size). */
pb_reader pb_reader_init(const uint8_t *buf, size_t size, const char *what);
/* A reader over a length-delimited field's contents (offsets still count from the parent's base). */
pb_reader pb_reader_sub(const pb_reader *parent, const pb_field *f);
/* Reads the next field: 1 with *f filled, 0 at the end, -1 on a malformed buffer. */
int pb_next(pb_reader *r, pb_field *f, vdx_error *err);
/* The field's value as a float (fixed32) / int32 (varint, sign-extended as proto does) /
 * bool; -1 with an error naming `name` when the wire type is not the one expected. */
int pb_get_float(const pb_reader *r, const pb_field *f, const char *name, float *out,
                 vdx_error *err);
int pb_get_int32(const pb_reader *r, const pb_field *f, const char *name, int32_t *out,
                 vdx_error *err);
int pb_get_bool(const pb_reader *r, const pb_field *f, const char *name, int *out,
                vdx_error *err);
int pb_expect_bytes(const pb_reader *r, const pb_field *f, const char *name, vdx_error *err);

#endif
