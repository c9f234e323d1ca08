/* A loopback HTTP file server for tests: stands in for the image CDN, the dataset host
 * and the Hugging Face hub, so that fetching, resuming and pulling are tested against a
 * real HTTP peer without the internet.
 *
 *   fileserver [--root DIR] [--hub REPO=DIR]... [--port N] [--port-file F]
 *              [--fail-first N] [--delay-ms N] [--log FILE] [--token T] [--lfs-host H]
 *              [--auth-log FILE]
 *
 * --root DIR        GET/HEAD /PATH serves DIR/PATH (Range supported, no traversal).
 * --hub REPO=DIR    /REPO/resolve/REV/FILE serves DIR/FILE like the hub: X-Repo-Commit, ETag
 *                   (git blob sha1 for small files); files over 1 MiB ("LFS") answer 302 to
 *                   /__lfs/SHA256 with X-Linked-Etag: "SHA256" and X-Linked-Size.
 * --fail-first N    the first N requests of each path get 503 (retry tests).
 * --delay-ms N      sleep before answering each request (slow server).
 * --log FILE        one line per request: "METHOD PATH STATUS BYTES".
 * --port-file F     write the bound port (chosen by the kernel with --port 0) to F.
 * --token T         a gated hub: /REPO/resolve/ without "Authorization: Bearer T" gets 401.
 * --lfs-host H      LFS redirects go to http://H:PORT/__lfs/SHA256 (another host name for
 *                   the same server, e.g. localhost), as the hub sends them to its CDN.
 * --auth-log FILE   one line per request: "METHOD PATH HOST auth|-" (auth: it carried an
 *                   Authorization header), to check that a token never leaves the hub.
 * Stops on SIGINT/SIGTERM. Binds 127.0.0.1 only. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_HUBS 8
#define MAX_PATHS 4096
#define LFS_THRESHOLD (1u << 20)

typedef struct hub_repo {
    char repo[256];
    char dir[4096];
} hub_repo;

static const char *root_dir;
static hub_repo hubs[MAX_HUBS];
static int n_hubs;
static int fail_first, delay_ms;
static FILE *log_file, *auth_log;
static const char *token, *lfs_host;
static int bound_port;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *seen_paths[MAX_PATHS];
static int seen_counts[MAX_PATHS];
static int n_seen;
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* Reads a whole file; NULL if missing or not a regular file. */
static unsigned char *slurp(const char *path, size_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    size_t got = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)st.st_size) {
        free(buf);
        return NULL;
    }
    *size = got;
    return buf;
}

static int path_is_safe(const char *p)
{
    return p[0] == '/' && !strstr(p, "/../") && !strstr(p, "/./") &&
           strcmp(p + strlen(p) - (strlen(p) >= 3 ? 3 : 0), "/..") != 0 && !strstr(p, "//");
}

/* Counts requests per path; returns how many came before this one. */
static int bump_path(const char *url)
{
    pthread_mutex_lock(&lock);
    int before = 0, i;
    for (i = 0; i < n_seen; i++)
        if (!strcmp(seen_paths[i], url))
            break;
    if (i == n_seen && n_seen < MAX_PATHS)
        seen_paths[n_seen++] = strdup(url);
    if (i < MAX_PATHS) {
        before = seen_counts[i];
        seen_counts[i]++;
    }
    pthread_mutex_unlock(&lock);
    return before;
}

static void log_request(const char *method, const char *url, unsigned status, size_t bytes)
{
    if (!log_file)
        return;
    pthread_mutex_lock(&lock);
    fprintf(log_file, "%s %s %u %zu\n", method, url, status, bytes);
    fflush(log_file);
    pthread_mutex_unlock(&lock);
}

static enum MHD_Result send_text(struct MHD_Connection *c, const char *method, const char *url,
                                 unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "text/plain");
    if (status == 404)
        MHD_add_response_header(r, "X-Error-Code", "EntryNotFound");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    log_request(method, url, status, strlen(text));
    return ret;
}

