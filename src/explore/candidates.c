/* Candidates: what to show the person labelling next. "nearest" is the original's query
 * (the k unlabelled items nearest the weight by cosine distance: where the classifier is
 * most sure, so its mistakes are the hard negatives); "boundary" the unlabelled items
 * scoring closest to the threshold; "random" a seeded uniform sample of the unlabelled
 * items, an unbiased check. Pages are slices of the mode's ordering; near-duplicates
 * (cosine >= 0.94 to an earlier item of the page) may be hidden. */
#include "explore/book.h"

#include "common/hash.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_K 9
#define MAX_K 1000
#define DEFAULT_DUPLICATE_COSINE 0.94

int vdx_candidates_mode_parse(const char *text)
{
    if (!text)
        return -1;
    if (!strcmp(text, "nearest"))
        return VDX_CANDIDATES_NEAREST;
    if (!strcmp(text, "boundary"))
        return VDX_CANDIDATES_BOUNDARY;
    if (!strcmp(text, "random"))
        return VDX_CANDIDATES_RANDOM;
    return -1;
}

const char *vdx_candidates_mode_name(vdx_candidates_mode mode)
{
    switch (mode) {
    case VDX_CANDIDATES_NEAREST:
        return "nearest";
    case VDX_CANDIDATES_BOUNDARY:
        return "boundary";
    case VDX_CANDIDATES_RANDOM:
        return "random";
    }
    return "unknown";
}

/* One candidate of a page. */
typedef struct candidate {
    const char *id, *url;
    double score;
    const float *vector; /* for duplicate hiding, may be NULL */
} candidate;

/* An unlabelled item of a full scan, with what the ordering needs. */
typedef struct scored {
    const vdx_hit *hit;
    double key;
} scored;

static int by_key_then_id(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return strcmp(x->hit->id, y->hit->id);
}

static int by_id(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    return strcmp(x->hit->id, y->hit->id);
}

/* splitmix64: a small, well-mixed generator; the sequence depends only on the seed. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t seed_of_name(const char *name)
{
    uint64_t h = hash_str(name);
    return h ? h : 1;
}

/* Unbiased integer in [0, bound). */
static size_t random_below(uint64_t *state, size_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do
        r = next_random(state);
    while (r >= limit);
    return (size_t)(r % bound);
}

static double cosine(const float *a, const float *b, int dims)
{
    double dot = 0, na = 0, nb = 0;
    for (int j = 0; j < dims; j++) {
        dot += (double)a[j] * b[j];
        na += (double)a[j] * a[j];
        nb += (double)b[j] * b[j];
    }
    return na > 0 && nb > 0 ? dot / sqrt(na * nb) : 0;
}

/* Boundary and random modes: a full scan, minus labelled items, ordered by the mode. */
static int scan_page(vdx_concepts *book, const concept_record *rec, const label_index *labelled,
                     const vdx_candidates_request *req, int k, uint64_t seed, vdx_hits *hits,
                     candidate *page, int *n_page, int64_t *unlabelled, int *more,
                     vdx_error *err)
{
    if (book_score_all(book, rec->weight, req->where, hits, err) != 0)
        return -1;
    scored *items = malloc(((size_t)hits->n + 1) * sizeof *items);
    if (!items)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory for %d scores", hits->n);
    size_t n = 0;
    for (int i = 0; i < hits->n; i++) {
        if (label_index_get(labelled, hits->hits[i].id) >= 0)
            continue;
        items[n].hit = &hits->hits[i];
        items[n].key = fabs((double)hits->hits[i].dist - rec->threshold);
        n++;
    }
    *unlabelled = (int64_t)n;
    size_t start = (size_t)req->page * (size_t)k;
    size_t end = start + (size_t)k < n ? start + (size_t)k : n;
    if (req->mode == VDX_CANDIDATES_BOUNDARY) {
        qsort(items, n, sizeof *items, by_key_then_id);
    } else {
        /* a seeded shuffle of the ids in sorted order: the same seed and unlabelled set
         * give the same pages on every backend; only the first `end` places are drawn */
        qsort(items, n, sizeof *items, by_id);
        uint64_t state = seed;
        for (size_t i = 0; i < end; i++) {
            size_t j = i + random_below(&state, n - i);
            scored t = items[i];
            items[i] = items[j];
            items[j] = t;
        }
    }
    *n_page = 0;
    for (size_t i = start; i < end; i++) {
        page[*n_page].id = items[i].hit->id;
        page[*n_page].url = items[i].hit->url;
        page[*n_page].score = items[i].hit->dist;
        page[*n_page].vector = NULL;
        (*n_page)++;
    }
    *more = end < n;
    free(items);
    return 0;
}

