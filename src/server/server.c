/* `vdx serve` as a library call: opens the collection (refusing one embedded with another
 * model), loads the CLIP model and the concept book, starts the HTTP layer with the
 * routes (api.c under /api/, the embedded page otherwise), and stops it all on request
 * or on SIGINT/SIGTERM. */
#include "vdx/server.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/api.h"
#include "server/static.h"

#define DEFAULT_MAX_JSON_BODY (1u << 20)
#define DEFAULT_MAX_UPLOAD (20u << 20)
#define DEFAULT_TIMEOUT_S 30

struct vdx_server {
    api_context api;
    http_server *http;
    char url[300];
};

static void handle(void *ctx, http_request *req)
{
    if (req->n_segments >= 1 && !strcmp(req->segments[0], "api"))
        api_handle(ctx, req);
    else
        static_handle(req);
}

static int default_threads(void)
{
    int threads = 2 * vdx_cpu_count();
    return threads < 4 ? 4 : threads;
}

vdx_server *vdx_server_start(const vdx_server_options *opts, vdx_error *err)
{
    vdx_server *server = calloc(1, sizeof *server);
    if (!server) {
        vdx_fail(err, "out of memory");
        return NULL;
    }
    api_context *api = &server->api;
    pthread_mutex_init(&api->search.mutex, NULL);
    pthread_mutex_init(&api->book.mutex, NULL);
    api->search.last_refresh = api->book.last_refresh = vdx_now();
    vdx_store_options store_opts = opts->store;
    if (opts->model_dir) {
        api->model = vdx_clip_load(opts->model_dir, err);
        if (!api->model)
            goto fail;
        vdx_model_identity *identity = &api->model_identity;
        snprintf(identity->name, sizeof identity->name, "%s", vdx_clip_model_name(api->model));
        snprintf(identity->config_hash, sizeof identity->config_hash, "%s", vdx_clip_config_hash(api->model));
        identity->dims = vdx_clip_embed_dim(api->model);
        store_opts.model = identity;
    }
    api->text_model = opts->text_model;
    store_opts.create = 0;
    store_opts.read_only = 1;
    api->search.store = vdx_store_open(&store_opts, err);
    if (!api->search.store)
        goto fail;
    api->book.store = vdx_store_open(&store_opts, err);
    if (!api->book.store)
        goto fail;
    snprintf(api->collection, sizeof api->collection, "%s",
             opts->store.collection ? opts->store.collection : "default");
    api->concepts = vdx_concepts_open(api->book.store, err);
    if (!api->concepts)
        goto fail;
    const char *host = opts->host ? opts->host : "127.0.0.1";
    http_config cfg = {
        .host = host,
        .port = opts->port,
        .threads = opts->threads > 0 ? opts->threads : default_threads(),
        .timeout_s = opts->timeout_s > 0 ? opts->timeout_s : DEFAULT_TIMEOUT_S,
        .max_body = opts->max_json_body ? opts->max_json_body : DEFAULT_MAX_JSON_BODY,
        .max_upload = opts->max_upload ? opts->max_upload : DEFAULT_MAX_UPLOAD,
        .upload_path = "/api/search/image",
        .handle = handle,
        .ctx = api,
        .access_log = opts->access_log,
    };
    server->http = http_start(&cfg, err);
    if (!server->http)
        goto fail;
    int ipv6 = strchr(host, ':') != NULL;
    snprintf(server->url, sizeof server->url, "http://%s%s%s:%d/", ipv6 ? "[" : "", host,
             ipv6 ? "]" : "", http_port(server->http));
    return server;
fail:
    vdx_server_stop(server);
    return NULL;
}

int vdx_server_port(const vdx_server *server) { return http_port(server->http); }
const char *vdx_server_url(const vdx_server *server) { return server->url; }
const char *vdx_server_collection(const vdx_server *server) { return server->api.collection; }
int64_t vdx_server_item_count(vdx_server *server)
{
    pthread_mutex_lock(&server->api.search.mutex);
    int64_t count = vdx_store_count(server->api.search.store);
    pthread_mutex_unlock(&server->api.search.mutex);
    return count;
}

void vdx_server_stop(vdx_server *server)
{
    if (!server)
        return;
    http_stop(server->http);
    vdx_concepts_close(server->api.concepts);
    vdx_store_close(server->api.book.store);
    vdx_store_close(server->api.search.store);
    vdx_clip_free(server->api.model);
    pthread_mutex_destroy(&server->api.search.mutex);
    pthread_mutex_destroy(&server->api.book.mutex);
    free(server);
}

/* The self-pipe: a signal handler may only write(2); the waiting thread reads. */
static int signal_pipe[2] = {-1, -1};

static void on_signal(int signo)
{
    int saved = errno;
    unsigned char byte = (unsigned char)signo;
    if (write(signal_pipe[1], &byte, 1) < 0) {
        /* nothing to do: the pipe holds a byte already */
    }
    errno = saved;
}

int vdx_server_wait_for_signal(void)
{
    if (pipe(signal_pipe) != 0)
        return -1;
    struct sigaction action = {0}, old_int, old_term;
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int);
    sigaction(SIGTERM, &action, &old_term);
    unsigned char byte = 0;
    while (read(signal_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    signal_pipe[0] = signal_pipe[1] = -1;
    return byte;
}

int vdx_server_run(const vdx_server_options *opts, FILE *out, vdx_error *err)
{
    vdx_server *server = vdx_server_start(opts, err);
    if (!server)
        return -1;
    int64_t count = vdx_server_item_count(server);
    fprintf(out, "vdx: serving %s (%lld item%s) at %s\n", vdx_server_collection(server),
            (long long)count, count == 1 ? "" : "s", vdx_server_url(server));
    fflush(out);
    int signo = vdx_server_wait_for_signal();
    fprintf(out, "vdx: %s received, stopping\n", signo == SIGTERM ? "SIGTERM" : "SIGINT");
    fflush(out);
    vdx_server_stop(server);
    return 0;
}
