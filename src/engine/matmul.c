/* The matrix engine: every Linear layer of the CLIP towers and of the XLM-R tower is a
 * oneDNN matmul (Debian's libdnnl, the C API).
 *
 * Why oneDNN: its brgemm kernels pick the widest ISA at run time (AVX2, AVX-512,
 * AVX512_BF16, VNNI, AMX) and run bf16 and int8 natively where the CPU can; OpenBLAS has
 * float32 only. Weights are reordered once, at load, into the blocked layout oneDNN
 * asks for (format_tag any), so no call repacks them; the layout depends on N, K and the
 * data type, not on the number of rows, so one packed copy serves every row count.
 *
 * Primitives are created once per (rows, N, K, precision, bias, residual) and kept in a
 * process-wide cache (oneDNN's own cache would also hold them, but its key hashing costs
 * more than a text-prompt layer at one row). A primitive is immutable and runs with a
 * scratchpad this file provides per call (scratchpad_mode user), so any number of
 * threads share one. Bias is the matmul's own bias input; the residual add is the "sum"
 * post-op: both exact in float32.
 *
 * int8: the weights are quantised per output channel (symmetric, scale max|w| / 127);
 * the activations per row at every call (scale max|x| / 127); the s8·s8 product
 * accumulates in int32, comes out as float32 and is scaled back per row and channel
 * here (oneDNN 2.6's runtime output scales would push the product off its brgemm
 * kernels onto a slower gemm), then the bias and the residual are added in float32. */
#include "engine/matmul.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "engine/kernels.h"
#include "vdx/common.h"

/* Wall time spent inside engine_matmul, all callers summed (the bench's matmul/rest split). */
static _Atomic unsigned long long matmul_ns;

unsigned long long engine_matmul_elapsed_ns(void) { return matmul_ns; }

static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void engine_create(void)
{
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success)
        engine = NULL;
}

static dnnl_engine_t get_engine(void)
{
    pthread_once(&engine_once, engine_create);
    return engine;
}

int engine_cpu_has_bf16(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16") && !__builtin_cpu_supports("amx-bf16"))
        return 0;
    /* and oneDNN may use it: ONEDNN_MAX_CPU_ISA=AVX2 (say) leaves it no bf16 kernel */
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

static dnnl_data_type_t weight_type(vdx_precision p)
{
    return p == VDX_PRECISION_BF16 ? dnnl_bf16 : p == VDX_PRECISION_INT8 ? dnnl_s8 : dnnl_f32;
}

/* ---- primitives ------------------------------------------------------------------ */

typedef struct primitive_key {
    int m, n, k, precision, bias, accumulate;
} primitive_key;

typedef struct cached_primitive {
    primitive_key key;
    dnnl_primitive_t primitive;
    dnnl_memory_desc_t weights, scratchpad;
    char impl[48]; /* oneDNN's implementation name, e.g. "brg:avx512_core_bf16" */
    int used;
} cached_primitive;

/* Distinct shapes are few (rows up to a batch, a handful of N·K pairs, three
 * precisions); past this many a primitive is made and freed per call. */
#define CACHE_SLOTS 4096
static cached_primitive cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned key_hash(const primitive_key *k)
{
    unsigned h = 2166136261u;
    const int v[6] = {k->m, k->n, k->k, k->precision, k->bias, k->accumulate};
    for (int i = 0; i < 6; i++)
        h = (h ^ (unsigned)v[i]) * 16777619u;
    return h;
}

/* A primitive descriptor for the key; weights_md NULL asks oneDNN for its layout. */
static dnnl_status_t make_pd(dnnl_primitive_desc_t *pd, const primitive_key *key,
                             const dnnl_memory_desc_t *weights_md)
{
    dnnl_data_type_t wt = weight_type((vdx_precision)key->precision);
    dnnl_memory_desc_t src, weights, bias, dst;
    dnnl_dims_t src_dims = {key->m, key->k}, w_dims = {key->k, key->n}, dst_dims = {key->m, key->n};
    dnnl_dims_t bias_dims = {1, key->n};
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&src, 2, src_dims, wt, dnnl_ab);
    if (s == dnnl_success && weights_md)
        weights = *weights_md;
    else if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&weights, 2, w_dims, wt, dnnl_format_tag_any);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&dst, 2, dst_dims, dnnl_f32, dnnl_ab);
    if (s == dnnl_success && key->bias)
        s = dnnl_memory_desc_init_by_tag(&bias, 2, bias_dims, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t desc;
    if (s == dnnl_success)
        s = dnnl_matmul_desc_init(&desc, &src, &weights, key->bias ? &bias : NULL, &dst);
    dnnl_primitive_attr_t attr = NULL;
    if (s == dnnl_success)
        s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_post_ops_t ops = NULL;
    if (s == dnnl_success && key->accumulate) {
        s = dnnl_post_ops_create(&ops);
        if (s == dnnl_success)
            s = dnnl_post_ops_append_sum(ops, 1.0f);
        if (s == dnnl_success)
            s = dnnl_primitive_attr_set_post_ops(attr, ops);
        dnnl_post_ops_destroy(ops);
    }
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(pd, &desc, attr, get_engine(), NULL);
    dnnl_primitive_attr_destroy(attr);
    return s;
}

