/* The CLIP model: load a Hugging Face checkpoint, embed images and texts exactly as
 * transformers' CLIPModel.get_image_features / get_text_features compute them
 * (docs/clip-model.md). One loaded model may be used from several threads. */
#ifndef VDX_CLIP_H
#define VDX_CLIP_H

#include "vdx/common.h"
#include "vdx/image.h"
#include "vdx/store.h" /* vdx_model_identity */
#include "vdx/tokenizer.h"

#define VDX_DEFAULT_MODEL "openai/clip-vit-base-patch32"

typedef struct vdx_clip_tower_config {
    int hidden_size, intermediate_size, num_heads, num_layers;
    int hidden_act_quick_gelu; /* 1: quick_gelu, 0: exact erf gelu */
    double layer_norm_eps;
    /* vision only */
    int image_size, patch_size, num_channels;
    /* text only */
    int vocab_size, max_position_embeddings;
} vdx_clip_tower_config;

typedef struct vdx_clip_config {
    vdx_clip_tower_config vision, text;
    int projection_dim;
} vdx_clip_config;

/* Parses config.json. */
int vdx_clip_config_load(const char *path, vdx_clip_config *cfg, vdx_error *err);

typedef struct vdx_clip_model vdx_clip_model;

/* Turns a --model argument into a model directory: an existing directory is used as is;
 * a repo id ("openai/clip-vit-base-patch32") is looked up in the Hugging Face cache
 * ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub), following
 * refs/main to snapshots/<rev>/. */
int vdx_clip_resolve_model(const char *model_arg, char *dir, size_t dir_size, vdx_error *err);

/* What a model pull reports while it works: the library never prints, the caller draws
 * (the CLI: a progress bar on a terminal, a line every 10 s otherwise). */
typedef enum vdx_pull_event_kind {
    VDX_PULL_BEGIN,     /* repo_id, revision, endpoint, folder */
    VDX_PULL_CACHED,    /* file is already in the cache */
    VDX_PULL_RESUME,    /* file: have = bytes of an earlier attempt kept on disk */
    VDX_PULL_PROGRESS,  /* file: have of total bytes (-1 unknown), written by this request,
                           elapsed_s since it started; as often as libcurl reports */
    VDX_PULL_FILE_DONE, /* file: have bytes, written by this request, in elapsed_s */
    VDX_PULL_RETRY,     /* file (or a URL): why, retrying in retry_in_s, attempt of
                           max_attempts (the attempt about to start) */
    VDX_PULL_END,       /* commit; downloaded = files fetched (0: all were cached) */
} vdx_pull_event_kind;

typedef struct vdx_pull_event {
    vdx_pull_event_kind kind;
    const char *repo_id, *revision, *endpoint, *folder, *commit, *file, *why;
    long long have, total, written;
    double elapsed_s, retry_in_s;
    int attempt, max_attempts, downloaded;
} vdx_pull_event;

typedef void (*vdx_pull_progress_fn)(const vdx_pull_event *event, void *user);

/* Downloads a repo's files into the Hugging Face cache layout from $HF_ENDPOINT (default
 * https://huggingface.co), with resume and verification, reporting to `progress` (may be
 * NULL). `revision` NULL = main. On success `dir` holds the snapshot directory. */
int vdx_clip_pull_progress(const char *repo_id, const char *revision, char *dir,
                           size_t dir_size, vdx_pull_progress_fn progress, void *user,
                           vdx_error *err);
/* The same without progress reports. */
int vdx_clip_pull(const char *repo_id, const char *revision, char *dir, size_t dir_size,
                  vdx_error *err);

/* Loads config.json, the weights (model.safetensors, else pytorch_model.bin),
 * the tokenizer and preprocessor_config.json from a model directory. */
vdx_clip_model *vdx_clip_load(const char *model_dir, vdx_error *err);
void vdx_clip_free(vdx_clip_model *model);

/* Threads used by the towers (default: all cores). Process-wide. */
void vdx_clip_set_threads(int threads);

/* The identity a collection records for vectors of this model: name, fingerprint
 * (vdx_clip_config_hash) and feature dims. */
void vdx_clip_identity(const vdx_clip_model *model, vdx_model_identity *out);

const vdx_clip_config *vdx_clip_get_config(const vdx_clip_model *model);
const vdx_preprocess_config *vdx_clip_get_preprocess(const vdx_clip_model *model);
const vdx_tokenizer *vdx_clip_get_tokenizer(const vdx_clip_model *model);
int vdx_clip_embed_dim(const vdx_clip_model *model);
/* Identity recorded by collections, so vectors of different models are never mixed:
 * the model name (the repo id for a Hugging Face cache snapshot, else the absolute model
 * directory, so commands can load a collection's model again) and a fingerprint: hex sha256 over the architecture numbers
 * of config.json and the float32 values of visual_projection and text_projection. The
 * fingerprint is the same for the same weights in any file format, so a collection
 * embedded from model.safetensors accepts queries from pytorch_model.bin. */
const char *vdx_clip_model_name(const vdx_clip_model *model);
const char *vdx_clip_config_hash(const vdx_clip_model *model);

/* Image tower on n preprocessed images (n*3*S*S floats, CHW each), batched.
 * out gets n*embed_dim unnormalised image features. */
int vdx_clip_embed_images(const vdx_clip_model *model, const float *pixel_values, int n,
                          float *out, vdx_error *err);
/* Text tower on token ids (bos..eos, n_ids <= 77); runs only the real tokens. */
int vdx_clip_embed_tokens(const vdx_clip_model *model, const int32_t *ids, int n_ids,
                          float *out, vdx_error *err);
/* Tokenize + text tower. *truncated (may be NULL) tells if the text was cut to 77. */
int vdx_clip_embed_text(const vdx_clip_model *model, const char *text, float *out,
                        int *truncated, vdx_error *err);

/* v /= ||v|| (no-op for a zero vector). */
void vdx_l2_normalize(float *v, int n);

#endif
