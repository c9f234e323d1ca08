/* `auto` precision: the fastest precision this CPU runs natively whose features of the
 * model being loaded stay within that precision's fidelity floor of float32's (cosine
 * 0.9995 for bf16, 0.99 for int8: engine_precision_floor).
 *
 * The floors are asserted on the golden fixtures by the tests, but what int8 costs
 * depends on the weights (per-row activation scales suffer where a few channels carry
 * outsized values, as some trained checkpoints have), so the loader checks the model at
 * hand: it loads a float32 copy, runs it on a few probe inputs (synthetic images: smooth
 * gradients, flat shapes with edges and grain; and a few prompts) and frees it; then it
 * loads the fastest candidate (engine_precision_order), runs the same inputs and keeps
 * it only if the worst cosine meets its floor; otherwise it says so and tries the next
 * precision. fp32 needs no probe. On a full-size ViT-B/32 the check costs one more model
 * load (docs/clip-engine.md). */
#include "clip/autoprecision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/matmul.h"

#define PROBE_IMAGES 4

static const char *const probe_prompts[] = {
    "a photo of a dog",
    "a red car parked on a city street at night",
    "two children playing football on a sandy beach at sunset",
    "ein verschneiter Berggipfel unter blauem Himmel", /* read by M-CLIP's multilingual tower */
    "一碗热腾腾的拉面",
};
#define PROBE_PROMPTS (int)(sizeof probe_prompts / sizeof *probe_prompts)

static unsigned long long next_random(unsigned long long *state)
{
    unsigned long long z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(unsigned long long *state)
{
    return (double)(next_random(state) >> 11) / 9007199254740992.0;
}

/* n images of side s, CHW, normalised as the model's preprocessing would: a gradient
 * background, a few flat rectangles and discs (edges), and fine grain. */
static void probe_pixels(const vdx_preprocess_config *pre, int channels, int s, int n, float *out)
{
    unsigned long long state = 20261205;
    for (int img = 0; img < n; img++) {
        float *px = out + (size_t)img * channels * s * s;
        double base[3], slope[3][2];
        for (int c = 0; c < 3; c++) {
            base[c] = uniform(&state);
            slope[c][0] = uniform(&state) - 0.5;
            slope[c][1] = uniform(&state) - 0.5;
        }
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < s; y++)
                for (int x = 0; x < s; x++)
                    px[((size_t)c * s + y) * s + x] = (float)(base[c % 3] + slope[c % 3][0] * x / s +
                                                              slope[c % 3][1] * y / s);
        for (int shape = 0; shape < 6; shape++) {
            int x0 = (int)(uniform(&state) * s), y0 = (int)(uniform(&state) * s);
            int w = 8 + (int)(uniform(&state) * s / 2), h = 8 + (int)(uniform(&state) * s / 2);
            int disc = shape % 2;
            double colour[3] = {uniform(&state), uniform(&state), uniform(&state)};
            for (int y = y0; y < y0 + h && y < s; y++)
                for (int x = x0; x < x0 + w && x < s; x++) {
                    double dx = (x - x0 - w / 2.0) / (w / 2.0), dy = (y - y0 - h / 2.0) / (h / 2.0);
                    if (disc && dx * dx + dy * dy > 1)
                        continue;
                    for (int c = 0; c < channels; c++)
                        px[((size_t)c * s + y) * s + x] = (float)colour[c % 3];
                }
        }
        for (size_t i = 0; i < (size_t)channels * s * s; i++) {
            int c = (int)(i / ((size_t)s * s));
            double v = px[i] + 0.04 * (uniform(&state) - 0.5);
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            double mean = c < 3 ? pre->mean[c] : 0.5, std = c < 3 ? pre->std[c] : 0.5;
            px[i] = (float)((v - mean) / std);
        }
    }
}

