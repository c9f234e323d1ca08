/* The CLIP tokenizer against transformers' golden ids (fixtures/golden/clip-tiny/texts.json),
 * plus the cases the fixture does not pin: Unicode corners, special-token injection,
 * truncation, BPE merge order on a hand-made vocabulary, concurrent use of one tokenizer,
 * and every loader and input error with its exact message. Ids not in texts.json were
 * computed with an independent Python model of CLIPTokenizerFast that reproduces every
 * golden entry. */
#include "test.h"
#include "vdx/tokenizer.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <unistd.h>

#define CLIP_MAX_LEN 77

static vdx_tokenizer *clip_tok; /* the real vocabulary, loaded once (it is 1.6 MB of JSON) */

typedef struct {
    char *text;
    int32_t ids[CLIP_MAX_LEN];
    int n_ids;
} golden_text;

static golden_text *golden;
static int golden_count;

/* Reads texts.json: [{"text": "...", "ids": [...]}, ...]. Returns -1 (with a message) if the
 * file is not in that shape. */
static int load_golden(const char *path)
{
    char *data;
    size_t size;
    vdx_error err;
    if (vdx_read_file(path, &data, &size, &err) != 0) {
        printf("    %s\n", err.message);
        return -1;
    }
    cJSON *json = cJSON_ParseWithLength(data, size);
    free(data);
    if (!cJSON_IsArray(json)) {
        printf("    %s: not a JSON array\n", path);
        cJSON_Delete(json);
        return -1;
    }
    golden_count = cJSON_GetArraySize(json);
    golden = calloc((size_t)golden_count, sizeof *golden);
    int i = 0;
    for (const cJSON *entry = json->child; entry; entry = entry->next, i++) {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(entry, "text");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(entry, "ids");
        if (!cJSON_IsString(text) || !cJSON_IsArray(ids) || cJSON_GetArraySize(ids) > CLIP_MAX_LEN) {
            printf("    %s: entry %d lacks \"text\" or \"ids\"\n", path, i);
            cJSON_Delete(json);
            return -1;
        }
        golden[i].text = strdup(text->valuestring);
        for (const cJSON *id = ids->child; id; id = id->next)
            golden[i].ids[golden[i].n_ids++] = (int32_t)id->valuedouble;
    }
    cJSON_Delete(json);
    return 0;
}

static void format_ids(const int32_t *ids, int n, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < n && used + 12 < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%d", i ? " " : "", (int)ids[i]);
}

/* Encodes with the real tokenizer and compares to the expected ids; reports a mismatch. */
static int expect_ids(const char *text, int max_len, const int32_t *want, int n_want,
                      int want_truncated)
{
    int32_t ids[1024];
    int n = -1, truncated = -1;
    vdx_error err = {{0}};
    if (vdx_tokenizer_encode(clip_tok, text, max_len, ids, &n, &truncated, &err) != 0) {
        CHECK(0, "encode(\"%s\") failed: %s", text, err.message);
        return 0;
    }
    int same = n == n_want && memcmp(ids, want, (size_t)n * sizeof *ids) == 0;
    char got_s[8192], want_s[8192];
    format_ids(ids, n, got_s, sizeof got_s);
    format_ids(want, n_want, want_s, sizeof want_s);
    CHECK(same, "\"%s\": got [%s], want [%s]", text, got_s, want_s);
    CHECK(truncated == want_truncated, "\"%s\": truncated = %d, want %d", text, truncated,
          want_truncated);
    return same;
}

#define EXPECT(text, truncated, ...)                                                      \
    do {                                                                                 \
        const int32_t want_[] = {__VA_ARGS__};                                           \
        expect_ids(text, CLIP_MAX_LEN, want_, (int)(sizeof want_ / sizeof want_[0]), truncated); \
    } while (0)

#define NEED_TOKENIZER()                                                                 \
    do {                                                                                 \
        if (!clip_tok) {                                                                 \
            NEED_SHARED(dir_, "fixtures/clip-tiny/vocab.json");                          \
            REQUIRE(0, "the clip-tiny tokenizer did not load");                          \
        }                                                                                \
    } while (0)

