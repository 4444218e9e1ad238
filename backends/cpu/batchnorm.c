/* cpu batchnorm: training forward (batch statistics in double, running-stat update), apply with saved statistics,
 * inference forward and backward, on the tensor's own layout (plain or channel-blocked); one (channel block, image)
 * run per OpenMP task. A ReLU joined to it (relu_join.c) is applied in the forward's write / computed in the
 * backward's first pass. */
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

/* The work of one channel block is split by image too (tasks (cb, n)), so that tensors with few channel blocks (the
 * decoder's 16 and 32 channels) still keep both cores busy; per-task sums are combined in task order. */
#define TASKS(d) ((d).c / (d).b * (d).n)

#define CHUNK 64 /* pixels summed in float before the sum goes into a double */

/* Per-lane sums of d = x - shift[lane] and of d^2 over one (block, image) run, in one pass: float over CHUNK pixels,
 * double across chunks. With the shift a value of the same channel, E[d^2] - E[d]^2 has no cancellation to speak of. */
CPU_SIMD_CLONES static void run_sums(const float *p, bn_dims d, const float *shift, double *sum, double *sq) {
    for (int64_t l = 0; l < d.b; l++) sum[l] = sq[l] = 0;
    for (int64_t i0 = 0; i0 < d.hw; i0 += CHUNK) {
        int64_t i1 = i0 + CHUNK < d.hw ? i0 + CHUNK : d.hw;
        float s[MAXB] = {0}, q[MAXB] = {0};
        for (int64_t i = i0; i < i1; i++)
            for (int64_t l = 0; l < d.b; l++) {
                float v = p[i * d.b + l] - shift[l];
                s[l] += v;
                q[l] += v * v;
            }
        for (int64_t l = 0; l < d.b; l++) sum[l] += s[l], sq[l] += q[l];
    }
}

/* y = x * scale[lane] + shift[lane] over one run, in float, then max(y, 0) when relu (NaN stays NaN, as relu_fwd). */
CPU_SIMD_CLONES static void run_affine(float *yp, const float *xp, bn_dims d, const float *scale, const float *shift,
                                       bool relu) {
    if (relu) {
        for (int64_t i = 0; i < d.hw; i++)
            for (int64_t l = 0; l < d.b; l++) {
                float v = xp[i * d.b + l] * scale[l] + shift[l];
                yp[i * d.b + l] = v < 0.0f ? 0.0f : v;
            }
        return;
    }
    for (int64_t i = 0; i < d.hw; i++)
        for (int64_t l = 0; l < d.b; l++) yp[i * d.b + l] = xp[i * d.b + l] * scale[l] + shift[l];
}

/* The sums of every task into part (TASKS x b doubles), then per channel over the images: out[c]. */
static void combine(const double *part, bn_dims d, double *out) {
    for (int64_t cb = 0; cb < d.c / d.b; cb++)
        for (int64_t l = 0; l < d.b; l++) {
            double s = 0;
            for (int64_t n = 0; n < d.n; n++) s += part[((cb * d.n) + n) * d.b + l];
            out[cb * d.b + l] = s;
        }
}

/* y = x * scale[c] + shift[c] (+ ReLU) over the whole tensor, by tasks. */
static void affine_all(float *y, const float *x, bn_dims d, const float *scale, const float *shift, bool relu) {
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < TASKS(d); t++) {
        int64_t cb = t / d.n, n = t % d.n;
        run_affine(y + block_at(d, n, cb), x + block_at(d, n, cb), d, scale + cb * d.b, shift + cb * d.b, relu);
    }
}

/* Bytes of ctx->work the BatchNorm ops need: per-task sums and per-channel values (reserved when prepared). */
static size_t work_bytes(bn_dims d) { return (size_t)(2 * TASKS(d) * d.b + 7 * d.c) * sizeof(double); }

pn_status pn_cpu_batchnorm_prepare(cpu_ctx *ctx, const pn_node *node) {
    const pn_tensor *x = node->op == PN_OP_BATCHNORM_BWD ? node->in[1] : node->in[0];
    return pn_cpu_work_reserve(ctx, work_bytes(bn_dims_of(ctx, x)));
}

