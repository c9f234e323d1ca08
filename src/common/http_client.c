/* The libcurl settings, retry policy and credential-free URLs every vdx HTTP client uses
 * (see http_client.h). */
#include "common/http_client.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "vdx/common.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void http_client_init(void) { pthread_once(&curl_once, init_once); }

void http_easy_defaults(CURL *e, const http_options *o)
{
    static const http_options none = {0};
    if (!o)
        o = &none;
    curl_easy_setopt(e, CURLOPT_USERAGENT, "vdx/" VDX_VERSION);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000L);
    if (o->timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    if (o->stall_s > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, o->stall_s);
    }
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    const char *ca = getenv("SSL_CERT_FILE");
    if (!ca || !*ca)
        ca = getenv("CURL_CA_BUNDLE");
    if (ca && *ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
}

CURL *http_easy_new(const http_options *o)
{
    http_client_init();
    CURL *e = curl_easy_init();
    if (e)
        http_easy_defaults(e, o);
    return e;
}

int http_status_transient(long status) { return status == 429 || (status >= 500 && status <= 599); }

int http_curl_transient(CURLcode rc)
{
    return rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
           rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE || rc == CURLE_HTTP2 ||
           rc == CURLE_HTTP2_STREAM;
}

double http_retry_delay(int attempt, double base_s, double cap_s, long retry_after_s)
{
    if (retry_after_s > 0)
        return (double)retry_after_s < cap_s ? (double)retry_after_s : cap_s;
    if (attempt < 1)
        attempt = 1;
    /* ldexp saturates at infinity instead of overflowing an integer shift */
    double delay = ldexp(base_s, attempt > 1000 ? 1000 : attempt - 1);
    return delay < cap_s ? delay : cap_s;
}

void http_sleep(double seconds)
{
    if (!(seconds > 0))
        return;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int secret_parameter(const char *name, size_t n)
{
    static const char *const secrets[] = {"token", "key",  "password", "secret", "sig",
                                          "signature", "access_token", "api_key", "apikey"};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        if (strlen(secrets[i]) == n && strncasecmp(name, secrets[i], n) == 0)
            return 1;
    return 0;
}

static void put(char *out, size_t size, size_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *o + 1 < size; i++)
        out[(*o)++] = s[i];
}

void http_redact_url(const char *url, char *out, size_t size)
{
    if (!size)
        return;
    size_t o = 0;
    const char *p = url, *scheme = strstr(url, "://");
    if (scheme) {
        put(out, size, &o, p, (size_t)(scheme + 3 - p));
        p = scheme + 3;
        size_t authority = strcspn(p, "/?#");
        for (size_t i = authority; i-- > 0;)
            if (p[i] == '@') { /* the last '@' ends the userinfo */
                p += i + 1;
                break;
            }
    }
    int in_query = 0;
    while (*p) {
        if (*p == '#')
            in_query = 0;
        if (in_query && (p[-1] == '?' || p[-1] == '&')) {
            size_t name = strcspn(p, "=&#");
            if (p[name] == '=' && secret_parameter(p, name)) {
                put(out, size, &o, p, name + 1);
                put(out, size, &o, "***", 3);
                p += name + 1;
                p += strcspn(p, "&#");
                continue;
            }
        }
        if (*p == '?')
            in_query = 1;
        put(out, size, &o, p, 1);
        p++;
    }
    out[o] = 0;
}
