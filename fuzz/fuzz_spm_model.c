/* libFuzzer target for the SentencePiece model reader (src/text/sentencepiece.c over the
 * protobuf reader src/text/protobuf.c): any byte string must either be refused with a
 * message or give a tokenizer that encodes a few texts without reading outside its
 * tables (a hostile charsmap trie, pieces, scores and types included). Built by
 * scripts/build-fuzz.sh; seed: the mclip-tiny sentencepiece.bpe.model.
 * FUZZ_SOURCES: src/common/common.c src/common/hash.c src/text/protobuf.c src/text/sentencepiece.c */
#include <stdlib.h>
#include <string.h>

#include "vdx/sentencepiece.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vdx_error err = {{0}};
    vdx_spm *tok = vdx_spm_parse(data, size, "fuzz.model", &err);
    if (!tok) {
        if (strncmp(err.message, "fuzz.model: ", 12) != 0)
            abort(); /* every refusal names the file */
        return 0;
    }
    static const char *const texts[] = {"", "a photo of a cat", "  ＡＢＣ\t x ",
                                        "一只猫<mask>在沙发上", "\xff\xfe e\xcc\x81 \xef\xbd\xb6\xef\xbe\x9e"};
    int32_t ids[64];
    char *pieces[64];
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int n = 0, cut = 0, full = 0;
        if (vdx_spm_encode(tok, texts[i], 64, ids, &n, &cut, &full, pieces, &err) != 0)
            continue;
        if (n < 2 || n > 64 || ids[0] != VDX_SPM_BOS || ids[n - 1] != VDX_SPM_EOS)
            abort();
        for (int k = 0; k < n; k++)
            if (ids[k] < 0 || ids[k] >= vdx_spm_vocab_size(tok) || !pieces[k])
                abort();
        vdx_spm_free_pieces(pieces, n);
    }
    vdx_spm_free(tok);
    return 0;
}
