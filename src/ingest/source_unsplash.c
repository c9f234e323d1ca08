/* The Unsplash Lite / Full dataset source: photos.tsv000 (and further parts tsv001, ...)
 * plus the optional keywords.tsv000, read from a directory or straight out of the
 * downloaded .zip with libzip (no extraction). The files are parsed the way the original
 * explorer loaded them, pandas.read_csv(sep='\t'), whose quoting is Python csv's: a field
 * that starts with '"' runs to the next lone '"' and may hold tabs and newlines, '""'
 * inside it is one '"', text after the closing quote is kept; a '"' elsewhere is literal.
 * Two departures, both reported or harmless: a quoted field whose lines hold tabs is a
 * stray '"' that swallowed rows (pandas merges them silently, or stops the whole load
 * when the column count then differs): the row is reported with the swallowed lines and
 * skipped; and a bare CR (no LF after it) is data, not a line end. A "keywords" column
 * in the photos file is kept as "keywords.1" beside the joined keywords.
 * Rows pandas would choke on or that cannot be ingested (wrong column count, invalid
 * UTF-8, empty id, bad URL, duplicate id) are reported with their line and skipped.
 * Every column becomes metadata; keywords are joined per photo into a "keywords" column.
 * Files are streamed: the multi-gigabyte keyword files never sit in memory whole. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "common/hash.h"
#include "ingest/ingest_internal.h"

/* ---- a streaming TSV record reader over a FILE or a zip entry ---------------------- */

typedef struct tsv_reader {
    FILE *file;
    zip_file_t *zfile;
    const char *name;  /* for messages */
    char in[1 << 16];
    size_t in_pos, in_len;
    int in_eof;
    long line;         /* physical line of the next byte */
    int started;       /* a byte has been read (for the UTF-8 BOM) */
    char *rec;         /* current record: fields NUL-terminated one after another */
    size_t rec_len, rec_cap;
    size_t *field_at;  /* offsets of the fields in rec */
    int n_fields, fields_cap;
    long rec_line;     /* line the record starts on */
    int unterminated;  /* EOF inside a quoted field */
    /* Lines inside a quoted field that hold a tab: rows a stray '"' swallowed (a real
     * multi-line description has no tabs), the first and last of their line numbers. */
    long swallowed, swallowed_first, swallowed_last;
    int has_nul;       /* a NUL byte inside the record (text files have none) */
} tsv_reader;

static int tsv_getc(tsv_reader *r, vdx_error *err)
{
    if (r->in_pos == r->in_len) {
        if (r->in_eof)
            return EOF;
        long long got;
        if (r->zfile) {
            got = zip_fread(r->zfile, r->in, sizeof r->in);
            if (got < 0)
                return vdx_fail(err, "%s: read error in zip archive: %s", r->name,
                                zip_error_strerror(zip_file_get_error(r->zfile))),
                       -2;
        } else {
            got = (long long)fread(r->in, 1, sizeof r->in, r->file);
            if (got == 0 && ferror(r->file))
                return vdx_fail_errno(err, errno, "%s: read error: %s", r->name, strerror(errno)), -2;
        }
        if (got == 0) {
            r->in_eof = 1;
            return EOF;
        }
        r->in_len = (size_t)got;
        r->in_pos = 0;
        if (!r->started && r->in_len >= 3 && !memcmp(r->in, "\xEF\xBB\xBF", 3))
            r->in_pos = 3; /* UTF-8 byte order mark */
        r->started = 1;
        if (r->in_pos == r->in_len)
            return tsv_getc(r, err);
    }
    return (unsigned char)r->in[r->in_pos++];
}

static int tsv_peek_is(tsv_reader *r, int want, vdx_error *err)
{
    int c = tsv_getc(r, err);
    if (c == -2)
        return -2;
    if (c == want)
        return 1;
    if (c != EOF)
        r->in_pos--; /* the byte is still in the buffer */
    return 0;
}

static int rec_put(tsv_reader *r, char c, vdx_error *err)
{
    if (r->rec_len + 1 >= r->rec_cap) {
        size_t cap = r->rec_cap ? r->rec_cap * 2 : 4096;
        char *p = realloc(r->rec, cap);
        if (!p)
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s line %ld: out of memory", r->name, r->rec_line);
        r->rec = p;
        r->rec_cap = cap;
    }
    r->rec[r->rec_len++] = c;
    return 0;
}

