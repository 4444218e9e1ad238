/* cpu sigmoid: y = 1 / (1 + exp(-x)) and its backward dx = dy * y * (1 - y), computed in double per element like
 * ref (elementwise, so layout-free; dx may be dy). */
#include <math.h>

#include "cpu.h"

#define PAR_MIN 8192

pn_status pn_cpu_sigmoid(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    float *y = cpu_ptr(node->out[0]);
    const float *x = cpu_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->out[0]);
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
    return PN_OK;
}

pn_status pn_cpu_sigmoid_bwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    float *dx = cpu_ptr(node->out[0]);
    const float *dy = cpu_ptr(node->in[0]), *y = cpu_ptr(node->in[1]);
    int64_t n = pn_tensor_numel(node->out[0]);
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] = (float)((double)dy[i] * (double)y[i] * (1.0 - (double)y[i]));
    return PN_OK;
}
