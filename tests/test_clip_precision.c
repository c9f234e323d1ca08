/* Tests of the engine's precisions (src/engine/matmul.c through src/clip/model.c) on the
 * golden fixtures (../shared/fixtures/golden/clip-tiny: all 20 images, all 25 texts):
 * bf16 features keep cosine >= 0.9995 to the golden float32 features, int8 >= 0.99; on
 * the sample dataset (../shared/data/unsplash-sample, 48 photos) every golden prompt's
 * top 9 under bf16 shares >= 8 items with fp32's. The fp32 path also runs with oneDNN
 * held to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2, in a child process: oneDNN reads it once) and
 * keeps the golden tolerance there. Threads: 1, 2 and 4 agree to 1e-6 relative,
 * concurrent callers of one bf16 model get identical vectors. bf16 cases skip with
 * "CPU lacks avx512_bf16" where the CPU has no native bf16. `auto` runs the CPU's fastest
 * precision (int8, or bf16 with AMX) and leaves it for the next one on a model whose int8
 * features miss the floor (clip-tiny given an outlier channel). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "vdx/clip.h"
#include "vdx/image.h"

#define GOLDEN "fixtures/golden/clip-tiny"
#define N_IMAGES 20
#define N_TEXTS 25
#define DIM 32
#define PIXELS (3 * 224 * 224)

static float pixels[N_IMAGES * PIXELS], golden_images[N_IMAGES * DIM];
static float golden_texts[N_TEXTS * DIM];
static int32_t ids[N_TEXTS][77];
static int n_ids[N_TEXTS];
static int fixtures_ready;

static int read_floats(const char *rel, float *out, size_t count)
{
    const char *path = test_shared_path(rel);
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f)
        return -1;
    size_t got = fread(out, sizeof *out, count, f);
    fclose(f);
    return got == count ? 0 : -1;
}

static cJSON *read_json(const char *rel)
{
    const char *path = test_shared_path(rel);
    char *text;
    size_t size;
    if (!path || vdx_read_file(path, &text, &size, NULL) != 0)
        return NULL;
    cJSON *json = cJSON_Parse(text);
    free(text);
    return json;
}

/* The golden pixel_values (in manifest row order), features and prompt ids. */
static int load_fixtures(void)
{
    cJSON *manifest = read_json(GOLDEN "/manifest.json"), *texts = read_json(GOLDEN "/texts.json");
    int rc = manifest && texts ? 0 : -1;
    const cJSON *images = manifest ? cJSON_GetObjectItem(manifest, "images") : NULL;
    if (rc == 0 && (cJSON_GetArraySize(images) != N_IMAGES || cJSON_GetArraySize(texts) != N_TEXTS))
        rc = -1;
    for (int i = 0; rc == 0 && i < N_IMAGES; i++) {
        const cJSON *item = cJSON_GetArrayItem(images, i);
        int row = cJSON_GetObjectItem(item, "row")->valueint;
        char rel[512];
        snprintf(rel, sizeof rel, GOLDEN "/pixels/%s.f32",
                 cJSON_GetObjectItem(item, "name")->valuestring);
        rc = row >= 0 && row < N_IMAGES ? read_floats(rel, pixels + (size_t)row * PIXELS, PIXELS)
                                        : -1;
    }
    for (int t = 0; rc == 0 && t < N_TEXTS; t++) {
        const cJSON *list = cJSON_GetObjectItem(cJSON_GetArrayItem(texts, t), "ids");
        n_ids[t] = cJSON_GetArraySize(list);
        if (n_ids[t] < 1 || n_ids[t] > 77)
            rc = -1;
        for (int i = 0; rc == 0 && i < n_ids[t]; i++)
            ids[t][i] = cJSON_GetArrayItem(list, i)->valueint;
    }
    if (rc == 0)
        rc = read_floats(GOLDEN "/image_features.f32", golden_images, N_IMAGES * DIM);
    if (rc == 0)
        rc = read_floats(GOLDEN "/text_features.f32", golden_texts, N_TEXTS * DIM);
    cJSON_Delete(manifest);
    cJSON_Delete(texts);
    return rc;
}

