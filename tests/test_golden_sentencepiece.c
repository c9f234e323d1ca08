/* Golden tests of the XLM-R SentencePiece tokenizer (src/text/sentencepiece.c) and its
 * protobuf reader (src/text/protobuf.c): the ids and pieces of the 43 mclip-tiny prompts
 * and the 300 extra corpus lines that sentencepiece 0.1.97 + transformers produced
 * (../shared/fixtures/golden/mclip-tiny), normalisation edge cases read from the model's
 * own charsmap, truncation, and clear errors on truncated or hostile `.model` files. */
#include <cjson/cJSON.h>

#include "test.h"
#include "vdx/sentencepiece.h"

#define MODEL "fixtures/mclip-tiny/sentencepiece.bpe.model"

static cJSON *read_json(const char *path)
{
    char *text;
    size_t size;
    if (vdx_read_file(path, &text, &size, NULL) != 0)
        return NULL;
    cJSON *json = cJSON_Parse(text);
    free(text);
    return json;
}

/* Encodes `text` and compares with the golden id array (and pieces when given). */
static int matches(const vdx_spm *tok, const char *text, const cJSON *golden_ids,
                   const cJSON *golden_pieces, int index)
{
    static int32_t ids[4096];
    static char *pieces[4096];
    int n = 0, truncated = 0, full = 0;
    vdx_error err;
    int rc = vdx_spm_encode(tok, text, VDX_SPM_MAX_TOKENS, ids, &n, &truncated, &full,
                            golden_pieces ? pieces : NULL, &err);
    CHECK(rc == 0, "text %d: %s", index, err.message);
    if (rc)
        return 0;
    int ok = n == cJSON_GetArraySize(golden_ids);
    CHECK(ok, "text %d (%s): %d ids, golden %d", index, text, n, cJSON_GetArraySize(golden_ids));
    for (int i = 0; ok && i < n; i++) {
        int want = cJSON_GetArrayItem(golden_ids, i)->valueint;
        if (ids[i] != want) {
            CHECK(0, "text %d (%.60s): id %d is %d, golden %d", index, text, i, (int)ids[i],
                  want);
            ok = 0;
        }
    }
    if (ok && golden_pieces) {
        /* golden pieces leave out <s> and </s>; a truncated text lists them all */
        for (int i = 1; ok && i < n - 1 && i - 1 < cJSON_GetArraySize(golden_pieces); i++) {
            const char *want = cJSON_GetArrayItem(golden_pieces, i - 1)->valuestring;
            if (strcmp(pieces[i], want) != 0) {
                CHECK(0, "text %d: piece %d is '%s', golden '%s'", index, i, pieces[i], want);
                ok = 0;
            }
        }
    }
    if (golden_pieces)
        vdx_spm_free_pieces(pieces, n);
    return ok;
}

TEST(golden_prompts_give_golden_ids_and_pieces)
{
    NEED_SHARED(model, MODEL);
    NEED_SHARED(texts_path, "fixtures/golden/mclip-tiny/texts.json");
    vdx_error err;
    vdx_spm *tok = vdx_spm_load(model, &err);
    REQUIRE(tok, "%s", err.message);
    CHECK(vdx_spm_vocab_size(tok) == 8002, "vocabulary %d", vdx_spm_vocab_size(tok));
    CHECK(vdx_spm_mask_id(tok) == 8001, "mask id %d", vdx_spm_mask_id(tok));
    cJSON *texts = read_json(texts_path);
    REQUIRE(cJSON_IsArray(texts), "cannot read %s", texts_path);
    int count = 0, good = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, texts) {
        const char *text = cJSON_GetObjectItem(entry, "text")->valuestring;
        const cJSON *ids = cJSON_GetObjectItem(entry, "ids");
        const cJSON *pieces = cJSON_GetObjectItem(entry, "pieces");
        good += matches(tok, text, ids, pieces, count);
        const cJSON *untrunc = cJSON_GetObjectItem(entry, "n_tokens_untruncated");
        if (untrunc) {
            static int32_t out[VDX_SPM_MAX_TOKENS];
            int n, cut, full;
            REQUIRE(vdx_spm_encode(tok, text, VDX_SPM_MAX_TOKENS, out, &n, &cut, &full, NULL,
                                   &err) == 0, "%s", err.message);
            CHECK(cut == 1 && n == VDX_SPM_MAX_TOKENS && full == untrunc->valueint,
                  "text %d: truncated %d, %d ids, %d untruncated (golden %d)", count, cut, n,
                  full, untrunc->valueint);
        }
        count++;
    }
    CHECK(count == 43, "%d prompts", count);
    CHECK(good == count, "%d of %d prompts match", good, count);
    cJSON_Delete(texts);
    vdx_spm_free(tok);
}