int vdx_concept_candidates(vdx_concepts *book, const char *name,
                           const vdx_candidates_request *req, cJSON **result, vdx_error *err)
{
    *result = NULL;
    int k = req->k > 0 ? req->k : DEFAULT_K;
    if (k > MAX_K)
        return vdx_fail(err, "candidates: k = %d is more than %d", k, MAX_K);
    if (req->page < 0 || (int64_t)req->page * k > 100000000)
        return vdx_fail(err, "candidates: page %d is out of range", req->page);
    if (req->mode != VDX_CANDIDATES_NEAREST && req->mode != VDX_CANDIDATES_BOUNDARY &&
        req->mode != VDX_CANDIDATES_RANDOM)
        return vdx_fail(err, "candidates: unknown mode %d", (int)req->mode);
    double duplicate_cosine = req->duplicate_cosine > 0 ? req->duplicate_cosine
                                                        : DEFAULT_DUPLICATE_COSINE;

    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    label_set set = {0};
    label_index labelled = {0};
    vdx_hits hits = {0};
    candidate *page = malloc((size_t)k * sizeof *page);
    float *page_vectors = NULL;
    int n_page = 0, more = 0, rc = page ? 0 : vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    int64_t unlabelled = -1;
    if (rc == 0 && (rc = concept_find(book, name, &rec, err)) == 0 &&
        (rc = concept_check_model(book, &rec, err)) == 0 &&
        (rc = concept_labels_load(book, rec.id, &set, err)) == 0)
        rc = label_index_build(&set, &labelled, err);
    double norm = 0;
    for (int j = 0; rc == 0 && j < rec.dims; j++)
        norm += (double)rec.weight[j] * rec.weight[j];
    norm = sqrt(norm);

    if (rc == 0 && req->mode == VDX_CANDIDATES_NEAREST) {
        vdx_search_request search = {
            .query = rec.weight,
            .k = k,
            .offset = req->page * k,
            .exclude_ids = (const char *const *)set.ids,
            .n_exclude = set.n,
            .where = req->where,
            .with_vectors = req->hide_duplicates,
        };
        rc = vdx_store_search(book->store, &search, &hits, err);
        for (int i = 0; rc == 0 && i < hits.n && i < k; i++) {
            page[n_page].id = hits.hits[i].id;
            page[n_page].url = hits.hits[i].url;
            page[n_page].score = (1.0 - hits.hits[i].dist) * norm;
            page[n_page].vector = hits.hits[i].vector;
            n_page++;
        }
        more = hits.n >= k;
    } else if (rc == 0) {
        uint64_t seed = req->seed ? req->seed : seed_of_name(rec.name);
        rc = scan_page(book, &rec, &labelled, req, k, seed, &hits, page, &n_page, &unlabelled,
                       &more, err);
        if (rc == 0 && req->hide_duplicates && n_page > 0) {
            const char **ids = malloc((size_t)n_page * sizeof *ids);
            page_vectors = malloc((size_t)n_page * (size_t)rec.dims * sizeof *page_vectors);
            if (!ids || !page_vectors) {
                rc = vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
            } else {
                for (int i = 0; i < n_page; i++)
                    ids[i] = page[i].id;
                rc = vdx_store_get_vectors(book->store, ids, (size_t)n_page, page_vectors, err);
                for (int i = 0; rc == 0 && i < n_page; i++)
                    page[i].vector = page_vectors + (size_t)i * (size_t)rec.dims;
            }
            free(ids);
        }
    }

    if (rc == 0) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "concept", rec.name);
        cJSON_AddStringToObject(out, "mode", vdx_candidates_mode_name(req->mode));
        cJSON_AddNumberToObject(out, "k", k);
        cJSON_AddNumberToObject(out, "page", req->page);
        cJSON *items = cJSON_AddArrayToObject(out, "items");
        cJSON *hidden = cJSON_AddArrayToObject(out, "hidden");
        int *kept = malloc((size_t)n_page * sizeof *kept + 1);
        int n_kept = 0;
        for (int i = 0; kept && i < n_page; i++) {
            int duplicate_of = -1;
            for (int j = 0; req->hide_duplicates && page[i].vector && j < n_kept; j++)
                if (cosine(page[i].vector, page[kept[j]].vector, rec.dims) >= duplicate_cosine) {
                    duplicate_of = kept[j];
                    break;
                }
            if (duplicate_of >= 0) {
                cJSON *h = cJSON_CreateObject();
                cJSON_AddStringToObject(h, "id", page[i].id);
                cJSON_AddStringToObject(h, "duplicate_of", page[duplicate_of].id);
                cJSON_AddItemToArray(hidden, h);
                continue;
            }
            kept[n_kept++] = i;
            cJSON *item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, "id", page[i].id);
            if (page[i].url)
                cJSON_AddStringToObject(item, "url", page[i].url);
            else
                cJSON_AddNullToObject(item, "url");
            cJSON_AddNumberToObject(item, "score", page[i].score);
            cJSON_AddNumberToObject(item, "probability", sigmoid_of(page[i].score));
            cJSON_AddNumberToObject(item, "dist", norm > 0 ? 1.0 - page[i].score / norm : 1.0);
            cJSON_AddItemToArray(items, item);
        }
        free(kept);
        cJSON_AddNumberToObject(out, "unlabelled", (double)unlabelled);
        cJSON_AddBoolToObject(out, "more", more);
        *result = out;
    }
    vdx_hits_free(&hits);
    free(page_vectors);
    free(page);
    label_index_free(&labelled);
    label_set_free(&set);
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    return rc;
}
