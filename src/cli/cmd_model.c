/* vdx model: download a CLIP model into the Hugging Face cache (`pull`), show where a
 * --model argument resolves to (`path`), and describe a model (`info`: architecture,
 * parameter count, weight file and dtype). A thin client of clip/hub.c and the weight
 * readers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "weights/weights.h"
#include "vdx/mclip.h"

static const char usage_text[] =
    "usage: vdx model pull [REPO_ID] [--revision REV]\n"
    "       vdx model path [MODEL]\n"
    "       vdx model info [MODEL]\n"
    "\n"
    "pull   download config.json, the weights (model.safetensors, else pytorch_model.bin),\n"
    "       vocab.json, merges.txt, preprocessor_config.json and tokenizer_config.json\n"
    "       (an M-CLIP text model: sentencepiece.bpe.model, tokenizer_config.json and\n"
    "       special_tokens_map.json) into the Hugging Face cache, exactly where\n"
    "       transformers keeps them. Partial\n"
    "       downloads resume; every file is checked against the hub's size and sha256.\n"
    "       Prints the snapshot directory.\n"
    "path   print the model directory a MODEL argument resolves to.\n"
    "info   print a model's architecture, parameter count, weight file and dtype.\n"
    "\n"
    "MODEL is a directory in the Hugging Face layout or a repo id (optionally ID@REV),\n"
    "looked up in the cache; default $VDX_MODEL, else " VDX_DEFAULT_MODEL ".\n"
    "\n"
    "environment:\n"
    "  HF_ENDPOINT   hub to download from (default https://huggingface.co; mirrors work)\n"
    "  HF_TOKEN      access token for private or gated repositories\n"
    "  HF_HUB_CACHE  cache directory (default $HF_HOME/hub)\n"
    "  HF_HOME       Hugging Face home (default $XDG_CACHE_HOME/huggingface, else\n"
    "                ~/.cache/huggingface)\n"
    "  VDX_MODEL     the default MODEL\n";

static const char *default_model(void)
{
    const char *m = getenv("VDX_MODEL");
    return m && *m ? m : VDX_DEFAULT_MODEL;
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

/* ---- drawing a pull's progress (the library reports, the tool draws) ---- */

typedef struct pull_view {
    int tty;
    double last_report;
} pull_view;

static void format_bytes(char *out, size_t size, double bytes)
{
    if (bytes >= 1e9)
        snprintf(out, size, "%.2f GB", bytes / 1e9);
    else if (bytes >= 1e6)
        snprintf(out, size, "%.1f MB", bytes / 1e6);
    else if (bytes >= 1e3)
        snprintf(out, size, "%.0f kB", bytes / 1e3);
    else
        snprintf(out, size, "%.0f B", bytes);
}

/* A file's transfer: a redrawn bar on a terminal (5 times a second), a plain line every
 * 10 s otherwise; always a last line when it is done. */
