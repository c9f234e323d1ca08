/* vdx concept: the explore loop from the command line. Each subcommand opens the
 * collection and its concept book, makes one library call (include/vdx/explore.h) and
 * prints the result: readable tables on a terminal, JSON lines otherwise (one object per
 * item for next/score/list, one object for the rest), or always JSON with --json. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "vdx/explore.h"

#define MAX_EXAMPLES 1000

static const char usage_text[] =
    "usage: vdx concept <command> [options]\n"
    "\n"
    "Few-shot concept classifiers: start from a prompt, look at candidates, label them,\n"
    "train, repeat. Concepts are kept with the collection (concepts.db).\n"
    "\n"
    "commands:\n"
    "  new NAME [--prompt TEXT] [--example ID]... [--trainer seed|anchored|auto]\n"
    "                                              create (prompt and/or example items;\n"
    "                                              trainer: auto unless given)\n"
    "  next NAME [-k 9] [--mode nearest|boundary|random|audit] [--page N] [--where EXPR]\n"
    "            [--hide-duplicates] [--seed N]   candidates to label (never labelled ones);\n"
    "                                              audit: -k 20 items drawn at random,\n"
    "                                              stratified by score, kept until\n"
    "                                              labelled, that estimate positives,\n"
    "                                              precision, recall\n"
    "  label NAME +ID -ID ~ID ...                 +: positive, -: negative, ~: clear\n"
    "  train NAME [--iters 5] [--lr 0.1]           one round over all labels (the anchored\n"
    "                                              trainer: --iters 100, no --lr)\n"
    "  trainer NAME seed|anchored|auto             the trainer of the next rounds: seed (the\n"
    "                                              original's fit), anchored (logistic\n"
    "                                              regression with a bias, pulled toward the\n"
    "                                              prompt, random items as weak negatives)\n"
    "                                              or auto (the default: seed until 20 audit\n"
    "                                              labels, then anchored; docs/explore.md)\n"
    "  show NAME [--weight] [--bins 40] [--exact]  labels, history, accuracy, histogram\n"
    "                                              (--exact: every score from its vector,\n"
    "                                              not from the index's codes)\n"
    "  score NAME [--top N] [--threshold T] [--offset N] [--where EXPR] [--exact]\n"
    "  export NAME --labels|--scores|--classifier [--format csv|jsonl|json]\n"
    "            [--threshold T] [-o|--output FILE]\n"
    "  import FILE [--name NAME]                   a classifier exported by vdx\n"
    "  threshold NAME T                            set the logit threshold (default 0)\n"
    "  fit-threshold NAME [--precision P] [--source auto|calibration|labels]\n"
    "                                              the threshold of the best F1 (or the most\n"
    "                                              recall at precision >= P) over the\n"
    "                                              collection's calibrated probabilities\n"
    "                                              (auto: when calibrated) or the labels\n"
    "  undo NAME [--round [--revert-labels]]       take back the newest label action; with\n"
    "                                              --round the last round (its labels stay)\n"
    "  redo NAME                                   replay the newest undone label action\n"
    "  history NAME [--top N]                      the label actions, newest first\n"
    "  revert NAME ACTION                          a new action undoing any action of history\n"
    "  list | rm NAME | rename OLD NEW | copy NAME NEW\n"
    "\n"
    "common options:\n"
    "  --collection NAME  collection (default \"default\")\n"
    "  --data DIR         data directory (default $VDX_HOME, else ~/.local/share/vdx)\n"
    "  --store URL        store backend (default $VDX_STORE, else embedded)\n"
    "  --model M          model directory or repo id to embed prompts (default: $VDX_MODEL,\n"
    "                     else the collection's model)\n"
    "  --text-model M     new: embed the prompt with this text model (default:\n"
    "                     $VDX_TEXT_MODEL), e.g. M-CLIP/XLM-Roberta-Large-Vit-B-32 for\n"
    "                     prompts in ~100 languages; it must share the collection's space\n"
    "  --force-text-model new: accept a text model not known to share that space\n"
    "  --json             JSON output even on a terminal\n"
    "  -h, --help         this help\n"
    "\n"
    "Scores are logits x.w; probabilities are calibrated after each round (sigmoid(a.s+b),\n"
    "Platt scaling); an item is positive above the logit threshold (default 0). Label ids\n"
    "that start with '-' or '+' are fine:\n"
    "the first character is the label, the rest the id.\n"
    "\n"
    "example:\n"
    "  vdx concept new dogs --prompt \"a photo of a dog\"\n"
    "  vdx concept next dogs\n"
    "  vdx concept label dogs +abc123 -def456 -ghi789\n"
    "  vdx concept train dogs\n"
    "  vdx concept export dogs --scores --format csv -o dogs.csv\n";

/* Parsed command line. */
typedef struct options {
    vdx_store_options store; /* --collection, --data, --store (cli_store_options) */
    const char *model, *text_model;
    int force_text_model;
    int json;
    const char *positional[8];
    int n_positional;
    /* label operations, in order */
    char **label_ops;
    int n_label_ops;
    /* subcommand options */
    const char *prompt, *mode, *where, *format, *output, *name, *source, *trainer;
    const char *examples[MAX_EXAMPLES];
    int n_examples;
    int k, page, iters, top, offset, bins, hide_duplicates, with_weight, exact;
    int want_labels, want_scores, want_classifier;
    int round, revert_labels, has_precision;
    double precision;
    double lr, threshold;
    int has_threshold;
    unsigned long long seed;
} options;

static int parse_int(const char *cmd, const char *opt, const char *text, int min, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > 1000000000)
        return cli_usage_error(cmd, "%s needs an integer >= %d, not '%s'", opt, min, text);
    *out = (int)v;
    return 0;
}

static int parse_double(const char *cmd, const char *opt, const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v))
        return cli_usage_error(cmd, "%s needs a number, not '%s'", opt, text);
    *out = v;
    return 0;
}

