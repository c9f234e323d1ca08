/* bench_ingest: end-to-end ingest from a local folder against the pure embedding rate.
 *
 *   bench_ingest [--model DIR | --b32] [--images N] [--batch N] [--threads N] [--workers N]
 *                [--rounds N]
 *
 * Builds a folder of N JPEGs (the Unsplash sample's 640 px renditions, as the fetcher
 * gets them from the CDN), then measures
 *   1. embedding only: vdx_clip_embed_images on already-preprocessed pixels, in batches;
 *   2. end to end: vdx_ingest_run (read, decode, preprocess, thumbnail, embed, insert)
 *      into a new embedded collection;
 * alternately --rounds times (default 2; the best of each counts, as the machine is
 * shared), and prints both rates and their ratio (the target: end to end >= 90% of
 * embedding only). --model defaults to $VDX_BENCH_MODEL, else ../shared/fixtures/clip-tiny
 * (or $VDX_SHARED/fixtures/clip-tiny);
 * with a tiny model the embedding is so cheap that decoding dominates, so the ratio is
 * only meaningful for a full-size model: --b32 writes a randomly initialised one with the
 * exact shapes and config of openai/clip-vit-base-patch32 (605 MB, safetensors F32, in the
 * temporary directory; the tokenizer files come from clip-tiny). No pass/fail: numbers. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vdx/image.h"
#include "vdx/ingest.h"
#include "bench.h"

static void die(const char *what, const vdx_error *err)
{
    fprintf(stderr, "bench_ingest: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

/* ---- a random ViT-B/32 checkpoint ---------------------------------------------------- */

typedef struct tensor {
    char name[96];
    long shape[4];
    int ndim;
    int ones; /* layer-norm weight */
    int zeros; /* bias */
} tensor;

static tensor *tensors;
static int n_tensors;

