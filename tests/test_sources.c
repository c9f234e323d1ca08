/* Tests of the ingest sources: the Unsplash sample (exact counts, each malformed row with
 * its line and reason, unicode, keywords), Python-csv quoting rules on hand-made files,
 * the zip archive read in place equal to the directory, the folder walk and URL lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zip.h>

#include "test.h"
#include "test_tmp.h"
#include "vdx/ingest.h"

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static int column_index(const vdx_source *s, const char *name)
{
    for (int i = 0; i < s->n_columns; i++)
        if (!strcmp(s->columns[i], name))
            return i;
    return -1;
}

static const vdx_source_item *find_item(const vdx_source *s, const char *id)
{
    for (size_t i = 0; i < s->n_items; i++)
        if (!strcmp(s->items[i].id, id))
            return &s->items[i];
    return NULL;
}

static const char *value_of(const vdx_source *s, const char *id, const char *column)
{
    const vdx_source_item *it = find_item(s, id);
    int c = column_index(s, column);
    return it && c >= 0 ? it->values[c] : "<missing item or column>";
}

#define CHECK_STR(got, want)                                                              \
    CHECK((got) && !strcmp((got), (want)), "got '%s', want '%s'", (got) ? (got) : "(null)", \
          (want))

TEST(unsplash_sample_counts)
{
    NEED_SHARED(dir, "data/unsplash-sample");
    vdx_error err = {{0}};
    vdx_source *s = vdx_source_unsplash(dir, &err);
    REQUIRE(s, "%s", err.message);
    CHECK_STR(s->kind, "unsplash");
    CHECK(s->rows == 50, "rows %ld", s->rows);
    CHECK(s->n_items == 47, "items %zu", s->n_items);
    CHECK(s->n_problems == 3, "problems %zu", s->n_problems);
    CHECK(s->n_columns == 32, "columns %d", s->n_columns);
    CHECK_STR(s->columns[0], "photo_id");
    CHECK_STR(s->columns[30], "blur_hash");
    CHECK_STR(s->columns[31], "keywords");
    /* source order, the first and last good rows */
    CHECK_STR(s->items[0].id, "DjfcRNL2EDL");
    CHECK_STR(s->items[0].url, "https://images.unsplash.com/photo-1500000000000-3b8f37f8a88b");
    CHECK_STR(s->items[46].id, "63MOb35d0r6");
    CHECK(s->items[0].width == 3840 && s->items[0].height == 2562, "size %dx%d",
          s->items[0].width, s->items[0].height);
    /* the broken link is a good row: it fails later, at download */
    CHECK(find_item(s, "Ol3U6AhWNmZ") != NULL, "row with a dead link missing");
    vdx_source_free(s);
}

TEST(unsplash_sample_problems)
{
    NEED_SHARED(dir, "data/unsplash-sample");
    vdx_error err = {{0}};
    vdx_source *s = vdx_source_unsplash(dir, &err);
    REQUIRE(s, "%s", err.message);
    REQUIRE(s->n_problems == 3, "problems %zu", s->n_problems);
    const vdx_source_problem *p = s->problems;
    CHECK_STR(p[0].file, "photos.tsv000");
    CHECK(p[0].line == 9, "line %ld", p[0].line);
    CHECK_STR(p[0].id, "AJHdIEqJej_");
    CHECK_STR(p[0].reason, "bad URL 'not a url'");
    CHECK(p[1].line == 50, "line %ld", p[1].line);
    CHECK_STR(p[1].id, "FdlKdMwj6uU");
    CHECK_STR(p[1].reason, "duplicate photo_id 'FdlKdMwj6uU' (first on line 4)");
    CHECK(p[2].line == 51, "line %ld", p[2].line);
    CHECK_STR(p[2].id, "LKL3MvQHqP0");
    CHECK_STR(p[2].reason, "too few columns (2 of 31)");
    /* the duplicate kept the first row's values */
    CHECK_STR(value_of(s, "FdlKdMwj6uU", "photo_submitted_at"), "2019-03-12 02:12:32.102");
    vdx_source_free(s);
}

TEST(unsplash_sample_values)
{
    NEED_SHARED(dir, "data/unsplash-sample");
    vdx_error err = {{0}};
    vdx_source *s = vdx_source_unsplash(dir, &err);
    REQUIRE(s, "%s", err.message);
    CHECK_STR(value_of(s, "pHdEoziIbob", "photo_description"), "a \"quoted\" word and café");
    CHECK_STR(value_of(s, "pHdEoziIbob", "photographer_first_name"), "Zoë");
    CHECK_STR(value_of(s, "DjfcRNL2EDL", "photographer_last_name"), "王");
    CHECK_STR(value_of(s, "DjfcRNL2EDL", "photo_location_country"), "日本");
    CHECK_STR(value_of(s, "K_IQQ8Vh2bZ", "photographer_last_name"), "O'Neil");
    CHECK_STR(value_of(s, "DjfcRNL2EDL", "photo_featured"), "t");
    CHECK_STR(value_of(s, "DjfcRNL2EDL", "blur_hash"), "LEHV6nWB2yk8pyo0adR*.7kCMdnj");
    /* empty fields are NULL, as pandas' NaN */
    CHECK(value_of(s, "DjfcRNL2EDL", "photo_description") == NULL, "empty field not NULL");
    CHECK(value_of(s, "DjfcRNL2EDL", "exif_camera_make") == NULL, "empty field not NULL");
    /* keywords aggregated in file order */
    CHECK_STR(value_of(s, "DjfcRNL2EDL", "keywords"), "red, field");
    CHECK_STR(value_of(s, "pHdEoziIbob", "keywords"), "yellow, flowers");
    vdx_source_free(s);
}

