/* Metadata filters: a small recursive-descent parser for one boolean expression over a
 * collection's columns, and its renderings for SQLite and ClickHouse.
 *
 * The text comes from users and the web page, so it is never passed to a database as
 * is. The parser accepts only the grammar in include/vdx/store.h ("Filters"): known
 * columns, literals, comparisons, AND/OR/NOT, parentheses, IN, LIKE, IS NULL, BETWEEN
 * and three functions. Everything else (';', comments, subqueries, other functions) is
 * refused with the byte offset where it starts. Rendering re-quotes identifiers and
 * binds (SQLite) or escapes (ClickHouse) every value. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <utf8proc.h>

#include "common/sqlite_util.h"
#include "common/strbuf.h"
#include "common/text.h"
#include "store/clickhouse.h" /* ClickHouse quoting */
#include "store/filter.h"

#define FILTER_MAX_BYTES 65536
#define FILTER_MAX_DEPTH 32
/* SQLite refuses a LIKE pattern over 50,000 bytes when the statement runs; both sides are
 * lowered first, which can lengthen a pattern by half, so literal patterns are refused
 * above 10,000 bytes while parsing, on every backend alike. */
#define LIKE_PATTERN_MAX 10000

typedef enum {
    NODE_OR,
    NODE_AND,
    NODE_NOT,
    NODE_COMPARE,
    NODE_IN,
    NODE_LIKE,
    NODE_IS_NULL,
    NODE_BETWEEN,
    NODE_COLUMN,
    NODE_STRING,
    NODE_NUMBER,
    NODE_FUNCTION,
} node_kind;

/* What a value expression yields: decides when a comparison is numeric. */
typedef enum { VALUE_TEXT, VALUE_INTEGER, VALUE_NUMBER } value_type;

typedef struct node {
    node_kind kind;
    const char *op;       /* NODE_COMPARE: "=", "<>", "<", "<=", ">", ">=" */
    int negated;          /* NOT IN, NOT LIKE, IS NOT NULL, NOT BETWEEN */
    int numeric;          /* comparison of a text value with numbers: compare as numbers */
    struct node **args;   /* operands (for NODE_IN: the value, then the list) */
    int n_args, cap_args;
    char *text;           /* column name, string value, number text, function name */
    vdx_column_type column_type;
    int param;            /* literals: index among the literals, in order */
} node;

struct vdx_filter {
    node *root;
    node **literals; /* in parameter order */
    int n_literals, cap_literals;
};

typedef enum {
    TOKEN_END,
    TOKEN_IDENT,        /* bare identifier or keyword */
    TOKEN_QUOTED_IDENT, /* "identifier" */
    TOKEN_STRING,
    TOKEN_NUMBER,
    TOKEN_OP, /* = == != <> < <= > >= */
    TOKEN_LPAREN,
    TOKEN_RPAREN,
    TOKEN_COMMA,
} token_kind;

typedef struct token {
    token_kind kind;
    size_t at;   /* byte offset */
    size_t len;  /* bytes of source text */
    char *value; /* identifier, string contents, number text, operator (malloc'd) */
} token;

typedef struct parser {
    const char *text;
    size_t pos;
    token tok; /* current token */
    const vdx_filter_column *columns;
    int n_columns;
    vdx_filter *filter;
    int depth;
    vdx_error *err;
    int failed;
} parser;

static const char *const functions[] = {"lower", "upper", "length"};

/* ---- errors ---- */

/* Allocation failures are not the filter's fault: out of memory, not invalid. */
static int parse_oom(parser *p)
{
    if (p->failed)
        return -1;
    p->failed = 1;
    return vdx_fail_oom(p->err, "parsing a where filter");
}

