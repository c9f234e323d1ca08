/* The SentencePiece Unigram tokenizer of XLM-RoBERTa (M-CLIP's text tower), as
 * sentencepiece 0.1.97 and transformers' slow XLMRobertaTokenizer encode (docs/mclip.md):
 *
 *   the `.model` protobuf (protobuf.c): pieces with scores and types, trainer_spec (model
 *   type, unk/bos/eos ids), normalizer_spec (precompiled charsmap, add_dummy_prefix,
 *   remove_extra_whitespaces, escape_whitespaces)
 *   → split the text on the literal special tokens <s> </s> <pad> <unk> <mask>
 *   → per chunk: normalise with the charsmap (a darts-clone double-array trie whose values
 *     index a blob of NUL-terminated replacements; the longest key wins; nothing is
 *     hard-coded, the table in the file is the nmt_nfkc rules), fold whitespace, ▁ for ' '
 *   → Viterbi over the normalised bytes in float32, ties keep the earlier path, a character
 *     no piece covers becomes <unk> at min_score − 10, consecutive unknowns merge
 *   → fairseq ids (spm id + 1; unknown 3), [<s>] + ids + [</s>], truncation.
 *
 * Pieces are found with an open-addressing hash table over their bytes, trying every
 * length up to the longest piece at each character: O(n · longest) per chunk. */
#include "vdx/sentencepiece.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/protobuf.h"
#include "common/hash.h"

enum { PIECE_NORMAL = 1, PIECE_UNKNOWN = 2, PIECE_CONTROL = 3, PIECE_USER_DEFINED = 4,
       PIECE_UNUSED = 5, PIECE_BYTE = 6 };
#define UNK_PENALTY 10.0f
#define SPACE_SYMBOL "\xe2\x96\x81" /* U+2581 ▁ */
#define MAX_PIECES (1 << 22)

typedef struct {
    uint32_t offset, length; /* into tok->pool (into tok->blob while loading) */
    float score;
    int type;
} piece;

typedef struct {
    int32_t id; /* spm id, -1 = empty slot */
} piece_slot;

struct vdx_spm {
    uint8_t *blob; /* the whole .model file; the charsmap points into it */
    char *pool;    /* every piece, NUL-terminated; piece.offset points here */
    piece *pieces;
    int n_pieces;
    piece_slot *table; /* matchable pieces by bytes */
    size_t table_mask;
    size_t longest;    /* bytes of the longest matchable piece */
    float unk_score;
    int unk_id;        /* spm id of the unknown piece */
    /* normalizer_spec */
    const uint32_t *trie; /* darts-clone units, little-endian (checked host order) */
    int trie_owned;       /* trie is a malloc'd aligned copy */
    uint32_t trie_units;
    const char *strings;  /* replacement strings, NUL-terminated each */
    size_t strings_size;
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
};

/* ---- hash table ------------------------------------------------------------------ */

static int32_t lookup(const vdx_spm *t, const uint8_t *s, size_t n)
{
    for (size_t i = hash_bytes(s, n) & t->table_mask;; i = (i + 1) & t->table_mask) {
        int32_t id = t->table[i].id;
        if (id < 0)
            return -1;
        const piece *p = &t->pieces[id];
        if (p->length == n && memcmp(t->pool + p->offset, s, n) == 0)
            return id;
    }
}

/* ---- loading ---------------------------------------------------------------------- */

static int read_piece(const pb_reader *parent, const pb_field *f, piece *out, vdx_error *err)
{
    pb_reader r = pb_reader_sub(parent, f);
    pb_field g;
    int rc, have_piece = 0;
    out->type = PIECE_NORMAL;
    out->score = 0;
    while ((rc = pb_next(&r, &g, err)) == 1) {
        if (g.number == 1) {
            if (pb_expect_bytes(&r, &g, "SentencePiece.piece", err))
                return -1;
            out->offset = (uint32_t)(g.data - r.base);
            out->length = (uint32_t)g.size;
            have_piece = 1;
        } else if (g.number == 2) {
            if (pb_get_float(&r, &g, "SentencePiece.score", &out->score, err))
                return -1;
            if (!isfinite(out->score)) /* it would decide every merge it meets */
                return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                                     "%s: piece at byte %zu has a score that is not a finite "
                                     "number", r.what, f->offset);
        } else if (g.number == 3) {
            int32_t type;
            if (pb_get_int32(&r, &g, "SentencePiece.type", &type, err))
                return -1;
            if (type < PIECE_NORMAL || type > PIECE_BYTE)
                return vdx_fail(err, "%s: piece at byte %zu has unknown type %d", r.what,
                                f->offset, (int)type);
            out->type = type;
        }
    }
    if (rc < 0)
        return -1;
    if (!have_piece || out->length == 0)
        return vdx_fail(err, "%s: piece at byte %zu has no text", r.what, f->offset);
    return 0;
}

