/* vdx embed: CLIP vectors of images (files or http(s) URLs) and texts, printed in the
 * order given once every input is embedded (a failure prints none), as JSON lines or as
 * one float32 .npy matrix. Images are decoded and preprocessed exactly like transformers'
 * CLIPProcessor and embedded in batches; URLs are fetched up front, in parallel, with the
 * ingest fetcher (timeouts, retries, size cap). A thin client of the library: everything
 * numeric lives in src/clip. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "vdx/mclip.h"
#include "vdx/ingest.h"

typedef enum { INPUT_IMAGE, INPUT_TEXT } input_kind;

typedef struct embed_input {
    input_kind kind;
    const char *value;      /* path, URL or text, as given */
    vdx_fetch_result fetched; /* body of a URL */
} embed_input;

typedef struct embed_run {
    const vdx_clip_model *model;
    const vdx_text_model *text_model; /* an M-CLIP --model: texts only, model is NULL */
    embed_input *inputs;
    int n_inputs, dim, normalize, npy, batch;
    float *matrix;          /* n_inputs × dim, printed at the end (all or nothing) */
    int done;               /* inputs embedded so far */
    double started;
    int show_progress;
} embed_run;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vdx embed [options] (--image PATH|URL | --text STR)...\n\n"
            "Prints the CLIP embedding of each input, in the order given: one JSON line\n"
            "{\"kind\":\"image\"|\"text\",\"input\":...,\"embedding\":[...]} per input, or with\n"
            "--format npy one N x D float32 matrix in NumPy's .npy format.\n\n"
            "options:\n"
            "  --image PATH|URL  an image file (JPEG, PNG, WebP, GIF, BMP) or an http(s) URL\n"
            "  --text STR        a text prompt (cut to the model's limit, with a warning)\n"
            "  --model M         model directory or Hugging Face repo id\n"
            "                    (default: $VDX_MODEL, else " VDX_DEFAULT_MODEL ")\n"
            "  --normalize       L2-normalise each vector (cosine similarity = dot product)\n"
            "  --format F        jsonl (default) or npy (binary: redirect stdout to a file)\n"
            "  --batch N         images per forward pass (default 32)\n"
            "  --threads N       threads for the model (default: all cores)\n"
            "  --precision P     fp32 (default), bf16, int8 or auto ($VDX_PRECISION)\n"
            "  -h, --help        this help\n\n"
            "Vectors are unnormalised by default, exactly as transformers'\n"
            "get_image_features / get_text_features; floats print with 9 significant\n"
            "digits, so they read back bit for bit.\n");
}

/* ---- output ------------------------------------------------------------------- */

static void print_json_string(const char *s)
{
    cJSON *str = cJSON_CreateString(s);
    char *text = str ? cJSON_PrintUnformatted(str) : NULL;
    fputs(text ? text : "null", stdout);
    free(text);
    cJSON_Delete(str);
}

/* Keeps one input's vector for print_all. A vector with NaN or infinity is refused,
 * naming the input: a model whose weights or preprocessor_config.json are broken (an
 * image_std of 1e-45, weights of 3e38) would otherwise print nulls and exit 0. */
static int emit(embed_run *run, int index, float *vec)
{
    if (run->normalize)
        vdx_l2_normalize(vec, run->dim);
    for (int i = 0; i < run->dim; i++)
        if (!isfinite(vec[i]))
            return cli_fail_kind(VDX_ERR_CORRUPT,
                                 "input %d (%.200s): the model's vector holds %s at element "
                                 "%d: check the model's weights and preprocessor_config.json",
                                 index + 1, run->inputs[index].value,
                                 isnan(vec[i]) ? "NaN" : "an infinity", i);
    memcpy(run->matrix + (size_t)index * run->dim, vec, (size_t)run->dim * sizeof *vec);
    run->done++;
    if (run->show_progress) {
        double elapsed = vdx_now() - run->started;
        double rate = elapsed > 0 ? run->done / elapsed : 0;
        fprintf(stderr, "\rembedded %d/%d  %.1f/s  ETA %.0f s   ", run->done, run->n_inputs,
                rate, rate > 0 ? (run->n_inputs - run->done) / rate : 0.0);
        if (run->done == run->n_inputs)
            fputc('\n', stderr);
    }
    return 0;
}

