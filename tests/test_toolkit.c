/* The toolkit of src/common: error kinds, the buffer, the id set, float16/bfloat16, the
 * clock, the HTTP client's retry policy and credential-free URLs, the JSON check and the
 * SQLite helpers' error kinds. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/half.h"
#include "common/hash.h"
#include "common/http_client.h"
#include "common/json_check.h"
#include "common/sqlite_util.h"
#include "common/strbuf.h"
#include "common/team.h"
#include "common/text.h"
#include "test.h"
#include "vdx/common.h"

TEST(error_kinds)
{
    vdx_error err = {{0}};
    CHECK(vdx_fail(&err, "plain %d", 1) == -1 && err.kind == VDX_ERR_INTERNAL &&
              !strcmp(err.message, "plain 1"), "%s", err.message);
    vdx_fail_kind(&err, VDX_ERR_NOT_FOUND, "no concept named '%s'", "x");
    CHECK(err.kind == VDX_ERR_NOT_FOUND, "kind %d", err.kind);
    vdx_error_prefix(&err, "concept %s", "label");
    CHECK(err.kind == VDX_ERR_NOT_FOUND && !strcmp(err.message, "concept label: no concept named 'x'"),
          "prefix lost the kind or the text: %d %s", err.kind, err.message);
    static const struct { int errnum; vdx_error_kind kind; } by_errno[] = {
        {ENOSPC, VDX_ERR_NO_SPACE}, {EDQUOT, VDX_ERR_NO_SPACE}, {ENOMEM, VDX_ERR_NO_MEMORY},
        {ENOENT, VDX_ERR_NOT_FOUND}, {EACCES, VDX_ERR_IO}, {EIO, VDX_ERR_IO}};
    for (size_t i = 0; i < sizeof by_errno / sizeof by_errno[0]; i++) {
        vdx_fail_errno(&err, by_errno[i].errnum, "f: %s", strerror(by_errno[i].errnum));
        CHECK(err.kind == by_errno[i].kind, "errno %d gave kind %s", by_errno[i].errnum,
              vdx_error_kind_name(err.kind));
    }
    vdx_fail_oom(&err, "for %d vectors", 3);
    CHECK(err.kind == VDX_ERR_NO_MEMORY && !strcmp(err.message, "out of memory for 3 vectors"),
          "%s", err.message);
    vdx_error copy = {{0}};
    vdx_error_copy(&copy, &err);
    CHECK(copy.kind == err.kind && !strcmp(copy.message, err.message), "copy");
    const char *names[VDX_ERR_KIND_COUNT] = {"internal", "invalid", "not_found", "conflict",
        "model_mismatch", "io", "no_space", "no_memory", "corrupt"};
    for (int k = 0; k < VDX_ERR_KIND_COUNT; k++)
        CHECK(!strcmp(vdx_error_kind_name((vdx_error_kind)k), names[k]), "kind %d is '%s'", k,
              vdx_error_kind_name((vdx_error_kind)k));
    CHECK(vdx_fail_kind(NULL, VDX_ERR_IO, "x") == -1, "NULL err");
}

TEST(strbuf_grows_caps_and_never_truncates)
{
    strbuf b = {0};
    char long_word[2000];
    memset(long_word, 'w', sizeof long_word - 1);
    long_word[sizeof long_word - 1] = 0;
    strbuf_printf(&b, "<%s|%d>", long_word, 42);
    CHECK(!b.oom && b.len == 1999 + 5 && b.data[0] == '<' && !strcmp(b.data + 2000, "|42>"),
          "printf truncated or failed: len %zu", b.len);
    strbuf_bytes(&b, "\0x", 2);
    CHECK(b.len == 2006 && b.data[2004] == 0 && b.data[2005] == 'x' && b.data[2006] == 0,
          "bytes with a NUL");
    char *text = strbuf_take(&b);
    CHECK(text && strlen(text) == 2004 && b.data == NULL && b.len == 0, "take");
    free(text);
    strbuf capped = {.max = 10};
    strbuf_put(&capped, "0123456789");
    CHECK(!capped.oom && capped.len == 10, "exactly the cap is fine");
    strbuf_put(&capped, "!");
    CHECK(capped.oom && capped.over && capped.len == 10, "over the cap: oom %d over %d len %zu",
          capped.oom, capped.over, capped.len);
    strbuf_put(&capped, "");
    CHECK(strbuf_take(&capped) == NULL && capped.max == 10 && !capped.oom,
          "a failed buffer gives NULL and starts again with its cap");
    strbuf empty = {0};
    text = strbuf_take(&empty);
    CHECK(text && !*text, "an empty buffer gives \"\"");
    free(text);
}

TEST(idset_finds_what_it_holds)
{
    CHECK(hash_str("") == 1469598103934665603ull &&
              hash_str("a") == (1469598103934665603ull ^ 'a') * 1099511628211ull &&
              hash_bytes("ab", 2) == hash_str("ab"),
          "FNV-1a with vdx's basis: %llx", (unsigned long long)hash_str("a"));
    enum { N = 20000 };
    static char keys[N][16];
    idset s = {0};
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "id-%d", i);
        REQUIRE(idset_add(&s, keys[i], i, NULL) == 1, "add %d", i);
    }
    CHECK(s.n == N && s.cap >= 2 * N && (s.cap & (s.cap - 1)) == 0, "n %zu cap %zu", s.n, s.cap);
    int64_t first = -1;
    CHECK(idset_add(&s, "id-7", 99, &first) == 0 && first == 7, "duplicate: first %lld",
          (long long)first);
    int wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += idset_get(&s, keys[i], -1) != i;
    CHECK(wrong == 0, "%d lookups wrong", wrong);
    CHECK(idset_get(&s, "id-20000", -1) == -1 && idset_get(&s, "", -2) == -2, "absent keys");
    idset_free(&s);
    CHECK(s.cap == 0 && idset_get(&s, "id-1", -3) == -3, "freed set is empty");
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

TEST(float16_and_bfloat16)
{
    int wrong = 0;
    for (uint32_t h = 0; h < 65536; h++) { /* every half widens and narrows back exactly */
        float f = half_f16_to_f32((uint16_t)h);
        int nan = ((h >> 10) & 0x1f) == 31 && (h & 0x3ff);
        if (!nan && half_f32_to_f16(f) != h && wrong++ < 3)
            printf("    half %04x → %a → %04x\n", h, (double)f, half_f32_to_f16(f));
        if (nan && !isnan(f))
            wrong++;
    }
    CHECK(wrong == 0, "%d halves do not round-trip", wrong);
    CHECK(half_f32_to_f16(65504.0f) == 0x7bff && half_f32_to_f16(65520.0f) == 0x7c00 &&
              half_f32_to_f16(65519.99f) == 0x7bff, "overflow boundary");
    CHECK(half_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00 && half_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02,
          "ties to even");
    CHECK(half_f32_to_f16(0x1p-25f) == 0 && half_f32_to_f16(0x1.8p-25f) == 1, "subnormal rounding");
    CHECK(half_f16_to_f32(1) == 0x1p-24f && half_f16_to_f32(0x8000) == 0 && signbit(half_f16_to_f32(0x8000)),
          "smallest subnormal and -0");
    /* arrays: F16C (when present) and the portable loop give the same bits */
    float in[37];
    uint16_t fast[37], slow[37];
    uint64_t seed = 7;
    for (int i = 0; i < 37; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        in[i] = ldexpf((float)(int32_t)(seed >> 32) / 2147483648.0f, (int)(seed % 40) - 20);
    }
    half_f32_to_f16_array(in, fast, 37);
    setenv("VDX_SCAN_KERNEL", "portable", 1);
    half_f32_to_f16_array(in, slow, 37);
    float back_slow[37], back_fast[37];
    half_f16_to_f32_array(slow, back_slow, 37);
    unsetenv("VDX_SCAN_KERNEL");
    half_f16_to_f32_array(slow, back_fast, 37);
    CHECK(!memcmp(fast, slow, sizeof fast) && !memcmp(back_fast, back_slow, sizeof back_fast),
          "F16C and portable disagree");
    /* bfloat16: the top half of a float, rounded to nearest even */
    CHECK(half_f32_to_bf16(1.0f) == 0x3f80 && half_bf16_to_f32(0x3f80) == 1.0f, "bf16 1.0");
    CHECK(half_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80 && half_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82,
          "bf16 ties to even: %04x %04x", half_f32_to_bf16(1.0f + 0x1p-8f),
          half_f32_to_bf16(1.0f + 3 * 0x1p-8f));
    CHECK(half_f32_to_bf16(0x1.fffffep127f) == 0x7f80, "bf16 overflow to infinity");
    CHECK(isnan(half_bf16_to_f32(half_f32_to_bf16(NAN))) &&
              (half_f32_to_bf16(-NAN) & 0x8000), "bf16 NaN stays NaN with its sign");
    float f[3] = {3.140625f, -2.0f, 0x1p-130f};
    uint16_t b[3];
    float w[3];
    half_f32_to_bf16_array(f, b, 3);
    half_bf16_to_f32_array(b, w, 3);
    CHECK(bits(w[0]) == bits(f[0]) && bits(w[1]) == bits(f[1]) && bits(w[2]) == bits(f[2]),
          "exact bf16 values round-trip");
    /* the vectorised array conversion gives the scalar one's bits, specials and tail too */
    static const float special[] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 0x1.fffffep127f,
                                    -INFINITY, NAN, -NAN, 0x1p-140f, -0.0f, 65504.0f};
    float many[45];
    uint16_t vec[45];
    for (int i = 0; i < 45; i++)
        many[i] = i < 9 ? special[i] : (float)(i * i) / 7.0f - 100.0f;
    half_f32_to_bf16_array(many, vec, 45);
    for (int i = 0; i < 45; i++)
        CHECK(vec[i] == half_f32_to_bf16(many[i]), "bf16 array [%d] = %04x, scalar %04x", i,
              vec[i], half_f32_to_bf16(many[i]));
}

