/* The CLIP model: loads a Hugging Face checkpoint into plain float32 arrays and runs the
 * two towers exactly as transformers' CLIPModel.get_image_features / get_text_features
 * (docs/clip-model.md, "Forward pass"), llama2.c style: a config, a struct of weight
 * pointers per tower, per-call scratch, and one forward function per tower that reads
 * top to bottom. Every Linear layer is a oneDNN matmul (matmul.c) whose weights were
 * packed at load in the tower's precision; the rest is kernels.c.
 *
 * Vision runs images in batches of VISION_BATCH so that every Linear layer is one GEMM
 * over batch·tokens rows; text runs only the tokens up to the pooled end-of-text token,
 * which the causal mask makes exact. A loaded model is read-only but for one spare
 * vision scratch block it lends out (under a lock) and takes back, so that a batch's
 * ~46 MB is not mapped and faulted in afresh by every call; a call that finds it taken
 * allocates its own, so one model serves any number of threads. */
#include "vdx/clip.h"

#include <errno.h>
#include <openssl/evp.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clip/autoprecision.h"
#include "engine/kernels.h"
#include "engine/matmul.h"
#include "weights/modelfiles.h"
#include "weights/weights.h"

/* Images per pass through the vision tower: large enough for the GEMMs to run near
 * peak, small enough to bound scratch memory (about 1.5 MB per ViT-B/32 image). */
#define VISION_BATCH 32

/* Weights of one pre-LN encoder layer. The q, k and v projections are stacked into one
 * [3·dim][dim] matrix so that a single matmul computes all three. */
typedef struct layer_weights {
    float *norm1_w, *norm1_b;
    engine_matrix qkv;
    float *qkv_b;
    engine_matrix out;
    float *out_b;
    float *norm2_w, *norm2_b;
    engine_matrix fc1;
    float *fc1_b;
    engine_matrix fc2;
    float *fc2_b;
} layer_weights;

typedef struct tower_weights {
    engine_matrix patch_embedding; /* vision: [dim][channels·patch·patch] */
    float *class_embedding;    /* vision: [dim] */
    float *pre_norm_w, *pre_norm_b; /* vision: pre_layrnorm */
    float *token_embedding;    /* text: [vocab][dim] */
    float *position_embedding; /* [positions][dim] */
    layer_weights *layers;
    float *final_norm_w, *final_norm_b; /* vision post_layernorm, text final_layer_norm */
    float *projection;         /* [projection_dim][dim], float32 (the fingerprint's) */
    engine_matrix projection_matrix; /* the same, packed */
    vdx_precision precision;
} tower_weights;

/* A vision scratch block kept between calls (see the top of the file). */
typedef struct scratch_spare {
    pthread_mutex_t lock;
    float *block; /* NULL while lent out or before the first call */
    size_t floats;
} scratch_spare;

struct vdx_clip_model {
    vdx_clip_config config;
    vdx_preprocess_config preprocess;
    vdx_tokenizer *tokenizer;
    tower_weights vision, text;
    float *arena; /* the weights besides the packed matrices, float32 */
    size_t arena_floats;
    char name[256];
    char fingerprint[65];
    scratch_spare *spare; /* its own allocation: lent out by calls on a const model */
};

/* Per-call working memory of a tower pass over `rows` token rows. */
typedef struct scratch {
    float *h;   /* [rows][dim] residual stream */
    float *x;   /* [rows][dim] normalised input of a block, then attention output */
    float *qkv; /* [rows][3·dim] */
    float *mlp; /* [rows][max(intermediate, patch_len)] MLP hidden, vision im2col */
    float *block; /* the one allocation holding the four */
    size_t floats; /* its size */
} scratch;

static size_t round_up_floats(size_t n) { return (n + 15) & ~(size_t)15; }

/* Scratch for `rows` token rows: the spare block when it is free and large enough (spare
 * may be NULL), else a new one. */
