/* Benchmark of the CLIP towers at full ViT-B/32 size. It writes a random checkpoint with
 * the exact shapes and config of openai/clip-vit-base-patch32 (model.safetensors, F32,
 * in a temporary directory; the tokenizer files come from ../shared/fixtures/clip-tiny,
 * which has the real vocabulary), loads it like any model, and prints: load time, images/s
 * for batches of 32, single-image latency, 7-token text latency, achieved GFLOP/s, peak
 * memory, and the cost of decoding+preprocessing a photo relative to embedding it.
 * Numbers only, never pass/fail.
 *
 *   bench_clip [--threads N] [--rounds N] [--keep DIR]
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdx/clip.h"
#include "bench.h"

/* openai/clip-vit-base-patch32 */
enum { V_DIM = 768, V_INTER = 3072, V_LAYERS = 12, PATCH = 32, IMAGE = 224, V_POS = 50,
       T_DIM = 512, T_INTER = 2048, T_LAYERS = 12, VOCAB = 49408, T_POS = 77, PROJ = 512 };

typedef struct tensor_spec {
    char name[96];
    int ndim;
    long long shape[4];
    float mean, spread; /* values uniform in mean ± spread */
} tensor_spec;

static tensor_spec specs[512];
static int n_specs;

static void add(const char *name, int ndim, long long d0, long long d1, long long d2,
                long long d3, float mean, float spread)
{
    tensor_spec *s = &specs[n_specs++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = ndim;
    s->shape[0] = d0, s->shape[1] = d1, s->shape[2] = d2, s->shape[3] = d3;
    s->mean = mean;
    s->spread = spread;
}

static void add_layers(const char *tower, int layers, int dim, int inter)
{
    static const char *const square[] = {"self_attn.q_proj", "self_attn.k_proj",
                                         "self_attn.v_proj", "self_attn.out_proj"};
    char name[96];
    for (int l = 0; l < layers; l++) {
#define NAME(suffix) (snprintf(name, sizeof name, "%s.encoder.layers.%d.%s", tower, l, suffix), name)
        add(NAME("layer_norm1.weight"), 1, dim, 0, 0, 0, 1.0f, 0.1f);
        add(NAME("layer_norm1.bias"), 1, dim, 0, 0, 0, 0.0f, 0.02f);
        for (int p = 0; p < 4; p++) {
            char sub[64];
            snprintf(sub, sizeof sub, "%s.weight", square[p]);
            add(NAME(sub), 2, dim, dim, 0, 0, 0.0f, 0.035f);
            snprintf(sub, sizeof sub, "%s.bias", square[p]);
            add(NAME(sub), 1, dim, 0, 0, 0, 0.0f, 0.02f);
        }
        add(NAME("layer_norm2.weight"), 1, dim, 0, 0, 0, 1.0f, 0.1f);
        add(NAME("layer_norm2.bias"), 1, dim, 0, 0, 0, 0.0f, 0.02f);
        add(NAME("mlp.fc1.weight"), 2, inter, dim, 0, 0, 0.0f, 0.035f);
        add(NAME("mlp.fc1.bias"), 1, inter, 0, 0, 0, 0.0f, 0.02f);
        add(NAME("mlp.fc2.weight"), 2, dim, inter, 0, 0, 0.0f, 0.02f);
        add(NAME("mlp.fc2.bias"), 1, dim, 0, 0, 0, 0.0f, 0.02f);
#undef NAME
    }
}

static void build_specs(void)
{
    add("vision_model.embeddings.patch_embedding.weight", 4, V_DIM, 3, PATCH, PATCH, 0, 0.02f);
    add("vision_model.embeddings.class_embedding", 1, V_DIM, 0, 0, 0, 0, 0.5f);
    add("vision_model.embeddings.position_embedding.weight", 2, V_POS, V_DIM, 0, 0, 0, 0.1f);
    add("vision_model.pre_layrnorm.weight", 1, V_DIM, 0, 0, 0, 1.0f, 0.1f);
    add("vision_model.pre_layrnorm.bias", 1, V_DIM, 0, 0, 0, 0, 0.02f);
    add_layers("vision_model", V_LAYERS, V_DIM, V_INTER);
    add("vision_model.post_layernorm.weight", 1, V_DIM, 0, 0, 0, 1.0f, 0.1f);
    add("vision_model.post_layernorm.bias", 1, V_DIM, 0, 0, 0, 0, 0.02f);
    add("visual_projection.weight", 2, PROJ, V_DIM, 0, 0, 0, 0.035f);
    add("text_model.embeddings.token_embedding.weight", 2, VOCAB, T_DIM, 0, 0, 0, 0.035f);
    add("text_model.embeddings.position_embedding.weight", 2, T_POS, T_DIM, 0, 0, 0, 0.02f);
    add_layers("text_model", T_LAYERS, T_DIM, T_INTER);
    add("text_model.final_layer_norm.weight", 1, T_DIM, 0, 0, 0, 1.0f, 0.1f);
    add("text_model.final_layer_norm.bias", 1, T_DIM, 0, 0, 0, 0, 0.02f);
    add("text_projection.weight", 2, PROJ, T_DIM, 0, 0, 0, 0.035f);
    add("logit_scale", 0, 0, 0, 0, 0, 4.6052f, 0.0f);
}

static unsigned long long rng_state = 0x9e3779b97f4a7c15ULL;

static float uniform(void) /* xorshift64*, in [-1, 1) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    unsigned long long r = rng_state * 0x2545f4914f6cdd1dULL;
    return (float)((double)(r >> 40) / (double)(1ULL << 23)) - 1.0f;
}

static long long spec_count(const tensor_spec *s)
{
    long long n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->shape[i];
    return n;
}

static int write_checkpoint(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t cap = 1 << 20, len = 0;
    char *header = malloc(cap);
    long long offset = 0;
    len += (size_t)snprintf(header + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n_specs; i++) {
        const tensor_spec *s = &specs[i];
        long long bytes = spec_count(s) * 4;
        len += (size_t)snprintf(header + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[",
                                s->name);
        for (int d = 0; d < s->ndim; d++)
            len += (size_t)snprintf(header + len, cap - len, "%s%lld", d ? "," : "", s->shape[d]);
        len += (size_t)snprintf(header + len, cap - len, "],\"data_offsets\":[%lld,%lld]}",
                                offset, offset + bytes);
        offset += bytes;
    }
    len += (size_t)snprintf(header + len, cap - len, "}");
    while (len % 8)
        header[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "bench_clip: cannot create %s\n", path);
        free(header);
        return -1;
    }
    unsigned long long header_len = len;
    for (int b = 0; b < 8; b++)
        fputc((int)((header_len >> (8 * b)) & 0xff), f);
    fwrite(header, 1, len, f);
    free(header);
    float *chunk = malloc((1 << 20) * sizeof *chunk);
    for (int i = 0; i < n_specs; i++) {
        long long left = spec_count(&specs[i]);
        while (left > 0) {
            int n = left < (1 << 20) ? (int)left : (1 << 20);
            for (int k = 0; k < n; k++)
                chunk[k] = specs[i].mean + specs[i].spread * uniform();
            fwrite(chunk, sizeof *chunk, (size_t)n, f);
            left -= n;
        }
    }
    free(chunk);
    if (fclose(f) != 0) {
        fprintf(stderr, "bench_clip: writing %s failed\n", path);
        return -1;
    }
    printf("checkpoint: %d tensors, %.1f MB F32 (%lld parameters) in %s\n", n_specs,
           (double)offset / 1e6, offset / 4, path);
    return 0;
}

static int write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int link_shared(const char *dir, const char *name)
{
    const char *root = getenv("VDX_SHARED");
    char from[4096], abs[4096], to[4096];
    snprintf(from, sizeof from, "%s/fixtures/clip-tiny/%s", root && *root ? root : "../shared",
             name);
    snprintf(to, sizeof to, "%s/%s", dir, name);
    if (!realpath(from, abs) || symlink(abs, to) != 0) {
        fprintf(stderr, "bench_clip: need %s (the CLIP vocabulary; run from the repo root)\n",
                from);
        return -1;
    }
    return 0;
}

/* kB value of a /proc/self/status field. */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            kb = atol(line + n + 1);
    if (f)
        fclose(f);
    return kb;
}