static int read_trainer_spec(vdx_spm *t, const pb_reader *parent, const pb_field *f,
                             vdx_error *err)
{
    pb_reader r = pb_reader_sub(parent, f);
    pb_field g;
    int rc;
    t->unk_id = 0;
    while ((rc = pb_next(&r, &g, err)) == 1) {
        int32_t v;
        int b;
        switch (g.number) {
        case 3:
            if (pb_get_int32(&r, &g, "TrainerSpec.model_type", &v, err))
                return -1;
            if (v != 1)
                return vdx_fail(err, "%s: TrainerSpec.model_type is %d: only Unigram (1) "
                                "models are supported", r.what, (int)v);
            break;
        case 24:
            if (pb_get_bool(&r, &g, "TrainerSpec.treat_whitespace_as_suffix", &b, err))
                return -1;
            if (b)
                return vdx_fail(err, "%s: treat_whitespace_as_suffix is not supported", r.what);
            break;
        case 35:
            if (pb_get_bool(&r, &g, "TrainerSpec.byte_fallback", &b, err))
                return -1;
            if (b)
                return vdx_fail(err, "%s: byte_fallback models are not supported", r.what);
            break;
        case 40:
            if (pb_get_int32(&r, &g, "TrainerSpec.unk_id", &v, err))
                return -1;
            t->unk_id = v;
            break;
        default:
            break;
        }
    }
    return rc < 0 ? -1 : 0;
}

static int read_charsmap(vdx_spm *t, const pb_reader *r, const pb_field *f, vdx_error *err)
{
    if (f->size == 0) /* an empty charsmap is an identity normaliser */
        return 0;
    if (f->size < 4)
        return vdx_fail(err, "%s: precompiled_charsmap at byte %zu is %zu bytes, too short "
                        "for its header", r->what, f->offset, f->size);
    uint32_t trie_size = (uint32_t)f->data[0] | (uint32_t)f->data[1] << 8 |
                         (uint32_t)f->data[2] << 16 | (uint32_t)f->data[3] << 24;
    if (trie_size > f->size - 4 || trie_size % 4 != 0 || trie_size < 4)
        return vdx_fail(err, "%s: precompiled_charsmap at byte %zu: trie size %u does not fit "
                        "its %zu bytes", r->what, f->offset, trie_size, f->size);
    size_t trie_offset = (size_t)(f->data + 4 - r->base);
    /* The blob is a private copy: align the units by moving them if needed. */
    if (trie_offset % 4 != 0) {
        uint32_t *units = malloc(trie_size);
        if (!units)
            return vdx_fail(err, "%s: out of memory", r->what);
        memcpy(units, f->data + 4, trie_size);
        t->trie = units;
        t->trie_owned = 1;
    } else {
        t->trie = (const uint32_t *)(const void *)(f->data + 4);
    }
    t->trie_units = trie_size / 4;
    t->strings = (const char *)f->data + 4 + trie_size;
    t->strings_size = f->size - 4 - trie_size;
    if (t->strings_size && t->strings[t->strings_size - 1] != 0)
        return vdx_fail(err, "%s: precompiled_charsmap at byte %zu: its replacement strings do "
                        "not end with a NUL", r->what, f->offset);
    return 0;
}

