/* The vector store: one interface over a collection of items (id, url, metadata,
 * thumbnail, L2-normalised vector), implemented by the embedded backend (SQLite +
 * memory-mapped vector matrix, the default) and the ClickHouse/MyScale backend (HTTP).
 * Ingest, search, the explore loop and the server use only this interface.
 *
 * Conventions: every fallible function returns 0 (or non-NULL) on success and -1 (or
 * NULL) with a message in *err. Threads may share a vdx_store handle: its calls are
 * serialised (a search uses every core inside anyway). Any number of processes may read
 * a collection while one process writes it; a writer takes the collection's write lock
 * (see vdx_store_open) and readers see its new rows after vdx_store_refresh. On-disk
 * format and crash-safety argument of the embedded backend: docs/store-format.md.
 * Environment: $VDX_SEARCH_THREADS caps the threads of one search (default: all cores,
 * one below 4 MB of vectors). */
#ifndef VDX_STORE_H
#define VDX_STORE_H

#include <cjson/cJSON.h>

#include "vdx/common.h"

typedef struct vdx_store vdx_store;

typedef enum { VDX_VECTOR_F32 = 0, VDX_VECTOR_F16 = 1 } vdx_vector_type;

/* What a collection was embedded with; a query or ingest with another model is refused. */
typedef struct vdx_model_identity {
    char name[256];
    char config_hash[65];
    int dims;
} vdx_model_identity;

/* model.config_hash holds the model fingerprint (vdx_clip_config_hash). */

typedef struct vdx_store_options {
    const char *data_dir;   /* NULL: $VDX_HOME, else ~/.local/share/vdx */
    const char *collection; /* NULL: "default"; [A-Za-z0-9_.-]{1,64}, no ".." */
    const char *url;        /* NULL: $VDX_STORE; NULL/""/"embedded": embedded store;
                             * "clickhouse://...", "http(s)://...": ClickHouse */
    int create;             /* create the collection if missing (needs model) */
    const vdx_model_identity *model; /* when set, must match the collection's */
    vdx_vector_type vector_type;     /* for a new collection (ignored for an existing one) */
    int read_only;          /* refuse writes; takes no lock (search, serve, info) */
} vdx_store_options;

/* Opens a collection; with opts->create, creates it first if it does not exist.
 * Errors: invalid collection name; unknown store URL; collection missing (without
 * create); model mismatch ("collection 'X' was embedded with model A (fingerprint ...,
 * 512-d); this model is B (...): use --model A or another --collection"), compared by
 * fingerprint and dims.
 * Writing: a handle opened with create=1 takes the collection's write lock at open
 * (so an ingest fails at once when another one is running); a handle opened with
 * read_only=0 and create=0 takes it at its first write. Only one process holds the lock;
 * the others' writes fail with "collection 'X' is being written by another process (pid
 * N)". Taking the lock discards vector rows left behind by a writer that crashed. */
vdx_store *vdx_store_open(const vdx_store_options *opts, vdx_error *err);
void vdx_store_close(vdx_store *store);

const vdx_model_identity *vdx_store_model(const vdx_store *store);
/* Name of the collection. */
const char *vdx_store_collection(const vdx_store *store);
/* Local directory of the collection (DATA/collections/NAME): side files (concepts,
 * progress) live here for every backend. */
const char *vdx_store_dir(const vdx_store *store);
/* Sees what another process appended since open (readers call it before a query).
 * Cheap when nothing changed. */
int vdx_store_refresh(vdx_store *store, vdx_error *err);
/* Items with a vector, as of open / the last refresh / this handle's own appends. */
int64_t vdx_store_count(vdx_store *store);
/* Rows an approximate index with int8 codes covers, as of open / the last refresh (0: no
 * such index, or a backend without one): whether searches and score_values use one. */
int64_t vdx_store_indexed_rows(vdx_store *store);

/* Metadata columns (besides the builtin id, url, width, height, ingested_at). Any
 * non-empty name is allowed (stored quoted); a name equal to a builtin column, compared
 * case-insensitively, is an error. Idempotent: existing names are skipped. */
