/* Error cases of the checkpoint readers and config parser: each broken file is built in a
 * temp directory (from the clip-tiny fixtures or from scratch) and the test asserts the
 * exact message, so a user always learns which file, tensor and byte went wrong. Also
 * the unpickler's handling of what torch writes beyond the fixtures: parameters wrapped
 * by _rebuild_parameter, OrderedDict state (BUILD), and non-contiguous strides. */
#include <sys/resource.h>
#include <unistd.h>
#include <zip.h>

#include "weights/weights.h"
#include "test.h"
#include "vdx/clip.h"

static char *join(const char *dir, const char *name)
{
    static char buf[4][4096];
    static int slot;
    char *out = buf[slot++ % 4];
    snprintf(out, sizeof buf[0], "%s/%s", dir, name);
    return out;
}

/* Files the tests write, removed (with their directories) at the end. */
static char *written[64];
static int written_count;

static void remember(const char *path)
{
    for (int i = 0; i < written_count; i++)
        if (strcmp(written[i], path) == 0)
            return;
    if (written_count < 64)
        written[written_count++] = strdup(path);
}

static void remove_written(void)
{
    for (int i = 0; i < written_count; i++) {
        unlink(written[i]);
        char *slash = strrchr(written[i], '/');
        *slash = 0;
        rmdir(written[i]);
        free(written[i]);
    }
}

