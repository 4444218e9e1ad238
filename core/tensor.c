/* tensor: a logical NCHW view (shape, dtype) into storage owned by a backend buffer. */
#include "tensor.h"

#include <stdio.h>
#include <string.h>

size_t pn_dtype_size(pn_dtype dt) { return dt == PN_F32 ? 4 : 2; }

int64_t pn_tensor_numel(const pn_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t pn_tensor_bytes(const pn_tensor *t) { return (size_t)pn_tensor_numel(t) * pn_dtype_size(t->dtype); }

pn_tensor pn_tensor_nchw(int64_t n, int64_t c, int64_t h, int64_t w) {
    pn_tensor t;
    memset(&t, 0, sizeof t);
    t.ndim = 4;
    t.shape[0] = n;
    t.shape[1] = c;
    t.shape[2] = h;
    t.shape[3] = w;
    return t;
}

pn_tensor pn_tensor_vec(int64_t n) {
    pn_tensor t;
    memset(&t, 0, sizeof t);
    t.ndim = 1;
    t.shape[0] = n;
    return t;
}

int pn_tensor_same_shape(const pn_tensor *a, const pn_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *pn_shape_str(const pn_tensor *t, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? "x%lld" : "%lld", (long long)t->shape[i]);
    if (t->ndim == 0) snprintf(buf, n, "scalar");
    return buf;
}

float *pn_tensor_host_f32(const pn_tensor *t) {
    PN_ASSERT(t->buf && t->buf->host);
    PN_ASSERT(t->dtype == PN_F32);
    return (float *)((char *)t->buf->host + t->offset);
}