TEST(golden_corpus_lines_give_golden_ids)
{
    NEED_SHARED(model, MODEL);
    NEED_SHARED(path, "fixtures/golden/mclip-tiny/tokens_extra.json");
    vdx_error err;
    vdx_spm *tok = vdx_spm_load(model, &err);
    REQUIRE(tok, "%s", err.message);
    cJSON *lines = read_json(path);
    REQUIRE(cJSON_IsArray(lines), "cannot read %s", path);
    int count = 0, good = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, lines) {
        good += matches(tok, cJSON_GetObjectItem(entry, "text")->valuestring,
                        cJSON_GetObjectItem(entry, "ids"), NULL, count);
        count++;
    }
    CHECK(count == 300 && good == count, "%d of %d lines match", good, count);
    cJSON_Delete(lines);
    vdx_spm_free(tok);
}

static void expect_normalized(const vdx_spm *tok, const char *text, const char *want)
{
    char *out = NULL;
    vdx_error err;
    int rc = vdx_spm_normalize(tok, text, &out, &err);
    CHECK(rc == 0 && strcmp(out, want) == 0, "normalize(\"%s\") = \"%s\", expected \"%s\"",
          text, rc == 0 ? out : err.message, want);
    free(out);
}

TEST(normalisation_follows_the_charsmap)
{
    NEED_SHARED(model, MODEL);
    vdx_error err;
    vdx_spm *tok = vdx_spm_load(model, &err);
    REQUIRE(tok, "%s", err.message);
    expect_normalized(tok, "  \xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93\t x  ",
                      "\xe2\x96\x81" "ABC123\xe2\x96\x81x");           /* spec §3.3 example */
    expect_normalized(tok, "", "");
    expect_normalized(tok, " \t\n ", "");
    expect_normalized(tok, "\x01", "");                                 /* control: deleted */
    expect_normalized(tok, "a\xe3\x80\x80" "b", "\xe2\x96\x81" "a\xe2\x96\x81" "b"); /* U+3000 */
    expect_normalized(tok, "e\xcc\x81", "\xe2\x96\x81\xc3\xa9");       /* e + U+0301 → é */
    expect_normalized(tok, "\xef\xbd\x9e", "\xe2\x96\x81\xef\xbd\x9e"); /* U+FF5E left alone */
    expect_normalized(tok, "\xef\xbd\xb6\xef\xbe\x9e", "\xe2\x96\x81\xe3\x82\xac"); /* ｶﾞ → ガ */
    expect_normalized(tok, "a\xff" "b", "\xe2\x96\x81" "a\xef\xbf\xbd" "b"); /* bad byte → U+FFFD */
    expect_normalized(tok, "\xef\xac\x81", "\xe2\x96\x81" "fi");        /* ligature */
    vdx_spm_free(tok);
}