static void reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

/* CPU seconds used by the process so far (all threads): on a shared machine, wall time
 * measures the neighbours too, CPU time shows what the work itself costs. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

/* Multiply-adds of one image through the vision tower (patch GEMM, layers, projection). */
static double vision_macs(void)
{
    double t = V_POS, patches = V_POS - 1;
    double layer = t * V_DIM * 3 * V_DIM + 2 * t * t * V_DIM + t * V_DIM * V_DIM +
                   2 * t * V_DIM * V_INTER;
    return patches * 3 * PATCH * PATCH * V_DIM + V_LAYERS * layer + (double)V_DIM * PROJ;
}

/* The first photo of the Unsplash sample, to weigh preprocessing against embedding. */
static int find_photo(char *path, size_t size)
{
    const char *root = getenv("VDX_SHARED");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/data/unsplash-sample/images", root && *root ? root : "../shared");
    DIR *d = opendir(dir);
    struct dirent *e;
    char best[256] = "";
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && (!best[0] || strcmp(e->d_name, best) < 0))
            snprintf(best, sizeof best, "%s", e->d_name);
    if (d)
        closedir(d);
    if (!best[0])
        return -1;
    snprintf(path, size, "%s/%s", dir, best);
    return 0;
}

/* Removes the temporary model directory (not a --keep one), on success or failure. */
static void remove_scratch(const char *dir, const char *keep)
{
    if (keep)
        return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_clip: could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
    int threads = 0, rounds = 3;
    const char *keep = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep") && i + 1 < argc)
            keep = argv[++i];
        else {
            fprintf(stderr, "usage: bench_clip [--threads N] [--rounds N] [--keep DIR]\n");
            return 2;
        }
    }
    if (rounds < 1)
        rounds = 1;
    if (threads > 0)
        vdx_clip_set_threads(threads);
    printf("bench_clip: ViT-B/32 shapes, random weights, %d thread(s), %d core(s) online\n",
           threads > 0 ? threads : vdx_cpu_count(), vdx_cpu_count());

    char dir[4096];
    if (keep) {
        snprintf(dir, sizeof dir, "%s", keep);
        mkdir(dir, 0755);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vdx-bench-clip-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/model.safetensors", dir);
    struct stat st;
    int have_checkpoint = keep && stat(probe, &st) == 0;
    build_specs();
    static const char config[] =
        "{\"projection_dim\": 512, \"text_config\": {\"hidden_size\": 512, "
        "\"intermediate_size\": 2048, \"num_attention_heads\": 8, \"num_hidden_layers\": 12, "
        "\"max_position_embeddings\": 77, \"vocab_size\": 49408, \"hidden_act\": "
        "\"quick_gelu\", \"layer_norm_eps\": 1e-05}, \"vision_config\": {\"hidden_size\": "
        "768, \"intermediate_size\": 3072, \"num_attention_heads\": 12, "
        "\"num_hidden_layers\": 12, \"image_size\": 224, \"patch_size\": 32, "
        "\"num_channels\": 3, \"hidden_act\": \"quick_gelu\", \"layer_norm_eps\": 1e-05}}\n";
    static const char preprocessor[] =
        "{\"crop_size\": 224, \"do_center_crop\": true, \"do_normalize\": true, "
        "\"do_resize\": true, \"image_mean\": [0.48145466, 0.4578275, 0.40821073], "
        "\"image_std\": [0.26862954, 0.26130258, 0.27577711], \"resample\": 3, "
        "\"size\": 224}\n";
    double t0 = vdx_now();
    int rc = 0;
    if (!have_checkpoint)
        rc = write_text(dir, "config.json", config) || write_text(dir, "preprocessor_config.json",
                                                                   preprocessor) ||
             link_shared(dir, "vocab.json") || link_shared(dir, "merges.txt") ||
             write_checkpoint(dir);
    if (rc != 0) {
        fprintf(stderr, "bench_clip: cannot prepare the model directory %s\n", dir);
        remove_scratch(dir, keep);
        return 1;
    }
    if (!have_checkpoint)
        printf("write checkpoint: %.1f s\n", vdx_now() - t0);

    long rss_before = status_kb("VmRSS");
    t0 = vdx_now();
    vdx_error err = {{0}};
    vdx_clip_model *model = vdx_clip_load(dir, &err);
    if (!model) {
        fprintf(stderr, "bench_clip: load failed: %s\n", err.message);
        remove_scratch(dir, keep);
        return 1;
    }
    double load_s = vdx_now() - t0;
    long rss_loaded = status_kb("VmRSS"), peak_load = status_kb("VmHWM");
    printf("load: %.2f s; RSS %.0f MB after load (+%.0f MB), peak during load %.0f MB\n", load_s,
           rss_loaded / 1024.0, (rss_loaded - rss_before) / 1024.0, peak_load / 1024.0);

    const int batch = 32;
    size_t image_floats = 3 * IMAGE * IMAGE;
    float *pixels = malloc(batch * image_floats * sizeof *pixels);
    float *out = malloc(batch * PROJ * sizeof *out);
    for (size_t i = 0; i < batch * image_floats; i++)
        pixels[i] = 1.8f * uniform();
    reset_peak_rss();
    long rss_base = status_kb("VmRSS");

    /* warm-up: first touches of scratch and OpenBLAS buffers */
    if (vdx_clip_embed_images(model, pixels, 1, out, &err) != 0) {
        fprintf(stderr, "bench_clip: %s\n", err.message);
        remove_scratch(dir, keep);
        return 1;
    }
    double macs = vision_macs();
    double best_batch = 1e30, *samples = malloc(64 * sizeof *samples);
    for (int r = 0; r < rounds; r++) {
        t0 = vdx_now();
        double c0 = cpu_seconds();
        vdx_clip_embed_images(model, pixels, batch, out, &err);
        double s = vdx_now() - t0, cpu = cpu_seconds() - c0;
        if (s < best_batch)
            best_batch = s;
        printf("  batch of %d: %.3f s (%.1f images/s), %.3f CPU s (%.1f GFLOP per CPU s)\n",
               batch, s, batch / s, cpu, 2 * macs * batch / cpu / 1e9);
        fflush(stdout);
    }
    printf("vision batch %d: %.1f images/s (best of %d), %.1f GFLOP/s (%.2f GFLOP per image)\n",
           batch, batch / best_batch, rounds, 2 * macs * batch / best_batch / 1e9,
           2 * macs / 1e9);

    int singles = 5 * rounds;
    double c0 = cpu_seconds();
    for (int r = 0; r < singles; r++) {
        t0 = vdx_now();
        vdx_clip_embed_images(model, pixels, 1, out, &err);
        samples[r] = vdx_now() - t0;
    }
    double single_cpu = (cpu_seconds() - c0) / singles;
    double single = bench_median(samples, singles);
    printf("vision single image: %.1f ms median of %d (min %.1f ms), %.1f GFLOP/s; "
           "%.1f CPU ms each\n",
           single * 1e3, singles, samples[0] * 1e3, 2 * macs / single / 1e9, single_cpu * 1e3);

    static const int32_t ids[7] = {49406, 320, 1125, 539, 320, 2368, 49407};
    int texts = 20 * rounds;
    vdx_clip_embed_tokens(model, ids, 7, out, &err);
    c0 = cpu_seconds();
    for (int r = 0; r < texts; r++) {
        t0 = vdx_now();
        vdx_clip_embed_tokens(model, ids, 7, out, &err);
        samples[r % 64] = vdx_now() - t0;
    }
    double text_cpu = (cpu_seconds() - c0) / texts;
    int kept = texts < 64 ? texts : 64;
    double text = bench_median(samples, kept);
    printf("text 7 tokens: %.2f ms median (min %.2f ms); %.2f CPU ms each\n", text * 1e3,
           samples[0] * 1e3, text_cpu * 1e3);
    for (int r = 0; r < kept; r++) {
        t0 = vdx_now();
        vdx_clip_embed_text(model, "a photo of a cat", out, NULL, &err);
        samples[r] = vdx_now() - t0;
    }
    printf("text \"a photo of a cat\" incl. tokenizer: %.2f ms median\n",
           bench_median(samples, kept) * 1e3);
    int32_t long_ids[77];
    long_ids[0] = 49406;
    for (int i = 1; i < 76; i++)
        long_ids[i] = 320 + i;
    long_ids[76] = 49407;
    for (int r = 0; r < 5; r++) {
        t0 = vdx_now();
        vdx_clip_embed_tokens(model, long_ids, 77, out, &err);
        samples[r] = vdx_now() - t0;
    }
    printf("text 77 tokens: %.2f ms median\n", bench_median(samples, 5) * 1e3);

    long peak = status_kb("VmHWM");
    printf("memory: weights %.0f MB resident; peak while embedding %.0f MB = weights + %.0f MB\n",
           rss_base / 1024.0, peak / 1024.0, (peak - rss_base) / 1024.0);

    char photo[4096];
    if (find_photo(photo, sizeof photo) == 0) {
        float *px = malloc(image_floats * sizeof *px);
        int n = 10;
        for (int r = 0; r < n; r++) {
            t0 = vdx_now();
            vdx_image img;
            if (vdx_image_load(photo, &img, &err) != 0 ||
                vdx_image_preprocess(&img, vdx_clip_get_preprocess(model), px, &err) != 0) {
                printf("preprocess: %s\n", err.message);
                break;
            }
            samples[r] = vdx_now() - t0;
            if (r == 0)
                printf("photo %s: %dx%d\n", strrchr(photo, '/') + 1, img.width, img.height);
            vdx_image_free(&img);
        }
        double pre = bench_median(samples, n);
        printf("decode+preprocess: %.2f ms per photo = %.1f%% of its embedding time in a "
               "batch (%.1f ms)\n",
               pre * 1e3, 100 * pre / (best_batch / batch), best_batch / batch * 1e3);
        free(px);
    }
    free(samples);
    free(pixels);
    free(out);
    vdx_clip_free(model);
    remove_scratch(dir, keep);
    return 0;
}
