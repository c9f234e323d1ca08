/* Error messages, file helpers and clocks shared by every vdx module. Kept tiny on
 * purpose: anything domain-specific belongs to its own subsystem. */
#include <ctype.h>
#include "vdx/common.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/file.h"
#include "common/text.h"

int vdx_fail(vdx_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->kind = VDX_ERR_INTERNAL;
    }
    return -1;
}

int vdx_fail_kind(vdx_error *err, vdx_error_kind kind, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->kind = kind;
    }
    return -1;
}

static vdx_error_kind kind_of_errno(int errnum)
{
    switch (errnum) {
    case ENOSPC:
    case EDQUOT: return VDX_ERR_NO_SPACE;
    case ENOMEM: return VDX_ERR_NO_MEMORY;
    case ENOENT:
    case ENOTDIR: return VDX_ERR_NOT_FOUND;
    case EISDIR: return VDX_ERR_INVALID; /* a directory given where a file belongs */
    default: return VDX_ERR_IO;
    }
}

int vdx_fail_errno(vdx_error *err, int errnum, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->kind = kind_of_errno(errnum);
    }
    return -1;
}

int vdx_fail_oom(vdx_error *err, const char *fmt, ...)
{
    if (err) {
        char what[VDX_ERROR_MAX - 16];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(err->message, sizeof err->message, "out of memory%s%s", *what ? " " : "", what);
        err->kind = VDX_ERR_NO_MEMORY;
    }
    return -1;
}

int vdx_error_copy(vdx_error *dst, const vdx_error *src)
{
    if (dst && src && dst != src) {
        memcpy(dst->message, src->message, sizeof dst->message);
        dst->kind = src->kind;
    }
    return -1;
}

const char *vdx_error_kind_name(vdx_error_kind kind)
{
    static const char *const names[VDX_ERR_KIND_COUNT] = {
        [VDX_ERR_INTERNAL] = "internal",       [VDX_ERR_INVALID] = "invalid",
        [VDX_ERR_NOT_FOUND] = "not_found",     [VDX_ERR_CONFLICT] = "conflict",
        [VDX_ERR_MODEL_MISMATCH] = "model_mismatch", [VDX_ERR_IO] = "io",
        [VDX_ERR_NO_SPACE] = "no_space",       [VDX_ERR_NO_MEMORY] = "no_memory",
        [VDX_ERR_CORRUPT] = "corrupt",
    };
    return (unsigned)kind < VDX_ERR_KIND_COUNT ? names[kind] : "internal";
}

int vdx_error_prefix(vdx_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[VDX_ERROR_MAX], old[VDX_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    snprintf(err->message, sizeof err->message, "%s: %s", prefix, old);
    return -1;
}

int file_open_stat(const char *path, int flags, struct stat *st, vdx_error *err)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return vdx_fail_errno(err, errno, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return vdx_fail_errno(err, e, "%s: cannot stat: %s", path, strerror(e));
    }
    return fd;
}

/* Reads f to its end (no more than max bytes: more is refused), then closes it. */
static int read_stream(FILE *f, const char *path, size_t max, char **data, size_t *size,
                       vdx_error *err)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len > max) {
            free(buf);
            fclose(f);
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: more than %zu bytes", path, max);
        }
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2 + 1);
            if (!bigger) {
                free(buf);
                fclose(f);
                return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", path);
            }
            buf = bigger;
            cap *= 2;
        }
    }
    int failed = ferror(f) ? errno : 0;
    fclose(f);
    if (failed) {
        free(buf);
        return vdx_fail_errno(err, failed, "%s: read error after %zu bytes: %s", path, len, strerror(failed));
    }
    buf[len] = 0;
    *data = buf;
    if (size)
        *size = len;
    return 0;
}

int vdx_read_file(const char *path, char **data, size_t *size, vdx_error *err)
{
    *data = NULL;
    if (size)
        *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return vdx_fail_errno(err, errno, "%s: cannot open: %s", path, strerror(errno));
    return read_stream(f, path, SIZE_MAX - 1, data, size, err);
}

int vdx_read_file_at_most(const char *path, size_t max_size, char **data, size_t *size,
                          vdx_error *err)
{
    *data = NULL;
    if (size)
        *size = 0;
    /* non-blocking, so opening a FIFO returns at once and fstat can refuse it */
    struct stat st;
    int fd = file_open_stat(path, O_RDONLY | O_NONBLOCK, &st, err);
    if (fd < 0)
        return -1;
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: not a regular file (a %s)", path,
                             S_ISDIR(st.st_mode)    ? "directory"
                             : S_ISFIFO(st.st_mode) ? "FIFO"
                             : S_ISCHR(st.st_mode)  ? "character device"
                             : S_ISBLK(st.st_mode)  ? "block device"
                                                    : "socket");
    }
    if ((unsigned long long)st.st_size > max_size) {
        close(fd);
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: %lld bytes, more than the %zu allowed",
                             path, (long long)st.st_size, max_size);
    }
    int flags = fcntl(fd, F_GETFL);
    FILE *f = flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return vdx_fail_errno(err, e, "%s: cannot open: %s", path, strerror(e));
    }
    return read_stream(f, path, max_size, data, size, err); /* a file that grows: refused */
}

int vdx_write_file_atomic(const char *path, const void *data, size_t size, vdx_error *err)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return vdx_fail(err, "path too long (%zu bytes) for its temporary file: %s",
                        strlen(path), path); /* the reason first: the path fills the message */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return vdx_fail_errno(err, errno, "%s: cannot create: %s", path, strerror(errno));
    const char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return vdx_fail_errno(err, e, "%s: write failed: %s", path, strerror(e));
        }
        p += n;
        size -= (size_t)n;
    }
    int flush_error = fsync(fd) != 0 ? errno : 0;
    if (close(fd) != 0 && !flush_error)
        flush_error = errno;
    if (flush_error) {
        unlink(tmp);
        return vdx_fail_errno(err, flush_error, "%s: cannot flush: %s", path, strerror(flush_error));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return vdx_fail_errno(err, e, "%s: cannot rename into place: %s", path, strerror(e));
    }
    return 0;
}

int vdx_mkdirs(const char *path, vdx_error *err)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return vdx_fail_errno(err, errno, "%s: cannot create directory: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    return 0;
}

int vdx_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void vdx_sha256_hex(const void *data, size_t size, char out[65])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(data, size, digest);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

int vdx_utf8_check(const char *text, size_t n, size_t *bad_offset)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t extra = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2
                     : c >= 0xF0 && c <= 0xF4 ? 3 : 4;
        if (c == 0 || extra == 4 || i + extra >= n + (extra ? 0 : 1))
            goto bad;
        for (size_t k = 1; k <= extra; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                goto bad;
        /* overlong 3- and 4-byte forms, UTF-16 surrogates, beyond U+10FFFF */
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0) ||
            (c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] >= 0x90))
            goto bad;
        i += extra + 1;
    }
    return 0;
bad:
    if (bad_offset)
        *bad_offset = i;
    return -1;
}

size_t utf8_prefix(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) /* s[n] continues a character */
        n--;
    return n;
}

char *vdx_percent_decode(const char *in)
{
    size_t n = strlen(in);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] != '%') {
            out[j++] = in[i];
            continue;
        }
        char hex[3] = {in[i + 1], in[i + 1] ? in[i + 2] : 0, 0};
        long value = strtol(hex, NULL, 16);
        if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]) || value == 0) {
            free(out);
            return NULL;
        }
        out[j++] = (char)value;
        i += 2;
    }
    out[j] = 0;
    return out;
}
