/* Test and bench support: one HTTP request with libcurl, the whole answer kept (status,
 * body, headers, the server's Server-Timing). Used by tests/test_server.c and
 * bench/bench_server.c; compiled from tests/support/ into every test and bench. */
#ifndef VDX_TEST_SUPPORT_HTTP_CLIENT_H
#define VDX_TEST_SUPPORT_HTTP_CLIENT_H

#include <curl/curl.h>
#include <stddef.h>

typedef struct support_reply {
    long status;       /* 0: no answer (the transfer failed: see curl_code) */
    CURLcode curl_code;
    char *body;        /* NUL-terminated, never NULL after support_request */
    size_t size;
    char headers[4096];/* as received, truncated */
    double server_ms;  /* Server-Timing: app;dur=MS, or -1 */
} support_reply;

/* Sends one request to url. curl: a handle to reuse (keep-alive), or NULL for a fresh one.
 * type NULL sends no Content-Type; body NULL sends none; extra: more header lines
 * (separated by '\n') or NULL. Paths are sent as is (no dot-segment folding). */
support_reply support_request(CURL *curl, const char *url, const char *method, const char *type,
                              const char *body, size_t body_size, const char *extra);
void support_reply_free(support_reply *r);

#endif
