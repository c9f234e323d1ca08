/* float16 and bfloat16 conversions (see half.h): bit manipulation, no libm, with an F16C
 * path for arrays of float16 chosen at run time. */
#include "common/half.h"

#include <immintrin.h>
#include <cpuid.h>
#include <stdlib.h>
#include <string.h>

static uint32_t bits_of(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static float float_of(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

uint16_t half_f32_to_f16(float f)
{
    uint32_t x = bits_of(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u)
        return sign | 0x7e00; /* NaN */
    if (abs >= 0x477ff000u)
        return sign | 0x7c00; /* rounds to infinity (>= 65520) */
    if (abs < 0x38800000u) {  /* below 2^-14: a half subnormal (or zero) */
        if (abs < 0x33000000u)
            return sign; /* below 2^-25: rounds to zero */
        uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(abs >> 23); /* 14..24 */
        uint32_t half = mant >> shift, rest = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rest > mid || (rest == mid && (half & 1)))
            half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((abs >> 13) - (112u << 10)), rest = abs & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1)))
        half++; /* a carry into the exponent is the correct rounding */
    return sign | (uint16_t)half;
}

float half_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
    if (exp == 0) {
        float f = (float)mant * (1.0f / 16777216.0f); /* mant * 2^-24, exact */
        return sign ? -f : f;
    }
    if (exp == 31)
        return float_of(sign | 0x7f800000u | (mant << 13));
    return float_of(sign | ((exp + 112) << 23) | (mant << 13));
}

/* F16C from CPUID (clang 14 has no "f16c" for __builtin_cpu_supports; the fuzzers build
 * this file with it), with AVX usable, which F16C's instructions need. */
static int use_f16c(void)
{
    const char *forced = getenv("VDX_SCAN_KERNEL");
    unsigned a, b, c, d;
    return !(forced && strcmp(forced, "portable") == 0) && __builtin_cpu_supports("avx") &&
           __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

__attribute__((target("avx,f16c"))) static void f32_to_f16_f16c(const float *in, uint16_t *out,
                                                                   size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        out[i] = half_f32_to_f16(in[i]);
}

__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(const uint16_t *in, float *out,
                                                                   size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
    for (; i < n; i++)
        out[i] = half_f16_to_f32(in[i]);
}

void half_f32_to_f16_array(const float *in, uint16_t *out, size_t n)
{
    if (use_f16c()) {
        f32_to_f16_f16c(in, out, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = half_f32_to_f16(in[i]);
}

void half_f16_to_f32_array(const uint16_t *in, float *out, size_t n)
{
    if (use_f16c()) {
        f16_to_f32_f16c(in, out, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = half_f16_to_f32(in[i]);
}

/* Without branches, so that the array loop below vectorises. */
static inline uint16_t bf16_of_bits(uint32_t x)
{
    uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1)) >> 16; /* ties to even; overflow → infinity */
    uint32_t quiet = (x >> 16) | 0x0040;                      /* NaN: keep the sign, force quiet */
    return (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
}

uint16_t half_f32_to_bf16(float f) { return bf16_of_bits(bits_of(f)); }

float half_bf16_to_f32(uint16_t b) { return float_of((uint32_t)b << 16); }

/* The bf16 products convert every activation row with this: GCC vectorises the rounding
 * above (the same bits), compiled for AVX-512, AVX2 and the baseline and chosen at run
 * time (target_clones, a GNU extension; the Makefile gives this file kernels.c's cost
 * model). The AVX512_BF16 instruction would differ: it flushes subnormals to zero. */
__attribute__((target_clones("avx512f", "avx2", "default")))
void half_f32_to_bf16_array(const float *in, uint16_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = bf16_of_bits(bits_of(in[i]));
}

void half_bf16_to_f32_array(const uint16_t *in, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = half_bf16_to_f32(in[i]);
}