static int read_normalizer_spec(vdx_spm *t, const pb_reader *parent, const pb_field *f,
                                vdx_error *err)
{
    pb_reader r = pb_reader_sub(parent, f);
    pb_field g;
    int rc;
    while ((rc = pb_next(&r, &g, err)) == 1) {
        switch (g.number) {
        case 2:
            if (pb_expect_bytes(&r, &g, "NormalizerSpec.precompiled_charsmap", err) ||
                read_charsmap(t, &r, &g, err))
                return -1;
            break;
        case 3:
            if (pb_get_bool(&r, &g, "NormalizerSpec.add_dummy_prefix", &t->add_dummy_prefix, err))
                return -1;
            break;
        case 4:
            if (pb_get_bool(&r, &g, "NormalizerSpec.remove_extra_whitespaces",
                            &t->remove_extra_whitespaces, err))
                return -1;
            break;
        case 5:
            if (pb_get_bool(&r, &g, "NormalizerSpec.escape_whitespaces", &t->escape_whitespaces,
                            err))
                return -1;
            break;
        default:
            break;
        }
    }
    return rc < 0 ? -1 : 0;
}

/* Copies the pieces into one pool of NUL-terminated strings (offsets were into the blob). */
static int build_pool(vdx_spm *t, const char *what, vdx_error *err)
{
    size_t total = 0;
    for (int id = 0; id < t->n_pieces; id++)
        total += t->pieces[id].length + 1;
    if (!(t->pool = malloc(total)))
        return vdx_fail(err, "%s: out of memory", what);
    size_t at = 0;
    for (int id = 0; id < t->n_pieces; id++) {
        piece *p = &t->pieces[id];
        if (memchr(t->blob + p->offset, 0, p->length))
            return vdx_fail(err, "%s: piece %d contains a NUL byte", what, id);
        memcpy(t->pool + at, t->blob + p->offset, p->length);
        t->pool[at + p->length] = 0;
        p->offset = (uint32_t)at;
        at += p->length + 1;
    }
    return 0;
}

static int build_table(vdx_spm *t, const char *what, vdx_error *err)
{
    size_t cap = 16;
    while (cap < (size_t)t->n_pieces * 2)
        cap <<= 1;
    t->table = malloc(cap * sizeof *t->table);
    if (!t->table)
        return vdx_fail(err, "%s: out of memory", what);
    memset(t->table, 0xff, cap * sizeof *t->table);
    t->table_mask = cap - 1;
    float min_score = 0;
    int have_normal = 0;
    for (int id = 0; id < t->n_pieces; id++) {
        const piece *p = &t->pieces[id];
        if (p->type == PIECE_USER_DEFINED || p->type == PIECE_BYTE)
            return vdx_fail(err, "%s: piece %d is %s: models with such pieces are not "
                            "supported", what, id,
                            p->type == PIECE_BYTE ? "a byte piece" : "user-defined");
        if (p->type == PIECE_NORMAL) {
            if (!have_normal || p->score < min_score)
                min_score = p->score;
            have_normal = 1;
        }
        if (p->type != PIECE_NORMAL && p->type != PIECE_UNUSED)
            continue;
        const uint8_t *s = (const uint8_t *)t->pool + p->offset;
        size_t i = hash_bytes(s, p->length) & t->table_mask;
        for (; t->table[i].id >= 0; i = (i + 1) & t->table_mask) {
            const piece *q = &t->pieces[t->table[i].id];
            if (q->length == p->length && memcmp(t->pool + q->offset, s, p->length) == 0)
                return vdx_fail(err, "%s: piece %d '%.*s' appears twice", what, id,
                                (int)p->length, (const char *)s);
        }
        t->table[i].id = id;
        if (p->length > t->longest)
            t->longest = p->length;
    }
    if (!have_normal)
        return vdx_fail(err, "%s: the model has no normal pieces", what);
    t->unk_score = min_score - UNK_PENALTY;
    return 0;
}

