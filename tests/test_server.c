/* The web server in-process (so that ASan and UBSan see it): a synthetic collection of
 * clustered vectors with metadata and thumbnails, vdx_server_start on a free loopback
 * port, and libcurl requests checking statuses, exact error messages, headers, the
 * concept loop over HTTP, ids with '/' and spaces, and concurrent clients. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/http_client.h"
#include "test.h"
#include "vdx/explore.h"
#include "vdx/image.h"
#include "vdx/server.h"

#define DIMS 16
#define N_ITEMS 300
#define CLUSTERS 6

static char data_dir[] = "/tmp/vdx-test-server-XXXXXX";
static vdx_server *server;
static char base[128];
/* "Authorization: Bearer TOKEN", sent with every request while set */
static char bearer[128];
static const char *auth = bearer;
/* The idle timeout the slow-clients test waits for: long enough that 20 requests fit in it
 * on a loaded machine under ASan (they take < 1 s unloaded), so the test checks states, not
 * a race with the clock. */
#define IDLE_TIMEOUT_S 15
#define THUMBNAIL_FILE "tests/golden/thumbnails/orient-1.jpg.64.jpg"
static uint8_t *thumbnail;
static size_t thumbnail_size;

typedef support_reply reply;

/* One request. `type` NULL sends no Content-Type; extra is one more header or NULL. */
static reply request(const char *method, const char *path, const char *type, const char *body,
                     size_t body_size, const char *extra)
{
    /* as long as the test needs: some send 100 KB heads or 5000 query arguments */
    size_t extra_len = extra ? strlen(extra) : 0, auth_len = auth ? strlen(auth) : 0;
    char *url = malloc(strlen(base) + strlen(path) + 1);
    char *headers = malloc(extra_len + auth_len + 2);
    if (!url || !headers) {
        free(url);
        free(headers);
        return (reply){.body = calloc(1, 1)};
    }
    sprintf(url, "%s%s", base, path);
    sprintf(headers, "%s\n%s", extra ? extra : "", auth ? auth : "");
    reply r = support_request(NULL, url, method, type, body, body_size, headers);
    free(url);
    free(headers);
    return r;
}

static reply get(const char *path) { return request("GET", path, NULL, NULL, 0, NULL); }
static reply post_json(const char *path, const char *json)
{
    return request("POST", path, "application/json", json, strlen(json), NULL);
}

/* The "error" of a JSON error reply ("" when there is none). */
static const char *error_of(const reply *r, char *out, size_t size)
{
    cJSON *json = cJSON_Parse(r->body);
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(json, "error");
    snprintf(out, size, "%s", cJSON_IsString(error) ? error->valuestring : "");
    cJSON_Delete(json);
    return out;
}

#define CHECK_ERROR(r, code, message)                                                        \
    do {                                                                                     \
        char got_[1024];                                                                     \
        CHECK((r).status == (code) && !strcmp(error_of(&(r), got_, sizeof got_), message),   \
              "expected %d \"%s\", got %ld %s", code, message, (r).status, (r).body);        \
    } while (0)

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static uint64_t rng = 7;
static float noise(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(rng >> 11) / 9007199254740992.0 - 0.5);
}

static int build_collection(void)
{
    vdx_model_identity model = {.name = "test-model", .dims = DIMS};
    memset(model.config_hash, 'a', 64);
    vdx_store_options opts = {.data_dir = data_dir, .collection = "web", .create = 1, .model = &model};
    vdx_error err = {{0}};
    vdx_store *store = vdx_store_open(&opts, &err);
    if (!store) {
        printf("    %s\n", err.message);
        return -1;
    }
    /* the stored thumbnail: fixed bytes (a Pillow JPEG), which the server must serve as is */
    char *bytes;
    if (vdx_read_file(THUMBNAIL_FILE, &bytes, &thumbnail_size, &err) != 0) {
        printf("    %s\n", err.message);
        vdx_store_close(store);
        return -1;
    }
    thumbnail = (uint8_t *)bytes;
    /* item-2's original is a 2400×1200 JPEG file (as a folder collection's items are) */
    static char original[300];
    snprintf(original, sizeof original, "%s/original.jpg", data_dir);
    uint8_t *big = malloc((size_t)2400 * 1200 * 3), *big_jpeg = NULL;
    size_t big_size = 0;
    for (size_t i = 0; big && i < (size_t)2400 * 1200 * 3; i++)
        big[i] = (uint8_t)((i / 3 % 2400) / 10 + (i % 3) * 40);
    vdx_image large = {.width = 2400, .height = 1200, .rgb = big};
    if (!big || vdx_image_thumbnail_jpeg(&large, 2400, 85, &big_jpeg, &big_size, &err) != 0 ||
        vdx_write_file_atomic(original, big_jpeg, big_size, &err) != 0) {
        printf("    original: %s\n", err.message);
        free(big);
        free(big_jpeg);
        vdx_store_close(store);
        return -1;
    }
    free(big);
    free(big_jpeg);
    static float vectors[N_ITEMS][DIMS];
    static char ids[N_ITEMS][32], groups[N_ITEMS][8];
    static vdx_item items[N_ITEMS];
    static const char *values[N_ITEMS][1];
    static const char *names[1] = {"group"};
    for (int i = 0; i < N_ITEMS; i++) {
        int cluster = i % CLUSTERS;
        double norm = 0;
        for (int d = 0; d < DIMS; d++) {
            vectors[i][d] = (d == cluster ? 1.0f : 0.0f) + 0.3f * noise();
            norm += (double)vectors[i][d] * vectors[i][d];
        }
        for (int d = 0; d < DIMS; d++)
            vectors[i][d] = (float)(vectors[i][d] / sqrt(norm));
        snprintf(ids[i], sizeof ids[i], i == 1 ? "dir/a b.jpg" : "item-%d", i);
        snprintf(groups[i], sizeof groups[i], "g%d", cluster);
        values[i][0] = groups[i];
        items[i] = (vdx_item){.id = ids[i], .url = i == 2 ? original : ids[i], .width = 640, .height = 480,
                              .meta_names = names, .meta_values = values[i], .n_meta = 1,
                              .vector = vectors[i], .thumbnail = thumbnail,
                              .thumbnail_size = thumbnail_size};
    }
    int rc = vdx_store_append(store, items, N_ITEMS, &err);
    if (rc != 0)
        printf("    %s\n", err.message);
    vdx_store_close(store);
    return rc;
}

TEST(test_start)
{
    REQUIRE(mkdtemp(data_dir), "mkdtemp");
    REQUIRE(build_collection() == 0, "collection");
    vdx_server_options opts = {.port = 0, .threads = 4, .max_json_body = 64 * 1024, .max_upload = 256 * 1024,
                               .timeout_s = IDLE_TIMEOUT_S, .head_timeout_s = IDLE_TIMEOUT_S,
                               .store = {.data_dir = data_dir, .collection = "web"}};
    vdx_error err = {{0}};
    server = vdx_server_start(&opts, &err);
    REQUIRE(server, "start: %s", err.message);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", vdx_server_port(server));
    CHECK(vdx_server_item_count(server) == N_ITEMS, "count");
    const char *token = vdx_server_token(server);
    REQUIRE(token && strlen(token) == 48 && strspn(token, "0123456789abcdef") == 48, "token %s", token);
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", token);
    char url[200];
    snprintf(url, sizeof url, "%s/?token=%s", base, token);
    CHECK(!strcmp(vdx_server_url(server), url), "url %s", vdx_server_url(server));
}

