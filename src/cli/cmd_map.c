/* vdx map build | export: the 2-D map of a collection (src/map/, docs/map.md). build
 * embeds the WordNet vocabulary once with the collection's text tower (stored beside the
 * collection), computes the layout with progress on stderr and prints a summary; export
 * writes one line per item (id, x, y, cluster, cluster name) as JSON lines or CSV. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "vdx/map.h"

#define WORDNET_DIR "/usr/share/wordnet"

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: vdx map build [options]\n"
            "       vdx map export [--format jsonl|csv] [options]\n"
            "\n"
            "build computes 2-D coordinates for every item of a collection from its vectors\n"
            "(a 15-nearest-neighbour graph, UMAP's fuzzy graph and negative-sampling SGD from\n"
            "a PCA start), clusters them on the layout and names each cluster by the WordNet\n"
            "noun whose CLIP text vector best matches the cluster's mean vector. The map is\n"
            "stored beside the collection (map.bin, written atomically: a killed build leaves\n"
            "the previous map). Items ingested later are placed among their nearest mapped\n"
            "neighbours until the next build. export prints one line per item: id, x, y,\n"
            "cluster, cluster name (placed items have no cluster).\n"
            "\n"
            "options:\n"
            "  --collection NAME   collection (default: default)\n"
            "  --data DIR          data directory (default: $VDX_HOME, else ~/.local/share/vdx)\n"
            "  --store URL         store (default: $VDX_STORE, else the embedded store)\n"
            "  --seed N            random seed of the layout (default 1): the same seed, data\n"
            "                      and --threads give the same map\n"
            "  --neighbors K       neighbours per item (default 15)\n"
            "  --epochs N          SGD epochs (default 500 below 10000 items, else 200)\n"
            "  --clusters N        clusters (default about sqrt(items/10), 2..64)\n"
            "  --threads N         threads for the neighbour search (default: all cores)\n"
            "  --model M           model whose text tower names the clusters (default: the\n"
            "                      collection's; loaded only when the vocabulary is embedded)\n"
            "  --wordnet DIR       WordNet files (default " WORDNET_DIR ", Debian wordnet-base)\n"
            "  --no-names          clusters without names (no vocabulary)\n"
            "  --format F          export: jsonl (default) or csv\n"
            "  --json              build: a JSON summary even on a terminal\n"
            "  -h, --help          this help\n");
}

static const char *last_stage;

static void on_progress(const char *stage, double fraction, void *user)
{
    (void)user;
    if (cli_stderr_is_tty()) {
        fprintf(stderr, "\rmap: %-10s %5.1f%%", stage, fraction * 100);
    } else if (last_stage != stage && (!last_stage || strcmp(last_stage, stage) != 0)) {
        fprintf(stderr, "map: %s\n", stage);
    }
    last_stage = stage;
}

/* The stored vocabulary when it is of this collection's model, else a fresh one. */
static int get_vocab(vdx_store *store, const vdx_store_options *so, const char *model_arg,
                     const char *wordnet, int threads, vdx_map_vocab *vocab)
{
    vdx_error err = {{0}};
    const vdx_model_identity *id = vdx_store_model(store);
    if (vdx_map_vocab_load(store, vocab, &err) == 0) {
        if (vocab->dims == id->dims && (model_arg == NULL || strcmp(vocab->model, model_arg) == 0))
            return 0;
        vdx_map_vocab_free(vocab);
    } else if (err.kind != VDX_ERR_NOT_FOUND) {
        fprintf(stderr, "vdx: the stored vocabulary is unusable (%s): embedding it again\n",
                err.message);
    }
    if (vdx_map_vocab_wordnet(wordnet, 2, vocab, &err) != 0)
        return cli_fail(&err, "the cluster names' vocabulary: %s (or use --no-names)",
                        err.message);
    vdx_clip_model *clip = cli_load_model_for(model_arg, threads, so, 1);
    if (!clip) {
        vdx_map_vocab_free(vocab);
        return cli_last_status();
    }
    vdx_text_model *text = vdx_text_model_of_clip(clip, &err);
    int rc = 0;
    if (!text)
        rc = cli_fail(&err, "%s", err.message);
    else {
        fprintf(stderr, "vdx: embedding %d WordNet nouns for the cluster names (once per "
                        "collection)\n", vocab->n);
        if (vdx_map_vocab_embed(text, vocab, on_progress, NULL, &err) != 0)
            rc = cli_fail(&err, "%s", err.message);
        else if (cli_stderr_is_tty())
            fprintf(stderr, "\n");
    }
    if (rc == 0 && vocab->dims != id->dims)
        rc = cli_fail_kind(VDX_ERR_MODEL_MISMATCH, "the text tower gives %d-d vectors, the "
                           "collection holds %d-d ones", vocab->dims, id->dims);
    if (rc == 0 && vdx_map_vocab_save(store, vocab, &err) != 0)
        rc = cli_fail(&err, "saving the vocabulary: %s", err.message);
    vdx_text_model_free(text);
    vdx_clip_free(clip);
    if (rc != 0)
        vdx_map_vocab_free(vocab);
    return rc;
}