static int scratch_alloc(scratch *s, size_t rows, size_t dim, size_t wide, scratch_spare *spare,
                         vdx_error *err)
{
    size_t h = round_up_floats(rows * dim), qkv = round_up_floats(rows * 3 * dim);
    size_t mlp = round_up_floats(rows * wide);
    size_t total = 2 * h + qkv + mlp;
    s->block = NULL;
    if (spare) {
        pthread_mutex_lock(&spare->lock);
        if (spare->block && spare->floats >= total) {
            s->block = spare->block;
            total = spare->floats;
            spare->block = NULL;
        }
        pthread_mutex_unlock(&spare->lock);
    }
    if (!s->block && !(s->block = aligned_alloc(64, total * sizeof(float))))
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory: %zu MB of scratch for %zu token rows",
                        total * sizeof(float) >> 20, rows);
    s->floats = total;
    s->h = s->block;
    s->x = s->h + h;
    s->qkv = s->x + h;
    s->mlp = s->qkv + qkv;
    return 0;
}

/* Gives the block back: kept as the spare when there is none or it is the larger. */
static void scratch_release(scratch *s, scratch_spare *spare)
{
    if (spare) {
        pthread_mutex_lock(&spare->lock);
        if (!spare->block || spare->floats < s->floats) {
            float *smaller = spare->block;
            spare->block = s->block;
            spare->floats = s->floats;
            s->block = smaller;
        }
        pthread_mutex_unlock(&spare->lock);
    }
    free(s->block);
    s->block = NULL;
}

/* ---- loading ------------------------------------------------------------------- */

/* Copies tensors out of a weight file into one 64-byte aligned arena. It runs twice:
 * first with arena == NULL to measure, then to fill. */
typedef struct weight_loader {
    const vdx_weights *file;
    float *arena;
    size_t used; /* floats */
    vdx_error *err;
    int failed;
    float *staging;        /* a Linear weight in float32 on its way to being packed */
    size_t staging_floats; /* the largest one, measured in the first pass */
    vdx_precision precision; /* of the tower being loaded */
} weight_loader;

static float *reserve(weight_loader *ld, size_t count)
{
    float *p = ld->arena ? ld->arena + ld->used : NULL;
    ld->used += round_up_floats(count);
    return p;
}

/* Fills dst (count floats) from tensor `name`, which must have the given shape. */
static void load_into(weight_loader *ld, float *dst, const char *name, int ndim,
                      const int64_t *shape)
{
    if (!ld->arena || ld->failed)
        return;
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= (size_t)shape[i];
    if (weights_get_f32(ld->file, name, dst, ndim, shape, ld->err) != 0 ||
        weights_check_finite(ld->file, name, dst, count, ld->err) != 0)
        ld->failed = 1;
    else {
        const vdx_tensor *t = weights_find(ld->file, name);
        weights_release_pages(ld->file, t->data, t->nbytes);
    }
}

static size_t shape_count(int ndim, const int64_t *shape)
{
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= (size_t)shape[i];
    return count;
}

static float *load_tensor(weight_loader *ld, const char *name, int ndim, const int64_t *shape)
{
    float *dst = reserve(ld, shape_count(ndim, shape));
    load_into(ld, dst, name, ndim, shape);
    return dst;
}

/* A Linear weight made of `parts` tensors of the same shape stacked along the rows
 * (q, k, v), packed for oneDNN; in float32 only briefly, in the staging buffer. */
static void load_matrix(weight_loader *ld, engine_matrix *dst, int parts, char names[][256],
                        int ndim, const int64_t *shape)
{
    size_t count = shape_count(ndim, shape);
    if (!ld->arena) {
        if ((size_t)parts * count > ld->staging_floats)
            ld->staging_floats = (size_t)parts * count;
        return;
    }
    for (int p = 0; p < parts; p++)
        load_into(ld, ld->staging + (size_t)p * count, names[p], ndim, shape);
    if (!ld->failed && engine_matrix_pack(dst, ld->staging, parts * (int)shape[0],
                                        (int)(count / (size_t)shape[0]), ld->precision,
                                        ld->err) != 0)
        ld->failed = 1;
}

static void load_linear(weight_loader *ld, engine_matrix *dst, const char *name, int64_t rows,
                        int64_t cols)
{
    char names[1][256];
    snprintf(names[0], sizeof names[0], "%s", name);
    load_matrix(ld, dst, 1, names, 2, (const int64_t[]){rows, cols});
}

static float *load_1d(weight_loader *ld, const char *name, int64_t n)
{
    return load_tensor(ld, name, 1, (const int64_t[]){n});
}

