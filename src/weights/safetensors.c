/* safetensors reader: the file is memory-mapped and tensors point straight into it, so
 * loading costs no copy. The header (8-byte little-endian length, then JSON) is checked
 * as strictly as the reference implementation: known dtypes, shapes whose size matches
 * the byte span, offsets inside the file that tile the data section with no overlap and
 * no gap. Errors name the file, the tensor and the byte offsets involved. */
#include "common/json_check.h"
#include "weights/weights.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The reference implementation refuses headers above 100 MB. */
#define SAFETENSORS_MAX_HEADER 100000000ull

typedef struct mapped_file {
    void *addr;
    size_t size;
} mapped_file;

static int parse_dtype(const char *s, vdx_dtype *dt)
{
    static const struct { const char *name; vdx_dtype dtype; } known[] = {
        {"F32", VDX_DTYPE_F32}, {"F16", VDX_DTYPE_F16},
        {"BF16", VDX_DTYPE_BF16}, {"I64", VDX_DTYPE_I64}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(s, known[i].name) == 0) {
            *dt = known[i].dtype;
            return 0;
        }
    return -1;
}

/* A JSON number that is a whole number in [0, 2^53]. */
static int json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double d = item->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d))
        return -1;
    *out = (uint64_t)d;
    return 0;
}

typedef struct span {
    uint64_t begin, end;
    size_t tensor;
} span;

static int compare_spans(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Fills one tensor from its header entry; data_base is the start of the data section. */
static int parse_entry(const cJSON *entry, const char *what, const uint8_t *data_base,
                       uint64_t data_size, uint64_t data_start, vdx_tensor *t, span *sp,
                       vdx_error *err)
{
    const char *name = entry->string;
    if (!cJSON_IsObject(entry))
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: header entry '%s' is not an object", what, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsString(dtype))
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s' has no \"dtype\" string", what, name);
    if (parse_dtype(dtype->valuestring, &t->dtype) != 0)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s' has dtype '%s'; vdx reads F32, F16, BF16 and I64",
                        what, name, dtype->valuestring);
    if (!cJSON_IsArray(shape))
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s' has no \"shape\" array", what, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > VDX_TENSOR_MAX_DIMS)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s' has %d dimensions (at most %d supported)", what,
                        name, ndim, VDX_TENSOR_MAX_DIMS);
    t->ndim = ndim;
    uint64_t elements = 1;
    int dim = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, shape)
    {
        uint64_t n;
        if (json_uint(item, &n) != 0)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s': shape[%d] is not a non-negative integer",
                            what, name, dim);
        if (__builtin_mul_overflow(elements, n, &elements))
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s': shape overflows", what, name);
        t->shape[dim++] = (int64_t)n;
    }
    uint64_t begin, end;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        json_uint(cJSON_GetArrayItem(offsets, 0), &begin) != 0 ||
        json_uint(cJSON_GetArrayItem(offsets, 1), &end) != 0)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s' has no \"data_offsets\" [begin, end] pair", what,
                        name);
    if (begin > end)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s': data_offsets [%llu, %llu] run backwards", what,
                        name, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] (file bytes %llu..%llu) go "
                        "past the end of the file, whose data section holds %llu bytes "
                        "(truncated file?)",
                        what, name, (unsigned long long)begin, (unsigned long long)end,
                        (unsigned long long)(data_start + begin),
                        (unsigned long long)(data_start + end), (unsigned long long)data_size);
    uint64_t nbytes;
    if (__builtin_mul_overflow(elements, (uint64_t)dtype_size(t->dtype), &nbytes) ||
        nbytes != end - begin)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                        "%s: tensor '%s': %llu elements of %s need %llu bytes but data_offsets "
                        "[%llu, %llu] span %llu",
                        what, name, (unsigned long long)elements, dtype->valuestring,
                        (unsigned long long)(elements * dtype_size(t->dtype)),
                        (unsigned long long)begin, (unsigned long long)end,
                        (unsigned long long)(end - begin));
    t->data = data_base + begin;
    t->nbytes = (size_t)nbytes;
    sp->begin = begin;
    sp->end = end;
    return 0;
}

