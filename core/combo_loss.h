/* combo_loss: the SIIM ComboLoss formulas (docs/REFERENCE.md, "Loss") as inline functions, so every backend and the
 * host-side validation loss compute exactly the same thing: per-pixel terms, the total from their sums,
 * and the per-pixel gradient. Sums and arithmetic in double. */
#ifndef PN_COMBO_LOSS_H
#define PN_COMBO_LOSS_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "ops.h"

/* The cuda backend compiles these for the device too. */
#ifdef __CUDACC__
#define PN_HD __host__ __device__
#else
#define PN_HD
#endif

#define PN_COMBO_DICE_EPS 1e-6
#define PN_COMBO_LOSS_FLOOR 1e-5
/* The reference clamps to [1e-8, 1 - 1e-8] in float32, where 1 - 1e-8 rounds to exactly 1. */
#define PN_COMBO_FOCAL_LO 1e-8f
#define PN_COMBO_FOCAL_HI ((float)(1.0 - 1e-8))

/* Sums over the pixels of a batch. */
typedef struct pn_combo_sums {
    double bce, focal;          /* sums of the per-pixel terms (the loss uses their means) */
    double inter, sum_s, sum_t; /* soft Dice, over the whole batch */
    double count;
} pn_combo_sums;

static inline PN_HD double pn_combo_sigmoid(float x) { return 1.0 / (1.0 + exp(-(double)x)); }

static inline PN_HD float pn_combo_clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Focal's pt = (1-t)(1-s) + t*s on the clamped s and t. */
static inline PN_HD double pn_combo_focal_pt(double s, float t) {
    double sc = pn_combo_clampf((float)s, PN_COMBO_FOCAL_LO, PN_COMBO_FOCAL_HI);
    double tc = pn_combo_clampf(t, PN_COMBO_FOCAL_LO, PN_COMBO_FOCAL_HI);
    return (1.0 - tc) * (1.0 - sc) + tc * sc;
}

/* One pixel's BCE and focal terms and its sigmoid. */
static inline PN_HD void pn_combo_terms(float x, float t, double *bce, double *focal, double *s) {
    double xd = x;
    *s = pn_combo_sigmoid(x);
    *bce = (xd > 0 ? xd : 0.0) - xd * t + log1p(exp(-fabs(xd)));
    double pt = pn_combo_focal_pt(*s, t);
    *focal = -(1.0 - pt) * (1.0 - pt) * log(pt);
}

/* The sums over n pixels, serially (a threaded backend reduces the same terms in parallel). */
static inline PN_HD pn_combo_sums pn_combo_accumulate(const float *x, const float *t, int64_t n) {
    pn_combo_sums a = {0, 0, 0, 0, 0, (double)n};
    for (int64_t i = 0; i < n; i++) {
        double bce, focal, s;
        pn_combo_terms(x[i], t[i], &bce, &focal, &s);
        a.bce += bce;
        a.focal += focal;
        a.inter += s * t[i];
        a.sum_s += s;
        a.sum_t += t[i];
    }
    return a;
}

/* w_bce * mean BCE + w_dice * (1 - (2I + eps) / (S + T + eps)) + w_focal * mean focal (not floored). */
static inline PN_HD double pn_combo_total(const pn_combo_sums *a, const pn_combo_loss_params *p) {
    double total = 0.0;
    if (p->w_bce != 0.0f) total += p->w_bce * (a->bce / a->count);
    if (p->w_dice != 0.0f)
        total += p->w_dice * (1.0 - (2.0 * a->inter + PN_COMBO_DICE_EPS) / (a->sum_s + a->sum_t + PN_COMBO_DICE_EPS));
    if (p->w_focal != 0.0f) total += p->w_focal * (a->focal / a->count);
    return total;
}

/* The loss as the reference returns it: clamped below at 1e-5. */
static inline PN_HD double pn_combo_loss_value(const pn_combo_sums *a, const pn_combo_loss_params *p) {
    double total = pn_combo_total(a, p);
    return total < PN_COMBO_LOSS_FLOOR ? PN_COMBO_LOSS_FLOOR : total;
}

/* d(loss)/d(x) for one pixel times p->grad_scale; 0 where the floor clamps the loss (`floored`). */
static inline PN_HD float pn_combo_grad(float x, float t, const pn_combo_sums *a, const pn_combo_loss_params *p,
                                        bool floored) {
    if (floored) return 0.0f;
    double u = a->sum_s + a->sum_t + PN_COMBO_DICE_EPS, num = 2.0 * a->inter + PN_COMBO_DICE_EPS;
    double s = pn_combo_sigmoid(x), ds_dx = s * (1.0 - s);
    double g = 0.0;
    if (p->w_bce != 0.0f) g += p->w_bce * (s - t) / a->count;
    if (p->w_dice != 0.0f) g += p->w_dice * (-(2.0 * t * u - num) / (u * u)) * ds_dx;
    float sf = (float)s;
    if (p->w_focal != 0.0f && sf >= PN_COMBO_FOCAL_LO && sf <= PN_COMBO_FOCAL_HI) {
        double tc = pn_combo_clampf(t, PN_COMBO_FOCAL_LO, PN_COMBO_FOCAL_HI), pt = pn_combo_focal_pt(s, t);
        double df_dpt = 2.0 * (1.0 - pt) * log(pt) - (1.0 - pt) * (1.0 - pt) / pt;
        g += p->w_focal * df_dpt * (2.0 * tc - 1.0) * ds_dx / a->count;
    }
    return (float)(g * p->grad_scale);
}

#endif
