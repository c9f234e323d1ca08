/* Helpers shared by the model files (modelfiles.h): the float32 weight arena and the
 * model name of a directory. The arena copies each tensor once, converting F16/BF16, and
 * then asks the kernel to drop the source pages, so a memory-mapped checkpoint and its
 * copy are not both resident at the peak of a load. */
#include "weights/modelfiles.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t round_up(size_t n) { return (n + 15) & ~(size_t)15; }

float *weights_arena_reserve(weights_arena *a, size_t count)
{
    float *p = a->base ? a->base + a->used : NULL;
    a->used += round_up(count);
    return p;
}

void weights_release_pages(const vdx_weights *file, const void *data, size_t bytes)
{
    long page_size = sysconf(_SC_PAGESIZE);
    uintptr_t page = page_size > 0 ? (uintptr_t)page_size : 4096;
    uintptr_t begin = ((uintptr_t)data + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)data + bytes) & ~(page - 1);
    uintptr_t map = (uintptr_t)file->mapped;
    int in_file = file->mapped && (uintptr_t)data >= map &&
                  (uintptr_t)data + bytes <= map + file->mapped_size;
    if (end > begin)
        madvise((void *)begin, end - begin, in_file ? MADV_DONTNEED : MADV_PAGEOUT);
}

void weights_arena_fill(weights_arena *a, float *dst, const char *name, int ndim,
                     const int64_t *shape)
{
    if (!a->base || a->failed)
        return;
    if (weights_get_f32(a->file, name, dst, ndim, shape, a->err) != 0)
        a->failed = 1;
    else {
        const vdx_tensor *t = weights_find(a->file, name);
        weights_release_pages(a->file, t->data, t->nbytes);
    }
}

float *weights_arena_tensor(weights_arena *a, const char *name, int ndim, const int64_t *shape)
{
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= (size_t)shape[i];
    float *dst = weights_arena_reserve(a, count);
    weights_arena_fill(a, dst, name, ndim, shape);
    return dst;
}

int weights_arena_alloc(weights_arena *a)
{
    a->base = aligned_alloc(64, (a->used ? a->used : 16) * sizeof(float));
    if (!a->base)
        return vdx_fail(a->err, "%s: out of memory: %zu MB for the float32 weights",
                        a->file->path, a->used * sizeof(float) >> 20);
    a->used = 0;
    return 0;
}

void weights_model_name(const char *model_dir, char *out, size_t size)
{
    char path[PATH_MAX];
    if (!realpath(model_dir, path))
        snprintf(path, sizeof path, "%s", model_dir);
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        path[--len] = 0;
    char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (base > path + 1) {
        base[-1] = 0;
        char *snapshots = strrchr(path, '/');
        if (snapshots && !strcmp(snapshots + 1, "snapshots")) {
            *snapshots = 0;
            char *repo = strrchr(path, '/');
            repo = repo ? repo + 1 : path;
            char *sep = strncmp(repo, "models--", 8) ? NULL : strstr(repo + 8, "--");
            if (sep) {
                snprintf(out, size, "%.*s/%s", (int)(sep - (repo + 8)), repo + 8, sep + 2);
                return;
            }
        }
        base[-1] = '/';
    }
    snprintf(out, size, "%s", path);
}