static int rec_start_field(tsv_reader *r, vdx_error *err)
{
    if (r->n_fields == r->fields_cap) {
        int cap = r->fields_cap ? r->fields_cap * 2 : 64;
        size_t *p = realloc(r->field_at, (size_t)cap * sizeof *p);
        if (!p)
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s line %ld: out of memory", r->name, r->rec_line);
        r->field_at = p;
        r->fields_cap = cap;
    }
    r->field_at[r->n_fields++] = r->rec_len;
    return 0;
}

/* Reads the next non-blank record. Returns 1, 0 at the end, -1 on a read error. */
static int tsv_next(tsv_reader *r, vdx_error *err)
{
    enum { FIELD_START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED } state;
    for (;;) {
        r->rec_len = 0;
        r->n_fields = 0;
        r->unterminated = 0;
        r->has_nul = 0;
        r->swallowed = 0;
        r->rec_line = r->line;
        state = FIELD_START;
        int c, any = 0;
        int quoted_lines = 0, line_has_tab = 0; /* of the current quoted field */
        if (rec_start_field(r, err) != 0)
            return -1;
        for (;;) {
            c = tsv_getc(r, err);
            if (c == -2)
                return -1;
            if (c == EOF) {
                if (state == QUOTED) {
                    r->unterminated = 1;
                    if (quoted_lines > 0 && line_has_tab) {
                        if (!r->swallowed++)
                            r->swallowed_first = r->line;
                        r->swallowed_last = r->line;
                    }
                }
                break;
            }
            any = 1;
            if (c == '\n')
                r->line++;
            else if (c == 0)
                r->has_nul = 1;
            if (state == QUOTED) {
                if (c == '\n' || c == '"') {
                    if (quoted_lines > 0 && line_has_tab) {
                        if (!r->swallowed++)
                            r->swallowed_first = r->line - (c == '\n');
                        r->swallowed_last = r->line - (c == '\n');
                    }
                    quoted_lines += c == '\n';
                    line_has_tab = 0;
                }
                line_has_tab |= c == '\t';
                if (c == '"')
                    state = QUOTE_IN_QUOTED;
                else if (rec_put(r, (char)c, err) != 0)
                    return -1;
                continue;
            }
            if (state == QUOTE_IN_QUOTED && c == '"') {
                if (rec_put(r, '"', err) != 0)
                    return -1;
                state = QUOTED;
                continue;
            }
            if (c == '\t') {
                if (rec_put(r, 0, err) != 0 || rec_start_field(r, err) != 0)
                    return -1;
                state = FIELD_START;
                continue;
            }
            if (c == '\r') {
                /* CRLF ends the row; a bare CR is data (splitting the row there, as
                 * pandas' C parser does, turned the rest of a field into a phantom row) */
                int lf = tsv_peek_is(r, '\n', err);
                if (lf < 0)
                    return -1;
                if (lf) {
                    r->line++;
                    break;
                }
            } else if (c == '\n') {
                break;
            }
            if (state == FIELD_START && c == '"') {
                state = QUOTED;
                continue;
            }
            state = UNQUOTED;
            if (rec_put(r, (char)c, err) != 0)
                return -1;
        }
        if (rec_put(r, 0, err) != 0)
            return -1;
        if (!any)
            return 0; /* end of input */
        if (r->n_fields == 1 && r->rec[0] == 0 && !r->unterminated && state == FIELD_START)
            continue; /* a blank line: pandas skips them */
        return 1;
    }
}

static const char *tsv_field(const tsv_reader *r, int i)
{
    return r->rec + r->field_at[i];
}

static void tsv_close(tsv_reader *r)
{
    if (r->zfile)
        zip_fclose(r->zfile);
    if (r->file)
        fclose(r->file);
    free(r->rec);
    free(r->field_at);
}

/* ---- where the files are: a directory or a zip archive ----------------------------- */

typedef struct dataset {
    const char *path;
    zip_t *zip;
    char **photo_parts, **keyword_parts; /* names (dir entries or zip entry names), sorted */
    int n_photo_parts, n_keyword_parts;
} dataset;

/* "photos.tsv000" style: PREFIX ".tsv" and three digits, possibly inside a folder. */
static int is_part_name(const char *name, const char *prefix)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    size_t n = strlen(prefix);
    if (strncmp(base, prefix, n) || strncmp(base + n, ".tsv", 4))
        return 0;
    const char *d = base + n + 4;
    return strlen(d) == 3 && d[0] >= '0' && d[0] <= '9' && d[1] >= '0' && d[1] <= '9' &&
           d[2] >= '0' && d[2] <= '9';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_name(char ***list, int *n, const char *name, vdx_error *err)
{
    char **p = realloc(*list, (size_t)(*n + 1) * sizeof *p);
    if (!p)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    *list = p;
    if (!(p[*n] = strdup(name)))
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    (*n)++;
    return 0;
}

