/* The HTTP layer of `vdx serve` as the routes see it: one parsed request (method, raw
 * path split into decoded segments, query arguments, the whole body) and the replies a
 * route may send (JSON, an error as {"error": "..."}, bytes, a download). Every reply
 * carries the security headers; http.c owns libmicrohttpd and the request policy
 * (size limits, content types, same-origin checks, timeouts). */
#ifndef VDX_SERVER_HTTP_H
#define VDX_SERVER_HTTP_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

#include "vdx/common.h"
#include "vdx/server.h"

#define HTTP_MAX_SEGMENTS 16

typedef struct http_request {
    struct MHD_Connection *conn;
    const char *method;              /* "GET", "POST", ... (HEAD is answered as GET) */
    char *raw_path;                  /* as sent, without the query string */
    char *segments[HTTP_MAX_SEGMENTS]; /* percent-decoded path segments */
    int n_segments;
    const char *content_type;        /* NULL when absent */
    char *body;                      /* NUL-terminated; NULL when there was none */
    size_t body_size;
    size_t body_limit;
    int body_too_large;
    int replied;
    int query_too_long;              /* over HTTP_MAX_URI bytes or HTTP_MAX_QUERY_ARGS arguments */
    int status;                      /* of the reply, for the access log */
    double started;                  /* vdx_now() at the first byte of the request */
} http_request;

/* The request policy's pure parts, exposed for fuzz/fuzz_http_policy.c:
 * whether a Host header names a loopback server on server_port exactly (localhost,
 * 127.0.0.1, [::1] or bound_name such as "127.0.0.2", the port absent only when it is the
 * scheme's default: 443 with tls, else 80); a prefix such as "127.0.0.1.attacker.example"
 * is not loopback. */
int http_host_is_loopback(const char *host, int server_port, int tls, const char *bound_name);

/* Whether the request's decoded path segments are exactly those of `path` ("/" is no
 * segment; "//x" and "/%78" are "/x"): how the request policy and the router both name
 * a route, so no spelling of a path reaches a route past the policy's check of it. */
int http_path_is(const http_request *req, const char *path);
/* Whether the first decoded segment is "api": the router's API requests. */
int http_path_is_api(const http_request *req);

/* Query argument (decoded), or NULL. */
const char *http_query(const http_request *req, const char *name);
/* Integer query argument in [min, max]; absent: *out = fallback. Malformed or out of
 * range: replies 400 naming the argument and returns -1. */
int http_query_int(http_request *req, const char *name, long fallback, long min, long max,
                   long *out);
const char *http_header(const http_request *req, const char *name);

/* Parses the body as a JSON object. A missing or malformed body, or one that is not an
 * object, replies 400 with the parse position and returns NULL. */
cJSON *http_body_json(http_request *req);

/* Replies; each returns 0 (queued) or -1. http_reply_json takes ownership of `json`. */
int http_reply_json(http_request *req, int status, cJSON *json);
/* Replies {"error": message}. Always returns -1, so that a check can
 * `return http_reply_error(req, 400, "...")` as a failure. */
int http_reply_error(http_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* What happens to the bytes of a reply: copied, taken (free()d by the server once sent)
 * or static (lives as long as the program). */
typedef enum { HTTP_COPY, HTTP_TAKE, HTTP_STATIC } http_memory;
/* Optional
 * headers: etag (the reply is 304 when If-None-Match matches it), cache_control,
 * attachment_name (Content-Disposition: attachment; filename=...), and one more header
 * (header_name: header_value). */
typedef struct http_body_options {
    const char *etag;
    const char *cache_control;
    const char *attachment_name;
    const char *header_name, *header_value;
} http_body_options;
int http_reply_bytes(http_request *req, int status, const char *content_type, void *data,
                     size_t size, http_memory memory, const http_body_options *opts);

/* Queues a response built by the caller (adds the common headers, destroys it). */
struct MHD_Response;
int http_reply_response(http_request *req, int status, struct MHD_Response *response);


/* The listening side. `handle` is called once per complete, policy-checked request and
 * must reply (a request it leaves unanswered gets 500). */
typedef struct http_config {
    const char *host;          /* numeric address or name */
    int port;                  /* 0: any free port */
    int threads;
    int timeout_s;             /* idle connection timeout */
    int head_timeout_s;        /* deadline for a whole request head (line and headers) */
    unsigned max_connections;  /* in all */
    unsigned max_per_client;   /* from one IP address */
    const char *token;         /* access token; NULL: none (loopback only) */
    const char *tls_cert_pem;  /* with tls_key_pem: serve HTTPS; NULL: plain HTTP */
    const char *tls_key_pem;
    size_t max_body;           /* JSON bodies */
    size_t max_upload;         /* the upload path's body */
    const char *upload_path;   /* the one path taking raw image bytes (POST) */
    void (*handle)(void *ctx, http_request *req);
    void *ctx;
    int log_requests;          /* a REQUEST notice per request */
    vdx_server_notice_fn notice; /* NULL: dropped */
    void *notice_user;
} http_config;

typedef struct http_server http_server;
http_server *http_start(const http_config *cfg, vdx_error *err);
int http_port(const http_server *server);
/* Whether the bound address is a loopback one. */
int http_is_loopback(const http_server *server);
void http_stop(http_server *server);

#endif
