/* The Hugging Face hub and its local cache.
 *
 * vdx_clip_resolve_model finds a model where transformers keeps it, so a user who has
 * run transformers needs no second download: $HF_HUB_CACHE (or $HF_HOME/hub, else
 * ~/.cache/huggingface/hub) / models--ORG--NAME / refs/main → snapshots/<commit>/.
 *
 * vdx_clip_pull fills that same layout the way huggingface_hub does: one HEAD per file
 * at $HF_ENDPOINT/<repo>/resolve/<rev>/<file> gives the commit (X-Repo-Commit), the
 * blob id (X-Linked-Etag for LFS files, which is their sha256, else ETag, the git blob
 * sha1) and the size; the content goes to blobs/<etag> (through blobs/<etag>.incomplete,
 * resumed with an HTTP Range after an interruption, verified before it is renamed), and
 * snapshots/<commit>/<file> is a relative symlink ../../blobs/<etag>; refs/<rev> holds
 * the commit. A blob already present is not downloaded again. Transient failures
 * (HTTP 5xx/429, dropped connections) are retried with backoff (common/http_client.h).
 * Progress goes to the caller's callback (vdx_pull_event); this file never prints. */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "weights/weights.h"
#include "common/http_client.h"
#include "vdx/clip.h"
#include "vdx/mclip.h"

#define PATH_SIZE 4096
#define MAX_ATTEMPTS 5

/* ---- the cache ---------------------------------------------------------------------- */

/* Room every path under the cache needs beyond the cache directory itself
 * (/models--ORG--NAME/snapshots/COMMIT/FILE and the like, the repo id being at most 96). */
#define CACHE_PATH_ROOM 512

/* The hub cache directory, as huggingface_hub computes it. Refused when it leaves too
 * little room for the paths under it, which would otherwise be silently cut. */
static int hub_cache_dir(char *out, size_t size, vdx_error *err)
{
    const char *v;
    int n;
    if ((v = getenv("HF_HUB_CACHE")) && *v)
        n = snprintf(out, size, "%s", v);
    else if ((v = getenv("HUGGINGFACE_HUB_CACHE")) && *v)
        n = snprintf(out, size, "%s", v);
    else if ((v = getenv("HF_HOME")) && *v)
        n = snprintf(out, size, "%s/hub", v);
    else if ((v = getenv("XDG_CACHE_HOME")) && *v)
        n = snprintf(out, size, "%s/huggingface/hub", v);
    else
        n = snprintf(out, size, "%s/.cache/huggingface/hub", (v = getenv("HOME")) && *v ? v : ".");
    if (n < 0 || (size_t)n + CACHE_PATH_ROOM >= size)
        return vdx_fail(err,
                        "the Hugging Face cache directory path is too long (%d bytes, at most "
                        "%zu; from $HF_HUB_CACHE, $HF_HOME, $XDG_CACHE_HOME or $HOME): %.200s",
                        n, size - CACHE_PATH_ROOM - 1, v ? v : ".");
    return 0;
}

/* ORG/NAME or NAME, of the characters the hub allows. */
static int valid_repo_id(const char *id)
{
    size_t n = strlen(id);
    int slashes = 0;
    if (n == 0 || n > 96 || id[0] == '/' || id[n - 1] == '/' || strstr(id, "..") ||
        strstr(id, "--") || id[0] == '.' || id[0] == '-')
        return 0;
    for (const char *p = id; *p; p++) {
        if (*p == '/')
            slashes++;
        else if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return 0;
    }
    return slashes <= 1;
}

