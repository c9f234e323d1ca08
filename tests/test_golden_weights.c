/* Golden tests of the checkpoint readers: the three weight files of clip-tiny (safetensors,
 * torch zip, legacy torch pickle) hold the same numbers tensor for tensor; the F16 model
 * converts exactly; the int64 position_ids buffers are present and tolerated; config.json
 * parses to the fixture's architecture. */
#include "clip/weights.h"
#include "test.h"
#include "vdx/clip.h"

/* Every tensor of `other` equals the tensor of the same name in `ref`, bit for bit. */
static void check_same_tensors(const vdx_weights *ref, const vdx_weights *other)
{
    CHECK(ref->count == other->count, "%zu tensors vs %zu", ref->count, other->count);
    for (size_t i = 0; i < ref->count; i++) {
        const vdx_tensor *a = &ref->tensors[i];
        const vdx_tensor *b = vdx_weights_find(other, a->name);
        CHECK(b != NULL, "%s missing from %s", a->name, other->path);
        if (!b)
            continue;
        CHECK(a->dtype == b->dtype && a->ndim == b->ndim && a->nbytes == b->nbytes,
              "%s: %s/%d dims/%zu bytes vs %s/%d dims/%zu bytes", a->name,
              vdx_dtype_name(a->dtype), a->ndim, a->nbytes, vdx_dtype_name(b->dtype), b->ndim,
              b->nbytes);
        for (int d = 0; d < a->ndim && d < b->ndim; d++)
            CHECK(a->shape[d] == b->shape[d], "%s dim %d: %lld vs %lld", a->name, d,
                  (long long)a->shape[d], (long long)b->shape[d]);
        if (a->nbytes == b->nbytes)
            CHECK(memcmp(a->data, b->data, a->nbytes) == 0, "%s: values differ", a->name);
    }
}

static vdx_weights *open_fixture(const char *path)
{
    vdx_error err = {{0}};
    vdx_weights *w = vdx_weights_open(path, &err);
    CHECK(w != NULL, "%s", err.message);
    return w;
}

TEST(safetensors_tiny_tensor_table)
{
    NEED_SHARED(path, "fixtures/clip-tiny/model.safetensors");
    vdx_weights *w = open_fixture(path);
    REQUIRE(w, "open");
    CHECK(w->count == 80, "%zu tensors", w->count);
    const vdx_tensor *tok = vdx_weights_find(w, "text_model.embeddings.token_embedding.weight");
    REQUIRE(tok, "token_embedding missing");
    CHECK(tok->dtype == VDX_DTYPE_F32 && tok->ndim == 2 && tok->shape[0] == 49408 &&
              tok->shape[1] == 64 && tok->nbytes == 49408u * 64 * 4,
          "token_embedding %s %d dims", vdx_dtype_name(tok->dtype), tok->ndim);
    const vdx_tensor *scale = vdx_weights_find(w, "logit_scale");
    REQUIRE(scale, "logit_scale missing");
    CHECK(scale->ndim == 0 && scale->nbytes == 4, "logit_scale is a scalar");
    float value;
    vdx_error err = {{0}};
    CHECK(vdx_weights_get_f32(w, "logit_scale", &value, 0, NULL, &err) == 0, "%s", err.message);
    CHECK(value == logf(100.0f), "logit_scale %.9g, expected ln 100", value);
    vdx_weights_close(w);
}

TEST(position_ids_are_int64_and_refused_as_floats)
{
    NEED_SHARED(path, "fixtures/clip-tiny/model.safetensors");
    vdx_weights *w = open_fixture(path);
    REQUIRE(w, "open");
    const vdx_tensor *pos = vdx_weights_find(w, "vision_model.embeddings.position_ids");
    REQUIRE(pos, "position_ids missing");
    CHECK(pos->dtype == VDX_DTYPE_I64 && pos->ndim == 2 && pos->shape[1] == 50, "shape");
    int64_t ids[50];
    memcpy(ids, pos->data, sizeof ids);
    CHECK(ids[0] == 0 && ids[49] == 49, "position ids %lld..%lld", (long long)ids[0],
          (long long)ids[49]);
    float out[50];
    vdx_error err = {{0}};
    int64_t shape[2] = {1, 50};
    CHECK(vdx_weights_get_f32(w, "vision_model.embeddings.position_ids", out, 2, shape, &err) ==
              -1,
          "I64 read as float");
    CHECK(strstr(err.message, "holds I64 integers") != NULL, "%s", err.message);
    vdx_weights_close(w);
}

