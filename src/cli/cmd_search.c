/* vdx search: the k items nearest a text prompt, an image (file or URL) or an item of
 * the collection ("more like this") by cosine distance, with paging, exclusions and a
 * metadata filter. One JSON line per hit
 * {"id","url","dist"} when stdout is not a terminal, an aligned table when it is. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "vdx/image.h"
#include "vdx/ingest.h"

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: vdx search [options] \"prompt\"\n"
            "       vdx search [options] --image PATH|URL\n"
            "       vdx search [options] --like ID\n"
            "       vdx search [options] --vector Q.npy\n"
            "\n"
            "Finds the items of a collection nearest a text prompt, an image, or one of its\n"
            "items (which is left out of the results).\n"
            "\n"
            "options:\n"
            "  --collection NAME   collection to search (default: default)\n"
            "  --data DIR          data directory (default: $VDX_HOME, else ~/.local/share/vdx)\n"
            "  --store URL         store backend (default: $VDX_STORE, else embedded)\n"
            "  --model M           the collection's model (default: $VDX_MODEL, else the one\n"
            "                      the collection records, else %s)\n"
            "  --text-model M      embed the prompt with this text model instead of the CLIP\n"
            "                      model's own (default: $VDX_TEXT_MODEL), e.g.\n"
            "                      M-CLIP/XLM-Roberta-Large-Vit-B-32 for prompts in ~100\n"
            "                      languages; it must share the collection's space\n"
            "  --force-text-model  accept a text model not known to share that space\n"
            "  --threads N         threads for the model\n"
            "  --precision P       the prompt's: fp32 (default), bf16, int8 or auto ($VDX_PRECISION)\n"
            "  -k N                number of results (default: 9)\n"
            "  --offset N          skip the first N results (paging)\n"
            "  --exclude ID,...    never return these ids (repeatable)\n"
            "  --where EXPR        SQL boolean expression over metadata columns,\n"
            "                      e.g. \"photo_featured = 't' AND stats_views > 1000\"\n"
            "  --image PATH|URL    search by an image instead of a prompt\n"
            "  --like ID           more like this item (no model needed)\n"
            "  --vector Q.npy      by raw vectors: a float32/float16 .npy [n, dim] or [dim]\n"
            "                      (no model needed); one result list per row, each line\n"
            "                      with its \"row\" (0-based)\n"
            "  --exact             always scan every vector, even with an index\n"
            "  --json              JSON lines even on a terminal\n"
            "  -h, --help          this help\n"
            "\n"
            "Output: one line per hit {\"id\",\"url\",\"dist\"} (dist = 1 - cosine similarity,\n"
            "ascending), or a table on a terminal.\n",
            VDX_DEFAULT_MODEL);
}

/* Appends the first len bytes of id to the exclusion list. */
static int append_exclude(const char *id, size_t len, char ***ids, size_t *n)
{
    char **grown = realloc(*ids, (*n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    *ids = grown;
    if (!(grown[*n] = strndup(id, len)))
        return -1;
    (*n)++;
    return 0;
}

/* Splits "a,b,c" into the exclusion list (appending). */
static int add_excludes(const char *arg, char ***ids, size_t *n)
{
    for (const char *p = arg;; p++) {
        size_t len = strcspn(p, ",");
        if (len && append_exclude(p, len, ids, n) != 0)
            return -1;
        p += len;
        if (!*p)
            return 0;
    }
}

/* The image's features: a file path, or an http(s) URL fetched with the ingest fetcher.
 * A large JPEG is decoded reduced, as ingest and the server's upload decode it. */
static int embed_image(const vdx_clip_model *model, const char *where, float *out,
                       vdx_error *err)
{
    const vdx_preprocess_config *pre = vdx_clip_get_preprocess(model);
    int min_side = vdx_preprocess_reduced_side(pre), full_width, full_height;
    vdx_image img = {0};
    if (vdx_is_http_url(where)) {
        vdx_fetch_options fo;
        vdx_fetch_options_default(&fo);
        fo.base_url = getenv("VDX_UNSPLASH_BASE");
        vdx_fetch_result r;
        const char *urls[1] = {where};
        if (vdx_fetch_all(&fo, urls, 1, &r, err) != 0)
            return -1;
        if (!r.ok) {
            vdx_fail(err, "%s: %s", where, r.reason);
            vdx_fetch_result_clear(&r);
            return -1;
        }
        int rc = vdx_image_decode_reduced(r.data, r.size, where, min_side, min_side, &img,
                                          &full_width, &full_height, err);
        vdx_fetch_result_clear(&r);
        if (rc != 0)
            return -1;
    } else {
        char *data;
        size_t size;
        if (vdx_read_file_at_most(where, VDX_IMAGE_MAX_FILE_BYTES, &data, &size, err) != 0)
            return -1;
        int rc = vdx_image_decode_reduced((const uint8_t *)data, size, where, min_side, min_side,
                                          &img, &full_width, &full_height, err);
        free(data);
        if (rc != 0)
            return -1;
    }
    float *pixels = malloc((size_t)3 * (size_t)pre->crop_height * (size_t)pre->crop_width *
                           sizeof *pixels);
    int rc = -1;
    if (!pixels)
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    else if (vdx_image_preprocess(&img, pre, pixels, err) == 0)
        rc = vdx_clip_embed_images(model, pixels, 1, out, err);
    free(pixels);
    vdx_image_free(&img);
    return rc;
}

/* row >= 0: results of row `row` of a --vector file (a "row" field / a heading). */
static void print_hits(const vdx_hits *hits, int offset, int as_table, long row)
{
    if (as_table) {
        int id_w = 2;
        for (int i = 0; i < hits->n; i++) {
            int w = (int)strlen(hits->hits[i].id);
            if (w > id_w)
                id_w = w;
        }
        if (id_w > 48)
            id_w = 48;
        if (row >= 0)
            printf("%srow %ld\n", row ? "\n" : "", row);
        printf("%4s  %-8s  %-*s  %s\n", "#", "dist", id_w, "id", "url");
        for (int i = 0; i < hits->n; i++)
            printf("%4d  %-8.4f  %-*s  %s\n", offset + i + 1, (double)hits->hits[i].dist, id_w,
                   hits->hits[i].id, hits->hits[i].url ? hits->hits[i].url : "");
        if (!hits->n)
            printf("(no results)\n");
        return;
    }
    for (int i = 0; i < hits->n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (row >= 0)
            cJSON_AddNumberToObject(o, "row", (double)row);
        cJSON_AddStringToObject(o, "id", hits->hits[i].id);
        if (hits->hits[i].url)
            cJSON_AddStringToObject(o, "url", hits->hits[i].url);
        else
            cJSON_AddNullToObject(o, "url");
        char dist[32]; /* a damaged vector file can make it NaN: JSON's null, never "nan" */
        snprintf(dist, sizeof dist, "%.7g", (double)hits->hits[i].dist);
        cJSON_AddRawToObject(o, "dist", isfinite(hits->hits[i].dist) ? dist : "null");
        cli_print_json_line(o);
        cJSON_Delete(o);
    }
}

/* --vector FILE: every row of a .npy file is one query, validated like any input. */
static int search_vectors(const char *path, vdx_store_options *so, int k, int offset,
                          char **exclude, size_t n_exclude, const char *where, int exact,
                          int as_table)
{
    vdx_error err = {{0}};
    vdx_npy npy;
    if (vdx_npy_open(path, &npy, &err) != 0)
        return cli_fail(&err, "%s", err.message);
    so->read_only = 1;
    vdx_store *store = vdx_store_open(so, &err);
    if (!store) {
        vdx_npy_close(&npy);
        return cli_fail(&err, "%s", err.message);
    }
    int dims = vdx_store_model(store)->dims, status = 0;
    float *query = malloc((size_t)dims * sizeof *query);
    if (npy.cols != dims)
        status = cli_fail_kind(VDX_ERR_INVALID,
                               "%s: vectors have dimension %d; collection '%s' holds %d-d vectors",
                               path, npy.cols, vdx_store_collection(store), dims);
    else if (!query)
        status = cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory");
    /* every row is checked before the first search: a bad row 3 must not leave rows 0-2's
     * results on stdout looking like the whole answer */
    for (int64_t r = 0; r < npy.rows && status == 0; r++)
        if (vdx_npy_check_row(&npy, path, r, &err) != 0)
            status = cli_fail(&err, "%s", err.message);
    for (int64_t r = 0; r < npy.rows && status == 0; r++) {
        vdx_hits hits = {0};
        vdx_search_request req = {0};
        req.query = query;
        req.k = k;
        req.offset = offset;
        req.exclude_ids = (const char *const *)exclude;
        req.n_exclude = n_exclude;
        req.where = where;
        req.exact = exact;
        vdx_npy_row(&npy, r, query);
        if (vdx_store_search(store, &req, &hits, &err) != 0)
            status = cli_fail(&err, "%s: row %lld: %s", path, (long long)r, err.message);
        else
            print_hits(&hits, offset, as_table, (long)r);
        vdx_hits_free(&hits);
    }
    free(query);
    vdx_store_close(store);
    vdx_npy_close(&npy);
    return status;
}

int cmd_search(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_STORE_LONGOPTS,
        {"model", required_argument, 0, 'm'},
        {"threads", required_argument, 0, 't'},    {"offset", required_argument, 0, 'o'},
        {"precision", required_argument, 0, 'P'},
        {"exclude", required_argument, 0, 'x'},    {"where", required_argument, 0, 'w'},
        {"image", required_argument, 0, 'i'},      {"json", no_argument, 0, 'j'},
        {"like", required_argument, 0, 'l'},       {"help", no_argument, 0, 'h'},
        {"text-model", required_argument, 0, 'T'}, {"force-text-model", no_argument, 0, 'F'},
        {"vector", required_argument, 0, 'V'},     {"exact", no_argument, 0, 'E'},
        {0, 0, 0, 0}};
    vdx_store_options so = {0};
    const char *model_arg = NULL, *image = NULL, *where = NULL, *like = NULL, *text_arg = NULL;
    const char *precision_arg = NULL;
    const char *vector = NULL;
    int force_text = 0, exact = 0;
    long k = 9, offset = 0, threads = 0;
    int json = 0, status = 1;
    char **exclude = NULL;
    size_t n_exclude = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hk:", longopts, NULL)) != -1) {
        char *end;
        if (cli_store_options(c, optarg, &so))
            continue;
        switch (c) {
        case 'm': model_arg = optarg; break;
        case 'P': precision_arg = optarg; break;
        case 'w': where = optarg; break;
        case 'i': image = optarg; break;
        case 'l': like = optarg; break;
        case 'j': json = 1; break;
        case 'T': text_arg = optarg; break;
        case 'F': force_text = 1; break;
        case 'V': vector = optarg; break;
        case 'E': exact = 1; break;
        case 't':
        case 'k':
        case 'o': {
            long v = strtol(optarg, &end, 10);
            long min = c == 'o' ? 0 : 1, max = c == 't' ? 256 : 1000000;
            if (!*optarg || *end || v < min || v > max) {
                status = cli_usage_error("search", "%s wants a number from %ld to %ld, not '%s'",
                                         c == 'k' ? "-k" : c == 'o' ? "--offset" : "--threads",
                                         min, max, optarg);
                goto out;
            }
            *(c == 'k' ? &k : c == 'o' ? &offset : &threads) = v;
            break;
        }
        case 'x':
            if (add_excludes(optarg, &exclude, &n_exclude) != 0) {
                status = cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory");
                goto out;
            }
            break;
        case 'h': print_help(stdout); status = 0; goto out;
        case ':':
            status = cli_usage_error("search", "%s needs a value", argv[optind - 1]);
            goto out;
        default:
            status = cli_usage_error("search", "unknown option '%s'", argv[optind - 1]);
            goto out;
        }
    }
    if ((status = cli_use_precision("search", precision_arg, VDX_PRECISION_FP32)) != 0)
        goto out;
    status = 1;
    const char *prompt = optind < argc ? argv[optind] : NULL;
    if (argc - optind > 1) {
        status = cli_usage_error("search", "one prompt only (quote it: \"a red bicycle\")");
        goto out;
    }
    if (prompt && !*prompt) { /* an unset shell variable, most likely: never a search */
        status = cli_usage_error("search", "the prompt is empty");
        goto out;
    }
    if ((image && !*image) || (vector && !*vector) || (like && !*like)) {
        status = cli_usage_error("search", "--%s needs a value, not ''",
                                 image && !*image     ? "image"
                                 : vector && !*vector ? "vector"
                                                      : "like");
        goto out;
    }
    if ((prompt != NULL) + (image != NULL) + (like != NULL) + (vector != NULL) != 1) {
        status = cli_usage_error("search", prompt || image || like || vector
                                               ? "give one of a prompt, --image, --like or --vector"
                                               : "give a prompt, --image, --like or --vector");
        goto out;
    }
    if (vector) {
        status = search_vectors(vector, &so, (int)k, (int)offset, exclude, n_exclude, where,
                                exact, cli_stdout_is_tty() && !json);
        goto out;
    }
    vdx_clip_model *model = NULL;
    vdx_text_model *text_model = NULL;
    vdx_model_identity identity;
    /* A prompt with a separate text model needs no CLIP model: --like uses the
     * collection's own vectors, a text model is checked against the collection below. */
    int separate_text = prompt && cli_text_model_arg(text_arg);
    if (!like && !separate_text) {
        if (!(model = cli_load_model_for(model_arg, (int)threads, &so, 1))) {
            status = cli_last_status();
            goto out;
        }
        vdx_clip_identity(model, &identity);
        so.model = &identity;
    }
    so.read_only = 1;
    vdx_error err = {{0}};
    vdx_store *store = vdx_store_open(&so, &err);
    if (!store) {
        vdx_clip_free(model);
        status = cli_fail(&err, "%s", err.message);
        goto out;
    }
    if (separate_text) {
        int failed;
        text_model = cli_load_text_model(text_arg, force_text, &so, vdx_store_model(store),
                                         (int)threads, &failed);
        if (!text_model) {
            vdx_store_close(store);
            status = cli_last_status();
            goto out;
        }
    }
    float *query = malloc((size_t)vdx_store_model(store)->dims * sizeof *query);
    int truncated = 0, rc;
    if (!query)
        rc = vdx_fail_kind(&err, VDX_ERR_NO_MEMORY, "out of memory");
    else if (like) {
        const char *ids[1] = {like};
        rc = vdx_store_get_vectors(store, ids, 1, query, &err);
        if (rc == 0 && append_exclude(like, strlen(like), &exclude, &n_exclude) != 0)
            rc = vdx_fail_kind(&err, VDX_ERR_NO_MEMORY, "out of memory");
    } else if (image)
        rc = embed_image(model, image, query, &err);
    else if (text_model)
        rc = vdx_text_model_embed(text_model, prompt, query, &truncated, &err);
    else
        rc = vdx_clip_embed_text(model, prompt, query, &truncated, &err);
    if (truncated)
        fprintf(stderr, "vdx: the prompt is longer than the text model's %d tokens; its end "
                "was cut\n", text_model ? vdx_text_model_max_tokens(text_model)
                                        : vdx_clip_get_config(model)->text.max_position_embeddings);
    vdx_hits hits = {0};
    if (rc == 0) {
        vdx_search_request req = {0};
        req.query = query;
        req.k = (int)k;
        req.offset = (int)offset;
        req.exclude_ids = (const char *const *)exclude;
        req.n_exclude = n_exclude;
        req.where = where;
        req.exact = exact;
        rc = vdx_store_search(store, &req, &hits, &err);
    }
    if (rc == 0) {
        print_hits(&hits, (int)offset, cli_stdout_is_tty() && !json, -1);
        status = 0;
    } else
        status = cli_fail(&err, "%s", err.message);
    vdx_hits_free(&hits);
    free(query);
    vdx_store_close(store);
    vdx_clip_free(model);
    vdx_text_model_free(text_model);
out:
    for (size_t i = 0; i < n_exclude; i++)
        free(exclude[i]);
    free(exclude);
    return status;
}
