/* The HTTP transport of `vdx serve`, on libmicrohttpd: an epoll thread pool whose
 * sockets are non-blocking, so a slow or dead client only holds its own connection, never
 * a thread. This file also owns the request policy (the threat model is in docs/api.md),
 * applied before any route runs:
 *   - access: on a loopback bind the Host header must be exactly localhost, 127.0.0.1,
 *     [::1] (or the bound literal) with the server's port, so a DNS-rebinding page is
 *     refused (403); with an access token, every /api/ request needs the token's cookie
 *     or `Authorization: Bearer TOKEN` (401), and `GET /?token=T` trades the token for an
 *     HttpOnly, SameSite=Strict cookie and redirects to `/`;
 *   - state-changing requests (POST/PUT/PATCH) must be application/json (415), except the
 *     upload path, which takes image bytes; HTML forms can send neither, so no cross-site
 *     form post can change anything; an Origin must equal scheme://Host exactly and
 *     Sec-Fetch-Site must be same-origin (403), on every /api/ request too, GETs
 *     included (some record what they served);
 *   - which requests are API and page requests is decided on the decoded segments the
 *     router uses, never on the raw path;
 *   - slow and abusive clients: a connection limit per client address and in all, a
 *     deadline for the whole request head (a watchdog closes connections that trickle
 *     their headers), the idle timeout, 414 for a request line or query string over
 *     HTTP_MAX_URI bytes or HTTP_MAX_QUERY_ARGS arguments, 431 for oversized heads;
 *   - bodies are limited (413), the image upload path has its own larger limit;
 *   - paths are split into percent-decoded segments and `..` segments are refused (400);
 *     every decoded path segment and query argument must be valid UTF-8 without NUL (400
 *     naming the argument), and JSON bodies may hold no NUL, raw or escaped (400);
 *   - every reply carries a Content-Security-Policy limited to self, nosniff, no framing,
 *     no referrer, and Server-Timing with the time the route took. */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "common/json_check.h"

/* Request lines (path and query string) longer than this, or with more query
 * arguments, get 414 before libmicrohttpd parses them into its per-connection pool. */
#define HTTP_MAX_URI 8192
#define HTTP_MAX_QUERY_ARGS 256
/* libmicrohttpd's memory for one connection's request head; beyond it, 431. */
#define HTTP_CONNECTION_MEMORY (64u << 10)

/* One open connection, for the head deadline: the watchdog shuts down the socket of a
 * connection whose request head is not complete `head_timeout_s` after it began. */
typedef struct tracked_connection {
    int fd;
    double head_started; /* connection accepted, or the previous request finished */
    int in_head;         /* waiting for (the rest of) a request head */
    /* the request on_uri started, until on_completed takes it: libmicrohttpd does not
     * report a request it dropped before the handler (a pool too small for its
     * arguments), so the close notification frees it */
    struct http_request *pending;
    struct tracked_connection *prev, *next;
} tracked_connection;

struct http_server {
    struct MHD_Daemon *daemon;
    http_config cfg;
    int port;
    int loopback;        /* bound to a loopback address: enforce loopback Host headers */
    char bound_name[80]; /* the bound literal as a Host names it ("127.0.0.2", "[::1]") */
    char cookie_name[32];
    int starting;        /* libmicrohttpd's messages go into start_error, not stderr */
    char start_error[256];
    pthread_mutex_t connections_mutex;
    pthread_cond_t watchdog_wake;
    tracked_connection *connections;
    pthread_t watchdog;
    int watchdog_running, stopping;
};

static const char security_policy[] =
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