/* The options of each subcommand besides the common ones (--collection, --data, --store,
 * --model, --json). One subcommand's option given to another is refused, never ignored:
 * `next dogs --top 5` would otherwise show 9 candidates and `show --threshold 1` change
 * nothing, silently. Each list is space-separated with a space at both ends. */
static const struct {
    const char *sub, *options;
} own_options[] = {
    {"new", " --prompt --example --trainer --text-model --force-text-model "},
    {"next", " -k --k --mode --page --where --hide-duplicates --seed "},
    {"train", " --iters --lr "},
    {"show", " --weight --bins --exact "},
    {"score", " --top --threshold --offset --where --exact "},
    {"export", " --labels --scores --classifier --format --threshold -o --output "},
    {"import", " --name "},
    {"fit-threshold", " --precision --source "},
    {"undo", " --round --revert-labels "},
    {"history", " --top "},
};

/* 1 when the list (one of own_options') holds the option `arg`. */
static int listed(const char *list, const char *arg)
{
    size_t n = strlen(arg);
    for (const char *p = strstr(list, arg); p; p = strstr(p + 1, arg))
        if (p[-1] == ' ' && p[n] == ' ')
            return 1;
    return 0;
}

/* Refuses `arg` when it is some subcommand's option but not one of `sub`'s. */
static int check_applies(const char *cmd, const char *sub, const char *arg)
{
    const char *own = "", *anywhere = NULL;
    for (size_t i = 0; i < sizeof own_options / sizeof own_options[0]; i++) {
        if (!strcmp(own_options[i].sub, sub))
            own = own_options[i].options;
        if (listed(own_options[i].options, arg))
            anywhere = own_options[i].sub;
    }
    if (!anywhere || listed(own, arg))
        return 0;
    if (!*own)
        return cli_usage_error(cmd, "%s is an option of 'concept %s', not of '%s' (which takes "
                               "only --collection, --data, --store, --model and --json)",
                               arg, anywhere, sub);
    return cli_usage_error(cmd, "%s is not an option of '%s' (its own:%.*s)", arg, sub,
                           (int)strlen(own) - 1, own);
}

/* Parses argv[2..]. Returns 0, or the exit status (2) after a usage error. */
/* The letter cli_store_options knows an argument "--collection" / "--data" / "--store"
 * by (the shared option table), or 0. */
static int store_option(const char *arg)
{
    static const struct option store_options[] = {CLI_STORE_LONGOPTS};
    for (size_t i = 0; i < sizeof store_options / sizeof store_options[0]; i++)
        if (!strncmp(arg, "--", 2) && !strcmp(arg + 2, store_options[i].name))
            return store_options[i].val;
    return 0;
}

static int parse_options(int argc, char **argv, const char *sub, options *o)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "concept %s", sub);
    int labelling = !strcmp(sub, "label"), no_more_options = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKES_VALUE()                                                                      \
    do {                                                                                   \
        if (!value)                                                                        \
            return cli_usage_error(cmd, "%s needs a value", a);                            \
        i++;                                                                               \
    } while (0)
        if (!no_more_options && a[0] == '-' && !(labelling && o->n_positional >= 1) &&
            check_applies(cmd, sub, a) != 0)
            return 2;
        if (!no_more_options && !strcmp(a, "--")) {
            no_more_options = 1;
        } else if (!no_more_options && store_option(a)) {
            TAKES_VALUE();
            cli_store_options(store_option(a), value, &o->store);
        } else if (!no_more_options && !strcmp(a, "--model")) {
            TAKES_VALUE();
            o->model = value;
        } else if (!no_more_options && !strcmp(a, "--text-model")) {
            TAKES_VALUE();
            o->text_model = value;
        } else if (!no_more_options && !strcmp(a, "--force-text-model")) {
            o->force_text_model = 1;
        } else if (!no_more_options && !strcmp(a, "--json")) {
            o->json = 1;
        } else if (labelling && o->n_positional >= 1) {
            /* every other argument after the name is a label operation */
            if (a[0] != '+' && a[0] != '-' && a[0] != '~')
                return cli_usage_error(cmd, "'%s': a label starts with + (positive), - "
                                            "(negative) or ~ (clear)", a);
            if (!a[1])
                return cli_usage_error(cmd, "'%s' names no item", a);
            o->label_ops[o->n_label_ops++] = argv[i];
        } else if (!no_more_options && !strcmp(a, "--prompt")) {
            TAKES_VALUE();
            o->prompt = value;
        } else if (!no_more_options && !strcmp(a, "--trainer")) {
            TAKES_VALUE();
            o->trainer = value;
        } else if (!no_more_options && !strcmp(a, "--example")) {
            TAKES_VALUE();
            if (o->n_examples == MAX_EXAMPLES)
                return cli_usage_error(cmd, "at most %d --example", MAX_EXAMPLES);
            o->examples[o->n_examples++] = value;
        } else if (!no_more_options && (!strcmp(a, "-k") || !strcmp(a, "--k"))) {
            TAKES_VALUE();
            if (parse_int(cmd, a, value, 1, &o->k))
                return 2;
        } else if (!no_more_options && !strcmp(a, "--mode")) {
            TAKES_VALUE();
            o->mode = value;
        } else if (!no_more_options && !strcmp(a, "--page")) {
            TAKES_VALUE();
            if (parse_int(cmd, a, value, 0, &o->page))
                return 2;
        } else if (!no_more_options && !strcmp(a, "--where")) {
            TAKES_VALUE();
            o->where = value;
        } else if (!no_more_options && !strcmp(a, "--hide-duplicates")) {
            o->hide_duplicates = 1;
        } else if (!no_more_options && !strcmp(a, "--seed")) {
            TAKES_VALUE();
            char *end;
            errno = 0;
            o->seed = strtoull(value, &end, 10);
            if (errno || end == value || *end)
                return cli_usage_error(cmd, "--seed needs a non-negative integer");
        } else if (!no_more_options && !strcmp(a, "--iters")) {
            TAKES_VALUE();
            if (parse_int(cmd, a, value, 1, &o->iters))
                return 2;
        } else if (!no_more_options && !strcmp(a, "--lr")) {
            TAKES_VALUE();
            if (parse_double(cmd, a, value, &o->lr))
                return 2;
            if (!(o->lr > 0))
                return cli_usage_error(cmd, "--lr must be positive");
        } else if (!no_more_options && !strcmp(a, "--top")) {
            TAKES_VALUE();
            if (parse_int(cmd, a, value, 1, &o->top))
                return 2;
        } else if (!no_more_options && !strcmp(a, "--offset")) {
            TAKES_VALUE();
            if (parse_int(cmd, a, value, 0, &o->offset))
                return 2;
        } else if (!no_more_options && !strcmp(a, "--bins")) {
            TAKES_VALUE();
            if (parse_int(cmd, a, value, 1, &o->bins))
                return 2;
        } else if (!no_more_options && !strcmp(a, "--threshold")) {
            TAKES_VALUE();
            if (parse_double(cmd, a, value, &o->threshold))
                return 2;
            o->has_threshold = 1;
        } else if (!no_more_options && !strcmp(a, "--round")) {
            o->round = 1;
        } else if (!no_more_options && !strcmp(a, "--revert-labels")) {
            o->revert_labels = 1;
        } else if (!no_more_options && !strcmp(a, "--source")) {
            TAKES_VALUE();
            o->source = value;
        } else if (!no_more_options && !strcmp(a, "--precision")) {
            TAKES_VALUE();
            if (parse_double(cmd, a, value, &o->precision))
                return 2;
            if (!(o->precision > 0 && o->precision <= 1))
                return cli_usage_error(cmd, "--precision must be in (0, 1]");
            o->has_precision = 1;
        } else if (!no_more_options && !strcmp(a, "--weight")) {
            o->with_weight = 1;
        } else if (!no_more_options && !strcmp(a, "--exact")) {
            o->exact = 1;
        } else if (!no_more_options && !strcmp(a, "--labels")) {
            o->want_labels = 1;
        } else if (!no_more_options && !strcmp(a, "--scores")) {
            o->want_scores = 1;
        } else if (!no_more_options && !strcmp(a, "--classifier")) {
            o->want_classifier = 1;
        } else if (!no_more_options && !strcmp(a, "--format")) {
            TAKES_VALUE();
            o->format = value;
        } else if (!no_more_options && (!strcmp(a, "-o") || !strcmp(a, "--output"))) {
            TAKES_VALUE();
            if (!*value)
                return cli_usage_error(cmd, "%s needs a file name (or - for standard output)", a);
            o->output = value;
        } else if (!no_more_options && !strcmp(a, "--name")) {
            TAKES_VALUE();
            o->name = value;
        } else if (!no_more_options && a[0] == '-' && a[1]) {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        } else {
            if (o->n_positional == (int)(sizeof o->positional / sizeof o->positional[0]))
                return cli_usage_error(cmd, "too many arguments");
            o->positional[o->n_positional++] = a;
        }
