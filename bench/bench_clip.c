/* Benchmark of the CLIP towers at full ViT-B/32 size. It writes a random checkpoint with
 * the exact shapes and config of openai/clip-vit-base-patch32 (model.safetensors, F32,
 * in a temporary directory; the tokenizer files come from ../shared/fixtures/clip-tiny,
 * which has the real vocabulary), and loads it once per precision (fp32, bf16, int8). It
 * prints the CPU model and a measured FMA peak, then per precision: the oneDNN
 * implementation (ISA) its matmuls run on, load time and resident weights, images/s for
 * batches of 32 with GFLOP/s as a fraction of the peak and the matmul-vs-rest split,
 * single-image latency, text latency at 7 and 77 tokens, peak memory; and the ratios of
 * the precisions measured in the same run. Numbers only, never pass/fail.
 *
 *   bench_clip [--threads N] [--rounds N] [--keep DIR] [--embed-raw PIXELS FEATURES N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <immintrin.h>

#include "vdx/clip.h"
#include "engine/matmul.h"
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
/* The multiply-adds one image takes: every layer over every token, except the last,
 * which carries on the class token only past its keys and values (src/clip/model.c). */
static double vision_macs(void)
{
    double t = V_POS, patches = V_POS - 1;
    double layer = t * V_DIM * 3 * V_DIM + 2 * t * t * V_DIM + t * V_DIM * V_DIM +
                   2 * t * V_DIM * V_INTER;
    double last = t * V_DIM * 3 * V_DIM + 2 * t * V_DIM + V_DIM * V_DIM + 2 * V_DIM * V_INTER;
    return patches * 3 * PATCH * PATCH * V_DIM + (V_LAYERS - 1) * layer + last +
           (double)V_DIM * PROJ;
}

static double peak_gflops = 1, peak_per_cpu_s = 1;

/* The model name line of /proc/cpuinfo. */
static const char *cpu_model(void)
{
    static char name[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(name, sizeof name, "%s", strchr(line, ':') + 2);
            name[strcspn(name, "\n")] = 0;
            break;
        }
    if (f)
        fclose(f);
    return name;
}

#define FMA_ROUNDS 50000000L

/* Ten independent FMA chains (enough to hide the latency on current cores), kept in
 * registers; returns a value so the loop is not optimised away. */
#define FMA_KERNEL(name, isa, vec, set1, fmadd, width)                                 \
    __attribute__((target(isa))) static float name(float seed)                             \
    {                                                                                      \
        vec m = set1(0.999999f), a = set1(1e-7f);                                          \
        vec c0 = set1(seed), c1 = set1(seed + 1), c2 = set1(seed + 2), c3 = set1(seed + 3); \
        vec c4 = set1(seed + 4), c5 = set1(seed + 5), c6 = set1(seed + 6);                 \
        vec c7 = set1(seed + 7), c8 = set1(seed + 8), c9 = set1(seed + 9);                 \
        for (long i = 0; i < FMA_ROUNDS; i++) {                                            \
            c0 = fmadd(c0, m, a), c1 = fmadd(c1, m, a), c2 = fmadd(c2, m, a);              \
            c3 = fmadd(c3, m, a), c4 = fmadd(c4, m, a), c5 = fmadd(c5, m, a);              \
            c6 = fmadd(c6, m, a), c7 = fmadd(c7, m, a), c8 = fmadd(c8, m, a);              \
            c9 = fmadd(c9, m, a);                                                          \
        }                                                                                  \
        float lanes[width], sum = 0;                                                       \
        vec all[10] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9};                            \
        for (int c = 0; c < 10; c++) {                                                     \
            memcpy(lanes, &all[c], sizeof lanes);                                          \
            for (int l = 0; l < width; l++)                                                \
                sum += lanes[l];                                                           \
        }                                                                                  \
        return sum;                                                                        \
    }
FMA_KERNEL(fma_avx512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, 16)
FMA_KERNEL(fma_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, 8)

/* The float32 FMA peak (the widest vectors present), measured on `threads` threads: per
 * second of wall time, and per CPU second (what one core gives while it runs; on a
 * shared machine the wall figure also measures the neighbours). */
