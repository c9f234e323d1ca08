/* The map of a collection: build (vectors from the store → layout.c → clusters and their
 * names → map.bin written atomically beside the collection) and open (map.bin checked and
 * read, items stored since the build placed among their mapped neighbours).
 *
 * map.bin, little-endian: "VDXMAP01", u32 header length, the header (JSON: parameters,
 * model, vocabulary, build time, clusters with names, sizes and centres), u64 n, n points
 * (f32 x, f32 y, i32 cluster), n ids (u16 length + bytes), u64 FNV-1a of every byte
 * before it. Written whole by vdx_write_file_atomic (temp file + fsync + rename), so a
 * build killed at any point leaves the previous map or none; the checksum catches a
 * damaged file. docs/map.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/json_check.h"
#include "common/strbuf.h"
#include "map/map_internal.h"
#include "vdx/map.h"

#define MAP_MAGIC "VDXMAP01"
#define MAP_FILE "map.bin"

struct vdx_map {
    vdx_map_point *points;
    int64_t n, placed;
    char *ids;          /* the ids' bytes, NUL-separated */
    idset index;
    cJSON *header;
    char **names;
    int n_clusters;
    float box[4];
    char version[40];
};

static void map_path(vdx_store *store, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", vdx_store_dir(store), MAP_FILE);
}

static void stage(const vdx_map_options *o, const char *what, double f)
{
    if (o->on_progress)
        o->on_progress(what, f, o->user);
}

/* Every stored item's id and vector, in storage order: the ids first, then the vectors
 * a block at a time, each block held as int8 codes (never the float32 vectors of all). */
static int load_vectors(vdx_store *store, const vdx_map_options *o, vdx_hits *hits,
                        vdx_map_vectors *vectors, vdx_error *err)
{
    enum { BLOCK = 4096 };
    int dims = vdx_store_model(store)->dims;
    float *q = calloc((size_t)dims, sizeof *q);
    if (!q)
        return vdx_fail_oom(err, "for a query");
    q[0] = 1;
    vdx_search_request req = {.query = q, .without_urls = 1}; /* the ids only */
    int rc = vdx_store_score_all(store, &req, hits, err);
    free(q);
    if (rc != 0)
        return -1;
    const char **ids = malloc(BLOCK * sizeof *ids);
    float *block = malloc((size_t)BLOCK * dims * sizeof *block);
    if (!ids || !block || vdx_map_vectors_alloc(vectors, hits->n, dims, err) != 0) {
        free(ids), free(block);
        vdx_hits_free(hits);
        return vdx_fail_oom(err, "for %d vectors", hits->n);
    }
    rc = -1;
    for (int b0 = 0; b0 < hits->n; b0 += BLOCK) {
        int m = hits->n - b0 < BLOCK ? hits->n - b0 : BLOCK;
        for (int i = 0; i < m; i++)
            ids[i] = hits->hits[b0 + i].id;
        if (vdx_store_get_vectors(store, ids, (size_t)m, block, err) != 0)
            goto out;
        if (vdx_map_vectors_set(vectors, b0, m, block, err) != 0) {
            /* the store refuses such vectors on append: its file was damaged since */
            for (int i = 0; i < m; i++)
                for (int j = 0; j < dims; j++)
                    if (!isfinite(block[(size_t)i * dims + j])) {
                        vdx_fail_kind(err, VDX_ERR_CORRUPT,
                                      "item '%s': its stored vector holds a value that is not "
                                      "a finite number (dimension %d): the vector file is "
                                      "damaged; ingest the item again",
                                      ids[i], j);
                        goto out;
                    }
            goto out;
        }
        if (o->on_progress)
            o->on_progress("vectors", (double)(b0 + m) / hits->n, o->user);
    }
    rc = 0;
out:
    free(ids), free(block);
    if (rc != 0) {
        vdx_map_vectors_free(vectors);
        vdx_hits_free(hits);
    }
    return rc;
}

static void put_u32(strbuf *b, uint32_t v)
{
    strbuf_bytes(b, &v, 4);
}

static void put_u64(strbuf *b, uint64_t v)
{
    strbuf_bytes(b, &v, 8);
}

