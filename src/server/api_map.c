/* The map's routes of the JSON API (docs/api.md, "Map"): the summary with clusters, the
 * coordinates as a compact binary (uint16 quantised: 6 bytes an item, 1M items in 6 MB),
 * the ids in map order, a metadata column's values in map order, and thumbnail atlases (256 thumbnails in one 1024x1024 JPEG, in
 * map order, so the page makes a few requests, not thousands). Every reply carries an
 * ETag derived from the map's version (the build's checksum and the placed items), so a
 * reload downloads nothing again.
 *
 * The open map is cached in the server's context and reopened when map.bin changes
 * (size, mtime) or the collection grows (new items are placed); api_handle calls every
 * route under the search slot's mutex, which also guards this cache. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/api.h"
#include "vdx/image.h"
#include "vdx/map.h"

enum { ATLAS_CELL = 64, ATLAS_SIDE = 16, ATLAS_ITEMS = ATLAS_SIDE * ATLAS_SIDE };

struct api_map_cache {
    vdx_map *map;
    int64_t count;
    off_t size;
    struct timespec mtime;
};

static void reply_error(http_request *req, const vdx_error *err, int fallback)
{
    cJSON *json = cJSON_CreateObject();
    cJSON_AddStringToObject(json, "error", err->message);
    cJSON_AddStringToObject(json, "kind", vdx_error_kind_name(err->kind));
    http_reply_json(req, api_status_of(err, fallback), json);
}

/* The current map, or NULL after replying. */
static vdx_map *current(api_context *ctx, http_request *req)
{
    vdx_store *store = ctx->search.store;
    if (!ctx->map && !(ctx->map = calloc(1, sizeof *ctx->map))) {
        http_reply_error(req, 500, "out of memory");
        return NULL;
    }
    struct api_map_cache *cache = ctx->map;
    char path[4200];
    snprintf(path, sizeof path, "%s/map.bin", vdx_store_dir(store));
    struct stat st;
    int have = stat(path, &st) == 0;
    if (cache->map && have && cache->count == vdx_store_count(store) &&
        cache->size == st.st_size && cache->mtime.tv_sec == st.st_mtim.tv_sec &&
        cache->mtime.tv_nsec == st.st_mtim.tv_nsec)
        return cache->map;
    vdx_map_close(cache->map);
    cache->map = NULL;
    vdx_error err = {{0}};
    vdx_map *map = vdx_map_open(store, &err);
    if (!map) {
        reply_error(req, &err, 500);
        return NULL;
    }
    cache->map = map;
    cache->count = vdx_store_count(store);
    cache->size = have ? st.st_size : 0;
    if (have)
        cache->mtime = st.st_mtim;
    return map;
}

static void etag_of(const vdx_map *map, const char *what, char *out, size_t size)
{
    snprintf(out, size, "\"map-%s-%s\"", what, vdx_map_version(map));
}

/* GET /api/map: {"items","placed","parameters","built","seconds","clusters":[...],
 * "bounds":[min_x,min_y,max_x,max_y],"version","atlas":{"cell","side","items"}} */
static void route_summary(http_request *req, vdx_map *map)
{
    cJSON *o = vdx_map_describe(map);
    float box[4];
    vdx_map_bounds(map, box);
    cJSON *b = cJSON_AddArrayToObject(o, "bounds");
    for (int i = 0; i < 4; i++)
        cJSON_AddItemToArray(b, cJSON_CreateNumber(box[i]));
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "items"), (double)vdx_map_count(map));
    cJSON_AddStringToObject(o, "version", vdx_map_version(map));
    cJSON *a = cJSON_AddObjectToObject(o, "atlas");
    cJSON_AddNumberToObject(a, "cell", ATLAS_CELL);
    cJSON_AddNumberToObject(a, "side", ATLAS_SIDE);
    cJSON_AddNumberToObject(a, "items", ATLAS_ITEMS);
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    char etag[96];
    etag_of(map, "summary", etag, sizeof etag);
    http_body_options opts = {.etag = etag, .cache_control = "private, no-cache"};
    http_reply_bytes(req, 200, "application/json", text, strlen(text), HTTP_TAKE, &opts);
}

/* GET /api/map/points: little-endian u32 n, f32 min_x min_y max_x max_y, then n u16 x,
 * n u16 y (0..65535 across the bounds), n u16 cluster (65535: placed, no cluster). */
