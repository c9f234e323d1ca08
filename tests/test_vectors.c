/* Vectors made elsewhere: the .npy reader (float32, float16, 1-D, versions 1 and 2) and
 * its refusals (magic, dtype, Fortran order, shape, truncation), and vdx_ingest_vectors:
 * rows land normalised with their ids and metadata, a re-run skips what is stored, and
 * bad rows, ids and metadata are refused before anything is written, naming file, row,
 * line. */
#include <stdint.h>
#include <unistd.h>

#include "store/scan.h"
#include "common/half.h"
#include "test.h"
#include "test_tmp.h"
#include "vdx/ingest.h"
#include "vdx/store.h"

static char dir[4096];

static void write_file(const char *name, const void *data, size_t size)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, size, f);
    fclose(f);
}

static const char *path_of(const char *name)
{
    static char path[4][4200];
    static int i;
    i = (i + 1) % 4;
    snprintf(path[i], sizeof path[i], "%s/%s", dir, name);
    return path[i];
}

/* A version-1 .npy with the given header dict and data. */
static void write_npy(const char *name, const char *dict, const void *data, size_t size)
{
    char header[256];
    int len = snprintf(header, sizeof header, "%s", dict);
    int pad = (64 - (10 + len + 1) % 64) % 64;
    memset(header + len, ' ', (size_t)pad);
    header[len + pad] = '\n';
    uint8_t buf[8192];
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    uint16_t hl = (uint16_t)(len + pad + 1);
    buf[8] = hl & 0xff;
    buf[9] = hl >> 8;
    memcpy(buf + 10, header, hl);
    memcpy(buf + 10 + hl, data, size);
    write_file(name, buf, 10 + hl + size);
}

static int contains(const char *s, const char *part) { return strstr(s, part) != NULL; }

TEST(npy_reads_f32_f16_and_1d)
{
    float m[3][4] = {{1, 2, 3, 4}, {0, 0, 1, 0}, {-1, 0.5f, 0, 0}};
    write_npy("a.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", m, sizeof m);
    vdx_npy npy;
    vdx_error err = {{0}};
    REQUIRE(vdx_npy_open(path_of("a.npy"), &npy, &err) == 0, "%s", err.message);
    CHECK(npy.rows == 3 && npy.cols == 4 && !npy.f16, "shape %lld x %d", (long long)npy.rows,
          npy.cols);
    float row[4];
    vdx_npy_row(&npy, 2, row);
    CHECK(row[0] == -1 && row[1] == 0.5f, "row 2 = %g %g", row[0], row[1]);
    vdx_npy_close(&npy);

    uint16_t h[2][4];
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 4; c++)
            h[r][c] = half_f32_to_f16(m[r][c]);
    write_npy("h.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 4), }", h, sizeof h);
    REQUIRE(vdx_npy_open(path_of("h.npy"), &npy, &err) == 0, "%s", err.message);
    CHECK(npy.f16 && npy.rows == 2, "f16 %d rows %lld", npy.f16, (long long)npy.rows);
    vdx_npy_row(&npy, 0, row);
    CHECK(row[0] == 1 && row[3] == 4, "f16 row 0 = %g .. %g", row[0], row[3]);
    vdx_npy_close(&npy);

    write_npy("v.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", m[0], 16);
    REQUIRE(vdx_npy_open(path_of("v.npy"), &npy, &err) == 0, "%s", err.message);
    CHECK(npy.rows == 1 && npy.cols == 4, "1-D shape %lld x %d", (long long)npy.rows, npy.cols);
    vdx_npy_close(&npy);
}

TEST(npy_refusals)
{
    float m[2][4] = {{1, 2, 3, 4}, {1, 0, 0, 0}};
    vdx_npy npy;
    vdx_error err = {{0}};
    static const struct {
        const char *dict;
        size_t size;
        const char *message;
    } cases[] = {
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1, 4), }", 32, "'<f8' is not float32"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 4), }", 32, "Fortran order"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }", 32, "3-dimensional"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 32, "truncated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4), }", 32, "trailing bytes"},
        {"{'descr': '<f4', 'fortran_order': False, }", 32, "no 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0), }", 0, "dimension 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_npy("bad.npy", cases[i].dict, m, cases[i].size);
        CHECK(vdx_npy_open(path_of("bad.npy"), &npy, &err) != 0 &&
                  contains(err.message, cases[i].message) && contains(err.message, "bad.npy"),
              "case %zu: %s", i, err.message);
    }
    write_file("text.npy", "hello world, not numpy", 22);
    CHECK(vdx_npy_open(path_of("text.npy"), &npy, &err) != 0 && contains(err.message, "magic"),
          "%s", err.message);

    float nan_rows[2][4] = {{1, 2, 3, 4}, {1, 0, NAN, 0}};
    write_npy("nan.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", nan_rows,
              sizeof nan_rows);
    REQUIRE(vdx_npy_open(path_of("nan.npy"), &npy, &err) == 0, "%s", err.message);
    CHECK(vdx_npy_check_row(&npy, "nan.npy", 0, &err) == 0, "row 0 is fine");
    CHECK(vdx_npy_check_row(&npy, "nan.npy", 1, &err) != 0 &&
              contains(err.message, "row 1, column 2 is NaN"), "%s", err.message);
    vdx_npy_close(&npy);
}

