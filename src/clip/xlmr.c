/* The M-CLIP text tower: XLM-RoBERTa + mean pooling + LinearTransformation, exactly as
 * MultilingualCLIP.forward over transformers' XLMRobertaModel (docs/mclip.md), llama2.c
 * style like model.c: a config (config.json is read by mclip_config.c), a struct of
 * weight pointers, one forward function that reads top to bottom. The kernels are
 * model.c's (clip/kernels.h, clip/matmul.h); the weights come from the shared readers
 * (clip/weights.h) through the arena of clip/modelfiles.h; every Linear weight is packed
 * once for oneDNN in the model's precision (the packed copy replaces the mapped one in
 * memory: its source pages are released after packing).
 *
 *   positions  p_t = cumsum(id ≠ 1)·(id ≠ 1) + 1       (real tokens 2, 3, ...; <pad> 1)
 *   embeddings x = LN((word[id] + type[0]) + pos[p])     eps 1e-5
 *   each layer (post-LN):  y = LN(attn(x)·Woᵀ + bo + x);  x = LN(gelu(y·Wiᵀ + bi)·Wo2ᵀ + bo2 + y)
 *   pooled     mean of x over the real tokens (<s> and </s> included)
 *   out        pooled·LTᵀ + b
 *
 * Memory: every tensor the file stores as float32 is used in place — the mapped
 * safetensors file, or the torch archive's storage buffers — and the weight file stays
 * open; only other dtypes are converted into the arena. So the weights are in memory once
 * (peak RSS while loading ≈ 1× the file for a torch archive, only the pages touched for
 * safetensors), and the word table (250002 × 1024 for XLM-R Large, 1 GB in float32),
 * which is only gathered a row per token, is never read beyond the rows prompts use. */
#include "vdx/mclip.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "clip/autoprecision.h"
#include "clip/mclip_config.h"
#include "common/text.h"
#include "engine/kernels.h"
#include "engine/matmul.h"
#include "weights/modelfiles.h"
#include "weights/weights.h"

#define PAD_ID 1
#define PREFIX "transformer."

typedef struct xlmr_layer {
    const float *qkv_w[3], *qkv_b[3]; /* query, key, value: [H][H], [H] each */
    engine_matrix qkv;                  /* the three stacked, packed: [3H][H] */
    float *qkv_bias;                  /* [3H] */
    const float *out_w, *out_b;       /* attention.output.dense */
    const float *ln1_w, *ln1_b;       /* attention.output.LayerNorm */
    const float *inter_w, *inter_b;
    const float *ffn_w, *ffn_b;       /* output.dense */
    engine_matrix out, inter, ffn;      /* packed */
    const float *ln2_w, *ln2_b;       /* output.LayerNorm */
} xlmr_layer;

struct vdx_mclip_model {
    vdx_mclip_config config;
    vdx_spm *tokenizer;
    const float *word, *position, *token_type, *emb_ln_w, *emb_ln_b;
    xlmr_layer *layers;
    const float *proj_w, *proj_b; /* LinearTransformation */
    engine_matrix proj;
    vdx_precision precision;
    float *arena;                 /* the weights not stored as float32 */
    size_t arena_floats, in_place_bytes;
    vdx_weights *file;            /* kept open while weights point into it */
    char name[256];
};

/* ---- loading ------------------------------------------------------------------- */

int vdx_mclip_is_model_dir(const char *model_dir)
{
    char path[4096], *text;
    size_t size;
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    if (vdx_read_file(path, &text, &size, NULL) != 0)
        return 0;
    cJSON *json = cJSON_Parse(text);
    free(text);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(json, "model_type");
    int yes = cJSON_IsString(type) && strcmp(type->valuestring, "M-CLIP") == 0;
    cJSON_Delete(json);
    return yes;
}