TEST(clock_formats_utc)
{
    char out[32];
    clock_utc_iso(0, out);
    CHECK(!strcmp(out, "1970-01-01T00:00:00Z"), "%s", out);
    clock_utc_iso(1764763200.9, out);
    CHECK(!strcmp(out, "2025-12-03T12:00:00Z"), "%s", out);
    clock_utc_iso_now(out);
    CHECK(strlen(out) == 20 && out[10] == 'T' && out[19] == 'Z', "%s", out);
    double a = clock_epoch(), m = vdx_now();
    CHECK(a > 1.7e9 && m > 0, "epoch %f monotonic %f", a, m);
}

TEST(http_retry_policy_and_redaction)
{
    CHECK(http_retry_delay(1, 0.5, 60, 0) == 0.5 && http_retry_delay(3, 0.5, 60, 0) == 2.0,
          "doubling");
    CHECK(http_retry_delay(1000000, 0.5, 60, 0) == 60.0 && http_retry_delay(64, 0.25, 30, 0) == 30.0,
          "capped, no overflow");
    CHECK(http_retry_delay(2, 0.5, 60, 7) == 7.0 && http_retry_delay(2, 0.5, 60, 3600) == 60.0,
          "Retry-After, capped");
    CHECK(http_status_transient(429) && http_status_transient(503) && !http_status_transient(404) &&
              !http_status_transient(200), "statuses");
    CHECK(http_curl_transient(CURLE_OPERATION_TIMEDOUT) && http_curl_transient(CURLE_RECV_ERROR) &&
              !http_curl_transient(CURLE_COULDNT_RESOLVE_HOST), "curl codes");
    static const struct { const char *in, *out; } urls[] = {
        {"https://user:secret@mirror.example/x?a=1", "https://mirror.example/x?a=1"},
        {"https://h/p?token=abc&b=2&KEY=k#f", "https://h/p?token=***&b=2&KEY=***#f"},
        {"http://h:8080/a@b/c", "http://h:8080/a@b/c"},
        {"http://u:p@ss@h/", "http://h/"},
        {"relative/path?sig=1", "relative/path?sig=***"},
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char out[256];
        http_redact_url(urls[i].in, out, sizeof out);
        CHECK(!strcmp(out, urls[i].out), "%s → %s", urls[i].in, out);
    }
    char tiny[8];
    http_redact_url("https://averylonghost/", tiny, sizeof tiny);
    CHECK(strlen(tiny) == 7, "truncated to the buffer");
    CURL *e = http_easy_new(&(http_options){.timeout_ms = 1000});
    CHECK(e != NULL, "a handle");
    curl_easy_cleanup(e);
}

