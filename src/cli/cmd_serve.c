/* vdx serve: the web explorer and its JSON API (docs/api.md) for one collection, on
 * localhost by default, until Ctrl-C. Without --model it loads the model the collection
 * records (when it is in the Hugging Face cache or is a directory), and without any
 * model it still serves browsing, labelling and "more like this". */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "vdx/server.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vdx serve [options]\n\n"
            "Serves the web explorer for a collection: search by text or image, label, train\n"
            "concepts, export. Open the printed URL in a browser; stop with Ctrl-C.\n\n"
            "options:\n"
            "  --collection NAME  collection to serve (default: default)\n"
            "  --data DIR         data directory (default: $VDX_HOME, else ~/.local/share/vdx)\n"
            "  --store URL        store backend (default: $VDX_STORE, else embedded)\n"
            "  --model M          CLIP model directory or Hugging Face repo id (default:\n"
            "                     $VDX_MODEL, else the model the collection was embedded with)\n"
            "  --text-model M     embed prompts with this text model instead of the CLIP\n"
            "                     model's own (default: $VDX_TEXT_MODEL), e.g.\n"
            "                     M-CLIP/XLM-Roberta-Large-Vit-B-32 for prompts in ~100\n"
            "                     languages; it must share the collection's space\n"
            "  --force-text-model accept a text model not known to share that space\n"
            "  --host H           address to listen on (default: 127.0.0.1, this machine only)\n"
            "  --port P           port (default: 8080; 0 picks a free one)\n"
            "  --threads N        request threads (default: 2 x cores, at least 4)\n"
            "  --precision P      image uploads: auto (default), fp32, bf16, int8; prompts fp32\n"
            "                     unless given ($VDX_PRECISION; docs/clip-engine.md)\n"
            "  --token T          access token for the page and the API (default: $VDX_TOKEN,\n"
            "                     else a random one); the printed URL carries it\n"
            "  --no-token         no access token (loopback addresses only)\n"
            "  --read-only        search and browsing only: every change is refused\n"
            "  --tls-cert FILE    PEM certificate: serve HTTPS (with --tls-key)\n"
            "  --tls-key FILE     PEM private key of the certificate\n"
            "  --access-log       print one line per request to stderr\n"
            "  -h, --help         this help\n");
}

/* The model to load: --model, $VDX_MODEL, else the collection's own (if available). */
static int resolve_model(const char *model_arg, const vdx_store_options *store_opts, char *dir,
                         size_t dir_size, int *found)
{
    vdx_error err = {{0}};
    *found = 0;
    if (!model_arg || !*model_arg)
        model_arg = getenv("VDX_MODEL");
    if (model_arg && *model_arg) {
        if (vdx_clip_resolve_model(model_arg, dir, dir_size, &err) != 0)
            return cli_fail(&err, "%s", err.message);
        *found = 1;
        return 0;
    }
    vdx_store_options probe = *store_opts;
    probe.read_only = 1;
    vdx_store *store = vdx_store_open(&probe, &err);
    if (!store)
        return cli_fail(&err, "%s", err.message);
    char recorded[256];
    snprintf(recorded, sizeof recorded, "%s", vdx_store_model(store)->name);
    vdx_store_close(store);
    if (vdx_clip_resolve_model(recorded, dir, dir_size, &err) == 0) {
        *found = 1;
        return 0;
    }
    fprintf(stderr, "vdx: the collection's model '%s' is not available (%s): text and image "
                    "search are off; start with --model M to enable them\n", recorded, err.message);
    return 0;
}

/* The server's notices: "serving …" and "stopping" on stdout, the access log and
 * warnings on stderr. */
static void print_notice(vdx_server_notice_kind kind, const char *line, void *user)
{
    (void)user;
    FILE *out = kind == VDX_SERVER_LISTENING || kind == VDX_SERVER_STOPPING ? stdout : stderr;
    fprintf(out, "%s\n", line);
    fflush(out);
}