int vdx_map_build(vdx_store *store, const vdx_map_options *opts, const vdx_map_vocab *vocab,
                  vdx_error *err)
{
    const vdx_model_identity *model = vdx_store_model(store);
    if (vocab && vocab->dims != model->dims)
        return vdx_fail_kind(err, VDX_ERR_MODEL_MISMATCH,
                             "the vocabulary has %d-d vectors, the collection %d-d", vocab->dims,
                             model->dims);
    double t0 = vdx_now();
    vdx_map_options o;
    map_defaults(opts, &o, 0);
    stage(&o, "vectors", 0);
    vdx_hits hits = {0};
    vdx_map_vectors vec = {0};
    if (load_vectors(store, &o, &hits, &vec, err) != 0)
        return vdx_error_prefix(err, "reading the vectors for the map");
    int64_t n = hits.n;
    stage(&o, "vectors", 1);
    int rc = -1;
    float *xy = malloc((size_t)(n ? n : 1) * 2 * sizeof *xy);
    int32_t *cl = malloc((size_t)(n ? n : 1) * sizeof *cl);
    int *names = NULL;
    int64_t *sizes = NULL;
    double *centres = NULL;
    cJSON *h = NULL;
    char *json = NULL;
    strbuf b = {0};
    if (!xy || !cl) {
        vdx_fail_oom(err, "for the coordinates of %lld items", (long long)n);
        goto out;
    }
    map_defaults(opts, &o, n); /* the cluster count follows n */
    if (vdx_map_layout(&vec, &o, xy, err) != 0)
        goto out;
    stage(&o, "clusters", 0);
    if (vdx_map_cluster(xy, n, o.clusters, o.seed, cl, err) != 0)
        goto out;
    names = malloc((size_t)o.clusters * sizeof *names);
    sizes = calloc((size_t)o.clusters, sizeof *sizes);
    centres = calloc(2 * (size_t)o.clusters, sizeof *centres);
    if (!names || !sizes || !centres) {
        vdx_fail_oom(err, "for %d clusters", o.clusters);
        goto out;
    }
    for (int c = 0; c < o.clusters; c++)
        names[c] = -1;
    if (vocab && vocab->n > 0 &&
        vdx_map_name_clusters(&vec, cl, o.clusters, vocab->vectors, vocab->n, names, err) != 0)
        goto out;
    for (int64_t i = 0; i < n; i++) {
        sizes[cl[i]]++;
        centres[2 * cl[i]] += xy[2 * i], centres[2 * cl[i] + 1] += xy[2 * i + 1];
    }
    stage(&o, "clusters", 1);
    stage(&o, "writing", 0);
    char built[32];
    clock_utc_iso_now(built);
    h = cJSON_CreateObject();
    cJSON *p = cJSON_AddObjectToObject(h, "parameters");
    cJSON *m = cJSON_AddObjectToObject(h, "model");
    cJSON *cs = cJSON_AddArrayToObject(h, "clusters");
    if (!h || !p || !m || !cs)
        goto oom;
    cJSON_AddNumberToObject(h, "version", 1);
    cJSON_AddNumberToObject(h, "items", (double)n);
    cJSON_AddStringToObject(p, "method", "umap");
    cJSON_AddNumberToObject(p, "neighbors", o.neighbors);
    cJSON_AddNumberToObject(p, "min_dist", o.min_dist);
    cJSON_AddNumberToObject(p, "epochs", o.epochs);
    cJSON_AddNumberToObject(p, "negatives", o.negatives);
    cJSON_AddNumberToObject(p, "seed", (double)o.seed);
    cJSON_AddNumberToObject(p, "clusters", o.clusters);
    cJSON_AddStringToObject(p, "cluster_method", "k-means on the layout");
    cJSON_AddStringToObject(m, "name", model->name);
    cJSON_AddStringToObject(m, "fingerprint", model->config_hash);
    cJSON_AddNumberToObject(m, "dims", model->dims);
    if (vocab && vocab->n > 0) {
        cJSON *v = cJSON_AddObjectToObject(h, "vocabulary");
        if (!v)
            goto oom;
        cJSON_AddNumberToObject(v, "words", vocab->n);
        cJSON_AddStringToObject(v, "text_model", vocab->model);
    }
    cJSON_AddStringToObject(h, "built", built);
    cJSON_AddNumberToObject(h, "seconds", round((vdx_now() - t0) * 100) / 100);
    for (int c = 0; c < o.clusters; c++) {
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(cs, e))
            goto oom;
        cJSON_AddNumberToObject(e, "id", c);
        cJSON_AddStringToObject(e, "name", names[c] >= 0 ? vocab->words[names[c]] : "");
        cJSON_AddNumberToObject(e, "size", (double)sizes[c]);
        cJSON_AddNumberToObject(e, "x", sizes[c] ? centres[2 * c] / sizes[c] : 0);
        cJSON_AddNumberToObject(e, "y", sizes[c] ? centres[2 * c + 1] / sizes[c] : 0);
    }
    if (!(json = cJSON_PrintUnformatted(h)))
        goto oom;
    strbuf_bytes(&b, MAP_MAGIC, 8);
    put_u32(&b, (uint32_t)strlen(json));
    strbuf_bytes(&b, json, strlen(json));
    put_u64(&b, (uint64_t)n);
    for (int64_t i = 0; i < n; i++) {
        strbuf_bytes(&b, xy + 2 * i, 8);
        strbuf_bytes(&b, cl + i, 4);
    }
    for (int64_t i = 0; i < n; i++) {
        size_t len = strlen(hits.hits[i].id);
        if (len > 65535) {
            vdx_fail_kind(err, VDX_ERR_INVALID, "item %lld: id longer than 65535 bytes",
                          (long long)i);
            goto out;
        }
        uint16_t l16 = (uint16_t)len;
        strbuf_bytes(&b, &l16, 2);
        strbuf_bytes(&b, hits.hits[i].id, len);
    }
    if (b.oom)
        goto oom;
    put_u64(&b, hash_bytes(b.data, b.len));
    if (b.oom)
        goto oom;
    char path[4200];
    map_path(store, path, sizeof path);
    if (vdx_write_file_atomic(path, b.data, b.len, err) != 0)
        goto out;
    stage(&o, "writing", 1);
    rc = 0;
    goto out;