pn_status pn_cpu_batchnorm_train_fwd(cpu_ctx *ctx, pn_node *node) {
    const pn_batchnorm_params *p = &node->p.batchnorm_train_fwd;
    bn_dims d = bn_dims_of(ctx, node->in[0]);
    float *y = cpu_ptr(node->out[0]), *save_mean = cpu_ptr(node->out[1]), *save_invstd = cpu_ptr(node->out[2]);
    float *rmean = cpu_ptr(node->out[3]), *rvar = cpu_ptr(node->out[4]);
    const float *x = cpu_ptr(node->in[0]), *gamma = cpu_ptr(node->in[1]), *beta = cpu_ptr(node->in[2]);
    double count = (double)(d.n * d.hw);
    int64_t tasks = TASKS(d);
    PN_ASSERT(ctx->work_bytes >= work_bytes(d));
    double *part = ctx->work, *part_sq = part + tasks * d.b, *mean = part_sq + tasks * d.b, *var = mean + d.c;
    float *scale = (float *)(var + d.c), *shift = scale + d.c;
    for (int64_t c = 0; c < d.c; c++) /* each channel's first value: the shift of the sums */
        shift[c] = x[block_at(d, 0, c / d.b) + c % d.b];
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t cb = t / d.n;
        run_sums(x + block_at(d, t % d.n, cb), d, shift + cb * d.b, part + t * d.b, part_sq + t * d.b);
    }
    combine(part, d, mean);
    combine(part_sq, d, var);
    for (int64_t c = 0; c < d.c; c++) {
        double m = mean[c] / count; /* of x - shift */
        double v = var[c] / count - m * m;
        var[c] = v < 0 ? 0 : v; /* rounding; NaN stays */
        mean[c] = m + shift[c];
        double invstd = 1.0 / sqrt(var[c] + p->eps), s = invstd * gamma[c];
        scale[c] = (float)s;
        shift[c] = (float)(beta[c] - mean[c] * s);
        save_mean[c] = (float)mean[c];
        save_invstd[c] = (float)invstd;
        double unbiased = var[c] * count / (count - 1.0);
        rmean[c] = (float)((1.0 - p->momentum) * rmean[c] + p->momentum * mean[c]);
        rvar[c] = (float)((1.0 - p->momentum) * rvar[c] + p->momentum * unbiased);
    }
    affine_all(y, x, d, scale, shift, pn_cpu_relu_joined_head(node));
    return PN_OK;
}

/* The train forward's y recomputed from the float statistics it saved: the same float scale and shift up to the
 * rounding of the statistics (about 1e-7 relative). */
pn_status pn_cpu_batchnorm_apply(cpu_ctx *ctx, pn_node *node) {
    bn_dims d = bn_dims_of(ctx, node->in[0]);
    float *y = cpu_ptr(node->out[0]);
    const float *x = cpu_ptr(node->in[0]), *gamma = cpu_ptr(node->in[1]), *beta = cpu_ptr(node->in[2]);
    const float *mean = cpu_ptr(node->in[3]), *invstd = cpu_ptr(node->in[4]);
    PN_ASSERT(ctx->work_bytes >= work_bytes(d));
    float *ss = ctx->work;
    for (int64_t c = 0; c < d.c; c++) {
        double s = (double)invstd[c] * gamma[c];
        ss[c] = (float)s;
        ss[d.c + c] = (float)(beta[c] - mean[c] * s);
    }
    affine_all(y, x, d, ss, ss + d.c, pn_cpu_relu_joined_head(node));
    return PN_OK;
}

pn_status pn_cpu_batchnorm_infer_fwd(cpu_ctx *ctx, pn_node *node) {
    const pn_batchnorm_params *p = &node->p.batchnorm_infer_fwd;
    bn_dims d = bn_dims_of(ctx, node->in[0]);
    float *y = cpu_ptr(node->out[0]);
    const float *x = cpu_ptr(node->in[0]), *gamma = cpu_ptr(node->in[1]), *beta = cpu_ptr(node->in[2]);
    const float *rmean = cpu_ptr(node->in[3]), *rvar = cpu_ptr(node->in[4]);
    PN_ASSERT(ctx->work_bytes >= work_bytes(d));
    float *ss = ctx->work;
    for (int64_t c = 0; c < d.c; c++) {
        double s = gamma[c] / sqrt((double)rvar[c] + p->eps);
        ss[c] = (float)s;
        ss[d.c + c] = (float)(beta[c] - rmean[c] * s);
    }
    affine_all(y, x, d, ss, ss + d.c, false);
    return PN_OK;
}

/* First pass of the backward over one run: per-lane sums of dy and of dy * (x - mean) (float over CHUNK pixels, double
 * across; times invstd makes the sum of dy * xhat); with a joined ReLU backward, dy is first made from the ReLU's
 * gradient g and output r (dy = r > 0 ? g : 0, written: it is the ReLU node's output). */