static const vdx_tensor *need_tensor(const vdx_weights *w, const char *name, int ndim,
                                     vdx_error *err)
{
    const vdx_tensor *t = weights_find(w, name);
    if (!t)
        vdx_fail(err, "%s: tensor '%s' not found: not an M-CLIP checkpoint", w->path, name);
    else if (t->ndim != ndim)
        vdx_fail(err, "%s: tensor '%s' has %d dimensions, expected %d", w->path, name, t->ndim,
                 ndim);
    else
        return t;
    return NULL;
}

/* The encoder's sizes from the tensor shapes (the hub config.json names none). */
static int read_shapes(const vdx_weights *w, vdx_mclip_config *c, const mclip_declared *d,
                       vdx_error *err)
{
    const vdx_tensor *word = need_tensor(w, PREFIX "embeddings.word_embeddings.weight", 2, err);
    const vdx_tensor *pos = word ? need_tensor(w, PREFIX "embeddings.position_embeddings.weight",
                                               2, err) : NULL;
    const vdx_tensor *inter = pos ? need_tensor(w, PREFIX "encoder.layer.0.intermediate.dense."
                                                "weight", 2, err) : NULL;
    const vdx_tensor *proj = inter ? need_tensor(w, "LinearTransformation.weight", 2, err) : NULL;
    if (!proj)
        return -1;
    /* the limits of config.json's sizes (mclip_config.c), those of CLIP (vdx/clip.h) */
    if (word->shape[0] < 4 || word->shape[0] > VDX_CLIP_MAX_VOCAB || word->shape[1] < 1 ||
        word->shape[1] > VDX_CLIP_MAX_WIDTH || pos->shape[0] < 3 ||
        pos->shape[0] > VDX_CLIP_MAX_POSITIONS || inter->shape[0] < 1 ||
        inter->shape[0] > VDX_CLIP_MAX_WIDTH || proj->shape[0] < 1 ||
        proj->shape[0] > VDX_CLIP_MAX_WIDTH)
        return vdx_fail(err, "%s: unusable tensor shapes (word_embeddings %lldx%lld, "
                        "position_embeddings %lld rows, intermediate %lld, "
                        "LinearTransformation %lld)", w->path, (long long)word->shape[0],
                        (long long)word->shape[1], (long long)pos->shape[0],
                        (long long)inter->shape[0], (long long)proj->shape[0]);
    c->vocab_size = (int)word->shape[0];
    c->hidden_size = (int)word->shape[1];
    c->max_position_embeddings = (int)pos->shape[0];
    c->intermediate_size = (int)inter->shape[0];
    c->num_dims = (int)proj->shape[0];
    c->num_layers = 0;
    const char *layer_prefix = PREFIX "encoder.layer.";
    size_t plen = strlen(layer_prefix);
    for (size_t i = 0; i < w->count; i++) {
        const char *name = w->tensors[i].name;
        if (strncmp(name, layer_prefix, plen) != 0)
            continue;
        char *end;
        long index = strtol(name + plen, &end, 10);
        if (end == name + plen || *end != '.' || index < 0)
            continue;
        if (index >= VDX_CLIP_MAX_LAYERS)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%.*s': at most %d encoder "
                                 "layers are supported", w->path,
                                 (int)utf8_prefix(name, strlen(name), 64), name,
                                 VDX_CLIP_MAX_LAYERS);
        if (index + 1 > c->num_layers)
            c->num_layers = (int)index + 1;
    }
    if (d->width && d->width != c->hidden_size)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: config.json's transformerDimensions "
                             "is %d, but word_embeddings is %d wide", w->path, d->width,
                             c->hidden_size);
    if (d->dims && d->dims != c->num_dims)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: config.json's numDims is %d, but "
                             "LinearTransformation gives %d", w->path, d->dims, c->num_dims);
    const struct {
        const char *key, *what;
        int declared, found;
    } sizes[] = {
        {"num_hidden_layers", "encoder layers (encoder.layer.N)", d->layers, c->num_layers},
        {"hidden_size", "columns of word_embeddings", d->hidden, c->hidden_size},
        {"vocab_size", "rows of word_embeddings", d->vocab, c->vocab_size},
        {"max_position_embeddings", "rows of position_embeddings", d->positions,
         c->max_position_embeddings},
        {"intermediate_size", "rows of layer 0's intermediate.dense", d->intermediate,
         c->intermediate_size},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].declared && sizes[i].declared != sizes[i].found)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                                 "%s: config.json's modelBaseConfig.%s is %d, but the "
                                 "checkpoint has %d %s", w->path, sizes[i].key,
                                 sizes[i].declared, sizes[i].found, sizes[i].what);
    if (c->hidden_size % c->num_heads != 0)
        return vdx_fail(err, "%s: hidden size %d is not a multiple of %d heads", w->path,
                        c->hidden_size, c->num_heads);
    return 0;
}