oom:
    vdx_fail_oom(err, "for the map file of %lld items", (long long)n);
out:
    vdx_hits_free(&hits);
    vdx_map_vectors_free(&vec);
    free(xy), free(cl), free(names), free(sizes), free(centres), free(json);
    cJSON_Delete(h);
    strbuf_free(&b);
    return rc;
}

/* ---- reading ---- */

void vdx_map_close(vdx_map *map)
{
    if (!map)
        return;
    idset_free(&map->index);
    free(map->points);
    free(map->ids);
    if (map->names)
        for (int c = 0; c < map->n_clusters; c++)
            free(map->names[c]);
    free(map->names);
    cJSON_Delete(map->header);
    free(map);
}

static int corrupt(vdx_error *err, const char *path, const char *what, size_t off)
{
    return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: %s at byte %zu (run 'vdx map build' again)",
                         path, what, off);
}

static int parse(vdx_map *map, const char *path, const char *data, size_t size, vdx_error *err)
{
    if (size < 8 + 4 + 8 + 8 || memcmp(data, MAP_MAGIC, 8) != 0)
        return corrupt(err, path, "not a vdx map file (bad magic)", 0);
    uint64_t sum;
    memcpy(&sum, data + size - 8, 8);
    if (sum != hash_bytes(data, size - 8))
        return corrupt(err, path, "checksum mismatch", size - 8);
    size_t off = 8, end = size - 8;
    uint32_t hlen;
    memcpy(&hlen, data + off, 4);
    off += 4;
    if (hlen > end - off)
        return corrupt(err, path, "header longer than the file", off);
    map->header = cJSON_ParseWithLength(data + off, hlen);
    if (!map->header && json_text_is_valid(data + off, hlen))
        return vdx_fail_oom(err, "reading the header of %s", path);
    if (!map->header)
        return corrupt(err, path, "header is not JSON", off);
    off += hlen;
    uint64_t n;
    if (end - off < 8)
        return corrupt(err, path, "truncated before the item count", off);
    memcpy(&n, data + off, 8);
    off += 8;
    if (n > (end - off) / 14)
        return corrupt(err, path, "item count larger than the file", off - 8);
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(map->header, "clusters");
    map->n_clusters = cJSON_GetArraySize(cs);
    map->names = calloc((size_t)(map->n_clusters ? map->n_clusters : 1), sizeof *map->names);
    map->points = malloc((size_t)(n ? n : 1) * sizeof *map->points);
    map->ids = malloc(end - off + 1);
    if (!map->names || !map->points || !map->ids || idset_reserve(&map->index, (size_t)n) != 0)
        return vdx_fail_oom(err, "for a map of %llu items", (unsigned long long)n);
    int c = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cs)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (!(map->names[c++] = strdup(cJSON_IsString(name) ? name->valuestring : "")))
            return vdx_fail_oom(err, "for the cluster names");
    }
    const char *pts = data + off;
    off += (size_t)n * 12;
    char *ids = map->ids;
    for (uint64_t i = 0; i < n; i++) {
        vdx_map_point *p = &map->points[i];
        memcpy(&p->x, pts + 12 * i, 4);
        memcpy(&p->y, pts + 12 * i + 4, 4);
        memcpy(&p->cluster, pts + 12 * i + 8, 4);
        p->placed = 0;
        if (!isfinite(p->x) || !isfinite(p->y) || p->cluster < 0 || p->cluster >= map->n_clusters)
            return corrupt(err, path, "bad point", (size_t)(pts - data) + 12 * i);
        uint16_t len;
        if (end - off < 2)
            return corrupt(err, path, "truncated in the ids", off);
        memcpy(&len, data + off, 2);
        off += 2;
        if (len > end - off)
            return corrupt(err, path, "id past the end", off - 2);
        memcpy(ids, data + off, len);
        ids[len] = 0;
        p->id = ids;
        ids += len + 1;
        off += len;
    }
    if (off != end)
        return corrupt(err, path, "trailing bytes", off);
    map->n = (int64_t)n;
    for (int64_t i = 0; i < map->n; i++)
        if (idset_add(&map->index, map->points[i].id, i, NULL) < 0)
            return vdx_fail_oom(err, "for the map's id index");
    return 0;
}

