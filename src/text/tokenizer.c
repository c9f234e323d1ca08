/* CLIP's byte-level BPE tokenizer, matching what transformers' CLIPProcessor uses by default
 * (the "fast" CLIPTokenizerFast of the tokenizers library; docs/clip-model.md, "Tokenizer"):
 *
 *   NFC → every run of Unicode whitespace becomes one space → per-character lowercase
 *   (Rust's char::to_lowercase: full mapping, no context, so Σ → σ and İ → i + U+0307)
 *   → the CLIP pre-tokenizer `'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`
 *   (a hand-written scanner over code points; whitespace is dropped) → each piece's UTF-8
 *   bytes as GPT-2 byte symbols, the last one suffixed "</w>" → BPE by merge rank →
 *   [bos] + ids[:max_len-2] + [eos].
 *
 * The slow Python CLIPTokenizer without ftfy differs (it isolates CJK characters and drops
 * control characters); the golden ids in fixtures/golden/clip-tiny/texts.json follow the
 * fast one, and so does this file. User text is only ever text: "<|endoftext|>" typed by a
 * user is split like any other characters.
 *
 * BPE works on vocabulary ids, not strings: loading resolves every merge "A B" into
 * (id(A), id(B)) → (rank, id(AB)) in one hash table and the 256 byte symbols (plain and with
 * "</w>") into two arrays, so the vocabulary itself is not needed after loading. Merges are
 * applied lowest rank first, leftmost first among equal ranks, with a binary heap over a
 * linked list of symbols (as tokenizers' Word::merge_all does), so a long piece costs
 * O(n log n). Encoding only reads the loaded tables and allocates its own scratch memory, so
 * any number of threads may encode with one tokenizer at once. */
#include "vdx/tokenizer.h"
#include "common/hash.h"
#include "common/json_check.h"
#include "common/text.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* transformers reads merges.txt as lines[1 : 49152 - 256 - 2 + 1]: at most this many merges. */
#define CLIP_MAX_MERGES (49152 - 256 - 2)
#define END_OF_WORD "</w>"

/* ---- hash tables ------------------------------------------------------------------------ */

static uint64_t hash_pair(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return key;
}

static size_t table_capacity(size_t count)
{
    size_t cap = 16;
    while (cap < count * 2)
        cap <<= 1;
    return cap;
}

/* vocab.json: symbol → id, used while loading only. Keys point into the parsed JSON. */
typedef struct {
    const char *symbol; /* NULL: empty slot */
    size_t length;
    int32_t id;
} vocab_slot;

typedef struct {
    vocab_slot *slots;
    size_t mask;
} vocab_table;

static vocab_slot *vocab_find_slot(const vocab_table *vocab, const char *symbol, size_t length)
{
    size_t i = hash_bytes(symbol, length) & vocab->mask;
    while (vocab->slots[i].symbol &&
           !(vocab->slots[i].length == length && memcmp(vocab->slots[i].symbol, symbol, length) == 0))
        i = (i + 1) & vocab->mask;
    return &vocab->slots[i];
}

static int32_t vocab_lookup(const vocab_table *vocab, const char *symbol, size_t length)
{
    const vocab_slot *slot = vocab_find_slot(vocab, symbol, length);
    return slot->symbol ? slot->id : -1;
}

/* Merges: (left id, right id) → rank and merged id. */
typedef struct {
    uint64_t pair; /* EMPTY_PAIR: empty slot */
    int32_t rank;
    int32_t merged;
} merge_slot;

#define EMPTY_PAIR UINT64_MAX

