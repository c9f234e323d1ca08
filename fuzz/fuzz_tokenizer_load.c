/* libFuzzer target for the CLIP tokenizer's loader (vdx_tokenizer_load in tokenizer.c of
 * src/text), which reads vocab.json and merges.txt from every model directory downloaded
 * from the Hugging Face hub (fuzz_tokenizer.c fuzzes encoding with a fixed, valid model).
 * The input is split at its first form feed pair "\f\f": the bytes before are vocab.json,
 * those after merges.txt (without the pair, merges.txt is "#version: 0.2" alone). Both go
 * into a per-process temporary directory. When the input's first byte is '+', it is
 * dropped and vocab.json gets the 512 GPT-2 byte symbols (ids 0..511) and the two special
 * tokens (49406, 49407) in front of the input's own entries (the input then continues the
 * object: `, "a b": 600}`), so that the fuzzer reaches the merges and the encoder without
 * having to write 514 entries itself. A refusal must name vocab.json or merges.txt (its
 * path, then ": ") and be valid UTF-8 when the input is. An accepted tokenizer must encode
 * a few texts (ASCII, accents, CJK, emoji, 300 letters) with max_len 77: bos first, eos
 * last, at most 77 ids, every id between them non-negative, and the same ids twice.
 * FUZZ_VERBOSE=1 prints each verdict. Built by scripts/build-fuzz.sh.
 * FUZZ_SOURCES: src/text/tokenizer.c src/common/common.c src/common/hash.c src/common/json_check.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vdx/tokenizer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/vdx-fuzz-tokenizer-XXXXXX";
static char vocab_path[64], merges_path[64];
static char base[16384]; /* the byte symbols and special tokens, as JSON members */
static size_t base_len;

static int printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

/* GPT-2's byte → character mapping, as UTF-8 with JSON escapes */
static size_t byte_symbol_json(int byte, char *out)
{
    int cp = byte, shifted = 0;
    if (!printable(byte)) {
        for (int b = 0; b < byte; b++)
            shifted += !printable(b);
        cp = 256 + shifted;
    }
    if (cp == '"' || cp == '\\')
        return (size_t)sprintf(out, "\\%c", cp);
    if (cp < 0x80)
        return (size_t)sprintf(out, "%c", cp);
    return (size_t)sprintf(out, "%c%c", 0xC0 | cp >> 6, 0x80 | (cp & 0x3F));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!mkdtemp(dir))
        abort();
    snprintf(vocab_path, sizeof vocab_path, "%s/vocab.json", dir);
    snprintf(merges_path, sizeof merges_path, "%s/merges.txt", dir);
    base_len = (size_t)sprintf(base, "{");
    for (int end = 0; end < 2; end++)
        for (int b = 0; b < 256; b++) {
            base[base_len++] = '"';
            base_len += byte_symbol_json(b, base + base_len);
            base_len += (size_t)sprintf(base + base_len, "%s\": %d, ", end ? "</w>" : "",
                                        end * 256 + b);
        }
    base_len += (size_t)sprintf(base + base_len,
                                "\"<|startoftext|>\": 49406, \"<|endoftext|>\": 49407");
    return 0;
}

static void write_file(const char *path, const void *a, size_t a_len, const void *b,
                       size_t b_len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a, 1, a_len, f) != a_len || (b_len && fwrite(b, 1, b_len, f) != b_len) ||
        fclose(f) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int with_base = size > 0 && data[0] == '+';
    const uint8_t *vocab = data + with_base, *end = data + size, *merges = NULL;
    for (const uint8_t *p = vocab; p + 1 < end; p++)
        if (p[0] == '\f' && p[1] == '\f') {
            merges = p + 2;
            break;
        }
    size_t vocab_len = (size_t)((merges ? merges - 2 : end) - vocab);
    if (with_base)
        write_file(vocab_path, base, base_len, vocab, vocab_len);
    else
        write_file(vocab_path, vocab, vocab_len, NULL, 0);
    if (merges)
        write_file(merges_path, merges, (size_t)(end - merges), NULL, 0);
    else
        write_file(merges_path, "#version: 0.2\n", 14, NULL, 0);

    vdx_error err = {{0}};
    vdx_tokenizer *tok = vdx_tokenizer_load(dir, &err);
    if (getenv("FUZZ_VERBOSE")) /* to see what a seed does */
        fprintf(stderr, "%s\n", tok ? "loaded" : err.message);
    if (!tok) {
        size_t bad;
        int named = (!strncmp(err.message, vocab_path, strlen(vocab_path)) &&
                     !strncmp(err.message + strlen(vocab_path), ": ", 2)) ||
                    (!strncmp(err.message, merges_path, strlen(merges_path)) &&
                     !strncmp(err.message + strlen(merges_path), ": ", 2));
        if (!named)
            abort(); /* a refusal names the file */
        if (vdx_utf8_check((const char *)data, size, &bad) == 0 &&
            vdx_utf8_check(err.message, strlen(err.message), &bad) != 0)
            abort(); /* in UTF-8 */
        return 0;
    }
    static const char *const texts[] = {
        "a photo of a cat", "Déjà vu — naïve café", "一只猫在沙发上睡觉", "🎉 party!!! 🎉",
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghij"
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghij"
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghij"
        "abcdefghijklmnopqrstuvwxyzabcd"};
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        int32_t ids[77], again[77];
        int n = 0, n_again = 0, cut = 0;
        if (vdx_tokenizer_encode(tok, texts[t], 77, ids, &n, &cut, &err) != 0 ||
            vdx_tokenizer_encode(tok, texts[t], 77, again, &n_again, &cut, &err) != 0)
            abort(); /* valid UTF-8 always encodes */
        if (n < 2 || n > 77 || ids[0] != VDX_TOKEN_BOS || ids[n - 1] != VDX_TOKEN_EOS ||
            n != n_again || memcmp(ids, again, (size_t)n * sizeof *ids) != 0)
            abort();
        for (int i = 1; i < n - 1; i++)
            if (ids[i] < 0)
                abort();
    }
    vdx_tokenizer_free(tok);
    return 0;
}
