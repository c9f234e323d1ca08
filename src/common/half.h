/* Module-private (src/common): 16-bit floating point conversions, one copy for the whole
 * library: IEEE 754 binary16 ("float16", the store's f16 vectors, f16 checkpoints) and
 * bfloat16 (bf16 checkpoints; the oneDNN engine's bf16 weights and activations).
 *
 * Narrowing rounds to nearest, ties to even, the way numpy, torch and the F16C /
 * AVX512_BF16 instructions do; NaN stays NaN (quiet), overflow becomes infinity.
 * Widening is exact (every 16-bit value is a float), subnormals included. The array forms
 * use F16C when the CPU has it, unless $VDX_SCAN_KERNEL=portable forces the portable
 * loop (the scan tests compare both); they give the same bits either way.
 *
 * The float16 names keep their historical vdx_ prefix until the private-name rename. */
#ifndef VDX_COMMON_HALF_H
#define VDX_COMMON_HALF_H

#include <stddef.h>
#include <stdint.h>

uint16_t half_f32_to_f16(float f);
float half_f16_to_f32(uint16_t h);
void half_f32_to_f16_array(const float *in, uint16_t *out, size_t n);
void half_f16_to_f32_array(const uint16_t *in, float *out, size_t n);

uint16_t half_f32_to_bf16(float f);
float half_bf16_to_f32(uint16_t b);
void half_f32_to_bf16_array(const float *in, uint16_t *out, size_t n);
void half_bf16_to_f32_array(const uint16_t *in, float *out, size_t n);

/* The largest finite float16 (65504) and the smallest float that rounds to infinity
 * (65520): a value v with |v| >= HALF_F16_OVERFLOW cannot be stored as float16. */
#define HALF_F16_MAX 65504.0f
#define HALF_F16_OVERFLOW 65520.0f

#endif