/* A revision as it may appear in refs/: a branch or tag name, or a commit. */
static int valid_revision(const char *rev)
{
    if (!*rev || strlen(rev) > 255 || strstr(rev, "..") || rev[0] == '/')
        return 0;
    for (const char *p = rev; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_./", *p))
            return 0;
    return 1;
}

static int is_commit_hash(const char *s)
{
    if (strlen(s) != 40)
        return 0;
    for (const char *p = s; *p; p++)
        if (!isxdigit((unsigned char)*p))
            return 0;
    return 1;
}

/* CACHE/models--ORG--NAME */
static int repo_folder(const char *repo_id, char *out, size_t size, vdx_error *err)
{
    char cache[PATH_SIZE];
    if (hub_cache_dir(cache, sizeof cache, err) != 0)
        return -1;
    int n = snprintf(out, size, "%s/models--", cache);
    for (const char *p = repo_id; *p && (size_t)n + 3 < size; p++) {
        if (*p == '/') {
            out[n++] = '-';
            out[n++] = '-';
        } else {
            out[n++] = *p;
        }
    }
    out[n] = 0;
    return 0;
}

static int is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Reads refs/<revision> (a commit id, maybe with a trailing newline). */
static int read_ref(const char *folder, const char *revision, char commit[41])
{
    char path[PATH_SIZE], *text;
    size_t size;
    snprintf(path, sizeof path, "%s/refs/%s", folder, revision);
    if (vdx_read_file(path, &text, &size, NULL) != 0)
        return -1;
    while (size > 0 && isspace((unsigned char)text[size - 1]))
        text[--size] = 0;
    int ok = is_commit_hash(text);
    if (ok)
        memcpy(commit, text, 41);
    free(text);
    return ok ? 0 : -1;
}

int vdx_clip_resolve_model(const char *model_arg, char *dir, size_t dir_size, vdx_error *err)
{
    if (is_directory(model_arg)) {
        snprintf(dir, dir_size, "%s", model_arg);
        return 0;
    }
    char repo_id[128], revision[256] = "main";
    const char *at = strchr(model_arg, '@');
    size_t id_len = at ? (size_t)(at - model_arg) : strlen(model_arg);
    if (id_len >= sizeof repo_id || (at && strlen(at + 1) >= sizeof revision))
        return vdx_fail_kind(err, VDX_ERR_NOT_FOUND, "model '%s': no such directory, and too long for a repo id",
                        model_arg);
    memcpy(repo_id, model_arg, id_len);
    repo_id[id_len] = 0;
    if (at)
        snprintf(revision, sizeof revision, "%s", at + 1);
    if (!valid_repo_id(repo_id) || !valid_revision(revision))
        return vdx_fail_kind(err, VDX_ERR_NOT_FOUND,
                        "model '%s': no such directory (and not a Hugging Face repo id like "
                        "%s)",
                        model_arg, VDX_DEFAULT_MODEL);
    char folder[PATH_SIZE], commit[41];
    if (repo_folder(repo_id, folder, sizeof folder, err) != 0)
        return -1;
    if (is_commit_hash(revision))
        memcpy(commit, revision, 41);
    else if (read_ref(folder, revision, commit) != 0)
        return vdx_fail_kind(err, VDX_ERR_NOT_FOUND,
                        "model '%s' is not in the Hugging Face cache (looked for %s/refs/%s; "
                        "the cache is $HF_HUB_CACHE, else $HF_HOME/hub, else "
                        "~/.cache/huggingface/hub). 'vdx model pull %s%s%s' downloads it",
                        model_arg, folder, revision, repo_id, at ? " --revision " : "",
                        at ? revision : "");
    char snapshot[PATH_SIZE];
    snprintf(snapshot, sizeof snapshot, "%s/snapshots/%s", folder, commit);
    if (!is_directory(snapshot))
        return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                        "model '%s': %s/refs/%s names commit %s but %s is missing; 'vdx model "
                        "pull %s' repairs the cache",
                        model_arg, folder, revision, commit, snapshot, repo_id);
    if ((size_t)snprintf(dir, dir_size, "%s", snapshot) >= dir_size)
        return vdx_fail(err, "model '%s': path too long", model_arg);
    return 0;
}

/* ---- HTTP ----------------------------------------------------------------------------- */

/* What a HEAD on /<repo>/resolve/<rev>/<file> says about the file. */
typedef struct head_info {
    long status;
    char commit[64];
    char etag[128];          /* X-Linked-Etag if present, else ETag; quotes and W/ removed */
    int lfs;                 /* X-Linked-Etag was present: the etag is the sha256 */
    long long size;          /* X-Linked-Size, else Content-Length of a 200; -1 unknown */
    long long linked_size, content_length; /* as received; -1 absent */
    char error_code[64];     /* X-Error-Code (EntryNotFound, RepositoryNotFound, ...) */
    char location[2048];
} head_info;

