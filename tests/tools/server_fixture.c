/* server_fixture: builds a small collection for the server's tests without the image
 * pipeline: the rows of an Unsplash Lite photos.tsv000 (every column as metadata, rows
 * with the wrong number of columns skipped), each row's image file from IMAGES as its
 * thumbnail (rows without one are skipped), and as its vector the CLIP *text* features of
 * its description (or its id), normalised: deterministic, and a text query near a
 * description finds it. The collection records the model, so `vdx serve --model` accepts
 * it. With --empty it only creates the collection (the empty-state page).
 *
 *   server_fixture --data DIR --collection C --model MODEL_DIR --tsv photos.tsv000
 *                  --images DIR [--empty] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdx/clip.h"
#include "vdx/store.h"

#define MAX_COLUMNS 64

static int split_tabs(char *line, char **fields, int max)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = 0;
    for (char *p = line;; p++) {
        if (n == max)
            return -1;
        fields[n++] = p;
        p = strchr(p, '\t');
        if (!p)
            return n;
        *p = 0;
    }
}

static int column_index(char **names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

static int fail(const char *what, const vdx_error *err)
{
    fprintf(stderr, "server_fixture: %s: %s\n", what, err->message);
    return 1;
}

int main(int argc, char **argv)
{
    const char *data = NULL, *collection = NULL, *model_dir = NULL, *tsv = NULL, *images = NULL;
    int empty = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--empty"))
            empty = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "--data"))
            data = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--collection"))
            collection = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--model"))
            model_dir = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--tsv"))
            tsv = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--images"))
            images = argv[++i];
        else {
            fprintf(stderr, "server_fixture: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!data || !collection || !model_dir || (!empty && (!tsv || !images))) {
        fprintf(stderr, "usage: server_fixture --data DIR --collection C --model DIR "
                        "(--tsv FILE --images DIR | --empty)\n");
        return 2;
    }
    vdx_error err = {{0}};
    vdx_clip_model *model = vdx_clip_load(model_dir, &err);
    if (!model)
        return fail(model_dir, &err);
    vdx_model_identity identity = {0};
    snprintf(identity.name, sizeof identity.name, "%s", vdx_clip_model_name(model));
    snprintf(identity.config_hash, sizeof identity.config_hash, "%s", vdx_clip_config_hash(model));
    identity.dims = vdx_clip_embed_dim(model);
    vdx_store_options opts = {.data_dir = data, .collection = collection, .create = 1, .model = &identity};
    vdx_store *store = vdx_store_open(&opts, &err);
    if (!store) {
        vdx_clip_free(model);
        return fail(collection, &err);
    }
    int status = 0;
    size_t stored = 0;
    FILE *in = empty ? NULL : fopen(tsv, "r");
    if (!empty && !in) {
        perror(tsv);
        status = 1;
    }
    char *line = NULL, *header_line = NULL;
    size_t cap = 0;
    char *names[MAX_COLUMNS];
    int n_names = 0, id_col = -1, url_col = -1, desc_col = -1, ai_col = -1;
    if (in && getline(&line, &cap, in) > 0) {
        header_line = strdup(line);
        n_names = split_tabs(header_line, names, MAX_COLUMNS);
        id_col = column_index(names, n_names, "photo_id");
        url_col = column_index(names, n_names, "photo_image_url");
        desc_col = column_index(names, n_names, "photo_description");
        ai_col = column_index(names, n_names, "ai_description");
    }
    if (in && (id_col < 0 || url_col < 0)) {
        fprintf(stderr, "server_fixture: %s has no photo_id / photo_image_url header\n", tsv);
        status = 1;
    }
    float *vector = malloc((size_t)identity.dims * sizeof *vector);
    while (status == 0 && in && getline(&line, &cap, in) > 0) {
        char *fields[MAX_COLUMNS];
        if (split_tabs(line, fields, MAX_COLUMNS) != n_names)
            continue;
        const char *slash = strrchr(fields[url_col], '/');
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", images, slash ? slash + 1 : fields[url_col]);
        char *jpeg = NULL;
        size_t jpeg_size = 0;
        vdx_item_state state = VDX_ITEM_ABSENT;
        const char *id = fields[id_col];
        if (!*id || vdx_read_file(path, &jpeg, &jpeg_size, NULL) != 0 ||
            vdx_store_item_states(store, &id, 1, &state, &err) != 0 || state != VDX_ITEM_ABSENT) {
            free(jpeg);
            continue;
        }
        const char *text = desc_col >= 0 && *fields[desc_col] ? fields[desc_col]
                           : ai_col >= 0 && *fields[ai_col] ? fields[ai_col] : id;
        const char *values[MAX_COLUMNS];
        for (int i = 0; i < n_names; i++)
            values[i] = *fields[i] ? fields[i] : NULL;
        vdx_item item = {.id = id, .url = fields[url_col], .meta_names = (const char *const *)names,
                         .meta_values = values, .n_meta = n_names, .vector = vector,
                         .thumbnail = (const uint8_t *)jpeg, .thumbnail_size = jpeg_size};
        if (vdx_clip_embed_text(model, text, vector, NULL, &err) != 0) {
            status = fail(id, &err);
        } else {
            vdx_l2_normalize(vector, identity.dims);
            if (vdx_store_append(store, &item, 1, &err) != 0)
                status = fail(id, &err);
            else
                stored++;
        }
        free(jpeg);
    }
    if (status == 0)
        printf("server_fixture: %s holds %zu items\n", collection, stored);
    if (in)
        fclose(in);
    free(line);
    free(header_line);
    free(vector);
    vdx_store_close(store);
    vdx_clip_free(model);
    return status;
}