TEST(test_page_headers_and_etag)
{
    REQUIRE(server, "no server");
    reply r = get("/");
    CHECK(r.status == 200 && strstr(r.body, "<title>vdx explorer</title>"), "page: %ld", r.status);
    CHECK(strstr(r.headers, "Content-Type: text/html; charset=utf-8\r\n"), "type: %s", r.headers);
    CHECK(strstr(r.headers, "Content-Security-Policy: default-src 'self';"), "csp: %s", r.headers);
    CHECK(strstr(r.headers, "X-Content-Type-Options: nosniff\r\n"), "nosniff");
    char *etag = strstr(r.headers, "ETag: ");
    REQUIRE(etag, "no etag: %s", r.headers);
    char if_none_match[80];
    snprintf(if_none_match, sizeof if_none_match, "If-None-Match: %.*s", (int)strcspn(etag + 6, "\r\n"), etag + 6);
    reply again = request("GET", "/index.html", NULL, NULL, 0, if_none_match);
    CHECK(again.status == 304 && again.size == 0, "revalidation: %ld", again.status);
    reply js = get("/app.js");
    CHECK(js.status == 200 && strstr(js.headers, "Content-Type: text/javascript"), "app.js %ld", js.status);
    free(r.body);
    free(again.body);
    free(js.body);
}

TEST(test_search_like_and_filters)
{
    REQUIRE(server, "no server");
    reply r = post_json("/api/search", "{\"like\":\"item-0\",\"k\":5,\"where\":\"group = 'g0'\"}");
    cJSON *json = cJSON_Parse(r.body);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(json, "items");
    CHECK(r.status == 200 && cJSON_GetArraySize(items) == 5, "like: %ld %s", r.status, r.body);
    double previous = 2;
    const cJSON *item;
    cJSON_ArrayForEach(item, items) {
        const char *id = cJSON_GetObjectItemCaseSensitive(item, "id")->valuestring;
        double score = cJSON_GetObjectItemCaseSensitive(item, "score")->valuedouble;
        CHECK(strcmp(id, "item-0") != 0, "the item itself was returned");
        CHECK(atoi(id + 5) % CLUSTERS == 0, "%s is not in group g0", id);
        CHECK(score <= previous, "not sorted by score");
        previous = score;
    }
    cJSON_Delete(json);
    free(r.body);
    r = post_json("/api/search", "{\"text\":\"a dog\"}");
    CHECK_ERROR(r, 503, "no CLIP model is loaded: start 'vdx serve --model M' with the model this "
                        "collection was embedded with");
    free(r.body);
    r = post_json("/api/search", "{\"text\":\"a\",\"like\":\"item-0\"}");
    CHECK_ERROR(r, 400, "give exactly one of 'text' (a prompt), 'like' (an item id) or 'vector' "
                        "(an array of numbers)");
    free(r.body);
    /* a raw vector: answers like any search, exact or not; bad vectors are refused */
    char body[512];
    int len = snprintf(body, sizeof body, "{\"vector\":[1");
    for (int d = 1; d < DIMS; d++)
        len += snprintf(body + len, sizeof body - (size_t)len, ",%d", d % 3 == 0);
    snprintf(body + len, sizeof body - (size_t)len, "],\"k\":4,\"exact\":true}");
    r = post_json("/api/search", body);
    json = cJSON_Parse(r.body);
    CHECK(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(json, "items")) == 4 &&
              !strcmp(cJSON_GetObjectItemCaseSensitive(json, "query")->valuestring, "vector"),
          "vector: %ld %s", r.status, r.body);
    cJSON_Delete(json);
    free(r.body);
    r = post_json("/api/search", "{\"vector\":[1,2,3]}");
    CHECK_ERROR(r, 400, "'vector' must be an array of 16 numbers (the collection's dimension)");
    free(r.body);
    r = post_json("/api/search", "{\"vector\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}");
    CHECK_ERROR(r, 400, "'vector' is all zeros");
    free(r.body);
    r = post_json("/api/search", "{\"vector\":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,\"x\",0]}");
    CHECK_ERROR(r, 400, "'vector'[14] is not a finite number");
    free(r.body);
    r = post_json("/api/search", "{\"like\":\"item-0\",\"exact\":1}");
    CHECK_ERROR(r, 400, "'exact' must be true or false");
    free(r.body);
    r = post_json("/api/search", "{\"like\":\"item-0\",\"exclude\":[1]}");
    CHECK_ERROR(r, 400, "field 'exclude' entry 0 must be a string");
    free(r.body);
}

TEST(test_item_ids_with_slash_and_space)
{
    REQUIRE(server, "no server");
    reply r = get("/api/items/dir%2Fa%20b.jpg?neighbours=3");
    cJSON *json = cJSON_Parse(r.body);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(json, "id");
    const cJSON *group = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(json, "metadata"), "group");
    CHECK(r.status == 200 && cJSON_IsString(id) && !strcmp(id->valuestring, "dir/a b.jpg"), "%s", r.body);
    CHECK(cJSON_IsString(group) && !strcmp(group->valuestring, "g1"), "metadata: %s", r.body);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(json, "neighbours")) == 3, "neighbours");
    cJSON_Delete(json);
    free(r.body);
    r = get("/api/items/dir%2Fa%20b.jpg/thumbnail");
    CHECK(r.status == 200 && r.size == thumbnail_size && !memcmp(r.body, thumbnail, thumbnail_size),
          "thumbnail %ld, %zu bytes", r.status, r.size);
    CHECK(strstr(r.headers, "Content-Type: image/jpeg\r\n"), "type");
    free(r.body);
    r = get("/api/items/dir/a%20b.jpg");
    CHECK_ERROR(r, 404, "no such item endpoint: a b.jpg");
    free(r.body);
    r = get("/api/items/nope/thumbnail");
    CHECK_ERROR(r, 404, "no item 'nope' in collection 'web'");
    free(r.body);
}

TEST(test_request_policy)
{
    REQUIRE(server, "no server");
    reply r = request("POST", "/api/concepts", "text/plain", "{}", 2, NULL);
    CHECK_ERROR(r, 415, "POST requests need Content-Type: application/json (got text/plain)");
    free(r.body);
    r = request("POST", "/api/concepts", "application/x-www-form-urlencoded", "a=b", 3, NULL);
    CHECK_ERROR(r, 415, "POST requests need Content-Type: application/json (got application/x-www-form-urlencoded)");
    free(r.body);
    size_t big = 100 * 1024;
    char *body = malloc(big);
    memset(body, ' ', big);
    r = request("POST", "/api/search", "application/json", body, big,
                "Expect: 100-continue"); /* as in test_upload_limit: the answer before the body */
    CHECK_ERROR(r, 413, "request body of 102400 bytes exceeds the limit of 65536 bytes");
    free(r.body);
    free(body);
    r = request("POST", "/api/concepts", "application/json", "{}", 2, "Origin: http://evil.example");
    CHECK_ERROR(r, 403, "cross-origin request from http://evil.example refused");
    free(r.body);
    char same_origin[160];
    snprintf(same_origin, sizeof same_origin, "Origin: %s", base);
    const char *like = "{\"like\":\"item-2\"}";
    r = request("POST", "/api/search", "application/json", like, strlen(like), same_origin);
    CHECK(r.status == 200, "same-origin POST: %ld %s", r.status, r.body);
    free(r.body);
    r = get("/api/../../etc/passwd");
    CHECK_ERROR(r, 400, "the request path may not contain '.' or '..' segments");
    free(r.body);
    r = request("GET", "/api/info", NULL, NULL, 0, "Host: attacker.example:80");
    char expected[300];
    int port = vdx_server_port(server);
    snprintf(expected, sizeof expected, "this server answers loopback host names with its port only "
             "(localhost:%d, 127.0.0.1:%d, [::1]:%d), not 'attacker.example:80'", port, port, port);
    CHECK_ERROR(r, 403, expected);
    free(r.body);
    r = post_json("/api/search", "{\"like\": }");
    CHECK_ERROR(r, 400, "malformed JSON body at byte 9");
    free(r.body);
    r = request("PATCH", "/api/info", "application/json", "{}", 2, NULL);
    CHECK_ERROR(r, 405, "PATCH is not allowed on /api/info (GET)");
    free(r.body);
}

