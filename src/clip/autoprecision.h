/* `auto` precision (src/clip/autoprecision.c): the fastest precision this CPU runs
 * natively whose features of this very model stay within that precision's fidelity floor
 * of float32's. Private to src/clip/. */
#ifndef VDX_CLIP_AUTOPRECISION_H
#define VDX_CLIP_AUTOPRECISION_H

#include "vdx/clip.h"
#include "vdx/mclip.h"

/* A CLIP model with both towers in concrete precisions (never AUTO; bf16 only where
 * native): model.c's loader, which vdx_clip_load_with wraps. */
vdx_clip_model *clip_load_resolved(const char *model_dir, vdx_precision image,
                                   vdx_precision text, vdx_error *err);

/* A CLIP model whose AUTO towers run the first precision of engine_precision_order that
 * meets its floor on probe inputs against a float32 copy; the other tower keeps the
 * concrete precision given. A precision that misses its floor is said through notice
 * (may be NULL) and the next one tried; fp32 needs no probe. */
vdx_clip_model *clip_load_auto(const char *model_dir, vdx_precision image, vdx_precision text,
                               vdx_notice_fn notice, void *notice_user, vdx_error *err);

/* The same for an M-CLIP text tower. */
vdx_mclip_model *mclip_load_auto(const char *model_dir, vdx_notice_fn notice, void *notice_user,
                                 vdx_error *err);

#endif