static void draw_transfer(pull_view *v, const vdx_pull_event *ev, int final)
{
    double now = vdx_now();
    if (!final && now - v->last_report < (v->tty ? 0.2 : 10.0))
        return;
    v->last_report = now;
    double have = (double)ev->have, rate = ev->elapsed_s > 0 ? (double)ev->written / ev->elapsed_s : 0;
    char have_s[32], total_s[32] = "?", rate_s[32], eta_s[32] = "?";
    format_bytes(have_s, sizeof have_s, have);
    format_bytes(rate_s, sizeof rate_s, rate);
    if (ev->total > 0) {
        format_bytes(total_s, sizeof total_s, (double)ev->total);
        if (rate > 0)
            snprintf(eta_s, sizeof eta_s, "%.0f s", ((double)ev->total - have) / rate);
    }
    double percent = ev->total > 0 ? 100.0 * have / (double)ev->total : 0;
    if (v->tty) {
        int filled = (int)(percent / 5);
        char bar[21];
        for (int i = 0; i < 20; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[20] = 0;
        fprintf(stderr, "\r  %-24.24s [%s] %5.1f%% %s / %s  %s/s  ETA %s   %s", ev->file, bar,
                percent, have_s, total_s, rate_s, final ? "0 s" : eta_s, final ? "\n" : "");
    } else if (final) {
        fprintf(stderr, "  %s: %s in %.1f s (%s/s)\n", ev->file, have_s, ev->elapsed_s, rate_s);
    } else {
        fprintf(stderr, "  %s: %s / %s (%.0f%%), %s/s, ETA %s\n", ev->file, have_s, total_s,
                percent, rate_s, eta_s);
    }
    fflush(stderr);
    if (final)
        v->last_report = 0; /* no bar left half-drawn */
}

static void draw_pull(const vdx_pull_event *ev, void *user)
{
    pull_view *v = user;
    switch (ev->kind) {
    case VDX_PULL_BEGIN:
        fprintf(stderr, "vdx: pulling %s (%s) from %s into %s\n", ev->repo_id, ev->revision,
                ev->endpoint, ev->folder);
        break;
    case VDX_PULL_CACHED:
        fprintf(stderr, "  %s: already in the cache\n", ev->file);
        break;
    case VDX_PULL_RESUME:
        fprintf(stderr, "  %s: resuming at byte %lld\n", ev->file, ev->have);
        break;
    case VDX_PULL_PROGRESS:
        draw_transfer(v, ev, 0);
        break;
    case VDX_PULL_FILE_DONE:
        draw_transfer(v, ev, 1);
        break;
    case VDX_PULL_RETRY:
        if (v->tty && v->last_report > 0)
            fputc('\n', stderr); /* end a half-drawn bar */
        v->last_report = 0;
        fprintf(stderr, "vdx: %s: %s; retrying in %.2g s (attempt %d of %d)\n", ev->file,
                ev->why, ev->retry_in_s, ev->attempt, ev->max_attempts);
        break;
    case VDX_PULL_END:
        fprintf(stderr, "vdx: %s at commit %s: %d file%s downloaded\n", ev->repo_id, ev->commit,
                ev->downloaded, ev->downloaded == 1 ? "" : "s");
        break;
    }
}

static int model_pull(int argc, char **argv)
{
    const char *repo = NULL, *revision = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--revision")) {
            if (++i >= argc)
                return cli_usage_error("model", "--revision needs a value");
            revision = argv[i];
        } else if (!strncmp(argv[i], "--revision=", 11)) {
            revision = argv[i] + 11;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("model", "unknown option '%s'", argv[i]);
        } else if (!repo) {
            repo = argv[i];
        } else {
            return cli_usage_error("model", "pull takes one repo id, got '%s' too", argv[i]);
        }
    }
    if (!repo)
        repo = default_model();
    char dir[4096];
    vdx_error err = {{0}};
    pull_view view = {.tty = isatty(STDERR_FILENO)};
    if (vdx_clip_pull_progress(repo, revision, dir, sizeof dir, draw_pull, &view, &err) != 0) {
        if (view.tty && view.last_report > 0)
            fputc('\n', stderr);
        return cli_fail(&err, "%s", err.message);
    }
    printf("%s\n", dir);
    return 0;
}

/* The single optional MODEL argument of path/info. */
static int model_argument(int argc, char **argv, const char **model)
{
    *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error("model", "unknown option '%s'", argv[i]);
        if (*model)
            return cli_usage_error("model", "%s takes one MODEL, got '%s' too", argv[0],
                                   argv[i]);
        *model = argv[i];
    }
    if (!*model)
        *model = default_model();
    return 0;
}

static int model_path(int argc, char **argv)
{
    const char *model;
    int rc = model_argument(argc, argv, &model);
    if (rc)
        return rc;
    char dir[4096];
    vdx_error err = {{0}};
    if (vdx_clip_resolve_model(model, dir, sizeof dir, &err) != 0)
        return cli_fail(&err, "%s", err.message);
    printf("%s\n", dir);
    return 0;
}