static double cosine(const float *a, const float *b, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

static vdx_clip_model *load(vdx_precision precision, vdx_error *err)
{
    const char *dir = test_shared_path("fixtures/clip-tiny");
    if (!dir) {
        snprintf(err->message, sizeof err->message, "../shared/fixtures/clip-tiny not found");
        return NULL;
    }
    vdx_clip_options options = {precision, precision, NULL, NULL};
    return vdx_clip_load_with(dir, &options, err);
}

/* Worst cosine over all golden images and texts in `precision`; -1 on a failure. */
static double worst_golden_cosine(vdx_precision precision)
{
    vdx_error err = {{0}};
    vdx_clip_model *m = load(precision, &err);
    if (!m) {
        printf("    load: %s\n", err.message);
        return -1;
    }
    static float out[N_IMAGES * DIM];
    double worst = 2;
    if (vdx_clip_embed_images(m, pixels, N_IMAGES, out, &err) != 0)
        worst = -1;
    for (int i = 0; worst >= 0 && i < N_IMAGES; i++)
        worst = fmin(worst, cosine(out + i * DIM, golden_images + i * DIM, DIM));
    for (int t = 0; worst >= 0 && t < N_TEXTS; t++) {
        if (vdx_clip_embed_tokens(m, ids[t], n_ids[t], out, &err) != 0)
            worst = -1;
        else
            worst = fmin(worst, cosine(out, golden_texts + t * DIM, DIM));
    }
    if (worst < 0)
        printf("    embed: %s\n", err.message);
    printf("    %s (%s): worst cosine to the golden features %.6f\n",
           vdx_precision_name(vdx_clip_image_precision(m)), vdx_clip_image_isa(m), worst);
    vdx_clip_free(m);
    return worst;
}

#define NEED_FIXTURES()                                                                  \
    if (!fixtures_ready) {                                                               \
        NEED_SHARED(fixture_, GOLDEN "/manifest.json");                                  \
        REQUIRE(0, "cannot read the golden fixtures");                                   \
    }

#define NEED_BF16()                                                                      \
    if (vdx_precision_resolve(VDX_PRECISION_BF16, NULL) != VDX_PRECISION_BF16)           \
    SKIP("CPU lacks avx512_bf16")

TEST(bf16_cosine_to_golden_at_least_0_9995)
{
    NEED_FIXTURES();
    NEED_BF16();
    double worst = worst_golden_cosine(VDX_PRECISION_BF16);
    CHECK(worst >= 0.9995, "bf16 worst cosine %.6f < 0.9995", worst);
}

TEST(int8_cosine_to_golden_at_least_0_99)
{
    NEED_FIXTURES();
    double worst = worst_golden_cosine(VDX_PRECISION_INT8);
    CHECK(worst >= 0.99, "int8 worst cosine %.6f < 0.99", worst);
}

TEST(fp32_cosine_to_golden)
{
    NEED_FIXTURES();
    double worst = worst_golden_cosine(VDX_PRECISION_FP32);
    CHECK(worst >= 0.999999, "fp32 worst cosine %.7f", worst);
}

/* ---- auto ------------------------------------------------------------------------- */

/* What vdx_precision_resolve(AUTO) must give on this CPU (docs/clip-engine.md, "What pays
 * where"): bf16 with AMX, int8 everywhere else. */
static vdx_precision expected_auto(void)
{
    char *text = NULL;
    size_t size = 0;
    int amx = vdx_read_file("/proc/cpuinfo", &text, &size, NULL) == 0 && strstr(text, " amx_bf16");
    free(text);
    return amx && vdx_precision_resolve(VDX_PRECISION_BF16, NULL) == VDX_PRECISION_BF16
               ? VDX_PRECISION_BF16
               : VDX_PRECISION_INT8;
}

static char notices[1024];
static void keep_notice(const char *message, void *user)
{
    snprintf(notices + strlen(notices), sizeof notices - strlen(notices), "%s\n", message);
}

TEST(auto_runs_the_fastest_precision_within_its_floor)
{
    NEED_FIXTURES();
    vdx_error err = {{0}};
    CHECK(vdx_precision_resolve(VDX_PRECISION_AUTO, NULL) == expected_auto(), "auto resolves to %s",
          vdx_precision_name(vdx_precision_resolve(VDX_PRECISION_AUTO, NULL)));
    notices[0] = 0;
    vdx_clip_options options = {VDX_PRECISION_AUTO, VDX_PRECISION_AUTO, keep_notice, NULL};
    vdx_clip_model *m = vdx_clip_load_with(test_shared_path("fixtures/clip-tiny"), &options, &err);
    REQUIRE(m, "%s", err.message);
    CHECK(vdx_clip_image_precision(m) == expected_auto() &&
              vdx_clip_text_precision(m) == expected_auto(),
          "auto loaded image %s, text %s", vdx_precision_name(vdx_clip_image_precision(m)),
          vdx_precision_name(vdx_clip_text_precision(m)));
    CHECK(notices[0] == 0, "clip-tiny meets its floor, yet: %s", notices);
    vdx_clip_free(m);
    /* one tower auto, the other as asked */
    options.text_precision = VDX_PRECISION_FP32;
    m = vdx_clip_load_with(test_shared_path("fixtures/clip-tiny"), &options, &err);
    REQUIRE(m, "%s", err.message);
    CHECK(vdx_clip_image_precision(m) == expected_auto() &&
              vdx_clip_text_precision(m) == VDX_PRECISION_FP32,
          "image %s, text %s", vdx_precision_name(vdx_clip_image_precision(m)),
          vdx_precision_name(vdx_clip_text_precision(m)));
    vdx_clip_free(m);
}

static int copy_file(const char *from, const char *to)
{
    char *data = NULL;
    size_t size = 0;
    if (vdx_read_file(from, &data, &size, NULL) != 0)
        return -1;
    FILE *f = fopen(to, "wb");
    int rc = f && fwrite(data, 1, size, f) == size ? 0 : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    free(data);
    return rc;
}

static float *tensor(char *data, const cJSON *header, const char *name, int *rows, int *cols)
{
    const cJSON *t = cJSON_GetObjectItem(header, name);
    const cJSON *shape = cJSON_GetObjectItem(t, "shape");
    const cJSON *at = cJSON_GetObjectItem(t, "data_offsets");
    if (!t || !at || strcmp(cJSON_GetObjectItem(t, "dtype")->valuestring, "F32") != 0)
        return NULL;
    *rows = cJSON_GetArrayItem(shape, 0)->valueint;
    *cols = cJSON_GetArraySize(shape) > 1 ? cJSON_GetArrayItem(shape, 1)->valueint : 1;
    return (float *)(data + (size_t)cJSON_GetArrayItem(at, 0)->valuedouble);
}

/* clip-tiny with an outlier channel before every attention block: LayerNorm 1's gain and
 * bias of channel 3 times 300 and the q, k, v weights of that input channel divided by
 * 300. The same function in float32 (the golden features still hold), but every row
 * entering the qkv product has one value 300 times the others, so one int8 scale per
 * row leaves the rest a bit or two: what outlier features in trained checkpoints do to
 * naive dynamic int8. Returns the model directory, or NULL. */
static const char *outlier_model(void)
{
    const char *src = test_shared_path("fixtures/clip-tiny"), *dir = test_tmpdir("outliers");
    const char *files[] = {"config.json", "vocab.json", "merges.txt", "preprocessor_config.json",
                           "tokenizer_config.json"};
    static char path[4096], from[4096];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(from, sizeof from, "%s/%s", src, files[i]);
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (copy_file(from, path) != 0)
            return NULL;
    }
    snprintf(from, sizeof from, "%s/model.safetensors", src);
    char *file = NULL;
    size_t size = 0;
    if (vdx_read_file(from, &file, &size, NULL) != 0 || size < 8)
        return NULL;
    uint64_t header_len = 0;
    memcpy(&header_len, file, 8);
    char *json = strndup(file + 8, (size_t)header_len);
    cJSON *header = cJSON_Parse(json);
    free(json);
    char *data = file + 8 + header_len;
    const float factor = 300;
    const int channel = 3;
    int ok = header != NULL;
    for (int tower = 0; ok && tower < 2; tower++)
        for (int layer = 0; ok && layer < 2; layer++) {
            char name[160];
            const char *prefix = tower ? "text_model" : "vision_model";
            int rows, cols;
            const char *norm[] = {"weight", "bias"}, *proj[] = {"q_proj", "k_proj", "v_proj"};
            for (int k = 0; ok && k < 2; k++) {
                snprintf(name, sizeof name, "%s.encoder.layers.%d.layer_norm1.%s", prefix, layer,
                         norm[k]);
                float *v = tensor(data, header, name, &rows, &cols);
                ok = v != NULL && channel < rows;
                if (ok)
                    v[channel] *= factor;
            }
            for (int k = 0; ok && k < 3; k++) {
                snprintf(name, sizeof name, "%s.encoder.layers.%d.self_attn.%s.weight", prefix,
                         layer, proj[k]);
                float *w = tensor(data, header, name, &rows, &cols);
                ok = w != NULL && channel < cols;
                for (int r = 0; ok && r < rows; r++)
                    w[(size_t)r * cols + channel] /= factor;
            }
        }
    cJSON_Delete(header);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = ok ? fopen(path, "wb") : NULL;
    ok = f && fwrite(file, 1, size, f) == size;
    if (f && fclose(f) != 0)
        ok = 0;
    free(file);
    return ok ? dir : NULL;
}

