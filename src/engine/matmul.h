/* The matrix engine of both text towers and the vision tower (src/engine/matmul.c): every
 * Linear layer is a oneDNN matmul whose weights were reordered once, at load, into the
 * layout oneDNN chose for them (format_tag any), held in the precision the model was
 * loaded with. Private to the model files in src/clip/. */
#ifndef VDX_ENGINE_MATMUL_H
#define VDX_ENGINE_MATMUL_H

#include <dnnl.h>
#include <stddef.h>

#include "vdx/clip.h"

/* A Linear layer's weight [n][k] (PyTorch's [out, in] layout), packed for oneDNN. */
typedef struct engine_matrix {
    int n, k;
    vdx_precision precision; /* FP32, BF16 or INT8: never AUTO */
    void *data;              /* the packed weights, in oneDNN's layout */
    size_t bytes;            /* of data */
    float *scales;           /* INT8: per output channel, w[c][i] ≈ q[c][i] · scales[c] */
    dnnl_memory_desc_t desc; /* the layout oneDNN chose */
} engine_matrix;

/* Packs src ([n][k] float32) in `precision`. Returns -1 (err filled: out of memory, or
 * oneDNN refused the shape) on failure; *w is then safe to engine_matrix_free. */
int engine_matrix_pack(engine_matrix *w, const float *src, int n, int k, vdx_precision precision,
                     vdx_error *err);
void engine_matrix_free(engine_matrix *w);

/* out[m][n] = x[m][k] · wᵀ (+ bias[n] when bias != NULL), or added to out when
 * accumulate (the residual). FP32 keeps float32 throughout; BF16 rounds x to bfloat16 and
 * accumulates in float32; INT8 quantises each row of x with its own scale (max |x| / 127)
 * and accumulates in int32. Returns -1 only when memory runs out. */
int engine_matmul(float *out, const float *x, const engine_matrix *w, const float *bias, int m,
                int accumulate, vdx_error *err);

/* The implementation oneDNN picks for a matmul of this precision at ingest's shape
 * (M 1600, N 3072, K 768), e.g. "brg:avx512_core_bf16": what `vdx info` records. */
const char *engine_matmul_isa(vdx_precision precision);

/* Nanoseconds spent in engine_matmul so far, all threads' calls summed. */
unsigned long long engine_matmul_elapsed_ns(void);

/* Whether the CPU computes bf16 natively (AVX512_BF16 or AMX_BF16) and oneDNN may use it
 * (not held below that by ONEDNN_MAX_CPU_ISA). */
int engine_cpu_has_bf16(void);

/* The precisions this CPU runs natively, fastest first (measured: docs/clip-engine.md,
 * "What pays where"): with AMX bf16, int8, fp32; else int8, bf16 where native, fp32.
 * Returns how many (2 or 3). `auto` tries them in this order. */
int engine_precision_order(vdx_precision order[3]);
/* The fidelity floor of a precision: the worst cosine its features may have to float32's
 * (bf16 0.9995, int8 0.99, fp32 1). */
double engine_precision_floor(vdx_precision precision);

#endif
