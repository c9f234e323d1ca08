/* libFuzzer target for the M-CLIP config.json reader (src/clip/mclip_config.c), the first
 * file read from an M-CLIP model directory. The input goes through a memfd, since the
 * reader takes a path. A refusal must start with that path and ": ", and be valid UTF-8
 * when the input is. An accepted config must keep every size it declares inside the
 * CLIP limits of include/vdx/clip.h (0 where it declares none), heads dividing the width,
 * transformerDimensions equal to hidden_size when both are named, and a modelBase that
 * fits its buffer and stays UTF-8.
 * Built by scripts/build-fuzz.sh.
 * FUZZ_SOURCES: src/clip/mclip_config.c src/common/common.c src/common/json_check.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "clip/mclip_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int valid_utf8(const char *s)
{
    size_t n = strlen(s), bad;
    return vdx_utf8_check(s, n, &bad) == 0 || n == 0;
}

static void check_size(int v, int min, int max)
{
    if (v != 0 && (v < min || v > max))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("config.json", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    vdx_mclip_config c;
    mclip_declared d;
    vdx_error err = {{0}};
    int rc = mclip_config_load(path, &c, &d, &err);
    close(fd);
    size_t bad;
    int input_utf8 = vdx_utf8_check((const char *)data, size, &bad) == 0;
    if (rc != 0) {
        size_t len = strlen(path);
        if (strncmp(err.message, path, len) != 0 || strncmp(err.message + len, ": ", 2) != 0)
            abort(); /* a refusal names the file */
        if (input_utf8 && !valid_utf8(err.message))
            abort(); /* and stays UTF-8 (messages reach JSON replies) */
        return 0;
    }
    if (c.num_heads < 1 || c.num_heads > VDX_CLIP_MAX_WIDTH ||
        !(c.layer_norm_eps > 0 && c.layer_norm_eps < 1) ||
        memchr(c.model_base, 0, sizeof c.model_base) == NULL ||
        (input_utf8 && !valid_utf8(c.model_base)))
        abort();
    /* the sizes come from the tensor shapes: the reader leaves them to the loader */
    if (c.vocab_size || c.hidden_size || c.num_layers || c.intermediate_size ||
        c.max_position_embeddings || c.num_dims)
        abort();
    check_size(d.dims, 1, VDX_CLIP_MAX_WIDTH);
    check_size(d.width, 1, VDX_CLIP_MAX_WIDTH);
    check_size(d.hidden, 1, VDX_CLIP_MAX_WIDTH);
    check_size(d.intermediate, 1, VDX_CLIP_MAX_WIDTH);
    check_size(d.layers, 1, VDX_CLIP_MAX_LAYERS);
    check_size(d.vocab, 4, VDX_CLIP_MAX_VOCAB);
    check_size(d.positions, 3, VDX_CLIP_MAX_POSITIONS);
    if (d.width && d.hidden && d.width != d.hidden)
        abort();
    if ((d.width && d.width % c.num_heads) || (d.hidden && d.hidden % c.num_heads))
        abort();
    return 0;
}