static int print_summary(vdx_store *store, int json)
{
    vdx_error err = {{0}};
    vdx_map *map = vdx_map_open(store, &err);
    if (!map)
        return cli_fail(&err, "%s", err.message);
    cJSON *d = vdx_map_describe(map);
    int status = 0;
    if (!d) {
        status = cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory for the summary");
    } else if (json || !cli_stdout_is_tty()) {
        cli_print_json_line(d);
    } else {
        printf("mapped %lld items in %.1f s, %d clusters:", (long long)vdx_map_count(map),
               cJSON_GetObjectItemCaseSensitive(d, "seconds")->valuedouble,
               vdx_map_cluster_count(map));
        for (int c = 0; c < vdx_map_cluster_count(map) && c < 12; c++)
            printf("%s %s", c ? "," : "", *vdx_map_cluster_name(map, c)
                                             ? vdx_map_cluster_name(map, c) : "(unnamed)");
        printf("%s\n", vdx_map_cluster_count(map) > 12 ? ", ..." : "");
    }
    cJSON_Delete(d);
    vdx_map_close(map);
    return status;
}

static void csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static int export_map(vdx_store *store, int csv)
{
    vdx_error err = {{0}};
    vdx_map *map = vdx_map_open(store, &err);
    if (!map)
        return cli_fail(&err, "%s", err.message);
    const vdx_map_point *p = vdx_map_points(map);
    if (csv)
        printf("id,x,y,cluster,cluster_name\n");
    for (int64_t i = 0; i < vdx_map_count(map); i++) {
        if (csv) {
            csv_field(p[i].id);
            printf(",%.9g,%.9g,", p[i].x, p[i].y);
            if (p[i].cluster >= 0) {
                printf("%d,", p[i].cluster);
                csv_field(vdx_map_cluster_name(map, p[i].cluster));
            } else {
                putchar(',');
            }
            putchar('\n');
        } else {
            cJSON *o = cJSON_CreateObject();
            if (!o) {
                vdx_map_close(map);
                return cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory exporting the map");
            }
            cJSON_AddStringToObject(o, "id", p[i].id);
            cJSON_AddNumberToObject(o, "x", p[i].x);
            cJSON_AddNumberToObject(o, "y", p[i].y);
            if (p[i].cluster >= 0) {
                cJSON_AddNumberToObject(o, "cluster", p[i].cluster);
                cJSON_AddStringToObject(o, "cluster_name", vdx_map_cluster_name(map, p[i].cluster));
            } else {
                cJSON_AddNullToObject(o, "cluster");
                cJSON_AddNullToObject(o, "cluster_name");
            }
            cli_print_json_line(o);
            cJSON_Delete(o);
        }
    }
    vdx_map_close(map);
    if (fflush(stdout) != 0)
        return cli_fail_kind(VDX_ERR_IO, "writing the export failed");
    return 0;
}

