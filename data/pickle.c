/* pickle: the allowlist interpreter for torch.save's pickles (see pickle.h). Every value lives in one arena; a
 * refused global, an opcode outside the list or a malformed tensor stops the load with one line. */
#define _DEFAULT_SOURCE
#include "pickle.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- dtypes */

static const struct {
    const char *storage, *name;
    size_t size;
} DTYPES[PN_TD_COUNT] = {
    [PN_TD_F32] = {"FloatStorage", "float32", 4}, [PN_TD_F64] = {"DoubleStorage", "float64", 8},
    [PN_TD_F16] = {"HalfStorage", "float16", 2},  [PN_TD_BF16] = {"BFloat16Storage", "bfloat16", 2},
    [PN_TD_I64] = {"LongStorage", "int64", 8},    [PN_TD_I32] = {"IntStorage", "int32", 4},
    [PN_TD_I16] = {"ShortStorage", "int16", 2},   [PN_TD_I8] = {"CharStorage", "int8", 1},
    [PN_TD_U8] = {"ByteStorage", "uint8", 1},     [PN_TD_BOOL] = {"BoolStorage", "bool", 1},
};

size_t pn_torch_dtype_size(pn_torch_dtype t) { return t < PN_TD_COUNT ? DTYPES[t].size : 0; }
const char *pn_torch_dtype_name(pn_torch_dtype t) { return t < PN_TD_COUNT ? DTYPES[t].name : "?"; }
bool pn_torch_dtype_is_float(pn_torch_dtype t) {
    return t == PN_TD_F32 || t == PN_TD_F64 || t == PN_TD_F16 || t == PN_TD_BF16;
}

/* ---------------------------------------------------------------- the allowlist */

enum {
    G_ODICT,
    G_REBUILD_TENSOR,
    G_REBUILD_TENSOR_V2,
    G_REBUILD_PARAM,
    G_REBUILD_PARAM_STATE,
    G_CODECS_ENCODE,
    G_NP_SCALAR,
    G_NP_DTYPE,
    G_STORAGE, /* G_STORAGE + dtype */
};

static const struct {
    const char *module, *name;
    int id;
} ALLOWED[] = {
    {"collections", "OrderedDict", G_ODICT},
    {"torch._utils", "_rebuild_tensor", G_REBUILD_TENSOR},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAM},
    {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAM_STATE},
    {"_codecs", "encode", G_CODECS_ENCODE}, /* how protocol 2 pickles Python 3 bytes */
    {"numpy.core.multiarray", "scalar", G_NP_SCALAR},
    {"numpy._core.multiarray", "scalar", G_NP_SCALAR},
    {"numpy", "dtype", G_NP_DTYPE},
};

static int allowed_global(const char *module, const char *name) {
    for (size_t i = 0; i < sizeof ALLOWED / sizeof ALLOWED[0]; i++)
        if (!strcmp(module, ALLOWED[i].module) && !strcmp(name, ALLOWED[i].name)) return ALLOWED[i].id;
    if (!strcmp(module, "torch"))
        for (int t = 0; t < PN_TD_COUNT; t++)
            if (!strcmp(name, DTYPES[t].storage)) return G_STORAGE + t;
    return -1;
}

/* ---------------------------------------------------------------- the machine */

struct pn_pickle {
    pn_pk_value **all; /* every value made, for pn_pk_free */
    size_t n_all, cap_all;
    int visit_gen;
};

/* What interpreting one pickle may take, values, strings, containers, stack and memo together. A model's state_dict
 * takes little (measured: se_resnext101's Unet, 818 tensors, 17,225 values, 1.6 MB; with Adam's two moments per
 * parameter about three times that); a pickle a few MB long can otherwise ask for far more (every byte a value, a
 * memoized string or list copied by each REDUCE), so the budget is fixed, not a multiple of its length, and leaves
 * room for ASan's overhead under the 100 MB the hostile-file tests allow. */
#define PK_MAX_BYTES ((size_t)16 << 20)
#define PK_MALLOC_OVERHEAD 16 /* per allocation, what the allocator adds */

typedef struct machine {
    pn_pickle *p;
    const uint8_t *data;
    size_t len, pos, op_pos;
    const char *what;
    pn_pk_value **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t n_marks, marks_cap;
    pn_pk_value **memo;
    size_t memo_cap, memo_count;
    size_t bytes;     /* charged against PK_MAX_BYTES */
    bool over_budget; /* a charge failed: the NOMEM that follows says so */
} machine;

static pn_pk_value MARK_VALUE = {.kind = PN_PK_MARK};

static const char *kind_name(pn_pk_kind k) {
    static const char *names[] = {"None", "bool", "int",    "long",    "float",  "str",         "bytes", "tuple",
                                  "list", "dict", "global", "storage", "tensor", "numpy dtype", "mark"};
    return k <= PN_PK_MARK ? names[k] : "?";
}

