/* cpu upsample2x: nearest-neighbour doubling of H and W, and its adjoint (sum of each 2x2 block). */
#include "cpu.h"

pn_status pn_cpu_upsample2x_fwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const pn_tensor *tx = node->in[0];
    int64_t planes = tx->shape[0] * tx->shape[1], h = tx->shape[2], w = tx->shape[3];
    const float *x = cpu_ptr(tx);
    float *y = cpu_ptr(node->out[0]);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t iy = 0; iy < h; iy++) {
            const float *src = x + (pl * h + iy) * w;
            float *row0 = y + (pl * 2 * h + 2 * iy) * 2 * w, *row1 = row0 + 2 * w;
            for (int64_t ix = 0; ix < w; ix++) {
                float v = src[ix];
                row0[2 * ix] = v;
                row0[2 * ix + 1] = v;
                row1[2 * ix] = v;
                row1[2 * ix + 1] = v;
            }
        }
    return PN_OK;
}

pn_status pn_cpu_upsample2x_bwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const pn_tensor *tdx = node->out[0];
    int64_t planes = tdx->shape[0] * tdx->shape[1], h = tdx->shape[2], w = tdx->shape[3];
    const float *dy = cpu_ptr(node->in[0]);
    float *dx = cpu_ptr(tdx);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t y = 0; y < h; y++) {
            const float *r0 = dy + (pl * 2 * h + 2 * y) * 2 * w, *r1 = r0 + 2 * w;
            float *out = dx + (pl * h + y) * w;
            for (int64_t x = 0; x < w; x++) out[x] = (r0[2 * x] + r0[2 * x + 1]) + (r1[2 * x] + r1[2 * x + 1]);
        }
    return PN_OK;
}
