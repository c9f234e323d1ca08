/* libFuzzer target for the Unsplash Lite source (src/ingest/source_unsplash.c, `vdx ingest
 * unsplash DIR`): the input is written into a per-process temporary directory as
 * photos.tsv000; when it holds a form feed pair "\f\f", the bytes after the first one are
 * keywords.tsv000 instead (else that file is absent). A refusal must say why. An accepted
 * source must have unique column names, valid UTF-8 without NUL, photo_id and
 * photo_image_url among them (and "keywords" last when keywords.tsv000 exists); every
 * item a non-empty valid UTF-8 id, unique, and an http(s) URL (vdx_is_http_url), equal to
 * its photo_id and photo_image_url values; every value NULL or non-empty valid UTF-8;
 * width and height both 0 or both in 1..999999; every skipped row a reason, the file it
 * came from and a line inside that file, its id (when given) valid UTF-8 of at most 203
 * bytes; and every data row of photos.tsv000 either an item or a skipped row. Built by
 * scripts/build-fuzz.sh.
 * FUZZ_SOURCES: src/ingest/source_unsplash.c src/ingest/source.c src/common/common.c src/common/strbuf.c src/common/hash.c */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vdx/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], photos[96], keywords[96];

static void cleanup(void)
{
    unlink(photos);
    unlink(keywords);
    rmdir(dir);
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
}

static int utf8_ok(const char *s)
{
    size_t bad;
    return s && vdx_utf8_check(s, strlen(s), &bad) == 0;
}

static long count_lines(const uint8_t *data, size_t size)
{
    long lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    return lines;
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int find_column(const vdx_source *src, const char *name)
{
    for (int i = 0; i < src->n_columns; i++)
        if (!strcmp(src->columns[i], name))
            return i;
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz-unsplash-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        snprintf(photos, sizeof photos, "%s/photos.tsv000", dir);
        snprintf(keywords, sizeof keywords, "%s/keywords.tsv000", dir);
        atexit(cleanup);
    }
    size_t photos_size = size;
    const uint8_t *kw = NULL;
    for (size_t i = 0; i + 1 < size; i++)
        if (data[i] == '\f' && data[i + 1] == '\f') {
            photos_size = i;
            kw = data + i + 2;
            break;
        }
    size_t kw_size = kw ? size - photos_size - 2 : 0;
    write_file(photos, data, photos_size);
    if (kw)
        write_file(keywords, kw, kw_size);
    else
        unlink(keywords);

    vdx_error err = {{0}};
    vdx_source *src = vdx_source_unsplash(dir, &err);
    if (!src) {
        if (!err.message[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    if (strcmp(src->kind, "unsplash") != 0 || src->n_columns < 2 || !src->columns)
        abort();
    for (int i = 0; i < src->n_columns; i++) {
        if (!utf8_ok(src->columns[i]))
            abort(); /* column names are shown and stored as text */
        for (int j = 0; j < i; j++)
            if (!strcmp(src->columns[i], src->columns[j]))
                abort(); /* one name, one column (pandas' "x", "x.1") */
    }
    int id_col = find_column(src, "photo_id"), url_col = find_column(src, "photo_image_url");
    if (id_col < 0 || url_col < 0)
        abort();
    if (kw && strcmp(src->columns[src->n_columns - 1], "keywords") != 0)
        abort();
    for (size_t i = 0; i < src->n_items; i++) {
        const vdx_source_item *it = &src->items[i];
        if (!utf8_ok(it->id) || !it->id[0] || !utf8_ok(it->url) || !vdx_is_http_url(it->url) ||
            it->path)
            abort();
        if (!it->values || !it->values[id_col] || strcmp(it->values[id_col], it->id) != 0 ||
            !it->values[url_col] || strcmp(it->values[url_col], it->url) != 0)
            abort();
        for (int c = 0; c < src->n_columns; c++)
            if (it->values[c] && (!it->values[c][0] || !utf8_ok(it->values[c])))
                abort(); /* an empty field is NULL; values are text */
        if ((it->width == 0) != (it->height == 0) || it->width < 0 || it->width > 999999 ||
            it->height < 0 || it->height > 999999)
            abort();
    }
    /* ids are unique: sort a copy of the pointers */
    if (src->n_items > 1) {
        const char **ids = malloc(src->n_items * sizeof *ids);
        if (!ids)
            abort();
        for (size_t i = 0; i < src->n_items; i++)
            ids[i] = src->items[i].id;
        qsort(ids, src->n_items, sizeof *ids, cmp_ids);
        for (size_t i = 1; i < src->n_items; i++)
            if (!strcmp(ids[i - 1], ids[i]))
                abort();
        free(ids);
    }
    long photo_lines = count_lines(data, photos_size), kw_lines = count_lines(kw, kw_size);
    size_t photo_problems = 0;
    for (size_t i = 0; i < src->n_problems; i++) {
        const vdx_source_problem *p = &src->problems[i];
        if (!p->reason || !p->reason[0] || !p->file)
            abort();
        long lines;
        if (!strcmp(p->file, "photos.tsv000")) {
            lines = photo_lines;
            photo_problems++;
        } else if (kw && !strcmp(p->file, "keywords.tsv000")) {
            lines = kw_lines;
        } else {
            abort(); /* a problem in a file that is not there */
        }
        if (p->line < 2 || p->line > lines)
            abort(); /* a data row: after the header, inside the file */
        if (p->id && (!utf8_ok(p->id) || !p->id[0] || strlen(p->id) > 203))
            abort();
    }
    if (src->rows < 0 || (size_t)src->rows != src->n_items + photo_problems)
        abort(); /* every data row is ingested or reported */
    vdx_source_free(src);
    return 0;
}
