/* Tests of the ingest pipeline through the library API, with the clip-tiny model and an
 * embedded store in a temporary directory: a folder of the golden images plus files that
 * are not images goes in; every image is stored with the vector the model gives for it
 * alone (batching changes nothing), a thumbnail of at most 400 px, and every bad file
 * as a failure with its reason. A second run skips everything; a stop request (as from
 * Ctrl-C) commits what is embedded and a re-run completes the collection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "test_tmp.h"
#include "vdx/image.h"
#include "vdx/ingest.h"

static const char *const images[] = {"bmp_300x250.bmp", "exact_224x224.png",
                                     "exif_orient6_600x400.jpg", "gif_256x200.gif",
                                     "gray_500x375.jpg", "crop_mod4_3_299x224.png"};
#define N_IMAGES (int)(sizeof images / sizeof images[0])

static vdx_clip_model *model;

static void copy_file(const char *from, const char *to)
{
    char *data;
    size_t size;
    if (vdx_read_file(from, &data, &size, NULL) != 0) {
        printf("cannot read %s\n", from);
        exit(2);
    }
    FILE *f = fopen(to, "wb");
    if (!f || fwrite(data, 1, size, f) != size) {
        perror(to);
        exit(2);
    }
    fclose(f);
    free(data);
}

/* folder/: the images under a/ and b/c/, plus broken.jpg (text) and empty.png. */
static const char *make_folder(const char *golden)
{
    const char *dir = test_tmpdir("pipeline-src");
    char path[4400], sub[4400];
    snprintf(sub, sizeof sub, "%s/a", dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof sub, "%s/b", dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof sub, "%s/b/c", dir);
    mkdir(sub, 0755);
    for (int i = 0; i < N_IMAGES; i++) {
        char from[4400];
        snprintf(from, sizeof from, "%s/%s", golden, images[i]);
        snprintf(path, sizeof path, "%s/%s/%s", dir, i % 2 ? "a" : "b/c", images[i]);
        copy_file(from, path);
    }
    snprintf(path, sizeof path, "%s/broken.jpg", dir);
    FILE *f = fopen(path, "w");
    fputs("this is not a JPEG", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/empty.png", dir);
    fclose(fopen(path, "w"));
    return dir;
}

static vdx_store *open_store(const char *data)
{
    vdx_model_identity id;
    memset(&id, 0, sizeof id);
    snprintf(id.name, sizeof id.name, "%s", vdx_clip_model_name(model));
    snprintf(id.config_hash, sizeof id.config_hash, "%s", vdx_clip_config_hash(model));
    id.dims = vdx_clip_embed_dim(model);
    vdx_store_options so = {0};
    so.data_dir = data;
    so.collection = "pipeline";
    so.create = 1;
    so.model = &id;
    vdx_error err = {{0}};
    vdx_store *s = vdx_store_open(&so, &err);
    if (!s)
        printf("    store: %s\n", err.message);
    return s;
}

typedef struct progress_log {
    int calls;
    long last_done, last_total;
    int monotonic;
    volatile sig_atomic_t *stop_after_first_batch;
} progress_log;

static void on_progress(const vdx_ingest_stats *s, void *user)
{
    progress_log *log = user;
    if (s->done < log->last_done)
        log->monotonic = 0;
    log->calls++;
    log->last_done = s->done;
    log->last_total = s->total;
    if (log->stop_after_first_batch && s->done > 0)
        *log->stop_after_first_batch = 1;
}

static int find_image(const char *id)
{
    for (int i = 0; i < N_IMAGES; i++) {
        const char *slash = strrchr(id, '/');
        if (!strcmp(slash ? slash + 1 : id, images[i]))
            return i;
    }
    return -1;
}

/* The vector of one image embedded alone, normalised. */
static int reference_vector(const char *path, float *out)
{
    vdx_error err = {{0}};
    vdx_image img;
    if (vdx_image_load(path, &img, &err) != 0)
        return -1;
    const vdx_preprocess_config *pre = vdx_clip_get_preprocess(model);
    float *px = malloc((size_t)3 * (size_t)pre->crop_height * (size_t)pre->crop_width * sizeof *px);
    int rc = vdx_image_preprocess(&img, pre, px, &err);
    if (rc == 0)
        rc = vdx_clip_embed_images(model, px, 1, out, &err);
    vdx_l2_normalize(out, vdx_clip_embed_dim(model));
    free(px);
    vdx_image_free(&img);
    return rc;
}

static vdx_ingest_options test_options(progress_log *log)
{
    vdx_ingest_options o;
    vdx_ingest_options_default(&o);
    o.workers = 2;
    o.batch = 2;
    o.on_progress = on_progress;
    o.user = log;
    return o;
}

TEST(folder_ingest_end_to_end)
{
    NEED_SHARED(golden, "fixtures/golden/clip-tiny/images");
    REQUIRE(model, "clip-tiny did not load");
    const char *dir = make_folder(golden);
    const char *data = test_tmpdir("pipeline-data");
    vdx_error err = {{0}};
    vdx_source *src = vdx_source_folder(dir, &err);
    REQUIRE(src, "%s", err.message);
    REQUIRE(src->n_items == (size_t)N_IMAGES + 2, "items %zu", src->n_items);
    vdx_store *store = open_store(data);
    if (!store)
        vdx_source_free(src);
    REQUIRE(store, "store did not open");
    progress_log log = {0, 0, 0, 1, NULL};
    vdx_ingest_options o = test_options(&log);
    vdx_ingest_report rep;
    int rc = vdx_ingest_run(store, model, src, &o, &rep, &err);
    CHECK(rc == 0, "%s", err.message);
    CHECK(rep.stats.total == N_IMAGES + 2 && rep.stats.stored == N_IMAGES &&
              rep.stats.failed == 2 && rep.stats.skipped == 0 && !rep.stopped,
          "total %ld stored %ld failed %ld skipped %ld", rep.stats.total, rep.stats.stored,
          rep.stats.failed, rep.stats.skipped);
    CHECK(rep.n_reasons == 1 && rep.reasons[0].count == 2 &&
              !strcmp(rep.reasons[0].reason, "cannot decode image"),
          "reasons %d: %s", rep.n_reasons, rep.n_reasons ? rep.reasons[0].reason : "");
    CHECK(log.calls >= 1 && log.monotonic && log.last_done == N_IMAGES + 2 &&
              log.last_total == N_IMAGES + 2,
          "progress calls %d last %ld/%ld", log.calls, log.last_done, log.last_total);
    vdx_ingest_report_free(&rep);
    CHECK(vdx_store_count(store) == N_IMAGES, "count %lld", (long long)vdx_store_count(store));

    /* failures carry their reasons */
    cJSON *failures = NULL;
    REQUIRE(vdx_store_failures(store, &failures, &err) == 0, "%s", err.message);
    CHECK(cJSON_GetArraySize(failures) == 2, "failures %d", cJSON_GetArraySize(failures));
    for (int i = 0; i < cJSON_GetArraySize(failures); i++) {
        cJSON *f = cJSON_GetArrayItem(failures, i);
        const char *id = cJSON_GetObjectItem(f, "id")->valuestring;
        const char *reason = cJSON_GetObjectItem(f, "reason")->valuestring;
        CHECK(!strcmp(id, "broken.jpg") || !strcmp(id, "empty.png"), "failed id %s", id);
        CHECK(!strncmp(reason, "cannot decode image: ", 21), "reason '%s'", reason);
    }
    cJSON_Delete(failures);

    /* vectors = each image embedded alone; thumbnails are JPEGs within 400 px */
    int dims = vdx_clip_embed_dim(model);
    float *got = malloc((size_t)dims * sizeof *got), *want = malloc((size_t)dims * sizeof *want);
    for (size_t i = 0; i < src->n_items; i++) {
        const vdx_source_item *it = &src->items[i];
        int k = find_image(it->id);
        if (k < 0)
            continue;
        const char *ids[1] = {it->id};
        if (vdx_store_get_vectors(store, ids, 1, got, &err) != 0) {
            CHECK(0, "%s: %s", it->id, err.message);
            continue;
        }
        CHECK(reference_vector(it->url, want) == 0, "reference for %s", it->id);
        float worst = 0;
        for (int d = 0; d < dims; d++)
            worst = fmaxf(worst, fabsf(got[d] - want[d]));
        CHECK(worst < 1e-5f, "%s: stored vector differs by %g", it->id, (double)worst);
        uint8_t *jpeg = NULL;
        size_t size = 0;
        CHECK(vdx_store_get_thumbnail(store, it->id, &jpeg, &size, &err) == 0, "%s: %s",
              it->id, err.message);
        vdx_image thumb = {0};
        if (jpeg && size > 2 && jpeg[0] == 0xFF && jpeg[1] == 0xD8 &&
            vdx_image_decode(jpeg, size, it->id, &thumb, &err) == 0) {
            CHECK(thumb.width <= 400 && thumb.height <= 400 && thumb.width > 0,
                  "%s thumbnail %dx%d", it->id, thumb.width, thumb.height);
            vdx_image_free(&thumb);
        } else
            CHECK(0, "%s: thumbnail is not a JPEG", it->id);
        free(jpeg);
        cJSON *item = NULL;
        if (vdx_store_get_item(store, it->id, &item, &err) == 0) {
            cJSON *w = cJSON_GetObjectItem(item, "width");
            CHECK(cJSON_IsNumber(w) && w->valueint > 0, "%s: width missing", it->id);
            CHECK(!strcmp(cJSON_GetObjectItem(item, "url")->valuestring, it->url), "%s url",
                  it->id);
            cJSON_Delete(item);
        } else
            CHECK(0, "%s: %s", it->id, err.message);
    }
    free(got);
    free(want);

    /* a second run skips everything */
    log = (progress_log){0, 0, 0, 1, NULL};
    rc = vdx_ingest_run(store, model, src, &o, &rep, &err);
    CHECK(rc == 0 && rep.stats.total == 0 && rep.stats.skipped == N_IMAGES + 2 &&
              rep.stats.skipped_failed == 2 && rep.stats.stored == 0,
          "second run: total %ld skipped %ld", rep.stats.total, rep.stats.skipped);
    vdx_ingest_report_free(&rep);

    /* retry_failed tries the two bad files again, and they fail again */
    o.retry_failed = 1;
    rc = vdx_ingest_run(store, model, src, &o, &rep, &err);
    CHECK(rc == 0 && rep.stats.total == 2 && rep.stats.failed == 2 &&
              rep.stats.skipped == N_IMAGES,
          "retry: total %ld failed %ld skipped %ld", rep.stats.total, rep.stats.failed,
          rep.stats.skipped);
    vdx_ingest_report_free(&rep);
    vdx_store_close(store);
    vdx_source_free(src);
}

TEST(stop_then_resume)
{
    NEED_SHARED(golden, "fixtures/golden/clip-tiny/images");
    REQUIRE(model, "clip-tiny did not load");
    const char *dir = make_folder(golden);
    const char *data = test_tmpdir("pipeline-stop");
    vdx_error err = {{0}};
    vdx_source *src = vdx_source_folder(dir, &err);
    REQUIRE(src, "%s", err.message);
    vdx_store *store = open_store(data);
    if (!store)
        vdx_source_free(src);
    REQUIRE(store, "store did not open");
    volatile sig_atomic_t stop = 0;
    progress_log log = {0, 0, 0, 1, &stop};
    vdx_ingest_options o = test_options(&log);
    o.batch = 1;
    o.workers = 1;
    o.stop = &stop;
    vdx_ingest_report rep;
    int rc = vdx_ingest_run(store, model, src, &o, &rep, &err);
    CHECK(rc == 0, "%s", err.message);
    long first = rep.stats.done;
    CHECK(rep.stopped && first >= 1 && first < (long)src->n_items, "stopped %d after %ld",
          rep.stopped, first);
    CHECK(vdx_store_count(store) == rep.stats.stored, "count %lld vs stored %ld",
          (long long)vdx_store_count(store), rep.stats.stored);
    vdx_ingest_report_free(&rep);

    stop = 0;
    log = (progress_log){0, 0, 0, 1, NULL};
    rc = vdx_ingest_run(store, model, src, &o, &rep, &err);
    CHECK(rc == 0 && !rep.stopped && rep.stats.skipped == first &&
              rep.stats.total == (long)src->n_items - first,
          "resume: skipped %ld total %ld", rep.stats.skipped, rep.stats.total);
    CHECK(vdx_store_count(store) == N_IMAGES, "count %lld", (long long)vdx_store_count(store));
    vdx_ingest_report_free(&rep);
    vdx_store_close(store);
    vdx_source_free(src);
}

/* Ingests the folder into a new collection of `data` with the model on every core, where
 * the decoders take turns with the model (or, with overlap, run beside it: the
 * VDX_INGEST_SCHEDULE=overlap schedule); a stop is requested at the first progress report
 * with an item done, and a second run completes the collection (with batches of one the
 * stop usually lands before the end; the caller's comparison holds either way). Returns
 * the store, or NULL. */
static vdx_store *ingest_on_every_core(const char *data, vdx_source *src, int overlap)
{
    if (overlap)
        setenv("VDX_INGEST_SCHEDULE", "overlap", 1);
    vdx_clip_set_threads(0); /* every core: the schedule where the turns apply */
    vdx_store *store = open_store(data);
    vdx_error err = {{0}};
    volatile sig_atomic_t stop = 0;
    progress_log log = {0, 0, 0, 1, &stop};
    vdx_ingest_options o = test_options(&log);
    o.batch = 1; /* batches of one image: the stop comes before the end */
    o.stop = &stop;
    vdx_ingest_report rep;
    int stopped = 0, rc = -1;
    if (store) {
        rc = vdx_ingest_run(store, model, src, &o, &rep, &err);
        stopped = rc == 0 && rep.stopped;
        vdx_ingest_report_free(&rep);
    }
    if (rc == 0) {
        o.stop = NULL;
        log = (progress_log){0, 0, 0, 1, NULL};
        rc = vdx_ingest_run(store, model, src, &o, &rep, &err);
        vdx_ingest_report_free(&rep);
    }
    CHECK(rc == 0, "%s run (stopped %d): %s", overlap ? "overlap" : "turns", stopped,
          err.message);
    vdx_clip_set_threads(1);
    unsetenv("VDX_INGEST_SCHEDULE");
    return store;
}

/* The decoders taking turns with the model (the default when it runs on every core) or
 * running beside it store the same: every vector bit for bit, every thumbnail byte for
 * byte, the same failures, also across a stop and a resume. */
TEST(schedules_store_the_same)
{
    NEED_SHARED(golden, "fixtures/golden/clip-tiny/images");
    REQUIRE(model, "clip-tiny did not load");
    const char *dir = make_folder(golden);
    vdx_error err = {{0}};
    vdx_source *src = vdx_source_folder(dir, &err);
    REQUIRE(src, "%s", err.message);
    vdx_store *turns = ingest_on_every_core(test_tmpdir("pipeline-turns"), src, 0);
    vdx_store *overlap = ingest_on_every_core(test_tmpdir("pipeline-overlap"), src, 1);
    if (!turns || !overlap) {
        vdx_store_close(turns);
        vdx_store_close(overlap);
        vdx_source_free(src);
    }
    REQUIRE(turns && overlap, "a store did not open");
    CHECK(vdx_store_count(turns) == N_IMAGES && vdx_store_count(overlap) == N_IMAGES,
          "counts %lld and %lld", (long long)vdx_store_count(turns),
          (long long)vdx_store_count(overlap));
    int dims = vdx_clip_embed_dim(model), same = 0;
    float *a = malloc((size_t)dims * sizeof *a), *b = malloc((size_t)dims * sizeof *b);
    for (size_t i = 0; i < src->n_items; i++) {
        const char *ids[1] = {src->items[i].id};
        if (find_image(ids[0]) < 0)
            continue;
        uint8_t *ja = NULL, *jb = NULL;
        size_t na = 0, nb = 0;
        if (vdx_store_get_vectors(turns, ids, 1, a, &err) != 0 ||
            vdx_store_get_vectors(overlap, ids, 1, b, &err) != 0 ||
            vdx_store_get_thumbnail(turns, ids[0], &ja, &na, &err) != 0 ||
            vdx_store_get_thumbnail(overlap, ids[0], &jb, &nb, &err) != 0)
            CHECK(0, "%s: %s", ids[0], err.message);
        else {
            CHECK(!memcmp(a, b, (size_t)dims * sizeof *a), "%s: the vectors differ", ids[0]);
            CHECK(na == nb && !memcmp(ja, jb, na), "%s: the thumbnails differ (%zu, %zu bytes)",
                  ids[0], na, nb);
            same++;
        }
        free(ja);
        free(jb);
    }
    CHECK(same == N_IMAGES, "%d of %d images compared", same, N_IMAGES);
    cJSON *fa = NULL, *fb = NULL;
    CHECK(vdx_store_failures(turns, &fa, &err) == 0 &&
              vdx_store_failures(overlap, &fb, &err) == 0,
          "%s", err.message);
    CHECK(cJSON_GetArraySize(fa) == 2 && cJSON_GetArraySize(fb) == 2, "failures %d and %d",
          cJSON_GetArraySize(fa), cJSON_GetArraySize(fb));
    cJSON_Delete(fa);
    cJSON_Delete(fb);
    free(a);
    free(b);
    vdx_store_close(turns);
    vdx_store_close(overlap);
    vdx_source_free(src);
}

/* VmSize of this process in bytes, or 0. */
static unsigned long long address_space_size(void)
{
    char *status = NULL;
    unsigned long long kb = 0;
    if (vdx_read_file("/proc/self/status", &status, NULL, NULL) == 0) {
        const char *at = strstr(status, "VmSize:");
        if (at)
            kb = strtoull(at + 7, NULL, 10);
    }
    free(status);
    return kb * 1024;
}

/* Runs an ingest in a child whose address space leaves room for `room` more bytes, so that
 * thread stacks (8 MB each) cannot all be mapped (64 decoders). Writes "rc stored message" to `out`. */
static int ingest_with_address_space(vdx_store *store, vdx_source *src, size_t room,
                                     char *out, size_t size)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        alarm(30); /* a pipeline that waits for a stage that never started */
        struct rlimit limit = {address_space_size() + room, RLIM_INFINITY};
        setrlimit(RLIMIT_AS, &limit);
        vdx_error err = {{0}};
        vdx_ingest_options o = {.workers = 64, .batch = 2};
        vdx_ingest_report rep;
        int rc = vdx_ingest_run(store, model, src, &o, &rep, &err);
        dprintf(fds[1], "%d %ld %s", rc, rep.stats.stored, rc ? err.message : "");
        _exit(0);
    }
    close(fds[1]);
    ssize_t n = 0, got;
    while (n < (ssize_t)size - 1 && (got = read(fds[0], out + n, size - 1 - (size_t)n)) > 0)
        n += got;
    out[n > 0 ? n : 0] = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

