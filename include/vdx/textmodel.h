/* A text tower that embeds prompts into a collection's image space: the CLIP model's own
 * text tower (English, the default), or a separate text model trained into the same
 * space, such as M-CLIP/XLM-Roberta-Large-Vit-B-32 for OpenAI CLIP ViT-B/32 (prompts in
 * about 100 languages). Search, concepts and the server embed prompts through this. */
#ifndef VDX_TEXTMODEL_H
#define VDX_TEXTMODEL_H

#include "vdx/clip.h"

typedef struct vdx_text_model vdx_text_model;

/* Loads the text tower of a model directory: an M-CLIP tower (config.json model_type
 * "M-CLIP"), else a CLIP model (both towers are loaded; the text one is used). */
vdx_text_model *vdx_text_model_load(const char *model_dir, vdx_error *err);
/* The same with precisions (vdx/clip.h): an M-CLIP tower runs options->text_precision
 * (a bf16 fallback is reported through options->notice), a CLIP model loads with
 * vdx_clip_load_with. options NULL: FP32, as vdx_text_model_load. */
vdx_text_model *vdx_text_model_load_with(const char *model_dir, const vdx_clip_options *options,
                                         vdx_error *err);
/* The text tower of a CLIP model already loaded (borrowed: free the wrapper first). */
vdx_text_model *vdx_text_model_of_clip(const vdx_clip_model *clip, vdx_error *err);
void vdx_text_model_free(vdx_text_model *model);

/* The repo id (Hugging Face cache snapshot) or the absolute model directory. */
const char *vdx_text_model_name(const vdx_text_model *model);
int vdx_text_model_dims(const vdx_text_model *model);
/* 1 for a multilingual tower (M-CLIP), 0 for CLIP's English one. */
int vdx_text_model_multilingual(const vdx_text_model *model);
/* Tokens a prompt may have before it is cut (77 for CLIP, 512 for M-CLIP). */
int vdx_text_model_max_tokens(const vdx_text_model *model);
/* Unnormalised features of a prompt (dims floats). *truncated (may be NULL) is set when
 * the prompt was longer than max_tokens and its end was cut. Thread-safe. */
int vdx_text_model_embed(const vdx_text_model *model, const char *text, float *out,
                         int *truncated, vdx_error *err);

/* 1 when text model `text_name` is known to embed into the space of image model
 * `image_name` (both as vdx names them: repo ids or directories): M-CLIP's XLM-R towers
 * and the OpenAI CLIP models they were trained against. A model always pairs with itself. */
int vdx_text_model_known_pair(const char *text_name, const char *image_name);

#endif
