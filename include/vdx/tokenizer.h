/* CLIP's byte-level BPE tokenizer, exactly as transformers' default CLIPTokenizer
 * (docs/clip-model.md, "Tokenizer"): NFC, whitespace folding, lowercase, the CLIP
 * pre-tokenizer regex, GPT-2 byte→unicode, BPE by merge rank, bos/eos, truncation. */
#ifndef VDX_TOKENIZER_H
#define VDX_TOKENIZER_H

#include "vdx/common.h"

#define VDX_TOKEN_BOS 49406
#define VDX_TOKEN_EOS 49407

typedef struct vdx_tokenizer vdx_tokenizer;

/* Loads vocab.json and merges.txt from a model directory. */
vdx_tokenizer *vdx_tokenizer_load(const char *model_dir, vdx_error *err);
void vdx_tokenizer_free(vdx_tokenizer *tok);

/* Encodes text into at most max_len ids (77 for CLIP): [bos] + pieces + [eos].
 * *n_ids gets the count; *truncated is set when pieces were dropped. Thread-safe. */
int vdx_tokenizer_encode(const vdx_tokenizer *tok, const char *text, int max_len,
                         int32_t *ids, int *n_ids, int *truncated, vdx_error *err);

#endif
