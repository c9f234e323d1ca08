/* The M-CLIP text tower's cost on this machine: writes a random model of XLM-R Large's size
 * (V 250002, H 1024, 24 layers, 16 heads, I 4096, E 512: 2.24 GB float32, safetensors) to
 * a scratch directory, loads it (time, RSS after load, peak RSS while loading against the
 * weights' size), and embeds one prompt of --tokens (16) tokens --rounds times (median
 * wall and CPU ms). The forward pass reads every encoder weight once per prompt, so it
 * also prints the bytes read per prompt, the bandwidth that implies, and this machine's
 * read bandwidth measured in the same run (one pass summing a 1 GiB buffer, all threads),
 * as a ratio; in each precision the engine offers (fp32, bf16 where the CPU has it,
 * int8). --small runs an XLM-R Base-size model (H 768, 12 layers, I 3072).
 *   bench_mclip [--small] [--rounds N] [--tokens N] [--threads N] [--keep DIR]
 * The tokenizer is the mclip-tiny fixture's (../shared or $VDX_SHARED): only ids matter. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "engine/matmul.h"
#include "vdx/clip.h"
#include "vdx/mclip.h"

typedef struct dims {
    long vocab, hidden, layers, heads, inter, positions, out;
} dims;

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

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

/* ---- the random checkpoint ------------------------------------------------------- */

typedef struct tensor_spec {
    char name[128];
    long rows, cols; /* cols 0: 1-d */
    int kind;        /* 0 random weight, 1 ones (LayerNorm gamma), 2 small bias, 3 int64 ids */
} tensor_spec;

static int add(tensor_spec *t, int n, const char *name, long rows, long cols, int kind)
{
    snprintf(t[n].name, sizeof t[n].name, "%s", name);
    t[n].rows = rows;
    t[n].cols = cols;
    t[n].kind = kind;
    return n + 1;
}

static int model_tensors(const dims *d, tensor_spec *t)
{
    int n = 0;
    char name[128];
    n = add(t, n, "transformer.embeddings.position_ids", 1, d->positions, 3);
    n = add(t, n, "transformer.embeddings.word_embeddings.weight", d->vocab, d->hidden, 0);
    n = add(t, n, "transformer.embeddings.position_embeddings.weight", d->positions, d->hidden, 0);
    n = add(t, n, "transformer.embeddings.token_type_embeddings.weight", 1, d->hidden, 0);
    n = add(t, n, "transformer.embeddings.LayerNorm.weight", d->hidden, 0, 1);
    n = add(t, n, "transformer.embeddings.LayerNorm.bias", d->hidden, 0, 2);
    static const char *const parts[][2] = {
        {"attention.self.query", "HH"}, {"attention.self.key", "HH"},
        {"attention.self.value", "HH"}, {"attention.output.dense", "HH"},
        {"intermediate.dense", "IH"},   {"output.dense", "HI"}};
    for (long l = 0; l < d->layers; l++) {
        for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
            long rows = parts[p][1][0] == 'H' ? d->hidden : d->inter;
            long cols = parts[p][1][1] == 'H' ? d->hidden : d->inter;
            snprintf(name, sizeof name, "transformer.encoder.layer.%ld.%s.weight", l, parts[p][0]);
            n = add(t, n, name, rows, cols, 0);
            snprintf(name, sizeof name, "transformer.encoder.layer.%ld.%s.bias", l, parts[p][0]);
            n = add(t, n, name, rows, 0, 2);
        }
        static const char *const norms[] = {"attention.output.LayerNorm", "output.LayerNorm"};
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "transformer.encoder.layer.%ld.%s.weight", l, norms[k]);
            n = add(t, n, name, d->hidden, 0, 1);
            snprintf(name, sizeof name, "transformer.encoder.layer.%ld.%s.bias", l, norms[k]);
            n = add(t, n, name, d->hidden, 0, 2);
        }
    }
    n = add(t, n, "LinearTransformation.weight", d->out, d->hidden, 0);
    n = add(t, n, "LinearTransformation.bias", d->out, 0, 2);
    return n;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float next_uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / (1ull << 24))) * 2.0f - 1.0f;
}

