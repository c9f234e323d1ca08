/* CLIP preprocessing as transformers' CLIPImageProcessor does it on the Pillow path:
 * resize so the short side is `shortest_edge` (long side truncated, never rounded),
 * centre crop at the floor offset (zero padding where the image is smaller than the
 * crop), then rescale in double, cast to float, and normalise with a true float
 * division. The normalisation goes through a 256-entry table per channel, which holds
 * exactly the values the arithmetic would give. Reads preprocessor_config.json in its
 * old (plain integers) and new ({"shortest_edge"} / {"height","width"}) forms. */
#include "common/json_check.h"
#include "image/image_internal.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void vdx_preprocess_config_default(vdx_preprocess_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->shortest_edge = 224;
    cfg->crop_height = cfg->crop_width = 224;
    cfg->do_resize = cfg->do_center_crop = cfg->do_normalize = 1;
    cfg->rescale_factor = 1.0 / 255.0;
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memcpy(cfg->mean, mean, sizeof mean);
    memcpy(cfg->std, std, sizeof std);
    cfg->resample = 3;
}

/* Largest side a config may ask for, and largest side the resize step may produce. */
enum { MAX_SIDE = 1 << 16, MAX_RESIZED_SIDE = 1 << 28 };

static int json_side(const cJSON *item, const char *path, const char *name, int *out,
                     vdx_error *err)
{
    if (!cJSON_IsNumber(item) || item->valuedouble < 1 || item->valuedouble > MAX_SIDE ||
        item->valuedouble != (int)item->valuedouble)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: \"%s\" must be an integer from 1 to %d", path, name,
                        MAX_SIDE);
    *out = (int)item->valuedouble;
    return 0;
}

static int json_flag(const cJSON *root, const char *key, int *out, const char *path,
                     vdx_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item)
        return 0;
    if (!cJSON_IsBool(item))
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: \"%s\" must be true or false", path, key);
    *out = cJSON_IsTrue(item);
    return 0;
}

static int json_triple(const cJSON *root, const char *key, float out[3], const char *path,
                       vdx_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item)
        return 0;
    /* a value no float holds would be undefined behaviour to convert */
    if (cJSON_IsNumber(item)) { /* a single value for all channels */
        if (!(fabs(item->valuedouble) <= FLT_MAX))
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: \"%s\" is not a finite float", path,
                                 key);
        out[0] = out[1] = out[2] = (float)item->valuedouble;
        return 0;
    }
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 3)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: \"%s\" must be a list of 3 numbers", path, key);
    for (int c = 0; c < 3; c++) {
        const cJSON *v = cJSON_GetArrayItem(item, c);
        if (!cJSON_IsNumber(v))
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: \"%s\"[%d] is not a number", path, key, c);
        if (!(fabs(v->valuedouble) <= FLT_MAX))
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: \"%s\"[%d] is not a finite float",
                                 path, key, c);
        out[c] = (float)v->valuedouble;
    }
    return 0;
}