static vdx_store *open_store(const char *collection, int dims, vdx_error *err)
{
    vdx_model_identity m = {0};
    snprintf(m.name, sizeof m.name, "elsewhere");
    memset(m.config_hash, 'c', 64);
    m.dims = dims;
    char data[4200];
    snprintf(data, sizeof data, "%s/data", dir);
    vdx_store_options o = {.data_dir = data, .collection = collection, .create = 1, .model = &m};
    return vdx_store_open(&o, err);
}

TEST(ingest_vectors_round_trip)
{
    float m[3][4] = {{3, 0, 0, 4}, {0, 2, 0, 0}, {0, 0, 1, 1}};
    write_npy("in.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", m, sizeof m);
    write_file("ids.txt", "a\nb\nc\n", 6);
    write_file("meta.tsv", "id\tcolour\nc\tred\na\tblue\n", 23);
    vdx_error err = {{0}};
    vdx_store *s = open_store("rt", 4, &err);
    REQUIRE(s, "%s", err.message);
    vdx_vectors_source src = {path_of("in.npy"), path_of("ids.txt"), path_of("meta.tsv")};
    vdx_ingest_report rep;
    REQUIRE(vdx_ingest_vectors(s, &src, NULL, &rep, &err) == 0, "%s", err.message);
    CHECK(rep.stats.stored == 3 && vdx_store_count(s) == 3, "stored %ld", rep.stats.stored);
    const char *ids[1] = {"a"};
    float v[4];
    REQUIRE(vdx_store_get_vectors(s, ids, 1, v, &err) == 0, "%s", err.message);
    CHECK(fabsf(v[0] - 0.6f) < 1e-6 && fabsf(v[3] - 0.8f) < 1e-6, "a normalised: %g %g", v[0],
          v[3]);
    float q[4] = {0, 0, 1, 1};
    vdx_search_request req = {.query = q, .k = 1, .where = "colour = 'red'"};
    vdx_hits hits = {0};
    REQUIRE(vdx_store_search(s, &req, &hits, &err) == 0, "%s", err.message);
    CHECK(hits.n == 1 && !strcmp(hits.hits[0].id, "c"), "filtered search found %s",
          hits.n ? hits.hits[0].id : "nothing");
    vdx_hits_free(&hits);
    /* a re-run stores nothing twice */
    REQUIRE(vdx_ingest_vectors(s, &src, NULL, &rep, &err) == 0, "%s", err.message);
    CHECK(rep.stats.stored == 0 && rep.stats.skipped == 3 && vdx_store_count(s) == 3,
          "re-run stored %ld skipped %ld", rep.stats.stored, rep.stats.skipped);
    vdx_store_close(s);
}

TEST(ingest_vectors_refusals_store_nothing)
{
    float m[2][4] = {{1, 0, 0, 0}, {0, 0, 0, 0}};
    write_npy("zero.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", m, sizeof m);
    write_npy("ok.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4), }", m, 16);
    write_npy("wide.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 8), }", m, 32);
    write_file("two.txt", "x\ny\n", 4);
    write_file("one.txt", "x\n", 2);
    write_file("dup.txt", "x\nx\n", 4);
    write_file("badmeta.tsv", "id\tcolour\nx\tred\textra\n", 22);
    write_file("unknown.tsv", "id\tcolour\nzz\tred\n", 17);
    vdx_error err = {{0}};
    vdx_store *s = open_store("bad", 4, &err);
    REQUIRE(s, "%s", err.message);
    static const struct {
        const char *npy, *ids, *meta, *message;
    } cases[] = {
        {"zero.npy", "two.txt", NULL, "row 1 is all zeros"},
        {"wide.npy", "one.txt", NULL, "dimension 8"},
        {"ok.npy", "two.txt", NULL, "has 2 ids but"},
        {"zero.npy", "dup.txt", NULL, "line 2: id 'x' repeats line 1"},
        {"ok.npy", "one.txt", "badmeta.tsv", "line 2: more columns"},
        {"ok.npy", "one.txt", "unknown.tsv", "id 'zz' is not in"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vdx_vectors_source src = {path_of(cases[i].npy), path_of(cases[i].ids),
                                  cases[i].meta ? path_of(cases[i].meta) : NULL};
        vdx_ingest_report rep;
        CHECK(vdx_ingest_vectors(s, &src, NULL, &rep, &err) != 0 &&
                  contains(err.message, cases[i].message),
              "case %zu: %s", i, err.message);
        CHECK(vdx_store_count(s) == 0, "case %zu stored %lld", i, (long long)vdx_store_count(s));
    }
    vdx_store_close(s);
}

int main(void)
{
    test_tmp_begin("vectors");
    snprintf(dir, sizeof dir, "%s", getenv("TMPDIR"));
    RUN(npy_reads_f32_f16_and_1d);
    RUN(npy_refusals);
    RUN(ingest_vectors_round_trip);
    RUN(ingest_vectors_refusals_store_nothing);
    test_tmp_end();
    return test_summary("vectors");
}