TEST(thread_start_failure_fails_the_run)
{
#if defined(__SANITIZE_ADDRESS__)
    SKIP("AddressSanitizer reserves terabytes of address space: no RLIMIT_AS here");
#endif
    NEED_SHARED(golden, "fixtures/golden/clip-tiny/images");
    REQUIRE(model, "clip-tiny did not load");
    const char *dir = make_folder(golden);
    const char *data = test_tmpdir("pipeline-threads");
    vdx_error err = {{0}};
    vdx_source *src = vdx_source_folder(dir, &err);
    REQUIRE(src, "%s", err.message);
    vdx_store *store = open_store(data);
    if (!store)
        vdx_source_free(src);
    REQUIRE(store, "store did not open");
    /* no room beyond what is mapped: the threads that start run on stacks glibc kept from
     * earlier runs (a few), the next one cannot be mapped, and the run must fail with the
     * stages already running wound down, not wait for the missing one or join it */
    char out[512];
    int rc = ingest_with_address_space(store, src, 0, out, sizeof out);
    const char *want = "-1 0 ingest: cannot start the ";
    CHECK(rc == 0 && !strncmp(out, want, strlen(want)) &&
              strstr(out, " thread: Resource temporarily unavailable"),
          "child %s, said '%s'", rc ? "died" : "exited", out);
    printf("    %s\n", out);
    CHECK(vdx_store_count(store) == 0, "count %lld", (long long)vdx_store_count(store));
    vdx_store_close(store);
    vdx_source_free(src);
}