static int parse_fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int parse_fail(parser *p, const char *fmt, ...)
{
    if (p->failed)
        return -1;
    p->failed = 1;
    char msg[VDX_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vdx_fail_kind(p->err, VDX_ERR_INVALID, "where: %s", msg);
}

/* Text of the filter echoed in a message: at most SHOWN_MAX bytes, cut at a character
 * boundary (a message of valid UTF-8 text stays valid: it reaches JSON replies), with "…"
 * when shortened. A name or token echoed whole could fill the message and push the byte
 * offset and the list of columns out of it. */
#define SHOWN_MAX 40

static const char *shown(const char *s, size_t len, char *buf, size_t size)
{
    size_t n = utf8_prefix(s, len, SHOWN_MAX);
    snprintf(buf, size, "%.*s%s", (int)n, s, n < len ? "…" : "");
    return buf;
}

/* The token as the user wrote it, shortened, for messages. */
static const char *token_text(const parser *p, char *buf, size_t size)
{
    if (p->tok.kind == TOKEN_END)
        return "the end of the filter";
    char text[SHOWN_MAX + 8];
    snprintf(buf, size, "'%s'", shown(p->text + p->tok.at, p->tok.len, text, sizeof text));
    return buf;
}

/* ---- lexer ---- */

static int is_ident_start(unsigned char c) { return isalpha(c) || c == '_'; }
static int is_ident_char(unsigned char c) { return isalnum(c) || c == '_'; }

static int next_token(parser *p)
{
    free(p->tok.value);
    p->tok = (token){0};
    const char *s = p->text;
    size_t i = p->pos;
    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
        i++;
    p->tok.at = i;
    unsigned char c = (unsigned char)s[i];
    size_t start = i;
    if (c == 0) {
        p->tok.kind = TOKEN_END;
    } else if (is_ident_start(c)) {
        while (is_ident_char((unsigned char)s[i]))
            i++;
        p->tok.kind = TOKEN_IDENT;
        p->tok.value = strndup(s + start, i - start);
    } else if (c == '"' || c == '\'') {
        /* "identifier" or 'string'; the quote doubled inside stands for itself */
        char quote = (char)c;
        size_t n = 0;
        char *value = malloc(strlen(s + i) + 1);
        if (!value)
            return parse_oom(p);
        i++;
        for (;;) {
            if (s[i] == 0) {
                free(value);
                return parse_fail(p, "%s starting at byte %zu is not closed",
                                  quote == '"' ? "quoted name" : "string", start);
            }
            if (s[i] == quote) {
                if (s[i + 1] != quote)
                    break;
                i++;
            }
            value[n++] = s[i++];
        }
        i++;
        value[n] = 0;
        p->tok.kind = quote == '"' ? TOKEN_QUOTED_IDENT : TOKEN_STRING;
        p->tok.value = value;
        if (quote == '"' && n == 0)
            return parse_fail(p, "empty quoted name at byte %zu", start);
    } else if (isdigit(c) || (c == '.' && isdigit((unsigned char)s[i + 1]))) {
        while (isdigit((unsigned char)s[i]))
            i++;
        if (s[i] == '.') {
            i++;
            while (isdigit((unsigned char)s[i]))
                i++;
        }
        if (s[i] == 'e' || s[i] == 'E') {
            size_t e = i + 1;
            if (s[e] == '+' || s[e] == '-')
                e++;
            if (!isdigit((unsigned char)s[e]))
                return parse_fail(p, "malformed number at byte %zu", start);
            i = e;
            while (isdigit((unsigned char)s[i]))
                i++;
        }
        if (is_ident_char((unsigned char)s[i]))
            return parse_fail(p, "malformed number at byte %zu", start);
        p->tok.kind = TOKEN_NUMBER;
        p->tok.value = strndup(s + start, i - start);
    } else if (c == '-' && s[i + 1] == '-') {
        return parse_fail(p, "comments are not allowed ('--' at byte %zu)", start);
    } else if (c == '/' && s[i + 1] == '*') {
        return parse_fail(p, "comments are not allowed ('/*' at byte %zu)", start);
    } else if (c == ';') {
        return parse_fail(p, "';' at byte %zu is not allowed: a filter is one expression",
                          start);
    } else if (c == '-' && (isdigit((unsigned char)s[i + 1]) || s[i + 1] == '.')) {
        /* a negative number: lex the digits, keep the sign */
        p->pos = i + 1;
        if (next_token(p) != 0)
            return -1;
        if (p->tok.kind != TOKEN_NUMBER)
            return parse_fail(p, "malformed number at byte %zu", start);
        char *value = malloc(strlen(p->tok.value) + 2);
        if (!value)
            return parse_oom(p);
        value[0] = '-';
        strcpy(value + 1, p->tok.value);
        free(p->tok.value);
        p->tok.value = value;
        p->tok.at = start;
        p->tok.len = p->pos - start;
        return 0;
    } else if (c == '=' || c == '<' || c == '>' || c == '!') {
        const char *two[] = {"==", "!=", "<>", "<=", ">="};
        size_t len = 1;
        for (size_t k = 0; k < sizeof two / sizeof two[0]; k++)
            if (s[i] == two[k][0] && s[i + 1] == two[k][1])
                len = 2;
        if (c == '!' && len == 1)
            return parse_fail(p, "unexpected '!' at byte %zu (did you mean '!='?)", start);
        i += len;
        p->tok.kind = TOKEN_OP;
        p->tok.value = strndup(s + start, len);
    } else if (c == '(' || c == ')' || c == ',') {
        i++;
        p->tok.kind = c == '(' ? TOKEN_LPAREN : c == ')' ? TOKEN_RPAREN : TOKEN_COMMA;
    } else if (c < 0x80) {
        return parse_fail(p, "'%c' at byte %zu is not allowed in a filter", c, start);
    } else {
        return parse_fail(p, "unexpected character at byte %zu (text outside quotes must be "
                             "ASCII)",
                          start);
    }
    if ((p->tok.kind == TOKEN_IDENT || p->tok.kind == TOKEN_QUOTED_IDENT ||
         p->tok.kind == TOKEN_STRING || p->tok.kind == TOKEN_NUMBER || p->tok.kind == TOKEN_OP) &&
        !p->tok.value)
        return parse_oom(p);
    p->tok.len = i - start;
    p->pos = i;
    return 0;
}

static int is_keyword(const parser *p, const char *word)
{
    return p->tok.kind == TOKEN_IDENT && strcasecmp(p->tok.value, word) == 0;
}

static int accept_keyword(parser *p, const char *word)
{
    if (!is_keyword(p, word))
        return 0;
    return next_token(p) == 0 ? 1 : -1;
}

static int expect(parser *p, token_kind kind, const char *what)
{
    if (p->tok.kind == kind)
        return next_token(p);
    char buf[64];
    return parse_fail(p, "expected %s at byte %zu, found %s", what, p->tok.at,
                      token_text(p, buf, sizeof buf));
}

/* ---- tree ---- */

static void free_node(node *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n_args; i++)
        free_node(n->args[i]);
    free(n->args);
    free(n->text);
    free(n);
}

