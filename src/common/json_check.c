/* An allocation-free JSON syntax check with cJSON's rules, and the check of what a
 * user's JSON may not hold (see json_check.h). */
#include "common/json_check.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "vdx/common.h"

typedef struct cursor {
    const unsigned char *p, *end;
} cursor;

static void skip_space(cursor *c)
{
    while (c->p < c->end && *c->p <= 32)
        c->p++;
}

static int literal(cursor *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char h = p[i];
        v <<= 4;
        if (h >= '0' && h <= '9')
            v |= h - '0';
        else if (h >= 'a' && h <= 'f')
            v |= h - 'a' + 10;
        else if (h >= 'A' && h <= 'F')
            v |= h - 'A' + 10;
        else
            return 0;
    }
    *out = v;
    return 1;
}

static int string(cursor *c)
{
    c->p++; /* the opening quote */
    while (c->p < c->end && *c->p != '"') {
        if (*c->p != '\\') {
            c->p++;
            continue;
        }
        if (c->end - c->p < 2)
            return 0;
        unsigned char e = c->p[1];
        if (e != 'u') {
            if (!strchr("bfnrt\"\\/", e))
                return 0;
            c->p += 2;
            continue;
        }
        unsigned first, second;
        if (c->end - c->p < 6 || !hex4(c->p + 2, &first) || (first >= 0xDC00 && first <= 0xDFFF))
            return 0;
        c->p += 6;
        if (first >= 0xD800 && first <= 0xDBFF) { /* a high surrogate needs its low half */
            if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' ||
                !hex4(c->p + 2, &second) || second < 0xDC00 || second > 0xDFFF)
                return 0;
            c->p += 6;
        }
    }
    if (c->p >= c->end)
        return 0;
    c->p++;
    return 1;
}

static int number(cursor *c)
{
    char digits[64];
    size_t n = 0;
    while (c->p + n < c->end && n < sizeof digits - 1 && strchr("0123456789+-eE.", c->p[n]) &&
           c->p[n])
        n++;
    if (!n)
        return 0;
    memcpy(digits, c->p, n);
    digits[n] = 0;
    char *stop = NULL;
    strtod(digits, &stop);
    if (stop == digits)
        return 0;
    c->p += stop - digits;
    return 1;
}

static int value(cursor *c, int depth)
{
    if (c->p >= c->end)
        return 0;
    switch (*c->p) {
    case 'n': return literal(c, "null");
    case 't': return literal(c, "true");
    case 'f': return literal(c, "false");
    case '"': return string(c);
    case '[':
    case '{': {
        if (depth >= CJSON_NESTING_LIMIT)
            return 0;
        int object = *c->p == '{';
        unsigned char close = object ? '}' : ']';
        c->p++;
        skip_space(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 1;
        }
        for (;;) {
            skip_space(c);
            if (object) {
                if (c->p >= c->end || *c->p != '"' || !string(c))
                    return 0;
                skip_space(c);
                if (c->p >= c->end || *c->p != ':')
                    return 0;
                c->p++;
                skip_space(c);
            }
            if (!value(c, depth + 1))
                return 0;
            skip_space(c);
            if (c->p < c->end && *c->p == ',') {
                c->p++;
                continue;
            }
            if (c->p < c->end && *c->p == close) {
                c->p++;
                return 1;
            }
            return 0;
        }
    }
    default: return (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) && number(c);
    }
}

int json_text_is_valid(const char *text, size_t size)
{
    cursor c = {(const unsigned char *)text, (const unsigned char *)text + size};
    /* cJSON skips the mark only when the text has a byte past it and one more */
    if (size >= 5 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        c.p += 3;
    for (const unsigned char *q = c.p; q < c.end; q++)
        if (!*q) { /* cJSON stops at a NUL */
            c.end = q;
            break;
        }
    skip_space(&c);
    return value(&c, 0);
}

int json_text_clean(const char *text, size_t size, const char **what, size_t *offset)
{
    const char *raw_nul = memchr(text, 0, size);
    if (raw_nul) {
        *what = "holds a NUL byte";
        *offset = (size_t)(raw_nul - text);
        return -1;
    }
    if (vdx_utf8_check(text, size, offset) != 0) {
        *what = "is not valid UTF-8";
        return -1;
    }
    int in_string = 0;
    for (size_t i = 0; i < size; i++) {
        if (!in_string) {
            in_string = text[i] == '"';
            continue;
        }
        if (text[i] == '"') {
            in_string = 0;
        } else if (text[i] == '\\' && i + 1 < size) {
            if (text[i + 1] == 'u' && i + 5 < size && !strncmp(text + i + 2, "0000", 4)) {
                *what = "holds a NUL character (\\u0000) in a string";
                *offset = i;
                return -1;
            }
            i++; /* the escaped character */
        }
    }
    return 0;
}

void json_text_position(const char *text, size_t offset, int *line, size_t *column)
{
    *line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < offset; i++)
        if (text[i] == '\n') {
            (*line)++;
            line_start = i + 1;
        }
    *column = offset - line_start + 1;
}

cJSON *json_read_file(const char *path, vdx_error_kind kind, vdx_error *err)
{
    char *text;
    size_t size;
    if (vdx_read_file(path, &text, &size, err) != 0)
        return NULL;
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (!json) {
        if (json_text_is_valid(text, size)) {
            vdx_fail_oom(err, "reading %s", path);
        } else {
            size_t at = end && end >= text && end <= text + size ? (size_t)(end - text) : 0;
            int line;
            size_t column;
            json_text_position(text, at, &line, &column);
            vdx_fail_kind(err, kind, "%s: invalid JSON at line %d, column %zu (byte %zu)", path,
                          line, column, at);
        }
    }
    free(text);
    return json;
}