/* Items stored since the build: each at the weighted mean of its mapped neighbours. */
static int place_new(vdx_map *map, vdx_store *store, vdx_error *err)
{
    if (vdx_store_count(store) <= map->n)
        return 0;
    int dims = vdx_store_model(store)->dims;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(map->header, "parameters");
    const cJSON *kj = cJSON_GetObjectItemCaseSensitive(p, "neighbors");
    int k = cJSON_IsNumber(kj) && kj->valueint > 0 ? kj->valueint : 15;
    float *q = calloc((size_t)dims, sizeof *q);
    if (!q)
        return vdx_fail_oom(err, "for a query");
    q[0] = 1;
    vdx_search_request all = {.query = q, .without_urls = 1}; /* the ids only */
    vdx_hits hits = {0};
    int rc = vdx_store_score_all(store, &all, &hits, err);
    free(q);
    if (rc != 0)
        return -1;
    rc = -1;
    const char **fresh = malloc((size_t)(hits.n ? hits.n : 1) * sizeof *fresh);
    float *vec = NULL, *d = NULL, *w = NULL;
    int64_t *at = NULL;
    size_t nf = 0;
    if (!fresh) {
        vdx_fail_oom(err, "for the new items");
        goto out;
    }
    for (int i = 0; i < hits.n; i++)
        if (idset_get(&map->index, hits.hits[i].id, -1) < 0)
            fresh[nf++] = hits.hits[i].id;
    if (nf == 0) {
        rc = 0;
        goto out;
    }
    size_t id_bytes = 0;
    for (size_t i = 0; i < nf; i++)
        id_bytes += strlen(fresh[i]) + 1;
    vdx_map_point *np = realloc(map->points, (size_t)(map->n + nf) * sizeof *np);
    if (np)
        map->points = np;
    char *old = map->ids;
    size_t old_bytes = 0;
    for (int64_t i = 0; i < map->n; i++)
        old_bytes += strlen(map->points[i].id) + 1;
    char *ids = np ? malloc(old_bytes + id_bytes) : NULL;
    vec = malloc(nf * (size_t)dims * sizeof *vec);
    d = malloc((size_t)k * sizeof *d), w = malloc((size_t)k * sizeof *w);
    at = malloc((size_t)k * sizeof *at);
    if (!np || !ids || !vec || !d || !w || !at) {
        free(ids);
        vdx_fail_oom(err, "for %zu new items on the map", nf);
        goto out;
    }
    /* move the ids into one buffer so every point's id lives as long as the map */
    memcpy(ids, old, old_bytes);
    for (int64_t i = 0; i < map->n; i++)
        map->points[i].id = ids + (map->points[i].id - old);
    char *tail = ids + old_bytes;
    for (size_t i = 0; i < nf; i++) {
        size_t len = strlen(fresh[i]) + 1;
        memcpy(tail, fresh[i], len);
        fresh[i] = tail;
        tail += len;
    }
    free(old);
    map->ids = ids;
    idset_free(&map->index);
    memset(&map->index, 0, sizeof map->index);
    if (idset_reserve(&map->index, map->n + nf) != 0) {
        vdx_fail_oom(err, "for the map's id index");
        goto out;
    }
    for (int64_t i = 0; i < map->n; i++)
        idset_add(&map->index, map->points[i].id, i, NULL);
    if (vdx_store_get_vectors(store, fresh, nf, vec, err) != 0)
        goto out;
    for (size_t i = 0; i < nf; i++) {
        vdx_search_request req = {.query = vec + i * dims, .k = k, .exclude_ids = fresh,
                                  .n_exclude = nf};
        vdx_hits nb = {0};
        if (vdx_store_search(store, &req, &nb, err) != 0)
            goto out;
        double x = 0, y = 0, sw = 0;
        int m = 0;
        for (int j = 0; j < nb.n; j++) {
            int64_t a = idset_get(&map->index, nb.hits[j].id, -1);
            if (a >= 0 && a < map->n)
                d[m] = nb.hits[j].dist, at[m] = a, m++;
        }
        vdx_hits_free(&nb);
        vdx_map_point *pt = &map->points[map->n + i];
        *pt = (vdx_map_point){.id = fresh[i], .cluster = -1, .placed = 1};
        if (m > 0) {
            map_smooth_weights(d, m, w);
            for (int j = 0; j < m; j++) {
                const vdx_map_point *q2 = &map->points[at[j]];
                x += w[j] * q2->x, y += w[j] * q2->y, sw += w[j];
            }
            pt->x = (float)(x / sw), pt->y = (float)(y / sw);
        }
    }
    for (size_t i = 0; i < nf; i++)
        if (idset_add(&map->index, map->points[map->n + i].id, map->n + (int64_t)i, NULL) < 0) {
            vdx_fail_oom(err, "for the map's id index");
            goto out;
        }
    map->n += (int64_t)nf;
    map->placed = (int64_t)nf;
    rc = 0;
out:
    vdx_hits_free(&hits);
    free(fresh), free(vec), free(d), free(w), free(at);
    return rc;
}