static uint64_t pair_key(int32_t left, int32_t right)
{
    return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

struct vdx_tokenizer {
    int32_t byte_id[256];          /* id of the byte's GPT-2 character */
    int32_t byte_end_id[256];      /* id of that character followed by "</w>" */
    merge_slot *merges;
    size_t merge_mask;
};

static merge_slot *merge_find_slot(merge_slot *slots, size_t mask, uint64_t pair)
{
    size_t i = hash_pair(pair) & mask;
    while (slots[i].pair != EMPTY_PAIR && slots[i].pair != pair)
        i = (i + 1) & mask;
    return &slots[i];
}

static const merge_slot *merge_lookup(const vdx_tokenizer *tok, int32_t left, int32_t right)
{
    const merge_slot *slot = merge_find_slot(tok->merges, tok->merge_mask, pair_key(left, right));
    return slot->pair == EMPTY_PAIR ? NULL : slot;
}

/* ---- GPT-2 byte → unicode --------------------------------------------------------------- */

/* Bytes 33–126, 161–172 and 174–255 stand for themselves; the other 68, in byte order,
 * become U+0100, U+0101, ... Writes the character's UTF-8 (1 or 2 bytes), returns its length. */
static int byte_symbol(int byte, char out[2])
{
    int code_point;
    if ((byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255)) {
        code_point = byte;
    } else {
        int shifted = 0; /* how many unprintable bytes come before this one */
        for (int b = 0; b < byte; b++)
            if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)))
                shifted++;
        code_point = 256 + shifted;
    }
    if (code_point < 0x80) {
        out[0] = (char)code_point;
        return 1;
    }
    out[0] = (char)(0xC0 | code_point >> 6);
    out[1] = (char)(0x80 | (code_point & 0x3F));
    return 2;
}

/* ---- loading ---------------------------------------------------------------------------- */

/* A file's text quoted in a refusal: at most 64 bytes, cut between characters (a message
 * about UTF-8 input stays UTF-8), as the precision and pointer of a "%.*s". */
#define QUOTED(s, len) (int)utf8_prefix((s), (len), 64), (s)

static int load_vocab(const char *path, cJSON **json_out, vocab_table *vocab, vdx_error *err)
{
    cJSON *json = json_read_file(path, VDX_ERR_CORRUPT, err);
    if (!json)
        return -1;
    *json_out = json;
    if (!cJSON_IsObject(json))
        return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: expected a JSON object mapping symbols to ids", path);

    size_t count = (size_t)cJSON_GetArraySize(json);
    vocab->mask = table_capacity(count) - 1;
    vocab->slots = calloc(vocab->mask + 1, sizeof *vocab->slots);
    if (!vocab->slots)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", path);
    size_t index = 0;
    for (const cJSON *item = json->child; item; item = item->next, index++) {
        double value = cJSON_IsNumber(item) ? item->valuedouble : -1;
        if (value < 0 || value > INT32_MAX || value != (double)(int32_t)value)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: entry %zu (\"%.*s\"): the id must be a non-negative integer",
                            path, index + 1, QUOTED(item->string, strlen(item->string)));
        size_t length = strlen(item->string);
        vocab_slot *slot = vocab_find_slot(vocab, item->string, length);
        if (slot->symbol)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: entry %zu: symbol \"%.*s\" appears twice", path, index + 1,
                            QUOTED(item->string, length));
        *slot = (vocab_slot){item->string, length, (int32_t)value};
    }

    static const struct { const char *symbol; int32_t id; } specials[] = {
        {"<|startoftext|>", VDX_TOKEN_BOS}, {"<|endoftext|>", VDX_TOKEN_EOS}};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        int32_t id = vocab_lookup(vocab, specials[i].symbol, strlen(specials[i].symbol));
        if (id != specials[i].id) {
            if (id < 0)
                return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: missing the special token %s (id %d)", path,
                                specials[i].symbol, (int)specials[i].id);
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: special token %s has id %d, CLIP expects %d", path,
                            specials[i].symbol, (int)id, (int)specials[i].id);
        }
    }
    return 0;
}

static int resolve_byte_symbols(vdx_tokenizer *tok, const vocab_table *vocab, const char *path,
                                vdx_error *err)
{
    for (int byte = 0; byte < 256; byte++) {
        char symbol[2 + sizeof END_OF_WORD];
        int length = byte_symbol(byte, symbol);
        memcpy(symbol + length, END_OF_WORD, sizeof END_OF_WORD);
        size_t with_suffix = (size_t)length + strlen(END_OF_WORD);
        tok->byte_id[byte] = vocab_lookup(vocab, symbol, (size_t)length);
        tok->byte_end_id[byte] = vocab_lookup(vocab, symbol, with_suffix);
        if (tok->byte_id[byte] < 0 || tok->byte_end_id[byte] < 0)
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: missing the symbol \"%.*s\" of byte 0x%02x", path,
                            (int)(tok->byte_id[byte] < 0 ? (size_t)length : with_suffix), symbol,
                            byte);
    }
    return 0;
}

