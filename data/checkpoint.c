/* checkpoint: one tensor list over safetensors and .pth files (see checkpoint.h). */
#include "checkpoint.h"

#include <stdlib.h>
#include <string.h>

static const char *st_dtype_name(const pn_st_entry *e, bool *is_float) {
    switch (e->dtype) {
    case PN_ST_F32: *is_float = true; return "float32";
    case PN_ST_F16: *is_float = true; return "float16";
    case PN_ST_BF16: *is_float = true; return "bfloat16";
    case PN_ST_F64: *is_float = true; return "float64";
    case PN_ST_I64: *is_float = false; return "int64";
    case PN_ST_I32: *is_float = false; return "int32";
    case PN_ST_U8: *is_float = false; return "uint8";
    case PN_ST_BOOL: *is_float = false; return "bool";
    default: *is_float = false; return e->dtype_name;
    }
}

static pn_status from_safetensors(pn_ckpt *c) {
    PN_TRY(pn_st_open(c->path, &c->st));
    c->format = "safetensors";
    c->count = c->st->count;
    c->tensors = calloc((size_t)c->count + 1, sizeof *c->tensors);
    if (!c->tensors) return pn_error(PN_ERR_NOMEM, "%s: out of memory", c->path);
    for (int i = 0; i < c->count; i++) {
        const pn_st_entry *e = &c->st->entries[i];
        pn_ckpt_tensor *t = &c->tensors[i];
        t->path = "";
        t->name = e->name;
        t->dtype = st_dtype_name(e, &t->is_float);
        t->ndim = e->ndim;
        memcpy(t->shape, e->shape, sizeof(int64_t) * (size_t)e->ndim);
    }
    return PN_OK;
}

static pn_status from_pth(pn_ckpt *c) {
    PN_TRY(pn_pth_open(c->path, &c->pth));
    c->format = strcmp(c->pth->format, "zip") ? "pth (legacy)" : "pth (zip)";
    c->count = c->pth->count;
    c->tensors = calloc((size_t)c->count + 1, sizeof *c->tensors);
    if (!c->tensors) return pn_error(PN_ERR_NOMEM, "%s: out of memory", c->path);
    for (int i = 0; i < c->count; i++) {
        const pn_pth_tensor *p = &c->pth->tensors[i];
        pn_ckpt_tensor *t = &c->tensors[i];
        t->path = p->path;
        t->name = p->name;
        t->dtype = pn_torch_dtype_name(p->dtype);
        t->is_float = pn_torch_dtype_is_float(p->dtype);
        t->ndim = p->ndim;
        memcpy(t->shape, p->shape, sizeof t->shape);
    }
    return PN_OK;
}

pn_status pn_ckpt_open(const char *path, pn_ckpt **out) {
    *out = NULL;
    pn_ckpt *c = calloc(1, sizeof *c);
    if (!c) return pn_error(PN_ERR_NOMEM, "%s: out of memory", path);
    c->path = path;
    pn_status st = pn_pth_sniff(path) ? from_pth(c) : from_safetensors(c);
    if (st != PN_OK) {
        pn_ckpt_close(c);
        return st;
    }
    *out = c;
    return PN_OK;
}

void pn_ckpt_close(pn_ckpt *c) {
    if (!c) return;
    pn_st_close(c->st);
    pn_pth_close(c->pth);
    free(c->tensors);
    free(c);
}

int64_t pn_ckpt_numel(const pn_ckpt_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

pn_status pn_ckpt_read_f32(const pn_ckpt *c, int i, float *dst, int64_t count) {
    if (c->pth) return pn_pth_read_f32(c->pth, &c->pth->tensors[i], dst, count);
    const pn_st_entry *e = &c->st->entries[i];
    if (!c->tensors[i].is_float) { /* integer tensors as floats (rare: a float parameter saved as int) */
        int64_t *v = malloc((size_t)count * sizeof *v + 1);
        if (!v) return pn_error(PN_ERR_NOMEM, "out of memory");
        pn_status st = pn_st_read_i64(c->st, e, v, count);
        for (int64_t k = 0; st == PN_OK && k < count; k++) dst[k] = (float)v[k];
        free(v);
        return st;
    }
    return pn_st_read_f32(c->st, e, dst, count);
}

pn_status pn_ckpt_read_i64(const pn_ckpt *c, int i, int64_t *dst, int64_t count) {
    if (c->pth) return pn_pth_read_i64(c->pth, &c->pth->tensors[i], dst, count);
    return pn_st_read_i64(c->st, &c->st->entries[i], dst, count);
}