const char *http_header(const http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_query(const http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

int http_query_int(http_request *req, const char *name, long fallback, long min, long max,
                   long *out)
{
    const char *text = http_query(req, name);
    if (!text || !*text) {
        *out = fallback;
        return 0;
    }
    char *end;
    long value = strtol(text, &end, 10);
    if (*end || value < min || value > max) {
        http_reply_error(req, 400, "query argument '%s' must be an integer from %ld to %ld, got '%s'",
                         name, min, max, text);
        return -1;
    }
    *out = value;
    return 0;
}

cJSON *http_body_json(http_request *req)
{
    if (!req->body || req->body_size == 0) {
        http_reply_error(req, 400, "the request needs a JSON object body");
        return NULL;
    }
    const char *what;
    size_t bad;
    if (json_text_clean(req->body, req->body_size, &what, &bad) != 0) {
        http_reply_error(req, 400, "the JSON body %s at byte %zu", what, bad);
        return NULL;
    }
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithLengthOpts(req->body, req->body_size, &end, 0);
    if (json && end) { /* only whitespace may follow the value */
        while (end < req->body + req->body_size && strchr(" \t\r\n", *end) && *end)
            end++;
        if (end != req->body + req->body_size) {
            cJSON_Delete(json);
            json = NULL;
        }
    }
    if (!json) {
        size_t offset = end ? (size_t)(end - req->body) : 0;
        http_reply_error(req, 400, "malformed JSON body at byte %zu", offset);
        return NULL;
    }
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        http_reply_error(req, 400, "the JSON body must be an object");
        return NULL;
    }
    return json;
}

static void add_common_headers(http_request *req, struct MHD_Response *response)
{
    MHD_add_response_header(response, "Content-Security-Policy", security_policy);
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response, "X-Frame-Options", "DENY");
    MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(response, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(response, "Cross-Origin-Resource-Policy", "same-origin");
    char timing[64];
    snprintf(timing, sizeof timing, "app;dur=%.2f", (vdx_now() - req->started) * 1000.0);
    MHD_add_response_header(response, "Server-Timing", timing);
}

int http_reply_response(http_request *req, int status, struct MHD_Response *response)
{
    if (!response)
        return -1;
    add_common_headers(req, response);
    enum MHD_Result result = MHD_queue_response(req->conn, (unsigned)status, response);
    MHD_destroy_response(response);
    req->replied = 1;
    req->status = status;
    return result == MHD_YES ? 0 : -1;
}

int http_reply_bytes(http_request *req, int status, const char *content_type, void *data,
                     size_t size, http_memory memory, const http_body_options *opts)
{
    if (req->replied) {
        if (memory == HTTP_TAKE)
            free(data);
        return -1;
    }
    if (opts && opts->etag) {
        const char *if_none_match = http_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);
        if (if_none_match && strstr(if_none_match, opts->etag)) {
            if (memory == HTTP_TAKE)
                free(data);
            struct MHD_Response *response = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
            if (!response)
                return -1;
            MHD_add_response_header(response, MHD_HTTP_HEADER_ETAG, opts->etag);
            if (opts->cache_control)
                MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, opts->cache_control);
            return http_reply_response(req, 304, response);
        }
    }
    struct MHD_Response *response = MHD_create_response_from_buffer(
        size, data,
        memory == HTTP_TAKE ? MHD_RESPMEM_MUST_FREE
        : memory == HTTP_STATIC ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
    if (!response) {
        if (memory == HTTP_TAKE)
            free(data);
        return -1;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL,
                            opts && opts->cache_control ? opts->cache_control : "no-store");
    if (opts && opts->etag)
        MHD_add_response_header(response, MHD_HTTP_HEADER_ETAG, opts->etag);
    if (opts && opts->attachment_name) {
        char disposition[512];
        snprintf(disposition, sizeof disposition, "attachment; filename=\"%s\"", opts->attachment_name);
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
    }
    if (opts && opts->header_name && opts->header_value)
        MHD_add_response_header(response, opts->header_name, opts->header_value);
    return http_reply_response(req, status, response);
}

int http_reply_json(http_request *req, int status, cJSON *json)
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (!text)
        return http_reply_bytes(req, 500, "application/json",
                                "{\"error\":\"out of memory while writing the reply\"}", 49,
                                HTTP_STATIC, NULL);
    return http_reply_bytes(req, status, "application/json", text, strlen(text), HTTP_TAKE, NULL);
}