TEST(special_tokens_truncation_and_limits)
{
    NEED_SHARED(model, MODEL);
    vdx_error err;
    vdx_spm *tok = vdx_spm_load(model, &err);
    REQUIRE(tok, "%s", err.message);
    int32_t ids[16];
    int n = 0, cut = 0, full = 0;
    REQUIRE(vdx_spm_encode(tok, "<s><pad> <unk></s>", 16, ids, &n, &cut, &full, NULL, &err) == 0,
            "%s", err.message);
    CHECK(n == 6 && ids[1] == 0 && ids[2] == 1 && ids[3] == 3 && ids[4] == 2,
          "%d ids: %d %d %d %d", n, ids[1], ids[2], ids[3], ids[4]);
    int32_t wide[16];
    int n_wide = 0;
    REQUIRE(vdx_spm_encode(tok, "a b c d e f g h", 16, wide, &n_wide, &cut, &full, NULL, &err) == 0,
            "%s", err.message);
    CHECK(cut == 0 && n_wide == full && n_wide > 8, "%d ids, untruncated %d", n_wide, full);
    REQUIRE(vdx_spm_encode(tok, "a b c d e f g h", 4, ids, &n, &cut, &full, NULL, &err) == 0,
            "%s", err.message);
    CHECK(n == 4 && cut == 1 && full == n_wide && ids[0] == 0 && ids[1] == wide[1] &&
              ids[2] == wide[2] && ids[3] == 2,
          "%d ids, truncated %d, untruncated %d", n, cut, full);
    CHECK(vdx_spm_encode(tok, "a", 1, ids, &n, &cut, &full, NULL, &err) != 0 &&
              strstr(err.message, "max_len 1"), "max_len 1 accepted: %s", err.message);
    CHECK(strcmp(vdx_spm_id_to_piece(tok, 4), "\xe2\x96\x81") == 0, "id 4 is '%s'",
          vdx_spm_id_to_piece(tok, 4));
    CHECK(vdx_spm_id_to_piece(tok, 8002) == NULL && vdx_spm_id_to_piece(tok, -1) == NULL,
          "ids outside the vocabulary have pieces");
    vdx_spm_free(tok);
}

/* Loads a mutated model image and expects an error containing `want`. */
static void expect_refused(const uint8_t *buf, size_t size, const char *want, const char *what)
{
    vdx_error err = {{0}};
    vdx_spm *tok = vdx_spm_parse(buf, size, "bad.model", &err);
    CHECK(!tok && strstr(err.message, want), "%s: %s (expected '%s')", what,
          tok ? "accepted" : err.message, want);
    vdx_spm_free(tok);
}

TEST(truncated_and_hostile_models_are_refused)
{
    NEED_SHARED(model, MODEL);
    char *data;
    size_t size;
    vdx_error err;
    REQUIRE(vdx_read_file(model, &data, &size, &err) == 0, "%s", err.message);
    const uint8_t *b = (const uint8_t *)data;
    expect_refused(b, 0, "empty file", "empty");
    expect_refused(b, size / 2, "bytes left", "cut in half");
    expect_refused(b, 3, "bad.model", "three bytes");
    uint8_t hostile[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x41};
    expect_refused(hostile, sizeof hostile, "length 4294967295 but only 1 bytes left",
                   "huge length");
    uint8_t varint[] = {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    expect_refused(varint, sizeof varint, "longer than 10 bytes", "endless varint");
    uint8_t group[] = {0x0b};
    expect_refused(group, sizeof group, "wire type 3", "group");
    uint8_t empty_piece[] = {0x0a, 0x00};
    expect_refused(empty_piece, sizeof empty_piece, "piece at byte 0 has no text", "empty piece");
    /* a BPE model (trainer_spec.model_type = 2) */
    uint8_t bpe[] = {0x12, 0x02, 0x18, 0x02};
    expect_refused(bpe, sizeof bpe, "only Unigram", "BPE");
    uint8_t few[] = {0x0a, 0x03, 0x0a, 0x01, 'a'};
    expect_refused(few, sizeof few, "1 pieces", "one piece");
    /* wrong wire type for a score */
    uint8_t score[] = {0x0a, 0x05, 0x0a, 0x01, 'a', 0x10, 0x01};
    expect_refused(score, sizeof score, "SentencePiece.score", "score as varint");
    /* a NaN score (fixed32 0x7fc00000) would win or lose every merge it meets */
    uint8_t nan_score[] = {0x0a, 0x08, 0x0a, 0x01, 'a', 0x15, 0x00, 0x00, 0xc0, 0x7f};
    expect_refused(nan_score, sizeof nan_score, "piece at byte 0 has a score that is not a "
                   "finite number", "NaN score");
    vdx_error lerr;
    CHECK(!vdx_spm_load("/nonexistent/sp.model", &lerr) && strstr(lerr.message, "/nonexistent"),
          "%s", lerr.message);
    free(data);
}

int main(void)
{
    RUN(golden_prompts_give_golden_ids_and_pieces);
    RUN(golden_corpus_lines_give_golden_ids);
    RUN(normalisation_follows_the_charsmap);
    RUN(special_tokens_truncation_and_limits);
    RUN(truncated_and_hostile_models_are_refused);
    return test_summary("test_golden_sentencepiece");
}
