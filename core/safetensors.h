/* safetensors: a bounds-checked reader and an atomic writer for the safetensors format
 * (8-byte little-endian header length, JSON header, raw little-endian data). */
#ifndef PN_SAFETENSORS_H
#define PN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

typedef enum pn_st_dtype {
    PN_ST_F32,
    PN_ST_F16,
    PN_ST_BF16,
    PN_ST_F64,
    PN_ST_I64,
    PN_ST_I32,
    PN_ST_U8,
    PN_ST_BOOL,
    PN_ST_OTHER /* a dtype we know the size of but do not convert (e.g. I8, I16, U16...) */
} pn_st_dtype;

#define PN_ST_MAX_DIMS 8

typedef struct pn_st_entry {
    char *name;
    pn_st_dtype dtype;
    char dtype_name[8]; /* as written in the file, e.g. "F32" */
    int ndim;
    int64_t shape[PN_ST_MAX_DIMS];
    size_t begin, end; /* byte offsets into the data section */
} pn_st_entry;

typedef struct pn_st_file {
    char *path;
    pn_st_entry *entries; /* in file order */
    int count;
    uint8_t *data; /* the data section, inside the read-only mapping of the whole file (map, map_len) */
    size_t data_len;
    void *map;
    size_t map_len;
    char **meta_keys, **meta_values; /* the "__metadata__" string map */
    int meta_count;
    char *strings; /* owned storage the names and metadata strings point into */
} pn_st_file;

/* Reads and validates the whole file: header length within the file, well-formed JSON, known dtypes,
 * shapes whose byte size matches the offsets, offsets in range, no overlaps or gaps, unique names.
 * Any violation is PN_ERR_FORMAT naming the file and the tensor. */
pn_status pn_st_open(const char *path, pn_st_file **out);
/* The same checks on the header only (entries and metadata; data is NULL, data_len the file's data size): for
 * the metadata of a large file. pn_st_raw and the readers must not be used on it. */
pn_status pn_st_open_header(const char *path, pn_st_file **out);
void pn_st_close(pn_st_file *f);
/* The entry called `name`, or NULL. */
const pn_st_entry *pn_st_find(const pn_st_file *f, const char *name);
/* A tensor name without the "module." prefix that PyTorch's DataParallel adds to every key. */
const char *pn_st_unprefixed(const char *name);
/* The entry whose name, without a "module." prefix, is `name`; NULL if none. */
const pn_st_entry *pn_st_find_unprefixed(const pn_st_file *f, const char *name);
/* Whether the entry has exactly this shape. */
bool pn_st_has_shape(const pn_st_entry *e, int ndim, const int64_t *shape);
/* "[a, b, c]" into buf (truncated to n bytes); returns buf. */
const char *pn_shape_text(int ndim, const int64_t *shape, char *buf, size_t n);
/* Number of elements of an entry. */
int64_t pn_st_numel(const pn_st_entry *e);
/* Converts an F32/F16/BF16/F64 entry into `count` floats (count must equal numel). */
pn_status pn_st_read_f32(const pn_st_file *f, const pn_st_entry *e, float *dst, int64_t count);
/* Reads an I64/I32 entry into `count` int64 values. */
pn_status pn_st_read_i64(const pn_st_file *f, const pn_st_entry *e, int64_t *dst, int64_t count);
/* The entry's raw little-endian bytes (end - begin of them) inside the data section. */
const void *pn_st_raw(const pn_st_file *f, const pn_st_entry *e);
/* Bytes per element of the entry's dtype (1, 2, 4 or 8). */
size_t pn_st_dtype_size(const pn_st_entry *e);

/* A writer collects tensors (by reference: the data must stay valid until save) and metadata. */
typedef struct pn_st_writer pn_st_writer;
pn_st_writer *pn_st_writer_new(void);
/* Adds a tensor; dtype is PN_ST_F32 or PN_ST_I64 (data is float* or int64_t*). The name is copied; it must be
 * valid UTF-8, unique and not "__metadata__"; 0 <= ndim <= PN_ST_MAX_DIMS. Bad arguments are PN_ERR_ARG. */
pn_status pn_st_writer_add(pn_st_writer *w, const char *name, pn_st_dtype dtype, int ndim, const int64_t *shape,
                           const void *data);
/* Produces a tensor's elements at save time: writes them (host order, float or int64 as the dtype) into
 * dst, which holds the tensor's bytes. */
typedef pn_status (*pn_st_fill_fn)(void *ctx, void *dst);
/* As pn_st_writer_add, but the data is asked for only while the file is written, one tensor at a time,
 * through a scratch buffer of the largest such tensor: a checkpoint of device tensors then needs no
 * host copy of them all. ctx must stay valid until save. */
pn_status pn_st_writer_add_fill(pn_st_writer *w, const char *name, pn_st_dtype dtype, int ndim, const int64_t *shape,
                                pn_st_fill_fn fill, void *ctx);
/* Adds a "__metadata__" string entry (keys and values are copied, UTF-8); a repeated key replaces the value. */
pn_status pn_st_writer_meta(pn_st_writer *w, const char *key, const char *value);
/* Writes the file atomically (temporary name, then rename). Tensors are written in the order added. */
pn_status pn_st_writer_save(pn_st_writer *w, const char *path);
void pn_st_writer_free(pn_st_writer *w);
/* The metadata value for `key` in an opened file, or NULL. */
const char *pn_st_meta(const pn_st_file *f, const char *key);

#endif