static void add_tensor(const char *name, int ndim, long d0, long d1, long d2, long d3)
{
    tensors = realloc(tensors, (size_t)(n_tensors + 1) * sizeof *tensors);
    tensor *t = &tensors[n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = d0, t->shape[1] = d1, t->shape[2] = d2, t->shape[3] = d3;
    t->ones = strstr(name, "norm") && strstr(name, ".weight");
    t->zeros = strstr(name, ".bias") != NULL;
}

static void add_tower(const char *prefix, int width, int mlp, int layers)
{
    char n[96];
    for (int l = 0; l < layers; l++) {
        const char *proj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        for (int p = 0; p < 4; p++) {
            snprintf(n, sizeof n, "%s.encoder.layers.%d.self_attn.%s.weight", prefix, l, proj[p]);
            add_tensor(n, 2, width, width, 0, 0);
            snprintf(n, sizeof n, "%s.encoder.layers.%d.self_attn.%s.bias", prefix, l, proj[p]);
            add_tensor(n, 1, width, 0, 0, 0);
        }
        for (int k = 1; k <= 2; k++) {
            snprintf(n, sizeof n, "%s.encoder.layers.%d.layer_norm%d.weight", prefix, l, k);
            add_tensor(n, 1, width, 0, 0, 0);
            snprintf(n, sizeof n, "%s.encoder.layers.%d.layer_norm%d.bias", prefix, l, k);
            add_tensor(n, 1, width, 0, 0, 0);
        }
        snprintf(n, sizeof n, "%s.encoder.layers.%d.mlp.fc1.weight", prefix, l);
        add_tensor(n, 2, mlp, width, 0, 0);
        snprintf(n, sizeof n, "%s.encoder.layers.%d.mlp.fc1.bias", prefix, l);
        add_tensor(n, 1, mlp, 0, 0, 0);
        snprintf(n, sizeof n, "%s.encoder.layers.%d.mlp.fc2.weight", prefix, l);
        add_tensor(n, 2, width, mlp, 0, 0);
        snprintf(n, sizeof n, "%s.encoder.layers.%d.mlp.fc2.bias", prefix, l);
        add_tensor(n, 1, width, 0, 0, 0);
    }
}

static void copy_into(const char *from_dir, const char *name, const char *to_dir)
{
    char from[4400], to[4400], *data;
    size_t size;
    vdx_error err;
    snprintf(from, sizeof from, "%s/%s", from_dir, name);
    snprintf(to, sizeof to, "%s/%s", to_dir, name);
    if (vdx_read_file(from, &data, &size, &err) != 0 ||
        vdx_write_file_atomic(to, data, size, &err) != 0)
        die(name, &err);
    free(data);
}

/* Writes dir/{config.json, model.safetensors} for ViT-B/32 with random weights. */
static void write_b32(const char *dir, const char *tiny)
{
    add_tensor("text_model.embeddings.token_embedding.weight", 2, 49408, 512, 0, 0);
    add_tensor("text_model.embeddings.position_embedding.weight", 2, 77, 512, 0, 0);
    add_tower("text_model", 512, 2048, 12);
    add_tensor("text_model.final_layer_norm.weight", 1, 512, 0, 0, 0);
    add_tensor("text_model.final_layer_norm.bias", 1, 512, 0, 0, 0);
    add_tensor("vision_model.embeddings.class_embedding", 1, 768, 0, 0, 0);
    add_tensor("vision_model.embeddings.patch_embedding.weight", 4, 768, 3, 32, 32);
    add_tensor("vision_model.embeddings.position_embedding.weight", 2, 50, 768, 0, 0);
    add_tensor("vision_model.pre_layrnorm.weight", 1, 768, 0, 0, 0);
    add_tensor("vision_model.pre_layrnorm.bias", 1, 768, 0, 0, 0);
    add_tower("vision_model", 768, 3072, 12);
    add_tensor("vision_model.post_layernorm.weight", 1, 768, 0, 0, 0);
    add_tensor("vision_model.post_layernorm.bias", 1, 768, 0, 0, 0);
    add_tensor("visual_projection.weight", 2, 512, 768, 0, 0);
    add_tensor("text_projection.weight", 2, 512, 512, 0, 0);
    add_tensor("logit_scale", 0, 0, 0, 0, 0);

    cJSON *header = cJSON_CreateObject();
    long offset = 0, params = 0;
    for (int i = 0; i < n_tensors; i++) {
        long count = 1;
        cJSON *shape = cJSON_CreateArray();
        for (int d = 0; d < tensors[i].ndim; d++) {
            count *= tensors[i].shape[d];
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)tensors[i].shape[d]));
        }
        cJSON *t = cJSON_AddObjectToObject(header, tensors[i].name);
        cJSON_AddStringToObject(t, "dtype", "F32");
        cJSON_AddItemToObject(t, "shape", shape);
        cJSON *offsets = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)(offset + count * 4)));
        offset += count * 4;
        params += count;
    }
    char *json = cJSON_PrintUnformatted(header);
    cJSON_Delete(header);
    char path[4400];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        die(path, NULL);
    uint64_t hlen = strlen(json);
    fwrite(&hlen, 8, 1, f); /* little-endian host */
    fwrite(json, 1, hlen, f);
    free(json);
    uint32_t state = 2463534242u;
    float *buf = malloc(sizeof(float) << 16);
    for (int i = 0; i < n_tensors; i++) {
        long count = 1;
        for (int d = 0; d < tensors[i].ndim; d++)
            count *= tensors[i].shape[d];
        for (long done = 0; done < count;) {
            long n = count - done < (1L << 16) ? count - done : (1L << 16);
            for (long k = 0; k < n; k++) {
                state ^= state << 13, state ^= state >> 17, state ^= state << 5;
                float r = (float)((double)state / 4294967296.0 - 0.5) * 0.04f;
                buf[k] = tensors[i].ones ? 1.0f + r : tensors[i].zeros ? 0.1f * r : r;
            }
            if (!strcmp(tensors[i].name, "logit_scale"))
                buf[0] = 4.6052f;
            fwrite(buf, sizeof *buf, (size_t)n, f);
            done += n;
        }
    }
    free(buf);
    free(tensors);
    if (fclose(f) != 0)
        die(path, NULL);
    static const char config[] =
        "{\"architectures\":[\"CLIPModel\"],\"model_type\":\"clip\",\"projection_dim\":512,"
        "\"logit_scale_init_value\":2.6592,\"text_config\":{\"hidden_size\":512,"
        "\"intermediate_size\":2048,\"num_attention_heads\":8,\"num_hidden_layers\":12,"
        "\"max_position_embeddings\":77,\"vocab_size\":49408,\"hidden_act\":\"quick_gelu\","
        "\"layer_norm_eps\":1e-05,\"projection_dim\":512},\"vision_config\":{\"hidden_size\":768,"
        "\"intermediate_size\":3072,\"num_attention_heads\":12,\"num_hidden_layers\":12,"
        "\"image_size\":224,\"patch_size\":32,\"num_channels\":3,\"hidden_act\":\"quick_gelu\","
        "\"layer_norm_eps\":1e-05,\"projection_dim\":512}}\n";
    snprintf(path, sizeof path, "%s/config.json", dir);
    vdx_error err;
    if (vdx_write_file_atomic(path, config, strlen(config), &err) != 0)
        die(path, &err);
    const char *files[] = {"vocab.json", "merges.txt", "preprocessor_config.json",
                           "tokenizer_config.json"};
    for (int i = 0; i < 4; i++)
        copy_into(tiny, files[i], dir);
    printf("wrote a random ViT-B/32 (%ld parameters) to %s\n", params, dir);
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
    int n_images = 64, batch = 32, threads = 0, workers = 0, b32 = 0, rounds = 2;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--model") && v)
            model_dir = argv[++i];
        else if (!strcmp(argv[i], "--b32"))
            b32 = 1;
        else if (!strcmp(argv[i], "--images") && v)
            n_images = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && v)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && v)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--workers") && v)
            workers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && v)
            rounds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_ingest [--model DIR | --b32] [--images N] [--batch N] "
                            "[--threads N] [--workers N] [--rounds N]\n");
            return 2;
        }
    }
    if (n_images < 1 || batch < 1 || rounds < 1)
        return 2;
    vdx_error err = {{0}};
    char tmp[4096], b32_dir[4200];
    snprintf(tmp, sizeof tmp, "%s/vdx-bench-ingest-XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp))
        die("mkdtemp", NULL);
    if (b32) {
        snprintf(b32_dir, sizeof b32_dir, "%s/clip-vit-b32-random", tmp);
        if (vdx_mkdirs(b32_dir, &err) != 0)
            die(b32_dir, &err);
        write_b32(b32_dir, tiny);
        model_dir = b32_dir;
    }
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

    /* every image preprocessed once, for the embedding-only measure */
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
    vdx_model_identity id;
    memset(&id, 0, sizeof id);
    snprintf(id.name, sizeof id.name, "%s", vdx_clip_model_name(model));
    snprintf(id.config_hash, sizeof id.config_hash, "%s", vdx_clip_config_hash(model));
    id.dims = vdx_clip_embed_dim(model);
    vdx_source *src = vdx_source_folder(folder, &err);
    if (!src)
        die(folder, &err);
    double embed_s = 1e30, e2e_s = 1e30;
    for (int round = 0; round < rounds; round++) {
        /* 1. embedding only */
        t = vdx_now();
        for (int i = 0; i < n_images; i += batch) {
            int n = n_images - i < batch ? n_images - i : batch;
            if (vdx_clip_embed_images(model, pixels + (size_t)i * per, n, features, &err) != 0)
                die("embedding", &err);
        }
        double s1 = vdx_now() - t;
        /* 2. end to end, into a new collection each round */
        char name[32];
        snprintf(name, sizeof name, "bench%d", round);
        vdx_store_options so = {0};
        so.data_dir = data_dir;
        so.collection = name;
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
        double s2 = vdx_now() - t;
        if (rep.stats.stored != n_images)
            fprintf(stderr, "bench_ingest: only %ld of %d stored\n", rep.stats.stored, n_images);
        vdx_ingest_report_free(&rep);
        vdx_store_close(store);
        printf("round %d: embedding only %.2f img/s, end to end %.2f img/s\n", round + 1,
               n_images / s1, n_images / s2);
        fflush(stdout);
        embed_s = s1 < embed_s ? s1 : embed_s;
        e2e_s = s2 < e2e_s ? s2 : e2e_s;
    }
    vdx_source_free(src);
    free(pixels);
    free(features);

    double embed_rate = n_images / embed_s, e2e_rate = n_images / e2e_s;
    printf("embedding only   %8.2f img/s  (%.3f s)\n", embed_rate, embed_s);
    printf("ingest end2end   %8.2f img/s  (%.3f s; decode, thumbnail, embed, insert)\n",
           e2e_rate, e2e_s);
    printf("ratio            %8.1f %%  (target >= 90%% with a full-size model)\n",
           100.0 * e2e_rate / embed_rate);

    bench_remove_tree(tmp);
    for (int i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    vdx_clip_free(model);
    return 0;
}
