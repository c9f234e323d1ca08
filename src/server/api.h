/* The JSON API of `vdx serve` (docs/api.md): what the routes share. */
#ifndef VDX_SERVER_API_H
#define VDX_SERVER_API_H

#include <pthread.h>

#include "server/http.h"
#include "vdx/clip.h"
#include "vdx/explore.h"
#include "vdx/store.h"

typedef struct api_context {
    vdx_store *store;
    vdx_concepts *book;
    vdx_clip_model *model;     /* NULL: text and image queries answer 503 */
    /* A store handle serves one thread at a time, and the concept book calls the
     * store: every use of either holds this mutex. CLIP embeddings (the slow part of a
     * text or image query) run before it is taken. */
    pthread_mutex_t store_mutex;
    double last_refresh;
    vdx_model_identity model_identity; /* of `model`, when loaded */
    char collection[128];
} api_context;

/* Routes one request under /api/ (see api.c). */
void api_handle(api_context *ctx, http_request *req);

#endif
