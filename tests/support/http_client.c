/* One HTTP request for tests and benches (see http_client.h). */
#include "http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    support_reply *r = user;
    char *grown = realloc(r->body, r->size + size * n + 1);
    if (!grown)
        return 0;
    memcpy(grown + r->size, data, size * n);
    r->body = grown;
    r->size += size * n;
    r->body[r->size] = 0;
    return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
    support_reply *r = user;
    size_t used = strlen(r->headers), len = size * n;
    if (used + len < sizeof r->headers) {
        memcpy(r->headers + used, data, len);
        r->headers[used + len] = 0;
    }
    const char *key = "Server-Timing: app;dur=";
    if (len > strlen(key) && !strncasecmp(data, key, strlen(key)))
        r->server_ms = atof(data + strlen(key));
    return len;
}

support_reply support_request(CURL *curl, const char *url, const char *method, const char *type,
                              const char *body, size_t body_size, const char *extra)
{
    support_reply r = {.server_ms = -1};
    CURL *own = curl ? NULL : curl_easy_init();
    CURL *c = curl ? curl : own;
    struct curl_slist *headers = NULL;
    char content_type[128];
    if (type) {
        snprintf(content_type, sizeof content_type, "Content-Type: %s", type);
        headers = curl_slist_append(headers, content_type);
    }
    /* extra may hold several header lines separated by '\n' */
    for (const char *line = extra; line && *line;) {
        size_t len = strcspn(line, "\n");
        char *one = strndup(line, len);
        if (one && *one)
            headers = curl_slist_append(headers, one);
        free(one);
        line += len + (line[len] == '\n');
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_size);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    r.curl_code = curl_easy_perform(c);
    if (r.curl_code == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    if (own)
        curl_easy_cleanup(own);
    if (!r.body)
        r.body = calloc(1, 1);
    return r;
}

void support_reply_free(support_reply *r)
{
    free(r->body);
    r->body = NULL;
}
