/* Tests of the fetcher against the loopback file server (tests/tools/fileserver): parallel
 * downloads, retries after 503s, 404s and unreachable hosts recorded with their reason,
 * the size cap, redirects, timeouts, the on-disk cache (a second run makes no request),
 * and the imgix / base URL rewriting of images.unsplash.com links. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "test_tmp.h"
#include "vdx/ingest.h"

typedef struct server {
    pid_t pid;
    int port;
    char log[4200];
} server;

static char served_dir[4096];

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

/* A directory with img-00..img-19 (distinct contents of varied sizes) and a 1.5 MiB
 * model.safetensors (the server's hub mode answers it with a redirect). */
static void make_served_dir(void)
{
    if (served_dir[0])
        return;
    snprintf(served_dir, sizeof served_dir, "%s", test_tmpdir("fetch-root"));
    char path[4300];
    for (int i = 0; i < 20; i++) {
        size_t n = 1000 + (size_t)i * 7919;
        unsigned char *buf = malloc(n);
        for (size_t k = 0; k < n; k++)
            buf[k] = (unsigned char)(k * 31 + (size_t)i * 17);
        snprintf(path, sizeof path, "%s/img-%02d", served_dir, i);
        write_bytes(path, buf, n);
        free(buf);
    }
    size_t big = (3u << 20) / 2; /* over the server's 1 MiB "LFS" threshold: redirected */
    unsigned char *buf = malloc(big);
    for (size_t k = 0; k < big; k++)
        buf[k] = (unsigned char)(k % 251);
    snprintf(path, sizeof path, "%s/model.safetensors", served_dir);
    write_bytes(path, buf, big);
    free(buf);
}

/* Starts tests/tools/fileserver on port 0 and waits for the port it writes: polls until
 * the port file appears or the server exits, up to a deadline generous enough for a loaded
 * machine (60 s). A missing tool or a server that never comes up fails the case (why). */
static int server_start(server *s, const char *extra_flag, const char *extra_value, char *why,
                        size_t why_size)
{
    char exe[PATH_MAX], tool[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(why, why_size, "cannot read /proc/self/exe");
        return -1;
    }
    exe[n] = 0;
    *strrchr(exe, '/') = 0;
    snprintf(tool, sizeof tool, "%s/../tools/fileserver", exe);
    if (access(tool, X_OK) != 0) {
        snprintf(why, why_size, "%s is not built (make builds tests/tools)", tool);
        return -1;
    }
    make_served_dir();
    const char *tmp = test_tmpdir("fetch-srv");
    char port_file[4200], hub[4300];
    snprintf(port_file, sizeof port_file, "%s/port", tmp);
    snprintf(s->log, sizeof s->log, "%s/requests.log", tmp);
    snprintf(hub, sizeof hub, "test/repo=%s", served_dir);
    s->pid = fork();
    if (s->pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        if (extra_flag)
            execl(tool, tool, "--root", served_dir, "--hub", hub, "--port", "0",
                  "--port-file", port_file, "--log", s->log, extra_flag, extra_value,
                  (char *)NULL);
        else
            execl(tool, tool, "--root", served_dir, "--hub", hub, "--port", "0",
                  "--port-file", port_file, "--log", s->log, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 6000; i++) { /* 6000 x 10 ms */
        FILE *f = fopen(port_file, "r");
        if (f) {
            int ok = fscanf(f, "%d", &s->port) == 1;
            fclose(f);
            if (ok)
                return 0;
        }
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            snprintf(why, why_size, "the fileserver exited (status %d) before writing its port",
                     status);
            return -1;
        }
        usleep(10000);
    }
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    snprintf(why, why_size, "the fileserver wrote no port within 60 s");
    return -1;
}

static void server_stop(server *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
}