static node *new_node(parser *p, node_kind kind)
{
    node *n = calloc(1, sizeof *n);
    if (!n)
        parse_oom(p);
    else
        n->kind = kind;
    return n;
}

static int add_arg(parser *p, node *n, node *arg)
{
    if (!arg)
        return -1;
    if (n->n_args == n->cap_args) { /* doubling: chains and IN lists run to thousands */
        int cap = n->cap_args ? n->cap_args * 2 : 2;
        node **args = realloc(n->args, (size_t)cap * sizeof *args);
        if (!args) {
            free_node(arg);
            return parse_oom(p);
        }
        n->args = args;
        n->cap_args = cap;
    }
    n->args[n->n_args++] = arg;
    return 0;
}

/* A new node of kind with left as its first argument. left is taken over: freed when
 * this fails. */
static node *node_with_left(parser *p, node_kind kind, node *left)
{
    node *n = new_node(p, kind);
    if (!n) {
        free_node(left);
        return NULL;
    }
    if (add_arg(p, n, left) != 0) {
        free_node(n);
        return NULL;
    }
    return n;
}

static int add_literal(parser *p, node *n)
{
    vdx_filter *f = p->filter;
    if (f->n_literals == f->cap_literals) {
        int cap = f->cap_literals ? f->cap_literals * 2 : 16;
        node **grown = realloc(f->literals, (size_t)cap * sizeof *grown);
        if (!grown)
            return parse_oom(p);
        f->literals = grown;
        f->cap_literals = cap;
    }
    n->param = f->n_literals;
    f->literals[f->n_literals++] = n;
    return 0;
}

static value_type type_of(const node *n)
{
    switch (n->kind) {
    case NODE_NUMBER:
        return VALUE_NUMBER;
    case NODE_COLUMN:
        return n->column_type == VDX_COLUMN_INTEGER ? VALUE_INTEGER : VALUE_TEXT;
    case NODE_FUNCTION:
        return strcmp(n->text, "length") == 0 ? VALUE_INTEGER : VALUE_TEXT;
    default:
        return VALUE_TEXT;
    }
}

/* ---- grammar ---- */

static node *parse_or(parser *p);

static int unknown_column(parser *p, const char *name, size_t at, int quoted)
{
    /* short enough that the whole message fits in a vdx_error: never cut inside a name */
    char list[640], name_buf[SHOWN_MAX + 8];
    size_t len = 0;
    list[0] = 0;
    for (int i = 0; i < p->n_columns; i++) {
        const char *sep = i ? ", " : "";
        if (len + strlen(sep) + strlen(p->columns[i].name) + sizeof ", …" > sizeof list) {
            snprintf(list + len, sizeof list - len, "%s…", sep); /* the rest left out */
            break;
        }
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", sep, p->columns[i].name);
    }
    return parse_fail(p, "unknown column '%s' at byte %zu (columns: %s)%s",
                      shown(name, strlen(name), name_buf, sizeof name_buf), at, list,
                      quoted ? "; strings take single quotes" : "");
}

