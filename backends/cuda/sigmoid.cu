/* sigmoid: y = 1 / (1 + exp(-x)), in double as the ref backend. */
#include "cuda.h"

__global__ void sigmoid_kernel(float *y, const float *x, size_t n) {
    CUDA_GRID_LOOP(i, n) y[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}

pn_status pn_cuda_sigmoid(cuda_ctx *ctx, pn_node *node) {
    size_t n = cuda_numel(node->out[0]);
    sigmoid_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), cuda_ptr(node->in[0]), n);
    CUDA_LAUNCHED(sigmoid_kernel);
    return PN_OK;
}
