/* The fetcher: downloads many images at once with one libcurl multi handle (N parallel
 * transfers, HTTP/1.1 keep-alive or HTTP/2 multiplexing, HTTPS, redirects), so a single
 * thread keeps the network busy while other threads decode and embed.
 *   - timeouts for the connection and the whole transfer; retries with exponential
 *     backoff (honouring Retry-After) on 429, 5xx, timeouts and dropped connections;
 *   - a size cap, enforced from Content-Length and while receiving;
 *   - an on-disk cache: <cache_dir>/<2 hex>/<sha256 of the URL>, written via a temporary
 *     file and rename, so a re-run downloads nothing twice and a crash leaves no torn file;
 *   - images.unsplash.com URLs get imgix parameters for a CLIP-sized rendition, and that
 *     host can be mapped to another base URL (a loopback server in tests, a mirror). The
 *     cache key is the URL before that mapping, so the cache survives a port change. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/http_client.h"
#include "vdx/ingest.h"

#define UNSPLASH_PREFIX "https://images.unsplash.com/"
#define DEFAULT_IMGIX "w=640&fm=jpg&q=85"

void vdx_fetch_options_default(vdx_fetch_options *o)
{
    memset(o, 0, sizeof *o);
    o->parallel = 16;
    o->connect_timeout_ms = 10000;
    o->timeout_ms = 60000;
    o->retries = 4;
    o->backoff_ms = 500;
    o->max_bytes = (size_t)50 << 20;
}

/* ---- URLs ------------------------------------------------------------------------------ */

/* Whether the query string (without '?') has parameter `key` (key_len bytes). */
static int params_have_key(const char *params, const char *key, size_t key_len)
{
    for (const char *p = params; p && *p;) {
        size_t n = strcspn(p, "=&");
        if (n == key_len && !strncmp(p, key, n))
            return 1;
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return 0;
}

/* url with imgix params merged into its query (params win over the URL's own). */
static char *with_imgix(const char *url, const char *params)
{
    size_t n = strlen(url) + strlen(params) + 2;
    char *out = malloc(n);
    if (!out)
        return NULL;
    const char *q = strchr(url, '?');
    const char *frag = strchr(url, '#');
    if (frag && q && frag < q)
        q = NULL;
    size_t base_len = q ? (size_t)(q - url) : frag ? (size_t)(frag - url) : strlen(url);
    memcpy(out, url, base_len);
    size_t len = base_len;
    char sep = '?';
    if (q) { /* keep the URL's parameters that params do not override */
        const char *end = frag ? frag : url + strlen(url);
        for (const char *p = q + 1; p < end;) {
            size_t plen = strcspn(p, "&#");
            size_t klen = strcspn(p, "=&#");
            if (plen && !params_have_key(params, p, klen)) {
                out[len++] = sep;
                memcpy(out + len, p, plen);
                len += plen;
                sep = '&';
            }
            p += plen;
            if (*p == '&')
                p++;
            else
                break;
        }
    }
    if (*params) {
        out[len++] = sep;
        memcpy(out + len, params, strlen(params));
        len += strlen(params);
    }
    out[len] = 0;
    return out;
}

/* The URL as requested from the CDN (the cache key): imgix parameters added. */
static char *canonical_url(const vdx_fetch_options *o, const char *url)
{
    const char *params = o->imgix_params ? o->imgix_params : DEFAULT_IMGIX;
    if (strncmp(url, UNSPLASH_PREFIX, strlen(UNSPLASH_PREFIX)) || !*params)
        return strdup(url);
    return with_imgix(url, params);
}

/* The canonical URL with the base URL override applied. */
static char *mapped_url(const vdx_fetch_options *o, const char *canonical)
{
    size_t plen = strlen(UNSPLASH_PREFIX);
    if (!o->base_url || !*o->base_url || strncmp(canonical, UNSPLASH_PREFIX, plen))
        return strdup(canonical);
    size_t blen = strlen(o->base_url);
    int slash = blen && o->base_url[blen - 1] == '/';
    char *out = malloc(blen + strlen(canonical + plen) + 2);
    if (out)
        sprintf(out, "%s%s%s", o->base_url, slash ? "" : "/", canonical + plen);
    return out;
}

char *vdx_fetch_effective_url(const vdx_fetch_options *o, const char *url)
{
    char *canonical = canonical_url(o, url);
    if (!canonical)
        return NULL;
    char *mapped = mapped_url(o, canonical);
    free(canonical);
    return mapped;
}

/* ---- cache ----------------------------------------------------------------------------- */

static void cache_path(const char *dir, const char *canonical, char *out, size_t size)
{
    char hex[65];
    vdx_sha256_hex(canonical, strlen(canonical), hex);
    snprintf(out, size, "%s/%.2s/%s", dir, hex, hex);
}

static int cache_read(const char *dir, const char *canonical, uint8_t **data, size_t *size)
{
    char path[4200];
    cache_path(dir, canonical, path, sizeof path);
    char *buf;
    if (vdx_read_file(path, &buf, size, NULL) != 0)
        return 0;
    if (*size == 0) { /* never written completely: a miss */
        free(buf);
        return 0;
    }
    *data = (uint8_t *)buf;
    return 1;
}

/* Best effort: a cache that cannot be written only costs a later download. */
static void cache_write(const char *dir, const char *canonical, const uint8_t *data,
                        size_t size)
{
    char path[4200], tmp[4300];
    cache_path(dir, canonical, path, sizeof path);
    char *slash = strrchr(path, '/');
    *slash = 0;
    if (vdx_mkdirs(path, NULL) != 0)
        return;
    *slash = '/';
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%lx", path, (long)getpid(),
             (unsigned long)pthread_self());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    if (close(fd) != 0 || off != size || rename(tmp, path) != 0)
        unlink(tmp);
}

