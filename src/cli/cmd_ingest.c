/* vdx ingest: fills a collection from the Unsplash dataset (directory or .zip), a folder
 * of images, or a list of URLs/paths. Reports the rows the source rejects, shows progress
 * on stderr, and ends with a summary on stdout. Ctrl-C stops after committing the batch
 * in flight (a second Ctrl-C kills at once); re-running resumes. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "vdx/ingest.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    if (stop_requested) { /* second signal: no more waiting */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_requested = sig;
}

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: vdx ingest unsplash PATH|ZIP [options]\n"
            "       vdx ingest folder DIR [options]\n"
            "       vdx ingest urls FILE [options]\n"
            "       vdx ingest vectors VECTORS.npy --ids IDS.txt [--meta META.tsv] [options]\n"
            "\n"
            "Downloads (or reads), embeds with CLIP and stores images in a collection. Items\n"
            "already in the collection are skipped, so re-running resumes an interrupted\n"
            "ingest; Ctrl-C stops cleanly after committing the batch in flight.\n"
            "\n"
            "sources:\n"
            "  unsplash PATH   the Unsplash Lite/Full dataset: a directory or the downloaded\n"
            "                  .zip holding photos.tsv000 (and keywords.tsv000); every column\n"
            "                  is kept as metadata, keywords joined into a 'keywords' column\n"
            "  folder DIR      every jpg/jpeg/png/webp/gif/bmp under DIR; ids are relative paths\n"
            "  urls FILE       one image URL or file path per line ('#' comments)\n"
            "  vectors NPY     vectors embedded elsewhere: a float32 or float16 .npy matrix\n"
            "                  [n, dim] (numpy, clip-retrieval, 'vdx embed --format npy'),\n"
            "                  normalised on the way in; no model is run, but --model names\n"
            "                  the model that made them (its fingerprint and dimension)\n"
            "  --ids FILE      (vectors) one id per line, one line per row\n"
            "  --meta FILE     (vectors) TSV with a header row whose first column is 'id';\n"
            "                  the other columns become metadata\n"
            "\n"
            "options:\n"
            "  --collection NAME   collection to fill (default: default)\n"
            "  --data DIR          data directory (default: $VDX_HOME, else ~/.local/share/vdx)\n"
            "  --store URL         store backend (default: $VDX_STORE, else embedded)\n"
            "  --model M           model directory or Hugging Face repo id\n"
            "                      (default: $VDX_MODEL, else the collection's model,\n"
            "                      else %s)\n"
            "  --threads N         threads for decoding and for the model (default: all cores)\n"
            "  --precision P       the image tower's: auto (default: the fastest on this CPU\n"
            "                      that keeps this model's vectors within its floor of\n"
            "                      fp32's), fp32, bf16 or int8 ($VDX_PRECISION)\n"
            "  --batch N           images per embedding batch and transaction (default: 32)\n"
            "  --limit N           only the first N items of the source\n"
            "  --parallel N        simultaneous downloads (default: 16)\n"
            "  --vector-type T     f32 (default) or f16 (half the memory), for a new collection\n"
            "  --retry-failed      try items that failed in an earlier run again\n"
            "  --exact-decode      decode every image at full size, as 'vdx embed' does\n"
            "                      (default: large JPEGs are decoded reduced, to 2x the\n"
            "                      model's and the thumbnail's size)\n"
            "  --base-url URL      fetch https://images.unsplash.com/... from URL instead\n"
            "                      (default: $VDX_UNSPLASH_BASE)\n"
            "  --imgix PARAMS      imgix parameters for images.unsplash.com links\n"
            "                      (default: w=640&fm=jpg&q=85; '' for the original file)\n"
            "  --no-cache          do not keep downloads in DATA/cache/http\n"
            "  --ids FILE          (vectors) one id per line, one line per row\n"
            "  --meta FILE         (vectors) TSV with a header row whose first column is 'id';\n"
            "                      its other columns become metadata\n"
            "  -h, --help          this help\n"
            "\n"
            "Progress goes to stderr (and to progress.json in the collection directory);\n"
            "the summary to stdout. Exit status: 0 done (item failures are listed by\n"
            "'vdx info --failures'), 2 usage, 1 or 3-10 an error by its kind (vdx(1)),\n"
            "130/143 stopped by SIGINT/SIGTERM.\n",
            VDX_DEFAULT_MODEL);
}

