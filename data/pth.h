/* pth: PyTorch checkpoints as torch.save writes them, read without executing anything: the zip format of
 * PyTorch >= 1.6 (<name>/data.pkl, <name>/data/<key>, <name>/byteorder; needs libzip) and the legacy format
 * (magic number, protocol, system info, the pickled object, the storage keys, the raw storages). The result
 * is the list of tensors the pickle reaches (state_dict values, nested dicts included) as views into the
 * storages, which are read once and shared by the tensors that view them. */
#ifndef PN_PTH_H
#define PN_PTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/base.h"
#include "pickle.h"

typedef struct pn_pth_tensor {
    char *name; /* the innermost key, e.g. "encoder.conv1.weight" (list items: their index) */
    char *path; /* the enclosing keys joined by '/', "" at the top level (e.g. "state_dict") */
    pn_torch_dtype dtype;
    int ndim;
    int64_t shape[PN_PK_MAX_DIMS], stride[PN_PK_MAX_DIMS];
    int64_t offset; /* elements into the storage */
    int storage;    /* index into the file's storages */
} pn_pth_tensor;

typedef struct pn_pth_storage {
    char *key;
    pn_torch_dtype dtype;
    int64_t numel;       /* elements, as the pickle declares them */
    const uint8_t *data; /* numel elements in the file's byte order (owned by the file) */
} pn_pth_storage;

typedef struct pn_pth_file {
    char *path;
    const char *format; /* "zip" or "legacy" */
    bool big_endian;    /* the storages' byte order (a zip's byteorder record) */
    pn_pth_tensor *tensors;
    int count;
    pn_pth_storage *storages;
    int n_storages;
    struct pn_pth_owned *owned; /* the buffers the storages point into */
} pn_pth_file;

/* True when the build reads zip-format checkpoints (it was configured with libzip). */
bool pn_pth_have_zip(void);
/* True when the file starts like a PyTorch checkpoint (zip, legacy pickle or the old tar format). */
bool pn_pth_sniff(const char *path);
/* Reads the whole checkpoint and checks every tensor against its storage. Errors are one line naming the file:
 * a refused global, a bad opcode, a truncated file, a storage or record missing or shorter than declared, a view
 * past its storage, a zip record whose sizes lie; a zip file in a build without libzip says so. */
pn_status pn_pth_open(const char *path, pn_pth_file **out);
void pn_pth_close(pn_pth_file *f);

int64_t pn_pth_numel(const pn_pth_tensor *t);
/* The tensor's elements in row-major order, as host-order bytes of its dtype (numel * element size bytes). */
pn_status pn_pth_read_raw(const pn_pth_file *f, const pn_pth_tensor *t, void *dst);
/* The tensor converted to float (any dtype; count must equal numel). */
pn_status pn_pth_read_f32(const pn_pth_file *f, const pn_pth_tensor *t, float *dst, int64_t count);
/* An integer or bool tensor as int64 (count must equal numel). */
pn_status pn_pth_read_i64(const pn_pth_file *f, const pn_pth_tensor *t, int64_t *dst, int64_t count);

#endif
