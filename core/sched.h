/* sched: learning-rate schedules stepped per epoch, as PyTorch's MultiStepLR, ReduceLROnPlateau (mode
 * max), CosineAnnealingLR and the winner's plateau-then-cosine; plain state so checkpoints can carry it. */
#ifndef PN_SCHED_H
#define PN_SCHED_H

#include "base.h"

typedef enum pn_sched_kind {
    PN_SCHED_MULTISTEP,
    PN_SCHED_PLATEAU,
    PN_SCHED_COSINE,
    PN_SCHED_PLATEAU_COSINE
} pn_sched_kind;

#define PN_SCHED_MAX_MILESTONES 32
typedef struct pn_sched {
    pn_sched_kind kind;
    double base_lr;
    /* multistep */
    int milestones[PN_SCHED_MAX_MILESTONES], n_milestones;
    double gamma;
    /* plateau: factor, patience (epochs without improvement before a cut), min_lr, threshold (relative
     * improvement that counts, PyTorch's threshold_mode 'rel'); state best, bad, lr */
    double factor, min_lr, threshold;
    int patience;
    double best, lr;
    int bad;
    /* cosine: period (PyTorch's T_max) in epochs, eta_min */
    int period;
    double eta_min;
    /* plateau-cosine: the first epoch (0-based) of the cosine phase */
    int cosine_start;
} pn_sched;

/* "multistep" | "plateau" | "cosine" | "plateau-cosine" -> kind; PN_ERR_ARG naming the value otherwise. */
pn_status pn_sched_parse(const char *name, pn_sched_kind *out);
/* Fills the defaults (docs/REFERENCE.md, "Training schedule"): milestones 3,5,6,7,8,9,10,11,13,15 gamma 0.75; plateau
 * factor 0.1, patience 2, min 1e-7, threshold 1e-4 (PyTorch's default; the winner used 1e-7); cosine period 8, eta_min
 * 1e-7; cosine_start 0. */
void pn_sched_defaults(pn_sched *s, pn_sched_kind kind, double base_lr);
/* The learning rate of 0-based epoch `epoch`. Multistep: base * gamma^(milestones <= epoch); cosine
 * (PyTorch's CosineAnnealingLR, no restarts: after `period` epochs it rises again):
 * eta_min + (base - eta_min)(1 + cos(pi epoch / period)) / 2; plateau: the current lr; plateau-cosine:
 * the current lr before cosine_start, then the cosine from the lr the plateau phase left, over
 * epoch - cosine_start. */
double pn_sched_lr(const pn_sched *s, int epoch);
/* After 0-based epoch `epoch`'s validation (plateau, and plateau-cosine before cosine_start; the others
 * ignore it): a score above best * (1 + threshold) is an improvement; after more than `patience` epochs
 * without one, lr = max(lr * factor, min_lr) when that lowers it by more than 1e-8 (PyTorch's eps). */
void pn_sched_observe(pn_sched *s, int epoch, double score);

#endif