/* Ids and labels of a candidates/search "items" array. */
static int item_ids(const char *body, const char *path, char ids[][32], int max)
{
    cJSON *json = cJSON_Parse(body);
    const cJSON *node = json;
    if (path)
        node = cJSON_GetObjectItemCaseSensitive(node, path);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(node, "items"), *item;
    int n = 0;
    cJSON_ArrayForEach(item, items) {
        if (n < max)
            snprintf(ids[n++], 32, "%s", cJSON_GetObjectItemCaseSensitive(item, "id")->valuestring);
    }
    cJSON_Delete(json);
    return n;
}

TEST(test_concept_loop)
{
    REQUIRE(server, "no server");
    reply r = post_json("/api/concepts", "{\"name\":\"cluster 0\",\"examples\":[\"item-0\"]}");
    REQUIRE(r.status == 201, "create: %ld %s", r.status, r.body);
    free(r.body);
    r = get("/api/concepts/cluster%200/candidates?k=9");
    char first[9][32];
    int n = item_ids(r.body, NULL, first, 9);
    CHECK(r.status == 200 && n == 9, "candidates: %ld %s", r.status, r.body);
    free(r.body);
    char labels[2048] = "{\"labels\":[";
    for (int i = 0; i < n; i++) {
        int positive = atoi(first[i] + 5) % CLUSTERS == 0 && i < 3;
        snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%s{\"id\":\"%s\",\"label\":%d}",
                 i ? "," : "", first[i], positive);
    }
    strcat(labels, "]}");
    r = post_json("/api/concepts/cluster%200/labels", labels);
    CHECK(r.status == 200 && strstr(r.body, "\"changed\":9"), "labels: %ld %s", r.status, r.body);
    free(r.body);
    r = post_json("/api/concepts/cluster%200/train", "{\"next\":{\"k\":9}}");
    char next[9][32];
    int m = item_ids(r.body, "candidates", next, 9);
    CHECK(r.status == 200 && m == 9 && strstr(r.body, "\"round\":{\"round\":1"), "train: %ld %s", r.status, r.body);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            CHECK(strcmp(next[i], first[j]) != 0, "labelled %s offered again", next[i]);
    free(r.body);
    r = get("/api/concepts/cluster%200/export?what=labels&format=csv");
    CHECK(r.status == 200 && !strncmp(r.body, "id,url,label,time\r\n", 19), "export: %ld %s", r.status, r.body);
    CHECK(strstr(r.headers, "Content-Disposition: attachment; filename=\"cluster_0-labels.csv\"\r\n"), "%s", r.headers);
    for (int j = 0; j < n; j++)
        CHECK(strstr(r.body, first[j]), "export misses %s", first[j]);
    free(r.body);
    const char *infinite = "{\"threshold\":1e999}";
    r = request("PATCH", "/api/concepts/cluster%200", "application/json", infinite, strlen(infinite), NULL);
    CHECK_ERROR(r, 400, "field 'threshold' must be a finite number");
    free(r.body);
    const char *patch = "{\"threshold\":-0.25,\"name\":\"c0\"}";
    r = request("PATCH", "/api/concepts/cluster%200", "application/json", patch, strlen(patch), NULL);
    CHECK(r.status == 200 && strstr(r.body, "\"name\":\"c0\"") && strstr(r.body, "\"threshold\":-0.25"),
          "patch: %ld %s", r.status, r.body);
    free(r.body);
    r = get("/api/concepts/c0/evaluate?bins=10");
    CHECK(r.status == 200 && strstr(r.body, "\"histogram\"") &&
              strstr(r.body, "\"scores\":{\"source\":\"vectors\",\"max_error\":0}"),
          "evaluate: %ld %s", r.status, r.body);
    free(r.body);
    /* exact is 0 or 1; a bad value is refused, naming it */
    r = get("/api/concepts/c0/evaluate?exact=2");
    CHECK(r.status == 400 && strstr(r.body, "exact"), "evaluate exact=2: %ld %s", r.status, r.body);
    free(r.body);
    r = get("/api/concepts/c0/scores?exact=yes");
    CHECK(r.status == 400 && strstr(r.body, "exact"), "scores exact=yes: %ld %s", r.status, r.body);
    free(r.body);
    r = get("/api/concepts/c0/scores?exact=1&all=1&top=5");
    CHECK(r.status == 200 && strstr(r.body, "\"source\":\"vectors\""), "scores exact=1: %ld %s",
          r.status, r.body);
    free(r.body);
    /* the round's calibration, estimates unknown before an audit, the audit sample, then
     * estimates with intervals */
    r = get("/api/concepts/c0/evaluate?bins=10");
    CHECK(r.status == 200 && strstr(r.body, "\"calibration\":{\"method\":\"platt\",\"a\":") &&
              strstr(r.body, "\"threshold_probability\":") && strstr(r.body, "\"probability_histogram\":{\"min\":0,\"max\":1,") &&
              strstr(r.body, "\"estimates\":{\"status\":\"unknown\",\"audit_labels\":0,") &&
              strstr(r.body, "\"positives\":null,\"precision\":null,\"recall\":null"),
          "evaluate before the audit: %ld %s", r.status, r.body);
    free(r.body);
    r = get("/api/concepts/c0/candidates?mode=audit&k=4");
    char audit[4][32];
    int n_audit = item_ids(r.body, NULL, audit, 4);
    /* 291 unlabelled items in strata of 3, 27 and 261 by score: 2, 1 and 1 draws */
    CHECK(r.status == 200 && n_audit == 4 && strstr(r.body, "\"mode\":\"audit\"") &&
              strstr(r.body, "\"audit\":{\"design\":\"stratified by score\",\"drawn\":4,"
                             "\"labelled\":0,\"pending\":4}") &&
              strstr(r.body, "\"weight\":1.5,") && strstr(r.body, "\"weight\":27,") &&
              strstr(r.body, "\"weight\":261,"),
          "audit sample: %ld %s", r.status, r.body);
    free(r.body);
    char audit_labels[512] = "{\"labels\":[";
    for (int i = 0; i < n_audit; i++)
        snprintf(audit_labels + strlen(audit_labels), sizeof audit_labels - strlen(audit_labels),
                 "%s{\"id\":\"%s\",\"label\":0}", i ? "," : "", audit[i]);
    strcat(audit_labels, "]}");
    r = post_json("/api/concepts/c0/labels", audit_labels);
    free(r.body);
    r = get("/api/concepts/c0/evaluate?bins=10");
    CHECK(r.status == 200 && strstr(r.body, "\"estimates\":{\"status\":\"estimated\",\"audit_labels\":4,") &&
              strstr(r.body, "\"positives\":{\"value\":") && strstr(r.body, "\"lo\":") && strstr(r.body, "\"hi\":"),
          "evaluate after the audit: %ld %s", r.status, r.body);
    free(r.body);
    r = get("/api/concepts/c0/candidates?mode=audit&where=cluster%3D1");
    CHECK_ERROR(r, 400, "the audit sample is drawn from the whole collection: it takes no filter");
    free(r.body);
    r = post_json("/api/concepts/c0/threshold/fit", "{\"target\":\"f1\"}");
    CHECK(r.status == 200 && strstr(r.body, "\"target\":\"f1\"") && strstr(r.body, "\"previous\":-0.25"),
          "threshold fit: %ld %s", r.status, r.body);
    free(r.body);
    r = post_json("/api/concepts/c0/threshold/fit", "{\"target\":\"precision\",\"precision\":1.5}");
    CHECK_ERROR(r, 400, "field 'precision' must be a number in (0, 1] with \"target\": \"precision\"");
    free(r.body);
    r = post_json("/api/concepts/c0/threshold/fit", "{\"target\":\"f1\",\"source\":\"guess\"}");
    CHECK_ERROR(r, 400, "field 'source' must be auto, calibration or labels, not 'guess'");
    free(r.body);
    r = post_json("/api/concepts/c0/threshold/fit", "{\"target\":\"recall\"}");
    CHECK_ERROR(r, 400, "field 'target' must be f1 or precision, not 'recall'");
    free(r.body);
    r = get("/api/concepts/c0/threshold/fit");
    CHECK_ERROR(r, 405, "GET is not allowed on /api/concepts/NAME/threshold/fit");
    free(r.body);
    r = get("/api/concepts/c0/evaluate?bins=10");
    CHECK(r.status == 200 && strstr(r.body, "\"warnings\":[") && strstr(r.body, "\"training\":{") &&
              strstr(r.body, "\"labelled\":[") && strstr(r.body, "\"f1\":"),
          "evaluate after the fit: %ld %s", r.status, r.body);
    free(r.body);
    /* undo and redo one label action; the round separately, keeping its labels */
    r = get("/api/concepts/c0/history");
    CHECK(r.status == 200 && strstr(r.body, "\"actions\":[{\"action\":") && strstr(r.body, "\"can_redo\":false"),
          "history: %ld %s", r.status, r.body);
    free(r.body);
    r = post_json("/api/concepts/c0/undo", "{}");
    CHECK(r.status == 200 && strstr(r.body, "\"undone\":\"labels\""), "undo: %ld %s", r.status, r.body);
    free(r.body);
    r = post_json("/api/concepts/c0/redo", "{}");
    CHECK(r.status == 200 && strstr(r.body, "\"redone\":\"labels\""), "redo: %ld %s", r.status, r.body);
    free(r.body);
    r = post_json("/api/concepts/c0/redo", "{}");
    CHECK_ERROR(r, 409, "nothing to redo in concept 'c0'");
    CHECK(strstr(r.body, "\"kind\":\"conflict\""), "no kind in %s", r.body);
    free(r.body);
    r = post_json("/api/concepts/c0/revert", "{\"action\":4242}");
    CHECK_ERROR(r, 404, "concept 'c0' has no label action 4242");
    free(r.body);
    r = post_json("/api/concepts/c0/revert", "{}");
    CHECK_ERROR(r, 400, "field 'action' is required: the number of a label action");
    free(r.body);
    r = post_json("/api/concepts/c0/undo", "{\"revert_labels\":true}");
    CHECK_ERROR(r, 400, "field 'revert_labels' goes with \"round\": true");
    free(r.body);
    r = post_json("/api/concepts/c0/undo", "{\"round\":true}");
    CHECK(r.status == 200 && strstr(r.body, "\"undone\":\"round\"") && strstr(r.body, "\"weight\":\"initial\"") &&
              strstr(r.body, "\"labels_reverted\":0"),
          "undo round: %ld %s", r.status, r.body);
    free(r.body);
    r = post_json("/api/concepts/c0/undo", "{\"round\":true}");
    CHECK_ERROR(r, 409, "concept 'c0' has no round to undo");
    free(r.body);
    r = request("DELETE", "/api/concepts/c0", NULL, NULL, 0, NULL);
    CHECK(r.status == 200, "delete: %ld %s", r.status, r.body);
    free(r.body);
    r = get("/api/concepts/c0");
    CHECK_ERROR(r, 404, "no concept named 'c0'");
    CHECK(strstr(r.body, "\"kind\":\"not_found\""), "no kind in %s", r.body);
    free(r.body);
}

