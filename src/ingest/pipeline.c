/* The ingest pipeline: four stages joined by bounded queues, so downloads, decoding and
 * embedding overlap and memory stays bounded:
 *
 *   fetch (1 thread, libcurl multi; local files pass straight through)
 *     → decode + preprocess + thumbnail (N worker threads)
 *     → embed (1 thread: batches of up to `batch` images through the image tower)
 *     → insert (1 thread: one store transaction per batch)
 *
 * The decoders and the model take turns on the cores: while the model runs a batch on
 * every core, the decoders finish the photo in hand and wait. Run side by side, they
 * preempt the model's threads in the middle of its parallel regions, where the other
 * threads wait for the preempted one: a 640-px ingest was about 2 % slower so
 * (docs/ingest.md, "Turns"). VDX_INGEST_SCHEDULE=overlap runs them side by side again,
 * for measurement. When the model runs on fewer threads than there are cores, the
 * decoders keep the spare ones.
 *
 * The calling thread watches: it reports progress at least once a second and turns a stop
 * request (Ctrl-C) into an orderly halt: no new downloads, nothing new embedded, every
 * batch already embedded is committed. Items the collection already holds (stored, or
 * failed unless retry_failed) are skipped before anything starts, which is what makes a
 * re-run after a crash or a Ctrl-C resume where it stopped. An item that cannot be
 * downloaded or decoded is stored as a failure with its reason; only a failing store or
 * model stops the run. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vdx/image.h"
#include "vdx/ingest.h"

void vdx_ingest_options_default(vdx_ingest_options *o)
{
    memset(o, 0, sizeof *o);
    o->workers = vdx_cpu_count();
    o->batch = 32;
    o->thumbnail_side = 400;
    o->thumbnail_quality = 85;
    vdx_fetch_options_default(&o->fetch);
}

/* ---- a bounded blocking queue of pointers ------------------------------------------- */

typedef struct queue {
    void **slots;
    size_t cap, head, count;
    int closed;
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
} queue;

static int queue_init(queue *q, size_t cap)
{
    memset(q, 0, sizeof *q);
    q->slots = calloc(cap, sizeof *q->slots);
    if (!q->slots)
        return -1;
    q->cap = cap;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    return 0;
}

static void queue_destroy(queue *q)
{
    if (!q->slots) /* never initialised */
        return;
    free(q->slots);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
}

static void queue_push(queue *q, void *item)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == q->cap)
        pthread_cond_wait(&q->not_full, &q->lock);
    q->slots[(q->head + q->count++) % q->cap] = item;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

static int queue_has_room(queue *q)
{
    pthread_mutex_lock(&q->lock);
    int room = q->count < q->cap;
    pthread_mutex_unlock(&q->lock);
    return room;
}

/* Waits for an item; NULL once the queue is closed and empty, or when wait_s (if >= 0)
 * passes. */
