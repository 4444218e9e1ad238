/* sigmoid: y = 1 / (1 + exp(-x)) and its backward dx = dy * y * (1 - y), in double as the ref backend. */
#include "cuda.h"

__global__ void sigmoid_kernel(float *y, const float *x, size_t n) {
    CUDA_GRID_LOOP(i, n) y[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}

/* dx may be dy: each element is read before it is written, by the same thread. */
__global__ void sigmoid_bwd_kernel(float *dx, const float *dy, const float *y, size_t n) {
    CUDA_GRID_LOOP(i, n) dx[i] = (float)((double)dy[i] * (double)y[i] * (1.0 - (double)y[i]));
}

pn_status pn_cuda_sigmoid(cuda_ctx *ctx, pn_node *node) {
    size_t n = cuda_numel(node->out[0]);
    sigmoid_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), cuda_ptr(node->in[0]), n);
    CUDA_LAUNCHED(sigmoid_kernel);
    return PN_OK;
}

pn_status pn_cuda_sigmoid_bwd(cuda_ctx *ctx, pn_node *node) {
    size_t n = cuda_numel(node->out[0]);
    sigmoid_bwd_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), cuda_ptr(node->in[0]),
                                                                         cuda_ptr(node->in[1]), n);
    CUDA_LAUNCHED(sigmoid_bwd_kernel);
    return PN_OK;
}