static int classify_name(dataset *ds, const char *name, vdx_error *err)
{
    if (is_part_name(name, "photos"))
        return add_name(&ds->photo_parts, &ds->n_photo_parts, name, err);
    if (is_part_name(name, "keywords"))
        return add_name(&ds->keyword_parts, &ds->n_keyword_parts, name, err);
    return 0;
}

static void dataset_close(dataset *ds)
{
    for (int i = 0; i < ds->n_photo_parts; i++)
        free(ds->photo_parts[i]);
    for (int i = 0; i < ds->n_keyword_parts; i++)
        free(ds->keyword_parts[i]);
    free(ds->photo_parts);
    free(ds->keyword_parts);
    if (ds->zip)
        zip_discard(ds->zip);
}

static int dataset_open(dataset *ds, const char *path, vdx_error *err)
{
    memset(ds, 0, sizeof *ds);
    ds->path = path;
    struct stat st;
    if (stat(path, &st) != 0)
        return vdx_fail_errno(err, errno, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d)
            return vdx_fail_errno(err, errno, "%s: cannot open directory: %s", path, strerror(errno));
        struct dirent *e;
        int rc = 0;
        while (rc == 0 && (e = readdir(d)))
            rc = classify_name(ds, e->d_name, err);
        closedir(d);
        if (rc != 0)
            return -1;
    } else {
        int code = 0;
        ds->zip = zip_open(path, ZIP_RDONLY, &code);
        if (!ds->zip) {
            zip_error_t ze;
            zip_error_init_with_code(&ze, code);
            /* a file of another kind is the user's mistake; an unreadable zip is I/O */
            vdx_fail_kind(err, code == ZIP_ER_NOZIP ? VDX_ERR_INVALID : VDX_ERR_IO,
                          "%s: not a directory, and not a readable zip archive: %s", path,
                          zip_error_strerror(&ze));
            zip_error_fini(&ze);
            return -1;
        }
        zip_int64_t n = zip_get_num_entries(ds->zip, 0);
        for (zip_int64_t i = 0; i < n; i++) {
            const char *name = zip_get_name(ds->zip, (zip_uint64_t)i, 0);
            if (name && classify_name(ds, name, err) != 0)
                return -1;
        }
    }
    if (ds->n_photo_parts == 0)
        return vdx_fail_kind(err, VDX_ERR_INVALID,
                             "%s: no photos.tsv000 in this %s (expected the Unsplash "
                             "dataset: photos.tsv000 and optionally keywords.tsv000)",
                             path, ds->zip ? "zip archive" : "directory");
    qsort(ds->photo_parts, (size_t)ds->n_photo_parts, sizeof(char *), cmp_str);
    if (ds->n_keyword_parts)
        qsort(ds->keyword_parts, (size_t)ds->n_keyword_parts, sizeof(char *), cmp_str);
    return 0;
}

static int reader_open(dataset *ds, const char *name, tsv_reader *r, vdx_error *err)
{
    memset(r, 0, sizeof *r);
    r->name = name;
    r->line = 1;
    if (ds->zip) {
        r->zfile = zip_fopen(ds->zip, name, 0);
        if (!r->zfile)
            return vdx_fail(err, "%s: cannot read %s from the archive: %s", ds->path, name,
                            zip_strerror(ds->zip));
        return 0;
    }
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", ds->path, name);
    r->file = fopen(full, "rb");
    if (!r->file)
        return vdx_fail_errno(err, errno, "%s: cannot open: %s", full, strerror(errno));
    return 0;
}

/* ---- rows ----------------------------------------------------------------------------- */

static int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        int n;
        unsigned cp;
        if ((*p & 0xE0) == 0xC0)
            n = 1, cp = *p & 0x1F;
        else if ((*p & 0xF0) == 0xE0)
            n = 2, cp = *p & 0x0F;
        else if ((*p & 0xF8) == 0xF0)
            n = 3, cp = *p & 0x07;
        else
            return 0;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* Checks a record's shape and encoding; on a problem records it and returns 1. */
