/* cpu combo_loss: SIIM ComboLoss (BCE + batch-global soft Dice + focal, floored at 1e-5) and its gradient,
 * the same double-precision formulas as ref with the sums reduced over OpenMP threads. SPEC.md "Loss". */
#include <math.h>

#include "cpu.h"

#define DICE_EPS 1e-6
#define LOSS_FLOOR 1e-5
#define PAR_MIN 8192
static const float focal_lo = 1e-8f;
static const float focal_hi = (float)(1.0 - 1e-8);

typedef struct combo_sums {
    double bce, focal, inter, sum_s, sum_t, count;
} combo_sums;

static double sigmoid_d(float x) { return 1.0 / (1.0 + exp(-(double)x)); }

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

static double focal_pt(double s, float t) {
    double sc = clampf((float)s, focal_lo, focal_hi), tc = clampf(t, focal_lo, focal_hi);
    return (1.0 - tc) * (1.0 - sc) + tc * sc;
}

static combo_sums combo_accumulate(const float *x, const float *t, int64_t n) {
    double bce = 0, focal = 0, inter = 0, sum_s = 0, sum_t = 0;
#pragma omp parallel for schedule(static) reduction(+ : bce, focal, inter, sum_s, sum_t) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        double xi = x[i], s = sigmoid_d(x[i]);
        bce += (xi > 0 ? xi : 0.0) - xi * t[i] + log1p(exp(-fabs(xi)));
        double pt = focal_pt(s, t[i]);
        focal += -(1.0 - pt) * (1.0 - pt) * log(pt);
        inter += s * t[i];
        sum_s += s;
        sum_t += t[i];
    }
    combo_sums a = {bce, focal, inter, sum_s, sum_t, (double)n};
    return a;
}

static double combo_total(const combo_sums *a, const pn_combo_loss_params *p) {
    double total = 0.0;
    if (p->w_bce != 0.0f) total += p->w_bce * (a->bce / a->count);
    if (p->w_dice != 0.0f)
        total += p->w_dice * (1.0 - (2.0 * a->inter + DICE_EPS) / (a->sum_s + a->sum_t + DICE_EPS));
    if (p->w_focal != 0.0f) total += p->w_focal * (a->focal / a->count);
    return total;
}

pn_status pn_cpu_combo_loss_fwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const float *x = cpu_ptr(node->in[0]), *t = cpu_ptr(node->in[1]);
    combo_sums a = combo_accumulate(x, t, pn_tensor_numel(node->in[0]));
    double total = combo_total(&a, &node->p.combo_loss_fwd);
    cpu_ptr(node->out[0])[0] = (float)(total < LOSS_FLOOR ? LOSS_FLOOR : total);
    return PN_OK;
}

pn_status pn_cpu_combo_loss_bwd(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
    const pn_combo_loss_params *p = &node->p.combo_loss_bwd;
    const float *x = cpu_ptr(node->in[0]), *t = cpu_ptr(node->in[1]);
    float *dx = cpu_ptr(node->out[0]);
    int64_t n = pn_tensor_numel(node->in[0]);
    combo_sums a = combo_accumulate(x, t, n);
    bool floored = combo_total(&a, p) < LOSS_FLOOR;
    double u = a.sum_s + a.sum_t + DICE_EPS, num = 2.0 * a.inter + DICE_EPS;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        if (floored) {
            dx[i] = 0.0f;
            continue;
        }
        double s = sigmoid_d(x[i]), ds_dx = s * (1.0 - s);
        double g = 0.0;
        if (p->w_bce != 0.0f) g += p->w_bce * (s - t[i]) / a.count;
        if (p->w_dice != 0.0f) g += p->w_dice * (-(2.0 * t[i] * u - num) / (u * u)) * ds_dx;
        float sf = (float)s;
        if (p->w_focal != 0.0f && sf >= focal_lo && sf <= focal_hi) {
            double tc = clampf(t[i], focal_lo, focal_hi), pt = focal_pt(s, t[i]);
            double df_dpt = 2.0 * (1.0 - pt) * log(pt) - (1.0 - pt) * (1.0 - pt) / pt;
            g += p->w_focal * df_dpt * (2.0 * tc - 1.0) * ds_dx / a.count;
        }
        dx[i] = (float)(g * p->grad_scale);
    }
    return PN_OK;
}
