/* cpu maxpool: k x k windows with -inf padding, one image plane per OpenMP task; backward routes each
 * gradient to the window's first maximum (PyTorch's rule, NaN wins), so results match ref exactly. */
#include <math.h>

#include "cpu.h"

/* Index (into the H*W plane) of the window's first maximum; -1 if the window is empty. */
static int64_t window_argmax(const float *plane, int64_t h, int64_t w, int64_t oy, int64_t ox,
                             const pn_pool_params *p) {
    int64_t best = -1;
    float best_v = -INFINITY;
    for (int64_t ky = 0; ky < p->kernel; ky++) {
        int64_t iy = oy * p->stride - p->pad + ky;
        if (iy < 0 || iy >= h) continue;
        for (int64_t kx = 0; kx < p->kernel; kx++) {
            int64_t ix = ox * p->stride - p->pad + kx;
            if (ix < 0 || ix >= w) continue;
            float v = plane[iy * w + ix];
            if (best < 0 || v > best_v || isnan(v)) {
                best = iy * w + ix;
                best_v = v;
                if (isnan(v)) return best;
            }
        }
    }
    return best;
}

pn_status pn_cpu_maxpool_fwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const pn_pool_params *p = &node->p.maxpool_fwd;
    const pn_tensor *tx = node->in[0], *ty = node->out[0];
    int64_t planes = tx->shape[0] * tx->shape[1], h = tx->shape[2], w = tx->shape[3];
    int64_t oh = ty->shape[2], ow = ty->shape[3];
    const float *x = cpu_ptr(tx);
    float *y = cpu_ptr(ty);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < oh; oy++) {
            const float *plane = x + pl * h * w;
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t at = window_argmax(plane, h, w, oy, ox, p);
                y[(pl * oh + oy) * ow + ox] = at >= 0 ? plane[at] : -INFINITY;
            }
        }
    return PN_OK;
}

pn_status pn_cpu_maxpool_bwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const pn_pool_params *p = &node->p.maxpool_bwd;
    const pn_tensor *tdx = node->out[0], *tdy = node->in[0], *tx = node->in[1];
    int64_t planes = tx->shape[0] * tx->shape[1], h = tx->shape[2], w = tx->shape[3];
    int64_t oh = tdy->shape[2], ow = tdy->shape[3];
    const float *x = cpu_ptr(tx), *dy = cpu_ptr(tdy);
    float *dx = cpu_ptr(tdx);
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * h * w;
        const float *plane = x + pl * h * w;
        for (int64_t i = 0; i < h * w; i++) dxp[i] = 0.0f;
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t at = window_argmax(plane, h, w, oy, ox, p);
                if (at >= 0) dxp[at] += dy[(pl * oh + oy) * ow + ox];
            }
    }
    return PN_OK;
}
