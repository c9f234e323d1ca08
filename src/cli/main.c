/* Entry point of the `vdx` tool: dispatches to the subcommands and prints help. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"embed", cmd_embed, "embed images and texts with CLIP, print the vectors"},
    {"model", cmd_model, "download a model into the Hugging Face cache, or show where it is"},
    {"ingest", cmd_ingest, "fetch, embed and store a dataset (Unsplash Lite, folder, URL list)"},
    {"search", cmd_search, "find the items nearest a text prompt or an image"},
    {"info", cmd_info, "show a collection: model, count, failures, size on disk"},
    {"index", cmd_index, "build the approximate index of a large collection"},
    {"map", cmd_map, "the 2-D map of a collection: build it, export coordinates and clusters"},
    {"concept", cmd_concept, "few-shot concept classifiers: new, next, label, train, score..."},
    {"serve", cmd_serve, "serve the web explorer and its JSON API"},
    {"tokenize", cmd_tokenize, "show the tokens (pieces and ids) a model makes of a text"},
};

static void print_help(FILE *out)
{
    fprintf(out, "usage: vdx <command> [options]\n\n"
                 "vdx explores an image collection by meaning with CLIP and turns an idea into\n"
                 "a classifier in a few clicks.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'vdx <command> --help' describes a command's options; 'vdx --version' prints\n"
                 "the version. See also vdx(1) (docs/vdx.1).\n");
}

/* Output still buffered, or a write that failed earlier (full disk, closed file), must
 * not end in exit status 0: the user would trust a truncated result. */
static int check_stdout(int status)
{
    if (cli_output_lost() && status == 0)
        return 1;
    errno = 0;
    if ((fflush(stdout) != 0 || ferror(stdout)) && status == 0) {
        fprintf(stderr, "vdx: writing to standard output failed%s%s\n", errno ? ": " : "",
                errno ? strerror(errno) : "");
        return 1;
    }
    return status;
}

/* The numeric tuning variables the library reads (vdx(1), ENVIRONMENT) ignore a value
 * that is not a positive integer; a user who set VDX_INDEX_NPROBE=all would believe it
 * took effect. Refused here, for every command, before any work. */
static int check_numeric_environment(void)
{
    static const char *const names[] = {"VDX_INDEX_NPROBE", "VDX_SEARCH_THREADS",
                                        "VDX_INDEX_RERANK"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        char *end;
        errno = 0;
        long long n = v && *v ? strtoll(v, &end, 10) : 1;
        if (v && *v && (errno || *end || n < 1 || n > 1000000000)) {
            fprintf(stderr, "vdx: %s='%s' is not a number from 1 to 1000000000 (unset it for "
                            "the default)\n", names[i], v);
            return 2;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    /* No fastbins in glibc's malloc: a request that frees a million small blocks (the
     * JSON of a whole collection's scores) otherwise leaves them for the next large
     * allocation to consolidate, which billed 130-200 ms to whatever request came next
     * (bench_explore at 1M items: evaluate 326 -> 165 ms, the scores as JSON
     * 2.95 -> 2.35 s). Small blocks still go through the per-thread cache. */
    mallopt(M_MXFAST, 0);
    if (argc < 2) {
        print_help(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_help(stdout);
        return check_stdout(0);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("vdx %s\n", VDX_VERSION);
        return check_stdout(0);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            int status = check_numeric_environment();
            return status ? status : check_stdout(commands[i].run(argc - 1, argv + 1));
        }
    fprintf(stderr, "vdx: unknown command '%s'\n\n", argv[1]);
    print_help(stderr);
    return 2;
}
