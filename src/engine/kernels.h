/* The numeric kernels of the transformer towers besides the Linear layers (those are in
 * engine/matmul.h): LayerNorm, activations, the int8 rows' conversions, attention, their
 * row and head loops on OpenMP's thread team. Private to src/clip/ and matmul.c. */
#ifndef VDX_ENGINE_KERNELS_H
#define VDX_ENGINE_KERNELS_H

#include <stdint.h>

/* Threads used by the kernels' parallel loops and oneDNN (>= 1). */
void engine_set_threads(int threads);
int engine_threads(void);
/* Sets the calling thread's OpenMP team size to engine_threads() for a pass of a tower:
 * every public entry point of a tower calls it first (OpenMP's thread count is per calling
 * thread). Every pass uses the team, prompts included: measured on a 2-core AMD EPYC
 * Zen 5 (docs/clip-engine.md, "Threads"), a 7-token CLIP prompt takes 3.8 ms on two
 * threads against 5.9 on one, a 77-token one 19.8 against 34.8. (Prompts once ran on one
 * thread: with OpenBLAS's own threads also running, two threads had made a 77-token
 * prompt several times slower.) */
void engine_enter(void);

/* Per row of `dim` values: (x - mean) / sqrt(var + eps) * gamma + beta, with the mean
 * and the biased variance accumulated in double. out may equal in. */
void engine_layer_norm(float *out, const float *in, const float *gamma, const float *beta,
                     int rows, int dim, double eps);

typedef enum { ENGINE_ACT_QUICK_GELU, ENGINE_ACT_GELU } engine_activation;
/* x[r][c] = act(x[r][c] + bias[c]) over rows x cols, in place. */
void engine_bias_activation(float *x, const float *bias, int rows, int cols,
                          engine_activation act);

/* Rows of x ([m][k]) → int8 for the int8 products: q[r][i] = x[r][i] / scales[r] rounded
 * to nearest (even), scales[r] = max |x[r]| / 127 (1 for a zero row). */
void engine_quantise_rows(const float *x, int m, int k, int8_t *q, float *scales);
/* An int8 product ([m][n], int32 sums as float32) back to float32: product[r][j] ·
 * row_scales[r] · column_scales[j] + bias[j] (bias may be NULL), written to product, or
 * added to out when accumulate (product then a buffer of its own; else out == product). */
void engine_int8_scale_back(float *product, int m, int n, const float *row_scales,
                            const float *column_scales, const float *bias, int accumulate,
                            float *out);

/* Multi-head self-attention over n_seq independent sequences of seq_len tokens.
 * qkv holds, per token, the query, key and value projections side by side
 * ([n_seq*seq_len][3*dim], heads of head_dim = dim/n_heads inside each); out gets the
 * per-head softmax(q·kᵀ/√head_dim (+ causal mask)) · v, heads concatenated
 * ([n_seq*seq_len][dim]). With query >= 0 only the query at that position of each
 * sequence is attended (over every key it may see), out then [n_seq][dim]: a tower's
 * last layer needs only the row it pools. The per-head products are oneDNN's sgemm.
 * Returns -1 when memory runs out (its score buffers, or a product's). */
int engine_attention(float *out, const float *qkv, int n_seq, int seq_len, int dim,
                   int n_heads, int causal, int query);

#endif