#undef TAKES_VALUE
    }
    return 0;
}

/* ---- output ------------------------------------------------------------------------- */

static int json_output(const options *o)
{
    return o->json || !cli_stdout_is_tty();
}

static double number(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *string(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void print_items_table(const cJSON *items, int with_rank)
{
    printf("%s%-24s %9s %7s %5s  %s\n", with_rank ? "  rank " : "  #  ", "id", "score", "p",
           with_rank ? "label" : "", "url");
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, items)
    {
        i++;
        const cJSON *label = cJSON_GetObjectItem(item, "label");
        const char *label_text = !with_rank ? ""
                                 : cJSON_IsNumber(label) ? (label->valueint ? "+" : "-")
                                                         : "";
        if (with_rank)
            printf("%6d ", (int)number(item, "rank"));
        else
            printf("%3d  ", i);
        printf("%-24s %9.4f %7.4f %5s  %s\n", string(item, "id"), number(item, "score"),
               number(item, "probability"), label_text, string(item, "url"));
    }
}

static void print_history(const cJSON *history)
{
    if (cJSON_GetArraySize(history) == 0) {
        printf("  no rounds yet: label candidates ('vdx concept next'), then train\n");
        return;
    }
    printf("  round  time                  added   +    -   loss first -> last   train acc\n");
    const cJSON *r;
    cJSON_ArrayForEach(r, history)
    {
        const cJSON *losses = cJSON_GetObjectItem(r, "losses");
        int n = cJSON_GetArraySize(losses);
        double first = n ? cJSON_GetArrayItem(losses, 0)->valuedouble : NAN;
        double last = n ? cJSON_GetArrayItem(losses, n - 1)->valuedouble : NAN;
        printf("  %5d  %-20s %5d %4d %4d   %.5f -> %.5f   %.3f\n", (int)number(r, "round"),
               string(r, "time"), (int)number(r, "labels_added"), (int)number(r, "positive"),
               (int)number(r, "negative"), first, last, number(r, "training_accuracy"));
    }
}

static void print_histogram(const cJSON *h, double threshold)
{
    const cJSON *counts = cJSON_GetObjectItem(h, "counts");
    double lo = number(h, "min"), width = number(h, "bin_width");
    int max = 1;
    const cJSON *c;
    cJSON_ArrayForEach(c, counts) if (c->valueint > max) max = c->valueint;
    int b = 0;
    cJSON_ArrayForEach(c, counts)
    {
        double from = lo + b * width;
        int bar = (int)((double)c->valueint * 50 / max + 0.5);
        char bars[64];
        memset(bars, '#', (size_t)bar);
        bars[bar] = 0;
        printf("  %9.3f %c %7d %s\n", from,
               threshold >= from && threshold < from + width ? '|' : ' ', c->valueint, bars);
        b++;
    }
    printf("  (| marks the threshold's bin)\n");
}

/* ---- subcommands -------------------------------------------------------------------- */

typedef struct context {
    options *o;
    vdx_store *store;
    vdx_concepts *book;
    vdx_error err;
    const char *sub;
    const vdx_store_options *store_opts;
} context;

static int fail(context *c)
{
    return cli_fail(&c->err, "concept %s: %s", c->sub, c->err.message);
}

static int cmd_new(context *c)
{
    options *o = c->o;
    if (!o->prompt && !o->n_examples)
        return cli_usage_error("concept new", "give --prompt TEXT and/or --example ID");
    if (o->prompt && !*o->prompt) /* an unset shell variable, most likely */
        return cli_usage_error("concept new", "--prompt is empty");
    if (o->trainer && !vdx_concept_trainer_known(o->trainer))
        return cli_usage_error("concept new", "--trainer is " VDX_TRAINER_NAMES ", not '%s'",
                               o->trainer);
    vdx_clip_model *model = NULL;
    vdx_text_model *text_model = NULL;
    float *text_vector = NULL;
    int truncated = 0;
    if (o->prompt && cli_text_model_arg(o->text_model)) {
        /* a separate text tower, checked against the collection's image model */
        int failed;
        text_model = cli_load_text_model(o->text_model, o->force_text_model, c->store_opts,
                                         vdx_store_model(c->store), 0, &failed);
        if (!text_model)
            return cli_last_status();
        text_vector = malloc((size_t)vdx_text_model_dims(text_model) * sizeof *text_vector);
        int rc = !text_vector ? vdx_fail_kind(&c->err, VDX_ERR_NO_MEMORY, "out of memory")
                              : vdx_text_model_embed(text_model, o->prompt, text_vector,
                                                     &truncated, &c->err);
        if (rc != 0) {
            free(text_vector);
            vdx_text_model_free(text_model);
            return fail(c);
        }
    } else if (o->prompt) {
        const char *model_arg = o->model;
        if (!model_arg || !*model_arg)
            model_arg = getenv("VDX_MODEL");
        int guessed = !model_arg || !*model_arg;
        if (guessed)
            model_arg = vdx_store_model(c->store)->name;
        model = cli_load_model(model_arg, 0);
        if (!model) {
            if (guessed)
                cli_error("concept new: pass --model with the model this collection was "
                          "embedded with (%s)", model_arg);
            return cli_last_status();
        }
    }
    vdx_concept_spec spec = {.name = o->positional[0], .prompt = o->prompt, .model = model,
                             .text_vector = text_vector,
                             .example_ids = o->examples, .n_examples = (size_t)o->n_examples,
                             .trainer = o->trainer};
    cJSON *concept = NULL;
    int rc = vdx_concept_create(c->book, &spec, &concept, &c->err);
    int max_tokens = text_model ? vdx_text_model_max_tokens(text_model)
                     : model ? vdx_clip_get_config(model)->text.max_position_embeddings : 77;
    vdx_clip_free(model);
    vdx_text_model_free(text_model);
    free(text_vector);
    if (rc != 0)
        return fail(c);
    if (truncated || cJSON_IsTrue(cJSON_GetObjectItem(concept, "prompt_truncated")))
        fprintf(stderr, "vdx: concept new: the prompt is longer than the text model's %d "
                        "tokens; only its beginning was embedded\n", max_tokens);
    if (json_output(o))
        cli_print_json_line(concept);
    else
        printf("created concept '%s' from %s%s%s%s%s; next: vdx concept next '%s'\n",
               o->positional[0], o->prompt ? "the prompt \"" : "", o->prompt ? o->prompt : "",
               o->prompt ? "\"" : "", o->prompt && o->n_examples ? " and " : "",
               o->n_examples == 0 ? "" : o->n_examples == 1 ? "1 example" : "examples",
               o->positional[0]);
    cJSON_Delete(concept);
    return 0;
}

static int cmd_next(context *c)
{
    options *o = c->o;
    int mode = o->mode ? vdx_candidates_mode_parse(o->mode) : VDX_CANDIDATES_NEAREST;
    if (mode < 0)
        return cli_usage_error("concept next", "--mode is nearest, boundary, random or audit, not '%s'",
                               o->mode);
    vdx_candidates_request req = {.mode = (vdx_candidates_mode)mode, .k = o->k,
                                  .page = o->page, .where = o->where,
                                  .hide_duplicates = o->hide_duplicates, .seed = o->seed};
    cJSON *page = NULL;
    if (vdx_concept_candidates(c->book, o->positional[0], &req, &page, &c->err) != 0)
        return fail(c);
    const cJSON *items = cJSON_GetObjectItem(page, "items");
    const cJSON *hidden = cJSON_GetObjectItem(page, "hidden");
    if (json_output(o)) {
        const cJSON *item;
        cJSON_ArrayForEach(item, items) cli_print_json_line(item);
    } else {
        printf("%s candidates of '%s', page %d:\n", string(page, "mode"), o->positional[0],
               o->page);
        if (cJSON_GetArraySize(items) == 0)
            printf("  nothing left to label here\n");
        else
            print_items_table(items, 0);
        if (cJSON_GetArraySize(hidden))
            printf("  %d near-duplicate%s hidden\n", cJSON_GetArraySize(hidden),
                   cJSON_GetArraySize(hidden) == 1 ? "" : "s");
        const cJSON *audit = cJSON_GetObjectItem(page, "audit");
        if (cJSON_IsObject(audit))
            printf("  audit sample: %d drawn, %d labelled, %d to label\n",
                   (int)number(audit, "drawn"), (int)number(audit, "labelled"),
                   (int)number(audit, "pending"));
        printf("label with: vdx concept label '%s' +ID -ID ...%s\n", o->positional[0],
               cJSON_IsTrue(cJSON_GetObjectItem(page, "more")) ? "   (more: --page N)" : "");
    }
    cJSON_Delete(page);
    return 0;
}

static int cmd_label(context *c)
{
    options *o = c->o;
    if (o->n_label_ops == 0)
        return cli_usage_error("concept label", "no labels given (+ID, -ID or ~ID)");
    vdx_label_change *changes = calloc((size_t)o->n_label_ops, sizeof *changes);
    if (!changes)
        return cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory");
    for (int i = 0; i < o->n_label_ops; i++) {
        char op = o->label_ops[i][0];
        changes[i].id = o->label_ops[i] + 1;
        changes[i].label = op == '+' ? VDX_LABEL_POSITIVE
                           : op == '-' ? VDX_LABEL_NEGATIVE
                                       : VDX_LABEL_CLEAR;
    }
    cJSON *result = NULL;
    int rc = vdx_concept_label(c->book, o->positional[0], changes, (size_t)o->n_label_ops,
                               &result, &c->err);
    free(changes);
    if (rc != 0)
        return fail(c);
    if (json_output(o))
        cli_print_json_line(result);
    else
        printf("'%s': %d label%s changed; %d positive, %d negative; %d change%s since the last "
               "round (train to use them)\n",
               o->positional[0], (int)number(result, "changed"),
               number(result, "changed") == 1 ? "" : "s", (int)number(result, "positive"),
               (int)number(result, "negative"), (int)number(result, "pending"),
               number(result, "pending") == 1 ? "" : "s");
    cJSON_Delete(result);
    return 0;
}

static int cmd_train(context *c)
{
    options *o = c->o;
    cJSON *round = NULL;
    if (vdx_concept_train(c->book, o->positional[0], o->iters, (float)o->lr, &round, &c->err) !=
        0)
        return fail(c);
    if (json_output(o)) {
        cli_print_json_line(round);
    } else {
        const cJSON *losses = cJSON_GetObjectItem(round, "losses");
        int n = cJSON_GetArraySize(losses);
        printf("'%s' round %d: %d label change%s, %d positive / %d negative, loss %.5f -> "
               "%.5f, training accuracy %.3f\n",
               o->positional[0], (int)number(round, "round"), (int)number(round, "labels_added"),
               number(round, "labels_added") == 1 ? "" : "s", (int)number(round, "positive"),
               (int)number(round, "negative"), cJSON_GetArrayItem(losses, 0)->valuedouble,
               cJSON_GetArrayItem(losses, n - 1)->valuedouble,
               number(round, "training_accuracy"));
    }
    cJSON_Delete(round);
    return 0;
}

/* The audited estimates: value [lo, hi] each, or "unknown" without audit labels. */
static void print_estimates(const cJSON *estimates, const char *name)
{
    if (strcmp(string(estimates, "status"), "estimated") != 0) {
        printf("estimates unknown: label an audit sample first (vdx concept next '%s' "
               "--mode audit)\n", name);
        return;
    }
    printf("estimates from %d audit labels (each weighs %.1f items; 95%% intervals):\n",
           (int)number(estimates, "audit_labels"), number(estimates, "weight"));
    const char *keys[] = {"positives", "precision", "recall"};
    for (int i = 0; i < 3; i++) {
        const cJSON *e = cJSON_GetObjectItem(estimates, keys[i]);
        if (!cJSON_IsObject(e))
            printf("  %-9s unknown\n", keys[i]);
        else if (i == 0)
            printf("  %-9s %.0f [%.0f, %.0f]\n", keys[i], number(e, "value"), number(e, "lo"),
                   number(e, "hi"));
        else
            printf("  %-9s %.3f [%.3f, %.3f]\n", keys[i], number(e, "value"), number(e, "lo"),
                   number(e, "hi"));
    }
}

static int cmd_show(context *c)
{
    options *o = c->o;
    cJSON *concept = NULL, *evaluation = NULL;
    vdx_evaluate_options eval = {.bins = o->bins, .exact = o->exact};
    if (vdx_concept_get(c->book, o->positional[0], o->with_weight, &concept, &c->err) != 0 ||
        vdx_concept_evaluate(c->book, o->positional[0], &eval, &evaluation, &c->err) != 0) {
        cJSON_Delete(concept);
        return fail(c);
    }
    if (json_output(o)) {
        cJSON_AddItemToObject(concept, "evaluation", evaluation);
        cli_print_json_line(concept);
        cJSON_Delete(concept);
        return 0;
    }
    const cJSON *model = cJSON_GetObjectItem(concept, "model");
    printf("concept   %s\n", string(concept, "name"));
    printf("prompt    %s\n", cJSON_IsString(cJSON_GetObjectItem(concept, "prompt"))
                                 ? string(concept, "prompt")
                                 : "(none)");
    printf("model     %s (%d dims, fingerprint %.16s...)\n", string(model, "name"),
           (int)number(model, "dims"), string(model, "fingerprint"));
    printf("created   %s, updated %s\n", string(concept, "created"), string(concept, "updated"));
    if (!strcmp(string(concept, "trainer"), "auto") &&
        !strcmp(string(concept, "next_trainer"), "anchored"))
        printf("trainer   auto (next round: anchored, with %d or more audit labels)\n",
               VDX_AUDIT_LABELS_FOR_ANCHORED);
    else if (!strcmp(string(concept, "trainer"), "auto"))
        printf("trainer   auto (next round: seed; anchored from %d audit labels)\n",
               VDX_AUDIT_LABELS_FOR_ANCHORED);
    else
        printf("trainer   %s\n", string(concept, "trainer"));
    printf("labels    %d positive, %d negative, %d change%s since the last round\n",
           (int)number(concept, "positive"), (int)number(concept, "negative"),
           (int)number(concept, "pending"), number(concept, "pending") == 1 ? "" : "s");
    const cJSON *calibration = cJSON_GetObjectItem(concept, "calibration");
    printf("threshold %g (logit; calibrated p = %.3f)\n", number(concept, "threshold"),
           number(concept, "threshold_probability"));
    if (cJSON_IsObject(calibration))
        printf("calibration p = sigmoid(%.4g * score + %.4g), fitted after round %d\n",
               number(calibration, "a"), number(calibration, "b"),
               (int)number(calibration, "round"));
    else
        printf("calibration none yet (p = sigmoid(score) until a round trains on both classes)\n");
    printf("rounds\n");
    print_history(cJSON_GetObjectItem(concept, "history"));
    const cJSON *cv = cJSON_GetObjectItem(evaluation, "cross_validation");
    double train_acc = number(evaluation, "training_accuracy");
    printf("training accuracy %s", isnan(train_acc) ? "- (no labels)\n" : "");
    if (!isnan(train_acc))
        printf("%.3f\n", train_acc);
    if (cJSON_IsObject(cv)) {
        char precision[32] = "-";
        if (!isnan(number(cv, "precision")))
            snprintf(precision, sizeof precision, "%.3f", number(cv, "precision"));
        printf("cross-validated (%s): accuracy %.3f, precision %s, recall %.3f\n",
               string(cv, "method"), number(cv, "accuracy"), precision, number(cv, "recall"));
    } else {
        printf("cross-validated: - (needs 2 positive and 2 negative labels)\n");
    }
    printf("above threshold: %d of %d items\n", (int)number(evaluation, "above_threshold"),
           (int)number(evaluation, "count"));
    const cJSON *source = cJSON_GetObjectItem(evaluation, "scores");
    if (!strcmp(string(source, "source"), "index"))
        printf("  (unlabelled items scored from the index's codes, each within %.4f; --exact "
               "scores every vector)\n",
               number(source, "max_error"));
    print_estimates(cJSON_GetObjectItem(evaluation, "estimates"), o->positional[0]);
    printf("score histogram\n");
    print_histogram(cJSON_GetObjectItem(evaluation, "histogram"), number(concept, "threshold"));
    if (o->with_weight) {
        printf("weight\n ");
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(concept, "weight")) printf(" %.7g",
                                                                             v->valuedouble);
        printf("\n");
    }
    cJSON_Delete(concept);
    cJSON_Delete(evaluation);
    return 0;
}

