/* cpu global_avg_pool: the mean of each (image, channel) plane, summed in double (in pixel order per lane on the
 * blocked layout, as ref; a vectorised reduction on the plain one), and its backward (dy / HW at every pixel), on
 * x's own layout. x is N x C x HW with channel block b (plain: b = 1):
 * block k (= n * C/b + c/b) holds HW pixels of b lanes; an (N,C,1,1) tensor is the same bytes in either layout,
 * so block k's lanes are y[k*b .. k*b + b). */
#include "cpu.h"

#define MAXB 16
#define CHUNK 1024 /* pixels per task in the backward */

/* sum[l] = the sum over the block's pixels of lane l, in double. */
static void lane_sums(const float *p, int64_t hw, int64_t b, double *sum) {
    if (b == 1) {
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < hw; i++) s += p[i];
        sum[0] = s;
        return;
    }
    for (int64_t l = 0; l < b; l++) sum[l] = 0.0;
    for (int64_t i = 0; i < hw; i++) {
#pragma omp simd
        for (int64_t l = 0; l < b; l++) sum[l] += p[i * b + l];
    }
}

pn_status pn_cpu_global_avg_pool_fwd(cpu_ctx *ctx, pn_node *node) {
    const pn_tensor *tx = node->in[0];
    int64_t b = cpu_blk(ctx, tx), blocks = tx->shape[0] * tx->shape[1] / b, hw = tx->shape[2] * tx->shape[3];
    const float *x = cpu_ptr(tx);
    float *y = cpu_ptr(node->out[0]);
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < blocks; k++) {
        double sum[MAXB];
        lane_sums(x + k * hw * b, hw, b, sum);
        for (int64_t l = 0; l < b; l++) y[k * b + l] = (float)(sum[l] / (double)hw);
    }
    return PN_OK;
}

pn_status pn_cpu_global_avg_pool_bwd(cpu_ctx *ctx, pn_node *node) {
    const pn_tensor *tdx = node->out[0];
    int64_t b = cpu_blk(ctx, tdx), blocks = tdx->shape[0] * tdx->shape[1] / b, hw = tdx->shape[2] * tdx->shape[3];
    int64_t chunks = (hw + CHUNK - 1) / CHUNK;
    const float *dy = cpu_ptr(node->in[0]);
    float *dx = cpu_ptr(tdx);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t k = 0; k < blocks; k++)
        for (int64_t ch = 0; ch < chunks; ch++) {
            float g[MAXB];
            for (int64_t l = 0; l < b; l++) g[l] = (float)((double)dy[k * b + l] / (double)hw);
            int64_t end = (ch + 1) * CHUNK < hw ? (ch + 1) * CHUNK : hw;
            float *p = dx + k * hw * b;
            for (int64_t i = ch * CHUNK; i < end; i++) {
#pragma omp simd
                for (int64_t l = 0; l < b; l++) p[i * b + l] = g[l];
            }
        }
    return PN_OK;
}
