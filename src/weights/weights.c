/* The tensor table behind every checkpoint format: opening a weight file by its magic
 * bytes, finding tensors by name, and copying them out as float32 with a shape check.
 * The format readers (safetensors.c, torch_zip.c, torch_legacy.c) fill the table; the
 * forward pass only ever sees weights_get_f32, so it never cares about the format. */
#include "weights/weights.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/half.h"
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vdx reads little-endian checkpoints in place and needs a little-endian host"
#endif

static const unsigned char legacy_torch_magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                                   0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

vdx_weights *weights_open(const char *path, vdx_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        vdx_fail_errno(err, errno, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    unsigned char head[16] = {0};
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    vdx_weights *w = NULL;
    if (got >= 4 && memcmp(head, "PK\x03\x04", 4) == 0) {
        if ((w = torch_zip_open(path, err)))
            w->format = "torch zip archive";
        return w;
    }
    if (got >= sizeof legacy_torch_magic &&
        memcmp(head, legacy_torch_magic, sizeof legacy_torch_magic) == 0) {
        if ((w = torch_legacy_open(path, err)))
            w->format = "legacy torch pickle";
        return w;
    }
    if (got >= 9 && head[8] == '{') {
        if ((w = safetensors_open(path, err)))
            w->format = "safetensors";
        return w;
    }
    if (got < 9) {
        vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: file too short for a checkpoint (%zu bytes)", path, got);
        return NULL;
    }
    vdx_fail_kind(err, VDX_ERR_CORRUPT,
             "%s: not a checkpoint vdx reads (expected safetensors, a torch zip archive or a "
             "legacy torch pickle; first bytes %02x %02x %02x %02x)",
             path, head[0], head[1], head[2], head[3]);
    return NULL;
}

int weights_find_file(const char *model_dir, char *path, size_t size, vdx_error *err)
{
    static const char *const names[] = {"model.safetensors", "pytorch_model.bin"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if ((size_t)snprintf(path, size, "%s/%s", model_dir, names[i]) >= size)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: path too long", model_dir);
        if (access(path, F_OK) == 0)
            return 0;
    }
    return vdx_fail_kind(err, VDX_ERR_NOT_FOUND, "%s: no model.safetensors or pytorch_model.bin in this directory",
                    model_dir);
}

vdx_weights *weights_new(const char *path, vdx_tensor *tensors, size_t count,
                             void *backing, void (*release)(vdx_weights *), vdx_error *err)
{
    vdx_weights *w = calloc(1, sizeof *w);
    char *path_copy = strdup(path);
    if (!w || !path_copy) {
        free(w);
        free(path_copy);
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", path);
        goto fail;
    }
    w->tensors = tensors;
    w->count = count;
    w->path = path_copy;
    w->backing = backing;
    w->release = release;
    for (size_t i = 0; i < count; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(tensors[i].name, tensors[j].name) == 0) {
                vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s' appears twice", path, tensors[i].name);
                weights_close(w);
                return NULL;
            }
    return w;
fail:
    for (size_t i = 0; i < count; i++)
        free(tensors[i].name);
    free(tensors);
    if (release) {
        vdx_weights tmp = {.backing = backing};
        release(&tmp);
    }
    return NULL;
}

void weights_close(vdx_weights *w)
{
    if (!w)
        return;
    if (w->release)
        w->release(w);
    for (size_t i = 0; i < w->count; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    free(w->path);
    free(w);
}

const vdx_tensor *weights_find(const vdx_weights *w, const char *name)
{
    for (size_t i = 0; i < w->count; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return &w->tensors[i];
    return NULL;
}

const char *dtype_name(vdx_dtype dt)
{
    switch (dt) {
    case VDX_DTYPE_F32: return "F32";
    case VDX_DTYPE_F16: return "F16";
    case VDX_DTYPE_BF16: return "BF16";
    case VDX_DTYPE_I64: return "I64";
    }
    return "?";
}

size_t dtype_size(vdx_dtype dt)
{
    switch (dt) {
    case VDX_DTYPE_F32: return 4;
    case VDX_DTYPE_F16: return 2;
    case VDX_DTYPE_BF16: return 2;
    case VDX_DTYPE_I64: return 8;
    }
    return 0;
}

static void format_shape(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "",
                                 (long long)shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

int weights_get_f32(const vdx_weights *w, const char *name, float *out, int ndim,
                        const int64_t *shape, vdx_error *err)
{
    const vdx_tensor *t = weights_find(w, name);
    if (!t)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s' not found (the file holds %zu tensors)",
                        w->path, name, w->count);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char have[256], want[256];
        format_shape(have, sizeof have, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s' has shape %s, expected %s", w->path, name,
                        have, want);
    }
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= (size_t)shape[i];
    const uint8_t *src = t->data;
    switch (t->dtype) {
    case VDX_DTYPE_F32:
        if (count)
            memcpy(out, src, count * sizeof(float));
        break;
    case VDX_DTYPE_F16:
        for (size_t i = 0; i < count; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            out[i] = half_f16_to_f32(h);
        }
        break;
    case VDX_DTYPE_BF16:
        for (size_t i = 0; i < count; i++) {
            uint16_t b;
            memcpy(&b, src + 2 * i, 2);
            out[i] = half_bf16_to_f32(b);
        }
        break;
    case VDX_DTYPE_I64:
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s' holds %s integers, not floating-point weights",
                        w->path, name, dtype_name(t->dtype));
    }
    return 0;
}

int weights_check_finite(const vdx_weights *w, const char *name, const float *values,
                             size_t count, vdx_error *err)
{
    for (size_t i = 0; i < count; i++)
        if (!isfinite(values[i]))
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s' holds %s at element %zu: the checkpoint is damaged",
                            w->path, name, isnan(values[i]) ? "NaN" : "an infinite value", i);
    return 0;
}

/* One place that opens and maps a checkpoint file (safetensors and the legacy stream). */
int weights_map_file(const char *path, size_t min_size, const char *what, void **addr,
                         size_t *size, vdx_error *err)
{
    struct stat st;
    int fd = file_open_stat(path, O_RDONLY, &st, err);
    if (fd < 0)
        return -1;
    if ((unsigned long long)st.st_size < min_size) {
        close(fd);
        if (st.st_size == 0 && min_size == 1)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: cannot read: empty file", path);
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: truncated: %lld bytes, shorter than %s", path,
                        (long long)st.st_size, what);
    }
    *size = (size_t)st.st_size;
    *addr = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (*addr == MAP_FAILED)
        return vdx_fail_errno(err, errno, "%s: cannot map %zu bytes: %s", path, *size, strerror(errno));
    return 0;
}
