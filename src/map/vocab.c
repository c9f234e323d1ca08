/* The vocabulary that names the map's clusters (CLIP zero-shot naming): visual nouns
 * taken from WordNet (Debian's wordnet-base: data.noun for the hypernym graph, index.noun
 * for each lemma's most frequent sense and its count of tagged senses), embedded once
 * with the text tower as "a photo of a WORD" and stored beside the collection
 * (map-vocab.bin) so a rebuild of the map does not embed them again.
 *
 * map-vocab.bin: "VDXVOC01", u32 n, u32 dims, u16 model-name length + name, n × (u16
 * length + word), n*dims f32, u64 FNV-1a of the bytes before it. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/strbuf.h"
#include "vdx/map.h"

#define VOCAB_MAGIC "VDXVOC01"
#define VOCAB_FILE "map-vocab.bin"
#define PHYSICAL_ENTITY 1930 /* physical_entity.n.01 in WordNet 3.0's data.noun */

void vdx_map_vocab_free(vdx_map_vocab *v)
{
    if (!v)
        return;
    for (int i = 0; i < v->n && v->words; i++)
        free(v->words[i]);
    free(v->words);
    free(v->vectors);
    memset(v, 0, sizeof *v);
}

/* data.noun as a sorted array of synsets (the file is in offset order), each with its
 * hypernyms (@ and @i pointers) in one shared array. */
typedef struct synset {
    uint32_t offset;
    int32_t first, count; /* into the hypernym array */
    int8_t physical;      /* -1 unknown, 0 no, 1 yes, 2 being visited */
} synset;

typedef struct wordnet {
    synset *s;
    size_t n, cap;
    uint32_t *hyp;
    size_t n_hyp, cap_hyp;
} wordnet;

static synset *find_synset(wordnet *w, uint32_t off)
{
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w->s[mid].offset < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->n && w->s[lo].offset == off ? &w->s[lo] : NULL;
}

static int is_physical(wordnet *w, synset *s, int depth)
{
    if (s->offset == PHYSICAL_ENTITY)
        return 1;
    if (s->physical == 0 || s->physical == 1)
        return s->physical;
    if (s->physical == 2 || depth > 64)
        return 0; /* a cycle: WordNet has none, a damaged file might */
    s->physical = 2;
    int r = 0;
    for (int i = 0; i < s->count && !r; i++) {
        synset *h = find_synset(w, w->hyp[s->first + i]);
        if (h && is_physical(w, h, depth + 1))
            r = 1;
    }
    s->physical = (int8_t)r;
    return r;
}