int http_reply_error(http_request *req, int status, const char *fmt, ...)
{
    char message[VDX_ERROR_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    cJSON *json = cJSON_CreateObject();
    cJSON_AddStringToObject(json, "error", message);
    http_reply_json(req, status, json);
    return -1;
}

int http_path_is(const http_request *req, const char *path)
{
    int i = 0;
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, "/");
        if (i >= req->n_segments || strlen(req->segments[i]) != len ||
            memcmp(req->segments[i], p, len))
            return 0;
        i++;
        p += len;
    }
    return i == req->n_segments;
}

int http_path_is_api(const http_request *req)
{
    return req->n_segments >= 1 && !strcmp(req->segments[0], "api");
}

/* Splits raw_path into decoded segments; replies 400 on a bad escape or a dot segment. */
static int split_path(http_request *req)
{
    const char *p = req->raw_path;
    if (*p != '/')
        return http_reply_error(req, 400, "the request path must start with '/'");
    while (*p == '/')
        p++;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (req->n_segments == HTTP_MAX_SEGMENTS)
            return http_reply_error(req, 400, "the request path has more than %d segments", HTTP_MAX_SEGMENTS);
        char *raw = strndup(p, len);
        char *decoded = raw ? vdx_percent_decode(raw) : NULL;
        free(raw);
        if (!decoded)
            return http_reply_error(req, 400, "malformed percent-escape in the request path");
        size_t bad;
        if (vdx_utf8_check(decoded, strlen(decoded), &bad) != 0) {
            free(decoded);
            return http_reply_error(req, 400, "path segment %d is not valid UTF-8 (byte %zu)",
                                    req->n_segments + 1, bad);
        }
        req->segments[req->n_segments++] = decoded;
        if (!strcmp(decoded, "..") || !strcmp(decoded, "."))
            return http_reply_error(req, 400, "the request path may not contain '.' or '..' segments");
        p += len;
        while (*p == '/')
            p++;
    }
    return 0;
}

static int is_state_changing(const char *method)
{
    return strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD);
}

/* "application/json; charset=utf-8" has media type "application/json". */
static int media_type_is(const char *content_type, const char *type)
{
    if (!content_type)
        return 0;
    size_t n = strlen(type);
    if (strncasecmp(content_type, type, n))
        return 0;
    char next = content_type[n];
    return next == 0 || next == ';' || next == ' ';
}

int http_host_is_loopback(const char *host, int server_port, int tls, const char *bound_name)
{
    const char *end;
    if (host[0] == '[') {
        end = strchr(host, ']');
        if (!end)
            return 0;
        end++;
    } else {
        end = host + strcspn(host, ":");
    }
    size_t len = (size_t)(end - host);
    int port;
    if (*end == ':') {
        const char *digits = end + 1;
        if (!*digits || strlen(digits) > 5 || strspn(digits, "0123456789") != strlen(digits))
            return 0;
        port = atoi(digits);
    } else if (*end) {
        return 0;
    } else {
        port = tls ? 443 : 80;
    }
    if (port != server_port)
        return 0;
    static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (len == strlen(names[i]) && !strncasecmp(host, names[i], len))
            return 1;
    return len == strlen(bound_name) && !strncasecmp(host, bound_name, len);
}

/* Whether `given` is the token, in a time that does not depend on where they differ. */
static int token_matches(const char *token, const char *given)
{
    if (!given)
        return 0;
    size_t n = strlen(token), m = strlen(given);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(token[i] ^ given[i < m ? i : 0]);
    return diff == 0;
}

static int request_has_token(const http_server *server, const http_request *req)
{
    const char *cookie = MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, server->cookie_name);
    if (token_matches(server->cfg.token, cookie))
        return 1;
    const char *auth = http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    return auth && !strncasecmp(auth, "Bearer ", 7) && token_matches(server->cfg.token, auth + 7);
}

