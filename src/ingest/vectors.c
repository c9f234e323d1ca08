/* `vdx ingest vectors`: loads vectors embedded elsewhere (a .npy matrix, an id per line,
 * optional metadata TSV) into a collection without running the model. Everything is
 * validated before the first append, so a bad file changes nothing; then the rows go in
 * batches of 4096 (one store transaction each), normalised, skipping ids already stored,
 * so an interrupted load resumes where it stopped. The speed is the store's append rate:
 * no decoding, no model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vdx/ingest.h"

#define BATCH 4096

typedef struct lines {
    char *text;   /* the file, with '\n' (and '\r') replaced by NULs */
    char **line;  /* start of each line */
    size_t n;
} lines;

static void lines_free(lines *l)
{
    free(l->text);
    free(l->line);
}

/* Splits a text file into lines (a final newline does not start an empty line). */
static int read_lines(const char *path, lines *out, vdx_error *err)
{
    memset(out, 0, sizeof *out);
    size_t size;
    if (vdx_read_file(path, &out->text, &size, err) != 0)
        return -1;
    const char *nul = memchr(out->text, 0, size);
    if (nul) {
        size_t at = (size_t)(nul - out->text);
        free(out->text);
        out->text = NULL;
        return vdx_fail(err, "%s: holds a NUL byte at offset %zu", path, at);
    }
    size_t cap = 1;
    for (size_t i = 0; i < size; i++)
        cap += out->text[i] == '\n';
    out->line = malloc(cap * sizeof *out->line);
    if (!out->line) {
        lines_free(out);
        return vdx_fail(err, "out of memory");
    }
    char *p = out->text, *end = out->text + size;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        if (stop > p && stop[-1] == '\r')
            stop[-1] = 0;
        *stop = 0;
        out->line[out->n++] = p;
        p = stop + 1;
    }
    return 0;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

/* Sorted pointers to the ids, for duplicate checks and lookups. */
static char ***sorted_ids(char **ids, size_t n)
{
    char ***order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return NULL;
    for (size_t i = 0; i < n; i++)
        order[i] = &ids[i];
    qsort(order, n, sizeof *order, cmp_str_ptr);
    return order;
}

