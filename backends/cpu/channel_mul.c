/* cpu channel_mul: y = x * s with one factor per (image, channel) (the SE gate; y may be x), and the factor's
 * gradient ds = sum over pixels of dy * x in double, on x's own layout. x is N x C x HW with channel block b
 * (plain: b = 1): block k (= n * C/b + c/b) holds HW pixels of b lanes; an (N,C,1,1) tensor is the same bytes in
 * either layout, so block k's factors are s[k*b .. k*b + b). */
#include "cpu.h"

#define MAXB 16
#define CHUNK 1024 /* pixels per task in the forward */

pn_status pn_cpu_channel_mul(cpu_ctx *ctx, pn_node *node) {
    const pn_tensor *tx = node->in[0];
    int64_t b = cpu_blk(ctx, tx), blocks = tx->shape[0] * tx->shape[1] / b, hw = tx->shape[2] * tx->shape[3];
    int64_t chunks = (hw + CHUNK - 1) / CHUNK;
    const float *x = cpu_ptr(tx), *s = cpu_ptr(node->in[1]);
    float *y = cpu_ptr(node->out[0]);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t k = 0; k < blocks; k++)
        for (int64_t ch = 0; ch < chunks; ch++) {
            const float *f = s + k * b;
            int64_t end = (ch + 1) * CHUNK < hw ? (ch + 1) * CHUNK : hw;
            for (int64_t i = ch * CHUNK; i < end; i++) {
                const float *xp = x + (k * hw + i) * b;
                float *yp = y + (k * hw + i) * b;
#pragma omp simd
                for (int64_t l = 0; l < b; l++) yp[l] = xp[l] * f[l];
            }
        }
    return PN_OK;
}

pn_status pn_cpu_channel_mul_bwd_scale(cpu_ctx *ctx, pn_node *node) {
    const pn_tensor *tx = node->in[1];
    int64_t b = cpu_blk(ctx, tx), blocks = tx->shape[0] * tx->shape[1] / b, hw = tx->shape[2] * tx->shape[3];
    const float *dy = cpu_ptr(node->in[0]), *x = cpu_ptr(tx);
    float *ds = cpu_ptr(node->out[0]);
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < blocks; k++) {
        const float *dyp = dy + k * hw * b, *xp = x + k * hw * b;
        if (b == 1) {
            double sum = 0.0;
#pragma omp simd reduction(+ : sum)
            for (int64_t i = 0; i < hw; i++) sum += (double)dyp[i] * (double)xp[i];
            ds[k] = (float)sum;
            continue;
        }
        double sum[MAXB] = {0};
        for (int64_t i = 0; i < hw; i++) {
#pragma omp simd
            for (int64_t l = 0; l < b; l++) sum[l] += (double)dyp[i * b + l] * (double)xp[i * b + l];
        }
        for (int64_t l = 0; l < b; l++) ds[k * b + l] = (float)sum[l];
    }
    return PN_OK;
}