static void *client_thread(void *arg)
{
    int *failures = arg;
    for (int i = 0; i < 25; i++) {
        char body[96];
        snprintf(body, sizeof body, "{\"like\":\"item-%d\",\"k\":9}", (i * 13) % N_ITEMS);
        reply r = post_json("/api/search", body);
        if (r.status != 200)
            (*failures)++;
        free(r.body);
        snprintf(body, sizeof body, "{\"labels\":[{\"id\":\"item-%d\",\"label\":%d}]}", 100 + i, i % 2);
        r = post_json("/api/concepts/shared/labels", body);
        if (r.status != 200)
            (*failures)++;
        free(r.body);
    }
    return NULL;
}

/* The detail view's rendition: made from the original, 1600 px on the longer side, kept
 * beside the thumbnails; an item whose original cannot be had says why. */
TEST(test_preview)
{
    reply r = get("/api/items/item-2/preview");
    CHECK(r.status == 200 && strstr(r.headers, "Content-Type: image/jpeg"), "preview: %ld %s", r.status, r.headers);
    vdx_image image = {0};
    vdx_error err = {{0}};
    int rc = r.status == 200 ? vdx_image_decode((const uint8_t *)r.body, r.size, "preview", &image, &err) : -1;
    CHECK(rc == 0 && image.width == 1600 && image.height == 800, "preview is %dx%d: %s", image.width,
          image.height, err.message);
    vdx_image_free(&image);
    char hex[65], path[512];
    vdx_sha256_hex("item-2", 6, hex);
    snprintf(path, sizeof path, "%s/collections/web/previews/%s.jpg", data_dir, hex);
    char *kept = NULL;
    size_t kept_size = 0;
    CHECK(vdx_read_file(path, &kept, &kept_size, &err) == 0 && kept_size == r.size &&
              !memcmp(kept, r.body, r.size),
          "the preview is not kept at %s: %s", path, err.message);
    free(kept);
    free(r.body);
    r = get("/api/items/item-3/preview");
    CHECK(r.status == 200 && r.size == thumbnail_size && !memcmp(r.body, thumbnail, r.size) &&
              strstr(r.headers, "X-Vdx-Preview: thumbnail; item-3: "),
          "no original: the thumbnail and why: %ld %s", r.status, r.headers);
    free(r.body);
    r = get("/api/items/nope/preview");
    CHECK_ERROR(r, 404, "collection 'web': no item 'nope'");
    free(r.body);
}

/* A small collection NAME of n items "NAME-i" beside "web", embedded with the model whose
 * config hash is all `hash` ('a' is web's). */
static int small_collection(const char *name, char hash, int n)
{
    vdx_model_identity model = {.name = "test-model", .dims = DIMS};
    memset(model.config_hash, hash, 64);
    vdx_store_options opts = {.data_dir = data_dir, .collection = name, .create = 1, .model = &model};
    vdx_error err = {{0}};
    vdx_store *store = vdx_store_open(&opts, &err);
    if (!store) {
        printf("    %s\n", err.message);
        return -1;
    }
    float vectors[8][DIMS];
    char ids[8][80];
    vdx_item items[8];
    for (int i = 0; i < n && i < 8; i++) {
        for (int d = 0; d < DIMS; d++)
            vectors[i][d] = d == i ? 1.0f : 0.0f;
        snprintf(ids[i], sizeof ids[i], "%s-%d", name, i);
        items[i] = (vdx_item){.id = ids[i], .url = ids[i], .width = 10, .height = 10, .vector = vectors[i],
                              .thumbnail = thumbnail, .thumbnail_size = thumbnail_size};
    }
    int rc = vdx_store_append(store, items, (size_t)n, &err);
    if (rc != 0)
        printf("    %s\n", err.message);
    vdx_store_close(store);
    return rc;
}

/* One server, several collections of its data directory: listed for the page's
 * switcher, each reached with ?collection=NAME, with its own items and concept book;
 * one embedded with another model is listed as unavailable, and refused. */