/* value := column | 'string' | number | function '(' value ')' */
static node *parse_value(parser *p)
{
    char buf[64];
    token *t = &p->tok;
    size_t at = t->at;
    if (t->kind == TOKEN_STRING || t->kind == TOKEN_NUMBER) {
        node *n = new_node(p, t->kind == TOKEN_STRING ? NODE_STRING : NODE_NUMBER);
        if (!n)
            return NULL;
        n->text = t->value;
        t->value = NULL;
        if (add_literal(p, n) != 0 || next_token(p) != 0) {
            free_node(n);
            return NULL;
        }
        return n;
    }
    if (t->kind == TOKEN_IDENT || t->kind == TOKEN_QUOTED_IDENT) {
        int quoted = t->kind == TOKEN_QUOTED_IDENT;
        char *name = t->value;
        t->value = NULL;
        if (next_token(p) != 0) {
            free(name);
            return NULL;
        }
        if (!quoted && p->tok.kind == TOKEN_LPAREN) { /* a function call */
            int allowed = 0;
            for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
                if (strcasecmp(name, functions[i]) == 0) {
                    allowed = 1;
                    strcpy(name, functions[i]);
                }
            if (!allowed) {
                char name_buf[SHOWN_MAX + 8];
                parse_fail(p, "function '%s' at byte %zu is not allowed (allowed: lower, "
                              "upper, length)",
                           shown(name, strlen(name), name_buf, sizeof name_buf), at);
                free(name);
                return NULL;
            }
            node *n = new_node(p, NODE_FUNCTION);
            if (!n) {
                free(name);
                return NULL;
            }
            n->text = name;
            /* a call nests like a parenthesis: it counts towards the depth limit, so
             * every backend gets the same bounded expressions */
            if (++p->depth > FILTER_MAX_DEPTH) {
                parse_fail(p, "filter nested too deeply at byte %zu (more than %d levels)", at,
                           FILTER_MAX_DEPTH);
                free_node(n);
                return NULL;
            }
            int failed = next_token(p) != 0 || add_arg(p, n, parse_value(p)) != 0 ||
                         expect(p, TOKEN_RPAREN, "')' closing the function call") != 0;
            p->depth--;
            if (failed) {
                free_node(n);
                return NULL;
            }
            return n;
        }
        if (!quoted && (strcasecmp(name, "NULL") == 0)) {
            parse_fail(p, "NULL at byte %zu is not a value: use IS NULL / IS NOT NULL", at);
            free(name);
            return NULL;
        }
        if (!quoted && strcasecmp(name, "SELECT") == 0) {
            parse_fail(p, "subqueries are not allowed (SELECT at byte %zu)", at);
            free(name);
            return NULL;
        }
        int found = -1;
        for (int i = 0; i < p->n_columns && found < 0; i++)
            if (strcmp(p->columns[i].name, name) == 0)
                found = i;
        for (int i = 0; i < p->n_columns && found < 0 && !quoted; i++)
            if (strcasecmp(p->columns[i].name, name) == 0) /* SQL names ignore case */
                found = i;
        if (found < 0) {
            unknown_column(p, name, at, quoted);
            free(name);
            return NULL;
        }
        free(name);
        node *n = new_node(p, NODE_COLUMN);
        if (!n)
            return NULL;
        n->column_type = p->columns[found].type;
        if (!(n->text = strdup(p->columns[found].name))) {
            free_node(n);
            parse_oom(p);
            return NULL;
        }
        return n;
    }
    if (t->kind == TOKEN_LPAREN)
        parse_fail(p, "expected a column, string or number at byte %zu, found '(' "
                      "(subexpressions go around conditions, not values)",
                   at);
    else
        parse_fail(p, "expected a column, string or number at byte %zu, found %s", at,
                   token_text(p, buf, sizeof buf));
    return NULL;
}

/* Marks a comparison numeric when a text value meets a number. */
static void settle_types(node *n, int first, int count)
{
    int has_number = 0, has_text = 0;
    for (int i = first; i < first + count; i++) {
        value_type t = type_of(n->args[i]);
        has_number |= t == VALUE_NUMBER;
        has_text |= t == VALUE_TEXT && n->args[i]->kind != NODE_STRING;
    }
    n->numeric = has_number && has_text;
}

/* predicate := '(' expr ')' | value ( op value | [NOT] IN (...) | [NOT] LIKE value |
 *              IS [NOT] NULL | [NOT] BETWEEN value AND value ) */