int vdx_store_add_columns(vdx_store *store, const char *const *names, int n, vdx_error *err);
/* Names of the metadata columns in the order they were added, malloc'd (free each, then
 * the array). */
int vdx_store_columns(vdx_store *store, char ***names, int *n, vdx_error *err);
/* Parses a filter (`where`, see "Filters" below) against the collection's columns without
 * running it: 0 when it is valid (or empty), else the parse error. Callers check every
 * part of a request this way before they change anything. */
int vdx_store_check_where(vdx_store *store, const char *where, vdx_error *err);

/* One item to append. failure != NULL records a failed item (no vector, no thumbnail):
 * a later successful append of the same id replaces the failure. */
typedef struct vdx_item {
    const char *id;
    const char *url;                 /* source URL or file path */
    int width, height;               /* original image size, 0 if unknown */
    const char *const *meta_names;   /* n_meta metadata columns (added if missing) */
    const char *const *meta_values;  /* NULL value = SQL NULL */
    int n_meta;
    const float *vector;             /* dims floats, L2-normalised; NULL for a failure */
    const uint8_t *thumbnail;        /* JPEG, may be NULL */
    size_t thumbnail_size;
    const char *failure;             /* reason, or NULL */
} vdx_item;

/* Appends a batch atomically: after a crash either all of it is there or none, and an
 * error leaves nothing of it. Ids must be unique within the batch; an id already stored
 * with a vector is an error naming it. A failure for an id that already has a failure
 * replaces it (new reason and time). Vectors must be finite and non-zero; they are stored
 * as given (callers normalise). Metadata columns are added when missing. */
int vdx_store_append(vdx_store *store, const vdx_item *items, size_t n, vdx_error *err);

typedef enum { VDX_ITEM_ABSENT = 0, VDX_ITEM_STORED = 1, VDX_ITEM_FAILED = 2 } vdx_item_state;
/* State of each id: stored with a vector, recorded as failed, or absent. */
int vdx_store_item_states(vdx_store *store, const char *const *ids, size_t n,
                          vdx_item_state *states, vdx_error *err);

typedef struct vdx_search_request {
    const float *query;              /* dims floats; normalised internally (cosine) */
    int k;                           /* results wanted */
    int offset;                      /* skip this many (paging) */
    const char *const *exclude_ids;  /* never returned */
    size_t n_exclude;
    const char *where;               /* boolean expression over the builtin and metadata
                                      * columns, or NULL: see "Filters" below */
    int with_vectors;                /* fill vdx_hit.vector */
    int exact;                       /* scan every vector even when an approximate index
                                      * exists (embedded store; see vdx_store_index_build) */
    int without_urls;                /* score_all: the caller needs no URL, so a backend may
                                      * leave vdx_hit.url NULL: the embedded store then reads
                                      * none (at a million items most of a score_all's
                                      * time); ClickHouse, whose URLs come with the scores
                                      * anyway, keeps them */
    int without_ids;                 /* score_all: every vdx_hit.id and url is NULL: the
                                      * scores alone, in storage order (no string per item) */
} vdx_search_request;

typedef struct vdx_hit {
    char *id;
    char *url;
    float dist;     /* search: cosine distance 1 - cos, ascending; score: raw dot product */
    float *vector;  /* dims floats when asked for, else NULL */
} vdx_hit;

typedef struct vdx_hits {
    vdx_hit *hits;
    int n;
} vdx_hits;