/* A float32 tensor at a 4-byte aligned address is used in place (its shape checked);
 * anything else is converted into the arena, which also reports a missing tensor or a
 * wrong shape by name. */
static const float *weight(weights_arena *a, size_t *in_place, const char *name, int ndim,
                           const int64_t *shape)
{
    const vdx_tensor *t = weights_find(a->file, name);
    int same = t && t->dtype == VDX_DTYPE_F32 && (uintptr_t)t->data % sizeof(float) == 0 &&
               t->ndim == ndim;
    size_t count = 1;
    for (int i = 0; same && i < ndim; i++) {
        same = t->shape[i] == shape[i];
        count *= (size_t)shape[i];
    }
    if (!same)
        return weights_arena_tensor(a, name, ndim, shape);
    if (a->base) /* count each tensor once: in the filling pass */
        *in_place += count * sizeof(float);
    return t->data;
}

static void load_all(weights_arena *a, vdx_mclip_model *m)
{
    const vdx_mclip_config *c = &m->config;
    int64_t H = c->hidden_size, I = c->intermediate_size, E = c->num_dims;
    size_t *n = &m->in_place_bytes;
#define W2(name, r, k) weight(a, n, name, 2, (const int64_t[]){r, k})
#define W1(name, r) weight(a, n, name, 1, (const int64_t[]){r})
    m->word = W2(PREFIX "embeddings.word_embeddings.weight", c->vocab_size, H);
    m->position = W2(PREFIX "embeddings.position_embeddings.weight",
                     c->max_position_embeddings, H);
    m->token_type = W2(PREFIX "embeddings.token_type_embeddings.weight", 1, H);
    m->emb_ln_w = W1(PREFIX "embeddings.LayerNorm.weight", H);
    m->emb_ln_b = W1(PREFIX "embeddings.LayerNorm.bias", H);
    char name[256];
    for (int i = 0; i < c->num_layers; i++) {
        xlmr_layer *l = &m->layers[i];
#define T(suffix) (snprintf(name, sizeof name, PREFIX "encoder.layer.%d.%s", i, suffix), name)
        static const char *const proj[3][2] = {
            {"attention.self.query.weight", "attention.self.query.bias"},
            {"attention.self.key.weight", "attention.self.key.bias"},
            {"attention.self.value.weight", "attention.self.value.bias"}};
        for (int p = 0; p < 3; p++) {
            l->qkv_w[p] = W2(T(proj[p][0]), H, H);
            l->qkv_b[p] = W1(T(proj[p][1]), H);
        }
        l->out_w = W2(T("attention.output.dense.weight"), H, H);
        l->out_b = W1(T("attention.output.dense.bias"), H);
        l->ln1_w = W1(T("attention.output.LayerNorm.weight"), H);
        l->ln1_b = W1(T("attention.output.LayerNorm.bias"), H);
        l->inter_w = W2(T("intermediate.dense.weight"), I, H);
        l->inter_b = W1(T("intermediate.dense.bias"), I);
        l->ffn_w = W2(T("output.dense.weight"), H, I);
        l->ffn_b = W1(T("output.dense.bias"), H);
        l->ln2_w = W1(T("output.LayerNorm.weight"), H);
        l->ln2_b = W1(T("output.LayerNorm.bias"), H);
#undef T
    }
    m->proj_w = W2("LinearTransformation.weight", E, H);
    m->proj_b = W1("LinearTransformation.bias", E);
#undef W1
#undef W2
}