/* One JSON line per input, in order. */
static void print_lines(const embed_run *run)
{
    for (int k = 0; k < run->n_inputs; k++) {
        const embed_input *in = &run->inputs[k];
        const float *vec = run->matrix + (size_t)k * run->dim;
        printf("{\"kind\":\"%s\",\"input\":", in->kind == INPUT_IMAGE ? "image" : "text");
        print_json_string(in->value);
        fputs(",\"embedding\":[", stdout);
        for (int i = 0; i < run->dim; i++)
            printf(i ? ",%.9g" : "%.9g", (double)vec[i]);
        fputs("]}\n", stdout);
    }
}

/* NumPy .npy v1.0: magic, header length, a Python dict literal padded to 64 bytes. */
static int write_npy(FILE *out, const float *matrix, int rows, int cols)
{
    char header[128];
    int len = snprintf(header, sizeof header,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows,
                       cols);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    uint16_t header_len = (uint16_t)(len + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, out);
    fputc(header_len & 0xff, out);
    fputc(header_len >> 8, out);
    fwrite(header, 1, (size_t)len, out);
    for (int i = 0; i < pad; i++)
        fputc(' ', out);
    fputc('\n', out);
    fwrite(matrix, sizeof *matrix, (size_t)rows * cols, out);
    return ferror(out) ? -1 : 0;
}

/* ---- inputs ------------------------------------------------------------------- */

static int fetch_urls(embed_run *run)
{
    int n_urls = 0;
    for (int i = 0; i < run->n_inputs; i++)
        n_urls += run->inputs[i].kind == INPUT_IMAGE && vdx_is_http_url(run->inputs[i].value);
    if (n_urls == 0)
        return 0;
    const char **urls = calloc((size_t)n_urls, sizeof *urls);
    vdx_fetch_result *results = calloc((size_t)n_urls, sizeof *results);
    if (!urls || !results) {
        free(urls);
        free(results);
        return cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory");
    }
    for (int i = 0, k = 0; i < run->n_inputs; i++)
        if (run->inputs[i].kind == INPUT_IMAGE && vdx_is_http_url(run->inputs[i].value))
            urls[k++] = run->inputs[i].value;
    vdx_fetch_options options;
    vdx_fetch_options_default(&options);
    options.imgix_params = ""; /* the URL as given, never rewritten */
    vdx_error err = {{0}};
    int rc = vdx_fetch_all(&options, urls, (size_t)n_urls, results, &err);
    if (rc != 0)
        cli_fail(&err, "fetching images: %s", err.message);
    for (int i = 0, k = 0; i < run->n_inputs; i++)
        if (run->inputs[i].kind == INPUT_IMAGE && vdx_is_http_url(run->inputs[i].value)) {
            run->inputs[i].fetched = results[k];
            if (rc == 0 && !results[k].ok) {
                cli_error("%s: %s", urls[k], results[k].reason);
                rc = -1;
            }
            k++;
        }
    free(urls);
    free(results);
    return rc == 0 ? 0 : 1;
}

/* Decodes and preprocesses one image input into pixel_values. */
static int prepare_image(const embed_run *run, embed_input *in, float *pixels)
{
    vdx_error err = {{0}};
    vdx_image img = {0};
    int rc = in->fetched.ok ? vdx_image_decode(in->fetched.data, in->fetched.size, in->value,
                                               &img, &err)
                            : vdx_image_load(in->value, &img, &err);
    if (rc == 0)
        rc = vdx_image_preprocess(&img, vdx_clip_get_preprocess(run->model), pixels, &err);
    vdx_image_free(&img);
    vdx_fetch_result_clear(&in->fetched);
    return rc != 0 ? cli_fail(&err, "%s", err.message) : 0; /* the exit status of its kind */
}

