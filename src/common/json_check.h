/* Module-private (src/common): cJSON returns NULL both for text that is not JSON and when
 * an allocation fails, and says nothing about which. json_text_is_valid() answers it
 * without allocating: when it accepts the text cJSON refused, the failure was memory,
 * and the caller reports VDX_ERR_NO_MEMORY instead of "invalid JSON". It follows what
 * cJSON accepts: a UTF-8 byte order mark, numbers as strtod reads them, \u escapes with
 * paired surrogates, nesting up to CJSON_NESTING_LIMIT, anything after the value. */
#ifndef VDX_COMMON_JSON_CHECK_H
#define VDX_COMMON_JSON_CHECK_H

#include <stddef.h>

#include "vdx/common.h"

int json_text_is_valid(const char *text, size_t size);

/* Whether text that is to be parsed as JSON holds what no JSON document from a user may:
 * a raw NUL byte, bytes that are not UTF-8, or a \u0000 escape inside a string (cJSON
 * decodes it into a NUL that cuts the string short: "REALID\u0000junk" would name
 * REALID). Returns 0 when it holds none; else -1 with *what saying which ("holds a NUL
 * byte", "is not valid UTF-8", "holds a NUL character (\u0000) in a string": the text
 * ...) and *offset the byte. */
int json_text_clean(const char *text, size_t size, const char **what, size_t *offset);

/* The line and column (1-based; the column counts bytes) of a byte offset of text, for
 * "invalid JSON at line L, column C (byte B)". */
void json_text_position(const char *text, size_t offset, int *line, size_t *column);

/* Reads the file at `path` and parses it as one JSON document (what follows the value is
 * not looked at, as cJSON_ParseWithLength). On failure NULL with err: the read's error,
 * VDX_ERR_NO_MEMORY when the text is valid JSON (cJSON's allocation failed), else `kind`
 * with "PATH: invalid JSON at line L, column C (byte B)", B where cJSON stopped. Thread-safe
 * (cJSON_GetErrorPtr is a global). The caller frees the document with cJSON_Delete. */
struct cJSON *json_read_file(const char *path, vdx_error_kind kind, vdx_error *err);

#endif
