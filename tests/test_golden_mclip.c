/* Golden tests of the M-CLIP text tower (src/clip/xlmr.c): features of the 43 mclip-tiny
 * prompts from both weight files, the pooled means, every layer's hidden states for one
 * prompt, a padded batch equal to the single prompts, text → features through the
 * tokenizer, and load errors (../shared/fixtures/golden/mclip-tiny, made with
 * transformers' XLMRobertaModel and MultilingualCLIP.forward). */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "test.h"
#include "vdx/mclip.h"
#include "vdx/textmodel.h"

/* max|Δ| / max|golden| ≤ 1e-4 per vector and cosine ≥ 0.99999 (the fixtures README). */
#define REL_TOLERANCE 1e-4
#define MIN_COSINE 0.99999
#define N_PROMPTS 43
#define DIMS 32
#define WIDTH 64

static float *read_floats(const char *path, size_t count)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    float *v = malloc(count * sizeof *v);
    size_t got = v ? fread(v, sizeof *v, count, f) : 0;
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != count || extra) {
        free(v);
        return NULL;
    }
    return v;
}

static cJSON *read_json(const char *path)
{
    char *text;
    size_t size;
    if (vdx_read_file(path, &text, &size, NULL) != 0)
        return NULL;
    cJSON *json = cJSON_Parse(text);
    free(text);
    return json;
}

static double worst_rel = 0, worst_cos = 1;

static int close_to_golden(const float *v, const float *golden, int n, char *why, size_t size,
                           double tolerance)
{
    double max_delta = 0, max_golden = 0, dot = 0, vv = 0, gg = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)v[i] - golden[i]);
        if (!(d <= max_delta))
            max_delta = isnan(d) ? INFINITY : d;
        if (fabs(golden[i]) > max_golden)
            max_golden = fabs(golden[i]);
        dot += (double)v[i] * golden[i];
        vv += (double)v[i] * v[i];
        gg += (double)golden[i] * golden[i];
    }
    double rel = max_delta / max_golden, cosine = dot / sqrt(vv * gg);
    if (rel > worst_rel)
        worst_rel = rel;
    if (cosine < worst_cos)
        worst_cos = cosine;
    snprintf(why, size, "max|d|/max|golden| = %.3g, cosine = %.9f", rel, cosine);
    return rel <= tolerance && cosine >= MIN_COSINE;
}

/* Golden prompt ids, read once. */
static int32_t *prompt_ids[N_PROMPTS];
static int prompt_len[N_PROMPTS];
static char *prompt_text[N_PROMPTS];

static int load_prompts(void)
{
    if (prompt_ids[0])
        return 0;
    const char *path = test_shared_path("fixtures/golden/mclip-tiny/texts.json");
    cJSON *texts = path ? read_json(path) : NULL;
    if (cJSON_GetArraySize(texts) != N_PROMPTS) {
        cJSON_Delete(texts);
        return -1;
    }
    for (int i = 0; i < N_PROMPTS; i++) {
        const cJSON *e = cJSON_GetArrayItem(texts, i), *ids = cJSON_GetObjectItem(e, "ids");
        prompt_len[i] = cJSON_GetArraySize(ids);
        prompt_ids[i] = malloc((size_t)prompt_len[i] * sizeof(int32_t));
        for (int k = 0; k < prompt_len[i]; k++)
            prompt_ids[i][k] = cJSON_GetArrayItem(ids, k)->valueint;
        prompt_text[i] = strdup(cJSON_GetObjectItem(e, "text")->valuestring);
    }
    cJSON_Delete(texts);
    return 0;
}

/* A model directory holding only the given weight file (and the rest of mclip-tiny). */
static const char *dir_with_weights(const char *model_dir, const char *weights)
{
    const char *dir = test_tmpdir("mclip");
    static const char *const files[] = {"config.json", "sentencepiece.bpe.model"};
    char from[4096], to[4096];
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s/%s", model_dir, files[i]);
        snprintf(to, sizeof to, "%s/%s", dir, files[i]);
        if (symlink(from, to) != 0)
            return NULL;
    }
    snprintf(from, sizeof from, "%s/%s", model_dir, weights);
    snprintf(to, sizeof to, "%s/%s", dir, weights);
    return symlink(from, to) == 0 ? dir : NULL;
}