static int write_model(const char *dir, const dims *d, double *gb)
{
    tensor_spec *t = calloc((size_t)(16 * d->layers + 16), sizeof *t);
    if (!t)
        return -1;
    int n = model_tensors(d, t);
    size_t header_cap = (size_t)n * 256 + 64, used = 0, offset = 0;
    char *header = malloc(header_cap);
    used += (size_t)snprintf(header + used, header_cap - used, "{");
    for (int i = 0; i < n; i++) {
        size_t count = (size_t)t[i].rows * (t[i].cols ? (size_t)t[i].cols : 1);
        size_t bytes = count * (t[i].kind == 3 ? 8 : 4);
        if (t[i].cols)
            used += (size_t)snprintf(header + used, header_cap - used,
                                     "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%ld,%ld],"
                                     "\"data_offsets\":[%zu,%zu]}", i ? "," : "", t[i].name,
                                     t[i].kind == 3 ? "I64" : "F32", t[i].rows, t[i].cols,
                                     offset, offset + bytes);
        else
            used += (size_t)snprintf(header + used, header_cap - used,
                                     "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%ld],"
                                     "\"data_offsets\":[%zu,%zu]}", i ? "," : "", t[i].name,
                                     t[i].rows, offset, offset + bytes);
        offset += bytes;
    }
    used += (size_t)snprintf(header + used, header_cap - used, "}");
    while (used % 8)
        header[used++] = ' ';
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    uint64_t len = used;
    int rc = f && fwrite(&len, 8, 1, f) == 1 && fwrite(header, 1, used, f) == used ? 0 : -1;
    float *buf = malloc((size_t)1 << 24);
    for (int i = 0; i < n && rc == 0; i++) {
        size_t count = (size_t)t[i].rows * (t[i].cols ? (size_t)t[i].cols : 1);
        if (t[i].kind == 3) {
            for (size_t k = 0; k < count && rc == 0; k++) {
                int64_t v = (int64_t)k;
                rc = fwrite(&v, 8, 1, f) == 1 ? 0 : -1;
            }
            continue;
        }
        for (size_t done = 0; done < count && rc == 0;) {
            size_t chunk = count - done < ((size_t)1 << 22) ? count - done : ((size_t)1 << 22);
            for (size_t k = 0; k < chunk; k++)
                buf[k] = t[i].kind == 1 ? 1.0f : t[i].kind == 2 ? 0.01f * next_uniform()
                                                                 : 0.04f * next_uniform();
            rc = fwrite(buf, 4, chunk, f) == chunk ? 0 : -1;
            done += chunk;
        }
    }
    if (f && fclose(f) != 0)
        rc = -1;
    *gb = (double)offset / 1e9;
    free(buf);
    free(header);
    free(t);
    if (rc)
        return -1;
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\"model_type\":\"M-CLIP\",\"architectures\":[\"MultilingualCLIP\"],"
               "\"modelBase\":\"xlm-roberta-%s\",\"transformerDimensions\":%ld,\"numDims\":%ld}\n",
            d->heads == 16 ? "large" : "base", d->hidden, d->out);
    fclose(f);
    const char *root = getenv("VDX_SHARED");
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "cp '%s/fixtures/mclip-tiny/sentencepiece.bpe.model' '%s/'",
             root && *root ? root : "../shared", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- bandwidth ------------------------------------------------------------------- */

typedef struct sum_job {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} sum_job;

/* XOR of every word: vectorised by the compiler, so memory, not arithmetic, sets the pace. */
static void *sum_part(void *arg)
{
    sum_job *j = arg;
    uint64_t acc = 0;
    for (size_t i = 0; i < j->n; i++)
        acc ^= j->p[i];
    j->sum = acc;
    return NULL;
}