/* Serves a buffer, honouring "Range: bytes=A-" and "bytes=A-B". Takes ownership. */
static enum MHD_Result send_bytes(struct MHD_Connection *c, const char *method, const char *url,
                                  unsigned char *data, size_t size, const char *etag,
                                  const char *commit)
{
    size_t start = 0, end = size ? size - 1 : 0;
    unsigned status = 200;
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    if (range && !strncmp(range, "bytes=", 6)) {
        char *rest;
        unsigned long long a = strtoull(range + 6, &rest, 10);
        unsigned long long b = size ? size - 1 : 0;
        if (*rest == '-' && rest[1])
            b = strtoull(rest + 1, NULL, 10);
        if (a >= size || b < a) {
            free(data);
            char msg[64];
            snprintf(msg, sizeof msg, "bytes */%zu", size);
            struct MHD_Response *r =
                MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
            MHD_add_response_header(r, "Content-Range", msg);
            enum MHD_Result ret = MHD_queue_response(c, 416, r);
            MHD_destroy_response(r);
            log_request(method, url, 416, 0);
            return ret;
        }
        if (b >= size)
            b = size - 1;
        start = (size_t)a;
        end = (size_t)b;
        status = 206;
    }
    size_t len = size ? end - start + 1 : 0;
    /* MHD sends headers only (with the real Content-Length) for HEAD. */
    memmove(data, data + start, len);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Accept-Ranges", "bytes");
    MHD_add_response_header(r, "Content-Type", "application/octet-stream");
    if (status == 206) {
        char cr[128];
        snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", start, end, size);
        MHD_add_response_header(r, "Content-Range", cr);
    }
    if (etag)
        MHD_add_response_header(r, "ETag", etag);
    if (commit)
        MHD_add_response_header(r, "X-Repo-Commit", commit);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    log_request(method, url, status, strcmp(method, "HEAD") ? len : 0);
    return ret;
}

/* A stable fake commit id for a hub directory: sha1 of its path, 40 hex. */
static void repo_commit(const hub_repo *h, char out[41])
{
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)h->dir, strlen(h->dir), d);
    hex(d, SHA_DIGEST_LENGTH, out);
}

static enum MHD_Result serve_hub(struct MHD_Connection *c, const char *method, const char *url,
                                 const hub_repo *h, const char *file)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", h->dir, file);
    size_t size;
    unsigned char *data = slurp(path, &size);
    if (!data)
        return send_text(c, method, url, 404, "Entry not found");
    char commit[41];
    repo_commit(h, commit);
    if (size > LFS_THRESHOLD) {
        unsigned char d[SHA256_DIGEST_LENGTH];
        char sha[65], quoted[70], location[400], len[32];
        SHA256(data, size, d);
        hex(d, SHA256_DIGEST_LENGTH, sha);
        free(data);
        snprintf(quoted, sizeof quoted, "\"%s\"", sha);
        if (lfs_host)
            snprintf(location, sizeof location, "http://%s:%d/__lfs/%s", lfs_host, bound_port,
                     sha);
        else
            snprintf(location, sizeof location, "/__lfs/%s", sha);
        snprintf(len, sizeof len, "%zu", size);
        struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Location", location);
        MHD_add_response_header(r, "X-Linked-Etag", quoted);
        MHD_add_response_header(r, "X-Linked-Size", len);
        MHD_add_response_header(r, "ETag", quoted);
        MHD_add_response_header(r, "X-Repo-Commit", commit);
        enum MHD_Result ret = MHD_queue_response(c, 302, r);
        MHD_destroy_response(r);
        log_request(method, url, 302, 0);
        return ret;
    }
    /* git blob sha1 as the ETag of a regular (non-LFS) file */
    unsigned char d[SHA_DIGEST_LENGTH];
    char header[64], sha1[41], quoted[48];
    int hl = snprintf(header, sizeof header, "blob %zu", size) + 1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    EVP_DigestUpdate(ctx, header, (size_t)hl);
    EVP_DigestUpdate(ctx, data, size);
    EVP_DigestFinal_ex(ctx, d, NULL);
    EVP_MD_CTX_free(ctx);
    hex(d, SHA_DIGEST_LENGTH, sha1);
    snprintf(quoted, sizeof quoted, "\"%s\"", sha1);
    return send_bytes(c, method, url, data, size, quoted, commit);
}

