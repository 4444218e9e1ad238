/* cpu combo_loss: SIIM ComboLoss (BCE + batch-global soft Dice + focal, floored at 1e-5) and its gradient,
 * the formulas of core/combo_loss.h (as ref) with the sums reduced over OpenMP threads. */
#include "core/combo_loss.h"
#include "cpu.h"

#define PAR_MIN 8192

static pn_combo_sums combo_accumulate(const float *x, const float *t, int64_t n) {
    double bce = 0, focal = 0, inter = 0, sum_s = 0, sum_t = 0;
#pragma omp parallel for schedule(static) reduction(+ : bce, focal, inter, sum_s, sum_t) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        double b, f, s;
        pn_combo_terms(x[i], t[i], &b, &f, &s);
        bce += b;
        focal += f;
        inter += s * t[i];
        sum_s += s;
        sum_t += t[i];
    }
    pn_combo_sums a = {bce, focal, inter, sum_s, sum_t, (double)n};
    return a;
}

pn_status pn_cpu_combo_loss_fwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const float *x = cpu_ptr(node->in[0]), *t = cpu_ptr(node->in[1]);
    pn_combo_sums a = combo_accumulate(x, t, pn_tensor_numel(node->in[0]));
    cpu_ptr(node->out[0])[0] = (float)pn_combo_loss_value(&a, &node->p.combo_loss_fwd);
    return PN_OK;
}

pn_status pn_cpu_combo_loss_bwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const pn_combo_loss_params *p = &node->p.combo_loss_bwd;
    const float *x = cpu_ptr(node->in[0]), *t = cpu_ptr(node->in[1]);
    float *dx = cpu_ptr(node->out[0]);
    int64_t n = pn_tensor_numel(node->in[0]);
    pn_combo_sums a = combo_accumulate(x, t, n);
    bool floored = pn_combo_total(&a, p) < PN_COMBO_LOSS_FLOOR;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] = pn_combo_grad(x[i], t[i], &a, p, floored);
    return PN_OK;
}
