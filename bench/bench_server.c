/* Benchmark of `vdx serve` over HTTP on loopback: 25k random clustered 512-d items in an
 * embedded collection, a concept with 500 labels, the server started in-process. Prints,
 * per endpoint, the server time (its Server-Timing header: routing, JSON, store and
 * explore calls) and the round trip seen by a keep-alive client, medians and p90 of
 * several requests; then runs the load generator (tools/loadgen) with 50 concurrent
 * search clients for 10 s. Numbers only, no pass/fail.
 *   usage: bench_server [items=25000] [labels=500] [reps=30] [load_seconds=10] */
#include <curl/curl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "support/http_client.h"
#include "vdx/server.h"

#define DIMS 512
#define CLUSTERS 50

extern char **environ;

static uint64_t rng = 42;
static double uniform(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((rng >> 11) + 0.5) / 9007199254740992.0;
}
static double gaussian(void) { return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform()); }

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_server: %s: %s\n", what, why);
    exit(1);
}

/* Items item-N, cluster N % CLUSTERS: a cluster centre plus noise, normalised. */
static void build_collection(const char *data, int n_items)
{
    vdx_model_identity model = {.name = "bench-model", .dims = DIMS};
    memset(model.config_hash, 'b', 64);
    vdx_store_options opts = {.data_dir = data, .collection = "bench", .create = 1, .model = &model};
    vdx_error err = {{0}};
    vdx_store *store = vdx_store_open(&opts, &err);
    if (!store)
        die("create the collection", err.message);
    float *centres = malloc((size_t)CLUSTERS * DIMS * sizeof *centres);
    for (int i = 0; i < CLUSTERS * DIMS; i++)
        centres[i] = (float)gaussian();
    enum { BATCH = 1000 };
    float *vectors = malloc((size_t)BATCH * DIMS * sizeof *vectors);
    char (*ids)[32] = malloc(BATCH * sizeof *ids), (*groups)[16] = malloc(BATCH * sizeof *groups);
    vdx_item *items = calloc(BATCH, sizeof *items);
    const char *names[1] = {"group"};
    const char **values = malloc(BATCH * sizeof *values);
    for (int start = 0; start < n_items; start += BATCH) {
        int n = n_items - start < BATCH ? n_items - start : BATCH;
        for (int i = 0; i < n; i++) {
            int id = start + i, cluster = id % CLUSTERS;
            float *v = vectors + (size_t)i * DIMS;
            double norm = 0;
            for (int d = 0; d < DIMS; d++) {
                v[d] = centres[cluster * DIMS + d] + (float)(0.8 * gaussian());
                norm += (double)v[d] * v[d];
            }
            for (int d = 0; d < DIMS; d++)
                v[d] = (float)(v[d] / sqrt(norm));
            snprintf(ids[i], sizeof ids[i], "item-%d", id);
            snprintf(groups[i], sizeof groups[i], "%d", cluster % 5);
            values[i] = groups[i];
            items[i] = (vdx_item){.id = ids[i], .url = ids[i], .vector = v, .meta_names = names,
                                  .meta_values = &values[i], .n_meta = 1};
        }
        if (vdx_store_append(store, items, (size_t)n, &err) != 0)
            die("append", err.message);
    }
    vdx_store_close(store);
    free(centres);
    free(vectors);
    free(ids);
    free(groups);
    free(items);
    free(values);
}

/* ---- one keep-alive HTTP client ---- */

static CURL *client;
static char base[128];

/* Sends one request; dies unless it answers 2xx. */
static support_reply call(const char *method, const char *path, const char *json)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    support_reply r = support_request(client, url, method, json ? "application/json" : NULL, json,
                                      json ? strlen(json) : 0, NULL);
    if (r.curl_code != CURLE_OK)
        die(path, curl_easy_strerror(r.curl_code));
    if (r.status < 200 || r.status >= 300)
        die(path, r.body);
    return r;
}

static void measure(const char *what, const char *method, const char *path, const char *json, int reps)
{
    double *server = malloc((size_t)reps * sizeof *server), *total = malloc((size_t)reps * sizeof *total);
    for (int i = 0; i < reps; i++) {
        double t0 = vdx_now();
        support_reply r = call(method, path, json);
        total[i] = (vdx_now() - t0) * 1000.0;
        server[i] = r.server_ms;
        free(r.body);
    }
    qsort(server, (size_t)reps, sizeof *server, bench_compare_doubles);
    qsort(total, (size_t)reps, sizeof *total, bench_compare_doubles);
    int p90 = (int)(0.9 * (reps - 1) + 0.5);
    printf("%-44s server %7.2f ms (p90 %7.2f)   round trip %7.2f ms (p90 %7.2f)\n", what,
           server[reps / 2], server[p90], total[reps / 2], total[p90]);
    free(server);
    free(total);
}

