/* ref pixel_mul: y = x * s with one factor per (image, pixel) (scSE's spatial gate), and the factor's gradient. */
#include "ref.h"

pn_status pn_ref_pixel_mul(pn_node *node) {
    const pn_tensor *tx = node->in[0];
    int64_t n = tx->shape[0], c = tx->shape[1], hw = tx->shape[2] * tx->shape[3];
    const float *x = ref_ptr(tx), *s = ref_ptr(node->in[1]);
    float *y = ref_ptr(node->out[0]);
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t i = 0; i < hw; i++) y[(b * c + ch) * hw + i] = x[(b * c + ch) * hw + i] * s[b * hw + i];
    return PN_OK;
}

pn_status pn_ref_pixel_mul_bwd_scale(pn_node *node) {
    const pn_tensor *tx = node->in[1];
    int64_t n = tx->shape[0], c = tx->shape[1], hw = tx->shape[2] * tx->shape[3];
    const float *dy = ref_ptr(node->in[0]), *x = ref_ptr(tx);
    float *ds = ref_ptr(node->out[0]);
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < hw; i++) {
            double sum = 0.0;
            for (int64_t ch = 0; ch < c; ch++)
                sum += (double)dy[(b * c + ch) * hw + i] * (double)x[(b * c + ch) * hw + i];
            ds[b * hw + i] = (float)sum;
        }
    return PN_OK;
}
