/* batchnorm: training forward (batch statistics in double, biased variance to normalise, unbiased for
 * running_var, momentum update), apply with the saved statistics, inference forward and backward, with the ref
 * backend's formulas. Own kernels rather than cuDNN so the arithmetic and the running-statistics rules are exactly
 * PyTorch's. */
#include <math.h>

#include "cuda.h"
#include "reduce.cuh"

/* Channel c of an NCHW tensor: elements (n*C + c)*HW + i. The statistics are per-channel sums split over
 * several blocks per channel (reduce.cuh), added in a fixed order. */
typedef struct bn_dims {
    size_t n, c, hw;
} bn_dims;

static bn_dims bn_dims_of(const pn_tensor *x) {
    bn_dims d = {(size_t)x->shape[0], (size_t)x->shape[1], (size_t)(x->shape[2] * x->shape[3])};
    return d;
}

/* Scratch layout in ctx->reduce: stats (mean, invstd; or sum_dy, sum_dy_xhat) at [0, 2C), partials after. */
static double *bn_partials(cuda_ctx *ctx, const bn_dims &d) { return ctx->reduce + 2 * d.c; }
static size_t bn_room(const bn_dims &d) { return CUDA_REDUCE_DOUBLES - 2 * d.c; }

struct bn_sum_x {
    const float *x;
    __device__ void operator()(size_t c, size_t at, double *v) const {
        (void)c;
        v[0] += x[at];
    }
};

struct bn_sum_sqdev {
    const float *x;
    const double *mean;
    __device__ void operator()(size_t c, size_t at, double *v) const {
        double dv = x[at] - mean[c];
        v[0] += dv * dv;
    }
};

struct bn_sum_bwd {
    const float *dy, *x, *save_mean, *save_invstd;
    __device__ void operator()(size_t c, size_t at, double *v) const {
        double mean = save_mean[c], invstd = save_invstd[c];
        v[0] += dy[at];
        v[1] += dy[at] * (x[at] - mean) * invstd;
    }
};

/* Channel means into stats[c]. */
__global__ void bn_mean_kernel(double *stats, const double *partials, unsigned chunks, bn_dims d) {
    CUDA_GRID_LOOP(c, d.c) {
        double v[1];
        cuda_channel_total<1>(partials, c, chunks, v);
        stats[c] = v[0] / (double)(d.n * d.hw);
    }
}

/* The biased variance normalises (invstd into stats[C + c] and save_invstd), the unbiased one goes into
 * running_var; running = (1 - momentum) * running + momentum * batch, as ref. */
