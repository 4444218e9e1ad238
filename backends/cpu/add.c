/* cpu add: y = a + b elementwise (y may alias a or b). */
#include "cpu.h"

#define PAR_MIN 32768

pn_status pn_cpu_add(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    float *y = cpu_ptr(node->out[0]);
    const float *a = cpu_ptr(node->in[0]), *b = cpu_ptr(node->in[1]);
    int64_t n = pn_tensor_numel(node->out[0]);
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
    return PN_OK;
}
