/* Golden tests of the checkpoint readers: the three weight files of clip-tiny (safetensors,
 * torch zip, legacy torch pickle) hold the same numbers tensor for tensor; the F16 model
 * converts exactly; the int64 position_ids buffers are present and tolerated; config.json
 * parses to the fixture's architecture. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weights/modelfiles.h"
#include "weights/weights.h"
#include "test.h"
#include "vdx/clip.h"

/* Every tensor of `other` equals the tensor of the same name in `ref`, bit for bit. */
static void check_same_tensors(const vdx_weights *ref, const vdx_weights *other)
{
    CHECK(ref->count == other->count, "%zu tensors vs %zu", ref->count, other->count);
    for (size_t i = 0; i < ref->count; i++) {
        const vdx_tensor *a = &ref->tensors[i];
        const vdx_tensor *b = weights_find(other, a->name);
        CHECK(b != NULL, "%s missing from %s", a->name, other->path);
        if (!b)
            continue;
        CHECK(a->dtype == b->dtype && a->ndim == b->ndim && a->nbytes == b->nbytes,
              "%s: %s/%d dims/%zu bytes vs %s/%d dims/%zu bytes", a->name,
              dtype_name(a->dtype), a->ndim, a->nbytes, dtype_name(b->dtype), b->ndim,
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
    vdx_weights *w = weights_open(path, &err);
    CHECK(w != NULL, "%s", err.message);
    return w;
}

TEST(safetensors_tiny_tensor_table)
{
    NEED_SHARED(path, "fixtures/clip-tiny/model.safetensors");
    vdx_weights *w = open_fixture(path);
    REQUIRE(w, "open");
    CHECK(w->count == 80, "%zu tensors", w->count);
    const vdx_tensor *tok = weights_find(w, "text_model.embeddings.token_embedding.weight");
    REQUIRE(tok, "token_embedding missing");
    CHECK(tok->dtype == VDX_DTYPE_F32 && tok->ndim == 2 && tok->shape[0] == 49408 &&
              tok->shape[1] == 64 && tok->nbytes == 49408u * 64 * 4,
          "token_embedding %s %d dims", dtype_name(tok->dtype), tok->ndim);
    const vdx_tensor *scale = weights_find(w, "logit_scale");
    REQUIRE(scale, "logit_scale missing");
    CHECK(scale->ndim == 0 && scale->nbytes == 4, "logit_scale is a scalar");
    float value;
    vdx_error err = {{0}};
    CHECK(weights_get_f32(w, "logit_scale", &value, 0, NULL, &err) == 0, "%s", err.message);
    CHECK(value == logf(100.0f), "logit_scale %.9g, expected ln 100", value);
    weights_close(w);
}

TEST(position_ids_are_int64_and_refused_as_floats)
{
    NEED_SHARED(path, "fixtures/clip-tiny/model.safetensors");
    vdx_weights *w = open_fixture(path);
    REQUIRE(w, "open");
    const vdx_tensor *pos = weights_find(w, "vision_model.embeddings.position_ids");
    REQUIRE(pos, "position_ids missing");
    CHECK(pos->dtype == VDX_DTYPE_I64 && pos->ndim == 2 && pos->shape[1] == 50, "shape");
    int64_t ids[50];
    memcpy(ids, pos->data, sizeof ids);
    CHECK(ids[0] == 0 && ids[49] == 49, "position ids %lld..%lld", (long long)ids[0],
          (long long)ids[49]);
    float out[50];
    vdx_error err = {{0}};
    int64_t shape[2] = {1, 50};
    CHECK(weights_get_f32(w, "vision_model.embeddings.position_ids", out, 2, shape, &err) ==
              -1,
          "I64 read as float");
    CHECK(strstr(err.message, "holds I64 integers") != NULL, "%s", err.message);
    weights_close(w);
}

TEST(f16_converts_exactly)
{
    NEED_SHARED(path, "fixtures/clip-tiny-f16/model.safetensors");
    vdx_weights *w = open_fixture(path);
    REQUIRE(w, "open");
    const vdx_tensor *t = weights_find(w, "visual_projection.weight");
    REQUIRE(t, "visual_projection missing");
    CHECK(t->dtype == VDX_DTYPE_F16 && t->shape[0] == 32 && t->shape[1] == 128, "shape/dtype");
    float *out = malloc(32 * 128 * sizeof *out);
    int64_t shape[2] = {32, 128};
    vdx_error err = {{0}};
    CHECK(weights_get_f32(w, "visual_projection.weight", out, 2, shape, &err) == 0, "%s",
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
    weights_close(w);
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
    weights_close(ref);
    weights_close(other);
}

TEST(torch_zip_equals_safetensors) { check_same_as_safetensors("fixtures/clip-tiny/pytorch_model.bin"); }

TEST(torch_legacy_equals_safetensors)
{
    check_same_as_safetensors("fixtures/clip-tiny/pytorch_model.legacy.bin");
}

/* Edge values of F16 (subnormals, infinities, NaN, -0) and BF16, from a file built here. */
TEST(f16_and_bf16_edge_values)
{
    const uint16_t f16[8] = {0x0001, 0x03ff, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x3c00, 0x7bff};
    const uint16_t bf16[4] = {0x3f80, 0xc020, 0x7f80, 0x0001};
    const char *header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[8],\"data_offsets\":[0,16]},"
                         "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[16,24]}}";
    uint8_t file[512];
    uint64_t len = strlen(header);
    memcpy(file, &len, 8);
    memcpy(file + 8, header, len);
    memcpy(file + 8 + len, f16, sizeof f16);
    memcpy(file + 8 + len + sizeof f16, bf16, sizeof bf16);
    vdx_error err = {{0}};
    vdx_weights *w = safetensors_parse(file, 8 + len + 24, "edge.safetensors", &err);
    REQUIRE(w, "%s", err.message);
    float h[8], b[4];
    int64_t hshape[1] = {8}, bshape[2] = {2, 2};
    CHECK(weights_get_f32(w, "h", h, 1, hshape, &err) == 0, "%s", err.message);
    CHECK(h[0] == ldexpf(1, -24) && h[1] == ldexpf(1023, -24), "subnormals %g %g", h[0], h[1]);
    CHECK(isinf(h[2]) && h[2] > 0 && isinf(h[3]) && h[3] < 0, "infinities %g %g", h[2], h[3]);
    CHECK(isnan(h[4]), "NaN %g", h[4]);
    CHECK(h[5] == 0 && signbit(h[5]), "-0 %g", h[5]);
    CHECK(h[6] == 1.0f && h[7] == 65504.0f, "1 and max %g %g", h[6], h[7]);
    CHECK(weights_get_f32(w, "b", b, 2, bshape, &err) == 0, "%s", err.message);
    CHECK(b[0] == 1.0f && b[1] == -2.5f && isinf(b[2]) && b[3] == ldexpf(1, -133),
          "bf16 %g %g %g %g", b[0], b[1], b[2], b[3]);
    weights_close(w);
}

/* Resident pages of a file in the page cache (mincore over a fresh mapping), in [0, 1]. */
static double cached_fraction(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return -1;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = ((size_t)st.st_size + page - 1) / page;
    unsigned char *in = malloc(pages);
    size_t resident = 0;
    if (in && mincore(map, (size_t)st.st_size, in) == 0)
        for (size_t i = 0; i < pages; i++)
            resident += in[i] & 1;
    munmap(map, (size_t)st.st_size);
    free(in);
    return (double)resident / (double)pages;
}

/* weights_release_pages lets go of a checkpoint's pages once they are copied (so they and
 * the copy are not both resident) but leaves the file in the page cache: the next command
 * that loads the model reads memory, not the disk. MADV_PAGEOUT, used before, evicted
 * them (a 577 MB ViT-B/32 checkpoint went from 577 MB cached to 1.3 MB at every load).
 * A 32 MB tensor written here; its values survive the release, and so do those of a
 * buffer that is not the file's (which gets PAGEOUT: DONTNEED would zero it). */
TEST(released_pages_stay_in_the_page_cache_and_keep_their_values)
{
    const char *path = test_tmpdir("release");
    static char file[4096];
    snprintf(file, sizeof file, "%s/big.safetensors", path);
    const size_t count = (size_t)8 << 20; /* floats: 32 MB */
    char header[128];
    int header_len = snprintf(header, sizeof header,
                              "{\"w\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}",
                              count, count * sizeof(float));
    float *values = malloc(count * sizeof *values), *back = malloc(count * sizeof *back);
    REQUIRE(values && back, "out of memory");
    for (size_t i = 0; i < count; i++)
        values[i] = (float)i * 0.5f;
    FILE *f = fopen(file, "wb");
    uint64_t len = (uint64_t)header_len;
    /* on disk, so its cached pages are clean, as a model's that was downloaded earlier */
    int written = f && fwrite(&len, 8, 1, f) == 1 && fwrite(header, 1, len, f) == len &&
                  fwrite(values, sizeof *values, count, f) == count && fflush(f) == 0 &&
                  fsync(fileno(f)) == 0;
    REQUIRE(written && fclose(f) == 0, "cannot write %s", file);
    vdx_error err = {{0}};
    vdx_weights *w = weights_open(file, &err);
    REQUIRE(w, "%s", err.message);
    const vdx_tensor *t = weights_find(w, "w");
    int64_t shape[1] = {(int64_t)count};
    CHECK(weights_get_f32(w, "w", back, 1, shape, &err) == 0, "%s", err.message);
    double before = cached_fraction(file);
    weights_release_pages(w, t->data, t->nbytes);
    double after = cached_fraction(file);
    CHECK(before >= 0.9 && after >= 0.9 * before,
          "%s in the page cache: %.0f%% before the release, %.0f%% after", file, 100 * before,
          100 * after);
    memset(back, 0, count * sizeof *back);
    CHECK(weights_get_f32(w, "w", back, 1, shape, &err) == 0 &&
              memcmp(back, values, count * sizeof *back) == 0,
          "the file's values after the release differ");
    weights_release_pages(w, back, count * sizeof *back);
    CHECK(memcmp(back, values, count * sizeof *back) == 0,
          "a buffer of our own lost its values when released");
    weights_close(w);
    remove(file);
    free(values);
    free(back);
}

int main(void)
{
    RUN(torch_zip_equals_safetensors);
    RUN(torch_legacy_equals_safetensors);
    RUN(safetensors_tiny_tensor_table);
    RUN(position_ids_are_int64_and_refused_as_floats);
    RUN(f16_converts_exactly);
    RUN(f16_and_bf16_edge_values);
    RUN(config_tiny);
    RUN(released_pages_stay_in_the_page_cache_and_keep_their_values);
    return test_summary("golden_weights");
}
