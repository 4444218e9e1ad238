/* cpu batchnorm: training forward (batch statistics in double, running-stat update), apply with saved statistics,
 * inference forward and backward, on the tensor's own layout (plain or channel-blocked); one channel block per OpenMP
 * task. */
#include <math.h>

#include "cpu.h"

#define MAXB 16

/* x is N x C x HW stored with channel block b; block cb holds channels cb*b .. cb*b+b-1. */
typedef struct bn_dims {
    int64_t n, c, hw, b;
} bn_dims;

static bn_dims bn_dims_of(cpu_ctx *ctx, const pn_tensor *x) {
    bn_dims d = {x->shape[0], x->shape[1], x->shape[2] * x->shape[3], cpu_blk(ctx, x)};
    return d;
}

/* The start of image n's run of channel block cb (b lanes per pixel). */
static int64_t block_at(bn_dims d, int64_t n, int64_t cb) { return (n * (d.c / d.b) + cb) * d.hw * d.b; }

/* Per-lane sums of x and of (x - mean)^2 over the block's channels. */
static void block_stats(const float *x, bn_dims d, int64_t cb, double *mean, double *var) {
    double sum[MAXB] = {0}, sq[MAXB] = {0};
    for (int64_t n = 0; n < d.n; n++) {
        const float *p = x + block_at(d, n, cb);
        for (int64_t i = 0; i < d.hw; i++)
            for (int64_t l = 0; l < d.b; l++) sum[l] += p[i * d.b + l];
    }
    double count = (double)(d.n * d.hw);
    for (int64_t l = 0; l < d.b; l++) mean[l] = sum[l] / count;
    for (int64_t n = 0; n < d.n; n++) {
        const float *p = x + block_at(d, n, cb);
        for (int64_t i = 0; i < d.hw; i++)
            for (int64_t l = 0; l < d.b; l++) {
                double v = p[i * d.b + l] - mean[l];
                sq[l] += v * v;
            }
    }
    for (int64_t l = 0; l < d.b; l++) var[l] = sq[l] / count;
}

/* y = x * scale[lane] + shift[lane] over one channel block, in float. */
static void block_affine(float *y, const float *x, bn_dims d, int64_t cb, const float *scale, const float *shift) {
    for (int64_t n = 0; n < d.n; n++) {
        const float *xp = x + block_at(d, n, cb);
        float *yp = y + block_at(d, n, cb);
        for (int64_t i = 0; i < d.hw; i++)
            for (int64_t l = 0; l < d.b; l++) yp[i * d.b + l] = xp[i * d.b + l] * scale[l] + shift[l];
    }
}

pn_status pn_cpu_batchnorm_train_fwd(cpu_ctx *ctx, pn_node *node) {
    const pn_batchnorm_params *p = &node->p.batchnorm_train_fwd;
    bn_dims d = bn_dims_of(ctx, node->in[0]);
    float *y = cpu_ptr(node->out[0]), *save_mean = cpu_ptr(node->out[1]), *save_invstd = cpu_ptr(node->out[2]);
    float *rmean = cpu_ptr(node->out[3]), *rvar = cpu_ptr(node->out[4]);
    const float *x = cpu_ptr(node->in[0]), *gamma = cpu_ptr(node->in[1]), *beta = cpu_ptr(node->in[2]);
    double count = (double)(d.n * d.hw);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t cb = 0; cb < d.c / d.b; cb++) {
        double mean[MAXB], var[MAXB];
        float scale[MAXB], shift[MAXB];
        block_stats(x, d, cb, mean, var);
        for (int64_t l = 0; l < d.b; l++) {
            int64_t c = cb * d.b + l;
            double invstd = 1.0 / sqrt(var[l] + p->eps), s = invstd * gamma[c];
            scale[l] = (float)s;
            shift[l] = (float)(beta[c] - mean[l] * s);
            save_mean[c] = (float)mean[l];
            save_invstd[c] = (float)invstd;
            double unbiased = var[l] * count / (count - 1.0);
            rmean[c] = (float)((1.0 - p->momentum) * rmean[c] + p->momentum * mean[l]);
            rvar[c] = (float)((1.0 - p->momentum) * rvar[c] + p->momentum * unbiased);
        }
        block_affine(y, x, d, cb, scale, shift);
    }
    return PN_OK;
}

/* The train forward's y recomputed from the float statistics it saved: the same float scale and shift up to the
 * rounding of the statistics (about 1e-7 relative). */