TEST(test_collections)
{
    REQUIRE(server, "no server");
    REQUIRE(small_collection("second", 'a', 3) == 0 && small_collection("alien", 'b', 2) == 0, "collections");
    char junk[400];
    snprintf(junk, sizeof junk, "%s/collections/junk", data_dir);
    REQUIRE(mkdir(junk, 0700) == 0, "mkdir %s", junk);
    reply r = get("/api/collections");
    cJSON *json = cJSON_Parse(r.body);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(json, "collections");
    CHECK(r.status == 200 && cJSON_GetArraySize(list) == 3, "collections: %ld %s", r.status, r.body);
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "default")), "web"), "default: %s", r.body);
    static const char *const names[] = {"alien", "second", "web"};
    static const int counts[] = {-1, 3, N_ITEMS};
    for (int i = 0; i < 3 && i < cJSON_GetArraySize(list); i++) {
        const cJSON *c = cJSON_GetArrayItem(list, i);
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "name"));
        int available = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "available"));
        const cJSON *count = cJSON_GetObjectItemCaseSensitive(c, "count");
        const char *reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "reason"));
        CHECK(name && !strcmp(name, names[i]), "entry %d is %s, not %s", i, name ? name : "?", names[i]);
        if (counts[i] < 0)
            CHECK(!available && !count && reason && strstr(reason, "collection 'alien' was embedded with model"),
                  "alien: %s", r.body);
        else
            CHECK(available && cJSON_IsNumber(count) && count->valueint == counts[i], "%s: %s", names[i], r.body);
    }
    cJSON_Delete(json);
    free(r.body);
    /* the second collection's own items, thumbnails, search and concept book */
    r = get("/api/info?collection=second");
    json = cJSON_Parse(r.body);
    CHECK(r.status == 200 && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "collection")), "second") &&
              cJSON_GetObjectItemCaseSensitive(json, "count")->valueint == 3,
          "info: %ld %s", r.status, r.body);
    cJSON_Delete(json);
    free(r.body);
    r = get("/api/items/second-1/thumbnail?collection=second");
    CHECK(r.status == 200 && r.size == thumbnail_size, "thumbnail: %ld", r.status);
    free(r.body);
    r = get("/api/items/second-1");
    CHECK_ERROR(r, 404, "no item 'second-1' in collection 'web'");
    free(r.body);
    r = post_json("/api/search?collection=second", "{\"like\":\"second-0\",\"k\":5}");
    json = cJSON_Parse(r.body);
    CHECK(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(json, "items")) == 2,
          "search in second: %ld %s", r.status, r.body);
    cJSON_Delete(json);
    free(r.body);
    r = post_json("/api/concepts?collection=second", "{\"name\":\"only here\",\"examples\":[\"second-2\"]}");
    CHECK(r.status == 201, "concept in second: %ld %s", r.status, r.body);
    free(r.body);
    r = get("/api/concepts?collection=second");
    CHECK(r.status == 200 && strstr(r.body, "\"only here\""), "listed in second: %s", r.body);
    free(r.body);
    r = get("/api/concepts");
    CHECK(r.status == 200 && !strstr(r.body, "\"only here\""), "not in web: %s", r.body);
    free(r.body);
    r = get("/api/concepts/only%20here?collection=web");
    CHECK_ERROR(r, 404, "no concept named 'only here'");
    free(r.body);
    /* refused: another model, no such collection, a name that climbs out */
    r = get("/api/info?collection=alien");
    CHECK(r.status == 409 && strstr(r.body, "collection 'alien' was embedded with model"), "alien: %ld %s", r.status, r.body);
    free(r.body);
    r = get("/api/info?collection=nope");
    CHECK(r.status == 404 && strstr(r.body, "collection 'nope' does not exist") && strstr(r.body, "second"),
          "nope: %ld %s", r.status, r.body);
    free(r.body);
    r = get("/api/info?collection=..%2Fweb");
    CHECK_ERROR(r, 400, "collection name '../web' has a character not allowed at byte 2 (use letters, digits, '_', '.', '-')");
    free(r.body);
    r = request("POST", "/api/collections", "application/json", "{}", 2, NULL);
    CHECK_ERROR(r, 405, "POST is not allowed on /api/collections (GET)");
    free(r.body);
}

TEST(test_concurrent_clients)
{
    REQUIRE(server, "no server");
    reply r = post_json("/api/concepts", "{\"name\":\"shared\",\"examples\":[\"item-3\"]}");
    REQUIRE(r.status == 201, "create: %s", r.body);
    free(r.body);
    pthread_t threads[6];
    int failures[6] = {0};
    for (int i = 0; i < 6; i++)
        pthread_create(&threads[i], NULL, client_thread, &failures[i]);
    for (int i = 0; i < 6; i++) {
        pthread_join(threads[i], NULL);
        CHECK(failures[i] == 0, "client %d: %d failed requests", i, failures[i]);
    }
    r = get("/api/concepts/shared");
    CHECK(strstr(r.body, "\"positive\":12,\"negative\":13"), "labels after the clients: %s", r.body);
    free(r.body);
}

/* A connection that sends `text` and then nothing more. */
static int stalled_connection(const char *text)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)vdx_server_port(server))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

TEST(test_slow_clients_do_not_stall_others)
{
    REQUIRE(server, "no server");
    /* more stalled clients than request threads: half a header, half a body */
    int fds[12];
    char post[400];
    snprintf(post, sizeof post, "POST /api/search HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n"
             "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"like\"",
             vdx_server_port(server), bearer);
    for (int i = 0; i < 12; i++) {
        fds[i] = stalled_connection(i % 2 ? "GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n" : post);
        REQUIRE(fds[i] >= 0, "connect");
    }
    for (int i = 0; i < 20; i++) {
        reply r = post_json("/api/search", "{\"like\":\"item-5\",\"k\":3}");
        CHECK(r.status == 200, "request %d beside the stalled clients: %ld", i, r.status);
        free(r.body);
    }
    /* answered while every stalled connection was still open, waiting */
    for (int i = 0; i < 12; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        CHECK(poll(&p, 1, 0) == 0, "stalled connection %d was closed before the others were served", i);
    }
    /* then the idle timeout closes them (waiting up to twice as long) */
    int closed = 0;
    for (int i = 0; i < 12; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        char byte;
        if (poll(&p, 1, 2 * IDLE_TIMEOUT_S * 1000) == 1 && read(fds[i], &byte, 1) <= 0)
            closed++;
        close(fds[i]);
    }
    CHECK(closed == 12, "%d of 12 stalled connections closed by the server", closed);
}

/* Every kind of reply carries the same security headers: the page, JSON, an error, a
 * thumbnail. */
TEST(test_security_headers_on_every_reply)
{
    REQUIRE(server, "no server");
    static const char *const paths[] = {"/", "/api/info", "/api/items/nope",
                                        "/api/items/dir%2Fa%20b.jpg/thumbnail"};
    static const char *const headers[] = {
        "X-Content-Type-Options: nosniff\r\n", "X-Frame-Options: DENY\r\n",
        "Referrer-Policy: no-referrer\r\n", "Cross-Origin-Opener-Policy: same-origin\r\n",
        "Cross-Origin-Resource-Policy: same-origin\r\n"};
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        reply r = get(paths[p]);
        CHECK(r.status == (p == 2 ? 404 : 200), "%s: %ld", paths[p], r.status);
        for (size_t h = 0; h < sizeof headers / sizeof headers[0]; h++)
            CHECK(strstr(r.headers, headers[h]), "%s lacks %.40s", paths[p], headers[h]);
        free(r.body);
    }
}

/* The image upload has its own limit (256 KiB here, 20 MiB by default), above the JSON one. */
TEST(test_upload_limit)
{
    REQUIRE(server, "no server");
    size_t over = 256 * 1024 + 1, under = 200 * 1024; /* under: above the 64 KiB JSON limit */
    char *body = calloc(1, over);
    REQUIRE(body, "calloc");
    /* the client waits for the server's answer before sending the body (as large uploads
     * do): the 413 comes from the head alone, so a server that closes without reading the
     * body cannot reset the connection under a client still writing it */
    reply r = request("POST", "/api/search/image", "image/jpeg", body, over,
                      "Expect: 100-continue");
    CHECK_ERROR(r, 413, "request body of 262145 bytes exceeds the limit of 262144 bytes");
    free(r.body);
    /* within the limit the bytes reach the handler (this server has no model: 503) */
    r = request("POST", "/api/search/image", "image/jpeg", body, under, NULL);
    CHECK(r.status == 503, "a %zu-byte upload: %ld %s", under, r.status, r.body);
    free(r.body);
    free(body);
}

