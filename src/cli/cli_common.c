/* Helpers shared by the vdx subcommands: error printing, model loading, tty checks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vdx: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

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
        cli_error("%s", err.message);
        return NULL;
    }
    vdx_clip_model *model = vdx_clip_load(dir, &err);
    if (!model)
        cli_error("%s", err.message);
    return model;
}

void cli_model_identity(const vdx_clip_model *model, vdx_model_identity *id)
{
    memset(id, 0, sizeof *id);
    snprintf(id->name, sizeof id->name, "%s", vdx_clip_model_name(model));
    snprintf(id->config_hash, sizeof id->config_hash, "%s", vdx_clip_config_hash(model));
    id->dims = vdx_clip_embed_dim(model);
}

int cli_stdout_is_tty(void) { return isatty(STDOUT_FILENO); }
int cli_stderr_is_tty(void) { return isatty(STDERR_FILENO); }
