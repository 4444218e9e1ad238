/* cpu batchnorm: training forward (batch statistics in double, running-stat update), inference forward and
 * backward, one channel per OpenMP task. */
#include <math.h>

#include "cpu.h"

typedef struct bn_dims {
    int64_t n, c, hw;
} bn_dims;

static bn_dims bn_dims_of(const pn_tensor *x) {
    bn_dims d = {x->shape[0], x->shape[1], x->shape[2] * x->shape[3]};
    return d;
}

/* Mean and biased variance of channel c (two passes, double). */
static void channel_stats(const float *x, bn_dims d, int64_t c, double *mean_out, double *var_out) {
    double sum = 0.0;
    for (int64_t n = 0; n < d.n; n++) {
        const float *p = x + (n * d.c + c) * d.hw;
        for (int64_t i = 0; i < d.hw; i++) sum += p[i];
    }
    double mean = sum / (double)(d.n * d.hw), sq = 0.0;
    for (int64_t n = 0; n < d.n; n++) {
        const float *p = x + (n * d.c + c) * d.hw;
        for (int64_t i = 0; i < d.hw; i++) {
            double v = p[i] - mean;
            sq += v * v;
        }
    }
    *mean_out = mean;
    *var_out = sq / (double)(d.n * d.hw);
}

/* y[c] = x[c] * scale + shift, in float. */
static void channel_affine(float *y, const float *x, bn_dims d, int64_t c, float scale, float shift) {
    for (int64_t n = 0; n < d.n; n++) {
        const float *xp = x + (n * d.c + c) * d.hw;
        float *yp = y + (n * d.c + c) * d.hw;
        for (int64_t i = 0; i < d.hw; i++) yp[i] = xp[i] * scale + shift;
    }
}

pn_status pn_cpu_batchnorm_train_fwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const pn_batchnorm_params *p = &node->p.batchnorm_train_fwd;
    bn_dims d = bn_dims_of(node->in[0]);
    float *y = cpu_ptr(node->out[0]), *save_mean = cpu_ptr(node->out[1]), *save_invstd = cpu_ptr(node->out[2]);
    float *rmean = cpu_ptr(node->out[3]), *rvar = cpu_ptr(node->out[4]);
    const float *x = cpu_ptr(node->in[0]), *gamma = cpu_ptr(node->in[1]), *beta = cpu_ptr(node->in[2]);
    double count = (double)(d.n * d.hw);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t c = 0; c < d.c; c++) {
        double mean, var;
        channel_stats(x, d, c, &mean, &var);
        double invstd = 1.0 / sqrt(var + p->eps);
        double scale = invstd * gamma[c];
        channel_affine(y, x, d, c, (float)scale, (float)(beta[c] - mean * scale));
        save_mean[c] = (float)mean;
        save_invstd[c] = (float)invstd;
        double unbiased = var * count / (count - 1.0);
        rmean[c] = (float)((1.0 - p->momentum) * rmean[c] + p->momentum * mean);
        rvar[c] = (float)((1.0 - p->momentum) * rvar[c] + p->momentum * unbiased);
    }
    return PN_OK;
}

pn_status pn_cpu_batchnorm_infer_fwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const pn_batchnorm_params *p = &node->p.batchnorm_infer_fwd;
    bn_dims d = bn_dims_of(node->in[0]);
    float *y = cpu_ptr(node->out[0]);
    const float *x = cpu_ptr(node->in[0]), *gamma = cpu_ptr(node->in[1]), *beta = cpu_ptr(node->in[2]);
    const float *rmean = cpu_ptr(node->in[3]), *rvar = cpu_ptr(node->in[4]);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t c = 0; c < d.c; c++) {
        double scale = gamma[c] / sqrt((double)rvar[c] + p->eps);
        channel_affine(y, x, d, c, (float)scale, (float)(beta[c] - rmean[c] * scale));
    }
    return PN_OK;
}

/* dx = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)), M = N*H*W. */
pn_status pn_cpu_batchnorm_bwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    bn_dims d = bn_dims_of(node->in[1]);
    float *dx = cpu_ptr(node->out[0]), *dgamma = cpu_ptr(node->out[1]), *dbeta = cpu_ptr(node->out[2]);
    const float *dy = cpu_ptr(node->in[0]), *x = cpu_ptr(node->in[1]), *gamma = cpu_ptr(node->in[2]);
    const float *save_mean = cpu_ptr(node->in[3]), *save_invstd = cpu_ptr(node->in[4]);
    double count = (double)(d.n * d.hw);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t c = 0; c < d.c; c++) {
        double mean = save_mean[c], invstd = save_invstd[c];
        double sum_dy = 0.0, sum_dy_x = 0.0;
        for (int64_t n = 0; n < d.n; n++) {
            const float *dyp = dy + (n * d.c + c) * d.hw, *xp = x + (n * d.c + c) * d.hw;
            for (int64_t i = 0; i < d.hw; i++) {
                sum_dy += dyp[i];
                sum_dy_x += (double)dyp[i] * xp[i];
            }
        }
        double sum_dy_xhat = (sum_dy_x - mean * sum_dy) * invstd;
        /* dx = a * dy + b * x + c0, folded per channel */
        double k = gamma[c] * invstd / count;
        double a = k * count, b = -k * sum_dy_xhat * invstd, c0 = -k * sum_dy + k * sum_dy_xhat * invstd * mean;
        for (int64_t n = 0; n < d.n; n++) {
            const float *dyp = dy + (n * d.c + c) * d.hw, *xp = x + (n * d.c + c) * d.hw;
            float *dxp = dx + (n * d.c + c) * d.hw;
            for (int64_t i = 0; i < d.hw; i++) dxp[i] = (float)(a * dyp[i] + b * xp[i] + c0);
        }
        dgamma[c] += (float)sum_dy_xhat;
        dbeta[c] += (float)sum_dy;
    }
    return PN_OK;
}
