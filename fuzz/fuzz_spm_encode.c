/* libFuzzer target for the XLM-R tokenizer's encode path (src/text/sentencepiece.c):
 * arbitrary bytes (valid UTF-8 or not) give ids that respect every invariant: <s> first,
 * </s> last, only vocabulary ids between, at most max_len ids, a truncated encoding that
 * is a prefix of the full one, and, for text without special tokens, pieces that spell
 * the normalised text. $VDX_SPM_MODEL names the model (default: the mclip-tiny fixture).
 * The first input byte picks max_len (2..257); the rest is the text. Built by
 * scripts/build-fuzz.sh.
 * FUZZ_SOURCES: src/common/common.c src/common/hash.c src/text/protobuf.c src/text/sentencepiece.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdx/sentencepiece.h"

#define WIDE_MAX_LEN 70000

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static vdx_spm *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *path = getenv("VDX_SPM_MODEL");
    vdx_error err;
    tok = vdx_spm_load(path ? path : "../shared/fixtures/mclip-tiny/sentencepiece.bpe.model",
                       &err);
    if (!tok) {
        fprintf(stderr, "fuzz_spm_encode: %s (set VDX_SPM_MODEL)\n", err.message);
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
    text[size - 1] = 0;
    static int32_t ids[WIDE_MAX_LEN], wide[WIDE_MAX_LEN];
    static char *pieces[WIDE_MAX_LEN];
    int n = 0, cut = 0, full = 0, n_wide = 0, wide_cut = 0, wide_full = 0;
    vdx_error err;
    if (vdx_spm_encode(tok, text, max_len, ids, &n, &cut, &full, NULL, &err) != 0 ||
        vdx_spm_encode(tok, text, WIDE_MAX_LEN, wide, &n_wide, &wide_cut, &wide_full, pieces,
                       &err) != 0)
        abort(); /* any bytes encode */
    if (n < 2 || n > max_len || ids[0] != VDX_SPM_BOS || ids[n - 1] != VDX_SPM_EOS)
        abort();
    for (int i = 1; i < n - 1; i++)
        if (ids[i] < 0 || ids[i] >= vdx_spm_vocab_size(tok))
            abort();
    if (full != wide_full || cut != (full > max_len) || (!wide_cut && n_wide != full))
        abort();
    if (memcmp(ids, wide, (size_t)(n - 1) * sizeof *ids) != 0)
        abort();
    if (!wide_cut && !strchr(text, '<')) {
        char *norm;
        if (vdx_spm_normalize(tok, text, &norm, &err) != 0)
            abort();
        size_t at = 0, len = strlen(norm);
        for (int i = 1; i < n_wide - 1; i++) {
            size_t l = strlen(pieces[i]);
            if (at + l > len || memcmp(norm + at, pieces[i], l) != 0)
                abort();
            at += l;
        }
        if (at != len)
            abort();
        free(norm);
    }
    vdx_spm_free_pieces(pieces, n_wide);
    free(text);
    return 0;
}
