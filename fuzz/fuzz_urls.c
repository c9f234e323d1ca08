/* libFuzzer target for the URL-list source (src/ingest/source_urls.c, `vdx ingest urls`),
 * and in it the RFC 8089 file: URLs: the input is the list file (read through a memfd).
 * Every accepted item must have a valid UTF-8 id and url without NUL, and a location (the
 * raw path when the url shows an escaped one) that is an http(s) URL or an absolute path; an item written as a file: URL must name
 * no host other than localhost; every skipped line has a reason and a line number inside
 * the file. Built by scripts/build-fuzz.sh.
 * FUZZ_SOURCES: src/ingest/source_urls.c src/ingest/source.c src/common/common.c src/common/strbuf.c src/common/hash.c */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vdx/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("urls.txt", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    vdx_error err = {{0}};
    vdx_source *src = vdx_source_urls(path, &err);
    close(fd);
    if (!src) {
        if (!err.message[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    long lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    for (size_t i = 0; i < src->n_items; i++) {
        const vdx_source_item *it = &src->items[i];
        size_t bad;
        if (!it->id || !it->url || vdx_utf8_check(it->id, strlen(it->id), &bad) != 0 ||
            vdx_utf8_check(it->url, strlen(it->url), &bad) != 0)
            abort(); /* ids and urls are stored and shown as text */
        int http = !strncmp(it->url, "http://", 7) || !strncmp(it->url, "https://", 8);
        const char *location = it->path ? it->path : it->url;
        if (!http && location[0] != '/')
            abort();
        if (!strncasecmp(it->id, "file://", 7)) {
            const char *host = it->id + 7;
            size_t host_len = strcspn(host, "/");
            if (host_len && !(host_len == 9 && !strncasecmp(host, "localhost", 9)))
                abort(); /* another host's file read as a local path */
        }
    }
    for (size_t i = 0; i < src->n_problems; i++) {
        const vdx_source_problem *p = &src->problems[i];
        if (!p->reason || !p->reason[0] || p->line < 1 || p->line > lines)
            abort();
    }
    vdx_source_free(src);
    return 0;
}