TEST(json_check_agrees_with_cjson)
{
    static const char *const texts[] = {
        "{}", "[]", " {\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\ud83d\\ude00\"]} ",
        "\xEF\xBB\xBF{\"bom\":1}", "{\"a\":1} trailing", "+1", "1.", "0x10", "\"\\/\"",
        "", "{", "[1,]", "{\"a\" 1}", "{\"a\":}", "[\"\\x\"]", "[\"\\ud83d\"]", "\"abc",
        "[1 2]", "{1:2}", "tru", "-", "[\"\\udc00\"]", "nul", "{\"a\":1,}", "[[[[]]]]",
        /* cJSON skips a byte order mark only in a text of 5 bytes or more: a 4-byte
         * config.json "BOM 2" was reported as out of memory (found by fuzz_clip_config) */
        "\xEF\xBB\xBF" "2", "\xEF\xBB\xBF", "\xEF\xBB\xBF" "12",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        cJSON *json = cJSON_ParseWithLength(texts[i], strlen(texts[i]));
        int ours = json_text_is_valid(texts[i], strlen(texts[i]));
        CHECK(ours == (json != NULL), "'%s': cJSON %s, json_check %s", texts[i],
              json ? "accepts" : "refuses", ours ? "accepts" : "refuses");
        cJSON_Delete(json);
    }
    char deep[2 * 1100 + 1];
    for (int depth = 999; depth <= 1001; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        cJSON *json = cJSON_ParseWithLength(deep, 2 * (size_t)depth);
        CHECK(json_text_is_valid(deep, 2 * (size_t)depth) == (json != NULL),
              "nesting %d: cJSON %s", depth, json ? "accepts" : "refuses");
        cJSON_Delete(json);
    }
}

