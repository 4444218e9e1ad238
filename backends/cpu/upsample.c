/* cpu upsample2x: nearest-neighbour doubling of H and W, and its adjoint (sum of each 2x2 block), on the
 * tensor's own layout: whole pixels of b channel lanes are copied at once. Before an int8 convolution that alone
 * reads it, the forward writes that convolution's 8-bit nhwc input instead (see pn_cpu_quantized_out_set). */
#include <string.h>

#include "cpu.h"

/* x (channel blocks of b) doubled into y: nhwc, 8 bits per value. Each output row pair is one input row: the first
 * is written value by value, the second copied from it. */
static pn_status upsample_to_int8(cpu_ctx *ctx, pn_node *node, const pn_cpu_quantized_out *q) {
    PN_TRY(pn_cpu_quantized_out_check(node, q));
    const pn_tensor *tx = node->in[0];
    int64_t b = cpu_blk(ctx, tx), n = tx->shape[0], c = tx->shape[1], h = tx->shape[2], w = tx->shape[3];
    const float *x = cpu_ptr(tx);
    uint8_t *y = (uint8_t *)cpu_ptr(node->out[0]);
    float lo = q->is_signed ? -128.0f : 0.0f, hi = q->is_signed ? 127.0f : 255.0f, scale = q->scale;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t img = 0; img < n; img++)
        for (int64_t iy = 0; iy < h; iy++) {
            uint8_t *row = y + (img * 2 * h + 2 * iy) * 2 * w * c;
            for (int64_t cb = 0; cb < c / b; cb++) {
                const float *src = x + ((img * (c / b) + cb) * h + iy) * w * b;
                for (int64_t ix = 0; ix < w; ix++) {
                    uint8_t *left = row + 2 * ix * c + cb * b, *right = left + c;
                    for (int64_t l = 0; l < b; l++) left[l] = right[l] = cpu_quantize(src[ix * b + l], scale, lo, hi);
                }
            }
            memcpy(row + 2 * w * c, row, (size_t)(2 * w * c));
        }
    return PN_OK;
}

pn_status pn_cpu_upsample2x_fwd(cpu_ctx *ctx, pn_node *node) {
    if (node->state) return upsample_to_int8(ctx, node, node->state);
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
