/* The ClickHouse HTTP interface over libcurl: one keep-alive connection per store handle,
 * queries POSTed (GET is read-only on ClickHouse), inserts as `query=` in the URL with
 * the RowBinary rows as the body, external tables as multipart/form-data.
 *
 * Every request carries wait_end_of_query=1 so that an error raised while the result is
 * produced arrives as an HTTP error instead of text appended to a 200 response, and
 * database= in the URL (18.16 ignores the X-ClickHouse-Database header). Credentials go
 * in X-ClickHouse-User / X-ClickHouse-Key headers, never in the URL, and never appear in
 * a message. Failures are classified: transient ones (connection reset, 502/503/504)
 * may be retried by the caller; the rest become actionable messages. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/http_client.h"
#include "store/clickhouse.h"

struct ch_http {
    CURL *curl;
    ch_url url;
    char endpoint[300]; /* host:port, for messages */
    char *base;         /* scheme://host:port/?database=…&wait_end_of_query=1 */
    int connected;      /* a request got through once: later refusals are transient */
};

ch_http *ch_http_new(const ch_url *url, vdx_error *err)
{
    http_client_init();
    ch_http *h = calloc(1, sizeof *h);
    if (!h) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory connecting to ClickHouse");
        return NULL;
    }
    h->url = *url;
    ch_url_endpoint(url, h->endpoint, sizeof h->endpoint);
    h->curl = curl_easy_init();
    char *database = h->curl ? curl_easy_escape(h->curl, url->database, 0) : NULL;
    strbuf b = {0};
    if (database)
        strbuf_printf(&b, "%s://%s:%d/?database=%s&wait_end_of_query=1",
                      url->https ? "https" : "http", url->host, url->port, database);
    curl_free(database);
    h->base = strbuf_take(&b);
    if (!h->curl || !h->base) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory connecting to ClickHouse at %s", h->endpoint);
        ch_http_free(h);
        return NULL;
    }
    return h;
}

void ch_http_free(ch_http *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->base);
    /* the password lives in h->url: wipe it before the memory is reused */
    memset(h->url.password, 0, sizeof h->url.password);
    free(h);
}

static size_t collect(char *data, size_t size, size_t n, void *user)
{
    strbuf *b = user;
    strbuf_bytes(b, data, size * n);
    return b->oom ? 0 : size * n;
}

void ch_http_backoff(int attempt) { http_sleep(http_retry_delay(attempt, 0.2, 3.2, 0)); }

/* The kind of a ClickHouse exception code: what the callers act on (an ALTER that finds its
 * column or index already there is CONFLICT and harmless); anything else is IO. */
static vdx_error_kind kind_of_code(int code)
{
    switch (code) {
    case 15:  /* DUPLICATE_COLUMN */
    case 44:  /* ILLEGAL_COLUMN: "column/index with this name already exists" */
    case 57:  /* TABLE_ALREADY_EXISTS */
        return VDX_ERR_CONFLICT;
    case 60:  /* UNKNOWN_TABLE */
    case 81:  /* UNKNOWN_DATABASE */
        return VDX_ERR_NOT_FOUND;
    case 241: /* MEMORY_LIMIT_EXCEEDED */
        return VDX_ERR_NO_MEMORY;
    case 243: /* NOT_ENOUGH_SPACE */
        return VDX_ERR_NO_SPACE;
    default:
        return VDX_ERR_IO;
    }
}

void ch_redact_server_error(char *msg, size_t size)
{
    /* where ClickHouse starts quoting the query (18.16 to 24.x), earliest wins */
    static const char *const markers[] = {
        " while processing query", "In scope ", " in scope ", " in query: ", "(in query: ", "Query: ",
        "query: '", "SELECT ", "INSERT INTO ", "CREATE TABLE ", "ALTER TABLE ", "DROP TABLE ",
        "OPTIMIZE TABLE ", "CREATE DATABASE ", " FORMAT ", " FROM ", " WHERE "};
    char *cut = NULL;
    /* "Syntax error: failed at position 12 ('tok') (line 1, col 12): rest of the query" */
    char *syntax = strstr(msg, "failed at position ");
    if (syntax) {
        cut = syntax + strlen("failed at position ");
        while (*cut >= '0' && *cut <= '9')
            cut++;
    }
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
        char *at = strstr(msg, markers[i]);
        if (at && (!cut || at < cut))
            cut = at;
    }
    if (!cut || !*cut)
        return;
    while (cut > msg && strchr(" :,;(", cut[-1]))
        cut--;
    size_t kept = (size_t)(cut - msg);
    snprintf(cut, size - kept, "%s(the query text it quoted is not shown)", kept ? " " : "");
}

