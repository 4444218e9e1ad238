/* ref batchnorm: training forward (batch statistics, running-stat update), apply with saved statistics, inference
 * forward, backward. */
#include <math.h>

#include "ref.h"

/* Elements of channel c of an NCHW tensor are x[(n*C + c)*HW + i]. */
typedef struct bn_dims {
    int64_t n, c, hw;
} bn_dims;

static bn_dims bn_dims_of(const pn_tensor *x) {
    bn_dims d = {x->shape[0], x->shape[1], x->shape[2] * x->shape[3]};
    return d;
}

static double channel_mean(const float *x, bn_dims d, int64_t c) {
    double sum = 0.0;
    for (int64_t n = 0; n < d.n; n++)
        for (int64_t i = 0; i < d.hw; i++) sum += x[(n * d.c + c) * d.hw + i];
    return sum / (double)(d.n * d.hw);
}

static double channel_var(const float *x, bn_dims d, int64_t c, double mean) {
    double sum = 0.0;
    for (int64_t n = 0; n < d.n; n++)
        for (int64_t i = 0; i < d.hw; i++) {
            double v = x[(n * d.c + c) * d.hw + i] - mean;
            sum += v * v;
        }
    return sum / (double)(d.n * d.hw);
}

pn_status pn_ref_batchnorm_train_fwd(pn_node *node) {
    const pn_batchnorm_params *p = &node->p.batchnorm_train_fwd;
    bn_dims d = bn_dims_of(node->in[0]);
    float *y = ref_ptr(node->out[0]), *save_mean = ref_ptr(node->out[1]), *save_invstd = ref_ptr(node->out[2]);
    float *rmean = ref_ptr(node->out[3]), *rvar = ref_ptr(node->out[4]);
    const float *x = ref_ptr(node->in[0]), *gamma = ref_ptr(node->in[1]), *beta = ref_ptr(node->in[2]);
    double count = (double)(d.n * d.hw);
    for (int64_t c = 0; c < d.c; c++) {
        double mean = channel_mean(x, d, c);
        double var = channel_var(x, d, c, mean);
        double invstd = 1.0 / sqrt(var + p->eps);
        for (int64_t n = 0; n < d.n; n++)
            for (int64_t i = 0; i < d.hw; i++) {
                int64_t at = (n * d.c + c) * d.hw + i;
                y[at] = (float)((x[at] - mean) * invstd * gamma[c] + beta[c]);
            }
        save_mean[c] = (float)mean;
        save_invstd[c] = (float)invstd;
        double unbiased = var * count / (count - 1.0);
        rmean[c] = (float)((1.0 - p->momentum) * rmean[c] + p->momentum * mean);
        rvar[c] = (float)((1.0 - p->momentum) * rvar[c] + p->momentum * unbiased);
    }
    return PN_OK;
}

pn_status pn_ref_batchnorm_infer_fwd(pn_node *node) {
    const pn_batchnorm_params *p = &node->p.batchnorm_infer_fwd;
    bn_dims d = bn_dims_of(node->in[0]);
    float *y = ref_ptr(node->out[0]);
    const float *x = ref_ptr(node->in[0]), *gamma = ref_ptr(node->in[1]), *beta = ref_ptr(node->in[2]);
    const float *rmean = ref_ptr(node->in[3]), *rvar = ref_ptr(node->in[4]);
    for (int64_t c = 0; c < d.c; c++) {
        double invstd = 1.0 / sqrt((double)rvar[c] + p->eps);
        for (int64_t n = 0; n < d.n; n++)
            for (int64_t i = 0; i < d.hw; i++) {
                int64_t at = (n * d.c + c) * d.hw + i;
                y[at] = (float)((x[at] - (double)rmean[c]) * invstd * gamma[c] + beta[c]);
            }
    }
    return PN_OK;
}

pn_status pn_ref_batchnorm_apply(pn_node *node) {
    bn_dims d = bn_dims_of(node->in[0]);
    float *y = ref_ptr(node->out[0]);
    const float *x = ref_ptr(node->in[0]), *gamma = ref_ptr(node->in[1]), *beta = ref_ptr(node->in[2]);
    const float *mean = ref_ptr(node->in[3]), *invstd = ref_ptr(node->in[4]);
    for (int64_t c = 0; c < d.c; c++)
        for (int64_t n = 0; n < d.n; n++)
            for (int64_t i = 0; i < d.hw; i++) {
                int64_t at = (n * d.c + c) * d.hw + i;
                y[at] = (float)((x[at] - (double)mean[c]) * (double)invstd[c] * gamma[c] + beta[c]);
            }
    return PN_OK;
}

/* dx = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)), M = N*H*W. */
pn_status pn_ref_batchnorm_bwd(pn_node *node) {
    bn_dims d = bn_dims_of(node->in[1]);
    float *dx = ref_ptr(node->out[0]), *dgamma = ref_ptr(node->out[1]), *dbeta = ref_ptr(node->out[2]);
    const float *dy = ref_ptr(node->in[0]), *x = ref_ptr(node->in[1]), *gamma = ref_ptr(node->in[2]);
    const float *save_mean = ref_ptr(node->in[3]), *save_invstd = ref_ptr(node->in[4]);
    double count = (double)(d.n * d.hw);
    for (int64_t c = 0; c < d.c; c++) {
        double mean = save_mean[c], invstd = save_invstd[c];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int64_t n = 0; n < d.n; n++)
            for (int64_t i = 0; i < d.hw; i++) {
                int64_t at = (n * d.c + c) * d.hw + i;
                sum_dy += dy[at];
                sum_dy_xhat += dy[at] * (x[at] - mean) * invstd;
            }
        double k = gamma[c] * invstd / count;
        for (int64_t n = 0; n < d.n; n++)
            for (int64_t i = 0; i < d.hw; i++) {
                int64_t at = (n * d.c + c) * d.hw + i;
                double xhat = (x[at] - mean) * invstd;
                dx[at] = (float)(k * (count * dy[at] - sum_dy - xhat * sum_dy_xhat));
            }
        dgamma[c] += (float)sum_dy_xhat;
        dbeta[c] += (float)sum_dy;
    }
    return PN_OK;
}
