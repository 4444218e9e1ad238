/* ref relu: y = max(x, 0); dx = 0 where y <= 0, else dy. NaN propagates both ways, as in PyTorch. */
#include "ref.h"

pn_status pn_ref_relu_fwd(pn_node *node) {
    float *y = ref_ptr(node->out[0]);
    const float *x = ref_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->out[0]);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
    return PN_OK;
}

pn_status pn_ref_relu_bwd(pn_node *node) {
    float *dx = ref_ptr(node->out[0]);
    const float *dy = ref_ptr(node->in[0]), *y = ref_ptr(node->in[1]);
    int64_t n = pn_tensor_numel(node->out[0]);
    for (int64_t i = 0; i < n; i++) dx[i] = y[i] <= 0.0f ? 0.0f : dy[i]; /* NaN in y passes dy, as PyTorch */
    return PN_OK;
}
