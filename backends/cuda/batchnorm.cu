/* batchnorm: training forward (batch statistics in double, biased variance to normalise, unbiased for
 * running_var, momentum update), inference forward and backward, with the ref backend's formulas. Own kernels
 * rather than cuDNN so the arithmetic and the running-statistics rules are exactly PyTorch's. */
#include <math.h>

#include "cuda.h"
#include "reduce.cuh"

/* Channel c of an NCHW tensor: elements (n*C + c)*HW + i. One block per channel for the statistics. */
typedef struct bn_dims {
    size_t n, c, hw;
} bn_dims;

static bn_dims bn_dims_of(const pn_tensor *x) {
    bn_dims d = {(size_t)x->shape[0], (size_t)x->shape[1], (size_t)(x->shape[2] * x->shape[3])};
    return d;
}

__device__ size_t bn_at(const bn_dims &d, size_t c, size_t j) { return ((j / d.hw) * d.c + c) * d.hw + j % d.hw; }

/* Block c: mean and biased variance of channel c (two passes, as ref), the saved statistics, the running-stat
 * update, and mean / invstd in double into stats[c], stats[C + c] for the normalisation kernel. */
__global__ void bn_stats_kernel(double *stats, float *save_mean, float *save_invstd, float *rmean, float *rvar,
                                const float *x, bn_dims d, float eps, float momentum) {
    size_t c = blockIdx.x, count = d.n * d.hw;
    double v[1] = {0.0};
    for (size_t j = threadIdx.x; j < count; j += CUDA_THREADS) v[0] += x[bn_at(d, c, j)];
    cuda_block_sum<1>(v);
    __shared__ double mean_s;
    if (threadIdx.x == 0) mean_s = v[0] / (double)count;
    __syncthreads();
    double mean = mean_s;
    v[0] = 0.0;
    for (size_t j = threadIdx.x; j < count; j += CUDA_THREADS) {
        double dv = x[bn_at(d, c, j)] - mean;
        v[0] += dv * dv;
    }
    cuda_block_sum<1>(v);
    if (threadIdx.x != 0) return;
    double var = v[0] / (double)count;
    double invstd = 1.0 / sqrt(var + eps);
    stats[c] = mean;
    stats[d.c + c] = invstd;
    save_mean[c] = (float)mean;
    save_invstd[c] = (float)invstd;
    double unbiased = var * (double)count / ((double)count - 1.0);
    rmean[c] = (float)((1.0 - momentum) * rmean[c] + momentum * mean);
    rvar[c] = (float)((1.0 - momentum) * rvar[c] + momentum * unbiased);
}

__global__ void bn_train_norm_kernel(float *y, const float *x, const double *stats, const float *gamma,
                                     const float *beta, bn_dims d) {
    CUDA_GRID_LOOP(i, d.n * d.c * d.hw) {
        size_t c = i / d.hw % d.c;
        y[i] = (float)((x[i] - stats[c]) * stats[d.c + c] * gamma[c] + beta[c]);
    }
}

__global__ void bn_infer_kernel(float *y, const float *x, const float *gamma, const float *beta, const float *rmean,
                                const float *rvar, bn_dims d, float eps) {
    CUDA_GRID_LOOP(i, d.n * d.c * d.hw) {
        size_t c = i / d.hw % d.c;
        double invstd = 1.0 / sqrt((double)rvar[c] + eps);
        y[i] = (float)((x[i] - (double)rmean[c]) * invstd * gamma[c] + beta[c]);
    }
}

/* Block c: sum(dy) and sum(dy * xhat) into sums[c], sums[C + c]; dgamma += , dbeta += (accumulate). */
__global__ void bn_bwd_sums_kernel(double *sums, float *dgamma, float *dbeta, const float *dy, const float *x,
                                   const float *save_mean, const float *save_invstd, bn_dims d) {
    size_t c = blockIdx.x, count = d.n * d.hw;
    double mean = save_mean[c], invstd = save_invstd[c];
    double v[2] = {0.0, 0.0};
    for (size_t j = threadIdx.x; j < count; j += CUDA_THREADS) {
        size_t at = bn_at(d, c, j);
        v[0] += dy[at];
        v[1] += dy[at] * (x[at] - mean) * invstd;
    }
    cuda_block_sum<2>(v);
    if (threadIdx.x != 0) return;
    sums[c] = v[0];
    sums[d.c + c] = v[1];
    dgamma[c] += (float)v[1];
    dbeta[c] += (float)v[0];
}

