/* Candidates: what to show the person labelling next. "nearest" is the original's query
 * (the k unlabelled items nearest the weight by cosine distance: where the classifier is
 * most sure, so its mistakes are the hard negatives); "boundary" the unlabelled items
 * scoring closest to the threshold; "random" a seeded uniform sample of the unlabelled
 * items, an unbiased check. The ordering is fixed when a round's first page is asked
 * for (a list of the best 100 or more, stored in concepts.db until the next round), so
 * labelling page 1 and paging on shows ranks 10-18 next instead of skipping them; pages
 * are slices of that list and show the labels given since. Near-duplicates (cosine >=
 * 0.94 to an earlier item of the page) may be hidden. */
#include "explore/book.h"
#include "explore/calibrate.h"

#include "common/clock.h"
#include "common/hash.h"

#include <math.h>
#include <stdio.h>
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
    if (!strcmp(text, "audit"))
        return VDX_CANDIDATES_AUDIT;
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
    case VDX_CANDIDATES_AUDIT:
        return "audit";
    }
    return "unknown";
}

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

uint64_t seed_of_name(const char *name)
{
    uint64_t h = hash_str(name);
    return h ? h : 1;
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

/* ---- the round's candidate list ----------------------------------------------------- */

/* A list holds at least this many candidates (eleven pages of 9); paging past its end
 * extends it. 100 rather than 250: at a million items the approximate search's exact
 * rerank grows with k, and the first page came 1.7x sooner (bench_explore). */
#define LIST_MIN 100

/* How deep pages go: the list is kept in concepts.db as JSON and each extension searches
 * again without the listed ids, so paging far (page 500000 of 200 made a list of every
 * item of a 10-million collection) costs gigabytes. Past the best 10,000 items a user
 * browses with search's offset or exports the scores instead. */
#define LIST_DEEPEST 10000

/* The ranking of a round's pages, as stored in candidate_lists. */
typedef struct candidate_list {
    cJSON *ids, *urls; /* arrays of the same length */
    int64_t unlabelled;
    int complete;
    char created[32];
} candidate_list;

typedef struct list_key {
    int round;
    const char *mode, *filter;
    int64_t seed;
    double threshold;
} list_key;

static int list_fail(vdx_concepts *book, vdx_error *err, const char *doing)
{
    return vdx_fail(err, "%s: %s: %s", book->path, doing, sqlite3_errmsg(book->db));
}

static void bind_key(sqlite3_stmt *stmt, int64_t concept, const list_key *key)
{
    sqlite3_bind_int64(stmt, 1, concept);
    sqlite3_bind_int(stmt, 2, key->round);
    sqlite3_bind_text(stmt, 3, key->mode, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, key->filter, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, key->seed);
    sqlite3_bind_double(stmt, 6, key->threshold);
}

/* Loads the list of a key; *found = 0 when there is none. */
static int list_load(vdx_concepts *book, int64_t concept, const list_key *key,
                     candidate_list *list, int *found, vdx_error *err)
{
    memset(list, 0, sizeof *list);
    *found = 0;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(book->db,
                           "SELECT ids, urls, unlabelled, complete, created FROM candidate_lists"
                           " WHERE concept = ?1 AND round = ?2 AND mode = ?3 AND filter = ?4"
                           " AND seed = ?5 AND threshold = ?6",
                           -1, &stmt, NULL) != SQLITE_OK)
        return list_fail(book, err, "reading a candidate list");
    bind_key(stmt, concept, key);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        list->ids = cJSON_Parse((const char *)sqlite3_column_text(stmt, 0));
        list->urls = cJSON_Parse((const char *)sqlite3_column_text(stmt, 1));
        list->unlabelled = sqlite3_column_int64(stmt, 2);
        list->complete = sqlite3_column_int(stmt, 3);
        snprintf(list->created, sizeof list->created, "%s", sqlite3_column_text(stmt, 4));
        *found = cJSON_IsArray(list->ids) && cJSON_IsArray(list->urls) &&
                 cJSON_GetArraySize(list->ids) == cJSON_GetArraySize(list->urls);
        if (!*found) { /* unreadable: made again */
            cJSON_Delete(list->ids);
            cJSON_Delete(list->urls);
            list->ids = list->urls = NULL;
        }
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : list_fail(book, err, "reading a candidate list");
}

/* Lists a concept keeps (of its current round): each distinct filter makes one, and a
 * filter is up to 4 KB of a request, so the count is bounded, the oldest going first. */
#define LISTS_KEPT 16

/* Stores the list of a key and forgets the concept's lists of other rounds, and all but
 * its LISTS_KEPT most recently stored (INSERT OR REPLACE gives the row a new, highest
 * rowid). */