/* Texts through a text-only tower (M-CLIP). */
static int embed_texts(embed_run *run)
{
    float *vector = malloc((size_t)run->dim * sizeof *vector);
    if (!vector)
        return cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory");
    vdx_error err = {{0}};
    int rc = 0;
    for (int i = 0; i < run->n_inputs && rc == 0; i++) {
        int truncated = 0;
        if (vdx_text_model_embed(run->text_model, run->inputs[i].value, vector, &truncated,
                                 &err) != 0) {
            rc = cli_fail(&err, "text \"%.60s\": %s", run->inputs[i].value, err.message);
            break;
        }
        if (truncated)
            fprintf(stderr, "vdx embed: warning: text %d (\"%.40s%s\") is longer than "
                            "%d tokens and was truncated\n", i + 1, run->inputs[i].value,
                    strlen(run->inputs[i].value) > 40 ? "..." : "",
                    vdx_text_model_max_tokens(run->text_model));
        if ((rc = emit(run, i, vector)) != 0)
            break;
    }
    free(vector);
    return rc;
}

static int embed_all(embed_run *run)
{
    if (run->text_model)
        return embed_texts(run);
    const vdx_clip_config *cfg = vdx_clip_get_config(run->model);
    int size = cfg->vision.image_size; /* the crop's (vdx_clip_load checks) */
    size_t image_floats = (size_t)3 * size * size;
    float *pixels = malloc((size_t)run->batch * image_floats * sizeof *pixels);
    float *vectors = malloc((size_t)run->batch * run->dim * sizeof *vectors);
    int *pending = malloc((size_t)run->batch * sizeof *pending);
    if (!pixels || !vectors || !pending) {
        free(pixels);
        free(vectors);
        free(pending);
        return cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory for a batch of %d images", run->batch);
    }
    int n_pending = 0, rc = 0;
    vdx_error err = {{0}};
    for (int i = 0; i <= run->n_inputs && rc == 0; i++) {
        embed_input *in = i < run->n_inputs ? &run->inputs[i] : NULL;
        if (in && in->kind == INPUT_IMAGE) {
            if ((rc = prepare_image(run, in, pixels + (size_t)n_pending * image_floats)) != 0)
                break;
            pending[n_pending++] = i;
            if (n_pending < run->batch && i + 1 < run->n_inputs)
                continue;
        }
        if (n_pending > 0) { /* a full batch, a text next, or the end */
            if (vdx_clip_embed_images(run->model, pixels, n_pending, vectors, &err) != 0) {
                rc = cli_fail(&err, "%s", err.message);
                break;
            }
            for (int k = 0; k < n_pending && rc == 0; k++)
                rc = emit(run, pending[k], vectors + (size_t)k * run->dim);
            n_pending = 0;
        }
        if (in && in->kind == INPUT_TEXT) {
            int truncated = 0;
            if (vdx_clip_embed_text(run->model, in->value, vectors, &truncated, &err) != 0) {
                rc = cli_fail(&err, "text \"%.60s\": %s", in->value, err.message);
                break;
            }
            if (truncated)
                fprintf(stderr, "vdx embed: warning: text %d (\"%.40s%s\") is longer than "
                                "%d tokens and was truncated\n",
                        i + 1, in->value, strlen(in->value) > 40 ? "..." : "",
                        cfg->text.max_position_embeddings);
            rc = emit(run, i, vectors);
        }
    }
    free(pixels);
    free(vectors);
    free(pending);
    return rc;
}

/* ---- command ------------------------------------------------------------------ */

static int parse_positive(const char *arg, const char *option, int max, int *out)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (*arg == 0 || *end != 0 || v < 1 || v > max)
        return cli_usage_error("embed", "%s wants an integer from 1 to %d, not '%s'", option,
                               max, arg);
    *out = (int)v;
    return 0;
}