static int cmd_score(context *c)
{
    options *o = c->o;
    vdx_score_request req = {.top = o->top ? o->top : (o->has_threshold ? 0 : 20),
                             .offset = o->offset, .use_threshold = o->has_threshold,
                             .threshold = o->threshold, .where = o->where, .exact = o->exact};
    cJSON *result = NULL;
    if (vdx_concept_score(c->book, o->positional[0], &req, &result, &c->err) != 0)
        return fail(c);
    const cJSON *items = cJSON_GetObjectItem(result, "items");
    if (json_output(o)) {
        const cJSON *item;
        cJSON_ArrayForEach(item, items) cli_print_json_line(item);
    } else {
        printf("'%s': %d of %d items score above %g\n", o->positional[0],
               (int)number(result, "above_threshold"), (int)number(result, "count"),
               number(result, "threshold"));
        print_items_table(items, 1);
    }
    cJSON_Delete(result);
    return 0;
}

static int write_output(context *c, const char *text, size_t size)
{
    if (!c->o->output || !strcmp(c->o->output, "-")) {
        if (fwrite(text, 1, size, stdout) != size || fflush(stdout) != 0)
            return cli_error("concept export: writing to stdout: %s", strerror(errno));
        return 0;
    }
    if (vdx_write_file_atomic(c->o->output, text, size, &c->err) != 0)
        return fail(c);
    fprintf(stderr, "vdx: wrote %zu bytes to %s\n", size, c->o->output);
    return 0;
}

