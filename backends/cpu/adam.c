/* cpu adam: one torch.optim.Adam step over a flat parameter vector (same float32 arithmetic as ref). */
#include <math.h>

#include "cpu.h"

/* The step's constants. */
typedef struct adam_k {
    float bc2_sqrt, step_size, b1, b2, eps, wd;
} adam_k;

/* Elements [i0, i1); vector clones do each element's float operations in the same order. */
CPU_SIMD_CLONES static void adam_range(float *param, float *m, float *v, const float *grad, adam_k k, int64_t i0,
                                       int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
        float g = grad[i];
        if (k.wd != 0.0f) g = g + k.wd * param[i];
        m[i] = m[i] * k.b1 + g * (1.0f - k.b1);
        v[i] = v[i] * k.b2 + g * g * (1.0f - k.b2);
        float denom = sqrtf(v[i]) / k.bc2_sqrt + k.eps;
        param[i] = param[i] - k.step_size * (m[i] / denom);
    }
}

#define ADAM_RUN 16384
pn_status pn_cpu_adam_step(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const pn_adam_params *p = &node->p.adam_step;
    float *param = cpu_ptr(node->out[0]), *m = cpu_ptr(node->out[1]), *v = cpu_ptr(node->out[2]);
    const float *grad = cpu_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->in[0]), runs = (n + ADAM_RUN - 1) / ADAM_RUN;
    double bc1 = 1.0 - pow(p->beta1, (double)p->step);
    adam_k k = {(float)sqrt(1.0 - pow(p->beta2, (double)p->step)),
                (float)(p->lr / bc1),
                p->beta1,
                p->beta2,
                p->eps,
                p->weight_decay};
#pragma omp parallel for schedule(static) if (runs > 1)
    for (int64_t r = 0; r < runs; r++)
        adam_range(param, m, v, grad, k, r * ADAM_RUN, (r + 1) * ADAM_RUN < n ? (r + 1) * ADAM_RUN : n);
    return PN_OK;
}
