/* Shared conventions of the vdx library: error reporting and small helpers.
 *
 * Every fallible function takes a `vdx_error *` as its last argument, returns 0 (or a
 * non-NULL pointer) on success, and on failure returns -1 (or NULL) with a message that
 * says what went wrong and where (file, row, tensor, byte offset). `err` may be NULL. */
#ifndef VDX_COMMON_H
#define VDX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define VDX_ERROR_MAX 1024

typedef struct vdx_error {
    char message[VDX_ERROR_MAX];
} vdx_error;

/* Sets the message (printf-style). Returns -1 so callers can `return vdx_fail(err, ...)`. */
int vdx_fail(vdx_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends context: "CONTEXT: previous message". Returns -1. */
int vdx_error_prefix(vdx_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* IEEE half precision → float, exact (subnormals, infinities and NaN included). Shared
 * by the store's scan and the .npy reader. */
float vdx_f16_to_f32(uint16_t h);

/* Reads a whole file into a NUL-terminated malloc'd buffer. */
int vdx_read_file(const char *path, char **data, size_t *size, vdx_error *err);
/* Writes a file atomically (temp file + fsync + rename). */
int vdx_write_file_atomic(const char *path, const void *data, size_t size, vdx_error *err);
/* mkdir -p */
int vdx_mkdirs(const char *path, vdx_error *err);
/* Number of online cores (>= 1). */
int vdx_cpu_count(void);
/* Monotonic seconds. */
double vdx_now(void);
/* Hex SHA-256 of a buffer (65 bytes incl. NUL), computed with OpenSSL's libcrypto. */
void vdx_sha256_hex(const void *data, size_t size, char out[65]);

#endif
