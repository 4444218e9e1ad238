/* ref blas1: fill, scale, axpy and sum of squares over flat tensors. */
#include "ref.h"

pn_status pn_ref_fill(pn_node *node) {
    float *x = ref_ptr(node->out[0]);
    int64_t n = pn_tensor_numel(node->out[0]);
    for (int64_t i = 0; i < n; i++) x[i] = node->p.fill.value;
    return PN_OK;
}

pn_status pn_ref_scale(pn_node *node) {
    float *y = ref_ptr(node->out[0]);
    const float *x = ref_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->out[0]);
    for (int64_t i = 0; i < n; i++) y[i] = node->p.scale.alpha * x[i];
    return PN_OK;
}

pn_status pn_ref_axpy(pn_node *node) {
    float *y = ref_ptr(node->out[0]);
    const float *x = ref_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->out[0]);
    for (int64_t i = 0; i < n; i++) y[i] += node->p.axpy.alpha * x[i];
    return PN_OK;
}

pn_status pn_ref_sum_squares(pn_node *node) {
    const float *x = ref_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->in[0]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * x[i];
    ref_ptr(node->out[0])[0] = (float)sum;
    return PN_OK;
}