static double fma_peak_gflops(int threads, double *per_cpu_second)
{
    int wide = __builtin_cpu_supports("avx512f");
    volatile float sink = 0;
    double t0 = vdx_now(), c0 = cpu_seconds();
#pragma omp parallel num_threads(threads)
    {
        float v = wide ? fma_avx512(1.0f) : fma_avx2(1.0f);
#pragma omp atomic
        sink += v;
    }
    double s = vdx_now() - t0, cpu = cpu_seconds() - c0;
    double flop = threads * (double)FMA_ROUNDS * 10 * (wide ? 16 : 8) * 2;
    *per_cpu_second = flop / cpu / 1e9;
    return flop / s / 1e9;
}

/* Loads the checkpoint in `precision` and prints its figures; *images_per_s gets the
 * batch-32 rate. */
static int run_precision(const char *dir, vdx_precision precision, int rounds,
                         double *images_per_s)
{
    double t0;
    long rss_before = status_kb("VmRSS");
    reset_peak_rss();
    t0 = vdx_now();
    vdx_error err = {{0}};
    vdx_clip_options options = {precision, precision, NULL, NULL};
    vdx_clip_model *model = vdx_clip_load_with(dir, &options, &err);
    if (!model) {
        fprintf(stderr, "bench_clip: load failed: %s\n", err.message);
        return 1;
    }
    double load_s = vdx_now() - t0;
    long rss_loaded = status_kb("VmRSS"), peak_load = status_kb("VmHWM");
    printf("\n== %s: matmuls on %s\n", vdx_precision_name(vdx_clip_image_precision(model)),
           vdx_clip_image_isa(model));
    printf("load: %.2f s; weights resident %.0f MB (RSS +%.0f MB), peak during load %.0f MB\n",
           load_s, (rss_loaded - rss_before) / 1024.0, (rss_loaded - rss_before) / 1024.0,
           peak_load / 1024.0);

    const int batch = 32;
    size_t image_floats = 3 * IMAGE * IMAGE;
    float *pixels = malloc(batch * image_floats * sizeof *pixels);
    float *out = malloc(batch * PROJ * sizeof *out);
    rng_state = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < batch * image_floats; i++)
        pixels[i] = 1.8f * uniform();
    reset_peak_rss();
    long rss_base = status_kb("VmRSS");

    /* warm-up: first touches of scratch, the primitives of both batch shapes */
    if (vdx_clip_embed_images(model, pixels, 1, out, &err) != 0 ||
        vdx_clip_embed_images(model, pixels, batch, out, &err) != 0) {
        fprintf(stderr, "bench_clip: %s\n", err.message);
        return 1;
    }
    double macs = vision_macs();
    double best_batch = 1e30, *samples = malloc(64 * sizeof *samples);
    double best_split = 0;
    for (int r = 0; r < rounds; r++) {
        t0 = vdx_now();
        double c0 = cpu_seconds();
        unsigned long long m0 = engine_matmul_elapsed_ns();
        vdx_clip_embed_images(model, pixels, batch, out, &err);
        double s = vdx_now() - t0, cpu = cpu_seconds() - c0;
        double in_matmul = (double)(engine_matmul_elapsed_ns() - m0) * 1e-9;
        if (s < best_batch) {
            best_batch = s;
            best_split = in_matmul / s;
        }
        printf("  batch of %d: %.3f s (%.1f images/s), %.3f CPU s (%.1f GFLOP per CPU s = "
               "%.0f%% of the float32 peak per CPU s); matmul %.0f%%, rest %.0f%%\n",
               batch, s, batch / s, cpu, 2 * macs * batch / cpu / 1e9,
               100 * 2 * macs * batch / cpu / 1e9 / peak_per_cpu_s, 100 * in_matmul / s,
               100 - 100 * in_matmul / s);
        fflush(stdout);
    }
    double gflops = 2 * macs * batch / best_batch / 1e9;
    printf("vision batch %d: %.1f images/s (best of %d), %.1f GFLOP/s = %.0f%% of the float32 FMA peak "
           "(%.2f GFLOP per image); matmul %.0f%% of the time, the rest %.0f%%\n",
           batch, batch / best_batch, rounds, gflops, 100 * gflops / peak_gflops,
           2 * macs / 1e9, 100 * best_split, 100 - 100 * best_split);
    *images_per_s = batch / best_batch;
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
    printf("memory: peak while embedding %.0f MB = resident before + %.0f MB\n",
           peak / 1024.0, (peak - rss_base) / 1024.0);

    free(samples);
    free(pixels);
    free(out);
    vdx_clip_free(model);
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