/* Copies a header's value (trimmed) if `line` is that header. */
static int header_value(const char *line, size_t n, const char *name, char *out, size_t size)
{
    size_t len = strlen(name);
    if (n <= len + 1 || strncasecmp(line, name, len) != 0 || line[len] != ':')
        return 0;
    const char *v = line + len + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    snprintf(out, size, "%.*s", (int)(end - v), v);
    return 1;
}

static void normalize_etag(char *etag)
{
    char *s = etag;
    if (strncmp(s, "W/", 2) == 0)
        s += 2;
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    memmove(etag, s, n);
    etag[n] = 0;
}

static size_t on_head_header(char *line, size_t size, size_t count, void *user)
{
    head_info *h = user;
    size_t n = size * count;
    char value[2048], linked[128] = "";
    if (n > 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response: forget the last */
        memset(h, 0, sizeof *h);
        h->size = h->linked_size = h->content_length = -1;
    } else if (header_value(line, n, "X-Repo-Commit", value, sizeof value)) {
        snprintf(h->commit, sizeof h->commit, "%s", value);
    } else if (header_value(line, n, "X-Linked-Etag", linked, sizeof linked)) {
        snprintf(h->etag, sizeof h->etag, "%s", linked);
        normalize_etag(h->etag);
        h->lfs = 1;
    } else if (!h->lfs && header_value(line, n, "ETag", value, sizeof value)) {
        snprintf(h->etag, sizeof h->etag, "%s", value);
        normalize_etag(h->etag);
    } else if (header_value(line, n, "X-Linked-Size", value, sizeof value)) {
        h->linked_size = atoll(value);
    } else if (header_value(line, n, "Content-Length", value, sizeof value)) {
        h->content_length = atoll(value);
    } else if (header_value(line, n, "X-Error-Code", value, sizeof value)) {
        snprintf(h->error_code, sizeof h->error_code, "%s", value);
    } else if (header_value(line, n, "Location", value, sizeof value)) {
        snprintf(h->location, sizeof h->location, "%s", value);
    }
    return n;
}

/* A curl handle with the options every hub request shares. */
static CURL *hub_handle(const char *url, struct curl_slist **headers)
{
    static const http_options options = {.connect_timeout_ms = 30000, .stall_s = 60};
    CURL *curl = http_easy_new(&options);
    if (!curl)
        return NULL;
    *headers = curl_slist_append(NULL, "Accept-Encoding: identity");
    const char *token = getenv("HF_TOKEN");
    if (token && *token) {
        char auth[1024];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        *headers = curl_slist_append(*headers, auth);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, *headers);
    return curl;
}

/* Where a pull reports (see vdx_pull_event); report() fills in the repo fields. */
typedef struct reporter {
    vdx_pull_progress_fn fn;
    void *user;
    const char *repo_id, *revision, *endpoint, *folder;
} reporter;

static void report(const reporter *r, vdx_pull_event *ev)
{
    if (!r || !r->fn)
        return;
    ev->repo_id = r->repo_id;
    ev->revision = r->revision;
    ev->endpoint = r->endpoint;
    ev->folder = r->folder;
    r->fn(ev, r->user);
}

/* Waits before attempt+2 (attempt counts from 0), as long as Retry-After asks (capped) or
 * 0.25 s doubled per attempt, and says so. */
static void backoff(const reporter *r, int attempt, const char *what, const char *why,
                    long retry_after)
{
    double seconds = http_retry_delay(attempt + 1, 0.25, 30.0, retry_after);
    vdx_pull_event ev = {.kind = VDX_PULL_RETRY, .file = what, .why = why,
                         .retry_in_s = seconds, .attempt = attempt + 2,
                         .max_attempts = MAX_ATTEMPTS};
    report(r, &ev);
    http_sleep(seconds);
}

/* A URL for a message: without credentials a mirror's URL may carry. */
static const char *shown(const char *url, char *out, size_t size)
{
    http_redact_url(url, out, size);
    return out;
}