static int pack(const vdx_weights *file, engine_matrix *dst, const float *src, int n, int k,
                vdx_precision precision, vdx_error *err)
{
    if (engine_matrix_pack(dst, src, n, k, precision, err) != 0)
        return -1;
    weights_release_pages(file, src, (size_t)n * k * sizeof *src);
    return 0;
}

/* Packs every Linear weight for oneDNN (q, k, v stacked, their biases side by side). */
static int pack_all(vdx_mclip_model *m, vdx_error *err)
{
    const vdx_mclip_config *c = &m->config;
    int H = c->hidden_size, I = c->intermediate_size;
    vdx_precision p = m->precision;
    float *stack = malloc((size_t)3 * H * H * sizeof *stack);
    if (!stack)
        return vdx_fail_oom(err, "packing the M-CLIP weights");
    int rc = 0;
    for (int i = 0; i < c->num_layers && rc == 0; i++) {
        xlmr_layer *l = &m->layers[i];
        l->qkv_bias = malloc((size_t)3 * H * sizeof *l->qkv_bias);
        if (!l->qkv_bias) {
            rc = vdx_fail_oom(err, "packing the M-CLIP weights");
            break;
        }
        for (int q = 0; q < 3; q++) {
            memcpy(stack + (size_t)q * H * H, l->qkv_w[q], (size_t)H * H * sizeof *stack);
            memcpy(l->qkv_bias + (size_t)q * H, l->qkv_b[q], (size_t)H * sizeof *stack);
            weights_release_pages(m->file, l->qkv_w[q], (size_t)H * H * sizeof *stack);
        }
        if (engine_matrix_pack(&l->qkv, stack, 3 * H, H, p, err) != 0 ||
            pack(m->file, &l->out, l->out_w, H, H, p, err) != 0 ||
            pack(m->file, &l->inter, l->inter_w, I, H, p, err) != 0 ||
            pack(m->file, &l->ffn, l->ffn_w, H, I, p, err) != 0)
            rc = -1;
    }
    free(stack);
    if (rc == 0)
        rc = pack(m->file, &m->proj, m->proj_w, c->num_dims, H, p, err);
    return rc;
}

vdx_mclip_model *vdx_mclip_load(const char *model_dir, vdx_error *err)
{
    return vdx_mclip_load_precision(model_dir, VDX_PRECISION_FP32, err);
}

vdx_mclip_model *vdx_mclip_load_precision(const char *model_dir, vdx_precision precision,
                                          vdx_error *err)
{
    if (precision == VDX_PRECISION_AUTO)
        return mclip_load_auto(model_dir, NULL, NULL, err);
    vdx_mclip_model *m = calloc(1, sizeof *m);
    if (!m) {
        vdx_fail(err, "out of memory");
        return NULL;
    }
    m->precision = vdx_precision_resolve(precision, NULL);
    mclip_declared declared;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    if (mclip_config_load(path, &m->config, &declared, err) != 0 ||
        weights_find_file(model_dir, path, sizeof path, err) != 0 ||
        !(m->file = weights_open(path, err)) ||
        read_shapes(m->file, &m->config, &declared, err) != 0)
        goto fail;
    vdx_mclip_config *c = &m->config;
    if (!(m->layers = calloc((size_t)c->num_layers, sizeof *m->layers))) {
        vdx_fail(err, "out of memory");
        goto fail;
    }
    weights_arena a = {m->file, NULL, 0, err, 0};
    load_all(&a, m);
    if (weights_arena_alloc(&a) != 0)
        goto fail;
    m->arena = a.base;
    load_all(&a, m);
    m->arena_floats = a.used;
    if (a.failed || pack_all(m, err) != 0)
        goto fail;
    if (m->in_place_bytes == 0) { /* nothing points into the file: let it go */
        weights_close(m->file);
        m->file = NULL;
    }
    snprintf(path, sizeof path, "%s/sentencepiece.bpe.model", model_dir);
    if (!(m->tokenizer = vdx_spm_load(path, err)))
        goto fail;
    if (vdx_spm_vocab_size(m->tokenizer) > c->vocab_size) {
        vdx_fail(err, "%s: the tokenizer has %d ids but the word table only %d rows", path,
                 vdx_spm_vocab_size(m->tokenizer), c->vocab_size);
        goto fail;
    }
    weights_model_name(model_dir, m->name, sizeof m->name);
    return m;
fail:
    vdx_mclip_free(m);
    return NULL;
}

