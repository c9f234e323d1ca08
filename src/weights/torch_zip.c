/* pytorch_model.bin as torch.save has written it since PyTorch 1.6: a zip archive
 * (entries stored, not deflated) holding `<name>/data.pkl`, the state-dict pickle, and
 * `<name>/data/<key>`, one raw little-endian storage per key. libzip reads the archive;
 * the pickle goes through the restricted unpickler of pickle.c. Storages are read into
 * memory once each (tensors sharing a storage share the buffer). */
#include "weights/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

/* data.pkl of a state dict is a few hundred bytes per tensor. */
#define MAX_PICKLE_BYTES (256u << 20)

/* Reads a whole archive entry into a malloc'd buffer after checking its size. */
static uint8_t *read_entry(zip_t *zip, const char *path, const char *entry, size_t max,
                           size_t *size, vdx_error *err)
{
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat(zip, entry, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
        vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: archive entry '%s' is missing", path, entry);
        return NULL;
    }
    if (st.size > max) {
        vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: archive entry '%s' is %llu bytes, expected at most %zu", path,
                 entry, (unsigned long long)st.size, max);
        return NULL;
    }
    uint8_t *buf = malloc(st.size ? st.size : 1);
    zip_file_t *f = buf ? zip_fopen(zip, entry, 0) : NULL;
    if (!f) {
        vdx_fail_kind(err, buf ? VDX_ERR_CORRUPT : VDX_ERR_NO_MEMORY, "%s: cannot open archive entry '%s': %s", path, entry,
                 buf ? zip_strerror(zip) : "out of memory");
        free(buf);
        return NULL;
    }
    zip_uint64_t got = 0;
    while (got < st.size) {
        zip_int64_t n = zip_fread(f, buf + got, st.size - got);
        if (n <= 0) {
            vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: archive entry '%s' ends after %llu of %llu bytes: %s", path,
                     entry, (unsigned long long)got, (unsigned long long)st.size,
                     n < 0 ? zip_file_strerror(f) : "truncated");
            zip_fclose(f);
            free(buf);
            return NULL;
        }
        got += (zip_uint64_t)n;
    }
    zip_fclose(f);
    *size = st.size;
    return buf;
}

/* The `<name>/` prefix of `<name>/data.pkl`: the archive's only top-level folder. */
static int find_prefix(zip_t *zip, const char *path, char *prefix, size_t size, vdx_error *err)
{
    zip_int64_t n = zip_get_num_entries(zip, 0);
    int found = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(zip, (zip_uint64_t)i, 0);
        const char *slash = name ? strchr(name, '/') : NULL;
        if (!slash || strcmp(slash, "/data.pkl") != 0)
            continue;
        if (found++)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: the archive holds more than one data.pkl", path);
        if ((size_t)(slash - name) + 2 > size)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: archive folder name too long", path);
        memcpy(prefix, name, (size_t)(slash - name) + 1);
        prefix[slash - name + 1] = 0;
    }
    if (!found)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: a zip archive without <name>/data.pkl is not a torch "
                             "checkpoint", path);
    return 0;
}

vdx_weights *torch_zip_open(const char *path, vdx_error *err)
{
    int zip_err = 0;
    zip_t *zip = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zip_err);
    if (!zip) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zip_err);
        vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: not a readable zip archive: %s", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return NULL;
    }
    vdx_pickle_state_dict sd = {0};
    vdx_pickle_storage *storages = NULL;
    size_t storage_count = 0;
    vdx_pickle_backing *backing = calloc(1, sizeof *backing);
    vdx_weights *w = NULL;
    char prefix[1024], entry[2048], what[4096 + 1024];
    if (!backing) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", path);
        goto done;
    }
    if (find_prefix(zip, path, prefix, sizeof prefix, err))
        goto done;
    snprintf(entry, sizeof entry, "%sbyteorder", prefix);
    if (zip_name_locate(zip, entry, 0) >= 0) {
        size_t size;
        uint8_t *order = read_entry(zip, path, entry, 16, &size, err);
        if (!order)
            goto done;
        int little = size == 6 && memcmp(order, "little", 6) == 0;
        free(order);
        if (!little) {
            vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: big-endian checkpoint (%s is not 'little'): not supported",
                     path, entry);
            goto done;
        }
    }
    snprintf(entry, sizeof entry, "%sdata.pkl", prefix);
    size_t pickle_size;
    uint8_t *pickle = read_entry(zip, path, entry, MAX_PICKLE_BYTES, &pickle_size, err);
    if (!pickle)
        goto done;
    snprintf(what, sizeof what, "%s (%s)", path, entry);
    int rc = pickle_load_state_dict(pickle, pickle_size, 0, what, &sd, NULL, err);
    free(pickle);
    if (rc)
        goto done;
    storages = calloc(sd.count ? sd.count : 1, sizeof *storages);
    if (!storages) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < sd.count; i++) {
        const vdx_pickle_tensor *t = &sd.tensors[i];
        int known = 0;
        for (size_t s = 0; s < storage_count && !known; s++)
            known = strcmp(storages[s].key, t->storage_key) == 0;
        if (known)
            continue;
        snprintf(entry, sizeof entry, "%sdata/%s", prefix, t->storage_key);
        size_t expected = (size_t)t->storage_numel * dtype_size(t->dtype), size;
        uint8_t *data = read_entry(zip, path, entry, expected, &size, err);
        if (!data)
            goto done;
        if (pickle_backing_add(backing, data, err))
            goto done;
        if (size != expected) {
            vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: storage '%s' holds %zu bytes, its %lld %s elements need %zu",
                     path, entry, size, (long long)t->storage_numel, dtype_name(t->dtype),
                     expected);
            goto done;
        }
        storages[storage_count++] = (vdx_pickle_storage){t->storage_key, data, size};
    }
    w = pickle_weights_new(path, &sd, storages, storage_count, backing, err);
    backing = NULL;
done:
    pickle_backing_free(backing);
    free(storages);
    pickle_state_dict_free(&sd);
    zip_discard(zip);
    return w;
}
