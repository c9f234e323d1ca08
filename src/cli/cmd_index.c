/* vdx index build: the approximate index of a collection (embedded store), with progress
 * on stderr and a summary (JSON line, or text on a terminal). Also the automatic build
 * at the end of an ingest (cli_index_auto). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: vdx index build [options]\n"
            "\n"
            "Builds (or rebuilds) the approximate index of a collection in the embedded\n"
            "store: k-means partitions, compact codes and an exact rerank (docs/index.md).\n"
            "Searches use it from then on (vdx search --exact does not); items ingested\n"
            "later are searched exactly until the next build. An ingest builds it by itself\n"
            "once a collection holds %d items. A build that is killed leaves the\n"
            "previous index (or none), never a broken one.\n"
            "\n"
            "options:\n"
            "  --collection NAME   collection to index (default: default)\n"
            "  --data DIR          data directory (default: $VDX_HOME, else ~/.local/share/vdx)\n"
            "  --lists N           partitions (default: twice the square root of the item\n"
            "                      count, at least 16)\n"
            "  --nprobe N          partitions a search visits (default: twice the square\n"
            "                      root of lists, at least 8)\n"
            "  --train N           k-means sample rows (default: 64 per list, at most 262144)\n"
            "  --iterations N      k-means rounds (default: 10)\n"
            "  --codes int8|pq     the first pass's codes: int8 (a byte per dimension,\n"
            "                      exact among the visited partitions) or pq (4 bits per\n"
            "                      2 dimensions, a quarter of int8's bytes, approximate)\n"
            "                      (default: $VDX_INDEX_CODES, else int8 up to 2 GiB\n"
            "                      of them, 4.2M items at 512 dimensions, pq beyond)\n"
            "  --json              a JSON line even on a terminal\n"
            "  -h, --help          this help\n",
            VDX_INDEX_AUTO_ROWS);
}

static void on_progress(const char *stage, double fraction, void *user)
{
    (void)user;
    if (cli_stderr_is_tty())
        fprintf(stderr, "\rindex: %-9s %5.1f%%", stage, fraction * 100);
}

static int print_summary(vdx_store *store, int json)
{
    vdx_error err = {{0}};
    cJSON *info;
    if (vdx_store_info(store, &info, &err) != 0)
        return cli_fail(&err, "%s", err.message);
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(info, "index");
    if (json || !cli_stdout_is_tty())
        cli_print_json_line(ix);
    else
        printf("indexed %.0f items: %.0f lists, nprobe %.0f, %.0f bytes on disk (%.1f per "
               "item), %.1f s\n",
               cJSON_GetObjectItemCaseSensitive(ix, "rows")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(ix, "lists")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(ix, "nprobe")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(ix, "bytes_on_disk")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(ix, "bytes_per_item")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(ix, "build_seconds")->valuedouble);
    cJSON_Delete(info);
    return 0;
}

int cli_index_auto(vdx_store *store)
{
    vdx_index_options o = {.on_progress = on_progress};
    vdx_error err = {{0}};
    int built = 0;
    if (vdx_store_count(store) >= VDX_INDEX_AUTO_ROWS)
        fprintf(stderr, "vdx: %lld items: checking the approximate index\n",
                (long long)vdx_store_count(store));
    if (vdx_store_index_auto(store, &o, &built, &err) != 0)
        return cli_fail(&err, "building the index: %s", err.message);
    if (built) {
        if (cli_stderr_is_tty())
            fprintf(stderr, "\n");
        fprintf(stderr, "vdx: built the approximate index (vdx info shows it)\n");
    }
    return 0;
}

int cmd_index(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"collection", required_argument, 0, 'c'}, {"data", required_argument, 0, 'd'},
        {"lists", required_argument, 0, 'l'},      {"nprobe", required_argument, 0, 'p'},
        {"train", required_argument, 0, 't'},      {"iterations", required_argument, 0, 'i'},
        {"codes", required_argument, 0, 'k'},      {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    vdx_store_options so = {0};
    vdx_index_options io = {.on_progress = on_progress};
    int json = 0;
    optind = 1;
    opterr = 0;
    int c;
    int li = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, &li)) != -1) {
        switch (c) {
        case 'c': so.collection = optarg; break;
        case 'd': so.data_dir = optarg; break;
        case 'j': json = 1; break;
        case 'k':
            if (strcmp(optarg, "int8") != 0 && strcmp(optarg, "pq") != 0)
                return cli_usage_error("index", "--codes wants int8 or pq, not '%s'", optarg);
            io.codes = strcmp(optarg, "pq") == 0 ? VDX_INDEX_CODES_PQ : VDX_INDEX_CODES_INT8;
            break;
        case 'l':
        case 'p':
        case 't':
        case 'i': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 100000000) /* the option, not its value */
                return cli_usage_error("index", "--%s wants a number from 1 to 100000000, "
                                       "not '%s'", longopts[li].name, optarg);
            *(c == 'l' ? &io.lists : c == 'p' ? &io.nprobe : c == 't' ? &io.train_rows
                                                                       : &io.iterations) = (int)v;
            break;
        }
        case 'h': print_help(stdout); return 0;
        case ':': return cli_usage_error("index", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("index", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1 || strcmp(argv[optind], "build") != 0)
        return cli_usage_error("index", "expected 'build'");
    vdx_error err = {{0}};
    vdx_store *store = vdx_store_open(&so, &err);
    if (!store)
        return cli_fail(&err, "%s", err.message);
    int rc = vdx_store_index_build(store, &io, &err);
    if (cli_stderr_is_tty())
        fprintf(stderr, "\n");
    int status = rc != 0 ? cli_fail(&err, "%s", err.message) : print_summary(store, json);
    vdx_store_close(store);
    return status;
}