static node *parse_predicate(parser *p)
{
    char buf[64];
    if (p->tok.kind == TOKEN_LPAREN) {
        if (next_token(p) != 0)
            return NULL;
        node *inner = parse_or(p);
        if (!inner)
            return NULL;
        if (expect(p, TOKEN_RPAREN, "')'") != 0) {
            free_node(inner);
            return NULL;
        }
        return inner;
    }
    node *left = parse_value(p);
    if (!left)
        return NULL;
    node *n = NULL;
    size_t at = p->tok.at;
    if (p->tok.kind == TOKEN_OP) {
        static const char *const ops[][2] = {{"=", "="}, {"==", "="}, {"!=", "<>"},
                                             {"<>", "<>"}, {"<", "<"}, {"<=", "<="},
                                             {">", ">"}, {">=", ">="}};
        n = node_with_left(p, NODE_COMPARE, left);
        left = NULL;
        if (!n)
            goto fail;
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
            if (strcmp(p->tok.value, ops[i][0]) == 0)
                n->op = ops[i][1];
        if (next_token(p) != 0 || add_arg(p, n, parse_value(p)) != 0)
            goto fail;
        settle_types(n, 0, 2);
        return n;
    }
    int negated = 0;
    if (is_keyword(p, "NOT")) {
        negated = 1;
        if (next_token(p) != 0)
            goto fail;
        if (!is_keyword(p, "IN") && !is_keyword(p, "LIKE") && !is_keyword(p, "BETWEEN")) {
            parse_fail(p, "expected IN, LIKE or BETWEEN after NOT at byte %zu, found %s",
                       p->tok.at, token_text(p, buf, sizeof buf));
            goto fail;
        }
    }
    node_kind kind;
    if (is_keyword(p, "IN")) {
        kind = NODE_IN;
    } else if (is_keyword(p, "LIKE")) {
        kind = NODE_LIKE;
    } else if (is_keyword(p, "BETWEEN")) {
        kind = NODE_BETWEEN;
    } else if (is_keyword(p, "IS")) {
        kind = NODE_IS_NULL;
    } else {
        parse_fail(p, "expected a comparison (=, <>, <, IN, LIKE, IS NULL, BETWEEN...) at "
                      "byte %zu, found %s",
                   at, token_text(p, buf, sizeof buf));
        goto fail;
    }
    n = node_with_left(p, kind, left);
    left = NULL;
    if (!n || next_token(p) != 0) /* past the keyword */
        goto fail;
    n->negated = negated;
    if (kind == NODE_IN) {
        if (expect(p, TOKEN_LPAREN, "'(' starting the IN list") != 0)
            goto fail;
        int kinds = 0; /* 1: strings, 2: numbers */
        for (;;) {
            size_t item_at = p->tok.at;
            if (p->tok.kind != TOKEN_STRING && p->tok.kind != TOKEN_NUMBER) {
                if (is_keyword(p, "SELECT"))
                    parse_fail(p, "subqueries are not allowed (SELECT at byte %zu)", item_at);
                else
                    parse_fail(p, "expected a string or number in the IN list at byte %zu, "
                                  "found %s",
                               item_at, token_text(p, buf, sizeof buf));
                goto fail;
            }
            kinds |= p->tok.kind == TOKEN_STRING ? 1 : 2;
            if (kinds == 3) {
                parse_fail(p, "the IN list mixes strings and numbers (byte %zu)", item_at);
                goto fail;
            }
            if (add_arg(p, n, parse_value(p)) != 0)
                goto fail;
            if (p->tok.kind == TOKEN_RPAREN)
                break;
            if (expect(p, TOKEN_COMMA, "',' or ')' in the IN list") != 0)
                goto fail;
        }
        if (next_token(p) != 0)
            goto fail;
        settle_types(n, 0, n->n_args);
        return n;
    }
    if (kind == NODE_IS_NULL) {
        int not = accept_keyword(p, "NOT");
        if (not < 0)
            goto fail;
        n->negated = not;
        if (!is_keyword(p, "NULL")) {
            parse_fail(p, "expected NULL after IS%s at byte %zu, found %s", not ? " NOT" : "",
                       p->tok.at, token_text(p, buf, sizeof buf));
            goto fail;
        }
        if (next_token(p) != 0)
            goto fail;
        return n;
    }
    size_t value_at = p->tok.at;
    if (add_arg(p, n, parse_value(p)) != 0) /* LIKE's pattern, BETWEEN's low bound */
        goto fail;
    if (kind == NODE_LIKE) {
        const node *pattern = n->args[n->n_args - 1];
        if (pattern->kind == NODE_STRING && strlen(pattern->text) > LIKE_PATTERN_MAX) {
            parse_fail(p, "the LIKE pattern at byte %zu is %zu bytes; the limit is %d",
                       value_at, strlen(pattern->text), LIKE_PATTERN_MAX);
            goto fail;
        }
        if (is_keyword(p, "ESCAPE")) {
            parse_fail(p, "ESCAPE at byte %zu is not supported", p->tok.at);
            goto fail;
        }
        return n;
    }
    if (!is_keyword(p, "AND")) {
        parse_fail(p, "expected AND in BETWEEN at byte %zu, found %s", p->tok.at,
                   token_text(p, buf, sizeof buf));
        goto fail;
    }
    if (next_token(p) != 0 || add_arg(p, n, parse_value(p)) != 0)
        goto fail;
    settle_types(n, 0, 3);
    return n;
fail:
    free_node(left);
    free_node(n);
    return NULL;
}

/* not := NOT not | predicate */
static node *parse_not(parser *p)
{
    if (++p->depth > FILTER_MAX_DEPTH) {
        parse_fail(p, "filter nested too deeply at byte %zu (more than %d levels)", p->tok.at,
                   FILTER_MAX_DEPTH);
        return NULL;
    }
    node *result;
    if (is_keyword(p, "NOT")) {
        node *n = new_node(p, NODE_NOT);
        if (!n || next_token(p) != 0 || add_arg(p, n, parse_not(p)) != 0) {
            free_node(n);
            result = NULL;
        } else {
            result = n;
        }
    } else {
        result = parse_predicate(p);
    }
    p->depth--;
    return result;
}

/* Appends operand to the chain n of the same operator, splicing in its operands when it
 * is itself such a chain ("a OR (b OR c)"): AND and OR are associative, in SQL's
 * three-valued logic too. operand is taken over. */
static int add_chain_operand(parser *p, node *n, node *operand)
{
    if (!operand || operand->kind != n->kind)
        return add_arg(p, n, operand);
    for (int i = 0; i < operand->n_args; i++) {
        if (add_arg(p, n, operand->args[i]) != 0) { /* frees args[i] */
            operand->args[i] = NULL;
            free_node(operand);
            return -1;
        }
        operand->args[i] = NULL;
    }
    free_node(operand);
    return 0;
}