/* The k nearest items by cosine distance, ties broken by id, excluding exclude_ids and
 * rows not matching where, after skipping the first `offset`. Exact (a full scan on the
 * embedded backend). Excluded ids the collection does not hold are ignored. Fewer than
 * k hits when fewer items qualify. A zero or non-finite query is an error.
 *
 * Filters (`where`): one boolean expression, e.g. "photo_featured = 't' AND
 * (photo_width >= 4000 OR lower(photographer_username) LIKE 'a%')". Grammar: column
 * names (bare or "double-quoted"; unknown names are an error listing the valid ones),
 * 'string' literals ('' for a quote), numbers, = != <> < <= > >=, AND OR NOT,
 * parentheses, [NOT] IN (literal, ...), [NOT] LIKE, IS [NOT] NULL, [NOT] BETWEEN x AND y,
 * and the functions lower(), upper(), length() (Unicode characters). LIKE ignores case
 * (Unicode); '%' and '_' are its only wildcards ('\' is a plain character, there is no
 * ESCAPE), and a literal pattern may be 10,000 bytes long (SQLite refuses longer ones when
 * they run, once lowered). A metadata column compared with a number compares numerically (values
 * that are not plain decimal numbers never match). Anything else
 * (';', comments, subqueries, other functions) is refused with the byte offset. Nesting
 * (parentheses, NOT, function calls, each a level) is limited to 32 levels, the same on
 * both backends (deep enough for any hand-written filter, shallow enough for SQLite's
 * parser). A chain of ANDs or ORs is one level however long (thousands of terms, up to
 * the 64 KiB limit of the text): it is rendered flat, "(a OR b OR c)", a chain of more
 * than 32 terms as parenthesised groups of at most 32 (SQLite refuses expression trees
 * deeper than 1,000). Values never become SQL text (they are bound as parameters or
 * escaped per backend), and errors never echo the SQL vdx generated. */
int vdx_store_search(vdx_store *store, const vdx_search_request *req, vdx_hits *out,
                     vdx_error *err);
/* Every item matching where and not excluded (k and offset ignored), with
 * dist = dot(vector, query), the query NOT normalised: a linear classifier's logit.
 * In storage (append) order. */
int vdx_store_score_all(vdx_store *store, const vdx_search_request *req, vdx_hits *out,
                        vdx_error *err);
/* The scores alone of score_all's items (the same items, where and exclusions honoured,
 * in storage order, no ids): *n floats in *scores (free() them). With an approximate
 * index of int8 codes and req->exact unset, the embedded store estimates them from the
 * codes, a quarter of the bytes a float32 scan reads (rows appended after the build are
 * scored exactly); *bound is then the largest error any score may have (½ Σ|q_d·scale_d|,
 * typically 0.01-0.02 for a unit query, while the typical error is a few 1e-4), else 0.
 * For histograms and counts (evaluate), not rankings. */
int vdx_store_score_values(vdx_store *store, const vdx_search_request *req, float **scores,
                           size_t *n, double *bound, vdx_error *err);
void vdx_hits_free(vdx_hits *hits);

/* Vectors of the given ids (n*dims floats, as stored: f16 collections give the f16
 * values widened). An unknown id is an error naming it. */
int vdx_store_get_vectors(vdx_store *store, const char *const *ids, size_t n, float *out,
                          vdx_error *err);
/* Vectors of min(k, count) distinct items drawn uniformly at random from the collection
 * (k*dims floats in out, *got of them filled), the same items for the same seed and
 * collection: the anchored trainer's weak negatives. k <= VDX_SAMPLE_MAX. */
#define VDX_SAMPLE_MAX 65536
int vdx_store_sample_vectors(vdx_store *store, size_t k, uint64_t seed, float *out, size_t *got,
                             vdx_error *err);
/* One item as JSON: {"id","url","width","height","ingested_at","metadata":{...}}
 * (metadata values are strings or null); a failed item also has "failure" and
 * "failed_at". An unknown id is an error naming it. */
int vdx_store_get_item(vdx_store *store, const char *id, cJSON **item, vdx_error *err);
/* The JPEG thumbnail stored for id, malloc'd. An id without one is an error. */
int vdx_store_get_thumbnail(vdx_store *store, const char *id, uint8_t **jpeg, size_t *size,
                            vdx_error *err);
/* Failed items: JSON array of {"id","url","reason","time"}, oldest first. */
int vdx_store_failures(vdx_store *store, cJSON **failures, vdx_error *err);
/* Collection summary: {"collection","backend","model":{...},"count","failed",
 * "vector_type","bytes_on_disk",...}. */