/* HEAD without following the LFS redirect: its headers are the file's identity. A
 * relative redirect (renamed repo) is followed, as huggingface_hub does. */
static int head_file(const reporter *r, const char *url, const char *file, head_info *h,
                     vdx_error *err)
{
    char current[2048];
    snprintf(current, sizeof current, "%s", url);
    for (int attempt = 0, redirects = 0;; attempt++) {
        struct curl_slist *headers = NULL;
        CURL *curl = hub_handle(current, &headers);
        if (!curl)
            return vdx_fail_oom(err, "starting libcurl for %s", file);
        memset(h, 0, sizeof *h);
        h->size = h->linked_size = h->content_length = -1;
        char curl_error[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_head_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, h);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
        CURLcode rc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &h->status);
        curl_off_t retry_after = 0;
        curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &retry_after);
        curl_easy_cleanup(curl);
        curl_slist_free_all(headers);
        /* A redirect's Content-Length is that of its own (empty) body, not the file's. */
        h->size = h->linked_size >= 0 ? h->linked_size
                                      : h->status == 200 ? h->content_length : -1;
        if (rc != CURLE_OK || http_status_transient(h->status)) {
            char why[512];
            if (rc != CURLE_OK)
                snprintf(why, sizeof why, "%s", *curl_error ? curl_error : curl_easy_strerror(rc));
            else
                snprintf(why, sizeof why, "HTTP %ld", h->status);
            char safe[2048];
            shown(current, safe, sizeof safe);
            if (attempt + 1 >= MAX_ATTEMPTS)
                return vdx_fail_kind(err, VDX_ERR_IO, "%s: %s (after %d attempts)", safe, why,
                                     MAX_ATTEMPTS);
            backoff(r, attempt, safe, why, (long)retry_after);
            continue;
        }
        if (h->status >= 300 && h->status < 400 && h->location[0] == '/' && !h->commit[0] &&
            redirects++ < 5) {
            /* Relative redirect: same host, new path. */
            const char *scheme_end = strstr(current, "://");
            const char *host_end = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
            int host_len = host_end ? (int)(host_end - current) : (int)strlen(current);
            char next[2048];
            snprintf(next, sizeof next, "%.*s%s", host_len, current, h->location);
            snprintf(current, sizeof current, "%s", next);
            attempt = -1;
            continue;
        }
        return 0;
    }
}

/* ---- downloading a blob --------------------------------------------------------------- */

typedef struct transfer {
    int fd;
    long long offset;        /* bytes already in the .incomplete file */
    long long written;       /* bytes written by this request */
    long long expected;      /* full size, -1 unknown */
    int started, refused;
    CURL *curl;
    const char *file;
    const reporter *reporter;
    double start_time;
    int write_failed;
} transfer;

static size_t on_body(char *data, size_t size, size_t count, void *user)
{
    transfer *t = user;
    size_t n = size * count;
    if (!t->started) {
        t->started = 1;
        long status = 0;
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200 && t->offset > 0) { /* the server ignored the Range: start over */
            if (ftruncate(t->fd, 0) != 0) {
                t->write_failed = errno;
                return 0;
            }
            t->offset = 0;
        } else if (status != 200 && status != 206) {
            t->refused = 1;
        }
    }
    if (t->refused)
        return n; /* an error page: not part of the file */
    for (size_t done = 0; done < n;) {
        ssize_t w = write(t->fd, data + done, n - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            t->write_failed = errno;
            return 0;
        }
        done += (size_t)w;
    }
    t->written += (long long)n;
    return n;
}

static void report_transfer(transfer *t, vdx_pull_event_kind kind)
{
    vdx_pull_event ev = {.kind = kind, .file = t->file, .have = t->offset + t->written,
                         .total = t->expected, .written = t->written,
                         .elapsed_s = vdx_now() - t->start_time};
    report(t->reporter, &ev);
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    report_transfer(user, VDX_PULL_PROGRESS);
    return 0;
}

