/* What every ingest source shares: building the item list with an id index (duplicates
 * are found in O(1)), recording skipped rows with their reason, URL validation, and
 * freeing. The format-specific readers live in source_unsplash.c, source_folder.c and
 * source_urls.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/text.h"
#include "ingest/ingest_internal.h"

int source_builder_init(source_builder *b, const char *kind, vdx_error *err)
{
    memset(b, 0, sizeof *b);
    b->src = calloc(1, sizeof *b->src);
    if (!b->src)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    snprintf(b->src->kind, sizeof b->src->kind, "%s", kind);
    return 0;
}

void source_set_columns(source_builder *b, char **columns, int n)
{
    b->src->columns = columns;
    b->src->n_columns = n;
}

long source_find(const source_builder *b, const char *id)
{
    if (!b->slots_cap)
        return -1;
    size_t mask = b->slots_cap - 1;
    for (size_t i = hash_str(id) & mask;; i = (i + 1) & mask) {
        size_t slot = b->slots[i];
        if (!slot)
            return -1;
        if (!strcmp(b->src->items[slot - 1].id, id))
            return (long)(slot - 1);
    }
}

long source_item_line(const source_builder *b, size_t index)
{
    return b->lines[index];
}

static int rehash(source_builder *b, vdx_error *err)
{
    size_t cap = b->slots_cap ? b->slots_cap * 2 : 1024;
    size_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    for (size_t k = 0; k < b->src->n_items; k++) {
        size_t i = hash_str(b->src->items[k].id) & (cap - 1);
        while (slots[i])
            i = (i + 1) & (cap - 1);
        slots[i] = k + 1;
    }
    free(b->slots);
    b->slots = slots;
    b->slots_cap = cap;
    return 0;
}

static void free_values(char **values, int n)
{
    if (!values)
        return;
    for (int i = 0; i < n; i++)
        free(values[i]);
    free(values);
}

int source_add_item(source_builder *b, long line, char *id, char *url, char **values,
                    vdx_error *err)
{
    vdx_source *src = b->src;
    if (src->n_items == b->items_cap) {
        size_t cap = b->items_cap ? b->items_cap * 2 : 256;
        vdx_source_item *items = realloc(src->items, cap * sizeof *items);
        long *lines = items ? realloc(b->lines, cap * sizeof *lines) : NULL;
        if (items)
            src->items = items;
        if (!items || !lines) {
            free(id);
            free(url);
            free_values(values, src->n_columns);
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory reading %zu items", src->n_items);
        }
        b->lines = lines;
        b->items_cap = cap;
    }
    if ((src->n_items + 1) * 2 > b->slots_cap && rehash(b, err) != 0) {
        free(id);
        free(url);
        free_values(values, src->n_columns);
        return -1;
    }
    vdx_source_item *it = &src->items[src->n_items];
    memset(it, 0, sizeof *it);
    it->id = id;
    it->url = url;
    it->values = values;
    b->lines[src->n_items] = line;
    size_t i = hash_str(id) & (b->slots_cap - 1);
    while (b->slots[i])
        i = (i + 1) & (b->slots_cap - 1);
    b->slots[i] = ++src->n_items;
    return 0;
}

/* Ids in a problem are for people: a rejected row's first field can be megabytes (one
 * line without its newlines), so at most PROBLEM_ID_MAX bytes of it are kept, cut at a
 * character boundary, with "..." after. */
#define PROBLEM_ID_MAX 200

static char *shortened_id(const char *id)
{
    size_t len = strlen(id), n = utf8_prefix(id, len, PROBLEM_ID_MAX);
    if (n == len)
        return strdup(id);
    char *out = malloc(n + 4);
    if (out) {
        memcpy(out, id, n);
        memcpy(out + n, "...", 4);
    }
    return out;
}

int source_add_problem(source_builder *b, const char *file, long line, const char *id,
                       vdx_error *err, const char *fmt, ...)
{
    vdx_source *src = b->src;
    if (src->n_problems == b->problems_cap) {
        size_t cap = b->problems_cap ? b->problems_cap * 2 : 16;
        vdx_source_problem *p = realloc(src->problems, cap * sizeof *p);
        if (!p)
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        src->problems = p;
        b->problems_cap = cap;
    }
    char reason[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    vdx_source_problem *p = &src->problems[src->n_problems];
    p->file = strdup(file);
    p->line = line;
    p->id = id ? shortened_id(id) : NULL;
    p->reason = strdup(reason);
    if (!p->file || !p->reason || (id && !p->id)) {
        free(p->file);
        free(p->id);
        free(p->reason);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    }
    src->n_problems++;
    return 0;
}

vdx_source *source_builder_finish(source_builder *b)
{
    vdx_source *src = b->src;
    free(b->slots);
    free(b->lines);
    memset(b, 0, sizeof *b);
    return src;
}

void source_builder_abort(source_builder *b)
{
    vdx_source_free(source_builder_finish(b));
}

void vdx_source_free(vdx_source *src)
{
    if (!src)
        return;
    for (size_t i = 0; i < src->n_items; i++) {
        free(src->items[i].id);
        free(src->items[i].url);
        free(src->items[i].path);
        free_values(src->items[i].values, src->n_columns);
    }
    free(src->items);
    for (size_t i = 0; i < src->n_problems; i++) {
        free(src->problems[i].file);
        free(src->problems[i].id);
        free(src->problems[i].reason);
    }
    free(src->problems);
    for (int i = 0; i < src->n_columns; i++)
        free(src->columns[i]);
    free(src->columns);
    free(src);
}

int vdx_is_http_url(const char *s)
{
    const char *rest;
    if (!strncmp(s, "http://", 7))
        rest = s + 7;
    else if (!strncmp(s, "https://", 8))
        rest = s + 8;
    else
        return 0;
    /* A host of at least one character, then nothing that cannot be in a URL. */
    if (!*rest || *rest == '/' || *rest == '?' || *rest == '#')
        return 0;
    for (const unsigned char *p = (const unsigned char *)rest; *p; p++)
        if (*p <= ' ' || *p == 0x7f || *p == '"' || *p == '<' || *p == '>' || *p == '\\')
            return 0;
    return 1;
}
