/* vdx tokenize: the tokens a model's tokenizer makes of each text, to debug prompts:
 * CLIP's byte-level BPE (vocab.json + merges.txt) or M-CLIP's SentencePiece Unigram
 * (sentencepiece.bpe.model), whichever the model directory holds. Only the tokenizer is
 * loaded, not the weights. One JSON line per text {"text","tokenizer","ids","pieces",
 * "n_tokens","truncated"} when stdout is not a terminal, a table when it is. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "vdx/mclip.h"
#include "vdx/sentencepiece.h"
#include "vdx/tokenizer.h"

#define CLIP_MAX_TOKENS 77

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vdx tokenize [options] TEXT...\n\n"
            "Prints the tokens (pieces and ids) a model's tokenizer makes of each TEXT: CLIP's\n"
            "byte-level BPE, or the SentencePiece model of an M-CLIP text tower. Only the\n"
            "tokenizer files are read.\n\n"
            "options:\n"
            "  --model M          model directory or Hugging Face repo id (default:\n"
            "                     $VDX_MODEL, else %s)\n"
            "  --max-tokens N     cut after N tokens, <s>/</s> included (default: the\n"
            "                     model's limit, 77 for CLIP, 512 for M-CLIP)\n"
            "  --json             JSON lines even on a terminal\n"
            "  -h, --help         this help\n\n"
            "Output: one line per text {\"text\",\"tokenizer\",\"ids\",\"pieces\",\"n_tokens\",\n"
            "\"truncated\"}, or a table of pieces and ids on a terminal. CLIP pieces are\n"
            "vocabulary strings (</w> ends a word); SentencePiece pieces start a word with\n"
            "U+2581, and an unknown piece shows the text it stands for.\n",
            VDX_DEFAULT_MODEL);
}

/* id → vocabulary string of CLIP's vocab.json (only for display). */
static char **load_clip_vocab(const char *dir, int *count)
{
    char path[4200], *text;
    size_t size;
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    if (vdx_read_file(path, &text, &size, NULL) != 0)
        return NULL;
    cJSON *json = cJSON_Parse(text);
    free(text);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, json)
        if (cJSON_IsNumber(e) && e->valueint >= n && e->valueint < (1 << 24))
            n = e->valueint + 1;
    char **names = calloc((size_t)(n ? n : 1), sizeof *names);
    if (names)
        cJSON_ArrayForEach(e, json)
            if (cJSON_IsNumber(e) && e->valueint >= 0 && e->valueint < n && e->string)
                names[e->valueint] = strdup(e->string);
    cJSON_Delete(json);
    *count = n;
    return names;
}

static void print_tokens(const char *text, const char *kind, const int32_t *ids,
                         char *const *pieces, int n, int truncated, int as_table)
{
    if (as_table) {
        printf("%s  (%d tokens%s)\n", text, n, truncated ? ", truncated" : "");
        for (int i = 0; i < n; i++)
            printf("  %6d  %s\n", (int)ids[i], pieces[i] ? pieces[i] : "?");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "text", text);
    cJSON_AddStringToObject(o, "tokenizer", kind);
    cJSON *a = cJSON_AddArrayToObject(o, "ids"), *p = cJSON_AddArrayToObject(o, "pieces");
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
        cJSON_AddItemToArray(p, pieces[i] ? cJSON_CreateString(pieces[i]) : cJSON_CreateNull());
    }
    cJSON_AddNumberToObject(o, "n_tokens", n);
    cJSON_AddBoolToObject(o, "truncated", truncated);
    cli_print_json_line(o);
    cJSON_Delete(o);
}

int cmd_tokenize(int argc, char **argv)
{
    static const struct option options[] = {
        {"model", required_argument, 0, 'm'}, {"max-tokens", required_argument, 0, 'n'},
        {"json", no_argument, 0, 'j'},        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model_arg = NULL;
    long max_tokens = 0;
    int json = 0, opt;
    char *end;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'm': model_arg = optarg; break;
        case 'j': json = 1; break;
        case 'n':
            max_tokens = strtol(optarg, &end, 10);
            if (!*optarg || *end || max_tokens < 2 || max_tokens > 1000000)
                return cli_usage_error("tokenize", "--max-tokens wants a number from 2 to "
                                       "1000000, not '%s'", optarg);
            break;
        case 'h': usage(stdout); return 0;
        case ':': return cli_usage_error("tokenize", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("tokenize", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("tokenize", "give one or more texts to tokenize");
    if (!model_arg || !*model_arg)
        model_arg = getenv("VDX_MODEL");
    if (!model_arg || !*model_arg)
        model_arg = VDX_DEFAULT_MODEL;
    char dir[4096], path[4200];
    vdx_error err = {{0}};
    if (vdx_clip_resolve_model(model_arg, dir, sizeof dir, &err) != 0)
        return cli_fail(&err, "%s", err.message);
    snprintf(path, sizeof path, "%s/sentencepiece.bpe.model", dir);
    int spm = vdx_mclip_is_model_dir(dir);
    vdx_spm *sp = NULL;
    vdx_tokenizer *bpe = NULL;
    char **vocab = NULL;
    int vocab_count = 0;
    if (spm ? !(sp = vdx_spm_load(path, &err)) : !(bpe = vdx_tokenizer_load(dir, &err)))
        return cli_fail(&err, "%s", err.message);
    if (bpe && !(vocab = load_clip_vocab(dir, &vocab_count))) {
        vdx_tokenizer_free(bpe);
        return cli_fail_kind(VDX_ERR_CORRUPT, "%s/vocab.json: cannot read the vocabulary", dir);
    }
    int limit = max_tokens ? (int)max_tokens : spm ? VDX_SPM_MAX_TOKENS : CLIP_MAX_TOKENS;
    int32_t *ids = malloc((size_t)limit * sizeof *ids);
    char **pieces = calloc((size_t)limit, sizeof *pieces);
    int status = ids && pieces ? 0 : cli_fail_kind(VDX_ERR_NO_MEMORY, "out of memory");
    for (int t = optind; t < argc && status == 0; t++) {
        int n = 0, truncated = 0;
        int rc = sp ? vdx_spm_encode(sp, argv[t], limit, ids, &n, &truncated, NULL, pieces, &err)
                    : vdx_tokenizer_encode(bpe, argv[t], limit, ids, &n, &truncated, &err);
        if (rc != 0) {
            status = cli_fail(&err, "text \"%.60s\": %s", argv[t], err.message);
            break;
        }
        if (bpe)
            for (int i = 0; i < n; i++)
                pieces[i] = ids[i] >= 0 && ids[i] < vocab_count && vocab[ids[i]]
                                ? strdup(vocab[ids[i]]) : NULL;
        if (truncated)
            fprintf(stderr, "vdx tokenize: text %d is longer than %d tokens; its end was cut\n",
                    t - optind + 1, limit);
        print_tokens(argv[t], sp ? "sentencepiece-unigram" : "clip-bpe", ids, pieces, n,
                     truncated, cli_stdout_is_tty() && !json);
        for (int i = 0; i < n; i++) {
            free(pieces[i]);
            pieces[i] = NULL;
        }
    }
    for (int i = 0; i < vocab_count; i++)
        free(vocab[i]);
    free(vocab);
    free(ids);
    free(pieces);
    vdx_spm_free(sp);
    vdx_tokenizer_free(bpe);
    return status;
}
