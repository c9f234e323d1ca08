/* NumPy .npy reading: the float32/float16 matrices that numpy, clip-retrieval and
 * `vdx embed --format npy` write, memory-mapped and validated (untrusted input: the
 * header is parsed with bounds checks and the data size must match the shape exactly).
 * Format: "\x93NUMPY", major, minor, a little-endian header length (2 bytes in 1.0, 4 in
 * 2.0/3.0), then a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (1000, 512), } padded with spaces
 * and a newline; the data follow. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdx/ingest.h"
#include "common/half.h"

/* The value text after 'key': in the dict, or NULL. */
static const char *dict_value(const char *dict, const char *key)
{
    char quoted[32];
    for (int q = 0; q < 2; q++) {
        snprintf(quoted, sizeof quoted, q ? "\"%s\"" : "'%s'", key);
        const char *p = strstr(dict, quoted);
        if (p) {
            p += strlen(quoted);
            while (*p == ' ')
                p++;
            if (*p != ':')
                return NULL;
            p++;
            while (*p == ' ')
                p++;
            return p;
        }
    }
    return NULL;
}

static int parse_header(const char *path, const char *dict, vdx_npy *out, vdx_error *err)
{
    const char *descr = dict_value(dict, "descr");
    if (!descr || (*descr != '\'' && *descr != '"'))
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: the .npy header has no 'descr'", path);
    char dtype[16] = {0};
    size_t len = strcspn(descr + 1, "'\"");
    if (len >= sizeof dtype)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "%s: the .npy dtype is not float32 or float16", path);
    memcpy(dtype, descr + 1, len);
    if (!strcmp(dtype, "<f4"))
        out->f16 = 0;
    else if (!strcmp(dtype, "<f2"))
        out->f16 = 1;
    else
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "%s: dtype '%s' is not float32 or float16 ('<f4' or '<f2'): "
                             "convert with array.astype(numpy.float32)", path, dtype);
    const char *fortran = dict_value(dict, "fortran_order");
    if (!fortran || strncmp(fortran, "False", 5) != 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: the array is in Fortran order: save "
                             "numpy.ascontiguousarray(array)", path);
    const char *shape = dict_value(dict, "shape");
    if (!shape || *shape != '(')
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: the .npy header has no 'shape'", path);
    long long dims[3];
    int n = 0;
    const char *p = shape + 1;
    for (;;) {
        while (*p == ' ')
            p++;
        if (*p == ')')
            break;
        if (!isdigit((unsigned char)*p) || n == 3)
            return vdx_fail_kind(err, VDX_ERR_INVALID,
                                 "%s: shape %.*s is not [rows, dimension]", path,
                                 (int)strcspn(shape, ")") + 1, shape);
        errno = 0;
        char *end;
        dims[n++] = strtoll(p, &end, 10);
        if (errno)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: shape is too large", path);
        p = end;
        while (*p == ' ')
            p++;
        if (*p == ',')
            p++;
    }
    if (n == 1) {
        out->rows = 1;
        dims[1] = dims[0];
    } else if (n == 2)
        out->rows = dims[0];
    else
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "%s: a %d-dimensional array; expected [rows, dimension]", path, n);
    if (dims[1] < 1 || dims[1] > 65536)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "%s: dimension %lld is outside 1..65536", path, dims[1]);
    if (out->rows < 0 || out->rows > ((long long)1 << 40))
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "%s: %lld rows is out of range", path, (long long)out->rows);
    out->cols = (int)dims[1];
    return 0;
}

