/* FNV-1a and the id set (see hash.h): linear probing over a power-of-two table kept at
 * most half full, so a lookup touches a slot or two. */
#include "common/hash.h"

#include <stdlib.h>
#include <string.h>

uint64_t hash_bytes(const void *data, size_t n)
{
    const unsigned char *p = data;
    /* FNV-1a's prime, with the offset basis vdx has always used (the published one has
     * one digit more): the random candidates of existing concepts are seeded with it */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

uint64_t hash_str(const char *s) { return hash_bytes(s, strlen(s)); }

static size_t slot_of(const idset *s, const char *key)
{
    size_t mask = s->cap - 1, i = (size_t)hash_str(key) & mask;
    while (s->keys[i] && strcmp(s->keys[i], key) != 0)
        i = (i + 1) & mask;
    return i;
}

int idset_reserve(idset *s, size_t n)
{
    if (n * 2 < s->cap)
        return 0;
    size_t cap = 16;
    while (cap <= n * 2) {
        if (cap > SIZE_MAX / 4 / sizeof(int64_t))
            return -1;
        cap *= 2;
    }
    idset grown = {calloc(cap, sizeof *grown.keys), malloc(cap * sizeof *grown.values), cap, 0};
    if (!grown.keys || !grown.values) {
        free(grown.keys);
        free(grown.values);
        return -1;
    }
    for (size_t i = 0; i < s->cap; i++)
        if (s->keys[i]) {
            size_t j = slot_of(&grown, s->keys[i]);
            grown.keys[j] = s->keys[i];
            grown.values[j] = s->values[i];
            grown.n++;
        }
    free(s->keys);
    free(s->values);
    *s = grown;
    return 0;
}

int idset_add(idset *s, const char *key, int64_t value, int64_t *found)
{
    if (idset_reserve(s, s->n + 1) != 0)
        return -1;
    size_t i = slot_of(s, key);
    if (s->keys[i]) {
        if (found)
            *found = s->values[i];
        return 0;
    }
    s->keys[i] = key;
    s->values[i] = value;
    s->n++;
    return 1;
}

int64_t idset_get(const idset *s, const char *key, int64_t missing)
{
    if (!s->cap)
        return missing;
    size_t i = slot_of(s, key);
    return s->keys[i] ? s->values[i] : missing;
}

void idset_free(idset *s)
{
    free(s->keys);
    free(s->values);
    *s = (idset){0};
}