static void *queue_pop(queue *q, double wait_s)
{
    pthread_mutex_lock(&q->lock);
    struct timespec deadline;
    if (wait_s >= 0) {
        clock_gettime(CLOCK_REALTIME, &deadline);
        long ns = deadline.tv_nsec + (long)(wait_s * 1e9);
        deadline.tv_sec += ns / 1000000000L;
        deadline.tv_nsec = ns % 1000000000L;
    }
    while (q->count == 0 && !q->closed) {
        if (wait_s < 0)
            pthread_cond_wait(&q->not_empty, &q->lock);
        else if (pthread_cond_timedwait(&q->not_empty, &q->lock, &deadline) == ETIMEDOUT)
            break;
    }
    void *item = NULL;
    if (q->count) {
        item = q->slots[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->lock);
    return item;
}

static void queue_close(queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

/* ---- the run ------------------------------------------------------------------------ */

typedef struct job {
    size_t item;      /* index into src->items */
    uint8_t *bytes;   /* downloaded body; NULL for a local file */
    size_t size;
    char *failure;    /* why it failed, or NULL */
    float *pixels;    /* preprocessed image */
    uint8_t *thumb;
    size_t thumb_size;
    int width, height;
} job;

typedef struct batch {
    job **jobs;
    int n;
    float *vectors;   /* n * dims, row i for jobs[i] (unused rows for failures) */
} batch;

typedef struct run {
    vdx_store *store;
    const vdx_clip_model *model;
    const vdx_source *src;
    const vdx_ingest_options *opts;
    const vdx_preprocess_config *pre;
    int dims, crop_h, crop_w;
    int min_short, min_long; /* what a JPEG may be reduced to while decoding (0: full) */
    size_t *todo;     /* item indexes to process */
    size_t n_todo, next_todo;
    queue decode_q, embed_q, insert_q;
    volatile sig_atomic_t halt;  /* stop everything (user request or fatal error) */
    int stopped_by_user;
    int take_turns;              /* decoders wait while the model runs (above); set once */
    pthread_mutex_t lock;        /* guards everything below */
    pthread_cond_t changed;
    int decoders_left;
    int model_busy;              /* the embed stage is running the model */
    pthread_cond_t model_idle;   /* model_busy went to 0 */
    int finished;                /* the insert stage is done */
    int started_inserter, started_embedder, started_fetcher; /* their threads exist */
    int failed_fatally;
    vdx_error fatal;
    long stored, failed;
    vdx_ingest_reason_count *reasons;
    int n_reasons;
} run;

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->bytes);
    free(j->failure);
    free(j->pixels);
    free(j->thumb);
    free(j);
}

static void set_failure(job *j, const char *fmt, const char *detail)
{
    size_t n = strlen(fmt) + strlen(detail) + 1;
    free(j->failure);
    j->failure = malloc(n);
    if (j->failure)
        snprintf(j->failure, n, fmt, detail);
}