/* --embed-raw: n images of 3×224×224 float32 pixel values (raw, little-endian) through
 * the fp32 vision tower, their n×512 features written raw: what a peer is compared with. */
static int embed_raw(const char *dir, const char *in_path, const char *out_path, int n)
{
    size_t in_floats = (size_t)n * 3 * 224 * 224, out_floats = (size_t)n * 512;
    float *pixels = malloc(in_floats * sizeof *pixels), *features = malloc(out_floats * sizeof *features);
    FILE *in = fopen(in_path, "rb");
    int rc = 1;
    vdx_error err = {{0}};
    vdx_clip_model *model = NULL;
    if (n < 1 || !pixels || !features || !in || fread(pixels, sizeof *pixels, in_floats, in) != in_floats)
        fprintf(stderr, "bench_clip: cannot read %d images of 3x224x224 float32 from %s\n", n, in_path);
    else if (!(model = vdx_clip_load(dir, &err)))
        fprintf(stderr, "bench_clip: %s\n", err.message);
    else if (vdx_clip_embed_images(model, pixels, n, features, &err) != 0)
        fprintf(stderr, "bench_clip: %s\n", err.message);
    else {
        FILE *out = fopen(out_path, "wb");
        rc = !out || fwrite(features, sizeof *features, out_floats, out) != out_floats;
        if (out && fclose(out) != 0)
            rc = 1;
        if (rc)
            fprintf(stderr, "bench_clip: cannot write %s\n", out_path);
    }
    if (in)
        fclose(in);
    vdx_clip_free(model);
    free(pixels);
    free(features);
    return rc;
}

int main(int argc, char **argv)
{
    int threads = 0, rounds = 3, embed_n = 0;
    const char *keep = NULL, *embed_in = NULL, *embed_out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--embed-raw") && i + 3 < argc) {
            embed_in = argv[++i];
            embed_out = argv[++i];
            embed_n = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep") && i + 1 < argc)
            keep = argv[++i];
        else {
            fprintf(stderr, "usage: bench_clip [--threads N] [--rounds N] [--keep DIR] "
                            "[--embed-raw PIXELS.f32 FEATURES.f32 N]\n");
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

    if (embed_in) { /* the same pixels through vdx as through a peer (bench/vs_peers.py) */
        rc = embed_raw(dir, embed_in, embed_out, embed_n);
        remove_scratch(dir, keep);
        return rc;
    }
    int team = threads > 0 ? threads : vdx_cpu_count();
    peak_gflops = fma_peak_gflops(team, &peak_per_cpu_s);
    printf("CPU: %s; float32 FMA peak measured here (%s, %d thread(s)): %.0f GFLOP/s wall, "
           "%.0f GFLOP per CPU second (bf16 and int8 instructions do more work per cycle: "
           "they can pass 100%% of it)\n", cpu_model(),
           __builtin_cpu_supports("avx512f") ? "AVX-512" : "AVX2", team, peak_gflops,
           peak_per_cpu_s);
    const vdx_precision precisions[3] = {VDX_PRECISION_FP32, VDX_PRECISION_BF16,
                                         VDX_PRECISION_INT8};
    double rate[3] = {0};
    for (int p = 0; p < 3 && rc == 0; p++)
        rc = run_precision(dir, precisions[p], rounds, &rate[p]);
    if (rc == 0)
        printf("ratios at batch 32: bf16/fp32 %.2fx, int8/fp32 %.2fx (same run)\n",
               rate[1] / rate[0], rate[2] / rate[0]);
    remove_scratch(dir, keep);
    return rc;
}