static const char token_page[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>vdx: access token needed</title>"
    "</head><body><h1>This vdx server needs its access token</h1><p>Open the address that "
    "<code>vdx serve</code> printed when it started (it ends with <code>/?token=...</code>), "
    "or restart it with <code>--token TOKEN</code> to choose one.</p></body></html>\n";

/* The page's side of the token: GET /?token=T sets the cookie and redirects to `/`; the
 * page without a valid cookie explains where the token is (401). */
static int page_token_exchange(http_server *server, http_request *req)
{
    const char *given = http_query(req, "token");
    if (!given) {
        if (request_has_token(server, req))
            return 0;
        http_reply_bytes(req, 401, "text/html; charset=utf-8", (void *)token_page,
                         sizeof token_page - 1, HTTP_STATIC, NULL);
        return -1;
    }
    if (!token_matches(server->cfg.token, given))
        return http_reply_error(req, 403, "wrong access token: open the address that 'vdx serve' printed");
    struct MHD_Response *response = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!response)
        return -1;
    char cookie[512];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Strict%s", server->cookie_name,
             server->cfg.token, server->cfg.tls_cert_pem ? "; Secure" : "");
    MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, "/");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    http_reply_response(req, 303, response);
    return -1;
}

/* Query arguments as libmicrohttpd decoded them (with their lengths, so a %00 shows). */
typedef struct query_check {
    char bad[160]; /* why the first bad argument is refused; "" while all are good */
} query_check;

static enum MHD_Result check_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                       size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    query_check *q = cls;
    size_t bad;
    /* the name, when it can be shown as it is; otherwise only what is wrong with it */
    int name_ok = key && vdx_utf8_check(key, key_size, &bad) == 0 &&
                  !memchr(key, 0, key_size) && key_size <= 64;
    char name[80];
    snprintf(name, sizeof name, "'%.*s'", name_ok ? (int)key_size : 0, name_ok ? key : "");
    if (!name_ok)
        snprintf(q->bad, sizeof q->bad, "a query argument name is not valid UTF-8 text without "
                 "NUL of at most 64 bytes");
    else if (value && memchr(value, 0, value_size))
        snprintf(q->bad, sizeof q->bad, "query argument %s holds a NUL character (%%00) at "
                 "decoded byte %zu", name, (size_t)((const char *)memchr(value, 0, value_size) - value));
    else if (value && vdx_utf8_check(value, value_size, &bad) != 0)
        snprintf(q->bad, sizeof q->bad, "query argument %s is not valid UTF-8 (decoded byte %zu)",
                 name, bad);
    return q->bad[0] ? MHD_NO : MHD_YES;
}

/* The checks done before the body is read. Replies and returns -1 on refusal. */
static int check_policy(http_server *server, http_request *req)
{
    const char *method = req->method;
    static const char *const allowed[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
    int known = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        known |= !strcmp(method, allowed[i]);
    if (!known)
        return http_reply_error(req, 405, "method %s is not supported", method);
    if (req->query_too_long)
        return http_reply_error(req, 414, "the request line is longer than %d bytes or has more than "
                                "%d query arguments", HTTP_MAX_URI, HTTP_MAX_QUERY_ARGS);
    query_check q = {""};
    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, check_query_arg, &q);
    if (q.bad[0])
        return http_reply_error(req, 400, "%s", q.bad);
    const char *host = http_header(req, MHD_HTTP_HEADER_HOST);
    if (server->loopback &&
        (!host || !http_host_is_loopback(host, server->port, server->cfg.tls_cert_pem != NULL,
                                         server->bound_name)))
        return http_reply_error(req, 403, "this server answers loopback host names with its port "
                                "only (localhost:%d, 127.0.0.1:%d, [::1]:%d), not '%.200s'",
                                server->port, server->port, server->port, host ? host : "");
    const char *origin = http_header(req, "Origin");
    if (origin) {
        char expected[300];
        snprintf(expected, sizeof expected, "%s://%s", server->cfg.tls_cert_pem ? "https" : "http",
                 host ? host : "");
        if (!strcmp(origin, "null"))
            return http_reply_error(req, 403, "request from an opaque origin refused");
        if (!host || strcmp(origin, expected))
            return http_reply_error(req, 403, "cross-origin request from %.200s refused", origin);
    }
    /* what the request is, from the decoded segments the router uses (never the raw
     * path: "//api/info" and "/%61pi/info" route to the API too) */
    int api = http_path_is_api(req);
    if (server->cfg.token) {
        int page = http_path_is(req, "/") || http_path_is(req, "/index.html");
        if (api && !request_has_token(server, req))
            return http_reply_error(req, 401, "this server needs its access token: open the address "
                                    "that 'vdx serve' printed, or send 'Authorization: Bearer TOKEN'");
        if (page && page_token_exchange(server, req) != 0)
            return -1;
    }
    /* No API request comes from another site's page, GETs included: some of them record
     * what they served (a drawn audit sample, a candidate list kept for paging), and an
     * <img> or a link can send a GET with the user's cookie. */
    const char *fetch_site = http_header(req, "Sec-Fetch-Site");
    int cross_site = fetch_site && strcmp(fetch_site, "same-origin") && strcmp(fetch_site, "none");
    if (cross_site && (api || is_state_changing(method)))
        return http_reply_error(req, 403, "%s request refused (Sec-Fetch-Site: %s)", method, fetch_site);
    if (!is_state_changing(method))
        return 0;
    int upload = server->cfg.upload_path && !strcmp(method, "POST") &&
                 http_path_is(req, server->cfg.upload_path);
    req->body_limit = upload ? server->cfg.max_upload : server->cfg.max_body;
    const char *length = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length && strtoull(length, NULL, 10) > req->body_limit)
        return http_reply_error(req, 413, "request body of %s bytes exceeds the limit of %zu bytes",
                                length, req->body_limit);
    const char *type = req->content_type;
    if (upload) {
        if (!type || !(strncasecmp(type, "image/", 6) == 0 || media_type_is(type, "application/octet-stream")))
            return http_reply_error(req, 415, "%s takes the image bytes as the body, with Content-Type "
                                    "image/* or application/octet-stream (got %s)",
                                    server->cfg.upload_path, type ? type : "none");
        return 0;
    }
    int has_body = (length && strcmp(length, "0")) ||
                   http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (!strcmp(method, "DELETE") && !has_body && !type)
        return 0;
    if (!media_type_is(type, "application/json"))
        return http_reply_error(req, 415, "%s requests need Content-Type: application/json (got %s)",
                                method, type ? type : "none");
    return 0;
}

