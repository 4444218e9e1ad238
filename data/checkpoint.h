/* checkpoint: the named tensors of a weights file whatever its format (safetensors: ours, smp-hub, timm; a
 * PyTorch .pth, zip or legacy) as one list with shapes and a float / int64 reader. */
#ifndef PN_CHECKPOINT_H
#define PN_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/safetensors.h"
#include "pth.h"

#define PN_CKPT_MAX_DIMS 8

typedef struct pn_ckpt_tensor {
    const char *path;  /* the enclosing dict keys joined by '/' ("" at the top level and in safetensors) */
    const char *name;  /* the key, e.g. "module.encoder.conv1.weight" */
    const char *dtype; /* "float32", "int64", ... */
    bool is_float;
    int ndim;
    int64_t shape[PN_CKPT_MAX_DIMS];
} pn_ckpt_tensor;

typedef struct pn_ckpt {
    const char *path;
    const char *format; /* "safetensors", "pth (zip)" or "pth (legacy)" */
    pn_ckpt_tensor *tensors;
    int count;
    pn_st_file *st;   /* the safetensors file (for its metadata), or NULL */
    pn_pth_file *pth; /* the .pth file, or NULL */
} pn_ckpt;

/* Opens a .pth (recognised by its first bytes, whatever its name) or a safetensors file. */
pn_status pn_ckpt_open(const char *path, pn_ckpt **out);
void pn_ckpt_close(pn_ckpt *c);
int64_t pn_ckpt_numel(const pn_ckpt_tensor *t);
/* Tensor i as floats / as int64 (integer tensors only); count must equal its numel. */
pn_status pn_ckpt_read_f32(const pn_ckpt *c, int i, float *dst, int64_t count);
pn_status pn_ckpt_read_i64(const pn_ckpt *c, int i, int64_t *dst, int64_t count);

#endif
