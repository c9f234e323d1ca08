/* libFuzzer target for the CLIP tokenizer's encode path: arbitrary bytes (valid UTF-8 or
 * not) must either be refused with a message or give ids that respect every invariant:
 * bos first, eos last, only vocabulary ids between, at most max_len ids, and a truncated
 * encoding that is exactly a prefix of the untruncated one.
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude -Isrc $(pkg-config --cflags libutf8proc libcjson) \
 *     fuzz/fuzz_tokenizer.c src/text/tokenizer.c src/common/common.c src/common/hash.c src/common/json_check.c \
 *     $(pkg-config --libs libutf8proc libcjson libcrypto) -o fuzz_tokenizer
 *   VDX_TOKENIZER_DIR=../shared/fixtures/clip-tiny ./fuzz_tokenizer -max_total_time=60
 * The first input byte picks max_len (2..257); the rest is the text. */
#include "vdx/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIDE_MAX_LEN 8192

static vdx_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("VDX_TOKENIZER_DIR");
    vdx_error err;
    tok = vdx_tokenizer_load(dir ? dir : "../shared/fixtures/clip-tiny", &err);
    if (!tok) {
        fprintf(stderr, "fuzz_tokenizer: %s (set VDX_TOKENIZER_DIR to a model directory)\n",
                err.message);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int max_len = 2 + data[0];
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0; /* C strings end at the first NUL, like the API's callers */

    static int32_t ids[WIDE_MAX_LEN], wide[WIDE_MAX_LEN];
    int n = 0, truncated = 0, n_wide = 0, wide_truncated = 0;
    vdx_error err;
    int status = vdx_tokenizer_encode(tok, text, max_len, ids, &n, &truncated, &err);
    int wide_status = vdx_tokenizer_encode(tok, text, WIDE_MAX_LEN, wide, &n_wide, &wide_truncated, &err);
    if (status != wide_status)
        abort(); /* validity cannot depend on max_len */
    if (status != 0) {
        if (strncmp(err.message, "text is not valid UTF-8: byte ", 30) != 0)
            abort();
        free(text);
        return 0;
    }
    if (n < 2 || n > max_len || ids[0] != VDX_TOKEN_BOS || ids[n - 1] != VDX_TOKEN_EOS)
        abort();
    for (int i = 1; i < n - 1; i++)
        if (ids[i] < 0 || ids[i] >= VDX_TOKEN_BOS)
            abort();
    /* truncation keeps a prefix of the full encoding, and says so exactly when it cuts */
    if (!wide_truncated) {
        if (truncated != (n_wide > max_len))
            abort();
        if (memcmp(ids, wide, (size_t)(n - 1) * sizeof *ids) != 0)
            abort();
        if (!truncated && n != n_wide)
            abort();
    }
    free(text);
    return 0;
}