static int cmd_export(context *c)
{
    options *o = c->o;
    if (o->want_labels + o->want_scores + o->want_classifier != 1)
        return cli_usage_error("concept export", "give one of --labels, --scores, --classifier");
    int format = o->format ? vdx_export_format_parse(o->format)
                           : o->want_classifier ? VDX_EXPORT_JSON : VDX_EXPORT_CSV;
    if (format < 0 || (o->want_classifier && format != VDX_EXPORT_JSON) ||
        (!o->want_classifier && format == VDX_EXPORT_JSON))
        return cli_usage_error("concept export", "--format is csv or jsonl for labels and "
                                                 "scores, json for the classifier");
    char *text = NULL;
    size_t size = 0;
    int rc;
    if (o->want_labels) {
        rc = vdx_concept_export_labels(c->book, o->positional[0], (vdx_export_format)format,
                                       &text, &size, &c->err);
    } else if (o->want_scores) {
        rc = vdx_concept_export_scores(c->book, o->positional[0],
                                       o->has_threshold ? o->threshold : NAN,
                                       (vdx_export_format)format, &text, &size, &c->err);
    } else {
        cJSON *classifier = NULL;
        rc = vdx_concept_export_classifier(c->book, o->positional[0], &classifier, &c->err);
        if (rc == 0) {
            char *printed = cJSON_Print(classifier);
            size = printed ? strlen(printed) + 1 : 0;
            text = printed ? malloc(size + 1) : NULL;
            if (text) {
                memcpy(text, printed, size - 1);
                text[size - 1] = '\n';
                text[size] = 0;
            } else {
                rc = vdx_fail_kind(&c->err, VDX_ERR_NO_MEMORY, "out of memory");
            }
            cJSON_free(printed);
        }
        cJSON_Delete(classifier);
    }
    if (rc != 0)
        return fail(c);
    rc = write_output(c, text, size);
    free(text);
    return rc;
}