static void check_features(const char *weights)
{
    NEED_SHARED(model_dir, "fixtures/mclip-tiny");
    NEED_SHARED(golden_path, "fixtures/golden/mclip-tiny/features.f32");
    NEED_SHARED(pooled_path, "fixtures/golden/mclip-tiny/pooled.f32");
    REQUIRE(load_prompts() == 0, "cannot read texts.json");
    char abs[4096];
    REQUIRE(realpath(model_dir, abs), "realpath %s", model_dir);
    const char *dir = dir_with_weights(abs, weights);
    REQUIRE(dir, "cannot make a model directory with %s", weights);
    vdx_error err;
    vdx_mclip_model *m = vdx_mclip_load(dir, &err);
    REQUIRE(m, "%s", err.message);
    const vdx_mclip_config *c = vdx_mclip_get_config(m);
    CHECK(c->vocab_size == 8002 && c->hidden_size == WIDTH && c->num_layers == 2 &&
              c->num_heads == 2 && c->intermediate_size == 256 &&
              c->max_position_embeddings == 514 && c->num_dims == DIMS,
          "config V %d H %d L %d heads %d I %d P %d E %d", c->vocab_size, c->hidden_size,
          c->num_layers, c->num_heads, c->intermediate_size, c->max_position_embeddings,
          c->num_dims);
    float *golden = read_floats(golden_path, (size_t)N_PROMPTS * DIMS);
    float *golden_pooled = read_floats(pooled_path, (size_t)N_PROMPTS * WIDTH);
    REQUIRE(golden && golden_pooled, "cannot read the golden features");
    int good = 0;
    for (int i = 0; i < N_PROMPTS; i++) {
        float out[DIMS], pooled[WIDTH];
        char why[256];
        int rc = vdx_mclip_forward(m, prompt_ids[i], prompt_len[i], out, pooled, NULL, &err);
        CHECK(rc == 0, "prompt %d: %s", i, err.message);
        if (rc)
            continue;
        int ok = close_to_golden(out, golden + (size_t)i * DIMS, DIMS, why, sizeof why,
                                 REL_TOLERANCE);
        CHECK(ok, "%s prompt %d features: %s", weights, i, why);
        int ok_pooled = close_to_golden(pooled, golden_pooled + (size_t)i * WIDTH, WIDTH, why,
                                        sizeof why, REL_TOLERANCE);
        CHECK(ok_pooled, "%s prompt %d pooled: %s", weights, i, why);
        good += ok && ok_pooled;
    }
    printf("    %s: %d/%d prompts; worst max|d|/max|golden| %.3g, worst cosine %.9f\n", weights,
           good, N_PROMPTS, worst_rel, worst_cos);
    free(golden);
    free(golden_pooled);
    vdx_mclip_free(m);
}

TEST(features_from_safetensors) { check_features("model.safetensors"); }
TEST(features_from_torch_zip) { check_features("pytorch_model.bin"); }

