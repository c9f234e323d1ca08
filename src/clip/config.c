/* config.json → vdx_clip_config. Keys follow transformers' CLIPConfig; a key that is
 * absent takes transformers' default (those of ViT-B/32), and the older
 * `text_config_dict` / `vision_config_dict` keys override like transformers does. Every
 * value is range-checked here, against the limits of include/vdx/clip.h, and the sizes
 * against each other, so the loader's allocations and the forward passes (which form
 * products such as channels·patch² and batch·tokens in int) can trust the numbers: this
 * is the one place they are checked. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_check.h"
#include "common/text.h"
#include "vdx/clip.h"

static void set_defaults(vdx_clip_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->projection_dim = 512;
    vdx_clip_tower_config *t = &cfg->text;
    t->hidden_size = 512;
    t->intermediate_size = 2048;
    t->num_heads = 8;
    t->num_layers = 12;
    t->hidden_act_quick_gelu = 1;
    t->layer_norm_eps = 1e-5;
    t->vocab_size = 49408;
    t->max_position_embeddings = 77;
    vdx_clip_tower_config *v = &cfg->vision;
    v->hidden_size = 768;
    v->intermediate_size = 3072;
    v->num_heads = 12;
    v->num_layers = 12;
    v->hidden_act_quick_gelu = 1;
    v->layer_norm_eps = 1e-5;
    v->image_size = 224;
    v->patch_size = 32;
    v->num_channels = 3;
}

/* Reads an optional positive integer (at most `max`) into *out. */
static int get_int(const cJSON *obj, const char *section, const char *key, int max, int *out,
                   const char *path, vdx_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item || cJSON_IsNull(item))
        return 0;
    double d = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!(d >= 1 && d <= max) || d != floor(d))
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: %s%s%s must be an integer in 1..%d", path, section,
                        *section ? "." : "", key, max);
    *out = (int)d;
    return 0;
}

static int read_tower(const cJSON *obj, const char *section, int vision,
                      vdx_clip_tower_config *t, const char *path, vdx_error *err)
{
    if (!obj)
        return 0;
    if (!cJSON_IsObject(obj))
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: %s is not an object", path, section);
    if (get_int(obj, section, "hidden_size", VDX_CLIP_MAX_WIDTH, &t->hidden_size, path, err) ||
        get_int(obj, section, "intermediate_size", VDX_CLIP_MAX_WIDTH, &t->intermediate_size,
                path, err) ||
        get_int(obj, section, "num_attention_heads", VDX_CLIP_MAX_WIDTH, &t->num_heads, path,
                err) ||
        get_int(obj, section, "num_hidden_layers", VDX_CLIP_MAX_LAYERS, &t->num_layers, path,
                err))
        return -1;
    if (vision) {
        if (get_int(obj, section, "image_size", VDX_CLIP_MAX_IMAGE_SIZE, &t->image_size, path,
                    err) ||
            get_int(obj, section, "patch_size", VDX_CLIP_MAX_IMAGE_SIZE, &t->patch_size, path,
                    err) ||
            get_int(obj, section, "num_channels", VDX_CLIP_MAX_CHANNELS, &t->num_channels,
                    path, err))
            return -1;
    } else {
        if (get_int(obj, section, "vocab_size", VDX_CLIP_MAX_VOCAB, &t->vocab_size, path, err) ||
            get_int(obj, section, "max_position_embeddings", VDX_CLIP_MAX_POSITIONS,
                    &t->max_position_embeddings, path, err))
            return -1;
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(obj, "hidden_act");
    if (act && !cJSON_IsNull(act)) {
        if (cJSON_IsString(act) && strcmp(act->valuestring, "quick_gelu") == 0)
            t->hidden_act_quick_gelu = 1;
        else if (cJSON_IsString(act) && strcmp(act->valuestring, "gelu") == 0)
            t->hidden_act_quick_gelu = 0;
        else { /* the name is echoed, cut between characters: the message stays UTF-8 */
            const char *name = cJSON_IsString(act) ? act->valuestring : "?";
            return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                                 "%s: %s.hidden_act '%.*s' is not supported (quick_gelu or gelu)",
                                 path, section, (int)utf8_prefix(name, strlen(name), 64), name);
        }
    }
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(obj, "layer_norm_eps");
    if (eps && !cJSON_IsNull(eps)) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0 && eps->valuedouble < 1))
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: %s.layer_norm_eps must be a number in (0, 1)", path,
                            section);
        t->layer_norm_eps = eps->valuedouble;
    }
    return 0;
}

static int check_tower(const vdx_clip_tower_config *t, const char *section, int vision,
                       const char *path, vdx_error *err)
{
    if (t->hidden_size % t->num_heads != 0)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: %s.hidden_size %d is not a multiple of num_attention_heads %d",
                        path, section, t->hidden_size, t->num_heads);
    if (vision && t->image_size % t->patch_size != 0)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: %s.image_size %d is not a multiple of patch_size %d", path,
                        section, t->image_size, t->patch_size);
    if (vision && t->image_size / t->patch_size > VDX_CLIP_MAX_GRID)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                             "%s: %s.image_size %d in patches of %d is %d patches a side; at "
                             "most %d are supported", path, section, t->image_size,
                             t->patch_size, t->image_size / t->patch_size, VDX_CLIP_MAX_GRID);
    if (!vision && t->max_position_embeddings < 2)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                             "%s: %s.max_position_embeddings %d leaves no room for the start "
                             "and end tokens (at least 2)", path, section,
                             t->max_position_embeddings);
    return 0;
}

int vdx_clip_config_load(const char *path, vdx_clip_config *cfg, vdx_error *err)
{
    set_defaults(cfg);
    cJSON *root = json_read_file(path, VDX_ERR_CORRUPT, err);
    if (!root)
        return -1;
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: not a JSON object", path);
        goto done;
    }
    if (get_int(root, "", "projection_dim", VDX_CLIP_MAX_WIDTH, &cfg->projection_dim, path, err) ||
        read_tower(cJSON_GetObjectItemCaseSensitive(root, "text_config"), "text_config", 0,
                   &cfg->text, path, err) ||
        read_tower(cJSON_GetObjectItemCaseSensitive(root, "text_config_dict"),
                   "text_config_dict", 0, &cfg->text, path, err) ||
        read_tower(cJSON_GetObjectItemCaseSensitive(root, "vision_config"), "vision_config", 1,
                   &cfg->vision, path, err) ||
        read_tower(cJSON_GetObjectItemCaseSensitive(root, "vision_config_dict"),
                   "vision_config_dict", 1, &cfg->vision, path, err) ||
        check_tower(&cfg->text, "text_config", 0, path, err) ||
        check_tower(&cfg->vision, "vision_config", 1, path, err))
        goto done;
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}