/* Hex sha256 (or git blob sha1) of a file, streamed. */
static int hash_file(const char *path, int git_blob_sha1, char *out, size_t out_size,
                     vdx_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return vdx_fail(err, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, git_blob_sha1 ? EVP_sha1() : EVP_sha256(), NULL);
    if (git_blob_sha1) {
        struct stat st;
        fstat(fileno(f), &st);
        char header[64];
        int n = snprintf(header, sizeof header, "blob %lld", (long long)st.st_size);
        EVP_DigestUpdate(ctx, header, (size_t)n + 1);
    }
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    size_t got;
    while (buf && (got = fread(buf, 1, CHUNK, f)) > 0)
        EVP_DigestUpdate(ctx, buf, got);
    int failed = !buf || ferror(f);
    free(buf);
    fclose(f);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, digest, &len);
    EVP_MD_CTX_free(ctx);
    if (failed)
        return vdx_fail(err, "%s: read error", path);
    for (unsigned int i = 0; i < len && 2 * i + 2 < out_size; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    return 0;
}

static int is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* Checks size and content hash of a finished download: sha256 for LFS files (and any
 * 64-hex ETag), the git blob sha1 for regular files whose ETag is 40 hex. */
static int verify_blob(const char *path, const char *file, const head_info *h, vdx_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return vdx_fail(err, "%s: %s", path, strerror(errno));
    if (h->size >= 0 && st.st_size != h->size)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: downloaded %lld bytes, the hub says %lld", file,
                        (long long)st.st_size, h->size);
    int sha256 = is_hex(h->etag, 64), sha1 = !h->lfs && is_hex(h->etag, 40);
    if (!sha256 && !sha1)
        return 0;
    char digest[2 * EVP_MAX_MD_SIZE + 1] = "";
    if (hash_file(path, sha1, digest, sizeof digest, err) != 0)
        return -1;
    if (strcasecmp(digest, h->etag) != 0)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: %s of the download is %s, the hub says %s", file,
                        sha256 ? "sha256" : "git sha1", digest, h->etag);
    return 0;
}

/* Downloads url into blob (via blob.incomplete, resuming what is there), verified. */
static int download_blob(const reporter *r, const char *url, const char *file,
                         const char *blob, const head_info *h, vdx_error *err)
{
    char safe_url[4096];
    shown(url, safe_url, sizeof safe_url);
    char partial[PATH_SIZE];
    snprintf(partial, sizeof partial, "%s.incomplete", blob);
    for (int attempt = 0;; attempt++) {
        int fd = open(partial, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            return vdx_fail(err, "%s: cannot create: %s", partial, strerror(errno));
        struct stat st;
        fstat(fd, &st);
        transfer t = {.fd = fd, .offset = st.st_size, .expected = h->size, .file = file,
                      .reporter = r, .start_time = vdx_now()};
        if (h->size >= 0 && t.offset > h->size) { /* longer than the file: start over */
            if (ftruncate(fd, 0) != 0) {
                close(fd);
                return vdx_fail(err, "%s: cannot truncate: %s", partial, strerror(errno));
            }
            t.offset = 0;
        }
        long status = 0;
        curl_off_t retry_after = 0;
        CURLcode rc = CURLE_OK;
        char curl_error[CURL_ERROR_SIZE] = "";
        if (!(h->size >= 0 && t.offset == h->size)) {
            if (t.offset > 0) {
                vdx_pull_event ev = {.kind = VDX_PULL_RESUME, .file = file, .have = t.offset,
                                     .total = h->size};
                report(r, &ev);
            }
            struct curl_slist *headers = NULL;
            CURL *curl = hub_handle(url, &headers);
            if (!curl) {
                close(fd);
                return vdx_fail_oom(err, "starting libcurl for %s", file);
            }
            char range[64];
            snprintf(range, sizeof range, "%lld-", t.offset);
            if (t.offset > 0)
                curl_easy_setopt(curl, CURLOPT_RANGE, range);
            t.curl = curl;
            curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
            curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
            curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
            curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
            curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
            curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
            curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
            curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
            rc = curl_easy_perform(curl);
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
            curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &retry_after);
            curl_easy_cleanup(curl);
            curl_slist_free_all(headers);
            if (rc == CURLE_OK && (status == 200 || status == 206))
                report_transfer(&t, VDX_PULL_FILE_DONE);
        }
        int synced = fsync(fd) == 0;
        close(fd);
        if (t.write_failed)
            return vdx_fail(err, "%s: write failed: %s", partial, strerror(t.write_failed));
        if (!synced)
            return vdx_fail(err, "%s: cannot flush: %s", partial, strerror(errno));
        if (rc == CURLE_OK && (status == 200 || status == 206 || status == 0))
            break;
        if (rc == CURLE_OK && status == 416) { /* our partial file is not a prefix */
            if (truncate(partial, 0) != 0)
                return vdx_fail(err, "%s: cannot truncate: %s", partial, strerror(errno));
        } else if (rc == CURLE_OK && !http_status_transient(status)) {
            return vdx_fail_kind(err, status == 404 ? VDX_ERR_NOT_FOUND : VDX_ERR_IO,
                                 "%s: HTTP %ld", safe_url, status);
        }
        char why[512];
        if (rc != CURLE_OK)
            snprintf(why, sizeof why, "%s", *curl_error ? curl_error : curl_easy_strerror(rc));
        else
            snprintf(why, sizeof why, "HTTP %ld", status);
        if (attempt + 1 >= MAX_ATTEMPTS)
            return vdx_fail_kind(err, VDX_ERR_IO,
                                 "%s: %s (after %d attempts; run the pull again to resume)",
                                 safe_url, why, MAX_ATTEMPTS);
        backoff(r, attempt, file, why, (long)retry_after);
    }
    if (verify_blob(partial, file, h, err) != 0) {
        unlink(partial);
        return vdx_error_prefix(err, "refusing the download (removed; run the pull again)");
    }
    if (rename(partial, blob) != 0)
        return vdx_fail(err, "%s: cannot rename into place: %s", blob, strerror(errno));
    return 0;
}