/* Chains: and := not (AND not)*, or := and (OR and)*. One node holds all the operands of
 * a chain, not a left-deep tree of pairs: a chain of a thousand ORs is one level deep,
 * for the renderers as for the depth limit (which counts parentheses, NOT and calls). */
static node *parse_chain(parser *p, const char *keyword, node_kind kind,
                         node *(*operand)(parser *))
{
    node *left = operand(p);
    if (!left || !is_keyword(p, keyword))
        return left;
    node *n = new_node(p, kind);
    if (!n || add_chain_operand(p, n, left) != 0) { /* left is freed when this fails */
        if (!n)
            free_node(left);
        free_node(n);
        return NULL;
    }
    while (is_keyword(p, keyword)) {
        if (next_token(p) != 0 || add_chain_operand(p, n, operand(p)) != 0) {
            free_node(n);
            return NULL;
        }
    }
    return n;
}

static node *parse_and(parser *p) { return parse_chain(p, "AND", NODE_AND, parse_not); }

static node *parse_or(parser *p)
{
    if (++p->depth > FILTER_MAX_DEPTH) {
        parse_fail(p, "filter nested too deeply at byte %zu (more than %d levels)", p->tok.at,
                   FILTER_MAX_DEPTH);
        return NULL;
    }
    node *n = parse_chain(p, "OR", NODE_OR, parse_and);
    p->depth--;
    return n;
}

vdx_filter *filter_parse(const char *text, const vdx_filter_column *columns,
                             int n_columns, vdx_error *err)
{
    size_t len = strlen(text);
    if (len > FILTER_MAX_BYTES) {
        vdx_fail_kind(err, VDX_ERR_INVALID, "where: filter is %zu bytes; the limit is %d", len, FILTER_MAX_BYTES);
        return NULL;
    }
    vdx_filter *f = calloc(1, sizeof *f);
    if (!f) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "where: out of memory");
        return NULL;
    }
    parser p = {.text = text, .columns = columns, .n_columns = n_columns, .filter = f,
                .err = err};
    if (next_token(&p) == 0) {
        if (p.tok.kind == TOKEN_END)
            parse_fail(&p, "empty filter");
        else
            f->root = parse_or(&p);
    }
    if (f->root && p.tok.kind != TOKEN_END) {
        char buf[64];
        parse_fail(&p, "unexpected %s at byte %zu after a complete expression",
                   token_text(&p, buf, sizeof buf), p.tok.at);
    }
    free(p.tok.value);
    if (p.failed || !f->root) {
        if (!p.failed)
            vdx_fail_kind(err, VDX_ERR_INVALID, "where: cannot parse '%s'", text);
        filter_free(f);
        return NULL;
    }
    return f;
}

void filter_free(vdx_filter *filter)
{
    if (!filter)
        return;
    free_node(filter->root);
    free(filter->literals);
    free(filter);
}

/* ---- rendering ---- */

typedef enum { DIALECT_SQLITE, DIALECT_CLICKHOUSE } dialect;

static void put_owned(strbuf *b, char *s)
{
    if (!s)
        b->oom = 1;
    else
        strbuf_put(b, s);
    free(s);
}


static char *sqlite_quote_identifier(const char *s)
{
    strbuf b = {0};
    strbuf_put(&b, "\"");
    for (; *s; s++) {
        char c[3] = {*s, 0, 0};
        if (*s == '"')
            c[1] = '"';
        strbuf_put(&b, c);
    }
    strbuf_put(&b, "\"");
    return strbuf_take(&b);
}

static void render(strbuf *b, const node *n, dialect d, int first_param);

/* A value inside a comparison; numeric comparisons convert text values to numbers. */
static void render_operand(strbuf *b, const node *n, dialect d, int first_param, int numeric)
{
    if (numeric && type_of(n) == VALUE_TEXT && n->kind != NODE_STRING && d == DIALECT_SQLITE) {
        strbuf_put(b, "vdx_number(");
        render(b, n, d, first_param);
        strbuf_put(b, ")");
    } else if (numeric && type_of(n) == VALUE_TEXT && n->kind != NODE_STRING) {
        /* vdx_number()'s rule in ClickHouse: the whole text a plain decimal number (a
         * leading '+' allowed, no blanks), else NULL (not inf, nan or hex) */
        strbuf_put(b, "toFloat64OrNull(replaceRegexpOne(if(match(");
        render(b, n, d, first_param);
        strbuf_put(b, ", '^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$'), ");
        render(b, n, d, first_param);
        strbuf_put(b, ", ''), '^[+]', ''))");
    } else {
        render(b, n, d, first_param);
    }
}

/* A chain of n operands of one operator, flat: "(a OR b OR c)". Nesting every pair,
 * "((a OR b) OR c)", made a chain of 90 terms overflow SQLite's parser stack. A flat
 * chain still makes a tree in SQLite as deep as it is long, and SQLite refuses trees
 * deeper than 1,000 ("Expression tree is too large"), so a chain longer than
 * CHAIN_GROUP operands is split into at most CHAIN_GROUP parenthesised groups, each
 * rendered the same way: a few levels of parentheses for the longest chain the byte
 * limit allows. The order of the operands is kept; AND and OR are associative. */