/* Status of GET /api/info with one extra header (and the token unless `with_token` is 0). */
static long info_status(const char *header, int with_token)
{
    const char *saved = auth;
    if (!with_token)
        auth = NULL;
    reply r = request("GET", "/api/info", NULL, NULL, 0, header);
    auth = saved;
    free(r.body);
    return r.status;
}

/* F1: exact loopback Host names with the port (no prefix match), Origin with its scheme. */
TEST(test_loopback_host_and_origin_exact)
{
    REQUIRE(server, "no server");
    int port = vdx_server_port(server);
    char header[200];
    const char *refused[] = {"127.0.0.1.attacker.example", "127.1.2.3", "localhost.attacker.example",
                             "127.0.0.1", "[::1]:1"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (i < 3)
            snprintf(header, sizeof header, "Host: %s:%d", refused[i], port);
        else
            snprintf(header, sizeof header, "Host: %s", refused[i]);
        CHECK(info_status(header, 1) == 403, "%s was accepted", header);
    }
    snprintf(header, sizeof header, "Host: 127.0.0.1:%d:80", port);
    CHECK(info_status(header, 1) == 403, "%s was accepted", header);
    const char *accepted[] = {"localhost", "127.0.0.1", "[::1]", "LOCALHOST"};
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        snprintf(header, sizeof header, "Host: %s:%d", accepted[i], port);
        CHECK(info_status(header, 1) == 200, "%s was refused", header);
    }
    /* the Origin must be scheme://host:port exactly */
    const char *like = "{\"like\":\"item-2\"}";
    const char *origins[] = {"https://127.0.0.1:%d", "http://127.0.0.1:%d.attacker.example",
                             "http://127.0.0.1:%d/", "http://localhost:%d"};
    for (size_t i = 0; i < sizeof origins / sizeof origins[0]; i++) {
        char origin[160];
        snprintf(origin, sizeof origin, origins[i], port);
        snprintf(header, sizeof header, "Origin: %s", origin);
        reply r = request("POST", "/api/search", "application/json", like, strlen(like), header);
        char message[300];
        snprintf(message, sizeof message, "cross-origin request from %s refused", origin);
        CHECK_ERROR(r, 403, message);
        free(r.body);
    }
}

/* Access tokens: API without → 401, wrong → 401, the page trades ?token= for a cookie. */
TEST(test_access_token)
{
    REQUIRE(server, "no server");
    const char *token = vdx_server_token(server);
    CHECK(info_status(NULL, 0) == 401, "no token");
    CHECK(info_status("Authorization: Bearer 0123456789abcdef0123456789abcdef0123456789abcdef", 0) == 401,
          "wrong token");
    const char *saved = auth;
    auth = NULL;
    reply r = get("/api/concepts");
    CHECK_ERROR(r, 401, "this server needs its access token: open the address that 'vdx serve' "
                        "printed, or send 'Authorization: Bearer TOKEN'");
    free(r.body);
    r = get("/");
    CHECK(r.status == 401 && strstr(r.body, "needs its access token") && !strstr(r.body, token),
          "page without token: %ld %s", r.status, r.body);
    free(r.body);
    r = get("/?token=wrong-token-wrong-token");
    CHECK(r.status == 403 && !strstr(r.headers, "Set-Cookie"), "wrong token: %ld %s", r.status, r.headers);
    free(r.body);
    char path[200], cookie[200], expected[300];
    snprintf(path, sizeof path, "/?token=%s", token);
    r = get(path);
    int port = vdx_server_port(server);
    snprintf(expected, sizeof expected, "Set-Cookie: vdx-token-%d=%s; Path=/; HttpOnly; SameSite=Strict\r\n",
             port, token);
    CHECK(r.status == 303 && strstr(r.headers, "Location: /\r\n") && strstr(r.headers, expected),
          "exchange: %ld %s", r.status, r.headers);
    free(r.body);
    snprintf(cookie, sizeof cookie, "Cookie: vdx-token-%d=%s", port, token);
    CHECK(info_status(cookie, 0) == 200, "the cookie is not accepted");
    r = request("GET", "/", NULL, NULL, 0, cookie);
    CHECK(r.status == 200 && strstr(r.body, "<title>vdx explorer</title>"), "page with cookie: %ld", r.status);
    free(r.body);
    snprintf(cookie, sizeof cookie, "Cookie: vdx-token-%d=%sx", port, token);
    CHECK(info_status(cookie, 0) == 401, "a longer token was accepted");
    auth = saved;
    /* static assets hold no data: served without the token */
    auth = NULL;
    r = get("/app.js");
    CHECK(r.status == 200, "app.js without token: %ld", r.status);
    free(r.body);
    auth = saved;
}

/* --no-token only on loopback; a weak --token is refused. */
TEST(test_token_rules)
{
    vdx_error err = {{0}};
    vdx_server_options opts = {.host = "0.0.0.0", .port = 0, .no_token = 1,
                               .store = {.data_dir = data_dir, .collection = "web"}};
    vdx_server *s = vdx_server_start(&opts, &err);
    CHECK(!s && !strcmp(err.message, "serving on 0.0.0.0 without an access token is refused: only a "
                                     "loopback address may run without one"), "%s", err.message);
    vdx_server_stop(s);
    opts = (vdx_server_options){.port = 0, .token = "short", .store = {.data_dir = data_dir, .collection = "web"}};
    s = vdx_server_start(&opts, &err);
    CHECK(!s && !strcmp(err.message, "an access token needs 16 to 256 characters, not 5"), "%s", err.message);
    vdx_server_stop(s);
    CHECK(vdx_server_check_token("abcdefghijklmnop;", &err) != 0 &&
          !strcmp(err.message, "an access token may hold letters, digits and . _ ~ - only (byte 16 is not one)"),
          "%s", err.message);
}

/* --read-only: searches and reads answer, every change is refused with 403. */
TEST(test_read_only)
{
    REQUIRE(server, "no server");
    vdx_error err = {{0}};
    vdx_server_options opts = {.port = 0, .read_only = 1, .token = "read-only-token-0123",
                               .store = {.data_dir = data_dir, .collection = "web"}};
    vdx_server *ro = vdx_server_start(&opts, &err);
    REQUIRE(ro, "start: %s", err.message);
    char saved_base[128], saved_bearer[128];
    memcpy(saved_base, base, sizeof base);
    memcpy(saved_bearer, bearer, sizeof bearer);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", vdx_server_port(ro));
    snprintf(bearer, sizeof bearer, "Authorization: Bearer read-only-token-0123");
    reply r = post_json("/api/search", "{\"like\":\"item-2\",\"k\":3}");
    CHECK(r.status == 200, "search on a read-only server: %ld %s", r.status, r.body);
    free(r.body);
    r = get("/api/concepts");
    CHECK(r.status == 200, "list: %ld", r.status);
    free(r.body);
    static const struct { const char *method, *path, *body; } writes[] = {
        {"POST", "/api/concepts", "{\"name\":\"ro\",\"examples\":[\"item-1\"]}"},
        {"POST", "/api/concepts/shared/labels", "{\"labels\":[{\"id\":\"item-1\",\"label\":1}]}"},
        {"POST", "/api/concepts/shared/train", "{}"},
        {"POST", "/api/concepts/shared/undo", "{}"},
        {"POST", "/api/concepts/shared/copy", "{\"name\":\"ro2\"}"},
        {"POST", "/api/concepts/import?name=x", "{}"},
        {"PATCH", "/api/concepts/shared", "{\"threshold\":1}"},
        {"DELETE", "/api/concepts/shared", NULL},
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        const char *body = writes[i].body;
        r = request(writes[i].method, writes[i].path, body ? "application/json" : NULL, body,
                    body ? strlen(body) : 0, NULL);
        char path[128], message[300];
        snprintf(path, sizeof path, "%.*s", (int)strcspn(writes[i].path, "?"), writes[i].path);
        snprintf(message, sizeof message, "this server is read-only (vdx serve --read-only): %s %s "
                 "would change the concept book", writes[i].method, path);
        CHECK_ERROR(r, 403, message);
        free(r.body);
    }
    r = get("/api/concepts/shared/candidates?mode=audit&k=3");
    CHECK_ERROR(r, 403, "this server is read-only (vdx serve --read-only): drawing an audit "
                        "sample would change the concept book");
    free(r.body);
    memcpy(base, saved_base, sizeof base);
    memcpy(bearer, saved_bearer, sizeof bearer);
    vdx_server_stop(ro);
    r = get("/api/concepts/shared");
    CHECK(r.status == 200 && strstr(r.body, "\"positive\":12,\"negative\":13"), "unchanged: %s", r.body);
    free(r.body);
}