/* Quoting as Python's csv module (and so pandas) reads it. */
TEST(tsv_quoting_rules)
{
    const char *dir = test_tmpdir("tsv");
    char path[4200];
    snprintf(path, sizeof path, "%s/photos.tsv000", dir);
    write_text(path,
               "\xEF\xBB\xBFphoto_id\tphoto_image_url\tphoto_description\r\n"
               "a1\thttps://h.example/a1\t\"tab\there, \"\"quoted\"\"\"\r\n"
               "\n"
               "a2\thttps://h.example/a2\t\"two\nlines\"\n"
               "a3\thttps://h.example/a3\tin\"side\"\n"
               "a4\thttps://h.example/a4\t\"closed\"tail\n"
               "a5\thttps://h.example/a5\t\"\"\n"
               "a6\thttps://h.example/a6\tx\textra\n"
               "a7\thttps://h.example/a7\tbad \xC3\x28 utf8\n"
               "\thttps://h.example/none\tno id\n"
               "a8\tftp://h.example/a8\tscheme\n"
               "a9\thttps://h.example/a9\tlast line without newline");
    vdx_error err = {{0}};
    vdx_source *s = vdx_source_unsplash(dir, &err);
    REQUIRE(s, "%s", err.message);
    CHECK(s->n_columns == 3, "columns %d (BOM must not be part of the first name)",
          s->n_columns);
    CHECK_STR(s->columns[0], "photo_id");
    CHECK(s->n_items == 6, "items %zu", s->n_items);
    CHECK_STR(value_of(s, "a1", "photo_description"), "tab\there, \"quoted\"");
    CHECK_STR(value_of(s, "a2", "photo_description"), "two\nlines");
    CHECK_STR(value_of(s, "a3", "photo_description"), "in\"side\"");
    CHECK_STR(value_of(s, "a4", "photo_description"), "closedtail");
    CHECK(value_of(s, "a5", "photo_description") == NULL, "quoted empty is NULL");
    CHECK_STR(value_of(s, "a9", "photo_description"), "last line without newline");
    REQUIRE(s->n_problems == 4, "problems %zu", s->n_problems);
    CHECK(s->problems[0].line == 9, "line %ld", s->problems[0].line);
    CHECK_STR(s->problems[0].reason, "too many columns (4 of 3)");
    CHECK(s->problems[1].line == 10, "line %ld", s->problems[1].line);
    CHECK_STR(s->problems[1].reason, "invalid UTF-8 in column photo_description");
    CHECK(s->problems[2].line == 11 && s->problems[2].id == NULL, "line %ld",
          s->problems[2].line);
    CHECK_STR(s->problems[2].reason, "empty photo_id");
    CHECK(s->problems[3].line == 12, "line %ld", s->problems[3].line);
    CHECK_STR(s->problems[3].reason, "bad URL 'ftp://h.example/a8'");
    vdx_source_free(s);

    /* a NUL byte would silently cut the field: the row is reported instead */
    static const char with_nul[] = "photo_id\tphoto_image_url\tphoto_description\n"
                                   "n1\thttps://h.example/n1\tbefore\0after\n"
                                   "n2\thttps://h.example/n2\tfine\n";
    FILE *f = fopen(path, "wb");
    fwrite(with_nul, 1, sizeof with_nul - 1, f);
    fclose(f);
    s = vdx_source_unsplash(dir, &err);
    REQUIRE(s, "%s", err.message);
    CHECK(s->n_items == 1 && !strcmp(s->items[0].id, "n2"), "items %zu", s->n_items);
    REQUIRE(s->n_problems == 1, "problems %zu", s->n_problems);
    CHECK(s->problems[0].line == 2, "line %ld", s->problems[0].line);
    CHECK_STR(s->problems[0].reason, "NUL byte in the row (not a text file?)");
    vdx_source_free(s);

    /* an unterminated quote swallows the rest of the file: reported, not fatal */
    write_text(path, "photo_id\tphoto_image_url\n"
                     "b1\thttps://h.example/b1\n"
                     "b2\t\"https://h.example/b2\n"
                     "b3\thttps://h.example/b3\n");
    s = vdx_source_unsplash(dir, &err);
    REQUIRE(s, "%s", err.message);
    CHECK(s->n_items == 1, "items %zu", s->n_items);
    REQUIRE(s->n_problems == 1, "problems %zu", s->n_problems);
    CHECK(s->problems[0].line == 3, "line %ld", s->problems[0].line);
    CHECK(strstr(s->problems[0].reason, "never closes, swallowing 1 row (line 4)") != NULL, "%s",
          s->problems[0].reason);
    vdx_source_free(s);

    /* F5: a stray '"' that closes rows later swallows them: pandas would merge them into
     * one field silently; here the row is reported with the lines it swallowed */
    write_text(path, "photo_id\tphoto_image_url\tphoto_description\n"
                     "c1\thttps://h.example/c1\t\"stray quote\n"
                     "c2\thttps://h.example/c2\tfine\n"
                     "c3\thttps://h.example/c3\tfine\n"
                     "c4\thttps://h.example/c4\tends the \"quote\n"
                     "c5\thttps://h.example/c5\tafter\n"
                     "c6\thttps://h.example/c6\t\"a real\ntwo-line description\"\n");
    s = vdx_source_unsplash(dir, &err);
    REQUIRE(s, "%s", err.message);
    CHECK(s->n_items == 2 && !strcmp(s->items[0].id, "c5") && !strcmp(s->items[1].id, "c6"),
          "items %zu", s->n_items);
    REQUIRE(s->n_problems == 1, "problems %zu", s->n_problems);
    CHECK(s->problems[0].line == 2, "line %ld", s->problems[0].line);
    CHECK_STR(s->problems[0].reason, "a '\"' opens a quoted field that runs over 3 rows (lines 3-5): "
                                     "this row and they are skipped; fix or remove the stray quote");
    vdx_source_free(s);

    /* a bare CR inside a field is data, not a line end (no phantom row) */
    write_text(path, "photo_id\tphoto_image_url\tphoto_description\r\n"
                     "d1\thttps://h.example/d1\tcarriage\rd9\thttps://h.example/d9\r\n"
                     "d2\thttps://h.example/d2\tok\r\n");
    s = vdx_source_unsplash(dir, &err);
    REQUIRE(s, "%s", err.message);
    CHECK(s->n_items == 1 && !strcmp(s->items[0].id, "d2"), "items %zu (%s)", s->n_items,
          s->n_items ? s->items[0].id : "");
    CHECK(s->n_problems == 1 && s->problems[0].line == 2 &&
          !strcmp(s->problems[0].reason, "too many columns (4 of 3)"), "problems %zu", s->n_problems);
    vdx_source_free(s);
}

