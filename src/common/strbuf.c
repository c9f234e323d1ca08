/* The growable buffer (see strbuf.h). */
#include "common/strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_bytes(strbuf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if ((b->max && n > b->max - b->len) || n > SIZE_MAX / 2 - b->len) {
        b->oom = b->over = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->oom = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
}

void strbuf_put(strbuf *b, const char *s) { strbuf_bytes(b, s, strlen(s)); }

void strbuf_printf(strbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        strbuf_bytes(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    strbuf_bytes(b, big, (size_t)n);
    free(big);
}

char *strbuf_take(strbuf *b)
{
    size_t max = b->max;
    if (!b->oom && !b->data)
        strbuf_bytes(b, "", 0);
    char *s = b->oom ? NULL : b->data;
    if (!s)
        free(b->data);
    *b = (strbuf){.max = max};
    return s;
}

void strbuf_free(strbuf *b)
{
    free(b->data);
    *b = (strbuf){.max = b->max};
}