vdx_map *vdx_map_open(vdx_store *store, vdx_error *err)
{
    char path[4200];
    map_path(store, path, sizeof path);
    char *data;
    size_t size;
    vdx_error e2 = {{0}};
    if (vdx_read_file(path, &data, &size, &e2) != 0) {
        if (e2.kind == VDX_ERR_NOT_FOUND)
            vdx_fail_kind(err, VDX_ERR_NOT_FOUND,
                          "collection '%s' has no map yet: run 'vdx map build'",
                          vdx_store_collection(store));
        else
            vdx_error_copy(err, &e2);
        return NULL;
    }
    vdx_map *map = calloc(1, sizeof *map);
    if (!map) {
        free(data);
        vdx_fail_oom(err, "for the map");
        return NULL;
    }
    int rc = parse(map, path, data, size, err);
    uint64_t sum = 0;
    if (rc == 0)
        memcpy(&sum, data + size - 8, 8);
    free(data);
    if (rc != 0 || place_new(map, store, err) != 0) {
        vdx_map_close(map);
        return NULL;
    }
    snprintf(map->version, sizeof map->version, "%016llx-%lld", (unsigned long long)sum,
             (long long)map->placed);
    map->box[0] = map->box[1] = INFINITY;
    map->box[2] = map->box[3] = -INFINITY;
    for (int64_t i = 0; i < map->n; i++) {
        const vdx_map_point *p = &map->points[i];
        map->box[0] = fminf(map->box[0], p->x), map->box[1] = fminf(map->box[1], p->y);
        map->box[2] = fmaxf(map->box[2], p->x), map->box[3] = fmaxf(map->box[3], p->y);
    }
    if (map->n == 0)
        memset(map->box, 0, sizeof map->box);
    return map;
}

int64_t vdx_map_count(const vdx_map *map)
{
    return map->n;
}

const vdx_map_point *vdx_map_points(const vdx_map *map)
{
    return map->points;
}

int64_t vdx_map_find(const vdx_map *map, const char *id)
{
    return idset_get(&map->index, id, -1);
}

int vdx_map_cluster_count(const vdx_map *map)
{
    return map->n_clusters;
}

const char *vdx_map_cluster_name(const vdx_map *map, int c)
{
    return c >= 0 && c < map->n_clusters ? map->names[c] : "";
}

void vdx_map_bounds(const vdx_map *map, float box[4])
{
    memcpy(box, map->box, sizeof map->box);
}

cJSON *vdx_map_describe(const vdx_map *map)
{
    cJSON *o = cJSON_Duplicate(map->header, 1);
    if (o)
        cJSON_AddNumberToObject(o, "placed", (double)map->placed);
    return o;
}

const char *vdx_map_version(const vdx_map *map)
{
    return map->version;
}
