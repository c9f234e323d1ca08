/* A restricted unpickler for PyTorch state dicts, shared by both pytorch_model.bin
 * layouts (torch_zip.c, torch_legacy.c).
 *
 * Pickle is a small stack machine whose GLOBAL/REDUCE opcodes can call any Python
 * function, which is how malicious checkpoints run code. This reader implements the
 * opcodes torch.save writes for a state dict (protocol 2, plus the framing opcodes of
 * protocol 4) and knows exactly the globals a state dict needs: collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the storage classes of the
 * dtypes vdx reads. Any other global is refused before anything is built, with the byte
 * offset of the opcode that named it. Values live in an arena freed in one sweep, so
 * memo references and shared objects need no reference counting. */
#include "weights/weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef enum {
    PV_NONE, PV_BOOL, PV_INT, PV_BIGINT, PV_FLOAT, PV_STRING, PV_TUPLE, PV_LIST, PV_DICT,
    PV_GLOBAL, PV_STORAGE, PV_TENSOR
} value_kind;

static const char *const kind_names[] = {
    "None", "bool", "int", "big int", "float", "string", "tuple", "list", "dict",
    "global", "storage", "tensor"};

typedef enum {
    GLOBAL_ORDERED_DICT, GLOBAL_REBUILD_TENSOR_V2, GLOBAL_REBUILD_PARAMETER, GLOBAL_STORAGE
} global_kind;

typedef struct value {
    value_kind kind;
    int64_t integer;              /* PV_INT, PV_BOOL */
    char *bytes;                  /* PV_STRING (NUL-terminated), PV_BIGINT (little-endian) */
    size_t length;
    struct value **items;         /* PV_TUPLE, PV_LIST; PV_DICT as key, value, key, ... */
    size_t count, capacity;
    global_kind global;           /* PV_GLOBAL */
    vdx_dtype dtype;              /* PV_GLOBAL of a storage class, PV_STORAGE, PV_TENSOR */
    vdx_pickle_tensor tensor;     /* PV_STORAGE, PV_TENSOR; strings borrowed from the arena */
} value;

typedef struct unpickler {
    const uint8_t *buf;
    size_t size, pos, op_pos;
    size_t base; /* offset of buf in its file, for messages */
    const char *what;
    vdx_error *err;
    value **stack;
    size_t depth, stack_capacity;
    size_t *marks;
    size_t mark_count, marks_capacity;
    value **memo;
    size_t memo_capacity, memo_used;
    value **arena;
    size_t arena_count, arena_capacity;
    size_t bytes; /* allocated for the machine so far, held under PICKLE_MAX_BYTES */
} unpickler;

/* What unpickling may allocate (values, stacks, memo, strings; not the tensor data, which
 * stays in the file). A CLIP state dict needs well under 1 MiB; a small hostile pickle
 * (a million nested MARKs, a memo index of 10^9) must not take hundreds of MiB. */
#define PICKLE_MAX_BYTES (64u << 20)

static const struct {
    const char *module, *name;
    global_kind kind;
    vdx_dtype dtype;
} allowed_globals[] = {
    {"collections", "OrderedDict", GLOBAL_ORDERED_DICT, VDX_DTYPE_F32},
    {"torch._utils", "_rebuild_tensor_v2", GLOBAL_REBUILD_TENSOR_V2, VDX_DTYPE_F32},
    {"torch._utils", "_rebuild_parameter", GLOBAL_REBUILD_PARAMETER, VDX_DTYPE_F32},
    {"torch", "FloatStorage", GLOBAL_STORAGE, VDX_DTYPE_F32},
    {"torch", "HalfStorage", GLOBAL_STORAGE, VDX_DTYPE_F16},
    {"torch", "BFloat16Storage", GLOBAL_STORAGE, VDX_DTYPE_BF16},
    {"torch", "LongStorage", GLOBAL_STORAGE, VDX_DTYPE_I64},
};