static void fail_run(run *r, const vdx_error *err)
{
    pthread_mutex_lock(&r->lock);
    if (!r->failed_fatally) {
        r->failed_fatally = 1;
        r->fatal = *err;
    }
    r->halt = 1;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

/* -- fetch stage -- */

static int fetch_next(void *user, size_t *tag, const char **url)
{
    run *r = user;
    while (r->next_todo < r->n_todo) {
        if (r->halt)
            return 0;
        if (!queue_has_room(&r->decode_q))
            return -1; /* decoders are behind: come back later */
        size_t item = r->todo[r->next_todo];
        const char *u = r->src->items[item].url;
        if (vdx_is_http_url(u)) {
            r->next_todo++;
            *tag = item;
            *url = u;
            return 1;
        }
        job *j = calloc(1, sizeof *j); /* a local file: the decoder reads it */
        if (!j) {
            vdx_error e;
            vdx_fail_kind(&e, VDX_ERR_NO_MEMORY, "out of memory");
            fail_run(r, &e);
            return 0;
        }
        j->item = item;
        r->next_todo++;
        queue_push(&r->decode_q, j);
    }
    return 0;
}

static int fetch_done(void *user, size_t tag, vdx_fetch_result *res)
{
    run *r = user;
    job *j = calloc(1, sizeof *j);
    if (!j) {
        free(res->data);
        vdx_error e;
        vdx_fail_kind(&e, VDX_ERR_NO_MEMORY, "out of memory");
        fail_run(r, &e);
        return 1;
    }
    j->item = tag;
    if (res->ok) {
        j->bytes = res->data;
        j->size = res->size;
    } else
        set_failure(j, "%s", res->reason);
    queue_push(&r->decode_q, j);
    return r->halt != 0;
}

static void *fetch_thread(void *arg)
{
    run *r = arg;
    vdx_fetch_options fo = r->opts->fetch;
    fo.stop = &r->halt;
    vdx_error err = {{0}};
    if (vdx_fetch_run(&fo, fetch_next, fetch_done, r, &err) != 0)
        fail_run(r, &err);
    queue_close(&r->decode_q);
    return NULL;
}

/* -- decode stage -- */

/* A large JPEG is decoded reduced in the DCT domain (docs/ingest.md) to at least twice
 * what the resize and the thumbnail make of it: a shorter side of 2x CLIP's resize target
 * (both targets when it resizes to a fixed size) and a longer side of 2x the thumbnail's.
 * Without a resize step CLIP crops the original pixels, so nothing is reduced. */
static void decode_sizes(run *r)
{
    r->min_short = r->min_long = 0;
    if (r->opts->exact_decode || !r->pre->do_resize)
        return;
    r->min_short = vdx_preprocess_reduced_side(r->pre);
    r->min_long = 2 * r->opts->thumbnail_side;
    if (r->min_long < r->min_short)
        r->min_long = r->min_short;
}

static void decode_job(run *r, job *j)
{
    const vdx_source_item *it = &r->src->items[j->item];
    vdx_error err = {{0}};
    if (!j->bytes) {
        char *data;
        if (vdx_read_file_at_most(it->path ? it->path : it->url, VDX_IMAGE_MAX_FILE_BYTES, &data,
                                  &j->size, &err) != 0) {
            set_failure(j, "cannot read file: %s", err.message);
            return;
        }
        j->bytes = (uint8_t *)data;
    }
    vdx_image img = {0};
    int full_w, full_h;
    if (vdx_image_decode_reduced(j->bytes, j->size, it->url, r->min_short, r->min_long, &img,
                                 &full_w, &full_h, &err) != 0) {
        set_failure(j, "cannot decode image: %s", err.message);
        return;
    }
    free(j->bytes);
    j->bytes = NULL;
    j->width = it->width ? it->width : full_w;
    j->height = it->width ? it->height : full_h;
    j->pixels = malloc((size_t)3 * (size_t)r->crop_h * (size_t)r->crop_w * sizeof(float));
    if (!j->pixels)
        set_failure(j, "%s", "out of memory preprocessing the image");
    else if (vdx_image_preprocess(&img, r->pre, j->pixels, &err) != 0)
        set_failure(j, "cannot preprocess image: %s", err.message);
    else if (vdx_image_thumbnail_jpeg(&img, r->opts->thumbnail_side, r->opts->thumbnail_quality,
                                      &j->thumb, &j->thumb_size, &err) != 0)
        set_failure(j, "cannot make a thumbnail: %s", err.message);
    if (j->failure) {
        free(j->pixels);
        j->pixels = NULL;
    }
    vdx_image_free(&img);
}

static void *decode_thread(void *arg)
{
    run *r = arg;
    job *j;
    while ((j = queue_pop(&r->decode_q, -1))) {
        if (r->halt) { /* stopping: drop it, the next run picks it up */
            job_free(j);
            continue;
        }
        if (r->take_turns) {
            pthread_mutex_lock(&r->lock);
            while (r->model_busy && !r->halt)
                pthread_cond_wait(&r->model_idle, &r->lock);
            pthread_mutex_unlock(&r->lock);
        }
        if (!j->failure)
            decode_job(r, j);
        queue_push(&r->embed_q, j);
    }
    pthread_mutex_lock(&r->lock);
    int last = --r->decoders_left == 0;
    pthread_mutex_unlock(&r->lock);
    if (last)
        queue_close(&r->embed_q);
    return NULL;
}

/* -- embed stage -- */

static void batch_free(batch *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n; i++)
        job_free(b->jobs[i]);
    free(b->jobs);
    free(b->vectors);
    free(b);
}

/* Turns (above): while busy is 1 no decoder starts a photo. (Waiting for the photos in
 * hand before the model starts measured no better: docs/ingest.md.) */
static void set_model_busy(run *r, int busy)
{
    if (!r->take_turns)
        return;
    pthread_mutex_lock(&r->lock);
    r->model_busy = busy;
    if (!busy)
        pthread_cond_broadcast(&r->model_idle);
    pthread_mutex_unlock(&r->lock);
}