/* The loadgen program next to this one: BUILD/bench/bench_server → BUILD/tools/loadgen. */
static int run_load(int seconds)
{
    char self[4096], loadgen[4200], url[256], secs[16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    *slash = 0;
    snprintf(loadgen, sizeof loadgen, "%s/../tools/loadgen", self);
    snprintf(url, sizeof url, "%s/api/search", base);
    snprintf(secs, sizeof secs, "%d", seconds);
    char *argv[] = {loadgen, "--url", url, "--clients", "50", "--seconds", secs,
                    "--body", "{\"like\":\"item-1\"}", "--body", "{\"like\":\"item-2\",\"k\":24}",
                    "--body", "{\"like\":\"item-3\",\"where\":\"group = '1'\"}", NULL};
    pid_t pid;
    if (posix_spawn(&pid, loadgen, NULL, NULL, argv, environ) != 0) {
        fprintf(stderr, "bench_server: cannot run %s\n", loadgen);
        return -1;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

int main(int argc, char **argv)
{
    int n_items = argc > 1 ? atoi(argv[1]) : 25000;
    int n_labels = argc > 2 ? atoi(argv[2]) : 500;
    int reps = argc > 3 ? atoi(argv[3]) : 30;
    int load_seconds = argc > 4 ? atoi(argv[4]) : 10;
    if (n_items < 1000 || n_labels < 2 || n_labels > n_items / 2 || reps < 1 || load_seconds < 0) {
        fprintf(stderr, "usage: bench_server [items>=1000] [labels>=2] [reps>=1] [load_seconds>=0]\n");
        return 2;
    }
    char data[] = "/tmp/vdx-bench-server-XXXXXX";
    if (!mkdtemp(data))
        die("mkdtemp", "failed");
    double t0 = vdx_now();
    build_collection(data, n_items);
    printf("bench_server: %d items x %d dims (f32) written in %.1f s\n", n_items, DIMS, vdx_now() - t0);

    /* loopback without a token: the figures are the routes', not the token check's */
    vdx_server_options opts = {.port = 0, .no_token = 1, .store = {.data_dir = data, .collection = "bench"}};
    vdx_error err = {{0}};
    vdx_server *server = vdx_server_start(&opts, &err);
    if (!server)
        die("start the server", err.message);
    snprintf(base, sizeof base, "%.*s", (int)strlen(vdx_server_url(server)) - 1, vdx_server_url(server));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    client = curl_easy_init();

    /* a concept from item-0 (cluster 0), labels: cluster 0 positive, others negative */
    support_reply r = call("POST", "/api/concepts", "{\"name\":\"bench\",\"examples\":[\"item-0\"]}");
    free(r.body);
    size_t cap = (size_t)n_labels * 48 + 64;
    char *labels = malloc(cap), *exclude = malloc(cap);
    size_t used = (size_t)snprintf(labels, cap, "{\"labels\":[");
    size_t used_ex = (size_t)snprintf(exclude, cap, "{\"like\":\"item-0\",\"k\":9,\"exclude\":[");
    for (int i = 0; i < n_labels; i++) {
        int id = i < n_labels / 2 ? i * CLUSTERS : i * 7 + 1; /* half in cluster 0 */
        if (id % CLUSTERS == 0 && i >= n_labels / 2)
            id++;
        int positive = id % CLUSTERS == 0;
        used += (size_t)snprintf(labels + used, cap - used, "%s{\"id\":\"item-%d\",\"label\":%d}",
                                 i ? "," : "", id, positive);
        used_ex += (size_t)snprintf(exclude + used_ex, cap - used_ex, "%s\"item-%d\"", i ? "," : "", id);
    }
    snprintf(labels + used, cap - used, "]}");
    snprintf(exclude + used_ex, cap - used_ex, "]}");
    r = call("POST", "/api/concepts/bench/labels", labels);
    free(r.body);
    printf("bench_server: concept with %d labels; medians of %d requests over keep-alive HTTP\n", n_labels, reps);

    measure("search: more like an item, k=9", "POST", "/api/search", "{\"like\":\"item-0\",\"k\":9}", reps);
    measure("search: k=9, 500 ids excluded", "POST", "/api/search", exclude, reps);
    measure("search: k=48, page 3, where group = '1'", "POST", "/api/search",
            "{\"like\":\"item-0\",\"k\":48,\"offset\":96,\"where\":\"group = '1'\"}", reps);
    r = call("POST", "/api/concepts/bench/train", "{}");
    free(r.body);
    measure("evaluate after round 1: histogram + 5-fold CV", "GET", "/api/concepts/bench/evaluate", NULL,
            reps < 10 ? reps : 10);
    measure("train (500 labels) + next 9 candidates", "POST", "/api/concepts/bench/train",
            "{\"next\":{\"mode\":\"nearest\",\"k\":9}}", reps);
    measure("candidates: nearest, k=9", "GET", "/api/concepts/bench/candidates?k=9", NULL, reps);
    measure("candidates: boundary, k=9", "GET", "/api/concepts/bench/candidates?mode=boundary&k=9", NULL, reps);
    measure("evaluate after the rounds above", "GET", "/api/concepts/bench/evaluate", NULL, reps < 5 ? reps : 5);
    measure("browse above threshold, top 48", "GET", "/api/concepts/bench/scores?top=48", NULL, reps);
    measure("item detail + 8 neighbours", "GET", "/api/items/item-17", NULL, reps);
    measure("the page (index.html)", "GET", "/", NULL, reps);
    measure("undo the last round", "POST", "/api/concepts/bench/undo", "{}", reps < 10 ? reps : 10);
    fflush(stdout);
    if (load_seconds > 0) {
        printf("bench_server: 50 concurrent search clients for %d s:\n", load_seconds);
        fflush(stdout);
        run_load(load_seconds);
    }
    free(labels);
    free(exclude);
    curl_easy_cleanup(client);
    curl_global_cleanup();
    vdx_server_stop(server);
    bench_remove_tree(data);
    return 0;
}
