/* The folder source: every image file under a directory, recursively (jpg, jpeg, png,
 * webp, gif, bmp, any letter case). ids are paths relative to the directory, sorted
 * bytewise so two runs (or two machines) see the same order; urls are absolute paths.
 * Hidden entries (".name") and symbolic links to directories are not followed, so a
 * link cycle cannot trap the walk. A path that is not valid UTF-8 gets a reversible
 * escaped id and url (each byte of an invalid sequence, and '%', as %XX: percent-decoding
 * gives the bytes back), so ids stay text for JSON, URLs and the page; the item keeps the
 * raw path for reading the file. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "ingest/ingest_internal.h"

typedef struct path_list {
    char **paths;
    size_t n, cap;
} path_list;

static int is_image_name(const char *name)
{
    static const char *const exts[] = {"jpg", "jpeg", "png", "webp", "gif", "bmp"};
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (!strcasecmp(dot + 1, exts[i]))
            return 1;
    return 0;
}

static int list_push(path_list *l, const char *rel, vdx_error *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        char **p = realloc(l->paths, cap * sizeof *p);
        if (!p)
            return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
        l->paths = p;
        l->cap = cap;
    }
    if (!(l->paths[l->n] = strdup(rel)))
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    l->n++;
    return 0;
}

/* Walks root/rel (rel "" for the root). A subdirectory that cannot be read and an image
 * name that is a link to nothing (or to no regular file) are problems of the source,
 * reported with the rest, not the end of the walk: one unreadable folder among thousands
 * must not stop an ingest. Only the root itself failing to open is an error. */
static int walk(const char *root, const char *rel, path_list *out, source_builder *b,
                long *problems, vdx_error *err)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d && !*rel)
        return vdx_fail_errno(err, errno, "%s: cannot open directory: %s", dir, strerror(errno));
    if (!d) {
        (*problems)++;
        return source_add_problem(b, root, 0, rel, err, "cannot open directory: %s",
                                  strerror(errno));
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char child_rel[PATH_MAX], child[PATH_MAX];
        if ((size_t)snprintf(child_rel, sizeof child_rel, "%s%s%s", rel, *rel ? "/" : "",
                             e->d_name) >= sizeof child_rel)
            continue;
        snprintf(child, sizeof child, "%s/%s", root, child_rel);
        struct stat st;
        if (lstat(child, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            rc = walk(root, child_rel, out, b, problems, err);
        } else if (is_image_name(e->d_name) && S_ISLNK(st.st_mode)) {
            int found = stat(child, &st) == 0;
            if (found && S_ISREG(st.st_mode)) {
                rc = list_push(out, child_rel, err);
            } else {
                (*problems)++;
                rc = source_add_problem(b, root, 0, child_rel, err, "a symbolic link to %s",
                                        found ? "no regular file" : "nothing");
            }
        } else if (is_image_name(e->d_name) && S_ISREG(st.st_mode)) {
            rc = list_push(out, child_rel, err);
        }
    }
    closedir(d);
    return rc;
}

/* `s` with the bytes of invalid UTF-8 sequences and '%' as %XX (malloc'd). */
static char *escape_non_utf8(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t bad;
        size_t len = 1;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0xC2 && c <= 0xF4) /* the length of a valid sequence starting here */
            len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (c != '%' && i + len <= n && vdx_utf8_check(s + i, len, &bad) == 0) {
            memcpy(o, s + i, len);
            o += len;
            i += len;
        } else {
            o += sprintf(o, "%%%02X", c);
            i++;
        }
    }
    *o = 0;
    return out;
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

vdx_source *vdx_source_folder(const char *dir, vdx_error *err)
{
    char root[PATH_MAX];
    if (!realpath(dir, root)) {
        vdx_fail_errno(err, errno, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        vdx_fail_kind(err, VDX_ERR_INVALID, "%s: not a directory", dir);
        return NULL;
    }
    path_list list = {0};
    source_builder b;
    vdx_source *src = NULL;
    long walk_problems = 0;
    if (source_builder_init(&b, "folder", err) != 0)
        goto out;
    if (walk(root, "", &list, &b, &walk_problems, err) != 0) {
        source_builder_abort(&b);
        goto out;
    }
    if (list.n)
        qsort(list.paths, list.n, sizeof *list.paths, cmp_path);
    for (size_t i = 0; i < list.n; i++) {
        char *url = malloc(strlen(root) + strlen(list.paths[i]) + 2);
        if (!url) {
            vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
            source_builder_abort(&b);
            goto out;
        }
        sprintf(url, "%s/%s", root, list.paths[i]);
        char *id = list.paths[i];
        list.paths[i] = NULL;
        char *raw = NULL;
        if (vdx_utf8_check(url, strlen(url), NULL) != 0) {
            raw = url;
            char *escaped_id = escape_non_utf8(id), *escaped_url = escape_non_utf8(raw);
            free(id);
            id = escaped_id;
            url = escaped_url;
            if (!id || !url) {
                free(id);
                free(url);
                free(raw);
                vdx_fail(err, "out of memory");
                source_builder_abort(&b);
                goto out;
            }
        }
        if (source_find(&b, id) >= 0) { /* a UTF-8 name spelled like another's escape */
            int rc = source_add_problem(&b, dir, 0, NULL, err, "two files have the id '%s' (one "
                                        "name is not UTF-8 and escapes to the other)", id);
            free(id);
            free(url);
            free(raw);
            if (rc != 0) {
                source_builder_abort(&b);
                goto out;
            }
            continue;
        }
        if (source_add_item(&b, 0, id, url, NULL, err) != 0) {
            free(raw);
            source_builder_abort(&b);
            goto out;
        }
        b.src->items[b.src->n_items - 1].path = raw;
    }
    b.src->rows = (long)list.n + walk_problems;
    src = source_builder_finish(&b);
out:
    for (size_t i = 0; i < list.n; i++)
        free(list.paths[i]);
    free(list.paths);
    return src;
}
