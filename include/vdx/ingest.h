/* Ingest: turns a dataset (Unsplash Lite TSV, a folder of images, a list of URLs) into a
 * collection. Three parts, usable on their own:
 *   - sources: read a dataset description into items (id, url or path, metadata),
 *     reporting malformed rows with their line number and reason;
 *   - the fetcher: parallel HTTP(S) downloads (libcurl multi) with retries, a size cap
 *     and an on-disk cache keyed by URL;
 *   - the pipeline: download ‖ decode+preprocess ‖ batched embedding ‖ batched insert
 *     with bounded queues, resumable, stoppable, with progress reporting. */
#ifndef VDX_INGEST_H
#define VDX_INGEST_H

#include <signal.h>
#include <stdio.h>

#include "vdx/clip.h"
#include "vdx/common.h"
#include "vdx/store.h"

/* ---- Sources ------------------------------------------------------------------------ */

typedef struct vdx_source_item {
    char *id;
    char *url;     /* http(s) URL or local file path (valid UTF-8, as stored and shown) */
    char *path;    /* the raw local path to read when it differs from url (a file name
                    * that is not UTF-8: url and id carry it escaped); else NULL */
    char **values; /* one per source column (vdx_source.columns); NULL = empty field */
    int width, height; /* original size when the source knows it, else 0 */
} vdx_source_item;

/* A row the source could not use: skipped, reported to the user. */
typedef struct vdx_source_problem {
    char *file;    /* e.g. "photos.tsv000" */
    long line;     /* 1-based line where the row starts */
    char *id;      /* the row's id when it has one, else NULL */
    char *reason;  /* "too few columns (2 of 31)", "bad URL 'x'", ... */
} vdx_source_problem;

typedef struct vdx_source {
    char kind[16];    /* "unsplash", "folder", "urls" */
    char **columns;   /* metadata column names, in order */
    int n_columns;
    vdx_source_item *items; /* in source order (folder: sorted by id) */
    size_t n_items;
    vdx_source_problem *problems;
    size_t n_problems;
    long rows;        /* data rows / lines / files seen, good or not */
} vdx_source;

/* Unsplash Lite: a directory or a .zip (read in place) holding photos.tsv000 and
 * optionally keywords.tsv000. Parsed like pandas.read_csv(sep='\t'): a header row, UTF-8,
 * empty fields, fields quoted as Python's csv module does. Every column becomes metadata;
 * keywords are aggregated per photo into a "keywords" column (", "-separated, file order). */
vdx_source *vdx_source_unsplash(const char *path, vdx_error *err);
/* A folder of images, recursively (jpg, jpeg, png, webp, gif, bmp; case-insensitive).
 * ids are paths relative to dir, sorted bytewise; url is the full path. */
vdx_source *vdx_source_folder(const char *dir, vdx_error *err);
/* A text file with one URL or file path per line; blank lines and lines starting with '#'
 * are ignored; ids are the lines themselves (relative paths resolved against the file's
 * directory for reading). A directory, or a file holding a NUL byte (an image given by
 * mistake, a UTF-16 file), is refused whole (VDX_ERR_INVALID). */
vdx_source *vdx_source_urls(const char *path, vdx_error *err);
void vdx_source_free(vdx_source *src);

/* Whether s is an absolute http:// or https:// URL with a host. */
int vdx_is_http_url(const char *s);

/* ---- Fetcher ------------------------------------------------------------------------ */

typedef struct vdx_fetch_options {
    int parallel;             /* concurrent transfers (default 16) */
    long connect_timeout_ms;  /* default 10000 */
    long timeout_ms;          /* whole transfer, default 60000 */
    int retries;              /* extra attempts on 429/5xx/timeouts/resets (default 4) */
    long backoff_ms;          /* first retry delay, doubled each time (default 500);
                                 a Retry-After header is honoured up to 60 s */
    size_t max_bytes;         /* size cap per response (default 50 MiB) */
    const char *cache_dir;    /* on-disk cache (sha256 of the URL); NULL: none */
    const char *base_url;     /* replaces "https://images.unsplash.com/" (tests, mirrors) */
    const char *imgix_params; /* added to images.unsplash.com URLs; NULL: "w=640&fm=jpg&q=85",
                                 "": none */
    volatile sig_atomic_t *stop; /* when it becomes non-zero, transfers are abandoned */
} vdx_fetch_options;

void vdx_fetch_options_default(vdx_fetch_options *o);