/* Worst cosine of m's features to the golden ones (images and texts). */
static double worst_to_golden(const vdx_clip_model *m)
{
    vdx_error err = {{0}};
    static float out[N_IMAGES * DIM];
    double worst = 2;
    if (vdx_clip_embed_images(m, pixels, N_IMAGES, out, &err) != 0)
        return -1;
    for (int i = 0; i < N_IMAGES; i++)
        worst = fmin(worst, cosine(out + i * DIM, golden_images + i * DIM, DIM));
    for (int t = 0; t < N_TEXTS; t++) {
        if (vdx_clip_embed_tokens(m, ids[t], n_ids[t], out, &err) != 0)
            return -1;
        worst = fmin(worst, cosine(out, golden_texts + t * DIM, DIM));
    }
    return worst;
}

TEST(auto_leaves_int8_where_this_model_misses_its_floor)
{
    NEED_FIXTURES();
    const char *dir = outlier_model();
    REQUIRE(dir, "cannot write the outlier model");
    vdx_error err = {{0}};
    vdx_clip_model *fp32 = vdx_clip_load(dir, &err);
    REQUIRE(fp32, "%s", err.message);
    double worst = worst_to_golden(fp32);
    CHECK(worst >= 0.99999, "the outlier model in fp32 is clip-tiny: worst cosine %.7f", worst);
    vdx_clip_free(fp32);
    vdx_clip_options options = {VDX_PRECISION_INT8, VDX_PRECISION_INT8, NULL, NULL};
    vdx_clip_model *int8 = vdx_clip_load_with(dir, &options, &err);
    REQUIRE(int8, "%s", err.message);
    worst = worst_to_golden(int8);
    printf("    outlier model, int8 asked: worst cosine to the golden features %.6f\n", worst);
    CHECK(worst < 0.99, "int8 keeps %.6f on the outlier model: the test proves nothing", worst);
    vdx_clip_free(int8);

    notices[0] = 0;
    options = (vdx_clip_options){VDX_PRECISION_AUTO, VDX_PRECISION_FP32, keep_notice, NULL};
    vdx_clip_model *chosen = vdx_clip_load_with(dir, &options, &err);
    REQUIRE(chosen, "%s", err.message);
    vdx_precision p = vdx_clip_image_precision(chosen);
    vdx_precision want = vdx_precision_resolve(VDX_PRECISION_BF16, NULL);
    if (expected_auto() == VDX_PRECISION_INT8) {
        CHECK(p == want, "auto ran %s, expected %s", vdx_precision_name(p), vdx_precision_name(want));
        CHECK(strstr(notices, "image features in int8 reach a worst cosine of 0.") &&
                  strstr(notices, "below the 0.99 floor: trying"),
              "notice: %s", notices);
    }
    worst = worst_to_golden(chosen);
    printf("    outlier model, auto: %s, worst cosine %.6f\n", vdx_precision_name(p), worst);
    CHECK(worst >= (p == VDX_PRECISION_BF16 ? 0.9995 : 0.99999), "auto's %s: worst cosine %.6f",
          vdx_precision_name(p), worst);
    vdx_clip_free(chosen);

    /* the image tower auto, the text tower int8 as asked: the fallback leaves the text alone */
    options = (vdx_clip_options){VDX_PRECISION_AUTO, VDX_PRECISION_INT8, NULL, NULL};
    chosen = vdx_clip_load_with(dir, &options, &err);
    REQUIRE(chosen, "%s", err.message);
    CHECK(vdx_clip_text_precision(chosen) == VDX_PRECISION_INT8 &&
              vdx_clip_image_precision(chosen) != VDX_PRECISION_INT8,
          "image %s, text %s", vdx_precision_name(vdx_clip_image_precision(chosen)),
          vdx_precision_name(vdx_clip_text_precision(chosen)));
    vdx_clip_free(chosen);

    /* the text tower alone asked as auto: its own probe, its own notice */
    notices[0] = 0;
    options = (vdx_clip_options){VDX_PRECISION_FP32, VDX_PRECISION_AUTO, keep_notice, NULL};
    chosen = vdx_clip_load_with(dir, &options, &err);
    REQUIRE(chosen, "%s", err.message);
    p = vdx_clip_text_precision(chosen);
    if (expected_auto() == VDX_PRECISION_INT8)
        CHECK(p == want && vdx_clip_image_precision(chosen) == VDX_PRECISION_FP32 &&
                  strstr(notices, "text features in int8 reach a worst cosine of 0."),
              "text %s, image %s, notice: %s", vdx_precision_name(p),
              vdx_precision_name(vdx_clip_image_precision(chosen)), notices);
    vdx_clip_free(chosen);
}