vdx_spm *vdx_spm_parse(const uint8_t *buf, size_t size, const char *what, vdx_error *err)
{
    if (size == 0) {
        vdx_fail(err, "%s: empty file, not a sentencepiece model", what);
        return NULL;
    }
    vdx_spm *t = calloc(1, sizeof *t);
    if (!t || !(t->blob = malloc(size ? size : 1))) {
        free(t);
        vdx_fail(err, "%s: out of memory", what);
        return NULL;
    }
    if (size)
        memcpy(t->blob, buf, size);
    t->add_dummy_prefix = t->remove_extra_whitespaces = t->escape_whitespaces = 1;
    pb_reader r = pb_reader_init(t->blob, size, what);
    pb_field f = {0};
    int rc, capacity = 0;
    while ((rc = pb_next(&r, &f, err)) == 1) {
        if (f.number == 1) {
            if (pb_expect_bytes(&r, &f, "ModelProto.pieces", err))
                goto fail;
            if (t->n_pieces == capacity) {
                if (capacity >= MAX_PIECES) {
                    vdx_fail(err, "%s: more than %d pieces", what, MAX_PIECES);
                    goto fail;
                }
                capacity = capacity ? 2 * capacity : 1024;
                piece *grown = realloc(t->pieces, (size_t)capacity * sizeof *grown);
                if (!grown) {
                    vdx_fail(err, "%s: out of memory", what);
                    goto fail;
                }
                t->pieces = grown;
            }
            if (read_piece(&r, &f, &t->pieces[t->n_pieces], err))
                goto fail;
            t->n_pieces++;
        } else if (f.number == 2) {
            if (pb_expect_bytes(&r, &f, "ModelProto.trainer_spec", err) ||
                read_trainer_spec(t, &r, &f, err))
                goto fail;
        } else if (f.number == 3) {
            if (pb_expect_bytes(&r, &f, "ModelProto.normalizer_spec", err) ||
                read_normalizer_spec(t, &r, &f, err))
                goto fail;
        }
    }
    if (rc < 0)
        goto fail;
    if (t->n_pieces < 4) {
        vdx_fail(err, "%s: %d pieces: not a sentencepiece model (expected <unk>, <s>, </s> "
                 "and the vocabulary)", what, t->n_pieces);
        goto fail;
    }
    if (t->unk_id < 0 || t->unk_id >= t->n_pieces || t->pieces[t->unk_id].type != PIECE_UNKNOWN) {
        vdx_fail(err, "%s: unk_id %d is not an UNKNOWN piece", what, t->unk_id);
        goto fail;
    }
    if (build_pool(t, what, err) || build_table(t, what, err))
        goto fail;
    return t;
fail:
    vdx_spm_free(t);
    return NULL;
}

vdx_spm *vdx_spm_load(const char *path, vdx_error *err)
{
    char *data;
    size_t size;
    if (vdx_read_file(path, &data, &size, err))
        return NULL;
    vdx_spm *t = vdx_spm_parse((const uint8_t *)data, size, path, err);
    free(data);
    return t;
}

void vdx_spm_free(vdx_spm *t)
{
    if (!t)
        return;
    if (t->trie_owned)
        free((void *)t->trie);
    free(t->pool);
    free(t->table);
    free(t->pieces);
    free(t->blob);
    free(t);
}

int vdx_spm_vocab_size(const vdx_spm *t) { return t->n_pieces + 2; }
int vdx_spm_mask_id(const vdx_spm *t) { return t->n_pieces + 1; }

const char *vdx_spm_id_to_piece(const vdx_spm *t, int32_t id)
{
    static const char *const fairseq_names[4] = {"<s>", "<pad>", "</s>", "<unk>"};
    if (id >= 0 && id < 4)
        return fairseq_names[id];
    if (id == t->n_pieces + 1)
        return "<mask>";
    if (id < 4 || id > t->n_pieces)
        return NULL;
    return t->pool + t->pieces[id - 1].offset;
}

/* ---- normalisation ---------------------------------------------------------------- */

/* A growing byte buffer. */
typedef struct {
    char *data;
    size_t size, capacity;
    int failed;
} buffer;

