/* pickle: an allowlist interpreter for the pickles torch.save writes, in the spirit of PyTorch's weights_only
 * loader. It knows only the opcodes torch.save emits (protocols 2 to 4) and only the globals that rebuild
 * tensors, storages and containers; any other global is refused with its name. Nothing is ever executed: a
 * REDUCE of an allowed global is interpreted here, by the code of this file. */
#ifndef PN_PICKLE_H
#define PN_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base.h"

#define PN_PK_MAX_DIMS 8

/* The element types of torch's typed storages (torch.FloatStorage, ...). */
typedef enum pn_torch_dtype {
    PN_TD_F32,  /* FloatStorage */
    PN_TD_F64,  /* DoubleStorage */
    PN_TD_F16,  /* HalfStorage */
    PN_TD_BF16, /* BFloat16Storage */
    PN_TD_I64,  /* LongStorage */
    PN_TD_I32,  /* IntStorage */
    PN_TD_I16,  /* ShortStorage */
    PN_TD_I8,   /* CharStorage */
    PN_TD_U8,   /* ByteStorage */
    PN_TD_BOOL, /* BoolStorage */
    PN_TD_COUNT
} pn_torch_dtype;

/* Bytes per element; the torch name ("float32", "int64", ...). */
size_t pn_torch_dtype_size(pn_torch_dtype t);
const char *pn_torch_dtype_name(pn_torch_dtype t);
bool pn_torch_dtype_is_float(pn_torch_dtype t);

typedef enum pn_pk_kind {
    PN_PK_NONE,
    PN_PK_BOOL,
    PN_PK_INT,    /* fits in int64 */
    PN_PK_BIGINT, /* a longer LONG1/LONG4: little-endian two's complement bytes in s/len */
    PN_PK_FLOAT,
    PN_PK_STR, /* UTF-8 (or Python 2 byte strings) in s/len, NUL-terminated */
    PN_PK_BYTES,
    PN_PK_TUPLE,
    PN_PK_LIST,
    PN_PK_DICT,    /* keys and values interleaved in items (2 * n) */
    PN_PK_GLOBAL,  /* an allowed global (class or function); which one in `global` */
    PN_PK_STORAGE, /* a persistent id ('storage', type, key, location, numel[, view]) */
    PN_PK_TENSOR,
    PN_PK_NPDTYPE, /* numpy.dtype('f8') and friends (numpy scalars in checkpoints) */
    PN_PK_MARK,    /* the MARK opcode's stack entry (never in a result) */
} pn_pk_kind;

typedef struct pn_pk_storage {
    pn_torch_dtype dtype;
    char *key;        /* the record name in a zip checkpoint, the storage id in a legacy one */
    int64_t numel;    /* elements of the storage the tensor views */
    int64_t base_off; /* legacy storage views: elements into the root storage `key` (0 otherwise) */
    int64_t root_numel;
} pn_pk_storage;

typedef struct pn_pk_tensor {
    struct pn_pk_value *storage; /* a PN_PK_STORAGE */
    int64_t offset;              /* elements into the storage */
    int ndim;
    int64_t size[PN_PK_MAX_DIMS], stride[PN_PK_MAX_DIMS];
    pn_torch_dtype dtype;
} pn_pk_tensor;

typedef struct pn_pk_value {
    pn_pk_kind kind;
    int visit; /* walk generation (cycle guard) */
    union {
        bool b;
        int64_t i;
        double f;
        int global;
        struct {
            char *s;
            size_t len;
        } str;
        struct {
            struct pn_pk_value **items;
            size_t n, cap; /* n items (dicts: n pairs, 2n entries) */
        } seq;
        pn_pk_storage *storage;
        pn_pk_tensor *tensor;
        struct {
            char kind; /* 'f', 'i', 'u', 'b' */
            int size;  /* bytes */
            bool big;  /* byte order '>' */
        } npdtype;
    } u;
} pn_pk_value;

/* The interpreter's result: every value it made lives until pn_pk_free. */
typedef struct pn_pickle pn_pickle;

/* Interprets one pickle of `len` bytes starting at `data` (`what` names it in messages, e.g. "x.pth: data.pkl").
 * On success *root is the STOP value and *used the bytes the pickle took (the next pickle starts there).
 * A refused global, an unknown or unsupported opcode, a truncated pickle, a malformed tensor (negative or
 * overflowing shape, a view past its storage) are PN_ERR_FORMAT / PN_ERR_UNSUPPORTED with one line naming it. */
pn_status pn_pk_load(const uint8_t *data, size_t len, const char *what, pn_pickle **out, pn_pk_value **root,
                     size_t *used);
void pn_pk_free(pn_pickle *p);

/* Calls `fn` for every tensor reachable from `root` through dicts (key = dict key), lists and tuples (key = the
 * index): `path` holds the enclosing keys joined by '/' ("" at the top), `key` the innermost key. Stops at the
 * first non-OK status. Containers reached twice are visited once; nesting deeper than 32 is an error. */
typedef pn_status (*pn_pk_tensor_fn)(void *ctx, const char *path, const char *key, const pn_pk_value *tensor);
pn_status pn_pk_walk_tensors(pn_pickle *p, const pn_pk_value *root, pn_pk_tensor_fn fn, void *ctx);

/* Calls `fn` for every storage persistent id the pickle declared (a storage shared by several tensors may come
 * once per tensor; its key is the same). */
typedef pn_status (*pn_pk_storage_fn)(void *ctx, const pn_pk_storage *s);
pn_status pn_pk_each_storage(const pn_pickle *p, pn_pk_storage_fn fn, void *ctx);

/* Number of elements of a tensor (its shape is checked when it is built, so this cannot overflow). */
int64_t pn_pk_tensor_numel(const pn_pk_tensor *t);

#endif