/* The URL actually requested for a source URL: imgix parameters added to
 * images.unsplash.com URLs (merged with an existing query), then the base URL applied. */
char *vdx_fetch_effective_url(const vdx_fetch_options *o, const char *url);

typedef struct vdx_fetch_result {
    int ok;
    uint8_t *data;     /* the body when ok (malloc'd; the callback may keep it) */
    size_t size;
    long http_status;  /* last status, 0 when no response */
    int attempts;
    int from_cache;
    char reason[512];  /* why it failed: "HTTP 404", "timeout after 60 s", ... */
} vdx_fetch_result;

/* Streaming interface used by the pipeline: next() hands out the next URL (returns 0 when
 * there is none left, and is called again later when it may have more: return -1 for
 * "nothing right now"), done() receives each result (any order; it owns r->data). done()
 * returning non-zero stops the run. Returns 0, or -1 on a setup error. */
typedef int (*vdx_fetch_next_fn)(void *user, size_t *tag, const char **url);
typedef int (*vdx_fetch_done_fn)(void *user, size_t tag, vdx_fetch_result *r);
int vdx_fetch_run(const vdx_fetch_options *o, vdx_fetch_next_fn next, vdx_fetch_done_fn done,
                  void *user, vdx_error *err);

/* Fetches n URLs; results[i] for urls[i] (free with vdx_fetch_result_clear). */
int vdx_fetch_all(const vdx_fetch_options *o, const char *const *urls, size_t n,
                  vdx_fetch_result *results, vdx_error *err);
void vdx_fetch_result_clear(vdx_fetch_result *r);

/* Where a collection's images came from: every ingest records its base URL (a mirror of
 * images.unsplash.com given with --base-url, or none) in COLLECTION_DIR/fetch.json, so
 * that `vdx serve` fetches the detail view's large originals from the same place. */
int vdx_fetch_origin_save(const char *collection_dir, const vdx_fetch_options *o, vdx_error *err);
/* The recorded base URL (malloc'd), or NULL: none recorded, or the file is unreadable. */
char *vdx_fetch_origin_load(const char *collection_dir);

/* ---- Progress ----------------------------------------------------------------------- */

typedef struct vdx_ingest_stats {
    long total;      /* items this run will process (after skipping stored ones) */
    long done;       /* processed: stored + failed */
    long stored;
    long failed;
    long skipped;    /* already in the collection before this run */
    long skipped_failed; /* of those, recorded as failures (see retry_failed) */
    long rejected;   /* source rows that were malformed */
    double elapsed_s;
    double rate;     /* items/s over the last few seconds */
    double eta_s;    /* -1 when unknown */
} vdx_ingest_stats;

typedef struct vdx_progress vdx_progress;

/* Writes json_path (progress.json) atomically, at most once a second from update, and a
 * last time from finish with the state "done", "stopped" or "failed". The library draws
 * nothing: the caller shows vdx_ingest_stats as it likes (the CLI: cli_progress.c).
 * NULL json_path: nothing is written. Update and finish return -1 when the file could
 * not be written (the ingest goes on; the caller may say so). */
vdx_progress *vdx_progress_new(const char *json_path);
int vdx_progress_update(vdx_progress *p, const vdx_ingest_stats *s, vdx_error *err);
int vdx_progress_finish(vdx_progress *p, const vdx_ingest_stats *s, const char *state,
                        vdx_error *err);
/* For a run that failed before it could open its collection (a missing source, a model
 * that does not load, a store that refuses): writes state "failed" with s when the
 * collection's directory exists, unless the file belongs to a run of another process that
 * is still alive ("running" with a live pid). 0, or -1 when it could not be written. */
int vdx_progress_fail_early(vdx_progress *p, const vdx_ingest_stats *s, vdx_error *err);
void vdx_progress_free(vdx_progress *p);
/* The progress.json document for s (exposed for tests). */
char *vdx_progress_json(const vdx_ingest_stats *s, const char *state, double started_epoch,
                        double updated_epoch, long pid);

/* ---- Pipeline ----------------------------------------------------------------------- */

