/* Private interface of the ClickHouse/MyScale store backend, shared by its three files:
 *   clickhouse_sql.c   store URL parsing, SQL text per dialect, RowBinary encoding and
 *                      decoding, server error parsing (pure functions, unit-tested)
 *   clickhouse_http.c  the libcurl transport: POST, inserts, external tables, retries
 *   clickhouse.c       the backend itself (the vtable of backend.h)
 * docs/clickhouse.md describes the URL, the dialects and the schema. */
#ifndef VDX_STORE_CLICKHOUSE_H
#define VDX_STORE_CLICKHOUSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/strbuf.h"
#include "vdx/common.h"

typedef enum {
    CH_DIALECT_AUTO = 0,   /* detect from the server */
    CH_DIALECT_LEGACY,     /* any ClickHouse version: arraySum lambda, no index */
    CH_DIALECT_CLICKHOUSE, /* current ClickHouse: cosineDistance, vector_similarity index */
    CH_DIALECT_MYSCALE,    /* MyScale: distance(), VECTOR INDEX, system.vector_indices */
} ch_dialect;

const char *ch_dialect_name(ch_dialect dialect);
/* "legacy", "clickhouse", "myscale" → the dialect; -1 for anything else. */
int ch_dialect_from_name(const char *name);

/* A parsed store URL:
 *   clickhouse://[USER[:PASS]@]HOST[:PORT][/DB][?table=T&dialect=D&index=I&index_params=P
 *                 &database=DB&secure=1&cluster=NAME&shards=HOST:PORT,HOST:PORT]
 *   cluster: the collection lives on that cluster of the server's remote_servers (per-shard
 *   tables + Distributed tables); shards: the HTTP endpoints of every shard, for DDL run on
 *   each of them (a cluster without a coordinator); without it DDL is ON CLUSTER.
 *   http(s)://... the same, https implying TLS (clickhouse:// is plain HTTP unless
 *   secure=1). */
typedef struct ch_url {
    int https;
    char host[256];
    int port;
    char user[128];
    char password[256];
    char database[128];
    char table[128];        /* "" = vdx_<collection> */
    ch_dialect dialect;     /* CH_DIALECT_AUTO when not given */
    char index_type[64];    /* "" = the dialect's default, "none" = no index */
    char index_params[512]; /* comma-separated index parameters, "" = defaults */
    char cluster[128];      /* "" = a single server */
    char shards[512];       /* "" = ON CLUSTER DDL; else "host:port,..." (HTTP) */
} ch_url;

/* Strict parse; errors name the offending part but never repeat the password. */
int ch_url_parse(const char *url, ch_url *out, vdx_error *err);
/* "host:port" for messages. */
void ch_url_endpoint(const ch_url *url, char *out, size_t size);

/* Buffers are common/strbuf.h's. */

/* A ClickHouse string literal for s, quotes included (malloc'd): backslash first, then
 * the quote, \n \t \r \0 as escapes. Use it for every value put into ClickHouse SQL. */
char *clickhouse_quote_string(const char *s);
/* A ClickHouse identifier in backticks (malloc'd), backslash and backtick escaped. */
char *clickhouse_quote_identifier(const char *s);


/* ---- RowBinary ---- */
void ch_rb_varint(strbuf *b, uint64_t v);                     /* LEB128 */
void ch_rb_string(strbuf *b, const char *s);                  /* String */
void ch_rb_nullable_string(strbuf *b, const char *s);         /* Nullable(String), NULL s */
void ch_rb_nullable_int32(strbuf *b, int is_null, int32_t v); /* Nullable(Int32) */
void ch_rb_uint64(strbuf *b, uint64_t v);                     /* UInt64 */
void ch_rb_floats(strbuf *b, const float *v, int n);          /* Array(Float32) */

typedef struct ch_reader {
    const uint8_t *data;
    size_t len, pos;
} ch_reader;

int ch_read_varint(ch_reader *r, uint64_t *v, vdx_error *err);
/* String → malloc'd NUL-terminated copy (a NUL inside the value is refused). */
int ch_read_string(ch_reader *r, char **s, vdx_error *err);
int ch_read_float64(ch_reader *r, double *v, vdx_error *err);
/* Array(Float32) of exactly `dims` elements into out (NULL: skip it). */
int ch_read_floats(ch_reader *r, float *out, int dims, vdx_error *err);

/* ---- SQL ---- */

/* Names of a collection's tables: the items table and its two companions. */
typedef struct ch_tables {
    char items[160], info[160], failures[160]; /* unquoted */
    /* on a cluster, the per-shard tables under the three (which are Distributed): T_shard */
    char items_shard[170], info_shard[170], failures_shard[170];
} ch_tables;
void ch_tables_for(const char *table, const char *collection, ch_tables *out);

/* "[0.5, 1.0, -2.5e-08]": every element with a '.' or an exponent so that the array
 * parses as floats (%.9g round-trips a float exactly). */
void ch_sql_float_array(strbuf *b, const float *v, int n);

