/* Helpers shared by the ingest sources: growing item/problem arrays and an id index
 * (open addressing over the item array) used to find duplicates and attach keywords. */
#ifndef VDX_INGEST_INTERNAL_H
#define VDX_INGEST_INTERNAL_H

#include "vdx/ingest.h"

typedef struct source_builder {
    vdx_source *src;
    size_t items_cap, problems_cap;
    long *lines;        /* line of each item, for "first seen on line N" */
    size_t *slots;      /* index+1 into src->items, 0 = empty */
    size_t slots_cap;   /* power of two */
} source_builder;

/* Allocates the source and the builder state. */
int source_builder_init(source_builder *b, const char *kind, vdx_error *err);
/* Takes ownership of the column names (n of them, malloc'd array of malloc'd strings). */
void source_set_columns(source_builder *b, char **columns, int n);
/* Index of an item with this id, or -1. */
long source_find(const source_builder *b, const char *id);
/* Line an item came from. */
long source_item_line(const source_builder *b, size_t index);
/* Adds an item (takes ownership of id, url and values, freed on failure too). */
int source_add_item(source_builder *b, long line, char *id, char *url, char **values,
                    vdx_error *err);
/* Records a skipped row; reason is printf-style. */
int source_add_problem(source_builder *b, const char *file, long line, const char *id,
                       vdx_error *err, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Finishes: frees the builder state and returns the source. */
vdx_source *source_builder_finish(source_builder *b);
void source_builder_abort(source_builder *b);

#endif