int vdx_npy_open(const char *path, vdx_npy *out, vdx_error *err)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vdx_fail_errno(err, errno, "%s: %s", path, strerror(errno));
    struct stat st;
    uint8_t pre[12];
    int rc = -1;
    if (fstat(fd, &st) != 0) {
        vdx_fail_errno(err, errno, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) { /* a directory opens too; mmap needs a regular file */
        vdx_fail_kind(err, VDX_ERR_INVALID, S_ISDIR(st.st_mode)
                                                ? "%s: a directory, not a .npy file"
                                                : "%s: not a regular file (a .npy file is "
                                                  "memory-mapped: save it to disk first)",
                      path);
        goto done;
    }
    if (st.st_size < 10 || pread(fd, pre, sizeof pre, 0) < 10 || memcmp(pre, "\x93NUMPY", 6)) {
        vdx_fail_kind(err, VDX_ERR_INVALID,
                      "%s: not a NumPy .npy file (no \\x93NUMPY magic)", path);
        goto done;
    }
    size_t header_len, start;
    if (pre[6] == 1) {
        header_len = pre[8] | (size_t)pre[9] << 8;
        start = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (st.st_size < 12) {
            vdx_fail_kind(err, VDX_ERR_INVALID, "%s: truncated .npy header", path);
            goto done;
        }
        header_len = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        start = 12;
    } else {
        vdx_fail_kind(err, VDX_ERR_INVALID,
                      "%s: .npy version %d.%d is not supported (1.0, 2.0, 3.0)", path, pre[6],
                      pre[7]);
        goto done;
    }
    if (header_len > 1 << 20 || start + header_len > (size_t)st.st_size) {
        vdx_fail_kind(err, VDX_ERR_INVALID,
                      "%s: the .npy header (%zu bytes) runs past the end of the file", path,
                      header_len);
        goto done;
    }
    char *dict = malloc(header_len + 1);
    if (!dict) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    if (pread(fd, dict, header_len, (off_t)start) != (ssize_t)header_len) {
        free(dict);
        vdx_fail(err, "%s: cannot read the .npy header", path);
        goto done;
    }
    dict[header_len] = 0;
    if (memchr(dict, 0, header_len)) {
        free(dict);
        vdx_fail_kind(err, VDX_ERR_INVALID, "%s: the .npy header holds a NUL byte", path);
        goto done;
    }
    rc = parse_header(path, dict, out, err);
    free(dict);
    if (rc != 0)
        goto done;
    rc = -1;
    size_t elem = out->f16 ? 2 : 4;
    unsigned long long want = (unsigned long long)out->rows * (unsigned long long)out->cols * elem;
    unsigned long long have = (unsigned long long)st.st_size - start - header_len;
    if (have != want) {
        vdx_fail_kind(err, VDX_ERR_INVALID,
                      "%s: shape (%lld, %d) needs %llu bytes of data, the file has %llu (%s)",
                      path, (long long)out->rows, out->cols, want, have,
                      have < want ? "truncated" : "trailing bytes");
        goto done;
    }
    out->map_size = (size_t)st.st_size;
    out->map = mmap(NULL, out->map_size, PROT_READ, MAP_SHARED, fd, 0);
    if (out->map == MAP_FAILED) {
        out->map = NULL;
        vdx_fail(err, "%s: cannot map: %s", path, strerror(errno));
        goto done;
    }
    madvise(out->map, out->map_size, MADV_SEQUENTIAL);
    out->data = (const uint8_t *)out->map + start + header_len;
    rc = 0;
done:
    close(fd);
    return rc;
}

void vdx_npy_close(vdx_npy *npy)
{
    if (npy->map)
        munmap(npy->map, npy->map_size);
    memset(npy, 0, sizeof *npy);
}

void vdx_npy_row(const vdx_npy *npy, int64_t row, float *out)
{
    size_t off = (size_t)row * (size_t)npy->cols;
    if (npy->f16) {
        const uint8_t *p = npy->data + off * 2;
        for (int i = 0; i < npy->cols; i++)
            out[i] = half_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
    } else
        memcpy(out, npy->data + off * 4, (size_t)npy->cols * sizeof(float));
}

int vdx_npy_check_row(const vdx_npy *npy, const char *path, int64_t row, vdx_error *err)
{
    float buf[1024];
    int nonzero = 0;
    for (int c0 = 0; c0 < npy->cols; c0 += 1024) {
        int n = npy->cols - c0 < 1024 ? npy->cols - c0 : 1024;
        size_t off = (size_t)row * (size_t)npy->cols + (size_t)c0;
        if (npy->f16) {
            const uint8_t *p = npy->data + off * 2;
            for (int i = 0; i < n; i++)
                buf[i] = half_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        } else
            memcpy(buf, npy->data + off * 4, (size_t)n * sizeof(float));
        for (int i = 0; i < n; i++) {
            if (!isfinite(buf[i]))
                return vdx_fail_kind(err, VDX_ERR_INVALID,
                                     "%s: row %lld, column %d is %s", path, (long long)row,
                                     c0 + i, isnan(buf[i]) ? "NaN" : "infinite");
            nonzero |= buf[i] != 0;
        }
    }
    if (!nonzero)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "%s: row %lld is all zeros (no direction to search by)", path,
                             (long long)row);
    return 0;
}