static int cmd_import(context *c)
{
    options *o = c->o;
    char *text = NULL;
    size_t size = 0;
    if (vdx_read_file(o->positional[0], &text, &size, &c->err) != 0)
        return fail(c);
    cJSON *concept = NULL;
    int rc = vdx_concept_import_classifier(c->book, text, size, o->name, &concept, &c->err);
    free(text);
    if (rc != 0)
        return cli_fail(&c->err, "concept import: %s: %s", o->positional[0], c->err.message);
    if (json_output(o))
        cli_print_json_line(concept);
    else
        printf("imported concept '%s' (%d rounds)\n", string(concept, "name"),
               (int)number(concept, "rounds"));
    cJSON_Delete(concept);
    return 0;
}

static int cmd_list(context *c)
{
    cJSON *list = NULL;
    if (vdx_concept_list(c->book, &list, &c->err) != 0)
        return fail(c);
    const cJSON *item;
    if (json_output(c->o)) {
        cJSON_ArrayForEach(item, list) cli_print_json_line(item);
    } else if (cJSON_GetArraySize(list) == 0) {
        printf("no concepts yet: vdx concept new NAME --prompt \"...\"\n");
    } else {
        printf("%-24s %5s %5s %6s  %-20s  %s\n", "name", "+", "-", "rounds", "updated",
               "prompt");
        cJSON_ArrayForEach(item, list)
        {
            printf("%-24s %5d %5d %6d  %-20s  %s\n", string(item, "name"),
                   (int)number(item, "positive"), (int)number(item, "negative"),
                   (int)number(item, "rounds"), string(item, "updated"), string(item, "prompt"));
        }
    }
    cJSON_Delete(list);
    return 0;
}