/* GB/s of one read pass over a 1 GiB buffer with `threads` threads (best of 3). */
static double read_bandwidth(int threads)
{
    size_t n = ((size_t)1 << 30) / sizeof(uint64_t);
    uint64_t *buf = malloc(n * sizeof *buf);
    if (!buf)
        return 0;
    for (size_t i = 0; i < n; i++)
        buf[i] = i * 0x9e3779b97f4a7c15ull;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        pthread_t tid[64];
        sum_job jobs[64];
        double t0 = vdx_now();
        for (int k = 0; k < threads; k++) {
            jobs[k] = (sum_job){buf + n / threads * k, n / threads, 0};
            pthread_create(&tid[k], NULL, sum_part, &jobs[k]);
        }
        for (int k = 0; k < threads; k++)
            pthread_join(tid[k], NULL);
        double gbs = n * sizeof(uint64_t) / (vdx_now() - t0) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    free(buf);
    return best;
}

int main(int argc, char **argv)
{
    dims d = {250002, 1024, 24, 16, 4096, 514, 512};
    int rounds = 10, tokens = 16, threads = 0;
    const char *keep = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--small"))
            d = (dims){250002, 768, 12, 12, 3072, 514, 512};
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc)
            tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep") && i + 1 < argc)
            keep = argv[++i];
        else {
            fprintf(stderr, "usage: bench_mclip [--small] [--rounds N] [--tokens N] "
                            "[--threads N] [--keep DIR]\n");
            return 2;
        }
    }
    if (rounds < 1 || tokens < 2 || tokens > 512)
        return 2;
    if (threads > 0)
        vdx_clip_set_threads(threads);
    int nthreads = threads > 0 ? threads : vdx_cpu_count();
    char dir[4096];
    if (keep) {
        snprintf(dir, sizeof dir, "%s", keep);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vdx-bench-mclip-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
            return 1;
    }
    printf("M-CLIP text tower: V %ld, H %ld, %ld layers, %ld heads, I %ld, E %ld; %d threads "
           "(%d cores)\n", d.vocab, d.hidden, d.layers, d.heads, d.inter, d.out, nthreads,
           vdx_cpu_count());
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/model.safetensors", dir);
    double gb = 0;
    if (access(probe, F_OK) != 0 || !keep) {
        double t0 = vdx_now();
        if (write_model(dir, &d, &gb) != 0) {
            fprintf(stderr, "bench_mclip: cannot write the random model to %s\n", dir);
            return 1;
        }
        printf("wrote a random model: %.2f GB in %.1f s (%s)\n", gb, vdx_now() - t0, dir);
    }
    double bw = read_bandwidth(nthreads), bw1 = nthreads > 1 ? read_bandwidth(1) : bw;
    printf("read bandwidth, this run: %.1f GB/s with %d threads, %.1f GB/s with 1\n", bw,
           nthreads, bw1);
    int32_t *ids = malloc((size_t)tokens * sizeof *ids);
    float *out = malloc((size_t)d.out * sizeof *out);
    double *wall = malloc((size_t)rounds * sizeof *wall);
    if (!ids || !out || !wall)
        return 1;
    ids[0] = 0;
    for (int i = 1; i < tokens - 1; i++)
        ids[i] = 5 + (i * 7919) % 8000;
    ids[tokens - 1] = 2;
    const vdx_precision precisions[] = {VDX_PRECISION_FP32, VDX_PRECISION_BF16,
                                        VDX_PRECISION_INT8};
    double fp32_median = 0;
    for (size_t pi = 0; pi < sizeof precisions / sizeof *precisions; pi++) {
        vdx_precision precision = precisions[pi];
        const char *name = vdx_precision_name(precision), *why = NULL;
        if (vdx_precision_resolve(precision, &why) != precision) {
            printf("%s: not run: CPU lacks avx512_bf16 (%s)\n", name, why);
            continue;
        }
        reset_peak_rss();
        long rss0 = status_kb("VmRSS");
        double t0 = vdx_now();
        vdx_error err;
        vdx_mclip_model *m = vdx_mclip_load_precision(dir, precision, &err);
        double load_s = vdx_now() - t0;
        if (!m) {
            fprintf(stderr, "bench_mclip: %s\n", err.message);
            return 1;
        }
        long rss = status_kb("VmRSS"), peak = status_kb("VmHWM");
        double weights_mb = (double)vdx_mclip_weight_bytes(m) / (1 << 20);
        printf("%s load: %.2f s (page cache warm); RSS after load %.0f MB, peak while loading "
               "%.0f MB = %.2f x the weights (%.0f MB)\n", name, load_s, (rss - rss0) / 1024.0,
               (peak - rss0) / 1024.0, (peak - rss0) / 1024.0 / weights_mb, weights_mb);
        double cpu = 0;
        vdx_mclip_forward(m, ids, tokens, out, NULL, NULL, &err); /* warm-up */
        unsigned long long matmul0 = engine_matmul_elapsed_ns();
        for (int r = 0; r < rounds; r++) {
            double c0 = cpu_seconds(), w0 = vdx_now();
            if (vdx_mclip_forward(m, ids, tokens, out, NULL, NULL, &err) != 0) {
                fprintf(stderr, "bench_mclip: %s\n", err.message);
                return 1;
            }
            wall[r] = vdx_now() - w0;
            cpu += cpu_seconds() - c0;
        }
        double matmul = (double)(engine_matmul_elapsed_ns() - matmul0) * 1e-9 / rounds;
        double best = wall[0], total = 0;
        for (int r = 0; r < rounds; r++)
            total += wall[r];
        for (int r = 1; r < rounds; r++)
            if (wall[r] < best)
                best = wall[r];
        double median = bench_median(wall, rounds);
        if (precision == VDX_PRECISION_FP32)
            fp32_median = median;
        /* the encoder's Linear weights in the precision's width, once per prompt */
        double width = precision == VDX_PRECISION_FP32 ? 4 : precision == VDX_PRECISION_BF16 ? 2 : 1;
        double encoder = (double)d.layers * (4 * d.hidden * d.hidden + 2 * d.hidden * d.inter) * width;
        double bytes = encoder + (double)tokens * d.hidden * 4 * 2 + (double)d.out * d.hidden * 4;
        double flops = 2.0 * tokens * d.layers * (4.0 * d.hidden * d.hidden + 2.0 * d.hidden * d.inter);
        printf("%s: one %d-token prompt %.1f ms median (min %.1f, %d rounds, %.1f CPU ms); "
               "%.1f GFLOP/s; %.2fx fp32's time\n", name, tokens, median * 1e3, best * 1e3,
               rounds, cpu / rounds * 1e3, flops / median / 1e9,
               fp32_median > 0 ? median / fp32_median : 1.0);
        printf("%s: matrix products %.1f ms of a prompt's mean %.1f ms (%.0f%%), the rest "
               "(embedding, LayerNorm, attention, GELU, pooling) %.1f ms\n", name, matmul * 1e3,
               total / rounds * 1e3, matmul / (total / rounds) * 100,
               (total / rounds - matmul) * 1e3);
        printf("%s: bytes read per prompt %.2f GB (the encoder's weights once + %d word and "
               "position rows) -> %.1f GB/s at the median = %.2f x this run's read bandwidth; "
               "the floor at that bandwidth is %.0f ms\n", name, bytes / 1e9, tokens,
               bytes / median / 1e9, bytes / median / 1e9 / bw, bytes / bw / 1e9 * 1e3);
        vdx_mclip_free(m);
        malloc_trim(0); /* so the next precision's RSS is its own */
    }
    free(ids);
    free(out);
    free(wall);
    if (!keep)
        bench_remove_tree(dir);
    return 0;
}