static void write_bytes(const char *path, const void *data, size_t size)
{
    remember(path);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

static uint8_t *read_fixture(const char *path, size_t *size)
{
    char *data;
    vdx_error err = {{0}};
    if (vdx_read_file(path, &data, size, &err) != 0) {
        printf("    %s\n", err.message);
        return NULL;
    }
    return (uint8_t *)data;
}

/* Opens `path` expecting failure; checks the message contains `expected`. */
static void expect_open_error(const char *path, const char *expected)
{
    vdx_error err = {{0}};
    vdx_weights *w = weights_open(path, &err);
    CHECK(w == NULL, "%s opened", path);
    weights_close(w);
    CHECK(strstr(err.message, expected) != NULL, "message \"%s\" lacks \"%s\"", err.message,
          expected);
}

/* A safetensors file from a header string and `data_size` bytes of data. */
static const char *write_safetensors(const char *dir, const char *header, size_t data_size)
{
    size_t n = strlen(header);
    size_t total = 8 + n + data_size;
    uint8_t *buf = calloc(1, total);
    uint64_t len = n;
    memcpy(buf, &len, 8);
    memcpy(buf + 8, header, n);
    const char *path = join(dir, "model.safetensors");
    write_bytes(path, buf, total);
    free(buf);
    return path;
}

TEST(safetensors_truncated)
{
    NEED_SHARED(src, "fixtures/clip-tiny/model.safetensors");
    size_t size;
    uint8_t *data = read_fixture(src, &size);
    REQUIRE(data, "read");
    const char *path = join(test_tmpdir("trunc"), "model.safetensors");
    write_bytes(path, data, size - 1000);
    free(data);
    /* The last tensor in the file now ends past its end. */
    char expected[512];
    snprintf(expected, sizeof expected, "%s: tensor '", path);
    expect_open_error(path, expected);
    expect_open_error(path, "go past the end of the file, whose data section holds");
    expect_open_error(path, "(truncated file?)");
}

TEST(safetensors_bad_header_json)
{
    const char *dir = test_tmpdir("json");
    const char *path = write_safetensors(dir, "{\"a\": {\"dtype\": \"F32\",, }", 0);
    char expected[512];
    snprintf(expected, sizeof expected, "%s: header JSON is invalid at file byte 31", path);
    expect_open_error(path, expected);
}

TEST(safetensors_header_length_past_eof)
{
    const char *path = join(test_tmpdir("hlen"), "model.safetensors");
    uint8_t buf[64] = {0};
    uint64_t len = 1000000;
    memcpy(buf, &len, 8);
    buf[8] = '{';
    write_bytes(path, buf, sizeof buf);
    char expected[512];
    snprintf(expected, sizeof expected,
             "%s: header length 1000000 (bytes 0..7) goes past the end of the file (64 bytes)",
             path);
    expect_open_error(path, expected);
}

TEST(safetensors_unknown_dtype)
{
    const char *path = write_safetensors(
        test_tmpdir("dtype"), "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);
    expect_open_error(path, "tensor 'a' has dtype 'F64'; vdx reads F32, F16, BF16 and I64");
}

TEST(safetensors_overlapping_offsets)
{
    const char *header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    const char *path = write_safetensors(test_tmpdir("overlap"), header, 12);
    char expected[512];
    snprintf(expected, sizeof expected,
             "tensors 'a' and 'b' overlap at file byte %zu (data_offsets [0, 8] and [4, 12])",
             8 + strlen(header) + 4);
    expect_open_error(path, expected);
}

TEST(safetensors_size_does_not_match_span)
{
    const char *path = write_safetensors(
        test_tmpdir("span"), "{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    expect_open_error(path, "tensor 'a': 3 elements of F16 need 6 bytes but data_offsets "
                            "[0, 8] span 8");
}

TEST(safetensors_gap_between_tensors)
{
    const char *header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
    const char *path = write_safetensors(test_tmpdir("gap"), header, 12);
    expect_open_error(path, "belong to no tensor (gap before 'b')");
}

TEST(not_a_checkpoint)
{
    const char *path = join(test_tmpdir("junk"), "weights.bin");
    write_bytes(path, "GIF89a, not weights at all", 26);
    expect_open_error(path, "not a checkpoint vdx reads (expected safetensors, a torch zip "
                            "archive or a legacy torch pickle; first bytes 47 49 46 38)");
    write_bytes(path, "", 0);
    expect_open_error(path, "file too short for a checkpoint (0 bytes)");
}

TEST(shape_mismatch_names_file_tensor_and_shapes)
{
    NEED_SHARED(path, "fixtures/clip-tiny/model.safetensors");
    vdx_error err = {{0}};
    vdx_weights *w = weights_open(path, &err);
    REQUIRE(w, "%s", err.message);
    float out[32 * 128];
    int64_t shape[2] = {32, 64};
    CHECK(weights_get_f32(w, "visual_projection.weight", out, 2, shape, &err) == -1,
          "accepted");
    char expected[1024];
    snprintf(expected, sizeof expected,
             "%s: tensor 'visual_projection.weight' has shape [32, 128], expected [32, 64]",
             path);
    CHECK(strcmp(err.message, expected) == 0, "message \"%s\"", err.message);
    weights_close(w);
}

TEST(missing_tensor)
{
    NEED_SHARED(path, "fixtures/clip-tiny/pytorch_model.bin");
    vdx_error err = {{0}};
    vdx_weights *w = weights_open(path, &err);
    REQUIRE(w, "%s", err.message);
    float out[4];
    int64_t shape[1] = {4};
    CHECK(weights_get_f32(w, "text_model.pooler.weight", out, 1, shape, &err) == -1,
          "found");
    char expected[1024];
    snprintf(expected, sizeof expected,
             "%s: tensor 'text_model.pooler.weight' not found (the file holds 80 tensors)",
             path);
    CHECK(strcmp(err.message, expected) == 0, "message \"%s\"", err.message);
    weights_close(w);
}

/* Writes a torch zip archive holding `pickle` as archive/data.pkl and storage 0. */
static const char *write_torch_zip(const char *dir, const void *pickle, size_t pickle_size,
                                   const void *storage, size_t storage_size)
{
    const char *path = join(dir, "pytorch_model.bin");
    remember(path);
    int zerr;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (!z)
        exit(2);
    zip_source_t *s1 = zip_source_buffer(z, pickle, pickle_size, 0);
    zip_source_t *s2 = zip_source_buffer(z, storage, storage_size, 0);
    if (zip_file_add(z, "archive/data.pkl", s1, 0) < 0 ||
        zip_file_add(z, "archive/data/0", s2, 0) < 0 || zip_close(z) != 0)
        exit(2);
    return path;
}

/* A parameter 'w' of shape (2, 3) with strides (1, 2) over storage '0' of `numel` floats,
 * wrapped in _rebuild_parameter, in an OrderedDict with _metadata state (BUILD). */
static const char strided_pickle[] =
    "\x80\x02"
    "ccollections\nOrderedDict\nq\x00)Rq\x01("
    "X\x01\x00\x00\x00w"
    "ctorch._utils\n_rebuild_parameter\n("
    "ctorch._utils\n_rebuild_tensor_v2\n("
    "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0"
    "X\x03\x00\x00\x00" "cpuK\x06tQ"
    "K\x00(K\x02K\x03t(K\x01K\x02t\x89h\x00)RtR"
    "\x88h\x00)RtR"
    "u}X\x09\x00\x00\x00_metadata}sb.";

TEST(torch_zip_strided_parameter_is_made_contiguous)
{
    float storage[6] = {0, 1, 2, 3, 4, 5};
    const char *path = write_torch_zip(test_tmpdir("strided"), strided_pickle,
                                       sizeof strided_pickle - 1, storage, sizeof storage);
    vdx_error err = {{0}};
    vdx_weights *w = weights_open(path, &err);
    REQUIRE(w, "%s", err.message);
    float out[6];
    int64_t shape[2] = {2, 3};
    CHECK(weights_get_f32(w, "w", out, 2, shape, &err) == 0, "%s", err.message);
    const float expected[6] = {0, 2, 4, 1, 3, 5};
    CHECK(memcmp(out, expected, sizeof out) == 0, "got %g %g %g %g %g %g", out[0], out[1],
          out[2], out[3], out[4], out[5]);
    weights_close(w);
}

TEST(torch_zip_tensor_beyond_storage)
{
    /* The pickle says the storage holds 6 elements; the archive entry has only 5. */
    float storage[5] = {0};
    const char *path = write_torch_zip(test_tmpdir("short"), strided_pickle,
                                       sizeof strided_pickle - 1, storage, sizeof storage);
    expect_open_error(path, "storage 'archive/data/0' holds 20 bytes, its 6 F32 elements need 24");
}

TEST(torch_zip_refuses_os_system)
{
    static const char evil[] = "\x80\x02" "cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.";
    float storage[1] = {0};
    const char *path = write_torch_zip(test_tmpdir("evil"), evil, sizeof evil - 1, storage,
                                       sizeof storage);
    char expected[1024];
    snprintf(expected, sizeof expected,
             "%s (archive/data.pkl): pickle at byte 2: refusing global 'os.system' (only a "
             "state dict's tensors are loaded)",
             path);
    vdx_error err = {{0}};
    CHECK(weights_open(path, &err) == NULL, "opened");
    CHECK(strcmp(err.message, expected) == 0, "message \"%s\"", err.message);
}

TEST(torch_legacy_refuses_subprocess)
{
    NEED_SHARED(src, "fixtures/clip-tiny/pytorch_model.legacy.bin");
    size_t size;
    uint8_t *data = read_fixture(src, &size);
    REQUIRE(data, "read");
    /* Same length, so every later offset stays valid. */
    const char *needle = "collections\nOrderedDict\n";
    uint8_t *at = memmem(data, size, needle, strlen(needle));
    REQUIRE(at, "no OrderedDict global in the fixture");
    memcpy(at, "subprocess\ncheck_output\n", strlen(needle));
    const char *path = join(test_tmpdir("legacy-evil"), "pytorch_model.bin");
    write_bytes(path, data, size);
    char expected[1024];
    snprintf(expected, sizeof expected,
             "%s: pickle at byte %zu: refusing global 'subprocess.check_output' (only a state "
             "dict's tensors are loaded)",
             path, (size_t)(at - data) - 1);
    free(data);
    vdx_error err = {{0}};
    CHECK(weights_open(path, &err) == NULL, "opened");
    CHECK(strcmp(err.message, expected) == 0, "message \"%s\"", err.message);
}

TEST(torch_legacy_truncated)
{
    NEED_SHARED(src, "fixtures/clip-tiny/pytorch_model.legacy.bin");
    size_t size;
    uint8_t *data = read_fixture(src, &size);
    REQUIRE(data, "read");
    const char *path = join(test_tmpdir("legacy-trunc"), "pytorch_model.bin");
    write_bytes(path, data, size - 100);
    free(data);
    char expected[1024];
    snprintf(expected, sizeof expected, "but the file ends at %zu", size - 100);
    expect_open_error(path, "truncated: storage '");
    expect_open_error(path, expected);
}

TEST(torch_zip_truncated)
{
    NEED_SHARED(src, "fixtures/clip-tiny/pytorch_model.bin");
    size_t size;
    uint8_t *data = read_fixture(src, &size);
    REQUIRE(data, "read");
    const char *path = join(test_tmpdir("zip-trunc"), "pytorch_model.bin");
    write_bytes(path, data, size / 2);
    free(data);
    char expected[1024];
    snprintf(expected, sizeof expected, "%s: not a readable zip archive: ", path);
    expect_open_error(path, expected);
}

static void expect_config_error(const char *json, const char *expected)
{
    const char *path = join(test_tmpdir("config"), "config.json");
    write_bytes(path, json, strlen(json));
    vdx_clip_config cfg;
    vdx_error err = {{0}};
    CHECK(vdx_clip_config_load(path, &cfg, &err) == -1, "accepted %s", json);
    char full[1024];
    snprintf(full, sizeof full, "%s: %s", path, expected);
    CHECK(strcmp(err.message, full) == 0, "message \"%s\", expected \"%s\"", err.message, full);
}

TEST(config_errors)
{
    expect_config_error("{\"text_config\": {\"hidden_act\": \"relu\"}}",
                        "text_config.hidden_act 'relu' is not supported (quick_gelu or gelu)");
    expect_config_error("{\"vision_config\": {\"hidden_size\": 12.5}}",
                        "vision_config.hidden_size must be an integer in 1..65536");
    expect_config_error("{\"vision_config\": {\"hidden_size\": 100, \"num_attention_heads\": 3}}",
                        "vision_config.hidden_size 100 is not a multiple of num_attention_heads 3");
    expect_config_error("{\"projection_dim\": 512,", "invalid JSON at line 1, column 23 (byte 22)");
    /* the architectures vdx does not run are refused by name (docs/model-files.md) */
    expect_config_error("{\"vision_config\": {\"hidden_act\": \"gelu_new\"}}",
                        "vision_config.hidden_act 'gelu_new' is not supported (quick_gelu or gelu)");
    expect_config_error("{\"vision_config\": {\"image_size\": 225, \"patch_size\": 16}}",
                        "vision_config.image_size 225 is not a multiple of patch_size 16");
}

/* The sizes are refused when config.json is read, naming the key, before anything is
 * allocated: the model loader and the forward passes (channels·patch², batch·tokens in
 * int) rely on the limits of vdx/clip.h. These were accepted: intermediate_size up to
 * 2^20, 4096 layers, 64 channels, a 65536 px image in 1 px patches (2^32 + 1 tokens,
 * `vdx model info` overflowed an int printing them), a single position. */
TEST(config_size_limits)
{
    expect_config_error("{\"text_config\": {\"hidden_size\": 1e9}}",
                        "text_config.hidden_size must be an integer in 1..65536");
    expect_config_error("{\"text_config\": {\"num_hidden_layers\": 1000000}}",
                        "text_config.num_hidden_layers must be an integer in 1..1024");
    expect_config_error("{\"vision_config\": {\"num_hidden_layers\": 4096}}",
                        "vision_config.num_hidden_layers must be an integer in 1..1024");
    expect_config_error("{\"vision_config\": {\"intermediate_size\": 1048576}}",
                        "vision_config.intermediate_size must be an integer in 1..65536");
    expect_config_error("{\"vision_config\": {\"num_channels\": 64}}",
                        "vision_config.num_channels must be an integer in 1..16");
    expect_config_error("{\"vision_config\": {\"image_size\": 65536, \"patch_size\": 1}}",
                        "vision_config.image_size must be an integer in 1..4096");
    expect_config_error("{\"vision_config\": {\"image_size\": 4096, \"patch_size\": 8}}",
                        "vision_config.image_size 4096 in patches of 8 is 512 patches a side; "
                        "at most 256 are supported");
    expect_config_error("{\"text_config\": {\"max_position_embeddings\": 1}}",
                        "text_config.max_position_embeddings 1 leaves no room for the start and "
                        "end tokens (at least 2)");
    expect_config_error("{\"projection_dim\": 65537}",
                        "projection_dim must be an integer in 1..65536");
    /* an unknown activation is echoed cut between characters, so the message stays UTF-8 */
    char json[512], want[256];
    snprintf(json, sizeof json, "{\"text_config\": {\"hidden_act\": \"%s\"}}",
             "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
             "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
             "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9x");
    snprintf(want, sizeof want, "text_config.hidden_act '%s' is not supported (quick_gelu or gelu)",
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9");
    expect_config_error(json, want);
}

/* The clip-tiny model directory copied into dir, for a test to damage: its files but
 * preprocessor_config.json (the test writes its own), or, with nan_last_weight, all of
 * them with the checkpoint's last float (its last 4 bytes) set to NaN. */
static void copy_clip_tiny(const char *src_dir, const char *dir, int nan_last_weight)
{
    static const char *const files[] = {"config.json", "merges.txt", "model.safetensors",
                                        "preprocessor_config.json", "tokenizer_config.json",
                                        "vocab.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (!nan_last_weight && !strcmp(files[i], "preprocessor_config.json"))
            continue;
        char from[4200];
        snprintf(from, sizeof from, "%s/%s", src_dir, files[i]);
        size_t size;
        uint8_t *data = read_fixture(from, &size);
        REQUIRE(data, "%s", from);
        if (nan_last_weight && !strcmp(files[i], "model.safetensors")) {
            float nan = NAN;
            memcpy(data + size - 4, &nan, 4);
        }
        write_bytes(join(dir, files[i]), data, size);
        free(data);
    }
}

/* Every caller sizes its pixel buffers from preprocessor_config.json's crop, and the vision
 * tower reads num_channels x image_size² floats of each image: a model whose crop is not
 * its image size made search, the server and ingest read past the buffer (only `vdx
 * embed` checked). The load refuses it, before reading the weights. */
TEST(model_crop_must_match_image_size)
{
    NEED_SHARED(src_dir, "fixtures/clip-tiny");
    const char *dir = test_tmpdir("crop-model");
    copy_clip_tiny(src_dir, dir, 0);
    const char *pre = "{\"size\": 32, \"crop_size\": 32}";
    const char *pre_path = join(dir, "preprocessor_config.json");
    write_bytes(pre_path, pre, strlen(pre));
    vdx_error err = {{0}};
    vdx_clip_model *model = vdx_clip_load(dir, &err);
    char want[4400];
    snprintf(want, sizeof want, "%s: crops images to 32x32, but config.json's vision_config "
             "takes 224x224 images with 3 channels (the crop must be image_size square, RGB)",
             pre_path);
    CHECK(!model && !strcmp(err.message, want) && err.kind == VDX_ERR_CORRUPT, "%s",
          model ? "loaded" : err.message);
    vdx_clip_free(model);
    /* the matching crop loads */
    pre = "{\"size\": 224, \"crop_size\": {\"height\": 224, \"width\": 224}}";
    write_bytes(pre_path, pre, strlen(pre));
    model = vdx_clip_load(dir, &err);
    CHECK(model != NULL, "%s", err.message);
    vdx_clip_free(model);
}

TEST(config_defaults_and_gelu)
{
    const char *path = join(test_tmpdir("config-defaults"), "config.json");
    const char *json = "{\"vision_config\": {\"patch_size\": 16, \"hidden_act\": \"gelu\"},"
                       " \"text_config_dict\": {\"hidden_size\": 768, \"num_attention_heads\": 12}}";
    write_bytes(path, json, strlen(json));
    vdx_clip_config cfg;
    vdx_error err = {{0}};
    REQUIRE(vdx_clip_config_load(path, &cfg, &err) == 0, "%s", err.message);
    CHECK(cfg.vision.patch_size == 16 && cfg.vision.hidden_act_quick_gelu == 0 &&
              cfg.vision.hidden_size == 768 && cfg.vision.num_layers == 12,
          "vision");
    CHECK(cfg.text.hidden_size == 768 && cfg.text.num_heads == 12 &&
              cfg.text.hidden_act_quick_gelu == 1 && cfg.text.vocab_size == 49408 &&
              cfg.projection_dim == 512,
          "text");
}

/* A hand-made Hugging Face cache: refs/main → snapshots/<commit>/. */
TEST(resolve_model_in_hub_cache)
{
    const char *cache = test_tmpdir("hub");
    const char *commit = "0123456789abcdef0123456789abcdef01234567";
    char path[4096], snapshot[4096];
    snprintf(path, sizeof path, "%s/models--acme--clip-test/refs", cache);
    vdx_error err = {{0}};
    REQUIRE(vdx_mkdirs(path, &err) == 0, "%s", err.message);
    snprintf(snapshot, sizeof snapshot, "%s/models--acme--clip-test/snapshots/%s", cache,
             commit);
    REQUIRE(vdx_mkdirs(snapshot, &err) == 0, "%s", err.message);
    snprintf(path, sizeof path, "%s/models--acme--clip-test/refs/main", cache);
    write_bytes(path, commit, strlen(commit));
    setenv("HF_HUB_CACHE", cache, 1);
    char dir[4096];
    CHECK(vdx_clip_resolve_model("acme/clip-test", dir, sizeof dir, &err) == 0, "%s",
          err.message);
    CHECK(strcmp(dir, snapshot) == 0, "resolved to %s", dir);
    char with_rev[128];
    snprintf(with_rev, sizeof with_rev, "acme/clip-test@%s", commit);
    CHECK(vdx_clip_resolve_model(with_rev, dir, sizeof dir, &err) == 0, "%s", err.message);
    CHECK(strcmp(dir, snapshot) == 0, "resolved @commit to %s", dir);
    /* A directory is used as is. */
    CHECK(vdx_clip_resolve_model(cache, dir, sizeof dir, &err) == 0 && !strcmp(dir, cache),
          "directory: %s", err.message);
    /* Not pulled: say where we looked and how to pull. */
    CHECK(vdx_clip_resolve_model("acme/other", dir, sizeof dir, &err) == -1, "resolved");
    char expected[4096];
    snprintf(expected, sizeof expected,
             "model 'acme/other' is not in the Hugging Face cache (looked for "
             "%s/models--acme--other/refs/main; the cache is $HF_HUB_CACHE, else "
             "$HF_HOME/hub, else ~/.cache/huggingface/hub). 'vdx model pull acme/other' "
             "downloads it",
             cache);
    CHECK(strcmp(err.message, expected) == 0, "message \"%s\"", err.message);
    CHECK(vdx_clip_resolve_model("./no/such/dir", dir, sizeof dir, &err) == -1, "resolved");
    CHECK(strcmp(err.message, "model './no/such/dir': no such directory (and not a Hugging "
                              "Face repo id like openai/clip-vit-base-patch32)") == 0,
          "message \"%s\"", err.message);
    /* A cache path leaving no room for models--ORG--NAME/snapshots/...: refused, not cut. */
    char long_cache[3700];
    memset(long_cache, 'c', sizeof long_cache - 1);
    long_cache[0] = '/';
    long_cache[sizeof long_cache - 1] = 0;
    setenv("HF_HUB_CACHE", long_cache, 1);
    CHECK(vdx_clip_resolve_model("acme/other", dir, sizeof dir, &err) == -1, "resolved");
    const char too_long[] = "the Hugging Face cache directory path is too long (3699 bytes, "
                            "at most 3583; from $HF_HUB_CACHE, $HF_HOME, $XDG_CACHE_HOME or "
                            "$HOME): /ccc";
    CHECK(strncmp(err.message, too_long, sizeof too_long - 1) == 0, "message \"%.300s\"",
          err.message);
    setenv("HF_ENDPOINT", "http://127.0.0.1:9", 1); /* a regression must not go online */
    CHECK(vdx_clip_pull("acme/other", NULL, dir, sizeof dir, &err) == -1 &&
              strncmp(err.message, too_long, sizeof too_long - 1) == 0,
          "pull: \"%.300s\"", err.message);
    unsetenv("HF_ENDPOINT");
    unsetenv("HF_HUB_CACHE");
    unlink(path);
    rmdir(snapshot);
    char *parent = strrchr(snapshot, '/');
    *parent = 0;
    rmdir(snapshot);
    snprintf(path, sizeof path, "%s/models--acme--clip-test/refs", cache);
    rmdir(path);
    snprintf(path, sizeof path, "%s/models--acme--clip-test", cache);
    rmdir(path);
    rmdir(cache);
}

/* F12: NaN and Inf weights are refused by the model loader's check, naming the file,
 * the tensor and the element (the conversion itself keeps them, see golden_weights). */
TEST(non_finite_weights_refused)
{
    const char *dir = test_tmpdir("nan-weights");
    static const char header[] = "{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
    size_t n = sizeof header - 1;
    uint8_t buf[8 + sizeof header + 16];
    uint64_t len = n;
    memcpy(buf, &len, 8);
    memcpy(buf + 8, header, n);
    uint16_t halves[4] = {0x3C00, 0x3C00, 0x7E00, 0x3C00}; /* 1, 1, NaN, 1 */
    float floats[2] = {1.0f, INFINITY};
    memcpy(buf + 8 + n, halves, 8);
    memcpy(buf + 8 + n + 8, floats, 8);
    const char *path = join(dir, "model.safetensors");
    write_bytes(path, buf, 8 + n + 16);
    vdx_error err = {{0}};
    vdx_weights *w = weights_open(path, &err);
    REQUIRE(w, "%s", err.message);
    float out[4];
    int64_t shape4[1] = {4}, shape2[1] = {2};
    char expected[4200];
    CHECK(weights_get_f32(w, "a", out, 1, shape4, &err) == 0 &&
          weights_check_finite(w, "a", out, 4, &err) == -1, "NaN accepted");
    snprintf(expected, sizeof expected, "%s: tensor 'a' holds NaN at element 2: the checkpoint is damaged", path);
    CHECK(!strcmp(err.message, expected), "message \"%s\"", err.message);
    CHECK(weights_get_f32(w, "b", out, 1, shape2, &err) == 0 &&
          weights_check_finite(w, "b", out, 2, &err) == -1, "Inf accepted");
    snprintf(expected, sizeof expected, "%s: tensor 'b' holds an infinite value at element 1: the checkpoint is damaged", path);
    CHECK(!strcmp(err.message, expected), "message \"%s\"", err.message);
    weights_close(w);
}

/* F12 end to end: clip-tiny with one weight set to NaN does not load; the error names
 * the tensor (the last one in the file, whose last element is the file's last 4 bytes). */
TEST(model_with_nan_weight_does_not_load)
{
    NEED_SHARED(src_dir, "fixtures/clip-tiny");
    const char *dir = test_tmpdir("nan-model");
    copy_clip_tiny(src_dir, dir, 1);
    vdx_error err = {{0}};
    vdx_clip_model *model = vdx_clip_load(dir, &err);
    CHECK(!model && strstr(err.message, "model.safetensors: tensor '") &&
          strstr(err.message, "' holds NaN at element "), "%s", model ? "loaded" : err.message);
    vdx_clip_free(model);
}

/* F12: the unpickler's allocation cap: a 2 MB pickle of a million MARK + EMPTY_LIST
 * pairs is refused before it takes hundreds of MB. */
TEST(pickle_allocation_caps)
{
    size_t n = 1000000, size = 2 + 2 * n + 1;
    uint8_t *bomb = malloc(size);
    bomb[0] = 0x80;
    bomb[1] = 2;
    for (size_t i = 0; i < n; i++) {
        bomb[2 + 2 * i] = '(';
        bomb[3 + 2 * i] = ']';
    }
    bomb[size - 1] = '.';
    vdx_pickle_state_dict sd = {0};
    vdx_error err = {{0}};
    CHECK(pickle_load_state_dict(bomb, size, 0, "bomb.pkl", &sd, NULL, &err) != 0 &&
          strstr(err.message, "bomb.pkl: pickle at byte ") &&
          strstr(err.message, "unpickling needs more than 64 MiB of memory (a state dict needs far less): refused"),
          "%s", err.message);
    free(bomb);
#if !defined(__SANITIZE_ADDRESS__) /* ASan's quarantine and shadow memory inflate the peak */
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    CHECK(usage.ru_maxrss < 256 * 1024, "peak memory %ld KiB", usage.ru_maxrss);
#endif
}

int main(void)
{
    RUN(safetensors_truncated);
    RUN(safetensors_bad_header_json);
    RUN(safetensors_header_length_past_eof);
    RUN(safetensors_unknown_dtype);
    RUN(safetensors_overlapping_offsets);
    RUN(safetensors_size_does_not_match_span);
    RUN(safetensors_gap_between_tensors);
    RUN(not_a_checkpoint);
    RUN(shape_mismatch_names_file_tensor_and_shapes);
    RUN(missing_tensor);
    RUN(torch_zip_strided_parameter_is_made_contiguous);
    RUN(torch_zip_tensor_beyond_storage);
    RUN(torch_zip_refuses_os_system);
    RUN(torch_legacy_refuses_subprocess);
    RUN(torch_legacy_truncated);
    RUN(torch_zip_truncated);
    RUN(config_errors);
    RUN(config_size_limits);
    RUN(model_crop_must_match_image_size);
    RUN(pickle_allocation_caps);
    RUN(non_finite_weights_refused);
    RUN(model_with_nan_weight_does_not_load);
    RUN(config_defaults_and_gelu);
    RUN(resolve_model_in_hub_cache);
    remove_written();
    return test_summary("weights_errors");
}