static int log_lines(const server *s, const char *needle)
{
    FILE *f = fopen(s->log, "r");
    if (!f)
        return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (!needle || strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

static int same_as_file(const vdx_fetch_result *r, const char *name)
{
    char path[4300], *data;
    size_t size;
    snprintf(path, sizeof path, "%s/%s", served_dir, name);
    if (vdx_read_file(path, &data, &size, NULL) != 0)
        return 0;
    int same = r->ok && r->size == size && !memcmp(r->data, data, size);
    free(data);
    return same;
}

#define START_SERVER(s, flag, value)                                                      \
    server s;                                                                            \
    char s##_why[PATH_MAX + 128];                                                        \
    REQUIRE(server_start(&s, flag, value, s##_why, sizeof s##_why) == 0, "%s", s##_why);

static vdx_fetch_options quick_options(void)
{
    vdx_fetch_options o;
    vdx_fetch_options_default(&o);
    o.backoff_ms = 20;
    o.timeout_ms = 10000;
    return o;
}

TEST(parallel_fetch)
{
    START_SERVER(s, NULL, NULL);
    char urls[20][128];
    const char *list[20];
    for (int i = 0; i < 20; i++) {
        snprintf(urls[i], sizeof urls[i], "http://127.0.0.1:%d/img-%02d", s.port, i);
        list[i] = urls[i];
    }
    vdx_fetch_options o = quick_options();
    o.parallel = 8;
    vdx_fetch_result r[20];
    vdx_error err = {{0}};
    int rc = vdx_fetch_all(&o, list, 20, r, &err);
    CHECK(rc == 0, "%s", err.message);
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "img-%02d", i);
        CHECK(same_as_file(&r[i], name), "%s: ok=%d size=%zu reason=%s", name, r[i].ok,
              r[i].size, r[i].reason);
        CHECK(r[i].attempts == 1 && !r[i].from_cache && r[i].http_status == 200,
              "%s attempts %d status %ld", name, r[i].attempts, r[i].http_status);
        vdx_fetch_result_clear(&r[i]);
    }
    server_stop(&s);
    CHECK(log_lines(&s, " 200 ") == 20, "requests %d", log_lines(&s, NULL));
}

TEST(retry_after_503)
{
    START_SERVER(s, "--fail-first", "2");
    char a[128], b[128];
    snprintf(a, sizeof a, "http://127.0.0.1:%d/img-01", s.port);
    snprintf(b, sizeof b, "http://127.0.0.1:%d/img-02", s.port);
    vdx_fetch_options o = quick_options();
    const char *list[1] = {a};
    vdx_fetch_result r;
    vdx_error err = {{0}};
    CHECK(vdx_fetch_all(&o, list, 1, &r, &err) == 0, "%s", err.message);
    CHECK(same_as_file(&r, "img-01"), "not fetched: %s", r.reason);
    CHECK(r.attempts == 3, "attempts %d", r.attempts);
    vdx_fetch_result_clear(&r);
    CHECK(log_lines(&s, "GET /img-01 503") == 2 && log_lines(&s, "GET /img-01 200") == 1,
          "log: %d x 503, %d x 200", log_lines(&s, "GET /img-01 503"),
          log_lines(&s, "GET /img-01 200"));

    /* too few retries: the failure says why and how often it tried */
    o.retries = 1;
    list[0] = b;
    CHECK(vdx_fetch_all(&o, list, 1, &r, &err) == 0, "%s", err.message);
    CHECK(!r.ok && r.http_status == 503, "ok %d status %ld", r.ok, r.http_status);
    CHECK(!strcmp(r.reason, "HTTP 503 (after 2 attempts)"), "reason '%s'", r.reason);
    vdx_fetch_result_clear(&r);
    server_stop(&s);
}

/* Many retries: the doubling backoff stays defined (and at most 60 s) past 31 attempts. */
TEST(many_retries)
{
    START_SERVER(s, "--fail-first", "40");
    char a[128];
    snprintf(a, sizeof a, "http://127.0.0.1:%d/img-03", s.port);
    vdx_fetch_options o = quick_options();
    o.backoff_ms = 0;
    o.retries = 40;
    const char *list[1] = {a};
    vdx_fetch_result r;
    vdx_error err = {{0}};
    CHECK(vdx_fetch_all(&o, list, 1, &r, &err) == 0, "%s", err.message);
    CHECK(same_as_file(&r, "img-03") && r.attempts == 41, "attempts %d: %s", r.attempts,
          r.reason);
    vdx_fetch_result_clear(&r);
    server_stop(&s);
    CHECK(log_lines(&s, "GET /img-03 503") == 40, "503s: %d", log_lines(&s, "GET /img-03 503"));
}

TEST(failures_recorded)
{
    START_SERVER(s, NULL, NULL);
    char missing[128], capped[128], refused[64];
    snprintf(missing, sizeof missing, "http://127.0.0.1:%d/img-99-missing", s.port);
    snprintf(capped, sizeof capped, "http://127.0.0.1:%d/img-19", s.port);
    snprintf(refused, sizeof refused, "http://127.0.0.1:1/nothing-listens-here");
    const char *list[4] = {missing, capped, refused, "ftp://127.0.0.1/file"};
    vdx_fetch_options o = quick_options();
    o.max_bytes = 1000;
    vdx_fetch_result r[4];
    vdx_error err = {{0}};
    CHECK(vdx_fetch_all(&o, list, 4, r, &err) == 0, "%s", err.message);
    CHECK(!r[0].ok && !strcmp(r[0].reason, "HTTP 404") && r[0].attempts == 1,
          "404: ok %d reason '%s' attempts %d", r[0].ok, r[0].reason, r[0].attempts);
    CHECK(!r[1].ok && !strcmp(r[1].reason, "larger than the 1000-byte size cap"),
          "cap: ok %d reason '%s'", r[1].ok, r[1].reason);
    CHECK(!r[2].ok && strstr(r[2].reason, "Couldn't connect to server") &&
              r[2].attempts == 1,
          "refused: ok %d reason '%s' attempts %d", r[2].ok, r[2].reason, r[2].attempts);
    CHECK(!r[3].ok && strstr(r[3].reason, "Unsupported protocol"), "ftp: ok %d reason '%s'",
          r[3].ok, r[3].reason);
    for (int i = 0; i < 4; i++)
        vdx_fetch_result_clear(&r[i]);
    server_stop(&s);
    CHECK(log_lines(&s, "GET /img-99-missing 404") == 1, "404 retried");
}

TEST(redirect_followed)
{
    START_SERVER(s, NULL, NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/test/repo/resolve/main/model.safetensors",
             s.port);
    const char *list[1] = {url};
    vdx_fetch_options o = quick_options();
    vdx_fetch_result r;
    vdx_error err = {{0}};
    CHECK(vdx_fetch_all(&o, list, 1, &r, &err) == 0, "%s", err.message);
    CHECK(same_as_file(&r, "model.safetensors"), "redirect not followed: %s", r.reason);
    vdx_fetch_result_clear(&r);
    server_stop(&s);
    CHECK(log_lines(&s, " 302 ") == 1 && log_lines(&s, "GET /__lfs/") == 1,
          "log: %d redirects", log_lines(&s, " 302 "));
}

TEST(timeout_reported)
{
    START_SERVER(s, "--delay-ms", "1500");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/img-03", s.port);
    const char *list[1] = {url};
    vdx_fetch_options o = quick_options();
    o.timeout_ms = 200;
    o.retries = 1;
    vdx_fetch_result r;
    vdx_error err = {{0}};
    CHECK(vdx_fetch_all(&o, list, 1, &r, &err) == 0, "%s", err.message);
    /* the server answers after 1.5 s: a success would mean the timeout did not fire */
    CHECK(!r.ok && !strncmp(r.reason, "timeout (", 9) && r.attempts == 2,
          "ok %d reason '%s' attempts %d", r.ok, r.reason, r.attempts);
    vdx_fetch_result_clear(&r);
    server_stop(&s);
}

TEST(cache_second_run)
{
    START_SERVER(s, NULL, NULL);
    const char *cache = test_tmpdir("fetch-cache");
    char urls[5][128];
    const char *list[5];
    for (int i = 0; i < 5; i++) {
        snprintf(urls[i], sizeof urls[i], "http://127.0.0.1:%d/img-%02d", s.port, i + 5);
        list[i] = urls[i];
    }
    vdx_fetch_options o = quick_options();
    o.cache_dir = cache;
    vdx_fetch_result r[5];
    vdx_error err = {{0}};
    for (int run = 0; run < 2; run++) {
        CHECK(vdx_fetch_all(&o, list, 5, r, &err) == 0, "%s", err.message);
        for (int i = 0; i < 5; i++) {
            char name[16];
            snprintf(name, sizeof name, "img-%02d", i + 5);
            CHECK(same_as_file(&r[i], name), "run %d %s: %s", run, name, r[i].reason);
            CHECK(r[i].from_cache == run, "run %d %s from_cache %d", run, name,
                  r[i].from_cache);
            vdx_fetch_result_clear(&r[i]);
        }
    }
    CHECK(log_lines(&s, NULL) == 5, "requests %d (the second run must make none)",
          log_lines(&s, NULL));
    /* the cache file is named by the sha256 of the URL */
    char hex[65], path[4400];
    vdx_sha256_hex(urls[0], strlen(urls[0]), hex);
    snprintf(path, sizeof path, "%s/%.2s/%s", cache, hex, hex);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 1000 + 5 * 7919, "cache file %s", path);
    server_stop(&s);
}

TEST(unsplash_url_rewriting)
{
    vdx_fetch_options o;
    vdx_fetch_options_default(&o);
    char *u = vdx_fetch_effective_url(&o, "https://images.unsplash.com/photo-1-abc");
    CHECK(u && !strcmp(u, "https://images.unsplash.com/photo-1-abc?w=640&fm=jpg&q=85"), "%s",
          u);
    free(u);
    u = vdx_fetch_effective_url(&o, "https://images.unsplash.com/photo-2?ixid=x&w=3000");
    CHECK(u && !strcmp(u, "https://images.unsplash.com/photo-2?ixid=x&w=640&fm=jpg&q=85"),
          "%s", u);
    free(u);
    u = vdx_fetch_effective_url(&o, "https://example.com/photo-3.jpg");
    CHECK(u && !strcmp(u, "https://example.com/photo-3.jpg"), "%s", u);
    free(u);
    o.imgix_params = "w=320&fm=webp";
    o.base_url = "http://127.0.0.1:9999";
    u = vdx_fetch_effective_url(&o, "https://images.unsplash.com/photo-4");
    CHECK(u && !strcmp(u, "http://127.0.0.1:9999/photo-4?w=320&fm=webp"), "%s", u);
    free(u);
    o.imgix_params = "";
    o.base_url = "http://127.0.0.1:9999/cdn/";
    u = vdx_fetch_effective_url(&o, "https://images.unsplash.com/photo-5");
    CHECK(u && !strcmp(u, "http://127.0.0.1:9999/cdn/photo-5"), "%s", u);
    free(u);
}

/* The base URL serves images.unsplash.com links; the cache key ignores the mapping. */
TEST(base_url_and_cache_key)
{
    START_SERVER(s, NULL, NULL);
    const char *cache = test_tmpdir("fetch-cache2");
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/", s.port);
    const char *list[1] = {"https://images.unsplash.com/img-07"};
    vdx_fetch_options o = quick_options();
    o.base_url = base;
    o.cache_dir = cache;
    vdx_fetch_result r;
    vdx_error err = {{0}};
    CHECK(vdx_fetch_all(&o, list, 1, &r, &err) == 0, "%s", err.message);
    CHECK(same_as_file(&r, "img-07"), "via base URL: %s", r.reason);
    vdx_fetch_result_clear(&r);
    const char *key = "https://images.unsplash.com/img-07?w=640&fm=jpg&q=85";
    char hex[65], path[4400];
    vdx_sha256_hex(key, strlen(key), hex);
    snprintf(path, sizeof path, "%s/%.2s/%s", cache, hex, hex);
    struct stat st;
    CHECK(stat(path, &st) == 0, "no cache file for the canonical URL %s", key);
    server_stop(&s);
    /* the server is gone: the cache alone answers */
    CHECK(vdx_fetch_all(&o, list, 1, &r, &err) == 0, "%s", err.message);
    CHECK(r.ok && r.from_cache, "cache miss after the server stopped: %s", r.reason);
    vdx_fetch_result_clear(&r);
}

/* The mirror a collection came from, as ingest records it for the server's previews:
 * saved and read back; none recorded, a file:// base and a damaged record read as none. */
TEST(origin_record)
{
    const char *dir = test_tmpdir("fetch-origin");
    char sub[600], path[700];
    snprintf(sub, sizeof sub, "%s/collections/c", dir);
    snprintf(path, sizeof path, "%s/fetch.json", sub);
    CHECK(vdx_fetch_origin_load(sub) == NULL, "no record yet");
    vdx_fetch_options o;
    vdx_fetch_options_default(&o);
    o.base_url = "http://127.0.0.1:9/mirror/";
    vdx_error err = {{0}};
    REQUIRE(vdx_fetch_origin_save(sub, &o, &err) == 0, "save: %s", err.message);
    char *text = NULL;
    size_t size = 0;
    REQUIRE(vdx_read_file(path, &text, &size, &err) == 0, "read: %s", err.message);
    CHECK(!strcmp(text, "{\"base_url\":\"http://127.0.0.1:9/mirror/\"}"), "record: %s", text);
    free(text);
    char *base = vdx_fetch_origin_load(sub);
    CHECK(base && !strcmp(base, "http://127.0.0.1:9/mirror/"), "loaded %s", base ? base : "NULL");
    free(base);
    o.base_url = NULL; /* a later ingest from the CDN itself */
    REQUIRE(vdx_fetch_origin_save(sub, &o, &err) == 0, "save: %s", err.message);
    CHECK(vdx_fetch_origin_load(sub) == NULL, "a record of no mirror reads as none");
    static const char *const bad[] = {"{\"base_url\":\"file:///etc/\"}", "{\"base_url\":", "[1]", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        REQUIRE(vdx_write_file_atomic(path, bad[i], strlen(bad[i]), &err) == 0, "write: %s", err.message);
        base = vdx_fetch_origin_load(sub);
        CHECK(base == NULL, "record '%s' read as %s", bad[i], base);
        free(base);
    }
}

int main(void)
{
    test_tmp_begin("fetch");
    RUN(parallel_fetch);
    RUN(retry_after_503);
    RUN(many_retries);
    RUN(failures_recorded);
    RUN(redirect_followed);
    RUN(timeout_reported);
    RUN(cache_second_run);
    RUN(unsplash_url_rewriting);
    RUN(base_url_and_cache_key);
    RUN(origin_record);
    test_tmp_end();
    return test_summary("fetch");
}