static float *load_2d(weight_loader *ld, const char *name, int64_t rows, int64_t cols)
{
    return load_tensor(ld, name, 2, (const int64_t[]){rows, cols});
}

static void load_layers(weight_loader *ld, const char *tower, const vdx_clip_tower_config *c,
                        layer_weights *layers)
{
    int64_t d = c->hidden_size, inter = c->intermediate_size;
    char name[256];
#define LAYER_TENSOR(suffix) (snprintf(name, sizeof name, "%s.encoder.layers.%d.%s", tower, i, suffix), name)
    for (int i = 0; i < c->num_layers; i++) {
        layer_weights *l = &layers[i];
        l->norm1_w = load_1d(ld, LAYER_TENSOR("layer_norm1.weight"), d);
        l->norm1_b = load_1d(ld, LAYER_TENSOR("layer_norm1.bias"), d);
        l->qkv_b = reserve(ld, (size_t)(3 * d));
        static const char *const proj[3] = {"q_proj", "k_proj", "v_proj"};
        char qkv_names[3][256];
        for (int p = 0; p < 3; p++)
            snprintf(qkv_names[p], sizeof qkv_names[p], "%s.encoder.layers.%d.self_attn.%s.weight",
                     tower, i, proj[p]);
        load_matrix(ld, &l->qkv, 3, qkv_names, 2, (const int64_t[]){d, d});
        for (int p = 0; p < 3; p++) {
            char suffix[64];
            snprintf(suffix, sizeof suffix, "self_attn.%s.bias", proj[p]);
            load_into(ld, l->qkv_b ? l->qkv_b + p * d : NULL, LAYER_TENSOR(suffix), 1,
                      (const int64_t[]){d});
        }
        load_linear(ld, &l->out, LAYER_TENSOR("self_attn.out_proj.weight"), d, d);
        l->out_b = load_1d(ld, LAYER_TENSOR("self_attn.out_proj.bias"), d);
        l->norm2_w = load_1d(ld, LAYER_TENSOR("layer_norm2.weight"), d);
        l->norm2_b = load_1d(ld, LAYER_TENSOR("layer_norm2.bias"), d);
        load_linear(ld, &l->fc1, LAYER_TENSOR("mlp.fc1.weight"), inter, d);
        l->fc1_b = load_1d(ld, LAYER_TENSOR("mlp.fc1.bias"), inter);
        load_linear(ld, &l->fc2, LAYER_TENSOR("mlp.fc2.weight"), d, inter);
        l->fc2_b = load_1d(ld, LAYER_TENSOR("mlp.fc2.bias"), d);
    }
#undef LAYER_TENSOR
}

static void load_vision(weight_loader *ld, const vdx_clip_config *cfg, tower_weights *t)
{
    const vdx_clip_tower_config *c = &cfg->vision;
    int64_t d = c->hidden_size, p = c->patch_size, grid = c->image_size / c->patch_size;
    char patch_name[1][256] = {"vision_model.embeddings.patch_embedding.weight"};
    load_matrix(ld, &t->patch_embedding, 1, patch_name, 4,
                (const int64_t[]){d, c->num_channels, p, p});
    t->class_embedding = load_1d(ld, "vision_model.embeddings.class_embedding", d);
    t->position_embedding =
        load_2d(ld, "vision_model.embeddings.position_embedding.weight", grid * grid + 1, d);
    t->pre_norm_w = load_1d(ld, "vision_model.pre_layrnorm.weight", d);
    t->pre_norm_b = load_1d(ld, "vision_model.pre_layrnorm.bias", d);
    load_layers(ld, "vision_model", c, t->layers);
    t->final_norm_w = load_1d(ld, "vision_model.post_layernorm.weight", d);
    t->final_norm_b = load_1d(ld, "vision_model.post_layernorm.bias", d);
    t->projection = load_2d(ld, "visual_projection.weight", cfg->projection_dim, d);
    if (ld->arena && !ld->failed &&
        engine_matrix_pack(&t->projection_matrix, t->projection, cfg->projection_dim, (int)d,
                         ld->precision, ld->err) != 0)
        ld->failed = 1;
}