static int parse_count(const char *cmd, const char *opt, const char *v, long min, long max,
                       long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max)
        return cli_usage_error(cmd, "%s wants a number from %ld to %ld, not '%s'", opt, min,
                               max, v);
    *out = n;
    return 0;
}

static void report_problems(const vdx_source *src)
{
    const size_t shown = 50;
    for (size_t i = 0; i < src->n_problems && i < shown; i++) {
        const vdx_source_problem *p = &src->problems[i];
        char where[48] = ""; /* a row of a file has a line; a folder's entries have none */
        if (p->line > 0)
            snprintf(where, sizeof where, " line %ld", p->line);
        fprintf(stderr, "vdx: %s%s: skipped%s%s: %s\n", p->file, where, p->id ? " " : "",
                p->id ? p->id : "", p->reason);
    }
    if (src->n_problems > shown)
        fprintf(stderr, "vdx: ... and %zu more rows skipped\n", src->n_problems - shown);
}

/* Test hook (docs/testing.md): with $VDX_TEST_HOLD_FILE set, the ingest pauses after each
 * committed batch for as long as that file exists (a signal still stops it), so that a test
 * can interrupt an ingest that is certainly running, however fast or loaded the machine.
 * progress.json keeps being written (at most once a second) while it waits. */
static void on_progress(const vdx_ingest_stats *s, void *user)
{
    cli_progress_update(user, s);
    const char *hold = getenv("VDX_TEST_HOLD_FILE");
    if (!hold || !*hold || s->stored == 0)
        return;
    const struct timespec tick = {0, 20 * 1000 * 1000};
    while (!stop_requested && access(hold, F_OK) == 0) {
        nanosleep(&tick, NULL);
        cli_progress_update(user, s);
    }
}

/* A run that fails before its collection opens still ends progress.json as "failed"
 * (vdx_progress_fail_early), so the file never goes on describing an earlier run. */
static void progress_failed_early(const vdx_store_options *so, const vdx_source *src)
{
    char dir[4096], path[4200];
    vdx_error err = {{0}};
    if (vdx_store_collection_dir(so, dir, sizeof dir, &err) != 0)
        return;
    snprintf(path, sizeof path, "%s/progress.json", dir);
    vdx_ingest_stats st = {0};
    st.total = src ? (long)src->n_items : 0;
    st.rejected = src ? (long)src->n_problems : 0;
    st.eta_s = -1;
    vdx_progress *p = vdx_progress_new(path);
    if (p && vdx_progress_fail_early(p, &st, &err) != 0)
        fprintf(stderr, "vdx: warning: %s\n", err.message);
    vdx_progress_free(p);
}

/* vdx ingest vectors: no model run, but the model's identity names the vectors. */
static int ingest_vectors(const char *path, const char *ids_path, const char *meta_path,
                          const char *model_arg, vdx_store_options *so, vdx_ingest_options *io)
{
    if (!ids_path)
        return cli_usage_error("ingest", "vectors needs --ids FILE (one id per row)");
    vdx_clip_model *model = cli_load_model_for(model_arg, 1, so, 0);
    if (!model) {
        progress_failed_early(so, NULL);
        return cli_last_status();
    }
    vdx_model_identity identity;
    vdx_clip_identity(model, &identity);
    vdx_clip_free(model);
    vdx_vectors_source src = {path, ids_path, meta_path};
    vdx_error err = {{0}};
    /* a first load checks its files before the collection is made: refused, it makes none */
    char dir[4200];
    struct stat st;
    if (vdx_store_collection_dir(so, dir, sizeof dir, &err) != 0)
        return cli_fail(&err, "%s", err.message);
    if (stat(dir, &st) != 0 && vdx_ingest_vectors_check(&src, &identity, &err) != 0)
        return cli_fail(&err, "%s", err.message);
    so->create = 1;
    so->model = &identity;
    vdx_store *store = vdx_store_open(so, &err);
    if (!store) {
        progress_failed_early(so, NULL);
        return cli_fail(&err, "%s", err.message);
    }
    char progress_path[4200];
    snprintf(progress_path, sizeof progress_path, "%s/progress.json", vdx_store_dir(store));
    cli_progress progress = {.out = stderr, .tty = cli_stderr_is_tty(), .interval_s = 5.0,
                             .file = vdx_progress_new(progress_path)};
    if (!progress.file) {
        vdx_store_close(store);
        return cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory");
    }
    io->on_progress = on_progress;
    io->user = &progress;
    io->stop = &stop_requested;
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    vdx_ingest_report report;
    int rc = vdx_ingest_vectors(store, &src, io, &report, &err);
    cli_progress_finish(&progress, &report.stats,
                        rc != 0 ? "failed" : report.stopped ? "stopped" : "done");
    cli_ingest_summary(stdout, &report, rc != 0);
    fflush(stdout);
    int status = rc != 0 ? cli_fail(&err, "%s", err.message) : report.stopped ? 128 + stop_requested : 0;
    if (status == 0)
        status = cli_index_auto(store);
    vdx_ingest_report_free(&report);
    vdx_progress_free(progress.file);
    vdx_store_close(store);
    return status;
}

