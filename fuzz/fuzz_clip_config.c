/* libFuzzer target for the CLIP config.json reader (src/clip/config.c), the first file read
 * from a model directory downloaded from the Hugging Face hub. The input goes through a
 * memfd, since the reader takes a path. A refusal must start with that path and ": ", and be
 * valid UTF-8 when the input is. An accepted config must keep every size inside the limits
 * vdx_clip_config_load documents (include/vdx/clip.h), consistent with each other (heads
 * divide the width, the patch divides the image, at most 256 patches a side), so that the
 * loader's allocations and the forward passes' int products cannot overflow: the target
 * recomputes the products the model code forms in int and checks they fit.
 * Built by scripts/build-fuzz.sh.
 * FUZZ_SOURCES: src/clip/config.c src/common/common.c src/common/json_check.c */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vdx/clip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_tower(const vdx_clip_tower_config *t, int vision)
{
    if (t->hidden_size < 1 || t->hidden_size > VDX_CLIP_MAX_WIDTH ||
        t->intermediate_size < 1 || t->intermediate_size > VDX_CLIP_MAX_WIDTH ||
        t->num_heads < 1 || t->hidden_size % t->num_heads != 0 || t->num_layers < 1 ||
        t->num_layers > VDX_CLIP_MAX_LAYERS || !(t->layer_norm_eps > 0 && t->layer_norm_eps < 1) ||
        (t->hidden_act_quick_gelu != 0 && t->hidden_act_quick_gelu != 1))
        abort();
    if (vision) {
        if (t->patch_size < 1 || t->image_size < t->patch_size ||
            t->image_size > VDX_CLIP_MAX_IMAGE_SIZE || t->image_size % t->patch_size != 0 ||
            t->num_channels < 1 || t->num_channels > VDX_CLIP_MAX_CHANNELS)
            abort();
        long long grid = t->image_size / t->patch_size, tokens = grid * grid + 1;
        long long patch_len = (long long)t->num_channels * t->patch_size * t->patch_size;
        if (grid > VDX_CLIP_MAX_GRID || tokens * 64 > INT_MAX || patch_len > INT_MAX)
            abort(); /* model.c: tokens, rows = batch * tokens, ch * p * p are ints */
    } else if (t->vocab_size < 1 || t->vocab_size > VDX_CLIP_MAX_VOCAB ||
               t->max_position_embeddings < 2 ||
               t->max_position_embeddings > VDX_CLIP_MAX_POSITIONS) {
        abort();
    }
}

static int valid_utf8(const char *s)
{
    size_t n = strlen(s), bad;
    return vdx_utf8_check(s, n, &bad) == 0 || n == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("config.json", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    vdx_clip_config cfg;
    vdx_error err = {{0}};
    int rc = vdx_clip_config_load(path, &cfg, &err);
    close(fd);
    if (rc != 0) {
        size_t len = strlen(path), bad;
        if (strncmp(err.message, path, len) != 0 || strncmp(err.message + len, ": ", 2) != 0)
            abort(); /* a refusal names the file */
        if (vdx_utf8_check((const char *)data, size, &bad) == 0 && !valid_utf8(err.message))
            abort(); /* and stays UTF-8 (messages reach JSON replies) */
        return 0;
    }
    if (cfg.projection_dim < 1 || cfg.projection_dim > VDX_CLIP_MAX_WIDTH)
        abort();
    check_tower(&cfg.vision, 1);
    check_tower(&cfg.text, 0);
    return 0;
}