/* The photos of the sample dataset, preprocessed for clip-tiny; returns the count. */
static int load_sample(const vdx_clip_model *m, float **out)
{
    const char *dir = test_shared_path("data/unsplash-sample/images");
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return -1;
    char names[64][256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64)
        if (e->d_name[0] != '.')
            snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    *out = malloc((size_t)n * PIXELS * sizeof(float));
    if (!*out)
        return -1;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        vdx_image img;
        vdx_error err = {{0}};
        if (vdx_image_load(path, &img, &err) != 0 ||
            vdx_image_preprocess(&img, vdx_clip_get_preprocess(m), *out + (size_t)i * PIXELS,
                                 &err) != 0) {
            printf("    %s: %s\n", path, err.message);
            free(*out);
            return -1;
        }
        vdx_image_free(&img);
    }
    return n;
}

/* The 9 best of n vectors for a query (cosine), as indices. */
static void top9(const float *vectors, int n, const float *query, int *best)
{
    double score[9];
    int have = 0;
    for (int i = 0; i < n; i++) {
        double s = cosine(vectors + (size_t)i * DIM, query, DIM);
        int at = have < 9 ? have++ : 9;
        while (at > 0 && score[at - 1] < s) {
            if (at < 9) {
                score[at] = score[at - 1];
                best[at] = best[at - 1];
            }
            at--;
        }
        if (at < 9) {
            score[at] = s;
            best[at] = i;
        }
    }
}

