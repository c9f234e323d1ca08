/* loadgen: a bounded HTTP load generator for `vdx serve` (libcurl multi, one thread):
 * N concurrent clients each send a request, wait for the answer and send the next, for
 * a fixed time. Prints the request count, errors (transport failures and non-2xx),
 * throughput and latency percentiles. Exit status 1 when any request failed.
 *
 *   loadgen --url http://127.0.0.1:PORT/api/search --clients 50 --seconds 10 \
 *           --body '{"text":"a dog"}' --body '{"text":"a red car"}'
 * Bodies are sent as POST application/json, rotating; without --body it sends GETs.
 * --header 'Name: value' adds a header to every request (e.g. the server's token). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdx/common.h"

#define MAX_BODIES 64
#define MAX_CLIENTS 1000

typedef struct client {
    CURL *easy;
    double started;
    char error[CURL_ERROR_SIZE];
} client;

typedef struct latencies {
    double *ms;
    size_t n, cap;
} latencies;

static size_t discard(char *data, size_t size, size_t n, void *user)
{
    (void)data;
    (void)user;
    return size * n;
}

static int record(latencies *l, double ms)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        double *grown = realloc(l->ms, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->ms = grown;
        l->cap = cap;
    }
    l->ms[l->n++] = ms;
    return 0;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const latencies *l, double p)
{
    if (!l->n)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(l->n - 1) + 0.5);
    return l->ms[i < l->n ? i : l->n - 1];
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen --url URL [--clients N] [--seconds S] [--header H] [--body JSON]...\n");
}

int main(int argc, char **argv)
{
    const char *url = NULL, *extra_header = NULL;
    const char *bodies[MAX_BODIES];
    int n_bodies = 0, n_clients = 50;
    double seconds = 10;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--url") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--clients") && i + 1 < argc)
            n_clients = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--header") && i + 1 < argc)
            extra_header = argv[++i];
        else if (!strcmp(argv[i], "--body") && i + 1 < argc && n_bodies < MAX_BODIES)
            bodies[n_bodies++] = argv[++i];
        else {
            usage();
            return 2;
        }
    }
    if (!url || n_clients < 1 || n_clients > MAX_CLIENTS || seconds <= 0 || seconds > 600) {
        usage();
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    client *clients = calloc((size_t)n_clients, sizeof *clients);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (extra_header)
        headers = curl_slist_append(headers, extra_header);
    latencies lat = {0};
    long sent = 0, errors = 0;
    char first_error[512] = "";
    double start = vdx_now(), deadline = start + seconds;

    for (int i = 0; i < n_clients; i++) {
        CURL *easy = curl_easy_init();
        clients[i].easy = easy;
        curl_easy_setopt(easy, CURLOPT_URL, url);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, clients[i].error);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, &clients[i]);
        curl_easy_setopt(easy, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
        if (n_bodies) {
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, bodies[sent % n_bodies]);
        }
        clients[i].started = vdx_now();
        curl_multi_add_handle(multi, easy);
        sent++;
    }
    int running = n_clients;
    while (running > 0) {
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *easy = msg->easy_handle;
            client *c = NULL;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
            long status = 0;
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
            double now = vdx_now();
            if (msg->data.result != CURLE_OK || status < 200 || status >= 300) {
                if (!errors++ && msg->data.result != CURLE_OK)
                    snprintf(first_error, sizeof first_error, "%s",
                             c->error[0] ? c->error : curl_easy_strerror(msg->data.result));
                else if (errors == 1)
                    snprintf(first_error, sizeof first_error, "HTTP %ld", status);
            } else if (record(&lat, (now - c->started) * 1000.0) != 0) {
                fprintf(stderr, "loadgen: out of memory\n");
                return 1;
            }
            curl_multi_remove_handle(multi, easy);
            if (now < deadline) {
                if (n_bodies)
                    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, bodies[sent % n_bodies]);
                c->started = now;
                curl_multi_add_handle(multi, easy);
                sent++;
                running++;
            }
        }
        if (running > 0)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    double elapsed = vdx_now() - start;
    qsort(lat.ms, lat.n, sizeof *lat.ms, compare_double);
    printf("loadgen: %d clients, %.1f s: %ld requests, %ld errors, %.0f requests/s\n", n_clients,
           elapsed, sent, errors, (double)lat.n / elapsed);
    printf("loadgen: latency ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", percentile(&lat, 50),
           percentile(&lat, 90), percentile(&lat, 99), lat.n ? lat.ms[lat.n - 1] : 0.0);
    if (errors)
        printf("loadgen: first error: %s\n", first_error);
    for (int i = 0; i < n_clients; i++)
        curl_easy_cleanup(clients[i].easy);
    free(clients);
    free(lat.ms);
    curl_slist_free_all(headers);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return errors ? 1 : 0;
}
