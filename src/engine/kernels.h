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
 * count is per calling thread). A narrow short pass — at most ENGINE_FEW_ROWS rows of at
 * most ENGINE_NARROW values: a CLIP ViT-B/32 prompt — runs on the calling thread alone;
 * everything else uses engine_threads(). Measured on a 2-core EPYC Zen4 under a load of
 * about 2 (bench_clip, bench_mclip; docs/clip-engine.md, "Threads"): a 77-token CLIP
 * prompt takes 61 ms on one thread and 101 ms on two (about 100 short parallel regions,
 * and libgomp's idle workers spin between them), while one image (50 rows × 768) takes
 * 102 ms on one and 49 on two, and a 16-token prompt through XLM-R Large (1024 wide,
 * memory-bound: two cores read twice as fast) 151 ms on one and 79 on two. */
#define ENGINE_FEW_ROWS 77
#define ENGINE_NARROW 512
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
