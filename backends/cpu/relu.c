/* cpu relu: y = max(x, 0) (NaN propagates, like PyTorch) and dx = dy where y > 0. */
#include "cpu.h"

#define PAR_MIN 32768

pn_status pn_cpu_relu_fwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    float *y = cpu_ptr(node->out[0]);
    const float *x = cpu_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->out[0]);
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
    return PN_OK;
}

pn_status pn_cpu_relu_bwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    float *dx = cpu_ptr(node->out[0]);
    const float *dy = cpu_ptr(node->in[0]), *y = cpu_ptr(node->in[1]);
    int64_t n = pn_tensor_numel(node->out[0]);
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    return PN_OK;
}