TEST(sqlite_errors_have_kinds)
{
    CHECK(sql_error_kind(SQLITE_FULL) == VDX_ERR_NO_SPACE && sql_error_kind(SQLITE_NOMEM) == VDX_ERR_NO_MEMORY &&
              sql_error_kind(SQLITE_CORRUPT) == VDX_ERR_CORRUPT && sql_error_kind(SQLITE_NOTADB) == VDX_ERR_CORRUPT &&
              sql_error_kind(SQLITE_IOERR_WRITE) == VDX_ERR_IO && sql_error_kind(SQLITE_BUSY) == VDX_ERR_CONFLICT &&
              sql_error_kind(SQLITE_CONSTRAINT_UNIQUE) == VDX_ERR_CONFLICT &&
              sql_error_kind(SQLITE_ERROR) == VDX_ERR_INTERNAL, "result code → kind");
    sqlite3 *db = NULL;
    vdx_error err = {{0}};
    REQUIRE(sql_open(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db, &err, "test") == 0,
            "%s", err.message);
    CHECK(sql_exec(db, "CREATE TABLE t(x UNIQUE); INSERT INTO t VALUES (1)", &err, "t") == 0, "%s",
          err.message);
    CHECK(sql_exec(db, "INSERT INTO t VALUES (1)", &err, "ctx %d", 7) == -1 && err.kind == VDX_ERR_CONFLICT &&
              !strcmp(err.message, "ctx 7: the database refused a statement: UNIQUE constraint failed: t.x"),
          "%s (%s)", err.message, vdx_error_kind_name(err.kind));
    CHECK(sql_prepare(db, "SELECT nope FROM t", &err, "q") == NULL &&
              !strcmp(err.message, "q: the database refused a statement: no such column: nope"), "%s", err.message);
    CHECK(sql_exec(db, "COMMIT", &err, "c") == -1 && err.kind == VDX_ERR_NO_MEMORY,
          "a COMMIT with no transaction open: %s", err.message);
    sql_exec(db, "BEGIN", &err, "b");
    sql_rollback(db);
    CHECK(sqlite3_get_autocommit(db), "rollback ends the transaction");
    sqlite3_close(db);
    CHECK(sql_open("/nonexistent-dir/x.db", SQLITE_OPEN_READWRITE, &db, &err, "open") == -1 && !db &&
              err.kind == VDX_ERR_IO && strstr(err.message, "open: cannot open /nonexistent-dir/x.db: "),
          "%s (%s)", err.message, vdx_error_kind_name(err.kind));
}

