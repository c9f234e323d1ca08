/* Helpers shared by the vdx subcommands: error printing, model loading, tty checks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static int fail_v(vdx_error_kind kind, int remember, const char *fmt, va_list ap);
#include <cjson/cJSON.h>

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(VDX_ERR_INTERNAL, 0, fmt, ap);
    va_end(ap);
    return 1;
}

int cli_exit_status(vdx_error_kind kind)
{
    static const int status[VDX_ERR_KIND_COUNT] = {
        [VDX_ERR_INTERNAL] = 1, [VDX_ERR_INVALID] = 3,        [VDX_ERR_NOT_FOUND] = 4,
        [VDX_ERR_CONFLICT] = 5, [VDX_ERR_MODEL_MISMATCH] = 6, [VDX_ERR_IO] = 7,
        [VDX_ERR_NO_SPACE] = 8, [VDX_ERR_NO_MEMORY] = 9,      [VDX_ERR_CORRUPT] = 10,
    };
    return (unsigned)kind < VDX_ERR_KIND_COUNT ? status[kind] : 1;
}

static int last_status = 1;

/* Prints; with remember, the kind's status becomes cli_last_status(). */
static int fail_v(vdx_error_kind kind, int remember, const char *fmt, va_list ap)
{
    fputs("vdx: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    int status = cli_exit_status(kind);
    if (remember)
        last_status = status;
    return status;
}

int cli_fail(const vdx_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int status = fail_v(err ? err->kind : VDX_ERR_INTERNAL, 1, fmt, ap);
    va_end(ap);
    return status;
}

int cli_fail_kind(vdx_error_kind kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int status = fail_v(kind, 1, fmt, ap);
    va_end(ap);
    return status;
}

int cli_last_status(void) { return last_status; }

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vdx %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'vdx %s --help'.\n", cmd);
    va_end(ap);
    return 2;
}

static void print_notice(const char *message, void *user)
{
    fprintf(stderr, "vdx: %s\n", message);
}

static vdx_clip_options load_options = {VDX_PRECISION_FP32, VDX_PRECISION_FP32, print_notice,
                                        NULL};

int cli_use_precision(const char *cmd, const char *arg, vdx_precision image_default)
{
    vdx_error err = {{0}};
    vdx_precision p;
    if (arg ? vdx_precision_parse(arg, &p, &err) != 0
            : vdx_precision_from_env(VDX_PRECISION_AUTO, &p, &err) != 0)
        return cli_usage_error(cmd, "%s", err.message);
    int given = arg || (getenv("VDX_PRECISION") && *getenv("VDX_PRECISION"));
    load_options.image_precision = given ? p : image_default;
    load_options.text_precision = given ? p : VDX_PRECISION_FP32;
    return 0;
}

const vdx_clip_options *cli_clip_options(void) { return &load_options; }

vdx_clip_model *cli_load_model(const char *model_arg, int threads)
{
    if (!model_arg || !*model_arg)
        model_arg = getenv("VDX_MODEL");
    if (!model_arg || !*model_arg)
        model_arg = VDX_DEFAULT_MODEL;
    if (threads > 0)
        vdx_clip_set_threads(threads);
    char dir[4096];
    vdx_error err = {{0}};
    if (vdx_clip_resolve_model(model_arg, dir, sizeof dir, &err) != 0) {
        cli_fail(&err, "%s", err.message);
        return NULL;
    }
    vdx_clip_model *model = vdx_clip_load_with(dir, &load_options, &err);
    if (!model)
        cli_fail(&err, "%s", err.message);
    return model;
}

vdx_clip_model *cli_load_model_for(const char *model_arg, int threads,
                                   const vdx_store_options *store_opts, int must_exist)
{
    int explicit_model = (model_arg && *model_arg) || (getenv("VDX_MODEL") && *getenv("VDX_MODEL"));
    if (explicit_model && !must_exist)
        return cli_load_model(model_arg, threads);
    vdx_store_options probe = *store_opts;
    probe.create = 0;
    probe.read_only = 1;
    probe.model = NULL;
    vdx_error err = {{0}};
    vdx_store *store = vdx_store_open(&probe, &err);
    if (!store) {
        if (must_exist) {
            cli_fail(&err, "%s", err.message);
            return NULL;
        }
        return cli_load_model(NULL, threads); /* no collection yet: the default model */
    }
    if (explicit_model) {
        vdx_store_close(store);
        return cli_load_model(model_arg, threads);
    }
    char recorded[256], dir[4096];
    snprintf(recorded, sizeof recorded, "%s", vdx_store_model(store)->name);
    vdx_store_close(store);
    if (vdx_clip_resolve_model(recorded, dir, sizeof dir, &err) != 0) {
        cli_fail(&err, "this collection was embedded with the model '%s', which is not "
                  "available (%s): give it with --model DIR|REPO_ID (or $VDX_MODEL)",
                  recorded, err.message);
        return NULL;
    }
    return cli_load_model(dir, threads);
}