static const char *status_text(dnnl_status_t s)
{
    switch (s) {
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "no implementation for this shape";
    default: return "failed";
    }
}

static int fail_status(vdx_error *err, dnnl_status_t s, const primitive_key *key)
{
    if (s == dnnl_out_of_memory)
        return vdx_fail_oom(err, "oneDNN matmul %d×%d×%d", key->m, key->n, key->k);
    return vdx_fail(err, "oneDNN matmul %d×%d×%d (%s): %s", key->m, key->n, key->k,
                    vdx_precision_name((vdx_precision)key->precision), status_text(s));
}

/* Fills c (primitive, scratchpad size) for key; c->primitive stays NULL on failure. */
static dnnl_status_t build(cached_primitive *c, const primitive_key *key,
                           const dnnl_memory_desc_t *weights_md)
{
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = make_pd(&pd, key, weights_md);
    if (s != dnnl_success)
        return s;
    c->key = *key;
    c->scratchpad = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    c->weights = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(c->impl, sizeof c->impl, "%s", impl ? impl : "?");
    s = dnnl_primitive_create(&c->primitive, pd);
    dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success)
        c->primitive = NULL;
    return s;
}

/* The cached primitive for key (built on first use); *owned set when the cache is full
 * and the caller must destroy c->primitive after the call. */
static dnnl_status_t lookup(const primitive_key *key, const dnnl_memory_desc_t *weights_md,
                            cached_primitive *out, int *owned)
{
    unsigned h = key_hash(key);
    *owned = 0;
    pthread_mutex_lock(&cache_lock);
    for (unsigned probe = 0; probe < CACHE_SLOTS; probe++) {
        cached_primitive *c = &cache[(h + probe) % CACHE_SLOTS];
        if (c->used && memcmp(&c->key, key, sizeof *key) == 0) {
            *out = *c;
            pthread_mutex_unlock(&cache_lock);
            return dnnl_success;
        }
        if (!c->used) {
            dnnl_status_t s = build(c, key, weights_md);
            if (s == dnnl_success) {
                c->used = 1;
                *out = *c;
            }
            pthread_mutex_unlock(&cache_lock);
            return s;
        }
        if (probe == 64)
            break; /* a long chain: the table is as good as full */
    }
    pthread_mutex_unlock(&cache_lock);
    *owned = 1;
    return build(out, key, weights_md);
}