/* Splits one merges.txt line into its two symbols; returns 0 when it is exactly "A B"
 * (spaces or tabs between, a trailing '\r' tolerated as Python's str.split() does). */
static int split_merge_line(const char *line, size_t length, const char **left, size_t *left_len,
                            const char **right, size_t *right_len)
{
    const char *parts[3];
    size_t part_len[3];
    int count = 0;
    size_t i = 0;
    while (i < length) {
        while (i < length && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            i++;
        if (i == length)
            break;
        size_t start = i;
        while (i < length && line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            i++;
        if (count == 2)
            return -1;
        parts[count] = line + start;
        part_len[count++] = i - start;
    }
    if (count != 2)
        return -1;
    *left = parts[0];
    *left_len = part_len[0];
    *right = parts[1];
    *right_len = part_len[1];
    return 0;
}

static int load_merges(vdx_tokenizer *tok, const char *path, const vocab_table *vocab,
                       vdx_error *err)
{
    char *data;
    size_t size;
    if (vdx_read_file(path, &data, &size, err) != 0)
        return -1;
    /* transformers strips the file before splitting it into lines */
    while (size > 0 && (data[size - 1] == '\n' || data[size - 1] == '\r' || data[size - 1] == ' ' ||
                        data[size - 1] == '\t'))
        data[--size] = 0;

    size_t line_count = 0;
    for (size_t i = 0; i < size; i++)
        line_count += data[i] == '\n';
    size_t merge_count = line_count < CLIP_MAX_MERGES ? line_count : CLIP_MAX_MERGES;
    tok->merge_mask = table_capacity(merge_count) - 1;
    tok->merges = malloc((tok->merge_mask + 1) * sizeof *tok->merges);
    char *joined = malloc(size + 1);
    if (!tok->merges || !joined) {
        free(joined);
        free(data);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    for (size_t i = 0; i <= tok->merge_mask; i++)
        tok->merges[i].pair = EMPTY_PAIR;

    int status = 0;
    const char *line = data;
    for (int line_no = 1; line && line_no <= (int)merge_count + 1; line_no++) {
        const char *newline = memchr(line, '\n', size - (size_t)(line - data));
        size_t length = newline ? (size_t)(newline - line) : size - (size_t)(line - data);
        if (line_no == 1) {
            if (length < 8 || memcmp(line, "#version", 8) != 0) {
                status = vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: line 1: expected the \"#version\" header, got \"%.*s\"",
                                  path, QUOTED(line, length));
                break;
            }
        } else {
            const char *left, *right;
            size_t left_len, right_len;
            if (split_merge_line(line, length, &left, &left_len, &right, &right_len) != 0) {
                status = vdx_fail_kind(err, VDX_ERR_CORRUPT,
                                  "%s: line %d: expected two symbols separated by a space, got \"%.*s\"",
                                  path, line_no, QUOTED(line, length));
                break;
            }
            memcpy(joined, left, left_len);
            memcpy(joined + left_len, right, right_len);
            int32_t left_id = vocab_lookup(vocab, left, left_len);
            int32_t right_id = vocab_lookup(vocab, right, right_len);
            int32_t merged_id = vocab_lookup(vocab, joined, left_len + right_len);
            const char *missing = left_id < 0 ? left : right_id < 0 ? right : merged_id < 0 ? joined : NULL;
            if (missing) {
                size_t missing_len = left_id < 0 ? left_len : right_id < 0 ? right_len : left_len + right_len;
                status = vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: line %d: symbol \"%.*s\" is not in vocab.json", path,
                                  line_no, QUOTED(missing, missing_len));
                break;
            }
            merge_slot *slot = merge_find_slot(tok->merges, tok->merge_mask, pair_key(left_id, right_id));
            if (slot->pair != EMPTY_PAIR) {
                status = vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: line %d: merge \"%.*s %.*s\" repeats line %d", path,
                                  line_no, QUOTED(left, left_len), QUOTED(right, right_len),
                                  (int)slot->rank + 2);
                break;
            }
            *slot = (merge_slot){pair_key(left_id, right_id), line_no - 2, merged_id};
        }
        line = newline ? newline + 1 : NULL;
    }
    free(joined);
    free(data);
    return status;
}

