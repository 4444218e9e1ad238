/* ref add: y = a + b elementwise. */
#include "ref.h"

pn_status pn_ref_add(pn_node *node) {
    float *y = ref_ptr(node->out[0]);
    const float *a = ref_ptr(node->in[0]), *b = ref_ptr(node->in[1]);
    int64_t n = pn_tensor_numel(node->out[0]);
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
    return PN_OK;
}
