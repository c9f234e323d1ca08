/* libFuzzer target for the pure parts of the server's request policy (src/server/http.c)
 * and of its JSON body check (src/common/json_check.c):
 *   - the loopback Host check (DNS-rebinding defence): the first input byte is even;
 *     the next three choose the server's port, TLS and bound literal, the rest is the Host
 *     header. Its verdict must equal a reference written here from the rule in docs/api.md
 *     (one of localhost, 127.0.0.1, [::1] or the bound literal, any case, then ":PORT" with
 *     1-5 digits naming the server's port, or nothing when the port is the scheme's default),
 *     so "127.0.0.1.attacker.example" or "localhost:80@evil" can never pass;
 *   - json_text_clean, what every JSON body and classifier import passes first: the first
 *     byte is odd, the rest is the body. Its verdict and offset must equal references
 *     written here their own way: the first raw NUL byte; else the start of the first
 *     sequence that does not decode to a Unicode scalar value in its shortest form (decoded
 *     arithmetically, not by byte ranges); else the first \u0000 escape inside a string
 *     (tracking strings by counting the backslashes before each quote).
 * Built by scripts/build-fuzz.sh.
 * FUZZ_SOURCES: src/server/http.c src/common/json_check.c src/common/common.c src/common/clock.c src/common/strbuf.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/json_check.h"
#include "server/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int reference_host(const char *host, int port, int tls, const char *bound)
{
    const char *names[] = {"localhost", "127.0.0.1", "[::1]", bound};
    for (int i = 0; i < 4; i++) {
        size_t len = strlen(names[i]);
        if (strncasecmp(host, names[i], len) != 0)
            continue;
        const char *rest = host + len;
        if (!*rest)
            return port == (tls ? 443 : 80);
        if (*rest != ':')
            continue;
        size_t digits = strlen(rest + 1);
        if (digits < 1 || digits > 5 || strspn(rest + 1, "0123456789") != digits)
            continue;
        if (atoi(rest + 1) == port)
            return 1;
    }
    return 0;
}

/* Whether position i (a backslash) is escaped: an odd number of backslashes before it. */
static int escaped(const char *t, size_t i)
{
    size_t k = 0;
    while (k < i && t[i - 1 - k] == '\\')
        k++;
    return k % 2 == 1;
}

static long reference_nul(const char *t, size_t n)
{
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '"' && (!in_string || !escaped(t, i)))
            in_string = !in_string;
        else if (in_string && t[i] == '\\' && !escaped(t, i) && i + 5 < n &&
                 !memcmp(t + i + 1, "u0000", 5))
            return (long)i;
    }
    return -1;
}

/* The start of the first byte sequence of t that is not UTF-8 (RFC 3629), or -1. */
static long reference_utf8(const unsigned char *t, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = t[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n)
            return (long)i;
        unsigned long cp = len == 1 ? c : c & (0x7F >> len);
        for (size_t k = 1; k < len; k++) {
            if ((t[i + k] >> 6) != 2)
                return (long)i;
            cp = cp << 6 | (t[i + k] & 0x3F);
        }
        static const unsigned long shortest[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < shortest[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return (long)i;
        i += len;
    }
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] % 2 == 0) {
        if (size < 4)
            return 0;
        static const char *const bounds[] = {"127.0.0.1", "127.0.0.2", "[::1]", "localhost"};
        int port = 1 + (int)(((unsigned)data[1] << 8 | data[2]) % 65535);
        if (data[3] & 2)
            port = data[3] & 4 ? 443 : 80; /* reach the default-port rule often */
        int tls = data[3] & 1;
        const char *bound = bounds[(data[3] >> 3) % 4];
        char *host = malloc(size - 3);
        memcpy(host, data + 4, size - 4);
        host[size - 4] = 0; /* a header value ends at its first NUL */
        int got = http_host_is_loopback(host, port, tls, bound);
        if (got != reference_host(host, port, tls, bound))
            abort();
        free(host);
        return 0;
    }
    size_t n = size - 1;
    char *text = malloc(n ? n : 1);
    memcpy(text, data + 1, n); /* exactly n bytes: ASan sees any read past them */
    const char *what = NULL;
    size_t offset = 0;
    int got = json_text_clean(text, n, &what, &offset);
    const char *raw_nul = memchr(text, 0, n);
    long bad_utf8 = reference_utf8((const unsigned char *)text, n), nul = reference_nul(text, n);
    if (raw_nul) {
        if (got != -1 || strcmp(what, "holds a NUL byte") || offset != (size_t)(raw_nul - text))
            abort();
    } else if (bad_utf8 >= 0) {
        if (got != -1 || strcmp(what, "is not valid UTF-8") || offset != (size_t)bad_utf8)
            abort();
    } else if (nul >= 0) {
        if (got != -1 || strncmp(what, "holds a NUL character", 21) || offset != (size_t)nul ||
            memcmp(text + offset, "\\u0000", 6) != 0)
            abort();
    } else if (got != 0) {
        abort();
    }
    free(text);
    return 0;
}
