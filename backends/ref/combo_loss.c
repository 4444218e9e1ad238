/* ref combo_loss: SIIM ComboLoss = w_bce*BCE + w_dice*soft Dice (batch-global) + w_focal*focal(gamma 2),
 * clamped below at 1e-5, and its gradient (formulas in core/combo_loss.h); sums in double. */
#include "core/combo_loss.h"
#include "ref.h"

pn_status pn_ref_combo_loss_fwd(pn_node *node) {
    const float *x = ref_ptr(node->in[0]), *t = ref_ptr(node->in[1]);
    pn_combo_sums a = pn_combo_accumulate(x, t, pn_tensor_numel(node->in[0]));
    ref_ptr(node->out[0])[0] = (float)pn_combo_loss_value(&a, &node->p.combo_loss_fwd);
    return PN_OK;
}

pn_status pn_ref_combo_loss_bwd(pn_node *node) {
    const pn_combo_loss_params *p = &node->p.combo_loss_bwd;
    const float *x = ref_ptr(node->in[0]), *t = ref_ptr(node->in[1]);
    float *dx = ref_ptr(node->out[0]);
    int64_t n = pn_tensor_numel(node->in[0]);
    pn_combo_sums a = pn_combo_accumulate(x, t, n);
    bool floored = pn_combo_total(&a, p) < PN_COMBO_LOSS_FLOOR;
    for (int64_t i = 0; i < n; i++) dx[i] = pn_combo_grad(x[i], t[i], &a, p, floored);
    return PN_OK;
}
