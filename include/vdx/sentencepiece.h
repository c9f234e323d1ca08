/* The XLM-RoBERTa tokenizer: a SentencePiece Unigram model read from
 * `sentencepiece.bpe.model`, encoding text exactly as transformers' (slow)
 * XLMRobertaTokenizer over sentencepiece does (docs/mclip.md): nmt_nfkc normalisation from
 * the model's own precompiled table, whitespace rules, Viterbi segmentation, fairseq ids,
 * <s> ... </s>, and the literal special tokens <s> </s> <pad> <unk> <mask> in the text.
 * One loaded tokenizer may be used from several threads. */
#ifndef VDX_SENTENCEPIECE_H
#define VDX_SENTENCEPIECE_H

#include "vdx/common.h"

/* fairseq ids of XLM-R's special tokens (<mask> is vdx_spm_mask_id). */
#define VDX_SPM_BOS 0
#define VDX_SPM_PAD 1
#define VDX_SPM_EOS 2
#define VDX_SPM_UNK 3
/* transformers' model_max_length for XLM-R: positions 2..513 of a 514-row table. */
#define VDX_SPM_MAX_TOKENS 512

typedef struct vdx_spm vdx_spm;

/* Reads a `.model` file (a serialized sentencepiece.ModelProto). Errors name the file, the
 * field and the byte offset; models vdx cannot encode exactly as sentencepiece (BPE or
 * other model types, byte fallback, whitespace as suffix, user-defined pieces) are refused. */
vdx_spm *vdx_spm_load(const char *path, vdx_error *err);
/* The same over bytes in memory (`what` names them in errors); the bytes are copied. */
vdx_spm *vdx_spm_parse(const uint8_t *buf, size_t size, const char *what, vdx_error *err);
void vdx_spm_free(vdx_spm *tok);

/* Vocabulary size of the model's ids: pieces + 2 (fairseq adds <pad> and <mask>). */
int vdx_spm_vocab_size(const vdx_spm *tok);
int vdx_spm_mask_id(const vdx_spm *tok);
/* The piece of a (fairseq) id: "<s>", "▁the", ...; NULL outside the vocabulary. */
const char *vdx_spm_id_to_piece(const vdx_spm *tok, int32_t id);

/* Encodes text into at most max_len (>= 2) ids: [<s>] + ids + [</s>]; over max_len the
 * first max_len-2 pieces are kept and *truncated (may be NULL) is set. *n_untruncated
 * (may be NULL) gets the length the encoding would have without the limit. `pieces` (may
 * be NULL, max_len entries) receives each id's text as a malloc'd string: the piece, or
 * for an unknown id the normalised characters it stands for; free them with
 * vdx_spm_free_pieces. Invalid UTF-8 is not an error: like sentencepiece, each bad byte
 * reads as U+FFFD. Thread-safe. */
int vdx_spm_encode(const vdx_spm *tok, const char *text, int max_len, int32_t *ids,
                   int *n_ids, int *truncated, int *n_untruncated, char **pieces,
                   vdx_error *err);
void vdx_spm_free_pieces(char **pieces, int n);

/* Normalises text as the model's normalizer_spec says (the first step of encode), for
 * debugging: a malloc'd NUL-terminated string in *out. */
int vdx_spm_normalize(const vdx_spm *tok, const char *text, char **out, vdx_error *err);

#endif
