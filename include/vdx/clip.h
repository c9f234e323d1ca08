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

/* The sizes a config.json may declare; anything larger is refused when it is read, before
 * anything is allocated for it. Widths (hidden_size, intermediate_size, projection_dim)
 * 1..VDX_CLIP_MAX_WIDTH; num_hidden_layers 1..VDX_CLIP_MAX_LAYERS; num_attention_heads
 * dividing hidden_size; image_size 1..VDX_CLIP_MAX_IMAGE_SIZE, a multiple of patch_size,
 * at most VDX_CLIP_MAX_GRID patches a side (ViT-B/32 has 7, ViT-L/14-336 24);
 * num_channels 1..VDX_CLIP_MAX_CHANNELS; vocab_size 1..VDX_CLIP_MAX_VOCAB;
 * max_position_embeddings 2..VDX_CLIP_MAX_POSITIONS. The largest CLIP models (ViT-bigG:
 * width 1664, MLP 8192, 48 layers) are far inside them. */
#define VDX_CLIP_MAX_WIDTH 65536
#define VDX_CLIP_MAX_LAYERS 1024
#define VDX_CLIP_MAX_IMAGE_SIZE 4096
#define VDX_CLIP_MAX_GRID 256
#define VDX_CLIP_MAX_CHANNELS 16
#define VDX_CLIP_MAX_VOCAB (1 << 24)
#define VDX_CLIP_MAX_POSITIONS 65536

/* Parses config.json (limits above). A refusal names the file and the key. */
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

/* The arithmetic of the towers' matrix products (docs/clip-engine.md).
 * FP32: float32 throughout (the golden tolerances). BF16: weights held in bfloat16,
 * bf16 inputs to the products, float32 accumulation, LayerNorm/softmax/residual in
 * float32; needs AVX512_BF16 or AMX, else the model runs FP32 and says so once. INT8:
 * weights per output channel and activations per row quantised to int8, int32
 * accumulation, everything else float32. AUTO: the fastest precision this CPU runs
 * natively (INT8, then BF16 where native, then FP32; BF16 first with AMX) whose features
 * of the model being loaded stay within its fidelity floor of FP32's (cosine 0.99 for
 * INT8, 0.9995 for BF16), checked at load against a float32 copy on probe inputs. */
typedef enum vdx_precision {
    VDX_PRECISION_AUTO,
    VDX_PRECISION_FP32,
    VDX_PRECISION_BF16,
    VDX_PRECISION_INT8,
} vdx_precision;

/* "auto", "fp32", "bf16", "int8". */
const char *vdx_precision_name(vdx_precision precision);
/* Parses one of those names (VDX_ERR_INVALID naming the accepted ones otherwise). */
int vdx_precision_parse(const char *text, vdx_precision *out, vdx_error *err);
/* What a request runs as on this CPU: AUTO becomes the first precision it tries here
 * (the loaders may move on to the next when the model misses the floor), BF16 becomes
 * FP32 without native bf16 (*why, when not NULL, then says why; else NULL). */
vdx_precision vdx_precision_resolve(vdx_precision requested, const char **why);
/* $VDX_PRECISION when set and valid, else fallback (an invalid value is an error). */
int vdx_precision_from_env(vdx_precision fallback, vdx_precision *out, vdx_error *err);

/* A message for people the library does not print itself (the CLI writes it to stderr,
 * the server to its log). */
typedef void (*vdx_notice_fn)(const char *message, void *user);

typedef struct vdx_clip_options {
    vdx_precision image_precision, text_precision; /* 0 (AUTO) for image, see above */
    vdx_notice_fn notice;                           /* may be NULL */
    void *notice_user;
} vdx_clip_options;

/* Loads config.json, the weights (model.safetensors, else pytorch_model.bin),
 * the tokenizer and preprocessor_config.json from a model directory; both towers FP32. */
vdx_clip_model *vdx_clip_load(const char *model_dir, vdx_error *err);
/* The same with the towers' precisions (resolved with vdx_precision_resolve; AUTO
 * towers are checked against a float32 copy of the model, which costs one more load; a
 * fallback is reported through options->notice). */
vdx_clip_model *vdx_clip_load_with(const char *model_dir, const vdx_clip_options *options,
                                   vdx_error *err);
/* The precision each tower runs (never AUTO), and the oneDNN implementation its matrix
 * products use, e.g. "brg:avx512_core_bf16". */
vdx_precision vdx_clip_image_precision(const vdx_clip_model *model);
vdx_precision vdx_clip_text_precision(const vdx_clip_model *model);
const char *vdx_clip_image_isa(const vdx_clip_model *model);
void vdx_clip_free(vdx_clip_model *model);

/* Threads used by the towers, oneDNN and the store's scan (default: all cores; one
 * OpenMP pool). Process-wide. */
void vdx_clip_set_threads(int threads);
/* How many threads the towers run on now (what vdx_clip_set_threads set, else the cores). */
int vdx_clip_threads(void);

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
/* The same for n images that need not be contiguous: images[i] is image i's 3*S*S
 * floats. The results equal vdx_clip_embed_images' on the same images in the same order,
 * bit for bit; ingest hands its decoders' buffers over this way instead of copying them
 * into one batch. */
int vdx_clip_embed_image_list(const vdx_clip_model *model, const float *const *images, int n,
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