/* The byte spans must tile [0, data_size) exactly, like the reference validates. */
static int check_tiling(span *spans, size_t count, const vdx_tensor *tensors,
                        const char *what, uint64_t data_size, uint64_t data_start,
                        vdx_error *err)
{
    qsort(spans, count, sizeof *spans, compare_spans);
    uint64_t covered = 0;
    for (size_t i = 0; i < count; i++) {
        if (spans[i].begin < covered)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                            "%s: tensors '%s' and '%s' overlap at file byte %llu "
                            "(data_offsets [%llu, %llu] and [%llu, %llu])",
                            what, tensors[spans[i - 1].tensor].name,
                            tensors[spans[i].tensor].name,
                            (unsigned long long)(data_start + spans[i].begin),
                            (unsigned long long)spans[i - 1].begin,
                            (unsigned long long)spans[i - 1].end,
                            (unsigned long long)spans[i].begin,
                            (unsigned long long)spans[i].end);
        if (spans[i].begin > covered)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                            "%s: file bytes %llu..%llu belong to no tensor (gap before '%s')",
                            what, (unsigned long long)(data_start + covered),
                            (unsigned long long)(data_start + spans[i].begin),
                            tensors[spans[i].tensor].name);
        covered = spans[i].end;
    }
    if (covered != data_size)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                        "%s: the tensors end at file byte %llu but the file goes on to byte "
                        "%llu",
                        what, (unsigned long long)(data_start + covered),
                        (unsigned long long)(data_start + data_size));
    return 0;
}

vdx_weights *safetensors_parse(const uint8_t *buf, size_t size, const char *what,
                                   vdx_error *err)
{
    if (size < 8) {
        vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: truncated: %zu bytes, shorter than the 8-byte header length", what,
                 size);
        return NULL;
    }
    uint64_t header_len;
    memcpy(&header_len, buf, 8);
    if (header_len > SAFETENSORS_MAX_HEADER) {
        vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: header length %llu (bytes 0..7) is over the %llu-byte limit", what,
                 (unsigned long long)header_len, SAFETENSORS_MAX_HEADER);
        return NULL;
    }
    if (header_len > size - 8) {
        vdx_fail_kind(err, VDX_ERR_CORRUPT,
                 "%s: header length %llu (bytes 0..7) goes past the end of the file (%zu "
                 "bytes): truncated file?",
                 what, (unsigned long long)header_len, size);
        return NULL;
    }
    const char *json = (const char *)buf + 8;
    const char *parse_end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)header_len, &parse_end, 0);
    if (!root && json_text_is_valid(json, (size_t)header_len)) {
        vdx_fail_oom(err, "reading the header of %s", what);
        return NULL;
    }
    if (!root) {
        size_t at = parse_end && parse_end >= json ? (size_t)(parse_end - json) : 0;
        vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: header JSON is invalid at file byte %zu", what, 8 + at);
        return NULL;
    }
    for (const char *p = parse_end; p && p < json + header_len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != 0) {
            vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: unexpected bytes after the header JSON at file byte %zu", what,
                     (size_t)(8 + (p - json)));
            cJSON_Delete(root);
            return NULL;
        }
    if (!cJSON_IsObject(root)) {
        vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: header JSON is not an object", what);
        cJSON_Delete(root);
        return NULL;
    }
    uint64_t data_start = 8 + header_len;
    uint64_t data_size = size - data_start;
    const uint8_t *data_base = buf + data_start;
    size_t count = 0, filled = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root) count += strcmp(entry->string, "__metadata__") != 0;
    vdx_tensor *tensors = calloc(count ? count : 1, sizeof *tensors);
    span *spans = calloc(count ? count : 1, sizeof *spans);
    if (!tensors || !spans) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory for %zu tensors", what, count);
        goto fail;
    }
    cJSON_ArrayForEach(entry, root)
    {
        if (strcmp(entry->string, "__metadata__") == 0)
            continue;
        vdx_tensor *t = &tensors[filled];
        if (parse_entry(entry, what, data_base, data_size, data_start, t, &spans[filled], err))
            goto fail;
        t->name = strdup(entry->string);
        if (!t->name) {
            vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", what);
            goto fail;
        }
        spans[filled].tensor = filled;
        filled++;
    }
    if (check_tiling(spans, count, tensors, what, data_size, data_start, err) != 0)
        goto fail;
    free(spans);
    cJSON_Delete(root);
    return weights_new(what, tensors, count, NULL, NULL, err);
fail:
    for (size_t i = 0; i < filled; i++)
        free(tensors[i].name);
    free(tensors);
    free(spans);
    cJSON_Delete(root);
    return NULL;
}

static void release_mapping(vdx_weights *w)
{
    mapped_file *m = w->backing;
    if (!m)
        return;
    munmap(m->addr, m->size);
    free(m);
    w->backing = NULL;
}

vdx_weights *safetensors_open(const char *path, vdx_error *err)
{
    void *addr;
    size_t size;
    if (weights_map_file(path, 8, "the 8-byte header length", &addr, &size, err) != 0)
        return NULL;
    mapped_file *m = malloc(sizeof *m);
    if (!m) {
        munmap(addr, size);
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", path);
        return NULL;
    }
    m->addr = addr;
    m->size = size;
    vdx_weights *w = safetensors_parse(addr, size, path, err);
    if (!w) {
        munmap(addr, size);
        free(m);
        return NULL;
    }
    w->backing = m;
    w->release = release_mapping;
    w->mapped = addr;
    w->mapped_size = size;
    return w;
}