__global__ void bn_finish_kernel(double *stats, float *save_mean, float *save_invstd, float *rmean, float *rvar,
                                 const double *partials, unsigned chunks, bn_dims d, float eps, float momentum) {
    CUDA_GRID_LOOP(c, d.c) {
        double v[1], count = (double)(d.n * d.hw), mean = stats[c];
        cuda_channel_total<1>(partials, c, chunks, v);
        double var = v[0] / count;
        double invstd = 1.0 / sqrt(var + eps);
        stats[d.c + c] = invstd;
        save_mean[c] = (float)mean;
        save_invstd[c] = (float)invstd;
        double unbiased = var * count / (count - 1.0);
        rmean[c] = (float)((1.0 - momentum) * rmean[c] + momentum * mean);
        rvar[c] = (float)((1.0 - momentum) * rvar[c] + momentum * unbiased);
    }
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

/* y = (x - mean) * invstd * gamma + beta with the saved float statistics, as ref (y may be x). */
__global__ void bn_apply_kernel(float *y, const float *x, const float *gamma, const float *beta, const float *mean,
                                const float *invstd, bn_dims d) {
    CUDA_GRID_LOOP(i, d.n * d.c * d.hw) {
        size_t c = i / d.hw % d.c;
        y[i] = (float)((x[i] - (double)mean[c]) * (double)invstd[c] * gamma[c] + beta[c]);
    }
}

/* sum(dy), sum(dy * xhat) per channel into sums[c], sums[C + c]; dgamma += , dbeta += (accumulate). */
__global__ void bn_bwd_finish_kernel(double *sums, float *dgamma, float *dbeta, const double *partials, unsigned chunks,
                                     bn_dims d) {
    CUDA_GRID_LOOP(c, d.c) {
        double v[2];
        cuda_channel_total<2>(partials, c, chunks, v);
        sums[c] = v[0];
        sums[d.c + c] = v[1];
        dgamma[c] += (float)v[1];
        dbeta[c] += (float)v[0];
    }
}

/* dx = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)), M = N*H*W. */
__global__ void bn_bwd_dx_kernel(float *dx, const float *dy, const float *x, const float *gamma, const float *save_mean,
                                 const float *save_invstd, const double *sums, bn_dims d) {
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
    const float *x = cuda_ptr(node->in[0]);
    bn_dims d = bn_dims_of(node->in[0]);
    size_t count = d.n * d.hw;
    unsigned chunks = cuda_channel_chunks(d.c, count, 1, bn_room(d));
    dim3 grid((unsigned)d.c, chunks);
    double *stats = ctx->reduce, *partials = bn_partials(ctx, d);
    /* two passes as ref: the mean, then the mean squared deviation from it */
    cuda_channel_partials<1><<<grid, CUDA_THREADS, 0, ctx->stream>>>(partials, d.c, d.hw, count, chunks, bn_sum_x{x});
    CUDA_LAUNCHED(cuda_channel_partials);
    bn_mean_kernel<<<cuda_blocks(d.c), CUDA_THREADS, 0, ctx->stream>>>(stats, partials, chunks, d);
    CUDA_LAUNCHED(bn_mean_kernel);
    cuda_channel_partials<1>
        <<<grid, CUDA_THREADS, 0, ctx->stream>>>(partials, d.c, d.hw, count, chunks, bn_sum_sqdev{x, stats});
    CUDA_LAUNCHED(cuda_channel_partials);
    bn_finish_kernel<<<cuda_blocks(d.c), CUDA_THREADS, 0, ctx->stream>>>(
        stats, cuda_ptr(node->out[1]), cuda_ptr(node->out[2]), cuda_ptr(node->out[3]), cuda_ptr(node->out[4]), partials,
        chunks, d, p->eps, p->momentum);
    CUDA_LAUNCHED(bn_finish_kernel);
    bn_train_norm_kernel<<<cuda_blocks(d.n * d.c * d.hw), CUDA_THREADS, 0, ctx->stream>>>(
        cuda_ptr(node->out[0]), x, stats, cuda_ptr(node->in[1]), cuda_ptr(node->in[2]), d);
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

pn_status pn_cuda_batchnorm_apply(cuda_ctx *ctx, pn_node *node) {
    bn_dims d = bn_dims_of(node->in[0]);
    bn_apply_kernel<<<cuda_blocks(d.n * d.c * d.hw), CUDA_THREADS, 0, ctx->stream>>>(
        cuda_ptr(node->out[0]), cuda_ptr(node->in[0]), cuda_ptr(node->in[1]), cuda_ptr(node->in[2]),
        cuda_ptr(node->in[3]), cuda_ptr(node->in[4]), d);
    CUDA_LAUNCHED(bn_apply_kernel);
    return PN_OK;
}

pn_status pn_cuda_batchnorm_bwd(cuda_ctx *ctx, pn_node *node) {
    bn_dims d = bn_dims_of(node->in[1]);
    size_t count = d.n * d.hw;
    unsigned chunks = cuda_channel_chunks(d.c, count, 2, bn_room(d));
    dim3 grid((unsigned)d.c, chunks);
    double *sums = ctx->reduce, *partials = bn_partials(ctx, d);
    bn_sum_bwd f = {cuda_ptr(node->in[0]), cuda_ptr(node->in[1]), cuda_ptr(node->in[3]), cuda_ptr(node->in[4])};
    cuda_channel_partials<2><<<grid, CUDA_THREADS, 0, ctx->stream>>>(partials, d.c, d.hw, count, chunks, f);
    CUDA_LAUNCHED(cuda_channel_partials);
    bn_bwd_finish_kernel<<<cuda_blocks(d.c), CUDA_THREADS, 0, ctx->stream>>>(
        sums, cuda_ptr(node->out[1]), cuda_ptr(node->out[2]), partials, chunks, d);
    CUDA_LAUNCHED(bn_bwd_finish_kernel);
    bn_bwd_dx_kernel<<<cuda_blocks(d.n * d.c * d.hw), CUDA_THREADS, 0, ctx->stream>>>(
        cuda_ptr(node->out[0]), cuda_ptr(node->in[0]), cuda_ptr(node->in[1]), cuda_ptr(node->in[2]),
        cuda_ptr(node->in[3]), cuda_ptr(node->in[4]), sums, d);
    CUDA_LAUNCHED(bn_bwd_dx_kernel);
    return PN_OK;
}
