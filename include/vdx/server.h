/* The web explorer: an HTTP server (libmicrohttpd, thread pool) that serves the JSON API
 * of docs/api.md and the page embedded from web/. It opens one collection, optionally a
 * CLIP model (for text and image queries), and the collection's concept book.
 *
 *   vdx_server_options o = {.host = "127.0.0.1", .port = 8080, .model_dir = dir};
 *   o.store.collection = "unsplash";
 *   vdx_server *s = vdx_server_start(&o, &err);   // listening when it returns
 *   ... vdx_server_wait_for_signal(); vdx_server_stop(s);
 * or simply vdx_server_run(&o, stdout, &err), which does all of it until SIGINT/SIGTERM. */
#ifndef VDX_SERVER_H
#define VDX_SERVER_H

#include <stdio.h>

#include "vdx/common.h"
#include "vdx/store.h"

typedef struct vdx_server_options {
    const char *host;          /* address to bind; NULL: "127.0.0.1" (loopback only) */
    int port;                  /* 0: any free port (see vdx_server_port) */
    int threads;               /* request threads; <= 0: 2 x cores, at least 4 */
    vdx_store_options store;   /* the collection; .model is filled from the model */
    const char *model_dir;     /* resolved CLIP model directory; NULL: no model, so
                                * text and image queries answer 503 */
    const struct vdx_text_model *text_model; /* prompts go through this text tower
                                * (borrowed; checked against the collection by the
                                * caller); NULL: the CLIP model's own */
    size_t max_json_body;      /* bytes; 0: 1 MiB. Larger requests get 413 */
    size_t max_upload;         /* image upload bytes; 0: 20 MiB */
    int timeout_s;             /* idle connection timeout; 0: 30 s */
    FILE *access_log;          /* one line per request when set */
} vdx_server_options;

typedef struct vdx_server vdx_server;

/* Opens the collection and the model, binds and starts serving. */
vdx_server *vdx_server_start(const vdx_server_options *opts, vdx_error *err);
/* The bound port (useful with port 0). */
int vdx_server_port(const vdx_server *server);
/* "http://HOST:PORT/" */
const char *vdx_server_url(const vdx_server *server);
const char *vdx_server_collection(const vdx_server *server);
int64_t vdx_server_item_count(vdx_server *server);
/* Stops accepting, finishes the requests in flight, frees everything. */
void vdx_server_stop(vdx_server *server);

/* Blocks until SIGINT or SIGTERM arrives and returns its number (handlers are installed
 * for the wait and restored afterwards, so any thread may receive the signal). */
int vdx_server_wait_for_signal(void);

/* Start, print "vdx: serving COLLECTION (N items) at URL" to `out`, wait for SIGINT or
 * SIGTERM, stop. Returns 0, or -1 when the server could not start. */
int vdx_server_run(const vdx_server_options *opts, FILE *out, vdx_error *err);

#endif