pn_status pn_cpu_batchnorm_apply(cpu_ctx *ctx, pn_node *node) {
    bn_dims d = bn_dims_of(ctx, node->in[0]);
    float *y = cpu_ptr(node->out[0]);
    const float *x = cpu_ptr(node->in[0]), *gamma = cpu_ptr(node->in[1]), *beta = cpu_ptr(node->in[2]);
    const float *mean = cpu_ptr(node->in[3]), *invstd = cpu_ptr(node->in[4]);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t cb = 0; cb < d.c / d.b; cb++) {
        float scale[MAXB], shift[MAXB];
        for (int64_t l = 0; l < d.b; l++) {
            int64_t c = cb * d.b + l;
            double s = (double)invstd[c] * gamma[c];
            scale[l] = (float)s;
            shift[l] = (float)(beta[c] - mean[c] * s);
        }
        block_affine(y, x, d, cb, scale, shift);
    }
    return PN_OK;
}

pn_status pn_cpu_batchnorm_infer_fwd(cpu_ctx *ctx, pn_node *node) {
    const pn_batchnorm_params *p = &node->p.batchnorm_infer_fwd;
    bn_dims d = bn_dims_of(ctx, node->in[0]);
    float *y = cpu_ptr(node->out[0]);
    const float *x = cpu_ptr(node->in[0]), *gamma = cpu_ptr(node->in[1]), *beta = cpu_ptr(node->in[2]);
    const float *rmean = cpu_ptr(node->in[3]), *rvar = cpu_ptr(node->in[4]);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t cb = 0; cb < d.c / d.b; cb++) {
        float scale[MAXB], shift[MAXB];
        for (int64_t l = 0; l < d.b; l++) {
            int64_t c = cb * d.b + l;
            double s = gamma[c] / sqrt((double)rvar[c] + p->eps);
            scale[l] = (float)s;
            shift[l] = (float)(beta[c] - rmean[c] * s);
        }
        block_affine(y, x, d, cb, scale, shift);
    }
    return PN_OK;
}

/* dx = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)), M = N*H*W; the same expression order
 * as ref, so Inf and NaN propagate the same way. */
pn_status pn_cpu_batchnorm_bwd(cpu_ctx *ctx, pn_node *node) {
    bn_dims d = bn_dims_of(ctx, node->in[1]);
    float *dx = cpu_ptr(node->out[0]), *dgamma = cpu_ptr(node->out[1]), *dbeta = cpu_ptr(node->out[2]);
    const float *dy = cpu_ptr(node->in[0]), *x = cpu_ptr(node->in[1]), *gamma = cpu_ptr(node->in[2]);
    const float *save_mean = cpu_ptr(node->in[3]), *save_invstd = cpu_ptr(node->in[4]);
    double count = (double)(d.n * d.hw);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t cb = 0; cb < d.c / d.b; cb++) {
        double sum_dy[MAXB] = {0}, sum_dy_xhat[MAXB] = {0}, mean[MAXB], invstd[MAXB], k[MAXB];
        for (int64_t l = 0; l < d.b; l++) {
            mean[l] = save_mean[cb * d.b + l];
            invstd[l] = save_invstd[cb * d.b + l];
            k[l] = gamma[cb * d.b + l] * invstd[l] / count;
        }
        for (int64_t n = 0; n < d.n; n++) {
            const float *dyp = dy + block_at(d, n, cb), *xp = x + block_at(d, n, cb);
            for (int64_t i = 0; i < d.hw * d.b; i += d.b)
                for (int64_t l = 0; l < d.b; l++) {
                    sum_dy[l] += dyp[i + l];
                    sum_dy_xhat[l] += dyp[i + l] * (xp[i + l] - mean[l]) * invstd[l];
                }
        }
        for (int64_t n = 0; n < d.n; n++) {
            const float *dyp = dy + block_at(d, n, cb), *xp = x + block_at(d, n, cb);
            float *dxp = dx + block_at(d, n, cb);
            for (int64_t i = 0; i < d.hw * d.b; i += d.b)
                for (int64_t l = 0; l < d.b; l++) {
                    double xhat = (xp[i + l] - mean[l]) * invstd[l];
                    dxp[i + l] = (float)(k[l] * (count * dyp[i + l] - sum_dy[l] - xhat * sum_dy_xhat[l]));
                }
        }
        for (int64_t l = 0; l < d.b; l++) {
            dgamma[cb * d.b + l] += (float)sum_dy_xhat[l];
            dbeta[cb * d.b + l] += (float)sum_dy[l];
        }
    }
    return PN_OK;
}
