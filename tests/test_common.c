/* The file helpers of src/common/common.c on the paths that go wrong: a read that fails
 * says why, and an atomic write whose temporary name would not fit refuses instead of
 * writing through a truncated name (which could be another file's). */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "test_tmp.h"
#include "vdx/common.h"

TEST(read_file_of_a_directory_says_why)
{
    const char *dir = test_tmpdir("common-read");
    char *data = (char *)"untouched";
    size_t size = 7;
    vdx_error err = {0};
    CHECK(vdx_read_file(dir, &data, &size, &err) == -1, "reading a directory succeeded");
    char expected[4200];
    snprintf(expected, sizeof expected, "%s: read error after 0 bytes: Is a directory", dir);
    CHECK(strcmp(err.message, expected) == 0, "message: %s", err.message);
    /* the user's mistake (exit status 3), not an I/O failure (7) */
    CHECK(err.kind == VDX_ERR_INVALID, "kind %s", vdx_error_kind_name(err.kind));
    CHECK(data == NULL && size == 0, "outputs not reset on failure");
}

/* A directory whose path is exactly `length` characters, made of nested folders. */
static int make_dir_of_length(const char *base, size_t length, char *out, size_t out_size)
{
    size_t n = strlen(base);
    if (n >= length || length >= out_size)
        return -1;
    memcpy(out, base, n + 1);
    while (n < length) {
        size_t part = length - n - 1; /* characters after the slash */
        if (part > 200)
            part = 200;
        if (length - (n + 1 + part) == 1) /* a lone slash cannot end the path */
            part--;
        out[n++] = '/';
        memset(out + n, 'd', part);
        n += part;
        out[n] = 0;
        if (mkdir(out, 0755) != 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

TEST(atomic_write_refuses_a_path_too_long_for_its_temporary_name)
{
    /* The temporary name is PATH.tmp.PID in a 4096-byte buffer: with a 4090-character
     * PATH it would be cut to PATH.tmp. — a name another file may have. */
    char dir[4096], path[4096], neighbour[4096];
    REQUIRE(make_dir_of_length(test_tmpdir("common-long"), 4088, dir, sizeof dir) == 0,
            "cannot build a deep directory");
    snprintf(path, sizeof path, "%s/f", dir);
    snprintf(neighbour, sizeof neighbour, "%s/f.tmp.", dir);
    REQUIRE(strlen(path) == 4090, "path is %zu characters", strlen(path));
    FILE *f = fopen(neighbour, "wb");
    REQUIRE(f && fwrite("keep", 1, 4, f) == 4 && fclose(f) == 0, "cannot write f.tmp.");
    vdx_error err = {0};

    CHECK(vdx_write_file_atomic(path, "new", 3, &err) == -1, "the long path was written");
    CHECK(strncmp(err.message, "path too long (4090 bytes) for its temporary file: /", 52) == 0,
          "message: %s", err.message);
    char *text = NULL;
    size_t size = 0;
    CHECK(vdx_read_file(neighbour, &text, &size, &err) == 0 && size == 4 &&
              memcmp(text, "keep", 4) == 0,
          "the neighbouring file f.tmp. was clobbered");
    free(text);
}

TEST(atomic_write_replaces_the_file)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/out.txt", test_tmpdir("common-write"));
    vdx_error err = {0};
    REQUIRE(vdx_write_file_atomic(path, "first", 5, &err) == 0, "%s", err.message);
    REQUIRE(vdx_write_file_atomic(path, "second", 6, &err) == 0, "%s", err.message);
    char *text = NULL;
    size_t size = 0;
    REQUIRE(vdx_read_file(path, &text, &size, &err) == 0, "%s", err.message);
    CHECK(size == 6 && strcmp(text, "second") == 0, "content: %s", text);
    free(text);
}

int main(void)
{
    test_tmp_begin("common");
    RUN(read_file_of_a_directory_says_why);
    RUN(atomic_write_refuses_a_path_too_long_for_its_temporary_name);
    RUN(atomic_write_replaces_the_file);
    test_tmp_end();
    return test_summary("common");
}
