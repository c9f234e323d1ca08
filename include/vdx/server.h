/* The web explorer: an HTTP server (libmicrohttpd, thread pool) that serves the JSON API
 * of docs/api.md and the page embedded from web/. It opens one collection, optionally a
 * CLIP model (for text and image queries), and the collection's concept book.
 *
 *   vdx_server_options o = {.host = "127.0.0.1", .port = 8080, .model_dir = dir};
 *   o.store.collection = "unsplash";
 *   vdx_server *s = vdx_server_start(&o, &err);   // listening when it returns
 *   ... vdx_server_wait_for_signal(); vdx_server_stop(s);
 * or simply vdx_server_run(&o, &err), which does all of it until SIGINT/SIGTERM.
 * The server never prints: what it has to say goes to the `notice` callback. */
#ifndef VDX_SERVER_H
#define VDX_SERVER_H

#include <stddef.h>

#include "vdx/common.h"
#include "vdx/store.h"

/* What a running server says (the CLI prints LISTENING and STOPPING on stdout, the rest
 * on stderr). `line` has no trailing newline. */
typedef enum vdx_server_notice_kind {
    VDX_SERVER_LISTENING, /* "vdx: serving COLLECTION (N items) at URL" (vdx_server_run) */
    VDX_SERVER_STOPPING,  /* "vdx: SIGINT received, stopping" (vdx_server_run) */
    VDX_SERVER_REQUEST,   /* access log: "GET /api/info 200 0.4 ms" (with log_requests) */
    VDX_SERVER_WARNING,   /* a failed refresh of the collection, libmicrohttpd's warnings */
} vdx_server_notice_kind;
typedef void (*vdx_server_notice_fn)(vdx_server_notice_kind kind, const char *line, void *user);

typedef struct vdx_server_options {
    const char *host;          /* address to bind; NULL: "127.0.0.1" (loopback only) */
    int port;                  /* 0: any free port (see vdx_server_port) */
    int threads;               /* request threads; <= 0: 2 x cores, at least 4 */
    vdx_store_options store;   /* the collection; .model is filled from the model. The
                                * others of the same data directory and store embedded
                                * with the same model are served too, on request
                                * (?collection=NAME, GET /api/collections) */
    const char *model_dir;     /* resolved CLIP model directory; NULL: no model, so
                                * text and image queries answer 503 */
    const struct vdx_clip_options *clip_options; /* its precisions (vdx/clip.h); NULL: fp32 */
    const struct vdx_text_model *text_model; /* prompts go through this text tower
                                * (borrowed; checked against the collection by the
                                * caller); NULL: the CLIP model's own */
    size_t max_json_body;      /* bytes; 0: 1 MiB. Larger requests get 413 */
    size_t max_upload;         /* image upload bytes; 0: 20 MiB */
    int timeout_s;             /* idle connection timeout; 0: 30 s */
    int head_timeout_s;        /* deadline for a whole request head; 0: 10 s */
    unsigned max_per_client;   /* connections from one IP address; 0: 64 */
    int log_requests;          /* one VDX_SERVER_REQUEST notice per request */
    vdx_server_notice_fn notice; /* NULL: notices are dropped */
    void *notice_user;
    /* Access (docs/api.md, "Threat model"): every /api/ request needs the token, as the
     * cookie that `GET /?token=T` sets or as `Authorization: Bearer T`. */
    const char *token;         /* NULL: a random one (see vdx_server_token); at least
                                * VDX_TOKEN_MIN characters of [A-Za-z0-9._~-] */
    int no_token;              /* no token at all: refused unless the address is loopback */
    int read_only;             /* search and browsing only: every change answers 403 */
    const char *tls_cert;      /* PEM certificate file; with tls_key: serve HTTPS */
    const char *tls_key;       /* PEM private key file */
} vdx_server_options;

#define VDX_TOKEN_MIN 16
#define VDX_TOKEN_MAX 256

/* Whether `token` is acceptable as an access token; else an error saying why. */
int vdx_server_check_token(const char *token, vdx_error *err);

typedef struct vdx_server vdx_server;

/* Opens the collection and the model, binds and starts serving. */
vdx_server *vdx_server_start(const vdx_server_options *opts, vdx_error *err);
/* The bound port (useful with port 0). */
int vdx_server_port(const vdx_server *server);
/* The address to open: "http://HOST:PORT/?token=TOKEN" ("https" with TLS; no query
 * without a token). */
const char *vdx_server_url(const vdx_server *server);
/* The access token, or NULL when there is none. */
const char *vdx_server_token(const vdx_server *server);
/* Whether the server listens on a loopback address only, and whether it speaks TLS. */
int vdx_server_is_loopback(const vdx_server *server);
int vdx_server_uses_tls(const vdx_server *server);
const char *vdx_server_collection(const vdx_server *server);
int64_t vdx_server_item_count(vdx_server *server);
/* Stops accepting, finishes the requests in flight, frees everything. */
void vdx_server_stop(vdx_server *server);

/* Blocks until SIGINT or SIGTERM arrives and returns its number (handlers are installed
 * for the wait and restored afterwards, so any thread may receive the signal). */
int vdx_server_wait_for_signal(void);

/* Start, notice "vdx: serving COLLECTION (N items) at URL" (and a warning notice when it
 * serves beyond loopback without TLS), wait for SIGINT or SIGTERM, stop.
 * Returns 0, or -1 when the server could not start. */
int vdx_server_run(const vdx_server_options *opts, vdx_error *err);

#endif
