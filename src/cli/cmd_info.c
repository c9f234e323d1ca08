/* vdx info: what a collection holds: backend, model, item count, failures with their
 * reasons, vector type, size on disk, and the state of an ingest (progress.json).
 * Readable text on a terminal, one JSON document otherwise. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define FAILURES_SHOWN 10

static void print_help(FILE *out)
{
    fprintf(out, "usage: vdx info [options]\n"
                 "\n"
                 "Shows a collection: model, item count, failures and their reasons, size on\n"
                 "disk, and the progress of an ingest. Text on a terminal, JSON otherwise.\n"
                 "\n"
                 "options:\n"
                 "  --collection NAME   collection (default: default)\n"
                 "  --data DIR          data directory (default: $VDX_HOME, else "
                 "~/.local/share/vdx)\n"
                 "  --store URL         store backend (default: $VDX_STORE, else embedded)\n"
                 "  --failures          list every failed item (default: the first %d)\n"
                 "  --json              JSON even on a terminal\n"
                 "  -h, --help          this help\n",
                 FAILURES_SHOWN);
}

static void human_size(double bytes, char *out, size_t size)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, size, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *str_or_unknown(const cJSON *o, const char *name)
{
    const char *s = str_field(o, name);
    return s ? s : "?";
}

static double num_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void print_text(const cJSON *info, const cJSON *failures, int all, const cJSON *progress)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(info, "model");
    char size[32];
    human_size(num_field(info, "bytes_on_disk"), size, sizeof size);
    const char *hash = model ? str_field(model, "fingerprint") : NULL;
    printf("collection   %s (%s)\n", str_or_unknown(info, "collection"),
           str_or_unknown(info, "backend"));
    printf("model        %s, %d-d, fingerprint %.12s\n",
           model ? str_or_unknown(model, "name") : "?",
           model ? (int)num_field(model, "dims") : 0, hash ? hash : "?");
    printf("items        %.0f\n", num_field(info, "count"));
    /* what embedded the vectors, per kind: "bf16 on brg:avx512_core_bf16, large JPEGs
     * decoded reduced: 25000 items (1 run, last 2026-12-04T...)" */
    const cJSON *kinds = cJSON_GetObjectItemCaseSensitive(info, "embedded_with"), *k;
    if (cJSON_GetArraySize(kinds) == 0)
        printf("embedded     not recorded (vectors stored by a vdx before 0.1.0's precisions)\n");
    int first = 1;
    cJSON_ArrayForEach(k, kinds) {
        const char *precision = str_or_unknown(k, "precision"), *isa = str_field(k, "isa"),
                   *decode = str_field(k, "decode");
        double runs = num_field(k, "runs");
        printf("%s %s%s%s%s: %.0f items (%.0f run%s, last %s)\n",
               first ? "embedded    " : "            ",
               strcmp(precision, "external") == 0 ? "elsewhere (vdx ingest vectors)" : precision,
               isa ? " on " : "", isa ? isa : "",
               !decode ? "" : strcmp(decode, "reduced") == 0 ? ", large JPEGs decoded reduced"
                                                          : ", images decoded exactly",
               num_field(k, "items"), runs, runs == 1 ? "" : "s", str_or_unknown(k, "last"));
        first = 0;
    }
    printf("failed       %d\n", cJSON_GetArraySize(failures));
    printf("vectors      %s\n", str_or_unknown(info, "vector_type"));
    printf("on disk      %s\n", size);
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(info, "index");
    const char *kind = ix ? str_field(ix, "kind") : NULL;
    if (kind && strcmp(kind, "none") != 0) {
        char isize[32];
        human_size(num_field(ix, "bytes_on_disk"), isize, sizeof isize);
        printf("index        %s: %.0f rows (%.1f%% of the items; %.0f newer ones scanned "
               "exactly), %.0f lists, nprobe %.0f, %s (%.0f bytes/item), built %s in %.1f s\n",
               kind, num_field(ix, "rows"), num_field(ix, "coverage") * 100,
               num_field(ix, "unindexed"), num_field(ix, "lists"), num_field(ix, "nprobe"),
               isize, num_field(ix, "bytes_per_item"), str_or_unknown(ix, "built"),
               num_field(ix, "build_seconds"));
    } else if (kind) {
        const char *problem = str_field(ix, "problem");
        printf("index        none (exact scan)%s%s\n", problem ? ": " : "", problem ? problem : "");
    }
    if (progress) {
        const char *state = str_field(progress, "state");
        long pid = (long)num_field(progress, "pid");
        if (state && !strcmp(state, "running") && pid > 0 && kill((pid_t)pid, 0) != 0 &&
            errno == ESRCH)
            state = "interrupted (its process is gone; run the ingest again to resume)";
        printf("ingest       %s: %.0f/%.0f done, %.0f failed, %.0f already stored (updated %s)\n",
               state ? state : "?", num_field(progress, "done"), num_field(progress, "total"),
               num_field(progress, "failed"), num_field(progress, "skipped"),
               str_or_unknown(progress, "updated"));
    }
    int n = cJSON_GetArraySize(failures);
    for (int i = 0; i < n && (all || i < FAILURES_SHOWN); i++) {
        const cJSON *f = cJSON_GetArrayItem(failures, i);
        printf("%s %s: %s\n", i ? "            " : "failures    ", str_or_unknown(f, "id"),
               str_or_unknown(f, "reason"));
    }
    if (!all && n > FAILURES_SHOWN)
        printf("             ... %d more (vdx info --failures lists them all)\n",
               n - FAILURES_SHOWN);
}

int cmd_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_STORE_LONGOPTS,
        {"failures", no_argument, 0, 'f'},
        {"json", no_argument, 0, 'j'},             {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    vdx_store_options so = {0};
    int all_failures = 0, json = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (cli_store_options(c, optarg, &so))
            continue;
        switch (c) {
        case 'f': all_failures = 1; break;
        case 'j': json = 1; break;
        case 'h': print_help(stdout); return 0;
        case ':': return cli_usage_error("info", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("info", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("info", "unexpected argument '%s'", argv[optind]);
    so.read_only = 1;
    vdx_error err = {{0}};
    vdx_store *store = vdx_store_open(&so, &err);
    if (!store)
        return cli_fail(&err, "%s", err.message);
    cJSON *info = NULL, *failures = NULL, *progress = NULL;
    if (vdx_store_info(store, &info, &err) != 0 ||
        vdx_store_failures(store, &failures, &err) != 0) {
        cJSON_Delete(info);
        vdx_store_close(store);
        return cli_fail(&err, "%s", err.message);
    }
    char path[4200], *text;
    snprintf(path, sizeof path, "%s/progress.json", vdx_store_dir(store));
    if (vdx_read_file(path, &text, NULL, NULL) == 0) {
        progress = cJSON_Parse(text);
        free(text);
    }
    if (json || !cli_stdout_is_tty()) {
        if (!all_failures)
            while (cJSON_GetArraySize(failures) > FAILURES_SHOWN)
                cJSON_DeleteItemFromArray(failures, FAILURES_SHOWN);
        cJSON_AddItemToObject(info, "failures", failures);
        failures = NULL;
        if (progress) {
            cJSON_AddItemToObject(info, "ingest", progress);
            progress = NULL;
        }
        cli_print_json_line(info);
    } else
        print_text(info, failures, all_failures, progress);
    cJSON_Delete(info);
    cJSON_Delete(failures);
    cJSON_Delete(progress);
    vdx_store_close(store);
    return 0;
}
