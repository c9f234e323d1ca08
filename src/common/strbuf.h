/* Module-private (src/common): the one growable byte buffer of the library (SQL and
 * RowBinary for ClickHouse, export files, HTTP bodies). Always NUL-terminated; grows by
 * doubling; printf never truncates. Errors are sticky: once an allocation fails, or the
 * optional size cap would be passed, `oom` is set and later writes do nothing, so a
 * caller checks once at the end. */
#ifndef VDX_COMMON_STRBUF_H
#define VDX_COMMON_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *data;
    size_t len, cap;
    size_t max; /* 0: no cap; else len never exceeds it (then `over` and `oom` are set) */
    int oom;    /* a write failed: out of memory, or over the cap */
    int over;   /* the write that failed would have passed `max` */
} strbuf;

void strbuf_bytes(strbuf *b, const void *data, size_t n);
void strbuf_put(strbuf *b, const char *s);
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Takes the NUL-terminated text out of the buffer (NULL after a failed write); the buffer
 * is empty afterwards (its cap kept). */
char *strbuf_take(strbuf *b);
void strbuf_free(strbuf *b);

#endif