static int number(const char *flag, const char *arg, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (!*arg || *end || v < lo || v > hi)
        return cli_usage_error("map", "%s wants a number from %ld to %ld, not '%s'", flag, lo,
                               hi, arg);
    *out = v;
    return 0;
}

int cmd_map(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_STORE_LONGOPTS,
        {"seed", required_argument, 0, 'S'},
        {"neighbors", required_argument, 0, 'k'},
        {"epochs", required_argument, 0, 'e'},
        {"clusters", required_argument, 0, 'C'},
        {"threads", required_argument, 0, 't'},
        {"model", required_argument, 0, 'm'},
        {"wordnet", required_argument, 0, 'w'},
        {"no-names", no_argument, 0, 'n'},
        {"format", required_argument, 0, 'f'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    vdx_store_options so = {.read_only = 1};
    vdx_map_options mo = {.on_progress = on_progress};
    const char *model_arg = NULL, *wordnet = WORDNET_DIR, *format = "jsonl";
    int no_names = 0, json = 0;
    optind = 1;
    opterr = 0;
    int c, li = 0;
    long v;
    while ((c = getopt_long(argc, argv, ":h", longopts, &li)) != -1) {
        if (cli_store_options(c, optarg, &so))
            continue;
        char flag[40];
        snprintf(flag, sizeof flag, "--%s", longopts[li].name);
        switch (c) {
        case 'S':
            if (number(flag, optarg, 1, 2147483647L, &v))
                return 2;
            mo.seed = (uint64_t)v;
            break;
        case 'k':
            if (number(flag, optarg, 2, 200, &v))
                return 2;
            mo.neighbors = (int)v;
            break;
        case 'e':
            if (number(flag, optarg, 1, 100000, &v))
                return 2;
            mo.epochs = (int)v;
            break;
        case 'C':
            if (number(flag, optarg, 1, 100000, &v))
                return 2;
            mo.clusters = (int)v;
            break;
        case 't':
            if (number(flag, optarg, 1, 1024, &v))
                return 2;
            mo.threads = (int)v;
            break;
        case 'm': model_arg = optarg; break;
        case 'w': wordnet = optarg; break;
        case 'n': no_names = 1; break;
        case 'f': format = optarg; break;
        case 'j': json = 1; break;
        case 'h': print_help(stdout); return 0;
        case ':': return cli_usage_error("map", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("map", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("map", "expected 'build' or 'export'; unexpected argument '%s'",
                               argv[optind + 1]);
    if (argc - optind != 1 || (strcmp(argv[optind], "build") != 0 &&
                               strcmp(argv[optind], "export") != 0))
        return cli_usage_error("map", "expected 'build' or 'export'");
    int build = strcmp(argv[optind], "build") == 0;
    if (strcmp(format, "jsonl") != 0 && strcmp(format, "csv") != 0)
        return cli_usage_error("map", "--format is jsonl or csv, not '%s'", format);
    vdx_error err = {{0}};
    vdx_store *store = vdx_store_open(&so, &err);
    if (!store)
        return cli_fail(&err, "%s", err.message);
    int status;
    if (!build) {
        status = export_map(store, strcmp(format, "csv") == 0);
    } else {
        vdx_map_vocab vocab = {0};
        if (vdx_store_count(store) < 2) {
            status = cli_fail_kind(VDX_ERR_INVALID, "a map needs at least 2 items; collection "
                                   "'%s' holds %lld", vdx_store_collection(store),
                                   (long long)vdx_store_count(store));
            vdx_store_close(store);
            return status;
        }
        status = no_names ? 0 : get_vocab(store, &so, model_arg, wordnet, mo.threads, &vocab);
        if (status == 0) {
            fprintf(stderr, "vdx: mapping %lld items\n", (long long)vdx_store_count(store));
            int rc = vdx_map_build(store, &mo, no_names ? NULL : &vocab, &err);
            if (cli_stderr_is_tty())
                fprintf(stderr, "\n");
            status = rc != 0 ? cli_fail(&err, "map build: %s", err.message)
                             : print_summary(store, json);
        }
        vdx_map_vocab_free(&vocab);
    }
    vdx_store_close(store);
    return status;
}
