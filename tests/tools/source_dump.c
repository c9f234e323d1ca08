/* source_dump: what a source makes of a dataset, as JSON lines, for comparing the TSV
 * reader with other readers (tests/tools/tsv_vs_pandas.py): one line per item
 * {"id":…,"url":…,"values":{column: value or null}}, then one per skipped row
 * {"problem_line":N,"id":…,"reason":…}. Written against the public source API only.
 *
 *   source_dump unsplash DIR | folder DIR | urls FILE */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdx/ingest.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: source_dump unsplash DIR | folder DIR | urls FILE\n");
        return 2;
    }
    vdx_error err = {{0}};
    vdx_source *src = !strcmp(argv[1], "unsplash") ? vdx_source_unsplash(argv[2], &err)
                      : !strcmp(argv[1], "folder") ? vdx_source_folder(argv[2], &err)
                      : !strcmp(argv[1], "urls")   ? vdx_source_urls(argv[2], &err)
                                                   : NULL;
    if (!src) {
        fprintf(stderr, "source_dump: %s\n", err.message[0] ? err.message : "unknown source kind");
        return 1;
    }
    for (size_t i = 0; i < src->n_items; i++) {
        const vdx_source_item *it = &src->items[i];
        cJSON *o = cJSON_CreateObject(), *values = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", it->id);
        cJSON_AddStringToObject(o, "url", it->url);
        for (int c = 0; c < src->n_columns; c++)
            cJSON_AddItemToObject(values, src->columns[c],
                                  it->values && it->values[c] ? cJSON_CreateString(it->values[c])
                                                              : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "values", values);
        char *line = cJSON_PrintUnformatted(o);
        puts(line);
        free(line);
        cJSON_Delete(o);
    }
    for (size_t i = 0; i < src->n_problems; i++) {
        const vdx_source_problem *p = &src->problems[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "problem_line", (double)p->line);
        if (p->id)
            cJSON_AddStringToObject(o, "id", p->id);
        else
            cJSON_AddNullToObject(o, "id");
        cJSON_AddStringToObject(o, "reason", p->reason);
        char *line = cJSON_PrintUnformatted(o);
        puts(line);
        free(line);
        cJSON_Delete(o);
    }
    vdx_source_free(src);
    return 0;
}