/* What embedded a collection's vectors: every ingest run that stores vectors records one
 * (docs/store-format.md, "Notes"), and vdx_store_info sums them per kind under
 * "embedded_with": [{"precision","isa","decode","items","runs","last"}...]. */
typedef struct vdx_embedding_record {
    const char *precision; /* "fp32", "bf16", "int8"; "external": vectors made elsewhere */
    const char *isa;       /* the kernel oneDNN ran, e.g. "brg:avx512_core_bf16"; NULL: none */
    const char *decode;    /* "exact", or "reduced" (large JPEGs decoded reduced); NULL: none */
    int64_t items;         /* vectors the run stored */
} vdx_embedding_record;
int vdx_store_record_embedding(vdx_store *store, const vdx_embedding_record *record,
                               vdx_error *err);
int vdx_store_info(vdx_store *store, cJSON **info, vdx_error *err);
/* Forgets failures so that an ingest tries those items again (--retry-failed). */
int vdx_store_clear_failures(vdx_store *store, vdx_error *err);

/* ---- The approximate index (embedded store; docs/index.md) ----
 * An index covers the rows that existed when it was built; rows appended later are
 * scanned exactly and merged, so results never go stale. A search uses it unless
 * req->exact is set or a filter leaves fewer than VDX_INDEX_MIN_FILTERED_SHARE of the
 * rows (then the exact scan of the matching rows is cheaper and exact). */
typedef struct vdx_index_options {
    int lists;       /* partitions; 0: 2√rows (at least 16) */
    int nprobe;      /* partitions a search visits by default; 0: 2√lists, at least 8 */
    int train_rows;  /* k-means sample; 0: min(rows, 64 × lists, 262144) */
    int iterations;  /* k-means rounds; 0: 10 */
    int codes;       /* VDX_INDEX_CODES_*; 0 (AUTO): $VDX_INDEX_CODES ("int8" or "pq"), else
                      * int8 up to 2 GiB of them (rows × dims), pq beyond */
    int rerank;      /* pq: estimates re-scored exactly per search; 0: max(20 × k, 1000) */
    /* progress: stage ("training", "assigning", "encoding", "writing") and a fraction */
    void (*on_progress)(const char *stage, double fraction, void *user);
    void *user;
} vdx_index_options;

/* The codes of the index's first pass: int8 residuals (512 B/item at 512 dims; with every
 * partition visited the result is the exact scan's) or product-quantised residuals (4 bits
 * per 2 dimensions: 128 B/item at 512 dims; approximate, the best estimates are re-scored
 * exactly). */
enum { VDX_INDEX_CODES_AUTO = 0, VDX_INDEX_CODES_INT8, VDX_INDEX_CODES_PQ };

/* Size from which an ingest builds the index by itself (vdx_store_index_auto). */
#define VDX_INDEX_AUTO_ROWS 200000
/* A filter keeping less than this share of the rows is searched exactly. */
#define VDX_INDEX_MIN_FILTERED_SHARE 0.05

/* Builds (or rebuilds) the index of every row the handle sees, atomically: a build killed
 * at any point leaves the previous index or none. Needs a writable handle (the write
 * lock). Errors for backends without one (ClickHouse indexes on the server). */
int vdx_store_index_build(vdx_store *store, const vdx_index_options *opts, vdx_error *err);
/* The ingest policy: builds when the collection holds at least VDX_INDEX_AUTO_ROWS items
 * and has no index, or more than a fifth of its rows are past the index. *built says
 * whether it did. A backend without an index does nothing. */
int vdx_store_index_auto(vdx_store *store, const vdx_index_options *opts, int *built,
                         vdx_error *err);

/* Data directory as resolved from opts/env (opts->data_dir, $VDX_HOME,
 * ~/.local/share/vdx). */
int vdx_store_resolve_dir(const vdx_store_options *opts, char *dir, size_t size, vdx_error *err);
/* The collection directory inside it: DATA/collections/NAME (name validated). */
int vdx_store_collection_dir(const vdx_store_options *opts, char *dir, size_t size,
                             vdx_error *err);

#endif