TEST(f16_converts_exactly)
{
    NEED_SHARED(path, "fixtures/clip-tiny-f16/model.safetensors");
    vdx_weights *w = open_fixture(path);
    REQUIRE(w, "open");
    const vdx_tensor *t = vdx_weights_find(w, "visual_projection.weight");
    REQUIRE(t, "visual_projection missing");
    CHECK(t->dtype == VDX_DTYPE_F16 && t->shape[0] == 32 && t->shape[1] == 128, "shape/dtype");
    float *out = malloc(32 * 128 * sizeof *out);
    int64_t shape[2] = {32, 128};
    vdx_error err = {{0}};
    CHECK(vdx_weights_get_f32(w, "visual_projection.weight", out, 2, shape, &err) == 0, "%s",
          err.message);
    /* Every converted value rounds back to the same half (exact conversion) and is finite. */
    const uint16_t *half = t->data;
    int bad = 0;
    for (int i = 0; i < 32 * 128; i++) {
        _Float16 back = (_Float16)out[i];
        uint16_t bits;
        memcpy(&bits, &back, 2);
        bad += bits != half[i] || !isfinite(out[i]);
    }
    CHECK(bad == 0, "%d values did not round-trip", bad);
    free(out);
    vdx_weights_close(w);
}

TEST(config_tiny)
{
    NEED_SHARED(path, "fixtures/clip-tiny/config.json");
    vdx_clip_config cfg;
    vdx_error err = {{0}};
    REQUIRE(vdx_clip_config_load(path, &cfg, &err) == 0, "%s", err.message);
    CHECK(cfg.projection_dim == 32, "projection %d", cfg.projection_dim);
    CHECK(cfg.vision.hidden_size == 128 && cfg.vision.intermediate_size == 512 &&
              cfg.vision.num_heads == 2 && cfg.vision.num_layers == 2 &&
              cfg.vision.image_size == 224 && cfg.vision.patch_size == 32 &&
              cfg.vision.num_channels == 3 && cfg.vision.hidden_act_quick_gelu == 1 &&
              cfg.vision.layer_norm_eps == 1e-5,
          "vision config");
    CHECK(cfg.text.hidden_size == 64 && cfg.text.intermediate_size == 256 &&
              cfg.text.num_heads == 2 && cfg.text.num_layers == 2 &&
              cfg.text.vocab_size == 49408 && cfg.text.max_position_embeddings == 77 &&
              cfg.text.hidden_act_quick_gelu == 1,
          "text config");
}

static void check_same_as_safetensors(const char *rel)
{
    const char *ref_path = test_shared_path("fixtures/clip-tiny/model.safetensors");
    const char *other_path = test_shared_path(rel);
    if (!ref_path || !other_path) {
        if (!test_case_failed)
            SKIP("clip-tiny fixtures not found");
        return;
    }
    vdx_weights *ref = open_fixture(ref_path);
    vdx_weights *other = open_fixture(other_path);
    if (ref && other)
        check_same_tensors(ref, other);
    vdx_weights_close(ref);
    vdx_weights_close(other);
}

TEST(torch_zip_equals_safetensors) { check_same_as_safetensors("fixtures/clip-tiny/pytorch_model.bin"); }

TEST(torch_legacy_equals_safetensors)
{
    check_same_as_safetensors("fixtures/clip-tiny/pytorch_model.legacy.bin");
}

int main(void)
{
    RUN(torch_zip_equals_safetensors);
    RUN(torch_legacy_equals_safetensors);
    RUN(safetensors_tiny_tensor_table);
    RUN(position_ids_are_int64_and_refused_as_floats);
    RUN(f16_converts_exactly);
    RUN(config_tiny);
    return test_summary("golden_weights");
}
