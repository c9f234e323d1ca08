/* Checkpoint readers: one tensor table over model.safetensors (memory-mapped),
 * pytorch_model.bin as a torch zip archive, or the older torch pickle stream.
 * Only what a state dict needs is accepted; everything else is refused. */
#ifndef VDX_CLIP_WEIGHTS_H
#define VDX_CLIP_WEIGHTS_H

#include "vdx/common.h"

typedef enum { VDX_DTYPE_F32, VDX_DTYPE_F16, VDX_DTYPE_BF16, VDX_DTYPE_I64 } vdx_dtype;

#define VDX_TENSOR_MAX_DIMS 8

typedef struct vdx_tensor {
    char *name;
    vdx_dtype dtype;
    int ndim;
    int64_t shape[VDX_TENSOR_MAX_DIMS];
    const void *data;   /* little-endian elements, contiguous row-major; may be unaligned */
    size_t nbytes;
} vdx_tensor;

typedef struct vdx_weights {
    vdx_tensor *tensors;
    size_t count;
    char *path;
    void *backing;      /* private to the reader (mmap / buffers) */
    void (*release)(struct vdx_weights *);
} vdx_weights;

/* Opens any supported weight file, format chosen by its magic bytes. */
vdx_weights *vdx_weights_open(const char *path, vdx_error *err);
void vdx_weights_close(vdx_weights *w);
const vdx_tensor *vdx_weights_find(const vdx_weights *w, const char *name);
const char *vdx_dtype_name(vdx_dtype dt);
size_t vdx_dtype_size(vdx_dtype dt);

/* Copies a tensor into float32 (converting F16/BF16), checking its shape: an error
 * naming the file, the tensor and both shapes when it differs. dims<=0 ends the list. */
int vdx_weights_get_f32(const vdx_weights *w, const char *name, float *out, int ndim,
                        const int64_t *shape, vdx_error *err);

/* Format readers, used by vdx_weights_open; each owns its backing. */
vdx_weights *vdx_safetensors_open(const char *path, vdx_error *err);
vdx_weights *vdx_torch_zip_open(const char *path, vdx_error *err);
vdx_weights *vdx_torch_legacy_open(const char *path, vdx_error *err);
/* Parses a safetensors image already in memory (for fuzzing): tensors point into buf. */
vdx_weights *vdx_safetensors_parse(const uint8_t *buf, size_t size, const char *what,
                                   vdx_error *err);

#endif