static int read_data_noun(const char *path, wordnet *w, vdx_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return vdx_fail_errno(err, errno, "%s: cannot open: %s (Debian: apt-get install "
                              "wordnet-base)", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    long row = 0;
    int rc = 0;
    while (getline(&line, &cap, f) > 0) {
        row++;
        if (line[0] == ' ')
            continue; /* the licence */
        char *save, *tok = strtok_r(line, " ", &save);
        char *fields[4];
        int nf = 0;
        fields[nf++] = tok;
        while (nf < 4 && (tok = strtok_r(NULL, " ", &save)))
            fields[nf++] = tok;
        if (nf < 4) {
            rc = vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s:%ld: too few fields", path, row);
            break;
        }
        long words = strtol(fields[3], NULL, 16);
        for (long i = 0; i < 2 * words; i++)
            strtok_r(NULL, " ", &save);
        tok = strtok_r(NULL, " ", &save);
        long ptrs = tok ? strtol(tok, NULL, 10) : -1;
        if (ptrs < 0) {
            rc = vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s:%ld: no pointer count", path, row);
            break;
        }
        if (w->n == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 65536;
            synset *ns = realloc(w->s, w->cap * sizeof *ns);
            if (!ns) {
                rc = vdx_fail_oom(err, "for WordNet");
                break;
            }
            w->s = ns;
        }
        synset *s = &w->s[w->n++];
        *s = (synset){(uint32_t)strtoul(fields[0], NULL, 10), (int32_t)w->n_hyp, 0, -1};
        for (long p = 0; p < ptrs; p++) {
            char *sym = strtok_r(NULL, " ", &save), *off = strtok_r(NULL, " ", &save);
            strtok_r(NULL, " ", &save);
            strtok_r(NULL, " ", &save);
            if (!sym || !off)
                break;
            if (strcmp(sym, "@") != 0 && strcmp(sym, "@i") != 0)
                continue;
            if (w->n_hyp == w->cap_hyp) {
                w->cap_hyp = w->cap_hyp ? 2 * w->cap_hyp : 65536;
                uint32_t *nh = realloc(w->hyp, w->cap_hyp * sizeof *nh);
                if (!nh) {
                    rc = vdx_fail_oom(err, "for WordNet");
                    goto done;
                }
                w->hyp = nh;
            }
            w->hyp[w->n_hyp++] = (uint32_t)strtoul(off, NULL, 10);
            s->count++;
        }
    }
done:
    free(line);
    fclose(f);
    return rc;
}

static int word_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int vdx_map_vocab_wordnet(const char *dir, int min_tagged, vdx_map_vocab *vocab, vdx_error *err)
{
    memset(vocab, 0, sizeof *vocab);
    char path[4096];
    wordnet w = {0};
    snprintf(path, sizeof path, "%s/data.noun", dir);
    if (read_data_noun(path, &w, err) != 0) {
        free(w.s), free(w.hyp);
        return -1;
    }
    /* data.noun is in offset order already */
    snprintf(path, sizeof path, "%s/index.noun", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        free(w.s), free(w.hyp);
        return vdx_fail_errno(err, errno, "%s: cannot open: %s", path, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0, nwords = 0, wcap = 0;
    char **words = NULL;
    int rc = 0;
    while (getline(&line, &cap, f) > 0) {
        if (line[0] == ' ')
            continue;
        /* lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offsets... */
        char *save, *lemma = strtok_r(line, " ", &save);
        strtok_r(NULL, " ", &save);
        strtok_r(NULL, " ", &save);
        char *pc = strtok_r(NULL, " ", &save);
        if (!lemma || !pc)
            continue;
        long ptrs = strtol(pc, NULL, 10);
        for (long i = 0; i < ptrs; i++)
            strtok_r(NULL, " ", &save);
        strtok_r(NULL, " ", &save);
        char *tag = strtok_r(NULL, " ", &save), *first = strtok_r(NULL, " \n", &save);
        if (!tag || !first || strtol(tag, NULL, 10) < min_tagged)
            continue;
        int alpha = 1;
        for (const char *c = lemma; *c; c++)
            if (!isalpha((unsigned char)*c))
                alpha = 0;
        if (!alpha)
            continue;
        synset *s = find_synset(&w, (uint32_t)strtoul(first, NULL, 10));
        if (!s || !is_physical(&w, s, 0))
            continue;
        if (nwords == wcap) {
            wcap = wcap ? 2 * wcap : 1024;
            char **nw = realloc(words, wcap * sizeof *nw);
            if (!nw) {
                rc = vdx_fail_oom(err, "for the vocabulary");
                break;
            }
            words = nw;
        }
        if (!(words[nwords] = strdup(lemma))) {
            rc = vdx_fail_oom(err, "for the vocabulary");
            break;
        }
        nwords++;
    }
    free(line);
    fclose(f);
    free(w.s), free(w.hyp);
    vocab->words = words;
    vocab->n = (int)nwords;
    if (rc != 0) {
        vdx_map_vocab_free(vocab);
        return -1;
    }
    if (nwords == 0)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: no visual nouns found", dir);
    qsort(words, nwords, sizeof *words, word_cmp);
    return 0;
}

int vdx_map_vocab_embed(const vdx_text_model *model, vdx_map_vocab *vocab,
                        void (*on_progress)(const char *stage, double fraction, void *user),
                        void *user, vdx_error *err)
{
    int dims = vdx_text_model_dims(model);
    float *v = malloc((size_t)(vocab->n ? vocab->n : 1) * dims * sizeof *v);
    if (!v)
        return vdx_fail_oom(err, "for %d vocabulary vectors", vocab->n);
    for (int i = 0; i < vocab->n; i++) {
        char prompt[512];
        snprintf(prompt, sizeof prompt, "a photo of a %s", vocab->words[i]);
        float *o = v + (int64_t)i * dims;
        if (vdx_text_model_embed(model, prompt, o, NULL, err) != 0) {
            free(v);
            return vdx_error_prefix(err, "embedding the vocabulary word '%s'", vocab->words[i]);
        }
        double norm = 0;
        for (int j = 0; j < dims; j++)
            norm += (double)o[j] * o[j];
        norm = norm > 0 ? 1.0 / sqrt(norm) : 0;
        for (int j = 0; j < dims; j++)
            o[j] = (float)(o[j] * norm);
        if (on_progress && ((i & 31) == 31 || i + 1 == vocab->n))
            on_progress("vocabulary", (double)(i + 1) / vocab->n, user);
    }
    free(vocab->vectors);
    vocab->vectors = v;
    vocab->dims = dims;
    snprintf(vocab->model, sizeof vocab->model, "%s", vdx_text_model_name(model));
    return 0;
}

int vdx_map_vocab_save(vdx_store *store, const vdx_map_vocab *v, vdx_error *err)
{
    strbuf b = {0};
    uint32_t n = (uint32_t)v->n, dims = (uint32_t)v->dims;
    uint16_t ml = (uint16_t)strlen(v->model);
    strbuf_bytes(&b, VOCAB_MAGIC, 8);
    strbuf_bytes(&b, &n, 4);
    strbuf_bytes(&b, &dims, 4);
    strbuf_bytes(&b, &ml, 2);
    strbuf_bytes(&b, v->model, ml);
    for (int i = 0; i < v->n; i++) {
        uint16_t l = (uint16_t)strlen(v->words[i]);
        strbuf_bytes(&b, &l, 2);
        strbuf_bytes(&b, v->words[i], l);
    }
    strbuf_bytes(&b, v->vectors, (size_t)v->n * v->dims * sizeof(float));
    uint64_t sum = hash_bytes(b.data, b.len);
    strbuf_bytes(&b, &sum, 8);
    if (b.oom) {
        strbuf_free(&b);
        return vdx_fail_oom(err, "for the vocabulary file");
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", vdx_store_dir(store), VOCAB_FILE);
    int rc = vdx_write_file_atomic(path, b.data, b.len, err);
    strbuf_free(&b);
    return rc;
}

int vdx_map_vocab_load(vdx_store *store, vdx_map_vocab *v, vdx_error *err)
{
    memset(v, 0, sizeof *v);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", vdx_store_dir(store), VOCAB_FILE);
    char *data;
    size_t size;
    if (vdx_read_file(path, &data, &size, err) != 0)
        return -1;
    const char *why = NULL;
    size_t off = 0;
    uint64_t sum;
    uint32_t n, dims;
    uint16_t ml;
    if (size < 26 || memcmp(data, VOCAB_MAGIC, 8) != 0) {
        why = "not a vocabulary file (bad magic)";
        goto bad;
    }
    memcpy(&sum, data + size - 8, 8);
    if (sum != hash_bytes(data, size - 8)) {
        why = "checksum mismatch", off = size - 8;
        goto bad;
    }
    size -= 8;
    memcpy(&n, data + 8, 4);
    memcpy(&dims, data + 12, 4);
    memcpy(&ml, data + 16, 2);
    off = 18;
    if (ml >= sizeof v->model || ml > size - off || dims == 0 || dims > 65536 ||
        n > (size - off) / 2) {
        why = "bad header";
        goto bad;
    }
    memcpy(v->model, data + off, ml);
    v->model[ml] = 0;
    off += ml;
    if (!(v->words = calloc(n ? n : 1, sizeof *v->words))) {
        free(data);
        return vdx_fail_oom(err, "for the vocabulary");
    }
    v->dims = (int)dims;
    for (uint32_t i = 0; i < n; i++) {
        uint16_t l;
        if (size - off < 2 || (memcpy(&l, data + off, 2), l > size - off - 2)) {
            why = "truncated word";
            goto bad;
        }
        off += 2;
        if (!(v->words[i] = strndup(data + off, l))) {
            free(data);
            vdx_map_vocab_free(v);
            return vdx_fail_oom(err, "for the vocabulary");
        }
        v->n = (int)i + 1;
        off += l;
    }
    if (size - off != (size_t)n * dims * sizeof(float)) {
        why = "vector block of the wrong size";
        goto bad;
    }
    if (!(v->vectors = malloc((size_t)(n ? n : 1) * dims * sizeof(float)))) {
        free(data);
        vdx_map_vocab_free(v);
        return vdx_fail_oom(err, "for the vocabulary");
    }
    memcpy(v->vectors, data + off, (size_t)n * dims * sizeof(float));
    free(data);
    return 0;
bad:
    free(data);
    vdx_map_vocab_free(v);
    return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: %s at byte %zu", path, why, off);
}
