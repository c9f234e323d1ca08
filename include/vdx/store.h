/* The vector store: one interface over a collection of items (id, url, metadata,
 * thumbnail, L2-normalised vector), implemented by the embedded backend (SQLite +
 * memory-mapped vector matrix, the default) and the ClickHouse/MyScale backend (HTTP).
 * Ingest, search, the explore loop and the server use only this interface. */
#ifndef VDX_STORE_H
#define VDX_STORE_H

#include <cjson/cJSON.h>

#include "vdx/common.h"

typedef struct vdx_store vdx_store;

typedef enum { VDX_VECTOR_F32 = 0, VDX_VECTOR_F16 = 1 } vdx_vector_type;

/* What a collection was embedded with; a query or ingest with another model is refused. */
typedef struct vdx_model_identity {
    char name[256];
    char config_hash[65];
    int dims;
} vdx_model_identity;

typedef struct vdx_store_options {
    const char *data_dir;   /* NULL: $VDX_HOME, else ~/.local/share/vdx */
    const char *collection; /* NULL: "default" */
    const char *url;        /* NULL: $VDX_STORE, else embedded; "clickhouse://..." */
    int create;             /* create the collection if missing (needs model) */
    const vdx_model_identity *model; /* when set, must match the collection's */
    vdx_vector_type vector_type;     /* for a new collection */
    int read_only;
} vdx_store_options;

vdx_store *vdx_store_open(const vdx_store_options *opts, vdx_error *err);
void vdx_store_close(vdx_store *store);

const vdx_model_identity *vdx_store_model(const vdx_store *store);
/* Local directory of the collection: side files (concepts, progress) live here for
 * every backend. */
const char *vdx_store_dir(const vdx_store *store);
/* Sees what another process appended since open (readers call it before a query). */
int vdx_store_refresh(vdx_store *store, vdx_error *err);
/* Items with a vector. */
int64_t vdx_store_count(vdx_store *store);

/* Metadata columns (besides id, url, width, height, ingested_at). Idempotent. */
int vdx_store_add_columns(vdx_store *store, const char *const *names, int n, vdx_error *err);
/* Names of the metadata columns, malloc'd (free each, then the array). */
int vdx_store_columns(vdx_store *store, char ***names, int *n, vdx_error *err);

/* One item to append. failure != NULL records a failed item (no vector, no thumbnail):
 * a later successful append of the same id replaces the failure. */
typedef struct vdx_item {
    const char *id;
    const char *url;                 /* source URL or file path */
    int width, height;               /* original image size, 0 if unknown */
    const char *const *meta_names;   /* n_meta metadata columns (added if missing) */
    const char *const *meta_values;  /* NULL value = SQL NULL */
    int n_meta;
    const float *vector;             /* dims floats, L2-normalised; NULL for a failure */
    const uint8_t *thumbnail;        /* JPEG, may be NULL */
    size_t thumbnail_size;
    const char *failure;             /* reason, or NULL */
} vdx_item;

/* Appends a batch atomically: after a crash either all of it is there or none.
 * An id already stored with a vector is an error naming it. */
int vdx_store_append(vdx_store *store, const vdx_item *items, size_t n, vdx_error *err);

typedef enum { VDX_ITEM_ABSENT = 0, VDX_ITEM_STORED = 1, VDX_ITEM_FAILED = 2 } vdx_item_state;
int vdx_store_item_states(vdx_store *store, const char *const *ids, size_t n,
                          vdx_item_state *states, vdx_error *err);

typedef struct vdx_search_request {
    const float *query;              /* dims floats; normalised internally (cosine) */
    int k;                           /* results wanted */
    int offset;                      /* skip this many (paging) */
    const char *const *exclude_ids;  /* never returned */
    size_t n_exclude;
    const char *where;               /* SQL boolean expression over columns, or NULL */
    int with_vectors;                /* fill vdx_hit.vector */
} vdx_search_request;

typedef struct vdx_hit {
    char *id;
    char *url;
    float dist;     /* search: cosine distance 1 - cos, ascending; score: raw dot product */
    float *vector;  /* dims floats when asked for, else NULL */
} vdx_hit;

typedef struct vdx_hits {
    vdx_hit *hits;
    int n;
} vdx_hits;

/* The k nearest items by cosine distance, ties broken by id, excluding exclude_ids and
 * rows not matching where. Exact (a full scan on the embedded backend). */
int vdx_store_search(vdx_store *store, const vdx_search_request *req, vdx_hits *out,
                     vdx_error *err);
/* Every item matching where (k and offset ignored), with dist = dot(vector, query),
 * the query NOT normalised: a linear classifier's logit. In storage order. */
int vdx_store_score_all(vdx_store *store, const vdx_search_request *req, vdx_hits *out,
                        vdx_error *err);
void vdx_hits_free(vdx_hits *hits);

/* Vectors of the given ids (n*dims floats). An unknown id is an error naming it. */
int vdx_store_get_vectors(vdx_store *store, const char *const *ids, size_t n, float *out,
                          vdx_error *err);
/* One item as JSON: {"id","url","width","height","ingested_at","metadata":{...}}. */
int vdx_store_get_item(vdx_store *store, const char *id, cJSON **item, vdx_error *err);
int vdx_store_get_thumbnail(vdx_store *store, const char *id, uint8_t **jpeg, size_t *size,
                            vdx_error *err);
/* Failed items: JSON array of {"id","url","reason","time"}. */
int vdx_store_failures(vdx_store *store, cJSON **failures, vdx_error *err);
/* Collection summary: {"collection","backend","model":{...},"count","failed",
 * "vector_type","bytes_on_disk",...}. */
int vdx_store_info(vdx_store *store, cJSON **info, vdx_error *err);
/* Forgets failures so that an ingest tries those items again (--retry-failed). */
int vdx_store_clear_failures(vdx_store *store, vdx_error *err);

/* Data directory as resolved from opts/env, and the collection directory inside it. */
int vdx_store_resolve_dir(const vdx_store_options *opts, char *dir, size_t size, vdx_error *err);

#endif
