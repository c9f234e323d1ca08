/* libFuzzer target for the restricted unpickler (src/weights/pickle.c): the state-dict
 * reader, the legacy-stream preamble and storage-key-list readers, and the tensor table
 * built over a state dict (strides, offsets, contiguous copies), with the input itself
 * standing in as every storage. Nothing may crash, leak or read outside the buffer.
 * Built by scripts/build-fuzz.sh.
 * FUZZ_SOURCES: src/common/common.c src/common/half.c src/common/json_check.c src/weights/weights.c src/weights/safetensors.c src/weights/pickle.c src/weights/torch_zip.c src/weights/torch_legacy.c */
#include <stdlib.h>
#include <string.h>

#include "weights/weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vdx_error err;
    size_t used;
    pickle_check_legacy_preamble(data, size, "fuzz", &used, &err);
    char **keys;
    size_t key_count;
    if (pickle_load_string_list(data, size, 0, "fuzz", &keys, &key_count, &used, &err) == 0) {
        for (size_t i = 0; i < key_count; i++)
            free(keys[i]);
        free(keys);
    }
    vdx_pickle_state_dict sd;
    if (pickle_load_state_dict(data, size, 0, "fuzz", &sd, &used, &err) != 0) {
        if (!err.message[0])
            abort();
        return 0;
    }
    if (used > size)
        abort();
    vdx_pickle_storage *storages = calloc(sd.count ? sd.count : 1, sizeof *storages);
    vdx_pickle_backing *backing = calloc(1, sizeof *backing);
    if (storages && backing) {
        for (size_t i = 0; i < sd.count; i++)
            storages[i] = (vdx_pickle_storage){sd.tensors[i].storage_key, data, size};
        vdx_weights *w = pickle_weights_new("fuzz", &sd, storages, sd.count, backing, &err);
        backing = NULL;
        if (w) {
            volatile uint8_t sink = 0;
            for (size_t i = 0; i < w->count; i++)
                for (size_t b = 0; b < w->tensors[i].nbytes; b++)
                    sink ^= ((const uint8_t *)w->tensors[i].data)[b];
            (void)sink;
        }
        weights_close(w);
    }
    free(backing);
    free(storages);
    pickle_state_dict_free(&sd);
    return 0;
}