static double worst_cosine(const float *a, const float *b, int rows, int dim)
{
    double worst = 1;
    for (int r = 0; r < rows; r++) {
        double ab = 0, aa = 0, bb = 0;
        for (int d = 0; d < dim; d++) {
            const double x = a[(size_t)r * dim + d], y = b[(size_t)r * dim + d];
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        const double cosine = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
        worst = cosine < worst ? cosine : worst;
    }
    return worst;
}

/* What the loop below needs of a model kind: load it (the float32 reference, or the
 * towers asked as auto in precision p), run the probe (image rows first, then prompt
 * rows, into out[rows][dims]), free it. */
typedef struct auto_target {
    const char *model_dir;
    vdx_precision image, text; /* CLIP: AUTO or the concrete precision asked */
    int image_rows, text_rows;
    void *(*load)(const struct auto_target *t, int reference, vdx_precision p, vdx_error *err);
    int (*probe)(const struct auto_target *t, const void *model, float *out, vdx_error *err);
    int (*dims)(const void *model);
    void (*release)(void *model);
} auto_target;

/* Tries engine_precision_order's precisions until one meets its floor against float32.
 * The float32 copy runs first and is freed before any candidate loads, so the peak is one
 * model, not two. */
static void *load_auto(const auto_target *t, vdx_notice_fn notice, void *notice_user,
                       vdx_error *err)
{
    vdx_precision order[3];
    const int n = engine_precision_order(order);
    if (order[0] == VDX_PRECISION_FP32)
        return t->load(t, 0, VDX_PRECISION_FP32, err);
    void *reference = t->load(t, 1, VDX_PRECISION_FP32, err);
    if (!reference)
        return NULL;
    const int dim = t->dims(reference);
    const size_t floats = (size_t)(t->image_rows + t->text_rows) * dim;
    float *want = malloc(sizeof *want * floats), *got = malloc(sizeof *got * floats);
    int probed = want && got ? t->probe(t, reference, want, err)
                             : vdx_fail_oom(err, "the precision probe's features");
    t->release(reference);
    void *chosen = NULL;
    for (int i = 0; probed == 0 && i < n; i++) {
        const vdx_precision p = order[i];
        void *m = t->load(t, 0, p, err);
        if (!m || p == VDX_PRECISION_FP32) {
            chosen = m;
            break;
        }
        if (t->probe(t, m, got, err) != 0) {
            t->release(m);
            break;
        }
        const double floor = engine_precision_floor(p);
        const size_t text_at = (size_t)t->image_rows * dim;
        const double worst_image = worst_cosine(got, want, t->image_rows, dim);
        const double worst_text = worst_cosine(got + text_at, want + text_at, t->text_rows, dim);
        if (worst_image >= floor && worst_text >= floor) {
            chosen = m;
            break;
        }
        if (notice) {
            char message[320];
            const int image_missed = worst_image < floor;
            snprintf(message, sizeof message,
                     "precision auto: this model's %s features in %s reach a worst cosine of "
                     "%.6f to float32 on the probe inputs, below the %g floor: trying %s",
                     image_missed ? "image" : "text", vdx_precision_name(p),
                     image_missed ? worst_image : worst_text, floor, vdx_precision_name(order[i + 1]));
            notice(message, notice_user);
        }
        t->release(m);
    }
    free(want);
    free(got);
    return chosen;
}

/* ---- CLIP --------------------------------------------------------------------------- */

static void *clip_load(const auto_target *t, int reference, vdx_precision p, vdx_error *err)
{
    if (reference)
        return clip_load_resolved(t->model_dir, VDX_PRECISION_FP32, VDX_PRECISION_FP32, err);
    return clip_load_resolved(t->model_dir, t->image == VDX_PRECISION_AUTO ? p : t->image,
                              t->text == VDX_PRECISION_AUTO ? p : t->text, err);
}

static int clip_probe(const auto_target *t, const void *model, float *out, vdx_error *err)
{
    const vdx_clip_model *m = model;
    const vdx_clip_config *config = vdx_clip_get_config(m);
    const int dim = vdx_clip_embed_dim(m), s = config->vision.image_size;
    const int channels = config->vision.num_channels;
    if (t->image_rows) {
        float *pixels = malloc(sizeof *pixels * PROBE_IMAGES * channels * s * s);
        if (!pixels)
            return vdx_fail_oom(err, "the precision probe's images");
        probe_pixels(vdx_clip_get_preprocess(m), channels, s, PROBE_IMAGES, pixels);
        int rc = vdx_clip_embed_images(m, pixels, PROBE_IMAGES, out, err);
        free(pixels);
        if (rc != 0)
            return -1;
        out += (size_t)PROBE_IMAGES * dim;
    }
    for (int i = 0; i < t->text_rows; i++)
        if (vdx_clip_embed_text(m, probe_prompts[i], out + (size_t)i * dim, NULL, err) != 0)
            return -1;
    return 0;
}

static int clip_dims(const void *model) { return vdx_clip_embed_dim(model); }
static void clip_release(void *model) { vdx_clip_free(model); }

vdx_clip_model *clip_load_auto(const char *model_dir, vdx_precision image, vdx_precision text,
                               vdx_notice_fn notice, void *notice_user, vdx_error *err)
{
    const auto_target t = {model_dir, image, text,
                           image == VDX_PRECISION_AUTO ? PROBE_IMAGES : 0,
                           text == VDX_PRECISION_AUTO ? PROBE_PROMPTS : 0,
                           clip_load, clip_probe, clip_dims, clip_release};
    return load_auto(&t, notice, notice_user, err);
}

/* ---- M-CLIP ------------------------------------------------------------------------- */

static void *mclip_load(const auto_target *t, int reference, vdx_precision p, vdx_error *err)
{
    return vdx_mclip_load_precision(t->model_dir, p, err);
}

static int mclip_probe(const auto_target *t, const void *model, float *out, vdx_error *err)
{
    const int dim = vdx_mclip_embed_dim(model);
    for (int i = 0; i < t->text_rows; i++)
        if (vdx_mclip_embed_text(model, probe_prompts[i], out + (size_t)i * dim, NULL, err) != 0)
            return -1;
    return 0;
}

static int mclip_dims(const void *model) { return vdx_mclip_embed_dim(model); }
static void mclip_release(void *model) { vdx_mclip_free(model); }

vdx_mclip_model *mclip_load_auto(const char *model_dir, vdx_notice_fn notice, void *notice_user,
                                 vdx_error *err)
{
    const auto_target t = {model_dir, VDX_PRECISION_AUTO, VDX_PRECISION_AUTO, 0, PROBE_PROMPTS,
                           mclip_load, mclip_probe, mclip_dims, mclip_release};
    return load_auto(&t, notice, notice_user, err);
}
