/* libFuzzer target for the .npy reader (src/ingest/npy.c), the input of `vdx ingest
 * vectors` and `vdx search --vector`: any byte string is either refused with a message or
 * gives a matrix whose every row lies inside the file; every row of an accepted file is
 * widened and checked (NaN, zeros) so ASan sees each byte the shape claims. The input goes
 * through a memfd, since the reader maps a path. Built by scripts/build-fuzz.sh.
 * FUZZ_SOURCES: src/common/common.c src/common/half.c src/ingest/npy.c */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vdx/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz.npy", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    vdx_npy npy;
    vdx_error err = {{0}};
    if (vdx_npy_open(path, &npy, &err) != 0) {
        if (!err.message[0])
            abort(); /* a refusal always says why */
        close(fd);
        return 0;
    }
    size_t elem = npy.f16 ? 2 : 4;
    if (npy.data < (const uint8_t *)npy.map ||
        npy.data + (size_t)npy.rows * (size_t)npy.cols * elem > (const uint8_t *)npy.map + size)
        abort();
    float *row = malloc((size_t)npy.cols * sizeof *row);
    for (int64_t r = 0; r < npy.rows && r < 4096; r++) {
        vdx_npy_row(&npy, r, row);
        vdx_npy_check_row(&npy, "fuzz.npy", r, &err);
    }
    free(row);
    vdx_npy_close(&npy);
    close(fd);
    return 0;
}
