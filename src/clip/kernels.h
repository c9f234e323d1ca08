/* The numeric kernels of the CLIP towers (src/clip/kernels.c): matrix products through
 * OpenBLAS, LayerNorm, activations, attention, and a small pthread fork-join used to
 * spread row- and head-parallel loops over the cores. Private to src/clip/. */
#ifndef VDX_CLIP_KERNELS_H
#define VDX_CLIP_KERNELS_H

/* Threads used by the kernels' own parallel loops and by OpenBLAS (>= 1). */
void clip_kernels_set_threads(int threads);
int clip_kernels_threads(void);

/* A forward pass over at most 24 rows (a text prompt) may run its parallel calls on a
 * team: helper threads started once for the pass instead of once per call. Begin and
 * end on the same thread; NULL (no team: each call starts its own threads) for larger
 * passes, one thread, or when threads cannot be started. clip_team_end(NULL) is a no-op. */
typedef struct clip_team clip_team;
clip_team *clip_team_begin(int rows);
void clip_team_end(clip_team *team);

/* out[m][n] = sum_k x[m][k] * w[n][k] (+ bias[n] when bias != NULL): a Linear layer
 * with PyTorch's [out, in] weight layout. */
void clip_linear(float *out, const float *x, const float *w, const float *bias, int m, int n,
                 int k);
/* h[m][n] += sum_k x[m][k] * w[n][k] + bias[n]: a Linear layer added to the residual. */
void clip_linear_residual(float *h, const float *x, const float *w, const float *bias,
                          int m, int n, int k);

/* Per row of `dim` values: (x - mean) / sqrt(var + eps) * gamma + beta, with the mean
 * and the biased variance accumulated in double. out may equal in. */
void clip_layer_norm(float *out, const float *in, const float *gamma, const float *beta,
                     int rows, int dim, double eps);

typedef enum { CLIP_ACT_QUICK_GELU, CLIP_ACT_GELU } clip_activation;
/* x[r][c] = act(x[r][c] + bias[c]) over rows x cols, in place. */
void clip_bias_activation(float *x, const float *bias, int rows, int cols,
                          clip_activation act);

/* Multi-head self-attention over n_seq independent sequences of seq_len tokens.
 * qkv holds, per token, the query, key and value projections side by side
 * ([n_seq*seq_len][3*dim], heads of head_dim = dim/n_heads inside each); out gets the
 * per-head softmax(q·kᵀ/√head_dim (+ causal mask)) · v, heads concatenated
 * ([n_seq*seq_len][dim]). Returns -1 when its score buffers cannot be allocated. */
int clip_attention(float *out, const float *qkv, int n_seq, int seq_len, int dim,
                   int n_heads, int causal);

#endif
