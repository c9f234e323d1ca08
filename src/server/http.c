/* The HTTP transport of `vdx serve`, on libmicrohttpd: an epoll thread pool whose
 * sockets are non-blocking, so a slow or dead client only holds its own connection until
 * the idle timeout, never a thread. This file also owns the request policy, applied
 * before any route runs:
 *   - bodies are limited (413), the image upload path has its own larger limit;
 *   - state-changing requests (POST/PUT/PATCH) must be application/json (415), except the
 *     upload path, which takes image bytes; HTML forms can send neither, so no cross-site
 *     form post can change anything; cross-site fetches are refused by Origin and
 *     Sec-Fetch-Site (403), and on a loopback bind the Host header must name loopback
 *     (DNS rebinding);
 *   - paths are split into percent-decoded segments and `..` segments are refused (400);
 *   - every reply carries a Content-Security-Policy limited to self, nosniff, no framing,
 *     no referrer, and Server-Timing with the time the route took. */
#include "server/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct http_server {
    struct MHD_Daemon *daemon;
    http_config cfg;
    int port;
    int loopback; /* bound to a loopback address: enforce loopback Host headers */
    int starting; /* libmicrohttpd's messages go into start_error, not stderr */
    char start_error[256];
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

static int queue(http_request *req, int status, struct MHD_Response *response)
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
            return queue(req, 304, response);
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
    return queue(req, status, response);
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

char *http_percent_decode(const char *in)
{
    size_t n = strlen(in);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] != '%') {
            out[j++] = in[i];
            continue;
        }
        char hex[3] = {in[i + 1], in[i + 1] ? in[i + 2] : 0, 0};
        char *end;
        long value = strtol(hex, &end, 16);
        if (*end || !hex[0] || !hex[1] || value == 0) {
            free(out);
            return NULL;
        }
        out[j++] = (char)value;
        i += 2;
    }
    out[j] = 0;
    return out;
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
        char *decoded = raw ? http_percent_decode(raw) : NULL;
        free(raw);
        if (!decoded)
            return http_reply_error(req, 400, "malformed percent-escape in the request path");
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

/* host:port of an Origin URL ("http://127.0.0.1:8080" → "127.0.0.1:8080"). */
static const char *origin_authority(const char *origin)
{
    const char *sep = strstr(origin, "://");
    return sep ? sep + 3 : origin;
}

static int host_is_loopback(const char *host_header)
{
    char name[256];
    snprintf(name, sizeof name, "%s", host_header);
    char *colon = name[0] == '[' ? strstr(name, "]:") : strrchr(name, ':');
    if (colon)
        colon[name[0] == '[' ? 1 : 0] = 0;
    return !strcmp(name, "localhost") || !strncmp(name, "127.", 4) || !strcmp(name, "[::1]");
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
    const char *host = http_header(req, MHD_HTTP_HEADER_HOST);
    if (server->loopback && (!host || !host_is_loopback(host)))
        return http_reply_error(req, 403, "this server answers loopback host names only, not '%s'",
                                host ? host : "");
    if (!is_state_changing(method))
        return 0;
    const char *origin = http_header(req, "Origin");
    if (origin && strcmp(origin, "null") && host && strcmp(origin_authority(origin), host))
        return http_reply_error(req, 403, "cross-origin request from %s refused", origin);
    if (origin && !strcmp(origin, "null"))
        return http_reply_error(req, 403, "request from an opaque origin refused");
    const char *fetch_site = http_header(req, "Sec-Fetch-Site");
    if (fetch_site && strcmp(fetch_site, "same-origin") && strcmp(fetch_site, "none"))
        return http_reply_error(req, 403, "%s request refused (Sec-Fetch-Site: %s)", method, fetch_site);
    int upload = server->cfg.upload_path && !strcmp(method, "POST") &&
                 !strcmp(req->raw_path, server->cfg.upload_path);
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

/* Called by libmicrohttpd with the raw URI, before it decodes anything: the request
 * object starts here so that routes see the path exactly as sent. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    http_request *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->conn = conn;
    req->started = vdx_now();
    const char *query = strchr(uri, '?');
    req->raw_path = strndup(uri, query ? (size_t)(query - uri) : strlen(uri));
    if (!req->raw_path) {
        free(req);
        return NULL;
    }
    return req;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)conn;
    (void)code;
    http_server *server = cls;
    http_request *req = *req_cls;
    if (req && server->cfg.access_log && req->method)
        fprintf(server->cfg.access_log, "%s %s %d %.1f ms\n", req->method, req->raw_path,
                req->status, (vdx_now() - req->started) * 1000.0);
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
        req->method = method;
        req->content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        req->body_limit = server->cfg.max_body;
        if (check_policy(server, req) != 0 || split_path(req) != 0)
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
 * afterwards (e.g. the connection limit reached) printed to stderr. */
static void on_library_message(void *cls, const char *fmt, va_list ap)
{
    http_server *server = cls;
    if (server->starting) {
        vsnprintf(server->start_error, sizeof server->start_error, fmt, ap);
        server->start_error[strcspn(server->start_error, "\n")] = 0;
        return;
    }
    fputs("vdx serve: libmicrohttpd: ", stderr);
    vfprintf(stderr, fmt, ap);
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
        return vdx_fail(err, "cannot resolve host '%s': %s", host, gai_strerror(rc));
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
        vdx_fail(err, "port %d is out of range 0..65535", cfg->port);
        return NULL;
    }
    http_server *server = calloc(1, sizeof *server);
    if (!server) {
        vdx_fail(err, "out of memory");
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
    server->starting = 1;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    server->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, server,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, 1000u,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 256u,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, server,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, server,
        MHD_OPTION_EXTERNAL_LOGGER, on_library_message, server,
        MHD_OPTION_END);
    server->starting = 0;
    if (!server->daemon) {
        vdx_fail(err, "cannot listen on %s port %d: %s (is another server using it? choose another with --port N, or --port 0 for a free one)", cfg->host, cfg->port,
                 server->start_error[0] ? server->start_error : "libmicrohttpd refused to start");
        free(server);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
    server->port = info ? info->port : cfg->port;
    return server;
}

int http_port(const http_server *server) { return server->port; }

void http_stop(http_server *server)
{
    if (!server)
        return;
    MHD_stop_daemon(server->daemon);
    free(server);
}
