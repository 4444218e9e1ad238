/* cpu adam: one torch.optim.Adam step over a flat parameter vector (same float32 arithmetic as ref). */
#include <math.h>

#include "cpu.h"

pn_status pn_cpu_adam_step(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const pn_adam_params *p = &node->p.adam_step;
    float *param = cpu_ptr(node->out[0]), *m = cpu_ptr(node->out[1]), *v = cpu_ptr(node->out[2]);
    const float *grad = cpu_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->in[0]);
    double bc1 = 1.0 - pow(p->beta1, (double)p->step);
    float bc2_sqrt = (float)sqrt(1.0 - pow(p->beta2, (double)p->step));
    float step_size = (float)(p->lr / bc1), b1 = p->beta1, b2 = p->beta2, eps = p->eps, wd = p->weight_decay;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i];
        if (wd != 0.0f) g = g + wd * param[i];
        m[i] = m[i] * b1 + g * (1.0f - b1);
        v[i] = v[i] * b2 + g * g * (1.0f - b2);
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        param[i] = param[i] - step_size * (m[i] / denom);
    }
    return PN_OK;
}
