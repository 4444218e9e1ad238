/* cpu maxpool: k x k windows with -inf padding on the tensor's own layout (plain or channel-blocked);
 * backward routes each gradient to the window's first maximum (PyTorch's rule, NaN wins), as ref does. The output
 * size comes from y's shape, so ceil_mode (pn_pool_out_size) needs nothing here: windows running past the input
 * are clipped to the pixels they cover. (Pooling does not go through oneDNN.) */
#include <math.h>

#include "cpu.h"

/* One channel of one image: element (y, x) at base[(y*w + x) * step]. */
typedef struct plane {
    int64_t h, w, step;
} plane;

/* Pixel index (y*w + x) of the window's first maximum; -1 if the window is empty. */
static int64_t window_argmax(const float *base, plane pl, int64_t oy, int64_t ox, const pn_pool_params *p) {
    int64_t best = -1;
    float best_v = -INFINITY;
    for (int64_t ky = 0; ky < p->kernel; ky++) {
        int64_t iy = oy * p->stride - p->pad + ky;
        if (iy < 0 || iy >= pl.h) continue;
        for (int64_t kx = 0; kx < p->kernel; kx++) {
            int64_t ix = ox * p->stride - p->pad + kx;
            if (ix < 0 || ix >= pl.w) continue;
            float v = base[(iy * pl.w + ix) * pl.step];
            if (best < 0 || v > best_v || isnan(v)) {
                best = iy * pl.w + ix;
                best_v = v;
                if (isnan(v)) return best;
            }
        }
    }
    return best;
}

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

pn_status pn_cpu_maxpool_bwd(cpu_ctx *ctx, pn_node *node) {
    const pn_pool_params *p = &node->p.maxpool_bwd;
    const pn_tensor *tdx = node->out[0], *tdy = node->in[0], *tx = node->in[1];
    int64_t n = tx->shape[0], c = tx->shape[1], h = tx->shape[2], w = tx->shape[3];
    int64_t oh = tdy->shape[2], ow = tdy->shape[3], b = cpu_blk(ctx, tx);
    const float *x = cpu_ptr(tx), *dy = cpu_ptr(tdy);
    float *dx = cpu_ptr(tdx);
    plane pl = {h, w, b};
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t in = 0; in < n; in++)
        for (int64_t ic = 0; ic < c; ic++) {
            const float *xb = x + cpu_at(b, c, h * w, in, ic, 0), *dyb = dy + cpu_at(b, c, oh * ow, in, ic, 0);
            float *dxb = dx + cpu_at(b, c, h * w, in, ic, 0);
            for (int64_t i = 0; i < h * w; i++) dxb[i * b] = 0.0f;
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    int64_t at = window_argmax(xb, pl, oy, ox, p);
                    if (at >= 0) dxb[at * b] += dyb[(oy * ow + ox) * b];
                }
        }
    return PN_OK;
}
