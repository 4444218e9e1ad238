/* adam: one torch.optim.Adam step over the flat parameters, the ref backend's float32 arithmetic per element. */
#include <math.h>

#include "cuda.h"

__global__ void adam_kernel(float *param, float *m, float *v, const float *grad, size_t n, float beta1, float beta2,
                            float eps, float wd, float step_size, float bc2_sqrt) {
    CUDA_GRID_LOOP(i, n) {
        float g = grad[i];
        if (wd != 0.0f) g = g + wd * param[i];
        float mi = m[i] * beta1 + g * (1.0f - beta1);
        float vi = v[i] * beta2 + g * g * (1.0f - beta2);
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        m[i] = mi;
        v[i] = vi;
        param[i] = param[i] - step_size * (mi / denom);
    }
}

pn_status pn_cuda_adam_step(cuda_ctx *ctx, pn_node *node) {
    const pn_adam_params *p = &node->p.adam_step;
    size_t n = cuda_numel(node->in[0]);
    /* bias corrections in double on the host, as ref */
    double bc1 = 1.0 - pow(p->beta1, (double)p->step);
    double bc2_sqrt = sqrt(1.0 - pow(p->beta2, (double)p->step));
    float step_size = (float)(p->lr / bc1);
    adam_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(
        cuda_ptr(node->out[0]), cuda_ptr(node->out[1]), cuda_ptr(node->out[2]), cuda_ptr(node->in[0]), n, p->beta1,
        p->beta2, p->eps, p->weight_decay, step_size, (float)bc2_sqrt);
    CUDA_LAUNCHED(adam_kernel);
    return PN_OK;
}