static void buf_append(buffer *b, const void *data, size_t n)
{
    if (b->failed)
        return;
    if (b->size + n + 1 > b->capacity) {
        size_t cap = b->capacity ? b->capacity : 64;
        while (cap < b->size + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->capacity = cap;
    }
    memcpy(b->data + b->size, data, n);
    b->size += n;
    b->data[b->size] = 0;
}

/* Length of the valid UTF-8 character at s (n bytes left), or 0 when it is malformed:
 * a bad lead or trail byte, an overlong form, a surrogate or a value above U+10FFFF. */
static size_t utf8_char_length(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* sentencepiece's NormalizePrefix: the longest charsmap key at s gives its replacement;
 * else one character is copied (a malformed byte becomes U+FFFD). Returns the bytes
 * consumed (>= 1), or 0 when the table points outside its strings. */
static size_t normalize_prefix(const vdx_spm *t, const uint8_t *s, size_t n, const char **repl,
                               size_t *repl_len)
{
    size_t longest = 0;
    uint32_t value = 0;
    if (t->trie) {
        const uint32_t *u = t->trie;
#define UNIT_OFFSET(x) (((x) >> 10) << (((x) & (1u << 9)) >> 6))
#define UNIT_LABEL(x) ((x) & ((1u << 31) | 0xffu))
#define UNIT_HAS_LEAF(x) (((x) >> 8) & 1u)
#define UNIT_VALUE(x) ((x) & ((1u << 31) - 1))
        uint32_t node = UNIT_OFFSET(u[0]);
        for (size_t k = 0; k < n; k++) {
            node ^= s[k];
            if (node >= t->trie_units)
                break;
            uint32_t unit = u[node];
            if (UNIT_LABEL(unit) != s[k])
                break;
            node ^= UNIT_OFFSET(unit);
            if (node >= t->trie_units)
                break;
            if (UNIT_HAS_LEAF(unit)) {
                longest = k + 1;
                value = UNIT_VALUE(u[node]);
            }
        }
#undef UNIT_OFFSET
#undef UNIT_LABEL
#undef UNIT_HAS_LEAF
#undef UNIT_VALUE
    }
    if (longest) {
        if (value >= t->strings_size)
            return 0;
        *repl = t->strings + value;
        *repl_len = strlen(*repl); /* the block ends with a NUL (checked at load) */
        return longest;
    }
    size_t len = utf8_char_length(s, n);
    if (!len) {
        *repl = "\xef\xbf\xbd";
        *repl_len = 3;
        return 1;
    }
    *repl = (const char *)s;
    *repl_len = len;
    return len;
}

/* sentencepiece's Normalizer::Normalize over s[0..n) (NUL bytes included). */
static int normalize(const vdx_spm *t, const uint8_t *s, size_t n, buffer *out, vdx_error *err)
{
    const char *r;
    size_t rl, used;
    out->size = 0;
    buf_append(out, "", 0);
#define PREFIX()                                                                             \
    do {                                                                                     \
        if (!(used = normalize_prefix(t, s, n, &r, &rl)))                                    \
            return vdx_fail(err, "sentencepiece model: precompiled_charsmap value points "  \
                            "outside its strings");                                         \
    } while (0)
    if (t->remove_extra_whitespaces)
        while (n) {
            PREFIX();
            if (!(rl == 1 && r[0] == ' '))
                break;
            s += used, n -= used;
        }
    if (!n)
        return out->failed ? vdx_fail(err, "out of memory") : 0;
    const char *space = t->escape_whitespaces ? SPACE_SYMBOL : " ";
    size_t space_len = strlen(space);
    if (t->add_dummy_prefix)
        buf_append(out, space, space_len);
    int prev_space = t->remove_extra_whitespaces;
    while (n) {
        PREFIX();
        if (prev_space)
            while (rl && *r == ' ')
                r++, rl--;
        if (rl) {
            for (size_t i = 0; i < rl; i++) {
                if (r[i] == ' ')
                    buf_append(out, space, space_len);
                else
                    buf_append(out, &r[i], 1);
            }
            prev_space = r[rl - 1] == ' ';
        }
        s += used, n -= used;
        if (!t->remove_extra_whitespaces)
            prev_space = 0;
    }
#undef PREFIX
    if (t->remove_extra_whitespaces)
        while (out->size >= space_len && memcmp(out->data + out->size - space_len, space,
                                                space_len) == 0)
            out->data[out->size -= space_len] = 0;
    return out->failed ? vdx_fail(err, "out of memory") : 0;
}

int vdx_spm_normalize(const vdx_spm *t, const char *text, char **out, vdx_error *err)
{
    buffer b = {0};
    if (normalize(t, (const uint8_t *)text, strlen(text), &b, err)) {
        free(b.data);
        return -1;
    }
    *out = b.data;
    return 0;
}

/* ---- segmentation ------------------------------------------------------------------ */

typedef struct {
    int32_t id;    /* spm id; -1: unset */
    int32_t start; /* byte where the piece ending here starts */
    float score;
} path_node;

/* A token of one chunk: spm id and the normalised bytes it covers. */
typedef struct {
    int32_t id;
    uint32_t start, length;
} token;

typedef struct {
    token *items;
    size_t count, capacity;
    int failed;
} token_list;

static void push_token(token_list *l, token tk)
{
    if (l->failed)
        return;
    if (l->count == l->capacity) {
        size_t cap = l->capacity ? 2 * l->capacity : 64;
        token *grown = realloc(l->items, cap * sizeof *grown);
        if (!grown) {
            l->failed = 1;
            return;
        }
        l->items = grown;
        l->capacity = cap;
    }
    l->items[l->count++] = tk;
}

/* sentencepiece's EncodeOptimized (Viterbi in float32) over s[0..n), then consecutive
 * unknowns merged; tokens are appended to `out` with starts relative to `base`. */
static int viterbi(const vdx_spm *t, const uint8_t *s, size_t n, token_list *out,
                   size_t base, vdx_error *err)
{
    if (n == 0)
        return 0;
    if (n > INT32_MAX - 1)
        return vdx_fail(err, "text too long to encode (%zu bytes)", n);
    path_node *best = malloc((n + 1) * sizeof *best);
    if (!best)
        return vdx_fail(err, "out of memory for %zu bytes of text", n);
    for (size_t i = 0; i <= n; i++)
        best[i] = (path_node){-1, -1, 0};
    best[0].start = 0;
    best[0].id = 0;
    /* Every step lands on a character boundary that a piece or an unknown reaches, so
     * best[pos] is always set when it is read. */
    for (size_t pos = 0; pos < n;) {
        float here = best[pos].score;
        uint8_t lead = s[pos];
        size_t mblen = lead < 0xc0 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
        if (mblen > n - pos)
            mblen = n - pos;
        int has_single = 0;
        size_t limit = t->longest < n - pos ? t->longest : n - pos;
        for (size_t len = 1; len <= limit; len++) {
            int32_t id = lookup(t, s + pos, len);
            if (id < 0 || t->pieces[id].type == PIECE_UNUSED)
                continue;
            float cand = t->pieces[id].score + here;
            path_node *end = &best[pos + len];
            if (end->start < 0 || cand > end->score)
                *end = (path_node){id, (int32_t)pos, cand};
            if (len == mblen)
                has_single = 1;
        }
        if (!has_single) {
            float cand = t->unk_score + here;
            path_node *end = &best[pos + mblen];
            if (end->start < 0 || cand > end->score)
                *end = (path_node){t->unk_id, (int32_t)pos, cand};
        }
        pos += mblen;
    }
    /* Backtrack into a reversed list, then append in order, merging unknown runs. */
    size_t count = 0;
    for (size_t e = n; e > 0; e = (size_t)best[e].start)
        count++;
    token *rev = malloc(count * sizeof *rev);
    if (!rev) {
        free(best);
        return vdx_fail(err, "out of memory");
    }
    size_t k = 0;
    for (size_t e = n; e > 0; e = (size_t)best[e].start)
        rev[k++] = (token){best[e].id, (uint32_t)(base + (size_t)best[e].start),
                           (uint32_t)(e - (size_t)best[e].start)};
    free(best);
    for (size_t i = count; i-- > 0;) {
        token tk = rev[i];
        if (tk.id == t->unk_id && out->count && out->items[out->count - 1].id == t->unk_id &&
            out->items[out->count - 1].start + out->items[out->count - 1].length == tk.start)
            out->items[out->count - 1].length += tk.length;
        else
            push_token(out, tk);
    }
    free(rev);
    return out->failed ? vdx_fail(err, "out of memory") : 0;
}

/* ---- encoding --------------------------------------------------------------------- */

/* The literal special tokens transformers splits the text on, with their fairseq ids
 * (<mask> gets n_pieces + 1). */
static const char *const specials[] = {"<s>", "</s>", "<pad>", "<unk>", "<mask>"};
static const int32_t special_ids[] = {VDX_SPM_BOS, VDX_SPM_EOS, VDX_SPM_PAD, VDX_SPM_UNK, -1};
#define SPECIAL_ID -2 /* token.id marking a fairseq special id in token.start */

/* Where the next special token starts at or after text (NULL if none); *which gets it. */
static const char *next_special(const char *text, int *which)
{
    const char *best = NULL;
    for (int i = 0; i < 5; i++) {
        const char *at = strstr(text, specials[i]);
        if (at && (!best || at < best || (at == best && strlen(specials[i]) >
                                                            strlen(specials[*which])))) {
            best = at;
            *which = i;
        }
    }
    return best;
}

static int32_t fairseq_id(const vdx_spm *t, const token *tk)
{
    if (tk->id == SPECIAL_ID)
        return (int32_t)tk->start;
    if (tk->id == t->unk_id)
        return VDX_SPM_UNK;
    return tk->id + 1;
}

int vdx_spm_encode(const vdx_spm *t, const char *text, int max_len, int32_t *ids,
                   int *n_ids, int *truncated, int *n_untruncated, char **pieces,
                   vdx_error *err)
{
    if (max_len < 2)
        return vdx_fail(err, "encode: max_len %d is below 2 (<s> and </s>)", max_len);
    buffer norm = {0}, chunk_norm = {0};
    token_list tokens = {0};
    int rc = 0;
    const char *at = text;
    while (rc == 0) {
        int which = 0;
        const char *special = next_special(at, &which);
        size_t len = special ? (size_t)(special - at) : strlen(at);
        if ((rc = normalize(t, (const uint8_t *)at, len, &chunk_norm, err)) != 0)
            break;
        size_t base = norm.size;
        buf_append(&norm, chunk_norm.data, chunk_norm.size);
        if (norm.failed) {
            rc = vdx_fail(err, "out of memory");
            break;
        }
        if ((rc = viterbi(t, (const uint8_t *)norm.data + base, chunk_norm.size, &tokens, base,
                          err)) != 0)
            break;
        if (!special)
            break;
        int32_t id = special_ids[which] >= 0 ? special_ids[which] : t->n_pieces + 1;
        push_token(&tokens, (token){SPECIAL_ID, (uint32_t)id, 0});
        at = special + strlen(specials[which]);
    }
    if (rc == 0 && tokens.failed)
        rc = vdx_fail(err, "out of memory");
    if (rc == 0) {
        size_t keep = tokens.count;
        int cut = keep > (size_t)max_len - 2;
        if (cut)
            keep = (size_t)max_len - 2;
        int n = 0;
        ids[n] = VDX_SPM_BOS;
        if (pieces)
            pieces[n] = strdup("<s>");
        n++;
        for (size_t i = 0; i < keep; i++, n++) {
            ids[n] = fairseq_id(t, &tokens.items[i]);
            if (!pieces)
                continue;
            const token *tk = &tokens.items[i];
            if (tk->id == SPECIAL_ID || tk->id != t->unk_id)
                pieces[n] = strdup(vdx_spm_id_to_piece(t, ids[n]));
            else
                pieces[n] = strndup(norm.data + tk->start, tk->length);
        }
        ids[n] = VDX_SPM_EOS;
        if (pieces)
            pieces[n] = strdup("</s>");
        n++;
        *n_ids = n;
        if (truncated)
            *truncated = cut;
        if (n_untruncated)
            *n_untruncated = (int)(tokens.count + 2 > INT32_MAX ? INT32_MAX : tokens.count + 2);
        if (pieces)
            for (int i = 0; i < n; i++)
                if (!pieces[i]) {
                    vdx_spm_free_pieces(pieces, n);
                    rc = vdx_fail(err, "out of memory");
                    break;
                }
    }
    free(norm.data);
    free(chunk_norm.data);
    free(tokens.items);
    return rc;
}

void vdx_spm_free_pieces(char **pieces, int n)
{
    for (int i = 0; i < n; i++) {
        free(pieces[i]);
        pieces[i] = NULL;
    }
}
