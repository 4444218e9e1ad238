/* ref upsample2x: nearest-neighbour doubling of H and W, and its adjoint (sum of each 2x2 block). */
#include "ref.h"

pn_status pn_ref_upsample2x_fwd(pn_node *node) {
    const pn_tensor *tx = node->in[0];
    int64_t planes = tx->shape[0] * tx->shape[1], h = tx->shape[2], w = tx->shape[3];
    const float *x = ref_ptr(tx);
    float *y = ref_ptr(node->out[0]);
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < 2 * h; oy++)
            for (int64_t ox = 0; ox < 2 * w; ox++)
                y[(pl * 2 * h + oy) * 2 * w + ox] = x[(pl * h + oy / 2) * w + ox / 2];
    return PN_OK;
}

pn_status pn_ref_upsample2x_bwd(pn_node *node) {
    const pn_tensor *tdx = node->out[0];
    int64_t planes = tdx->shape[0] * tdx->shape[1], h = tdx->shape[2], w = tdx->shape[3];
    const float *dy = ref_ptr(node->in[0]);
    float *dx = ref_ptr(tdx);
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                const float *blk = dy + (pl * 2 * h + 2 * y) * 2 * w + 2 * x;
                dx[(pl * h + y) * w + x] = (blk[0] + blk[1]) + (blk[2 * w] + blk[2 * w + 1]);
            }
    return PN_OK;
}
