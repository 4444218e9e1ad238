/* ref global_avg_pool: the mean of each (image, channel) plane, and its backward (the gradient spread evenly). */
#include "ref.h"

pn_status pn_ref_global_avg_pool_fwd(pn_node *node) {
    const pn_tensor *tx = node->in[0];
    int64_t planes = tx->shape[0] * tx->shape[1], hw = tx->shape[2] * tx->shape[3];
    const float *x = ref_ptr(tx);
    float *y = ref_ptr(node->out[0]);
    for (int64_t pl = 0; pl < planes; pl++) {
        double sum = 0.0;
        for (int64_t i = 0; i < hw; i++) sum += x[pl * hw + i];
        y[pl] = (float)(sum / (double)hw);
    }
    return PN_OK;
}

pn_status pn_ref_global_avg_pool_bwd(pn_node *node) {
    const pn_tensor *tdx = node->out[0];
    int64_t planes = tdx->shape[0] * tdx->shape[1], hw = tdx->shape[2] * tdx->shape[3];
    const float *dy = ref_ptr(node->in[0]);
    float *dx = ref_ptr(tdx);
    for (int64_t pl = 0; pl < planes; pl++) {
        float g = (float)((double)dy[pl] / (double)hw);
        for (int64_t i = 0; i < hw; i++) dx[pl * hw + i] = g;
    }
    return PN_OK;
}