/* The columns of the items table (the Distributed table of a cluster repeats them). */
#define CH_ITEMS_COLUMNS                                                                  \
    "id String, url String, vector Array(Float32), width Nullable(Int32), height "       \
    "Nullable(Int32), ingested_at String, row UInt64"
#define CH_INFO_COLUMNS "key String, value String"
#define CH_FAILURES_COLUMNS "id String, url String, reason String, failed_at String, version UInt64"

/* " ON CLUSTER `NAME`" when cluster is neither NULL nor "" (DDL run by the coordinator on
 * every node of the cluster). */
void ch_sql_on_cluster(strbuf *b, const char *cluster);

/* CREATE TABLE IF NOT EXISTS for the items table of the dialect (with the length
 * constraint and, for `clickhouse`, the vector_similarity index unless index is "none"),
 * ON CLUSTER on_cluster when given. malloc'd; NULL with err on bad index parameters. */
char *ch_sql_create_items(ch_dialect dialect, const char *table, const char *on_cluster,
                          int dims, const char *index_type, const char *index_params,
                          vdx_error *err);
/* MyScale: ALTER TABLE … [ON CLUSTER …] ADD VECTOR INDEX …; NULL (and no error) for other
 * dialects or index "none". */
char *ch_sql_add_vector_index(ch_dialect dialect, const char *table, const char *on_cluster,
                              const char *index_type, const char *index_params, vdx_error *err);
/* CREATE TABLE IF NOT EXISTS `table` [ON CLUSTER] (columns) ENGINE = Distributed('cluster',
 * 'database', 'shard_table', cityHash64(key)): rows go to the shard the hash of their key
 * picks, reads gather every shard. malloc'd, NULL on out of memory. */
char *ch_sql_create_distributed(const char *table, const char *on_cluster, const char *cluster,
                                const char *database, const char *shard_table,
                                const char *columns, const char *key);

typedef struct ch_search_sql {
    ch_dialect dialect;
    const char *table;   /* unquoted items table */
    const float *query;  /* dims floats (normalised for a search, raw for score_all) */
    int dims;
    int k, offset;       /* search: LIMIT offset, k */
    int has_exclusions;  /* the query gets an external table `excl` (id String) */
    size_t n_exclude;    /* over-fetch for index dialects */
    const char *where;   /* rendered ClickHouse expression, or NULL */
    int with_vectors;
    int score_all;       /* every match, dist = dot product, in append order */
} ch_search_sql;

/* The search (or score_all) SELECT, output FORMAT RowBinary with the columns
 * id String, url String, dist Float64[, vector Array(Float32)]. malloc'd. LIMIT 1 BY id
 * keeps a row that a crashed writer's lost insert may have doubled out of the answer. */
char *ch_sql_search(const ch_search_sql *s);

/* Parses a ClickHouse error text ("Code: 60, e.displayText() = DB::Exception: Table
 * x doesn't exist., e.what() = DB::Exception" and the newer "Code: 60. DB::Exception:
 * … (UNKNOWN_TABLE) (version …)") into its code and message. Returns 0 when the text
 * holds a code, -1 otherwise (msg then holds the first line of the text). */
int ch_parse_server_error(const char *body, int *code, char *msg, size_t size);
/* Cuts a parsed error message where it starts quoting SQL (a syntax error's position and
 * what follows, "while processing query", "In scope SELECT ...", a SQL keyword) and says
 * so: errors never show API clients or the CLI the query text (clickhouse_http.c). */
void ch_redact_server_error(char *msg, size_t size);

/* ---- HTTP ---- */

typedef struct ch_http ch_http;

ch_http *ch_http_new(const ch_url *url, vdx_error *err);
void ch_http_free(ch_http *h);

/* An external table sent with a query: name, structure "id String", TSV data. */
typedef struct ch_external {
    const char *name;
    const char *structure;
    const char *tsv;
    size_t tsv_len;
} ch_external;

typedef struct ch_request {
    const char *sql;               /* the query */
    const void *body;              /* INSERT data sent after the query, or NULL */
    size_t body_len;
    const ch_external *external;   /* or NULL */
    const char *settings;          /* extra "name=value&..." URL parameters, or NULL */
    int retry;                     /* retry transient failures (idempotent requests) */
} ch_request;

/* Runs one request; the response body goes to *out (NUL-terminated). On failure *err
 * holds an actionable message and, when given, *transient says whether retrying could
 * help (connection reset, 5xx without a ClickHouse error) and *code the server's code. */
int ch_http_run(ch_http *h, const ch_request *req, strbuf *out, int *transient, int *code,
                vdx_error *err);
/* Sleeps before retry number `attempt` (1, 2, ...): 0.2 s doubling up to 3.2 s. */
void ch_http_backoff(int attempt);
#define CH_HTTP_ATTEMPTS 5

/* Appends s to b in TSV escaping (\\ \t \n \r \0 \b \f \'). */
void ch_tsv_escape(strbuf *b, const char *s);

#endif