/* /__lfs/SHA256: find the hub file with that content. */
static enum MHD_Result serve_lfs(struct MHD_Connection *c, const char *method, const char *url,
                                 const char *sha)
{
    static const char *names[] = {"model.safetensors", "pytorch_model.bin", "pytorch_model.legacy.bin",
                                  "vocab.json", "merges.txt", "config.json", NULL};
    for (int i = 0; i < n_hubs; i++)
        for (int j = 0; names[j]; j++) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", hubs[i].dir, names[j]);
            size_t size;
            unsigned char *data = slurp(path, &size);
            if (!data)
                continue;
            unsigned char d[SHA256_DIGEST_LENGTH];
            char hexd[65];
            SHA256(data, size, d);
            hex(d, SHA256_DIGEST_LENGTH, hexd);
            if (!strcmp(hexd, sha)) {
                char quoted[70];
                snprintf(quoted, sizeof quoted, "\"%s\"", hexd);
                return send_bytes(c, method, url, data, size, quoted, NULL);
            }
            free(data);
        }
    return send_text(c, method, url, 404, "no such LFS object");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **state)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    if (!*state) { /* first call: headers only */
        *state = (void *)1;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return send_text(c, method, url, 405, "method not allowed");
    if (delay_ms > 0)
        usleep((useconds_t)delay_ms * 1000);
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (auth_log) {
        const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
        pthread_mutex_lock(&lock);
        fprintf(auth_log, "%s %s %s %s\n", method, url, host ? host : "-", auth ? "auth" : "-");
        fflush(auth_log);
        pthread_mutex_unlock(&lock);
    }
    if (!path_is_safe(url))
        return send_text(c, method, url, 400, "bad path");
    if (bump_path(url) < fail_first)
        return send_text(c, method, url, 503, "try again later");
    if (!strncmp(url, "/__lfs/", 7))
        return serve_lfs(c, method, url, url + 7);
    for (int i = 0; i < n_hubs; i++) {
        size_t n = strlen(hubs[i].repo);
        if (url[0] == '/' && !strncmp(url + 1, hubs[i].repo, n) &&
            !strncmp(url + 1 + n, "/resolve/", 9)) {
            const char *rev_end = strchr(url + 1 + n + 9, '/');
            if (!rev_end)
                return send_text(c, method, url, 404, "Entry not found");
            char want[300];
            snprintf(want, sizeof want, "Bearer %s", token ? token : "");
            if (token && (!auth || strcmp(auth, want) != 0))
                return send_text(c, method, url, 401,
                                 "Access to this model is restricted: you must be "
                                 "authenticated to access it.");
            return serve_hub(c, method, url, &hubs[i], rev_end + 1);
        }
    }
    if (!root_dir)
        return send_text(c, method, url, 404, "not found");
    char path[8192];
    snprintf(path, sizeof path, "%s%s", root_dir, url);
    size_t size;
    unsigned char *data = slurp(path, &size);
    if (!data)
        return send_text(c, method, url, 404, "not found");
    return send_bytes(c, method, url, data, size, NULL, NULL);
}

static void usage(void)
{
    fprintf(stderr, "usage: fileserver [--root DIR] [--hub REPO=DIR]... [--port N] "
                    "[--port-file F] [--fail-first N] [--delay-ms N] [--log FILE] "
                    "[--token T] [--lfs-host H] [--auth-log FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int port = 0;
    const char *port_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--root"))
            root_dir = v;
        else if (!strcmp(a, "--hub")) {
            const char *eq = strchr(v, '=');
            if (!eq || n_hubs == MAX_HUBS)
                usage();
            snprintf(hubs[n_hubs].repo, sizeof hubs[0].repo, "%.*s", (int)(eq - v), v);
            snprintf(hubs[n_hubs].dir, sizeof hubs[0].dir, "%s", eq + 1);
            n_hubs++;
        } else if (!strcmp(a, "--port"))
            port = atoi(v);
        else if (!strcmp(a, "--port-file"))
            port_file = v;
        else if (!strcmp(a, "--fail-first"))
            fail_first = atoi(v);
        else if (!strcmp(a, "--delay-ms"))
            delay_ms = atoi(v);
        else if (!strcmp(a, "--token"))
            token = v;
        else if (!strcmp(a, "--lfs-host"))
            lfs_host = v;
        else if (!strcmp(a, "--auth-log")) {
            auth_log = fopen(v, "a");
            if (!auth_log) {
                fprintf(stderr, "fileserver: %s: %s\n", v, strerror(errno));
                return 1;
            }
        } else if (!strcmp(a, "--log")) {
            log_file = fopen(v, "a");
            if (!log_file) {
                fprintf(stderr, "fileserver: %s: %s\n", v, strerror(errno));
                return 1;
            }
        } else
            usage();
        i++;
    }
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
        on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "fileserver: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int bound = info ? info->port : port;
    bound_port = bound;
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", bound) < 0 || fclose(f) != 0 || rename(tmp, port_file)) {
            fprintf(stderr, "fileserver: cannot write %s\n", port_file);
            MHD_stop_daemon(d);
            return 1;
        }
    }
    fprintf(stderr, "fileserver: listening on http://127.0.0.1:%d/\n", bound);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!stop_requested)
        pause();
    MHD_stop_daemon(d);
    for (int i = 0; i < n_seen; i++)
        free(seen_paths[i]);
    if (log_file)
        fclose(log_file);
    if (auth_log)
        fclose(auth_log);
    return 0;
}