static void load_text(weight_loader *ld, const vdx_clip_config *cfg, tower_weights *t)
{
    const vdx_clip_tower_config *c = &cfg->text;
    int64_t d = c->hidden_size;
    t->token_embedding =
        load_2d(ld, "text_model.embeddings.token_embedding.weight", c->vocab_size, d);
    t->position_embedding = load_2d(ld, "text_model.embeddings.position_embedding.weight",
                                    c->max_position_embeddings, d);
    load_layers(ld, "text_model", c, t->layers);
    t->final_norm_w = load_1d(ld, "text_model.final_layer_norm.weight", d);
    t->final_norm_b = load_1d(ld, "text_model.final_layer_norm.bias", d);
    t->projection = load_2d(ld, "text_projection.weight", cfg->projection_dim, d);
    if (ld->arena && !ld->failed &&
        engine_matrix_pack(&t->projection_matrix, t->projection, cfg->projection_dim, (int)d,
                         ld->precision, ld->err) != 0)
        ld->failed = 1;
}

static int load_weights(vdx_clip_model *m, const vdx_weights *file, vdx_error *err)
{
    const vdx_clip_config *cfg = &m->config;
    m->vision.layers = calloc((size_t)cfg->vision.num_layers, sizeof(layer_weights));
    m->text.layers = calloc((size_t)cfg->text.num_layers, sizeof(layer_weights));
    if (!m->vision.layers || !m->text.layers)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    weight_loader ld = {file, NULL, 0, err, 0, NULL, 0, VDX_PRECISION_FP32};
    load_vision(&ld, cfg, &m->vision);
    load_text(&ld, cfg, &m->text);
    m->arena_floats = ld.used;
    m->arena = aligned_alloc(64, ld.used * sizeof(float));
    ld.staging = malloc(ld.staging_floats * sizeof(float));
    if (!m->arena || !ld.staging) {
        free(ld.staging);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory: %zu MB for the float32 weights", file->path,
                        (ld.used + ld.staging_floats) * sizeof(float) >> 20);
    }
    ld.arena = m->arena;
    ld.used = 0;
    ld.precision = m->vision.precision;
    load_vision(&ld, cfg, &m->vision);
    ld.precision = m->text.precision;
    load_text(&ld, cfg, &m->text);
    free(ld.staging);
    return ld.failed ? -1 : 0;
}

/* sha256 over the architecture and the two projection matrices (clip.h), streamed in
 * small chunks: no large buffer, so the identity never depends on memory being free. The
 * one allocation (the digest context) failing is reported as out of memory. */
static int compute_fingerprint(vdx_clip_model *m, vdx_error *err)
{
    const vdx_clip_config *c = &m->config;
    const vdx_clip_tower_config *v = &c->vision, *t = &c->text;
    char arch[1024];
    int arch_len = snprintf(
        arch, sizeof arch,
        "vdx-clip-fingerprint-1 vision hidden=%d intermediate=%d heads=%d layers=%d "
        "quick_gelu=%d eps=%.17g image=%d patch=%d channels=%d; text hidden=%d "
        "intermediate=%d heads=%d layers=%d quick_gelu=%d eps=%.17g vocab=%d positions=%d; "
        "projection=%d\n",
        v->hidden_size, v->intermediate_size, v->num_heads, v->num_layers,
        v->hidden_act_quick_gelu, v->layer_norm_eps, v->image_size, v->patch_size,
        v->num_channels, t->hidden_size, t->intermediate_size, t->num_heads, t->num_layers,
        t->hidden_act_quick_gelu, t->layer_norm_eps, t->vocab_size,
        t->max_position_embeddings, c->projection_dim);
    size_t n_vision = (size_t)c->projection_dim * v->hidden_size;
    size_t n_text = (size_t)c->projection_dim * t->hidden_size;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return vdx_fail_oom(err, "computing the model fingerprint");
    }
    EVP_DigestUpdate(ctx, arch, (size_t)arch_len);
    const float *sources[2] = {m->vision.projection, m->text.projection};
    size_t counts[2] = {n_vision, n_text};
    uint8_t chunk[4096];
    size_t used = 0;
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < counts[s]; i++) {
            uint32_t bits;
            memcpy(&bits, &sources[s][i], 4);
            for (int b = 0; b < 4; b++)
                chunk[used++] = (uint8_t)(bits >> (8 * b)); /* little-endian on every host */
            if (used == sizeof chunk) {
                EVP_DigestUpdate(ctx, chunk, used);
                used = 0;
            }
        }
    EVP_DigestUpdate(ctx, chunk, used);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int ok = EVP_DigestFinal_ex(ctx, digest, &len) == 1 && len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return vdx_fail(err, "computing the model fingerprint: sha256 failed");
    for (unsigned int i = 0; i < len; i++)
        snprintf(m->fingerprint + 2 * i, 3, "%02x", digest[i]);
    return 0;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