static void free_request(http_request *req)
{
    if (!req)
        return;
    for (int i = 0; i < req->n_segments; i++)
        free(req->segments[i]);
    free(req->raw_path);
    free(req->body);
    free(req);
}

/* ---- The head deadline ---------------------------------------------------------- */

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server *server = cls;
    pthread_mutex_lock(&server->connections_mutex);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        tracked_connection *c = calloc(1, sizeof *c);
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (c && info) {
            c->fd = info->connect_fd;
            c->head_started = vdx_now();
            c->in_head = 1;
            c->next = server->connections;
            if (c->next)
                c->next->prev = c;
            server->connections = c;
        } else {
            free(c);
            c = NULL;
        }
        *socket_context = c;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        tracked_connection *c = *socket_context;
        free_request(c->pending);
        if (c->prev)
            c->prev->next = c->next;
        else
            server->connections = c->next;
        if (c->next)
            c->next->prev = c->prev;
        free(c);
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&server->connections_mutex);
}

/* The head of the connection's request is complete (done = 1), or a new one begins. */
static void head_complete(http_server *server, struct MHD_Connection *conn, int done)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (!info || !info->socket_context)
        return;
    tracked_connection *c = info->socket_context;
    pthread_mutex_lock(&server->connections_mutex);
    c->in_head = !done;
    if (!done)
        c->head_started = vdx_now();
    pthread_mutex_unlock(&server->connections_mutex);
}

/* The request of the connection that has not reached on_completed yet (or NULL). */
static void set_pending(http_server *server, struct MHD_Connection *conn, http_request *req)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (!info || !info->socket_context)
        return;
    tracked_connection *c = info->socket_context;
    pthread_mutex_lock(&server->connections_mutex);
    c->pending = req;
    pthread_mutex_unlock(&server->connections_mutex);
}

/* Shuts down (the event loop then closes) every connection past the head deadline; the
 * socket stays open until libmicrohttpd's close notification, so the fd is never stale. */