static int check_row(source_builder *b, tsv_reader *r, int n_columns, const char *id,
                     char **column_names, vdx_error *err, int *failed)
{
    *failed = 0;
    const char *why = NULL;
    char buf[256];
    if (r->swallowed) {
        /* pandas' C parser would merge these lines into one field of this row (or stop
         * the whole load when the column count then differs): report them instead */
        snprintf(buf, sizeof buf, "a '\"' opens a quoted field that %s %ld row%s (line%s %ld%s%.0ld): "
                 "this row and %s are skipped; fix or remove the stray quote",
                 r->unterminated ? "never closes, swallowing" : "runs over", r->swallowed,
                 r->swallowed == 1 ? "" : "s", r->swallowed == 1 ? "" : "s", r->swallowed_first,
                 r->swallowed == 1 ? "" : "-", r->swallowed == 1 ? 0L : r->swallowed_last,
                 r->swallowed == 1 ? "it" : "they");
        why = buf;
    } else if (r->unterminated)
        why = "unterminated quoted field (a '\"' with no closing quote before the end of the file)";
    else if (r->has_nul)
        why = "NUL byte in the row (not a text file?)";
    else if (r->n_fields != n_columns) {
        snprintf(buf, sizeof buf, "too %s columns (%d of %d)",
                 r->n_fields < n_columns ? "few" : "many", r->n_fields, n_columns);
        why = buf;
    } else {
        for (int i = 0; i < r->n_fields; i++)
            if (!valid_utf8(tsv_field(r, i))) {
                snprintf(buf, sizeof buf, "invalid UTF-8 in column %s", column_names[i]);
                why = buf;
                break;
            }
    }
    if (!why)
        return 0;
    if (source_add_problem(b, r->name, r->rec_line, id && *id && valid_utf8(id) ? id : NULL,
                           err, "%s", why) != 0)
        *failed = 1;
    return 1;
}

static int find_column(char **names, int n, const char *want)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], want))
            return i;
    return -1;
}

/* Header → column names, de-duplicated as pandas does ("x", "x.1", ...): a repeated
 * name takes the first ".k" no earlier column has. A set of the names and, per name, the
 * next k to try keep this linear: looking for the free k from 1 each time, among all the
 * earlier names, took cubic time (14 s for a header of 3,000 tabs, for ever for 60,000). */
static int read_header(tsv_reader *r, char ***names_out, int *n_out, vdx_error *err)
{
    int rc = tsv_next(r, err);
    if (rc < 0)
        return -1;
    if (rc == 0 || (r->n_fields == 1 && !*tsv_field(r, 0)))
        return vdx_fail(err, "%s: empty file (expected a header row)", r->name);
    /* every name, not only the first: the fields are NUL-separated in rec */
    int bad = r->unterminated || r->has_nul;
    for (int i = 0; !bad && i < r->n_fields; i++)
        bad = !valid_utf8(tsv_field(r, i));
    if (bad)
        return vdx_fail(err, "%s line %ld: malformed header row", r->name, r->rec_line);
    size_t n = (size_t)r->n_fields;
    char **names = calloc(n, sizeof *names);
    int *next_k = calloc(n, sizeof *next_k);
    idset taken = {0};
    int oom = !names || !next_k || idset_reserve(&taken, n) != 0;
    for (size_t i = 0; !oom && i < n; i++) {
        const char *h = *tsv_field(r, (int)i) ? tsv_field(r, (int)i) : "Unnamed";
        /* the whole name, however long (cut to a buffer of 512 bytes, two long names
         * with the same start stayed equal whatever ".k" followed: the loop never ended) */
        size_t size = strlen(h) + 16;
        char *name = malloc(size);
        if (!name) {
            oom = 1;
            break;
        }
        snprintf(name, size, "%s", h);
        int64_t first = idset_get(&taken, name, -1);
        if (first >= 0) {
            int k = next_k[first];
            do
                snprintf(name, size, "%s.%d", h, k++);
            while (idset_get(&taken, name, -1) >= 0);
            next_k[first] = k;
        }
        names[i] = name;
        next_k[i] = 1;
        if (idset_add(&taken, name, (int64_t)i, NULL) < 0)
            oom = 1;
    }
    idset_free(&taken);
    free(next_k);
    if (oom) {
        for (size_t j = 0; names && j < n; j++)
            free(names[j]);
        free(names);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    }
    *names_out = names;
    *n_out = r->n_fields;
    return 0;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n && names; i++)
        free(names[i]);
    free(names);
}