static void *embed_thread(void *arg)
{
    run *r = arg;
    int cap = r->opts->batch > 0 ? r->opts->batch : 32;
    /* the decoders' buffers go to the model as they are, without a copy into one batch */
    const float **images = malloc((size_t)cap * sizeof *images);
    float *features = malloc((size_t)cap * (size_t)r->dims * sizeof *features);
    if (!images || !features) {
        vdx_error e;
        vdx_fail_kind(&e, VDX_ERR_NO_MEMORY, "out of memory for a batch of %d images", cap);
        fail_run(r, &e);
    }
    for (;;) {
        job *first = queue_pop(&r->embed_q, -1);
        if (!first)
            break;
        batch *b = calloc(1, sizeof *b);
        if (b)
            b->jobs = calloc((size_t)cap, sizeof *b->jobs);
        if (b && b->jobs)
            b->vectors = calloc((size_t)cap * (size_t)r->dims, sizeof(float));
        if (!b || !b->jobs || !b->vectors || !images || !features) {
            job_free(first);
            batch_free(b);
            if (images && features) {
                vdx_error e;
                vdx_fail_kind(&e, VDX_ERR_NO_MEMORY, "out of memory for a batch of %d images", cap);
                fail_run(r, &e);
            }
            continue; /* keep draining so the decoders can finish */
        }
        b->jobs[b->n++] = first;
        /* fill the batch; a short wait lets a trickle from the network join it */
        job *j;
        while (b->n < cap && (j = queue_pop(&r->embed_q, 0.25)))
            b->jobs[b->n++] = j;
        if (r->halt) { /* stopping: nothing new gets embedded */
            batch_free(b);
            continue;
        }
        int n_images = 0;
        for (int i = 0; i < b->n; i++)
            if (!b->jobs[i]->failure)
                images[n_images++] = b->jobs[i]->pixels;
        vdx_error err = {{0}};
        set_model_busy(r, 1);
        int embedded = n_images ? vdx_clip_embed_image_list(r->model, images, n_images,
                                                            features, &err)
                                : 0;
        set_model_busy(r, 0);
        if (embedded != 0) {
            vdx_error_prefix(&err, "embedding a batch of %d images", n_images);
            fail_run(r, &err);
            batch_free(b);
            continue;
        }
        for (int i = 0, k = 0; i < b->n; i++) {
            job *bj = b->jobs[i];
            free(bj->pixels); /* not needed any more: keep the queue's memory small */
            bj->pixels = NULL;
            if (bj->failure)
                continue;
            float *v = b->vectors + (size_t)i * (size_t)r->dims;
            memcpy(v, features + (size_t)k++ * (size_t)r->dims, (size_t)r->dims * sizeof *v);
            vdx_l2_normalize(v, r->dims);
        }
        queue_push(&r->insert_q, b);
    }
    free(images);
    free(features);
    queue_close(&r->insert_q);
    return NULL;
}

/* -- insert stage -- */

/* The kind of a failure, for the summary: the reason up to its first ':' or " (". */
static void count_reason(run *r, const char *reason)
{
    size_t n = strcspn(reason, ":(");
    while (n > 0 && reason[n - 1] == ' ')
        n--;
    for (int i = 0; i < r->n_reasons; i++)
        if (strlen(r->reasons[i].reason) == n && !strncmp(r->reasons[i].reason, reason, n)) {
            r->reasons[i].count++;
            return;
        }
    vdx_ingest_reason_count *grown =
        realloc(r->reasons, (size_t)(r->n_reasons + 1) * sizeof *grown);
    if (!grown)
        return;
    r->reasons = grown;
    if (!(grown[r->n_reasons].reason = strndup(reason, n)))
        return;
    grown[r->n_reasons++].count = 1;
}

static int insert_batch(run *r, batch *b, vdx_error *err)
{
    vdx_item *items = calloc((size_t)b->n, sizeof *items);
    if (!items)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    const vdx_source *src = r->src;
    for (int i = 0; i < b->n; i++) {
        const job *j = b->jobs[i];
        const vdx_source_item *it = &src->items[j->item];
        vdx_item *o = &items[i];
        o->id = it->id;
        o->url = it->url;
        o->width = j->failure ? it->width : j->width;
        o->height = j->failure ? it->height : j->height;
        o->meta_names = (const char *const *)src->columns;
        o->meta_values = (const char *const *)it->values;
        o->n_meta = it->values ? src->n_columns : 0;
        if (j->failure)
            o->failure = j->failure;
        else {
            o->vector = b->vectors + (size_t)i * (size_t)r->dims;
            o->thumbnail = j->thumb;
            o->thumbnail_size = j->thumb_size;
        }
    }
    int rc = vdx_store_append(r->store, items, (size_t)b->n, err);
    free(items);
    return rc;
}