/* F11: oversized request lines and query strings get 414, oversized heads 431, promptly. */
TEST(test_oversized_request_heads)
{
    REQUIRE(server, "no server");
    size_t n = 600 * 4 + 64;
    char *path = malloc(n);
    strcpy(path, "/api/concepts/shared/candidates?k=3");
    for (int i = 0; i < 600; i++)
        strcat(path, "&a=1");
    double t0 = vdx_now();
    reply r = get(path);
    CHECK_ERROR(r, 414, "the request line is longer than 8192 bytes or has more than 256 query arguments");
    CHECK(vdx_now() - t0 < 10, "the 414 took %.1f s", vdx_now() - t0);
    free(r.body);
    free(path);
    path = malloc(10100);
    strcpy(path, "/api/info?where=");
    memset(path + 16, 'x', 10000);
    path[10016] = 0;
    r = get(path);
    CHECK(r.status == 414, "long query string: %ld %s", r.status, r.body);
    free(r.body);
    free(path);
    char *header = malloc(100 * 1024);
    strcpy(header, "X-Big: ");
    memset(header + 7, 'y', 100 * 1024 - 8);
    header[100 * 1024 - 1] = 0;
    r = request("GET", "/api/info", NULL, NULL, 0, header);
    CHECK(r.status == 431, "100 KB header: %ld", r.status);
    free(r.body);
    free(header);
    path = malloc(60 * 1024);
    strcpy(path, "/api/info?a=1");
    for (int i = 0; i < 5000; i++)
        strcat(path, "&b=2");
    t0 = vdx_now();
    r = get(path);
    /* libmicrohttpd's pool cannot hold 5000 arguments (0.9.75 then answers nothing): the
     * query string is cut before it splits it, and the 414 comes at once */
    CHECK_ERROR(r, 414, "the request line is longer than 8192 bytes or has more than 256 query arguments");
    CHECK(vdx_now() - t0 < 5, "the answer took %.1f s", vdx_now() - t0);
    free(r.body);
    free(path);
}

/* A connection from `source` (a loopback address) to `port` that sent `text`, or -1. */
static int connection_from(int port, const char *source, const char *text)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &from.sin_addr);
    to.sin_port = htons((uint16_t)port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&from, sizeof from) != 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof to) != 0 ||
        send(fd, text, strlen(text), MSG_NOSIGNAL) != (ssize_t)strlen(text)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int connection_open(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) == 0;
}

static void *served_client(void *arg)
{
    int *failures = arg;
    for (int i = 0; i < 30; i++) {
        reply r = post_json("/api/search", "{\"like\":\"item-7\",\"k\":3}");
        *failures += r.status != 200;
        free(r.body);
        usleep(50 * 1000);
    }
    return NULL;
}

/* F3: 1,100 connections from one client address that trickle a header line every 0.5 s
 * (bounded: 4 s on loopback). The per-client limit (64) refuses most of them, the head
 * deadline (2 s here) closes the rest, and another client is served all along. */
TEST(test_slow_client_flood)
{
    REQUIRE(server, "no server");
    /* a server of its own, with a 2 s head deadline, on the same collection */
    vdx_error err = {{0}};
    vdx_server_options opts = {.port = 0, .head_timeout_s = 2, .token = "flood-test-token-0123",
                               .store = {.data_dir = data_dir, .collection = "web"}};
    vdx_server *flood = vdx_server_start(&opts, &err);
    REQUIRE(flood, "start: %s", err.message);
    char saved_base[128], saved_bearer[128];
    memcpy(saved_base, base, sizeof base);
    memcpy(saved_bearer, bearer, sizeof bearer);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", vdx_server_port(flood));
    snprintf(bearer, sizeof bearer, "Authorization: Bearer flood-test-token-0123");
    enum { N = 1100 };
    static int fds[N];
    int opened = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = connection_from(vdx_server_port(flood), "127.0.0.2", "GET /api/info HTTP/1.1\r\n");
        opened += fds[i] >= 0;
    }
    REQUIRE(opened == N, "only %d of %d connections could be made", opened, N);
    int failures = 0;
    pthread_t client;
    pthread_create(&client, NULL, served_client, &failures);
    int max_open = 0;
    double start = vdx_now();
    while (vdx_now() - start < 4.0) {
        usleep(500 * 1000);
        int still = 0;
        for (int i = 0; i < N; i++) {
            if (fds[i] < 0)
                continue;
            if (connection_open(fds[i]) && send(fds[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL) == 11) {
                still++;
            } else {
                close(fds[i]);
                fds[i] = -1;
            }
        }
        if (still > max_open)
            max_open = still;
    }
    pthread_join(client, NULL);
    CHECK(failures == 0, "%d of 30 requests of another client failed beside the flood", failures);
    CHECK(max_open <= 64, "%d connections from one address were kept open (limit 64)", max_open);
    int left = 0;
    for (int i = 0; i < N; i++) {
        if (fds[i] >= 0) {
            left += connection_open(fds[i]);
            close(fds[i]);
        }
    }
    CHECK(left == 0, "%d trickling connections outlived the 2 s head deadline", left);
    memcpy(base, saved_base, sizeof base);
    memcpy(bearer, saved_bearer, sizeof bearer);
    vdx_server_stop(flood);
}

/* The concept book as the API shows it: the list, and each concept with its labels. */
static char *book_snapshot(void)
{
    reply list = get("/api/concepts");
    size_t size = list.size + 1;
    char *out = malloc(size);
    memcpy(out, list.body, list.size + 1);
    cJSON *json = cJSON_Parse(list.body);
    const cJSON *concepts = cJSON_IsArray(json) ? json : cJSON_GetObjectItemCaseSensitive(json, "concepts");
    const cJSON *c;
    cJSON_ArrayForEach(c, concepts) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
        if (!cJSON_IsString(name))
            continue;
        char *escaped = curl_easy_escape(NULL, name->valuestring, 0);
        char path[600];
        const char *what[] = {"", "/labels"};
        for (int i = 0; i < 2; i++) {
            snprintf(path, sizeof path, "/api/concepts/%s%s", escaped, what[i]);
            reply r = get(path);
            out = realloc(out, size + r.size + 1);
            memcpy(out + size - 1, r.body, r.size + 1);
            size += r.size;
            free(r.body);
        }
        curl_free(escaped);
    }
    cJSON_Delete(json);
    free(list.body);
    return out;
}

/* F2 and "a refused request changes nothing", route by route: each request has one bad
 * part (the rest is valid) and the concept book is the same afterwards. */
