/* What every model file (model.c for CLIP, xlmr.c for M-CLIP) needs from a checkpoint
 * besides the format readers: an arena loader that copies tensors into one 64-byte
 * aligned float32 block with checked shapes, and the name a collection records for a
 * model directory. Private to the model files in src/clip/. */
#ifndef VDX_WEIGHTS_MODELFILES_H
#define VDX_WEIGHTS_MODELFILES_H

#include <stddef.h>

#include "weights/weights.h"

/* Two passes over the same sequence of calls: the first with base == NULL measures, the
 * second (after weights_arena_alloc) fills. Errors stick: after the first, calls do nothing
 * and weights_arena_finish returns -1 with the message in err. */
typedef struct weights_arena {
    const vdx_weights *file;
    float *base;
    size_t used; /* floats */
    vdx_error *err;
    int failed;
} weights_arena;

/* Reserves count floats (64-byte aligned); NULL while measuring. */
float *weights_arena_reserve(weights_arena *a, size_t count);
/* Reserves and fills a tensor that must have exactly the given shape. */
float *weights_arena_tensor(weights_arena *a, const char *name, int ndim, const int64_t *shape);
/* Fills dst (reserved earlier) from a tensor of the given shape. */
void weights_arena_fill(weights_arena *a, float *dst, const char *name, int ndim,
                     const int64_t *shape);
/* Ends the measuring pass: allocates base, resets used. */
int weights_arena_alloc(weights_arena *a);

/* Lets go of the pages of source data already copied or packed, so that a memory-mapped
 * checkpoint and its copy are not both resident at the peak of a load; only a hint. Pages
 * of the file's read-only mapping are unmapped (MADV_DONTNEED): they leave this process
 * but stay in the page cache, so the next load of the model reads memory, not the disk.
 * Other memory (buffers a reader filled) gets MADV_PAGEOUT, which keeps its contents
 * (DONTNEED would zero it). */
void weights_release_pages(const vdx_weights *file, const void *data, size_t bytes);

/* "owner/name" for a Hugging Face cache snapshot (.../models--owner--name/snapshots/REV),
 * else the absolute directory: what a collection records to find the model again. */
void weights_model_name(const char *model_dir, char *out, size_t size);

#endif
