/* The text towers behind one interface (vdx/textmodel.h): CLIP's own (model.c) or an
 * M-CLIP XLM-R tower (xlmr.c), and the table of text models known to share an image
 * model's space. The table lists what the M-CLIP authors trained each tower against. */
#include "vdx/textmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdx/mclip.h"

#include "clip/autoprecision.h"

struct vdx_text_model {
    const vdx_clip_model *clip; /* CLIP's text tower (owned when owned_clip) */
    vdx_clip_model *owned_clip;
    vdx_mclip_model *mclip;     /* or an M-CLIP tower (owned) */
};

static const struct {
    const char *text, *image;
} known_pairs[] = {
    {"M-CLIP/XLM-Roberta-Large-Vit-B-32", "openai/clip-vit-base-patch32"},
    {"M-CLIP/XLM-Roberta-Large-Vit-L-14", "openai/clip-vit-large-patch14"},
};

int vdx_text_model_known_pair(const char *text_name, const char *image_name)
{
    if (strcmp(text_name, image_name) == 0)
        return 1;
    for (size_t i = 0; i < sizeof known_pairs / sizeof known_pairs[0]; i++)
        if (strcmp(known_pairs[i].text, text_name) == 0 &&
            strcmp(known_pairs[i].image, image_name) == 0)
            return 1;
    return 0;
}

vdx_text_model *vdx_text_model_load(const char *model_dir, vdx_error *err)
{
    return vdx_text_model_load_with(model_dir, NULL, err);
}

vdx_text_model *vdx_text_model_load_with(const char *model_dir, const vdx_clip_options *options,
                                         vdx_error *err)
{
    vdx_text_model *m = calloc(1, sizeof *m);
    if (!m) {
        vdx_fail_oom(err, "loading a text model");
        return NULL;
    }
    if (vdx_mclip_is_model_dir(model_dir)) {
        const char *why = NULL;
        vdx_precision p = options ? options->text_precision : VDX_PRECISION_FP32;
        if (p == VDX_PRECISION_AUTO) {
            m->mclip = mclip_load_auto(model_dir, options->notice, options->notice_user, err);
        } else {
            p = vdx_precision_resolve(p, &why);
            if (why && options && options->notice)
                options->notice(why, options->notice_user);
            m->mclip = vdx_mclip_load_precision(model_dir, p, err);
        }
    } else {
        m->clip = m->owned_clip = options ? vdx_clip_load_with(model_dir, options, err)
                                          : vdx_clip_load(model_dir, err);
    }
    if (!m->mclip && !m->clip) {
        free(m);
        return NULL;
    }
    return m;
}

vdx_text_model *vdx_text_model_of_clip(const vdx_clip_model *clip, vdx_error *err)
{
    vdx_text_model *m = calloc(1, sizeof *m);
    if (!m)
        vdx_fail(err, "out of memory");
    else
        m->clip = clip;
    return m;
}

void vdx_text_model_free(vdx_text_model *m)
{
    if (!m)
        return;
    vdx_clip_free(m->owned_clip);
    vdx_mclip_free(m->mclip);
    free(m);
}

const char *vdx_text_model_name(const vdx_text_model *m)
{
    return m->mclip ? vdx_mclip_model_name(m->mclip) : vdx_clip_model_name(m->clip);
}

int vdx_text_model_dims(const vdx_text_model *m)
{
    return m->mclip ? vdx_mclip_embed_dim(m->mclip) : vdx_clip_embed_dim(m->clip);
}

int vdx_text_model_multilingual(const vdx_text_model *m) { return m->mclip != NULL; }

int vdx_text_model_max_tokens(const vdx_text_model *m)
{
    if (m->mclip) {
        int n = vdx_mclip_get_config(m->mclip)->max_position_embeddings - 2;
        return n < VDX_SPM_MAX_TOKENS ? n : VDX_SPM_MAX_TOKENS;
    }
    return vdx_clip_get_config(m->clip)->text.max_position_embeddings;
}

int vdx_text_model_embed(const vdx_text_model *m, const char *text, float *out, int *truncated,
                         vdx_error *err)
{
    if (m->mclip)
        return vdx_mclip_embed_text(m->mclip, text, out, truncated, err);
    return vdx_clip_embed_text(m->clip, text, out, truncated, err);
}