/* 151277313 → "151,277,313" */
static void with_commas(unsigned long long n, char *out, size_t size)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%llu", n), o = 0;
    for (int i = 0; i < len && (size_t)o + 2 < size; i++) {
        if (i && (len - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = 0;
}

static void print_tower(const char *label, const vdx_clip_tower_config *t, int vision)
{
    printf("%-10s width %d, %d layers, %d heads, MLP %d, ", label, t->hidden_size,
           t->num_layers, t->num_heads, t->intermediate_size);
    if (vision) {
        int grid = t->image_size / t->patch_size;
        printf("patch %d, image %d (%d tokens)", t->patch_size, t->image_size, grid * grid + 1);
    } else {
        printf("%d positions, vocabulary %d", t->max_position_embeddings, t->vocab_size);
    }
    printf(", %s, eps %g\n", t->hidden_act_quick_gelu ? "quick_gelu" : "gelu",
           t->layer_norm_eps);
}

static int model_info(int argc, char **argv)
{
    const char *model;
    int rc = model_argument(argc, argv, &model);
    if (rc)
        return rc;
    char dir[4096], config_path[4200], weights_path[4200];
    vdx_error err = {{0}};
    vdx_clip_config cfg;
    if (vdx_clip_resolve_model(model, dir, sizeof dir, &err) != 0)
        return cli_fail(&err, "%s", err.message);
    snprintf(config_path, sizeof config_path, "%s/config.json", dir);
    int mclip = vdx_mclip_is_model_dir(dir);
    if ((!mclip && vdx_clip_config_load(config_path, &cfg, &err) != 0) ||
        weights_find_file(dir, weights_path, sizeof weights_path, &err) != 0)
        return cli_fail(&err, "%s", err.message);
    vdx_weights *w = weights_open(weights_path, &err);
    if (!w)
        return cli_fail(&err, "%s", err.message);
    unsigned long long parameters = 0, counts[4] = {0};
    size_t buffers = 0;
    for (size_t i = 0; i < w->count; i++) {
        const vdx_tensor *t = &w->tensors[i];
        unsigned long long n = t->nbytes / dtype_size(t->dtype);
        if (t->dtype == VDX_DTYPE_I64) { /* position_ids: buffers, not parameters */
            buffers++;
            continue;
        }
        parameters += n;
        counts[t->dtype] += n;
    }
    char dtypes[128] = "", number[64];
    for (int d = 0; d < 4; d++)
        if (counts[d])
            snprintf(dtypes + strlen(dtypes), sizeof dtypes - strlen(dtypes), "%s%s",
                     dtypes[0] ? "+" : "", dtype_name((vdx_dtype)d));
    with_commas(parameters, number, sizeof number);
    printf("%-10s %s\n", "model", model);
    printf("%-10s %s\n", "directory", dir);
    printf("%-10s %s (%s, %s), %zu tensors\n", "weights", strrchr(weights_path, '/') + 1,
           w->format, dtypes[0] ? dtypes : "no floats", w->count);
    printf("%-10s %s (+ %zu int64 buffer%s)\n", "parameters", number, buffers,
           buffers == 1 ? "" : "s");
    weights_close(w);
    if (mclip) { /* a text-only M-CLIP tower: its sizes come from the tensor shapes */
        vdx_mclip_model *m = vdx_mclip_load(dir, &err);
        if (!m)
            return cli_fail(&err, "%s", err.message);
        const vdx_mclip_config *c = vdx_mclip_get_config(m);
        printf("%-10s %d dimensions, in the space of the CLIP image vectors it was trained "
               "against\n", "embedding", c->num_dims);
        printf("%-10s M-CLIP (%s): XLM-R width %d, %d layers, %d heads, MLP %d, %d positions, "
               "vocabulary %d, gelu, eps %g, mean pooling + LinearTransformation\n", "text",
               c->model_base[0] ? c->model_base : "?", c->hidden_size, c->num_layers,
               c->num_heads, c->intermediate_size, c->max_position_embeddings, c->vocab_size,
               c->layer_norm_eps);
        vdx_mclip_free(m);
        return 0;
    }
    printf("%-10s %d dimensions\n", "embedding", cfg.projection_dim);
    print_tower("vision", &cfg.vision, 1);
    print_tower("text", &cfg.text, 0);
    return 0;
}

int cmd_model(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (wants_help(argc - 1, argv + 1)) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(argv[1], "pull"))
        return model_pull(argc - 1, argv + 1);
    if (!strcmp(argv[1], "path"))
        return model_path(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info"))
        return model_info(argc - 1, argv + 1);
    return cli_usage_error("model", "unknown subcommand '%s' (pull, path or info)", argv[1]);
}
