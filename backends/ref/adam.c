/* ref adam: one torch.optim.Adam step (float32 state, bias correction, coupled weight decay). */
#include <math.h>

#include "ref.h"

pn_status pn_ref_adam_step(pn_node *node) {
    const pn_adam_params *p = &node->p.adam_step;
    float *param = ref_ptr(node->out[0]), *m = ref_ptr(node->out[1]), *v = ref_ptr(node->out[2]);
    const float *grad = ref_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->in[0]);
    double bc1 = 1.0 - pow(p->beta1, (double)p->step);
    double bc2_sqrt = sqrt(1.0 - pow(p->beta2, (double)p->step));
    float step_size = (float)(p->lr / bc1);
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i];
        if (p->weight_decay != 0.0f) g = g + p->weight_decay * param[i];
        m[i] = m[i] * p->beta1 + g * (1.0f - p->beta1);
        v[i] = v[i] * p->beta2 + g * g * (1.0f - p->beta2);
        float denom = sqrtf(v[i]) / (float)bc2_sqrt + p->eps;
        param[i] = param[i] - step_size * (m[i] / denom);
    }
    return PN_OK;
}
