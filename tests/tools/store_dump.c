/* store_dump: prints every item of a collection holding a vector, sorted by id, one per
 * line: id TAB url TAB width TAB height TAB metadata (JSON) TAB vector (space-separated
 * %.9g). Written against the public store API only, so shell tests can compare two
 * collections (a resumed ingest against an uninterrupted one) or check stored vectors
 * against `vdx embed` with awk.
 *
 *   store_dump --data DIR --collection NAME [--no-meta] [--no-vector] */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdx/store.h"

static int cmp_hit(const void *a, const void *b)
{
    return strcmp(((const vdx_hit *)a)->id, ((const vdx_hit *)b)->id);
}

int main(int argc, char **argv)
{
    vdx_store_options so = {0};
    int meta = 1, vectors = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc)
            so.data_dir = argv[++i];
        else if (!strcmp(argv[i], "--collection") && i + 1 < argc)
            so.collection = argv[++i];
        else if (!strcmp(argv[i], "--no-meta"))
            meta = 0;
        else if (!strcmp(argv[i], "--no-vector"))
            vectors = 0;
        else {
            fprintf(stderr, "usage: store_dump --data DIR --collection NAME [--no-meta] "
                            "[--no-vector]\n");
            return 2;
        }
    }
    so.read_only = 1;
    vdx_error err = {{0}};
    vdx_store *store = vdx_store_open(&so, &err);
    if (!store) {
        fprintf(stderr, "store_dump: %s\n", err.message);
        return 1;
    }
    int dims = vdx_store_model(store)->dims;
    float *zero = calloc((size_t)dims, sizeof *zero);
    vdx_search_request req = {0};
    req.query = zero;
    req.with_vectors = vectors;
    vdx_hits hits = {0};
    if (vdx_store_score_all(store, &req, &hits, &err) != 0) {
        fprintf(stderr, "store_dump: %s\n", err.message);
        return 1;
    }
    qsort(hits.hits, (size_t)hits.n, sizeof *hits.hits, cmp_hit);
    int status = 0;
    for (int i = 0; i < hits.n; i++) {
        const vdx_hit *h = &hits.hits[i];
        printf("%s\t%s", h->id, h->url ? h->url : "");
        if (meta) {
            cJSON *item = NULL;
            if (vdx_store_get_item(store, h->id, &item, &err) != 0) {
                fprintf(stderr, "store_dump: %s\n", err.message);
                status = 1;
                break;
            }
            const cJSON *w = cJSON_GetObjectItemCaseSensitive(item, "width");
            const cJSON *ht = cJSON_GetObjectItemCaseSensitive(item, "height");
            char *m = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(item, "metadata"));
            printf("\t%d\t%d\t%s", cJSON_IsNumber(w) ? w->valueint : -1,
                   cJSON_IsNumber(ht) ? ht->valueint : -1, m ? m : "null");
            free(m);
            cJSON_Delete(item);
        }
        if (vectors) {
            putchar('\t');
            for (int k = 0; k < dims; k++)
                printf(k ? " %.9g" : "%.9g", (double)h->vector[k]);
        }
        putchar('\n');
    }
    vdx_hits_free(&hits);
    free(zero);
    vdx_store_close(store);
    return status;
}
