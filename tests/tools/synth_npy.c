/* synth_npy: writes synthetic CLIP-like vectors (tests/support/synth.h) as a NumPy .npy
 * matrix plus an id file, for `vdx ingest vectors` tests and for loading millions of
 * vectors into a benchmark collection.
 *   usage: synth_npy OUT.npy IDS.txt N [--first I] [--f16] [--texts] [--nan-row R]
 *                    [--synth-NAME=VALUE...]
 * Rows are images first..first+N-1 (ids "iK"), or with --texts captions of those images
 * (query files). --nan-row R puts a NaN in row R (for the refusal tests). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/synth.h"
#include "store/scan.h"

int main(int argc, char **argv)
{
    synth_params p;
    synth_defaults(&p);
    long long n = -1, first = 0, nan_row = -1;
    int f16 = 0, texts = 0;
    const char *out = NULL, *ids = NULL;
    char err[256];
    for (int i = 1; i < argc; i++) {
        int r = synth_parse_flag(&p, argv[i], err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "synth_npy: %s\n", err);
            return 2;
        }
        if (r)
            continue;
        if (!strcmp(argv[i], "--f16"))
            f16 = 1;
        else if (!strcmp(argv[i], "--texts"))
            texts = 1;
        else if (!strcmp(argv[i], "--first") && i + 1 < argc)
            first = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--nan-row") && i + 1 < argc)
            nan_row = atoll(argv[++i]);
        else if (!out)
            out = argv[i];
        else if (!ids)
            ids = argv[i];
        else if (n < 0)
            n = atoll(argv[i]);
        else {
            fprintf(stderr, "synth_npy: unexpected '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!out || !ids || n < 1) {
        fprintf(stderr, "usage: synth_npy OUT.npy IDS.txt N [--first I] [--f16] [--texts] "
                        "[--nan-row R] [--synth-NAME=VALUE...]\n");
        return 2;
    }
    synth *s = synth_new(&p, err, sizeof err);
    if (!s) {
        fprintf(stderr, "synth_npy: %s\n", err);
        return 2;
    }
    FILE *f = fopen(out, "wb"), *fi = fopen(ids, "w");
    if (!f || !fi) {
        perror("synth_npy");
        return 1;
    }
    char header[128];
    int len = snprintf(header, sizeof header,
                       "{'descr': '<f%d', 'fortran_order': False, 'shape': (%lld, %d), }",
                       f16 ? 2 : 4, n, p.dim);
    int pad = (64 - (10 + len + 1) % 64) % 64;
    unsigned hl = (unsigned)(len + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc((int)(hl & 0xff), f);
    fputc((int)(hl >> 8), f);
    fwrite(header, 1, (size_t)len, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    float *v = malloc(sizeof(float) * (size_t)p.dim);
    uint16_t *h = malloc(sizeof(uint16_t) * (size_t)p.dim);
    for (long long r = 0; r < n; r++) {
        if (texts)
            synth_text_for_item(s, (uint64_t)(first + r), 0, v);
        else
            synth_image(s, (uint64_t)(first + r), v);
        if (r == nan_row)
            v[p.dim / 2] = NAN;
        if (f16) {
            half_f32_to_f16_array(v, h, (size_t)p.dim);
            fwrite(h, 2, (size_t)p.dim, f);
        } else
            fwrite(v, 4, (size_t)p.dim, f);
        fprintf(fi, "i%lld\n", first + r);
    }
    free(v);
    free(h);
    synth_free(s);
    int bad = ferror(f) || ferror(fi);
    bad |= fclose(f) != 0;
    bad |= fclose(fi) != 0;
    if (bad) {
        fprintf(stderr, "synth_npy: writing %s failed\n", out);
        return 1;
    }
    return 0;
}