TEST(every_golden_text_gives_the_golden_ids)
{
    NEED_TOKENIZER();
    NEED_SHARED(path, "fixtures/golden/clip-tiny/texts.json");
    REQUIRE(golden || load_golden(path) == 0, "cannot read %s", path);
    REQUIRE(golden_count >= 25, "texts.json has only %d entries", golden_count);
    int truncated_entries = 0;
    for (int i = 0; i < golden_count; i++) {
        /* the full encoding, without the 77 limit, decides whether truncation is due */
        int32_t full[4096];
        int n_full = 0, cut = -1;
        vdx_error err;
        REQUIRE(vdx_tokenizer_encode(clip_tok, golden[i].text, 4096, full, &n_full, &cut, &err) == 0,
                "%s", err.message);
        CHECK(cut == 0, "\"%s\" was cut even with room for 4096 ids", golden[i].text);
        int over_long = n_full > CLIP_MAX_LEN;
        truncated_entries += over_long;
        expect_ids(golden[i].text, CLIP_MAX_LEN, golden[i].ids, golden[i].n_ids, over_long);
        if (over_long) /* the 77 ids are the first 76 of the full encoding, then eot */
            CHECK(memcmp(full, golden[i].ids, 76 * sizeof *full) == 0 &&
                      golden[i].ids[76] == VDX_TOKEN_EOS,
                  "\"%.40s...\": the truncated ids are not a prefix + eot", golden[i].text);
    }
    CHECK(truncated_entries == 1, "%d over-long golden entries, the fixture has one",
          truncated_entries);
}

TEST(known_prompts)
{
    NEED_TOKENIZER();
    EXPECT("a photo of a cat", 0, 49406, 320, 1125, 539, 320, 2368, 49407);
    EXPECT("", 0, 49406, 49407);
    EXPECT(" \t\n ", 0, 49406, 49407);
}

TEST(typed_special_tokens_are_plain_text)
{
    NEED_TOKENIZER();
    EXPECT("a <|endoftext|> cat", 0, 49406, 320, 27, 347, 40786, 4160, 91, 285, 2368, 49407);
    EXPECT("<|startoftext|>", 0, 49406, 27, 347, 993, 6659, 4160, 91, 285, 49407);
}

TEST(unicode_normalisation_and_case)
{
    NEED_TOKENIZER();
    /* decomposed e + U+0301 composes to é (NFC) */
    EXPECT("cafe\xcc\x81", 0, 49406, 15304, 49407);
    /* İ lowercases to i + U+0307 (two code points, and the mark splits the letter run) */
    EXPECT("\xc4\xb0stanbul", 0, 49406, 328, 16384, 11231, 49407);
    /* per-character lowercase, as tokenizers does: Σ → σ even at a word end */
    EXPECT("\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xa3\xce\x9f\xce\xa6\xce\x9f\xce\xa3", 0, 49406,
           138, 123, 138, 112, 138, 123, 139, 481, 139, 225, 138, 123, 139, 228, 138, 123, 139,
           481, 49407);
    /* ǅ (titlecase) → ǆ; the ﬁ ligature stays one letter */
    EXPECT("\xc7\x85", 0, 49406, 131, 484, 49407);
    EXPECT("\xef\xac\x81ne", 0, 49406, 171, 105, 223, 1422, 49407);
}

