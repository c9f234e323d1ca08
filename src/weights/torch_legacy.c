/* pytorch_model.bin in the format torch.save wrote before PyTorch 1.6 (and still writes
 * with _use_new_zipfile_serialization=False): one stream of five pickles, then the raw
 * storages. The pickles are the magic number 0x1950a86a20f9469cfc6c, the protocol
 * version 1001, a sys-info dict (byte order), the state dict itself, and the list of
 * storage keys in the order their data follows; each storage is an 8-byte little-endian
 * element count and then its elements. The file is memory-mapped and tensors point into
 * it. The pickles go through the restricted unpickler of pickle.c. */
#include "weights/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Walks the storage section: for each listed key, its count and data. */
static int locate_storages(const uint8_t *buf, size_t size, size_t pos, const char *path,
                           char **keys, size_t key_count, const vdx_pickle_state_dict *sd,
                           vdx_pickle_storage *storages, vdx_error *err)
{
    for (size_t k = 0; k < key_count; k++) {
        const vdx_pickle_tensor *user = NULL;
        for (size_t i = 0; i < sd->count && !user; i++)
            if (strcmp(sd->tensors[i].storage_key, keys[k]) == 0)
                user = &sd->tensors[i];
        if (!user)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: storage '%s' at byte %zu belongs to no tensor", path,
                            keys[k], pos);
        if (size - pos < 8)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                            "%s: truncated: storage '%s' should start at byte %zu but the file "
                            "ends at %zu",
                            path, keys[k], pos, size);
        uint64_t count;
        memcpy(&count, buf + pos, 8);
        if (count != (uint64_t)user->storage_numel)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                            "%s: storage '%s' at byte %zu holds %llu elements, its tensors "
                            "say %lld",
                            path, keys[k], pos, (unsigned long long)count,
                            (long long)user->storage_numel);
        pos += 8;
        size_t bytes = (size_t)count * dtype_size(user->dtype);
        if (bytes > size - pos)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                            "%s: truncated: storage '%s' needs bytes %zu..%zu but the file "
                            "ends at %zu",
                            path, keys[k], pos, pos + bytes, size);
        storages[k] = (vdx_pickle_storage){keys[k], buf + pos, bytes};
        pos += bytes;
    }
    return 0;
}

vdx_weights *torch_legacy_open(const char *path, vdx_error *err)
{
    void *map;
    size_t size;
    if (weights_map_file(path, 1, "", &map, &size, err) != 0)
        return NULL;
    vdx_pickle_backing *backing = calloc(1, sizeof *backing);
    if (!backing) {
        munmap(map, size);
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", path);
        return NULL;
    }
    backing->map = map;
    backing->map_size = size;
    const uint8_t *buf = map;
    vdx_pickle_state_dict sd = {0};
    char **keys = NULL;
    size_t key_count = 0, pos = 0, used;
    vdx_pickle_storage *storages = NULL;
    vdx_weights *w = NULL;
    if (pickle_check_legacy_preamble(buf, size, path, &used, err))
        goto done;
    pos += used;
    if (pickle_load_state_dict(buf + pos, size - pos, pos, path, &sd, &used, err))
        goto done;
    pos += used;
    if (pickle_load_string_list(buf + pos, size - pos, pos, path, &keys, &key_count,
                                    &used, err))
        goto done;
    pos += used;
    storages = calloc(key_count ? key_count : 1, sizeof *storages);
    if (!storages) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", path);
        goto done;
    }
    if (locate_storages(buf, size, pos, path, keys, key_count, &sd, storages, err))
        goto done;
    w = pickle_weights_new(path, &sd, storages, key_count, backing, err);
    backing = NULL;
    if (w) {
        w->mapped = map;
        w->mapped_size = size;
    }
done:
    pickle_backing_free(backing);
    for (size_t i = 0; i < key_count; i++)
        free(keys[i]);
    free(keys);
    free(storages);
    pickle_state_dict_free(&sd);
    return w;
}