TEST(hidden_states_of_every_layer)
{
    NEED_SHARED(model_dir, "fixtures/mclip-tiny");
    NEED_SHARED(path, "fixtures/golden/mclip-tiny/hidden_states.f32");
    NEED_SHARED(manifest_path, "fixtures/golden/mclip-tiny/manifest.json");
    REQUIRE(load_prompts() == 0, "cannot read texts.json");
    cJSON *manifest = read_json(manifest_path);
    const cJSON *hs = cJSON_GetObjectItem(manifest, "hidden_states");
    int index = cJSON_GetObjectItem(hs, "prompt_index")->valueint;
    const cJSON *shape = cJSON_GetObjectItem(hs, "shape");
    int layers = cJSON_GetArrayItem(shape, 0)->valueint;
    int tokens = cJSON_GetArrayItem(shape, 1)->valueint;
    cJSON_Delete(manifest);
    REQUIRE(index >= 0 && index < N_PROMPTS && tokens == prompt_len[index] && layers == 3,
            "manifest: prompt %d, %d layers, %d tokens", index, layers, tokens);
    float *golden = read_floats(path, (size_t)layers * tokens * WIDTH);
    REQUIRE(golden, "cannot read %s", path);
    vdx_error err;
    vdx_mclip_model *m = vdx_mclip_load(model_dir, &err);
    REQUIRE(m, "%s", err.message);
    float *hidden = malloc((size_t)layers * tokens * WIDTH * sizeof *hidden), out[DIMS];
    REQUIRE(vdx_mclip_forward(m, prompt_ids[index], tokens, out, NULL, hidden, &err) == 0, "%s",
            err.message);
    for (int l = 0; l < layers; l++)
        for (int t = 0; t < tokens; t++) {
            char why[256];
            size_t at = ((size_t)l * tokens + t) * WIDTH;
            CHECK(close_to_golden(hidden + at, golden + at, WIDTH, why, sizeof why, 1e-5),
                  "hidden state %d (%s), token %d: %s", l, l ? "layer output" : "embeddings", t,
                  why);
        }
    free(hidden);
    free(golden);
    vdx_mclip_free(m);
}

TEST(padded_batch_equals_single_prompts)
{
    NEED_SHARED(model_dir, "fixtures/mclip-tiny");
    NEED_SHARED(batch_path, "fixtures/golden/mclip-tiny/batch.json");
    NEED_SHARED(golden_path, "fixtures/golden/mclip-tiny/features_batch.f32");
    NEED_SHARED(single_path, "fixtures/golden/mclip-tiny/features.f32");
    cJSON *batch = read_json(batch_path);
    const cJSON *ids_json = cJSON_GetObjectItem(batch, "input_ids");
    const cJSON *mask_json = cJSON_GetObjectItem(batch, "attention_mask");
    int n = cJSON_GetArraySize(ids_json);
    int len = cJSON_GetArraySize(cJSON_GetArrayItem(ids_json, 0));
    REQUIRE(n == N_PROMPTS && len > 0, "batch.json: %d × %d", n, len);
    int32_t *ids = malloc((size_t)n * len * sizeof *ids), *mask = malloc((size_t)n * len * sizeof *mask);
    for (int i = 0; i < n; i++)
        for (int t = 0; t < len; t++) {
            ids[(size_t)i * len + t] = cJSON_GetArrayItem(cJSON_GetArrayItem(ids_json, i), t)->valueint;
            mask[(size_t)i * len + t] = cJSON_GetArrayItem(cJSON_GetArrayItem(mask_json, i), t)->valueint;
        }
    cJSON_Delete(batch);
    float *golden = read_floats(golden_path, (size_t)n * DIMS);
    float *single = read_floats(single_path, (size_t)n * DIMS);
    float *out = malloc((size_t)n * DIMS * sizeof *out);
    vdx_error err;
    vdx_mclip_model *m = vdx_mclip_load(model_dir, &err);
    REQUIRE(m && golden && single, "%s", m ? "cannot read the golden features" : err.message);
    REQUIRE(vdx_mclip_forward_batch(m, ids, mask, n, len, out, &err) == 0, "%s", err.message);
    for (int i = 0; i < n; i++) {
        char why[256];
        CHECK(close_to_golden(out + (size_t)i * DIMS, golden + (size_t)i * DIMS, DIMS, why,
                              sizeof why, REL_TOLERANCE), "batch row %d: %s", i, why);
        float alone[DIMS];
        /* the same row run alone, without padding, within 1e-6 of the batch row */
        int real = 0;
        while (real < len && mask[(size_t)i * len + real])
            real++;
        REQUIRE(vdx_mclip_forward(m, ids + (size_t)i * len, real, alone, NULL, NULL, &err) == 0,
                "%s", err.message);
        CHECK(close_to_golden(out + (size_t)i * DIMS, alone, DIMS, why, sizeof why, 1e-6),
              "batch row %d against the prompt alone: %s", i, why);
    }
    /* left padding and holes in the mask are refused, not silently mis-pooled */
    mask[0] = 0;
    CHECK(vdx_mclip_forward_batch(m, ids, mask, 1, len, out, &err) != 0 &&
              strstr(err.message, "right padding"), "a mask starting with 0: %s", err.message);
    vdx_mclip_free(m);
    free(ids);
    free(mask);
    free(golden);
    free(single);
    free(out);
}

