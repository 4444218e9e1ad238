/* blas1: fill, scale, axpy and the sum of squares (two-stage, in double, deterministic) over flat tensors. */
#include "cuda.h"
#include "reduce.cuh"

__global__ void fill_kernel(float *x, size_t n, float value) { CUDA_GRID_LOOP(i, n) x[i] = value; }

__global__ void scale_kernel(float *y, const float *x, size_t n, float alpha) {
    CUDA_GRID_LOOP(i, n) y[i] = alpha * x[i];
}

__global__ void axpy_kernel(float *y, const float *x, size_t n, float alpha) {
    CUDA_GRID_LOOP(i, n) y[i] += alpha * x[i];
}

__global__ void sum_squares_partial_kernel(double *partials, const float *x, size_t n) {
    double v[1] = {0.0};
    CUDA_GRID_LOOP(i, n) v[0] += (double)x[i] * x[i];
    cuda_block_sum<1>(v);
    if (threadIdx.x == 0) partials[blockIdx.x] = v[0];
}

__global__ void sum_squares_final_kernel(float *s, const double *partials, unsigned blocks) {
    double v[1];
    cuda_sum_partials<1>(partials, blocks, v);
    if (threadIdx.x == 0) s[0] = (float)v[0];
}

pn_status pn_cuda_fill(cuda_ctx *ctx, pn_node *node) {
    size_t n = cuda_numel(node->out[0]);
    fill_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), n, node->p.fill.value);
    CUDA_LAUNCHED(fill_kernel);
    return PN_OK;
}

pn_status pn_cuda_scale(cuda_ctx *ctx, pn_node *node) {
    size_t n = cuda_numel(node->out[0]);
    scale_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), cuda_ptr(node->in[0]), n,
                                                                   node->p.scale.alpha);
    CUDA_LAUNCHED(scale_kernel);
    return PN_OK;
}

pn_status pn_cuda_axpy(cuda_ctx *ctx, pn_node *node) {
    size_t n = cuda_numel(node->out[0]);
    axpy_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), cuda_ptr(node->in[0]), n,
                                                                  node->p.axpy.alpha);
    CUDA_LAUNCHED(axpy_kernel);
    return PN_OK;
}

pn_status pn_cuda_sum_squares(cuda_ctx *ctx, pn_node *node) {
    size_t n = cuda_numel(node->in[0]);
    unsigned blocks = cuda_blocks(n);
    sum_squares_partial_kernel<<<blocks, CUDA_THREADS, 0, ctx->stream>>>(ctx->reduce, cuda_ptr(node->in[0]), n);
    CUDA_LAUNCHED(sum_squares_partial_kernel);
    sum_squares_final_kernel<<<1, CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), ctx->reduce, blocks);
    CUDA_LAUNCHED(sum_squares_final_kernel);
    return PN_OK;
}