static int config_from_json(const cJSON *root, const char *path, vdx_preprocess_config *cfg,
                            vdx_error *err)
{
    if (!cJSON_IsObject(root))
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: not a JSON object", path);
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(root, "size");
    if (cJSON_IsNumber(size)) {
        if (json_side(size, path, "size", &cfg->shortest_edge, err) != 0)
            return -1;
    } else if (cJSON_IsObject(size)) {
        const cJSON *edge = cJSON_GetObjectItemCaseSensitive(size, "shortest_edge");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(size, "height");
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(size, "width");
        if (edge) {
            if (json_side(edge, path, "size.shortest_edge", &cfg->shortest_edge, err) != 0)
                return -1;
        } else if (h && w) {
            if (json_side(h, path, "size.height", &cfg->size_height, err) != 0 ||
                json_side(w, path, "size.width", &cfg->size_width, err) != 0)
                return -1;
            cfg->shortest_edge = 0;
        } else {
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: \"size\" must hold \"shortest_edge\" or \"height\" and "
                            "\"width\"", path);
        }
    } else if (size) {
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: \"size\" must be an integer or an object", path);
    }

    const cJSON *crop = cJSON_GetObjectItemCaseSensitive(root, "crop_size");
    if (cJSON_IsNumber(crop)) {
        if (json_side(crop, path, "crop_size", &cfg->crop_height, err) != 0)
            return -1;
        cfg->crop_width = cfg->crop_height;
    } else if (cJSON_IsObject(crop)) {
        if (json_side(cJSON_GetObjectItemCaseSensitive(crop, "height"), path,
                      "crop_size.height", &cfg->crop_height, err) != 0 ||
            json_side(cJSON_GetObjectItemCaseSensitive(crop, "width"), path, "crop_size.width",
                      &cfg->crop_width, err) != 0)
            return -1;
    } else if (crop) {
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: \"crop_size\" must be an integer or an object", path);
    }

    int do_rescale = 1;
    if (json_flag(root, "do_resize", &cfg->do_resize, path, err) != 0 ||
        json_flag(root, "do_center_crop", &cfg->do_center_crop, path, err) != 0 ||
        json_flag(root, "do_normalize", &cfg->do_normalize, path, err) != 0 ||
        json_flag(root, "do_rescale", &do_rescale, path, err) != 0 ||
        json_triple(root, "image_mean", cfg->mean, path, err) != 0 ||
        json_triple(root, "image_std", cfg->std, path, err) != 0)
        return -1;
    const cJSON *factor = cJSON_GetObjectItemCaseSensitive(root, "rescale_factor");
    if (factor) {
        if (!cJSON_IsNumber(factor) || !(factor->valuedouble > 0 && factor->valuedouble <= 1))
            return vdx_fail_kind(err, VDX_ERR_INVALID,
                                 "%s: \"rescale_factor\" must be a number in (0, 1] (CLIP's "
                                 "is 1/255)", path);
        cfg->rescale_factor = factor->valuedouble;
    }
    if (!do_rescale)
        cfg->rescale_factor = 1.0;
    for (int c = 0; c < 3; c++) {
        if (cfg->do_normalize && cfg->std[c] == 0.0f)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: \"image_std\"[%d] is zero", path, c);
        /* vdx_image_normalize's table is monotonic in the byte: its ends must be finite */
        const float top = (float)(255.0 * cfg->rescale_factor);
        if (cfg->do_normalize && !(isfinite((0.0f - cfg->mean[c]) / cfg->std[c]) &&
                                   isfinite((top - cfg->mean[c]) / cfg->std[c])))
            return vdx_fail_kind(err, VDX_ERR_INVALID,
                                 "%s: \"image_mean\"[%d] %g and \"image_std\"[%d] %g normalise "
                                 "pixels beyond a float's range", path, c, (double)cfg->mean[c],
                                 c, (double)cfg->std[c]);
    }
    const cJSON *resample = cJSON_GetObjectItemCaseSensitive(root, "resample");
    if (resample) {
        if (!cJSON_IsNumber(resample) || resample->valueint != 3)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: \"resample\" is %g; only 3 (bicubic, what CLIP uses) is "
                            "supported", path, cJSON_IsNumber(resample) ? resample->valuedouble
                                                                        : -1.0);
        cfg->resample = 3;
    }
    return 0;
}

int vdx_preprocess_config_load(const char *path, vdx_preprocess_config *cfg, vdx_error *err)
{
    vdx_preprocess_config_default(cfg);
    cJSON *root = json_read_file(path, VDX_ERR_INVALID, err);
    int rc = root ? config_from_json(root, path, cfg, err) : -1;
    cJSON_Delete(root);
    if (rc != 0)
        vdx_preprocess_config_default(cfg);
    return rc;
}

int vdx_preprocess_reduced_side(const vdx_preprocess_config *cfg)
{
    if (!cfg->do_resize)
        return 0;
    int target = cfg->shortest_edge;
    if (target <= 0)
        target = cfg->size_height > cfg->size_width ? cfg->size_height : cfg->size_width;
    return 2 * target;
}