static void *watchdog(void *arg)
{
    http_server *server = arg;
    pthread_mutex_lock(&server->connections_mutex);
    while (!server->stopping) {
        double now = vdx_now();
        for (tracked_connection *c = server->connections; c; c = c->next) {
            if (c->in_head && now - c->head_started > server->cfg.head_timeout_s) {
                shutdown(c->fd, SHUT_RDWR);
                c->in_head = 0;
            }
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&server->watchdog_wake, &server->connections_mutex, &until);
    }
    pthread_mutex_unlock(&server->connections_mutex);
    return NULL;
}

/* Called by libmicrohttpd with the raw URI, before it decodes anything: the request
 * object starts here so that routes see the path exactly as sent. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    http_request *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->conn = conn;
    req->started = vdx_now();
    const char *query = strchr(uri, '?');
    size_t args = 0;
    for (const char *q = query; q && *q; q++)
        args += *q == '&' || *q == ';';
    req->query_too_long = strlen(uri) > HTTP_MAX_URI || args >= HTTP_MAX_QUERY_ARGS;
    if (req->query_too_long && query)
        /* libmicrohttpd 0.9.75 splits the query string into its connection pool right
         * after this callback; when the arguments do not fit, it queues a 431 and then
         * waits for headers anyway, answering nothing (until the head deadline). The
         * query string is refused with a 414 as a whole, so it is cut here, in
         * libmicrohttpd's own (writable) copy of the request line, and nothing is split:
         * the argument parsing starts after the '?' and finds the string empty. */
        ((char *)query)[1] = 0;
    req->raw_path = strndup(uri, query ? (size_t)(query - uri) : strlen(uri));
    if (!req->raw_path) {
        free(req);
        return NULL;
    }
    set_pending(cls, conn, req);
    return req;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)code;
    http_server *server = cls;
    head_complete(server, conn, 0); /* the next request's head starts now */
    set_pending(server, conn, NULL);
    http_request *req = *req_cls;
    if (req && server->cfg.log_requests && server->cfg.notice && req->method) {
        char line[2300];
        snprintf(line, sizeof line, "%s %s %d %.1f ms", req->method, req->raw_path, req->status,
                 (vdx_now() - req->started) * 1000.0);
        server->cfg.notice(VDX_SERVER_REQUEST, line, server->cfg.notice_user);
    }
    free_request(req);
    *req_cls = NULL;
}

static int append_body(http_request *req, const char *data, size_t size)
{
    if (req->body_too_large || req->body_size + size > req->body_limit) {
        req->body_too_large = 1;
        return 0;
    }
    char *grown = realloc(req->body, req->body_size + size + 1);
    if (!grown)
        return -1;
    memcpy(grown + req->body_size, data, size);
    req->body = grown;
    req->body_size += size;
    req->body[req->body_size] = 0;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)url;
    (void)version;
    http_server *server = cls;
    http_request *req = *req_cls;
    if (!req)
        return MHD_NO; /* out of memory in on_uri: drop the connection */
    if (!req->method) {
        head_complete(server, conn, 1);
        req->method = method;
        req->content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        req->body_limit = server->cfg.max_body;
        if (split_path(req) != 0 || check_policy(server, req) != 0)
            return req->replied ? MHD_YES : MHD_NO;
        return MHD_YES;
    }
    if (req->replied) {
        *upload_data_size = 0; /* refused up front: discard what the client still sends */
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (append_body(req, upload_data, *upload_data_size) != 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->body_too_large) {
        http_reply_error(req, 413, "request body exceeds the limit of %zu bytes", req->body_limit);
        return MHD_YES;
    }
    server->cfg.handle(server->cfg.ctx, req);
    if (!req->replied)
        http_reply_error(req, 500, "the route for %s %s did not answer", req->method, req->raw_path);
    return req->replied ? MHD_YES : MHD_NO;
}

/* libmicrohttpd's own messages: while starting, kept for the error of http_start;
 * afterwards (e.g. the connection limit reached) a WARNING notice. */
