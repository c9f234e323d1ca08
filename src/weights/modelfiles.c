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

float *clip_arena_reserve(clip_arena *a, size_t count)
{
    float *p = a->base ? a->base + a->used : NULL;
    a->used += round_up(count);
    return p;
}

/* MADV_PAGEOUT keeps the contents (file pages are re-read, anonymous memory is swapped
 * or kept): only a hint, safe whatever buffer the reader used. */
static void release_source_pages(const vdx_tensor *t)
{
    long page_size = sysconf(_SC_PAGESIZE);
    uintptr_t page = page_size > 0 ? (uintptr_t)page_size : 4096;
    uintptr_t begin = ((uintptr_t)t->data + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)t->data + t->nbytes) & ~(page - 1);
    if (end > begin)
        madvise((void *)begin, end - begin, MADV_PAGEOUT);
}

void clip_arena_fill(clip_arena *a, float *dst, const char *name, int ndim,
                     const int64_t *shape)
{
    if (!a->base || a->failed)
        return;
    if (weights_get_f32(a->file, name, dst, ndim, shape, a->err) != 0)
        a->failed = 1;
    else
        release_source_pages(weights_find(a->file, name));
}

float *clip_arena_tensor(clip_arena *a, const char *name, int ndim, const int64_t *shape)
{
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= (size_t)shape[i];
    float *dst = clip_arena_reserve(a, count);
    clip_arena_fill(a, dst, name, ndim, shape);
    return dst;
}

int clip_arena_alloc(clip_arena *a)
{
    a->base = aligned_alloc(64, (a->used ? a->used : 16) * sizeof(float));
    if (!a->base)
        return vdx_fail(a->err, "%s: out of memory: %zu MB for the float32 weights",
                        a->file->path, a->used * sizeof(float) >> 20);
    a->used = 0;
    return 0;
}

void clip_model_name_from_dir(const char *model_dir, char *out, size_t size)
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