/* ---- pull ------------------------------------------------------------------------------- */

/* An ETag names a file under blobs/: letters, digits, '-', '_' and '.', not starting with
 * '.' (so never ".", ".." or a hidden file); the hub's are hex digests. */
static int etag_is_file_name(const char *etag)
{
    if (!etag[0] || etag[0] == '.')
        return 0;
    for (const char *c = etag; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
            return 0;
    return 1;
}

/* snapshots/<commit>/<file> → ../../blobs/<etag>, replaced atomically. */
static int link_snapshot(const char *folder, const char *commit, const char *file,
                         const char *etag, vdx_error *err)
{
    char dir[PATH_SIZE], link_path[PATH_SIZE], tmp[PATH_SIZE], target[PATH_SIZE];
    snprintf(dir, sizeof dir, "%s/snapshots/%s", folder, commit);
    if (vdx_mkdirs(dir, err) != 0)
        return -1;
    snprintf(link_path, sizeof link_path, "%s/%s", dir, file);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", link_path, (long)getpid());
    snprintf(target, sizeof target, "../../blobs/%s", etag);
    unlink(tmp);
    if (symlink(target, tmp) != 0)
        return vdx_fail(err, "%s: cannot create symlink: %s", tmp, strerror(errno));
    if (rename(tmp, link_path) != 0) {
        int e = errno;
        unlink(tmp);
        return vdx_fail(err, "%s: cannot rename into place: %s", link_path, strerror(e));
    }
    return 0;
}

/* Percent-encodes a revision for a URL path segment ("refs/pr/1" → "refs%2Fpr%2F1"). */
static void url_encode(const char *s, char *out, size_t size)
{
    size_t n = 0;
    for (; *s && n + 4 < size; s++) {
        if (isalnum((unsigned char)*s) || strchr("-_.~", *s))
            out[n++] = *s;
        else
            n += (size_t)snprintf(out + n, size - n, "%%%02X", (unsigned char)*s);
    }
    out[n] = 0;
}

/* $HF_ENDPOINT without trailing slashes (a mirror is often given as "https://host/"). */
static const char *hub_endpoint(void)
{
    static char endpoint[512];
    const char *e = getenv("HF_ENDPOINT");
    snprintf(endpoint, sizeof endpoint, "%s", e && *e ? e : "https://huggingface.co");
    size_t n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/')
        endpoint[--n] = 0;
    return endpoint;
}

typedef struct pull_state {
    const reporter *reporter;
    const char *repo_id;
    char folder[PATH_SIZE];
    char commit[41];
    char revision_url[512];
    int downloaded;
} pull_state;

/* Fetches one file into the cache. *missing (when non-NULL) says the repo has no such file
 * (then it is not an error). */
static int pull_file(pull_state *p, const char *file, int *missing, vdx_error *err)
{
    char url[4096];
    snprintf(url, sizeof url, "%s/%s/resolve/%s/%s", hub_endpoint(), p->repo_id,
             p->commit[0] ? p->commit : p->revision_url, file);
    head_info h;
    if (head_file(p->reporter, url, file, &h, err) != 0)
        return -1;
    char safe_url[4096];
    shown(url, safe_url, sizeof safe_url);
    if (missing)
        *missing = 0;
    if (h.status == 404 && missing && strcmp(h.error_code, "RepositoryNotFound") != 0 &&
        strcmp(h.error_code, "RevisionNotFound") != 0) {
        *missing = 1;
        return 0;
    }
    if (h.status == 401 || h.status == 403)
        return vdx_fail_kind(err, VDX_ERR_IO,
                             "%s: HTTP %ld: the repository is private or gated; set HF_TOKEN "
                             "to an access token that may read it",
                             safe_url, h.status);
    if (h.status == 404)
        return vdx_fail_kind(err, VDX_ERR_NOT_FOUND, "%s: not found (%s)", safe_url,
                        h.error_code[0] ? h.error_code : "no such repository, revision or file");
    if (h.status != 200 && !(h.status >= 300 && h.status < 400))
        return vdx_fail_kind(err, VDX_ERR_IO, "%s: HTTP %ld", safe_url, h.status);
    if (!is_commit_hash(h.commit))
        return vdx_fail(err,
                        "%s: the answer has no X-Repo-Commit header, so this is not a "
                        "Hugging Face hub (check HF_ENDPOINT)",
                        safe_url);
    if (!etag_is_file_name(h.etag))
        return vdx_fail(err, "%s: the answer has no usable ETag (a blob file name is made of it)",
                        safe_url);
    if (!p->commit[0])
        memcpy(p->commit, h.commit, 41);
    else if (strcmp(p->commit, h.commit) != 0)
        return vdx_fail(err, "%s: served from commit %s, expected %s", safe_url, h.commit,
                        p->commit);

    char blobs[PATH_SIZE], blob[PATH_SIZE], locks[PATH_SIZE], lock_path[PATH_SIZE];
    snprintf(blobs, sizeof blobs, "%s/blobs", p->folder);
    snprintf(blob, sizeof blob, "%s/%s", blobs, h.etag);
    const char *slash = strrchr(p->folder, '/');
    char cache[PATH_SIZE];
    if (hub_cache_dir(cache, sizeof cache, err) != 0)
        return -1;
    snprintf(locks, sizeof locks, "%s/.locks/%s", cache, slash ? slash + 1 : p->folder);
    snprintf(lock_path, sizeof lock_path, "%s/%s.lock", locks, h.etag);
    if (vdx_mkdirs(blobs, err) != 0 || vdx_mkdirs(locks, err) != 0)
        return -1;
    /* One process at a time per blob, like huggingface_hub's file locks. */
    int lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0) {
        if (lock_fd >= 0)
            close(lock_fd);
        return vdx_fail(err, "%s: cannot lock: %s", lock_path, strerror(errno));
    }
    int rc = 0;
    if (access(blob, F_OK) != 0) {
        rc = download_blob(p->reporter, url, file, blob, &h, err);
        p->downloaded += rc == 0;
    } else {
        vdx_pull_event ev = {.kind = VDX_PULL_CACHED, .file = file};
        report(p->reporter, &ev);
    }
    close(lock_fd);
    if (rc == 0)
        rc = link_snapshot(p->folder, p->commit, file, h.etag, err);
    return rc;
}