/* ---- transfers ----------------------------------------------------------------------- */

typedef struct transfer {
    CURL *easy;
    size_t tag;
    char *canonical; /* cache key */
    char *url;       /* requested */
    uint8_t *data;
    size_t size, cap, max_bytes;
    int too_big;
    int attempts;
    int slot;        /* index in the active list while in the multi handle */
    double retry_at; /* when waiting for a retry, else 0 */
    char errbuf[CURL_ERROR_SIZE];
} transfer;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user)
{
    transfer *t = user;
    size_t n = size * nmemb;
    if (t->size + n > t->max_bytes) {
        t->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (t->size + n > t->cap) {
        size_t cap = t->cap ? t->cap : 64 * 1024;
        while (cap < t->size + n)
            cap *= 2;
        uint8_t *p = realloc(t->data, cap);
        if (!p)
            return 0;
        t->data = p;
        t->cap = cap;
    }
    memcpy(t->data + t->size, ptr, n);
    t->size += n;
    return n;
}

static int transfer_setup(transfer *t, const vdx_fetch_options *o)
{
    http_options options = {.connect_timeout_ms = o->connect_timeout_ms,
                            .timeout_ms = o->timeout_ms};
    t->easy = http_easy_new(&options);
    if (!t->easy)
        return -1;
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    t->max_bytes = o->max_bytes;
    return 0;
}

static void transfer_reset_body(transfer *t)
{
    t->size = 0;
    t->too_big = 0;
    t->errbuf[0] = 0;
}

static void transfer_free(transfer *t)
{
    if (!t)
        return;
    if (t->easy)
        curl_easy_cleanup(t->easy);
    free(t->canonical);
    free(t->url);
    free(t->data);
    free(t);
}

/* Describes a finished transfer's failure into reason; returns whether it is worth
 * another try. */
static int describe_failure(transfer *t, CURLcode rc, long status, const vdx_fetch_options *o,
                            char *reason, size_t size)
{
    if (t->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(reason, size, "larger than the %zu-byte size cap", o->max_bytes);
        return 0;
    }
    if (rc == CURLE_OK) {
        snprintf(reason, size, "HTTP %ld", status);
        return http_status_transient(status);
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(reason, size, "timeout (%s)", t->errbuf[0] ? t->errbuf : "no answer");
        return 1;
    }
    snprintf(reason, size, "%s%s%s", curl_easy_strerror(rc), t->errbuf[0] ? ": " : "",
             t->errbuf);
    return http_curl_transient(rc);
}

int vdx_fetch_run(const vdx_fetch_options *o, vdx_fetch_next_fn next, vdx_fetch_done_fn done,
                  void *user, vdx_error *err)
{
    http_client_init();
    int parallel = o->parallel > 0 ? o->parallel : 16;
    CURLM *multi = curl_multi_init();
    if (!multi)
        return vdx_fail(err, "cannot create a libcurl multi handle");
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)parallel);
    transfer **waiting = calloc((size_t)parallel, sizeof *waiting); /* backing off */
    transfer **active = calloc((size_t)parallel, sizeof *active);   /* in the multi handle */
    if (!waiting || !active) {
        free(waiting);
        free(active);
        curl_multi_cleanup(multi);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    }
    int n_active = 0, n_waiting = 0, exhausted = 0, stopped = 0, rc = 0;
    while (!stopped) {
        if (o->stop && *o->stop)
            break;
        /* start new transfers while there is room */
        while (!exhausted && n_active + n_waiting < parallel) {
            size_t tag;
            const char *url;
            int got = next(user, &tag, &url);
            if (got == 0)
                exhausted = 1;
            if (got <= 0)
                break;
            vdx_fetch_result r = {0};
            transfer *t = calloc(1, sizeof *t);
            if (t) {
                t->tag = tag;
                t->canonical = canonical_url(o, url);
                t->url = t->canonical ? mapped_url(o, t->canonical) : NULL;
            }
            if (!t || !t->url) {
                transfer_free(t);
                rc = vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
                stopped = 1;
                break;
            }
            if (o->cache_dir && cache_read(o->cache_dir, t->canonical, &r.data, &r.size)) {
                r.ok = 1;
                r.from_cache = 1;
                r.http_status = 200;
                transfer_free(t);
                if (done(user, tag, &r) != 0)
                    stopped = 1;
                continue;
            }
            if (transfer_setup(t, o) != 0) {
                transfer_free(t);
                rc = vdx_fail(err, "cannot create a libcurl handle");
                stopped = 1;
                break;
            }
            t->attempts = 1;
            curl_multi_add_handle(multi, t->easy);
            t->slot = n_active;
            active[n_active++] = t;
        }
        if (stopped)
            break;
        /* transfers whose backoff is over go again */
        double now = vdx_now(), next_retry = 0;
        for (int i = 0; i < n_waiting;) {
            transfer *t = waiting[i];
            if (t->retry_at <= now) {
                t->retry_at = 0;
                transfer_reset_body(t);
                t->attempts++;
                curl_multi_add_handle(multi, t->easy);
                t->slot = n_active;
                active[n_active++] = t;
                waiting[i] = waiting[--n_waiting];
                continue;
            }
            if (!next_retry || t->retry_at < next_retry)
                next_retry = t->retry_at;
            i++;
        }
        if (exhausted && n_active == 0 && n_waiting == 0)
            break;
        int running;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            transfer *t;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            CURLcode result = msg->data.result;
            long status = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
            curl_multi_remove_handle(multi, t->easy);
            active[t->slot] = active[--n_active];
            active[t->slot]->slot = t->slot;
            vdx_fetch_result r = {0};
            r.http_status = status;
            r.attempts = t->attempts;
            if (result == CURLE_OK && status >= 200 && status < 300 && !t->too_big) {
                if (o->cache_dir)
                    cache_write(o->cache_dir, t->canonical, t->data, t->size);
                r.ok = 1;
                r.data = t->data;
                r.size = t->size;
                t->data = NULL;
            } else {
                int again = describe_failure(t, result, status, o, r.reason, sizeof r.reason);
                if (again && t->attempts <= o->retries) {
                    curl_off_t after = 0;
                    curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &after);
                    /* doubled each time, at most 60 s however many retries are asked */
                    t->retry_at = vdx_now() + http_retry_delay(t->attempts,
                                                               (double)o->backoff_ms / 1000.0,
                                                               60.0, (long)after);
                    waiting[n_waiting++] = t;
                    continue;
                }
                if (t->attempts > 1) {
                    size_t len = strlen(r.reason);
                    snprintf(r.reason + len, sizeof r.reason - len, " (after %d attempts)",
                             t->attempts);
                }
            }
            size_t tag = t->tag;
            transfer_free(t);
            if (done(user, tag, &r) != 0)
                stopped = 1;
        }
        if (stopped)
            break;
        int timeout_ms = 100;
        if (n_waiting) {
            double until = (next_retry - vdx_now()) * 1000.0;
            if (until < timeout_ms)
                timeout_ms = until < 1 ? 1 : (int)until;
        }
        if (n_active)
            curl_multi_poll(multi, NULL, 0, timeout_ms, NULL);
        else if (!exhausted || n_waiting)
            usleep((useconds_t)(n_waiting ? timeout_ms : 5) * 1000);
    }
    /* abandon whatever is still in flight or waiting */
    for (int i = 0; i < n_waiting; i++)
        transfer_free(waiting[i]);
    free(waiting);
    for (int i = 0; i < n_active; i++) {
        curl_multi_remove_handle(multi, active[i]->easy);
        transfer_free(active[i]);
    }
    free(active);
    curl_multi_cleanup(multi);
    return rc;
}

