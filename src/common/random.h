/* Module-private (src/common): the one seeded random generator of the library
 * (splitmix64), for draws that must repeat from a seed: the audit sample, random
 * candidates, the weak negatives a store samples. */
#ifndef VDX_COMMON_RANDOM_H
#define VDX_COMMON_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64: a small, well-mixed generator; the sequence depends only on the state. */
uint64_t random_next(uint64_t *state);
/* Unbiased integer in [0, bound), bound > 0. */
size_t random_below(uint64_t *state, size_t bound);

#endif
