/* param_groups: the encoder's parameters (all named "encoder.*") as a group of their own for the optimizer, as
 * PyTorch param groups do: frozen (requires_grad=False: no update, no moments, no part in the gradient norm) or
 * at a fraction of the learning rate. Built from flat views of the model's parameter, gradient and moment buffers
 * over runs of parameters that lie one after another, so a step is a few Adam ops, not one per tensor. */
#ifndef PN_TOOLS_PARAM_GROUPS_H
#define PN_TOOLS_PARAM_GROUPS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/unet.h"

#define PN_GROUPS_MAX_RUNS 64

typedef struct pn_param_run {
    pn_tensor p, g, m, v; /* 1-d views over consecutive parameters of one group */
    bool encoder;
} pn_param_run;

typedef struct pn_param_groups {
    pn_param_run runs[PN_GROUPS_MAX_RUNS];
    int n_runs;
    int64_t encoder_scalars, other_scalars;
} pn_param_groups;

/* Builds the runs; the model's gradient and moment buffers must exist (after a TRAIN plan or zero_grad). */
pn_status pn_groups_build(pn_unet *m, pn_param_groups *g);
/* Zeroes the encoder's gradients (a frozen encoder then adds nothing to the gradient norm or clipping). */
pn_status pn_groups_zero_encoder_grad(pn_unet *m, const pn_param_groups *g);
/* One Adam step: the non-encoder runs with `p`; the encoder runs with lr * encoder_scale and their own step count
 * `encoder_step` (PyTorch counts steps per parameter, from its first update), or not at all when frozen. */
pn_status pn_groups_adam_step(pn_unet *m, const pn_param_groups *g, const pn_adam_params *p, double encoder_scale,
                              int64_t encoder_step, bool encoder_frozen);

#endif