static void *insert_thread(void *arg)
{
    run *r = arg;
    batch *b;
    while ((b = queue_pop(&r->insert_q, -1))) {
        pthread_mutex_lock(&r->lock);
        int failed_fatally = r->failed_fatally;
        pthread_mutex_unlock(&r->lock);
        if (failed_fatally) {
            batch_free(b);
            continue;
        }
        vdx_error err = {{0}};
        if (insert_batch(r, b, &err) != 0) {
            fail_run(r, &err);
            batch_free(b);
            continue;
        }
        pthread_mutex_lock(&r->lock);
        for (int i = 0; i < b->n; i++) {
            if (b->jobs[i]->failure) {
                r->failed++;
                count_reason(r, b->jobs[i]->failure);
            } else
                r->stored++;
        }
        pthread_cond_broadcast(&r->changed);
        pthread_mutex_unlock(&r->lock);
        batch_free(b);
    }
    pthread_mutex_lock(&r->lock);
    r->finished = 1;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* ---- planning and watching ----------------------------------------------------------- */

/* Which items to process; counts the ones the collection already has. */
static int plan(run *r, vdx_ingest_stats *st, vdx_error *err)
{
    const vdx_source *src = r->src;
    size_t n = src->n_items;
    if (r->opts->limit > 0 && (size_t)r->opts->limit < n)
        n = (size_t)r->opts->limit;
    r->todo = malloc((n ? n : 1) * sizeof *r->todo);
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    vdx_item_state *states = malloc((n ? n : 1) * sizeof *states);
    if (!r->todo || !ids || !states) {
        free(ids);
        free(states);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory planning %zu items", n);
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = src->items[i].id;
    int rc = n ? vdx_store_item_states(r->store, ids, n, states, err) : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (states[i] == VDX_ITEM_STORED)
            st->skipped++;
        else if (states[i] == VDX_ITEM_FAILED && !r->opts->retry_failed) {
            st->skipped++;
            st->skipped_failed++;
        } else
            r->todo[r->n_todo++] = i;
    }
    free(ids);
    free(states);
    return rc;
}

#define RATE_WINDOW 16

typedef struct rate_meter {
    double t[RATE_WINDOW];
    long done[RATE_WINDOW];
    int n, head;
} rate_meter;

/* Items per second over the last ~10 seconds of samples. */
static double rate_sample(rate_meter *m, double now, long done)
{
    int last = (m->head + m->n - 1) % RATE_WINDOW;
    if (m->n && now - m->t[last] < 0.5) { /* keep samples at least half a second apart */
    } else {
        int slot = (m->head + m->n) % RATE_WINDOW;
        if (m->n == RATE_WINDOW) {
            m->head = (m->head + 1) % RATE_WINDOW;
            slot = last = (m->head + m->n - 1) % RATE_WINDOW;
        } else
            m->n++;
        m->t[slot] = now;
        m->done[slot] = done;
        last = slot;
    }
    int oldest = m->head;
    while (m->n > 2 && now - m->t[oldest] > 10.0) {
        m->head = (m->head + 1) % RATE_WINDOW;
        m->n--;
        oldest = m->head;
    }
    double dt = now - m->t[oldest];
    return dt > 0.2 ? (double)(done - m->done[oldest]) / dt : 0.0;
}

static void snapshot(run *r, vdx_ingest_stats *st, double t0, rate_meter *meter)
{
    pthread_mutex_lock(&r->lock);
    st->stored = r->stored;
    st->failed = r->failed;
    pthread_mutex_unlock(&r->lock);
    st->done = st->stored + st->failed;
    double now = vdx_now();
    st->elapsed_s = now - t0;
    st->rate = rate_sample(meter, now, st->done);
    if (st->rate <= 0 && st->elapsed_s > 0)
        st->rate = (double)st->done / st->elapsed_s;
    st->eta_s = st->rate > 0 ? (double)(st->total - st->done) / st->rate : -1;
    if (st->done == st->total)
        st->eta_s = 0;
}

/* Starts the stages from the last to the first: when a thread cannot be started, the
 * run fails and the stages already running are wound down by closing the queue they read,
 * so nothing waits for a stage that does not exist. Returns how many decoders started
 * (the fetcher started only when all of them did). */
static int start_stages(run *r, pthread_t *fetcher, pthread_t *decoders, int workers,
                        pthread_t *embedder, pthread_t *inserter)
{
    int n_decoders = 0, rc = pthread_create(inserter, NULL, insert_thread, r);
    r->started_inserter = rc == 0;
    if (rc == 0) {
        rc = pthread_create(embedder, NULL, embed_thread, r);
        r->started_embedder = rc == 0;
    }
    while (rc == 0 && n_decoders < workers &&
           (rc = pthread_create(&decoders[n_decoders], NULL, decode_thread, r)) == 0)
        n_decoders++;
    if (rc == 0 && (rc = pthread_create(fetcher, NULL, fetch_thread, r)) == 0) {
        r->started_fetcher = 1;
        return n_decoders;
    }
    vdx_error failure = {{0}};
    vdx_fail_errno(&failure, rc, "ingest: cannot start the %s thread: %s",
             !r->started_inserter ? "insert" : !r->started_embedder ? "embed"
             : n_decoders < workers ? "decode" : "fetch", strerror(rc));
    fail_run(r, &failure);
    pthread_mutex_lock(&r->lock);
    r->decoders_left = n_decoders;
    if (!r->started_inserter)
        r->finished = 1; /* nothing runs: the run is over */
    pthread_mutex_unlock(&r->lock);
    queue_close(&r->decode_q);
    if (n_decoders == 0)
        queue_close(&r->embed_q);
    if (!r->started_embedder)
        queue_close(&r->insert_q);
    return n_decoders;
}

int vdx_ingest_run(vdx_store *store, const vdx_clip_model *model, const vdx_source *src,
                   const vdx_ingest_options *opts, vdx_ingest_report *report, vdx_error *err)
{
    memset(report, 0, sizeof *report);
    vdx_ingest_stats *st = &report->stats;
    st->rejected = (long)src->n_problems;
    st->eta_s = -1;
    /* the source's size until the plan says what is left to do, so that a run failing
     * before it still ends with a final progress.json that says of what */
    st->total = (long)src->n_items;
    double t0 = vdx_now();
    run r;
    memset(&r, 0, sizeof r);
    r.store = store;
    r.model = model;
    r.src = src;
    r.opts = opts;
    r.pre = vdx_clip_get_preprocess(model);
    r.dims = vdx_clip_embed_dim(model);
    r.crop_h = r.pre->crop_height;
    r.crop_w = r.pre->crop_width;
    decode_sizes(&r);
    const vdx_model_identity *id = vdx_store_model(store);
    if (id && id->dims != r.dims)
        return vdx_fail(err, "the collection holds %d-d vectors, the model makes %d-d ones",
                        id->dims, r.dims);
    if (src->n_columns &&
        vdx_store_add_columns(store, (const char *const *)src->columns, src->n_columns, err) != 0)
        return -1;
    if (vdx_fetch_origin_save(vdx_store_dir(store), &opts->fetch, err) != 0)
        return -1;
    if (plan(&r, st, err) != 0) {
        free(r.todo);
        return -1;
    }
    st->total = (long)r.n_todo;
    int workers = opts->workers > 0 ? opts->workers : vdx_cpu_count();
    int batch = opts->batch > 0 ? opts->batch : 32;
    if (r.n_todo == 0) {
        free(r.todo);
        st->elapsed_s = vdx_now() - t0;
        st->eta_s = 0;
        if (opts->on_progress)
            opts->on_progress(st, opts->user);
        return 0;
    }
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.changed, NULL);
    pthread_cond_init(&r.model_idle, NULL);
    const char *schedule = getenv("VDX_INGEST_SCHEDULE");
    r.take_turns = !(schedule && strcmp(schedule, "overlap") == 0) &&
                   vdx_clip_threads() >= vdx_cpu_count();
    pthread_t fetcher, embedder, inserter, *decoders = calloc((size_t)workers, sizeof *decoders);
    if (!decoders || queue_init(&r.decode_q, (size_t)workers * 2 + 8) != 0 ||
        queue_init(&r.embed_q, (size_t)batch * 2) != 0 || queue_init(&r.insert_q, 2) != 0) {
        queue_destroy(&r.decode_q);
        queue_destroy(&r.embed_q);
        queue_destroy(&r.insert_q);
        pthread_mutex_destroy(&r.lock);
        pthread_cond_destroy(&r.changed);
        pthread_cond_destroy(&r.model_idle);
        free(decoders);
        free(r.todo);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for the ingest queues of %d workers", workers);
    }
    r.decoders_left = workers;
    int n_decoders = start_stages(&r, &fetcher, decoders, workers, &embedder, &inserter);

    rate_meter meter = {0};
    for (;;) {
        pthread_mutex_lock(&r.lock);
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += 200 * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        if (!r.finished)
            pthread_cond_timedwait(&r.changed, &r.lock, &deadline);
        int finished = r.finished;
        pthread_mutex_unlock(&r.lock);
        snapshot(&r, st, t0, &meter);
        if (opts->on_progress)
            opts->on_progress(st, opts->user);
        if (!finished && opts->stop && *opts->stop && !r.halt) {
            r.stopped_by_user = 1;
            r.halt = 1;
        }
        if (finished)
            break;
    }
    if (r.started_fetcher)
        pthread_join(fetcher, NULL);
    for (int i = 0; i < n_decoders; i++)
        pthread_join(decoders[i], NULL);
    if (r.started_embedder)
        pthread_join(embedder, NULL);
    if (r.started_inserter)
        pthread_join(inserter, NULL);
    free(decoders);
    snapshot(&r, st, t0, &meter);
    st->rate = st->elapsed_s > 0 ? (double)st->done / st->elapsed_s : 0;
    report->stopped = r.stopped_by_user;
    /* most frequent reason first */
    for (int i = 1; i < r.n_reasons; i++)
        for (int k = i; k > 0 && r.reasons[k].count > r.reasons[k - 1].count; k--) {
            vdx_ingest_reason_count t = r.reasons[k];
            r.reasons[k] = r.reasons[k - 1];
            r.reasons[k - 1] = t;
        }
    report->reasons = r.reasons;
    report->n_reasons = r.n_reasons;
    queue_destroy(&r.decode_q);
    queue_destroy(&r.embed_q);
    queue_destroy(&r.insert_q);
    pthread_mutex_destroy(&r.lock);
    pthread_cond_destroy(&r.changed);
    pthread_cond_destroy(&r.model_idle);
    free(r.todo);
    /* what embedded the vectors stored by this run, in the collection (vdx info shows it) */
    vdx_error record_err = {{0}};
    vdx_embedding_record record = {vdx_precision_name(vdx_clip_image_precision(model)),
                                   vdx_clip_image_isa(model),
                                   opts->exact_decode ? "exact" : "reduced", st->stored};
    int recorded = st->stored == 0 || vdx_store_record_embedding(store, &record, &record_err) == 0;
    if (r.failed_fatally) {
        if (err)
            *err = r.fatal;
        return -1;
    }
    if (!recorded) {
        if (err)
            *err = record_err;
        return vdx_error_prefix(err, "%ld items stored, but not what embedded them", st->stored);
    }
    return 0;
}

void vdx_ingest_report_free(vdx_ingest_report *r)
{
    for (int i = 0; i < r->n_reasons; i++)
        free(r->reasons[i].reason);
    free(r->reasons);
    r->reasons = NULL;
    r->n_reasons = 0;
}
