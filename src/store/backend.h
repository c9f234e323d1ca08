/* The contract between the generic store (src/store/store.c) and a storage backend.
 *
 * store.c resolves the data directory and collection name, picks a backend from the
 * store URL, checks the model identity and then forwards every vdx_store_* call to the
 * backend's function of the same name, passing the backend's private state. A backend
 * therefore implements exactly the semantics documented in include/vdx/store.h; this
 * header only adds what store.c needs to open one. Backends: embedded.c (SQLite + a
 * memory-mapped vector file) and clickhouse.c (ClickHouse/MyScale over HTTP). */
#ifndef VDX_STORE_BACKEND_H
#define VDX_STORE_BACKEND_H

#include "vdx/store.h"

/* What store.c hands a backend's open(). Strings stay valid until close(). */
typedef struct vdx_backend_open_args {
    const char *collection;     /* validated name, [A-Za-z0-9_.-]{1,64} */
    const char *collection_dir; /* local directory of the collection (exists on return of
                                 * open for a created collection; side files live here) */
    const char *url;            /* store URL (NULL for the embedded backend) */
    int create;                 /* create the collection when it does not exist */
    const vdx_model_identity *model; /* identity for a new collection; may be NULL when
                                      * !create. store.c compares it with the stored one. */
    vdx_vector_type vector_type;     /* for a new collection */
    int read_only;                   /* refuse writes */
} vdx_backend_open_args;

typedef struct vdx_store_backend {
    const char *name; /* "embedded", "clickhouse": shown by vdx_store_info */

    /* Opens (or, with args->create, creates) the collection. Fills *stored with the
     * identity the collection was created with. Returns the private state or NULL. */
    void *(*open)(const vdx_backend_open_args *args, vdx_model_identity *stored,
                  vdx_error *err);
    void (*close)(void *state);

    int (*refresh)(void *state, vdx_error *err);
    int64_t (*count)(void *state);
    /* Optional: rows an approximate index of int8 codes covers (0: none). */
    int64_t (*indexed_rows)(void *state);
    vdx_vector_type (*vector_type)(void *state); /* how the collection stores vectors */
    int (*add_columns)(void *state, const char *const *names, int n, vdx_error *err);
    int (*columns)(void *state, char ***names, int *n, vdx_error *err);
    int (*append)(void *state, const vdx_item *items, size_t n, vdx_error *err);
    int (*item_states)(void *state, const char *const *ids, size_t n,
                       vdx_item_state *states, vdx_error *err);
    /* req->query is already checked (non-NULL, finite, non-zero) by store.c; k >= 0 and
     * offset >= 0 as well. */
    int (*search)(void *state, const vdx_search_request *req, vdx_hits *out, vdx_error *err);
    int (*score_all)(void *state, const vdx_search_request *req, vdx_hits *out,
                     vdx_error *err);
    /* Optional (NULL: store.c uses score_all without ids): the scores alone, *n floats in
     * storage order, and *bound, the largest error any of them may have (0: exact). */
    int (*score_values)(void *state, const vdx_search_request *req, float **scores, size_t *n,
                        double *bound, vdx_error *err);
    int (*get_vectors)(void *state, const char *const *ids, size_t n, float *out,
                       vdx_error *err);
    /* min(k, count) distinct items drawn uniformly at random (a function of seed and the
     * collection), their vectors in out (k*dims floats); *got how many. */
    int (*sample_vectors)(void *state, size_t k, uint64_t seed, float *out, size_t *got,
                          vdx_error *err);
    int (*get_item)(void *state, const char *id, cJSON **item, vdx_error *err);
    int (*get_thumbnail)(void *state, const char *id, uint8_t **jpeg, size_t *size,
                         vdx_error *err);
    int (*failures)(void *state, cJSON **failures, vdx_error *err);
    /* Adds backend-specific fields ("count", "failed", "vector_type", "bytes_on_disk",
     * anything else useful) to an object that store.c has started with "collection",
     * "backend", "dir" and "model". */
    int (*info)(void *state, cJSON *info, vdx_error *err);
    int (*clear_failures)(void *state, vdx_error *err);
    /* Appends a note (a key not used before, a value) to the collection's metadata, and
     * lists the values of the notes whose key starts with `prefix` as a JSON array of
     * strings, oldest first (store.c gives them meaning: docs/store-format.md). */
    int (*add_note)(void *state, const char *key, const char *value, vdx_error *err);
    int (*notes)(void *state, const char *prefix, cJSON **values, vdx_error *err);
    /* The approximate index; NULL for a backend without one. `force` = 0: only when the
     * auto policy says so (vdx_store_index_auto), *built tells. */
    int (*index_build)(void *state, const vdx_index_options *opts, int force, int *built,
                       vdx_error *err);
} vdx_store_backend;

extern const vdx_store_backend vdx_embedded_backend;
/* Defined by src/store/clickhouse.c. */
extern const vdx_store_backend vdx_clickhouse_backend;

#endif
