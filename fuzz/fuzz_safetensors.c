/* libFuzzer target for the safetensors header parser (src/weights/safetensors.c): any byte
 * string must either be refused with a message or give tensors that lie inside the
 * buffer; every accepted float tensor is read back through weights_get_f32 so ASan
 * sees each byte the table claims. Built by scripts/build-fuzz.sh.
 * FUZZ_SOURCES: src/common/common.c src/common/half.c src/common/json_check.c src/weights/weights.c src/weights/safetensors.c src/weights/pickle.c src/weights/torch_zip.c src/weights/torch_legacy.c */
#include <stdlib.h>
#include <string.h>

#include "weights/weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vdx_error err;
    vdx_weights *w = safetensors_parse(data, size, "fuzz.safetensors", &err);
    if (!w) {
        if (!err.message[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    for (size_t i = 0; i < w->count; i++) {
        const vdx_tensor *t = &w->tensors[i];
        if ((const uint8_t *)t->data < data || (const uint8_t *)t->data + t->nbytes > data + size)
            abort();
        size_t n = t->nbytes / dtype_size(t->dtype);
        float *out = malloc(n ? n * sizeof *out : 1);
        if (out && t->dtype != VDX_DTYPE_I64 &&
            weights_get_f32(w, t->name, out, t->ndim, t->shape, &err) != 0)
            abort(); /* a tensor of the table reads back with its own shape */
        free(out);
    }
    weights_close(w);
    return 0;
}
