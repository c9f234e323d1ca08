/* The JSON API of `vdx serve` (docs/api.md): what the routes share. */
#ifndef VDX_SERVER_API_H
#define VDX_SERVER_API_H

#include <pthread.h>

#include "server/http.h"
#include "vdx/clip.h"
#include "vdx/explore.h"
#include "vdx/server.h"
#include "vdx/store.h"
#include "vdx/textmodel.h"

/* A store handle serves one thread at a time: each handle comes with its mutex, and
 * with the time it last looked for rows appended by an ingest. */
typedef struct store_slot {
    vdx_store *store;
    pthread_mutex_t mutex;
    double last_refresh;
    vdx_server_notice_fn notice; /* where a failed refresh is told; NULL: nowhere */
    void *notice_user;
} store_slot;

typedef struct api_context {
    /* Two handles on the collection, so that a long concept operation (an evaluation
     * cross-validates) never holds up searches: `search` serves search, items and
     * info; `book` belongs to the concept book, which calls it under book.mutex. CLIP
     * embeddings (the slow part of a text or image query) run before a mutex is taken. */
    store_slot search, book;
    vdx_concepts *concepts;
    vdx_clip_model *model;     /* NULL: text and image queries answer 503 */
    vdx_model_identity model_identity; /* of `model`, when loaded */
    /* Prompts are embedded by this text tower (borrowed; e.g. M-CLIP, known to share the
     * collection's space), else by the CLIP model's own. */
    const vdx_text_model *text_model;
    char collection[128];
    int read_only;             /* every state change answers 403 */
    struct api_map_cache *map; /* api_map.c's open map (under the search slot's mutex) */
    pthread_mutex_t *decode_lock; /* api_collections.decode_lock */
} api_context;

/* The collections one server serves: the one it starts with (open[0], the default) and
 * the others of the same data directory and store, each opened on the first request that
 * names it (`?collection=NAME`) and kept until the server stops. Every collection must
 * have been embedded with the model of the first (its CLIP model when one is loaded), so
 * that one model, one text tower, answers them all. */
#define API_MAX_COLLECTIONS 32
typedef struct api_collections {
    api_context *open[API_MAX_COLLECTIONS];
    int n;
    pthread_mutex_t mutex;     /* guards open[] and n */
    vdx_store_options store;   /* data_dir, url and model of every collection */
    char *data_dir, *store_url; /* the copies store.data_dir and store.url point to */
    vdx_model_identity model_identity; /* of the first collection: store.model points here */
    vdx_clip_model *model;     /* shared by the collections; owned here */
    const vdx_text_model *text_model;
    int read_only;
    vdx_server_notice_fn notice;
    void *notice_user;
    /* One uploaded image is decoded at a time: an upload may hold up to
     * VDX_IMAGE_MAX_PIXELS (a 4 MB PNG of 169 MP decodes to 507 MB), so concurrent ones
     * would multiply that by the request threads. */
    pthread_mutex_t decode_lock;
} api_collections;

/* Sets up `all` (a zeroed struct) for collections of `store` (copied) and opens the
 * first, `store->collection`. On failure `all` is ready for api_collections_close. */
int api_collections_init(api_collections *all, const vdx_store_options *store, vdx_error *err);
/* The open collection NAME, or opens it: NULL with the store's error (not found, model
 * mismatch, an invalid name) or a conflict when too many are open. */
api_context *api_collection_get(api_collections *all, const char *name, vdx_error *err);
void api_collections_close(api_collections *all);

/* The HTTP status of a library error: by its kind, with `fallback` for an unclassified
 * one (VDX_ERR_INTERNAL). Exposed for the contract test of the status table. */
int api_status_of(const vdx_error *err, int fallback);

/* Routes one request under /api/ to the collection it names (see api.c). */
void api_handle(api_collections *all, http_request *req);
/* /api/map/... (api_map.c); api_map_release frees its cached map when the collection closes. */
void api_map_route(api_context *ctx, http_request *req);
void api_map_release(api_context *ctx);

#endif
