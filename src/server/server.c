/* `vdx serve` as a library call: opens the collection (refusing one embedded with another
 * model), loads the CLIP model and the concept book, starts the HTTP layer with the
 * routes (api.c under /api/, the embedded page otherwise), and stops it all on request
 * or on SIGINT/SIGTERM. */
#include "vdx/server.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "server/api.h"
#include "server/static.h"

#define DEFAULT_MAX_JSON_BODY (1u << 20)
#define DEFAULT_MAX_UPLOAD (20u << 20)
#define DEFAULT_TIMEOUT_S 30
#define DEFAULT_HEAD_TIMEOUT_S 10
#define DEFAULT_MAX_PER_CLIENT 64u
#define MAX_CONNECTIONS 4000u

struct vdx_server {
    api_collections api;
    http_server *http;
    char token[VDX_TOKEN_MAX + 1]; /* "" when there is none */
    char *tls_cert, *tls_key;      /* PEM text */
    char url[600];
};

static void handle(void *ctx, http_request *req)
{
    if (http_path_is_api(req))
        api_handle(ctx, req);
    else
        static_handle(req);
}

int vdx_server_check_token(const char *token, vdx_error *err)
{
    size_t n = strlen(token);
    if (n < VDX_TOKEN_MIN || n > VDX_TOKEN_MAX)
        return vdx_fail(err, "an access token needs %d to %d characters, not %zu", VDX_TOKEN_MIN,
                        VDX_TOKEN_MAX, n);
    size_t ok = strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-");
    if (ok != n)
        return vdx_fail(err, "an access token may hold letters, digits and . _ ~ - only (byte %zu is not one)", ok);
    return 0;
}

/* 24 random bytes from the kernel as 48 hex digits, as Jupyter's tokens are. */
static int random_token(char *out, vdx_error *err)
{
    unsigned char bytes[24];
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes)
        return vdx_fail(err, "cannot read random bytes for the access token");
    for (size_t i = 0; i < sizeof bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", bytes[i]);
    return 0;
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
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    api_collections *api = &server->api;
    api->notice = opts->notice;
    api->notice_user = opts->notice_user;
    api->text_model = opts->text_model;
    api->read_only = opts->read_only;
    vdx_store_options store_opts = opts->store;
    if (opts->model_dir) {
        api->model = opts->clip_options
                         ? vdx_clip_load_with(opts->model_dir, opts->clip_options, err)
                         : vdx_clip_load(opts->model_dir, err);
        if (!api->model)
            goto fail;
        vdx_clip_identity(api->model, &api->model_identity);
        store_opts.model = &api->model_identity;
    }
    if (api_collections_init(api, &store_opts, err) != 0)
        goto fail;
    const char *host = opts->host ? opts->host : "127.0.0.1";
    if (!opts->no_token) {
        if (opts->token ? vdx_server_check_token(opts->token, err) : random_token(server->token, err))
            goto fail;
        if (opts->token)
            snprintf(server->token, sizeof server->token, "%s", opts->token);
    }
    if (!opts->tls_cert != !opts->tls_key) {
        vdx_fail(err, "TLS needs both a certificate and its private key");
        goto fail;
    }
    size_t pem_size;
    if (opts->tls_cert && (vdx_read_file(opts->tls_cert, &server->tls_cert, &pem_size, err) != 0 ||
                           vdx_read_file(opts->tls_key, &server->tls_key, &pem_size, err) != 0))
        goto fail;
    http_config cfg = {
        .host = host,
        .port = opts->port,
        .threads = opts->threads > 0 ? opts->threads : default_threads(),
        .timeout_s = opts->timeout_s > 0 ? opts->timeout_s : DEFAULT_TIMEOUT_S,
        .head_timeout_s = opts->head_timeout_s > 0 ? opts->head_timeout_s : DEFAULT_HEAD_TIMEOUT_S,
        .max_connections = MAX_CONNECTIONS,
        .max_per_client = opts->max_per_client ? opts->max_per_client : DEFAULT_MAX_PER_CLIENT,
        .token = server->token[0] ? server->token : NULL,
        .tls_cert_pem = server->tls_cert,
        .tls_key_pem = server->tls_key,
        .max_body = opts->max_json_body ? opts->max_json_body : DEFAULT_MAX_JSON_BODY,
        .max_upload = opts->max_upload ? opts->max_upload : DEFAULT_MAX_UPLOAD,
        .upload_path = "/api/search/image",
        .handle = handle,
        .ctx = api,
        .log_requests = opts->log_requests,
        .notice = opts->notice,
        .notice_user = opts->notice_user,
    };
    server->http = http_start(&cfg, err);
    if (!server->http)
        goto fail;
    int ipv6 = strchr(host, ':') != NULL;
    snprintf(server->url, sizeof server->url, "%s://%s%s%s:%d/%s%s", server->tls_cert ? "https" : "http",
             ipv6 ? "[" : "", host, ipv6 ? "]" : "", http_port(server->http),
             server->token[0] ? "?token=" : "", server->token);
    return server;
fail:
    vdx_server_stop(server);
    return NULL;
}

int vdx_server_port(const vdx_server *server) { return http_port(server->http); }
const char *vdx_server_url(const vdx_server *server) { return server->url; }
const char *vdx_server_token(const vdx_server *server) { return server->token[0] ? server->token : NULL; }
int vdx_server_is_loopback(const vdx_server *server) { return http_is_loopback(server->http); }
int vdx_server_uses_tls(const vdx_server *server) { return server->tls_cert != NULL; }
const char *vdx_server_collection(const vdx_server *server) { return server->api.open[0]->collection; }
int64_t vdx_server_item_count(vdx_server *server)
{
    store_slot *first = &server->api.open[0]->search;
    pthread_mutex_lock(&first->mutex);
    int64_t count = vdx_store_count(first->store);
    pthread_mutex_unlock(&first->mutex);
    return count;
}

void vdx_server_stop(vdx_server *server)
{
    if (!server)
        return;
    http_stop(server->http);
    api_collections_close(&server->api);
    free(server->tls_cert);
    free(server->tls_key);
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

int vdx_server_run(const vdx_server_options *opts, vdx_error *err)
{
    vdx_server *server = vdx_server_start(opts, err);
    if (!server)
        return -1;
    int64_t count = vdx_server_item_count(server);
    char line[1024];
    snprintf(line, sizeof line, "vdx: serving %s (%lld item%s) at %s",
             vdx_server_collection(server), (long long)count, count == 1 ? "" : "s",
             vdx_server_url(server));
    if (opts->notice) {
        opts->notice(VDX_SERVER_LISTENING, line, opts->notice_user);
        if (!vdx_server_is_loopback(server) && !vdx_server_uses_tls(server))
            opts->notice(VDX_SERVER_WARNING,
                         "vdx: warning: serving beyond this machine without TLS: the access token and "
                         "everything else cross the network in clear text (give --tls-cert and --tls-key)",
                         opts->notice_user);
        if (opts->read_only)
            opts->notice(VDX_SERVER_LISTENING,
                         "vdx: read-only: search and browsing only, every change is refused",
                         opts->notice_user);
    }
    int signo = vdx_server_wait_for_signal();
    snprintf(line, sizeof line, "vdx: %s received, stopping", signo == SIGTERM ? "SIGTERM" : "SIGINT");
    if (opts->notice)
        opts->notice(VDX_SERVER_STOPPING, line, opts->notice_user);
    vdx_server_stop(server);
    return 0;
}
