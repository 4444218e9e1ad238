/* ref bilinear2x: F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False) and its transpose. */
#include "ref.h"

/* Output position o of 2n reads input i0 with weight 1 - l and i1 with weight l (PyTorch's area-pixel rule:
 * source (o + 0.5) / 2 - 0.5, clamped at 0; i1 = min(i0 + 1, n - 1)). */
static void source(int64_t o, int64_t n, int64_t *i0, int64_t *i1, float *l) {
    float src = ((float)o + 0.5f) * 0.5f - 0.5f;
    if (src < 0.0f) src = 0.0f;
    *i0 = (int64_t)src;
    *i1 = *i0 + 1 < n ? *i0 + 1 : n - 1;
    *l = src - (float)*i0;
}

pn_status pn_ref_bilinear2x_fwd(pn_node *node) {
    const pn_tensor *tx = node->in[0];
    int64_t planes = tx->shape[0] * tx->shape[1], h = tx->shape[2], w = tx->shape[3];
    const float *x = ref_ptr(tx);
    float *y = ref_ptr(node->out[0]);
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < 2 * h; oy++) {
            int64_t y0, y1;
            float ly;
            source(oy, h, &y0, &y1, &ly);
            for (int64_t ox = 0; ox < 2 * w; ox++) {
                int64_t x0, x1;
                float lx;
                source(ox, w, &x0, &x1, &lx);
                const float *p = x + pl * h * w;
                float top = (1.0f - lx) * p[y0 * w + x0] + lx * p[y0 * w + x1];
                float bottom = (1.0f - lx) * p[y1 * w + x0] + lx * p[y1 * w + x1];
                y[(pl * 2 * h + oy) * 2 * w + ox] = (1.0f - ly) * top + ly * bottom;
            }
        }
    return PN_OK;
}

pn_status pn_ref_bilinear2x_bwd(pn_node *node) {
    const pn_tensor *tdx = node->out[0];
    int64_t planes = tdx->shape[0] * tdx->shape[1], h = tdx->shape[2], w = tdx->shape[3];
    const float *dy = ref_ptr(node->in[0]);
    float *dx = ref_ptr(tdx);
    for (int64_t i = 0; i < planes * h * w; i++) dx[i] = 0.0f;
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < 2 * h; oy++) {
            int64_t y0, y1;
            float ly;
            source(oy, h, &y0, &y1, &ly);
            for (int64_t ox = 0; ox < 2 * w; ox++) {
                int64_t x0, x1;
                float lx;
                source(ox, w, &x0, &x1, &lx);
                float g = dy[(pl * 2 * h + oy) * 2 * w + ox];
                float *p = dx + pl * h * w;
                p[y0 * w + x0] += (1.0f - ly) * (1.0f - lx) * g;
                p[y0 * w + x1] += (1.0f - ly) * lx * g;
                p[y1 * w + x0] += ly * (1.0f - lx) * g;
                p[y1 * w + x1] += ly * lx * g;
            }
        }
    return PN_OK;
}