TEST(bf16_top9_on_the_sample_shares_8_with_fp32)
{
    NEED_FIXTURES();
    NEED_BF16();
    NEED_SHARED(sample, "data/unsplash-sample/images");
    vdx_error err = {{0}};
    vdx_clip_model *fp32 = load(VDX_PRECISION_FP32, &err);
    REQUIRE(fp32, "%s", err.message);
    vdx_clip_options o = {VDX_PRECISION_BF16, VDX_PRECISION_FP32, NULL, NULL};
    vdx_clip_model *bf16 = vdx_clip_load_with(test_shared_path("fixtures/clip-tiny"), &o, &err);
    REQUIRE(bf16, "%s", err.message);
    float *px = NULL;
    int n = load_sample(fp32, &px);
    REQUIRE(n >= 9, "cannot read the sample's photos");
    float *a = malloc((size_t)n * DIM * sizeof *a), *b = malloc((size_t)n * DIM * sizeof *b);
    REQUIRE(a && b, "out of memory");
    REQUIRE(vdx_clip_embed_images(fp32, px, n, a, &err) == 0, "%s", err.message);
    REQUIRE(vdx_clip_embed_images(bf16, px, n, b, &err) == 0, "%s", err.message);
    int worst = 9;
    for (int t = 0; t < N_TEXTS; t++) {
        float q[DIM];
        REQUIRE(vdx_clip_embed_tokens(fp32, ids[t], n_ids[t], q, &err) == 0, "%s", err.message);
        int x[9], y[9], shared = 0;
        top9(a, n, q, x);
        top9(b, n, q, y);
        for (int i = 0; i < 9; i++)
            for (int j = 0; j < 9; j++)
                shared += x[i] == y[j];
        worst = shared < worst ? shared : worst;
        CHECK(shared >= 8, "prompt %d: bf16's top 9 shares %d items with fp32's", t, shared);
    }
    printf("    %d photos, %d prompts: the fewest shared of a top 9 is %d\n", n, N_TEXTS, worst);
    free(a);
    free(b);
    free(px);
    vdx_clip_free(fp32);
    vdx_clip_free(bf16);
}

