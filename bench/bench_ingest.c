/* bench_ingest: end-to-end ingest from a local folder against the pure embedding rate.
 *
 *   bench_ingest [--model DIR] [--images N] [--batch N] [--threads N] [--workers N]
 *
 * Builds a folder of N JPEGs (the Unsplash sample's 640 px renditions, as the fetcher
 * gets them from the CDN), then measures
 *   1. embedding only: vdx_clip_embed_images on already-preprocessed pixels, in batches;
 *   2. end to end: vdx_ingest_run (read, decode, preprocess, thumbnail, embed, insert)
 *      into a new embedded collection;
 * and prints both rates and their ratio (the target: end to end >= 90% of
 * embedding only). --model defaults to $VDX_BENCH_MODEL, else ../shared/fixtures/clip-tiny
 * (or $VDX_SHARED/fixtures/clip-tiny);
 * with a tiny model the embedding is so cheap that decoding dominates, so the ratio is
 * only meaningful for a full-size model. No pass/fail: numbers only. */
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vdx/image.h"
#include "vdx/ingest.h"

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void die(const char *what, const vdx_error *err)
{
    fprintf(stderr, "bench_ingest: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

int main(int argc, char **argv)
{
    const char *shared = getenv("VDX_SHARED");
    if (!shared || !*shared)
        shared = "../shared";
    char sample[4096], tiny[4096];
    snprintf(sample, sizeof sample, "%s/data/unsplash-sample/images", shared);
    snprintf(tiny, sizeof tiny, "%s/fixtures/clip-tiny", shared);
    const char *model_dir = getenv("VDX_BENCH_MODEL");
    if (!model_dir || !*model_dir)
        model_dir = tiny;
    int n_images = 64, batch = 32, threads = 0, workers = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--model") && v)
            model_dir = argv[++i];
        else if (!strcmp(argv[i], "--images") && v)
            n_images = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && v)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && v)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--workers") && v)
            workers = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_ingest [--model DIR] [--images N] [--batch N] "
                            "[--threads N] [--workers N]\n");
            return 2;
        }
    }
    if (n_images < 1 || batch < 1)
        return 2;
    vdx_error err = {{0}};
    if (threads > 0)
        vdx_clip_set_threads(threads);
    double t = vdx_now();
    vdx_clip_model *model = vdx_clip_load(model_dir, &err);
    if (!model)
        die(model_dir, &err);
    printf("model %s (%d-d), loaded in %.2f s; %d images, batch %d, %d cores\n",
           vdx_clip_model_name(model), vdx_clip_embed_dim(model), vdx_now() - t, n_images, batch,
           vdx_cpu_count());

    /* the folder: copies of the sample images, cycling */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/vdx-bench-ingest-XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp))
        die("mkdtemp", NULL);
    char folder[4200], data_dir[4200];
    snprintf(folder, sizeof folder, "%s/images", tmp);
    snprintf(data_dir, sizeof data_dir, "%s/data", tmp);
    if (vdx_mkdirs(folder, &err) != 0)
        die(folder, &err);
    DIR *d = opendir(sample);
    char **names = NULL;
    int n_names = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            names = realloc(names, (size_t)(n_names + 1) * sizeof *names);
            names[n_names++] = strdup(e->d_name);
        }
    if (d)
        closedir(d);
    if (!n_names) {
        fprintf(stderr, "bench_ingest: no images in %s\n", sample);
        return 1;
    }
    for (int i = 0; i < n_images; i++) {
        char from[4400], to[4400], *bytes;
        size_t size;
        snprintf(from, sizeof from, "%s/%s", sample, names[i % n_names]);
        snprintf(to, sizeof to, "%s/img-%05d.jpg", folder, i);
        if (vdx_read_file(from, &bytes, &size, &err) != 0 ||
            vdx_write_file_atomic(to, bytes, size, &err) != 0)
            die(from, &err);
        free(bytes);
    }

    /* 1. embedding only */
    const vdx_preprocess_config *pre = vdx_clip_get_preprocess(model);
    size_t per = (size_t)3 * (size_t)pre->crop_height * (size_t)pre->crop_width;
    float *pixels = malloc((size_t)n_images * per * sizeof *pixels);
    float *features = malloc((size_t)batch * (size_t)vdx_clip_embed_dim(model) * sizeof *features);
    for (int i = 0; i < n_images; i++) {
        char path[4400];
        vdx_image img;
        snprintf(path, sizeof path, "%s/img-%05d.jpg", folder, i);
        if (vdx_image_load(path, &img, &err) != 0 ||
            vdx_image_preprocess(&img, pre, pixels + (size_t)i * per, &err) != 0)
            die(path, &err);
        vdx_image_free(&img);
    }
    t = vdx_now();
    for (int i = 0; i < n_images; i += batch) {
        int n = n_images - i < batch ? n_images - i : batch;
        if (vdx_clip_embed_images(model, pixels + (size_t)i * per, n, features, &err) != 0)
            die("embedding", &err);
    }
    double embed_s = vdx_now() - t;
    free(pixels);
    free(features);

    /* 2. end to end */
    vdx_source *src = vdx_source_folder(folder, &err);
    if (!src)
        die(folder, &err);
    vdx_model_identity id;
    memset(&id, 0, sizeof id);
    snprintf(id.name, sizeof id.name, "%s", vdx_clip_model_name(model));
    snprintf(id.config_hash, sizeof id.config_hash, "%s", vdx_clip_config_hash(model));
    id.dims = vdx_clip_embed_dim(model);
    vdx_store_options so = {0};
    so.data_dir = data_dir;
    so.collection = "bench";
    so.create = 1;
    so.model = &id;
    vdx_store *store = vdx_store_open(&so, &err);
    if (!store)
        die("store", &err);
    vdx_ingest_options io;
    vdx_ingest_options_default(&io);
    io.batch = batch;
    if (workers > 0)
        io.workers = workers;
    vdx_ingest_report rep;
    t = vdx_now();
    if (vdx_ingest_run(store, model, src, &io, &rep, &err) != 0)
        die("ingest", &err);
    double e2e_s = vdx_now() - t;
    if (rep.stats.stored != n_images)
        fprintf(stderr, "bench_ingest: only %ld of %d stored\n", rep.stats.stored, n_images);
    vdx_ingest_report_free(&rep);
    vdx_store_close(store);
    vdx_source_free(src);

    double embed_rate = n_images / embed_s, e2e_rate = n_images / e2e_s;
    printf("embedding only   %8.2f img/s  (%.3f s)\n", embed_rate, embed_s);
    printf("ingest end2end   %8.2f img/s  (%.3f s; decode, thumbnail, embed, insert)\n",
           e2e_rate, e2e_s);
    printf("ratio            %8.1f %%  (target >= 90%% with a full-size model)\n",
           100.0 * e2e_rate / embed_rate);

    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    vdx_clip_free(model);
    return 0;
}
