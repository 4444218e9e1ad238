/* ref maxpool: k x k windows with -inf padding; backward routes to the first maximum (PyTorch's rule). */
#include <math.h>

#include "ref.h"

/* Index (into the H*W plane) of the window's first maximum. A NaN wins over any number and a later NaN over an
 * earlier one: PyTorch's CPU and CUDA kernels keep updating on `val > max || isnan(val)`. -1 if empty. */
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
            }
        }
    }
    return best;
}

pn_status pn_ref_maxpool_fwd(pn_node *node) {
    const pn_pool_params *p = &node->p.maxpool_fwd;
    const pn_tensor *tx = node->in[0], *ty = node->out[0];
    int64_t planes = tx->shape[0] * tx->shape[1], h = tx->shape[2], w = tx->shape[3];
    int64_t oh = ty->shape[2], ow = ty->shape[3];
    const float *x = ref_ptr(tx);
    float *y = ref_ptr(ty);
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t at = window_argmax(x + pl * h * w, h, w, oy, ox, p);
                y[(pl * oh + oy) * ow + ox] = at >= 0 ? x[pl * h * w + at] : -INFINITY;
            }
    return PN_OK;
}

pn_status pn_ref_maxpool_bwd(pn_node *node) {
    const pn_pool_params *p = &node->p.maxpool_bwd;
    const pn_tensor *tdx = node->out[0], *tdy = node->in[0], *tx = node->in[1];
    int64_t planes = tx->shape[0] * tx->shape[1], h = tx->shape[2], w = tx->shape[3];
    int64_t oh = tdy->shape[2], ow = tdy->shape[3];
    const float *x = ref_ptr(tx), *dy = ref_ptr(tdy);
    float *dx = ref_ptr(tdx);
    for (int64_t i = 0; i < planes * h * w; i++) dx[i] = 0.0f;
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t at = window_argmax(x + pl * h * w, h, w, oy, ox, p);
                if (at >= 0) dx[pl * h * w + at] += dy[(pl * oh + oy) * ow + ox];
            }
    return PN_OK;
}