/* Index of id in ids (through the sorted order), or -1. */
static long find_id(char ***order, char **ids, size_t n, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(*order[mid], id);
        if (c == 0)
            return (long)(order[mid] - ids);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Splits line at tabs in place into at most max fields; returns the count. */
static int split_tabs(char *line, char **fields, int max)
{
    int n = 0;
    for (char *p = line;;) {
        if (n == max)
            return max + 1;
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab)
            return n;
        *tab = 0;
        p = tab + 1;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Everything read and checked from the files before the store is touched. */
typedef struct prepared {
    vdx_npy npy;
    int npy_open;
    lines ids, meta;
    char ***order;  /* the ids sorted, for lookups */
    long *meta_row; /* per vector row: its metadata line, or -1 */
    char **fields, **names;
    int n_cols;
} prepared;

static void prepared_free(prepared *p)
{
    if (p->npy_open)
        vdx_npy_close(&p->npy);
    lines_free(&p->ids);
    lines_free(&p->meta);
    free(p->order);
    free(p->meta_row);
    free(p->fields);
    free(p->names);
    memset(p, 0, sizeof *p);
}

/* Opens and validates the vectors (of `dims` columns; `holder` says whose dimension it
 * is), the ids and the metadata. Returns -1 with err naming the file and line or row. */
static int prepare(const vdx_vectors_source *src, int dims, const char *holder, prepared *p,
                   vdx_error *err)
{
    memset(p, 0, sizeof *p);
    if (vdx_npy_open(src->vectors_path, &p->npy, err) != 0)
        return -1;
    p->npy_open = 1;
    vdx_npy *npy = &p->npy;
    if (npy->cols != dims)
        return vdx_fail_kind(err, VDX_ERR_INVALID, "%s: vectors have dimension %d; %s",
                             src->vectors_path, npy->cols, holder);
    if (read_lines(src->ids_path, &p->ids, err) != 0)
        return -1;
    lines *ids = &p->ids;
    if ((int64_t)ids->n != npy->rows)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "%s has %zu ids but %s has %lld rows: one id per row, in order",
                             src->ids_path, ids->n, src->vectors_path, (long long)npy->rows);
    for (size_t i = 0; i < ids->n; i++) {
        size_t bad;
        if (!ids->line[i][0] || strchr(ids->line[i], '\t'))
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s line %zu: %s", src->ids_path, i + 1,
                                 ids->line[i][0] ? "an id holds a tab" : "empty id");
        if (vdx_utf8_check(ids->line[i], strlen(ids->line[i]), &bad) != 0)
            return vdx_fail_kind(err, VDX_ERR_INVALID,
                                 "%s line %zu: the id is not valid UTF-8 (byte %zu)",
                                 src->ids_path, i + 1, bad);
    }
    if (!(p->order = sorted_ids(ids->line, ids->n)))
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    char ***order = p->order;
    for (size_t i = 1; i < ids->n; i++)
        if (!strcmp(*order[i - 1], *order[i])) {
            size_t a = (size_t)(order[i - 1] - ids->line), b = (size_t)(order[i] - ids->line);
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s line %zu: id '%s' repeats line %zu",
                                 src->ids_path, (a > b ? a : b) + 1, *order[i],
                                 (a < b ? a : b) + 1);
        }
    for (int64_t r = 0; r < npy->rows; r++)
        if (vdx_npy_check_row(npy, src->vectors_path, r, err) != 0)
            return -1;
    if (!src->meta_path)
        return 0;
    if (read_lines(src->meta_path, &p->meta, err) != 0)
        return -1;
    lines *meta = &p->meta;
    if (meta->n == 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "%s: empty (expected a header row starting with 'id')",
                             src->meta_path);
    for (size_t l = 0; l < meta->n; l++) {
        size_t bad;
        if (vdx_utf8_check(meta->line[l], strlen(meta->line[l]), &bad) != 0)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s line %zu: not valid UTF-8 (byte %zu)",
                                 src->meta_path, l + 1, bad);
    }
    int max = 1;
    for (char *c = meta->line[0]; *c; c++)
        max += *c == '\t';
    p->fields = malloc((size_t)(max + 1) * sizeof *p->fields);
    p->names = malloc((size_t)max * sizeof *p->names);
    p->meta_row = malloc((size_t)(npy->rows ? npy->rows : 1) * sizeof *p->meta_row);
    if (!p->fields || !p->names || !p->meta_row)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    char **names = p->names, **fields = p->fields;
    int n_cols = p->n_cols = split_tabs(meta->line[0], names, max);
    if (strcmp(names[0], "id") != 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "%s line 1: the first column must be 'id', not '%s'",
                             src->meta_path, names[0]);
    for (int c = 1; c < n_cols; c++)
        if (!names[c][0])
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s line 1: column %d has no name",
                                 src->meta_path, c + 1);
    for (int64_t r = 0; r < npy->rows; r++)
        p->meta_row[r] = -1;
    for (size_t l = 1; l < meta->n; l++) {
        if (!meta->line[l][0])
            continue;
        int got = split_tabs(meta->line[l], fields, n_cols);
        if (got != n_cols)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s line %zu: %s columns; the header has %d",
                                 src->meta_path, l + 1, got > n_cols ? "more" : "fewer", n_cols);
        long r = find_id(order, ids->line, ids->n, fields[0]);
        if (r < 0)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s line %zu: id '%s' is not in %s",
                                 src->meta_path, l + 1, fields[0], src->ids_path);
        if (p->meta_row[r] >= 0)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "%s line %zu: id '%s' repeats line %ld",
                                 src->meta_path, l + 1, fields[0], p->meta_row[r] + 1);
        p->meta_row[r] = (long)l; /* its fields stay split in place, NUL-separated */
    }
    return 0;
}

int vdx_ingest_vectors_check(const vdx_vectors_source *src, const vdx_model_identity *model,
                             vdx_error *err)
{
    char holder[400];
    snprintf(holder, sizeof holder, "the model %s makes %d-d vectors", model->name, model->dims);
    prepared p;
    int rc = prepare(src, model->dims, holder, &p, err);
    prepared_free(&p);
    return rc;
}