/* An actionable message for a response with an error status. ClickHouse's text may quote
 * the SQL we sent (a syntax error's position, "while processing query ..."), which is
 * not for API clients or the CLI to see: it is cut there. */
static int server_failure(ch_http *h, long status, const char *body, int *transient, int *code,
                          vdx_error *err)
{
    char msg[600];
    int c = 0;
    int has_code = ch_parse_server_error(body, &c, msg, sizeof msg) == 0;
    ch_redact_server_error(msg, sizeof msg);
    if (code)
        *code = c;
    if (!has_code && (status == 502 || status == 503 || status == 504 || status >= 500)) {
        *transient = 1;
        return vdx_fail_kind(err, VDX_ERR_IO, "ClickHouse at %s answered HTTP %ld%s%s", h->endpoint, status,
                        msg[0] ? ": " : "", msg);
    }
    switch (c) {
    case 192: /* UNKNOWN_USER */
    case 193: /* WRONG_PASSWORD */
    case 194: /* REQUIRED_PASSWORD */
    case 516: /* AUTHENTICATION_FAILED */
        return vdx_fail_kind(err, VDX_ERR_IO,
                        "ClickHouse at %s refused the login of user '%s' (Code: %d, %s): check "
                        "USER:PASSWORD in the store URL",
                        h->endpoint, h->url.user[0] ? h->url.user : "default", c, msg);
    case 81: /* UNKNOWN_DATABASE */
        return vdx_fail_kind(err, VDX_ERR_NOT_FOUND,
                        "database '%s' does not exist on ClickHouse at %s (Code: 81): create it "
                        "with CREATE DATABASE or fix the store URL",
                        h->url.database, h->endpoint);
    case 497: /* ACCESS_DENIED */
        return vdx_fail_kind(err, VDX_ERR_IO, "ClickHouse at %s denied user '%s' (Code: 497, %s): grant the "
                             "user access to database '%s'",
                        h->endpoint, h->url.user[0] ? h->url.user : "default", msg,
                        h->url.database);
    default:
        break;
    }
    if (!has_code && (status == 401 || status == 403))
        return vdx_fail_kind(err, VDX_ERR_IO, "ClickHouse at %s refused the login of user '%s' (HTTP %ld): check "
                             "USER:PASSWORD in the store URL",
                        h->endpoint, h->url.user[0] ? h->url.user : "default", status);
    if (has_code)
        return vdx_fail_kind(err, kind_of_code(c), "ClickHouse at %s: Code: %d, %s", h->endpoint, c,
                             msg);
    return vdx_fail_kind(err, VDX_ERR_IO, "ClickHouse at %s answered HTTP %ld: %s", h->endpoint, status, msg);
}

static int transport_failure(ch_http *h, CURLcode rc, const char *detail, int *transient,
                             vdx_error *err)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        *transient = h->connected; /* it worked before: the server may be restarting */
        return vdx_fail_kind(err, VDX_ERR_IO, "cannot connect to ClickHouse at %s: connection refused — is the "
                             "server running?",
                        h->endpoint);
    case CURLE_COULDNT_RESOLVE_HOST:
        return vdx_fail_kind(err, VDX_ERR_IO, "cannot connect to ClickHouse at %s: unknown host '%s'",
                        h->endpoint, h->url.host);
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        *transient = 1;
        return vdx_fail_kind(err, VDX_ERR_IO, "connection to ClickHouse at %s failed: %s", h->endpoint,
                        detail[0] ? detail : curl_easy_strerror(rc));
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return vdx_fail_kind(err, VDX_ERR_IO, "TLS with ClickHouse at %s failed: %s (is the port the HTTPS "
                             "one, e.g. 8443?)",
                        h->endpoint, detail[0] ? detail : curl_easy_strerror(rc));
    default:
        return vdx_fail_kind(err, VDX_ERR_IO, "request to ClickHouse at %s failed: %s", h->endpoint,
                        detail[0] ? detail : curl_easy_strerror(rc));
    }
}