/* dx = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)), M = N*H*W. */
__global__ void bn_bwd_dx_kernel(float *dx, const float *dy, const float *x, const float *gamma,
                                 const float *save_mean, const float *save_invstd, const double *sums, bn_dims d) {
    double count = (double)(d.n * d.hw);
    CUDA_GRID_LOOP(i, d.n * d.c * d.hw) {
        size_t c = i / d.hw % d.c;
        double mean = save_mean[c], invstd = save_invstd[c];
        double k = gamma[c] * invstd / count;
        double xhat = (x[i] - mean) * invstd;
        dx[i] = (float)(k * (count * dy[i] - sums[c] - xhat * sums[d.c + c]));
    }
}

pn_status pn_cuda_batchnorm_train_fwd(cuda_ctx *ctx, pn_node *node) {
    const pn_batchnorm_params *p = &node->p.batchnorm_train_fwd;
    bn_dims d = bn_dims_of(node->in[0]);
    bn_stats_kernel<<<(unsigned)d.c, CUDA_THREADS, 0, ctx->stream>>>(
        ctx->reduce, cuda_ptr(node->out[1]), cuda_ptr(node->out[2]), cuda_ptr(node->out[3]), cuda_ptr(node->out[4]),
        cuda_ptr(node->in[0]), d, p->eps, p->momentum);
    CUDA_LAUNCHED(bn_stats_kernel);
    bn_train_norm_kernel<<<cuda_blocks(d.n * d.c * d.hw), CUDA_THREADS, 0, ctx->stream>>>(
        cuda_ptr(node->out[0]), cuda_ptr(node->in[0]), ctx->reduce, cuda_ptr(node->in[1]), cuda_ptr(node->in[2]), d);
    CUDA_LAUNCHED(bn_train_norm_kernel);
    return PN_OK;
}

pn_status pn_cuda_batchnorm_infer_fwd(cuda_ctx *ctx, pn_node *node) {
    bn_dims d = bn_dims_of(node->in[0]);
    bn_infer_kernel<<<cuda_blocks(d.n * d.c * d.hw), CUDA_THREADS, 0, ctx->stream>>>(
        cuda_ptr(node->out[0]), cuda_ptr(node->in[0]), cuda_ptr(node->in[1]), cuda_ptr(node->in[2]),
        cuda_ptr(node->in[3]), cuda_ptr(node->in[4]), d, node->p.batchnorm_infer_fwd.eps);
    CUDA_LAUNCHED(bn_infer_kernel);
    return PN_OK;
}

pn_status pn_cuda_batchnorm_bwd(cuda_ctx *ctx, pn_node *node) {
    bn_dims d = bn_dims_of(node->in[1]);
    bn_bwd_sums_kernel<<<(unsigned)d.c, CUDA_THREADS, 0, ctx->stream>>>(
        ctx->reduce, cuda_ptr(node->out[1]), cuda_ptr(node->out[2]), cuda_ptr(node->in[0]), cuda_ptr(node->in[1]),
        cuda_ptr(node->in[3]), cuda_ptr(node->in[4]), d);
    CUDA_LAUNCHED(bn_bwd_sums_kernel);
    bn_bwd_dx_kernel<<<cuda_blocks(d.n * d.c * d.hw), CUDA_THREADS, 0, ctx->stream>>>(
        cuda_ptr(node->out[0]), cuda_ptr(node->in[0]), cuda_ptr(node->in[1]), cuda_ptr(node->in[2]),
        cuda_ptr(node->in[3]), cuda_ptr(node->in[4]), ctx->reduce, d);
    CUDA_LAUNCHED(bn_bwd_dx_kernel);
    return PN_OK;
}