/* A "keywords" column in photos.tsv000 beside keywords.tsv000: kept as keywords.1. */
TEST(keywords_column_in_photos)
{
    const char *dir = test_tmpdir("tsv-keywords");
    char path[4200];
    snprintf(path, sizeof path, "%s/photos.tsv000", dir);
    write_text(path, "photo_id\tphoto_image_url\tkeywords\n"
                     "k1\thttps://h.example/k1\town words\n");
    snprintf(path, sizeof path, "%s/keywords.tsv000", dir);
    write_text(path, "photo_id\tkeyword\nk1\tdog\nk1\tbeach\n");
    vdx_error err = {{0}};
    vdx_source *s = vdx_source_unsplash(dir, &err);
    REQUIRE(s, "%s", err.message);
    REQUIRE(s->n_columns == 4, "columns %d", s->n_columns);
    CHECK_STR(s->columns[2], "keywords.1");
    CHECK_STR(s->columns[3], "keywords");
    CHECK_STR(value_of(s, "k1", "keywords.1"), "own words");
    CHECK(value_of(s, "k1", "keywords") && strstr(value_of(s, "k1", "keywords"), "dog") &&
          strstr(value_of(s, "k1", "keywords"), "beach"), "joined keywords");
    vdx_source_free(s);
}

TEST(unsplash_errors)
{
    vdx_error err = {{0}};
    CHECK(vdx_source_unsplash("/nonexistent/vdx", &err) == NULL, "opened a missing path");
    CHECK_STR(err.message, "/nonexistent/vdx: No such file or directory");

    const char *dir = test_tmpdir("nophotos");
    CHECK(vdx_source_unsplash(dir, &err) == NULL, "opened a directory without photos");
    char want[4400];
    snprintf(want, sizeof want,
             "%s: no photos.tsv000 in this directory (expected the Unsplash dataset: "
             "photos.tsv000 and optionally keywords.tsv000)",
             dir);
    CHECK_STR(err.message, want);

    char path[4200];
    snprintf(path, sizeof path, "%s/fake.zip", dir);
    write_text(path, "this is not a zip archive");
    CHECK(vdx_source_unsplash(path, &err) == NULL, "opened a bad zip");
    CHECK(strstr(err.message, "not a directory, and not a readable zip archive") != NULL,
          "%s", err.message);

    snprintf(path, sizeof path, "%s/photos.tsv000", dir);
    write_text(path, "id\turl\nx\thttps://h.example/x\n");
    CHECK(vdx_source_unsplash(dir, &err) == NULL, "accepted a file without photo_id");
    snprintf(want, sizeof want,
             "%s: photos.tsv000: the header has no 'photo_id' column (is this the Unsplash "
             "dataset?)",
             dir);
    CHECK_STR(err.message, want);
}

