/* Shared pieces of the `vdx` command-line tool: the command table and helpers used by
 * several subcommands (model loading, store opening, output mode). Each subcommand lives
 * in its own cmd_<name>.c and is a thin client of the library. */
#ifndef VDX_CLI_H
#define VDX_CLI_H

#include <stdio.h>

#include "vdx/clip.h"
#include "vdx/ingest.h"
#include "vdx/store.h"
#include "vdx/textmodel.h"

/* Each returns the process exit status (0 ok, 1 failure, 2 usage). argv[0] is the
 * subcommand name. */
int cmd_embed(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_index(int argc, char **argv);
/* After an ingest: builds the index when vdx_store_index_auto says so, with progress on
 * stderr. Returns 0, or the exit status of its kind after printing the error. */
int cli_index_auto(vdx_store *store);
int cmd_map(int argc, char **argv);
int cmd_concept(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);

/* Prints "vdx: message" to stderr; returns 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The exit status of a library error's kind (vdx(1), EXIT STATUS): 1 unclassified,
 * 3 invalid input, 4 not found, 5 conflict, 6 model mismatch, 7 I/O, 8 disk full,
 * 9 out of memory, 10 corrupt data. */
int cli_exit_status(vdx_error_kind kind);
/* Prints "vdx: message" (printf-style; the message usually ends with err->message) and
 * returns the exit status of err's kind, which cli_last_status() then also returns. */
int cli_fail(const vdx_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for an error of the CLI's own (e.g. VDX_ERR_NO_MEMORY). */
int cli_fail_kind(vdx_error_kind kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The exit status of the last cli_fail (1 when there was none): for helpers that print
 * their error and return NULL, like cli_load_model. */
int cli_last_status(void);
/* Prints "vdx CMD: message\nTry 'vdx CMD --help'." to stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --precision P (NULL: $VDX_PRECISION, else the command's default): the precision of
 * the models cli_load_model loads from now on. Given (option or environment), it applies
 * to both towers; by default the image tower gets image_default and text prompts fp32.
 * Returns 0, or prints the usage error and returns 2. */
int cli_use_precision(const char *cmd, const char *arg, vdx_precision image_default);
/* The load options cli_use_precision set (for `vdx serve`, which loads in the server). */
const vdx_clip_options *cli_clip_options(void);

/* --model argument (NULL: $VDX_MODEL, else the default repo id) → loaded model.
 * Applies --threads when > 0. Prints the error and returns NULL on failure. */
vdx_clip_model *cli_load_model(const char *model_arg, int threads);
/* The model a command works with on a collection: --model, else $VDX_MODEL, else the
 * model the collection records, else (no collection yet, and !must_exist) the default
 * repo id. With must_exist, a missing collection is reported before any model is loaded. */
vdx_clip_model *cli_load_model_for(const char *model_arg, int threads,
                                   const vdx_store_options *store_opts, int must_exist);
/* --collection NAME, --data DIR and --store URL, the same in every command that opens a
 * collection: CLI_STORE_LONGOPTS goes into the getopt_long table, and cli_store_options
 * applies the option getopt returned, returning 1 when it was one of these three. */
#define CLI_STORE_LONGOPTS                                                               \
    {"collection", required_argument, 0, 'c'}, {"data", required_argument, 0, 'd'},     \
        {"store", required_argument, 0, 's'}
int cli_store_options(int opt, const char *arg, vdx_store_options *so);


/* The text tower a command embeds prompts with: text_arg (--text-model), else
 * $VDX_TEXT_MODEL; when neither is set, returns NULL with *failed = 0 (use the CLIP
 * model's own). Otherwise it loads the model and checks that it shares the space of the
 * collection's image model `image`: a known pairing (vdx_text_model_known_pair), one this
 * collection recorded before, or `force`; the dimensions must match in every case. An
 * accepted pairing is recorded in the collection's text-models.json. On any failure the
 * error is printed, *failed = 1 and cli_last_status() is the exit status of its kind. */
vdx_text_model *cli_load_text_model(const char *text_arg, int force,
                                    const vdx_store_options *store_opts,
                                    const vdx_model_identity *image, int threads, int *failed);
/* The text model named by --text-model or $VDX_TEXT_MODEL (NULL: none). */
const char *cli_text_model_arg(const char *text_arg);

/* Prints obj as one JSON line on stdout. When it cannot be printed (out of memory) it
 * says so on stderr, and cli_output_lost() then tells main to exit 1, not 0. */
void cli_print_json_line(const cJSON *obj);
int cli_output_lost(void);

/* `vdx ingest`'s progress (cli_progress.c): lines on `out` (a rewritten line when tty,
 * else one every interval_s), and progress.json through `file` (may be NULL). */
typedef struct cli_progress {
    FILE *out;
    int tty;
    double interval_s;
    vdx_progress *file;
    double last_print;
    int printed_tty_line, file_warned;
    char last_line[256]; /* the last plain line printed: the final one is not repeated */
} cli_progress;
void cli_progress_update(cli_progress *p, const vdx_ingest_stats *s);
/* The last line, and progress.json with state "done", "stopped" or "failed". */
void cli_progress_finish(cli_progress *p, const vdx_ingest_stats *s, const char *state);
/* The end-of-run summary: ingested, skipped, failed by reason, time; it starts with
 * "done:", "stopped:" (a signal) or, when failed, "aborted:" (an error ended the run; what
 * it committed is kept). */
void cli_ingest_summary(FILE *out, const vdx_ingest_report *r, int failed);

/* stdout is a terminal (tables, progress bars) or not (JSON lines, plain lines). */
int cli_stdout_is_tty(void);
int cli_stderr_is_tty(void);

#endif
