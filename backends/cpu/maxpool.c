/* cpu maxpool: k x k windows with -inf padding on the tensor's own layout (plain or channel-blocked);
 * backward routes each gradient to the window's first maximum (PyTorch's rule, NaN wins), as ref does. The output
 * size comes from y's shape, so ceil_mode (pn_pool_out_size) needs nothing here: windows running past the input
 * are clipped to the pixels they cover. (Pooling does not go through oneDNN.) */
#include <math.h>
#include <stdint.h>

#include "cpu.h"

/* One channel (step 1) or channel block (step b, the lanes of a pixel together) of one image: element (y, x) of lane
 * l at base[(y*w + x) * step + l]. */
typedef struct plane {
    int64_t h, w, step;
} plane;

/* Forward needs only the value: the window maximum, NaN if the window holds one (as ref's first-maximum
 * rule gives), -inf for an empty window. All b channel lanes of a pixel are done together. */
pn_status pn_cpu_maxpool_fwd(cpu_ctx *ctx, pn_node *node) {
    const pn_pool_params *p = &node->p.maxpool_fwd;
    const pn_tensor *tx = node->in[0], *ty = node->out[0];
    int64_t b = cpu_blk(ctx, tx), blocks = tx->shape[0] * tx->shape[1] / b, h = tx->shape[2], w = tx->shape[3];
    int64_t oh = ty->shape[2], ow = ty->shape[3];
    const float *x = cpu_ptr(tx);
    float *y = cpu_ptr(ty);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t pl = 0; pl < blocks; pl++)
        for (int64_t oy = 0; oy < oh; oy++) {
            const float *xb = x + pl * h * w * b;
            float *yrow = y + (pl * oh + oy) * ow * b;
            for (int64_t ox = 0; ox < ow; ox++) {
                float best[16];
                for (int64_t l = 0; l < b; l++) best[l] = -INFINITY;
                for (int64_t ky = 0; ky < p->kernel; ky++) {
                    int64_t iy = oy * p->stride - p->pad + ky;
                    if (iy < 0 || iy >= h) continue;
                    for (int64_t kx = 0; kx < p->kernel; kx++) {
                        int64_t ix = ox * p->stride - p->pad + kx;
                        if (ix < 0 || ix >= w) continue;
                        const float *v = xb + (iy * w + ix) * b;
                        for (int64_t l = 0; l < b; l++) best[l] = (v[l] > best[l] || isnan(v[l])) ? v[l] : best[l];
                    }
                }
                for (int64_t l = 0; l < b; l++) yrow[ox * b + l] = best[l];
            }
        }
    return PN_OK;
}

/* One channel block of one image: dx = 0, then each dy lane added at its window's first maximum, every lane at once:
 * the first pixel in window order whose value is above all before it, or the first NaN (a lane that met one keeps
 * it); none for an empty window. Each dx element gets its terms in the order of the output pixels. */
CPU_SIMD_CLONES static void block_bwd(float *dxb, const float *xb, const float *dyb, plane pl, int64_t oh, int64_t ow,
                                      const pn_pool_params *p) {
    int64_t b = pl.step;
    for (int64_t i = 0; i < pl.h * pl.w * b; i++) dxb[i] = 0.0f;
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
            int32_t best[16], nan[16]; /* per lane: pixel index (-1: none yet), whether it is a NaN */
            float best_v[16];
            for (int64_t l = 0; l < b; l++) best[l] = -1, best_v[l] = -INFINITY, nan[l] = 0;
            for (int64_t ky = 0; ky < p->kernel; ky++) {
                int64_t iy = oy * p->stride - p->pad + ky;
                if (iy < 0 || iy >= pl.h) continue;
                for (int64_t kx = 0; kx < p->kernel; kx++) {
                    int64_t ix = ox * p->stride - p->pad + kx;
                    if (ix < 0 || ix >= pl.w) continue;
                    int32_t at = (int32_t)(iy * pl.w + ix);
                    const float *px = xb + at * b;
                    for (int64_t l = 0; l < b; l++) { /* branch-free, so that the lanes vectorise */
                        float v = px[l];
                        int32_t is_nan = v != v, take = (nan[l] == 0) & ((best[l] < 0) | (v > best_v[l]) | is_nan);
                        best[l] = take ? at : best[l];
                        best_v[l] = take ? v : best_v[l];
                        nan[l] |= take & is_nan;
                    }
                }
            }
            for (int64_t l = 0; l < b; l++)
                if (best[l] >= 0) dxb[best[l] * b + l] += dyb[(oy * ow + ox) * b + l];
        }
}

pn_status pn_cpu_maxpool_bwd(cpu_ctx *ctx, pn_node *node) {
    const pn_pool_params *p = &node->p.maxpool_bwd;
    const pn_tensor *tdx = node->out[0], *tdy = node->in[0], *tx = node->in[1];
    int64_t h = tx->shape[2], w = tx->shape[3], oh = tdy->shape[2], ow = tdy->shape[3], b = cpu_blk(ctx, tx);
    int64_t blocks = tx->shape[0] * tx->shape[1] / b;
    const float *x = cpu_ptr(tx), *dy = cpu_ptr(tdy);
    float *dx = cpu_ptr(tdx);
    plane pl = {h, w, b};
    if (h * w > INT32_MAX)
        return pn_error(PN_ERR_ARG, "maxpool backward: a %lld x %lld plane has more pixels than it indexes (2^31)",
                        (long long)h, (long long)w);
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < blocks; k++)
        block_bwd(dx + k * h * w * b, x + k * h * w * b, dy + k * oh * ow * b, pl, oh, ow, p);
    return PN_OK;
}