/* The header's names, in a child process that an alarm ends (the old code never
 * returned): 0 when they are the expected ones (NULL: the header is refused). */
static int header_names_are(const char *dir, const char *const *want, int n)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        alarm(10);
        vdx_error err = {{0}};
        vdx_source *s = vdx_source_unsplash(dir, &err);
        if (!want)
            _exit(!s && strstr(err.message, "photos.tsv000 line 2: malformed header row") ? 0 : 1);
        int ok = s && s->n_columns == n;
        for (int i = 0; ok && i < n; i++)
            ok = !strcmp(s->columns[i], want[i]);
        if (!ok && s)
            for (int i = 0; i < s->n_columns && i < n + 2; i++)
                printf("    column %d: %.80s\n", i, s->columns[i]);
        vdx_source_free(s);
        _exit(ok ? 0 : 1);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Found by fuzz/fuzz_unsplash.c: only the header's first name was checked for UTF-8 (the
 * fields are NUL-separated), names were cut to 511 bytes so two long names with the same
 * start made the ".k" search endless, and that search was cubic in the number of
 * repeated names (a header of 3,000 tabs took 14 s). */
TEST(header_names)
{
    const char *dir = test_tmpdir("header");
    char path[4200];
    snprintf(path, sizeof path, "%s/photos.tsv000", dir);
    /* invalid UTF-8 in the third name, after a blank line */
    write_text(path, "\nphoto_id\tphoto_image_url\tbad \xC3\x28\nx\thttps://h.example/x\tv\n");
    CHECK(header_names_are(dir, NULL, 0) == 0, "a name of invalid UTF-8 accepted");
    /* long names kept whole; repeated names as pandas numbers them */
    static char text[8192], a[700], b[700], a1[700];
    memset(a, 'x', 600);
    strcpy(a + 600, "a");
    memset(b, 'x', 600);
    strcpy(b + 600, "b");
    snprintf(a1, sizeof a1, "%s.1", a);
    snprintf(text, sizeof text, "photo_id\tphoto_image_url\t%s\t%s\t%s\ty\ty\ty.1\t\t\tUnnamed.1\n"
             "p\thttps://h.example/p\t1\t2\t3\t4\t5\t6\t7\t8\t9\n", a, b, a);
    write_text(path, text);
    const char *want[] = {"photo_id", "photo_image_url", a, b, a1, "y", "y.1", "y.1.1",
                          "Unnamed", "Unnamed.1", "Unnamed.1.1"};
    CHECK(header_names_are(dir, want, 11) == 0, "long or repeated names");
    /* 3,000 unnamed columns: Unnamed, Unnamed.1, ..., Unnamed.2999 */
    size_t n = (size_t)snprintf(text, sizeof text, "photo_id\tphoto_image_url");
    for (int i = 0; i < 3000; i++)
        text[n++] = '\t';
    strcpy(text + n, "\n");
    write_text(path, text);
    static char names[3002][16];
    const char *many[3002] = {"photo_id", "photo_image_url", "Unnamed"};
    for (int i = 1; i < 3000; i++) {
        snprintf(names[i], sizeof names[i], "Unnamed.%d", i);
        many[2 + i] = names[i];
    }
    CHECK(header_names_are(dir, many, 3002) == 0, "3,000 unnamed columns");
}

/* A rejected row whose first field is a whole megabyte (a line of one row without its
 * newlines) is reported with its id cut to 200 bytes and "...", not echoed whole. */
TEST(long_rejected_id_is_shortened)
{
    const char *dir = test_tmpdir("longid");
    char path[4200];
    snprintf(path, sizeof path, "%s/photos.tsv000", dir);
    size_t n = 1 << 20;
    char *text = malloc(n + 64);
    REQUIRE(text, "memory");
    int head = snprintf(text, 64, "photo_id\tphoto_image_url\n");
    memset(text + head, 'x', n);
    memcpy(text + head + n, "\n", 2);
    write_text(path, text);
    free(text);
    vdx_error err = {{0}};
    vdx_source *s = vdx_source_unsplash(dir, &err);
    REQUIRE(s, "%s", err.message);
    CHECK(s->n_items == 0 && s->n_problems == 1, "%zu items, %zu problems", s->n_items,
          s->n_problems);
    if (s->n_problems == 1) {
        const char *id = s->problems[0].id;
        CHECK(id && strlen(id) == 203 && !strcmp(id + 200, "...") && id[0] == 'x', "id of %zu bytes",
              id ? strlen(id) : 0);
    }
    vdx_source_free(s);
}