static void on_library_message(void *cls, const char *fmt, va_list ap)
{
    http_server *server = cls;
    if (server->starting) {
        vsnprintf(server->start_error, sizeof server->start_error, fmt, ap);
        server->start_error[strcspn(server->start_error, "\n")] = 0;
        return;
    }
    if (!server->cfg.notice)
        return;
    char message[1024], line[1100];
    vsnprintf(message, sizeof message, fmt, ap);
    message[strcspn(message, "\n")] = 0;
    snprintf(line, sizeof line, "vdx serve: libmicrohttpd: %s", message);
    server->cfg.notice(VDX_SERVER_WARNING, line, server->cfg.notice_user);
}

static int resolve_bind_address(const char *host, int port, struct sockaddr_storage *addr,
                                socklen_t *len, vdx_error *err)
{
    struct addrinfo hints = {0}, *found = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &found);
    if (rc != 0)
        return vdx_fail_kind(err, VDX_ERR_IO, "cannot resolve host '%s': %s", host, gai_strerror(rc));
    memcpy(addr, found->ai_addr, found->ai_addrlen);
    *len = found->ai_addrlen;
    freeaddrinfo(found);
    return 0;
}

static int address_is_loopback(const struct sockaddr_storage *addr)
{
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return 0;
}

http_server *http_start(const http_config *cfg, vdx_error *err)
{
    if (cfg->port < 0 || cfg->port > 65535) {
        vdx_fail_kind(err, VDX_ERR_INVALID, "port %d is out of range 0..65535", cfg->port);
        return NULL;
    }
    http_server *server = calloc(1, sizeof *server);
    if (!server) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    server->cfg = *cfg;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    if (resolve_bind_address(cfg->host, cfg->port, &addr, &addr_len, err) != 0) {
        free(server);
        return NULL;
    }
    server->loopback = address_is_loopback(&addr);
    if (!cfg->token && !server->loopback) {
        vdx_fail_kind(err, VDX_ERR_INVALID,
                      "serving on %s without an access token is refused: only a loopback "
                      "address may run without one", cfg->host);
        free(server);
        return NULL;
    }
    if (cfg->tls_cert_pem && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
        vdx_fail(err, "this libmicrohttpd was built without TLS (GnuTLS) support");
        free(server);
        return NULL;
    }
    snprintf(server->bound_name, sizeof server->bound_name, strchr(cfg->host, ':') ? "[%s]" : "%s", cfg->host);
    pthread_mutex_init(&server->connections_mutex, NULL);
    pthread_cond_init(&server->watchdog_wake, NULL);
    server->starting = 1;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (cfg->tls_cert_pem)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cfg->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)cfg->tls_key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    if (!cfg->tls_cert_pem)
        tls[0].option = MHD_OPTION_END;
    server->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, server,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_per_client,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 256u,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, server,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, server,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, server,
        MHD_OPTION_EXTERNAL_LOGGER, on_library_message, server,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_END);
    server->starting = 0;
    if (!server->daemon) {
        vdx_fail(err, "cannot listen on %s port %d: %s (is another server using it? choose another with --port N, or --port 0 for a free one)", cfg->host, cfg->port,
                 server->start_error[0] ? server->start_error : "libmicrohttpd refused to start");
        pthread_mutex_destroy(&server->connections_mutex);
        pthread_cond_destroy(&server->watchdog_wake);
        free(server);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
    server->port = info ? info->port : cfg->port;
    snprintf(server->cookie_name, sizeof server->cookie_name, "vdx-token-%d", server->port);
    if (pthread_create(&server->watchdog, NULL, watchdog, server) != 0) {
        vdx_fail(err, "cannot start the request watchdog thread");
        http_stop(server);
        return NULL;
    }
    server->watchdog_running = 1;
    return server;
}

int http_is_loopback(const http_server *server) { return server->loopback; }

int http_port(const http_server *server) { return server->port; }

void http_stop(http_server *server)
{
    if (!server)
        return;
    if (server->watchdog_running) {
        pthread_mutex_lock(&server->connections_mutex);
        server->stopping = 1;
        pthread_cond_signal(&server->watchdog_wake);
        pthread_mutex_unlock(&server->connections_mutex);
        pthread_join(server->watchdog, NULL);
    }
    MHD_stop_daemon(server->daemon);
    pthread_mutex_destroy(&server->connections_mutex);
    pthread_cond_destroy(&server->watchdog_wake);
    free(server);
}