vdx_tokenizer *vdx_tokenizer_load(const char *model_dir, vdx_error *err)
{
    if (!model_dir) {
        vdx_fail(err, "tokenizer: no model directory given");
        return NULL;
    }
    char vocab_path[4096], merges_path[4096];
    if ((size_t)snprintf(vocab_path, sizeof vocab_path, "%s/vocab.json", model_dir) >=
            sizeof vocab_path ||
        (size_t)snprintf(merges_path, sizeof merges_path, "%s/merges.txt", model_dir) >=
            sizeof merges_path) {
        vdx_fail(err, "tokenizer: model directory path too long (%zu bytes): %s",
                 strlen(model_dir), model_dir);
        return NULL;
    }

    vdx_tokenizer *tok = calloc(1, sizeof *tok);
    cJSON *json = NULL;
    vocab_table vocab = {0};
    if (!tok) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "tokenizer: out of memory");
        return NULL;
    }
    int status = load_vocab(vocab_path, &json, &vocab, err);
    if (status == 0)
        status = resolve_byte_symbols(tok, &vocab, vocab_path, err);
    if (status == 0)
        status = load_merges(tok, merges_path, &vocab, err);
    free(vocab.slots);
    cJSON_Delete(json);
    if (status != 0) {
        vdx_tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

void vdx_tokenizer_free(vdx_tokenizer *tok)
{
    if (!tok)
        return;
    free(tok->merges);
    free(tok);
}

/* ---- BPE -------------------------------------------------------------------------------- */

typedef struct {
    int32_t rank;
    int32_t position; /* index of the left symbol */
    int32_t left, right;
} merge_candidate;

/* Per-call working memory, grown to the longest piece met so far. */
typedef struct {
    int32_t *symbol, *next, *prev;
    merge_candidate *heap;
    size_t capacity; /* symbols */
} bpe_scratch;

static int scratch_reserve(bpe_scratch *scratch, size_t symbols)
{
    if (symbols <= scratch->capacity)
        return 0;
    size_t capacity = scratch->capacity ? scratch->capacity : 64;
    while (capacity < symbols)
        capacity *= 2;
    free(scratch->symbol);
    free(scratch->next);
    free(scratch->prev);
    free(scratch->heap);
    scratch->symbol = malloc(capacity * sizeof *scratch->symbol);
    scratch->next = malloc(capacity * sizeof *scratch->next);
    scratch->prev = malloc(capacity * sizeof *scratch->prev);
    /* n-1 initial pairs, and each merge adds at most two */
    scratch->heap = malloc(3 * capacity * sizeof *scratch->heap);
    scratch->capacity = capacity;
    if (!scratch->symbol || !scratch->next || !scratch->prev || !scratch->heap) {
        scratch->capacity = 0;
        return -1;
    }
    return 0;
}

static void scratch_free(bpe_scratch *scratch)
{
    free(scratch->symbol);
    free(scratch->next);
    free(scratch->prev);
    free(scratch->heap);
}

static int candidate_before(const merge_candidate *a, const merge_candidate *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->position < b->position;
}

static void heap_push(merge_candidate *heap, size_t *count, merge_candidate item)
{
    size_t i = (*count)++;
    while (i > 0 && candidate_before(&item, &heap[(i - 1) / 2])) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = item;
}

static merge_candidate heap_pop(merge_candidate *heap, size_t *count)
{
    merge_candidate top = heap[0], last = heap[--*count];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *count)
            break;
        if (child + 1 < *count && candidate_before(&heap[child + 1], &heap[child]))
            child++;
        if (!candidate_before(&heap[child], &last))
            break;
        heap[i] = heap[child];
        i = child;
    }
    if (*count > 0)
        heap[i] = last;
    return top;
}