vdx_clip_model *vdx_clip_load(const char *model_dir, vdx_error *err)
{
    vdx_clip_options fp32 = {VDX_PRECISION_FP32, VDX_PRECISION_FP32, NULL, NULL};
    return vdx_clip_load_with(model_dir, &fp32, err);
}

vdx_clip_model *vdx_clip_load_with(const char *model_dir, const vdx_clip_options *options,
                                   vdx_error *err)
{
    const char *why_image = NULL, *why_text = NULL;
    vdx_precision image = options->image_precision, text = options->text_precision;
    if (image != VDX_PRECISION_AUTO)
        image = vdx_precision_resolve(image, &why_image);
    if (text != VDX_PRECISION_AUTO)
        text = vdx_precision_resolve(text, &why_text);
    if (options->notice && (why_image || why_text))
        options->notice(why_image ? why_image : why_text, options->notice_user);
    if (image == VDX_PRECISION_AUTO || text == VDX_PRECISION_AUTO)
        return clip_load_auto(model_dir, image, text, options->notice, options->notice_user, err);
    return clip_load_resolved(model_dir, image, text, err);
}

vdx_clip_model *clip_load_resolved(const char *model_dir, vdx_precision image,
                                   vdx_precision text, vdx_error *err)
{
    vdx_clip_model *m = calloc(1, sizeof *m);
    if (m && !(m->spare = calloc(1, sizeof *m->spare))) {
        free(m);
        m = NULL;
    }
    if (m)
        pthread_mutex_init(&m->spare->lock, NULL);
    if (!m) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    m->vision.precision = image;
    m->text.precision = text;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    /* the sizes are range-checked there, before anything is allocated for them */
    if (vdx_clip_config_load(path, &m->config, err) != 0)
        goto fail;
    /* Every caller sizes its pixel buffers from the crop and the vision tower reads
     * num_channels x image_size² floats of each: they must be the same size. */
    snprintf(path, sizeof path, "%s/preprocessor_config.json", model_dir);
    if (vdx_preprocess_config_load(path, &m->preprocess, err) != 0)
        goto fail;
    const vdx_clip_tower_config *vision = &m->config.vision;
    if (m->preprocess.crop_width != vision->image_size ||
        m->preprocess.crop_height != vision->image_size || vision->num_channels != 3) {
        vdx_fail_kind(err, VDX_ERR_CORRUPT,
                      "%s: crops images to %dx%d, but config.json's vision_config takes "
                      "%dx%d images with %d channels (the crop must be image_size square, "
                      "RGB)", path, m->preprocess.crop_width, m->preprocess.crop_height,
                      vision->image_size, vision->image_size, vision->num_channels);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
    if (!file_exists(path))
        snprintf(path, sizeof path, "%s/pytorch_model.bin", model_dir);
    if (!file_exists(path)) {
        vdx_fail_kind(err, VDX_ERR_NOT_FOUND, "%s: no model.safetensors or pytorch_model.bin in this directory",
                 model_dir);
        goto fail;
    }
    vdx_weights *file = weights_open(path, err);
    if (!file)
        goto fail;
    int loaded = load_weights(m, file, err);
    weights_close(file);
    if (loaded != 0)
        goto fail;
    if (compute_fingerprint(m, err) != 0)
        goto fail;
    if (!(m->tokenizer = vdx_tokenizer_load(model_dir, err)))
        goto fail;
    weights_model_name(model_dir, m->name, sizeof m->name);
    return m;
fail:
    vdx_clip_free(m);
    return NULL;
}

void vdx_clip_free(vdx_clip_model *m)
{
    if (!m)
        return;
    vdx_tokenizer_free(m->tokenizer);
    tower_weights *towers[2] = {&m->vision, &m->text};
    int layers[2] = {m->config.vision.num_layers, m->config.text.num_layers};
    for (int t = 0; t < 2; t++) {
        for (int i = 0; towers[t]->layers && i < layers[t]; i++) {
            engine_matrix_free(&towers[t]->layers[i].qkv);
            engine_matrix_free(&towers[t]->layers[i].out);
            engine_matrix_free(&towers[t]->layers[i].fc1);
            engine_matrix_free(&towers[t]->layers[i].fc2);
        }
        engine_matrix_free(&towers[t]->projection_matrix);
    }
    engine_matrix_free(&m->vision.patch_embedding);
    free(m->vision.layers);
    free(m->text.layers);
    free(m->arena);
    if (m->spare) {
        pthread_mutex_destroy(&m->spare->lock);
        free(m->spare->block);
        free(m->spare);
    }
    free(m);
}

void vdx_clip_identity(const vdx_clip_model *m, vdx_model_identity *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", m->name);
    snprintf(out->config_hash, sizeof out->config_hash, "%s", m->fingerprint);
    out->dims = m->config.projection_dim;
}

void vdx_clip_set_threads(int threads) { engine_set_threads(threads); }

int vdx_clip_threads(void) { return engine_threads(); }

vdx_precision vdx_clip_image_precision(const vdx_clip_model *m) { return m->vision.precision; }
vdx_precision vdx_clip_text_precision(const vdx_clip_model *m) { return m->text.precision; }
const char *vdx_clip_image_isa(const vdx_clip_model *m)
{
    return engine_matmul_isa(m->vision.precision);
}

const vdx_clip_config *vdx_clip_get_config(const vdx_clip_model *m) { return &m->config; }
const vdx_preprocess_config *vdx_clip_get_preprocess(const vdx_clip_model *m)
{
    return &m->preprocess;
}
const vdx_tokenizer *vdx_clip_get_tokenizer(const vdx_clip_model *m) { return m->tokenizer; }
int vdx_clip_embed_dim(const vdx_clip_model *m) { return m->config.projection_dim; }
const char *vdx_clip_model_name(const vdx_clip_model *m) { return m->name; }
const char *vdx_clip_config_hash(const vdx_clip_model *m) { return m->fingerprint; }

/* ---- forward ------------------------------------------------------------------- */

/* One pre-LN encoder layer over s->h ([n_seq·seq_len][dim]), in place:
 * h += out_proj(attention(layer_norm1(h))); h += fc2(act(fc1(layer_norm2(h)))).
 * With pooled >= 0 (the last layer) only the row each sequence is pooled at goes on past
 * the attention's keys and values: s->h is left holding those rows, [n_seq][dim]. Every
 * other row of the last layer's output is thrown away by the pooling, and skipping them
 * saves a twelfth of a pass's multiply-adds, not one of which the pooled rows depend on. */
static int encoder_layer(const layer_weights *l, const vdx_clip_tower_config *c, scratch *s,
                         int n_seq, int seq_len, int causal, int pooled, vdx_error *err)
{
    int rows = n_seq * seq_len, d = c->hidden_size, inter = c->intermediate_size;
    engine_activation act = c->hidden_act_quick_gelu ? ENGINE_ACT_QUICK_GELU : ENGINE_ACT_GELU;
    engine_layer_norm(s->x, s->h, l->norm1_w, l->norm1_b, rows, d, c->layer_norm_eps);
    if (engine_matmul(s->qkv, s->x, &l->qkv, l->qkv_b, rows, 0, err) != 0)
        return -1;
    if (engine_attention(s->x, s->qkv, n_seq, seq_len, d, c->num_heads, causal, pooled) != 0)
        return vdx_fail_oom(err, "for attention scores");
    if (pooled >= 0) { /* the residual rows that go on, packed (row i moves down to i) */
        rows = n_seq;
        for (int i = 0; i < n_seq; i++)
            memmove(s->h + (size_t)i * d, s->h + ((size_t)i * seq_len + pooled) * d,
                    (size_t)d * sizeof(float));
    }
    if (engine_matmul(s->h, s->x, &l->out, l->out_b, rows, 1, err) != 0)
        return -1;
    engine_layer_norm(s->x, s->h, l->norm2_w, l->norm2_b, rows, d, c->layer_norm_eps);
    if (engine_matmul(s->mlp, s->x, &l->fc1, NULL, rows, 0, err) != 0)
        return -1;
    engine_bias_activation(s->mlp, l->fc1_b, rows, inter, act);
    return engine_matmul(s->h, s->mlp, &l->fc2, l->fc2_b, rows, 1, err);
}

/* Vision tower on n images (images[i]: channels·size·size floats) → out [n][projection_dim]. */
static int vision_forward(const vdx_clip_model *m, const float *const *images, int n,
                          float *out, scratch *s, vdx_error *err)
{
    const vdx_clip_tower_config *c = &m->config.vision;
    const tower_weights *w = &m->vision;
    int d = c->hidden_size, p = c->patch_size, size = c->image_size, ch = c->num_channels;
    int grid = size / p, patches = grid * grid, tokens = patches + 1;
    int patch_len = ch * p * p;

    /* Patch convolution as a GEMM: gather each patch into a row (c, ky, kx order, the
     * layout of the [dim][c][ky][kx] kernel), then rows · kernelᵀ. */
    for (int img = 0; img < n; img++)
        for (int gy = 0; gy < grid; gy++)
            for (int gx = 0; gx < grid; gx++) {
                float *row = s->mlp + ((size_t)img * patches + gy * grid + gx) * patch_len;
                for (int k = 0; k < ch; k++)
                    for (int ky = 0; ky < p; ky++)
                        memcpy(row + (k * p + ky) * p,
                               images[img] + ((size_t)k * size + gy * p + ky) * size + gx * p,
                               (size_t)p * sizeof(float));
            }
    if (engine_matmul(s->x, s->mlp, &w->patch_embedding, NULL, n * patches, 0, err) != 0)
        return -1;

    /* Tokens: class embedding, then the patches; plus position embeddings. */
    for (int img = 0; img < n; img++) {
        float *h = s->h + (size_t)img * tokens * d;
        for (int i = 0; i < d; i++)
            h[i] = w->class_embedding[i] + w->position_embedding[i];
        for (int t = 1; t < tokens; t++) {
            const float *patch = s->x + ((size_t)img * patches + t - 1) * d;
            const float *pos = w->position_embedding + (size_t)t * d;
            for (int i = 0; i < d; i++)
                h[(size_t)t * d + i] = patch[i] + pos[i];
        }
    }
    int rows = n * tokens;
    engine_layer_norm(s->h, s->h, w->pre_norm_w, w->pre_norm_b, rows, d, c->layer_norm_eps);

    /* The last layer carries on the class token of each image only (the pooled row). */
    for (int l = 0; l < c->num_layers; l++)
        if (encoder_layer(&w->layers[l], c, s, n, tokens, 0, l == c->num_layers - 1 ? 0 : -1,
                          err) != 0)
            return vdx_error_prefix(err, "vision tower");

    /* The class tokens (s->h [n][dim]): post_layernorm, project. */
    engine_layer_norm(s->x, s->h, w->final_norm_w, w->final_norm_b, n, d, c->layer_norm_eps);
    return engine_matmul(out, s->x, &w->projection_matrix, NULL, n, 0, err);
}

int vdx_clip_embed_image_list(const vdx_clip_model *m, const float *const *images, int n,
                              float *out, vdx_error *err)
{
    if (n < 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "embed images: negative image count %d", n);
    if (n == 0)
        return 0;
    for (int i = 0; i < n; i++)
        if (!images[i])
            return vdx_fail_kind(err, VDX_ERR_INVALID, "embed images: image %d of %d is NULL",
                                 i, n);
    const vdx_clip_tower_config *c = &m->config.vision;
    int grid = c->image_size / c->patch_size, tokens = grid * grid + 1;
    engine_enter();
    int batch = n < VISION_BATCH ? n : VISION_BATCH;
    size_t patch_len = (size_t)c->num_channels * c->patch_size * c->patch_size;
    size_t wide = (size_t)c->intermediate_size > patch_len ? (size_t)c->intermediate_size
                                                            : patch_len;
    scratch s;
    if (scratch_alloc(&s, (size_t)batch * tokens, (size_t)c->hidden_size, wide, m->spare,
                      err) != 0)
        return -1;
    int rc = 0;
    for (int first = 0; first < n && rc == 0; first += batch) {
        int count = n - first < batch ? n - first : batch;
        rc = vision_forward(m, images + first, count,
                            out + (size_t)first * m->config.projection_dim, &s, err);
    }
    scratch_release(&s, m->spare);
    return rc;
}

int vdx_clip_embed_images(const vdx_clip_model *m, const float *pixel_values, int n,
                          float *out, vdx_error *err)
{
    if (n < 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "embed images: negative image count %d", n);
    if (n == 0)
        return 0;
    const vdx_clip_tower_config *c = &m->config.vision;
    size_t image_floats = (size_t)c->num_channels * c->image_size * c->image_size;
    const float **images = malloc((size_t)n * sizeof *images);
    if (!images)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "embed images: out of memory for %d images",
                             n);
    for (int i = 0; i < n; i++)
        images[i] = pixel_values + (size_t)i * image_floats;
    int rc = vdx_clip_embed_image_list(m, images, n, out, err);
    free(images);
    return rc;
}