TEST(progress_json_document)
{
    vdx_ingest_stats s = {0};
    s.total = 100;
    s.done = 40;
    s.failed = 3;
    s.stored = 37;
    s.skipped = 5;
    s.rate = 12.345;
    s.eta_s = 4.86;
    char *json = vdx_progress_json(&s, "running", 1764169200.0, 1764169230.5, 4242);
    CHECK(json && !strcmp(json, "{\"state\":\"running\",\"done\":40,\"total\":100,\"failed\":3,"
                                "\"stored\":37,\"skipped\":5,\"rate\":12.35,\"eta_s\":5,"
                                "\"started\":\"2025-11-26T15:00:00Z\","
                                "\"updated\":\"2025-11-26T15:00:30Z\",\"pid\":4242}"),
          "%s", json);
    free(json);
    s.eta_s = -1;
    json = vdx_progress_json(&s, "stopped", 0, 0, 1);
    CHECK(json && strstr(json, "\"state\":\"stopped\"") && strstr(json, "\"eta_s\":null"), "%s",
          json);
    free(json);

    /* the reporter replaces progress.json atomically and records the final state */
    const char *dir = test_tmpdir("progress");
    char path[4300];
    snprintf(path, sizeof path, "%s/progress.json", dir);
    vdx_progress *p = vdx_progress_new(path);
    s.eta_s = 2;
    vdx_error err = {{0}};
    CHECK(vdx_progress_update(p, &s, &err) == 0, "%s", err.message);
    char *text = NULL;
    CHECK(vdx_read_file(path, &text, NULL, NULL) == 0 && strstr(text, "\"state\":\"running\""),
          "%s", text ? text : "(no file)");
    free(text);
    s.done = 100;
    CHECK(vdx_progress_finish(p, &s, "done", &err) == 0, "%s", err.message);
    text = NULL;
    CHECK(vdx_read_file(path, &text, NULL, NULL) == 0 &&
              strstr(text, "\"state\":\"done\",\"done\":100"),
          "%s", text ? text : "(no file)");
    free(text);
    vdx_progress_free(p);
}

int main(void)
{
    test_tmp_begin("pipeline");
    const char *dir = test_shared_path("fixtures/clip-tiny");
    if (dir) {
        vdx_error err = {{0}};
        vdx_clip_set_threads(1);
        model = vdx_clip_load(dir, &err);
        if (!model)
            printf("    clip-tiny: %s\n", err.message);
    }
    RUN(folder_ingest_end_to_end);
    RUN(stop_then_resume);
    RUN(schedules_store_the_same);
    RUN(thread_start_failure_fails_the_run);
    RUN(progress_json_document);
    vdx_clip_free(model);
    test_tmp_end();
    return test_summary("ingest_pipeline");
}