void vdx_image_resized_size(const vdx_preprocess_config *cfg, int width, int height,
                            int *resized_width, int *resized_height)
{
    *resized_width = width;
    *resized_height = height;
    if (!cfg->do_resize)
        return;
    if (cfg->shortest_edge <= 0) {
        *resized_width = cfg->size_width;
        *resized_height = cfg->size_height;
        return;
    }
    const int short_side = width <= height ? width : height;
    const int long_side = width <= height ? height : width;
    const long long edge = cfg->shortest_edge;
    const double exact_long = (double)(edge * long_side) / short_side;
    /* an absurd aspect ratio (1 x 100000000) must not overflow an int; the crop refuses it */
    int new_long = exact_long >= INT_MAX ? INT_MAX : (int)exact_long;
    if (new_long < 1)
        new_long = 1;
    if (width <= height) {
        *resized_width = (int)edge;
        *resized_height = new_long;
    } else {
        *resized_width = new_long;
        *resized_height = (int)edge;
    }
}

static int floor_half(int v)
{
    return v >= 0 ? v / 2 : -((-v + 1) / 2);
}

int vdx_image_clip_crop(const vdx_image *img, const vdx_preprocess_config *cfg,
                        uint8_t *crop_out, vdx_error *err)
{
    if (!img->rgb || img->width < 1 || img->height < 1)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "preprocess: empty image");
    int rw, rh;
    vdx_image_resized_size(cfg, img->width, img->height, &rw, &rh);
    if (rw > MAX_RESIZED_SIDE || rh > MAX_RESIZED_SIDE)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "preprocess: a %dx%d image would be resized to %dx%d; its aspect "
                        "ratio is too extreme", img->width, img->height, rw, rh);
    const int ch = cfg->crop_height, cw = cfg->crop_width;
    if (!cfg->do_center_crop && (rw != cw || rh != ch))
        return vdx_fail_kind(err, VDX_ERR_INVALID, "preprocess: do_center_crop is off but the resized image is %dx%d, "
                        "not the %dx%d the model takes", rw, rh, cw, ch);
    const int top = floor_half(rh - ch), left = floor_half(rw - cw);
    /* the part of the crop the resized image covers; the rest is zero padding */
    const int x_begin = left > 0 ? left : 0, y_begin = top > 0 ? top : 0;
    const int x_end = left + cw < rw ? left + cw : rw, y_end = top + ch < rh ? top + ch : rh;
    const int win_w = x_end - x_begin, win_h = y_end - y_begin;
    if (win_w == cw && win_h == ch)
        return image_resample_window(img->rgb, img->width, img->height, rw, rh, x_begin,
                                     y_begin, win_w, win_h, crop_out, err);
    uint8_t *window = malloc((size_t)win_w * win_h * 3);
    if (!window)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "preprocess: out of memory");
    if (image_resample_window(img->rgb, img->width, img->height, rw, rh, x_begin, y_begin,
                              win_w, win_h, window, err) != 0) {
        free(window);
        return -1;
    }
    memset(crop_out, 0, (size_t)cw * ch * 3);
    for (int y = 0; y < win_h; y++)
        memcpy(crop_out + ((size_t)(y + y_begin - top) * cw + (x_begin - left)) * 3,
               window + (size_t)y * win_w * 3, (size_t)win_w * 3);
    free(window);
    return 0;
}

void vdx_image_normalize(const uint8_t *crop, const vdx_preprocess_config *cfg, float *out)
{
    float table[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            const float scaled = (float)((double)v * cfg->rescale_factor);
            table[c][v] = cfg->do_normalize ? (scaled - cfg->mean[c]) / cfg->std[c] : scaled;
        }
    const size_t plane = (size_t)cfg->crop_height * cfg->crop_width;
    for (size_t i = 0; i < plane; i++) {
        out[i] = table[0][crop[3 * i + 0]];
        out[plane + i] = table[1][crop[3 * i + 1]];
        out[2 * plane + i] = table[2][crop[3 * i + 2]];
    }
}

int vdx_image_preprocess(const vdx_image *img, const vdx_preprocess_config *cfg,
                         float *pixel_values, vdx_error *err)
{
    uint8_t *crop = malloc((size_t)cfg->crop_height * cfg->crop_width * 3);
    if (!crop)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "preprocess: out of memory");
    int rc = vdx_image_clip_crop(img, cfg, crop, err);
    if (rc == 0)
        vdx_image_normalize(crop, cfg, pixel_values);
    free(crop);
    return rc;
}
