/* channel_mul: y = x * s with one factor per (image, channel) (the SE gate; y may be x), and the factor's gradient
 * ds = sum over the plane of dy * x, in double by one block per plane (reduce.cuh's fixed tree order), as ref. */
#include "cuda.h"
#include "reduce.cuh"

/* Blocks for a kernel that gives each plane one block (grid-stride over planes beyond that). */
static unsigned channel_mul_blocks(size_t planes) { return (unsigned)(planes < 4096 ? (planes ? planes : 1) : 4096); }

/* y may be x: each element is read before it is written, by the same thread. */
__global__ void channel_mul_kernel(float *y, const float *x, const float *s, size_t n, size_t hw) {
    CUDA_GRID_LOOP(i, n) y[i] = x[i] * s[i / hw];
}

__global__ void channel_mul_bwd_scale_kernel(float *ds, const float *dy, const float *x, size_t planes, size_t hw) {
    for (size_t pl = blockIdx.x; pl < planes; pl += gridDim.x) {
        const float *g = dy + pl * hw, *p = x + pl * hw;
        double v[1] = {0.0};
        for (size_t i = threadIdx.x; i < hw; i += CUDA_THREADS) v[0] += (double)g[i] * (double)p[i];
        cuda_block_sum<1>(v);
        if (threadIdx.x == 0) ds[pl] = (float)v[0];
    }
}

pn_status pn_cuda_channel_mul(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *x = node->in[0];
    size_t n = cuda_numel(x), hw = (size_t)(x->shape[2] * x->shape[3]);
    channel_mul_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), cuda_ptr(x),
                                                                         cuda_ptr(node->in[1]), n, hw);
    CUDA_LAUNCHED(channel_mul_kernel);
    return PN_OK;
}

pn_status pn_cuda_channel_mul_bwd_scale(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *x = node->in[1];
    size_t planes = (size_t)(x->shape[0] * x->shape[1]), hw = (size_t)(x->shape[2] * x->shape[3]);
    channel_mul_bwd_scale_kernel<<<channel_mul_blocks(planes), CUDA_THREADS, 0, ctx->stream>>>(
        cuda_ptr(node->out[0]), cuda_ptr(node->in[0]), cuda_ptr(x), planes, hw);
    CUDA_LAUNCHED(channel_mul_bwd_scale_kernel);
    return PN_OK;
}
