/* cpu concat/split: join two NCHW tensors along channels, and the inverse (one copy per image and part). */
#include <string.h>

#include "cpu.h"

/* Copies `rows` blocks of `len` floats from src (stride src_stride) to dst (stride dst_stride). */
static void copy_blocks(float *dst, int64_t dst_stride, const float *src, int64_t src_stride, int64_t rows,
                        int64_t len) {
#pragma omp parallel for schedule(static) if (rows * len > 65536)
    for (int64_t r = 0; r < rows; r++) memcpy(dst + r * dst_stride, src + r * src_stride, (size_t)len * sizeof(float));
}

pn_status pn_cpu_concat(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const pn_tensor *a = node->in[0], *b = node->in[1], *y = node->out[0];
    int64_t n = y->shape[0], hw = y->shape[2] * y->shape[3], cy = y->shape[1], ca = a->shape[1], cb = cy - ca;
    float *py = cpu_ptr(y);
    copy_blocks(py, cy * hw, cpu_ptr(a), ca * hw, n, ca * hw);
    copy_blocks(py + ca * hw, cy * hw, cpu_ptr(b), cb * hw, n, cb * hw);
    return PN_OK;
}

pn_status pn_cpu_split(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const pn_tensor *dy = node->in[0], *da = node->out[0], *db = node->out[1];
    int64_t n = dy->shape[0], hw = dy->shape[2] * dy->shape[3], cy = dy->shape[1], ca = da->shape[1], cb = cy - ca;
    const float *pdy = cpu_ptr(dy);
    copy_blocks(cpu_ptr(da), ca * hw, pdy, cy * hw, n, ca * hw);
    if (db) copy_blocks(cpu_ptr(db), cb * hw, pdy + ca * hw, cy * hw, n, cb * hw);
    return PN_OK;
}
