/* ref sigmoid: y = 1 / (1 + exp(-x)), and its backward dx = dy * y * (1 - y). */
#include <math.h>

#include "ref.h"

pn_status pn_ref_sigmoid(pn_node *node) {
    float *y = ref_ptr(node->out[0]);
    const float *x = ref_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->out[0]);
    for (int64_t i = 0; i < n; i++) y[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
    return PN_OK;
}

pn_status pn_ref_sigmoid_bwd(pn_node *node) {
    float *dx = ref_ptr(node->out[0]);
    const float *dy = ref_ptr(node->in[0]), *y = ref_ptr(node->in[1]);
    int64_t n = pn_tensor_numel(node->out[0]);
    for (int64_t i = 0; i < n; i++) dx[i] = (float)((double)dy[i] * (double)y[i] * (1.0 - (double)y[i]));
    return PN_OK;
}