static pn_status fail(machine *m, pn_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static pn_status fail(machine *m, pn_status st, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pn_error(st, "%s: %s (pickle byte %zu)", m->what, msg, m->op_pos);
}

/* Charges `n` bytes against the budget before they are allocated; false (and over_budget) past it. */
static bool charge(machine *m, size_t n) {
    if (n > PK_MAX_BYTES - m->bytes) {
        m->over_budget = true;
        return false;
    }
    m->bytes += n;
    return true;
}

/* Grows *arr (of *cap elements of `size` bytes) to hold `need`. */
static bool grow(machine *m, void **arr, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return true;
    size_t n = *cap ? *cap : 4; /* most containers are short tuples */
    while (n < need) n *= 2;
    if (n > PK_MAX_BYTES / size || !charge(m, (n - *cap) * size)) {
        m->over_budget = true;
        return false;
    }
    void *a = realloc(*arr, n * size);
    if (!a) return false;
    *arr = a;
    *cap = n;
    return true;
}

static pn_pk_value *new_value(machine *m, pn_pk_kind kind) {
    pn_pickle *p = m->p;
    if (!grow(m, (void **)&p->all, &p->cap_all, p->n_all + 1, sizeof *p->all)) return NULL;
    if (!charge(m, sizeof(pn_pk_value) + PK_MALLOC_OVERHEAD)) return NULL;
    pn_pk_value *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
    p->all[p->n_all++] = v;
    return v;
}

static void free_value(pn_pk_value *v) {
    switch (v->kind) {
    case PN_PK_STR:
    case PN_PK_BYTES:
    case PN_PK_BIGINT: free(v->u.str.s); break;
    case PN_PK_TUPLE:
    case PN_PK_LIST:
    case PN_PK_DICT: free(v->u.seq.items); break;
    case PN_PK_STORAGE:
        if (v->u.storage) free(v->u.storage->key);
        free(v->u.storage);
        break;
    case PN_PK_TENSOR: free(v->u.tensor); break;
    default: break;
    }
    free(v);
}

void pn_pk_free(pn_pickle *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_all; i++) free_value(p->all[i]);
    free(p->all);
    free(p);
}

static pn_status nomem(machine *m) {
    if (m->over_budget)
        return fail(m, PN_ERR_FORMAT,
                    "interpreting the pickle would take more than %zu MB (a file built to exhaust "
                    "memory?)",
                    PK_MAX_BYTES >> 20);
    return fail(m, PN_ERR_NOMEM, "out of memory");
}
#define NOMEM(m) nomem(m)

static pn_status push(machine *m, pn_pk_value *v) {
    if (!v) return NOMEM(m);
    if (!grow(m, (void **)&m->stack, &m->stack_cap, m->sp + 1, sizeof *m->stack)) return NOMEM(m);
    m->stack[m->sp++] = v;
    return PN_OK;
}

/* The top of the stack above the last mark must hold at least `n` values. */
static pn_status need(machine *m, size_t n, const char *op) {
    size_t floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
    if (m->sp < floor + n) return fail(m, PN_ERR_FORMAT, "%s needs %zu value(s) on the stack", op, n);
    return PN_OK;
}

static pn_pk_value *pop(machine *m) { return m->stack[--m->sp]; }

/* Pops the values above the last mark (and the mark): *first indexes them in m->stack, *n counts them. */
static pn_status pop_mark(machine *m, const char *op, size_t *first, size_t *n) {
    if (!m->n_marks) return fail(m, PN_ERR_FORMAT, "%s without a MARK", op);
    size_t at = m->marks[--m->n_marks];
    *first = at;
    *n = m->sp - at;
    m->sp = at - 1; /* drop the mark itself (callers read m->stack[first..first+n) before pushing) */
    return PN_OK;
}

static pn_status seq_add(machine *m, pn_pk_value *seq, pn_pk_value *item) {
    if (!grow(m, (void **)&seq->u.seq.items, &seq->u.seq.cap, seq->u.seq.n + 1, sizeof *seq->u.seq.items))
        return NOMEM(m);
    seq->u.seq.items[seq->u.seq.n++] = item;
    return PN_OK;
}

static pn_status dict_set(machine *m, pn_pk_value *d, pn_pk_value *k, pn_pk_value *v) {
    if (d->kind != PN_PK_DICT) return fail(m, PN_ERR_FORMAT, "SETITEM on a %s, not a dict", kind_name(d->kind));
    /* a repeated key is kept twice here; the checkpoint reader refuses duplicate tensor names */
    if (!grow(m, (void **)&d->u.seq.items, &d->u.seq.cap, 2 * d->u.seq.n + 2, sizeof *d->u.seq.items)) return NOMEM(m);
    d->u.seq.items[2 * d->u.seq.n] = k;
    d->u.seq.items[2 * d->u.seq.n + 1] = v;
    d->u.seq.n++;
    return PN_OK;
}

/* ---------------------------------------------------------------- reading the byte stream */

static pn_status take(machine *m, size_t n, const uint8_t **out) {
    if (n > m->len - m->pos)
        return fail(m, PN_ERR_FORMAT, "truncated: %zu more byte(s) needed, %zu left", n, m->len - m->pos);
    *out = m->data + m->pos;
    m->pos += n;
    return PN_OK;
}