const char *engine_matmul_isa(vdx_precision precision)
{
    static char names[4][48];
    /* int8 adds the bias itself (after the per-row scale) */
    primitive_key key = {1600, 3072, 768, (int)precision, precision != VDX_PRECISION_INT8, 0};
    cached_primitive c;
    int owned;
    unsigned i = (unsigned)precision < 4 ? (unsigned)precision : 0;
    if (!get_engine() || lookup(&key, NULL, &c, &owned) != dnnl_success)
        return "unavailable";
    if (owned)
        dnnl_primitive_destroy(c.primitive);
    pthread_mutex_lock(&cache_lock);
    snprintf(names[i], sizeof names[i], "%s", c.impl);
    pthread_mutex_unlock(&cache_lock);
    return names[i];
}

/* ---- packing --------------------------------------------------------------------- */

/* Rows of packing hint: the weights' layout is asked for at a vision batch's size. */
#define PACK_HINT_ROWS 1600

int engine_matrix_pack(engine_matrix *w, const float *src, int n, int k, vdx_precision precision,
                     vdx_error *err)
{
    memset(w, 0, sizeof *w);
    w->n = n;
    w->k = k;
    w->precision = precision;
    if (!get_engine())
        return vdx_fail(err, "oneDNN: no CPU engine");
    primitive_key key = {PACK_HINT_ROWS, n, k, (int)precision, 0, 0};
    cached_primitive c;
    int owned;
    dnnl_status_t s = lookup(&key, NULL, &c, &owned);
    if (s != dnnl_success)
        return fail_status(err, s, &key);
    if (owned)
        dnnl_primitive_destroy(c.primitive);
    w->desc = c.weights;
    w->bytes = dnnl_memory_desc_get_size(&w->desc);
    w->data = aligned_alloc(64, (w->bytes + 63) & ~(size_t)63);
    if (!w->data)
        return vdx_fail_oom(err, "%zu bytes of packed weights", w->bytes);

    /* The source as oneDNN sees it: K×N, stored N-major (tag ba), in the target type. */
    const void *plain = src;
    int8_t *quantised = NULL;
    if (precision == VDX_PRECISION_INT8) {
        quantised = malloc((size_t)n * k);
        w->scales = malloc((size_t)n * sizeof *w->scales);
        if (!quantised || !w->scales) {
            free(quantised);
            return vdx_fail_oom(err, "quantising a %d×%d weight", n, k);
        }
        for (int r = 0; r < n; r++) {
            const float *row = src + (size_t)r * k;
            float max = 0;
            for (int i = 0; i < k; i++)
                max = fabsf(row[i]) > max ? fabsf(row[i]) : max;
            float scale = max > 0 ? max / 127.0f : 1.0f;
            w->scales[r] = scale;
            for (int i = 0; i < k; i++)
                quantised[(size_t)r * k + i] = (int8_t)lrintf(row[i] / scale);
        }
        plain = quantised;
    }
    dnnl_memory_desc_t plain_md;
    dnnl_dims_t dims = {k, n};
    dnnl_data_type_t plain_type = precision == VDX_PRECISION_INT8 ? dnnl_s8 : dnnl_f32;
    dnnl_memory_t from = NULL, to = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_stream_t stream = NULL;
    s = dnnl_memory_desc_init_by_tag(&plain_md, 2, dims, plain_type, dnnl_ba);
    if (s == dnnl_success)
        s = dnnl_memory_create(&from, &plain_md, engine, (void *)plain);
    if (s == dnnl_success)
        s = dnnl_memory_create(&to, &w->desc, engine, w->data);
    if (s == dnnl_success)
        s = dnnl_reorder_primitive_desc_create(&rpd, &plain_md, engine, &w->desc, engine, NULL);
    if (s == dnnl_success)
        s = dnnl_primitive_create(&reorder, rpd);
    if (s == dnnl_success)
        s = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        s = dnnl_primitive_execute(reorder, stream, 2, args);
        if (s == dnnl_success)
            s = dnnl_stream_wait(stream);
    }
    dnnl_stream_destroy(stream);
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(from);
    dnnl_memory_destroy(to);
    free(quantised);
    return s == dnnl_success ? 0 : fail_status(err, s, &key);
}

