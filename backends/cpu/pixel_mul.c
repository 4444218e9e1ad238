/* cpu pixel_mul: y = x * s with one factor per (image, pixel) (scSE's spatial gate; y may be x), and the factor's
 * gradient ds = sum over channels of dy * x in double, on x's own layout. x is N x C x HW with channel block b
 * (plain: b = 1): image n's block cb holds HW pixels of b lanes; s and ds are (N,1,H,W), always plain. */
#include "cpu.h"

#define MAXB 16
#define CHUNK 128 /* pixels per task */

pn_status pn_cpu_pixel_mul(cpu_ctx *ctx, pn_node *node) {
    const pn_tensor *tx = node->in[0];
    int64_t b = cpu_blk(ctx, tx), n = tx->shape[0], cblocks = tx->shape[1] / b, hw = tx->shape[2] * tx->shape[3];
    int64_t chunks = (hw + CHUNK - 1) / CHUNK;
    const float *x = cpu_ptr(tx), *s = cpu_ptr(node->in[1]);
    float *y = cpu_ptr(node->out[0]);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t k = 0; k < n * cblocks; k++)
        for (int64_t ch = 0; ch < chunks; ch++) {
            const float *f = s + (k / cblocks) * hw;
            int64_t end = (ch + 1) * CHUNK < hw ? (ch + 1) * CHUNK : hw;
            for (int64_t i = ch * CHUNK; i < end; i++) {
                const float *xp = x + (k * hw + i) * b;
                float *yp = y + (k * hw + i) * b;
                float v = f[i];
#pragma omp simd
                for (int64_t l = 0; l < b; l++) yp[l] = xp[l] * v;
            }
        }
    return PN_OK;
}

/* Per chunk of pixels: acc[j] (j = pixel * b + lane) sums dy * x over the channel blocks in order, then each
 * pixel's b lane sums are added (plain: exactly ref's channel order). */
pn_status pn_cpu_pixel_mul_bwd_scale(cpu_ctx *ctx, pn_node *node) {
    const pn_tensor *tx = node->in[1];
    int64_t b = cpu_blk(ctx, tx), n = tx->shape[0], cblocks = tx->shape[1] / b, hw = tx->shape[2] * tx->shape[3];
    int64_t chunks = (hw + CHUNK - 1) / CHUNK;
    const float *dy = cpu_ptr(node->in[0]), *x = cpu_ptr(tx);
    float *ds = cpu_ptr(node->out[0]);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t in = 0; in < n; in++)
        for (int64_t ch = 0; ch < chunks; ch++) {
            double acc[CHUNK * MAXB];
            int64_t i0 = ch * CHUNK, cnt = (hw - i0 < CHUNK ? hw - i0 : CHUNK) * b;
            for (int64_t j = 0; j < cnt; j++) acc[j] = 0.0;
            for (int64_t cb = 0; cb < cblocks; cb++) {
                const float *dyp = dy + ((in * cblocks + cb) * hw + i0) * b,
                            *xp = x + ((in * cblocks + cb) * hw + i0) * b;
#pragma omp simd
                for (int64_t j = 0; j < cnt; j++) acc[j] += (double)dyp[j] * (double)xp[j];
            }
            for (int64_t j = 0; j < cnt / b; j++) {
                double sum = 0.0;
                for (int64_t l = 0; l < b; l++) sum += acc[j * b + l];
                ds[in * hw + i0 + j] = (float)sum;
            }
        }
    return PN_OK;
}
