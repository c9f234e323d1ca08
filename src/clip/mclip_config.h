/* Module-private (src/clip): config.json of an M-CLIP model directory (xlmr.c reads it
 * first; fuzz/fuzz_mclip_config.c fuzzes it). */
#ifndef VDX_CLIP_MCLIP_CONFIG_H
#define VDX_CLIP_MCLIP_CONFIG_H

#include "vdx/mclip.h"

/* The sizes config.json declares (0 where it names none): the checkpoint's tensors must
 * agree with each, or the load is refused (a checkpoint missing its last layer would
 * otherwise load and give other vectors). */
typedef struct mclip_declared {
    int dims, width;                                     /* numDims, transformerDimensions */
    int layers, hidden, vocab, positions, intermediate;  /* modelBaseConfig's */
} mclip_declared;

/* Reads the config.json at path into c (model_base, num_heads, layer_norm_eps; the sizes
 * are left to the tensor shapes) and d. Every size is checked against the limits of
 * include/vdx/clip.h (VDX_CLIP_MAX_*) and against the others it names; a refusal starts
 * with path and names the key (and the byte, for text that is not JSON). */
int mclip_config_load(const char *path, vdx_mclip_config *c, mclip_declared *d,
                      vdx_error *err);

#endif
