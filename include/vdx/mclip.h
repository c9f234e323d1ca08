/* M-CLIP text towers (M-CLIP/XLM-Roberta-Large-Vit-B-32 and its kin): an XLM-RoBERTa
 * encoder, masked mean pooling and a LinearTransformation that land a prompt in about
 * 100 languages in the space of a CLIP model's *image* vectors, computed exactly as
 * MultilingualCLIP.forward over transformers' XLMRobertaModel (docs/mclip.md). One
 * loaded model may be used from several threads. */
#ifndef VDX_MCLIP_H
#define VDX_MCLIP_H

#include "vdx/common.h"
#include "vdx/clip.h" /* vdx_precision */
#include "vdx/sentencepiece.h"

typedef struct vdx_mclip_config {
    int vocab_size, hidden_size, num_layers, num_heads, intermediate_size;
    int max_position_embeddings; /* 514: positions 2..513 for 512 tokens */
    int num_dims;                /* output dimension (numDims) */
    double layer_norm_eps;
    char model_base[128];        /* config.json modelBase, e.g. "xlm-roberta-large" */
} vdx_mclip_config;

typedef struct vdx_mclip_model vdx_mclip_model;

/* 1 when config.json in model_dir says model_type "M-CLIP" (a text-only M-CLIP tower). */
int vdx_mclip_is_model_dir(const char *model_dir);

/* Loads config.json, the weights (model.safetensors, else pytorch_model.bin) and
 * sentencepiece.bpe.model. Dimensions come from the tensor shapes (the hub config names
 * none); the word-embedding table is used in place from the weight file when it is
 * float32, everything else is copied into one float32 arena. */
vdx_mclip_model *vdx_mclip_load(const char *model_dir, vdx_error *err);
/* The same with the precision of the matrix products (vdx/clip.h: resolved with
 * vdx_precision_resolve; vdx_mclip_load is FP32). */
vdx_mclip_model *vdx_mclip_load_precision(const char *model_dir, vdx_precision precision,
                                          vdx_error *err);
void vdx_mclip_free(vdx_mclip_model *model);

const vdx_mclip_config *vdx_mclip_get_config(const vdx_mclip_model *model);
const vdx_spm *vdx_mclip_get_tokenizer(const vdx_mclip_model *model);
int vdx_mclip_embed_dim(const vdx_mclip_model *model);
/* The repo id of a Hugging Face cache snapshot, else the absolute model directory. */
const char *vdx_mclip_model_name(const vdx_mclip_model *model);
/* Bytes of weights the model holds: arena plus the word table used in place. */
size_t vdx_mclip_weight_bytes(const vdx_mclip_model *model);

/* One prompt's ids (from vdx_spm_encode, 1 to 512 of them, no padding) → out[num_dims],
 * unnormalised. pooled (may be NULL) gets the masked mean [hidden_size]; hidden (may be
 * NULL) gets (num_layers+1) × n_ids × hidden_size: the embeddings, then every layer. */
int vdx_mclip_forward(const vdx_mclip_model *model, const int32_t *ids, int n_ids, float *out,
                      float *pooled, float *hidden, vdx_error *err);
/* A padded batch as transformers runs it: n_seq rows of seq_len ids, attention_mask 1 for
 * real tokens and 0 for padding after them (right padding). out [n_seq][num_dims]. */
int vdx_mclip_forward_batch(const vdx_mclip_model *model, const int32_t *ids,
                            const int32_t *mask, int n_seq, int seq_len, float *out,
                            vdx_error *err);
/* Tokenize (truncating to 512 tokens) + forward. *truncated (may be NULL) tells if the
 * text was cut. */
int vdx_mclip_embed_text(const vdx_mclip_model *model, const char *text, float *out,
                         int *truncated, vdx_error *err);

#endif
