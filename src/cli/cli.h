/* Shared pieces of the `vdx` command-line tool: the command table and helpers used by
 * several subcommands (model loading, store opening, output mode). Each subcommand lives
 * in its own cmd_<name>.c and is a thin client of the library. */
#ifndef VDX_CLI_H
#define VDX_CLI_H

#include "vdx/clip.h"
#include "vdx/store.h"

/* Each returns the process exit status (0 ok, 1 failure, 2 usage). argv[0] is the
 * subcommand name. */
int cmd_embed(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_index(int argc, char **argv);
/* After an ingest: builds the index when vdx_store_index_auto says so, with progress on
 * stderr. Returns 0, or 1 after printing the error. */
int cli_index_auto(vdx_store *store);
int cmd_concept(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Prints "vdx: message" to stderr; returns 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "vdx CMD: message\nTry 'vdx CMD --help'." to stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --model argument (NULL: $VDX_MODEL, else the default repo id) → loaded model.
 * Applies --threads when > 0. Prints the error and returns NULL on failure. */
vdx_clip_model *cli_load_model(const char *model_arg, int threads);
/* The model a command works with on a collection: --model, else $VDX_MODEL, else the
 * model the collection records, else (no collection yet, and !must_exist) the default
 * repo id. With must_exist, a missing collection is reported before any model is loaded. */
vdx_clip_model *cli_load_model_for(const char *model_arg, int threads,
                                   const vdx_store_options *store_opts, int must_exist);
/* The identity a model gives a collection. */
void cli_model_identity(const vdx_clip_model *model, vdx_model_identity *id);

/* Prints obj as one JSON line on stdout. When it cannot be printed (out of memory) it
 * says so on stderr, and cli_output_lost() then tells main to exit 1, not 0. */
void cli_print_json_line(const cJSON *obj);
int cli_output_lost(void);

/* stdout is a terminal (tables, progress bars) or not (JSON lines, plain lines). */
int cli_stdout_is_tty(void);
int cli_stderr_is_tty(void);

#endif