TEST(text_to_features_through_the_tokenizer)
{
    NEED_SHARED(model_dir, "fixtures/mclip-tiny");
    NEED_SHARED(golden_path, "fixtures/golden/mclip-tiny/features.f32");
    REQUIRE(load_prompts() == 0, "cannot read texts.json");
    float *golden = read_floats(golden_path, (size_t)N_PROMPTS * DIMS);
    vdx_error err;
    vdx_mclip_model *m = vdx_mclip_load(model_dir, &err);
    REQUIRE(m && golden, "%s", m ? "cannot read features" : err.message);
    int truncated_count = 0;
    for (int i = 0; i < N_PROMPTS; i++) {
        float out[DIMS];
        int truncated = 0;
        char why[256];
        REQUIRE(vdx_mclip_embed_text(m, prompt_text[i], out, &truncated, &err) == 0, "%s",
                err.message);
        truncated_count += truncated;
        /* the model's own tokenizer, as a library user reaches it, gives the golden ids */
        int32_t ids[512];
        int n_ids = 0;
        REQUIRE(vdx_spm_encode(vdx_mclip_get_tokenizer(m), prompt_text[i], 512, ids, &n_ids,
                               NULL, NULL, NULL, &err) == 0, "%s", err.message);
        CHECK(n_ids == prompt_len[i] && !memcmp(ids, prompt_ids[i], (size_t)n_ids * sizeof *ids),
              "prompt %d: the model's tokenizer gives %d ids, the golden %d (or other ids)", i,
              n_ids, prompt_len[i]);
        CHECK(close_to_golden(out, golden + (size_t)i * DIMS, DIMS, why, sizeof why,
                              REL_TOLERANCE), "prompt %d: %s", i, why);
    }
    CHECK(truncated_count == 1, "%d prompts truncated, the fixture has one over 512 tokens",
          truncated_count);
    CHECK(vdx_mclip_embed_dim(m) == DIMS, "embed dim %d", vdx_mclip_embed_dim(m));
    free(golden);
    vdx_mclip_free(m);
}

