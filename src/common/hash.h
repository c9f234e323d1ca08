/* Module-private (src/common): the one string hash (64-bit FNV-1a) and the one id set of
 * the library: an open-addressing table from borrowed NUL-terminated keys (item ids,
 * concept labels) to a 64-bit value, used wherever ids are looked up or checked for
 * uniqueness (source rows, a store batch, the labels of a concept). */
#ifndef VDX_COMMON_HASH_H
#define VDX_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash_bytes(const void *data, size_t n);
uint64_t hash_str(const char *s);

typedef struct idset {
    const char **keys; /* borrowed: they must outlive the set */
    int64_t *values;
    size_t cap, n;     /* cap: 0 or a power of two, at most half full */
} idset;

/* Room for n keys without growing; -1 when out of memory (the set is unchanged). */
int idset_reserve(idset *s, size_t n);
/* Adds key → value: 1 when added, 0 when the key was there (its value kept, *found set
 * to it when found is not NULL), -1 when out of memory. */
int idset_add(idset *s, const char *key, int64_t value, int64_t *found);
/* The value of key, or `missing`. */
int64_t idset_get(const idset *s, const char *key, int64_t missing);
void idset_free(idset *s);

#endif