static void same_sources(const vdx_source *a, const vdx_source *b)
{
    REQUIRE(a->n_items == b->n_items, "items %zu vs %zu", a->n_items, b->n_items);
    REQUIRE(a->n_columns == b->n_columns, "columns %d vs %d", a->n_columns, b->n_columns);
    REQUIRE(a->n_problems == b->n_problems, "problems %zu vs %zu", a->n_problems,
            b->n_problems);
    for (size_t i = 0; i < a->n_items; i++) {
        CHECK(!strcmp(a->items[i].id, b->items[i].id), "item %zu", i);
        CHECK(!strcmp(a->items[i].url, b->items[i].url), "item %zu", i);
        for (int c = 0; c < a->n_columns; c++) {
            const char *x = a->items[i].values[c], *y = b->items[i].values[c];
            CHECK((!x && !y) || (x && y && !strcmp(x, y)), "item %zu column %s", i,
                  a->columns[c]);
        }
    }
    for (size_t i = 0; i < a->n_problems; i++) {
        CHECK(a->problems[i].line == b->problems[i].line, "problem %zu", i);
        CHECK(!strcmp(a->problems[i].reason, b->problems[i].reason), "problem %zu", i);
    }
}

TEST(zip_equals_directory)
{
    NEED_SHARED(dir, "data/unsplash-sample");
    const char *tmp = test_tmpdir("zip");
    char zpath[4200], src[4200];
    snprintf(zpath, sizeof zpath, "%s/unsplash-research-dataset-lite-latest.zip", tmp);
    int code;
    zip_t *z = zip_open(zpath, ZIP_CREATE | ZIP_EXCL, &code);
    REQUIRE(z, "zip_open %d", code);
    const char *names[] = {"photos.tsv000", "keywords.tsv000"};
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "%s/%s", dir, names[i]);
        zip_source_t *zs = zip_source_file(z, src, 0, -1);
        zip_int64_t added = zs ? zip_file_add(z, names[i], zs, 0) : -1;
        CHECK(added >= 0, "adding %s: %s", names[i], zip_strerror(z));
    }
    int closed = zip_close(z);
    REQUIRE(closed == 0, "zip_close");
    vdx_error err = {{0}};
    vdx_source *a = vdx_source_unsplash(dir, &err);
    REQUIRE(a, "%s", err.message);
    vdx_source *b = vdx_source_unsplash(zpath, &err);
    if (!b)
        vdx_source_free(a);
    REQUIRE(b, "%s", err.message);
    same_sources(a, b);
    vdx_source_free(a);
    vdx_source_free(b);
}

static void touch(const char *dir, const char *rel)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        mkdir(path, 0755);
        *p = '/';
    }
    write_text(path, "x");
}