#define CHAIN_GROUP 32

static void render_chain(strbuf *b, node *const *args, int n, const char *op, dialect d,
                         int first_param)
{
    if (n == 1) {
        render(b, args[0], d, first_param);
        return;
    }
    int span = 1; /* operands per group */
    while (span < n / CHAIN_GROUP + (n % CHAIN_GROUP != 0))
        span *= CHAIN_GROUP;
    strbuf_put(b, "(");
    for (int i = 0; i < n; i += span) {
        if (i)
            strbuf_put(b, op);
        render_chain(b, args + i, n - i < span ? n - i : span, op, d, first_param);
    }
    strbuf_put(b, ")");
}

static void render(strbuf *b, const node *n, dialect d, int first_param)
{
    char param[32];
    switch (n->kind) {
    case NODE_OR:
    case NODE_AND:
        render_chain(b, n->args, n->n_args, n->kind == NODE_OR ? " OR " : " AND ", d,
                     first_param);
        break;
    case NODE_NOT:
        strbuf_put(b, "(NOT ");
        render(b, n->args[0], d, first_param);
        strbuf_put(b, ")");
        break;
    case NODE_COMPARE:
        strbuf_put(b, "(");
        render_operand(b, n->args[0], d, first_param, n->numeric);
        strbuf_put(b, " ");
        strbuf_put(b, d == DIALECT_CLICKHOUSE && strcmp(n->op, "<>") == 0 ? "!=" : n->op);
        strbuf_put(b, " ");
        render_operand(b, n->args[1], d, first_param, n->numeric);
        strbuf_put(b, ")");
        break;
    case NODE_IN:
        /* ClickHouse's IN answers 0 for a NULL value (so NOT IN answers 1) where SQL, and
         * SQLite, answer NULL: a NULL value is NULL there too */
        strbuf_put(b, "(");
        if (d == DIALECT_CLICKHOUSE) {
            strbuf_put(b, "if(isNull(");
            render_operand(b, n->args[0], d, first_param, n->numeric);
            strbuf_put(b, "), NULL, ");
        }
        render_operand(b, n->args[0], d, first_param, n->numeric);
        strbuf_put(b, n->negated ? " NOT IN (" : " IN (");
        for (int i = 1; i < n->n_args; i++) {
            if (i > 1)
                strbuf_put(b, ", ");
            render(b, n->args[i], d, first_param);
        }
        strbuf_put(b, d == DIALECT_CLICKHOUSE ? ")))" : "))");
        break;
    case NODE_LIKE: /* case-insensitive (Unicode) on every backend */
        strbuf_put(b, d == DIALECT_SQLITE ? "(vdx_lower(" : "(lowerUTF8(");
        render(b, n->args[0], d, first_param);
        strbuf_put(b, n->negated ? ") NOT LIKE " : ") LIKE ");
        /* '\' is a plain character in SQLite's LIKE (no ESCAPE clause is accepted) but
         * escapes the next character in ClickHouse's: doubled there, it matches itself */
        strbuf_put(b, d == DIALECT_SQLITE ? "vdx_lower(" : "replaceAll(lowerUTF8(");
        render(b, n->args[1], d, first_param);
        strbuf_put(b, d == DIALECT_SQLITE ? "))" : "), '\\\\', '\\\\\\\\'))");
        break;
    case NODE_IS_NULL:
        strbuf_put(b, "(");
        render(b, n->args[0], d, first_param);
        strbuf_put(b, n->negated ? " IS NOT NULL)" : " IS NULL)");
        break;
    case NODE_BETWEEN:
        /* ClickHouse 18.16 has no NOT BETWEEN (a syntax error): NOT (x BETWEEN a AND b),
         * the same in three-valued logic */
        strbuf_put(b, n->negated && d == DIALECT_CLICKHOUSE ? "(NOT (" : "(");
        render_operand(b, n->args[0], d, first_param, n->numeric);
        strbuf_put(b, n->negated && d == DIALECT_SQLITE ? " NOT BETWEEN " : " BETWEEN ");
        render_operand(b, n->args[1], d, first_param, n->numeric);
        strbuf_put(b, " AND ");
        render_operand(b, n->args[2], d, first_param, n->numeric);
        strbuf_put(b, n->negated && d == DIALECT_CLICKHOUSE ? "))" : ")");
        break;
    case NODE_COLUMN:
        put_owned(b, d == DIALECT_SQLITE ? sqlite_quote_identifier(n->text)
                                         : clickhouse_quote_identifier(n->text));
        break;
    case NODE_STRING:
    case NODE_NUMBER:
        if (d == DIALECT_SQLITE) {
            snprintf(param, sizeof param, "?%d", first_param + n->param);
            strbuf_put(b, param);
        } else if (n->kind == NODE_STRING) {
            put_owned(b, clickhouse_quote_string(n->text));
        } else {
            strbuf_put(b, n->text); /* digits, '.', 'e', sign only: checked by the lexer */
        }
        break;
    case NODE_FUNCTION: /* characters, and Unicode case mapping, on every backend */
        if (strcmp(n->text, "length") == 0)
            strbuf_put(b, d == DIALECT_CLICKHOUSE ? "lengthUTF8" : "length");
        else if (strcmp(n->text, "lower") == 0)
            strbuf_put(b, d == DIALECT_CLICKHOUSE ? "lowerUTF8" : "vdx_lower");
        else
            strbuf_put(b, d == DIALECT_CLICKHOUSE ? "upperUTF8" : "vdx_upper");
        strbuf_put(b, "(");
        render(b, n->args[0], d, first_param);
        strbuf_put(b, ")");
        break;
    }
}

