/* relu: y = max(x, 0) and dx = (y <= 0) ? 0 : dy, NaN propagating as in the ref backend (and PyTorch). */
#include "cuda.h"

__global__ void relu_fwd_kernel(float *y, const float *x, size_t n) {
    CUDA_GRID_LOOP(i, n) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

__global__ void relu_bwd_kernel(float *dx, const float *dy, const float *y, size_t n) {
    CUDA_GRID_LOOP(i, n) dx[i] = y[i] <= 0.0f ? 0.0f : dy[i];
}

pn_status pn_cuda_relu_fwd(cuda_ctx *ctx, pn_node *node) {
    size_t n = cuda_numel(node->out[0]);
    relu_fwd_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), cuda_ptr(node->in[0]), n);
    CUDA_LAUNCHED(relu_fwd_kernel);
    return PN_OK;
}

pn_status pn_cuda_relu_bwd(cuda_ctx *ctx, pn_node *node) {
    size_t n = cuda_numel(node->out[0]);
    relu_bwd_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), cuda_ptr(node->in[0]),
                                                                      cuda_ptr(node->in[1]), n);
    CUDA_LAUNCHED(relu_bwd_kernel);
    return PN_OK;
}