/* Records a file the repo lacks, as huggingface_hub does (.no_exist/<commit>/<file>). */
static void mark_missing(const pull_state *p, const char *file)
{
    char dir[PATH_SIZE], path[PATH_SIZE];
    snprintf(dir, sizeof dir, "%s/.no_exist/%s", p->folder, p->commit);
    if (vdx_mkdirs(dir, NULL) != 0)
        return;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
}

int vdx_clip_pull(const char *repo_id, const char *revision, char *dir, size_t dir_size,
                  vdx_error *err)
{
    return vdx_clip_pull_progress(repo_id, revision, dir, dir_size, NULL, NULL, err);
}

int vdx_clip_pull_progress(const char *repo_id, const char *revision, char *dir,
                           size_t dir_size, vdx_pull_progress_fn progress, void *user,
                           vdx_error *err)
{
    if (!revision || !*revision)
        revision = "main";
    if (!valid_repo_id(repo_id))
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "'%s' is not a Hugging Face repo id (like %s)", repo_id,
                             VDX_DEFAULT_MODEL);
    if (!valid_revision(revision))
        return vdx_fail_kind(err, VDX_ERR_INVALID, "'%s' is not a valid revision", revision);
    reporter r = {.fn = progress, .user = user, .repo_id = repo_id, .revision = revision};
    pull_state p = {.reporter = &r, .repo_id = repo_id};
    if (repo_folder(repo_id, p.folder, sizeof p.folder, err) != 0)
        return -1;
    url_encode(revision, p.revision_url, sizeof p.revision_url);
    char endpoint[512];
    r.endpoint = shown(hub_endpoint(), endpoint, sizeof endpoint);
    r.folder = p.folder;
    vdx_pull_event begin = {.kind = VDX_PULL_BEGIN};
    report(&r, &begin);
    if (pull_file(&p, "config.json", NULL, err) != 0)
        return -1;
    int missing;
    if (pull_file(&p, "model.safetensors", &missing, err) != 0)
        return -1;
    if (missing) {
        mark_missing(&p, "model.safetensors");
        if (pull_file(&p, "pytorch_model.bin", &missing, err) != 0)
            return -1;
        if (missing)
            return vdx_fail(err, "%s has neither model.safetensors nor pytorch_model.bin",
                            repo_id);
    }
    /* A CLIP repo needs its BPE files and image preprocessing; an M-CLIP text tower
     * (config.json model_type "M-CLIP") its SentencePiece model. */
    static const char *const clip_required[] = {"vocab.json", "merges.txt",
                                                "preprocessor_config.json", NULL};
    static const char *const mclip_required[] = {"sentencepiece.bpe.model", NULL};
    static const char *const clip_optional[] = {"tokenizer_config.json", NULL};
    static const char *const mclip_optional[] = {"tokenizer_config.json",
                                                 "special_tokens_map.json", NULL};
    char snapshot[PATH_SIZE];
    snprintf(snapshot, sizeof snapshot, "%s/snapshots/%s", p.folder, p.commit);
    int mclip = vdx_mclip_is_model_dir(snapshot);
    for (const char *const *f = mclip ? mclip_required : clip_required; *f; f++)
        if (pull_file(&p, *f, NULL, err) != 0)
            return -1;
    for (const char *const *f = mclip ? mclip_optional : clip_optional; *f; f++) {
        if (pull_file(&p, *f, &missing, err) != 0)
            return -1;
        if (missing)
            mark_missing(&p, *f);
    }
    if (strcmp(revision, p.commit) != 0) {
        char refs[PATH_SIZE], ref[PATH_SIZE];
        snprintf(ref, sizeof ref, "%s/refs/%s", p.folder, revision);
        snprintf(refs, sizeof refs, "%s", ref);
        *strrchr(refs, '/') = 0;
        if (vdx_mkdirs(refs, err) != 0 ||
            vdx_write_file_atomic(ref, p.commit, strlen(p.commit), err) != 0)
            return -1;
    }
    if ((size_t)snprintf(dir, dir_size, "%s/snapshots/%s", p.folder, p.commit) >= dir_size)
        return vdx_fail(err, "snapshot path too long");
    vdx_pull_event end = {.kind = VDX_PULL_END, .commit = p.commit, .downloaded = p.downloaded};
    report(&r, &end);
    return 0;
}