int cmd_embed(int argc, char **argv)
{
    static const struct option options[] = {
        {"image", required_argument, NULL, 'i'},  {"text", required_argument, NULL, 't'},
        {"model", required_argument, NULL, 'm'},  {"normalize", no_argument, NULL, 'n'},
        {"format", required_argument, NULL, 'f'}, {"batch", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
        {"precision", required_argument, NULL, 'P'}, {NULL, 0, NULL, 0}};
    const char *precision_arg = NULL;
    embed_run run = {0};
    run.batch = 32;
    const char *model_arg = NULL;
    int threads = 0;
    run.inputs = calloc((size_t)argc, sizeof *run.inputs);
    if (!run.inputs)
        return cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory");
    int opt, rc = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'i':
        case 't':
            if (opt == 'i' && !*optarg) { /* else "vdx: : cannot open" */
                rc = cli_usage_error("embed", "--image needs a path or URL, not ''");
                break;
            }
            run.inputs[run.n_inputs++] =
                (embed_input){opt == 'i' ? INPUT_IMAGE : INPUT_TEXT, optarg, {0}};
            break;
        case 'm': model_arg = optarg; break;
        case 'n': run.normalize = 1; break;
        case 'f':
            if (!strcmp(optarg, "npy"))
                run.npy = 1;
            else if (strcmp(optarg, "jsonl") != 0)
                rc = cli_usage_error("embed", "--format is jsonl or npy, not '%s'", optarg);
            break;
        case 'b': rc = parse_positive(optarg, "--batch", 4096, &run.batch); break;
        case 'j': rc = parse_positive(optarg, "--threads", 256, &threads); break;
        case 'P': precision_arg = optarg; break;
        case 'h':
            usage(stdout);
            free(run.inputs);
            return 0;
        case ':': rc = cli_usage_error("embed", "%s needs a value", argv[optind - 1]); break;
        default: rc = cli_usage_error("embed", "unknown option '%s'", argv[optind - 1]); break;
        }
    }
    if (rc == 0 && optind < argc)
        rc = cli_usage_error("embed", "unexpected argument '%s' (images go after --image, "
                             "texts after --text)", argv[optind]);
    if (rc == 0 && run.n_inputs == 0)
        rc = cli_usage_error("embed", "nothing to embed: give --image or --text");
    if (rc == 0)
        rc = cli_use_precision("embed", precision_arg, VDX_PRECISION_FP32);
    if (rc == 0 && run.npy && cli_stdout_is_tty())
        rc = cli_usage_error("embed", "--format npy writes binary data: redirect stdout to a "
                             "file or a pipe");
    if (rc != 0) {
        free(run.inputs);
        return rc;
    }

    /* An M-CLIP model is a text tower only: it embeds texts into its CLIP's image space. */
    char dir[4096];
    vdx_error err = {{0}};
    const char *arg = model_arg && *model_arg ? model_arg : getenv("VDX_MODEL");
    vdx_clip_model *model = NULL;
    vdx_text_model *text_model = NULL;
    if (arg && *arg && vdx_clip_resolve_model(arg, dir, sizeof dir, &err) == 0 &&
        vdx_mclip_is_model_dir(dir)) {
        for (int i = 0; i < run.n_inputs; i++)
            if (run.inputs[i].kind == INPUT_IMAGE) {
                free(run.inputs);
                return cli_usage_error("embed", "%s is an M-CLIP text model: it embeds texts "
                                       "only (images go through the CLIP model it pairs with)",
                                       arg);
            }
        if (threads > 0)
            vdx_clip_set_threads(threads);
        if (!(text_model = vdx_text_model_load_with(dir, cli_clip_options(), &err))) {
            free(run.inputs);
            return cli_fail(&err, "%s", err.message);
        }
        run.text_model = text_model;
        run.dim = vdx_text_model_dims(text_model);
    } else {
        if (!(model = cli_load_model(model_arg, threads))) {
            free(run.inputs);
            return cli_last_status();
        }
        run.model = model;
        run.dim = vdx_clip_embed_dim(model);
    }
    run.started = vdx_now();
    run.show_progress = cli_stderr_is_tty() && run.n_inputs > run.batch;
    /* every vector is kept and printed at the end: an input that fails (a missing file
     * after ten good ones) leaves standard output empty, never a partial result */
    if (!(run.matrix = calloc((size_t)run.n_inputs * run.dim, sizeof(float))))
        rc = cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory for %d vectors", run.n_inputs);
    if (rc == 0)
        rc = fetch_urls(&run);
    if (rc == 0)
        rc = embed_all(&run);
    if (rc == 0 && run.npy && write_npy(stdout, run.matrix, run.n_inputs, run.dim) != 0)
        rc = cli_error("writing the .npy matrix to stdout failed");
    else if (rc == 0 && !run.npy)
        print_lines(&run);
    if (fflush(stdout) != 0 || ferror(stdout))
        rc = rc ? rc : cli_error("writing to stdout failed");
    for (int i = 0; i < run.n_inputs; i++)
        vdx_fetch_result_clear(&run.inputs[i].fetched);
    free(run.matrix);
    free(run.inputs);
    vdx_clip_free(model);
    vdx_text_model_free(text_model);
    return rc;
}