TEST(bad_ids_and_model_directories_are_refused)
{
    NEED_SHARED(model_dir, "fixtures/mclip-tiny");
    NEED_SHARED(clip_dir, "fixtures/clip-tiny");
    vdx_error err;
    vdx_mclip_model *m = vdx_mclip_load(model_dir, &err);
    REQUIRE(m, "%s", err.message);
    float out[DIMS];
    int32_t bad[3] = {0, 8002, 2};
    CHECK(vdx_mclip_forward(m, bad, 3, out, NULL, NULL, &err) != 0 &&
              strstr(err.message, "token 1 is id 8002"), "%s", err.message);
    static int32_t long_ids[600];
    CHECK(vdx_mclip_forward(m, long_ids, 513, out, NULL, NULL, &err) != 0 &&
              strstr(err.message, "513 token ids"), "%s", err.message);
    vdx_mclip_free(m);
    CHECK(vdx_mclip_is_model_dir(model_dir) && !vdx_mclip_is_model_dir(clip_dir),
          "model type detection");
    CHECK(!vdx_mclip_load(clip_dir, &err) && strstr(err.message, "expected \"M-CLIP\""), "%s",
          err.message);
    /* a directory with config.json and the tokenizer but no weights */
    char abs[4096];
    REQUIRE(realpath(model_dir, abs), "realpath");
    const char *dir = dir_with_weights(abs, "special_tokens_map.json");
    REQUIRE(dir, "tmpdir");
    CHECK(!vdx_mclip_load(dir, &err) && strstr(err.message, "no model.safetensors"), "%s",
          err.message);
    /* CLIP weights under an M-CLIP config: the missing tensor is named */
    char clip_abs[4096], link[4096], target[4096];
    REQUIRE(realpath(clip_dir, clip_abs), "realpath");
    snprintf(link, sizeof link, "%s/model.safetensors", dir);
    snprintf(target, sizeof target, "%s/model.safetensors", clip_abs);
    REQUIRE(symlink(target, link) == 0, "symlink");
    CHECK(!vdx_mclip_load(dir, &err) &&
              strstr(err.message, "'transformer.embeddings.word_embeddings.weight' not found"),
          "%s", err.message);
    /* a config.json declaring another size than the checkpoint holds (a checkpoint missing
     * its last layer would otherwise load and give other vectors) */
    static const char *const declared[][2] = {
        {"\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"},
        {"\"vocab_size\": 8002", "\"vocab_size\": 8000"},
    };
    static const char *const wanted[] = {
        "modelBaseConfig.num_hidden_layers is 3, but the checkpoint has 2 encoder layers",
        "modelBaseConfig.vocab_size is 8000, but the checkpoint has 8002 rows of word_embeddings",
    };
    char config_path[4200], *config = NULL;
    size_t size;
    snprintf(config_path, sizeof config_path, "%s/config.json", model_dir);
    REQUIRE(vdx_read_file(config_path, &config, &size, &err) == 0, "%s", err.message);
    for (int i = 0; i < 2; i++) {
        const char *at = strstr(config, declared[i][0]);
        REQUIRE(at, "config.json has no %s", declared[i][0]);
        const char *sized = dir_with_weights(abs, "model.safetensors");
        REQUIRE(sized, "tmpdir");
        char path[4200];
        snprintf(path, sizeof path, "%s/config.json", sized);
        unlink(path); /* a link to the fixture's: replaced by an edited copy */
        FILE *f = fopen(path, "w");
        REQUIRE(f, "%s", path);
        fprintf(f, "%.*s%s%s", (int)(at - config), config, declared[i][1],
                at + strlen(declared[i][0]));
        fclose(f);
        CHECK(!vdx_mclip_load(sized, &err) && strstr(err.message, wanted[i]) &&
                  err.kind == VDX_ERR_CORRUPT,
              "%s", err.message);
    }
    free(config);
}

/* config.json with one edit: every refusal names the file and the key (the byte, for text
 * that is not JSON), is a VDX_ERR_CORRUPT, stays UTF-8 and short, and comes before the
 * weights are read. */
