/* Error messages, file helpers and clocks shared by every vdx module. Kept tiny on
 * purpose: anything domain-specific belongs to its own subsystem. */
#include "vdx/common.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int vdx_fail(vdx_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return -1;
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

int vdx_read_file(const char *path, char **data, size_t *size, vdx_error *err)
{
    *data = NULL;
    if (size)
        *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return vdx_fail(err, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return vdx_fail(err, "%s: out of memory", path);
    }
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2 + 1);
            if (!bigger) {
                free(buf);
                fclose(f);
                return vdx_fail(err, "%s: out of memory", path);
            }
            buf = bigger;
            cap *= 2;
        }
    }
    int failed = ferror(f) ? errno : 0;
    fclose(f);
    if (failed) {
        free(buf);
        return vdx_fail(err, "%s: read error after %zu bytes: %s", path, len, strerror(failed));
    }
    buf[len] = 0;
    *data = buf;
    if (size)
        *size = len;
    return 0;
}

int vdx_write_file_atomic(const char *path, const void *data, size_t size, vdx_error *err)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return vdx_fail(err, "path too long (%zu bytes) for its temporary file: %s",
                        strlen(path), path); /* the reason first: the path fills the message */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return vdx_fail(err, "%s: cannot create: %s", path, strerror(errno));
    const char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return vdx_fail(err, "%s: write failed: %s", path, strerror(e));
        }
        p += n;
        size -= (size_t)n;
    }
    int flush_error = fsync(fd) != 0 ? errno : 0;
    if (close(fd) != 0 && !flush_error)
        flush_error = errno;
    if (flush_error) {
        unlink(tmp);
        return vdx_fail(err, "%s: cannot flush: %s", path, strerror(flush_error));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return vdx_fail(err, "%s: cannot rename into place: %s", path, strerror(e));
    }
    return 0;
}

int vdx_mkdirs(const char *path, vdx_error *err)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return vdx_fail(err, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return vdx_fail(err, "%s: cannot create directory: %s", buf, strerror(errno));
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

double vdx_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void vdx_sha256_hex(const void *data, size_t size, char out[65])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(data, size, digest);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

float vdx_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        float f = (float)mant * (1.0f / 16777216.0f); /* mant * 2^-24, exact */
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (mant << 13);
    else
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