TEST(test_refused_requests_change_nothing)
{
    REQUIRE(server, "no server");
    reply r = post_json("/api/concepts", "{\"name\":\"book\",\"examples\":[\"item-6\",\"item-12\"]}");
    REQUIRE(r.status == 201, "create: %s", r.body);
    free(r.body);
    r = post_json("/api/concepts/book/labels", "{\"labels\":[{\"id\":\"item-6\",\"label\":1},{\"id\":\"item-7\",\"label\":0}]}");
    REQUIRE(r.status == 200, "label: %s", r.body);
    free(r.body);
    char *before = book_snapshot();
    static const struct { const char *method, *path, *body; int status; } bad[] = {
        /* F2: the round would train; the filter of the next page is bad */
        {"POST", "/api/concepts/book/train", "{\"next\":{\"where\":\"no_such_column = 1\"}}", 400},
        {"POST", "/api/concepts/book/train", "{\"iters\":5,\"lr\":-1}", 400},
        {"POST", "/api/concepts/book/train", "{\"next\":{\"mode\":\"sideways\"}}", 400},
        {"POST", "/api/concepts/book/labels", "{\"labels\":[{\"id\":\"item-8\",\"label\":1},{\"id\":\"nope\",\"label\":0}]}", 404},
        {"POST", "/api/concepts/book/labels", "{\"labels\":[{\"id\":\"item-8\",\"label\":1},{\"id\":\"item-9\",\"label\":2}]}", 400},
        {"POST", "/api/concepts", "{\"name\":\"..\",\"examples\":[\"item-1\"]}", 400},
        {"POST", "/api/concepts", "{\"name\":\"new\",\"examples\":[\"item-2\",\"nope\"]}", 404},
        {"POST", "/api/concepts/book/copy", "{\"name\":\".\"}", 400},
        {"PATCH", "/api/concepts/book", "{\"threshold\":2.5,\"name\":\"..\"}", 400},
        {"PATCH", "/api/concepts/book", "{\"threshold\":2.5,\"name\":\"shared\"}", 409},
        {"PATCH", "/api/concepts/book", "{\"threshold\":\"high\"}", 400},
        {"DELETE", "/api/concepts/nope", NULL, 404},
        {"POST", "/api/concepts/import?name=imported", "{\"weight\":[1,2]}", 400},
        {"POST", "/api/concepts/book/undo", "{", 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *body = bad[i].body;
        r = request(bad[i].method, bad[i].path, body ? "application/json" : NULL, body, body ? strlen(body) : 0, NULL);
        CHECK(r.status == bad[i].status, "%s %s %s: %ld %s (expected %d)", bad[i].method, bad[i].path,
              body ? body : "", r.status, r.body, bad[i].status);
        free(r.body);
        char *after = book_snapshot();
        CHECK(!strcmp(before, after), "%s %s %s changed the book:\n%s\n%s", bad[i].method, bad[i].path,
              body ? body : "", before, after);
        free(after);
    }
    free(before);
}

/* F6, F7, F8, F11: NUL in JSON strings, unaddressable names, invalid UTF-8, statuses,
 * duplicate keys. */
TEST(test_names_text_and_statuses)
{
    REQUIRE(server, "no server");
    reply r = post_json("/api/concepts", "{\"name\":\"a\\u0000b\",\"examples\":[\"item-1\"]}");
    CHECK_ERROR(r, 400, "the JSON body holds a NUL character (\\u0000) in a string at byte 10");
    free(r.body);
    r = post_json("/api/concepts/book/labels", "{\"labels\":[{\"id\":\"item-6\\u0000junk\",\"label\":0}]}");
    CHECK_ERROR(r, 400, "the JSON body holds a NUL character (\\u0000) in a string at byte 24");
    free(r.body);
    r = post_json("/api/search", "{\"like\":\"a\\\\u0000b\"}"); /* an escaped backslash is no NUL */
    CHECK(r.status == 404, "escaped backslash: %ld %s", r.status, r.body);
    free(r.body);
    r = post_json("/api/concepts", "{\"name\":\"..\",\"examples\":[\"item-1\"]}");
    CHECK_ERROR(r, 400, "a concept cannot be named '..': no URL path can address it");
    free(r.body);
    r = post_json("/api/concepts", "{\"name\":\".\",\"examples\":[\"item-1\"]}");
    CHECK_ERROR(r, 400, "a concept cannot be named '.': no URL path can address it");
    free(r.body);
    vdx_error err = {{0}};
    CHECK(vdx_concept_check_name("...", &err) == 0, "'...' is addressable: %s", err.message);
    const char bad_utf8[] = "{\"text\":\"caf\xc3\x28\"}";
    r = request("POST", "/api/search", "application/json", bad_utf8, strlen(bad_utf8), NULL);
    CHECK_ERROR(r, 400, "the JSON body is not valid UTF-8 at byte 12");
    free(r.body);
    r = get("/api/items/a%FFb");
    CHECK_ERROR(r, 400, "path segment 3 is not valid UTF-8 (byte 1)");
    free(r.body);
    r = get("/api/search");
    CHECK_ERROR(r, 405, "GET is not allowed on /api/search (POST)");
    free(r.body);
    r = request("DELETE", "/api/items/item-1", NULL, NULL, 0, NULL);
    CHECK_ERROR(r, 405, "DELETE is not allowed on /api/items/item-1 (GET)");
    free(r.body);
    r = get("/api/info");
    CHECK(r.status == 200 && strstr(r.body, "\"columns\":") == strrchr(r.body, '\0') - strlen(strstr(r.body, "\"columns\":")),
          "info");
    int columns = 0;
    for (const char *p = r.body; (p = strstr(p, "\"columns\":")); p++)
        columns++;
    CHECK(columns == 1, "\"columns\" appears %d times in %s", columns, r.body);
    free(r.body);
}

/* Issue 10's remainder: query arguments are UTF-8 text without NUL (400 naming the
 * argument), and a raw NUL byte in a JSON body is refused like an escaped one. */
TEST(test_query_args_and_raw_nul)
{
    REQUIRE(server, "no server");
    reply r = get("/api/concepts/shared/candidates?k=%FF");
    CHECK_ERROR(r, 400, "query argument 'k' is not valid UTF-8 (decoded byte 0)");
    free(r.body);
    r = get("/api/info?where=caf%C3%28");
    CHECK_ERROR(r, 400, "query argument 'where' is not valid UTF-8 (decoded byte 3)");
    free(r.body);
    r = get("/api/info?k=1&where=a%00b");
    CHECK_ERROR(r, 400, "query argument 'where' holds a NUL character (%00) at decoded byte 1");
    free(r.body);
    r = get("/api/info?a%FFb=1");
    CHECK_ERROR(r, 400, "a query argument name is not valid UTF-8 text without NUL of at most 64 bytes");
    free(r.body);
    r = get("/api/info?k=caf%C3%A9&w=%E4%B8%80");
    CHECK(r.status == 200, "valid UTF-8 arguments: %ld %s", r.status, r.body);
    free(r.body);
    static const char raw[] = "{\"name\":\"a\0b\",\"examples\":[\"item-1\"]}";
    r = request("POST", "/api/concepts", "application/json", raw, sizeof raw - 1, NULL);
    CHECK_ERROR(r, 400, "the JSON body holds a NUL byte at byte 10");
    free(r.body);
    r = get("/api/concepts/a");
    CHECK(r.status == 404, "the refused request created concept 'a': %ld %s", r.status, r.body);
    free(r.body);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN(test_start);
    RUN(test_page_headers_and_etag);
    RUN(test_search_like_and_filters);
    RUN(test_item_ids_with_slash_and_space);
    RUN(test_request_policy);
    RUN(test_concept_loop);
    RUN(test_preview);
    RUN(test_collections);
    RUN(test_concurrent_clients);
    RUN(test_security_headers_on_every_reply);
    RUN(test_upload_limit);
    RUN(test_loopback_host_and_origin_exact);
    RUN(test_access_token);
    RUN(test_token_rules);
    RUN(test_read_only);
    RUN(test_refused_requests_change_nothing);
    RUN(test_names_text_and_statuses);
    RUN(test_query_args_and_raw_nul);
    RUN(test_oversized_request_heads);
    RUN(test_slow_client_flood);
    RUN(test_slow_clients_do_not_stall_others);
    vdx_server_stop(server);
    free(thumbnail);
    nftw(data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    curl_global_cleanup();
    return test_summary("server");
}
