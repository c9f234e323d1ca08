/* Module-private (src/common): cJSON returns NULL both for text that is not JSON and when
 * an allocation fails, and says nothing about which. json_text_is_valid() answers it
 * without allocating: when it accepts the text cJSON refused, the failure was memory,
 * and the caller reports VDX_ERR_NO_MEMORY instead of "invalid JSON". It follows what
 * cJSON accepts: a UTF-8 byte order mark, numbers as strtod reads them, \u escapes with
 * paired surrogates, nesting up to CJSON_NESTING_LIMIT, anything after the value. */
#ifndef VDX_COMMON_JSON_CHECK_H
#define VDX_COMMON_JSON_CHECK_H

#include <stddef.h>

int json_text_is_valid(const char *text, size_t size);

#endif
