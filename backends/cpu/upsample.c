/* cpu upsample2x: nearest-neighbour doubling of H and W, and its adjoint (sum of each 2x2 block), on the
 * tensor's own layout: whole pixels of b channel lanes are copied at once. */
#include "cpu.h"

pn_status pn_cpu_upsample2x_fwd(cpu_ctx *ctx, pn_node *node) {
    const pn_tensor *tx = node->in[0];
    int64_t b = cpu_blk(ctx, tx), blocks = tx->shape[0] * tx->shape[1] / b, h = tx->shape[2], w = tx->shape[3];
    const float *x = cpu_ptr(tx);
    float *y = cpu_ptr(node->out[0]);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t pl = 0; pl < blocks; pl++)
        for (int64_t iy = 0; iy < h; iy++) {
            const float *src = x + (pl * h + iy) * w * b;
            float *row0 = y + (pl * 2 * h + 2 * iy) * 2 * w * b, *row1 = row0 + 2 * w * b;
            for (int64_t ix = 0; ix < w; ix++)
                for (int64_t l = 0; l < b; l++) {
                    float v = src[ix * b + l];
                    row0[2 * ix * b + l] = v;
                    row0[(2 * ix + 1) * b + l] = v;
                    row1[2 * ix * b + l] = v;
                    row1[(2 * ix + 1) * b + l] = v;
                }
        }
    return PN_OK;
}

pn_status pn_cpu_upsample2x_bwd(cpu_ctx *ctx, pn_node *node) {
    const pn_tensor *tdx = node->out[0];
    int64_t b = cpu_blk(ctx, tdx), blocks = tdx->shape[0] * tdx->shape[1] / b, h = tdx->shape[2], w = tdx->shape[3];
    const float *dy = cpu_ptr(node->in[0]);
    float *dx = cpu_ptr(tdx);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t pl = 0; pl < blocks; pl++)
        for (int64_t y = 0; y < h; y++) {
            const float *r0 = dy + (pl * 2 * h + 2 * y) * 2 * w * b, *r1 = r0 + 2 * w * b;
            float *out = dx + (pl * h + y) * w * b;
            for (int64_t x = 0; x < w; x++)
                for (int64_t l = 0; l < b; l++)
                    out[x * b + l] =
                        (r0[2 * x * b + l] + r0[(2 * x + 1) * b + l]) + (r1[2 * x * b + l] + r1[(2 * x + 1) * b + l]);
        }
    return PN_OK;
}