int vdx_ingest_vectors(vdx_store *store, const vdx_vectors_source *src,
                       const vdx_ingest_options *opts, vdx_ingest_report *report,
                       vdx_error *err)
{
    memset(report, 0, sizeof *report);
    prepared p;
    vdx_item *items = NULL;
    vdx_item_state *states = NULL;
    float *vecs = NULL;
    int rc = -1;
    double t0 = now_s();
    int dims = vdx_store_model(store)->dims;
    char holder[400];
    snprintf(holder, sizeof holder, "collection '%s' holds %d-d vectors (%s)",
             vdx_store_collection(store), dims, vdx_store_model(store)->name);
    if (prepare(src, dims, holder, &p, err) != 0)
        goto done;
    vdx_npy npy = p.npy;
    lines ids = p.ids, meta = p.meta;
    long *meta_row = p.meta_row;
    char **names = p.names;
    int n_cols = p.n_cols;
    if (src->meta_path &&
        vdx_store_add_columns(store, (const char *const *)names + 1, n_cols - 1, err) != 0)
        goto done;
    items = calloc(BATCH, sizeof *items);
    states = malloc(BATCH * sizeof *states);
    vecs = malloc((size_t)BATCH * (size_t)dims * sizeof *vecs);
    char **values = calloc((size_t)BATCH * (size_t)(n_cols ? n_cols : 1), sizeof *values);
    if (!items || !states || !vecs || !values) {
        free(values);
        vdx_fail(err, "out of memory");
        goto done;
    }
    vdx_ingest_stats *st = &report->stats;
    st->total = (long)npy.rows;
    for (int64_t first = 0; first < npy.rows; first += BATCH) {
        if (opts && opts->stop && *opts->stop) {
            report->stopped = 1;
            break;
        }
        size_t n = (size_t)(npy.rows - first < BATCH ? npy.rows - first : BATCH);
        if (vdx_store_item_states(store, (const char *const *)ids.line + first, n, states,
                                  err) != 0) {
            free(values);
            goto done;
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            int64_t r = first + (int64_t)i;
            if (states[i] == VDX_ITEM_STORED) {
                st->skipped++;
                continue;
            }
            float *v = vecs + m * (size_t)dims;
            vdx_npy_row(&npy, r, v);
            double norm = 0;
            for (int d = 0; d < dims; d++)
                norm += (double)v[d] * v[d];
            norm = sqrt(norm);
            for (int d = 0; d < dims; d++)
                v[d] = (float)(v[d] / norm);
            vdx_item *it = &items[m];
            memset(it, 0, sizeof *it);
            it->id = ids.line[r];
            it->url = "";
            it->vector = v;
            if (meta_row && meta_row[r] >= 0) {
                /* the line was split in place: its fields are consecutive strings */
                char **vals = values + m * (size_t)n_cols;
                char *p = meta.line[meta_row[r]];
                for (int c = 0; c < n_cols; c++) {
                    vals[c] = p;
                    p += strlen(p) + 1;
                }
                it->meta_names = (const char *const *)names + 1;
                it->meta_values = (const char *const *)vals + 1;
                it->n_meta = n_cols - 1;
            }
            m++;
        }
        if (m && vdx_store_append(store, items, m, err) != 0) {
            free(values);
            goto done;
        }
        st->stored += (long)m;
        st->done = st->stored;
        st->elapsed_s = now_s() - t0;
        st->rate = st->elapsed_s > 0 ? st->stored / st->elapsed_s : 0;
        long left = st->total - st->stored - st->skipped;
        st->eta_s = st->rate > 0 ? left / st->rate : -1;
        if (opts && opts->on_progress)
            opts->on_progress(st, opts->user);
    }
    st->total -= st->skipped;
    free(values);
    rc = 0;
done:
    if (report->stats.stored > 0) { /* made elsewhere: no precision or kernel of ours to record */
        vdx_embedding_record record = {"external", NULL, NULL, report->stats.stored};
        vdx_error record_err = {{0}};
        if (vdx_store_record_embedding(store, &record, &record_err) != 0 && rc == 0) {
            if (err)
                *err = record_err;
            rc = vdx_error_prefix(err, "%ld vectors stored, but not where they came from",
                                  report->stats.stored);
        }
    }
    prepared_free(&p);
    free(items);
    free(states);
    free(vecs);
    return rc;
}
