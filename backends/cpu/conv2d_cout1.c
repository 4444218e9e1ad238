/* cpu conv2d forward with one output channel on a channel-blocked input (the segmentation head, 16 -> 1): per output
 * pixel, a dot product over the input's channel blocks and the kernel taps. oneDNN 2.6 computes it as 16 output
 * channels (15 of them padding) into a scratch copy 16 times the output's size and then reorders it; this writes the
 * plain output directly. Not used with --conv-algo winograd. */
#include "conv2d.h"

bool pn_cpu_conv_cout1_applies(const cpu_ctx *ctx, const pn_node *node, const pn_conv_dims *d) {
    /* --conv-algo winograd asks for oneDNN's Winograd wherever it exists, this shape included */
    return node->op == PN_OP_CONV2D_FWD && ctx->conv_algo != PN_CPU_CONV_WINOGRAD && d->cout == 1 && d->groups == 1 &&
           ctx->blk > 1 && cpu_blk(ctx, node->in[0]) == ctx->blk && cpu_blk(ctx, node->in[1]) == ctx->blk &&
           cpu_blk(ctx, node->out[0]) == 1;
}

/* One output row; B (the channel block) is a constant in each caller so the inner loop vectorises. */
static inline void cout1_row(const pn_conv_dims *d, int64_t B, float *yr, const float *xn, const float *w, float bias,
                             int64_t oy) {
    int64_t cb_n = d->cin / B, hw = d->h * d->w, kk = d->k * d->k;
    for (int64_t ox = 0; ox < d->ow; ox++) {
        float acc[16] = {0};
        for (int64_t cb = 0; cb < cb_n; cb++)
            for (int64_t ky = 0; ky < d->k; ky++) {
                int64_t iy = oy * d->stride - d->pad + ky;
                if (iy < 0 || iy >= d->h) continue;
                for (int64_t kx = 0; kx < d->k; kx++) {
                    int64_t ix = ox * d->stride - d->pad + kx;
                    if (ix < 0 || ix >= d->w) continue;
                    const float *xp = xn + (cb * hw + iy * d->w + ix) * B;
                    const float *wp = w + (cb * kk + ky * d->k + kx) * B;
                    for (int64_t l = 0; l < B; l++) acc[l] += xp[l] * wp[l];
                }
            }
        float sum = bias;
        for (int64_t l = 0; l < B; l++) sum += acc[l];
        yr[ox] = sum;
    }
}

void pn_cpu_conv_cout1_fwd(const cpu_ctx *ctx, const pn_conv_dims *d, float *y, const float *x, const float *w,
                           const float *b) {
    int64_t B = ctx->blk;
    float bias = b ? b[0] : 0.0f;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t oy = 0; oy < d->oh; oy++) {
            float *yr = y + (n * d->oh + oy) * d->ow;
            const float *xn = x + n * d->cin * d->h * d->w;
            if (B == 16)
                cout1_row(d, 16, yr, xn, w, bias, oy);
            else
                cout1_row(d, 8, yr, xn, w, bias, oy);
        }
}
