/* upsample: nearest-neighbour x2 of H and W, and its adjoint (the sum of each 2x2 block, ref's order). */
#include "cuda.h"

/* y (planes, 2h, 2w) from x (planes, h, w): one thread per output element. */
__global__ void upsample2x_fwd_kernel(float *y, const float *x, size_t planes, size_t h, size_t w) {
    size_t ow = 2 * w, plane = 4 * h * w;
    CUDA_GRID_LOOP(i, planes * plane) {
        size_t pl = i / plane, r = i % plane, oy = r / ow, ox = r % ow;
        y[i] = x[(pl * h + oy / 2) * w + ox / 2];
    }
}

/* dx (planes, h, w) from dy (planes, 2h, 2w): one thread per dx element. */
__global__ void upsample2x_bwd_kernel(float *dx, const float *dy, size_t planes, size_t h, size_t w) {
    CUDA_GRID_LOOP(i, planes * h * w) {
        size_t pl = i / (h * w), r = i % (h * w), y = r / w, x = r % w;
        const float *blk = dy + (pl * 2 * h + 2 * y) * 2 * w + 2 * x;
        dx[i] = (blk[0] + blk[1]) + (blk[2 * w] + blk[2 * w + 1]);
    }
}

pn_status pn_cuda_upsample2x_fwd(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *x = node->in[0];
    size_t planes = (size_t)(x->shape[0] * x->shape[1]), h = (size_t)x->shape[2], w = (size_t)x->shape[3];
    upsample2x_fwd_kernel<<<cuda_blocks(4 * planes * h * w), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]),
                                                                                             cuda_ptr(x), planes, h, w);
    CUDA_LAUNCHED(upsample2x_fwd_kernel);
    return PN_OK;
}

pn_status pn_cuda_upsample2x_bwd(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *dx = node->out[0];
    size_t planes = (size_t)(dx->shape[0] * dx->shape[1]), h = (size_t)dx->shape[2], w = (size_t)dx->shape[3];
    upsample2x_bwd_kernel<<<cuda_blocks(planes * h * w), CUDA_THREADS, 0, ctx->stream>>>(
        cuda_ptr(dx), cuda_ptr(node->in[0]), planes, h, w);
    CUDA_LAUNCHED(upsample2x_bwd_kernel);
    return PN_OK;
}