TEST(folder_source)
{
    const char *dir = test_tmpdir("folder");
    const char *files[] = {"zeta.jpg", "b/inner.PNG", "a.jpeg", "b/c/deep.webp", "anim.gif",
                           "old.bmp", "notes.txt", ".hidden/x.jpg", ".dot.jpg", "noext"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        touch(dir, files[i]);
    vdx_error err = {{0}};
    vdx_source *s = vdx_source_folder(dir, &err);
    REQUIRE(s, "%s", err.message);
    const char *want[] = {"a.jpeg", "anim.gif", "b/c/deep.webp", "b/inner.PNG", "old.bmp",
                          "zeta.jpg"};
    REQUIRE(s->n_items == 6, "items %zu", s->n_items);
    CHECK(s->n_columns == 0 && s->n_problems == 0, "columns %d problems %zu", s->n_columns,
          s->n_problems);
    for (size_t i = 0; i < 6; i++) {
        CHECK_STR(s->items[i].id, want[i]);
        char url[4400];
        snprintf(url, sizeof url, "%s/%s", dir, want[i]);
        CHECK_STR(s->items[i].url, url);
    }
    vdx_source_free(s);
    CHECK(vdx_source_folder("/nonexistent/vdx", &err) == NULL, "opened a missing folder");
    CHECK_STR(err.message, "/nonexistent/vdx: No such file or directory");
}

/* What the walk cannot take is a problem of the source, not the end of the walk: an image
 * name that is a link to nothing or to a directory, and (when not root, who reads every
 * directory) a subdirectory that cannot be opened. */
TEST(folder_problems_do_not_stop_the_walk)
{
    const char *dir = test_tmpdir("folder-problems");
    touch(dir, "good.jpg");
    touch(dir, "sub/inner.jpg");
    char path[4300], target[4300];
    snprintf(path, sizeof path, "%s/dangling.jpg", dir);
    REQUIRE(symlink("/nonexistent/vdx.jpg", path) == 0, "symlink");
    snprintf(path, sizeof path, "%s/folder.jpg", dir);
    snprintf(target, sizeof target, "%s/sub", dir);
    REQUIRE(symlink(target, path) == 0, "symlink");
    int locked = geteuid() != 0;
    if (locked) {
        touch(dir, "locked/x.jpg");
        snprintf(path, sizeof path, "%s/locked", dir);
        chmod(path, 0);
    }
    vdx_error err = {{0}};
    vdx_source *s = vdx_source_folder(dir, &err);
    REQUIRE(s, "%s", err.message);
    CHECK(s->n_items == 2 && !strcmp(s->items[0].id, "good.jpg") &&
              !strcmp(s->items[1].id, "sub/inner.jpg"),
          "%zu items", s->n_items);
    size_t want = 2 + (size_t)locked;
    CHECK(s->n_problems == want && s->rows == (long)(s->n_items + want), "%zu problems, %ld rows",
          s->n_problems, s->rows);
    int dangling = 0, folder = 0, unreadable = 0;
    for (size_t i = 0; i < s->n_problems; i++) {
        const vdx_source_problem *p = &s->problems[i];
        dangling += p->id && !strcmp(p->id, "dangling.jpg") &&
                    !strcmp(p->reason, "a symbolic link to nothing");
        folder += p->id && !strcmp(p->id, "folder.jpg") &&
                  !strcmp(p->reason, "a symbolic link to no regular file");
        unreadable += p->id && !strcmp(p->id, "locked") &&
                      !strcmp(p->reason, "cannot open directory: Permission denied");
    }
    CHECK(dangling == 1 && folder == 1 && unreadable == locked,
          "dangling %d, link to a folder %d, unreadable %d", dangling, folder, unreadable);
    if (locked)
        chmod(path, 0755);
    vdx_source_free(s);
}

/* F4: a file name that is not UTF-8 gets a reversible escaped id and url; the raw path is
 * kept for reading; a valid name spelled like the escape is reported, not duplicated. */
TEST(folder_non_utf8_names)
{
    const char *dir = test_tmpdir("folder-utf8");
    touch(dir, "caf\xE9.jpg");
    touch(dir, "100%.jpg");
    touch(dir, "ok-\xC3\xA9.png");
    vdx_error err = {{0}};
    vdx_source *s = vdx_source_folder(dir, &err);
    REQUIRE(s, "%s", err.message);
    REQUIRE(s->n_items == 3 && s->n_problems == 0, "items %zu problems %zu", s->n_items, s->n_problems);
    CHECK_STR(s->items[0].id, "100%.jpg");
    CHECK(s->items[0].path == NULL, "a UTF-8 name needs no raw path");
    CHECK_STR(s->items[1].id, "caf%E9.jpg");
    char want[4400];
    snprintf(want, sizeof want, "%s/caf\xE9.jpg", dir);
    CHECK(s->items[1].path && !strcmp(s->items[1].path, want), "raw path %s", s->items[1].path);
    snprintf(want, sizeof want, "%s/caf%%E9.jpg", dir);
    CHECK_STR(s->items[1].url, want);
    char *back = vdx_percent_decode(s->items[1].id);
    CHECK(back && !strcmp(back, "caf\xE9.jpg"), "the escape is not reversible: %s", back);
    free(back);
    CHECK_STR(s->items[2].id, "ok-\xC3\xA9.png");
    for (size_t i = 0; i < s->n_items; i++)
        CHECK(vdx_utf8_check(s->items[i].id, strlen(s->items[i].id), NULL) == 0 &&
              vdx_utf8_check(s->items[i].url, strlen(s->items[i].url), NULL) == 0, "item %zu", i);
    vdx_source_free(s);
    touch(dir, "caf%E9.jpg"); /* sorts before the raw name: the raw one is reported */
    s = vdx_source_folder(dir, &err);
    REQUIRE(s, "%s", err.message);
    CHECK(s->n_items == 3 && s->n_problems == 1, "items %zu problems %zu", s->n_items, s->n_problems);
    if (s->n_problems == 1)
        CHECK_STR(s->problems[0].reason, "two files have the id 'caf%E9.jpg' (one name is not UTF-8 "
                                         "and escapes to the other)");
    vdx_source_free(s);
}

TEST(url_list_source)
{
    const char *dir = test_tmpdir("urls");
    char path[4200];
    snprintf(path, sizeof path, "%s/list.txt", dir);
    write_text(path, "# images to ingest\n"
                     "https://example.com/a.jpg\r\n"
                     "\n"
                     "   \n"
                     "  pics/b.png  \n"
                     "https://example.com/a.jpg\n"
                     "ftp://example.com/c.jpg\n"
                     "http:/broken\n"
                     "file:///srv/d.webp\n"
                     "/abs/e.gif\n"
                     "https://example.com/has space.jpg\n");
    vdx_error err = {{0}};
    vdx_source *s = vdx_source_urls(path, &err);
    REQUIRE(s, "%s", err.message);
    CHECK(s->rows == 8, "rows %ld", s->rows);
    REQUIRE(s->n_items == 4, "items %zu", s->n_items);
    CHECK_STR(s->items[0].id, "https://example.com/a.jpg");
    CHECK_STR(s->items[0].url, "https://example.com/a.jpg");
    CHECK_STR(s->items[1].id, "pics/b.png");
    char want[4400];
    snprintf(want, sizeof want, "%s/pics/b.png", dir);
    CHECK_STR(s->items[1].url, want);
    CHECK_STR(s->items[2].url, "/srv/d.webp");
    CHECK_STR(s->items[3].url, "/abs/e.gif");
    REQUIRE(s->n_problems == 4, "problems %zu", s->n_problems);
    CHECK(s->problems[0].line == 6, "line %ld", s->problems[0].line);
    CHECK_STR(s->problems[0].reason, "duplicate entry (first on line 2)");
    CHECK(s->problems[1].line == 7, "line %ld", s->problems[1].line);
    CHECK_STR(s->problems[1].reason,
              "unsupported URL scheme (http, https, file or a path) 'ftp://example.com/c.jpg'");
    CHECK_STR(s->problems[2].reason, "bad URL 'http:/broken'");
    CHECK(s->problems[3].line == 11, "line %ld", s->problems[3].line);
    CHECK_STR(s->problems[3].reason, "bad URL 'https://example.com/has space.jpg'");
    CHECK_STR(s->problems[3].file, "list.txt");
    vdx_source_free(s);
}

/* F12: file: URLs per RFC 8089: localhost and an empty host are this machine, the path
 * is absolute and percent-decoded; another host or a relative path is reported. */
TEST(file_urls_rfc8089)
{
    const char *dir = test_tmpdir("file-urls");
    char path[4200];
    snprintf(path, sizeof path, "%s/list.txt", dir);
    write_text(path, "file://localhost/etc/passwd\n"
                     "file:///srv/a%20b.jpg\n"
                     "file:/srv/c.jpg\n"
                     "FILE://LOCALHOST/srv/d.jpg\n"
                     "file://evil.example/share/e.jpg\n"
                     "file://relative.jpg\n"
                     "file:///srv/%zz.jpg\n");
    vdx_error err = {{0}};
    vdx_source *s = vdx_source_urls(path, &err);
    REQUIRE(s, "%s", err.message);
    REQUIRE(s->n_items == 4, "items %zu", s->n_items);
    CHECK_STR(s->items[0].url, "/etc/passwd");
    CHECK_STR(s->items[1].url, "/srv/a b.jpg");
    CHECK_STR(s->items[2].url, "/srv/c.jpg");
    CHECK_STR(s->items[3].url, "/srv/d.jpg");
    REQUIRE(s->n_problems == 3, "problems %zu", s->n_problems);
    CHECK(strstr(s->problems[0].reason, "file URL names another host") != NULL, "%s", s->problems[0].reason);
    CHECK(strstr(s->problems[1].reason, "file URL names another host") != NULL, "%s", s->problems[1].reason);
    CHECK(strstr(s->problems[2].reason, "malformed percent-escape in a file URL") != NULL, "%s",
          s->problems[2].reason);
    vdx_source_free(s);

    /* found by fuzz/fuzz_urls.c: a file URL decoding to bytes that are not UTF-8 is read as
     * decoded but stored and shown still encoded; a line with an invalid lead byte (F5) or
     * an overlong form, which the line check once let through as ids, is reported */
    write_text(path, "file:///srv/caf%E9.jpg\n"
                     "photo-\xf5\x97\x8b\x8b.jpg\n"
                     "photo-\xc0\xaf.jpg\n"
                     "photo-\xed\xa0\x80.jpg\n");
    s = vdx_source_urls(path, &err);
    REQUIRE(s, "%s", err.message);
    REQUIRE(s->n_items == 1, "items %zu", s->n_items);
    CHECK_STR(s->items[0].url, "/srv/caf%E9.jpg");
    CHECK(s->items[0].path && !strcmp(s->items[0].path, "/srv/caf\xe9.jpg"), "raw path %s",
          s->items[0].path ? s->items[0].path : "(none)");
    CHECK(s->n_problems == 3, "problems %zu", s->n_problems);
    for (size_t i = 0; i < s->n_problems; i++)
        CHECK(s->problems[i].line == (long)i + 2 &&
                  !strcmp(s->problems[i].reason, "invalid UTF-8 or NUL byte in the line"),
              "problem %zu: line %ld %s", i, s->problems[i].line, s->problems[i].reason);
    vdx_source_free(s);
}

/* An image given as the list (its bytes made 295 rejected rows, 4 junk items and a new
 * collection, exit 0): refused whole, naming the line of the first NUL byte. */
TEST(urls_list_of_binary_data_is_refused)
{
    const char *dir = test_tmpdir("urls-binary");
    char path[4200];
    snprintf(path, sizeof path, "%s/photo.jpg", dir);
    FILE *f = fopen(path, "wb");
    REQUIRE(f, "cannot write %s", path);
    fwrite("\xff\xd8\xff\xe0\nJFIF\n\x00\x10" "ab\n", 1, 15, f);
    fclose(f);
    vdx_error err = {0};
    vdx_source *s = vdx_source_urls(path, &err);
    CHECK(!s, "an image was read as a list of URLs");
    vdx_source_free(s);
    char expected[4300];
    snprintf(expected, sizeof expected, "%s: binary data (a NUL byte on line 3), not a list of "
             "URLs or paths, one per line", path);
    CHECK(err.kind == VDX_ERR_INVALID && !strcmp(err.message, expected), "%s: %s",
          vdx_error_kind_name(err.kind), err.message);
}

/* Seeded random damage to the sample's photos file (flipped bytes, stray quotes, tabs
 * and newlines, truncation): never a crash, and every record is either an item or a
 * reported problem; items keep unique, non-empty ids and valid URLs. */
TEST(damaged_tsv_is_reported_not_fatal)
{
    NEED_SHARED(photos, "data/unsplash-sample/photos.tsv000");
    char *orig;
    size_t size;
    vdx_error err = {{0}};
    REQUIRE(vdx_read_file(photos, &orig, &size, &err) == 0, "%s", err.message);
    const char *dir = test_tmpdir("damaged");
    char path[4200];
    snprintf(path, sizeof path, "%s/photos.tsv000", dir);
    size_t header_end = (size_t)(strchr(orig, '\n') - orig) + 1;
    uint32_t state = 12345;
    char *buf = malloc(size + 64);
    int parsed = 0;
    for (int round = 0; round < 300 && !test_case_failed; round++) {
        memcpy(buf, orig, size);
        size_t n = size;
        int edits = 1 + round % 8;
        for (int e = 0; e < edits && n > header_end + 1; e++) {
            state ^= state << 13, state ^= state >> 17, state ^= state << 5;
            size_t at = header_end + state % (n - header_end);
            static const char pick[] = {'"', '\t', '\n', '\r', '\xC3', '\xFF', 0, 'x'};
            switch ((state >> 8) % 4) {
            case 0: buf[at] = pick[(state >> 12) % sizeof pick]; break;
            case 1: n = at; break; /* truncate */
            default: buf[at] = (char)(state >> 16); break;
            }
        }
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, n, f);
        fclose(f);
        vdx_source *s = vdx_source_unsplash(dir, &err);
        if (!s)
            continue; /* a damaged header: refused with a message */
        parsed++;
        CHECK(s->n_items + s->n_problems == (size_t)s->rows, "round %d: %zu items + %zu "
              "problems != %ld rows", round, s->n_items, s->n_problems, s->rows);
        for (size_t i = 0; i < s->n_items; i++) {
            CHECK(*s->items[i].id && vdx_is_http_url(s->items[i].url), "round %d item %zu",
                  round, i);
            for (size_t k = 0; k < i && k < 64; k++)
                CHECK(strcmp(s->items[i].id, s->items[k].id), "round %d: duplicate id %s",
                      round, s->items[i].id);
        }
        vdx_source_free(s);
    }
    CHECK(parsed > 200, "only %d of 300 damaged files parsed", parsed);
    free(buf);
    free(orig);
}