void engine_matrix_free(engine_matrix *w)
{
    if (!w)
        return;
    free(w->data);
    free(w->scales);
    w->data = NULL;
    w->scales = NULL;
}

/* ---- the product ------------------------------------------------------------------ */

/* The conversions around a product run on the team too (rows are independent, so the
 * results do not depend on the split): serial, they held back the 2-core batch. The int8
 * rows' quantisation and scaling back are vectorised kernels (kernels.c). */
#define PARALLEL_ELEMENTS (1 << 16)

int engine_matmul(float *out, const float *x, const engine_matrix *w, const float *bias, int m,
                int accumulate, vdx_error *err)
{
    double started = vdx_now();
    int int8 = w->precision == VDX_PRECISION_INT8;
    /* int8 applies bias and residual itself, after the per-row scale */
    primitive_key key = {m, w->n, w->k, (int)w->precision, bias && !int8, accumulate && !int8};
    cached_primitive c;
    int owned;
    dnnl_status_t s = lookup(&key, &w->desc, &c, &owned);
    if (s != dnnl_success)
        return fail_status(err, s, &key);

    size_t k = (size_t)w->k, n = (size_t)w->n;
    size_t src_bytes = w->precision == VDX_PRECISION_FP32 ? 0
                       : (size_t)m * k * (int8 ? 1 : 2);
    size_t row_scales = int8 ? (size_t)m * sizeof(float) : 0;
    size_t product = int8 && accumulate ? (size_t)m * n * sizeof(float) : 0;
    size_t pad = dnnl_memory_desc_get_size(&c.scratchpad);
    size_t a = (src_bytes + 63) & ~(size_t)63, b = (row_scales + 63) & ~(size_t)63;
    size_t p = (product + 63) & ~(size_t)63;
    unsigned char *block = NULL;
    if (a + b + p + pad > 0 && !(block = aligned_alloc(64, a + b + p + ((pad + 63) & ~(size_t)63)))) {
        if (owned)
            dnnl_primitive_destroy(c.primitive);
        return vdx_fail_oom(err, "matmul buffers for %d rows", m);
    }
    const void *src = x;
    float *scales = (float *)(block + a);
    float *dst = int8 && accumulate ? (float *)(block + a + b) : out;
    if (w->precision == VDX_PRECISION_BF16) {
        uint16_t *rows = (uint16_t *)block;
#pragma omp parallel for schedule(static) if ((size_t)m * k >= PARALLEL_ELEMENTS)
        for (int r = 0; r < m; r++)
            half_f32_to_bf16_array(x + (size_t)r * k, rows + (size_t)r * k, k);
        src = block;
    } else if (int8) {
        engine_quantise_rows(x, m, (int)k, (int8_t *)block, scales);
        src = block;
    }

    dnnl_memory_desc_t src_md, dst_md, bias_md;
    dnnl_dims_t src_dims = {m, (dnnl_dim_t)k}, dst_dims = {m, (dnnl_dim_t)n};
    dnnl_dims_t bias_dims = {1, (dnnl_dim_t)n};
    dnnl_memory_desc_init_by_tag(&src_md, 2, src_dims, weight_type(w->precision), dnnl_ab);
    dnnl_memory_desc_init_by_tag(&dst_md, 2, dst_dims, dnnl_f32, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&bias_md, 2, bias_dims, dnnl_f32, dnnl_ab);
    dnnl_memory_t mem[6] = {0};
    dnnl_exec_arg_t args[6];
    int n_args = 0;
#define ARG(which, md, ptr)                                                                \
    if (s == dnnl_success) {                                                               \
        s = dnnl_memory_create(&mem[n_args], md, engine, (void *)(ptr));                  \
        args[n_args] = (dnnl_exec_arg_t){which, mem[n_args]};                              \
        n_args += s == dnnl_success;                                                       \
    }
    ARG(DNNL_ARG_SRC, &src_md, src);
    ARG(DNNL_ARG_WEIGHTS, &w->desc, w->data);
    ARG(DNNL_ARG_DST, &dst_md, dst);
    if (key.bias)
        ARG(DNNL_ARG_BIAS, &bias_md, bias);
    if (pad > 0)
        ARG(DNNL_ARG_SCRATCHPAD, &c.scratchpad, block + a + b + p);
#undef ARG
    dnnl_stream_t stream = NULL;
    if (s == dnnl_success)
        s = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    if (s == dnnl_success)
        s = dnnl_primitive_execute(c.primitive, stream, n_args, args);
    if (s == dnnl_success)
        s = dnnl_stream_wait(stream);
    dnnl_stream_destroy(stream);
    for (int i = 0; i < n_args; i++)
        dnnl_memory_destroy(mem[i]);
    if (owned)
        dnnl_primitive_destroy(c.primitive);
    if (s == dnnl_success && int8)
        engine_int8_scale_back(dst, m, (int)n, scales, w->scales, bias, accumulate, out);
    free(block);
    matmul_ns += (unsigned long long)((vdx_now() - started) * 1e9);
    return s == dnnl_success ? 0 : fail_status(err, s, &key);
}

