/* cpu blas1: fill, scale, axpy and sum of squares over flat tensors, on OpenMP threads. */
#include "cpu.h"

/* Below this many elements a loop runs on one thread (thread start-up would cost more). */
#define PAR_MIN 32768

pn_status pn_cpu_fill(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    float *x = cpu_ptr(node->out[0]), v = node->p.fill.value;
    int64_t n = pn_tensor_numel(node->out[0]);
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] = v;
    return PN_OK;
}

pn_status pn_cpu_scale(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    float *y = cpu_ptr(node->out[0]), a = node->p.scale.alpha;
    const float *x = cpu_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->out[0]);
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = a * x[i];
    return PN_OK;
}

pn_status pn_cpu_axpy(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    float *y = cpu_ptr(node->out[0]), a = node->p.axpy.alpha;
    const float *x = cpu_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->out[0]);
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
    return PN_OK;
}

pn_status pn_cpu_sum_squares(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const float *x = cpu_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->in[0]);
    double sum = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : sum) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * x[i];
    cpu_ptr(node->out[0])[0] = (float)sum;
    return PN_OK;
}
