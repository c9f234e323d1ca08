/* Module-private (src/common): the one libcurl layer of vdx, shared by the model hub
 * (clip/hub.c), the image fetcher (ingest/fetch.c) and ClickHouse (store/clickhouse_http.c),
 * so that initialisation, timeouts, the retry policy and what an error may show are
 * decided once:
 *   - curl_global_init exactly once, thread-safe;
 *   - every handle: http and https only (redirects too), no signals, TCP keep-alive,
 *     a connect timeout, an optional whole-transfer timeout and a stall limit, the vdx
 *     User-Agent; proxies from the usual variables (http_proxy, https_proxy, no_proxy,
 *     which libcurl reads itself); TLS always verified, against $SSL_CERT_FILE or
 *     $CURL_CA_BUNDLE when set (a private CA), else the system store;
 *   - retries: transient failures (429, 5xx, timeouts, dropped connections) wait
 *     base × 2^(attempt−1), capped, or what Retry-After asks, capped the same;
 *   - errors never carry credentials: URLs in messages lose their user:password@ and the
 *     values of query parameters that hold secrets. */
#ifndef VDX_COMMON_HTTP_CLIENT_H
#define VDX_COMMON_HTTP_CLIENT_H

#include <curl/curl.h>
#include <stddef.h>

typedef struct http_options {
    long connect_timeout_ms; /* 0: 10 s */
    long timeout_ms;         /* whole transfer; 0: none */
    long stall_s;            /* abort when under 1 byte/s for this long; 0: never */
} http_options;

/* curl_global_init, once per process (any thread may call it, any number of times). */
void http_client_init(void);
/* A new easy handle with the settings above (NULL: out of memory). */
CURL *http_easy_new(const http_options *o);
/* Applies the settings to a handle again (after curl_easy_reset). */
void http_easy_defaults(CURL *e, const http_options *o);

/* Worth another try: 429 and 5xx; timeouts, resets, empty or cut answers. */
int http_status_transient(long status);
int http_curl_transient(CURLcode rc);
/* Seconds to wait before retry number `attempt` (1 = the first retry): base × 2^(attempt−1)
 * capped at cap_s, or retry_after_s (Retry-After, when > 0) capped at cap_s. Never
 * overflows, whatever the attempt. */
double http_retry_delay(int attempt, double base_s, double cap_s, long retry_after_s);
/* Sleeps that long (restarting after signals). */
void http_sleep(double seconds);

/* url without credentials, for messages: "https://u:p@h/x?token=abc&a=1" →
 * "https://h/x?token=***&a=1" (token, key, password, secret, sig, signature,
 * access_token, api_key; case-insensitive). Truncated to size. */
void http_redact_url(const char *url, char *out, size_t size);

#endif
