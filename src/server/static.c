/* The page's files, served from the copies embedded in the binary (vdx_web_assets,
 * generated from web/ by scripts/embed-web.sh), so `vdx serve` needs nothing installed
 * next to it. Only names in that table exist: there is no file system path to escape.
 * Each file gets its content type and a strong ETag (a hash of its bytes, computed once),
 * with Cache-Control: no-cache so that browsers revalidate and get 304 while unchanged. */
#include "server/static.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "server/web_assets.h"

#define MAX_ASSETS 64

static char asset_etags[MAX_ASSETS][20];
static pthread_once_t etags_once = PTHREAD_ONCE_INIT;

static void compute_etags(void)
{
    for (int i = 0; i < MAX_ASSETS && vdx_web_assets[i].path; i++) {
        char hex[65];
        vdx_sha256_hex(vdx_web_assets[i].data, vdx_web_assets[i].size, hex);
        snprintf(asset_etags[i], sizeof asset_etags[i], "\"%.16s\"", hex);
    }
}

static const char *content_type_of(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

void static_handle(http_request *req)
{
    if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
        http_reply_error(req, 405, "%s %s: the page's files are read-only", req->method, req->raw_path);
        return;
    }
    const char *path = req->n_segments == 0 ? "index.html" : req->segments[0];
    if (req->n_segments <= 1) {
        pthread_once(&etags_once, compute_etags);
        for (int i = 0; i < MAX_ASSETS && vdx_web_assets[i].path; i++) {
            if (strcmp(vdx_web_assets[i].path + 1, path))
                continue;
            http_body_options opts = {.etag = asset_etags[i], .cache_control = "no-cache"};
            http_reply_bytes(req, 200, content_type_of(path), (void *)vdx_web_assets[i].data,
                             vdx_web_assets[i].size, HTTP_STATIC, &opts);
            return;
        }
    }
    http_reply_error(req, 404, "no such page: %s", req->raw_path);
}