void vdx_mclip_free(vdx_mclip_model *m)
{
    if (!m)
        return;
    vdx_spm_free(m->tokenizer);
    weights_close(m->file);
    for (int i = 0; m->layers && i < m->config.num_layers; i++) {
        engine_matrix_free(&m->layers[i].qkv);
        engine_matrix_free(&m->layers[i].out);
        engine_matrix_free(&m->layers[i].inter);
        engine_matrix_free(&m->layers[i].ffn);
        free(m->layers[i].qkv_bias);
    }
    engine_matrix_free(&m->proj);
    free(m->layers);
    free(m->arena);
    free(m);
}

const vdx_mclip_config *vdx_mclip_get_config(const vdx_mclip_model *m) { return &m->config; }
const vdx_spm *vdx_mclip_get_tokenizer(const vdx_mclip_model *m) { return m->tokenizer; }
int vdx_mclip_embed_dim(const vdx_mclip_model *m) { return m->config.num_dims; }
const char *vdx_mclip_model_name(const vdx_mclip_model *m) { return m->name; }

size_t vdx_mclip_weight_bytes(const vdx_mclip_model *m)
{
    return m->arena_floats * sizeof(float) + m->in_place_bytes;
}

/* ---- forward ------------------------------------------------------------------- */

/* Working memory of a pass over `rows` token rows. */
typedef struct scratch {
    float *h;   /* [rows][H] residual stream */
    float *x;   /* [rows][H] attention output */
    float *qkv; /* [rows][3H]: q, k, v of each token side by side (engine_attention's layout) */
    float *mlp; /* [rows][I] */
    float *block;
} scratch;

static int scratch_alloc(scratch *s, size_t rows, const vdx_mclip_config *c, vdx_error *err)
{
    size_t H = (size_t)c->hidden_size, round = 16;
    size_t h = (rows * H + round - 1) / round * round, qkv = 3 * h;
    size_t mlp = (rows * (size_t)c->intermediate_size + round - 1) / round * round;
    s->block = aligned_alloc(64, (2 * h + qkv + mlp) * sizeof(float));
    if (!s->block)
        return vdx_fail(err, "out of memory: scratch for %zu token rows", rows);
    s->h = s->block;
    s->x = s->h + h;
    s->qkv = s->x + h;
    s->mlp = s->qkv + qkv;
    return 0;
}