static uint64_t le(const uint8_t *b, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static pn_status take_le(machine *m, int n, uint64_t *v) {
    const uint8_t *b = NULL;
    PN_TRY(take(m, (size_t)n, &b));
    *v = le(b, n);
    return PN_OK;
}

static pn_status push_string(machine *m, pn_pk_kind kind, uint64_t n) {
    const uint8_t *b = NULL;
    if (n > m->len - m->pos)
        return fail(m, PN_ERR_FORMAT, "truncated: a %llu-byte string, %zu bytes left", (unsigned long long)n,
                    m->len - m->pos);
    PN_TRY(take(m, (size_t)n, &b));
    pn_pk_value *v = new_value(m, kind);
    if (!v || !charge(m, (size_t)n + 1 + PK_MALLOC_OVERHEAD)) return NOMEM(m);
    v->u.str.s = malloc((size_t)n + 1);
    if (!v->u.str.s) return NOMEM(m);
    memcpy(v->u.str.s, b, (size_t)n);
    v->u.str.s[n] = 0;
    v->u.str.len = (size_t)n;
    return push(m, v);
}

static pn_status push_int(machine *m, int64_t i) {
    pn_pk_value *v = new_value(m, PN_PK_INT);
    if (v) v->u.i = i;
    return push(m, v);
}

/* LONG1/LONG4: little-endian two's complement of n bytes. */
static pn_status push_long(machine *m, uint64_t n) {
    const uint8_t *b = NULL;
    if (n > m->len - m->pos)
        return fail(m, PN_ERR_FORMAT, "truncated: a %llu-byte long, %zu bytes left", (unsigned long long)n,
                    m->len - m->pos);
    PN_TRY(take(m, (size_t)n, &b));
    if (n <= 8) {
        uint64_t u = n ? le(b, (int)n) : 0;
        if (n && n < 8 && (b[n - 1] & 0x80)) u |= ~0ull << (8 * n); /* sign-extend */
        int64_t i;
        memcpy(&i, &u, sizeof i);
        return push_int(m, i);
    }
    pn_pk_value *v = new_value(m, PN_PK_BIGINT);
    if (!v || !charge(m, (size_t)n + PK_MALLOC_OVERHEAD) || !(v->u.str.s = malloc((size_t)n))) return NOMEM(m);
    memcpy(v->u.str.s, b, (size_t)n);
    v->u.str.len = (size_t)n;
    return push(m, v);
}

/* ---------------------------------------------------------------- memo */

static pn_status memo_put(machine *m, uint64_t idx) {
    if (m->sp == 0 || m->stack[m->sp - 1] == &MARK_VALUE) return fail(m, PN_ERR_FORMAT, "PUT with an empty stack");
    /* Python numbers memo entries from 0 up, one per PUT; an index beyond the pickle's length is hostile */
    if (idx >= m->len) return fail(m, PN_ERR_FORMAT, "memo index %llu out of range", (unsigned long long)idx);
    size_t old = m->memo_cap;
    if (!grow(m, (void **)&m->memo, &m->memo_cap, (size_t)idx + 1, sizeof *m->memo)) return NOMEM(m);
    if (m->memo_cap > old) memset(m->memo + old, 0, (m->memo_cap - old) * sizeof *m->memo);
    if (!m->memo[idx]) m->memo_count++;
    m->memo[idx] = m->stack[m->sp - 1];
    return PN_OK;
}

static pn_status memo_get(machine *m, uint64_t idx) {
    if (idx >= m->memo_cap || !m->memo[idx])
        return fail(m, PN_ERR_FORMAT, "memo key %llu was never stored", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

/* ---------------------------------------------------------------- globals and REDUCE */

static pn_status op_global(machine *m, const char *module, const char *name) {
    int id = allowed_global(module, name);
    if (id < 0) {
        const char *hint = "";
        if (!strncmp(module, "torch.nn", 8) || !strcmp(module, "__main__"))
            hint = "; the file pickles a whole model object, not a state_dict: save model.state_dict() instead";
        return fail(m, PN_ERR_UNSUPPORTED, "refused global '%s.%s': only tensors, storages and containers are read%s",
                    module, name, hint);
    }
    pn_pk_value *v = new_value(m, PN_PK_GLOBAL);
    if (v) v->u.global = id;
    return push(m, v);
}

/* GLOBAL: "module\nname\n". */
static pn_status read_line(machine *m, char *buf, size_t cap) {
    size_t i = 0;
    for (;;) {
        if (m->pos >= m->len) return fail(m, PN_ERR_FORMAT, "truncated GLOBAL");
        char c = (char)m->data[m->pos++];
        if (c == '\n') break;
        if (i + 1 >= cap) return fail(m, PN_ERR_FORMAT, "GLOBAL name longer than %zu bytes", cap - 1);
        if ((unsigned char)c < 0x20) return fail(m, PN_ERR_FORMAT, "control byte in a GLOBAL name");
        buf[i++] = c;
    }
    buf[i] = 0;
    return PN_OK;
}

static bool is_int(const pn_pk_value *v) { return v->kind == PN_PK_INT; }

static pn_status int_tuple(machine *m, const pn_pk_value *t, const char *what, int64_t *out, int *n) {
    if (t->kind != PN_PK_TUPLE && t->kind != PN_PK_LIST)
        return fail(m, PN_ERR_FORMAT, "tensor %s is a %s, not a tuple", what, kind_name(t->kind));
    if (t->u.seq.n > PN_PK_MAX_DIMS)
        return fail(m, PN_ERR_UNSUPPORTED, "tensor with %zu dimensions (at most %d)", t->u.seq.n, PN_PK_MAX_DIMS);
    for (size_t i = 0; i < t->u.seq.n; i++) {
        if (!is_int(t->u.seq.items[i]))
            return fail(m, PN_ERR_FORMAT, "tensor %s holds a %s", what, kind_name(t->u.seq.items[i]->kind));
        out[i] = t->u.seq.items[i]->u.i;
    }
    *n = (int)t->u.seq.n;
    return PN_OK;
}

int64_t pn_pk_tensor_numel(const pn_pk_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->size[i];
    return n;
}

/* A tensor of `size` with `stride` from `offset` must lie inside its storage; sizes >= 0, no overflow. */
static pn_status check_view(machine *m, const pn_pk_tensor *t, const pn_pk_storage *s) {
    if (t->offset < 0)
        return fail(m, PN_ERR_FORMAT, "tensor with a negative storage offset %lld", (long long)t->offset);
    uint64_t numel = 1, last = (uint64_t)t->offset;
    const uint64_t LIMIT = (uint64_t)1 << 62;
    for (int i = 0; i < t->ndim; i++) {
        if (t->size[i] < 0 || t->stride[i] < 0)
            return fail(m, PN_ERR_FORMAT, "tensor with a negative size or stride (dim %d: size %lld, stride %lld)", i,
                        (long long)t->size[i], (long long)t->stride[i]);
        if ((uint64_t)t->size[i] > LIMIT || (uint64_t)t->stride[i] > LIMIT)
            return fail(m, PN_ERR_FORMAT, "tensor with an absurd size or stride (dim %d: size %lld, stride %lld)", i,
                        (long long)t->size[i], (long long)t->stride[i]);
        if (t->size[i] && numel > LIMIT / (uint64_t)t->size[i])
            return fail(m, PN_ERR_FORMAT, "tensor shape overflows (dim %d: size %lld)", i, (long long)t->size[i]);
        numel *= (uint64_t)t->size[i];
    }
    if (numel == 0) {
        if ((uint64_t)t->offset > (uint64_t)s->numel)
            return fail(m, PN_ERR_FORMAT, "tensor offset %lld is past the end of storage '%s' (%lld elements)",
                        (long long)t->offset, s->key, (long long)s->numel);
        return PN_OK;
    }
    for (int i = 0; i < t->ndim; i++) {
        if (t->size[i] <= 1) continue;
        uint64_t steps = (uint64_t)(t->size[i] - 1), stride = (uint64_t)t->stride[i];
        if (stride && steps > LIMIT / stride) return fail(m, PN_ERR_FORMAT, "tensor extent overflows (dim %d)", i);
        if (last > LIMIT - steps * stride) return fail(m, PN_ERR_FORMAT, "tensor extent overflows (dim %d)", i);
        last += steps * stride;
    }
    if (last >= (uint64_t)s->numel)
        return fail(m, PN_ERR_FORMAT,
                    "tensor needs element %llu of storage '%s', which holds %lld (view past the end of its storage)",
                    (unsigned long long)last, s->key, (long long)s->numel);
    return PN_OK;
}

static pn_status rebuild_tensor(machine *m, pn_pk_value **args, size_t nargs, pn_pk_value **out) {
    if (nargs < 4) return fail(m, PN_ERR_FORMAT, "_rebuild_tensor with %zu arguments", nargs);
    if (args[0]->kind != PN_PK_STORAGE)
        return fail(m, PN_ERR_FORMAT, "_rebuild_tensor of a %s, not a storage", kind_name(args[0]->kind));
    if (!is_int(args[1]))
        return fail(m, PN_ERR_FORMAT, "_rebuild_tensor: the storage offset is a %s", kind_name(args[1]->kind));
    pn_pk_tensor t;
    memset(&t, 0, sizeof t);
    int nd_stride;
    PN_TRY(int_tuple(m, args[2], "size", t.size, &t.ndim));
    PN_TRY(int_tuple(m, args[3], "stride", t.stride, &nd_stride));
    if (nd_stride != t.ndim) return fail(m, PN_ERR_FORMAT, "tensor with %d sizes but %d strides", t.ndim, nd_stride);
    t.offset = args[1]->u.i;
    t.storage = args[0];
    t.dtype = args[0]->u.storage->dtype;
    PN_TRY(check_view(m, &t, args[0]->u.storage));
    pn_pk_value *v = new_value(m, PN_PK_TENSOR);
    if (!v || !charge(m, sizeof t + PK_MALLOC_OVERHEAD) || !(v->u.tensor = malloc(sizeof t))) return NOMEM(m);
    *v->u.tensor = t;
    *out = v;
    return PN_OK;
}

/* UTF-8 text whose code points are all < 256 into latin-1 bytes (how protocol 2 carries Python 3 bytes). */
static pn_status latin1_bytes(machine *m, const pn_pk_value *s, pn_pk_value **out) {
    pn_pk_value *v = new_value(m, PN_PK_BYTES);
    if (!v || !charge(m, s->u.str.len + 1 + PK_MALLOC_OVERHEAD) || !(v->u.str.s = malloc(s->u.str.len + 1)))
        return NOMEM(m);
    size_t n = 0;
    for (size_t i = 0; i < s->u.str.len; i++) {
        unsigned char c = (unsigned char)s->u.str.s[i];
        if (c < 0x80)
            v->u.str.s[n++] = (char)c;
        else if ((c == 0xc2 || c == 0xc3) && i + 1 < s->u.str.len && ((unsigned char)s->u.str.s[i + 1] & 0xc0) == 0x80)
            v->u.str.s[n++] = (char)(((c & 0x03) << 6) | ((unsigned char)s->u.str.s[++i] & 0x3f));
        else
            return fail(m, PN_ERR_FORMAT, "_codecs.encode of text that is not latin-1");
    }
    v->u.str.s[n] = 0;
    v->u.str.len = n;
    *out = v;
    return PN_OK;
}

/* numpy.dtype('f8', False, True): the kinds a checkpoint's numbers use. */
static pn_status np_dtype(machine *m, pn_pk_value **args, size_t nargs, pn_pk_value **out) {
    if (nargs < 1 || args[0]->kind != PN_PK_STR) return fail(m, PN_ERR_FORMAT, "numpy.dtype without a type string");
    const char *s = args[0]->u.str.s;
    char kind = s[0];
    int size = atoi(s + 1);
    if (!strchr("fiub", kind) || !(size == 1 || size == 2 || size == 4 || size == 8) || (kind == 'f' && size < 2))
        return fail(m, PN_ERR_UNSUPPORTED, "numpy.dtype('%.20s') is not a number type this reader knows", s);
    pn_pk_value *v = new_value(m, PN_PK_NPDTYPE);
    if (!v) return NOMEM(m);
    v->u.npdtype.kind = kind;
    v->u.npdtype.size = size;
    *out = v;
    return PN_OK;
}

static double half_to_double(uint16_t h) {
    int e = (h >> 10) & 31, f = h & 1023;
    double v = e == 0 ? ldexp(f, -24) : e == 31 ? (f ? NAN : INFINITY) : ldexp(f + 1024, e - 25);
    return h & 0x8000 ? -v : v;
}

/* numpy.core.multiarray.scalar(dtype, bytes) -> an int or a float. */
static pn_status np_scalar(machine *m, pn_pk_value **args, size_t nargs, pn_pk_value **out) {
    if (nargs < 2 || args[0]->kind != PN_PK_NPDTYPE || (args[1]->kind != PN_PK_BYTES && args[1]->kind != PN_PK_STR))
        return fail(m, PN_ERR_FORMAT, "numpy scalar without a dtype and its bytes");
    int size = args[0]->u.npdtype.size;
    if ((int)args[1]->u.str.len != size)
        return fail(m, PN_ERR_FORMAT, "numpy scalar of %zu bytes for a %d-byte dtype", args[1]->u.str.len, size);
    uint8_t b[8] = {0};
    for (int i = 0; i < size; i++) b[i] = (uint8_t)args[1]->u.str.s[args[0]->u.npdtype.big ? size - 1 - i : i];
    uint64_t u = le(b, size);
    char kind = args[0]->u.npdtype.kind;
    pn_pk_value *v = new_value(m, kind == 'f' ? PN_PK_FLOAT : PN_PK_INT);
    if (!v) return NOMEM(m);
    if (kind == 'f') {
        if (size == 8)
            memcpy(&v->u.f, &u, 8);
        else if (size == 4) {
            uint32_t w = (uint32_t)u;
            float f;
            memcpy(&f, &w, 4);
            v->u.f = f;
        } else
            v->u.f = half_to_double((uint16_t)u);
    } else if (kind == 'i' && size < 8 && (u >> (8 * size - 1)) & 1) {
        v->u.i = (int64_t)(u | (~0ull << (8 * size)));
    } else {
        v->u.i = (int64_t)u;
    }
    *out = v;
    return PN_OK;
}

static pn_status op_reduce(machine *m) {
    PN_TRY(need(m, 2, "REDUCE"));
    pn_pk_value *args = pop(m), *fn = pop(m), *out = NULL;
    if (fn->kind != PN_PK_GLOBAL) return fail(m, PN_ERR_FORMAT, "REDUCE of a %s, not a global", kind_name(fn->kind));
    if (args->kind != PN_PK_TUPLE)
        return fail(m, PN_ERR_FORMAT, "REDUCE with %s arguments, not a tuple", kind_name(args->kind));
    pn_pk_value **a = args->u.seq.items;
    size_t n = args->u.seq.n;
    switch (fn->u.global) {
    case G_ODICT:
        out = new_value(m, PN_PK_DICT);
        if (!out) return NOMEM(m);
        if (n == 1 && (a[0]->kind == PN_PK_LIST || a[0]->kind == PN_PK_TUPLE)) {
            for (size_t i = 0; i < a[0]->u.seq.n; i++) {
                pn_pk_value *kv = a[0]->u.seq.items[i];
                /* pairs are tuples; Python 2's OrderedDict.__reduce__ gives two-item lists */
                if ((kv->kind != PN_PK_TUPLE && kv->kind != PN_PK_LIST) || kv->u.seq.n != 2)
                    return fail(m, PN_ERR_FORMAT, "OrderedDict of non-pairs");
                PN_TRY(dict_set(m, out, kv->u.seq.items[0], kv->u.seq.items[1]));
            }
        } else if (n != 0) {
            return fail(m, PN_ERR_FORMAT, "OrderedDict with %zu arguments", n);
        }
        break;
    case G_REBUILD_TENSOR:
    case G_REBUILD_TENSOR_V2: PN_TRY(rebuild_tensor(m, a, n, &out)); break;
    case G_REBUILD_PARAM:
    case G_REBUILD_PARAM_STATE:
        if (n < 1 || a[0]->kind != PN_PK_TENSOR) return fail(m, PN_ERR_FORMAT, "_rebuild_parameter of a non-tensor");
        out = a[0];
        break;
    case G_CODECS_ENCODE:
        if (n < 1 || a[0]->kind != PN_PK_STR ||
            (n > 1 &&
             (a[1]->kind != PN_PK_STR || (strcmp(a[1]->u.str.s, "latin1") && strcmp(a[1]->u.str.s, "latin-1")))))
            return fail(m, PN_ERR_UNSUPPORTED, "_codecs.encode other than (text, 'latin1')");
        PN_TRY(latin1_bytes(m, a[0], &out));
        break;
    case G_NP_DTYPE: PN_TRY(np_dtype(m, a, n, &out)); break;
    case G_NP_SCALAR: PN_TRY(np_scalar(m, a, n, &out)); break;
    default:
        return fail(m, PN_ERR_FORMAT, "REDUCE of torch.%s (a storage class is not called)",
                    DTYPES[fn->u.global - G_STORAGE].storage);
    }
    return push(m, out);
}

/* BUILD: an OrderedDict's attributes (a state_dict's _metadata), a numpy dtype's byte order; nothing else. */
static pn_status op_build(machine *m) {
    PN_TRY(need(m, 2, "BUILD"));
    pn_pk_value *state = pop(m), *obj = m->stack[m->sp - 1];
    if (obj->kind == PN_PK_DICT) {
        if (state->kind == PN_PK_DICT || state->kind == PN_PK_NONE) return PN_OK; /* attributes: not needed */
        if (state->kind == PN_PK_TUPLE && state->u.seq.n == 2) return PN_OK;      /* (dict state, slot state) */
        return fail(m, PN_ERR_FORMAT, "BUILD of a dict with a %s state", kind_name(state->kind));
    }
    if (obj->kind == PN_PK_TENSOR) return PN_OK; /* a parameter's extra state */
    if (obj->kind == PN_PK_NPDTYPE) {
        if (state->kind != PN_PK_TUPLE || state->u.seq.n < 2 || state->u.seq.items[1]->kind != PN_PK_STR)
            return fail(m, PN_ERR_FORMAT, "numpy dtype with an unexpected state");
        obj->u.npdtype.big = state->u.seq.items[1]->u.str.s[0] == '>';
        return PN_OK;
    }
    return fail(m, PN_ERR_UNSUPPORTED, "BUILD of a %s", kind_name(obj->kind));
}

/* BINPERSID: ('storage', torch.XStorage, key, location, numel[, view_metadata]). */
static pn_status op_persid(machine *m) {
    PN_TRY(need(m, 1, "BINPERSID"));
    pn_pk_value *pid = pop(m);
    if (pid->kind != PN_PK_TUPLE || pid->u.seq.n < 5 || pid->u.seq.n > 6)
        return fail(m, PN_ERR_FORMAT, "persistent id is not a storage tuple");
    pn_pk_value **a = pid->u.seq.items;
    if (a[0]->kind != PN_PK_STR || strcmp(a[0]->u.str.s, "storage"))
        return fail(m, PN_ERR_UNSUPPORTED, "persistent id of kind '%s' (only storages are read)",
                    a[0]->kind == PN_PK_STR ? a[0]->u.str.s : kind_name(a[0]->kind));
    if (a[1]->kind != PN_PK_GLOBAL || a[1]->u.global < G_STORAGE)
        return fail(m, PN_ERR_FORMAT, "storage without a storage type");
    if (a[2]->kind != PN_PK_STR || a[2]->u.str.len == 0 || a[2]->u.str.len > 64 || strchr(a[2]->u.str.s, '/') ||
        strstr(a[2]->u.str.s, ".."))
        return fail(m, PN_ERR_FORMAT, "storage with a malformed key");
    if (!is_int(a[4]) || a[4]->u.i < 0)
        return fail(m, PN_ERR_FORMAT, "storage '%s' with a negative or non-integer size", a[2]->u.str.s);
    pn_pk_value *v = new_value(m, PN_PK_STORAGE);
    pn_pk_storage *s =
        v && charge(m, sizeof *s + a[2]->u.str.len + 1 + 2 * PK_MALLOC_OVERHEAD) ? calloc(1, sizeof *s) : NULL;
    if (!s || !v) {
        free(s);
        return NOMEM(m);
    }
    v->u.storage = s;
    if (!(s->key = pn_strdup(a[2]->u.str.s))) return NOMEM(m);
    s->dtype = (pn_torch_dtype)(a[1]->u.global - G_STORAGE);
    s->numel = s->root_numel = a[4]->u.i;
    if (pid->u.seq.n == 6 && a[5]->kind != PN_PK_NONE) { /* legacy storage view: (view_key, offset, size) */
        pn_pk_value *vm = a[5];
        if (vm->kind != PN_PK_TUPLE || vm->u.seq.n != 3 || !is_int(vm->u.seq.items[1]) || !is_int(vm->u.seq.items[2]))
            return fail(m, PN_ERR_FORMAT, "storage '%s' with a malformed view", s->key);
        int64_t off = vm->u.seq.items[1]->u.i, size = vm->u.seq.items[2]->u.i;
        if (off < 0 || size < 0 || off > s->root_numel || size > s->root_numel - off)
            return fail(m, PN_ERR_FORMAT, "storage view [%lld, +%lld) past the end of storage '%s' (%lld elements)",
                        (long long)off, (long long)size, s->key, (long long)s->root_numel);
        s->base_off = off;
        s->numel = size;
    }
    return push(m, v);
}

/* ---------------------------------------------------------------- the loop */

static const char *unsupported_name(uint8_t op) {
    switch (op) {
    case 'I': return "INT";
    case 'L': return "LONG";
    case 'F': return "FLOAT";
    case 'S': return "STRING";
    case 'V': return "UNICODE";
    case 'P': return "PERSID";
    case 'p': return "PUT";
    case 'g': return "GET";
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return NULL;
    }
}

static pn_status collect(machine *m, pn_pk_kind kind, const char *op) {
    size_t first = 0, n = 0;
    PN_TRY(pop_mark(m, op, &first, &n));
    pn_pk_value *v = new_value(m, kind);
    if (!v) return NOMEM(m);
    if (kind == PN_PK_DICT && n % 2) return fail(m, PN_ERR_FORMAT, "DICT with an odd number of items");
    for (size_t i = 0; i < n; i += (kind == PN_PK_DICT ? 2 : 1)) {
        if (kind == PN_PK_DICT)
            PN_TRY(dict_set(m, v, m->stack[first + i], m->stack[first + i + 1]));
        else
            PN_TRY(seq_add(m, v, m->stack[first + i]));
    }
    return push(m, v);
}

static pn_status small_tuple(machine *m, size_t n) {
    PN_TRY(need(m, n, "TUPLEn"));
    pn_pk_value *v = new_value(m, PN_PK_TUPLE);
    if (!v) return NOMEM(m);
    for (size_t i = 0; i < n; i++) PN_TRY(seq_add(m, v, m->stack[m->sp - n + i]));
    m->sp -= n;
    return push(m, v);
}

static pn_status append_many(machine *m, bool dict) {
    size_t first = 0, n = 0;
    PN_TRY(pop_mark(m, dict ? "SETITEMS" : "APPENDS", &first, &n));
    if (m->sp == 0 || m->stack[m->sp - 1] == &MARK_VALUE)
        return fail(m, PN_ERR_FORMAT, "%s without a container", dict ? "SETITEMS" : "APPENDS");
    pn_pk_value *c = m->stack[m->sp - 1];
    if (dict) {
        if (n % 2) return fail(m, PN_ERR_FORMAT, "SETITEMS with an odd number of items");
        for (size_t i = 0; i < n; i += 2) PN_TRY(dict_set(m, c, m->stack[first + i], m->stack[first + i + 1]));
        return PN_OK;
    }
    if (c->kind != PN_PK_LIST) return fail(m, PN_ERR_FORMAT, "APPENDS to a %s", kind_name(c->kind));
    for (size_t i = 0; i < n; i++) PN_TRY(seq_add(m, c, m->stack[first + i]));
    return PN_OK;
}

static pn_status step(machine *m, bool *stop) {
    uint64_t n = 0;
    const uint8_t *b = NULL;
    m->op_pos = m->pos;
    uint8_t op = m->data[m->pos++];
    switch (op) {
    case 0x80: /* PROTO */
        PN_TRY(take_le(m, 1, &n));
        if (n > 5) return fail(m, PN_ERR_UNSUPPORTED, "pickle protocol %llu", (unsigned long long)n);
        return PN_OK;
    case 0x95: return take(m, 8, &b); /* FRAME: a length hint only */
    case '.': *stop = true; return PN_OK;
    case '(':
        if (!grow(m, (void **)&m->marks, &m->marks_cap, m->n_marks + 1, sizeof *m->marks)) return NOMEM(m);
        PN_TRY(push(m, &MARK_VALUE));
        m->marks[m->n_marks++] = m->sp;
        return PN_OK;
    case '0':
        PN_TRY(need(m, 1, "POP"));
        m->sp--;
        return PN_OK;
    case '1': {
        size_t first = 0, k = 0;
        return pop_mark(m, "POP_MARK", &first, &k);
    }
    case '2': PN_TRY(need(m, 1, "DUP")); return push(m, m->stack[m->sp - 1]);
    case 'N': return push(m, new_value(m, PN_PK_NONE));
    case 0x88:
    case 0x89: {
        pn_pk_value *v = new_value(m, PN_PK_BOOL);
        if (v) v->u.b = op == 0x88;
        return push(m, v);
    }
    case 'J': PN_TRY(take_le(m, 4, &n)); return push_int(m, (int32_t)(uint32_t)n);
    case 'K': PN_TRY(take_le(m, 1, &n)); return push_int(m, (int64_t)n);
    case 'M': PN_TRY(take_le(m, 2, &n)); return push_int(m, (int64_t)n);
    case 0x8a: PN_TRY(take_le(m, 1, &n)); return push_long(m, n);
    case 0x8b: PN_TRY(take_le(m, 4, &n)); return push_long(m, n);
    case 'G': {
        PN_TRY(take(m, 8, &b));
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = u << 8 | b[i]; /* big-endian */
        pn_pk_value *v = new_value(m, PN_PK_FLOAT);
        if (v) memcpy(&v->u.f, &u, 8);
        return push(m, v);
    }
    case 'X':
    case 'T': PN_TRY(take_le(m, 4, &n)); return push_string(m, PN_PK_STR, n);
    case 0x8c:
    case 'U': PN_TRY(take_le(m, 1, &n)); return push_string(m, PN_PK_STR, n);
    case 0x8d: PN_TRY(take_le(m, 8, &n)); return push_string(m, PN_PK_STR, n);
    case 'B': PN_TRY(take_le(m, 4, &n)); return push_string(m, PN_PK_BYTES, n);
    case 'C': PN_TRY(take_le(m, 1, &n)); return push_string(m, PN_PK_BYTES, n);
    case 0x8e: PN_TRY(take_le(m, 8, &n)); return push_string(m, PN_PK_BYTES, n);
    case ')': return push(m, new_value(m, PN_PK_TUPLE));
    case ']': return push(m, new_value(m, PN_PK_LIST));
    case '}': return push(m, new_value(m, PN_PK_DICT));
    case 't': return collect(m, PN_PK_TUPLE, "TUPLE");
    case 'l': return collect(m, PN_PK_LIST, "LIST");
    case 'd': return collect(m, PN_PK_DICT, "DICT");
    case 0x85: return small_tuple(m, 1);
    case 0x86: return small_tuple(m, 2);
    case 0x87: return small_tuple(m, 3);
    case 'a': {
        PN_TRY(need(m, 2, "APPEND"));
        pn_pk_value *x = pop(m), *l = m->stack[m->sp - 1];
        if (l->kind != PN_PK_LIST) return fail(m, PN_ERR_FORMAT, "APPEND to a %s", kind_name(l->kind));
        return seq_add(m, l, x);
    }
    case 'e': return append_many(m, false);
    case 's': {
        PN_TRY(need(m, 3, "SETITEM"));
        pn_pk_value *v = pop(m), *k = pop(m);
        return dict_set(m, m->stack[m->sp - 1], k, v);
    }
    case 'u': return append_many(m, true);
    case 'c': {
        char module[128], name[128];
        PN_TRY(read_line(m, module, sizeof module));
        PN_TRY(read_line(m, name, sizeof name));
        return op_global(m, module, name);
    }
    case 0x93: {
        PN_TRY(need(m, 2, "STACK_GLOBAL"));
        pn_pk_value *name = pop(m), *module = pop(m);
        if (name->kind != PN_PK_STR || module->kind != PN_PK_STR)
            return fail(m, PN_ERR_FORMAT, "STACK_GLOBAL of non-strings");
        return op_global(m, module->u.str.s, name->u.str.s);
    }
    case 'R': return op_reduce(m);
    case 'b': return op_build(m);
    case 'Q': return op_persid(m);
    case 'q': PN_TRY(take_le(m, 1, &n)); return memo_put(m, n);
    case 'r': PN_TRY(take_le(m, 4, &n)); return memo_put(m, n);
    case 0x94: return memo_put(m, m->memo_count);
    case 'h': PN_TRY(take_le(m, 1, &n)); return memo_get(m, n);
    case 'j': PN_TRY(take_le(m, 4, &n)); return memo_get(m, n);
    default: {
        const char *name = unsupported_name(op);
        if (name)
            return fail(m, PN_ERR_UNSUPPORTED, "pickle opcode %s (0x%02x) is not one torch.save writes", name, op);
        return fail(m, PN_ERR_FORMAT, "unknown pickle opcode 0x%02x", op);
    }
    }
}

pn_status pn_pk_load(const uint8_t *data, size_t len, const char *what, pn_pickle **out, pn_pk_value **root,
                     size_t *used) {
    *out = NULL;
    *root = NULL;
    machine m;
    memset(&m, 0, sizeof m);
    m.data = data;
    m.len = len;
    m.what = what;
    m.p = calloc(1, sizeof *m.p);
    if (!m.p) return pn_error(PN_ERR_NOMEM, "%s: out of memory", what);
    pn_status st = PN_OK;
    bool stop = false;
    while (st == PN_OK && !stop) {
        if (m.pos >= m.len) {
            m.op_pos = m.pos;
            st = fail(&m, PN_ERR_FORMAT, "truncated: the pickle ends without STOP");
            break;
        }
        st = step(&m, &stop);
    }
    if (st == PN_OK && (m.sp != 1 || m.stack[0] == &MARK_VALUE))
        st = fail(&m, PN_ERR_FORMAT, "STOP with %zu values on the stack (expected 1)", m.sp);
    if (st == PN_OK) {
        *root = m.stack[0];
        *out = m.p;
        if (used) *used = m.pos;
    } else {
        pn_pk_free(m.p);
    }
    free(m.stack);
    free(m.marks);
    free(m.memo);
    return st;
}

/* ---------------------------------------------------------------- walking the result */

typedef struct walker {
    pn_pickle *p;
    pn_pk_tensor_fn fn;
    void *ctx;
    char path[1024];
} walker;

static pn_status walk(walker *w, const pn_pk_value *v, size_t path_len, int depth, const char *key) {
    if (v->kind == PN_PK_TENSOR) {
        w->path[path_len] = 0;
        return w->fn(w->ctx, w->path, key, v);
    }
    if (v->kind != PN_PK_DICT && v->kind != PN_PK_LIST && v->kind != PN_PK_TUPLE) return PN_OK;
    if (v->visit == w->p->visit_gen) return PN_OK; /* reached twice (or a cycle) */
    ((pn_pk_value *)v)->visit = w->p->visit_gen;
    if (depth >= 32) return pn_error(PN_ERR_FORMAT, "checkpoint nests containers deeper than 32 levels");
    /* this container's own key joins the path of its children */
    size_t len = path_len;
    if (key) {
        int k = snprintf(w->path + len, sizeof w->path - len, "%s%s", len ? "/" : "", key);
        if (k < 0 || (size_t)k >= sizeof w->path - len) return pn_error(PN_ERR_FORMAT, "checkpoint key path too long");
        len += (size_t)k;
    }
    bool dict = v->kind == PN_PK_DICT;
    for (size_t i = 0; i < v->u.seq.n; i++) {
        char idx[32];
        const char *child_key = idx;
        const pn_pk_value *child = dict ? v->u.seq.items[2 * i + 1] : v->u.seq.items[i];
        if (dict) {
            const pn_pk_value *k = v->u.seq.items[2 * i];
            if (k->kind == PN_PK_STR)
                child_key = k->u.str.s;
            else if (k->kind == PN_PK_INT)
                snprintf(idx, sizeof idx, "%lld", (long long)k->u.i);
            else
                continue; /* a key we cannot name holds nothing we need */
        } else {
            snprintf(idx, sizeof idx, "%zu", i);
        }
        PN_TRY(walk(w, child, len, depth + 1, child_key));
    }
    return PN_OK;
}

pn_status pn_pk_walk_tensors(pn_pickle *p, const pn_pk_value *root, pn_pk_tensor_fn fn, void *ctx) {
    walker w = {.p = p, .fn = fn, .ctx = ctx};
    p->visit_gen++;
    return walk(&w, root, 0, 0, NULL);
}

pn_status pn_pk_each_storage(const pn_pickle *p, pn_pk_storage_fn fn, void *ctx) {
    for (size_t i = 0; i < p->n_all; i++)
        if (p->all[i]->kind == PN_PK_STORAGE) PN_TRY(fn(ctx, p->all[i]->u.storage));
    return PN_OK;
}