TEST(config_json_refusals_name_file_and_key)
{
    NEED_SHARED(model_dir, "fixtures/mclip-tiny");
    char abs[4096], config_path[4200], *config = NULL;
    REQUIRE(realpath(model_dir, abs), "realpath");
    vdx_error err;
    size_t size;
    snprintf(config_path, sizeof config_path, "%s/config.json", abs);
    REQUIRE(vdx_read_file(config_path, &config, &size, &err) == 0, "%s", err.message);
    char long_name[1300] = "";
    for (int i = 0; i < 600; i++)
        strcat(long_name, "\xC3\xA9"); /* é */
    char long_type[1400], long_base[1400];
    snprintf(long_type, sizeof long_type, "\"model_type\": \"%s\"", long_name);
    snprintf(long_base, sizeof long_base, "\"modelBase\": \"%s\"", long_name);
    const char *numdims = strstr(config, "\"numDims\": 32,");
    REQUIRE(numdims, "config.json has no numDims");
    char bad_json_at[96]; /* cJSON's position: just past the second comma */
    size_t bad_at = (size_t)(numdims - config) + strlen("\"numDims\": 32,,"), line_start = 0;
    int bad_line = 1;
    for (size_t i = 0; i < (size_t)(numdims - config); i++) /* the edit's line */
        if (config[i] == '\n')
            bad_line++, line_start = i + 1;
    snprintf(bad_json_at, sizeof bad_json_at, "invalid JSON at line %d, column %zu (byte %zu)",
             bad_line, bad_at - line_start + 1, bad_at);
    const struct {
        const char *from, *to, *want;
    } cases[] = {
        {"\"numDims\": 32,", "\"numDims\": 32,,", bad_json_at},
        {"\"num_hidden_layers\": 2", "\"num_hidden_layers\": 5000",
         "modelBaseConfig.num_hidden_layers must be an integer in 1..1024"},
        {"\"hidden_size\": 64", "\"hidden_size\": 100000",
         "modelBaseConfig.hidden_size must be an integer in 1..65536"},
        {"\"max_position_embeddings\": 514", "\"max_position_embeddings\": 2",
         "modelBaseConfig.max_position_embeddings must be an integer in 3..65536"},
        {"\"layer_norm_eps\": 1e-05", "\"layer_norm_eps\": \"1e-05\"",
         "modelBaseConfig.layer_norm_eps must be a number in (0, 1)"},
        {"\"modelBaseConfig\": {", "\"modelBaseConfig\": \"xlm-roberta\", \"x\": {",
         "modelBaseConfig is not an object"},
        {"\"transformerDimensions\": 64", "\"transformerDimensions\": 128",
         "transformerDimensions 128 and modelBaseConfig.hidden_size 64 disagree"},
        {"\"num_attention_heads\": 2", "\"num_attention_heads\": 3",
         "the hidden size 64 is not a multiple of 3 attention heads"},
        {"\"model_type\": \"M-CLIP\"", long_type, "model_type is \"\xC3\xA9\xC3\xA9"},
        {"\"modelBase\": \"random-xlm-roberta-tiny\"", long_base,
         "modelBase \"\xC3\xA9\xC3\xA9"},
        {"\"modelBase\": \"random-xlm-roberta-tiny\"", "\"modelBase\": 7",
         "modelBase is not a string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *at = strstr(config, cases[i].from);
        REQUIRE(at, "config.json has no %s", cases[i].from);
        const char *dir = dir_with_weights(abs, "model.safetensors");
        REQUIRE(dir, "tmpdir");
        char path[4200], prefix[4300];
        snprintf(path, sizeof path, "%s/config.json", dir);
        unlink(path); /* a link to the fixture's: replaced by an edited copy */
        FILE *f = fopen(path, "w");
        REQUIRE(f, "%s", path);
        fprintf(f, "%.*s%s%s", (int)(at - config), config, cases[i].to,
                at + strlen(cases[i].from));
        fclose(f);
        snprintf(prefix, sizeof prefix, "%s: ", path);
        size_t bad;
        vdx_mclip_model *m = vdx_mclip_load(dir, &err);
        CHECK(!m && strncmp(err.message, prefix, strlen(prefix)) == 0 &&
                  strstr(err.message, cases[i].want) && err.kind == VDX_ERR_CORRUPT &&
                  vdx_utf8_check(err.message, strlen(err.message), &bad) == 0 &&
                  strlen(err.message) < strlen(prefix) + 300,
              "case %zu: %s", i, m ? "loaded" : err.message);
        vdx_mclip_free(m);
    }
    free(config);
}

/* A checkpoint naming an encoder layer past VDX_CLIP_MAX_LAYERS is refused by that
 * tensor's name, before anything is allocated for its layers. */
TEST(checkpoint_with_too_many_layers_is_refused)
{
    NEED_SHARED(model_dir, "fixtures/mclip-tiny");
    char abs[4096];
    REQUIRE(realpath(model_dir, abs), "realpath");
    const char *dir = dir_with_weights(abs, "special_tokens_map.json");
    REQUIRE(dir, "tmpdir");
    static const char header[] =
        "{\"transformer.embeddings.word_embeddings.weight\":{\"dtype\":\"F32\",\"shape\":[4,1],"
        "\"data_offsets\":[0,16]},\"transformer.embeddings.position_embeddings.weight\":"
        "{\"dtype\":\"F32\",\"shape\":[3,1],\"data_offsets\":[16,28]},"
        "\"transformer.encoder.layer.0.intermediate.dense.weight\":{\"dtype\":\"F32\","
        "\"shape\":[1,1],\"data_offsets\":[28,32]},\"LinearTransformation.weight\":"
        "{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[32,36]},"
        "\"transformer.encoder.layer.1024.output.dense.bias\":{\"dtype\":\"F32\","
        "\"shape\":[1],\"data_offsets\":[36,40]}}";
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    REQUIRE(f, "%s", path);
    uint64_t len = sizeof header - 1;
    static const char zeros[40];
    fwrite(&len, 8, 1, f); /* little-endian, as on every machine vdx builds for */
    fwrite(header, 1, len, f);
    fwrite(zeros, 1, sizeof zeros, f);
    fclose(f);
    vdx_error err;
    char want[4400];
    snprintf(want, sizeof want, "%s: tensor 'transformer.encoder.layer.1024.output.dense.bias': "
             "at most 1024 encoder layers are supported", path);
    vdx_mclip_model *m = vdx_mclip_load(dir, &err);
    CHECK(!m && strcmp(err.message, want) == 0 && err.kind == VDX_ERR_CORRUPT, "%s",
          m ? "loaded" : err.message);
    vdx_mclip_free(m);
}

TEST(text_model_interface_and_pairings)
{
    NEED_SHARED(model_dir, "fixtures/mclip-tiny");
    NEED_SHARED(clip_dir, "fixtures/clip-tiny");
    NEED_SHARED(golden_path, "fixtures/golden/mclip-tiny/features.f32");
    REQUIRE(load_prompts() == 0, "cannot read texts.json");
    float *golden = read_floats(golden_path, (size_t)N_PROMPTS * DIMS);
    vdx_error err;
    vdx_text_model *tm = vdx_text_model_load(model_dir, &err);
    REQUIRE(tm && golden, "%s", tm ? "cannot read features" : err.message);
    CHECK(vdx_text_model_multilingual(tm) && vdx_text_model_dims(tm) == DIMS &&
              vdx_text_model_max_tokens(tm) == 512,
          "multilingual %d, dims %d, max tokens %d", vdx_text_model_multilingual(tm),
          vdx_text_model_dims(tm), vdx_text_model_max_tokens(tm));
    float out[DIMS];
    char why[256];
    REQUIRE(vdx_text_model_embed(tm, prompt_text[1], out, NULL, &err) == 0, "%s", err.message);
    CHECK(close_to_golden(out, golden + DIMS, DIMS, why, sizeof why, REL_TOLERANCE),
          "prompt 1 through the text-model interface: %s", why);
    vdx_text_model_free(tm);
    vdx_text_model *clip = vdx_text_model_load(clip_dir, &err);
    REQUIRE(clip, "%s", err.message);
    CHECK(!vdx_text_model_multilingual(clip) && vdx_text_model_max_tokens(clip) == 77,
          "CLIP's text tower: multilingual %d, max tokens %d", vdx_text_model_multilingual(clip),
          vdx_text_model_max_tokens(clip));
    vdx_text_model_free(clip);
    CHECK(vdx_text_model_known_pair("M-CLIP/XLM-Roberta-Large-Vit-B-32",
                                    "openai/clip-vit-base-patch32"), "B/32 pairing");
    CHECK(!vdx_text_model_known_pair("M-CLIP/XLM-Roberta-Large-Vit-B-32",
                                     "openai/clip-vit-large-patch14"), "B/32 text with L/14 images");
    CHECK(vdx_text_model_known_pair("/a/model", "/a/model"), "a model pairs with itself");
    free(golden);
}

int main(void)
{
    RUN(features_from_safetensors);
    RUN(features_from_torch_zip);
    RUN(hidden_states_of_every_layer);
    RUN(padded_batch_equals_single_prompts);
    RUN(text_to_features_through_the_tokenizer);
    RUN(bad_ids_and_model_directories_are_refused);
    RUN(config_json_refusals_name_file_and_key);
    RUN(checkpoint_with_too_many_layers_is_refused);
    RUN(text_model_interface_and_pairings);
    for (int i = 0; i < N_PROMPTS; i++) {
        free(prompt_ids[i]);
        free(prompt_text[i]);
    }
    return test_summary("test_golden_mclip");
}
