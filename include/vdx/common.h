/* Shared conventions of the vdx library: error reporting and small helpers.
 *
 * Every fallible function takes a `vdx_error *` as its last argument, returns 0 (or a
 * non-NULL pointer) on success, and on failure returns -1 (or NULL) with a message that
 * says what went wrong and where (file, row, tensor, byte offset), and a kind that says
 * what sort of failure it is. Callers decide by the kind (the server's HTTP status, the
 * CLI's exit status), never by the message, which is for people. `err` may be NULL. */
#ifndef VDX_COMMON_H
#define VDX_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* The one version of vdx: `vdx --version`, the HTTP User-Agent, the man page. */
#define VDX_VERSION "0.1.0"

#define VDX_ERROR_MAX 1024

/* What sort of failure an error is; set where the error is raised. The server maps it to
 * an HTTP status and the CLI to an exit status with one table each (docs/api.md, vdx(1)).
 * New kinds go at the end: the numbers are part of the API. */
typedef enum vdx_error_kind {
    VDX_ERR_INTERNAL = 0,   /* not classified: a bug, or nothing a caller can act on */
    VDX_ERR_INVALID,        /* the caller's input is wrong: an argument, a filter, a file */
    VDX_ERR_NOT_FOUND,      /* no such item, concept, collection, model or file */
    VDX_ERR_CONFLICT,       /* the state forbids it: name taken, nothing to undo, locked */
    VDX_ERR_MODEL_MISMATCH, /* vectors or a classifier of another model */
    VDX_ERR_IO,             /* reading or writing a file, the network, a server */
    VDX_ERR_NO_SPACE,       /* the disk (or quota) is full */
    VDX_ERR_NO_MEMORY,      /* an allocation failed */
    VDX_ERR_CORRUPT,        /* stored data contradicts itself: a damaged file or database */
} vdx_error_kind;
#define VDX_ERR_KIND_COUNT 9

typedef struct vdx_error {
    char message[VDX_ERROR_MAX];
    vdx_error_kind kind;
} vdx_error;

/* Sets the message (printf-style) with the kind VDX_ERR_INTERNAL. Returns -1 so callers
 * can `return vdx_fail(err, ...)`. */
int vdx_fail(vdx_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with a kind. */
int vdx_fail_kind(vdx_error *err, vdx_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with the kind an errno value means: ENOSPC/EDQUOT → NO_SPACE, ENOMEM → NO_MEMORY,
 * ENOENT/ENOTDIR → NOT_FOUND, anything else → IO. The message should name strerror(errnum). */
int vdx_fail_errno(vdx_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "out of memory" + " " + what (e.g. "for 512 vectors"), with the kind NO_MEMORY. */
int vdx_fail_oom(vdx_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends context: "CONTEXT: previous message". Keeps the kind. Returns -1. */
int vdx_error_prefix(vdx_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copies src (message and kind) into dst; either may be NULL. Returns -1. */
int vdx_error_copy(vdx_error *dst, const vdx_error *src);
/* A stable lower-case name of a kind for programs: "internal", "invalid", "not_found",
 * "conflict", "model_mismatch", "io", "no_space", "no_memory", "corrupt". */
const char *vdx_error_kind_name(vdx_error_kind kind);


/* Reads a whole file into a NUL-terminated malloc'd buffer. */
int vdx_read_file(const char *path, char **data, size_t *size, vdx_error *err);
/* The same for a file that must be a regular file of at most max_size bytes: a FIFO (which
 * would block), a device (/dev/zero never ends) or a larger file is refused with
 * VDX_ERR_INVALID, naming the path, before anything is read. */
int vdx_read_file_at_most(const char *path, size_t max_size, char **data, size_t *size,
                          vdx_error *err);

/* Percent-decodes `in` (RFC 3986; no '+' rule: that is for query strings) into a malloc'd
 * string; NULL when an escape is malformed or decodes to a NUL byte. */
char *vdx_percent_decode(const char *in);

/* Whether the n bytes at s are valid UTF-8 (shortest forms, no surrogates, at most
 * U+10FFFF) without a NUL byte: 0, else -1 with the offset of the first bad byte. */
int vdx_utf8_check(const char *s, size_t n, size_t *bad_offset);
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
