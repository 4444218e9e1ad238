/* cpu add: y = a + b elementwise (y may alias a or b), then max(y, 0) when a ReLU is joined to it (relu_join.c). */
#include "cpu.h"

#define PAR_MIN 32768

pn_status pn_cpu_add(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    float *y = cpu_ptr(node->out[0]);
    const float *a = cpu_ptr(node->in[0]), *b = cpu_ptr(node->in[1]);
    int64_t n = pn_tensor_numel(node->out[0]);
    if (pn_cpu_relu_joined_head(node)) {
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float v = a[i] + b[i];
            y[i] = v < 0.0f ? 0.0f : v;
        }
        return PN_OK;
    }
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
    return PN_OK;
}