static void route_points(http_request *req, vdx_map *map)
{
    int64_t n = vdx_map_count(map);
    size_t size = 20 + 6 * (size_t)n;
    uint8_t *buf = malloc(size);
    if (!buf) {
        http_reply_error(req, 500, "out of memory for %lld points", (long long)n);
        return;
    }
    float box[4];
    vdx_map_bounds(map, box);
    uint32_t n32 = (uint32_t)n;
    memcpy(buf, &n32, 4);
    memcpy(buf + 4, box, 16);
    uint16_t *xs = (uint16_t *)(buf + 20), *ys = xs + n, *cs = ys + n;
    float sx = box[2] > box[0] ? 65535.0f / (box[2] - box[0]) : 0;
    float sy = box[3] > box[1] ? 65535.0f / (box[3] - box[1]) : 0;
    const vdx_map_point *p = vdx_map_points(map);
    for (int64_t i = 0; i < n; i++) {
        uint16_t v[3] = {(uint16_t)((p[i].x - box[0]) * sx + 0.5f),
                         (uint16_t)((p[i].y - box[1]) * sy + 0.5f),
                         (uint16_t)(p[i].cluster < 0 ? 65535 : p[i].cluster)};
        memcpy(xs + i, &v[0], 2);
        memcpy(ys + i, &v[1], 2);
        memcpy(cs + i, &v[2], 2);
    }
    char etag[96];
    etag_of(map, "points", etag, sizeof etag);
    http_body_options opts = {.etag = etag, .cache_control = "private, no-cache"};
    http_reply_bytes(req, 200, "application/octet-stream", buf, size, HTTP_TAKE, &opts);
}

/* GET /api/map/ids: the ids in map order, one a line (text/plain). */
static void route_ids(http_request *req, vdx_map *map)
{
    int64_t n = vdx_map_count(map);
    const vdx_map_point *p = vdx_map_points(map);
    size_t size = 0;
    for (int64_t i = 0; i < n; i++)
        size += strlen(p[i].id) + 1;
    char *buf = malloc(size + 1), *w = buf;
    if (!buf) {
        http_reply_error(req, 500, "out of memory for %lld ids", (long long)n);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        size_t l = strlen(p[i].id);
        memcpy(w, p[i].id, l);
        w[l] = '\n';
        w += l + 1;
    }
    char etag[96];
    etag_of(map, "ids", etag, sizeof etag);
    http_body_options opts = {.etag = etag, .cache_control = "private, no-cache"};
    http_reply_bytes(req, 200, "text/plain; charset=utf-8", buf, size, HTTP_TAKE, &opts);
}

/* GET /api/map/atlas/N: the thumbnails of map items [256 N, 256 N + 256) as one JPEG,
 * 16 x 16 cells of 64 x 64 pixels, row by row (a square centre crop of each thumbnail,
 * box-filtered); a missing thumbnail leaves its cell grey. */
static void route_atlas(api_context *ctx, http_request *req, vdx_map *map, const char *which)
{
    char *end;
    long page = strtol(which, &end, 10);
    int64_t n = vdx_map_count(map), atlases = (n + ATLAS_ITEMS - 1) / ATLAS_ITEMS;
    /* compared with the count of atlases, not multiplied out: a huge page would wrap */
    if (!isdigit((unsigned char)*which) || *end || page >= atlases) {
        http_reply_error(req, 404, "no atlas '%s': the map has %lld atlases (0..%lld)", which,
                         (long long)atlases, (long long)atlases - 1);
        return;
    }
    char etag[96];
    etag_of(map, which, etag, sizeof etag);
    const char *inm = http_header(req, "If-None-Match");
    if (inm && strstr(inm, etag)) { /* answered 304 without composing it */
        http_body_options opts = {.etag = etag, .cache_control = "private, no-cache"};
        http_reply_bytes(req, 200, "image/jpeg", (void *)"", 0, HTTP_STATIC, &opts);
        return;
    }
    int side = ATLAS_CELL * ATLAS_SIDE;
    vdx_image atlas = {side, side, malloc((size_t)side * side * 3)};
    if (!atlas.rgb) {
        http_reply_error(req, 500, "out of memory for an atlas");
        return;
    }
    memset(atlas.rgb, 0x80, (size_t)side * side * 3);
    const vdx_map_point *p = vdx_map_points(map);
    for (int c = 0; c < ATLAS_ITEMS && (int64_t)page * ATLAS_ITEMS + c < n; c++) {
        const char *id = p[(int64_t)page * ATLAS_ITEMS + c].id;
        uint8_t *jpeg = NULL;
        size_t size = 0;
        vdx_error err = {{0}};
        vdx_image img = {0};
        if (vdx_store_get_thumbnail(ctx->search.store, id, &jpeg, &size, &err) != 0 ||
            vdx_image_decode(jpeg, size, id, &img, &err) != 0) {
            free(jpeg);
            continue;
        }
        free(jpeg);
        int sq = img.width < img.height ? img.width : img.height;
        int x0 = (img.width - sq) / 2, y0 = (img.height - sq) / 2;
        int cx = (c % ATLAS_SIDE) * ATLAS_CELL, cy = (c / ATLAS_SIDE) * ATLAS_CELL;
        for (int y = 0; y < ATLAS_CELL; y++)
            for (int x = 0; x < ATLAS_CELL; x++) {
                /* the box of source pixels under this cell pixel */
                int sx0 = x0 + x * sq / ATLAS_CELL, sx1 = x0 + (x + 1) * sq / ATLAS_CELL;
                int sy0 = y0 + y * sq / ATLAS_CELL, sy1 = y0 + (y + 1) * sq / ATLAS_CELL;
                if (sx1 <= sx0)
                    sx1 = sx0 + 1;
                if (sy1 <= sy0)
                    sy1 = sy0 + 1;
                unsigned sum[3] = {0, 0, 0}, cnt = 0;
                for (int yy = sy0; yy < sy1 && yy < img.height; yy++)
                    for (int xx = sx0; xx < sx1 && xx < img.width; xx++) {
                        const uint8_t *s = img.rgb + ((size_t)yy * img.width + xx) * 3;
                        sum[0] += s[0], sum[1] += s[1], sum[2] += s[2], cnt++;
                    }
                uint8_t *d = atlas.rgb + ((size_t)(cy + y) * side + cx + x) * 3;
                for (int k = 0; k < 3 && cnt; k++)
                    d[k] = (uint8_t)((sum[k] + cnt / 2) / cnt);
            }
        vdx_image_free(&img);
    }
    uint8_t *out = NULL;
    size_t out_size = 0;
    vdx_error err = {{0}};
    int rc = vdx_image_thumbnail_jpeg(&atlas, side, 80, &out, &out_size, &err);
    free(atlas.rgb);
    if (rc != 0) {
        reply_error(req, &err, 500);
        return;
    }
    http_body_options opts = {.etag = etag, .cache_control = "private, no-cache"};
    http_reply_bytes(req, 200, "image/jpeg", out, out_size, HTTP_TAKE, &opts);
}