static void push_pair(const vdx_tokenizer *tok, const bpe_scratch *s, size_t *heap_count,
                      int32_t position)
{
    int32_t right_pos = s->next[position];
    if (right_pos < 0)
        return;
    const merge_slot *merge = merge_lookup(tok, s->symbol[position], s->symbol[right_pos]);
    if (merge)
        heap_push(s->heap, heap_count,
                  (merge_candidate){merge->rank, position, s->symbol[position], s->symbol[right_pos]});
}

/* Runs BPE on one piece's bytes; afterwards the symbols are the list starting at index 0. */
static void bpe_piece(const vdx_tokenizer *tok, bpe_scratch *s, const unsigned char *bytes,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s->symbol[i] = i + 1 < n ? tok->byte_id[bytes[i]] : tok->byte_end_id[bytes[i]];
        s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        s->prev[i] = (int32_t)i - 1;
    }
    size_t heap_count = 0;
    for (size_t i = 0; i + 1 < n; i++)
        push_pair(tok, s, &heap_count, (int32_t)i);
    while (heap_count > 0) {
        merge_candidate best = heap_pop(s->heap, &heap_count);
        int32_t left = best.position, right = s->next[left];
        /* A live symbol's text only ever grows and a merged-away one holds -1, so an
         * unchanged pair of ids means the candidate still stands. */
        if (right < 0 || s->symbol[left] != best.left || s->symbol[right] != best.right)
            continue;
        s->symbol[left] = merge_lookup(tok, best.left, best.right)->merged;
        s->symbol[right] = -1; /* merged away: stale candidates at this position fail */
        s->next[left] = s->next[right];
        if (s->next[right] >= 0)
            s->prev[s->next[right]] = left;
        if (s->prev[left] >= 0)
            push_pair(tok, s, &heap_count, s->prev[left]);
        push_pair(tok, s, &heap_count, left);
    }
}

/* ---- normalisation and pre-tokenization ------------------------------------------------- */

typedef enum { CLASS_SPACE, CLASS_LETTER, CLASS_NUMBER, CLASS_OTHER } char_class;

/* White_Space as the regex engines of tokenizers (Oniguruma) and Rust understand \s. */
static int is_white_space(utf8proc_int32_t c)
{
    if ((c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85)
        return 1;
    utf8proc_category_t category = utf8proc_category(c);
    return category == UTF8PROC_CATEGORY_ZS || category == UTF8PROC_CATEGORY_ZL ||
           category == UTF8PROC_CATEGORY_ZP;
}

static char_class classify(utf8proc_int32_t c)
{
    if (c < 0x80) {
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
            return CLASS_LETTER;
        if (c >= '0' && c <= '9')
            return CLASS_NUMBER;
        return is_white_space(c) ? CLASS_SPACE : CLASS_OTHER;
    }
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        return CLASS_LETTER;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return CLASS_NUMBER;
    default:
        return is_white_space(c) ? CLASS_SPACE : CLASS_OTHER;
    }
}

/* Checks the whole input is UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) and tells whether it is plain ASCII (already NFC). */
static int validate_utf8(const char *text, int *ascii, vdx_error *err)
{
    const utf8proc_uint8_t *bytes = (const utf8proc_uint8_t *)text;
    *ascii = 1;
    size_t i = 0;
    while (bytes[i]) {
        if (bytes[i] < 0x80) {
            i++;
            continue;
        }
        *ascii = 0;
        utf8proc_int32_t c;
        utf8proc_ssize_t length = utf8proc_iterate(bytes + i, -1, &c);
        if (length < 0)
            return vdx_fail_kind(err, VDX_ERR_INVALID, "text is not valid UTF-8: byte %zu (0x%02x) starts no valid character",
                            i, bytes[i]);
        i += (size_t)length;
    }
    return 0;
}