typedef struct vdx_ingest_options {
    int workers;           /* decode+preprocess threads (default: cores) */
    int batch;             /* images per embedding batch and insert transaction (default 32) */
    long limit;            /* only the first `limit` source items (0 = all) */
    int retry_failed;      /* try items recorded as failed again */
    int thumbnail_side;    /* default 400 */
    int thumbnail_quality; /* default 85 */
    /* 0 (default): large JPEGs are decoded reduced in the DCT domain to 2x the resize
     * and thumbnail targets (embeddings within cosine 0.999 of the full decode,
     * docs/ingest.md); 1: every image at full size, as `vdx embed` decodes */
    int exact_decode;
    vdx_fetch_options fetch;
    volatile sig_atomic_t *stop; /* set by a signal handler: finish the batch, commit, return */
    /* Called at least once a second and after every committed batch (from the thread
     * that called vdx_ingest_run). */
    void (*on_progress)(const vdx_ingest_stats *s, void *user);
    void *user;
} vdx_ingest_options;

void vdx_ingest_options_default(vdx_ingest_options *o);

/* Failure reasons of this run, grouped: "HTTP 404" x 3, "cannot decode image" x 1. */
typedef struct vdx_ingest_reason_count {
    char *reason;
    long count;
} vdx_ingest_reason_count;

typedef struct vdx_ingest_report {
    vdx_ingest_stats stats;
    int stopped;                      /* interrupted through opts->stop */
    vdx_ingest_reason_count *reasons; /* n_reasons, most frequent first */
    int n_reasons;
} vdx_ingest_report;

/* Embeds and stores every source item the collection does not hold yet. Item failures
 * (broken links, undecodable images) are recorded in the store, never fatal; returns -1
 * only when the run itself fails (store, model). The collection must have been opened
 * with this model. */
int vdx_ingest_run(vdx_store *store, const vdx_clip_model *model, const vdx_source *src,
                   const vdx_ingest_options *opts, vdx_ingest_report *report, vdx_error *err);
void vdx_ingest_report_free(vdx_ingest_report *r);

/* ---- Vectors made elsewhere (.npy) --------------------------------------------------- */

/* A NumPy .npy file holding a float32 or float16 matrix [rows, cols] (or one vector
 * [cols]), C order, little-endian, memory-mapped read-only. */
typedef struct vdx_npy {
    int64_t rows;
    int cols;
    int f16;            /* 1: '<f2', 0: '<f4' */
    const uint8_t *data; /* rows * cols elements */
    void *map;
    size_t map_size;
} vdx_npy;

/* Opens and validates path: magic and version (1.0, 2.0, 3.0), a header dict with
 * 'descr' '<f4' or '<f2', 'fortran_order' False and a 1- or 2-dimensional 'shape', and a
 * file size equal to header + rows × cols × element size. Errors name the file and what
 * is wrong ("x.npy: dtype '<f8' is not float32 or float16", "... is 1000 bytes short"). */
int vdx_npy_open(const char *path, vdx_npy *out, vdx_error *err);
void vdx_npy_close(vdx_npy *npy);
/* Row `row` widened to float32 (out has cols floats). */
void vdx_npy_row(const vdx_npy *npy, int64_t row, float *out);
/* Checks that every element of row is finite and the row is not all zeros; the error
 * names the file, the row (0-based) and the column. */
int vdx_npy_check_row(const vdx_npy *npy, const char *path, int64_t row, vdx_error *err);

typedef struct vdx_vectors_source {
    const char *vectors_path; /* .npy [n, dim] */
    const char *ids_path;     /* n lines, one id each (unique, non-empty) */
    const char *meta_path;    /* optional TSV: a header row whose first column is "id",
                               * then one row per id (any order, a subset is fine) */
} vdx_vectors_source;

/* Loads vectors made elsewhere into a collection: validates everything first (shapes,
 * dtype, dimension = the collection's, NaN/infinity/zero rows, ids count, duplicate or
 * empty ids, metadata rows with the wrong column count or an unknown id: errors name the
 * file, line or row), then appends in batches of 4096, L2-normalised, skipping ids the
 * collection already holds (a re-run resumes). Progress goes to opts->on_progress; stops
 * at a batch boundary when *opts->stop becomes non-zero. */
int vdx_ingest_vectors(vdx_store *store, const vdx_vectors_source *src,
                       const vdx_ingest_options *opts, vdx_ingest_report *report,
                       vdx_error *err);
/* The same validation without a collection, against the dimension of `model`'s vectors:
 * what a caller runs before it creates the collection, so a refused first load creates
 * nothing. Errors are VDX_ERR_INVALID (or the files' own: not found, no memory). */
int vdx_ingest_vectors_check(const vdx_vectors_source *src, const vdx_model_identity *model,
                             vdx_error *err);

#endif