TEST(http_url_validation)
{
    CHECK(vdx_is_http_url("https://images.unsplash.com/photo-1"), "valid https");
    CHECK(vdx_is_http_url("http://127.0.0.1:8080/x?y=1"), "valid http with port");
    CHECK(!vdx_is_http_url("https://"), "no host");
    CHECK(!vdx_is_http_url("https:///path"), "empty host");
    CHECK(!vdx_is_http_url("not a url"), "text");
    CHECK(!vdx_is_http_url("https://a b"), "space");
    CHECK(!vdx_is_http_url("javascript:alert(1)"), "javascript");
}

int main(void)
{
    test_tmp_begin("sources");
    RUN(unsplash_sample_counts);
    RUN(unsplash_sample_problems);
    RUN(unsplash_sample_values);
    RUN(tsv_quoting_rules);
    RUN(keywords_column_in_photos);
    RUN(unsplash_errors);
    RUN(header_names);
    RUN(long_rejected_id_is_shortened);
    RUN(zip_equals_directory);
    RUN(folder_source);
    RUN(folder_problems_do_not_stop_the_walk);
    RUN(folder_non_utf8_names);
    RUN(url_list_source);
    RUN(file_urls_rfc8089);
    RUN(urls_list_of_binary_data_is_refused);
    RUN(damaged_tsv_is_reported_not_fatal);
    RUN(http_url_validation);
    test_tmp_end();
    return test_summary("sources");
}