/* Runs in the child (argv[1] == "--avx2-child"): fp32 features within the golden
 * tolerance with oneDNN held to AVX2. Exit status 0 when they are. */
static int avx2_child(void)
{
    if (load_fixtures() != 0)
        return 3;
    vdx_error err = {{0}};
    vdx_clip_model *m = load(VDX_PRECISION_FP32, &err);
    if (!m)
        return 4;
    static float out[N_IMAGES * DIM];
    int rc = vdx_clip_embed_images(m, pixels, N_IMAGES, out, &err) != 0;
    double worst = 0;
    for (int i = 0; !rc && i < N_IMAGES * DIM; i++) {
        double scale = 0;
        for (int j = (i / DIM) * DIM; j < (i / DIM + 1) * DIM; j++)
            scale = fmax(scale, fabs(golden_images[j]));
        worst = fmax(worst, fabs(out[i] - golden_images[i]) / scale);
    }
    printf("    AVX2: %s, worst max|d|/max|golden| %.2g\n", vdx_clip_image_isa(m), worst);
    rc = rc || !(worst <= 1e-5) || strstr(vdx_clip_image_isa(m), "avx512") != NULL;
    vdx_clip_free(m);
    return rc ? 1 : 0;
}

TEST(fp32_with_onednn_held_to_avx2)
{
    NEED_FIXTURES();
    if (!__builtin_cpu_supports("avx2"))
        SKIP("CPU lacks avx2");
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1);
        execl("/proc/self/exe", "test_clip_precision", "--avx2-child", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the AVX2 child failed (status %d): see its line above", status);
}