static int fail(unpickler *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(unpickler *u, const char *fmt, ...)
{
    char message[VDX_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return vdx_fail_kind(u->err, VDX_ERR_CORRUPT, "%s: pickle at byte %zu: %s", u->what, u->base + u->op_pos,
                    message);
}

/* Counts n more bytes against PICKLE_MAX_BYTES; fails (with the error set) beyond it. */
static int charge(unpickler *u, size_t n)
{
    if (n > PICKLE_MAX_BYTES - u->bytes)
        return fail(u, "unpickling needs more than %u MiB of memory (a state dict needs far "
                       "less): refused", PICKLE_MAX_BYTES >> 20);
    u->bytes += n;
    return 0;
}

/* Grows *array (of `size`-byte elements) so it holds at least `need`. */
static int reserve(void **array, size_t *capacity, size_t need, size_t size)
{
    if (need <= *capacity)
        return 0;
    size_t grown = *capacity ? *capacity * 2 : 16;
    while (grown < need)
        grown *= 2;
    void *bigger = realloc(*array, grown * size);
    if (!bigger)
        return -1;
    *array = bigger;
    *capacity = grown;
    return 0;
}

/* reserve(), charged to the machine's budget (the growth, in bytes). */
static int grow(unpickler *u, void **array, size_t *capacity, size_t need, size_t size)
{
    if (need <= *capacity)
        return 0;
    size_t target = *capacity ? *capacity : 16;
    while (target < need && target < SIZE_MAX / 2 / size)
        target *= 2;
    if (target < need || charge(u, (target - *capacity) * size) != 0)
        return target < need ? fail(u, "out of memory") : -1;
    if (reserve(array, capacity, need, size) != 0)
        return fail(u, "out of memory");
    return 0;
}

static value *new_value(unpickler *u, value_kind kind)
{
    if (charge(u, sizeof(value)) != 0)
        return NULL;
    if (grow(u, (void **)&u->arena, &u->arena_capacity, u->arena_count + 1, sizeof(value *)))
        return NULL;
    value *v = calloc(1, sizeof *v);
    if (!v) {
        fail(u, "out of memory");
        return NULL;
    }
    v->kind = kind;
    u->arena[u->arena_count++] = v;
    return v;
}

static void unpickler_free(unpickler *u)
{
    for (size_t i = 0; i < u->arena_count; i++) {
        free(u->arena[i]->bytes);
        free(u->arena[i]->items);
        free(u->arena[i]);
    }
    free(u->arena);
    free(u->stack);
    free(u->marks);
    free(u->memo);
}

static int push(unpickler *u, value *v)
{
    if (!v)
        return -1;
    if (grow(u, (void **)&u->stack, &u->stack_capacity, u->depth + 1, sizeof(value *)))
        return -1;
    u->stack[u->depth++] = v;
    return 0;
}

static value *pop(unpickler *u)
{
    size_t floor = u->mark_count ? u->marks[u->mark_count - 1] : 0;
    if (u->depth <= floor) {
        fail(u, "stack underflow");
        return NULL;
    }
    return u->stack[--u->depth];
}

static value *top(unpickler *u)
{
    if (u->depth == 0) {
        fail(u, "stack underflow");
        return NULL;
    }
    return u->stack[u->depth - 1];
}

/* Removes the topmost mark; *start gets the stack index of the first item above it. */
static int pop_mark(unpickler *u, size_t *start)
{
    if (u->mark_count == 0)
        return fail(u, "no MARK on the stack");
    *start = u->marks[--u->mark_count];
    return 0;
}

static int append_item(unpickler *u, value *container, value *item)
{
    if (grow(u, (void **)&container->items, &container->capacity, container->count + 1,
             sizeof(value *)))
        return -1;
    container->items[container->count++] = item;
    return 0;
}

/* Moves stack[start..depth) into `container`'s items. */
static int move_items(unpickler *u, value *container, size_t start)
{
    for (size_t i = start; i < u->depth; i++)
        if (append_item(u, container, u->stack[i]))
            return -1;
    u->depth = start;
    return 0;
}

static int need(unpickler *u, size_t n)
{
    if (n > u->size - u->pos)
        return fail(u, "truncated: opcode needs %zu more bytes, %zu left", n, u->size - u->pos);
    return 0;
}

static uint64_t read_le(unpickler *u, size_t n)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x |= (uint64_t)u->buf[u->pos + i] << (8 * i);
    u->pos += n;
    return x;
}

static int push_int(unpickler *u, int64_t x)
{
    value *v = new_value(u, PV_INT);
    if (!v)
        return -1;
    v->integer = x;
    return push(u, v);
}

static int push_bytes(unpickler *u, value_kind kind, size_t length)
{
    if (need(u, length))
        return -1;
    if (charge(u, length + 1) != 0)
        return -1;
    value *v = new_value(u, kind);
    if (!v)
        return -1;
    v->bytes = malloc(length + 1);
    if (!v->bytes)
        return fail(u, "out of memory for a %zu-byte string", length);
    memcpy(v->bytes, u->buf + u->pos, length);
    v->bytes[length] = 0;
    v->length = length;
    u->pos += length;
    return push(u, v);
}

/* LONG1: little-endian two's complement of n bytes; up to 8 bytes become an int. */
static int push_long(unpickler *u, size_t n)
{
    if (n > 8)
        return push_bytes(u, PV_BIGINT, n);
    if (need(u, n))
        return -1;
    uint64_t x = read_le(u, n);
    if (n > 0 && n < 8 && (x >> (8 * n - 1)) & 1)
        x |= ~(uint64_t)0 << (8 * n);
    return push_int(u, (int64_t)x);
}

/* Copies a module or class name for an error message, replacing unprintable bytes. */
static void printable(char *out, size_t out_size, const char *s, size_t n)
{
    size_t i = 0;
    for (; i < n && i + 1 < out_size; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    out[i] = 0;
}

static int push_global(unpickler *u, const char *module, size_t module_len, const char *name,
                       size_t name_len)
{
    for (size_t i = 0; i < sizeof allowed_globals / sizeof allowed_globals[0]; i++)
        if (strlen(allowed_globals[i].module) == module_len &&
            memcmp(allowed_globals[i].module, module, module_len) == 0 &&
            strlen(allowed_globals[i].name) == name_len &&
            memcmp(allowed_globals[i].name, name, name_len) == 0) {
            value *v = new_value(u, PV_GLOBAL);
            if (!v)
                return -1;
            v->global = allowed_globals[i].kind;
            v->dtype = allowed_globals[i].dtype;
            return push(u, v);
        }
    char m[128], n[128];
    printable(m, sizeof m, module, module_len);
    printable(n, sizeof n, name, name_len);
    return fail(u, "refusing global '%s.%s' (only a state dict's tensors are loaded)", m, n);
}

/* GLOBAL: "module\nname\n". */
static int op_global(unpickler *u)
{
    const char *start[2];
    size_t length[2];
    for (int part = 0; part < 2; part++) {
        const uint8_t *nl = memchr(u->buf + u->pos, '\n', u->size - u->pos);
        if (!nl)
            return fail(u, "truncated GLOBAL name");
        start[part] = (const char *)u->buf + u->pos;
        length[part] = (size_t)(nl - (u->buf + u->pos));
        u->pos += length[part] + 1;
    }
    return push_global(u, start[0], length[0], start[1], length[1]);
}

static int op_stack_global(unpickler *u)
{
    value *name = pop(u);
    value *module = name ? pop(u) : NULL;
    if (!module)
        return -1;
    if (name->kind != PV_STRING || module->kind != PV_STRING)
        return fail(u, "STACK_GLOBAL needs two strings");
    return push_global(u, module->bytes, module->length, name->bytes, name->length);
}

static int is_int(const value *v) { return v->kind == PV_INT; }

/* ('storage', StorageClass, key, location, numel[, view_metadata]) → a storage. */
static int op_persistent_id(unpickler *u)
{
    value *pid = pop(u);
    if (!pid)
        return -1;
    if (pid->kind != PV_TUPLE || pid->count < 5 || pid->count > 6 ||
        pid->items[0]->kind != PV_STRING || strcmp(pid->items[0]->bytes, "storage") != 0)
        return fail(u, "persistent id is not a ('storage', type, key, location, size) tuple");
    value *type = pid->items[1], *key = pid->items[2], *numel = pid->items[4];
    if (type->kind != PV_GLOBAL || type->global != GLOBAL_STORAGE)
        return fail(u, "persistent id names a %s, not a storage class", kind_names[type->kind]);
    if (key->kind != PV_STRING || strlen(key->bytes) != key->length || key->length == 0)
        return fail(u, "storage key is not a string");
    if (!is_int(numel) || numel->integer < 0 || numel->integer > (INT64_MAX / 8))
        return fail(u, "storage '%s' has an invalid size", key->bytes);
    if (pid->count == 6 && pid->items[5]->kind != PV_NONE)
        return fail(u, "storage '%s' is a view of another storage (not supported)",
                    key->bytes);
    value *storage = new_value(u, PV_STORAGE);
    if (!storage)
        return -1;
    storage->dtype = type->dtype;
    storage->tensor.dtype = type->dtype;
    storage->tensor.storage_key = key->bytes;
    storage->tensor.storage_numel = numel->integer;
    return push(u, storage);
}

/* Reads a tuple of non-negative ints (a size or a stride) into dims. */
static int read_dims(unpickler *u, const value *tuple, const char *what, int64_t *dims,
                     int *ndim)
{
    if (tuple->kind != PV_TUPLE)
        return fail(u, "tensor %s is a %s, not a tuple", what, kind_names[tuple->kind]);
    if (tuple->count > VDX_TENSOR_MAX_DIMS)
        return fail(u, "tensor has %zu dimensions (at most %d supported)", tuple->count,
                    VDX_TENSOR_MAX_DIMS);
    for (size_t i = 0; i < tuple->count; i++) {
        if (!is_int(tuple->items[i]) || tuple->items[i]->integer < 0)
            return fail(u, "tensor %s[%zu] is not a non-negative int", what, i);
        dims[i] = tuple->items[i]->integer;
    }
    *ndim = (int)tuple->count;
    return 0;
}

static int op_reduce(unpickler *u)
{
    value *args = pop(u);
    value *callable = args ? pop(u) : NULL;
    if (!callable)
        return -1;
    if (callable->kind != PV_GLOBAL)
        return fail(u, "REDUCE on a %s, not a known callable", kind_names[callable->kind]);
    if (args->kind != PV_TUPLE)
        return fail(u, "REDUCE arguments are a %s, not a tuple", kind_names[args->kind]);
    switch (callable->global) {
    case GLOBAL_ORDERED_DICT:
        if (args->count != 0)
            return fail(u, "OrderedDict called with arguments");
        return push(u, new_value(u, PV_DICT));
    case GLOBAL_REBUILD_PARAMETER:
        if (args->count < 1 || args->items[0]->kind != PV_TENSOR)
            return fail(u, "_rebuild_parameter needs a tensor");
        return push(u, args->items[0]);
    case GLOBAL_REBUILD_TENSOR_V2: {
        if (args->count < 4 || args->count > 7 || args->items[0]->kind != PV_STORAGE ||
            !is_int(args->items[1]) || args->items[1]->integer < 0)
            return fail(u, "_rebuild_tensor_v2 needs (storage, offset, size, stride, ...)");
        value *t = new_value(u, PV_TENSOR);
        if (!t)
            return -1;
        t->tensor = args->items[0]->tensor;
        t->tensor.storage_offset = args->items[1]->integer;
        int stride_dims;
        if (read_dims(u, args->items[2], "size", t->tensor.shape, &t->tensor.ndim) ||
            read_dims(u, args->items[3], "stride", t->tensor.stride, &stride_dims))
            return -1;
        if (stride_dims != t->tensor.ndim)
            return fail(u, "tensor size has %d dimensions but stride %d", t->tensor.ndim,
                        stride_dims);
        return push(u, t);
    }
    case GLOBAL_STORAGE:
        break;
    }
    return fail(u, "a storage class cannot be called");
}

/* BUILD sets an object's state: the _metadata of an OrderedDict, ignored. */
static int op_build(unpickler *u)
{
    value *state = pop(u);
    value *target = state ? top(u) : NULL;
    if (!target)
        return -1;
    if (target->kind != PV_DICT && target->kind != PV_TENSOR)
        return fail(u, "BUILD on a %s", kind_names[target->kind]);
    return 0;
}

static int memo_put(unpickler *u, uint64_t index)
{
    value *v = top(u);
    if (!v)
        return -1;
    if (index >= u->size)
        return fail(u, "memo index %llu out of range", (unsigned long long)index);
    size_t old = u->memo_capacity;
    if (grow(u, (void **)&u->memo, &u->memo_capacity, (size_t)index + 1, sizeof(value *)))
        return -1;
    if (u->memo_capacity > old)
        memset(u->memo + old, 0, (u->memo_capacity - old) * sizeof(value *));
    u->memo_used += u->memo[index] == NULL;
    u->memo[index] = v;
    return 0;
}

static int memo_get(unpickler *u, uint64_t index)
{
    if (index >= u->memo_capacity || !u->memo[index])
        return fail(u, "memo index %llu was never stored", (unsigned long long)index);
    return push(u, u->memo[index]);
}

static int make_tuple(unpickler *u, size_t n)
{
    if (u->depth < n + (u->mark_count ? u->marks[u->mark_count - 1] : 0))
        return fail(u, "stack underflow");
    value *t = new_value(u, PV_TUPLE);
    if (!t || move_items(u, t, u->depth - n))
        return -1;
    return push(u, t);
}

static int set_items(unpickler *u, size_t start)
{
    if ((u->depth - start) % 2)
        return fail(u, "SETITEMS with an odd number of items");
    if (start == 0 || u->stack[start - 1]->kind != PV_DICT)
        return fail(u, "SETITEMS on something that is not a dict");
    return move_items(u, u->stack[start - 1], start);
}

/* Runs one pickle up to STOP; *result is the value it returns. */
static int run(unpickler *u, value **result)
{
    while (u->pos < u->size) {
        u->op_pos = u->pos;
        uint8_t op = u->buf[u->pos++];
        size_t start = 0;
        int rc = 0;
        switch (op) {
        case 0x80: /* PROTO */
            if (need(u, 1))
                return -1;
            if (u->buf[u->pos] > 5)
                return fail(u, "pickle protocol %d is not supported", u->buf[u->pos]);
            u->pos++;
            break;
        case 0x95: /* FRAME: only a hint for buffered readers */
            if (need(u, 8))
                return -1;
            u->pos += 8;
            break;
        case '.': /* STOP */
            *result = pop(u);
            return *result ? 0 : -1;
        case '(': /* MARK */
            if (grow(u, (void **)&u->marks, &u->marks_capacity, u->mark_count + 1,
                     sizeof(size_t)))
                return -1;
            u->marks[u->mark_count++] = u->depth;
            break;
        case '0': /* POP */
            rc = pop(u) ? 0 : -1;
            break;
        case '1': /* POP_MARK */
            if (!(rc = pop_mark(u, &start)))
                u->depth = start;
            break;
        case 'N': rc = push(u, new_value(u, PV_NONE)); break;
        case 0x88: /* NEWTRUE */
        case 0x89: { /* NEWFALSE */
            value *b = new_value(u, PV_BOOL);
            if (b)
                b->integer = op == 0x88;
            rc = push(u, b);
            break;
        }
        case 'J': rc = need(u, 4) ? -1 : push_int(u, (int32_t)read_le(u, 4)); break;
        case 'K': rc = need(u, 1) ? -1 : push_int(u, (int64_t)read_le(u, 1)); break;
        case 'M': rc = need(u, 2) ? -1 : push_int(u, (int64_t)read_le(u, 2)); break;
        case 0x8a: rc = need(u, 1) ? -1 : push_long(u, (size_t)read_le(u, 1)); break;
        case 'G': { /* BINFLOAT, big-endian */
            if (need(u, 8))
                return -1;
            value *f = new_value(u, PV_FLOAT);
            u->pos += 8;
            rc = push(u, f);
            break;
        }
        case 'X': rc = need(u, 4) ? -1 : push_bytes(u, PV_STRING, read_le(u, 4)); break;
        case 0x8c: /* SHORT_BINUNICODE */
        case 'U': /* SHORT_BINSTRING */
            rc = need(u, 1) ? -1 : push_bytes(u, PV_STRING, read_le(u, 1));
            break;
        case 0x8d: rc = need(u, 8) ? -1 : push_bytes(u, PV_STRING, read_le(u, 8)); break;
        case 'T': /* BINSTRING: signed 32-bit length */
            if (need(u, 4))
                return -1;
            {
                int32_t n = (int32_t)read_le(u, 4);
                rc = n < 0 ? fail(u, "negative string length") : push_bytes(u, PV_STRING, n);
            }
            break;
        case 'c': rc = op_global(u); break;
        case 0x93: rc = op_stack_global(u); break;
        case 'R': rc = op_reduce(u); break;
        case 'Q': rc = op_persistent_id(u); break;
        case 'b': rc = op_build(u); break;
        case ')': rc = push(u, new_value(u, PV_TUPLE)); break;
        case ']': rc = push(u, new_value(u, PV_LIST)); break;
        case '}': rc = push(u, new_value(u, PV_DICT)); break;
        case 0x85: rc = make_tuple(u, 1); break;
        case 0x86: rc = make_tuple(u, 2); break;
        case 0x87: rc = make_tuple(u, 3); break;
        case 't': /* TUPLE */
        case 'l': /* LIST */
        case 'd': { /* DICT */
            if (pop_mark(u, &start))
                return -1;
            value *c = new_value(u, op == 't' ? PV_TUPLE : op == 'l' ? PV_LIST : PV_DICT);
            if (!c)
                return -1;
            if (op == 'd' && (u->depth - start) % 2)
                return fail(u, "DICT with an odd number of items");
            rc = move_items(u, c, start) ? -1 : push(u, c);
            break;
        }
        case 'a': { /* APPEND */
            value *item = pop(u);
            value *list = item ? top(u) : NULL;
            if (!list)
                return -1;
            rc = list->kind != PV_LIST ? fail(u, "APPEND to a %s", kind_names[list->kind])
                                       : append_item(u, list, item);
            break;
        }
        case 'e': /* APPENDS */
            if (pop_mark(u, &start))
                return -1;
            if (start == 0 || u->stack[start - 1]->kind != PV_LIST)
                return fail(u, "APPENDS to something that is not a list");
            rc = move_items(u, u->stack[start - 1], start);
            break;
        case 's': /* SETITEM */
            if (u->depth < 3 + (u->mark_count ? u->marks[u->mark_count - 1] : 0))
                return fail(u, "stack underflow");
            rc = set_items(u, u->depth - 2);
            break;
        case 'u': /* SETITEMS */
            rc = pop_mark(u, &start) ? -1 : set_items(u, start);
            break;
        case 'q': rc = need(u, 1) ? -1 : memo_put(u, read_le(u, 1)); break;
        case 'r': rc = need(u, 4) ? -1 : memo_put(u, read_le(u, 4)); break;
        case 0x94: rc = memo_put(u, u->memo_used); break; /* MEMOIZE */
        case 'h': rc = need(u, 1) ? -1 : memo_get(u, read_le(u, 1)); break;
        case 'j': rc = need(u, 4) ? -1 : memo_get(u, read_le(u, 4)); break;
        default:
            return fail(u, "unsupported opcode 0x%02x%s%c%s", op, op >= 0x20 && op < 0x7f ? " ('" : "",
                        op >= 0x20 && op < 0x7f ? op : ' ', op >= 0x20 && op < 0x7f ? "')" : "");
        }
        if (rc)
            return -1;
    }
    u->op_pos = u->pos;
    return fail(u, "truncated: the pickle ends without a STOP opcode");
}

static void unpickler_init(unpickler *u, const uint8_t *buf, size_t size, size_t base,
                           const char *what, vdx_error *err)
{
    memset(u, 0, sizeof *u);
    u->buf = buf;
    u->size = size;
    u->base = base;
    u->what = what;
    u->err = err;
}

void pickle_state_dict_free(vdx_pickle_state_dict *sd)
{
    for (size_t i = 0; i < sd->count; i++) {
        free(sd->tensors[i].name);
        free(sd->tensors[i].storage_key);
    }
    free(sd->tensors);
    sd->tensors = NULL;
    sd->count = 0;
}

int pickle_load_state_dict(const uint8_t *buf, size_t size, size_t base, const char *what,
                               vdx_pickle_state_dict *out, size_t *consumed, vdx_error *err)
{
    memset(out, 0, sizeof *out);
    unpickler u;
    unpickler_init(&u, buf, size, base, what, err);
    value *dict = NULL;
    if (run(&u, &dict) != 0)
        goto fail;
    u.op_pos = u.pos;
    if (dict->kind != PV_DICT) {
        fail(&u, "the pickle holds a %s, not a state dict", kind_names[dict->kind]);
        goto fail;
    }
    size_t n = dict->count / 2;
    out->tensors = calloc(n ? n : 1, sizeof *out->tensors);
    if (!out->tensors) {
        fail(&u, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const value *key = dict->items[2 * i], *val = dict->items[2 * i + 1];
        if (key->kind != PV_STRING || strlen(key->bytes) != key->length) {
            fail(&u, "state dict key %zu is a %s, not a tensor name", i, kind_names[key->kind]);
            goto fail;
        }
        if (val->kind != PV_TENSOR) {
            fail(&u, "state dict entry '%s' is a %s, not a tensor", key->bytes,
                 kind_names[val->kind]);
            goto fail;
        }
        vdx_pickle_tensor *t = &out->tensors[out->count++];
        *t = val->tensor;
        t->name = strdup(key->bytes);
        t->storage_key = strdup(val->tensor.storage_key);
        if (!t->name || !t->storage_key) {
            fail(&u, "out of memory");
            goto fail;
        }
    }
    if (consumed)
        *consumed = u.pos;
    unpickler_free(&u);
    return 0;
fail:
    pickle_state_dict_free(out);
    unpickler_free(&u);
    return -1;
}

/* 0x1950a86a20f9469cfc6c, the number torch writes first in its legacy format. */
static const uint8_t legacy_magic_le[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                          0x20, 0x6a, 0xa8, 0x50, 0x19};

int pickle_check_legacy_preamble(const uint8_t *buf, size_t size, const char *what,
                                     size_t *consumed, vdx_error *err)
{
    size_t pos = 0;
    for (int part = 0; part < 3; part++) {
        unpickler u;
        unpickler_init(&u, buf + pos, size - pos, pos, what, err);
        value *v = NULL;
        int rc = run(&u, &v);
        u.op_pos = 0;
        if (rc == 0 && part == 0 &&
            !(v->kind == PV_BIGINT && v->length == sizeof legacy_magic_le &&
              memcmp(v->bytes, legacy_magic_le, sizeof legacy_magic_le) == 0))
            rc = fail(&u, "not torch's legacy magic number");
        if (rc == 0 && part == 1 && !(v->kind == PV_INT && v->integer == 1001))
            rc = fail(&u, "unknown legacy protocol version (expected 1001)");
        if (rc == 0 && part == 2) {
            int little = -1;
            if (v->kind == PV_DICT)
                for (size_t i = 0; i + 1 < v->count; i += 2)
                    if (v->items[i]->kind == PV_STRING &&
                        strcmp(v->items[i]->bytes, "little_endian") == 0 &&
                        v->items[i + 1]->kind == PV_BOOL)
                        little = (int)v->items[i + 1]->integer;
            if (little != 1)
                rc = fail(&u, little == 0 ? "big-endian checkpoint (not supported)"
                                          : "system info has no little_endian flag");
        }
        pos += u.pos;
        unpickler_free(&u);
        if (rc)
            return -1;
    }
    *consumed = pos;
    return 0;
}

int pickle_load_string_list(const uint8_t *buf, size_t size, size_t base, const char *what,
                                char ***items, size_t *count, size_t *consumed,
                                vdx_error *err)
{
    *items = NULL;
    *count = 0;
    unpickler u;
    unpickler_init(&u, buf, size, base, what, err);
    value *list = NULL;
    if (run(&u, &list) != 0)
        goto fail;
    if (list->kind != PV_LIST) {
        fail(&u, "expected a list of storage keys, found a %s", kind_names[list->kind]);
        goto fail;
    }
    *items = calloc(list->count ? list->count : 1, sizeof **items);
    if (!*items) {
        fail(&u, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < list->count; i++) {
        if (list->items[i]->kind != PV_STRING) {
            fail(&u, "storage key %zu is a %s, not a string", i, kind_names[list->items[i]->kind]);
            goto fail;
        }
        (*items)[i] = strdup(list->items[i]->bytes);
        if (!(*items)[i]) {
            fail(&u, "out of memory");
            goto fail;
        }
        (*count)++;
    }
    *consumed = u.pos;
    unpickler_free(&u);
    return 0;
fail:
    for (size_t i = 0; i < *count; i++)
        free((*items)[i]);
    free(*items);
    *items = NULL;
    *count = 0;
    unpickler_free(&u);
    return -1;
}

int pickle_backing_add(vdx_pickle_backing *b, void *buffer, vdx_error *err)
{
    if (reserve((void **)&b->buffers, &b->buffer_capacity, b->buffer_count + 1,
                sizeof(void *))) {
        free(buffer);
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "out of memory");
    }
    b->buffers[b->buffer_count++] = buffer;
    return 0;
}

void pickle_backing_free(vdx_pickle_backing *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->buffer_count; i++)
        free(b->buffers[i]);
    free(b->buffers);
    if (b->map)
        munmap(b->map, b->map_size);
    free(b);
}

static void release_backing(vdx_weights *w)
{
    pickle_backing_free(w->backing);
    w->backing = NULL;
}

/* Makes a vdx_tensor of a pickled one: in place when row-major, else a gathered copy
 * (added to the backing). The tensor's last element must lie inside its storage. */
static int materialize(const vdx_pickle_tensor *pt, const vdx_pickle_storage *storage,
                       const char *what, vdx_tensor *out, vdx_pickle_backing *backing,
                       vdx_error *err)
{
    memset(out, 0, sizeof *out);
    size_t elem = dtype_size(pt->dtype);
    uint64_t numel = 1, last = (uint64_t)pt->storage_offset, expected_stride = 1;
    int contiguous = 1;
    for (int d = pt->ndim - 1; d >= 0; d--) {
        uint64_t n = (uint64_t)pt->shape[d], reach;
        if (__builtin_mul_overflow(numel, n, &numel))
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s': shape overflows", what, pt->name);
        if (n > 1 && (uint64_t)pt->stride[d] != expected_stride)
            contiguous = 0;
        if (n > 0 && (__builtin_mul_overflow(n - 1, (uint64_t)pt->stride[d], &reach) ||
                      __builtin_add_overflow(last, reach, &last)))
            return vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s': strides overflow", what, pt->name);
        if (n > 1)
            expected_stride *= n;
    }
    uint64_t available = storage->size / elem;
    if ((uint64_t)pt->storage_numel < available)
        available = (uint64_t)pt->storage_numel;
    if (numel > 0 && last >= available)
        return vdx_fail_kind(err, VDX_ERR_CORRUPT,
                        "%s: tensor '%s' reaches element %llu of storage '%s', which holds %llu",
                        what, pt->name, (unsigned long long)last, pt->storage_key,
                        (unsigned long long)available);
    out->name = strdup(pt->name);
    if (!out->name)
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", what);
    out->dtype = pt->dtype;
    out->ndim = pt->ndim;
    memcpy(out->shape, pt->shape, sizeof out->shape);
    out->nbytes = (size_t)numel * elem;
    if (numel == 0 || contiguous) {
        out->data = storage->data + (numel ? (size_t)pt->storage_offset * elem : 0);
        return 0;
    }
    uint8_t *gathered = malloc(out->nbytes);
    if (!gathered || pickle_backing_add(backing, gathered, err)) {
        free(out->name);
        out->name = NULL;
        return vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory for tensor '%s'", what, pt->name);
    }
    int64_t index[VDX_TENSOR_MAX_DIMS] = {0};
    for (uint64_t i = 0; i < numel; i++) {
        uint64_t at = (uint64_t)pt->storage_offset;
        for (int d = 0; d < pt->ndim; d++)
            at += (uint64_t)index[d] * (uint64_t)pt->stride[d];
        memcpy(gathered + i * elem, storage->data + at * elem, elem);
        for (int d = pt->ndim - 1; d >= 0 && ++index[d] == pt->shape[d]; d--)
            index[d] = 0;
    }
    out->data = gathered;
    return 0;
}

vdx_weights *pickle_weights_new(const char *path, const vdx_pickle_state_dict *sd,
                                    const vdx_pickle_storage *storages, size_t storage_count,
                                    vdx_pickle_backing *backing, vdx_error *err)
{
    vdx_tensor *tensors = calloc(sd->count ? sd->count : 1, sizeof *tensors);
    size_t built = 0;
    if (!tensors) {
        vdx_fail_kind(err, VDX_ERR_NO_MEMORY, "%s: out of memory", path);
        goto fail;
    }
    for (; built < sd->count; built++) {
        const vdx_pickle_tensor *pt = &sd->tensors[built];
        const vdx_pickle_storage *storage = NULL;
        for (size_t s = 0; s < storage_count && !storage; s++)
            if (strcmp(storages[s].key, pt->storage_key) == 0)
                storage = &storages[s];
        if (!storage) {
            vdx_fail_kind(err, VDX_ERR_CORRUPT, "%s: tensor '%s' uses storage '%s', which the file does not hold",
                     path, pt->name, pt->storage_key);
            goto fail;
        }
        if (materialize(pt, storage, path, &tensors[built], backing, err))
            goto fail;
    }
    return weights_new(path, tensors, sd->count, backing, release_backing, err);
fail:
    for (size_t i = 0; i < built; i++)
        free(tensors[i].name);
    free(tensors);
    pickle_backing_free(backing);
    return NULL;
}
