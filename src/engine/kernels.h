/* The numeric kernels of the transformer towers besides the Linear layers (those are in
 * clip/matmul.h): LayerNorm, activations, attention, their row and head loops on OpenMP's
 * thread team. Private to the model files in src/clip/. */
#ifndef VDX_ENGINE_KERNELS_H
#define VDX_ENGINE_KERNELS_H

/* Threads used by the kernels' parallel loops, oneDNN and OpenBLAS (>= 1). */
void engine_set_threads(int threads);
int engine_threads(void);
/* Sets the calling thread's OpenMP team size for a pass over `rows` token rows of a model
 * `width` wide: every public entry point of a tower calls it first (OpenMP's thread
 * count is per calling thread). A small pass — at most ENGINE_FEW_ROWS rows and less than
 * ENGINE_SMALL_PASS multiply-adds per row·width² (a CLIP prompt: 7 rows × 512²) — runs on
 * the calling thread alone: it is made of ~100 parallel regions too short to pay, and
 * libgomp's idle workers spin between regions, which on a busy machine cost 10x the work
 * (docs/clip-engine.md, "Threads"). Larger passes — images, long prompts, a prompt
 * through XLM-R Large (16 rows × 1024²: 1.7x faster on 2 threads) — use engine_threads(). */
#define ENGINE_FEW_ROWS 24
#define ENGINE_SMALL_PASS (8L << 20)
void engine_enter(int rows, int width);

/* Per row of `dim` values: (x - mean) / sqrt(var + eps) * gamma + beta, with the mean
 * and the biased variance accumulated in double. out may equal in. */
void engine_layer_norm(float *out, const float *in, const float *gamma, const float *beta,
                     int rows, int dim, double eps);

typedef enum { ENGINE_ACT_QUICK_GELU, ENGINE_ACT_GELU } engine_activation;
/* x[r][c] = act(x[r][c] + bias[c]) over rows x cols, in place. */
void engine_bias_activation(float *x, const float *bias, int rows, int cols,
                          engine_activation act);

/* Multi-head self-attention over n_seq independent sequences of seq_len tokens.
 * qkv holds, per token, the query, key and value projections side by side
 * ([n_seq*seq_len][3*dim], heads of head_dim = dim/n_heads inside each); out gets the
 * per-head softmax(q·kᵀ/√head_dim (+ causal mask)) · v, heads concatenated
 * ([n_seq*seq_len][dim]). Returns -1 when its score buffers cannot be allocated. */
int engine_attention(float *out, const float *qkv, int n_seq, int seq_len, int dim,
                   int n_heads, int causal);

#endif