static vdx_clip_model *shared_model;
static float concurrent_out[4][N_IMAGES * DIM];

static void *embed_concurrently(void *arg)
{
    vdx_error err = {{0}};
    if (vdx_clip_embed_images(shared_model, pixels, N_IMAGES, arg, &err) != 0)
        memset(arg, 0, sizeof concurrent_out[0]);
    return NULL;
}

TEST(threads_agree_and_concurrent_calls_are_identical)
{
    NEED_FIXTURES();
    vdx_error err = {{0}};
    vdx_precision p = vdx_precision_resolve(VDX_PRECISION_AUTO, NULL);
    shared_model = load(p, &err);
    REQUIRE(shared_model, "%s", err.message);
    static float by_threads[3][N_IMAGES * DIM];
    const int threads[3] = {1, 2, 4};
    for (int t = 0; t < 3; t++) {
        vdx_clip_set_threads(threads[t]);
        REQUIRE(vdx_clip_embed_images(shared_model, pixels, N_IMAGES, by_threads[t], &err) == 0,
                "%s", err.message);
    }
    double worst = 0;
    for (int t = 1; t < 3; t++)
        for (int i = 0; i < N_IMAGES * DIM; i++)
            worst = fmax(worst, fabs(by_threads[t][i] - by_threads[0][i]) /
                                    fmax(1e-3, fabs(by_threads[0][i])));
    CHECK(worst <= 1e-6, "%s: 1, 2 and 4 threads differ by %g relative", vdx_precision_name(p),
          worst);
    vdx_clip_set_threads(2);
    pthread_t tid[4];
    for (int t = 0; t < 4; t++)
        REQUIRE(pthread_create(&tid[t], NULL, embed_concurrently, concurrent_out[t]) == 0, "thread");
    for (int t = 0; t < 4; t++)
        pthread_join(tid[t], NULL);
    for (int t = 0; t < 4; t++)
        CHECK(memcmp(concurrent_out[t], by_threads[1], sizeof concurrent_out[t]) == 0,
              "%s: concurrent caller %d differs from the 2-thread result", vdx_precision_name(p),
              t);
    vdx_clip_free(shared_model);
}

TEST(precision_from_the_environment)
{
    vdx_error err = {{0}};
    vdx_precision p = VDX_PRECISION_AUTO;
    setenv("VDX_PRECISION", "int8", 1);
    CHECK(vdx_precision_from_env(VDX_PRECISION_FP32, &p, &err) == 0 && p == VDX_PRECISION_INT8,
          "VDX_PRECISION=int8 gave %s", vdx_precision_name(p));
    setenv("VDX_PRECISION", "double", 1);
    CHECK(vdx_precision_from_env(VDX_PRECISION_FP32, &p, &err) != 0 &&
              strstr(err.message, "VDX_PRECISION: precision 'double'"),
          "%s", err.message);
    unsetenv("VDX_PRECISION");
    CHECK(vdx_precision_from_env(VDX_PRECISION_FP32, &p, &err) == 0 && p == VDX_PRECISION_FP32,
          "unset gave %s", vdx_precision_name(p));
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--avx2-child") == 0)
        return avx2_child();
    fixtures_ready = load_fixtures() == 0;
    RUN(bf16_cosine_to_golden_at_least_0_9995);
    RUN(int8_cosine_to_golden_at_least_0_99);
    RUN(fp32_cosine_to_golden);
    RUN(bf16_top9_on_the_sample_shares_8_with_fp32);
    RUN(fp32_with_onednn_held_to_avx2);
    RUN(threads_agree_and_concurrent_calls_are_identical);
    RUN(precision_from_the_environment);
    RUN(auto_runs_the_fastest_precision_within_its_floor);
    RUN(auto_leaves_int8_where_this_model_misses_its_floor);
    return test_summary("clip_precision");
}