/* GET /api/map/column/{name}: the metadata column's values in map order, a JSON array
 * of strings and nulls (the page colours by it). An unknown column: 404 naming the
 * collection's columns. */
static void route_column(api_context *ctx, http_request *req, vdx_map *map, const char *name)
{
    vdx_store *store = ctx->search.store;
    vdx_error err = {{0}};
    char **cols = NULL;
    int n_cols = 0, known = 0;
    if (vdx_store_columns(store, &cols, &n_cols, &err) != 0) {
        reply_error(req, &err, 500);
        return;
    }
    char list[1024] = "";
    size_t used = 0;
    for (int i = 0; i < n_cols; i++) {
        known |= strcmp(cols[i], name) == 0;
        if (used < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", cols[i]);
        free(cols[i]);
    }
    free(cols);
    if (!known) {
        http_reply_error(req, 404, "no metadata column '%s' (columns: %s)", name, n_cols ? list : "none");
        return;
    }
    char etag[400];
    snprintf(etag, sizeof etag, "\"map-column-%s-%.200s\"", vdx_map_version(map), name);
    for (char *c = etag + 1; c[1]; c++) /* the quoted ETag holds no quote or control byte */
        if (*c == '"' || (unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '_';
    const char *inm = http_header(req, "If-None-Match");
    if (inm && strstr(inm, etag)) {
        http_body_options opts = {.etag = etag, .cache_control = "private, no-cache"};
        http_reply_bytes(req, 200, "application/json", (void *)"", 0, HTTP_STATIC, &opts);
        return;
    }
    cJSON *out = cJSON_CreateArray();
    const vdx_map_point *p = vdx_map_points(map);
    for (int64_t i = 0; out && i < vdx_map_count(map); i++) {
        cJSON *item = NULL;
        if (vdx_store_get_item(store, p[i].id, &item, &err) != 0) {
            cJSON_Delete(out);
            reply_error(req, &err, 500);
            return;
        }
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(item, "metadata"), name);
        cJSON_AddItemToArray(out, cJSON_IsString(v) ? cJSON_CreateString(v->valuestring)
                                                    : cJSON_CreateNull());
        cJSON_Delete(item);
    }
    char *text = out ? cJSON_PrintUnformatted(out) : NULL;
    cJSON_Delete(out);
    if (!text) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    http_body_options opts = {.etag = etag, .cache_control = "private, no-cache"};
    http_reply_bytes(req, 200, "application/json", text, strlen(text), HTTP_TAKE, &opts);
}

void api_map_route(api_context *ctx, http_request *req)
{
    int n = req->n_segments;
    char **seg = req->segments;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        http_reply_error(req, 405, "%s is not allowed on %s (GET)", req->method, req->raw_path);
        return;
    }
    int known = n == 2 || (n == 3 && (!strcmp(seg[2], "points") || !strcmp(seg[2], "ids"))) ||
                (n == 4 && (!strcmp(seg[2], "atlas") || !strcmp(seg[2], "column")));
    if (!known) {
        http_reply_error(req, 404, "no such map endpoint: %s (see docs/api.md)", req->raw_path);
        return;
    }
    vdx_map *map = current(ctx, req);
    if (!map)
        return;
    if (n == 2)
        route_summary(req, map);
    else if (!strcmp(seg[2], "points"))
        route_points(req, map);
    else if (!strcmp(seg[2], "ids"))
        route_ids(req, map);
    else if (!strcmp(seg[2], "column"))
        route_column(ctx, req, map, seg[3]);
    else
        route_atlas(ctx, req, map, seg[3]);
}

void api_map_release(api_context *ctx)
{
    if (ctx->map)
        vdx_map_close(ctx->map->map);
    free(ctx->map);
    ctx->map = NULL;
}