/* rm, rename, copy, undo, redo, revert, threshold, trainer, fit-threshold: one call, one
 * line. */
static int cmd_simple(context *c)
{
    options *o = c->o;
    const char *sub = c->sub;
    cJSON *result = cJSON_CreateObject();
    int rc = 0;
    if (!strcmp(sub, "rm")) {
        if ((rc = vdx_concept_delete(c->book, o->positional[0], &c->err)) == 0)
            cJSON_AddStringToObject(result, "deleted", o->positional[0]);
    } else if (!strcmp(sub, "rename") || !strcmp(sub, "copy")) {
        if ((rc = (sub[0] == 'r' ? vdx_concept_rename : vdx_concept_copy)(
                      c->book, o->positional[0], o->positional[1], &c->err)) == 0) {
            cJSON_AddStringToObject(result, "from", o->positional[0]);
            cJSON_AddStringToObject(result, sub[0] == 'r' ? "renamed_to" : "copied_to",
                                    o->positional[1]);
        }
    } else if (!strcmp(sub, "threshold")) {
        double t;
        if (parse_double("concept threshold", "THRESHOLD", o->positional[1], &t))
            rc = 2;
        else if ((rc = vdx_concept_set_threshold(c->book, o->positional[0], t, &c->err)) == 0)
            cJSON_AddNumberToObject(result, "threshold", t);
    } else if (!strcmp(sub, "trainer")) {
        if (!vdx_concept_trainer_known(o->positional[1]))
            rc = cli_usage_error("concept trainer", "the trainer is " VDX_TRAINER_NAMES
                                 ", not '%s'", o->positional[1]);
        else if ((rc = vdx_concept_set_trainer(c->book, o->positional[0], o->positional[1],
                                          &c->err)) == 0)
            cJSON_AddStringToObject(result, "trainer", o->positional[1]);
    } else if (!strcmp(sub, "fit-threshold")) {
        cJSON_Delete(result);
        result = NULL;
        int source = o->source ? vdx_threshold_source_parse(o->source) : VDX_THRESHOLD_FROM_AUTO;
        vdx_threshold_fit fit = {.target = o->has_precision ? VDX_THRESHOLD_FIT_PRECISION
                                                             : VDX_THRESHOLD_FIT_F1,
                                 .precision = o->precision,
                                 .source = (vdx_threshold_source)source};
        if (source < 0)
            rc = cli_usage_error("concept fit-threshold",
                                 "--source is auto, calibration or labels, not '%s'", o->source);
        else
            rc = vdx_concept_fit_threshold(c->book, o->positional[0], &fit, &result, &c->err);
    } else if (!strcmp(sub, "revert")) {
        cJSON_Delete(result);
        result = NULL;
        char *end;
        errno = 0;
        long long action = strtoll(o->positional[1], &end, 10);
        if (errno || end == o->positional[1] || *end || action < 1)
            rc = cli_usage_error("concept revert", "ACTION is the number of a label action "
                                                   "(see vdx concept history), not '%s'",
                                 o->positional[1]);
        else
            rc = vdx_concept_revert_action(c->book, o->positional[0], action, &result, &c->err);
    } else {
        cJSON_Delete(result);
        result = NULL;
        if (o->revert_labels && !o->round)
            rc = cli_usage_error("concept undo", "--revert-labels goes with --round");
        else if (!strcmp(sub, "redo"))
            rc = vdx_concept_redo(c->book, o->positional[0], &result, &c->err);
        else if (o->round)
            rc = vdx_concept_undo_round(c->book, o->positional[0], o->revert_labels, &result,
                                        &c->err);
        else
            rc = vdx_concept_undo(c->book, o->positional[0], &result, &c->err);
    }
    if (rc == 0) {
        const char *counted = !strcmp(sub, "revert")  ? "changed"
                              : !strcmp(sub, "redo")  ? "labels_redone"
                              : o->round && !o->revert_labels ? "labels_kept"
                                                              : "labels_reverted";
        int n = result ? (int)number(result, counted) : 0;
        const char *plural = n == 1 ? "" : "s";
        if (json_output(o))
            cli_print_json_line(result);
        else if (!strcmp(sub, "undo") && !strcmp(string(result, "undone"), "round"))
            printf("'%s': undid round %d: weight back to %s; %d label change%s "
                   "%s\n", o->positional[0], (int)number(result, "round"),
                   string(result, "weight"), n, plural,
                   o->revert_labels ? "reverted" : "kept for the next round");
        else if (!strcmp(sub, "undo") || !strcmp(sub, "redo"))
            printf("'%s': %s label action %d (%d label change%s)\n", o->positional[0],
                   sub[0] == 'u' ? "undid" : "redid", (int)number(result, "action"), n, plural);
        else if (!strcmp(sub, "revert"))
            printf("'%s': reverted label action %s as action %d (%d label change%s)\n",
                   o->positional[0], o->positional[1], (int)number(result, "action"),
                   n, plural);
        else if (!strcmp(sub, "fit-threshold") && !strcmp(string(result, "source"), "labels"))
            printf("'%s': threshold %g (was %g): precision %.3f, recall %.3f, F1 %.3f on %d "
                   "labels\n", o->positional[0], number(result, "threshold"),
                   number(result, "previous"), number(result, "precision"),
                   number(result, "recall"), number(result, "f1"), (int)number(result, "labels"));
        else if (!strcmp(sub, "fit-threshold"))
            printf("'%s': threshold %g (p = %.3f; was %g): expected precision %.3f, recall "
                   "%.3f, F1 %.3f over %d items (calibrated)\n",
                   o->positional[0], number(result, "threshold"),
                   number(result, "threshold_probability"), number(result, "previous"),
                   number(result, "precision"), number(result, "recall"), number(result, "f1"),
                   (int)number(result, "items"));
        else if (!strcmp(sub, "rm"))
            printf("deleted concept '%s'\n", o->positional[0]);
        else if (!strcmp(sub, "threshold"))
            printf("'%s': threshold %g\n", o->positional[0], number(result, "threshold"));
        else if (!strcmp(sub, "trainer"))
            printf("'%s': trainer %s from the next round\n", o->positional[0],
                   string(result, "trainer"));
        else
            printf("%s '%s' to '%s'\n", sub[0] == 'r' ? "renamed" : "copied", o->positional[0],
                   o->positional[1]);
    }
    cJSON_Delete(result);
    return rc == -1 ? fail(c) : rc;
}