static char *render_filter(const vdx_filter *filter, dialect d, int first_param,
                           vdx_error *err)
{
    strbuf b = {0};
    render(&b, filter->root, d, first_param);
    char *sql = strbuf_take(&b);
    if (!sql)
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "where: out of memory");
    return sql;
}

char *filter_to_sqlite(const vdx_filter *filter, int first_param, vdx_error *err)
{
    return render_filter(filter, DIALECT_SQLITE, first_param, err);
}

char *filter_to_clickhouse(const vdx_filter *filter, vdx_error *err)
{
    return render_filter(filter, DIALECT_CLICKHOUSE, 0, err);
}

int filter_bind_sqlite(const vdx_filter *filter, sqlite3_stmt *stmt, int first_param,
                           vdx_error *err)
{
    for (int i = 0; i < filter->n_literals; i++) {
        const node *n = filter->literals[i];
        int index = first_param + n->param, rc;
        if (n->kind == NODE_STRING) {
            rc = sqlite3_bind_text(stmt, index, n->text, -1, SQLITE_TRANSIENT);
        } else {
            char *end;
            errno = 0;
            long long integer = strtoll(n->text, &end, 10);
            if (*end == 0 && errno == 0)
                rc = sqlite3_bind_int64(stmt, index, integer);
            else
                rc = sqlite3_bind_double(stmt, index, strtod(n->text, NULL));
        }
        if (rc != SQLITE_OK)
            return vdx_fail_kind(err, rc == SQLITE_NOMEM ? VDX_ERR_NO_MEMORY : VDX_ERR_INTERNAL,
                                 "where: binding value %d ('%s'): %s", i + 1, n->text,
                                 sqlite3_errstr(rc));
    }
    return 0;
}

/* vdx_number(x): the value as a REAL when its whole text is a decimal number (no
 * surrounding spaces), else NULL. */
static void sql_number(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    switch (sqlite3_value_type(argv[0])) {
    case SQLITE_INTEGER:
    case SQLITE_FLOAT:
        sqlite3_result_double(ctx, sqlite3_value_double(argv[0]));
        return;
    case SQLITE_TEXT: {
        const char *s = (const char *)sqlite3_value_text(argv[0]);
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        /* The whole text, no spaces (as ClickHouse's toFloat64OrNull); strtod also reads
         * hex, inf and nan: only plain decimal numbers count. */
        int decimal = *s && !isspace((unsigned char)*s) && end != s && *end == 0 &&
                      !strpbrk(s, "xXiInN");
        if (decimal && errno != ERANGE)
            sqlite3_result_double(ctx, v);
        else
            sqlite3_result_null(ctx);
        return;
    }
    default:
        sqlite3_result_null(ctx);
    }
}

/* vdx_lower(x) / vdx_upper(x): Unicode simple case mapping with utf8proc (SQLite's own
 * lower() and upper() only map ASCII). Invalid UTF-8 is left as it is. */
static void sql_change_case(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    int upper = sqlite3_user_data(ctx) != NULL;
    const uint8_t *in = sqlite3_value_text(argv[0]);
    int len = sqlite3_value_bytes(argv[0]);
    uint8_t *out = sqlite3_malloc(len * 2 + 1); /* a mapping never more than doubles */
    if (!out) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int n = 0;
    for (int i = 0; i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t used = utf8proc_iterate(in + i, len - i, &cp);
        if (used <= 0) { /* not UTF-8: copy the byte */
            out[n++] = in[i++];
            continue;
        }
        utf8proc_int32_t mapped = upper ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
        n += (int)utf8proc_encode_char(mapped, out + n);
        i += (int)used;
    }
    sqlite3_result_text(ctx, (const char *)out, n, sqlite3_free);
}

int filter_register_sqlite(sqlite3 *db, vdx_error *err)
{
    static const int upper = 1;
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    if (sqlite3_create_function(db, "vdx_number", 1, flags, NULL, sql_number, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_create_function(db, "vdx_lower", 1, flags, NULL, sql_change_case, NULL,
                                NULL) != SQLITE_OK ||
        sqlite3_create_function(db, "vdx_upper", 1, flags, (void *)&upper, sql_change_case,
                                NULL, NULL) != SQLITE_OK)
        return sql_fail(db, err, "where: cannot define the filter functions");
    return 0;
}
