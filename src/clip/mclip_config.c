/* config.json of an M-CLIP model directory: MCLIPConfig (model_type "M-CLIP", modelBase,
 * transformerDimensions, numDims) and, when present, modelBaseConfig (the full
 * XLMRobertaConfig: heads, eps, sizes). The hub's config names no size of the encoder, so
 * xlmr.c takes them from the tensor shapes; the sizes a config does declare are checked
 * here against the limits of include/vdx/clip.h (the CLIP reader's, src/clip/config.c)
 * and against each other, then by xlmr.c against the checkpoint. Every refusal names the
 * file and the key, and quotes the file's text cut between characters. */
#include "clip/mclip_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_check.h"
#include "common/text.h"

/* A string of the file quoted in a refusal: at most 64 bytes, cut between characters. */
#define QUOTED(s) (int)utf8_prefix((s), strlen(s), 64), (s)

/* An optional integer in min..max (absent or null: *out unchanged). */
static int get_int(const cJSON *obj, const char *section, const char *key, int min, int max,
                   int *out, const char *path, vdx_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item || cJSON_IsNull(item))
        return 0;
    double v = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!(v >= min && v <= max) || v != floor(v))
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: %s%s%s must be an integer in %d..%d",
                             path, section, *section ? "." : "", key, min, max);
    *out = (int)v;
    return 0;
}

/* An optional string that must be one of `allowed` (absent or null: accepted). */
static int get_choice(const cJSON *obj, const char *key, const char *allowed, const char *why,
                      const char *path, vdx_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item || cJSON_IsNull(item) ||
        (cJSON_IsString(item) && strcmp(item->valuestring, allowed) == 0))
        return 0;
    if (!cJSON_IsString(item))
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: modelBaseConfig.%s is not a string",
                             path, key);
    return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                         "%s: modelBaseConfig.%s \"%.*s\" is not supported (only \"%s\"%s)",
                         path, key, QUOTED(item->valuestring), allowed, why);
}

static int read_base_config(const cJSON *bc, vdx_mclip_config *c, mclip_declared *d,
                            const char *path, vdx_error *err)
{
    const char *s = "modelBaseConfig";
    if (get_int(bc, s, "num_attention_heads", 1, VDX_CLIP_MAX_WIDTH, &c->num_heads, path,
                err) ||
        get_int(bc, s, "num_hidden_layers", 1, VDX_CLIP_MAX_LAYERS, &d->layers, path, err) ||
        get_int(bc, s, "hidden_size", 1, VDX_CLIP_MAX_WIDTH, &d->hidden, path, err) ||
        get_int(bc, s, "vocab_size", 4, VDX_CLIP_MAX_VOCAB, &d->vocab, path, err) ||
        /* <pad> is position 1, the first token 2: room for one token at least */
        get_int(bc, s, "max_position_embeddings", 3, VDX_CLIP_MAX_POSITIONS, &d->positions,
                path, err) ||
        get_int(bc, s, "intermediate_size", 1, VDX_CLIP_MAX_WIDTH, &d->intermediate, path,
                err))
        return -1;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(bc, "layer_norm_eps");
    if (eps && !cJSON_IsNull(eps)) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0 && eps->valuedouble < 1))
            return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                                 "%s: modelBaseConfig.layer_norm_eps must be a number in "
                                 "(0, 1)", path);
        c->layer_norm_eps = eps->valuedouble;
    }
    if (get_choice(bc, "hidden_act", "gelu", ", XLM-R's exact erf GELU", path, err) ||
        get_choice(bc, "position_embedding_type", "absolute", "", path, err))
        return -1;
    if (d->width && d->hidden && d->width != d->hidden)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                             "%s: transformerDimensions %d and modelBaseConfig.hidden_size %d "
                             "disagree", path, d->width, d->hidden);
    return 0;
}

static int read_config(const cJSON *json, vdx_mclip_config *c, mclip_declared *d,
                       const char *path, vdx_error *err)
{
    if (!cJSON_IsObject(json))
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: not a JSON object", path);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(json, "model_type");
    if (!cJSON_IsString(type))
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: model_type is %s, expected \"M-CLIP\"",
                             path, type ? "not a string" : "missing");
    if (strcmp(type->valuestring, "M-CLIP") != 0)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                             "%s: model_type is \"%.*s\", expected \"M-CLIP\"", path,
                             QUOTED(type->valuestring));
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(json, "modelBase");
    if (base && !cJSON_IsNull(base)) {
        if (!cJSON_IsString(base))
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: modelBase is not a string", path);
        size_t len = strlen(base->valuestring);
        if (len >= sizeof c->model_base)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                                 "%s: modelBase \"%.*s...\" is %zu bytes long, at most %zu",
                                 path, QUOTED(base->valuestring), len,
                                 sizeof c->model_base - 1);
        memcpy(c->model_base, base->valuestring, len + 1);
    }
    if (get_int(json, "", "numDims", 1, VDX_CLIP_MAX_WIDTH, &d->dims, path, err) ||
        get_int(json, "", "transformerDimensions", 1, VDX_CLIP_MAX_WIDTH, &d->width, path,
                err))
        return -1;
    const cJSON *bc = cJSON_GetObjectItemCaseSensitive(json, "modelBaseConfig");
    if (bc && !cJSON_IsNull(bc)) {
        if (!cJSON_IsObject(bc))
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: modelBaseConfig is not an object",
                                 path);
        if (read_base_config(bc, c, d, path, err) != 0)
            return -1;
    }
    if (!c->num_heads) {
        /* The hub config has no modelBaseConfig: heads of the named base model. */
        if (strcmp(c->model_base, "xlm-roberta-large") == 0)
            c->num_heads = 16;
        else if (strcmp(c->model_base, "xlm-roberta-base") == 0)
            c->num_heads = 12;
        else
            return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                                 "%s: modelBase \"%.*s\" has no known head count (expected "
                                 "xlm-roberta-large, xlm-roberta-base or a modelBaseConfig "
                                 "with num_attention_heads)", path, QUOTED(c->model_base));
    }
    int width = d->width ? d->width : d->hidden;
    if (width && width % c->num_heads != 0)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                             "%s: the hidden size %d is not a multiple of %d attention heads",
                             path, width, c->num_heads);
    return 0;
}

int mclip_config_load(const char *path, vdx_mclip_config *c, mclip_declared *d,
                      vdx_error *err)
{
    memset(c, 0, sizeof *c);
    memset(d, 0, sizeof *d);
    c->layer_norm_eps = 1e-5;
    cJSON *json = json_read_file(path, VDX_ERR_CORRUPT, err);
    if (!json)
        return -1;
    int rc = read_config(json, c, d, path, err);
    cJSON_Delete(json);
    return rc;
}