int cmd_serve(int argc, char **argv)
{
    static const struct option options[] = {
        CLI_STORE_LONGOPTS,
        {"model", required_argument, 0, 'm'},
        {"host", required_argument, 0, 'H'},       {"port", required_argument, 0, 'p'},
        {"threads", required_argument, 0, 't'},    {"access-log", no_argument, 0, 'l'},
        {"token", required_argument, 0, 'T'},      {"no-token", no_argument, 0, 'N'},
        {"read-only", no_argument, 0, 'R'},        {"tls-cert", required_argument, 0, 'C'},
        {"tls-key", required_argument, 0, 'K'},    {"text-model", required_argument, 0, 'X'},
        {"force-text-model", no_argument, 0, 'F'}, {"help", no_argument, 0, 'h'},
        {"precision", required_argument, 0, 'P'}, {0, 0, 0, 0},
    };
    const char *precision_arg = NULL;
    vdx_server_options opts = {.host = "127.0.0.1", .port = 8080};
    const char *model_arg = NULL, *text_arg = NULL;
    int opt, force_text = 0;
    char *end;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        if (cli_store_options(opt, optarg, &opts.store))
            continue;
        switch (opt) {
        case 'm': model_arg = optarg; break;
        case 'P': precision_arg = optarg; break;
        case 'H': opts.host = optarg; break;
        case 'p':
            opts.port = (int)strtol(optarg, &end, 10);
            if (*end || !*optarg || opts.port < 0 || opts.port > 65535)
                return cli_usage_error("serve", "--port needs a number from 0 to 65535, not '%s'", optarg);
            break;
        case 't':
            opts.threads = (int)strtol(optarg, &end, 10);
            if (*end || !*optarg || opts.threads < 1 || opts.threads > 256)
                return cli_usage_error("serve", "--threads needs a number from 1 to 256, not '%s'", optarg);
            break;
        case 'l': opts.log_requests = 1; break;
        case 'T': opts.token = optarg; break;
        case 'N': opts.no_token = 1; break;
        case 'R': opts.read_only = 1; break;
        case 'C': opts.tls_cert = optarg; break;
        case 'K': opts.tls_key = optarg; break;
        case 'X': text_arg = optarg; break;
        case 'F': force_text = 1; break;
        case 'h': usage(stdout); return 0;
        case ':': return cli_usage_error("serve", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("serve", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if (!opts.token && getenv("VDX_TOKEN") && *getenv("VDX_TOKEN"))
        opts.token = getenv("VDX_TOKEN");
    vdx_error err = {{0}};
    if (opts.token && opts.no_token)
        return cli_usage_error("serve", "--no-token and a token (--token or $VDX_TOKEN) exclude each other");
    if (opts.token && vdx_server_check_token(opts.token, &err) != 0)
        return cli_usage_error("serve", "%s", err.message);
    if (!opts.tls_cert != !opts.tls_key)
        return cli_usage_error("serve", "--tls-cert and --tls-key go together");
    if (cli_use_precision("serve", precision_arg, VDX_PRECISION_AUTO) != 0)
        return 2;
    opts.clip_options = cli_clip_options();
    char model_dir[4096];
    int have_model = 0;
    if (resolve_model(model_arg, &opts.store, model_dir, sizeof model_dir, &have_model) != 0)
        return cli_last_status();
    opts.model_dir = have_model ? model_dir : NULL;
    vdx_text_model *text_model = NULL;
    if (cli_text_model_arg(text_arg)) {
        vdx_store_options probe = opts.store;
        probe.read_only = 1;
        vdx_store *store = vdx_store_open(&probe, &err);
        if (!store)
            return cli_fail(&err, "%s", err.message);
        int failed;
        text_model = cli_load_text_model(text_arg, force_text, &opts.store,
                                         vdx_store_model(store), 0, &failed);
        vdx_store_close(store);
        if (!text_model)
            return cli_last_status();
        if (vdx_text_model_multilingual(text_model))
            fprintf(stderr, "vdx: prompts in any language: %s\n", vdx_text_model_name(text_model));
    }
    opts.text_model = text_model;
    opts.notice = print_notice;
    int rc = vdx_server_run(&opts, &err) != 0 ? cli_fail(&err, "%s", err.message) : 0;
    vdx_text_model_free(text_model);
    return rc;
}
