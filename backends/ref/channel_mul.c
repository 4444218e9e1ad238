/* ref channel_mul: y = x * s with one factor per (image, channel) (the SE gate), and the factor's gradient. */
#include "ref.h"

pn_status pn_ref_channel_mul(pn_node *node) {
    const pn_tensor *tx = node->in[0];
    int64_t planes = tx->shape[0] * tx->shape[1], hw = tx->shape[2] * tx->shape[3];
    const float *x = ref_ptr(tx), *s = ref_ptr(node->in[1]);
    float *y = ref_ptr(node->out[0]);
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t i = 0; i < hw; i++) y[pl * hw + i] = x[pl * hw + i] * s[pl];
    return PN_OK;
}

pn_status pn_ref_channel_mul_bwd_scale(pn_node *node) {
    const pn_tensor *tx = node->in[1];
    int64_t planes = tx->shape[0] * tx->shape[1], hw = tx->shape[2] * tx->shape[3];
    const float *dy = ref_ptr(node->in[0]), *x = ref_ptr(tx);
    float *ds = ref_ptr(node->out[0]);
    for (int64_t pl = 0; pl < planes; pl++) {
        double sum = 0.0;
        for (int64_t i = 0; i < hw; i++) sum += (double)dy[pl * hw + i] * (double)x[pl * hw + i];
        ds[pl] = (float)sum;
    }
    return PN_OK;
}
