/* The URL-list source: a text file with one image URL or file path per line. Blank
 * lines and lines starting with '#' are skipped; surrounding whitespace is trimmed.
 * ids are the lines as written; relative paths are read relative to the list file's
 * directory. "file:" URLs follow RFC 8089: file:///path, file://localhost/path and
 * file:/path name the local absolute path (percent-decoded; a path that decodes to bytes
 * that are not UTF-8 is read as decoded but stored and shown still encoded); another host
 * is refused. Lines that cannot be fetched (another scheme, a
 * malformed http URL, invalid UTF-8) and repeated lines are reported and skipped. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "ingest/ingest_internal.h"

/* Where to read an entry from, or NULL with *why set. A file: URL whose decoded path is
 * not UTF-8 gives its path still percent-encoded (text, to store and show) and the raw
 * decoded path in *raw (to read); *raw is NULL otherwise. */
static char *entry_location(const char *entry, const char *base_dir, const char **why,
                            char **raw)
{
    *why = NULL;
    *raw = NULL;
    if (!strncmp(entry, "http://", 7) || !strncmp(entry, "https://", 8)) {
        if (!vdx_is_http_url(entry)) {
            *why = "bad URL";
            return NULL;
        }
        return strdup(entry);
    }
    if (!strncasecmp(entry, "file:", 5)) {
        const char *rest = entry + 5, *path = rest;
        if (!strncmp(rest, "//", 2)) {
            const char *host = rest + 2, *slash = strchr(host, '/');
            size_t host_len = slash ? (size_t)(slash - host) : strlen(host);
            if (host_len && !(host_len == 9 && !strncasecmp(host, "localhost", 9))) {
                *why = "file URL names another host (only file:///path or file://localhost/path)";
                return NULL;
            }
            path = host + host_len;
        }
        if (path[0] != '/') {
            *why = "file URL without an absolute path";
            return NULL;
        }
        char *decoded = vdx_percent_decode(path);
        size_t bad;
        if (!decoded)
            *why = "malformed percent-escape in a file URL";
        else if (vdx_utf8_check(decoded, strlen(decoded), &bad) != 0) {
            *raw = decoded;
            return strdup(path);
        }
        return decoded;
    }
    if (strstr(entry, "://") || !strncmp(entry, "http:", 5) ||
             !strncmp(entry, "https:", 6)) {
        *why = strstr(entry, "://") ? "unsupported URL scheme (http, https, file or a path)"
                                    : "bad URL";
        return NULL;
    }
    if (!*entry) {
        *why = "empty path";
        return NULL;
    }
    if (entry[0] == '/')
        return strdup(entry);
    char *path = malloc(strlen(base_dir) + strlen(entry) + 2);
    if (path)
        sprintf(path, "%s/%s", base_dir, entry);
    return path;
}

vdx_source *vdx_source_urls(const char *list_path, vdx_error *err)
{
    FILE *f = fopen(list_path, "rb");
    if (!f) {
        vdx_fail_errno(err, errno, "%s: cannot open: %s", list_path, strerror(errno));
        return NULL;
    }
    struct stat st; /* a directory opens, then fails its first read with no line to name */
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        vdx_fail_kind(err, VDX_ERR_INVALID, "%s: a directory, not a list of URLs (a folder "
                      "of images is 'vdx ingest folder DIR')", list_path);
        return NULL;
    }
    char base_dir[PATH_MAX];
    snprintf(base_dir, sizeof base_dir, "%s", list_path);
    char *slash = strrchr(base_dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(base_dir, sizeof base_dir, ".");
    char abs_dir[PATH_MAX];
    if (realpath(base_dir, abs_dir))
        snprintf(base_dir, sizeof base_dir, "%s", abs_dir);
    const char *name = strrchr(list_path, '/') ? strrchr(list_path, '/') + 1 : list_path;

    source_builder b;
    if (source_builder_init(&b, "urls", err) != 0) {
        fclose(f);
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long line_no = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        line_no++;
        char *s = line, *e = line + len;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
            e--;
        if (memchr(line, 0, (size_t)len)) { /* no text list holds one; an image does */
            vdx_fail_kind(err, VDX_ERR_INVALID, "%s: binary data (a NUL byte on line %ld), "
                          "not a list of URLs or paths, one per line", list_path, line_no);
            goto fail;
        }
        *e = 0;
        if (!*s || *s == '#')
            continue;
        b.src->rows++;
        size_t bad;
        if ((size_t)(e - s) != strlen(s) || vdx_utf8_check(s, strlen(s), &bad) != 0) {
            if (source_add_problem(&b, name, line_no, NULL, err,
                                   "invalid UTF-8 or NUL byte in the line") != 0)
                goto fail;
            continue;
        }
        long first = source_find(&b, s);
        if (first >= 0) {
            if (source_add_problem(&b, name, line_no, s, err,
                                   "duplicate entry (first on line %ld)",
                                   source_item_line(&b, (size_t)first)) != 0)
                goto fail;
            continue;
        }
        const char *why;
        char *raw;
        char *url = entry_location(s, base_dir, &why, &raw);
        if (!url) {
            free(raw);
            if (why ? source_add_problem(&b, name, line_no, s, err, "%s '%s'", why, s) != 0
                    : vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory") != 0)
                goto fail;
            continue;
        }
        char *id = strdup(s);
        if (!id) {
            free(url);
            free(raw);
            vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
            goto fail;
        }
        if (source_add_item(&b, line_no, id, url, NULL, err) != 0) {
            free(raw);
            goto fail;
        }
        b.src->items[b.src->n_items - 1].path = raw;
    }
    if (ferror(f)) {
        vdx_fail(err, "%s: read error after line %ld", list_path, line_no);
        goto fail;
    }
    free(line);
    fclose(f);
    return source_builder_finish(&b);
fail:
    free(line);
    fclose(f);
    source_builder_abort(&b);
    return NULL;
}