/* Validates ids and computes transformers' positions for n_seq rows of seq_len ids. */
static int embed(const vdx_mclip_model *m, const int32_t *ids, int n_seq, int seq_len,
                 float *h, vdx_error *err)
{
    const vdx_mclip_config *c = &m->config;
    int H = c->hidden_size;
    for (int s = 0; s < n_seq; s++) {
        int real = 0;
        for (int t = 0; t < seq_len; t++) {
            int32_t id = ids[(size_t)s * seq_len + t];
            if (id < 0 || id >= c->vocab_size)
                return vdx_fail(err, "M-CLIP: sequence %d token %d is id %d, outside the "
                                "vocabulary (0 to %d)", s, t, (int)id, c->vocab_size - 1);
            int pos = id != PAD_ID ? ++real + PAD_ID : PAD_ID;
            if (pos >= c->max_position_embeddings)
                return vdx_fail(err, "M-CLIP: sequence %d has more than %d tokens", s,
                                c->max_position_embeddings - 2);
            const float *w = m->word + (size_t)id * H, *p = m->position + (size_t)pos * H;
            float *row = h + ((size_t)s * seq_len + t) * H;
            for (int i = 0; i < H; i++)
                row[i] = (w[i] + m->token_type[i]) + p[i];
        }
    }
    engine_layer_norm(h, h, m->emb_ln_w, m->emb_ln_b, n_seq * seq_len, H, c->layer_norm_eps);
    return 0;
}

/* One post-LN layer over s->h in place. lengths[s] real tokens start each sequence; keys
 * past them (padding) are masked out by running attention over the real rows only. */
static int layer(const vdx_mclip_model *m, const xlmr_layer *l, scratch *s, int n_seq,
                 int seq_len, const int *lengths, vdx_error *err)
{
    const vdx_mclip_config *c = &m->config;
    int H = c->hidden_size, I = c->intermediate_size, rows = n_seq * seq_len;
    double eps = c->layer_norm_eps;
    if (engine_matmul(s->qkv, s->h, &l->qkv, l->qkv_bias, rows, 0, err) != 0)
        return -1;
    if (lengths)
        memset(s->x, 0, (size_t)rows * H * sizeof(float));
    for (int q = 0; q < n_seq; q++) {
        int n = lengths ? lengths[q] : seq_len;
        if (engine_attention(s->x + (size_t)q * seq_len * H, s->qkv + (size_t)q * seq_len * 3 * H,
                           1, n, H, c->num_heads, 0, -1) != 0)
            return vdx_fail_oom(err, "M-CLIP: for attention scores");
    }
    if (engine_matmul(s->h, s->x, &l->out, l->out_b, rows, 1, err) != 0)
        return -1;
    engine_layer_norm(s->h, s->h, l->ln1_w, l->ln1_b, rows, H, eps);
    if (engine_matmul(s->mlp, s->h, &l->inter, NULL, rows, 0, err) != 0)
        return -1;
    engine_bias_activation(s->mlp, l->inter_b, rows, I, ENGINE_ACT_GELU);
    if (engine_matmul(s->h, s->mlp, &l->ffn, l->ffn_b, rows, 1, err) != 0)
        return -1;
    engine_layer_norm(s->h, s->h, l->ln2_w, l->ln2_b, rows, H, eps);
    return 0;
}

/* Mean of the first n rows (double accumulation), then the LinearTransformation. */
static int pool_project(const vdx_mclip_model *m, const float *h, int n, float *pooled,
                        float *out, vdx_error *err)
{
    int H = m->config.hidden_size;
    for (int i = 0; i < H; i++) {
        double sum = 0;
        for (int t = 0; t < n; t++)
            sum += h[(size_t)t * H + i];
        pooled[i] = (float)(sum / n);
    }
    return engine_matmul(out, pooled, &m->proj, m->proj_b, 1, 0, err);
}

