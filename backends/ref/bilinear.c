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

/* The four input taps of output (oy, ox) of a 2h x 2w plane, as offsets into the h x w plane (top-left,
 * top-right, bottom-left, bottom-right), and the two lerp factors. */
typedef struct taps {
    int64_t at[4];
    float ly, lx;
} taps;

static taps taps_of(int64_t oy, int64_t ox, int64_t h, int64_t w) {
    int64_t y0, y1, x0, x1;
    taps t;
    source(oy, h, &y0, &y1, &t.ly);
    source(ox, w, &x0, &x1, &t.lx);
    t.at[0] = y0 * w + x0, t.at[1] = y0 * w + x1, t.at[2] = y1 * w + x0, t.at[3] = y1 * w + x1;
    return t;
}

pn_status pn_ref_bilinear2x_fwd(pn_node *node) {
    const pn_tensor *tx = node->in[0];
    int64_t planes = tx->shape[0] * tx->shape[1], h = tx->shape[2], w = tx->shape[3];
    const float *x = ref_ptr(tx);
    float *y = ref_ptr(node->out[0]);
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < 2 * h; oy++)
            for (int64_t ox = 0; ox < 2 * w; ox++) {
                taps t = taps_of(oy, ox, h, w);
                const float *p = x + pl * h * w;
                float top = (1.0f - t.lx) * p[t.at[0]] + t.lx * p[t.at[1]];
                float bottom = (1.0f - t.lx) * p[t.at[2]] + t.lx * p[t.at[3]];
                y[(pl * 2 * h + oy) * 2 * w + ox] = (1.0f - t.ly) * top + t.ly * bottom;
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
        for (int64_t oy = 0; oy < 2 * h; oy++)
            for (int64_t ox = 0; ox < 2 * w; ox++) {
                taps t = taps_of(oy, ox, h, w);
                float g = dy[(pl * 2 * h + oy) * 2 * w + ox];
                float *p = dx + pl * h * w;
                p[t.at[0]] += (1.0f - t.ly) * (1.0f - t.lx) * g;
                p[t.at[1]] += (1.0f - t.ly) * t.lx * g;
                p[t.at[2]] += t.ly * (1.0f - t.lx) * g;
                p[t.at[3]] += t.ly * t.lx * g;
            }
    return PN_OK;
}