int cmd_ingest(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_STORE_LONGOPTS,
        {"model", required_argument, 0, 'm'},
        {"threads", required_argument, 0, 't'},    {"batch", required_argument, 0, 'b'},
        {"limit", required_argument, 0, 'l'},      {"parallel", required_argument, 0, 'p'},
        {"vector-type", required_argument, 0, 'v'}, {"retry-failed", no_argument, 0, 'r'},
        {"base-url", required_argument, 0, 'u'},   {"imgix", required_argument, 0, 'i'},
        {"no-cache", no_argument, 0, 'n'},         {"help", no_argument, 0, 'h'},
        {"ids", required_argument, 0, 'I'},        {"meta", required_argument, 0, 'M'},
        {"exact-decode", no_argument, 0, 'x'},
        {"precision", required_argument, 0, 'P'},  {0, 0, 0, 0}};
    const char *precision_arg = NULL;
    vdx_store_options so = {0};
    vdx_ingest_options io;
    vdx_ingest_options_default(&io);
    const char *model_arg = NULL, *ids_path = NULL, *meta_path = NULL;
    long threads = 0, n = 0;
    int no_cache = 0;
    io.fetch.base_url = getenv("VDX_UNSPLASH_BASE");
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (cli_store_options(c, optarg, &so))
            continue;
        switch (c) {
        case 'm': model_arg = optarg; break;
        case 'P': precision_arg = optarg; break;
        case 't':
            /* as embed and serve: 99999 decode threads took 23 s to fail (EAGAIN) */
            if (parse_count("ingest", "--threads", optarg, 1, 256, &threads))
                return 2;
            break;
        case 'b':
            if (parse_count("ingest", "--batch", optarg, 1, LONG_MAX, &n))
                return 2;
            io.batch = (int)(n > 1024 ? 1024 : n);
            break;
        case 'l':
            if (parse_count("ingest", "--limit", optarg, 1, LONG_MAX, &io.limit))
                return 2;
            break;
        case 'p':
            if (parse_count("ingest", "--parallel", optarg, 1, LONG_MAX, &n))
                return 2;
            io.fetch.parallel = (int)(n > 256 ? 256 : n);
            break;
        case 'v':
            if (!strcmp(optarg, "f32"))
                so.vector_type = VDX_VECTOR_F32;
            else if (!strcmp(optarg, "f16"))
                so.vector_type = VDX_VECTOR_F16;
            else
                return cli_usage_error("ingest", "--vector-type is f32 or f16, not '%s'",
                                       optarg);
            break;
        case 'r': io.retry_failed = 1; break;
        case 'x': io.exact_decode = 1; break;
        case 'u': io.fetch.base_url = optarg; break;
        case 'i': io.fetch.imgix_params = optarg; break;
        case 'n': no_cache = 1; break;
        case 'I': ids_path = optarg; break;
        case 'M': meta_path = optarg; break;
        case 'h': print_help(stdout); return 0;
        case ':': return cli_usage_error("ingest", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("ingest", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind > 2) /* an unquoted path with a space, most likely */
        return cli_usage_error("ingest", "one source path only; unexpected argument '%s'",
                               argv[optind + 2]);
    if (argc - optind != 2)
        return cli_usage_error("ingest", "expected a source kind and its path: unsplash PATH, "
                                         "folder DIR, urls FILE or vectors NPY");
    const char *kind = argv[optind], *path = argv[optind + 1];
    if (!*path || (ids_path && !*ids_path) || (meta_path && !*meta_path))
        return cli_usage_error("ingest", "%s is empty", !*path ? "the source path"
                                                        : ids_path && !*ids_path ? "--ids"
                                                                                 : "--meta");
    if (threads > 0)
        io.workers = (int)threads;
    if (cli_use_precision("ingest", precision_arg, VDX_PRECISION_AUTO) != 0)
        return 2;
    if (!strcmp(kind, "vectors"))
        return ingest_vectors(path, ids_path, meta_path, model_arg, &so, &io);
    if (ids_path || meta_path)
        return cli_usage_error("ingest", "--ids and --meta go with 'vectors'");

    vdx_error err = {{0}};
    vdx_source *src;
    if (!strcmp(kind, "unsplash"))
        src = vdx_source_unsplash(path, &err);
    else if (!strcmp(kind, "folder"))
        src = vdx_source_folder(path, &err);
    else if (!strcmp(kind, "urls"))
        src = vdx_source_urls(path, &err);
    else
        return cli_usage_error("ingest", "unknown source '%s' (unsplash, folder, urls or "
                               "vectors)", kind);
    if (!src) {
        progress_failed_early(&so, NULL);
        return cli_fail(&err, "%s", err.message);
    }
    report_problems(src);
    if (src->n_items == 0)
        fprintf(stderr, "vdx: warning: %s holds no images to ingest (folders: jpg, jpeg, png, "
                        "webp, gif, bmp files)\n", path);

    vdx_clip_model *model = cli_load_model_for(model_arg, (int)threads, &so, 0);
    if (!model) {
        progress_failed_early(&so, src);
        vdx_source_free(src);
        return cli_last_status();
    }
    vdx_model_identity identity;
    vdx_clip_identity(model, &identity);
    so.create = 1;
    so.model = &identity;
    vdx_store *store = vdx_store_open(&so, &err);
    if (!store) {
        progress_failed_early(&so, src);
        vdx_clip_free(model);
        vdx_source_free(src);
        return cli_fail(&err, "%s", err.message);
    }
    char cache_dir[4096], progress_path[4200];
    if (!no_cache) {
        if (vdx_store_resolve_dir(&so, cache_dir, sizeof cache_dir - 16, &err) != 0) {
            vdx_store_close(store);
            vdx_clip_free(model);
            vdx_source_free(src);
            return cli_fail(&err, "%s", err.message);
        }
        strcat(cache_dir, "/cache/http");
        io.fetch.cache_dir = cache_dir;
    }
    snprintf(progress_path, sizeof progress_path, "%s/progress.json", vdx_store_dir(store));
    fprintf(stderr, "vdx: %zu items in %s, collection '%s' (%s)\n", src->n_items, path,
            so.collection ? so.collection : "default", vdx_store_dir(store));
    cli_progress progress = {.out = stderr, .tty = cli_stderr_is_tty(), .interval_s = 5.0,
                             .file = vdx_progress_new(progress_path)};
    if (!progress.file) {
        vdx_store_close(store);
        vdx_clip_free(model);
        vdx_source_free(src);
        return cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory");
    }
    io.on_progress = on_progress;
    io.user = &progress;
    io.stop = &stop_requested;
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    vdx_ingest_report report;
    int rc = vdx_ingest_run(store, model, src, &io, &report, &err);
    cli_progress_finish(&progress, &report.stats,
                        rc != 0 ? "failed" : report.stopped ? "stopped" : "done");
    cli_ingest_summary(stdout, &report, rc != 0);
    fflush(stdout);
    int status = rc != 0 ? cli_fail(&err, "%s", err.message) : report.stopped ? 128 + stop_requested : 0;
    if (status == 0)
        status = cli_index_auto(store);
    vdx_ingest_report_free(&report);
    vdx_progress_free(progress.file);
    vdx_store_close(store);
    vdx_clip_free(model);
    vdx_source_free(src);
    return status;
}
