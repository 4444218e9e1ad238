/* global_avg_pool: the mean of each (image, channel) plane, summed in double by one block per plane (reduce.cuh's
 * fixed tree order, so results repeat bit for bit), and its backward dx = dy / (H*W) at every pixel, as ref. */
#include "cuda.h"
#include "reduce.cuh"

/* Blocks for a kernel that gives each plane one block (grid-stride over planes beyond that). */
static unsigned gap_blocks(size_t planes) { return (unsigned)(planes < 4096 ? (planes ? planes : 1) : 4096); }

__global__ void gap_fwd_kernel(float *y, const float *x, size_t planes, size_t hw) {
    for (size_t pl = blockIdx.x; pl < planes; pl += gridDim.x) {
        const float *p = x + pl * hw;
        double v[1] = {0.0};
        for (size_t i = threadIdx.x; i < hw; i += CUDA_THREADS) v[0] += p[i];
        cuda_block_sum<1>(v);
        if (threadIdx.x == 0) y[pl] = (float)(v[0] / (double)hw);
    }
}

__global__ void gap_bwd_kernel(float *dx, const float *dy, size_t planes, size_t hw) {
    CUDA_GRID_LOOP(i, planes * hw) dx[i] = (float)((double)dy[i / hw] / (double)hw);
}

pn_status pn_cuda_global_avg_pool_fwd(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *x = node->in[0];
    size_t planes = (size_t)(x->shape[0] * x->shape[1]), hw = (size_t)(x->shape[2] * x->shape[3]);
    gap_fwd_kernel<<<gap_blocks(planes), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), cuda_ptr(x), planes,
                                                                         hw);
    CUDA_LAUNCHED(gap_fwd_kernel);
    return PN_OK;
}

pn_status pn_cuda_global_avg_pool_bwd(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *dx = node->out[0];
    size_t planes = (size_t)(dx->shape[0] * dx->shape[1]), hw = (size_t)(dx->shape[2] * dx->shape[3]);
    gap_bwd_kernel<<<cuda_blocks(planes * hw), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(dx), cuda_ptr(node->in[0]),
                                                                               planes, hw);
    CUDA_LAUNCHED(gap_bwd_kernel);
    return PN_OK;
}