/* The team is claimed by one caller at a time; a second caller (here another thread)
 * runs alone until it is given back; asking for one thread never claims it. */
static void *claim_elsewhere(void *arg)
{
    int got = team_claim(2);
    team_release(got);
    *(int *)arg = got;
    return NULL;
}

/* utf8_prefix: quotes in messages are cut between characters, never inside one. */
TEST(utf8_prefix_cuts_between_characters)
{
    const char *s = "ab\xc3\xa9\xe2\x98\x95\xf0\x9f\x98\x80z"; /* a b é ☕ 😀 z */
    size_t len = strlen(s);
    static const size_t want[] = {0, 1, 2, 2, 4, 4, 4, 7, 7, 7, 7, 11, 12};
    for (size_t max = 0; max <= len; max++)
        CHECK(utf8_prefix(s, len, max) == want[max], "max %zu: %zu, not %zu", max,
              utf8_prefix(s, len, max), want[max]);
    CHECK(utf8_prefix(s, len, 100) == len, "a short text is kept whole");
    CHECK(utf8_prefix("", 0, 0) == 0, "empty");
}

TEST(team_is_claimed_by_one_caller_at_a_time)
{
    CHECK(team_claim(1) == 1, "one thread wanted: no claim");
    int first = team_claim(2), other = 0;
    CHECK(first == 2, "a free team is given: %d", first);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, claim_elsewhere, &other) == 0, "thread");
    pthread_join(t, NULL);
    CHECK(other == 1, "a claimed team is refused to another caller: %d", other);
    team_release(first);
    REQUIRE(pthread_create(&t, NULL, claim_elsewhere, &other) == 0, "thread");
    pthread_join(t, NULL);
    CHECK(other == 2, "a released team is given again: %d", other);
}

int main(void)
{
    RUN(error_kinds);
    RUN(strbuf_grows_caps_and_never_truncates);
    RUN(idset_finds_what_it_holds);
    RUN(float16_and_bfloat16);
    RUN(clock_formats_utc);
    RUN(http_retry_policy_and_redaction);
    RUN(json_check_agrees_with_cjson);
    RUN(sqlite_errors_have_kinds);
    RUN(team_is_claimed_by_one_caller_at_a_time);
    RUN(utf8_prefix_cuts_between_characters);
    return test_summary("toolkit");
}