/* ---- precisions ------------------------------------------------------------------- */

static const char *const precision_names[] = {"auto", "fp32", "bf16", "int8"};

const char *vdx_precision_name(vdx_precision precision)
{
    unsigned i = (unsigned)precision;
    return i < sizeof precision_names / sizeof *precision_names ? precision_names[i] : "?";
}

int vdx_precision_parse(const char *text, vdx_precision *out, vdx_error *err)
{
    for (unsigned i = 0; i < sizeof precision_names / sizeof *precision_names; i++)
        if (text && strcmp(text, precision_names[i]) == 0) {
            *out = (vdx_precision)i;
            return 0;
        }
    return vdx_fail_kind(err, VDX_ERR_INVALID,
                         "precision '%s': expected fp32, bf16, int8 or auto", text ? text : "");
}

int engine_precision_order(vdx_precision order[3])
{
    __builtin_cpu_init();
    int bf16 = engine_cpu_has_bf16(), amx = bf16 && __builtin_cpu_supports("amx-bf16");
    int n = 0;
    if (amx)
        order[n++] = VDX_PRECISION_BF16;
    order[n++] = VDX_PRECISION_INT8;
    if (bf16 && !amx)
        order[n++] = VDX_PRECISION_BF16;
    order[n++] = VDX_PRECISION_FP32;
    return n;
}

double engine_precision_floor(vdx_precision precision)
{
    return precision == VDX_PRECISION_BF16 ? 0.9995 : precision == VDX_PRECISION_INT8 ? 0.99 : 1;
}

vdx_precision vdx_precision_resolve(vdx_precision requested, const char **why)
{
    if (why)
        *why = NULL;
    int bf16 = engine_cpu_has_bf16();
    if (requested == VDX_PRECISION_AUTO) {
        vdx_precision order[3];
        engine_precision_order(order);
        return order[0];
    }
    if (requested == VDX_PRECISION_BF16 && !bf16) {
        if (why)
            *why = "bf16 requested but this CPU has no native bf16 (AVX512_BF16 or AMX): "
                   "running fp32";
        return VDX_PRECISION_FP32;
    }
    return requested;
}

int vdx_precision_from_env(vdx_precision fallback, vdx_precision *out, vdx_error *err)
{
    const char *env = getenv("VDX_PRECISION");
    *out = fallback;
    if (!env || !*env)
        return 0;
    if (vdx_precision_parse(env, out, err) != 0)
        return vdx_error_prefix(err, "VDX_PRECISION");
    return 0;
}