/* NFC, then lowercase, as code points; whitespace stays (the scanner drops it). */
static utf8proc_int32_t *normalize(const char *text, size_t *count, vdx_error *err)
{
    int ascii;
    if (validate_utf8(text, &ascii, err) != 0)
        return NULL;
    utf8proc_uint8_t *composed = NULL;
    const utf8proc_uint8_t *source = (const utf8proc_uint8_t *)text;
    if (!ascii) {
        composed = utf8proc_NFC(source);
        if (!composed) {
            vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "text: NFC normalisation failed (out of memory)");
            return NULL;
        }
        source = composed;
    }
    size_t length = strlen((const char *)source);
    /* İ lowercases to two code points, but it takes two UTF-8 bytes: one slot per byte suffices */
    utf8proc_int32_t *out = malloc((length + 1) * sizeof *out);
    if (!out) {
        free(composed);
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "text: out of memory");
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < length;) {
        utf8proc_int32_t c;
        i += (size_t)utf8proc_iterate(source + i, -1, &c);
        if (c == 0x130) { /* the one unconditional multi-character lowercase mapping */
            out[n++] = 'i';
            out[n++] = 0x307;
        } else {
            out[n++] = utf8proc_tolower(c);
        }
    }
    free(composed);
    *count = n;
    return out;
}

/* Length in code points of the piece starting at `at` (at is not whitespace). */
static size_t piece_length(const utf8proc_int32_t *cps, size_t count, size_t at)
{
    static const char *const contractions[] = {"s", "t", "re", "ve", "m", "ll", "d"};
    if (cps[at] == '\'') {
        for (size_t k = 0; k < sizeof contractions / sizeof contractions[0]; k++) {
            size_t len = strlen(contractions[k]), j = 0;
            while (j < len && at + 1 + j < count && cps[at + 1 + j] == contractions[k][j])
                j++;
            if (j == len)
                return len + 1;
        }
    }
    char_class first = classify(cps[at]);
    if (first == CLASS_NUMBER)
        return 1;
    size_t end = at + 1;
    while (end < count && classify(cps[end]) == first)
        end++;
    return end - at;
}

int vdx_tokenizer_encode(const vdx_tokenizer *tok, const char *text, int max_len,
                         int32_t *ids, int *n_ids, int *truncated, vdx_error *err)
{
    if (!tok || !text || !ids || !n_ids)
        return vdx_fail(err, "tokenizer: encode called without a tokenizer, text or output");
    if (max_len < 2)
        return vdx_fail(err, "tokenizer: max_len %d leaves no room for the start and end tokens",
                        max_len);
    size_t count;
    utf8proc_int32_t *cps = normalize(text, &count, err);
    if (!cps)
        return -1;

    int room = max_len - 2, used = 0, dropped = 0;
    bpe_scratch scratch = {0};
    unsigned char *bytes = malloc(4 * count + 1);
    int status = bytes ? 0 : vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "text: out of memory");
    ids[used++] = VDX_TOKEN_BOS;
    for (size_t at = 0; status == 0 && at < count && !dropped;) {
        if (classify(cps[at]) == CLASS_SPACE) {
            at++;
            continue;
        }
        size_t length = piece_length(cps, count, at), n = 0;
        for (size_t k = 0; k < length; k++)
            n += (size_t)utf8proc_encode_char(cps[at + k], bytes + n);
        at += length;
        if (scratch_reserve(&scratch, n) != 0) {
            status = vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "text: out of memory for a piece of %zu bytes", n);
            break;
        }
        bpe_piece(tok, &scratch, bytes, n);
        for (int32_t s = 0; s >= 0; s = scratch.next[s]) {
            if (used - 1 == room) {
                dropped = 1;
                break;
            }
            ids[used++] = scratch.symbol[s];
        }
    }
    ids[used++] = VDX_TOKEN_EOS;
    scratch_free(&scratch);
    free(bytes);
    free(cps);
    if (status != 0)
        return -1;
    *n_ids = used;
    if (truncated)
        *truncated = dropped;
    return 0;
}