static int parse_int(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (end != s && *end == 0 && v > 0 && v < 1000000) ? (int)v : 0;
}

/* A "keywords" column of the photos file gives way to the joined keywords of
 * keywords.tsv000: it is kept as "keywords.1" (or the first free "keywords.N"). */
static int rename_own_keywords(char **header, int n, vdx_error *err)
{
    int own = find_column(header, n, "keywords");
    if (own < 0)
        return 0;
    char buf[32];
    for (int k = 1;; k++) {
        snprintf(buf, sizeof buf, "keywords.%d", k);
        if (find_column(header, n, buf) < 0)
            break;
    }
    char *renamed = strdup(buf);
    if (!renamed)
        return vdx_fail(err, "out of memory");
    free(header[own]);
    header[own] = renamed;
    return 0;
}

/* Reads one photos part. The first part's header defines the columns; later parts must
 * have the same header. */
static int read_photos(dataset *ds, const char *name, source_builder *b, int keywords_column,
                       vdx_error *err)
{
    tsv_reader r;
    if (reader_open(ds, name, &r, err) != 0)
        return -1;
    char **header = NULL;
    int n_header = 0, rc = -1;
    if (read_header(&r, &header, &n_header, err) != 0)
        goto out;
    if (keywords_column && rename_own_keywords(header, n_header, err) != 0)
        goto out;
    vdx_source *src = b->src;
    int n_file_columns = src->n_columns - keywords_column;
    if (!src->columns) {
        int id_col = find_column(header, n_header, "photo_id");
        int url_col = find_column(header, n_header, "photo_image_url");
        if (id_col < 0 || url_col < 0) {
            vdx_fail(err, "%s: the header has no '%s' column (is this the Unsplash dataset?)",
                     name, id_col < 0 ? "photo_id" : "photo_image_url");
            goto out;
        }
        char **cols = realloc(header, (size_t)(n_header + keywords_column) * sizeof *cols);
        if (!cols) {
            vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        header = NULL;
        if (keywords_column && !(cols[n_header] = strdup("keywords"))) {
            free_names(cols, n_header);
            vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        source_set_columns(b, cols, n_header + keywords_column);
        n_file_columns = n_header;
    } else {
        int same = n_header == n_file_columns;
        for (int i = 0; same && i < n_header; i++)
            same = !strcmp(header[i], src->columns[i]);
        if (!same) {
            vdx_fail(err, "%s: its header differs from %s's", name, ds->photo_parts[0]);
            goto out;
        }
    }
    int id_col = find_column(src->columns, n_file_columns, "photo_id");
    int url_col = find_column(src->columns, n_file_columns, "photo_image_url");
    int w_col = find_column(src->columns, n_file_columns, "photo_width");
    int h_col = find_column(src->columns, n_file_columns, "photo_height");
    for (;;) {
        int got = tsv_next(&r, err);
        if (got < 0)
            goto out;
        if (got == 0)
            break;
        src->rows++;
        const char *id = r.n_fields > id_col ? tsv_field(&r, id_col) : NULL;
        int failed;
        if (check_row(b, &r, n_file_columns, id, src->columns, err, &failed)) {
            if (failed)
                goto out;
            continue;
        }
        const char *url = tsv_field(&r, url_col);
        int skip = 1, added = 0;
        if (!*id)
            added = source_add_problem(b, name, r.rec_line, NULL, err, "empty photo_id");
        else if (!*url)
            added = source_add_problem(b, name, r.rec_line, id, err, "empty photo_image_url");
        else if (!vdx_is_http_url(url))
            added = source_add_problem(b, name, r.rec_line, id, err, "bad URL '%s'", url);
        else if (source_find(b, id) >= 0)
            added = source_add_problem(b, name, r.rec_line, id, err,
                                       "duplicate photo_id '%s' (first on line %ld)", id,
                                       source_item_line(b, (size_t)source_find(b, id)));
        else
            skip = 0;
        if (added < 0)
            goto out;
        if (skip)
            continue;
        char **values = calloc((size_t)src->n_columns, sizeof *values);
        char *id_copy = strdup(id), *url_copy = strdup(url);
        int oom = !values || !id_copy || !url_copy;
        for (int i = 0; !oom && i < n_file_columns; i++)
            if (*tsv_field(&r, i) && !(values[i] = strdup(tsv_field(&r, i))))
                oom = 1;
        if (oom) {
            free(id_copy);
            free(url_copy);
            free_names(values, src->n_columns);
            vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        if (source_add_item(b, r.rec_line, id_copy, url_copy, values, err) != 0)
            goto out;
        vdx_source_item *it = &src->items[src->n_items - 1];
        it->width = w_col >= 0 ? parse_int(tsv_field(&r, w_col)) : 0;
        it->height = h_col >= 0 ? parse_int(tsv_field(&r, h_col)) : 0;
        if (!it->width || !it->height)
            it->width = it->height = 0;
    }
    rc = 0;
out:
    free_names(header, n_header);
    tsv_close(&r);
    return rc;
}

/* A photo's keywords while they are collected: the value string and its capacity, grown
 * by doubling (a photo of the real dataset has a hundred keywords or more). */
typedef struct keyword_list {
    size_t len, cap;
} keyword_list;

/* Appends ", keyword" to the photo's keywords value. The keywords file lists each
 * (photo, keyword) pair once, so there is nothing to de-duplicate. */
static int add_keyword(char **value, keyword_list *kl, const char *kw, vdx_error *err)
{
    size_t n = strlen(kw), need = kl->len + n + (kl->len ? 2 : 0) + 1;
    if (need > kl->cap) {
        size_t cap = kl->cap ? kl->cap : 64;
        while (cap < need)
            cap *= 2;
        char *grown = realloc(*value, cap);
        if (!grown)
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        *value = grown;
        kl->cap = cap;
    }
    if (kl->len) {
        memcpy(*value + kl->len, ", ", 2);
        kl->len += 2;
    }
    memcpy(*value + kl->len, kw, n + 1);
    kl->len += n;
    return 0;
}

static int read_keywords(dataset *ds, const char *name, source_builder *b, vdx_error *err)
{
    tsv_reader r;
    if (reader_open(ds, name, &r, err) != 0)
        return -1;
    keyword_list *lists = NULL;
    char **header = NULL;
    int n_header = 0, rc = -1;
    if (read_header(&r, &header, &n_header, err) != 0)
        goto out;
    int id_col = find_column(header, n_header, "photo_id");
    int kw_col = find_column(header, n_header, "keyword");
    if (id_col < 0 || kw_col < 0) {
        vdx_fail(err, "%s: the header has no '%s' column", name,
                 id_col < 0 ? "photo_id" : "keyword");
        goto out;
    }
    int kw_value = b->src->n_columns - 1;
    lists = calloc(b->src->n_items ? b->src->n_items : 1, sizeof *lists);
    if (!lists) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < b->src->n_items; i++) /* keywords of an earlier part */
        if (b->src->items[i].values[kw_value])
            lists[i].len = lists[i].cap = strlen(b->src->items[i].values[kw_value]);
    for (;;) {
        int got = tsv_next(&r, err);
        if (got < 0)
            goto out;
        if (got == 0)
            break;
        const char *id = r.n_fields > id_col ? tsv_field(&r, id_col) : NULL;
        int failed;
        if (check_row(b, &r, n_header, id, header, err, &failed)) {
            if (failed)
                goto out;
            continue;
        }
        const char *kw = tsv_field(&r, kw_col);
        long at = source_find(b, id);
        if (at < 0 || !*kw)
            continue; /* a keyword of a photo that is not ingested */
        if (add_keyword(&b->src->items[at].values[kw_value], &lists[at], kw, err) != 0)
            goto out;
    }
    rc = 0;
out:
    free(lists);
    free_names(header, n_header);
    tsv_close(&r);
    return rc;
}

vdx_source *vdx_source_unsplash(const char *path, vdx_error *err)
{
    dataset ds;
    source_builder b;
    if (dataset_open(&ds, path, err) != 0) {
        dataset_close(&ds);
        return NULL;
    }
    if (source_builder_init(&b, "unsplash", err) != 0) {
        dataset_close(&ds);
        return NULL;
    }
    int has_keywords = ds.n_keyword_parts > 0;
    for (int i = 0; i < ds.n_photo_parts; i++)
        if (read_photos(&ds, ds.photo_parts[i], &b, has_keywords, err) != 0)
            goto fail;
    for (int i = 0; i < ds.n_keyword_parts; i++)
        if (read_keywords(&ds, ds.keyword_parts[i], &b, err) != 0)
            goto fail;
    dataset_close(&ds);
    return source_builder_finish(&b);
fail:
    vdx_error_prefix(err, "%s", path);
    dataset_close(&ds);
    source_builder_abort(&b);
    return NULL;
}
