/* Module-private (src/common): user text echoed in messages. A message quotes what was
 * wrong (a filter, an id, a token), but that text can be megabytes, and a vdx_error holds
 * 1 KiB: the quote is cut, and cut between characters, so a message about valid UTF-8 stays
 * valid UTF-8 (messages reach JSON replies). */
#ifndef VDX_COMMON_TEXT_H
#define VDX_COMMON_TEXT_H

#include <stddef.h>

/* The length of the longest prefix of s[0..len) of at most max bytes that does not end
 * inside a UTF-8 character (len itself when len <= max). */
size_t utf8_prefix(const char *s, size_t len, size_t max);

#endif