int cli_store_options(int opt, const char *arg, vdx_store_options *so)
{
    switch (opt) {
    case 'c': so->collection = arg; return 1;
    case 'd': so->data_dir = arg; return 1;
    case 's': so->url = arg; return 1;
    default: return 0;
    }
}

static int output_lost;

void cli_print_json_line(const cJSON *obj)
{
    char *text = cJSON_PrintUnformatted(obj);
    if (!text) {
        fputs("vdx: out of memory while printing a JSON line\n", stderr);
        output_lost = 1;
        return;
    }
    puts(text);
    cJSON_free(text);
}

int cli_output_lost(void) { return output_lost; }

int cli_stdout_is_tty(void) { return isatty(STDOUT_FILENO); }
int cli_stderr_is_tty(void) { return isatty(STDERR_FILENO); }

const char *cli_text_model_arg(const char *text_arg)
{
    if (!text_arg || !*text_arg)
        text_arg = getenv("VDX_TEXT_MODEL");
    return text_arg && *text_arg ? text_arg : NULL;
}

/* DATA/collections/NAME/text-models.json: {"text_models":[{"name","dims","pairing"}]}. */
static cJSON *read_text_models(const char *path)
{
    char *text;
    size_t size;
    cJSON *json = NULL;
    if (vdx_read_file(path, &text, &size, NULL) == 0) {
        json = cJSON_Parse(text);
        free(text);
    }
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        json = cJSON_CreateObject();
    }
    if (!cJSON_IsArray(cJSON_GetObjectItem(json, "text_models"))) {
        cJSON_DeleteItemFromObject(json, "text_models");
        cJSON_AddArrayToObject(json, "text_models");
    }
    return json;
}

vdx_text_model *cli_load_text_model(const char *text_arg, int force,
                                    const vdx_store_options *store_opts,
                                    const vdx_model_identity *image, int threads, int *failed)
{
    *failed = 0;
    if (!(text_arg = cli_text_model_arg(text_arg)))
        return NULL;
    *failed = 1;
    if (threads > 0)
        vdx_clip_set_threads(threads);
    char dir[4096], path[4096];
    vdx_error err = {{0}};
    if (vdx_clip_resolve_model(text_arg, dir, sizeof dir, &err) != 0) {
        cli_fail(&err, "%s", err.message);
        return NULL;
    }
    vdx_text_model *tm = vdx_text_model_load_with(dir, cli_clip_options(), &err);
    if (!tm) {
        cli_fail(&err, "%s", err.message);
        return NULL;
    }
    const char *name = vdx_text_model_name(tm);
    if (vdx_text_model_dims(tm) != image->dims) {
        cli_fail_kind(VDX_ERR_MODEL_MISMATCH, "the text model %s gives %d-d vectors but the collection's image model %s "
                  "gives %d-d ones: they cannot share a space", name, vdx_text_model_dims(tm),
                  image->name, image->dims);
        vdx_text_model_free(tm);
        return NULL;
    }
    if (vdx_store_collection_dir(store_opts, path, sizeof path - 32, &err) != 0) {
        cli_fail(&err, "%s", err.message);
        vdx_text_model_free(tm);
        return NULL;
    }
    strcat(path, "/text-models.json");
    cJSON *json = read_text_models(path);
    cJSON *list = cJSON_GetObjectItem(json, "text_models"), *entry;
    int recorded = 0;
    cJSON_ArrayForEach(entry, list) {
        const cJSON *n = cJSON_GetObjectItem(entry, "name");
        recorded |= cJSON_IsString(n) && strcmp(n->valuestring, name) == 0;
    }
    int known = vdx_text_model_known_pair(name, image->name);
    if (!known && !recorded && !force) {
        cli_fail_kind(VDX_ERR_MODEL_MISMATCH, "the text model %s is not known to share the space of the collection's "
                  "image model %s (M-CLIP/XLM-Roberta-Large-Vit-B-32 pairs with "
                  "openai/clip-vit-base-patch32): its prompts would find unrelated images. "
                  "Add --force-text-model if you know they were trained together",
                  name, image->name);
        cJSON_Delete(json);
        vdx_text_model_free(tm);
        return NULL;
    }
    if (!recorded && strcmp(name, image->name) != 0) {
        entry = cJSON_CreateObject();
        cJSON_AddStringToObject(entry, "name", name);
        cJSON_AddNumberToObject(entry, "dims", vdx_text_model_dims(tm));
        cJSON_AddStringToObject(entry, "pairing", known ? "known" : "forced");
        cJSON_AddBoolToObject(entry, "multilingual", vdx_text_model_multilingual(tm));
        cJSON_AddItemToArray(list, entry);
        char *text = cJSON_Print(json);
        /* a read-only place (another user's collection) only loses the record */
        if (!text || vdx_write_file_atomic(path, text, strlen(text), &err) != 0)
            fprintf(stderr, "vdx: note: could not record the text model in %s: %s\n", path,
                    text ? err.message : "out of memory");
        cJSON_free(text);
    }
    cJSON_Delete(json);
    *failed = 0;
    return tm;
}