int vdx_clip_embed_tokens(const vdx_clip_model *m, const int32_t *ids, int n_ids, float *out,
                          vdx_error *err)
{
    const vdx_clip_tower_config *c = &m->config.text;
    const tower_weights *w = &m->text;
    int d = c->hidden_size;
    if (n_ids < 1 || n_ids > c->max_position_embeddings)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "embed tokens: %d token ids, expected 1 to %d", n_ids,
                        c->max_position_embeddings);
    /* transformers pools at argmax(ids): the first end-of-text token (49407, the
     * largest id) for every tokenizer output. */
    int pool = 0;
    for (int i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "embed tokens: token %d is id %d, outside the vocabulary "
                            "(0 to %d)", i, (int)ids[i], c->vocab_size - 1);
        if (ids[i] > ids[pool])
            pool = i;
    }
    /* The causal mask keeps tokens after the pooled one from changing it: skip them. */
    int tokens = pool + 1;
    scratch s;
    if (scratch_alloc(&s, (size_t)tokens, (size_t)d, (size_t)c->intermediate_size, NULL,
                      err) != 0)
        return -1;
    for (int t = 0; t < tokens; t++) {
        const float *tok = w->token_embedding + (size_t)ids[t] * d;
        const float *pos = w->position_embedding + (size_t)t * d;
        for (int i = 0; i < d; i++)
            s.h[(size_t)t * d + i] = tok[i] + pos[i];
    }
    int rc = 0;
    engine_enter();
    for (int l = 0; l < c->num_layers && rc == 0; l++)
        if (encoder_layer(&w->layers[l], c, &s, 1, tokens, 1, l == c->num_layers - 1 ? pool : -1,
                          err) != 0)
            rc = vdx_error_prefix(err, "text tower");
    if (rc == 0) { /* the last layer left the pooled row alone in s.h */
        engine_layer_norm(s.x, s.h, w->final_norm_w, w->final_norm_b, 1, d, c->layer_norm_eps);
        rc = engine_matmul(out, s.x, &w->projection_matrix, NULL, 1, 0, err);
    }
    scratch_release(&s, NULL);
    return rc;
}

int vdx_clip_embed_text(const vdx_clip_model *m, const char *text, float *out,
                        int *truncated, vdx_error *err)
{
    int max_len = m->config.text.max_position_embeddings;
    int32_t *ids = malloc((size_t)max_len * sizeof *ids);
    if (!ids)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    int n_ids = 0, cut = 0;
    int rc = vdx_tokenizer_encode(m->tokenizer, text, max_len, ids, &n_ids, &cut, err);
    if (rc == 0)
        rc = vdx_clip_embed_tokens(m, ids, n_ids, out, err);
    free(ids);
    if (truncated)
        *truncated = cut;
    return rc;
}

void vdx_l2_normalize(float *v, int n)
{
    double squares = 0;
    for (int i = 0; i < n; i++)
        squares += (double)v[i] * v[i];
    if (squares <= 0)
        return;
    double inv = 1.0 / sqrt(squares);
    for (int i = 0; i < n; i++)
        v[i] = (float)(v[i] * inv);
}