static int run_once(ch_http *h, const ch_request *req, strbuf *out, int *transient, int *code,
                    vdx_error *err)
{
    *transient = 0;
    *code = 0;
    strbuf_free(out);
    CURL *c = h->curl;
    curl_easy_reset(c);

    strbuf url = {0};
    strbuf_put(&url, h->base);
    if (req->body) {
        char *q = curl_easy_escape(c, req->sql, 0);
        if (q)
            strbuf_printf(&url, "&query=%s", q);
        else
            url.oom = 1;
        curl_free(q);
    }
    if (req->external) {
        char *structure = curl_easy_escape(c, req->external->structure, 0);
        if (structure)
            strbuf_printf(&url, "&%s_structure=%s&%s_format=TSV", req->external->name,
                          structure, req->external->name);
        else
            url.oom = 1;
        curl_free(structure);
    }
    if (req->settings)
        strbuf_printf(&url, "&%s", req->settings);
    char *full_url = strbuf_take(&url);

    struct curl_slist *headers = NULL, *grown;
    char line[512];
    int oom = !full_url;
    if (h->url.user[0]) {
        snprintf(line, sizeof line, "X-ClickHouse-User: %s", h->url.user);
        oom |= !(grown = curl_slist_append(headers, line));
        if (grown)
            headers = grown;
        snprintf(line, sizeof line, "X-ClickHouse-Key: %s", h->url.password);
        oom |= !(grown = curl_slist_append(headers, line));
        if (grown)
            headers = grown;
        memset(line, 0, sizeof line);
    }
    if (!req->external) {
        oom |= !(grown = curl_slist_append(headers, "Content-Type: application/octet-stream"));
        if (grown)
            headers = grown;
    }
    oom |= !(grown = curl_slist_append(headers, "Expect:")); /* no 100-continue round trip */
    if (grown)
        headers = grown;

    curl_mime *mime = NULL;
    if (!oom && req->external) {
        mime = curl_mime_init(c);
        curl_mimepart *part = mime ? curl_mime_addpart(mime) : NULL;
        oom |= !part || curl_mime_name(part, "query") != CURLE_OK ||
               curl_mime_data(part, req->sql, CURL_ZERO_TERMINATED) != CURLE_OK;
        part = mime ? curl_mime_addpart(mime) : NULL;
        oom |= !part || curl_mime_name(part, req->external->name) != CURLE_OK ||
               curl_mime_filename(part, "data.tsv") != CURLE_OK ||
               curl_mime_data(part, req->external->tsv ? req->external->tsv : "",
                              req->external->tsv_len) != CURLE_OK;
    }
    if (oom) {
        curl_mime_free(mime);
        curl_slist_free_all(headers);
        free(full_url);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory building a request to ClickHouse at %s",
                        h->endpoint);
    }

    char detail[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, full_url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    /* a server that sends nothing for 10 minutes is gone (wait_end_of_query=1 holds the
     * answer until the query ends, so long scans are quiet, never this quiet) */
    static const http_options options = {.connect_timeout_ms = 10000, .stall_s = 600};
    http_easy_defaults(c, &options);
    if (mime) {
        curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    } else if (req->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->sql);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(req->sql));
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_mime_free(mime);
    curl_slist_free_all(headers);
    free(full_url);
    if (out->oom) {
        strbuf_free(out);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory reading a response of ClickHouse at %s",
                        h->endpoint);
    }
    if (rc != CURLE_OK) {
        strbuf_free(out);
        return transport_failure(h, rc, detail, transient, err);
    }
    h->connected = 1;
    strbuf_bytes(out, "", 0); /* NUL-terminated even when empty */
    if (status != 200) {
        int result = server_failure(h, status, out->data ? out->data : "", transient, code, err);
        strbuf_free(out);
        return result;
    }
    return 0;
}

int ch_http_run(ch_http *h, const ch_request *req, strbuf *out, int *transient, int *code,
                vdx_error *err)
{
    int transient_dummy, code_dummy;
    if (!transient)
        transient = &transient_dummy;
    if (!code)
        code = &code_dummy;
    for (int attempt = 1;; attempt++) {
        if (run_once(h, req, out, transient, code, err) == 0)
            return 0;
        if (!req->retry || !*transient || attempt >= CH_HTTP_ATTEMPTS)
            return -1;
        ch_http_backoff(attempt);
    }
}