CPU_SIMD_CLONES static void run_bwd_sums(float *dyp, const float *gp, const float *rp, const float *xp, bn_dims d,
                                         const float *mean, double *sum_dy, double *sum_dy_xc) {
    for (int64_t l = 0; l < d.b; l++) sum_dy[l] = sum_dy_xc[l] = 0;
    for (int64_t i0 = 0; i0 < d.hw; i0 += CHUNK) {
        int64_t i1 = i0 + CHUNK < d.hw ? i0 + CHUNK : d.hw;
        float s[MAXB] = {0}, q[MAXB] = {0};
        if (gp)
            for (int64_t i = i0 * d.b; i < i1 * d.b; i += d.b)
                for (int64_t l = 0; l < d.b; l++) dyp[i + l] = rp[i + l] > 0.0f ? gp[i + l] : 0.0f;
        for (int64_t i = i0 * d.b; i < i1 * d.b; i += d.b)
            for (int64_t l = 0; l < d.b; l++) {
                s[l] += dyp[i + l];
                q[l] += dyp[i + l] * (xp[i + l] - mean[l]);
            }
        for (int64_t l = 0; l < d.b; l++) sum_dy[l] += s[l], sum_dy_xc[l] += q[l];
    }
}

/* dx = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)), M = N*H*W, over one run of d.hw pixels of
 * one channel block (k = gamma * invstd / M); the same expression order as ref, so Inf and NaN propagate the same way.
 * Vector clones compute each element with the same operations, so every CPU gets the same bits. */
CPU_SIMD_CLONES static void run_bwd_dx(float *dxp, const float *dyp, const float *xp, bn_dims d, double count,
                                       const double *m, const double *is, const double *kk, const double *sd,
                                       const double *sdx) {
    for (int64_t i = 0; i < d.hw * d.b; i += d.b)
        for (int64_t l = 0; l < d.b; l++) {
            double xhat = (xp[i + l] - m[l]) * is[l];
            dxp[i + l] = (float)(kk[l] * (count * dyp[i + l] - sd[l] - xhat * sdx[l]));
        }
}

pn_status pn_cpu_batchnorm_bwd(cpu_ctx *ctx, pn_node *node) {
    PN_TRY(pn_cpu_relu_join_check_bwd(ctx, node));
    bn_dims d = bn_dims_of(ctx, node->in[1]);
    float *dx = cpu_ptr(node->out[0]), *dgamma = cpu_ptr(node->out[1]), *dbeta = cpu_ptr(node->out[2]);
    float *dy = cpu_ptr(node->in[0]);
    const float *x = cpu_ptr(node->in[1]), *gamma = cpu_ptr(node->in[2]);
    const float *save_mean = cpu_ptr(node->in[3]), *save_invstd = cpu_ptr(node->in[4]);
    const pn_node *relu = pn_cpu_relu_join_partner(node); /* a joined RELU_BWD: dy = relu(in[0] where in[1] > 0) */
    const float *g = relu ? cpu_ptr(relu->in[0]) : NULL, *r = relu ? cpu_ptr(relu->in[1]) : NULL;
    double count = (double)(d.n * d.hw);
    int64_t tasks = TASKS(d);
    PN_ASSERT(ctx->work_bytes >= work_bytes(d));
    double *part = ctx->work, *part_xhat = part + tasks * d.b, *sum_dy = part_xhat + tasks * d.b,
           *sum_dy_xhat = sum_dy + d.c;
    double *mean = sum_dy_xhat + d.c, *invstd = mean + d.c, *k = invstd + d.c;
    for (int64_t c = 0; c < d.c; c++) {
        mean[c] = save_mean[c];
        invstd[c] = save_invstd[c];
        k[c] = gamma[c] * invstd[c] / count;
    }
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t cb = t / d.n, at = block_at(d, t % d.n, cb);
        run_bwd_sums(dy + at, g ? g + at : NULL, r ? r + at : NULL, x + at, d, save_mean + cb * d.b, part + t * d.b,
                     part_xhat + t * d.b);
    }
    combine(part, d, sum_dy);
    combine(part_xhat, d, sum_dy_xhat);
    for (int64_t c = 0; c < d.c; c++) sum_dy_xhat[c] *= invstd[c];
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t cb = t / d.n, at = block_at(d, t % d.n, cb), o = cb * d.b;
        run_bwd_dx(dx + at, dy + at, x + at, d, count, mean + o, invstd + o, k + o, sum_dy + o, sum_dy_xhat + o);
    }
    for (int64_t c = 0; c < d.c; c++) {
        dgamma[c] += (float)sum_dy_xhat[c];
        dbeta[c] += (float)sum_dy[c];
    }
    return PN_OK;
}
