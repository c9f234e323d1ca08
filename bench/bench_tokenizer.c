/* Tokenizer speed: time to load vocab.json + merges.txt, and encode latency and throughput
 * for a typical 7-id prompt, a longer sentence and a non-Latin prompt, on one thread and on
 * all cores sharing one tokenizer. Prints numbers; it passes or fails nothing.
 *   bench_tokenizer [MODEL_DIR]   (default: $VDX_SHARED or ../shared, fixtures/clip-tiny) */
#include "vdx/tokenizer.h"
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const prompts[][2] = {
    {"typical", "a photo of a cat"},
    {"long", "the quick brown fox jumps over the lazy dog while a small bird sings in the "
             "old oak tree next to the river, and children play football in the park nearby "
             "under a bright blue summer sky with white fluffy clouds drifting slowly east"},
    {"unicode", "café crème brûlée, 日本の桜 and Москва зимой 🐶"},
};

typedef struct {
    const vdx_tokenizer *tok;
    const char *text;
    long iterations;
    long tokens;
    int failed;
} encode_job;

static void *encode_repeatedly(void *arg)
{
    encode_job *job = arg;
    int32_t ids[77];
    int n = 0;
    vdx_error err;
    for (long i = 0; i < job->iterations; i++) {
        if (vdx_tokenizer_encode(job->tok, job->text, 77, ids, &n, NULL, &err) != 0) {
            fprintf(stderr, "encode: %s\n", err.message);
            job->failed = 1;
            return NULL;
        }
        job->tokens += n;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    char default_dir[4096];
    const char *shared = getenv("VDX_SHARED");
    snprintf(default_dir, sizeof default_dir, "%s/fixtures/clip-tiny",
             shared && *shared ? shared : "../shared");
    const char *dir = argc > 1 ? argv[1] : default_dir;

    enum { LOADS = 5 };
    double load_ms[LOADS];
    vdx_tokenizer *tok = NULL;
    vdx_error err;
    for (int i = 0; i < LOADS; i++) {
        vdx_tokenizer_free(tok);
        double start = vdx_now();
        tok = vdx_tokenizer_load(dir, &err);
        load_ms[i] = (vdx_now() - start) * 1e3;
        if (!tok) {
            fprintf(stderr, "bench_tokenizer: %s\n", err.message);
            return 1;
        }
    }
    qsort(load_ms, LOADS, sizeof load_ms[0], bench_compare_doubles);
    printf("tokenizer load (vocab.json + merges.txt): median %.1f ms, best %.1f ms (%d loads)\n",
           load_ms[LOADS / 2], load_ms[0], LOADS);

    int cores = vdx_cpu_count();
    for (size_t p = 0; p < sizeof prompts / sizeof prompts[0]; p++) {
        /* calibrate to about half a second on one thread */
        encode_job job = {tok, prompts[p][1], 1000, 0, 0};
        double start = vdx_now();
        encode_repeatedly(&job);
        double elapsed = vdx_now() - start;
        if (job.failed)
            return 1;
        long iterations = (long)(job.iterations * 0.5 / (elapsed > 1e-6 ? elapsed : 1e-6)) + 1;
        job = (encode_job){tok, prompts[p][1], iterations, 0, 0};
        start = vdx_now();
        encode_repeatedly(&job);
        elapsed = vdx_now() - start;
        int ids_per_prompt = (int)(job.tokens / iterations);
        printf("encode %-8s (%2d ids): %7.2f us/prompt, %10.0f tokens/s on 1 thread",
               prompts[p][0], ids_per_prompt, elapsed / iterations * 1e6, job.tokens / elapsed);

        pthread_t threads[64];
        encode_job jobs[64];
        int n_threads = cores < 64 ? cores : 64;
        start = vdx_now();
        for (int t = 0; t < n_threads; t++) {
            jobs[t] = (encode_job){tok, prompts[p][1], iterations, 0, 0};
            pthread_create(&threads[t], NULL, encode_repeatedly, &jobs[t]);
        }
        long tokens = 0;
        for (int t = 0; t < n_threads; t++) {
            pthread_join(threads[t], NULL);
            tokens += jobs[t].tokens;
        }
        elapsed = vdx_now() - start;
        printf(", %10.0f tokens/s on %d threads\n", tokens / elapsed, n_threads);
    }
    vdx_tokenizer_free(tok);
    return 0;
}