/* The label actions, newest first: one JSON line per action, or a line of +id -id ~id. */
static int cmd_history(context *c)
{
    cJSON *history = NULL;
    if (vdx_concept_history(c->book, c->o->positional[0], c->o->top, &history, &c->err) != 0)
        return fail(c);
    const cJSON *action;
    cJSON_ArrayForEach(action, cJSON_GetObjectItem(history, "actions"))
    {
        if (json_output(c->o)) {
            cli_print_json_line(action);
            continue;
        }
        printf("%5d  %s  round %d%s ", (int)number(action, "action"), string(action, "time"),
               (int)number(action, "round"),
               cJSON_IsTrue(cJSON_GetObjectItem(action, "undone")) ? "  (undone)" : "");
        const cJSON *change;
        cJSON_ArrayForEach(change, cJSON_GetObjectItem(action, "changes"))
        {
            const cJSON *label = cJSON_GetObjectItem(change, "label");
            printf(" %c%s", cJSON_IsNull(label) ? '~' : label->valueint ? '+' : '-',
                   string(change, "id"));
        }
        printf("\n");
    }
    if (!json_output(c->o) && cJSON_GetArraySize(cJSON_GetObjectItem(history, "actions")) == 0)
        printf("no label actions yet for '%s' (vdx concept label NAME +ID -ID adds one)\n",
               c->o->positional[0]);
    cJSON_Delete(history);
    return 0;
}

typedef struct subcommand {
    const char *name;
    int (*run)(context *c);
    int n_positional;  /* arguments besides options (label: NAME, then the +ID -ID ~ID list) */
    const char *usage; /* what they are, for the usage error */
} subcommand;

static const subcommand subcommands[] = {
    {"new", cmd_new, 1, "NAME"},
    {"next", cmd_next, 1, "NAME"},
    {"label", cmd_label, 1, "NAME then +ID -ID ~ID ..."},
    {"train", cmd_train, 1, "NAME"},
    {"show", cmd_show, 1, "NAME"},
    {"score", cmd_score, 1, "NAME"},
    {"export", cmd_export, 1, "NAME"},
    {"import", cmd_import, 1, "FILE"},
    {"list", cmd_list, 0, "no arguments"},
    {"rm", cmd_simple, 1, "NAME"},
    {"rename", cmd_simple, 2, "two names"},
    {"copy", cmd_simple, 2, "two names"},
    {"undo", cmd_simple, 1, "NAME"},
    {"redo", cmd_simple, 1, "NAME"},
    {"revert", cmd_simple, 2, "NAME ACTION"},
    {"history", cmd_history, 1, "NAME"},
    {"threshold", cmd_simple, 2, "NAME THRESHOLD"},
    {"trainer", cmd_simple, 2, "NAME seed|anchored|auto"},
    {"fit-threshold", cmd_simple, 1, "NAME"},
};

int cmd_concept(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") ||
            (i == 1 && !strcmp(argv[i], "help"))) {
            fputs(usage_text, stdout);
            return 0;
        }
    const subcommand *sub = NULL;
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            sub = &subcommands[i];
    if (!sub)
        return cli_usage_error("concept", "unknown command '%s'", argv[1]);

    options o;
    memset(&o, 0, sizeof o);
    o.label_ops = calloc((size_t)argc, sizeof *o.label_ops);
    if (!o.label_ops)
        return cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory");
    int rc = parse_options(argc, argv, sub->name, &o);
    if (rc != 0) {
        free(o.label_ops);
        return rc;
    }
    if (o.n_positional != sub->n_positional) { /* before the store: a usage error is a 2 */
        free(o.label_ops);
        char cmd[64];
        snprintf(cmd, sizeof cmd, "concept %s", sub->name);
        if (o.n_positional > sub->n_positional) /* say which: a missing quote, say */
            return cli_usage_error(cmd, "expected %s; unexpected argument '%s'", sub->usage,
                                   o.positional[sub->n_positional]);
        return cli_usage_error(cmd, "expected %s", sub->usage);
    }
    context c = {.o = &o, .sub = sub->name};
    vdx_store_options store_opts = o.store;
    c.store_opts = &store_opts;
    c.store = vdx_store_open(&store_opts, &c.err);
    if (!c.store) {
        free(o.label_ops);
        return cli_fail(&c.err, "%s", c.err.message);
    }
    c.book = vdx_concepts_open(c.store, &c.err);
    if (!c.book) {
        vdx_store_close(c.store);
        free(o.label_ops);
        return cli_fail(&c.err, "%s", c.err.message);
    }
    rc = sub->run(&c);
    vdx_concepts_close(c.book);
    vdx_store_close(c.store);
    free(o.label_ops);
    return rc;
}