TEST(unicode_whitespace_letters_and_numbers)
{
    NEED_TOKENIZER();
    /* NEL, ideographic space, no-break space, line separator all separate words */
    EXPECT("a\xc2\x85" "b\xe3\x80\x80" "c\xc2\xa0" "d\xe2\x80\xa8" "e", 0, 49406, 320, 321, 322,
           323, 324, 49407);
    /* zero-width space (Cf) and the unit separator (Cc) are not whitespace: they are pieces */
    EXPECT("a\xe2\x80\x8b" "b", 0, 49406, 320, 9844, 321, 49407);
    EXPECT("\x01" "a\x1f" "b", 0, 49406, 445, 320, 475, 321, 49407);
    /* superscript two and one half are numbers (No): one piece each */
    EXPECT("x\xc2\xb2 \xc2\xbd", 0, 49406, 343, 41175, 33613, 49407);
    /* Arabic-Indic digits, one piece each */
    EXPECT("\xd9\xa1\xd9\xa2\xd9\xa3", 0, 49406, 149, 350, 149, 351, 149, 352, 49407);
    /* a leading combining mark is not a letter */
    EXPECT("\xcc\x81" "a", 0, 49406, 136, 479, 320, 49407);
    /* a run of emoji is one piece */
    EXPECT("\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 0, 49406, 12832, 34503, 49407);
}

TEST(contractions_match_anywhere)
{
    NEED_TOKENIZER();
    /* "!'" is one punctuation run; "'s" before "aid" is split off as in the regex */
    EXPECT("!'s 'said don't", 0, 49406, 13222, 338, 568, 5182, 847, 713, 49407);
}

TEST(truncation_to_a_small_max_len)
{
    NEED_TOKENIZER();
    const int32_t first_three[] = {49406, 320, 1125, 49407};
    expect_ids("a photo of a cat", 4, first_three, 4, 1);
    const int32_t exact[] = {49406, 320, 1125, 539, 320, 2368, 49407};
    expect_ids("a photo of a cat", 7, exact, 7, 0);
    const int32_t nothing[] = {49406, 49407};
    expect_ids("a photo of a cat", 2, nothing, 2, 1);
    expect_ids("", 2, nothing, 2, 0);
    /* a long piece is cut inside its own BPE output */
    const int32_t emoji_cut[] = {49406, 12832, 49407};
    expect_ids("\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 3, emoji_cut, 3, 1);
}

TEST(long_input_is_encoded_and_truncated)
{
    NEED_TOKENIZER();
    /* 1 MB of one letter run: one BPE piece of a million symbols */
    size_t n = 1 << 20;
    char *text = malloc(n + 1);
    memset(text, 'a', n);
    text[n] = 0;
    int32_t ids[CLIP_MAX_LEN];
    int n_ids = 0, truncated = 0;
    vdx_error err;
    REQUIRE(vdx_tokenizer_encode(clip_tok, text, CLIP_MAX_LEN, ids, &n_ids, &truncated, &err) == 0,
            "%s", err.message);
    CHECK(n_ids == CLIP_MAX_LEN && truncated == 1, "n_ids %d, truncated %d", n_ids, truncated);
    CHECK(ids[0] == VDX_TOKEN_BOS && ids[76] == VDX_TOKEN_EOS, "bos %d, eos %d", (int)ids[0],
          (int)ids[76]);
    for (int i = 1; i < 76; i++)
        CHECK(ids[i] > 0 && ids[i] < VDX_TOKEN_BOS, "id %d at %d", (int)ids[i], i);
    free(text);
}

TEST(invalid_utf8_is_refused_with_its_byte_offset)
{
    NEED_TOKENIZER();
    static const struct { const char *text, *message; } cases[] = {
        {"abc\xff" "def", "text is not valid UTF-8: byte 3 (0xff) starts no valid character"},
        {"\x80", "text is not valid UTF-8: byte 0 (0x80) starts no valid character"},
        {"caf\xc3", "text is not valid UTF-8: byte 3 (0xc3) starts no valid character"},
        {"ok \xc0\xaf", "text is not valid UTF-8: byte 3 (0xc0) starts no valid character"},
        {"\xc3\xa9\xed\xa0\x80", "text is not valid UTF-8: byte 2 (0xed) starts no valid character"},
        {"\xf4\x90\x80\x80", "text is not valid UTF-8: byte 0 (0xf4) starts no valid character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t ids[CLIP_MAX_LEN];
        int n = -7;
        vdx_error err = {{0}};
        CHECK(vdx_tokenizer_encode(clip_tok, cases[i].text, CLIP_MAX_LEN, ids, &n, NULL, &err) == -1,
              "case %zu was accepted", i);
        CHECK(strcmp(err.message, cases[i].message) == 0, "case %zu: \"%s\"", i, err.message);
        CHECK(n == -7, "case %zu: n_ids was written on failure", i);
    }
}

TEST(max_len_below_two_is_refused)
{
    NEED_TOKENIZER();
    int32_t ids[2];
    int n;
    vdx_error err;
    CHECK(vdx_tokenizer_encode(clip_tok, "a", 1, ids, &n, NULL, &err) == -1, "accepted");
    CHECK(strcmp(err.message, "tokenizer: max_len 1 leaves no room for the start and end tokens") == 0,
          "\"%s\"", err.message);
}

typedef struct {
    int mismatches;
    char first_error[VDX_ERROR_MAX];
} worker_result;

static void *encode_all_golden(void *arg)
{
    worker_result *result = arg;
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < golden_count; i++) {
            int32_t ids[CLIP_MAX_LEN];
            int n = 0;
            vdx_error err;
            if (vdx_tokenizer_encode(clip_tok, golden[i].text, CLIP_MAX_LEN, ids, &n, NULL, &err) != 0) {
                snprintf(result->first_error, sizeof result->first_error, "%s", err.message);
                result->mismatches++;
            } else if (n != golden[i].n_ids || memcmp(ids, golden[i].ids, (size_t)n * sizeof *ids)) {
                result->mismatches++;
            }
        }
    return NULL;
}

TEST(concurrent_encodes_on_one_tokenizer)
{
    NEED_TOKENIZER();
    NEED_SHARED(path, "fixtures/golden/clip-tiny/texts.json");
    REQUIRE(golden || load_golden(path) == 0, "cannot read %s", path);
    enum { THREADS = 4 };
    pthread_t threads[THREADS];
    worker_result results[THREADS] = {{0}};
    for (int t = 0; t < THREADS; t++)
        REQUIRE(pthread_create(&threads[t], NULL, encode_all_golden, &results[t]) == 0, "pthread");
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        CHECK(results[t].mismatches == 0, "thread %d: %d mismatches %s", t, results[t].mismatches,
              results[t].first_error);
    }
}

/* ---- a hand-made vocabulary: BPE order and loader errors ---------------------------------- */

/* GPT-2's byte → character map, written independently of the library. */
static int byte_char(int byte)
{
    int printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || byte >= 174;
    if (printable)
        return byte;
    int n = 0;
    for (int b = 0; b < byte; b++)
        n += !((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174);
    return 256 + n;
}

static void put_json_char(FILE *f, int c)
{
    if (c == '"' || c == '\\')
        fprintf(f, "\\%c", c);
    else if (c < 0x80)
        fputc(c, f);
    else
        fprintf(f, "%c%c", 0xC0 | c >> 6, 0x80 | (c & 0x3F));
}

/* Writes DIR/vocab.json: the 256 byte symbols (ids 0..255), the same with "</w>" (256..511),
 * `extra` symbols from 512 on, and the two special tokens unless `specials` is 0. */
static void write_vocab(const char *dir, const char *const *extra, int specials)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{");
    for (int end = 0; end < 2; end++)
        for (int b = 0; b < 256; b++) {
            fprintf(f, "%s\"", end || b ? ", " : "");
            put_json_char(f, byte_char(b));
            fprintf(f, "%s\": %d", end ? "</w>" : "", end * 256 + b);
        }
    for (int i = 0; extra && extra[i]; i++)
        fprintf(f, ", \"%s\": %d", extra[i], 512 + i);
    if (specials)
        fprintf(f, ", \"<|startoftext|>\": 49406, \"<|endoftext|>\": 49407");
    fprintf(f, "}\n");
    fclose(f);
}

static void write_text(const char *dir, const char *name, const char *content)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(content, f);
    fclose(f);
}

/* Removes a directory made by test_tmpdir and the two files these tests write there. */
static void remove_toy_dir(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    unlink(path);
    CHECK(rmdir(dir) == 0, "cannot remove %s", dir);
}

static const char *const toy_symbols[] = {"aa", "aa</w>", "bc</w>", "ab", NULL};
enum { AA = 512, AA_END, BC_END, AB };

static void expect_toy(const vdx_tokenizer *tok, const char *text, const int32_t *want, int n_want)
{
    int32_t ids[16];
    int n = 0;
    vdx_error err;
    if (vdx_tokenizer_encode(tok, text, 16, ids, &n, NULL, &err) != 0) {
        CHECK(0, "%s", err.message);
        return;
    }
    char got_s[256], want_s[256];
    format_ids(ids, n, got_s, sizeof got_s);
    format_ids(want, n_want, want_s, sizeof want_s);
    CHECK(n == n_want && memcmp(ids, want, (size_t)n * sizeof *ids) == 0, "\"%s\": [%s], want [%s]",
          text, got_s, want_s);
}

TEST(bpe_merges_lowest_rank_first_and_leftmost_first)
{
    const char *dir = test_tmpdir("tok-bpe");
    write_vocab(dir, toy_symbols, 1);
    write_text(dir, "merges.txt", "#version: 0.2\nb c</w>\na a\na a</w>\na b\n");
    vdx_error err;
    vdx_tokenizer *tok = vdx_tokenizer_load(dir, &err);
    REQUIRE(tok, "%s", err.message);
    /* "b c</w>" outranks "a b": abc → a + bc</w> */
    const int32_t abc[] = {49406, 'a', BC_END, 49407};
    expect_toy(tok, "abc", abc, 4);
    /* equal ranks go left to right: aaaa → aa + (a a</w>) → aa aa</w> */
    const int32_t aaaa[] = {49406, AA, AA_END, 49407};
    expect_toy(tok, "aaaa", aaaa, 4);
    /* aaaaa: "a a" at 0 and 2 (rank 1) before "a a</w>" at 3, which the second merge
     * consumed: aa aa a</w> */
    const int32_t aaaaa[] = {49406, AA, AA, 256 + 'a', 49407};
    expect_toy(tok, "aaaaa", aaaaa, 5);
    const int32_t single[] = {49406, 256 + 'a', 49407};
    expect_toy(tok, "A", single, 3);
    /* a byte with no printable form: 0x01 is U+0101 in GPT-2's map */
    const int32_t control[] = {49406, 256 + 1, 49407};
    expect_toy(tok, "\x01", control, 3);
    vdx_tokenizer_free(tok);
    remove_toy_dir(dir);
}

/* Loads DIR and checks the failure message equals DIR + suffix. */
static void expect_load_error(const char *dir, const char *suffix)
{
    vdx_error err = {{0}};
    vdx_tokenizer *tok = vdx_tokenizer_load(dir, &err);
    CHECK(!tok, "loaded a broken tokenizer (%s)", suffix);
    vdx_tokenizer_free(tok);
    char want[VDX_ERROR_MAX];
    snprintf(want, sizeof want, "%s%s", dir, suffix);
    CHECK(strcmp(err.message, want) == 0, "\n      got  \"%s\"\n      want \"%s\"", err.message, want);
}

TEST(too_long_model_dir_is_refused_not_cut)
{
    /* DIR/vocab.json would not fit in 4096 bytes: it must not be cut to DIR/voca. */
    char dir[4091];
    memset(dir, 'd', sizeof dir - 1);
    dir[0] = '/';
    dir[sizeof dir - 1] = 0;
    vdx_error err = {{0}};
    vdx_tokenizer *tok = vdx_tokenizer_load(dir, &err);
    CHECK(!tok, "loaded a tokenizer from a 4090-byte path");
    vdx_tokenizer_free(tok);
    const char want[] = "tokenizer: model directory path too long (4090 bytes): /ddd";
    CHECK(strncmp(err.message, want, sizeof want - 1) == 0, "got \"%.100s\"", err.message);
}

TEST(missing_files_are_named)
{
    const char *dir = test_tmpdir("tok-missing");
    expect_load_error(dir, "/vocab.json: cannot open: No such file or directory");
    write_vocab(dir, toy_symbols, 1);
    expect_load_error(dir, "/merges.txt: cannot open: No such file or directory");
    remove_toy_dir(dir);
}

TEST(bad_vocab_json_is_located)
{
    const char *dir = test_tmpdir("tok-vocab");
    write_text(dir, "merges.txt", "#version: 0.2\n");
    write_text(dir, "vocab.json", "{\n  \"a\": 1,\n  oops\n}\n");
    expect_load_error(dir, "/vocab.json: invalid JSON at line 3, column 4 (byte 15)");
    write_text(dir, "vocab.json", "[1, 2]");
    expect_load_error(dir, "/vocab.json: expected a JSON object mapping symbols to ids");
    write_text(dir, "vocab.json", "{\"a\": 0, \"b\": 1.5}");
    expect_load_error(dir, "/vocab.json: entry 2 (\"b\"): the id must be a non-negative integer");
    write_text(dir, "vocab.json", "{\"a\": 0, \"b\": \"1\"}");
    expect_load_error(dir, "/vocab.json: entry 2 (\"b\"): the id must be a non-negative integer");
    write_text(dir, "vocab.json", "{\"a\": 0, \"a\": 1}");
    expect_load_error(dir, "/vocab.json: entry 2: symbol \"a\" appears twice");
    write_vocab(dir, toy_symbols, 0);
    expect_load_error(dir, "/vocab.json: missing the special token <|startoftext|> (id 49406)");
    write_text(dir, "vocab.json", "{\"<|startoftext|>\": 1, \"<|endoftext|>\": 49407}");
    expect_load_error(dir, "/vocab.json: special token <|startoftext|> has id 1, CLIP expects 49406");
    write_text(dir, "vocab.json", "{\"<|startoftext|>\": 49406, \"<|endoftext|>\": 49407}");
    expect_load_error(dir, "/vocab.json: missing the symbol \"\xc4\x80\" of byte 0x00");
    remove_toy_dir(dir);
}

TEST(bad_merges_lines_are_located)
{
    const char *dir = test_tmpdir("tok-merges");
    write_vocab(dir, toy_symbols, 1);
    write_text(dir, "merges.txt", "a a\nb c</w>\n");
    expect_load_error(dir, "/merges.txt: line 1: expected the \"#version\" header, got \"a a\"");
    write_text(dir, "merges.txt", "");
    expect_load_error(dir, "/merges.txt: line 1: expected the \"#version\" header, got \"\"");
    write_text(dir, "merges.txt", "#version: 0.2\na a\nb\n");
    expect_load_error(dir, "/merges.txt: line 3: expected two symbols separated by a space, got \"b\"");
    write_text(dir, "merges.txt", "#version: 0.2\na a\n\na b\n");
    expect_load_error(dir, "/merges.txt: line 3: expected two symbols separated by a space, got \"\"");
    write_text(dir, "merges.txt", "#version: 0.2\na b c\n");
    expect_load_error(dir,
                      "/merges.txt: line 2: expected two symbols separated by a space, got \"a b c\"");
    write_text(dir, "merges.txt", "#version: 0.2\na a\nb b\n");
    expect_load_error(dir, "/merges.txt: line 3: symbol \"bb\" is not in vocab.json");
    write_text(dir, "merges.txt", "#version: 0.2\na zz\n");
    expect_load_error(dir, "/merges.txt: line 2: symbol \"zz\" is not in vocab.json");
    write_text(dir, "merges.txt", "#version: 0.2\na a\nb c</w>\na a\n");
    expect_load_error(dir, "/merges.txt: line 4: merge \"a a\" repeats line 2");
    /* CRLF line ends and a file without a final newline are fine */
    write_text(dir, "merges.txt", "#version: 0.2\r\na a\r\nb c</w>");
    vdx_error err;
    vdx_tokenizer *tok = vdx_tokenizer_load(dir, &err);
    CHECK(tok, "CRLF merges refused: %s", err.message);
    vdx_tokenizer_free(tok);
    remove_toy_dir(dir);
}

/* Found by fuzz_tokenizer_load: text of the files quoted in a refusal was cut at byte 64
 * (or not at all: a repeated merge of two long symbols) whatever the characters, so a
 * message about a UTF-8 file could end inside a character, or lose its line number past
 * the 1 KiB limit. Quotes are now cut to 64 bytes between characters. */
TEST(quoted_text_is_cut_between_characters)
{
    const char *dir = test_tmpdir("tok-quotes");
    /* "x" then 30 four-byte characters: 64 bytes would end inside the 16th */
    char line[256] = "x", want[512];
    for (int i = 0; i < 30; i++)
        strcat(line, "\xf0\x9f\x8e\x89");
    write_vocab(dir, toy_symbols, 1);
    write_text(dir, "merges.txt", line);
    snprintf(want, sizeof want, "/merges.txt: line 1: expected the \"#version\" header, got \"%.61s\"",
             line);
    expect_load_error(dir, want);
    char merges[512];
    snprintf(merges, sizeof merges, "#version: 0.2\na %s\n", line);
    write_text(dir, "merges.txt", merges);
    snprintf(want, sizeof want, "/merges.txt: line 2: symbol \"%.61s\" is not in vocab.json", line);
    expect_load_error(dir, want);
    snprintf(merges, sizeof merges, "#version: 0.2\n%s\n", line);
    write_text(dir, "merges.txt", merges);
    snprintf(want, sizeof want,
             "/merges.txt: line 2: expected two symbols separated by a space, got \"%.61s\"", line);
    expect_load_error(dir, want);
    /* a repeated merge of two 600-byte symbols: the line it repeats is still named */
    char *big = malloc(601), *merged = malloc(1201), *text = malloc(4096);
    memset(big, 'a', 600);
    big[600] = 0;
    memset(merged, 'a', 1200); /* what "big big" merges into */
    merged[1200] = 0;
    const char *symbols[] = {big, merged, NULL};
    write_vocab(dir, symbols, 1);
    snprintf(text, 4096, "#version: 0.2\n%s %s\n%s %s\n", big, big, big, big);
    write_text(dir, "merges.txt", text);
    snprintf(want, sizeof want, "/merges.txt: line 3: merge \"%.64s %.64s\" repeats line 2", big,
             big);
    expect_load_error(dir, want);
    free(big);
    free(merged);
    free(text);
    remove_toy_dir(dir);
}

int main(void)
{
    const char *dir = test_shared_path("fixtures/clip-tiny");
    if (dir) {
        vdx_error err;
        double start = vdx_now();
        clip_tok = vdx_tokenizer_load(dir, &err);
        if (!clip_tok)
            printf("    loading %s: %s\n", dir, err.message);
        else
            printf("# loaded the clip-tiny tokenizer in %.1f ms\n", (vdx_now() - start) * 1e3);
    }
    RUN(every_golden_text_gives_the_golden_ids);
    RUN(known_prompts);
    RUN(typed_special_tokens_are_plain_text);
    RUN(unicode_normalisation_and_case);
    RUN(unicode_whitespace_letters_and_numbers);
    RUN(contractions_match_anywhere);
    RUN(truncation_to_a_small_max_len);
    RUN(long_input_is_encoded_and_truncated);
    RUN(invalid_utf8_is_refused_with_its_byte_offset);
    RUN(max_len_below_two_is_refused);
    RUN(concurrent_encodes_on_one_tokenizer);
    RUN(bpe_merges_lowest_rank_first_and_leftmost_first);
    RUN(too_long_model_dir_is_refused_not_cut);
    RUN(missing_files_are_named);
    RUN(quoted_text_is_cut_between_characters);
    RUN(bad_vocab_json_is_located);
    RUN(bad_merges_lines_are_located);
    vdx_tokenizer_free(clip_tok);
    for (int i = 0; i < golden_count; i++)
        free(golden[i].text);
    free(golden);
    return test_summary("tokenizer");
}
