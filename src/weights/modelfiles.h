/* What every model file (model.c for CLIP, xlmr.c for M-CLIP) needs from a checkpoint
 * besides the format readers: an arena loader that copies tensors into one 64-byte
 * aligned float32 block with checked shapes, and the name a collection records for a
 * model directory. Private to the model files in src/clip/. */
#ifndef VDX_WEIGHTS_MODELFILES_H
#define VDX_WEIGHTS_MODELFILES_H

#include <stddef.h>

#include "weights/weights.h"

/* Two passes over the same sequence of calls: the first with base == NULL measures, the
 * second (after clip_arena_alloc) fills. Errors stick: after the first, calls do nothing
 * and clip_arena_finish returns -1 with the message in err. */
typedef struct clip_arena {
    const vdx_weights *file;
    float *base;
    size_t used; /* floats */
    vdx_error *err;
    int failed;
} clip_arena;

/* Reserves count floats (64-byte aligned); NULL while measuring. */
float *clip_arena_reserve(clip_arena *a, size_t count);
/* Reserves and fills a tensor that must have exactly the given shape. */
float *clip_arena_tensor(clip_arena *a, const char *name, int ndim, const int64_t *shape);
/* Fills dst (reserved earlier) from a tensor of the given shape. */
void clip_arena_fill(clip_arena *a, float *dst, const char *name, int ndim,
                     const int64_t *shape);
/* Ends the measuring pass: allocates base, resets used. */
int clip_arena_alloc(clip_arena *a);

/* "owner/name" for a Hugging Face cache snapshot (.../models--owner--name/snapshots/REV),
 * else the absolute directory: what a collection records to find the model again. */
void clip_model_name_from_dir(const char *model_dir, char *out, size_t size);

#endif
