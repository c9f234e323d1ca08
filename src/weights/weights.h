/* Checkpoint readers: one tensor table over model.safetensors (memory-mapped),
 * pytorch_model.bin as a torch zip archive, or the older torch pickle stream.
 * Only what a state dict needs is accepted; everything else is refused. */
#ifndef VDX_WEIGHTS_WEIGHTS_H
#define VDX_WEIGHTS_WEIGHTS_H

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
    const char *format;  /* "safetensors", "torch zip archive", "legacy torch pickle" */
    void *backing;      /* private to the reader (mmap / buffers) */
    const void *mapped; /* the read-only mapping of the file tensors may point into, or NULL */
    size_t mapped_size;
    void (*release)(struct vdx_weights *);
} vdx_weights;

/* Opens any supported weight file, format chosen by its magic bytes. */
vdx_weights *weights_open(const char *path, vdx_error *err);
/* The weight file of a model directory: model.safetensors, else pytorch_model.bin. */
int weights_find_file(const char *model_dir, char *path, size_t size, vdx_error *err);
void weights_close(vdx_weights *w);
const vdx_tensor *weights_find(const vdx_weights *w, const char *name);
const char *dtype_name(vdx_dtype dt);
size_t dtype_size(vdx_dtype dt);

/* Copies a tensor into float32 (converting F16/BF16), checking that it has exactly
 * `ndim` dimensions of sizes `shape` (ndim 0: a scalar): an error naming the file, the
 * tensor and both shapes when it differs, or the file and tensor when it is missing.
 * Values are converted as they are (an F16 infinity stays infinite). */
int weights_get_f32(const vdx_weights *w, const char *name, float *out, int ndim,
                        const int64_t *shape, vdx_error *err);
/* The model loader's check of what it read: a NaN or infinite value is an error naming
 * the file, the tensor and the element (such a weight makes every embedding NaN). */
int weights_check_finite(const vdx_weights *w, const char *name, const float *values,
                             size_t count, vdx_error *err);

/* Maps a whole file read-only. A file shorter than min_size is an error that says
 * "PATH: truncated: N bytes, shorter than WHAT" (min_size 1: "PATH: cannot read: empty
 * file"). On success *size holds the file's length; release with munmap(*addr, *size). */
int weights_map_file(const char *path, size_t min_size, const char *what, void **addr,
                         size_t *size, vdx_error *err);

/* Format readers, used by weights_open; each owns its backing. */
vdx_weights *safetensors_open(const char *path, vdx_error *err);
vdx_weights *torch_zip_open(const char *path, vdx_error *err);
vdx_weights *torch_legacy_open(const char *path, vdx_error *err);
/* Parses a safetensors image already in memory (for fuzzing): tensors point into buf. */
vdx_weights *safetensors_parse(const uint8_t *buf, size_t size, const char *what,
                                   vdx_error *err);

/* Builds a weights table over tensors the caller filled in (names malloc'd, data pointing
 * into `backing`); takes ownership of both. Checks names are unique. Used by the readers. */
vdx_weights *weights_new(const char *path, vdx_tensor *tensors, size_t count,
                             void *backing, void (*release)(vdx_weights *), vdx_error *err);

/* ---- The restricted unpickler shared by both pytorch_model.bin layouts (pickle.c) ---- */

/* A tensor of a state-dict pickle: where its elements live in which storage. */
typedef struct vdx_pickle_tensor {
    char *name;
    vdx_dtype dtype;
    char *storage_key;        /* archive entry data/<key>, or the legacy storage key */
    int64_t storage_numel;    /* elements in the whole storage */
    int64_t storage_offset;   /* in elements */
    int ndim;
    int64_t shape[VDX_TENSOR_MAX_DIMS];
    int64_t stride[VDX_TENSOR_MAX_DIMS];
} vdx_pickle_tensor;

typedef struct vdx_pickle_state_dict {
    vdx_pickle_tensor *tensors;
    size_t count;
} vdx_pickle_state_dict;

/* Unpickles a state dict (`{name: tensor}`) from buf. Only the globals a state dict
 * needs are accepted; any other is refused. `*consumed` (may be NULL) gets the bytes up
 * to and including STOP. Errors say "WHAT: pickle at byte N: ..." where N counts from
 * `base` (the offset of buf in its file). */
int pickle_load_state_dict(const uint8_t *buf, size_t size, size_t base, const char *what,
                               vdx_pickle_state_dict *out, size_t *consumed, vdx_error *err);
void pickle_state_dict_free(vdx_pickle_state_dict *sd);

/* The small pickles of the legacy torch stream: the magic number (an int), the protocol
 * version (an int) and the sys-info dict, checked for little-endian; and the storage key
 * list (a list of strings). Each returns bytes consumed via *consumed. */
int pickle_check_legacy_preamble(const uint8_t *buf, size_t size, const char *what,
                                     size_t *consumed, vdx_error *err);
int pickle_load_string_list(const uint8_t *buf, size_t size, size_t base, const char *what,
                                char ***items, size_t *count, size_t *consumed,
                                vdx_error *err);

/* What a pickled checkpoint's tensors point into: a mapped file (legacy layout) and/or
 * malloc'd buffers (storages read from a zip archive, tensors made contiguous). */
typedef struct vdx_pickle_backing {
    void *map;
    size_t map_size;
    void **buffers;
    size_t buffer_count, buffer_capacity;
} vdx_pickle_backing;

/* Adds a malloc'd buffer to the backing (freed with it); frees it on failure. */
int pickle_backing_add(vdx_pickle_backing *b, void *buffer, vdx_error *err);
/* Unmaps and frees everything the backing holds, and the backing itself. */
void pickle_backing_free(vdx_pickle_backing *b);

/* One storage's bytes, by key. */
typedef struct vdx_pickle_storage {
    const char *key;
    const uint8_t *data;
    size_t size;
} vdx_pickle_storage;

/* Builds the weights table of a state dict over its storages: a tensor whose strides are
 * row-major points into its storage, any other is gathered into a contiguous copy. Each
 * tensor must fit inside its storage. Takes ownership of `backing` (heap-allocated),
 * also on failure. */
vdx_weights *pickle_weights_new(const char *path, const vdx_pickle_state_dict *sd,
                                    const vdx_pickle_storage *storages, size_t storage_count,
                                    vdx_pickle_backing *backing, vdx_error *err);

#endif