static int list_save(vdx_concepts *book, int64_t concept, const list_key *key,
                     const candidate_list *list, vdx_error *err)
{
    char *ids = cJSON_PrintUnformatted(list->ids), *urls = cJSON_PrintUnformatted(list->urls);
    sqlite3_stmt *stmt = NULL, *prune = NULL;
    int rc = ids && urls ? 0 : vdx_fail(err, "out of memory for a candidate list");
    if (rc == 0 && sqlite3_exec(book->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        rc = list_fail(book, err, "storing a candidate list");
    else if (rc == 0) {
        if (sqlite3_prepare_v2(book->db,
                               "INSERT OR REPLACE INTO candidate_lists(concept, round, mode, filter,"
                               " seed, threshold, created, unlabelled, complete, ids, urls)"
                               " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
                               -1, &stmt, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(book->db,
                               "DELETE FROM candidate_lists WHERE concept = ?1 AND (round <> ?2"
                               " OR rowid NOT IN (SELECT rowid FROM candidate_lists"
                               " WHERE concept = ?1 ORDER BY rowid DESC LIMIT ?3))",
                               -1, &prune, NULL) != SQLITE_OK) {
            rc = list_fail(book, err, "storing a candidate list");
        } else {
            bind_key(stmt, concept, key);
            sqlite3_bind_text(stmt, 7, list->created, -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 8, list->unlabelled);
            sqlite3_bind_int(stmt, 9, list->complete);
            sqlite3_bind_text(stmt, 10, ids, -1, SQLITE_STATIC);
            sqlite3_bind_text(stmt, 11, urls, -1, SQLITE_STATIC);
            sqlite3_bind_int64(prune, 1, concept);
            sqlite3_bind_int(prune, 2, key->round);
            sqlite3_bind_int(prune, 3, LISTS_KEPT);
            if (sqlite3_step(stmt) != SQLITE_DONE || sqlite3_step(prune) != SQLITE_DONE)
                rc = list_fail(book, err, "storing a candidate list");
        }
        if (rc == 0 && sqlite3_exec(book->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            rc = list_fail(book, err, "storing a candidate list");
        if (rc != 0 && !sqlite3_get_autocommit(book->db))
            sqlite3_exec(book->db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_finalize(stmt);
    sqlite3_finalize(prune);
    cJSON_free(ids);
    cJSON_free(urls);
    return rc;
}

static void list_append(candidate_list *list, const char *id, const char *url)
{
    cJSON_AddItemToArray(list->ids, cJSON_CreateString(id));
    cJSON_AddItemToArray(list->urls, url ? cJSON_CreateString(url) : cJSON_CreateNull());
}

/* Appends to the list up to `want` more candidates in the mode's order, leaving out the
 * labelled items and those already listed; marks it complete when none is left. */
static int list_extend(vdx_concepts *book, const concept_record *rec, const label_set *labels,
                       const vdx_candidates_request *req, uint64_t seed, size_t want,
                       candidate_list *list, vdx_error *err)
{
    size_t listed = (size_t)cJSON_GetArraySize(list->ids), n_out = labels->n + listed;
    label_set out = {.n = n_out};
    out.ids = malloc((n_out + 1) * sizeof *out.ids);
    out.labels = calloc(n_out + 1, sizeof *out.labels);
    label_index excluded = {0};
    vdx_hits hits = {0};
    scored *items = NULL;
    int rc = out.ids && out.labels ? 0 : vdx_fail(err, "out of memory");
    for (size_t i = 0; rc == 0 && i < labels->n; i++)
        out.ids[i] = labels->ids[i];
    for (size_t i = 0; rc == 0 && i < listed; i++)
        out.ids[labels->n + i] = cJSON_GetArrayItem(list->ids, (int)i)->valuestring;
    if (rc == 0)
        rc = label_index_build(&out, &excluded, err);
    if (rc == 0 && req->mode == VDX_CANDIDATES_NEAREST) {
        vdx_search_request search = {
            .query = rec->weight,
            .k = (int)want,
            .exclude_ids = (const char *const *)out.ids,
            .n_exclude = n_out,
            .where = req->where,
        };
        rc = vdx_store_search(book->store, &search, &hits, err);
        for (int i = 0; rc == 0 && i < hits.n; i++)
            list_append(list, hits.hits[i].id, hits.hits[i].url);
        if (rc == 0)
            list->complete = (size_t)hits.n < want;
    } else if (rc == 0 && (rc = book_score_all(book, rec->weight, req->where, want > URL_LOOKUPS_MAX,
                                                 &hits, err)) == 0) {
        items = malloc(((size_t)hits.n + 1) * sizeof *items);
        if (!items)
            rc = vdx_fail(err, "out of memory for %d scores", hits.n);
        size_t n = 0;
        for (int i = 0; rc == 0 && i < hits.n; i++) {
            if (label_index_get(&excluded, hits.hits[i].id) >= 0)
                continue;
            items[n].hit = &hits.hits[i];
            items[n].key = fabs((double)hits.hits[i].dist - rec->threshold);
            n++;
        }
        if (listed == 0) /* the unlabelled items when the list is made */
            list->unlabelled = (int64_t)n;
        size_t end = want < n ? want : n;
        if (rc == 0 && req->mode == VDX_CANDIDATES_BOUNDARY) {
            qsort(items, n, sizeof *items, by_key_then_id);
        } else if (rc == 0) {
            /* a seeded shuffle of the ids in sorted order: the same seed and unlabelled set
             * give the same list on every backend; only the first `end` places are drawn */
            qsort(items, n, sizeof *items, by_id);
            uint64_t state = seed;
            calib_draw(items, n, sizeof *items, end, &state);
        }
        for (size_t i = 0; rc == 0 && i < end; i++) /* the urls of the listed ones only */
            if ((rc = book_fill_urls(book, &hits, &items[i].hit, 1, err)) == 0)
                list_append(list, items[i].hit->id, items[i].hit->url);
        list->complete = end == n;
    }
    free(items);
    vdx_hits_free(&hits);
    label_index_free(&excluded);
    free(out.ids);
    free(out.labels);
    return rc;
}

int vdx_candidates_check(const vdx_candidates_request *req, vdx_error *err)
{
    int k = req->k > 0 ? req->k : DEFAULT_K;
    if (k > MAX_K)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "candidates: k = %d is more than %d", k, MAX_K);
    if (req->page < 0 || ((int64_t)req->page + 1) * k > LIST_DEEPEST)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "candidates: page %d of %d is out of range (pages reach the best %d "
                             "items: (page + 1) x k may be %d at most)",
                             req->page, k, LIST_DEEPEST, LIST_DEEPEST);
    if (req->mode != VDX_CANDIDATES_NEAREST && req->mode != VDX_CANDIDATES_BOUNDARY &&
        req->mode != VDX_CANDIDATES_RANDOM && req->mode != VDX_CANDIDATES_AUDIT)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "candidates: unknown mode %d", (int)req->mode);
    return 0;
}

int vdx_concept_candidates(vdx_concepts *book, const char *name,
                           const vdx_candidates_request *req, cJSON **result, vdx_error *err)
{
    *result = NULL;
    if (vdx_candidates_check(req, err) != 0)
        return -1;
    int k = req->k > 0 ? req->k : DEFAULT_K;
    if (req->mode == VDX_CANDIDATES_AUDIT)
        return audit_candidates(book, name, req, result, err);
    double duplicate_cosine = req->duplicate_cosine > 0 ? req->duplicate_cosine
                                                        : DEFAULT_DUPLICATE_COSINE;

    pthread_mutex_lock(&book->lock);
    concept_record rec = {0};
    label_set set = {0};
    label_index labelled = {0};
    candidate_list list = {0};
    float *vectors = NULL;
    const char **page_ids = NULL;
    int found = 0, rc = concept_find(book, name, &rec, err);
    if (rc == 0 && (rc = concept_check_model(book, &rec, err)) == 0 &&
        (rc = concept_labels_load(book, rec.id, &set, err)) == 0)
        rc = label_index_build(&set, &labelled, err);
    uint64_t seed = req->seed ? req->seed : seed_of_name(rec.name ? rec.name : "");
    list_key key = {
        .round = rec.rounds,
        .mode = vdx_candidates_mode_name(req->mode),
        .filter = req->where ? req->where : "",
        .seed = req->mode == VDX_CANDIDATES_RANDOM ? (int64_t)seed : 0,
        .threshold = req->mode == VDX_CANDIDATES_BOUNDARY ? rec.threshold : 0,
    };
    size_t start = (size_t)req->page * (size_t)k, need = start + (size_t)k;
    if (rc == 0)
        rc = list_load(book, rec.id, &key, &list, &found, err);
    if (rc == 0 && !found) {
        list.ids = cJSON_CreateArray();
        list.urls = cJSON_CreateArray();
        list.unlabelled = -1;
        clock_utc_iso_now(list.created);
    }
    size_t listed = rc == 0 ? (size_t)cJSON_GetArraySize(list.ids) : 0;
    if (rc == 0 && (!found || (listed < need && !list.complete))) {
        size_t want = need > LIST_MIN ? need : LIST_MIN;
        if (found && want < 2 * listed)
            want = 2 * listed;
        rc = list_extend(book, &rec, &set, req, seed, want - listed, &list, err);
        if (rc == 0 && !req->keep_nothing)
            rc = list_save(book, rec.id, &key, &list, err);
        listed = (size_t)cJSON_GetArraySize(list.ids);
    }
    size_t end = need < listed ? need : listed, n_page = end > start ? end - start : 0;
    if (rc == 0 && n_page) {
        page_ids = malloc(n_page * sizeof *page_ids);
        vectors = malloc(n_page * (size_t)rec.dims * sizeof *vectors);
        if (!page_ids || !vectors)
            rc = vdx_fail(err, "out of memory");
        for (size_t i = 0; rc == 0 && i < n_page; i++)
            page_ids[i] = cJSON_GetArrayItem(list.ids, (int)(start + i))->valuestring;
        if (rc == 0)
            rc = vdx_store_get_vectors(book->store, page_ids, n_page, vectors, err);
    }
    double norm = 0;
    for (int j = 0; rc == 0 && j < rec.dims; j++)
        norm += (double)rec.weight[j] * rec.weight[j];
    norm = sqrt(norm);

    if (rc == 0) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "concept", rec.name);
        cJSON_AddStringToObject(out, "mode", vdx_candidates_mode_name(req->mode));
        cJSON_AddNumberToObject(out, "k", k);
        cJSON_AddNumberToObject(out, "page", req->page);
        cJSON_AddNumberToObject(out, "round", rec.rounds);
        cJSON *items = cJSON_AddArrayToObject(out, "items");
        cJSON *hidden = cJSON_AddArrayToObject(out, "hidden");
        int *kept = malloc(n_page * sizeof *kept + 1);
        int n_kept = 0;
        for (size_t i = 0; kept && i < n_page; i++) {
            const float *v = vectors + i * (size_t)rec.dims;
            int duplicate_of = -1;
            for (int j = 0; req->hide_duplicates && j < n_kept; j++)
                if (cosine(v, vectors + (size_t)kept[j] * (size_t)rec.dims, rec.dims) >=
                    duplicate_cosine) {
                    duplicate_of = kept[j];
                    break;
                }
            if (duplicate_of >= 0) {
                cJSON *h = cJSON_CreateObject();
                cJSON_AddStringToObject(h, "id", page_ids[i]);
                cJSON_AddStringToObject(h, "duplicate_of", page_ids[duplicate_of]);
                int label = label_index_get(&labelled, page_ids[i]);
                cJSON_AddItemToObject(h, "label", label < 0 ? cJSON_CreateNull()
                                                            : cJSON_CreateNumber(label));
                cJSON_AddItemToArray(hidden, h);
                continue;
            }
            kept[n_kept++] = (int)i;
            double score = 0;
            for (int j = 0; j < rec.dims; j++)
                score += (double)v[j] * rec.weight[j];
            cJSON *item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, "id", page_ids[i]);
            cJSON *url = cJSON_GetArrayItem(list.urls, (int)(start + i));
            cJSON_AddItemToObject(item, "url", cJSON_IsString(url)
                                                   ? cJSON_CreateString(url->valuestring)
                                                   : cJSON_CreateNull());
            cJSON_AddNumberToObject(item, "score", score);
            cJSON_AddNumberToObject(item, "probability", concept_probability(&rec, score));
            cJSON_AddNumberToObject(item, "dist", norm > 0 ? 1.0 - score / norm : 1.0);
            cJSON_AddNumberToObject(item, "rank", (double)(start + i + 1));
            int label = label_index_get(&labelled, page_ids[i]);
            cJSON_AddItemToObject(item, "label", label < 0 ? cJSON_CreateNull()
                                                           : cJSON_CreateNumber(label));
            cJSON_AddItemToArray(items, item);
        }
        free(kept);
        cJSON_AddNumberToObject(out, "unlabelled",
                                req->mode == VDX_CANDIDATES_NEAREST ? -1.0
                                                                    : (double)list.unlabelled);
        cJSON_AddBoolToObject(out, "more", (end < listed || !list.complete) &&
                                               need + (size_t)k <= LIST_DEEPEST);
        cJSON *about = cJSON_AddObjectToObject(out, "list");
        cJSON_AddStringToObject(about, "created", list.created);
        cJSON_AddNumberToObject(about, "size", (double)listed);
        cJSON_AddBoolToObject(about, "complete", list.complete);
        *result = out;
    }
    cJSON_Delete(list.ids);
    cJSON_Delete(list.urls);
    free(vectors);
    free(page_ids);
    label_index_free(&labelled);
    label_set_free(&set);
    concept_record_free(&rec);
    pthread_mutex_unlock(&book->lock);
    return rc;
}
