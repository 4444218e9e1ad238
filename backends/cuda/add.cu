/* add: y = a + b elementwise (y may be a or b). */
#include "cuda.h"

__global__ void add_kernel(float *y, const float *a, const float *b, size_t n) {
    CUDA_GRID_LOOP(i, n) y[i] = a[i] + b[i];
}

pn_status pn_cuda_add(cuda_ctx *ctx, pn_node *node) {
    size_t n = cuda_numel(node->out[0]);
    add_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), cuda_ptr(node->in[0]),
                                                                 cuda_ptr(node->in[1]), n);
    CUDA_LAUNCHED(add_kernel);
    return PN_OK;
}