/* ---- all at once ----------------------------------------------------------------------- */

typedef struct fetch_all_state {
    const char *const *urls;
    size_t n, next;
    vdx_fetch_result *results;
} fetch_all_state;

static int all_next(void *user, size_t *tag, const char **url)
{
    fetch_all_state *s = user;
    if (s->next == s->n)
        return 0;
    *tag = s->next;
    *url = s->urls[s->next++];
    return 1;
}

static int all_done(void *user, size_t tag, vdx_fetch_result *r)
{
    fetch_all_state *s = user;
    s->results[tag] = *r;
    return 0;
}

int vdx_fetch_all(const vdx_fetch_options *o, const char *const *urls, size_t n,
                  vdx_fetch_result *results, vdx_error *err)
{
    memset(results, 0, n * sizeof *results);
    fetch_all_state s = {urls, n, 0, results};
    return vdx_fetch_run(o, all_next, all_done, &s, err);
}

void vdx_fetch_result_clear(vdx_fetch_result *r)
{
    free(r->data);
    memset(r, 0, sizeof *r);
}

/* ---- origin record ------------------------------------------------------------------- */

int vdx_fetch_origin_save(const char *collection_dir, const vdx_fetch_options *o, vdx_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/fetch.json", collection_dir);
    if (vdx_mkdirs(collection_dir, err) != 0)
        return -1;
    cJSON *json = cJSON_CreateObject();
    if (json && o->base_url && *o->base_url)
        cJSON_AddStringToObject(json, "base_url", o->base_url);
    else if (json)
        cJSON_AddNullToObject(json, "base_url");
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (!text)
        return vdx_fail_oom(err, "recording the image origin in %s", path);
    int rc = vdx_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

char *vdx_fetch_origin_load(const char *collection_dir)
{
    char path[4200], *text = NULL, *base = NULL;
    size_t size = 0;
    snprintf(path, sizeof path, "%s/fetch.json", collection_dir);
    if (vdx_read_file(path, &text, &size, NULL) != 0)
        return NULL;
    cJSON *json = cJSON_ParseWithLength(text, size);
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(json, "base_url");
    if (cJSON_IsString(url) && vdx_is_http_url(url->valuestring))
        base = strdup(url->valuestring);
    cJSON_Delete(json);
    free(text);
    return base;
}