int vdx_mclip_forward(const vdx_mclip_model *m, const int32_t *ids, int n_ids, float *out,
                      float *pooled, float *hidden, vdx_error *err)
{
    const vdx_mclip_config *c = &m->config;
    if (n_ids < 1 || n_ids > c->max_position_embeddings - 2)
        return vdx_fail(err, "M-CLIP: %d token ids, expected 1 to %d", n_ids,
                        c->max_position_embeddings - 2);
    int H = c->hidden_size;
    size_t layer_floats = (size_t)n_ids * H;
    scratch s;
    float *mean = pooled ? pooled : malloc((size_t)H * sizeof *mean);
    if (!mean)
        return vdx_fail(err, "out of memory");
    if (scratch_alloc(&s, (size_t)n_ids, c, err) != 0) {
        if (!pooled)
            free(mean);
        return -1;
    }
    int rc = embed(m, ids, 1, n_ids, s.h, err);
    if (rc == 0 && hidden)
        memcpy(hidden, s.h, layer_floats * sizeof(float));
    engine_enter();
    for (int l = 0; l < c->num_layers && rc == 0; l++) {
        if (layer(m, &m->layers[l], &s, 1, n_ids, NULL, err) != 0)
            rc = -1;
        else if (hidden)
            memcpy(hidden + (size_t)(l + 1) * layer_floats, s.h, layer_floats * sizeof(float));
    }
    if (rc == 0)
        rc = pool_project(m, s.h, n_ids, mean, out, err);
    free(s.block);
    if (!pooled)
        free(mean);
    return rc;
}

int vdx_mclip_forward_batch(const vdx_mclip_model *m, const int32_t *ids, const int32_t *mask,
                            int n_seq, int seq_len, float *out, vdx_error *err)
{
    const vdx_mclip_config *c = &m->config;
    if (n_seq < 1 || seq_len < 1 || seq_len > c->max_position_embeddings - 2 ||
        (size_t)n_seq * seq_len > (1u << 24))
        return vdx_fail(err, "M-CLIP: batch of %d × %d tokens, expected 1 to %d tokens each",
                        n_seq, seq_len, c->max_position_embeddings - 2);
    int *lengths = malloc((size_t)n_seq * sizeof *lengths);
    float *mean = malloc((size_t)c->hidden_size * sizeof *mean);
    scratch s = {0};
    int rc = !lengths || !mean ? vdx_fail(err, "out of memory") : 0;
    for (int q = 0; q < n_seq && rc == 0; q++) {
        const int32_t *row = mask + (size_t)q * seq_len;
        int n = 0;
        while (n < seq_len && row[n] == 1)
            n++;
        for (int t = n; t < seq_len && rc == 0; t++)
            if (row[t] != 0)
                rc = vdx_fail(err, "M-CLIP: attention_mask of sequence %d is %d at token %d: "
                              "expected ones then zeros (right padding)", q, (int)row[t], t);
        if (rc == 0 && n == 0)
            rc = vdx_fail(err, "M-CLIP: sequence %d has no real token", q);
        if (rc == 0)
            lengths[q] = n;
    }
    if (rc == 0)
        rc = scratch_alloc(&s, (size_t)n_seq * seq_len, c, err);
    if (rc == 0)
        rc = embed(m, ids, n_seq, seq_len, s.h, err);
    engine_enter();
    for (int l = 0; l < c->num_layers && rc == 0; l++)
        rc = layer(m, &m->layers[l], &s, n_seq, seq_len, lengths, err);
    for (int q = 0; q < n_seq && rc == 0; q++)
        rc = pool_project(m, s.h + (size_t)q * seq_len * c->hidden_size, lengths[q], mean,
                          out + (size_t)q * c->num_dims, err);
    free(s.block);
    free(mean);
    free(lengths);
    return rc;
}

int vdx_mclip_embed_text(const vdx_mclip_model *m, const char *text, float *out,
                         int *truncated, vdx_error *err)
{
    int max_len = m->config.max_position_embeddings - 2;
    if (max_len > VDX_SPM_MAX_TOKENS)
        max_len = VDX_SPM_MAX_TOKENS;
    int32_t *ids = malloc((size_t)max_len * sizeof *ids);
    if (!ids)
        return vdx_fail(err, "out of memory");
    int n = 0, cut = 0;
    int rc = vdx_spm_encode(m->tokenizer, text, max_len, ids, &n, &cut, NULL, NULL, err);
    if (rc == 0)
        rc = vdx_mclip_forward(m, ids, n, out, NULL, NULL, err);
    free(ids);
    if (truncated)
        *truncated = cut;
    return rc;
}
